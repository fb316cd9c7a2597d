//! The order of the placements: by object file, line and cluster, sorted without a copy.

use std::sync::Arc;

use crate::topology::{HashMap, Placement};

/// Sorts placements by (file, line, cluster), as [`crate::topology::Topology::placement_at`]
/// expects.
pub(super) fn sort_placements(placements: &mut [Placement]) {
    let keys = placement_order(placements);
    sort_in_place(placements, &keys);
}

/// A stable sort that needs no copy of the elements: `slice::sort_by` borrows a buffer of half
/// the slice, megabytes for the placements of a large repository at the scan's peak memory.
/// Sorts (key, position) pairs instead, side by side in one list (as stable as a stable sort,
/// since positions differ, and without looking keys up at each comparison), and moves each
/// element once.
fn sort_in_place<T, K: Ord + Copy>(items: &mut [T], keys: &[K]) {
    let n = items.len().min(keys.len());
    let mut pairs: Vec<(K, usize)> = keys[..n].iter().copied().zip(0..).collect();
    pairs.sort_unstable();
    let mut order: Vec<usize> = pairs.into_iter().map(|(_, at)| at).collect();
    // `items[j]` must become the element now at `order[j]`: follow each cycle once.
    for start in 0..n {
        let mut j = start;
        while order[j] != start {
            let next = order[j];
            items.swap(j, next);
            order[j] = j;
            j = next;
        }
        order[j] = j;
    }
}

/// The key that orders placements: (file, line, cluster), with each file by its rank among
/// the placements' files. The placements of one file share its path's allocation, so the
/// paths are compared once per file instead of once per comparison.
fn placement_order<'p>(placements: &'p [Placement]) -> Vec<(u32, u32, usize)> {
    // Each placement's file as a number. Reading every placement's path cost more than the
    // sort (a cache miss each): a placed document's file is known by its position instead,
    // and its path read once per file. The path is checked by address, and a placement
    // whose path is another allocation is looked up by its text.
    let mut files: Vec<&'p str> = Vec::new();
    let mut by_text: HashMap<&'p str, u32> = HashMap::default();
    let mut by_doc_file: Vec<Option<(*const u8, u32)>> = Vec::new();
    let mut id_of = |file: &'p Arc<str>| -> u32 {
        *by_text.entry(file).or_insert_with(|| {
            files.push(file);
            (files.len() - 1) as u32
        })
    };
    let file_of: Vec<u32> = placements
        .iter()
        .map(|p| {
            let ptr = p.object.file.as_ptr();
            let Some(doc) = p.object.doc else {
                return id_of(&p.object.file);
            };
            if by_doc_file.len() <= doc.file {
                by_doc_file.resize(doc.file + 1, None);
            }
            match by_doc_file[doc.file] {
                Some((known, id)) if known == ptr => id,
                Some(_) => id_of(&p.object.file),
                None => {
                    let id = id_of(&p.object.file);
                    by_doc_file[doc.file] = Some((ptr, id));
                    id
                }
            }
        })
        .collect();
    let mut by_name: Vec<usize> = (0..files.len()).collect();
    by_name.sort_unstable_by(|&a, &b| files[a].cmp(files[b]));
    // The files are distinct: a file's rank is its place among them.
    let mut rank = vec![0u32; files.len()];
    for (place, &file) in by_name.iter().enumerate() {
        rank[file] = place as u32;
    }
    placements
        .iter()
        .zip(file_of)
        .map(|(p, file)| (rank[file as usize], p.object.line, p.cluster))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    use crate::topology::{coverage, Env, EvidenceChain, PlacedObject, Purpose, Topology};

    fn placed(file: &str, line: u32, cluster: usize, purpose: Purpose) -> Placement {
        Placement {
            object: PlacedObject {
                file: Arc::from(file),
                line,
                doc: None,
                kind: "ConfigMap".into(),
                name: None,
                namespace: None,
                images: Vec::new(),
            },
            cluster,
            cluster_environment: Env::Unknown,
            workload_class: Env::Unknown,
            class_reason: Arc::from(""),
            class_level: None,
            deployer_class: Env::Unknown,
            evidence: EvidenceChain::from(Vec::new()),
            deployer: None,
            patch: false,
            renders_chart: false,
            opaque: false,
            purpose,
            purpose_reason: Arc::from(""),
        }
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
        let keys = placement_order(&placements);
        sort_in_place(&mut placements, &keys);
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
            p.object.doc = Some(DocRef {
                file: doc_file,
                doc: 0,
            });
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
        let keys = placement_order(&placements);
        sort_in_place(&mut placements, &keys);
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
        let keys = placement_order(&placements);
        sort_in_place(&mut placements, &keys);
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
        let keys: Vec<u8> = items.iter().map(|&(k, _)| k).collect();
        sort_in_place(&mut items, &keys);
        assert_eq!(items, expected);
        let mut empty: Vec<u8> = Vec::new();
        sort_in_place(&mut empty, &Vec::<u8>::new());
        assert!(empty.is_empty());
    }
}
