//! `--format sarif`: SARIF 2.1.0 for GitHub code scanning, built with the `serde-sarif`
//! types. Every rule of the catalogue is described (summary, rationale, remediation as help);
//! every unsuppressed finding is a result with its physical location, its severity as
//! `level`, and its fingerprint in `partialFingerprints` so code scanning tracks it across
//! line shifts. Suppressed findings are results with a `suppressions` entry.

use std::collections::BTreeMap;

use serde_sarif::sarif::{
    ArtifactLocation, Invocation, Location, Message, MultiformatMessageString, Notification,
    PhysicalLocation, PropertyBag, Region, ReportingConfiguration, ReportingDescriptor,
    Result as SarifResult, ResultLevel, Run, Sarif, Suppression, Tool, ToolComponent,
};

use crate::findings::{Finding, Severity, Status};
use crate::rules::{Policies, RuleId};
use crate::scan::ScanReport;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// The project's home, from the package's `repository` metadata, so a fork that changes
/// `Cargo.toml` links its own rule pages.
const INFORMATION_URI: &str = env!("CARGO_PKG_REPOSITORY");

fn level(severity: Severity) -> ResultLevel {
    match severity {
        Severity::Error => ResultLevel::Error,
        Severity::Warning => ResultLevel::Warning,
        Severity::Info => ResultLevel::Note,
    }
}

fn text(s: impl Into<String>) -> MultiformatMessageString {
    MultiformatMessageString::builder().text(s.into()).build()
}

fn descriptor(rule: RuleId, policies: &Policies) -> ReportingDescriptor {
    let policy = policies.get(rule);
    let summary = policy.map_or_else(|| rule.as_str().to_owned(), |p| p.summary.clone());
    let rationale = policy.map(|p| p.rationale.clone()).unwrap_or_default();
    let remediation = policy.map(|p| p.remediation.clone()).unwrap_or_default();
    let severity = policies.severity(rule).unwrap_or(Severity::Warning);
    let help = format!("{summary}\n\nWhy: {rationale}\n\nFix: {remediation}");
    let help_markdown = format!(
        "**{summary}**\n\n**Why it matters.** {rationale}\n\n**How to fix it.** {remediation}"
    );
    let mut tags = BTreeMap::new();
    tags.insert(
        "tags".to_owned(),
        serde_json::json!(["security", "kubernetes", "gitops"]),
    );
    ReportingDescriptor::builder()
        .id(rule.as_str())
        .name(friendly_name(rule))
        .short_description(text(summary.clone()))
        .full_description(text(format!("{summary} {rationale}")))
        .help(
            MultiformatMessageString::builder()
                .text(help)
                .markdown(help_markdown)
                .build(),
        )
        .help_uri(match rule {
            RuleId::Rego(_) => format!("{INFORMATION_URI}/blob/main/docs/policies-rego.md"),
            _ => format!(
                "{INFORMATION_URI}/blob/main/docs/rules/{}.md",
                rule.as_str()
            ),
        })
        .default_configuration(
            ReportingConfiguration::builder()
                .level(serde_json::json!(match severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                    Severity::Info => "note",
                }))
                .build(),
        )
        .properties(PropertyBag::builder().additional_properties(tags).build())
        .build()
}

