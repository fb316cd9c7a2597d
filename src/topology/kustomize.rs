//! Resolution of kustomize graphs without running kustomize: which objects a directory
//! produces, through `resources`/`bases`, `components`, patches and generators, with the
//! `namespace`, `namePrefix` and `nameSuffix` each level applies, and the chain of
//! kustomization lines that brought each object in. Directories without a kustomization are
//! expanded as Argo CD (one level, or recursive) and Flux (recursive) do.
//!
//! Results are memoised per directory: a base shared by fifty overlays is read once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::index::{self, DocRef, RepoIndex};
use crate::documents::{Document, Node};
use crate::findings::{Evidence, Location};

/// Deepest chain of kustomizations we follow (real repositories stay under ten).
const MAX_DEPTH: usize = 64;

/// What an item is: a document of the repository, or an object a generator creates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ItemSource {
    Doc(DocRef),
    Generated {
        /// The kustomization file that declares the generator, and the line of the entry.
        file: usize,
        line: u32,
        kind: &'static str,
        name: String,
    },
}

/// One object a directory produces, with the transforms applied on the way.
#[derive(Debug, Clone)]
pub struct Item {
    pub source: ItemSource,
    /// Hops from the expanded directory down to the object's file.
    pub chain: Vec<Evidence>,
    pub namespace: Option<String>,
    pub prefix: String,
    pub suffix: String,
    /// A patch (strategic merge) or merging generator: it changes an object, it is not one.
    pub patch: bool,
    /// `images:` overrides on the way, innermost first (outer kustomizations apply last).
    pub images: Vec<ImageOverride>,
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

pub struct Expander<'a> {
    index: &'a RepoIndex<'a>,
    memo: HashMap<(String, bool), Arc<Expansion>>,
    visiting: HashSet<String>,
    /// Every directory some expansion read (the fallbacks skip them).
    reached: HashSet<String>,
}

impl<'a> Expander<'a> {
    pub fn new(index: &'a RepoIndex<'a>) -> Self {
        Expander {
            index,
            memo: HashMap::new(),
            visiting: HashSet::new(),
            reached: HashSet::new(),
        }
    }

    /// Whether any expansion so far read `dir`.
    pub fn reached(&self, dir: &str) -> bool {
        self.reached.contains(dir)
    }

    /// What `dir` produces. A kustomization in it wins; otherwise its YAML files (recursively
    /// when `mode.recurse`, where a subdirectory with its own kustomization is expanded by it).
    pub fn expand(&mut self, dir: &str, mode: &DirectoryMode) -> Arc<Expansion> {
        let key = (dir.to_owned(), mode.recurse);
        if mode.is_plain() {
            if let Some(done) = self.memo.get(&key) {
                return Arc::clone(done);
            }
        }
        let result = Arc::new(self.expand_uncached(dir, mode, 0));
        if mode.is_plain() {
            self.memo.insert(key, Arc::clone(&result));
        }
        result
    }

    fn expand_uncached(&mut self, dir: &str, mode: &DirectoryMode, depth: usize) -> Expansion {
        self.reached.insert(dir.to_owned());
        if let Some(k) = self.index.kustomization_in(dir) {
            return self.expand_kustomization(dir, k, depth);
        }
        let mut out = Expansion::default();
        self.collect_plain(dir, dir, mode, depth, &mut out);
        out
    }

    fn collect_plain(
        &mut self,
        root: &str,
        dir: &str,
        mode: &DirectoryMode,
        depth: usize,
        out: &mut Expansion,
    ) {
        let index = self.index;
        self.reached.insert(dir.to_owned());
        for &f in index.files_in(dir) {
            let rel = index.files[f]
                .path
                .get(root.len()..)
                .unwrap_or("")
                .trim_start_matches('/');
            if !mode.admits(rel) {
                continue;
            }
            out.items.extend(index.manifests_of(f).map(|r| Item {
                source: ItemSource::Doc(r),
                chain: Vec::new(),
                namespace: None,
                prefix: String::new(),
                suffix: String::new(),
                images: Vec::new(),
                patch: false,
            }));
        }
        if !mode.recurse {
            return;
        }
        let subdirs: Vec<String> = index.subdirs_of(dir).map(str::to_owned).collect();
        for sub in subdirs {
            if let Some(k) = index.kustomization_in(&sub) {
                let nested = self.expand_kustomization_guarded(&sub, k, depth + 1, None);
                out.items.extend(nested.items);
                out.problems.extend(nested.problems);
            } else {
                self.collect_plain(root, &sub, mode, depth, out);
            }
        }
    }

