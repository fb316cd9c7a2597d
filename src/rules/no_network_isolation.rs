//! The `no-network-isolation` check. What it reports, why that matters and how to fix it are
//! written once, in `policies/no-network-isolation.yaml`, the source of
//! `docs/rules/no-network-isolation.md` (DESIGN §4).
//!
//! **Example** of what satisfies it, placed in the namespace:
//! ```yaml
//! kind: NetworkPolicy
//! metadata: {name: default-deny}
//! spec:
//!   podSelector: {}
//!   policyTypes: [Ingress, Egress]
//! ```
//! Two policies (one denying ingress, one denying egress) count too, and so does a default
//! policy whose rules admit only the namespace's own pods or named namespaces (`from:
//! [{podSelector: {}}]`): what is not open to every other namespace is isolated. One finding
//! per cluster and deployer, listing the namespaces it fills (the first few, the rest
//! counted) and only the directions that are open, at the deployer's destination line; where
//! the deployer delivers whole namespaces (a `paths` rule, a cluster folder), one finding per
//! namespace, at its Namespace object.

use std::collections::BTreeMap;

use super::placement::{
    listed, names_all, namespace_unit, object_label, unit_location, workloads_by_cluster,
};
use super::{Rule, RuleContext, RuleId};
use crate::documents::{Document, Node, ResourceId};
use crate::findings::{Finding, Location, Member, Severity};
use crate::topology::{Env, Placement};

pub struct NoNetworkIsolation;

/// The namespaces one deployer fills on a mixed cluster without isolation.
struct Group<'a> {
    first: &'a Placement,
    /// Namespace → the directions it leaves open.
    namespaces: BTreeMap<&'a str, Open>,
}

/// The directions a namespace leaves open to every other namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Open {
    Both,
    Ingress,
    Egress,
}

impl Open {
    fn words(self) -> &'static str {
        match self {
            Open::Both => "ingress and egress",
            Open::Ingress => "ingress",
            Open::Egress => "egress",
        }
    }

    /// What the namespace's workloads can do across namespaces.
    fn exposure(self) -> &'static str {
        match self {
            Open::Both => "can reach, and be reached from, every other namespace",
            Open::Ingress => "can be reached from every other namespace",
            Open::Egress => "can reach every other namespace",
        }
    }
}

/// Whether one peer of a rule (`from` or `to` entry) admits every namespace: an empty
/// `namespaceSelector` does, and so does an `ipBlock` of every address. A `podSelector`
/// alone means the namespace's own pods; a `namespaceSelector` with labels, named namespaces.
fn peer_admits_all(peer: &Node) -> bool {
    let empty = |n: &Node| {
        n.is_null()
            || n.as_map().is_some_and(|m| {
                m.iter().all(|e| {
                    e.value.is_null()
                        || e.value.as_map().is_some_and(<[_]>::is_empty)
                        || e.value.as_seq().is_some_and(<[_]>::is_empty)
                })
            })
    };
    if peer.get("namespaceSelector").is_some_and(empty) {
        return true;
    }
    peer.get("ipBlock")
        .and_then(|b| b.get("cidr"))
        .and_then(Node::as_str)
        .is_some_and(|cidr| matches!(cidr.trim(), "0.0.0.0/0" | "::/0"))
}

