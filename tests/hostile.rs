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

/// A link into `.git/` stays inside the checkout, but git's config there holds the job's token
/// after `actions/checkout` (`http.<url>.extraheader`): it is never read, as a manifest or as
/// the config.
#[test]
fn symlinks_into_the_git_folder_are_never_read() {
    use std::os::unix::fs::symlink;

    let token = "eC1hY2Nlc3MtdG9rZW46Z2hzX1NFQ1JFVA";
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    common::git(root, &["init", "-q"]);
    common::git(
        root,
        &[
            "config",
            "http.https://github.com/.extraheader",
            &format!("AUTHORIZATION: basic {token}"),
        ],
    );
    write_tree(root, &[("good.yaml", GOOD)]);
    std::fs::create_dir_all(root.join("k")).expect("mkdir");
    symlink(".git/config", root.join("leak.yaml")).expect("symlink");
    symlink("../.git/config", root.join("k/config.yaml")).expect("symlink");

    let out = envfence()
        .args(["scan", "--format", "json"])
        .arg(root)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let report = json_report(&out);
    let skipped = skipped_by_file(&report);
    assert_eq!(
        skipped.get("leak.yaml").map(String::as_str),
        Some("symlink into .git")
    );
    assert_eq!(
        skipped.get("k/config.yaml").map(String::as_str),
        Some("symlink into .git")
    );
    assert_eq!(report["findings"], serde_json::json!([]), "{report:#}");

    // The config at a link into .git: one line, nothing of the file.
    symlink(".git/config", root.join(".envfence.yaml")).expect("symlink");
    let out = envfence().args(["scan"]).arg(root).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(".git folder"), "{stderr}");
    for text in [
        stderr.as_ref(),
        String::from_utf8_lossy(&out.stdout).as_ref(),
    ] {
        assert!(
            !text.contains(token) && !text.contains("extraheader"),
            "{text}"
        );
    }
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

/// A block scalar that runs to the end of the file with no final line break is valid YAML
/// (libyaml-safer 0.3.0 panicked on it and the scan exited 101).
#[test]
fn block_scalar_at_end_of_file_without_a_line_break_scans_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(
        dir.path(),
        &[
            ("f.yaml", "a: |\n  x"),
            ("folded.yaml", "a: >-\n  x\n  y"),
            ("trailing-spaces.yaml", "foo: |\n  x\n   "),
        ],
    );
    let out = envfence()
        .args(["scan", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_report(&out);
    assert_eq!(report["findings"], Value::Array(Vec::new()));
    assert_eq!(report["summary"]["files"], 3);
}

/// The same shape inside `.envfence.yaml` is read, not a crash.
#[test]
fn config_ending_in_a_block_scalar_without_a_line_break_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(
        dir.path(),
        &[
            ("good.yaml", GOOD),
            (
                ".envfence.yaml",
                "clusters:\n  - name: prod\n    environment: production\n    server: |\n      https://prod.example",
            ),
        ],
    );
    let out = envfence()
        .arg("scan")
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One 100 KB anchor aliased 10×10×10×10 times: 10,000 nodes (under the node budget) but a
/// gigabyte once copied. Under a 1 GiB address-space limit the scan must finish normally
/// and report the file.
#[test]
fn aliases_of_a_large_value_are_bounded_in_bytes() {
    let prlimit = Path::new("/usr/bin/prlimit");
    if !prlimit.exists() {
        println!("skipped: prlimit (util-linux) is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut bomb = format!("a0: &a0 {}\n", "x".repeat(100_000));
    for i in 1..5 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    write_tree(
        dir.path(),
        &[("good.yaml", GOOD), ("wide-bomb.yaml", &bomb)],
    );
    let binary = assert_cmd::cargo::cargo_bin("envfence");
    let out = std::process::Command::new(prlimit)
        .arg("--as=1073741824")
        .arg(binary)
        .args(["scan", "--format", "json", "--quiet", "-j", "2"])
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_report(&out);
    let by_file = findings_by_file(&report);
    let messages = by_file.get("wide-bomb.yaml").expect("finding");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("invalid-yaml") && m.contains("alias expansion exceeds 16 MiB")),
        "{messages:?}"
    );
    assert!(!by_file.contains_key("good.yaml"));
}

/// A panic inside the per-file guard (injected: `ENVFENCE_TEST_PANIC=reader`) is that file's
/// `invalid-yaml` finding; the other files are read, and nothing is printed on stderr.
#[test]
fn a_panic_while_reading_one_file_is_a_finding_for_that_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(
        dir.path(),
        &[("good.yaml", GOOD), ("envfence-test-panic.yaml", "a: 1\n")],
    );
    let out = envfence()
        .env("ENVFENCE_TEST_PANIC", "reader")
        .env("RUST_BACKTRACE", "1")
        .args(["scan", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let by_file = findings_by_file(&json_report(&out));
    assert_eq!(
        by_file.get("envfence-test-panic.yaml").map(Vec::as_slice),
        Some(
            &["1:\"invalid-yaml\" \"the YAML reader failed: injected test panic\"".to_owned()][..]
        ),
        "{by_file:#?}"
    );
    assert!(!by_file.contains_key("good.yaml"));
}

/// A panic anywhere else (injected outside the guard, on a worker thread) stops every
/// command with one line and exit code 2, never a backtrace and 101.
#[test]
fn an_internal_panic_exits_2_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(
        dir.path(),
        &[("good.yaml", GOOD), ("envfence-test-panic.yaml", "a: 1\n")],
    );
    common::git(dir.path(), &["init", "-q"]);
    common::git(dir.path(), &["add", "-A"]);
    common::git(dir.path(), &["commit", "-q", "-m", "init"]);
    let repo = dir.path().to_string_lossy().into_owned();
    let file = dir.path().join("good.yaml").to_string_lossy().into_owned();
    let commands: [&[&str]; 4] = [
        &["scan", &repo],
        &["scan", "--base", "HEAD", &repo],
        &["topology", &repo],
        &["explain", &file],
    ];
    for args in commands {
        let out = envfence()
            .env("ENVFENCE_TEST_PANIC", "outside")
            .env("RUST_BACKTRACE", "1")
            .args(args)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("envfence: error: internal error: injected test panic at src/"),
            "{args:?}: {stderr}"
        );
    }
}

