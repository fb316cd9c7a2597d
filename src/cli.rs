//! Command-line interface. Everything here is glue: parse arguments, call the library, print
//! the report, choose the exit code (0 clean, 1 findings at or above `--fail-on`, 2 usage,
//! config or I/O error with a one-line cause on stderr, 3 a scan a budget cut short).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anstream::ColorChoice;
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use envfence::config::Config;
use envfence::findings::Severity;
use envfence::github::{self, actions::ActionsEnv, comment::CommentMode};
use envfence::output::topology::{self as topology_output, TopologyFormat};
use envfence::output::{self, Format};
use envfence::rules::Policies;
use envfence::scan::{self, Progress, ScanOptions, Target};
use envfence::topology::helm::HelmChoice;

mod render;
mod setup;

const SCAN_EXAMPLES: &str = "\
Examples:
  envfence scan                         scan the current directory
  envfence scan fixtures/demo           scan another checkout
  envfence scan --format json -o r.json  write the JSON report (schema v1) to a file
  envfence scan --fail-on warning       exit 1 on warnings too (default: errors only)
  envfence scan --fail-on never         report, but always exit 0
  envfence scan --base origin/main      only what this branch introduces fails (new/existing/fixed)

Exit codes: 0 no finding at or above --fail-on; 1 findings at or above it;
2 usage, config or I/O error; 3 the scan is incomplete: a budget cut it short (the
report says which first; budgets: docs/security.md). 2 wins over 3, 3 over 1;
--fail-on never keeps 0.";

#[derive(Parser)]
#[command(
    name = "envfence",
    version,
    about = "Keeps non-production workloads out of production.",
    long_about = "Keeps non-production workloads out of production.\n\n\
        envfence reads a GitOps repository (Argo CD, Flux, kustomize, clusters/<name>/ layouts), \
        works out which manifests land on which cluster, and reports feature, preview and test \
        workloads placed on production clusters, pointed at production endpoints, secrets or \
        config, or sharing a cluster with production behind nothing but a namespace.",
    after_help = "Examples:\n  envfence scan fixtures/demo          report what lands where it should not\n  \
        envfence init                        write a starter .envfence.yaml\n\n\
        Run `envfence <command> --help` for each command's options and examples."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scan a GitOps repository and report findings.
    #[command(after_help = SCAN_EXAMPLES)]
    Scan(ScanArgs),
    /// Show which cluster every manifest lands on, and why.
    #[command(after_help = TOPOLOGY_EXAMPLES)]
    Topology(TopologyArgs),
    /// Show the evidence chain of one file: deployer → overlay → cluster → environment.
    #[command(after_help = EXPLAIN_EXAMPLES)]
    Explain(ExplainArgs),
    /// Run as the pull-request bot in GitHub Actions or any CI: annotations, job summary,
    /// SARIF, and one pull-request comment.
    #[command(after_help = GITHUB_EXAMPLES)]
    Github(GithubArgs),
    /// Write the objects each cluster receives, one YAML file each, for kubeconform,
    /// conftest or Kyverno (Secrets' values always redacted).
    #[command(after_help = render::RENDER_EXAMPLES)]
    Render(render::RenderArgs),
    /// Write a starter .envfence.yaml from the clusters and environments envfence finds.
    #[command(after_help = setup::INIT_EXAMPLES)]
    Init(setup::InitArgs),
    /// Merge the JSON reports of many repositories into one Markdown summary.
    #[command(after_help = setup::MERGE_EXAMPLES)]
    Merge(setup::MergeArgs),
    /// Print a shell completion script.
    #[command(after_help = setup::COMPLETIONS_EXAMPLES)]
    Completions(setup::CompletionsArgs),
    /// Print the man page (roff), or write one page per command to a folder.
    #[command(after_help = setup::MAN_EXAMPLES)]
    Man(setup::ManArgs),
    /// Run the `test_` rules of the Rego policies in a folder (as `opa test` does).
    #[command(after_help = TEST_POLICIES_EXAMPLES)]
    TestPolicies(TestPoliciesArgs),
}

