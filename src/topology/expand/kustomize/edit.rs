//! Edits: what kustomize's JSON patches (`patches`, `patchesJson6902`) and `replacements` do
//! to the objects a kustomization (or a Component, over what its includer gathered) brings
//! together, in kustomize's order: patches before the level's namespace and name affixes,
//! replacements after them. A changed object is a new document (the base's file and lines,
//! the patch's nodes numbered from [`crate::documents::FOREIGN_LINES`] and pointing at the
//! patch's lines), and every field an edit set has a [`Hop::KustomizeEdit`] at that line.
//!
//! The edits are worked out before the topology build, by one pass over the kustomizations
//! that have any ([`prepare_edits`]): a level's edits need the objects under it as inner
//! levels left them, which the build's own expansion only yields at the top. The build then
//! finds each level's edits again by the folder that makes the level and its number there
//! ([`LevelKey`]), and the objects by their path below it.

use std::sync::Arc;

use compact_str::CompactString;

use crate::budget::{Budget, BudgetCut};
use crate::config::Limits;
use crate::documents::yaml::parse_stream;
use crate::documents::{Document, FileKind, Node, SourceFile, FOREIGN_LINES};
use crate::evidence::{Evidence, Hop, KustomizeEdit, KustomizeEditHop};
use crate::location::Location;
use crate::topology::expand::helm;
use crate::topology::index::{self, DocRef, RepoIndex};
use crate::topology::HashMap;

use super::fields::{self, Step};
use super::flatten::gather;
use super::json_patch::{self, Op};
use super::resolve::{EditMode, Expander, Resolved, Transform};
use super::select::{Candidate, Patterns, Selector};
use super::{count_text, placed_identity, DirectoryMode, Item, ItemSource, Problem};

/// The nodes the edits of one scan may copy, per object of `limits.expanded-objects` (by
/// default 2,000,000 nodes, about 100 MB of trees): each changed object is a copy of its
/// document, and objects average far fewer nodes.
const NODES_PER_OBJECT: usize = 20;

/// A level that edits objects: the folder of the kustomization that makes it (the includer,
/// for a Component's level) and its number there (0: the kustomization's own; Components'
/// from 1, in the order they apply).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct LevelKey {
    dir: String,
    number: u32,
}

impl LevelKey {
    pub(super) fn new(dir: &str, number: u32) -> Self {
        LevelKey {
            dir: dir.to_owned(),
            number,
        }
    }
}

/// What one level's edits made of the objects under it, by their path below the level (the
/// position of the part taken at each step down).
#[derive(Debug, Default)]
pub(super) struct Edits {
    objects: HashMap<Box<[u32]>, Edit>,
    /// The objects as they are when this level is the top of a build: with its vars (and
    /// those of every kustomization under it) substituted.
    top: HashMap<Box<[u32]>, Edit>,
}

impl Edits {
    pub(super) fn at(&self, path: &[u32]) -> Option<&Edit> {
        self.objects.get(path)
    }

    /// When the level is the top of the expansion: with its vars substituted.
    pub(super) fn at_root(&self, path: &[u32]) -> Option<&Edit> {
        self.top.get(path).or_else(|| self.at(path))
    }
}

/// One object as a level's edits left it.
#[derive(Debug)]
pub(super) struct Edit {
    /// The changed document.
    pub(super) doc: DocRef,
    /// Its name and namespace as they stand there (the affixes of the levels inside in
    /// them), or after the level's own namespace and affixes when `after`.
    pub(super) name: Option<CompactString>,
    pub(super) namespace: Option<CompactString>,
    pub(super) after: bool,
    /// Every edit of the object up to this level, innermost first.
    pub(super) hops: Arc<[Evidence]>,
    /// A strategic-merge patch deleted it (`$patch: delete`): kustomize does not output it.
    pub(super) deleted: bool,
}

/// The edits of every level that has any, and the problems found working them out (by the
/// folder whose kustomization makes the level).
#[derive(Debug, Default)]
pub struct EditTable {
    levels: HashMap<LevelKey, Arc<Edits>>,
    problems: HashMap<String, Vec<Problem>>,
}

impl EditTable {
    pub(super) fn edits(&self, key: &LevelKey) -> Option<Arc<Edits>> {
        self.levels.get(key).cloned()
    }

    pub(super) fn problems(&self, dir: &str) -> &[Problem] {
        self.problems.get(dir).map_or(&[], Vec::as_slice)
    }
}

/// The preparing pass's state, inside its [`Expander`].
pub struct Preparing {
    /// `DocRef::file` of the first changed document: the index's files come before.
    first: usize,
    files: Vec<SourceFile>,
    origins: Vec<DocRef>,
    table: EditTable,
    /// Objects one level may gather (`limits.kustomize-objects`).
    level_limit: usize,
    /// Objects all levels may still gather, and nodes still to copy.
    gather_left: usize,
    gather_limit: usize,
    nodes_left: usize,
    nodes_limit: usize,
    cuts: Vec<BudgetCut>,
    patterns: Patterns,
    /// The folders of the builds vars apply to ([`vars::builds_with_vars`]).
    vars_builds: crate::topology::HashSet<String>,
    /// Whether anything under an included node (by its address) names a ConfigMap or Secret.
    names_config: HashMap<usize, (bool, Arc<Resolved>)>,
}

impl Preparing {
    /// Whether an object under `node` names a ConfigMap or Secret (`envFrom`, `valueFrom`,
    /// volumes): each included node is looked at once, however many levels share it.
    fn names_config(&mut self, index: &RepoIndex<'_>, node: &Resolved) -> bool {
        node.parts.iter().any(|part| match part {
            super::resolve::Part::Object(leaf) => leaf.source.doc().is_some_and(|r| {
                self.doc(index, r)
                    .root
                    .find_entry(|e| {
                        e.key
                            .as_str()
                            .is_some_and(|k| REFERENCES.iter().any(|(key, _, _)| *key == k))
                    })
                    .is_some()
            }),
            super::resolve::Part::Nested { inner, .. } => {
                let key = Arc::as_ptr(inner) as usize;
                if let Some((known, _)) = self.names_config.get(&key) {
                    return *known;
                }
                let found = self.names_config(index, inner);
                // The node is kept with its answer: its address names no other node after.
                self.names_config.insert(key, (found, Arc::clone(inner)));
                found
            }
        })
    }

    pub(super) fn doc<'s>(&'s self, index: &'s RepoIndex<'_>, r: DocRef) -> &'s Document {
        match r.file().checked_sub(self.first) {
            Some(i) => &self.files[i].documents[r.doc()],
            None => index.doc(r),
        }
    }
}

/// What [`prepare_edits`] worked out: the changed documents (one file each, in `DocRef`
/// order from the index's end), the document each was made from, the table of edits the
/// build's expander reads, and the budgets that cut the work short.
#[derive(Debug, Default)]
pub struct Prepared {
    pub files: Vec<SourceFile>,
    pub origins: Vec<DocRef>,
    pub table: Arc<EditTable>,
    pub cuts: Vec<BudgetCut>,
}

