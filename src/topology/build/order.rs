//! The order of the placements: by object file, line and cluster, sorted without a copy.

use crate::topology::placed_files::{FileSeen, PlacedFiles};
use crate::topology::Placement;

/// Sorts placements by (file, line, cluster), as [`crate::topology::Topology::placement_at`]
/// expects.
pub(super) fn sort_placements(placements: &mut [Placement]) {
    match placement_order(placements) {
        Some(keys) => sort_in_place(placements, keys),
        // Numbers a `u32` cannot hold (that many placements or files): no budget lets a
        // scan get here.
        None => placements.sort_by(|a, b| {
            (&a.object.file, a.object.line, a.cluster).cmp(&(
                &b.object.file,
                b.object.line,
                b.cluster,
            ))
        }),
    }
}

/// One element's sort key and its position, 16 bytes in all: the placements' keys are sorted
/// near the scan's peak memory, where each byte counts once per placement.
type Keyed = ([u32; 3], u32);

/// A stable sort that needs no copy of the elements: `slice::sort_by` borrows a buffer of half
/// the slice, megabytes for the placements of a large repository at the scan's peak memory.
/// Sorts (key, position) pairs instead (as stable as a stable sort, since positions differ,
/// and without looking keys up at each comparison), and moves each element once. `keyed[i]`
/// must be the key of `items[i]`, with position `i`.
fn sort_in_place<T>(items: &mut [T], mut keyed: Vec<Keyed>) {
    let n = items.len().min(keyed.len());
    keyed.truncate(n);
    rayon::slice::ParallelSliceMut::par_sort_unstable(&mut keyed[..]);
    // `items[j]` must become the element now at position `keyed[j].1`: follow each cycle
    // once, marking each place done by pointing it at itself.
    for start in 0..n {
        let mut j = start;
        while keyed[j].1 as usize != start {
            let next = keyed[j].1 as usize;
            items.swap(j, next);
            keyed[j].1 = j as u32;
            j = next;
        }
        keyed[j].1 = j as u32;
    }
}

