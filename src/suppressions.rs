//! Suppressions (DESIGN §6): an `envfence.dev/ignore: "<rule>[,<rule>]: <reason>"` annotation
//! on a resource, or a `# envfence: ignore[<rule>,...] <reason>` comment on a document's first
//! lines or on the offending line. Suppressed findings stay in the report, marked
//! `suppressed`; suppressions that silence nothing, name an unknown rule or give no reason are
//! reported as `unused-suppression`.

use std::sync::Arc;

use crate::documents::{Document, SourceFile};
use crate::findings::{Finding, Location};
use crate::rules::{Policies, RuleId};

pub const ANNOTATION: &str = "envfence.dev/ignore";

/// Where a suppression applies.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    /// Every finding about the document, or located inside it.
    Document { first: u32, last: u32 },
    /// Findings located on this line.
    Line(u32),
}

#[derive(Debug, Clone)]
struct Suppression {
    file: Arc<str>,
    /// Where it is written.
    line: u32,
    rules: Vec<String>,
    reason: Option<String>,
    scope: Scope,
    /// Whether it silenced any finding.
    used: bool,
}

impl Suppression {
    fn covers(&self, finding: &Finding) -> bool {
        if !self.rules.iter().any(|r| r == finding.rule.as_str()) {
            return false;
        }
        match self.scope {
            Scope::Line(line) => {
                *finding.location.file == *self.file && finding.location.line == line
            }
            Scope::Document { first, last } => {
                let about = finding.subject.as_ref().is_some_and(|(file, line)| {
                    **file == *self.file && (first..=last).contains(line)
                });
                let inside = *finding.location.file == *self.file
                    && (first..=last).contains(&finding.location.line);
                about || inside
            }
        }
    }
}

/// `rule-a,rule-b: reason` → (rules, reason).
fn parse_annotation(value: &str) -> (Vec<String>, Option<String>) {
    let (rules, reason) = value.split_once(':').unwrap_or((value, ""));
    (split_rules(rules), non_empty(reason))
}

/// `envfence: ignore[rule-a,rule-b] reason` → (rules, reason), for a comment's text.
fn parse_comment(text: &str) -> Option<(Vec<String>, Option<String>)> {
    let rest = text
        .strip_prefix("envfence:")?
        .trim_start()
        .strip_prefix("ignore[")?;
    let (rules, reason) = rest.split_once(']')?;
    Some((split_rules(rules), non_empty(reason)))
}

fn split_rules(text: &str) -> Vec<String> {
    text.split(',')
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .collect()
}

fn non_empty(text: &str) -> Option<String> {
    let t = text.trim().trim_start_matches([':', '-']).trim();
    (!t.is_empty()).then(|| t.to_owned())
}

fn collect(doc: &Document, out: &mut Vec<Suppression>) {
    let whole = Scope::Document {
        first: doc.header_line,
        last: doc.last_line,
    };
    if let Some(value) = doc.annotations.get(ANNOTATION) {
        let (rules, reason) = parse_annotation(value);
        let line = doc
            .line_of(&format!("metadata.annotations[\"{ANNOTATION}\"]"))
            .unwrap_or(doc.first_line);
        out.push(Suppression {
            file: Arc::clone(&doc.file),
            line,
            rules,
            reason,
            scope: whole.clone(),
            used: false,
        });
    }
    for c in &doc.comments {
        let Some((rules, reason)) = parse_comment(&c.text) else {
            continue;
        };
        // On the document's first lines (up to its first key) it covers the document; on any
        // other line, the findings on that line.
        let scope = if c.line <= doc.first_line {
            whole.clone()
        } else {
            Scope::Line(c.line)
        };
        out.push(Suppression {
            file: Arc::clone(&doc.file),
            line: c.line,
            rules,
            reason,
            scope,
            used: false,
        });
    }
}

/// Marks suppressed findings and appends `unused-suppression` findings.
pub fn apply(files: &[SourceFile], policies: &Policies, findings: &mut Vec<Finding>) {
    let mut all = Vec::new();
    for doc in files.iter().flat_map(|f| f.documents.iter()) {
        collect(doc, &mut all);
    }
    if all.is_empty() {
        return;
    }
    for finding in findings.iter_mut() {
        for s in all.iter_mut() {
            if s.covers(finding) {
                finding.suppressed = true;
                s.used = true;
            }
        }
    }
    let Some(severity) = policies.severity(RuleId::UnusedSuppression) else {
        return;
    };
    for s in &all {
        let unknown: Vec<&str> = s
            .rules
            .iter()
            .map(String::as_str)
            .filter(|r| RuleId::parse(r).is_none())
            .collect();
        let mut problems = Vec::new();
        if s.rules.is_empty() {
            problems.push("names no rule".to_owned());
        }
        if !unknown.is_empty() {
            problems.push(format!("names unknown rule {}", unknown.join(", ")));
        }
        if s.reason.is_none() {
            problems.push("gives no reason (write why after the rule ids)".to_owned());
        }
        if !s.used && unknown.is_empty() && !s.rules.is_empty() {
            problems.push(format!(
                "silenced nothing: no {} finding here",
                s.rules.join(", ")
            ));
        }
        if problems.is_empty() {
            continue;
        }
        findings.push(
            Finding::new(
                RuleId::UnusedSuppression,
                severity,
                Location::new(&s.file, s.line),
                format!("suppression {}", problems.join("; ")),
            )
            .discriminator(&s.rules.join(",")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_annotations_and_comments() {
        assert_eq!(
            parse_annotation("nonprod-on-prod-cluster, mixed-environment-cluster: demo only"),
            (
                vec![
                    "nonprod-on-prod-cluster".to_owned(),
                    "mixed-environment-cluster".to_owned()
                ],
                Some("demo only".to_owned())
            )
        );
        assert_eq!(
            parse_annotation("invalid-yaml"),
            (vec!["invalid-yaml".to_owned()], None)
        );
        assert_eq!(
            parse_comment("envfence: ignore[invalid-yaml] generated file"),
            Some((
                vec!["invalid-yaml".to_owned()],
                Some("generated file".to_owned())
            ))
        );
        assert_eq!(
            parse_comment("envfence: ignore[a,b]"),
            Some((vec!["a".to_owned(), "b".to_owned()], None))
        );
        assert_eq!(parse_comment("just a comment"), None);
    }
}
