//! The terminal report: findings grouped by file, each with its resource, cluster and
//! evidence chain indented below it, then a short summary. Styles are ANSI; the binary strips
//! them when stdout is not a colour terminal (or `NO_COLOR` is set).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::plural;

use anstyle::{AnsiColor, Style};

use crate::findings::{Finding, Severity, Status};
use crate::rules::RuleId;
use crate::sanitize::text as clean;
use crate::scan::{ScanReport, Summary};
use crate::topology::coverage::{folder_group, Coverage, FOLDERS_LISTED};

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
    // First: a scan a budget cut short says so before anything else (it exits 3).
    if let Some(lines) = super::incomplete_lines(report) {
        let warn = severity_style(Severity::Error);
        let _ = writeln!(out, "{warn}{}{warn:#}", super::INCOMPLETE);
        for line in lines {
            let _ = writeln!(out, "  {line}");
        }
        out.push('\n');
    }
    let (alone, grouped) = group_notes(&report.findings);
    let mut by_file: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in alone {
        by_file.entry(&f.location.file).or_default().push(f);
    }
    for (file, findings) in &by_file {
        let _ = writeln!(out, "{PATH}{}{PATH:#}", clean(file));
        for f in findings {
            render_finding(&mut out, f);
        }
        out.push('\n');
    }
    render_groups(&mut out, &grouped);
    if let Some(changes) = &report.changes {
        out.push_str(&super::changes::text(changes, &|t: &str| {
            clean(t).into_owned()
        }));
        out.push('\n');
    }
    render_summary(&mut out, report);
    out
}

/// Notes that share a reason within one folder, shown as one line.
struct NoteGroup<'r> {
    folder: &'r str,
    findings: Vec<&'r Finding>,
}

/// Splits off the `unresolved-placement` notes that share their reason with another in the
/// same folder (as coverage groups folders): a repository of 200 helmfiles gets one line, not
/// 200. Every other finding stays on its own.
fn group_notes(findings: &[Finding]) -> (Vec<&Finding>, Vec<NoteGroup<'_>>) {
    let mut groups: BTreeMap<(&str, &str, &str, bool), Vec<&Finding>> = BTreeMap::new();
    for f in findings
        .iter()
        .filter(|f| f.rule == RuleId::UnresolvedPlacement)
    {
        groups
            .entry((
                folder_group(&f.location.file),
                f.message.as_str(),
                f.status.as_str(),
                f.suppressed,
            ))
            .or_default()
            .push(f);
    }
    let grouped: Vec<NoteGroup> = groups
        .into_iter()
        .filter(|(_, fs)| fs.len() > 1)
        .map(|((folder, ..), findings)| NoteGroup { folder, findings })
        .collect();
    let in_group: std::collections::HashSet<*const Finding> = grouped
        .iter()
        .flat_map(|g| g.findings.iter().map(|f| *f as *const Finding))
        .collect();
    let alone = findings
        .iter()
        .filter(|f| !in_group.contains(&(*f as *const Finding)))
        .collect();
    (alone, grouped)
}

