//! The official YAML test suite (`../shared/yaml-test-suite/`, one folder per case with an
//! `in.yaml`) through the real binary: every input scans with exit 0 or 1, and the YAML reader
//! never fails (a panic caught by the per-file guard would be an `invalid-yaml` finding that
//! says "the YAML reader failed"). Skipped, with a note, when the suite is not beside the
//! checkout.

mod common;

use std::path::{Path, PathBuf};

use common::{envfence, files_under, json_report, repo_root};
use serde_json::Value;

fn suite() -> Option<PathBuf> {
    let dir = repo_root()
        .join("..")
        .join("shared")
        .join("yaml-test-suite");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipped: {} is absent", dir.display());
        None
    }
}

/// Every `in.yaml` under `dir`, as (case name like `L24T/01`, path).
fn cases(dir: &Path) -> Vec<(String, PathBuf)> {
    files_under(dir, |name| name == "in.yaml")
        .into_iter()
        .map(|path| {
            let folder = path.parent().unwrap_or(dir);
            let name = folder
                .strip_prefix(dir)
                .unwrap_or(folder)
                .to_string_lossy()
                .replace('\\', "/");
            (name, path)
        })
        .collect()
}

fn scan(repo: &Path) -> (Option<i32>, String, Value) {
    let out = envfence()
        .args(["scan", "--format", "json", "--quiet"])
        .arg(repo)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), stderr, json_report(&out))
}

#[test]
fn every_input_of_the_suite_scans() {
    let Some(dir) = suite() else { return };
    let cases = cases(&dir);
    assert!(cases.len() > 300, "only {} cases found", cases.len());
    // One repository with every input as its own file: one run of the binary, not 400.
    let repo = tempfile::tempdir().expect("tempdir");
    for (name, path) in &cases {
        let file = repo.path().join(format!("{}.yaml", name.replace('/', "-")));
        std::fs::copy(path, file).expect("copy");
    }
    let (code, stderr, report) = scan(repo.path());
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}: {stderr}");
    assert!(stderr.is_empty(), "stderr: {stderr}");
    let reader_failures: Vec<&Value> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| {
            f["message"]
                .as_str()
                .is_some_and(|m| m.contains("YAML reader failed"))
        })
        .collect();
    assert!(
        reader_failures.is_empty(),
        "the reader failed on {reader_failures:#?}"
    );
    let scanned = report["summary"]["files"].as_u64().unwrap_or(0)
        + report["summary"]["skipped"]
            .as_array()
            .map_or(0, |s| s.len() as u64);
    assert_eq!(
        scanned,
        cases.len() as u64,
        "every input is read or skipped"
    );
}

/// The two valid inputs on which libyaml-safer 0.3.0 panicked: a block scalar whose last line
/// has no line break (`L24T/01`), and a tag followed by `,` in a flow mapping (`WZ62`).
#[test]
fn inputs_that_made_the_reader_panic_load_without_a_finding() {
    let Some(dir) = suite() else { return };
    for case in ["L24T/01", "WZ62"] {
        let repo = tempfile::tempdir().expect("tempdir");
        std::fs::copy(dir.join(case).join("in.yaml"), repo.path().join("in.yaml")).expect("copy");
        let (code, stderr, report) = scan(repo.path());
        assert_eq!(code, Some(0), "{case}: {stderr}");
        assert!(stderr.is_empty(), "{case}: {stderr}");
        assert_eq!(report["findings"], Value::Array(Vec::new()), "{case}");
        assert_eq!(report["summary"]["files"], 1, "{case}");
    }
}
