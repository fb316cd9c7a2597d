//! helmfile: `helmfile.yaml`, `helmfile.yaml.gotmpl`, `helmfile.d/`, and any YAML file whose
//! top level lists `releases:` with charts (`clusters/<cluster>.yaml`). Each (helmfile,
//! environment) pair is one run: its cluster is the release's `kubeContext`, else
//! `helmDefaults.kubeContext`, else the environment's name (else the file's name). Each
//! installed release is a local chart rendered with the values files it lists, or an opaque
//! placement named by the release (a remote chart).
//!
//! Templated helmfiles and values files are evaluated with the subset in [`template`]; the
//! walk keeps the text of Go templates ([`SkipReason::Template`]), never reading anything
//! outside the repository. `env` and `requiredEnv` are opaque: envfence's own environment is
//! never read.

pub mod template;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::budget::{Budget, BudgetCut};
use crate::documents::{self, Node, SkipReason};
use crate::evidence::{Evidence, HelmfileHop, Hop, OpaqueHop, ValuesFileHop};
use crate::location::Location;
use crate::topology::build::Worklist;
use crate::topology::expand::helm::{
    missing_values_file, to_json, ChartInstall, RenderFlags, RenderRequest, ValuesInput,
};
use crate::topology::expand::kustomize::DirectoryMode;
use crate::topology::family::{
    identity_signals, opaque_placement, Family, FamilyRoot, NoteContext, Notes, Opaque, Stage,
};
use crate::topology::index::{self, RepoIndex};
use crate::topology::{Delivery, Deployer, DeployerKind, PlacedObject, Unresolved};
use crate::walk::Skipped;
use template::{Stop, StopWhy, Value, OPAQUE_MARK};

pub struct Helmfile;

/// How deep `helmfiles:` and `bases:` may nest.
const MAX_DEPTH: usize = 8;

/// What reports call a release.
const RELEASE: &str = "helmfile release";

impl Family for Helmfile {
    fn name(&self) -> &'static str {
        "helmfile"
    }

    fn stage(&self) -> Option<Stage> {
        Some(Stage::Deployers)
    }

    fn seed(&self, w: &mut Worklist<'_>) {
        let sources = Sources::new(w.index(), w.skipped());
        let helmfiles = sources.helmfiles();
        // Helmfiles another one names (`helmfiles:`, `bases:`) run from it, not on their own.
        let mut nested = BTreeSet::new();
        for path in &helmfiles {
            let mut r = Reader::new(&sources, "default");
            if let Ok(state) = r.state(path, &Value::Map(BTreeMap::new()), 0) {
                nested.extend(state.helmfiles.iter().map(|(p, _)| p.clone()));
                nested.extend(state.bases.iter().cloned());
            }
        }
        for path in helmfiles.iter().filter(|p| !nested.contains(*p)) {
            let mut r = Reader::new(&sources, "default");
            let environments = match r.state(path, &Value::Map(BTreeMap::new()), 0) {
                Ok(state) if !state.environments.is_empty() => state.environments,
                _ => vec![("default".to_owned(), 1)],
            };
            for (env, line) in environments {
                let chain = vec![Evidence::new(
                    Location::new(&Arc::from(path.as_str()), line),
                    Hop::Helmfile(Box::new(HelmfileHop::Environment {
                        name: env.as_str().into(),
                    })),
                )];
                run(w, &sources, path, &env, None, chain, 0);
            }
        }
    }

    fn notes(&self, cx: &NoteContext<'_, '_>, out: &mut Notes) {
        let sources = Sources::new(cx.index, cx.skipped);
        for path in sources.helmfiles() {
            out.roots.insert(FamilyRoot {
                dir: index::parent(&path).to_owned(),
                family: "helmfile",
            });
        }
    }
}

/// The helmfile texts of the repository: parsed files by path, and Go templates' text.
struct Sources<'s> {
    index: &'s RepoIndex<'s>,
    templates: BTreeMap<&'s str, &'s Arc<str>>,
}

