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
            .any(|n| n == "chart charts/web is not rendered: chart rendering is off (--helm off or ENVFENCE_HELM=off); to render it, drop that setting and have helm 3 on PATH or pass --helm PATH"),
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

/// A release name is the repository's text: one that looks like a helm flag
/// (`--post-renderer=...`) stays a name, so helm refuses it and runs no program.
#[test]
fn a_release_name_is_never_a_helm_flag() {
    let Some(helm) = helm_for_tests() else { return };
    let outside = tempfile::tempdir().expect("tempdir");
    let marker = outside.path().join("ran");
    let renderer = outside.path().join("renderer.sh");
    std::fs::write(
        &renderer,
        format!(
            "#!/bin/sh
touch {}
cat
",
            marker.display()
        ),
    )
    .expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&renderer, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let app = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web\nspec:\n  destination:\n    name: prod-eu\n  source:\n    repoURL: https://example.com/repo.git\n    path: charts/web\n    helm:\n      releaseName: --post-renderer={}\n",
        renderer.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(
        dir.path(),
        &[
            ("charts/web/Chart.yaml", CHART),
            ("charts/web/values.yaml", "tag: a\napiUrl: x\n"),
            ("charts/web/templates/deployment.yaml", DEPLOYMENT),
            ("apps/web.yaml", &app),
        ],
    );
    let report = scan_json(dir.path(), &helm);
    assert!(!marker.exists(), "helm ran the post-renderer");
    assert!(
        notes(&report)
            .iter()
            .any(|n| n.contains("invalid release name")),
        "{:?}",
        notes(&report)
    );
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
    let out = envfence()
        .env("ENVFENCE_HELM", &helm)
        .args(["topology", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let evidence = json_report(&out)["placements"].to_string();
    for env in ["integration", "staging", "production"] {
        assert!(
            evidence.contains(&format!(
                "values file values-{env}.yaml names cluster {env}"
            )),
            "{env}"
        );
    }
    // Products and tasks named with `preview` or `review`, and a ConfigMap the router uses by
    // the same name in every environment, are no findings.
    let judged = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| {
            [
                "nonprod-on-prod-cluster",
                "mixed-environment-cluster",
                "nonprod-uses-prod-config",
                "prod-uses-nonprod-config",
            ]
            .contains(&f["rule"].as_str().unwrap_or(""))
        })
        .map(|f| f["message"].as_str().unwrap_or("").to_owned())
        .collect::<Vec<_>>();
    for name in [
        "govspeak-preview",
        "signon-app-content-preview",
        "whitehall-admin-send-review-reminders",
        "live-router-nginx-conf",
    ] {
        assert!(
            judged.iter().all(|m| !m.contains(name)),
            "{name}: {judged:#?}"
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

/// A `helm.parameters` entry that sets the value: the finding is at that entry's `value:`
/// line, not at the `helm:` line.
#[test]
fn a_rendered_value_points_at_the_parameter_that_sets_it() {
    let Some(helm) = helm_for_tests() else { return };
    let app = qa_application(
        "api-qa",
        "      parameters:\n        - name: tag\n          value: qa\n        - name: dbUrl\n          value: postgres://db.prod.example.com/z\n",
    );
    let dir = api_chart(&[("apps/api-qa.yaml", &app)]);
    let report = scan_json(dir.path(), &helm);
    let e = about_env(&report, "nonprod-uses-prod-config", "DB_URL");
    // `helm:` is line 12; the second parameter's `value:` is line 17.
    assert_eq!(e["file"], "apps/api-qa.yaml", "{e:#}");
    assert_eq!(e["line"], 17, "{e:#}");
    assert!(
        e["evidence"]
            .to_string()
            .contains("helm.parameters dbUrl = postgres://db.prod.example.com/z"),
        "{e:#}"
    );
}

/// A Flux HelmRelease whose `valuesFrom` ConfigMap key is merged at a `targetPath`: the
/// value lands there (as helm-controller merges it), and a finding about it points at the
/// ConfigMap key.
#[test]
fn helmrelease_values_from_a_target_path_are_applied() {
    let Some(helm) = helm_for_tests() else { return };
    let release = r#"apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: api
  namespace: api
spec:
  chart:
    spec:
      chart: ./charts/api
      sourceRef:
        kind: GitRepository
        name: flux-system
        namespace: flux-system
  valuesFrom:
    - kind: ConfigMap
      name: api-settings
      valuesKey: channel
      targetPath: tag
"#;
    let settings = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: api-settings\n  namespace: api\ndata:\n  channel: prod\n";
    let sync = r#"apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  path: ./apps
  sourceRef:
    kind: GitRepository
    name: flux-system
"#;
    let dir = api_chart(&[
        ("clusters/qa-eu/apps.yaml", sync),
        ("apps/api.yaml", release),
        ("apps/settings.yaml", settings),
    ]);
    let report = scan_json(dir.path(), &helm);
    let e = about_env(&report, "nonprod-uses-prod-config", "image tag `prod`");
    assert!(
        e["message"].as_str().unwrap_or("").contains("api:prod"),
        "{e:#}"
    );
    assert_eq!(e["file"], "apps/settings.yaml", "{e:#}");
    assert_eq!(e["line"], 7, "{e:#}");
    assert!(
        e["evidence"]
            .to_string()
            .contains("valuesFrom ConfigMap api-settings key channel at tag"),
        "{e:#}"
    );
    // Rendered: no note says the release or its values are not.
    assert!(
        notes(&report)
            .iter()
            .all(|n| !n.contains("valuesFrom") && !n.contains("HelmRelease api")),
        "{:?}",
        notes(&report)
    );
}

const KUSTOMIZE_CHART_DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  namespace: {{ .Release.Namespace }}
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

/// What each flag of a `helmCharts` entry changes: test hooks (`skipTests`), CRDs
/// (`includeCRDs`), objects only some API versions or Kubernetes versions get.
const KUSTOMIZE_CHART_EXTRAS: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
{{- if .Capabilities.APIVersions.Has "example.com/v1" }}
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: {{ .Release.Name }}-widget
{{- end }}
{{- if semverCompare "<1.30.0-0" .Capabilities.KubeVersion.Version }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-old-kube
{{- end }}
"#;

const KUSTOMIZE_CHART_TEST: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-smoke
  annotations:
    "helm.sh/hook": test
spec:
  containers:
    - name: t
      image: busybox
"#;

const KUSTOMIZE_CHART_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names:
    kind: Widget
    plural: widgets
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
"#;

/// The kustomization delivered to qa-eu: one chart twice (once with every option, once
/// with none), a remote chart, and a plain resource, under a namespace and a name prefix.
const KUSTOMIZATION_WITH_CHARTS: &str = r#"namespace: shop
namePrefix: qa-
resources:
  - service.yaml
helmGlobals:
  chartHome: vendor
helmCharts:
  - name: web
    releaseName: shop
    namespace: store
    includeCRDs: true
    skipTests: true
    valuesFile: values/qa.yaml
    additionalValuesFiles:
      - values/extra.yaml
    valuesInline:
      apiUrl: https://api.prod.example.com
    apiVersions:
      - example.com/v1
    kubeVersion: "1.29.0"
  - name: web
  - name: redis
    repo: https://charts.example.com
    version: 1.0.0
"#;

fn kustomize_chart_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(
        dir.path(),
        &[
            (".envfence.yaml", QA_CLUSTER_CONFIG),
            ("deploy/qa/vendor/web/Chart.yaml", CHART),
            (
                "deploy/qa/vendor/web/values.yaml",
                "tag: stable\napiUrl: https://api.example.com\n",
            ),
            (
                "deploy/qa/vendor/web/templates/deployment.yaml",
                KUSTOMIZE_CHART_DEPLOYMENT,
            ),
            ("deploy/qa/vendor/web/templates/extras.yaml", KUSTOMIZE_CHART_EXTRAS),
            ("deploy/qa/vendor/web/templates/tests/smoke.yaml", KUSTOMIZE_CHART_TEST),
            ("deploy/qa/vendor/web/crds/widgets.yaml", KUSTOMIZE_CHART_CRD),
            ("deploy/qa/kustomization.yaml", KUSTOMIZATION_WITH_CHARTS),
            ("deploy/qa/values/qa.yaml", "tag: qa\n"),
            ("deploy/qa/values/extra.yaml", "tag: qa-extra\n"),
            (
                "deploy/qa/service.yaml",
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n",
            ),
            (
                "apps/shop-qa.yaml",
                "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: shop-qa\nspec:\n  destination:\n    name: qa-eu\n  source:\n    repoURL: https://example.com/repo.git\n    path: deploy/qa\n",
            ),
        ],
    );
    dir
}

/// A kustomization's `helmCharts` of a local chart: rendered with the entry's values and
/// flags, its objects go through the kustomization (namespace, prefix) onto the deployer's
/// cluster, and a finding about a value points at the `valuesInline` line. A remote chart
/// stays a note.
#[test]
fn kustomize_helm_charts_of_a_local_chart_are_rendered_through_the_kustomization() {
    let Some(helm) = helm_for_tests() else { return };
    let dir = kustomize_chart_repo();
    let report = scan_json(dir.path(), &helm);
    let e = about_env(&report, "nonprod-uses-prod-config", "API_URL");
    assert_eq!(e["file"], "deploy/qa/kustomization.yaml", "{e:#}");
    assert_eq!(e["line"], 17, "{e:#}");
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("Deployment/qa-shop-web"),
        "{e:#}"
    );
    let evidence = e["evidence"].to_string();
    assert!(
        evidence.contains("helmCharts web: helm template shop deploy/qa/vendor/web -n store with qa.yaml, extra.yaml + inline values"),
        "{evidence}"
    );
    assert!(evidence.contains("namespace shop"), "{evidence}");
    let notes = notes(&report);
    assert!(
        notes.iter().any(|n| n
            == "helmCharts entry redis comes from https://charts.example.com and has no copy under vendor/; envfence does not download charts, so what it deploys is not known"),
        "{notes:?}"
    );
    assert!(
        notes.iter().all(|n| !n.contains("helmCharts entry web")),
        "{notes:?}"
    );
}

/// The objects envfence places for a kustomization with `helmCharts` are the objects
/// `kubectl kustomize --enable-helm` outputs (kind, namespace, name).
#[test]
fn kustomize_helm_charts_match_kubectl_kustomize() {
    let Some(helm) = helm_for_tests() else { return };
    let kubectl = std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    // Like tests/kustomize_diff.rs: kubectl is optional, even in CI.
    if !kubectl {
        eprintln!("skipped: kubectl not found");
        return;
    }
    let dir = kustomize_chart_repo();
    // kustomize cannot build with a remote chart offline: compare without it.
    let local_only = KUSTOMIZATION_WITH_CHARTS
        .split("  - name: redis")
        .next()
        .unwrap_or_default();
    std::fs::write(dir.path().join("deploy/qa/kustomization.yaml"), local_only).expect("write");
    let out = std::process::Command::new("kubectl")
        .args(["kustomize", "--enable-helm", "--helm-command"])
        .arg(&helm)
        .arg(dir.path().join("deploy/qa"))
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let stream = envfence::documents::yaml::parse_stream(&text);
    let mut expected: Vec<(String, String, String)> = Vec::new();
    for doc in &stream.docs {
        let get = |path: &[&str]| {
            let mut node = &doc.root;
            for key in path {
                node = node.get(key)?;
            }
            node.as_str().map(str::to_owned)
        };
        expected.push((
            get(&["kind"]).unwrap_or_default(),
            get(&["metadata", "namespace"]).unwrap_or_default(),
            get(&["metadata", "name"]).unwrap_or_default(),
        ));
    }
    expected.sort();
    let topology = envfence()
        .env("ENVFENCE_HELM", &helm)
        .args(["topology", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let topology = json_report(&topology);
    let mut ours: Vec<(String, String, String)> = topology["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .filter(|p| p["cluster"] == "qa-eu")
        .map(|p| {
            (
                p["kind"].as_str().unwrap_or("").to_owned(),
                p["namespace"].as_str().unwrap_or("").to_owned(),
                p["name"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    ours.sort();
    assert_eq!(ours, expected);
    // Both charts' objects are there: the test hook of the second, the CRD of the first.
    assert!(
        ours.iter().any(|o| o.2 == "qa-release-name-smoke"),
        "{ours:?}"
    );
    assert!(
        ours.iter().any(|o| o.2 == "widgets.example.com"),
        "{ours:?}"
    );
}

/// The lines a file of `dir` has, if it is a file there.
fn line_count(dir: &Path, file: &str) -> Option<usize> {
    let text = std::fs::read(dir.join(file)).ok()?;
    Some(String::from_utf8_lossy(&text).lines().count().max(1))
}

/// Every location (placement, evidence entry, finding) names a file of `dir` and a line that
/// file has; returns what does not.
fn dangling_locations(
    dir: &Path,
    topology: &serde_json::Value,
    report: &serde_json::Value,
) -> Vec<String> {
    let mut bad = Vec::new();
    let mut check = |what: &str, file: &serde_json::Value, line: &serde_json::Value| {
        let Some(file) = file.as_str() else { return };
        // Opaque payloads and external values name another repository, not a file here.
        if file.is_empty() || file.contains("://") {
            return;
        }
        let line = line.as_u64().unwrap_or(1) as usize;
        match line_count(dir, file) {
            Some(lines) if line >= 1 && line <= lines => {}
            found => bad.push(format!("{what} {file}:{line} (file has {found:?} lines)")),
        }
    };
    for p in topology["placements"].as_array().into_iter().flatten() {
        check("placement", &p["file"], &p["line"]);
        for e in p["evidence"].as_array().into_iter().flatten() {
            check("evidence", &e["file"], &e["line"]);
        }
    }
    for f in report["findings"].as_array().into_iter().flatten() {
        check("finding", &f["file"], &f["line"]);
    }
    bad
}

/// Every corpus, rendered with helm through its real deployers: the corpora whose deployers
/// install a chart of their own place more objects than without helm, and every placement,
/// evidence entry and finding points at a line that exists in the repository (a rendered
/// object at its template, a value at its values file).
#[test]
fn every_corpus_renders_to_real_locations() {
    let Some(helm) = helm_for_tests() else { return };
    let Some(dir) = common::corpora() else {
        eprintln!("skipped: ../shared/corpora is not present");
        return;
    };
    let placed = |report: &serde_json::Value| report["summary"]["placed"].as_u64().unwrap_or(0);
    let mut rendered_somewhere = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpora readable")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    for corpus in entries {
        let name = corpus
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let with = scan_json(&corpus, &helm);
        let without = scan_json(&corpus, Path::new("off"));
        let out = envfence()
            .env("ENVFENCE_HELM", &helm)
            .args(["topology", "--quiet", "--format", "json"])
            .arg(&corpus)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let topology: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let bad = dangling_locations(&corpus, &topology, &with);
        assert!(bad.is_empty(), "{name}: {bad:#?}");
        assert!(
            placed(&with) >= placed(&without),
            "{name}: helm placed fewer objects"
        );
        if placed(&with) > placed(&without) {
            rendered_somewhere.push(name);
        }
    }
    for expected in [
        "alphagov__govuk-helm-charts",
        "argoproj__argocd-example-apps",
        "kostis-codefresh__multi-sources-example",
        "stefanprodan__podinfo",
        "wikimedia__operations-deployment-charts",
    ] {
        assert!(
            rendered_somewhere.iter().any(|n| n == expected),
            "{expected} rendered nothing: {rendered_somewhere:?}"
        );
    }
}

/// A chart that reads the checkout's `.git/config` through a symlink inside the repository
/// (where `actions/checkout` persists the job's token) renders without it: helm sees only the
/// chart's own files, never `.git/`, and the token reaches no output.
#[test]
fn a_chart_never_reads_the_checkouts_git_folder() {
    let Some(helm) = helm_for_tests() else { return };
    const TOKEN_B64: &str = "eC1hY2Nlc3MtdG9rZW46Z2hwX3NlY3JldA==";
    let app = qa_application("api-qa", "      valueFiles:\n        - values.yaml\n");
    let dir = api_chart(&[
        (
            ".git/config",
            "[core]\n\trepositoryformatversion = 0\n[http \"https://github.com/\"]\n\textraheader = AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46Z2hwX3NlY3JldA==\n",
        ),
        (
            "charts/api/templates/leak.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: leak\nspec:\n  template:\n    spec:\n      containers:\n        - name: leak\n          env:\n            - name: AUTH_URL\n              value: {{ printf \"https://db.prod.example.com/?%s\" (.Files.Get \"gitcfg\" | replace \"\\n\" \" \" | replace \"\\t\" \" \") | quote }}\n            - name: AUTH_URL_B64\n              value: {{ printf \"https://db.prod.example.com/?%s\" (.Files.Get \"gitcfg\" | b64enc) | quote }}\n",
        ),
        ("apps/api-qa.yaml", &app),
    ]);
    std::os::unix::fs::symlink("../../.git/config", dir.path().join("charts/api/gitcfg"))
        .expect("symlink");
    for format in ["json", "text"] {
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
        // The chart rendered: its production URL is reported on the QA cluster.
        assert!(all.contains("AUTH_URL"), "{format}: not rendered:\n{all}");
        for secret in [
            TOKEN_B64,
            "ghp_secret",
            "x-access-token",
            "extraheader",
            // The whole config, base64-encoded by the chart: its first bytes.
            "W2NvcmVd",
        ] {
            assert!(
                !all.contains(secret),
                "{format}: .git/config leaked ({secret}):\n{all}"
            );
        }
    }
}

/// A `# Source:` line is helm's output, which the chart writes (a CRD file is printed as it
/// is): a path it names is never opened. `web/../../outside.txt` is a symlink out of the
/// repository whose text would otherwise give the line numbers; the object is placed at a
/// file of the chart instead.
#[test]
fn a_source_line_never_makes_envfence_open_a_file() {
    let Some(helm) = helm_for_tests() else { return };
    let outside = tempfile::tempdir().expect("tempdir");
    let mut secret = String::new();
    for i in 0..30 {
        secret.push_str(&format!("filler line {i}\n"));
    }
    secret.push_str("kind: Secret\nmetadata:\n  name: outside-marker\n");
    std::fs::write(outside.path().join("secret.txt"), &secret).expect("write");
    let app = qa_application("api-qa", "      valueFiles:\n        - values.yaml\n");
    let dir = api_chart(&[
        (
            "charts/api/crds/probe.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: first\n---\n# Source: api/../../outside.txt\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\ndata:\n  url: https://db.prod.example.com/x\n",
        ),
        ("apps/api-qa.yaml", &app),
    ]);
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        dir.path().join("outside.txt"),
    )
    .expect("symlink");
    let started = std::time::Instant::now();
    for format in ["json", "text"] {
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
            !all.contains("outside.txt") && !all.contains("outside-marker"),
            "{format}: a path helm's output names was read:\n{all}"
        );
        if format == "json" {
            let report = json_report(&out);
            let placements = report.to_string();
            assert!(
                placements.contains("charts/api/Chart.yaml"),
                "the object of an unknown source is at the chart: {report:#}"
            );
        }
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}
