//! The `project-denies-destination` check. What it reports, why that matters and how to fix
//! it are written once, in `policies/project-denies-destination.yaml`, the source of
//! `docs/rules/project-denies-destination.md` (DESIGN §4).
//!
//! **Example**: an Application sent to a cluster its project does not list.
//! ```yaml
//! kind: AppProject
//! metadata: {name: team-a}
//! spec:
//!   destinations:
//!     - {name: 'staging-*', namespace: 'team-a-*'}
//! ---
//! kind: Application
//! spec:
//!   project: team-a
//!   destination:
//!     name: prod-us        # project-denies-destination
//!     namespace: team-a-web
//! ```
//! The topology judges every Argo CD Application (those ApplicationSets generate too, with
//! their templated `project`) whose AppProject the repository defines, and records the
//! verdict as an AppProject hop of its placements; this rule reads the denials back. One
//! finding per (Application line, cluster, denial): at the destination line for a denied
//! destination or namespace, at the source's `repoURL` line for a denied source; the
//! Applications one template line generates are named together. A cluster-scoped object (the
//! kinds of `nonprod-on-prod-cluster`'s `cluster_scoped_kinds`) delivered through a project
//! that does not whitelist it is one finding per (Application, cluster, kind), at the
//! destination line. An Application that places nothing is not judged.

use std::collections::HashMap;
use std::sync::Arc;

use super::placement::{listed, object_label, policy_list};
use super::{Rule, RuleContext, RuleId};
use crate::documents::ResourceId;
use crate::evidence::{Hop, ProjectVerdict};
use crate::findings::{Evidence, Finding, Location, Severity};
use crate::topology::argo::project::AppProject;
use crate::topology::{DeployerKind, Placement};

pub struct ProjectDeniesDestination;

/// A finding in the making: the line, the cluster and the AppProject hop that denies.
type Key = (Location, usize, Evidence);

impl Rule for ProjectDeniesDestination {
    fn id(&self) -> RuleId {
        RuleId::ProjectDeniesDestination
    }

    fn check(&self, ctx: &RuleContext<'_>, severity: Severity) -> Vec<Finding> {
        let cluster_scoped = policy_list(
            ctx.policies.get(RuleId::NonprodOnProdCluster),
            "cluster_scoped_kinds",
        );
        let t = ctx.topology;
        let mut order: Vec<Key> = Vec::new();
        let mut groups: HashMap<Key, Vec<&Placement>> = HashMap::new();
        let mut projects: HashMap<(Arc<str>, Arc<str>), Option<AppProject>> = HashMap::new();
        for p in &t.placements {
            let Some((dest_at, hop)) = project_hop(p) else {
                continue;
            };
            let Hop::AppProject(h) = &*hop.hop else {
                continue;
            };
            let key = match h.verdict.denied_at() {
                Some(at) => (at.clone(), p.cluster, hop.clone()),
                None if !p.patch && cluster_scoped.iter().any(|k| *k == p.object.kind) => {
                    let project = projects
                        .entry((Arc::clone(&hop.location.file), Arc::clone(&h.project)))
                        .or_insert_with(|| project_in(ctx, &hop.location.file, &h.project));
                    let Some(project) = project else { continue };
                    let api = p
                        .object
                        .doc
                        .and_then(|r| t.document(ctx.files, r))
                        .and_then(|d| d.id.api_version.clone());
                    let group = api
                        .as_deref()
                        .and_then(|v| v.split_once('/'))
                        .map_or("", |(g, _)| g);
                    match project.cluster_kind(group, &p.object.kind, &dest_at) {
                        Ok(()) => continue,
                        Err(denial) => (dest_at, p.cluster, denial),
                    }
                }
                None => continue,
            };
            groups
                .entry(key.clone())
                .or_insert_with(|| {
                    order.push(key);
                    Vec::new()
                })
                .push(p);
        }
        order
            .into_iter()
            .filter_map(|key| {
                let placements = groups.remove(&key)?;
                finding(ctx, severity, key, &placements)
            })
            .collect()
    }
}

