//! Rancher Fleet: `GitRepo` objects (`fleet.cattle.io`), the bundles their `paths` hold, and
//! each bundle's `fleet.yaml` ([`bundle`]).
//!
//! A GitRepo sends every bundle under its `paths` (the repository root without them) to the
//! clusters its `targets` pick: `clusterName`, a `clusterSelector` matched against the labels
//! of the clusters the inventory knows (Fleet `Cluster` objects, the config's `clusters`,
//! cluster Secrets), or a `clusterGroup` whose `ClusterGroup` object is here. A GitRepo in
//! `fleet-local` deploys to the cluster that runs Fleet. On each cluster the first
//! `targetCustomizations` entry that picks it changes the bundle (kustomize folder, Helm
//! values, namespace). A bundle no GitRepo here deploys lands on the cluster a `paths` rule
//! names, else on the unnamed one, and also on every known cluster one of its customizations
//! picks. Selectors that pick no known cluster, remote charts and Fleet's `yaml.overlays`
//! are notes, each at its line.

mod bundle;

use std::collections::BTreeSet;

use globset::Glob;

use crate::documents::{Document, Node};
use crate::evidence::{AssumedThisRepositoryHop, Evidence, FleetHop, Hop};
use crate::location::Location;
use crate::topology::build::Worklist;
use crate::topology::clusters::{self, Inventory};
use crate::topology::family::{
    api_in, config_file, deployer_signal, field_text, identity_signals, name_of, note_at, Family,
    FamilyRoot, Job, NoteContext, Notes, RunContext, Stage, TemplateKind,
};
use crate::topology::index::{self, DocRef, RepoIndex};
use crate::topology::inventory::selector::{LabelSelector, SelectorUse};
use crate::topology::repository::RepoMatch;
use crate::topology::{Outcome, Signal, Unresolved};
use bundle::{Bundle, Groups, Target, FLEET_YAML};

/// Rancher Fleet: GitRepos and `fleet.yaml` bundles.
pub struct Fleet;

const FAMILY: &str = "Fleet";

/// The namespace whose GitRepos deploy to Fleet's own cluster.
const FLEET_LOCAL: &str = "fleet-local";

/// The name Fleet gives its own cluster.
const LOCAL_CLUSTER: &str = "local";

