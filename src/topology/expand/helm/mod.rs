//! Helm: local charts (a `Chart.yaml` in the repository) rendered with the user's own
//! `helm template` (DESIGN §3 "Rendered placement"), once per distinct input.
//!
//! Deployers that install a local chart (Argo CD Applications and ApplicationSet templates,
//! Flux HelmReleases from this repository's GitRepository) hand the topology a
//! [`ChartInstall`]; a chart that no deployer installs but that carries `values-<env>.yaml`
//! files is rendered once per such file onto the implicit cluster `<env>`. The topology is
//! built in rounds: each round lists the renders it needs, [`Renders::render_missing`] runs
//! them in parallel, and the next round places what they produced (rendered Applications and
//! Flux objects are deployers in turn, so a round can ask for more).
//!
//! Safety: the binary comes from `--helm` or `ENVFENCE_HELM`, else `helm` on PATH, never from
//! the repository or its config. It runs with an empty environment (temporary Helm homes, no
//! tokens, no proxies), no network (`helm template` of a local chart), a timeout, a memory
//! limit and an output cap, and only for charts and values files whose every file stays
//! inside the repository. The renders of a scan are bounded together too (their count, wall
//! time, output bytes and objects, each side of `scan --base` on its own); a spent budget is
//! a [`BudgetCut`]. helm's error text is never shown: it can quote values.
//!
//! This module is the engine, apart from the families that ask it for renders: the types a
//! render is asked and answered with, [`Renders`] (every render of a scan), and the helpers
//! the families share. `runner` finds and runs helm, `cache` keys renders by their
//! content, `output` turns helm's output into placed files. Each family's own reading of a
//! chart install lives with the family (`crate::topology::family::argo::helm`,
//! `crate::topology::family::flux::helm`, `crate::topology::expand::kustomize_helm`,
//! `crate::topology::family::conventions::values_file`).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::budget::{Budget, BudgetCut};
use crate::documents::yaml::{ScalarKind, Value};
use crate::documents::{Node, SourceFile};
use crate::evidence::Evidence;
use crate::location::Location;
use crate::topology::index::{self, RepoIndex};
use crate::topology::{Delivery, Placement, Unresolved};

mod cache;
mod output;
mod runner;
mod store;

pub use store::RenderStore;

pub use output::{rendered_docs, split_output, TooManyObjects};
pub use runner::locate;

/// A render that takes longer is killed.
pub const RENDER_TIMEOUT: Duration = Duration::from_secs(10);
/// `helm template` output beyond this is refused (the render is killed).
pub const MAX_RENDER_OUTPUT: usize = 16 * 1024 * 1024;
/// Distinct renders per scan (per side of `scan --base`); the rest stay opaque, with a note.
pub const MAX_RENDERS: usize = 2000;
/// Resident memory one `helm template` child may use before it is killed: several times what
/// the largest honest render needs (about 150 MiB for 16 MiB of output).
pub const HELM_MEMORY: u64 = 1024 * 1024 * 1024;
/// Wall time all renders of a scan (per side of `scan --base`) may take together; after it,
/// no render starts and one running is stopped.
pub const RENDER_TIME_BUDGET: Duration = Duration::from_secs(120);
/// Bytes of helm output all kept renders of a scan (per side) may hold together.
pub const MAX_RENDERED_BYTES: usize = 64 * 1024 * 1024;
/// Objects all kept renders of a scan (per side) may yield together.
pub const MAX_RENDERED_OBJECTS: usize = 100_000;
/// Rounds of "render, then place what it produced" (Helm apps of apps nest this deep).
pub const MAX_ROUNDS: usize = 6;
/// A chart with more files than this is not rendered.
const MAX_CHART_FILES: usize = 20_000;
/// A chart whose files are larger than this in all is not rendered (they are copied for helm).
const MAX_CHART_BYTES: u64 = 64 * 1024 * 1024;