/// Works out the edits of every kustomization of `index` that has some (its own, or its
/// Components'), within the scan's budgets.
pub fn prepare_edits(
    index: &RepoIndex<'_>,
    renders: Option<&helm::Renders>,
    limits: &Limits,
) -> Prepared {
    use rayon::prelude::*;
    let vars_builds = super::vars::builds_with_vars(index);
    // Every kustomization is looked at (thousands in a monorepo), each alone: on all cores.
    let mut dirs: Vec<(String, usize)> = index
        .files
        .par_iter()
        .enumerate()
        .filter(|(_, f)| f.kind == FileKind::Kustomization)
        .filter_map(|(k, f)| {
            let dir = index::parent(&f.path);
            (vars_builds.contains(dir) || edits_here_or_in_components(index, dir, k))
                .then(|| (dir.to_owned(), k))
        })
        .collect();
    if dirs.is_empty() {
        return Prepared::default();
    }
    dirs.sort();
    let mut expander =
        Expander::with_limits(index, limits.kustomize_objects, limits.expanded_objects);
    if let Some(renders) = renders {
        expander = expander.with_renders(renders);
    }
    expander.edits = EditMode::Prepare(Box::new(Preparing {
        first: index.first_changed(),
        files: Vec::new(),
        origins: Vec::new(),
        table: EditTable::default(),
        level_limit: limits.kustomize_objects,
        gather_left: limits.expanded_objects,
        gather_limit: limits.expanded_objects,
        nodes_left: limits.expanded_objects.saturating_mul(NODES_PER_OBJECT),
        nodes_limit: limits.expanded_objects.saturating_mul(NODES_PER_OBJECT),
        cuts: Vec::new(),
        patterns: Patterns::default(),
        vars_builds,
        names_config: HashMap::default(),
    }));
    for (dir, _) in &dirs {
        expander.expand_quietly(dir, &DirectoryMode::default());
    }
    let EditMode::Prepare(p) = std::mem::replace(&mut expander.edits, EditMode::Build(None)) else {
        return Prepared::default();
    };
    let p = *p;
    Prepared {
        files: p.files,
        origins: p.origins,
        table: Arc::new(p.table),
        cuts: p.cuts,
    }
}

/// Whether the kustomization `k` of `dir`, or a Component it applies (and theirs), edits
/// objects: JSON patches or replacements.
fn edits_here_or_in_components(index: &RepoIndex<'_>, dir: &str, k: usize) -> bool {
    let mut seen = Vec::new();
    let mut todo = vec![(dir.to_owned(), k)];
    while let Some((dir, k)) = todo.pop() {
        if seen.contains(&k) || seen.len() > 256 {
            continue;
        }
        seen.push(k);
        let Some(root) = index.files[k].documents.first().map(|d| &d.root) else {
            continue;
        };
        if has_edits(index, &dir, root) {
            return true;
        }
        for (entry, _) in super::string_entries(root, "components") {
            let Some(target) = index::join(&dir, &entry, false) else {
                continue;
            };
            if let Some(ck) = index.kustomization_in(&target) {
                todo.push((target, ck));
            }
        }
    }
    false
}

