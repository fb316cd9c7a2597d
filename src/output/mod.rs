//! Renderers. Each one only reads a [`ScanReport`]; none of them changes a finding.

pub mod changes;
pub mod github;
pub mod html;
pub mod json;
pub mod markdown;
pub mod render_dir;
pub mod sarif;
pub mod text;
pub mod topology;

use crate::budget::BudgetCut;
use crate::scan::ScanReport;

/// The sentence every format puts first when a budget cut the scan short (exit code 3).
pub const INCOMPLETE: &str =
    "Incomplete: a budget cut this scan short, so part of the repository was not judged (exit code 3).";

/// How many cuts the human-readable formats list; JSON lists them all.
pub const CUTS_SHOWN: usize = 10;

/// The sentence that says a repository looks like a component catalog, naming up to three of
/// its variant overlays, each written by `escape` (the format's own escaping).
fn catalog_sentence(variants: &[String], escape: impl Fn(&str) -> String) -> String {
    let such_as = if variants.is_empty() {
        String::new()
    } else {
        let shown: Vec<String> = variants.iter().take(3).map(|v| escape(v)).collect();
        format!(" (such as {})", shown.join(", "))
    };
    format!(
        "This repository looks like a component catalog consumed elsewhere: nothing in it deploys anything, and its overlays are named after variants{such_as}, not environments, so no cluster is inferred from them. Scan the repository that deploys these components."
    )
}

/// The cuts of a report as lines for people, repository text escaped: one per budget cut, in
/// the summary's order, the first [`CUTS_SHOWN`] and then how many more (`None` for a
/// complete scan).
pub fn incomplete_lines(report: &ScanReport) -> Option<Vec<String>> {
    let cuts: &[BudgetCut] = &report.summary.cuts;
    if cuts.is_empty() {
        return None;
    }
    let mut lines: Vec<String> = cuts
        .iter()
        .take(CUTS_SHOWN)
        .map(|cut| crate::sanitize::text(&crate::redact::secrets(&cut.to_string())).into_owned())
        .collect();
    if cuts.len() > CUTS_SHOWN {
        lines.push(format!(
            "and {} more (the JSON report lists every cut)",
            cuts.len() - CUTS_SHOWN
        ));
    }
    Some(lines)
}

/// `--format` of `envfence scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Findings grouped by file, for a terminal.
    Text,
    /// The stable JSON document, schema version 1 (docs/json-schema.md).
    Json,
    /// GitHub Actions workflow commands: annotations on the pull request's files.
    Github,
    /// The pull-request comment body (Markdown, with a Mermaid graph).
    Markdown,
    /// SARIF 2.1.0, for GitHub code scanning.
    Sarif,
    /// One self-contained HTML page for reviewers (no external requests).
    Html,
}

/// Renders `report` in `format`. Text may carry ANSI styles; the caller strips them when the
/// destination is not a colour terminal.
pub fn render(report: &ScanReport, format: Format, policies: &crate::rules::Policies) -> String {
    match format {
        Format::Text => text::render(report),
        Format::Json => json::render(report),
        Format::Github => github::render(report),
        Format::Markdown => markdown::render(report),
        Format::Sarif => sarif::render(report, policies),
        Format::Html => html::render(report, &html::HtmlOptions::default()),
    }
}

/// `n` and the noun for it: "1 file", "3 files".
pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A path percent-encoded for a URL: `/` and unreserved characters stay.
pub(crate) fn url_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = std::fmt::Write::write_fmt(&mut out, format_args!("%{b:02X}"));
        }
    }
    out
}
