//! Hostile input never stops a scan: each case gets a finding or a skip note, the other files
//! are still read, the exit code is 0 or 1, and nothing outside the repository is read.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{envfence, json_report, write_tree};
use serde_json::Value;

fn scan_json(dir: &Path, extra: &[&str]) -> (Option<i32>, Value) {
    let out = envfence()
        .args(["scan", "--format", "json"])
        .args(extra)
        .arg(dir)
        .output()
        .expect("runs");
    (out.status.code(), json_report(&out))
}

/// file → messages of its findings
fn findings_by_file(report: &Value) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in report["findings"].as_array().expect("findings") {
        map.entry(f["file"].as_str().unwrap_or("").to_owned())
            .or_default()
            .push(format!("{}:{} {}", f["line"], f["rule"], f["message"]));
    }
    map
}

/// file → skip category
fn skipped_by_file(report: &Value) -> BTreeMap<String, String> {
    report["summary"]["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .map(|s| {
            (
                s["file"].as_str().unwrap_or("").to_owned(),
                s["category"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

const GOOD: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: still-read\ndata:\n  a: b\n";

fn alias_bomb() -> String {
    let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..=9 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    text
}

#[test]
fn broken_text_gets_invalid_yaml_with_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Nested block sequences on one line (`- - - x`): 5,000 levels in 10 KB. (Indented
    // mappings that deep would be a 12 MB file, skipped by the size cap before parsing.)
    let deep_block = format!("{}x\n", "- ".repeat(5000));
    write_tree(
        dir.path(),
        &[
            ("good.yaml", GOOD),
            ("unterminated.yaml", "a: 1\nb: \"never closed\nc: 3\n"),
            ("tabs.yaml", "metadata:\n\tname: x\n"),
            ("bomb.yaml", &alias_bomb()),
            (
                "deep-flow.yaml",
                &format!("x: {}{}\n", "[".repeat(5000), "]".repeat(5000)),
            ),
            ("deep-block.yaml", &deep_block),
        ],
    );
    std::fs::write(
        dir.path().join("latin1.yaml"),
        b"kind: ConfigMap\ndata:\n  city: M\xfcnchen\n",
    )
    .expect("write");
    let (code, report) = scan_json(dir.path(), &[]);
    assert_eq!(code, Some(0), "invalid-yaml is a warning");
    let by_file = findings_by_file(&report);
    let expect = |file: &str, needle: &str| {
        let messages = by_file
            .get(file)
            .unwrap_or_else(|| panic!("no finding for {file}: {by_file:#?}"));
        assert!(
            messages.iter().any(|m| m.contains(needle)),
            "{file}: {messages:?}"
        );
    };
    expect("unterminated.yaml", "invalid-yaml");
    expect("tabs.yaml", "2:\"invalid-yaml\"");
    expect("tabs.yaml", "a tab in indentation");
    expect("bomb.yaml", "alias bomb");
    expect("deep-flow.yaml", "nesting deeper than");
    expect("deep-block.yaml", "nesting deeper than");
    expect("latin1.yaml", "3:\"invalid-yaml\"");
    expect("latin1.yaml", "not valid UTF-8 (byte 0xFC)");
    assert!(!by_file.contains_key("good.yaml"));
    assert_eq!(report["summary"]["files"], 7);
    let finding = report["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["file"] == "latin1.yaml"))
        .expect("latin1 finding");
    assert_eq!(
        finding["column"], 10,
        "column of the first bad byte (after `  city: M`)"
    );
}

#[test]
fn binary_and_huge_files_are_skipped_unread() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(dir.path(), &[("good.yaml", GOOD)]);
    std::fs::write(
        dir.path().join("image.yaml"),
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
    )
    .expect("write");
    // 64 MiB of valid YAML: over the default 4 MiB cap.
    let line = "key: value\n";
    let huge = line.repeat((64 << 20) / line.len() + 1);
    std::fs::write(dir.path().join("huge.yaml"), huge).expect("write");
    let (code, report) = scan_json(dir.path(), &[]);
    assert_eq!(code, Some(0));
    let skipped = skipped_by_file(&report);
    assert_eq!(
        skipped.get("image.yaml").map(String::as_str),
        Some("binary")
    );
    assert_eq!(
        skipped.get("huge.yaml").map(String::as_str),
        Some("too large")
    );
    assert_eq!(report["summary"]["files"], 1);
    assert_eq!(report["findings"].as_array().map(Vec::len), Some(0));

    // The cap is inclusive: a file of exactly the cap is read, one byte less skips it.
    let size = GOOD.len().to_string();
    let smaller = (GOOD.len() - 1).to_string();
    let (_, report) = scan_json(dir.path(), &["--max-file-size", &size]);
    assert_eq!(report["summary"]["files"], 1);
    let (_, report) = scan_json(dir.path(), &["--max-file-size", &smaller]);
    assert_eq!(
        skipped_by_file(&report)
            .get("good.yaml")
            .map(String::as_str),
        Some("too large")
    );
    assert_eq!(report["summary"]["files"], 0);
}

#[test]
fn two_hundred_thousand_documents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let many = "---\na: 1\n".repeat(200_000);
    write_tree(dir.path(), &[("many.yaml", &many), ("good.yaml", GOOD)]);
    let (code, report) = scan_json(dir.path(), &[]);
    assert_eq!(code, Some(0));
    assert_eq!(report["summary"]["documents"], 200_001);
}

#[cfg(unix)]
#[test]
fn symlinks_never_lead_outside_the_repository() {
    use std::os::unix::fs::symlink;

    let outside = tempfile::tempdir().expect("tempdir");
    // If envfence ever read this file, it would report invalid-yaml for it.
    write_tree(
        outside.path(),
        &[
            ("secret.yaml", "token: [unterminated\n"),
            ("dir/x.yaml", "a: [\n"),
        ],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_tree(root, &[("good.yaml", GOOD), ("real/inside.yaml", GOOD)]);
    symlink("/etc/passwd", root.join("passwd.yaml")).expect("symlink");
    symlink(outside.path().join("secret.yaml"), root.join("secret.yaml")).expect("symlink");
    symlink(outside.path().join("dir"), root.join("outside-dir")).expect("symlink");
    symlink("loop-b.yaml", root.join("loop-a.yaml")).expect("symlink");
    symlink("loop-a.yaml", root.join("loop-b.yaml")).expect("symlink");
    symlink("missing.yaml", root.join("dangling.yaml")).expect("symlink");
    symlink("real/inside.yaml", root.join("alias.yaml")).expect("symlink");
    symlink("real", root.join("real-link")).expect("symlink");

    let (code, report) = scan_json(root, &[]);
    assert_eq!(code, Some(0));
    let skipped = skipped_by_file(&report);
    let expected: BTreeMap<String, String> = [
        ("dangling.yaml", "broken symlink"),
        ("loop-a.yaml", "broken symlink"),
        ("loop-b.yaml", "broken symlink"),
        ("outside-dir", "symlink out of the repository"),
        ("passwd.yaml", "symlink out of the repository"),
        ("real-link", "symlinked directory"),
        ("secret.yaml", "symlink out of the repository"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect();
    assert_eq!(skipped, expected);
    assert_eq!(
        report["findings"].as_array().map(Vec::len),
        Some(0),
        "{report:#}"
    );
    // good.yaml, real/inside.yaml, and alias.yaml (a link that stays inside).
    assert_eq!(report["summary"]["files"], 3);
}

#[test]
fn gitignore_and_config_ignore_are_honoured() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(
        dir.path(),
        &[
            (".gitignore", "build/\n*.generated.yaml\n"),
            ("apps/.gitignore", "!keep.generated.yaml\n"),
            ("build/out.yaml", "a: [\n"),
            ("x.generated.yaml", "a: [\n"),
            ("apps/keep.generated.yaml", GOOD),
            ("vendor/lib/broken.yaml", "a: [\n"),
            (".git/config.yaml", "a: [\n"),
            (".envfence.yaml", "ignore: [\"vendor/**\"]\n"),
            ("good.yaml", GOOD),
        ],
    );
    let (code, report) = scan_json(dir.path(), &[]);
    assert_eq!(code, Some(0));
    assert_eq!(
        report["findings"].as_array().map(Vec::len),
        Some(0),
        "{report:#}"
    );
    // good.yaml, apps/keep.generated.yaml, .envfence.yaml
    assert_eq!(report["summary"]["files"], 3);
    assert_eq!(
        report["summary"]["ignored"], 2,
        "x.generated.yaml and vendor/lib/broken.yaml"
    );
}
