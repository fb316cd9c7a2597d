//! Config Sync (issue 26): RootSync and RepoSync folders, the legacy ConfigManagement's
//! `policyDir` and `clusterName`, hierarchical and unstructured repositories, NamespaceSelectors,
//! ClusterSelectors and cluster-name selectors, and the clusters the config declares with their
//! labels, which Config Sync selectors and ApplicationSet cluster generators match as they
//! match a cluster Secret's. Each test is a small repository written the way a user would.

mod common;

use common::{envfence, evidence, notes, placed, write_tree};
use serde_json::Value;

/// Runs `envfence ARGS` on `files` written in a temporary folder; (exit code, JSON).
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

fn scan(files: &[(&str, &str)]) -> (Option<i32>, Value) {
    run(&["scan"], files)
}

fn topology(files: &[(&str, &str)]) -> Value {
    run(&["topology"], files).1
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

/// The message of the finding of `rule` at `file:line`.
fn message<'r>(report: &'r Value, rule: &str, location: &str) -> &'r str {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| {
            f["rule"] == rule
                && format!("{}:{}", f["file"].as_str().unwrap_or(""), f["line"]) == location
        })
        .and_then(|f| f["message"].as_str())
        .unwrap_or_else(|| panic!("no {rule} at {location}: {report:#}"))
}

fn namespace(name: &str, labels: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n{labels}")
}

const REPO: &str = "apiVersion: configmanagement.gke.io/v1
kind: Repo
metadata:
  name: repo
spec:
  version: 1.0.0
";

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: shipping
spec:
  template:
    spec:
      containers:
        - name: shipping
          image: ghcr.io/acme/shipping:1.4.2
";

/// A legacy ConfigManagement that syncs `dir` to `cluster`.
fn config_management(cluster: &str, dir: &str, format: &str) -> String {
    format!(
        "apiVersion: configmanagement.gke.io/v1
kind: ConfigManagement
metadata:
  name: config-management
spec:
  clusterName: {cluster}
  git:
    syncRepo: https://github.com/acme/platform.git
    syncBranch: main
    policyDir: {dir}
  sourceFormat: {format}
"
    )
}

