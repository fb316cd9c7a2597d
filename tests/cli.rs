//! The `envfence` command as a user runs it: the demo report, exit codes, errors, options.

mod common;

use common::{envfence, fixture, json_report, normalise, write_tree};
use predicates::prelude::*;

#[test]
fn demo_text_report() {
    let out = envfence()
        .args(["scan", "--quiet"])
        .arg(fixture("demo"))
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "the demo's planted errors fail the scan"
    );
    insta::assert_snapshot!(
        "demo_text",
        normalise(&String::from_utf8_lossy(&out.stdout))
    );
}

#[test]
fn demo_json_report() {
    let out = envfence()
        .args(["scan", "--format", "json"])
        .arg(fixture("demo"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let report = json_report(&out);
    assert_eq!(report["version"], 1);
    assert_eq!(report["tool"]["name"], "envfence");
    insta::assert_snapshot!(
        "demo_json",
        normalise(&String::from_utf8_lossy(&out.stdout))
    );
}

#[test]
fn fail_on_sets_the_exit_code() {
    // Only a warning (invalid-yaml): it fails the scan from --fail-on warning down.
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(dir.path(), &[("bad.yaml", "a: [1, 2\n")]);
    envfence()
        .args(["scan", "-q", "--fail-on", "warning"])
        .arg(dir.path())
        .assert()
        .code(1);
    envfence()
        .args(["scan", "-q", "--fail-on", "info"])
        .arg(dir.path())
        .assert()
        .code(1);
    envfence()
        .args(["scan", "-q", "--fail-on", "error"])
        .arg(dir.path())
        .assert()
        .code(0);
    envfence()
        .args(["scan", "-q"])
        .arg(dir.path())
        .assert()
        .code(0);
    // The demo has errors: they fail the scan unless --fail-on never.
    let demo = fixture("demo");
    envfence().args(["scan", "-q"]).arg(&demo).assert().code(1);
    envfence()
        .args(["scan", "-q", "--fail-on", "never"])
        .arg(&demo)
        .assert()
        .code(0);
}

#[test]
fn config_can_turn_a_rule_off_or_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(
        dir.path(),
        &[
            ("bad.yaml", "a: [1, 2\n"),
            (".envfence.yaml", "rules:\n  invalid-yaml: error\n"),
        ],
    );
    envfence()
        .args(["scan", "-q"])
        .arg(dir.path())
        .assert()
        .code(1);
    std::fs::write(
        dir.path().join(".envfence.yaml"),
        "rules:\n  invalid-yaml: off\n",
    )
    .expect("write");
    envfence()
        .args(["scan", "-q"])
        .arg(dir.path())
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Nothing was checked"));
}

#[test]
fn missing_path_is_a_one_line_error() {
    let out = envfence()
        .args(["scan", "/nonexistent/envfence-test"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("envfence: error: cannot scan /nonexistent/envfence-test: "),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn config_errors_name_file_line_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(
        dir.path(),
        &[(
            ".envfence.yaml",
            "clusters:\n  - name: prod\n    environment: production\n    serverr: https://x\n",
        )],
    );
    let out = envfence()
        .args(["scan"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(".envfence.yaml:4:5: "), "{stderr}");
    assert!(stderr.contains("unknown field `serverr`"), "{stderr}");
}

#[test]
fn explicit_config_must_exist() {
    let dir = tempfile::tempdir().expect("tempdir");
    envfence()
        .args(["scan", "--config", "nope.yaml"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "envfence: error: cannot read config nope.yaml",
        ));
}

#[test]
fn usage_errors_exit_2() {
    envfence()
        .args(["scan", "--format", "xml"])
        .assert()
        .code(2);
    envfence().args(["scan", "--jobs", "0"]).assert().code(2);
    envfence()
        .args(["scan", "--max-file-size", "lots"])
        .assert()
        .code(2);
    envfence().arg("frobnicate").assert().code(2);
}

#[test]
fn github_command_documents_its_environment() {
    envfence()
        .args(["github", "--help"])
        .assert()
        .code(0)
        .stdout(
            predicate::str::contains("--comment")
                .and(predicate::str::contains("GITHUB_EVENT_PATH"))
                .and(predicate::str::contains("--sarif")),
        );
}

#[test]
fn help_and_version() {
    envfence()
        .args(["scan", "--help"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Examples:").and(predicate::str::contains("--fail-on")));
    envfence()
        .arg("--version")
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with(concat!(
            "envfence ",
            env!("CARGO_PKG_VERSION")
        )));
}

#[test]
fn output_file_gets_the_report_without_colour() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("report.txt");
    envfence()
        .env_remove("NO_COLOR")
        .env("CLICOLOR_FORCE", "1")
        .args(["scan", "-q", "-o"])
        .arg(&report)
        .arg(fixture("demo"))
        .assert()
        .code(1)
        .stdout("");
    let text = std::fs::read_to_string(&report).expect("report written");
    assert!(text.contains("legacy/broken-configmap.yaml"));
    assert!(!text.contains('\u{1b}'), "no ANSI escapes in files");
}

#[test]
fn colour_is_used_only_when_asked_for() {
    let out = envfence()
        .env_remove("NO_COLOR")
        .env("CLICOLOR_FORCE", "1")
        .args(["scan", "-q"])
        .arg(fixture("demo"))
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&out.stdout).contains('\u{1b}'));
}

#[test]
fn a_single_file_can_be_scanned() {
    let out = envfence()
        .args(["scan", "--format", "json"])
        .arg(fixture("demo").join("legacy/broken-configmap.yaml"))
        .output()
        .expect("runs");
    let report = json_report(&out);
    assert_eq!(report["summary"]["files"], 1);
    assert_eq!(report["findings"][0]["file"], "broken-configmap.yaml");
    assert_eq!(report["findings"][0]["line"], 7);
}

#[test]
fn jobs_do_not_change_the_report() {
    let run = |jobs: &str| {
        let out = envfence()
            .args(["scan", "--format", "json", "--jobs", jobs])
            .arg(fixture("demo"))
            .output()
            .expect("runs");
        normalise(&String::from_utf8_lossy(&out.stdout))
    };
    assert_eq!(run("1"), run("4"));
}

/// An ApplicationSet that delivers sixty kustomize overlays at once (their bases shared, a
/// production database URL in one dev overlay, a feature overlay on production): files are
/// read and classes decided on all cores, and the report is the same whatever `--jobs`.
#[test]
fn jobs_do_not_change_what_an_application_set_places() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut files: Vec<(String, String)> = Vec::new();
    let mut elements = String::new();
    for (cluster, env) in [("dev-1", "dev"), ("prod-eu", "production")] {
        files.push((
            format!("clusters/{cluster}.yaml"),
            format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: {cluster}\n  namespace: argocd\n  labels:\n    argocd.argoproj.io/secret-type: cluster\n    env: {env}\nstringData:\n  name: {cluster}\n  server: https://{cluster}.example.com\n"),
        ));
    }
    for i in 0..30 {
        let app = format!("svc-{i:02}");
        files.push((
            format!("apps/{app}/base/kustomization.yaml"),
            "resources:\n  - deployment.yaml\n".to_owned(),
        ));
        files.push((
            format!("apps/{app}/base/deployment.yaml"),
            format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: registry.example.com/{app}:1\n"),
        ));
        for (overlay, cluster) in [("dev", "dev-1"), ("prod", "prod-eu")] {
            let feature = overlay == "prod" && i == 7;
            let overlay = if feature { "feature-login" } else { overlay };
            let url = if overlay == "dev" && i == 11 {
                "postgres://db.prod.example.com/app"
            } else {
                "postgres://db.dev.example.com/app"
            };
            files.push((
                format!("apps/{app}/{overlay}/kustomization.yaml"),
                format!(
                    "resources:\n  - ../base\nnamespace: {app}\npatches:\n  - path: env.yaml\n"
                ),
            ));
            files.push((
                format!("apps/{app}/{overlay}/env.yaml"),
                format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          env:\n            - name: DATABASE_URL\n              value: {url}\n"),
            ));
            elements.push_str(&format!(
                "          - app: {app}\n            overlay: {overlay}\n            cluster: {cluster}\n"
            ));
        }
    }
    files.push((
        "argocd/services.yaml".to_owned(),
        format!("apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: services\n  namespace: argocd\nspec:\n  generators:\n    - list:\n        elements:\n{elements}  template:\n    metadata:\n      name: '{{{{app}}}}-{{{{overlay}}}}'\n    spec:\n      project: default\n      source:\n        repoURL: https://example.com/gitops.git\n        path: 'apps/{{{{app}}}}/{{{{overlay}}}}'\n      destination:\n        name: '{{{{cluster}}}}'\n        namespace: '{{{{app}}}}'\n"),
    ));
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    write_tree(dir.path(), &files);
    let run = |command: &str, jobs: &str| {
        let out = envfence()
            .args([command, "--quiet", "--format", "json", "--jobs", jobs])
            .args(if command == "scan" {
                &["--fail-on", "never"][..]
            } else {
                &[]
            })
            .arg(dir.path())
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        normalise(&String::from_utf8_lossy(&out.stdout))
    };
    let scan = run("scan", "1");
    assert_eq!(scan, run("scan", "4"));
    assert_eq!(run("topology", "1"), run("topology", "4"));
    // Every overlay placed, and both planted problems found.
    let report: serde_json::Value = serde_json::from_str(&scan).expect("JSON");
    // The thirty bases and sixty patches (the ApplicationSet and the cluster Secrets are
    // applied by hand).
    assert_eq!(
        report["summary"]["coverage"]["placed"], 90,
        "{}",
        report["summary"]
    );
    let errors: Vec<String> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| format!("{} {}", f["rule"], f["file"]))
        .collect();
    assert!(
        errors
            == [
                "\"nonprod-uses-prod-config\" \"apps/svc-11/dev/env.yaml\"",
                // The feature Application the ApplicationSet generates for production.
                "\"nonprod-on-prod-cluster\" \"argocd/services.yaml\"",
            ],
        "{errors:?}"
    );
}

