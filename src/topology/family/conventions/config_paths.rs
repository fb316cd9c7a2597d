//! The config's `paths` rules: files no deployer reached, delivered to the cluster a rule
//! names.

use std::collections::BTreeSet;

use globset::Glob;

use crate::evidence::{ConfigPathHop, Evidence, Hop};
use crate::location::Location;
use crate::topology::build::Worklist;
use crate::topology::expand::kustomize::DirectoryMode;
use crate::topology::family::config_file;
use crate::topology::index;
use crate::topology::placed_files::PlacedPaths;
use crate::topology::{Delivery, Deployer, DeployerKind};

/// Delivers the files each `paths` rule of the config names (and no deployer reached) to its
/// cluster. Returns the files placed so far, for the folder convention that follows.
pub(super) fn deliver(w: &mut Worklist<'_>) -> PlacedPaths {
    let config = w.config();
    let mut placed_files = PlacedPaths::of(w.index(), w.placements());
    let placed_before = w.placements().len();
    // config paths
    for (i, rule) in config.paths.iter().enumerate() {
        let Ok(glob) = Glob::new(&rule.glob) else {
            continue;
        };
        let matcher = glob.compile_matcher();
        let line = config
            .source
            .as_ref()
            .and_then(|s| s.line_of(&format!("paths[{i}].glob")))
            .unwrap_or(1);
        let location = Location::new(&config_file(config), line);
        let (cluster, _) =
            w.inventory_mut()
                .resolve_destination(Some(&rule.cluster), None, location.clone());
        let dirs: BTreeSet<String> = w
            .index()
            .files
            .iter()
            .enumerate()
            .filter(|(i, f)| matcher.is_match(&*f.path) && !placed_files.contains(*i))
            .map(|(_, f)| index::parent(&f.path).to_owned())
            .collect();
        for dir in dirs {
            // Only the files the glob names, not their neighbours.
            let mut names = globset::GlobSetBuilder::new();
            for f in w.index().files_in(&dir) {
                let path = &w.index().files[*f].path;
                if matcher.is_match(&**path) && !placed_files.contains(*f) {
                    if let Ok(g) = Glob::new(&globset::escape(index::basename(path))) {
                        names.add(g);
                    }
                }
            }
            let mode = DirectoryMode {
                include: names.build().ok(),
                ..DirectoryMode::default()
            };
            w.deliver(&Delivery {
                mode,
                ..Delivery::new(
                    Deployer {
                        kind: DeployerKind::ConfigPath,
                        name: rule.glob.clone(),
                        location: location.clone(),
                    },
                    cluster,
                    dir.clone(),
                    vec![Evidence::new(
                        location.clone(),
                        Hop::ConfigPath(Box::new(ConfigPathHop {
                            glob: rule.glob.as_str().into(),
                            cluster: rule.cluster.as_str().into(),
                        })),
                    )],
                )
            });
        }
    }
    placed_files.add(w.index(), &w.placements()[placed_before..]);
    placed_files
}
