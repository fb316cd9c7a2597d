//! The environment-folder convention: a folder such as `overlays/production` that no
//! deployer reached is delivered to the cluster its environment word names.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::documents::Document;
use crate::evidence::{FolderConventionHop, Hop};
use crate::location::Location;
use crate::topology::build::Worklist;
use crate::topology::index::{self, RepoIndex};
use crate::topology::{DeployerKind, HashSet};

/// Delivers each environment folder no deployer reached (`overlays/<env>`, `envs/<env>`,
/// `environments/<env>`, `stages/<env>`) to the cluster its environment word names.
/// `placed_files` are the files placed so far.
pub(super) fn deliver(w: &mut Worklist<'_>, placed_files: HashSet<Arc<str>>) {
    // envs/<x>, environments/<x>, overlays/<x>, stages/<x> name the cluster x when x is an
    // environment word.
    let mut roots: BTreeSet<(String, String, String)> = BTreeSet::new();
    for f in w.index().files {
        if placed_files.contains(&f.path) || w.reached(index::parent(&f.path)) {
            continue;
        }
        let segments: Vec<&str> = f.path.split('/').collect();
        for (i, pair) in segments.windows(2).enumerate() {
            if matches!(pair[0], "envs" | "environments" | "overlays" | "stages")
                && i + 2 < segments.len()
            {
                let dir = segments[..i + 2].join("/");
                if w.reached(&dir) {
                    break;
                }
                if w.index().kustomization_in(&dir).is_some()
                    || f.documents.iter().any(Document::is_manifest)
                {
                    roots.insert((dir, pair[1].to_owned(), pair[0].to_owned()));
                }
                break;
            }
        }
    }
    for (dir, name, slot) in roots {
        // Only a folder name with an environment meaning names a cluster (`overlays/blue`
        // says nothing about where it runs). In this slot `load` names a load-test
        // environment too (`envs/load-gpu`); elsewhere it is too common a word
        // (`search-api-load-page-traffic` loads data).
        if w.inventory().vocabulary().classify(&name).is_none() && !names_load_environment(&name) {
            continue;
        }
        // Point at the folder's kustomization (or its first file), not at the folder; a
        // folder of folders, at the first of those found below it.
        let location = match first_file_under(w.index(), &dir) {
            Some(f) => Location::new(&w.index().files[f].path, 1),
            None => Location::new(&Arc::from(dir.as_str()), 1),
        };
        let (cluster, _) =
            w.inventory_mut()
                .resolve_destination(Some(&name), None, location.clone());
        let why = Hop::FolderConvention(Box::new(FolderConventionHop {
            dir: dir.as_str().into(),
            slot: slot.as_str().into(),
            cluster: name.as_str().into(),
        }));
        let delivery = super::folder_delivery(
            DeployerKind::EnvironmentFolder,
            &dir,
            cluster,
            location,
            why,
        );
        w.deliver(&delivery);
    }
}

/// Whether an environment folder's name is a load-test environment: `load`, `load-gpu`,
/// `gpu-load` (a token `load`).
fn names_load_environment(name: &str) -> bool {
    crate::topology::env::tokens(name)
        .iter()
        .any(|t| t == "load")
}

/// The file that stands for a folder in evidence: its kustomization, else its first file, else
/// the same found in its first sub-folder (in path order) that has one.
fn first_file_under(index: &RepoIndex<'_>, dir: &str) -> Option<usize> {
    index
        .kustomization_in(dir)
        .or_else(|| index.files_in(dir).first().copied())
        .or_else(|| {
            index
                .subdirs_of(dir)
                .find_map(|sub| first_file_under(index, sub))
        })
}