#[test]
fn demo_github_annotations() {
    let out = envfence()
        .args(["scan", "--format", "github"])
        .arg(fixture("demo"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // Errors first, every line a workflow command.
    assert!(
        text.lines()
            .all(|l| l.starts_with("::error ") || l.starts_with("::warning ")),
        "{text}"
    );
    assert!(text.starts_with("::error "));
    insta::assert_snapshot!("demo_github", text);
}

#[test]
fn github_annotations_are_capped_per_level() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files: Vec<(String, &str)> = (0..14)
        .map(|i| (format!("bad{i:02}.yaml"), "a: [1\n"))
        .collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    write_tree(dir.path(), &refs);
    let out = envfence()
        .args(["scan", "-f", "github"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("::warning ")).count(),
        10
    );
    assert!(
        text.contains("::notice title=envfence::4 more findings not shown"),
        "{text}"
    );
}

#[test]
fn demo_markdown_comment() {
    let out = envfence()
        .args(["scan", "--format", "markdown"])
        .arg(fixture("demo"))
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.starts_with("<!-- envfence:report -->\n## ❌ envfence: 3 errors, 6 warnings"),
        "{text}"
    );
    assert!(text.contains("```mermaid"));
    insta::assert_snapshot!("demo_markdown", text);
}

#[test]
fn policies_dir_changes_severity_and_extends_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(
        dir.path(),
        &[
            (
                "nonprod-on-prod-cluster.yaml",
                "id: nonprod-on-prod-cluster\nseverity: warning\ndata:\n  deployer_kinds: [Service]\n",
            ),
            ("nonprod-uses-prod-config.yaml", "id: nonprod-uses-prod-config\nseverity: warning\n"),
        ],
    );
    let out = envfence()
        .args(["scan", "-q", "--format", "json", "--policies"])
        .arg(dir.path())
        .arg(fixture("demo"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "no error left");
    let report = json_report(&out);
    let feature = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule"] == "nonprod-on-prod-cluster" && f["cluster"] == "prod-us")
        .expect("finding");
    assert_eq!(feature["severity"], "warning");
    // Services now count as deployer objects: two objects instead of three.
    assert!(
        feature["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("2 non-production objects")),
        "{feature}"
    );

    std::fs::write(dir.path().join("typo.yaml"), "id: nonprod-on-prod-clustr\n").expect("write");
    let out = envfence()
        .args(["scan", "-q", "--policies"])
        .arg(dir.path())
        .arg(fixture("demo"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("typo.yaml: unknown rule id `nonprod-on-prod-clustr`"),
        "{stderr}"
    );
}
