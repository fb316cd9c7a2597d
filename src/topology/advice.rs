//! Advice for a repository the topology only partly describes: the config lines that would
//! place what no deployer reaches, the cluster labels that the repository's selectors ask
//! for and no cluster carries, and whether it looks like a component catalog consumed
//! elsewhere. Worked out once at the end of the build; the summary (text, Markdown) says it
//! and `envfence init` writes it, each in its own words.

use std::collections::BTreeMap;

use super::coverage::{Coverage, FOLDER_DEPTH};
use super::env::Vocabulary;
use super::family::ENVIRONMENT_LABELS;
use super::index::RepoIndex;
use super::inventory::clusters::{Cluster, IN_CLUSTER, UNNAMED};
use super::inventory::selector::{SelectorUse, Wanted};
use crate::location::Location;

/// How many config entries are proposed for the largest unplaced folders.
pub const ENTRIES_PROPOSED: usize = 5;

/// How many of the largest unplaced folders are looked at for an entry.
const FOLDERS_EXAMINED: usize = 20;

/// What the build advises, for reports and `envfence init`.
#[derive(Debug, Clone, Default)]
pub struct Advice {
    /// Every cluster selector of the repository, each marked whether a cluster matches it.
    pub selectors: Vec<SelectorUse>,
    /// Clusters to declare (or labels to give a known one) so that the selectors that
    /// match nothing match.
    pub clusters: Vec<ClusterProposal>,
    /// When fewer than half of the objects are placed: the entries that would place the
    /// largest unplaced folders, most objects first.
    pub entries: Vec<EntryProposal>,
    /// The repository looks like a component catalog consumed elsewhere: no deployer, and its
    /// variant folders are named after variants. Holds the variant names that carry an
    /// environment word (each of which would otherwise have named a cluster).
    pub catalog: Option<Vec<String>>,
}

/// A cluster the selectors ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterProposal {
    /// Its name: the environment label's value it is asked for with, or `None` when the
    /// selectors name no environment (the user names it).
    pub name: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Annotations the selecting deployers' templates read; their values are the user's.
    pub annotations: Vec<String>,
    /// Where the selectors are, the first few.
    pub asked_by: Vec<Location>,
    /// How many selectors ask for it (more than `asked_by` may hold).
    pub selectors: usize,
    /// A cluster of that name is already known: the labels are to be added to it.
    pub known: bool,
}

/// Which config list an entry goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// `entrypoints:` (`path`, `cluster`).
    EntryPoint,
    /// `paths:` (`glob`, `cluster`).
    Path,
}

/// One proposed config entry, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryProposal {
    pub kind: EntryKind,
    /// The entry point's path, or the `paths` glob.
    pub target: String,
    pub cluster: String,
    /// Unplaced objects it would place.
    pub objects: usize,
    pub reason: EntryReason,
}

/// Why an entry names its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryReason {
    /// The folder is named like a cluster's API host (`namespaces/<host>/`).
    HostFolder,
    /// A folder of its path is an environment word.
    EnvironmentWord { word: String },
    /// The repository names only this cluster.
    OnlyCluster,
}

impl std::fmt::Display for EntryReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntryReason::HostFolder => f.write_str(
                "its folder is named like a cluster's API host, one folder per namespace below it",
            ),
            EntryReason::EnvironmentWord { word } => {
                write!(f, "its folder {word} is an environment word")
            }
            EntryReason::OnlyCluster => f.write_str("the only cluster this repository names"),
        }
    }
}

