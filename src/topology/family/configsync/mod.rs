//! Config Sync (Anthos Config Management): `RootSync` and `RepoSync` (`configsync.gke.io`),
//! the legacy `ConfigManagement` (`configmanagement.gke.io`) with `spec.git.policyDir` and
//! `spec.clusterName`, unstructured and hierarchical repositories ([`hierarchy`]), and the
//! selectors that pick clusters and namespaces object by object ([`selectors`]).
//!
//! A ConfigManagement lands on the cluster its `clusterName` names and syncs its folder there;
//! a RootSync or RepoSync syncs its folder to the cluster it was placed on. A folder is read
//! from this repository when `repo` is this repository, or when the folder exists here (and the
//! evidence says that was assumed); otherwise the deployer stands for it (an opaque placement),
//! as OCI and Helm sources do. A hierarchical repository that no RootSync or ConfigManagement
//! here syncs goes, like a Flux root outside any cluster tree, to the cluster a `paths` rule
//! names, else to one unnamed cluster. Clusters and their labels come from the inventory:
//! `clusterregistry.k8s.io` Cluster objects, `clusterName`, the config and cluster Secrets.

mod hierarchy;
mod selectors;

use std::collections::BTreeSet;

use globset::Glob;

use crate::documents::{Document, Node};
use crate::evidence::{
    AssumedThisRepositoryHop, ConfigSyncHop, Evidence, FieldDestinationHop, Hop, OpaqueHop,
};
use crate::location::Location;
use crate::topology::build::Worklist;
use crate::topology::clusters::{self, Inventory};
use crate::topology::expand::kustomize::DirectoryMode;
use crate::topology::family::{
    api_in, config_file, deployer_signal, field_text, identity_signals, name_of, opaque_placement,
    unreached_root_order, Family, Job, Opaque, RunContext, Stage, TemplateKind,
};
use crate::topology::index::{self, DocRef, RepoIndex};
use crate::topology::inventory::selector::SelectorUse;
use crate::topology::repository::RepoMatch;
use crate::topology::{
    Delivery, Deployer, DeployerKind, DocumentFilter, HashMap, HashSet, Outcome, PlacedObject,
    Signal, Unresolved,
};
use selectors::{Judge, Namespaces, Selectors};

/// Config Sync: RootSyncs, RepoSyncs, ConfigManagements and hierarchical repositories.
pub struct ConfigSync;

const FAMILY: &str = "Config Sync";

impl Family for ConfigSync {
    fn name(&self) -> &'static str {
        FAMILY
    }

    fn deployer_kinds(&self) -> &'static [&'static str] {
        &["RootSync", "RepoSync", "ConfigManagement"]
    }

    /// RootSyncs, RepoSyncs and ConfigManagements; and a hierarchical repository's `Repo`
    /// (data, never placed), which the seed runs when nothing here syncs its repository.
    fn is_deployer(&self, d: &Document) -> bool {
        is_sync(d) || is_config_management(d) || hierarchical_root(d).is_some()
    }

    fn template_kinds(&self) -> &'static [TemplateKind] {
        &[
            TemplateKind {
                kind: "RootSync",
                api: Some("configsync.gke.io"),
                described: "Config Sync RootSyncs",
            },
            TemplateKind {
                kind: "RepoSync",
                api: Some("configsync.gke.io"),
                described: "Config Sync RepoSyncs",
            },
        ]
    }

    /// The clusters of `clusterregistry.k8s.io` Cluster objects, with their labels (what
    /// ClusterSelectors match), and those ConfigManagements name in `clusterName`.
    fn declare_clusters(&self, index: &RepoIndex<'_>, inventory: &mut Inventory) {
        super::declare_cluster_objects(index, inventory, "clusterregistry.k8s.io");
        for (_, d) in index
            .of_kind("ConfigManagement")
            .filter(|(_, d)| is_config_management(d))
        {
            if let Some((name, line)) = cluster_name(d) {
                inventory.declare(Some(name), None, Default::default(), Some(d.at(line)), None);
            }
        }
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

    /// Each ClusterSelector's `spec.selector`.
    fn cluster_selectors(&self, index: &RepoIndex<'_>) -> Vec<SelectorUse> {
        index
            .of_kind("ClusterSelector")
            .filter(|(_, d)| api_in(d, "configmanagement.gke.io"))
            .filter_map(|(_, d)| {
                let entry = d.root.get("spec")?.entry("selector")?;
                let selector =
                    crate::topology::inventory::selector::LabelSelector::read(&entry.value);
                (!selector.is_empty()).then(|| SelectorUse {
                    location: d.at(entry.key.span.line),
                    by: format!("ClusterSelector {}", name_of(d)),
                    selector,
                    argo: false,
                    reads_annotations: Vec::new(),
                    matched: false,
                })
            })
            .collect()
    }
}

