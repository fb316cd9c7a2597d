//! Argo CD: Applications (single and multi-source, directory options, apps of apps) and
//! ApplicationSets (list, clusters, git directories and files, matrix and merge generators;
//! `{{key}}` and `goTemplate` substitution). Generators that need a live API (pull requests,
//! SCM providers, cluster decision resources, plugins) cannot be expanded: their
//! Applications are ephemeral non-production workloads whose static destination still counts,
//! and what cannot be known becomes an unresolved entry.

pub mod cluster_secret;
pub mod helm;

use crate::topology::build::Worklist;
use crate::topology::family::{covered_by_others, Family, Job, RunContext, Stage, TemplateKind};

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use globset::Glob;

use crate::config::Limits;
use crate::documents::{Document, Node};
use crate::location::{Evidence, Location};
use crate::topology::clusters::{Inventory, IN_CLUSTER, IN_CLUSTER_SERVER};
use crate::topology::env::Env;
use crate::topology::index::{self, DocRef, RepoIndex};
use crate::topology::kustomize::{count_text, DirectoryMode};
use crate::topology::repository::RepoMatch;
use crate::topology::{
    folder_slot, Delivery, Deployer, Outcome, PlacedObject, Placement, Signal, SignalLevel,
    Unresolved,
};

/// Argo CD: Applications and ApplicationSets, with the cluster Secrets that declare clusters.
pub struct ArgoCd;

impl Family for ArgoCd {
    fn name(&self) -> &'static str {
        "Argo CD"
    }

    fn deployer_kinds(&self) -> &'static [&'static str] {
        &["Application", "ApplicationSet", "AppProject"]
    }

    fn is_deployer(&self, d: &Document) -> bool {
        is_argo_deployer(d)
    }

    fn template_kinds(&self) -> &'static [TemplateKind] {
        &[
            TemplateKind {
                kind: "Application",
                api: None,
                described: "Argo CD Applications",
            },
            TemplateKind {
                kind: "ApplicationSet",
                api: None,
                described: "Argo CD ApplicationSets",
            },
        ]
    }

    fn declare_clusters(&self, index: &RepoIndex<'_>, inventory: &mut Inventory) {
        cluster_secret::declare(index, inventory);
    }

    fn stage(&self) -> Option<Stage> {
        Some(Stage::Deployers)
    }

    fn seed(&self, w: &mut Worklist<'_>) {
        seed_roots(w);
    }

    fn run(&self, cx: &mut RunContext<'_, '_>, job: &Job<'_>) -> Outcome {
        run(
            cx.index,
            cx.inventory,
            job.doc,
            job.host,
            job.chain,
            job.parent_signals,
            cx.limits,
        )
    }
}

/// Runs every Argo CD Application and ApplicationSet that no placement reached, parents
/// (apps of apps) first so that their children carry the parent in their evidence.
fn seed_roots(w: &mut Worklist<'_>) {
    let mut roots = Vec::new();
    let mut contained = Vec::new();
    let index = w.index();
    let argo: Vec<(DocRef, &Document)> = index
        .of_kind("Application")
        .chain(index.of_kind("ApplicationSet"))
        .filter(|(_, d)| is_argo_deployer(d))
        .collect();
    let mut sources: crate::topology::HashMap<String, Vec<DocRef>> =
        crate::topology::HashMap::default();
    for (r, d) in &argo {
        for p in source_paths(d) {
            sources.entry(p).or_default().push(*r);
        }
    }
    for (r, d) in &argo {
        if covered_by_others(&d.file, *r, &sources) {
            contained.push(*r);
        } else {
            roots.push(*r);
        }
    }
    roots.sort();
    contained.sort();
    for r in roots.into_iter().chain(contained) {
        if w.was_reached(r) {
            continue;
        }
        w.run(r, None, Vec::new());
    }
}

pub fn is_argo_deployer(d: &Document) -> bool {
    d.id.api_version
        .as_deref()
        .is_some_and(|v| v.starts_with("argoproj.io/"))
        && matches!(
            d.id.kind.as_deref(),
            Some("Application") | Some("ApplicationSet")
        )
}

/// The repository paths an Application (or an ApplicationSet's template, up to its first
/// placeholder) reads from.
pub fn source_paths(d: &Document) -> Vec<String> {
    let spec = match d.id.kind.as_deref() {
        Some("ApplicationSet") => d
            .root
            .get("spec")
            .and_then(|s| s.get("template"))
            .and_then(|t| t.get("spec")),
        _ => d.root.get("spec"),
    };
    let Some(spec) = spec else { return Vec::new() };
    let mut sources: Vec<&Node> = spec.get("source").into_iter().collect();
    sources.extend(spec.get("sources").and_then(Node::as_seq).unwrap_or(&[]));
    sources
        .into_iter()
        .filter_map(|s| s.get("path")?.as_str())
        .map(|p| {
            let fixed = p.split("{{").next().unwrap_or("");
            let fixed = if p.contains("{{") {
                index::parent(fixed)
            } else {
                fixed
            };
            index::join("", fixed, true).unwrap_or_default()
        })
        .collect()
}

