//! Argo CD: Applications (single and multi-source, directory options, apps of apps) and
//! ApplicationSets (list, clusters, git directories and files, matrix and merge generators;
//! `{{key}}` and `goTemplate` substitution). Generators that need a live API (pull requests,
//! SCM providers, cluster decision resources, plugins) cannot be expanded: their
//! Applications are ephemeral non-production workloads whose static destination still counts,
//! and what cannot be known becomes an unresolved entry.

mod application;
mod appset;
pub mod cluster_secret;
mod generators;
pub mod helm;
pub mod project;
mod template;

pub use template::render;

use application::{deliver_app, AppSpec};
use appset::run_appset;

use crate::topology::build::Worklist;
use crate::topology::family::{
    covered_by_others, Family, Job, RunContext, Stage, TemplateKind, REGISTRY,
};

use crate::config::Limits;

use crate::documents::{Document, Node};
use crate::evidence::Evidence;
use crate::topology::clusters::Inventory;
use crate::topology::index::{self, DocRef, RepoIndex};
use crate::topology::inventory::selector::{LabelSelector, SelectorUse};
use crate::topology::{Outcome, Signal, Unresolved};

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
        run_with(cx.index, cx.inventory, job, cx.limits, cx.families)
    }

    /// Each non-empty selector of an ApplicationSet's clusters generators, matrix and merge
    /// children included, with the cluster annotations its template reads.
    fn cluster_selectors(&self, index: &RepoIndex<'_>) -> Vec<SelectorUse> {
        let mut out = Vec::new();
        for (_, d) in index
            .of_kind("ApplicationSet")
            .filter(|(_, d)| is_argo_deployer(d))
        {
            let spec = d.root.get("spec");
            let mut reads = Vec::new();
            if let Some(template) = spec.and_then(|s| s.get("template")) {
                annotations_read(template, &mut reads);
            }
            let mut stack: Vec<&Node> = spec
                .and_then(|s| s.get("generators"))
                .and_then(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .collect();
            let mut found = Vec::new();
            // Bounded by the document: each generator node is visited once.
            while let Some(g) = stack.pop() {
                for combiner in ["matrix", "merge"] {
                    if let Some(children) = g
                        .get(combiner)
                        .and_then(|c| c.get("generators"))
                        .and_then(Node::as_seq)
                    {
                        stack.extend(children.iter().rev());
                    }
                }
                let Some(clusters) = g.get("clusters") else {
                    continue;
                };
                let Some(entry) = clusters.entry("selector") else {
                    continue;
                };
                let selector = LabelSelector::read(&entry.value);
                if selector.is_empty() {
                    continue;
                }
                found.push(SelectorUse {
                    location: d.at(entry.key.span.line),
                    by: format!("ApplicationSet {}", d.id.name.as_deref().unwrap_or("?")),
                    selector,
                    argo: true,
                    reads_annotations: reads.clone(),
                    matched: false,
                });
            }
            found.sort_by(|a, b| a.location.cmp(&b.location));
            out.extend(found);
        }
        out
    }
}

/// The cluster annotations a template reads: `metadata.annotations.<key>` (Argo CD's
/// parameters), also as `.metadata.annotations.<key>` or `index .metadata.annotations "<key>"`
/// in Go templates.
fn annotations_read(node: &Node, out: &mut Vec<String>) {
    const MARK: &str = "metadata.annotations";
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        if let Some(text) = n.as_str() {
            let mut rest = text;
            while let Some(at) = rest.find(MARK) {
                rest = &rest[at + MARK.len()..];
                let key: String = if let Some(dotted) = rest.strip_prefix('.') {
                    dotted
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/'))
                        .collect()
                } else {
                    // `index .metadata.annotations "key"`
                    rest.trim_start()
                        .strip_prefix('"')
                        .and_then(|q| q.split('"').next())
                        .unwrap_or("")
                        .to_owned()
                };
                if !key.is_empty() && !out.contains(&key) {
                    out.push(key);
                }
            }
        }
        if let Some(entries) = n.as_map() {
            stack.extend(entries.iter().map(|e| &e.value));
        }
        if let Some(items) = n.as_seq() {
            stack.extend(items.iter());
        }
    }
    out.sort();
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
        // One in a kustomization's folder is run after the others: an overlay that includes
        // it (and may patch it) is to reach it first.
        let in_kustomization = index.kustomization_in(index::parent(&d.file)).is_some();
        if in_kustomization || covered_by_others(&d.file, *r, &sources) {
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
/// What governs its Applications is asked of the registry's families.
pub fn run(
    index: &RepoIndex<'_>,
    inventory: &mut Inventory,
    doc: DocRef,
    host: Option<usize>,
    chain: &[Evidence],
    parent_signals: &[Signal],
    limits: &Limits,
) -> Outcome {
    let job = Job {
        doc,
        host,
        chain,
        parent_signals,
        namespace: None,
    };
    run_with(index, inventory, &job, limits, REGISTRY)
}

/// [`run`] for one job, asking `families` what governs its Applications.
fn run_with(
    index: &RepoIndex<'_>,
    inventory: &mut Inventory,
    job: &Job<'_>,
    limits: &Limits,
    families: &[&dyn Family],
) -> Outcome {
    let Job {
        doc,
        host,
        chain,
        parent_signals,
        ..
    } = *job;
    let mut out = Outcome::default();
    let d = index.doc(doc);
    match d.id.kind.as_deref() {
        Some("Application") => {
            let spec = AppSpec::read(&d.root, &d.file, &|s: &str| Ok(s.to_owned()), false);
            match spec {
                Ok(mut spec) => {
                    spec.doc = Some(doc);
                    spec.origins.clone_from(&d.origins);
                    deliver_app(
                        index,
                        inventory,
                        &spec,
                        host,
                        chain,
                        parent_signals,
                        &[],
                        false,
                        families,
                        &mut out,
                    )
                }
                Err(reason) => out.unresolved.push(Unresolved {
                    location: d.at(d.first_line),
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
            families,
            &mut out,
        ),
        _ => {}
    }
    out
}
