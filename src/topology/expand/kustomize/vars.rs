//! kustomize's `vars` (deprecated for replacements, still built by kubectl): a var names a
//! field of one object (`objref`, `fieldref.fieldpath`, `metadata.name` by default), and every
//! `$(NAME)` in the fields vars reach (container `args`, `command`, env values and mount paths,
//! metadata labels and annotations, Ingress hosts, and the `varReference` paths of the
//! kustomizations' `configurations` files) becomes that field's value. kustomize substitutes
//! once, at the top of a build, with the vars of every kustomization under it: these are the
//! edits a kustomization has only when it is the top ([`super::edit::Edits::at_root`]).

use std::sync::Arc;

use compact_str::CompactString;

use crate::documents::{Node, Value};
use crate::location::Location;
use crate::topology::index::{self, RepoIndex};
use crate::topology::{HashMap, HashSet};

/// One `vars` entry.
pub(super) struct Var {
    pub name: String,
    pub kind: Option<String>,
    pub object: Option<String>,
    pub api_version: Option<String>,
    pub field: String,
    pub location: Location,
}

/// A field vars reach, from a `configurations` file: a `/`-separated path, for one kind or
/// all.
pub(super) struct Reach {
    pub kind: Option<String>,
    pub path: Vec<String>,
}

/// The vars and `varReference` paths of the kustomization file `k`.
pub(super) fn read(index: &RepoIndex<'_>, k: usize, vars: &mut Vec<Var>, reach: &mut Vec<Reach>) {
    let f = &index.files[k];
    let Some(root) = f.documents.first().map(|d| &d.root) else {
        return;
    };
    for v in root.get("vars").and_then(Node::as_seq).unwrap_or(&[]) {
        let Some(name) = v.get("name").and_then(Node::as_str) else {
            continue;
        };
        let objref = v.get("objref");
        let text = |k: &str| {
            objref
                .and_then(|o| o.get(k))
                .and_then(Node::as_str)
                .map(str::to_owned)
        };
        vars.push(Var {
            name: name.to_owned(),
            kind: text("kind"),
            object: text("name"),
            api_version: text("apiVersion"),
            field: v
                .get("fieldref")
                .and_then(|r| r.get("fieldpath"))
                .and_then(Node::as_str)
                .unwrap_or("metadata.name")
                .to_owned(),
            location: Location::new(&f.path, v.span.line),
        });
    }
    let dir = index::parent(&f.path);
    for (entry, _) in super::string_entries(root, "configurations") {
        let Some(cf) = index::join(dir, &entry, false).and_then(|p| index.file(&p)) else {
            continue;
        };
        for doc in index.files[cf].documents.iter() {
            for r in doc
                .root
                .get("varReference")
                .and_then(Node::as_seq)
                .unwrap_or(&[])
            {
                let Some(path) = r.get("path").and_then(Node::as_str) else {
                    continue;
                };
                reach.push(Reach {
                    kind: r.get("kind").and_then(Node::as_str).map(str::to_owned),
                    path: path.split('/').map(str::to_owned).collect(),
                });
            }
        }
    }
}

/// Whether the kustomization file `k` declares vars.
pub(super) fn declares(index: &RepoIndex<'_>, k: usize) -> bool {
    index.files[k]
        .documents
        .first()
        .and_then(|d| d.root.get("vars"))
        .and_then(Node::as_seq)
        .is_some_and(|v| !v.is_empty())
}

/// The folders of the kustomizations that declare vars, or include (through `resources`,
/// `bases` or `components`, at any depth) one that does: the builds vars apply to.
pub(super) fn builds_with_vars(index: &RepoIndex<'_>) -> HashSet<String> {
    use rayon::prelude::*;
    let is_kustomization =
        |f: &crate::documents::SourceFile| f.kind == crate::documents::FileKind::Kustomization;
    // Every kustomization of a monorepo is asked (on all cores); most repositories have
    // no vars, and then nothing more is done.
    let declaring: Vec<&str> = index
        .files
        .par_iter()
        .enumerate()
        .filter(|(k, f)| is_kustomization(f) && declares(index, *k))
        .map(|(_, f)| index::parent(&f.path))
        .collect();
    if declaring.is_empty() {
        return HashSet::default();
    }
    let mut out: HashSet<String> = declaring.into_iter().map(str::to_owned).collect();
    let kustomizations: Vec<(usize, &str)> = index
        .files
        .iter()
        .enumerate()
        .filter(|(_, f)| is_kustomization(f))
        .map(|(k, f)| (k, index::parent(&f.path)))
        .collect();
    // Who includes whom, backwards; then everything that reaches a declaring folder.
    let mut included_by: HashMap<String, Vec<String>> = HashMap::default();
    for (k, dir) in &kustomizations {
        let Some(root) = index.files[*k].documents.first().map(|d| &d.root) else {
            continue;
        };
        for key in ["resources", "bases", "components"] {
            for (entry, _) in super::string_entries(root, key) {
                if let Some(target) = index::join(dir, &entry, false) {
                    if index.kustomization_in(&target).is_some() {
                        included_by
                            .entry(target)
                            .or_default()
                            .push((*dir).to_owned());
                    }
                }
            }
        }
    }
    let mut todo: Vec<String> = out.iter().cloned().collect();
    while let Some(dir) = todo.pop() {
        for parent in included_by.get(&dir).into_iter().flatten() {
            if out.insert(parent.clone()) {
                todo.push(parent.clone());
            }
        }
    }
    out
}