/// Whether a kustomization has JSON patches, replacements, or labels and annotations for all.
fn has_edits(index: &RepoIndex<'_>, dir: &str, root: &Node) -> bool {
    let listed = |key: &str| {
        root.get(key)
            .and_then(Node::as_seq)
            .is_some_and(|s| !s.is_empty())
    };
    let mapped = |key: &str| {
        root.get(key)
            .and_then(Node::as_map)
            .is_some_and(|m| !m.is_empty())
    };
    let text = |key: &str| {
        root.get(key)
            .and_then(Node::as_str)
            .is_some_and(|t| !t.is_empty())
    };
    // A level that renames objects renames the references to its ConfigMaps and Secrets.
    let renames = ["namePrefix", "nameprefix", "nameSuffix", "namesuffix"]
        .into_iter()
        .any(text);
    if renames
        || listed("patchesJson6902")
        || listed("replacements")
        || listed("labels")
        || mapped("commonLabels")
        || mapped("commonAnnotations")
    {
        return true;
    }
    root.get("patches")
        .and_then(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .any(|p| patch_source(index, dir, p).is_some())
        || root
            .get("patchesStrategicMerge")
            .and_then(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .any(|p| p.as_str().is_some_and(|t| t.contains('\n')))
        || merge_files(root).into_iter().any(|(path, _)| {
            index::join(dir, path, false)
                .and_then(|t| index.file(&t))
                .is_some_and(|f| index.files[f].documents.iter().any(|d| deletes(&d.root)))
        })
}

/// Where a patch that edits objects is written: inline text (with the number to add to its
/// lines), or a file of the repository.
enum PatchSource<'n> {
    Inline { text: &'n str, shift: u32 },
    File(usize),
}

/// A `patches` entry that edits objects, with whether it is a JSON patch (else a
/// strategic-merge patch with a `target`, or written inline). A strategic-merge patch file
/// without a target is not one: it is placed beside its object.
fn patch_source<'n>(
    index: &RepoIndex<'_>,
    dir: &str,
    entry: &'n Node,
) -> Option<(PatchSource<'n>, bool)> {
    if let Some(node) = entry.get("patch") {
        let text = node.as_str()?;
        let first = text.trim_start();
        // A JSON patch is a list; a strategic-merge patch is a mapping.
        let json = first.starts_with('-') || first.starts_with('[');
        let shift = match node.scalar_kind() {
            crate::documents::yaml::ScalarKind::Block => node.span.line,
            _ => node.span.line.saturating_sub(1),
        };
        return Some((PatchSource::Inline { text, shift }, json));
    }
    let path = entry.get("path").and_then(Node::as_str)?;
    let f = index::join(dir, path, false).and_then(|t| index.file(&t))?;
    let doc = index.files[f].documents.first()?;
    match &doc.root.value {
        crate::documents::Value::Seq(_) => Some((PatchSource::File(f), true)),
        crate::documents::Value::Map(_) if entry.get("target").is_some() => {
            Some((PatchSource::File(f), false))
        }
        _ => None,
    }
}

/// Whether a strategic-merge patch deletes the object it is for (`$patch: delete`).
pub(super) fn deletes(patch: &Node) -> bool {
    patch.get("$patch").and_then(Node::as_str) == Some("delete")
}

/// The strategic-merge patch files of a kustomization (`patchesStrategicMerge`, `patches`
/// entries with a `path`), with the `target` of the entry when it has one.
fn merge_files(root: &Node) -> Vec<(&str, Option<&Node>)> {
    let mut out: Vec<(&str, Option<&Node>)> = root
        .get("patchesStrategicMerge")
        .and_then(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .filter_map(Node::as_str)
        .filter(|p| !p.contains('\n'))
        .map(|p| (p, None))
        .collect();
    for p in root.get("patches").and_then(Node::as_seq).unwrap_or(&[]) {
        if let Some(path) = p.get("path").and_then(Node::as_str) {
            out.push((path, p.get("target")));
        }
    }
    out
}

/// What a patch of a level does.
enum PatchOps {
    /// A JSON patch's operations, each with its location.
    Json(Vec<(Op, Location)>),
    /// A strategic-merge patch, its own identity taken out, and the line of its entry.
    Merge(Node, Location),
    /// A strategic-merge patch that deletes the objects it is for (`$patch: delete`).
    Delete,
}

/// A patch of a level: its target and what it does.
struct Patch {
    target: Selector,
    ops: PatchOps,
    /// Where the patch's value nodes were written, and the number to add to their lines.
    file: Arc<str>,
    shift: u32,
}

/// How a replacement reads or writes a delimited part of a value.
#[derive(Debug, Clone, Default)]
struct Options {
    delimiter: Option<String>,
    index: i64,
    create: bool,
}

impl Options {
    fn read(node: Option<&Node>) -> Options {
        let Some(n) = node else {
            return Options::default();
        };
        Options {
            delimiter: n.get("delimiter").and_then(Node::as_str).map(str::to_owned),
            index: n
                .get("index")
                .and_then(Node::as_str)
                .and_then(|i| i.parse().ok())
                .unwrap_or(0),
            create: n.get("create").and_then(Node::as_str) == Some("true"),
        }
    }
}

struct ReplacementTarget {
    select: Option<Selector>,
    reject: Vec<Selector>,
    paths: Vec<(Vec<Step>, String, Location)>,
    options: Options,
}

struct Replacement {
    source: Selector,
    source_path: (Vec<Step>, String),
    source_options: Options,
    targets: Vec<ReplacementTarget>,
    location: Location,
}

/// A label or annotation a level puts on every object (`commonLabels`, `labels`,
/// `commonAnnotations`), with the line that says so.
struct Mark {
    /// `labels` or `annotations`.
    field: &'static str,
    key: String,
    value: String,
    location: Location,
}

/// The edits a kustomization file asks for, in the order they apply.
#[derive(Default)]
struct LevelSpec {
    patches: Vec<Patch>,
    marks: Vec<Mark>,
    replacements: Vec<Replacement>,
    problems: Vec<Problem>,
}

impl LevelSpec {
    fn is_empty(&self) -> bool {
        self.patches.is_empty() && self.marks.is_empty() && self.replacements.is_empty()
    }
}

fn read_spec(index: &RepoIndex<'_>, dir: &str, file: usize) -> LevelSpec {
    let mut spec = LevelSpec::default();
    let f = &index.files[file];
    let Some(root) = f.documents.first().map(|d| &d.root) else {
        return spec;
    };
    let at = |line: u32| Location::new(&f.path, line);
    // `patches` (JSON patches among them), then the older `patchesJson6902`: kustomize reads
    // the older fields into `patches`, after its own entries.
    for key in ["patches", "patchesJson6902"] {
        for entry in root.get(key).and_then(Node::as_seq).unwrap_or(&[]) {
            let (source, json) = match patch_source(index, dir, entry) {
                Some(s) => s,
                None if key == "patchesJson6902" => {
                    if let Some(e) = entry.entry("path") {
                        spec.problems.push(Problem {
                            location: at(e.key.span.line),
                            reason: format!(
                                "JSON patch {} is not a YAML list of operations envfence reads (a .json file is not read): the objects it targets are taken unpatched",
                                e.value.as_str().unwrap_or("?")
                            ),
                        });
                    }
                    continue;
                }
                None => continue,
            };
            let line = entry.span.line;
            let (tree, file, shift, located): (Node, Arc<str>, u32, bool) = match source {
                PatchSource::Inline { text, shift } => {
                    let Some(doc) = parse_stream(text).docs.into_iter().next() else {
                        continue;
                    };
                    (doc.root, Arc::clone(&f.path), shift, false)
                }
                PatchSource::File(pf) => {
                    let pfile = &index.files[pf];
                    let Some(doc) = pfile.documents.first() else {
                        continue;
                    };
                    (doc.root.clone(), Arc::clone(&pfile.path), 0, true)
                }
            };
            let target = match entry.get("target") {
                Some(t) => Selector::read(t),
                None if !json => Selector::of_object(&tree),
                None => {
                    spec.problems.push(Problem {
                        location: at(line),
                        reason: "a JSON patch without a `target`: kustomize's build fails here"
                            .into(),
                    });
                    continue;
                }
            };
            if !json {
                spec.patches.push(Patch {
                    target,
                    ops: PatchOps::Merge(without_identity(tree), at(line)),
                    file,
                    shift,
                });
                continue;
            }
            let ops = json_patch::parse_ops(&tree).map(|ops| {
                ops.into_iter()
                    .map(|(op, l)| {
                        let location = if located {
                            Location::new(&file, l)
                        } else {
                            at(l + shift)
                        };
                        (op, location)
                    })
                    .collect::<Vec<_>>()
            });
            match ops {
                Ok(ops) => spec.patches.push(Patch {
                    target,
                    ops: PatchOps::Json(ops),
                    file,
                    shift,
                }),
                Err(why) => spec.problems.push(Problem {
                    location: at(line),
                    reason: format!("{why}: kustomize's build fails here"),
                }),
            }
        }
    }
    // Strategic-merge patch files that delete their objects (`$patch: delete`).
    for (entry, target) in merge_files(root) {
        let Some(pf) = index::join(dir, entry, false).and_then(|t| index.file(&t)) else {
            continue;
        };
        for doc in index.files[pf]
            .documents
            .iter()
            .filter(|d| deletes(&d.root))
        {
            spec.patches.push(Patch {
                target: target.map_or_else(|| Selector::of_object(&doc.root), Selector::read),
                ops: PatchOps::Delete,
                file: Arc::clone(&index.files[pf].path),
                shift: 0,
            });
        }
    }
    // Strategic-merge patches written inline in `patchesStrategicMerge`.
    for entry in root
        .get("patchesStrategicMerge")
        .and_then(Node::as_seq)
        .unwrap_or(&[])
    {
        let Some(text) = entry.as_str().filter(|t| t.contains('\n')) else {
            continue;
        };
        let shift = match entry.scalar_kind() {
            crate::documents::yaml::ScalarKind::Block => entry.span.line,
            _ => entry.span.line.saturating_sub(1),
        };
        for doc in parse_stream(text).docs {
            spec.patches.push(Patch {
                target: Selector::of_object(&doc.root),
                ops: PatchOps::Merge(without_identity(doc.root), at(entry.span.line)),
                file: Arc::clone(&f.path),
                shift,
            });
        }
    }
    // `commonLabels`, `labels` (`pairs` of each entry) and `commonAnnotations`: on every
    // object's metadata (the selectors and templates they may also reach are not read).
    let mut mark = |field: &'static str, map: Option<&Node>| {
        for e in map.and_then(Node::as_map).unwrap_or(&[]) {
            let Some(key) = e.key.as_str() else { continue };
            spec.marks.push(Mark {
                field,
                key: key.to_owned(),
                value: e.value.as_str().unwrap_or_default().to_owned(),
                location: at(e.key.span.line),
            });
        }
    };
    mark("labels", root.get("commonLabels"));
    for entry in root.get("labels").and_then(Node::as_seq).unwrap_or(&[]) {
        mark("labels", entry.get("pairs"));
    }
    mark("annotations", root.get("commonAnnotations"));
    for entry in root
        .get("replacements")
        .and_then(Node::as_seq)
        .unwrap_or(&[])
    {
        match entry.get("path").and_then(Node::as_str) {
            Some(path) => {
                let found = index::join(dir, path, false).and_then(|t| index.file(&t));
                let Some(rf) = found else {
                    spec.problems.push(Problem {
                        location: at(entry.span.line),
                        reason: format!("replacements file {path} does not exist (or is not YAML)"),
                    });
                    continue;
                };
                let rfile = &index.files[rf];
                for doc in rfile.documents.iter() {
                    let items: Vec<&Node> = match doc.root.as_seq() {
                        Some(items) => items.iter().collect(),
                        None => vec![&doc.root],
                    };
                    for item in items {
                        read_replacement(item, &rfile.path, &mut spec);
                    }
                }
            }
            None => read_replacement(entry, &f.path, &mut spec),
        }
    }
    spec
}

/// A strategic-merge patch without the fields that name its object: kustomize merges it into
/// the objects its target selects, whatever it names.
fn without_identity(mut patch: Node) -> Node {
    if let crate::documents::Value::Map(entries) = &mut patch.value {
        let kept: Vec<crate::documents::yaml::Entry> = std::mem::take(entries)
            .into_vec()
            .into_iter()
            .filter(|e| !matches!(e.key.as_str(), Some("apiVersion" | "kind")))
            .map(|mut e| {
                if e.key.as_str() == Some("metadata") {
                    if let crate::documents::Value::Map(m) = &mut e.value.value {
                        let m2: Vec<crate::documents::yaml::Entry> = std::mem::take(m)
                            .into_vec()
                            .into_iter()
                            .filter(|x| !matches!(x.key.as_str(), Some("name" | "namespace")))
                            .collect();
                        *m = m2.into_boxed_slice();
                    }
                }
                e
            })
            .collect();
        *entries = kept.into_boxed_slice();
    }
    patch
}

fn read_replacement(node: &Node, file: &Arc<str>, spec: &mut LevelSpec) {
    let at = |line: u32| Location::new(file, line);
    let Some(source_entry) = node.entry("source") else {
        spec.problems.push(Problem {
            location: at(node.span.line),
            reason: "a replacement without a `source`: kustomize's build fails here".into(),
        });
        return;
    };
    let source = &source_entry.value;
    let path_text = source
        .get("fieldPath")
        .and_then(Node::as_str)
        .unwrap_or("metadata.name")
        .to_owned();
    let Some(path) = fields::steps(&path_text) else {
        spec.problems.push(Problem {
            location: at(source.span.line),
            reason: format!("replacement source fieldPath {path_text} cannot be read"),
        });
        return;
    };
    let mut targets = Vec::new();
    for t in node.get("targets").and_then(Node::as_seq).unwrap_or(&[]) {
        let mut paths = Vec::new();
        for p in t.get("fieldPaths").and_then(Node::as_seq).unwrap_or(&[]) {
            let Some(text) = p.as_str() else { continue };
            match fields::steps(text) {
                Some(steps) => paths.push((steps, text.to_owned(), at(p.span.line))),
                None => spec.problems.push(Problem {
                    location: at(p.span.line),
                    reason: format!("replacement target fieldPath {text} cannot be read"),
                }),
            }
        }
        targets.push(ReplacementTarget {
            select: t.get("select").map(Selector::read),
            reject: t
                .get("reject")
                .and_then(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .map(Selector::read)
                .collect(),
            paths,
            options: Options::read(t.get("options")),
        });
    }
    spec.replacements.push(Replacement {
        source: Selector::read(source),
        source_path: (path, path_text),
        source_options: Options::read(source.get("options")),
        targets,
        location: at(source_entry.key.span.line),
    });
}

/// A copy of a document being edited, and where the nodes it took from elsewhere come from.
struct Work {
    root: Node,
    origins: Vec<Location>,
    lines: HashMap<(Arc<str>, u32), u32>,
}

impl Work {
    fn new(doc: &Document) -> Work {
        Work {
            root: doc.root.clone(),
            origins: doc
                .origins
                .as_deref()
                .map(<[Location]>::to_vec)
                .unwrap_or_default(),
            lines: HashMap::default(),
        }
    }

    /// The line that stands for `file:line` in this document.
    fn line_for(&mut self, file: &Arc<str>, line: u32) -> u32 {
        let origins = &mut self.origins;
        *self
            .lines
            .entry((Arc::clone(file), line))
            .or_insert_with(|| {
                origins.push(Location::new(file, line));
                FOREIGN_LINES.saturating_add(origins.len() as u32 - 1)
            })
    }
}

/// An object a level gathered, as its edits see it.
struct Obj<'d> {
    item: Item,
    doc: Option<&'d Document>,
    original: Option<&'d Document>,
    kind: CompactString,
    /// The name and namespace before the level's own transforms.
    name: Option<CompactString>,
    namespace: Option<CompactString>,
    work: Option<Work>,
    hops: Vec<Evidence>,
    after: bool,
    deleted: bool,
}

impl Obj<'_> {
    fn editable(&self) -> bool {
        !self.item.patch && self.doc.is_some() && !self.deleted
    }

    fn candidate<'c>(
        &'c self,
        current: (&'c str, &'c str),
        empty: &'c std::collections::BTreeMap<String, String>,
    ) -> Candidate<'c> {
        let doc = self.doc;
        let original = self.original.or(doc);
        Candidate {
            api_version: doc.and_then(|d| d.id.api_version.as_deref()).unwrap_or(
                match self.kind.as_str() {
                    "ConfigMap" | "Secret" => "v1",
                    _ => "",
                },
            ),
            kind: &self.kind,
            original: (
                original
                    .and_then(|d| d.id.name.as_deref())
                    .unwrap_or(current.0),
                original
                    .and_then(|d| d.id.namespace.as_deref())
                    .unwrap_or(""),
            ),
            current,
            labels: doc.map_or(empty, |d| &d.labels),
            annotations: doc.map_or(empty, |d| &d.annotations),
        }
    }

    /// The tree as it stands (the copy when there is one).
    fn tree(&self) -> Option<&Node> {
        self.work
            .as_ref()
            .map(|w| &w.root)
            .or(self.doc.map(|d| &d.root))
    }
}

