//! User policies in Rego (docs/policies-rego.md), evaluated with `regorus`.
//!
//! `.rego` files of `--policies DIR` (or the config's `policies:`) whose package lies under
//! `envfence.` follow conftest's conventions: the sets `deny`, `violation` and `warn` hold
//! strings or objects with `msg` (and optional `rule`, `severity`, `location`). Packages under
//! `envfence.repository` are evaluated once, with `input` = the topology; every other
//! `envfence.` package once per placement, with `input` = the placement ([`input`]). In both,
//! `data.envfence` is the whole topology and the config. Each message becomes a finding with
//! rule id `rego/<package>/<rule>`, which can never be a built-in id.
//!
//! Budgets (docs/security.md): a time budget per evaluation, a memory budget for the
//! evaluations of a scan ([`memory`]), a cap on what one evaluation may report, and no network
//! built-ins (regorus is built without `http`, and without the other built-ins that reach
//! outside the process).

mod depth;
mod index;
pub mod memory;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rayon::prelude::*;
use regorus::Value;

use super::placement::resource_of;
use super::{RuleContext, RuleId};
use crate::findings::{Finding, Location, Severity};
use crate::topology::{Cluster, DocRef, Placement, Topology};
pub use crate::vocabulary::parse_rego_id as parse_id;

/// Wall time one evaluation (one package's rules for one placement, or the repository-level
/// evaluation of one package) may take.
pub const EVALUATION_TIME_BUDGET: Duration = Duration::from_secs(2);

/// Wall time compiling a scan's policies may take.
pub const COMPILE_TIME_BUDGET: Duration = Duration::from_secs(10);

/// Messages one set may report in one evaluation for one placement; more is a policy defect,
/// reported as an error.
pub const MAX_MESSAGES_PER_PLACEMENT: usize = 100;

/// Messages one set may report in a repository-level evaluation.
pub const MAX_MESSAGES_PER_REPOSITORY: usize = 10_000;

/// Characters of one message kept in a finding.
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// The sets a policy package reports through, and the severity each defaults to.
const SETS: [(&str, Severity); 3] = [
    ("deny", Severity::Error),
    ("violation", Severity::Error),
    ("warn", Severity::Warning),
];

/// The package prefix of policies envfence evaluates.
const PREFIX: &str = "envfence.";
/// Packages evaluated once per repository instead of once per placement.
const REPOSITORY_PACKAGE: &str = "envfence.repository";

/// A rule name a policy gives (`rule` of a message) as the last part of a rule id: characters
/// outside `[A-Za-z0-9_.-]` become `-`.
fn rule_part(rule: &str) -> String {
    rule.chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// `# METADATA` of a package or rule: the title and description SARIF shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub title: Option<String>,
    pub description: Option<String>,
}

/// One policy package under `envfence.`.
#[derive(Debug, Clone)]
pub struct Package {
    /// `envfence.images`.
    pub name: String,
    /// The first file that declares it, as shown in messages.
    pub file: String,
    /// Evaluated once per repository (`envfence.repository...`), not per placement.
    pub repository: bool,
    /// The sets it defines (`deny`, `violation`, `warn`), each with its `# METADATA`.
    pub sets: Vec<(&'static str, Metadata)>,
    pub metadata: Metadata,
    /// For each set of `sets`, which inputs it can report anything for.
    indexes: Vec<index::SetIndex>,
}

impl Package {
    /// `rego/envfence.images/deny`.
    pub fn rule_id(&self, set: &str) -> Option<RuleId> {
        parse_id(&format!("rego/{}/{set}", self.name)).map(RuleId::Rego)
    }
}

/// A `test_` rule of a policy file.
#[derive(Debug, Clone)]
struct TestRule {
    package: String,
    name: String,
}

/// Compiled Rego policies.
#[derive(Clone)]
pub struct RegoPolicies {
    engine: regorus::Engine,
    pub packages: Vec<Package>,
    tests: Vec<TestRule>,
}

impl std::fmt::Debug for RegoPolicies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegoPolicies")
            .field("packages", &self.packages)
            .finish_non_exhaustive()
    }
}

/// A `.rego` file: the name it is shown by, and its text.
#[derive(Debug, Clone)]
pub struct Source {
    pub shown: String,
    pub text: String,
}

/// Whether a file is a policy test (`*_test.rego`), loaded only by `envfence test-policies`.
pub fn is_test_file(path: &std::path::Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with("_test.rego"))
}

/// The `.rego` files of a policy folder, in name order, read like the folder's YAML policy
/// files (confined to the repository when the folder is in it). `*_test.rego` files are left
/// out unless `with_tests`.
pub fn read_files(
    dir: &std::path::Path,
    repository: &crate::config::Repository,
    confined: bool,
    with_tests: bool,
) -> anyhow::Result<Vec<Source>> {
    use crate::config::shown_path;
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read policies {}: {e}", shown_path(dir)))?;
    let mut paths: Vec<std::path::PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rego"))
        .filter(|p| with_tests || !is_test_file(p))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let shown = shown_path(&path);
            let text = repository
                .read(&path, confined)
                .map_err(|cause| anyhow::anyhow!("cannot read {shown}: {cause}"))?;
            Ok(Source { shown, text })
        })
        .collect()
}