impl Advice {
    /// The proposed entries as `.envfence.yaml` lines, each with its objects and reason as a
    /// comment; empty when there is none.
    pub fn entry_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (kind, list, key) in [
            (EntryKind::EntryPoint, "entrypoints:", "path"),
            (EntryKind::Path, "paths:", "glob"),
        ] {
            let entries: Vec<&EntryProposal> =
                self.entries.iter().filter(|e| e.kind == kind).collect();
            if entries.is_empty() {
                continue;
            }
            out.push(list.to_owned());
            for e in entries {
                out.push(format!(
                    "  - {key}: {}   # {} object{}: {}",
                    quoted(&e.target),
                    e.objects,
                    if e.objects == 1 { "" } else { "s" },
                    comment(&e.reason.to_string())
                ));
                out.push(format!("    cluster: {}", quoted(&e.cluster)));
            }
        }
        out
    }

    /// The proposed clusters as `.envfence.yaml` lines (a placeholder name where the
    /// selectors name no environment); empty when every selector matches a cluster.
    pub fn cluster_lines(&self) -> Vec<String> {
        if self.clusters.is_empty() {
            return Vec::new();
        }
        let mut out = vec!["clusters:".to_owned()];
        for c in &self.clusters {
            let name = match (&c.name, c.known) {
                (Some(n), false) => quoted(n),
                (Some(n), true) => format!("{}   # known already: add its labels", quoted(n)),
                (None, _) => "CLUSTER   # name it: the selectors name no environment".to_owned(),
            };
            out.push(format!("  - name: {name}"));
            out.extend(map_line(
                "labels",
                c.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            ));
            out.extend(map_line(
                "annotations",
                c.annotations.iter().map(|a| (a.as_str(), "")),
            ));
        }
        out
    }
}

/// `    key: {"a": "b", ...}`, or nothing for an empty map.
fn map_line<'m>(key: &str, entries: impl Iterator<Item = (&'m str, &'m str)>) -> Option<String> {
    let pairs: Vec<String> = entries
        .map(|(k, v)| format!("{}: {}", quoted(k), quoted(v)))
        .collect();
    (!pairs.is_empty()).then(|| format!("    {key}: {{{}}}", pairs.join(", ")))
}

/// A YAML double-quoted scalar: JSON's string syntax is a subset of it.
pub fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// Repository text made safe for a one-line YAML comment.
fn comment(text: &str) -> String {
    crate::sanitize::text(text).into_owned()
}

/// What the build knows when it works out the advice.
pub(crate) struct Inputs<'i, 'a> {
    pub index: &'i RepoIndex<'a>,
    pub clusters: &'i [Cluster],
    pub vocabulary: &'i Vocabulary,
    pub coverage: &'i Coverage,
    pub selectors: Vec<SelectorUse>,
    /// Whether anything was placed (catalogs place nothing).
    pub placed_any: bool,
    /// Whether some document is a deployer of a family (asked only when nothing was placed;
    /// `false` otherwise).
    pub has_deployer: bool,
}

/// The advice for a finished build.
pub(crate) fn compute(inputs: Inputs<'_, '_>) -> Advice {
    let Inputs {
        index,
        clusters,
        vocabulary,
        coverage,
        mut selectors,
        placed_any,
        has_deployer,
    } = inputs;
    for s in &mut selectors {
        s.matched = clusters
            .iter()
            .filter(|c| !s.argo || c.argo_known)
            .any(|c| {
                let mut labels = c.labels.clone();
                if s.argo {
                    labels.insert(SECRET_TYPE_LABEL.to_owned(), "cluster".to_owned());
                }
                s.selector.matches(&labels)
            });
    }
    let catalog = (!placed_any && clusters.is_empty() && !has_deployer)
        .then(|| super::family::conventions::folders::catalog_variants(index, vocabulary))
        .flatten();
    let proposed = cluster_proposals(&selectors, clusters);
    let mut entries = if catalog.is_some() {
        Vec::new()
    } else {
        entries(index, coverage, clusters, vocabulary)
    };
    // Clusters the selectors ask for come first: once declared, the deployers place their
    // folders themselves, so a `paths` guess for those folders would be wrong.
    if !proposed.is_empty() {
        entries.retain(|e| e.reason == EntryReason::HostFolder);
    }
    Advice {
        clusters: proposed,
        selectors,
        entries,
        catalog,
    }
}

/// The label Argo CD puts on every cluster Secret; a selector may name it.
const SECRET_TYPE_LABEL: &str = "argocd.argoproj.io/secret-type";

/// How many selector locations a proposal keeps.
const ASKED_BY_KEPT: usize = 3;