/// Which helm the user chose: `--helm PATH|off`, `ENVFENCE_HELM`, or neither.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum HelmChoice {
    /// `helm` on PATH, when there is one.
    #[default]
    Auto,
    Off,
    Binary(PathBuf),
}

impl HelmChoice {
    /// `off` turns rendering off; anything else names the binary.
    pub fn parse(text: &str) -> HelmChoice {
        if text.eq_ignore_ascii_case("off") {
            HelmChoice::Off
        } else {
            HelmChoice::Binary(PathBuf::from(text))
        }
    }
}

/// The budgets of rendering: the constants above, each of which a test may lower (never
/// raise) through an environment variable, so that the tests of a spent budget need not
/// render for minutes or gigabytes. These test knobs are not documented for users:
/// `ENVFENCE_TEST_HELM_TIMEOUT_MS` ([`RENDER_TIMEOUT`]), `ENVFENCE_TEST_HELM_MEMORY_MIB`
/// ([`HELM_MEMORY`]), `ENVFENCE_TEST_HELM_TIME_BUDGET_MS` ([`RENDER_TIME_BUDGET`]),
/// `ENVFENCE_TEST_HELM_RENDERS` ([`MAX_RENDERS`]), `ENVFENCE_TEST_HELM_RENDERED_BYTES`
/// ([`MAX_RENDERED_BYTES`]), `ENVFENCE_TEST_HELM_RENDERED_OBJECTS` ([`MAX_RENDERED_OBJECTS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelmBudgets {
    pub render_timeout: Duration,
    pub memory: u64,
    pub render_time: Duration,
    pub renders: usize,
    pub rendered_bytes: usize,
    pub rendered_objects: usize,
}

impl Default for HelmBudgets {
    fn default() -> Self {
        HelmBudgets {
            render_timeout: RENDER_TIMEOUT,
            memory: HELM_MEMORY,
            render_time: RENDER_TIME_BUDGET,
            renders: MAX_RENDERS,
            rendered_bytes: MAX_RENDERED_BYTES,
            rendered_objects: MAX_RENDERED_OBJECTS,
        }
    }
}

impl HelmBudgets {
    /// The defaults, lowered by the test knobs that are set.
    pub fn from_env() -> Self {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// [`HelmBudgets::from_env`] through `get`; a value that is not a number is ignored.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let knob = |key: &str| get(key).and_then(|v| v.trim().parse::<u64>().ok());
        let d = HelmBudgets::default();
        let millis = |key: &str, default: Duration| {
            knob(key).map_or(default, |ms| default.min(Duration::from_millis(ms)))
        };
        let count = |key: &str, default: usize| {
            knob(key).map_or(default, |n| {
                default.min(usize::try_from(n).unwrap_or(default))
            })
        };
        HelmBudgets {
            render_timeout: millis("ENVFENCE_TEST_HELM_TIMEOUT_MS", d.render_timeout),
            memory: knob("ENVFENCE_TEST_HELM_MEMORY_MIB")
                .map_or(d.memory, |mib| d.memory.min(mib.saturating_mul(1 << 20))),
            render_time: millis("ENVFENCE_TEST_HELM_TIME_BUDGET_MS", d.render_time),
            renders: count("ENVFENCE_TEST_HELM_RENDERS", d.renders),
            rendered_bytes: count("ENVFENCE_TEST_HELM_RENDERED_BYTES", d.rendered_bytes),
            rendered_objects: count("ENVFENCE_TEST_HELM_RENDERED_OBJECTS", d.rendered_objects),
        }
    }
}

/// The helm binary a scan renders with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helm {
    pub path: PathBuf,
    /// `v3.17.3`.
    pub version: String,
    pub kube_version: Option<String>,
}

impl std::fmt::Display for Helm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "helm {} at {}", self.version, self.path.display())
    }
}

/// Whether charts can be rendered in this scan, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    Ready(Helm),
    /// `--helm off`, `ENVFENCE_HELM=off` or `helm.enabled: false`.
    Off(&'static str),
    NotFound,
}

