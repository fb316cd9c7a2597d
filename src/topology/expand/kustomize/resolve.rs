//! Resolution: each kustomization (or plain directory) read once into a [`Resolved`] tree
//! that everything including it shares, by the [`Expander`], which also inflates the
//! `helmCharts` of local charts. Transforms are recorded here and applied by [`super::flatten`].

use crate::topology::{HashMap, HashSet};
use std::sync::Arc;

use compact_str::CompactString;

use crate::documents::{FileKind, Node};
use crate::evidence::{Evidence, GeneratedHop, Hop, IncludeKey, KustomizeChartHop};
use crate::location::Location;
use crate::topology::expand::{helm, kustomize_helm};
use crate::topology::helm_values::ValueSources;
use crate::topology::index::{self, RepoIndex};

use super::edit::{EditTable, Edits, LevelKey, Preparing};
use super::flatten::{flatten, Budget};
use super::{
    is_remote, string_entries, DirectoryMode, Expansion, Generator, ImageOverride, ItemSource,
    Problem, DEFAULT_OBJECT_LIMIT, DEFAULT_SCAN_OBJECT_LIMIT,
};

/// Deepest chain of kustomizations we follow (real repositories stay under ten).
const MAX_DEPTH: usize = 64;

/// The most Components (nested ones included) that apply over one kustomization's objects
/// (real repositories use a handful).
const MAX_COMPONENTS: u32 = 64;

/// A directory resolved once and shared by everything that includes it. Nested kustomizations
/// are referenced, not copied, and transforms are applied when the root is flattened: a base
/// that two overlays each include twice is still resolved, and stored, once.
#[derive(Debug, Default)]
pub(super) struct Resolved {
    /// The kustomization file, for a kustomization (plain directories have none).
    pub(super) origin: Option<Location>,
    pub(super) parts: Vec<Part>,
    pub(super) transform: Transform,
    pub(super) problems: Vec<Problem>,
    /// Objects it expands to, each path through shared bases counted (saturating).
    pub(super) count: u64,
}

#[derive(Debug)]
pub(super) enum Part {
    Object(Leaf),
    Nested {
        hop: Option<Evidence>,
        inner: Arc<Resolved>,
    },
}

#[derive(Debug)]
pub(super) struct Leaf {
    pub(super) source: ItemSource,
    pub(super) hop: Option<Evidence>,
    /// Inline when short, as namespaces are: each object's is copied into its item.
    pub(super) namespace: Option<CompactString>,
    pub(super) patch: bool,
}

/// What one kustomization does to everything it gathers.
#[derive(Debug, Default)]
pub(super) struct Transform {
    pub(super) namespace: Option<CompactString>,
    pub(super) prefix: String,
    pub(super) suffix: String,
    pub(super) images: Arc<[ImageOverride]>,
    /// What its JSON patches, replacements and vars made of the objects it gathers, worked
    /// out before the build by the preparing pass (`None` for most kustomizations).
    pub(super) edits: Option<Arc<Edits>>,
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
    /// The include hops (`resources ../../base`), one per key and entry: thousands of
    /// overlays name the same base, and a hop's location is kept beside it, not in it.
    include_hops: HashMap<String, [Option<Arc<Hop>>; 4]>,
    /// The edits the preparing pass worked out, by level (building), or that pass itself.
    pub(super) edits: EditMode,
}

/// Whether an [`Expander`] builds with edits worked out before, or works them out.
pub(super) enum EditMode {
    Build(Option<Arc<EditTable>>),
    Prepare(Box<Preparing>),
}

