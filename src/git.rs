//! Reading a repository at a git revision straight from git objects, for the diff-aware scan
//! (`--base REV [--head REV]`): no checkout, no `git` process. It lists a revision's YAML
//! files the way the working-tree walk does, reads their blobs, and finds the files renamed
//! between two revisions, so that a finding keeps its identity across a rename.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use git2::{
    Delta, DiffFindOptions, DiffOptions, ErrorCode, ObjectType, Odb, Oid, Repository, Tree,
    TreeWalkMode, TreeWalkResult,
};

use crate::config::Config;
use crate::documents::{FileKind, SkipReason};
use crate::walk::{self, Skipped};

mod export;
pub use export::{RevisionFiles, MAX_EXPORT_BYTES, MAX_EXPORT_FILES};

/// File modes of tree entries (git stores no other permissions).
const MODE_SYMLINK: i32 = 0o120000;
const MODE_SUBMODULE: i32 = 0o160000;
/// Symlinks to symlinks are followed this many times, then called broken (a loop).
const MAX_LINK_HOPS: usize = 8;
/// A committed symlink's target is a path; anything longer is not one worth inflating.
const MAX_LINK_TARGET: u64 = 4096;
/// The largest `.envfence.yaml` read from a revision (a config is a few KiB).
pub const MAX_CONFIG_BLOB: u64 = 1024 * 1024;

/// The git repository that holds the scanned folder.
pub struct GitRepo {
    repo: Repository,
    /// Where to reopen the repository from another thread (`Repository` is not `Sync`).
    git_dir: PathBuf,
    /// The scanned folder relative to the top of the work tree, `/`-separated with a trailing
    /// `/`, or empty when the whole repository is scanned.
    prefix: String,
}

/// A YAML file of a revision: its path relative to the scanned folder and its blob.
#[derive(Debug, Clone)]
pub struct TreeFile {
    pub rel_path: Arc<str>,
    pub oid: Oid,
    pub kind_hint: Option<FileKind>,
}

/// A revision's files, as the working-tree walk would have listed them.
#[derive(Debug, Default)]
pub struct TreeListing {
    pub files: Vec<TreeFile>,
    pub skipped: Vec<Skipped>,
    /// Files excluded by the config's `ignore` globs.
    pub ignored: usize,
    /// The commit listed, for errors about its blobs.
    pub commit: Option<Oid>,
    /// The scanned folder relative to the top of the work tree ([`GitRepo`]'s prefix).
    pub prefix: String,
}

impl GitRepo {
    /// Opens the repository that contains `scan_root` (a canonical folder).
    pub fn open(scan_root: &Path) -> anyhow::Result<GitRepo> {
        let repo = Repository::discover(scan_root).map_err(|_| {
            anyhow::anyhow!(
                "--base needs a git repository, and {} is not inside one",
                scan_root.display()
            )
        })?;
        let Some(workdir) = repo.workdir() else {
            bail!(
                "--base needs a work tree; {} is a bare repository",
                repo.path().display()
            );
        };
        let workdir = std::fs::canonicalize(workdir).unwrap_or_else(|_| workdir.to_path_buf());
        let prefix = match scan_root.strip_prefix(&workdir) {
            Ok(rel) if rel.as_os_str().is_empty() => String::new(),
            Ok(rel) => format!("{}/", walk::relative(Path::new(""), rel)),
            Err(_) => bail!(
                "{} is not inside the work tree of {}",
                scan_root.display(),
                workdir.display()
            ),
        };
        Ok(GitRepo {
            git_dir: repo.path().to_path_buf(),
            repo,
            prefix,
        })
    }

    /// The scanned folder relative to the top of the repository (`apps/` or empty).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The repository's `.git` folder, for [`reopen`] on another thread.
    pub fn git_dir(&self) -> &Path {
        &self.git_dir
    }

    /// Resolves a revision (`main`, `origin/main`, `HEAD~1`, a commit id) to a commit.
    /// `flag` names the option it came from, for the message.
    pub fn commit(&self, rev: &str, flag: &str) -> anyhow::Result<Oid> {
        let object = match self.repo.revparse_single(rev) {
            Ok(object) => object,
            Err(e) => {
                if self.repo.is_shallow() {
                    bail!(
                        "{flag} {rev}: not in this shallow clone; fetch the history it needs \
                         (actions/checkout: `fetch-depth: 0`; locally: `git fetch --unshallow`)"
                    );
                }
                bail!(
                    "{flag} {rev}: no such revision in {} ({}); fetch it first, e.g. `git fetch origin {rev}`",
                    self.git_dir.display(),
                    e.message()
                );
            }
        };
        let commit = object
            .peel_to_commit()
            .with_context(|| format!("{flag} {rev} does not name a commit"))?;
        Ok(commit.id())
    }