/// Issue 25, defect 3: a report path that the pull request committed as a symlink
/// (`envfence.sarif -> ../outside/target`) is refused with one line and exit code 2; the
/// symlink's target outside the checkout is never written (`scan --output` and `github --sarif`).
#[cfg(unix)]
#[test]
fn a_committed_symlink_at_a_report_path_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).expect("outside");
    write_tree(&repo, &[("apps/web/config.yaml", GOOD)]);
    let target = outside.join("target");
    let original = "#!/bin/sh\necho untouched\n";
    std::fs::write(&target, original).expect("target");
    std::os::unix::fs::symlink("../outside/target", repo.join("envfence.sarif")).expect("link");
    let runs: [&[&str]; 3] = [
        &[
            "scan",
            "-q",
            "--format",
            "sarif",
            "--output",
            "envfence.sarif",
            ".",
        ],
        &["scan", "-q", "--output", "envfence.sarif", "."],
        &[
            "github",
            "-q",
            "--comment",
            "never",
            "--sarif",
            "envfence.sarif",
            ".",
        ],
    ];
    for args in runs {
        let out = envfence()
            .args(args)
            .current_dir(&repo)
            .env("GITHUB_EVENT_NAME", "push")
            .env_remove("GITHUB_EVENT_PATH")
            .env_remove("GITHUB_WORKSPACE")
            .env_remove("GITHUB_TOKEN")
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_STEP_SUMMARY")
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains("envfence.sarif") && stderr.contains("symlink"),
            "{args:?}: {stderr}"
        );
        assert_eq!(
            std::fs::read_to_string(&target).expect("target"),
            original,
            "{args:?}"
        );
    }
}

/// A link to a stream is not a file to overwrite: `--output /dev/stdout` still writes the
/// report to standard output, and a committed link to `/dev/null` swallows it.
#[test]
fn a_report_path_that_links_to_a_stream_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    write_tree(&repo, &[("apps/web/config.yaml", GOOD)]);
    let out = envfence()
        .args([
            "scan",
            "-q",
            "--format",
            "json",
            "--output",
            "/dev/stdout",
            ".",
        ])
        .current_dir(&repo)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["version"], 1);
    std::os::unix::fs::symlink("/dev/null", repo.join("null.json")).expect("link");
    let out = envfence()
        .args([
            "scan",
            "-q",
            "--format",
            "json",
            "--output",
            "null.json",
            ".",
        ])
        .current_dir(&repo)
        .output()
        .expect("runs");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
