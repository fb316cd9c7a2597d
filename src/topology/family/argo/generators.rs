//! The parameters of ApplicationSet generators that read the repository or the inventory:
//! cluster selectors, git directories and files.

use super::appset::Params;
use super::template::{normalize, render};
use std::collections::BTreeMap;
use std::sync::Arc;

use globset::Glob;

use crate::documents::Node;
use crate::evidence::{Evidence, GeneratorHop, Hop};
use crate::location::Location;
use crate::topology::clusters::{Inventory, IN_CLUSTER, IN_CLUSTER_SERVER};
use crate::topology::index::{self, RepoIndex};
use crate::topology::inventory::selector::LabelSelector;
use crate::topology::repository::RepoMatch;
use crate::topology::{Outcome, Unresolved};

pub(super) fn cluster_params(
    inventory: &mut Inventory,
    node: &Node,
    at: &dyn Fn(u32) -> Location,
    out: &mut Outcome,
) -> Vec<Params> {
    let selector = node
        .get("selector")
        .map(LabelSelector::read)
        .unwrap_or_default();
    let empty_selector = selector.is_empty();
    let mut sets = Vec::new();
    // Argo CD always offers its own cluster to an empty selector, even when only a
    // destination (not a cluster Secret) names it here.
    let local = inventory
        .find(IN_CLUSTER)
        .or_else(|| inventory.find_server(IN_CLUSTER_SERVER));
    let known: Vec<usize> = (0..inventory.clusters.len())
        .filter(|&i| inventory.clusters[i].argo_known || (empty_selector && Some(i) == local))
        .collect();
    for i in known {
        let c = &inventory.clusters[i];
        if Some(i) == local && !empty_selector && !c.argo_known {
            continue;
        }
        // Argo CD selects cluster Secrets by their labels, the secret-type label among them.
        let mut labels = c.labels.clone();
        labels.insert(SECRET_TYPE_LABEL.to_owned(), "cluster".to_owned());
        let labels = &labels;
        if !selector.matches(labels) {
            continue;
        }
        let mut values = BTreeMap::new();
        values.insert("name".to_owned(), c.name.clone());
        values.insert("nameNormalized".to_owned(), normalize(&c.name));
        if let Some(s) = &c.server {
            values.insert("server".to_owned(), s.clone());
        }
        for (k, v) in labels {
            values.insert(format!("metadata.labels.{k}"), v.clone());
        }
        for (k, v) in &c.annotations {
            values.insert(format!("metadata.annotations.{k}"), v.clone());
        }
        let declared = c
            .declared_in
            .first()
            .cloned()
            .unwrap_or_else(|| at(node.span.line));
        sets.push(Params {
            values,
            evidence: vec![
                Evidence::new(
                    at(node.span.line),
                    Hop::Generator(Box::new(GeneratorHop::Clusters { local: false })),
                ),
                Evidence::new(
                    declared,
                    Hop::Generator(Box::new(GeneratorHop::ClusterMatched {
                        cluster: c.name.as_str().into(),
                    })),
                ),
            ],
        });
    }
    if empty_selector && local.is_none() {
        let mut values = BTreeMap::new();
        values.insert("name".to_owned(), IN_CLUSTER.to_owned());
        values.insert("nameNormalized".to_owned(), IN_CLUSTER.to_owned());
        values.insert("server".to_owned(), IN_CLUSTER_SERVER.to_owned());
        sets.push(Params {
            values,
            evidence: vec![Evidence::new(
                at(node.span.line),
                Hop::Generator(Box::new(GeneratorHop::Clusters { local: true })),
            )],
        });
    }
    if sets.is_empty() && !empty_selector {
        out.unmatched_selectors.push((
            at(node
                .entry("selector")
                .map_or(node.span.line, |e| e.key.span.line)),
            selector.terms(),
        ));
    }
    sets
}