const TEST_POLICIES_EXAMPLES: &str = "\
Examples:
  envfence test-policies policies/           run the tests of every .rego file in policies/
  envfence test-policies -v examples/policies

Exit codes: 0 every test passed; 1 a test failed or raised an error; 2 a policy does not
compile (file:line:col on stderr) or the folder cannot be read.";

#[derive(Args)]
struct TestPoliciesArgs {
    /// Folder of `.rego` files, `*_test.rego` included.
    dir: PathBuf,
    /// List passing tests too.
    #[arg(long, short = 'v')]
    verbose: bool,
}

fn run_test_policies(args: TestPoliciesArgs) -> anyhow::Result<u8> {
    use envfence::rules::rego::TestResult;
    let outcomes = envfence::rules::rego::test_dir(&args.dir)?;
    let mut out = anstream::stdout().lock();
    let failed = outcomes
        .iter()
        .filter(|o| o.result != TestResult::Pass)
        .count();
    for o in &outcomes {
        let name = envfence::sanitize::text(&o.name);
        let line = match &o.result {
            TestResult::Pass if !args.verbose => continue,
            TestResult::Pass => format!("PASS {name} ({:.1?})", o.duration),
            TestResult::Fail(got) => {
                format!("FAIL {name}: {}", envfence::sanitize::text(got))
            }
            TestResult::Error(e) => {
                format!("ERROR {name}: {}", envfence::sanitize::text(e))
            }
        };
        writeln!(out, "{line}")?;
        for printed in o
            .prints
            .iter()
            .filter(|_| args.verbose || o.result != TestResult::Pass)
        {
            writeln!(out, "  {}", envfence::sanitize::text(printed))?;
        }
    }
    writeln!(
        out,
        "{} passed, {failed} failed, of {} tests",
        outcomes.len() - failed,
        outcomes.len()
    )?;
    Ok(u8::from(failed > 0))
}

const GITHUB_EXAMPLES: &str = "\
Examples (in a workflow step, with GITHUB_TOKEN in the environment):
  envfence github                            scan the checkout, comment on the pull request
  envfence github deploy --sarif envfence.sarif
  envfence github --comment never            annotations and job summary only

On a pull_request event the scan is diff-aware: only findings the pull request introduces are
reported and count for --fail-on. Reads GITHUB_EVENT_PATH, GITHUB_EVENT_NAME,
GITHUB_REPOSITORY, GITHUB_API_URL, GITHUB_TOKEN, GITHUB_STEP_SUMMARY, GITHUB_WORKSPACE,
GITHUB_OUTPUT, GITHUB_SERVER_URL, GITHUB_RUN_ID and ENVFENCE_BOT_LOGIN.

Exit codes: as envfence scan; API failures are warnings, not errors.";

const TOPOLOGY_EXAMPLES: &str = "\
Examples:
  envfence topology                          clusters, and what lands on each
  envfence topology --format json            the topology document (version 1)
  envfence topology --format mermaid         a deployer → cluster flowchart
  envfence topology --format dot | dot -Tsvg > topology.svg";

const EXPLAIN_EXAMPLES: &str = "\
Examples:
  envfence explain apps/web/base/deployment.yaml
  envfence explain --root ~/gitops ~/gitops/clusters/prod/apps.yaml";

