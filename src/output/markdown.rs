//! `--format markdown`: the pull-request comment body (DESIGN §8). A headline verdict, a table
//! of new findings (rule, file:line, resource, cluster), the evidence chains in `<details>`, a
//! Mermaid graph of the affected deployers and clusters, and fixed findings. Every piece of
//! repository text is escaped, so a file or resource name cannot inject Markdown, HTML or
//! mentions into the comment.

use crate::evidence::{DestinationField, Hop};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::findings::{Finding, Severity, Status};
use crate::scan::ScanReport;
use crate::topology::coverage::FOLDERS_LISTED;

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
            c if crate::sanitize::needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
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
    crate::sanitize::text(text)
        .replace('"', "#quot;")
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

/// How [`render_comment`] shapes the body beyond the plain report.
#[derive(Debug, Clone, Default)]
pub struct CommentOptions<'a> {
    /// Say **Resolved** in the headline when nothing is new: the comment once reported
    /// findings that this run no longer sees.
    pub resolved: bool,
    /// Upper bound on the body's length in bytes (bytes are never fewer than the characters
    /// GitHub counts). Findings that do not fit are left out, whole, with a note.
    pub max_len: Option<usize>,
    /// Where the full report is (the workflow run), for the note on left-out findings.
    pub run_url: Option<&'a str>,
    /// `<server>/<owner>/<name>/blob/<head commit>`: every location links to its file and
    /// line there.
    pub blob_url: Option<&'a str>,
    /// The workflow run's page when the HTML report was written for it to upload: the body
    /// says the full report is an artifact there.
    pub report_url: Option<&'a str>,
}

/// The line that points to the HTML report on the run's page (empty without one).
fn report_line(options: &CommentOptions) -> String {
    match options.report_url {
        Some(url) => {
            format!("\nFull report (HTML): an artifact on the [workflow run's page]({url}).\n")
        }
        None => String::new(),
    }
}

/// Above this many new findings, the table shows one row per rule and cluster, and the
/// findings themselves are behind `<details>`.
pub const GROUP_ABOVE: usize = 10;

/// `file:line` for Markdown: a link to the line at the head commit when there is one.
fn location(file: &str, line: u32, options: &CommentOptions) -> String {
    match options.blob_url {
        Some(blob) => format!(
            "[{}:{line}]({blob}/{}#L{line})",
            escape(file),
            super::url_path(file)
        ),
        None => format!("{}:{line}", escape(file)),
    }
}

/// `file:line` inside HTML (a `<summary>`, where Markdown links are not read).
fn html_location(file: &str, line: u32, options: &CommentOptions) -> String {
    match options.blob_url {
        Some(blob) => format!(
            "<a href=\"{blob}/{}#L{line}\">{}:{line}</a>",
            super::url_path(file),
            escape(file)
        ),
        None => format!("{}:{line}", escape(file)),
    }
}

/// The report as `--format markdown` prints it.
pub fn render(report: &ScanReport) -> String {
    render_comment(report, &CommentOptions::default())
}

/// New and fixed findings of a report, in the order the comment lists them.
struct Parts<'r> {
    new: Vec<&'r Finding>,
    fixed: Vec<&'r Finding>,
}

impl<'r> Parts<'r> {
    fn of(report: &'r ScanReport) -> Self {
        let mut new: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| !f.suppressed && f.status == Status::New)
            .collect();
        // Most severe first; the report's order (file, line) within a severity.
        new.sort_by_key(|f| std::cmp::Reverse(f.severity));
        let fixed = report
            .findings
            .iter()
            .filter(|f| f.status == Status::Fixed)
            .collect();
        Parts { new, fixed }
    }

    fn count(&self, severity: Severity) -> usize {
        self.new.iter().filter(|f| f.severity == severity).count()
    }
}

