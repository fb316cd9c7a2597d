//! CLI behaviour pinned by small case directories, one per behaviour:
//!
//! ```text
//! tests/cases/<name>/args           the command line, one argument per line (the repository is `repo`)
//! tests/cases/<name>/repo/          the input repository
//! tests/cases/<name>/expected.out   stdout, with timings normalised
//! tests/cases/<name>/expected.err   stderr
//! tests/cases/<name>/expected.code  the exit code
//! ```
//!
//! The binary runs inside the case directory, so paths in messages are relative. After an
//! intended change, `ENVFENCE_BLESS=1 cargo test --test cases` rewrites the expected files;
//! read the diff before committing it.

mod common;

use std::path::Path;

use common::{envfence, normalise, repo_root};

fn check_case(dir: &Path) -> Result<(), String> {
    let args_text = std::fs::read_to_string(dir.join("args")).map_err(|e| format!("args: {e}"))?;
    let args: Vec<&str> = args_text.lines().filter(|l| !l.trim().is_empty()).collect();
    let out = envfence()
        .current_dir(dir)
        .args(&args)
        .output()
        .map_err(|e| format!("cannot run: {e}"))?;
    let actual = [
        (
            "expected.out",
            normalise(&String::from_utf8_lossy(&out.stdout)),
        ),
        (
            "expected.err",
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        (
            "expected.code",
            format!("{}\n", out.status.code().unwrap_or(-1)),
        ),
    ];
    let bless = std::env::var_os("ENVFENCE_BLESS").is_some();
    let mut problems = Vec::new();
    for (file, actual) in actual {
        let path = dir.join(file);
        if bless {
            std::fs::write(&path, &actual).map_err(|e| format!("{file}: {e}"))?;
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected != actual {
            problems.push(format!(
                "--- {file} expected:\n{expected}--- actual:\n{actual}"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[test]
fn cases() {
    let root = repo_root().join("tests").join("cases");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("tests/cases exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 5,
        "expected the case directories under {}",
        root.display()
    );
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|dir| {
            check_case(dir).err().map(|e| {
                format!(
                    "case {}:\n{e}",
                    dir.file_name().unwrap_or_default().to_string_lossy()
                )
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
