//! The pipeline: walk → read and parse (in parallel) → rules → a report.
//! Library code never prints; progress goes through a callback the caller provides.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use git2::Oid;
use rayon::prelude::*;

use crate::background::drop_in_background;
use crate::budget::BudgetCut;
use crate::config::Config;
use crate::documents::{self, FileKind, Loaded, SkipReason, SourceFile};
use crate::findings::{self, Finding, Status};
use crate::git::{GitRepo, TreeListing};
use crate::rules::{self, Policies, RuleContext};
use crate::topology::coverage::Coverage;
use crate::topology::helm::{self, HelmChoice};
use crate::topology::{self, Topology};
use crate::walk::{self, Candidate, Skipped};

/// Default for `--max-file-size`: 4 MiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 4 * 1024 * 1024;

/// The largest `--max-file-size` accepted: 256 MiB, a size one read can always hold.
pub const MAX_FILE_SIZE_LIMIT: u64 = 256 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Files larger than this are skipped unread.
    pub max_file_size: u64,
    /// Worker threads; `None` uses one per core.
    pub jobs: Option<usize>,
    /// The helm that renders local charts (`--helm PATH|off`, `ENVFENCE_HELM`).
    pub helm: HelmChoice,
    /// The folder that keeps renders between runs (`--cache DIR|off`, `ENVFENCE_CACHE`);
    /// `None` keeps none.
    pub cache: Option<PathBuf>,
    /// Whether the user chose that folder: one that cannot be used is then an error. The
    /// default folder is only a speed-up, left out when it cannot be used (a read-only home,
    /// a scan of the home folder itself).
    pub cache_chosen: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            jobs: None,
            helm: HelmChoice::Auto,
            cache: None,
            cache_chosen: false,
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

    /// For a single-file target: the file, and the repository it belongs to.
    pub fn alone(&self) -> Option<Alone> {
        let only = self.only.as_ref()?;
        let file = self.display_root.join(only.file_name()?);
        let is_root =
            |dir: &Path| dir.join(".git").exists() || dir.join(crate::config::FILE_NAME).is_file();
        // The user's own spelling first (`repo/apps` → `repo`), then absolute folders above.
        let relative = self.display_root.ancestors().find_map(|dir| {
            let shown = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            is_root(shown).then(|| shown.to_path_buf())
        });
        let repository_root = relative.or_else(|| {
            let start = if self.display_root.is_absolute() {
                self.root.clone()
            } else {
                std::env::current_dir().ok()?
            };
            start
                .ancestors()
                .find(|d| is_root(d))
                .map(Path::to_path_buf)
        });
        Some(Alone {
            file,
            repository_root,
        })
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
    /// The last `rendered` entries of `files` are Helm output, not repository files.
    pub rendered: usize,
    /// The listing limits that cut the walk (or the revision's listing) short.
    pub cuts: Vec<BudgetCut>,
}

impl Workspace {
    /// The repository's own files (without Helm output).
    pub fn repository_files(&self) -> &[SourceFile] {
        &self.files[..self.files.len() - self.rendered.min(self.files.len())]
    }

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
    /// Objects, placed objects, opaque placements and unplaced folders (docs/json-schema.md).
    pub coverage: Coverage,
    /// Set when one file was scanned on its own.
    pub alone: Option<Alone>,
    pub duration: Duration,
    /// The helm that rendered charts (`helm v3.17.3 at /usr/bin/helm`), its `helm template`
    /// runs and their wall time; `None` when nothing could be rendered.
    pub helm: Option<String>,
    pub renders: usize,
    /// Renders taken from the store of earlier runs (`--cache`) instead of running helm.
    pub cached_renders: usize,
    pub render_time: Duration,
    /// The budgets that cut this scan short, settled ([`crate::budget::settle`]): a scan with
    /// any is incomplete, says so first and exits 3.
    pub cuts: Vec<BudgetCut>,
    /// What Rego policies printed (`print`), in evaluation order: the binary shows each line
    /// escaped on stderr, never as raw output a runner would read as a command.
    pub policy_prints: Vec<String>,
}

/// A file scanned on its own: nothing outside it was read, so no deployer placed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alone {
    /// The file as the user named it.
    pub file: PathBuf,
    /// The repository that would place it: the nearest folder above it with `.git` or
    /// `.envfence.yaml`, if any.
    pub repository_root: Option<PathBuf>,
}

#[derive(Debug)]
pub struct ScanReport {
    pub findings: Vec<Finding>,
    pub summary: Summary,
    pub topology: Topology,
    /// Set by a diff-aware scan: what the findings' statuses were measured against.
    pub comparison: Option<Comparison>,
    /// Set by a diff-aware scan: what the change does to each cluster.
    pub changes: Option<topology::changes::Changes>,
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
    /// Files of the base whose blob the head has too: parsed once, for both sides.
    pub unchanged_files: usize,
}