/// A RootSync or RepoSync.
fn is_sync(d: &Document) -> bool {
    matches!(d.id.kind.as_deref(), Some("RootSync" | "RepoSync")) && api_in(d, "configsync.gke.io")
}

fn is_config_management(d: &Document) -> bool {
    d.id.kind.as_deref() == Some("ConfigManagement") && api_in(d, "configmanagement.gke.io")
}

/// A ConfigManagement's `spec.clusterName`, with its line.
fn cluster_name(d: &Document) -> Option<(&str, u32)> {
    let entry = d.root.get("spec")?.entry("clusterName")?;
    let name = entry.value.as_str()?.trim();
    (!name.is_empty()).then_some((name, entry.key.span.line))
}

/// The root of the hierarchical repository whose `system/repo.yaml` `Repo` is `d`: the folder
/// above `system/`, when it also holds `namespaces/` or `cluster/` (checked by the caller's
/// index; here only the shape of the path and the kind).
fn hierarchical_root(d: &Document) -> Option<&str> {
    if d.id.kind.as_deref() != Some("Repo") || !api_in(d, "configmanagement.gke.io") {
        return None;
    }
    let system = index::parent(&d.file);
    (index::basename(system) == "system").then(|| index::parent(system))
}

/// `sub` below `root`.
fn below(root: &str, sub: &str) -> String {
    if root.is_empty() {
        sub.to_owned()
    } else {
        format!("{root}/{sub}")
    }
}

/// What a Config Sync deployer syncs, as its spec says.
struct Source<'d> {
    /// `git`, `oci` or `helm`.
    source_type: &'d str,
    /// The repository (`spec.git.repo`, `spec.git.syncRepo`).
    repo: Option<&'d str>,
    /// The folder as written; the repository root when it is not.
    dir: &'d str,
    /// The field that writes it.
    field: &'static str,
    /// Its line (the deployer's first line when it is not written).
    line: u32,
    /// `sourceFormat: hierarchy` (the default of RootSync and ConfigManagement; a RepoSync is
    /// always unstructured).
    hierarchical: bool,
}

