//! Conventions for what no deployer object describes: the `clusters/<name>/` trees, charts
//! with a values file per environment, the config's `paths` rules and environment folders.

pub mod cluster_tree;
pub mod config_paths;
pub mod entrypoints;
pub mod folders;
pub mod named_folders;
pub mod values_file;

use crate::evidence::{Evidence, Hop};
use crate::location::Location;
use crate::topology::build::Worklist;
use crate::topology::expand::kustomize::DirectoryMode;
use crate::topology::family::{Family, Stage};
use crate::topology::{Delivery, Deployer, DeployerKind};

/// A folder a convention assigns to a cluster, delivered whole (sub-folders included), with
/// the one hop that says why.
fn folder_delivery(
    kind: DeployerKind,
    dir: &str,
    cluster: usize,
    location: Location,
    why: Hop,
) -> Delivery {
    Delivery {
        mode: DirectoryMode::recursive(),
        ..Delivery::new(
            Deployer {
                kind,
                name: dir.to_owned(),
                location: location.clone(),
            },
            cluster,
            dir.to_owned(),
            vec![Evidence::new(location, why)],
        )
    }
}

/// Delivers a folder of plain manifests the way something outside the repository applies it
/// (a pipeline running `kubectl apply` on each namespace's folder): its own files, then each
/// sub-folder as a delivery of its own, so that a tree of a thousand namespaces is a thousand
/// small expansions rather than one that the per-directory budget
/// (`limits.kustomize-objects`) cuts short. A folder with a kustomization is one delivery, as
/// kustomize builds it. `delivery` is the delivery of the whole folder.
fn deliver_folder_tree(w: &mut Worklist<'_>, delivery: Delivery) {
    let dir = delivery.dir.clone();
    if w.index().kustomization_in(&dir).is_some() {
        w.deliver(&delivery);
        return;
    }
    let subdirs: Vec<String> = w.index().subdirs_of(&dir).map(str::to_owned).collect();
    w.deliver(&Delivery {
        mode: DirectoryMode::default(),
        ..delivery.clone()
    });
    for sub in subdirs {
        w.deliver(&Delivery {
            dir: sub,
            mode: DirectoryMode::recursive(),
            ..delivery.clone()
        });
    }
}

/// What no deployer reached: the config's `paths` rules first, then folders named after a
/// known cluster, then environment folders (one family, because each sees what the ones
/// before it placed).
pub struct Fallbacks;

impl Family for Fallbacks {
    fn name(&self) -> &'static str {
        "conventions"
    }

    fn stage(&self) -> Option<Stage> {
        Some(Stage::Conventions)
    }

    fn seed(&self, w: &mut Worklist<'_>) {
        let placed_files = config_paths::deliver(w);
        let placed_files = named_folders::deliver(w, placed_files);
        folders::deliver(w, placed_files);
    }
}
