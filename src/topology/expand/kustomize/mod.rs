//! Resolution of kustomize graphs without running kustomize: which objects a directory
//! produces, through `resources`/`bases`, `components`, patches and generators, with the
//! `namespace`, `namePrefix` and `nameSuffix` each level applies, what kustomize's edits
//! (JSON patches, targeted and inline strategic-merge patches, labels, replacements, vars)
//! make of the objects, and the chain of kustomization lines that brought each object in.
//! Directories without a kustomization are expanded as Argo CD (one level, or recursive) and
//! Flux (recursive) do.
//!
//! Each kustomization is resolved once and shared, not copied, by everything that includes it
//! (a base shared by fifty overlays is read once; a fan-out of bases that include each other
//! stays linear), and one expansion yields at most `limits.kustomize-objects` objects.
//!
//! The parts: this file holds the public types and the per-object helpers (images, identity,
//! scope); `resolve` reads kustomizations into that shared tree, `flatten` walks the tree
//! into the items one expansion places, and `edit` works out kustomize's edits before the
//! build (with `json_patch`, `merge`, `select`, `fields` and `vars`).

mod edit;
mod fields;
mod flatten;
pub(crate) mod json_patch;
mod merge;
mod resolve;
mod select;
mod vars;

pub use edit::{prepare_edits, EditTable, Prepared};
pub use resolve::{Expander, ExpanderCaches, InflatedChart};

use compact_str::CompactString;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::budget::BudgetCut;
use crate::documents::{Document, Node, Value};
use crate::evidence::Evidence;
use crate::location::Location;
use crate::topology::index::{self, DocRef, RepoIndex};
use std::sync::Arc;

/// What an item is: a document of the repository, or an object a generator creates (boxed:
/// generators are few, and every leaf, item and placement key holds a source).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ItemSource {
    Doc(DocRef),
    Generated(Box<Generator>),
}

/// An object a kustomize generator creates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Generator {
    /// The kustomization file that declares the generator, and the line of the entry.
    pub file: usize,
    pub line: u32,
    pub kind: &'static str,
    pub name: String,
}

impl ItemSource {
    /// The document, for an object of the repository (or rendered).
    pub fn doc(&self) -> Option<DocRef> {
        match self {
            ItemSource::Doc(r) => Some(*r),
            ItemSource::Generated(_) => None,
        }
    }
}

/// One object a directory produces, with the transforms applied on the way.
#[derive(Debug, Clone)]
pub struct Item {
    pub source: ItemSource,
    /// Hops from the expanded directory down to the object's file.
    pub chain: Vec<Evidence>,
    pub namespace: Option<CompactString>,
    pub prefix: String,
    pub suffix: String,
    /// A patch (strategic merge) or merging generator: it changes an object, it is not one.
    pub patch: bool,
    /// `images:` overrides on the way, innermost first (outer kustomizations apply last).
    /// Shared by the objects under the same kustomizations: each would otherwise copy them.
    pub images: Option<Arc<[ImageOverride]>>,
    /// The object's name as a kustomize edit left it (the affixes of the levels inside that
    /// edit in it): `prefix` and `suffix` are then those of the levels outside it. `None`:
    /// the document's own name.
    pub name: Option<CompactString>,
    /// The object as the repository wrote it (`source` is the edited document, if edits
    /// changed it).
    pub origin: ItemSource,
    /// For the edits' preparing pass: the object's path below the level it gathers for.
    pub path: Box<[u32]>,
}

impl Item {
    /// An object placed as it is: no kustomization's transforms, no edits.
    pub fn plain(source: ItemSource) -> Item {
        Item {
            origin: source.clone(),
            source,
            chain: Vec::new(),
            namespace: None,
            prefix: String::new(),
            suffix: String::new(),
            patch: false,
            images: None,
            name: None,
            path: Box::default(),
        }
    }
}

