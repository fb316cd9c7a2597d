//! Flux's Helm: a HelmRelease whose chart is a path of this repository's GitRepository,
//! read as helm-controller reads it (`valuesFiles`, `valuesFrom` with `targetPath`, inline
//! `values`) into the render it asks of the Helm engine (`crate::topology::expand::helm`),
//! and the install that places the rendered objects where the HelmRelease deploys.

use crate::evidence::{Evidence, Hop, InstallsChartHop, ValuesFileHop, ValuesFromHop};
use std::sync::Arc;

use super::source::{described_source, SourceElsewhere};
use crate::documents::{Document, Node};
use crate::location::Location;
use crate::topology::expand::helm::{
    is_chart, missing_values_file, to_json, ChartInstall, RenderFlags, RenderRequest, ValuesInput,
};
use crate::topology::index::{self, RepoIndex};
use crate::topology::{Delivery, Deployer, DeployerKind, Signal, Unresolved};

/// A Flux HelmRelease whose chart is a path of this repository's GitRepository: the render
/// it asks for, with its values evidence and notes.
pub fn request(
    index: &RepoIndex<'_>,
    inventory: &crate::topology::clusters::Inventory,
    d: &Document,
    evidence: &mut Vec<Evidence>,
    notes: &mut Vec<Unresolved>,
) -> Option<RenderRequest> {
    let spec = d.root.get("spec")?;
    let chart_spec = spec.get("chart")?.get("spec")?;
    let source = chart_spec.get("sourceRef")?;
    if source.get("kind").and_then(Node::as_str) != Some("GitRepository") {
        return None;
    }
    let name = source.get("name").and_then(Node::as_str).unwrap_or("");
    crate::topology::flux::this_repository(index, inventory, name).ok()?;
    let chart_entry = chart_spec.entry("chart")?;
    let chart = index::join("", chart_entry.value.as_str()?, true)?;
    if !is_chart(index, &chart) {
        return None;
    }
    let at = |line: u32| d.at(line);
    let hr_name = d.id.name.clone().unwrap_or_else(|| "?".into());
    let target_ns = spec.get("targetNamespace").and_then(Node::as_str);
    let namespace = target_ns.or(d.id.namespace.as_deref()).map(str::to_owned);
    let release = spec
        .get("releaseName")
        .and_then(Node::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| match target_ns {
            Some(ns) => format!("{ns}-{hr_name}"),
            None => hr_name.to_string(),
        });
    let mut request = RenderRequest {
        chart,
        release,
        namespace,
        values: Vec::new(),
        set: Vec::new(),
        flags: RenderFlags::default(),
    };
    for f in chart_spec
        .get("valuesFiles")
        .and_then(Node::as_seq)
        .unwrap_or(&[])
    {
        let Some(p) = f.as_str().and_then(|p| index::join("", p, true)) else {
            continue;
        };
        if index.file(&p).is_some() {
            evidence.push(Evidence::new(
                Location::new(&Arc::from(p.as_str()), 1),
                Hop::ValuesFile(Box::new(ValuesFileHop {
                    path: p.as_str().into(),
                    via: Some("chart.spec.valuesFiles".into()),
                })),
            ));
            request.values.push(ValuesInput::File(p));
        } else {
            notes.push(missing_values_file(at(f.span.line), &p));
        }
    }
    for from in spec.get("valuesFrom").and_then(Node::as_seq).unwrap_or(&[]) {
        let kind = from.get("kind").and_then(Node::as_str).unwrap_or("");
        let ref_name = from.get("name").and_then(Node::as_str).unwrap_or("");
        let key = from
            .get("valuesKey")
            .and_then(Node::as_str)
            .unwrap_or("values.yaml");
        let optional = from.get("optional").and_then(Node::as_str) == Some("true");
        let target = from.get("targetPath").and_then(Node::as_str);
        let Some((text, location)) =
            values_from(index, kind, ref_name, d.id.namespace.as_deref(), key)
        else {
            if !optional {
                notes.push(Unresolved {
                    location: at(from.span.line),
                    reason: format!(
                        "valuesFrom {kind} {ref_name} (key {key}) is not defined in this repository as plain values; the chart is rendered without it"
                    ),
                });
            }
            continue;
        };
        let (text, target) = match target {
            None => (text, None),
            Some(path) => match at_target_path(path, &text) {
                Some(nested) => (nested, Some(path.into())),
                None => {
                    notes.push(Unresolved {
                        location: at(from.span.line),
                        reason: format!(
                            "valuesFrom {kind} {ref_name}: envfence does not apply targetPath {path} (list indices); the chart is rendered without it"
                        ),
                    });
                    continue;
                }
            },
        };
        evidence.push(Evidence::new(
            location,
            Hop::ValuesFrom(Box::new(ValuesFromHop {
                kind: kind.into(),
                name: ref_name.into(),
                key: key.into(),
                target,
            })),
        ));
        request.values.push(ValuesInput::Inline(text));
    }
    if let Some(e) = spec.entry("values") {
        request.values.push(ValuesInput::Inline(
            to_json(&e.value, &|s| s.to_owned()).to_string(),
        ));
        evidence.push(Evidence::new(
            at(e.key.span.line),
            Hop::InlineValues {
                field: "HelmRelease values".into(),
            },
        ));
    }
    Some(request)
}

