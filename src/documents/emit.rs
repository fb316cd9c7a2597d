//! Writes a YAML tree back as text: block style, keys in document order, deterministic.
//!
//! What a reader makes of the output must be what it made of the input: a scalar keeps its
//! plain style when plain is safe (a plain `8080` stays a number, a plain `true` a bool), and a
//! string is quoted whenever plain style would change its type (`"8080"`, `"yes"`, `"null"`)
//! or its text (`: `, ` #`, leading indicators, surrounding spaces). A string of several lines
//! becomes a literal block when one can hold it, else a double-quoted scalar with escapes.
//! Tags are not kept by the reader, so none are written.

use super::yaml::{Node, ScalarKind, Value};

/// Longest key written as an implicit (`key: value`) key: libyaml refuses simple keys over
/// 1024 characters.
const MAX_IMPLICIT_KEY: usize = 1000;

/// The YAML text of one document holding `node`, ending with a line break (no `---`).
pub fn to_yaml(node: &Node) -> String {
    let mut out = String::new();
    match &node.value {
        Value::Scalar(text) => {
            scalar(&mut out, text, node.scalar_kind(), 0);
        }
        Value::Seq(items) if items.is_empty() => out.push_str("[]\n"),
        Value::Map(entries) if entries.is_empty() => out.push_str("{}\n"),
        _ => collection(&mut out, node, 0, false),
    }
    out
}

/// Writes a non-empty collection whose entries start at column `indent`. `inline`: the cursor
/// already stands at that column (after `- ` or `? `), so the first line is not indented.
fn collection(out: &mut String, node: &Node, indent: usize, inline: bool) {
    match &node.value {
        Value::Map(entries) => {
            for (i, entry) in entries.iter().enumerate() {
                if i > 0 || !inline {
                    pad(out, indent);
                }
                match simple_key(&entry.key) {
                    Some(key) => {
                        out.push_str(&key);
                        out.push(':');
                        match &entry.value.value {
                            // A sequence under a key sits at the key's column, as kubectl writes it.
                            Value::Seq(items) if !items.is_empty() => {
                                out.push('\n');
                                collection(out, &entry.value, indent, false);
                            }
                            Value::Map(entries) if !entries.is_empty() => {
                                out.push('\n');
                                collection(out, &entry.value, indent + 2, false);
                            }
                            _ => {
                                out.push(' ');
                                item(out, &entry.value, indent);
                            }
                        }
                    }
                    None => {
                        // An explicit entry: a key that is a collection, or too long or
                        // multi-line for an implicit key.
                        out.push_str("? ");
                        item(out, &entry.key, indent);
                        pad(out, indent);
                        out.push_str(": ");
                        item(out, &entry.value, indent);
                    }
                }
            }
        }
        Value::Seq(items) => {
            for (i, node) in items.iter().enumerate() {
                if i > 0 || !inline {
                    pad(out, indent);
                }
                out.push_str("- ");
                item(out, node, indent);
            }
        }
        Value::Scalar(text) => scalar(out, text, node.scalar_kind(), indent),
    }
}

