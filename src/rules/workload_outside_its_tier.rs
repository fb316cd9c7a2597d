//! The `workload-outside-its-tier` check. What it reports, why that matters and how to fix it are
//! written once, in `policies/workload-outside-its-tier.yaml`, the source of
//! `docs/rules/workload-outside-its-tier.md` (DESIGN §4).
//!
//! **Example**: a k6 load test sent to the staging cluster while a testing cluster exists.
//! ```yaml
//! kind: Application
//! metadata:
//!   name: checkout-load
//! spec:
//!   destination:
//!     name: staging-eu     # workload-outside-its-tier
//! ```
//! One finding per line to change and cluster. A CI runner on a production cluster is not
//! this rule's: the runner's kind or image makes it non-production, so it is a
//! `nonprod-on-prod-cluster` error.

use std::collections::BTreeMap;

use super::placement::{
    deployer_kinds, is_workload, labels_of, line_to_change, members_of, namespace_unit,
    object_label, resource_of, unit_location,
};
use super::{Rule, RuleContext, RuleId};
use crate::findings::{Finding, Location, Severity};
use crate::topology::tiers::{homes, Catalog};
use crate::topology::{Env, Placement, Purpose, Tier};

pub struct WorkloadOutsideItsTier;

impl Rule for WorkloadOutsideItsTier {
    fn id(&self) -> RuleId {
        RuleId::WorkloadOutsideItsTier
    }

    fn check(&self, ctx: &RuleContext<'_>, severity: Severity) -> Vec<Finding> {
        let catalog = ctx
            .policies
            .get(self.id())
            .map(|p| Catalog::from_data(&p.data))
            .unwrap_or_default();
        let deployer_kinds = deployer_kinds(ctx.policies.get(RuleId::NonprodOnProdCluster));
        let t = ctx.topology;
        let tiers_present: Vec<Tier> = t.clusters.iter().filter_map(|c| c.tier).collect();
        // (line to change, cluster, purpose, namespace unit) → the placements it causes.
        type Key<'t> = (Location, usize, Purpose, Option<&'t str>);
        let mut groups: BTreeMap<Key<'_>, Vec<&Placement>> = BTreeMap::new();
        for p in &t.placements {
            let cluster = &t.clusters[p.cluster];
            let Some(tier) = cluster.tier else { continue };
            if cluster.environment != Env::NonProduction
                || tier == Tier::Production
                || matches!(p.purpose, Purpose::Unknown | Purpose::Production)
                || !is_workload(p, &deployer_kinds)
            {
                continue;
            }
            let (allowed, _) = homes(p.purpose, ctx.config, &catalog);
            if allowed.is_empty() || allowed.contains(&tier) {
                continue;
            }
            if !allowed.iter().any(|h| tiers_present.contains(h)) {
                continue;
            }
            let line = line_to_change(p);
            let unit = namespace_unit(p, &line);
            groups
                .entry((line, p.cluster, p.purpose, unit))
                .or_default()
                .push(p);
        }
        groups
            .into_iter()
            .map(|((line, cluster, purpose, unit), placements)| {
                let c = &t.clusters[cluster];
                let tier = c.tier.unwrap_or_default();
                let first = placements[0];
                let location = match unit {
                    Some(ns) => unit_location(first, &placements, ns),
                    None => line,
                };
                let (allowed, override_at) = homes(purpose, ctx.config, &catalog);
                let what = match placements.len() {
                    1 => object_label(first),
                    n => format!("{n} objects ({})", labels_of(&placements)),
                };
                let via = first
                    .deployer
                    .as_ref()
                    .map(|d| format!(" by {} {}", d.kind, d.name))
                    .unwrap_or_default();
                let home_names: Vec<&str> = allowed.iter().map(|h| h.as_str()).collect();
                let examples: Vec<&str> = t
                    .clusters
                    .iter()
                    .filter(|other| other.tier.is_some_and(|h| allowed.contains(&h)))
                    .map(|other| other.name.as_str())
                    .take(3)
                    .collect();
                let message = format!(
                    "{purpose} workload {what} placed{via} on {tier} cluster {} ({}); {purpose} workloads belong on {} clusters, such as {}",
                    c.name,
                    first.purpose_reason,
                    home_names.join(" or "),
                    examples.join(", "),
                );
                let mut finding = Finding::new(self.id(), severity, location, message)
                    .resource(resource_of(first, ctx.topology, ctx.files))
                    .subject(&first.object.file, first.object.line)
                    .cluster(c.name.clone(), c.environment.as_str())
                    .discriminator(&match unit {
                        Some(ns) => format!("{purpose} {ns}"),
                        None => purpose.as_str().to_owned(),
                    })
                    .members(members_of(&placements, ctx.topology, ctx.files));
                for hop in &first.evidence {
                    finding = finding.hop(hop);
                }
                if let Some(declared) = c.declared_in.first() {
                    finding = finding.evidence(
                        declared.clone(),
                        format!("cluster {} is of the {tier} tier: {}", c.name, c.tier_reason),
                    );
                }
                if let Some(at) = override_at {
                    finding = finding.evidence(
                        at,
                        format!("tiers: {purpose} may run on {}", home_names.join(", ")),
                    );
                }
                finding
            })
            .collect()
    }
}
