//! Cluster selectors as data: what an ApplicationSet clusters generator or a Config Sync
//! ClusterSelector asks of a cluster's labels. The families read them
//! (`Family::cluster_selectors`); the build records which ones match no cluster, so that the
//! summary and `envfence init` can say which labels to declare.

use std::collections::BTreeMap;

use crate::documents::Node;
use crate::location::Location;

/// A Kubernetes label selector: `matchLabels` and `matchExpressions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub labels: Vec<(String, String)>,
    pub expressions: Vec<Expression>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression {
    pub key: String,
    pub operator: String,
    pub values: Vec<String>,
}

/// What a selector asks of one label key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// One of these values (`matchLabels`, `In`); the first is the one to declare.
    OneOf(Vec<String>),
    /// Any value (`Exists`).
    Present,
    /// No such label (`DoesNotExist`).
    Absent,
}

impl LabelSelector {
    /// The selector written at `node` (the `selector:` map).
    pub fn read(node: &Node) -> Self {
        let expressions = node
            .get("matchExpressions")
            .and_then(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .map(|e| Expression {
                key: e.get("key").and_then(Node::as_str).unwrap_or("").to_owned(),
                operator: e
                    .get("operator")
                    .and_then(Node::as_str)
                    .unwrap_or("")
                    .to_owned(),
                values: e
                    .get("values")
                    .and_then(Node::as_seq)
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(Node::as_str)
                    .map(str::to_owned)
                    .collect(),
            })
            .collect();
        LabelSelector {
            labels: node
                .get("matchLabels")
                .map(Node::string_map)
                .unwrap_or_default(),
            expressions,
        }
    }

    /// An empty selector (it matches every cluster).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.expressions.is_empty()
    }

    /// Whether `labels` satisfy every term, as Kubernetes decides it.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.expressions.iter().all(|e| {
                let value = labels.get(&e.key);
                match e.operator.as_str() {
                    "In" => value.is_some_and(|v| e.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !e.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }

    /// What each key must be for a cluster to match, in the order written (`NotIn` asks for
    /// nothing a new cluster must declare).
    pub fn wanted(&self) -> Vec<(String, Wanted)> {
        let mut out: Vec<(String, Wanted)> = self
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), Wanted::OneOf(vec![v.clone()])))
            .collect();
        for e in &self.expressions {
            let wanted = match e.operator.as_str() {
                "In" if !e.values.is_empty() => Wanted::OneOf(e.values.clone()),
                "Exists" => Wanted::Present,
                "DoesNotExist" => Wanted::Absent,
                _ => continue,
            };
            out.push((e.key.clone(), wanted));
        }
        out
    }

    /// Its terms in words: `env=prod, tier In [a, b]`.
    pub fn terms(&self) -> String {
        let mut terms: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for e in &self.expressions {
            terms.push(if e.values.is_empty() {
                format!("{} {}", e.key, e.operator)
            } else {
                format!("{} {} [{}]", e.key, e.operator, e.values.join(", "))
            });
        }
        terms.join(", ")
    }
}

/// A cluster selector of the repository, as a family read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorUse {
    /// The `selector:` line (or the selector object's).
    pub location: Location,
    /// What selects: `ApplicationSet addons`, `ClusterSelector prod`.
    pub by: String,
    pub selector: LabelSelector,
    /// Argo CD's cluster generator: only clusters Argo CD knows are candidates, and each
    /// carries the cluster Secret's type label.
    pub argo: bool,
    /// Cluster annotations the selecting deployer's template reads
    /// (`metadata.annotations.<key>`), which a declared cluster should carry too.
    pub reads_annotations: Vec<String>,
    /// Whether some cluster of the finished inventory matches it (set by the build).
    pub matched: bool,
}
