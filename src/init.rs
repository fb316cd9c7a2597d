//! `envfence init`: a starter `.envfence.yaml` written from what the topology discovered.
//!
//! Each cluster becomes a `clusters:` entry with its inferred environment, and the evidence for
//! it as comments, so the user confirms or corrects what envfence already believes. A cluster
//! whose environment is unknown gets a commented `environment:` line to fill in. The clusters
//! that the repository's selectors ask for and nothing declares (ApplicationSet cluster
//! generators, Config Sync ClusterSelectors) are written with the `labels` they ask for and
//! the `annotations` their templates read. When fewer than half of the objects are placed,
//! the entries that would place the largest unplaced folders are written as active
//! `entrypoints:`/`paths:` entries, each with its reason; the other unplaced folders become
//! commented `paths:` entries. The file loads as it is written (tests check it on the demo and
//! on real repositories), and loading it changes no known cluster's environment: declaring
//! what was inferred only makes it explicit.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::config::SCHEMA_URL;
use crate::sanitize;
use crate::topology::advice::{glob_of, quoted, ClusterProposal, EntryKind};
use crate::topology::{Env, Topology};

/// What [`starter_config`] wrote, for the one-line summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    pub clusters: usize,
    pub production: usize,
    pub non_production: usize,
    pub unknown: usize,
    /// Unplaced folders left as commented `paths:` entries.
    pub unplaced_folders: usize,
    /// Active `entrypoints:` and `paths:` entries proposed for the largest unplaced folders.
    pub entries: usize,
    /// Clusters declared (or given labels) for the selectors that matched none.
    pub labelled: usize,
}

/// How many locations a cluster's comment lists (where it was declared).
const LOCATIONS_SHOWN: usize = 3;

