//! Kustomize's `helmCharts` (and the older `helmChartInflationGenerator`): an entry read as
//! kustomize reads it (chart home, values file, inline values and how they merge, flags)
//! into the render it asks of the Helm engine (`crate::topology::expand::helm`). Kept beside
//! the kustomize expansion that uses it, apart from the engine.

use crate::evidence::{Evidence, Hop, ValuesFileHop};
use std::sync::Arc;

use crate::documents::Node;
use crate::location::Location;
use crate::topology::expand::helm::{
    is_chart, missing_values_file, to_json, RenderFlags, RenderRequest, ValuesInput,
};
use crate::topology::index::{self, RepoIndex};
use crate::topology::Unresolved;

/// One entry of a kustomization's `helmCharts` (or the older `helmChartInflationGenerator`),
/// read as kustomize reads it.
#[derive(Debug, Clone)]
pub enum KustomizeChart {
    /// The chart is in the repository: the render kustomize runs, with its values evidence
    /// and notes about values files that are missing.
    Local {
        request: RenderRequest,
        values_evidence: Vec<Evidence>,
        notes: Vec<Unresolved>,
    },
    /// No copy under the chart home: kustomize would download it; envfence does not.
    Remote(String),
}

/// The render a `helmCharts` entry of the kustomization in `dir` asks for. `root` is the
/// kustomization, `entry` the item; `legacy` reads `helmChartInflationGenerator` names.
/// The chart is `<chartHome>/<name>` (`<chartHome>/<name>-<version>/<name>` when a `repo`
/// and `version` are given), `chartHome` (`helmGlobals.chartHome`, default `charts`)
/// relative to the kustomization. Values as kustomize passes them: `valuesFile` (else the
/// chart's own), `valuesInline` over it (`valuesMerge: override`), then
/// `additionalValuesFiles`; no CRDs unless `includeCRDs`, tests unless `skipTests`.
pub fn kustomize_chart(
    index: &RepoIndex<'_>,
    dir: &str,
    file: &Arc<str>,
    root: &Node,
    entry: &Node,
    legacy: bool,
) -> KustomizeChart {
    let key = |modern: &'static str, old: &'static str| if legacy { old } else { modern };
    let text = |k: &str| entry.get(k).and_then(Node::as_str).map(str::to_owned);
    let flag = |k: &str| entry.get(k).and_then(Node::as_str) == Some("true");
    let at = |node: &Node| Location::new(file, node.span.line);
    let name = text(key("name", "chartName")).unwrap_or_default();
    let repo = text(key("repo", "chartRepoUrl"));
    let version = text(key("version", "chartVersion"));
    let home = if legacy {
        text("chartHome")
    } else {
        root.get("helmGlobals")
            .and_then(|g| g.get("chartHome"))
            .and_then(Node::as_str)
            .map(str::to_owned)
    }
    .unwrap_or_else(|| "charts".into());
    let home_dir = index::join(dir, &home, false);
    let chart = home_dir.as_deref().and_then(|h| match (&repo, &version) {
        (Some(_), Some(v)) => index::join(h, &format!("{name}-{v}/{name}"), false),
        _ => index::join(h, &name, false),
    });
    let Some(chart) = chart.filter(|c| !name.is_empty() && is_chart(index, c)) else {
        return KustomizeChart::Remote(match (&repo, home_dir) {
            _ if name.is_empty() => "helmCharts entry without a name".to_owned(),
            (_, None) => format!(
                "helmCharts entry {name}: its chartHome {home} leaves the repository; the chart is not rendered"
            ),
            (Some(repo), Some(_)) => format!(
                "helmCharts entry {name} comes from {repo} and has no copy under {home}/; envfence does not download charts, so what it deploys is not known"
            ),
            (None, Some(_)) => format!(
                "helmCharts entry {name}: no chart at {home}/{name}, so what it deploys is not known"
            ),
        });
    };
    let mut request = RenderRequest {
        chart,
        release: text("releaseName").unwrap_or_else(|| "release-name".into()),
        // kustomize (v5.5) passes no namespace for the older form's `releaseNamespace`.
        namespace: if legacy { None } else { text("namespace") },
        values: Vec::new(),
        set: Vec::new(),
        flags: RenderFlags {
            include_crds: flag("includeCRDs"),
            skip_tests: flag("skipTests"),
            skip_hooks: flag("skipHooks"),
            api_versions: entry
                .get("apiVersions")
                .and_then(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .filter_map(Node::as_str)
                .map(str::to_owned)
                .collect(),
            kube_version: text("kubeVersion"),
        },
    };
    let (mut values_evidence, mut notes) = (Vec::new(), Vec::new());
    let mut file_values = |node: &Node, field: &str, values: &mut Vec<ValuesInput>| {
        let Some(rel) = node.as_str() else { return };
        match index::join(dir, rel, false).filter(|p| index.file(p).is_some()) {
            Some(p) => {
                values_evidence.push(Evidence::new(
                    Location::new(&Arc::from(p.as_str()), 1),
                    Hop::ValuesFile(Box::new(ValuesFileHop {
                        path: p.as_str().into(),
                        via: Some(format!("helmCharts {field}").into()),
                    })),
                ));
                values.push(ValuesInput::File(p));
            }
            None => notes.push(missing_values_file(at(node), rel)),
        }
    };
    let mut base = Vec::new();
    if let Some(f) = entry.get(key("valuesFile", "values")) {
        file_values(f, "valuesFile", &mut base);
    }
    let mut additional = Vec::new();
    for f in entry
        .get("additionalValuesFiles")
        .and_then(Node::as_seq)
        .unwrap_or(&[])
    {
        file_values(f, "additionalValuesFiles", &mut additional);
    }
    let inline = entry.entry(key("valuesInline", "valuesLocal")).map(|e| {
        values_evidence.push(Evidence::new(
            Location::new(file, e.key.span.line),
            Hop::InlineValues {
                field: "helmCharts valuesInline".into(),
            },
        ));
        ValuesInput::Inline(to_json(&e.value, &|s| s.to_owned()).to_string())
    });
    // `valuesMerge`: `override` (the default) lays the inline values over the file,
    // `merge` keeps the file's where both set a key, `replace` drops the file.
    match (inline, text("valuesMerge").as_deref()) {
        (None, _) => request.values = base,
        (Some(inline), Some("replace")) => request.values = vec![inline],
        (Some(inline), Some("merge")) => {
            request.values = std::iter::once(inline).chain(base).collect();
        }
        (Some(inline), _) => request.values = base.into_iter().chain([inline]).collect(),
    }
    request.values.extend(additional);
    KustomizeChart::Local {
        request,
        values_evidence,
        notes,
    }
}