/// The comment body. With `max_len`, the tail of the new findings (and then of the fixed
/// ones) is left out until the body fits; every finding is one self-contained block (table
/// row, `<details>` element, list item), so the cut never splits a tag or a code fence.
pub fn render_comment(report: &ScanReport, options: &CommentOptions) -> String {
    let parts = Parts::of(report);
    let (all_new, all_fixed) = (parts.new.len(), parts.fixed.len());
    let all_detail = report
        .changes
        .as_ref()
        .map(super::changes::Detail::all)
        .unwrap_or(super::changes::Detail {
            entries: 0,
            diffs: 0,
        });
    let body = assemble(report, &parts, all_new, all_fixed, all_detail, options);
    let Some(limit) = options.max_len else {
        return body;
    };
    if body.len() <= limit {
        return body;
    }
    // The change per cluster's diffs go first, then its details (its counts stay), then
    // findings.
    let with = |detail: super::changes::Detail| {
        assemble(report, &parts, all_new, all_fixed, detail, options).len() <= limit
    };
    let entries_only = super::changes::Detail {
        diffs: 0,
        ..all_detail
    };
    let detail = if with(entries_only) {
        super::changes::Detail {
            diffs: largest_fitting(all_detail.diffs, |k| {
                with(super::changes::Detail {
                    diffs: k,
                    ..all_detail
                })
            }),
            ..all_detail
        }
    } else {
        super::changes::Detail {
            entries: largest_fitting(all_detail.entries, |k| {
                with(super::changes::Detail {
                    entries: k,
                    diffs: 0,
                })
            }),
            diffs: 0,
        }
    };
    let body = assemble(report, &parts, all_new, all_fixed, detail, options);
    if body.len() <= limit {
        return body;
    }
    let fits = |new: usize, fixed: usize| assemble(report, &parts, new, fixed, detail, options);
    // The body grows with each finding shown: search for the most that fit.
    let (shown_new, shown_fixed) = if fits(0, all_fixed).len() <= limit {
        let k = largest_fitting(all_new, |k| fits(k, all_fixed).len() <= limit);
        (k, all_fixed)
    } else {
        (0, largest_fitting(all_fixed, |k| fits(0, k).len() <= limit))
    };
    let body = fits(shown_new, shown_fixed);
    if body.len() <= limit {
        body
    } else {
        render_minimal(report, options)
    }
}