/// Counts the nodes of a tree, up to `most`.
fn nodes_in(root: &Node, most: usize) -> usize {
    let mut n = 0;
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        n += 1;
        if n > most {
            return n;
        }
        if let Some(items) = node.as_seq() {
            stack.extend(items.iter());
        } else if let Some(entries) = node.as_map() {
            for e in entries {
                stack.push(&e.value);
            }
        }
    }
    n
}

/// An object a level changed: its new document, the one it was first made from, its path
/// below the level, and its [`Edit`].
struct Changed {
    doc: Document,
    original: DocRef,
    path: Box<[u32]>,
    name: Option<CompactString>,
    namespace: Option<CompactString>,
    after: bool,
    hops: Vec<Evidence>,
    /// Only when the level is the top of a build (vars).
    top: bool,
}

/// Works out the edits of one level (see the module's comment) and gives them to it.
pub(super) fn prepare_level(
    ex: &mut Expander<'_>,
    level: &mut Resolved,
    dir: &str,
    number: u32,
    file: usize,
) {
    let index = ex.index();
    // A Component's paths are its own folder's, though its level is its includer's.
    let spec = read_spec(index, index::parent(&index.files[file].path), file);
    let EditMode::Prepare(p) = &mut ex.edits else {
        return;
    };
    if !spec.problems.is_empty() {
        p.table
            .problems
            .entry(dir.to_owned())
            .or_default()
            .extend(spec.problems.iter().cloned());
    }
    // Renaming matters only where something under the level names a ConfigMap or Secret.
    let renames = (!level.transform.prefix.is_empty() || !level.transform.suffix.is_empty())
        && p.names_config(index, level);
    let top_vars = number == 0 && p.vars_builds.contains(dir);
    if spec.is_empty() && !renames && !top_vars {
        return;
    }
    let origin = Location::new(&index.files[file].path, 1);
    let limit = p.level_limit.min(p.gather_left);
    let Some(items) = gather(level, limit) else {
        let reason = if p.gather_left < p.level_limit {
            p.cuts.push(BudgetCut::new(
                Budget::ExpandedObjects,
                Some(origin.clone()),
                "the edits of this kustomization (JSON patches, replacements, labels, vars) are not applied",
            ));
            format!(
                "the scan's budget of {} objects for kustomize edits (limits.expanded-objects) is spent: the edits of {} (JSON patches, replacements, labels, vars) are not applied",
                count_text(p.gather_limit as u64),
                origin.file
            )
        } else {
            p.cuts.push(BudgetCut::new(
                Budget::KustomizeObjects,
                Some(origin.clone()),
                "the edits of this kustomization (JSON patches, replacements, labels, vars) are not applied",
            ));
            format!(
                "{} gathers more than {} objects (limits.kustomize-objects): its edits (JSON patches, replacements, labels, vars) are not applied",
                origin.file,
                count_text(p.level_limit as u64)
            )
        };
        p.table
            .problems
            .entry(dir.to_owned())
            .or_default()
            .push(Problem {
                location: origin,
                reason,
            });
        return;
    };
    p.gather_left -= items.len();
    let mut patterns = std::mem::take(&mut p.patterns);
    let p: &Preparing = p;
    let mut problems = Vec::new();
    let mut nodes_left = p.nodes_left;
    let mut objs: Vec<Obj<'_>> = items
        .into_iter()
        .map(|item| {
            let doc = match &item.source {
                ItemSource::Doc(r) => Some(p.doc(index, *r)),
                ItemSource::Generated(_) => None,
            };
            let original = match &item.origin {
                ItemSource::Doc(r) => Some(index.doc(*r)),
                ItemSource::Generated(_) => None,
            };
            let (kind, name, namespace) = placed_identity(&item, doc);
            let hops = Vec::new();
            Obj {
                item,
                doc,
                original,
                kind,
                name,
                namespace,
                work: None,
                hops,
                after: false,
                deleted: false,
            }
        })
        .collect();
    let mut out_of_nodes = false;
    for patch in &spec.patches {
        apply_patch(
            patch,
            &mut objs,
            &mut patterns,
            &mut problems,
            &mut nodes_left,
            &mut out_of_nodes,
        );
    }
    if !spec.marks.is_empty() {
        for obj in objs.iter_mut() {
            if !obj.editable() || !ensure_work(obj, &mut nodes_left, &mut out_of_nodes) {
                continue;
            }
            let Some(work) = obj.work.as_mut() else {
                continue;
            };
            for m in &spec.marks {
                let line = work.line_for(&m.location.file, m.location.line);
                let steps = [
                    Step::Key("metadata".into()),
                    Step::Key(m.field.into()),
                    Step::Key(m.key.clone()),
                ];
                let value = scalar_on(&m.value, line);
                // An object without metadata is not one kustomize outputs: nothing to mark.
                let _ = fields::set(&mut work.root, &steps, true, &mut |_| Some(value.clone()));
            }
        }
    }
    if !spec.replacements.is_empty() {
        let transform = &level.transform;
        let generated = GeneratedData { index };
        for r in &spec.replacements {
            apply_replacement(
                r,
                &mut objs,
                transform,
                &generated,
                &mut patterns,
                &mut problems,
                &mut nodes_left,
                &mut out_of_nodes,
            );
        }
    }
    if renames {
        rename_references(
            &mut objs,
            &level.transform,
            &mut nodes_left,
            &mut out_of_nodes,
        );
    }
    // With the level on top, its vars and those under it are substituted too.
    let top = if top_vars {
        substitute_vars(index, level, &objs, &mut nodes_left, &mut out_of_nodes)
    } else {
        Vec::new()
    };
    // The changed documents, and the level's edits of them.
    let mut changed: Vec<Changed> = top;
    let mut deleted: Vec<(Box<[u32]>, DocRef)> = Vec::new();
    for obj in objs {
        if obj.deleted {
            if let ItemSource::Doc(r) = obj.item.source {
                deleted.push((obj.item.path, r));
            }
            continue;
        }
        let (Some(work), Some(doc)) = (obj.work, obj.doc) else {
            continue;
        };
        let original = match obj.item.origin {
            ItemSource::Doc(r) => r,
            ItemSource::Generated(_) => continue,
        };
        let mut hops: Vec<Evidence> = obj
            .item
            .chain
            .iter()
            .filter(|e| matches!(*e.hop, Hop::KustomizeEdit(_)))
            .cloned()
            .collect();
        hops.extend(obj.hops);
        let (name, namespace) = if obj.after {
            after_level(
                &obj.kind,
                obj.name.as_deref(),
                obj.namespace.as_deref(),
                &level.transform,
            )
        } else {
            (obj.name, obj.namespace)
        };
        changed.push(Changed {
            doc: Document::changed(doc, work.root, work.origins),
            original,
            path: obj.item.path,
            name,
            namespace,
            after: obj.after,
            hops,
            top: false,
        });
    }
    let EditMode::Prepare(p) = &mut ex.edits else {
        return;
    };
    p.patterns = patterns;
    p.nodes_left = nodes_left;
    if out_of_nodes {
        p.cuts.push(BudgetCut::new(
            Budget::ExpandedObjects,
            Some(origin.clone()),
            "some JSON patches, replacements, labels and vars are not applied",
        ));
        problems.push(Problem {
            location: origin,
            reason: format!(
                "kustomize edits may copy at most {} nodes of documents in one scan ({} per object of limits.expanded-objects): the rest of the JSON patches, replacements, labels and vars are not applied",
                count_text(p.nodes_limit as u64),
                NODES_PER_OBJECT
            ),
        });
    }
    if !problems.is_empty() {
        p.table
            .problems
            .entry(dir.to_owned())
            .or_default()
            .extend(problems);
    }
    if changed.is_empty() && deleted.is_empty() {
        return;
    }
    let mut edits = Edits::default();
    for (path, doc) in deleted {
        edits.objects.insert(
            path,
            Edit {
                doc,
                name: None,
                namespace: None,
                after: false,
                hops: Arc::from(Vec::new()),
                deleted: true,
            },
        );
    }
    for Changed {
        doc,
        original,
        path,
        name,
        namespace,
        after,
        hops,
        top,
    } in changed
    {
        let r = DocRef::new(p.first + p.files.len(), 0);
        p.files.push(SourceFile {
            path: Arc::clone(&doc.file),
            kind: doc.file_kind,
            documents: Arc::from(vec![doc]),
            problem: None,
        });
        p.origins.push(original);
        let map = if top {
            &mut edits.top
        } else {
            &mut edits.objects
        };
        map.insert(
            path,
            Edit {
                doc: r,
                name,
                namespace,
                after,
                hops: Arc::from(hops),
                deleted: false,
            },
        );
    }
    let edits = Arc::new(edits);
    level.transform.edits = Some(Arc::clone(&edits));
    p.table.levels.insert(LevelKey::new(dir, number), edits);
}