/// Runs `f` on a pool of `jobs` threads (or rayon's global pool). Inside such a pool already,
/// runs `f` there: `--jobs` bounds the whole scan, not only each parallel step.
fn with_pool<T: Send>(jobs: Option<usize>, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
    match jobs {
        None => Ok(f()),
        Some(n)
            if rayon::current_thread_index().is_some()
                && rayon::current_num_threads() == n.max(1) =>
        {
            Ok(f())
        }
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
    Ok(index_working_tree(target, config, options, false, progress)?.workspace)
}

/// A workspace and, for a diff-aware scan, the blob id of each file read, so that the other
/// side of the comparison can reuse what is unchanged instead of parsing it again.
struct IndexedSide {
    workspace: Workspace,
    blobs: topology::HashMap<Arc<str>, (Oid, Option<FileKind>)>,
    /// Files taken from the other side instead of being parsed.
    unchanged: usize,
}

/// The head's file at a path, for the base to take when its blob is the same.
struct HeadEntry<'a> {
    oid: Oid,
    hint: Option<FileKind>,
    parsed: Option<&'a SourceFile>,
    skipped: Option<&'a SkipReason>,
}

fn index_working_tree(
    target: &Target,
    config: &Config,
    options: &ScanOptions,
    with_blob_ids: bool,
    progress: &(dyn Fn(Progress) + Sync),
) -> anyhow::Result<IndexedSide> {
    let walked = walk::walk(&target.root, config, target.only.as_deref());
    let loaded = load_parallel(
        &walked.candidates,
        options.jobs,
        progress,
        || (),
        |(), candidate| read_and_load(candidate, options.max_file_size, with_blob_ids),
    )?;
    let blobs = walked
        .candidates
        .iter()
        .zip(&loaded)
        .filter_map(|(c, (_, oid))| Some((Arc::clone(&c.rel_path), ((*oid)?, c.kind_hint))))
        .collect();
    let paths = walked.candidates.iter().map(|c| &c.rel_path);
    let mut workspace = assemble(target, paths, loaded, walked.skipped, walked.ignored);
    workspace.cuts.extend(walked.cut);
    Ok(IndexedSide {
        workspace,
        blobs,
        unchanged: 0,
    })
}

/// Indexes the scanned folder at a commit (its `listing`), read from git objects. Files whose
/// blob is the one `reuse` already parsed are taken from it, not parsed again.
fn index_revision(
    target: &Target,
    git: &GitRepo,
    listing: TreeListing,
    options: &ScanOptions,
    reuse: Option<&IndexedSide>,
    progress: &(dyn Fn(Progress) + Sync),
) -> anyhow::Result<IndexedSide> {
    let git_dir = git.git_dir().to_path_buf();
    // What the head has at each path: its blob, and its parse or why it was passed over.
    let head: topology::HashMap<&str, HeadEntry<'_>> = reuse
        .map(|side| {
            let mut head = topology::HashMap::default();
            head.reserve(side.blobs.len());
            for (path, &(oid, hint)) in &side.blobs {
                head.insert(
                    &**path,
                    HeadEntry {
                        oid,
                        hint,
                        parsed: None,
                        skipped: None,
                    },
                );
            }
            for f in side.workspace.repository_files() {
                if let Some(entry) = head.get_mut(&*f.path) {
                    entry.parsed = Some(f);
                }
            }
            for s in &side.workspace.skipped {
                if let Some(entry) = head.get_mut(&*s.rel_path) {
                    entry.skipped = Some(&s.reason);
                }
            }
            head
        })
        .unwrap_or_default();
    // A blob missing from the repository stops the scan: the first by path, so that the
    // error is the same on every run.
    let missing: std::sync::Mutex<Option<(Arc<str>, anyhow::Error)>> = std::sync::Mutex::new(None);
    let loaded = load_parallel(
        &listing.files,
        options.jobs,
        progress,
        // A repository handle per thread, opened only if one of its files must be read.
        || None,
        |repo: &mut Option<Option<git2::Repository>>, file| {
            let same = head
                .get(&*file.rel_path)
                .filter(|h| h.oid == file.oid && h.hint == file.kind_hint);
            if let Some(h) = same {
                if let Some(f) = h.parsed {
                    return (Loaded::File(f.clone()), Some(file.oid), true);
                }
                if let Some(reason) = h.skipped {
                    return (Loaded::Skipped(reason.clone()), Some(file.oid), true);
                }
            }
            let loaded = match repo.get_or_insert_with(|| crate::git::reopen(&git_dir)) {
                None => Loaded::Skipped(SkipReason::Unreadable(
                    "cannot open the git repository".to_owned(),
                )),
                Some(repo) => {
                    match crate::git::read_listed_blob(repo, &listing, file, options.max_file_size)
                    {
                        Ok(Ok(bytes)) => documents::load(&file.rel_path, &bytes, file.kind_hint),
                        Ok(Err(reason)) => Loaded::Skipped(reason),
                        Err(e) => {
                            let mut first = missing.lock().unwrap_or_else(|e| e.into_inner());
                            if first.as_ref().is_none_or(|(path, _)| file.rel_path < *path) {
                                *first = Some((Arc::clone(&file.rel_path), e));
                            }
                            Loaded::Skipped(SkipReason::Unreadable("missing blob".to_owned()))
                        }
                    }
                }
            };
            (loaded, Some(file.oid), same.is_some())
        },
    )?;
    if let Some((_, e)) = missing.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let blobs = listing
        .files
        .iter()
        .map(|f| (Arc::clone(&f.rel_path), (f.oid, f.kind_hint)))
        .collect();
    let unchanged = loaded.iter().filter(|(_, _, same)| *same).count();
    let paths = listing.files.iter().map(|f| &f.rel_path);
    let loaded = loaded.into_iter().map(|(l, oid, _)| (l, oid)).collect();
    let mut workspace = assemble(target, paths, loaded, listing.skipped, listing.ignored);
    workspace.cuts.extend(listing.cut);
    Ok(IndexedSide {
        workspace,
        blobs,
        unchanged,
    })
}

