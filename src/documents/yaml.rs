//! A YAML tree that remembers where every node came from.
//!
//! `serde_yaml` throws positions away, and every finding must point at the exact line of a
//! field, so we build our own small tree from parser events. The events come from
//! `libyaml-safer`, a safe-Rust port of libyaml: kubectl, Helm, Argo CD and Flux parse with
//! go-yaml, itself a libyaml port, so what they accept we accept, and what they reject we
//! report. Only a text on which libyaml-safer panics is read with `saphyr-parser` instead,
//! and plain block YAML by a faster reader of the same trees (see [`parse_stream`]). The
//! builder is iterative (no recursion on the input's nesting) and carries two budgets that
//! make hostile input cheap: a nesting limit and an alias-expansion limit (the "billion
//! laughs" bomb).

use compact_str::CompactString;
use std::collections::HashMap;

use libyaml_safer::{EventData, Mark, Parser, ScalarStyle};

use super::guard;

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

/// The lines of a node, and how a scalar was written: 8 bytes, so that a node is 32 (trees
/// hold millions of them). Of the end it keeps what [`Span::last_line`] needs: how many lines
/// after the first it reaches, and whether it stops at column 1 (as the parser reports a block
/// scalar's end). No report shows a node's column, so it is not kept; parse errors keep
/// theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Span {
    /// The line the node starts on.
    pub line: u32,
    /// Lines from the start line to the end's ([`EXTRA_LINES`]), the scalar's
    /// [`ScalarKind`] ([`KIND_BITS`]) and [`END_AT_LINE_START`].
    tail: u32,
}

/// The bit of [`Span::tail`] that says the end is at column 1.
const END_AT_LINE_START: u32 = 1 << 31;
/// The bits of [`Span::tail`] that hold a scalar's [`ScalarKind`].
const KIND_SHIFT: u32 = 29;
const KIND_BITS: u32 = 0b11 << KIND_SHIFT;
/// The bits of [`Span::tail`] that count the lines after the first. A file within the
/// largest `--max-file-size` (256 MiB) has fewer lines than they hold.
const EXTRA_LINES: u32 = (1 << KIND_SHIFT) - 1;

impl Span {
    /// From the start of a node to its end (exclusive, as parsers report it).
    pub fn new(start: Pos, end: Pos) -> Self {
        Span::lines(start.line, end.line, end.col <= 1)
    }

    /// A node on one line: one a transformation creates, or shown at one line.
    pub fn at(line: u32) -> Self {
        Span { line, tail: 0 }
    }

    fn lines(start: u32, end: u32, end_at_line_start: bool) -> Self {
        let extra = end.saturating_sub(start).min(EXTRA_LINES);
        Span {
            line: start,
            tail: extra
                | if end_at_line_start {
                    END_AT_LINE_START
                } else {
                    0
                },
        }
    }

    /// The span from `start` to the end of `last` (a collection ends where its last child
    /// does).
    pub(super) fn through(start: u32, last: Span) -> Self {
        Span::lines(start, last.end_line(), last.tail & END_AT_LINE_START != 0)
    }

    /// The line of the end position.
    pub fn end_line(&self) -> u32 {
        self.line.saturating_add(self.tail & EXTRA_LINES)
    }

    /// The last line that holds content of this node. A collection ends where its last child
    /// ends; a block scalar's end marker sits at column 1 of the line after it.
    pub fn last_line(&self) -> u32 {
        let extra = self.tail & EXTRA_LINES;
        if self.tail & END_AT_LINE_START != 0 && extra > 0 {
            self.end_line() - 1
        } else {
            self.end_line()
        }
    }

    /// The same lines, starting at `line`.
    pub fn moved_to(self, line: u32) -> Self {
        Span { line, ..self }
    }

    fn kind(self) -> ScalarKind {
        match (self.tail & KIND_BITS) >> KIND_SHIFT {
            1 => ScalarKind::Quoted,
            2 => ScalarKind::Block,
            _ => ScalarKind::Plain,
        }
    }

