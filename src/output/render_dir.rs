//! `envfence render --out DIR`: every object each cluster receives, as the scan resolved it
//! (after kustomize's edits and Helm rendering), one YAML file per object, laid out as
//! `<cluster>/<namespace>/<kind>-<name>.yaml` so that kubeconform, conftest or Kyverno can
//! check exactly what each environment gets.
//!
//! [`plan`] works out the files (pure, no I/O); [`write`] puts them under a folder that
//! [`check_out_dir`] accepted. Every path segment comes from [`safe_segment`]: cluster names
//! can be URLs and object names can hold anything, and nothing is ever written outside the
//! folder.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use compact_str::CompactString;

use crate::documents::emit::to_yaml;
use crate::documents::yaml::{Node, ScalarKind, Value};
use crate::documents::SourceFile;
use crate::topology::Topology;

/// The namespace folder of cluster-scoped objects (Namespaces, ClusterRoles, CRDs, ...): a
/// leading `_` cannot start a Kubernetes namespace name.
pub const CLUSTER_SCOPED_DIR: &str = "_cluster";

/// The namespace folder of namespaced objects whose namespace nothing sets (neither the
/// object, kustomize nor the deployer): the cluster puts them in the namespace of whoever
/// applies them.
pub const NO_NAMESPACE_DIR: &str = "_unset";

/// What replaces each value of a Secret's `data` (base64 of `redacted`, so that the object
/// stays valid against the Kubernetes schema).
pub const REDACTED_DATA: &str = "cmVkYWN0ZWQ=";

/// What replaces each value of a Secret's `stringData`.
pub const REDACTED_STRING: &str = crate::redact::MASK;

/// Longest path segment written: well under every filesystem's name limit.
const MAX_SEGMENT: usize = 120;

/// One file to write: its path under the output folder, segment by segment, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: Vec<String>,
    pub text: String,
}

/// What `render --out` writes.
#[derive(Debug, Default)]
pub struct Rendered {
    pub files: Vec<RenderedFile>,
    /// Clusters that received at least one object.
    pub clusters: usize,
    /// Objects a kustomize generator makes (ConfigMaps, Secrets from `configMapGenerator`...):
    /// their content is not resolved offline, so they are not written.
    pub generated: usize,
    /// Sentences about names that mapped to one path (each written with a numbered suffix).
    pub notes: Vec<String>,
}

/// The files of every object placed on a cluster: not opaque placements (nothing known of
/// what they deliver), not patches (they change another object). `prefix` puts everything
/// under one more folder (`base`, `head`). The same object delivered twice to one place
/// with the same content is one file.
pub fn plan(topology: &Topology, files: &[SourceFile], prefix: Option<&str>) -> Rendered {
    let mut rendered = Rendered::default();
    let cluster_dirs = cluster_dirs(topology, &mut rendered.notes);
    // (cluster, namespace, file name) → the distinct texts for it, with where each came from.
    let mut places: BTreeMap<(String, String, String), BTreeMap<String, BTreeSet<String>>> =
        BTreeMap::new();
    let mut clusters = BTreeSet::new();
    // Strategic-merge patch files are placed beside the object they patch, under its
    // identity: (cluster, kind, namespace, name) → the patches, in placement order.
    type Identity<'a> = (usize, &'a str, Option<&'a str>, Option<&'a str>);
    let mut patches: BTreeMap<Identity<'_>, Vec<&Node>> = BTreeMap::new();
    for p in topology.placements.iter().filter(|p| p.patch && !p.opaque) {
        let o = &p.object;
        if let Some(doc) = o.doc.and_then(|r| topology.document(files, r)) {
            patches
                .entry((
                    p.cluster,
                    &o.kind,
                    o.namespace.as_deref(),
                    o.name.as_deref(),
                ))
                .or_default()
                .push(&doc.root);
        }
    }
    for p in &topology.placements {
        if p.opaque || p.patch {
            continue;
        }
        let Some(doc_ref) = p.object.doc else {
            rendered.generated += 1;
            continue;
        };
        let Some(doc) = topology.document(files, doc_ref) else {
            continue;
        };
        let Some(cluster_dir) = cluster_dirs.get(p.cluster) else {
            continue;
        };
        let kind = &p.object.kind;
        let namespace = match &p.object.namespace {
            _ if crate::topology::expand::kustomize::is_cluster_scoped(kind) => {
                CLUSTER_SCOPED_DIR.to_owned()
            }
            Some(ns) => {
                let dir = safe_segment(ns);
                if dir == CLUSTER_SCOPED_DIR || dir == NO_NAMESPACE_DIR {
                    format!("{dir}_")
                } else {
                    dir
                }
            }
            None => NO_NAMESPACE_DIR.to_owned(),
        };
        let name = p.object.name.as_deref().unwrap_or("_unnamed");
        let file_name = safe_segment(&format!("{}-{name}", kind.to_ascii_lowercase()));
        let mut object = doc.root.clone();
        let o = &p.object;
        let identity = (
            p.cluster,
            &*o.kind,
            o.namespace.as_deref(),
            o.name.as_deref(),
        );
        for patch in patches.get(&identity).into_iter().flatten() {
            crate::topology::kustomize::strategic_merge(&mut object, patch);
        }
        let mut object = redacted(&object);
        as_placed(&mut object, o, kind_is_namespaced(kind));
        let text = to_yaml(&object);
        clusters.insert(p.cluster);
        places
            .entry((cluster_dir.clone(), namespace, file_name))
            .or_default()
            .entry(text)
            .or_default()
            .insert(format!(
                "{} {}/{} from {}:{}",
                p.object.kind,
                p.object.namespace.as_deref().unwrap_or("-"),
                name,
                p.object.file,
                p.object.line
            ));
    }
    rendered.clusters = clusters.len();
    let taken: BTreeSet<(String, String, String)> = places.keys().cloned().collect();
    let mut numbered: BTreeSet<(String, String, String)> = BTreeSet::new();
    for ((cluster, namespace, stem), texts) in places {
        let mut written = Vec::new();
        for (i, (text, sources)) in texts.into_iter().enumerate() {
            let stem = if i == 0 {
                stem.clone()
            } else {
                // The first free `<stem>_<n>`: `_` is in no Kubernetes name.
                let mut n = i + 1;
                loop {
                    let candidate = format!("{stem}_{n}");
                    let key = (cluster.clone(), namespace.clone(), candidate.clone());
                    if !taken.contains(&key) && numbered.insert(key) {
                        break candidate;
                    }
                    n += 1;
                }
            };
            let source = sources.into_iter().next().unwrap_or_default();
            written.push(format!("{stem}.yaml ({source})"));
            rendered.files.push(RenderedFile {
                path: prefix
                    .map(str::to_owned)
                    .into_iter()
                    .chain([cluster.clone(), namespace.clone(), format!("{stem}.yaml")])
                    .collect(),
                text,
            });
        }
        if written.len() > 1 {
            rendered.notes.push(format!(
                "{} different objects map to {}/{}/{stem}.yaml; written as {}",
                written.len(),
                cluster,
                namespace,
                written.join(", ")
            ));
        }
    }
    rendered
}

