//! Compares YAML readers on the same inputs, for the choice recorded in docs/decisions.md.
//!
//! ```text
//! cargo run --release --example yaml_readers -- suite ../shared/yaml-test-suite
//! cargo run --release --example yaml_readers -- files ../shared/corpora
//! cargo run --release --example yaml_readers -- bench /tmp/bench1000
//! ```
//!
//! Readers: `libyaml-safer` 0.3.0 alone and `saphyr-parser` 0.3 alone (events only), and
//! envfence's reader (`documents::yaml::parse_stream`: the block-subset reader, else
//! libyaml-safer, saphyr-parser on a panic, tree and budgets included), and the same without
//! the block-subset reader. Each input is read on a worker thread with a 10 s
//! deadline, so a panic or a hang is counted, not fatal.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rayon::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Rejected,
    Panicked,
    Hung,
}

#[derive(Clone, Copy)]
struct Reader {
    name: &'static str,
    /// `true` when the text parses to the end.
    parse: fn(&str) -> bool,
}

const READERS: [Reader; 4] = [
    Reader {
        name: "libyaml-safer 0.3.0 alone",
        parse: libyaml_safer,
    },
    Reader {
        name: "saphyr-parser 0.3 alone",
        parse: saphyr,
    },
    Reader {
        name: "envfence's reader without the block subset (libyaml-safer, saphyr on panic)",
        parse: envfence_without_subset,
    },
    Reader {
        name: "envfence's reader (block subset, else libyaml-safer, saphyr on panic)",
        parse: envfence_reader,
    },
];

fn libyaml_safer(text: &str) -> bool {
    let mut input = text.as_bytes();
    let mut parser = libyaml_safer::Parser::new();
    parser.set_input_string(&mut input);
    parser.into_iter().all(|event| event.is_ok())
}

fn envfence_reader(text: &str) -> bool {
    envfence::documents::yaml::parse_stream(text)
        .error
        .is_none()
}

fn envfence_without_subset(text: &str) -> bool {
    envfence::documents::yaml::read_with_libyaml_etc(text)
        .error
        .is_none()
}

fn saphyr(text: &str) -> bool {
    saphyr_parser::Parser::new_from_str(text).all(|event| event.is_ok())
}

/// Runs `reader` on `text` on its own thread: a panic is caught, a hang is abandoned.
fn run(reader: Reader, text: &str) -> Outcome {
    let (tx, rx) = mpsc::channel();
    let owned = text.to_owned();
    std::thread::spawn(move || {
        let result = catch_unwind(AssertUnwindSafe(|| (reader.parse)(&owned)));
        let _ = tx.send(result);
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(true)) => Outcome::Accepted,
        Ok(Ok(false)) => Outcome::Rejected,
        Ok(Err(_)) => Outcome::Panicked,
        Err(_) => Outcome::Hung,
    }
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() && path.file_name().is_some_and(|n| n != ".git") {
            yaml_files(&path, out);
        } else if meta.is_file() {
            let name = path.to_string_lossy().to_ascii_lowercase();
            if name.ends_with(".yaml") || name.ends_with(".yml") {
                out.push(path);
            }
        }
    }
}

/// Every `in.yaml` of the YAML test suite; a case folder holding `error` must be rejected.
fn suite(dir: &Path) {
    let mut cases = Vec::new();
    yaml_files(dir, &mut cases);
    cases.retain(|p| p.file_name().is_some_and(|n| n == "in.yaml"));
    println!("{} cases in {}", cases.len(), dir.display());
    for reader in READERS {
        let (mut agree, mut panics, mut hangs, mut false_reject, mut false_accept) =
            (0, 0, 0, 0, 0);
        let mut notes = Vec::new();
        for case in &cases {
            let expect_error = case.with_file_name("error").exists();
            let Ok(bytes) = std::fs::read(case) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            let name = case
                .parent()
                .and_then(|p| p.strip_prefix(dir).ok())
                .map_or_else(String::new, |p| p.display().to_string());
            match (run(reader, &text), expect_error) {
                (Outcome::Accepted, false) | (Outcome::Rejected, true) => agree += 1,
                (Outcome::Accepted, true) => false_accept += 1,
                (Outcome::Rejected, false) => false_reject += 1,
                (Outcome::Panicked, _) => {
                    panics += 1;
                    notes.push(format!("panic {name}"));
                }
                (Outcome::Hung, _) => {
                    hangs += 1;
                    notes.push(format!("hang {name}"));
                }
            }
        }
        println!(
            "| {} | agrees {agree}/{} | rejects {false_reject} valid | accepts {false_accept} invalid | {panics} panics | {hangs} hangs |",
            reader.name,
            cases.len()
        );
        for note in notes {
            println!("    {note}");
        }
    }
}

