//! `envfence init`: a starter `.envfence.yaml` written from what the topology discovered.
//!
//! Each cluster becomes a `clusters:` entry with its inferred environment, and the evidence for
//! it as comments, so the user confirms or corrects what envfence already believes. A cluster
//! whose environment is unknown gets a commented `environment:` line to fill in. The folders no
//! deployer reaches become commented `paths:` entries. The file loads as it is written (tests
//! check it on the demo and on real repositories), and loading it changes no cluster's
//! environment: declaring what was inferred only makes it explicit.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::config::SCHEMA_URL;
use crate::sanitize;
use crate::topology::coverage::FOLDER_DEPTH;
use crate::topology::{Env, Topology};

/// What [`starter_config`] wrote, for the one-line summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    pub clusters: usize,
    pub production: usize,
    pub non_production: usize,
    pub unknown: usize,
    pub unplaced_folders: usize,
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
    if clusters.is_empty() {
        out.push_str("# No cluster was found: declare yours here.\nclusters: []\n");
    } else {
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
    }

    let folders = &topology.object_coverage.unplaced_folders;
    written.unplaced_folders = folders.len();
    if !folders.is_empty() {
        let _ = writeln!(
            out,
            "\n# {} object{} in these folders reach{} no cluster through a deployer envfence follows.\n\
             # Say where each folder lands (a cluster name from above), or ignore it:",
            topology.object_coverage.unplaced(),
            if topology.object_coverage.unplaced() == 1 {
                ""
            } else {
                "s"
            },
            if topology.object_coverage.unplaced() == 1 {
                "es"
            } else {
                ""
            }
        );
        out.push_str(
            "# The first glob that matches a file wins: deeper folders come first.\n# paths:\n",
        );
        // A folder cut to FOLDER_DEPTH segments stands for everything below it; a shallower one
        // for the files directly in it, which its glob also matches below: hence deepest first.
        let mut folders: Vec<_> = folders.iter().collect();
        folders.sort_by_key(|f| {
            let depth = if f.folder.is_empty() {
                0
            } else {
                f.folder.split('/').count()
            };
            (std::cmp::Reverse(depth), std::cmp::Reverse(f.objects))
        });
        for folder in folders {
            let glob = if folder.folder.is_empty() {
                "*".to_owned()
            } else if folder.folder.split('/').count() >= FOLDER_DEPTH {
                format!("{}/**", folder.folder)
            } else {
                format!("{}/*", folder.folder)
            };
            let _ = writeln!(
                out,
                "#   - glob: {}   # {} object{}{}",
                quoted(&glob),
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

/// A YAML double-quoted scalar: JSON's string syntax is a subset of it.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
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
