//! JSON patches (RFC 6902) over the YAML trees of documents, as kustomize applies them: `add`,
//! `remove`, `replace`, `move`, `copy` and `test`, with JSON pointers (RFC 6901: `~1` for `/`,
//! `~0` for `~`, `-` for the end of a list). Like kustomize, `replace` of a missing key of a
//! mapping adds it; everything else that does not apply is an error, which makes kustomize's
//! build fail.

use compact_str::CompactString;

use crate::documents::yaml::{Entry, ScalarKind};
use crate::documents::{Node, Span, Value};

/// One operation of a JSON patch. `value` nodes are numbered for the document they join
/// before the operation is applied (see [`Node::map_lines`]).
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Add { path: String, value: Node },
    Remove { path: String },
    Replace { path: String, value: Node },
    Move { from: String, path: String },
    Copy { from: String, path: String },
    Test { path: String, value: Node },
}

impl Op {
    /// The op's name as written (`replace`).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Add { .. } => "add",
            Op::Remove { .. } => "remove",
            Op::Replace { .. } => "replace",
            Op::Move { .. } => "move",
            Op::Copy { .. } => "copy",
            Op::Test { .. } => "test",
        }
    }

    /// The pointer the op changes (or tests).
    pub(crate) fn path(&self) -> &str {
        match self {
            Op::Add { path, .. }
            | Op::Remove { path }
            | Op::Replace { path, .. }
            | Op::Move { path, .. }
            | Op::Copy { path, .. }
            | Op::Test { path, .. } => path,
        }
    }

    /// The value the op writes, when it writes one of its own.
    pub(super) fn value_mut(&mut self) -> Option<&mut Node> {
        match self {
            Op::Add { value, .. } | Op::Replace { value, .. } | Op::Test { value, .. } => {
                Some(value)
            }
            _ => None,
        }
    }

    pub(super) fn value(&self) -> Option<&Node> {
        match self {
            Op::Add { value, .. } | Op::Replace { value, .. } | Op::Test { value, .. } => {
                Some(value)
            }
            _ => None,
        }
    }
}

/// Reads the operations of a JSON patch written as a YAML list: each with the line of its
/// entry. An entry that is not an operation is an error, as in kustomize.
pub(crate) fn parse_ops(list: &Node) -> Result<Vec<(Op, u32)>, String> {
    let Some(items) = list.as_seq() else {
        return Err("a JSON patch is a list of operations".into());
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let text = |k: &str| item.get(k).and_then(Node::as_str).map(str::to_owned);
        let op = text("op").ok_or("a JSON patch operation without `op`")?;
        let path = text("path").ok_or_else(|| format!("JSON patch {op} without `path`"))?;
        let value = || {
            item.get("value")
                .cloned()
                .ok_or_else(|| format!("JSON patch {op} {path} without `value`"))
        };
        let from = || text("from").ok_or_else(|| format!("JSON patch {op} {path} without `from`"));
        let parsed = match op.as_str() {
            "add" => Op::Add {
                value: value()?,
                path,
            },
            "remove" => Op::Remove { path },
            "replace" => Op::Replace {
                value: value()?,
                path,
            },
            "move" => Op::Move {
                from: from()?,
                path,
            },
            "copy" => Op::Copy {
                from: from()?,
                path,
            },
            "test" => Op::Test {
                value: value()?,
                path,
            },
            other => return Err(format!("unknown JSON patch operation `{other}`")),
        };
        out.push((parsed, item.span.line));
    }
    Ok(out)
}

/// The reference tokens of a JSON pointer (`/a~1b/0` → `a/b`, `0`); `""` is the whole
/// document.
pub(super) fn pointer(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("JSON pointer {path} does not start with /"));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// A list index token: digits, no sign, no leading zero.
fn index(token: &str) -> Option<usize> {
    let plain = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    plain.then(|| token.parse().ok()).flatten()
}

/// The position of the entry `key` of a mapping (the last, as lookups take it).
fn key_position(entries: &[Entry], key: &str) -> Option<usize> {
    entries.iter().rposition(|e| e.key.as_str() == Some(key))
}

