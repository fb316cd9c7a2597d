//! The rule-head and `# METADATA` reader: what the text of a policy file declares, which
//! regorus does not report. Rule heads are found by name at the start of a line, as `opa fmt`
//! writes them.

use super::{Metadata, SETS};

/// What the text of a policy file declares: rule heads of the reporting sets and tests, and
/// the `# METADATA` blocks before them.
#[derive(Debug, Default)]
pub(super) struct Heads {
    pub sets: Vec<(&'static str, Metadata)>,
    pub tests: Vec<String>,
    pub package_metadata: Metadata,
}

/// Finds rule heads by their name at the start of a line, as `opa fmt` writes them.
pub(super) fn scan_heads(text: &str) -> Heads {
    let mut heads = Heads::default();
    let mut pending: Option<Metadata> = None;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "# METADATA" {
            let mut yaml = String::new();
            while let Some(next) = lines.peek() {
                let Some(body) = next.trim_start().strip_prefix('#') else {
                    break;
                };
                yaml.push_str(body.strip_prefix(' ').unwrap_or(body));
                yaml.push('\n');
                lines.next();
            }
            pending = Some(parse_metadata(&yaml));
            continue;
        }
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let metadata = pending.take().unwrap_or_default();
        if name == "package" {
            heads.package_metadata = metadata;
            continue;
        }
        let after = &line[name.len()..];
        let is_head =
            after.is_empty() || after.starts_with([' ', '[', '{', ':', '=', '(', '\t', '.']);
        if !is_head {
            continue;
        }
        if let Some((set, _)) = SETS.iter().find(|(s, _)| *s == name) {
            if !heads.sets.iter().any(|(s, _)| s == set) {
                heads.sets.push((set, metadata));
            }
        } else if name.starts_with("test_") && !heads.tests.contains(&name) {
            heads.tests.push(name);
        }
    }
    heads
}

fn parse_metadata(yaml: &str) -> Metadata {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap_or_default();
    let field = |key: &str| {
        value
            .get(key)
            .and_then(serde_yaml::Value::as_str)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    Metadata {
        title: field("title"),
        description: field("description"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_and_metadata_are_found() {
        let text = "# METADATA\n# title: Package title\npackage envfence.x\n\n\
                    # METADATA\n# title: Deny title\n# description: Why.\n\
                    deny contains msg if {\n\tmsg := \"x\"\n}\n\nwarn[msg] {\n}\n\
                    test_one if true\ndeny_helper := 1\n";
        let heads = scan_heads(text);
        assert_eq!(
            heads.package_metadata.title.as_deref(),
            Some("Package title")
        );
        assert_eq!(heads.sets.len(), 2);
        assert_eq!(heads.sets[0].0, "deny");
        assert_eq!(heads.sets[0].1.description.as_deref(), Some("Why."));
        assert_eq!(heads.sets[1].0, "warn");
        assert_eq!(heads.tests, vec!["test_one".to_owned()]);
    }
}
