//! ApplicationSet generator `values` (issue 26): a generator's `values` are rendered with each
//! parameter set's own parameters (a cluster's name and labels, a git directory's path) and
//! offered to the template as `values.<key>` (`.values.<key>` with `goTemplate`). Each test is
//! a small repository written the way a user would.

mod common;

use common::{findings, run_on_files as run};

use serde_json::Value;

/// The clusters each file is placed on, as "file@cluster", sorted.
fn placed(topology: &Value) -> Vec<String> {
    let mut out: Vec<String> = topology["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .map(|p| {
            format!(
                "{}@{}",
                p["file"].as_str().unwrap_or(""),
                p["cluster"].as_str().unwrap_or("")
            )
        })
        .collect();
    out.sort();
    out
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          image: registry.example.com/web:1.4.2
";

/// A cluster Secret named `name` with the labels `labels` (already indented).
fn cluster_secret(name: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1
kind: Secret
metadata:
  name: {name}
  namespace: argocd
  labels:
    argocd.argoproj.io/secret-type: cluster
{labels}type: Opaque
stringData:
  name: {name}
  server: https://{name}.k8s.example.com
"
    )
}

/// The repository: two clusters (prod-eu labelled production), an ApplicationSet `appset`
/// at `argocd/web.yaml`, and one folder per overlay under `apps/web/`.
fn repository(appset: &str, prod_overlay: &str) -> Vec<(String, String)> {
    let mut files = vec![
        ("argocd/web.yaml".to_owned(), appset.to_owned()),
        (
            "clusters/prod-eu.yaml".to_owned(),
            cluster_secret(
                "prod-eu",
                &format!("    env: production\n    overlay: {prod_overlay}\n"),
            ),
        ),
        (
            "clusters/staging-eu.yaml".to_owned(),
            cluster_secret("staging-eu", "    env: staging\n    overlay: staging\n"),
        ),
    ];
    for overlay in ["production", "staging", "feature-login"] {
        files.push((
            format!("apps/web/{overlay}/deployment.yaml"),
            DEPLOYMENT.to_owned(),
        ));
    }
    files
}

fn as_refs(files: &[(String, String)]) -> Vec<(&str, &str)> {
    files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect()
}

/// Default templating: `{{values.key}}`, values that read the cluster's labels.
const APPSET: &str = "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: web
  namespace: argocd
spec:
  generators:
    - clusters:
        selector:
          matchLabels:
            argocd.argoproj.io/secret-type: cluster
        values:
          sourceRoot: apps/web
          environment: '{{metadata.labels.overlay}}'
  template:
    metadata:
      name: 'web-{{name}}'
    spec:
      project: default
      source:
        repoURL: https://github.com/acme/gitops.git
        path: '{{values.sourceRoot}}/{{values.environment}}'
      destination:
        name: '{{name}}'
        namespace: web
";

/// The same with `goTemplate: true`: `{{.values.key}}`, values that read `.metadata.labels`.
const GO_APPSET: &str = "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: web
  namespace: argocd