/// `nonprod-on-prod-cluster` → `NonprodOnProdCluster`: SARIF wants a name distinct from the id.
fn friendly_name(rule: RuleId) -> String {
    rule.as_str()
        .split(['-', '/', '.', '_'])
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn result(f: &Finding, rule_index: i64) -> SarifResult {
    let mut message = f.message.clone();
    if let Some(e) = f.evidence.first() {
        message.push_str(&format!(
            " (evidence starts at {} {})",
            e.location,
            e.note()
        ));
    }
    let region = Region::builder()
        .start_line(i64::from(f.location.line.max(1)))
        .end_line(i64::from(f.location.end_line.max(f.location.line).max(1)));
    let region = match f.location.column {
        Some(col) => region.start_column(i64::from(col.max(1))).build(),
        None => region.build(),
    };
    let location = Location::builder()
        .physical_location(
            PhysicalLocation::builder()
                .artifact_location(
                    ArtifactLocation::builder()
                        .uri(f.location.file.to_string())
                        .build(),
                )
                .region(region)
                .build(),
        )
        .build();
    let mut fingerprints = BTreeMap::new();
    fingerprints.insert("envfence/v1".to_owned(), f.fingerprint.clone());
    let base = SarifResult::builder()
        .rule_id(f.rule.as_str())
        .rule_index(rule_index)
        .level(level(f.severity))
        .message(Message::builder().text(message).build())
        .locations(vec![location])
        .partial_fingerprints(fingerprints);
    if f.suppressed {
        base.suppressions(vec![Suppression::builder()
            .kind(serde_json::json!("inSource"))
            .build()])
            .build()
    } else {
        base.build()
    }
}

pub fn render(report: &ScanReport, policies: &Policies) -> String {
    // Built-in rules, the Rego rules the policies declare, and ids Rego messages named.
    let mut ids = policies.rule_ids();
    for f in &report.findings {
        if !ids.contains(&f.rule) {
            ids.push(f.rule);
        }
    }
    let rules: Vec<ReportingDescriptor> = ids.iter().map(|r| descriptor(*r, policies)).collect();
    let index_of = |rule: RuleId| {
        ids.iter()
            .position(|r| *r == rule)
            .and_then(|i| i64::try_from(i).ok())
            .unwrap_or(0)
    };
    // Fixed findings are the base's, not in the scanned files: code scanning closes their
    // alerts when they stop appearing.
    let results: Vec<SarifResult> = report
        .findings
        .iter()
        .filter(|f| f.status != Status::Fixed)
        .map(|f| result(f, index_of(f.rule)))
        .collect();
    let driver = ToolComponent::builder()
        .name("envfence")
        .version(env!("CARGO_PKG_VERSION"))
        .semantic_version(env!("CARGO_PKG_VERSION"))
        .information_uri(INFORMATION_URI)
        .rules(rules)
        .build();
    // A scan a budget cut short is an unsuccessful invocation, with one error notification
    // per cut (SARIF's place for "the tool could not finish"), ahead of the results.
    let invocation = match &report.summary.cuts[..] {
        [] => Invocation::builder().execution_successful(true).build(),
        cuts => Invocation::builder()
            .execution_successful(false)
            .tool_execution_notifications(
                cuts.iter()
                    .take(super::CUTS_SHOWN)
                    .map(|cut| {
                        let text = format!("{} {cut}", super::INCOMPLETE);
                        let text = crate::redact::secrets(&text).into_owned();
                        let notification = Notification::builder()
                            .message(Message::builder().text(text).build())
                            .level(serde_json::json!("error"));
                        match &cut.location {
                            Some(at) => notification
                                .locations(vec![Location::builder()
                                    .physical_location(
                                        PhysicalLocation::builder()
                                            .artifact_location(
                                                ArtifactLocation::builder()
                                                    .uri(at.file.to_string())
                                                    .build(),
                                            )
                                            .region(
                                                Region::builder()
                                                    .start_line(i64::from(at.line.max(1)))
                                                    .build(),
                                            )
                                            .build(),
                                    )
                                    .build()])
                                .build(),
                            None => notification.build(),
                        }
                    })
                    .collect::<Vec<_>>(),
            )
            .build(),
    };
    let run = Run::builder()
        .tool(Tool::builder().driver(driver).build())
        .invocations(vec![invocation])
        .results(results)
        .build();
    let log = Sarif::builder()
        .schema(SCHEMA)
        .version(serde_json::json!("2.1.0"))
        .runs(vec![run])
        .build();
    let mut out =
        serde_json::to_string_pretty(&log).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    out.push('\n');
    out
}
