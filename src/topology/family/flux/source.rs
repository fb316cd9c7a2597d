//! Flux sources: which GitRepository is this repository (the `flux-system` one, or one with
//! the same URL and ref), how an `ExternalArtifact` maps back to this repository through the
//! ArtifactGenerator copy rules that produce it, and the folder a Kustomization's source and
//! path name.

use crate::documents::{Document, Node};
use crate::evidence::{AssumedThisRepositoryHop, Evidence, Hop};
use crate::location::Location;
use crate::topology::clusters::Inventory;
use crate::topology::index::{self, RepoIndex};
use crate::topology::Unresolved;

pub(super) fn git_repositories<'a>(
    index: &'a RepoIndex<'a>,
) -> impl Iterator<Item = &'a Document> + 'a {
    index.of_kind("GitRepository").map(|(_, d)| d).filter(|d| {
        d.id.kind.as_deref() == Some("GitRepository")
            && d.id
                .api_version
                .as_deref()
                .is_some_and(|v| v.starts_with("source.toolkit.fluxcd.io/"))
    })
}

pub(super) fn url_and_ref(d: &Document) -> (Option<String>, Option<String>) {
    let spec = d.root.get("spec");
    let url = spec
        .and_then(|s| s.get("url"))
        .and_then(Node::as_str)
        .map(|u| u.trim_end_matches(".git").to_owned());
    let r = spec
        .and_then(|s| s.get("ref"))
        .and_then(|r| r.as_map().and_then(|m| m.first()))
        .map(|e| {
            format!(
                "{}={}",
                e.key.as_str().unwrap_or(""),
                e.value.as_str().unwrap_or("")
            )
        });
    (url, r)
}

/// Why a GitRepository source is not (known to be) this repository.
pub(crate) enum SourceElsewhere {
    /// The repository does not define it.
    Undefined(String),
    /// It is defined, and reads another repository or another branch.
    Other(String),
}

/// Is GitRepository `name` this repository? `flux-system` is by convention (it is what
/// `flux bootstrap` creates for the repository that holds it); another one is when it has
/// the same URL and ref as `flux-system`, or a URL that is this repository's (config
/// `repository.urls`, origin, `GITHUB_REPOSITORY`).
pub(crate) fn this_repository(
    index: &RepoIndex<'_>,
    inventory: &Inventory,
    name: &str,
) -> Result<(), SourceElsewhere> {
    if name == "flux-system" {
        return Ok(());
    }
    let own = git_repositories(index)
        .find(|d| d.id.name.as_deref() == Some("flux-system"))
        .map(url_and_ref);
    let Some(target) = git_repositories(index).find(|d| d.id.name.as_deref() == Some(name)) else {
        return Err(SourceElsewhere::Undefined(format!(
            "GitRepository {name} is not defined in this repository"
        )));
    };
    let theirs = url_and_ref(target);
    match own {
        Some(own) if own == theirs => Ok(()),
        Some((url, _)) if url == theirs.0 => Err(SourceElsewhere::Other(format!(
            "GitRepository {name} reads another branch or tag ({}) of this repository",
            theirs.1.unwrap_or_default()
        ))),
        _ if matches!(
            inventory.repository.classify(theirs.0.as_deref()),
            crate::topology::repository::RepoMatch::This(_)
        ) =>
        {
            Ok(())
        }
        _ => Err(SourceElsewhere::Other(format!(
            "GitRepository {name} is another repository ({})",
            theirs.0.unwrap_or_else(|| "?".into())
        ))),
    }
}

/// A Kustomization's `sourceRef` and `path`, and where the path is written.
pub(super) struct SourceRef<'s> {
    pub(super) kind: &'s str,
    pub(super) name: &'s str,
    pub(super) path: &'s str,
    pub(super) at: Location,
}

/// Why a Kustomization's folder is not read here.
pub(super) enum NotHere {
    /// Its source is another repository: the Kustomization is an opaque placement.
    Elsewhere(String),
    /// Nothing can be placed: the note says why.
    Note(Unresolved),
}