/// One entry of a kustomization's `images:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOverride {
    pub name: String,
    pub new_name: Option<String>,
    pub new_tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageOverride {
    /// Applies this override to `image` when its name matches.
    pub fn apply(&self, image: &str) -> Option<String> {
        let (name, _) = split_image(image);
        if name != self.name {
            return None;
        }
        let new_name = self.new_name.as_deref().unwrap_or(name);
        let (_, old_ref) = split_image(image);
        Some(match (&self.digest, &self.new_tag) {
            (Some(d), _) => format!("{new_name}@{d}"),
            (None, Some(t)) => format!("{new_name}:{t}"),
            (None, None) => format!("{new_name}{old_ref}"),
        })
    }
}

/// `registry:5000/app:1.2@sha256:..` → (`registry:5000/app`, `:1.2@sha256:..`).
pub fn split_image(image: &str) -> (&str, &str) {
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    let tail = &image[last_slash..];
    let cut = tail
        .find(['@', ':'])
        .map_or(image.len(), |i| last_slash + i);
    image.split_at(cut)
}

/// A problem found while expanding: a missing path, a cycle, a remote resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub location: Location,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Expansion {
    pub items: Vec<Item>,
    pub problems: Vec<Problem>,
    /// The budgets this expansion hit (each also a problem).
    pub cuts: Vec<BudgetCut>,
}

/// How to expand a directory that has no kustomization file.
#[derive(Debug, Clone, Default)]
pub struct DirectoryMode {
    pub recurse: bool,
    pub include: Option<GlobSet>,
    pub exclude: Option<GlobSet>,
}

impl DirectoryMode {
    pub fn recursive() -> Self {
        DirectoryMode {
            recurse: true,
            ..DirectoryMode::default()
        }
    }

    /// Argo CD's `directory.include`/`exclude`: globs like `{a.yaml,b.yaml}` or `*.yml`.
    pub fn globs(pattern: Option<&str>) -> Option<GlobSet> {
        let pattern = pattern?.trim();
        if pattern.is_empty() {
            return None;
        }
        let mut b = GlobSetBuilder::new();
        b.add(Glob::new(pattern).ok()?);
        b.build().ok()
    }

    fn admits(&self, rel: &str) -> bool {
        let name = index::basename(rel);
        let hit = |set: &GlobSet| set.is_match(rel) || set.is_match(name);
        self.include.as_ref().is_none_or(hit) && !self.exclude.as_ref().is_some_and(hit)
    }

    fn is_plain(&self) -> bool {
        self.include.is_none() && self.exclude.is_none()
    }
}

/// Is this a kustomize remote reference rather than a local path?
pub fn is_remote(entry: &str) -> bool {
    entry.contains("://")
        || entry.starts_with("git@")
        || entry.starts_with("github.com/")
        || entry.starts_with("gitlab.com/")
        || entry.contains("?ref=")
        || entry.contains(".git//")
}

/// The most objects one expansion places unless `limits.kustomize-objects` says otherwise.
pub const DEFAULT_OBJECT_LIMIT: usize = 10_000;
/// The most objects all expansions of one scan place together (`limits.expanded-objects`).
pub const DEFAULT_SCAN_OBJECT_LIMIT: usize = 100_000;

/// `24300000` → `24,300,000`; the saturated maximum reads as a lower bound.
pub(crate) fn count_text(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n == u64::MAX {
        format!("at least {out}")
    } else {
        out
    }
}

/// The container images of an object (every `image:` string under it, with its line), after
/// the `images:` overrides of the kustomizations that brought it in.
pub fn effective_images(doc: &Document, overrides: &[ImageOverride]) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    // Every placement walks its object's tree: only collections go on the stack, which has
    // room for a pod spec's depth from the start.
    let is_collection = |n: &&Node| matches!(n.value, Value::Map(_) | Value::Seq(_));
    let mut stack = Vec::with_capacity(32);
    stack.push(&doc.root);
    while let Some(node) = stack.pop() {
        if let Some(entries) = node.as_map() {
            for e in entries {
                if e.key.as_str() == Some("image") {
                    if let Some(image) = e.value.as_str() {
                        let mut current = image.to_owned();
                        for o in overrides {
                            if let Some(next) = o.apply(&current) {
                                current = next;
                            }
                        }
                        out.push((current, e.key.span.line));
                    }
                }
                if is_collection(&&e.value) {
                    stack.push(&e.value);
                }
            }
        } else if let Some(items) = node.as_seq() {
            stack.extend(items.iter().filter(is_collection));
        }
    }
    out.sort_by_key(|(_, line)| *line);
    out
}

