//! Flux: `Kustomization` (path, source, generated kustomization, `targetNamespace`,
//! `kubeConfig`, simple `postBuild.substitute`) and `HelmRelease` (`kubeConfig`). A Flux
//! object runs on the cluster whose tree holds it; its payload goes where it points.
//!
//! Sources: the `flux-system` GitRepository (or one with the same URL and ref) is this
//! repository; an `ExternalArtifact` is followed through the `ArtifactGenerator` copy rules
//! that produce it (the Flux 2.7 layout); anything else is another repository.

pub mod helm;
mod source;

pub(crate) use source::this_repository;
use source::{source_folder, NotHere, SourceRef};

use globset::Glob;

use crate::topology::build::Worklist;
use crate::topology::clusters;
use crate::topology::family::{
    api_in, config_file, field_text, name_of, note_at, unreached_root_order, Family, Job,
    NoteContext, Notes, RunContext, Stage, TemplateKind,
};
use crate::topology::family::{deployer_signal, identity_signals, opaque_placement, Opaque};
use crate::topology::HashMap;
use compact_str::CompactString;

use std::collections::BTreeMap;

use crate::documents::{Document, Node};
use crate::evidence::{Evidence, FluxPathHop, HelmReleasesToHop, Hop, KubeConfigHop, OpaqueHop};
use crate::location::Location;
use crate::topology::clusters::Inventory;
use crate::topology::index::{self, DocRef, RepoIndex};
use crate::topology::kustomize::DirectoryMode;
use crate::topology::{
    Delivery, Deployer, DeployerKind, Outcome, PlacedObject, Placement, Signal, Unresolved,
};

/// Flux: Kustomizations and HelmReleases, with their sources.
pub struct Flux;

impl Family for Flux {
    fn name(&self) -> &'static str {
        "Flux"
    }

    fn deployer_kinds(&self) -> &'static [&'static str] {
        &[
            "Kustomization",
            "GitRepository",
            "HelmRepository",
            "OCIRepository",
            "Bucket",
            "HelmChart",
            "ArtifactGenerator",
            "ExternalArtifact",
        ]
    }

    fn is_deployer(&self, d: &Document) -> bool {
        is_flux_deployer(d)
    }

    fn template_kinds(&self) -> &'static [TemplateKind] {
        &[
            TemplateKind {
                kind: "HelmRelease",
                api: None,
                described: "Flux HelmReleases",
            },
            TemplateKind {
                kind: "Kustomization",
                api: Some("kustomize.toolkit.fluxcd.io"),
                described: "Flux Kustomizations",
            },
        ]
    }

    fn stage(&self) -> Option<Stage> {
        Some(Stage::Deployers)
    }

    fn seed(&self, w: &mut Worklist<'_>) {
        seed_unreached(w);
    }

    fn run(&self, cx: &mut RunContext<'_, '_>, job: &Job<'_>) -> Outcome {
        run(cx.index, cx.inventory, job)
    }

    fn notes(&self, cx: &NoteContext<'_, '_>, out: &mut Notes) {
        chart_notes(cx, out);
    }
}

