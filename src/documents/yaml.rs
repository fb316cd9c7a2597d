//! A YAML tree that remembers where every node came from.
//!
//! `serde_yaml` throws positions away, and every finding must point at the exact line of a
//! field, so we build our own small tree from parser events. The events come from
//! `libyaml-safer`, a safe-Rust port of libyaml: kubectl, Helm, Argo CD and Flux parse with
//! go-yaml, itself a libyaml port, so what they accept we accept, and what they reject we
//! report. The builder is iterative (no recursion on the input's nesting) and carries two
//! budgets that make hostile input cheap: a nesting limit and an alias-expansion limit (the
//! "billion laughs" bomb).

use std::collections::HashMap;

use libyaml_safer::{EventData, Mark, Parser, ScalarStyle};

/// Deepest nesting we build. Real manifests stay well under 30 levels.
pub const MAX_DEPTH: usize = 256;

/// Most nodes one file may create by expanding aliases. Legitimate files use a handful of
/// anchors; a billion-laughs bomb needs millions.
pub const MAX_ALIAS_NODES: usize = 100_000;

/// Most bytes one file may create by copying anchored values: each alias copies its anchor's
/// value, and each anchor keeps a copy for later aliases. A node counts its size in memory
/// plus its text. Few nodes can still be many bytes (one 100 KB scalar aliased 10×10×10×10
/// times is 10,000 nodes but 1 GB), so the node budget alone does not bound memory.
pub const MAX_ALIAS_BYTES: usize = 16 * 1024 * 1024;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// The source range of a node: `start` inclusive, `end` exclusive (as the parser reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Span {
    pub start: Pos,
    pub end: Pos,
}

impl Span {
    fn from_marks(start: Mark, end: Mark) -> Self {
        Span {
            start: pos(start),
            end: pos(end),
        }
    }

    /// The last line that holds content of this node. A collection ends where its last child
    /// ends; a block scalar's end marker sits at column 1 of the line after it.
    pub fn last_line(&self) -> u32 {
        if self.end.col <= 1 && self.end.line > self.start.line {
            self.end.line - 1
        } else {
            self.end.line.max(self.start.line)
        }
    }
}

/// libyaml counts lines and columns from 0.
fn pos(mark: Mark) -> Pos {
    Pos {
        line: u32::try_from(mark.line.saturating_add(1)).unwrap_or(u32::MAX),
        col: u32::try_from(mark.column.saturating_add(1)).unwrap_or(u32::MAX),
    }
}

/// How a scalar was written. Quoting matters: `"8080"` is a string, `8080` is a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarKind {
    Plain,
    Quoted,
    Block,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar { text: String, kind: ScalarKind },
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: Node,
    pub value: Node,
}

/// One YAML node with its source span.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: Span,
    pub value: Value,
}

impl Node {
    /// The scalar's text, for any scalar that is not a YAML null.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, kind } => {
                if *kind == ScalarKind::Plain && is_null_text(text) {
                    None
                } else {
                    Some(text)
                }
            }
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, kind: ScalarKind::Plain } if is_null_text(text))
    }

    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// The entry of a mapping whose key is `key` (the last one wins, as in most loaders).
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.as_map()?
            .iter()
            .rev()
            .find(|e| e.key.as_str() == Some(key))
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// A string-to-string mapping (labels, annotations); other values are skipped.
    pub fn string_map(&self) -> Vec<(String, String)> {
        self.as_map()
            .into_iter()
            .flatten()
            .filter_map(|e| Some((e.key.as_str()?.to_owned(), e.value.as_str()?.to_owned())))
            .collect()
    }

    /// The number of nodes in this subtree and the bytes a copy of it takes (used for the
    /// alias budgets).
    fn weight(&self) -> (usize, usize) {
        let (mut nodes, mut bytes) = (0usize, 0usize);
        let mut stack = vec![self];
        while let Some(n) = stack.pop() {
            nodes += 1;
            bytes = bytes.saturating_add(std::mem::size_of::<Node>());
            match &n.value {
                Value::Scalar { text, .. } => bytes = bytes.saturating_add(text.len()),
                Value::Seq(items) => stack.extend(items.iter()),
                Value::Map(entries) => {
                    for e in entries {
                        stack.push(&e.key);
                        stack.push(&e.value);
                    }
                }
            }
        }
        (nodes, bytes)
    }
}

