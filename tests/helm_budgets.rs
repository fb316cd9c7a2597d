//! Helm rendering bounded as a whole (issue 25): a helm child's memory, the scan's render
//! count, render time and rendered output, and helm's error text, which never reaches a
//! report. Each test runs the real binary and helm on charts made in a temp dir; the budgets
//! are lowered through the test knobs of `HelmBudgets` (environment variables that can only
//! lower them), so that a spent budget takes a second, not minutes or gigabytes. Without helm
//! each test says "skipped: helm not found" (and fails when `CI=true`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{helm_for_tests, json_report, write_tree};
use serde_json::Value;

const CONFIG: &str = "clusters:\n  - name: prod-eu\n    environment: production\n";

/// An Argo CD Application of chart `charts/<chart>`, with `--set` parameters.
fn application(name: &str, chart: &str, parameters: &[(&str, &str)]) -> String {
    let mut text = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\nspec:\n  destination:\n    name: prod-eu\n    namespace: {name}\n  source:\n    repoURL: https://example.com/repo.git\n    path: charts/{chart}\n"
    );
    if !parameters.is_empty() {
        text.push_str("    helm:\n      parameters:\n");
        for (k, v) in parameters {
            text.push_str(&format!("        - name: {k}\n          value: \"{v}\"\n"));
        }
    }
    text
}

/// A chart whose one template is `template`.
fn chart(name: &str, template: &str) -> Vec<(String, String)> {
    vec![
        (
            format!("charts/{name}/Chart.yaml"),
            format!("apiVersion: v2\nname: {name}\nversion: 0.1.0\n"),
        ),
        (
            format!("charts/{name}/templates/t.yaml"),
            template.to_owned(),
        ),
    ]
}

/// An honest chart: one Deployment.
const HONEST: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: nginx\n";

/// A template that never finishes (10^15 empty iterations) and holds no memory.
const ENDLESS: &str = "{{- range until 100000 }}{{- range until 100000 }}{{- range until 100000 }}{{- end }}{{- end }}{{- end }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: never\n";

