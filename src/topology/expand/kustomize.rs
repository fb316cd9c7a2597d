//! Resolution of kustomize graphs without running kustomize: which objects a directory
//! produces, through `resources`/`bases`, `components`, patches and generators, with the
//! `namespace`, `namePrefix` and `nameSuffix` each level applies, and the chain of
//! kustomization lines that brought each object in. Directories without a kustomization are
//! expanded as Argo CD (one level, or recursive) and Flux (recursive) do.
//!
//! Each kustomization is resolved once and shared, not copied, by everything that includes it
//! (a base shared by fifty overlays is read once; a fan-out of bases that include each other
//! stays linear), and one expansion yields at most `limits.kustomize-objects` objects.

use crate::topology::{HashMap, HashSet};
use std::sync::Arc;

use compact_str::CompactString;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::documents::{Document, FileKind, Node, Value};
use crate::location::{Evidence, Location};
use crate::topology::expand::{helm, kustomize_helm};
use crate::topology::helm_values::ValueSources;
use crate::topology::index::{self, DocRef, RepoIndex};

/// Deepest chain of kustomizations we follow (real repositories stay under ten).
const MAX_DEPTH: usize = 64;

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
    /// Shared by the objects under the same kustomizations: each would otherwise copy them.
    pub images: Option<Arc<[ImageOverride]>>,
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

/// The most objects one expansion places unless `limits.kustomize-objects` says otherwise.
pub const DEFAULT_OBJECT_LIMIT: usize = 10_000;
/// The most objects all expansions of one scan place together (`limits.expanded-objects`).
pub const DEFAULT_SCAN_OBJECT_LIMIT: usize = 100_000;

/// A directory resolved once and shared by everything that includes it. Nested kustomizations
/// are referenced, not copied, and transforms are applied when the root is flattened: a base
/// that two overlays each include twice is still resolved, and stored, once.
#[derive(Debug, Default)]
struct Resolved {
    /// The kustomization file, for a kustomization (plain directories have none).
    origin: Option<Location>,
    parts: Vec<Part>,
    transform: Transform,
    problems: Vec<Problem>,
    /// Objects it expands to, each path through shared bases counted (saturating).
    count: u64,
}

#[derive(Debug)]
enum Part {
    Object(Leaf),
    Nested {
        hop: Option<Evidence>,
        inner: Arc<Resolved>,
    },
}

#[derive(Debug)]
struct Leaf {
    source: ItemSource,
    hop: Option<Evidence>,
    namespace: Option<String>,
    patch: bool,
}

/// What one kustomization does to everything it gathers.
#[derive(Debug, Default)]
struct Transform {
    namespace: Option<String>,
    prefix: String,
    suffix: String,
    images: Arc<[ImageOverride]>,
}

impl Resolved {
    fn only_problem(problem: Problem) -> Arc<Resolved> {
        Arc::new(Resolved {
            problems: vec![problem],
            ..Resolved::default()
        })
    }

    fn push_leaf(&mut self, leaf: Leaf) {
        self.count = self.count.saturating_add(1);
        self.parts.push(Part::Object(leaf));
    }

    fn push_nested(&mut self, hop: Option<Evidence>, inner: Arc<Resolved>) {
        self.count = self.count.saturating_add(inner.count);
        self.parts.push(Part::Nested { hop, inner });
    }
}

/// An [`Expander`]'s caches, kept only to be freed.
pub struct ExpanderCaches {
    _kustomizations: HashMap<String, Arc<Resolved>>,
    _directories: HashMap<(String, bool), Arc<Resolved>>,
    _reached: HashSet<String>,
}

pub struct Expander<'a> {
    index: &'a RepoIndex<'a>,
    /// Each kustomization, resolved once.
    kustomizations: HashMap<String, Arc<Resolved>>,
    /// Directories expanded as plain directories (key: directory, recursive).
    directories: HashMap<(String, bool), Arc<Resolved>>,
    visiting: HashSet<String>,
    /// Every directory some expansion read (the fallbacks skip them).
    reached: HashSet<String>,
    /// The most objects one expansion yields (`limits.kustomize-objects`).
    object_limit: usize,
    /// What is left of the scan's budget (`limits.expanded-objects`).
    scan_objects_left: usize,
    scan_object_limit: usize,
    /// The renders so far, for `helmCharts` of local charts (`None`: not rendered at all).
    renders: Option<&'a helm::Renders>,
    charts: Vec<InflatedChart>,
}