fn is_null_text(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// One document of a YAML stream.
#[derive(Debug, Clone)]
pub struct YamlDoc {
    /// Line of the `---` marker, or of the first node for an implicit start.
    pub start_line: u32,
    /// Whether the document opened with `---`.
    pub explicit_start: bool,
    pub root: Node,
}

/// Why a stream stopped parsing. Documents before the problem are still returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

/// The documents of a YAML stream, and the error that ended it early, if any.
#[derive(Debug, Default)]
pub struct YamlStream {
    pub docs: Vec<YamlDoc>,
    pub error: Option<YamlError>,
    /// Spans of block scalars (`|`, `>`): lines inside them are content, never comments.
    pub block_scalar_lines: Vec<(u32, u32)>,
}

/// A collection under construction.
enum Frame {
    Seq {
        start: Pos,
        anchor: Option<String>,
        items: Vec<Node>,
    },
    Map {
        start: Pos,
        anchor: Option<String>,
        entries: Vec<Entry>,
        pending_key: Option<Node>,
    },
}

/// The error that stops a file whose aliases copy more than the budgets allow.
fn alias_budget_error(nodes: usize, bytes: usize, pos: Pos) -> Option<YamlError> {
    let exceeded = if nodes > MAX_ALIAS_NODES {
        format!("{MAX_ALIAS_NODES} nodes")
    } else if bytes > MAX_ALIAS_BYTES {
        format!("{} MiB", MAX_ALIAS_BYTES / (1024 * 1024))
    } else {
        return None;
    };
    Some(YamlError {
        pos,
        message: format!(
            "alias expansion exceeds {exceeded} (an alias bomb?); the rest of the file is not read"
        ),
    })
}

fn error_at(mark: Option<Mark>, message: String) -> YamlError {
    YamlError {
        pos: mark.map_or(Pos { line: 1, col: 1 }, pos),
        message,
    }
}

/// Parses every document of `text`, never recursing on its nesting. A panic here is a bug
/// (tests/yaml_fuzz.rs hunts for them); `documents::load` still guards every call.
pub fn parse_stream(text: &str) -> YamlStream {
    let mut out = YamlStream::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<String, Node> = HashMap::new();
    let mut alias_nodes = 0usize;
    let mut alias_bytes = 0usize;
    let mut doc_start: Option<(u32, bool)> = None;
    let mut root: Option<Node> = None;

    let mut input = text.as_bytes();
    let mut parser = Parser::new();
    parser.set_input_string(&mut input);
    for item in parser {
        let event = match item {
            Ok(ev) => ev,
            Err(e) => {
                // libyaml says what it was parsing and where that began, which is often where
                // the real mistake is (an unclosed quote or bracket lines earlier).
                let message = match (e.context(), e.context_mark()) {
                    (Some(context), Some(mark))
                        if e.problem_mark().is_some_and(|p| p.line != mark.line) =>
                    {
                        format!(
                            "{} {context} that began at line {}",
                            e.problem(),
                            mark.line + 1
                        )
                    }
                    (Some(context), _) => format!("{} {context}", e.problem()),
                    (None, _) => e.problem().to_owned(),
                };
                out.error = Some(error_at(e.problem_mark(), message));
                return out;
            }
        };
        let span = Span::from_marks(event.start_mark, event.end_mark);
        let is_sequence = matches!(event.data, EventData::SequenceStart { .. });
        let completed: Option<(Node, Option<String>)> = match event.data {
            EventData::StreamStart { .. } | EventData::StreamEnd => None,
            EventData::DocumentStart { implicit, .. } => {
                doc_start = Some((span.start.line, !implicit));
                anchors.clear();
                None
            }
            EventData::DocumentEnd { .. } => {
                // A document of only comments (or an explicit null) holds nothing.
                if let Some(root) = root.take().filter(|r| !r.is_null()) {
                    let (start_line, explicit_start) =
                        doc_start.unwrap_or((root.span.start.line, false));
                    out.docs.push(YamlDoc {
                        start_line,
                        explicit_start,
                        root,
                    });
                }
                doc_start = None;
                None
            }
            EventData::Scalar {
                value,
                style,
                anchor,
                ..
            } => {
                let kind = match style {
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => ScalarKind::Quoted,
                    ScalarStyle::Literal | ScalarStyle::Folded => {
                        out.block_scalar_lines
                            .push((span.start.line, span.end.line.max(span.start.line)));
                        ScalarKind::Block
                    }
                    _ => ScalarKind::Plain,
                };
                let node = Node {
                    span,
                    value: Value::Scalar { text: value, kind },
                };
                Some((node, anchor))
            }
            EventData::Alias { anchor } => match anchors.get(&anchor) {
                Some(target) => {
                    let (nodes, bytes) = target.weight();
                    alias_nodes = alias_nodes.saturating_add(nodes);
                    alias_bytes = alias_bytes.saturating_add(bytes);
                    if let Some(error) = alias_budget_error(alias_nodes, alias_bytes, span.start) {
                        out.error = Some(error);
                        return out;
                    }
                    // The copy keeps the anchor's content but takes the alias's position, so
                    // findings point where the value is used.
                    let mut node = target.clone();
                    node.span = span;
                    Some((node, None))
                }
                None => {
                    out.error = Some(YamlError {
                        pos: span.start,
                        message: format!("alias *{anchor} refers to an unknown anchor"),
                    });
                    return out;
                }
            },
            EventData::SequenceStart { anchor, .. } | EventData::MappingStart { anchor, .. } => {
                if stack.len() >= MAX_DEPTH {
                    out.error = Some(YamlError {
                        pos: span.start,
                        message: format!(
                            "nesting deeper than {MAX_DEPTH} levels; the rest of the file is not read"
                        ),
                    });
                    return out;
                }
                stack.push(if is_sequence {
                    Frame::Seq {
                        start: span.start,
                        anchor,
                        items: Vec::new(),
                    }
                } else {
                    Frame::Map {
                        start: span.start,
                        anchor,
                        entries: Vec::new(),
                        pending_key: None,
                    }
                });
                None
            }
            // A collection ends where its last child ends: the end event of a block
            // collection sits at the next token, possibly lines of comments later.
            EventData::SequenceEnd | EventData::MappingEnd => match stack.pop() {
                Some(Frame::Seq {
                    start,
                    anchor,
                    items,
                }) => Some((
                    Node {
                        span: Span {
                            start,
                            end: items.last().map_or(span.end, |n| n.span.end),
                        },
                        value: Value::Seq(items),
                    },
                    anchor,
                )),
                Some(Frame::Map {
                    start,
                    anchor,
                    entries,
                    ..
                }) => Some((
                    Node {
                        span: Span {
                            start,
                            end: entries.last().map_or(span.end, |e| e.value.span.end),
                        },
                        value: Value::Map(entries),
                    },
                    anchor,
                )),
                None => None,
            },
        };

        if let Some((node, anchor)) = completed {
            if let Some(anchor) = anchor {
                // The copy an anchor keeps counts too: nested anchors each copy their subtree.
                alias_bytes = alias_bytes.saturating_add(node.weight().1);
                if let Some(error) = alias_budget_error(alias_nodes, alias_bytes, node.span.start) {
                    out.error = Some(error);
                    return out;
                }
                anchors.insert(anchor, node.clone());
            }
            match stack.last_mut() {
                Some(Frame::Seq { items, .. }) => items.push(node),
                Some(Frame::Map {
                    entries,
                    pending_key,
                    ..
                }) => match pending_key.take() {
                    Some(key) => entries.push(Entry { key, value: node }),
                    None => *pending_key = Some(node),
                },
                None => root = Some(node),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_one_based() {
        let s = parse_stream("a: 1\nb:\n  c: hello\n");
        assert!(s.error.is_none());
        let root = &s.docs[0].root;
        let c = root.get("b").and_then(|b| b.get("c")).expect("b.c");
        assert_eq!(c.as_str(), Some("hello"));
        assert_eq!(c.span.start, Pos { line: 3, col: 6 });
    }

    #[test]
    fn multi_document_streams_keep_their_start_lines() {
        let s = parse_stream("a: 1\n---\nb: 2\n---\n# only a comment\n---\nc: 3\n");
        let starts: Vec<u32> = s.docs.iter().map(|d| d.start_line).collect();
        // The comment-only document has no root and yields nothing.
        assert_eq!(starts, vec![1, 2, 6]);
    }

    #[test]
    fn parse_errors_keep_earlier_documents() {
        let s = parse_stream("a: 1\n---\nb: [1, 2\n");
        assert_eq!(s.docs.len(), 1);
        let err = s.error.expect("error");
        assert!(err.pos.line >= 3, "{err:?}");
    }

    #[test]
    fn aliases_are_expanded_within_budget() {
        let s = parse_stream("base: &b {x: 1}\nuse: *b\n");
        let root = &s.docs[0].root;
        assert_eq!(
            root.get("use")
                .and_then(|u| u.get("x"))
                .and_then(Node::as_str),
            Some("1")
        );
        assert_eq!(root.get("use").map(|u| u.span.start.line), Some(2));
    }

    #[test]
    fn alias_bombs_stop_with_an_error() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let s = parse_stream(&text);
        let err = s.error.expect("bomb detected");
        assert!(err.message.contains("alias bomb"), "{}", err.message);
    }

    /// Few nodes, many bytes: the node budget alone lets this take a gigabyte.
    pub(crate) fn wide_alias_bomb(scalar_bytes: usize) -> String {
        let mut text = format!("a0: &a0 {}\n", "x".repeat(scalar_bytes));
        for i in 1..5 {
            let prev = i - 1;
            let items = vec![format!("*a{prev}"); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{items}]\n"));
        }
        text
    }

    #[test]
    fn alias_expansion_is_bounded_in_bytes() {
        let s = parse_stream(&wide_alias_bomb(100_000));
        let err = s.error.expect("bomb detected");
        assert!(
            err.message.starts_with("alias expansion exceeds 16 MiB"),
            "{}",
            err.message
        );
        // The same shape with small values is an ordinary file.
        let s = parse_stream(&wide_alias_bomb(10));
        assert!(s.error.is_none(), "{:?}", s.error);
    }

    #[test]
    fn deep_nesting_stops_with_an_error() {
        let text = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        let s = parse_stream(&text);
        assert!(s.error.is_some());
        let mut block = String::new();
        for depth in 0..5000 {
            block.push_str(&" ".repeat(depth));
            block.push_str("k:\n");
        }
        let s = parse_stream(&block);
        assert!(s.error.is_some());
    }

    #[test]
    fn last_line_of_block_collections() {
        let s = parse_stream("a:\n  b: 1\n  c: 2\n\n# trailing\n");
        assert_eq!(s.docs[0].root.span.last_line(), 3);
    }

    #[test]
    fn quoted_scalars_are_never_null() {
        let s = parse_stream("a: ~\nb: \"~\"\nc:\n");
        let r = &s.docs[0].root;
        assert!(r.get("a").is_some_and(Node::is_null));
        assert_eq!(r.get("b").and_then(Node::as_str), Some("~"));
        assert!(r.get("c").is_some_and(Node::is_null));
    }
}