fn child<'n>(node: &'n Node, token: &str) -> Option<&'n Node> {
    match &node.value {
        Value::Map(entries) => key_position(entries, token).map(|i| &entries[i].value),
        Value::Seq(items) => index(token).and_then(|i| items.get(i)),
        Value::Scalar(_) => None,
    }
}

fn child_mut<'n>(node: &'n mut Node, token: &str) -> Option<&'n mut Node> {
    match &mut node.value {
        Value::Map(entries) => key_position(entries, token).map(|i| &mut entries[i].value),
        Value::Seq(items) => index(token).and_then(|i| items.get_mut(i)),
        Value::Scalar(_) => None,
    }
}

/// The node at `tokens`, if there is one.
pub(super) fn get<'n>(root: &'n Node, tokens: &[String]) -> Option<&'n Node> {
    tokens.iter().try_fold(root, |node, t| child(node, t))
}

fn parent_mut<'n>(
    root: &'n mut Node,
    tokens: &[String],
    path: &str,
) -> Result<&'n mut Node, String> {
    let mut node = root;
    for t in tokens {
        node =
            child_mut(node, t).ok_or_else(|| format!("{path}: the document has no such path"))?;
    }
    Ok(node)
}

/// A key node for a new mapping entry, on the line of the value it names.
fn key_node(key: &str, like: &Node) -> Node {
    Node::new(
        Span::at(like.span.line),
        ScalarKind::Plain,
        Value::Scalar(CompactString::from(key)),
    )
}

/// Puts `value` at `tokens`: a mapping's key is set (added, or its value replaced, its key
/// then on the value's line: the entry is the patch's now), a list gets it inserted at an
/// index or appended at `-`. With `replacing`, a list index must exist and is overwritten.
fn put(
    root: &mut Node,
    tokens: &[String],
    value: Node,
    replacing: bool,
    path: &str,
) -> Result<(), String> {
    let Some((last, up)) = tokens.split_last() else {
        *root = value;
        return Ok(());
    };
    let parent = parent_mut(root, up, path)?;
    match &mut parent.value {
        Value::Map(entries) => {
            let mut list = std::mem::take(entries).into_vec();
            match key_position(&list, last) {
                Some(i) => {
                    list[i].key = key_node(last, &value);
                    list[i].value = value;
                }
                None => list.push(Entry {
                    key: key_node(last, &value),
                    value,
                }),
            }
            *entries = list.into_boxed_slice();
            Ok(())
        }
        Value::Seq(items) => {
            let mut list = std::mem::take(items).into_vec();
            let at = if last == "-" && !replacing {
                Some(list.len())
            } else {
                index(last)
            };
            let result = match at {
                Some(i) if replacing && i < list.len() => {
                    list[i] = value;
                    Ok(())
                }
                Some(i) if !replacing && i <= list.len() => {
                    list.insert(i, value);
                    Ok(())
                }
                _ => Err(format!("{path}: index {last} is out of the list's range")),
            };
            *items = list.into_boxed_slice();
            result
        }
        Value::Scalar(_) => Err(format!("{path}: the parent is not a mapping or a list")),
    }
}

/// Takes the node at `tokens` out of the document.
fn take(root: &mut Node, tokens: &[String], path: &str) -> Result<Node, String> {
    let Some((last, up)) = tokens.split_last() else {
        return Err(format!("{path}: the whole document cannot be removed"));
    };
    let parent = parent_mut(root, up, path)?;
    let missing = || format!("{path}: the document has no such path");
    match &mut parent.value {
        Value::Map(entries) => {
            let i = key_position(entries, last).ok_or_else(missing)?;
            let mut list = std::mem::take(entries).into_vec();
            let removed = list.remove(i);
            *entries = list.into_boxed_slice();
            Ok(removed.value)
        }
        Value::Seq(items) => {
            let i = index(last)
                .filter(|&i| i < items.len())
                .ok_or_else(missing)?;
            let mut list = std::mem::take(items).into_vec();
            let removed = list.remove(i);
            *items = list.into_boxed_slice();
            Ok(removed)
        }
        Value::Scalar(_) => Err(missing()),
    }
}