impl<'a> Expander<'a> {
    pub fn new(index: &'a RepoIndex<'a>) -> Self {
        Self::with_limits(index, DEFAULT_OBJECT_LIMIT, DEFAULT_SCAN_OBJECT_LIMIT)
    }

    /// `object_limit` objects per expansion, `scan_object_limit` for all of them together.
    pub fn with_limits(
        index: &'a RepoIndex<'a>,
        object_limit: usize,
        scan_object_limit: usize,
    ) -> Self {
        // Most kustomizations get resolved: room for them all spares the tables' regrowth,
        // which hashes every path again.
        let kustomizations = index
            .files
            .iter()
            .filter(|f| f.kind == FileKind::Kustomization)
            .count();
        Expander {
            index,
            kustomizations: HashMap::with_capacity_and_hasher(kustomizations, Default::default()),
            directories: HashMap::default(),
            visiting: HashSet::default(),
            reached: HashSet::with_capacity_and_hasher(kustomizations, Default::default()),
            object_limit,
            scan_objects_left: scan_object_limit,
            scan_object_limit,
            renders: None,
            charts: Vec::new(),
        }
    }

    /// What the expander remembers, without its borrow of the index: to be freed elsewhere.
    pub fn into_caches(self) -> ExpanderCaches {
        ExpanderCaches {
            _kustomizations: self.kustomizations,
            _directories: self.directories,
            _reached: self.reached,
        }
    }

    /// Inflates `helmCharts` of local charts with what `renders` rendered.
    pub fn with_renders(mut self, renders: &'a helm::Renders) -> Self {
        self.renders = Some(renders);
        self
    }

    /// Whether any expansion so far read `dir`.
    pub fn reached(&self, dir: &str) -> bool {
        self.reached.contains(dir)
    }

    /// What `dir` produces. A kustomization in it wins; otherwise its YAML files (recursively
    /// when `mode.recurse`, where a subdirectory with its own kustomization is expanded by it).
    /// At most `object_limit` objects, and no more than the scan's budget has left: beyond
    /// them a problem names the kustomization (or directory) and the limit.
    pub fn expand(&mut self, dir: &str, mode: &DirectoryMode) -> Arc<Expansion> {
        let resolved = self.resolve(dir, mode);
        let budget = if self.scan_objects_left < self.object_limit {
            Budget::Scan {
                left: self.scan_objects_left,
                limit: self.scan_object_limit,
            }
        } else {
            Budget::Expansion(self.object_limit)
        };
        let expansion = flatten(&resolved, dir, budget);
        self.scan_objects_left -= expansion.items.len();
        Arc::new(expansion)
    }

    fn resolve(&mut self, dir: &str, mode: &DirectoryMode) -> Arc<Resolved> {
        self.reached.insert(dir.to_owned());
        if let Some(k) = self.index.kustomization_in(dir) {
            return self.resolve_kustomization_guarded(dir, k, 0, None);
        }
        let key = (dir.to_owned(), mode.recurse);
        if mode.is_plain() {
            if let Some(done) = self.directories.get(&key) {
                return Arc::clone(done);
            }
        }
        let mut out = Resolved::default();
        self.collect_plain(dir, dir, mode, 0, &mut out);
        let out = Arc::new(out);
        if mode.is_plain() {
            self.directories.insert(key, Arc::clone(&out));
        }
        out
    }

