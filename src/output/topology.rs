//! Renderers for `envfence topology` and `envfence explain`: text, JSON (version 1, a frozen
//! DTO like the scan report's), Mermaid and Graphviz DOT.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anstyle::Style;
use serde::Serialize;

use crate::findings::Evidence;
use crate::output::json::JsonUnplacedFolder;
use crate::sanitize::text as clean;
use crate::topology::{Cluster, Env, Placement, Purpose, Tier, Topology};

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TopologyFormat {
    /// Clusters, then what lands on each, for a terminal.
    Text,
    /// The stable JSON document, version 1 (docs/json-schema.md).
    Json,
    /// A Mermaid flowchart: deployers → clusters.
    Mermaid,
    /// A Graphviz graph: deployers → clusters.
    Dot,
}

pub fn render(topology: &Topology, format: TopologyFormat) -> String {
    match format {
        TopologyFormat::Text => text(topology),
        TopologyFormat::Json => json(topology),
        TopologyFormat::Mermaid => mermaid(topology),
        TopologyFormat::Dot => dot(topology),
    }
}

#[derive(Serialize)]
struct JsonTopology<'a> {
    version: u32,
    clusters: Vec<JsonCluster<'a>>,
    placements: Vec<JsonPlacement<'a>>,
    unresolved: Vec<JsonUnresolved<'a>>,
    summary: JsonSummary,
}

#[derive(Serialize)]
struct JsonCluster<'a> {
    name: &'a str,
    server: Option<&'a str>,
    environment: &'static str,
    environment_reason: &'a str,
    /// Added within version 1: absent when the cluster has no tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    tier: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tier_reason: Option<&'a str>,
    labels: &'a BTreeMap<String, String>,
    declared_in: Vec<JsonLocation<'a>>,
}

#[derive(Serialize)]
struct JsonLocation<'a> {
    file: &'a str,
    line: u32,
}

#[derive(Serialize)]
struct JsonPlacement<'a> {
    file: &'a str,
    line: u32,
    kind: &'a str,
    name: Option<&'a str>,
    namespace: Option<&'a str>,
    cluster: &'a str,
    cluster_environment: &'static str,
    workload_class: &'static str,
    workload_class_reason: &'a str,
    /// Added within version 1.
    purpose: &'static str,
    purpose_reason: &'a str,
    deployer: Option<JsonDeployer<'a>>,
    patch: bool,
    /// An opaque placement: the deployer stands for a payload whose contents were not read.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    opaque: bool,
    images: Vec<&'a str>,
    evidence: Vec<JsonEvidence<'a>>,
}

#[derive(Serialize)]
struct JsonDeployer<'a> {
    kind: &'a str,
    name: &'a str,
    file: &'a str,
    line: u32,
}

#[derive(Serialize)]
struct JsonEvidence<'a> {
    file: &'a str,
    line: u32,
    note: String,
}

#[derive(Serialize)]
struct JsonUnresolved<'a> {
    file: &'a str,
    line: u32,
    reason: &'a str,
}

#[derive(Serialize)]
struct JsonSummary {
    manifests: usize,
    placed: usize,
    clusters_used: usize,
    /// As `summary.coverage` of the scan report, with every unplaced folder.
    opaque: usize,
    unplaced_folders: Vec<JsonUnplacedFolder>,
    /// Added within version 1: workloads by purpose and cluster tier (`none` for clusters
    /// without one), as in the text matrix.
    purpose_tiers: BTreeMap<&'static str, BTreeMap<&'static str, usize>>,
}

fn evidence_dto<'a>(e: impl IntoIterator<Item = &'a Evidence>) -> Vec<JsonEvidence<'a>> {
    e.into_iter()
        .map(|e| JsonEvidence {
            file: &e.location.file,
            line: e.location.line,
            note: e.note(),
        })
        .collect()
}

/// An evidence note or reason for a human reader: credentials masked, control characters
/// escaped.
fn note(text: &str) -> String {
    clean(&crate::redact::secrets(text)).into_owned()
}