/// The policy files of `--policies DIR` that a scan evaluates.
pub fn read_dir(
    dir: &std::path::Path,
    repository: &crate::config::Repository,
    confined: bool,
) -> anyhow::Result<Vec<Source>> {
    read_files(dir, repository, confined, false)
}

/// `envfence test-policies DIR`: compiles every `.rego` file of `dir` (tests included) and
/// runs the `test_` rules.
pub fn test_dir(dir: &std::path::Path) -> anyhow::Result<Vec<TestOutcome>> {
    let repository = crate::config::Repository::at(std::path::Path::new("."));
    let sources = read_files(dir, &repository, false, true)?;
    anyhow::ensure!(
        !sources.is_empty(),
        "no .rego files in {}",
        crate::config::shown_path(dir)
    );
    Ok(RegoPolicies::compile(&sources)?.run_tests())
}

fn new_engine() -> regorus::Engine {
    let mut engine = regorus::Engine::new();
    // OPA's behaviour: a built-in given the wrong types is undefined, not an error.
    engine.set_strict_builtin_errors(false);
    engine.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
        limit: EVALUATION_TIME_BUDGET,
        check_interval: NonZeroU32::new(1024).unwrap_or(NonZeroU32::MIN),
    });
    engine
}

/// A regorus error on one line: `file:line:col: message` when it points into a policy (its
/// own form is a source excerpt over several lines), else its first line.
fn one_line(shown: &str, error: &anyhow::Error) -> String {
    let text = format!("{error:#}");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let at = lines.iter().find_map(|l| l.strip_prefix("--> "));
    let message = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .or_else(|| {
            lines
                .iter()
                .find(|l| !l.is_empty() && !l.starts_with("-->"))
                .copied()
        })
        .unwrap_or("unknown error");
    let line = match at {
        Some(at) => format!("{at}: {message}"),
        None if message.starts_with(shown) => message.to_owned(),
        None => format!("{shown}: {message}"),
    };
    crate::sanitize::text(&line).into_owned()
}

impl RegoPolicies {
    /// Compiles the sources. A file that does not compile is an error naming its
    /// `file:line:col`; so is one that nests too deeply ([`depth`]), and compiling that takes
    /// longer than [`COMPILE_TIME_BUDGET`] is an error too.
    ///
    /// regorus's parser takes time exponential in how deeply arrays, sets and objects nest
    /// (about twice as long per level: 1.7 s for one expression 16 levels deep), and it cannot
    /// be interrupted. So it runs on a thread of its own, and the scan stops waiting at the
    /// budget; the thread is left to end with the process.
    pub fn compile(sources: &[Source]) -> anyhow::Result<RegoPolicies> {
        let owned = sources.to_vec();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("envfence-rego-compile".into())
            .spawn(move || {
                let _ = tx.send(Self::compile_here(&owned));
            })?;
        match rx.recv_timeout(COMPILE_TIME_BUDGET) {
            Ok(compiled) => compiled,
            Err(_) => anyhow::bail!(
                "policies did not compile within {} s (the compile time budget; deeply nested \
                 arrays, sets or objects take the parser exponential time)",
                COMPILE_TIME_BUDGET.as_secs()
            ),
        }
    }

    fn compile_here(sources: &[Source]) -> anyhow::Result<RegoPolicies> {
        let mut engine = new_engine();
        let mut packages: BTreeMap<String, Package> = BTreeMap::new();
        let mut tests = Vec::new();
        for source in sources {
            if let Some(at) = depth::check(&source.text) {
                anyhow::bail!("{}:{at}", source.shown);
            }
            let package = engine
                .add_policy(source.shown.clone(), source.text.clone())
                .map_err(|e| anyhow::anyhow!("{}", one_line(&source.shown, &e)))?;
            let package = package.strip_prefix("data.").unwrap_or(&package).to_owned();
            let heads = scan_heads(&source.text);
            for name in heads.tests {
                tests.push(TestRule {
                    package: package.clone(),
                    name,
                });
            }
            if !package.starts_with(PREFIX) {
                continue;
            }
            let entry = packages.entry(package.clone()).or_insert_with(|| Package {
                name: package.clone(),
                file: source.shown.clone(),
                repository: package == REPOSITORY_PACKAGE
                    || package.starts_with(&format!("{REPOSITORY_PACKAGE}.")),
                sets: Vec::new(),
                metadata: Metadata::default(),
                indexes: Vec::new(),
            });
            if entry.metadata == Metadata::default() {
                entry.metadata = heads.package_metadata;
            }
            for (set, metadata) in heads.sets {
                match entry.sets.iter_mut().find(|(s, _)| *s == set) {
                    Some((_, m)) if *m == Metadata::default() => *m = metadata,
                    Some(_) => {}
                    None => entry.sets.push((set, metadata)),
                }
            }
        }
        let modules = engine.get_modules().clone();
        for package in packages.values_mut() {
            package.indexes = package
                .sets
                .iter()
                .map(|(set, _)| index::index(&modules, &package.name, set))
                .collect();
        }
        let mut policies = RegoPolicies {
            engine,
            packages: packages.into_values().collect(),
            tests,
        };
        policies.check_compiles()?;
        Ok(policies)
    }

