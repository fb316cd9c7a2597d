//! What the placement rules share: which placements are workloads, and which line a finding
//! about a placement should point at.

use crate::documents::{ResourceId, SourceFile};
use crate::evidence::{Hop, IncludeKey};
use crate::findings::{Evidence, Location, Member};
use crate::rules::Policy;
use crate::topology::{Env, Placement, SignalLevel};

/// A string list from a policy's `data`, empty when absent.
pub fn policy_list(policy: Option<&Policy>, key: &str) -> Vec<String> {
    policy.map_or_else(Vec::new, |p| crate::topology::tiers::list(&p.data, key))
}

/// The kinds that deploy other objects rather than run: the deployer families' built-in kinds
/// and the ones the `nonprod-on-prod-cluster` policy's `deployer_kinds` data adds.
pub fn deployer_kinds(policy: Option<&Policy>) -> Vec<String> {
    crate::topology::family::deployer_kinds_and(&policy_list(policy, "deployer_kinds"))
}

/// See [`Placement::is_workload_among`]; `deployer_kinds` comes from [`deployer_kinds`].
pub fn is_workload(p: &Placement, deployer_kinds: &[String]) -> bool {
    p.is_workload_among(deployer_kinds)
}

/// The line the author should change to move this placement: the `resources` entry that
/// pulls the object in when the object's own identity decided its class and its deployer is
/// not itself non-production (a test Job included by a production overlay), else the
/// deployer's destination or path line.
pub fn line_to_change(p: &Placement) -> Location {
    let include = |e: &&Evidence| {
        matches!(
            *e.hop,
            Hop::Include {
                key: IncludeKey::Resources | IncludeKey::Bases | IncludeKey::Components,
                ..
            }
        )
    };
    if p.class_level == Some(SignalLevel::Own) && p.deployer_class != Env::NonProduction {
        // When the object sits in a test folder with its own kustomization, the line to
        // change is the one that pulls that folder in, not the folder's own `resources`.
        let test_folder = test_folder_of(&p.object.file);
        let outside = |e: &&Evidence| {
            test_folder
                .as_ref()
                .is_none_or(|dir| !e.location.file.starts_with(dir.as_str()))
        };
        if let Some(hop) = p.evidence.iter().rev().filter(include).find(outside) {
            return hop.location.clone();
        }
    }
    match &p.deployer {
        Some(d) => d.location.clone(),
        None => Location::new(&p.object.file, p.object.line),
    }
}

/// The workloads on each cluster (deployer objects and patches left out), with the cluster.
/// Deployer kinds are the families' own and those `nonprod-on-prod-cluster`'s policy adds.
pub fn workloads_by_cluster<'t>(
    ctx: &crate::rules::RuleContext<'t>,
) -> Vec<(&'t crate::topology::Cluster, Vec<&'t Placement>)> {
    let deployer_kinds =
        deployer_kinds(ctx.policies.get(crate::rules::RuleId::NonprodOnProdCluster));
    let t = ctx.topology;
    // One pass over the placements, not one per cluster: each pass reads every placement.
    let mut here: Vec<Vec<&'t Placement>> = vec![Vec::new(); t.clusters.len()];
    for p in &t.placements {
        if let Some(list) = here.get_mut(p.cluster) {
            if is_workload(p, &deployer_kinds) {
                list.push(p);
            }
        }
    }
    t.clusters.iter().zip(here).collect()
}

/// `apps/x/tests/job.yaml` → `apps/x/tests/`: the folder that makes a file a test.
fn test_folder_of(file: &str) -> Option<String> {
    let mut prefix = String::new();
    for segment in file.split('/').collect::<Vec<_>>().split_last()?.1 {
        prefix.push_str(segment);
        prefix.push('/');
        if matches!(
            *segment,
            "tests" | "test" | "e2e" | "integration" | "integration-tests" | "e2e-tests"
        ) {
            return Some(prefix);
        }
    }
    None
}

