//! The terminal report: findings grouped by file, each with its resource, cluster and
//! evidence chain indented below it, then a short summary. Styles are ANSI; the binary strips
//! them when stdout is not a colour terminal (or `NO_COLOR` is set).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};

use crate::findings::{Finding, Severity, Status};
use crate::scan::{ScanReport, Summary};

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();
const PATH: Style = Style::new().bold().underline();

fn severity_style(severity: Severity) -> Style {
    let color = match severity {
        Severity::Error => AnsiColor::Red,
        Severity::Warning => AnsiColor::Yellow,
        Severity::Info => AnsiColor::Cyan,
    };
    Style::new().fg_color(Some(color.into())).bold()
}

/// How many skipped files the text report lists by name before it only counts them.
const SKIPPED_LISTED: usize = 10;

pub fn render(report: &ScanReport) -> String {
    let mut out = String::new();
    let mut by_file: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in &report.findings {
        by_file.entry(&f.location.file).or_default().push(f);
    }
    for (file, findings) in &by_file {
        let _ = writeln!(out, "{PATH}{file}{PATH:#}");
        for f in findings {
            render_finding(&mut out, f);
        }
        out.push('\n');
    }
    render_summary(&mut out, report);
    out
}

fn render_finding(out: &mut String, f: &Finding) {
    let position = match f.location.column {
        Some(col) => format!("{}:{col}", f.location.line),
        None => f.location.line.to_string(),
    };
    let sev = severity_style(f.severity);
    let suppressed = if f.suppressed {
        format!(" {DIM}(suppressed){DIM:#}")
    } else {
        String::new()
    };
    // Against a base, only new findings get their evidence; the others are one line each.
    let status = match f.status {
        Status::New => "",
        Status::Existing => " (existing)",
        Status::Fixed => " (fixed; the line is the base's)",
    };
    let _ = writeln!(
        out,
        "  {position:>7}  {sev}{:<7}{sev:#}  {BOLD}{}{BOLD:#}  {}{suppressed}{DIM}{status}{DIM:#}",
        f.severity.as_str(),
        f.rule,
        f.message
    );
    if f.status != Status::New {
        return;
    }
    let indent = " ".repeat(11);
    let mut context = Vec::new();
    if let Some(r) = &f.resource {
        context.push(format!("resource {r}"));
    }
    if let Some(c) = &f.cluster {
        match &f.environment {
            Some(env) => context.push(format!("cluster {c} ({env})")),
            None => context.push(format!("cluster {c}")),
        }
    }
    if !context.is_empty() {
        let _ = writeln!(out, "{indent}{DIM}{}{DIM:#}", context.join(" · "));
    }
    for e in &f.evidence {
        let _ = writeln!(out, "{indent}{DIM}↳{DIM:#} {}  {}", e.location, e.note);
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn render_summary(out: &mut String, report: &ScanReport) {
    let s: &Summary = &report.summary;
    // Only new findings count (without --base, every finding is new).
    let active: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| !f.suppressed && f.status == Status::New)
        .collect();
    let new = if report.comparison.is_some() {
        "new "
    } else {
        ""
    };
    let count = |sev| active.iter().filter(|f| f.severity == sev).count();
    let (errors, warnings, infos) = (
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info),
    );
    let files_with = {
        let mut files: Vec<&str> = active.iter().map(|f| &*f.location.file).collect();
        files.dedup();
        files.len()
    };
    let headline = if active.is_empty() {
        format!(
            "{}No {new}findings.{:#}",
            severity_style(Severity::Info),
            severity_style(Severity::Info)
        )
    } else {
        let mut parts = Vec::new();
        for (n, sev, one, many) in [
            (errors, Severity::Error, "error", "errors"),
            (warnings, Severity::Warning, "warning", "warnings"),
            (infos, Severity::Info, "note", "notes"),
        ] {
            if n > 0 {
                let st = severity_style(sev);
                let word = if n == 1 { one } else { many };
                parts.push(format!("{st}{n} {new}{word}{st:#}"));
            }
        }
        format!(
            "{} in {}.",
            parts.join(", "),
            plural(files_with, "file", "files")
        )
    };
    let suppressed = report.findings.iter().filter(|f| f.suppressed).count();
    let suppressed = if suppressed > 0 {
        format!(" ({suppressed} suppressed)")
    } else {
        String::new()
    };
    let _ = writeln!(out, "{BOLD}{headline}{BOLD:#}{suppressed}");
    if let Some(c) = &report.comparison {
        let short = |id: &str| id.chars().take(12).collect::<String>();
        let head = match &c.head_commit {
            Some(id) => format!("head {}", short(id)),
            None => "the working tree".to_owned(),
        };
        let _ = writeln!(
            out,
            "Compared {head} with base {} ({}): {} new, {} existing, {} fixed.",
            c.base,
            short(&c.base_commit),
            c.new,
            c.existing,
            c.fixed
        );
    }
    let _ = writeln!(
        out,
        "Scanned {} ({}, {}) in {}.",
        plural(s.files, "YAML file", "YAML files"),
        plural(s.documents, "document", "documents"),
        plural(s.manifests, "Kubernetes object", "Kubernetes objects"),
        format_duration(s.duration)
    );
    let _ = writeln!(
        out,
        "Placed {} of {} on {}.",
        s.placed,
        plural(s.manifests, "Kubernetes object", "Kubernetes objects"),
        plural(s.clusters_used, "cluster", "clusters")
    );
    if s.ignored > 0 {
        let _ = writeln!(
            out,
            "{DIM}Ignored {} (.gitignore or the config's `ignore`).{DIM:#}",
            plural(s.ignored, "file", "files")
        );
    }
    if !s.skipped.is_empty() {
        let mut by_category: BTreeMap<&str, usize> = BTreeMap::new();
        for k in &s.skipped {
            *by_category.entry(k.reason.category()).or_insert(0) += 1;
        }
        let categories: Vec<String> = by_category
            .iter()
            .map(|(c, n)| crate::documents::counted_category(c, *n))
            .collect();
        let _ = writeln!(
            out,
            "Skipped {}: {}.",
            plural(s.skipped.len(), "file", "files"),
            categories.join(", ")
        );
        // Templates are expected in chart and helmfile repositories; only the unusual skips
        // (binary, oversized, symlinks, unreadable) are worth a line each.
        let unusual: Vec<_> = s
            .skipped
            .iter()
            .filter(|k| !k.reason.is_template())
            .collect();
        for k in unusual.iter().take(SKIPPED_LISTED) {
            let _ = writeln!(out, "  {DIM}{}: {}{DIM:#}", k.rel_path, k.reason);
        }
        if unusual.len() > SKIPPED_LISTED {
            let _ = writeln!(
                out,
                "  {DIM}… and {} more (`--format json` lists every skipped file){DIM:#}",
                unusual.len() - SKIPPED_LISTED
            );
        }
    }
}

fn format_duration(d: std::time::Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}