    fn collect_plain(
        &mut self,
        root: &str,
        dir: &str,
        mode: &DirectoryMode,
        depth: usize,
        out: &mut Resolved,
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
            for r in index.manifests_of(f) {
                out.push_leaf(Leaf {
                    source: ItemSource::Doc(r),
                    hop: None,
                    namespace: None,
                    patch: false,
                });
            }
        }
        if !mode.recurse {
            return;
        }
        let subdirs: Vec<String> = index.subdirs_of(dir).map(str::to_owned).collect();
        for sub in subdirs {
            if let Some(k) = index.kustomization_in(&sub) {
                let nested = self.resolve_kustomization_guarded(&sub, k, depth + 1, None);
                out.push_nested(None, nested);
            } else {
                self.collect_plain(root, &sub, mode, depth, out);
            }
        }
    }

    /// Resolves the kustomization `k` of `dir` once, refusing cycles and runaway depth.
    fn resolve_kustomization_guarded(
        &mut self,
        dir: &str,
        k: usize,
        depth: usize,
        from: Option<&Location>,
    ) -> Arc<Resolved> {
        let here = || {
            from.cloned()
                .unwrap_or_else(|| Location::new(&self.index.files[k].path, 1))
        };
        if self.visiting.contains(dir) {
            return Resolved::only_problem(Problem {
                location: here(),
                reason: format!("kustomization cycle: {dir} includes itself"),
            });
        }
        if depth > MAX_DEPTH {
            return Resolved::only_problem(Problem {
                location: here(),
                reason: format!("kustomizations nested deeper than {MAX_DEPTH}"),
            });
        }
        if let Some(done) = self.kustomizations.get(dir) {
            return Arc::clone(done);
        }
        let result = Arc::new(self.resolve_kustomization(dir, k, depth));
        self.kustomizations
            .insert(dir.to_owned(), Arc::clone(&result));
        result
    }

    fn resolve_kustomization(&mut self, dir: &str, k: usize, depth: usize) -> Resolved {
        let index = self.index;
        self.reached.insert(dir.to_owned());
        let file = &index.files[k];
        let mut out = Resolved {
            origin: Some(Location::new(&file.path, 1)),
            ..Resolved::default()
        };
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
                    note: format!("{key} {entry}").into(),
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
                    for r in index.manifests_of(f) {
                        out.push_leaf(Leaf {
                            source: ItemSource::Doc(r),
                            hop: Some(hop.clone()),
                            namespace: None,
                            patch: false,
                        });
                    }
                } else if index.is_dir(&target) {
                    match index.kustomization_in(&target) {
                        Some(nk) => {
                            let nested = self.resolve_kustomization_guarded(
                                &target,
                                nk,
                                depth + 1,
                                Some(&at(line)),
                            );
                            out.push_nested(Some(hop), nested);
                        }
                        None => out.problems.push(Problem {
                            location: at(line),
                            reason: format!(
                                "{key} entry {entry}: directory {target} has no kustomization"
                            ),
                        }),
                    }
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
            for r in index.manifests_of(f) {
                out.push_leaf(Leaf {
                    source: ItemSource::Doc(r),
                    hop: Some(Evidence {
                        location: at(line),
                        note: format!("patch {entry}").into(),
                    }),
                    namespace: None,
                    patch: true,
                });
            }
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
                out.push_leaf(Leaf {
                    source: ItemSource::Generated(Box::new(Generator {
                        file: k,
                        line,
                        kind,
                        name: name.to_owned(),
                    })),
                    hop: Some(Evidence {
                        location: at(line),
                        note: format!("{key} {name}").into(),
                    }),
                    namespace: generator
                        .get("namespace")
                        .and_then(Node::as_str)
                        .map(str::to_owned),
                    patch: merging,
                });
            }
        }
        for (field, legacy) in [("helmCharts", false), ("helmChartInflationGenerator", true)] {
            for entry in root.get(field).and_then(Node::as_seq).unwrap_or(&[]) {
                self.inflate(dir, k, root, entry, legacy, &mut out);
            }
        }

        // This level's transforms apply to everything it gathered; outer levels apply later
        // and win for the namespace, and wrap prefixes and suffixes (see `Flattener::item`).
        out.transform = Transform {
            namespace: root
                .get("namespace")
                .and_then(Node::as_str)
                .map(str::to_owned),
            prefix: root
                .get("namePrefix")
                .and_then(Node::as_str)
                .unwrap_or("")
                .to_owned(),
            suffix: root
                .get("nameSuffix")
                .and_then(Node::as_str)
                .unwrap_or("")
                .to_owned(),
            images: root
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
                .collect(),
        };
        self.visiting.remove(dir);
        // Resolved kustomizations live as long as the topology build: no room to spare.
        out.parts.shrink_to_fit();
        out
    }
}