/// The string items of a list field, with their lines.
pub fn string_entries(node: &Node, key: &str) -> Vec<(String, u32)> {
    node.get(key)
        .and_then(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .filter_map(|n| Some((n.as_str()?.to_owned(), n.span.line)))
        .collect()
}

/// Kinds kustomize treats as cluster-scoped: no namespace is set on them.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "APIService",
    "CSIDriver",
    "CSINode",
    "RuntimeClass",
    "Node",
    "VolumeAttachment",
    "PodSecurityPolicy",
    "ComponentStatus",
    "CertificateSigningRequest",
    "FlowSchema",
    "PriorityLevelConfiguration",
];

/// Merges a strategic-merge patch into an object as kustomize does (maps key by key, the
/// lists Kubernetes merges by a key item by item, `$patch` directives): for readers that
/// show an object with the patch files placed beside it (`envfence render`).
pub fn strategic_merge(target: &mut Node, patch: &Node) {
    merge::merge(target, patch, "");
}

pub fn is_cluster_scoped(kind: &str) -> bool {
    CLUSTER_SCOPED.contains(&kind)
}

/// The (kind, name, namespace) an item has once kustomize's transforms are applied.
pub fn placed_identity(
    item: &Item,
    doc: Option<&Document>,
) -> (CompactString, Option<CompactString>, Option<CompactString>) {
    let (kind, name, own_ns): (&str, Option<&str>, Option<&str>) = match (&item.source, doc) {
        (ItemSource::Doc(_), Some(d)) => (
            d.id.kind.as_deref().unwrap_or_default(),
            d.id.name.as_deref(),
            d.id.namespace.as_deref(),
        ),
        (ItemSource::Generated(generator), _) => (generator.kind, Some(&generator.name), None),
        _ => ("", None, None),
    };
    let name = item.name.as_deref().or(name);
    let (name, namespace) = transformed(
        kind,
        name,
        own_ns,
        &item.prefix,
        &item.suffix,
        item.namespace.as_deref(),
    );
    (kind.into(), name, namespace)
}

/// The name and namespace an object of `kind` named `name` (in `own_ns`) has once
/// kustomize's name affixes and namespace (`namespace`: the one the levels set) apply.
pub(super) fn transformed(
    kind: &str,
    name: Option<&str>,
    own_ns: Option<&str>,
    prefix: &str,
    suffix: &str,
    namespace: Option<&str>,
) -> (Option<CompactString>, Option<CompactString>) {
    let affixed = |name: &str| {
        let mut out = CompactString::with_capacity(prefix.len() + name.len() + suffix.len());
        out.push_str(prefix);
        out.push_str(name);
        out.push_str(suffix);
        out
    };
    let owned = |s: Option<&str>| s.map(CompactString::from);
    match kind {
        // kustomize renames Namespace objects to the namespace it sets, and never prefixes them.
        "Namespace" => (owned(namespace.or(name)), None),
        // A cluster-scoped object keeps the namespace its file gives it, if any: kustomize's
        // namespace does not touch it.
        "CustomResourceDefinition" => (owned(name), owned(own_ns)),
        k if is_cluster_scoped(k) => (name.map(affixed), owned(own_ns)),
        _ => (name.map(affixed), owned(namespace.or(own_ns))),
    }
}