impl Availability {
    /// How to turn rendering on, for the note on each chart left opaque.
    pub fn hint(&self) -> String {
        match self {
            Availability::Ready(_) => String::new(),
            Availability::Off(by) if by.starts_with("helm.enabled") => {
                format!("chart rendering is off ({by}); set helm.enabled: true to render it")
            }
            Availability::Off(by) if by.starts_with("--helm") => {
                format!("chart rendering is off ({by}); to render it, drop that setting and have helm 3 on PATH or pass --helm PATH")
            }
            Availability::Off(by) => format!("chart rendering is off ({by})"),
            Availability::NotFound => "helm was not found: install helm 3 or pass --helm PATH (or ENVFENCE_HELM) to render it".into(),
        }
    }
}

/// One source of values, in the order helm applies them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValuesInput {
    /// A repository file (`values-production.yaml`).
    File(String),
    /// Values written inline (`helm.values`, `valuesObject`, a HelmRelease's `values`), as
    /// YAML or JSON text.
    Inline(String),
}

/// One distinct `helm template` run: the cache key of the run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RenderRequest {
    /// Repository-relative chart folder.
    pub chart: String,
    pub release: String,
    pub namespace: Option<String>,
    pub values: Vec<ValuesInput>,
    /// `--set` / `--set-string` (name, value, as string).
    pub set: Vec<(String, String, bool)>,
    pub flags: RenderFlags,
}

/// The `helm template` switches a deployer chooses. Argo CD and Flux install CRDs and do not
/// deploy `helm test` hooks (the default); kustomize's `helmCharts` decides per entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RenderFlags {
    pub include_crds: bool,
    pub skip_tests: bool,
    pub skip_hooks: bool,
    /// `--api-versions`, each.
    pub api_versions: Vec<String>,
    /// `--kube-version`, over the config's `helm.kube-version`.
    pub kube_version: Option<String>,
}

impl Default for RenderFlags {
    fn default() -> Self {
        RenderFlags {
            include_crds: true,
            // `helm test` hooks are not deployed: Argo CD ignores them and Flux runs them
            // only when a HelmRelease enables tests, so they are no workload of the cluster.
            skip_tests: true,
            skip_hooks: false,
            api_versions: Vec::new(),
            kube_version: None,
        }
    }
}

impl RenderRequest {
    fn value_files(&self) -> impl Iterator<Item = &str> {
        self.values.iter().filter_map(|v| match v {
            ValuesInput::File(f) => Some(f.as_str()),
            ValuesInput::Inline(_) => None,
        })
    }

    /// How the evidence names this render.
    pub fn describe(&self) -> String {
        let files: Vec<&str> = self.value_files().map(index::basename).collect();
        let inline = self
            .values
            .iter()
            .filter(|v| matches!(v, ValuesInput::Inline(_)))
            .count();
        let mut with = Vec::new();
        if !files.is_empty() {
            with.push(files.join(", "));
        }
        if inline > 0 {
            with.push("inline values".into());
        }
        if !self.set.is_empty() {
            with.push(format!("{} parameters", self.set.len()));
        }
        let with = if with.is_empty() {
            "its default values".to_owned()
        } else {
            with.join(" + ")
        };
        format!(
            "helm template {} {}{} with {with}",
            self.release,
            self.chart,
            self.namespace
                .as_deref()
                .map(|ns| format!(" -n {ns}"))
                .unwrap_or_default()
        )
    }
}

/// A deployer installing a local chart: what to render, where to place it, and what to do
/// when it cannot be rendered (today's opaque placement and note).
#[derive(Debug, Clone)]
pub struct ChartInstall {
    pub request: RenderRequest,
    /// Where rendered objects go; its `dir` is the chart folder.
    pub delivery: Delivery,
    /// Where values come from (files, inline blocks), for the evidence.
    pub values_evidence: Vec<Evidence>,
    /// Notes that hold whether or not the chart renders (a values file that is missing).
    pub notes: Vec<Unresolved>,
    pub fallback: Vec<Placement>,
    pub fallback_notes: Vec<Unresolved>,
}

