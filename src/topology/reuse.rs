//! When the base of a diff-aware scan has the head's topology, so that it need not be built
//! twice.
//!
//! Most pull requests change what objects say (a ConfigMap's data, an environment variable, a
//! replica count), not where they land. The topology reads little of an object that is no
//! deployer, kustomization or chart file: its path, its place in the file (document, list
//! item, first line), `apiVersion`, `kind`, name, namespace, `metadata.labels`, and its
//! `image:` values with their lines (for its class and purpose). It reads more of a few
//! kinds and files: Secrets (Argo CD cluster secrets, also wrapped), the ConfigMaps and
//! Secrets a HelmRelease's `valuesFrom` names, kustomize patches, and whatever file an
//! ApplicationSet's git `files` generator matches.
//!
//! So the base shares the head's topology only when both list the same files and skip the
//! same ones, and every file whose content differs holds objects of [`PLAIN_KINDS`] alone,
//! the same in every part listed above, and is no kustomization's patch; a ConfigMap may
//! differ only where no HelmRelease exists, and no file may differ where an ApplicationSet has
//! a git `files` generator. Rendered charts are the caller's to rule out (charts read files
//! that are not YAML). Anything else builds the base's own topology, as before. kustomize's
//! edits (JSON patches, replacements, labels, vars) copy the objects they change into the
//! topology, with the head's content: such a topology is shared only when no copy was made
//! from a file that differs and no kustomization copies values between objects
//! (`replacements`, `vars`), whose sources may be anywhere ([`edits_read_alike`]).

use std::sync::Arc;

use super::index;
use super::kustomize::effective_images;
use crate::documents::{Document, FileKind, SourceFile};
use crate::walk::Skipped;

/// Kinds the topology reads only as described above. Secrets are not among them (cluster
/// secrets), nor Namespaces, deployers or anything a family of deployers reads by kind.
pub const PLAIN_KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "Pod",
    "Service",
    "Ingress",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "NetworkPolicy",
    "PersistentVolumeClaim",
    "ConfigMap",
];

/// One revision's parsed files (without Helm output) and the files it passed over.
#[derive(Clone, Copy)]
pub struct Revision<'a> {
    pub files: &'a [SourceFile],
    pub skipped: &'a [Skipped],
}

/// Whether `base` builds exactly the topology `head` builds (see the module's comment).
pub fn base_shares_topology(head: Revision<'_>, base: Revision<'_>) -> bool {
    if head.files.len() != base.files.len() || head.skipped != base.skipped {
        return false;
    }
    let mut changed = Vec::new();
    for (h, b) in head.files.iter().zip(base.files) {
        if h.path != b.path {
            return false;
        }
        // An unchanged blob is parsed once, for both sides.
        if Arc::ptr_eq(&h.documents, &b.documents) {
            continue;
        }
        if !read_alike(h, b) {
            return false;
        }
        changed.push(h);
    }
    if changed.is_empty() {
        return true;
    }
    // Only a patch entry with a changed file's name can name it: the others are not joined.
    let names: Vec<&str> = changed.iter().map(|f| index::basename(&f.path)).collect();
    let mut a_patch_changed = false;
    index::for_each_patch(head.files, |dir, path| {
        if names.contains(&index::basename(path.trim_end_matches('/')))
            && index::join(dir, path, false).is_some_and(|p| changed.iter().any(|f| *f.path == p))
        {
            a_patch_changed = true;
        }
    });
    if a_patch_changed {
        return false;
    }
    let is_kind = |d: &Document, kind: &str| d.id.kind.as_deref() == Some(kind);
    let documents = || head.files.iter().flat_map(|f| f.documents.iter());
    let config_map_changed = changed
        .iter()
        .flat_map(|f| f.documents.iter())
        .any(|d| is_kind(d, "ConfigMap"));
    if config_map_changed && documents().any(|d| is_kind(d, "HelmRelease")) {
        return false;
    }
    let files_generator = |d: &Document| {
        is_kind(d, "ApplicationSet")
            && d.root
                .find_entry(|e| e.key.as_str() == Some("files"))
                .is_some()
    };
    !documents().any(files_generator)
}

