//! The placement index: one placement per object and cluster.

use crate::topology::expand::kustomize::ItemSource;
use crate::topology::Placement;

/// What makes a placement one: an object (its source and final identity) on one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct PlacementKey<'k> {
    pub(super) source: &'k ItemSource,
    pub(super) cluster: usize,
    pub(super) kind: &'k str,
    pub(super) name: Option<&'k str>,
    pub(super) namespace: Option<&'k str>,
}

/// The placement of each object and cluster, by position. It keeps positions only: a key's
/// parts are read back from the placement (and the source it came from), not stored a second
/// time, which at 100,000 placements is megabytes instead of tens of megabytes.
#[derive(Default)]
pub(super) struct PlacedIndex {
    positions: hashbrown::HashTable<usize>,
    /// The source of each placement, by position: the one part of the key a placement lacks.
    sources: Vec<ItemSource>,
    hasher: foldhash::fast::RandomState,
}

impl PlacedIndex {
    /// Room for `n` placements: growing the table rehashes every placement made so far.
    pub(super) fn with_capacity(n: usize) -> Self {
        PlacedIndex {
            positions: hashbrown::HashTable::with_capacity(n),
            sources: Vec::with_capacity(n),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    pub(super) fn find(&self, placements: &[Placement], key: &PlacementKey<'_>) -> Option<usize> {
        let hash = std::hash::BuildHasher::hash_one(&self.hasher, key);
        self.positions
            .find(hash, |&at| {
                Self::key_of(placements, &self.sources, at) == *key
            })
            .copied()
    }

    /// Records `placements[at]`, the newest placement, which came from `source`.
    pub(super) fn record(&mut self, placements: &[Placement], at: usize, source: ItemSource) {
        debug_assert_eq!(at, self.sources.len());
        self.sources.push(source);
        let key = Self::key_of(placements, &self.sources, at);
        let hash = std::hash::BuildHasher::hash_one(&self.hasher, key);
        let Self {
            positions,
            sources,
            hasher,
        } = self;
        let rehash = |&i: &usize| {
            std::hash::BuildHasher::hash_one(&*hasher, Self::key_of(placements, sources, i))
        };
        positions.insert_unique(hash, at, rehash);
    }

    fn key_of<'p>(
        placements: &'p [Placement],
        sources: &'p [ItemSource],
        at: usize,
    ) -> PlacementKey<'p> {
        let p = &placements[at];
        PlacementKey {
            source: &sources[at],
            cluster: p.cluster,
            kind: &p.object.kind,
            name: p.object.name.as_deref(),
            namespace: p.object.namespace.as_deref(),
        }
    }
}