/// The files of the scanned folder at `commit` (`rev`, as the user named it), as git's tree
/// lists them.
fn list_revision(
    target: &Target,
    git: &GitRepo,
    commit: Oid,
    rev: &str,
    config: &Config,
) -> anyhow::Result<TreeListing> {
    let only = target
        .only
        .as_deref()
        .map(|o| walk::relative(&target.root, o));
    git.list(commit, rev, config, only.as_deref())
}

/// Loads `items` on the worker pool, reporting progress; `init` makes per-thread state (a
/// git repository handle, which cannot be shared between threads).
fn load_parallel<T: Sync, S, R: Send>(
    items: &[T],
    jobs: Option<usize>,
    progress: &(dyn Fn(Progress) + Sync),
    init: impl Fn() -> S + Sync + Send,
    load: impl Fn(&mut S, &T) -> R + Sync + Send,
) -> anyhow::Result<Vec<R>> {
    let total = items.len();
    let done = AtomicUsize::new(0);
    with_pool(jobs, || {
        items
            .par_iter()
            .map_init(&init, |state, item| {
                let loaded = load(state, item);
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                progress(Progress { done: n, total });
                loaded
            })
            .collect()
    })
}

/// Sorts loaded files into a workspace: parsed files, and the ones skipped with a reason
/// (with those the listing already passed over).
fn assemble<'a>(
    target: &Target,
    paths: impl Iterator<Item = &'a Arc<str>>,
    loaded: Vec<(Loaded, Option<Oid>)>,
    skipped: Vec<Skipped>,
    ignored: usize,
) -> Workspace {
    let mut workspace = Workspace {
        root: target.root.clone(),
        files: Vec::with_capacity(loaded.len()),
        skipped,
        ignored,
        rendered: 0,
        cuts: Vec::new(),
    };
    for (rel_path, (loaded, _)) in paths.zip(loaded) {
        match loaded {
            Loaded::File(file) => workspace.files.push(file),
            Loaded::Skipped(reason) => workspace.skipped.push(Skipped {
                rel_path: Arc::clone(rel_path),
                reason,
            }),
        }
    }
    workspace
        .skipped
        .sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    workspace
}

