//! Renders kept between runs (issue 29, `--cache DIR|off`): a second scan of the same charts
//! runs no helm and reports the same; a changed values file renders only its chart; an entry
//! that does not check out is rendered again; a cache inside the scanned repository is
//! refused. Each test needs helm (see `tests/helm.rs`).

mod common;

use std::path::Path;

use common::{envfence, helm_for_tests, json_report, write_tree};

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  template:
    spec:
      containers:
        - name: web
          image: "nginx:{{ .Values.tag }}"
"#;

/// Two charts, each rendered for the production cluster by its values file.
fn repository(dir: &Path) {
    let mut files: Vec<(String, String)> = vec![(
        ".envfence.yaml".into(),
        "clusters:\n  - name: production\n    environment: production\n".into(),
    )];
    for chart in ["web", "e2e-runner"] {
        files.push((
            format!("charts/{chart}/Chart.yaml"),
            format!("apiVersion: v2\nname: {chart}\nversion: 0.1.0\n"),
        ));
        files.push((
            format!("charts/{chart}/values.yaml"),
            "tag: stable\n".into(),
        ));
        files.push((
            format!("charts/{chart}/values-production.yaml"),
            "tag: \"1.0\"\n".into(),
        ));
        files.push((
            format!("charts/{chart}/templates/deployment.yaml"),
            DEPLOYMENT.into(),
        ));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    write_tree(dir, &refs);
}

/// The text report's render line, and the JSON report (its duration zeroed), of a scan with
/// `--cache cache`.
fn scan(repo: &Path, helm: &Path, cache: &Path) -> (String, serde_json::Value) {
    let run = |format: &str| {
        let out = envfence()
            .env("ENVFENCE_HELM", helm)
            .args(["scan", "--fail-on", "never", "--format", format, "--cache"])
            .arg(cache)
            .arg(repo)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let text = String::from_utf8_lossy(&run("text").stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.starts_with("Rendered local Helm charts"))
        .unwrap_or("")
        .to_owned();
    let mut report = json_report(&run("json"));
    report["summary"]["duration_ms"] = 0.into();
    (line, report)
}

#[test]
fn a_second_scan_runs_no_helm_and_reports_the_same() {
    let Some(helm) = helm_for_tests() else { return };
    let repo = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    repository(repo.path());
    let (first, findings) = scan(repo.path(), &helm, cache.path());
    assert!(first.contains(": 2 helm template runs in "), "{first}");
    // Both rendered Deployments are placed on production.
    assert_eq!(findings["summary"]["placed"], 2, "{findings:#}");
    let (second, again) = scan(repo.path(), &helm, cache.path());
    assert!(
        second.contains(": 0 helm template runs and 2 kept from an earlier run in "),
        "{second}"
    );
    assert_eq!(findings, again);

    // One changed values file: only its chart renders again.
    write_tree(
        repo.path(),
        &[("charts/web/values-production.yaml", "tag: \"1.1\"\n")],
    );
    let (third, _) = scan(repo.path(), &helm, cache.path());
    assert!(
        third.contains(": 1 helm template run and 1 kept from an earlier run in "),
        "{third}"
    );
}

#[test]
fn an_entry_that_does_not_check_out_is_rendered_again() {
    let Some(helm) = helm_for_tests() else { return };
    let repo = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    repository(repo.path());
    let (_, findings) = scan(repo.path(), &helm, cache.path());
    // Every stored output edited after it was written: a planted render hides nothing.
    let mut edited = 0;
    for entry in walkdir::WalkDir::new(cache.path()) {
        let entry = entry.expect("entry");
        if entry.file_type().is_file() {
            let text = std::fs::read_to_string(entry.path()).expect("entry");
            let planted = text.replace("nginx", "nginz");
            std::fs::write(entry.path(), planted).expect("write");
            edited += 1;
        }
    }
    assert_eq!(edited, 2);
    let (line, again) = scan(repo.path(), &helm, cache.path());
    assert!(line.contains(": 2 helm template runs in "), "{line}");
    assert_eq!(findings, again);
}

#[test]
fn a_cache_inside_the_scanned_repository_is_refused() {
    let Some(helm) = helm_for_tests() else { return };
    let repo = tempfile::tempdir().expect("tempdir");
    repository(repo.path());
    let out = envfence()
        .env("ENVFENCE_HELM", &helm)
        .args(["scan", "--cache"])
        .arg(repo.path().join(".cache"))
        .arg(repo.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is inside the scanned repository"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

/// The default folder (`~/.cache/envfence`) is only a speed-up: when it would be inside the
/// scanned repository (a scan of the home folder), it is left out, nothing is written there,
/// and the scan renders as without a cache.
#[test]
fn a_default_cache_that_cannot_be_used_is_left_out() {
    let Some(helm) = helm_for_tests() else { return };
    let repo = tempfile::tempdir().expect("tempdir");
    repository(repo.path());
    let out = envfence()
        .env("ENVFENCE_HELM", &helm)
        .env_remove("ENVFENCE_CACHE")
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", repo.path())
        .args(["scan", "--fail-on", "never"])
        .arg(repo.path())
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains(": 2 helm template runs in "), "{stdout}");
    assert!(!repo.path().join(".cache").exists());
}
