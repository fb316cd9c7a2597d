//! `.envfence.yaml`: the optional configuration file at the repository root (DESIGN §5).
//!
//! Mistakes here are the user's to fix, so every error names the file, line and column, and
//! unknown keys are rejected rather than ignored (a typo must not silently turn a rule off).

use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::documents::{path as field_path, yaml, FieldPath, Node};
use crate::vocabulary::{Purpose, RuleId, Tier};

/// The file name looked for at the repository root.
pub const FILE_NAME: &str = ".envfence.yaml";

/// The largest config or policy file envfence reads: 1 MiB (real ones are a few KiB).
pub const MAX_FILE_SIZE: u64 = 1 << 20;

/// How many characters of a value an error message may quote.
pub const EXCERPT_CHARS: usize = 32;

/// The longest error message about a config or policy file, in characters.
const MAX_MESSAGE_CHARS: usize = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Environment {
    Production,
    NonProduction,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterDecl {
    pub name: String,
    #[serde(default)]
    pub server: Option<String>,
    /// Optional: when absent the environment is inferred as for any other cluster.
    #[serde(default)]
    pub environment: Option<Environment>,
    /// Optional: the cluster's tier; when absent it is inferred from its labels and name.
    #[serde(default)]
    pub tier: Option<Tier>,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Optional: the cluster's labels, matched by ApplicationSet cluster generators and Config
    /// Sync selectors as a cluster Secret's labels are (`env`, `environment` and `stage` also
    /// say its environment when `environment` does not).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Optional: the cluster's annotations, offered by ApplicationSet cluster generators as
    /// `metadata.annotations.<key>`.
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// `tiers:`: the tiers where each workload purpose may run, replacing the policy's default
/// homes per purpose. One field per purpose, so that serde rejects an unknown one with its line.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TiersConfig {
    #[serde(default)]
    pub production: Option<Vec<Tier>>,
    #[serde(default)]
    pub feature: Option<Vec<Tier>>,
    #[serde(default)]
    pub integration_test: Option<Vec<Tier>>,
    #[serde(default)]
    pub load_test: Option<Vec<Tier>>,
    #[serde(default)]
    pub security_test: Option<Vec<Tier>>,
    #[serde(default)]
    pub chaos: Option<Vec<Tier>>,
    #[serde(default)]
    pub ci: Option<Vec<Tier>>,
}

impl TiersConfig {
    /// The homes the config gives a purpose, if it names it.
    pub fn get(&self, purpose: Purpose) -> Option<&[Tier]> {
        match purpose {
            Purpose::Production => self.production.as_deref(),
            Purpose::Feature => self.feature.as_deref(),
            Purpose::IntegrationTest => self.integration_test.as_deref(),
            Purpose::LoadTest => self.load_test.as_deref(),
            Purpose::SecurityTest => self.security_test.as_deref(),
            Purpose::Chaos => self.chaos.as_deref(),
            Purpose::Ci => self.ci.as_deref(),
            Purpose::Unknown => None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentWords {
    /// Extra environment words, added to the built-in tokens.
    #[serde(default)]
    pub words: Vec<String>,
    /// Host names or globs (`*.example.com`) that belong to this environment.
    #[serde(default)]
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environments {
    #[serde(default)]
    pub production: EnvironmentWords,
    #[serde(default, rename = "non-production")]
    pub non_production: EnvironmentWords,
}

/// "Files matching `glob` land on `cluster`", for files no deployer reaches.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PathRule {
    pub glob: String,
    pub cluster: String,
}

/// `entrypoints:`: a folder, chart or root deployer file that something outside the repository
/// (Terraform, a pipeline, a bootstrap command) delivers to a named cluster.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryPoint {
    /// Repository-relative: a folder (a kustomization or plain manifests, read with its
    /// sub-folders), a Helm chart's folder, or a file holding a root deployer (an Argo CD
    /// Application or ApplicationSet, a Flux Kustomization).
    pub path: String,
    /// The cluster it is delivered to: a name from `clusters:`, or a new one.
    pub cluster: String,
    /// Optional: the namespace of objects that set none (a chart's release namespace).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Optional, for a chart: values files, relative to the chart's folder or else to the
    /// repository root, in the order helm reads them (after the chart's own values.yaml).
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleLevel {
    Off,
    Info,
    Warning,
    Error,
}

/// `helm:`: whether to render local charts, and for which Kubernetes version. The binary is
/// never named here (a pull request could point it at a script): `--helm` or `ENVFENCE_HELM`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HelmConfig {
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// The Kubernetes version charts are rendered for (`helm template --kube-version`).
    #[serde(default, rename = "kube-version")]
    #[schemars(regex(pattern = r"^v?[0-9]+(\.[0-9]+){0,2}$"))]
    pub kube_version: Option<String>,
}

impl Default for HelmConfig {
    fn default() -> Self {
        HelmConfig {
            enabled: true,
            kube_version: None,
        }
    }
}

fn enabled_by_default() -> bool {
    true
}

/// `rules:`: a level per rule id, built-in or `rego/<package>/<rule>`. An unknown id is an
/// error that names it and its line.
#[derive(Debug, Clone, Default)]
pub struct RulesConfig {
    levels: Vec<(RuleId, RuleLevel)>,
}

impl RulesConfig {
    /// The levels the file sets, by rule.
    pub fn levels(&self) -> Vec<(RuleId, RuleLevel)> {
        self.levels.clone()
    }
}

/// The editor schema of `rules:`: a level for each built-in id or any `rego/…` id, nothing else
/// (the loader's deserializer above is hand-written, so this one is too).
impl JsonSchema for RulesConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RulesConfig".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let level = generator.subschema_for::<RuleLevel>().to_value();
        let properties: serde_json::Map<String, serde_json::Value> = RuleId::ALL
            .iter()
            .map(|r| (r.as_str().to_owned(), level.clone()))
            .collect();
        schemars::json_schema!({
            "description": "A level per rule id: a built-in id or `rego/<package>/<rule>`.",
            "type": ["object", "null"],
            "properties": properties,
            "patternProperties": { "^rego/[^/]+/[^/]+$": level },
            "additionalProperties": false
        })
    }
}

/// A key of `rules:`, checked while it is read, so that an error points at its line.
struct RuleKey(RuleId);

impl<'de> Deserialize<'de> for RuleKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        static BUILT_IN: std::sync::LazyLock<Vec<&'static str>> =
            std::sync::LazyLock::new(|| RuleId::ALL.iter().map(|r| r.as_str()).collect());
        // Checked inside `visit_str`, so that the YAML reader's position is the key's.
        struct KeyVisitor;
        impl serde::de::Visitor<'_> for KeyVisitor {
            type Value = RuleKey;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a rule id")
            }
            fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<RuleKey, E> {
                RuleId::parse(key)
                    .map(RuleKey)
                    .ok_or_else(|| E::unknown_field(key, &BUILT_IN))
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for RulesConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RulesConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping of rule ids to off, info, warning or error")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<RulesConfig, E> {
                Ok(RulesConfig::default())
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RulesConfig, A::Error> {
                let mut levels: Vec<(RuleId, RuleLevel)> = Vec::new();
                while let Some(RuleKey(rule)) = map.next_key::<RuleKey>()? {
                    let level: RuleLevel = map.next_value()?;
                    levels.retain(|(r, _)| *r != rule);
                    levels.push((rule, level));
                }
                Ok(RulesConfig { levels })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `.envfence.yaml`: every key is optional; unknown keys are errors.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The explicit cluster inventory; wins over anything inferred.
    #[serde(default)]
    pub clusters: Vec<ClusterDecl>,
    /// Words and hosts that mean production or non-production, added to the built-in ones.
    #[serde(default)]
    pub environments: Environments,
    /// Where files that no deployer reaches land.
    #[serde(default)]
    pub paths: Vec<PathRule>,
    /// Folders, charts and root deployers that something outside the repository delivers to
    /// a named cluster.
    #[serde(default)]
    pub entrypoints: Vec<EntryPoint>,
    /// Rule levels: off, info, warning or error.
    #[serde(default)]
    pub rules: RulesConfig,
    /// Globs of repository paths that are not read.
    #[serde(default)]
    pub ignore: Vec<String>,
    #[serde(default)]
    pub repository: RepositoryConfig,
    /// URLs of this repository found outside the config (the `origin` remote,
    /// `GITHUB_REPOSITORY`), each with where it was found.
    #[serde(skip)]
    pub detected_urls: Vec<(String, String)>,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub helm: HelmConfig,
    #[serde(default)]
    pub tiers: TiersConfig,
    /// What a Namespace's labels and annotations say about the environment of its objects.
    #[serde(default)]
    pub namespaces: NamespacesConfig,
    /// A folder of policy files (YAML and Rego) like `--policies`, relative to the
    /// repository root.
    #[serde(default)]
    pub policies: Option<PathBuf>,
    /// Where the config came from, for diagnostics that point into it.
    #[serde(skip)]
    pub source: Option<ConfigSource>,
    #[serde(skip)]
    ignore_set: GlobSet,
}

/// `namespaces:`: how a Namespace's labels and annotations name its environment (DESIGN §3
/// "Namespace environment").
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NamespacesConfig {
    /// Label or annotation keys that name a namespace's environment, added to the built-in
    /// ones (`environment`, `env`, `stage`, and keys ending in `/environment`,
    /// `/environment-name`, `/env` or `/is-production`). A key ending in `is-production`
    /// takes `"true"` (production) or `"false"` (non-production); any other key takes an
    /// environment name (`production`, `dev`, ...).
    #[serde(default)]
    #[schemars(inner(regex(pattern = r"\S")))]
    pub environment_keys: Vec<String>,
}

/// `repository:`: the `repoURL`s that mean this repository.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    #[serde(default)]
    pub urls: Vec<String>,
}