spec:
  goTemplate: true
  goTemplateOptions: [\"missingkey=error\"]
  generators:
    - clusters:
        selector:
          matchLabels:
            argocd.argoproj.io/secret-type: cluster
        values:
          sourceRoot: apps/web
          environment: '{{ index .metadata.labels \"overlay\" }}'
  template:
    metadata:
      name: 'web-{{.name}}'
    spec:
      project: default
      source:
        repoURL: https://github.com/acme/gitops.git
        path: '{{.values.sourceRoot}}/{{.values.environment}}'
      destination:
        name: '{{.name}}'
        namespace: web
";

#[test]
fn cluster_values_resolve_each_clusters_path() {
    for appset in [APPSET, GO_APPSET] {
        let files = repository(appset, "production");
        let (code, topology) = run("topology", &as_refs(&files));
        assert_eq!(code, Some(0), "{topology:#}");
        assert_eq!(
            placed(&topology),
            [
                "apps/web/production/deployment.yaml@prod-eu",
                "apps/web/staging/deployment.yaml@staging-eu",
            ],
            "{topology:#}"
        );
        assert!(
            topology["unresolved"]
                .as_array()
                .expect("unresolved")
                .is_empty(),
            "{topology:#}"
        );
        // Each cluster's own value is in the evidence, at its line of the ApplicationSet.
        let prod = topology["placements"]
            .as_array()
            .expect("placements")
            .iter()
            .find(|p| p["cluster"] == "prod-eu")
            .expect("placed on prod-eu");
        let value_line = if appset == APPSET { 14 } else { 16 };
        assert!(
            prod["evidence"]
                .as_array()
                .expect("evidence")
                .iter()
                .any(|e| {
                    e["file"] == "argocd/web.yaml"
                        && e["line"] == value_line
                        && e["note"] == "values.environment=production"
                }),
            "{prod:#}"
        );
        // Production on production, staging on staging: nothing to say.
        let (code, report) = run("scan", &as_refs(&files));
        assert_eq!(code, Some(0), "{report:#}");
        assert!(
            findings(&report, "nonprod-on-prod-cluster").is_empty(),
            "{report:#}"
        );
    }
}

#[test]
fn a_feature_path_for_the_production_cluster_is_an_error_at_its_destination() {
    for appset in [APPSET, GO_APPSET] {
        let files = repository(appset, "feature-login");
        let (code, report) = run("scan", &as_refs(&files));
        assert_eq!(code, Some(1), "{report:#}");
        let errors = findings(&report, "nonprod-on-prod-cluster");
        let destination = if appset == APPSET { 24 } else { 26 };
        assert_eq!(
            errors.iter().map(|(at, _)| at.as_str()).collect::<Vec<_>>(),
            [format!("argocd/web.yaml:{destination}")],
            "{errors:?}"
        );
        assert!(
            errors[0].1.contains("web-prod-eu") && errors[0].1.contains("apps/web/feature-login"),
            "{errors:?}"
        );
        // The staging cluster's staging path stays silent.
        assert!(
            !report["findings"]
                .as_array()
                .expect("findings")
                .iter()
                .any(|f| f["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("staging-eu"))
                    && f["rule"] != "unresolved-placement"),
            "{report:#}"
        );
    }
}

#[test]
fn git_directory_values_read_the_path() {
    let appset = "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: web
spec:
  generators:
    - git:
        repoURL: https://github.com/acme/gitops.git
        revision: HEAD
        directories:
          - path: apps/web/*
        values:
          cluster: 'prod-{{path.basename}}'
  template:
    metadata:
      name: 'web-{{path.basename}}'
    spec:
      source:
        repoURL: https://github.com/acme/gitops.git
        path: '{{path}}'
      destination:
        name: '{{values.cluster}}'
        namespace: web
";
    let files = [
        ("argocd/web.yaml", appset),
        (
            ".envfence.yaml",
            "clusters:\n  - name: prod-eu\n    environment: production\n  - name: prod-us\n    environment: production\n",
        ),
        ("apps/web/eu/deployment.yaml", DEPLOYMENT),
        ("apps/web/us/deployment.yaml", DEPLOYMENT),
    ];
    let (_, topology) = run("topology", &files);
    assert_eq!(
        placed(&topology),
        [
            "apps/web/eu/deployment.yaml@prod-eu",
            "apps/web/us/deployment.yaml@prod-us",
        ],
        "{topology:#}"
    );
}

#[test]
fn a_value_the_local_cluster_cannot_render_is_a_note_not_a_guess() {
    // The local cluster has no labels: its `environment` value cannot be known.
    let appset = APPSET.replace(
        "        selector:\n          matchLabels:\n            argocd.argoproj.io/secret-type: cluster\n",
        "",
    );
    let files = repository(&appset, "production");
    let (_, topology) = run("topology", &as_refs(&files));
    let unresolved = topology["unresolved"].as_array().expect("unresolved");
    assert_eq!(unresolved.len(), 1, "{topology:#}");
    assert!(
        unresolved[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("`{{values.environment}}`")),
        "{topology:#}"
    );
    assert_eq!(placed(&topology).len(), 2, "{topology:#}");
}
