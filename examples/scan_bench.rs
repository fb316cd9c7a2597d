//! The benchmark of issue 13: `envfence scan` against the parse-only floor on the synthetic
//! monorepos of `../shared/bench/`, as processes, the way a user runs them.
//!
//! ```text
//! cargo build --release
//! cargo run --release --example scan_bench -- [--runs K] [--apps N,N] [--dir DIR]
//!     [--floor PATH] [--envfence PATH] [--baseline PATH] [--repo PATH]...
//! ```
//!
//! For each N of `--apps` (default 1000,5000,10000) it uses `DIR/benchN` (default DIR `/tmp`),
//! generating it with `gen-big-repo.py` when absent, and `DIR/benchN-git`: a git copy with
//! one file changed after its only commit. Each of K rounds (default 5) runs, in turn:
//!
//! - the floor: `yaml-floor DIR` (`--floor`, default `/tmp/floor-target/release/yaml-floor`,
//!   built from `../shared/bench/floor`: walkdir + rayon + serde_yaml, nothing else);
//! - the full scan: `envfence scan DIR --format json --fail-on never`;
//! - the diff-aware scan: the same with `--base HEAD` in the git copy.
//!
//! Before the rounds, one untimed scan of each generated repository checks that it is
//! complete: every problem `gen-big-repo.py` plants is reported at its own file (a feature
//! overlay sent to production for each app `i % 50 == 49`, a production database URL in the
//! dev overlay for each app `i % 70 == 69`) and no budget cut the scan.
//!
//! `envfence` is the release binary beside this example (`--envfence` for another build);
//! helm rendering is off (`ENVFENCE_HELM=off`), reports go to /dev/null. Alternating the
//! commands spreads the machine's noise over all of them; the table shows medians, the
//! ratio of the medians and the median of the per-round ratios, and the largest peak RSS
//! (maximum resident set, from `/usr/bin/time`) over the rounds. `--repo PATH` adds a
//! repository (the demo, a corpus) with floor and full scan only. `--baseline PATH` runs an
//! earlier build in the same rounds (after the same floor run), for a before/after table. The load average is
//! printed before and after: on a shared machine, read the ratios, not the times.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

const USAGE: &str = "usage: scan_bench [--runs K] [--apps N,N] [--dir DIR] [--floor PATH] \
                     [--envfence PATH] [--baseline PATH] [--repo PATH]...";

/// The file the diff-aware scan sees changed, and the line appended to it.
const CHANGED_FILE: &str = "apps/svc-00000/base/configmap.yaml";
const CHANGE: &str = "  BENCH_CHANGE: \"one changed file\"\n";

struct Args {
    runs: usize,
    apps: Vec<usize>,
    dir: PathBuf,
    floor: PathBuf,
    envfence: PathBuf,
    baseline: Option<PathBuf>,
    repos: Vec<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut args = Args {
        runs: 5,
        apps: vec![1000, 5000, 10_000],
        dir: PathBuf::from("/tmp"),
        floor: PathBuf::from("/tmp/floor-target/release/yaml-floor"),
        envfence: std::env::current_exe()?
            .parent()
            .and_then(Path::parent)
            .map(|release| release.join("envfence"))
            .unwrap_or_else(|| manifest.join("target/release/envfence")),
        baseline: None,
        repos: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("{arg}: expected a value\n{USAGE}"))
        };
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            "--runs" => {
                args.runs = value()?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .context("--runs: expected a positive number")?;
            }
            "--apps" => {
                args.apps = value()?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().context("--apps: expected numbers, as 1000,5000"))
                    .collect::<anyhow::Result<_>>()?;
            }
            "--dir" => args.dir = PathBuf::from(value()?),
            "--floor" => args.floor = PathBuf::from(value()?),
            "--envfence" => args.envfence = PathBuf::from(value()?),
            "--baseline" => args.baseline = Some(PathBuf::from(value()?)),
            "--repo" => args.repos.push(PathBuf::from(value()?)),
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    // The commands run inside the repositories: relative paths are made absolute here.
    for program in std::iter::once(&mut args.envfence).chain(args.baseline.as_mut()) {
        if let Ok(absolute) = std::fs::canonicalize(&*program) {
            *program = absolute;
        }
    }
    Ok(args)
}