/// The URLs by which this repository is known besides the config: the `origin` remote of
/// `root/.git/config` (read as text, no process) and `GITHUB_REPOSITORY` on GitHub runners.
pub fn detect_repository_urls(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(url) = origin_url(root) {
        out.push((url, "the origin remote in .git/config".to_owned()));
    }
    if let Ok(repo) = std::env::var("GITHUB_REPOSITORY") {
        if !repo.trim().is_empty() {
            let server = std::env::var("GITHUB_SERVER_URL")
                .unwrap_or_else(|_| "https://github.com".to_owned());
            out.push((
                format!("{}/{}", server.trim_end_matches('/'), repo.trim()),
                "GITHUB_REPOSITORY".to_owned(),
            ));
        }
    }
    out
}

/// A small git file (`.git`, `commondir`, `config`) as text: a regular file of at most
/// 64 KiB, read without blocking. A scanned folder that is not a checkout may hold anything
/// under these names (a FIFO, a link to `/dev/zero`).
fn small_git_file(path: &Path) -> Option<String> {
    let bytes = crate::files::read_regular_file(path, 64 * 1024).ok()?;
    String::from_utf8(bytes).ok()
}

/// `url` of `[remote "origin"]`, following a worktree's `.git` file to the shared config.
fn origin_url(root: &Path) -> Option<String> {
    let dot_git = root.join(".git");
    let git_dir = if dot_git.is_file() {
        let text = small_git_file(&dot_git)?;
        let dir = PathBuf::from(text.trim().strip_prefix("gitdir:")?.trim());
        let dir = if dir.is_absolute() {
            dir
        } else {
            root.join(dir)
        };
        match small_git_file(&dir.join("commondir")) {
            Some(common) => dir.join(common.trim()),
            None => dir,
        }
    } else {
        dot_git
    };
    let text = small_git_file(&git_dir.join("config"))?;
    let mut in_origin = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_origin = line.replace(' ', "") == "[remote\"origin\"]";
            continue;
        }
        if in_origin {
            if let Some((key, value)) = line.split_once('=') {
                if key.trim() == "url" {
                    return Some(value.trim().to_owned());
                }
            }
        }
    }
    None
}

