//! Lookups over the parsed repository: files by path, files by directory, and path joining
//! that never leaves the repository.

use std::collections::BTreeSet;

use super::{HashMap, HashSet};

use crate::documents::{Document, FileKind, SourceFile};

/// A document, by position: `files[file].documents[doc]`. 8 bytes: placements and the index
/// hold one for each object (a scan stops far below 2^32 files or documents a file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocRef {
    file: u32,
    doc: u32,
}

impl DocRef {
    pub fn new(file: usize, doc: usize) -> Self {
        DocRef {
            file: u32::try_from(file).unwrap_or(u32::MAX),
            doc: u32::try_from(doc).unwrap_or(u32::MAX),
        }
    }

    /// The file's position.
    pub fn file(self) -> usize {
        self.file as usize
    }

    /// The document's position in its file.
    pub fn doc(self) -> usize {
        self.doc as usize
    }
}

pub struct RepoIndex<'a> {
    /// The repository's files. Rendered files (Helm output) follow them in `all`; only
    /// references reach those.
    pub files: &'a [SourceFile],
    all: &'a [SourceFile],
    by_path: HashMap<&'a str, usize>,
    /// Directory ("" for the root) → files directly in it.
    by_dir: HashMap<&'a str, Vec<usize>>,
    /// Directory → its subdirectories that hold YAML somewhere below (parts of the files'
    /// paths, not copies).
    subdirs: HashMap<&'a str, BTreeSet<&'a str>>,
    /// Files some kustomization uses as a patch: partial objects, never deployers.
    patch_files: HashSet<String>,
    /// Documents by `kind`, for the few kinds the topology looks up by kind.
    by_kind: HashMap<String, Vec<DocRef>>,
    /// Documents kustomize edits changed (JSON patches, replacements), one file each, after
    /// `all` in `DocRef` order; reached only by reference, like rendered files.
    changed: Vec<SourceFile>,
    /// The document each changed one was made from.
    changed_origins: Vec<DocRef>,
    /// Documents kustomize never outputs (`config.kubernetes.io/local-config: "true"`).
    local_config: HashSet<DocRef>,
}

/// The annotation of objects that kustomize reads (for replacements) but never outputs.
pub const LOCAL_CONFIG: &str = "config.kubernetes.io/local-config";

/// Whether kustomize leaves this document out of what it outputs.
pub fn is_local_config(d: &Document) -> bool {
    d.annotations.get(LOCAL_CONFIG).is_some_and(|v| v == "true")
}

/// The parent directory of a repository-relative path ("" at the root).
pub fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// The last segment of a path.
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Whether the file name of `path` is `name`: `basename(path) == name` without looking for
/// the last `/` (asked of every file of the repository by several families).
pub fn is_named(path: &str, name: &str) -> bool {
    path.strip_suffix(name)
        .is_some_and(|before| before.is_empty() || before.ends_with('/'))
}

/// Joins `rel` onto directory `dir`, resolving `.` and `..`. `None` when the result would
/// leave the repository. A leading `/` or `./` in `rel` is taken as repository-relative only
/// when `from_root` is set (Flux and Argo paths), else relative to `dir`.
pub fn join(dir: &str, rel: &str, from_root: bool) -> Option<String> {
    // Written into one string (every include of every kustomization is joined): `..` cuts
    // the last segment off, and there is none to cut above the root.
    fn push(path: &mut String, segment: &str) {
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(segment);
    }
    let mut path = String::with_capacity(dir.len() + rel.len() + 1);
    if !from_root {
        for segment in dir.split('/').filter(|s| !s.is_empty()) {
            push(&mut path, segment);
        }
    }
    for segment in rel.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if path.is_empty() {
                    return None;
                }
                path.truncate(path.rfind('/').unwrap_or(0));
            }
            s => push(&mut path, s),
        }
    }
    Some(path)
}

/// The files the kustomizations among `files` name as patches (`patchesStrategicMerge`,
/// `patches[].path`): partial objects, never deployers.
pub fn patch_files(files: &[SourceFile]) -> HashSet<String> {
    let mut patch_files = HashSet::default();
    for_each_patch(files, |dir, path| {
        patch_files.extend(join(dir, path, false))
    });
    patch_files
}

/// Calls `found(folder, path)` for each patch file a kustomization among `files` names, with
/// the kustomization's folder and the path as written.
pub fn for_each_patch<'f>(files: &'f [SourceFile], mut found: impl FnMut(&'f str, &'f str)) {
    use crate::documents::Node;
    for f in files.iter().filter(|f| f.kind == FileKind::Kustomization) {
        let dir = parent(&f.path);
        for doc in f.documents.iter() {
            let strategic = doc.root.get("patchesStrategicMerge").and_then(Node::as_seq);
            for p in strategic.unwrap_or(&[]).iter().filter_map(Node::as_str) {
                found(dir, p);
            }
            let patches = doc.root.get("patches").and_then(Node::as_seq);
            for p in patches.unwrap_or(&[]) {
                if let Some(path) = p.get("path").and_then(Node::as_str) {
                    found(dir, path);
                }
            }
        }
    }
}