/// The folder of this repository a Kustomization's source and path name (`None` when the
/// path leaves the repository), with the hop that assumes its source is this repository
/// when it does.
pub(super) fn source_folder(
    index: &RepoIndex<'_>,
    inventory: &Inventory,
    name: &str,
    source: &SourceRef<'_>,
) -> Result<(Option<String>, Option<Evidence>), NotHere> {
    let SourceRef {
        kind,
        name: source_name,
        path,
        ref at,
    } = *source;
    let note = |reason: String| {
        NotHere::Note(Unresolved {
            location: at.clone(),
            reason,
        })
    };
    match kind {
        "GitRepository" => match this_repository(index, inventory, source_name) {
            Ok(()) => Ok((index::join("", path, true), None)),
            // `flux bootstrap` creates the repository's own source outside the repository:
            // a source defined nowhere here is this repository when the path exists.
            Err(SourceElsewhere::Undefined(reason)) => {
                match index::join("", path, true).filter(|d| index.is_dir(d)) {
                    Some(dir) => {
                        let assumed = Evidence::new(
                            at.clone(),
                            Hop::AssumedThisRepository(Box::new(AssumedThisRepositoryHop {
                                source: source_name.into(),
                                path: path.into(),
                                git_repository: true,
                            })),
                        );
                        Ok((Some(dir), Some(assumed)))
                    }
                    None => Err(note(format!(
                        "Flux Kustomization {name}: {reason}, and {path} does not exist here"
                    ))),
                }
            }
            Err(SourceElsewhere::Other(reason)) => Err(NotHere::Elsewhere(reason)),
        },
        "ExternalArtifact" => match artifact_path(index, inventory, source_name, path) {
            Some(p) => Ok((Some(p), None)),
            None => Err(note(format!(
                "Flux Kustomization {name}: ExternalArtifact {source_name} is not produced from this repository by any ArtifactGenerator copy rule for {path}"
            ))),
        },
        // An OCI artifact or a bucket is built and stored outside the repository: the
        // Kustomization stands for what it applies.
        "OCIRepository" | "Bucket" => Err(NotHere::Elsewhere(format!(
            "{} is outside this repository",
            described_source(index, kind, source_name)
        ))),
        other => Err(note(format!(
            "Flux Kustomization {name}: source {other} {source_name} is outside this repository"
        ))),
    }
}

/// A Flux source as a reason names it: its kind and name, and where it reads from when the
/// repository defines it (`OCIRepository web at oci://ghcr.io/acme/web`).
pub(super) fn described_source(index: &RepoIndex<'_>, kind: &str, name: &str) -> String {
    let url = index
        .of_kind(kind)
        .map(|(_, d)| d)
        .filter(|d| {
            d.id.name.as_deref() == Some(name)
                && d.id
                    .api_version
                    .as_deref()
                    .is_some_and(|v| v.starts_with("source.toolkit.fluxcd.io/"))
        })
        .find_map(|d| {
            let spec = d.root.get("spec")?;
            match kind {
                "Bucket" => {
                    let bucket = spec.get("bucketName").and_then(Node::as_str)?;
                    Some(match spec.get("endpoint").and_then(Node::as_str) {
                        Some(endpoint) => format!("{endpoint}/{bucket}"),
                        None => bucket.to_owned(),
                    })
                }
                _ => spec.get("url").and_then(Node::as_str).map(str::to_owned),
            }
        });
    match url {
        Some(url) => format!("{kind} {name} at {url}"),
        None => format!("{kind} {name}"),
    }
}

/// Maps a path inside an `ExternalArtifact` back to this repository through the copy rules
/// (`from: "@monorepo/apps/base/**"`, `to: "@artifact/base/"`) of the ArtifactGenerator
/// that produces it from this repository.
pub(super) fn artifact_path(
    index: &RepoIndex<'_>,
    inventory: &Inventory,
    artifact: &str,
    path: &str,
) -> Option<String> {
    let want = index::join("", path, true)?;
    for (_, gen) in index.of_kind("ArtifactGenerator") {
        let spec = gen.root.get("spec")?;
        // Aliases of sources that are this repository.
        let local: Vec<String> = spec
            .get("sources")
            .and_then(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .filter(|s| {
                s.get("kind").and_then(Node::as_str) == Some("GitRepository")
                    && s.get("name")
                        .and_then(Node::as_str)
                        .is_some_and(|n| this_repository(index, inventory, n).is_ok())
            })
            .filter_map(|s| s.get("alias").and_then(Node::as_str).map(str::to_owned))
            .collect();
        for a in spec.get("artifacts").and_then(Node::as_seq).unwrap_or(&[]) {
            if a.get("name").and_then(Node::as_str) != Some(artifact) {
                continue;
            }
            for rule in a.get("copy").and_then(Node::as_seq).unwrap_or(&[]) {
                let from = rule.get("from").and_then(Node::as_str).unwrap_or("");
                let to = rule.get("to").and_then(Node::as_str).unwrap_or("");
                let Some((alias, from_path)) =
                    from.strip_prefix('@').and_then(|f| f.split_once('/'))
                else {
                    continue;
                };
                if !local.iter().any(|l| l == alias) {
                    continue;
                }
                let from_dir = from_path
                    .trim_end_matches("**")
                    .trim_end_matches('*')
                    .trim_end_matches('/');
                let to_dir = to.strip_prefix("@artifact").unwrap_or(to).trim_matches('/');
                let rest = if to_dir.is_empty() {
                    Some(want.as_str())
                } else if want == to_dir {
                    Some("")
                } else {
                    want.strip_prefix(&format!("{to_dir}/"))
                };
                if let Some(rest) = rest {
                    let mapped = if rest.is_empty() {
                        from_dir.to_owned()
                    } else {
                        format!("{from_dir}/{rest}")
                    };
                    if index.is_dir(&mapped) {
                        return Some(mapped);
                    }
                }
            }
        }
    }
    None
}
