//! Resolution breadth (issue 11): deployers whose payload lives elsewhere still place a
//! workload, clusters that hold production are production, Flux kubeconfig Secrets name one
//! cluster, ApplicationSet generators resolve as Argo CD does, and findings that share one
//! cause come once. Each test is a small repository written the way a user would.

mod common;

use common::{at, findings};

use common::{envfence, write_tree};
use serde_json::Value;

/// `scan --format json` of `files`: (exit code, report).
fn scan(files: &[(&str, &str)]) -> (Option<i32>, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(dir.path(), files);
    let out = envfence()
        .env_remove("GITHUB_REPOSITORY")
        .args(["scan", "-q", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    (out.status.code(), common::json_report(&out))
}

/// `topology --format json` of `files`.
fn topology(files: &[(&str, &str)]) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(dir.path(), files);
    let out = envfence()
        .env_remove("GITHUB_REPOSITORY")
        .args(["topology", "-q", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    serde_json::from_slice(&out.stdout).expect("json")
}

const PROD_CONFIG: &str = "clusters:
  - name: prod-eu
    server: https://prod-eu.k8s.example.com
    environment: production
";

#[test]
fn application_of_another_repository_on_production_is_an_opaque_error() {
    let app = "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web-feature-login
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://github.com/other-team/web.git
    targetRevision: feature/login
    path: deploy
  destination:
    server: https://prod-eu.k8s.example.com
    namespace: web
";
    let files = [(".envfence.yaml", PROD_CONFIG), ("argocd/web.yaml", app)];
    let (code, report) = scan(&files);
    assert_eq!(code, Some(1), "{report:#}");
    let errors = findings(&report, "nonprod-on-prod-cluster");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, "argocd/web.yaml:13");
    assert!(errors[0].1.contains("web-feature-login"), "{errors:?}");
    let t = topology(&files);
    let placement = t["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .find(|p| p["name"] == "web-feature-login")
        .expect("the Application stands for its payload");
    assert_eq!(placement["opaque"], true);
    assert_eq!(placement["cluster"], "prod-eu");
    assert!(
        placement["evidence"]
            .as_array()
            .expect("evidence")
            .iter()
            .any(|e| e["note"]
                .as_str()
                .is_some_and(|n| n.contains("were not read"))),
        "{placement:#}"
    );
}

#[test]
fn opaque_placement_takes_its_class_from_the_target_revision() {
    // Nothing in the name says feature: the revision `pr-482` does.
    let app = "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web
spec:
  source:
    repoURL: https://github.com/other-team/web.git
    targetRevision: pr-482
    path: deploy
  destination:
    server: https://prod-eu.k8s.example.com
    namespace: web
";
    let (code, report) = scan(&[(".envfence.yaml", PROD_CONFIG), ("argocd/web.yaml", app)]);
    assert_eq!(code, Some(1));
    let errors = findings(&report, "nonprod-on-prod-cluster");
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        ["argocd/web.yaml:11"]
    );
    assert!(errors[0].1.contains("pr-482"), "{errors:?}");
}

#[test]
fn explain_says_an_opaque_placement_was_not_read() {
    let app = "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web-preview
spec:
  source:
    repoURL: https://charts.example.com
    chart: web
    targetRevision: 1.2.3
  destination:
    server: https://prod-eu.k8s.example.com
";
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(
        dir.path(),
        &[(".envfence.yaml", PROD_CONFIG), ("argocd/web.yaml", app)],
    );
    let out = envfence()
        .arg("explain")
        .arg(dir.path().join("argocd/web.yaml"))
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("contents were not read"), "{text}");
    assert!(
        text.contains("Helm chart web from https://charts.example.com"),
        "{text}"
    );
}

#[test]
fn pull_request_generator_pointed_at_production_is_an_error() {
    for provider in [
        "github: {owner: acme, repo: web}",
        "gitlab: {project: '42'}",
        "bitbucketServer: {project: ACME, repo: web, api: https://bb.example.com}",
    ] {
        let appset = format!(
            "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: web-previews
spec:
  generators:
    - pullRequest:
        {provider}
  template:
    metadata:
      name: 'web-{{{{branch}}}}-{{{{number}}}}'
    spec:
      source:
        repoURL: https://github.com/acme/web.git
        targetRevision: '{{{{head_sha}}}}'
        path: deploy/{{{{branch}}}}
      destination:
        server: https://prod-eu.k8s.example.com
        namespace: 'web-pr-{{{{number}}}}'
"
        );
        let (code, report) = scan(&[
            (".envfence.yaml", PROD_CONFIG),
            ("argocd/previews.yaml", &appset),
        ]);
        assert_eq!(code, Some(1), "{provider}: {report:#}");
        assert_eq!(
            at(&report, "nonprod-on-prod-cluster"),
            ["argocd/previews.yaml:18"],
            "{provider}"
        );
    }
}

#[test]
fn pull_request_generator_in_a_matrix_takes_the_clusters_of_the_other_generator() {
    let appset = "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: previews
spec:
  generators:
    - matrix:
        generators:
          - list:
              elements:
                - cluster: prod-eu
                - cluster: dev-eu
          - pullRequest:
              github: {owner: acme, repo: web}
  template:
    metadata:
      name: 'web-{{number}}-{{cluster}}'
    spec:
      source:
        repoURL: https://github.com/acme/web.git
        path: deploy
      destination:
        name: '{{cluster}}'
        namespace: previews
";
    let (code, report) = scan(&[
        (".envfence.yaml", PROD_CONFIG),
        ("argocd/previews.yaml", appset),
    ]);
    assert_eq!(code, Some(1));
    let errors = findings(&report, "nonprod-on-prod-cluster");
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        ["argocd/previews.yaml:23"]
    );
    assert!(errors[0].1.contains("prod-eu"), "{errors:?}");
    assert!(!errors[0].1.contains("dev-eu"), "{errors:?}");
}

