//! A fast reader for the plain block YAML most manifests are written in, in front of libyaml.
//!
//! Nearly every Kubernetes manifest, kustomization and Argo CD Application is block mappings
//! and sequences of one-line scalars. For such a text this reader builds the same tree as
//! [`super::yaml::parse_stream`] does through libyaml (the same nodes, spans and documents)
//! several times faster: it reads lines instead of tokens. It accepts only a strict subset and
//! gives up on anything else (flow collections, block scalars, anchors, tags, multi-line or
//! escaped scalars, tabs, non-ASCII text, anything libyaml would reject), and the text is then
//! read by libyaml as before. So libyaml stays the grammar: this is a shortcut through what
//! both read alike, checked against libyaml on the YAML test suite and the shared corpora
//! (`tests/yaml_subset.rs`).

use compact_str::CompactString;

use super::yaml::{Entry, Node, Pos, ScalarKind, Span, Value, YamlDoc, YamlStream};

/// Deepest nesting read here; deeper texts go to libyaml (which applies the real limit).
const MAX_DEPTH: usize = 64;

/// Longest key read here: libyaml rejects a key of more than 1,024 characters.
const MAX_KEY: usize = 1000;

/// The stream of `text` when it is within the subset, else `None`.
pub(super) fn read(text: &str) -> Option<YamlStream> {
    // Printable ASCII and line feeds only: columns are bytes, and no tab, carriage return,
    // byte order mark or control character needs libyaml's rules.
    if !text
        .bytes()
        .all(|b| b == b'\n' || (0x20..0x7f).contains(&b))
    {
        return None;
    }
    let mut reader = Reader {
        b: text.as_bytes(),
        text,
        i: 0,
        line: 1,
        line_start: 0,
        depth: 0,
        spare_items: Vec::new(),
        spare_entries: Vec::new(),
    };
    let mut out = YamlStream::default();
    // The line of a `---` whose document has not begun.
    let mut marker: Option<u32> = None;
    while let Some(indent) = reader.skip_to_content() {
        if indent == 0 && reader.at_marker_line() {
            if !reader.at_document_start_marker() {
                return None;
            }
            marker = Some(reader.line);
            let after = reader.i + 3;
            reader.finish_line(after)?;
            continue;
        }
        reader.i += indent;
        let first_line = reader.line;
        let root = reader.block_node(indent)?;
        // A root ends at the end of the text or at the next document's `---`.
        match reader.skip_to_content() {
            None => {}
            Some(0) if reader.at_document_start_marker() => {}
            Some(_) => return None,
        }
        let (start_line, explicit_start) = match marker.take() {
            Some(line) => (line, true),
            None => (first_line, false),
        };
        out.docs.push(YamlDoc {
            start_line,
            explicit_start,
            root,
        });
    }
    Some(out)
}

/// A scalar as scanned, before it becomes a node.
struct Token {
    start: usize,
    /// Just past its last character (a quoted scalar's closing quote).
    end: usize,
    /// Where reading goes on: at the `:` of a key, else just past the scalar.
    after: usize,
    /// Followed by `:` and a space or line end: the scalar is a mapping key.
    is_key: bool,
    quoted: Option<u8>,
}

struct Reader<'t> {
    text: &'t str,
    b: &'t [u8],
    /// The cursor.
    i: usize,
    /// The cursor's line (from 1) and where that line starts.
    line: u32,
    line_start: usize,
    depth: usize,
    /// Lists reused for the items of collections being read: each collection moves its
    /// items once into an allocation of their size, as the libyaml tree builder does.
    spare_items: Vec<Vec<Node>>,
    spare_entries: Vec<Vec<Entry>>,
}

