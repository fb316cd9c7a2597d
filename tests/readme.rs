//! The README's example outputs are real: every ```console block is run and compared, so a
//! change that alters what the demo prints also has to update the README.
//!
//! In a block, a line `$ cargo run --release -- ARGS` is a command (run here as the built
//! binary, from the repository root, with colour off) and the lines after it are its output.
//! Shown lines must appear in the real output in the same order and next to each other; a line
//! `...` stands for lines left out. For `scan`, a `...` may only leave out evidence lines, never
//! a finding or a file heading, so the README cannot silently drop a finding that its summary
//! line counts.

mod common;

use common::{envfence, normalise, repo_root};

struct Example {
    args: Vec<String>,
    shown: Vec<String>,
}

fn examples(readme: &str) -> Vec<Example> {
    let mut examples: Vec<Example> = Vec::new();
    // Output lines belong to the last `cargo run` command; any other `$ …` command (git, say)
    // is shown for context and its output is not checked.
    let mut capturing = false;
    let mut in_console = false;
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            in_console = !in_console && line.trim() == "```console";
            capturing = false;
            continue;
        }
        if !in_console {
            continue;
        }
        if let Some(command) = line.strip_prefix("$ cargo run --release -- ") {
            examples.push(Example {
                args: command.split_whitespace().map(str::to_owned).collect(),
                shown: Vec::new(),
            });
            capturing = true;
        } else if line.starts_with("$ ") {
            capturing = false;
        } else if let Some(example) = examples.last_mut().filter(|_| capturing) {
            example.shown.push(line.to_owned());
        }
    }
    for example in &mut examples {
        while example.shown.last().is_some_and(|l| l.trim().is_empty()) {
            example.shown.pop();
        }
    }
    examples
}

/// A finding line (`  21  error  rule  …`) or a file heading (no indentation) of the text report.
fn is_finding_or_heading(line: &str) -> bool {
    if !line.starts_with(' ') {
        return !line.trim().is_empty();
    }
    let mut words = line.split_whitespace();
    let position = words.next().unwrap_or("");
    let severity = words.next().unwrap_or("");
    position.split(':').all(|p| p.parse::<u32>().is_ok())
        && matches!(severity, "error" | "warning" | "info")
}

/// Matches `shown` against `actual`; returns the first problem.
fn compare(command: &str, shown: &[String], actual: &[&str]) -> Result<(), String> {
    let strict = command == "scan";
    let mut at = 0;
    let mut gap = false;
    for expected in shown {
        if expected.trim() == "..." {
            gap = true;
            continue;
        }
        let found = if gap {
            actual[at..]
                .iter()
                .position(|l| l == expected)
                .map(|i| at + i)
        } else {
            (actual.get(at) == Some(&expected.as_str())).then_some(at)
        };
        let Some(index) = found else {
            return Err(format!(
                "README line not in the output (after output line {at}): {expected:?}"
            ));
        };
        if strict {
            if let Some(skipped) = actual[at..index].iter().find(|l| is_finding_or_heading(l)) {
                return Err(format!(
                    "README leaves out a finding or file that the output has: {skipped:?}"
                ));
            }
        }
        at = index + 1;
        gap = false;
    }
    if strict && !gap {
        if let Some(rest) = actual[at..].iter().find(|l| is_finding_or_heading(l)) {
            return Err(format!("README ends before the output does: {rest:?}"));
        }
    }
    Ok(())
}

#[test]
fn readme_examples_match_the_binary() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let examples = examples(&readme);
    assert!(
        examples.len() >= 3,
        "expected the scan, topology and explain examples, found {}",
        examples.len()
    );
    let mut problems = Vec::new();
    for example in &examples {
        let out = envfence()
            .current_dir(&root)
            .args(&example.args)
            .output()
            .expect("run envfence");
        let stdout = normalise(&String::from_utf8_lossy(&out.stdout));
        let actual: Vec<&str> = stdout.lines().collect();
        let shown: Vec<String> = example
            .shown
            .iter()
            .map(|l| normalise(l).trim_end_matches('\n').to_owned())
            .collect();
        let command = example.args.first().map(String::as_str).unwrap_or("");
        if let Err(problem) = compare(command, &shown, &actual) {
            problems.push(format!(
                "`envfence {}`: {problem}\n--- real output ---\n{stdout}",
                example.args.join(" ")
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn the_comparison_catches_a_dropped_finding() {
    let actual = [
        "a.yaml",
        "       2  error    r  one",
        "           ↳ evidence",
        "       9  warning  r  two",
        "",
        "1 error, 1 warning in 1 file.",
    ];
    let shown = |lines: &[&str]| lines.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    // Evidence may be left out.
    assert!(compare(
        "scan",
        &shown(&[
            "a.yaml",
            "       2  error    r  one",
            "           ...",
            "       9  warning  r  two",
            "",
            "1 error, 1 warning in 1 file."
        ]),
        &actual
    )
    .is_ok());
    // A finding may not.
    assert!(compare(
        "scan",
        &shown(&[
            "a.yaml",
            "       2  error    r  one",
            "           ...",
            "1 error, 1 warning in 1 file."
        ]),
        &actual
    )
    .is_err());
    // A changed line is caught.
    assert!(compare(
        "topology",
        &shown(&["a.yaml", "       2  error    r  0ne"]),
        &actual
    )
    .is_err());
}
