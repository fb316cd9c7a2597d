//! Finding the files to read: a depth-first walk that skips `.git`, honours `.gitignore`
//! files and the config's `ignore` globs, and never follows a symlink out of the repository.
//!
//! The walk itself is sequential (listing directories is cheap); reading and parsing, the
//! expensive part, runs in parallel in `scan`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;
use rayon::prelude::*;
use walkdir::{DirEntry, WalkDir};

use crate::config::Config;
use crate::documents::{FileKind, SkipReason};

/// A file to read: its repository-relative path, the real path to open (symlinks resolved
/// and checked), its size, and the kind its path implies.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub rel_path: Arc<str>,
    pub read_path: PathBuf,
    pub size: u64,
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
}

/// True for the names envfence reads: `*.yaml`, `*.yml` and kustomize's `Kustomization`.
pub fn is_yaml_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml") || name == "Kustomization"
}

/// Walks `root` (which must be canonical). With `only`, the result holds just that file.
pub fn walk(root: &Path, config: &Config, only: Option<&Path>) -> WalkResult {
    let mut result = WalkResult::default();
    let mut gitignores: Vec<(usize, Gitignore)> = Vec::new();
    let mut pending_symlinks = Vec::new();
    let mut files = Vec::new();

    let in_work_tree = root.ancestors().any(|dir| dir.join(".git").exists());
    let walker = WalkDir::new(root).follow_links(false).sort_by_file_name();
    let mut it = walker.into_iter();
    loop {
        let entry = match it.next() {
            None => break,
            Some(Ok(entry)) => entry,
            Some(Err(e)) => {
                let rel = e
                    .path()
                    .map(|p| relative(root, p))
                    .unwrap_or_else(|| Arc::from("."));
                result.skipped.push(Skipped {
                    rel_path: rel,
                    reason: SkipReason::Unreadable(io_cause(&e)),
                });
                continue;
            }
        };
        let depth = entry.depth();
        // Matchers of directories we have left no longer apply.
        while gitignores.last().is_some_and(|(d, _)| *d >= depth) {
            gitignores.pop();
        }
        let is_dir = entry.file_type().is_dir();
        if depth > 0 {
            if is_dir && entry.file_name() == ".git" {
                it.skip_current_dir();
                continue;
            }
            if is_gitignored(&gitignores, entry.path(), is_dir) {
                if is_dir {
                    it.skip_current_dir();
                } else {
                    result.ignored += 1;
                }
                continue;
            }
        }
        if is_dir {
            if depth > 0 && is_nested_checkout(entry.path(), in_work_tree) {
                result.skipped.push(Skipped {
                    rel_path: relative(root, entry.path()),
                    reason: SkipReason::Submodule,
                });
                it.skip_current_dir();
                continue;
            }
            if let Some(gi) = load_gitignore(entry.path()) {
                gitignores.push((depth, gi));
            }
            continue;
        }
        let rel = relative(root, entry.path());
        if !entry.file_type().is_symlink() && !is_yaml_name(&entry.file_name().to_string_lossy()) {
            continue;
        }
        if config.is_ignored(&rel) {
            result.ignored += 1;
            continue;
        }
        if only.is_some_and(|o| o != entry.path()) {
            continue;
        }
        if entry.file_type().is_symlink() {
            pending_symlinks.push((rel, entry));
        } else {
            files.push((rel, entry));
        }
    }

    // One stat per file, on all cores; collected in walk order, so the result is the same.
    let stated: Vec<Result<Candidate, Skipped>> = files
        .into_par_iter()
        .map(|(rel, entry)| {
            if !entry.file_type().is_file() {
                return Err(Skipped {
                    rel_path: rel,
                    reason: SkipReason::NotRegularFile,
                });
            }
            match entry.metadata() {
                Ok(meta) => Ok(Candidate {
                    rel_path: rel,
                    read_path: entry.into_path(),
                    size: meta.len(),
                    kind_hint: None,
                }),
                Err(e) => Err(Skipped {
                    rel_path: rel,
                    reason: SkipReason::Unreadable(io_cause(&e)),
                }),
            }
        })
        .collect();
    for outcome in stated {
        match outcome {
            Ok(candidate) => result.candidates.push(candidate),
            Err(skipped) => result.skipped.push(skipped),
        }
    }
    for (rel, entry) in pending_symlinks {
        resolve_symlink(root, rel, &entry, &mut result);
    }
    assign_kind_hints(&mut result.candidates);
    result
        .candidates
        .sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    result.skipped.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    result
}

