//! Local Helm charts rendered with the real `helm template`: placements, locations, notes,
//! and the safety rules (no symlink out of the repository, no program from the repository).
//! Each test needs helm: without it, it says "skipped: helm not found" (and fails when
//! `CI=true`, where `.ci/run` installs a pinned helm).

mod common;

use std::path::{Path, PathBuf};

use common::{envfence, helm_for_tests, json_report, write_tree};

const CHART: &str = "apiVersion: v2\nname: web\nversion: 0.1.0\n";

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels:
    app: web
spec:
  template:
    spec:
      containers:
        - name: web
          image: "nginx:{{ .Values.tag }}"
          env:
            - name: API_URL
              value: {{ .Values.apiUrl | quote }}
"#;

fn scan_json(repo: &Path, helm: &Path) -> serde_json::Value {
    let out = envfence()
        .env("ENVFENCE_HELM", helm)
        .args(["scan", "--quiet", "--fail-on", "never", "--format", "json"])
        .arg(repo)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_report(&out)
}

fn findings<'a>(report: &'a serde_json::Value, rule: &str) -> Vec<&'a serde_json::Value> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"] == rule)
        .collect()
}

fn notes(report: &serde_json::Value) -> Vec<String> {
    findings(report, "unresolved-placement")
        .into_iter()
        .map(|f| f["message"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// An Argo CD Application of a local chart: the chart renders with the Application's value
/// files, and its objects land on the Application's cluster, located at their templates.
#[test]
fn argo_application_of_a_local_chart_is_rendered_and_placed() {
    let Some(helm) = helm_for_tests() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(
        dir.path(),
        &[
            (
                ".envfence.yaml",
                "clusters:\n  - name: prod-eu\n    environment: production\n",
            ),
            ("charts/web/Chart.yaml", CHART),
            (
                "charts/web/values.yaml",
                "tag: stable\napiUrl: https://api.example.com\n",
            ),
            ("charts/web/values-qa.yaml", "tag: qa\n"),
            ("charts/web/templates/deployment.yaml", DEPLOYMENT),
            (
                "apps/web-qa.yaml",
                r#"apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web-qa
spec:
  destination:
    name: prod-eu
    namespace: web
  source:
    repoURL: https://example.com/repo.git
    path: charts/web
    helm:
      valueFiles:
        - values-qa.yaml
"#,
            ),
        ],
    );
    let report = scan_json(dir.path(), &helm);
    let errors = findings(&report, "nonprod-on-prod-cluster");
    assert_eq!(errors.len(), 1, "{report:#}");
    let e = errors[0];
    // A non-production deployer is the thing to change: the finding is at the Application,
    // and the rendered object, at its template, is in the evidence.
    assert_eq!(e["file"], "apps/web-qa.yaml");
    let evidence = e["evidence"].to_string();
    assert!(evidence.contains("charts/web/values-qa.yaml"), "{evidence}");
    assert!(
        evidence.contains("charts/web/templates/deployment.yaml"),
        "{evidence}"
    );
    assert!(
        evidence.contains("helm template web-qa charts/web -n web"),
        "{evidence}"
    );
    // The chart was rendered: the old "does not render templates" note is gone.
    assert!(
        notes(&report)
            .iter()
            .all(|n| !n.contains("does not render")),
        "{:?}",
        notes(&report)
    );
    assert_eq!(report["summary"]["placed"], 1);
}

/// A chart no deployer installs, with `values-<env>.yaml` files: rendered once per file onto
/// cluster `<env>`. An Application that only the production values file names is an error at
/// that values line; `values-eqiad.yaml` names a datacentre, not an environment.
#[test]
fn values_env_charts_render_onto_their_cluster_at_the_values_line() {
    let Some(helm) = helm_for_tests() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let template = r#"{{- range .Values.apps }}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {{ .name }}
spec:
  destination:
    server: https://kubernetes.default.svc
    namespace: apps
  source:
    repoURL: https://example.com/repo.git
    path: charts/web
{{- end }}
"#;
    write_tree(
        dir.path(),
        &[
            (
                "charts/app-config/Chart.yaml",
                "apiVersion: v2\nname: app-config\nversion: 1.0.0\n",
            ),
            ("charts/app-config/values.yaml", "apps: []\n"),
            (
                "charts/app-config/values-production.yaml",
                "apps:\n  - name: frontend\n  - name: integration-tests\n",
            ),
            (
                "charts/app-config/values-staging.yaml",
                "apps:\n  - name: frontend\n",
            ),
            (
                "charts/app-config/values-eqiad.yaml",
                "apps:\n  - name: eqiad-only\n",
            ),
            ("charts/app-config/templates/apps.yaml", template),
            ("charts/web/Chart.yaml", CHART),
            (
                "charts/web/values.yaml",
                "tag: stable\napiUrl: https://api.example.com\n",
            ),
            ("charts/web/templates/deployment.yaml", DEPLOYMENT),
        ],
    );
    let report = scan_json(dir.path(), &helm);
    let errors = findings(&report, "nonprod-on-prod-cluster");
    assert_eq!(errors.len(), 1, "{report:#}");
    let e = errors[0];
    assert_eq!(e["file"], "charts/app-config/values-production.yaml");
    assert_eq!(e["line"], 3);
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("integration-tests"),
        "{e:#}"
    );
    let evidence = e["evidence"].to_string();
    assert!(
        evidence.contains("values file values-production.yaml names cluster production"),
        "{evidence}"
    );
    let text = report.to_string();
    assert!(
        !text.contains("eqiad-only"),
        "values-eqiad.yaml is not an environment"
    );
}

/// A chart that reads a file through a symlink out of the repository is not rendered, and
/// nothing of the file appears in any output.
#[test]
fn a_chart_with_a_symlink_out_of_the_repository_is_not_rendered() {
    let Some(helm) = helm_for_tests() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(
        dir.path(),
        &[
            ("leak/Chart.yaml", "apiVersion: v2\nname: leak\nversion: 0.1.0\n"),
            ("leak/values-production.yaml", "x: 1\n"),
            (
                "leak/templates/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leak\ndata:\n  passwd: {{ .Files.Get \"files/passwd\" | quote }}\n",
            ),
        ],
    );
    std::fs::create_dir_all(dir.path().join("leak/files")).expect("mkdir");
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("leak/files/passwd"))
        .expect("symlink");
    for format in ["json", "text", "sarif", "markdown"] {
        let out = envfence()
            .env("ENVFENCE_HELM", &helm)
            .args(["scan", "--quiet", "--fail-on", "never", "--format", format])
            .arg(dir.path())
            .output()
            .expect("runs");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !all.contains("root:"),
            "{format}: /etc/passwd leaked:\n{all}"
        );
        if format == "json" {
            let report = json_report(&out);
            assert!(
                notes(&report).iter().any(
                    |n| n.contains("leak/files/passwd is a symlink that leaves the repository")
                ),
                "{:?}",
                notes(&report)
            );
            assert_eq!(report["summary"]["placed"], 0);
        }
    }
}

