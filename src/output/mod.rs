//! Renderers. Each one only reads a [`ScanReport`]; none of them changes a finding.

pub mod github;
pub mod json;
pub mod markdown;
pub mod sarif;
pub mod text;
pub mod topology;

use crate::scan::ScanReport;

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
    }
}