/// One process run: wall time and peak RSS in KiB (`None` without `/usr/bin/time`).
#[derive(Clone)]
struct Sample {
    wall: Duration,
    rss_kib: Option<u64>,
}

const TIME: &str = "/usr/bin/time";

/// A command still running after this long is stopped and counts as failed.
const TIMEOUT: Duration = Duration::from_secs(300);

/// Runs `program args` in `dir` with stdout discarded; fails on an exit other than 0.
fn measure(program: &Path, args: &[&str], dir: &Path) -> anyhow::Result<Sample> {
    let rss_file = tempfile::NamedTempFile::new()?;
    let with_time = Path::new(TIME).is_file();
    let mut cmd = if with_time {
        let mut cmd = Command::new(TIME);
        cmd.arg("-f").arg("%M").arg("-o").arg(rss_file.path());
        cmd.arg(program);
        cmd
    } else {
        Command::new(program)
    };
    cmd.args(args)
        .current_dir(dir)
        .env("ENVFENCE_HELM", "off")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run {}", program.display()))?;
    // Polled, not waited for: a command that hangs (the floor on some inputs) is stopped.
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            child.kill()?;
            child.wait()?;
            bail!(
                "{} {args:?} in {}: still running after {TIMEOUT:?}, stopped",
                program.display(),
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let wall = started.elapsed();
    if !status.success() {
        bail!(
            "{} {args:?} in {}: {status}",
            program.display(),
            dir.display()
        );
    }
    let rss_kib = if with_time {
        std::fs::read_to_string(rss_file.path())?
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
    } else {
        None
    };
    Ok(Sample { wall, rss_kib })
}

/// Whether a scan of the generated repository of `apps` applications reports every planted
/// problem at its own file and no budget cut: `yes`, or what is missing.
fn completeness(program: &Path, repo: &Path, apps: usize) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(["scan", ".", "--format", "json", "--fail-on", "never", "-q"])
        .current_dir(repo)
        .env("ENVFENCE_HELM", "off")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", program.display()))?;
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("the scan's JSON report")?;
    let reported = |rule: &str, file: &str| {
        report["findings"].as_array().is_some_and(|all| {
            all.iter()
                .any(|f| f["rule"] == rule && f["severity"] == "error" && f["file"] == file)
        })
    };
    let count = |every: usize, rule: &str, file: &dyn Fn(usize) -> String| {
        let planted: Vec<usize> = (0..apps).filter(|i| i % every == every - 1).collect();
        let found = planted
            .iter()
            .filter(|&&i| reported(rule, &file(i)))
            .count();
        (found, planted.len())
    };
    let sent = count(50, "nonprod-on-prod-cluster", &|i| {
        format!("argocd/features/svc-{i:05}-feature-x.yaml")
    });
    let config = count(70, "nonprod-uses-prod-config", &|i| {
        format!("apps/svc-{i:05}/overlays/dev-1/kustomization.yaml")
    });
    let cuts = report["incomplete"].as_array().map_or(0, Vec::len);
    Ok(if sent.0 == sent.1 && config.0 == config.1 && cuts == 0 {
        "yes".to_owned()
    } else {
        format!(
            "no: {}/{} feature overlays, {}/{} dev databases, {cuts} cuts",
            sent.0, sent.1, config.0, config.1
        )
    })
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args(["-c", "user.name=bench", "-c", "user.email=bench@invalid"])
        .args(["-c", "commit.gpgsign=false"])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    cmd
}

