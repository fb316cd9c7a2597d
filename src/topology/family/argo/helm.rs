//! Argo CD's Helm: an Application source's `helm:` block (value files, inline values,
//! parameters, release name) read and turned into the render it asks of the Helm engine
//! (`crate::topology::expand::helm`). The engine does not know Argo CD; this is where its
//! reading of a chart install lives.

use crate::evidence::{Evidence, Hop, ParameterHop, ValuesFileHop};
use std::sync::Arc;

use crate::documents::Node;
use crate::location::Location;
use crate::topology::expand::helm::{
    missing_values_file, to_json, RenderFlags, RenderRequest, ValuesInput,
};
use crate::topology::index::{self, RepoIndex};
use crate::topology::Unresolved;

/// An Argo CD source's `helm:` block, with strings already substituted.
#[derive(Debug, Clone, Default)]
pub struct ArgoHelm {
    pub line: u32,
    pub value_files: Vec<(String, u32)>,
    pub values: Option<(String, u32)>,
    pub values_object: Option<(String, u32)>,
    pub parameters: Vec<(String, String, bool)>,
    /// The line of each parameter's `value:` (else its `- name:`), in `parameters` order.
    pub parameter_lines: Vec<u32>,
    pub release_name: Option<String>,
    pub ignore_missing: bool,
}

impl ArgoHelm {
    pub fn read(source: &Node, subst: &dyn Fn(&str) -> String) -> Option<ArgoHelm> {
        let helm = source.get("helm")?;
        let mut out = ArgoHelm {
            line: helm.span.line,
            ..ArgoHelm::default()
        };
        for f in helm.get("valueFiles").and_then(Node::as_seq).unwrap_or(&[]) {
            if let Some(s) = f.as_str() {
                out.value_files.push((subst(s), f.span.line));
            }
        }
        if let Some(e) = helm.entry("values") {
            if let Some(s) = e.value.as_str() {
                out.values = Some((subst(s), e.key.span.line));
            } else if e.value.as_map().is_some() {
                out.values = Some((to_json(&e.value, subst).to_string(), e.key.span.line));
            }
        }
        if let Some(e) = helm.entry("valuesObject") {
            out.values_object = Some((to_json(&e.value, subst).to_string(), e.key.span.line));
        }
        for p in helm.get("parameters").and_then(Node::as_seq).unwrap_or(&[]) {
            if let (Some(n), Some(v)) = (
                p.get("name").and_then(Node::as_str),
                p.get("value").and_then(Node::as_str),
            ) {
                let string = p.get("forceString").and_then(Node::as_str) == Some("true");
                out.parameters.push((subst(n), subst(v), string));
                let line = p.entry("value").map_or(p.span.line, |e| e.key.span.line);
                out.parameter_lines.push(line);
            }
        }
        out.release_name = helm.get("releaseName").and_then(Node::as_str).map(subst);
        out.ignore_missing =
            helm.get("ignoreMissingValueFiles").and_then(Node::as_str) == Some("true");
        Some(out)
    }
}

/// The render an Argo CD Application source asks for. `refs` are the other sources' `ref`
/// names (multi-source `$values/...`); `notes` collects value files that cannot be read.
#[allow(clippy::too_many_arguments)]
pub fn request(
    index: &RepoIndex<'_>,
    chart: &str,
    app_name: &str,
    namespace: Option<&str>,
    helm: Option<&ArgoHelm>,
    refs: &[String],
    file: &Arc<str>,
    evidence: &mut Vec<Evidence>,
    notes: &mut Vec<Unresolved>,
) -> RenderRequest {
    let mut request = RenderRequest {
        chart: chart.to_owned(),
        release: app_name.to_owned(),
        namespace: namespace.map(str::to_owned),
        values: Vec::new(),
        set: Vec::new(),
        flags: RenderFlags::default(),
    };
    let Some(h) = helm else { return request };
    if let Some(r) = &h.release_name {
        request.release.clone_from(r);
    }
    for (f, line) in &h.value_files {
        // `$values/envs/prod.yaml`: a path in the source whose `ref` is `values` — this
        // repository when the file is here.
        let resolved = match f.strip_prefix('$') {
            Some(rest) => {
                let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
                if refs.iter().any(|r| r == name) {
                    index::join("", path, true)
                } else {
                    None
                }
            }
            None => index::join(chart, f, false),
        };
        match resolved.filter(|p| index.file(p).is_some()) {
            Some(p) => {
                evidence.push(Evidence::new(
                    Location::new(&Arc::from(p.as_str()), 1),
                    Hop::ValuesFile(Box::new(ValuesFileHop {
                        path: p.as_str().into(),
                        via: Some("helm.valueFiles".into()),
                    })),
                ));
                request.values.push(ValuesInput::File(p));
            }
            None if h.ignore_missing => {}
            None => notes.push(missing_values_file(Location::new(file, *line), f)),
        }
    }
    if let Some((text, line)) = &h.values {
        request.values.push(ValuesInput::Inline(text.clone()));
        evidence.push(Evidence::new(
            Location::new(file, *line),
            Hop::InlineValues {
                field: "helm.values".into(),
            },
        ));
    }
    if let Some((text, line)) = &h.values_object {
        request.values.push(ValuesInput::Inline(text.clone()));
        evidence.push(Evidence::new(
            Location::new(file, *line),
            Hop::InlineValues {
                field: "helm.valuesObject".into(),
            },
        ));
    }
    request.set.clone_from(&h.parameters);
    // One hop per parameter, at its own line: a finding about a value a parameter sets
    // points there (see `ValueSources::new`).
    for ((name, value, _), line) in h.parameters.iter().zip(&h.parameter_lines) {
        evidence.push(Evidence::new(
            Location::new(file, *line),
            Hop::Parameter(Box::new(ParameterHop {
                name: name.as_str().into(),
                value: value.as_str().into(),
            })),
        ));
    }
    request
}