/// What a render produced.
#[derive(Debug, Clone)]
pub enum Rendered {
    /// Files appended to the workspace (indices into the combined file list).
    Files(Vec<usize>),
    Failed(String),
}

/// Every render of the scan so far, and how to run more.
#[derive(Debug)]
pub struct Renders {
    pub availability: Availability,
    /// The first rendered file in the combined file list (= the number of repository files).
    pub first_rendered: usize,
    results: HashMap<RenderRequest, Rendered>,
    /// Content hash of each input → the request that rendered it.
    by_hash: HashMap<[u8; 32], RenderRequest>,
    /// `helm template` runs, and the wall time spent in them.
    pub runs: usize,
    /// Renders taken from the store of earlier runs instead of running helm.
    pub cached: usize,
    /// Where renders are kept between runs (`--cache`), when they are.
    store: Option<RenderStore>,
    pub time: Duration,
    /// The budgets that cut rendering short (a render's time or memory, the scan's renders,
    /// render time or rendered output).
    pub cuts: Vec<BudgetCut>,
    budgets: HelmBudgets,
    /// Output bytes and objects of the renders kept so far, against
    /// [`HelmBudgets::rendered_bytes`] and [`HelmBudgets::rendered_objects`].
    kept_bytes: usize,
    kept_objects: usize,
    /// Why no more render is run: the scan's render time is spent (as each note says it).
    time_spent: Option<String>,
    /// Why no more render is run or kept: the scan's rendered output is spent.
    output_spent: Option<String>,
    /// Output bytes of each render by content hash, for the other side to count what it adopts.
    bytes: HashMap<[u8; 32], usize>,
    /// Chart folder → digest of its files (or why it is not rendered).
    chart_digests: HashMap<String, Result<[u8; 32], String>>,
    /// Renders of the other side of a diff-aware scan, by content hash: an unchanged chart
    /// with unchanged values is not rendered twice.
    donated: HashMap<[u8; 32], Donated>,
    /// For a side read from git objects: the private folder its charts are copied into, and
    /// what was copied (a path → whether the copy can be used).
    staging: Option<tempfile::TempDir>,
    staged: HashMap<String, Result<(), String>>,
}

/// A render of the other side of a diff-aware scan: its files and output bytes, or its note.
type Donated = Result<(Vec<SourceFile>, usize), String>;

/// Copies a path of a revision (relative to the scanned folder) to the same relative path under
/// a folder; an error says why the chart is not rendered.
pub type Export<'a> = &'a (dyn Fn(&str, &Path) -> Result<(), String> + Sync);

impl Renders {
    pub fn new(availability: Availability, first_rendered: usize) -> Self {
        Renders {
            availability,
            first_rendered,
            results: HashMap::new(),
            by_hash: HashMap::new(),
            runs: 0,
            cached: 0,
            store: None,
            time: Duration::ZERO,
            cuts: Vec::new(),
            budgets: HelmBudgets::from_env(),
            kept_bytes: 0,
            kept_objects: 0,
            time_spent: None,
            output_spent: None,
            bytes: HashMap::new(),
            chart_digests: HashMap::new(),
            donated: HashMap::new(),
            staging: None,
            staged: HashMap::new(),
        }
    }

    /// Keeps renders in `store` between runs, and takes them from it.
    pub fn with_store(mut self, store: Option<RenderStore>) -> Self {
        self.store = store;
        self
    }

    /// Bounds the store of renders after a scan ([`store::MAX_BYTES`]).
    pub fn trim_store(&self) {
        if let Some(store) = &self.store {
            store.trim(store::MAX_BYTES);
        }
    }

    /// Whether nothing was asked to render.
    pub fn is_empty(&self) -> bool {
        self.results.is_empty()
    }