    /// The text of the scanned folder's `.envfence.yaml` at `commit`, if it has one.
    pub fn config_text(&self, commit: Oid) -> anyhow::Result<Option<String>> {
        let tree = self.repo.find_commit(commit)?.tree()?;
        let path = format!("{}{}", self.prefix, crate::config::FILE_NAME);
        let Ok(entry) = tree.get_path(Path::new(&path)) else {
            return Ok(None);
        };
        let size = blob_size(&self.repo.odb()?, entry.id())
            .map_err(|e| unreadable_blob(&path, commit, entry.id(), &e))?;
        if size > MAX_CONFIG_BLOB {
            bail!("{path} at {commit} is {size} bytes, over the {MAX_CONFIG_BLOB}-byte cap for a config file");
        }
        let blob = self
            .repo
            .find_blob(entry.id())
            .with_context(|| format!("cannot read {path} at {commit}"))?;
        Ok(Some(String::from_utf8_lossy(blob.content()).into_owned()))
    }

    /// Lists the YAML files of the scanned folder at `commit`. With `only`, just that file.
    pub fn list(
        &self,
        commit: Oid,
        config: &Config,
        only: Option<&str>,
    ) -> anyhow::Result<TreeListing> {
        let root = self.repo.find_commit(commit)?.tree()?;
        let mut listing = TreeListing {
            commit: Some(commit),
            prefix: self.prefix.clone(),
            ..TreeListing::default()
        };
        let folder = if self.prefix.is_empty() {
            root.clone()
        } else {
            match root.get_path(Path::new(self.prefix.trim_end_matches('/'))) {
                Ok(entry) if entry.kind() == Some(ObjectType::Tree) => {
                    self.repo.find_tree(entry.id())?
                }
                // The folder does not exist at this revision: nothing to read.
                _ => return Ok(listing),
            }
        };
        let odb = self.repo.odb()?;
        let mut links = Vec::new();
        // Blobs are not looked at here: most are the head's (same id), and one that cannot be
        // read is an error when it is read (`read_listed_blob`).
        folder.walk(TreeWalkMode::PreOrder, |dir, entry| {
            let mode = entry.filemode();
            if entry.kind() == Some(ObjectType::Tree) {
                // `.git` cannot be committed, but a folder of that name is skipped like the walk does.
                return if entry.name_bytes() == b".git" {
                    TreeWalkResult::Skip
                } else {
                    TreeWalkResult::Ok
                };
            }
            let Ok(name) = entry.name() else {
                return TreeWalkResult::Ok;
            };
            let rel: Arc<str> = Arc::from(format!("{dir}{name}"));
            if mode == MODE_SUBMODULE {
                // Another repository: not entered, as the working-tree walk does not.
                if only.is_none() && !config.is_ignored(&rel) {
                    listing.skipped.push(Skipped {
                        rel_path: rel,
                        reason: SkipReason::Submodule,
                    });
                }
                return TreeWalkResult::Ok;
            }
            if !walk::is_yaml_name(name) {
                return TreeWalkResult::Ok;
            }
            if config.is_ignored(&rel) {
                listing.ignored += 1;
                return TreeWalkResult::Ok;
            }
            if only.is_some_and(|o| o != &*rel) {
                return TreeWalkResult::Ok;
            }
            if mode == MODE_SYMLINK {
                links.push((rel, entry.id()));
            } else {
                listing.files.push(TreeFile {
                    rel_path: rel,
                    oid: entry.id(),
                    kind_hint: None,
                });
            }
            TreeWalkResult::Ok
        })?;
        for (rel, oid) in links {
            let resolved = self
                .resolve_link(&odb, &root, &rel, oid)
                .map_err(|(path, oid, e)| unreadable_blob(&path, commit, oid, &e))?;
            match resolved {
                Ok((target, _)) => listing.files.push(TreeFile {
                    rel_path: rel,
                    oid: target,
                    kind_hint: None,
                }),
                Err(reason) => listing.skipped.push(Skipped {
                    rel_path: rel,
                    reason,
                }),
            }
        }
        let hints = walk::kind_hints(
            &listing
                .files
                .iter()
                .map(|f| &*f.rel_path)
                .collect::<Vec<_>>(),
        );
        for (file, hint) in listing.files.iter_mut().zip(hints) {
            file.kind_hint = hint;
        }
        listing.files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
        listing.skipped.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
        Ok(listing)
    }