/// Flux Kustomizations that no cluster tree or deployer reached. One with a remote
/// `kubeConfig` names its cluster; the others (a single-cluster repository with its root
/// in, say, `kubernetes/flux/cluster/`) run on one unnamed cluster of unknown environment,
/// shallowest first so that roots reach their children.
fn seed_unreached(w: &mut Worklist<'_>) {
    let index = w.index();
    let flux: Vec<(DocRef, &Document)> = index
        .of_kind("Kustomization")
        .filter(|(_, d)| is_flux_deployer(d) && !index.is_patch_file(&d.file))
        .collect();
    // Roots first: a Kustomization whose file no other Kustomization's path covers.
    let mut paths: HashMap<String, Vec<DocRef>> = HashMap::default();
    for (r, d) in &flux {
        let path = d
            .root
            .get("spec")
            .and_then(|s| s.get("path"))
            .and_then(|p| p.as_str());
        if let Some(dir) = path.and_then(|p| index::join("", p, true)) {
            paths.entry(dir).or_default().push(*r);
        }
    }
    let pending = unreached_root_order(flux.iter().map(|(r, d)| (*r, &*d.file)), &paths);
    for r in pending {
        if w.was_reached(r) {
            continue;
        }
        let d = w.index().doc(r);
        let location = d.at(d.first_line);
        let remote = d
            .root
            .get("spec")
            .and_then(|s| s.get("kubeConfig"))
            .is_some();
        let by_rule = w.config().paths.iter().enumerate().find(|(_, rule)| {
            Glob::new(&rule.glob).is_ok_and(|g| g.compile_matcher().is_match(&*d.file))
        });
        let host = if remote {
            None
        } else if let Some((i, rule)) = by_rule {
            let line = w
                .config()
                .source
                .as_ref()
                .and_then(|s| s.line_of(&format!("paths[{i}].glob")))
                .unwrap_or(1);
            let at = Location::new(&config_file(w.config()), line);
            let (c, _) = w
                .inventory_mut()
                .resolve_destination(Some(&rule.cluster), None, at);
            Some(c)
        } else {
            w.note(Unresolved {
                location: location.clone(),
                reason: format!(
                    "Flux Kustomization {} is not inside a clusters/<name>/ tree, so its cluster is not named: envfence places it on `{}` of unknown environment (name it with a `paths` rule for this file in .envfence.yaml)",
                    d.id.name.as_deref().unwrap_or("?"),
                    clusters::UNNAMED
                ),
            });
            Some(w.inventory_mut().unnamed(location.clone()))
        };
        let chain = vec![Evidence::new(
            location,
            Hop::UnreachedFlux {
                name: d.id.name.as_deref().unwrap_or("?").into(),
            },
        )];
        w.run(r, host, chain);
    }
}

pub fn is_flux_deployer(d: &Document) -> bool {
    let api = d.id.api_version.as_deref().unwrap_or("");
    (api.starts_with("kustomize.toolkit.fluxcd.io/")
        && d.id.kind.as_deref() == Some("Kustomization"))
        || (api.starts_with("helm.toolkit.fluxcd.io/")
            && d.id.kind.as_deref() == Some("HelmRelease"))
}

/// Runs a Flux deployer: `job.host` is the cluster it was placed on (`None` when only its
/// kubeConfig is known), `job.parent_signals` what the deployer that placed it says.
pub fn run(index: &RepoIndex<'_>, inventory: &mut Inventory, job: &Job<'_>) -> Outcome {
    let Job {
        doc,
        host,
        chain,
        parent_signals,
        namespace: placed_namespace,
    } = *job;
    let mut out = Outcome::default();
    let d = index.doc(doc);
    if !is_flux_deployer(d) {
        return out;
    }
    let spec = d.root.get("spec");
    let name = d.id.name.clone().unwrap_or_else(|| "?".into());
    let at = |line: u32| d.at(line);
    let kind = d.id.kind.clone().unwrap_or_default();

    // Where the payload goes: a remote cluster through kubeConfig, else where it runs.
    let kubeconfig = spec.and_then(|s| s.get("kubeConfig"));
    let remote = kubeconfig.and_then(|k| {
        ["secretRef", "configMapRef"].into_iter().find_map(|r| {
            let entry = k.get(r)?.entry("name")?;
            Some((entry.value.as_str()?.to_owned(), entry.key.span.line, r))
        })
    });
    let (cluster, dest_hop) = match remote {
        Some((secret, line, r)) => {
            let c = inventory.kubeconfig_cluster(&secret, d.id.namespace.as_deref(), at(line));
            (
                c,
                Some(Evidence::new(
                    at(line),
                    Hop::KubeConfig(Box::new(KubeConfigHop {
                        reference: r.into(),
                        secret: secret.as_str().into(),
                        cluster: inventory.clusters[c].name.as_str().into(),
                    })),
                )),
            )
        }
        None => match host {
            Some(host) => (host, None),
            None => return out,
        },
    };

    // What the deployer that placed it says (as for every family's deployers), then its own
    // identity: its name and environment labels.
    let mut signals = parent_signals.to_vec();
    signals.extend(identity_signals(
        inventory.vocabulary(),
        &kind,
        &name,
        d.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ));
    let deployer = FluxRun {
        index,
        d,
        doc,
        name,
        cluster,
        host,
        chain,
        dest_hop,
        signals,
        placed_namespace,
    };
    if kind == "HelmRelease" {
        helm_release(deployer, inventory, &mut out);
    } else {
        kustomization(deployer, inventory, &mut out);
    }
    out
}