/// The clusters that would make every selector that matches nothing match: one per value of
/// an environment label they ask for (`environment: prod` → cluster `prod`), each with every
/// other label they ask for (`enable_cert_manager: "true"`), unless some selector asks for
/// that label's absence.
fn cluster_proposals(selectors: &[SelectorUse], clusters: &[Cluster]) -> Vec<ClusterProposal> {
    let unmatched: Vec<&SelectorUse> = selectors.iter().filter(|s| !s.matched).collect();
    if unmatched.is_empty() {
        return Vec::new();
    }
    // The environments asked for, in the order written (`environment: prod` → cluster `prod`).
    let mut environments: Vec<(String, String)> = Vec::new();
    for s in &unmatched {
        for (key, value) in environments_of(s) {
            if !environments.contains(&(key.clone(), value.clone())) {
                environments.push((key, value));
            }
        }
    }
    let proposal = |environment: Option<(String, String)>| {
        // The selectors this cluster is for: those of its environment, and those that name
        // none.
        let relevant: Vec<&&SelectorUse> = unmatched
            .iter()
            .filter(|s| {
                let own = environments_of(s);
                own.is_empty()
                    || environment
                        .as_ref()
                        .is_some_and(|(k, v)| own.iter().any(|(ok, ov)| ok == k && ov == v))
            })
            .collect();
        let mut labels: BTreeMap<String, String> = BTreeMap::new();
        let mut absent: Vec<String> = Vec::new();
        let mut annotations: Vec<String> = Vec::new();
        let mut asked_by: Vec<Location> = Vec::new();
        for s in &relevant {
            if !asked_by.contains(&s.location) {
                asked_by.push(s.location.clone());
            }
            for a in &s.reads_annotations {
                if !annotations.contains(a) {
                    annotations.push(a.clone());
                }
            }
            for (key, wanted) in s.selector.wanted() {
                if key == SECRET_TYPE_LABEL || ENVIRONMENT_LABELS.contains(&key.as_str()) {
                    continue;
                }
                match wanted {
                    Wanted::Absent => absent.push(key),
                    Wanted::OneOf(values) => {
                        if let Some(v) = values.into_iter().next() {
                            labels.entry(key).or_insert(v);
                        }
                    }
                    Wanted::Present => {
                        labels.entry(key).or_insert_with(|| "true".to_owned());
                    }
                }
            }
        }
        labels.retain(|k, _| !absent.contains(k));
        let name = environment.as_ref().map(|(_, v)| v.clone());
        labels.extend(environment);
        annotations.sort();
        let selectors = asked_by.len();
        asked_by.truncate(ASKED_BY_KEPT);
        let known = name
            .as_deref()
            .is_some_and(|n| clusters.iter().any(|c| c.name == n));
        ClusterProposal {
            name,
            labels,
            annotations,
            asked_by,
            selectors,
            known,
        }
    };
    if environments.is_empty() {
        return vec![proposal(None)];
    }
    environments
        .into_iter()
        .map(|e| proposal(Some(e)))
        .collect()
}

/// The environment labels a selector asks for, each value it accepts.
fn environments_of(s: &SelectorUse) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (key, wanted) in s.selector.wanted() {
        if let Wanted::OneOf(values) = wanted {
            if ENVIRONMENT_LABELS.contains(&key.as_str()) {
                out.extend(values.into_iter().map(|v| (key.clone(), v)));
            }
        }
    }
    out
}

