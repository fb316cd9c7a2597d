//! The config's `paths` rules: files no deployer reached, delivered to the cluster a rule
//! names.

use std::collections::BTreeSet;
use std::sync::Arc;

use globset::Glob;

use crate::evidence::{ConfigPathHop, Evidence, Hop};
use crate::location::Location;
use crate::topology::build::Worklist;
use crate::topology::expand::kustomize::DirectoryMode;
use crate::topology::family::config_file;
use crate::topology::index;
use crate::topology::placed_files::{FileSeen, PlacedFiles};
use crate::topology::{Delivery, Deployer, DeployerKind, HashSet};

/// The files of `placements`, each path hashed once ([`PlacedFiles`]).
fn files_of(placements: &[crate::topology::Placement]) -> HashSet<Arc<str>> {
    let mut seen = PlacedFiles::default();
    let mut files = HashSet::default();
    for p in placements {
        if !matches!(seen.see(p), FileSeen::Again(_)) {
            files.insert(Arc::clone(&p.object.file));
        }
    }
    files
}

/// Delivers the files each `paths` rule of the config names (and no deployer reached) to its
/// cluster. Returns the files placed so far, for the folder convention that follows.
pub(super) fn deliver(w: &mut Worklist<'_>) -> HashSet<Arc<str>> {
    let config = w.config();
    let mut placed_files = files_of(w.placements());
    let placed_before = w.placements().len();
    let reached = |f: &str| placed_files.contains(f);
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
            .filter(|f| matcher.is_match(&*f.path) && !reached(&f.path))
            .map(|f| index::parent(&f.path).to_owned())
            .collect();
        for dir in dirs {
            // Only the files the glob names, not their neighbours.
            let mut names = globset::GlobSetBuilder::new();
            for f in w.index().files_in(&dir) {
                let path = &w.index().files[*f].path;
                if matcher.is_match(&**path) && !reached(path) {
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
    placed_files.extend(
        w.placements()[placed_before..]
            .iter()
            .map(|p| Arc::clone(&p.object.file)),
    );
    placed_files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::index::DocRef;
    use crate::topology::Placement;

    fn placed(file: &Arc<str>, doc: Option<usize>) -> Placement {
        let mut p = Placement::of_file(file);
        p.object.doc = doc.map(|file| DocRef::new(file, 0));
        p
    }

    #[test]
    fn the_files_placed_are_every_placed_path_once() {
        let a: Arc<str> = Arc::from("a.yaml");
        let b: Arc<str> = Arc::from("b.yaml");
        // Another path at a position already seen, and a generated object's path.
        let other: Arc<str> = Arc::from("c.yaml");
        let generated: Arc<str> = Arc::from("kustomization.yaml");
        let placements = [
            placed(&a, Some(0)),
            placed(&b, Some(1)),
            placed(&a, Some(0)),
            placed(&other, Some(0)),
            placed(&generated, None),
            placed(&a, Some(0)),
        ];
        let mut files: Vec<String> = files_of(&placements)
            .iter()
            .map(|f| f.to_string())
            .collect();
        files.sort();
        assert_eq!(files, ["a.yaml", "b.yaml", "c.yaml", "kustomization.yaml"]);
    }
}