/// The largest `k` in `0..=n` with `ok(k)`, given that `ok` holds for 0 and, once false,
/// stays false for larger `k`.
fn largest_fitting(n: usize, ok: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// The smallest useful body: the headline, the counts and where the full report is. The bot
/// falls back to it when GitHub refuses a longer one.
pub fn render_minimal(report: &ScanReport, options: &CommentOptions) -> String {
    let parts = Parts::of(report);
    let mut out = String::new();
    headline(&mut out, report, &parts, options.resolved);
    let _ = writeln!(
        out,
        "{} new finding{}, {} fixed. {}",
        parts.new.len(),
        if parts.new.len() == 1 { "" } else { "s" },
        parts.fixed.len(),
        match options.run_url {
            Some(url) => format!("The full report is in the [workflow run]({url})."),
            None => "Run `envfence scan` for the full report.".to_owned(),
        }
    );
    if let Some(changes) = &report.changes {
        let _ = writeln!(out, "\n{}", super::changes::totals_line(changes));
    }
    out.push_str(&report_line(options));
    out
}

/// The marker, the headline verdict and what was checked. A report without findings is
/// called clean only when at least half of the objects were placed; with less, or nothing at
/// all, the headline says so instead.
fn headline(out: &mut String, report: &ScanReport, parts: &Parts, resolved: bool) {
    let _ = writeln!(out, "{MARKER}");
    // First, above the verdict: a scan a budget cut short is no verdict on the whole change.
    if let Some(lines) = super::incomplete_lines(report) {
        let _ = writeln!(out, "> [!WARNING]\n> **{}**", super::INCOMPLETE);
        for line in lines {
            let _ = writeln!(out, "> - {}", escape(&line));
        }
        out.push('\n');
    }
    let coverage = &report.summary.coverage;
    if parts.new.is_empty() {
        let resolved = if resolved || !parts.fixed.is_empty() {
            " **Resolved**:"
        } else {
            ""
        };
        let verdict = if coverage.objects == 0 {
            format!("{UNCHECKED} envfence:{resolved} nothing was checked")
        } else if !report.summary.cuts.is_empty() {
            format!("{UNCHECKED} envfence:{resolved} no finding in what was judged, but the scan is incomplete")
        } else if coverage.mostly_placed() {
            format!("{CLEAN} envfence:{resolved} no non-production workload reaches production")
        } else {
            format!("{UNCHECKED} envfence:{resolved} no finding, but most objects were not checked")
        };
        let _ = writeln!(out, "## {verdict}\n");
    } else {
        let (errors, warnings, notes) = (
            parts.count(Severity::Error),
            parts.count(Severity::Warning),
            parts.count(Severity::Info),
        );
        let _ = writeln!(
            out,
            "## {} envfence: {errors} error{}, {warnings} warning{}, {notes} note{}\n",
            if errors > 0 { "❌" } else { "⚠️" },
            if errors == 1 { "" } else { "s" },
            if warnings == 1 { "" } else { "s" },
            if notes == 1 { "" } else { "s" }
        );
    }
    let _ = writeln!(out, "{}\n", checked(report));
    if report.summary.alone.is_none() {
        advice(out, &report.topology.advice);
    }
}

/// What the topology advises, below the headline: that the repository looks like a catalog,
/// and the `.envfence.yaml` lines that would place its largest unplaced folders or give the
/// clusters its selectors ask for. The lines are repository text: in a `<pre>` block, every
/// character HTML would read is an entity.
fn advice(out: &mut String, advice: &crate::topology::advice::Advice) {
    if let Some(variants) = &advice.catalog {
        let _ = writeln!(
            out,
            "{}\n",
            super::catalog_sentence(variants, |v| escape(v).to_string())
        );
    }
    let pre = |lines: Vec<String>| {
        let body: Vec<String> = lines
            .iter()
            .map(|l| {
                crate::sanitize::text(l)
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace('@', "&#64;")
            })
            .collect();
        format!("<pre>\n{}\n</pre>\n", body.join("\n"))
    };
    let entries = advice.entry_lines();
    if !entries.is_empty() {
        let _ = writeln!(
            out,
            "To place the largest unplaced folders, add to `.envfence.yaml` (`envfence init` writes these):\n\n{}",
            pre(entries)
        );
    }
    let clusters = advice.cluster_lines();
    if !clusters.is_empty() {
        let unmatched = advice.selectors.iter().filter(|s| !s.matched).count();
        let _ = writeln!(
            out,
            "{unmatched} cluster selector{} match{} no cluster known here; declare the clusters they ask for in `.envfence.yaml` (`envfence init` writes these):\n\n{}",
            if unmatched == 1 { "" } else { "s" },
            if unmatched == 1 { "es" } else { "" },
            pre(clusters)
        );
    }
}

/// "Checked 37 of 330 objects; 293 are reached by no deployer this version understands: …".
fn checked(report: &ScanReport) -> String {
    let s = &report.summary;
    let c = &s.coverage;
    let mut line = if c.objects == 0 {
        let mut skipped: BTreeMap<&str, usize> = BTreeMap::new();
        for k in &s.skipped {
            *skipped.entry(k.reason.category()).or_default() += 1;
        }
        let skipped: Vec<String> = skipped.iter().map(|(c, n)| format!("{n} {c}")).collect();
        if skipped.is_empty() {
            format!(
                "No Kubernetes object was found in {} YAML file{}",
                s.files,
                if s.files == 1 { "" } else { "s" }
            )
        } else {
            format!(
                "No Kubernetes object was found in {} YAML file{}; skipped {}",
                s.files,
                if s.files == 1 { "" } else { "s" },
                skipped.join(", ")
            )
        }
    } else {
        format!(
            "Checked {} of {} object{}",
            c.placed,
            c.objects,
            if c.objects == 1 { "" } else { "s" }
        )
    };
    if c.unplaced() > 0 && s.alone.is_none() {
        let folders: Vec<String> = c
            .unplaced_folders
            .iter()
            .take(FOLDERS_LISTED)
            .map(|f| match f.family {
                Some(family) => format!("{} ({family}) {}", escape(&f.shown()), f.objects),
                None => format!("{} {}", escape(&f.shown()), f.objects),
            })
            .collect();
        let more = c.unplaced_folders.len().saturating_sub(FOLDERS_LISTED);
        let _ = write!(
            line,
            "; {} {} reached by no deployer this version understands: {}{}",
            c.unplaced(),
            if c.unplaced() == 1 { "is" } else { "are" },
            folders.join(", "),
            if more > 0 {
                format!(", and {more} more folders")
            } else {
                String::new()
            }
        );
    }
    if c.opaque > 0 {
        let _ = write!(
            line,
            "; {} opaque placement{} (a deployer whose payload was not read) not looked into",
            c.opaque,
            if c.opaque == 1 { "" } else { "s" }
        );
    }
    line.push('.');
    if let Some(alone) = &s.alone {
        let _ = write!(
            line,
            " {} was judged alone, so no deployer placed it",
            escape(&alone.file.display().to_string())
        );
        match &alone.repository_root {
            Some(root) => {
                let _ = write!(
                    line,
                    "; scan {} to judge it where it is deployed.",
                    escape(&root.display().to_string())
                );
            }
            None => line.push('.'),
        }
    }
    line
}

/// Headline icons of a report without new findings: clean, or not (enough) checked.
const CLEAN: &str = "✅";
const UNCHECKED: &str = "⚪";

/// Whether a comment body is a report without findings that never listed any (`--comment
/// always` on a clean pull request): such a comment stays as it is rather than turning
/// "resolved".
pub fn is_clean_from_the_start(body: &str) -> bool {
    (body.contains(&format!("## {CLEAN} envfence:"))
        || body.contains(&format!("## {UNCHECKED} envfence:")))
        && !body.contains("**Resolved**")
}

/// The body with the first `shown_new` new and `shown_fixed` fixed findings.
fn assemble(
    report: &ScanReport,
    parts: &Parts,
    shown_new: usize,
    shown_fixed: usize,
    detail: super::changes::Detail,
    options: &CommentOptions,
) -> String {
    let new = &parts.new[..shown_new.min(parts.new.len())];
    let fixed = &parts.fixed[..shown_fixed.min(parts.fixed.len())];
    let mut out = String::new();
    headline(&mut out, report, parts, options.resolved);
    if let Some(changes) = &report.changes {
        let at = |file: &str, line: u32| location(file, line, options);
        out.push_str(&super::changes::markdown(changes, detail, &at));
    }
    if !new.is_empty() {
        let grouped = parts.new.len() > GROUP_ABOVE;
        if grouped {
            // The groups count every new finding, also those the size limit leaves out below.
            group_table(&mut out, &parts.new, options);
            let what = if new.len() == parts.new.len() {
                format!("All {} findings", new.len())
            } else {
                format!("{} of the {} findings", new.len(), parts.new.len())
            };
            let _ = writeln!(out, "<details><summary>{what}, with evidence</summary>\n");
        }
        out.push_str("| | rule | location | resource | cluster |\n|---|---|---|---|---|\n");
        for f in new {
            let resource = f
                .resource
                .as_ref()
                .map(|r| escape(&r.to_string()))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {resource} | {} |",
                icon(f.severity),
                f.rule,
                location(&f.location.file, f.location.line, options),
                cluster_cell(f)
            );
        }
        out.push('\n');
        for f in new {
            let _ = writeln!(
                out,
                "<details><summary>{} <code>{}</code> {}: {}</summary>\n",
                icon(f.severity),
                f.rule,
                html_location(&f.location.file, f.location.line, options),
                escape(&f.message)
            );
            for e in &f.evidence {
                let _ = writeln!(
                    out,
                    "- {} {}",
                    location(&e.location.file, e.location.line, options),
                    escape(&e.note())
                );
            }
            out.push_str("\n</details>\n");
        }
        if grouped {
            out.push_str("\n</details>\n");
        }
        render_graph(&mut out, new);
    }
    if !fixed.is_empty() {
        let _ = writeln!(out, "\n### Fixed\n");
        for f in fixed {
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
    let left_out = (parts.new.len() - new.len()) + (parts.fixed.len() - fixed.len());
    if left_out > 0 {
        let _ = writeln!(
            out,
            "\n> {left_out} more finding{} left out to keep this comment within GitHub's size limit. {}",
            if left_out == 1 { " is" } else { "s are" },
            match options.run_url {
                Some(url) => format!("The full report is in the [workflow run]({url})."),
                None => "Run `envfence scan` for the full report.".to_owned(),
            }
        );
    }
    out.push_str(&report_line(options));
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

/// `cluster (environment)`, escaped.
fn cluster_cell(f: &Finding) -> String {
    match (&f.cluster, &f.environment) {
        (Some(c), Some(e)) => format!("{} ({})", escape(c), escape(e)),
        (Some(c), None) => escape(c),
        _ => String::new(),
    }
}

/// One row per rule and cluster, most severe first, then most findings: with many findings
/// the same mistake usually repeats (one overlay, one ApplicationSet), and this reads as the
/// few causes it is.
fn group_table(out: &mut String, new: &[&Finding], options: &CommentOptions) {
    let mut groups: Vec<(Severity, &str, String, Vec<&Finding>)> = Vec::new();
    for f in new {
        let cluster = cluster_cell(f);
        match groups
            .iter_mut()
            .find(|(_, rule, c, _)| *rule == f.rule.as_str() && *c == cluster)
        {
            Some(group) => {
                group.0 = group.0.max(f.severity);
                group.3.push(f);
            }
            None => groups.push((f.severity, f.rule.as_str(), cluster, vec![f])),
        }
    }
    groups.sort_by(|a, b| b.0.cmp(&a.0).then(b.3.len().cmp(&a.3.len())));
    out.push_str("| | rule | cluster | findings | first location |\n|---|---|---|---:|---|\n");
    for (severity, rule, cluster, findings) in &groups {
        let first = findings[0];
        let _ = writeln!(
            out,
            "| {} | `{rule}` | {cluster} | {} | {} |",
            icon(*severity),
            findings.len(),
            location(&first.location.file, first.location.line, options)
        );
    }
    out.push('\n');
}

/// Deployer → cluster edges of the findings that have both, as a Mermaid flowchart; clusters
/// name their tier, and edges the purposes of the non-production workloads they carry.
fn render_graph(out: &mut String, findings: &[&Finding]) {
    let mut edges: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut tiers: BTreeMap<String, String> = BTreeMap::new();
    for f in findings {
        let Some(cluster) = f.cluster.as_ref() else {
            continue;
        };
        // The deployer nearest to the object: the last destination or Flux path hop.
        let Some(deployer) = f.evidence.iter().rev().find(|e| {
            matches!(
                *e.hop,
                Hop::Destination {
                    field: DestinationField::Name | DestinationField::Server,
                    ..
                } | Hop::FluxPath(_)
                    | Hop::UnreachedFlux { .. }
            )
        }) else {
            continue;
        };
        let purposes = edges
            .entry((
                format!("{}:{}", deployer.location.file, deployer.location.line),
                cluster.clone(),
            ))
            .or_default();
        purposes.extend(f.purpose.iter().filter(|p| *p != "production").cloned());
        if let Some(tier) = &f.tier {
            tiers.insert(cluster.clone(), tier.clone());
        }
    }
    if edges.is_empty() {
        return;
    }
    out.push_str("\n```mermaid\nflowchart LR\n");
    for ((deployer, cluster), purposes) in &edges {
        let cluster_label = match tiers.get(cluster) {
            Some(tier) => format!("{}<br/>{}", mermaid_label(cluster), mermaid_label(tier)),
            None => mermaid_label(cluster),
        };
        let arrow = if purposes.is_empty() {
            "-->".to_owned()
        } else {
            let joined: Vec<&str> = purposes.iter().map(String::as_str).collect();
            format!("-->|{}|", mermaid_label(&joined.join(", ")))
        };
        let _ = writeln!(
            out,
            "  d_{}[\"{}\"] {arrow} c_{}[(\"{cluster_label}\")]",
            mermaid_id(deployer),
            mermaid_label(deployer),
            mermaid_id(cluster),
        );
    }
    out.push_str("```\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::coverage::UnplacedFolder;

    fn report_with(objects: usize, placed: usize) -> ScanReport {
        let mut summary = crate::scan::Summary::default();
        summary.coverage.objects = objects;
        summary.coverage.placed = placed;
        if objects > placed {
            summary.coverage.unplaced_folders = vec![UnplacedFolder {
                folder: "namespaces".into(),
                objects: objects - placed,
                family: Some("Config Sync"),
            }];
        }
        ScanReport {
            findings: Vec::new(),
            summary,
            topology: crate::topology::Topology::default(),
            comparison: None,
            changes: None,
        }
    }

    #[test]
    fn a_clean_report_says_resolved_only_when_asked() {
        let report = report_with(4, 4);
        let clean = render(&report);
        assert!(clean.starts_with(MARKER));
        assert!(!clean.contains("Resolved"));
        assert!(is_clean_from_the_start(&clean));
        let resolved = render_comment(
            &report,
            &CommentOptions {
                resolved: true,
                ..CommentOptions::default()
            },
        );
        assert!(
            resolved.contains("## ✅ envfence: **Resolved**:"),
            "{resolved}"
        );
        assert!(!is_clean_from_the_start(&resolved));
    }

    #[test]
    fn a_report_is_clean_only_when_most_objects_were_placed() {
        let half = render(&report_with(10, 5));
        assert!(half.contains("## ✅ envfence: no non-production"), "{half}");
        assert!(half.contains("Checked 5 of 10 objects; 5 are reached by no deployer this version understands: namespaces/ (Config Sync) 5."), "{half}");

        let few = render(&report_with(330, 37));
        assert!(!few.contains("✅"), "{few}");
        assert!(
            few.contains("## ⚪ envfence: no finding, but most objects were not checked"),
            "{few}"
        );
        assert!(
            few.contains("Checked 37 of 330 objects; 293 are reached"),
            "{few}"
        );
        assert!(is_clean_from_the_start(&few));

        let mut nothing = report_with(0, 0);
        nothing.summary.files = 2;
        nothing.summary.skipped = (0..3)
            .map(|i| crate::walk::Skipped {
                rel_path: format!("chart/templates/{i}.yaml").into(),
                reason: crate::documents::SkipReason::HelmTemplate {
                    kinds: Box::default(),
                    apis: Box::default(),
                },
            })
            .collect();
        let nothing = render(&nothing);
        assert!(!nothing.contains("✅"), "{nothing}");
        assert!(
            nothing.contains("## ⚪ envfence: nothing was checked"),
            "{nothing}"
        );
        assert!(
            nothing.contains(
                "No Kubernetes object was found in 2 YAML files; skipped 3 Helm templates."
            ),
            "{nothing}"
        );
    }

    #[test]
    fn the_fitting_search_finds_the_largest() {
        assert_eq!(largest_fitting(10, |k| k <= 7), 7);
        assert_eq!(largest_fitting(10, |k| k == 0), 0);
        assert_eq!(largest_fitting(10, |_| true), 10);
        assert_eq!(largest_fitting(0, |_| true), 0);
    }

    #[test]
    fn repository_text_cannot_inject_markup() {
        assert_eq!(
            escape("a|b <img src=x> @admin `x` [l](u)"),
            "a&#124;b &lt;img src=x&gt; &#64;admin \\`x\\` \\[l\\](u)"
        );
        assert_eq!(escape("x\n::error\u{1b}"), "x ::error\\u{1b}");
        assert_eq!(mermaid_label("a\n::b"), "a\\n::b");
    }
}
