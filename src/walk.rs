//! Finding the files to read: a depth-first walk that skips `.git`, honours `.gitignore`
//! files and the config's `ignore` globs, and never follows a symlink out of the repository.
//!
//! Folders are listed on all cores (at 5,000 applications a sequential walk was a fifth of
//! the scan); reading and parsing runs in parallel in `scan`.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;
use std::sync::Mutex;

use crate::budget::{Budget, BudgetCut};
use crate::config::Config;
use crate::documents::{FileKind, SkipReason};
use crate::files::ReadError;

/// A file to read: its repository-relative path, the real path to open (symlinks resolved
/// and checked), its size, and the kind its path implies.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub rel_path: Arc<str>,
    pub read_path: PathBuf,
    /// The size the walk saw, when it looked (it does for a symlink's target; a plain file is
    /// measured when it is opened).
    pub size: Option<u64>,
    pub kind_hint: Option<FileKind>,
}

/// A path that was passed over, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub rel_path: Arc<str>,
    pub reason: SkipReason,
}

#[derive(Debug, Default)]
pub struct WalkResult {
    pub candidates: Vec<Candidate>,
    pub skipped: Vec<Skipped>,
    /// Files excluded by `.gitignore` or the config's `ignore` globs.
    pub ignored: usize,
    /// Set when the walk hit a [`Limit`]: what it listed before is kept.
    pub cut: Option<BudgetCut>,
}

/// Files (and symlinks, and submodules) one listing of the scanned folder keeps: the working
/// tree's, or a git revision's. A revision stores a folder shared by many parents once, so a
/// `.git` of a few hundred KiB can list millions of files; real monorepos list far fewer.
pub const MAX_LISTED_FILES: usize = 200_000;
/// Bytes of the paths one listing keeps, together (a deep tree makes every path long).
pub const MAX_LISTED_PATH_BYTES: usize = 64 << 20;
/// Entries of any name (files, folders, links) one listing looks at.
pub const MAX_VISITED_ENTRIES: usize = 1_000_000;
/// Folders (git: tree objects) one listing reads.
pub const MAX_VISITED_FOLDERS: usize = 100_000;

/// A listing limit that was hit; shown as the cut's cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Files kept ([`MAX_LISTED_FILES`], or the testing knob's value).
    Files(usize),
    /// Bytes of the paths kept ([`MAX_LISTED_PATH_BYTES`]).
    PathBytes(usize),
    /// Entries looked at ([`MAX_VISITED_ENTRIES`]).
    Entries(usize),
    /// Folders read ([`MAX_VISITED_FOLDERS`]).
    Folders(usize),
    /// Bytes of git tree objects read (`crate::git::MAX_TREE_BYTES`, or a chart export's).
    TreeBytes(u64),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Limit::Files(n) => write!(f, "{} files", grouped(n as u64)),
            Limit::PathBytes(n) => write!(f, "{} MiB of paths", n >> 20),
            Limit::Entries(n) => write!(f, "{} entries", grouped(n as u64)),
            Limit::Folders(n) => write!(f, "{} folders", grouped(n as u64)),
            Limit::TreeBytes(n) => write!(f, "{} MiB of tree objects", n >> 20),
        }
    }
}

/// `1000000` → `1,000,000`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// [`MAX_LISTED_FILES`], or less for the tests: `ENVFENCE_TEST_MAX_LISTED_FILES`, a testing
/// knob that can only lower the limit (so that a test reaches it with a small repository).
fn max_listed_files() -> usize {
    static LIMIT: OnceLock<usize> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::env::var("ENVFENCE_TEST_MAX_LISTED_FILES")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .map_or(MAX_LISTED_FILES, |n| n.min(MAX_LISTED_FILES))
    })
}

/// One listing counted against the listing limits, as it goes: the walk's folder tasks share
/// it, the git tree reader uses it alone. Counting stops at the first limit hit, which the
/// listing then records as a [`BudgetCut`].
#[derive(Debug, Default)]
pub struct Tally {
    files: AtomicUsize,
    path_bytes: AtomicUsize,
    entries: AtomicUsize,
    folders: AtomicUsize,
    hit: OnceLock<Limit>,
}

impl Tally {
    /// Whether a limit was hit: nothing more is listed.
    pub fn stopped(&self) -> bool {
        self.hit.get().is_some()
    }

    /// Records that `limit` was hit (the first one hit is the one shown).
    pub fn stop(&self, limit: Limit) {
        let _first = self.hit.set(limit);
    }

