//! The document model: every YAML document of every file, with its identity (apiVersion,
//! kind, name, namespace), its labels and annotations, its parsed tree, the comments on its
//! lines, and a way to find the exact line of any field.

mod block_subset;
pub mod comments;
pub mod emit;
pub mod guard;
pub mod path;
pub mod yaml;

use std::collections::BTreeMap;
use std::sync::Arc;

use compact_str::CompactString;
use serde::Serialize;

pub use comments::Comment;
pub use path::{FieldLocation, FieldPath};
pub use yaml::{Node, Pos, Span, Value, YamlError};

use crate::location::Location;

/// What a YAML file is for. Decided from its name and place first, then from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    /// Kubernetes objects (anything with `apiVersion` and `kind`).
    Manifest,
    /// A kustomize `kustomization.yaml`, `kustomization.yml` or `Kustomization`.
    Kustomization,
    /// A Helm `Chart.yaml`.
    HelmChart,
    /// A file under a chart's `templates/`: Go templates, not YAML until rendered.
    HelmTemplate,
    /// Helm values (`values*.yaml`, `*-values.yaml`, or YAML inside a chart).
    HelmValues,
    /// A CI pipeline definition (GitHub Actions, GitLab CI, ...).
    CiWorkflow,
    /// Any other YAML: tool configuration, data, documentation.
    Data,
}

impl FileKind {
    pub fn label(self) -> &'static str {
        match self {
            FileKind::Manifest => "manifest",
            FileKind::Kustomization => "kustomization",
            FileKind::HelmChart => "helm-chart",
            FileKind::HelmTemplate => "helm-template",
            FileKind::HelmValues => "helm-values",
            FileKind::CiWorkflow => "ci-workflow",
            FileKind::Data => "data",
        }
    }

    /// The kind a file has by its repository-relative path alone; `None` means "look at the
    /// content". `in_chart` tells whether a Helm chart directory contains the file, and
    /// `chart_templates` whether it sits in that chart's `templates/`.
    pub fn from_path(rel_path: &str, in_chart: bool, chart_templates: bool) -> Option<FileKind> {
        let name = rel_path.rsplit('/').next().unwrap_or(rel_path);
        let lower = name.to_ascii_lowercase();
        if chart_templates {
            return Some(FileKind::HelmTemplate);
        }
        if matches!(
            name,
            "kustomization.yaml" | "kustomization.yml" | "Kustomization"
        ) {
            return Some(FileKind::Kustomization);
        }
        if name == "Chart.yaml" {
            return Some(FileKind::HelmChart);
        }
        let stem = lower
            .strip_suffix(".yaml")
            .or_else(|| lower.strip_suffix(".yml"))
            .unwrap_or(&lower);
        if stem.starts_with("values")
            || stem.ends_with("-values")
            || stem.ends_with("_values")
            || stem.ends_with(".values")
            || in_chart
        {
            return Some(FileKind::HelmValues);
        }
        let ci = rel_path.starts_with(".github/workflows/")
            || rel_path.contains("/.github/workflows/")
            || rel_path.starts_with(".circleci/")
            || matches!(
                lower.as_str(),
                ".gitlab-ci.yml"
                    | ".gitlab-ci.yaml"
                    | ".travis.yml"
                    | "azure-pipelines.yml"
                    | "bitbucket-pipelines.yml"
                    | ".drone.yml"
            );
        ci.then_some(FileKind::CiWorkflow)
    }
}

/// The identity of a Kubernetes object as a finding names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ResourceId {
    pub api_version: Option<CompactString>,
    pub kind: Option<CompactString>,
    pub name: Option<CompactString>,
    pub namespace: Option<CompactString>,
}

impl std::fmt::Display for ResourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            self.kind.as_deref().unwrap_or("?"),
            self.name.as_deref().unwrap_or("?")
        )?;
        if let Some(ns) = &self.namespace {
            write!(f, " (namespace {ns})")?;
        }
        Ok(())
    }
}

/// One YAML document (or one item of a `kind: List`).
#[derive(Debug, Clone)]
pub struct Document {
    /// Repository-relative path with `/` separators.
    pub file: Arc<str>,
    /// Position of the document in its file, counting from 0.
    pub index: usize,
    /// For an item of a `kind: List`, its position in `items`.
    pub list_item: Option<usize>,
    pub file_kind: FileKind,
    /// The first line that belongs to the document: its `---`, or its first node.
    pub header_line: u32,
    /// The first and last lines of the document's content.
    pub first_line: u32,
    pub last_line: u32,
    pub id: ResourceId,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub root: Node,
    /// Comments between the previous document and the end of this one.
    pub comments: Vec<Comment>,
    /// For a document kustomize changed (a JSON patch, a replacement): where the nodes it
    /// brought in come from. Their lines are [`FOREIGN_LINES`] and up, standing for
    /// `origins[line - FOREIGN_LINES]`; [`Document::at`] reads them. `None` for the
    /// repository's own documents.
    pub origins: Option<Arc<[Location]>>,
}

