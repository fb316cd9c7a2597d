//! Strategic-merge patches applied to a document, for the ones kustomize applies to the objects
//! a `target` selects (or that are written inline), which envfence cannot place beside one
//! object as it places a patch file: mappings merge key by key (`null` removes a key), the
//! lists Kubernetes merges by a key (containers, env vars, volumes, ports, ...) merge item by
//! item, other lists are replaced, and the `$patch` directives (`replace`, `delete`) apply.

use crate::documents::yaml::Entry;
use crate::documents::{Node, Value};

/// The key the items of a list field are merged by, as Kubernetes' API types declare it; a
/// list not named here is replaced whole.
fn merge_key(field: &str, items: &[Node]) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "readinessGates" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "hostAliases" => Some("ip"),
        // Container ports by `containerPort`, Service ports by `port`.
        "ports" => Some(if items.iter().any(|i| i.get("containerPort").is_some()) {
            "containerPort"
        } else {
            "port"
        }),
        _ => None,
    }
}

fn directive(node: &Node) -> Option<&str> {
    node.get("$patch").and_then(Node::as_str)
}

/// Whether a key is one of the patch's own directives, never written to the object.
fn is_directive(key: &str) -> bool {
    key.starts_with('$')
}

/// `patch` without its directives, as it lands where nothing was.
fn plain(patch: &Node) -> Node {
    let mut out = patch.clone();
    strip(&mut out);
    out
}

fn strip(node: &mut Node) {
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        match &mut n.value {
            Value::Map(entries) => {
                if entries
                    .iter()
                    .any(|e| e.key.as_str().is_some_and(is_directive))
                {
                    let kept: Vec<Entry> = std::mem::take(entries)
                        .into_vec()
                        .into_iter()
                        .filter(|e| !e.key.as_str().is_some_and(is_directive))
                        .collect();
                    *entries = kept.into_boxed_slice();
                }
                for e in entries.iter_mut() {
                    stack.push(&mut e.value);
                }
            }
            Value::Seq(items) => {
                if items.iter().any(|i| directive(i).is_some()) {
                    let kept: Vec<Node> = std::mem::take(items)
                        .into_vec()
                        .into_iter()
                        .filter(|i| directive(i).is_none())
                        .collect();
                    *items = kept.into_boxed_slice();
                }
                stack.extend(items.iter_mut());
            }
            Value::Scalar(_) => {}
        }
    }
}

/// Merges `patch` into `target`. `field` is the key `target` sits under (for lists).
pub(super) fn merge(target: &mut Node, patch: &Node, field: &str) {
    match (&mut target.value, &patch.value) {
        (Value::Map(entries), Value::Map(patch_entries)) => {
            if directive(patch) == Some("replace") {
                *target = plain(patch);
                return;
            }
            let mut list = std::mem::take(entries).into_vec();
            for pe in patch_entries.iter() {
                let Some(key) = pe.key.as_str() else { continue };
                if is_directive(key) {
                    continue;
                }
                let at = list.iter().rposition(|e| e.key.as_str() == Some(key));
                match at {
                    _ if pe.value.is_null() => {
                        if let Some(i) = at {
                            list.remove(i);
                        }
                    }
                    Some(i) if directive(&pe.value) == Some("delete") => {
                        list.remove(i);
                    }
                    Some(i) => {
                        list[i].key.set_lines(pe.key.span);
                        merge(&mut list[i].value, &pe.value, key);
                    }
                    None if directive(&pe.value) == Some("delete") => {}
                    None => list.push(Entry {
                        key: pe.key.clone(),
                        value: plain(&pe.value),
                    }),
                }
            }
            *entries = list.into_boxed_slice();
        }
        (Value::Seq(items), Value::Seq(patch_items)) => {
            let replace = patch_items.iter().any(|i| directive(i) == Some("replace"));
            let key = merge_key(field, patch_items);
            match key {
                Some(key) if !replace => {
                    let mut list = std::mem::take(items).into_vec();
                    for pi in patch_items.iter() {
                        let Some(value) = pi.get(key).and_then(Node::as_str) else {
                            continue;
                        };
                        let at = list
                            .iter()
                            .position(|i| i.get(key).and_then(Node::as_str) == Some(value));
                        match (at, directive(pi)) {
                            (Some(i), Some("delete")) => {
                                list.remove(i);
                            }
                            (None, Some("delete")) => {}
                            (Some(i), _) => merge(&mut list[i], pi, ""),
                            (None, _) => list.push(plain(pi)),
                        }
                    }
                    *items = list.into_boxed_slice();
                }
                _ => *target = plain(patch),
            }
        }
        _ => *target = plain(patch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::yaml::parse_stream;

    fn tree(text: &str) -> Node {
        parse_stream(text).docs.remove(0).root
    }

    fn env(root: &Node) -> Vec<(String, String)> {
        let c = &root
            .get("spec")
            .unwrap()
            .get("containers")
            .unwrap()
            .as_seq()
            .unwrap()[0];
        c.get("env")
            .and_then(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .map(|e| {
                (
                    e.get("name")
                        .and_then(Node::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    e.get("value")
                        .and_then(Node::as_str)
                        .unwrap_or("")
                        .to_owned(),
                )
            })
            .collect()
    }

    const BASE: &str = "spec:\n  containers:\n    - name: app\n      image: app:1\n      env:\n        - name: A\n          value: a\n        - name: B\n          value: b\n";

    #[test]
    fn env_vars_merge_by_name() {
        let mut root = tree(BASE);
        merge(
            &mut root,
            &tree("spec:\n  containers:\n    - name: app\n      env:\n        - name: B\n          value: bb\n        - name: C\n          value: c\n"),
            "",
        );
        assert_eq!(
            env(&root),
            vec![
                ("A".into(), "a".into()),
                ("B".into(), "bb".into()),
                ("C".into(), "c".into())
            ]
        );
        let image = root
            .get("spec")
            .unwrap()
            .get("containers")
            .unwrap()
            .as_seq()
            .unwrap()[0]
            .get("image")
            .and_then(Node::as_str)
            .map(str::to_owned);
        assert_eq!(image.as_deref(), Some("app:1"));
    }

    #[test]
    fn directives_replace_and_delete() {
        let mut root = tree(BASE);
        merge(
            &mut root,
            &tree("spec:\n  containers:\n    - name: app\n      env:\n        - $patch: replace\n        - name: Z\n          value: z\n"),
            "",
        );
        assert_eq!(env(&root), vec![("Z".into(), "z".into())]);
        let mut root = tree(BASE);
        merge(
            &mut root,
            &tree("spec:\n  containers:\n    - name: app\n      env:\n        - name: A\n          $patch: delete\n"),
            "",
        );
        assert_eq!(env(&root), vec![("B".into(), "b".into())]);
        let mut root = tree("metadata:\n  labels:\n    a: b\n    c: d\n");
        merge(&mut root, &tree("metadata:\n  labels:\n    a: null\n"), "");
        assert!(root
            .get("metadata")
            .unwrap()
            .get("labels")
            .unwrap()
            .get("a")
            .is_none());
    }
}