pub fn json(t: &Topology) -> String {
    let (placed, used) = t.coverage();
    let dto = JsonTopology {
        version: 1,
        clusters: t
            .clusters
            .iter()
            .map(|c| JsonCluster {
                name: &c.name,
                server: c.server.as_deref(),
                environment: c.environment.as_str(),
                environment_reason: &c.env_reason,
                tier: c.tier.map(Tier::as_str),
                tier_reason: c.tier.map(|_| c.tier_reason.as_str()),
                labels: &c.labels,
                declared_in: c
                    .declared_in
                    .iter()
                    .map(|l| JsonLocation {
                        file: &l.file,
                        line: l.line,
                    })
                    .collect(),
            })
            .collect(),
        placements: t
            .placements
            .iter()
            .map(|p| JsonPlacement {
                file: &p.object.file,
                line: p.object.line,
                kind: &p.object.kind,
                name: p.object.name.as_deref(),
                namespace: p.object.namespace.as_deref(),
                cluster: &t.clusters[p.cluster].name,
                cluster_environment: p.cluster_environment.as_str(),
                workload_class: p.workload_class.as_str(),
                workload_class_reason: &p.class_reason,
                purpose: p.purpose.as_str(),
                purpose_reason: &p.purpose_reason,
                deployer: p.deployer.as_ref().map(|d| JsonDeployer {
                    kind: d.kind.as_str(),
                    name: &d.name,
                    file: &d.location.file,
                    line: d.location.line,
                }),
                patch: p.patch,
                opaque: p.opaque,
                images: p.object.images.iter().map(|(i, _)| i.as_str()).collect(),
                evidence: evidence_dto(&p.evidence),
            })
            .collect(),
        unresolved: t
            .unresolved
            .iter()
            .map(|u| JsonUnresolved {
                file: &u.location.file,
                line: u.location.line,
                reason: &u.reason,
            })
            .collect(),
        summary: JsonSummary {
            manifests: t.manifests,
            placed,
            clusters_used: used,
            opaque: t.object_coverage.opaque,
            unplaced_folders: t
                .object_coverage
                .unplaced_folders
                .iter()
                .map(JsonUnplacedFolder::from)
                .collect(),
            purpose_tiers: purpose_tier_counts(t)
                .into_iter()
                .map(|(p, row)| {
                    let row = row.into_iter().map(|(t, n)| (tier_name(t), n)).collect();
                    (p.as_str(), row)
                })
                .collect(),
        },
    };
    let mut out =
        serde_json::to_string_pretty(&dto).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    out.push('\n');
    out
}

fn env_style(env: Env) -> Style {
    use anstyle::AnsiColor;
    let color = match env {
        Env::Production => AnsiColor::Red,
        Env::NonProduction => AnsiColor::Green,
        Env::Unknown => AnsiColor::Yellow,
    };
    Style::new().fg_color(Some(color.into()))
}

fn object_label(p: &Placement) -> String {
    let mut s = format!(
        "{}/{}",
        clean(&p.object.kind),
        clean(p.object.name.as_deref().unwrap_or("?"))
    );
    if let Some(ns) = &p.object.namespace {
        let _ = write!(s, " (namespace {})", clean(ns));
    }
    if p.patch {
        s.push_str(" [patch]");
    }
    s
}

