//! `--format html`: one self-contained page for reviewers (DESIGN §8). The summary first (a
//! scan a budget cut short says so above everything), then the change per cluster, the
//! findings with their evidence chains, the clusters grouped by tier with production first,
//! a deployer → cluster graph as inline SVG, and coverage.
//!
//! The page makes no request of its own: no script, no font, no image by URL, the CSS inline,
//! and a Content-Security-Policy that would block any resource should one slip in. Folding is
//! `<details>`, so the page reads the same without JavaScript. Every piece of repository text
//! goes through [`escape_html`] (credentials masked, control characters shown, markup
//! neutralised); the only URLs are the file links built from the validated `blob_url`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::plural;

use crate::findings::{Finding, Severity, Status};
use crate::scan::ScanReport;
use crate::topology::{Env, Tier, Topology};

/// Where the page's links point; both optional, and both validated by the caller
/// ([`crate::github::actions::ActionsEnv`] checks the server, repository, commit and run id).
#[derive(Debug, Clone, Default)]
pub struct HtmlOptions<'a> {
    /// `<server>/<owner>/<name>/blob/<head commit>`: every file:line links to its line there.
    pub blob_url: Option<&'a str>,
    /// The workflow run that made this page.
    pub run_url: Option<&'a str>,
}

/// Repository text made safe for an HTML text node or a quoted attribute: credentials masked
/// ([`crate::redact::secrets`]), control and direction characters shown as escapes
/// ([`crate::sanitize::text`]), and `& < > " '` as entities.
pub fn escape_html(text: &str) -> String {
    let redacted = crate::redact::secrets(text);
    let clean = crate::sanitize::text(&redacted);
    let mut out = String::with_capacity(clean.len());
    for c in clean.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `file:line`, a link to the line at the head commit when there is one.
fn location(file: &str, line: u32, options: &HtmlOptions) -> String {
    match options.blob_url {
        Some(blob) => format!(
            "<a href=\"{}/{}#L{line}\"><code>{}:{line}</code></a>",
            escape_html(blob),
            super::url_path(file),
            escape_html(file)
        ),
        None => format!("<code>{}:{line}</code>", escape_html(file)),
    }
}

const STYLE: &str = "
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1b1f24;background:#fff}
main{max-width:1200px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:1.6em;margin:.4em 0}h2{font-size:1.25em;margin:1.4em 0 .5em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
h3{font-size:1.05em;margin:1em 0 .4em}
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f3f4f6;padding:0 3px;border-radius:3px}
a{color:#0550ae}
table{border-collapse:collapse;margin:.4em 0 1em;width:100%}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.n{text-align:right}
details{margin:.3em 0;border:1px solid #d0d7de;border-radius:6px;padding:.3em .6em}
details[open]{background:#fcfcfd}summary{cursor:pointer}
.verdict{padding:.6em 1em;border-radius:6px;border:1px solid}
.clean{background:#dafbe1;border-color:#1a7f37}.bad{background:#ffebe9;border-color:#cf222e}
.warn{background:#fff8c5;border-color:#9a6700}.none{background:#f6f8fa;border-color:#8c959f}
.incomplete{background:#fff8c5;border:2px solid #9a6700;border-radius:6px;padding:.5em 1em;margin:1em 0}
.sev{display:inline-block;min-width:4.5em;text-align:center;border-radius:10px;font-size:.85em;padding:0 6px;color:#fff}
.error{background:#cf222e}.warning{background:#9a6700}.info{background:#0969da}
.env-production{color:#cf222e;font-weight:600}.env-non-production{color:#1a7f37}.env-unknown{color:#57606a}
.muted{color:#57606a}ol.evidence{margin:.3em 0 .3em 1.2em;padding:0}
pre.diff{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f6f8fa;padding:6px;overflow-x:auto;margin:.3em 0}
pre.diff .add{color:#1a7f37}pre.diff .del{color:#cf222e}
svg{max-width:100%;height:auto;border:1px solid #d0d7de;border-radius:6px;background:#fff}
";

/// The report as one HTML page.
pub fn render(report: &ScanReport, options: &HtmlOptions) -> String {
    let mut out = String::with_capacity(16 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    // Nothing but the inline style may load: no script, no image, no font, no frame.
    out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<meta name=\"referrer\" content=\"no-referrer\">\n");
    let _ = writeln!(
        out,
        "<title>envfence report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>"
    );
    summary_section(&mut out, report, options);
    out.push_str(&changes_section(report, options));
    findings_section(&mut out, report, options);
    clusters_section(&mut out, &report.topology);
    graph_section(&mut out, &report.topology);
    coverage_section(&mut out, report);
    let _ = writeln!(
        out,
        "<footer><p class=\"muted\">envfence {}: {}, {} placed of {}.{}</p></footer>",
        env!("CARGO_PKG_VERSION"),
        plural(report.summary.files, "file", "files"),
        plural(
            report.summary.placed,
            "Kubernetes object",
            "Kubernetes objects"
        ),
        report.summary.manifests,
        match options.run_url {
            Some(url) => format!(
                " Made by <a href=\"{}\">this workflow run</a>.",
                escape_html(url)
            ),
            None => String::new(),
        }
    );
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

/// Findings the page lists: unsuppressed and not fixed, most severe first (the report's
/// order, file and line, within a severity).
fn listed(report: &ScanReport) -> Vec<&Finding> {
    let mut listed: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| !f.suppressed && f.status != Status::Fixed)
        .collect();
    listed.sort_by_key(|f| std::cmp::Reverse(f.severity));
    listed
}

/// The incomplete-scan cuts (first, when any), the verdict and what was compared.
fn summary_section(out: &mut String, report: &ScanReport, options: &HtmlOptions) {
    if let Some(lines) = super::incomplete_lines(report) {
        let _ = writeln!(
            out,
            "<section class=\"incomplete\" id=\"incomplete\"><p><strong>{}</strong></p><ul>",
            escape_html(super::INCOMPLETE)
        );
        for line in lines {
            let _ = writeln!(out, "<li>{}</li>", escape_html(&line));
        }
        out.push_str("</ul></section>\n");
    }
    let listed = listed(report);
    // A diff-aware report judges the pull request by what it introduces.
    let judged: Vec<&Finding> = if report.comparison.is_some() {
        listed
            .iter()
            .copied()
            .filter(|f| f.status == Status::New)
            .collect()
    } else {
        listed.clone()
    };
    let count = |s: Severity| judged.iter().filter(|f| f.severity == s).count();
    let (errors, warnings, notes) = (
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info),
    );
    let coverage = &report.summary.coverage;
    let new = if report.comparison.is_some() {
        "new "
    } else {
        ""
    };
    let (class, verdict) = if !judged.is_empty() {
        (
            if errors > 0 { "bad" } else { "warn" },
            format!(
                "envfence: {}, {}, {}",
                plural(errors, &format!("{new}error"), &format!("{new}errors")),
                plural(warnings, "warning", "warnings"),
                plural(notes, "note", "notes")
            ),
        )
    } else if coverage.objects == 0 {
        ("none", "envfence: nothing was checked".to_owned())
    } else if !report.summary.cuts.is_empty() {
        (
            "none",
            "envfence: no finding in what was judged, but the scan is incomplete".to_owned(),
        )
    } else if coverage.mostly_placed() {
        (
            "clean",
            "envfence: no non-production workload reaches production".to_owned(),
        )
    } else {
        (
            "none",
            "envfence: no finding, but most objects were not checked".to_owned(),
        )
    };
    let _ = writeln!(
        out,
        "<header>\n<h1 class=\"verdict {class}\" id=\"verdict\">{}</h1>",
        escape_html(&verdict)
    );
    let _ = writeln!(
        out,
        "<p>Checked {} of {} ({} placed on {}){}.</p>",
        coverage.placed,
        plural(coverage.objects, "object", "objects"),
        plural(report.summary.placed, "object", "objects"),
        plural(report.summary.clusters_used, "cluster", "clusters"),
        if coverage.opaque > 0 {
            format!(
                "; {} (a deployer whose payload was not read) not looked into",
                plural(coverage.opaque, "opaque placement", "opaque placements")
            )
        } else {
            String::new()
        }
    );
    if let Some(c) = &report.comparison {
        let head = c.head_commit.as_deref().unwrap_or("the working tree");
        let _ = writeln!(
            out,
            "<p>Compared with <code>{}</code> (<code>{}</code>) at <code>{}</code>: {} new, {} existing, {} fixed.</p>",
            escape_html(&c.base),
            escape_html(&c.base_commit),
            escape_html(head),
            c.new,
            c.existing,
            c.fixed
        );
    }
    if let Some(variants) = &report.topology.advice.catalog {
        let _ = writeln!(
            out,
            "<p>{}</p>",
            super::catalog_sentence(variants, escape_html)
        );
    }
    if let Some(url) = options.run_url {
        let _ = writeln!(
            out,
            "<p class=\"muted\">From <a href=\"{}\">the workflow run</a>.</p>",
            escape_html(url)
        );
    }
    out.push_str("</header>\n");
}

/// The change per cluster of a diff-aware scan (`ScanReport.changes`; nothing without
/// `--base`): counts per cluster, production first, the deployers that newly reach
/// production, then each cluster folded with its deliveries, objects, the path each took, the
/// changed files that caused it and the rendered diffs.
pub fn changes_section(report: &ScanReport, options: &HtmlOptions) -> String {
    use crate::topology::changes::{Counts, NOTHING_CHANGED};
    let Some(changes) = &report.changes else {
        return String::new();
    };
    let mut out = String::from("<section id=\"changes\">\n<h2>Changes per cluster</h2>\n");
    if changes.is_empty() {
        let _ = writeln!(out, "<p>{}</p>\n</section>", escape_html(NOTHING_CHANGED));
        return out;
    }
    let counts = |c: Counts| {
        format!(
            "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
            c.added, c.removed, c.modified
        )
    };
    out.push_str(
        "<table>\n<tr><th rowspan=\"2\">tier</th><th rowspan=\"2\">cluster</th>\
         <th colspan=\"3\">deliveries</th><th colspan=\"3\">objects</th></tr>\n\
         <tr><th>added</th><th>removed</th><th>modified</th>\
         <th>added</th><th>removed</th><th>modified</th></tr>\n",
    );
    for c in &changes.clusters {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td><strong>{}</strong> <span class=\"{}\">{}</span></td>{}{}</tr>",
            escape_html(c.group()),
            escape_html(&c.cluster),
            env_class(c.environment),
            c.environment.as_str(),
            counts(c.delivery_counts()),
            counts(c.object_counts())
        );
    }
    let (deliveries, objects) = changes.totals();
    let _ = writeln!(
        out,
        "<tr><td></td><td><strong>total</strong></td>{}{}</tr>\n</table>",
        counts(deliveries),
        counts(objects)
    );
    let highlighted: Vec<_> = changes.newly_production().collect();
    if !highlighted.is_empty() {
        let _ = writeln!(
            out,
            "<div class=\"incomplete\"><strong>{} a production cluster:</strong>\n<ul>",
            super::changes::newly_reaching(highlighted.len())
        );
        for (c, d) in &highlighted {
            let _ = writeln!(
                out,
                "<li>{} {} → <strong>{}</strong> ({})</li>",
                escape_html(&d.kind),
                escape_html(&d.name),
                escape_html(&c.cluster),
                location(&d.location.file, d.location.line, options)
            );
        }
        out.push_str("</ul></div>\n");
    }
    for c in &changes.clusters {
        let _ = writeln!(
            out,
            "<details><summary><strong>{}</strong> ({}): {}, {}</summary>\n<ul>",
            escape_html(&c.cluster),
            escape_html(c.group()),
            plural(c.deliveries.len(), "delivery", "deliveries"),
            plural(c.objects.len(), "object", "objects")
        );
        for d in &c.deliveries {
            let _ = writeln!(
                out,
                "<li>{} delivery {} {} at {}{}</li>",
                d.change.as_str(),
                escape_html(&d.kind),
                escape_html(&d.name),
                location(&d.location.file, d.location.line, options),
                if d.newly_reaches_production {
                    " <strong class=\"env-production\">newly reaches production</strong>"
                } else {
                    ""
                }
            );
        }
        for o in &c.objects {
            let name = super::changes::object_name(o);
            let via = o
                .deployer
                .as_ref()
                .map(|(kind, name)| format!(" via {} {}", escape_html(kind), escape_html(name)))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<li>{} {} at {}{via}",
                o.change.as_str(),
                escape_html(&name),
                location(&o.location.file, o.location.line, options)
            );
            if !o.causes.is_empty() {
                let causes: Vec<String> = o
                    .causes
                    .iter()
                    .map(|l| location(&l.file, l.line, options))
                    .collect();
                let _ = write!(out, "<br>changed: {}", causes.join(", "));
            }
            if !o.path.is_empty() {
                let hops: Vec<String> = o
                    .path
                    .iter()
                    .map(|e| {
                        format!(
                            "{} {}",
                            location(&e.location.file, e.location.line, options),
                            escape_html(&e.note())
                        )
                    })
                    .collect();
                let _ = write!(
                    out,
                    "<br><span class=\"muted\">path: {}</span>",
                    hops.join(" → ")
                );
            }
            if let Some(diff) = &o.diff {
                // Line by line: the sanitizer writes a line break as `\n`.
                out.push_str("<pre class=\"diff\">");
                for line in diff.text.lines() {
                    let class = match line.chars().next() {
                        Some('+') if !line.starts_with("+++") => " class=\"add\"",
                        Some('-') if !line.starts_with("---") => " class=\"del\"",
                        _ => "",
                    };
                    let _ = writeln!(out, "<span{class}>{}</span>", escape_html(line));
                }
                if diff.lines_cut > 0 {
                    let _ = writeln!(out, "… {} more lines", diff.lines_cut);
                }
                out.push_str("</pre>");
            }
            out.push_str("</li>\n");
        }
        out.push_str("</ul>\n</details>\n");
    }
    if changes.diffs_left_out > 0 {
        let _ = writeln!(
            out,
            "<p class=\"muted\">{} left out: the report's budget for diffs is spent.</p>",
            plural(changes.diffs_left_out, "diff", "diffs")
        );
    }
    out.push_str("</section>\n");
    out
}

fn severity_badge(severity: Severity) -> String {
    format!("<span class=\"sev {0}\">{0}</span>", severity.as_str())
}

/// The findings table, then each finding folded with its evidence chain; fixed findings
/// after, and how many were suppressed.
fn findings_section(out: &mut String, report: &ScanReport, options: &HtmlOptions) {
    let listed = listed(report);
    let diff = report.comparison.is_some();
    let _ = writeln!(
        out,
        "<section id=\"findings\">\n<h2>Findings ({})</h2>",
        listed.len()
    );
    if listed.is_empty() {
        out.push_str("<p>No finding.</p>\n");
    } else {
        let _ = writeln!(
            out,
            "<table>\n<tr><th>severity</th><th>rule</th><th>location</th><th>resource</th><th>cluster</th>{}</tr>",
            if diff { "<th>status</th>" } else { "" }
        );
        for f in &listed {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td>{}</tr>",
                severity_badge(f.severity),
                f.rule.as_str(),
                location(&f.location.file, f.location.line, options),
                f.resource
                    .as_ref()
                    .map(|r| escape_html(&r.to_string()))
                    .unwrap_or_default(),
                cluster_cell(f),
                if diff {
                    format!("<td>{}</td>", f.status.as_str())
                } else {
                    String::new()
                }
            );
        }
        out.push_str("</table>\n");
        for f in &listed {
            let _ = writeln!(
                out,
                "<details class=\"finding\"><summary>{} <code>{}</code> {}: {}</summary>",
                severity_badge(f.severity),
                f.rule.as_str(),
                location(&f.location.file, f.location.line, options),
                escape_html(&f.message)
            );
            if !f.evidence.is_empty() {
                out.push_str("<ol class=\"evidence\">\n");
                for e in &f.evidence {
                    let _ = writeln!(
                        out,
                        "<li>{} {}</li>",
                        location(&e.location.file, e.location.line, options),
                        escape_html(&e.note())
                    );
                }
                out.push_str("</ol>\n");
            }
            if !f.members.is_empty() {
                let _ = writeln!(
                    out,
                    "<p>Stands for {}:</p><ul>",
                    plural(f.members.len(), "object", "objects")
                );
                for m in &f.members {
                    let at = m
                        .location
                        .as_ref()
                        .map(|l| format!(" {}", location(&l.file, l.line, options)))
                        .unwrap_or_default();
                    let _ = writeln!(out, "<li>{}{at}</li>", escape_html(&m.resource.to_string()));
                }
                out.push_str("</ul>\n");
            }
            out.push_str("</details>\n");
        }
    }
    let fixed: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.status == Status::Fixed)
        .collect();
    if !fixed.is_empty() {
        let _ = writeln!(out, "<h3>Fixed ({})</h3>\n<ul>", fixed.len());
        for f in fixed {
            let _ = writeln!(
                out,
                "<li><del><code>{}</code> <code>{}:{}</code></del> {}</li>",
                f.rule.as_str(),
                escape_html(&f.location.file),
                f.location.line,
                escape_html(&f.message)
            );
        }
        out.push_str("</ul>\n");
    }
    let suppressed = report.findings.iter().filter(|f| f.suppressed).count();
    if suppressed > 0 {
        let _ = writeln!(
            out,
            "<p class=\"muted\">{} suppressed.</p>",
            plural(suppressed, "finding", "findings")
        );
    }
    out.push_str("</section>\n");
}

/// `cluster (environment)`, escaped.
fn cluster_cell(f: &Finding) -> String {
    match (&f.cluster, &f.environment) {
        (Some(c), Some(e)) => format!("{} ({})", escape_html(c), escape_html(e)),
        (Some(c), None) => escape_html(c),
        _ => String::new(),
    }
}

/// The tier heading a cluster is listed under: its tier, else its environment.
fn tier_group(t: &Topology, i: usize) -> (u8, String) {
    let c = &t.clusters[i];
    match (c.tier, c.environment) {
        (Some(tier), _) => (tier_rank(tier), format!("tier: {}", tier.as_str())),
        (None, Env::Production) => (0, "tier: production".to_owned()),
        (None, Env::NonProduction) => (6, "non-production, no tier".to_owned()),
        (None, Env::Unknown) => (7, "environment unknown".to_owned()),
    }
}

fn tier_rank(tier: Tier) -> u8 {
    Tier::ALL
        .iter()
        .position(|t| *t == tier)
        .and_then(|p| u8::try_from(p).ok())
        .unwrap_or(5)
}

fn env_class(env: Env) -> &'static str {
    match env {
        Env::Production => "env-production",
        Env::NonProduction => "env-non-production",
        Env::Unknown => "env-unknown",
    }
}

/// What lands on one cluster: objects, workloads, deliveries and purposes.
#[derive(Default)]
struct Landing<'t> {
    objects: usize,
    workloads: usize,
    opaque: usize,
    /// Deliveries (kind and name) and how many placements each makes here.
    deployers: BTreeMap<(String, &'t str), usize>,
    purposes: BTreeMap<&'static str, usize>,
}

/// Clusters grouped by tier, production first, each with counts of what lands on it and its
/// deliveries folded.
fn clusters_section(out: &mut String, t: &Topology) {
    let mut landing: Vec<Landing> = (0..t.clusters.len()).map(|_| Landing::default()).collect();
    for p in &t.placements {
        let Some(l) = landing.get_mut(p.cluster) else {
            continue;
        };
        l.objects += 1;
        if p.opaque {
            l.opaque += 1;
        }
        if p.is_workload() {
            l.workloads += 1;
            *l.purposes.entry(p.purpose.as_str()).or_default() += 1;
        }
        if let Some(d) = &p.deployer {
            *l.deployers
                .entry((d.kind.to_string(), d.name.as_str()))
                .or_default() += 1;
        }
    }
    let _ = writeln!(
        out,
        "<section id=\"clusters\">\n<h2>Clusters ({})</h2>",
        t.clusters.len()
    );
    if t.clusters.is_empty() {
        out.push_str("<p>No cluster is known.</p>\n</section>\n");
        return;
    }
    let mut order: Vec<usize> = (0..t.clusters.len()).collect();
    order.sort_by_key(|&i| tier_group(t, i).0);
    let mut current: Option<String> = None;
    for i in order {
        let c = &t.clusters[i];
        let (_, group) = tier_group(t, i);
        if current.as_deref() != Some(group.as_str()) {
            if current.is_some() {
                out.push_str("</table>\n");
            }
            let _ = writeln!(
                out,
                "<h3>{}</h3>\n<table>\n<tr><th>cluster</th><th>environment</th><th>objects</th><th>workloads</th><th>opaque</th><th>deliveries</th><th>purposes of workloads</th></tr>",
                escape_html(&group)
            );
            current = Some(group);
        }
        let l = &landing[i];
        let purposes: Vec<String> = l
            .purposes
            .iter()
            .map(|(p, n)| format!("{} {n}", escape_html(p)))
            .collect();
        let deliveries = if l.deployers.is_empty() {
            "0".to_owned()
        } else {
            let mut items = String::new();
            for ((kind, name), n) in &l.deployers {
                let _ = write!(
                    items,
                    "<li>{} <code>{}</code>: {}</li>",
                    escape_html(kind),
                    escape_html(name),
                    plural(*n, "object", "objects")
                );
            }
            format!(
                "<details><summary>{}</summary><ul>{items}</ul></details>",
                l.deployers.len()
            )
        };
        let server = c
            .server
            .as_deref()
            .filter(|s| *s != c.name)
            .map(|s| format!("<br><span class=\"muted\">{}</span>", escape_html(s)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr><td><strong class=\"cluster\">{}</strong>{server}</td><td class=\"{}\" title=\"{}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{deliveries}</td><td>{}</td></tr>",
            escape_html(&c.name),
            env_class(c.environment),
            escape_html(&c.env_reason),
            c.environment,
            l.objects,
            l.workloads,
            l.opaque,
            purposes.join(", ")
        );
    }
    out.push_str("</table>\n</section>\n");
}

/// At most this many deployers are drawn; the rest are counted below the graph.
const GRAPH_DEPLOYERS: usize = 150;
/// Labels longer than this are cut with an ellipsis (the full text is the node's title).
const LABEL_CHARS: usize = 64;

fn cut_label(text: &str) -> String {
    if text.chars().count() <= LABEL_CHARS {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(LABEL_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

/// Deployer → cluster edges as an inline SVG: deployers on the left, clusters on the right
/// in tier order (production first), coloured by environment.
fn graph_section(out: &mut String, t: &Topology) {
    let mut edges: BTreeSet<(String, String, usize)> = BTreeSet::new();
    for p in &t.placements {
        if let Some(d) = &p.deployer {
            edges.insert((
                format!("{} {}", d.kind, d.name),
                d.location.file.to_string(),
                p.cluster,
            ));
        }
    }
    let _ = writeln!(
        out,
        "<section id=\"graph\">\n<h2>Topology: deployers → clusters</h2>"
    );
    if edges.is_empty() {
        out.push_str("<p>No deployer places anything on a cluster.</p>\n</section>\n");
        return;
    }
    let mut deployers: Vec<(String, String)> = Vec::new();
    for (d, file, _) in &edges {
        if deployers.last() != Some(&(d.clone(), file.clone())) {
            deployers.push((d.clone(), file.clone()));
        }
    }
    let drawn = deployers.len().min(GRAPH_DEPLOYERS);
    let shown: BTreeMap<(&str, &str), usize> = deployers[..drawn]
        .iter()
        .enumerate()
        .map(|(i, (d, f))| ((d.as_str(), f.as_str()), i))
        .collect();
    let mut clusters: Vec<usize> = edges
        .iter()
        .filter(|(d, f, _)| shown.contains_key(&(d.as_str(), f.as_str())))
        .map(|(_, _, c)| *c)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    clusters.sort_by_key(|&i| (tier_group(t, i).0, i));

    const ROW: usize = 34;
    const TOP: usize = 16;
    const WIDTH: usize = 1100;
    const LEFT_W: usize = 470;
    const RIGHT_X: usize = 760;
    const RIGHT_W: usize = 320;
    let rows = drawn.max(clusters.len());
    let height = TOP * 2 + rows * ROW;
    let cluster_y = |k: usize| -> usize {
        // Clusters spread over the deployers' height, so edges fan out rather than bunch.
        if clusters.len() <= 1 {
            TOP + (rows.saturating_sub(1) * ROW) / 2
        } else {
            TOP + k * (rows - 1) * ROW / (clusters.len() - 1)
        }
    };
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-label=\"deployer to cluster graph\" font-family=\"system-ui,sans-serif\" font-size=\"12\">"
    );
    out.push_str("<g stroke=\"#8c959f\" stroke-width=\"1.2\" fill=\"none\">\n");
    for (d, f, c) in &edges {
        let (Some(&row), Some(k)) = (
            shown.get(&(d.as_str(), f.as_str())),
            clusters.iter().position(|x| x == c),
        ) else {
            continue;
        };
        let (x1, y1) = (LEFT_W + 10, TOP + row * ROW + 13);
        let (x2, y2) = (RIGHT_X, cluster_y(k) + 13);
        let mid = (x1 + x2) / 2;
        let prod = t.clusters[*c].environment == Env::Production;
        let _ = writeln!(
            out,
            "<path d=\"M{x1} {y1} C{mid} {y1} {mid} {y2} {x2} {y2}\"{}/>",
            if prod { " stroke=\"#cf222e\"" } else { "" }
        );
    }
    out.push_str("</g>\n");
    for (i, (d, f)) in deployers[..drawn].iter().enumerate() {
        let y = TOP + i * ROW;
        let _ = writeln!(
            out,
            "<g><title>{} ({})</title><rect x=\"10\" y=\"{y}\" width=\"{LEFT_W}\" height=\"26\" rx=\"4\" fill=\"#f6f8fa\" stroke=\"#d0d7de\"/><text x=\"18\" y=\"{}\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#57606a\" font-size=\"10\">{}</text></g>",
            escape_html(d),
            escape_html(f),
            y + 17,
            escape_html(&cut_label(d)),
            LEFT_W + 4,
            y + 17,
            escape_html(&cut_label(f).chars().rev().take(32).collect::<Vec<_>>().into_iter().rev().collect::<String>())
        );
    }
    for (k, &i) in clusters.iter().enumerate() {
        let c = &t.clusters[i];
        let y = cluster_y(k);
        let (fill, stroke) = match c.environment {
            Env::Production => ("#ffebe9", "#cf222e"),
            Env::NonProduction => ("#dafbe1", "#1a7f37"),
            Env::Unknown => ("#fff8c5", "#9a6700"),
        };
        let tier = c.tier.map(Tier::as_str).unwrap_or("no tier");
        let _ = writeln!(
            out,
            "<g><title>{} ({}, {tier})</title><rect x=\"{RIGHT_X}\" y=\"{y}\" width=\"{RIGHT_W}\" height=\"26\" rx=\"13\" fill=\"{fill}\" stroke=\"{stroke}\"/><text x=\"{}\" y=\"{}\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"10\" fill=\"{stroke}\">{}</text></g>",
            escape_html(&c.name),
            c.environment,
            RIGHT_X + 12,
            y + 17,
            escape_html(&cut_label(&c.name).chars().take(36).collect::<String>()),
            RIGHT_X + RIGHT_W - 8,
            y + 17,
            tier
        );
    }
    out.push_str("</svg>\n");
    if deployers.len() > drawn {
        let _ = writeln!(
            out,
            "<p class=\"muted\">{} more not drawn; the cluster table above counts them all.</p>",
            plural(deployers.len() - drawn, "deployer", "deployers")
        );
    }
    out.push_str("</section>\n");
}

/// Objects placed, unplaced folders, opaque placements, skipped files, and what the topology
/// could not resolve (folded).
fn coverage_section(out: &mut String, report: &ScanReport) {
    let s = &report.summary;
    let c = &s.coverage;
    let _ = writeln!(
        out,
        "<section id=\"coverage\">\n<h2>Coverage</h2>\n<table>\n<tr><th>files</th><td class=\"n\">{}</td></tr>\n<tr><th>Kubernetes objects</th><td class=\"n\">{}</td></tr>\n<tr><th>objects placed on a cluster</th><td class=\"n\">{}</td></tr>\n<tr><th>objects reached by no deployer</th><td class=\"n\">{}</td></tr>\n<tr><th>opaque placements</th><td class=\"n\">{}</td></tr>\n<tr><th>clusters that receive anything</th><td class=\"n\">{}</td></tr>\n<tr><th>files skipped</th><td class=\"n\">{}</td></tr>\n</table>",
        s.files,
        c.objects,
        c.placed,
        c.unplaced(),
        c.opaque,
        s.clusters_used,
        s.skipped.len()
    );
    if !c.unplaced_folders.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>{} with objects no deployer reaches</summary>\n<table><tr><th>folder</th><th>owner</th><th>objects</th></tr>",
            plural(c.unplaced_folders.len(), "folder", "folders")
        );
        for f in &c.unplaced_folders {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"n\">{}</td></tr>",
                escape_html(&f.shown()),
                f.family.unwrap_or(""),
                f.objects
            );
        }
        out.push_str("</table></details>\n");
    }
    let unresolved = &report.topology.unresolved;
    if !unresolved.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>{} the topology could not resolve</summary><ul>",
            plural(unresolved.len(), "reference", "references")
        );
        for u in unresolved {
            let _ = writeln!(
                out,
                "<li><code>{}</code> {}</li>",
                escape_html(&u.location.to_string()),
                escape_html(&u.reason)
            );
        }
        out.push_str("</ul></details>\n");
    }
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_cannot_become_markup() {
        assert_eq!(
            escape_html("<script>alert('x')</script>"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
        );
        assert_eq!(
            escape_html("a\" onmouseover=\"x & y"),
            "a&quot; onmouseover=&quot;x &amp; y"
        );
        assert_eq!(escape_html("&amp;"), "&amp;amp;");
        // Control characters are shown, never emitted: no line of the page starts with
        // repository text.
        assert_eq!(escape_html("x\n::error\u{1b}"), "x\\n::error\\u{1b}");
        assert_eq!(escape_html("plain-name_1.yaml"), "plain-name_1.yaml");
    }

    #[test]
    fn credentials_are_masked() {
        let masked = escape_html("https://user:hunter2secret@git.example.com/repo.git");
        assert!(!masked.contains("hunter2secret"), "{masked}");
        let token = escape_html("env GIT_URL = https://ghp_abcdefghij0123456789@git.example/x");
        assert_eq!(token, "env GIT_URL = https://****@git.example/x");
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlX2J5dGVz-_x";
        assert_eq!(
            escape_html(&format!("env SESSION = {jwt}")),
            "env SESSION = ****"
        );
    }

    #[test]
    fn links_are_encoded_and_absent_without_a_commit() {
        let options = HtmlOptions {
            blob_url: Some("https://github.com/o/r/blob/abc123"),
            run_url: None,
        };
        assert_eq!(
            location("a b/<x>.yaml", 7, &options),
            "<a href=\"https://github.com/o/r/blob/abc123/a%20b/%3Cx%3E.yaml#L7\"><code>a b/&lt;x&gt;.yaml:7</code></a>"
        );
        assert_eq!(
            location("a.yaml", 3, &HtmlOptions::default()),
            "<code>a.yaml:3</code>"
        );
    }

    #[test]
    fn budget_cuts_come_before_the_verdict() {
        let mut summary = crate::scan::Summary::default();
        summary.coverage.objects = 4;
        summary.coverage.placed = 4;
        summary.cuts = vec![crate::budget::BudgetCut::new(
            crate::budget::Budget::KustomizeObjects,
            None,
            "overlays/<big> expands to too many objects",
        )];
        let report = ScanReport {
            findings: Vec::new(),
            summary,
            topology: Topology::default(),
            comparison: None,
            changes: None,
        };
        let page = render(&report, &HtmlOptions::default());
        let cut = page
            .find(super::super::INCOMPLETE)
            .expect("the cut sentence");
        let verdict = page.find("id=\"verdict\"").expect("the verdict");
        assert!(cut < verdict, "{page}");
        assert!(page.contains("overlays/&lt;big&gt;"), "{page}");
        assert!(
            page.contains("no finding in what was judged, but the scan is incomplete"),
            "{page}"
        );
    }

    #[test]
    fn an_empty_report_is_a_whole_page_that_loads_nothing() {
        let report = ScanReport {
            findings: Vec::new(),
            summary: crate::scan::Summary::default(),
            topology: Topology::default(),
            comparison: None,
            changes: None,
        };
        let page = render(&report, &HtmlOptions::default());
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.ends_with("</html>\n"));
        assert!(page.contains("envfence: nothing was checked"), "{page}");
        assert!(!page.contains("<script"));
        assert!(!page.contains("src="));
        // Without `--base` there is no change to show.
        assert!(changes_section(&report, &HtmlOptions::default()).is_empty());
    }
}