impl Family for Fleet {
    fn name(&self) -> &'static str {
        FAMILY
    }

    fn deployer_kinds(&self) -> &'static [&'static str] {
        &["GitRepo"]
    }

    fn is_deployer(&self, d: &Document) -> bool {
        is_gitrepo(d)
    }

    fn template_kinds(&self) -> &'static [TemplateKind] {
        &[TemplateKind {
            kind: "GitRepo",
            api: Some("fleet.cattle.io"),
            described: "Fleet GitRepos",
        }]
    }

    /// Fleet `Cluster` objects, with their labels (what targets and customizations match).
    fn declare_clusters(&self, index: &RepoIndex<'_>, inventory: &mut Inventory) {
        super::declare_cluster_objects(index, inventory, "fleet.cattle.io");
    }

    fn stage(&self) -> Option<Stage> {
        Some(Stage::Deployers)
    }

    fn seed(&self, w: &mut Worklist<'_>) {
        seed(w);
    }

    fn run(&self, cx: &mut RunContext<'_, '_>, job: &Job<'_>) -> Outcome {
        run(cx, job)
    }

    /// GitRepo targets' and `fleet.yaml` customizations' `clusterSelector`s, and
    /// `ClusterGroup` selectors.
    fn cluster_selectors(&self, index: &RepoIndex<'_>) -> Vec<SelectorUse> {
        let selector_use = |location: Location, by: String, selector: LabelSelector| SelectorUse {
            location,
            by,
            selector,
            argo: false,
            reads_annotations: Vec::new(),
            matched: false,
        };
        let mut out = Vec::new();
        for (_, d) in index.of_kind("GitRepo").filter(|(_, d)| is_gitrepo(d)) {
            for t in targets_of(d) {
                if let Some(e) = t.entry("clusterSelector") {
                    let s = LabelSelector::read(&e.value);
                    if !s.is_empty() {
                        out.push(selector_use(
                            d.at(e.key.span.line),
                            format!("Fleet GitRepo {}", name_of(d)),
                            s,
                        ));
                    }
                }
            }
        }
        for (_, d) in index
            .of_kind("ClusterGroup")
            .filter(|(_, d)| api_in(d, "fleet.cattle.io"))
        {
            if let Some(e) = d.root.get("spec").and_then(|s| s.entry("selector")) {
                let s = LabelSelector::read(&e.value);
                if !s.is_empty() {
                    out.push(selector_use(
                        d.at(e.key.span.line),
                        format!("Fleet ClusterGroup {}", name_of(d)),
                        s,
                    ));
                }
            }
        }
        for dir in bundle_dirs(index) {
            let b = Bundle::read(index, &dir);
            for t in &b.customizations {
                if let Some((s, line)) = &t.selector {
                    if !s.is_empty() {
                        out.push(selector_use(
                            b.location(*line),
                            format!("Fleet bundle {} targetCustomization {}", b.shown(), t.name),
                            s.clone(),
                        ));
                    }
                }
            }
        }
        out
    }

    fn notes(&self, cx: &NoteContext<'_, '_>, out: &mut Notes) {
        let index = cx.index;
        for dir in bundle_dirs(index) {
            out.roots.insert(FamilyRoot {
                dir,
                family: FAMILY,
            });
        }
        for (_, d) in index.of_kind("GitRepo").filter(|(_, d)| is_gitrepo(d)) {
            out.roots.insert(FamilyRoot {
                dir: index::parent(&d.file).to_owned(),
                family: FAMILY,
            });
            for (path, _) in paths_of(d) {
                if let Some(dir) = index::join("", &path, true).filter(|p| index.is_dir(p)) {
                    out.roots.insert(FamilyRoot {
                        dir,
                        family: FAMILY,
                    });
                }
            }
        }
        // A Bundle object is what Fleet makes of a folder (`fleet apply` writes it, as test
        // expectations do): its folder is Fleet's output, which nothing here deploys.
        let mut seen = BTreeSet::new();
        for (_, d) in index
            .of_kind("Bundle")
            .filter(|(_, d)| api_in(d, "fleet.cattle.io"))
        {
            let dir = index::parent(&d.file).to_owned();
            if !seen.insert(dir.clone()) {
                continue;
            }
            note_at(
                out,
                d,
                d.first_line,
                format!(
                    "Fleet Bundle {}: a bundle as Fleet renders it, not a source; nothing here deploys {}, so its objects are not placed",
                    name_of(d),
                    if dir.is_empty() { "this folder".to_owned() } else { format!("{dir}/") }
                ),
            );
            out.roots.insert(FamilyRoot {
                dir,
                family: FAMILY,
            });
        }
    }
}

fn is_gitrepo(d: &Document) -> bool {
    d.id.kind.as_deref() == Some("GitRepo") && api_in(d, "fleet.cattle.io")
}