/// One Flux deployer being run: what both kinds share once its destination is known.
struct FluxRun<'r, 'a> {
    index: &'r RepoIndex<'a>,
    d: &'r Document,
    doc: DocRef,
    name: CompactString,
    /// Where its payload goes.
    cluster: usize,
    /// Where it runs (`None` when only its kubeConfig is known).
    host: Option<usize>,
    chain: &'r [Evidence],
    /// The kubeConfig hop, when the payload goes to a remote cluster.
    dest_hop: Option<Evidence>,
    signals: Vec<Signal>,
    /// The namespace the deployer object was placed in, when a placement reached it.
    placed_namespace: Option<&'r str>,
}

/// A HelmRelease: its chart installed on its cluster (rendered, or opaque). A chart outside
/// this repository (a Helm or OCI repository, a bucket, another Git repository) is not read:
/// the HelmRelease stands for it on its cluster (DESIGN §3, opaque placement), classed by its
/// own identity. On a remote cluster it is placed there too, so that rules see its values.
fn helm_release(run: FluxRun<'_, '_>, inventory: &mut Inventory, out: &mut Outcome) {
    let FluxRun {
        index,
        d,
        doc,
        name,
        cluster,
        host,
        chain,
        dest_hop,
        mut signals,
        placed_namespace,
    } = run;
    let spec = d.root.get("spec");
    let install = helm::install(
        index,
        inventory,
        d,
        cluster,
        chain,
        dest_hop.clone(),
        &signals,
    );
    let elsewhere = match install {
        Some(install) => {
            out.charts.push(install);
            None
        }
        None => helm::chart_elsewhere(index, inventory, d),
    };
    let remote = dest_hop.filter(|_| Some(cluster) != host);
    if elsewhere.is_none() && remote.is_none() {
        return;
    }
    // Where the chart's objects go: its target namespace, else its own as placed (a
    // kustomization may have set it), which makes this placement the HelmRelease's own.
    let namespace = spec
        .and_then(|s| s.get("targetNamespace"))
        .and_then(Node::as_str)
        .or(placed_namespace)
        .or(d.id.namespace.as_deref());
    let mut evidence = chain.to_vec();
    let mut location = d.at(d.first_line);
    let on_remote = remote.is_some();
    if let Some(hop) = remote {
        location = hop.location.clone();
        evidence.push(hop);
    }
    if let Some(chart) = elsewhere {
        let at = d.at(chart.line);
        if !on_remote {
            // On its own cluster: the chart reference is the line to change.
            location = at.clone();
        }
        // Its identity beyond name and labels, as an Argo CD Application's: namespace,
        // chart and version.
        let vocabulary = inventory.vocabulary();
        let identity = [
            ("namespace", namespace),
            ("chart", chart.chart.as_deref()),
            ("chart version", chart.version.as_deref()),
        ];
        for (what, value) in identity {
            if let Some(value) = value {
                signals.extend(deployer_signal(vocabulary, value, || {
                    format!("HelmRelease {name} {what} {value}")
                }));
            }
        }
        evidence.push(Evidence::new(
            at,
            Hop::Opaque(Box::new(OpaqueHop {
                kind: "HelmRelease".into(),
                name: name.as_str().into(),
                why: chart.why.into(),
                judged_by: "name, labels, namespace and chart",
            })),
        ));
    }
    let opaque = Opaque {
        object: PlacedObject {
            file: d.file.clone(),
            line: d.first_line,
            doc: Some(doc),
            kind: "HelmRelease".into(),
            name: Some(name.as_str().into()),
            namespace: namespace.map(Into::into),
            images: Box::default(),
        },
        cluster,
        signals,
        evidence,
        deployer: Deployer {
            kind: DeployerKind::Object("HelmRelease"),
            name: name.to_string(),
            location,
        },
        // Rules read its values as the chart's, which is not rendered here.
        renders_chart: true,
    };
    out.extra_placements
        .push(opaque_placement(opaque, inventory));
}

