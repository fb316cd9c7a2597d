//! Comments, kept per document so that suppressions (`# envfence: ignore[...]`) on a
//! document's first lines or on an offending line can be found later.
//!
//! The YAML parser drops comments, so we find them in the raw lines: a `#` that starts a line
//! or follows white space, outside quotes, on a line that is not inside a block scalar.

use super::Document;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub line: u32,
    /// 1-based column of the `#`.
    pub col: u32,
    /// The text after `#`, trimmed.
    pub text: String,
}

/// The comment on one line of YAML, if any: (0-based char column of `#`, text after it).
pub fn find_in_line(line: &str) -> Option<(usize, &str)> {
    let mut in_single = false;
    let mut in_double = false;
    let mut escaped = false;
    let mut prev_is_space = true;
    let mut chars = line.char_indices().enumerate().peekable();
    while let Some((col, (byte, c))) = chars.next() {
        if in_double {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_double = false,
                _ => {}
            }
        } else if in_single {
            if c == '\'' {
                // `''` is an escaped quote inside single quotes.
                if chars.peek().is_some_and(|(_, (_, next))| *next == '\'') {
                    chars.next();
                } else {
                    in_single = false;
                }
            }
        } else {
            match c {
                '#' if prev_is_space => return Some((col, line[byte + 1..].trim())),
                // A quote opens a string only where a scalar can start.
                '"' if prev_is_space || line[..byte].ends_with([':', '[', '{', ',', '-']) => {
                    in_double = true
                }
                '\'' if prev_is_space || line[..byte].ends_with([':', '[', '{', ',', '-']) => {
                    in_single = true
                }
                _ => {}
            }
        }
        prev_is_space = c == ' ' || c == '\t';
    }
    None
}

/// Gives each document the comments from just after the previous document up to its last
/// line (so a comment above `apiVersion` belongs to the document below it).
pub fn attach(text: &str, block_scalar_lines: &[(u32, u32)], documents: &mut [Document]) {
    if documents.is_empty() || !text.contains('#') {
        return;
    }
    let mut blocks = block_scalar_lines.to_vec();
    blocks.sort_unstable();
    let mut block_iter = blocks.iter().peekable();
    let mut all = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
        while block_iter.peek().is_some_and(|(_, end)| *end < number) {
            block_iter.next();
        }
        // A block scalar's first line is its `|` indicator line, which may carry a comment.
        if block_iter
            .peek()
            .is_some_and(|(start, end)| *start < number && number <= *end)
        {
            continue;
        }
        if let Some((col, comment)) = find_in_line(line) {
            all.push(Comment {
                line: number,
                col: u32::try_from(col + 1).unwrap_or(u32::MAX),
                text: comment.to_owned(),
            });
        }
    }
    let mut next = all.into_iter().peekable();
    let count = documents.len();
    for (i, doc) in documents.iter_mut().enumerate() {
        let is_last = i + 1 == count;
        while let Some(c) = next.peek() {
            if c.line <= doc.last_line || is_last {
                doc.comments.extend(next.next());
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_comments_outside_quotes() {
        assert_eq!(find_in_line("# top"), Some((0, "top")));
        assert_eq!(find_in_line("a: b # note"), Some((5, "note")));
        assert_eq!(find_in_line("a: \"b # not\""), None);
        assert_eq!(find_in_line("a: 'it''s # not'"), None);
        assert_eq!(find_in_line("url: http://x/#frag"), None);
        assert_eq!(find_in_line("a: don't # yes"), Some((9, "yes")));
        assert_eq!(
            find_in_line("  - name: x  # envfence: ignore[rule] why"),
            Some((13, "envfence: ignore[rule] why"))
        );
    }
}
