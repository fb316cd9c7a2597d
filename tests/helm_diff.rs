//! Diff-aware scans (`scan --base REV [--head REV]`) render local Helm charts on both sides:
//! a side read from git objects has its charts copied out (confined, bounded) and rendered by
//! the same helm, so rendered findings get `new`, `existing` and `fixed` like any other.
//! Each test needs helm: without it, it says "skipped: helm not found" (and fails when
//! `CI=true`).

mod common;

use std::path::Path;

use common::{envfence, git, helm_for_tests, json_report, write_tree};

/// A chart whose values list Argo CD Applications, installed on the production cluster by an
/// Application with `values-prod.yaml`.
const APPS_TEMPLATE: &str = r#"{{- range .Values.apps }}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {{ .name }}
  namespace: argocd
spec:
  destination:
    name: prod-eu
    namespace: {{ .name }}
  source:
    repoURL: https://charts.example.com
    chart: {{ .name }}
    targetRevision: 1.0.0
{{- end }}
"#;

const INSTALLER: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: apps-prod
  namespace: argocd
spec:
  destination:
    name: prod-eu
    namespace: argocd
  source:
    repoURL: https://example.com/repo.git
    path: charts/apps
    helm:
      valueFiles:
        - values-prod.yaml
"#;

/// Already on the base: a load test on production (an existing error).
const BASE_VALUES: &str = "apps:\n  - name: frontend\n  - name: load-test\n";

fn chart_repo(dir: &Path) {
    git(dir, &["init", "-q"]);
    write_tree(
        dir,
        &[
            (
                ".envfence.yaml",
                "clusters:\n  - name: prod-eu\n    environment: production\n",
            ),
            (
                "charts/apps/Chart.yaml",
                "apiVersion: v2\nname: apps\nversion: 0.1.0\n",
            ),
            ("charts/apps/values.yaml", "apps: []\n"),
            ("charts/apps/values-prod.yaml", BASE_VALUES),
            ("charts/apps/templates/apps.yaml", APPS_TEMPLATE),
            ("argo/apps-prod.yaml", INSTALLER),
        ],
    );
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "base"]);
}

fn diff_scan(repo: &Path, helm: &Path, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out = envfence()
        .env("ENVFENCE_HELM", helm)
        .args(["scan", "--quiet", "--format", "json"])
        .args(extra)
        .arg(repo)
        .output()
        .expect("runs");
    assert_ne!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), json_report(&out))
}

/// (rule, status, file, line, message) of each finding, for assertions and messages.
fn statuses(report: &serde_json::Value) -> Vec<(String, String, String, u64, String)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or("").to_owned(),
                f["status"].as_str().unwrap_or("").to_owned(),
                f["file"].as_str().unwrap_or("").to_owned(),
                f["line"].as_u64().unwrap_or(0),
                f["message"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn nonprod_errors(report: &serde_json::Value) -> Vec<(String, String, String, u64, String)> {
    statuses(report)
        .into_iter()
        .filter(|f| f.0 == "nonprod-on-prod-cluster")
        .collect()
}

#[test]
fn rendered_findings_are_new_existing_or_fixed_against_the_base() {
    let Some(helm) = helm_for_tests() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path();
    chart_repo(repo);

    // Nothing changed: the rendered finding is there on both sides, so it is existing.
    let (code, report) = diff_scan(repo, &helm, &["--base", "HEAD"]);
    let errors = nonprod_errors(&report);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].4.contains("load-test"), "{errors:?}");
    assert!(
        statuses(&report).iter().all(|f| f.1 == "existing"),
        "{:?}",
        statuses(&report)
    );
    assert_eq!(report["summary"]["comparison"]["new"], 0, "{report:#}");
    assert_eq!(code, Some(0));

    // The values file puts a test workload on production: new, at the values line.
    std::fs::write(
        repo.join("charts/apps/values-prod.yaml"),
        format!("{BASE_VALUES}  - name: integration-tests\n"),
    )
    .expect("write");
    let (code, report) = diff_scan(repo, &helm, &["--base", "HEAD"]);
    let errors = nonprod_errors(&report);
    let new: Vec<_> = errors.iter().filter(|f| f.1 == "new").collect();
    assert_eq!(new.len(), 1, "{errors:?}");
    assert_eq!(new[0].2, "charts/apps/values-prod.yaml");
    assert_eq!(new[0].3, 4);
    assert!(new[0].4.contains("integration-tests"), "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|f| f.1 == "existing" && f.4.contains("load-test")),
        "{errors:?}"
    );
    assert_eq!(code, Some(1));

    // Both sides read from git objects (`--head`), and the load test removed: fixed.
    std::fs::write(
        repo.join("charts/apps/values-prod.yaml"),
        "apps:\n  - name: frontend\n  - name: integration-tests\n",
    )
    .expect("write");
    git(
        repo,
        &[
            "commit",
            "-q",
            "-am",
            "swap the load test for integration tests",
        ],
    );
    let (code, report) = diff_scan(repo, &helm, &["--base", "HEAD~1", "--head", "HEAD"]);
    let errors = nonprod_errors(&report);
    assert!(
        errors
            .iter()
            .any(|f| f.1 == "new" && f.4.contains("integration-tests")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|f| f.1 == "fixed" && f.4.contains("load-test")),
        "{errors:?}"
    );
    assert_eq!(code, Some(1));
}

/// A base chart that reads `/etc/passwd` through a committed symlink is not copied out nor
/// rendered: nothing of the file appears in any output, and the note says why.
#[test]
fn a_base_chart_with_a_symlink_out_of_the_repository_is_not_rendered() {
    let Some(helm) = helm_for_tests() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path();
    git(repo, &["init", "-q"]);
    write_tree(
        repo,
        &[
            ("leak/Chart.yaml", "apiVersion: v2\nname: leak\nversion: 0.1.0\n"),
            ("leak/values-production.yaml", "x: 1\n"),
            (
                "leak/templates/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leak\ndata:\n  passwd: {{ .Files.Get \"files/passwd\" | quote }}\n",
            ),
        ],
    );
    std::fs::create_dir_all(repo.join("leak/files")).expect("mkdir");
    std::os::unix::fs::symlink("/etc/passwd", repo.join("leak/files/passwd")).expect("symlink");
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "a chart that leaks"]);
    // The working tree drops the link: only the base (read from git) has it.
    std::fs::remove_file(repo.join("leak/files/passwd")).expect("rm");
    std::fs::write(repo.join("leak/files/passwd"), "nothing here\n").expect("write");
    for format in ["json", "text", "sarif", "markdown"] {
        for extra in [
            &["--base", "HEAD"][..],
            &["--base", "HEAD", "--head", "HEAD"][..],
        ] {
            let out = envfence()
                .env("ENVFENCE_HELM", &helm)
                .args(["scan", "--quiet", "--fail-on", "never", "--format", format])
                .args(extra)
                .arg(repo)
                .output()
                .expect("runs");
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "{extra:?}: {all}");
            assert!(
                !all.contains("root:"),
                "{format} {extra:?}: /etc/passwd leaked:\n{all}"
            );
            if format == "json" {
                let report = json_report(&out);
                let refused = statuses(&report).into_iter().any(|f| {
                    f.0 == "unresolved-placement"
                        && f.4
                            .contains("leak/files/passwd is a symlink that leaves the repository")
                });
                assert!(refused, "{extra:?}: {:?}", statuses(&report));
            }
        }
    }
}