/// Every folder with a `fleet.yaml`, in path order.
fn bundle_dirs(index: &RepoIndex<'_>) -> Vec<String> {
    let mut dirs: Vec<String> = index
        .files
        .iter()
        .filter(|f| index::is_named(&f.path, FLEET_YAML))
        .map(|f| index::parent(&f.path).to_owned())
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Whether `dir` is `root` or inside it.
fn within(root: &str, dir: &str) -> bool {
    root.is_empty() || dir == root || dir.starts_with(&format!("{root}/"))
}

/// The bundles of a GitRepo path: the `fleet.yaml` folders at or below it, else the folder
/// itself.
fn bundles_under(all: &[String], path: &str) -> Vec<String> {
    let found: Vec<String> = all.iter().filter(|b| within(path, b)).cloned().collect();
    if found.is_empty() {
        vec![path.to_owned()]
    } else {
        found
    }
}

/// The bundle folders strictly inside `dir`.
fn nested_in(all: &[String], dir: &str) -> Vec<String> {
    all.iter()
        .filter(|b| b.as_str() != dir && within(dir, b))
        .cloned()
        .collect()
}

/// A GitRepo's `spec.targets` entries.
fn targets_of(d: &Document) -> &[Node] {
    d.root
        .get("spec")
        .and_then(|s| s.get("targets"))
        .and_then(Node::as_seq)
        .unwrap_or(&[])
}

/// A GitRepo's `spec.paths`, each with its line; the repository root when there are none.
fn paths_of(d: &Document) -> Vec<(String, u32)> {
    let spec = d.root.get("spec");
    let paths: Vec<(String, u32)> = spec
        .and_then(|s| s.get("paths"))
        .and_then(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .filter_map(|p| Some((p.as_str()?.trim().to_owned(), p.span.line)))
        .collect();
    if paths.is_empty() {
        let line = spec
            .and_then(|s| s.entry("repo"))
            .map_or(d.first_line, |e| e.key.span.line);
        vec![(String::new(), line)]
    } else {
        paths
    }
}

/// The repository's ClusterGroups: name and selector.
fn groups(index: &RepoIndex<'_>) -> Groups {
    index
        .of_kind("ClusterGroup")
        .filter(|(_, d)| api_in(d, "fleet.cattle.io"))
        .filter_map(|(_, d)| {
            let s = d.root.get("spec")?.get("selector")?;
            Some((d.id.name.as_deref()?.to_owned(), LabelSelector::read(s)))
        })
        .collect()
}

/// The bundle folders some GitRepo here reads.
fn deployed_by_gitrepos(index: &RepoIndex<'_>, all: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (_, d) in index.of_kind("GitRepo").filter(|(_, d)| is_gitrepo(d)) {
        for (path, _) in paths_of(d) {
            if let Some(dir) = index::join("", &path, true).filter(|p| index.is_dir(p)) {
                out.extend(bundles_under(all, &dir));
            }
        }
    }
    out
}

/// Runs the GitRepos no placement reached; then sends each bundle no GitRepo here reads to
/// the cluster a `paths` rule names (else the unnamed one), and to the known clusters its
/// customizations pick.
fn seed(w: &mut Worklist<'_>) {
    let index = w.index();
    let gitrepos: Vec<DocRef> = index
        .of_kind("GitRepo")
        .filter(|(_, d)| is_gitrepo(d))
        .map(|(r, _)| r)
        .collect();
    for r in gitrepos {
        if !w.was_reached(r) {
            w.run(r, None, Vec::new());
        }
    }
    let all = bundle_dirs(index);
    let deployed = deployed_by_gitrepos(index, &all);
    let groups = groups(index);
    for dir in all.iter().filter(|d| !deployed.contains(*d)) {
        let b = Bundle::read(index, dir);
        let at = b.location(1);
        let unreached = Evidence::new(
            at.clone(),
            Hop::Fleet(Box::new(FleetHop::Unreached {
                bundle: b.shown().into(),
            })),
        );
        let host = unreached_host(w, &b, &at);
        let mut targets: Vec<(usize, Vec<Evidence>)> = vec![(host, vec![unreached.clone()])];
        // Clusters a customization was written for are where Fleet sends it.
        for (i, c) in w.inventory().clusters.iter().enumerate() {
            if i != host && b.customization_for(c, &groups).is_some() {
                targets.push((i, vec![unreached.clone()]));
            }
        }
        let mut out = Outcome::default();
        deploy(
            index,
            w.inventory(),
            &groups,
            &b,
            &targets,
            &nested_in(&all, dir),
            &[],
            &mut out,
        );
        for note in out.unresolved {
            w.note(note);
        }
        for d in &out.deliveries {
            w.deliver(d);
        }
        for p in out.extra_placements {
            w.place_raw(p);
        }
        for c in out.charts {
            w.install_chart(c);
        }
        w.drain();
    }
}

/// The cluster of a bundle no GitRepo here reads: the first `paths` rule that matches one
/// of its files, else the unnamed cluster, with a note that says how to name it.
fn unreached_host(w: &mut Worklist<'_>, b: &Bundle<'_>, at: &Location) -> usize {
    let index = w.index();
    let config = w.config();
    let by_rule = config.paths.iter().enumerate().find(|(_, rule)| {
        Glob::new(&rule.glob).is_ok_and(|g| {
            let g = g.compile_matcher();
            index
                .files
                .iter()
                .any(|f| within(&b.dir, index::parent(&f.path)) && g.is_match(&*f.path))
        })
    });
    if let Some((i, rule)) = by_rule {
        let line = config
            .source
            .as_ref()
            .and_then(|s| s.line_of(&format!("paths[{i}].glob")))
            .unwrap_or(1);
        let rule_at = Location::new(&config_file(config), line);
        let (c, _) = w
            .inventory_mut()
            .resolve_destination(Some(&rule.cluster), None, rule_at);
        return c;
    }
    let files = if b.dir.is_empty() {
        "its files".to_owned()
    } else {
        format!("{}/**", b.dir)
    };
    w.note(Unresolved {
        location: at.clone(),
        reason: format!(
            "Fleet bundle {}: no GitRepo here deploys it, so its cluster is not named: envfence places it on `{}` of unknown environment (name it with a `paths` rule for {files} in .envfence.yaml)",
            b.shown(),
            clusters::UNNAMED
        ),
    });
    w.inventory_mut().unnamed_because(
        at.clone(),
        "a Fleet bundle no GitRepo here deploys lands here; nothing names this cluster",
    )
}

/// Sends bundle `b` to each target cluster (with the hops that lead there), with the first
/// customization that picks the cluster in force; notes the customizations that picked none.
#[allow(clippy::too_many_arguments)]
fn deploy(
    index: &RepoIndex<'_>,
    inventory: &Inventory,
    groups: &Groups,
    b: &Bundle<'_>,
    targets: &[(usize, Vec<Evidence>)],
    nested: &[String],
    signals: &[Signal],
    out: &mut Outcome,
) {
    let mut used = vec![false; b.customizations.len()];
    for (cluster, hops) in targets {
        let c = &inventory.clusters[*cluster];
        let mut chain = hops.clone();
        let mut signals = signals.to_vec();
        let options = match b.customization_for(c, groups) {
            Some((t, (by, line))) => {
                if let Some(i) = b.customizations.iter().position(|x| x.line == t.line) {
                    used[i] = true;
                }
                chain.push(Evidence::new(
                    b.location(line),
                    Hop::Fleet(Box::new(FleetHop::Customization {
                        name: t.name.as_str().into(),
                        by: by.into(),
                        cluster: c.name.as_str().into(),
                    })),
                ));
                signals.extend(deployer_signal(inventory.vocabulary(), &t.name, || {
                    format!("Fleet targetCustomization {}", t.name)
                }));
                b.options.with(&t.options)
            }
            None => b.options.clone(),
        };
        bundle::content(
            index,
            inventory,
            b,
            &options,
            Target {
                cluster: *cluster,
                deployer: bundle::deployer(b),
                chain,
                signals: &signals,
            },
            nested,
            out,
        );
    }
    // The customizations that picked no cluster: one note per bundle, at the first.
    let mut unmatched: Vec<String> = Vec::new();
    let mut first_line = None;
    for (t, used) in b.customizations.iter().zip(used) {
        if used {
            continue;
        }
        if let Some(line) = t.group_selector {
            out.unresolved.push(Unresolved {
                location: b.location(line),
                reason: format!(
                    "Fleet bundle {}: targetCustomization {} picks clusters by clusterGroupSelector, which envfence does not follow",
                    b.shown(),
                    t.name
                ),
            });
            continue;
        }
        let what = match (&t.options.kustomize_dir, t.options.values.is_empty()) {
            (Some((dir, _)), _) => format!("kustomize dir {dir}"),
            (None, false) => "Helm values".to_owned(),
            (None, true) => "its changes".to_owned(),
        };
        let line = t
            .selector
            .as_ref()
            .map(|(_, l)| *l)
            .or(t.cluster_name.as_ref().map(|(_, l)| *l))
            .or(t.group.as_ref().map(|(_, l)| *l))
            .unwrap_or(t.line);
        first_line.get_or_insert(line);
        unmatched.push(format!("{} ({}; {what})", t.name, t.criteria()));
    }
    if let Some(line) = first_line {
        out.unresolved.push(Unresolved {
            location: b.location(line),
            reason: format!(
                "Fleet bundle {}: targetCustomization{} {} match{} no cluster envfence knows, so envfence applies {} on no cluster (declare the clusters, with their labels, in .envfence.yaml)",
                b.shown(),
                if unmatched.len() == 1 { "" } else { "s" },
                unmatched.join(", "),
                if unmatched.len() == 1 { "es" } else { "" },
                if unmatched.len() == 1 { "it" } else { "them" },
            ),
        });
    }
}

/// A GitRepo, on the cluster that runs Fleet (`job.host`, when a placement reached it):
/// each bundle of its paths to each cluster its targets pick.
fn run(cx: &mut RunContext<'_, '_>, job: &Job<'_>) -> Outcome {
    let mut out = Outcome::default();
    let index = cx.index;
    let d = index.doc(job.doc);
    let name = name_of(d).to_owned();
    let spec = d.root.get("spec");
    let repo = field_text(spec, &["repo"]);
    let this = cx.inventory.repository.classify(repo);
    let groups = groups(index);
    let targets = resolve_targets(cx, job, d, &name, &groups, &mut out);
    let mut signals: Vec<Signal> = job.parent_signals.to_vec();
    signals.extend(identity_signals(
        cx.inventory.vocabulary(),
        "GitRepo",
        &name,
        d.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ));
    let all = bundle_dirs(index);
    for (path, line) in paths_of(d) {
        let dir = index::join("", &path, true).filter(|p| index.is_dir(p));
        let Some(dir) =
            dir.filter(|p| !p.is_empty() || matches!(this, RepoMatch::This(_)) || !all.is_empty())
        else {
            out.unresolved.push(Unresolved {
                location: d.at(line),
                reason: format!(
                    "Fleet GitRepo {name}: path {} of {} is not in this repository, so what it deploys is not known",
                    if path.is_empty() { "." } else { &path },
                    repo.unwrap_or("its repository")
                ),
            });
            continue;
        };
        let mut base = job.chain.to_vec();
        if let (RepoMatch::Unknown, Some(url)) = (&this, repo) {
            base.push(Evidence::new(
                d.at(line),
                Hop::AssumedThisRepository(Box::new(AssumedThisRepositoryHop {
                    source: url.into(),
                    path: path.as_str().into(),
                    git_repository: false,
                })),
            ));
        }
        for bundle_dir in bundles_under(&all, &dir) {
            let b = Bundle::read(index, &bundle_dir);
            let path_hop = Evidence::new(
                d.at(line),
                Hop::Fleet(Box::new(FleetHop::GitRepoPath {
                    gitrepo: name.as_str().into(),
                    path: path.as_str().into(),
                    bundle: b.shown().into(),
                })),
            );
            let per_target: Vec<(usize, Vec<Evidence>)> = targets
                .iter()
                .map(|(c, hop)| {
                    let mut chain = base.clone();
                    chain.push(path_hop.clone());
                    chain.push(hop.clone());
                    (*c, chain)
                })
                .collect();
            deploy(
                index,
                cx.inventory,
                &groups,
                &b,
                &per_target,
                &nested_in(&all, &bundle_dir),
                &signals,
                &mut out,
            );
        }
    }
    out
}

/// The clusters a GitRepo's targets pick, each with its hop, once each; notes for targets
/// that pick none.
fn resolve_targets(
    cx: &mut RunContext<'_, '_>,
    job: &Job<'_>,
    d: &Document,
    name: &str,
    groups: &Groups,
    out: &mut Outcome,
) -> Vec<(usize, Evidence)> {
    let mut picked: Vec<(usize, Evidence)> = Vec::new();
    let add = |picked: &mut Vec<(usize, Evidence)>,
               c: usize,
               by: String,
               at: Location,
               inv: &Inventory| {
        if picked.iter().any(|(p, _)| *p == c) {
            return;
        }
        let hop = Evidence::new(
            at,
            Hop::Fleet(Box::new(FleetHop::Target {
                gitrepo: name.into(),
                by: by.into(),
                cluster: inv.clusters[c].name.as_str().into(),
            })),
        );
        picked.push((c, hop));
    };
    let targets = targets_of(d);
    if targets.is_empty() {
        let in_local = d.id.namespace.as_deref() == Some(FLEET_LOCAL);
        let at = d.at(d.line_of("metadata.namespace").unwrap_or(d.first_line));
        if in_local {
            let c = match job.host {
                Some(h) => h,
                None => {
                    cx.inventory
                        .resolve_destination(Some(LOCAL_CLUSTER), None, at.clone())
                        .0
                }
            };
            picked.push((
                c,
                Evidence::new(
                    at,
                    Hop::Fleet(Box::new(FleetHop::Local {
                        gitrepo: name.into(),
                    })),
                ),
            ));
            return picked;
        }
        // Fleet's default target is the cluster group `default`.
        match groups.iter().find(|(g, _)| g == "default") {
            Some((_, s)) => {
                for i in 0..cx.inventory.clusters.len() {
                    if s.matches(&cx.inventory.clusters[i].labels) {
                        add(
                            &mut picked,
                            i,
                            "clusterGroup default".into(),
                            at.clone(),
                            cx.inventory,
                        );
                    }
                }
            }
            None => {
                out.unresolved.push(Unresolved {
                    location: at.clone(),
                    reason: format!(
                        "Fleet GitRepo {name} has no targets: Fleet sends it to the cluster group `default`, which is not declared here; envfence places it on `{}`",
                        clusters::UNNAMED
                    ),
                });
                let c = cx.inventory.unnamed_because(
                    at.clone(),
                    "a Fleet GitRepo without targets lands here; nothing names this cluster",
                );
                add(&mut picked, c, "no targets".into(), at, cx.inventory);
            }
        }
        return picked;
    }
    for t in targets {
        let before = picked.len();
        let mut criteria = Vec::new();
        if let Some(e) = t.entry("clusterName") {
            if let Some(cluster) = e.value.as_str() {
                let at = d.at(e.key.span.line);
                let (c, _) = cx
                    .inventory
                    .resolve_destination(Some(cluster), None, at.clone());
                add(
                    &mut picked,
                    c,
                    format!("clusterName {cluster}"),
                    at,
                    cx.inventory,
                );
            }
        }
        if let Some(e) = t.entry("clusterSelector") {
            let s = LabelSelector::read(&e.value);
            let at = d.at(e.key.span.line);
            let terms = if s.is_empty() {
                "{} (every cluster)".to_owned()
            } else {
                s.terms()
            };
            for i in 0..cx.inventory.clusters.len() {
                if s.matches(&cx.inventory.clusters[i].labels) {
                    add(
                        &mut picked,
                        i,
                        format!("clusterSelector {terms}"),
                        at.clone(),
                        cx.inventory,
                    );
                }
            }
            criteria.push((format!("clusterSelector {terms}"), e.key.span.line));
        }
        if let Some(e) = t.entry("clusterGroup") {
            if let Some(group) = e.value.as_str() {
                let at = d.at(e.key.span.line);
                match groups.iter().find(|(g, _)| g == group) {
                    Some((_, s)) => {
                        for i in 0..cx.inventory.clusters.len() {
                            if s.matches(&cx.inventory.clusters[i].labels) {
                                add(&mut picked, i, format!("clusterGroup {group}"), at.clone(), cx.inventory);
                            }
                        }
                        criteria.push((format!("clusterGroup {group}"), e.key.span.line));
                    }
                    None => out.unresolved.push(Unresolved {
                        location: at,
                        reason: format!(
                            "Fleet GitRepo {name}: target clusterGroup {group} is not a ClusterGroup of this repository, so the clusters it picks are not known"
                        ),
                    }),
                }
            }
        }
        if let Some(e) = t.entry("clusterGroupSelector") {
            out.unresolved.push(Unresolved {
                location: d.at(e.key.span.line),
                reason: format!(
                    "Fleet GitRepo {name}: target clusterGroupSelector is not followed, so the clusters it picks are not known"
                ),
            });
        }
        if picked.len() == before {
            for (what, line) in criteria {
                out.unresolved.push(Unresolved {
                    location: d.at(line),
                    reason: format!(
                        "Fleet GitRepo {name}: target {what} matches no cluster envfence knows, so nothing is placed for it (declare the cluster, with its labels, in .envfence.yaml)"
                    ),
                });
            }
        }
    }
    picked
}
