//! Findings: each message of a set as a finding, with a rule id `rego/<package>/<rule>`
//! (interned, so that [`RuleId`] stays `Copy`), a severity, a location and the placement's
//! resource, cluster and evidence.

use std::sync::Arc;

use regorus::Value;
use serde::{Deserialize, Serialize};

use super::eval::Subject;
use super::input::field;
use super::{Metadata, Package, RegoPolicies, RuleId, SETS};
use crate::findings::{Finding, Location, Severity};
use crate::rules::placement::resource_of;
use crate::rules::RuleContext;

/// Characters of one message kept in a finding.
pub const MAX_MESSAGE_CHARS: usize = 2000;

pub use crate::vocabulary::parse_rego_id as parse_id;

/// A rule name a policy gives (`rule` of a message) as the last part of a rule id: characters
/// outside `[A-Za-z0-9_.-]` become `-`.
fn rule_part(rule: &str) -> String {
    rule.chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

impl RegoPolicies {
    /// Every rule id the packages declare, with its default severity and metadata.
    pub fn declared_rules(&self) -> Vec<(RuleId, Severity, Metadata)> {
        let mut out = Vec::new();
        for p in &self.packages {
            for (set, metadata) in &p.sets {
                let Some(id) = p.rule_id(set) else { continue };
                let severity = default_severity(set);
                let metadata = Metadata {
                    title: metadata.title.clone().or_else(|| p.metadata.title.clone()),
                    description: metadata
                        .description
                        .clone()
                        .or_else(|| p.metadata.description.clone()),
                };
                out.push((id, severity, metadata));
            }
        }
        out
    }
}

fn default_severity(set: &str) -> Severity {
    SETS.iter()
        .find(|(s, _)| *s == set)
        .map_or(Severity::Error, |(_, sev)| *sev)
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.to_string()),
        Value::Undefined | Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Characters of a message's `rule`, `severity` or `location.file` kept (a path is at most
/// 4,096 bytes on Linux).
const MAX_FIELD_CHARS: usize = 4096;

/// What a finding takes from one member of a set, read where the policy was evaluated (a
/// worker process hands this back, not the member: `worker.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Message {
    /// The message, cut after [`MAX_MESSAGE_CHARS`].
    text: String,
    /// `rule` and `severity`, when they are strings.
    rule: Option<String>,
    severity: Option<String>,
    /// `location`, when the member has one.
    location: Option<GivenLocation>,
}

/// A message's `location` as given: `file` when it is a string, `line` and `column` when they
/// are whole numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct GivenLocation {
    file: Option<String>,
    line: Option<u64>,
    column: Option<u64>,
}

fn cut(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

impl Message {
    /// The message of one member of a set; `None` for `null` or an undefined member.
    pub(super) fn of(member: &Value) -> Option<Message> {
        let is_object = member.as_object().is_ok();
        let text = if is_object {
            field(member, "msg")
                .and_then(text_of)
                .unwrap_or_else(|| member.to_string())
        } else {
            text_of(member)?
        };
        let text: String = if text.chars().count() > MAX_MESSAGE_CHARS {
            text.chars().take(MAX_MESSAGE_CHARS).chain(['…']).collect()
        } else {
            text
        };
        let string = |value: &Value, key: &str| {
            field(value, key)
                .and_then(|v| v.as_string().ok())
                .map(|v| cut(v, MAX_FIELD_CHARS))
        };
        let location = field(member, "location").map(|l| GivenLocation {
            file: string(l, "file"),
            line: field(l, "line").and_then(|v| v.as_u64().ok()),
            column: field(l, "column").and_then(|v| v.as_u64().ok()),
        });
        Some(Message {
            text,
            rule: string(member, "rule"),
            severity: string(member, "severity"),
            location,
        })
    }
}

/// A message of set `set` as a finding; `None` when the config turned its rule off.
pub(super) fn finding(
    package: &Package,
    set: &str,
    message: &Message,
    subject: &Subject<'_>,
    ctx: &RuleContext<'_>,
) -> Option<Finding> {
    let own_rule = message
        .rule
        .as_deref()
        .map(rule_part)
        .filter(|r| !r.is_empty());
    let rule = own_rule
        .and_then(|r| package.rule_id(&r))
        .or_else(|| package.rule_id(set))?;
    let given = message.severity.as_deref().and_then(|v| match v {
        "error" | "deny" | "violation" => Some(Severity::Error),
        "warning" | "warn" => Some(Severity::Warning),
        "info" | "note" => Some(Severity::Info),
        _ => None,
    });
    let severity = match ctx.policies.rego_level(rule) {
        Some(level) => level?,
        None => given.unwrap_or_else(|| default_severity(set)),
    };
    let location = message
        .location
        .as_ref()
        .and_then(|l| location_of(l, &subject.location))
        .unwrap_or_else(|| subject.location.clone());
    let text = &message.text;
    let mut f = Finding::new(rule, severity, location, text.clone()).discriminator(text);
    if let Some(p) = subject.placement {
        let cluster = &ctx.topology.clusters[p.cluster];
        f = f
            .resource(resource_of(p, ctx.topology, ctx.files))
            .cluster(&cluster.name, p.cluster_environment.as_str())
            .subject(&p.object.file, p.object.line);
        for e in &p.evidence {
            f = f.hop(e);
        }
    }
    Some(f)
}

/// A policy's `location`: `{"file", "line", "column"}`, each optional; the file defaults to
/// the placement's. A path that is not repository-relative is ignored.
fn location_of(given: &GivenLocation, default: &Location) -> Option<Location> {
    let file = match &given.file {
        Some(f) if is_repository_path(f) => Arc::from(f.as_str()),
        Some(_) => return None,
        None => Arc::clone(&default.file),
    };
    let number = |n: Option<u64>| n.and_then(|n| u32::try_from(n).ok()).filter(|n| *n >= 1);
    let line = number(given.line).unwrap_or(if Arc::ptr_eq(&file, &default.file) {
        default.line
    } else {
        1
    });
    let mut location = Location::new(&file, line);
    if let Some(column) = number(given.column) {
        location = location.with_column(column);
    }
    Some(location)
}

fn is_repository_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.split('/').any(|seg| seg == ".." || seg.is_empty())
        && !path.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_rego_prefixed_and_never_builtin() {
        assert_eq!(
            parse_id("rego/envfence.limits/deny"),
            Some("rego/envfence.limits/deny")
        );
        assert_eq!(parse_id("nonprod-on-prod-cluster"), None);
        assert_eq!(parse_id("rego/envfence.x/a:b"), None);
        assert_eq!(parse_id("rego/envfence.x/a,b"), None);
        assert_eq!(parse_id("rego//deny"), None);
        assert_eq!(rule_part("no latest: tags"), "no-latest--tags");
    }

    #[test]
    fn repository_paths_only() {
        assert!(is_repository_path("apps/a.yaml"));
        assert!(!is_repository_path("/etc/passwd"));
        assert!(!is_repository_path("../x.yaml"));
        assert!(!is_repository_path("a//b"));
    }
}