    /// regorus resolves names (unknown functions, unsafe variables) when it first evaluates:
    /// evaluate every set once on an empty input so those errors stop the run up front.
    fn check_compiles(&mut self) -> anyhow::Result<()> {
        self.engine.set_input(Value::new_object());
        let mut paths: Vec<(String, String)> = Vec::new();
        for p in &self.packages {
            for (set, _) in &p.sets {
                paths.push((format!("data.{}.{set}", p.name), p.file.clone()));
            }
        }
        for t in &self.tests {
            paths.push((format!("data.{}.{}", t.package, t.name), String::new()));
        }
        if let Some((path, file)) = paths.first() {
            let engine = &mut self.engine;
            if let Err(e) = memory::watch(|| engine.eval_rule(path.clone())) {
                if is_compile_error(&e) {
                    anyhow::bail!("{}", one_line(file, &e));
                }
            }
        }
        Ok(())
    }

    /// Every rule id the packages declare, with its default severity and metadata.
    pub fn declared_rules(&self) -> Vec<(RuleId, Severity, Metadata)> {
        let mut out = Vec::new();
        for p in &self.packages {
            for (set, metadata) in &p.sets {
                let Some(id) = p.rule_id(set) else { continue };
                let severity = default_severity(set);
                let metadata = Metadata {
                    title: metadata.title.clone().or_else(|| p.metadata.title.clone()),
                    description: metadata
                        .description
                        .clone()
                        .or_else(|| p.metadata.description.clone()),
                };
                out.push((id, severity, metadata));
            }
        }
        out
    }

    /// Runs the `test_` rules: (package.rule, outcome) in file order.
    pub fn run_tests(&self) -> Vec<TestOutcome> {
        let mut engine = self.engine.clone();
        memory::watch(|| {
            self.tests
                .iter()
                .map(|t| {
                    let name = format!("{}.{}", t.package, t.name);
                    engine.set_input(Value::Undefined);
                    let started = std::time::Instant::now();
                    let result = match engine.eval_rule(format!("data.{name}")) {
                        Ok(Value::Bool(true)) => TestResult::Pass,
                        Ok(Value::Undefined) => TestResult::Fail("undefined".to_owned()),
                        Ok(other) => TestResult::Fail(format!("{other}")),
                        Err(e) => TestResult::Error(one_line(&t.package, &e)),
                    };
                    TestOutcome {
                        name,
                        result,
                        duration: started.elapsed(),
                    }
                })
                .collect()
        })
    }
}

/// Whether an evaluation error is about the policy's text rather than the input.
fn is_compile_error(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}");
    text.lines()
        .next()
        .is_some_and(|l| l.contains(".rego:") || l.contains("error:"))
}

