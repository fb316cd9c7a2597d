//! Repository text made safe for a terminal or a CI log.
//!
//! File names, resource names and quoted values come from the scanned repository, which may
//! be hostile. In a terminal a control character can move the cursor or restyle the screen;
//! in a GitHub Actions log a line that starts with `::` (after any whitespace) is a workflow
//! command, and `##[` anywhere in a line is the legacy form. Every human-readable renderer
//! (text, topology text, explain, annotations, Markdown, Mermaid, DOT) passes repository text
//! through [`text`], so no repository text can start a line or hide itself:
//! - control characters (C0, DEL, C1) become Rust-style escapes: `\n`, `\r`, `\t`, `\u{1b}`;
//! - invisible text-direction overrides (U+202A–U+202E, U+2066–U+2069) and the Unicode line
//!   and paragraph separators become `\u{…}` too;
//! - `##[` becomes `##\[`;
//! - a leading `::` (after any whitespace) becomes `\u{3a}:`, so that text placed at the start
//!   of a line (a file name heading the text report) never reads as a workflow command, even
//!   where envfence's own fence around its output is not there (a log replayed elsewhere).
//!
//! Backslashes are left as they are, so the escapes are for reading, not for reversing.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether [`text`] escapes `c`.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}'
        )
}

/// `text` with control characters escaped and `##[` neutralised; borrowed when clean.
pub fn text(text: &str) -> Cow<'_, str> {
    let leading_command = text.trim_start().starts_with("::");
    if !text.contains(needs_escape) && !text.contains("##[") && !leading_command {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut first_colon = leading_command;
    for c in text.chars() {
        if first_colon && c == ':' {
            out.push_str("\\u{3a}");
            first_colon = false;
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out.replace("##[", "##\\["))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_legacy_commands_are_neutralised() {
        assert_eq!(
            text("x\n::error title=pwned::y.yaml"),
            "x\\n::error title=pwned::y.yaml"
        );
        assert_eq!(text("a\r\tb\u{1b}[31m"), "a\\r\\tb\\u{1b}[31m");
        assert_eq!(text("name ##[group]x"), "name ##\\[group]x");
        assert_eq!(text("evil\u{202e}lmay.yaml"), "evil\\u{202e}lmay.yaml");
        assert!(matches!(text("apps/web/deploy.yaml ✓"), Cow::Borrowed(_)));
        assert_eq!(text("::error::x.yaml"), "\\u{3a}:error::x.yaml");
        assert_eq!(text("  ::stop-commands::t"), "  \\u{3a}:stop-commands::t");
        assert_eq!(text("a::b"), "a::b");
    }
}