/// Where line `line` of a document of `file` is written, given the document's `origins`
/// ([`Document::at`]; for readers that keep the file and origins apart from the document).
pub fn located(file: &Arc<str>, origins: Option<&[Location]>, line: u32) -> Location {
    if line >= FOREIGN_LINES {
        if let Some(origin) = origins.and_then(|o| o.get((line - FOREIGN_LINES) as usize)) {
            return origin.clone();
        }
    }
    Location::new(file, line)
}

/// The first line number that stands for a line of another file in a changed document
/// ([`Document::origins`]): above any real line (files stay far below a billion lines).
pub const FOREIGN_LINES: u32 = 1 << 30;

impl Document {
    fn new(
        file: &Arc<str>,
        file_kind: FileKind,
        index: usize,
        header_line: u32,
        root: Node,
    ) -> Self {
        let text = |path: &[&str]| -> Option<CompactString> {
            let mut node = &root;
            for key in path {
                node = node.get(key)?;
            }
            node.as_str().map(CompactString::new)
        };
        let id = ResourceId {
            api_version: text(&["apiVersion"]),
            kind: text(&["kind"]),
            name: text(&["metadata", "name"]),
            namespace: text(&["metadata", "namespace"]),
        };
        let metadata = root.get("metadata");
        let map_of = |key| {
            metadata
                .and_then(|m| m.get(key))
                .map(|n| n.string_map().into_iter().collect())
                .unwrap_or_default()
        };
        Document {
            file: Arc::clone(file),
            index,
            list_item: None,
            file_kind,
            header_line: header_line.min(root.span.line),
            first_line: root.span.line,
            last_line: root.span.last_line(),
            labels: map_of("labels"),
            annotations: map_of("annotations"),
            id,
            root,
            comments: Vec::new(),
            origins: None,
        }
    }

    /// `base` with a new tree (a patched copy of its own): the identity, labels and
    /// annotations are read again from `root`, and the nodes whose lines are
    /// [`FOREIGN_LINES`] and up come from `origins`. Its file, lines and comments stay the
    /// base's: the object is still written there.
    pub fn changed(base: &Document, root: Node, origins: Vec<Location>) -> Document {
        let mut d = Document::new(
            &base.file,
            base.file_kind,
            base.index,
            base.header_line,
            root,
        );
        d.list_item = base.list_item;
        d.first_line = base.first_line;
        d.last_line = base.last_line;
        d.comments.clone_from(&base.comments);
        d.origins = (!origins.is_empty()).then(|| Arc::from(origins));
        d
    }

    /// Where the node at `line` of this document is written: this file, or for a node a
    /// kustomize patch or replacement brought in, the line of the patch that set it.
    pub fn at(&self, line: u32) -> Location {
        located(&self.file, self.origins.as_deref(), line)
    }

    /// True for a Kubernetes object: it has `apiVersion` and `kind` and is not a kustomize
    /// or Helm configuration file.
    pub fn is_manifest(&self) -> bool {
        self.file_kind == FileKind::Manifest
            && self.id.api_version.is_some()
            && self.id.kind.is_some()
    }

    /// The field at `path` (e.g. `spec.destination.name`) and the position of its key.
    pub fn locate(&self, path: &str) -> Option<FieldLocation<'_>> {
        let path = FieldPath::parse(path).ok()?;
        path::locate(&self.root, &path)
    }

    /// The 1-based line of the field at `path`.
    pub fn line_of(&self, path: &str) -> Option<u32> {
        self.locate(path).map(|l| l.line)
    }

    /// The comment on `line`, if it belongs to this document.
    pub fn comment_on(&self, line: u32) -> Option<&Comment> {
        self.comments.iter().find(|c| c.line == line)
    }
}