/// Options of every command that reads a repository.
#[derive(Args)]
struct ReadArgs {
    /// Config file (default: .envfence.yaml at the repository root, if present).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Worker threads for the whole scan: walking, parsing, topology and rules (default: one
    /// per core; more than 4 per core are not started).
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Skip files larger than this (bytes, or with a K, M, G, KiB, MiB or GiB suffix; at most
    /// 256MiB).
    #[arg(long, value_name = "SIZE", default_value = "4MiB", value_parser = parse_max_file_size)]
    max_file_size: u64,
    /// No progress on standard error.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// The helm binary that renders local charts, or `off` (default: ENVFENCE_HELM, else
    /// `helm` on PATH when there is one). Never taken from the repository or its config.
    #[arg(long, value_name = "PATH|off")]
    helm: Option<String>,
    /// The folder that keeps helm renders between runs, or `off` (default: ENVFENCE_CACHE,
    /// else `envfence` in XDG_CACHE_HOME or ~/.cache). Entries are keyed by everything a
    /// render reads and checked when read; the folder is kept under 512 MiB, and one inside
    /// the scanned repository is refused.
    #[arg(long, value_name = "DIR|off")]
    cache: Option<String>,
}

impl ReadArgs {
    fn options(&self) -> ScanOptions {
        let helm = self.helm.clone().or_else(|| {
            std::env::var("ENVFENCE_HELM")
                .ok()
                .filter(|v| !v.is_empty())
        });
        ScanOptions {
            max_file_size: self.max_file_size,
            jobs: self.jobs.map(|n| usize::from(n).min(max_jobs())),
            helm: helm.map_or(HelmChoice::Auto, |h| HelmChoice::parse(&h)),
            cache: cache_folder(self.cache.as_deref()),
            cache_chosen: self.cache.is_some()
                || std::env::var_os("ENVFENCE_CACHE").is_some_and(|v| !v.is_empty()),
        }
    }
}

/// The folder of `--cache`, else `ENVFENCE_CACHE`, else the user's cache folder; `None` for
/// `off` (or when there is no home to put it in).
fn cache_folder(flag: Option<&str>) -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let chosen = flag
        .map(std::ffi::OsString::from)
        .or_else(|| var("ENVFENCE_CACHE"));
    match chosen {
        Some(v) if v == "off" => None,
        Some(dir) => Some(PathBuf::from(dir)),
        None => var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|base| base.join("envfence")),
    }
}

/// The most worker threads `--jobs` starts: 4 per core. More only cost memory and start-up
/// time (65,535 threads take a minute to start), so a larger value is lowered, silently.
fn max_jobs() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    cores.saturating_mul(4)
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FailOn {
    Error,
    Warning,
    Info,
    Never,
}

impl FailOn {
    fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Error => Some(Severity::Error),
            FailOn::Warning => Some(Severity::Warning),
            FailOn::Info => Some(Severity::Info),
            FailOn::Never => None,
        }
    }
}

#[derive(Args)]
struct ScanArgs {
    /// Repository (or single file) to scan.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Lowest severity that makes the exit code 1.
    #[arg(long, value_enum, default_value_t = FailOn::Error, value_name = "LEVEL")]
    fail_on: FailOn,
    /// Write the report to FILE instead of standard output (never through a symlink at FILE).
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Folder of policy files: `<rule-id>.yaml` files change severities and texts and extend
    /// the built-in policies' data lists; `.rego` files add Rego policies
    /// (docs/policies-rego.md).
    #[arg(long, value_name = "DIR")]
    policies: Option<PathBuf>,
    /// Diff-aware: also scan this git revision (read from git objects, no checkout) and mark
    /// each finding new, existing or fixed; only new findings count for --fail-on.
    #[arg(long, value_name = "REV")]
    base: Option<String>,
    /// With --base: scan this revision as the head instead of the working tree.
    #[arg(long, value_name = "REV", requires = "base")]
    head: Option<String>,
    #[command(flatten)]
    read: ReadArgs,
}

#[derive(Args)]
struct GithubArgs {
    /// Folder to scan, relative to GITHUB_WORKSPACE when that is set.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Folder of policy files (`<rule-id>.yaml`), as for `envfence scan`.
    #[arg(long, value_name = "DIR")]
    policies: Option<PathBuf>,
    /// Lowest severity of a new finding that makes the exit code 1.
    #[arg(long, value_enum, default_value_t = FailOn::Error, value_name = "LEVEL")]
    fail_on: FailOn,
    /// When to write the pull-request comment: auto (when the pull request introduces
    /// findings, or to update an existing comment), always, or never.
    #[arg(long, value_enum, default_value_t = CommentMode::Auto, value_name = "WHEN")]
    comment: CommentMode,
    /// Also write the SARIF report to FILE (never through a symlink at FILE).
    #[arg(long, value_name = "FILE")]
    sarif: Option<PathBuf>,
    /// Write the HTML report to FILE (default with --sarif: envfence.html beside the SARIF
    /// file); the comment then points to the workflow run's page, where the action uploads it.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    #[command(flatten)]
    read: ReadArgs,
}