/// Notes for the `helmCharts` entries of kustomizations no delivery expanded (expanded ones
/// were rendered there, or have their note): where they deploy is not known.
pub fn unexpanded_chart_notes(
    index: &RepoIndex<'_>,
    expanded: &dyn Fn(&str) -> bool,
) -> Vec<crate::topology::Unresolved> {
    const CHART_FIELDS: [&str; 2] = ["helmCharts", "helmChartInflationGenerator"];
    let mut out = Vec::new();
    // Whether a kustomization has charts is asked before whether it was expanded: few have
    // any, and the question of expansion hashes the folder's path.
    for f in index.files.iter().filter(|f| {
        f.kind == crate::documents::FileKind::Kustomization
            && f.documents
                .iter()
                .any(|d| CHART_FIELDS.iter().any(|field| d.root.get(field).is_some()))
            && !expanded(index::parent(&f.path))
    }) {
        for d in f.documents.iter() {
            for field in CHART_FIELDS {
                for chart in d.root.get(field).and_then(Node::as_seq).unwrap_or(&[]) {
                    let name = ["name", "chartName"]
                        .into_iter()
                        .find_map(|k| chart.get(k).and_then(Node::as_str))
                        .unwrap_or("?");
                    out.push(crate::topology::Unresolved {
                        location: Location::new(&d.file, chart.span.line),
                        reason: format!(
                            "{field} entry {name}: no deployer envfence follows builds this kustomization, so its chart is not rendered and where it deploys is not known"
                        ),
                    });
                }
            }
        }
    }
    out
}
/// One object as envfence's kustomize expansion of a directory yields it: what `kustomize
/// build` of that directory would output, for the differential test against kubectl's.
#[derive(Debug, Clone)]
pub struct ExpandedObject {
    pub kind: String,
    /// The name, without the hash suffix kustomize gives generated objects.
    pub name: Option<String>,
    pub namespace: Option<String>,
    /// A strategic-merge patch (or merging generator): it changes the object of the same
    /// identity, and rules read its values as overriding that object's.
    pub patch: bool,
    /// The document as kustomize's edits (JSON patches, replacements) left it; `None` for an
    /// object a generator makes.
    pub doc: Option<Document>,
    /// The `images:` overrides that apply to it, in order.
    pub images: Vec<ImageOverride>,
}

/// What `dir` expands to, every object with its document: see [`ExpandedObject`].
pub fn kustomize_expansion(
    files: &[crate::documents::SourceFile],
    dir: &str,
) -> Vec<ExpandedObject> {
    let mut index = RepoIndex::new(files);
    let limits = crate::config::Limits::default();
    let prepared = prepare_edits(&index, None, &limits);
    index.add_changed(prepared.files, prepared.origins);
    let mut expander = Expander::new(&index);
    expander.use_edits(prepared.table);
    let expansion = expander.expand(dir, &DirectoryMode::default());
    expansion
        .items
        .iter()
        .map(|item| {
            let doc = match &item.source {
                ItemSource::Doc(r) => Some(index.doc(*r)),
                ItemSource::Generated(_) => None,
            };
            let (kind, name, namespace) = placed_identity(item, doc);
            ExpandedObject {
                kind: kind.to_string(),
                name: name.map(|n| n.to_string()),
                namespace: namespace.map(|n| n.to_string()),
                patch: item.patch,
                doc: doc.cloned(),
                images: item
                    .images
                    .as_deref()
                    .map(<[_]>::to_vec)
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// The objects one directory expands to, as (kind, name, namespace), without patches: what
/// `kustomize build` of that directory would output (generated names without their hash).
pub fn kustomize_objects(
    files: &[crate::documents::SourceFile],
    dir: &str,
) -> Vec<(String, Option<String>, Option<String>)> {
    kustomize_expansion(files, dir)
        .into_iter()
        .filter(|o| !o.patch)
        .map(|o| (o.kind, o.name, o.namespace))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_overrides() {
        assert_eq!(
            split_image("ghcr.io/acme/app:1.2"),
            ("ghcr.io/acme/app", ":1.2")
        );
        assert_eq!(
            split_image("localhost:5000/app"),
            ("localhost:5000/app", "")
        );
        assert_eq!(split_image("app@sha256:abc"), ("app", "@sha256:abc"));
        let o = ImageOverride {
            name: "ghcr.io/acme/app".into(),
            new_name: None,
            new_tag: Some("prod".into()),
            digest: None,
        };
        assert_eq!(
            o.apply("ghcr.io/acme/app:1.2").as_deref(),
            Some("ghcr.io/acme/app:prod")
        );
        assert_eq!(o.apply("ghcr.io/acme/other:1.2"), None);
        let renamed = ImageOverride {
            name: "app".into(),
            new_name: Some("mirror.example.com/app".into()),
            new_tag: None,
            digest: None,
        };
        assert_eq!(
            renamed.apply("app:3").as_deref(),
            Some("mirror.example.com/app:3")
        );
    }
}
