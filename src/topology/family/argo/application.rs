//! Argo CD Applications: reading one (single or multi-source), its destination, and what each
//! source delivers, renders or stands for (an opaque placement).

use super::helm;
use super::project;
use std::sync::Arc;

use crate::documents::Node;
use crate::evidence::{
    AssumedThisRepositoryHop, DestinationField, Evidence, Hop, OpaqueHop, OtherRepositoryPathHop,
    RemoteChartHop,
};
use crate::location::Location;
use crate::topology::clusters::{Inventory, IN_CLUSTER, IN_CLUSTER_SERVER};
use crate::topology::env::Env;
use crate::topology::family::{
    deployer_signal, governance, identity_signals, opaque_placement, Family, Governed, Opaque,
};
use crate::topology::index::{self, DocRef, RepoIndex};
use crate::topology::kustomize::DirectoryMode;
use crate::topology::repository::RepoMatch;
use crate::topology::{
    folder_slot, Delivery, Deployer, DeployerKind, Outcome, PlacedObject, Placement, Signal,
    SignalLevel, Unresolved,
};

/// The parts of an Application (or template) that decide placement.
#[derive(Debug)]
pub(super) struct AppSpec {
    /// The Application document, when the spec is one (not an ApplicationSet template).
    pub(super) doc: Option<DocRef>,
    pub(super) first_line: u32,
    pub(super) file: Arc<str>,
    /// Where the lines a kustomize edit set come from (see [`crate::documents::Document::at`]).
    pub(super) origins: Option<Arc<[Location]>>,
    pub(super) name: String,
    pub(super) name_line: u32,
    /// `metadata.namespace`; for an ApplicationSet's Application, the ApplicationSet's when
    /// its template has none.
    pub(super) namespace: Option<String>,
    pub(super) labels: Vec<(String, String)>,
    /// `metadata.annotations`, each with where it is set.
    pub(super) annotations: Vec<(String, String, Location)>,
    pub(super) dest_name: Option<(String, u32)>,
    pub(super) dest_server: Option<(String, u32)>,
    pub(super) dest_namespace: Option<String>,
    pub(super) sources: Vec<SourceSpec>,
    /// `spec.project` (Argo CD's `default` when it is not set).
    pub(super) project: String,
}

#[derive(Debug)]
pub(super) struct SourceSpec {
    pub(super) repo_url: Option<String>,
    /// The line of `repoURL` (the source's first line without one).
    pub(super) repo_line: u32,
    pub(super) path: Option<(String, u32)>,
    pub(super) chart: Option<String>,
    pub(super) target_revision: Option<String>,
    /// Why a field of the source could not be resolved (an ephemeral Application whose
    /// source depends on the pull request): its contents cannot be read.
    pub(super) unresolved: Option<String>,
    pub(super) recurse: bool,
    pub(super) include: Option<String>,
    pub(super) exclude: Option<String>,
    pub(super) line: u32,
    /// The `helm:` block, for a source that is a local chart.
    pub(super) helm: Option<helm::ArgoHelm>,
    /// `ref:`, naming this source for other sources' `$ref/...` value files.
    pub(super) ref_name: Option<String>,
}

type Subst<'a> = dyn Fn(&str) -> Result<String, String> + 'a;

impl AppSpec {
    /// Where line `line` of the Application is written (a kustomize edit's line for a field
    /// it set).
    pub(super) fn at(&self, line: u32) -> Location {
        crate::documents::located(&self.file, self.origins.as_deref(), line)
    }

