//! Skaffold (issue 28): `skaffold.yaml` configs pushed with `skaffold run -p <profile>`. Each
//! profile named after an environment (or activated by a kube-context, or setting
//! `deploy.kubeContext`) deploys its kustomize paths, raw manifests and Helm releases to that
//! cluster; `requires` brings in other configs with the profile propagated; what is not
//! followed is a note. Each test is a small repository written the way a user would.

mod common;

use common::{envfence, evidence, helm_for_tests, notes, placed, write_tree};
use serde_json::Value;

fn run(args: &[&str], files: &[(&str, &str)]) -> (Option<i32>, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(dir.path(), files);
    let out = envfence()
        .env_remove("GITHUB_REPOSITORY")
        .args(args)
        .args(["-q", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    (out.status.code(), common::json_report(&out))
}

fn topology(files: &[(&str, &str)]) -> Value {
    run(&["topology"], files).1
}

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: nginx:1.27\n"
    )
}

const V4: &str = "apiVersion: skaffold/v4beta11
kind: Config
metadata:
  name: web
manifests:
  rawYaml:
  - k8s/local/*.yaml
profiles:
- name: staging
  manifests:
    kustomize:
      paths:
      - k8s/variants/stg
- name: production
  manifests:
    kustomize:
      paths:
      - k8s/variants/live
      - k8s/variants/stg
";

fn v4_repo() -> Vec<(&'static str, String)> {
    vec![
        ("app/skaffold.yaml", V4.to_owned()),
        (
            "app/k8s/base/kustomization.yaml",
            "resources:\n- deployment.yaml\n".to_owned(),
        ),
        ("app/k8s/base/deployment.yaml", deployment("web")),
        (
            "app/k8s/variants/stg/kustomization.yaml",
            "namespace: web-staging\nresources:\n- ../../base\n".to_owned(),
        ),
        (
            "app/k8s/variants/live/kustomization.yaml",
            "namespace: web\nresources:\n- ../../base\n".to_owned(),
        ),
        ("app/k8s/local/deployment.yaml", deployment("web-local")),
    ]
}

fn refs<'a>(files: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    files.iter().map(|(p, t)| (*p, t.as_str())).collect()
}

/// A v4 config with two profiles: each deploys its kustomize paths to the cluster its name
/// names, with the profile's and the path's lines as evidence; the production profile that
/// also lists the staging overlay puts a staging workload on production, which is found;
/// the config's own raw manifests go with every profile.
#[test]
fn profiles_deploy_their_kustomize_paths_to_the_cluster_their_name_names() {
    let files = v4_repo();
    let t = topology(&refs(&files));
    assert_eq!(
        placed(&t, "app/k8s/base/deployment.yaml", "web"),
        [
            ("production".to_owned(), Some("web".to_owned())),
            ("production".to_owned(), Some("web-staging".to_owned())),
            ("staging".to_owned(), Some("web-staging".to_owned())),
        ],
        "{t:#}"
    );
    let ev = evidence(&t, "app/k8s/base/deployment.yaml", "web", "staging");
    assert_eq!(
        ev[..2],
        [
            "app/skaffold.yaml:9 skaffold run -p staging: Skaffold config web deploys to cluster staging (its name names the environment)".to_owned(),
            "app/skaffold.yaml:13 Skaffold manifests.kustomize.paths k8s/variants/stg".to_owned(),
        ],
        "{ev:#?}"
    );
    // The base config's raw manifests stay under each profile (a profile's `manifests`
    // merges into the config's); without a profile, they go to the current kube-context,
    // which nothing names: a note at the config's name.
    assert_eq!(
        placed(&t, "app/k8s/local/deployment.yaml", "web-local"),
        [
            ("production".to_owned(), None),
            ("staging".to_owned(), None)
        ],
    );
    // Every folder the config deploys without a profile is reached by a profile: no note.
    assert!(
        !notes(&t).iter().any(|n| n.contains("without a profile")),
        "{:#?}",
        notes(&t)
    );
    // The skaffold config is data, not an object.
    assert_eq!(t["summary"]["manifests"], 2, "{t:#}");

    let (_, report) = run(&["scan", "--fail-on", "never"], &refs(&files));
    let found = common::findings(&report, "nonprod-on-prod-cluster");
    assert_eq!(found.len(), 1, "{report:#}");
    assert!(
        found[0].1.contains("placed by Skaffold Config web -p production on production cluster production (namespace web-staging)"),
        "{found:?}"
    );
    // The namespaces the production profile mixes point at the path entries that send them.
    let mut isolation = common::at(&report, "no-network-isolation");
    isolation.sort();
    assert_eq!(isolation, ["app/skaffold.yaml:18", "app/skaffold.yaml:19"]);
    // Staging holds only staging: nothing there.
    assert!(!report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .any(|f| f["cluster"] == "staging"));
}

const PATCHED: &str = "apiVersion: skaffold/v2beta29
kind: Config
metadata:
  name: api
deploy:
  kustomize:
    paths:
    - deploy/base
profiles:
- name: prod
  patches:
  - op: replace
    path: /deploy/kustomize/paths/0
    value: deploy/prod
- name: gcb
  deploy:
    kubectl:
      manifests:
      - deploy/extra/*.yaml
- name: qa
  activation:
  - env: TARGET=qa
  deploy:
    kubeContext: gke_acme_qa-cluster
";

/// A v2 config: a profile's JSON patch replaces the kustomize path (its line is a hop), a
/// profile with `deploy.kubeContext` deploys to that cluster, and a profile that names no
/// environment, an activation by environment variable and a config without profiles whose
/// manifests nothing else reaches (its cluster is the current kube-context) are notes.
#[test]
fn profile_patches_and_kube_contexts_are_followed() {
    let files = vec![
        ("skaffold.yaml", PATCHED.to_owned()),
        ("deploy/base/deployment.yaml", deployment("api")),
        ("deploy/prod/deployment.yaml", deployment("api-prod")),
        ("deploy/extra/job.yaml", deployment("api-extra")),
        (
            "tools/skaffold.yaml",
            "apiVersion: skaffold/v4beta11\nkind: Config\nmetadata:\n  name: tools\nmanifests:\n  rawYaml:\n  - k8s/*.yaml\n".to_owned(),
        ),
        ("tools/k8s/debug.yaml", deployment("debug")),
    ];
    let t = topology(&refs(&files));
    assert_eq!(
        placed(&t, "deploy/prod/deployment.yaml", "api-prod"),
        [("prod".to_owned(), None)],
        "{t:#}"
    );
    let ev = evidence(&t, "deploy/prod/deployment.yaml", "api-prod", "prod");
    assert!(
        ev.contains(
            &"skaffold.yaml:12 Skaffold profile prod patches: replace /deploy/kustomize/paths/0"
                .to_owned()
        ),
        "{ev:#?}"
    );
    assert!(
        ev.contains(&"skaffold.yaml:14 Skaffold deploy.kustomize.paths deploy/prod".to_owned()),
        "{ev:#?}"
    );
    assert_eq!(
        placed(&t, "deploy/base/deployment.yaml", "api"),
        [("gke_acme_qa-cluster".to_owned(), None)],
        "{t:#}"
    );
    let ev = evidence(
        &t,
        "deploy/base/deployment.yaml",
        "api",
        "gke_acme_qa-cluster",
    );
    assert!(
        ev[0].starts_with("skaffold.yaml:24 skaffold run -p qa:"),
        "{ev:#?}"
    );
    assert!(placed(&t, "deploy/extra/job.yaml", "api-extra").is_empty());
    assert!(placed(&t, "tools/k8s/debug.yaml", "debug").is_empty());
    let n = notes(&t);
    for want in [
        "skaffold.yaml:15 Skaffold profile gcb of config api names no environment and no kube-context, so where `skaffold run -p gcb` deploys is not known",
        "skaffold.yaml:22 Skaffold profile qa of config api is activated by the environment variable condition TARGET=qa; envfence does not read the environment, so it follows the profile only by its name",
        "tools/skaffold.yaml:4 Skaffold config tools deploys k8s/*.yaml without a profile to the current kube-context, and no deploy.kubeContext names it, so which cluster that is is not known",
    ] {
        assert!(n.contains(&want.to_owned()), "{want}\n{n:#?}");
    }
}

/// `requires`: a root config with no profile of its own runs `-p staging` through the
/// configs it requires that define it; `activeProfiles` activates a profile of a further
/// config when staging is active; a remote (git) config is a note.
#[test]
fn requires_propagate_the_profile_and_active_profiles() {
    let root = "apiVersion: skaffold/v4beta11
kind: Config
metadata:
  name: all
requires:
- path: svc/skaffold.yaml
  configs: [svc]
- git:
    repo: https://github.com/acme/shared
    path: skaffold.yaml
";
    let svc = "apiVersion: skaffold/v4beta11
kind: Config
metadata:
  name: svc
requires:
- configs: [db]
  activeProfiles:
  - name: seeded
    activatedBy: [staging]
profiles:
- name: staging
  manifests:
    rawYaml:
    - k8s/*.yaml
---
apiVersion: skaffold/v4beta11
kind: Config
metadata:
  name: db
profiles:
- name: seeded
  manifests:
    rawYaml:
    - seed/job.yaml
";
    let files = vec![
        ("skaffold.yaml", root.to_owned()),
        ("svc/skaffold.yaml", svc.to_owned()),
        ("svc/k8s/deployment.yaml", deployment("svc")),
        ("svc/seed/job.yaml", deployment("db-seed")),
    ];
    let t = topology(&refs(&files));
    assert_eq!(
        placed(&t, "svc/k8s/deployment.yaml", "svc"),
        [("staging".to_owned(), None)],
        "{t:#}"
    );
    let ev = evidence(&t, "svc/k8s/deployment.yaml", "svc", "staging");
    assert_eq!(
        ev[..3],
        [
            "svc/skaffold.yaml:11 skaffold run -p staging: Skaffold config svc deploys to cluster staging (its name names the environment)".to_owned(),
            "skaffold.yaml:6 Skaffold config all requires config svc (profiles staging active)".to_owned(),
            "svc/skaffold.yaml:14 Skaffold manifests.rawYaml k8s/*.yaml".to_owned(),
        ],
        "{ev:#?}"
    );
    assert_eq!(
        placed(&t, "svc/seed/job.yaml", "db-seed"),
        [("staging".to_owned(), None)],
        "{t:#}"
    );
    let ev = evidence(&t, "svc/seed/job.yaml", "db-seed", "staging");
    assert!(
        ev.contains(
            &"svc/skaffold.yaml:6 Skaffold config svc requires config db (profiles seeded active)"
                .to_owned()
        ),
        "{ev:#?}"
    );
    let n = notes(&t);
    assert!(
        n.contains(&"skaffold.yaml:8 Skaffold config all requires a remote config (git: https://github.com/acme/shared skaffold.yaml); envfence does not fetch it, so what it deploys is not known".to_owned()),
        "{n:#?}"
    );
}

/// Helm releases: a local chart renders with the release's values files and `setValues` on
/// the profile's cluster; a remote chart is an opaque placement there.
#[test]
fn helm_releases_render_local_charts_and_place_remote_ones_opaquely() {
    let Some(helm) = helm_for_tests() else { return };
    let config = "apiVersion: skaffold/v4beta11
kind: Config
metadata:
  name: shop
profiles:
- name: production
  deploy:
    helm:
      releases:
      - name: shop
        chartPath: charts/shop
        namespace: shop
        valuesFiles:
        - charts/shop/values-prod.yaml
        setValues:
          replicas: 3
      - name: redis
        remoteChart: redis
        repo: https://charts.bitnami.com/bitnami
";
    let template = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-{{ .Values.suffix }}
spec:
  replicas: {{ .Values.replicas }}
  template:
    spec:
      containers:
        - name: app
          image: nginx:1.27
";
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(
        dir.path(),
        &[
            ("skaffold.yaml", config),
            (
                "charts/shop/Chart.yaml",
                "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
            ),
            ("charts/shop/values.yaml", "suffix: dev\nreplicas: 1\n"),
            ("charts/shop/values-prod.yaml", "suffix: live\n"),
            ("charts/shop/templates/deployment.yaml", template),
        ],
    );
    let out = envfence()
        .env("ENVFENCE_HELM", &helm)
        .args(["topology", "-q", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let t = common::json_report(&out);
    let placements = t["placements"].as_array().expect("placements");
    let shop = placements
        .iter()
        .find(|p| p["name"] == "shop-live")
        .unwrap_or_else(|| panic!("{t:#}"));
    assert_eq!(shop["cluster"], "production");
    assert_eq!(shop["namespace"], "shop");
    let notes: Vec<&str> = shop["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .filter_map(|e| e["note"].as_str())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("Skaffold helm.releases.chartPath charts/shop")),
        "{notes:#?}"
    );
    let redis = placements
        .iter()
        .find(|p| p["name"] == "redis")
        .unwrap_or_else(|| panic!("{t:#}"));
    assert_eq!(redis["cluster"], "production");
    assert_eq!(redis["file"], "skaffold.yaml");
    assert_eq!(redis["line"], 17);
    assert_eq!(t["summary"]["opaque"], 1, "{:#}", t["summary"]);
}

/// A hostile graph: 200 configs in a chain of `requires`, 60 environment profiles at the
/// root: 61 runs of 200 configs. The runs stop at the budget (10,000 config runs), the cut is
/// listed, and the scan exits 3.
#[test]
fn the_runs_of_a_skaffold_graph_are_bounded() {
    let mut text = String::new();
    for i in 0..200 {
        text.push_str(&format!(
            "apiVersion: skaffold/v4beta11\nkind: Config\nmetadata:\n  name: c{i}\n"
        ));
        if i + 1 < 200 {
            text.push_str(&format!("requires:\n- configs: [c{}]\n", i + 1));
        }
        if i == 0 {
            text.push_str("profiles:\n");
            for p in 0..60 {
                text.push_str(&format!(
                    "- name: prod-{p}\n  manifests:\n    rawYaml: [k8s/*.yaml]\n"
                ));
            }
        }
        text.push_str("---\n");
    }
    let files = vec![
        ("skaffold.yaml", text),
        ("k8s/deployment.yaml", deployment("web")),
    ];
    let (code, report) = run(&["scan", "--fail-on", "error"], &refs(&files));
    assert_eq!(code, Some(3), "{report:#}");
    let incomplete = report["incomplete"].as_array().expect("incomplete");
    assert_eq!(incomplete.len(), 1, "{incomplete:#?}");
    assert_eq!(incomplete[0]["budget"], "skaffold config runs");
    assert_eq!(incomplete[0]["file"], "skaffold.yaml");
}