/// The folder of each cluster, by index: its name made safe, numbered when two names map to
/// one folder.
fn cluster_dirs(topology: &Topology, notes: &mut Vec<String>) -> Vec<String> {
    let mut used: BTreeMap<String, String> = BTreeMap::new();
    let mut dirs = Vec::with_capacity(topology.clusters.len());
    for cluster in &topology.clusters {
        let base = safe_segment(&cluster.name);
        let mut dir = base.clone();
        let mut n = 1;
        while let Some(other) = used.get(&dir) {
            if *other == cluster.name {
                break;
            }
            n += 1;
            dir = format!("{base}_{n}");
        }
        if n > 1 {
            notes.push(format!(
                "clusters {:?} and {:?} map to one folder name; the second is written to {dir}",
                used.get(&base).map(String::as_str).unwrap_or_default(),
                cluster.name
            ));
        }
        used.insert(dir.clone(), cluster.name.clone());
        dirs.push(dir);
    }
    dirs
}

/// A file or folder name for any text: ASCII letters, digits, `.`, `-` and `_` kept, anything
/// else `_`; never empty, never starting or ending with `.` (no `..`, no hidden files), at
/// most [`MAX_SEGMENT`] bytes. Different texts can map to one name; [`plan`] numbers them.
pub fn safe_segment(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_SEGMENT)
        .collect();
    if out.starts_with('.') {
        out.replace_range(..1, "_");
    }
    if out.ends_with('.') {
        out.pop();
        out.push('_');
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// The object with a Secret's values replaced: each value of `data` by [`REDACTED_DATA`] and
/// of `stringData` by [`REDACTED_STRING`]; keys stay, so a check can still see which exist.
fn redacted(root: &Node) -> Node {
    let mut node = root.clone();
    if root.get("kind").and_then(Node::as_str) != Some("Secret") {
        return node;
    }
    if let Value::Map(entries) = &mut node.value {
        for entry in entries.iter_mut() {
            let mask = match entry.key.as_str() {
                Some("data") => REDACTED_DATA,
                Some("stringData") => REDACTED_STRING,
                _ => continue,
            };
            if let Value::Map(values) = &mut entry.value.value {
                for v in values.iter_mut() {
                    v.value.set_quoted(mask);
                }
            } else if !entry.value.is_null() {
                // Not a mapping: nothing of it is shown.
                entry.value.set_quoted(mask);
            }
        }
    }
    node
}

fn kind_is_namespaced(kind: &str) -> bool {
    !crate::topology::expand::kustomize::is_cluster_scoped(kind)
}

/// A scalar node of `text`, quoted (the emitter writes it plain when that reads the same).
fn text_node(text: &str) -> Node {
    Node::new(
        Default::default(),
        ScalarKind::Quoted,
        Value::Scalar(CompactString::from(text)),
    )
}

/// Sets `key` of a mapping node to `value`, adding the entry when it is missing.
fn set(map: &mut Node, key: &str, value: &str) {
    let Value::Map(entries) = &mut map.value else {
        return;
    };
    if let Some(entry) = entries
        .iter_mut()
        .rev()
        .find(|e| e.key.as_str() == Some(key))
    {
        entry.value = text_node(value);
        return;
    }
    let mut grown = std::mem::take(entries).into_vec();
    grown.push(crate::documents::yaml::Entry {
        key: text_node(key),
        value: text_node(value),
    });
    *entries = grown.into_boxed_slice();
}

/// The document as the placement delivers it: kustomize's name prefixes and suffixes, the
/// namespace (kustomize's, or the deployer's for objects without one), and `images:`
/// overrides are in the placement, not in the document's tree.
fn as_placed(root: &mut Node, object: &crate::topology::PlacedObject, namespaced: bool) {
    if let Value::Map(entries) = &mut root.value {
        if let Some(meta) = entries
            .iter_mut()
            .rev()
            .find(|e| e.key.as_str() == Some("metadata"))
        {
            if let Some(name) = &object.name {
                set(&mut meta.value, "name", name);
            }
            if let (true, Some(ns)) = (namespaced, &object.namespace) {
                set(&mut meta.value, "namespace", ns);
            }
        }
    }
    if object.images.is_empty() {
        return;
    }
    // Each image at the line of its `image:` field.
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        match &mut node.value {
            Value::Map(entries) => {
                for e in entries.iter_mut() {
                    let line = e.value.span.line;
                    let image = object.images.iter().find(|(_, l)| *l == line);
                    match image {
                        Some((image, _))
                            if e.key.as_str() == Some("image") && e.value.as_str().is_some() =>
                        {
                            e.value = text_node(image);
                        }
                        _ => stack.push(&mut e.value),
                    }
                }
            }
            Value::Seq(items) => stack.extend(items.iter_mut()),
            Value::Scalar(_) => {}
        }
    }
}

