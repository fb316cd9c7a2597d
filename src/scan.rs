//! The pipeline: walk → read and parse (in parallel) → rules → a report.
//! Library code never prints; progress goes through a callback the caller provides.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rayon::prelude::*;

use crate::config::Config;
use crate::documents::{self, FileKind, Loaded, SkipReason, SourceFile};
use crate::findings::{self, Finding};
use crate::rules::{self, Policies, RuleContext};
use crate::topology::{self, Topology};
use crate::walk::{self, Candidate, Skipped};

/// Default for `--max-file-size`: 4 MiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Files larger than this are skipped unread.
    pub max_file_size: u64,
    /// Worker threads; `None` uses one per core.
    pub jobs: Option<usize>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            jobs: None,
        }
    }
}

/// What a scan is pointed at: a repository root, and optionally one file inside it.
#[derive(Debug, Clone)]
pub struct Target {
    /// Canonical root: every path check (symlinks leaving the repository) is against it.
    pub root: PathBuf,
    /// The root as the user wrote it, for messages (`repo/.envfence.yaml:3: ...`).
    pub display_root: PathBuf,
    pub only: Option<PathBuf>,
}

impl Target {
    /// Resolves a user-given path: a directory is the root; a file is scanned alone, with
    /// its directory as the root.
    pub fn resolve(path: &Path) -> anyhow::Result<Target> {
        let canonical = std::fs::canonicalize(path)
            .with_context(|| format!("cannot scan {}", path.display()))?;
        let meta = std::fs::metadata(&canonical)
            .with_context(|| format!("cannot scan {}", path.display()))?;
        if meta.is_dir() {
            Ok(Target {
                root: canonical,
                display_root: path.to_path_buf(),
                only: None,
            })
        } else {
            let root = canonical
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| canonical.clone());
            let display_root = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            Ok(Target {
                root,
                display_root,
                only: Some(canonical),
            })
        }
    }
}

/// Progress of the read-and-parse phase.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

/// Every file read, with its documents, and everything passed over.
#[derive(Debug, Default)]
pub struct Workspace {
    pub root: PathBuf,
    pub files: Vec<SourceFile>,
    pub skipped: Vec<Skipped>,
    pub ignored: usize,
}

impl Workspace {
    pub fn documents(&self) -> impl Iterator<Item = &documents::Document> {
        self.files.iter().flat_map(|f| f.documents.iter())
    }
}

/// Counts for the report's closing lines.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub files: usize,
    pub documents: usize,
    pub manifests: usize,
    pub files_by_kind: Vec<(FileKind, usize)>,
    pub skipped: Vec<Skipped>,
    pub ignored: usize,
    /// Kubernetes objects placed on at least one cluster, and clusters that received any.
    pub placed: usize,
    pub clusters_used: usize,
    pub duration: Duration,
}

#[derive(Debug)]
pub struct ScanReport {
    pub findings: Vec<Finding>,
    pub summary: Summary,
    pub topology: Topology,
    /// Set by a diff-aware scan: what the findings' statuses were measured against.
    pub comparison: Option<Comparison>,
}

/// The two sides of a diff-aware scan (`--base REV [--head REV]`).
#[derive(Debug, Clone, Default)]
pub struct Revisions {
    /// The base revision as the user wrote it: a commit id, a branch, `HEAD~1`, ...
    pub base: String,
    /// The head revision; `None` scans the working tree.
    pub head: Option<String>,
}

/// What a diff-aware report was compared against, for the report's headline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// The base revision as given, and the commit it resolved to.
    pub base: String,
    pub base_commit: String,
    /// The head commit, or `None` for the working tree.
    pub head_commit: Option<String>,
    /// Counts of findings by status (unsuppressed findings only).
    pub new: usize,
    pub existing: usize,
    pub fixed: usize,
}

/// Runs `f` on a pool of `jobs` threads (or rayon's global pool).
fn with_pool<T: Send>(jobs: Option<usize>, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
    match jobs {
        None => Ok(f()),
        Some(n) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n.max(1))
                .build()
                .context("cannot start worker threads")?;
            Ok(pool.install(f))
        }
    }
}

