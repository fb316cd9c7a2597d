//! Config Sync's selectors: the `configmanagement.gke.io/cluster-selector` annotation (the name
//! of a `ClusterSelector`, which matches cluster labels), `configsync.gke.io/cluster-name-selector`
//! (cluster names, comma-separated) and `configmanagement.gke.io/namespace-selector` (the name of
//! a `NamespaceSelector`, which matches Namespace labels). Each decides, object by object,
//! whether it lands on a cluster and in which namespaces; the ones that pick it are hops of
//! its evidence.
//!
//! A delivery of a folder is split by what they say ([`split`]): the objects no selector
//! names, in one delivery, and one delivery per set of selectors that pick the others.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::documents::Document;
use crate::evidence::{ConfigSyncHop, Evidence, Hop, SelectorAnnotation};
use crate::location::Location;
use crate::topology::family::{api_in, name_of};
use crate::topology::index::{DocRef, RepoIndex};
use crate::topology::inventory::clusters::{Cluster, Inventory};
use crate::topology::inventory::selector::LabelSelector;
use crate::topology::{Delivery, DocumentFilter, HashSet, Unresolved};

/// The API group of `ClusterSelector` and `NamespaceSelector`.
const GROUP: &str = "configmanagement.gke.io";

/// The ClusterSelectors and NamespaceSelectors of the repository, by name.
pub(super) struct Selectors<'a> {
    by_name: BTreeMap<(&'static str, &'a str), Vec<&'a Document>>,
}

impl<'a> Selectors<'a> {
    pub(super) fn of(index: &RepoIndex<'a>) -> Self {
        let mut by_name: BTreeMap<(&'static str, &'a str), Vec<&'a Document>> = BTreeMap::new();
        for kind in ["ClusterSelector", "NamespaceSelector"] {
            for (_, d) in index.of_kind(kind).filter(|(_, d)| api_in(d, GROUP)) {
                if let Some(name) = d.id.name.as_deref() {
                    by_name.entry((kind, name)).or_default().push(d);
                }
            }
        }
        Selectors { by_name }
    }

