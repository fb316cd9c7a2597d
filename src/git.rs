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
};

use crate::budget::{Budget, BudgetCut};
use crate::config::Config;
use crate::documents::{FileKind, SkipReason};
use crate::walk::{self, Limit, Skipped, Tally};

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
/// Bytes of distinct tree objects one listing of a revision reads (each tree's size is read
/// from its header before it is inflated). Besides [`walk`]'s listing limits: one tree
/// object can hold millions of entries and still pack into a few MiB.
pub const MAX_TREE_BYTES: u64 = 64 << 20;

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
    /// Set when the listing hit a limit ([`walk::Tally`], [`MAX_TREE_BYTES`]): what it listed
    /// before is kept.
    pub cut: Option<BudgetCut>,
}

/// A tree entry found by a path ([`TreeReads::entry_at`]).
struct Found {
    id: Oid,
    mode: i32,
    kind: Option<ObjectType>,
}

/// The tree objects one listing (or one export) reads: each distinct tree once, kept for the
/// next look-up (a tree shared by many parents costs one read), its size read from its header
/// and counted before it is inflated.
pub(crate) struct TreeReads<'r> {
    repo: &'r Repository,
    odb: Odb<'r>,
    read: HashMap<Oid, Tree<'r>>,
    bytes: u64,
    max_bytes: u64,
}

impl<'r> TreeReads<'r> {
    pub(crate) fn new(repo: &'r Repository, max_bytes: u64) -> Result<Self, git2::Error> {
        Ok(TreeReads {
            repo,
            odb: repo.odb()?,
            read: HashMap::new(),
            bytes: 0,
            max_bytes,
        })
    }

    /// The tree `oid`, or the limit that stops it from being read.
    pub(crate) fn tree(&mut self, oid: Oid) -> Result<Result<Tree<'r>, Limit>, git2::Error> {
        if let Some(tree) = self.read.get(&oid) {
            return Ok(Ok(tree.clone()));
        }
        let size = blob_size(&self.odb, oid)?;
        if self.bytes.saturating_add(size) > self.max_bytes {
            return Ok(Err(Limit::TreeBytes(self.max_bytes)));
        }
        self.bytes += size;
        let tree = self.repo.find_tree(oid)?;
        self.read.insert(oid, tree.clone());
        Ok(Ok(tree))
    }

    /// The entry at `path` (`a/b/c.yaml`) under `root`, each step counted as an entry of
    /// `tally`: `Ok(None)` when there is none, or a tree on the way cannot be read (as
    /// `Tree::get_path` answers).
    fn entry_at(
        &mut self,
        root: &Tree<'r>,
        path: &str,
        tally: &Tally,
    ) -> Result<Option<Found>, Limit> {
        let mut tree = root.clone();
        let mut parts = path.split('/').peekable();
        while let Some(name) = parts.next() {
            if tally.entries(1) == 0 {
                return Err(Limit::Entries(walk::MAX_VISITED_ENTRIES));
            }
            let Some(entry) = tree.get_name(name).filter(|_| !name.is_empty()) else {
                return Ok(None);
            };
            let found = Found {
                id: entry.id(),
                mode: entry.filemode(),
                kind: entry.kind(),
            };
            drop(entry);
            if parts.peek().is_none() {
                return Ok(Some(found));
            }
            if found.kind != Some(ObjectType::Tree) {
                return Ok(None);
            }
            tree = match self.tree(found.id) {
                Ok(Ok(next)) => next,
                Ok(Err(limit)) => return Err(limit),
                Err(_) => return Ok(None),
            };
        }
        Ok(None)
    }
}

