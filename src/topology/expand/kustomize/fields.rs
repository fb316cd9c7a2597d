//! kustomize's field paths (replacements, vars): `spec.template.spec.containers.[name=app].env.0.value`,
//! with `[key=value]` picking a list item, a number its position, `*` every item, and
//! `[a.b/c]` a key that holds dots.

use compact_str::CompactString;

use crate::documents::yaml::{Entry, ScalarKind};
use crate::documents::{Node, Span, Value};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    Key(String),
    /// A list item whose `key` field is `value`.
    Match {
        key: String,
        value: String,
    },
    Index(usize),
    /// Every item of a list.
    All,
}

/// The most steps a field path may have: [`set`] walks one level per step.
const MOST_STEPS: usize = 128;

/// The steps of a field path; `None` when it is empty, malformed or longer than
/// [`MOST_STEPS`].
pub(super) fn steps(path: &str) -> Option<Vec<Step>> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    let mut parts = Vec::new();
    for c in path.chars() {
        match c {
            '[' => {
                depth += 1;
                current.push(c);
            }
            ']' => {
                depth = depth.checked_sub(1)?;
                current.push(c);
            }
            '.' if depth == 0 => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    if parts.len() > MOST_STEPS {
        return None;
    }
    for part in parts {
        if part.is_empty() {
            return None;
        }
        let step = match part.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
            Some(inner) => match inner.split_once('=') {
                Some((key, value)) => Step::Match {
                    key: key.to_owned(),
                    value: value.to_owned(),
                },
                None => Step::Key(inner.to_owned()),
            },
            None if part == "*" => Step::All,
            None => match part.parse::<usize>() {
                Ok(i) if part.bytes().all(|b| b.is_ascii_digit()) => Step::Index(i),
                _ => Step::Key(part),
            },
        };
        out.push(step);
    }
    Some(out)
}

fn key_position(entries: &[Entry], key: &str) -> Option<usize> {
    entries.iter().rposition(|e| e.key.as_str() == Some(key))
}

fn matching_item(items: &[Node], key: &str, value: &str) -> Option<usize> {
    items
        .iter()
        .position(|n| n.get(key).and_then(Node::as_str) == Some(value))
}

/// The first node at `steps` under `root`.
pub(super) fn get<'n>(root: &'n Node, steps: &[Step]) -> Option<&'n Node> {
    let mut node = root;
    for step in steps {
        node = match (step, &node.value) {
            (Step::Key(k), Value::Map(entries)) => &entries[key_position(entries, k)?].value,
            (Step::Match { key, value }, Value::Seq(items)) => {
                &items[matching_item(items, key, value)?]
            }
            (Step::Index(i), Value::Seq(items)) => items.get(*i)?,
            (Step::All, Value::Seq(items)) => items.first()?,
            _ => return None,
        };
    }
    Some(node)
}

/// A new, empty mapping on the line of `like`.
fn empty_map(like: &Node) -> Node {
    Node::new(like.span, ScalarKind::Plain, Value::Map(Box::default()))
}

fn key_node(key: &str, line: u32) -> Node {
    Node::new(
        Span::at(line),
        ScalarKind::Plain,
        Value::Scalar(CompactString::from(key)),
    )
}