    fn with_kind(self, kind: ScalarKind) -> Self {
        let bits = match kind {
            ScalarKind::Plain => 0,
            ScalarKind::Quoted => 1,
            ScalarKind::Block => 2,
        };
        Span {
            line: self.line,
            tail: (self.tail & !KIND_BITS) | (bits << KIND_SHIFT),
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

/// A node's content. 24 bytes: a scalar's text inline (up to 24 bytes) or on the heap, a
/// collection's items in a boxed slice (trees are built once and never grow).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(CompactString),
    Seq(Box<[Node]>),
    Map(Box<[Entry]>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: Node,
    pub value: Node,
}

/// One YAML node with its lines: 32 bytes (trees hold millions of them).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Its lines, and how a scalar was written ([`Node::scalar_kind`]): give a node other
    /// lines with [`Node::set_lines`], which keeps its kind.
    pub span: Span,
    pub value: Value,
}

/// What the alias budgets count for each node copied: the size a node had when the budgets
/// were set, so that which files stop does not depend on the tree's layout.
const NODE_BUDGET_BYTES: usize = 48;

impl Node {
    pub fn new(span: Span, scalar_kind: ScalarKind, value: Value) -> Node {
        Node {
            span: span.with_kind(scalar_kind),
            value,
        }
    }

    /// How a scalar was written; `Plain` for a collection.
    #[inline]
    pub fn scalar_kind(&self) -> ScalarKind {
        self.span.kind()
    }

    fn set_scalar_kind(&mut self, kind: ScalarKind) {
        self.span = self.span.with_kind(kind);
    }

    /// Makes this node the quoted scalar `text`, at its lines: a value that stands in for
    /// another (a Secret's redacted data).
    pub fn set_quoted(&mut self, text: &str) {
        self.value = Value::Scalar(CompactString::from(text));
        self.set_scalar_kind(ScalarKind::Quoted);
    }

    /// Takes the lines of `span`, keeping how the scalar was written.
    pub fn set_lines(&mut self, span: Span) {
        self.span = span.with_kind(self.scalar_kind());
    }

    /// The scalar's text, for any scalar that is not a YAML null.
    #[inline]
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(text) => {
                if self.scalar_kind() == ScalarKind::Plain && is_null_text(text) {
                    None
                } else {
                    Some(text)
                }
            }
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(text) if self.scalar_kind() == ScalarKind::Plain && is_null_text(text))
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
        // `as_str() == Some(key)`, comparing the text first: lookups run over every entry
        // of every mapping the topology and rules visit.
        let is_key = |e: &&Entry| match &e.key.value {
            Value::Scalar(text) => {
                // Length and first byte before the whole text: most keys differ there, and a
                // call to compare bytes costs more than the comparison.
                let text = text.as_str();
                text.len() == key.len()
                    && text.as_bytes().first() == key.as_bytes().first()
                    && text == key
                    && !(e.key.scalar_kind() == ScalarKind::Plain && is_null_text(text))
            }
            _ => false,
        };
        self.as_map()?.iter().rev().find(is_key)
    }

    /// The first mapping entry anywhere under this node (itself included) that `wanted`
    /// accepts, depth first.
    pub fn find_entry(&self, wanted: impl Fn(&Entry) -> bool) -> Option<&Entry> {
        let mut stack = vec![self];
        while let Some(node) = stack.pop() {
            match &node.value {
                Value::Map(entries) => {
                    for e in entries.iter() {
                        if wanted(e) {
                            return Some(e);
                        }
                        stack.push(&e.value);
                    }
                }
                Value::Seq(items) => stack.extend(items.iter()),
                Value::Scalar(_) => {}
            }
        }
        None
    }

    /// Gives every node of this subtree new lines: `line(start)` for where it starts, and
    /// its end moved by as much (a copy of a node set in another file, numbered for the
    /// document it joins).
    pub fn map_lines(&mut self, line: &mut impl FnMut(u32) -> u32) {
        let mut stack = vec![self];
        while let Some(n) = stack.pop() {
            // The span counts its end from its start: the end moves with it.
            n.span = n.span.moved_to(line(n.span.line));
            match &mut n.value {
                Value::Scalar(_) => {}
                Value::Seq(items) => stack.extend(items.iter_mut()),
                Value::Map(entries) => {
                    for e in entries.iter_mut() {
                        stack.push(&mut e.key);
                        stack.push(&mut e.value);
                    }
                }
            }
        }
    }