/// The keys that order placements: (file, line, cluster) with each file by its rank among
/// the placements' files, and each placement's position. The placements of one file share its
/// path's allocation, so the paths are compared once per file instead of once per comparison.
/// `None` when positions or clusters do not fit in a `u32`.
fn placement_order<'p>(placements: &'p [Placement]) -> Option<Vec<Keyed>> {
    use rayon::prelude::*;
    u32::try_from(placements.len()).ok()?;
    // Each placement's file by a number first, its path's rank after. Reading every
    // placement's path cost more than the sort (a cache miss each): a placed document's file
    // is known by its position ([`PlacedFiles`]). Any other placement (a generated object, a
    // path in another allocation) is numbered on its own, with `OTHER` set.
    const OTHER: u32 = 1 << 31;
    let mut seen = PlacedFiles::default();
    let mut others: Vec<&'p str> = Vec::new();
    let mut keyed = Vec::with_capacity(placements.len());
    for (at, p) in placements.iter().enumerate() {
        let file = match seen.see(p) {
            FileSeen::First(file) | FileSeen::Again(file) => {
                u32::try_from(file).ok().filter(|f| f & OTHER == 0)?
            }
            FileSeen::Other => {
                others.push(&p.object.file);
                u32::try_from(others.len() - 1)
                    .ok()
                    .filter(|k| k & OTHER == 0)?
                    | OTHER
            }
        };
        let cluster = u32::try_from(p.cluster).ok()?;
        keyed.push(([file, p.object.line, cluster], at as u32));
    }
    // Every number with its path, by path: equal paths (a file and a copy kustomize's edits
    // made of it) share a rank.
    let mut by_path: Vec<(&str, u32)> = seen
        .paths()
        .map(|(file, path)| (path, file as u32))
        .chain((0u32..).zip(&others).map(|(k, path)| (*path, k | OTHER)))
        .collect();
    by_path.par_sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut doc_file_rank = vec![0u32; seen.len()];
    let mut other_rank = vec![0u32; others.len()];
    let mut rank = 0u32;
    for (i, &(path, number)) in by_path.iter().enumerate() {
        if i > 0 && by_path[i - 1].0 != path {
            rank += 1;
        }
        let slot = if number & OTHER == 0 {
            &mut doc_file_rank[number as usize]
        } else {
            &mut other_rank[(number & !OTHER) as usize]
        };
        *slot = rank;
    }
    keyed.par_iter_mut().for_each(|(key, _)| {
        key[0] = if key[0] & OTHER == 0 {
            doc_file_rank[key[0] as usize]
        } else {
            other_rank[(key[0] & !OTHER) as usize]
        };
    });
    Some(keyed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use crate::topology::{coverage, HashMap, Purpose, Topology};

    fn placed(file: &str, line: u32, cluster: usize, purpose: Purpose) -> Placement {
        let mut p = Placement::of_file(&Arc::from(file));
        p.object.line = line;
        p.cluster = cluster;
        p.purpose = purpose;
        p
    }

    #[test]
    fn placements_sort_by_path_whatever_allocation_holds_it() {
        // Each placement has its own allocation of its path: equal paths must share a rank.
        let mut placements = vec![
            placed("b/x.yaml", 3, 0, Purpose::IntegrationTest),
            placed("a/x.yaml", 9, 1, Purpose::Feature),
            placed("b/x.yaml", 1, 0, Purpose::Ci),
            placed("b/x.yaml", 3, 0, Purpose::LoadTest),
            placed("a/x.yaml", 9, 0, Purpose::SecurityTest),
        ];
        sort_placements(&mut placements);
        let order: Vec<(&str, u32, usize, Purpose)> = placements
            .iter()
            .map(|p| (&*p.object.file, p.object.line, p.cluster, p.purpose))
            .collect();
        assert_eq!(
            order,
            [
                ("a/x.yaml", 9, 0, Purpose::SecurityTest),
                ("a/x.yaml", 9, 1, Purpose::Feature),
                ("b/x.yaml", 1, 0, Purpose::Ci),
                ("b/x.yaml", 3, 0, Purpose::IntegrationTest),
                ("b/x.yaml", 3, 0, Purpose::LoadTest),
            ]
        );
    }

    #[test]
    fn placed_documents_sort_by_their_path_not_their_position() {
        use crate::topology::index::DocRef;
        let at = |file: &str, doc_file: usize, line: u32| {
            let mut p = placed(file, line, 0, Purpose::Ci);
            p.object.doc = Some(DocRef::new(doc_file, 0));
            p
        };
        // Positions in reverse order of the paths; the same position once with another path
        // (read by its text), and generated objects without a document among them.
        let mut placements = vec![
            at("c.yaml", 0, 2),
            at("a.yaml", 2, 5),
            placed("b.yaml", 1, 0, Purpose::Ci),
            at("c.yaml", 0, 1),
            at("0.yaml", 0, 9),
            at("a.yaml", 2, 3),
        ];
        sort_placements(&mut placements);
        let order: Vec<(&str, u32)> = placements
            .iter()
            .map(|p| (&*p.object.file, p.object.line))
            .collect();
        assert_eq!(
            order,
            [
                ("0.yaml", 9),
                ("a.yaml", 3),
                ("a.yaml", 5),
                ("b.yaml", 1),
                ("c.yaml", 1),
                ("c.yaml", 2)
            ]
        );
    }

    #[test]
    fn the_placement_at_a_line_is_the_first_of_that_object_on_that_cluster() {
        let mut placements = vec![
            placed("a.yaml", 1, 0, Purpose::IntegrationTest),
            placed("a.yaml", 4, 1, Purpose::Feature),
            placed("a.yaml", 4, 1, Purpose::LoadTest),
            placed("b.yaml", 4, 0, Purpose::Ci),
        ];
        sort_placements(&mut placements);
        let topology = Topology {
            clusters: Vec::new(),
            placements,
            unresolved: Vec::new(),
            manifests: 0,
            object_coverage: coverage::Coverage::default(),
            rendered_from: 0,
            render_requests: BTreeSet::new(),
            rendered_values: HashMap::default(),
            cuts: Vec::new(),
            ..Topology::default()
        };
        let purpose = |file, line, cluster| {
            topology
                .placement_at(file, line, cluster)
                .map(|p| p.purpose)
        };
        assert_eq!(purpose("a.yaml", 4, 1), Some(Purpose::Feature));
        assert_eq!(purpose("b.yaml", 4, 0), Some(Purpose::Ci));
        assert_eq!(purpose("a.yaml", 1, 0), Some(Purpose::IntegrationTest));
        assert_eq!(purpose("a.yaml", 4, 0), None);
        assert_eq!(purpose("a.yaml", 2, 0), None);
        assert_eq!(purpose("c.yaml", 1, 0), None);
    }

    #[test]
    fn sorting_in_place_is_stable() {
        let mut items: Vec<(u8, usize)> = [3, 1, 2, 1, 3, 0, 2, 1]
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k, i))
            .collect();
        let mut expected = items.clone();
        expected.sort_by_key(|&(k, _)| k);
        let keyed: Vec<Keyed> = (0..)
            .zip(&items)
            .map(|(at, &(k, _))| ([u32::from(k), 0, 0], at))
            .collect();
        sort_in_place(&mut items, keyed);
        assert_eq!(items, expected);
        let mut empty: Vec<u8> = Vec::new();
        sort_in_place(&mut empty, Vec::new());
        assert!(empty.is_empty());
    }
}