impl Reader<'_> {
    /// The position of byte `at` on the cursor's line.
    fn pos(&self, at: usize) -> Pos {
        Pos {
            line: self.line,
            col: u32::try_from(at - self.line_start + 1).unwrap_or(u32::MAX),
        }
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.b.get(at).copied()
    }

    fn spaces_from(&self, mut at: usize) -> usize {
        while self.byte(at) == Some(b' ') {
            at += 1;
        }
        at
    }

    /// Moves the cursor to the start of the line after byte `newline` (or to the end).
    fn next_line(&mut self, newline: usize) {
        if newline >= self.b.len() {
            self.i = self.b.len();
        } else {
            self.i = newline + 1;
            self.line += 1;
            self.line_start = self.i;
        }
    }

    /// From the start of a line, passes blank and comment lines. The indentation of the next
    /// line with content, the cursor left at that line's start; `None` at the end.
    fn skip_to_content(&mut self) -> Option<usize> {
        loop {
            let first = self.spaces_from(self.i);
            match self.byte(first) {
                None => {
                    self.i = self.b.len();
                    return None;
                }
                Some(b'\n') => self.next_line(first),
                Some(b'#') => {
                    let end = self.line_end(first);
                    self.next_line(end);
                }
                Some(_) => return Some(first - self.i),
            }
        }
    }

    fn line_end(&self, from: usize) -> usize {
        self.b[from.min(self.b.len())..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(self.b.len(), |p| from + p)
    }

    /// After a token ending at `at`: only spaces and a comment may follow on its line. Moves
    /// to the next line; `None` when something else follows.
    fn finish_line(&mut self, at: usize) -> Option<()> {
        let rest = self.spaces_from(at);
        match self.byte(rest) {
            None | Some(b'\n') => {}
            // A comment needs a space before it.
            Some(b'#') if rest > at => {}
            Some(_) => return None,
        }
        let end = self.line_end(rest);
        self.next_line(end);
        Some(())
    }

    /// At a line start: the line begins with `---` or `...` (a marker, or text libyaml reads
    /// differently).
    fn at_marker_line(&self) -> bool {
        let line = &self.b[self.i..];
        line.starts_with(b"---") || line.starts_with(b"...")
    }

    /// At a line start: the line is exactly `---`.
    fn at_document_start_marker(&self) -> bool {
        self.b[self.i..].starts_with(b"---") && matches!(self.byte(self.i + 3), None | Some(b'\n'))
    }

    /// A sequence entry's `-` at `at`.
    fn is_entry(&self, at: usize) -> bool {
        self.byte(at) == Some(b'-') && matches!(self.byte(at + 1), None | Some(b' ' | b'\n'))
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// The collection whose first line starts at the cursor, at column `indent`.
    fn block_node(&mut self, indent: usize) -> Option<Node> {
        if self.is_entry(self.i) {
            self.sequence(indent, false)
        } else {
            self.mapping(indent)
        }
    }

    /// A block mapping whose keys are at column `indent`; the cursor is at its first key.
    fn mapping(&mut self, indent: usize) -> Option<Node> {
        self.enter()?;
        let start = self.pos(self.i);
        let mut entries = self.spare_entries.pop().unwrap_or_default();
        loop {
            let token = self.token(self.i)?;
            if !token.is_key || token.after - token.start > MAX_KEY {
                return None;
            }
            let key = self.scalar(&token);
            self.i = token.after + 1;
            let value = self.value_of_key(indent)?;
            entries.push(Entry { key, value });
            match self.skip_to_content() {
                Some(next) if next == indent => {
                    if self.is_entry(self.i + next) || (next == 0 && self.at_marker_line()) {
                        if next == 0 && self.at_document_start_marker() {
                            break;
                        }
                        return None;
                    }
                    self.i += next;
                }
                Some(next) if next > indent => return None,
                _ => break,
            }
        }
        let end = entries.last().map(|e| e.value.span)?;
        let node = Node::new(
            Span::through(start.line, end),
            ScalarKind::Plain,
            Value::Map(entries.drain(..).collect()),
        );
        self.spare_entries.push(entries);
        self.depth -= 1;
        Some(node)
    }

    /// The value of a key at column `indent`; the cursor is just past the key's `:`.
    fn value_of_key(&mut self, indent: usize) -> Option<Node> {
        let empty_at = self.pos(self.i);
        let content = self.spaces_from(self.i);
        match self.byte(content) {
            None | Some(b'\n') => {}
            Some(b'#') if content > self.i => {}
            Some(_) => {
                let token = self.token(content)?;
                if token.is_key {
                    return None;
                }
                let node = self.scalar(&token);
                self.finish_line(token.after)?;
                return self.no_continuation(indent).map(|()| node);
            }
        }
        self.finish_line(content)?;
        match self.skip_to_content() {
            Some(next) if next > indent => {
                self.i += next;
                self.block_node(next)
            }
            // A sequence may sit at its key's own column.
            Some(next) if next == indent && self.is_entry(self.i + next) => {
                self.i += next;
                self.sequence(next, true)
            }
            _ => Some(null_at(empty_at)),
        }
    }

    /// After a one-line scalar in a collection at column `indent`: a deeper line would
    /// continue it (or be an error), which only libyaml reads.
    fn no_continuation(&mut self, indent: usize) -> Option<()> {
        match self.skip_to_content() {
            Some(next) if next > indent => None,
            _ => Some(()),
        }
    }

    /// A block sequence whose `-` are at column `indent`; the cursor is at the first `-`.
    /// `at_key_column`: the value of a key at the same column, which ends at the first line
    /// there that is no entry (the mapping goes on).
    fn sequence(&mut self, indent: usize, at_key_column: bool) -> Option<Node> {
        self.enter()?;
        let start = self.pos(self.i);
        let mut items = self.spare_items.pop().unwrap_or_default();
        loop {
            let after_dash = self.i + 1;
            let empty_at = self.pos(after_dash);
            let content = self.spaces_from(after_dash);
            let item = match self.byte(content) {
                None | Some(b'\n') => None,
                Some(b'#') if content > after_dash => None,
                Some(_) => Some(content),
            };
            let node = match item {
                None => {
                    self.finish_line(content)?;
                    match self.skip_to_content() {
                        Some(next) if next > indent => {
                            self.i += next;
                            self.block_node(next)?
                        }
                        _ => null_at(empty_at),
                    }
                }
                Some(content) => {
                    if self.is_entry(content) {
                        return None;
                    }
                    let token = self.token(content)?;
                    if token.is_key {
                        self.i = content;
                        self.mapping(content - self.line_start)?
                    } else {
                        let node = self.scalar(&token);
                        self.finish_line(token.after)?;
                        self.no_continuation(indent)?;
                        node
                    }
                }
            };
            items.push(node);
            match self.skip_to_content() {
                Some(next) if next == indent && self.is_entry(self.i + next) => self.i += next,
                Some(next) if next == indent && at_key_column => break,
                Some(0) if self.at_document_start_marker() => break,
                Some(next) if next >= indent => return None,
                _ => break,
            }
        }
        let end = items.last().map(|n| n.span)?;
        let node = Node::new(
            Span::through(start.line, end),
            ScalarKind::Plain,
            Value::Seq(items.drain(..).collect()),
        );
        self.spare_items.push(items);
        self.depth -= 1;
        Some(node)
    }

    /// Scans the one-line scalar at `at`: plain, or quoted without escapes.
    fn token(&self, at: usize) -> Option<Token> {
        match self.byte(at)? {
            quote @ (b'\'' | b'"') => self.quoted(at, quote),
            // Indicators: flow collections, anchors, aliases, tags, block scalars, directives,
            // comments, reserved characters, and `?`, `:` and `-` with a space.
            b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'%'
            | b'@' | b'`' | b'?' | b':' => None,
            b'-' if matches!(self.byte(at + 1), None | Some(b' ' | b'\n')) => None,
            _ => Some(self.plain(at)),
        }
    }

    fn plain(&self, start: usize) -> Token {
        let mut at = start;
        let mut end = start;
        let mut is_key = false;
        while let Some(c) = self.byte(at) {
            match c {
                b'\n' => break,
                b':' if matches!(self.byte(at + 1), None | Some(b' ' | b'\n')) => {
                    is_key = true;
                    break;
                }
                b'#' if self.byte(at - 1) == Some(b' ') => break,
                b' ' => {}
                _ => end = at + 1,
            }
            at += 1;
        }
        Token {
            start,
            end,
            after: if is_key { at } else { end },
            is_key,
            quoted: None,
        }
    }

    fn quoted(&self, start: usize, quote: u8) -> Option<Token> {
        let mut at = start + 1;
        loop {
            match self.byte(at)? {
                b'\n' | b'\\' => return None,
                b'\'' if quote == b'\'' && self.byte(at + 1) == Some(b'\'') => at += 2,
                c if c == quote => break,
                _ => at += 1,
            }
        }
        let end = at + 1;
        let colon = self.spaces_from(end);
        let is_key = self.byte(colon) == Some(b':')
            && matches!(self.byte(colon + 1), None | Some(b' ' | b'\n'));
        Some(Token {
            start,
            end,
            after: if is_key { colon } else { end },
            is_key,
            quoted: Some(quote),
        })
    }

    fn scalar(&self, token: &Token) -> Node {
        let span = Span::new(self.pos(token.start), self.pos(token.end));
        let (text, scalar_kind) = match token.quoted {
            None => (
                CompactString::new(&self.text[token.start..token.end]),
                ScalarKind::Plain,
            ),
            Some(quote) => {
                let inner = &self.text[token.start + 1..token.end - 1];
                let text = if quote == b'\'' && inner.contains("''") {
                    CompactString::from(inner.replace("''", "'"))
                } else {
                    CompactString::new(inner)
                };
                (text, ScalarKind::Quoted)
            }
        };
        Node::new(span, scalar_kind, Value::Scalar(text))
    }
}

/// The null of a key or entry with no value, where libyaml puts it: just past its `:` or `-`.
fn null_at(pos: Pos) -> Node {
    Node::new(
        Span::new(pos, pos),
        ScalarKind::Plain,
        Value::Scalar(CompactString::default()),
    )
}
