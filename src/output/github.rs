//! `--format github`: GitHub Actions workflow commands (`::error file=…,line=…::…`), one per
//! new unsuppressed finding, most severe first (a diff-aware scan annotates only what the
//! change introduces; a plain scan has only new findings). GitHub shows at most 10 annotations of each
//! level per step, so beyond that a single notice says how many more there are.

use std::fmt::Write as _;

use crate::findings::{Finding, Severity, Status};
use crate::sanitize::text as clean;
use crate::scan::ScanReport;

/// Annotations GitHub displays per level and step.
pub const PER_LEVEL_LIMIT: usize = 10;

/// Escapes the message part of a workflow command. Repository text is passed through
/// [`clean`] first (other control characters, `##[`); this only encodes the line breaks the
/// message itself uses, which the runner decodes.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value (`file=`, `title=`), where `:` and `,` are separators too.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

fn command(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "notice",
    }
}

pub fn render(report: &ScanReport) -> String {
    let mut findings: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| !f.suppressed && f.status == Status::New)
        .collect();
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let mut out = String::new();
    // First: a scan a budget cut short says so before any finding (it exits 3).
    if let Some(lines) = super::incomplete_lines(report) {
        let _ = writeln!(
            out,
            "::error title={}::{}",
            escape_property("envfence: scan incomplete"),
            escape_data(&format!("{}\n{}", super::INCOMPLETE, lines.join("\n")))
        );
    }
    let mut shown = [0usize; 3];
    let mut hidden = 0usize;
    for f in findings {
        let slot = &mut shown[f.severity as usize];
        if *slot >= PER_LEVEL_LIMIT {
            hidden += 1;
            continue;
        }
        *slot += 1;
        let mut message = clean(&f.message).into_owned();
        if let Some(cluster) = &f.cluster {
            let _ = write!(message, " [cluster {}]", clean(cluster));
        }
        if let Some(first) = f.evidence.first() {
            let _ = write!(
                message,
                "\nEvidence: {} {}",
                clean(&first.location.to_string()),
                clean(&first.note())
            );
        }
        let _ = writeln!(
            out,
            "::{} file={},line={},endLine={}{},title={}::{}",
            command(f.severity),
            escape_property(&clean(&f.location.file)),
            f.location.line,
            f.location.end_line,
            f.location
                .column
                .map(|c| format!(",col={c}"))
                .unwrap_or_default(),
            escape_property(&format!("envfence {}", f.rule)),
            escape_data(&message)
        );
    }
    if hidden > 0 {
        let _ = writeln!(
            out,
            "::notice title=envfence::{hidden} more finding{} not shown as annotations (GitHub shows {PER_LEVEL_LIMIT} per level); run envfence scan for the full report",
            if hidden == 1 { "" } else { "s" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_per_the_workflow_command_rules() {
        assert_eq!(escape_data("50% done\nnext"), "50%25 done%0Anext");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }
}