#[derive(Args)]
struct TopologyArgs {
    /// Repository to read.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = TopologyFormat::Text)]
    format: TopologyFormat,
    /// Write to FILE instead of standard output (never through a symlink at FILE).
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    read: ReadArgs,
}

#[derive(Args)]
struct ExplainArgs {
    /// The file to explain.
    file: PathBuf,
    /// Repository root (default: the nearest folder above FILE with .git or .envfence.yaml,
    /// else the current directory).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    #[command(flatten)]
    read: ReadArgs,
}

/// `--max-file-size`: a size, at most [`scan::MAX_FILE_SIZE_LIMIT`].
fn parse_max_file_size(text: &str) -> Result<u64, String> {
    let size = parse_size(text)?;
    if size > scan::MAX_FILE_SIZE_LIMIT {
        return Err(format!(
            "`{text}` is above the largest file size envfence reads, 256MiB"
        ));
    }
    Ok(size)
}

/// Parses `4194304`, `4M`, `4MiB`, `512k` ... (K/M/G are binary units, as for file sizes).
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size (try 4MiB or 4194304)"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit `{other}` (use K, M or G)")),
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

pub fn main() -> ExitCode {
    // Rego policies are evaluated in child processes running this binary as `envfence
    // __rego-worker`, a command of no help page, completion or man page.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "__rego-worker")
    {
        return ExitCode::from(envfence::rules::rego::serve_worker(
            std::io::stdin().lock(),
            std::io::stdout().lock(),
        ));
    }
    if let Ok(exe) = std::env::current_exe() {
        envfence::rules::rego::set_worker_executable(exe);
    }
    // Without this binary's path, Rego policies are evaluated in this process, and running
    // out of their memory budget ends it, with the same one line as any other error.
    envfence::rules::rego::memory::on_exceeded(|reason| -> ! {
        eprintln!("envfence: error: {reason}");
        std::process::exit(2)
    });
    // Every command ends the process: what a scan holds is left to the operating system.
    envfence::background::leave_to_exit();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help and version to stdout (exit 0) and usage errors to stderr (2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Scan(args) => run_scan(args),
        Command::Topology(args) => run_topology(args),
        Command::Explain(args) => run_explain(args),
        Command::Github(args) => run_github(args),
        Command::Render(args) => render::run_render(args),
        Command::Init(args) => setup::run_init(args),
        Command::Merge(args) => setup::run_merge(args),
        Command::Completions(args) => {
            setup::run_completions(args, <Cli as clap::CommandFactory>::command())
        }
        Command::Man(args) => setup::run_man(args, <Cli as clap::CommandFactory>::command()),
        Command::TestPolicies(args) => run_test_policies(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // One line, whatever the cause quotes (a --base value, a path, a config value).
            let cause = envfence::sanitize::text(&format!("{e:#}")).into_owned();
            eprintln!("envfence: error: {cause}");
            ExitCode::from(2)
        }
    }
}