/// A Kustomization: its source resolved to a folder of this repository (or an opaque
/// placement when the source is elsewhere), delivered to its cluster.
fn kustomization(run: FluxRun<'_, '_>, inventory: &mut Inventory, out: &mut Outcome) {
    let FluxRun {
        index,
        d,
        doc,
        name,
        cluster,
        chain,
        dest_hop,
        mut signals,
        ..
    } = run;
    let spec = d.root.get("spec");
    let at = |line: u32| d.at(line);
    // Kustomization: resolve the source and the path.
    let path_entry = spec.and_then(|s| s.entry("path"));
    let path = path_entry
        .and_then(|e| e.value.as_str())
        .unwrap_or("./")
        .to_owned();
    let path_line = path_entry.map_or(d.first_line, |e| e.key.span.line);
    let source = spec.and_then(|s| s.get("sourceRef"));
    let source_kind = source
        .and_then(|s| s.get("kind"))
        .and_then(Node::as_str)
        .unwrap_or("GitRepository");
    let source_name = source
        .and_then(|s| s.get("name"))
        .and_then(Node::as_str)
        .unwrap_or("")
        .to_owned();
    let source = SourceRef {
        kind: source_kind,
        name: &source_name,
        path: &path,
        at: at(path_line),
    };
    let (dir, assumed) = match source_folder(index, inventory, &name, &source) {
        Ok(found) => found,
        Err(NotHere::Note(note)) => {
            out.unresolved.push(note);
            return;
        }
        Err(NotHere::Elsewhere(reason)) => {
            // Without a path (an OCI artifact applied whole), the source reference is the
            // line to change.
            let location = match (path_entry, spec.and_then(|s| s.entry("sourceRef"))) {
                (None, Some(e)) => at(e.key.span.line),
                _ => source.at,
            };
            let run = FluxRun {
                index,
                d,
                doc,
                name,
                cluster,
                host: None,
                chain,
                dest_hop,
                signals,
                placed_namespace: None,
            };
            out.extra_placements
                .push(opaque_kustomization(run, inventory, location, &reason));
            return;
        }
    };
    let Some(dir) = dir.filter(|d| index.is_dir(d)) else {
        out.unresolved.push(Unresolved {
            location: at(path_line),
            reason: format!(
                "Flux Kustomization {name}: path {path} does not exist in this repository"
            ),
        });
        return;
    };
    let slot = crate::topology::folder_slot(&dir).unwrap_or(index::basename(&dir));
    signals.extend(deployer_signal(inventory.vocabulary(), slot, || {
        format!("path {path}")
    }));
    let substitute: BTreeMap<String, String> = spec
        .and_then(|s| s.get("postBuild"))
        .and_then(|p| p.get("substitute"))
        .map(|s| s.string_map().into_iter().collect())
        .unwrap_or_default();
    let target_namespace = spec
        .and_then(|s| s.get("targetNamespace"))
        .and_then(Node::as_str)
        .map(|ns| substitute_vars(ns, &substitute));
    let mut hops = chain.to_vec();
    hops.extend(dest_hop);
    hops.extend(assumed);
    hops.push(Evidence::new(
        at(path_line),
        Hop::FluxPath(Box::new(FluxPathHop {
            name: name.as_str().into(),
            path: path.as_str().into(),
        })),
    ));
    let helm_releases_to = patched_helm_kubeconfig(d).map(|(secret, line)| {
        let c = inventory.kubeconfig_cluster(&secret, d.id.namespace.as_deref(), at(line));
        (
            c,
            Evidence::new(
                at(line),
                Hop::HelmReleasesTo(Box::new(HelmReleasesToHop {
                    secret: secret.as_str().into(),
                    cluster: inventory.clusters[c].name.as_str().into(),
                })),
            ),
        )
    });
    out.deliveries.push(Delivery {
        mode: DirectoryMode::recursive(),
        force_namespace: target_namespace,
        signals,
        helm_releases_to,
        ..Delivery::new(
            Deployer {
                kind: DeployerKind::Object("Kustomization"),
                name: name.to_string(),
                location: at(path_line),
            },
            cluster,
            dir,
            hops,
        )
    });
}

/// A Flux Kustomization's inline JSON patch that adds `/spec/kubeConfig` to HelmReleases:
/// the kubeConfig Secret name and the patch's line.
pub fn patched_helm_kubeconfig(d: &Document) -> Option<(String, u32)> {
    let patches = d.root.get("spec")?.get("patches")?.as_seq()?;
    patches.iter().find_map(|p| {
        let kind = p
            .get("target")
            .and_then(|t| t.get("kind"))
            .and_then(Node::as_str);
        if kind != Some("HelmRelease") {
            return None;
        }
        let text = p.get("patch")?.as_str()?;
        let ops = crate::documents::yaml::parse_stream(text);
        let op = ops
            .docs
            .first()?
            .root
            .as_seq()?
            .iter()
            .find(|op| op.get("path").and_then(Node::as_str) == Some("/spec/kubeConfig"))?;
        let name = op.get("value")?.get("secretRef")?.get("name")?.as_str()?;
        Some((name.to_owned(), p.span.line))
    })
}

