//! kfctl: a Kubeflow `KfDef` (`kfdef.apps.kubeflow.org`) lists the applications `kfctl apply`
//! installs. `kfctl build` writes each application's kustomize package to
//! `kustomize/<application name>/` beside the KfDef, and `kfctl apply` applies those folders
//! to the cluster the KfDef names in `metadata.clusterName` (a kube context). Repositories that
//! commit the build output deliver those folders through the KfDef; an application whose
//! folder is not committed is built from the manifests repository, which is a note.

use crate::documents::Document;
use crate::evidence::{Evidence, FieldDestinationHop, Hop, KfctlApplicationHop, OpaqueHop};
use crate::topology::build::Worklist;
use crate::topology::family::{
    api_in, deployer_signal, field_text, identity_signals, name_of, opaque_placement, Family, Job,
    Opaque, RunContext, Stage,
};
use crate::topology::index;
use crate::topology::{Delivery, Deployer, DeployerKind, Outcome, PlacedObject};

pub struct Kfctl;

const GROUP: &str = "kfdef.apps.kubeflow.org";

fn is_kfdef(d: &Document) -> bool {
    d.id.kind.as_deref() == Some("KfDef") && api_in(d, GROUP)
}

/// The kube context a KfDef is applied to, and its line.
fn cluster_name(d: &Document) -> Option<(&str, u32)> {
    let name = field_text(Some(&d.root), &["metadata", "clusterName"])?;
    let line = d.line_of("metadata.clusterName").unwrap_or(d.first_line);
    (!name.is_empty()).then_some((name, line))
}

fn cluster_hop(d: &Document, name: &str, line: u32) -> Evidence {
    Evidence::new(
        d.at(line),
        Hop::FieldDestination(Box::new(FieldDestinationHop {
            field: "metadata.clusterName".into(),
            value: name.into(),
        })),
    )
}

impl Family for Kfctl {
    fn name(&self) -> &'static str {
        "kfctl"
    }

    fn deployer_kinds(&self) -> &'static [&'static str] {
        &["KfDef"]
    }

    fn is_deployer(&self, d: &Document) -> bool {
        is_kfdef(d)
    }

    fn stage(&self) -> Option<Stage> {
        Some(Stage::Deployers)
    }

    /// Each KfDef that names its cluster and that no placement reached runs on that cluster.
    /// One placed by another deployer is an object there (a test fixture inside a package),
    /// not something kfctl applies.
    fn seed(&self, w: &mut Worklist<'_>) {
        let index = w.index();
        let kfdefs: Vec<_> = index
            .of_kind("KfDef")
            .filter(|(_, d)| is_kfdef(d))
            .collect();
        for (r, d) in kfdefs {
            if w.was_reached(r) {
                continue;
            }
            // Without a cluster name, kfctl applies it to the current kube context, which
            // the repository does not say; the coverage counts it as unplaced.
            let Some((name, line)) = cluster_name(d) else {
                continue;
            };
            let (cluster, _) = w
                .inventory_mut()
                .resolve_destination(Some(name), None, d.at(line));
            w.run(r, Some(cluster), vec![cluster_hop(d, name, line)]);
            w.drain();
        }
    }

    /// Delivers `kustomize/<application>/` beside the KfDef for each application it lists.
    fn run(&self, cx: &mut RunContext<'_, '_>, job: &Job<'_>) -> Outcome {
        let mut out = Outcome::default();
        let d = cx.index.doc(job.doc);
        let Some(cluster) = job.host else {
            return out;
        };
        let Some(apps) = d
            .root
            .get("spec")
            .and_then(|s| s.get("applications"))
            .and_then(|a| a.as_seq())
        else {
            return out;
        };
        let here = index::parent(&d.file);
        let signals = {
            let mut s = job.parent_signals.to_vec();
            s.extend(identity_signals(
                cx.inventory.vocabulary(),
                "KfDef",
                name_of(d),
                d.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            ));
            // The operator installs the applications into the KfDef's own namespace
            // (`opf-jupyterhub-stage`): a word of it says their environment.
            if let Some(ns) = job.namespace.or(d.id.namespace.as_deref()) {
                s.extend(deployer_signal(cx.inventory.vocabulary(), ns, || {
                    format!("KfDef {} namespace {ns}", name_of(d))
                }));
            }
            s
        };
        let mut missing = Vec::new();
        for app in apps {
            let Some(entry) = app.entry("name") else {
                continue;
            };
            let Some(name) = entry.value.as_str() else {
                continue;
            };
            let line = entry.key.span.line;
            // An application name is one folder: anything else would leave `kustomize/`.
            let one_folder = !name.is_empty() && !name.contains('/') && !name.starts_with('.');
            let dir = one_folder
                .then(|| index::join(here, &format!("kustomize/{name}"), false))
                .flatten();
            let dir = match dir {
                Some(dir) if cx.index.is_dir(&dir) => dir,
                _ => {
                    missing.push((name.to_owned(), line));
                    continue;
                }
            };
            let mut chain = job.chain.to_vec();
            chain.push(Evidence::new(
                d.at(line),
                Hop::KfctlApplication(Box::new(KfctlApplicationHop {
                    application: name.into(),
                    dir: dir.clone().into(),
                })),
            ));
            // The deployer is the application's entry: the line to change to stop it.
            let deployer = Deployer {
                kind: DeployerKind::Object("KfDef"),
                name: name_of(d).to_owned(),
                location: d.at(line),
            };
            out.deliveries.push(Delivery {
                signals: signals.clone(),
                ..Delivery::new(deployer, cluster, dir, chain)
            });
        }
        // What kfctl builds from its manifests repository is not here: the KfDef stands for
        // it, judged by its own identity, at the first such application.
        if let Some((_, line)) = missing.first() {
            let names: Vec<&str> = missing.iter().map(|(n, _)| n.as_str()).collect();
            let mut evidence = job.chain.to_vec();
            evidence.push(Evidence::new(
                d.at(*line),
                Hop::Opaque(Box::new(OpaqueHop {
                    kind: "KfDef".into(),
                    name: name_of(d).into(),
                    why: format!(
                        "kfctl builds {} of its applications ({}) from its manifests repository",
                        names.len(),
                        listed(&names)
                    )
                    .into(),
                    judged_by: "name, labels and namespace",
                })),
            ));
            let opaque = Opaque {
                object: PlacedObject {
                    file: d.file.clone(),
                    line: d.first_line,
                    doc: Some(job.doc),
                    kind: "KfDef".into(),
                    name: Some(name_of(d).into()),
                    namespace: d.id.namespace.as_deref().map(Into::into),
                    images: Box::default(),
                },
                cluster,
                signals,
                evidence,
                deployer: Deployer {
                    kind: DeployerKind::Object("KfDef"),
                    name: name_of(d).to_owned(),
                    location: d.at(*line),
                },
                renders_chart: false,
            };
            out.extra_placements
                .push(opaque_placement(opaque, cx.inventory));
        }
        out
    }
}

/// The first names of a list, then how many more.
fn listed(names: &[&str]) -> String {
    const SHOWN: usize = 5;
    let mut text = names
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}