/// Two versions of a file that the topology reads alike.
fn read_alike(head: &SourceFile, base: &SourceFile) -> bool {
    head.kind == FileKind::Manifest
        && base.kind == FileKind::Manifest
        && head.problem.is_none()
        && base.problem.is_none()
        && head.documents.len() == base.documents.len()
        && head
            .documents
            .iter()
            .zip(base.documents.iter())
            .all(|(h, b)| objects_read_alike(h, b))
}

fn objects_read_alike(head: &Document, base: &Document) -> bool {
    head.id
        .kind
        .as_deref()
        .is_some_and(|kind| PLAIN_KINDS.contains(&kind))
        && head.id == base.id
        && head.index == base.index
        && head.list_item == base.list_item
        && head.file_kind == base.file_kind
        && head.first_line == base.first_line
        && head.labels == base.labels
        && effective_images(head, &[]) == effective_images(base, &[])
}

/// Whether the copies kustomize's edits made in `topology` (built from `head`) are what the
/// base would make: none was made from a file whose content differs between the sides, and no
/// kustomization copies values from one object into another (`replacements`, `vars`: their
/// sources can be any object). Renames, labels and patches read only the copied object and
/// the kustomization's own files, which [`base_shares_topology`] already compared.
pub fn edits_read_alike(
    topology: &super::Topology,
    head: Revision<'_>,
    base: Revision<'_>,
) -> bool {
    if topology.changed.is_empty() {
        return true;
    }
    let differs = |i: usize| match (head.files.get(i), base.files.get(i)) {
        (Some(h), Some(b)) => !Arc::ptr_eq(&h.documents, &b.documents),
        // A rendered file, or one only one side has: not known to be alike.
        _ => true,
    };
    if topology.changed_origins.iter().any(|r| differs(r.file())) {
        return false;
    }
    let copies_values = |d: &Document| {
        ["replacements", "vars"].iter().any(|key| {
            d.root
                .get(key)
                .and_then(|n| n.as_seq())
                .is_some_and(|s| !s.is_empty())
        })
    };
    !head
        .files
        .iter()
        .filter(|f| f.kind == FileKind::Kustomization)
        .flat_map(|f| f.documents.iter())
        .any(copies_values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::{self, Loaded};

    fn file(path: &str, text: &str) -> SourceFile {
        let hint = FileKind::from_path(path, false, false);
        match documents::load(&Arc::from(path), text.as_bytes(), hint) {
            Loaded::File(f) => f,
            Loaded::Skipped(reason) => panic!("{path} skipped: {reason:?}"),
        }
    }

    const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    app: web\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n        - name: web\n          image: web:1.0\n";
    const CONFIG: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  URL: https://dev.example.com\n";
    const KUSTOMIZATION: &str = "resources:\n  - deploy.yaml\n  - config.yaml\n";

    /// The head's files, and the base's: the same parse for every file but `changed`, which
    /// the base has as `text`.
    fn sides(changed: &str, text: &str) -> (Vec<SourceFile>, Vec<SourceFile>) {
        let head = vec![
            file("app/config.yaml", CONFIG),
            file("app/deploy.yaml", DEPLOY),
            file("app/kustomization.yaml", KUSTOMIZATION),
        ];
        let base = head
            .iter()
            .map(|f| {
                if &*f.path == changed {
                    file(changed, text)
                } else {
                    f.clone()
                }
            })
            .collect();
        (head, base)
    }

    fn shares(head: &[SourceFile], base: &[SourceFile]) -> bool {
        base_shares_topology(
            Revision {
                files: head,
                skipped: &[],
            },
            Revision {
                files: base,
                skipped: &[],
            },
        )
    }

    #[test]
    fn what_objects_say_beyond_their_identity_is_not_the_topologys() {
        let (head, base) = sides(
            "app/deploy.yaml",
            &DEPLOY.replace("replicas: 2", "replicas: 5"),
        );
        assert!(shares(&head, &base));
        let (head, base) = sides(
            "app/config.yaml",
            &format!("{CONFIG}  EXTRA: one more line\n"),
        );
        assert!(shares(&head, &base));
        let (head, base) = sides("app/config.yaml", CONFIG);
        assert!(shares(&head, &base), "a re-parse of the same text");
    }

    #[test]
    fn what_places_or_classes_an_object_is() {
        for (changed, text) in [
            // Identity, labels, images, place in the file.
            (
                "app/deploy.yaml",
                DEPLOY.replace("name: web\n  labels", "name: api\n  labels"),
            ),
            (
                "app/deploy.yaml",
                DEPLOY.replace("app: web", "app: web\n    env: dev"),
            ),
            ("app/deploy.yaml", DEPLOY.replace("web:1.0", "web:2.0")),
            ("app/deploy.yaml", format!("# moved down\n{DEPLOY}")),
            ("app/deploy.yaml", format!("{DEPLOY}---\n{CONFIG}")),
            // A kind the topology reads more of, and a kustomization.
            (
                "app/config.yaml",
                CONFIG.replace("kind: ConfigMap", "kind: Secret"),
            ),
            (
                "app/kustomization.yaml",
                format!("{KUSTOMIZATION}  - extra.yaml\n"),
            ),
            // Not parsed alike.
            ("app/deploy.yaml", "kind: [".to_owned()),
        ] {
            let (head, base) = sides(changed, &text);
            assert!(!shares(&head, &base), "{changed}: {text}");
        }
    }

    #[test]
    fn files_that_other_objects_read_whole() {
        // A patch: kustomize applies its content to another object.
        let (mut head, mut base) = sides(
            "app/deploy.yaml",
            &DEPLOY.replace("replicas: 2", "replicas: 5"),
        );
        let patched = file(
            "app/kustomization.yaml",
            "resources:\n  - config.yaml\npatches:\n  - path: deploy.yaml\n",
        );
        head[2] = patched.clone();
        base[2] = patched;
        assert!(!shares(&head, &base));

        // A ConfigMap where a HelmRelease could take values from it.
        let release = file(
            "app/release.yaml",
            "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: web\n",
        );
        let (mut head, mut base) = sides(
            "app/config.yaml",
            &format!("{CONFIG}  EXTRA: one more line\n"),
        );
        head.push(release.clone());
        base.push(release.clone());
        assert!(!shares(&head, &base));
        // A Deployment is no HelmRelease's values.
        let (mut head, mut base) = sides(
            "app/deploy.yaml",
            &DEPLOY.replace("replicas: 2", "replicas: 5"),
        );
        head.push(release.clone());
        base.push(release);
        assert!(shares(&head, &base));

        // An ApplicationSet whose git files generator may read any file.
        let appset = file(
            "apps.yaml",
            "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: apps\nspec:\n  generators:\n    - git:\n        repoURL: https://example.com/repo\n        files:\n          - path: app/*.yaml\n",
        );
        let (mut head, mut base) = sides(
            "app/deploy.yaml",
            &DEPLOY.replace("replicas: 2", "replicas: 5"),
        );
        head.insert(0, appset.clone());
        base.insert(0, appset);
        assert!(!shares(&head, &base));
    }

    #[test]
    fn the_same_files_and_the_same_skipped() {
        let (head, base) = sides("app/deploy.yaml", DEPLOY);
        assert!(!shares(&head, &base[..2]), "a file fewer");
        let renamed: Vec<SourceFile> = base
            .iter()
            .map(|f| SourceFile {
                path: Arc::from(f.path.replace("app/", "web/")),
                ..f.clone()
            })
            .collect();
        assert!(!shares(&head, &renamed));
        let skipped = [Skipped {
            rel_path: Arc::from("app/big.yaml"),
            reason: crate::documents::SkipReason::Binary,
        }];
        assert!(!base_shares_topology(
            Revision {
                files: &head,
                skipped: &[],
            },
            Revision {
                files: &base,
                skipped: &skipped,
            },
        ));
    }
}
