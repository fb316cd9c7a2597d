//! The block-subset YAML reader is a shortcut, never a second grammar: wherever it accepts a
//! text, its stream (documents, nodes, spans, scalar kinds) equals libyaml's, byte for byte.
//! Held to that on the official YAML test suite, on every YAML file of the shared corpora,
//! the fixtures and the case directories, and on random block YAML and byte flips of it.
//! The corpora also show the shortcut is taken: most real manifests are within the subset.

mod common;

use std::path::{Path, PathBuf};

use common::{files_under, repo_root};
use envfence::documents::yaml::{read_block_subset, read_with_libyaml_etc};
use proptest::prelude::*;

/// Every file under `dir` whose name ends with one of `suffixes`.
fn ending_with(dir: &Path, suffixes: &[&str]) -> Vec<PathBuf> {
    files_under(dir, |name| suffixes.iter().any(|s| name.ends_with(s)))
}

/// Whether the shortcut read `text` (and then that it read it as libyaml does).
fn check(text: &str, what: &str) -> bool {
    let Some(fast) = read_block_subset(text) else {
        return false;
    };
    let slow = read_with_libyaml_etc(text);
    assert_eq!(
        fast, slow,
        "the block-subset reader differs from libyaml on {what}"
    );
    true
}

fn check_files(files: &[PathBuf]) -> (usize, usize) {
    let mut accepted = 0;
    let mut read = 0;
    for path in files {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        read += 1;
        if check(&text, &path.display().to_string()) {
            accepted += 1;
        }
    }
    (accepted, read)
}

fn shared(name: &str) -> Option<PathBuf> {
    let dir = repo_root().join("..").join("shared").join(name);
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipped: {} is absent", dir.display());
        None
    }
}

#[test]
fn the_yaml_test_suite_reads_alike() {
    let Some(dir) = shared("yaml-test-suite") else {
        return;
    };
    let (accepted, read) = check_files(&files_under(&dir, |name| name == "in.yaml"));
    println!("yaml-test-suite: {accepted} of {read} inputs within the subset");
    assert!(read > 300, "the suite has {read} inputs");
    // Most of the suite probes what the subset leaves to libyaml; some of it is plain.
    assert!(
        accepted > 20,
        "only {accepted} suite inputs were read by the shortcut"
    );
}

#[test]
fn the_corpora_read_alike_and_mostly_take_the_shortcut() {
    let Some(dir) = shared("corpora") else {
        return;
    };
    let (accepted, read) = check_files(&ending_with(&dir, &[".yaml", ".yml"]));
    println!("corpora: {accepted} of {read} YAML files within the subset");
    assert!(read > 1_000, "the corpora have {read} YAML files");
    assert!(
        accepted * 2 > read,
        "only {accepted} of {read} corpus files were read by the shortcut"
    );
}

#[test]
fn the_fixtures_and_cases_read_alike() {
    let root = repo_root();
    let mut files = ending_with(&root.join("fixtures"), &[".yaml", ".yml"]);
    files.extend(ending_with(&root.join("tests"), &[".yaml", ".yml"]));
    let (accepted, read) = check_files(&files);
    println!("fixtures and cases: {accepted} of {read} YAML files within the subset");
    assert!(
        accepted > 100,
        "only {accepted} of {read} were read by the shortcut"
    );
}

#[test]
fn what_the_subset_reads_it_reads_as_libyaml() {
    let cases = [
        // Nulls sit just past their `:` or `-`.
        "a:\nb: 1\n",
        "a:\n  # comment\nb:\n",
        "- \n-\n- x\n",
        "a:\n- \n- b\nc: d\n",
        // Indentless and indented sequences, mappings in entries.
        "spec:\n  containers:\n  - name: app\n    image: x:1\n    ports:\n      - containerPort: 80\n  volumes: []\n",
        "k:\n- a: 1\n  b:\n    c: 2\n- d\nz: 1\n",
        "-   a: 1\n    b: 2\n-   c\n",
        // Documents, markers, comments, no final line break.
        "# head\n---\na: 1\n---\n---\n- b\n",
        "a: 1 # c\nb: 'it''s' # c\nc: \"q\"\n'd': e\n\"f\" : g",
        "  a: 1\n  b: 2\n",
        "a: b#c\nd: e:f\nurl: http://x:80/y\n",
    ];
    for text in cases {
        assert!(
            check(text, &format!("{text:?}")) || text.contains('['),
            "{text:?} is plain block YAML the shortcut should read"
        );
    }
    // What it must leave to libyaml.
    for text in [
        "a: |\n  x\n",
        "a: &x 1\nb: *x\n",
        "a: [1]\n",
        "a: b\n  c\n",
        "a: 'x\n  y'\n",
        "a: \"\\t\"\n",
        "a:\tb\n",
        "a: b: c\n",
        "- - a\n",
        "...\n",
        "--- a\n",
        "? a\n: b\n",
        "a: é\n",
        "a: 1\n b: 2\n",
    ] {
        assert!(
            read_block_subset(text).is_none(),
            "{text:?} is not in the subset"
        );
    }
}

/// Pieces of block YAML, valid and not, for random texts.
fn fragment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "a:",
        "b: 1",
        "- ",
        "-",
        "- c",
        "- d: 2",
        "  ",
        "    ",
        "\n",
        "\n",
        "\n",
        "# x",
        " # y",
        "---",
        "---\n",
        "...",
        "'q'",
        "\"r\"",
        "'s''t'",
        ": ",
        ":",
        "key: value",
        "k:v",
        "#",
        "e: f:",
        "x",
        "g: 'h' i",
        "- - j",
        "k: -l",
        "m: ?",
        "n: \"",
        "  - o",
        "p: q #r",
    ])
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 4_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_block_yaml_reads_alike(parts in prop::collection::vec(fragment(), 0..40)) {
        let text: String = parts.concat();
        check(&text, &format!("{text:?}"));
    }

    #[test]
    fn flipped_manifests_read_alike(
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(b" \n-:#'\"ab".to_vec())), 1..4),
    ) {
        let mut text = MANIFEST.as_bytes().to_vec();
        for (at, byte) in edits {
            let i = at.index(text.len());
            text[i] = byte;
        }
        let text = String::from_utf8(text).expect("ASCII edits of ASCII text");
        check(&text, &format!("{text:?}"));
    }
}

const MANIFEST: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  template:
    spec:
      containers:
        - name: app
          image: 'registry.example.com/web:1.0'
          env:
          - name: DB
            value: \"postgres://db:5432/x\"
          args:
            - --port
            - 8080
---
kind: ConfigMap
data:
  a: b # note
";