/// The budgets a config writes (`limits:`). A config is part of the checkout a pull request
/// can change, so its values may only lower a budget: each applies as the smaller of it and
/// the default, and the defaults grow with what the scan read ([`LimitsConfig::for_documents`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsConfig {
    /// Parameter sets one ApplicationSet's generators may yield. Default: 10,000, or one per
    /// document read when that is more; a larger value applies as the default.
    #[serde(default)]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub appset_parameter_sets: Option<usize>,
    /// Objects one directory may expand to through its kustomizations. Default: 10,000, or
    /// 8 per document read when that is more; a larger value applies as the default.
    #[serde(default)]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub kustomize_objects: Option<usize>,
    /// Objects all expanded directories of one scan may yield together. Default: 100,000, or
    /// 8 per document read when that is more; a larger value applies as the default.
    #[serde(default)]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub expanded_objects: Option<usize>,
}

impl LimitsConfig {
    /// A config (itself part of a possibly hostile checkout) may not write a limit above this.
    pub const CEILING: usize = 1_000_000;

    /// The budgets of a scan that read `documents` documents: each default scaled to the
    /// input ([`Limits::scaled_to`]), lowered where the config writes a smaller value.
    pub fn for_documents(&self, documents: usize) -> Limits {
        let scaled = Limits::scaled_to(documents);
        let lower =
            |written: Option<usize>, default: usize| written.map_or(default, |w| w.min(default));
        Limits {
            appset_parameter_sets: lower(self.appset_parameter_sets, scaled.appset_parameter_sets),
            kustomize_objects: lower(self.kustomize_objects, scaled.kustomize_objects),
            expanded_objects: lower(self.expanded_objects, scaled.expanded_objects),
        }
    }
}

