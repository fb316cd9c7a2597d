//! Conventions for what no deployer object describes: the `clusters/<name>/` trees, charts
//! with a values file per environment, the config's `paths` rules and environment folders.

pub mod cluster_tree;
pub mod config_paths;
pub mod folders;
pub mod values_file;

use crate::topology::build::Worklist;
use crate::topology::family::{Family, Stage};

/// What no deployer reached: the config's `paths` rules first, then environment folders
/// (one family, because the folders see what the rules placed).
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
        folders::deliver(w, placed_files);
    }
}
