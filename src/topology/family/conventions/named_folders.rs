//! Folders named after a known cluster: `namespaces/<cluster>/<namespace>/`, where `<cluster>`
//! is a cluster's name, an alias, or its API server's host (a pipeline applies each cluster's
//! folder to it). What such a folder holds, and no deployer reached, lands on that cluster,
//! with the inference in the evidence.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::evidence::{ClusterInference, Hop, InferredClusterHop};
use crate::location::Location;
use crate::topology::build::Worklist;
use crate::topology::index;
use crate::topology::placed_files::PlacedPaths;
use crate::topology::DeployerKind;

/// The folder that holds one folder per cluster.
const PER_CLUSTER: &str = "namespaces";

/// Delivers each `namespaces/<cluster>/` folder no deployer reached to the known cluster it
/// is named after. Returns the files placed so far, for the conventions that follow.
pub(super) fn deliver(w: &mut Worklist<'_>, mut placed_files: PlacedPaths) -> PlacedPaths {
    let placed_before = w.placements().len();
    let mut found: BTreeMap<String, (usize, String, ClusterInference)> = BTreeMap::new();
    for (i, f) in w.index().files.iter().enumerate() {
        if placed_files.contains(i) || !f.documents.iter().any(|d| d.is_manifest()) {
            continue;
        }
        let segments: Vec<&str> = f.path.split('/').collect();
        // `namespaces/<cluster>/<namespace>/<file>`: two folders below `namespaces`.
        let Some(i) = segments
            .iter()
            .position(|s| *s == PER_CLUSTER)
            .filter(|i| i + 3 < segments.len())
        else {
            continue;
        };
        let dir = segments[..i + 2].join("/");
        if found.contains_key(&dir) || w.reached(&dir) {
            continue;
        }
        let folder = segments[i + 1];
        let inventory = w.inventory();
        let known = inventory
            .find(folder)
            .map(|c| (c, ClusterInference::Name))
            .or_else(|| {
                inventory
                    .find_host(folder)
                    .map(|c| (c, ClusterInference::Host))
            });
        if let Some((cluster, by)) = known {
            let name = inventory.clusters[cluster].name.clone();
            found.insert(dir, (cluster, name, by));
        }
    }
    for (dir, (cluster, name, by)) in found {
        let location = match first_file_under(w, &dir) {
            Some(file) => Location::new(&file, 1),
            None => Location::new(&Arc::from(dir.as_str()), 1),
        };
        let why = Hop::InferredCluster(Box::new(InferredClusterHop {
            dir: dir.as_str().into(),
            cluster: name.as_str().into(),
            by,
        }));
        let delivery =
            super::folder_delivery(DeployerKind::ClusterTree, &dir, cluster, location, why);
        super::deliver_folder_tree(w, delivery);
    }
    placed_files.add(w.index(), &w.placements()[placed_before..]);
    placed_files
}

/// The first file below `dir`, in path order, that evidence points at for the folder.
fn first_file_under(w: &Worklist<'_>, dir: &str) -> Option<Arc<str>> {
    let prefix = format!("{dir}/");
    w.index()
        .files
        .iter()
        .filter(|f| f.path.starts_with(&prefix))
        .map(|f| Arc::clone(&f.path))
        .min_by(|a, b| index::parent(a).cmp(index::parent(b)).then(a.cmp(b)))
}