    /// Counts a folder about to be read; false when it may not be.
    pub fn folder(&self) -> bool {
        if self.folders.fetch_add(1, Ordering::Relaxed) >= MAX_VISITED_FOLDERS {
            self.stop(Limit::Folders(MAX_VISITED_FOLDERS));
        }
        !self.stopped()
    }

    /// Counts `n` entries about to be looked at (or steps of a path looked up); returns how
    /// many of them may be. A listing cut by another limit may still look entries up.
    pub fn entries(&self, n: usize) -> usize {
        let before = self.entries.fetch_add(n, Ordering::Relaxed);
        let allowed = MAX_VISITED_ENTRIES.saturating_sub(before).min(n);
        if allowed < n {
            self.stop(Limit::Entries(MAX_VISITED_ENTRIES));
        }
        allowed
    }

    /// Counts a path about to be kept; false when it may not be.
    pub fn keep(&self, path: &str) -> bool {
        let limit = max_listed_files();
        if self.files.fetch_add(1, Ordering::Relaxed) >= limit {
            self.stop(Limit::Files(limit));
        } else if self.path_bytes.fetch_add(path.len(), Ordering::Relaxed) + path.len()
            > MAX_LISTED_PATH_BYTES
        {
            self.stop(Limit::PathBytes(MAX_LISTED_PATH_BYTES));
        }
        !self.stopped()
    }

    /// The cut to record when a limit was hit: `budget`, and what `listing` names ("the
    /// working tree", "revision main (1a2b3c4d5e6f)").
    pub fn cut(&self, budget: Budget, listing: &str) -> Option<BudgetCut> {
        let limit = self.hit.get()?;
        Some(BudgetCut::new(
            budget,
            None,
            format!(
                "{listing} has more than {limit} to list; the files listed before that are \
                 scanned, the rest are not"
            ),
        ))
    }
}

/// True for the names envfence reads: `*.yaml`, `*.yml` and kustomize's `Kustomization`.
pub fn is_yaml_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".yaml")
        || lower.ends_with(".yml")
        || name == "Kustomization"
        // helmfile's templated YAML (`helmfile.yaml.gotmpl`, `values.yaml.gotmpl`).
        || lower.ends_with(".gotmpl")
}

/// Walks `root` (which must be canonical). With `only`, the result holds just that file.
pub fn walk(root: &Path, config: &Config, only: Option<&Path>) -> WalkResult {
    let walker = ParallelWalk {
        root,
        config,
        only,
        in_work_tree: root.ancestors().any(|dir| dir.join(".git").exists()),
        found: Mutex::new(Found::default()),
        tally: Tally::default(),
    };
    rayon::scope(|scope| walker.visit(scope, root.to_path_buf(), Vec::new()));
    let found = walker
        .found
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);

    let mut result = WalkResult {
        candidates: Vec::with_capacity(found.files.len()),
        skipped: found.skipped,
        ignored: found.ignored,
        cut: walker
            .tally
            .cut(Budget::WorkingTreeFiles, "the working tree"),
    };
    for outcome in found.files {
        match outcome {
            Ok(candidate) => result.candidates.push(candidate),
            Err(skipped) => result.skipped.push(skipped),
        }
    }
    for (rel, path) in found.symlinks {
        resolve_symlink(root, rel, &path, &mut result);
    }
    assign_kind_hints(&mut result.candidates);
    // Folders are visited in whatever order the threads take them: sorting makes the result
    // the same on every run. On all cores (130,000 paths at 10,000 apps took 40 ms on one),
    // and total: a path read twice (it cannot be) would still sort one way.
    rayon::slice::ParallelSliceMut::par_sort_unstable_by(&mut result.candidates[..], |a, b| {
        a.rel_path
            .cmp(&b.rel_path)
            .then_with(|| a.read_path.cmp(&b.read_path))
    });
    result.skipped.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    result
}

/// A depth-first walk whose folders are listed on all cores: each folder is one task that
/// spawns a task per subfolder (tasks, not recursion, so deep trees cannot exhaust a stack).
struct ParallelWalk<'a> {
    root: &'a Path,
    config: &'a Config,
    only: Option<&'a Path>,
    in_work_tree: bool,
    found: Mutex<Found>,
    /// Counts the listing against its limits; once one is hit, tasks list nothing more (which
    /// files were listed by then depends on how the threads ran).
    tally: Tally,
}

/// What the folder tasks found, merged as each task ends.
#[derive(Default)]
struct Found {
    /// Regular files (or why one could not be read), symlinks left to resolve.
    files: Vec<Result<Candidate, Skipped>>,
    symlinks: Vec<(Arc<str>, PathBuf)>,
    skipped: Vec<Skipped>,
    ignored: usize,
}

