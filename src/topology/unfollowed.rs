//! Deployer families envfence does not follow yet: Config Sync (`RootSync`, `RepoSync`,
//! `ClusterSelector`, hierarchical repositories), Kargo (`Stage`, `Warehouse`), Fleet
//! (`GitRepo`) and deployers of a Helm chart kept in this repository (a Flux HelmRelease of a
//! GitRepository chart, a kustomize `helmCharts` entry no delivery reached). Each one is an
//! `unresolved-placement` note at its own line (DESIGN §3: never silence), and the folders
//! these families own are named, so that the coverage report can say why objects there were
//! placed on no cluster.

use std::collections::{BTreeSet, HashSet};

use super::index::{self, RepoIndex};
use super::Unresolved;
use crate::documents::{Document, Node};
use crate::location::Location;

/// A folder a deployer family owns: unplaced objects under it are that family's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FamilyRoot {
    /// Repository-relative folder ("" for the root).
    pub dir: String,
    /// "Config Sync", "Fleet", "Helm chart", "helmfile".
    pub family: &'static str,
}

#[derive(Debug, Default)]
pub struct Unfollowed {
    pub notes: Vec<Unresolved>,
    pub roots: Vec<FamilyRoot>,
}

fn api_in(d: &Document, group: &str) -> bool {
    d.id.api_version
        .as_deref()
        .is_some_and(|a| a.starts_with(&format!("{group}/")))
}

fn name_of(d: &Document) -> &str {
    d.id.name.as_deref().unwrap_or("?")
}

fn text<'n>(node: Option<&'n Node>, path: &[&str]) -> Option<&'n str> {
    let mut node = node?;
    for key in path {
        node = node.get(key)?;
    }
    node.as_str()
}

/// The line of the field at `path` under `spec`, else the document's first line.
fn line_of(d: &Document, path: &str) -> u32 {
    d.line_of(path).unwrap_or(d.first_line)
}

/// Notes for every deployer of a family envfence does not follow, skipping lines that
/// `existing` notes already cover, and the folders those families own. `expanded` tells
/// which folders a delivery expanded (their kustomizations' charts were followed there), and
/// `installed` the chart folders some deployer installed (rendered, or noted there).
pub fn find(
    index: &RepoIndex<'_>,
    existing: &[Unresolved],
    expanded: &dyn Fn(&str) -> bool,
    installed: &BTreeSet<String>,
) -> Unfollowed {
    let covered: HashSet<(&str, u32)> = existing
        .iter()
        .map(|u| (&*u.location.file, u.location.line))
        .collect();
    let mut out = Unfollowed::default();
    let mut roots: BTreeSet<FamilyRoot> = BTreeSet::new();
    let mut note = |d: &Document, line: u32, reason: String| {
        if !covered.contains(&(&*d.file, line)) {
            out.notes.push(Unresolved {
                location: Location::new(&d.file, line),
                reason,
            });
        }
    };
    for (_, d) in index.all_docs() {
        let Some(kind) = d.id.kind.as_deref() else {
            continue;
        };
        // The kinds below are rare: most documents end here, without a look at their spec.
        const FAMILY_KINDS: [&str; 8] = [
            "RootSync",
            "RepoSync",
            "ClusterSelector",
            "Repo",
            "Stage",
            "Warehouse",
            "GitRepo",
            "HelmRelease",
        ];
        if !FAMILY_KINDS.contains(&kind) {
            continue;
        }
        let spec = d.root.get("spec");
        match kind {
            "RootSync" | "RepoSync" if api_in(d, "configsync.gke.io") => {
                let source = config_sync_source(spec);
                if let Some(dir) = text(spec, &["git", "dir"])
                    .and_then(|dir| index::join("", dir, true))
                    .filter(|dir| index.is_dir(dir))
                {
                    roots.insert(FamilyRoot {
                        dir,
                        family: "Config Sync",
                    });
                }
                note(
                    d,
                    d.first_line,
                    format!(
                        "Config Sync {kind} {} syncs {source}; envfence does not follow Config Sync yet, so what it deploys and where is not known",
                        name_of(d)
                    ),
                );
            }
            "ClusterSelector" if api_in(d, "configmanagement.gke.io") => note(
                d,
                d.first_line,
                format!(
                    "Config Sync ClusterSelector {} picks clusters by label; envfence does not evaluate Config Sync selectors yet, so the objects that name it are placed on no cluster",
                    name_of(d)
                ),
            ),
            "Repo" if api_in(d, "configmanagement.gke.io") => {
                // The hierarchical layout: <root>/system/repo.yaml beside namespaces/ or cluster/.
                let system = index::parent(&d.file);
                if index::basename(system) != "system" {
                    continue;
                }
                let root = index::parent(system);
                let under = |sub: &str| {
                    index.is_dir(&if root.is_empty() {
                        sub.to_owned()
                    } else {
                        format!("{root}/{sub}")
                    })
                };
                if !(under("namespaces") || under("cluster")) {
                    continue;
                }
                roots.insert(FamilyRoot {
                    dir: root.to_owned(),
                    family: "Config Sync",
                });
                let shown = if root.is_empty() {
                    String::new()
                } else {
                    format!("{root}/")
                };
                note(
                    d,
                    d.first_line,
                    format!(
                        "Config Sync hierarchical repository ({shown}namespaces/, {shown}cluster/, {shown}system/): envfence does not follow Config Sync yet, so its objects are placed on no cluster"
                    ),
                );
            }
            "Stage" | "Warehouse" if api_in(d, "kargo.akuity.io") => note(
                d,
                d.first_line,
                format!(
                    "Kargo {kind} {}: envfence does not follow Kargo promotions yet, so what it deploys and where is not known",
                    name_of(d)
                ),
            ),
            "GitRepo" if api_in(d, "fleet.cattle.io") => {
                let repo = text(spec, &["repo"]).unwrap_or("?");
                for path in spec
                    .and_then(|s| s.get("paths"))
                    .and_then(Node::as_seq)
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(Node::as_str)
                    .filter_map(|p| index::join("", p, true))
                    .filter(|p| index.is_dir(p))
                {
                    roots.insert(FamilyRoot {
                        dir: path,
                        family: "Fleet",
                    });
                }
                note(
                    d,
                    d.first_line,
                    format!(
                        "Fleet GitRepo {} deploys {repo}; envfence does not read Fleet targets yet, so where it deploys is not known",
                        name_of(d)
                    ),
                );
            }
            "HelmRelease" if api_in(d, "helm.toolkit.fluxcd.io") => {
                let chart = spec.and_then(|s| s.get("chart")).and_then(|c| c.get("spec"));
                if text(chart, &["sourceRef", "kind"]) != Some("GitRepository") {
                    continue;
                }
                let path = text(chart, &["chart"]).unwrap_or("?");
                if index::join("", path, true).is_some_and(|p| installed.contains(&p)) {
                    continue;
                }
                note(
                    d,
                    line_of(d, "spec.chart.spec.chart"),
                    format!(
                        "HelmRelease {} installs the Helm chart at {path} of GitRepository {}, not rendered here (no Flux Kustomization envfence follows applies it, or the source is not this repository), so what it deploys is not known",
                        name_of(d),
                        text(chart, &["sourceRef", "name"]).unwrap_or("?")
                    ),
                );
            }
            _ => {}
        }
    }
    // kustomize `helmCharts` entries of kustomizations no delivery expanded (expanded ones
    // were rendered there, or have their note).
    for f in index.files.iter().filter(|f| {
        f.kind == crate::documents::FileKind::Kustomization && !expanded(index::parent(&f.path))
    }) {
        for d in f.documents.iter() {
            for field in ["helmCharts", "helmChartInflationGenerator"] {
                for chart in d.root.get(field).and_then(Node::as_seq).unwrap_or(&[]) {
                    let name = ["name", "chartName"]
                        .into_iter()
                        .find_map(|k| chart.get(k).and_then(Node::as_str))
                        .unwrap_or("?");
                    note(
                        d,
                        chart.span.start.line,
                        format!(
                            "{field} entry {name}: no deployer envfence follows builds this kustomization, so its chart is not rendered and where it deploys is not known"
                        ),
                    );
                }
            }
        }
    }
    // Folders owned by families whose notes are made elsewhere (fleet.yaml bundles, helmfiles)
    // or that are not deployers at all (a chart's own folder).
    for f in index.files {
        let name = index::basename(&f.path);
        let family = match name {
            "fleet.yaml" => "Fleet",
            "Chart.yaml" => "Helm chart",
            _ if name.starts_with("helmfile") => "helmfile",
            _ => continue,
        };
        roots.insert(FamilyRoot {
            dir: index::parent(&f.path).to_owned(),
            family,
        });
    }
    out.roots = roots.into_iter().collect();
    out
}