fn default_severity(set: &str) -> Severity {
    SETS.iter()
        .find(|(s, _)| *s == set)
        .map_or(Severity::Error, |(_, sev)| *sev)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestResult {
    Pass,
    Fail(String),
    Error(String),
}

#[derive(Debug, Clone)]
pub struct TestOutcome {
    pub name: String,
    pub result: TestResult,
    pub duration: Duration,
}

/// What the text of a policy file declares: rule heads of the reporting sets and tests, and
/// the `# METADATA` blocks before them.
#[derive(Debug, Default)]
struct Heads {
    sets: Vec<(&'static str, Metadata)>,
    tests: Vec<String>,
    package_metadata: Metadata,
}

/// Finds rule heads by their name at the start of a line, as `opa fmt` writes them.
fn scan_heads(text: &str) -> Heads {
    let mut heads = Heads::default();
    let mut pending: Option<Metadata> = None;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "# METADATA" {
            let mut yaml = String::new();
            while let Some(next) = lines.peek() {
                let Some(body) = next.trim_start().strip_prefix('#') else {
                    break;
                };
                yaml.push_str(body.strip_prefix(' ').unwrap_or(body));
                yaml.push('\n');
                lines.next();
            }
            pending = Some(parse_metadata(&yaml));
            continue;
        }
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let metadata = pending.take().unwrap_or_default();
        if name == "package" {
            heads.package_metadata = metadata;
            continue;
        }
        let after = &line[name.len()..];
        let is_head =
            after.is_empty() || after.starts_with([' ', '[', '{', ':', '=', '(', '\t', '.']);
        if !is_head {
            continue;
        }
        if let Some((set, _)) = SETS.iter().find(|(s, _)| *s == name) {
            if !heads.sets.iter().any(|(s, _)| s == set) {
                heads.sets.push((set, metadata));
            }
        } else if name.starts_with("test_") && !heads.tests.contains(&name) {
            heads.tests.push(name);
        }
    }
    heads
}

fn parse_metadata(yaml: &str) -> Metadata {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap_or_default();
    let field = |key: &str| {
        value
            .get(key)
            .and_then(serde_yaml::Value::as_str)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    Metadata {
        title: field("title"),
        description: field("description"),
    }
}

/// `input.cluster.tier` (DESIGN §3): `null` for a non-production cluster with no tier signal.
pub fn cluster_tier(cluster: &Cluster) -> Option<String> {
    cluster.tier().map(|t| t.to_string())
}

/// `input.workload.purpose` and the signal that decided it (none when nothing did).
pub fn workload_purpose(placement: &Placement) -> (String, Option<String>) {
    let reason =
        (!placement.purpose_reason.is_empty()).then(|| placement.purpose_reason.to_string());
    (placement.purpose().to_string(), reason)
}

fn s(text: &str) -> Value {
    Value::from(text)
}

fn opt(text: Option<&str>) -> Value {
    text.map_or(Value::Null, Value::from)
}

fn num(n: u32) -> Value {
    Value::from(u64::from(n))
}

/// An object of a few entries. Inserting one by one costs less than collecting, which
/// buffers and sorts the entries first.
fn object<const N: usize>(entries: [(&Value, Value); N]) -> Value {
    let mut map = BTreeMap::new();
    for (key, value) in entries {
        map.insert(key.clone(), value);
    }
    Value::from(map)
}

fn string_map(map: &BTreeMap<String, String>) -> Value {
    let mut values = BTreeMap::new();
    for (k, v) in map {
        values.insert(s(k), s(v));
    }
    Value::from(values)
}

/// A YAML node as a Rego value, with YAML 1.2 core scalars (as Kubernetes reads them).
fn node_value(node: &crate::documents::Node, strings: &mut Strings) -> Value {
    use crate::documents::yaml::{ScalarKind, Value as Yaml};
    match &node.value {
        Yaml::Map(entries) => {
            // Inserted one by one (a later duplicate key wins, as with `collect`), which
            // costs less than collecting: that buffers and sorts the entries first.
            let mut map = BTreeMap::new();
            for e in entries {
                if let Some(key) = e.key.as_str() {
                    map.insert(strings.get(key), node_value(&e.value, strings));
                }
            }
            Value::from(map)
        }
        Yaml::Seq(items) => Value::from(
            items
                .iter()
                .map(|item| node_value(item, strings))
                .collect::<Vec<_>>(),
        ),
        Yaml::Scalar(text) => {
            if node.scalar_kind != ScalarKind::Plain {
                return s(text);
            }
            // Most plain scalars are words: only these first characters can start a null, a
            // boolean or a number.
            // (`inf` and `nan` parse as numbers, but are kept as strings: not finite.)
            let may_be_other = match text.as_bytes().first() {
                None => true,
                Some(first) => matches!(
                    first,
                    b'~' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'0'
                        ..=b'9' | b'-' | b'+' | b'.'
                ),
            };
            if !may_be_other {
                return s(text);
            }
            match text.as_str() {
                "" | "~" | "null" | "Null" | "NULL" => Value::Null,
                "true" | "True" | "TRUE" => Value::Bool(true),
                "false" | "False" | "FALSE" => Value::Bool(false),
                t => t
                    .parse::<i64>()
                    .map(Value::from)
                    .ok()
                    .or_else(|| {
                        t.parse::<f64>()
                            .ok()
                            .filter(|f| f.is_finite())
                            .map(Value::from)
                    })
                    .unwrap_or_else(|| s(t)),
            }
        }
    }
}

/// Strings made once per thread: the values of a large repository repeat the same keys,
/// kinds, files and namespaces thousands of times, and each new string is an allocation.
#[derive(Default)]
struct Strings(crate::topology::HashMap<Box<str>, Value>);

impl Strings {
    fn get(&mut self, text: &str) -> Value {
        if let Some(value) = self.0.get(text) {
            return value.clone();
        }
        let value = s(text);
        self.0.insert(text.into(), value.clone());
        value
    }
}

/// The keys of the objects envfence builds, made once: each `Value::from(&str)` is an
/// allocation, and the inputs of a large repository hold millions of keys.
macro_rules! keys {
    ($($key:ident),* $(,)?) => {
        struct Keys {
            $($key: Value,)*
        }

        fn keys() -> &'static Keys {
            static KEYS: OnceLock<Keys> = OnceLock::new();
            KEYS.get_or_init(|| Keys {
                $($key: s(stringify!($key)),)*
            })
        }
    };
}

keys!(
    aliases,
    annotations,
    api_version,
    class,
    class_signal,
    cluster,
    clusters,
    config,
    deployer,
    environment,
    environment_signal,
    evidence,
    file,
    image,
    images,
    kind,
    labels,
    line,
    manifest,
    name,
    namespace,
    note,
    object,
    opaque,
    placements,
    purpose,
    purpose_signal,
    reason,
    rendered,
    server,
    tier,
    unresolved,
    workload,
);

/// What every evaluation of one scan shares: the topology as Rego values.
struct Shared<'a> {
    ctx: &'a RuleContext<'a>,
    /// Per document: what its placements share.
    documents: HashMap<DocRef, DocumentValues>,
    clusters: Vec<Value>,
    /// `input.object` of each placement, by index (`null` for patches).
    objects: Vec<Value>,
    /// `data.envfence`, and the repository-level `input` (the same document).
    topology: Value,
}