impl<'a> ParallelWalk<'a> {
    /// Lists `dir`, whose parents' `.gitignore` files are `ignores`.
    ///
    /// Whether the folder is another checkout, and whether it has a `.gitignore`, is read from
    /// its own listing: a system call per folder for each would cost more than the listing.
    fn visit<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        dir: PathBuf,
        mut ignores: Vec<Arc<Gitignore>>,
    ) {
        if !self.tally.folder() {
            return;
        }
        let mut found = Found::default();
        let listed = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                found.skipped.push(Skipped {
                    rel_path: relative(self.root, &dir),
                    reason: SkipReason::Unreadable(io_cause(&e)),
                });
                self.merge(found);
                return;
            }
        };
        // Names, not paths: a path is built only for what is kept (a folder, a YAML file).
        let mut entries = Vec::new();
        for entry in listed {
            match entry.and_then(|e| Ok((e.file_name(), e.file_type()?))) {
                Ok(entry) => entries.push(entry),
                Err(e) => found.skipped.push(Skipped {
                    rel_path: relative(self.root, &dir),
                    reason: SkipReason::Unreadable(io_cause(&e)),
                }),
            }
        }
        let named = |wanted: &str| entries.iter().find(|(name, _)| name == wanted);
        if dir != self.root {
            if let Some((_, git)) = named(".git") {
                if is_nested_checkout(*git, self.in_work_tree) {
                    self.merge(Found {
                        skipped: vec![Skipped {
                            rel_path: relative(self.root, &dir),
                            reason: SkipReason::Submodule,
                        }],
                        ..Found::default()
                    });
                    return;
                }
            }
        }
        if named(".gitignore").is_some() {
            ignores.extend(load_gitignore(&dir).map(Arc::new));
        }
        let allowed = self.tally.entries(entries.len());
        for (name, file_type) in entries.into_iter().take(allowed) {
            let is_dir = file_type.is_dir();
            if is_dir && name == ".git" {
                continue;
            }
            let path = child_path(&dir, &name);
            let name = name.to_string_lossy();
            if is_gitignored(&ignores, &path, is_dir) {
                if !is_dir {
                    found.ignored += 1;
                }
                continue;
            }
            if is_dir {
                let inner = ignores.clone();
                scope.spawn(move |scope| self.visit(scope, path, inner));
                continue;
            }
            let is_symlink = file_type.is_symlink();
            if !is_symlink && !is_yaml_name(&name) {
                continue;
            }
            let rel = relative(self.root, &path);
            if self.config.is_ignored(&rel) {
                found.ignored += 1;
                continue;
            }
            if self.only.is_some_and(|o| o != path) {
                continue;
            }
            if !self.tally.keep(&rel) {
                break;
            }
            if is_symlink {
                found.symlinks.push((rel, path));
            } else {
                found.files.push(candidate(rel, path, file_type));
            }
        }
        self.merge(found);
    }

    fn merge(&self, mut part: Found) {
        let mut found = self
            .found
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        found.files.append(&mut part.files);
        found.symlinks.append(&mut part.symlinks);
        found.skipped.append(&mut part.skipped);
        found.ignored += part.ignored;
    }
}

/// A listed file as a candidate to read: only a regular file is one. The listing says which
/// it is, without a system call; its size is read when it is opened
/// ([`crate::files::read_listed_file`]).
fn candidate(
    rel: Arc<str>,
    path: PathBuf,
    file_type: std::fs::FileType,
) -> Result<Candidate, Skipped> {
    if !file_type.is_file() {
        return Err(Skipped {
            rel_path: rel,
            reason: SkipReason::NotRegularFile,
        });
    }
    Ok(Candidate {
        rel_path: rel,
        read_path: path,
        size: None,
        kind_hint: None,
    })
}

/// A folder that is another git checkout: a submodule (its `.git` is a file that points into
/// the superproject's `.git/modules`), a linked worktree, or, inside a work tree, a nested
/// repository. Its files are not this repository's: git's trees hold a submodule as one
/// commit id, so a diff-aware scan could not compare them, and neither side enters it.
/// A folder of repositories that is no repository itself is walked into as usual.
///
/// `git` is the type of the folder's `.git` entry, as listed (a symlink is neither).
fn is_nested_checkout(git: std::fs::FileType, in_work_tree: bool) -> bool {
    git.is_file() || (git.is_dir() && in_work_tree)
}