/// Whether a document with `apiVersion` and `kind` is a tool's own configuration that no
/// cluster receives: Skaffold (`skaffold/v4beta11`), kind (`kind.x-k8s.io`), kpt's `Kptfile`
/// and function configs (`kpt.dev`, `fn.kpt.dev`), k3d and ctlptl cluster files, KUTTL test
/// steps (`kuttl.dev`), Kyverno Chainsaw tests (`chainsaw.kyverno.io`), a kubeconfig (`v1`
/// `Config`), what Config Sync reads but never applies (a repository's `Repo` and
/// `HierarchyConfig`, `ClusterSelector`, `NamespaceSelector`, and `clusterregistry.k8s.io`
/// `Cluster`), and Kargo's own objects (`kargo.akuity.io`: Stages, Warehouses, Projects,
/// promotion tasks, Freight), which Kargo's control plane reads and which deploy nothing
/// themselves. They are data, not objects.
pub fn is_tool_config(id: &ResourceId) -> bool {
    let Some(api) = id.api_version.as_deref() else {
        return false;
    };
    let group = api.split_once('/').map_or("", |(group, _)| group);
    let kind = id.kind.as_deref().unwrap_or("");
    let config_sync = match group {
        "configmanagement.gke.io" => matches!(
            kind,
            "Repo" | "HierarchyConfig" | "ClusterSelector" | "NamespaceSelector"
        ),
        "clusterregistry.k8s.io" => kind == "Cluster",
        _ => false,
    };
    config_sync
        || matches!(
            group,
            "skaffold"
                | "kind.x-k8s.io"
                | "kpt.dev"
                | "fn.kpt.dev"
                | "k3d.io"
                | "ctlptl.dev"
                | "kuttl.dev"
                | "chainsaw.kyverno.io"
                | "kargo.akuity.io"
        )
        || (api == "v1" && id.kind.as_deref() == Some("Config"))
}

/// Why a file could not be read as YAML, with the position the parser stopped at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseProblem {
    pub file: Arc<str>,
    pub pos: Pos,
    pub message: String,
}

/// A file that was read and parsed.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: Arc<str>,
    pub kind: FileKind,
    /// Shared, so that a diff-aware scan takes an unchanged file from the other side without
    /// copying its trees.
    pub documents: Arc<[Document]>,
    pub problem: Option<ParseProblem>,
}

/// Why a file was passed over without being parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    Binary,
    TooLarge {
        size: u64,
        cap: u64,
    },
    /// A chart template, with the kinds and API versions written plainly on its lines, so
    /// that the topology can say which deployers it defines (an app-of-apps chart) and so
    /// what it cannot see.
    HelmTemplate {
        kinds: Box<[String]>,
        apis: Box<[String]>,
    },
    /// A template of another engine (or Go templates outside a Helm chart), known by its
    /// compound name (`*.ftl.yaml`, `*.gotmpl`) or by its syntax in a file that is not YAML.
    /// A Go template keeps its text (UTF-8 only): helmfiles are Go templates, and the
    /// helmfile family evaluates them.
    Template(TemplateEngine, Option<Arc<str>>),
    SymlinkOutsideRepo,
    /// A symlink into a `.git` folder (git's config may hold the job's token).
    SymlinkIntoGit,
    BrokenSymlink,
    SymlinkedDirectory,
    NotRegularFile,
    /// A git submodule (or another checkout nested in this one): not entered.
    Submodule,
    Unreadable(String),
}

impl SkipReason {
    /// Templates (Helm charts' and other engines') are skipped by design, not by accident.
    pub fn is_template(&self) -> bool {
        matches!(
            self,
            SkipReason::HelmTemplate { .. } | SkipReason::Template(..)
        )
    }

    /// A short category, used to group skips in summaries.
    pub fn category(&self) -> &'static str {
        match self {
            SkipReason::Binary => "binary",
            SkipReason::TooLarge { .. } => "too large",
            SkipReason::HelmTemplate { .. } => "Helm templates",
            SkipReason::Template(engine, _) => engine.category(),
            SkipReason::SymlinkOutsideRepo => "symlink out of the repository",
            SkipReason::SymlinkIntoGit => "symlink into .git",
            SkipReason::BrokenSymlink => "broken symlink",
            SkipReason::SymlinkedDirectory => "symlinked directory",
            SkipReason::NotRegularFile => "not a regular file",
            SkipReason::Submodule => "submodule",
            SkipReason::Unreadable(_) => "unreadable",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::Binary => write!(f, "binary file"),
            SkipReason::TooLarge { size, cap } => {
                write!(f, "{size} bytes, over the {cap}-byte cap (--max-file-size)")
            }
            SkipReason::HelmTemplate { .. } => {
                write!(f, "Helm chart template, not YAML until rendered")
            }
            SkipReason::Template(engine, _) => {
                write!(
                    f,
                    "{} template ({}), not YAML until rendered",
                    engine.name(),
                    engine.syntax()
                )
            }
            SkipReason::SymlinkOutsideRepo => {
                write!(
                    f,
                    "symlink that points outside the repository; not followed"
                )
            }
            SkipReason::SymlinkIntoGit => write!(
                f,
                "symlink into a .git folder (git's own files, never the repository's); not followed"
            ),
            SkipReason::BrokenSymlink => write!(f, "dangling or looping symlink"),
            SkipReason::SymlinkedDirectory => {
                write!(
                    f,
                    "symlinked directory; not followed (its target is scanned where it lives)"
                )
            }
            SkipReason::NotRegularFile => write!(f, "not a regular file"),
            SkipReason::Submodule => write!(
                f,
                "git submodule; not entered (its files belong to another repository)"
            ),
            SkipReason::Unreadable(cause) => write!(f, "cannot be read: {cause}"),
        }
    }
}