/// Which directions a NetworkPolicy isolates from every other namespace: (ingress, egress).
/// It must select every pod of its namespace and declare the direction; its rules may admit
/// the namespace's own pods or named namespaces, but not every namespace.
fn default_deny(doc: &Document) -> (bool, bool) {
    let Some(spec) = doc.root.get("spec") else {
        return (false, false);
    };
    let selects_all = spec
        .get("podSelector")
        .is_some_and(|s| s.as_map().is_some_and(<[_]>::is_empty) || s.is_null());
    if !selects_all {
        return (false, false);
    }
    let types: Vec<&str> = spec
        .get("policyTypes")
        .and_then(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .filter_map(Node::as_str)
        .collect();
    // Kubernetes' default when policyTypes is absent: Ingress, plus Egress if egress rules exist.
    let ingress_type = types.is_empty() || types.contains(&"Ingress");
    let egress_type = types.contains(&"Egress");
    // A rule without peers admits every source (or destination); so does one peer that does.
    let closed = |key: &str, peers: &str| match spec.get(key) {
        None => true,
        Some(rules) if rules.is_null() => true,
        Some(rules) => rules.as_seq().is_some_and(|rules| {
            rules.iter().all(|rule| {
                rule.get(peers)
                    .and_then(Node::as_seq)
                    .is_some_and(|list| !list.is_empty() && !list.iter().any(peer_admits_all))
            })
        }),
    };
    (
        ingress_type && closed("ingress", "from"),
        egress_type && closed("egress", "to"),
    )
}

impl Rule for NoNetworkIsolation {
    fn id(&self) -> RuleId {
        RuleId::NoNetworkIsolation
    }

    fn check(&self, ctx: &RuleContext<'_>, severity: Severity) -> Vec<Finding> {
        let mut findings = Vec::new();
        for (cluster, workloads) in workloads_by_cluster(ctx) {
            let mixed = workloads
                .iter()
                .any(|p| p.workload_class == Env::Production)
                && workloads
                    .iter()
                    .any(|p| p.workload_class == Env::NonProduction);
            if !mixed {
                continue;
            }
            // Default-deny directions per namespace, from the NetworkPolicies placed here.
            let mut denied: BTreeMap<&str, (bool, bool)> = BTreeMap::new();
            for p in &workloads {
                if p.object.kind != "NetworkPolicy" {
                    continue;
                }
                let (Some(ns), Some(r)) = (p.object.namespace.as_deref(), p.object.doc) else {
                    continue;
                };
                let Some(doc) = ctx.topology.document(ctx.files, r) else {
                    continue;
                };
                let (i, e) = default_deny(doc);
                let entry = denied.entry(ns).or_default();
                entry.0 |= i;
                entry.1 |= e;
            }
            // One finding per deployer (per namespace where the deployer delivers whole
            // namespaces): the namespaces it fills without isolation.
            let mut by_deployer: BTreeMap<(Location, Option<&str>), Group<'_>> = BTreeMap::new();
            for p in &workloads {
                let Some(ns) = p.object.namespace.as_deref() else {
                    continue;
                };
                if p.object.kind == "NetworkPolicy" {
                    continue;
                }
                let open = match denied.get(ns).copied().unwrap_or_default() {
                    (true, true) => continue,
                    (false, false) => Open::Both,
                    (true, false) => Open::Egress,
                    (false, true) => Open::Ingress,
                };
                let location = match &p.deployer {
                    Some(d) => d.location.clone(),
                    None => Location::new(&p.object.file, p.object.line),
                };
                let unit = namespace_unit(p, &location);
                let group = by_deployer
                    .entry((location, unit))
                    .or_insert_with(|| Group {
                        first: p,
                        namespaces: BTreeMap::new(),
                    });
                group.namespaces.entry(ns).or_insert(open);
            }
            // The Namespace objects here, by deployer: a namespace unit's finding points where
            // its own Namespace comes in.
            let mut homes: BTreeMap<(&Location, &str), &Placement> = BTreeMap::new();
            for p in workloads.iter().filter(|p| p.object.kind == "Namespace") {
                if let (Some(d), Some(name)) = (&p.deployer, p.object.name.as_deref()) {
                    homes.entry((&d.location, name)).or_insert(p);
                }
            }
            for ((line, unit), group) in by_deployer {
                let p = group.first;
                let location = match unit {
                    Some(ns) => {
                        let home: Vec<&Placement> =
                            homes.get(&(&line, ns)).copied().into_iter().collect();
                        unit_location(p, &home, ns)
                    }
                    None => line,
                };
                // When every namespace leaves the same directions open, say them once;
                // otherwise after each namespace.
                let mut open: Vec<Open> = group.namespaces.values().copied().collect();
                open.sort_unstable();
                open.dedup();
                let (names, for_what, exposure): (Vec<String>, String, &str) = match open.as_slice()
                {
                    [only] => (
                        group.namespaces.keys().map(|ns| ns.to_string()).collect(),
                        format!(" for {}", only.words()),
                        only.exposure(),
                    ),
                    _ => (
                        group
                            .namespaces
                            .iter()
                            .map(|(ns, open)| format!("{ns} ({})", open.words()))
                            .collect(),
                        String::new(),
                        "are open to every other namespace in the directions named",
                    ),
                };
                let via = p
                    .deployer
                    .as_ref()
                    .map(|d| format!(" from {} {}", d.kind, d.name))
                    .unwrap_or_default();
                let (noun, verb, whose) = if names.len() == 1 {
                    ("namespace", "has", "its")
                } else {
                    ("namespaces", "have", "their")
                };
                let message = format!(
                    "{noun} {} on mixed cluster {}{via} {verb} no default-deny NetworkPolicy{for_what}: {whose} workloads (such as {}) {exposure}",
                    listed(&names),
                    cluster.name,
                    object_label(p)
                );
                let namespace = |name: &str| ResourceId {
                    api_version: Some("v1".into()),
                    kind: Some("Namespace".into()),
                    name: Some(name.into()),
                    namespace: None,
                };
                let first_ns = group.namespaces.keys().next().copied().unwrap_or("?");
                let mut finding = Finding::new(self.id(), severity, location, message)
                    .resource(namespace(first_ns))
                    .cluster(cluster.name.clone(), cluster.environment.as_str())
                    .subject(&p.object.file, p.object.line);
                if let Some(ns) = unit {
                    finding = finding.discriminator(ns);
                }
                if !names_all(group.namespaces.len()) {
                    finding = finding.members(
                        group
                            .namespaces
                            .keys()
                            .map(|ns| Member {
                                resource: namespace(ns),
                                location: None,
                            })
                            .collect(),
                    );
                }
                for hop in &p.evidence {
                    finding = finding.hop(hop);
                }
                findings.push(finding);
            }
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::{load, Loaded};
    use std::sync::Arc;

    fn policy(spec: &str) -> (bool, bool) {
        let text = format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: default\nspec:\n{spec}"
        );
        let path: Arc<str> = Arc::from("netpol.yaml");
        match load(&path, text.as_bytes(), None) {
            Loaded::File(file) => default_deny(&file.documents[0]),
            Loaded::Skipped(_) => panic!("parses"),
        }
    }

    #[test]
    fn what_a_default_policy_isolates() {
        // Deny all, both ways.
        assert_eq!(
            policy("  podSelector: {}\n  policyTypes: [Ingress, Egress]\n"),
            (true, true)
        );
        // Ingress only from the namespace's own pods, or from named namespaces.
        assert_eq!(
            policy("  podSelector: {}\n  policyTypes: [Ingress]\n  ingress:\n    - from:\n      - podSelector: {}\n"),
            (true, false)
        );
        assert_eq!(
            policy("  podSelector: {}\n  ingress:\n    - from:\n      - namespaceSelector:\n          matchLabels:\n            component: ingress-controllers\n"),
            (true, false)
        );
        // Egress to the namespace's own pods only.
        assert_eq!(
            policy("  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n    - to:\n      - podSelector:\n          matchLabels: {app: db}\n"),
            (false, true)
        );
        // Open to every namespace: an empty namespaceSelector, a rule without peers (ports
        // only), every address.
        for spec in [
            "  podSelector: {}\n  ingress:\n    - from:\n      - namespaceSelector: {}\n",
            "  podSelector: {}\n  ingress:\n    - ports:\n      - port: 8080\n",
            "  podSelector: {}\n  ingress:\n    - {}\n",
            "  podSelector: {}\n  ingress:\n    - from:\n      - ipBlock:\n          cidr: 0.0.0.0/0\n",
            "  podSelector: {}\n  ingress:\n    - from:\n      - namespaceSelector:\n          matchLabels: {}\n",
        ] {
            assert_eq!(policy(spec), (false, false), "{spec}");
        }
        // Not every pod of the namespace.
        assert_eq!(
            policy(
                "  podSelector:\n    matchLabels: {app: web}\n  policyTypes: [Ingress, Egress]\n"
            ),
            (false, false)
        );
    }
}