    /// The same tree, spans aside: what JSON patch `test` and kustomize compare.
    pub fn same_content(&self, other: &Node) -> bool {
        match (&self.value, &other.value) {
            (Value::Scalar(a), Value::Scalar(b)) => a == b && self.is_null() == other.is_null(),
            (Value::Seq(a), Value::Seq(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.same_content(y))
            }
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len()
                    && a.iter().all(|e| {
                        e.key
                            .as_str()
                            .and_then(|k| other.get(k))
                            .is_some_and(|v| v.same_content(&e.value))
                    })
            }
            _ => false,
        }
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
            bytes = bytes.saturating_add(NODE_BUDGET_BYTES);
            match &n.value {
                Value::Scalar(text) => bytes = bytes.saturating_add(text.len()),
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
#[derive(Debug, Clone, PartialEq)]
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
#[derive(Debug, Default, PartialEq)]
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

fn collection(span: Span, value: Value) -> Node {
    Node::new(span, ScalarKind::Plain, value)
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

/// Parses every document of `text` into trees with spans, never recursing on its nesting.
///
/// A text within the plain block subset most manifests are written in is read by
/// `documents::block_subset` to the stream libyaml would give (`tests/yaml_subset.rs` holds it
/// to that); any other text is read as follows.
///
/// Libyaml's grammar comes first (`libyaml-safer`), because kubectl, Helm, Argo CD and Flux
/// read YAML with libyaml ports: what they accept we accept, what they reject we report.
/// `libyaml-safer` 0.3.0 panics on a few valid inputs, so:
/// - a text without a final line break is read with one appended: the known panics at the
///   end of a block or quoted scalar need the input to end mid-line. Every node keeps its
///   line and column; a block scalar that ends the file keeps libyaml's value (see
///   [`unappend_line_break`]).
/// - if libyaml-safer still panics, the text is read again with `saphyr-parser`, a YAML 1.2
///   parser that finishes where libyaml-safer cannot, through the same tree builder and
///   budgets. Its errors are reported with its own line and column.
/// - if that panics too, the panic goes on to the caller: `documents::load` turns it into
///   the file's "the YAML reader failed" problem.
pub fn parse_stream(text: &str) -> YamlStream {
    // Most manifests are plain block YAML, which a line reader reads several times faster
    // than libyaml, to the same tree; anything else goes to libyaml.
    if let Some(stream) = super::block_subset::read(text) {
        return stream;
    }
    read_with_libyaml_etc(text)
}

/// The block-subset reader alone (`None`: not within the subset), for the tests that hold
/// it to libyaml.
pub fn read_block_subset(text: &str) -> Option<YamlStream> {
    super::block_subset::read(text)
}

/// [`parse_stream`] without the block-subset shortcut: libyaml, and saphyr where it panics.
pub fn read_with_libyaml_etc(text: &str) -> YamlStream {
    read_with_fallback(text, read_with_libyaml, read_with_saphyr)
}

/// `primary`'s result, or `fallback`'s if `primary` panics; a panic of both is raised again.
fn read_with_fallback(
    text: &str,
    primary: fn(&str) -> YamlStream,
    fallback: fn(&str) -> YamlStream,
) -> YamlStream {
    // The guard keeps the panic hook silent: a caught panic here is expected, not news.
    guard::caught(|| primary(text)).unwrap_or_else(|_| {
        guard::caught(|| fallback(text))
            .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
    })
}

/// One parser event, as the tree builder needs it; both parsers are translated to these.
enum YamlEvent {
    DocumentStart {
        explicit: bool,
    },
    DocumentEnd,
    Scalar {
        text: String,
        kind: ScalarKind,
        anchor: Option<String>,
    },
    Alias {
        anchor: String,
    },
    SequenceStart {
        anchor: Option<String>,
    },
    MappingStart {
        anchor: Option<String>,
    },
    /// The end of a sequence or of a mapping.
    CollectionEnd,
}

/// Builds the trees of a stream from [`YamlEvent`]s, within the nesting and alias budgets.
#[derive(Default)]
struct TreeBuilder {
    out: YamlStream,
    stack: Vec<Frame>,
    /// Lists of finished collections, kept for the next ones: a collection's items gather in
    /// a reused list and move once into an allocation of their exact size, so that growing
    /// lists leave no holes in the heap between the trees, which live for the whole scan.
    spare_items: Vec<Vec<Node>>,
    spare_entries: Vec<Vec<Entry>>,
    anchors: HashMap<String, Node>,
    alias_nodes: usize,
    alias_bytes: usize,
    doc_start: Option<(u32, bool)>,
    root: Option<Node>,
}

impl TreeBuilder {
    /// Adds one event, which runs from `start` to `end`. An error ends the stream;
    /// documents before it are kept.
    fn feed(&mut self, event: YamlEvent, start: Pos, end: Pos) -> Result<(), YamlError> {
        let span = Span::new(start, end);
        // A completed node, its anchor, and where it starts (an error there names the column).
        let completed: Option<(Node, Option<String>, Pos)> = match event {
            YamlEvent::DocumentStart { explicit } => {
                self.doc_start = Some((start.line, explicit));
                self.anchors.clear();
                None
            }
            YamlEvent::DocumentEnd => {
                // A document of only comments (or an explicit null) holds nothing.
                if let Some(root) = self.root.take().filter(|r| !r.is_null()) {
                    let (start_line, explicit_start) =
                        self.doc_start.unwrap_or((root.span.line, false));
                    self.out.docs.push(YamlDoc {
                        start_line,
                        explicit_start,
                        root,
                    });
                }
                self.doc_start = None;
                None
            }
            YamlEvent::Scalar { text, kind, anchor } => {
                if kind == ScalarKind::Block {
                    self.out
                        .block_scalar_lines
                        .push((span.line, span.end_line()));
                }
                // Short text sits inside the node; long text keeps the reader's buffer.
                let text = if text.len() <= std::mem::size_of::<CompactString>() {
                    CompactString::new(&text)
                } else {
                    CompactString::from(text)
                };
                Some((Node::new(span, kind, Value::Scalar(text)), anchor, start))
            }
            YamlEvent::Alias { anchor } => {
                let Some(target) = self.anchors.get(&anchor) else {
                    return Err(YamlError {
                        pos: start,
                        message: format!("alias *{anchor} refers to an unknown anchor"),
                    });
                };
                let (nodes, bytes) = target.weight();
                self.alias_nodes = self.alias_nodes.saturating_add(nodes);
                self.alias_bytes = self.alias_bytes.saturating_add(bytes);
                if let Some(error) = alias_budget_error(self.alias_nodes, self.alias_bytes, start) {
                    return Err(error);
                }
                // The copy keeps the anchor's content but takes the alias's position, so
                // findings point where the value is used.
                let mut node = target.clone();
                node.set_lines(span);
                Some((node, None, start))
            }
            YamlEvent::SequenceStart { anchor } => {
                let items = self.spare_items.pop().unwrap_or_default();
                self.open(
                    Frame::Seq {
                        start,
                        anchor,
                        items,
                    },
                    start,
                )?;
                None
            }
            YamlEvent::MappingStart { anchor } => {
                let entries = self.spare_entries.pop().unwrap_or_default();
                self.open(
                    Frame::Map {
                        start,
                        anchor,
                        entries,
                        pending_key: None,
                    },
                    start,
                )?;
                None
            }
            // A collection ends where its last child ends: the end event of a block
            // collection sits at the next token, possibly lines of comments later.
            // Trees live for the whole scan: a collection's items move from the reused list
            // they gathered in to an allocation of exactly their size.
            YamlEvent::CollectionEnd => match self.stack.pop() {
                Some(Frame::Seq {
                    start,
                    anchor,
                    mut items,
                }) => {
                    let span = Span::through(start.line, items.last().map_or(span, |n| n.span));
                    let value = Value::Seq(items.drain(..).collect());
                    self.spare_items.push(items);
                    Some((collection(span, value), anchor, start))
                }
                Some(Frame::Map {
                    start,
                    anchor,
                    mut entries,
                    ..
                }) => {
                    let span =
                        Span::through(start.line, entries.last().map_or(span, |e| e.value.span));
                    let value = Value::Map(entries.drain(..).collect());
                    self.spare_entries.push(entries);
                    Some((collection(span, value), anchor, start))
                }
                None => None,
            },
        };

        if let Some((node, anchor, start)) = completed {
            if let Some(anchor) = anchor {
                // The copy an anchor keeps counts too: nested anchors each copy their subtree.
                self.alias_bytes = self.alias_bytes.saturating_add(node.weight().1);
                if let Some(error) = alias_budget_error(self.alias_nodes, self.alias_bytes, start) {
                    return Err(error);
                }
                self.anchors.insert(anchor, node.clone());
            }
            match self.stack.last_mut() {
                Some(Frame::Seq { items, .. }) => items.push(node),
                Some(Frame::Map {
                    entries,
                    pending_key,
                    ..
                }) => match pending_key.take() {
                    Some(key) => entries.push(Entry { key, value: node }),
                    None => *pending_key = Some(node),
                },
                None => self.root = Some(node),
            }
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame, start: Pos) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError {
                pos: start,
                message: format!(
                    "nesting deeper than {MAX_DEPTH} levels; the rest of the file is not read"
                ),
            });
        }
        self.stack.push(frame);
        Ok(())
    }

    /// The stream so far, ended by `error` if there is one.
    fn finish(mut self, error: Option<YamlError>) -> YamlStream {
        self.out.error = error;
        self.out
    }
}

/// Reads `text` with libyaml-safer (libyaml's grammar and messages).
fn read_with_libyaml(text: &str) -> YamlStream {
    // libyaml-safer panics when some scalars run into the end of the input (it lacks
    // libyaml's NUL padding there); with a final line break they end as libyaml ends them.
    let appended = !text.ends_with(['\n', '\r']);
    let padded;
    let source = if appended {
        padded = format!("{text}\n");
        padded.as_str()
    } else {
        text
    };
    let mut builder = TreeBuilder::default();
    // Columns of the open collections: a block scalar's explicit indentation counts from the
    // innermost one, as in libyaml.
    let mut open_columns: Vec<u64> = Vec::new();
    let mut input = source.as_bytes();
    let mut parser = Parser::new();
    parser.set_input_string(&mut input);
    for item in parser {
        let event = match item {
            Ok(event) => event,
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
                return builder.finish(Some(error_at(e.problem_mark(), message)));
            }
        };
        let (start, end) = (pos(event.start_mark), pos(event.end_mark));
        let event = match event.data {
            EventData::StreamStart { .. } | EventData::StreamEnd => continue,
            EventData::DocumentStart { implicit, .. } => YamlEvent::DocumentStart {
                explicit: !implicit,
            },
            EventData::DocumentEnd { .. } => YamlEvent::DocumentEnd,
            EventData::Scalar {
                mut value,
                style,
                anchor,
                ..
            } => {
                let kind = match style {
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => ScalarKind::Quoted,
                    ScalarStyle::Literal | ScalarStyle::Folded => ScalarKind::Block,
                    _ => ScalarKind::Plain,
                };
                if appended
                    && kind == ScalarKind::Block
                    && event.end_mark.index >= text.len() as u64
                {
                    let parent_indent = open_columns.last().copied();
                    unappend_line_break(text, event.start_mark.index, parent_indent, &mut value);
                }
                YamlEvent::Scalar {
                    text: value,
                    kind,
                    anchor,
                }
            }
            EventData::Alias { anchor } => YamlEvent::Alias { anchor },
            EventData::SequenceStart { anchor, .. } => {
                open_columns.push(event.start_mark.column);
                YamlEvent::SequenceStart { anchor }
            }
            EventData::MappingStart { anchor, .. } => {
                open_columns.push(event.start_mark.column);
                YamlEvent::MappingStart { anchor }
            }
            EventData::SequenceEnd | EventData::MappingEnd => {
                open_columns.pop();
                YamlEvent::CollectionEnd
            }
        };
        if let Err(error) = builder.feed(event, start, end) {
            return builder.finish(Some(error));
        }
    }
    builder.finish(None)
}