    /// Follows a committed symlink inside the tree. Like the working-tree walk, a link is
    /// only read when it ends at a regular file inside the scanned folder. A blob that cannot
    /// be read is an error (its repository path, id and cause), not a skip.
    #[allow(clippy::type_complexity)]
    fn resolve_link(
        &self,
        odb: &Odb,
        root: &Tree,
        rel: &str,
        mut oid: Oid,
    ) -> Result<Result<(Oid, u64), SkipReason>, (String, Oid, git2::Error)> {
        let mut path = format!("{}{rel}", self.prefix);
        for _ in 0..MAX_LINK_HOPS {
            let size = blob_size(odb, oid).map_err(|e| (path.clone(), oid, e))?;
            if size > MAX_LINK_TARGET {
                return Ok(Err(SkipReason::BrokenSymlink));
            }
            let blob = self
                .repo
                .find_blob(oid)
                .map_err(|e| (path.clone(), oid, e))?;
            let target = String::from_utf8_lossy(blob.content()).into_owned();
            let parent = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            let Some(resolved) = normalise_link(parent, &target) else {
                return Ok(Err(SkipReason::SymlinkOutsideRepo));
            };
            if !resolved.starts_with(&self.prefix) {
                return Ok(Err(SkipReason::SymlinkOutsideRepo));
            }
            let Ok(entry) = root.get_path(Path::new(&resolved)) else {
                return Ok(Err(SkipReason::BrokenSymlink));
            };
            match (entry.kind(), entry.filemode()) {
                (Some(ObjectType::Tree), _) => return Ok(Err(SkipReason::SymlinkedDirectory)),
                (Some(ObjectType::Blob), MODE_SYMLINK) => {
                    oid = entry.id();
                    path = resolved;
                }
                (Some(ObjectType::Blob), _) => {
                    let size = blob_size(odb, entry.id()).map_err(|e| (resolved, entry.id(), e))?;
                    return Ok(Ok((entry.id(), size)));
                }
                _ => return Ok(Err(SkipReason::NotRegularFile)),
            }
        }
        Ok(Err(SkipReason::BrokenSymlink))
    }

    /// Files renamed from `base` to `head` (a commit, or the working tree with untracked files
    /// when `None`), as paths relative to the scanned folder: old path → new path.
    pub fn renames(
        &self,
        base: Oid,
        head: Option<Oid>,
    ) -> anyhow::Result<HashMap<Arc<str>, Arc<str>>> {
        let base_tree = self.repo.find_commit(base)?.tree()?;
        let mut options = DiffOptions::new();
        options
            .include_untracked(true)
            .recurse_untracked_dirs(true)
            .ignore_submodules(true);
        if !self.prefix.is_empty() {
            options.pathspec(&self.prefix);
        }
        let mut diff = match head {
            Some(head) => {
                let head_tree = self.repo.find_commit(head)?.tree()?;
                self.repo.diff_tree_to_tree(
                    Some(&base_tree),
                    Some(&head_tree),
                    Some(&mut options),
                )?
            }
            None => self
                .repo
                .diff_tree_to_workdir_with_index(Some(&base_tree), Some(&mut options))?,
        };
        let mut find = DiffFindOptions::new();
        find.renames(true).for_untracked(true);
        diff.find_similar(Some(&mut find))?;
        let mut renames = HashMap::new();
        for delta in diff.deltas() {
            if delta.status() != Delta::Renamed {
                continue;
            }
            let (Some(old), Some(new)) = (delta.old_file().path(), delta.new_file().path()) else {
                continue;
            };
            let old = walk::relative(Path::new(""), old);
            let new = walk::relative(Path::new(""), new);
            if let (Some(old), Some(new)) = (
                old.strip_prefix(&self.prefix),
                new.strip_prefix(&self.prefix),
            ) {
                renames.insert(Arc::from(old), Arc::from(new));
            }
        }
        Ok(renames)
    }
}