/// Writes a node after `- `, `? `, `: ` or `key: ` of a collection at column `indent`: a
/// scalar or empty collection on the same line, a collection compactly from the cursor.
fn item(out: &mut String, node: &Node, indent: usize) {
    match &node.value {
        Value::Scalar(text) => scalar(out, text, node.scalar_kind(), indent),
        Value::Seq(items) if items.is_empty() => out.push_str("[]\n"),
        Value::Map(entries) if entries.is_empty() => out.push_str("{}\n"),
        _ => collection(out, node, indent + 2, true),
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// The text of a key that can be written as `key: `, or `None` when it needs `? `.
fn simple_key(key: &Node) -> Option<String> {
    let Value::Scalar(text) = &key.value else {
        return None;
    };
    if text.len() > MAX_IMPLICIT_KEY {
        return None;
    }
    match inline_scalar(text, key.scalar_kind()) {
        Inline::Plain(t) => Some(t.to_owned()),
        Inline::Quoted => Some(double_quoted(text)),
        Inline::Literal => None,
    }
}

/// How a scalar is written on one line, or that it wants a literal block.
enum Inline<'a> {
    Plain(&'a str),
    Quoted,
    Literal,
}

fn inline_scalar(text: &str, kind: ScalarKind) -> Inline<'_> {
    match kind {
        ScalarKind::Plain if text.is_empty() => Inline::Plain("null"),
        ScalarKind::Plain if plain_safe(text) => Inline::Plain(text),
        ScalarKind::Quoted | ScalarKind::Block if plain_safe(text) && !looks_typed(text) => {
            Inline::Plain(text)
        }
        _ if text.contains('\n') && literal_safe(text) => Inline::Literal,
        _ => Inline::Quoted,
    }
}

/// Writes a scalar held by a collection at column `indent` (a literal block's lines go two
/// columns further), with the line break that ends it.
fn scalar(out: &mut String, text: &str, kind: ScalarKind, indent: usize) {
    match inline_scalar(text, kind) {
        Inline::Plain(t) => out.push_str(t),
        Inline::Quoted => out.push_str(&double_quoted(text)),
        Inline::Literal => {
            literal(out, text, indent + 2);
            return;
        }
    }
    out.push('\n');
}

/// A literal block (`|`) whose lines start at column `indent`.
fn literal(out: &mut String, text: &str, indent: usize) {
    let body = text.trim_end_matches('\n');
    let trailing = text.len() - body.len();
    out.push('|');
    // Lines that start with spaces would set the indentation themselves: say it instead.
    let first = body.lines().find(|l| !l.is_empty()).unwrap_or("");
    if first.starts_with([' ', '\t']) {
        out.push('2');
    }
    match trailing {
        0 => out.push('-'),
        1 => {}
        _ => out.push('+'),
    }
    out.push('\n');
    for line in body.split('\n') {
        if !line.is_empty() {
            pad(out, indent);
            out.push_str(line);
        }
        out.push('\n');
    }
    // The first trailing break ended the last line above; `+` keeps the others.
    for _ in 1..trailing {
        out.push('\n');
    }
}

/// A double-quoted scalar on one line, every break and unprintable character escaped.
fn double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if printable(c) => out.push(c),
            c if u32::from(c) <= 0xFF => out.push_str(&format!("\\x{:02X}", u32::from(c))),
            c if u32::from(c) <= 0xFFFF => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08X}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

/// YAML's printable characters, less the ones readers treat as line breaks or byte-order marks.
fn printable(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7E}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}')
}

/// Whether a literal block holds `text` exactly: printable lines (tabs allowed), and not only
/// line breaks (a block of empty lines reads back as less).
fn literal_safe(text: &str) -> bool {
    text.chars().all(|c| c == '\n' || c == '\t' || printable(c))
        && text.trim_end_matches('\n').chars().any(|c| c != '\n')
        && !text.starts_with('\n')
}

/// Whether `text`, written plain in a block collection, reads back as the same plain text.
fn plain_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    if !text.chars().all(|c| c == '\t' || printable(c)) {
        return false;
    }
    if text.starts_with([' ', '\t']) || text.ends_with([' ', '\t', ':']) {
        return false;
    }
    // Indicators that start something else: `-` only before a non-space (`-Xmx1g`).
    let second = text[first.len_utf8()..].chars().next();
    let indicator = match first {
        '-' => second.is_none_or(|c| c == ' ' || c == '\t'),
        '?' | ':' | ',' | '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>' | '\''
        | '"' | '%' | '@' | '`' => true,
        _ => false,
    };
    if indicator || text.starts_with("---") || text.starts_with("...") {
        return false;
    }
    let bytes = text.as_bytes();
    !bytes.windows(2).any(|w| {
        (w[0] == b':' && (w[1] == b' ' || w[1] == b'\t'))
            || ((w[0] == b' ' || w[0] == b'\t') && w[1] == b'#')
    })
}