/// A name and namespace once a level's own transforms apply (see [`placed_identity`]).
fn after_level(
    kind: &str,
    name: Option<&str>,
    namespace: Option<&str>,
    t: &Transform,
) -> (Option<CompactString>, Option<CompactString>) {
    super::transformed(
        kind,
        name,
        namespace,
        &t.prefix,
        &t.suffix,
        t.namespace.as_deref(),
    )
}

/// The kustomization files of a level and everything under it, each once.
fn kustomizations_under(level: &Resolved, index: &RepoIndex<'_>) -> Vec<usize> {
    let mut out = Vec::new();
    let mut seen = crate::topology::HashSet::default();
    let mut stack = vec![level];
    while let Some(node) = stack.pop() {
        if !seen.insert(std::ptr::from_ref(node) as usize) {
            continue;
        }
        if let Some(k) = node.origin.as_ref().and_then(|o| index.file(&o.file)) {
            if !out.contains(&k) {
                out.push(k);
            }
        }
        for part in &node.parts {
            if let super::resolve::Part::Nested { inner, .. } = part {
                stack.push(inner);
            }
        }
    }
    out.sort_unstable();
    out
}

/// The objects of a level that is the top of a build, with the vars of every kustomization
/// under it substituted (after the level's own transforms, as kustomize does last): one
/// [`Changed`] for each object a var reached.
fn substitute_vars(
    index: &RepoIndex<'_>,
    level: &Resolved,
    objs: &[Obj<'_>],
    nodes_left: &mut usize,
    out_of_nodes: &mut bool,
) -> Vec<Changed> {
    let mut vars = Vec::new();
    let mut reach = Vec::new();
    for k in kustomizations_under(level, index) {
        super::vars::read(index, k, &mut vars, &mut reach);
    }
    if vars.is_empty() {
        return Vec::new();
    }
    let t = &level.transform;
    let identities: Vec<(Option<CompactString>, Option<CompactString>)> = objs
        .iter()
        .map(|o| after_level(&o.kind, o.name.as_deref(), o.namespace.as_deref(), t))
        .collect();
    // Each var's value: the field of the one object its `objref` names.
    let mut values: HashMap<&str, String> = HashMap::default();
    for v in &vars {
        let found = objs.iter().zip(&identities).find(|(o, (name, _))| {
            let original = o.original.and_then(|d| d.id.name.as_deref());
            !o.item.patch
                && v.kind.as_deref().is_none_or(|k| k == o.kind)
                && v.object.as_deref().is_none_or(|n| {
                    Some(n) == original
                        || Some(n) == name.as_deref()
                        || Some(n) == o.name.as_deref()
                })
                && v.api_version.as_deref().is_none_or(|a| {
                    o.doc
                        .and_then(|d| d.id.api_version.as_deref())
                        .is_none_or(|have| have == a || have.rsplit('/').next() == Some(a))
                })
        });
        let Some((o, (name, namespace))) = found else {
            continue;
        };
        let value = match v.field.as_str() {
            "metadata.name" => name.as_deref().map(str::to_owned),
            "metadata.namespace" => Some(namespace.as_deref().unwrap_or("default").to_owned()),
            path => fields::steps(path)
                .and_then(|steps| Some(fields::get(o.tree()?, &steps)?.as_str()?.to_owned())),
        };
        if let Some(value) = value {
            values.insert(v.name.as_str(), value);
        }
    }
    let located = super::vars::locations(&vars);
    let mut out = Vec::new();
    for (o, (name, namespace)) in objs.iter().zip(&identities) {
        let (Some(doc), Some(original)) = (o.doc, o.item.origin.doc()) else {
            continue;
        };
        if o.item.patch {
            continue;
        }
        let tree = o.tree().unwrap_or(&doc.root);
        // Only an object that writes `$(` somewhere is copied.
        let mentions = tree
            .find_entry(|e| e.value.as_str().is_some_and(|t| t.contains("$(")))
            .is_some()
            || tree
                .find_entry(|e| {
                    e.value.as_seq().is_some_and(|items| {
                        items
                            .iter()
                            .any(|i| i.as_str().is_some_and(|t| t.contains("$(")))
                    })
                })
                .is_some();
        if !mentions {
            continue;
        }
        let n = nodes_in(tree, *nodes_left);
        if n > *nodes_left {
            *out_of_nodes = true;
            break;
        }
        *nodes_left -= n;
        let mut root = tree.clone();
        let before = root
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Node::as_str)
            .map(str::to_owned);
        let used = super::vars::apply(&mut root, &o.kind, &values, &reach);
        if used.is_empty() {
            continue;
        }
        let after = root
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Node::as_str)
            .map(str::to_owned);
        // A var in the name: the name the level's affixes gave, with the var's value in it.
        let name = match (&before, &after) {
            (Some(b), Some(a)) if b != a => name
                .as_deref()
                .map(|n| CompactString::from(n.replace(b.as_str(), a))),
            _ => name.clone(),
        };
        let mut hops: Vec<Evidence> = o
            .item
            .chain
            .iter()
            .filter(|e| matches!(*e.hop, Hop::KustomizeEdit(_)))
            .cloned()
            .collect();
        hops.extend(o.hops.iter().cloned());
        for var in &used {
            if let Some((location, source)) = located.get(var.as_str()) {
                hops.push(Evidence::new(
                    location.clone(),
                    Hop::KustomizeEdit(Box::new(KustomizeEditHop {
                        edit: KustomizeEdit::Var {
                            name: var.as_str().into(),
                            source: Arc::clone(source),
                        },
                        field: var.as_str().into(),
                        value: values.get(var.as_str()).map(|v| Arc::from(v.as_str())),
                    })),
                ));
            }
        }
        let origins = o
            .work
            .as_ref()
            .map(|w| w.origins.clone())
            .unwrap_or_else(|| {
                doc.origins
                    .as_deref()
                    .map(<[Location]>::to_vec)
                    .unwrap_or_default()
            });
        out.push(Changed {
            doc: Document::changed(doc, root, origins),
            original,
            path: o.item.path.clone(),
            name,
            namespace: namespace.clone(),
            after: true,
            hops,
            top: true,
        });
    }
    out
}