/// A dependency that is not vendored under `charts/` is a note that says how to vendor it.
#[test]
fn a_missing_dependency_is_a_note() {
    let Some(helm) = helm_for_tests() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(
        dir.path(),
        &[
            (
                "app/Chart.yaml",
                "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: redis\n    version: 1.0.0\n    repository: https://charts.example.com\n",
            ),
            ("app/values-staging.yaml", "x: 1\n"),
            ("app/templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"),
        ],
    );
    let report = scan_json(dir.path(), &helm);
    assert!(
        notes(&report).iter().any(
            |n| n.contains("dependency redis is not vendored; run `helm dependency build app`")
        ),
        "{:?}",
        notes(&report)
    );
}

/// Without rendering, the chart stays opaque and a note says how to render it; the summary
/// names the helm it used when it used one.
#[test]
fn helm_off_keeps_the_chart_opaque_with_a_note() {
    let Some(helm) = helm_for_tests() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(
        dir.path(),
        &[
            ("charts/web/Chart.yaml", CHART),
            ("charts/web/values-production.yaml", "tag: a\napiUrl: x\n"),
            ("charts/web/templates/deployment.yaml", DEPLOYMENT),
        ],
    );
    let off = envfence()
        .args([
            "scan",
            "--quiet",
            "--fail-on",
            "never",
            "--helm",
            "off",
            "--format",
            "json",
        ])
        .arg(dir.path())
        .output()
        .expect("runs");
    let report = json_report(&off);
    assert!(
        notes(&report)
            .iter()
            .any(|n| n == "chart charts/web is not rendered: chart rendering is off (--helm off or ENVFENCE_HELM=off)"),
        "{:?}",
        notes(&report)
    );
    let text = envfence()
        .args(["scan", "--quiet", "--fail-on", "never", "--helm"])
        .arg(&helm)
        .arg(dir.path())
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&text.stdout);
    let line = "Rendered local Helm charts with helm v3.";
    assert_eq!(stdout.matches(line).count(), 1, "{stdout}");
    assert!(
        stdout.contains(&format!("at {}: 1 helm template run", helm.display())),
        "{stdout}"
    );
}