/// Decides what a symlink is and whether it may be read. A link is only ever read through its
/// resolved target, and only when that target is inside the repository.
fn resolve_symlink(root: &Path, rel: Arc<str>, path: &Path, result: &mut WalkResult) {
    let name = path.file_name().unwrap_or_default();
    let yaml_name = is_yaml_name(&name.to_string_lossy());
    let skip = |result: &mut WalkResult, reason| {
        result.skipped.push(Skipped {
            rel_path: Arc::clone(&rel),
            reason,
        })
    };
    let target = match std::fs::canonicalize(path) {
        Ok(t) => t,
        Err(_) => {
            if yaml_name {
                skip(result, SkipReason::BrokenSymlink);
            }
            return;
        }
    };
    let inside = target.starts_with(root);
    if inside && crate::files::in_git_folder(root, &target) {
        if yaml_name {
            skip(result, SkipReason::SymlinkIntoGit);
        }
        return;
    }
    let meta = match std::fs::metadata(&target) {
        Ok(m) => m,
        Err(e) => {
            if yaml_name {
                skip(result, SkipReason::Unreadable(io_cause(&e)));
            }
            return;
        }
    };
    if meta.is_dir() {
        skip(
            result,
            if inside {
                SkipReason::SymlinkedDirectory
            } else {
                SkipReason::SymlinkOutsideRepo
            },
        );
    } else if yaml_name {
        if !inside {
            skip(result, SkipReason::SymlinkOutsideRepo);
        } else if !meta.is_file() {
            skip(result, SkipReason::NotRegularFile);
        } else {
            result.candidates.push(Candidate {
                rel_path: rel.clone(),
                read_path: target,
                size: Some(meta.len()),
                kind_hint: None,
            });
        }
    }
}

/// Marks files of Helm charts: templates are skipped later, other YAML in a chart is values.
fn assign_kind_hints(candidates: &mut [Candidate]) {
    let hints = kind_hints(&candidates.iter().map(|c| &*c.rel_path).collect::<Vec<_>>());
    for (c, hint) in candidates.iter_mut().zip(hints) {
        c.kind_hint = hint;
    }
}

/// The kind each path implies, given all the paths read (a `Chart.yaml` among them makes its
/// folder a Helm chart). Shared by the working-tree walk and the git tree reader.
pub fn kind_hints(paths: &[&str]) -> Vec<Option<FileKind>> {
    let chart_dirs: HashSet<&str> = paths
        .iter()
        .filter_map(|p| p.strip_suffix("Chart.yaml"))
        .filter(|dir| dir.is_empty() || dir.ends_with('/'))
        .map(|dir| dir.trim_end_matches('/'))
        .collect();
    paths
        .iter()
        .map(|p| {
            let (in_chart, templates) = chart_position(p, &chart_dirs);
            FileKind::from_path(p, in_chart, templates)
        })
        .collect()
}

/// (inside a chart but not in its `templates/` or `crds/`, inside its `templates/`).
fn chart_position(rel_path: &str, chart_dirs: &HashSet<&str>) -> (bool, bool) {
    if chart_dirs.is_empty() {
        return (false, false);
    }
    // Look at the nearest enclosing chart: walk parent directories upwards.
    let mut dir = rel_path;
    while let Some(slash) = dir.rfind('/') {
        dir = &dir[..slash];
        if chart_dirs.contains(dir) {
            let inner = &rel_path[dir.len() + 1..];
            let first = inner.split('/').next().unwrap_or("");
            return match first {
                "templates" if inner.contains('/') => (false, true),
                "crds" if inner.contains('/') => (false, false),
                _ => (true, false),
            };
        }
    }
    if chart_dirs.contains("") {
        let first = rel_path.split('/').next().unwrap_or("");
        return match first {
            "templates" if rel_path.contains('/') => (false, true),
            "crds" if rel_path.contains('/') => (false, false),
            _ => (true, false),
        };
    }
    (false, false)
}

fn load_gitignore(dir: &Path) -> Option<Gitignore> {
    let file = dir.join(".gitignore");
    if !file.is_file() {
        return None;
    }
    let mut builder = GitignoreBuilder::new(dir);
    // A malformed line is skipped, as git does; the rest of the file still applies.
    let _partial_error = builder.add(&file);
    builder.build().ok()
}

fn is_gitignored(stack: &[Arc<Gitignore>], path: &Path, is_dir: bool) -> bool {
    for gi in stack.iter().rev() {
        match gi.matched(path, is_dir) {
            Match::Ignore(_) => return true,
            Match::Whitelist(_) => return false,
            Match::None => {}
        }
    }
    false
}

impl From<ReadError> for SkipReason {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::NotRegularFile => SkipReason::NotRegularFile,
            ReadError::TooLarge { size, cap } => SkipReason::TooLarge { size, cap },
            ReadError::Io(e) => SkipReason::Unreadable(e.to_string()),
        }
    }
}