/// Makes sure `obj` has its copy, within the node budget; false when the budget is spent.
fn ensure_work(obj: &mut Obj<'_>, nodes_left: &mut usize, out_of_nodes: &mut bool) -> bool {
    if obj.work.is_some() {
        return true;
    }
    let Some(doc) = obj.doc else { return false };
    let n = nodes_in(&doc.root, *nodes_left);
    if n > *nodes_left {
        *out_of_nodes = true;
        return false;
    }
    *nodes_left -= n;
    obj.work = Some(Work::new(doc));
    true
}

/// The text of a value, for a hop: a scalar's own, nothing for a collection.
fn shown(node: &Node) -> Option<Arc<str>> {
    node.as_str().map(Arc::from)
}

fn apply_patch(
    patch: &Patch,
    objs: &mut [Obj<'_>],
    patterns: &mut Patterns,
    problems: &mut Vec<Problem>,
    nodes_left: &mut usize,
    out_of_nodes: &mut bool,
) {
    let empty = std::collections::BTreeMap::new();
    // Each object the patch applies to gets copies of its values.
    let value_nodes: usize = match &patch.ops {
        PatchOps::Json(ops) => ops
            .iter()
            .filter_map(|(op, _)| op.value())
            .map(|v| nodes_in(v, usize::MAX))
            .fold(0, usize::saturating_add),
        PatchOps::Merge(..) | PatchOps::Delete => 0,
    };
    for obj in objs.iter_mut() {
        if !obj.editable() {
            continue;
        }
        let name = obj.name.clone().unwrap_or_default();
        let namespace = obj.namespace.clone().unwrap_or_default();
        if !patch
            .target
            .selects(&obj.candidate((&name, &namespace), &empty), patterns)
        {
            continue;
        }
        if matches!(patch.ops, PatchOps::Delete) {
            obj.deleted = true;
            continue;
        }
        if !ensure_work(obj, nodes_left, out_of_nodes) {
            return;
        }
        let Some(work) = obj.work.as_mut() else {
            continue;
        };
        let n = nodes_in(&work.root, *nodes_left).saturating_add(value_nodes);
        if n > *nodes_left {
            *out_of_nodes = true;
            return;
        }
        *nodes_left -= n;
        let mut trial = work.root.clone();
        let ops = match &patch.ops {
            PatchOps::Json(ops) => ops,
            PatchOps::Delete => continue,
            PatchOps::Merge(tree, at) => {
                let n = nodes_in(tree, *nodes_left);
                if n > *nodes_left {
                    *out_of_nodes = true;
                    return;
                }
                *nodes_left -= n;
                let mut tree = tree.clone();
                tree.map_lines(&mut |l| work.line_for(&patch.file, l + patch.shift));
                super::merge::merge(&mut trial, &tree, "");
                work.root = trial;
                obj.hops.push(Evidence::new(
                    at.clone(),
                    Hop::KustomizeEdit(Box::new(KustomizeEditHop {
                        edit: KustomizeEdit::StrategicMerge,
                        field: Arc::clone(&patch.file),
                        value: None,
                    })),
                ));
                continue;
            }
        };
        let opened = json_patch::open_annotations(&mut trial);
        let mut hops = Vec::new();
        let mut failed = None;
        for (op, at) in ops {
            let mut op = op.clone();
            if let Some(value) = op.value_mut() {
                value.map_lines(&mut |l| work.line_for(&patch.file, l + patch.shift));
            }
            if let Err(why) = json_patch::apply(&mut trial, &op) {
                failed = Some((at.clone(), why));
                break;
            }
            if !matches!(op, Op::Test { .. }) {
                hops.push(Evidence::new(
                    at.clone(),
                    Hop::KustomizeEdit(Box::new(KustomizeEditHop {
                        edit: KustomizeEdit::JsonPatch { op: op.name() },
                        field: op.path().into(),
                        value: op.value().and_then(shown),
                    })),
                ));
            }
        }
        if opened {
            json_patch::close_annotations(&mut trial);
        }
        if let Some((location, why)) = failed {
            problems.push(Problem {
                location,
                reason: format!(
                    "JSON patch on {}/{} does not apply ({why}): kustomize's build fails here; envfence takes the object unpatched",
                    obj.kind, name
                ),
            });
            continue;
        }
        // A patch that renames the object (or moves it to another namespace) changes its
        // identity: the names of the levels inside are gone with the old name.
        let text_at = |root: &Node, key: &str| {
            root.get("metadata")
                .and_then(|m| m.get(key))
                .and_then(Node::as_str)
                .map(CompactString::from)
        };
        let new_name = text_at(&trial, "name");
        if new_name != text_at(&work.root, "name") {
            obj.name = new_name;
        }
        let new_namespace = text_at(&trial, "namespace");
        if new_namespace != text_at(&work.root, "namespace") {
            obj.namespace = new_namespace;
        }
        work.root = trial;
        obj.hops.extend(hops);
    }
}

/// The fields that name a ConfigMap or Secret of the object's namespace, by the kind they
/// name: under `key`, the name is `field`.
const REFERENCES: &[(&str, &str, &str)] = &[
    ("configMapRef", "name", "ConfigMap"),
    ("configMapKeyRef", "name", "ConfigMap"),
    ("configMap", "name", "ConfigMap"),
    ("secretRef", "name", "Secret"),
    ("secretKeyRef", "name", "Secret"),
    ("secret", "secretName", "Secret"),
];

/// kustomize renames the references to a ConfigMap or Secret that a level's name affixes
/// rename (`envFrom`, `valueFrom`, volumes): the objects the level gathers that name one get
/// the new name.
fn rename_references(
    objs: &mut [Obj<'_>],
    transform: &Transform,
    nodes_left: &mut usize,
    out_of_nodes: &mut bool,
) {
    let mut renamed: HashMap<(&'static str, CompactString), CompactString> = HashMap::default();
    for o in objs.iter() {
        let kind: &'static str = match o.kind.as_str() {
            "ConfigMap" => "ConfigMap",
            "Secret" => "Secret",
            _ => continue,
        };
        let Some(before) = o.name.clone() else {
            continue;
        };
        let (after, _) = after_level(kind, Some(&before), o.namespace.as_deref(), transform);
        if let Some(after) = after.filter(|a| *a != before) {
            renamed.insert((kind, before), after);
        }
    }
    if renamed.is_empty() {
        return;
    }
    let new_name = |key: &str, entry: &crate::documents::yaml::Entry| -> Option<CompactString> {
        let (_, field, kind) = REFERENCES.iter().find(|(k, _, _)| *k == key)?;
        let name = entry.value.get(field)?.as_str()?;
        renamed.get(&(*kind, CompactString::from(name))).cloned()
    };
    for obj in objs.iter_mut().filter(|o| o.editable()) {
        let names_one = obj.tree().is_some_and(|t| {
            t.find_entry(|e| e.key.as_str().is_some_and(|k| new_name(k, e).is_some()))
                .is_some()
        });
        if !names_one || !ensure_work(obj, nodes_left, out_of_nodes) {
            continue;
        }
        let Some(work) = obj.work.as_mut() else {
            continue;
        };
        let mut stack = vec![&mut work.root];
        while let Some(node) = stack.pop() {
            match &mut node.value {
                crate::documents::Value::Map(entries) => {
                    for e in entries.iter_mut() {
                        let to = e.key.as_str().and_then(|k| new_name(k, e).map(|n| (k, n)));
                        if let Some((key, to)) = to {
                            let field = REFERENCES
                                .iter()
                                .find(|(k, _, _)| *k == key)
                                .map_or("name", |(_, f, _)| f);
                            if let crate::documents::Value::Map(inner) = &mut e.value.value {
                                if let Some(slot) = inner
                                    .iter_mut()
                                    .rev()
                                    .find(|i| i.key.as_str() == Some(field))
                                {
                                    slot.value.value = crate::documents::Value::Scalar(to);
                                }
                            }
                        }
                        stack.push(&mut e.value);
                    }
                }
                crate::documents::Value::Seq(items) => stack.extend(items.iter_mut()),
                crate::documents::Value::Scalar(_) => {}
            }
        }
    }
}

/// The `data` of generated ConfigMaps, for replacements that read them: their literals.
struct GeneratedData<'i> {
    index: &'i RepoIndex<'i>,
}

impl GeneratedData<'_> {
    /// `data.KEY` of the object a generator made, from its `literals`.
    fn value(&self, item: &Item, path: &[Step]) -> Option<String> {
        let ItemSource::Generated(g) = &item.origin else {
            return None;
        };
        let [Step::Key(data), Step::Key(key)] = path else {
            return None;
        };
        if data != "data" {
            return None;
        }
        let root = &self.index.files.get(g.file)?.documents.first()?.root;
        for field in ["configMapGenerator", "secretGenerator"] {
            for generator in root.get(field).and_then(Node::as_seq).unwrap_or(&[]) {
                let Some(entry) = generator.entry("name") else {
                    continue;
                };
                if entry.key.span.line != g.line {
                    continue;
                }
                for lit in generator
                    .get("literals")
                    .and_then(Node::as_seq)
                    .unwrap_or(&[])
                {
                    if let Some((k, v)) = lit.as_str().and_then(|l| l.split_once('=')) {
                        if k.trim() == key {
                            return Some(v.to_owned());
                        }
                    }
                }
            }
        }
        None
    }
}