    /// Reads an Application-shaped node (`metadata` + `spec`), substituting every string.
    /// With `lenient_sources`, a source field that cannot be resolved keeps its text and marks
    /// the source unresolved instead of failing (the destination must still resolve).
    pub(super) fn read(
        root: &Node,
        file: &Arc<str>,
        subst: &Subst<'_>,
        lenient_sources: bool,
    ) -> Result<AppSpec, String> {
        let text = |n: Option<&Node>| -> Result<Option<String>, String> {
            match n.and_then(Node::as_str) {
                Some(s) => subst(s).map(Some),
                None => Ok(None),
            }
        };
        let source_text =
            |n: Option<&Node>, failed: &mut Option<String>| -> Result<Option<String>, String> {
                match (text(n), lenient_sources) {
                    (Err(why), true) => {
                        failed.get_or_insert(why);
                        Ok(n.and_then(Node::as_str).map(str::to_owned))
                    }
                    (other, _) => other,
                }
            };
        // Names, labels and namespaces may keep a placeholder (`web-pr-{{number}}`): only
        // the destination and the source path must be known to place the Application.
        let lenient = |s: &str| subst(s).unwrap_or_else(|_| s.to_owned());
        let metadata = root.get("metadata");
        let name_node = metadata.and_then(|m| m.get("name"));
        let name = name_node
            .and_then(Node::as_str)
            .map_or_else(|| "?".into(), lenient);
        let labels = metadata
            .and_then(|m| m.get("labels"))
            .map(Node::string_map)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, lenient(&v)))
            .collect();
        let annotations = metadata
            .and_then(|m| m.get("annotations"))
            .and_then(Node::as_map)
            .unwrap_or(&[])
            .iter()
            .filter_map(|e| {
                Some((
                    e.key.as_str()?.to_owned(),
                    lenient(e.value.as_str()?),
                    Location::new(file, e.key.span.line),
                ))
            })
            .collect();
        let namespace = metadata
            .and_then(|m| m.get("namespace"))
            .and_then(Node::as_str)
            .map(&lenient);
        let spec = root.get("spec");
        let dest = spec.and_then(|s| s.get("destination"));
        let with_line = |key: &str| -> Result<Option<(String, u32)>, String> {
            let Some(entry) = dest.and_then(|d| d.entry(key)) else {
                return Ok(None);
            };
            match entry.value.as_str() {
                Some(v) => Ok(Some((subst(v)?, entry.key.span.line))),
                None => Ok(None),
            }
        };
        let mut sources_nodes: Vec<&Node> =
            spec.and_then(|s| s.get("source")).into_iter().collect();
        sources_nodes.extend(
            spec.and_then(|s| s.get("sources"))
                .and_then(Node::as_seq)
                .unwrap_or(&[]),
        );
        let mut sources = Vec::new();
        for s in sources_nodes {
            let mut unresolved = None;
            let path = match s.entry("path") {
                Some(e) => {
                    source_text(Some(&e.value), &mut unresolved)?.map(|p| (p, e.key.span.line))
                }
                None => None,
            };
            let directory = s.get("directory");
            sources.push(SourceSpec {
                repo_url: source_text(s.get("repoURL"), &mut unresolved)?,
                repo_line: s.entry("repoURL").map_or(s.span.line, |e| e.key.span.line),
                path,
                chart: source_text(s.get("chart"), &mut unresolved)?,
                target_revision: s.get("targetRevision").and_then(Node::as_str).map(&lenient),
                unresolved,
                recurse: directory
                    .and_then(|d| d.get("recurse"))
                    .and_then(Node::as_str)
                    .is_some_and(|v| v == "true"),
                include: text(directory.and_then(|d| d.get("include")))?,
                exclude: text(directory.and_then(|d| d.get("exclude")))?,
                line: s.span.line,
                helm: helm::ArgoHelm::read(s, &lenient),
                ref_name: s.get("ref").and_then(Node::as_str).map(lenient),
            });
        }
        Ok(AppSpec {
            doc: None,
            first_line: root.span.line,
            file: Arc::clone(file),
            origins: None,
            name,
            name_line: name_node.map_or(root.span.line, |n| n.span.line),
            namespace,
            labels,
            annotations,
            dest_name: with_line("name")?,
            dest_server: with_line("server")?,
            dest_namespace: dest
                .and_then(|d| d.get("namespace"))
                .and_then(Node::as_str)
                .map(lenient),
            sources,
            project: spec
                .and_then(|s| s.get("project"))
                .and_then(Node::as_str)
                .filter(|p| !p.is_empty())
                .map_or_else(|| "default".to_owned(), lenient),
        })
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn deliver_app(
    index: &RepoIndex<'_>,
    inventory: &mut Inventory,
    app: &AppSpec,
    host: Option<usize>,
    chain: &[Evidence],
    parent_signals: &[Signal],
    element: &[Evidence],
    ephemeral: bool,
    families: &[&dyn Family],
    out: &mut Outcome,
) {
    let at = |line: u32| app.at(line);
    let (cluster, dest_hop) = match (&app.dest_name, &app.dest_server) {
        (Some((name, line)), _) if name == IN_CLUSTER => (
            inventory.in_cluster(host, at(*line)),
            Evidence::new(
                at(*line),
                Hop::Destination {
                    field: DestinationField::Name,
                    value: name.as_str().into(),
                    local: true,
                },
            ),
        ),
        (None, Some((server, line))) if server.trim_end_matches('/') == IN_CLUSTER_SERVER => (
            inventory.in_cluster(host, at(*line)),
            Evidence::new(
                at(*line),
                Hop::Destination {
                    field: DestinationField::Server,
                    value: server.as_str().into(),
                    local: true,
                },
            ),
        ),
        (Some((name, line)), server) => named_destination(
            inventory,
            Some(name),
            server.as_ref().map(|s| s.0.as_str()),
            at(*line),
            DestinationField::Name,
            out,
        ),
        (None, Some((server, line))) => named_destination(
            inventory,
            None,
            Some(server),
            at(*line),
            DestinationField::Server,
            out,
        ),
        (None, None) => {
            out.unresolved.push(Unresolved {
                location: at(app.name_line),
                reason: format!("Application {} has no destination", app.name),
            });
            return;
        }
    };
    let vocabulary = inventory.vocabulary().clone();
    let mut signals: Vec<Signal> = parent_signals.to_vec();
    if ephemeral {
        signals.push(Signal {
            env: Env::NonProduction,
            note: format!(
                "Application {} comes from a pull-request or SCM provider generator (ephemeral)",
                app.name
            )
            .into(),
            level: SignalLevel::Deployer,
        });
    }
    signals.extend(identity_signals(
        &vocabulary,
        "Application",
        &app.name,
        app.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ));
    // What governs the Application without delivering it (a Kargo Stage promoting into it)
    // says what it is for, as its own identity does.
    let governed = governance(
        families,
        index,
        &vocabulary,
        &Governed {
            kind: "Application",
            group: "argoproj.io",
            name: &app.name,
            namespace: app.namespace.as_deref(),
            annotations: &app.annotations,
        },
    );
    signals.extend(governed.signals);
    let projects = project::named(index, &app.project);
    if let Some(signal) = production_project(&projects, inventory) {
        signals.push(signal);
    }
    let project_hops = project_hops(&projects, app, cluster, &dest_hop, inventory);
    let run = AppRun {
        app,
        cluster,
        chain,
        element,
        governance: governed.hops,
        dest_hop,
        project_hops,
        signals,
    };
    for source in &app.sources {
        deliver_source(index, inventory, &run, source, out);
    }
}

