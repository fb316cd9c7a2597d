//! The config's `entrypoints`: folders, charts and root deployers that something outside the
//! repository (Terraform, a pipeline, a bootstrap command) delivers to a named cluster. They
//! are roots, seeded before any deployer, each with a hop at its config line.

use std::sync::Arc;

use crate::config::EntryPoint;
use crate::documents::Node;
use crate::evidence::{EntryPointHop, EntryPointKind, Evidence, Hop, ValuesFileHop};
use crate::location::Location;
use crate::topology::build::Worklist;
use crate::topology::expand::helm::{
    is_chart, ChartInstall, RenderFlags, RenderRequest, ValuesInput,
};
use crate::topology::expand::kustomize::DirectoryMode;
use crate::topology::family::{config_file, Family, Stage};
use crate::topology::index;
use crate::topology::{Delivery, Deployer, DeployerKind, Unresolved};

/// The config's declared entry points.
pub struct EntryPoints;

impl Family for EntryPoints {
    fn name(&self) -> &'static str {
        "declared entry points"
    }

    fn stage(&self) -> Option<Stage> {
        Some(Stage::Roots)
    }

    fn seed(&self, w: &mut Worklist<'_>) {
        let config = w.config();
        for (i, entry) in config.entrypoints.iter().enumerate() {
            let line = config
                .source
                .as_ref()
                .and_then(|s| s.line_of(&format!("entrypoints[{i}].path")))
                .unwrap_or(1);
            seed_one(w, entry, Location::new(&config_file(config), line));
        }
    }
}

/// The entry point's path as the index names it: no `./`, no trailing `/`.
fn normalised(path: &str) -> String {
    let trimmed = path.trim().trim_end_matches('/');
    index::join("", trimmed, true).unwrap_or_else(|| trimmed.to_owned())
}

fn seed_one(w: &mut Worklist<'_>, entry: &EntryPoint, at: Location) {
    let path = normalised(&entry.path);
    let (cluster, _) =
        w.inventory_mut()
            .resolve_destination(Some(&entry.cluster), None, at.clone());
    let index = w.index();
    let hop = |kind| {
        Evidence::new(
            at.clone(),
            Hop::EntryPoint(Box::new(EntryPointHop {
                path: path.as_str().into(),
                cluster: entry.cluster.as_str().into(),
                kind,
            })),
        )
    };
    let deployer = Deployer {
        kind: DeployerKind::EntryPoint,
        name: path.clone(),
        location: at.clone(),
    };
    if let Some(file) = index.file(&path) {
        if w.run_deployers_in(file, cluster, vec![hop(EntryPointKind::Deployer)]) {
            return;
        }
        // A file of plain manifests: that file alone, from its folder.
        let mut names = globset::GlobSetBuilder::new();
        if let Ok(g) = globset::Glob::new(&globset::escape(index::basename(&path))) {
            names.add(g);
        }
        let delivery = Delivery {
            mode: DirectoryMode {
                include: names.build().ok(),
                ..DirectoryMode::default()
            },
            default_namespace: entry.namespace.clone(),
            ..Delivery::new(
                deployer,
                cluster,
                index::parent(&path).to_owned(),
                vec![hop(EntryPointKind::File)],
            )
        };
        w.deliver(&delivery);
        return;
    }
    if is_chart(index, &path) {
        let install = chart_install(
            w,
            entry,
            &path,
            cluster,
            deployer,
            hop(EntryPointKind::Chart),
        );
        w.install_chart(install);
        return;
    }
    if !index.is_dir(&path) {
        w.note(Unresolved {
            location: at,
            reason: format!(
                "entry point {path} is not a file or folder of this repository, so nothing is delivered to cluster {}",
                entry.cluster
            ),
        });
        return;
    }
    let delivery = Delivery {
        mode: DirectoryMode::recursive(),
        default_namespace: entry.namespace.clone(),
        ..Delivery::new(
            deployer,
            cluster,
            path.clone(),
            vec![hop(EntryPointKind::Folder)],
        )
    };
    super::deliver_folder_tree(w, delivery);
}

/// The install of a chart entry point: its release is the chart's name, its values files those
/// the entry point lists (relative to the chart, else to the repository root).
fn chart_install(
    w: &Worklist<'_>,
    entry: &EntryPoint,
    chart: &str,
    cluster: usize,
    deployer: Deployer,
    hop: Evidence,
) -> ChartInstall {
    let index = w.index();
    let at = deployer.location.clone();
    let release = index
        .file(format!("{chart}/Chart.yaml").trim_start_matches('/'))
        .and_then(|f| index.files[f].documents.first())
        .and_then(|d| d.root.get("name"))
        .and_then(Node::as_str)
        .unwrap_or_else(|| index::basename(chart))
        .to_owned();
    let mut values = Vec::new();
    let mut values_evidence = Vec::new();
    let mut notes = Vec::new();
    for v in &entry.values {
        let found = [index::join(chart, v, false), index::join("", v, true)]
            .into_iter()
            .flatten()
            .find(|p| index.file(p).is_some());
        match found {
            Some(p) => {
                values_evidence.push(Evidence::new(
                    Location::new(&Arc::from(p.as_str()), 1),
                    Hop::ValuesFile(Box::new(ValuesFileHop {
                        path: p.as_str().into(),
                        via: Some("entrypoints values".into()),
                    })),
                ));
                values.push(ValuesInput::File(p));
            }
            None => notes.push(Unresolved {
                location: at.clone(),
                reason: format!(
                    "entry point {chart}: values file {v} is neither in the chart's folder nor at the repository root; the chart is rendered without it"
                ),
            }),
        }
    }
    ChartInstall {
        request: RenderRequest {
            chart: chart.to_owned(),
            release,
            namespace: entry.namespace.clone(),
            values,
            set: Vec::new(),
            flags: RenderFlags::default(),
        },
        delivery: Delivery {
            default_namespace: entry.namespace.clone(),
            ..Delivery::new(deployer, cluster, chart.to_owned(), vec![hop])
        },
        values_evidence,
        notes,
        fallback: Vec::new(),
        fallback_notes: Vec::new(),
    }
}
