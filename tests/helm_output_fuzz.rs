//! Bounded fuzzing (proptest, fixed seed and case count) of the reader of `helm template`
//! output, called directly so that any panic fails the test: random and hostile output (huge
//! lines, `# Source:` paths that leave the chart, NULs, many documents, a template of 5,000
//! lines that nothing matches), each checked against the reader's caps: never more objects
//! than allowed, never a path outside the chart or its values files, and little time.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use envfence::documents::SourceFile;
use envfence::topology::helm::{split_output, RenderFlags, RenderRequest, ValuesInput};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};

/// Fixed seed and case count: the same cases on every run, a few seconds in all.
fn runner(cases: u32) -> TestRunner {
    TestRunner::new_with_rng(
        RunnerConfig {
            cases,
            failure_persistence: None,
            ..RunnerConfig::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[25; 32]),
    )
}

const VALUES: &str = "charts/web/values-prod.yaml";

fn request() -> RenderRequest {
    RenderRequest {
        chart: "charts/web".into(),
        release: "web".into(),
        namespace: None,
        values: vec![ValuesInput::File(VALUES.into())],
        set: Vec::new(),
        flags: RenderFlags::default(),
    }
}

/// The chart's templates as helm was handed them: a small one, one of 5,000 lines, and one
/// of a single 1 MB line.
fn templates() -> HashMap<String, String> {
    let mut t = HashMap::new();
    t.insert(
        "templates/a.yaml".to_owned(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  k: v\n"
            .to_owned(),
    );
    let long: String = (0..5000)
        .map(|i| format!("  line{i}: {{{{ .x }}}}\n"))
        .collect();
    t.insert("templates/long.yaml".to_owned(), long);
    t.insert("templates/wide.yaml".to_owned(), "y".repeat(1 << 20));
    t
}

#[derive(Debug, Clone)]
enum Piece {
    Separator,
    /// `--- ` and other separators only the YAML reader splits at.
    OddSeparator,
    Source(&'static str),
    Manifest(String),
    Line(String),
    /// One line of this many bytes.
    Huge(usize),
    Nul,
    /// Many small documents.
    Many(usize),
    /// Lines that nothing in the long template matches.
    Unmatched(usize),
}

const SOURCES: &[&str] = &[
    "web/templates/a.yaml",
    "web/templates/long.yaml",
    "web/templates/wide.yaml",
    "web/templates/../../../../etc/passwd",
    "web/../../.git/config",
    "/etc/passwd",
    "web//templates/a.yaml",
    "web/templates/./a.yaml",
    "web",
    "",
    "web/charts/sub/templates/x.yaml",
    "web/templates/a.yaml\0",
];

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        4 => Just(Piece::Separator),
        1 => Just(Piece::OddSeparator),
        4 => prop::sample::select(SOURCES).prop_map(Piece::Source),
        4 => "[a-z0-9-]{1,12}".prop_map(Piece::Manifest),
        3 => "[ -~]{0,40}".prop_map(Piece::Line),
        1 => (1usize..400_000).prop_map(Piece::Huge),
        1 => Just(Piece::Nul),
        1 => (1usize..1000).prop_map(Piece::Many),
        1 => (1usize..200).prop_map(Piece::Unmatched),
    ]
}

fn output(pieces: &[Piece]) -> String {
    let mut text = String::new();
    for p in pieces {
        match p {
            Piece::Separator => text.push_str("---\n"),
            Piece::OddSeparator => text.push_str("--- \n---\r\n--- # x\n"),
            Piece::Source(s) => text.push_str(&format!("# Source: {s}\n")),
            Piece::Manifest(name) => text.push_str(&format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n"
            )),
            Piece::Line(l) => {
                text.push_str(l);
                text.push('\n');
            }
            Piece::Huge(n) => {
                text.push_str("k: ");
                text.push_str(&"z".repeat(*n));
                text.push('\n');
            }
            Piece::Nul => text.push_str("a: \0\0b\n"),
            Piece::Many(n) => {
                for i in 0..*n {
                    text.push_str(&format!(
                        "---\n# Source: web/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m{i}\n"
                    ));
                }
            }
            Piece::Unmatched(n) => {
                text.push_str("---\n# Source: web/templates/long.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: long\ndata:\n");
                for i in 0..*n {
                    text.push_str(&format!("  other{i}: value\n"));
                }
            }
        }
    }
    text
}

/// A repository root holding the values file (its lines name some objects).
fn root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let values = dir.path().join(VALUES);
    std::fs::create_dir_all(values.parent().expect("parent")).expect("mkdir");
    let mut text = String::from("apps:\n");
    for name in ["a", "b", "m1", "long", "zz"] {
        text.push_str(&format!("  - name: {name}\n"));
    }
    std::fs::write(values, text).expect("write");
    dir
}

/// Every placed file is in the chart folder or is its values file, at a line from 1.
fn check_places(files: &[SourceFile]) -> Result<(), TestCaseError> {
    for f in files {
        let path: &str = &f.path;
        let in_chart = path.starts_with("charts/web/")
            && path
                .split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
            && !path.contains('\0');
        prop_assert!(in_chart || path == VALUES, "placed at {path:?}");
        for d in f.documents.iter() {
            prop_assert!(d.first_line >= 1 && d.last_line >= d.first_line, "{path}");
        }
    }
    Ok(())
}

fn read(root: &Path, text: &str, max: usize) -> (Result<Vec<SourceFile>, ()>, Duration) {
    let started = Instant::now();
    let out = split_output(root, &request(), text, &templates(), max).map_err(|_| ());
    (out, started.elapsed())
}

/// Random output: no panic; the object cap refuses exactly the outputs with more objects;
/// every object stays in the chart; each output is read in bounded time.
#[test]
fn helm_output_reader_holds_its_caps() {
    let dir = root();
    let mut runner = runner(32);
    runner
        .run(
            &(prop::collection::vec(piece(), 0..24), 0usize..2000),
            |(pieces, max)| {
                let text = output(&pieces);
                let (all, took) = read(dir.path(), &text, usize::MAX);
                prop_assert!(took < Duration::from_secs(20), "took {took:?}");
                let all = all.map_err(|()| TestCaseError::fail("no cap, yet refused"))?;
                check_places(&all)?;
                let (capped, _) = read(dir.path(), &text, max);
                match capped {
                    Ok(files) => {
                        prop_assert!(files.len() <= max);
                        prop_assert_eq!(files.len(), all.len());
                    }
                    Err(()) => prop_assert!(all.len() > max, "{} <= {max}", all.len()),
                }
                Ok(())
            },
        )
        .expect("the helm output reader holds its caps");
}

/// The worst case of line alignment: 100,000 rendered lines that match nothing in a
/// 5,000-line template (a billion comparisons unbounded; minutes before) are placed in seconds.
#[test]
fn unmatched_lines_against_a_long_template_are_bounded() {
    let dir = root();
    let text = output(&[Piece::Unmatched(100_000)]);
    let (out, took) = read(dir.path(), &text, usize::MAX);
    let files = out.expect("read");
    assert_eq!(files.len(), 1);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // A name that only the values file spells is shown at that values line.
    let text = output(&[
        Piece::Separator,
        Piece::Source("web/templates/a.yaml"),
        Piece::Manifest("zz".into()),
    ]);
    let (out, _) = read(dir.path(), &text, usize::MAX);
    let files = out.expect("read");
    assert_eq!(&*files[0].path, VALUES);
    assert_eq!(files[0].documents[0].first_line, 6);
}
