//! The change per cluster of a diff-aware scan, as text and Markdown (issue 30): counts per
//! cluster first (production first), deployers that newly reach production, then the details
//! of each cluster (deliveries, objects, the path each took, what caused it, rendered diffs).
//! The Markdown is folded per cluster and can be shortened ([`Detail`]) to fit a comment;
//! the counts are always complete.

use std::fmt::Write as _;

use super::plural;

use crate::topology::changes::{Changes, ClusterChanges, Counts, ObjectChange, NOTHING_CHANGED};

use super::markdown::escape;

/// How many highlighted deliveries (newly reaching production) are listed by name.
pub const HIGHLIGHTS_SHOWN: usize = 20;

/// How much of the details the Markdown shows: the first `entries` entries (deliveries and
/// objects, cluster by cluster) and, among them, the first `diffs` diffs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detail {
    pub entries: usize,
    pub diffs: usize,
}

impl Detail {
    /// Every entry and diff of `changes`.
    pub fn all(changes: &Changes) -> Detail {
        let entries = changes
            .clusters
            .iter()
            .map(|c| c.deliveries.len() + c.objects.len())
            .sum();
        let diffs = changes
            .clusters
            .iter()
            .flat_map(|c| &c.objects)
            .filter(|o| o.diff.is_some())
            .count();
        Detail { entries, diffs }
    }
}

/// `+1 −2 ~3`.
fn counts(c: Counts) -> String {
    format!("+{} −{} ~{}", c.added, c.removed, c.modified)
}

/// "1 deployer newly reaches" / "3 deployers newly reach", for the highlight of deliveries
/// that newly reach a production cluster.
pub fn newly_reaching(n: usize) -> String {
    let verb = if n == 1 { "reaches" } else { "reach" };
    format!("{} newly {verb}", plural(n, "deployer", "deployers"))
}

/// One line of totals: "Changes: 3 clusters; deliveries +1 −0 ~2; objects +3 −0 ~5."
pub fn totals_line(changes: &Changes) -> String {
    if changes.is_empty() {
        return NOTHING_CHANGED.to_owned();
    }
    let (d, o) = changes.totals();
    format!(
        "Changes: {}; deliveries {}; objects {}.",
        plural(changes.clusters.len(), "cluster", "clusters"),
        counts(d),
        counts(o)
    )
}

/// `Kind/name (namespace ns)`.
pub fn object_name(o: &ObjectChange) -> String {
    let mut s = format!("{}/{}", o.kind, o.name.as_deref().unwrap_or("?"));
    if let Some(ns) = &o.namespace {
        let _ = write!(s, " (namespace {ns})");
    }
    s
}

/// A fence longer than any run of backticks in `text`.
fn fence(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

/// The Markdown section, `detail` deciding how much of the details is shown. `location`
/// writes a `file:line` (a link at the head commit, when there is one).
pub fn markdown(
    changes: &Changes,
    detail: Detail,
    location: &dyn Fn(&str, u32) -> String,
) -> String {
    let mut out = String::from("### Changes per cluster\n\n");
    if changes.is_empty() {
        let _ = writeln!(out, "{NOTHING_CHANGED}\n");
        return out;
    }
    out.push_str("| tier | cluster | deliveries | objects |\n|---|---|---|---|\n");
    for c in &changes.clusters {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            c.group(),
            escape(&c.cluster),
            counts(c.delivery_counts()),
            counts(c.object_counts())
        );
    }
    let (d, o) = changes.totals();
    let _ = writeln!(
        out,
        "| | **total** | **{}** | **{}** |\n",
        counts(d),
        counts(o)
    );
    let highlighted: Vec<_> = changes.newly_production().collect();
    if !highlighted.is_empty() {
        let _ = writeln!(
            out,
            "> [!WARNING]\n> **{} a production cluster:**",
            newly_reaching(highlighted.len())
        );
        for (c, d) in highlighted.iter().take(HIGHLIGHTS_SHOWN) {
            let _ = writeln!(
                out,
                "> - {} {} → {} ({})",
                escape(&d.kind),
                escape(&d.name),
                escape(&c.cluster),
                location(&d.location.file, d.location.line)
            );
        }
        if highlighted.len() > HIGHLIGHTS_SHOWN {
            let _ = writeln!(out, "> - and {} more", highlighted.len() - HIGHLIGHTS_SHOWN);
        }
        out.push('\n');
    }
    let mut entries_left = detail.entries;
    let mut diffs_left = detail.diffs;
    for c in &changes.clusters {
        if entries_left == 0 {
            break;
        }
        cluster_details(&mut out, c, &mut entries_left, &mut diffs_left, location);
    }
    let all = Detail::all(changes);
    let (entries_out, diffs_out) = (
        all.entries - detail.entries.min(all.entries),
        all.diffs - detail.diffs.min(all.diffs) + changes.diffs_left_out,
    );
    if entries_out > 0 || diffs_out > 0 {
        let mut parts = Vec::new();
        if entries_out > 0 {
            parts.push(plural(entries_out, "change detail", "change details"));
        }
        if diffs_out > 0 {
            parts.push(plural(diffs_out, "diff", "diffs"));
        }
        let _ = writeln!(
            out,
            "> {} left out to keep this within its size limit; the counts above are complete.\n",
            parts.join(" and ")
        );
    }
    out
}