/// Walks, reads and parses: everything a rule needs, nothing a rule does.
pub fn index(
    target: &Target,
    config: &Config,
    options: &ScanOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> anyhow::Result<Workspace> {
    let walked = walk::walk(&target.root, config, target.only.as_deref());
    let total = walked.candidates.len();
    let done = AtomicUsize::new(0);
    let loaded: Vec<(Arc<str>, Loaded)> = with_pool(options.jobs, || {
        walked
            .candidates
            .par_iter()
            .map(|candidate| {
                let loaded = read_and_load(candidate, options.max_file_size);
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                progress(Progress { done: n, total });
                (Arc::clone(&candidate.rel_path), loaded)
            })
            .collect()
    })?;

    let mut workspace = Workspace {
        root: target.root.clone(),
        skipped: walked.skipped,
        ignored: walked.ignored,
        files: Vec::with_capacity(loaded.len()),
    };
    for (rel_path, loaded) in loaded {
        match loaded {
            Loaded::File(file) => workspace.files.push(file),
            Loaded::Skipped(reason) => workspace.skipped.push(Skipped { rel_path, reason }),
        }
    }
    workspace
        .skipped
        .sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    Ok(workspace)
}

fn read_and_load(candidate: &Candidate, cap: u64) -> Loaded {
    if candidate.size > cap {
        return Loaded::Skipped(SkipReason::TooLarge {
            size: candidate.size,
            cap,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(candidate.size).unwrap_or(0));
    // Read at most one byte past the cap, in case the file grew since the walk.
    let read = std::fs::File::open(&candidate.read_path)
        .and_then(|f| f.take(cap.saturating_add(1)).read_to_end(&mut bytes));
    match read {
        Err(e) => Loaded::Skipped(SkipReason::Unreadable(e.to_string())),
        Ok(n) if n as u64 > cap => Loaded::Skipped(SkipReason::TooLarge {
            size: n as u64,
            cap,
        }),
        Ok(_) => documents::load(&candidate.rel_path, &bytes, candidate.kind_hint),
    }
}

/// The whole scan: index the repository, run the rules, and summarise.
pub fn scan(
    target: &Target,
    config: &Config,
    policies: &Policies,
    options: &ScanOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> anyhow::Result<ScanReport> {
    let started = Instant::now();
    let workspace = index(target, config, options, progress)?;
    let topology = topology::build(&workspace.files, &workspace.skipped, config);
    let ctx = RuleContext::new(&workspace.files, &topology, policies, config);
    let mut findings = rules::run_all(&ctx);
    crate::suppressions::apply(&workspace.files, policies, &mut findings);
    findings::sort(&mut findings);
    let summary = summarise(&workspace, &topology, started.elapsed());
    Ok(ScanReport {
        findings,
        summary,
        topology,
        comparison: None,
    })
}

/// Indexes the repository and resolves its topology, without running rules.
pub fn topology(
    target: &Target,
    config: &Config,
    options: &ScanOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> anyhow::Result<Topology> {
    let workspace = index(target, config, options, progress)?;
    Ok(topology::build(
        &workspace.files,
        &workspace.skipped,
        config,
    ))
}

fn summarise(workspace: &Workspace, topology: &Topology, duration: Duration) -> Summary {
    let (placed, clusters_used) = topology.coverage();
    let mut by_kind = std::collections::BTreeMap::new();
    for f in &workspace.files {
        *by_kind.entry(f.kind).or_insert(0) += 1;
    }
    Summary {
        files: workspace.files.len(),
        documents: workspace.documents().count(),
        manifests: workspace.documents().filter(|d| d.is_manifest()).count(),
        files_by_kind: by_kind.into_iter().collect(),
        skipped: workspace.skipped.clone(),
        ignored: workspace.ignored,
        placed,
        clusters_used,
        duration,
    }
}

/// A diff-aware scan: scans the head (the working tree, or `revisions.head` read from git
/// objects) and the base, and marks each head finding `new` or `existing`; base findings that
/// are gone come back as `fixed`.
pub fn diff_scan(
    target: &Target,
    config: &Config,
    policies: &Policies,
    options: &ScanOptions,
    revisions: &Revisions,
    progress: &(dyn Fn(Progress) + Sync),
) -> anyhow::Result<ScanReport> {
    // Placeholder until the git reader lands: a plain scan, every finding `new`.
    let _ = revisions;
    scan(target, config, policies, options, progress)
}