impl<'s> Sources<'s> {
    fn new(index: &'s RepoIndex<'s>, skipped: &'s [Skipped]) -> Self {
        let templates = skipped
            .iter()
            .filter_map(|s| match &s.reason {
                SkipReason::Template(_, Some(text)) => Some((&*s.rel_path, text)),
                _ => None,
            })
            .collect();
        Sources { index, templates }
    }

    /// The helmfiles: by name (`helmfile*`, `helmfile.d/*`), or by what they hold (a
    /// top-level `releases:` of charts).
    fn helmfiles(&self) -> Vec<String> {
        use rayon::prelude::*;
        // Every document of the repository is looked at: on all cores.
        let mut out: BTreeSet<String> = self
            .index
            .files
            .par_iter()
            .filter(|f| {
                // A Kubernetes object is no helmfile: only kind-less documents are looked into.
                let releases = f.documents.iter().any(|d| {
                    d.id.kind.is_none()
                        && d.root
                            .get("releases")
                            .and_then(Node::as_seq)
                            .is_some_and(|r| r.iter().any(|x| x.get("chart").is_some()))
                });
                (by_name(&f.path) && f.documents.iter().any(|d| d.root.as_map().is_some()))
                    || releases
            })
            .map(|f| f.path.to_string())
            .collect();
        for (path, text) in &self.templates {
            if by_name(path) || text.lines().any(|l| l.trim_end() == "releases:") {
                out.insert((*path).to_owned());
            }
        }
        out.into_iter().collect()
    }
}

fn by_name(path: &str) -> bool {
    index::basename(path).starts_with("helmfile") || index::parent(path).ends_with("helmfile.d")
}

/// What one helmfile says for one environment, its `bases:` merged in.
#[derive(Default)]
struct State {
    /// Environment names, each with the line that declares it.
    environments: Vec<(String, u32)>,
    /// The environment's values, and where each leaf is set (`a.b` → location).
    values: Value,
    origins: BTreeMap<String, Location>,
    /// `helmDefaults.kubeContext`, with its location.
    kube_context: Option<(String, Location)>,
    releases: Vec<(Arc<str>, Node)>,
    /// `helmfiles:` entries, each with the location that names it.
    helmfiles: Vec<(String, Location)>,
    bases: Vec<String>,
    notes: Vec<Unresolved>,
}

/// Reads helmfiles for one environment.
struct Reader<'r, 's> {
    sources: &'r Sources<'s>,
    env: String,
    /// Evaluations the step budget stopped.
    cuts: std::cell::RefCell<Vec<BudgetCut>>,
}

impl<'r, 's> Reader<'r, 's> {
    fn new(sources: &'r Sources<'s>, env: &str) -> Self {
        Reader {
            sources,
            env: env.to_owned(),
            cuts: std::cell::RefCell::default(),
        }
    }

    /// `.` of a template: the environment and its values (and a release, when given).
    fn dot(&self, values: &Value, release: Option<(&str, &str)>) -> Value {
        let mut m = BTreeMap::new();
        let mut env = BTreeMap::new();
        env.insert("Name".to_owned(), Value::Str(self.env.clone()));
        env.insert("Values".to_owned(), values.clone());
        m.insert("Environment".to_owned(), Value::Map(env));
        m.insert("Values".to_owned(), values.clone());
        m.insert("StateValues".to_owned(), values.clone());
        if let Some((name, ns)) = release {
            let mut r = BTreeMap::new();
            r.insert("Name".to_owned(), Value::Str(name.to_owned()));
            r.insert("Namespace".to_owned(), Value::Str(ns.to_owned()));
            m.insert("Release".to_owned(), Value::Map(r));
        }
        Value::Map(m)
    }