/// The budgets that keep a hostile repository from exhausting memory or time (DESIGN §10),
/// as one scan applies them. A fixed budget would either let a small hostile repository
/// amplify itself or cut an honest monorepo short, so the defaults grow with the documents
/// read: expansion stays within a fixed multiple of the input whatever its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub appset_parameter_sets: usize,
    pub kustomize_objects: usize,
    pub expanded_objects: usize,
}

impl Limits {
    /// Objects kustomize expansions may yield per document read, beyond the fixed floors.
    /// Honest repositories expand each document onto a few clusters (the 5,000-application
    /// benchmark: under 2 per document); fan-out beyond this is amplification.
    pub const OBJECTS_PER_DOCUMENT: usize = 8;

    /// The defaults for a scan that read `documents` documents: the fixed floors, or a fixed
    /// multiple of the documents when that is more.
    pub fn scaled_to(documents: usize) -> Limits {
        let floor = Limits::default();
        let objects = documents.saturating_mul(Self::OBJECTS_PER_DOCUMENT);
        Limits {
            appset_parameter_sets: floor.appset_parameter_sets.max(documents),
            kustomize_objects: floor.kustomize_objects.max(objects),
            expanded_objects: floor.expanded_objects.max(objects),
        }
    }
}

impl Default for Limits {
    /// The floors: what a scan of a small repository gets.
    fn default() -> Self {
        Limits {
            appset_parameter_sets: 10_000,
            kustomize_objects: 10_000,
            expanded_objects: 100_000,
        }
    }
}

/// The config file's path and its span tree, so that later stages can point into it.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    pub path: PathBuf,
    pub root: Option<Node>,
    /// How evidence names the file: `.envfence.yaml` for the repository's own config, the
    /// path as given for `--config`.
    pub shown: String,
}

impl ConfigSource {
    /// The line of a field of the config file, e.g. `clusters[1].name`.
    pub fn line_of(&self, path: &str) -> Option<u32> {
        let path = FieldPath::parse(path).ok()?;
        field_path::locate(self.root.as_ref()?, &path).map(|l| l.line)
    }
}

/// A config problem, already phrased as `file:line:col: message`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The scanned repository, as the judge of which config and policy paths are its content.
///
/// A config or policy file found in the repository, or named by a path that lies inside it,
/// is repository content: in a pull request it is the author's, not the user's (the GitHub
/// Action's `config:` input names a file of the untrusted checkout). Such a file is confined
/// like scanned files: it may be a symlink only to a file inside the repository. Whether a
/// path lies inside is decided on the path as written, made absolute against the current
/// directory with `.` and `..` resolved as text, never on where its symlinks lead; a path
/// outside the repository is the user's own choice and may lead anywhere. Either way only a
/// regular file of at most [`MAX_FILE_SIZE`] bytes is read, without blocking.
#[derive(Debug, Clone)]
pub struct Repository {
    /// The root with symlinks resolved: confined files must resolve inside it.
    canonical: PathBuf,
    /// The root as written, made absolute: a path written under it names repository content.
    written: PathBuf,
}

impl Repository {
    pub fn at(root: &Path) -> Repository {
        let written = absolute_as_written(root);
        Repository {
            canonical: std::fs::canonicalize(root).unwrap_or_else(|_| written.clone()),
            written,
        }
    }

    /// Whether `path` (as given on the command line) names a file of the repository.
    pub fn names(&self, path: &Path) -> bool {
        let path = absolute_as_written(path);
        path.starts_with(&self.written) || path.starts_with(&self.canonical)
    }

    /// Reads a config or policy file named on the command line: confined when it names
    /// repository content.
    pub fn read_named(&self, path: &Path) -> Result<String, String> {
        self.read(path, self.names(path))
    }

    /// Reads a file at `path` as UTF-8 text; with `confined`, a symlink may not leave the
    /// repository. The error is the cause alone, one line.
    pub fn read(&self, path: &Path, confined: bool) -> Result<String, String> {
        let real = if confined {
            let real = std::fs::canonicalize(path).map_err(|e| {
                let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink());
                if is_link {
                    "a broken symlink".to_owned()
                } else {
                    e.to_string()
                }
            })?;
            if !real.starts_with(&self.canonical) {
                return Err("a symlink that leads out of the repository".to_owned());
            }
            if crate::files::in_git_folder(&self.canonical, &real) {
                return Err(
                    "a file in a .git folder, which is git's, not the repository's".to_owned(),
                );
            }
            real
        } else {
            path.to_path_buf()
        };
        let bytes = crate::files::read_regular_file(&real, MAX_FILE_SIZE).map_err(|e| match e {
            crate::files::ReadError::TooLarge { .. } => {
                format!("larger than the limit of {} KiB", MAX_FILE_SIZE >> 10)
            }
            other => other.to_string(),
        })?;
        String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())
    }
}

