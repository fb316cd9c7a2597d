//! The JSON report, schema version 1. These types are a frozen contract for scripts and the
//! GitHub Action: they are separate from the internal types on purpose, so that internal
//! changes never change the output. Add fields only; never rename or remove one.
//! Documented in `docs/json-schema.md`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::findings::{Finding, Severity, Status};
use crate::scan::ScanReport;
use crate::topology::coverage::{UnplacedFolder, FOLDERS_LISTED};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
pub struct JsonReport {
    pub version: u32,
    pub tool: JsonTool,
    /// Only when a budget cut the scan short (exit code 3): which, first (added within
    /// version 1).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub incomplete: Vec<JsonBudgetCut>,
    pub findings: Vec<JsonFinding>,
    pub summary: JsonSummary,
    /// Only in a diff-aware scan (`--base`): what the change does to each cluster (added
    /// within version 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<JsonChanges>,
}

/// The change per cluster of a diff-aware scan.
#[derive(Serialize)]
pub struct JsonChanges {
    /// True when no cluster receives anything different; `clusters` is then empty.
    pub nothing_changed: bool,
    /// Over every cluster.
    pub totals: JsonChangeCounts,
    /// Modified objects listed without a diff because the report's budget for diffs was spent.
    pub diffs_left_out: usize,
    /// Production first, then staging, development, testing, internal, non-production
    /// without a tier, unknown; by name within a tier.
    pub clusters: Vec<JsonClusterChanges>,
}

#[derive(Serialize)]
pub struct JsonChangeCounts {
    pub deliveries: JsonCounts,
    pub objects: JsonCounts,
}

#[derive(Serialize)]
pub struct JsonCounts {
    pub added: usize,
    pub removed: usize,
    pub modified: usize,
}

impl From<crate::topology::changes::Counts> for JsonCounts {
    fn from(c: crate::topology::changes::Counts) -> Self {
        JsonCounts {
            added: c.added,
            removed: c.removed,
            modified: c.modified,
        }
    }
}

#[derive(Serialize)]
pub struct JsonClusterChanges {
    pub cluster: String,
    pub environment: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<&'static str>,
    pub counts: JsonChangeCounts,
    pub deliveries: Vec<JsonDeliveryChange>,
    pub objects: Vec<JsonObjectChange>,
}

/// A deployer as it delivers to one cluster.
#[derive(Serialize)]
pub struct JsonDeliveryChange {
    /// `added`, `removed` or `modified` (an object it sends changed).
    pub change: &'static str,
    pub kind: String,
    pub name: String,
    pub file: String,
    pub line: u32,
    /// It reaches this production cluster and did not before.
    pub newly_reaches_production: bool,
    /// Object changes on this cluster that came through it.
    pub objects: usize,
}

#[derive(Serialize)]
pub struct JsonDeployerRef {
    pub kind: String,
    pub name: String,
}

#[derive(Serialize)]
pub struct JsonLocation {
    pub file: String,
    pub line: u32,
}

/// An object a cluster receives differently.
#[derive(Serialize)]
pub struct JsonObjectChange {
    pub change: &'static str,
    pub api_version: Option<String>,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub file: String,
    pub line: u32,
    pub deployer: Option<JsonDeployerRef>,
    /// The evidence chain from the cluster down to the object.
    pub path: Vec<JsonEvidence>,
    /// The changed files the path or the object's sources go through.
    pub causes: Vec<JsonLocation>,
    /// A unified diff of the object as the cluster receives it (modified objects), Secret
    /// values redacted, at most 60 lines and 4 KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Lines of the diff cut by that limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub diff_lines_cut: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn json_evidence(e: &crate::evidence::Evidence) -> JsonEvidence {
    JsonEvidence {
        file: e.location.file.to_string(),
        line: e.location.line,
        note: e.note(),
    }
}