    /// The documents of `path` (a helmfile or values file) for this environment: parsed as
    /// they are, or evaluated first when it is a Go template. Each part of a templated
    /// helmfile (between `---` lines) sees the values the parts before it declared.
    fn documents(
        &self,
        path: &str,
        dot: &mut dyn FnMut(Option<&[Node]>) -> Value,
    ) -> Result<Vec<Node>, Unresolved> {
        let file: Arc<str> = Arc::from(path);
        if let Some(text) = self.sources.templates.get(path) {
            let mut out = Vec::new();
            for (first_line, part) in parts(text) {
                let scope = dot(Some(&out));
                let evaluated = template::evaluate(part, first_line, &scope).map_err(|stop| {
                    if stop.why == StopWhy::Budget {
                        self.cuts
                            .borrow_mut()
                            .push(budget_cut(&file, &self.env, &stop));
                    }
                    stopped(&file, &self.env, &stop)
                })?;
                let shown: Arc<str> = Arc::from(format!("{path}.evaluated.yaml"));
                let Some(parsed) = documents::load_rendered(&shown, &evaluated.text, &|l| {
                    evaluated.source_line(l)
                }) else {
                    return Err(Unresolved {
                        location: Location::new(&file, first_line),
                        reason: format!(
                            "{path} evaluated for environment {} is not valid YAML; it is not read",
                            self.env
                        ),
                    });
                };
                out.extend(parsed.documents.iter().map(|d| d.root.clone()));
            }
            return Ok(out);
        }
        let Some(i) = self.sources.index.file(path) else {
            return Err(Unresolved {
                location: Location::new(&file, 1),
                reason: format!("{path} is not in this repository"),
            });
        };
        Ok(self.sources.index.files[i]
            .documents
            .iter()
            .map(|d| d.root.clone())
            .collect())
    }

    /// The state of helmfile `path` for this environment; `inherited` are the values of the
    /// helmfile that names it.
    fn state(&mut self, path: &str, inherited: &Value, depth: usize) -> Result<State, Unresolved> {
        let mut state = State {
            values: inherited.clone(),
            ..State::default()
        };
        self.read_into(path, &mut state, depth)?;
        Ok(state)
    }

    fn read_into(&mut self, path: &str, state: &mut State, depth: usize) -> Result<(), Unresolved> {
        let file: Arc<str> = Arc::from(path);
        let dir = index::parent(path).to_owned();
        // Environments are read as the parts come: a later part sees their values.
        let mut seen_parts = 0;
        let mut pending_notes = Vec::new();
        let mut pending_values: Option<(Value, BTreeMap<String, Location>)> = None;
        let env = self.env.clone();
        let docs = {
            let sources = self.sources;
            let reader = Reader::new(sources, &env);
            let mut values = state.values.clone();
            let mut dot = |so_far: Option<&[Node]>| {
                if let Some(docs) = so_far {
                    for d in &docs[seen_parts..] {
                        if let Some(envs) = d.get("environments") {
                            let (v, o, notes) = reader.environment_values(&file, &dir, envs);
                            values.merge(v.clone());
                            pending_values = Some((v, o));
                            pending_notes.extend(notes);
                        }
                    }
                    seen_parts = docs.len();
                }
                reader.dot(&values, None)
            };
            self.documents(path, &mut dot)?
        };
        state.notes.extend(pending_notes);
        if let Some((v, o)) = pending_values {
            state.values.merge(v);
            state.origins.extend(o);
        }
        for doc in &docs {
            // `bases:` come first: what this file says is merged over them.
            for b in doc.get("bases").and_then(Node::as_seq).unwrap_or(&[]) {
                let Some(base) = b.as_str().and_then(|p| index::join(&dir, p, false)) else {
                    continue;
                };
                if depth >= MAX_DEPTH || state.bases.contains(&base) {
                    continue;
                }
                state.bases.push(base.clone());
                if let Err(note) = self.read_into(&base, state, depth + 1) {
                    state.notes.push(note);
                }
            }
            if let Some(envs) = doc.get("environments").and_then(Node::as_map) {
                for e in envs {
                    if let Some(name) = e.key.as_str() {
                        if !state.environments.iter().any(|(n, _)| n == name) {
                            state.environments.push((name.to_owned(), e.key.span.line));
                        }
                    }
                }
                // A plain file's environments (a template's were read part by part).
                if !self.sources.templates.contains_key(path) {
                    if let Some(node) = doc.get("environments") {
                        let (v, o, notes) = self.environment_values(&file, &dir, node);
                        state.values.merge(v);
                        state.origins.extend(o);
                        state.notes.extend(notes);
                    }
                }
            }
            if let Some(e) = doc.get("helmDefaults").and_then(|h| h.entry("kubeContext")) {
                if let Some(v) = e.value.as_str() {
                    let value = self.scalar(v, e.value.span.line, &state.values);
                    state.kube_context = Some((value, Location::new(&file, e.key.span.line)));
                }
            }
            for r in doc.get("releases").and_then(Node::as_seq).unwrap_or(&[]) {
                state.releases.push((Arc::clone(&file), r.clone()));
            }
            for h in doc.get("helmfiles").and_then(Node::as_seq).unwrap_or(&[]) {
                let p = h.as_str().or_else(|| h.get("path").and_then(Node::as_str));
                if let Some(p) = p.and_then(|p| index::join(&dir, p, false)) {
                    state.helmfiles.push((p, Location::new(&file, h.span.line)));
                }
            }
        }
        Ok(())
    }

