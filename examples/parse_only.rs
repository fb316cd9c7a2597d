//! How much of a scan is parsing? Times two passes over a repository:
//!
//! - the parse-only floor: walk, read and parse every candidate file in parallel, nothing else;
//! - a full scan: what `envfence scan` does, minus rendering the report.
//!
//! ```text
//! cargo run --release --example parse_only -- PATH [--runs K] [--base REV]
//! ```
//!
//! With `--base REV` (PATH in a git repository), a third pass times the diff-aware scan
//! against REV, as `envfence scan --base REV` runs it: the working tree and REV's tree from
//! git objects, unchanged blobs parsed once.
//!
//! Each pass runs K times (default 3); the table shows the best and the median wall time.
//! The floor parses every candidate, Helm templates included, so its parse-error count
//! includes templates that the full scan skips by design.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use rayon::prelude::*;

use envfence::config::Config;
use envfence::documents::yaml;
use envfence::rules::{Policies, RuleId};
use envfence::scan::{self, ScanOptions, Target};
use envfence::walk;

const USAGE: &str = "usage: parse_only PATH [--runs K] [--base REV]";

struct Args {
    path: PathBuf,
    runs: usize,
    base: Option<String>,
}

/// Parses the command line; on bad arguments prints the usage line and exits with status 2.
fn parse_args() -> Args {
    let mut path = None;
    let mut runs = 3;
    let mut base = None;
    let mut it = std::env::args().skip(1);
    let bad = |message: &str| -> ! {
        eprintln!("parse_only: {message}");
        eprintln!("{USAGE}");
        std::process::exit(2)
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            "--runs" => {
                let value = it.next().unwrap_or_default();
                match value.parse::<usize>() {
                    Ok(n) if n > 0 => runs = n,
                    _ => bad(&format!(
                        "--runs: expected a positive number, got {value:?}"
                    )),
                }
            }
            "--base" => match it.next() {
                Some(rev) => base = Some(rev),
                None => bad("--base: expected a revision"),
            },
            other if other.starts_with('-') => bad(&format!("unknown option {other}")),
            other => {
                if path.is_some() {
                    bad(&format!("unexpected argument {other}"));
                }
                path = Some(PathBuf::from(other));
            }
        }
    }
    match path {
        Some(path) => Args { path, runs, base },
        None => bad("missing PATH"),
    }
}

/// What one run of a pass saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Counts {
    files: usize,
    documents: usize,
    /// Parse errors (floor) or findings (full scan).
    problems: usize,
}

/// Walk + read + parse, nothing else.
fn floor_pass(root: &Path) -> Counts {
    let walked = walk::walk(root, &Config::default(), None);
    walked
        .candidates
        .par_iter()
        // Chart templates are skipped by path, unread, in a scan too.
        .filter(|c| c.kind_hint != Some(envfence::documents::FileKind::HelmTemplate))
        .map(|candidate| {
            let Ok(bytes) = std::fs::read(&candidate.read_path) else {
                return Counts::default();
            };
            let Ok(text) = std::str::from_utf8(&bytes) else {
                return Counts::default();
            };
            let stream = yaml::parse_stream(text);
            Counts {
                files: 1,
                documents: stream.docs.len(),
                problems: usize::from(stream.error.is_some()),
            }
        })
        .reduce(Counts::default, |a, b| Counts {
            files: a.files + b.files,
            documents: a.documents + b.documents,
            problems: a.problems + b.problems,
        })
}

/// Walk + read + parse + the document model (identity, labels, comments): `scan::index`,
/// everything before topology and rules.
fn index_pass(path: &Path) -> anyhow::Result<Counts> {
    let target = Target::resolve(path)?;
    let config = Config::discover(&target.root, None)?;
    let workspace = scan::index(&target, &config, &ScanOptions::default(), &|_| {})?;
    Ok(Counts {
        files: workspace.files.len(),
        documents: workspace.documents().count(),
        problems: workspace
            .files
            .iter()
            .filter(|f| f.problem.is_some())
            .count(),
    })
}

/// The full scan, as the CLI runs it (target, config, policies, scan), without output.
fn full_pass(path: &Path) -> anyhow::Result<(Counts, scan::ScanReport)> {
    let target = Target::resolve(path)?;
    let config = Config::discover(&target.root, None)?;
    let mut policies = Policies::builtin()?;
    policies.apply_config(&config);
    let report = scan::scan(
        &target,
        &config,
        &policies,
        &ScanOptions::default(),
        &|_| {},
    )?;
    let counts = Counts {
        files: report.summary.files,
        documents: report.summary.documents,
        problems: report.findings.len(),
    };
    Ok((counts, report))
}

/// The diff-aware scan against `base`, as the CLI runs it, without output.
fn diff_pass(path: &Path, base: &str) -> anyhow::Result<(Counts, scan::ScanReport)> {
    let target = Target::resolve(path)?;
    let config = Config::discover(&target.root, None)?;
    let mut policies = Policies::builtin()?;
    policies.apply_config(&config);
    let revisions = scan::Revisions {
        base: base.to_owned(),
        head: None,
    };
    let report = scan::diff_scan(
        &target,
        &config,
        &policies,
        &ScanOptions::default(),
        &revisions,
        &|_| {},
    )?;
    let counts = Counts {
        files: report.summary.files,
        documents: report.summary.documents,
        problems: report.findings.len(),
    };
    Ok((counts, report))
}