/// The Rego values of a workspace's documents, made ahead of the placements ([`prepare`]).
pub struct Prepared(crate::topology::HashMap<DocRef, DocumentValues>);

/// The Rego values of every manifest of `files`: made while the topology is built, on cores
/// its worklist leaves idle. A placed document that is not among them is made when needed.
pub fn prepare(files: &[crate::documents::SourceFile]) -> Prepared {
    let docs: Vec<(DocRef, &crate::documents::Document)> = files
        .iter()
        .enumerate()
        .flat_map(|(file, f)| {
            f.documents
                .iter()
                .enumerate()
                .filter(|(_, d)| d.is_manifest())
                .map(move |(doc, d)| (DocRef { file, doc }, d))
        })
        .collect();
    Prepared(
        docs.par_iter()
            .map_init(Strings::default, |strings, (r, d)| {
                (*r, DocumentValues::of(d, strings))
            })
            .collect(),
    )
}

/// What every placement of one document shares.
#[derive(Clone)]
struct DocumentValues {
    manifest: Value,
    api_version: Value,
    labels: Value,
    annotations: Value,
}

impl DocumentValues {
    fn of(doc: &crate::documents::Document, strings: &mut Strings) -> DocumentValues {
        DocumentValues {
            manifest: node_value(&doc.root, strings),
            api_version: opt(doc.id.api_version.as_deref()),
            labels: string_map(&doc.labels),
            annotations: string_map(&doc.annotations),
        }
    }
}

impl<'a> Shared<'a> {
    fn new(ctx: &'a RuleContext<'a>, prepared: Option<Prepared>) -> Shared<'a> {
        let t = ctx.topology;
        let docs: Vec<DocRef> = t
            .placements
            .iter()
            .filter_map(|p| p.object.doc)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let documents: HashMap<DocRef, DocumentValues> = docs
            .par_iter()
            .map_init(Strings::default, |strings, r| {
                if let Some(made) = prepared.as_ref().and_then(|p| p.0.get(r)) {
                    return Some((*r, made.clone()));
                }
                let doc = ctx.files.get(r.file)?.documents.get(r.doc)?;
                Some((*r, DocumentValues::of(doc, strings)))
            })
            .flatten()
            .collect();
        // The documents no placement needed.
        crate::background::drop_in_background(prepared);
        let clusters: Vec<Value> = t.clusters.iter().map(cluster_value).collect();
        let mut shared = Shared {
            ctx,
            documents,
            clusters,
            objects: Vec::new(),
            topology: Value::Null,
        };
        // Each placement's `input.object`, built once for its evaluation and for the data.
        shared.objects = t
            .placements
            .par_iter()
            .map_init(Strings::default, |strings, p| {
                if p.patch {
                    Value::Null
                } else {
                    shared.object_value(p, strings)
                }
            })
            .collect();
        shared.topology = shared.topology_value(t);
        shared
    }

    fn object_value(&self, p: &Placement, strings: &mut Strings) -> Value {
        let k = keys();
        let doc = p.object.doc.and_then(|r| self.documents.get(&r));
        let images: Vec<Value> = p
            .object
            .images
            .iter()
            .map(|(image, line)| object([(&k.image, s(image)), (&k.line, num(*line))]))
            .collect();
        let of_doc = |get: fn(&DocumentValues) -> &Value, absent: fn() -> Value| {
            doc.map_or_else(absent, |d| get(d).clone())
        };
        object([
            (&k.api_version, of_doc(|d| &d.api_version, || Value::Null)),
            (&k.kind, strings.get(&p.object.kind)),
            (&k.name, opt(p.object.name.as_deref())),
            (
                &k.namespace,
                p.object
                    .namespace
                    .as_deref()
                    .map_or(Value::Null, |n| strings.get(n)),
            ),
            (&k.labels, of_doc(|d| &d.labels, Value::new_object)),
            (
                &k.annotations,
                of_doc(|d| &d.annotations, Value::new_object),
            ),
            (&k.file, strings.get(&p.object.file)),
            (&k.line, num(p.object.line)),
            (&k.images, Value::from(images)),
            // For `data.envfence.placements`, where no `input.workload` sits beside it.
            (&k.class, strings.get(p.workload_class.as_str())),
            (&k.purpose, strings.get(p.purpose().as_str())),
            (
                &k.deployer,
                p.deployer.as_ref().map_or(Value::Null, |d| {
                    strings.get(&format!("{}/{}", d.kind, d.name))
                }),
            ),
            (&k.manifest, of_doc(|d| &d.manifest, || Value::Null)),
        ])
    }

    fn workload_value(p: &Placement) -> Value {
        let k = keys();
        let (purpose, purpose_signal) = workload_purpose(p);
        object([
            (&k.class, s(p.workload_class.as_str())),
            (
                &k.class_signal,
                if p.class_reason.is_empty() {
                    Value::Null
                } else {
                    s(&p.class_reason)
                },
            ),
            (&k.purpose, s(&purpose)),
            (&k.purpose_signal, opt(purpose_signal.as_deref())),
        ])
    }

    fn placement_input(&self, object_value: Value, p: &Placement) -> Value {
        let k = keys();
        let deployer = p.deployer.as_ref().map_or(Value::Null, |d| {
            object([
                (&k.kind, s(&d.kind)),
                (&k.name, s(&d.name)),
                (&k.file, s(&d.location.file)),
                (&k.line, num(d.location.line)),
            ])
        });
        let evidence: Vec<Value> = p.evidence.iter().map(hop_value).collect();
        object([
            (&k.object, object_value),
            (&k.cluster, self.cluster_of(p)),
            (&k.workload, Self::workload_value(p)),
            (&k.deployer, deployer),
            (&k.evidence, Value::from(evidence)),
            (&k.opaque, Value::Bool(p.opaque)),
            (&k.rendered, Value::Bool(self.ctx.topology.is_rendered(p))),
        ])
    }

    /// The placement's cluster, with the environment the placement gives it (an unknown
    /// cluster that receives production is production).
    fn cluster_of(&self, p: &Placement) -> Value {
        let mut cluster = self.clusters.get(p.cluster).cloned().unwrap_or(Value::Null);
        let environment = s(p.cluster_environment.as_str());
        let differs = field(&cluster, "environment").is_some_and(|e| *e != environment);
        if differs {
            if let Ok(map) = cluster.as_object_mut() {
                map.insert(keys().environment.clone(), environment);
            }
        }
        cluster
    }

    fn topology_value(&self, t: &Topology) -> Value {
        let k = keys();
        let mut by_cluster: BTreeMap<Value, Vec<Value>> = t
            .clusters
            .iter()
            .map(|c| (s(&c.name), Vec::new()))
            .collect();
        for (p, object) in t.placements.iter().zip(&self.objects) {
            let Some(cluster) = t.clusters.get(p.cluster).filter(|_| !p.patch) else {
                continue;
            };
            let entry = object.clone();
            by_cluster.entry(s(&cluster.name)).or_default().push(entry);
        }
        let placements: BTreeMap<Value, Value> = by_cluster
            .into_iter()
            .map(|(k, v)| (k, Value::from(v)))
            .collect();
        let unresolved: Vec<Value> = t
            .unresolved
            .iter()
            .map(|u| {
                object([
                    (&k.file, s(&u.location.file)),
                    (&k.line, num(u.location.line)),
                    (&k.reason, s(&u.reason)),
                ])
            })
            .collect();
        let config = self
            .ctx
            .config
            .source
            .as_ref()
            .and_then(|source| source.root.as_ref())
            .map_or_else(Value::new_object, |root| {
                node_value(root, &mut Strings::default())
            });
        object([
            (&k.clusters, Value::from(self.clusters.clone())),
            (&k.placements, Value::from(placements)),
            (&k.unresolved, Value::from(unresolved)),
            (&k.config, config),
        ])
    }
}