/// Takes back from a block scalar that ends the file the line break [`read_with_libyaml`]
/// appended, so its value is libyaml's for the file as it is. The appended break ended the
/// last line: it shows in the value under `|+`, and under `|` when that line holds content
/// (more than the indentation); `|-` drops it anyway. `header_at` is the byte offset where
/// the scalar's event starts (its anchor, tag or indicator); `parent_indent` is the column
/// (from 0) of the collection that holds it.
fn unappend_line_break(text: &str, header_at: u64, parent_indent: Option<u64>, value: &mut String) {
    let Some(indicator) = usize::try_from(header_at)
        .ok()
        .and_then(|at| text.get(at..))
        .and_then(|rest| rest.find(['|', '>']).map(|i| &rest[i..]))
    else {
        return;
    };
    let header: String = indicator.chars().skip(1).take(2).collect();
    if header.contains('-') || !value.ends_with('\n') {
        return;
    }
    let keep = header.contains('+');
    // The indentation of the first line with content (every line after the header belongs to
    // the scalar: it runs to the end of the file).
    let body = indicator.split_once('\n').map_or("", |(_, body)| body);
    let explicit = header
        .chars()
        .find_map(|c| c.to_digit(10))
        .map(|digit| parent_indent.unwrap_or(0).saturating_add(u64::from(digit)))
        .and_then(|indent| usize::try_from(indent).ok());
    let indent = explicit.or_else(|| {
        body.lines()
            .find(|line| !line.trim_start_matches(' ').is_empty())
            .map(|line| line.len() - line.trim_start_matches(' ').len())
    });
    let last_line = text.rsplit(['\n', '\r']).next().unwrap_or("");
    let last_line_has_content = indent
        .is_some_and(|indent| last_line.len() > indent || last_line.contains(|c: char| c != ' '));
    if keep || last_line_has_content {
        value.pop();
    }
}