/// The template engine a skipped file is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TemplateEngine {
    /// Go `text/template` (`{{ }}`): helmfile, `*.tmpl`, `*.gotmpl`, charts' `*.tpl`.
    Go,
    /// Apache FreeMarker (`<#if>`, `<#list>`, `${…}`).
    FreeMarker,
    /// Jinja (`{% %}`, `{# #}`): Ansible, Salt, cookiecutter.
    Jinja,
    /// Shell-style `${VAR}` substitution (envsubst, Flux post-build variables).
    Envsubst,
}

impl TemplateEngine {
    pub fn name(self) -> &'static str {
        match self {
            TemplateEngine::Go => "Go",
            TemplateEngine::FreeMarker => "FreeMarker",
            TemplateEngine::Jinja => "Jinja",
            TemplateEngine::Envsubst => "envsubst",
        }
    }

    /// The summary's category: "FreeMarker templates".
    pub fn category(self) -> &'static str {
        match self {
            TemplateEngine::Go => "Go templates",
            TemplateEngine::FreeMarker => "FreeMarker templates",
            TemplateEngine::Jinja => "Jinja templates",
            TemplateEngine::Envsubst => "envsubst templates",
        }
    }

    fn syntax(self) -> &'static str {
        match self {
            TemplateEngine::Go => "{{ }}",
            TemplateEngine::FreeMarker => "<#…>, ${…}",
            TemplateEngine::Jinja => "{% %}, {{ }}",
            TemplateEngine::Envsubst => "${VAR}",
        }
    }

    /// The engine a compound file name names: `deploy.ftl.yaml`, `values.j2.yml`, ... The
    /// walk reads only YAML names, so the engine's extension is the one before `.yaml`.
    pub fn from_file_name(rel_path: &str) -> Option<TemplateEngine> {
        let name = rel_path.rsplit('/').next().unwrap_or(rel_path);
        let lower = name.to_ascii_lowercase();
        // helmfile's templates: `helmfile.yaml.gotmpl`, `values.yaml.gotmpl`.
        if lower.ends_with(".gotmpl") {
            return Some(TemplateEngine::Go);
        }
        let stem = lower
            .strip_suffix(".yaml")
            .or_else(|| lower.strip_suffix(".yml"))?;
        let (_, engine_ext) = stem.rsplit_once('.')?;
        match engine_ext {
            "ftl" | "ftlh" => Some(TemplateEngine::FreeMarker),
            "j2" | "jinja" | "jinja2" => Some(TemplateEngine::Jinja),
            "tmpl" | "tpl" | "gotmpl" => Some(TemplateEngine::Go),
            _ => None,
        }
    }

    /// The engine whose syntax a file that failed to parse holds, if any. Directives count
    /// anywhere; `${…}` only on the lines where parsing stopped, because shell scripts in
    /// block scalars and quoted strings use it in perfectly valid YAML.
    pub fn from_content(text: &str, error_line: u32) -> Option<TemplateEngine> {
        if text.contains("<#") || text.contains("</#") {
            return Some(TemplateEngine::FreeMarker);
        }
        if text.contains("{%") || text.contains("{#") {
            return Some(TemplateEngine::Jinja);
        }
        if text.contains("{{") {
            return Some(TemplateEngine::Go);
        }
        let first = usize::try_from(error_line.saturating_sub(2)).unwrap_or(0);
        let near_error: Vec<&str> = text.lines().skip(first).take(2).collect();
        let mut expressions = near_error
            .iter()
            .flat_map(|line| line.split("${").skip(1))
            .map(|rest| rest.split('}').next().unwrap_or(""))
            .peekable();
        expressions.peek()?;
        // `${NAME}` and `${NAME:-default}` are shell variables; anything else (`${a.b}`,
        // `${x!"d"}`, `${f(x)}`) is a FreeMarker expression.
        let shell_variable = |expr: &str| {
            let name_end = expr
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(expr.len());
            let (name, rest) = expr.split_at(name_end);
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && (rest.is_empty() || [":-", ":=", "-", "="].iter().any(|op| rest.starts_with(op)))
        };
        if expressions.all(shell_variable) {
            Some(TemplateEngine::Envsubst)
        } else {
            Some(TemplateEngine::FreeMarker)
        }
    }
}

