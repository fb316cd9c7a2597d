//! Copies part of a revision (a chart folder, a values file) into a private folder, for a
//! program that needs files on disk (`helm template`). The copy is confined like the
//! working-tree walk: a symlink is followed only to a file inside the scanned folder, and
//! every blob's size is read from its header before it is inflated.

use std::path::Path;
use std::sync::Mutex;

use git2::{ObjectType, Oid, Tree};

use super::{blob_size, GitRepo, LinkError, TreeReads, MODE_SUBMODULE, MODE_SYMLINK};
use crate::documents::SkipReason;
use crate::walk::Tally;

/// Files copied per exported folder, and their total size.
pub const MAX_EXPORT_FILES: usize = 20_000;
pub const MAX_EXPORT_BYTES: u64 = 64 * 1024 * 1024;

/// The files of one revision of the scanned folder, to copy out on demand. Shareable between
/// threads (the repository handle is behind a lock).
pub struct RevisionFiles {
    git: Mutex<GitRepo>,
    commit: Oid,
    /// The largest blob copied (`--max-file-size`).
    cap: u64,
}

impl RevisionFiles {
    pub fn new(git: GitRepo, commit: Oid, cap: u64) -> Self {
        RevisionFiles {
            git: Mutex::new(git),
            commit,
            cap,
        }
    }

    /// Writes `rel` (a folder or a file, relative to the scanned folder) at the same relative
    /// path under `dest`. A path the revision does not have writes nothing; a symlink that
    /// leaves the scanned folder, a blob over the cap or too many files is an error, and the
    /// caller does not use the copy.
    pub fn export(&self, rel: &str, dest: &Path) -> Result<(), String> {
        let git = self
            .git
            .lock()
            .map_err(|_| "the git repository handle is unusable".to_owned())?;
        let fail =
            |e: git2::Error| format!("cannot read {rel} at {}: {}", self.commit, e.message());
        // Tree objects count against the chart's byte budget, each distinct one once.
        let mut budget = Budget {
            files: 0,
            bytes: 0,
            reads: TreeReads::new(&git.repo, MAX_EXPORT_BYTES).map_err(fail)?,
            tally: Tally::default(),
        };
        let root_id = git.repo.find_commit(self.commit).map_err(fail)?.tree_id();
        let root = budget
            .reads
            .tree(root_id)
            .map_err(fail)?
            .map_err(|_| too_big())?;
        let rel = rel.trim_matches('/');
        let full = format!("{}{rel}", git.prefix);
        let entry = if full.trim_end_matches('/').is_empty() {
            None
        } else {
            match budget
                .reads
                .entry_at(&root, full.trim_end_matches('/'), &budget.tally)
            {
                Ok(Some(entry)) => Some(entry),
                Ok(None) => return Ok(()),
                Err(_) => return Err(too_big()),
            }
        };
        let target = dest.join(rel);
        match entry {
            None => {
                let folder = root.clone();
                export_tree(&git, &root, &folder, rel, &target, self.cap, &mut budget)
            }
            Some(entry) if entry.kind == Some(ObjectType::Tree) => {
                let folder = budget
                    .reads
                    .tree(entry.id)
                    .map_err(fail)?
                    .map_err(|_| too_big())?;
                export_tree(&git, &root, &folder, rel, &target, self.cap, &mut budget)
            }
            Some(entry) => export_blob(
                &git,
                &root,
                rel,
                entry.id,
                entry.mode,
                &target,
                self.cap,
                &mut budget,
            ),
        }
    }
}

/// What one export has copied, and the tree objects it has read.
struct Budget<'r> {
    /// Files and folders copied.
    files: usize,
    /// Bytes of the files copied.
    bytes: u64,
    reads: TreeReads<'r>,
    /// Steps of symlink look-ups.
    tally: Tally,
}