impl<'a> Expander<'a> {
    /// The hop of an include, shared by every kustomization that writes the same entry.
    fn include_hop(&mut self, key: IncludeKey, entry: &str) -> Arc<Hop> {
        let slot = key as usize;
        if let Some(Some(hop)) = self.include_hops.get(entry).map(|hops| &hops[slot]) {
            return Arc::clone(hop);
        }
        let hop = Arc::new(Hop::Include {
            key,
            entry: entry.into(),
        });
        self.include_hops.entry(entry.to_owned()).or_default()[slot] = Some(Arc::clone(&hop));
        hop
    }

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
            include_hops: HashMap::default(),
            edits: EditMode::Build(None),
        }
    }

    /// Builds with the edits of kustomize's JSON patches, replacements and vars that
    /// [`super::prepare_edits`] worked out.
    pub fn with_edits(mut self, table: Arc<EditTable>) -> Self {
        self.edits = EditMode::Build(Some(table));
        self
    }

    /// The index the expander reads.
    pub(super) fn index(&self) -> &'a RepoIndex<'a> {
        self.index
    }

    /// Gives a level the edits worked out for it: found in the table when building, worked
    /// out now when preparing.
    fn set_edits(&mut self, level: &mut Resolved, dir: &str, number: u32, file: usize) {
        match &self.edits {
            EditMode::Build(None) => {}
            EditMode::Build(Some(table)) => {
                let key = LevelKey::new(dir, number);
                level.transform.edits = table.edits(&key);
                if number == 0 {
                    level.problems.extend(table.problems(dir).iter().cloned());
                }
            }
            EditMode::Prepare(_) => {
                super::edit::prepare_level(self, level, dir, number, file);
            }
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
        let index = self.index;
        let local_config =
            |s: &ItemSource| matches!(s, ItemSource::Doc(r) if index.is_local_config(*r));
        let expansion = flatten(&resolved, dir, budget, &local_config);
        self.scan_objects_left -= expansion.items.len();
        Arc::new(expansion)
    }

    /// Resolves `dir` without expanding it: for the preparing pass, which works out edits as
    /// it resolves.
    pub(super) fn expand_quietly(&mut self, dir: &str, mode: &DirectoryMode) {
        self.resolve(dir, mode);
    }

    /// Builds with the edits of [`super::prepare_edits`] (see [`Expander::with_edits`]).
    pub fn use_edits(&mut self, table: Arc<EditTable>) {
        self.edits = EditMode::Build(Some(table));
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

    /// Resolves the kustomization `k` of `dir`: its resources, then each of its components
    /// applied over what was gathered so far (a Component's transforms reach everything its
    /// includer gathered before it, not only its own objects), then its generated objects,
    /// with its own transforms over all of it. Each level a Component makes is numbered in
    /// the order it is made, so that the edits the preparing pass worked out for it are found
    /// again ([`LevelKey`]).
    fn resolve_kustomization(&mut self, dir: &str, k: usize, depth: usize) -> Resolved {
        self.reached.insert(dir.to_owned());
        let Some(pieces) = self.pieces(dir, k, depth) else {
            return Resolved {
                origin: Some(Location::new(&self.index.files[k].path, 1)),
                ..Resolved::default()
            };
        };
        let Pieces {
            origin,
            resources,
            components,
            generated,
            transform,
        } = pieces;
        let mut level = 0;
        let mut gathered = resources;
        for component in components {
            gathered = self.apply_component(gathered, component, dir, &mut level, depth);
        }
        let mut out = Resolved {
            origin: Some(origin),
            transform,
            ..Resolved::default()
        };
        if level == 0 {
            // No component: the resources are this level's own parts, as they always were.
            out.problems = std::mem::take(&mut gathered.problems);
            out.count = gathered.count;
            out.parts = gathered.parts;
        } else {
            out.push_nested(None, Arc::new(gathered));
        }
        for part in generated {
            match part {
                Part::Object(leaf) => out.push_leaf(leaf),
                Part::Nested { hop, inner } => out.push_nested(hop, inner),
            }
        }
        self.set_edits(&mut out, dir, 0, k);
        self.visiting.remove(dir);
        // Resolved kustomizations live as long as the topology build: no room to spare.
        out.parts.shrink_to_fit();
        out
    }

    /// The level a Component makes over `gathered`: its resources join what was gathered,
    /// its own components apply over both, its generated objects follow, and its transforms
    /// apply to all of it.
    fn apply_component(
        &mut self,
        gathered: Resolved,
        component: ComponentRef,
        includer: &str,
        level: &mut u32,
        depth: usize,
    ) -> Resolved {
        let ComponentRef { hop, dir, file } = component;
        // Each Component wraps what was gathered in two more levels: a bound keeps walks of
        // the tree (recursive) shallow.
        if *level >= MAX_COMPONENTS {
            let mut out = gathered;
            out.problems.push(Problem {
                location: hop.location.clone(),
                reason: format!(
                    "more than {MAX_COMPONENTS} Components apply here: {dir} and the ones after it are not applied"
                ),
            });
            return out;
        }
        if self.visiting.contains(&dir) {
            let mut out = gathered;
            out.problems.push(Problem {
                location: hop.location.clone(),
                reason: format!("kustomization cycle: {dir} includes itself"),
            });
            return out;
        }
        if depth > MAX_DEPTH {
            let mut out = gathered;
            out.problems.push(Problem {
                location: hop.location.clone(),
                reason: format!("kustomizations nested deeper than {MAX_DEPTH}"),
            });
            return out;
        }
        self.reached.insert(dir.clone());
        let Some(pieces) = self.pieces(&dir, file, depth + 1) else {
            return gathered;
        };
        let Pieces {
            origin,
            resources,
            components,
            generated,
            transform,
        } = pieces;
        let mut inner = Resolved::default();
        inner.push_nested(None, Arc::new(gathered));
        inner.push_nested(Some(hop), Arc::new(resources));
        for nested in components {
            inner = self.apply_component(inner, nested, includer, level, depth + 1);
        }
        self.visiting.remove(&dir);
        *level += 1;
        let mut out = Resolved {
            origin: Some(origin),
            transform,
            ..Resolved::default()
        };
        out.push_nested(None, Arc::new(inner));
        for part in generated {
            match part {
                Part::Object(leaf) => out.push_leaf(leaf),
                Part::Nested { hop, inner } => out.push_nested(hop, inner),
            }
        }
        self.set_edits(&mut out, includer, *level, file);
        out
    }

    /// What the kustomization (or Component) `k` of `dir` says, read once per inclusion:
    /// `None` when the file holds no document. Marks `dir` as being visited (the caller
    /// unmarks it), so that includes that come back to it are cycles.
    // Long by design: one pass over a kustomization's fields, in kustomize's order.
    fn pieces(&mut self, dir: &str, k: usize, depth: usize) -> Option<Pieces> {
        let index = self.index;
        let file = &index.files[k];
        let doc = file.documents.first()?;
        self.visiting.insert(dir.to_owned());
        let root = &doc.root;
        let at = |line: u32| Location::new(&file.path, line);
        let mut resources = Resolved::default();
        let mut components = Vec::new();

        // resources and bases: objects (files) or other kustomizations (directories);
        // components: kustomizations applied over what was gathered.
        for (key, include) in [
            ("resources", IncludeKey::Resources),
            ("bases", IncludeKey::Bases),
            ("components", IncludeKey::Components),
        ] {
            for (entry, line) in string_entries(root, key) {
                let hop = Evidence::shared(at(line), self.include_hop(include, &entry));
                if is_remote(&entry) {
                    resources.problems.push(Problem {
                        location: at(line),
                        reason: format!("remote {key} entry {entry} is outside this repository"),
                    });
                    continue;
                }
                let Some(target) = index::join(dir, &entry, false) else {
                    resources.problems.push(Problem {
                        location: at(line),
                        reason: format!("{key} entry {entry} leaves the repository"),
                    });
                    continue;
                };
                if let Some(f) = index.file(&target) {
                    for r in index.manifests_of(f) {
                        resources.push_leaf(Leaf {
                            source: ItemSource::Doc(r),
                            hop: Some(hop.clone()),
                            namespace: None,
                            patch: false,
                        });
                    }
                } else if index.is_dir(&target) {
                    match index.kustomization_in(&target) {
                        Some(nk) if include == IncludeKey::Components => {
                            components.push(ComponentRef {
                                hop,
                                dir: target,
                                file: nk,
                            });
                        }
                        Some(nk) => {
                            let nested = self.resolve_kustomization_guarded(
                                &target,
                                nk,
                                depth + 1,
                                Some(&at(line)),
                            );
                            resources.push_nested(Some(hop), nested);
                        }
                        None => resources.problems.push(Problem {
                            location: at(line),
                            reason: format!(
                                "{key} entry {entry}: directory {target} has no kustomization"
                            ),
                        }),
                    }
                } else {
                    resources.problems.push(Problem {
                        location: at(line),
                        reason: format!(
                            "{key} entry {entry}: {target} does not exist (or holds no YAML)"
                        ),
                    });
                }
            }
        }

        // Strategic-merge patches change objects from the bases; they are placed with them
        // (under the same Components, so that they share the objects' identity) so that rules
        // see the values they set (an env var in a patch lands on the cluster too). JSON
        // patches are applied to the objects instead (see `edit`).
        let mut patch_paths: Vec<(String, u32)> = string_entries(root, "patchesStrategicMerge");
        if let Some(patches) = root.get("patches").and_then(Node::as_seq) {
            // One with a `target` is also edited into the objects it selects (see `edit`).
            for p in patches {
                if let Some(e) = p.entry("path") {
                    if let Some(path) = e.value.as_str() {
                        patch_paths.push((path.to_owned(), e.key.span.line));
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
                resources.problems.push(Problem {
                    location: at(line),
                    reason: format!("patch {entry} does not exist"),
                });
                continue;
            };
            // One that deletes its object is no partial object: it is an edit.
            for r in index
                .manifests_of(f)
                .filter(|r| !super::edit::deletes(&index.doc(*r).root))
            {
                resources.push_leaf(Leaf {
                    source: ItemSource::Doc(r),
                    hop: Some(Evidence::shared(
                        at(line),
                        self.include_hop(IncludeKey::Patch, &entry),
                    )),
                    namespace: None,
                    patch: true,
                });
            }
        }

        // Generators create ConfigMaps and Secrets (with a hash suffix we do not compute).
        let mut generated = Resolved::default();
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
                let line = name_entry.key.span.line;
                let merging = matches!(
                    generator.get("behavior").and_then(Node::as_str),
                    Some("merge") | Some("replace")
                );
                for files_key in ["files", "envs"] {
                    for (path, pline) in string_entries(generator, files_key) {
                        // `files` entries may be `key=path`.
                        let path = path
                            .rsplit_once('=')
                            .map_or(path.as_str(), |(_, p)| p)
                            .to_owned();
                        if index::join(dir, &path, false).is_none() {
                            generated.problems.push(Problem {
                                location: at(pline),
                                reason: format!(
                                    "{key} {files_key} entry {path} leaves the repository"
                                ),
                            });
                        }
                    }
                }
                generated.push_leaf(Leaf {
                    source: ItemSource::Generated(Box::new(Generator {
                        file: k,
                        line,
                        kind,
                        name: name.to_owned(),
                    })),
                    hop: Some(Evidence::new(
                        at(line),
                        Hop::Generated(Box::new(GeneratedHop {
                            generator: key.into(),
                            name: name.into(),
                        })),
                    )),
                    namespace: generator
                        .get("namespace")
                        .and_then(Node::as_str)
                        .map(CompactString::from),
                    patch: merging,
                });
            }
        }
        for (field, legacy) in [("helmCharts", false), ("helmChartInflationGenerator", true)] {
            for entry in root.get(field).and_then(Node::as_seq).unwrap_or(&[]) {
                self.inflate(dir, k, root, entry, legacy, &mut generated);
            }
        }
        resources.problems.append(&mut generated.problems);

        // This level's transforms apply to everything it gathered; outer levels apply later
        // and win for the namespace, and wrap prefixes and suffixes (see `Flattener::item`).
        // Old kustomizations spell `namePrefix` and `nameSuffix` in lower case, and kustomize
        // still reads them so.
        let text = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| root.get(k).and_then(Node::as_str))
                .map(str::to_owned)
        };
        let transform = Transform {
            namespace: text(&["namespace"]).map(CompactString::from),
            prefix: text(&["namePrefix", "nameprefix"]).unwrap_or_default(),
            suffix: text(&["nameSuffix", "namesuffix"]).unwrap_or_default(),
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
            edits: None,
        };
        Some(Pieces {
            origin: Location::new(&file.path, 1),
            resources,
            components,
            generated: generated.parts,
            transform,
        })
    }
}

/// A `components` entry: the include's hop, the Component's folder and file.
pub(super) struct ComponentRef {
    hop: Evidence,
    dir: String,
    file: usize,
}

/// What one kustomization file says, before it is put together with what includes it.
struct Pieces {
    origin: Location,
    /// `resources` and `bases` (objects and nested kustomizations) and strategic-merge
    /// patches, in order, with the problems of the whole file.
    resources: Resolved,
    components: Vec<ComponentRef>,
    /// Generated objects (generators, `helmCharts`): after the components, untouched by them.
    generated: Vec<Part>,
    transform: Transform,
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
        let location = Location::new(file, entry.span.line);
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
        let hop = Evidence::new(
            location.clone(),
            Hop::KustomizeChart(Box::new(KustomizeChartHop {
                chart: index::basename(&request.chart).into(),
                render: request.describe().into(),
            })),
        );
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
