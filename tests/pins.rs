//! Pins what a scan finds and where it places things, for the demo and every corpus in
//! `../shared/corpora`: the JSON findings of `scan` and the JSON of `topology`, helm
//! rendering off. Performance work must leave these snapshots as they are (issue 13): a
//! faster scan that changes a finding or a placement is a different scan, not a faster one.
//!
//! Only what varies from run to run is dropped: the scan's duration and the tool's version.
//! Without `../shared/corpora` the corpus pins skip and say so.

mod common;

use std::path::Path;

use common::{corpora, envfence, fixture};
use serde_json::Value;

/// Runs `envfence ARGS PATH` and returns its stdout as JSON, failing on any exit but 0.
fn run_json(args: &[&str], path: &Path) -> Value {
    let out = envfence().args(args).arg(path).output().expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "envfence {args:?} {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "envfence {args:?} {}: stdout is not JSON ({e})",
            path.display()
        )
    })
}

/// The scan report without what changes between runs (its duration) or builds (the version).
fn scan_pin(path: &Path) -> String {
    let mut report = run_json(
        &["scan", "-q", "--format", "json", "--fail-on", "never"],
        path,
    );
    if let Some(summary) = report["summary"].as_object_mut() {
        summary.remove("duration_ms");
    }
    if let Some(tool) = report["tool"].as_object_mut() {
        tool.remove("version");
    }
    pretty(&report)
}

/// The topology report: it has nothing that varies.
fn topology_pin(path: &Path) -> String {
    pretty(&run_json(&["topology", "-q", "--format", "json"], path))
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("JSON serialises");
    text.push('\n');
    text
}

/// Snapshot names from folder names: `fluxcd__flux2-multi-tenancy` → `fluxcd__flux2_multi_tenancy`.
fn snapshot_name(folder: &str) -> String {
    folder
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn pin(name: &str, path: &Path) {
    insta::assert_snapshot!(format!("{name}_scan"), scan_pin(path));
    insta::assert_snapshot!(format!("{name}_topology"), topology_pin(path));
}

#[test]
fn demo_is_pinned() {
    pin("demo", &fixture("demo"));
}

#[test]
fn every_corpus_is_pinned() {
    let Some(dir) = corpora() else {
        eprintln!("skipped: ../shared/corpora is not present");
        return;
    };
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpora readable")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    assert!(!entries.is_empty(), "../shared/corpora holds no repository");
    for entry in entries {
        let name = snapshot_name(&entry.file_name().to_string_lossy());
        pin(&name, &entry.path());
    }
}