/// The AppProject hop of the Application that delivered `p`, right after its destination
/// hop, with the destination's line: `None` for another deployer, or an Application whose
/// project the repository does not define.
fn project_hop(p: &Placement) -> Option<(Location, &Evidence)> {
    let d = p.deployer.as_ref()?;
    if d.kind != DeployerKind::Object("Application") {
        return None;
    }
    // The hop after the deployer's last destination hop (one pass, no list: every placement
    // of the scan comes through here).
    let mut after_destination = None;
    let mut previous_was_destination = false;
    for e in p.evidence.iter() {
        if previous_was_destination {
            after_destination = Some(e);
        }
        previous_was_destination =
            matches!(*e.hop, Hop::Destination { .. }) && e.location == d.location;
        if previous_was_destination {
            after_destination = None;
        }
    }
    let next = after_destination?;
    matches!(*next.hop, Hop::AppProject(_)).then(|| (d.location.clone(), next))
}

/// The AppProject `name` written in `file`.
fn project_in(ctx: &RuleContext<'_>, file: &str, name: &str) -> Option<AppProject> {
    ctx.files
        .iter()
        .filter(|f| &*f.path == file)
        .flat_map(|f| f.documents.iter())
        .filter(|d| d.id.name.as_deref() == Some(name))
        .find_map(AppProject::read)
}

fn finding(
    ctx: &RuleContext<'_>,
    severity: Severity,
    (location, cluster, hop): Key,
    placements: &[&Placement],
) -> Option<Finding> {
    let c = ctx.topology.clusters.get(cluster)?;
    let first = placements.first()?;
    let mut apps: Vec<&str> = Vec::new();
    for d in placements.iter().filter_map(|p| p.deployer.as_ref()) {
        if !apps.contains(&d.name.as_str()) {
            apps.push(&d.name);
        }
    }
    let who = match apps.as_slice() {
        [one] => format!("Application {one}"),
        many => format!("{} Applications {}", many.len(), listed(many)),
    };
    let Hop::AppProject(h) = &*hop.hop else {
        return None;
    };
    let (verdict, project) = (&h.verdict, h.project.as_ref());
    let (what, discriminator) = match verdict {
        ProjectVerdict::NoDestination { .. } | ProjectVerdict::DeniedDestination { .. } => (
            format!("{who} on cluster {}", c.name),
            format!("{project} destination"),
        ),
        ProjectVerdict::DeniedSource { repo, .. } => (
            format!("{who} on cluster {}", c.name),
            format!("{project} source {repo}"),
        ),
        ProjectVerdict::DeniedNamespace { namespace, .. } => {
            (who.clone(), format!("{project} namespace {namespace}"))
        }
        ProjectVerdict::DeniedClusterResource { kind, group, .. } => {
            let mut labels: Vec<String> = Vec::new();
            for p in placements {
                let label = object_label(p);
                if !labels.contains(&label) {
                    labels.push(label);
                }
            }
            (
                format!(
                    "{who} delivers cluster-scoped {} to cluster {}",
                    listed(&labels),
                    c.name
                ),
                format!("{project} cluster {group}/{kind}"),
            )
        }
        ProjectVerdict::Permits { .. } => return None,
    };
    let message = format!("{what}: {h}; Argo CD would refuse to sync it");
    let name = apps.first().map(|n| (*n).into());
    let mut f = Finding::new(
        RuleId::ProjectDeniesDestination,
        severity,
        location.clone(),
        message,
    )
    .resource(ResourceId {
        api_version: Some("argoproj.io/v1alpha1".into()),
        kind: Some("Application".into()),
        name,
        namespace: None,
    })
    .cluster(c.name.clone(), c.environment.as_str())
    .discriminator(&discriminator);
    // The way to the Application's destination, then the AppProject's entry.
    let hops: Vec<&Evidence> = first.evidence.iter().collect();
    let at = hops
        .iter()
        .rposition(|e| matches!(*e.hop, Hop::Destination { .. }) && e.location == location)
        .or_else(|| {
            let d = first.deployer.as_ref()?;
            hops.iter().rposition(|e| {
                matches!(*e.hop, Hop::Destination { .. }) && e.location == d.location
            })
        });
    for e in hops.iter().take(at.map_or(0, |i| i + 1)) {
        f = f.hop(e);
    }
    Some(f.hop(&hop))
}