/// `dir/name`, allocated once at its final size (`Path::join` copies, then grows).
fn child_path(dir: &Path, name: &std::ffi::OsStr) -> PathBuf {
    let mut path = PathBuf::with_capacity(dir.as_os_str().len() + 1 + name.len());
    path.push(dir);
    path.push(name);
    path
}

/// The repository-relative path with `/` separators.
pub fn relative(root: &Path, path: &Path) -> Arc<str> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    // Most paths are already plain `a/b/c.yaml`: one copy, not a string per component.
    if std::path::MAIN_SEPARATOR == '/' {
        if let Some(plain) = rel
            .to_str()
            .filter(|s| s.split('/').all(|part| !part.is_empty() && part != "."))
        {
            return Arc::from(plain);
        }
    }
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.is_empty() {
        Arc::from(".")
    } else {
        Arc::from(parts.join("/"))
    }
}

fn io_cause(e: &dyn std::fmt::Display) -> String {
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_positions() {
        let dirs: HashSet<&str> = ["charts/web", "charts/web/charts/db"].into_iter().collect();
        assert_eq!(
            chart_position("charts/web/templates/d.yaml", &dirs),
            (false, true)
        );
        assert_eq!(
            chart_position("charts/web/values-eu.yaml", &dirs),
            (true, false)
        );
        assert_eq!(
            chart_position("charts/web/crds/crd.yaml", &dirs),
            (false, false)
        );
        assert_eq!(
            chart_position("charts/web/charts/db/templates/s.yaml", &dirs),
            (false, true)
        );
        assert_eq!(chart_position("apps/x.yaml", &dirs), (false, false));
        let root: HashSet<&str> = [""].into_iter().collect();
        assert_eq!(chart_position("templates/a.yaml", &root), (false, true));
    }

    #[test]
    fn relative_paths_are_joined_with_slashes_whatever_their_spelling() {
        let root = Path::new("/repo");
        let rel = |p: &str| relative(root, Path::new(p)).to_string();
        assert_eq!(rel("/repo/apps/web/deploy.yaml"), "apps/web/deploy.yaml");
        assert_eq!(rel("/repo"), ".");
        // Spellings the plain copy must not keep: empty and `.` parts.
        assert_eq!(rel("/repo/apps//web/./deploy.yaml"), "apps/web/deploy.yaml");
        assert_eq!(rel("/repo/apps/web/"), "apps/web");
        assert_eq!(
            relative(Path::new(""), Path::new("apps/x.yaml")).as_ref(),
            "apps/x.yaml"
        );
    }

    #[test]
    fn yaml_names() {
        assert!(is_yaml_name("a.yaml") && is_yaml_name("B.YML") && is_yaml_name("Kustomization"));
        assert!(!is_yaml_name("a.json") && !is_yaml_name("kustomization"));
    }

    /// The folder tasks: a tree deeper than any stack would allow for recursion, `.gitignore`
    /// files that apply to their own folder and below only, `.git` never entered, and the same
    /// sorted result on every run.
    #[test]
    fn deep_trees_and_nested_gitignores() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = tmp.path().canonicalize().expect("canonical");
        let mut deep = root.join("deep");
        for _ in 0..400 {
            deep.push("d");
        }
        std::fs::create_dir_all(&deep).expect("deep folders");
        std::fs::write(deep.join("bottom.yaml"), "a: 1\n").expect("write");
        for dir in ["a/b", "c", ".git/objects"] {
            std::fs::create_dir_all(root.join(dir)).expect("folders");
        }
        std::fs::write(root.join("a/.gitignore"), "skip.yaml\n").expect("write");
        for file in [
            "a/skip.yaml",
            "a/b/skip.yaml",
            "a/keep.yaml",
            "c/skip.yaml",
            ".git/x.yaml",
        ] {
            std::fs::write(root.join(file), "a: 1\n").expect("write");
        }
        let config = Config::default();
        let first = walk(&root, &config, None);
        let paths: Vec<&str> = first.candidates.iter().map(|c| &*c.rel_path).collect();
        assert_eq!(paths.len(), 3, "{paths:?}");
        assert_eq!(&paths[..2], ["a/keep.yaml", "c/skip.yaml"]);
        assert!(paths[2].starts_with("deep/d/d/") && paths[2].ends_with("/d/bottom.yaml"));
        assert_eq!(first.ignored, 2);
        for _ in 0..5 {
            let again = walk(&root, &config, None);
            let same: Vec<&str> = again.candidates.iter().map(|c| &*c.rel_path).collect();
            assert_eq!(same, paths);
        }
    }
}
