//! A Fleet bundle: a folder of the repository and what its `fleet.yaml` says of it (the
//! namespace, a kustomize folder, a Helm chart and its values, per-target customizations).
//! [`content`] turns one bundle, with the options in force on one cluster, into what the
//! worklist places: a kustomize or plain folder delivery, a local chart to render, or an
//! opaque placement for a chart Fleet downloads.

use std::sync::Arc;

use crate::documents::{Document, Node};
use crate::evidence::{Evidence, FleetHop, Hop, OpaqueHop, ValuesFileHop};
use crate::location::Location;
use crate::topology::expand::helm::{
    is_chart, missing_values_file, to_json, ChartInstall, RenderFlags, RenderRequest, ValuesInput,
};
use crate::topology::expand::kustomize::DirectoryMode;
use crate::topology::family::{opaque_placement, Opaque};
use crate::topology::index::{self, DocRef, RepoIndex};
use crate::topology::inventory::clusters::{Cluster, Inventory};
use crate::topology::inventory::selector::LabelSelector;
use crate::topology::{
    Delivery, Deployer, DeployerKind, Outcome, PlacedObject, Signal, Unresolved,
};

/// The file that makes a folder a bundle.
pub const FLEET_YAML: &str = "fleet.yaml";

/// A value as written, with its line.
pub type At<T> = (T, u32);

/// What `fleet.yaml`, or one of its target customizations, sets.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `namespace`: every namespaced object goes there.
    pub namespace: Option<At<String>>,
    /// `defaultNamespace`: for objects that set none.
    pub default_namespace: Option<At<String>>,
    /// `kustomize.dir`, relative to the bundle.
    pub kustomize_dir: Option<At<String>>,
    /// `helm.chart`: a folder of the bundle, a URL, or a chart name of `helm.repo`.
    pub chart: Option<At<String>>,
    /// `helm.repo`.
    pub repo: Option<At<String>>,
    pub release: Option<String>,
    /// `helm.values` blocks, in the order they apply.
    pub values: Vec<At<serde_json::Value>>,
    /// `helm.valuesFiles`, relative to the bundle.
    pub values_files: Vec<At<String>>,
    /// `yaml.overlays`: Fleet's own overlay folders, not read.
    pub yaml_overlays: Vec<At<String>>,
}

/// A non-empty text at `key` of `node`, with the key's line.
fn text_at(node: Option<&Node>, key: &str) -> Option<At<String>> {
    let e = node?.entry(key)?;
    let s = e.value.as_str()?.trim();
    (!s.is_empty()).then(|| (s.to_owned(), e.key.span.line))
}