/// `${var}` and `${var:=default}` from `postBuild.substitute`.
fn substitute_vars(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &rest[start + 2..start + end];
        let (var, default) = inner
            .split_once(":=")
            .map_or((inner, None), |(v, d)| (v, Some(d)));
        match vars.get(var).map(String::as_str).or(default) {
            Some(v) => out.push_str(v),
            None => out.push_str(&rest[start..start + end + 1]),
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// A Kustomization whose source is another repository: the Kustomization itself stands for
/// its payload on its cluster (an opaque placement), classed by its own name, labels,
/// namespace and path.
fn opaque_kustomization(
    run: FluxRun<'_, '_>,
    inventory: &Inventory,
    path_location: Location,
    reason: &str,
) -> Placement {
    let FluxRun {
        d,
        doc,
        name,
        cluster,
        chain,
        dest_hop,
        mut signals,
        ..
    } = run;
    let spec = d.root.get("spec");
    // The payload's namespace is known only from targetNamespace: Flux applies the other
    // objects in the namespaces they name. The Kustomization's own namespace still says
    // something of what it is.
    let namespace = spec
        .and_then(|s| s.get("targetNamespace"))
        .and_then(Node::as_str)
        .map(str::to_owned);
    let vocabulary = inventory.vocabulary();
    if let Some(ns) = namespace.as_deref().or(d.id.namespace.as_deref()) {
        signals.extend(deployer_signal(vocabulary, ns, || {
            format!("Kustomization {name} namespace {ns}")
        }));
    }
    if let Some(path) = spec.and_then(|s| s.get("path")).and_then(Node::as_str) {
        let trimmed = path.trim_end_matches('/');
        let slot = crate::topology::folder_slot(trimmed).unwrap_or(index::basename(trimmed));
        signals.extend(deployer_signal(vocabulary, slot, || {
            format!("Kustomization {name} path {path}")
        }));
    }
    let mut evidence = chain.to_vec();
    evidence.extend(dest_hop);
    evidence.push(Evidence::new(
        path_location.clone(),
        Hop::Opaque(Box::new(OpaqueHop {
            kind: "Kustomization".into(),
            name: name.as_str().into(),
            why: reason.into(),
            judged_by: "name, labels, namespace and path",
        })),
    ));
    let opaque = Opaque {
        object: PlacedObject {
            file: d.file.clone(),
            line: d.first_line,
            doc: Some(doc),
            kind: "Kustomization".into(),
            name: Some(name.as_str().into()),
            namespace: namespace.map(Into::into),
            images: Box::default(),
        },
        cluster,
        signals,
        evidence,
        deployer: Deployer {
            kind: DeployerKind::Object("Kustomization"),
            name: name.to_string(),
            location: path_location,
        },
        renders_chart: false,
    };
    opaque_placement(opaque, inventory)
}

/// A note for each HelmRelease of a chart in a GitRepository that no followed Kustomization
/// installed: what it deploys is not known.
fn chart_notes(cx: &NoteContext<'_, '_>, out: &mut Notes) {
    for (_, d) in cx.index.of_kind("HelmRelease") {
        if !api_in(d, "helm.toolkit.fluxcd.io") {
            continue;
        }
        let spec = d.root.get("spec");
        let chart = spec
            .and_then(|s| s.get("chart"))
            .and_then(|c| c.get("spec"));
        if field_text(chart, &["sourceRef", "kind"]) != Some("GitRepository") {
            continue;
        }
        let path = field_text(chart, &["chart"]).unwrap_or("?");
        if index::join("", path, true).is_some_and(|p| cx.installed.contains(&p)) {
            continue;
        }
        note_at(
            out,
            d,
            d.line_of("spec.chart.spec.chart").unwrap_or(d.first_line),
            format!(
                "HelmRelease {} installs the Helm chart at {path} of GitRepository {}, not rendered here (no Flux Kustomization envfence follows applies it, or the source is not this repository), so what it deploys is not known",
                name_of(d),
                field_text(chart, &["sourceRef", "name"]).unwrap_or("?")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_build_substitution() {
        let vars: BTreeMap<String, String> = [("tenant".to_owned(), "team-a".to_owned())]
            .into_iter()
            .collect();
        assert_eq!(substitute_vars("${tenant}-ns", &vars), "team-a-ns");
        assert_eq!(substitute_vars("${missing:=dev}", &vars), "dev");
        assert_eq!(substitute_vars("${missing}", &vars), "${missing}");
    }
}