/// Runs an Application or ApplicationSet. `host` is the cluster its object was placed on.
pub fn run(
    index: &RepoIndex<'_>,
    inventory: &mut Inventory,
    doc: DocRef,
    host: Option<usize>,
    chain: &[Evidence],
    parent_signals: &[Signal],
    limits: &Limits,
) -> Outcome {
    let mut out = Outcome::default();
    let d = index.doc(doc);
    match d.id.kind.as_deref() {
        Some("Application") => {
            let spec = AppSpec::read(&d.root, &d.file, &|s: &str| Ok(s.to_owned()), false);
            match spec {
                Ok(mut spec) => {
                    spec.doc = Some(doc);
                    deliver_app(
                        index,
                        inventory,
                        &spec,
                        host,
                        chain,
                        parent_signals,
                        &[],
                        false,
                        &mut out,
                    )
                }
                Err(reason) => out.unresolved.push(Unresolved {
                    location: Location::new(&d.file, d.first_line),
                    reason,
                }),
            }
        }
        Some("ApplicationSet") => run_appset(
            index,
            inventory,
            doc,
            host,
            chain,
            parent_signals,
            limits,
            &mut out,
        ),
        _ => {}
    }
    out
}

/// The parts of an Application (or template) that decide placement.
#[derive(Debug)]
struct AppSpec {
    /// The Application document, when the spec is one (not an ApplicationSet template).
    doc: Option<DocRef>,
    first_line: u32,
    file: Arc<str>,
    name: String,
    name_line: u32,
    labels: Vec<(String, String)>,
    dest_name: Option<(String, u32)>,
    dest_server: Option<(String, u32)>,
    dest_namespace: Option<String>,
    sources: Vec<SourceSpec>,
}

#[derive(Debug)]
struct SourceSpec {
    repo_url: Option<String>,
    path: Option<(String, u32)>,
    chart: Option<String>,
    target_revision: Option<String>,
    /// Why a field of the source could not be resolved (an ephemeral Application whose
    /// source depends on the pull request): its contents cannot be read.
    unresolved: Option<String>,
    recurse: bool,
    include: Option<String>,
    exclude: Option<String>,
    line: u32,
    /// The `helm:` block, for a source that is a local chart.
    helm: Option<helm::ArgoHelm>,
    /// `ref:`, naming this source for other sources' `$ref/...` value files.
    ref_name: Option<String>,
}

type Subst<'a> = dyn Fn(&str) -> Result<String, String> + 'a;