/// Sets every field at `steps` under `root` to what `write` makes of its present value
/// (`None` when it has none yet); the key of a mapping entry set this way is put on the
/// line of the new value, as the entry is the edit's now. With `create`, missing mapping
/// keys on the way are added. Returns how many fields were set; a field that is missing
/// (and not created) is an error, as in kustomize.
pub(super) fn set(
    root: &mut Node,
    steps: &[Step],
    create: bool,
    write: &mut dyn FnMut(Option<&Node>) -> Option<Node>,
) -> Result<usize, String> {
    let Some((step, rest)) = steps.split_first() else {
        return match write(Some(root)) {
            Some(new) => {
                *root = new;
                Ok(1)
            }
            None => Ok(0),
        };
    };
    if create && root.is_null() && matches!(step, Step::Key(_)) {
        *root = empty_map(root);
    }
    match (step, &mut root.value) {
        (Step::Key(k), Value::Map(entries)) => {
            let found = key_position(entries, k);
            let Some(i) = found.or_else(|| create.then_some(entries.len())) else {
                return Err(format!("no field {k}"));
            };
            if found.is_none() {
                let line = root.span.line;
                let mut list = std::mem::take(entries).into_vec();
                let placeholder = Node::new(
                    root.span,
                    ScalarKind::Plain,
                    if rest.is_empty() {
                        Value::Scalar(CompactString::default())
                    } else {
                        Value::Map(Box::default())
                    },
                );
                list.push(Entry {
                    key: key_node(k, line),
                    value: placeholder,
                });
                *entries = list.into_boxed_slice();
            }
            let Value::Map(entries) = &mut root.value else {
                return Ok(0);
            };
            let entry = &mut entries[i];
            if rest.is_empty() {
                let present = (found.is_some()).then_some(&entry.value);
                return match write(present) {
                    Some(new) => {
                        entry.key.set_lines(Span::at(new.span.line));
                        entry.value = new;
                        Ok(1)
                    }
                    None => Ok(0),
                };
            }
            set(&mut entry.value, rest, create, write)
        }
        (Step::Match { key, value }, Value::Seq(items)) => {
            let i = matching_item(items, key, value)
                .ok_or_else(|| format!("no list item with {key}={value}"))?;
            set(&mut items[i], rest, create, write)
        }
        (Step::Index(i), Value::Seq(items)) => {
            let item = items
                .get_mut(*i)
                .ok_or_else(|| format!("no list item {i}"))?;
            set(item, rest, create, write)
        }
        (Step::All, Value::Seq(items)) => {
            let mut n = 0;
            for item in items.iter_mut() {
                n += set(item, rest, create, write)?;
            }
            Ok(n)
        }
        (step, _) => Err(format!("no field {}", describe(step))),
    }
}

fn describe(step: &Step) -> String {
    match step {
        Step::Key(k) => k.clone(),
        Step::Match { key, value } => format!("[{key}={value}]"),
        Step::Index(i) => i.to_string(),
        Step::All => "*".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::yaml::parse_stream;

    fn tree(text: &str) -> Node {
        parse_stream(text).docs.remove(0).root
    }

    fn scalar(text: &str) -> Node {
        tree(text)
    }

    #[test]
    fn paths_split_on_dots_outside_brackets() {
        assert_eq!(
            steps("spec.containers.[name=a.b].env.0.*.[x.y/z]").unwrap(),
            vec![
                Step::Key("spec".into()),
                Step::Key("containers".into()),
                Step::Match {
                    key: "name".into(),
                    value: "a.b".into()
                },
                Step::Key("env".into()),
                Step::Index(0),
                Step::All,
                Step::Key("x.y/z".into()),
            ]
        );
        assert!(steps("a..b").is_none());
        assert!(steps("a]").is_none());
    }

    #[test]
    fn set_and_get_through_lists_and_created_keys() {
        let mut root = tree(
            "spec:\n  containers:\n    - name: app\n      env:\n        - name: DB\n          value: old\n    - name: side\n",
        );
        let path = steps("spec.containers.[name=app].env.[name=DB].value").unwrap();
        let n = set(&mut root, &path, false, &mut |_| Some(scalar("new"))).unwrap();
        assert_eq!(n, 1);
        assert_eq!(get(&root, &path).and_then(Node::as_str), Some("new"));
        let missing = steps("metadata.labels.env").unwrap();
        assert!(set(&mut root, &missing, false, &mut |_| Some(scalar("x"))).is_err());
        assert_eq!(
            set(&mut root, &missing, true, &mut |_| Some(scalar("x"))).unwrap(),
            1
        );
        assert_eq!(get(&root, &missing).and_then(Node::as_str), Some("x"));
        let all = steps("spec.containers.*.image").unwrap();
        assert_eq!(
            set(&mut root, &all, true, &mut |_| Some(scalar("nginx"))).unwrap(),
            2
        );
    }
}
