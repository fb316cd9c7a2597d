//! The environment-folder convention: a folder such as `overlays/production` that no
//! deployer reached is delivered to the cluster its environment word names.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::documents::Document;
use crate::evidence::{ClusterInference, Evidence, FolderConventionHop, Hop, InferredClusterHop};
use crate::location::Location;
use crate::topology::build::Worklist;
use crate::topology::expand::helm::{ChartInstall, RenderFlags, RenderRequest};
use crate::topology::expand::kustomize;
use crate::topology::index::{self, RepoIndex};
use crate::topology::placed_files::PlacedPaths;
use crate::topology::{Delivery, Deployer, DeployerKind, HashSet, Signal, SignalLevel};

/// The folders whose children name environments (`envs/<x>`, `overlays/<x>`, ...).
pub(crate) const ENVIRONMENT_SLOTS: [&str; 4] = ["envs", "environments", "overlays", "stages"];

/// Delivers each environment folder no deployer reached (`overlays/<env>`, `envs/<env>`,
/// `environments/<env>`, `stages/<env>`) to the cluster its environment word names; in a
/// nested layout (`overlays/prod/<region>/<cluster>/`) each deepest folder to its own cluster,
/// of that environment; a chart in such a folder (an app of apps a bootstrap command
/// installs) is installed there. A repository that looks like a component catalog
/// ([`catalog_variants`]) invents no cluster from its variant folders.
/// `placed_files` are the files placed so far.
pub(super) fn deliver(w: &mut Worklist<'_>, placed_files: PlacedPaths) {
    if looks_like_catalog(w) {
        return;
    }
    // envs/<x>, environments/<x>, overlays/<x>, stages/<x> name the cluster x when x is an
    // environment word.
    let mut roots: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut charts: BTreeSet<(String, String, String, String)> = BTreeSet::new();
    for (i, f) in w.index().files.iter().enumerate() {
        if placed_files.contains(i) || w.reached(index::parent(&f.path)) {
            continue;
        }
        let segments: Vec<&str> = f.path.split('/').collect();
        for (i, pair) in segments.windows(2).enumerate() {
            if ENVIRONMENT_SLOTS.contains(&pair[0]) && i + 2 < segments.len() {
                let dir = segments[..i + 2].join("/");
                if w.reached(&dir) {
                    break;
                }
                if index::is_named(&f.path, "Chart.yaml") {
                    let chart = index::parent(&f.path);
                    if !w.installed().contains(chart)
                        && !super::values_file::nested_chart(w.index(), chart)
                    {
                        charts.insert((
                            chart.to_owned(),
                            dir.clone(),
                            pair[1].to_owned(),
                            pair[0].to_owned(),
                        ));
                    }
                } else if w.index().kustomization_in(&dir).is_some()
                    || f.documents.iter().any(Document::is_manifest)
                    || is_kustomization_file(&f.path)
                {
                    roots.insert((dir, pair[1].to_owned(), pair[0].to_owned()));
                }
                break;
            }
        }
    }
    for (chart, dir, name, slot) in charts {
        if names_environment(w, &name) {
            install_chart(w, &chart, &dir, &name, &slot);
        }
    }
    for (dir, name, slot) in roots {
        // Only a folder name with an environment meaning names a cluster (`overlays/blue`
        // says nothing about where it runs). In this slot `load` names a load-test
        // environment too (`envs/load-gpu`); elsewhere it is too common a word
        // (`search-api-load-page-traffic` loads data).
        if !names_environment(w, &name) {
            continue;
        }
        let nested = nested_clusters(w, &dir);
        if !nested.is_empty() {
            for (sub, cluster) in nested {
                deliver_nested(w, &dir, &sub, &cluster, &name);
            }
            continue;
        }
        // Point at the folder's kustomization (or its first file), not at the folder; a
        // folder of folders, at the first of those found below it.
        let location = location_of(w.index(), &dir);
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

/// Whether `path` is a kustomization file (a nested layout may hold nothing else).
fn is_kustomization_file(path: &str) -> bool {
    matches!(
        index::basename(path),
        "kustomization.yaml" | "kustomization.yml" | "Kustomization"
    )
}

/// Whether an environment folder's name has an environment meaning.
fn names_environment(w: &Worklist<'_>, name: &str) -> bool {
    w.inventory().vocabulary().classify(name).is_some() || names_load_environment(name)
}

/// The folder's kustomization (or its first file, or the first found below it) as a location.
fn location_of(index: &RepoIndex<'_>, dir: &str) -> Location {
    match first_file_under(index, dir) {
        Some(f) => Location::new(&index.files[f].path, 1),
        None => Location::new(&Arc::from(dir), 1),
    }
}

/// A chart in an environment folder that nothing installs (an app of apps a bootstrap
/// command installs): installed once, with its own values, on the cluster the folder names.
fn install_chart(w: &mut Worklist<'_>, chart: &str, dir: &str, name: &str, slot: &str) {
    let chart_yaml = format!("{chart}/Chart.yaml");
    let location = Location::new(&Arc::from(chart_yaml.as_str()), 1);
    let release = w
        .index()
        .file(&chart_yaml)
        .and_then(|f| w.index().files[f].documents.first())
        .and_then(|d| d.root.get("name"))
        .and_then(crate::documents::Node::as_str)
        .unwrap_or_else(|| index::basename(chart))
        .to_owned();
    let (cluster, _) = w
        .inventory_mut()
        .resolve_destination(Some(name), None, location.clone());
    let why = Hop::FolderConvention(Box::new(FolderConventionHop {
        dir: dir.into(),
        slot: slot.into(),
        cluster: name.into(),
    }));
    let signal = w.inventory().vocabulary().classify(name).map(|m| Signal {
        env: m.env,
        note: format!("folder {slot}/{name}").into(),
        level: SignalLevel::Deployer,
    });
    let install = ChartInstall {
        request: RenderRequest {
            chart: chart.to_owned(),
            release,
            namespace: None,
            values: Vec::new(),
            set: Vec::new(),
            flags: RenderFlags::default(),
        },
        delivery: Delivery {
            signals: signal.into_iter().collect(),
            ..Delivery::new(
                Deployer {
                    kind: DeployerKind::EnvironmentFolder,
                    name: dir.to_owned(),
                    location: location.clone(),
                },
                cluster,
                chart.to_owned(),
                vec![Evidence::new(location, why)],
            )
        },
        values_evidence: Vec::new(),
        notes: Vec::new(),
        fallback: Vec::new(),
        fallback_notes: Vec::new(),
    };
    w.install_chart(install);
}

/// Folder names below an environment folder that hold what its clusters share, never a
/// cluster of their own.
const SHARED_FOLDERS: [&str; 8] = [
    "common",
    "base",
    "bases",
    "shared",
    "components",
    "patches",
    "templates",
    "default",
];

/// The clusters of a nested layout below the environment folder `dir`
/// (`overlays/prod/<region>/<cluster>/`): each topmost kustomization below it that no
/// kustomization there includes, two or more folders down (or one, when a known cluster
/// has its name), with the cluster it names: its folder's name, or `<region>-<name>` when
/// that is a known cluster. Empty when `dir` is itself a kustomization or holds manifests,
/// or when none of them is a cluster the repository names elsewhere: folder names alone do
/// not tell `overlays/prod/<team>/<app>/` from `overlays/prod/<region>/<cluster>/`.
fn nested_clusters(w: &Worklist<'_>, dir: &str) -> Vec<(String, String)> {
    let index = w.index();
    if index.kustomization_in(dir).is_some()
        || index
            .files_in(dir)
            .iter()
            .any(|&f| index.files[f].documents.iter().any(Document::is_manifest))
    {
        return Vec::new();
    }
    // Every kustomization folder below `dir`, and what each includes.
    let mut folders: Vec<String> = Vec::new();
    let mut included: HashSet<String> = HashSet::default();
    let mut stack: Vec<String> = index.subdirs_of(dir).map(str::to_owned).collect();
    while let Some(d) = stack.pop() {
        stack.extend(index.subdirs_of(&d).map(str::to_owned));
        let Some(k) = index.kustomization_in(&d) else {
            continue;
        };
        for doc in index.files[k].documents.iter() {
            for key in ["resources", "bases", "components"] {
                for (entry, _) in kustomize::string_entries(&doc.root, key) {
                    if let Some(target) = index::join(&d, &entry, false) {
                        included.insert(target);
                    }
                }
            }
        }
        folders.push(d);
    }
    folders.sort();
    let mut out = Vec::new();
    for sub in &folders {
        let below = &sub[dir.len() + 1..];
        let depth = below.split('/').count();
        let name = index::basename(sub);
        let topmost = !folders
            .iter()
            .any(|other| other != sub && sub.starts_with(&format!("{other}/")));
        if !topmost || included.contains(sub.as_str()) || SHARED_FOLDERS.contains(&name) {
            continue;
        }
        let region = below.split('/').rev().nth(1);
        let qualified = region.map(|r| format!("{r}-{name}"));
        let known = |n: &str| w.inventory().find(n).is_some();
        let cluster = match qualified.filter(|q| known(q)) {
            Some(q) => q,
            None => name.to_owned(),
        };
        if depth >= 2 || known(&cluster) {
            out.push((sub.clone(), cluster));
        }
    }
    if !out.iter().any(|(_, c)| w.inventory().find(c).is_some()) {
        out.clear();
    }
    out
}

/// Delivers `sub`, a cluster's folder below the environment folder `dir` named `env_word`.
fn deliver_nested(w: &mut Worklist<'_>, dir: &str, sub: &str, name: &str, env_word: &str) {
    if w.reached(sub) {
        return;
    }
    let location = location_of(w.index(), sub);
    let cluster = w
        .inventory_mut()
        .declare_nested(name, env_word, dir, location.clone());
    let why = Hop::InferredCluster(Box::new(InferredClusterHop {
        dir: sub.into(),
        cluster: name.into(),
        by: ClusterInference::Nested {
            environment_dir: dir.into(),
        },
    }));
    let mut delivery =
        super::folder_delivery(DeployerKind::EnvironmentFolder, sub, cluster, location, why);
    // The environment folder's word classes what the cluster's folder holds, as the folder
    // convention's would.
    delivery.signals.extend(
        w.inventory()
            .vocabulary()
            .classify(env_word)
            .map(|m| Signal {
                env: m.env,
                note: format!("environment folder {dir}/").into(),
                level: SignalLevel::Deployer,
            }),
    );
    w.deliver(&delivery);
}

/// Whether the repository looks like a component catalog consumed elsewhere: nothing here
/// delivered anything or named a cluster, no document is a deployer, and its variant folders
/// are named after variants rather than environments ([`catalog_variants`]).
fn looks_like_catalog(w: &Worklist<'_>) -> bool {
    w.placements().is_empty()
        && w.inventory().clusters.is_empty()
        && !w
            .index()
            .all_docs()
            .any(|(_, d)| crate::topology::family::family_of_deployer(w.families(), d).is_some())
        && catalog_variants(w.index(), w.inventory().vocabulary()).is_some()
}

/// The overlay names of a component catalog: across three or more components' `overlays/`
/// folders, at least five distinct names, fewer than half of which have an environment
/// meaning (`stable`, `latest`, `tech-preview`, `default`, ...), and no `envs/`,
/// `environments/` or `stages/` folder of an environment (those name environments whatever
/// their neighbours). Returns the overlay names that do carry an environment word, which
/// would otherwise each have become a cluster; `None` when the folders look like
/// environments.
pub(crate) fn catalog_variants(
    index: &RepoIndex<'_>,
    vocabulary: &crate::topology::env::Vocabulary,
) -> Option<Vec<String>> {
    let names_environment = |n: &str| vocabulary.classify(n).is_some() || names_load_environment(n);
    let mut parents: BTreeSet<String> = BTreeSet::new();
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for f in index.files {
        let segments: Vec<&str> = f.path.split('/').collect();
        for (i, pair) in segments.windows(2).enumerate() {
            if ENVIRONMENT_SLOTS.contains(&pair[0]) && i + 2 < segments.len() {
                if pair[0] != "overlays" && names_environment(pair[1]) {
                    return None;
                }
                parents.insert(segments[..i].join("/"));
                names.insert(pair[1]);
                break;
            }
        }
    }
    let environment: Vec<String> = names
        .iter()
        .filter(|n| names_environment(n))
        .map(|n| (*n).to_owned())
        .collect();
    (parents.len() >= 3 && names.len() >= 5 && environment.len() * 2 < names.len())
        .then_some(environment)
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