/// The label every Argo CD cluster Secret carries; a selector may name it.
const SECRET_TYPE_LABEL: &str = "argocd.argoproj.io/secret-type";

/// The generators that take a `values` map (Argo CD's clusters, git, SCM provider, pull
/// request, cluster decision resource and plugin generators; list, matrix and merge have none).
const WITH_VALUES: [&str; 6] = [
    "clusters",
    "git",
    "scmProvider",
    "pullRequest",
    "clusterDecisionResource",
    "plugin",
];

/// Adds a leaf generator's `values` to each of its parameter sets, as Argo CD does: each value
/// is rendered with that set's own parameters (never with the other values), then offered as
/// `values.<key>` (`.values.<key>` in Go-template mode). A value that cannot be rendered
/// statically is left out, so that a template reading it says so rather than guessing.
pub(super) fn add_values(file: &Arc<str>, g: &Node, go: bool, sets: &mut [Params]) {
    let Some(values) = WITH_VALUES
        .iter()
        .find_map(|kind| g.get(kind))
        .and_then(|leaf| leaf.get("values"))
        .and_then(Node::as_map)
    else {
        return;
    };
    for set in sets.iter_mut() {
        let mut rendered = Vec::new();
        for entry in values {
            let (Some(key), Some(raw)) = (entry.key.as_str(), entry.value.as_str()) else {
                continue;
            };
            let Ok(value) = render(raw, &set.values, go) else {
                continue;
            };
            set.evidence.push(Evidence::new(
                Location::new(file, entry.key.span.line),
                Hop::Generator(Box::new(GeneratorHop::Value {
                    key: key.into(),
                    value: value.as_str().into(),
                })),
            ));
            rendered.push((format!("values.{key}"), value));
        }
        set.values.extend(rendered);
    }
}

/// A list element with a cluster name (`cluster`, `name`) and its URL (`url`, `server`)
/// names one cluster, known by both.
pub(super) fn declare_element_cluster(
    inventory: &mut Inventory,
    values: &BTreeMap<String, String>,
    location: Location,
) {
    let name = ["cluster", "name", "clusterName"]
        .iter()
        .find_map(|k| values.get(*k));
    let url = ["url", "server", "clusterURL", "clusterUrl"]
        .iter()
        .find_map(|k| values.get(*k))
        .filter(|u| u.contains("://"));
    if let (Some(name), Some(url)) = (name, url) {
        if !name.contains("{{") && !url.contains("{{") && name != IN_CLUSTER {
            inventory.declare_element(name, url, location);
        }
    }
}

pub(super) fn path_params(path: &str, values: &mut BTreeMap<String, String>) {
    let base = index::basename(path).to_owned();
    values.insert("path".into(), path.to_owned());
    values.insert("path.path".into(), path.to_owned());
    values.insert("path.basename".into(), base.clone());
    values.insert("path.basenameNormalized".into(), normalize(&base));
    for (i, seg) in path.split('/').enumerate() {
        values.insert(format!("path[{i}]"), seg.to_owned());
        values.insert(format!("path.segments.{i}"), seg.to_owned());
    }
}