    /// A plain file's scalar, its `{{ }}` evaluated (an opaque one keeps the marker).
    fn scalar(&self, text: &str, line: u32, values: &Value) -> String {
        if !text.contains("{{") {
            return text.to_owned();
        }
        template::evaluate(text, line, &self.dot(values, None))
            .map_or_else(|_| OPAQUE_MARK.to_owned(), |o| o.text)
            .trim()
            .to_owned()
    }

    /// The values of this environment (`environments.<env>.values`): files and inline maps
    /// merged in order, with where each leaf is set. A file the repository does not hold is
    /// a note, and makes the values partial: what it would set is opaque.
    fn environment_values(
        &self,
        file: &Arc<str>,
        dir: &str,
        environments: &Node,
    ) -> (Value, BTreeMap<String, Location>, Vec<Unresolved>) {
        let mut values = Value::Map(BTreeMap::new());
        let mut origins = BTreeMap::new();
        let mut notes = Vec::new();
        let Some(env) = environments.get(&self.env) else {
            return (values, origins, notes);
        };
        for entry in env.get("values").and_then(Node::as_seq).unwrap_or(&[]) {
            if entry.as_map().is_some() {
                values.merge(to_value(entry, file, "", &mut origins));
                continue;
            }
            let Some(p) = entry.as_str() else { continue };
            let p = &self.scalar(p, entry.span.line, &values);
            let path = index::join(dir, p, false);
            let held = path.as_deref().filter(|p| {
                self.sources.templates.contains_key(p) || self.sources.index.file(p).is_some()
            });
            let Some(path) = held else {
                notes.push(Unresolved {
                    location: Location::new(file, entry.span.line),
                    reason: format!(
                        "values file {p} of helmfile environment {} is not in this repository: the values it sets are opaque",
                        self.env
                    ),
                });
                values.merge(Value::Partial(
                    BTreeMap::new(),
                    format!("the values file {p} (not in this repository)"),
                ));
                continue;
            };
            let at: Arc<str> = Arc::from(path);
            let scope = self.dot(&values, None);
            match self.documents(path, &mut |_| scope.clone()) {
                Ok(docs) => {
                    for d in docs {
                        values.merge(to_value(&d, &at, "", &mut origins));
                    }
                }
                Err(note) => notes.push(note),
            }
        }
        (values, origins, notes)
    }
}

/// A template's parts: the text between `---` lines, each with its first line.
fn parts(text: &str) -> Vec<(u32, &str)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut first_line = 1u32;
    let mut pos = 0;
    for (line, l) in (1u32..).zip(text.split_inclusive('\n')) {
        if l.trim_end() == "---" {
            out.push((first_line, &text[start..pos]));
            start = pos + l.len();
            first_line = line + 1;
        }
        pos += l.len();
    }
    out.push((first_line, &text[start..]));
    out
}

/// A note for a template evaluation that stopped.
fn stopped(file: &Arc<str>, env: &str, stop: &Stop) -> Unresolved {
    Unresolved {
        location: Location::new(file, stop.line),
        reason: format!("{file} is not evaluated for helmfile environment {env}: {stop}"),
    }
}

/// The cut of an evaluation the step budget stopped.
fn budget_cut(file: &Arc<str>, env: &str, stop: &Stop) -> BudgetCut {
    BudgetCut::new(
        Budget::HelmfileTemplateSteps,
        Some(Location::new(file, stop.line)),
        format!(
            "{file} is not evaluated for helmfile environment {env} past {} steps",
            template::STEPS
        ),
    )
}