    /// Takes the renders of the other side of a diff-aware scan (`files` is its file list):
    /// a request whose inputs hash the same reuses them instead of running helm.
    pub fn adopt(&mut self, other: &Renders, files: &[SourceFile]) {
        for (hash, request) in &other.by_hash {
            let donated = match other.results.get(request) {
                Some(Rendered::Files(indices)) => Ok((
                    indices
                        .iter()
                        .filter_map(|&i| files.get(i).cloned())
                        .collect(),
                    other.bytes.get(hash).copied().unwrap_or(0),
                )),
                Some(Rendered::Failed(note)) => Err(note.clone()),
                None => continue,
            };
            self.donated.insert(*hash, donated);
        }
    }

    /// [`Renders::render_missing`] for a side read from git objects: each request's chart
    /// folder and values files are first copied (confined, bounded) into a private folder.
    pub fn render_missing_staged(
        &mut self,
        export: Export<'_>,
        requests: &BTreeSet<RenderRequest>,
        files: &mut Vec<SourceFile>,
    ) -> usize {
        if self.helm().is_none() {
            return 0;
        }
        if self.staging.is_none() {
            match tempfile::tempdir() {
                Ok(dir) => self.staging = Some(dir),
                Err(e) => {
                    let note = format!("not rendered: cannot make a temporary folder: {e}");
                    let pending: Vec<RenderRequest> = requests
                        .iter()
                        .filter(|r| !self.results.contains_key(*r))
                        .cloned()
                        .collect();
                    for r in &pending {
                        self.results
                            .insert(r.clone(), Rendered::Failed(note.clone()));
                    }
                    return pending.len();
                }
            }
        }
        let Some(staging) = self.staging.as_ref().map(|d| d.path().to_path_buf()) else {
            return 0;
        };
        let mut refused = 0;
        for r in requests {
            if self.results.contains_key(r) {
                continue;
            }
            let mut problem = None;
            for path in std::iter::once(r.chart.as_str()).chain(r.value_files()) {
                let copied = self
                    .staged
                    .entry(path.to_owned())
                    .or_insert_with(|| export(path, &staging));
                if let Err(note) = copied {
                    problem.get_or_insert_with(|| note.clone());
                }
            }
            if let Some(note) = problem {
                self.results.insert(r.clone(), Rendered::Failed(note));
                refused += 1;
            }
        }
        refused + self.render_missing(&staging, requests, files)
    }

    /// No rendering: every chart stays opaque (diff-aware scans, `topology` without helm).
    pub fn none(availability: Availability, first_rendered: usize) -> Self {
        Renders::new(availability, first_rendered)
    }

    pub fn get(&self, request: &RenderRequest) -> Option<&Rendered> {
        self.results.get(request)
    }

    pub fn helm(&self) -> Option<&Helm> {
        match &self.availability {
            Availability::Ready(h) => Some(h),
            _ => None,
        }
    }