/// `path` made absolute against the current directory, `.` and `..` resolved as text.
fn absolute_as_written(path: &Path) -> PathBuf {
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = PathBuf::new();
    for component in full.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// An error message about a config or policy file made safe to print: every quoted span
/// (`"…"`, as serde quotes values, or `` `…` ``) cut to [`EXCERPT_CHARS`] characters,
/// control characters escaped, the whole cut to [`MAX_MESSAGE_CHARS`]. serde would otherwise
/// repeat a whole value (`invalid type: string "<the whole file>"`).
pub fn safe_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE_CHARS));
    let mut rest = message;
    // serde names what it expected after the value (`…, expected one of `a`, `b``): those
    // are envfence's own names, quoted whole.
    let mut expectation = false;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = if rest.as_bytes()[open] == b'"' {
            '"'
        } else {
            '`'
        };
        expectation |= rest[..open].contains(", expected");
        out.push_str(&rest[..=open]);
        let body = &rest[open + 1..];
        let close = if quote == '"' {
            // serde quotes with Rust's escapes: a `\"` does not close.
            let mut escaped = false;
            body.char_indices()
                .find(|&(_, c)| {
                    let closes = c == '"' && !escaped;
                    escaped = c == '\\' && !escaped;
                    closes
                })
                .map(|(i, _)| i)
        } else {
            body.find('`')
        };
        let cut = |value: &str| {
            if expectation {
                value.to_owned()
            } else {
                excerpt_raw(value)
            }
        };
        let Some(close) = close else {
            out.push_str(&cut(body));
            rest = "";
            break;
        };
        out.push_str(&cut(&body[..close]));
        out.push(quote);
        rest = &body[close + 1..];
    }
    out.push_str(rest);
    let out = crate::sanitize::text(&out).into_owned();
    if out.chars().count() > MAX_MESSAGE_CHARS {
        let mut cut: String = out.chars().take(MAX_MESSAGE_CHARS).collect();
        cut.push('…');
        cut
    } else {
        out
    }
}

fn excerpt_raw(value: &str) -> String {
    let mut cut: String = value.chars().take(EXCERPT_CHARS).collect();
    if cut.len() < value.len() {
        cut.push('…');
    }
    cut
}

