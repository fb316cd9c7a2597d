//! `envfence render`: glue around [`envfence::output::render_dir`].

use std::path::PathBuf;

use clap::Args;

use envfence::config::Config;
use envfence::output::render_dir::{self, Rendered};
use envfence::scan::{self, Target};

use super::{with_progress, ReadArgs};

pub const RENDER_EXAMPLES: &str = "\
Layout: DIR/<cluster>/<namespace>/<kind>-<name>.yaml, one object per file, as the cluster
receives it (after kustomize's edits and Helm rendering). Cluster-scoped objects go in
DIR/<cluster>/_cluster/, namespaced objects nothing gives a namespace in DIR/<cluster>/_unset/.
Names are made safe for a file system (anything but letters, digits, '.', '-' and '_' becomes
'_'); two different objects that map to one path are both written, the second with a numbered
suffix (`_2`), and said so on stderr. With --base, DIR/base/... and DIR/head/....
Secrets' values are always redacted (data: cmVkYWN0ZWQ=, stringData: ****); their keys stay.
Objects kustomize generators make (configMapGenerator, secretGenerator) are not written.
DIR must be new or empty, and outside the scanned repository.

Examples:
  envfence render fixtures/demo --out /tmp/objects
  kubeconform -summary /tmp/objects/prod-eu        check what prod-eu receives
  envfence render --out /tmp/objects --base origin/main
  diff -r /tmp/objects/base /tmp/objects/head      what the branch changes, per cluster

Exit codes: 0 written; 2 usage, config or I/O error, DIR not empty or inside the repository;
3 a budget cut the scan short (what was resolved is written).";

#[derive(Args)]
pub struct RenderArgs {
    /// Repository to read.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// The folder to write to: new or empty, outside the repository.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Also write the objects of this revision (a commit, branch, tag): to DIR/base, and
    /// the head's to DIR/head.
    #[arg(long, value_name = "REV")]
    base: Option<String>,
    /// With --base: the head revision (default: the working tree).
    #[arg(long, value_name = "REV", requires = "base")]
    head: Option<String>,
    #[command(flatten)]
    read: ReadArgs,
}

pub fn run_render(args: RenderArgs) -> anyhow::Result<u8> {
    let target = Target::resolve(&args.path)?;
    if let Some(cause) = render_dir::check_out_dir(&args.out, &target.root) {
        anyhow::bail!("{cause}");
    }
    // As `scan --base`: a head revision brings its own configuration, used for both sides.
    let config = match (&args.head, &args.read.config) {
        (Some(head), None) => scan::config_at(&target, head)?,
        _ => Config::discover(&target.display_root, args.read.config.as_deref())?,
    };
    let options = args.read.options();
    let mut sides: Vec<(Option<&str>, Rendered, bool)> = Vec::new();
    let side = |prefix: Option<&'static str>, rev: Option<(&str, &str)>| {
        let (workspace, topology) = with_progress(args.read.quiet, |progress| match rev {
            Some((rev, flag)) => {
                scan::resolve_revision(&target, &config, &options, rev, flag, progress)
            }
            None => scan::resolve(&target, &config, &options, progress),
        })?;
        let rendered = render_dir::plan(&topology, &workspace.files, prefix);
        let cut = !topology.cuts.is_empty() || !workspace.cuts.is_empty();
        envfence::background::drop_in_background((workspace, topology));
        anyhow::Ok((prefix, rendered, cut))
    };
    match &args.base {
        None => sides.push(side(None, None)?),
        Some(base) => {
            sides.push(side(Some("base"), Some((base, "--base")))?);
            let head = args.head.as_deref().map(|h| (h, "--head"));
            sides.push(side(Some("head"), head)?);
        }
    }
    let show = |text: &str| envfence::sanitize::text(text).into_owned();
    let mut incomplete = false;
    for (prefix, rendered, cut) in &sides {
        render_dir::write(&args.out, rendered)
            .map_err(|e| anyhow::anyhow!("cannot write to {}: {e}", args.out.display()))?;
        for note in &rendered.notes {
            eprintln!("envfence: note: {}", show(note));
        }
        if *cut {
            incomplete = true;
            eprintln!(
                "envfence: warning: incomplete: a budget cut the scan short, so some objects may be missing (exit code 3)"
            );
        }
        let side = prefix.map(|p| format!(" ({p})")).unwrap_or_default();
        let generated = match rendered.generated {
            0 => String::new(),
            n => format!(
                "; {n} object{} made by kustomize generators not written",
                if n == 1 { "" } else { "s" }
            ),
        };
        println!(
            "wrote {} object{} for {} cluster{} to {}{side}{generated}",
            rendered.files.len(),
            if rendered.files.len() == 1 { "" } else { "s" },
            rendered.clusters,
            if rendered.clusters == 1 { "" } else { "s" },
            show(&args.out.join(prefix.unwrap_or("")).display().to_string()).trim_end_matches('/'),
        );
    }
    Ok(if incomplete { 3 } else { 0 })
}