impl Expander<'_> {
    /// A `helmCharts` entry: the objects its local chart rendered, as this kustomization's
    /// own (its transforms apply), or a note when the chart is remote or not rendered (yet).
    fn inflate(
        &mut self,
        dir: &str,
        k: usize,
        root: &Node,
        entry: &Node,
        legacy: bool,
        out: &mut Resolved,
    ) {
        let file = &self.index.files[k].path;
        let location = Location::new(file, entry.span.start.line);
        let (request, values_evidence, notes) =
            match kustomize_helm::kustomize_chart(self.index, dir, file, root, entry, legacy) {
                kustomize_helm::KustomizeChart::Local {
                    request,
                    values_evidence,
                    notes,
                } => (request, values_evidence, notes),
                kustomize_helm::KustomizeChart::Remote(reason) => {
                    out.problems.push(Problem { location, reason });
                    return;
                }
            };
        out.problems.extend(notes.into_iter().map(|n| Problem {
            location: n.location,
            reason: n.reason,
        }));
        let Some(renders) = self.renders else {
            return;
        };
        let rendered = renders.get(&request).cloned();
        let hop = Evidence {
            location: location.clone(),
            note: format!(
                "helmCharts {}: {}",
                index::basename(&request.chart),
                request.describe()
            )
            .into(),
        };
        let (files, sources) = match rendered {
            Some(helm::Rendered::Files(files)) => {
                for r in helm::rendered_docs(&files) {
                    out.push_leaf(Leaf {
                        source: ItemSource::Doc(r),
                        hop: Some(hop.clone()),
                        namespace: None,
                        patch: false,
                    });
                }
                let sources = Arc::new(ValueSources::new(&request, &values_evidence));
                (files, Some(sources))
            }
            Some(helm::Rendered::Failed(reason)) => {
                out.problems.push(Problem { location, reason });
                (Vec::new(), None)
            }
            // Not rendered yet: the next round renders it, when helm is there.
            None => {
                if renders.helm().is_none() {
                    out.problems.push(Problem {
                        location,
                        reason: format!(
                            "chart {} is not rendered: {}",
                            request.chart,
                            renders.availability.hint()
                        ),
                    });
                }
                (Vec::new(), None)
            }
        };
        self.charts.push(InflatedChart {
            request,
            files,
            sources,
        });
    }

    /// The charts kustomizations inflated since the last call: the renders they need, and
    /// where the values of what they rendered come from.
    pub fn take_charts(&mut self) -> Vec<InflatedChart> {
        std::mem::take(&mut self.charts)
    }
}

/// A local chart a kustomization inflates (see [`Expander::take_charts`]).
#[derive(Debug)]
pub struct InflatedChart {
    pub request: helm::RenderRequest,
    /// Its rendered files, once rendered.
    pub files: Vec<usize>,
    pub sources: Option<Arc<ValueSources>>,
}

/// Which limit an expansion runs into first.
#[derive(Debug, Clone, Copy)]
enum Budget {
    /// `limits.kustomize-objects`.
    Expansion(usize),
    /// What `limits.expanded-objects` has left for the rest of the scan.
    Scan { left: usize, limit: usize },
}

/// The most items [`flatten`] makes room for before it starts; past that the list grows.
const FIRST_ROOM: usize = 4096;

