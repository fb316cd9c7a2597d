//! The commands around scanning: `init` (a starter config), `merge` (an organisation summary
//! of many JSON reports), `completions` and `man` (shell and manual integration).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use envfence::config::{Config, FILE_NAME};
use envfence::scan::{self, Target};

use super::{with_progress, write_output, ReadArgs};

pub const INIT_EXAMPLES: &str = "\
Examples:
  envfence init                              write .envfence.yaml for the current directory
  envfence init ~/gitops                     write ~/gitops/.envfence.yaml
  envfence init --output - fixtures/demo     print the starter config instead

Each cluster found is declared with the environment envfence inferred, and why, as comments;
clusters the repository's selectors ask for get the labels they ask for. When fewer than half
of the objects are placed, entries that place the largest unplaced folders are written active,
each with its reason; the other folders that no deployer reaches are listed as commented
`paths:` entries. An existing file is never overwritten (exit 2).";

pub const MERGE_EXAMPLES: &str = "\
Examples:
  envfence scan --format json --fail-on never -o acme__platform.json ~/platform
  envfence merge reports/*.json >> \"$GITHUB_STEP_SUMMARY\"
  envfence merge --output summary.md acme__platform.json acme__apps.json

Each report is named after its file, with `__` read as `/`: acme__platform.json is
acme/platform. Suppressed findings and the fixed findings of a diff-aware report are not
counted.";

pub const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  envfence completions bash > ~/.local/share/bash-completion/completions/envfence
  envfence completions zsh > ~/.zfunc/_envfence      with fpath+=~/.zfunc in ~/.zshrc
  envfence completions fish > ~/.config/fish/completions/envfence.fish
  envfence completions powershell >> $PROFILE";

pub const MAN_EXAMPLES: &str = "\
Examples:
  envfence man > envfence.1 && man ./envfence.1
  envfence man --dir ~/.local/share/man/man1         one page per command: envfence-scan.1, ...";

#[derive(Args)]
pub struct InitArgs {
    /// Repository to read.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Where to write the config (default: .envfence.yaml in the repository); `-` prints it.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    read: ReadArgs,
}

#[derive(Args)]
pub struct MergeArgs {
    /// JSON reports (`envfence scan --format json`), one per repository.
    #[arg(required = true, value_name = "REPORT.json")]
    reports: Vec<PathBuf>,
    /// Write the summary to FILE instead of standard output (never through a symlink at FILE).
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    shell: clap_complete::Shell,
}

#[derive(Args)]
pub struct ManArgs {
    /// Write one page per command (envfence.1, envfence-scan.1, ...) to DIR instead of printing
    /// envfence.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run_init(args: InitArgs) -> anyhow::Result<u8> {
    let target = Target::resolve(&args.path)?;
    if target.only.is_some() {
        anyhow::bail!(
            "envfence init reads a repository folder, and {} is a file",
            args.path.display()
        );
    }
    let config = Config::discover(&target.display_root, args.read.config.as_deref())?;
    let topology = with_progress(args.read.quiet, |progress| {
        scan::topology(&target, &config, &args.read.options(), progress)
    })?;
    let (text, written) = envfence::init::starter_config(&topology);
    let destination = args
        .output
        .unwrap_or_else(|| target.display_root.join(FILE_NAME));
    let shown = envfence::sanitize::text(&destination.display().to_string()).into_owned();
    if destination.as_os_str() == "-" {
        write_output(&text, None, false, false)?;
    } else {
        // `create_new`: an existing file (or a symlink, even a dangling one) is never replaced.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&destination)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => anyhow::anyhow!(
                    "{shown} already exists: envfence init never overwrites a config (remove it, or write elsewhere with --output FILE)"
                ),
                _ => anyhow::anyhow!("cannot write {shown}: {e}"),
            })?;
        file.write_all(text.as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot write {shown}: {e}"))?;
    }
    let mut proposed = String::new();
    if written.labelled > 0 {
        proposed.push_str(&format!(
            "; {} cluster{} with the labels the selectors ask for",
            written.labelled,
            if written.labelled == 1 { "" } else { "s" }
        ));
    }
    if written.entries > 0 {
        proposed.push_str(&format!(
            "; {} entr{} that place{} the largest unplaced folders",
            written.entries,
            if written.entries == 1 { "y" } else { "ies" },
            if written.entries == 1 { "s" } else { "" }
        ));
    }
    eprintln!(
        "envfence: {}{} cluster{} ({} production, {} non-production, {} unknown){proposed}; {} folder{} that no deployer reaches, as commented paths: entries",
        if destination.as_os_str() == "-" {
            String::new()
        } else {
            format!("wrote {shown}: ")
        },
        written.clusters,
        if written.clusters == 1 { "" } else { "s" },
        written.production,
        written.non_production,
        written.unknown,
        written.unplaced_folders,
        if written.unplaced_folders == 1 { "" } else { "s" },
    );
    Ok(0)
}

pub fn run_merge(args: MergeArgs) -> anyhow::Result<u8> {
    let summaries = args
        .reports
        .iter()
        .map(|path| envfence::merge::read_report(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    write_output(
        &envfence::merge::render(&summaries),
        args.output.as_deref(),
        false,
        true,
    )?;
    Ok(0)
}

pub fn run_completions(args: CompletionsArgs, mut command: clap::Command) -> anyhow::Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "envfence", &mut script);
    write_output(&String::from_utf8_lossy(&script), None, false, false)?;
    Ok(0)
}

pub fn run_man(args: ManArgs, command: clap::Command) -> anyhow::Result<u8> {
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", dir.display()))?;
            write_man_pages(command, &dir)?;
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .map_err(|e| anyhow::anyhow!("cannot render the man page: {e}"))?;
            write_output(&String::from_utf8_lossy(&page), None, false, false)?;
        }
    }
    Ok(0)
}

/// One page per command and subcommand, as `clap_mangen::generate_to` writes them, but opened
/// never through a symlink ([`envfence::files::open_for_writing`]).
fn write_man_pages(command: clap::Command, dir: &std::path::Path) -> anyhow::Result<()> {
    fn pages(command: clap::Command, dir: &std::path::Path) -> anyhow::Result<()> {
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            pages(sub.clone(), dir)?;
        }
        let man = clap_mangen::Man::new(command);
        let path = dir.join(man.get_filename());
        envfence::files::open_for_writing(&path, envfence::files::WriteMode::Truncate)
            .and_then(|mut file| man.render(&mut file))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
    }
    let mut command = command.disable_help_subcommand(true);
    command.build();
    pages(command, dir)
}
