//! Kubernetes label selectors (`matchLabels`, `matchExpressions`): what ApplicationSet cluster
//! generators, Config Sync's ClusterSelectors and NamespaceSelectors match labels with.

use std::collections::BTreeMap;

use crate::documents::Node;

/// A Kubernetes label selector (`matchLabels`, `matchExpressions`), as ClusterSelectors,
/// NamespaceSelectors and ApplicationSet cluster generators write it.
#[derive(Default)]
pub struct LabelSelector<'n> {
    labels: Vec<(String, String)>,
    expressions: Vec<Requirement<'n>>,
}

/// One `matchExpressions` entry.
struct Requirement<'n> {
    key: &'n str,
    operator: &'n str,
    values: Vec<&'n str>,
}

impl<'n> LabelSelector<'n> {
    /// The selector at `node` (the `selector:` map); `None` when there is none.
    pub fn read(node: Option<&'n Node>) -> Option<Self> {
        let node = node?;
        let expressions = node
            .get("matchExpressions")
            .and_then(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .map(|e| Requirement {
                key: e.get("key").and_then(Node::as_str).unwrap_or(""),
                operator: e.get("operator").and_then(Node::as_str).unwrap_or(""),
                values: e
                    .get("values")
                    .and_then(Node::as_seq)
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(Node::as_str)
                    .collect(),
            })
            .collect();
        Some(LabelSelector {
            labels: node
                .get("matchLabels")
                .map(Node::string_map)
                .unwrap_or_default(),
            expressions,
        })
    }

    /// Whether it has no term (which matches everything).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.expressions.is_empty()
    }

    /// Whether `labels` satisfy every term. An empty selector matches everything, as in
    /// Kubernetes.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.expressions.iter().all(|e| {
                let value = labels.get(e.key).map(String::as_str);
                match e.operator {
                    "In" => value.is_some_and(|v| e.values.contains(&v)),
                    "NotIn" => value.is_none_or(|v| !e.values.contains(&v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }

    /// Its terms in words: `location=belgium, tier In [a, b]`.
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
