//! Where a value of a rendered object was set: the values-file line, inline `values:` block
//! or parameter of the render that holds it. A finding about a value (a production URL in a
//! test's env, an image tag) points there, since that is the line an author changes; the
//! template line stays in the evidence.
//!
//! The lookup goes by value, not by key path (envfence does not evaluate templates): the
//! sources are searched from the one helm applies last (parameters, then inline blocks, then
//! value files from last to first, then the chart's `values.yaml`), and the first scalar that
//! sets the value wins. A scalar sets it when it is the value itself, or a part of it that
//! holds what the finding is about (the host of a URL, an image's tag): see [`Wanted`].

use std::sync::Arc;

use crate::documents::yaml::{self, Node, ScalarKind, Value};
use crate::documents::SourceFile;
use crate::evidence::{Evidence, Hop};
use crate::location::Location;

use crate::topology::expand::helm::{RenderRequest, ValuesInput};
use crate::topology::HashMap;

/// The value sources of one render, in the order helm applies them (the last wins).
#[derive(Debug, Clone, Default)]
pub struct ValueSources {
    sources: Vec<Source>,
}

#[derive(Debug, Clone)]
enum Source {
    /// A repository file of values (the chart's `values.yaml`, a `valueFiles` entry).
    File(Arc<str>),
    /// An inline block, at the line of its key (`helm.values`, `valuesObject`, a
    /// HelmRelease's `values`, a `valuesFrom` ConfigMap key).
    Inline(Location),
    /// `helm.parameters` (name, value, the line that sets it).
    Parameters(Vec<(String, String, Location)>),
}

/// What a finding is about, in a rendered value.
pub struct Wanted<'a> {
    /// The whole rendered value.
    pub value: &'a str,
    /// Parts of it that a values scalar may set alone: a host, an image tag.
    pub parts: Vec<String>,
}

impl Wanted<'_> {
    /// A scalar sets the value when it is the value, one of its parts, or a piece of the
    /// value that holds a part (`postgres://db.prod.example.com` of
    /// `postgres://db.prod.example.com/x`).
    fn set_by(&self, scalar: &str) -> bool {
        let scalar = scalar.trim();
        if scalar.is_empty() {
            return false;
        }
        scalar == self.value
            || self.parts.iter().any(|p| {
                scalar == p || (scalar.contains(p.as_str()) && self.value.contains(scalar))
            })
    }
}

/// Where a value was set: the line, and how the evidence names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub location: Location,
    pub note: String,
}

impl ValueSources {
    /// The sources of a render, each located with the values evidence its deployer gave
    /// (inline blocks and parameters carry their line there).
    pub fn new(request: &RenderRequest, values_evidence: &[Evidence]) -> Self {
        let mut sources = vec![Source::File(Arc::from(
            format!("{}/values.yaml", request.chart).trim_start_matches('/'),
        ))];
        let is_parameter = |e: &&Evidence| matches!(*e.hop, Hop::Parameter(_));
        let mut inline_at = values_evidence
            .iter()
            .filter(|e| !matches!(*e.hop, Hop::ValuesFile(_)) && !is_parameter(e))
            .map(|e| e.location.clone());
        for v in &request.values {
            match v {
                ValuesInput::File(f) => sources.push(Source::File(Arc::from(f.as_str()))),
                ValuesInput::Inline(_) => {
                    if let Some(at) = inline_at.next() {
                        sources.push(Source::Inline(at));
                    }
                }
            }
        }
        // Parameters and their hops come in the same order.
        let set: Vec<(String, String, Location)> = request
            .set
            .iter()
            .zip(values_evidence.iter().filter(is_parameter))
            .map(|((k, v, _), e)| (k.clone(), v.clone(), e.location.clone()))
            .collect();
        if !set.is_empty() {
            sources.push(Source::Parameters(set));
        }
        ValueSources { sources }
    }

    /// The repository files of values the render read, the chart's `values.yaml` first
    /// (what a change to the render's inputs goes through).
    pub fn files(&self) -> impl Iterator<Item = &Arc<str>> {
        self.sources.iter().filter_map(|s| match s {
            Source::File(path) => Some(path),
            _ => None,
        })
    }