/// The objects of `root` in order, within the budget, with every problem of the
/// kustomizations it reaches (each reported once, however many paths lead to it).
fn flatten(root: &Resolved, dir: &str, budget: Budget) -> Expansion {
    let limit = match budget {
        Budget::Expansion(limit) => limit,
        Budget::Scan { left, .. } => left,
    };
    let mut walk = Flattener {
        limit,
        // Room for what the count says, within the limit and a modest start: a count can be
        // far larger than what memory allows to expand.
        items: Vec::with_capacity(
            usize::try_from(root.count)
                .unwrap_or(limit)
                .min(limit)
                .min(FIRST_ROOM),
        ),
        transforms: Vec::new(),
        images: Vec::new(),
        chain: Vec::new(),
        cut_in: None,
    };
    let complete = walk.visit(root, None);
    let mut problems = Vec::new();
    let mut seen = HashSet::default();
    collect_problems(root, &mut seen, &mut problems);
    if let (false, Budget::Scan { left, limit }) = (complete, budget) {
        let (location, what) = match &root.origin {
            Some(origin) => (origin.clone(), format!("kustomization {}", origin.file)),
            None => (
                Location::new(&Arc::from(dir), 1),
                format!("directory {dir}"),
            ),
        };
        problems.push(Problem {
            location,
            reason: format!(
                "{what} expands to {} objects, but only {} of the scan's {} expanded objects are left (limits.expanded-objects): the first {} are placed, the rest are not",
                count_text(root.count),
                count_text(left as u64),
                count_text(limit as u64),
                count_text(left as u64),
            ),
        });
    } else if !complete {
        // Name the outermost kustomization that alone exceeds the limit, else the directory.
        let (location, what, count) = match walk.cut_in {
            Some(k) if k.count > limit as u64 => match &k.origin {
                Some(origin) => (
                    origin.clone(),
                    format!("kustomization {}", origin.file),
                    k.count,
                ),
                None => (
                    Location::new(&Arc::from(dir), 1),
                    format!("directory {dir}"),
                    k.count,
                ),
            },
            _ => match &root.origin {
                Some(origin) => (
                    origin.clone(),
                    format!("kustomization {}", origin.file),
                    root.count,
                ),
                None => (
                    Location::new(&Arc::from(dir), 1),
                    format!("directory {dir}"),
                    root.count,
                ),
            },
        };
        problems.push(Problem {
            location,
            reason: format!(
                "{what} expands to {} objects (each path through shared bases counted); the limit is {} (limits.kustomize-objects): the first {} are placed, the rest are not",
                count_text(count),
                count_text(limit as u64),
                count_text(limit as u64),
            ),
        });
    }
    Expansion {
        items: walk.items,
        problems,
    }
}

/// Every problem of `node` and what it includes, each node visited once.
fn collect_problems(node: &Resolved, seen: &mut HashSet<usize>, out: &mut Vec<Problem>) {
    if !seen.insert(std::ptr::from_ref(node) as usize) {
        return;
    }
    out.extend(node.problems.iter().cloned());
    for part in &node.parts {
        if let Part::Nested { inner, .. } = part {
            collect_problems(inner, seen, out);
        }
    }
}

/// Walks a resolved tree top-down, applying the transforms on the way to each object.
struct Flattener<'r> {
    limit: usize,
    items: Vec<Item>,
    /// Transforms of the kustomizations on the current path, outermost first.
    transforms: Vec<&'r Transform>,
    /// The `images:` overrides on the current path down to each of them, innermost first.
    images: Vec<Option<Arc<[ImageOverride]>>>,
    /// Hops on the current path, outermost first.
    chain: Vec<Evidence>,
    /// The outermost node being walked when the limit was reached.
    cut_in: Option<&'r Resolved>,
}