impl<'d> Source<'d> {
    fn of(d: &'d Document, kind: &str) -> Source<'d> {
        let spec = d.root.get("spec");
        let git = spec.and_then(|s| s.get("git"));
        let (repo_key, dir_key, field) = if kind == "ConfigManagement" {
            ("syncRepo", "policyDir", "spec.git.policyDir")
        } else {
            ("repo", "dir", "spec.git.dir")
        };
        let dir_entry = git.and_then(|g| g.entry(dir_key));
        let line = dir_entry
            .map(|e| e.key.span.line)
            .or_else(|| spec.and_then(|s| s.entry("git")).map(|e| e.key.span.line))
            .unwrap_or(d.first_line);
        Source {
            // A ConfigManagement without `git` (multi-repo mode) syncs nothing itself.
            source_type: match (kind, git) {
                ("ConfigManagement", None) => "none",
                ("ConfigManagement", Some(_)) => "git",
                _ => field_text(spec, &["sourceType"]).unwrap_or("git"),
            },
            repo: git.and_then(|g| g.get(repo_key)).and_then(Node::as_str),
            dir: dir_entry.and_then(|e| e.value.as_str()).unwrap_or("/"),
            field,
            line,
            hierarchical: kind != "RepoSync"
                && field_text(spec, &["sourceFormat"]) != Some("unstructured"),
        }
    }
}

/// Seeds, in this order: each ConfigManagement that names its cluster, placed there (it then
/// runs there); the RootSyncs, RepoSyncs and ConfigManagements no placement reached, roots
/// first, on the cluster a `paths` rule names or the unnamed one; the hierarchical
/// repositories nothing synced, the same way. Then the selectors that pick nothing are noted.
fn seed(w: &mut Worklist<'_>) {
    let index = w.index();
    let managements: Vec<(DocRef, &Document)> = index
        .of_kind("ConfigManagement")
        .filter(|(_, d)| is_config_management(d))
        .collect();
    for &(r, d) in &managements {
        if w.was_reached(r) {
            continue;
        }
        let Some((name, line)) = cluster_name(d) else {
            continue;
        };
        let at = d.at(line);
        let (cluster, _) = w
            .inventory_mut()
            .resolve_destination(Some(name), None, at.clone());
        // The ConfigManagement itself: only this document of its file.
        let mut only = HashSet::default();
        only.insert(r);
        let file = index::basename(&d.file);
        w.deliver(&Delivery {
            mode: DirectoryMode {
                include: DirectoryMode::globs(Some(&globset::escape(file))),
                ..DirectoryMode::default()
            },
            documents: DocumentFilter::Only(std::sync::Arc::new(only)),
            ..Delivery::new(
                Deployer {
                    kind: DeployerKind::Object("ConfigManagement"),
                    name: name_of(d).to_owned(),
                    location: at.clone(),
                },
                cluster,
                index::parent(&d.file).to_owned(),
                vec![cluster_name_hop(at.clone(), name)],
            )
        });
        // A kustomization in its folder that leaves it out: it runs there all the same.
        if !w.was_reached(r) {
            w.run(r, Some(cluster), vec![cluster_name_hop(at, name)]);
        }
        w.drain();
    }

    // The folders RootSyncs and ConfigManagements read, for roots first and for the
    // hierarchical repositories nothing syncs.
    let deployers: Vec<(DocRef, &Document)> = index
        .of_kind("RootSync")
        .chain(index.of_kind("RepoSync"))
        .filter(|(_, d)| is_sync(d))
        .chain(managements.iter().copied())
        .collect();
    let mut synced: HashMap<String, Vec<DocRef>> = HashMap::default();
    for (r, d) in &deployers {
        let kind = d.id.kind.as_deref().unwrap_or_default();
        let source = Source::of(d, kind);
        if source.source_type == "git" {
            if let Some(dir) = index::join("", source.dir, true) {
                synced.entry(dir).or_default().push(*r);
            }
        }
    }
    let pending = unreached_root_order(deployers.iter().map(|(r, d)| (*r, &*d.file)), &synced);
    for r in pending {
        if w.was_reached(r) {
            continue;
        }
        let d = index.doc(r);
        let what = format!(
            "Config Sync {} {}",
            d.id.kind.as_deref().unwrap_or("?"),
            name_of(d)
        );
        let at = d.at(d.first_line);
        let why =
            format!("{what} is not inside a clusters/<name>/ tree and no deployer here applies it");
        let host = unreached_host(w, &d.file, &at, &why, &d.file);
        let chain = vec![Evidence::new(
            at,
            Hop::ConfigSync(Box::new(ConfigSyncHop::Unreached { what: what.into() })),
        )];
        w.run(r, Some(host), chain);
    }

    let repositories: Vec<(DocRef, &Document)> = index
        .of_kind("Repo")
        .filter(|(_, d)| hierarchical_root(d).is_some_and(|root| hierarchy::is_layout(index, root)))
        .collect();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for (r, d) in repositories {
        let Some(root) = hierarchical_root(d) else {
            continue;
        };
        let reached = ["namespaces", "cluster"]
            .iter()
            .any(|sub| w.reached(&below(root, sub)));
        if !seen.insert(root) || synced.contains_key(root) || reached {
            continue;
        }
        let what = format!(
            "Config Sync hierarchical repository {}",
            selectors::shown_dir(root)
        );
        let at = d.at(d.first_line);
        let files = if root.is_empty() {
            "its files".to_owned()
        } else {
            format!("{root}/**")
        };
        let why = format!("{what} is synced by no RootSync or ConfigManagement here");
        let host = unreached_host(w, root, &at, &why, &files);
        let chain = vec![Evidence::new(
            at,
            Hop::ConfigSync(Box::new(ConfigSyncHop::Unreached { what: what.into() })),
        )];
        w.run(r, Some(host), chain);
    }

    for note in selectors::unmatched(index, w.inventory()) {
        w.note(note);
    }
}

/// The cluster of a Config Sync root that nothing placed: the first `paths` rule of the
/// config that matches `path` (a file, or a folder's files), else the unnamed cluster, with a
/// note that says `why` its cluster is not named and how to name it (a rule for `files`).
fn unreached_host(
    w: &mut Worklist<'_>,
    path: &str,
    at: &Location,
    why: &str,
    files: &str,
) -> usize {
    let index = w.index();
    let config = w.config();
    let matches = |glob: &globset::GlobMatcher| {
        if index.file(path).is_some() {
            return glob.is_match(path);
        }
        // A folder: a rule that names any of its files.
        index
            .files
            .iter()
            .any(|f| selectors::within(path, &f.path) && glob.is_match(&*f.path))
    };
    let by_rule = config
        .paths
        .iter()
        .enumerate()
        .find(|(_, rule)| Glob::new(&rule.glob).is_ok_and(|g| matches(&g.compile_matcher())));
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
    w.note(Unresolved {
        location: at.clone(),
        reason: format!(
            "{why}, so its cluster is not named: envfence places it on `{}` of unknown environment (name it with a `paths` rule for {files} in .envfence.yaml)",
            clusters::UNNAMED
        ),
    });
    w.inventory_mut().unnamed_because(
        at.clone(),
        "a Config Sync root outside any clusters/<name>/ tree lands here; nothing names this cluster",
    )
}

/// The hop of a ConfigManagement's `spec.clusterName`.
fn cluster_name_hop(at: Location, name: &str) -> Evidence {
    Evidence::new(
        at,
        Hop::FieldDestination(Box::new(FieldDestinationHop {
            field: "spec.clusterName".into(),
            value: name.into(),
        })),
    )
}

/// Runs a RootSync, RepoSync or ConfigManagement on its cluster (a ConfigManagement's is the
/// one its `clusterName` names), or a hierarchical repository nothing syncs on the cluster the
/// seed chose.
fn run(cx: &mut RunContext<'_, '_>, job: &Job<'_>) -> Outcome {
    let index = cx.index;
    let d = index.doc(job.doc);
    let mut out = Outcome::default();
    let mut chain = job.chain.to_vec();
    if let Some(root) = hierarchical_root(d) {
        let Some(cluster) = job.host else {
            return out;
        };
        let base = Delivery::new(
            Deployer {
                kind: DeployerKind::Object("Repo"),
                name: selectors::shown_dir(root),
                location: d.at(d.first_line),
            },
            cluster,
            root.to_owned(),
            chain,
        );
        hierarchy::deliver(cx, &base, root, &mut out);
        return out;
    }
    let kind: &'static str = match d.id.kind.as_deref() {
        Some("RootSync") if is_sync(d) => "RootSync",
        Some("RepoSync") if is_sync(d) => "RepoSync",
        Some("ConfigManagement") if is_config_management(d) => "ConfigManagement",
        _ => return out,
    };
    let cluster = match (kind, cluster_name(d)) {
        ("ConfigManagement", Some((name, line))) => {
            let at = d.at(line);
            let (c, _) = cx
                .inventory
                .resolve_destination(Some(name), None, at.clone());
            let hop = cluster_name_hop(at, name);
            if !chain.contains(&hop) {
                chain.push(hop);
            }
            c
        }
        _ => match job.host {
            Some(host) => host,
            None => return out,
        },
    };
    let source = Source::of(d, kind);
    // A ConfigManagement in multi-repo mode (no `git`) syncs nothing itself: its RootSyncs do.
    if source.source_type == "none" {
        return out;
    }
    let name = name_of(d).to_owned();
    let vocabulary = cx.inventory.vocabulary();
    let mut signals = job.parent_signals.to_vec();
    signals.extend(identity_signals(
        vocabulary,
        kind,
        &name,
        d.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ));
    // A RepoSync syncs into its own namespace.
    let namespace = (kind == "RepoSync")
        .then_some(d.id.namespace.as_deref())
        .flatten();
    if let Some(ns) = namespace {
        signals.extend(deployer_signal(vocabulary, ns, || {
            format!("{kind} {name} namespace {ns}")
        }));
    }
    let at = |line: u32| d.at(line);
    let deployer = Deployer {
        kind: DeployerKind::Object(kind),
        name: name.clone(),
        location: at(source.line),
    };
    let opaque = |why: String, signals: Vec<Signal>, chain: Vec<Evidence>| {
        let mut evidence = chain;
        evidence.push(Evidence::new(
            at(source.line),
            Hop::Opaque(Box::new(OpaqueHop {
                kind: kind.into(),
                name: name.as_str().into(),
                why: why.into(),
                judged_by: "name, labels and namespace",
            })),
        ));
        Opaque {
            object: PlacedObject {
                file: d.file.clone(),
                line: d.first_line,
                doc: Some(job.doc),
                kind: kind.into(),
                name: Some(name.as_str().into()),
                namespace: d.id.namespace.as_deref().map(Into::into),
                images: Box::default(),
            },
            cluster,
            signals,
            evidence,
            deployer: deployer.clone(),
            renders_chart: source.source_type == "helm",
        }
    };
    match source.source_type {
        "oci" | "helm" => {
            let spec = d.root.get("spec");
            let why = if source.source_type == "oci" {
                let image = field_text(spec, &["oci", "image"]).unwrap_or("?");
                format!("it syncs the OCI image {image}")
            } else {
                let chart = field_text(spec, &["helm", "chart"]).unwrap_or("?");
                let repo = field_text(spec, &["helm", "repo"]).unwrap_or("?");
                format!("it syncs the Helm chart {chart} of {repo}")
            };
            let o = opaque(why, signals, chain);
            out.extra_placements.push(opaque_placement(o, cx.inventory));
            return out;
        }
        "git" => {}
        other => {
            out.unresolved.push(Unresolved {
                location: at(d.line_of("spec.sourceType").unwrap_or(d.first_line)),
                reason: format!("{kind} {name}: sourceType {other} is not one Config Sync knows (git, oci, helm), so what it syncs is not known"),
            });
            return out;
        }
    }
    let repo = source.repo.unwrap_or("?");
    let Some(dir) = index::join("", source.dir, true) else {
        out.unresolved.push(Unresolved {
            location: at(source.line),
            reason: format!(
                "{kind} {name}: {} {} leaves the repository",
                source.field, source.dir
            ),
        });
        return out;
    };
    // The repository's root is read only when the repository is known to be this one, or has
    // the hierarchical layout the deployer expects: any folder "exists", and a whole
    // repository delivered on a guess would place everything.
    let this = cx.inventory.repository.classify(source.repo);
    let here = index.is_dir(&dir)
        && (!dir.is_empty()
            || matches!(this, RepoMatch::This(_))
            || (source.hierarchical && index.is_dir("system") && hierarchy::is_layout(index, "")));
    if !here {
        match this {
            RepoMatch::This(from) => out.unresolved.push(Unresolved {
                location: at(source.line),
                reason: format!(
                    "{kind} {name}: {} {} is not in this repository (repo {repo} is this repository by {from})",
                    source.field, source.dir
                ),
            }),
            RepoMatch::Unknown => {
                let why = format!(
                    "it syncs {} {} of {repo}, which is not in this repository",
                    source.field, source.dir
                );
                let o = opaque(why, signals, chain);
                out.extra_placements
                    .push(opaque_placement(o, cx.inventory));
            }
        }
        return out;
    }
    if let (RepoMatch::Unknown, Some(url)) = (&this, source.repo) {
        chain.push(Evidence::new(
            at(source.line),
            Hop::AssumedThisRepository(Box::new(AssumedThisRepositoryHop {
                source: url.into(),
                path: source.dir.into(),
                git_repository: false,
            })),
        ));
    }
    let hierarchical = source.hierarchical && hierarchy::is_layout(index, &dir);
    chain.push(Evidence::new(
        at(source.line),
        Hop::ConfigSync(Box::new(ConfigSyncHop::Dir {
            kind: kind.into(),
            name: name.as_str().into(),
            field: source.field,
            dir: dir.as_str().into(),
            hierarchical,
        })),
    ));
    let slot = crate::topology::folder_slot(&dir).unwrap_or(index::basename(&dir));
    signals.extend(deployer_signal(vocabulary, slot, || {
        format!("{} {}", source.field, source.dir)
    }));
    let base = Delivery {
        force_namespace: namespace.map(str::to_owned),
        signals,
        ..Delivery::new(deployer, cluster, dir.clone(), chain)
    };
    if hierarchical {
        hierarchy::deliver(cx, &base, &dir, &mut out);
    } else {
        unstructured(cx, base, &dir, &mut out);
    }
    out
}