/// The error of a chart over the export budget.
fn too_big() -> String {
    format!(
        "the chart has more than {MAX_EXPORT_FILES} files or {} MiB",
        MAX_EXPORT_BYTES / (1024 * 1024)
    )
}

fn export_tree<'r>(
    git: &'r GitRepo,
    root: &Tree<'r>,
    folder: &Tree<'r>,
    rel: &str,
    dest: &Path,
    cap: u64,
    budget: &mut Budget<'r>,
) -> Result<(), String> {
    // A folder counts as a file: a tree shared by many parents is copied once per parent.
    budget.files += 1;
    if budget.files > MAX_EXPORT_FILES {
        return Err(too_big());
    }
    std::fs::create_dir_all(dest).map_err(|e| format!("cannot write a temporary copy: {e}"))?;
    for entry in folder.iter() {
        let Ok(name) = entry.name() else { continue };
        // Names that could step out of `dest` are never in a valid tree; refuse them anyway.
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) {
            return Err(format!("{rel}: an entry has an unusable name"));
        }
        let child_rel = if rel.is_empty() {
            name.to_owned()
        } else {
            format!("{rel}/{name}")
        };
        let child_dest = dest.join(name);
        match entry.kind() {
            Some(ObjectType::Tree) => {
                let tree = budget
                    .reads
                    .tree(entry.id())
                    .map_err(|e| format!("cannot read {child_rel}: {}", e.message()))?
                    .map_err(|_| too_big())?;
                export_tree(git, root, &tree, &child_rel, &child_dest, cap, budget)?;
            }
            // Another repository: not entered, as the working-tree walk does not.
            _ if entry.filemode() == MODE_SUBMODULE => {}
            Some(ObjectType::Blob) => export_blob(
                git,
                root,
                &child_rel,
                entry.id(),
                entry.filemode(),
                &child_dest,
                cap,
                budget,
            )?,
            _ => {}
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn export_blob<'r>(
    git: &'r GitRepo,
    root: &Tree<'r>,
    rel: &str,
    oid: Oid,
    mode: i32,
    dest: &Path,
    cap: u64,
    budget: &mut Budget<'r>,
) -> Result<(), String> {
    let odb = git
        .repo
        .odb()
        .map_err(|e| format!("cannot read {rel}: {}", e.message()))?;
    let (oid, size) = if mode == MODE_SYMLINK {
        // Only a link to a file inside the scanned folder is copied, as its content.
        match git.resolve_link(&odb, root, rel, oid, &mut budget.reads, &budget.tally) {
            Ok(Ok(resolved)) => resolved,
            Ok(Err(SkipReason::SymlinkOutsideRepo)) => {
                return Err(format!(
                    "{rel} is a symlink that leaves the repository; the chart is not rendered"
                ))
            }
            Ok(Err(_)) => {
                return Err(format!(
                    "{rel} is a symlink to a folder or is broken; the chart is not rendered"
                ))
            }
            Err(LinkError::Blob(path, _, e)) => {
                return Err(format!("cannot read {path}: {}", e.message()))
            }
            Err(LinkError::Limit(_)) => return Err(too_big()),
        }
    } else {
        let size =
            blob_size(&odb, oid).map_err(|e| format!("cannot read {rel}: {}", e.message()))?;
        (oid, size)
    };
    budget.files += 1;
    budget.bytes += size;
    if size > cap {
        return Err(format!(
            "{rel} is {size} bytes, over the {cap}-byte cap; the chart is not rendered"
        ));
    }
    if budget.files > MAX_EXPORT_FILES || budget.bytes > MAX_EXPORT_BYTES {
        return Err(too_big());
    }
    let blob = git
        .repo
        .find_blob(oid)
        .map_err(|e| format!("cannot read {rel}: {}", e.message()))?;
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot write a temporary copy: {e}"))?;
    }
    std::fs::write(dest, blob.content()).map_err(|e| format!("cannot write a temporary copy: {e}"))
}