/// The part of a placement's input most indexes read.
fn object_and_cluster(object: Value, cluster: Value) -> Value {
    let k = keys();
    self::object([(&k.object, object), (&k.cluster, cluster)])
}

fn hop_value(hop: &crate::findings::Evidence) -> Value {
    let k = keys();
    object([
        (&k.file, s(&hop.location.file)),
        (&k.line, num(hop.location.line)),
        (&k.note, s(&hop.note)),
    ])
}

fn cluster_value(c: &Cluster) -> Value {
    let k = keys();
    object([
        (&k.name, s(&c.name)),
        (&k.server, opt(c.server.as_deref())),
        (
            &k.aliases,
            Value::from(c.aliases.iter().map(|a| s(a)).collect::<Vec<_>>()),
        ),
        (&k.labels, string_map(&c.labels)),
        (&k.environment, s(c.environment.as_str())),
        (&k.environment_signal, s(&c.env_reason)),
        (&k.tier, opt(cluster_tier(c).as_deref())),
    ])
}

/// Where a finding of one evaluation points by default, and what it is about.
struct Subject<'p> {
    placement: Option<&'p Placement>,
    location: Location,
}

/// Runs every Rego policy over the topology; `prepared` are the documents' values when they
/// were made ahead.
pub fn run(
    ctx: &RuleContext<'_>,
    rego: &RegoPolicies,
    prepared: Option<Prepared>,
) -> anyhow::Result<Vec<Finding>> {
    if rego.packages.is_empty() {
        return Ok(Vec::new());
    }
    let shared = Shared::new(ctx, prepared);
    let mut engine = rego.engine.clone();
    engine.add_data(object([(&s("envfence"), shared.topology.clone())]))?;
    let per_placement: Vec<&Package> = rego.packages.iter().filter(|p| !p.repository).collect();
    let per_repository: Vec<&Package> = rego.packages.iter().filter(|p| p.repository).collect();

    // The repository-level evaluation runs on one thread while the per-placement evaluations
    // share the others, so neither waits for the other.
    let (repository_findings, placement_findings) = memory::watch(|| {
        rayon::join(
            || {
                let mut engine = engine.clone();
                let mut findings = Vec::new();
                for package in &per_repository {
                    let location = Location::new(&Arc::from(package.file.as_str()), 1);
                    let subject = Subject {
                        placement: None,
                        location,
                    };
                    engine.set_input(shared.topology.clone());
                    for (set, _) in &package.sets {
                        findings.extend(evaluate(&mut engine, package, set, &subject, ctx)?);
                    }
                }
                anyhow::Ok(findings)
            },
            || evaluate_placements(&engine, &shared, &per_placement, ctx),
        )
    });
    let mut findings = repository_findings?;
    findings.extend(placement_findings?);
    // Freeing the topology's values takes a while; the report need not wait for it.
    let values = (shared.documents, shared.objects, shared.topology, engine);
    let _ = std::thread::Builder::new().spawn(move || drop(values));
    Ok(findings)
}

