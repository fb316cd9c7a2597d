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