/// `DIR/benchN`, generated when absent.
fn generated(dir: &Path, apps: usize) -> anyhow::Result<PathBuf> {
    let repo = dir.join(format!("bench{apps}"));
    if !repo.is_dir() {
        let generator =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/gen-big-repo.py");
        eprintln!("generating {} ...", repo.display());
        run(Command::new("python3")
            .arg(&generator)
            .arg(&repo)
            .arg(apps.to_string()))?;
    }
    Ok(repo)
}

/// `DIR/benchN-git`: `repo` committed once, then `CHANGED_FILE` changed in the working tree.
/// Made again when it is not exactly that.
fn git_copy(repo: &Path) -> anyhow::Result<PathBuf> {
    let mut name = repo.file_name().context("repository name")?.to_owned();
    name.push("-git");
    let copy = repo.with_file_name(name);
    let status = git(&copy).args(["status", "--porcelain"]).output();
    let expected = format!(" M {CHANGED_FILE}\n");
    if status.is_ok_and(|s| s.status.success() && s.stdout == expected.as_bytes()) {
        return Ok(copy);
    }
    eprintln!("making the git copy {} ...", copy.display());
    if copy.exists() {
        std::fs::remove_dir_all(&copy)?;
    }
    run(Command::new("cp").arg("-a").arg(repo).arg(&copy))?;
    run(git(&copy).args(["init", "-q"]))?;
    run(git(&copy).args(["add", "-A"]))?;
    run(git(&copy).args(["commit", "-q", "-m", "bench"]))?;
    let mut text = std::fs::read_to_string(copy.join(CHANGED_FILE))?;
    text.push_str(CHANGE);
    std::fs::write(copy.join(CHANGED_FILE), text)?;
    Ok(copy)
}

#[derive(Default)]
struct Series {
    samples: Vec<Sample>,
}

impl Series {
    fn median(&self) -> Duration {
        let mut walls: Vec<Duration> = self.samples.iter().map(|s| s.wall).collect();
        median(&mut walls)
    }

    fn peak_mib(&self) -> Option<f64> {
        let kib = self.samples.iter().filter_map(|s| s.rss_kib).max()?;
        Some(kib as f64 / 1024.0)
    }
}