/// Whether a YAML 1.1 or 1.2 reader (go-yaml, kubectl, serde_yaml) might read `text`, written
/// plain, as something other than a string: null, a bool, a number, a date, a merge key.
/// Generous on purpose: a string quoted needlessly reads the same.
fn looks_typed(text: &str) -> bool {
    const WORDS: &[&str] = &[
        "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "y", "Y",
        "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
        "<<", "=",
    ];
    if WORDS.contains(&text) {
        return true;
    }
    // No number, date or bool spans lines.
    if text.contains('\n') {
        return false;
    }
    let mut chars = text.chars();
    let first = chars.next();
    let second = chars.next();
    match first {
        Some(c) if c.is_ascii_digit() => true,
        Some('+' | '-' | '.') => {
            second.is_some_and(|c| c.is_ascii_digit() || c == '.')
                || matches!(
                    text.to_ascii_lowercase().as_str(),
                    ".inf" | "+.inf" | "-.inf" | ".nan"
                )
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::yaml::parse_stream;

    /// The tree as its meaning: text, plain or not, nulls alike whatever their spelling.
    fn same_tree(a: &Node, b: &Node) -> Result<(), String> {
        match (&a.value, &b.value) {
            (Value::Scalar(x), Value::Scalar(y)) => {
                if a.is_null() && b.is_null() {
                    return Ok(());
                }
                if x != y || a.is_null() != b.is_null() {
                    return Err(format!("scalar {x:?} became {y:?}"));
                }
                // A plain scalar that may be a number or bool must stay plain; any other is a
                // string however it is written.
                if a.scalar_kind() == ScalarKind::Plain
                    && b.scalar_kind() != ScalarKind::Plain
                    && looks_typed(x)
                {
                    return Err(format!("plain {x:?} became quoted"));
                }
                Ok(())
            }
            (Value::Seq(x), Value::Seq(y)) if x.len() == y.len() => x
                .iter()
                .zip(y.iter())
                .try_for_each(|(p, q)| same_tree(p, q)),
            (Value::Map(x), Value::Map(y)) if x.len() == y.len() => {
                x.iter().zip(y.iter()).try_for_each(|(p, q)| {
                    same_tree(&p.key, &q.key)?;
                    same_tree(&p.value, &q.value)
                })
            }
            _ => Err("shape changed".to_owned()),
        }
    }

    fn serde_docs(text: &str) -> Option<Vec<serde_yaml::Value>> {
        use serde::Deserialize;
        serde_yaml::Deserializer::from_str(text)
            .map(serde_yaml::Value::deserialize)
            .collect::<Result<Vec<_>, _>>()
            .ok()
    }

    /// Emits every document of `input` and reads the output back with both readers.
    fn round_trip(input: &str, check_serde: bool) -> Result<(), String> {
        let stream = parse_stream(input);
        if stream.error.is_some() {
            return Ok(());
        }
        let mut emitted = Vec::new();
        for doc in &stream.docs {
            let text = to_yaml(&doc.root);
            let again = parse_stream(&text);
            if let Some(e) = &again.error {
                return Err(format!("emitted text does not parse ({e:?}):\n{text}"));
            }
            match again.docs.as_slice() {
                [one] => same_tree(&doc.root, &one.root).map_err(|e| format!("{e} in:\n{text}"))?,
                [] if doc.root.is_null() => {}
                _ => return Err(format!("{} documents from:\n{text}", again.docs.len())),
            }
            emitted.push(text);
        }
        if check_serde {
            if let Some(before) = serde_docs(input) {
                let before: Vec<_> = before.into_iter().filter(|v| !v.is_null()).collect();
                // An empty stream reads as one null document.
                let after: Vec<_> = serde_docs(&emitted.join("---\n"))
                    .ok_or_else(|| format!("serde_yaml rejects:\n{}", emitted.join("---\n")))?
                    .into_iter()
                    .filter(|v| !v.is_null())
                    .collect();
                if before != after {
                    return Err(format!(
                        "serde_yaml reads {after:?}, not {before:?}, from:\n{}",
                        emitted.join("---\n")
                    ));
                }
            }
        }
        Ok(())
    }

    #[test]
    fn tricky_scalars_read_back_the_same() {
        let inputs = [
            "port: 8080\nquoted: \"8080\"\nfloat: 1.5e3\nhex: 0x1F\noctal: 0777\n",
            "a: yes\nb: 'yes'\nc: \"on\"\nd: 'null'\ne: ~\nf:\ng: ''\nh: '~'\ni: \"true\"\n",
            "date: 2024-01-01\nd2: '2024-01-01'\nver: '1.2.3'\nv: v1.2\nneg: '-1'\ninf: '.inf'\n",
            "colon: 'a: b'\nhash: 'a #b'\nurl: http://x.example/a#frag\ntime: '12:30'\n",
            "lead: '- x'\nstar: '*x'\namp: '&x'\nbang: '!x'\npct: '%x'\nat: '@x'\nq: '?x'\n",
            "sp: ' padded '\ntab: \"\\tx\"\nnul: \"a\\0b\"\nbell: \"\\a\"\nnel: \"\\N\"\nbom: \"\\uFEFF\"\n",
            "dash: '-'\ndashes: '---'\ndots: '...'\nflag: --verbose\nxmx: -Xmx1g\nmerge: '<<'\n",
            "script: |\n  #!/bin/sh\n  echo hi\nkeep: |+\n  a\n\n\nstrip: |-\n  a\n  b\n",
            "indented: |2\n    starts with spaces\n  and not\nfolded: >\n  one\n  two\n\n  three\n",
            "crlf: \"a\\r\\nb\"\nonly_breaks: \"\\n\\n\"\nlead_break: \"\\nx\"\nunicode: \"héllo ☃ \\U0001F600\"\n",
            "\"key: with colon\": 1\n'8080': port\n? [a, b]\n: seq key\n? {x: 1}\n: map key\n",
            "? |\n  multi\n  line key\n: v\n",
            "list:\n- a\n- - nested\n  - seq\n- k: v\n  k2: [1, '2']\n- {}\n- []\n- ''\n-\n",
            "anchors: &a {x: 1}\nalias: *a\n",
            "\"\": empty key\n~: null key\n",
            "just a scalar\n",
            "'123'\n",
            "- |\n   deeper\n  less\n",
            "a: \"trailing space \\n\"\nb: \"x\\n  \\ny\\n\"\nc: \"ends with ws\\n  \"\n",
            "k: \"\\u2028sep\"\nl: \"a\\u0085b\"\nm: \"back\\\\slash\"\nn: 'it''s'\n",
            "deep:\n  deeper:\n    deepest:\n    - x: |\n        block\n      y: 1\n",
        ];
        for input in inputs {
            if let Err(e) = round_trip(input, true) {
                panic!("{input:?}: {e}");
            }
        }
    }

    #[test]
    fn output_is_block_style_and_keeps_key_order() {
        let stream = parse_stream(
            "kind: Deployment\nmetadata: {name: web, labels: {app: web}}\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers: [{name: c, image: 'nginx:1', args: ['--port', '8080']}]\n",
        );
        assert_eq!(
            to_yaml(&stream.docs[0].root),
            "kind: Deployment\nmetadata:\n  name: web\n  labels:\n    app: web\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n      - name: c\n        image: nginx:1\n        args:\n        - --port\n        - \"8080\"\n"
        );
    }

    /// Every valid input of the official YAML test suite (`../shared/yaml-test-suite/`, when
    /// present beside the checkout) reads back as the same tree.
    #[test]
    fn the_yaml_test_suite_reads_back_the_same() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("shared")
            .join("yaml-test-suite");
        if !dir.is_dir() {
            println!("skipped: {} is absent", dir.display());
            return;
        }
        let mut pending = vec![dir];
        let (mut checked, mut failures) = (0, Vec::new());
        while let Some(folder) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                // `error` marks the suite's invalid inputs.
                if path.file_name().is_none_or(|n| n != "in.yaml") || folder.join("error").exists()
                {
                    continue;
                }
                let Ok(input) = std::fs::read_to_string(&path) else {
                    continue;
                };
                checked += 1;
                // Tags change serde_yaml's values but are not in the tree: compare trees only.
                let check_serde = !input.contains('!');
                if let Err(e) = round_trip(&input, check_serde) {
                    failures.push(format!("{}: {e}", folder.display()));
                }
            }
        }
        assert!(checked > 250, "only {checked} cases");
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }
}