/// Every per-placement package over every placement (patches excepted), in placement order.
fn evaluate_placements(
    engine: &regorus::Engine,
    shared: &Shared<'_>,
    per_placement: &[&Package],
    ctx: &RuleContext<'_>,
) -> anyhow::Result<Vec<Finding>> {
    if per_placement.is_empty() {
        return Ok(Vec::new());
    }
    let placements: Vec<(usize, &Placement)> = ctx
        .topology
        .placements
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.patch)
        .collect();
    let indexes_read_object_and_cluster = per_placement.iter().all(|package| {
        package
            .indexes
            .iter()
            .all(|index| index.reads_only(&["object", "cluster"]))
    });
    let results: Vec<anyhow::Result<Vec<Finding>>> = placements
        .par_iter()
        .map_init(
            || engine.clone(),
            |engine, &(index, p)| {
                let object = shared.objects[index].clone();
                // The sets that can report anything for this placement (index.rs): asking
                // the interpreter about the others would cost as much and report nothing.
                // Most indexes read only the object and the cluster, which cost little to
                // put together; the whole input is built only for the placements that need it.
                let decide_by = if indexes_read_object_and_cluster {
                    object_and_cluster(object.clone(), shared.cluster_of(p))
                } else {
                    shared.placement_input(object.clone(), p)
                };
                let due: Vec<(&Package, &str)> = per_placement
                    .iter()
                    .flat_map(|package| {
                        package
                            .sets
                            .iter()
                            .zip(&package.indexes)
                            .filter(|(_, index)| index.may_report(&decide_by))
                            .map(move |((set, _), _)| (*package, *set))
                    })
                    .collect();
                let mut out = Vec::new();
                if due.is_empty() {
                    return Ok(out);
                }
                // Built here and dropped after the evaluation, so that the next placement's
                // input reuses the memory (holding every input at once costs page faults).
                let input = if indexes_read_object_and_cluster {
                    shared.placement_input(object, p)
                } else {
                    decide_by
                };
                let subject = Subject {
                    placement: Some(p),
                    location: Location::new(&p.object.file, p.object.line),
                };
                // One input for all the packages: evaluating a rule leaves it as it was.
                engine.set_input(input);
                for (package, set) in due {
                    out.extend(evaluate(engine, package, set, &subject, ctx)?);
                }
                Ok(out)
            },
        )
        .collect();
    let mut findings = Vec::new();
    for result in results {
        findings.extend(result?);
    }
    Ok(findings)
}

/// One evaluation: a set of a package for the input the engine holds.
fn evaluate(
    engine: &mut regorus::Engine,
    package: &Package,
    set: &str,
    subject: &Subject<'_>,
    ctx: &RuleContext<'_>,
) -> anyhow::Result<Vec<Finding>> {
    let mut out = Vec::new();
    let path = format!("data.{}.{set}", package.name);
    let value = engine.eval_rule(path).map_err(|e| {
        let at = match subject.placement {
            Some(p) => format!(" for {}:{}", p.object.file, p.object.line),
            None => " for the repository".to_owned(),
        };
        anyhow::anyhow!(
            "policy {} ({}): evaluating {set}{at} failed: {}",
            package.name,
            package.file,
            one_line(&package.file, &e).trim_start_matches(&format!("{}: ", package.file))
        )
    })?;
    let members: Vec<Value> = match &value {
        Value::Set(items) => items.iter().cloned().collect(),
        Value::Array(items) => items.iter().cloned().collect(),
        Value::Undefined | Value::Null => Vec::new(),
        other => vec![other.clone()],
    };
    let limit = match subject.placement {
        Some(_) => MAX_MESSAGES_PER_PLACEMENT,
        None => MAX_MESSAGES_PER_REPOSITORY,
    };
    if members.len() > limit {
        anyhow::bail!(
            "policy {} ({}): {set} reported {} messages in one evaluation, more than the limit of {limit}",
            package.name,
            package.file,
            members.len()
        );
    }
    for member in members {
        if let Some(f) = finding(package, set, &member, subject, ctx) {
            out.push(f);
        }
    }
    Ok(out)
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.to_string()),
        Value::Undefined | Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn field<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    value.as_object().ok()?.get(&s(key))
}