/// `Kind/name`; for a deployer standing for its payload (a chart, an opaque placement),
/// `Kind/name (namespace ns)`, since generated Applications differ by namespace.
pub fn object_label(p: &Placement) -> String {
    let label = format!(
        "{}/{}",
        p.object.kind,
        p.object.name.as_deref().unwrap_or("?")
    );
    match &p.object.namespace {
        Some(ns) if p.opaque || p.renders_chart => format!("{label} (namespace {ns})"),
        _ => label,
    }
}

/// How many objects, namespaces or deployers a grouped finding's message names before it
/// says "and N more": the full list is the finding's `members` in JSON.
pub const LISTED: usize = 5;

/// Labels of several placements (each once), the first [`LISTED`] of them and a count of
/// the rest ([`listed`]).
pub fn labels_of(placements: &[&Placement]) -> String {
    let mut labels: Vec<String> = Vec::new();
    for p in placements {
        let label = object_label(p);
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    listed(&labels)
}

/// Whether a message names all of `count` things: "and 1 more" would be no shorter.
pub fn names_all(count: usize) -> bool {
    count <= LISTED + 1
}

/// The first [`LISTED`] names, then how many more (all of them when only one more).
pub fn listed<S: AsRef<str>>(names: &[S]) -> String {
    let shown = if names_all(names.len()) {
        names.len()
    } else {
        LISTED
    };
    let mut text = names
        .iter()
        .take(shown)
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > shown {
        text.push_str(&format!(" and {} more", names.len() - shown));
    }
    text
}

/// Every placement of a group, for a finding whose message names only the first
/// [`LISTED`]; empty when it names them all.
pub fn members_of(
    placements: &[&Placement],
    topology: &crate::topology::Topology,
    files: &[SourceFile],
) -> Vec<Member> {
    if names_all(placements.len()) {
        return Vec::new();
    }
    placements
        .iter()
        .map(|p| Member {
            resource: resource_of(p, topology, files),
            location: Some(Location::new(&p.object.file, p.object.line)),
        })
        .collect()
}

/// The namespace a placement counts under when grouped findings are split by what a pull
/// request adds: set when its deployer delivers whole namespaces
/// ([`crate::topology::DeployerKind::delivers_namespaces`], a `paths` rule or a cluster
/// folder) and `line`, the line to change, is that deployer's own. A Namespace counts under
/// itself.
pub fn namespace_unit<'p>(p: &'p Placement, line: &Location) -> Option<&'p str> {
    let d = p.deployer.as_ref()?;
    if !d.kind.delivers_namespaces() || d.location != *line {
        return None;
    }
    match p.object.kind.as_str() {
        "Namespace" => p.object.name.as_deref(),
        _ => p.object.namespace.as_deref(),
    }
}

/// Where a finding about the objects of namespace `ns` points: where a pull request adds the
/// namespace. That is the `resources` entry of the deployer's folder that pulls in its
/// Namespace object (else its first object), when a kustomization lists what the folder
/// holds; else the Namespace object itself (else the first object), whose file comes with
/// the namespace.
pub fn unit_location(first: &Placement, placements: &[&Placement], ns: &str) -> Location {
    let home = placements
        .iter()
        .find(|p| p.object.kind == "Namespace" && p.object.name.as_deref() == Some(ns))
        .copied()
        .unwrap_or(first);
    let include = home.evidence.iter().find(|e| {
        matches!(
            *e.hop,
            Hop::Include {
                key: IncludeKey::Resources | IncludeKey::Bases | IncludeKey::Components,
                ..
            }
        )
    });
    match include {
        Some(hop) => hop.location.clone(),
        None => Location::new(&home.object.file, home.object.line),
    }
}

/// The resource a finding about this placement names: its identity on the cluster (after
/// kustomize's renames) and the document's apiVersion.
pub fn resource_of(
    p: &Placement,
    topology: &crate::topology::Topology,
    files: &[SourceFile],
) -> ResourceId {
    let api_version = p
        .object
        .doc
        .and_then(|r| topology.document(files, r))
        .and_then(|d| d.id.api_version.clone());
    ResourceId {
        api_version,
        kind: Some(p.object.kind.clone()),
        name: p.object.name.clone(),
        namespace: p.object.namespace.clone(),
    }
}
