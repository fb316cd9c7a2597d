//! A hierarchical repository (`sourceFormat: hierarchy`): `cluster/` holds cluster-scoped
//! objects; under `namespaces/`, a folder that holds a `Namespace` (or has no sub-folder) is a
//! namespace, and every object in it goes to that namespace; the folders above it are
//! abstract namespaces, whose objects every namespace below them inherits; `system/` (the
//! repository's own configuration) and `clusterregistry/` (Cluster and ClusterSelector
//! objects) are read, not synced.

use std::collections::BTreeMap;

use crate::budget::{Budget, BudgetCut};
use crate::documents::Document;
use crate::evidence::{ConfigSyncHop, Evidence, Hop};
use crate::location::Location;
use crate::topology::expand::kustomize::{count_text, DirectoryMode};
use crate::topology::family::{deployer_signal, RunContext};
use crate::topology::index::{DocRef, RepoIndex};
use crate::topology::{Delivery, Deployer, DeployerKind, Outcome, Unresolved};

use super::below;
use super::selectors::{self, Judge, Namespaces, Selectors};

/// Whether `root` has the folders of a hierarchical repository.
pub(super) fn is_layout(index: &RepoIndex<'_>, root: &str) -> bool {
    ["namespaces", "cluster", "system"]
        .iter()
        .any(|sub| index.is_dir(&below(root, sub)))
}

/// One namespace folder: its folder, the namespace, its labels, and the Namespace object.
struct NamespaceFolder<'a> {
    dir: String,
    name: String,
    labels: BTreeMap<String, String>,
    object: Option<(DocRef, &'a Document)>,
    /// The abstract namespace folders above it, outermost first (`namespaces/` itself too).
    abstract_dirs: Vec<String>,
}