pub fn text(t: &Topology) -> String {
    let mut out = String::new();
    let (placed, used) = t.coverage();
    let _ = writeln!(out, "{BOLD}Clusters{BOLD:#}");
    let tiered = has_lower_tiers(t);
    for c in clusters_in_order(t).into_iter().map(|i| &t.clusters[i]) {
        let st = env_style(c.environment);
        let declared = c
            .declared_in
            .first()
            .map(|l| format!(" · {}", clean(&l.to_string())))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {BOLD}{}{BOLD:#}  {st}{}{st:#}{}  {DIM}{}{declared}{DIM:#}",
            clean(&c.name),
            c.environment,
            tier_text(c),
            note(&c.env_reason)
        );
    }
    out.push('\n');
    for i in clusters_in_order(t) {
        let c = &t.clusters[i];
        let here: Vec<&Placement> = t.placements.iter().filter(|p| p.cluster == i).collect();
        if here.is_empty() {
            continue;
        }
        let st = env_style(c.environment);
        let _ = writeln!(
            out,
            "{BOLD}{}{BOLD:#} ({st}{}{st:#}{}): {} objects",
            clean(&c.name),
            c.environment,
            tier_text(c),
            here.len()
        );
        let mut by_deployer: BTreeMap<String, Vec<&Placement>> = BTreeMap::new();
        for p in here {
            let key = p
                .deployer
                .as_ref()
                .map(|d| {
                    let deployer = format!("{} {} ({})", d.kind, d.name, d.location);
                    clean(&deployer).into_owned()
                })
                .unwrap_or_else(|| "no deployer".into());
            by_deployer.entry(key).or_default().push(p);
        }
        for (deployer, ps) in by_deployer {
            let _ = writeln!(out, "  via {deployer}");
            for p in ps {
                let st = env_style(p.workload_class);
                let _ = writeln!(
                    out,
                    "    {}:{}  {}  {st}{}{st:#}{} {DIM}({}){DIM:#}",
                    clean(&p.object.file),
                    p.object.line,
                    object_label(p),
                    p.workload_class,
                    purpose_text(p),
                    note(&p.class_reason)
                );
            }
        }
        out.push('\n');
    }
    if !t.unresolved.is_empty() {
        let _ = writeln!(out, "{BOLD}Unresolved{BOLD:#} ({})", t.unresolved.len());
        for u in &t.unresolved {
            let _ = writeln!(
                out,
                "  {}  {}",
                clean(&u.location.to_string()),
                note(&u.reason)
            );
        }
        out.push('\n');
    }
    let folders = &t.object_coverage.unplaced_folders;
    if !folders.is_empty() {
        let _ = writeln!(
            out,
            "{BOLD}Unplaced{BOLD:#} ({} reached by no deployer, by folder)",
            match t.object_coverage.unplaced() {
                1 => "1 object".to_owned(),
                n => format!("{n} objects"),
            }
        );
        for f in folders {
            let family = f
                .family
                .map(|family| {
                    format!("  {DIM}{family}: no deployer of it reaches this folder{DIM:#}")
                })
                .unwrap_or_default();
            let _ = writeln!(out, "  {:>5}  {}{family}", f.objects, f.shown());
        }
        out.push('\n');
    }
    if tiered {
        out.push_str(&matrix(t));
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "Placed {placed} of {} Kubernetes objects on {used} of {} clusters.",
        t.manifests,
        t.clusters.len()
    );
    out
}

/// The evidence chains of every placement of one file.
pub fn explain(t: &Topology, file: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{BOLD}{}{BOLD:#}", clean(file));
    let placements: Vec<&Placement> = t.placements_of_file(file).collect();
    if placements.is_empty() {
        let _ = writeln!(out, "  not placed on any cluster: no deployer, `paths` rule or folder convention reaches it");
    }
    for p in placements {
        let c = &t.clusters[p.cluster];
        let cs = env_style(c.environment);
        let ws = env_style(p.workload_class);
        let _ = writeln!(
            out,
            "\n  {BOLD}{}{BOLD:#} → cluster {BOLD}{}{BOLD:#} ({cs}{}{cs:#}): workload {ws}{}{ws:#} ({})",
            object_label(p),
            clean(&c.name),
            c.environment,
            p.workload_class,
            note(&p.class_reason)
        );
        if p.opaque {
            let _ = writeln!(
                out,
                "    opaque: its contents were not read; the deployer is judged by its own identity"
            );
        }
        if p.purpose != Purpose::Unknown {
            let _ = writeln!(
                out,
                "    purpose {BOLD}{}{BOLD:#} ({})",
                p.purpose,
                note(&p.purpose_reason)
            );
        }
        for (i, e) in p.evidence.iter().enumerate() {
            let arrow = if i == 0 { " " } else { "↳" };
            let _ = writeln!(
                out,
                "    {DIM}{arrow}{DIM:#} {}  {}",
                clean(&e.location.to_string()),
                note(&e.note())
            );
        }
        let declared = c
            .declared_in
            .first()
            .map(|l| format!(" ({})", clean(&l.to_string())))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "    {DIM}cluster {} is {}: {}{declared}{DIM:#}",
            clean(&c.name),
            c.environment,
            note(&c.env_reason)
        );
        if let Some(tier) = c.tier.filter(|t| *t != Tier::Production) {
            let _ = writeln!(
                out,
                "    {DIM}cluster {} is of the {tier} tier: {}{DIM:#}",
                clean(&c.name),
                note(&c.tier_reason)
            );
        }
    }
    let unresolved: Vec<_> = t
        .unresolved
        .iter()
        .filter(|u| &*u.location.file == file)
        .collect();
    if !unresolved.is_empty() {
        let _ = writeln!(out, "\n  unresolved:");
        for u in unresolved {
            let _ = writeln!(
                out,
                "    {}  {}",
                clean(&u.location.to_string()),
                note(&u.reason)
            );
        }
    }
    out
}