impl<'a> RepoIndex<'a> {
    pub fn new(files: &'a [SourceFile]) -> Self {
        Self::with_rendered(files, files.len())
    }

    /// An index of `all[..first_rendered]`; later files are rendered output, reached only by
    /// reference ([`RepoIndex::doc`]), never by path, folder or kind.
    pub fn with_rendered(all: &'a [SourceFile], first_rendered: usize) -> Self {
        let files = &all[..first_rendered.min(all.len())];
        // The folders and the documents are indexed side by side, each on a core.
        let ((by_path, by_dir, subdirs), (patch_files, by_kind, local_config)) =
            rayon::join(|| Self::folders(files), || Self::documents(files, all));
        RepoIndex {
            files,
            all,
            by_path,
            by_dir,
            subdirs,
            patch_files,
            by_kind,
            changed: Vec::new(),
            changed_origins: Vec::new(),
            local_config,
        }
    }

    /// Adds the documents kustomize edits changed ([`crate::topology::kustomize::prepare_edits`]):
    /// `DocRef`s from [`RepoIndex::first_changed`] on reach them.
    pub fn add_changed(&mut self, files: Vec<SourceFile>, origins: Vec<DocRef>) {
        let first = self.first_changed();
        for (i, f) in files.iter().enumerate() {
            if f.documents.iter().any(is_local_config) {
                self.local_config.insert(DocRef::new(first + i, 0));
            }
        }
        self.changed = files;
        self.changed_origins = origins;
    }

    /// `DocRef::file` of the first changed document: the number of files, rendered included.
    pub fn first_changed(&self) -> usize {
        self.all.len()
    }

    /// The document a changed one was made from; any other is its own.
    pub fn original(&self, r: DocRef) -> DocRef {
        r.file()
            .checked_sub(self.all.len())
            .and_then(|i| self.changed_origins.get(i))
            .copied()
            .unwrap_or(r)
    }

    /// The changed documents, for the topology to keep (the index cannot reach them after).
    pub fn take_changed(&mut self) -> Vec<SourceFile> {
        std::mem::take(&mut self.changed)
    }

    /// The document each changed one was made from, in their order.
    pub fn changed_origins(&self) -> &[DocRef] {
        &self.changed_origins
    }

    /// Whether kustomize leaves the document `r` out of what it outputs.
    pub fn is_local_config(&self, r: DocRef) -> bool {
        !self.local_config.is_empty() && self.local_config.contains(&r)
    }

    /// Each file's position by path, the files of each folder, the subfolders of each folder.
    #[allow(clippy::type_complexity)]
    fn folders(
        files: &'a [SourceFile],
    ) -> (
        HashMap<&'a str, usize>,
        HashMap<&'a str, Vec<usize>>,
        HashMap<&'a str, BTreeSet<&'a str>>,
    ) {
        let mut by_path = HashMap::default();
        by_path.reserve(files.len());
        let mut by_dir: HashMap<&'a str, Vec<usize>> = HashMap::default();
        let mut subdirs: HashMap<&'a str, BTreeSet<&'a str>> = HashMap::default();
        for (i, f) in files.iter().enumerate() {
            by_path.insert(&*f.path, i);
            let dir = parent(&f.path);
            by_dir.entry(dir).or_default().push(i);
            // Register every ancestor directory with its parent.
            let mut child = dir;
            while !child.is_empty() {
                let up = parent(child);
                if !subdirs.entry(up).or_default().insert(child) {
                    break;
                }
                child = up;
            }
        }
        // The index lives as long as the topology build: no room to spare in its lists.
        for in_dir in by_dir.values_mut() {
            in_dir.shrink_to_fit();
        }
        (by_path, by_dir, subdirs)
    }

    /// The files kustomizations name as patches, the documents of each kind (of the
    /// repository's files), and the documents kustomize never outputs (of all of `all`).
    #[allow(clippy::type_complexity)]
    fn documents(
        files: &[SourceFile],
        all: &[SourceFile],
    ) -> (
        HashSet<String>,
        HashMap<String, Vec<DocRef>>,
        HashSet<DocRef>,
    ) {
        let mut local_config = HashSet::default();
        for (file, f) in all.iter().enumerate() {
            for (doc, d) in f.documents.iter().enumerate() {
                if !d.annotations.is_empty() && is_local_config(d) {
                    local_config.insert(DocRef::new(file, doc));
                }
            }
        }
        let patch_files = patch_files(files);
        let mut by_kind: HashMap<String, Vec<DocRef>> = HashMap::default();
        for (file, f) in files.iter().enumerate() {
            for (doc, d) in f.documents.iter().enumerate() {
                if let Some(kind) = &d.id.kind {
                    let at = DocRef::new(file, doc);
                    match by_kind.get_mut(kind.as_str()) {
                        Some(docs) => docs.push(at),
                        None => {
                            by_kind.insert(kind.to_string(), vec![at]);
                        }
                    }
                }
            }
        }
        (patch_files, by_kind, local_config)
    }