/// Opens a repository again from its `.git` folder, for a worker thread (`Repository` cannot
/// be shared between threads).
pub fn reopen(git_dir: &Path) -> Option<Repository> {
    Repository::open(git_dir).ok()
}

/// Reads the blob of a file of `listing`, of at most `cap` bytes. The size comes from the
/// object's header, so a blob over the cap is never inflated (a 2 GiB blob of zeros packs
/// into a few MiB). A blob missing from the repository (a partial clone) is an error, since
/// reading on without it would report the file's findings as new (or fixed); any other
/// failure is a reason to skip the file.
pub fn read_listed_blob(
    repo: &Repository,
    listing: &TreeListing,
    file: &TreeFile,
    cap: u64,
) -> anyhow::Result<Result<Vec<u8>, SkipReason>> {
    match read_blob_or_missing(repo, file.oid, cap) {
        Ok(bytes) => Ok(Ok(bytes)),
        Err(Ok(reason)) => Ok(Err(reason)),
        Err(Err(e)) => match listing.commit {
            Some(commit) => Err(unreadable_blob(
                &format!("{}{}", listing.prefix, file.rel_path),
                commit,
                file.oid,
                &e,
            )),
            None => Ok(Err(SkipReason::Unreadable(e.message().to_owned()))),
        },
    }
}

/// The blob, or why it is skipped, or the error of a blob missing from the repository.
fn read_blob_or_missing(
    repo: &Repository,
    oid: Oid,
    cap: u64,
) -> Result<Vec<u8>, Result<SkipReason, git2::Error>> {
    let missing_or_unreadable = |e: git2::Error| {
        if e.code() == ErrorCode::NotFound {
            Err(e)
        } else {
            Ok(SkipReason::Unreadable(e.message().to_owned()))
        }
    };
    let odb = repo.odb().map_err(missing_or_unreadable)?;
    let size = blob_size(&odb, oid).map_err(missing_or_unreadable)?;
    if size > cap {
        return Err(Ok(SkipReason::TooLarge { size, cap }));
    }
    let blob = repo.find_blob(oid).map_err(missing_or_unreadable)?;
    Ok(blob.content().to_vec())
}

/// A blob's size, read from its header without inflating it.
fn blob_size(odb: &Odb, oid: Oid) -> Result<u64, git2::Error> {
    odb.read_header(oid).map(|(size, _)| size as u64)
}

/// The one-line error for a blob of a revision that cannot be read: a missing blob says how
/// to fetch it. Reading on without it would report the file's findings as new (or fixed).
fn unreadable_blob(path: &str, commit: Oid, oid: Oid, e: &git2::Error) -> anyhow::Error {
    let path = path.escape_debug();
    let commit = &commit.to_string()[..12];
    if e.code() == ErrorCode::NotFound {
        anyhow::anyhow!(
            "the blob of {path} at {commit} ({oid}) is missing from this repository \
             (a partial clone, e.g. actions/checkout with `filter: blob:none`?): fetch the \
             revision's files (`git fetch --refetch --no-filter origin`, or check out without \
             `filter:`) and run again"
        )
    } else {
        anyhow::anyhow!(
            "cannot read the blob of {path} at {commit} ({oid}): {}",
            e.message().replace(['\n', '\r'], " ")
        )
    }
}

/// The blob id git would give these bytes, to recognise a working-tree file that is unchanged
/// since a revision.
pub fn blob_id(bytes: &[u8]) -> Option<Oid> {
    Oid::hash_object(ObjectType::Blob, bytes).ok()
}

/// Joins a symlink's target onto the folder that holds the link and removes `.` and `..`;
/// `None` when it leaves the repository (absolute, or too many `..`).
fn normalise_link(parent: &str, target: &str) -> Option<String> {
    if target.starts_with('/') || target.contains('\\') || target.contains(':') {
        return None;
    }
    let mut parts: Vec<&str> = parent.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_targets_are_normalised_and_bounded() {
        assert_eq!(
            normalise_link("apps/web", "../shared/cm.yaml").as_deref(),
            Some("apps/shared/cm.yaml")
        );
        assert_eq!(normalise_link("", "./a.yaml").as_deref(), Some("a.yaml"));
        assert_eq!(normalise_link("apps", "../../etc/passwd"), None);
        assert_eq!(normalise_link("apps", "/etc/passwd"), None);
    }
}
