//! The values-file convention: a chart that no deployer installs but that carries
//! `values-<env>.yaml` files is installed once per such file on the implicit cluster `<env>`.
//! A convention, not a deployer's own reading, so it lives with the other conventions and
//! asks the Helm engine (`crate::topology::expand::helm`) for its renders.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::documents::Node;
use crate::evidence::{Evidence, Hop, ValuesFileConventionHop};
use crate::location::Location;
use crate::topology::build::Worklist;
use crate::topology::clusters::Inventory;
use crate::topology::expand::helm::{
    is_chart, ChartInstall, RenderFlags, RenderRequest, ValuesInput,
};
use crate::topology::family::{Family, FamilyRoot, NoteContext, Notes, Stage};
use crate::topology::index::{self, RepoIndex};
use crate::topology::{Delivery, Deployer, DeployerKind, Signal, SignalLevel};

/// Charts with a values file per environment, and the chart folders coverage names.
pub struct ValuesFiles;

impl Family for ValuesFiles {
    fn name(&self) -> &'static str {
        "Helm chart"
    }

    fn stage(&self) -> Option<Stage> {
        Some(Stage::Conventions)
    }

    /// Charts no deployer installs, rendered per `values-<env>.yaml` onto cluster `<env>`.
    fn seed(&self, w: &mut Worklist<'_>) {
        // The chart folders installed so far are few: a copy lets the inventory change.
        let installed = w.installed().clone();
        let index = w.index();
        let installs = implicit_installs(index, w.inventory_mut(), &installed);
        for install in installs {
            w.install_chart(install);
        }
    }

    /// A chart's own folder is not a deployer, but its objects are the chart's.
    fn notes(&self, cx: &NoteContext<'_, '_>, out: &mut Notes) {
        for f in cx.index.files {
            if index::is_named(&f.path, "Chart.yaml") {
                out.roots.insert(FamilyRoot {
                    dir: index::parent(&f.path).to_owned(),
                    family: "Helm chart",
                });
            }
        }
    }
}

/// Charts that no deployer of this round installs but that carry `values-<env>.yaml` files
/// (`<env>` one environment word): one install per such file, on the implicit cluster `<env>`.
pub fn implicit_installs(
    index: &RepoIndex<'_>,
    inventory: &mut Inventory,
    installed: &BTreeSet<String>,
) -> Vec<ChartInstall> {
    let mut out = Vec::new();
    for f in index
        .files
        .iter()
        .filter(|f| index::is_named(&f.path, "Chart.yaml"))
    {
        let dir = index::parent(&f.path);
        if installed.contains(dir)
            || dir.split('/').any(|s| s == "charts") && nested_chart(index, dir)
        {
            continue;
        }
        let library = f
            .documents
            .first()
            .and_then(|d| d.root.get("type"))
            .and_then(Node::as_str)
            == Some("library");
        if library {
            continue;
        }
        let chart_name = f
            .documents
            .first()
            .and_then(|d| d.root.get("name"))
            .and_then(Node::as_str)
            .unwrap_or_else(|| index::basename(dir))
            .to_owned();
        let mut values: Vec<(String, String)> = index
            .files_in(dir)
            .iter()
            .filter_map(|&i| {
                let path = &index.files[i].path;
                let name = index::basename(path);
                let env = name
                    .strip_prefix("values-")?
                    .strip_suffix(".yaml")
                    .or_else(|| name.strip_prefix("values-")?.strip_suffix(".yml"))?;
                let one_word = crate::topology::env::tokens(env).len() == 1;
                (one_word && inventory.vocabulary().classify(env).is_some())
                    .then(|| (env.to_owned(), path.to_string()))
            })
            .collect();
        values.sort();
        for (env, path) in values {
            let file: Arc<str> = Arc::from(path.as_str());
            let location = Location::new(&file, 1);
            let (cluster, _) = inventory.resolve_destination(Some(&env), None, location.clone());
            let request = RenderRequest {
                chart: dir.to_owned(),
                release: chart_name.clone(),
                namespace: None,
                values: vec![ValuesInput::File(path.clone())],
                set: Vec::new(),
                flags: RenderFlags::default(),
            };
            let signal = inventory.vocabulary().classify(&env).map(|m| Signal {
                env: m.env,
                note: format!("values file {}", index::basename(&path)).into(),
                level: SignalLevel::Deployer,
            });
            out.push(ChartInstall {
                request,
                delivery: Delivery {
                    signals: signal.into_iter().collect(),
                    ..Delivery::new(
                        Deployer {
                            kind: DeployerKind::ValuesFile,
                            name: path.clone(),
                            location: location.clone(),
                        },
                        cluster,
                        dir.to_owned(),
                        vec![Evidence::new(
                            location.clone(),
                            Hop::ValuesFileConvention(Box::new(ValuesFileConventionHop {
                                chart: dir.into(),
                                values_file: index::basename(&path).into(),
                                cluster: env.as_str().into(),
                            })),
                        )],
                    )
                },
                values_evidence: Vec::new(),
                notes: Vec::new(),
                fallback: Vec::new(),
                fallback_notes: Vec::new(),
            });
        }
    }
    out
}

/// A chart inside another chart's `charts/` folder: a dependency, rendered with its parent.
pub(super) fn nested_chart(index: &RepoIndex<'_>, dir: &str) -> bool {
    let mut d = dir;
    while !d.is_empty() {
        let up = index::parent(d);
        if index::basename(up) == "charts" && is_chart(index, index::parent(up)) {
            return true;
        }
        d = up;
    }
    false
}