    /// The selector of `kind` named `name`: the one inside `root` (the synced folder) when
    /// several repositories here define one by that name.
    fn find(&self, kind: &'static str, name: &str, root: &str) -> Option<&'a Document> {
        let found = self.by_name.get(&(kind, name))?;
        found
            .iter()
            .find(|d| within(root, &d.file))
            .or(found.first())
            .copied()
    }
}

/// Whether `file` is inside folder `dir` ("" is the repository).
pub(super) fn within(dir: &str, file: &str) -> bool {
    dir.is_empty()
        || file
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The value of a selector annotation on `d`, with its line.
fn annotation(d: &Document, which: SelectorAnnotation) -> Option<(&str, u32)> {
    let entry = d
        .root
        .get("metadata")?
        .get("annotations")?
        .entry(which.key())?;
    Some((entry.value.as_str()?.trim(), entry.key.span.line))
}

/// Whether `d` carries any selector annotation.
pub(super) fn is_selected(d: &Document) -> bool {
    [
        SelectorAnnotation::ClusterSelector,
        SelectorAnnotation::ClusterNameSelector,
        SelectorAnnotation::NamespaceSelector,
    ]
    .iter()
    .any(|a| d.annotations.contains_key(a.key()))
}

/// Where one document lands, as its selectors say: each entry is the hops of the selectors
/// that pick it and, for a NamespaceSelector of an unstructured repository, the namespace it
/// goes to. Empty: it lands nowhere here.
pub(super) type Picks = Vec<Pick>;

/// One place a document lands: the selector hops that pick it, and the namespace a
/// NamespaceSelector of an unstructured repository puts it in.
pub(super) type Pick = (Vec<Evidence>, Option<String>);

/// The namespaces a document may go to, for its NamespaceSelector.
pub(super) enum Namespaces<'n> {
    /// A hierarchical repository's namespace folder: this namespace and its labels.
    One(&'n str, &'n BTreeMap<String, String>),
    /// An unstructured repository: the Namespaces it declares (name, labels).
    Declared(&'n [(String, BTreeMap<String, String>)]),
}

/// What the selectors of one document say on one cluster.
pub(super) struct Judge<'j, 'a> {
    pub(super) selectors: &'j Selectors<'a>,
    /// The synced folder, where a selector's name is looked up first.
    pub(super) root: &'j str,
    pub(super) cluster: &'j Cluster,
}

impl Judge<'_, '_> {
    /// Where `d` lands; notes say why a selector it names cannot be evaluated.
    pub(super) fn picks(
        &self,
        d: &Document,
        namespaces: &Namespaces<'_>,
        notes: &mut Vec<Unresolved>,
    ) -> Picks {
        let mut hops = Vec::new();
        if let Some((name, line)) = annotation(d, SelectorAnnotation::ClusterSelector) {
            let Some(selector) = self.selectors.find("ClusterSelector", name, self.root) else {
                notes.push(Unresolved {
                    location: d.at(line),
                    reason: format!(
                        "{} {} names ClusterSelector {name}, which is not defined in this repository: Config Sync places it on no cluster",
                        d.id.kind.as_deref().unwrap_or("?"),
                        name_of(d)
                    ),
                });
                return Vec::new();
            };
            let Some(terms) = selected_by(selector, &self.cluster.labels) else {
                return Vec::new();
            };
            hops.push(selected_hop(
                selector,
                SelectorAnnotation::ClusterSelector,
                name,
                &self.cluster.name,
                terms,
            ));
        }
        if let Some((names, line)) = annotation(d, SelectorAnnotation::ClusterNameSelector) {
            let c = self.cluster;
            let named = names
                .split(',')
                .map(str::trim)
                .any(|n| n == c.name || c.aliases.iter().any(|a| a == n));
            if !named {
                return Vec::new();
            }
            hops.push(Evidence::new(
                d.at(line),
                Hop::ConfigSync(Box::new(ConfigSyncHop::Selected {
                    annotation: SelectorAnnotation::ClusterNameSelector,
                    selector: names.into(),
                    picked: c.name.as_str().into(),
                    by: "".into(),
                })),
            ));
        }
        let Some((name, line)) = annotation(d, SelectorAnnotation::NamespaceSelector) else {
            return vec![(hops, None)];
        };
        let Some(selector) = self.selectors.find("NamespaceSelector", name, self.root) else {
            notes.push(Unresolved {
                location: d.at(line),
                reason: format!(
                    "{} {} names NamespaceSelector {name}, which is not defined in this repository: Config Sync places it in no namespace",
                    d.id.kind.as_deref().unwrap_or("?"),
                    name_of(d)
                ),
            });
            return Vec::new();
        };
        let pick = |namespace: &str, labels: &BTreeMap<String, String>| {
            let terms = selected_by(selector, labels)?;
            let mut hops = hops.clone();
            hops.push(selected_hop(
                selector,
                SelectorAnnotation::NamespaceSelector,
                name,
                namespace,
                terms,
            ));
            Some(hops)
        };
        match namespaces {
            Namespaces::One(namespace, labels) => pick(namespace, labels)
                .map(|h| (h, None))
                .into_iter()
                .collect(),
            Namespaces::Declared(declared) => declared
                .iter()
                .filter_map(|(ns, labels)| Some((pick(ns, labels)?, Some(ns.clone()))))
                .collect(),
        }
    }
}

/// The terms of `selector`'s `spec.selector` when `labels` satisfy them; `None` when they do
/// not, or it has no selector.
fn selected_by(selector: &Document, labels: &BTreeMap<String, String>) -> Option<String> {
    let s = LabelSelector::read(selector.root.get("spec").and_then(|s| s.get("selector"))?);
    s.matches(labels).then(|| s.terms())
}

/// The hop of a selector object that picks a cluster or namespace, at its `selector:` line.
fn selected_hop(
    selector: &Document,
    annotation: SelectorAnnotation,
    name: &str,
    picked: &str,
    terms: String,
) -> Evidence {
    let line = selector
        .root
        .get("spec")
        .and_then(|s| s.entry("selector"))
        .map_or(selector.first_line, |e| e.key.span.line);
    Evidence::new(
        Location::new(&selector.file, line),
        Hop::ConfigSync(Box::new(ConfigSyncHop::Selected {
            annotation,
            selector: name.into(),
            picked: picked.into(),
            by: terms.into(),
        })),
    )
}

/// Splits the delivery `base` of a folder by what the selectors say of each document in
/// `scope` (the documents the folder holds): one delivery of the documents no selector names
/// (less those the selectors leave out), and one per set of selector hops (and namespace)
/// that picks the others.
pub(super) fn split(
    base: Delivery,
    scope: impl IntoIterator<Item = (DocRef, Picks)>,
    out: &mut Vec<Delivery>,
) {
    let mut left_out: HashSet<DocRef> = HashSet::default();
    let mut groups: Vec<(Pick, HashSet<DocRef>)> = Vec::new();
    for (r, picks) in scope {
        let plain = picks.len() == 1 && picks[0].0.is_empty() && picks[0].1.is_none();
        if plain {
            continue;
        }
        left_out.insert(r);
        for pick in picks {
            match groups.iter_mut().find(|(key, _)| *key == pick) {
                Some((_, docs)) => {
                    docs.insert(r);
                }
                None => {
                    let mut docs = HashSet::default();
                    docs.insert(r);
                    groups.push((pick, docs));
                }
            }
        }
    }
    for ((hops, namespace), docs) in groups {
        let mut chain = base.chain.clone();
        chain.extend(hops);
        out.push(Delivery {
            chain,
            force_namespace: namespace.or_else(|| base.force_namespace.clone()),
            documents: DocumentFilter::Only(Arc::new(docs)),
            ..base.clone()
        });
    }
    out.push(if left_out.is_empty() {
        base
    } else {
        Delivery {
            documents: DocumentFilter::Except(Arc::new(left_out)),
            ..base
        }
    });
}

/// The documents of the files in `dir` (and below it when `recurse`), for [`split`].
pub(super) fn documents_in<'a>(
    index: &'a RepoIndex<'a>,
    dir: &str,
    recurse: bool,
) -> Vec<(DocRef, &'a Document)> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(d) = dirs.pop() {
        for &f in index.files_in(&d) {
            out.extend(index.manifests_of(f).map(|r| (r, index.doc(r))));
        }
        if recurse {
            dirs.extend(index.subdirs_of(&d).map(str::to_owned));
        }
    }
    out
}