/// One Application being delivered: what all its sources share once its destination is known.
pub(super) struct AppRun<'r> {
    app: &'r AppSpec,
    cluster: usize,
    chain: &'r [Evidence],
    /// The generator element's hops, for an Application an ApplicationSet made.
    element: &'r [Evidence],
    /// The hops of what governs it ([`Family::governs`]).
    governance: Vec<Evidence>,
    dest_hop: Evidence,
    /// What the Application's AppProject says of each source (by position), when the
    /// repository defines the project and it can tell.
    project_hops: Vec<Option<Evidence>>,
    signals: Vec<Signal>,
}

impl AppRun<'_> {
    /// The hops from the cluster to the Application's destination for one of its sources:
    /// the chain that placed it, its generator element's, what governs it, its destination,
    /// and what its AppProject says of it.
    fn hops_to_destination(&self, source: &SourceSpec) -> Vec<Evidence> {
        let mut hops = self.chain.to_vec();
        hops.extend(self.element.iter().cloned());
        hops.extend(self.governance.iter().cloned());
        hops.push(self.dest_hop.clone());
        let position = self
            .app
            .sources
            .iter()
            .position(|s| std::ptr::eq(s, source));
        if let Some(Some(hop)) = position.and_then(|i| self.project_hops.get(i)) {
            hops.push(hop.clone());
        }
        hops
    }
}

/// A production signal for the Applications of a project whose destinations all reach
/// production clusters of the inventory.
fn production_project(projects: &[project::AppProject], inventory: &Inventory) -> Option<Signal> {
    let p = projects.first()?;
    if projects.len() > 1 {
        return None;
    }
    let clusters = p.production_only(&inventory.clusters)?;
    Some(Signal {
        env: Env::Production,
        note: format!(
            "AppProject {} permits only production clusters ({})",
            p.name,
            clusters.join(", ")
        )
        .into(),
        level: SignalLevel::Deployer,
    })
}