    /// The line that sets `wanted`, searching the source helm applies last first.
    pub fn origin(
        &self,
        files: &[SourceFile],
        by_path: &HashMap<&str, usize>,
        wanted: &Wanted<'_>,
    ) -> Option<Origin> {
        let file = |path: &str| by_path.get(path).and_then(|&i| files.get(i));
        self.sources.iter().rev().find_map(|source| match source {
            Source::Parameters(set) => set.iter().rev().find_map(|(name, value, at)| {
                wanted.set_by(value).then(|| Origin {
                    location: at.clone(),
                    note: format!("helm.parameters {name} = {value}"),
                })
            }),
            Source::File(path) => {
                let f = file(path)?;
                f.documents.iter().find_map(|d| {
                    let (key, scalar) = find_scalar(&d.root, wanted)?;
                    Some(Origin {
                        location: Location::new(&f.path, scalar.span.line),
                        note: format!("{key} = {} in {path}", scalar_text(scalar)?),
                    })
                })
            }
            Source::Inline(at) => {
                let f = file(&at.file)?;
                let block = f
                    .documents
                    .iter()
                    .find_map(|d| entry_at_line(&d.root, at.line))?;
                inline_origin(&f.path, block, wanted)
            }
        })
    }
}

/// An inline block's line that sets the value: the scalar's own line in a mapping, the line
/// inside a `|` block of YAML text, else (JSON or quoted text) the block's key line.
fn inline_origin(file: &Arc<str>, block: (&Node, &Node), wanted: &Wanted<'_>) -> Option<Origin> {
    let (key, value) = block;
    let name = key.as_str().unwrap_or("values");
    if let Value::Scalar(text) = &value.value {
        // A single value (a `valuesFrom` key merged at a `targetPath`).
        if wanted.set_by(text) {
            return Some(Origin {
                location: Location::new(file, key.span.line),
                note: format!("{name} = {}", text.trim()),
            });
        }
        let stream = yaml::parse_stream(text);
        let (path, scalar) = stream
            .docs
            .iter()
            .find_map(|d| find_scalar(&d.root, wanted))?;
        // A block scalar's text begins on the line after its `|`.
        let line = if value.scalar_kind() == ScalarKind::Block {
            value.span.line + scalar.span.line
        } else {
            key.span.line
        };
        return Some(Origin {
            location: Location::new(file, line),
            note: format!("{path} = {} in {name}", scalar_text(scalar)?),
        });
    }
    let (path, scalar) = find_scalar(value, wanted)?;
    Some(Origin {
        location: Location::new(file, scalar.span.line),
        note: format!("{path} = {} in {name}", scalar_text(scalar)?),
    })
}

fn scalar_text(node: &Node) -> Option<&str> {
    match &node.value {
        Value::Scalar(text) => Some(text),
        _ => None,
    }
}

/// The first scalar under `root` (document order) that sets the value, with its key path
/// (`db.url`, `hosts[0]`). Iterative: values files may nest deeply.
fn find_scalar<'n>(root: &'n Node, wanted: &Wanted<'_>) -> Option<(String, &'n Node)> {
    let mut stack: Vec<(String, &Node)> = vec![(String::new(), root)];
    while let Some((path, node)) = stack.pop() {
        match &node.value {
            Value::Scalar(text) => {
                if !path.is_empty() && wanted.set_by(text) {
                    return Some((path, node));
                }
            }
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate().rev() {
                    stack.push((format!("{path}[{i}]"), item));
                }
            }
            Value::Map(entries) => {
                for e in entries.iter().rev() {
                    let key = e.key.as_str().unwrap_or("?");
                    let child = if path.is_empty() {
                        key.to_owned()
                    } else {
                        format!("{path}.{key}")
                    };
                    stack.push((child, &e.value));
                }
            }
        }
    }
    None
}

/// The (key, value) of the mapping entry whose key sits on `line`.
fn entry_at_line(root: &Node, line: u32) -> Option<(&Node, &Node)> {
    root.find_entry(|e| e.key.span.line == line && e.key.as_str().is_some())
        .map(|e| (&e.key, &e.value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted<'a>(value: &'a str, parts: &[&str]) -> Wanted<'a> {
        Wanted {
            value,
            parts: parts.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_scalar_sets_the_value_or_the_part_the_finding_is_about() {
        let w = wanted("postgres://db.prod.example.com/x", &["db.prod.example.com"]);
        assert!(w.set_by("postgres://db.prod.example.com/x"));
        assert!(w.set_by("db.prod.example.com"));
        assert!(w.set_by("postgres://db.prod.example.com"));
        assert!(!w.set_by("postgres"));
        assert!(!w.set_by("db.prod.example.com.evil"));
        assert!(!w.set_by(""));
        let image = wanted("nginx:qa", &["qa"]);
        assert!(image.set_by("qa"));
        assert!(!image.set_by("nginx"));
    }

    #[test]
    fn finds_the_key_path_and_line_of_a_nested_scalar() {
        let stream = yaml::parse_stream("image:\n  tag: stable\ndb:\n  hosts:\n    - a.example.com\n    - db.prod.example.com\n");
        let root = &stream.docs[0].root;
        let (path, node) = find_scalar(root, &wanted("db.prod.example.com", &[])).expect("found");
        assert_eq!(path, "db.hosts[1]");
        assert_eq!(node.span.line, 6);
    }
}
