//! Coverage: how many of the repository's Kubernetes objects the topology placed, and where
//! the others are. The numbers are defined once, in `docs/json-schema.md` (`summary.coverage`):
//!
//! - **objects**: the Kubernetes objects of the scanned YAML files (documents with `apiVersion`
//!   and `kind`; not kustomization files, Helm values, charts or CI files), plus the objects
//!   `helm template` rendered from the repository's local charts ([`super::helm`]).
//! - **placed**: the objects placed on at least one cluster by a deployer, a `paths` rule or a
//!   folder convention. A kustomize patch counts: it lands as part of the object it changes.
//! - **opaque**: placements whose deployer's payload was not read (an Application or
//!   HelmRelease standing for a Helm chart envfence does not render). They are counted apart
//!   and never make an object placed, so they cannot inflate the ratio.
//! - **unplaced folders**: the other objects, grouped by folder.

use std::collections::BTreeMap;

use super::family::{family_owning, FamilyRoot};
use super::index::{self, DocRef, RepoIndex};
use super::Placement;

/// How many path segments of an object's folder name its group: `apps/web/overlays/dev/x.yaml`
/// counts under `apps/web`. Deep enough to tell apps and teams apart, shallow enough that one
/// layout's hundred leaf folders read as one line.
pub const FOLDER_DEPTH: usize = 2;

/// How many unplaced folders reports list, most objects first.
pub const FOLDERS_LISTED: usize = 10;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    pub objects: usize,
    pub placed: usize,
    pub opaque: usize,
    /// Every folder with unplaced objects, most first (ties by name). Reports list the first
    /// [`FOLDERS_LISTED`].
    pub unplaced_folders: Vec<UnplacedFolder>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnplacedFolder {
    /// Repository-relative folder, [`FOLDER_DEPTH`] segments at most ("" for the root).
    pub folder: String,
    pub objects: usize,
    /// The deployer family that owns the folder, though none of its deployers reached it
    /// ("Config Sync", "Fleet", "Helm chart", "helmfile"), when one does.
    pub family: Option<&'static str>,
}

impl Coverage {
    pub fn unplaced(&self) -> usize {
        self.objects.saturating_sub(self.placed)
    }

    /// Whether at least half of the objects were placed: only then may a report without
    /// findings call the repository clean.
    pub fn mostly_placed(&self) -> bool {
        self.objects > 0 && self.placed * 2 >= self.objects
    }
}

impl UnplacedFolder {
    /// `apps/web/`, or `./` for the root.
    pub fn shown(&self) -> String {
        if self.folder.is_empty() {
            "./".to_owned()
        } else {
            format!("{}/", self.folder)
        }
    }
}

impl Placement {
    /// A placement whose deployer's payload was not read: it says where something lands,
    /// not what. A chart that is not rendered stands for its objects the same way.
    pub fn is_opaque(&self) -> bool {
        self.opaque || self.renders_chart
    }
}

/// The group an object's file counts under: its folder cut to [`FOLDER_DEPTH`] segments.
pub fn folder_group(file: &str) -> &str {
    let dir = index::parent(file);
    match dir.match_indices('/').nth(FOLDER_DEPTH - 1) {
        Some((i, _)) => &dir[..i],
        None => dir,
    }
}

/// The coverage of `placements`; `stood_for` are deployer documents placed as objects whose
/// placement became their own opaque one (a HelmRelease of a remote chart in a cluster
/// tree): they count as placed.
pub fn compute(
    index: &RepoIndex<'_>,
    placements: &[Placement],
    stood_for: &[DocRef],
    roots: &[FamilyRoot],
) -> Coverage {
    // One flag per document: at 5,000 applications a set of references hashed 140,000 of them.
    let (starts, documents) = index.document_starts();
    let mut placed_docs = vec![false; documents];
    for r in placements
        .iter()
        .filter(|p| !p.is_opaque())
        .filter_map(|p| p.object.doc)
        .chain(stood_for.iter().copied())
    {
        // A document kustomize edits changed counts as the one written.
        let r = index.original(r);
        placed_docs[starts[r.file()] + r.doc()] = true;
    }
    let mut coverage = Coverage {
        opaque: placements.iter().filter(|p| p.is_opaque()).count(),
        ..Coverage::default()
    };
    let mut unplaced: BTreeMap<&str, usize> = BTreeMap::new();
    // Objects a renderer produced count like the repository's own (docs/json-schema.md).
    for (r, d) in index
        .all_docs_with_rendered()
        // kustomize reads a local-config object but never outputs it: nothing deploys it.
        .filter(|(r, d)| d.is_manifest() && !index.is_local_config(*r))
    {
        coverage.objects += 1;
        if placed_docs[starts[r.file()] + r.doc()] {
            coverage.placed += 1;
        } else {
            *unplaced.entry(folder_group(&d.file)).or_default() += 1;
        }
    }
    let mut folders: Vec<UnplacedFolder> = unplaced
        .into_iter()
        .map(|(folder, objects)| UnplacedFolder {
            folder: folder.to_owned(),
            objects,
            family: family_owning(roots, folder),
        })
        .collect();
    folders.sort_by(|a, b| b.objects.cmp(&a.objects).then(a.folder.cmp(&b.folder)));
    coverage.unplaced_folders = folders;
    coverage
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_group_at_two_segments() {
        assert_eq!(folder_group("apps/web/overlays/dev/x.yaml"), "apps/web");
        assert_eq!(folder_group("apps/web/x.yaml"), "apps/web");
        assert_eq!(folder_group("namespaces/x.yaml"), "namespaces");
        assert_eq!(folder_group("x.yaml"), "");
    }

    #[test]
    fn half_placed_is_mostly_placed_and_nothing_is_not() {
        let c = |objects, placed| Coverage {
            objects,
            placed,
            ..Coverage::default()
        };
        assert!(c(10, 5).mostly_placed());
        assert!(!c(10, 4).mostly_placed());
        assert!(!c(0, 0).mostly_placed());
    }
}