/// Deployer → cluster edges. A deployer is identified by its kind, name and file, so two
/// Kustomizations both called `apps` in two cluster trees stay two nodes.
fn edges(t: &Topology) -> BTreeSet<(String, String, String)> {
    t.placements
        .iter()
        .filter_map(|p| {
            let d = p.deployer.as_ref()?;
            Some((
                format!("{} {}", d.kind, d.name),
                d.location.file.to_string(),
                t.clusters[p.cluster].name.clone(),
            ))
        })
        .collect()
}

fn mermaid_id(prefix: &str, text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{prefix}_{clean}")
}

/// Escapes text for a quoted Mermaid label.
fn mermaid_label(text: &str) -> String {
    clean(text)
        .replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

pub fn mermaid(t: &Topology) -> String {
    let mut out = String::from("flowchart LR\n");
    let used: BTreeSet<usize> = t.placements.iter().map(|p| p.cluster).collect();
    let tiered = has_lower_tiers(t);
    let mut group: Option<Option<Tier>> = None;
    for i in clusters_in_order(t)
        .into_iter()
        .filter(|i| used.contains(i))
    {
        let c = &t.clusters[i];
        let indent = if tiered { "    " } else { "  " };
        if tiered && group != Some(c.tier) {
            if group.is_some() {
                out.push_str("  end\n");
            }
            let _ = writeln!(
                out,
                "  subgraph tier_{}[\"tier: {}\"]",
                tier_name(c.tier),
                tier_name(c.tier)
            );
            group = Some(c.tier);
        }
        let _ = writeln!(
            out,
            "{indent}{}[(\"{}<br/>{}\")]:::{}",
            mermaid_id("c", &c.name),
            mermaid_label(&c.name),
            c.environment,
            match c.environment {
                Env::Production => "prod",
                Env::NonProduction => "nonprod",
                Env::Unknown => "unknown",
            }
        );
    }
    if group.is_some() {
        out.push_str("  end\n");
    }
    for (deployer, file, cluster) in edges(t) {
        let _ = writeln!(
            out,
            "  {}[\"{}<br/><small>{}</small>\"] --> {}",
            mermaid_id("d", &format!("{deployer} {file}")),
            mermaid_label(&deployer),
            mermaid_label(&file),
            mermaid_id("c", &cluster)
        );
    }
    out.push_str("  classDef prod fill:#fdd,stroke:#c00\n  classDef nonprod fill:#dfd,stroke:#080\n  classDef unknown fill:#ffd,stroke:#aa0\n");
    out
}

fn dot_quote(text: &str) -> String {
    // DOT's own `\n` breaks label lines; other control characters are escaped as text.
    let escaped = text
        .split('\n')
        .map(|line| clean(line).replace('\\', "\\\\").replace('"', "\\\""))
        .collect::<Vec<_>>()
        .join("\\n");
    format!("\"{escaped}\"")
}

pub fn dot(t: &Topology) -> String {
    let mut out = String::from("digraph topology {\n  rankdir=LR;\n  node [shape=box];\n");
    let used: BTreeSet<usize> = t.placements.iter().map(|p| p.cluster).collect();
    let tiered = has_lower_tiers(t);
    let mut group: Option<Option<Tier>> = None;
    for i in clusters_in_order(t)
        .into_iter()
        .filter(|i| used.contains(i))
    {
        let c = &t.clusters[i];
        if tiered && group != Some(c.tier) {
            if group.is_some() {
                out.push_str("  }\n");
            }
            let _ = writeln!(
                out,
                "  subgraph \"cluster_tier_{}\" {{\n    label=\"tier: {}\";",
                tier_name(c.tier),
                tier_name(c.tier)
            );
            group = Some(c.tier);
        }
        let color = match c.environment {
            Env::Production => "#ffdddd",
            Env::NonProduction => "#ddffdd",
            Env::Unknown => "#ffffdd",
        };
        let _ = writeln!(
            out,
            "  {} [shape=cylinder, style=filled, fillcolor=\"{color}\", label={}];",
            dot_quote(&format!("cluster:{}", c.name)),
            dot_quote(&format!("{}\n{}", c.name, c.environment))
        );
    }
    if group.is_some() {
        out.push_str("  }\n");
    }
    for (deployer, file, cluster) in edges(t) {
        let id = dot_quote(&format!("{deployer} {file}"));
        let label = dot_quote(&format!("{deployer}\n{file}"));
        let _ = writeln!(out, "  {id} [label={label}];");
        let _ = writeln!(
            out,
            "  {id} -> {};",
            dot_quote(&format!("cluster:{cluster}"))
        );
    }
    out.push_str("}\n");
    out
}

/// Whether the inventory has a cluster of a non-production tier: only then are clusters
/// grouped by tier and the purpose × tier matrix printed (a two-kind layout has nothing to
/// add to the environments).
fn has_lower_tiers(t: &Topology) -> bool {
    t.clusters
        .iter()
        .any(|c| c.tier.is_some_and(|tier| tier != Tier::Production))
}

/// Cluster indexes in tier order (production, staging, development, testing, internal, then
/// clusters without a tier), each group in inventory order.
fn clusters_in_order(t: &Topology) -> Vec<usize> {
    let mut order: Vec<usize> = (0..t.clusters.len()).collect();
    if has_lower_tiers(t) {
        order.sort_by_key(|&i| (t.clusters[i].tier.is_none(), t.clusters[i].tier));
    }
    order
}

fn tier_name(tier: Option<Tier>) -> &'static str {
    tier.map_or("none", Tier::as_str)
}