/// A message of set `set` as a finding; `None` when the config turned its rule off.
fn finding(
    package: &Package,
    set: &str,
    member: &Value,
    subject: &Subject<'_>,
    ctx: &RuleContext<'_>,
) -> Option<Finding> {
    let is_object = member.as_object().is_ok();
    let message = if is_object {
        field(member, "msg")
            .and_then(text_of)
            .unwrap_or_else(|| member.to_string())
    } else {
        text_of(member)?
    };
    let message: String = if message.chars().count() > MAX_MESSAGE_CHARS {
        message
            .chars()
            .take(MAX_MESSAGE_CHARS)
            .chain(['…'])
            .collect()
    } else {
        message
    };
    let own_rule = field(member, "rule")
        .and_then(|r| r.as_string().ok())
        .map(|r| rule_part(r))
        .filter(|r| !r.is_empty());
    let rule = own_rule
        .and_then(|r| package.rule_id(&r))
        .or_else(|| package.rule_id(set))?;
    let given = field(member, "severity")
        .and_then(|v| v.as_string().ok())
        .and_then(|v| match v.as_ref() {
            "error" | "deny" | "violation" => Some(Severity::Error),
            "warning" | "warn" => Some(Severity::Warning),
            "info" | "note" => Some(Severity::Info),
            _ => None,
        });
    let severity = match ctx.policies.rego_level(rule) {
        Some(level) => level?,
        None => given.unwrap_or_else(|| default_severity(set)),
    };
    let location = field(member, "location")
        .and_then(|l| location_of(l, &subject.location))
        .unwrap_or_else(|| subject.location.clone());
    let mut f = Finding::new(rule, severity, location, message.clone()).discriminator(&message);
    if let Some(p) = subject.placement {
        let cluster = &ctx.topology.clusters[p.cluster];
        f = f
            .resource(resource_of(p, ctx.files))
            .cluster(&cluster.name, p.cluster_environment.as_str())
            .subject(&p.object.file, p.object.line);
        for e in &p.evidence {
            f = f.evidence(e.location.clone(), e.note.clone());
        }
    }
    Some(f)
}

/// A policy's `location`: `{"file", "line", "column"}`, each optional; the file defaults to
/// the placement's. A path that is not repository-relative is ignored.
fn location_of(value: &Value, default: &Location) -> Option<Location> {
    let file = match field(value, "file").and_then(|f| f.as_string().ok()) {
        Some(f) if is_repository_path(f) => Arc::from(f.as_ref()),
        Some(_) => return None,
        None => Arc::clone(&default.file),
    };
    let number = |key: &str| {
        field(value, key)
            .and_then(|v| v.as_u64().ok())
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n >= 1)
    };
    let line = number("line").unwrap_or(if Arc::ptr_eq(&file, &default.file) {
        default.line
    } else {
        1
    });
    let mut location = Location::new(&file, line);
    if let Some(column) = number("column") {
        location = location.with_column(column);
    }
    Some(location)
}

fn is_repository_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.split('/').any(|seg| seg == ".." || seg.is_empty())
        && !path.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_rego_prefixed_and_never_builtin() {
        assert_eq!(
            parse_id("rego/envfence.limits/deny"),
            Some("rego/envfence.limits/deny")
        );
        assert_eq!(parse_id("nonprod-on-prod-cluster"), None);
        assert_eq!(parse_id("rego/envfence.x/a:b"), None);
        assert_eq!(parse_id("rego/envfence.x/a,b"), None);
        assert_eq!(parse_id("rego//deny"), None);
        assert_eq!(rule_part("no latest: tags"), "no-latest--tags");
    }

    #[test]
    fn heads_and_metadata_are_found() {
        let text = "# METADATA\n# title: Package title\npackage envfence.x\n\n\
                    # METADATA\n# title: Deny title\n# description: Why.\n\
                    deny contains msg if {\n\tmsg := \"x\"\n}\n\nwarn[msg] {\n}\n\
                    test_one if true\ndeny_helper := 1\n";
        let heads = scan_heads(text);
        assert_eq!(
            heads.package_metadata.title.as_deref(),
            Some("Package title")
        );
        assert_eq!(heads.sets.len(), 2);
        assert_eq!(heads.sets[0].0, "deny");
        assert_eq!(heads.sets[0].1.description.as_deref(), Some("Why."));
        assert_eq!(heads.sets[1].0, "warn");
        assert_eq!(heads.tests, vec!["test_one".to_owned()]);
    }

    #[test]
    fn repository_paths_only() {
        assert!(is_repository_path("apps/a.yaml"));
        assert!(!is_repository_path("/etc/passwd"));
        assert!(!is_repository_path("../x.yaml"));
        assert!(!is_repository_path("a//b"));
    }
}