fn median<T: Ord + Copy + Default>(values: &mut [T]) -> T {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// The median of per-round ratios `a[i] / b[i]`, in thousandths (to sort them as integers).
fn median_ratio(a: &Series, b: &Series) -> f64 {
    let mut ratios: Vec<u64> = a
        .samples
        .iter()
        .zip(&b.samples)
        .map(|(x, y)| (x.wall.as_secs_f64() / y.wall.as_secs_f64().max(1e-9) * 1000.0) as u64)
        .collect();
    median(&mut ratios) as f64 / 1000.0
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// One line of the table, printed as soon as its rounds are done.
fn print_row(row: &Row) {
    let mib = |m: Option<f64>| m.map_or_else(|| "n/a".to_owned(), |m| format!("{m:.0} MiB"));
    let secs = |d: Duration| format!("{:.3} s", d.as_secs_f64());
    let full = row.full.median();
    let (diff, diff_ratio, diff_rss) = match &row.diff {
        Some(d) => (
            secs(d.median()),
            format!(
                "{:.2}× ({:.2}×)",
                d.median().as_secs_f64() / full.as_secs_f64(),
                median_ratio(d, &row.full)
            ),
            mib(d.peak_mib()),
        ),
        None => ("-".into(), "-".into(), "-".into()),
    };
    let (floor, ratio) = if row.floor.samples.len() == row.full.samples.len() {
        let floor = row.floor.median();
        (
            secs(floor),
            format!(
                "{:.2}× ({:.2}×)",
                full.as_secs_f64() / floor.as_secs_f64(),
                median_ratio(&row.full, &row.floor)
            ),
        )
    } else {
        ("n/a".into(), "n/a".into())
    };
    println!(
        "| {} | {} | {floor} | {} | {ratio} | {} | {diff} | {diff_ratio} | {diff_rss} |",
        row.name,
        row.complete,
        secs(full),
        mib(row.full.peak_mib()),
    );
}

struct Row {
    name: String,
    /// Whether the scan reported every planted problem and no cut; `-` for other repositories.
    complete: String,
    floor: Series,
    full: Series,
    diff: Option<Series>,
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    if !args.floor.is_file() {
        bail!(
            "no floor at {}: build it with\n  cd ../shared/bench/floor && \
             CARGO_TARGET_DIR=/tmp/floor-target cargo build --release\nor pass --floor PATH",
            args.floor.display()
        );
    }
    if !args.envfence.is_file() {
        bail!(
            "no envfence at {}: run `cargo build --release` first, or pass --envfence PATH",
            args.envfence.display()
        );
    }
    let mut targets: Vec<(String, PathBuf, Option<PathBuf>, Option<usize>)> = Vec::new();
    for &apps in &args.apps {
        let repo = generated(&args.dir, apps)?;
        let copy = git_copy(&repo)?;
        targets.push((format!("{apps} apps"), repo, Some(copy), Some(apps)));
    }
    for repo in &args.repos {
        let name = repo.file_name().map_or_else(
            || repo.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        targets.push((name, std::fs::canonicalize(repo)?, None, None));
    }

    println!(
        "envfence {} vs floor {}; {} rounds; load average before: {}",
        args.envfence.display(),
        args.floor.display(),
        args.runs,
        load_average()
    );
    let scan = ["scan", ".", "--format", "json", "--fail-on", "never", "-q"];
    let diff = [
        "scan",
        ".",
        "--format",
        "json",
        "--fail-on",
        "never",
        "-q",
        "--base",
        "HEAD",
    ];
    println!(
        "| repository | complete | floor | full scan | ratio (of medians; median of rounds) \
         | full scan peak RSS | diff-aware scan | diff/full | diff peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, repo, copy, apps) in targets {
        let check = |program: &Path| -> anyhow::Result<String> {
            apps.map_or_else(|| Ok("-".to_owned()), |n| completeness(program, &repo, n))
        };
        let complete = check(&args.envfence)?;
        let base_complete = match &args.baseline {
            Some(program) => check(program)?,
            None => String::new(),
        };
        let new_row = |name: String, complete: String| Row {
            name,
            complete,
            floor: Series::default(),
            full: Series::default(),
            diff: copy.as_ref().map(|_| Series::default()),
        };
        let mut baseline = args
            .baseline
            .as_ref()
            .map(|_| new_row(format!("{name} (baseline)"), base_complete.clone()));
        let mut row = new_row(name, complete);
        for round in 0..args.runs {
            eprint!("\r{}: round {}/{}", row.name, round + 1, args.runs);
            // The floor may stop where envfence does not (it hangs on the demo): n/a then.
            let repo_arg = repo.to_str().context("path")?;
            match measure(&args.floor, &[repo_arg], &repo) {
                Ok(sample) => row.floor.samples.push(sample),
                Err(e) => eprintln!("\nfloor: {e:#}"),
            }
            row.full
                .samples
                .push(measure(&args.envfence, &scan, &repo)?);
            if let (Some(copy), Some(series)) = (&copy, &mut row.diff) {
                series.samples.push(measure(&args.envfence, &diff, copy)?);
            }
            // The baseline build runs in the same rounds, right after the same floor run.
            if let (Some(program), Some(base)) = (&args.baseline, &mut baseline) {
                base.full.samples.push(measure(program, &scan, &repo)?);
                if let (Some(copy), Some(series)) = (&copy, &mut base.diff) {
                    series.samples.push(measure(program, &diff, copy)?);
                }
            }
        }
        eprintln!();
        if let Some(mut base) = baseline {
            base.floor.samples = row.floor.samples.clone();
            print_row(&base);
        }
        print_row(&row);
    }
    println!("load average after: {}", load_average());
    Ok(())
}