fn run_scan(args: ScanArgs) -> anyhow::Result<u8> {
    let target = Target::resolve(&args.path)?;
    // A head revision brings its own `.envfence.yaml`; otherwise the working tree's applies
    // (to the base too, so that both sides are judged by the same rules).
    let config = match (&args.head, &args.read.config) {
        (Some(head), None) => scan::config_at(&target, head)?,
        _ => Config::discover(&target.display_root, args.read.config.as_deref())?,
    };
    let mut policies = Policies::builtin()?;
    if let Some(dir) = &config.policies {
        policies.apply_dir(&target.display_root.join(dir), &target.display_root)?;
    }
    if let Some(dir) = &args.policies {
        policies.apply_dir(dir, &target.display_root)?;
    }
    policies.apply_config(&config);
    let options = args.read.options();
    let report = with_progress(args.read.quiet, |progress| match &args.base {
        Some(base) => {
            let revisions = scan::Revisions {
                base: base.clone(),
                head: args.head.clone(),
            };
            scan::diff_scan(&target, &config, &policies, &options, &revisions, progress)
        }
        None => scan::scan(&target, &config, &policies, &options, progress),
    })?;
    let rendered = match args.format {
        Format::Html => html_report(&report, &target),
        format => output::render(&report, format, &policies),
    };
    write_output(
        &rendered,
        args.output.as_deref(),
        args.format == Format::Text,
        matches!(args.format, Format::Text | Format::Markdown),
    )?;
    show_policy_prints(&report);
    let code = exit_code(&report, args.fail_on);
    envfence::background::drop_in_background(report);
    Ok(code)
}

/// `--format html`, its file:line links pointing at the head commit when the Actions
/// variables name the repository (`GITHUB_SERVER_URL`, `GITHUB_REPOSITORY`) and a commit
/// is known (`--head`'s, else `GITHUB_SHA`); plain text otherwise.
fn html_report(report: &scan::ScanReport, target: &Target) -> String {
    let env = ActionsEnv::from_env();
    let head = report
        .comparison
        .as_ref()
        .and_then(|c| c.head_commit.clone())
        .or_else(|| env.sha.clone());
    // The report's paths start at the scanned folder; links start at the repository's top.
    let blob = env.blob_url(head.as_deref()).and_then(|blob| {
        let prefix = github::paths::repository_prefix(&target.root)?;
        Some(if prefix.is_empty() {
            blob
        } else {
            let encoded: String = prefix
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'.' | b'_' | b'~') {
                        char::from(b).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            format!("{blob}/{encoded}")
        })
    });
    let run = env.run_url();
    output::html::render(
        report,
        &output::html::HtmlOptions {
            blob_url: blob.as_deref(),
            run_url: run.as_deref(),
        },
    )
}

fn run_github(args: GithubArgs) -> anyhow::Result<u8> {
    let env = ActionsEnv::from_env();
    let request = github::Request {
        path: &args.path,
        config: args.read.config.as_deref(),
        policies: args.policies.as_deref(),
        comment: args.comment,
        sarif: args.sarif.as_deref(),
        html: args.html.as_deref(),
        options: args.read.options(),
    };
    let outcome = with_progress(args.read.quiet, |progress| {
        github::run(&request, &env, progress)
    })?;
    write_output(&outcome.annotations, None, false, false)?;
    for warning in &outcome.warnings {
        let warning = envfence::sanitize::text(warning);
        eprintln!("envfence: warning: {warning}");
    }
    show_policy_prints(&outcome.report);
    Ok(exit_code(&outcome.report, args.fail_on))
}

/// What Rego policies printed, on stderr, one escaped line each behind envfence's own prefix:
/// a policy's text can never start a line (a workflow command) or restyle the terminal.
fn show_policy_prints(report: &scan::ScanReport) {
    for line in &report.summary.policy_prints {
        let line = envfence::sanitize::text(&envfence::redact::secrets(line)).into_owned();
        eprintln!("envfence: policy print: {line}");
    }
}

/// 3 when a budget cut the scan short, else 1 when a finding fails it, else 0; `--fail-on
/// never` keeps 0 (DESIGN §7: 2, for errors, is returned before a report exists).
fn exit_code(report: &scan::ScanReport, fail_on: FailOn) -> u8 {
    if fail_on.threshold().is_none() {
        0
    } else if !report.summary.cuts.is_empty() {
        3
    } else {
        u8::from(failing(report, fail_on))
    }
}