/// The `changes` section of a diff-aware report.
pub fn changes(changes: &crate::topology::changes::Changes) -> JsonChanges {
    let (deliveries, objects) = changes.totals();
    JsonChanges {
        nothing_changed: changes.is_empty(),
        totals: JsonChangeCounts {
            deliveries: deliveries.into(),
            objects: objects.into(),
        },
        diffs_left_out: changes.diffs_left_out,
        clusters: changes
            .clusters
            .iter()
            .map(|c| JsonClusterChanges {
                cluster: c.cluster.clone(),
                environment: c.environment.as_str(),
                tier: c.tier.map(|t| t.as_str()),
                counts: JsonChangeCounts {
                    deliveries: c.delivery_counts().into(),
                    objects: c.object_counts().into(),
                },
                deliveries: c
                    .deliveries
                    .iter()
                    .map(|d| JsonDeliveryChange {
                        change: d.change.as_str(),
                        kind: d.kind.clone(),
                        name: d.name.clone(),
                        file: d.location.file.to_string(),
                        line: d.location.line,
                        newly_reaches_production: d.newly_reaches_production,
                        objects: d.objects,
                    })
                    .collect(),
                objects: c
                    .objects
                    .iter()
                    .map(|o| JsonObjectChange {
                        change: o.change.as_str(),
                        api_version: o.api_version.clone(),
                        kind: o.kind.clone(),
                        namespace: o.namespace.clone(),
                        name: o.name.clone(),
                        file: o.location.file.to_string(),
                        line: o.location.line,
                        deployer: o.deployer.as_ref().map(|(kind, name)| JsonDeployerRef {
                            kind: kind.clone(),
                            name: name.clone(),
                        }),
                        path: o.path.iter().map(json_evidence).collect(),
                        causes: o
                            .causes
                            .iter()
                            .map(|l| JsonLocation {
                                file: l.file.to_string(),
                                line: l.line,
                            })
                            .collect(),
                        diff: o.diff.as_ref().map(|d| d.text.clone()),
                        diff_lines_cut: o.diff.as_ref().map_or(0, |d| d.lines_cut),
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[derive(Serialize)]
pub struct JsonTool {
    pub name: &'static str,
    pub version: &'static str,
}

/// A budget that cut the scan short.
#[derive(Serialize)]
pub struct JsonBudgetCut {
    /// The budget's name as docs/security.md lists it: `limits.expanded-objects`,
    /// `helm render time`, ...
    pub budget: &'static str,
    /// Where, when one file is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// What the budget left out.
    pub detail: String,
}

#[derive(Serialize)]
pub struct JsonFinding {
    pub rule: String,
    pub severity: &'static str,
    pub message: String,
    pub file: String,
    pub line: u32,
    pub end_line: u32,
    pub column: Option<u32>,
    pub resource: Option<JsonResource>,
    pub cluster: Option<String>,
    pub environment: Option<String>,
    /// The cluster's tier; absent when the cluster has none (added within version 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// The workload's purpose; absent when unknown (added within version 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    pub evidence: Vec<JsonEvidence>,
    /// Every object or namespace of a grouped finding whose message names only the first
    /// few; absent otherwise (added within version 1).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<JsonMember>,
    pub fingerprint: String,
    pub status: &'static str,
    pub suppressed: bool,
}

#[derive(Serialize)]
pub struct JsonResource {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
}

/// One object (or namespace) of a grouped finding.
#[derive(Serialize)]
pub struct JsonMember {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

#[derive(Serialize)]
pub struct JsonEvidence {
    pub file: String,
    pub line: u32,
    pub note: String,
}

#[derive(Serialize)]
pub struct JsonSummary {
    pub files: usize,
    pub documents: usize,
    pub manifests: usize,
    pub files_by_kind: BTreeMap<&'static str, usize>,
    pub findings: BTreeMap<&'static str, usize>,
    pub skipped: Vec<JsonSkipped>,
    pub ignored: usize,
    pub placed: usize,
    pub clusters_used: usize,
    pub coverage: JsonCoverage,
    pub duration_ms: u64,
    /// Only in a diff-aware scan (`--base`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<JsonComparison>,
}

/// How much of the repository was checked (docs/json-schema.md defines each number).
#[derive(Serialize)]
pub struct JsonCoverage {
    pub objects: usize,
    pub placed: usize,
    pub opaque: usize,
    /// The folders with the most unplaced objects, most first, at most ten.
    pub unplaced_folders: Vec<JsonUnplacedFolder>,
}

#[derive(Serialize)]
pub struct JsonUnplacedFolder {
    /// Repository-relative, two segments at most; `.` for the root.
    pub folder: String,
    pub objects: usize,
    /// The deployer family that owns the folder and that envfence does not follow yet.
    pub family: Option<&'static str>,
}

impl From<&UnplacedFolder> for JsonUnplacedFolder {
    fn from(f: &UnplacedFolder) -> Self {
        JsonUnplacedFolder {
            folder: if f.folder.is_empty() {
                ".".to_owned()
            } else {
                f.folder.clone()
            },
            objects: f.objects,
            family: f.family,
        }
    }
}

/// What a diff-aware scan compared, and how many unsuppressed findings have each status.
#[derive(Serialize)]
pub struct JsonComparison {
    pub base: String,
    pub base_commit: String,
    /// `null` when the head is the working tree.
    pub head_commit: Option<String>,
    pub new: usize,
    pub existing: usize,
    pub fixed: usize,
    /// Base files whose content the head has too (parsed once for both).
    pub unchanged_files: usize,
}

#[derive(Serialize)]
pub struct JsonSkipped {
    pub file: String,
    pub category: &'static str,
    pub reason: String,
}

impl From<&Finding> for JsonFinding {
    fn from(f: &Finding) -> Self {
        JsonFinding {
            rule: f.rule.as_str().to_owned(),
            severity: f.severity.as_str(),
            message: f.message.clone(),
            file: f.location.file.to_string(),
            line: f.location.line,
            end_line: f.location.end_line,
            column: f.location.column,
            resource: f.resource.as_ref().map(|r| JsonResource {
                api_version: r.api_version.as_deref().map(str::to_owned),
                kind: r.kind.as_deref().map(str::to_owned),
                name: r.name.as_deref().map(str::to_owned),
                namespace: r.namespace.as_deref().map(str::to_owned),
            }),
            cluster: f.cluster.clone(),
            environment: f.environment.clone(),
            tier: f.tier.clone(),
            purpose: f.purpose.clone(),
            evidence: f
                .evidence
                .iter()
                .map(|e| JsonEvidence {
                    file: e.location.file.to_string(),
                    line: e.location.line,
                    note: e.note(),
                })
                .collect(),
            objects: f
                .members
                .iter()
                .map(|m| JsonMember {
                    api_version: m.resource.api_version.as_deref().map(str::to_owned),
                    kind: m.resource.kind.as_deref().map(str::to_owned),
                    name: m.resource.name.as_deref().map(str::to_owned),
                    namespace: m.resource.namespace.as_deref().map(str::to_owned),
                    file: m.location.as_ref().map(|l| l.file.to_string()),
                    line: m.location.as_ref().map(|l| l.line),
                })
                .collect(),
            fingerprint: f.fingerprint.clone(),
            status: f.status.as_str(),
            suppressed: f.suppressed,
        }
    }
}

pub fn to_report(report: &ScanReport) -> JsonReport {
    let s = &report.summary;
    let mut counts: BTreeMap<&'static str, usize> =
        [Severity::Error, Severity::Warning, Severity::Info]
            .into_iter()
            .map(|sev| (sev.as_str(), 0))
            .collect();
    // The head's findings: fixed ones (base only) are counted in `comparison`.
    for f in report
        .findings
        .iter()
        .filter(|f| !f.suppressed && f.status != Status::Fixed)
    {
        *counts.entry(f.severity.as_str()).or_insert(0) += 1;
    }
    JsonReport {
        version: SCHEMA_VERSION,
        tool: JsonTool {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
        },
        incomplete: s
            .cuts
            .iter()
            .map(|cut| JsonBudgetCut {
                budget: cut.budget.name(),
                file: cut.location.as_ref().map(|l| l.file.to_string()),
                line: cut.location.as_ref().map(|l| l.line),
                detail: crate::redact::secrets(&cut.detail).into_owned(),
            })
            .collect(),
        findings: report.findings.iter().map(JsonFinding::from).collect(),
        summary: JsonSummary {
            files: s.files,
            documents: s.documents,
            manifests: s.manifests,
            files_by_kind: s
                .files_by_kind
                .iter()
                .map(|(k, n)| (k.label(), *n))
                .collect(),
            findings: counts,
            skipped: s
                .skipped
                .iter()
                .map(|k| JsonSkipped {
                    file: k.rel_path.to_string(),
                    category: k.reason.category(),
                    reason: k.reason.to_string(),
                })
                .collect(),
            ignored: s.ignored,
            placed: s.placed,
            clusters_used: s.clusters_used,
            coverage: JsonCoverage {
                objects: s.coverage.objects,
                placed: s.coverage.placed,
                opaque: s.coverage.opaque,
                unplaced_folders: s
                    .coverage
                    .unplaced_folders
                    .iter()
                    .take(FOLDERS_LISTED)
                    .map(JsonUnplacedFolder::from)
                    .collect(),
            },
            duration_ms: u64::try_from(s.duration.as_millis()).unwrap_or(u64::MAX),
            comparison: report.comparison.as_ref().map(|c| JsonComparison {
                base: c.base.clone(),
                base_commit: c.base_commit.clone(),
                head_commit: c.head_commit.clone(),
                new: c.new,
                existing: c.existing,
                fixed: c.fixed,
                unchanged_files: c.unchanged_files,
            }),
        },
        changes: report.changes.as_ref().map(changes),
    }
}

pub fn render(report: &ScanReport) -> String {
    let dto = to_report(report);
    let mut out = serde_json::to_string_pretty(&dto)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise report: {e}\"}}"));
    out.push('\n');
    // A copy of every finding's text: freeing it one string at a time is work the exit does.
    crate::background::let_go(dto);
    out
}