/// Applies one operation to `root`. On an error the document may be half changed: callers
/// apply a patch to a copy and keep it only when every operation applied.
pub(crate) fn apply(root: &mut Node, op: &Op) -> Result<(), String> {
    let path = op.path();
    let tokens = pointer(path)?;
    match op {
        Op::Add { value, .. } => put(root, &tokens, value.clone(), false, path),
        Op::Remove { .. } => take(root, &tokens, path).map(drop),
        Op::Replace { value, .. } => {
            // kustomize adds a missing key of a mapping; a missing list item is an error.
            let parent_is_map = tokens
                .split_last()
                .and_then(|(_, up)| get(root, up))
                .is_some_and(|p| p.as_map().is_some());
            if get(root, &tokens).is_none() && !parent_is_map {
                return Err(format!("{path}: the document has no such path"));
            }
            put(root, &tokens, value.clone(), true, path)
        }
        Op::Move { from, .. } => {
            let from_tokens = pointer(from)?;
            if tokens.len() > from_tokens.len() && tokens.starts_with(&from_tokens) {
                return Err(format!("{path}: cannot move {from} into itself"));
            }
            let moved = take(root, &from_tokens, from)?;
            put(root, &tokens, moved, false, path)
        }
        Op::Copy { from, .. } => {
            let copied = get(root, &pointer(from)?)
                .cloned()
                .ok_or_else(|| format!("{from}: the document has no such path"))?;
            put(root, &tokens, copied, false, path)
        }
        Op::Test { value, .. } => match get(root, &tokens) {
            Some(found) if found.same_content(value) => Ok(()),
            Some(_) => Err(format!("test of {path} failed: the value differs")),
            None => Err(format!(
                "test of {path} failed: the document has no such path"
            )),
        },
    }
}

/// kustomize keeps annotations of its own on every object while it works, so a patch may
/// add to `/metadata/annotations` of an object that has none: gives `root` an empty
/// `metadata.annotations` when it has none. Returns whether it did.
pub(super) fn open_annotations(root: &mut Node) -> bool {
    let Some(metadata) = child_mut(root, "metadata") else {
        return false;
    };
    if metadata.as_map().is_none() || child(metadata, "annotations").is_some() {
        return false;
    }
    let empty = Node::new(metadata.span, ScalarKind::Plain, Value::Map(Box::default()));
    let tokens = ["annotations".to_owned()];
    put(metadata, &tokens, empty, false, "/metadata/annotations").is_ok()
}