/// Why a committed symlink was not followed to an answer.
pub(crate) enum LinkError {
    /// A blob on the way cannot be read: its repository path, its id and the cause.
    Blob(String, Oid, git2::Error),
    /// The trees on the way are over the reader's limits.
    Limit(Limit),
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
        let path = format!("{}{}", self.prefix, crate::config::FILE_NAME);
        let over = |limit| {
            anyhow::anyhow!(
                "cannot read {path} at {commit}: over the {limit} a revision's listing reads"
            )
        };
        let mut reads = TreeReads::new(&self.repo, MAX_TREE_BYTES)?;
        let tree = reads
            .tree(self.repo.find_commit(commit)?.tree_id())?
            .map_err(over)?;
        let Some(entry) = reads
            .entry_at(&tree, &path, &Tally::default())
            .map_err(over)?
        else {
            return Ok(None);
        };
        let size = blob_size(&self.repo.odb()?, entry.id)
            .map_err(|e| unreadable_blob(&path, commit, entry.id, &e))?;
        if size > MAX_CONFIG_BLOB {
            bail!("{path} at {commit} is {size} bytes, over the {MAX_CONFIG_BLOB}-byte cap for a config file");
        }
        let blob = self
            .repo
            .find_blob(entry.id)
            .with_context(|| format!("cannot read {path} at {commit}"))?;
        Ok(Some(String::from_utf8_lossy(blob.content()).into_owned()))
    }

    /// Lists the YAML files of the scanned folder at `commit` (`rev`, as the user named it, for
    /// the cut's detail). With `only`, just that file.
    ///
    /// The listing stops at the first of [`walk`]'s listing limits or [`MAX_TREE_BYTES`] it
    /// hits, keeps what it listed, and says so in [`TreeListing::cut`]: a tree shared by many
    /// parents is stored once but listed once per parent, so a `.git` of a few hundred KiB
    /// can hold millions of files.
    pub fn list(
        &self,
        commit: Oid,
        rev: &str,
        config: &Config,
        only: Option<&str>,
    ) -> anyhow::Result<TreeListing> {
        let mut listing = TreeListing {
            commit: Some(commit),
            prefix: self.prefix.clone(),
            ..TreeListing::default()
        };
        let tally = Tally::default();
        let mut reads = TreeReads::new(&self.repo, MAX_TREE_BYTES)?;
        let shown = format!("revision {rev} ({})", &commit.to_string()[..12]);
        let cut = |tally: &Tally, limit, mut listing: TreeListing| {
            tally.stop(limit);
            listing.cut = tally.cut(Budget::RevisionFiles, &shown);
            listing
        };
        let root = match reads.tree(self.repo.find_commit(commit)?.tree_id())? {
            Ok(root) => root,
            Err(limit) => return Ok(cut(&tally, limit, listing)),
        };
        let folder = if self.prefix.is_empty() {
            root.clone()
        } else {
            match reads.entry_at(&root, self.prefix.trim_end_matches('/'), &tally) {
                Ok(Some(entry)) if entry.kind == Some(ObjectType::Tree) => {
                    match reads.tree(entry.id)? {
                        Ok(tree) => tree,
                        Err(limit) => return Ok(cut(&tally, limit, listing)),
                    }
                }
                // The folder does not exist at this revision: nothing to read.
                Ok(_) => return Ok(listing),
                Err(limit) => return Ok(cut(&tally, limit, listing)),
            }
        };
        let mut links = Vec::new();
        // Depth first, in git's order, with a stack of (tree, next entry) and one path buffer
        // (`dir`, the lengths it had above in `dirs`): no recursion, however deep the trees.
        // Blobs are not looked at here: most are the head's (same id), and one that cannot be
        // read is an error when it is read (`read_listed_blob`).
        let mut stack = vec![(folder, 0usize)];
        let mut dir = String::new();
        let mut dirs: Vec<usize> = Vec::new();
        while let Some((tree, next)) = stack.last_mut() {
            let Some(entry) = tree.get(*next) else {
                stack.pop();
                dir.truncate(dirs.pop().unwrap_or(0));
                continue;
            };
            *next += 1;
            if tally.entries(1) == 0 {
                break;
            }
            let mode = entry.filemode();
            if entry.kind() == Some(ObjectType::Tree) {
                // `.git` cannot be committed, but a folder of that name is skipped like the
                // walk does; so is a folder whose name is not UTF-8, like such a file.
                let Ok(name) = entry.name() else { continue };
                if name == ".git" {
                    continue;
                }
                let id = entry.id();
                dirs.push(dir.len());
                dir.push_str(name);
                dir.push('/');
                drop(entry);
                if !tally.folder() {
                    break;
                }
                match reads.tree(id)? {
                    Ok(subtree) => stack.push((subtree, 0)),
                    Err(limit) => {
                        tally.stop(limit);
                        break;
                    }
                }
                continue;
            }
            let Ok(name) = entry.name() else {
                continue;
            };
            let rel: Arc<str> = Arc::from(format!("{dir}{name}"));
            if mode == MODE_SUBMODULE {
                // Another repository: not entered, as the working-tree walk does not.
                if only.is_none() && !config.is_ignored(&rel) {
                    if !tally.keep(&rel) {
                        break;
                    }
                    listing.skipped.push(Skipped {
                        rel_path: rel,
                        reason: SkipReason::Submodule,
                    });
                }
                continue;
            }
            if !walk::is_yaml_name(name) {
                continue;
            }
            if config.is_ignored(&rel) {
                listing.ignored += 1;
                continue;
            }
            if only.is_some_and(|o| o != &*rel) {
                continue;
            }
            if !tally.keep(&rel) {
                break;
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
        }
        drop(stack);
        let odb = self.repo.odb()?;
        for (rel, oid) in links {
            let resolved = match self.resolve_link(&odb, &root, &rel, oid, &mut reads, &tally) {
                Ok(resolved) => resolved,
                Err(LinkError::Blob(path, oid, e)) => {
                    return Err(unreadable_blob(&path, commit, oid, &e))
                }
                // The links not followed yet are left out, as a cut.
                Err(LinkError::Limit(limit)) => {
                    tally.stop(limit);
                    break;
                }
            };
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
        listing.cut = tally.cut(Budget::RevisionFiles, &shown);
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
    /// be read is an error (its repository path, id and cause), not a skip; the trees on the
    /// way are read through `reads` and counted in `tally`.
    pub(crate) fn resolve_link<'r>(
        &'r self,
        odb: &Odb,
        root: &Tree<'r>,
        rel: &str,
        mut oid: Oid,
        reads: &mut TreeReads<'r>,
        tally: &Tally,
    ) -> Result<Result<(Oid, u64), SkipReason>, LinkError> {
        let mut path = format!("{}{rel}", self.prefix);
        for _ in 0..MAX_LINK_HOPS {
            let size = blob_size(odb, oid).map_err(|e| LinkError::Blob(path.clone(), oid, e))?;
            if size > MAX_LINK_TARGET {
                return Ok(Err(SkipReason::BrokenSymlink));
            }
            let blob = self
                .repo
                .find_blob(oid)
                .map_err(|e| LinkError::Blob(path.clone(), oid, e))?;
            let target = String::from_utf8_lossy(blob.content()).into_owned();
            let parent = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            let Some(resolved) = normalise_link(parent, &target) else {
                return Ok(Err(SkipReason::SymlinkOutsideRepo));
            };
            if !resolved.starts_with(&self.prefix) {
                return Ok(Err(SkipReason::SymlinkOutsideRepo));
            }
            let Some(entry) = reads
                .entry_at(root, &resolved, tally)
                .map_err(LinkError::Limit)?
            else {
                return Ok(Err(SkipReason::BrokenSymlink));
            };
            match (entry.kind, entry.mode) {
                (Some(ObjectType::Tree), _) => return Ok(Err(SkipReason::SymlinkedDirectory)),
                (Some(ObjectType::Blob), MODE_SYMLINK) => {
                    oid = entry.id;
                    path = resolved;
                }
                (Some(ObjectType::Blob), _) => {
                    let size = blob_size(odb, entry.id)
                        .map_err(|e| LinkError::Blob(resolved, entry.id, e))?;
                    return Ok(Ok((entry.id, size)));
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

    /// A repository whose one commit holds `apps/`: `levels` levels of `width` folders (each
    /// level one shared tree object) over `leaves` files `f<i>.yaml` of one blob.
    fn fan_out(dir: &Path, width: usize, levels: usize, leaves: usize) -> (GitRepo, Oid) {
        let repo = Repository::init(dir).expect("init");
        let blob = repo.blob(b"a: 1\n").expect("blob");
        let mut builder = repo.treebuilder(None).expect("builder");
        for i in 0..leaves {
            builder
                .insert(format!("f{i}.yaml"), blob, 0o100644)
                .expect("insert");
        }
        let mut tree = builder.write().expect("tree");
        for _ in 0..levels {
            let mut builder = repo.treebuilder(None).expect("builder");
            for i in 0..width {
                builder
                    .insert(format!("d{i}"), tree, 0o040000)
                    .expect("insert");
            }
            tree = builder.write().expect("tree");
        }
        let mut top = repo.treebuilder(None).expect("builder");
        top.insert("apps", tree, 0o040000).expect("insert");
        let root = repo.find_tree(top.write().expect("root")).expect("root");
        let signature = git2::Signature::now("t", "t@envfence.invalid").expect("signature");
        let commit = repo
            .commit(None, &signature, &signature, "fan-out", &root, &[])
            .expect("commit");
        let dir = std::fs::canonicalize(dir).expect("canonical");
        (GitRepo::open(&dir).expect("open"), commit)
    }

    /// Issue 25, defect 12: 100 × 100 × 21 files of shared subtrees are listed up to the file
    /// limit, in git's order, with a cut that names the revision and the limit.
    #[test]
    fn a_listing_stops_at_the_file_limit() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (git, commit) = fan_out(tmp.path(), 100, 2, 21);
        let listing = git
            .list(commit, "fanout", &Config::default(), None)
            .expect("listed");
        assert_eq!(listing.files.len(), walk::MAX_LISTED_FILES);
        assert!(listing
            .files
            .iter()
            .all(|f| f.rel_path.starts_with("apps/d")));
        let cut = listing.cut.expect("a cut");
        assert_eq!(cut.budget, Budget::RevisionFiles);
        assert_eq!(
            cut.detail,
            format!(
                "revision fanout ({}) has more than 200,000 files to list; the files listed \
                 before that are scanned, the rest are not",
                &commit.to_string()[..12]
            )
        );
        // Under the limit, nothing is cut.
        let tmp = tempfile::tempdir().expect("tempdir");
        let (git, commit) = fan_out(tmp.path(), 10, 2, 10);
        let listing = git
            .list(commit, "small", &Config::default(), None)
            .expect("listed");
        assert_eq!((listing.files.len(), listing.cut), (1000, None));
    }

    /// Tree objects are counted by their header's size before they are read, each distinct
    /// one once; a look-up past the entry limit stops.
    #[test]
    fn tree_reads_are_counted_once_and_bounded() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (git, commit) = fan_out(tmp.path(), 3, 1, 3);
        let root_id = git.repo.find_commit(commit).expect("commit").tree_id();
        let mut reads = TreeReads::new(&git.repo, 1 << 20).expect("reads");
        let root = reads.tree(root_id).expect("read").expect("within");
        let tally = Tally::default();
        let found = reads
            .entry_at(&root, "apps/d2/f1.yaml", &tally)
            .expect("within")
            .expect("found");
        assert_eq!(found.kind, Some(ObjectType::Blob));
        assert!(reads
            .entry_at(&root, "apps/d3", &tally)
            .expect("within")
            .is_none());
        // Root, apps and the shared leaf: three trees read, whatever was looked up.
        assert_eq!(reads.read.len(), 3);
        let mut small = TreeReads::new(&git.repo, 10).expect("reads");
        assert_eq!(
            small.tree(root_id).expect("read").err(),
            Some(Limit::TreeBytes(10))
        );
        let spent = Tally::default();
        spent.entries(walk::MAX_VISITED_ENTRIES);
        assert_eq!(
            reads.entry_at(&root, "apps", &spent).err(),
            Some(Limit::Entries(walk::MAX_VISITED_ENTRIES))
        );
    }

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
