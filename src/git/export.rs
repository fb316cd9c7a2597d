//! Copies part of a revision (a chart folder, a values file) into a private folder, for a
//! program that needs files on disk (`helm template`). The copy is confined like the
//! working-tree walk: a symlink is followed only to a file inside the scanned folder, and
//! every blob's size is read from its header before it is inflated.

use std::path::Path;
use std::sync::Mutex;

use git2::{ObjectType, Oid, Tree};

use super::{blob_size, GitRepo, MODE_SUBMODULE, MODE_SYMLINK};
use crate::documents::SkipReason;

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
        let root = git
            .repo
            .find_commit(self.commit)
            .map_err(fail)?
            .tree()
            .map_err(fail)?;
        let rel = rel.trim_matches('/');
        let full = format!("{}{rel}", git.prefix);
        let entry = if full.trim_end_matches('/').is_empty() {
            None
        } else {
            match root.get_path(Path::new(full.trim_end_matches('/'))) {
                Ok(entry) => Some(entry),
                Err(_) => return Ok(()),
            }
        };
        let mut budget = Budget::default();
        let target = dest.join(rel);
        match entry {
            None => {
                let folder = root.clone();
                export_tree(&git, &root, &folder, rel, &target, self.cap, &mut budget)
            }
            Some(entry) if entry.kind() == Some(ObjectType::Tree) => {
                let folder = git.repo.find_tree(entry.id()).map_err(fail)?;
                export_tree(&git, &root, &folder, rel, &target, self.cap, &mut budget)
            }
            Some(entry) => export_blob(
                &git,
                &root,
                rel,
                entry.id(),
                entry.filemode(),
                &target,
                self.cap,
                &mut budget,
            ),
        }
    }
}

#[derive(Default)]
struct Budget {
    files: usize,
    bytes: u64,
}

fn export_tree(
    git: &GitRepo,
    root: &Tree,
    folder: &Tree,
    rel: &str,
    dest: &Path,
    cap: u64,
    budget: &mut Budget,
) -> Result<(), String> {
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
                let tree = git
                    .repo
                    .find_tree(entry.id())
                    .map_err(|e| format!("cannot read {child_rel}: {}", e.message()))?;
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
fn export_blob(
    git: &GitRepo,
    root: &Tree,
    rel: &str,
    oid: Oid,
    mode: i32,
    dest: &Path,
    cap: u64,
    budget: &mut Budget,
) -> Result<(), String> {
    let odb = git
        .repo
        .odb()
        .map_err(|e| format!("cannot read {rel}: {}", e.message()))?;
    let (oid, size) = if mode == MODE_SYMLINK {
        // Only a link to a file inside the scanned folder is copied, as its content.
        match git.resolve_link(&odb, root, rel, oid) {
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
            Err((path, _, e)) => return Err(format!("cannot read {path}: {}", e.message())),
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
        return Err(format!(
            "the chart has more than {MAX_EXPORT_FILES} files or {} MiB",
            MAX_EXPORT_BYTES / (1024 * 1024)
        ));
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