/// Best and median of the samples (zero for none).
fn best_and_median(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let best = samples.first().copied().unwrap_or_default();
    let n = samples.len();
    let median = if n == 0 {
        Duration::ZERO
    } else if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2
    };
    (best, median)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> anyhow::Result<()> {
    let args = parse_args();
    let root = std::fs::canonicalize(&args.path)
        .with_context(|| format!("cannot open {}", args.path.display()))?;
    if !root.is_dir() {
        anyhow::bail!("{} is not a directory", args.path.display());
    }

    let mut floor_times = Vec::with_capacity(args.runs);
    let mut floor_counts = Counts::default();
    for _ in 0..args.runs {
        let started = Instant::now();
        let root = std::fs::canonicalize(&args.path)
            .with_context(|| format!("cannot open {}", args.path.display()))?;
        floor_counts = floor_pass(&root);
        floor_times.push(started.elapsed());
    }

    let mut index_times = Vec::with_capacity(args.runs);
    let mut index_counts = Counts::default();
    for _ in 0..args.runs {
        let started = Instant::now();
        index_counts = index_pass(&args.path)?;
        index_times.push(started.elapsed());
    }

    let mut full_times = Vec::with_capacity(args.runs);
    let mut full = None;
    for _ in 0..args.runs {
        let started = Instant::now();
        let result = full_pass(&args.path)?;
        full_times.push(started.elapsed());
        full = Some(result);
    }
    let (full_counts, report) = full.context("no full scan ran")?;

    let mut diff_times = Vec::with_capacity(args.runs);
    let mut diff = None;
    if let Some(base) = &args.base {
        for _ in 0..args.runs {
            let started = Instant::now();
            let result = diff_pass(&args.path, base)?;
            diff_times.push(started.elapsed());
            diff = Some(result);
        }
    }
    let (diff_best, diff_median) = best_and_median(&mut diff_times);

    let (floor_best, floor_median) = best_and_median(&mut floor_times);
    let (index_best, index_median) = best_and_median(&mut index_times);
    let (full_best, full_median) = best_and_median(&mut full_times);

    println!(
        "{} ({} run{}, {} threads)",
        args.path.display(),
        args.runs,
        if args.runs == 1 { "" } else { "s" },
        rayon::current_num_threads()
    );
    println!(
        "{:<19} {:>8} {:>10} {:>10} {:>10} {:>10}",
        "pass", "files", "documents", "problems", "best ms", "median ms"
    );
    let mut rows = vec![
        ("parse-only floor", &floor_counts, floor_best, floor_median),
        ("index (documents)", &index_counts, index_best, index_median),
        ("full scan", &full_counts, full_best, full_median),
    ];
    if let Some((counts, _)) = &diff {
        rows.push(("diff-aware scan", counts, diff_best, diff_median));
    }
    for (name, counts, best, median) in rows {
        println!(
            "{:<19} {:>8} {:>10} {:>10} {:>10.1} {:>10.1}",
            name,
            counts.files,
            counts.documents,
            counts.problems,
            ms(best),
            ms(median)
        );
    }
    let ratio = |full: Duration, floor: Duration| {
        if floor.is_zero() {
            f64::NAN
        } else {
            full.as_secs_f64() / floor.as_secs_f64()
        }
    };
    println!(
        "ratio full/floor: best {:.2}x, median {:.2}x",
        ratio(full_best, floor_best),
        ratio(full_median, floor_median)
    );
    println!(
        "ratio index/floor: best {:.2}x, median {:.2}x",
        ratio(index_best, floor_best),
        ratio(index_median, floor_median)
    );
    if let Some((_, report)) = &diff {
        println!(
            "ratio diff/full: best {:.2}x, median {:.2}x",
            ratio(diff_best, full_best),
            ratio(diff_median, full_median)
        );
        if let Some(c) = &report.comparison {
            println!(
                "diff-aware scan against {} ({}): {} new, {} existing, {} fixed; {} base files unchanged (parsed once)",
                c.base, &c.base_commit[..12.min(c.base_commit.len())], c.new, c.existing, c.fixed, c.unchanged_files
            );
        }
    }
    println!("(problems: parse errors for the floor and index, findings for the full scan; full - index is topology + rules)");

    // What the full scan reported, by rule, and what it passed over.
    let mut by_rule: Vec<(RuleId, usize)> = Vec::new();
    for finding in &report.findings {
        match by_rule.iter_mut().find(|(rule, _)| *rule == finding.rule) {
            Some((_, n)) => *n += 1,
            None => by_rule.push((finding.rule, 1)),
        }
    }
    by_rule.sort();
    if !by_rule.is_empty() {
        let parts: Vec<String> = by_rule
            .iter()
            .map(|(rule, n)| format!("{}={n}", rule.as_str()))
            .collect();
        println!("findings by rule: {}", parts.join(", "));
    }
    let templates = report
        .summary
        .skipped
        .iter()
        .filter(|s| s.reason.is_template())
        .count();
    println!(
        "full scan skipped {} files ({} templates), placed {} objects on {} clusters",
        report.summary.skipped.len(),
        templates,
        report.summary.placed,
        report.summary.clusters_used
    );
    for finding in report
        .findings
        .iter()
        .filter(|f| f.rule == RuleId::InvalidYaml)
        .take(5)
    {
        println!("  invalid-yaml {}: {}", finding.location, finding.message);
    }
    Ok(())
}