    /// Expands the kustomization `k` of `dir`, refusing cycles and runaway depth.
    fn expand_kustomization_guarded(
        &mut self,
        dir: &str,
        k: usize,
        depth: usize,
        from: Option<&Location>,
    ) -> Expansion {
        let here = || {
            from.cloned()
                .unwrap_or_else(|| Location::new(&self.index.files[k].path, 1))
        };
        if self.visiting.contains(dir) {
            return Expansion {
                items: Vec::new(),
                problems: vec![Problem {
                    location: here(),
                    reason: format!("kustomization cycle: {dir} includes itself"),
                }],
            };
        }
        if depth > MAX_DEPTH {
            return Expansion {
                items: Vec::new(),
                problems: vec![Problem {
                    location: here(),
                    reason: format!("kustomizations nested deeper than {MAX_DEPTH}"),
                }],
            };
        }
        let key = (dir.to_owned(), false);
        if let Some(done) = self.memo.get(&key) {
            return Expansion {
                items: done.items.clone(),
                problems: done.problems.clone(),
            };
        }
        let result = self.expand_kustomization(dir, k, depth);
        self.memo.insert(
            key,
            Arc::new(Expansion {
                items: result.items.clone(),
                problems: result.problems.clone(),
            }),
        );
        result
    }

    fn expand_kustomization(&mut self, dir: &str, k: usize, depth: usize) -> Expansion {
        let index = self.index;
        self.reached.insert(dir.to_owned());
        let file = &index.files[k];
        let mut out = Expansion::default();
        let Some(doc) = file.documents.first() else {
            return out;
        };
        self.visiting.insert(dir.to_owned());
        let root = &doc.root;
        let at = |line: u32| Location::new(&file.path, line);

        // resources, bases, components: objects (files) or other kustomizations (directories).
        for key in ["resources", "bases", "components"] {
            for (entry, line) in string_entries(root, key) {
                let hop = Evidence {
                    location: at(line),
                    note: format!("{key} {entry}"),
                };
                if is_remote(&entry) {
                    out.problems.push(Problem {
                        location: at(line),
                        reason: format!("remote {key} entry {entry} is outside this repository"),
                    });
                    continue;
                }
                let Some(target) = index::join(dir, &entry, false) else {
                    out.problems.push(Problem {
                        location: at(line),
                        reason: format!("{key} entry {entry} leaves the repository"),
                    });
                    continue;
                };
                if let Some(f) = index.file(&target) {
                    out.items.extend(index.manifests_of(f).map(|r| Item {
                        source: ItemSource::Doc(r),
                        chain: vec![hop.clone()],
                        namespace: None,
                        prefix: String::new(),
                        suffix: String::new(),
                        images: Vec::new(),
                        patch: false,
                    }));
                } else if index.is_dir(&target) {
                    let nested = match index.kustomization_in(&target) {
                        Some(nk) => self.expand_kustomization_guarded(
                            &target,
                            nk,
                            depth + 1,
                            Some(&at(line)),
                        ),
                        None => Expansion {
                            items: Vec::new(),
                            problems: vec![Problem {
                                location: at(line),
                                reason: format!(
                                    "{key} entry {entry}: directory {target} has no kustomization"
                                ),
                            }],
                        },
                    };
                    for mut item in nested.items {
                        item.chain.insert(0, hop.clone());
                        out.items.push(item);
                    }
                    out.problems.extend(nested.problems);
                } else {
                    out.problems.push(Problem {
                        location: at(line),
                        reason: format!(
                            "{key} entry {entry}: {target} does not exist (or holds no YAML)"
                        ),
                    });
                }
            }
        }

        // Patches change objects from the bases; they are placed with them so that rules see
        // the values they set (an env var in a patch lands on the cluster too).
        let mut patch_paths: Vec<(String, u32)> = string_entries(root, "patchesStrategicMerge");
        if let Some(patches) = root.get("patches").and_then(Node::as_seq) {
            for p in patches {
                if let Some(e) = p.entry("path") {
                    if let Some(path) = e.value.as_str() {
                        patch_paths.push((path.to_owned(), e.key.span.start.line));
                    }
                }
            }
        }
        for (entry, line) in patch_paths {
            // Inline strategic-merge patches are YAML text, not paths.
            if entry.contains('\n')
                || entry.contains(':') && !entry.ends_with(".yaml") && !entry.ends_with(".yml")
            {
                continue;
            }
            let Some(f) = index::join(dir, &entry, false).and_then(|t| index.file(&t)) else {
                out.problems.push(Problem {
                    location: at(line),
                    reason: format!("patch {entry} does not exist"),
                });
                continue;
            };
            out.items.extend(index.manifests_of(f).map(|r| Item {
                source: ItemSource::Doc(r),
                chain: vec![Evidence {
                    location: at(line),
                    note: format!("patch {entry}"),
                }],
                namespace: None,
                prefix: String::new(),
                suffix: String::new(),
                images: Vec::new(),
                patch: true,
            }));
        }

        // Generators create ConfigMaps and Secrets (with a hash suffix we do not compute).
        for (key, kind) in [
            ("configMapGenerator", "ConfigMap"),
            ("secretGenerator", "Secret"),
        ] {
            for generator in root.get(key).and_then(Node::as_seq).unwrap_or(&[]) {
                let Some(name_entry) = generator.entry("name") else {
                    continue;
                };
                let Some(name) = name_entry.value.as_str() else {
                    continue;
                };
                let line = name_entry.key.span.start.line;
                let merging = matches!(
                    generator.get("behavior").and_then(Node::as_str),
                    Some("merge") | Some("replace")
                );
                for (files_key, _) in [("files", ()), ("envs", ())] {
                    for (path, pline) in string_entries(generator, files_key) {
                        // `files` entries may be `key=path`.
                        let path = path
                            .rsplit_once('=')
                            .map_or(path.as_str(), |(_, p)| p)
                            .to_owned();
                        if index::join(dir, &path, false).is_none() {
                            out.problems.push(Problem {
                                location: at(pline),
                                reason: format!(
                                    "{key} {files_key} entry {path} leaves the repository"
                                ),
                            });
                        }
                    }
                }
                out.items.push(Item {
                    source: ItemSource::Generated {
                        file: k,
                        line,
                        kind,
                        name: name.to_owned(),
                    },
                    chain: vec![Evidence {
                        location: at(line),
                        note: format!("{key} {name}"),
                    }],
                    namespace: generator
                        .get("namespace")
                        .and_then(Node::as_str)
                        .map(str::to_owned),
                    prefix: String::new(),
                    suffix: String::new(),
                    images: Vec::new(),
                    patch: merging,
                });
            }
        }
        if let Some(charts) = root.get("helmCharts").and_then(Node::as_seq) {
            for chart in charts {
                out.problems.push(Problem {
                    location: at(chart.span.start.line),
                    reason: format!(
                        "helmCharts entry {} is rendered by Helm; envfence does not render charts",
                        chart.get("name").and_then(Node::as_str).unwrap_or("?")
                    ),
                });
            }
        }

        // This level's transforms apply to everything it gathered; outer levels apply later
        // and win for the namespace, and wrap prefixes and suffixes.
        let namespace = root
            .get("namespace")
            .and_then(Node::as_str)
            .map(str::to_owned);
        let prefix = root.get("namePrefix").and_then(Node::as_str).unwrap_or("");
        let suffix = root.get("nameSuffix").and_then(Node::as_str).unwrap_or("");
        let images: Vec<ImageOverride> = root
            .get("images")
            .and_then(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .filter_map(|i| {
                let text = |k: &str| i.get(k).and_then(Node::as_str).map(str::to_owned);
                Some(ImageOverride {
                    name: text("name")?,
                    new_name: text("newName"),
                    new_tag: text("newTag"),
                    digest: text("digest"),
                })
            })
            .collect();
        for item in &mut out.items {
            item.images.extend(images.iter().cloned());
            if namespace.is_some() {
                item.namespace.clone_from(&namespace);
            }
            item.prefix = format!("{prefix}{}", item.prefix);
            item.suffix = format!("{}{suffix}", item.suffix);
        }
        self.visiting.remove(dir);
        out
    }
}

/// The container images of an object (every `image:` string under it, with its line), after
/// the `images:` overrides of the kustomizations that brought it in.
pub fn effective_images(doc: &Document, overrides: &[ImageOverride]) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![&doc.root];
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
                        out.push((current, e.key.span.start.line));
                    }
                }
                stack.push(&e.value);
            }
        } else if let Some(items) = node.as_seq() {
            stack.extend(items.iter());
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
        .filter_map(|n| Some((n.as_str()?.to_owned(), n.span.start.line)))
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

pub fn is_cluster_scoped(kind: &str) -> bool {
    CLUSTER_SCOPED.contains(&kind)
}

/// The (kind, name, namespace) an item has once kustomize's transforms are applied.
pub fn placed_identity(
    item: &Item,
    doc: Option<&Document>,
) -> (String, Option<String>, Option<String>) {
    let (kind, name, own_ns) = match (&item.source, doc) {
        (ItemSource::Doc(_), Some(d)) => (
            d.id.kind.clone().unwrap_or_default(),
            d.id.name.clone(),
            d.id.namespace.clone(),
        ),
        (ItemSource::Generated { kind, name, .. }, _) => {
            ((*kind).to_owned(), Some(name.clone()), None)
        }
        _ => (String::new(), None, None),
    };
    match kind.as_str() {
        // kustomize renames Namespace objects to the namespace it sets, and never prefixes them.
        "Namespace" => {
            let name = item.namespace.clone().or(name);
            (kind, name, None)
        }
        "CustomResourceDefinition" => (kind, name, None),
        k if is_cluster_scoped(k) => {
            let name = name.map(|n| format!("{}{n}{}", item.prefix, item.suffix));
            (kind, name, None)
        }
        _ => {
            let name = name.map(|n| format!("{}{n}{}", item.prefix, item.suffix));
            let ns = item.namespace.clone().or(own_ns);
            (kind, name, ns)
        }
    }
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