/// The built-in fields vars reach, under any kind: containers' `args`, `command`, env values
/// and mount paths (wherever the pod template is), metadata labels and annotations (the
/// object's and its template's), and Ingress hosts.
fn reached_by_default(path: &[&str], kind: &str) -> bool {
    let n = path.len();
    let last = |k: &str| path.last() == Some(&k);
    let under = |k: &str| n >= 2 && path[n - 2] == k;
    let in_container = path
        .iter()
        .any(|p| matches!(*p, "containers" | "initContainers"));
    (in_container
        && (under("containers") || under("initContainers"))
        && (last("args") || last("command")))
        || (in_container && under("env") && last("value"))
        || (in_container && under("volumeMounts") && last("mountPath"))
        || (n >= 1
            && matches!(
                path.get(n.saturating_sub(2)),
                Some(&"labels" | &"annotations")
            ))
        || (kind == "Ingress" && (last("host") || last("hosts") || last("secretName")))
}

/// Replaces every `$(NAME)` of a known var in `text`; `None` when nothing was replaced.
fn substitute(text: &str, values: &HashMap<&str, String>) -> Option<String> {
    if !text.contains("$(") {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(i) = rest.find("$(") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find(')').map(|j| (&after[..j], j)) {
            Some((name, j)) if values.contains_key(name) => {
                out.push_str(&values[name]);
                rest = &after[j + 1..];
                changed = true;
            }
            _ => {
                out.push_str("$(");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// Substitutes the vars in the fields they reach of `root` (an object of `kind`); returns
/// the names of the vars used, each once, by name.
pub(super) fn apply(
    root: &mut Node,
    kind: &str,
    values: &HashMap<&str, String>,
    reach: &[Reach],
) -> Vec<String> {
    let mut used = Vec::new();
    let mut stack: Vec<(Vec<String>, &mut Node)> = vec![(Vec::new(), root)];
    while let Some((path, node)) = stack.pop() {
        match &mut node.value {
            Value::Map(entries) => {
                for e in entries.iter_mut() {
                    let Some(key) = e.key.as_str() else { continue };
                    let mut p = path.clone();
                    p.push(key.to_owned());
                    stack.push((p, &mut e.value));
                }
            }
            Value::Seq(items) => {
                for item in items.iter_mut() {
                    stack.push((path.clone(), item));
                }
            }
            Value::Scalar(text) => {
                let segments: Vec<&str> = path.iter().map(String::as_str).collect();
                let reached = reached_by_default(&segments, kind)
                    || reach.iter().any(|r| {
                        r.kind.as_deref().is_none_or(|k| k == kind)
                            && r.path
                                .iter()
                                .map(String::as_str)
                                .eq(segments.iter().copied())
                    });
                if !reached {
                    continue;
                }
                if let Some(new) = substitute(text, values) {
                    for name in values.keys() {
                        if text.contains(&format!("$({name})")) && !used.iter().any(|u| u == name) {
                            used.push((*name).to_owned());
                        }
                    }
                    *text = CompactString::from(new);
                }
            }
        }
    }
    // `values` is a hash map: its order differs from run to run, the report's must not.
    used.sort();
    used
}

/// The location of each var, by name, for the hops.
pub(super) fn locations(vars: &[Var]) -> HashMap<&str, (Location, Arc<str>)> {
    vars.iter()
        .map(|v| {
            let source = format!(
                "{}/{} {}",
                v.kind.as_deref().unwrap_or("?"),
                v.object.as_deref().unwrap_or("?"),
                v.field
            );
            (v.name.as_str(), (v.location.clone(), Arc::from(source)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_vars_are_substituted() {
        let mut values = HashMap::default();
        values.insert("DB", "p-db".to_owned());
        assert_eq!(
            substitute("--db=$(DB).$(NS)", &values).as_deref(),
            Some("--db=p-db.$(NS)")
        );
        assert_eq!(substitute("$(NS)", &values), None);
        assert_eq!(substitute("plain", &values), None);
    }

    #[test]
    fn vars_reach_container_fields_and_metadata_only() {
        let k = |p: &[&str]| reached_by_default(p, "Deployment");
        assert!(k(&[
            "spec",
            "template",
            "spec",
            "containers",
            "env",
            "value"
        ]));
        assert!(k(&["spec", "template", "spec", "containers", "args"]));
        assert!(k(&["metadata", "annotations", "a"]));
        assert!(!k(&["data", "host"]));
        assert!(!k(&["spec", "replicas"]));
    }
}