fn texts_at(node: Option<&Node>, key: &str) -> Vec<At<String>> {
    node.and_then(|n| n.get(key))
        .and_then(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .filter_map(|v| Some((v.as_str()?.trim().to_owned(), v.span.line)))
        .filter(|(s, _)| !s.is_empty())
        .collect()
}

impl Options {
    /// The options written at `node` (fleet.yaml's root or one customization).
    pub fn read(node: &Node) -> Options {
        let helm = node.get("helm");
        let values = helm
            .and_then(|h| h.entry("values"))
            .filter(|e| e.value.as_map().is_some())
            .map(|e| (to_json(&e.value, &|s| s.to_owned()), e.key.span.line));
        Options {
            namespace: text_at(Some(node), "namespace"),
            default_namespace: text_at(Some(node), "defaultNamespace"),
            kustomize_dir: text_at(node.get("kustomize"), "dir"),
            chart: text_at(helm, "chart"),
            repo: text_at(helm, "repo"),
            release: text_at(helm, "releaseName").map(|(s, _)| s),
            values: values.into_iter().collect(),
            values_files: texts_at(helm, "valuesFiles"),
            yaml_overlays: texts_at(node.get("yaml"), "overlays"),
        }
    }

    /// These options with a customization's over them: what it sets wins; Helm values and
    /// values files add to the bundle's.
    pub fn with(&self, over: &Options) -> Options {
        let pick = |a: &Option<At<String>>, b: &Option<At<String>>| b.clone().or_else(|| a.clone());
        let mut values = self.values.clone();
        values.extend(over.values.iter().cloned());
        let mut values_files = self.values_files.clone();
        values_files.extend(over.values_files.iter().cloned());
        Options {
            namespace: pick(&self.namespace, &over.namespace),
            default_namespace: pick(&self.default_namespace, &over.default_namespace),
            kustomize_dir: pick(&self.kustomize_dir, &over.kustomize_dir),
            chart: pick(&self.chart, &over.chart),
            repo: pick(&self.repo, &over.repo),
            release: over.release.clone().or_else(|| self.release.clone()),
            values,
            values_files,
            yaml_overlays: if over.yaml_overlays.is_empty() {
                self.yaml_overlays.clone()
            } else {
                over.yaml_overlays.clone()
            },
        }
    }
}

/// One `targetCustomizations` entry: the clusters it picks, and what it changes there.
#[derive(Debug, Clone)]
pub struct Customization {
    pub name: String,
    pub line: u32,
    pub cluster_name: Option<At<String>>,
    pub selector: Option<At<LabelSelector>>,
    pub group: Option<At<String>>,
    /// `clusterGroupSelector`: not followed (a note says so).
    pub group_selector: Option<u32>,
    pub options: Options,
}

/// The cluster groups of the repository: a `ClusterGroup`'s name and selector.
pub type Groups = Vec<(String, LabelSelector)>;

impl Customization {
    fn read(node: &Node, i: usize) -> Customization {
        let selector = node
            .entry("clusterSelector")
            .map(|e| (LabelSelector::read(&e.value), e.key.span.line));
        Customization {
            name: text_at(Some(node), "name").map_or_else(|| format!("#{i}"), |(s, _)| s),
            line: node.span.line,
            cluster_name: text_at(Some(node), "clusterName"),
            selector,
            group: text_at(Some(node), "clusterGroup"),
            group_selector: node.entry("clusterGroupSelector").map(|e| e.key.span.line),
            options: Options::read(node),
        }
    }

    /// Whether it picks cluster `c`, and by what (for the evidence): by name, by selector,
    /// or by a cluster group of `groups`. A customization that names nothing picks nothing.
    pub fn picks(&self, c: &Cluster, groups: &Groups) -> Option<At<String>> {
        if let Some((name, line)) = &self.cluster_name {
            if *name == c.name || c.aliases.iter().any(|a| a == name) {
                return Some((format!("clusterName {name}"), *line));
            }
        }
        if let Some((s, line)) = &self.selector {
            if s.matches(&c.labels) {
                let terms = if s.is_empty() {
                    "every cluster".to_owned()
                } else {
                    s.terms()
                };
                return Some((format!("clusterSelector {terms}"), *line));
            }
        }
        if let Some((group, line)) = &self.group {
            if groups
                .iter()
                .any(|(g, s)| g == group && s.matches(&c.labels))
            {
                return Some((format!("clusterGroup {group}"), *line));
            }
        }
        None
    }

    /// How it picks clusters, in words (for notes).
    pub fn criteria(&self) -> String {
        let mut out = Vec::new();
        if let Some((n, _)) = &self.cluster_name {
            out.push(format!("clusterName {n}"));
        }
        if let Some((s, _)) = &self.selector {
            out.push(format!("clusterSelector {}", s.terms()));
        }
        if let Some((g, _)) = &self.group {
            out.push(format!("clusterGroup {g}"));
        }
        if out.is_empty() {
            "no cluster criteria".to_owned()
        } else {
            out.join(", ")
        }
    }
}

/// A bundle folder and its `fleet.yaml`, when it has one.
#[derive(Debug, Clone)]
pub struct Bundle<'a> {
    pub dir: String,
    pub fleet: Option<(DocRef, &'a Document)>,
    pub options: Options,
    pub customizations: Vec<Customization>,
}

impl<'a> Bundle<'a> {
    /// The bundle of folder `dir`.
    pub fn read(index: &RepoIndex<'a>, dir: &str) -> Bundle<'a> {
        let path = below(dir, FLEET_YAML);
        let fleet = index.file(&path).and_then(|f| {
            let d = index.files[f].documents.first()?;
            Some((DocRef::new(f, 0), d))
        });
        let root = fleet.map(|(_, d)| &d.root);
        Bundle {
            dir: dir.to_owned(),
            fleet,
            options: root.map(Options::read).unwrap_or_default(),
            customizations: root
                .and_then(|r| r.get("targetCustomizations"))
                .and_then(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .enumerate()
                .map(|(i, n)| Customization::read(n, i))
                .collect(),
        }
    }

    /// How notes and evidence name it: its folder, `.` for the repository root.
    pub fn shown(&self) -> &str {
        if self.dir.is_empty() {
            "."
        } else {
            &self.dir
        }
    }

    /// Where it is written: its fleet.yaml, else its folder's first file.
    pub fn location(&self, line: u32) -> Location {
        match self.fleet {
            Some((_, d)) => d.at(line),
            None => Location::new(&Arc::from(below(&self.dir, FLEET_YAML).as_str()), 1),
        }
    }

    /// The first customization that picks cluster `c` (Fleet applies the first), and how.
    pub fn customization_for(
        &self,
        c: &Cluster,
        groups: &Groups,
    ) -> Option<(&Customization, At<String>)> {
        self.customizations
            .iter()
            .find_map(|t| t.picks(c, groups).map(|by| (t, by)))
    }
}

/// `sub` below `dir`.
pub fn below(dir: &str, sub: &str) -> String {
    if dir.is_empty() {
        sub.to_owned()
    } else {
        format!("{dir}/{sub}")
    }
}

/// Whether a chart reference is something Fleet downloads: a URL, an OCI reference, or a
/// chart name of a Helm repository.
fn remote_chart(options: &Options) -> bool {
    options.repo.is_some()
        || options
            .chart
            .as_ref()
            .is_some_and(|(c, _)| c.contains("://") || c.starts_with("oci:"))
}

/// What one delivery of a bundle to a cluster needs besides its content.
pub struct Target<'t> {
    pub cluster: usize,
    pub deployer: Deployer,
    pub chain: Vec<Evidence>,
    pub signals: &'t [Signal],
}

/// What the bundle places on one cluster with `options` in force, added to `out`. `nested`
/// are the bundle folders inside this one (their files are theirs, not this bundle's).
pub fn content(
    index: &RepoIndex<'_>,
    inventory: &Inventory,
    bundle: &Bundle<'_>,
    options: &Options,
    target: Target<'_>,
    nested: &[String],
    out: &mut Outcome,
) {
    let Target {
        cluster,
        deployer,
        mut chain,
        signals,
    } = target;
    let namespace = options.namespace.as_ref().map(|(n, _)| n.clone());
    let default_namespace = options.default_namespace.as_ref().map(|(n, _)| n.clone());
    let hop = |line: u32, how: String| {
        Evidence::new(
            bundle.location(line),
            Hop::Fleet(Box::new(FleetHop::Content {
                bundle: bundle.shown().into(),
                how: how.into(),
            })),
        )
    };
    if let Some(dir) = &options.kustomize_dir {
        // `kustomize.dir` patches the chart's output when there is one: the chart decides.
        if options.chart.is_none() && !remote_chart(options) {
            let Some(path) = index::join(&bundle.dir, &dir.0, false).filter(|p| index.is_dir(p))
            else {
                out.unresolved.push(Unresolved {
                    location: bundle.location(dir.1),
                    reason: format!(
                        "Fleet bundle {}: kustomize.dir {} is not a folder of this repository",
                        bundle.shown(),
                        dir.0
                    ),
                });
                return;
            };
            chain.push(hop(dir.1, format!("kustomize dir {}", dir.0)));
            out.deliveries.push(Delivery {
                force_namespace: namespace,
                default_namespace,
                signals: signals.to_vec(),
                ..Delivery::new(deployer, cluster, path, chain)
            });
            return;
        }
    }
    if remote_chart(options) {
        let (chart, line) = options
            .chart
            .clone()
            .or_else(|| options.repo.clone())
            .unwrap_or_default();
        let from = options
            .repo
            .as_ref()
            .map(|(r, _)| format!(" of Helm repository {r}"))
            .unwrap_or_default();
        let why = format!("its Helm chart {chart}{from} is downloaded by Fleet");
        out.unresolved.push(Unresolved {
            location: bundle.location(line),
            reason: format!(
                "Fleet bundle {}: {why}; envfence does not read remote charts, so the bundle is one opaque placement on each of its clusters",
                bundle.shown()
            ),
        });
        chain.push(hop(line, format!("Helm chart {chart}{from}")));
        out.extra_placements.extend(opaque(
            inventory, bundle, options, cluster, line, &why, deployer, chain, signals,
        ));
        return;
    }
    let chart_dir = match &options.chart {
        Some((c, line)) => {
            match index::join(&bundle.dir, c, false).filter(|p| is_chart(index, p)) {
                Some(p) => Some((p, *line)),
                None => {
                    out.unresolved.push(Unresolved {
                    location: bundle.location(*line),
                    reason: format!(
                        "Fleet bundle {}: helm.chart {c} is neither a chart folder of this repository nor a URL",
                        bundle.shown()
                    ),
                });
                    return;
                }
            }
        }
        None if is_chart(index, &bundle.dir) => Some((bundle.dir.clone(), 1)),
        None => None,
    };
    if let Some((chart, line)) = chart_dir {
        chain.push(hop(line, format!("Helm chart {}", shown(&chart))));
        // Without a render, the bundle stands for the chart's objects.
        let why = format!("its Helm chart {} is not rendered", shown(&chart));
        let fallback = opaque(
            inventory,
            bundle,
            options,
            cluster,
            line,
            &why,
            deployer.clone(),
            chain.clone(),
            signals,
        );
        let mut install = chart_install(
            index, bundle, options, &chart, cluster, deployer, chain, signals,
        );
        install.fallback.extend(fallback);
        out.charts.push(install);
        return;
    }
    if !options.yaml_overlays.is_empty() {
        let (_, line) = options.yaml_overlays[0];
        let names: Vec<&str> = options
            .yaml_overlays
            .iter()
            .map(|(o, _)| o.as_str())
            .collect();
        out.unresolved.push(Unresolved {
            location: bundle.location(line),
            reason: format!(
                "Fleet bundle {}: yaml.overlays {} are not applied; its plain manifests are placed as written",
                bundle.shown(),
                names.join(", ")
            ),
        });
    }
    if index.kustomization_in(&bundle.dir).is_some() {
        chain.push(hop(1, "its kustomization".to_owned()));
        out.deliveries.push(Delivery {
            force_namespace: namespace,
            default_namespace,
            signals: signals.to_vec(),
            ..Delivery::new(deployer, cluster, bundle.dir.clone(), chain)
        });
        return;
    }
    // Plain manifests: the folder and its sub-folders, less Fleet's `overlays/` and the
    // bundles nested inside.
    chain.push(hop(1, "its manifests".to_owned()));
    let template = Delivery {
        force_namespace: namespace,
        default_namespace,
        signals: signals.to_vec(),
        ..Delivery::new(deployer, cluster, bundle.dir.clone(), chain)
    };
    let mut stack = vec![bundle.dir.clone()];
    while let Some(dir) = stack.pop() {
        if dir != bundle.dir && index.kustomization_in(&dir).is_some() {
            out.deliveries.push(Delivery {
                dir,
                ..template.clone()
            });
            continue;
        }
        out.deliveries.push(Delivery {
            dir: dir.clone(),
            mode: DirectoryMode::default(),
            ..template.clone()
        });
        for sub in index.subdirs_of(&dir) {
            let skip = (dir == bundle.dir && index::basename(sub) == "overlays")
                || nested.iter().any(|n| n == sub);
            if !skip {
                stack.push(sub.to_owned());
            }
        }
    }
}

/// A folder as notes name it.
fn shown(dir: &str) -> &str {
    if dir.is_empty() {
        "."
    } else {
        dir
    }
}

/// The bundle as one opaque placement on `cluster`, standing for a chart envfence does not
/// read (`why`); `None` without a fleet.yaml to stand for it.
#[allow(clippy::too_many_arguments)]
fn opaque(
    inventory: &Inventory,
    bundle: &Bundle<'_>,
    options: &Options,
    cluster: usize,
    line: u32,
    why: &str,
    deployer: Deployer,
    mut chain: Vec<Evidence>,
    signals: &[Signal],
) -> Option<crate::topology::Placement> {
    let (doc, d) = bundle.fleet?;
    chain.push(Evidence::new(
        d.at(line),
        Hop::Opaque(Box::new(OpaqueHop {
            kind: "Fleet bundle".into(),
            name: bundle.shown().into(),
            why: why.into(),
            judged_by: "GitRepo, targetCustomization and folder",
        })),
    ));
    let namespace = options
        .namespace
        .as_ref()
        .or(options.default_namespace.as_ref())
        .map(|(n, _)| n.as_str().into());
    let object = PlacedObject {
        file: Arc::clone(&d.file),
        line,
        doc: Some(doc),
        kind: "Bundle".into(),
        name: Some(bundle_name(&bundle.dir).into()),
        namespace,
        images: Box::default(),
    };
    Some(opaque_placement(
        Opaque {
            object,
            cluster,
            signals: signals.to_vec(),
            evidence: chain,
            deployer,
            renders_chart: true,
        },
        inventory,
    ))
}

/// The name Fleet gives a bundle: its folder with `/` as `-`.
pub fn bundle_name(dir: &str) -> String {
    if dir.is_empty() {
        "root".to_owned()
    } else {
        dir.replace('/', "-").to_lowercase()
    }
}

/// The render of a local chart: its values file, then `helm.valuesFiles`, then the
/// `helm.values` blocks in order.
#[allow(clippy::too_many_arguments)]
fn chart_install(
    index: &RepoIndex<'_>,
    bundle: &Bundle<'_>,
    options: &Options,
    chart: &str,
    cluster: usize,
    deployer: Deployer,
    chain: Vec<Evidence>,
    signals: &[Signal],
) -> ChartInstall {
    let release = options
        .release
        .clone()
        .unwrap_or_else(|| bundle_name(&bundle.dir));
    let mut values = Vec::new();
    let mut values_evidence = Vec::new();
    let mut notes = Vec::new();
    for (f, line) in &options.values_files {
        match index::join(&bundle.dir, f, false).filter(|p| index.file(p).is_some()) {
            Some(p) => {
                values_evidence.push(Evidence::new(
                    Location::new(&Arc::from(p.as_str()), 1),
                    Hop::ValuesFile(Box::new(ValuesFileHop {
                        path: p.as_str().into(),
                        via: Some("helm.valuesFiles".into()),
                    })),
                ));
                values.push(ValuesInput::File(p));
            }
            None => notes.push(missing_values_file(bundle.location(*line), f)),
        }
    }
    for (v, line) in &options.values {
        values.push(ValuesInput::Inline(v.to_string()));
        values_evidence.push(Evidence::new(
            bundle.location(*line),
            Hop::InlineValues {
                field: "helm.values".into(),
            },
        ));
    }
    let namespace = options
        .namespace
        .as_ref()
        .or(options.default_namespace.as_ref())
        .map(|(n, _)| n.clone());
    ChartInstall {
        request: RenderRequest {
            chart: chart.to_owned(),
            release,
            namespace: namespace.clone(),
            values,
            set: Vec::new(),
            flags: RenderFlags::default(),
        },
        delivery: Delivery {
            default_namespace: namespace,
            signals: signals.to_vec(),
            ..Delivery::new(deployer, cluster, chart.to_owned(), chain)
        },
        values_evidence,
        notes,
        fallback: Vec::new(),
        fallback_notes: Vec::new(),
    }
}

/// The deployer a bundle's placements name: the bundle, at its fleet.yaml.
pub fn deployer(bundle: &Bundle<'_>) -> Deployer {
    Deployer {
        kind: DeployerKind::Object("Bundle"),
        name: bundle_name(&bundle.dir),
        location: bundle.location(1),
    }
}