/// Reads `text` with saphyr-parser: only for texts on which libyaml-safer panics.
fn read_with_saphyr(text: &str) -> YamlStream {
    use saphyr_parser::{Event, Marker, ScalarStyle as Style};

    // saphyr counts lines from 1 and columns from 0.
    fn pos(marker: &Marker) -> Pos {
        Pos {
            line: u32::try_from(marker.line()).unwrap_or(u32::MAX).max(1),
            col: u32::try_from(marker.col().saturating_add(1)).unwrap_or(u32::MAX),
        }
    }
    // saphyr numbers anchors from 1; 0 is "no anchor".
    fn anchor(id: usize) -> Option<String> {
        (id != 0).then(|| id.to_string())
    }

    let mut builder = TreeBuilder::default();
    for item in saphyr_parser::Parser::new_from_str(text) {
        let (event, span) = match item {
            Ok(pair) => pair,
            Err(e) => {
                let error = YamlError {
                    pos: pos(e.marker()),
                    message: e.info().to_owned(),
                };
                return builder.finish(Some(error));
            }
        };
        let (start, end) = (pos(&span.start), pos(&span.end));
        let event = match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd => continue,
            Event::DocumentStart(explicit) => YamlEvent::DocumentStart { explicit },
            Event::DocumentEnd => YamlEvent::DocumentEnd,
            Event::Scalar(value, style, id, _tag) => YamlEvent::Scalar {
                text: value.into_owned(),
                kind: match style {
                    Style::SingleQuoted | Style::DoubleQuoted => ScalarKind::Quoted,
                    Style::Literal | Style::Folded => ScalarKind::Block,
                    Style::Plain => ScalarKind::Plain,
                },
                anchor: anchor(id),
            },
            Event::Alias(id) => YamlEvent::Alias {
                anchor: id.to_string(),
            },
            Event::SequenceStart(id, _tag) => YamlEvent::SequenceStart { anchor: anchor(id) },
            Event::MappingStart(id, _tag) => YamlEvent::MappingStart { anchor: anchor(id) },
            Event::SequenceEnd | Event::MappingEnd => YamlEvent::CollectionEnd,
        };
        if let Err(error) = builder.feed(event, start, end) {
            return builder.finish(Some(error));
        }
    }
    builder.finish(None)
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
        assert_eq!(c.span.line, 3);
    }

    /// A node is 32 bytes: its span keeps the lines, the end's column-1 bit and the
    /// scalar's kind in 8 bytes, and moving or copying lines keeps the kind.
    #[test]
    fn spans_keep_lines_and_scalar_kind_in_eight_bytes() {
        assert_eq!(std::mem::size_of::<Node>(), 32);
        let s = parse_stream("a: 'x'\nb: |\n  one\n  two\nc:\n  - 1\n  - 2\n");
        let root = &s.docs[0].root;
        let a = root.get("a").expect("a");
        assert_eq!(a.scalar_kind(), ScalarKind::Quoted);
        let b = root.get("b").expect("b");
        assert_eq!(b.scalar_kind(), ScalarKind::Block);
        assert_eq!((b.span.line, b.span.last_line()), (2, 4));
        let c = root.get("c").expect("c");
        assert_eq!(c.scalar_kind(), ScalarKind::Plain);
        assert_eq!((c.span.line, c.span.last_line()), (6, 7));
        assert_eq!(root.span.last_line(), 7);

        let mut moved = b.clone();
        moved.map_lines(&mut |line| line + 100);
        assert_eq!((moved.span.line, moved.span.last_line()), (102, 104));
        assert_eq!(moved.scalar_kind(), ScalarKind::Block);
        let mut copy = a.clone();
        copy.set_lines(c.span);
        assert_eq!((copy.span.line, copy.span.last_line()), (6, 7));
        assert_eq!(copy.scalar_kind(), ScalarKind::Quoted);
        copy.set_scalar_kind(ScalarKind::Plain);
        assert_eq!(copy.as_str(), Some("x"));
        assert_eq!(copy.scalar_kind(), ScalarKind::Plain);
        assert_eq!((copy.span.line, copy.span.last_line()), (6, 7));
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
        assert_eq!(root.get("use").map(|u| u.span.line), Some(2));
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

    fn scalar_a(text: &str) -> Option<String> {
        let s = parse_stream(text);
        assert!(s.error.is_none(), "{text:?}: {:?}", s.error);
        s.docs[0]
            .root
            .get("a")
            .and_then(Node::as_str)
            .map(str::to_owned)
    }

    /// libyaml-safer alone panics on these; the appended line break must not change values.
    #[test]
    fn block_scalars_at_end_of_input_keep_libyaml_values() {
        assert_eq!(scalar_a("a: |\n  x").as_deref(), Some("x"));
        assert_eq!(scalar_a("a: |-\n  x").as_deref(), Some("x"));
        assert_eq!(scalar_a("a: |+\n  x").as_deref(), Some("x"));
        assert_eq!(scalar_a("a: &k >\n  x\n  y").as_deref(), Some("x y"));
        // libyaml's values (PyYAML's CSafeLoader): a last line of spaces holds content past
        // the indentation, and none at the indentation.
        assert_eq!(scalar_a("a: |\n  x\n   ").as_deref(), Some("x\n "));
        assert_eq!(scalar_a("a: |+\n  x\n   ").as_deref(), Some("x\n "));
        assert_eq!(scalar_a("a: |\n  x\n  ").as_deref(), Some("x\n"));
        assert_eq!(scalar_a("a: |+\n  x\n  ").as_deref(), Some("x\n"));
        assert_eq!(scalar_a("a: |\n  x\n").as_deref(), Some("x\n"));
        let s = parse_stream("a: |\n  x");
        let a = s.docs[0].root.get("a").expect("a");
        assert_eq!(a.span.line, 1);
        assert_eq!(a.span.last_line(), 2);
        assert_eq!(s.docs[0].root.span.last_line(), 2);
    }

    #[test]
    fn a_backslash_ending_a_quoted_scalar_is_an_error() {
        let s = parse_stream("a: \"x\\");
        assert!(s.error.is_some());
    }

    /// yaml-test-suite WZ62: valid, and libyaml-safer 0.3.0 panics on it.
    #[test]
    fn saphyr_reads_what_libyaml_safer_cannot_finish() {
        let text = "{\n  foo : !!str,\n  !!str : bar,\n}\n";
        assert!(guard::caught(|| read_with_libyaml(text)).is_err());
        let s = parse_stream(text);
        assert!(s.error.is_none(), "{:?}", s.error);
        let root = &s.docs[0].root;
        assert_eq!(root.as_map().map(<[Entry]>::len), Some(2));
        assert_eq!(root.get("foo").map(|n| n.span.line), Some(2));
        assert_eq!(root.span.line, 1);
    }

    #[test]
    fn saphyr_errors_keep_their_position_and_budgets_hold() {
        let s = read_with_saphyr("a: 1\n---\nb: [1, 2\n");
        assert_eq!(s.docs.len(), 1);
        assert!(s.error.expect("error").pos.line >= 3);
        let s = read_with_saphyr(&wide_alias_bomb(100_000));
        assert!(s.error.expect("bomb").message.contains("alias bomb"));
        let s = read_with_saphyr(&format!("{}{}", "[".repeat(5000), "]".repeat(5000)));
        // saphyr stops first, at its own limit of the same order.
        let e = s.error.expect("deep");
        assert!(e.pos.col <= 258, "{e:?}");
        let s = read_with_saphyr("base: &b {x: 1}\nuse: *b\n");
        let used = s.docs[0].root.get("use").and_then(|u| u.get("x"));
        assert_eq!(used.and_then(Node::as_str), Some("1"));
    }

    #[test]
    fn a_panic_of_both_readers_reaches_the_caller() {
        fn panics(_: &str) -> YamlStream {
            panic!("reader bug")
        }
        let fell_back = read_with_fallback("a: 1\n", panics, read_with_saphyr);
        assert_eq!(fell_back.docs.len(), 1);
        let both = std::panic::catch_unwind(|| read_with_fallback("a: 1\n", panics, panics));
        assert!(both.is_err());
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