/// ` · staging tier` for a cluster of a non-production tier.
fn tier_text(c: &Cluster) -> String {
    match c.tier {
        Some(tier) if tier != Tier::Production => format!(" · {tier} tier"),
        _ => String::new(),
    }
}

/// ` · load-test` for a workload with a non-production purpose.
fn purpose_text(p: &Placement) -> String {
    match p.purpose {
        Purpose::Unknown | Purpose::Production => String::new(),
        purpose => format!(" · {purpose}"),
    }
}

/// Workloads (not patches, not deployer objects) by purpose and the tier of their cluster.
fn purpose_tier_counts(t: &Topology) -> BTreeMap<Purpose, BTreeMap<Option<Tier>, usize>> {
    let mut counts: BTreeMap<Purpose, BTreeMap<Option<Tier>, usize>> = BTreeMap::new();
    for p in t.placements.iter().filter(|p| p.is_workload()) {
        *counts
            .entry(p.purpose)
            .or_default()
            .entry(t.clusters[p.cluster].tier)
            .or_default() += 1;
    }
    counts
}

/// The purpose × tier matrix of `envfence topology`: how many placed objects of each purpose
/// land on clusters of each tier.
fn matrix(t: &Topology) -> String {
    let counts = purpose_tier_counts(t);
    let mut columns: Vec<Option<Tier>> = Tier::ALL.into_iter().map(Some).collect();
    columns.push(None);
    columns.retain(|col| t.clusters.iter().any(|c| c.tier == *col));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{BOLD}Purposes by tier{BOLD:#} (placed workloads, deployer objects left out)"
    );
    let _ = write!(out, "  {:<18}", "purpose");
    for col in &columns {
        let _ = write!(out, " {:>11}", tier_name(*col));
    }
    out.push('\n');
    for (purpose, row) in &counts {
        let _ = write!(out, "  {:<18}", purpose.as_str());
        for col in &columns {
            match row.get(col) {
                Some(n) => {
                    let _ = write!(out, " {n:>11}");
                }
                None => {
                    let _ = write!(out, " {:>11}", "·");
                }
            }
        }
        out.push('\n');
    }
    out
}