/// Why `out` cannot receive the files, or `None` when it can: it must be outside the scanned
/// repository `repo_root` (a later scan would read the files back as manifests) and empty
/// (nothing of someone else's is overwritten); a missing folder is made by [`write`].
pub fn check_out_dir(out: &Path, repo_root: &Path) -> Option<String> {
    // Where the folder is, or would be: its nearest existing ancestor, resolved.
    let mut existing = out.to_path_buf();
    let mut rest = Vec::new();
    let resolved = loop {
        if let Ok(path) = std::fs::canonicalize(&existing) {
            break path;
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_owned());
                existing = if parent.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    parent.to_path_buf()
                };
            }
            _ => return Some(format!("{} cannot be resolved", out.display())),
        }
    };
    let root = std::fs::canonicalize(repo_root).unwrap_or_else(|_| repo_root.to_path_buf());
    if resolved.starts_with(&root) {
        return Some(format!(
            "{} is inside the scanned repository {}: write the objects outside it (a later scan would read them as manifests)",
            out.display(),
            repo_root.display()
        ));
    }
    if rest.is_empty() {
        if !resolved.is_dir() {
            return Some(format!("{} is not a folder", out.display()));
        }
        match std::fs::read_dir(&resolved) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Some(format!(
                        "{} is not empty: give a new or empty folder",
                        out.display()
                    ));
                }
            }
            Err(e) => return Some(format!("cannot read {}: {e}", out.display())),
        }
    }
    None
}

/// Writes the files under `out` (made if missing), each file new: an existing file is never
/// overwritten or followed through a symlink.
pub fn write(out: &Path, rendered: &Rendered) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    for file in &rendered.files {
        let mut path = out.to_path_buf();
        for segment in &file.path {
            path.push(segment);
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        f.write_all(file.text.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_safe_file_names() {
        assert_eq!(safe_segment("prod-eu"), "prod-eu");
        assert_eq!(
            safe_segment("https://kubernetes.default.svc:443"),
            "https___kubernetes.default.svc_443"
        );
        assert_eq!(safe_segment(".."), "__");
        assert_eq!(safe_segment("../../etc"), "_._.._etc");
        assert_eq!(safe_segment(".hidden"), "_hidden");
        assert_eq!(safe_segment(""), "_");
        assert_eq!(safe_segment("a\0b/c\\d"), "a_b_c_d");
        assert_eq!(safe_segment(&"x".repeat(500)).len(), MAX_SEGMENT);
        for s in ["..", "../x", "a/../b", ".", "/", "\0"] {
            let seg = safe_segment(s);
            assert!(!seg.contains('/') && !seg.contains('\0') && !seg.starts_with('.'));
        }
    }

    #[test]
    fn secret_values_are_redacted_and_keys_kept() {
        let stream = crate::documents::yaml::parse_stream(
            "kind: Secret\nmetadata: {name: s}\ndata: {password: aHVudGVyMg==}\nstringData: {token: abc}\n",
        );
        let text = to_yaml(&redacted(&stream.docs[0].root));
        assert!(
            !text.contains("aHVudGVyMg==") && !text.contains("abc"),
            "{text}"
        );
        assert!(
            text.contains(&format!("password: {REDACTED_DATA}")),
            "{text}"
        );
        assert!(text.contains("token: \"****\""), "{text}");
    }
}