/// A YAML tree as a template value, recording where each leaf is set.
fn to_value(
    node: &Node,
    file: &Arc<str>,
    prefix: &str,
    origins: &mut BTreeMap<String, Location>,
) -> Value {
    use crate::documents::Value as Y;
    match &node.value {
        Y::Map(entries) => Value::Map(
            entries
                .iter()
                .filter_map(|e| {
                    let k = e.key.as_str()?;
                    let path = if prefix.is_empty() {
                        k.to_owned()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    origins.insert(path.clone(), Location::new(file, e.key.span.line));
                    Some((k.to_owned(), to_value(&e.value, file, &path, origins)))
                })
                .collect(),
        ),
        Y::Seq(items) => Value::List(
            items
                .iter()
                .map(|i| to_value(i, file, prefix, origins))
                .collect(),
        ),
        Y::Scalar(_) if node.is_null() => Value::Null,
        Y::Scalar(t) if t.contains(OPAQUE_MARK) => Value::Opaque(format!("the value of {prefix}")),
        Y::Scalar(t) => match (node.scalar_kind(), t.as_str()) {
            (documents::yaml::ScalarKind::Plain, "true" | "True" | "TRUE") => Value::Bool(true),
            (documents::yaml::ScalarKind::Plain, "false" | "False" | "FALSE") => Value::Bool(false),
            _ => Value::Str(t.to_string()),
        },
    }
}

/// Runs helmfile `path` for environment `env`: each installed release is rendered (a local
/// chart) or placed opaque (a remote one); `helmfiles:` run with the same environment.
fn run(
    w: &mut Worklist<'_>,
    sources: &Sources<'_>,
    path: &str,
    env: &str,
    parent_values: Option<&Value>,
    chain: Vec<Evidence>,
    depth: usize,
) {
    let mut reader = Reader::new(sources, env);
    let empty = Value::Map(BTreeMap::new());
    let read = reader.state(path, parent_values.unwrap_or(&empty), depth);
    for cut in reader.cuts.take() {
        w.cut(cut);
    }
    let mut state = match read {
        Ok(s) => s,
        Err(note) => {
            w.note(note);
            return;
        }
    };
    for n in std::mem::take(&mut state.notes) {
        w.note(n);
    }
    for (file, release) in &state.releases {
        release_run(w, &reader, &state, file, release, env, &chain);
    }
    if depth < MAX_DEPTH {
        for (nested, at) in state.helmfiles.clone() {
            let mut chain = chain.clone();
            chain.push(Evidence::new(
                at.clone(),
                Hop::Helmfile(Box::new(HelmfileHop::Nested {
                    path: nested.as_str().into(),
                })),
            ));
            run(
                w,
                sources,
                &nested,
                env,
                Some(&state.values),
                chain,
                depth + 1,
            );
        }
    }
    for cut in reader.cuts.take() {
        w.cut(cut);
    }
}

/// The text of field `key` of a release.
fn field<'n>(r: &'n Node, key: &str) -> Option<(&'n str, u32)> {
    let e = r.entry(key)?;
    Some((e.value.as_str()?, e.key.span.line))
}

