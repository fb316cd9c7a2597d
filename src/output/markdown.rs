//! `--format markdown`: the pull-request comment body (DESIGN §8). A headline verdict, a table
//! of new findings (rule, file:line, resource, cluster), the evidence chains in `<details>`, a
//! Mermaid graph of the affected deployers and clusters, and fixed findings. Every piece of
//! repository text is escaped, so a file or resource name cannot inject Markdown, HTML or
//! mentions into the comment.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::findings::{Finding, Severity, Status};
use crate::scan::ScanReport;

/// The hidden marker the bot finds its own comment by.
pub const MARKER: &str = "<!-- envfence:report -->";

/// Escapes repository text for Markdown table cells and prose.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("&#124;"),
            '@' => out.push_str("&#64;"),
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Escapes a Mermaid node label (inside double quotes).
fn mermaid_label(text: &str) -> String {
    text.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
        .replace('@', "#64;")
}

fn mermaid_id(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn icon(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "🔴",
        Severity::Warning => "🟠",
        Severity::Info => "🔵",
    }
}

pub fn render(report: &ScanReport) -> String {
    let mut new: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| !f.suppressed && f.status == Status::New)
        .collect();
    // Most severe first; the report's order (file, line) within a severity.
    new.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let fixed: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.status == Status::Fixed)
        .collect();
    let count = |sev| new.iter().filter(|f| f.severity == sev).count();
    let (errors, warnings, notes) = (
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info),
    );
    let mut out = String::new();
    let _ = writeln!(out, "{MARKER}");
    if new.is_empty() {
        let resolved = if fixed.is_empty() {
            ""
        } else {
            " **Resolved**:"
        };
        let _ = writeln!(
            out,
            "## ✅ envfence:{resolved} no non-production workload reaches production\n"
        );
    } else {
        let _ = writeln!(
            out,
            "## {} envfence: {errors} error{}, {warnings} warning{}, {notes} note{}\n",
            if errors > 0 { "❌" } else { "⚠️" },
            if errors == 1 { "" } else { "s" },
            if warnings == 1 { "" } else { "s" },
            if notes == 1 { "" } else { "s" }
        );
        out.push_str("| | rule | location | resource | cluster |\n|---|---|---|---|---|\n");
        for f in &new {
            let resource = f
                .resource
                .as_ref()
                .map(|r| escape(&r.to_string()))
                .unwrap_or_default();
            let cluster = match (&f.cluster, &f.environment) {
                (Some(c), Some(e)) => format!("{} ({})", escape(c), escape(e)),
                (Some(c), None) => escape(c),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "| {} | `{}` | {}:{} | {resource} | {cluster} |",
                icon(f.severity),
                f.rule,
                escape(&f.location.file),
                f.location.line
            );
        }
        out.push('\n');
        for f in &new {
            let _ = writeln!(
                out,
                "<details><summary>{} <code>{}</code> {}:{}: {}</summary>\n",
                icon(f.severity),
                f.rule,
                escape(&f.location.file),
                f.location.line,
                escape(&f.message)
            );
            for e in &f.evidence {
                let _ = writeln!(
                    out,
                    "- {}:{} {}",
                    escape(&e.location.file),
                    e.location.line,
                    escape(&e.note)
                );
            }
            out.push_str("\n</details>\n");
        }
        render_graph(&mut out, &new);
    }
    if !fixed.is_empty() {
        let _ = writeln!(out, "\n### Fixed\n");
        for f in &fixed {
            let _ = writeln!(
                out,
                "- ~~`{}` {}:{}~~ {}",
                f.rule,
                escape(&f.location.file),
                f.location.line,
                escape(&f.message)
            );
        }
    }
    let suppressed = report.findings.iter().filter(|f| f.suppressed).count();
    let _ = writeln!(
        out,
        "\n<sub>envfence {}: {} files, {} Kubernetes objects placed of {}{}.</sub>",
        env!("CARGO_PKG_VERSION"),
        report.summary.files,
        report.summary.placed,
        report.summary.manifests,
        if suppressed > 0 {
            format!(", {suppressed} findings suppressed")
        } else {
            String::new()
        }
    );
    out
}

/// Deployer → cluster edges of the findings that have both, as a Mermaid flowchart.
fn render_graph(out: &mut String, findings: &[&Finding]) {
    let edges: BTreeSet<(String, String)> = findings
        .iter()
        .filter_map(|f| {
            let cluster = f.cluster.as_ref()?;
            // The deployer nearest to the object: the last destination or Flux path hop.
            let deployer = f.evidence.iter().rev().find(|e| {
                e.note.starts_with("destination.") || e.note.starts_with("Flux Kustomization")
            })?;
            Some((
                format!("{}:{}", deployer.location.file, deployer.location.line),
                cluster.clone(),
            ))
        })
        .collect();
    if edges.is_empty() {
        return;
    }
    out.push_str("\n```mermaid\nflowchart LR\n");
    for (deployer, cluster) in &edges {
        let _ = writeln!(
            out,
            "  d_{}[\"{}\"] --> c_{}[(\"{}\")]",
            mermaid_id(deployer),
            mermaid_label(deployer),
            mermaid_id(cluster),
            mermaid_label(cluster)
        );
    }
    out.push_str("```\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_text_cannot_inject_markup() {
        assert_eq!(
            escape("a|b <img src=x> @admin `x` [l](u)"),
            "a&#124;b &lt;img src=x&gt; &#64;admin \\`x\\` \\[l\\](u)"
        );
    }
}
