//! Helm's output as placed files: `helm template` output split at each `# Source:` document,
//! each rendered line aligned with the template line it comes from, and an object that only
//! the values name anchored at that values line. Findings on rendered objects point at these
//! lines, so the alignment is kept in one place with its tests.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::documents::{self, SourceFile};
use crate::topology::expand::helm::RenderRequest;
use crate::topology::index::{self, DocRef};

/// Splits `helm template` output at each `# Source:` document into files placed like
/// manifests: at the template (lines aligned with its text), or at the values-file line that
/// names an object which only the values define.
///
/// `templates` holds the text of the chart's template and CRD files (by path inside the chart)
/// as they were handed to helm: a `# Source:` line is the chart's own output, so the path it
/// names is only looked up there, never opened. One that is not among them (a packaged
/// subchart, or a path with `..`) is placed at the chart's `Chart.yaml`, line 1.
pub(super) fn split_output(
    root: &Path,
    r: &RenderRequest,
    text: &str,
    templates: &HashMap<String, String>,
) -> Vec<SourceFile> {
    let value_files: Vec<(String, String)> = r
        .value_files()
        .map(|f| {
            (
                f.to_owned(),
                std::fs::read_to_string(root.join(f)).unwrap_or_default(),
            )
        })
        .collect();
    let mut out = Vec::new();
    for chunk in chunks(text) {
        let Some(source) = chunk.source else { continue };
        // `# Source: <chart name>/templates/x.yaml`: the first segment is the chart's name.
        let within = source.split_once('/').map_or(source, |(_, rest)| rest);
        let plain = within
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
        let template_text = templates.get(within).filter(|_| plain);
        let template = match template_text {
            Some(_) => index::join(&r.chart, within, false).unwrap_or_default(),
            // A packaged subchart, or a path the chart made up: point at the chart itself.
            None => format!("{}/Chart.yaml", r.chart)
                .trim_start_matches('/')
                .to_owned(),
        };
        let path: Arc<str> = Arc::from(template.as_str());
        let template_lines: Vec<&str> = template_text.map_or("", String::as_str).lines().collect();
        let map = align(&chunk.lines, &template_lines);
        // A trailing newline: a block scalar that ends the input needs its line break.
        let body = format!("{}\n", chunk.lines.join("\n"));
        let Some(file) = documents::load_rendered(&path, &body, &|line| {
            map.get(line as usize - 1).copied().unwrap_or(1)
        }) else {
            continue;
        };
        for doc in split_documents(file) {
            out.push(anchor_to_values(doc, &template_lines, &value_files));
        }
    }
    out
}

struct Chunk<'a> {
    source: Option<&'a str>,
    lines: Vec<&'a str>,
}

/// The documents of helm's output, each with the template it came from.
fn chunks(text: &str) -> Vec<Chunk<'_>> {
    let mut out: Vec<Chunk<'_>> = Vec::new();
    for line in text.lines() {
        if line == "---" || out.is_empty() {
            out.push(Chunk {
                source: None,
                lines: Vec::new(),
            });
            if line == "---" {
                continue;
            }
        }
        let Some(current) = out.last_mut() else {
            continue;
        };
        if current.lines.is_empty() && current.source.is_none() {
            if let Some(source) = line.strip_prefix("# Source: ") {
                current.source = Some(source.trim());
                continue;
            }
        }
        current.lines.push(line);
    }
    out
}

/// For each rendered line, the template line it most likely comes from: the same text, else
/// the same key, searching forward from the previous match; else the previous match.
fn align(rendered: &[&str], template: &[&str]) -> Vec<u32> {
    let mut map = Vec::with_capacity(rendered.len());
    let mut cursor = 0usize;
    let mut last = 1u32;
    let key_of = |line: &str| -> Option<String> {
        let t = line.trim().trim_start_matches("- ");
        let (k, _) = t.split_once(':')?;
        (!k.is_empty() && !k.contains(' ') && !k.contains("{{")).then(|| format!("{k}:"))
    };
    for line in rendered {
        let t = line.trim();
        if t.is_empty() || template.is_empty() || template.len() > 5000 {
            map.push(last);
            continue;
        }
        let found = (cursor..template.len())
            .find(|&i| template[i].trim() == t)
            .or_else(|| {
                let key = key_of(line)?;
                (cursor..template.len()).find(|&i| {
                    template[i]
                        .trim()
                        .trim_start_matches("- ")
                        .starts_with(key.as_str())
                })
            });
        if let Some(i) = found {
            cursor = i + 1;
            last = u32::try_from(i + 1).unwrap_or(u32::MAX);
        }
        map.push(last);
    }
    map
}

/// One file per document, so that each can be placed at its own location.
fn split_documents(file: SourceFile) -> Vec<SourceFile> {
    let SourceFile {
        path,
        kind,
        documents,
        problem,
    } = file;
    documents
        .iter()
        .filter(|d| d.is_manifest())
        .map(|d| {
            let mut d = d.clone();
            d.index = 0;
            SourceFile {
                path: Arc::clone(&path),
                kind,
                documents: Arc::new([d]),
                problem: problem.clone(),
            }
        })
        .collect()
}

/// An object whose name the template does not spell but a values file does (one entry of a
/// `range` over the values) is shown at that values line: that is the line to change.
fn anchor_to_values(
    mut file: SourceFile,
    template: &[&str],
    value_files: &[(String, String)],
) -> SourceFile {
    let Some(name) = file.documents.first().and_then(|d| d.id.name.clone()) else {
        return file;
    };
    if template.iter().any(|l| l.contains(name.as_str())) {
        return file;
    }
    let wanted = [
        format!("name: {name}"),
        format!("name: \"{name}\""),
        format!("name: '{name}'"),
        format!("{name}:"),
        format!("\"{name}\":"),
    ];
    for (path, text) in value_files.iter().rev() {
        let hit = text.lines().position(|l| {
            let t = l.trim().trim_start_matches("- ");
            wanted.iter().any(|w| t == w)
        });
        if let Some(i) = hit {
            let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let path: Arc<str> = Arc::from(path.as_str());
            file.path = Arc::clone(&path);
            for d in Arc::make_mut(&mut file.documents) {
                documents::move_to(d, &path, line);
            }
            return file;
        }
    }
    file
}

/// The rendered documents of a render, as references.
pub fn rendered_docs(files: &[usize]) -> Vec<DocRef> {
    files.iter().map(|&file| DocRef { file, doc: 0 }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_output_splits_at_sources() {
        let text = "---\n# Source: web/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\n---\n# Source: web/templates/b.yaml\napiVersion: v1\nkind: Service\n";
        let c = chunks(text);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].source, Some("web/templates/a.yaml"));
        assert_eq!(c[1].lines, vec!["apiVersion: v1", "kind: Service"]);
    }

    #[test]
    fn lines_align_with_the_template() {
        let template = [
            "apiVersion: v1",
            "kind: ConfigMap",
            "metadata:",
            "  name: {{ .Release.Name }}",
            "data:",
            "  url: {{ .Values.url }}",
        ];
        let rendered = [
            "apiVersion: v1",
            "kind: ConfigMap",
            "metadata:",
            "  name: web",
            "data:",
            "  url: https://x",
        ];
        assert_eq!(align(&rendered, &template), vec![1, 2, 3, 4, 5, 6]);
    }
}
