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
//! Two policies (one denying ingress, one denying egress) count too. One finding per cluster
//! and deployer, listing the namespaces it fills, at the deployer's destination line.

use std::collections::BTreeMap;

use super::placement::{object_label, workloads_by_cluster};
use super::{Rule, RuleContext, RuleId};
use crate::documents::{Document, Node};
use crate::findings::{Finding, Location, Severity};
use crate::topology::{Env, Placement};

pub struct NoNetworkIsolation;

/// The namespaces one deployer fills on a mixed cluster without isolation.
struct Group<'a> {
    first: &'a Placement,
    /// Namespace → the directions it does not deny.
    namespaces: BTreeMap<&'a str, &'static str>,
}

/// Which directions a NetworkPolicy denies by default: (ingress, egress).
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
    let no_rules = |key: &str| {
        spec.get(key)
            .is_none_or(|r| r.is_null() || r.as_seq().is_some_and(<[_]>::is_empty))
    };
    (
        ingress_type && no_rules("ingress"),
        egress_type && no_rules("egress"),
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
            // One finding per deployer: the namespaces it fills without isolation.
            let mut by_deployer: BTreeMap<Location, Group<'_>> = BTreeMap::new();
            for p in &workloads {
                let Some(ns) = p.object.namespace.as_deref() else {
                    continue;
                };
                if p.object.kind == "NetworkPolicy" {
                    continue;
                }
                let (ingress, egress) = denied.get(ns).copied().unwrap_or_default();
                if ingress && egress {
                    continue;
                }
                let location = match &p.deployer {
                    Some(d) => d.location.clone(),
                    None => Location::new(&p.object.file, p.object.line),
                };
                let group = by_deployer.entry(location).or_insert_with(|| Group {
                    first: p,
                    namespaces: BTreeMap::new(),
                });
                group
                    .namespaces
                    .entry(ns)
                    .or_insert(match (ingress, egress) {
                        (false, false) => "ingress and egress",
                        (true, false) => "egress",
                        _ => "ingress",
                    });
            }
            for (location, group) in by_deployer {
                let p = group.first;
                // When every namespace lacks the same directions, say them once at the end;
                // otherwise after each namespace.
                let mut missing_kinds: Vec<&str> = group.namespaces.values().copied().collect();
                missing_kinds.sort_unstable();
                missing_kinds.dedup();
                let (listed, for_what): (Vec<String>, String) = match missing_kinds.as_slice() {
                    [only] => (
                        group.namespaces.keys().map(|ns| ns.to_string()).collect(),
                        format!(" for {only}"),
                    ),
                    _ => (
                        group
                            .namespaces
                            .iter()
                            .map(|(ns, missing)| format!("{ns} ({missing})"))
                            .collect(),
                        String::new(),
                    ),
                };
                let via = p
                    .deployer
                    .as_ref()
                    .map(|d| format!(" from {} {}", d.kind, d.name))
                    .unwrap_or_default();
                let (noun, verb, whose) = if listed.len() == 1 {
                    ("namespace", "has", "its")
                } else {
                    ("namespaces", "have", "their")
                };
                let message = format!(
                    "{noun} {} on mixed cluster {}{via} {verb} no default-deny NetworkPolicy{for_what}: {whose} workloads (such as {}) can reach, and be reached from, every other namespace",
                    listed.join(", "),
                    cluster.name,
                    object_label(p)
                );
                let first_ns = group.namespaces.keys().next().copied().unwrap_or("?");
                let mut finding = Finding::new(self.id(), severity, location, message)
                    .resource(crate::documents::ResourceId {
                        api_version: Some("v1".into()),
                        kind: Some("Namespace".into()),
                        name: Some(first_ns.into()),
                        namespace: None,
                    })
                    .cluster(cluster.name.clone(), cluster.environment.as_str())
                    .subject(&p.object.file, p.object.line);
                for hop in &p.evidence {
                    finding = finding.hop(hop);
                }
                findings.push(finding);
            }
        }
        findings
    }
}
