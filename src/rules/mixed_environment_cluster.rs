//! The `mixed-environment-cluster` check. What it reports, why that matters and how to fix it are
//! written once, in `policies/mixed-environment-cluster.yaml`, the source of
//! `docs/rules/mixed-environment-cluster.md` (DESIGN §4).
//!
//! **Example**: a preview environment added to a production cluster's Flux tree.
//! ```yaml
//! # clusters/prod-eu/payments-preview.yaml
//! kind: Kustomization
//! spec:
//!   path: ./apps/payments/overlays/preview-pr-481   # mixed-environment-cluster
//! ```
//! One finding per cluster and non-production deployer, at the deployer's destination line (or,
//! for a test object pulled into a production overlay, at the line that pulls it in). Where
//! the deployer delivers whole namespaces (a `paths` rule, a cluster folder), one finding per
//! non-production namespace, at its Namespace object.

use std::collections::BTreeMap;

use super::placement::{
    labels_of, line_to_change, members_of, names_all, namespace_unit, object_label, resource_of,
    unit_location, workloads_by_cluster,
};
use super::{Rule, RuleContext, RuleId};
use crate::findings::{Finding, Location, Severity};
use crate::topology::{Deployer, Env, Placement};

pub struct MixedEnvironmentCluster;

impl Rule for MixedEnvironmentCluster {
    fn id(&self) -> RuleId {
        RuleId::MixedEnvironmentCluster
    }

    fn check(&self, ctx: &RuleContext<'_>, severity: Severity) -> Vec<Finding> {
        let mut findings = Vec::new();
        for (cluster, here) in workloads_by_cluster(ctx) {
            // The example of production names a running workload where there is one, not
            // its NetworkPolicy or ConfigMap.
            let runs = |p: &Placement| {
                matches!(
                    p.object.kind.as_str(),
                    "Deployment"
                        | "StatefulSet"
                        | "DaemonSet"
                        | "Job"
                        | "CronJob"
                        | "Pod"
                        | "HelmRelease"
                )
            };
            let prod: Vec<&Placement> = here
                .iter()
                .copied()
                .filter(|p| p.workload_class == Env::Production)
                .collect();
            let Some(production) = prod
                .iter()
                .copied()
                .find(|p| runs(p))
                .or(prod.first().copied())
            else {
                continue;
            };
            // Non-production deployers (or, for a test object pulled into a production overlay,
            // the line that pulls it in), each with the first object it brings.
            type Source<'t> = (Location, Option<&'t str>);
            let mut by_source: BTreeMap<Source<'_>, (&Deployer, Vec<&Placement>)> = BTreeMap::new();
            for p in here
                .iter()
                .filter(|p| p.workload_class == Env::NonProduction)
            {
                if let Some(d) = &p.deployer {
                    let line = line_to_change(p);
                    let unit = namespace_unit(p, &line);
                    by_source
                        .entry((line, unit))
                        .or_insert((d, Vec::new()))
                        .1
                        .push(p);
                }
            }
            for ((line, unit), (deployer, all)) in by_source {
                let first = all[0];
                let prod_via = production
                    .deployer
                    .as_ref()
                    .map(|d| format!(" via {} {}", d.kind, d.name))
                    .unwrap_or_default();
                // Applications generated at one line (an ApplicationSet template) are all named.
                let generated: Vec<&Placement> = all
                    .iter()
                    .copied()
                    .filter(|p| p.opaque || p.renders_chart)
                    .collect();
                let location = match unit {
                    Some(ns) => unit_location(first, &all, ns),
                    None => line.clone(),
                };
                let source = if let Some(ns) = unit {
                    format!(
                        "namespace {ns} (through {} {})",
                        deployer.kind, deployer.name
                    )
                } else if deployer.location == line && generated.len() > 1 {
                    labels_of(&generated)
                } else if deployer.location == line {
                    format!("{} {}", deployer.kind, deployer.name)
                } else {
                    format!(
                        "{} (through {} {})",
                        object_label(first),
                        deployer.kind,
                        deployer.name
                    )
                };
                let message = format!(
                    "cluster {} ({}) runs production workloads (such as {}{prod_via}) and non-production workloads from {source}; namespaces are the only boundary between them",
                    cluster.name,
                    cluster.environment,
                    object_label(production),
                );
                let mut finding = Finding::new(self.id(), severity, location, message)
                    .resource(resource_of(first, ctx.topology, ctx.files))
                    .subject(&first.object.file, first.object.line)
                    .cluster(cluster.name.clone(), cluster.environment.as_str())
                    .discriminator(&source);
                if !names_all(generated.len()) && unit.is_none() && deployer.location == line {
                    finding = finding.members(members_of(&generated, ctx.topology, ctx.files));
                }
                for hop in &first.evidence {
                    finding = finding.hop(hop);
                }
                if let Some(d) = &production.deployer {
                    finding = finding.evidence(
                        d.location.clone(),
                        format!(
                            "production {} lands on {} too ({})",
                            object_label(production),
                            cluster.name,
                            production.class_reason
                        ),
                    );
                }
                findings.push(finding);
            }
        }
        findings
    }
}