impl<'r> Flattener<'r> {
    /// Returns false once the limit is reached.
    fn visit(&mut self, node: &'r Resolved, outermost: Option<&'r Resolved>) -> bool {
        let outermost = outermost.or(node.origin.as_ref().map(|_| node));
        self.transforms.push(&node.transform);
        let outer = self.images.last().cloned().flatten();
        let own = &node.transform.images;
        self.images.push(match outer {
            _ if own.is_empty() => outer,
            None => Some(Arc::clone(own)),
            Some(outer) => Some(own.iter().chain(outer.iter()).cloned().collect()),
        });
        let mut complete = true;
        for part in &node.parts {
            match part {
                Part::Object(leaf) => {
                    if self.items.len() >= self.limit {
                        self.cut_in = outermost;
                        complete = false;
                        break;
                    }
                    let item = self.item(leaf);
                    self.items.push(item);
                }
                // An empty base is skipped, so that a walk never wanders through paths that
                // yield nothing (fan-outs of empty bases would be exponential).
                Part::Nested { inner, .. } if inner.count == 0 => {}
                Part::Nested { hop, inner } => {
                    if let Some(hop) = hop {
                        self.chain.push(hop.clone());
                    }
                    complete = self.visit(inner, outermost);
                    if hop.is_some() {
                        self.chain.pop();
                    }
                    if !complete {
                        break;
                    }
                }
            }
        }
        self.transforms.pop();
        self.images.pop();
        complete
    }

    fn item(&self, leaf: &Leaf) -> Item {
        let mut namespace = leaf.namespace.clone();
        let mut prefix = String::new();
        let mut suffix = String::new();
        for t in &self.transforms {
            prefix.push_str(&t.prefix);
        }
        // Innermost first: outer kustomizations apply last, so their namespace wins.
        for t in self.transforms.iter().rev() {
            if t.namespace.is_some() {
                namespace.clone_from(&t.namespace);
            }
            suffix.push_str(&t.suffix);
        }
        let mut chain = self.chain.clone();
        chain.extend(leaf.hop.iter().cloned());
        Item {
            source: leaf.source.clone(),
            chain,
            namespace,
            prefix,
            suffix,
            patch: leaf.patch,
            images: self.images.last().cloned().flatten(),
        }
    }
}

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
                        out.push((current, e.key.span.start.line));
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
    let affixed = |name: &str| {
        let mut out =
            CompactString::with_capacity(item.prefix.len() + name.len() + item.suffix.len());
        out.push_str(&item.prefix);
        out.push_str(name);
        out.push_str(&item.suffix);
        out
    };
    let owned = |s: Option<&str>| s.map(CompactString::from);
    match kind {
        // kustomize renames Namespace objects to the namespace it sets, and never prefixes them.
        "Namespace" => (kind.into(), owned(item.namespace.as_deref().or(name)), None),
        "CustomResourceDefinition" => (kind.into(), owned(name), None),
        k if is_cluster_scoped(k) => (kind.into(), name.map(affixed), None),
        _ => (
            kind.into(),
            name.map(affixed),
            owned(item.namespace.as_deref().or(own_ns)),
        ),
    }
}

/// Notes for the `helmCharts` entries of kustomizations no delivery expanded (expanded ones
/// were rendered there, or have their note): where they deploy is not known.
pub fn unexpanded_chart_notes(
    index: &RepoIndex<'_>,
    expanded: &dyn Fn(&str) -> bool,
) -> Vec<crate::topology::Unresolved> {
    let mut out = Vec::new();
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
                    out.push(crate::topology::Unresolved {
                        location: Location::new(&d.file, chart.span.start.line),
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
/// The objects one directory expands to, as (kind, name, namespace), without patches: what
/// `kustomize build` of that directory would output (generated names without their hash).
/// Used by the differential test against kubectl's kustomize.
pub fn kustomize_objects(
    files: &[crate::documents::SourceFile],
    dir: &str,
) -> Vec<(String, Option<String>, Option<String>)> {
    let index = RepoIndex::new(files);
    let mut expander = Expander::new(&index);
    let expansion = expander.expand(dir, &DirectoryMode::default());
    expansion
        .items
        .iter()
        .filter(|item| !item.patch)
        .map(|item| {
            let doc = match &item.source {
                ItemSource::Doc(r) => Some(index.doc(*r)),
                ItemSource::Generated(_) => None,
            };
            let (kind, name, namespace) = placed_identity(item, doc);
            (
                kind.to_string(),
                name.map(|n| n.to_string()),
                namespace.map(|n| n.to_string()),
            )
        })
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