/// Real YAML files: how many each reader accepts, and the files where readers disagree.
/// Files with `{{` are left out: they are templates, not YAML.
fn files(dirs: &[PathBuf]) {
    let mut paths = Vec::new();
    for dir in dirs {
        yaml_files(dir, &mut paths);
    }
    let texts: Vec<(PathBuf, String)> = paths
        .into_iter()
        .filter_map(|p| {
            let bytes = std::fs::read(&p).ok()?;
            let text = String::from_utf8(bytes).ok()?;
            (!text.contains("{{")).then_some((p, text))
        })
        .collect();
    println!("{} YAML files without {{{{", texts.len());
    let outcomes: Vec<Vec<Outcome>> = texts
        .par_iter()
        .map(|(_, text)| READERS.iter().map(|r| run(*r, text)).collect())
        .collect();
    for (i, reader) in READERS.iter().enumerate() {
        let count = |o| outcomes.iter().filter(|row| row[i] == o).count();
        println!(
            "| {} | accepts {} | rejects {} | {} panics | {} hangs |",
            reader.name,
            count(Outcome::Accepted),
            count(Outcome::Rejected),
            count(Outcome::Panicked),
            count(Outcome::Hung)
        );
    }
    for ((path, _), row) in texts.iter().zip(&outcomes) {
        if row.iter().any(|o| *o != row[0]) {
            let cells: Vec<String> = READERS
                .iter()
                .zip(row)
                .map(|(r, o)| format!("{}={o:?}", r.name))
                .collect();
            println!("    {}: {}", path.display(), cells.join(", "));
        }
    }
}

/// Parse time of every YAML file of `dir`, already in memory, on two threads: best of five.
fn bench(dir: &Path) {
    let mut paths = Vec::new();
    yaml_files(dir, &mut paths);
    let texts: Vec<String> = paths
        .iter()
        .filter_map(|p| String::from_utf8(std::fs::read(p).ok()?).ok())
        .collect();
    let bytes: usize = texts.iter().map(String::len).sum();
    println!("{} files, {} bytes", texts.len(), bytes);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("thread pool");
    for reader in READERS {
        let mut best = Duration::MAX;
        let mut accepted = 0;
        for _ in 0..5 {
            let started = Instant::now();
            accepted = pool.install(|| {
                texts
                    .par_iter()
                    .filter(|t| {
                        catch_unwind(AssertUnwindSafe(|| (reader.parse)(t))).unwrap_or(false)
                    })
                    .count()
            });
            best = best.min(started.elapsed());
        }
        println!(
            "| {} | {:.1} ms | accepts {accepted} |",
            reader.name,
            best.as_secs_f64() * 1000.0
        );
    }
}

fn main() {
    // Panics are counted, not printed.
    std::panic::set_hook(Box::new(|_| {}));
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((mode, rest)) if mode == "suite" && rest.len() == 1 => suite(Path::new(&rest[0])),
        Some((mode, rest)) if mode == "files" && !rest.is_empty() => {
            files(&rest.iter().map(PathBuf::from).collect::<Vec<_>>())
        }
        Some((mode, rest)) if mode == "bench" && rest.len() == 1 => bench(Path::new(&rest[0])),
        _ => {
            eprintln!("usage: yaml_readers suite DIR | files DIR... | bench DIR");
            std::process::exit(2);
        }
    }
}