/// Places one release of a helmfile run.
fn release_run(
    w: &mut Worklist<'_>,
    reader: &Reader<'_, '_>,
    state: &State,
    file: &Arc<str>,
    r: &Node,
    env: &str,
    chain: &[Evidence],
) {
    let line = r.span.line;
    let Some((name, _)) = field(r, "name") else {
        return;
    };
    let name = name.to_owned();
    let namespace = field(r, "namespace").map(|(n, _)| n.to_owned());
    let Some((chart, chart_line)) = field(r, "chart") else {
        return;
    };
    let chart = chart.to_owned();
    let at = |l: u32| Location::new(file, l);
    // Whether it is installed: `installed:` and `condition:`.
    if let Some((installed, l)) = field(r, "installed") {
        if installed.contains(OPAQUE_MARK) {
            w.note(Unresolved {
                location: at(l),
                reason: format!(
                    "whether helmfile release {name} is installed in environment {env} is not known statically; it is placed as if installed"
                ),
            });
        } else if installed.trim() == "false" {
            return;
        }
    }
    let mut deployer_at = at(line);
    let mut chain = chain.to_vec();
    if let Some((key, l)) = field(r, "condition") {
        let parts: Vec<&str> = key.split('.').collect();
        match state.values.at(&parts) {
            Some(Value::Bool(true)) => {
                if let Some(origin) = state.origins.get(key) {
                    deployer_at = origin.clone();
                    chain.push(Evidence::new(
                        origin.clone(),
                        Hop::Helmfile(Box::new(HelmfileHop::Condition {
                            key: key.into(),
                            environment: env.into(),
                        })),
                    ));
                }
            }
            Some(Value::Str(s)) if s == "true" => {}
            Some(Value::Opaque(_) | Value::Partial(..)) => {}
            None if matches!(state.values, Value::Partial(..)) => {
                w.note(Unresolved {
                    location: at(l),
                    reason: format!(
                        "condition {key} of helmfile release {name} is not known statically in environment {env}; it is placed as if installed"
                    ),
                });
            }
            _ => return,
        }
    }
    // The cluster: the release's kubeContext, the defaults', the environment's name, or the
    // file's name.
    let stem = index::basename(file)
        .split('.')
        .next()
        .unwrap_or("")
        .to_owned();
    let (cluster_name, hop_at, hop) = if let Some((ctx, l)) = field(r, "kubeContext") {
        (
            ctx.to_owned(),
            at(l),
            HelmfileHop::KubeContext {
                field: "kubeContext",
                value: ctx.into(),
            },
        )
    } else if let Some((ctx, loc)) = &state.kube_context {
        (
            ctx.clone(),
            loc.clone(),
            HelmfileHop::KubeContext {
                field: "helmDefaults.kubeContext",
                value: ctx.as_str().into(),
            },
        )
    } else if env != "default" {
        (
            env.to_owned(),
            chain.first().map_or_else(|| at(1), |e| e.location.clone()),
            HelmfileHop::NamedCluster {
                by: "environment",
                name: env.into(),
            },
        )
    } else if !(stem.starts_with("helmfile") || stem.is_empty()) {
        (
            stem.clone(),
            at(1),
            HelmfileHop::NamedCluster {
                by: "helmfile",
                name: stem.as_str().into(),
            },
        )
    } else {
        // No environment, no kubeContext, a file that names nothing: helmfile runs on
        // whatever kube context is current.
        (String::new(), at(line), HelmfileHop::CurrentContext)
    };
    if cluster_name.contains(OPAQUE_MARK) || cluster_name.contains("{{") {
        w.note(Unresolved {
            location: hop_at,
            reason: format!(
                "the cluster of helmfile release {name} in environment {env} is not known statically; it is not placed"
            ),
        });
        return;
    }
    let cluster = if cluster_name.is_empty() {
        w.inventory_mut().unnamed_because(
            hop_at.clone(),
            "a helmfile with no environment and no kubeContext runs on the current kube context; nothing names this cluster",
        )
    } else {
        w.inventory_mut()
            .resolve_destination(Some(&cluster_name), None, hop_at.clone())
            .0
    };
    chain.push(Evidence::new(hop_at, Hop::Helmfile(Box::new(hop))));
    chain.push(Evidence::new(
        at(line),
        Hop::Helmfile(Box::new(HelmfileHop::Release {
            name: name.as_str().into(),
            chart: chart.as_str().into(),
        })),
    ));
    let labels: Vec<(String, String)> = r.get("labels").map(Node::string_map).unwrap_or_default();
    let signals = identity_signals(
        w.inventory().vocabulary(),
        RELEASE,
        &name,
        labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let deployer = Deployer {
        kind: DeployerKind::Object(RELEASE),
        name: name.clone(),
        location: deployer_at,
    };
    let opaque = |why: String, chain: Vec<Evidence>, w: &Worklist<'_>| {
        let mut evidence = chain;
        evidence.push(Evidence::new(
            at(chart_line),
            Hop::Opaque(Box::new(OpaqueHop {
                kind: RELEASE.into(),
                name: name.as_str().into(),
                why: why.into(),
                judged_by: "name and labels",
            })),
        ));
        opaque_placement(
            Opaque {
                object: PlacedObject {
                    file: Arc::clone(file),
                    line,
                    doc: None,
                    kind: "HelmfileRelease".into(),
                    name: Some(name.as_str().into()),
                    namespace: namespace.as_deref().map(Into::into),
                    images: Box::default(),
                },
                cluster,
                signals: signals.clone(),
                evidence,
                deployer: deployer.clone(),
                renders_chart: false,
            },
            w.inventory(),
        )
    };
    let dir = index::parent(file);
    let local = index::join(dir, &chart, false).filter(|p| {
        w.index()
            .file(format!("{p}/Chart.yaml").trim_start_matches('/'))
            .is_some()
    });
    let Some(chart_dir) = local else {
        let why = if chart.starts_with("./") || chart.starts_with("../") {
            format!("chart {chart} is not in this repository")
        } else {
            format!("remote chart {chart}")
        };
        let p = opaque(why, chain, w);
        w.place_raw(p);
        return;
    };
    // The values the release lists, in order.
    let mut request = RenderRequest {
        chart: chart_dir.clone(),
        release: name.clone(),
        namespace: namespace.clone(),
        values: Vec::new(),
        set: Vec::new(),
        flags: RenderFlags::default(),
    };
    let mut values_evidence = Vec::new();
    let mut notes = Vec::new();
    let release_dot = reader.dot(
        &state.values,
        Some((&name, namespace.as_deref().unwrap_or("default"))),
    );
    for v in r.get("values").and_then(Node::as_seq).unwrap_or(&[]) {
        if v.as_map().is_some() {
            request.values.push(ValuesInput::Inline(
                to_json(v, &|s| s.to_owned()).to_string(),
            ));
            values_evidence.push(Evidence::new(
                at(v.span.line),
                Hop::InlineValues {
                    field: "values".into(),
                },
            ));
            continue;
        }
        let Some(p) = v.as_str() else { continue };
        let p = &reader.scalar(p, v.span.line, &state.values);
        let Some(path) = index::join(dir, p, false) else {
            notes.push(missing_values_file(at(v.span.line), p));
            continue;
        };
        let hop = Evidence::new(
            Location::new(&Arc::from(path.as_str()), 1),
            Hop::ValuesFile(Box::new(ValuesFileHop {
                path: path.as_str().into(),
                via: Some("helmfile values".into()),
            })),
        );
        if let Some(text) = reader.sources.templates.get(path.as_str()) {
            match template::evaluate(text, 1, &release_dot) {
                Ok(out) => {
                    request.values.push(ValuesInput::Inline(out.text));
                    values_evidence.push(hop);
                }
                Err(stop) => {
                    let vfile: Arc<str> = Arc::from(path.as_str());
                    if stop.why == StopWhy::Budget {
                        w.cut(budget_cut(&vfile, env, &stop));
                    }
                    w.note(stopped(&vfile, env, &stop));
                    let p = opaque(format!("its values file {path} is not evaluated"), chain, w);
                    w.place_raw(p);
                    return;
                }
            }
        } else if w.index().file(&path).is_some() {
            request.values.push(ValuesInput::File(path));
            values_evidence.push(hop);
        } else {
            notes.push(missing_values_file(at(v.span.line), p));
        }
    }
    for s in r.get("set").and_then(Node::as_seq).unwrap_or(&[]) {
        if let (Some(n), Some(v)) = (
            s.get("name").and_then(Node::as_str),
            s.get("value").and_then(Node::as_str),
        ) {
            request.set.push((n.to_owned(), v.to_owned(), false));
        }
    }
    let fallback = opaque(
        format!("local chart {chart_dir}, not rendered"),
        chain.clone(),
        w,
    );
    let delivery = Delivery {
        mode: DirectoryMode::default(),
        default_namespace: namespace.clone(),
        signals,
        ..Delivery::new(deployer, cluster, chart_dir, chain)
    };
    w.install_chart(ChartInstall {
        request,
        delivery,
        values_evidence,
        notes,
        fallback: vec![fallback],
        fallback_notes: Vec::new(),
    });
}
