//! `envfence merge`: many JSON reports (schema version 1, one per repository) into one
//! organisation-wide Markdown summary: a row per repository with its counts of unsuppressed
//! findings by severity, how much of it was checked, and its most frequent rules.
//!
//! A report is named after its file: `acme__platform.json` is `acme/platform` (the reusable
//! workflow names each report so, since `/` cannot be part of a file name).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::output::markdown::escape;

/// The largest report `merge` reads: 512 MiB (a report of a 100,000-object monorepo with a
/// finding on every object is far below this).
pub const MAX_REPORT_SIZE: u64 = 512 << 20;

/// How many rules a row names.
const RULES_SHOWN: usize = 3;

/// One repository's numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositorySummary {
    pub name: String,
    pub errors: usize,
    pub warnings: usize,
    pub notes: usize,
    pub suppressed: usize,
    pub objects: u64,
    pub placed: u64,
    /// Unsuppressed findings per rule, most first.
    pub rules: Vec<(String, usize)>,
}

/// The name a report file stands for: its stem, with `__` read as `/`.
pub fn name_of(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    stem.replace("__", "/")
}

/// Reads one JSON report (schema version 1). The error is one line naming the file.
pub fn read_report(path: &Path) -> anyhow::Result<RepositorySummary> {
    let shown = crate::sanitize::text(&path.display().to_string()).into_owned();
    let bytes = crate::files::read_regular_file(path, MAX_REPORT_SIZE)
        .map_err(|e| anyhow::anyhow!("cannot read {shown}: {e}"))?;
    let report: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("{shown} is not a JSON report: {e}"))?;
    summarise(&name_of(path), &report).map_err(|e| anyhow::anyhow!("{shown}: {e}"))
}

/// The numbers of one parsed report.
pub fn summarise(name: &str, report: &serde_json::Value) -> Result<RepositorySummary, String> {
    let version = report.get("version").and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(crate::output::json::SCHEMA_VERSION)) {
        return Err(format!(
            "not an envfence JSON report of schema version {} (`envfence scan --format json`)",
            crate::output::json::SCHEMA_VERSION
        ));
    }
    let findings = report
        .get("findings")
        .and_then(serde_json::Value::as_array)
        .ok_or("the report has no findings list")?;
    let mut summary = RepositorySummary {
        name: name.to_owned(),
        errors: 0,
        warnings: 0,
        notes: 0,
        suppressed: 0,
        objects: report
            .pointer("/summary/coverage/objects")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
        placed: report
            .pointer("/summary/coverage/placed")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
        rules: Vec::new(),
    };
    let mut rules: BTreeMap<String, usize> = BTreeMap::new();
    for finding in findings {
        let text = |key: &str| finding.get(key).and_then(serde_json::Value::as_str);
        // A diff-aware report lists fixed findings too: they are no longer there.
        if text("status") == Some("fixed") {
            continue;
        }
        if finding
            .get("suppressed")
            .and_then(serde_json::Value::as_bool)
            == Some(true)
        {
            summary.suppressed += 1;
            continue;
        }
        match text("severity") {
            Some("error") => summary.errors += 1,
            Some("warning") => summary.warnings += 1,
            _ => summary.notes += 1,
        }
        *rules
            .entry(text("rule").unwrap_or("unknown").to_owned())
            .or_default() += 1;
    }
    summary.rules = rules.into_iter().collect();
    summary
        .rules
        .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(summary)
}

/// The organisation-wide Markdown summary: repositories with errors first, then warnings,
/// then the rest, each group by name.
pub fn render(summaries: &[RepositorySummary]) -> String {
    let mut rows: Vec<&RepositorySummary> = summaries.iter().collect();
    rows.sort_by(|a, b| {
        (b.errors > 0, b.warnings > 0)
            .cmp(&(a.errors > 0, a.warnings > 0))
            .then_with(|| a.name.cmp(&b.name))
    });
    let failing = rows.iter().filter(|r| r.errors > 0).count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## envfence: {} repositor{}, {} with errors\n",
        rows.len(),
        if rows.len() == 1 { "y" } else { "ies" },
        failing
    );
    out.push_str(
        "| | repository | errors | warnings | notes | checked | most frequent rules |\n\
         |---|---|---:|---:|---:|---|---|\n",
    );
    let (mut errors, mut warnings, mut notes, mut objects, mut placed) = (0, 0, 0, 0, 0);
    for row in &rows {
        let icon = if row.errors > 0 {
            "❌"
        } else if row.warnings > 0 {
            "⚠️"
        } else if row.objects > 0 && row.placed * 2 >= row.objects {
            "✅"
        } else {
            // Not enough of it was checked to call it clean (as in the pull-request comment).
            "⚪"
        };
        let rules: Vec<String> = row
            .rules
            .iter()
            .take(RULES_SHOWN)
            .map(|(rule, n)| format!("`{}` {n}", escape(rule)))
            .collect();
        let _ = writeln!(
            out,
            "| {icon} | {} | {} | {} | {} | {} of {} objects | {} |",
            escape(&row.name),
            row.errors,
            row.warnings,
            row.notes,
            row.placed,
            row.objects,
            rules.join(", ")
        );
        errors += row.errors;
        warnings += row.warnings;
        notes += row.notes;
        objects += row.objects;
        placed += row.placed;
    }
    let _ = writeln!(
        out,
        "| | **total** | **{errors}** | **{warnings}** | **{notes}** | {placed} of {objects} objects | |"
    );
    let suppressed: usize = rows.iter().map(|r| r.suppressed).sum();
    if suppressed > 0 {
        let _ = writeln!(
            out,
            "\n{suppressed} suppressed finding{} not counted.",
            if suppressed == 1 { "" } else { "s" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_stand_for_repositories() {
        assert_eq!(name_of(Path::new("r/acme__platform.json")), "acme/platform");
        assert_eq!(name_of(Path::new("demo.json")), "demo");
    }

    #[test]
    fn counts_skip_fixed_and_suppressed_findings() {
        let report = serde_json::json!({
            "version": 1,
            "findings": [
                {"rule": "a", "severity": "error", "status": "new", "suppressed": false},
                {"rule": "a", "severity": "error", "status": "existing", "suppressed": false},
                {"rule": "b", "severity": "warning", "status": "fixed", "suppressed": false},
                {"rule": "b", "severity": "warning", "status": "new", "suppressed": true},
                {"rule": "c", "severity": "info", "status": "new", "suppressed": false},
            ],
            "summary": {"coverage": {"objects": 10, "placed": 4}}
        });
        let s = summarise("x", &report).expect("valid");
        assert_eq!((s.errors, s.warnings, s.notes, s.suppressed), (2, 0, 1, 1));
        assert_eq!(s.rules, vec![("a".to_owned(), 2), ("c".to_owned(), 1)]);
        assert!(summarise("x", &serde_json::json!({"version": 2})).is_err());
    }

    #[test]
    fn repositories_with_errors_come_first_and_names_are_escaped() {
        let row = |name: &str, errors| RepositorySummary {
            name: name.to_owned(),
            errors,
            warnings: 0,
            notes: 0,
            suppressed: 0,
            objects: 4,
            placed: 4,
            rules: Vec::new(),
        };
        let out = render(&[row("a", 0), row("z|<b>", 2)]);
        let z = out.find("z&#124;&lt;b&gt;").expect("escaped");
        let a = out.find("| ✅ | a |").expect("clean row");
        assert!(z < a, "{out}");
        assert!(out.contains("| | **total** | **2** |"), "{out}");
    }
}