/// A HelmRelease's chart that is not in this repository: why (its source, named as
/// [`described_source`] names it), the line of the reference (`spec.chart` or
/// `spec.chartRef`), and the chart's name and version when the HelmRelease says them. `None`
/// for a chart of this repository, and for a GitRepository this repository does not define
/// (it may be this repository's own, as `flux bootstrap` makes it).
pub fn chart_elsewhere(
    index: &RepoIndex<'_>,
    inventory: &crate::topology::clusters::Inventory,
    d: &Document,
) -> Option<RemoteChart> {
    let spec = d.root.get("spec")?;
    if let Some(entry) = spec.entry("chartRef") {
        let kind = entry.value.get("kind").and_then(Node::as_str)?;
        let name = entry.value.get("name").and_then(Node::as_str)?;
        // An ExternalArtifact may be made from this repository (an ArtifactGenerator).
        if kind == "ExternalArtifact" {
            return None;
        }
        return Some(RemoteChart {
            why: format!(
                "its chart comes from {}",
                described_source(index, kind, name)
            ),
            line: entry.key.span.line,
            chart: None,
            version: None,
        });
    }
    let entry = spec.entry("chart")?;
    let chart_spec = entry.value.get("spec")?;
    let source = chart_spec.get("sourceRef")?;
    let kind = source.get("kind").and_then(Node::as_str)?;
    let name = source.get("name").and_then(Node::as_str)?;
    let chart = chart_spec.get("chart").and_then(Node::as_str)?;
    let why = match kind {
        "GitRepository" => match crate::topology::flux::this_repository(index, inventory, name) {
            Err(SourceElsewhere::Other(reason)) => format!("its chart {chart} is in {reason}"),
            Ok(()) | Err(SourceElsewhere::Undefined(_)) => return None,
        },
        _ => format!(
            "its chart {chart} comes from {}",
            described_source(index, kind, name)
        ),
    };
    Some(RemoteChart {
        why,
        line: entry.key.span.line,
        chart: Some(chart.to_owned()),
        version: chart_spec
            .get("version")
            .and_then(Node::as_str)
            .map(str::to_owned),
    })
}

/// A HelmRelease's chart outside this repository ([`chart_elsewhere`]).
pub struct RemoteChart {
    pub why: String,
    pub line: u32,
    pub chart: Option<String>,
    pub version: Option<String>,
}

/// A HelmRelease of a local chart: its render, placed on `cluster` (where it deploys).
#[allow(clippy::too_many_arguments)]
pub fn install(
    index: &RepoIndex<'_>,
    inventory: &crate::topology::clusters::Inventory,
    d: &Document,
    cluster: usize,
    chain: &[Evidence],
    dest_hop: Option<Evidence>,
    signals: &[Signal],
) -> Option<ChartInstall> {
    let (mut values_evidence, mut notes) = (Vec::new(), Vec::new());
    let request = request(index, inventory, d, &mut values_evidence, &mut notes)?;
    let name = d.id.name.clone().unwrap_or_else(|| "?".into());
    let line = d
        .root
        .get("spec")
        .and_then(|s| s.get("chart"))
        .map_or(d.first_line, |c| c.span.line);
    let location = d.at(line);
    let mut hops = chain.to_vec();
    hops.extend(dest_hop);
    hops.push(Evidence::new(
        location.clone(),
        Hop::InstallsChart(Box::new(InstallsChartHop {
            release: name.as_str().into(),
            chart: request.chart.as_str().into(),
        })),
    ));
    Some(ChartInstall {
        delivery: Delivery {
            default_namespace: request.namespace.clone(),
            signals: signals.to_vec(),
            ..Delivery::new(
                Deployer {
                    kind: DeployerKind::Object("HelmRelease"),
                    name: name.to_string(),
                    location,
                },
                cluster,
                request.chart.clone(),
                hops,
            )
        },
        request,
        values_evidence,
        notes,
        fallback: Vec::new(),
        fallback_notes: Vec::new(),
    })
}

