//! Field paths such as `spec.template.spec.containers[0].env[2].value` or
//! `metadata.labels["app.kubernetes.io/name"]`, and their lookup in a [`Node`] tree.

use std::fmt;

use super::yaml::Node;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A parsed field path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldPath(pub Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid field path `{path}`: {reason}")]
pub struct PathError {
    pub path: String,
    pub reason: &'static str,
}

impl FieldPath {
    /// Parses dotted keys, `[N]` indexes and `["quoted.keys"]`.
    pub fn parse(path: &str) -> Result<Self, PathError> {
        let err = |reason| PathError {
            path: path.to_owned(),
            reason,
        };
        let mut segments = Vec::new();
        let mut chars = path.chars().peekable();
        let mut key = String::new();
        while let Some(c) = chars.next() {
            match c {
                '.' => {
                    if !key.is_empty() {
                        segments.push(Segment::Key(std::mem::take(&mut key)));
                    } else if !matches!(segments.last(), Some(Segment::Index(_))) {
                        return Err(err("empty key"));
                    }
                }
                '[' => {
                    if !key.is_empty() {
                        segments.push(Segment::Key(std::mem::take(&mut key)));
                    }
                    if matches!(chars.peek(), Some('"') | Some('\'')) {
                        let quote = chars.next().unwrap_or('"');
                        let mut quoted = String::new();
                        loop {
                            match chars.next() {
                                Some(q) if q == quote => break,
                                Some(ch) => quoted.push(ch),
                                None => return Err(err("unterminated quoted key")),
                            }
                        }
                        segments.push(Segment::Key(quoted));
                    } else {
                        let mut digits = String::new();
                        while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                            digits.push(d);
                            chars.next();
                        }
                        let index = digits.parse().map_err(|_| err("index is not a number"))?;
                        segments.push(Segment::Index(index));
                    }
                    if chars.next() != Some(']') {
                        return Err(err("missing `]`"));
                    }
                }
                _ => key.push(c),
            }
        }
        if !key.is_empty() {
            segments.push(Segment::Key(key));
        }
        Ok(FieldPath(segments))
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if k.contains(['.', '[', ']']) => write!(f, "[\"{k}\"]")?,
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Where a field sits: the position of its key (when it is a mapping value) and its value.
#[derive(Debug, Clone, Copy)]
pub struct FieldLocation<'a> {
    /// Where an author would put the cursor: the line of the key for mapping values, else
    /// of the value.
    pub line: u32,
    pub node: &'a Node,
}

/// Follows `path` from `root`.
pub fn locate<'a>(root: &'a Node, path: &FieldPath) -> Option<FieldLocation<'a>> {
    let mut current = FieldLocation {
        line: root.span.line,
        node: root,
    };
    for segment in &path.0 {
        current = match segment {
            Segment::Key(k) => {
                let entry = current.node.entry(k)?;
                FieldLocation {
                    line: entry.key.span.line,
                    node: &entry.value,
                }
            }
            Segment::Index(i) => {
                let node = current.node.as_seq()?.get(*i)?;
                FieldLocation {
                    line: node.span.line,
                    node,
                }
            }
        };
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::yaml::parse_stream;

    #[test]
    fn parses_keys_indexes_and_quoted_keys() {
        let p = FieldPath::parse(r#"spec.containers[0].env[2].value"#).expect("path");
        assert_eq!(p.0.len(), 6);
        assert_eq!(p.to_string(), "spec.containers[0].env[2].value");
        let q = FieldPath::parse(r#"metadata.labels["app.kubernetes.io/name"]"#).expect("path");
        assert_eq!(
            q.0.last(),
            Some(&Segment::Key("app.kubernetes.io/name".into()))
        );
        assert_eq!(
            q.to_string(),
            r#"metadata.labels["app.kubernetes.io/name"]"#
        );
        assert!(FieldPath::parse("a[x]").is_err());
        assert!(FieldPath::parse("a..b").is_err());
        assert!(FieldPath::parse("a[\"b").is_err());
    }

    #[test]
    fn locates_fields_at_their_key() {
        let yaml = "spec:\n  containers:\n    - name: app\n      env:\n        - name: A\n          value: x\n        - name: B\n          value: \"y\"\n";
        let stream = parse_stream(yaml);
        let root = &stream.docs[0].root;
        let path = FieldPath::parse("spec.containers[0].env[1].value").expect("path");
        let loc = locate(root, &path).expect("found");
        assert_eq!(loc.node.as_str(), Some("y"));
        assert_eq!(loc.line, 8);
        let item = locate(
            root,
            &FieldPath::parse("spec.containers[0].env[1]").expect("p"),
        )
        .expect("item");
        assert_eq!(item.line, 7);
        assert!(locate(root, &FieldPath::parse("spec.missing").expect("p")).is_none());
    }
}