/// The example: one hierarchical repository syncs shipping-dev, shipping-staging and
/// shipping-prod to the same cluster. The namespaces come from their folders, the abstract
/// folder's Deployment goes to each of them, and the non-production namespaces are each
/// reported at their Namespace's line (before Config Sync was followed, nothing was).
#[test]
fn a_hierarchical_repository_syncing_dev_and_prod_namespaces_to_one_cluster_is_mixed() {
    let ns = |n: &str| namespace(n, "");
    let files = [
        (
            "setup/config-management.yaml",
            config_management("shipping-cluster", "config-root", "hierarchy"),
        ),
        ("config-root/system/repo.yaml", REPO.to_owned()),
        (
            "config-root/namespaces/online/shipping/deployment.yaml",
            DEPLOYMENT.to_owned(),
        ),
        (
            "config-root/namespaces/online/shipping/shipping-dev/namespace.yaml",
            ns("shipping-dev"),
        ),
        (
            "config-root/namespaces/online/shipping/shipping-staging/namespace.yaml",
            ns("shipping-staging"),
        ),
        (
            "config-root/namespaces/online/shipping/shipping-prod/namespace.yaml",
            ns("shipping-prod"),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let (_, report) = scan(&files);
    let dir = "config-root/namespaces/online/shipping";
    assert_eq!(
        at(&report, "mixed-environment-cluster"),
        [
            format!("{dir}/shipping-dev/namespace.yaml:4"),
            format!("{dir}/shipping-staging/namespace.yaml:4"),
        ],
        "{report:#}"
    );
    let mixed = message(
        &report,
        "mixed-environment-cluster",
        &format!("{dir}/shipping-dev/namespace.yaml:4"),
    );
    assert!(
        mixed.starts_with("cluster shipping-cluster (production) runs production workloads (such as Deployment/shipping via namespace folder shipping-prod) and non-production workloads from namespace folder shipping-dev"),
        "{mixed}"
    );

    let t = topology(&files);
    assert_eq!(
        placed(&t, &format!("{dir}/deployment.yaml"), "shipping"),
        [
            (
                "shipping-cluster".to_owned(),
                Some("shipping-dev".to_owned())
            ),
            (
                "shipping-cluster".to_owned(),
                Some("shipping-prod".to_owned())
            ),
            (
                "shipping-cluster".to_owned(),
                Some("shipping-staging".to_owned())
            ),
        ]
    );
    assert_eq!(
        evidence(&t, &format!("{dir}/deployment.yaml"), "shipping", "shipping-cluster")
            .iter()
            .filter(|e| !e.contains(" ConfigManagement/config-management"))
            .cloned()
            .collect::<Vec<_>>(),
        [
            "setup/config-management.yaml:6 spec.clusterName=shipping-cluster".to_owned(),
            "setup/config-management.yaml:10 repoURL https://github.com/acme/platform.git is assumed to be this repository: config-root exists here (declare it in repository.urls to make this certain)".to_owned(),
            "setup/config-management.yaml:10 Config Sync ConfigManagement config-management syncs spec.git.policyDir config-root (a hierarchical repository)".to_owned(),
            format!("{dir}/shipping-dev/namespace.yaml:4 hierarchical repository: namespace shipping-dev ({dir}/shipping-dev/) inherits the objects of the abstract namespace folder {dir}/"),
            format!("{dir}/deployment.yaml:1 Deployment/shipping in namespace shipping-dev"),
        ]
    );
}

/// A hierarchical repository that nothing here syncs lands where a `paths` rule says, with the
/// same namespaces and the same warnings.
#[test]
fn a_hierarchical_repository_nothing_syncs_goes_where_a_paths_rule_says() {
    let config = "clusters:\n  - name: prod-eu\n    environment: production\npaths:\n  - glob: \"acm/**\"\n    cluster: prod-eu\n";
    let files = [
        (".envfence.yaml", config.to_owned()),
        ("acm/system/repo.yaml", REPO.to_owned()),
        ("acm/namespaces/web-qa/namespace.yaml", namespace("web-qa", "")),
        ("acm/namespaces/web-qa/deployment.yaml", DEPLOYMENT.to_owned()),
        ("acm/namespaces/web/deployment.yaml", DEPLOYMENT.to_owned()),
        (
            "acm/cluster/clusterrole.yaml",
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\n"
                .to_owned(),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let t = topology(&files);
    assert_eq!(
        placed(&t, "acm/namespaces/web-qa/deployment.yaml", "shipping"),
        [("prod-eu".to_owned(), Some("web-qa".to_owned()))]
    );
    // A leaf folder without a Namespace object is a namespace too.
    assert_eq!(
        placed(&t, "acm/namespaces/web/deployment.yaml", "shipping"),
        [("prod-eu".to_owned(), Some("web".to_owned()))]
    );
    assert_eq!(
        placed(&t, "acm/cluster/clusterrole.yaml", "reader"),
        [("prod-eu".to_owned(), None)]
    );
    // Named by the rule: no note about an unnamed cluster; the Repo is data, not an object.
    assert!(notes(&t).is_empty(), "{:?}", notes(&t));
    assert_eq!(t["summary"]["manifests"], 4, "{t:#}");
    let (_, report) = scan(&files);
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        ["acm/namespaces/web-qa/namespace.yaml:4"]
    );
}

/// A RootSync in a cluster's tree syncs `spec.git.dir` of this repository to that cluster; an
/// unstructured folder keeps each object's own namespace, whatever its folders say.
#[test]
fn a_root_sync_syncs_its_dir_unstructured_to_the_cluster_it_runs_on() {
    let root_sync = "apiVersion: configsync.gke.io/v1beta1
kind: RootSync
metadata:
  name: root-sync
  namespace: config-management-system
spec:
  sourceFormat: unstructured
  git:
    repo: https://github.com/acme/platform
    branch: main
    dir: config/prod
";
    let files = [
        ("clusters/prod-eu/root-sync.yaml", root_sync.to_owned()),
        (
            "config/prod/namespaces/payments/deployment.yaml",
            DEPLOYMENT.replace(
                "  name: shipping\n",
                "  name: shipping\n  namespace: shop\n",
            ),
        ),
        ("config/dev/deployment.yaml", DEPLOYMENT.to_owned()),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let t = topology(&files);
    let file = "config/prod/namespaces/payments/deployment.yaml";
    assert_eq!(
        placed(&t, file, "shipping"),
        [("prod-eu".to_owned(), Some("shop".to_owned()))]
    );
    let hops = evidence(&t, file, "shipping", "prod-eu");
    assert!(
        hops.contains(&"clusters/prod-eu/root-sync.yaml:11 Config Sync RootSync root-sync syncs spec.git.dir config/prod (unstructured)".to_owned()),
        "{hops:?}"
    );
    assert!(placed(&t, "config/dev/deployment.yaml", "shipping").is_empty());
}

/// A RootSync with the default `sourceFormat` (hierarchy) reads its folder's namespaces; one
/// that reads an OCI image stands for it on its cluster.
#[test]
fn a_root_sync_reads_a_hierarchical_dir_and_an_oci_source_is_opaque() {
    let root_sync = "apiVersion: configsync.gke.io/v1
kind: RootSync
metadata:
  name: root-sync
  namespace: config-management-system
spec:
  git:
    repo: https://github.com/acme/platform
    dir: /acm
---
apiVersion: configsync.gke.io/v1
kind: RepoSync
metadata:
  name: team-a
  namespace: team-a
spec:
  sourceType: oci
  oci:
    image: us-docker.pkg.dev/acme/team-a/config:v1
";
    let files = [
        ("clusters/prod-eu/sync.yaml", root_sync.to_owned()),
        ("acm/system/repo.yaml", REPO.to_owned()),
        (
            "acm/namespaces/checkout/deployment.yaml",
            DEPLOYMENT.to_owned(),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let t = topology(&files);
    assert_eq!(
        placed(&t, "acm/namespaces/checkout/deployment.yaml", "shipping"),
        [("prod-eu".to_owned(), Some("checkout".to_owned()))]
    );
    let opaque = t["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .find(|p| p["kind"] == "RepoSync" && p["cluster"] == "prod-eu")
        .unwrap_or_else(|| panic!("the RepoSync stands for its image: {t:#}"));
    let last = opaque["evidence"]
        .as_array()
        .and_then(|e| e.last())
        .and_then(|e| e["note"].as_str())
        .unwrap_or("");
    assert!(
        last.contains("it syncs the OCI image us-docker.pkg.dev/acme/team-a/config:v1"),
        "{last}"
    );
    assert_eq!(t["summary"]["opaque"], 1, "{t:#}");
}

/// A legacy ConfigManagement lands on the cluster `clusterName` names and syncs `policyDir`
/// there; an unstructured `policyDir` is read as it is.
#[test]
fn a_config_management_syncs_its_policy_dir_to_its_cluster_name() {
    let files = [
        (
            "setup/prod.yaml",
            config_management("prod-us", "/acm-repos/prod-us", "unstructured"),
        ),
        ("acm-repos/prod-us/all.yaml", DEPLOYMENT.to_owned()),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let t = topology(&files);
    assert_eq!(
        placed(&t, "acm-repos/prod-us/all.yaml", "shipping"),
        [("prod-us".to_owned(), None)]
    );
    assert_eq!(
        placed(&t, "setup/prod.yaml", "config-management"),
        [("prod-us".to_owned(), None)]
    );
    let hops = evidence(&t, "acm-repos/prod-us/all.yaml", "shipping", "prod-us");
    assert_eq!(hops[0], "setup/prod.yaml:6 spec.clusterName=prod-us");
    assert!(
        hops.contains(&"setup/prod.yaml:10 Config Sync ConfigManagement config-management syncs spec.git.policyDir acm-repos/prod-us (unstructured)".to_owned()),
        "{hops:?}"
    );
    let prod_us = t["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|c| c["name"] == "prod-us")
        .expect("prod-us is a cluster");
    assert_eq!(prod_us["environment"], "production");
}

/// A NamespaceSelector on an abstract namespace folder's object: only the namespaces below it
/// whose labels match receive the object, with the selector in the evidence.
#[test]
fn a_namespace_selector_limits_the_namespaces_that_inherit_an_object() {
    let selector = "apiVersion: configmanagement.gke.io/v1
kind: NamespaceSelector
metadata:
  name: sre-supported
spec:
  selector:
    matchLabels:
      env: prod
";
    let binding = "apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: sre-admin
  annotations:
    configmanagement.gke.io/namespace-selector: sre-supported
roleRef:
  kind: ClusterRole
  name: admin
";
    let files = [
        (
            "setup/cm.yaml",
            config_management("ops", "acm", "hierarchy"),
        ),
        ("acm/system/repo.yaml", REPO.to_owned()),
        ("acm/namespaces/selector.yaml", selector.to_owned()),
        ("acm/namespaces/sre-rolebinding.yaml", binding.to_owned()),
        (
            "acm/namespaces/shop/shop-prod/namespace.yaml",
            namespace("shop-prod", "  labels:\n    env: prod\n"),
        ),
        (
            "acm/namespaces/shop/shop-qa/namespace.yaml",
            namespace("shop-qa", ""),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let t = topology(&files);
    assert_eq!(
        placed(&t, "acm/namespaces/sre-rolebinding.yaml", "sre-admin"),
        [("ops".to_owned(), Some("shop-prod".to_owned()))]
    );
    let hops = evidence(
        &t,
        "acm/namespaces/sre-rolebinding.yaml",
        "sre-admin",
        "ops",
    );
    assert!(
        hops.contains(&"acm/namespaces/selector.yaml:6 configmanagement.gke.io/namespace-selector: sre-supported picks namespace shop-prod (env=prod)".to_owned()),
        "{hops:?}"
    );
    // The NamespaceSelector is Config Sync's configuration, not an object of the cluster.
    assert!(placed(&t, "acm/namespaces/selector.yaml", "sre-supported").is_empty());
    assert_eq!(t["summary"]["manifests"], 4, "{t:#}");
}

const CLUSTER_SELECTOR: &str = "apiVersion: configmanagement.gke.io/v1
kind: ClusterSelector
metadata:
  name: selector-prod
spec:
  selector:
    matchLabels:
      environment: prod
";

/// Two clusters sync one repository; `clusterregistry/` labels them. An object with the
/// `cluster-selector` annotation lands only on the cluster whose labels its ClusterSelector
/// matches, one with `cluster-name-selector` only on the clusters it names.
#[test]
fn cluster_selectors_of_both_annotations_pick_clusters() {
    let cluster = |name: &str, env: &str| {
        format!("apiVersion: clusterregistry.k8s.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: {name}\n  labels:\n    environment: {env}\n")
    };
    let role = |name: &str, annotation: &str| {
        format!("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {name}\n  annotations:\n    {annotation}\n")
    };
    let files = [
        ("setup/eu.yaml", config_management("eu-1", "acm", "hierarchy")),
        ("setup/us.yaml", config_management("us-1", "acm", "hierarchy")),
        ("acm/system/repo.yaml", REPO.to_owned()),
        ("acm/clusterregistry/eu-1.yaml", cluster("eu-1", "prod")),
        ("acm/clusterregistry/us-1.yaml", cluster("us-1", "dev")),
        ("acm/clusterregistry/selector.yaml", CLUSTER_SELECTOR.to_owned()),
        (
            "acm/cluster/auditor.yaml",
            role(
                "auditor",
                "configmanagement.gke.io/cluster-selector: selector-prod",
            ),
        ),
        (
            "acm/cluster/debugger.yaml",
            role(
                "debugger",
                "configsync.gke.io/cluster-name-selector: us-1, us-2",
            ),
        ),
        (
            "acm/cluster/reader.yaml",
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\n"
                .to_owned(),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let t = topology(&files);
    assert_eq!(
        placed(&t, "acm/cluster/auditor.yaml", "auditor"),
        [("eu-1".to_owned(), None)]
    );
    assert_eq!(
        placed(&t, "acm/cluster/debugger.yaml", "debugger"),
        [("us-1".to_owned(), None)]
    );
    assert_eq!(
        placed(&t, "acm/cluster/reader.yaml", "reader"),
        [("eu-1".to_owned(), None), ("us-1".to_owned(), None)]
    );
    let hops = evidence(&t, "acm/cluster/auditor.yaml", "auditor", "eu-1");
    assert!(
        hops.contains(&"acm/clusterregistry/selector.yaml:6 configmanagement.gke.io/cluster-selector: selector-prod picks cluster eu-1 (environment=prod)".to_owned()),
        "{hops:?}"
    );
    let hops = evidence(&t, "acm/cluster/debugger.yaml", "debugger", "us-1");
    assert!(
        hops.contains(&"acm/cluster/debugger.yaml:6 configsync.gke.io/cluster-name-selector: us-1, us-2 picks cluster us-1".to_owned()),
        "{hops:?}"
    );
    // The clusters' labels say their environments.
    let env = |name: &str| {
        t["clusters"]
            .as_array()
            .expect("clusters")
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["environment"].clone())
    };
    assert_eq!(env("eu-1"), Some("production".into()));
    assert_eq!(env("us-1"), Some("non-production".into()));
    // us-2 is named, but no cluster here is known by that name.
    assert!(
        notes(&t).iter().any(|n| n.starts_with("acm/cluster/debugger.yaml:6 ClusterRole debugger: configsync.gke.io/cluster-name-selector names us-2, not a cluster known here")),
        "{:?}",
        notes(&t)
    );
}

/// A ClusterSelector that no known cluster's labels satisfy is a note at its selector, naming
/// it; the object that names it lands nowhere.
#[test]
fn a_cluster_selector_matching_no_known_cluster_is_a_note() {
    let files = [
        ("setup/cm.yaml", config_management("eu-1", "acm", "hierarchy")),
        ("acm/system/repo.yaml", REPO.to_owned()),
        ("acm/clusterregistry/selector.yaml", CLUSTER_SELECTOR.to_owned()),
        (
            "acm/cluster/auditor.yaml",
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: auditor\n  annotations:\n    configmanagement.gke.io/cluster-selector: selector-prod\n"
                .to_owned(),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let (_, report) = scan(&files);
    assert_eq!(
        at(&report, "unresolved-placement"),
        ["acm/clusterregistry/selector.yaml:6"]
    );
    let note = message(
        &report,
        "unresolved-placement",
        "acm/clusterregistry/selector.yaml:6",
    );
    assert!(
        note.starts_with("Config Sync ClusterSelector selector-prod (environment=prod) matches no cluster known here"),
        "{note}"
    );
    let t = topology(&files);
    assert!(placed(&t, "acm/cluster/auditor.yaml", "auditor").is_empty());
}

/// `clusters[].labels` and `annotations` of the config: an ApplicationSet clusters generator's
/// `matchLabels` picks the declared cluster (its annotation fills the template), and a Config
/// Sync ClusterSelector matches the same labels.
#[test]
fn declared_cluster_labels_are_matched_by_generators_and_cluster_selectors() {
    let config = "clusters:
  - name: prod-eu
    environment: production
    labels:
      environment: prod
      tier: gold
    annotations:
      region: europe-west1
  - name: eu-2
    labels:
      tier: bronze
      environment: staging
";
    let appset = "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: web
spec:
  generators:
    - clusters:
        selector:
          matchLabels:
            tier: gold
  template:
    metadata:
      name: 'web-{{name}}'
    spec:
      source:
        repoURL: https://github.com/acme/platform.git
        path: 'apps/web/{{metadata.annotations.region}}'
      destination:
        name: '{{name}}'
        namespace: web
";
    let files = [
        (".envfence.yaml", config.to_owned()),
        ("argocd/web.yaml", appset.to_owned()),
        ("apps/web/europe-west1/deployment.yaml", DEPLOYMENT.to_owned()),
        ("setup/cm.yaml", config_management("prod-eu", "acm", "hierarchy")),
        ("acm/system/repo.yaml", REPO.to_owned()),
        ("acm/clusterregistry/selector.yaml", CLUSTER_SELECTOR.to_owned()),
        (
            "acm/cluster/auditor.yaml",
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: auditor\n  annotations:\n    configmanagement.gke.io/cluster-selector: selector-prod\n"
                .to_owned(),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let t = topology(&files);
    assert_eq!(
        placed(&t, "apps/web/europe-west1/deployment.yaml", "shipping"),
        [("prod-eu".to_owned(), Some("web".to_owned()))]
    );
    let hops = evidence(
        &t,
        "apps/web/europe-west1/deployment.yaml",
        "shipping",
        "prod-eu",
    );
    assert!(
        hops.contains(&".envfence.yaml:2 cluster prod-eu matches the selector".to_owned()),
        "{hops:?}"
    );
    assert_eq!(
        placed(&t, "acm/cluster/auditor.yaml", "auditor"),
        [("prod-eu".to_owned(), None)]
    );
    // A label the config declares says the environment when `environment` does not.
    let eu_2 = t["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|c| c["name"] == "eu-2")
        .expect("eu-2");
    assert_eq!(eu_2["labels"]["tier"], "bronze");
    assert_eq!(eu_2["environment_reason"], "label environment=staging");
    assert!(notes(&t).is_empty(), "{:?}", notes(&t));
}

/// A RootSync that no cluster tree or deployer reaches runs on the one unnamed cluster, with a
/// note that says how to name it; a RootSync syncing the repository root (`dir: /`) of a
/// hierarchical repository reads it, though its `repo` is not known to be this one.
#[test]
fn an_unreached_root_sync_runs_on_the_unnamed_cluster_and_may_sync_the_root() {
    let root_sync = "apiVersion: configsync.gke.io/v1
kind: RootSync
metadata:
  name: root-sync
  namespace: config-management-system
spec:
  sourceFormat: hierarchy
  git:
    repo: https://github.com/acme/config
    dir: /
";
    let files = [
        ("bootstrap/root-sync.yaml", root_sync.to_owned()),
        ("system/repo.yaml", REPO.to_owned()),
        ("namespaces/checkout/deployment.yaml", DEPLOYMENT.to_owned()),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let t = topology(&files);
    assert_eq!(
        placed(&t, "namespaces/checkout/deployment.yaml", "shipping"),
        [("unnamed-cluster".to_owned(), Some("checkout".to_owned()))]
    );
    assert_eq!(
        notes(&t),
        ["bootstrap/root-sync.yaml:1 Config Sync RootSync root-sync is not inside a clusters/<name>/ tree and no deployer here applies it, so its cluster is not named: envfence places it on `unnamed-cluster` of unknown environment (name it with a `paths` rule for bootstrap/root-sync.yaml in .envfence.yaml)"]
    );
    let hops = evidence(
        &t,
        "namespaces/checkout/deployment.yaml",
        "shipping",
        "unnamed-cluster",
    );
    assert_eq!(
        hops[0],
        "bootstrap/root-sync.yaml:1 Config Sync RootSync root-sync (no cluster tree or deployer reaches it)"
    );
}

/// The objects a hierarchical repository's namespaces inherit are bounded by
/// `limits.expanded-objects`: past it, the scan says it is incomplete.
#[test]
fn inherited_objects_are_bounded_by_the_scan_budget() {
    let role = |name: &str| {
        format!("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: {name}\n")
    };
    let mut files: Vec<(String, String)> = vec![
        (
            ".envfence.yaml".into(),
            "limits:\n  expanded-objects: 5\n".into(),
        ),
        (
            "setup/cm.yaml".into(),
            config_management("ops-1", "acm", "hierarchy"),
        ),
        ("acm/system/repo.yaml".into(), REPO.to_owned()),
        ("acm/namespaces/a.yaml".into(), role("a")),
        ("acm/namespaces/b.yaml".into(), role("b")),
    ];
    for ns in ["team-1", "team-2", "team-3"] {
        files.push((
            format!("acm/namespaces/{ns}/namespace.yaml"),
            namespace(ns, ""),
        ));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let (code, report) = scan(&files);
    assert_eq!(code, Some(3), "{report:#}");
    let cut = report["incomplete"]
        .as_array()
        .expect("incomplete")
        .iter()
        .find(|c| c["file"] == "setup/cm.yaml")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(cut["budget"], "limits.expanded-objects");
    assert_eq!(
        cut["detail"],
        "the namespaces of the hierarchical repository acm/ receive more than 5 objects: 1 of its 3 namespace folders are placed, the rest are not"
    );
}
