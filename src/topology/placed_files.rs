//! Placements' files known by their document's position: a file's documents are placed many
//! times (a base under every overlay), and reading or hashing each placement's path costs a
//! cache miss per placement.

use crate::topology::index::RepoIndex;
use crate::topology::Placement;

/// What [`PlacedFiles::see`] knows of a placement's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileSeen {
    /// The first placement seen of a document of file `.0`: its path is now that file's.
    First(usize),
    /// A placement of file `.0` whose path is the allocation first seen there.
    Again(usize),
    /// A generated object, or a path in another allocation than the one first seen at its
    /// document's position: known only by its text.
    Other,
}

/// The path first seen at each document position. A path is trusted by its allocation:
/// the placements of one document share their file's path.
#[derive(Debug, Default)]
pub(crate) struct PlacedFiles<'p> {
    first: Vec<Option<&'p str>>,
}

impl<'p> PlacedFiles<'p> {
    pub(crate) fn see(&mut self, p: &'p Placement) -> FileSeen {
        let Some(doc) = p.object.doc else {
            return FileSeen::Other;
        };
        if self.first.len() <= doc.file() {
            self.first.resize(doc.file() + 1, None);
        }
        let path: &'p str = &p.object.file;
        match self.first[doc.file()] {
            None => {
                self.first[doc.file()] = Some(path);
                FileSeen::First(doc.file())
            }
            Some(known) if known.as_ptr() == path.as_ptr() => FileSeen::Again(doc.file()),
            Some(_) => FileSeen::Other,
        }
    }

    /// Every file seen, with its path, by position.
    pub(crate) fn paths(&self) -> impl Iterator<Item = (usize, &'p str)> + '_ {
        self.first
            .iter()
            .enumerate()
            .filter_map(|(file, path)| Some((file, (*path)?)))
    }

    /// One past the largest file position seen.
    pub(crate) fn len(&self) -> usize {
        self.first.len()
    }
}

/// The repository's files that some placement put on a cluster, by their position in the
/// index. The folder conventions ask it of every file of the repository, and a set of paths
/// hashed each file's path to answer (30 ms at 5,000 apps).
#[derive(Debug)]
pub(crate) struct PlacedPaths {
    placed: Vec<bool>,
}

impl PlacedPaths {
    /// The files of `index` that `placements` put somewhere.
    pub(crate) fn of(index: &RepoIndex<'_>, placements: &[Placement]) -> Self {
        let mut out = PlacedPaths {
            placed: vec![false; index.files.len()],
        };
        out.add(index, placements);
        out
    }

    /// Adds the files of `placements`. A placement whose path is not its document's file's
    /// (a generated object, a rendered or edited document) is found by its path.
    pub(crate) fn add(&mut self, index: &RepoIndex<'_>, placements: &[Placement]) {
        let mut seen = PlacedFiles::default();
        // The generated objects of one kustomization follow each other and share its path.
        let mut last_other: Option<(&str, Option<usize>)> = None;
        for p in placements {
            let position = match seen.see(p) {
                FileSeen::Again(_) => continue,
                FileSeen::First(file)
                    if index
                        .files
                        .get(file)
                        .is_some_and(|f| *f.path == *p.object.file) =>
                {
                    Some(file)
                }
                FileSeen::First(_) | FileSeen::Other => {
                    let path: &str = &p.object.file;
                    match last_other {
                        Some((last, found)) if std::ptr::eq(last, path) => found,
                        _ => {
                            let found = index.file(path);
                            last_other = Some((path, found));
                            found
                        }
                    }
                }
            };
            if let Some(slot) = position.and_then(|i| self.placed.get_mut(i)) {
                *slot = true;
            }
        }
    }

    /// Whether the file at position `file` of the index was placed.
    pub(crate) fn contains(&self, file: usize) -> bool {
        self.placed.get(file).copied().unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::documents::{load, Loaded, SourceFile};
    use crate::topology::index::DocRef;

    fn file(path: &str) -> SourceFile {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n";
        match load(&Arc::from(path), text.as_bytes(), None) {
            Loaded::File(f) => f,
            Loaded::Skipped(r) => panic!("{path} skipped: {r}"),
        }
    }

    fn placed(path: &Arc<str>, doc: Option<usize>) -> Placement {
        let mut p = Placement::of_file(path);
        p.object.doc = doc.map(|file| DocRef::new(file, 0));
        p
    }

    #[test]
    fn a_file_is_placed_when_any_placement_has_its_path() {
        let files = [
            file("a.yaml"),
            file("b.yaml"),
            file("c.yaml"),
            file("d.yaml"),
        ];
        let index = RepoIndex::new(&files);
        // a.yaml by its document (its own path allocation and a copy of the text); c.yaml
        // only as a generated object's path; b.yaml's document under another path (an edited
        // document keeps the path it was made from: d.yaml); a path outside the index.
        let a: Arc<str> = Arc::clone(&files[0].path);
        let placements = [
            placed(&a, Some(0)),
            placed(&Arc::from("a.yaml"), Some(0)),
            placed(&Arc::from("c.yaml"), None),
            placed(&Arc::from("d.yaml"), Some(1)),
            placed(&Arc::from("rendered/x.yaml"), Some(9)),
        ];
        let mut paths = PlacedPaths::of(&index, &placements[..2]);
        let placed_now = |p: &PlacedPaths| (0..5).map(|i| p.contains(i)).collect::<Vec<_>>();
        assert_eq!(placed_now(&paths), [true, false, false, false, false]);
        paths.add(&index, &placements[2..]);
        assert_eq!(placed_now(&paths), [true, false, true, true, false]);
    }
}