/// What a RootSync or RepoSync reads, for its note.
fn config_sync_source(spec: Option<&Node>) -> String {
    match text(spec, &["sourceType"]).unwrap_or("git") {
        "oci" => format!(
            "the OCI image {}",
            text(spec, &["oci", "image"]).unwrap_or("?")
        ),
        "helm" => format!(
            "the Helm chart {} of {}",
            text(spec, &["helm", "chart"]).unwrap_or("?"),
            text(spec, &["helm", "repo"]).unwrap_or("?")
        ),
        _ => format!(
            "{} (dir {})",
            text(spec, &["git", "repo"]).unwrap_or("?"),
            text(spec, &["git", "dir"]).unwrap_or("/")
        ),
    }
}

/// The family that owns `dir`: the deepest family root that holds it, else the family of the
/// roots inside it when they all agree.
pub fn family_of(roots: &[FamilyRoot], dir: &str) -> Option<&'static str> {
    let holds = |outer: &str, inner: &str| {
        outer.is_empty() || inner == outer || inner.starts_with(&format!("{outer}/"))
    };
    if let Some(r) = roots
        .iter()
        .filter(|r| holds(&r.dir, dir))
        .max_by_key(|r| r.dir.len())
    {
        return Some(r.family);
    }
    let mut inside = roots
        .iter()
        .filter(|r| holds(dir, &r.dir))
        .map(|r| r.family);
    let first = inside.next()?;
    inside.all(|f| f == first).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deepest_root_names_the_family() {
        let roots = vec![
            FamilyRoot {
                dir: String::new(),
                family: "Config Sync",
            },
            FamilyRoot {
                dir: "charts/web".into(),
                family: "Helm chart",
            },
        ];
        assert_eq!(family_of(&roots, "namespaces/a"), Some("Config Sync"));
        assert_eq!(family_of(&roots, "charts/web/crds"), Some("Helm chart"));
        let roots = &roots[1..];
        assert_eq!(family_of(roots, "charts"), Some("Helm chart"));
        assert_eq!(family_of(roots, "apps"), None);
    }
}