/// Whether `path` names something inside the repository: relative, without `..`.
fn inside_repository(path: &str) -> bool {
    let path = Path::new(path.trim());
    !path.as_os_str().is_empty()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// A path for an error message: control characters escaped.
pub(crate) fn shown_path(path: &Path) -> String {
    crate::sanitize::text(&path.display().to_string()).into_owned()
}

/// Where editors find the schema: the `$id` of [`json_schema`] and the target of the
/// `# yaml-language-server: $schema=…` line.
pub const SCHEMA_URL: &str =
    "https://raw.githubusercontent.com/envfence/envfence/main/docs/envfence.schema.json";

/// The JSON Schema of `.envfence.yaml` (`docs/envfence.schema.json`), generated from the types
/// the loader reads, so that an editor rejects unknown keys and wrong types as the loader does.
/// Glob syntax and cross-references (a `paths[].cluster` that names no cluster) stay the
/// loader's to check.
pub fn json_schema() -> String {
    let mut schema = schemars::schema_for!(Config);
    schema.insert("$id".to_owned(), SCHEMA_URL.into());
    schema.insert("title".to_owned(), ".envfence.yaml".into());
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

impl Config {
    /// The config file's path as findings and evidence name it ([`FILE_NAME`] when there is
    /// no file).
    pub fn shown_file(&self) -> &str {
        self.source.as_ref().map_or(FILE_NAME, |s| s.shown.as_str())
    }

    /// Loads `explicit` (which must exist), or `.envfence.yaml` in `root` if there is one.
    /// Both are read as [`Repository`] says: confined to the repository when they are its
    /// content.
    pub fn discover(root: &Path, explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let repository = Repository::at(root);
        match explicit {
            Some(path) => {
                let text = repository.read_named(path).map_err(|cause| {
                    ConfigError(format!("cannot read config {}: {cause}", shown_path(path)))
                })?;
                Config::parse(path, &text).map(|mut c| {
                    c.detected_urls = detect_repository_urls(root);
                    c
                })
            }
            None => {
                let path = root.join(FILE_NAME);
                match std::fs::symlink_metadata(&path) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Ok(Config {
                            detected_urls: detect_repository_urls(root),
                            ..Config::default()
                        })
                    }
                    _ => {}
                }
                // A directory of that name, or a file we cannot read, is not "missing".
                let text = repository.read(&path, true).map_err(|cause| {
                    ConfigError(format!("cannot read config {}: {cause}", shown_path(&path)))
                })?;
                Config::parse(&path, &text).map(|mut c| {
                    if let Some(s) = &mut c.source {
                        s.shown = FILE_NAME.to_owned();
                    }
                    c.detected_urls = detect_repository_urls(root);
                    c
                })
            }
        }
    }

    /// Parses and validates config text; `path` is only used in messages, which never quote
    /// more than a short excerpt of a value (see [`safe_message`]).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::parse_unchecked(path, text).map_err(|e| ConfigError(safe_message(&e.0)))
    }

    fn parse_unchecked(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let shown = shown_path(path);
        // Text read from git objects (`--head`) has not been through the file reader's cap.
        if text.len() as u64 > MAX_FILE_SIZE {
            return Err(ConfigError(format!(
                "{shown}: larger than the limit of {} KiB",
                MAX_FILE_SIZE >> 10
            )));
        }
        // A panic of the YAML layer is a bug; here it is a config error, not a crash.
        let stream = crate::documents::guard::guarded(|| yaml::parse_stream(text))
            .map_err(|panic| ConfigError(format!("{shown}: the YAML reader failed: {panic}")))?;
        if let Some(e) = &stream.error {
            return Err(ConfigError(format!(
                "{shown}:{}:{}: invalid YAML: {}",
                e.pos.line, e.pos.col, e.message
            )));
        }
        if stream.docs.len() > 1 {
            let line = stream.docs[1].start_line;
            return Err(ConfigError(format!(
                "{shown}:{line}:1: the config holds one YAML document, found more"
            )));
        }
        let root = stream.docs.into_iter().next().map(|d| d.root);
        let mut config = match &root {
            None => Config::default(),
            Some(node) if node.is_null() => Config::default(),
            Some(_) => serde_yaml::from_str::<Config>(text).map_err(|e| {
                let message = e.to_string();
                match e.location() {
                    Some(loc) => {
                        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
                        let message = message.strip_suffix(&suffix).unwrap_or(&message);
                        ConfigError(format!(
                            "{shown}:{}:{}: {message}",
                            loc.line(),
                            loc.column()
                        ))
                    }
                    None => ConfigError(format!("{shown}: {message}")),
                }
            })?,
        };
        config.source = Some(ConfigSource {
            path: path.to_path_buf(),
            root,
            shown: shown.clone(),
        });
        config.validate(&shown)?;
        Ok(config)
    }

    fn validate(&mut self, shown: &str) -> Result<(), ConfigError> {
        let source = self.source.clone();
        let at = |field: String, message: String| {
            let line = source.as_ref().and_then(|s| s.line_of(&field)).unwrap_or(1);
            ConfigError(format!("{shown}:{line}: {message}"))
        };
        let mut seen = std::collections::BTreeMap::new();
        for (i, cluster) in self.clusters.iter().enumerate() {
            if cluster.name.trim().is_empty() {
                return Err(at(
                    format!("clusters[{i}].name"),
                    "a cluster needs a name".into(),
                ));
            }
            if let (Some(env), Some(tier)) = (cluster.environment, cluster.tier) {
                let production = env == Environment::Production;
                if production != (tier == Tier::Production) {
                    return Err(at(
                        format!("clusters[{i}].tier"),
                        format!(
                            "cluster `{}` is declared {} but its tier is {tier}",
                            cluster.name,
                            if production {
                                "production"
                            } else {
                                "non-production"
                            }
                        ),
                    ));
                }
            }
            for name in std::iter::once(&cluster.name).chain(&cluster.aliases) {
                if let Some(first) = seen.insert(name.clone(), i) {
                    return Err(at(
                        format!("clusters[{i}]"),
                        format!("cluster name `{name}` is already used by clusters[{first}]"),
                    ));
                }
            }
        }
        let mut ignore = GlobSetBuilder::new();
        for (i, pattern) in self.ignore.iter().enumerate() {
            let glob = Glob::new(pattern).map_err(|e| {
                at(
                    format!("ignore[{i}]"),
                    format!("invalid glob `{pattern}`: {}", e.kind()),
                )
            })?;
            ignore.add(glob);
        }
        self.ignore_set = ignore.build().map_err(|e| {
            at(
                "ignore".into(),
                format!("invalid ignore globs: {}", e.kind()),
            )
        })?;
        for (i, rule) in self.paths.iter().enumerate() {
            Glob::new(&rule.glob).map_err(|e| {
                at(
                    format!("paths[{i}].glob"),
                    format!("invalid glob `{}`: {}", rule.glob, e.kind()),
                )
            })?;
        }
        for (i, key) in self.namespaces.environment_keys.iter().enumerate() {
            if key.trim().is_empty() {
                return Err(at(
                    format!("namespaces.environment-keys[{i}]"),
                    "an environment key needs a name".into(),
                ));
            }
        }
        for (i, entry) in self.entrypoints.iter().enumerate() {
            if !inside_repository(&entry.path) {
                return Err(at(
                    format!("entrypoints[{i}].path"),
                    format!(
                        "entry point `{}` must be a path inside the repository, relative to its root",
                        entry.path
                    ),
                ));
            }
            if entry.cluster.trim().is_empty() {
                return Err(at(
                    format!("entrypoints[{i}]"),
                    "an entry point needs the cluster it is delivered to".into(),
                ));
            }
            if let Some(bad) = entry.values.iter().find(|v| !inside_repository(v)) {
                return Err(at(
                    format!("entrypoints[{i}].values"),
                    format!("values file `{bad}` must be a path inside the repository"),
                ));
            }
        }
        for (key, value) in [
            ("appset-parameter-sets", self.limits.appset_parameter_sets),
            ("kustomize-objects", self.limits.kustomize_objects),
            ("expanded-objects", self.limits.expanded_objects),
        ] {
            if value.is_some_and(|v| !(1..=LimitsConfig::CEILING).contains(&v)) {
                return Err(at(
                    format!("limits.{key}"),
                    format!(
                        "limits.{key} must be between 1 and {}",
                        LimitsConfig::CEILING
                    ),
                ));
            }
        }
        let host_lists = [
            ("production", &self.environments.production.hosts),
            ("non-production", &self.environments.non_production.hosts),
        ];
        for (env, hosts) in host_lists {
            for (i, host) in hosts.iter().enumerate() {
                Glob::new(host).map_err(|e| {
                    at(
                        format!("environments.{env}.hosts[{i}]"),
                        format!("invalid host pattern `{host}`: {}", e.kind()),
                    )
                })?;
            }
        }
        if let Some(dir) = &self.policies {
            let inside = !dir.as_os_str().is_empty()
                && dir
                    .components()
                    .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
            if !inside {
                return Err(at(
                    "policies".into(),
                    "policies must name a folder inside the repository, relative to its root"
                        .into(),
                ));
            }
        }
        if let Some(v) = &self.helm.kube_version {
            let plain = v.trim_start_matches('v');
            let valid = !plain.is_empty()
                && plain.split('.').count() <= 3
                && plain
                    .split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            if !valid {
                return Err(at(
                    "helm.kube-version".into(),
                    format!("kube-version `{v}` is not a version such as \"1.31\""),
                ));
            }
        }
        Ok(())
    }

    /// True when the config's `ignore` globs exclude this repository-relative path.
    pub fn is_ignored(&self, rel_path: &str) -> bool {
        !self.ignore.is_empty() && self.ignore_set.is_match(rel_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new(".envfence.yaml"), text)
    }

    #[test]
    fn helm_section_never_names_a_program() {
        let c = parse("helm:\n  enabled: false\n  kube-version: \"1.31\"\n").expect("valid");
        assert!(!c.helm.enabled);
        assert_eq!(c.helm.kube_version.as_deref(), Some("1.31"));
        assert!(parse("").expect("empty").helm.enabled);
        let e = parse("helm:\n  binary: ./evil.sh\n").expect_err("binary is not a key");
        assert!(e.0.starts_with(".envfence.yaml:2:"), "{}", e.0);
        let e = parse("helm:\n  kube-version: \"1.31; rm\"\n").expect_err("not a version");
        assert!(e.0.contains("kube-version"), "{}", e.0);
    }

    #[test]
    fn full_example_parses() {
        let c = parse(
            r#"
clusters:
  - name: prod-eu
    server: https://prod-eu.k8s.example.com
    environment: production
    aliases: [prod-eu-1]
environments:
  production:
    words: [live]
    hosts: [api.example.com, "*.payments-live.net"]
  non-production:
    words: [sbx]
    hosts: ["*.staging.example.com"]
paths:
  - glob: "legacy/eu/**"
    cluster: prod-eu
rules:
  no-network-isolation: off
ignore: ["vendor/**"]
"#,
        )
        .expect("valid");
        assert_eq!(c.clusters[0].environment, Some(Environment::Production));
        assert_eq!(
            c.rules.levels(),
            vec![(RuleId::NoNetworkIsolation, RuleLevel::Off)]
        );
        assert!(c.is_ignored("vendor/a/b.yaml"));
        assert!(!c.is_ignored("apps/a.yaml"));
        assert_eq!(
            c.source
                .as_ref()
                .and_then(|s| s.line_of("paths[0].cluster")),
            Some(16)
        );
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        let e = parse("clusters:\n  - name: a\n    environment: production\n    lables: {}\n")
            .expect_err("unknown key");
        assert!(e.0.starts_with(".envfence.yaml:4:5: "), "{}", e.0);
        assert!(e.0.contains("unknown field `lables`"), "{}", e.0);
        let e = parse("rules:\n  no-such-rule: off\n").expect_err("unknown rule");
        assert!(
            e.0.contains(":2:") && e.0.contains("no-such-rule"),
            "{}",
            e.0
        );
        let e = parse("rules:\n  invalid-yaml: loud\n").expect_err("bad level");
        assert!(e.0.contains(":2:"), "{}", e.0);
    }

    #[test]
    fn semantic_errors_point_at_their_line() {
        let e = parse("ignore:\n  - ok/**\n  - 'bad[glob'\n").expect_err("glob");
        assert!(e.0.starts_with(".envfence.yaml:3: invalid glob"), "{}", e.0);
        let e = parse(
            "clusters:\n  - {name: a, environment: production}\n  - {name: a, environment: non-production}\n",
        )
        .expect_err("dup");
        assert!(
            e.0.starts_with(".envfence.yaml:3: cluster name `a`"),
            "{}",
            e.0
        );
    }

    #[test]
    fn entry_points_parse_and_stay_inside_the_repository() {
        let c = parse(
            "entrypoints:\n  - path: envs/prod\n    cluster: prod-eu\n    namespace: argocd\n    values: [values-prod.yaml]\n",
        )
        .expect("valid");
        assert_eq!(c.entrypoints.len(), 1);
        assert_eq!(c.entrypoints[0].values, ["values-prod.yaml"]);
        assert_eq!(
            c.source
                .as_ref()
                .and_then(|s| s.line_of("entrypoints[0].path")),
            Some(2)
        );
        for bad in ["/etc", "../x", ""] {
            let text = format!("entrypoints:\n  - path: \"{bad}\"\n    cluster: prod\n");
            let e = parse(&text).expect_err(bad);
            assert!(e.0.starts_with(".envfence.yaml:2: entry point"), "{}", e.0);
        }
        let e = parse("entrypoints:\n  - path: a\n    cluster: p\n    values: [../v.yaml]\n")
            .expect_err("values outside");
        assert!(e.0.contains("values file `../v.yaml`"), "{}", e.0);
    }

    #[test]
    fn limits_default_override_and_reject_unknown_keys() {
        let none = parse("").expect("empty").limits;
        assert_eq!(none.for_documents(10), Limits::default());
        let c = parse("limits:\n  appset-parameter-sets: 50\n").expect("valid");
        let small = c.limits.for_documents(10);
        assert_eq!(small.appset_parameter_sets, 50);
        assert_eq!(small.kustomize_objects, 10_000);
        assert_eq!(small.expanded_objects, 100_000);
        // The defaults grow with the documents read; a written value still only lowers them.
        let big = c.limits.for_documents(70_000);
        assert_eq!(big.appset_parameter_sets, 50);
        assert_eq!(big.kustomize_objects, 560_000);
        assert_eq!(big.expanded_objects, 560_000);
        // A config may lower a limit, never raise one: a larger value applies as the default.
        let c = parse("limits:\n  appset-parameter-sets: 1000000\n  expanded-objects: 50\n")
            .expect("valid");
        let small = c.limits.for_documents(10);
        assert_eq!(small.appset_parameter_sets, 10_000);
        assert_eq!(small.expanded_objects, 50);
        assert_eq!(c.limits.for_documents(70_000).appset_parameter_sets, 70_000);
        let e = parse("limits:\n  kustomize-objects: 10\n  appset-sets: 5\n").expect_err("key");
        assert!(
            e.0.starts_with(".envfence.yaml:3:") && e.0.contains("unknown field `appset-sets`"),
            "{}",
            e.0
        );
        let e = parse("limits:\n  appset-parameter-sets: 0\n").expect_err("zero");
        assert!(
            e.0.starts_with(".envfence.yaml:2: limits.appset"),
            "{}",
            e.0
        );
        let e = parse("limits:\n  kustomize-objects: 99000000\n").expect_err("ceiling");
        assert!(e.0.contains("between 1 and 1000000"), "{}", e.0);
        assert!(parse("limits:\n  kustomize-objects: -1\n").is_err());
    }

    #[test]
    fn empty_and_comment_only_files_are_fine() {
        assert!(parse("").is_ok());
        assert!(parse("# nothing yet\n").is_ok());
        assert!(parse("a: [").is_err());
        // A block scalar that runs to the end of the file, with no final line break.
        let c = parse("clusters:\n  - name: prod\n    environment: production\n    server: |\n      https://prod.example").expect("valid");
        assert_eq!(c.clusters.len(), 1);
    }
}