/// Whether a new, unsuppressed finding is at or above `--fail-on`.
fn failing(report: &scan::ScanReport, fail_on: FailOn) -> bool {
    fail_on.threshold().is_some_and(|threshold| {
        report.findings.iter().any(|f| {
            !f.suppressed && f.status == envfence::findings::Status::New && f.severity >= threshold
        })
    })
}

fn run_topology(args: TopologyArgs) -> anyhow::Result<u8> {
    let target = Target::resolve(&args.path)?;
    let config = Config::discover(&target.display_root, args.read.config.as_deref())?;
    let topology = with_progress(args.read.quiet, |progress| {
        scan::topology(&target, &config, &args.read.options(), progress)
    })?;
    write_output(
        &topology_output::render(&topology, args.format),
        args.output.as_deref(),
        args.format == TopologyFormat::Text,
        args.format == TopologyFormat::Text,
    )?;
    Ok(0)
}

fn run_explain(args: ExplainArgs) -> anyhow::Result<u8> {
    let file = std::fs::canonicalize(&args.file)
        .map_err(|e| anyhow::anyhow!("cannot explain {}: {e}", args.file.display()))?;
    let yaml_name = file
        .file_name()
        .is_some_and(|n| envfence::walk::is_yaml_name(&n.to_string_lossy()));
    if !file.is_file() || !yaml_name {
        anyhow::bail!(
            "cannot explain {}: it is not a YAML file (envfence reads *.yaml, *.yml and Kustomization files)",
            args.file.display()
        );
    }
    let root = match &args.root {
        Some(r) => std::fs::canonicalize(r)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", r.display()))?,
        None => find_root(&file)?,
    };
    let rel = file.strip_prefix(&root).map_err(|_| {
        anyhow::anyhow!(
            "{} is not inside the repository {}",
            args.file.display(),
            root.display()
        )
    })?;
    let rel = envfence::walk::relative(Path::new(""), rel);
    let target = Target::resolve(&root)?;
    let config = Config::discover(&target.display_root, args.read.config.as_deref())?;
    let topology = with_progress(args.read.quiet, |progress| {
        scan::topology(&target, &config, &args.read.options(), progress)
    })?;
    write_output(&topology_output::explain(&topology, &rel), None, true, true)?;
    Ok(0)
}

/// The nearest folder above `file` that holds `.git` or `.envfence.yaml`, else the current
/// directory when it contains the file.
fn find_root(file: &Path) -> anyhow::Result<PathBuf> {
    for dir in file.ancestors().skip(1) {
        if dir.join(".git").exists() || dir.join(envfence::config::FILE_NAME).is_file() {
            return Ok(dir.to_path_buf());
        }
    }
    let cwd = std::env::current_dir()?;
    let cwd = std::fs::canonicalize(&cwd).unwrap_or(cwd);
    if file.starts_with(&cwd) {
        Ok(cwd)
    } else {
        anyhow::bail!(
            "cannot tell which repository {} belongs to; pass --root DIR",
            file.display()
        )
    }
}

/// Runs `work` with a progress bar on stderr (on a terminal, and not with `--quiet`).
fn with_progress<T>(quiet: bool, work: impl FnOnce(&(dyn Fn(Progress) + Sync)) -> T) -> T {
    let bar = progress_bar(quiet);
    let on_progress = |p: Progress| {
        if let Some(bar) = &bar {
            if bar.length() != Some(p.total as u64) {
                bar.set_length(p.total as u64);
            }
            bar.set_position(p.done as u64);
        }
    };
    let result = work(&on_progress);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    result
}

