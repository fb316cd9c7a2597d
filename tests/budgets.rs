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

#[test]
fn kustomize_fan_out_stops_at_the_object_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::kustomize_fan_out(dir.path(), 24);
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
    common::kustomize_fan_out(dir.path(), 6);
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
    common::kustomize_fan_out(dir.path(), 6);
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
    common::kustomize_fan_out(dir.path(), 6);
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

/// Runs `envfence ARGS` in `dir` under a 256 MiB address space and a deadline, with `env`
/// set; returns the exit code and the JSON report, failing on a crash, a timeout or a report
/// that is not JSON.
fn run_bounded(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Option<(i32, Value)> {
    if !prlimit_available() {
        eprintln!("prlimit not found; skipping the memory-bound check");
        return None;
    }
    let mut cmd = assert_cmd::Command::new("prlimit");
    cmd.arg(format!("--as={}", 256u64 << 20))
        .arg("--")
        .arg(assert_cmd::cargo::cargo_bin("envfence"))
        .args(["scan", "--quiet", "--jobs", "2", "--format", "json"])
        .args(args)
        .arg(".")
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("ENVFENCE_HELM", "off")
        .env("MALLOC_ARENA_MAX", "2")
        .timeout(Duration::from_secs(20));
    for (key, value) in env {
        cmd.env(key, value);
    }
    let started = Instant::now();
    let out = cmd.output().expect("prlimit runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code().unwrap_or_else(|| {
        panic!(
            "envfence was stopped ({:?}, after {:?}): over the deadline, or killed; stderr:\n{stderr}",
            out.status,
            started.elapsed()
        )
    });
    assert!(!stderr.contains("panicked"), "{stderr}");
    Some((code, common::json_report(&out)))
}

/// A repository whose work tree (and `HEAD`) is one ConfigMap, and whose tag `fanout` holds
/// `apps/`: `levels` levels of `width` folders, each folder of a level the same tree object,
/// over `width` files named `f<i>.<extension>` (one blob): width^(levels + 1) files listed,
/// a few hundred KiB in `.git`.
fn shared_subtree_repo(dir: &Path, width: usize, levels: usize, extension: &str) {
    common::git(dir, &["init", "-q"]);
    let configmap = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n";
    write_tree(dir, &[("configmap.yaml", configmap)]);
    common::git(dir, &["add", "-A"]);
    common::git(dir, &["commit", "-q", "-m", "small"]);
    let repo = git2::Repository::open(dir).expect("open");
    let blob = repo.blob(configmap.as_bytes()).expect("blob");
    let mut level = repo.treebuilder(None).expect("treebuilder");
    for i in 0..width {
        level
            .insert(format!("f{i}.{extension}"), blob, 0o100644)
            .expect("insert");
    }
    let mut tree = level.write().expect("leaf tree");
    for _ in 0..levels {
        let mut level = repo.treebuilder(None).expect("treebuilder");
        for i in 0..width {
            level
                .insert(format!("d{i}"), tree, 0o040000)
                .expect("insert");
        }
        tree = level.write().expect("tree");
    }
    let mut top = repo.treebuilder(None).expect("treebuilder");
    top.insert("apps", tree, 0o040000).expect("insert");
    let root = repo.find_tree(top.write().expect("root")).expect("root");
    let signature = git2::Signature::now("envfence tests", "tests@envfence.invalid").expect("sig");
    let commit = repo
        .commit(None, &signature, &signature, "fan-out", &root, &[])
        .expect("commit");
    repo.reference("refs/tags/fanout", commit, false, "fan-out")
        .expect("tag");
}