pub(super) fn git_params(
    index: &RepoIndex<'_>,
    git: &Node,
    this: &RepoMatch,
    generator_line: u32,
    at: &dyn Fn(u32) -> Location,
    out: &mut Outcome,
) -> Vec<Params> {
    let mut sets = Vec::new();
    let repo = git
        .get("repoURL")
        .and_then(Node::as_str)
        .unwrap_or("?")
        .to_owned();
    let read_from = match this {
        RepoMatch::This(_) => "this repository",
        RepoMatch::Unknown => "assumed to be this repository: the directory exists here",
    };
    // Another repository, as far as envfence can tell: nothing it generates is known.
    let elsewhere = |what: &str| {
        match this {
        RepoMatch::This(from) => {
            format!("git generator: {what} in this repository (repoURL {repo} is this repository by {from})")
        }
        RepoMatch::Unknown => format!(
            "git generator reads {repo}, which is not this repository as far as envfence can tell (no repository.urls, origin or GITHUB_REPOSITORY match) and {what} here, so its Applications are not known"
        ),
    }
    };
    if let Some(dirs) = git.get("directories").and_then(Node::as_seq) {
        let mut include = Vec::new();
        let mut exclude = Vec::new();
        for d in dirs {
            let Some(p) = d.get("path").and_then(Node::as_str) else {
                continue;
            };
            let Ok(glob) = Glob::new(p) else { continue };
            let excluded = d.get("exclude").and_then(Node::as_str) == Some("true");
            if excluded {
                exclude.push(glob.compile_matcher());
            } else {
                include.push((glob.compile_matcher(), d.span.line));
            }
        }
        let mut all_dirs: Vec<String> = Vec::new();
        let mut stack = vec![String::new()];
        while let Some(dir) = stack.pop() {
            for sub in index.subdirs_of(&dir) {
                all_dirs.push(sub.to_owned());
                stack.push(sub.to_owned());
            }
        }
        all_dirs.sort();
        for dir in all_dirs {
            let Some((_, line)) = include.iter().find(|(m, _)| m.is_match(&dir)) else {
                continue;
            };
            if exclude.iter().any(|m| m.is_match(&dir)) {
                continue;
            }
            let mut values = BTreeMap::new();
            path_params(&dir, &mut values);
            sets.push(Params {
                values,
                evidence: vec![Evidence::new(
                    at(*line),
                    Hop::Generator(Box::new(GeneratorHop::GitDirectory {
                        dir: dir.as_str().into(),
                        repo: repo.as_str().into(),
                        read_from: read_from.into(),
                    })),
                )],
            });
        }
        if sets.is_empty() && !include.is_empty() {
            out.unresolved.push(Unresolved {
                location: at(generator_line),
                reason: elsewhere("no directory matches its paths"),
            });
        }
    }
    // Reads any file's content: `reuse` never shares a topology where this generator exists.
    if let Some(files) = git.get("files").and_then(Node::as_seq) {
        for f in files {
            let Some(p) = f.get("path").and_then(Node::as_str) else {
                continue;
            };
            let Ok(glob) = Glob::new(p) else { continue };
            let m = glob.compile_matcher();
            let mut matched = false;
            for file in index.files.iter().filter(|file| m.is_match(&*file.path)) {
                for doc in file.documents.iter() {
                    matched = true;
                    let mut values = BTreeMap::new();
                    flatten("", &doc.root, &mut values);
                    path_params(index::parent(&file.path), &mut values);
                    sets.push(Params {
                        values,
                        evidence: vec![Evidence::new(
                            Location::new(&file.path, doc.first_line),
                            Hop::Generator(Box::new(GeneratorHop::GitFile {
                                file: std::sync::Arc::clone(&file.path),
                                repo: repo.as_str().into(),
                            })),
                        )],
                    });
                }
            }
            if !matched {
                out.unresolved.push(Unresolved {
                    location: at(f.span.line),
                    reason: elsewhere(&format!(
                        "no YAML file matches {p} (JSON files are not read)"
                    )),
                });
            }
        }
    }
    sets
}

/// Flattens a node into dotted keys (`a.b.c`), the way ApplicationSet parameters are named.
pub(super) fn flatten(prefix: &str, node: &Node, out: &mut BTreeMap<String, String>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    if let Some(entries) = node.as_map() {
        for e in entries {
            if let Some(k) = e.key.as_str() {
                flatten(&key(k), &e.value, out);
            }
        }
    } else if let Some(items) = node.as_seq() {
        for (i, item) in items.iter().enumerate() {
            flatten(&key(&i.to_string()), item, out);
        }
    } else if let Some(s) = node.as_str() {
        if !prefix.is_empty() {
            out.insert(prefix.to_owned(), s.to_owned());
        }
    }
}