    /// Whether a kustomization uses this file as a patch.
    pub fn is_patch_file(&self, path: &str) -> bool {
        self.patch_files.contains(path)
    }

    pub fn file(&self, path: &str) -> Option<usize> {
        self.by_path.get(path).copied()
    }

    pub fn is_dir(&self, path: &str) -> bool {
        self.by_dir.contains_key(path) || self.subdirs.contains_key(path)
    }

    pub fn files_in(&self, dir: &str) -> &[usize] {
        self.by_dir.get(dir).map_or(&[], Vec::as_slice)
    }

    pub fn subdirs_of(&self, dir: &str) -> impl Iterator<Item = &str> {
        self.subdirs.get(dir).into_iter().flatten().copied()
    }

    /// The kustomization file of a directory, if it has one.
    pub fn kustomization_in(&self, dir: &str) -> Option<usize> {
        self.files_in(dir)
            .iter()
            .copied()
            .find(|&i| self.files[i].kind == FileKind::Kustomization)
    }

    pub fn doc(&self, r: DocRef) -> &Document {
        match r.file().checked_sub(self.all.len()) {
            Some(i) => &self.changed[i].documents[r.doc()],
            None => &self.all[r.file()].documents[r.doc()],
        }
    }

    /// Kubernetes objects of a file, as references.
    pub fn manifests_of(&self, file: usize) -> impl Iterator<Item = DocRef> + '_ {
        self.files[file]
            .documents
            .iter()
            .enumerate()
            .filter(|(_, d)| d.is_manifest())
            .map(move |(doc, _)| DocRef::new(file, doc))
    }

    /// Documents of one `kind`, with their references.
    pub fn of_kind<'s>(&'s self, kind: &str) -> impl Iterator<Item = (DocRef, &'a Document)> + 's {
        self.by_kind
            .get(kind)
            .into_iter()
            .flatten()
            .map(move |r| (*r, &self.all[r.file()].documents[r.doc()]))
    }

    /// Every document of every file, with its reference.
    /// Every document of the repository's own files and of rendered output (Helm): what
    /// coverage counts as objects.
    /// Every document's position in one flat list (rendered files' too), in the order of
    /// [`RepoIndex::all_docs_with_rendered`]: `starts[file] + doc`. Sets of documents can then be
    /// flags, not hashed references.
    pub fn document_starts(&self) -> (Vec<usize>, usize) {
        let mut next = 0;
        let starts = self
            .all
            .iter()
            .map(|f| {
                let start = next;
                next += f.documents.len();
                start
            })
            .collect();
        (starts, next)
    }

    pub fn all_docs_with_rendered(&self) -> impl Iterator<Item = (DocRef, &'a Document)> + 'a {
        self.all.iter().enumerate().flat_map(|(file, f)| {
            f.documents
                .iter()
                .enumerate()
                .map(move |(doc, d)| (DocRef::new(file, doc), d))
        })
    }

    pub fn all_docs(&self) -> impl Iterator<Item = (DocRef, &'a Document)> + 'a {
        self.files.iter().enumerate().flat_map(|(file, f)| {
            f.documents
                .iter()
                .enumerate()
                .map(move |(doc, d)| (DocRef::new(file, doc), d))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_stay_inside() {
        assert_eq!(
            join("apps/x/overlays/prod", "../../base", false).as_deref(),
            Some("apps/x/base")
        );
        assert_eq!(
            join("apps", "./clusters/prod", true).as_deref(),
            Some("clusters/prod")
        );
        assert_eq!(join("a", "../../etc", false), None);
        assert_eq!(join("", ".", true).as_deref(), Some(""));
        // Empty and `.` segments vanish; `..` may climb back to the root, not above it.
        assert_eq!(join("/a//b/", "c/./d//", false).as_deref(), Some("a/b/c/d"));
        assert_eq!(join("a/b", "../..", false).as_deref(), Some(""));
        assert_eq!(join("a/b", "../../x/../y", false).as_deref(), Some("y"));
        assert_eq!(join("a/b", "../../..", false), None);
        assert_eq!(join("a/b", "../c", true), None);
        assert_eq!(parent("a/b/c.yaml"), "a/b");
        assert_eq!(parent("c.yaml"), "");
        assert!(is_named("a/b/Chart.yaml", "Chart.yaml"));
        assert!(is_named("Chart.yaml", "Chart.yaml"));
        assert!(!is_named("a/MyChart.yaml", "Chart.yaml"));
        assert!(!is_named("Chart.yaml/x", "Chart.yaml"));
    }
}
