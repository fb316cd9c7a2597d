//! `no-network-isolation`: on a cluster that mixes production and non-production workloads,
//! a namespace has no default-deny NetworkPolicy for both ingress and egress.
//!
//! **Why it matters**: without a default-deny policy every pod accepts traffic from, and sends
//! traffic to, every other namespace: a preview or test workload can call production services
//! directly, whatever namespace it sits in.
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
//! and namespace, at the deployer line of the first workload in that namespace.

use std::collections::{BTreeMap, BTreeSet};

use super::placement::{line_to_change, object_label, workloads_by_cluster};
use super::{Rule, RuleContext, RuleId};
use crate::documents::{Document, Node};
use crate::findings::{Finding, Severity};
use crate::topology::Env;

pub struct NoNetworkIsolation;

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
                let Some(doc) = ctx.files.get(r.file).and_then(|f| f.documents.get(r.doc)) else {
                    continue;
                };
                let (i, e) = default_deny(doc);
                let entry = denied.entry(ns).or_default();
                entry.0 |= i;
                entry.1 |= e;
            }
            let mut seen = BTreeSet::new();
            for p in &workloads {
                let Some(ns) = p.object.namespace.as_deref() else {
                    continue;
                };
                if p.object.kind == "NetworkPolicy" || !seen.insert(ns) {
                    continue;
                }
                let (ingress, egress) = denied.get(ns).copied().unwrap_or_default();
                if ingress && egress {
                    continue;
                }
                let missing = match (ingress, egress) {
                    (false, false) => "ingress and egress",
                    (true, false) => "egress",
                    _ => "ingress",
                };
                let message = format!(
                    "namespace {ns} on mixed cluster {} has no default-deny NetworkPolicy for {missing}: its workloads (such as {}) can reach, and be reached from, every other namespace",
                    cluster.name,
                    object_label(p)
                );
                let mut finding = Finding::new(self.id(), severity, line_to_change(p), message)
                    .resource(crate::documents::ResourceId {
                        api_version: Some("v1".into()),
                        kind: Some("Namespace".into()),
                        name: Some(ns.to_owned()),
                        namespace: None,
                    })
                    .cluster(cluster.name.clone(), cluster.environment.as_str())
                    .subject(&p.object.file, p.object.line);
                for hop in &p.evidence {
                    finding = finding.evidence(hop.location.clone(), hop.note.clone());
                }
                findings.push(finding);
            }
        }
        findings
    }
}