/// `--helm` naming something that is not helm is a usage error; a `helm` inside the scanned
/// repository is never run, and the config cannot name a binary.
#[test]
fn helm_binaries_come_from_the_user_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(
        dir.path(),
        &[(
            "a.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
        )],
    );
    let missing = envfence()
        .args(["scan", "--quiet", "--helm", "/nonexistent/helm"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--helm /nonexistent/helm"));
    let marker = dir.path().join("ran");
    let script = format!("#!/bin/sh\ntouch {}\necho v3.0.0\n", marker.display());
    write_tree(dir.path(), &[("bin/helm", &script)]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.path().join("bin/helm"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let inside = envfence()
        .args(["scan", "--quiet", "--helm"])
        .arg(dir.path().join("bin/helm"))
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(inside.status.code(), Some(2));
    let path = format!(
        "{}:{}",
        dir.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let on_path = envfence()
        .env_remove("ENVFENCE_HELM")
        .env("PATH", path)
        .args(["scan", "--quiet", "--fail-on", "never"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(on_path.status.success());
    assert!(!marker.exists(), "the repository's helm was run");
    write_tree(
        dir.path(),
        &[(".envfence.yaml", "helm:\n  binary: bin/helm\n")],
    );
    let config = envfence()
        .args(["scan", "--quiet"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(config.status.code(), Some(2));
}

fn corpus(name: &str) -> Option<PathBuf> {
    let dir = common::corpora()?.join(name);
    dir.is_dir().then_some(dir)
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk");
        let rel = entry.path().strip_prefix(from).expect("inside");
        let target = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// End to end on real repositories: argocd-example-apps places helm-guestbook's objects, and
/// in a copy of govuk-helm-charts an integration-test Application planted in
/// `values-production.yaml` is an error at that line, with the values file in the evidence.
#[test]
fn corpora_render_through_their_deployers() {
    let Some(helm) = helm_for_tests() else { return };
    if let Some(dir) = corpus("argoproj__argocd-example-apps") {
        let report = scan_json(&dir, &helm);
        let out = envfence()
            .env("ENVFENCE_HELM", &helm)
            .args(["topology", "--quiet"])
            .arg(&dir)
            .output()
            .expect("runs");
        let topology = String::from_utf8_lossy(&out.stdout);
        assert!(
            topology
                .contains("helm-guestbook/templates/deployment.yaml:1  Deployment/helm-guestbook"),
            "{topology}"
        );
        assert!(report["summary"]["placed"].as_u64() >= Some(2));
    }
    let Some(govuk) = corpus("alphagov__govuk-helm-charts") else {
        eprintln!("skipped: govuk-helm-charts corpus not found");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&govuk, dir.path());
    let values = dir.path().join("charts/app-config/values-production.yaml");
    let text = std::fs::read_to_string(&values).expect("values");
    let planted = "govukApplications:\n  - name: integration-test-runner\n";
    let text = text.replacen("govukApplications:\n", planted, 1);
    std::fs::write(&values, &text).expect("write");
    let line = text
        .lines()
        .position(|l| l == "  - name: integration-test-runner")
        .expect("planted")
        + 1;
    let report = scan_json(dir.path(), &helm);
    let planted: Vec<_> = findings(&report, "nonprod-on-prod-cluster")
        .into_iter()
        .filter(|f| {
            f["message"]
                .as_str()
                .unwrap_or("")
                .contains("integration-test-runner")
        })
        .collect();
    assert_eq!(planted.len(), 1, "{report:#}");
    assert_eq!(planted[0]["severity"], "error");
    assert_eq!(
        planted[0]["file"],
        "charts/app-config/values-production.yaml"
    );
    assert_eq!(planted[0]["line"], line);
    // Each environment's Applications are on their own cluster, from their values file.
    let evidence = report["findings"].to_string();
    for env in ["integration", "staging", "production"] {
        assert!(
            evidence.contains(&format!(
                "values file values-{env}.yaml names cluster {env}"
            )),
            "{env}"
        );
    }
}

const DB_DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  template:
    spec:
      containers:
        - name: api
          image: "api:{{ .Values.tag }}"
          env:
            - name: DB_URL
              value: {{ .Values.dbUrl | quote }}
            - name: CACHE_URL
              value: {{ printf "redis://cache.%s.example.com:6379" .Values.cacheEnv | quote }}
"#;

const QA_CLUSTER_CONFIG: &str = "clusters:\n  - name: qa-eu\n    environment: non-production\nenvironments:\n  production:\n    hosts:\n      - db.prod.example.com\n      - cache.prod.example.com\n";

/// An Argo CD Application of the `api` chart on the QA cluster, with `helm:` as given.
fn qa_application(name: &str, helm: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\nspec:\n  destination:\n    name: qa-eu\n    namespace: api\n  source:\n    repoURL: https://example.com/repo.git\n    path: charts/api\n    helm:\n{helm}"
    )
}

fn api_chart(extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = vec![
        (".envfence.yaml", QA_CLUSTER_CONFIG),
        (
            "charts/api/Chart.yaml",
            "apiVersion: v2\nname: api\nversion: 0.1.0\n",
        ),
        (
            "charts/api/values.yaml",
            "tag: stable\ndbUrl: postgres://db.example.com/x\ncacheEnv: dev\n",
        ),
        ("charts/api/templates/deployment.yaml", DB_DEPLOYMENT),
    ];
    files.extend_from_slice(extra);
    write_tree(dir.path(), &files);
    dir
}

/// The finding of `rule` about env `name`, exactly one.
fn about_env<'a>(report: &'a serde_json::Value, rule: &str, name: &str) -> &'a serde_json::Value {
    let matching: Vec<_> = findings(report, rule)
        .into_iter()
        .filter(|f| f["message"].as_str().unwrap_or("").contains(name))
        .collect();
    assert_eq!(matching.len(), 1, "{report:#}");
    matching[0]
}

/// A production URL that a values file sets: the finding is at that values line, and the
/// template line that rendered it is in the evidence.
#[test]
fn a_rendered_value_points_at_the_values_file_line_that_sets_it() {
    let Some(helm) = helm_for_tests() else { return };
    let app = qa_application("api-qa", "      valueFiles:\n        - values-qa.yaml\n");
    let dir = api_chart(&[
        (
            "charts/api/values-qa.yaml",
            "tag: qa\ndbUrl: postgres://db.prod.example.com/x\n",
        ),
        ("apps/api-qa.yaml", &app),
    ]);
    let report = scan_json(dir.path(), &helm);
    let e = about_env(&report, "nonprod-uses-prod-config", "DB_URL");
    assert_eq!(e["severity"], "error", "{e:#}");
    assert_eq!(e["file"], "charts/api/values-qa.yaml", "{e:#}");
    assert_eq!(e["line"], 2, "{e:#}");
    let evidence = e["evidence"].to_string();
    assert!(
        evidence.contains("rendered at charts/api/templates/deployment.yaml:13"),
        "{evidence}"
    );
    assert!(
        evidence.contains("dbUrl = postgres://db.prod.example.com/x in charts/api/values-qa.yaml"),
        "{evidence}"
    );
}

/// The same value in the Application's inline `helm.values` text or `valuesObject`: the
/// finding is at the Application line inside the block.
#[test]
fn a_rendered_value_points_at_the_applications_inline_values() {
    let Some(helm) = helm_for_tests() else { return };
    let text = qa_application(
        "api-text",
        "      values: |\n        tag: qa\n        dbUrl: postgres://db.prod.example.com/x\n",
    );
    let object = qa_application(
        "api-object",
        "      valuesObject:\n        dbUrl: postgres://db.prod.example.com/y\n",
    );
    let dir = api_chart(&[
        ("apps/api-text.yaml", &text),
        ("apps/api-object.yaml", &object),
    ]);
    let report = scan_json(dir.path(), &helm);
    let db: Vec<_> = findings(&report, "nonprod-uses-prod-config")
        .into_iter()
        .filter(|f| f["message"].as_str().unwrap_or("").contains("DB_URL"))
        .collect();
    assert_eq!(db.len(), 2, "{report:#}");
    let at = |file: &str| {
        db.iter()
            .find(|f| f["file"] == file)
            .unwrap_or_else(|| panic!("no finding at {file}: {report:#}"))
    };
    // `values: |` is on line 13: its text begins on line 14, `dbUrl` is its second line.
    let text_finding = at("apps/api-text.yaml");
    assert_eq!(text_finding["line"], 15, "{text_finding:#}");
    assert!(
        text_finding["evidence"]
            .to_string()
            .contains("rendered at charts/api/templates/deployment.yaml:13"),
        "{text_finding:#}"
    );
    let object_finding = at("apps/api-object.yaml");
    assert_eq!(object_finding["line"], 14, "{object_finding:#}");
}

/// A value the template computes (`printf`) is set by no values line: the finding stays at
/// the template line.
#[test]
fn a_computed_value_stays_at_the_template_line() {
    let Some(helm) = helm_for_tests() else { return };
    let app = qa_application("api-qa", "      valueFiles:\n        - values-qa.yaml\n");
    let dir = api_chart(&[
        ("charts/api/values-qa.yaml", "tag: qa\ncacheEnv: prod\n"),
        ("apps/api-qa.yaml", &app),
    ]);
    let report = scan_json(dir.path(), &helm);
    let e = about_env(&report, "nonprod-uses-prod-config", "CACHE_URL");
    assert_eq!(e["file"], "charts/api/templates/deployment.yaml", "{e:#}");
    assert_eq!(e["line"], 15, "{e:#}");
    assert!(
        findings(&report, "nonprod-uses-prod-config")
            .iter()
            .all(|f| !f["message"].as_str().unwrap_or("").contains("DB_URL")),
        "{report:#}"
    );
}