    /// Renders the requests not rendered yet (in parallel), appending their files to
    /// `files`. Returns how many requests got a result (a render, a failure, or a cached
    /// render of the same content): when none did, the topology is final.
    ///
    /// Bounded as a whole: at most [`HelmBudgets::renders`] runs, [`HelmBudgets::render_time`]
    /// of rendering, and [`HelmBudgets::rendered_bytes`] and
    /// [`HelmBudgets::rendered_objects`] kept. Renders run a batch of one per thread at a time
    /// and are kept in request order, so which renders a spent output budget leaves out does
    /// not depend on timing: a render that would pass it, and every one after it, is not kept.
    pub fn render_missing(
        &mut self,
        root: &Path,
        requests: &BTreeSet<RenderRequest>,
        files: &mut Vec<SourceFile>,
    ) -> usize {
        let Availability::Ready(helm) = &self.availability else {
            return 0;
        };
        let helm = helm.clone();
        let mut todo: Vec<(&RenderRequest, [u8; 32])> = Vec::new();
        let mut resolved = 0;
        let pending: Vec<&RenderRequest> = requests
            .iter()
            .filter(|r| !self.results.contains_key(*r))
            .collect();
        for r in pending {
            resolved += 1;
            let digest = self
                .chart_digests
                .entry(r.chart.clone())
                .or_insert_with(|| cache::chart_digest(root, &r.chart))
                .clone();
            let digest = match digest {
                Ok(digest) => digest,
                Err(note) => {
                    self.results.insert(r.clone(), Rendered::Failed(note));
                    continue;
                }
            };
            let hash = cache::content_hash(root, r, &digest);
            if let Some(same) = self
                .by_hash
                .get(&hash)
                .and_then(|s| self.results.get(s))
                .cloned()
            {
                self.results.insert(r.clone(), same);
                continue;
            }
            if let Some(donated) = self.donated.get(&hash).cloned() {
                let result = match donated {
                    Ok((rendered, bytes)) => self.keep(r, hash, rendered, bytes, files),
                    Err(note) => Rendered::Failed(note),
                };
                self.by_hash.insert(hash, r.clone());
                self.results.insert(r.clone(), result);
                continue;
            }
            if let Some(note) = self.stopped() {
                let note = format!("chart {} {note}", r.chart);
                self.results.insert(r.clone(), Rendered::Failed(note));
                continue;
            }
            if self.runs + todo.len() >= self.budgets.renders {
                let limit = self.budgets.renders;
                self.results.insert(
                    r.clone(),
                    Rendered::Failed(format!(
                        "chart {} is not rendered: this scan already ran helm template {limit} times",
                        r.chart
                    )),
                );
                self.cuts.push(BudgetCut::new(
                    Budget::HelmRenders,
                    None,
                    format!("helm template ran {limit} times; the other charts are not rendered"),
                ));
                continue;
            }
            todo.push((r, hash));
        }
        // One render per thread at a time: what a batch holds is bounded by the threads, and
        // each batch starts only while the scan's budgets last.
        let threads = rayon::current_num_threads().max(1);
        for batch in todo.chunks(threads) {
            if self.time_spent.is_none() && self.time >= self.budgets.render_time {
                self.spend_time();
            }
            if let Some(note) = self.stopped().cloned() {
                for (r, _) in batch {
                    let note = format!("chart {} {note}", r.chart);
                    self.results.insert((*r).clone(), Rendered::Failed(note));
                }
                continue;
            }
            let left = self.budgets.render_time.saturating_sub(self.time);
            let limits = runner::RenderLimits {
                child: runner::ChildLimits {
                    timeout: self.budgets.render_timeout.min(left),
                    memory: self.budgets.memory,
                    output: MAX_RENDER_OUTPUT
                        .min(self.budgets.rendered_bytes.saturating_sub(self.kept_bytes)),
                },
                objects: self
                    .budgets
                    .rendered_objects
                    .saturating_sub(self.kept_objects),
            };
            let started = Instant::now();
            let store = self.store.as_ref();
            let outputs: Vec<Result<runner::Output, runner::Failure>> = batch
                .par_iter()
                .map(|(r, hash)| {
                    let kept = store.map(|s| (s, store::store_key(hash, &helm)));
                    runner::render(&helm, root, r, &limits, kept)
                })
                .collect();
            self.time += started.elapsed();
            let cached = outputs
                .iter()
                .filter(|o| o.as_ref().is_ok_and(|o| o.cached))
                .count();
            self.cached += cached;
            self.runs += batch.len() - cached;
            for (&(request, hash), output) in batch.iter().zip(outputs) {
                let result = match output {
                    Ok(out) => self.keep(request, hash, out.files, out.bytes, files),
                    Err(failure) => self.refuse(request, failure),
                };
                self.by_hash.insert(hash, request.clone());
                self.results.insert(request.clone(), result);
            }
        }
        resolved
    }