/// A folder that is another git checkout: a submodule (its `.git` is a file that points into
/// the superproject's `.git/modules`), a linked worktree, or, inside a work tree, a nested
/// repository. Its files are not this repository's: git's trees hold a submodule as one
/// commit id, so a diff-aware scan could not compare them, and neither side enters it.
/// A folder of repositories that is no repository itself is walked into as usual.
fn is_nested_checkout(dir: &Path, in_work_tree: bool) -> bool {
    match std::fs::symlink_metadata(dir.join(".git")) {
        Ok(meta) if meta.is_file() => true,
        Ok(meta) => meta.is_dir() && in_work_tree,
        Err(_) => false,
    }
}

/// Decides what a symlink is and whether it may be read. A link is only ever read through its
/// resolved target, and only when that target is inside the repository.
fn resolve_symlink(root: &Path, rel: Arc<str>, entry: &DirEntry, result: &mut WalkResult) {
    let yaml_name = is_yaml_name(&entry.file_name().to_string_lossy());
    let skip = |result: &mut WalkResult, reason| {
        result.skipped.push(Skipped {
            rel_path: Arc::clone(&rel),
            reason,
        })
    };
    let target = match std::fs::canonicalize(entry.path()) {
        Ok(t) => t,
        Err(_) => {
            if yaml_name {
                skip(result, SkipReason::BrokenSymlink);
            }
            return;
        }
    };
    let inside = target.starts_with(root);
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
                size: meta.len(),
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

fn is_gitignored(stack: &[(usize, Gitignore)], path: &Path, is_dir: bool) -> bool {
    for (_, gi) in stack.iter().rev() {
        match gi.matched(path, is_dir) {
            Match::Ignore(_) => return true,
            Match::Whitelist(_) => return false,
            Match::None => {}
        }
    }
    false
}

/// Why [`read_regular_file`] read nothing.
#[derive(Debug)]
pub enum ReadError {
    /// A FIFO, device, socket or directory: reading it could block or never end.
    NotRegularFile,
    TooLarge {
        size: u64,
        cap: u64,
    },
    Io(std::io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::NotRegularFile => f.write_str("not a regular file"),
            ReadError::TooLarge { size, cap } => {
                write!(f, "{size} bytes, larger than the limit of {cap} bytes")
            }
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
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

/// Reads a file that must be a regular file of at most `cap` bytes, without ever blocking or
/// reading without end: a path checked by the walk may have been swapped for a FIFO or a
/// device since. The file is opened non-blocking (an open of a FIFO with no writer returns
/// at once) and the opened handle's own metadata decides; the buffer is sized from that
/// metadata and grows at most to `cap`, and a failed allocation is an error, not an abort.
pub fn read_regular_file(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;

    // Refuse what is not a regular file before opening it: opening some devices acts.
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => return Err(ReadError::NotRegularFile),
        Ok(_) => {}
        Err(e) => return Err(ReadError::Io(e)),
    }
    let file = open_nonblocking(path).map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegularFile);
    }
    if meta.len() > cap {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            cap,
        });
    }
    let mut bytes = Vec::new();
    let size = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    bytes.try_reserve_exact(size).map_err(|_| {
        ReadError::Io(std::io::Error::new(
            std::io::ErrorKind::OutOfMemory,
            format!("cannot allocate {size} bytes to read it"),
        ))
    })?;
    // At most one byte past the cap, in case the file grew since.
    let read = file
        .take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if read as u64 > cap {
        return Err(ReadError::TooLarge {
            size: read as u64,
            cap,
        });
    }
    Ok(bytes)
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// The repository-relative path with `/` separators.
pub fn relative(root: &Path, path: &Path) -> Arc<str> {
    let rel = path.strip_prefix(root).unwrap_or(path);
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

    #[cfg(unix)]
    #[test]
    fn fifos_devices_and_growth_are_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("swapped.yaml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        // On a thread, so that a regression fails the test instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(matches!(
                read_regular_file(&path, 1 << 20),
                Err(ReadError::NotRegularFile)
            ));
        });
        let refused = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("reading a FIFO must not block");
        assert!(refused);
        assert!(matches!(
            read_regular_file(Path::new("/dev/zero"), 1 << 20),
            Err(ReadError::NotRegularFile)
        ));
        let file = dir.path().join("big.yaml");
        std::fs::write(&file, "x".repeat(100)).expect("write");
        assert!(matches!(
            read_regular_file(&file, 99),
            Err(ReadError::TooLarge { size: 100, cap: 99 })
        ));
        assert_eq!(
            read_regular_file(&file, 100).map(|b| b.len()).ok(),
            Some(100)
        );
    }

    #[test]
    fn yaml_names() {
        assert!(is_yaml_name("a.yaml") && is_yaml_name("B.YML") && is_yaml_name("Kustomization"));
        assert!(!is_yaml_name("a.json") && !is_yaml_name("kustomization"));
    }
}
