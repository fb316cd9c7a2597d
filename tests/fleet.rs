//! Rancher Fleet (issue 28): GitRepo `paths` and `targets` (clusterName, clusterSelector,
//! clusterGroup) against the clusters the repository declares (Fleet `Cluster` objects, the
//! config's `clusters` with their labels), `fleet.yaml` bundles and their
//! `targetCustomizations` (kustomize folder, Helm values, namespace), remote charts as opaque
//! placements, and what is not followed as notes at their lines. Each test is a small
//! repository written the way a user would.

mod common;

use common::{envfence, evidence, helm_for_tests, json_report, notes, placed, write_tree};
use serde_json::Value;

/// Runs `envfence ARGS` on `files` written in a temporary folder (chart rendering off unless
/// `helm` is given); (exit code, JSON).
fn run_with(
    args: &[&str],
    files: &[(&str, &str)],
    helm: Option<&std::path::Path>,
) -> (Option<i32>, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(dir.path(), files);
    let mut cmd = envfence();
    if let Some(h) = helm {
        cmd.env("ENVFENCE_HELM", h);
    }
    let out = cmd
        .env_remove("GITHUB_REPOSITORY")
        .args(args)
        .args(["-q", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    (out.status.code(), json_report(&out))
}

fn scan(files: &[(&str, &str)]) -> (Option<i32>, Value) {
    run_with(&["scan"], files, None)
}

fn topology(files: &[(&str, &str)]) -> Value {
    run_with(&["topology"], files, None).1
}

/// `file:line` of each finding of `rule`, sorted.
fn at(report: &Value, rule: &str) -> Vec<String> {
    let mut out: Vec<String> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"] == rule)
        .map(|f| format!("{}:{}", f["file"].as_str().unwrap_or(""), f["line"]))
        .collect();
    out.sort();
    out
}

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: ghcr.io/acme/{name}:1.0.0\n"
    )
}

fn cluster(name: &str, env: &str) -> String {
    format!(
        "apiVersion: fleet.cattle.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: {name}\n  namespace: fleet-default\n  labels:\n    env: {env}\n    region: eu\n"
    )
}

/// A GitRepo whose target selects the eu clusters, and a bundle with one kustomize folder
/// per environment.
fn shop() -> Vec<(&'static str, String)> {
    vec![
        ("fleet/clusters/prod-eu.yaml", cluster("prod-eu", "prod")),
        ("fleet/clusters/dev-eu.yaml", cluster("dev-eu", "dev")),
        (
            "fleet/gitrepo.yaml",
            "apiVersion: fleet.cattle.io/v1alpha1\nkind: GitRepo\nmetadata:\n  name: shop\n  namespace: fleet-default\nspec:\n  repo: https://github.com/acme/shop\n  paths:\n  - apps/shop\n  targets:\n  - name: eu\n    clusterSelector:\n      matchLabels:\n        region: eu\n".into(),
        ),
        (
            "apps/shop/fleet.yaml",
            "defaultNamespace: shop\ntargetCustomizations:\n- name: production\n  clusterSelector:\n    matchLabels:\n      env: prod\n  kustomize:\n    dir: overlays/prod\n- name: development\n  clusterSelector:\n    matchLabels:\n      env: dev\n  kustomize:\n    dir: overlays/dev\n".into(),
        ),
        (
            "apps/shop/base/kustomization.yaml",
            "resources:\n- deployment.yaml\n".into(),
        ),
        ("apps/shop/base/deployment.yaml", deployment("shop")),
        (
            "apps/shop/overlays/prod/kustomization.yaml",
            "resources:\n- ../../base\n".into(),
        ),
        (
            "apps/shop/overlays/dev/kustomization.yaml",
            "resources:\n- ../../base\n- load-test.yaml\n".into(),
        ),
        (
            "apps/shop/overlays/dev/load-test.yaml",
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: load-test\nspec:\n  template:\n    spec:\n      containers:\n        - name: k6\n          image: grafana/k6:0.50.0\n".into(),
        ),
    ]
}

fn borrowed<'a>(files: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    files.iter().map(|(p, t)| (*p, t.as_str())).collect()
}