/// The entries that would place the largest unplaced folders, when fewer than half of the
/// objects are placed.
fn entries(
    index: &RepoIndex<'_>,
    coverage: &Coverage,
    clusters: &[Cluster],
    vocabulary: &Vocabulary,
) -> Vec<EntryProposal> {
    if coverage.objects == 0 || coverage.mostly_placed() {
        return Vec::new();
    }
    let named: Vec<&Cluster> = clusters
        .iter()
        .filter(|c| c.name != IN_CLUSTER && c.name != UNNAMED && !c.name.is_empty())
        .collect();
    let mut out: Vec<EntryProposal> = Vec::new();
    // The largest folders only: each one looked at reads the file list once.
    for folder in coverage.unplaced_folders.iter().take(FOLDERS_EXAMINED) {
        if out.len() >= ENTRIES_PROPOSED {
            break;
        }
        let hosts = host_folders(index, &folder.folder);
        if !hosts.is_empty() {
            for (dir, host) in hosts {
                if out.iter().any(|e| e.target == dir) {
                    continue;
                }
                let objects = manifests_under(index, &dir);
                out.push(EntryProposal {
                    kind: EntryKind::EntryPoint,
                    target: dir,
                    cluster: host,
                    objects,
                    reason: EntryReason::HostFolder,
                });
            }
            continue;
        }
        // A folder a family owns (Fleet, helmfile, a chart) is that family's to place: a
        // guess at its cluster would hide that envfence does not follow it.
        if folder.family.is_some() {
            continue;
        }
        let glob = glob_of(&folder.folder);
        // A folder that is an environment word itself (`prod`, `pre-prod`), not one that
        // only holds one (`web-e2e` is an application).
        let word = folder.folder.split('/').find(|s| {
            vocabulary
                .classify(s)
                .is_some_and(|m| m.token.eq_ignore_ascii_case(s))
        });
        let (cluster, reason) = match (word, named.as_slice()) {
            (Some(word), _) => (
                word.to_owned(),
                EntryReason::EnvironmentWord {
                    word: word.to_owned(),
                },
            ),
            (None, [only]) => (only.name.clone(), EntryReason::OnlyCluster),
            _ => continue,
        };
        out.push(EntryProposal {
            kind: EntryKind::Path,
            target: glob,
            cluster,
            objects: folder.objects,
            reason,
        });
    }
    out.sort_by(|a, b| b.objects.cmp(&a.objects).then(a.target.cmp(&b.target)));
    out.truncate(ENTRIES_PROPOSED);
    out
}

/// The `paths` glob for a coverage folder: one cut to [`FOLDER_DEPTH`] segments stands for
/// everything below it, a shallower one for the files in it.
pub fn glob_of(folder: &str) -> String {
    if folder.is_empty() {
        "*".to_owned()
    } else if folder.split('/').count() >= FOLDER_DEPTH {
        format!("{folder}/**")
    } else {
        format!("{folder}/*")
    }
}

/// The `namespaces/<host>/` folders (with a folder per namespace below) in or below `folder`,
/// each with its host.
fn host_folders(index: &RepoIndex<'_>, folder: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for f in index.files {
        let inside = folder.is_empty()
            || f.path
                .strip_prefix(folder)
                .is_some_and(|rest| rest.starts_with('/'));
        if !inside || !f.documents.iter().any(|d| d.is_manifest()) {
            continue;
        }
        let segments: Vec<&str> = f.path.split('/').collect();
        let Some(i) = segments
            .iter()
            .position(|s| *s == "namespaces")
            .filter(|i| i + 3 < segments.len() && looks_like_host(segments[i + 1]))
        else {
            continue;
        };
        let dir = segments[..i + 2].join("/");
        if !out.iter().any(|(d, _)| *d == dir) {
            out.push((dir, segments[i + 1].to_ascii_lowercase()));
        }
    }
    out
}

/// A DNS name of two or more labels whose last is not a number (`live.example.org`, not
/// `v1.2`).
fn looks_like_host(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|l| l.bytes().any(|b| b.is_ascii_alphabetic()))
}

/// The Kubernetes objects in files below `dir`.
fn manifests_under(index: &RepoIndex<'_>, dir: &str) -> usize {
    let prefix = format!("{dir}/");
    index
        .files
        .iter()
        .filter(|f| f.path.starts_with(&prefix))
        .map(|f| f.documents.iter().filter(|d| d.is_manifest()).count())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_dns_names_not_versions() {
        assert!(looks_like_host("live.cloud-platform.example.org"));
        assert!(looks_like_host("live.example.org"));
        assert!(!looks_like_host("v1.2"));
        assert!(!looks_like_host("gitops-1.10"));
        assert!(!looks_like_host("prod"));
        assert!(!looks_like_host("a..b"));
    }

    #[test]
    fn globs_follow_the_coverage_depth() {
        assert_eq!(
            glob_of("namespaces/live.example.org"),
            "namespaces/live.example.org/**"
        );
        assert_eq!(glob_of("legacy"), "legacy/*");
        assert_eq!(glob_of(""), "*");
    }
}