/// An unstructured folder: everything below it (its kustomization, when it has one), with
/// each object's selectors applied. A NamespaceSelector copies its object into each Namespace
/// the folder declares that it matches.
fn unstructured(cx: &RunContext<'_, '_>, base: Delivery, dir: &str, out: &mut Outcome) {
    let index = cx.index;
    let all = Selectors::of(index);
    let judge = Judge {
        selectors: &all,
        root: dir,
        cluster: &cx.inventory.clusters[base.cluster],
    };
    let scope = selectors::documents_in(index, dir, true);
    let declared: Vec<(String, std::collections::BTreeMap<String, String>)> = scope
        .iter()
        .filter(|(_, d)| d.id.kind.as_deref() == Some("Namespace"))
        .filter_map(|(_, d)| Some((d.id.name.as_deref()?.to_owned(), d.labels.clone())))
        .collect();
    let mut notes = Vec::new();
    let picks: Vec<_> = scope
        .iter()
        .filter(|(_, d)| selectors::is_selected(d))
        .map(|&(r, d)| {
            (
                r,
                judge.picks(d, &Namespaces::Declared(&declared), &mut notes),
            )
        })
        .collect();
    out.unresolved.extend(notes);
    let base = Delivery {
        mode: DirectoryMode::recursive(),
        ..base
    };
    selectors::split(base, picks, &mut out.deliveries);
}