#[test]
fn a_gitrepo_target_selects_declared_clusters_and_each_gets_its_customization() {
    let files = shop();
    let t = topology(&borrowed(&files));
    // Each cluster gets the kustomize folder its customization names, in the bundle's
    // default namespace.
    assert_eq!(
        placed(&t, "apps/shop/base/deployment.yaml", "shop"),
        [
            ("dev-eu".to_owned(), Some("shop".to_owned())),
            ("prod-eu".to_owned(), Some("shop".to_owned()))
        ]
    );
    assert_eq!(
        placed(&t, "apps/shop/overlays/dev/load-test.yaml", "load-test"),
        [("dev-eu".to_owned(), Some("shop".to_owned()))]
    );
    let hops = evidence(&t, "apps/shop/base/deployment.yaml", "shop", "prod-eu");
    for want in [
        "fleet/gitrepo.yaml:9 Fleet GitRepo shop path apps/shop: bundle apps/shop",
        "fleet/gitrepo.yaml:12 Fleet GitRepo shop targets clusterSelector region=eu: cluster prod-eu",
        "apps/shop/fleet.yaml:4 Fleet targetCustomization production (clusterSelector env=prod) applies on cluster prod-eu",
        "apps/shop/fleet.yaml:8 Fleet bundle apps/shop: kustomize dir overlays/prod",
    ] {
        assert!(hops.iter().any(|h| h == want), "{want}: {hops:#?}");
    }
    // Every customization picked a cluster: no note about them, nor about the bundle.
    let notes = notes(&t);
    assert!(!notes.iter().any(|n| n.contains("Fleet")), "{notes:#?}");
}

#[test]
fn a_customization_that_sends_a_dev_overlay_to_production_is_an_error_at_its_line() {
    let mut files = shop();
    // The production customization points at the dev folder.
    files[3].1 = files[3]
        .1
        .replace("dir: overlays/prod", "dir: overlays/dev");
    let (code, report) = scan(&borrowed(&files));
    assert_eq!(code, Some(1), "{report:#}");
    // The load test the dev folder includes, on the production cluster, through the
    // customization that picked it.
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        ["apps/shop/overlays/dev/kustomization.yaml:3"],
        "{report:#}"
    );
    let finding = &report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule"] == "nonprod-on-prod-cluster")
        .expect("the finding");
    assert_eq!(finding["cluster"], "prod-eu");
    let hops = finding["evidence"].to_string();
    assert!(
        hops.contains("Fleet targetCustomization production (clusterSelector env=prod) applies on cluster prod-eu")
            && hops.contains("Fleet bundle apps/shop: kustomize dir overlays/dev"),
        "{hops}"
    );
    // The same repository as written is silent.
    let files = shop();
    let (_, report) = scan(&borrowed(&files));
    assert!(
        at(&report, "nonprod-on-prod-cluster").is_empty(),
        "{report:#}"
    );
}

#[test]
fn cluster_name_and_cluster_group_targets_and_config_labels() {
    let files = [
        (
            ".envfence.yaml",
            "clusters:\n  - name: edge-prod\n    environment: production\n    labels:\n      tier: edge\n",
        ),
        (
            "fleet/groups.yaml",
            "apiVersion: fleet.cattle.io/v1alpha1\nkind: ClusterGroup\nmetadata:\n  name: edge\n  namespace: fleet-default\nspec:\n  selector:\n    matchLabels:\n      tier: edge\n",
        ),
        (
            "fleet/gitrepo.yaml",
            "apiVersion: fleet.cattle.io/v1alpha1\nkind: GitRepo\nmetadata:\n  name: cdn\n  namespace: fleet-default\nspec:\n  repo: https://github.com/acme/cdn\n  paths:\n  - cdn\n  targets:\n  - clusterName: staging-1\n  - clusterGroup: edge\n  - clusterSelector:\n      matchLabels:\n        gpu: \"true\"\n",
        ),
        (
            "cdn/fleet.yaml",
            "namespace: cdn\n",
        ),
        ("cdn/deployment.yaml", &deployment("cache")),
    ];
    let t = topology(&files);
    assert_eq!(
        placed(&t, "cdn/deployment.yaml", "cache"),
        [
            ("edge-prod".to_owned(), Some("cdn".to_owned())),
            ("staging-1".to_owned(), Some("cdn".to_owned()))
        ]
    );
    let hops = evidence(&t, "cdn/deployment.yaml", "cache", "edge-prod");
    assert!(
        hops.iter().any(|h| h
            == "fleet/gitrepo.yaml:12 Fleet GitRepo cdn targets clusterGroup edge: cluster edge-prod"),
        "{hops:#?}"
    );
    let notes = notes(&t);
    assert!(
        notes.iter().any(|n| n
            == "fleet/gitrepo.yaml:13 Fleet GitRepo cdn: target clusterSelector gpu=true matches no cluster envfence knows, so nothing is placed for it (declare the cluster, with its labels, in .envfence.yaml)"),
        "{notes:#?}"
    );
}