    /// Keeps a render's files when the scan's output budgets allow them; else records that
    /// they are spent, and the render is not kept.
    fn keep(
        &mut self,
        r: &RenderRequest,
        hash: [u8; 32],
        rendered: Vec<SourceFile>,
        bytes: usize,
        files: &mut Vec<SourceFile>,
    ) -> Rendered {
        // A render adopted from the other side costs no time: only the output bounds it.
        if let Some(note) = &self.output_spent {
            return Rendered::Failed(format!("chart {} {note}", r.chart));
        }
        let over = self.kept_bytes + bytes > self.budgets.rendered_bytes
            || self.kept_objects + rendered.len() > self.budgets.rendered_objects;
        if over {
            return self.spend_output(r);
        }
        self.kept_bytes += bytes;
        self.kept_objects += rendered.len();
        self.bytes.insert(hash, bytes);
        let start = files.len();
        files.extend(rendered);
        Rendered::Files((start..files.len()).collect())
    }

    /// The note (and budget cut) of a render that gave no files.
    fn refuse(&mut self, r: &RenderRequest, failure: runner::Failure) -> Rendered {
        use runner::{Failure, Stop};
        let chart = &r.chart;
        let at = Some(Location::new(&Arc::from(chart_file(chart)), 1));
        let (budget, detail) = match failure {
            Failure::Note(note) => return Rendered::Failed(note),
            // The scan's remaining output or objects were the bound: they are spent.
            Failure::Stopped(Stop::Output(cap)) if cap < MAX_RENDER_OUTPUT => {
                return self.spend_output(r)
            }
            Failure::Objects(_) => return self.spend_output(r),
            // The scan's remaining render time was the bound: it is spent.
            Failure::Stopped(Stop::Timeout(limit)) if limit < self.budgets.render_timeout => {
                let note = self.spend_time();
                return Rendered::Failed(format!("chart {chart} {note}"));
            }
            Failure::Stopped(Stop::Timeout(limit)) => (
                Budget::HelmRenderTime,
                format!(
                    "helm template ran longer than {} and was stopped; the chart is not rendered",
                    runner::shown_duration(limit)
                ),
            ),
            Failure::Stopped(Stop::Memory(limit)) => (
                Budget::HelmMemory,
                format!(
                    "helm template used more than {} MiB of memory and was stopped; the chart is not rendered",
                    limit >> 20
                ),
            ),
            Failure::Stopped(Stop::Output(cap)) => (
                Budget::HelmOutput,
                format!(
                    "helm template printed more than {}; the chart is not rendered",
                    runner::shown_bytes(cap)
                ),
            ),
            Failure::Stopped(other) => {
                return Rendered::Failed(format!("chart {chart} was not rendered: {other}"))
            }
        };
        self.cuts.push(BudgetCut::new(budget, at, detail.clone()));
        Rendered::Failed(format!("chart {chart} was not rendered: {detail}"))
    }

    /// Why no more render is run, when a scan-wide budget is spent.
    fn stopped(&self) -> Option<&String> {
        self.output_spent.as_ref().or(self.time_spent.as_ref())
    }

    /// The scan's render time is spent: no render starts after this. Returns the note.
    fn spend_time(&mut self) -> String {
        let limit = runner::shown_duration(self.budgets.render_time);
        if self.time_spent.is_none() {
            self.cuts.push(BudgetCut::new(
                Budget::HelmRenderTime,
                None,
                format!(
                    "helm template runs reached {limit} in all; the charts after are not rendered"
                ),
            ));
        }
        self.time_spent
            .get_or_insert_with(|| {
                format!("is not rendered: this scan's helm template runs reached their limit of {limit} in all")
            })
            .clone()
    }

    /// The scan's rendered output is spent: no render starts or is kept after this.
    fn spend_output(&mut self, r: &RenderRequest) -> Rendered {
        let bytes = runner::shown_bytes(self.budgets.rendered_bytes);
        let objects = self.budgets.rendered_objects;
        if self.output_spent.is_none() {
            self.cuts.push(BudgetCut::new(
                Budget::HelmOutput,
                None,
                format!(
                    "renders reached {bytes} of output or {objects} objects in all; the charts after are not rendered"
                ),
            ));
        }
        let note = self.output_spent.get_or_insert_with(|| {
            format!("is not rendered: this scan's renders reached their limit of {bytes} of output or {objects} objects in all")
        });
        Rendered::Failed(format!("chart {} {note}", r.chart))
    }