fn render_groups(out: &mut String, groups: &[NoteGroup]) {
    if groups.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "{BOLD}Notes that share a reason{BOLD:#} {DIM}(`--format json` lists each){DIM:#}"
    );
    for g in groups {
        let Some(first) = g.findings.first() else {
            continue;
        };
        let folder = if g.folder.is_empty() {
            "./".to_owned()
        } else {
            format!("{}/", g.folder)
        };
        let sev = severity_style(first.severity);
        let suppressed = if first.suppressed {
            format!(" {DIM}(suppressed){DIM:#}")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {PATH}{folder}{PATH:#}  {sev}{}{sev:#} × {}  {BOLD}{}{BOLD:#}  {}{suppressed}",
            first.severity.as_str(),
            g.findings.len(),
            first.rule,
            first.message
        );
        let _ = writeln!(
            out,
            "           {DIM}first at {}:{}{DIM:#}",
            first.location.file, first.location.line
        );
    }
    out.push('\n');
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
        clean(&f.message)
    );
    if f.status != Status::New {
        return;
    }
    let indent = " ".repeat(11);
    let mut context = Vec::new();
    if let Some(r) = &f.resource {
        context.push(format!("resource {}", clean(&r.to_string())));
    }
    if let Some(c) = &f.cluster {
        match &f.environment {
            Some(env) => context.push(format!("cluster {} ({})", clean(c), clean(env))),
            None => context.push(format!("cluster {}", clean(c))),
        }
    }
    if !context.is_empty() {
        let _ = writeln!(out, "{indent}{DIM}{}{DIM:#}", context.join(" · "));
    }
    for e in &f.evidence {
        let _ = writeln!(
            out,
            "{indent}{DIM}↳{DIM:#} {}  {}",
            clean(&e.location.to_string()),
            clean(&e.note())
        );
    }
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
    let c = &s.coverage;
    let headline = if active.is_empty() {
        let info = severity_style(Severity::Info);
        let verdict = if c.objects == 0 && c.opaque > 0 {
            // Deployers of payloads envfence cannot read (remote charts): judged by identity.
            format!(
                "No {new}findings in the {} judged by their deployers' identity; no Kubernetes object of the repository itself was checked.",
                plural(c.opaque, "opaque placement", "opaque placements")
            )
        } else if c.objects == 0 {
            let scanned = if s.alone.is_some() { "file" } else { "folder" };
            format!("Nothing was checked: the scanned {scanned} holds no Kubernetes object.")
        } else if let Some(alone) = &s.alone {
            format!(
                "No {new}findings in {}, judged alone.",
                clean(&alone.file.display().to_string())
            )
        } else if c.placed == 0 {
            format!(
                "Nothing was checked: no deployer that envfence follows reaches any of the {}.",
                plural(c.objects, "Kubernetes object", "Kubernetes objects")
            )
        } else if !s.cuts.is_empty() {
            format!("No {new}findings in what was judged; a budget cut the scan short (see the first lines).")
        } else if c.mostly_placed() {
            format!("No {new}findings.")
        } else {
            format!(
                "No {new}findings in the {} of {} placed; the other {} not checked.",
                c.placed,
                plural(c.objects, "Kubernetes object", "Kubernetes objects"),
                plural(c.unplaced(), "was", "were")
            )
        };
        format!("{info}{verdict}{info:#}")
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
            clean(&c.base),
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
    // A file judged alone has no folders to point at: the line under it says why.
    let _ = writeln!(
        out,
        "{}",
        coverage_line(c, s.clusters_used, s.alone.is_none())
    );
    if s.alone.is_none() {
        render_advice(out, &report.topology.advice);
    }
    if let Some(alone) = &s.alone {
        let root = match &alone.repository_root {
            Some(root) => format!("scan {} to judge it where it is deployed", root.display()),
            None => "scan its repository to judge it where it is deployed".to_owned(),
        };
        let _ = writeln!(
            out,
            "{} was judged alone: no deployer outside it was read, so nothing placed it; {root}.",
            clean(&alone.file.display().to_string())
        );
    }
    if let Some(helm) = &s.helm {
        let _ = writeln!(
            out,
            "{DIM}Rendered local Helm charts with {helm}: {}{} in {}.{DIM:#}",
            plural(s.renders, "helm template run", "helm template runs"),
            if s.cached_renders > 0 {
                format!(" and {} kept from an earlier run", s.cached_renders)
            } else {
                String::new()
            },
            format_duration(s.render_time)
        );
    }
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
            let _ = writeln!(
                out,
                "  {DIM}{}: {}{DIM:#}",
                clean(&k.rel_path),
                clean(&k.reason.to_string())
            );
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

/// What the topology advises: that the repository looks like a catalog, the config entries
/// that would place its largest unplaced folders, the clusters its selectors ask for.
fn render_advice(out: &mut String, advice: &crate::topology::advice::Advice) {
    if let Some(variants) = &advice.catalog {
        let _ = writeln!(
            out,
            "{}",
            super::catalog_sentence(variants, |v| clean(v).to_string())
        );
    }
    let entries = advice.entry_lines();
    if !entries.is_empty() {
        let _ = writeln!(
            out,
            "To place the largest unplaced folders, add to .envfence.yaml (`envfence init` writes these):"
        );
        for line in entries {
            let _ = writeln!(out, "  {}", clean(&line));
        }
    }
    let clusters = advice.cluster_lines();
    if !clusters.is_empty() {
        let unmatched: Vec<_> = advice.selectors.iter().filter(|s| !s.matched).collect();
        let _ = writeln!(
            out,
            "{} no cluster known here (first at {}); declare the clusters they ask for in .envfence.yaml (`envfence init` writes these):",
            plural(
                unmatched.len(),
                "cluster selector matches",
                "cluster selectors match"
            ),
            unmatched
                .first()
                .map(|s| clean(&s.location.to_string()).into_owned())
                .unwrap_or_default()
        );
        for line in clusters {
            let _ = writeln!(out, "  {}", clean(&line));
        }
    }
}

/// "Placed 37 of 330 Kubernetes objects on 3 clusters; 293 reached by no deployer: …".
fn coverage_line(c: &Coverage, clusters: usize, list_folders: bool) -> String {
    let mut line = format!(
        "Placed {} of {} on {}",
        c.placed,
        plural(c.objects, "Kubernetes object", "Kubernetes objects"),
        plural(clusters, "cluster", "clusters")
    );
    if c.opaque > 0 {
        let _ = write!(
            line,
            ", plus {} whose payload was not read",
            plural(c.opaque, "opaque placement", "opaque placements")
        );
    }
    if c.unplaced() > 0 && list_folders {
        let folders: Vec<String> = c
            .unplaced_folders
            .iter()
            .take(FOLDERS_LISTED)
            .map(|f| match f.family {
                Some(family) => format!("{} ({family}) {}", f.shown(), f.objects),
                None => format!("{} {}", f.shown(), f.objects),
            })
            .collect();
        let more = c.unplaced_folders.len().saturating_sub(FOLDERS_LISTED);
        let _ = write!(
            line,
            "; {} reached by no deployer: {}{}",
            c.unplaced(),
            folders.join(", "),
            if more > 0 {
                format!(", and {more} more folders")
            } else {
                String::new()
            }
        );
    }
    line.push('.');
    line
}

fn format_duration(d: std::time::Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}