#[test]
fn a_bundle_no_gitrepo_deploys_lands_on_the_unnamed_cluster_and_its_unmatched_customizations_are_one_note(
) {
    let files = [
        (
            "guestbook/fleet.yaml",
            "namespace: guestbook\ntargetCustomizations:\n- name: dev\n  clusterSelector:\n    matchLabels:\n      env: dev\n  yaml:\n    overlays:\n    - small\n- name: prod\n  clusterSelector:\n    matchLabels:\n      env: prod\n  yaml:\n    overlays:\n    - big\n",
        ),
        ("guestbook/deployment.yaml", &deployment("frontend")),
        ("guestbook/overlays/big/deployment_patch.yaml", "spec:\n  replicas: 3\n"),
        // Fleet's own rendering of the bundle, as test expectations keep it.
        (
            "tests/expected/bundle.yaml",
            "apiVersion: fleet.cattle.io/v1alpha1\nkind: Bundle\nmetadata:\n  name: test\n  namespace: fleet-local\nspec:\n  resources: []\n",
        ),
        ("tests/expected/output.yaml", &deployment("frontend")),
    ];
    let t = topology(&files);
    assert_eq!(
        placed(&t, "guestbook/deployment.yaml", "frontend"),
        [("unnamed-cluster".to_owned(), Some("guestbook".to_owned()))]
    );
    assert!(placed(&t, "tests/expected/output.yaml", "frontend").is_empty());
    let notes = notes(&t);
    for want in [
        "guestbook/fleet.yaml:1 Fleet bundle guestbook: no GitRepo here deploys it, so its cluster is not named: envfence places it on `unnamed-cluster` of unknown environment (name it with a `paths` rule for guestbook/** in .envfence.yaml)",
        "guestbook/fleet.yaml:4 Fleet bundle guestbook: targetCustomizations dev (clusterSelector env=dev; its changes), prod (clusterSelector env=prod; its changes) match no cluster envfence knows, so envfence applies them on no cluster (declare the clusters, with their labels, in .envfence.yaml)",
        "tests/expected/bundle.yaml:1 Fleet Bundle test: a bundle as Fleet renders it, not a source; nothing here deploys tests/expected/, so its objects are not placed",
    ] {
        assert!(notes.iter().any(|n| n == want), "{want}: {notes:#?}");
    }
    // The coverage names Fleet for the rendered bundle's folder.
    let unplaced = t["summary"]["unplaced_folders"].to_string();
    assert!(
        unplaced.contains(r#"{"family":"Fleet","folder":"tests/expected","objects":2}"#),
        "{unplaced}"
    );
}

#[test]
fn a_config_cluster_with_the_labels_receives_the_customization_of_an_unreached_bundle() {
    let files = [
        (
            ".envfence.yaml",
            "clusters:\n  - name: prod-us\n    labels:\n      env: prod\n",
        ),
        (
            "app/fleet.yaml",
            "targetCustomizations:\n- name: prod\n  clusterSelector:\n    matchLabels:\n      env: prod\n  namespace: app-prod\n",
        ),
        ("app/deployment.yaml", &deployment("api")),
    ];
    let t = topology(&files);
    assert_eq!(
        placed(&t, "app/deployment.yaml", "api"),
        [
            ("prod-us".to_owned(), Some("app-prod".to_owned())),
            ("unnamed-cluster".to_owned(), None)
        ]
    );
    let hops = evidence(&t, "app/deployment.yaml", "api", "prod-us");
    assert!(
        hops.iter().any(|h| h
            == "app/fleet.yaml:3 Fleet targetCustomization prod (clusterSelector env=prod) applies on cluster prod-us"),
        "{hops:#?}"
    );
}

#[test]
fn a_fleet_local_gitrepo_deploys_to_the_local_cluster_and_a_remote_chart_is_opaque() {
    let files = [
        (
            "gitrepos/monitoring.yaml",
            "kind: GitRepo\napiVersion: fleet.cattle.io/v1alpha1\nmetadata:\n  name: monitoring\n  namespace: fleet-local\nspec:\n  repo: https://github.com/acme/fleet\n  paths:\n  - monitoring\n",
        ),
        (
            "monitoring/fleet.yaml",
            "defaultNamespace: cattle-monitoring-system\nhelm:\n  releaseName: rancher-monitoring\n  repo: https://charts.rancher.io\n  chart: rancher-monitoring\n  version: 104.1.0\n",
        ),
    ];
    let t = topology(&files);
    let opaque: Vec<&Value> = t["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .filter(|p| p["file"] == "monitoring/fleet.yaml")
        .collect();
    assert_eq!(opaque.len(), 1, "{t:#}");
    assert_eq!(opaque[0]["cluster"], "local");
    assert_eq!(opaque[0]["kind"], "Bundle");
    assert_eq!(opaque[0]["line"], 5);
    let hops = evidence(&t, "monitoring/fleet.yaml", "monitoring", "local");
    assert!(
        hops.iter().any(|h| h
            == "gitrepos/monitoring.yaml:5 Fleet GitRepo monitoring is in namespace fleet-local: it deploys to the cluster that runs Fleet"),
        "{hops:#?}"
    );
    assert!(
        notes(&t).iter().any(|n| n
            == "monitoring/fleet.yaml:5 Fleet bundle monitoring: its Helm chart rancher-monitoring of Helm repository https://charts.rancher.io is downloaded by Fleet; envfence does not read remote charts, so the bundle is one opaque placement on each of its clusters"),
        "{:#?}",
        notes(&t)
    );
    assert_eq!(t["summary"]["opaque"], 1, "{t:#}");
}

/// A local chart in the bundle renders once per cluster with the values of the customization
/// that picks it: the dev values turn on a debug sidecar, which only the dev cluster gets.
#[test]
fn a_local_chart_renders_with_each_customizations_values() {
    let Some(helm) = helm_for_tests() else { return };
    let files = [
        ("fleet/clusters/prod.yaml", cluster("prod-eu", "prod")),
        ("fleet/clusters/dev.yaml", cluster("dev-eu", "dev")),
        (
            "fleet/gitrepo.yaml",
            "apiVersion: fleet.cattle.io/v1alpha1\nkind: GitRepo\nmetadata:\n  name: web\n  namespace: fleet-default\nspec:\n  repo: https://github.com/acme/web\n  paths:\n  - web\n  targets:\n  - clusterSelector:\n      matchLabels:\n        region: eu\n".into(),
        ),
        (
            "web/fleet.yaml",
            "namespace: web\nhelm:\n  releaseName: web\n  values:\n    replicas: 2\ntargetCustomizations:\n- name: dev\n  clusterSelector:\n    matchLabels:\n      env: dev\n  helm:\n    values:\n      debug: true\n".into(),
        ),
        ("web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n".into()),
        ("web/values.yaml", "replicas: 1\ndebug: false\n".into()),
        (
            "web/templates/deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: {{ .Values.replicas }}\n  template:\n    spec:\n      containers:\n        - name: web\n          image: ghcr.io/acme/web:1.0.0\n".into(),
        ),
        (
            "web/templates/debug.yaml",
            "{{- if .Values.debug }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-debug\ndata:\n  level: trace\n{{- end }}\n".into(),
        ),
    ];
    let t = run_with(&["topology"], &borrowed(&files), Some(&helm)).1;
    let clusters_of = |name: &str| -> Vec<String> {
        let mut out: Vec<String> = t["placements"]
            .as_array()
            .expect("placements")
            .iter()
            .filter(|p| p["name"] == name && p["kind"] != "Bundle")
            .map(|p| p["cluster"].as_str().unwrap_or("").to_owned())
            .collect();
        out.sort();
        out
    };
    assert_eq!(clusters_of("web"), ["dev-eu", "prod-eu"], "{t:#}");
    assert_eq!(clusters_of("web-debug"), ["dev-eu"], "{t:#}");
    let placement = t["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .find(|p| p["name"] == "web-debug")
        .expect("web-debug");
    assert_eq!(placement["namespace"], "web");
    let hops = placement["evidence"].to_string();
    assert!(
        hops.contains(
            "Fleet targetCustomization dev (clusterSelector env=dev) applies on cluster dev-eu"
        ),
        "{hops}"
    );
}
