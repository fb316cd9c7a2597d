//! A policy's nesting, bounded before regorus reads it.
//!
//! regorus parses, analyses and frees a policy's expressions recursively, so a policy file
//! with a reference chain of some thousands of parts (`input["a"]["a"]...`, one part per line)
//! or brackets nested as deep overflows the stack and aborts the scan. Policies from a
//! repository's config are the pull request author's code: such a file is refused up front,
//! with its line and column, long before any real policy comes near the limits.

/// Brackets, braces and parentheses open at once.
pub const MAX_NESTING: usize = 100;

/// Parts of one reference (`input.object.labels["team"]` has four).
pub const MAX_REFERENCE_PARTS: usize = 500;

/// Where a policy's text goes past a limit: `line:col: what`; `None` when it stays within.
pub fn check(text: &str) -> Option<String> {
    // Reference parts counted per nesting level: a part inside brackets starts its own count.
    let mut parts: Vec<usize> = vec![0];
    let mut previous = ' ';
    let mut chars = text.chars().peekable();
    let (mut line, mut col) = (1usize, 0usize);
    while let Some(c) = chars.next() {
        col += 1;
        let level = parts.len() - 1;
        match c {
            '\n' => {
                line += 1;
                col = 0;
                parts[level] = 0;
            }
            '#' => {
                // A comment runs to the end of the line.
                while chars.peek().is_some_and(|&n| n != '\n') {
                    chars.next();
                }
            }
            '"' | '`' => {
                // A string: its brackets and dots are text. Escapes in "..." skip a character.
                while let Some(s) = chars.next() {
                    col += 1;
                    if s == '\n' {
                        line += 1;
                        col = 0;
                    }
                    if c == '"' && s == '\\' {
                        chars.next();
                        col += 1;
                    } else if s == c {
                        break;
                    }
                }
            }
            '.' | '[' => {
                let continues =
                    previous.is_alphanumeric() || matches!(previous, '_' | ']' | ')' | '"' | '`');
                parts[level] = if continues { parts[level] + 1 } else { 0 };
                if parts[level] > MAX_REFERENCE_PARTS {
                    return Some(format!(
                        "{line}:{col}: a reference of more than {MAX_REFERENCE_PARTS} parts"
                    ));
                }
                if c == '[' {
                    parts.push(0);
                }
            }
            '(' | '{' => parts.push(0),
            ')' | ']' | '}' => {
                if parts.len() > 1 {
                    parts.pop();
                }
            }
            c if c.is_alphanumeric() || c == '_' || c.is_whitespace() => {}
            _ => parts[level] = 0,
        }
        if parts.len() > MAX_NESTING {
            return Some(format!(
                "{line}:{col}: brackets nested more than {MAX_NESTING} deep"
            ));
        }
        if !c.is_whitespace() {
            previous = c;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_policies_pass() {
        for text in [
            include_str!("../../../examples/policies/default_deny.rego"),
            include_str!("../../../examples/policies/latest_tag.rego"),
            include_str!("../../../examples/policies/team_jobs.rego"),
        ] {
            assert_eq!(check(text), None);
        }
    }

    #[test]
    fn long_chains_and_deep_nesting_are_refused_with_their_place() {
        let chain = format!("deny if {{\n\tinput{} == 1\n}}", "[\n\"a\"]".repeat(600));
        let refused = check(&chain).expect("refused");
        assert!(refused.contains("more than 500 parts"), "{refused}");
        assert!(refused.starts_with("502:"), "{refused}");
        let nested = format!("x := {}1{}", "(".repeat(150), ")".repeat(150));
        assert_eq!(
            check(&nested).as_deref(),
            Some("1:105: brackets nested more than 100 deep")
        );
        // Brackets and dots in strings and comments are text.
        let quoted = format!("x := \"{}\" # {}", "[.".repeat(1000), "(".repeat(1000));
        assert_eq!(check(&quoted), None);
        // Many short references in a row are not one long one.
        let many = "input.a.b == 1\n".repeat(1000);
        assert_eq!(check(&many), None);
    }
}