/// Writes a rendered report to a file (never coloured) or to stdout (coloured on a terminal).
/// Only `styled` output (text) can hold ANSI styles; JSON and graphs are written as they are.
/// `human` output (text, Markdown) on stdout is fenced off from GitHub Actions' workflow
/// commands when running there ([`fence_for_actions`]).
fn write_output(
    rendered: &str,
    path: Option<&Path>,
    styled: bool,
    human: bool,
) -> anyhow::Result<()> {
    match path {
        Some(path) => {
            // Never through a symlink: the path may be one the pull request committed.
            let file =
                envfence::files::open_for_writing(path, envfence::files::WriteMode::Truncate)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            let mut stream = anstream::AutoStream::new(
                file,
                if styled {
                    ColorChoice::Never
                } else {
                    ColorChoice::AlwaysAnsi
                },
            );
            stream
                .write_all(rendered.as_bytes())
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        }
        None => {
            let fenced;
            let rendered = if human {
                fenced = fence_for_actions(rendered);
                &fenced
            } else {
                rendered
            };
            let result = if styled {
                anstream::stdout().write_all(rendered.as_bytes())
            } else {
                std::io::stdout().lock().write_all(rendered.as_bytes())
            };
            if let Err(e) = result {
                // A closed pipe (`envfence scan | head`) is not an error worth a message.
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    anyhow::bail!("cannot write the report: {e}");
                }
            }
        }
    }
    Ok(())
}

/// Under GitHub Actions (`GITHUB_ACTIONS=true`), the log runs any line that starts with `::`
/// as a workflow command. Repository text in the report is escaped already (no control
/// character can start a line); as a second fence, human-readable stdout is wrapped in
/// `::stop-commands::<token>` … `::<token>::`, the runner's own way to print text verbatim,
/// with a random token the repository cannot know. Not when stdout is a regular file (`>
/// report.md`), which is not the log, and never for JSON, SARIF or `--format github`.
fn fence_for_actions(rendered: &str) -> std::borrow::Cow<'_, str> {
    let in_actions = std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true");
    if !in_actions || rendered.is_empty() || stdout_is_regular_file() {
        return std::borrow::Cow::Borrowed(rendered);
    }
    let token = random_token();
    let newline = if rendered.ends_with('\n') { "" } else { "\n" };
    std::borrow::Cow::Owned(format!(
        "::stop-commands::{token}\n{rendered}{newline}::{token}::\n"
    ))
}

/// 128 random bits as hex, from the operating system; a per-process hash key (also random)
/// if that fails.
fn random_token() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        use std::hash::{BuildHasher, Hasher};
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(unix)]
fn stdout_is_regular_file() -> bool {
    use std::os::fd::AsFd;
    std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata().ok())
        .is_some_and(|m| m.is_file())
}

#[cfg(not(unix))]
fn stdout_is_regular_file() -> bool {
    false
}

/// A progress bar on stderr, only for a terminal and only when not `--quiet`.
fn progress_bar(quiet: bool) -> Option<ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template("{spinner} reading {pos}/{len} files {wide_bar} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("4 parsecs").is_err());
        assert!(parse_size("99999999999G").is_err());
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    /// Every command's `--help` shows examples, and each example is a command line that
    /// parses: an option renamed without its example fails here.
    #[test]
    fn every_command_shows_examples_that_parse() {
        use clap::CommandFactory;
        let top = Cli::command();
        let mut checked = 0;
        let commands = std::iter::once(&top).chain(top.get_subcommands());
        for command in commands {
            let help = command
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                help.contains("Examples"),
                "`{}` --help shows no example",
                command.get_name()
            );
            let examples: Vec<&str> = help
                .lines()
                .filter_map(|l| l.trim_start().strip_prefix("envfence "))
                .collect();
            assert!(!examples.is_empty(), "{}: {help}", command.get_name());
            for example in examples {
                // The command ends at the two spaces before its description, or at a shell
                // operator.
                let line = example.split("  ").next().unwrap_or_default();
                let line = line
                    .split(['|', '>', '&'])
                    .next()
                    .unwrap_or_default()
                    .trim();
                let args = std::iter::once("envfence").chain(line.split_whitespace());
                if let Err(e) = Cli::try_parse_from(args) {
                    panic!("example `envfence {line}` does not parse: {e}");
                }
                checked += 1;
            }
        }
        assert!(checked >= 20, "{checked}");
    }
}