/// Reads and parses one working-tree file; with `blob_id`, also returns the id git would
/// give its bytes.
fn read_and_load(candidate: &Candidate, cap: u64, blob_id: bool) -> (Loaded, Option<Oid>) {
    if let Some(size) = candidate.size.filter(|size| *size > cap) {
        return (Loaded::Skipped(SkipReason::TooLarge { size, cap }), None);
    }
    // The file may have changed since the walk: a FIFO or a symlink swapped in must not be
    // followed or block the scan.
    match crate::files::read_listed_file(&candidate.read_path, cap) {
        Err(e) => (Loaded::Skipped(e.into()), None),
        Ok(bytes) => {
            let oid = if blob_id {
                crate::git::blob_id(&bytes)
            } else {
                None
            };
            let loaded = documents::load(&candidate.rel_path, &bytes, candidate.kind_hint);
            (loaded, oid)
        }
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
    with_pool(options.jobs, || {
        scan_in_pool(target, config, policies, options, progress)
    })?
}

fn scan_in_pool(
    target: &Target,
    config: &Config,
    policies: &Policies,
    options: &ScanOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> anyhow::Result<ScanReport> {
    let started = Instant::now();
    let mut workspace = index(target, config, options, progress)?;
    let (topology, renders, prepared) =
        build_and_prepare(&mut workspace, target, config, options, policies)?;
    let judged = judge(&workspace, &topology, config, policies, prepared)?;
    let mut summary = summarise(&workspace, &topology, started.elapsed());
    drop_in_background(workspace);
    summary.alone = target.alone();
    summary.helm = renders.helm().map(ToString::to_string);
    summary.renders = renders.runs;
    summary.cached_renders = renders.cached;
    summary.render_time = renders.time;
    summary.cuts.extend(renders.cuts.iter().cloned());
    summary.cuts.extend(judged.cuts);
    crate::budget::settle(&mut summary.cuts);
    summary.policy_prints = judged.prints;
    Ok(ScanReport {
        findings: judged.findings,
        summary,
        topology,
        comparison: None,
        changes: None,
    })
}

/// What judging one side yields: its findings in report order, the budgets the Rego policies
/// hit, and what the policies printed (shown escaped, never as raw output).
#[derive(Debug, Clone, Default)]
struct Judged {
    findings: Vec<Finding>,
    cuts: Vec<BudgetCut>,
    prints: Vec<String>,
}

/// The rules and suppressions over a workspace and its topology.
/// `prepared`: the Rego values of the documents, when they were made ahead.
fn judge(
    workspace: &Workspace,
    topology: &Topology,
    config: &Config,
    policies: &Policies,
    prepared: Option<rules::rego::Prepared>,
) -> anyhow::Result<Judged> {
    let ctx = RuleContext::new(&workspace.files, topology, policies, config);
    judge_in(&ctx, policies, prepared)
}

/// [`judge`] with a context made beforehand.
fn judge_in(
    ctx: &RuleContext<'_>,
    policies: &Policies,
    prepared: Option<rules::rego::Prepared>,
) -> anyhow::Result<Judged> {
    let mut judged = Judged::default();
    let mut findings = match policies.rego() {
        // On this thread: on rayon's workers the rules' working sets would grow those
        // threads' heaps at the scan's peak (docs/decisions.md, "Performance").
        None => rules::run_all(ctx),
        Some(rego) => {
            // The Rego policies' single repository-level evaluation is long and serial: the
            // built-in rules fill the other cores meanwhile.
            let (mut findings, evaluated) = rayon::join(
                || rules::run_all(ctx),
                || rules::rego::run(ctx, rego, prepared),
            );
            let evaluated = evaluated?;
            findings.extend(evaluated.findings);
            judged.cuts = evaluated.cuts;
            judged.prints = evaluated.prints;
            findings
        }
    };
    crate::suppressions::apply(ctx.files, policies, &mut findings);
    findings::sort(&mut findings);
    judged.findings = findings;
    Ok(judged)
}

/// [`build_rendering`], and with Rego policies and nothing to render, the policies' values of
/// the documents made meanwhile: the topology's worklist runs on one core and leaves the
/// others idle (issue 16: this was a third of what the policies cost).
fn build_and_prepare(
    workspace: &mut Workspace,
    target: &Target,
    config: &Config,
    options: &ScanOptions,
    policies: &Policies,
) -> anyhow::Result<(Topology, helm::Renders, Option<rules::rego::Prepared>)> {
    let availability =
        helm::locate(&options.helm, config, &target.root).map_err(anyhow::Error::msg)?;
    let first = workspace.files.len() - workspace.rendered.min(workspace.files.len());
    let renders = helm::Renders::new(availability.clone(), first);
    if policies.rego().is_none() || renders.helm().is_some() {
        let (topology, renders) =
            render_side(workspace, target, config, options, availability, None, None)?;
        return Ok((topology, renders, None));
    }
    let (topology, prepared) = rayon::join(
        || topology::build_with(&workspace.files, &workspace.skipped, config, &renders),
        || rules::rego::prepare(&workspace.files),
    );
    Ok((topology, renders, Some(prepared)))
}

/// The topology, with local Helm charts rendered by the user's helm: build, render what the
/// build asked for (appending the output to the workspace), build again, until nothing new is
/// asked for (rendered Applications can install more charts).
pub fn build_rendering(
    workspace: &mut Workspace,
    target: &Target,
    config: &Config,
    options: &ScanOptions,
) -> anyhow::Result<(Topology, helm::Renders)> {
    let availability =
        helm::locate(&options.helm, config, &target.root).map_err(anyhow::Error::msg)?;
    render_side(workspace, target, config, options, availability, None, None)
}

/// [`build_rendering`] for one side of a diff-aware scan: charts of a side read from git
/// objects (`revision`) are copied out to render; `donor` is the other side's renders and files.
fn render_side(
    workspace: &mut Workspace,
    target: &Target,
    config: &Config,
    options: &ScanOptions,
    availability: helm::Availability,
    revision: Option<&crate::git::RevisionFiles>,
    donor: Option<(&helm::Renders, &[SourceFile])>,
) -> anyhow::Result<(Topology, helm::Renders)> {
    let first = workspace.files.len() - workspace.rendered.min(workspace.files.len());
    let store = match (&availability, &options.cache) {
        (helm::Availability::Ready(_), Some(dir)) => {
            match helm::RenderStore::open(dir, &target.root) {
                Ok(store) => Some(store),
                Err(e) if options.cache_chosen => return Err(anyhow::Error::msg(e)),
                Err(_) => None,
            }
        }
        _ => None,
    };
    let mut renders = helm::Renders::new(availability, first).with_store(store);
    if let Some((other, files)) = donor {
        renders.adopt(other, files);
    }
    let mut round = 0;
    loop {
        let topology = topology::build_with(&workspace.files, &workspace.skipped, config, &renders);
        round += 1;
        if renders.helm().is_none() || round > helm::MAX_ROUNDS {
            renders.trim_store();
            return Ok((topology, renders));
        }
        let files = &mut workspace.files;
        let requests = &topology.render_requests;
        let resolved = with_pool(options.jobs, || match revision {
            None => renders.render_missing(&target.root, requests, files),
            Some(tree) => renders.render_missing_staged(&|p, d| tree.export(p, d), requests, files),
        })?;
        workspace.rendered = workspace.files.len() - first;
        if resolved == 0 {
            renders.trim_store();
            return Ok((topology, renders));
        }
    }
}

/// Indexes the repository and resolves its topology, without running rules.
pub fn topology(
    target: &Target,
    config: &Config,
    options: &ScanOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> anyhow::Result<Topology> {
    with_pool(options.jobs, || {
        let mut workspace = index(target, config, options, progress)?;
        Ok(build_rendering(&mut workspace, target, config, options)?.0)
    })?
}

/// [`topology`], with the files it was built from (the repository's and Helm's output):
/// what [`Topology::document`] needs to give each placed object as the cluster receives it.
pub fn resolve(
    target: &Target,
    config: &Config,
    options: &ScanOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> anyhow::Result<(Workspace, Topology)> {
    with_pool(options.jobs, || {
        let mut workspace = index(target, config, options, progress)?;
        let topology = build_rendering(&mut workspace, target, config, options)?.0;
        Ok((workspace, topology))
    })?
}

/// [`resolve`] for a revision read from git objects (`rev`, given as the option `flag`, for
/// messages): charts of that revision are rendered from it.
pub fn resolve_revision(
    target: &Target,
    config: &Config,
    options: &ScanOptions,
    rev: &str,
    flag: &str,
    progress: &(dyn Fn(Progress) + Sync),
) -> anyhow::Result<(Workspace, Topology)> {
    with_pool(options.jobs, || {
        let git = GitRepo::open(&target.root)?;
        let commit = git.commit(rev, flag)?;
        let listing = list_revision(target, &git, commit, rev, config)?;
        let mut side = index_revision(target, &git, listing, options, None, progress)?;
        let availability =
            helm::locate(&options.helm, config, &target.root).map_err(anyhow::Error::msg)?;
        let tree = crate::git::RevisionFiles::new(
            GitRepo::open(&target.root)?,
            commit,
            options.max_file_size,
        );
        let (topology, _) = render_side(
            &mut side.workspace,
            target,
            config,
            options,
            availability,
            Some(&tree),
            None,
        )?;
        Ok((side.workspace, topology))
    })?
}

fn summarise(workspace: &Workspace, topology: &Topology, duration: Duration) -> Summary {
    let (placed, clusters_used) = topology.coverage();
    let mut by_kind = std::collections::BTreeMap::new();
    let files = workspace.repository_files();
    for f in files {
        *by_kind.entry(f.kind).or_insert(0) += 1;
    }
    let documents = || files.iter().flat_map(|f| f.documents.iter());
    Summary {
        files: files.len(),
        documents: documents().count(),
        // Rendered objects count too: coverage is over what the deployers deliver.
        // kustomize's local-config objects are never deployed: no object of a cluster.
        manifests: documents()
            .filter(|d| d.is_manifest() && !crate::topology::index::is_local_config(d))
            .count()
            + topology.rendered_objects(),
        files_by_kind: by_kind.into_iter().collect(),
        skipped: workspace.skipped.clone(),
        ignored: workspace.ignored,
        placed,
        clusters_used,
        coverage: topology.object_coverage.clone(),
        alone: None,
        duration,
        helm: None,
        renders: 0,
        cached_renders: 0,
        render_time: Duration::ZERO,
        cuts: topology
            .cuts
            .iter()
            .chain(&workspace.cuts)
            .cloned()
            .collect(),
        policy_prints: Vec::new(),
    }
}

/// A diff-aware scan: scans the head (the working tree, or `revisions.head` read from git
/// objects) and the base, and marks each head finding `new` or `existing`; base findings that
/// are gone come back as `fixed`. Both sides are whole scans, so a change to a shared base, a
/// cluster definition or a generator re-evaluates every placement it affects; files whose blob
/// is the same on both sides are parsed once.
pub fn diff_scan(
    target: &Target,
    config: &Config,
    policies: &Policies,
    options: &ScanOptions,
    revisions: &Revisions,
    progress: &(dyn Fn(Progress) + Sync),
) -> anyhow::Result<ScanReport> {
    with_pool(options.jobs, || {
        diff_scan_in_pool(target, config, policies, options, revisions, progress)
    })?
}

fn diff_scan_in_pool(
    target: &Target,
    config: &Config,
    policies: &Policies,
    options: &ScanOptions,
    revisions: &Revisions,
    progress: &(dyn Fn(Progress) + Sync),
) -> anyhow::Result<ScanReport> {
    let started = Instant::now();
    let git = GitRepo::open(&target.root)?;
    let base_commit = git.commit(&revisions.base, "--base")?;
    let head_commit = match &revisions.head {
        Some(head) => Some(git.commit(head, "--head")?),
        None => None,
    };
    let (mut head, base_listing) = match head_commit {
        // The base's listing needs nothing from the head: git's tree is read while the
        // working tree is walked and parsed.
        None => {
            let (head, listing) = rayon::join(
                || index_working_tree(target, config, options, true, progress),
                || {
                    let git = GitRepo::open(&target.root)?;
                    list_revision(target, &git, base_commit, &revisions.base, config)
                },
            );
            (head?, Some(listing?))
        }
        Some(commit) => {
            let rev = revisions.head.as_deref().unwrap_or_default();
            let listing = list_revision(target, &git, commit, rev, config)?;
            let head = index_revision(target, &git, listing, options, None, progress)?;
            (head, None)
        }
    };
    let availability =
        helm::locate(&options.helm, config, &target.root).map_err(anyhow::Error::msg)?;
    let cap = options.max_file_size;
    let head_tree = match head_commit {
        Some(commit) => Some(crate::git::RevisionFiles::new(
            GitRepo::open(&target.root)?,
            commit,
            cap,
        )),
        None => None,
    };
    // The base: read from git objects, reusing the head's parse of every unchanged blob.
    let base_index = |head: &IndexedSide, listed: Option<TreeListing>| {
        // A handle of this thread's own: a repository cannot be shared by threads.
        let git = GitRepo::open(&target.root)?;
        let listing = match listed {
            Some(listing) => listing,
            None => list_revision(target, &git, base_commit, &revisions.base, config)?,
        };
        index_revision(target, &git, listing, options, Some(head), progress)
    };
    // Then built and judged. `donor`: the head's renders, when there are any to reuse.
    let base_build = |head: &IndexedSide,
                      mut base: IndexedSide,
                      donor: Option<&helm::Renders>|
     -> anyhow::Result<BaseSide> {
        // Same files, same blobs, same configuration: the same findings (charts read files
        // that are not YAML, so a side that rendered is judged again).
        if same_blobs(head, &base) && donor.is_none_or(helm::Renders::is_empty) {
            return Ok((base, None, 0, None));
        }
        let tree = crate::git::RevisionFiles::new(GitRepo::open(&target.root)?, base_commit, cap);
        let donor = donor.map(|renders| (renders, head.workspace.files.as_slice()));
        let (base_topology, renders) = render_side(
            &mut base.workspace,
            target,
            config,
            options,
            availability.clone(),
            Some(&tree),
            donor,
        )?;
        let mut judged = judge(&base.workspace, &base_topology, config, policies, None)?;
        judged.cuts.extend(base_topology.cuts.iter().cloned());
        judged.cuts.extend(renders.cuts.iter().cloned());
        Ok((base, Some(judged), renders.runs, Some(base_topology)))
    };
    let (topology, head_renders, head_findings, base_side) =
        if matches!(availability, helm::Availability::Ready(_)) {
            // The head renders first, so that the base reuses its renders; the head's rules
            // then run while the base is read, built and judged.
            let (topology, head_renders) = render_side(
                &mut head.workspace,
                target,
                config,
                options,
                availability.clone(),
                head_tree.as_ref(),
                None,
            )?;
            let (head_findings, base_side) = rayon::join(
                || judge(&head.workspace, &topology, config, policies, None),
                || base_build(&head, base_index(&head, base_listing)?, Some(&head_renders)),
            );
            (topology, head_renders, head_findings, base_side)
        } else {
            // Nothing is rendered without helm, so the sides need nothing from each other
            // but the head's parsed files.
            let base = base_index(&head, base_listing)?;
            let renders = helm::Renders::new(availability.clone(), head.workspace.files.len());
            let build_head = || {
                let workspace = &head.workspace;
                topology::build_with(&workspace.files, &workspace.skipped, config, &renders)
            };
            let shares = !same_blobs(&head, &base)
                && topology::reuse::base_shares_topology(revision(&head), revision(&base));
            match shares.then(build_head) {
                Some(topology)
                    if topology::reuse::edits_read_alike(
                        &topology,
                        revision(&head),
                        revision(&base),
                    ) =>
                {
                    // What changed is nothing the topology reads, nor anything kustomize's
                    // edits copied: one topology, judged with each side's files.
                    let (head_ctx, base_ctx) = RuleContext::for_both_sides(
                        &head.workspace.files,
                        &base.workspace.files,
                        &topology,
                        policies,
                        config,
                    );
                    let (head_findings, base_findings) = rayon::join(
                        || judge_in(&head_ctx, policies, None),
                        || judge_in(&base_ctx, policies, None),
                    );
                    drop((head_ctx, base_ctx));
                    let base_side = base_findings.map(|found| (base, Some(found), 0, None));
                    (topology, renders, head_findings, base_side)
                }
                Some(topology) => {
                    // kustomize's edits copied a changed object (or values between objects)
                    // into the topology: the base builds its own.
                    let (head_findings, base_side) = rayon::join(
                        || judge(&head.workspace, &topology, config, policies, None),
                        || base_build(&head, base, None),
                    );
                    (topology, renders, head_findings, base_side)
                }
                None => {
                    // Both are built and judged at once.
                    let (head_side, base_side) = rayon::join(
                        || {
                            let topology = build_head();
                            let findings =
                                judge(&head.workspace, &topology, config, policies, None);
                            (topology, findings)
                        },
                        || base_build(&head, base, None),
                    );
                    let (topology, head_findings) = head_side;
                    (topology, renders, head_findings, base_side)
                }
            }
        };
    let head_judged = head_findings?;
    let (base, base_judged, base_renders, base_topology) = base_side?;
    // No judgement of its own: the base has the head's blobs, so no cluster receives anything
    // new. Otherwise the base has its own topology, or it shares the head's and only its files
    // differ.
    let changes = match &base_judged {
        None => topology::changes::Changes::default(),
        Some(_) => changes_between(&head, &base, &topology, base_topology.as_ref()),
    };
    let base_judged = base_judged.unwrap_or_else(|| head_judged.clone());
    let mut cuts = head_judged.cuts;
    cuts.extend(head_renders.cuts.iter().cloned());
    cuts.extend(base_judged.cuts);
    cuts.extend(base.workspace.cuts.iter().cloned());
    let head_findings = head_judged.findings;
    let base_findings = base_judged.findings;
    let prints = head_judged.prints;
    // Renames only matter when a base file is missing from the head.
    let head_paths: crate::topology::HashSet<&str> = head
        .workspace
        .files
        .iter()
        .map(|f| &*f.path)
        .chain(head.workspace.skipped.iter().map(|s| &*s.rel_path))
        .collect();
    // A side whose listing was cut has files the other seems to lack; git's rename search
    // would go through all of the trees the listing stopped in.
    let listing_cut = !head.workspace.cuts.is_empty() || !base.workspace.cuts.is_empty();
    let renames = if listing_cut || base.blobs.keys().all(|p| head_paths.contains(&**p)) {
        HashMap::new()
    } else {
        git.renames(base_commit, head_commit)?
    };
    let mut findings = compare(head_findings, base_findings, &renames);
    findings::sort(&mut findings);
    let count = |status| {
        findings
            .iter()
            .filter(|f| !f.suppressed && f.status == status)
            .count()
    };
    let comparison = Comparison {
        base: revisions.base.clone(),
        base_commit: base_commit.to_string(),
        head_commit: head_commit.map(|c| c.to_string()),
        new: count(Status::New),
        existing: count(Status::Existing),
        fixed: count(Status::Fixed),
        unchanged_files: base.unchanged,
    };
    let mut summary = summarise(&head.workspace, &topology, started.elapsed());
    // Freed once both sides are done: freeing meanwhile would slow the side still working.
    drop_in_background((head, base, base_topology));
    summary.alone = target.alone();
    summary.helm = head_renders.helm().map(ToString::to_string);
    summary.renders = head_renders.runs + base_renders;
    summary.cached_renders = head_renders.cached;
    summary.render_time = head_renders.time;
    summary.cuts.extend(cuts);
    crate::budget::settle(&mut summary.cuts);
    summary.policy_prints = prints;
    Ok(ScanReport {
        findings,
        summary,
        topology,
        comparison: Some(comparison),
        changes: Some(changes),
    })
}

/// The change per cluster from the base to the head: files whose blob differs (or that one
/// side lacks) are what changed; a base without a topology of its own is placed by the head's.
fn changes_between(
    head: &IndexedSide,
    base: &IndexedSide,
    head_topology: &Topology,
    base_topology: Option<&Topology>,
) -> topology::changes::Changes {
    let mut changed: std::collections::HashSet<&str> = head
        .blobs
        .iter()
        .filter(|(path, blob)| base.blobs.get(*path) != Some(*blob))
        .map(|(path, _)| &**path)
        .collect();
    changed.extend(
        base.blobs
            .keys()
            .filter(|path| !head.blobs.contains_key(*path))
            .map(|path| &**path),
    );
    topology::changes::compute(
        topology::changes::Side {
            topology: head_topology,
            files: &head.workspace.files,
        },
        topology::changes::Side {
            topology: base_topology.unwrap_or(head_topology),
            files: &base.workspace.files,
        },
        &changed,
    )
}

/// Whether the base has the head's files with the same blobs: every base file was taken
/// from the head (same path, blob and kind), and the head has no other.
fn same_blobs(head: &IndexedSide, base: &IndexedSide) -> bool {
    base.unchanged == base.blobs.len() && base.blobs.len() == head.blobs.len()
}

fn revision(side: &IndexedSide) -> topology::reuse::Revision<'_> {
    topology::reuse::Revision {
        files: side.workspace.repository_files(),
        skipped: &side.workspace.skipped,
    }
}

/// The configuration of the scanned folder at a revision: its `.envfence.yaml` there, or none.
/// Used for `--head REV`, whose configuration is the head's, not the working tree's.
pub fn config_at(target: &Target, rev: &str) -> anyhow::Result<Config> {
    let git = GitRepo::open(&target.root)?;
    let commit = git.commit(rev, "--head")?;
    match git.config_text(commit)? {
        None => Ok(Config::default()),
        Some(text) => {
            let shown = format!("{rev}:{}", crate::config::FILE_NAME);
            Ok(Config::parse(Path::new(&shown), &text)?)
        }
    }
}

/// The base side of a diff-aware scan: its index, its findings (`None` when they are the
/// head's: nothing differs) and how many charts it rendered.
/// The base's files, findings (none when they are the head's), renders, and topology (kept
/// to be freed once the head is done too).
/// The base side of a diff-aware scan: what was read, its judgement (`None`: the head's, for
/// the same blobs; its cuts include the base's build and renders), its render runs and its
/// topology.
type BaseSide = (IndexedSide, Option<Judged>, usize, Option<Topology>);

/// Marks head findings `existing` when the base had the same finding (same fingerprint once
/// the base's paths follow the renames), else `new`; unmatched base findings are `fixed`.
/// Fingerprints may repeat, so they are matched as a multiset.
fn compare(
    mut head: Vec<Finding>,
    base: Vec<Finding>,
    renames: &HashMap<Arc<str>, Arc<str>>,
) -> Vec<Finding> {
    let mut base: Vec<Finding> = base
        .into_iter()
        .map(|mut f| {
            f.follow_renames(renames);
            f
        })
        .collect();
    let mut unmatched_base: HashMap<&str, usize> = HashMap::new();
    for f in &base {
        *unmatched_base.entry(f.fingerprint.as_str()).or_default() += 1;
    }
    let mut matched_head: HashMap<String, usize> = HashMap::new();
    for f in &mut head {
        match unmatched_base.get_mut(f.fingerprint.as_str()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                f.status = Status::Existing;
                *matched_head.entry(f.fingerprint.clone()).or_default() += 1;
            }
            _ => f.status = Status::New,
        }
    }
    // A base finding stays unmatched (fixed) once the head's matches of its fingerprint run out.
    base.retain_mut(|f| match matched_head.get_mut(&f.fingerprint) {
        Some(n) if *n > 0 => {
            *n -= 1;
            false
        }
        // A finding that was suppressed in the base was never reported, so it cannot be fixed.
        _ => !f.suppressed,
    });
    for f in &mut base {
        f.status = Status::Fixed;
    }
    head.extend(base);
    head
}

#[cfg(all(test, unix))]
mod read_tests {
    use super::*;

    /// A file the walk saw as a regular file, swapped for a FIFO before it is read.
    #[test]
    fn a_file_swapped_for_a_fifo_does_not_block() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("swapped.yaml");
        let made = std::process::Command::new("mkfifo").arg(&path).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let candidate = Candidate {
            rel_path: Arc::from("swapped.yaml"),
            read_path: path,
            size: None,
            kind_hint: None,
        };
        // On a thread, so that a regression fails the test instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(read_and_load(&candidate, DEFAULT_MAX_FILE_SIZE, false).0);
        });
        let loaded = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("reading a FIFO must not block");
        assert!(
            matches!(loaded, Loaded::Skipped(SkipReason::NotRegularFile)),
            "{loaded:?}"
        );
    }
}