fn cluster_details(
    out: &mut String,
    c: &ClusterChanges,
    entries_left: &mut usize,
    diffs_left: &mut usize,
    location: &dyn Fn(&str, u32) -> String,
) {
    let _ = writeln!(
        out,
        "<details><summary>{} ({}): {}, {}</summary>\n",
        escape(&c.cluster),
        c.group(),
        plural(c.deliveries.len(), "delivery", "deliveries"),
        plural(c.objects.len(), "object", "objects")
    );
    for d in &c.deliveries {
        if *entries_left == 0 {
            break;
        }
        *entries_left -= 1;
        let _ = writeln!(
            out,
            "- {} delivery {} {} at {}{}",
            d.change.as_str(),
            escape(&d.kind),
            escape(&d.name),
            location(&d.location.file, d.location.line),
            if d.newly_reaches_production {
                " — **newly reaches production**"
            } else {
                ""
            }
        );
    }
    for o in &c.objects {
        if *entries_left == 0 {
            break;
        }
        *entries_left -= 1;
        let via = match &o.deployer {
            Some((kind, name)) => format!(" via {} {}", escape(kind), escape(name)),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "- {} {} at {}{via}",
            o.change.as_str(),
            escape(&object_name(o)),
            location(&o.location.file, o.location.line)
        );
        if !o.causes.is_empty() {
            let causes: Vec<String> = o.causes.iter().map(|l| location(&l.file, l.line)).collect();
            let _ = writeln!(out, "  - changed: {}", causes.join(", "));
        }
        if !o.path.is_empty() {
            let hops: Vec<String> = o
                .path
                .iter()
                .map(|e| {
                    format!(
                        "{} {}",
                        location(&e.location.file, e.location.line),
                        escape(&e.note())
                    )
                })
                .collect();
            let _ = writeln!(out, "  - path: {}", hops.join(" → "));
        }
        if let Some(diff) = &o.diff {
            if *diffs_left > 0 {
                *diffs_left -= 1;
                // Line by line: the sanitizer writes a line break as `\n`.
                let lines: Vec<String> = diff
                    .text
                    .lines()
                    .map(|l| crate::sanitize::text(l).into_owned())
                    .collect();
                let fence = fence(&lines.concat());
                let _ = write!(out, "\n  {fence}diff\n");
                for line in &lines {
                    let _ = writeln!(out, "  {line}");
                }
                if diff.lines_cut > 0 {
                    let _ = writeln!(out, "  … {} more lines", diff.lines_cut);
                }
                let _ = writeln!(out, "  {fence}\n");
            }
        }
    }
    out.push_str("\n</details>\n\n");
}

/// The text section for a terminal: counts per cluster, highlights, then each cluster's
/// deliveries and objects with what caused them and their diffs. `clean` makes repository
/// text safe for a terminal.
pub fn text(changes: &Changes, clean: &dyn Fn(&str) -> String) -> String {
    let mut out = String::from("Changes per cluster\n");
    if changes.is_empty() {
        let _ = writeln!(out, "  {NOTHING_CHANGED}");
        return out;
    }
    let width = changes
        .clusters
        .iter()
        .map(|c| c.cluster.chars().count())
        .max()
        .unwrap_or(0);
    for c in &changes.clusters {
        let _ = writeln!(
            out,
            "  {:<14} {:<width$}  deliveries {}  objects {}",
            c.group(),
            clean(&c.cluster),
            counts(c.delivery_counts()),
            counts(c.object_counts())
        );
    }
    for (c, d) in changes.newly_production() {
        let _ = writeln!(
            out,
            "  ! {} {} newly reaches production cluster {} ({}:{})",
            clean(&d.kind),
            clean(&d.name),
            clean(&c.cluster),
            clean(&d.location.file),
            d.location.line
        );
    }
    for c in &changes.clusters {
        let _ = writeln!(out, "\n  {} ({})", clean(&c.cluster), c.group());
        for d in &c.deliveries {
            let _ = writeln!(
                out,
                "    {} {} {} ({}:{})",
                d.change.sign(),
                clean(&d.kind),
                clean(&d.name),
                clean(&d.location.file),
                d.location.line
            );
        }
        for o in &c.objects {
            let via = match &o.deployer {
                Some((kind, name)) => format!(" via {} {}", clean(kind), clean(name)),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "    {} {} ({}:{}){via}",
                o.change.sign(),
                clean(&object_name(o)),
                clean(&o.location.file),
                o.location.line
            );
            if !o.causes.is_empty() {
                let causes: Vec<String> = o
                    .causes
                    .iter()
                    .map(|l| format!("{}:{}", clean(&l.file), l.line))
                    .collect();
                let _ = writeln!(out, "        changed: {}", causes.join(", "));
            }
            if let Some(diff) = &o.diff {
                for line in diff.text.lines() {
                    let _ = writeln!(out, "        {}", clean(line));
                }
                if diff.lines_cut > 0 {
                    let _ = writeln!(out, "        … {} more lines", diff.lines_cut);
                }
            }
        }
    }
    if changes.diffs_left_out > 0 {
        let _ = writeln!(
            out,
            "\n  {} left out (the report's limit on diffs)",
            plural(changes.diffs_left_out, "diff", "diffs")
        );
    }
    out
}