/// "2 FreeMarker templates", "1 FreeMarker template": a skip category with its count.
pub fn counted_category(category: &str, count: usize) -> String {
    match category.strip_suffix("templates") {
        Some(stem) if count == 1 => format!("1 {stem}template"),
        _ => format!("{count} {category}"),
    }
}

/// Either a parsed file or the reason it was skipped.
#[derive(Debug, Clone)]
pub enum Loaded {
    File(SourceFile),
    Skipped(SkipReason),
}

/// Parses the bytes of one file into documents. `kind_hint` is the kind its path implies.
/// A panic while reading (a bug of the YAML layer) becomes a problem of this file only.
pub fn load(path: &Arc<str>, bytes: &[u8], kind_hint: Option<FileKind>) -> Loaded {
    injected_panic(path, false);
    guard::guarded(|| {
        injected_panic(path, true);
        load_unguarded(path, bytes, kind_hint)
    })
    .unwrap_or_else(|panic| {
        Loaded::File(SourceFile {
            path: Arc::clone(path),
            kind: kind_hint.unwrap_or(FileKind::Data),
            documents: Arc::default(),
            problem: Some(ParseProblem {
                file: Arc::clone(path),
                pos: Pos { line: 1, col: 1 },
                message: format!("the YAML reader failed: {panic}"),
            }),
        })
    })
}

/// For the tests of the panic defences with the real binary: a file named
/// `envfence-test-panic.yaml` panics inside the guard when `ENVFENCE_TEST_PANIC=reader`, and
/// outside it (an internal error) when `ENVFENCE_TEST_PANIC=outside`. Other files never look.
fn injected_panic(path: &str, inside_guard: bool) {
    static MODE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if !path.ends_with("envfence-test-panic.yaml") {
        return;
    }
    let mode = MODE.get_or_init(|| std::env::var("ENVFENCE_TEST_PANIC").ok());
    match (mode.as_deref(), inside_guard) {
        (Some("reader"), true) | (Some("outside"), false) => panic!("injected test panic"),
        _ => {}
    }
}

/// [`load`] without the panic guard.
/// A template skipped as such: a Go template with its text (helmfiles are Go templates).
fn template(engine: TemplateEngine, bytes: &[u8]) -> SkipReason {
    let text = (engine == TemplateEngine::Go)
        .then(|| std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)).ok())
        .flatten()
        .map(Arc::from);
    SkipReason::Template(engine, text)
}

fn load_unguarded(path: &Arc<str>, bytes: &[u8], kind_hint: Option<FileKind>) -> Loaded {
    if kind_hint == Some(FileKind::HelmTemplate) {
        let (kinds, apis) = plain_kinds_in(bytes);
        return Loaded::Skipped(SkipReason::HelmTemplate { kinds, apis });
    }
    if let Some(engine) = TemplateEngine::from_file_name(path) {
        return Loaded::Skipped(template(engine, bytes));
    }
    if looks_binary(bytes) {
        return Loaded::Skipped(SkipReason::Binary);
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let pos = position_of_byte(bytes, e.valid_up_to());
            let byte = bytes.get(e.valid_up_to()).copied().unwrap_or(0);
            return Loaded::File(SourceFile {
                path: Arc::clone(path),
                kind: kind_hint.unwrap_or(FileKind::Data),
                documents: Arc::default(),
                problem: Some(ParseProblem {
                    file: Arc::clone(path),
                    pos,
                    message: format!(
                        "not valid UTF-8 (byte 0x{byte:02X}); YAML files must be UTF-8 \
                         (is it Latin-1?)"
                    ),
                }),
            });
        }
    };
    let stream = yaml::parse_stream(text);
    if let Some(error) = &stream.error {
        if let Some(engine) = TemplateEngine::from_content(text, error.pos.line) {
            return Loaded::Skipped(template(engine, bytes));
        }
    }

    let provisional = kind_hint.unwrap_or(FileKind::Data);
    let mut documents: Vec<Document> = Vec::new();
    for (index, doc) in stream.docs.into_iter().enumerate() {
        // Without `---`, a document begins right after the previous one (or at line 1), so
        // comments above its first key are on its first lines.
        let header_line = if doc.explicit_start {
            doc.start_line
        } else {
            documents.last().map_or(1, |d| d.last_line + 1)
        };
        let document = Document::new(path, provisional, index, header_line, doc.root);
        expand_list(document, &mut documents);
    }
    // Names like `podinfo-values.yaml` suggest Helm values, but a file whose documents are
    // Kubernetes objects is a manifest whatever its name (a kustomize patch, say).
    let has_objects = documents
        .iter()
        .any(|d| d.id.api_version.is_some() && d.id.kind.is_some() && !is_tool_config(&d.id));
    let kind = match kind_hint {
        Some(FileKind::HelmValues) | None if has_objects => FileKind::Manifest,
        Some(hint) => hint,
        None => FileKind::Data,
    };
    for d in &mut documents {
        d.file_kind = if kind == FileKind::Manifest && is_tool_config(&d.id) {
            FileKind::Data
        } else {
            kind
        };
    }
    comments::attach(text, &stream.block_scalar_lines, &mut documents);
    Loaded::File(SourceFile {
        path: Arc::clone(path),
        kind,
        // One allocation of exactly the documents (a list grown by push keeps room for four).
        documents: Arc::from(documents),
        problem: stream.error.map(|e| ParseProblem {
            file: Arc::clone(path),
            pos: within_text(text, e.pos),
            message: explain_parse_error(text, e),
        }),
    })
}