/// The deliveries of the hierarchical repository at `root`, onto the cluster of `base` (whose
/// deployer, chain and signals each delivery starts from): `cluster/`, then each namespace
/// folder and the abstract folders it inherits from. The objects they place together are
/// bounded by `limits.expanded-objects`.
pub(super) fn deliver(cx: &RunContext<'_, '_>, base: &Delivery, root: &str, out: &mut Outcome) {
    let index = cx.index;
    let all = Selectors::of(index);
    let judge = Judge {
        selectors: &all,
        root,
        cluster: &cx.inventory.clusters[base.cluster],
    };
    let mut notes = Vec::new();

    let cluster_dir = below(root, "cluster");
    if index.is_dir(&cluster_dir) {
        let picks: Vec<_> = selectors::documents_in(index, &cluster_dir, true)
            .into_iter()
            .filter(|(_, d)| selectors::is_selected(d))
            .map(|(r, d)| (r, judge.picks(d, &Namespaces::Declared(&[]), &mut notes)))
            .collect();
        let delivery = Delivery {
            dir: cluster_dir,
            mode: DirectoryMode::recursive(),
            ..base.clone()
        };
        selectors::split(delivery, picks, &mut out.deliveries);
    }

    let mut folders = Vec::new();
    let namespaces = below(root, "namespaces");
    if index.is_dir(&namespaces) {
        let mut above = Vec::new();
        walk(index, &namespaces, true, &mut above, &mut folders);
    }
    // The objects the namespaces receive, inherited ones once per namespace: bounded.
    let limit = cx.limits.expanded_objects;
    let mut objects = 0usize;
    let vocabulary = cx.inventory.vocabulary();
    for (i, folder) in folders.iter().enumerate() {
        // A Namespace the cluster's selectors leave out takes its objects with it.
        if let Some((_, ns)) = folder.object {
            let here = Namespaces::One(&folder.name, &folder.labels);
            if judge.picks(ns, &here, &mut notes).is_empty() {
                continue;
            }
        }
        let dirs = folder
            .abstract_dirs
            .iter()
            .filter(|d| !index.files_in(d).is_empty())
            .chain(std::iter::once(&folder.dir));
        let scopes: Vec<(&String, Vec<(DocRef, &Document)>)> = dirs
            .map(|dir| (dir, selectors::documents_in(index, dir, false)))
            .collect();
        let count: usize = scopes.iter().map(|(_, docs)| docs.len()).sum();
        if objects.saturating_add(count) > limit {
            let at = Location::new(&base.deployer.location.file, base.deployer.location.line);
            let detail = format!(
                "the namespaces of the hierarchical repository {} receive more than {} objects: {i} of its {} namespace folders are placed, the rest are not",
                selectors::shown_dir(root),
                count_text(limit as u64),
                folders.len()
            );
            out.unresolved.push(Unresolved {
                location: at.clone(),
                reason: detail.clone(),
            });
            out.cuts
                .push(BudgetCut::new(Budget::ExpandedObjects, Some(at), detail));
            break;
        }
        objects += count;
        let location = match folder.object {
            Some((_, ns)) => Location::new(
                &ns.file,
                ns.line_of("metadata.name").unwrap_or(ns.first_line),
            ),
            None => {
                let first = index.files_in(&folder.dir).first().copied();
                match first {
                    Some(f) => Location::new(&index.files[f].path, 1),
                    None => base.deployer.location.clone(),
                }
            }
        };
        let deployer = Deployer {
            kind: DeployerKind::NamespaceFolder,
            name: folder.name.clone(),
            location: location.clone(),
        };
        let mut signals = base.signals.clone();
        signals.extend(deployer_signal(vocabulary, &folder.name, || {
            format!("namespace folder {}", folder.name)
        }));
        let here = Namespaces::One(&folder.name, &folder.labels);
        for (dir, docs) in scopes {
            let inherited = (*dir != folder.dir).then(|| dir.as_str().into());
            let mut chain = base.chain.clone();
            chain.push(Evidence::new(
                location.clone(),
                Hop::ConfigSync(Box::new(ConfigSyncHop::Namespace {
                    namespace: folder.name.as_str().into(),
                    dir: folder.dir.as_str().into(),
                    inherited,
                })),
            ));
            let delivery = Delivery {
                deployer: deployer.clone(),
                dir: dir.clone(),
                mode: DirectoryMode::default(),
                force_namespace: Some(folder.name.clone()),
                chain,
                signals: signals.clone(),
                ..base.clone()
            };
            let picks: Vec<_> = docs
                .into_iter()
                .filter(|(_, d)| selectors::is_selected(d))
                .map(|(r, d)| (r, judge.picks(d, &here, &mut notes)))
                .collect();
            selectors::split(delivery, picks, &mut out.deliveries);
        }
    }
    out.unresolved.extend(notes);
}

/// The namespace folders at and below `dir`, depth first in path order. `top` is
/// `namespaces/` itself, always abstract.
fn walk<'a>(
    index: &'a RepoIndex<'a>,
    dir: &str,
    top: bool,
    above: &mut Vec<String>,
    out: &mut Vec<NamespaceFolder<'a>>,
) {
    let object = selectors::documents_in(index, dir, false)
        .into_iter()
        .find(|(_, d)| d.id.kind.as_deref() == Some("Namespace"));
    let subdirs: Vec<String> = index.subdirs_of(dir).map(str::to_owned).collect();
    if !top && (object.is_some() || subdirs.is_empty()) {
        let base = crate::topology::index::basename(dir);
        out.push(NamespaceFolder {
            dir: dir.to_owned(),
            name: object
                .and_then(|(_, d)| d.id.name.as_deref())
                .unwrap_or(base)
                .to_owned(),
            labels: object.map(|(_, d)| d.labels.clone()).unwrap_or_default(),
            object,
            abstract_dirs: above.clone(),
        });
        return;
    }
    above.push(dir.to_owned());
    for sub in subdirs {
        walk(index, &sub, false, above, out);
    }
    above.pop();
}