/// Issue 25, defect 12: a base revision of 100 × 100 × 100 shared subtrees (a 200 KiB
/// `.git`) lists a million YAML files; listing, reading and parsing them all took 14 s and
/// 1.15 GB (47 s in a debug build). The listing now stops at its file limit (lowered here to
/// 1,000 by the testing knob, so that what was listed is read quickly), keeps what it listed,
/// and the scan ends incomplete: exit 3.
#[test]
fn a_revision_of_shared_subtrees_is_listed_up_to_the_file_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    shared_subtree_repo(dir.path(), 100, 2, "yaml");
    let knob = [("ENVFENCE_TEST_MAX_LISTED_FILES", "1000")];
    let Some((code, report)) = run_bounded(dir.path(), &["--base", "fanout"], &knob) else {
        return;
    };
    assert_eq!(code, 3, "{report:#}");
    assert_eq!(report["summary"]["files"], 1, "{report:#}");
    assert_eq!(report["summary"]["comparison"]["new"], 0, "{report:#}");
    // The same revision as the head: its listing is cut too.
    let Some((code, report)) =
        run_bounded(dir.path(), &["--base", "HEAD", "--head", "fanout"], &knob)
    else {
        return;
    };
    assert_eq!(code, 3);
    assert_eq!(report["summary"]["files"], 1000, "{:#}", report["summary"]);
}

/// A thousand folders of a thousand folders of a thousand files that are not YAML: a billion
/// entries to look at, in a 200 KiB `.git`. The listing stops at its entry limit (1,000,000)
/// at its real value, in well under a second; before, the walk went on for hours.
#[test]
fn a_revision_of_a_billion_entries_stops_at_the_entry_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    shared_subtree_repo(dir.path(), 1000, 2, "txt");
    let Some((code, report)) = run_bounded(dir.path(), &["--base", "fanout"], &[]) else {
        return;
    };
    assert_eq!(code, 3, "{report:#}");
    assert_eq!(report["summary"]["comparison"]["fixed"], 0, "{report:#}");
}

/// The working tree has the same file limit: a walk past it stops and the scan exits 3.
/// Symlinked folders (a loop to `.`, a link to `..`) are never entered, so they cannot make
/// the walk endless; under the limit, the same tree scans whole (exit 0).
#[test]
fn the_working_tree_is_walked_up_to_the_file_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files: Vec<(String, &str)> = (0..30)
        .map(|i| {
            (
                format!("apps/a{}/cm{i}.yaml", i % 3),
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    write_tree(dir.path(), &refs);
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(".", dir.path().join("apps/loop")).expect("symlink");
        std::os::unix::fs::symlink("..", dir.path().join("apps/a0/up")).expect("symlink");
    }
    let knob = [("ENVFENCE_TEST_MAX_LISTED_FILES", "10")];
    let Some((code, report)) = run_bounded(dir.path(), &[], &knob) else {
        return;
    };
    assert_eq!(code, 3, "{report:#}");
    assert!(
        report["summary"]["files"].as_u64().is_some_and(|n| n <= 10),
        "{:#}",
        report["summary"]
    );
    let (code, report) = run_bounded(dir.path(), &[], &[]).expect("prlimit was found");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["summary"]["files"], 30, "{:#}", report["summary"]);
}

/// Many cuts (one per kustomization over its object limit) are listed ten at a time in the
/// human-readable formats, with how many more; JSON lists every one.
#[test]
fn many_cuts_are_listed_ten_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files: Vec<(String, String)> = vec![(
        ".envfence.yaml".into(),
        "limits:\n  kustomize-objects: 1\n".into(),
    )];
    for i in 0..14 {
        files.push((
            format!("clusters/c{i}/kustomization.yaml"),
            "resources:\n- a.yaml\n- b.yaml\n".into(),
        ));
        for n in ["a", "b"] {
            files.push((
                format!("clusters/c{i}/{n}.yaml"),
                format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {n}{i}\n"),
            ));
        }
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    write_tree(dir.path(), &refs);
    let scan = |format: &str| {
        common::envfence()
            .args(["scan", "--quiet", "--format", format])
            .arg(dir.path())
            .env("NO_COLOR", "1")
            .output()
            .expect("runs")
    };
    let json = scan("json");
    assert_eq!(json.status.code(), Some(3));
    let all = common::json_report(&json)["incomplete"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(all, 14);
    let text = String::from_utf8_lossy(&scan("text").stdout).into_owned();
    let listed: Vec<&str> = text.lines().skip(1).take_while(|l| !l.is_empty()).collect();
    assert_eq!(listed.len(), 11, "{text}");
    assert_eq!(
        listed[10].trim(),
        "and 4 more (the JSON report lists every cut)"
    );
    let sarif = common::json_report(&scan("sarif"));
    let notes = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(notes, 10);
}