/// What the AppProject says of each source of the Application (its destination, the
/// source's repository, the Application's namespace): one hop per source, `None` where the
/// repository does not define the project or it cannot tell.
fn project_hops(
    projects: &[project::AppProject],
    app: &AppSpec,
    cluster: usize,
    dest_hop: &Evidence,
    inventory: &Inventory,
) -> Vec<Option<Evidence>> {
    if projects.is_empty() {
        return Vec::new();
    }
    let dest_name = app.dest_name.as_ref().map(|(n, _)| n.as_str());
    let declared = inventory
        .clusters
        .get(cluster)
        .and_then(|c| c.server.as_deref());
    let dest_server = match (&app.dest_server, dest_name) {
        (Some((s, _)), _) => Some(s.as_str()),
        (None, Some(IN_CLUSTER)) => Some(IN_CLUSTER_SERVER),
        (None, _) => declared,
    };
    app.sources
        .iter()
        .map(|source| {
            let judged = project::Judged {
                dest_name,
                dest_server,
                dest_namespace: app.dest_namespace.as_deref().unwrap_or(""),
                app_namespace: app.namespace.as_deref(),
                sources: source
                    .repo_url
                    .as_deref()
                    .filter(|_| source.unresolved.is_none())
                    .map(|r| (r, app.at(source.repo_line)))
                    .into_iter()
                    .collect(),
                at: dest_hop.location.clone(),
            };
            match project::judge_all(projects, &judged) {
                project::Judgement::Permitted(hop) | project::Judgement::Denied(hop) => Some(hop),
                project::Judgement::Unknown => None,
            }
        })
        .collect()
}

/// Delivers one source of an Application: its folder, its rendered chart, or an opaque
/// placement that stands for what cannot be read.
// Long: the cases of a source in the order they are decided (run-time source, remote chart,
// path outside, another repository, chart, folder), each ending the function.
fn deliver_source(
    index: &RepoIndex<'_>,
    inventory: &mut Inventory,
    run: &AppRun<'_>,
    source: &SourceSpec,
    out: &mut Outcome,
) {
    let AppRun {
        app,
        cluster,
        ref dest_hop,
        ref signals,
        ..
    } = *run;
    let at = |line: u32| app.at(line);
    let vocabulary = inventory.vocabulary().clone();
    let opaque = |why: String, hop_line: u32, hop: Hop, chart: bool| OpaqueSource {
        why,
        hop: Evidence::new(at(hop_line), hop),
        chart,
    };
    let repo = source.repo_url.as_deref().unwrap_or("?");
    if let Some(why) = &source.unresolved {
        // An ephemeral Application whose source depends on run-time parameters.
        let payload = opaque(
            format!("its source depends on run-time parameters ({why})"),
            source.line,
            Hop::PerPullRequestSource { repo: repo.into() },
            source.chart.is_some(),
        );
        out.extra_placements
            .extend(opaque_application(run, source, inventory, payload));
        return;
    }
    if let Some(chart) = &source.chart {
        // A chart from a Helm repository or OCI registry: its contents are elsewhere.
        let payload = opaque(
            format!("Helm chart {chart} comes from {repo}, outside this repository"),
            source.line,
            Hop::RemoteChart(Box::new(RemoteChartHop {
                chart: chart.as_str().into(),
                repo: repo.into(),
            })),
            true,
        );
        out.extra_placements
            .extend(opaque_application(run, source, inventory, payload));
        return;
    }
    let Some((path, path_line)) = &source.path else {
        return;
    };
    let Some(dir) = index::join("", path, true) else {
        out.unresolved.push(Unresolved {
            location: at(*path_line),
            reason: format!("source path {path} leaves the repository"),
        });
        return;
    };
    let this = inventory.repository.classify(source.repo_url.as_deref());
    if !index.is_dir(&dir) {
        match this {
            RepoMatch::This(from) => out.unresolved.push(Unresolved {
                location: at(*path_line),
                reason: format!(
                    "source path {path} is not in this repository (repoURL {repo} is this repository by {from})"
                ),
            }),
            RepoMatch::Unknown => {
                let payload = opaque(
                    format!("its source {repo} path {path} is not in this repository"),
                    *path_line,
                    Hop::OtherRepositoryPath(Box::new(OtherRepositoryPathHop {
                        path: path.as_str().into(),
                        repo: repo.into(),
                    })),
                    false,
                );
                out.extra_placements.extend(opaque_application(run, source, inventory, payload));
            }
        }
        return;
    }
    // A repoURL not known to be this one, whose path exists here: read from here, and say so.
    let assumed = match (&this, &source.repo_url) {
        (RepoMatch::Unknown, Some(url)) => Some(Evidence::new(
            at(source.line),
            Hop::AssumedThisRepository(Box::new(AssumedThisRepositoryHop {
                source: url.as_str().into(),
                path: path.as_str().into(),
                git_repository: false,
            })),
        )),
        _ => None,
    };
    if crate::topology::helm::is_chart(index, &dir) && index.kustomization_in(&dir).is_none() {
        let place = ChartSource {
            dir: &dir,
            path,
            path_line: *path_line,
            assumed,
        };
        deliver_chart(index, inventory, run, source, place, out);
        return;
    }
    let mut source_signals = signals.clone();
    let slot = folder_slot(&dir).unwrap_or(index::basename(&dir));
    source_signals.extend(deployer_signal(&vocabulary, slot, || {
        format!("source path {path}")
    }));
    let mut hops = run.hops_to_destination(source);
    hops.extend(assumed);
    hops.push(Evidence::new(
        at(*path_line),
        Hop::SourcePath {
            path: path.as_str().into(),
            chart: false,
        },
    ));
    out.deliveries.push(Delivery {
        mode: DirectoryMode {
            recurse: source.recurse,
            include: DirectoryMode::globs(source.include.as_deref()),
            exclude: DirectoryMode::globs(source.exclude.as_deref()),
        },
        default_namespace: app.dest_namespace.clone(),
        signals: source_signals,
        ..Delivery::new(
            Deployer {
                kind: DeployerKind::Object("Application"),
                name: app.name.clone(),
                location: dest_hop.location.clone(),
            },
            cluster,
            dir,
            hops,
        )
    });
}