/// The starter config for `topology`, and what it holds.
pub fn starter_config(topology: &Topology) -> (String, Written) {
    let mut out = String::new();
    let mut written = Written::default();
    let _ = writeln!(out, "# yaml-language-server: $schema={SCHEMA_URL}");
    let _ = writeln!(
        out,
        "# Written by `envfence init` (envfence {}) from what it found in this repository.",
        env!("CARGO_PKG_VERSION")
    );
    out.push_str(
        "# Check every cluster's environment: a declared environment wins over anything inferred.\n\
         # Every key is documented in the README's \"Configuration: .envfence.yaml\" section.\n\n",
    );

    // Names and aliases must be unique across the file (the loader rejects a repeat).
    let mut names: BTreeSet<&str> = BTreeSet::new();
    let clusters: Vec<_> = topology
        .clusters
        .iter()
        .filter(|c| !c.name.trim().is_empty() && names.insert(c.name.as_str()))
        .collect();
    let proposals = &topology.advice.clusters;
    let named_proposals = proposals.iter().any(|p| !p.known && p.name.is_some());
    if clusters.is_empty() && !named_proposals {
        out.push_str("# No cluster was found: declare yours here.\nclusters: []\n");
    } else if !clusters.is_empty() {
        out.push_str("clusters:\n");
    }
    let mut aliases_used: BTreeSet<&str> = BTreeSet::new();
    for cluster in clusters {
        written.clusters += 1;
        let reason = comment(&cluster.env_reason);
        match cluster.environment {
            Env::Production => written.production += 1,
            Env::NonProduction => written.non_production += 1,
            Env::Unknown => written.unknown += 1,
        }
        let _ = writeln!(
            out,
            "  # {}: {}{}",
            comment(&cluster.name),
            cluster.environment,
            if reason.is_empty() {
                String::new()
            } else {
                format!(" ({reason})")
            }
        );
        let mut places: Vec<String> = cluster
            .declared_in
            .iter()
            .map(|l| format!("{}:{}", l.file, l.line))
            .collect();
        places.dedup();
        if !places.is_empty() {
            let more = places.len().saturating_sub(LOCATIONS_SHOWN);
            places.truncate(LOCATIONS_SHOWN);
            let _ = writeln!(
                out,
                "  #   seen at {}{}",
                comment(&places.join(", ")),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
        }
        let _ = writeln!(out, "  - name: {}", quoted(&cluster.name));
        if let Some(server) = cluster.server.as_deref().filter(|s| !s.is_empty()) {
            let _ = writeln!(out, "    server: {}", quoted(server));
        }
        let aliases: Vec<String> = cluster
            .aliases
            .iter()
            .filter(|a| {
                !a.trim().is_empty()
                    && Some(a.as_str()) != cluster.server.as_deref()
                    && !names.contains(a.as_str())
                    && aliases_used.insert(a.as_str())
            })
            .map(|a| quoted(a))
            .collect();
        if !aliases.is_empty() {
            let _ = writeln!(out, "    aliases: [{}]", aliases.join(", "));
        }
        match cluster.environment {
            Env::Unknown => {
                out.push_str("    # environment: production   # or non-production: envfence could not tell\n");
            }
            env => {
                let _ = writeln!(out, "    environment: {env}");
            }
        }
        if let Some(p) = proposals
            .iter()
            .find(|p| p.name.as_deref() == Some(cluster.name.as_str()))
        {
            written.labelled += 1;
            write_asked(&mut out, p, "  ");
        }
    }
    for p in proposals.iter().filter(|p| !p.known) {
        match &p.name {
            Some(name) if names.insert(name.as_str()) => {
                written.labelled += 1;
                if written.clusters + written.labelled == 1 {
                    out.push_str("clusters:\n");
                }
                let _ = writeln!(
                    out,
                    "  # {}: asked for by the cluster selectors at {}",
                    comment(name),
                    comment(&locations(p))
                );
                let _ = writeln!(out, "  - name: {}", quoted(name));
                write_asked(&mut out, p, "  ");
            }
            Some(_) => {}
            None => {
                let _ = writeln!(
                    out,
                    "  # The cluster selectors at {} name no environment: name the cluster that\n  # carries these labels, and uncomment it.",
                    comment(&locations(p))
                );
                out.push_str("  # - name: CLUSTER\n");
                write_asked(&mut out, p, "  # ");
            }
        }
    }

    let entries = &topology.advice.entries;
    written.entries = entries.len();
    if !entries.is_empty() {
        let _ = writeln!(
            out,
            "\n# Fewer than half of the objects reach a cluster through a deployer envfence follows.\n\
             # These entries place the largest unplaced folders; check each cluster, or remove the entry:"
        );
        for (kind, list, key) in [
            (EntryKind::EntryPoint, "entrypoints:", "path"),
            (EntryKind::Path, "paths:", "glob"),
        ] {
            let of_kind: Vec<_> = entries.iter().filter(|e| e.kind == kind).collect();
            if of_kind.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{list}");
            for e in of_kind {
                let _ = writeln!(
                    out,
                    "  # {} object{}: {}",
                    e.objects,
                    if e.objects == 1 { "" } else { "s" },
                    comment(&e.reason.to_string())
                );
                let _ = writeln!(out, "  - {key}: {}", quoted(&e.target));
                let _ = writeln!(out, "    cluster: {}", quoted(&e.cluster));
            }
        }
    }
    let proposed_paths = entries.iter().any(|e| e.kind == EntryKind::Path);
    // Folders an active entry already places are not listed again.
    let placed_by_entry = |folder: &str| {
        entries.iter().any(|e| {
            let dir = match e.kind {
                EntryKind::EntryPoint => e.target.as_str(),
                EntryKind::Path => e
                    .target
                    .strip_suffix("/**")
                    .or_else(|| e.target.strip_suffix("/*"))
                    .unwrap_or(&e.target),
            };
            folder == dir || folder.starts_with(&format!("{dir}/"))
        })
    };
    let folders: Vec<_> = topology
        .object_coverage
        .unplaced_folders
        .iter()
        .filter(|f| !placed_by_entry(&f.folder))
        .collect();
    written.unplaced_folders = folders.len();
    if !folders.is_empty() {
        let unplaced: usize = folders.iter().map(|f| f.objects).sum();
        let _ = writeln!(
            out,
            "\n# {} object{} in these folders reach{} no cluster through a deployer envfence follows.\n\
             # Say where each folder lands (a cluster name from above), or ignore it:",
            unplaced,
            if unplaced == 1 { "" } else { "s" },
            if unplaced == 1 { "es" } else { "" }
        );
        out.push_str("# The first glob that matches a file wins: deeper folders come first.\n");
        if !proposed_paths {
            out.push_str("# paths:\n");
        }
        // A folder cut to FOLDER_DEPTH segments stands for everything below it; a shallower one
        // for the files directly in it, which its glob also matches below: hence deepest first.
        let mut folders = folders;
        folders.sort_by_key(|f| {
            let depth = if f.folder.is_empty() {
                0
            } else {
                f.folder.split('/').count()
            };
            (std::cmp::Reverse(depth), std::cmp::Reverse(f.objects))
        });
        for folder in folders {
            let _ = writeln!(
                out,
                "#   - glob: {}   # {} object{}{}",
                quoted(&glob_of(&folder.folder)),
                folder.objects,
                if folder.objects == 1 { "" } else { "s" },
                folder
                    .family
                    .map(|f| format!(", deployed by {f}, which envfence does not follow yet"))
                    .unwrap_or_default()
            );
            out.push_str("#     cluster: CLUSTER\n");
        }
    }
    (out, written)
}

/// The `labels:` and `annotations:` a proposed cluster is asked for, each line after
/// `prefix` (`"  "`, or `"  # "` for a commented entry). Annotation values are the user's to
/// fill in: envfence only knows that templates read them.
fn write_asked(out: &mut String, p: &ClusterProposal, prefix: &str) {
    if !p.labels.is_empty() {
        let _ = writeln!(out, "{prefix}  labels:");
        for (k, v) in &p.labels {
            let _ = writeln!(out, "{prefix}    {}: {}", quoted(k), quoted(v));
        }
    }
    if !p.annotations.is_empty() {
        let _ = writeln!(
            out,
            "{prefix}  annotations:   # read by the selecting ApplicationSets' templates: fill in"
        );
        for a in &p.annotations {
            let _ = writeln!(out, "{prefix}    {}: \"\"", quoted(a));
        }
    }
}

/// `file:line, file:line and 3 more` for the selectors of a proposal.
fn locations(p: &ClusterProposal) -> String {
    let shown: Vec<String> = p
        .asked_by
        .iter()
        .map(|l| format!("{}:{}", l.file, l.line))
        .collect();
    let more = p.selectors.saturating_sub(shown.len());
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Repository text made safe for a one-line comment (line breaks become `\n` escapes).
fn comment(text: &str) -> String {
    sanitize::text(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_topology_still_loads() {
        let (text, written) = starter_config(&Topology::default());
        assert_eq!(written, Written::default());
        let config =
            crate::config::Config::parse(std::path::Path::new("x.yaml"), &text).expect("loads");
        assert!(config.clusters.is_empty());
        assert!(
            text.starts_with("# yaml-language-server: $schema="),
            "{text}"
        );
    }

    #[test]
    fn names_are_quoted_and_comments_stay_one_line() {
        assert_eq!(quoted("a\"b: c"), r#""a\"b: c""#);
        assert!(!comment("x\ny\r\u{2028}z").contains(['\n', '\r', '\u{2028}']));
    }
}
