//! Budgets against hostile repositories (DESIGN §10): a kustomize fan-out and ApplicationSet
//! matrices that would expand to millions of objects finish in seconds, under an address-space
//! limit, with an `unresolved-placement` finding that names the limit. The real binary runs
//! under `prlimit --as`, since the tests share one process.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::write_tree;
use serde_json::Value;

/// Address space granted to the binary (two jobs): enough for its threads' reservations and
/// for the bounded scans (they pass at 256 MiB), far below what the unbounded expansions
/// needed (each aborted under 1 GiB).
const ADDRESS_SPACE: u64 = 512 << 20;
const DEADLINE: Duration = Duration::from_secs(30);

fn prlimit_available() -> bool {
    Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `envfence scan --format json` on `dir` under the address-space limit; returns the
/// report, failing on an abnormal exit or a slow run.
fn scan_bounded(dir: &Path) -> Option<Value> {
    if !prlimit_available() {
        eprintln!("prlimit not found; skipping the memory-bound check");
        return None;
    }
    let started = Instant::now();
    let out = Command::new("prlimit")
        .arg(format!("--as={ADDRESS_SPACE}"))
        .arg("--")
        .arg(assert_cmd::cargo::cargo_bin("envfence"))
        .args([
            "scan",
            "--quiet",
            "--jobs",
            "2",
            "--format",
            "json",
            "--fail-on",
            "never",
        ])
        .arg(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("prlimit runs");
    let took = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "envfence did not finish normally under a {ADDRESS_SPACE}-byte address space ({:?}); stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(took < DEADLINE, "took {took:?}");
    Some(common::json_report(&out))
}

/// Messages of the `unresolved-placement` findings.
fn unresolved(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"] == "unresolved-placement")
        .map(|f| {
            format!(
                "{}:{} {}",
                f["file"].as_str().unwrap_or(""),
                f["line"],
                f["message"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// `clusters/prod` includes level 0; each of the two folders of a level includes both folders
/// of the next, with its own name prefix (so every path is a distinct object, as kustomize
/// builds it): 2^depth objects from 2 * depth + 3 small files.
fn kustomize_fan_out(dir: &Path, depth: usize) {
    let mut files: Vec<(String, String)> = vec![(
        "clusters/prod/kustomization.yaml".into(),
        "resources:\n- ../../fan/l0/a\n- ../../fan/l0/b\n".into(),
    )];
    for level in 0..depth {
        for folder in ["a", "b"] {
            let includes = if level + 1 < depth {
                format!("- ../../l{next}/a\n- ../../l{next}/b\n", next = level + 1)
            } else {
                "- ../../leaf\n".to_owned()
            };
            files.push((
                format!("fan/l{level}/{folder}/kustomization.yaml"),
                format!("resources:\n{includes}namePrefix: {folder}-\n"),
            ));
        }
    }
    files.push((
        "fan/leaf/kustomization.yaml".into(),
        "resources:\n- configmap.yaml\n".into(),
    ));
    files.push((
        "fan/leaf/configmap.yaml".into(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n".into(),
    ));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    write_tree(dir, &refs);
}

#[test]
fn kustomize_fan_out_stops_at_the_object_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    kustomize_fan_out(dir.path(), 24);
    let Some(report) = scan_bounded(dir.path()) else {
        return;
    };
    let notes = unresolved(&report);
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("clusters/prod/kustomization.yaml:1 ")
                && n.contains(
                    "kustomization clusters/prod/kustomization.yaml expands to 16,777,216 objects"
                )
                && n.contains("the limit is 10,000 (limits.kustomize-objects)")),
        "{notes:#?}"
    );
}

#[test]
fn kustomize_object_limit_is_configurable() {
    let dir = tempfile::tempdir().expect("tempdir");
    kustomize_fan_out(dir.path(), 6);
    write_tree(
        dir.path(),
        &[(".envfence.yaml", "limits:\n  kustomize-objects: 40\n")],
    );
    let out = common::envfence()
        .args(["topology", "--quiet", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let t = common::json_report(&out);
    let placements = t["placements"].as_array().expect("placements");
    assert_eq!(placements.len(), 40);
    let reasons: Vec<&str> = t["unresolved"]
        .as_array()
        .expect("unresolved")
        .iter()
        .filter_map(|u| u["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        vec!["kustomization clusters/prod/kustomization.yaml expands to 64 objects (each path through shared bases counted); the limit is 40 (limits.kustomize-objects): the first 40 are placed, the rest are not"]
    );
    // Under the limit, every path is placed and nothing is said.
    write_tree(
        dir.path(),
        &[(".envfence.yaml", "limits:\n  kustomize-objects: 64\n")],
    );
    let out = common::envfence()
        .args(["topology", "--quiet", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let t = common::json_report(&out);
    assert_eq!(t["placements"].as_array().expect("placements").len(), 64);
    assert_eq!(t["unresolved"], serde_json::json!([]));
}

fn list(key: &str, count: usize, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut text = format!("{pad}- list:\n{pad}    elements:\n");
    for i in 0..count {
        text.push_str(&format!("{pad}    - {key}: v{i}\n"));
    }
    text
}

fn application_set(dir: &Path, generators: &str) {
    write_tree(
        dir,
        &[
            (
                "clusters/prod/appset.yaml",
                &format!(
                    "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: fan
spec:
  generators:
{generators}  template:
    metadata:
      name: 'app-{{{{k0}}}}'
    spec:
      project: default
      source:
        repoURL: https://example.com/repo.git
        path: apps/x
      destination:
        name: prod
        namespace: default
"
                ),
            ),
            (
                "apps/x/configmap.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n",
            ),
        ],
    );
}

/// A matrix of `width` list elements, nested `levels` deep: width^levels parameter sets.
fn nested_matrix(width: usize, levels: usize) -> String {
    fn level(width: usize, levels: usize, at: usize, indent: usize) -> String {
        if at + 1 == levels {
            return list(&format!("k{at}"), width, indent);
        }
        let pad = " ".repeat(indent);
        format!(
            "{pad}- matrix:\n{pad}    generators:\n{}{}",
            list(&format!("k{at}"), width, indent + 4),
            level(width, levels, at + 1, indent + 4)
        )
    }
    level(width, levels, 0, 2)
}

#[test]
fn nested_matrix_stops_at_the_parameter_set_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    application_set(dir.path(), &nested_matrix(30, 5));
    let Some(report) = scan_bounded(dir.path()) else {
        return;
    };
    let notes = unresolved(&report);
    assert!(
        notes.iter().any(|n| n.starts_with("clusters/prod/appset.yaml:7 ")
            && n.contains("matrix generator would yield 24,300,000 parameter sets; the limit is 10,000 (limits.appset-parameter-sets)")
            && n.contains("the other 24,290,000 are not placed")),
        "{notes:#?}"
    );
}

#[test]
fn square_matrix_stops_at_the_parameter_set_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let generators = format!(
        "  - matrix:\n      generators:\n{}{}",
        list("k0", 1000, 6),
        list("k1", 1000, 6)
    );
    application_set(dir.path(), &generators);
    let Some(report) = scan_bounded(dir.path()) else {
        return;
    };
    let notes = unresolved(&report);
    assert!(
        notes.iter().any(|n| n.starts_with("clusters/prod/appset.yaml:7 ")
            && n.contains("matrix generator would yield 1,000,000 parameter sets; the limit is 10,000 (limits.appset-parameter-sets)")),
        "{notes:#?}"
    );
}

#[test]
fn appset_parameter_set_limit_is_configurable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let generators = format!(
        "  - matrix:\n      generators:\n{}{}",
        list("k0", 3, 6),
        list("k1", 4, 6)
    );
    application_set(dir.path(), &generators);
    let topology = |dir: &Path| {
        let out = common::envfence()
            .args(["topology", "--quiet", "--format", "json"])
            .arg(dir)
            .output()
            .expect("runs");
        common::json_report(&out)
    };
    let t = topology(dir.path());
    assert_eq!(t["unresolved"], serde_json::json!([]));
    write_tree(
        dir.path(),
        &[(".envfence.yaml", "limits:\n  appset-parameter-sets: 5\n")],
    );
    let t = topology(dir.path());
    let reasons: Vec<&str> = t["unresolved"]
        .as_array()
        .expect("unresolved")
        .iter()
        .filter_map(|u| u["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        vec!["matrix generator would yield 12 parameter sets; the limit is 5 (limits.appset-parameter-sets): the first 5 are expanded, the other 7 are not placed"]
    );
}

/// Issue 25, defect 11: a repository's `limits:` may only lower a budget. A config that
/// raises `appset-parameter-sets` to 1,000,000 still gets the default of 10,000: a matrix of
/// 101 × 100 is cut at 10,000 with the note (before: all 10,100 expanded, no note).
#[test]
fn a_repository_config_cannot_raise_a_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let generators = format!(
        "  - matrix:\n      generators:\n{}{}",
        list("k0", 101, 6),
        list("k1", 100, 6)
    );
    application_set(dir.path(), &generators);
    write_tree(
        dir.path(),
        &[(
            ".envfence.yaml",
            "limits:\n  appset-parameter-sets: 1000000\n  kustomize-objects: 1000000\n  expanded-objects: 1000000\n",
        )],
    );
    let out = common::envfence()
        .args(["topology", "--quiet", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let t = common::json_report(&out);
    let reasons: Vec<&str> = t["unresolved"]
        .as_array()
        .expect("unresolved")
        .iter()
        .filter_map(|u| u["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        vec!["matrix generator would yield 10,100 parameter sets; the limit is 10,000 (limits.appset-parameter-sets): the first 10,000 are expanded, the other 100 are not placed"]
    );
}

#[test]
fn expanded_objects_limit_spans_the_whole_scan() {
    let dir = tempfile::tempdir().expect("tempdir");
    kustomize_fan_out(dir.path(), 6);
    // A second cluster delivers the same 64 objects; the scan's budget is 100.
    write_tree(
        dir.path(),
        &[
            (
                "clusters/staging/kustomization.yaml",
                "resources:\n- ../../fan/l0/a\n- ../../fan/l0/b\n",
            ),
            (".envfence.yaml", "limits:\n  expanded-objects: 100\n"),
        ],
    );
    let out = common::envfence()
        .args(["topology", "--quiet", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let t = common::json_report(&out);
    assert_eq!(t["placements"].as_array().expect("placements").len(), 100);
    let reasons: Vec<&str> = t["unresolved"]
        .as_array()
        .expect("unresolved")
        .iter()
        .filter_map(|u| u["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        vec!["kustomization clusters/staging/kustomization.yaml expands to 64 objects, but only 36 of the scan's 100 expanded objects are left (limits.expanded-objects): the first 36 are placed, the rest are not"]
    );
}

/// Issue 25: a scan that a budget cut short exits 3 and says so first, in every format;
/// `--fail-on never` keeps 0, and a complete scan of the same repository exits as before.
#[test]
fn a_scan_cut_by_a_budget_exits_3_and_says_so_first_in_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    kustomize_fan_out(dir.path(), 6);
    write_tree(
        dir.path(),
        &[(".envfence.yaml", "limits:\n  kustomize-objects: 40\n")],
    );
    let scan = |format: &str, fail_on: &str| {
        common::envfence()
            .args(["scan", "--quiet", "--format", format, "--fail-on", fail_on])
            .arg(dir.path())
            .env("NO_COLOR", "1")
            .output()
            .expect("runs")
    };
    let incomplete = "Incomplete: a budget cut this scan short";
    let cut = "limits.kustomize-objects at clusters/prod/kustomization.yaml:1: kustomization clusters/prod/kustomization.yaml expands to 64 objects; the first 40 are placed, the rest are not";

    let text = scan("text", "error");
    assert_eq!(text.status.code(), Some(3), "{text:?}");
    let stdout = String::from_utf8_lossy(&text.stdout);
    let mut lines = stdout.lines();
    assert!(
        lines.next().is_some_and(|l| l.starts_with(incomplete)),
        "{stdout}"
    );
    assert_eq!(lines.next().map(str::trim), Some(cut), "{stdout}");

    let json = scan("json", "error");
    assert_eq!(json.status.code(), Some(3));
    let report = common::json_report(&json);
    assert_eq!(
        report["incomplete"],
        serde_json::json!([{
            "budget": "limits.kustomize-objects",
            "file": "clusters/prod/kustomization.yaml",
            "line": 1,
            "detail": "kustomization clusters/prod/kustomization.yaml expands to 64 objects; the first 40 are placed, the rest are not"
        }])
    );
    // First: ahead of the findings in the document.
    let json_text = String::from_utf8_lossy(&json.stdout);
    assert!(json_text.find("\"incomplete\"") < json_text.find("\"findings\""));

    let github = scan("github", "error");
    assert_eq!(github.status.code(), Some(3));
    let annotations = String::from_utf8_lossy(&github.stdout);
    assert!(
        annotations
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("::error title=envfence%3A scan incomplete::Incomplete")),
        "{annotations}"
    );

    let markdown = scan("markdown", "error");
    assert_eq!(markdown.status.code(), Some(3));
    let body = String::from_utf8_lossy(&markdown.stdout);
    let top: Vec<&str> = body.lines().take(3).collect();
    assert_eq!(top[1], "> [!WARNING]", "{body}");
    assert!(top[2].contains(incomplete), "{body}");
    assert!(!body.contains("no non-production workload reaches production"));

    let sarif = scan("sarif", "error");
    assert_eq!(sarif.status.code(), Some(3));
    let log = common::json_report(&sarif);
    let invocation = &log["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    let note = invocation["toolExecutionNotifications"][0]["message"]["text"]
        .as_str()
        .expect("a notification");
    assert!(
        note.starts_with(incomplete) && note.ends_with(cut),
        "{note}"
    );

    assert_eq!(scan("text", "never").status.code(), Some(0));

    // The same repository within its budget: complete, so the exit code is the findings'.
    write_tree(
        dir.path(),
        &[(".envfence.yaml", "limits:\n  kustomize-objects: 64\n")],
    );
    let complete = scan("json", "error");
    assert_ne!(complete.status.code(), Some(3));
    assert!(common::json_report(&complete).get("incomplete").is_none());
    let sarif = common::json_report(&scan("sarif", "error"));
    assert_eq!(
        sarif["runs"][0]["invocations"][0]["executionSuccessful"],
        true
    );
}