const FLUX_HUB_API: &str = "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: api
  namespace: live
spec:
  interval: 10m
  sourceRef:
    kind: GitRepository
    name: platform
  path: ./apps/api
  targetNamespace: live
  kubeConfig:
    secretRef:
      name: eu-west-kubeconfig
";
const FLUX_HUB_K6: &str = "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: k6-suite
  namespace: perf
spec:
  interval: 10m
  sourceRef:
    kind: GitRepository
    name: platform
  path: ./apps/k6
  targetNamespace: perf
  kubeConfig:
    secretRef:
      name: eu-west-kubeconfig
";
const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  template:
    spec:
      containers:
        - name: app
          image: example/app:1.0
";

#[test]
fn flux_kustomizations_sharing_a_kubeconfig_share_a_cluster() {
    let files = [
        ("hub/api.yaml", FLUX_HUB_API),
        ("hub/k6.yaml", FLUX_HUB_K6),
        ("apps/api/deployment.yaml", DEPLOYMENT),
        ("apps/k6/deployment.yaml", DEPLOYMENT),
    ];
    let (code, report) = scan(&files);
    // One cluster eu-west holds the live API, so it is production, and the load tests sent
    // through the same kubeconfig are an error at their path line.
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(at(&report, "nonprod-on-prod-cluster"), ["hub/k6.yaml:11"]);
    let t = topology(&files);
    let clusters: Vec<&str> = t["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(clusters.contains(&"eu-west"), "{clusters:?}");
    assert!(
        !clusters.contains(&"live") && !clusters.contains(&"perf"),
        "{clusters:?}"
    );
    let eu = t["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|c| c["name"] == "eu-west")
        .expect("eu-west");
    assert_eq!(eu["environment"], "production");
    // The undefined GitRepository was assumed to be this repository, and the evidence says so.
    let api = t["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .find(|p| p["file"] == "apps/api/deployment.yaml")
        .expect("placed although GitRepository platform is not defined here");
    assert!(
        api["evidence"]
            .as_array()
            .expect("evidence")
            .iter()
            .any(|e| e["note"].as_str().is_some_and(|n| n.contains("assumed"))),
        "{api:#}"
    );
}

#[test]
fn generic_kubeconfig_secret_names_fall_back_to_the_namespace() {
    let k = |name: &str, ns: &str, secret: &str| {
        format!(
            "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: {name}
  namespace: {ns}
spec:
  sourceRef: {{kind: GitRepository, name: flux-system}}
  path: ./apps/api
  kubeConfig:
    secretRef:
      name: {secret}
"
        )
    };
    let a = k("a", "staging", "cluster-kubeconfig");
    let b = k("b", "production", "kubeconfig");
    let c = k("c", "ops", "kubeconfig-prod-us");
    let t = topology(&[
        ("hub/a.yaml", &a),
        ("hub/b.yaml", &b),
        ("hub/c.yaml", &c),
        ("apps/api/deployment.yaml", DEPLOYMENT),
    ]);
    let mut clusters: Vec<&str> = t["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    clusters.sort_unstable();
    assert_eq!(clusters, ["prod-us", "production", "staging"]);
}

#[test]
fn argo_cd_local_cluster_holding_production_is_production() {
    let app = |name: &str, ns: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://github.com/acme/web.git
    path: deploy/web
  destination:
    server: https://kubernetes.default.svc
    namespace: {ns}
"
        )
    };
    let files = [
        ("apps/web-prod-us.yaml", app("web-prod-us", "web-prod-us")),
        ("apps/web-prod-eu.yaml", app("web-prod-eu", "web-prod-eu")),
        ("apps/web-qa.yaml", app("web-qa", "web-qa")),
        ("apps/web-staging.yaml", app("web-staging", "web-staging")),
        ("deploy/web/deployment.yaml", DEPLOYMENT.to_owned()),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let (code, report) = scan(&files);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        ["apps/web-qa.yaml:12", "apps/web-staging.yaml:12"]
    );
    let (_, message) = &findings(&report, "nonprod-on-prod-cluster")[0];
    assert!(message.contains("in-cluster"), "{message}");
    // Mixed-cluster and isolation warnings: one per non-production deployer.
    assert_eq!(
        at(&report, "mixed-environment-cluster"),
        ["apps/web-qa.yaml:12", "apps/web-staging.yaml:12"]
    );
    let isolation = at(&report, "no-network-isolation");
    assert_eq!(isolation.len(), 4, "{isolation:?}");
}

#[test]
fn a_cluster_with_no_production_workload_stays_unknown() {
    let app = "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web-qa
spec:
  source:
    repoURL: https://github.com/acme/web.git
    path: deploy/web
  destination:
    server: https://kubernetes.default.svc
    namespace: web-qa
";
    let (code, report) = scan(&[("apps/web-qa.yaml", app), ("deploy/web/d.yaml", DEPLOYMENT)]);
    assert_eq!(code, Some(0), "{report:#}");
}

#[test]
fn empty_clusters_generator_includes_the_local_cluster() {
    let other = "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: tooling
spec:
  source:
    repoURL: https://github.com/acme/platform.git
    path: tooling
  destination:
    server: https://kubernetes.default.svc
    namespace: tooling
";
    let appset = "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: guestbook
spec:
  generators:
    - clusters: {}
  template:
    metadata:
      name: '{{name}}-guestbook'
    spec:
      source:
        repoURL: https://github.com/acme/platform.git
        path: guestbook
      destination:
        server: '{{server}}'
        namespace: guestbook
";
    let t = topology(&[
        // Runs first (file order), so `in-cluster` exists before the ApplicationSet runs.
        ("argocd/a-tooling.yaml", other),
        ("argocd/guestbook.yaml", appset),
        ("tooling/d.yaml", DEPLOYMENT),
        ("guestbook/d.yaml", DEPLOYMENT),
    ]);
    let placement = t["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .find(|p| p["file"] == "guestbook/d.yaml")
        .unwrap_or_else(|| panic!("guestbook is placed: {t:#}"));
    assert_eq!(placement["cluster"], "in-cluster");
    assert_eq!(placement["deployer"]["name"], "in-cluster-guestbook");
}

#[test]
fn cluster_selector_matching_nothing_is_a_note_that_names_it() {
    let appset = "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: addons
spec:
  generators:
    - clusters:
        selector:
          matchLabels:
            tier: edge
  template:
    metadata:
      name: '{{name}}-addons'
    spec:
      source:
        repoURL: https://github.com/acme/platform.git
        path: addons
      destination:
        server: '{{server}}'
";
    let (code, report) = scan(&[
        ("argocd/addons.yaml", appset),
        ("addons/d.yaml", DEPLOYMENT),
    ]);
    assert_eq!(code, Some(0));
    let notes = findings(&report, "unresolved-placement");
    let note = notes
        .iter()
        .find(|(l, _)| l == "argocd/addons.yaml:8")
        .unwrap_or_else(|| panic!("{notes:?}"));
    assert!(note.1.contains("tier=edge"), "{note:?}");
    assert!(note.1.contains("matches no cluster"), "{note:?}");
}

#[test]
fn git_generator_reading_another_repository_is_a_note() {
    let appset = "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: tenants
spec:
  generators:
    - git:
        repoURL: https://github.com/acme/tenants.git
        revision: HEAD
        directories:
          - path: tenants/*
  template:
    metadata:
      name: '{{path.basename}}'
    spec:
      source:
        repoURL: https://github.com/acme/tenants.git
        path: '{{path}}'
      destination:
        server: https://kubernetes.default.svc
";
    let (code, report) = scan(&[("argocd/tenants.yaml", appset)]);
    assert_eq!(code, Some(0));
    let notes = findings(&report, "unresolved-placement");
    let note = notes
        .iter()
        .find(|(l, _)| l == "argocd/tenants.yaml:7")
        .unwrap_or_else(|| panic!("{notes:?}"));
    assert!(
        note.1.contains("https://github.com/acme/tenants.git"),
        "{note:?}"
    );
}

#[test]
fn list_element_with_name_and_url_is_one_cluster() {
    let appset = "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: guestbook
spec:
  generators:
    - list:
        elements:
          - cluster: cluster1
            url: https://api.cluster1.example.com
  template:
    metadata:
      name: '{{cluster}}-guestbook'
    spec:
      source:
        repoURL: https://github.com/acme/platform.git
        path: guestbook
      destination:
        server: '{{url}}'
        namespace: guestbook
";
    let other = "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: addons
spec:
  source:
    repoURL: https://github.com/acme/platform.git
    path: addons
  destination:
    name: cluster1
";
    let t = topology(&[
        ("argocd/guestbook.yaml", appset),
        ("argocd/addons.yaml", other),
        ("guestbook/d.yaml", DEPLOYMENT),
        ("addons/d.yaml", DEPLOYMENT),
    ]);
    let clusters: Vec<(&str, &str)> = t["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or(""),
                c["server"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        clusters,
        [("cluster1", "https://api.cluster1.example.com")],
        "{t:#}"
    );
}

#[test]
fn folder_conventions_need_an_environment_word_and_know_stages() {
    let t = topology(&[
        ("apps/web/overlays/blue/d.yaml", DEPLOYMENT),
        ("apps/web/overlays/green/d.yaml", DEPLOYMENT),
        ("apps/web/overlays/default/d.yaml", DEPLOYMENT),
        ("kargo/stages/uat/d.yaml", DEPLOYMENT),
    ]);
    let clusters: Vec<&str> = t["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(clusters, ["uat"], "{t:#}");
}

#[test]
fn non_production_components_and_patches_are_signals() {
    let flux = "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: web
  namespace: flux-system
spec:
  sourceRef: {kind: GitRepository, name: flux-system}
  path: ./apps/web/eu
";
    for (kustomization, extra) in [
        (
            "resources: [../base]\ncomponents: [../../../variants/non-prod]\n",
            (
                "variants/non-prod/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n  - path: replicas.yaml\n",
            ),
        ),
        (
            "resources: [../base]\npatches:\n  - path: ../../../variants/non-prod/replicas.yaml\n",
            ("variants/README.md", "variants"),
        ),
    ] {
        let patch = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 1\n";
        let (code, report) = scan(&[
            ("clusters/production/web.yaml", flux),
            ("apps/web/base/kustomization.yaml", "resources: [d.yaml]\n"),
            ("apps/web/base/d.yaml", DEPLOYMENT),
            ("apps/web/eu/kustomization.yaml", kustomization),
            ("variants/non-prod/replicas.yaml", patch),
            extra,
        ]);
        assert_eq!(code, Some(1), "{kustomization}: {report:#}");
        assert_eq!(
            at(&report, "nonprod-on-prod-cluster"),
            ["clusters/production/web.yaml:8"],
            "{kustomization}"
        );
    }
}

#[test]
fn config_clusters_may_omit_the_environment() {
    let config = "clusters:
  - name: eu-1
    server: https://prod-eu.k8s.example.com
";
    let app = "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web-dev
spec:
  source:
    repoURL: https://github.com/acme/web.git
    path: deploy
  destination:
    name: eu-1
";
    let (code, report) = scan(&[
        (".envfence.yaml", config),
        ("argocd/web.yaml", app),
        ("deploy/d.yaml", DEPLOYMENT),
    ]);
    // Named in the config, production from its server URL.
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        ["argocd/web.yaml:10"]
    );
}

#[test]
fn network_isolation_is_one_finding_per_deployer_listing_namespaces() {
    let prod = "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: shop-prod
spec:
  source:
    repoURL: https://github.com/acme/shop.git
    path: shop
  destination:
    name: prod-eu
";
    let dev = "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: shop-dev
spec:
  source:
    repoURL: https://github.com/acme/shop.git
    path: shop-dev
  destination:
    name: prod-eu
";
    let ns = |name: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {name}\n"
        )
    };
    let (a, b, c) = (ns("cart"), ns("orders"), ns("dev-tools"));
    let (_, report) = scan(&[
        (".envfence.yaml", PROD_CONFIG),
        ("argocd/prod.yaml", prod),
        ("argocd/dev.yaml", dev),
        ("shop/cart.yaml", &a),
        ("shop/orders.yaml", &b),
        ("shop-dev/tools.yaml", &c),
    ]);
    let isolation = findings(&report, "no-network-isolation");
    let lines: Vec<&str> = isolation.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        lines,
        ["argocd/dev.yaml:10", "argocd/prod.yaml:10"],
        "{isolation:?}"
    );
    let prod_message = &isolation[1].1;
    assert!(
        prod_message.contains("namespaces cart, orders on mixed cluster")
            && prod_message.contains("no default-deny NetworkPolicy for ingress and egress"),
        "{prod_message}"
    );
}

#[test]
fn repository_urls_decide_which_repo_url_is_this_one() {
    // repoURL is this repository (config), but the path is missing: a note, not an opaque
    // placement. Through the origin remote the same.
    let app = "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web-dev
spec:
  source:
    repoURL: git@github.com:acme/platform.git
    path: deploy/missing
  destination:
    server: https://prod-eu.k8s.example.com
";
    let config = format!("{PROD_CONFIG}repository:\n  urls: [https://GitHub.com/acme/platform]\n");
    let (code, report) = scan(&[(".envfence.yaml", &config), ("argocd/web.yaml", app)]);
    assert_eq!(code, Some(0), "{report:#}");
    let notes = findings(&report, "unresolved-placement");
    assert!(
        notes
            .iter()
            .any(|(l, m)| l == "argocd/web.yaml:8" && m.contains("repository.urls")),
        "{notes:?}"
    );
    let origin = "[core]\n\tbare = false\n[remote \"origin\"]\n\turl = https://github.com/acme/platform.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n";
    let (code, report) = scan(&[
        (".envfence.yaml", PROD_CONFIG),
        (".git/config", origin),
        ("argocd/web.yaml", app),
    ]);
    assert_eq!(code, Some(0), "{report:#}");
    let notes = findings(&report, "unresolved-placement");
    assert!(
        notes
            .iter()
            .any(|(l, m)| l == "argocd/web.yaml:8" && m.contains("origin")),
        "{notes:?}"
    );
    // Without either, the same Application is another repository's: an opaque error.
    let (code, report) = scan(&[(".envfence.yaml", PROD_CONFIG), ("argocd/web.yaml", app)]);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        ["argocd/web.yaml:10"]
    );
}