/// The parser reports an error at the end of input on the line after a final newline, a
/// line the file does not have; it is shown at the end of the last line instead, so that
/// editors and pull-request annotations can point at it.
fn within_text(text: &str, pos: yaml::Pos) -> yaml::Pos {
    let lines = text.lines().count().max(1);
    if (pos.line as usize) <= lines {
        return pos;
    }
    let last = text.lines().last().unwrap_or("");
    yaml::Pos {
        line: u32::try_from(lines).unwrap_or(u32::MAX),
        col: u32::try_from(last.chars().count() + 1).unwrap_or(u32::MAX),
    }
}

/// Parses one document of `helm template` output, shown at `path` (its template). Lines are
/// mapped through `line_in_source` (a line of `text` → the template line it came from);
/// comments are dropped (helm's `# Source:` lines and the template's own comments are not
/// the rendered document's). `None` when the output is not YAML.
pub fn load_rendered(
    path: &Arc<str>,
    text: &str,
    line_in_source: &dyn Fn(u32) -> u32,
) -> Option<SourceFile> {
    let Loaded::File(mut file) = load(path, text.as_bytes(), Some(FileKind::Manifest)) else {
        return None;
    };
    if file.problem.is_some() {
        return None;
    }
    for d in Arc::make_mut(&mut file.documents) {
        remap_lines(&mut d.root, line_in_source);
        d.header_line = line_in_source(d.header_line);
        d.first_line = line_in_source(d.first_line);
        d.last_line = line_in_source(d.last_line).max(d.first_line);
        d.comments.clear();
    }
    Some(file)
}

/// Shows a rendered document at one line of another file (a values-file line that defines it).
pub fn move_to(d: &mut Document, path: &Arc<str>, line: u32) {
    d.file = Arc::clone(path);
    remap_lines(&mut d.root, &|_| line);
    d.header_line = line;
    d.first_line = line;
    d.last_line = line;
}

fn remap_lines(node: &mut Node, f: &dyn Fn(u32) -> u32) {
    node.set_lines(Span::at(f(node.span.line)));
    match &mut node.value {
        yaml::Value::Map(entries) => {
            for e in entries {
                remap_lines(&mut e.key, f);
                remap_lines(&mut e.value, f);
            }
        }
        yaml::Value::Seq(items) => {
            for item in items {
                remap_lines(item, f);
            }
        }
        yaml::Value::Scalar(_) => {}
    }
}

/// The parser's wording, with a hint for the most common cause: a tab in indentation.
fn explain_parse_error(text: &str, e: YamlError) -> String {
    let line = text
        .lines()
        .nth((e.pos.line as usize).saturating_sub(1))
        .unwrap_or("");
    let at = line.chars().nth((e.pos.col as usize).saturating_sub(1));
    let indented_with_tab = line
        .chars()
        .take_while(|c| c.is_whitespace())
        .any(|c| c == '\t');
    if at == Some('\t') || indented_with_tab {
        format!(
            "{} (a tab in indentation: YAML indents with spaces only)",
            e.message
        )
    } else {
        e.message
    }
}

/// Replaces a `kind: List` (or `*List`) document by its items; other documents pass through.
fn expand_list(document: Document, out: &mut Vec<Document>) {
    let is_list =
        document.id.kind.as_deref().is_some_and(|k| {
            k == "List" || (k.ends_with("List") && document.id.api_version.is_some())
        });
    let items = document.root.get("items").and_then(Node::as_seq);
    match (is_list, items) {
        (true, Some(items)) => {
            for (i, item) in items.iter().enumerate() {
                let mut d = Document::new(
                    &document.file,
                    document.file_kind,
                    document.index,
                    item.span.line,
                    item.clone(),
                );
                d.list_item = Some(i);
                out.push(d);
            }
        }
        _ => out.push(document),
    }
}