/// Notes for the selectors that pick nothing: each ClusterSelector that no known cluster's
/// labels satisfy, and each cluster name a `cluster-name-selector` names that no cluster
/// here is known by.
pub(super) fn unmatched(index: &RepoIndex<'_>, inventory: &Inventory) -> Vec<Unresolved> {
    let mut notes = Vec::new();
    for (_, d) in index
        .of_kind("ClusterSelector")
        .filter(|(_, d)| api_in(d, GROUP))
    {
        let spec = d.root.get("spec");
        let Some(selector) = spec
            .and_then(|s| s.get("selector"))
            .map(LabelSelector::read)
        else {
            continue;
        };
        if inventory
            .clusters
            .iter()
            .any(|c| selector.matches(&c.labels))
        {
            continue;
        }
        let line = spec
            .and_then(|s| s.entry("selector"))
            .map_or(d.first_line, |e| e.key.span.line);
        notes.push(Unresolved {
            location: d.at(line),
            reason: format!(
                "Config Sync ClusterSelector {} ({}) matches no cluster known here (clusterregistry Cluster objects, ConfigManagement clusterName, .envfence.yaml clusters and their labels), so the objects that name it are placed on no cluster",
                name_of(d),
                selector.terms()
            ),
        });
    }
    let key = SelectorAnnotation::ClusterNameSelector.key();
    for (_, d) in index
        .all_docs()
        .filter(|(_, d)| d.annotations.contains_key(key))
    {
        let Some((names, line)) = annotation(d, SelectorAnnotation::ClusterNameSelector) else {
            continue;
        };
        let unknown: Vec<&str> = names
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty() && inventory.find(n).is_none())
            .collect();
        if unknown.is_empty() {
            continue;
        }
        notes.push(Unresolved {
            location: d.at(line),
            reason: format!(
                "{} {}: configsync.gke.io/cluster-name-selector names {}, not a cluster known here (ConfigManagement clusterName, clusterregistry Cluster objects, .envfence.yaml clusters), so it lands on no such cluster",
                d.id.kind.as_deref().unwrap_or("?"),
                name_of(d),
                unknown.join(", ")
            ),
        });
    }
    notes
}

/// The folder `dir` shown with its slash (`/` for the repository root).
pub(super) fn shown_dir(dir: &str) -> String {
    if dir.is_empty() {
        "/".to_owned()
    } else {
        format!("{dir}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::yaml::parse_stream;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn label_selectors_match_labels_and_expressions_and_say_their_terms() {
        let stream = parse_stream(
            "matchLabels:\n  location: belgium\nmatchExpressions:\n  - {key: env, operator: In, values: [prod, live]}\n  - {key: legacy, operator: DoesNotExist}\n",
        );
        let root = &stream.docs[0].root;
        let s = LabelSelector::read(root);
        assert!(s.matches(&labels(&[("location", "belgium"), ("env", "prod")])));
        assert!(!s.matches(&labels(&[("location", "belgium"), ("env", "dev")])));
        assert!(!s.matches(&labels(&[
            ("location", "belgium"),
            ("env", "prod"),
            ("legacy", "yes")
        ])));
        assert_eq!(
            s.terms(),
            "location=belgium, env In [prod, live], legacy DoesNotExist"
        );
        // An empty selector matches everything, as in Kubernetes.
        let empty = parse_stream("{}\n");
        let all = LabelSelector::read(&empty.docs[0].root);
        assert!(all.matches(&BTreeMap::new()));
    }

    #[test]
    fn within_is_a_folder_boundary() {
        assert!(within("acm", "acm/cluster/a.yaml"));
        assert!(!within("acm", "acm-2/cluster/a.yaml"));
        assert!(within("", "a.yaml"));
        assert_eq!(shown_dir(""), "/");
        assert_eq!(shown_dir("acm/x"), "acm/x/");
    }
}
