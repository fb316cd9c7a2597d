//! Placements' files known by their document's position: a file's documents are placed many
//! times (a base under every overlay), and reading or hashing each placement's path costs a
//! cache miss per placement.

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
