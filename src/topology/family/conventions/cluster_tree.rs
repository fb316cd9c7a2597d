//! The `clusters/<name>/` convention (Flux's layout): each such tree is a cluster, and what
//! it holds is delivered to that cluster unless a Flux object outside it points into it (a
//! hub deploying to spokes).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::evidence::{ClusterTreeHop, Hop};
use crate::location::Location;
use crate::topology::build::Worklist;
use crate::topology::family::{flux, Family, Stage};
use crate::topology::index::{self, RepoIndex};
use crate::topology::inventory::clusters::{cluster_tree_of, Inventory};
use crate::topology::DeployerKind;

/// The `clusters/<name>/` trees.
pub struct ClusterTrees;

impl Family for ClusterTrees {
    fn name(&self) -> &'static str {
        "cluster folders"
    }

    fn declare_clusters(&self, index: &RepoIndex<'_>, inv: &mut Inventory) {
        // Flux-style trees: clusters/<name>/... (at any depth).
        let mut trees: BTreeMap<String, Location> = BTreeMap::new();
        // Declared where Flux's own sync lives (`flux-system/`), else by its first file.
        for f in index.files {
            if let Some(name) = cluster_tree_of(&f.path) {
                let here = Location::new(&f.path, 1);
                let rank = |file: &str| {
                    if file.ends_with("/flux-system/gotk-sync.yaml") {
                        0
                    } else if file.contains("/flux-system/") {
                        1
                    } else {
                        2
                    }
                };
                let slot = trees.entry(name.to_owned()).or_insert_with(|| here.clone());
                if rank(&f.path) < rank(&slot.file) {
                    *slot = here;
                }
            }
        }
        for (name, loc) in trees {
            inv.declare_folder(&name, loc);
        }
    }

    fn stage(&self) -> Option<Stage> {
        Some(Stage::Roots)
    }

    fn seed(&self, w: &mut Worklist<'_>) {
        seed_trees(w);
    }
}

/// Delivers each tree to its cluster, but for trees a Flux deployer outside them points into.
fn seed_trees(w: &mut Worklist<'_>) {
    let mut trees: BTreeSet<(String, String)> = BTreeSet::new();
    for f in w.index().files {
        if let Some(name) = cluster_tree_of(&f.path) {
            let marker = format!("clusters/{name}/");
            if let Some(pos) = f.path.find(&marker) {
                let dir = &f.path[..pos + marker.len() - 1];
                trees.insert((name.to_owned(), dir.to_owned()));
            }
        }
    }
    // A tree that a Flux object outside it points into is a payload (a hub deploying to
    // spokes), not a cluster's own root: that deployer places it.
    let targeted: Vec<String> = w
        .index()
        .all_docs()
        .filter(|(_, d)| flux::is_flux_deployer(d))
        .filter_map(|(_, d)| {
            let path = d.root.get("spec")?.get("path")?.as_str()?;
            let target = index::join("", path, true)?;
            let tree = trees
                .iter()
                .find(|(_, dir)| target == *dir || target.starts_with(&format!("{dir}/")))?;
            (!d.file.starts_with(&format!("{}/", tree.1))).then(|| tree.1.clone())
        })
        .collect();
    for (name, dir) in trees {
        if targeted.contains(&dir) {
            continue;
        }
        let Some(cluster) = w.inventory().find(&name) else {
            continue;
        };
        let location = w.inventory().clusters[cluster]
            .declared_in
            .iter()
            .find(|l| l.file.starts_with(&dir))
            .cloned()
            .unwrap_or_else(|| Location::new(&Arc::from(dir.as_str()), 1));
        let why = Hop::ClusterTree(Box::new(ClusterTreeHop {
            cluster: name.as_str().into(),
            dir: dir.as_str().into(),
        }));
        let delivery =
            super::folder_delivery(DeployerKind::ClusterTree, &dir, cluster, location, why);
        w.deliver(&delivery);
    }
}