fn repo(files: &[(String, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut all: Vec<(&str, &str)> = vec![(".envfence.yaml", CONFIG)];
    all.extend(files.iter().map(|(p, t)| (p.as_str(), t.as_str())));
    write_tree(dir.path(), &all);
    dir
}

/// `envfence scan --jobs 2 --format FORMAT` with helm and the given knobs; the default
/// `--fail-on`, so that a cut scan exits 3.
fn scan(dir: &Path, helm: &Path, format: &str, knobs: &[(&str, &str)]) -> (Output, Duration) {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("envfence"));
    cmd.env("NO_COLOR", "1")
        .env("ENVFENCE_CACHE", "off")
        .env("ENVFENCE_HELM", helm)
        .args(["scan", "--quiet", "--jobs", "2", "--format", format])
        .arg(dir);
    for (k, v) in knobs {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = cmd.output().expect("runs");
    (out, started.elapsed())
}

fn notes(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"] == "unresolved-placement")
        .map(|f| f["message"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Objects placed on a cluster, by the Application that delivers them.
fn placed(report: &Value) -> u64 {
    report["summary"]["placed"].as_u64().unwrap_or(0)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Defect 8: a template that builds a 200 MB string peaks far above the helm memory limit;
/// the watchdog stops it there, the chart is not rendered (with a note) and the scan is cut
/// (exit 3). An honest chart of the same scan still renders under the same limit.
#[test]
fn a_render_that_eats_memory_is_stopped() {
    let Some(helm) = helm_for_tests() else { return };
    let hog = "{{- $x := repeat 25000000 \"x\" }}\n{{- $y := printf \"%s%s%s%s\" $x $x $x $x }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hog\ndata:\n  size: {{ len $y | quote }}\n";
    let mut files = chart("hog", hog);
    files.extend(chart("web", HONEST));
    files.push(("apps/hog.yaml".into(), application("hog", "hog", &[])));
    files.push(("apps/web.yaml".into(), application("web", "web", &[])));
    let dir = repo(&files);
    let (out, took) = scan(
        dir.path(),
        &helm,
        "json",
        &[("ENVFENCE_TEST_HELM_MEMORY_MIB", "128")],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let report = json_report(&out);
    let notes = notes(&report);
    assert!(
        notes.iter().any(|n| n
            == "chart charts/hog was not rendered: helm template used more than 128 MiB of memory and was stopped; the chart is not rendered"),
        "{notes:#?}"
    );
    // The honest chart's Deployment is placed; the hog's ConfigMap is not.
    assert_eq!(placed(&report), 1, "{report:#}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

/// Defect 10, one render: a render past its time limit is stopped, with a note and a cut.
#[test]
fn a_render_past_its_time_limit_is_stopped_and_cuts_the_scan() {
    let Some(helm) = helm_for_tests() else { return };
    let mut files = chart("slow", ENDLESS);
    files.extend(chart("web", HONEST));
    files.push(("apps/slow.yaml".into(), application("slow", "slow", &[])));
    files.push(("apps/web.yaml".into(), application("web", "web", &[])));
    let dir = repo(&files);
    let (out, took) = scan(
        dir.path(),
        &helm,
        "json",
        &[("ENVFENCE_TEST_HELM_TIMEOUT_MS", "700")],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let notes = notes(&json_report(&out));
    assert!(
        notes.iter().any(|n| n
            == "chart charts/slow was not rendered: helm template ran longer than 700 ms and was stopped; the chart is not rendered"),
        "{notes:#?}"
    );
    assert!(took < Duration::from_secs(8), "took {took:?}");
}

/// Defect 10, the scan: renders that each stay under their own limit but not together. Once
/// the scan's render time is spent no render starts: six endless charts take the budget
/// (1.5 s here), not six times the per-render limit (60 s on two threads before).
#[test]
fn renders_stop_when_the_scans_render_time_is_spent() {
    let Some(helm) = helm_for_tests() else { return };
    let mut files = Vec::new();
    for i in 0..6 {
        let name = format!("slow{i}");
        files.extend(chart(&name, ENDLESS));
        files.push((format!("apps/{name}.yaml"), application(&name, &name, &[])));
    }
    let dir = repo(&files);
    let (out, took) = scan(
        dir.path(),
        &helm,
        "json",
        &[("ENVFENCE_TEST_HELM_TIME_BUDGET_MS", "1500")],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let notes = notes(&json_report(&out));
    for i in 0..6 {
        assert!(
            notes.iter().any(|n| n
                == &format!("chart charts/slow{i} is not rendered: this scan's helm template runs reached their limit of 1500 ms in all")),
            "slow{i}: {notes:#?}"
        );
    }
    assert!(took < Duration::from_secs(8), "took {took:?}");
}

/// The render-count cap: past it a chart is not rendered, and the scan is cut.
#[test]
fn renders_past_the_count_cap_are_not_run() {
    let Some(helm) = helm_for_tests() else { return };
    let mut files = chart("web", HONEST);
    for i in 0..3 {
        files.push((
            format!("apps/web{i}.yaml"),
            application(&format!("web{i}"), "web", &[("i", &i.to_string())]),
        ));
    }
    let dir = repo(&files);
    let (out, _) = scan(
        dir.path(),
        &helm,
        "json",
        &[("ENVFENCE_TEST_HELM_RENDERS", "2")],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let report = json_report(&out);
    let refused: Vec<String> = notes(&report)
        .into_iter()
        .filter(|n| {
            n == "chart charts/web is not rendered: this scan already ran helm template 2 times"
        })
        .collect();
    assert_eq!(refused.len(), 1, "{report:#}");
    assert_eq!(placed(&report), 2, "{report:#}");
}

/// Address space for envfence (its own threads' reservations included); helm raises its own
/// soft limit through [`unbounded_helm`], since Go reserves far more than it uses.
const ADDRESS_SPACE: u64 = 512 << 20;

fn prlimit_available() -> bool {
    Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A wrapper (outside the scanned repository) that lifts the soft address-space limit envfence
/// runs under before it starts helm: the limit is envfence's, not helm's.
fn unbounded_helm(dir: &Path, helm: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("helm");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nulimit -S -v unlimited\nexec '{}' \"$@\"\n",
            helm.display()
        ),
    )
    .expect("write wrapper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Defect 9: an ApplicationSet of many apps whose chart prints a lot each. The scan keeps
/// renders until their output reaches the scan-wide cap (3,000,000 bytes here; 64 MiB by
/// default), in request order; the rest are not kept, each with a note, and the scan is cut.
/// envfence stays under an address-space limit meanwhile.
#[test]
fn rendered_output_is_capped_for_the_whole_scan() {
    let Some(helm) = helm_for_tests() else { return };
    if !prlimit_available() {
        eprintln!("prlimit not found; skipping");
        return;
    }
    // About 1.03 MB per render: 256 ConfigMaps of 4,000 bytes, named by the app.
    let big = "{{- range $i := until 256 }}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ $.Release.Name }}-{{ $i }}\ndata:\n  blob: {{ repeat 4000 \"x\" | quote }}\n{{- end }}\n";
    let mut files = chart("big", big);
    let elements: String = (0..12)
        .map(|i| format!("          - n: \"{i:02}\"\n"))
        .collect();
    files.push((
        "apps/big.yaml".into(),
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: big\nspec:\n  generators:\n    - list:\n        elements:\n{elements}  template:\n    metadata:\n      name: 'big-{{{{n}}}}'\n    spec:\n      destination:\n        name: prod-eu\n        namespace: big\n      source:\n        repoURL: https://example.com/repo.git\n        path: charts/big\n"
        ),
    ));
    let dir = repo(&files);
    let tools = tempfile::tempdir().expect("tempdir");
    let wrapper = unbounded_helm(tools.path(), &helm);
    let started = Instant::now();
    let out = Command::new("prlimit")
        .arg(format!("--as={ADDRESS_SPACE}:unlimited"))
        .arg("--")
        .arg(assert_cmd::cargo::cargo_bin("envfence"))
        .args(["scan", "--quiet", "--jobs", "2", "--format", "json"])
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .env("ENVFENCE_CACHE", "off")
        .env("ENVFENCE_HELM", &wrapper)
        .env("ENVFENCE_TEST_HELM_RENDERED_BYTES", "3000000")
        .output()
        .expect("prlimit runs");
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let report = json_report(&out);
    // Two renders fit (2 x 1.03 MB); the third would pass 3,000,000 bytes.
    assert_eq!(placed(&report), 2 * 256, "{report:#}");
    assert!(
        notes(&report).iter().any(|n| n
            == "chart charts/big is not rendered: this scan's renders reached their limit of 3000000 bytes of output or 100000 objects in all"),
        "{report:#}"
    );
    // The ten apps whose renders are not kept stay opaque placements.
    assert_eq!(report["summary"]["coverage"]["opaque"], 10, "{report:#}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

/// Defect 9, objects: many small objects reach the scan-wide object cap first.
#[test]
fn rendered_objects_are_capped_for_the_whole_scan() {
    let Some(helm) = helm_for_tests() else { return };
    let small = "{{- range $i := until 40 }}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ $.Release.Name }}-{{ $i }}\n{{- end }}\n";
    let mut files = chart("small", small);
    for i in 0..4 {
        files.push((
            format!("apps/small{i}.yaml"),
            application(&format!("small{i}"), "small", &[]),
        ));
    }
    let dir = repo(&files);
    let (out, _) = scan(
        dir.path(),
        &helm,
        "json",
        &[("ENVFENCE_TEST_HELM_RENDERED_OBJECTS", "100")],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let report = json_report(&out);
    assert_eq!(placed(&report), 2 * 40, "{report:#}");
}

/// Defect 14, in part: a template that fails with a values file's password (`fail`,
/// `required` with a computed message, `tpl` of a value) never shows it: not in the JSON
/// report, not in the text one. The note keeps a fixed reason and the template line.
#[test]
fn helms_error_text_never_shows_values() {
    let Some(helm) = helm_for_tests() else { return };
    const SECRET: &str = "hunter2-Zq8vX3";
    let cases = [
        ("fail", "{{ fail .Values.password }}\n"),
        (
            "required",
            "a: {{ required (printf \"need %s\" .Values.password) .Values.missing }}\n",
        ),
        ("tpl", "a: {{ tpl .Values.broken . }}\n"),
        (
            "yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: {{ .Values.password }}: [\n",
        ),
    ];
    let mut files = Vec::new();
    for (name, template) in cases {
        files.extend(chart(name, template));
        files.push((
            format!("charts/{name}/values-prod.yaml"),
            format!("password: {SECRET}\nbroken: \"{{{{ {SECRET} }}\"\n"),
        ));
        files.push((
            format!("apps/{name}.yaml"),
            application(name, name, &[]).replace(
                "    path: charts/",
                "    helm:\n      valueFiles:\n        - values-prod.yaml\n    path: charts/",
            ),
        ));
    }
    let dir = repo(&files);
    for format in ["json", "text"] {
        let (out, _) = scan(dir.path(), &helm, format, &[]);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains("hunter2"), "{format}:\n{all}");
        for (name, _) in cases {
            assert!(
                all.contains(&format!("chart charts/{name} was not rendered: a template")),
                "{format} {name}:\n{all}"
            );
        }
        assert!(
            all.contains(
                "stopped the render (`fail` or `required`) at charts/fail/templates/t.yaml:1"
            ),
            "{format}:\n{all}"
        );
    }
}