/// Takes away the `metadata.annotations` [`open_annotations`] gave, if it is still empty.
pub(super) fn close_annotations(root: &mut Node) {
    let tokens = ["metadata".to_owned(), "annotations".to_owned()];
    if get(root, &tokens)
        .and_then(Node::as_map)
        .is_some_and(<[Entry]>::is_empty)
    {
        let _ = take(root, &tokens, "/metadata/annotations");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::yaml::parse_stream;

    fn tree(text: &str) -> Node {
        parse_stream(text).docs.remove(0).root
    }

    fn patched(doc: &str, ops: &str) -> Result<Node, String> {
        let mut root = tree(doc);
        for (op, _) in parse_ops(&tree(ops))? {
            apply(&mut root, &op)?;
        }
        Ok(root)
    }

    fn text_at(root: &Node, path: &str) -> Option<String> {
        get(root, &pointer(path).ok()?)
            .and_then(Node::as_str)
            .map(str::to_owned)
    }

    const DOC: &str = "spec:\n  env:\n    - name: A\n      value: a\n    - name: B\n      value: b\n  image: nginx\n";

    #[test]
    fn pointers_unescape_slash_and_tilde() {
        assert_eq!(pointer("/a~1b/c~0d/0").unwrap(), vec!["a/b", "c~d", "0"]);
        assert!(pointer("").unwrap().is_empty());
        assert!(pointer("a/b").is_err());
        assert_eq!(index("01"), None);
        assert_eq!(index("10"), Some(10));
        assert_eq!(index("-1"), None);
    }

    #[test]
    fn add_sets_keys_inserts_and_appends() {
        let root = patched(
            DOC,
            "- op: add\n  path: /spec/env/-\n  value: {name: C, value: c}\n- op: add\n  path: /spec/env/0\n  value: {name: Z, value: z}\n- op: add\n  path: /spec/a~1b\n  value: slash\n- op: add\n  path: /spec/image\n  value: redis\n",
        )
        .unwrap();
        assert_eq!(text_at(&root, "/spec/env/0/name").as_deref(), Some("Z"));
        assert_eq!(text_at(&root, "/spec/env/1/name").as_deref(), Some("A"));
        assert_eq!(text_at(&root, "/spec/env/3/value").as_deref(), Some("c"));
        assert_eq!(text_at(&root, "/spec/a~1b").as_deref(), Some("slash"));
        assert_eq!(text_at(&root, "/spec/image").as_deref(), Some("redis"));
        // A missing parent is an error, as in kustomize.
        assert!(patched(DOC, "- op: add\n  path: /spec/x/y\n  value: 1\n").is_err());
        assert!(patched(DOC, "- op: add\n  path: /spec/env/5\n  value: 1\n").is_err());
    }

    #[test]
    fn remove_and_replace() {
        let root = patched(
            DOC,
            "- op: remove\n  path: /spec/env/0\n- op: replace\n  path: /spec/env/0/value\n  value: bb\n- op: replace\n  path: /spec/missing\n  value: added\n",
        )
        .unwrap();
        assert_eq!(text_at(&root, "/spec/env/0/value").as_deref(), Some("bb"));
        assert_eq!(text_at(&root, "/spec/env/1/name"), None);
        // kustomize adds a missing key on replace, but not a missing list item or parent.
        assert_eq!(text_at(&root, "/spec/missing").as_deref(), Some("added"));
        assert!(patched(DOC, "- op: replace\n  path: /spec/env/7\n  value: x\n").is_err());
        assert!(patched(DOC, "- op: replace\n  path: /spec/no/x\n  value: x\n").is_err());
        assert!(patched(DOC, "- op: remove\n  path: /spec/nothere\n").is_err());
    }

    #[test]
    fn move_copy_and_test() {
        let root = patched(
            DOC,
            "- op: copy\n  from: /spec/env/1/value\n  path: /spec/copied\n- op: move\n  from: /spec/image\n  path: /spec/moved\n- op: test\n  path: /spec/moved\n  value: nginx\n",
        )
        .unwrap();
        assert_eq!(text_at(&root, "/spec/copied").as_deref(), Some("b"));
        assert_eq!(text_at(&root, "/spec/moved").as_deref(), Some("nginx"));
        assert_eq!(text_at(&root, "/spec/image"), None);
        assert!(patched(DOC, "- op: test\n  path: /spec/image\n  value: redis\n").is_err());
        assert!(patched(DOC, "- op: move\n  from: /spec\n  path: /spec/x\n").is_err());
        assert!(patched(DOC, "- op: frobnicate\n  path: /spec\n").is_err());
    }

    #[test]
    fn annotations_are_open_while_a_patch_applies() {
        let mut root = tree("metadata:\n  name: web\n");
        assert!(open_annotations(&mut root));
        let (op, _) = parse_ops(&tree(
            "- op: add\n  path: /metadata/annotations/a~1b\n  value: c\n",
        ))
        .unwrap()
        .remove(0);
        apply(&mut root, &op).unwrap();
        close_annotations(&mut root);
        assert_eq!(
            text_at(&root, "/metadata/annotations/a~1b").as_deref(),
            Some("c")
        );
        let mut bare = tree("metadata:\n  name: web\n");
        assert!(open_annotations(&mut bare));
        close_annotations(&mut bare);
        assert!(get(&bare, &pointer("/metadata/annotations").unwrap()).is_none());
    }

    #[test]
    fn a_rename_is_a_replace_of_the_name() {
        let root = patched(
            "metadata:\n  name: web\n",
            "- op: replace\n  path: /metadata/name\n  value: web-prod\n",
        )
        .unwrap();
        assert_eq!(
            text_at(&root, "/metadata/name").as_deref(),
            Some("web-prod")
        );
    }
}