/// A source folder that is a Helm chart (with no kustomization of its own).
struct ChartSource<'c> {
    dir: &'c str,
    path: &'c str,
    path_line: u32,
    /// The hop that assumes its repoURL is this repository, when it does.
    assumed: Option<Evidence>,
}

/// Delivers an Application's chart: rendered with helm when it can be; otherwise the
/// Application stands for its chart as an opaque placement, with a note that says why.
fn deliver_chart(
    index: &RepoIndex<'_>,
    inventory: &Inventory,
    run: &AppRun<'_>,
    source: &SourceSpec,
    place: ChartSource<'_>,
    out: &mut Outcome,
) {
    let AppRun {
        app,
        cluster,
        ref dest_hop,
        ref signals,
        ..
    } = *run;
    let ChartSource {
        dir,
        path,
        path_line,
        assumed,
    } = place;
    let at = |line: u32| app.at(line);
    // Rendered with helm when it can be; otherwise the Application stands for its chart
    // as an opaque placement, with a note that says why.
    let note = Unresolved {
        location: at(path_line),
        reason: format!(
            "{path} is a Helm chart that Argo CD renders; envfence does not render templates"
        ),
    };
    let hop = Evidence::new(
        at(path_line),
        Hop::SourcePath {
            path: path.into(),
            chart: true,
        },
    );
    let payload = OpaqueSource {
        why: format!("{path} is a Helm chart that envfence does not render"),
        hop: hop.clone(),
        chart: true,
    };
    let fallback = opaque_application(run, source, inventory, payload);
    let mut hops = run.hops_to_destination(source);
    hops.extend(assumed.clone());
    hops.push(hop);
    let refs: Vec<String> = app
        .sources
        .iter()
        .filter_map(|s| s.ref_name.clone())
        .collect();
    let (mut values_evidence, mut notes) = (Vec::new(), Vec::new());
    let request = helm::request(
        index,
        dir,
        &app.name,
        app.dest_namespace.as_deref(),
        source.helm.as_ref(),
        &refs,
        &app.file,
        &mut values_evidence,
        &mut notes,
    );
    out.charts.push(crate::topology::helm::ChartInstall {
        request,
        delivery: Delivery {
            default_namespace: app.dest_namespace.clone(),
            signals: signals.clone(),
            ..Delivery::new(
                Deployer {
                    kind: DeployerKind::Object("Application"),
                    name: app.name.clone(),
                    location: dest_hop.location.clone(),
                },
                cluster,
                dir.to_owned(),
                hops,
            )
        },
        values_evidence,
        notes,
        fallback: fallback.into_iter().collect(),
        fallback_notes: vec![note],
    });
}