/// A `valuesFrom` value merged at `targetPath`, as helm-controller does: the path is read
/// like a `--set` key (`a.b.c`, a backslash before a dot inside a key) and the value typed
/// like `--set` (`true`, `false`, `null` and integers are not strings) unless quoted.
/// Returns the values as JSON; `None` for paths with list indices, not supported here.
fn at_target_path(path: &str, value: &str) -> Option<String> {
    let mut keys: Vec<String> = vec![String::new()];
    let mut chars = path.trim().chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => keys.last_mut()?.push(chars.next()?),
            '.' => keys.push(String::new()),
            '[' | ']' | '=' | ',' => return None,
            c => keys.last_mut()?.push(c),
        }
    }
    if keys.iter().any(String::is_empty) {
        return None;
    }
    let quoted = value.len() >= 2
        && (value.starts_with('"') && value.ends_with('"')
            || value.starts_with('\'') && value.ends_with('\''));
    let mut out = match value {
        _ if quoted => serde_json::Value::String(value[1..value.len() - 1].to_owned()),
        "true" => serde_json::Value::Bool(true),
        "false" => serde_json::Value::Bool(false),
        "null" => serde_json::Value::Null,
        // Like `--set`, a leading zero keeps the value a string.
        v => v
            .parse::<i64>()
            .ok()
            .filter(|_| !v.starts_with('0'))
            .map_or_else(
                || serde_json::Value::String(v.to_owned()),
                serde_json::Value::from,
            ),
    };
    for key in keys.into_iter().rev() {
        out = serde_json::Value::Object(std::iter::once((key, out)).collect());
    }
    Some(out.to_string())
}

/// The values text a `valuesFrom` ConfigMap or Secret of the repository holds under `key`.
fn values_from(
    index: &RepoIndex<'_>,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    key: &str,
) -> Option<(String, Location)> {
    if !matches!(kind, "ConfigMap" | "Secret") {
        return None;
    }
    // The topology's one read of a ConfigMap's data: `reuse` counts on it (see its module).
    index.of_kind(kind).find_map(|(_, d)| {
        if d.id.name.as_deref() != Some(name)
            || (d.id.namespace.is_some()
                && namespace.is_some()
                && d.id.namespace.as_deref() != namespace)
        {
            return None;
        }
        let plain = ["data", "stringData"]
            .into_iter()
            .filter(|section| kind == "ConfigMap" || *section == "stringData")
            .find_map(|section| d.root.get(section)?.entry(key));
        if let Some(e) = plain {
            return Some((e.value.as_str()?.to_owned(), d.at(e.key.span.line)));
        }
        let e = d.root.get("data")?.entry(key)?;
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(e.value.as_str()?.trim())
            .ok()?;
        Some((String::from_utf8(bytes).ok()?, d.at(e.key.span.line)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_path_nests_the_value_like_set() {
        assert_eq!(
            at_target_path("image.tag", "qa").as_deref(),
            Some(r#"{"image":{"tag":"qa"}}"#)
        );
        assert_eq!(
            at_target_path("replicas", "3").as_deref(),
            Some(r#"{"replicas":3}"#)
        );
        assert_eq!(
            at_target_path(r"ingress.annotations.kubernetes\.io/class", "nginx").as_deref(),
            Some(r#"{"ingress":{"annotations":{"kubernetes.io/class":"nginx"}}}"#)
        );
        assert_eq!(
            at_target_path("tag", "\"0123\"").as_deref(),
            Some(r#"{"tag":"0123"}"#)
        );
        assert_eq!(at_target_path("hosts[0]", "x"), None);
        assert_eq!(at_target_path("a..b", "x"), None);
    }
}