    /// Whether any render of this chart produced objects.
    pub fn rendered_chart(&self, chart: &str) -> bool {
        self.results
            .iter()
            .any(|(r, out)| r.chart == chart && matches!(out, Rendered::Files(_)))
    }
}

/// A YAML node as JSON (which helm reads as YAML), with every string substituted.
pub(crate) fn to_json(node: &Node, subst: &dyn Fn(&str) -> String) -> serde_json::Value {
    match &node.value {
        Value::Map(entries) => serde_json::Value::Object(
            entries
                .iter()
                .filter_map(|e| Some((subst(e.key.as_str()?), to_json(&e.value, subst))))
                .collect(),
        ),
        Value::Seq(items) => {
            serde_json::Value::Array(items.iter().map(|i| to_json(i, subst)).collect())
        }
        Value::Scalar(text) => {
            if node.scalar_kind() != ScalarKind::Plain {
                return serde_json::Value::String(subst(text));
            }
            match text.as_str() {
                "" | "~" | "null" | "Null" | "NULL" => serde_json::Value::Null,
                "true" | "True" | "TRUE" => serde_json::Value::Bool(true),
                "false" | "False" | "FALSE" => serde_json::Value::Bool(false),
                t => t
                    .parse::<i64>()
                    .map(serde_json::Value::from)
                    .ok()
                    .or_else(|| {
                        t.parse::<f64>()
                            .ok()
                            .filter(|f| f.is_finite())
                            .map(serde_json::Value::from)
                    })
                    .unwrap_or_else(|| serde_json::Value::String(subst(t))),
            }
        }
    }
}

/// The chart folder of a repository path, when it holds a `Chart.yaml`.
pub fn is_chart(index: &RepoIndex<'_>, dir: &str) -> bool {
    index.file(&chart_file(dir)).is_some()
}

fn chart_file(dir: &str) -> String {
    if dir.is_empty() {
        "Chart.yaml".into()
    } else {
        format!("{dir}/Chart.yaml")
    }
}

/// The note on a values file a deployer names that the repository does not hold (`shown` as
/// the note names it); the chart is rendered without that file.
pub(crate) fn missing_values_file(location: Location, shown: &str) -> Unresolved {
    Unresolved {
        location,
        reason: format!(
            "values file {shown} is not in this repository; the chart is rendered without it"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test knobs lower a budget, never raise it; a value that is not a number is ignored.
    #[test]
    fn budget_knobs_only_lower() {
        let knobs = |key: &str| match key {
            "ENVFENCE_TEST_HELM_TIMEOUT_MS" => Some("500".to_owned()),
            "ENVFENCE_TEST_HELM_TIME_BUDGET_MS" => Some("999999999".to_owned()),
            "ENVFENCE_TEST_HELM_MEMORY_MIB" => Some("lots".to_owned()),
            "ENVFENCE_TEST_HELM_RENDERED_OBJECTS" => Some(" 7 ".to_owned()),
            _ => None,
        };
        let b = HelmBudgets::from_lookup(knobs);
        assert_eq!(b.render_timeout, Duration::from_millis(500));
        assert_eq!(b.render_time, RENDER_TIME_BUDGET);
        assert_eq!(b.memory, HELM_MEMORY);
        assert_eq!(b.rendered_objects, 7);
        assert_eq!(b.rendered_bytes, MAX_RENDERED_BYTES);
        assert_eq!(b.renders, MAX_RENDERS);
        assert_eq!(HelmBudgets::from_lookup(|_| None), HelmBudgets::default());
    }

    #[test]
    fn choice_parses_off() {
        assert_eq!(HelmChoice::parse("off"), HelmChoice::Off);
        assert_eq!(
            HelmChoice::parse("/usr/bin/helm"),
            HelmChoice::Binary(PathBuf::from("/usr/bin/helm"))
        );
    }
}