/// The part of `text` a delimiter and index pick (all of it without a delimiter).
fn delimited(text: &str, options: &Options) -> Option<String> {
    let Some(d) = options.delimiter.as_deref().filter(|d| !d.is_empty()) else {
        return Some(text.to_owned());
    };
    let parts: Vec<&str> = text.split(d).collect();
    let i = usize::try_from(options.index).ok()?;
    parts.get(i).map(|s| (*s).to_owned())
}

/// A scalar node holding `text`, on `line`.
fn scalar_on(text: &str, line: u32) -> Node {
    Node::new(
        crate::documents::Span::at(line),
        crate::documents::yaml::ScalarKind::Quoted,
        crate::documents::Value::Scalar(CompactString::from(text)),
    )
}

#[allow(clippy::too_many_arguments)]
fn apply_replacement(
    r: &Replacement,
    objs: &mut [Obj<'_>],
    transform: &Transform,
    generated: &GeneratedData<'_>,
    patterns: &mut Patterns,
    problems: &mut Vec<Problem>,
    nodes_left: &mut usize,
    out_of_nodes: &mut bool,
) {
    let empty = std::collections::BTreeMap::new();
    // Replacements run after the level's namespace and affixes: the names they select and
    // read are the ones those give.
    let identities: Vec<(String, String)> = objs
        .iter()
        .map(|o| {
            let (name, namespace) = after_level(
                &o.kind,
                o.name.as_deref(),
                o.namespace.as_deref(),
                transform,
            );
            (
                name.map(|n| n.to_string()).unwrap_or_default(),
                namespace.map(|n| n.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    let sources: Vec<usize> = objs
        .iter()
        .enumerate()
        .filter(|(i, o)| {
            !o.item.patch
                && r.source.selects(
                    &o.candidate((&identities[*i].0, &identities[*i].1), &empty),
                    patterns,
                )
        })
        .map(|(i, _)| i)
        .collect();
    let fail = |problems: &mut Vec<Problem>, why: String| {
        problems.push(Problem {
            location: r.location.clone(),
            reason: format!(
                "{why}: kustomize's build fails here; envfence leaves the targets as they are"
            ),
        });
    };
    let &[source] = sources.as_slice() else {
        let why = if sources.is_empty() {
            format!(
                "replacement source {} selects no object",
                r.source.describe()
            )
        } else {
            format!(
                "replacement source {} selects {} objects, not one",
                r.source.describe(),
                sources.len()
            )
        };
        fail(problems, why);
        return;
    };
    let (path, path_text) = &r.source_path;
    // The value: the name and namespace as they stand, else the field of the object (or of
    // the literals that generated it).
    let value: Option<Node> = match path.as_slice() {
        [Step::Key(m), Step::Key(k)] if m == "metadata" && (k == "name" || k == "namespace") => {
            let text = if k == "name" {
                &identities[source].0
            } else {
                &identities[source].1
            };
            Some(scalar_on(text, 0))
        }
        _ => objs[source]
            .tree()
            .and_then(|t| fields::get(t, path))
            .cloned()
            .or_else(|| {
                generated
                    .value(&objs[source].item, path)
                    .map(|v| scalar_on(&v, 0))
            }),
    };
    let Some(mut value) = value else {
        fail(
            problems,
            format!(
                "replacement source {} has no field {path_text}",
                r.source.describe()
            ),
        );
        return;
    };
    if r.source_options.delimiter.is_some() {
        let Some(part) = value.as_str().and_then(|t| delimited(t, &r.source_options)) else {
            fail(
                problems,
                format!("replacement source field {path_text} has no such part"),
            );
            return;
        };
        value = scalar_on(&part, 0);
    }
    let source_name = format!("{}/{} {path_text}", objs[source].kind, identities[source].0);
    let text = value.as_str().map(Arc::from);
    for target in &r.targets {
        for (i, obj) in objs.iter_mut().enumerate() {
            if !obj.editable() {
                continue;
            }
            let c = obj.candidate((&identities[i].0, &identities[i].1), &empty);
            let chosen = target
                .select
                .as_ref()
                .is_some_and(|s| s.selects(&c, patterns))
                && !target.reject.iter().any(|s| s.selects(&c, patterns));
            if !chosen {
                continue;
            }
            if !ensure_work(obj, nodes_left, out_of_nodes) {
                return;
            }
            let Some(work) = obj.work.as_mut() else {
                continue;
            };
            for (steps, field, at) in &target.paths {
                let n = nodes_in(&value, *nodes_left);
                if n > *nodes_left {
                    *out_of_nodes = true;
                    return;
                }
                *nodes_left -= n;
                let line = work.line_for(&at.file, at.line);
                let mut new = value.clone();
                new.map_lines(&mut |_| line);
                let options = &target.options;
                let mut write = |present: Option<&Node>| -> Option<Node> {
                    match options.delimiter.as_deref().filter(|d| !d.is_empty()) {
                        None => Some(new.clone()),
                        Some(d) => {
                            let old = present.and_then(Node::as_str).unwrap_or("");
                            let mut parts: Vec<String> = old.split(d).map(str::to_owned).collect();
                            let i = usize::try_from(options.index).ok()?;
                            let put = new.as_str()?.to_owned();
                            match parts.get_mut(i) {
                                Some(slot) => *slot = put,
                                None => parts.push(put),
                            }
                            Some(scalar_on(&parts.join(d), line))
                        }
                    }
                };
                match fields::set(&mut work.root, steps, options.create, &mut write) {
                    Ok(0) => {}
                    Ok(_) => {
                        obj.after = true;
                        obj.hops.push(Evidence::new(
                            at.clone(),
                            Hop::KustomizeEdit(Box::new(KustomizeEditHop {
                                edit: KustomizeEdit::Replacement {
                                    source: source_name.as_str().into(),
                                },
                                field: field.as_str().into(),
                                value: text.clone(),
                            })),
                        ));
                    }
                    Err(why) => problems.push(Problem {
                        location: at.clone(),
                        reason: format!(
                            "replacement target {}/{} has {why} at {field}: kustomize's build fails here",
                            obj.kind, identities[i].0
                        ),
                    }),
                }
            }
        }
    }
}