/// Why a source's contents cannot be read, and the evidence hop that names the source.
pub(super) struct OpaqueSource {
    why: String,
    hop: Evidence,
    /// A Helm chart: rules read the Application's Helm values as the chart's.
    chart: bool,
}

/// A deployer whose payload is not in the repository (a chart from a Helm repository, another
/// repository, a source known only per pull request) still places one workload on its
/// destination: the Application itself, classed by its own identity (DESIGN §3, opaque
/// placement), so that every rule judges it.
pub(super) fn opaque_application(
    run: &AppRun<'_>,
    source: &SourceSpec,
    inventory: &Inventory,
    payload: OpaqueSource,
) -> Option<Placement> {
    let AppRun {
        app,
        cluster,
        ref dest_hop,
        ref signals,
        ..
    } = *run;
    let doc = app.doc?;
    let vocabulary = inventory.vocabulary();
    let mut signals = signals.to_vec();
    let mut identity = |what: &str, value: &str, classified: Option<&str>| {
        signals.extend(deployer_signal(
            vocabulary,
            classified.unwrap_or(value),
            || format!("Application {} {what} {value}", app.name),
        ));
    };
    if let Some(ns) = &app.dest_namespace {
        identity("namespace", ns, None);
    }
    if let Some(rev) = &source.target_revision {
        identity("targetRevision", rev, None);
    }
    if let Some((path, _)) = &source.path {
        let slot = folder_slot(path).unwrap_or(index::basename(path.trim_end_matches('/')));
        identity("source path", path, Some(slot));
    }
    if let Some(chart) = &source.chart {
        identity("chart", chart, None);
    }
    let mut evidence = run.hops_to_destination(source);
    evidence.push(payload.hop);
    evidence.push(Evidence::new(
        app.at(app.name_line),
        Hop::Opaque(Box::new(OpaqueHop {
            kind: "Application".into(),
            name: app.name.as_str().into(),
            why: payload.why.into(),
            judged_by: "name, labels, namespace and source",
        })),
    ));
    let opaque = Opaque {
        object: PlacedObject {
            file: Arc::clone(&app.file),
            line: app.first_line,
            doc: Some(doc),
            kind: "Application".into(),
            name: Some(app.name.as_str().into()),
            namespace: app.dest_namespace.as_deref().map(Into::into),
            images: Box::default(),
        },
        cluster,
        signals,
        evidence,
        deployer: Deployer {
            kind: DeployerKind::Object("Application"),
            name: app.name.clone(),
            location: dest_hop.location.clone(),
        },
        renders_chart: payload.chart,
    };
    Some(opaque_placement(opaque, inventory))
}

/// A destination that names a cluster (not `in-cluster`): the cluster, and the evidence hop.
/// A cluster that nothing else declares is still used, with an unresolved entry.
pub(super) fn named_destination(
    inventory: &mut Inventory,
    name: Option<&str>,
    server: Option<&str>,
    location: Location,
    field: DestinationField,
    out: &mut Outcome,
) -> (usize, Evidence) {
    let (cluster, declared) = inventory.resolve_destination(name, server, location.clone());
    if !declared {
        let (what, from) = match name {
            Some(n) => (format!("`{n}`"), "name"),
            None => (server.unwrap_or("?").to_owned(), "URL"),
        };
        out.unresolved.push(Unresolved {
            location: location.clone(),
            reason: format!(
                "cluster {what} is not declared (config, Argo CD cluster Secret); its environment is guessed from its {from}"
            ),
        });
    }
    let value = match field {
        DestinationField::Name => name,
        _ => server,
    };
    (
        cluster,
        Evidence::new(
            location,
            Hop::Destination {
                field,
                value: value.unwrap_or("?").into(),
                local: false,
            },
        ),
    )
}