impl AppSpec {
    /// Reads an Application-shaped node (`metadata` + `spec`), substituting every string.
    /// With `lenient_sources`, a source field that cannot be resolved keeps its text and marks
    /// the source unresolved instead of failing (the destination must still resolve).
    fn read(
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
        let spec = root.get("spec");
        let dest = spec.and_then(|s| s.get("destination"));
        let with_line = |key: &str| -> Result<Option<(String, u32)>, String> {
            let Some(entry) = dest.and_then(|d| d.entry(key)) else {
                return Ok(None);
            };
            match entry.value.as_str() {
                Some(v) => Ok(Some((subst(v)?, entry.key.span.start.line))),
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
                Some(e) => source_text(Some(&e.value), &mut unresolved)?
                    .map(|p| (p, e.key.span.start.line)),
                None => None,
            };
            let directory = s.get("directory");
            sources.push(SourceSpec {
                repo_url: source_text(s.get("repoURL"), &mut unresolved)?,
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
                line: s.span.start.line,
                helm: helm::ArgoHelm::read(s, &lenient),
                ref_name: s.get("ref").and_then(Node::as_str).map(lenient),
            });
        }
        Ok(AppSpec {
            doc: None,
            first_line: root.span.start.line,
            file: Arc::clone(file),
            name,
            name_line: name_node.map_or(root.span.start.line, |n| n.span.start.line),
            labels,
            dest_name: with_line("name")?,
            dest_server: with_line("server")?,
            dest_namespace: dest
                .and_then(|d| d.get("namespace"))
                .and_then(Node::as_str)
                .map(lenient),
            sources,
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn deliver_app(
    index: &RepoIndex<'_>,
    inventory: &mut Inventory,
    app: &AppSpec,
    host: Option<usize>,
    chain: &[Evidence],
    parent_signals: &[Signal],
    element: &[Evidence],
    ephemeral: bool,
    out: &mut Outcome,
) {
    let at = |line: u32| Location::new(&app.file, line);
    let (cluster, dest_hop) = match (&app.dest_name, &app.dest_server) {
        (Some((name, line)), _) if name == IN_CLUSTER => (
            inventory.in_cluster(host, at(*line)),
            Evidence {
                location: at(*line),
                note: format!("destination.name={name} (the cluster running Argo CD)").into(),
            },
        ),
        (None, Some((server, line))) if server.trim_end_matches('/') == IN_CLUSTER_SERVER => (
            inventory.in_cluster(host, at(*line)),
            Evidence {
                location: at(*line),
                note: format!("destination.server={server} (the cluster running Argo CD)").into(),
            },
        ),
        (Some((name, line)), server) => named_destination(
            inventory,
            Some(name),
            server.as_ref().map(|s| s.0.as_str()),
            at(*line),
            format!("destination.name={name}"),
            out,
        ),
        (None, Some((server, line))) => named_destination(
            inventory,
            None,
            Some(server),
            at(*line),
            format!("destination.server={server}"),
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
    if let Some(m) = vocabulary.classify_workload(&app.name) {
        signals.push(Signal {
            env: m.env,
            note: format!("Application name {}", app.name).into(),
            level: SignalLevel::Deployer,
        });
    }
    for (k, v) in &app.labels {
        if matches!(k.as_str(), "env" | "environment" | "stage") {
            if let Some(m) = vocabulary.classify_workload(v) {
                signals.push(Signal {
                    env: m.env,
                    note: format!("Application label {k}={v}").into(),
                    level: SignalLevel::Deployer,
                });
            }
        }
    }
    for source in &app.sources {
        let opaque = |why: String, hop_line: u32, hop_note: String, chart: bool| OpaqueSource {
            why,
            hop: Evidence {
                location: at(hop_line),
                note: hop_note.into(),
            },
            chart,
        };
        let repo = source.repo_url.as_deref().unwrap_or("?");
        if let Some(why) = &source.unresolved {
            // An ephemeral Application whose source depends on run-time parameters.
            let payload = opaque(
                format!("its source depends on run-time parameters ({why})"),
                source.line,
                format!("source {repo} (per pull request)"),
                source.chart.is_some(),
            );
            out.extra_placements.extend(opaque_placement(
                app, source, cluster, inventory, &signals, chain, element, &dest_hop, payload,
            ));
            continue;
        }
        if let Some(chart) = &source.chart {
            // A chart from a Helm repository or OCI registry: its contents are elsewhere.
            let payload = opaque(
                format!("Helm chart {chart} comes from {repo}, outside this repository"),
                source.line,
                format!("Helm chart {chart} from {repo}, rendered by Argo CD"),
                true,
            );
            out.extra_placements.extend(opaque_placement(
                app, source, cluster, inventory, &signals, chain, element, &dest_hop, payload,
            ));
            continue;
        }
        let Some((path, path_line)) = &source.path else {
            continue;
        };
        let Some(dir) = index::join("", path, true) else {
            out.unresolved.push(Unresolved {
                location: at(*path_line),
                reason: format!("source path {path} leaves the repository"),
            });
            continue;
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
                        format!("source.path {path} of {repo} (another repository)"),
                        false,
                    );
                    out.extra_placements.extend(opaque_placement(
                        app, source, cluster, inventory, &signals, chain, element, &dest_hop,
                        payload,
                    ));
                }
            }
            continue;
        }
        // A repoURL not known to be this one, whose path exists here: read from here, and say so.
        let assumed = match (&this, &source.repo_url) {
            (RepoMatch::Unknown, Some(url)) => Some(Evidence {
                location: at(source.line),
                note: format!(
                    "repoURL {url} is assumed to be this repository: {path} exists here (declare it in repository.urls to make this certain)"
                ).into(),
            }),
            _ => None,
        };
        if crate::topology::helm::is_chart(index, &dir) && index.kustomization_in(&dir).is_none() {
            // Rendered with helm when it can be; otherwise the Application stands for its chart
            // as an opaque placement, with a note that says why.
            let note = Unresolved {
                location: at(*path_line),
                reason: format!("{path} is a Helm chart that Argo CD renders; envfence does not render templates"),
            };
            let hop = Evidence {
                location: at(*path_line),
                note: format!("source.path {path}: a Helm chart rendered by Argo CD").into(),
            };
            let payload = opaque(
                format!("{path} is a Helm chart that envfence does not render"),
                *path_line,
                format!("source.path {path}: a Helm chart rendered by Argo CD"),
                true,
            );
            let fallback = opaque_placement(
                app, source, cluster, inventory, &signals, chain, element, &dest_hop, payload,
            );
            let mut hops = chain.to_vec();
            hops.extend(element.iter().cloned());
            hops.push(dest_hop.clone());
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
                &dir,
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
                    deployer: Deployer {
                        kind: "Application".into(),
                        name: app.name.clone(),
                        location: dest_hop.location.clone(),
                    },
                    cluster,
                    dir,
                    mode: DirectoryMode::default(),
                    force_namespace: None,
                    default_namespace: app.dest_namespace.clone(),
                    chain: hops,
                    signals: signals.clone(),
                    helm_releases_to: None,
                },
                values_evidence,
                notes,
                fallback: fallback.into_iter().collect(),
                fallback_notes: vec![note],
            });
            continue;
        }
        let mut source_signals = signals.clone();
        let slot = folder_slot(&dir).unwrap_or(index::basename(&dir));
        if let Some(m) = vocabulary.classify_workload(slot) {
            source_signals.push(Signal {
                env: m.env,
                note: format!("source path {path}").into(),
                level: SignalLevel::Deployer,
            });
        }
        let mut hops = chain.to_vec();
        hops.extend(element.iter().cloned());
        hops.push(dest_hop.clone());
        hops.extend(assumed);
        hops.push(Evidence {
            location: at(*path_line),
            note: format!("source.path {path}").into(),
        });
        out.deliveries.push(Delivery {
            deployer: Deployer {
                kind: "Application".into(),
                name: app.name.clone(),
                location: dest_hop.location.clone(),
            },
            cluster,
            dir,
            mode: DirectoryMode {
                recurse: source.recurse,
                include: DirectoryMode::globs(source.include.as_deref()),
                exclude: DirectoryMode::globs(source.exclude.as_deref()),
            },
            force_namespace: None,
            default_namespace: app.dest_namespace.clone(),
            chain: hops,
            signals: source_signals,
            helm_releases_to: None,
        });
    }
}

/// Why a source's contents cannot be read, and the evidence hop that names the source.
struct OpaqueSource {
    why: String,
    hop: Evidence,
    /// A Helm chart: rules read the Application's Helm values as the chart's.
    chart: bool,
}

