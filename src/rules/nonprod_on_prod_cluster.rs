//! The `nonprod-on-prod-cluster` check. What it reports, why that matters and how to fix it are
//! written once, in `policies/nonprod-on-prod-cluster.yaml`, the source of
//! `docs/rules/nonprod-on-prod-cluster.md` (DESIGN §4).
//!
//! **Example**: a feature Application sent to the production cluster.
//! ```yaml
//! metadata:
//!   name: checkout-feature-dark-mode
//! spec:
//!   destination:
//!     name: prod-us        # nonprod-on-prod-cluster
//! ```
//! One finding per line to change and cluster: the objects a feature overlay brings along are
//! named in the message (the first few, the rest counted), not reported one by one. Where the
//! deployer delivers whole namespaces (a `paths` rule, a cluster folder), one finding per
//! namespace, at its Namespace object: a pull request that adds a namespace gets a finding
//! of its own.

use std::collections::BTreeMap;

use super::placement::{
    deployer_kinds, is_workload, line_to_change, listed, members_of, namespace_unit, object_label,
    policy_list, resource_of, unit_location,
};
use super::{Rule, RuleContext, RuleId};
use crate::findings::{Finding, Location, Severity};
use crate::topology::{Env, Placement, Purpose};

pub struct NonprodOnProdCluster;

impl Rule for NonprodOnProdCluster {
    fn id(&self) -> RuleId {
        RuleId::NonprodOnProdCluster
    }

    fn check(&self, ctx: &RuleContext<'_>, severity: Severity) -> Vec<Finding> {
        let policy = ctx.policies.get(self.id());
        let deployer_kinds = deployer_kinds(policy);
        let cluster_scoped = policy_list(policy, "cluster_scoped_kinds");
        let t = ctx.topology;
        // (line to change, cluster, namespace unit) → the placements it causes.
        type Key<'t> = (Location, usize, Option<&'t str>);
        let mut groups: BTreeMap<Key<'_>, Vec<&Placement>> = BTreeMap::new();
        for p in &t.placements {
            if p.cluster_environment == Env::Production
                && p.workload_class == Env::NonProduction
                && is_workload(p, &deployer_kinds)
            {
                let line = line_to_change(p);
                let unit = namespace_unit(p, &line);
                groups.entry((line, p.cluster, unit)).or_default().push(p);
            }
        }
        groups
            .into_iter()
            .map(|((line, cluster, unit), placements)| {
                let c = &t.clusters[cluster];
                let first = placements[0];
                let location = match unit {
                    Some(ns) => unit_location(first, &placements, ns),
                    None => line,
                };
                let scoped: Vec<String> = placements
                    .iter()
                    .filter(|p| cluster_scoped.iter().any(|k| *k == p.object.kind))
                    .map(|p| object_label(p))
                    .collect();
                // Objects of one name in several namespaces (a component each namespace
                // includes) are told apart by their namespace.
                let namespaces: std::collections::BTreeSet<&str> = placements
                    .iter()
                    .filter_map(|p| p.object.namespace.as_deref())
                    .collect();
                let labels: Vec<String> = placements
                    .iter()
                    .map(|p| match &p.object.namespace {
                        Some(ns) if namespaces.len() > 1 && !p.opaque && !p.renders_chart => {
                            format!("{} (namespace {ns})", object_label(p))
                        }
                        _ => object_label(p),
                    })
                    .collect();
                let mut what = match placements.len() {
                    1 => format!("non-production {}", object_label(first)),
                    n => format!("{n} non-production objects ({})", listed(&labels)),
                };
                if let Some(ns) = unit.filter(|_| placements.len() > 1) {
                    what.push_str(&format!(" in namespace {ns}"));
                }
                // One line can place through several deployers: the Applications that one
                // ApplicationSet template generates. Name them all, not just the first.
                let mut deployers: Vec<(&str, &str)> = Vec::new();
                for d in placements.iter().filter_map(|p| p.deployer.as_ref()) {
                    if !deployers.contains(&(d.kind.as_str(), d.name.as_str())) {
                        deployers.push((d.kind.as_str(), &d.name));
                    }
                }
                let via = match deployers.as_slice() {
                    [] => String::new(),
                    [(kind, name)] => format!(" by {kind} {name}"),
                    many => format!(
                        " by {} {}s {}",
                        many.len(),
                        many[0].0,
                        listed(&many.iter().map(|(_, name)| *name).collect::<Vec<_>>())
                    ),
                };
                let mut message = format!(
                    "{what} placed{via} on production cluster {} ({})",
                    c.name, first.class_reason
                );
                // DESIGN §4: CI runners on production say why they do not belong there.
                if placements.iter().any(|p| p.purpose == Purpose::Ci) {
                    message.push_str(
                        "; CI runners execute code from pull requests, here next to production services and secrets",
                    );
                }
                if !scoped.is_empty() {
                    message.push_str(&format!(
                        "; cluster-scoped {} change{} the whole cluster",
                        listed(&scoped),
                        if scoped.len() == 1 { "s" } else { "" }
                    ));
                }
                let mut finding = Finding::new(self.id(), severity, location, message)
                    .resource(resource_of(first, ctx.topology, ctx.files))
                    .subject(&first.object.file, first.object.line)
                    .cluster(c.name.clone(), c.environment.as_str())
                    .members(members_of(&placements, ctx.topology, ctx.files));
                if let Some(ns) = unit {
                    finding = finding.discriminator(ns);
                }
                for hop in &first.evidence {
                    finding = finding.hop(hop);
                }
                if let Some(declared) = c.declared_in.first() {
                    finding = finding.evidence(
                        declared.clone(),
                        format!("cluster {} is production: {}", c.name, c.env_reason),
                    );
                }
                finding
            })
            .collect()
    }
}