/// The GitOps deployer kind a template defines (`kind: Application` ...), read from its
/// text without rendering it.
/// The values of a template's plain `kind: X` and `apiVersion: Y` lines, in order.
fn plain_kinds_in(bytes: &[u8]) -> (Box<[String]>, Box<[String]>) {
    // A template names a few kinds; a hostile one may repeat `kind:` on every line.
    const MOST: usize = 64;
    let text = String::from_utf8_lossy(bytes);
    let mut kinds = Vec::new();
    let mut apis = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(kind) = line.strip_prefix("kind: ") {
            if kinds.len() < MOST {
                kinds.push(kind.to_owned());
            }
        } else if let Some(api) = line.strip_prefix("apiVersion: ") {
            if apis.len() < MOST {
                apis.push(api.trim().to_owned());
            }
        }
    }
    (kinds.into(), apis.into())
}

/// A NUL byte in the first 8 KiB, as git and ripgrep decide.
fn looks_binary(bytes: &[u8]) -> bool {
    bytes.iter().take(8192).any(|&b| b == 0)
}

/// The 1-based line and column (in characters) of byte `offset`.
fn position_of_byte(bytes: &[u8], offset: usize) -> Pos {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    Pos {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        col: u32::try_from(col).unwrap_or(u32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str, hint: Option<FileKind>) -> SourceFile {
        match load(&Arc::from("x.yaml"), text.as_bytes(), hint) {
            Loaded::File(f) => f,
            Loaded::Skipped(r) => panic!("skipped: {r}"),
        }
    }

    #[test]
    fn tool_configs_with_api_version_and_kind_are_data_not_objects() {
        for text in [
            "apiVersion: skaffold/v4beta11\nkind: Config\nmetadata: {name: app}\n",
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes: [{role: control-plane}]\n",
            "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata: {name: pkg}\n",
            "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n",
        ] {
            let f = parsed(text, None);
            assert_eq!(f.kind, FileKind::Data, "{text}");
            assert!(f.documents.iter().all(|d| !d.is_manifest()), "{text}");
        }
        // Beside an object in one file, only the object counts.
        let f = parsed(
            "apiVersion: skaffold/v3\nkind: Config\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
            None,
        );
        assert_eq!(f.kind, FileKind::Manifest);
        let objects: Vec<bool> = f.documents.iter().map(Document::is_manifest).collect();
        assert_eq!(objects, [false, true]);
    }

    #[test]
    fn config_sync_configuration_is_data_and_its_deployers_are_objects() {
        for text in [
            "apiVersion: configmanagement.gke.io/v1\nkind: Repo\nmetadata: {name: repo}\n",
            "apiVersion: configmanagement.gke.io/v1\nkind: ClusterSelector\nmetadata: {name: s}\n",
            "apiVersion: configmanagement.gke.io/v1\nkind: NamespaceSelector\nmetadata: {name: s}\n",
            "apiVersion: clusterregistry.k8s.io/v1alpha1\nkind: Cluster\nmetadata: {name: eu}\n",
        ] {
            assert_eq!(parsed(text, None).kind, FileKind::Data, "{text}");
        }
        for text in [
            "apiVersion: configmanagement.gke.io/v1\nkind: ConfigManagement\nmetadata: {name: c}\n",
            "apiVersion: configsync.gke.io/v1beta1\nkind: RootSync\nmetadata: {name: r}\n",
            "apiVersion: cluster.x-k8s.io/v1beta1\nkind: Cluster\nmetadata: {name: eu}\n",
        ] {
            assert_eq!(parsed(text, None).kind, FileKind::Manifest, "{text}");
        }
    }

    #[test]
    fn an_error_at_the_end_of_input_is_on_the_last_line() {
        // The parser stops on line 4, after the final newline; the file has three lines.
        let f = parsed("not:\n  - valid\n  yaml\n", None);
        let problem = f.problem.expect("an error");
        assert_eq!((problem.pos.line, problem.pos.col), (3, 7));
    }

    #[test]
    fn documents_carry_identity_and_lines() {
        let f = parsed(
            "# top\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: ns\n  labels: {env: prod}\ndata:\n  k: v\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: b}\n",
            None,
        );
        assert_eq!(f.kind, FileKind::Manifest);
        assert_eq!(f.documents.len(), 2);
        let a = &f.documents[0];
        assert_eq!(a.id.to_string(), "ConfigMap/a (namespace ns)");
        assert_eq!((a.header_line, a.first_line, a.last_line), (1, 2, 9));
        assert_eq!(a.labels.get("env").map(String::as_str), Some("prod"));
        assert_eq!(a.comments.len(), 1);
        assert_eq!(a.line_of("data.k"), Some(9));
        let b = &f.documents[1];
        assert_eq!((b.index, b.header_line, b.first_line), (1, 10, 11));
    }

    #[test]
    fn lists_are_expanded() {
        let f = parsed(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s}\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: p}\n",
            None,
        );
        let ids: Vec<String> = f.documents.iter().map(|d| d.id.to_string()).collect();
        assert_eq!(ids, vec!["Service/s", "Pod/p"]);
        assert_eq!(f.documents[1].list_item, Some(1));
        assert_eq!(f.documents[1].first_line, 7);
    }

    #[test]
    fn latin1_is_reported_with_its_position() {
        let f = match load(&Arc::from("l.yaml"), b"a: 1\nb: caf\xE9\n", None) {
            Loaded::File(f) => f,
            Loaded::Skipped(r) => panic!("{r}"),
        };
        let p = f.problem.expect("problem");
        assert_eq!((p.pos.line, p.pos.col), (2, 7));
    }

    #[test]
    fn templates_and_binaries_are_skipped() {
        let t = load(&Arc::from("t.yaml"), b"a: {{ .Values.x }}\nb: [\n", None);
        assert!(matches!(
            t,
            Loaded::Skipped(SkipReason::Template(TemplateEngine::Go, Some(_)))
        ));
        let b = load(&Arc::from("b.yaml"), b"a: 1\0\0", None);
        assert!(matches!(b, Loaded::Skipped(SkipReason::Binary)));
        // An ApplicationSet with quoted templates is still YAML and is kept.
        let ok = parsed("name: '{{cluster}}-app'\n", None);
        assert_eq!(ok.documents.len(), 1);
    }

    fn skipped_as(path: &str, text: &str) -> Option<TemplateEngine> {
        match load(&Arc::from(path), text.as_bytes(), None) {
            Loaded::Skipped(SkipReason::Template(engine, _)) => Some(engine),
            _ => None,
        }
    }

    #[test]
    fn templates_of_other_engines_are_named() {
        // By compound name, whatever the content.
        assert_eq!(
            skipped_as("a/deploy.ftl.yaml", "a: 1\n"),
            Some(TemplateEngine::FreeMarker)
        );
        assert_eq!(
            skipped_as("a/v.J2.yml", "a: 1\n"),
            Some(TemplateEngine::Jinja)
        );
        assert_eq!(
            skipped_as("a/x.gotmpl.yaml", "a: 1\n"),
            Some(TemplateEngine::Go)
        );
        assert_eq!(skipped_as("a/my.app.yaml", "a: 1\n"), None);
        // By syntax, once the file fails to parse.
        assert_eq!(
            skipped_as("f.yaml", "<#if prod>\nreplicas: 3\n</#if>\na: [\n"),
            Some(TemplateEngine::FreeMarker)
        );
        assert_eq!(
            skipped_as(
                "f.yaml",
                "image: ${image.repo}:${image.tag!\"latest\"}\nx: {y: ${z.w}}\n"
            ),
            Some(TemplateEngine::FreeMarker)
        );
        assert_eq!(
            skipped_as(
                "j.yaml",
                "{% for e in envs %}\n- name: {{ e }}\n{% endfor %}\n"
            ),
            Some(TemplateEngine::Jinja)
        );
        assert_eq!(
            skipped_as("e.yaml", "resources: {limits: {cpu: ${CPU_LIMIT}}}\n"),
            Some(TemplateEngine::Envsubst)
        );
        // `${` in a quoted string or a block scalar of valid YAML is just text.
        let kept = parsed("cmd: \"echo ${HOME}\"\nscript: |\n  x=${Y:-1}\n", None);
        assert_eq!(kept.documents.len(), 1);
        // A real YAML error far from a quoted `${` is still reported, not skipped.
        let broken = parsed("a: \"${HOME}\"\nb: 1\nc: 2\nd: [\n", None);
        assert!(broken.problem.is_some());
    }

    #[test]
    fn file_kinds_by_path() {
        assert_eq!(
            FileKind::from_path("apps/x/kustomization.yaml", false, false),
            Some(FileKind::Kustomization)
        );
        assert_eq!(
            FileKind::from_path("charts/a/templates/d.yaml", true, true),
            Some(FileKind::HelmTemplate)
        );
        assert_eq!(
            FileKind::from_path("charts/a/values-prod.yaml", true, false),
            Some(FileKind::HelmValues)
        );
        assert_eq!(
            FileKind::from_path("apps/podinfo-values.yaml", false, false),
            Some(FileKind::HelmValues)
        );
        assert_eq!(
            FileKind::from_path(".github/workflows/ci.yml", false, false),
            Some(FileKind::CiWorkflow)
        );
        assert_eq!(FileKind::from_path("apps/deploy.yaml", false, false), None);
    }
}