/// A deployer whose payload is not in the repository (a chart from a Helm repository, another
/// repository, a source known only per pull request) still places one workload on its
/// destination: the Application itself, classed by its own identity (DESIGN §3, opaque
/// placement), so that every rule judges it.
#[allow(clippy::too_many_arguments)]
fn opaque_placement(
    app: &AppSpec,
    source: &SourceSpec,
    cluster: usize,
    inventory: &Inventory,
    signals: &[Signal],
    chain: &[Evidence],
    element: &[Evidence],
    dest_hop: &Evidence,
    payload: OpaqueSource,
) -> Option<Placement> {
    let doc = app.doc?;
    let vocabulary = inventory.vocabulary();
    let mut signals = signals.to_vec();
    let mut identity = |what: &str, value: &str, classified: Option<&str>| {
        if let Some(m) = vocabulary.classify_workload(classified.unwrap_or(value)) {
            signals.push(Signal {
                env: m.env,
                note: format!("Application {} {what} {value}", app.name).into(),
                level: SignalLevel::Deployer,
            });
        }
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
    let c = &inventory.clusters[cluster];
    let (class, reason, level) =
        crate::topology::classify::decide_class(c.environment, &c.name, &signals);
    let mut evidence = chain.to_vec();
    evidence.extend(element.iter().cloned());
    evidence.push(dest_hop.clone());
    evidence.push(payload.hop);
    evidence.push(Evidence {
        location: Location::new(&app.file, app.name_line),
        note: format!(
            "opaque placement: the contents of Application {} were not read ({}); it is judged by its own name, labels, namespace and source",
            app.name, payload.why
        ).into(),
    });
    Some(Placement {
        object: PlacedObject {
            file: Arc::clone(&app.file),
            line: app.first_line,
            doc: Some(doc),
            kind: "Application".into(),
            name: Some(app.name.as_str().into()),
            namespace: app.dest_namespace.as_deref().map(Into::into),
            images: Vec::new(),
        },
        cluster,
        cluster_environment: Env::Unknown,
        workload_class: class,
        class_reason: reason,
        class_level: level,
        deployer_class: crate::topology::classify::deployer_class(&signals),
        evidence: evidence.into(),
        deployer: Some(Arc::new(Deployer {
            kind: "Application".into(),
            name: app.name.clone(),
            location: dest_hop.location.clone(),
        })),
        patch: false,
        renders_chart: payload.chart,
        opaque: true,
        purpose: crate::topology::Purpose::Unknown,
        purpose_reason: Arc::from(""),
    })
}

/// A destination that names a cluster (not `in-cluster`): the cluster, and the evidence hop.
/// A cluster that nothing else declares is still used, with an unresolved entry.
fn named_destination(
    inventory: &mut Inventory,
    name: Option<&str>,
    server: Option<&str>,
    location: Location,
    note: String,
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
    (
        cluster,
        Evidence {
            location,
            note: note.into(),
        },
    )
}

/// One set of generator parameters, with the line that produced it.
#[derive(Debug, Clone, Default)]
struct Params {
    values: BTreeMap<String, String>,
    evidence: Vec<Evidence>,
}

#[allow(clippy::too_many_arguments)]
fn run_appset(
    index: &RepoIndex<'_>,
    inventory: &mut Inventory,
    doc: DocRef,
    host: Option<usize>,
    chain: &[Evidence],
    parent_signals: &[Signal],
    limits: &Limits,
    out: &mut Outcome,
) {
    let d = index.doc(doc);
    let spec = d.root.get("spec");
    let go = spec
        .and_then(|s| s.get("goTemplate"))
        .and_then(Node::as_str)
        == Some("true");
    let Some(template) = spec.and_then(|s| s.get("template")) else {
        out.unresolved.push(Unresolved {
            location: Location::new(&d.file, d.first_line),
            reason: "ApplicationSet has no template".into(),
        });
        return;
    };
    let appset_name = d.id.name.clone().unwrap_or_else(|| "?".into());
    // At most `limit` parameter sets, counted while generating (a matrix is never built
    // whole); what the rest would have been is counted, not materialised.
    let limit = limits.appset_parameter_sets;
    let mut ephemeral = false;
    let mut sets = Vec::new();
    let mut total: u64 = 0;
    let mut overflow = None;
    for g in spec
        .and_then(|s| s.get("generators"))
        .and_then(Node::as_seq)
        .unwrap_or(&[])
    {
        let remaining = limit.saturating_sub(sets.len());
        let generated = generate_bounded(index, inventory, d, g, remaining, limit, out);
        ephemeral |= generated.ephemeral;
        total = total.saturating_add(generated.total);
        // A generator cut only because earlier ones used the budget is counted in `total`.
        overflow = overflow.or(generated.overflow.filter(|(_, _, n)| *n > limit as u64));
        sets.extend(generated.sets);
    }
    if overflow.is_some() || total > limit as u64 {
        let (location, what, count) = overflow.unwrap_or_else(|| {
            (
                Location::new(&d.file, d.first_line),
                format!("the generators of ApplicationSet {appset_name}"),
                total,
            )
        });
        let limit = limit as u64;
        out.unresolved.push(Unresolved {
            location,
            reason: format!(
                "{what} would yield {} parameter sets; the limit is {} (limits.appset-parameter-sets): the first {} are expanded, the other {} are not placed",
                count_text(count),
                count_text(limit),
                count_text(count.min(limit)),
                count_text(count.saturating_sub(limit)),
            ),
        });
    }
    let hop = Evidence {
        location: Location::new(&d.file, d.first_line),
        note: format!("ApplicationSet {appset_name}").into(),
    };
    let mut chain = chain.to_vec();
    chain.push(hop);
    for params in sets {
        let subst = |s: &str| render(s, &params.values, go);
        // An ephemeral Application's source may depend on the pull request: it is then an
        // opaque placement on the destination rather than nothing.
        match AppSpec::read(template, &d.file, &subst, ephemeral) {
            Ok(mut app) => {
                // Generated Applications stand on the ApplicationSet's document.
                app.doc = Some(doc);
                deliver_app(
                    index,
                    inventory,
                    &app,
                    host,
                    &chain,
                    parent_signals,
                    &params.evidence,
                    ephemeral,
                    out,
                )
            }
            Err(reason) => out.unresolved.push(Unresolved {
                location: params.evidence.last().map_or_else(
                    || Location::new(&d.file, d.first_line),
                    |e| e.location.clone(),
                ),
                reason: format!("ApplicationSet {appset_name}: {reason}"),
            }),
        }
    }
}

/// Parameter sets of one generator, at most the limit it was given.
#[derive(Debug, Default)]
struct Generated {
    sets: Vec<Params>,
    ephemeral: bool,
    /// How many sets there would be without the limit (saturating).
    total: u64,
    /// The outermost generator whose sets were cut: where, which, how many it would yield.
    overflow: Option<(Location, String, u64)>,
}

/// Expands a generator into at most `limit` parameter sets, the first ones in Argo CD's
/// order; matrix and merge combine their children here without building the whole product.
/// `ceiling` is the ApplicationSet's limit (a merge's other generators add no sets, so they
/// are cut only there).
fn generate_bounded(
    index: &RepoIndex<'_>,
    inventory: &mut Inventory,
    d: &Document,
    g: &Node,
    limit: usize,
    ceiling: usize,
    out: &mut Outcome,
) -> Generated {
    let location = Location::new(&d.file, g.span.start.line);
    for combiner in ["matrix", "merge"] {
        let Some(node) = g.get(combiner) else {
            continue;
        };
        let children: Vec<Generated> = node
            .get("generators")
            .and_then(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .enumerate()
            .map(|(i, child)| {
                let limit = if combiner == "merge" && i > 0 {
                    ceiling
                } else {
                    limit
                };
                generate_bounded(index, inventory, d, child, limit, ceiling, out)
            })
            .collect();
        let ephemeral = children.iter().any(|c| c.ephemeral);
        let mut children = children.into_iter();
        let Some(first) = children.next() else {
            return Generated::default();
        };
        if combiner == "matrix" {
            let mut inner_overflow = first.overflow;
            let mut total = first.total;
            let mut sets = first.sets;
            for next in children {
                inner_overflow = inner_overflow.or(next.overflow);
                total = total.saturating_mul(next.total);
                let mut product =
                    Vec::with_capacity(sets.len().saturating_mul(next.sets.len()).min(limit));
                'product: for a in &sets {
                    for b in &next.sets {
                        if product.len() >= limit {
                            break 'product;
                        }
                        let mut values = a.values.clone();
                        values.extend(b.values.iter().map(|(k, v)| (k.clone(), v.clone())));
                        let mut evidence = a.evidence.clone();
                        evidence.extend(b.evidence.iter().cloned());
                        product.push(Params { values, evidence });
                    }
                }
                sets = product;
            }
            // The product's own count, else a merge inside it that lost sets.
            let overflow = if total > limit as u64 {
                Some((location, "matrix generator".to_owned(), total))
            } else {
                inner_overflow.filter(|_| total > 0)
            };
            return Generated {
                sets,
                ephemeral,
                total,
                overflow,
            };
        }
        let keys: Vec<String> = node
            .get("mergeKeys")
            .and_then(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect();
        let mut base = first.sets;
        let mut overflow = (first.total > limit as u64)
            .then(|| (location.clone(), "merge generator".to_owned(), first.total))
            .or(first.overflow);
        let mut repeated = false;
        for next in children {
            overflow = overflow.or(next.overflow);
            if keys.is_empty() {
                continue;
            }
            // Index the other generator by its merge-key values: linear, not |base|×|next|.
            let key_of = |p: &Params| -> Vec<Option<String>> {
                keys.iter().map(|k| p.values.get(k).cloned()).collect()
            };
            // Argo CD rejects repeated merge keys; the first set with a key is the one merged.
            let mut by_key: HashMap<Vec<Option<String>>, &Params> = HashMap::new();
            for b in next.sets.iter().rev() {
                repeated |= by_key.insert(key_of(b), b).is_some();
            }
            for a in base.iter_mut() {
                if let Some(b) = by_key.get(&key_of(a)) {
                    a.values
                        .extend(b.values.iter().map(|(k, v)| (k.clone(), v.clone())));
                    a.evidence.extend(b.evidence.iter().cloned());
                }
            }
        }
        if repeated {
            out.unresolved.push(Unresolved {
                location: location.clone(),
                reason: "merge generator: several parameter sets share the same merge key values, which Argo CD rejects; envfence merges the first of them".into(),
            });
        }
        return Generated {
            sets: base,
            ephemeral,
            total: first.total,
            overflow,
        };
    }
    let (mut sets, ephemeral) = generate(index, inventory, d, g, out);
    let total = sets.len() as u64;
    let overflow = (sets.len() > limit).then(|| {
        let kind = g
            .as_map()
            .and_then(|entries| entries.first())
            .and_then(|e| e.key.as_str())
            .unwrap_or("?");
        (location, format!("{kind} generator"), total)
    });
    sets.truncate(limit);
    Generated {
        sets,
        ephemeral,
        total,
        overflow,
    }
}

/// Expands one leaf generator (matrix and merge are `generate_bounded`'s) into parameter
/// sets; the flag says its Applications are ephemeral.
fn generate(
    index: &RepoIndex<'_>,
    inventory: &mut Inventory,
    d: &Document,
    g: &Node,
    out: &mut Outcome,
) -> (Vec<Params>, bool) {
    let file = &d.file;
    let at = |line: u32| Location::new(file, line);
    if let Some(list) = g.get("list") {
        let mut sets = Vec::new();
        for element in list.get("elements").and_then(Node::as_seq).unwrap_or(&[]) {
            let mut values = BTreeMap::new();
            flatten("", element, &mut values);
            declare_element_cluster(inventory, &values, at(element.span.start.line));
            let summary: Vec<String> = values
                .iter()
                .take(4)
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            sets.push(Params {
                values,
                evidence: vec![Evidence {
                    location: at(element.span.start.line),
                    note: format!("list element {}", summary.join(", ")).into(),
                }],
            });
        }
        if list.get("elementsYaml").is_some() {
            out.unresolved.push(Unresolved {
                location: at(list.span.start.line),
                reason: "list generator elementsYaml is computed at run time".into(),
            });
        }
        return (sets, false);
    }
    if let Some(clusters) = g.get("clusters") {
        return (cluster_params(inventory, clusters, &at, out), false);
    }
    if let Some(git) = g.get("git") {
        let this = inventory
            .repository
            .classify(git.get("repoURL").and_then(Node::as_str));
        return (
            git_params(index, git, &this, g.span.start.line, &at, out),
            false,
        );
    }
    // Pull requests and SCM repositories are known only at run time: one ephemeral,
    // non-production Application on the template's destination stands for them.
    for (kind, what) in [
        ("pullRequest", "one Application per open pull request"),
        (
            "scmProvider",
            "one Application per repository the SCM provider finds",
        ),
    ] {
        if let Some(node) = g.get(kind) {
            return (
                vec![Params {
                    values: BTreeMap::new(),
                    evidence: vec![Evidence {
                        location: at(node.span.start.line),
                        note: format!("{kind} generator: {what} (ephemeral, non-production)")
                            .into(),
                    }],
                }],
                true,
            );
        }
    }
    for (kind, why) in [
        (
            "clusterDecisionResource",
            "cluster decision resource generator: clusters are decided at run time",
        ),
        (
            "plugin",
            "plugin generator: parameters come from a plugin at run time",
        ),
    ] {
        if let Some(node) = g.get(kind) {
            out.unresolved.push(Unresolved {
                location: at(node.span.start.line),
                reason: why.into(),
            });
            // One parameter set with no values: a template whose destination and path do not
            // depend on the parameters still places its Applications.
            return (
                vec![Params {
                    values: BTreeMap::new(),
                    evidence: vec![Evidence {
                        location: at(node.span.start.line),
                        note: format!("{kind} generator (parameters known at run time)").into(),
                    }],
                }],
                false,
            );
        }
    }
    out.unresolved.push(Unresolved {
        location: at(g.span.start.line),
        reason: "unknown ApplicationSet generator".into(),
    });
    (Vec::new(), false)
}

/// One `matchExpressions` entry of a label selector, read once for every cluster it is tried on.
struct Requirement<'a> {
    key: Option<&'a str>,
    operator: Option<&'a str>,
    values: Vec<&'a str>,
}

impl<'a> Requirement<'a> {
    fn read(e: &'a Node) -> Self {
        Requirement {
            key: e.get("key").and_then(Node::as_str),
            operator: e.get("operator").and_then(Node::as_str),
            values: e
                .get("values")
                .and_then(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .filter_map(Node::as_str)
                .collect(),
        }
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let key = self.key.unwrap_or("");
        let value = labels.get(key).map(String::as_str);
        match self.operator.unwrap_or("") {
            "In" => value.is_some_and(|v| self.values.contains(&v)),
            "NotIn" => value.is_none_or(|v| !self.values.contains(&v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    }
}

fn cluster_params(
    inventory: &mut Inventory,
    node: &Node,
    at: &dyn Fn(u32) -> Location,
    out: &mut Outcome,
) -> Vec<Params> {
    let selector = node.get("selector");
    let match_labels: Vec<(String, String)> = selector
        .and_then(|s| s.get("matchLabels"))
        .map(Node::string_map)
        .unwrap_or_default();
    let expressions: Vec<Requirement<'_>> = selector
        .and_then(|s| s.get("matchExpressions"))
        .and_then(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .map(Requirement::read)
        .collect();
    let empty_selector = match_labels.is_empty() && expressions.is_empty();
    let extra_values: Vec<(String, String)> =
        node.get("values").map(Node::string_map).unwrap_or_default();
    let mut sets = Vec::new();
    // Argo CD always offers its own cluster to an empty selector, even when only a
    // destination (not a cluster Secret) names it here.
    let local = inventory
        .find(IN_CLUSTER)
        .or_else(|| inventory.find_server(IN_CLUSTER_SERVER));
    let known: Vec<usize> = (0..inventory.clusters.len())
        .filter(|&i| inventory.clusters[i].argo_known || (empty_selector && Some(i) == local))
        .collect();
    for i in known {
        let c = &inventory.clusters[i];
        if Some(i) == local && !empty_selector && !c.argo_known {
            continue;
        }
        let labels = &c.labels;
        let matches_labels = match_labels.iter().all(|(k, v)| labels.get(k) == Some(v));
        let matches_expr = expressions.iter().all(|e| e.matches(labels));
        if !(matches_labels && matches_expr) {
            continue;
        }
        let mut values = BTreeMap::new();
        values.insert("name".to_owned(), c.name.clone());
        values.insert("nameNormalized".to_owned(), normalize(&c.name));
        if let Some(s) = &c.server {
            values.insert("server".to_owned(), s.clone());
        }
        for (k, v) in labels {
            values.insert(format!("metadata.labels.{k}"), v.clone());
        }
        for (k, v) in &extra_values {
            let rendered = render(v, &values, false).unwrap_or_else(|_| v.clone());
            values.insert(format!("values.{k}"), rendered);
        }
        let declared = c
            .declared_in
            .first()
            .cloned()
            .unwrap_or_else(|| at(node.span.start.line));
        sets.push(Params {
            values,
            evidence: vec![
                Evidence {
                    location: at(node.span.start.line),
                    note: "clusters generator".into(),
                },
                Evidence {
                    location: declared,
                    note: format!("cluster {} matches the selector", c.name).into(),
                },
            ],
        });
    }
    if empty_selector && local.is_none() {
        let mut values = BTreeMap::new();
        values.insert("name".to_owned(), IN_CLUSTER.to_owned());
        values.insert("nameNormalized".to_owned(), IN_CLUSTER.to_owned());
        values.insert("server".to_owned(), IN_CLUSTER_SERVER.to_owned());
        sets.push(Params {
            values,
            evidence: vec![Evidence {
                location: at(node.span.start.line),
                note: "clusters generator (the local cluster)".into(),
            }],
        });
    }
    if sets.is_empty() && !empty_selector {
        let mut terms: Vec<String> = match_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for e in &expressions {
            terms.push(format!(
                "{} {} [{}]",
                e.key.unwrap_or("?"),
                e.operator.unwrap_or("?"),
                e.values.join(", ")
            ));
        }
        out.unresolved.push(Unresolved {
            location: at(node
                .entry("selector")
                .map_or(node.span.start.line, |e| e.key.span.start.line)),
            reason: format!(
                "clusters generator: the selector {{{}}} matches no cluster declared in this repository (Argo CD cluster Secrets, .envfence.yaml clusters), so where these Applications go is not known",
                terms.join(", ")
            ),
        });
    }
    sets
}

/// A list element with a cluster name (`cluster`, `name`) and its URL (`url`, `server`)
/// names one cluster, known by both.
fn declare_element_cluster(
    inventory: &mut Inventory,
    values: &BTreeMap<String, String>,
    location: Location,
) {
    let name = ["cluster", "name", "clusterName"]
        .iter()
        .find_map(|k| values.get(*k));
    let url = ["url", "server", "clusterURL", "clusterUrl"]
        .iter()
        .find_map(|k| values.get(*k))
        .filter(|u| u.contains("://"));
    if let (Some(name), Some(url)) = (name, url) {
        if !name.contains("{{") && !url.contains("{{") && name != IN_CLUSTER {
            inventory.declare_element(name, url, location);
        }
    }
}

fn path_params(path: &str, values: &mut BTreeMap<String, String>) {
    let base = index::basename(path).to_owned();
    values.insert("path".into(), path.to_owned());
    values.insert("path.path".into(), path.to_owned());
    values.insert("path.basename".into(), base.clone());
    values.insert("path.basenameNormalized".into(), normalize(&base));
    for (i, seg) in path.split('/').enumerate() {
        values.insert(format!("path[{i}]"), seg.to_owned());
        values.insert(format!("path.segments.{i}"), seg.to_owned());
    }
}

fn git_params(
    index: &RepoIndex<'_>,
    git: &Node,
    this: &RepoMatch,
    generator_line: u32,
    at: &dyn Fn(u32) -> Location,
    out: &mut Outcome,
) -> Vec<Params> {
    let mut sets = Vec::new();
    let repo = git
        .get("repoURL")
        .and_then(Node::as_str)
        .unwrap_or("?")
        .to_owned();
    let read_from = match this {
        RepoMatch::This(_) => "this repository",
        RepoMatch::Unknown => "assumed to be this repository: the directory exists here",
    };
    // Another repository, as far as envfence can tell: nothing it generates is known.
    let elsewhere = |what: &str| {
        match this {
        RepoMatch::This(from) => {
            format!("git generator: {what} in this repository (repoURL {repo} is this repository by {from})")
        }
        RepoMatch::Unknown => format!(
            "git generator reads {repo}, which is not this repository as far as envfence can tell (no repository.urls, origin or GITHUB_REPOSITORY match) and {what} here, so its Applications are not known"
        ),
    }
    };
    if let Some(dirs) = git.get("directories").and_then(Node::as_seq) {
        let mut include = Vec::new();
        let mut exclude = Vec::new();
        for d in dirs {
            let Some(p) = d.get("path").and_then(Node::as_str) else {
                continue;
            };
            let Ok(glob) = Glob::new(p) else { continue };
            let excluded = d.get("exclude").and_then(Node::as_str) == Some("true");
            if excluded {
                exclude.push(glob.compile_matcher());
            } else {
                include.push((glob.compile_matcher(), d.span.start.line));
            }
        }
        let mut all_dirs: Vec<String> = Vec::new();
        let mut stack = vec![String::new()];
        while let Some(dir) = stack.pop() {
            for sub in index.subdirs_of(&dir) {
                all_dirs.push(sub.to_owned());
                stack.push(sub.to_owned());
            }
        }
        all_dirs.sort();
        for dir in all_dirs {
            let Some((_, line)) = include.iter().find(|(m, _)| m.is_match(&dir)) else {
                continue;
            };
            if exclude.iter().any(|m| m.is_match(&dir)) {
                continue;
            }
            let mut values = BTreeMap::new();
            path_params(&dir, &mut values);
            sets.push(Params {
                values,
                evidence: vec![Evidence {
                    location: at(*line),
                    note: format!("git directory {dir} (repoURL {repo}, {read_from})").into(),
                }],
            });
        }
        if sets.is_empty() && !include.is_empty() {
            out.unresolved.push(Unresolved {
                location: at(generator_line),
                reason: elsewhere("no directory matches its paths"),
            });
        }
    }
    // Reads any file's content: `reuse` never shares a topology where this generator exists.
    if let Some(files) = git.get("files").and_then(Node::as_seq) {
        for f in files {
            let Some(p) = f.get("path").and_then(Node::as_str) else {
                continue;
            };
            let Ok(glob) = Glob::new(p) else { continue };
            let m = glob.compile_matcher();
            let mut matched = false;
            for file in index.files.iter().filter(|file| m.is_match(&*file.path)) {
                for doc in file.documents.iter() {
                    matched = true;
                    let mut values = BTreeMap::new();
                    flatten("", &doc.root, &mut values);
                    path_params(index::parent(&file.path), &mut values);
                    sets.push(Params {
                        values,
                        evidence: vec![Evidence {
                            location: Location::new(&file.path, doc.first_line),
                            note: format!("git file {} (repoURL {repo})", file.path).into(),
                        }],
                    });
                }
            }
            if !matched {
                out.unresolved.push(Unresolved {
                    location: at(f.span.start.line),
                    reason: elsewhere(&format!(
                        "no YAML file matches {p} (JSON files are not read)"
                    )),
                });
            }
        }
    }
    sets
}

/// Flattens a node into dotted keys (`a.b.c`), the way ApplicationSet parameters are named.
fn flatten(prefix: &str, node: &Node, out: &mut BTreeMap<String, String>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    if let Some(entries) = node.as_map() {
        for e in entries {
            if let Some(k) = e.key.as_str() {
                flatten(&key(k), &e.value, out);
            }
        }
    } else if let Some(items) = node.as_seq() {
        for (i, item) in items.iter().enumerate() {
            flatten(&key(&i.to_string()), item, out);
        }
    } else if let Some(s) = node.as_str() {
        if !prefix.is_empty() {
            out.insert(prefix.to_owned(), s.to_owned());
        }
    }
}

/// Argo CD's `normalize`: lower case, anything but letters, digits, `-` and `.` becomes `-`.
fn normalize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// Substitutes `{{key}}` (default mode) or Go template expressions (`goTemplate: true`).
/// An unknown parameter is an error: the value cannot be known statically.
pub fn render(text: &str, params: &BTreeMap<String, String>, go: bool) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!("unclosed {{{{ in `{text}`"));
        };
        let expr = after[..end]
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        let value = if go {
            eval_go(expr, params)
        } else {
            params.get(expr).cloned()
        };
        match value {
            Some(v) => out.push_str(&v),
            None => {
                return Err(format!(
                    "`{{{{{expr}}}}}` in `{text}` cannot be resolved statically"
                ))
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A small subset of Go templates: `.a.b`, `index .a "k"`, `normalize`/`lower`/`upper`
/// (as a function or after a pipe), and `default "x" .a`.
fn eval_go(expr: &str, params: &BTreeMap<String, String>) -> Option<String> {
    let mut stages = expr.split('|').map(str::trim);
    let first = stages.next()?;
    let mut value = eval_call(first, params)?;
    for stage in stages {
        value = apply(stage, value)?;
    }
    Some(value)
}

fn words(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in expr.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                if !quoted {
                    out.push(std::mem::take(&mut cur));
                }
            }
            ' ' | '\t' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn eval_call(expr: &str, params: &BTreeMap<String, String>) -> Option<String> {
    let w = words(expr);
    let lookup = |field: &str| -> Option<String> { params.get(field.strip_prefix('.')?).cloned() };
    match w.first().map(String::as_str)? {
        "index" => {
            let base = w.get(1)?.strip_prefix('.')?;
            let keys: Vec<&str> = w[2..].iter().map(String::as_str).collect();
            params.get(&format!("{base}.{}", keys.join("."))).cloned()
        }
        "default" => {
            let fallback = w.get(1)?.clone();
            Some(
                w.get(2)
                    .and_then(|f| lookup(f))
                    .filter(|v| !v.is_empty())
                    .unwrap_or(fallback),
            )
        }
        f @ ("normalize" | "lower" | "upper") => apply(f, lookup(w.get(1)?)?),
        field if field.starts_with('.') && w.len() == 1 => lookup(field),
        _ => None,
    }
}

fn apply(function: &str, value: String) -> Option<String> {
    match function {
        "normalize" => Some(normalize(&value)),
        "lower" => Some(value.to_lowercase()),
        "upper" => Some(value.to_uppercase()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn default_mode_substitution() {
        let p = params(&[("cluster", "prod-us"), ("path.basename", "web")]);
        assert_eq!(
            render("apps/{{path.basename}}/{{ cluster }}", &p, false).as_deref(),
            Ok("apps/web/prod-us")
        );
        assert!(render("{{missing}}", &p, false).is_err());
    }

    #[test]
    fn go_template_substitution() {
        let p = params(&[
            ("name", "Prod_EU"),
            ("metadata.labels.env", "production"),
            ("path.segments.1", "web"),
        ]);
        assert_eq!(render("{{.name}}", &p, true).as_deref(), Ok("Prod_EU"));
        assert_eq!(
            render("{{ .name | normalize }}", &p, true).as_deref(),
            Ok("prod-eu")
        );
        assert_eq!(
            render("{{normalize .name}}", &p, true).as_deref(),
            Ok("prod-eu")
        );
        assert_eq!(
            render(r#"{{index .metadata.labels "env"}}"#, &p, true).as_deref(),
            Ok("production")
        );
        assert_eq!(
            render("{{index .path.segments 1}}", &p, true).as_deref(),
            Ok("web")
        );
        assert_eq!(
            render(r#"{{default "x" .nope}}"#, &p, true).as_deref(),
            Ok("x")
        );
        assert!(render("{{.nope}}", &p, true).is_err());
    }
}
