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
//! tokens, no proxies), no network (`helm template` of a local chart), a timeout and an
//! output cap, and only for charts and values files whose every file stays inside the
//! repository.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::clusters::Inventory;
use super::index::{self, DocRef, RepoIndex};
use super::{Delivery, Deployer, Placement, Signal, SignalLevel, Unresolved};
use crate::config::Config;
use crate::documents::yaml::{ScalarKind, Value};
use crate::documents::{self, Document, Node, SourceFile};
use crate::location::{Evidence, Location};

/// A render that takes longer is killed.
pub const RENDER_TIMEOUT: Duration = Duration::from_secs(10);
/// `helm template` output beyond this is refused (the render is killed).
pub const MAX_RENDER_OUTPUT: usize = 16 * 1024 * 1024;
/// Distinct renders per scan; the rest stay opaque, with a note.
pub const MAX_RENDERS: usize = 2000;
/// Rounds of "render, then place what it produced" (Helm apps of apps nest this deep).
pub const MAX_ROUNDS: usize = 6;
/// A chart with more files than this is not rendered.
const MAX_CHART_FILES: usize = 20_000;

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

/// Finds the helm binary: an explicit choice must work (an error is a usage error); `helm` on
/// PATH is used when present. A binary inside the scanned repository is never run.
pub fn locate(
    choice: &HelmChoice,
    config: &Config,
    repo_root: &Path,
) -> Result<Availability, String> {
    if !config.helm.enabled {
        return Ok(Availability::Off("helm.enabled: false in the config"));
    }
    let kube_version = config.helm.kube_version.clone();
    let inside_repo = |p: &Path| {
        std::fs::canonicalize(p)
            .is_ok_and(|c| std::fs::canonicalize(repo_root).is_ok_and(|root| c.starts_with(root)))
    };
    match choice {
        HelmChoice::Off => Ok(Availability::Off("--helm off or ENVFENCE_HELM=off")),
        HelmChoice::Binary(path) => {
            if inside_repo(path) {
                return Err(format!(
                    "--helm {}: the binary is inside the scanned repository; envfence never runs the repository's programs",
                    path.display()
                ));
            }
            let version =
                version_of(path).map_err(|e| format!("--helm {}: {e}", path.display()))?;
            Ok(Availability::Ready(Helm {
                path: path.clone(),
                version,
                kube_version,
            }))
        }
        HelmChoice::Auto => {
            let found = std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .filter(|dir| dir.is_absolute())
                    .map(|dir| dir.join("helm"))
                    .find(|p| p.is_file() && !inside_repo(p))
            });
            Ok(match found.and_then(|p| Some((version_of(&p).ok()?, p))) {
                Some((version, path)) => Availability::Ready(Helm {
                    path,
                    version,
                    kube_version,
                }),
                None => Availability::NotFound,
            })
        }
    }
}

/// `helm version --short` → `v3.17.3`.
fn version_of(path: &Path) -> Result<String, String> {
    let homes = tempfile::tempdir().map_err(|e| format!("cannot make a temporary folder: {e}"))?;
    let args: Vec<OsString> = vec!["version".into(), "--short".into()];
    let out = run_confined(path, &args, homes.path(), Duration::from_secs(10), 4096)?;
    let text = String::from_utf8_lossy(&out);
    let version = text.trim().split('+').next().unwrap_or("").to_owned();
    if !version.starts_with("v3.") && !version.starts_with("v4.") {
        return Err(format!(
            "not helm 3 (`helm version --short` says `{}`)",
            text.trim()
        ));
    }
    Ok(version)
}

/// Runs helm with an empty environment (only temporary Helm homes in `homes`), stdin closed,
/// in `homes`; kills it after `timeout` or once stdout passes `cap` bytes. Returns stdout, or
/// the first line of stderr.
fn run_confined(
    binary: &Path,
    args: &[OsString],
    homes: &Path,
    timeout: Duration,
    cap: usize,
) -> Result<Vec<u8>, String> {
    let mut child = Command::new(binary)
        .args(args)
        .env_clear()
        .env("HOME", homes)
        .env("HELM_CACHE_HOME", homes.join("cache"))
        .env("HELM_CONFIG_HOME", homes.join("config"))
        .env("HELM_DATA_HOME", homes.join("data"))
        .env("HELM_PLUGINS", homes.join("plugins"))
        .env("HELM_REGISTRY_CONFIG", homes.join("registry.json"))
        .env("HELM_REPOSITORY_CONFIG", homes.join("repositories.yaml"))
        .env("HELM_REPOSITORY_CACHE", homes.join("repository"))
        .env("KUBECONFIG", homes.join("kubeconfig"))
        .current_dir(homes)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let overflow = Arc::new(AtomicBool::new(false));
    let stdout = child.stdout.take().map(|out| {
        let overflow = Arc::clone(&overflow);
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let read = out.take(cap as u64 + 1).read_to_end(&mut bytes);
            if bytes.len() > cap {
                overflow.store(true, Ordering::Relaxed);
            }
            read.map(|_| bytes)
        })
    });
    let stderr = child.stderr.take().map(|err| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = err.take(64 * 1024).read_to_end(&mut bytes);
            bytes
        })
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if overflow.load(Ordering::Relaxed) => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "its output passed the {} MiB cap",
                    cap / (1024 * 1024)
                ));
            }
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "it ran longer than {} s and was stopped",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                let _ = child.kill();
                break Err(format!("cannot wait for helm: {e}"));
            }
        }
    };
    let out = stdout.and_then(|t| t.join().ok()).and_then(Result::ok);
    let err = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    let status = status?;
    if overflow.load(Ordering::Relaxed) {
        return Err(format!(
            "its output passed the {} MiB cap",
            cap / (1024 * 1024)
        ));
    }
    if !status.success() {
        let text = String::from_utf8_lossy(&err);
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("Error:"))
            .or_else(|| text.lines().map(str::trim).find(|l| !l.is_empty()))
            .unwrap_or("no message");
        return Err(first.chars().take(400).collect());
    }
    out.ok_or_else(|| "cannot read its output".to_owned())
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
    pub time: Duration,
    /// Chart folder → digest of its files (or why it is not rendered).
    chart_digests: HashMap<String, Result<[u8; 32], String>>,
    /// Renders of the other side of a diff-aware scan, by content hash: an unchanged chart
    /// with unchanged values is not rendered twice.
    donated: HashMap<[u8; 32], Result<Vec<SourceFile>, String>>,
    /// For a side read from git objects: the private folder its charts are copied into, and
    /// what was copied (a path → whether the copy can be used).
    staging: Option<tempfile::TempDir>,
    staged: HashMap<String, Result<(), String>>,
}

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
            time: Duration::ZERO,
            chart_digests: HashMap::new(),
            donated: HashMap::new(),
            staging: None,
            staged: HashMap::new(),
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
                Some(Rendered::Files(indices)) => Ok(indices
                    .iter()
                    .filter_map(|&i| files.get(i).cloned())
                    .collect()),
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
                .or_insert_with(|| chart_digest(root, &r.chart))
                .clone();
            let digest = match digest {
                Ok(digest) => digest,
                Err(note) => {
                    self.results.insert(r.clone(), Rendered::Failed(note));
                    continue;
                }
            };
            let hash = content_hash(root, r, &digest);
            if let Some(same) = self
                .by_hash
                .get(&hash)
                .and_then(|s| self.results.get(s))
                .cloned()
            {
                self.results.insert(r.clone(), same);
                continue;
            }
            if let Some(donated) = self.donated.get(&hash) {
                let result = match donated {
                    Ok(rendered) => {
                        let start = files.len();
                        files.extend(rendered.iter().cloned());
                        Rendered::Files((start..files.len()).collect())
                    }
                    Err(note) => Rendered::Failed(note.clone()),
                };
                self.by_hash.insert(hash, r.clone());
                self.results.insert(r.clone(), result);
                continue;
            }
            if self.runs + todo.len() >= MAX_RENDERS {
                self.results.insert(
                    r.clone(),
                    Rendered::Failed(format!(
                        "not rendered: this scan already ran helm template {MAX_RENDERS} times"
                    )),
                );
                continue;
            }
            todo.push((r, hash));
        }
        if todo.is_empty() {
            return resolved;
        }
        let started = Instant::now();
        let outputs: Vec<Result<Vec<SourceFile>, String>> = todo
            .par_iter()
            .map(|(r, _)| render(&helm, root, r))
            .collect();
        self.time += started.elapsed();
        self.runs += todo.len();
        for ((request, hash), output) in todo.into_iter().zip(outputs) {
            let result = match output {
                Ok(rendered) => {
                    let start = files.len();
                    files.extend(rendered);
                    Rendered::Files((start..files.len()).collect())
                }
                Err(note) => Rendered::Failed(note),
            };
            self.by_hash.insert(hash, request.clone());
            self.results.insert(request.clone(), result);
        }
        resolved
    }

    /// Whether any render of this chart produced objects.
    pub fn rendered_chart(&self, chart: &str) -> bool {
        self.results
            .iter()
            .any(|(r, out)| r.chart == chart && matches!(out, Rendered::Files(_)))
    }
}

/// The hash of everything a render reads: chart folder (its `digest`), value file contents,
/// inline values, parameters, release and namespace.
fn content_hash(root: &Path, r: &RenderRequest, digest: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(digest);
    h.update(r.chart.as_bytes());
    h.update([0]);
    h.update(r.release.as_bytes());
    h.update([0]);
    h.update(r.namespace.as_deref().unwrap_or("").as_bytes());
    for v in &r.values {
        h.update([1]);
        match v {
            ValuesInput::File(f) => h.update(std::fs::read(root.join(f)).unwrap_or_default()),
            ValuesInput::Inline(text) => h.update(text.as_bytes()),
        }
    }
    for (k, v, s) in &r.set {
        h.update([2, u8::from(*s)]);
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
    }
    h.update(format!("{:?}", r.flags).as_bytes());
    h.finalize().into()
}

/// The hash of a chart folder's files (paths and contents, after symlinks), the same for a
/// working tree and a copy read from git; an error when the chart is not confined.
fn chart_digest(root: &Path, chart: &str) -> Result<[u8; 32], String> {
    let chart_dir = root.join(chart);
    confined(root, &chart_dir)?;
    let mut h = Sha256::new();
    let walk = walkdir::WalkDir::new(&chart_dir)
        .follow_links(true)
        .sort_by_file_name();
    for entry in walk.into_iter().filter_map(Result::ok) {
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(&chart_dir)
            .unwrap_or(entry.path());
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        let bytes = std::fs::read(entry.path()).map_err(|e| {
            format!(
                "{}: cannot read it ({e}); the chart is not rendered",
                rel.display()
            )
        })?;
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    Ok(h.finalize().into())
}

/// Every file of the chart folder, after symlinks, stays inside the repository.
fn confined(root: &Path, chart: &Path) -> Result<(), String> {
    let root =
        std::fs::canonicalize(root).map_err(|e| format!("cannot read the repository: {e}"))?;
    let mut count = 0;
    for entry in walkdir::WalkDir::new(chart).follow_links(true) {
        let entry = entry.map_err(|e| {
            let shown = e
                .path()
                .and_then(|p| p.strip_prefix(&root).ok())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            format!("{shown}: a symlink loops or cannot be read")
        })?;
        count += 1;
        if count > MAX_CHART_FILES {
            return Err(format!("the chart has more than {MAX_CHART_FILES} files"));
        }
        let real = std::fs::canonicalize(entry.path()).map_err(|_| {
            format!(
                "{} is a broken symlink",
                entry
                    .path()
                    .strip_prefix(&root)
                    .unwrap_or(entry.path())
                    .display()
            )
        })?;
        if !real.starts_with(&root) {
            return Err(format!(
                "{} is a symlink that leaves the repository; the chart is not rendered",
                entry
                    .path()
                    .strip_prefix(&root)
                    .unwrap_or(entry.path())
                    .display()
            ));
        }
    }
    Ok(())
}

/// Runs one `helm template` and turns its output into one file per rendered document.
fn render(helm: &Helm, root: &Path, r: &RenderRequest) -> Result<Vec<SourceFile>, String> {
    let chart_dir = root.join(&r.chart);
    confined(root, &chart_dir)?;
    let homes = tempfile::tempdir().map_err(|e| format!("cannot make a temporary folder: {e}"))?;
    let mut args: Vec<OsString> = vec!["template".into()];
    for (on, flag) in [
        (r.flags.include_crds, "--include-crds"),
        (r.flags.skip_tests, "--skip-tests"),
        (r.flags.skip_hooks, "--no-hooks"),
    ] {
        if on {
            args.push(flag.into());
        }
    }
    for v in &r.flags.api_versions {
        args.push("--api-versions".into());
        args.push(v.into());
    }
    if let Some(ns) = &r.namespace {
        args.push("--namespace".into());
        args.push(ns.into());
    }
    if let Some(v) = r.flags.kube_version.as_ref().or(helm.kube_version.as_ref()) {
        args.push("--kube-version".into());
        args.push(v.into());
    }
    for (i, v) in r.values.iter().enumerate() {
        let path = match v {
            ValuesInput::File(f) => {
                let path = root.join(f);
                let real =
                    std::fs::canonicalize(&path).map_err(|e| format!("values file {f}: {e}"))?;
                let root_real = std::fs::canonicalize(root).map_err(|e| e.to_string())?;
                if !real.starts_with(&root_real) || !real.is_file() {
                    return Err(format!(
                        "values file {f} is a symlink that leaves the repository; not rendered"
                    ));
                }
                real
            }
            ValuesInput::Inline(text) => {
                let path = homes.path().join(format!("inline-values-{i}.yaml"));
                std::fs::write(&path, text)
                    .map_err(|e| format!("cannot write inline values: {e}"))?;
                path
            }
        };
        args.push("--values".into());
        args.push(path.into_os_string());
    }
    for (k, v, string) in &r.set {
        args.push(if *string { "--set-string" } else { "--set" }.into());
        args.push(format!("{k}={v}").into());
    }
    // The release name comes from the repository: after `--` it can only be a name, never a
    // flag (`--post-renderer=/bin/sh` would run a program).
    args.push("--".into());
    args.push(r.release.clone().into());
    args.push(chart_dir.clone().into_os_string());
    let out = run_confined(
        &helm.path,
        &args,
        homes.path(),
        RENDER_TIMEOUT,
        MAX_RENDER_OUTPUT,
    )
    // helm may name the chart by its absolute path: show it relative, the same on both sides
    // of a diff-aware scan.
    .map_err(|e| explain_failure(&r.chart, &e.replace(&format!("{}/", root.display()), "")))?;
    let text = String::from_utf8_lossy(&out);
    Ok(split_output(root, r, &text))
}

/// A failure as the note quotes it; missing dependencies say how to vendor them.
fn explain_failure(chart: &str, error: &str) -> String {
    const MISSING: &str = "missing in charts/ directory:";
    if let Some(pos) = error.find(MISSING) {
        let names = error[pos + MISSING.len()..].trim();
        return format!(
            "chart {chart} was not rendered: dependency {names} is not vendored; run `helm dependency build {chart}`"
        );
    }
    format!("chart {chart} was not rendered: helm says \"{error}\"")
}

/// Splits `helm template` output at each `# Source:` document into files placed like
/// manifests: at the template (lines aligned with its text), or at the values-file line that
/// names an object which only the values define.
fn split_output(root: &Path, r: &RenderRequest, text: &str) -> Vec<SourceFile> {
    let value_files: Vec<(String, String)> = r
        .value_files()
        .map(|f| {
            (
                f.to_owned(),
                std::fs::read_to_string(root.join(f)).unwrap_or_default(),
            )
        })
        .collect();
    let mut templates: HashMap<String, Option<String>> = HashMap::new();
    let mut out = Vec::new();
    for chunk in chunks(text) {
        let Some(source) = chunk.source else { continue };
        // `# Source: <chart name>/templates/x.yaml`: the first segment is the chart's name.
        let within = source.split_once('/').map_or(source, |(_, rest)| rest);
        let mut template = index::join(&r.chart, within, false).unwrap_or_default();
        let template_text = templates
            .entry(template.clone())
            .or_insert_with(|| std::fs::read_to_string(root.join(&template)).ok())
            .clone();
        if template_text.is_none() {
            // A packaged subchart: point at the chart itself.
            template = format!("{}/Chart.yaml", r.chart)
                .trim_start_matches('/')
                .to_owned();
        }
        let path: Arc<str> = Arc::from(template.as_str());
        let template_lines: Vec<&str> = template_text.as_deref().unwrap_or("").lines().collect();
        let map = align(&chunk.lines, &template_lines);
        // A trailing newline: a block scalar that ends the input needs its line break.
        let body = format!("{}\n", chunk.lines.join("\n"));
        let Some(file) = documents::load_rendered(&path, &body, &|line| {
            map.get(line as usize - 1).copied().unwrap_or(1)
        }) else {
            continue;
        };
        for doc in split_documents(file) {
            out.push(anchor_to_values(doc, &template_lines, &value_files));
        }
    }
    out
}

struct Chunk<'a> {
    source: Option<&'a str>,
    lines: Vec<&'a str>,
}

/// The documents of helm's output, each with the template it came from.
fn chunks(text: &str) -> Vec<Chunk<'_>> {
    let mut out: Vec<Chunk<'_>> = Vec::new();
    for line in text.lines() {
        if line == "---" || out.is_empty() {
            out.push(Chunk {
                source: None,
                lines: Vec::new(),
            });
            if line == "---" {
                continue;
            }
        }
        let Some(current) = out.last_mut() else {
            continue;
        };
        if current.lines.is_empty() && current.source.is_none() {
            if let Some(source) = line.strip_prefix("# Source: ") {
                current.source = Some(source.trim());
                continue;
            }
        }
        current.lines.push(line);
    }
    out
}

/// For each rendered line, the template line it most likely comes from: the same text, else
/// the same key, searching forward from the previous match; else the previous match.
fn align(rendered: &[&str], template: &[&str]) -> Vec<u32> {
    let mut map = Vec::with_capacity(rendered.len());
    let mut cursor = 0usize;
    let mut last = 1u32;
    let key_of = |line: &str| -> Option<String> {
        let t = line.trim().trim_start_matches("- ");
        let (k, _) = t.split_once(':')?;
        (!k.is_empty() && !k.contains(' ') && !k.contains("{{")).then(|| format!("{k}:"))
    };
    for line in rendered {
        let t = line.trim();
        if t.is_empty() || template.is_empty() || template.len() > 5000 {
            map.push(last);
            continue;
        }
        let found = (cursor..template.len())
            .find(|&i| template[i].trim() == t)
            .or_else(|| {
                let key = key_of(line)?;
                (cursor..template.len()).find(|&i| {
                    template[i]
                        .trim()
                        .trim_start_matches("- ")
                        .starts_with(key.as_str())
                })
            });
        if let Some(i) = found {
            cursor = i + 1;
            last = u32::try_from(i + 1).unwrap_or(u32::MAX);
        }
        map.push(last);
    }
    map
}

/// One file per document, so that each can be placed at its own location.
fn split_documents(file: SourceFile) -> Vec<SourceFile> {
    let SourceFile {
        path,
        kind,
        documents,
        problem,
    } = file;
    documents
        .iter()
        .filter(|d| d.is_manifest())
        .map(|d| {
            let mut d = d.clone();
            d.index = 0;
            SourceFile {
                path: Arc::clone(&path),
                kind,
                documents: Arc::new([d]),
                problem: problem.clone(),
            }
        })
        .collect()
}

/// An object whose name the template does not spell but a values file does (one entry of a
/// `range` over the values) is shown at that values line: that is the line to change.
fn anchor_to_values(
    mut file: SourceFile,
    template: &[&str],
    value_files: &[(String, String)],
) -> SourceFile {
    let Some(name) = file.documents.first().and_then(|d| d.id.name.clone()) else {
        return file;
    };
    if template.iter().any(|l| l.contains(name.as_str())) {
        return file;
    }
    let wanted = [
        format!("name: {name}"),
        format!("name: \"{name}\""),
        format!("name: '{name}'"),
        format!("{name}:"),
        format!("\"{name}\":"),
    ];
    for (path, text) in value_files.iter().rev() {
        let hit = text.lines().position(|l| {
            let t = l.trim().trim_start_matches("- ");
            wanted.iter().any(|w| t == w)
        });
        if let Some(i) = hit {
            let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let path: Arc<str> = Arc::from(path.as_str());
            file.path = Arc::clone(&path);
            for d in Arc::make_mut(&mut file.documents) {
                documents::move_to(d, &path, line);
            }
            return file;
        }
    }
    file
}

/// How the evidence names one `helm.parameters` entry (`helm.parameters image.tag = qa`).
pub const PARAMETER_NOTE: &str = "helm.parameters ";

/// An Argo CD source's `helm:` block, with strings already substituted.
#[derive(Debug, Clone, Default)]
pub struct ArgoHelm {
    pub line: u32,
    pub value_files: Vec<(String, u32)>,
    pub values: Option<(String, u32)>,
    pub values_object: Option<(String, u32)>,
    pub parameters: Vec<(String, String, bool)>,
    /// The line of each parameter's `value:` (else its `- name:`), in `parameters` order.
    pub parameter_lines: Vec<u32>,
    pub release_name: Option<String>,
    pub ignore_missing: bool,
}

impl ArgoHelm {
    pub fn read(source: &Node, subst: &dyn Fn(&str) -> String) -> Option<ArgoHelm> {
        let helm = source.get("helm")?;
        let mut out = ArgoHelm {
            line: helm.span.start.line,
            ..ArgoHelm::default()
        };
        for f in helm.get("valueFiles").and_then(Node::as_seq).unwrap_or(&[]) {
            if let Some(s) = f.as_str() {
                out.value_files.push((subst(s), f.span.start.line));
            }
        }
        if let Some(e) = helm.entry("values") {
            if let Some(s) = e.value.as_str() {
                out.values = Some((subst(s), e.key.span.start.line));
            } else if e.value.as_map().is_some() {
                out.values = Some((to_json(&e.value, subst).to_string(), e.key.span.start.line));
            }
        }
        if let Some(e) = helm.entry("valuesObject") {
            out.values_object = Some((to_json(&e.value, subst).to_string(), e.key.span.start.line));
        }
        for p in helm.get("parameters").and_then(Node::as_seq).unwrap_or(&[]) {
            if let (Some(n), Some(v)) = (
                p.get("name").and_then(Node::as_str),
                p.get("value").and_then(Node::as_str),
            ) {
                let string = p.get("forceString").and_then(Node::as_str) == Some("true");
                out.parameters.push((subst(n), subst(v), string));
                let line = p
                    .entry("value")
                    .map_or(p.span.start.line, |e| e.key.span.start.line);
                out.parameter_lines.push(line);
            }
        }
        out.release_name = helm.get("releaseName").and_then(Node::as_str).map(subst);
        out.ignore_missing =
            helm.get("ignoreMissingValueFiles").and_then(Node::as_str) == Some("true");
        Some(out)
    }
}

/// A YAML node as JSON (which helm reads as YAML), with every string substituted.
fn to_json(node: &Node, subst: &dyn Fn(&str) -> String) -> serde_json::Value {
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
            if node.scalar_kind != ScalarKind::Plain {
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

/// The render an Argo CD Application source asks for. `refs` are the other sources' `ref`
/// names (multi-source `$values/...`); `notes` collects value files that cannot be read.
#[allow(clippy::too_many_arguments)]
pub fn argo_request(
    index: &RepoIndex<'_>,
    chart: &str,
    app_name: &str,
    namespace: Option<&str>,
    helm: Option<&ArgoHelm>,
    refs: &[String],
    file: &Arc<str>,
    evidence: &mut Vec<Evidence>,
    notes: &mut Vec<Unresolved>,
) -> RenderRequest {
    let mut request = RenderRequest {
        chart: chart.to_owned(),
        release: app_name.to_owned(),
        namespace: namespace.map(str::to_owned),
        values: Vec::new(),
        set: Vec::new(),
        flags: RenderFlags::default(),
    };
    let Some(h) = helm else { return request };
    if let Some(r) = &h.release_name {
        request.release.clone_from(r);
    }
    for (f, line) in &h.value_files {
        // `$values/envs/prod.yaml`: a path in the source whose `ref` is `values` — this
        // repository when the file is here.
        let resolved = match f.strip_prefix('$') {
            Some(rest) => {
                let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
                if refs.iter().any(|r| r == name) {
                    index::join("", path, true)
                } else {
                    None
                }
            }
            None => index::join(chart, f, false),
        };
        match resolved.filter(|p| index.file(p).is_some()) {
            Some(p) => {
                evidence.push(Evidence {
                    location: Location::new(&Arc::from(p.as_str()), 1),
                    note: format!("values file {p} (helm.valueFiles)").into(),
                });
                request.values.push(ValuesInput::File(p));
            }
            None if h.ignore_missing => {}
            None => notes.push(Unresolved {
                location: Location::new(file, *line),
                reason: format!(
                    "values file {f} is not in this repository; the chart is rendered without it"
                ),
            }),
        }
    }
    if let Some((text, line)) = &h.values {
        request.values.push(ValuesInput::Inline(text.clone()));
        evidence.push(Evidence {
            location: Location::new(file, *line),
            note: "helm.values".into(),
        });
    }
    if let Some((text, line)) = &h.values_object {
        request.values.push(ValuesInput::Inline(text.clone()));
        evidence.push(Evidence {
            location: Location::new(file, *line),
            note: "helm.valuesObject".into(),
        });
    }
    request.set.clone_from(&h.parameters);
    // One hop per parameter, at its own line: a finding about a value a parameter sets
    // points there (see `ValueSources::new`).
    for ((name, value, _), line) in h.parameters.iter().zip(&h.parameter_lines) {
        evidence.push(Evidence {
            location: Location::new(file, *line),
            note: format!("{PARAMETER_NOTE}{name} = {value}").into(),
        });
    }
    request
}

/// A Flux HelmRelease whose chart is a path of this repository's GitRepository: the render
/// it asks for, with its values evidence and notes.
pub fn flux_request(
    index: &RepoIndex<'_>,
    inventory: &super::clusters::Inventory,
    d: &Document,
    evidence: &mut Vec<Evidence>,
    notes: &mut Vec<Unresolved>,
) -> Option<RenderRequest> {
    let spec = d.root.get("spec")?;
    let chart_spec = spec.get("chart")?.get("spec")?;
    let source = chart_spec.get("sourceRef")?;
    if source.get("kind").and_then(Node::as_str) != Some("GitRepository") {
        return None;
    }
    let name = source.get("name").and_then(Node::as_str).unwrap_or("");
    super::flux::this_repository(index, inventory, name).ok()?;
    let chart_entry = chart_spec.entry("chart")?;
    let chart = index::join("", chart_entry.value.as_str()?, true)?;
    if !is_chart(index, &chart) {
        return None;
    }
    let at = |line: u32| Location::new(&d.file, line);
    let hr_name = d.id.name.clone().unwrap_or_else(|| "?".into());
    let target_ns = spec.get("targetNamespace").and_then(Node::as_str);
    let namespace = target_ns.or(d.id.namespace.as_deref()).map(str::to_owned);
    let release = spec
        .get("releaseName")
        .and_then(Node::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| match target_ns {
            Some(ns) => format!("{ns}-{hr_name}"),
            None => hr_name.to_string(),
        });
    let mut request = RenderRequest {
        chart,
        release,
        namespace,
        values: Vec::new(),
        set: Vec::new(),
        flags: RenderFlags::default(),
    };
    for f in chart_spec
        .get("valuesFiles")
        .and_then(Node::as_seq)
        .unwrap_or(&[])
    {
        let Some(p) = f.as_str().and_then(|p| index::join("", p, true)) else {
            continue;
        };
        if index.file(&p).is_some() {
            evidence.push(Evidence {
                location: Location::new(&Arc::from(p.as_str()), 1),
                note: format!("values file {p} (chart.spec.valuesFiles)").into(),
            });
            request.values.push(ValuesInput::File(p));
        } else {
            notes.push(Unresolved {
                location: at(f.span.start.line),
                reason: format!(
                    "values file {p} is not in this repository; the chart is rendered without it"
                ),
            });
        }
    }
    for from in spec.get("valuesFrom").and_then(Node::as_seq).unwrap_or(&[]) {
        let kind = from.get("kind").and_then(Node::as_str).unwrap_or("");
        let ref_name = from.get("name").and_then(Node::as_str).unwrap_or("");
        let key = from
            .get("valuesKey")
            .and_then(Node::as_str)
            .unwrap_or("values.yaml");
        let optional = from.get("optional").and_then(Node::as_str) == Some("true");
        let target = from.get("targetPath").and_then(Node::as_str);
        let Some((text, location)) =
            values_from(index, kind, ref_name, d.id.namespace.as_deref(), key)
        else {
            if !optional {
                notes.push(Unresolved {
                    location: at(from.span.start.line),
                    reason: format!(
                        "valuesFrom {kind} {ref_name} (key {key}) is not defined in this repository as plain values; the chart is rendered without it"
                    ),
                });
            }
            continue;
        };
        let (text, note) = match target {
            None => (text, format!("valuesFrom {kind} {ref_name} key {key}")),
            Some(path) => match at_target_path(path, &text) {
                Some(nested) => (
                    nested,
                    format!("valuesFrom {kind} {ref_name} key {key} at {path}"),
                ),
                None => {
                    notes.push(Unresolved {
                        location: at(from.span.start.line),
                        reason: format!(
                            "valuesFrom {kind} {ref_name}: envfence does not apply targetPath {path} (list indices); the chart is rendered without it"
                        ),
                    });
                    continue;
                }
            },
        };
        evidence.push(Evidence {
            location,
            note: note.into(),
        });
        request.values.push(ValuesInput::Inline(text));
    }
    if let Some(e) = spec.entry("values") {
        request.values.push(ValuesInput::Inline(
            to_json(&e.value, &|s| s.to_owned()).to_string(),
        ));
        evidence.push(Evidence {
            location: at(e.key.span.start.line),
            note: "HelmRelease values".into(),
        });
    }
    Some(request)
}

/// A HelmRelease of a local chart: its render, placed on `cluster` (where it deploys).
#[allow(clippy::too_many_arguments)]
pub fn flux_install(
    index: &RepoIndex<'_>,
    inventory: &super::clusters::Inventory,
    d: &Document,
    cluster: usize,
    chain: &[Evidence],
    dest_hop: Option<Evidence>,
    signals: &[Signal],
) -> Option<ChartInstall> {
    let (mut values_evidence, mut notes) = (Vec::new(), Vec::new());
    let request = flux_request(index, inventory, d, &mut values_evidence, &mut notes)?;
    let name = d.id.name.clone().unwrap_or_else(|| "?".into());
    let line = d
        .root
        .get("spec")
        .and_then(|s| s.get("chart"))
        .map_or(d.first_line, |c| c.span.start.line);
    let location = Location::new(&d.file, line);
    let mut hops = chain.to_vec();
    hops.extend(dest_hop);
    hops.push(Evidence {
        location: location.clone(),
        note: format!("HelmRelease {name} installs chart {}", request.chart).into(),
    });
    Some(ChartInstall {
        delivery: Delivery {
            deployer: Deployer {
                kind: "HelmRelease".into(),
                name: name.to_string(),
                location,
            },
            cluster,
            dir: request.chart.clone(),
            mode: super::kustomize::DirectoryMode::default(),
            force_namespace: None,
            default_namespace: request.namespace.clone(),
            chain: hops,
            signals: signals.to_vec(),
            helm_releases_to: None,
        },
        request,
        values_evidence,
        notes,
        fallback: Vec::new(),
        fallback_notes: Vec::new(),
    })
}

/// A `valuesFrom` value merged at `targetPath`, as helm-controller does: the path is read
/// like a `--set` key (`a.b.c`, a backslash before a dot inside a key) and the value typed
/// like `--set` (`true`, `false`, `null` and integers are not strings) unless quoted.
/// Returns the values as JSON; `None` for paths with list indices, not supported here.
fn at_target_path(path: &str, value: &str) -> Option<String> {
    let mut keys: Vec<String> = vec![String::new()];
    let mut chars = path.trim().chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => keys.last_mut()?.push(chars.next()?),
            '.' => keys.push(String::new()),
            '[' | ']' | '=' | ',' => return None,
            c => keys.last_mut()?.push(c),
        }
    }
    if keys.iter().any(String::is_empty) {
        return None;
    }
    let quoted = value.len() >= 2
        && (value.starts_with('"') && value.ends_with('"')
            || value.starts_with('\'') && value.ends_with('\''));
    let mut out = match value {
        _ if quoted => serde_json::Value::String(value[1..value.len() - 1].to_owned()),
        "true" => serde_json::Value::Bool(true),
        "false" => serde_json::Value::Bool(false),
        "null" => serde_json::Value::Null,
        // Like `--set`, a leading zero keeps the value a string.
        v => v
            .parse::<i64>()
            .ok()
            .filter(|_| !v.starts_with('0'))
            .map_or_else(
                || serde_json::Value::String(v.to_owned()),
                serde_json::Value::from,
            ),
    };
    for key in keys.into_iter().rev() {
        out = serde_json::Value::Object(std::iter::once((key, out)).collect());
    }
    Some(out.to_string())
}

/// The values text a `valuesFrom` ConfigMap or Secret of the repository holds under `key`.
fn values_from(
    index: &RepoIndex<'_>,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    key: &str,
) -> Option<(String, Location)> {
    if !matches!(kind, "ConfigMap" | "Secret") {
        return None;
    }
    // The topology's one read of a ConfigMap's data: `reuse` counts on it (see its module).
    index.of_kind(kind).find_map(|(_, d)| {
        if d.id.name.as_deref() != Some(name)
            || (d.id.namespace.is_some()
                && namespace.is_some()
                && d.id.namespace.as_deref() != namespace)
        {
            return None;
        }
        let plain = ["data", "stringData"]
            .into_iter()
            .filter(|section| kind == "ConfigMap" || *section == "stringData")
            .find_map(|section| d.root.get(section)?.entry(key));
        if let Some(e) = plain {
            return Some((
                e.value.as_str()?.to_owned(),
                Location::new(&d.file, e.key.span.start.line),
            ));
        }
        let e = d.root.get("data")?.entry(key)?;
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(e.value.as_str()?.trim())
            .ok()?;
        Some((
            String::from_utf8(bytes).ok()?,
            Location::new(&d.file, e.key.span.start.line),
        ))
    })
}

/// One entry of a kustomization's `helmCharts` (or the older `helmChartInflationGenerator`),
/// read as kustomize reads it.
#[derive(Debug, Clone)]
pub enum KustomizeChart {
    /// The chart is in the repository: the render kustomize runs, with its values evidence
    /// and notes about values files that are missing.
    Local {
        request: RenderRequest,
        values_evidence: Vec<Evidence>,
        notes: Vec<Unresolved>,
    },
    /// No copy under the chart home: kustomize would download it; envfence does not.
    Remote(String),
}

/// The render a `helmCharts` entry of the kustomization in `dir` asks for. `root` is the
/// kustomization, `entry` the item; `legacy` reads `helmChartInflationGenerator` names.
/// The chart is `<chartHome>/<name>` (`<chartHome>/<name>-<version>/<name>` when a `repo`
/// and `version` are given), `chartHome` (`helmGlobals.chartHome`, default `charts`)
/// relative to the kustomization. Values as kustomize passes them: `valuesFile` (else the
/// chart's own), `valuesInline` over it (`valuesMerge: override`), then
/// `additionalValuesFiles`; no CRDs unless `includeCRDs`, tests unless `skipTests`.
pub fn kustomize_chart(
    index: &RepoIndex<'_>,
    dir: &str,
    file: &Arc<str>,
    root: &Node,
    entry: &Node,
    legacy: bool,
) -> KustomizeChart {
    let key = |modern: &'static str, old: &'static str| if legacy { old } else { modern };
    let text = |k: &str| entry.get(k).and_then(Node::as_str).map(str::to_owned);
    let flag = |k: &str| entry.get(k).and_then(Node::as_str) == Some("true");
    let at = |node: &Node| Location::new(file, node.span.start.line);
    let name = text(key("name", "chartName")).unwrap_or_default();
    let repo = text(key("repo", "chartRepoUrl"));
    let version = text(key("version", "chartVersion"));
    let home = if legacy {
        text("chartHome")
    } else {
        root.get("helmGlobals")
            .and_then(|g| g.get("chartHome"))
            .and_then(Node::as_str)
            .map(str::to_owned)
    }
    .unwrap_or_else(|| "charts".into());
    let home_dir = index::join(dir, &home, false);
    let chart = home_dir.as_deref().and_then(|h| match (&repo, &version) {
        (Some(_), Some(v)) => index::join(h, &format!("{name}-{v}/{name}"), false),
        _ => index::join(h, &name, false),
    });
    let Some(chart) = chart.filter(|c| !name.is_empty() && is_chart(index, c)) else {
        return KustomizeChart::Remote(match (&repo, home_dir) {
            _ if name.is_empty() => "helmCharts entry without a name".to_owned(),
            (_, None) => format!(
                "helmCharts entry {name}: its chartHome {home} leaves the repository; the chart is not rendered"
            ),
            (Some(repo), Some(_)) => format!(
                "helmCharts entry {name} comes from {repo} and has no copy under {home}/; envfence does not download charts, so what it deploys is not known"
            ),
            (None, Some(_)) => format!(
                "helmCharts entry {name}: no chart at {home}/{name}, so what it deploys is not known"
            ),
        });
    };
    let mut request = RenderRequest {
        chart,
        release: text("releaseName").unwrap_or_else(|| "release-name".into()),
        // kustomize (v5.5) passes no namespace for the older form's `releaseNamespace`.
        namespace: if legacy { None } else { text("namespace") },
        values: Vec::new(),
        set: Vec::new(),
        flags: RenderFlags {
            include_crds: flag("includeCRDs"),
            skip_tests: flag("skipTests"),
            skip_hooks: flag("skipHooks"),
            api_versions: entry
                .get("apiVersions")
                .and_then(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .filter_map(Node::as_str)
                .map(str::to_owned)
                .collect(),
            kube_version: text("kubeVersion"),
        },
    };
    let (mut values_evidence, mut notes) = (Vec::new(), Vec::new());
    let mut file_values = |node: &Node, field: &str, values: &mut Vec<ValuesInput>| {
        let Some(rel) = node.as_str() else { return };
        match index::join(dir, rel, false).filter(|p| index.file(p).is_some()) {
            Some(p) => {
                values_evidence.push(Evidence {
                    location: Location::new(&Arc::from(p.as_str()), 1),
                    note: format!("values file {p} (helmCharts {field})").into(),
                });
                values.push(ValuesInput::File(p));
            }
            None => notes.push(Unresolved {
                location: at(node),
                reason: format!(
                    "values file {rel} is not in this repository; the chart is rendered without it"
                ),
            }),
        }
    };
    let mut base = Vec::new();
    if let Some(f) = entry.get(key("valuesFile", "values")) {
        file_values(f, "valuesFile", &mut base);
    }
    let mut additional = Vec::new();
    for f in entry
        .get("additionalValuesFiles")
        .and_then(Node::as_seq)
        .unwrap_or(&[])
    {
        file_values(f, "additionalValuesFiles", &mut additional);
    }
    let inline = entry.entry(key("valuesInline", "valuesLocal")).map(|e| {
        values_evidence.push(Evidence {
            location: Location::new(file, e.key.span.start.line),
            note: "helmCharts valuesInline".into(),
        });
        ValuesInput::Inline(to_json(&e.value, &|s| s.to_owned()).to_string())
    });
    // `valuesMerge`: `override` (the default) lays the inline values over the file,
    // `merge` keeps the file's where both set a key, `replace` drops the file.
    match (inline, text("valuesMerge").as_deref()) {
        (None, _) => request.values = base,
        (Some(inline), Some("replace")) => request.values = vec![inline],
        (Some(inline), Some("merge")) => {
            request.values = std::iter::once(inline).chain(base).collect();
        }
        (Some(inline), _) => request.values = base.into_iter().chain([inline]).collect(),
    }
    request.values.extend(additional);
    KustomizeChart::Local {
        request,
        values_evidence,
        notes,
    }
}

/// Charts that no deployer of this round installs but that carry `values-<env>.yaml` files
/// (`<env>` one environment word): one install per such file, on the implicit cluster `<env>`.
pub fn implicit_installs(
    index: &RepoIndex<'_>,
    inventory: &mut Inventory,
    installed: &BTreeSet<String>,
) -> Vec<ChartInstall> {
    let mut out = Vec::new();
    for f in index
        .files
        .iter()
        .filter(|f| index::basename(&f.path) == "Chart.yaml")
    {
        let dir = index::parent(&f.path);
        if installed.contains(dir)
            || dir.split('/').any(|s| s == "charts") && nested_chart(index, dir)
        {
            continue;
        }
        let library = f
            .documents
            .first()
            .and_then(|d| d.root.get("type"))
            .and_then(Node::as_str)
            == Some("library");
        if library {
            continue;
        }
        let chart_name = f
            .documents
            .first()
            .and_then(|d| d.root.get("name"))
            .and_then(Node::as_str)
            .unwrap_or_else(|| index::basename(dir))
            .to_owned();
        let mut values: Vec<(String, String)> = index
            .files_in(dir)
            .iter()
            .filter_map(|&i| {
                let path = &index.files[i].path;
                let name = index::basename(path);
                let env = name
                    .strip_prefix("values-")?
                    .strip_suffix(".yaml")
                    .or_else(|| name.strip_prefix("values-")?.strip_suffix(".yml"))?;
                let one_word = super::env::tokens(env).len() == 1;
                (one_word && inventory.vocabulary().classify(env).is_some())
                    .then(|| (env.to_owned(), path.to_string()))
            })
            .collect();
        values.sort();
        for (env, path) in values {
            let file: Arc<str> = Arc::from(path.as_str());
            let location = Location::new(&file, 1);
            let (cluster, _) = inventory.resolve_destination(Some(&env), None, location.clone());
            let request = RenderRequest {
                chart: dir.to_owned(),
                release: chart_name.clone(),
                namespace: None,
                values: vec![ValuesInput::File(path.clone())],
                set: Vec::new(),
                flags: RenderFlags::default(),
            };
            let signal = inventory.vocabulary().classify(&env).map(|m| Signal {
                env: m.env,
                note: format!("values file {}", index::basename(&path)).into(),
                level: SignalLevel::Deployer,
            });
            out.push(ChartInstall {
                request,
                delivery: Delivery {
                    deployer: Deployer {
                        kind: "values file convention".into(),
                        name: path.clone(),
                        location: location.clone(),
                    },
                    cluster,
                    dir: dir.to_owned(),
                    mode: super::kustomize::DirectoryMode::default(),
                    force_namespace: None,
                    default_namespace: None,
                    chain: vec![Evidence {
                        location: location.clone(),
                        note: format!(
                            "no deployer in this repository installs chart {dir}; its values file {} names cluster {env}",
                            index::basename(&path)
                        ).into(),
                    }],
                    signals: signal.into_iter().collect(),
                    helm_releases_to: None,
                },
                values_evidence: Vec::new(),
                notes: Vec::new(),
                fallback: Vec::new(),
                fallback_notes: Vec::new(),
            });
        }
    }
    out
}

/// A chart inside another chart's `charts/` folder: a dependency, rendered with its parent.
fn nested_chart(index: &RepoIndex<'_>, dir: &str) -> bool {
    let mut d = dir;
    while !d.is_empty() {
        let up = index::parent(d);
        if index::basename(up) == "charts" && is_chart(index, index::parent(up)) {
            return true;
        }
        d = up;
    }
    false
}

/// The rendered documents of a render, as references.
pub fn rendered_docs(files: &[usize]) -> Vec<DocRef> {
    files.iter().map(|&file| DocRef { file, doc: 0 }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_output_splits_at_sources() {
        let text = "---\n# Source: web/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\n---\n# Source: web/templates/b.yaml\napiVersion: v1\nkind: Service\n";
        let c = chunks(text);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].source, Some("web/templates/a.yaml"));
        assert_eq!(c[1].lines, vec!["apiVersion: v1", "kind: Service"]);
    }

    #[test]
    fn lines_align_with_the_template() {
        let template = [
            "apiVersion: v1",
            "kind: ConfigMap",
            "metadata:",
            "  name: {{ .Release.Name }}",
            "data:",
            "  url: {{ .Values.url }}",
        ];
        let rendered = [
            "apiVersion: v1",
            "kind: ConfigMap",
            "metadata:",
            "  name: web",
            "data:",
            "  url: https://x",
        ];
        assert_eq!(align(&rendered, &template), vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn missing_dependencies_say_how_to_vendor_them() {
        let note = explain_failure(
            "charts/web",
            "Error: An error occurred while checking for chart dependencies. You may need to run `helm dependency build` to fetch missing dependencies: found in Chart.yaml, but missing in charts/ directory: common",
        );
        assert!(note.contains("dependency common is not vendored"), "{note}");
        assert!(explain_failure("c", "Error: boom").contains("\"Error: boom\""));
    }

    #[test]
    fn target_path_nests_the_value_like_set() {
        assert_eq!(
            at_target_path("image.tag", "qa").as_deref(),
            Some(r#"{"image":{"tag":"qa"}}"#)
        );
        assert_eq!(
            at_target_path("replicas", "3").as_deref(),
            Some(r#"{"replicas":3}"#)
        );
        assert_eq!(
            at_target_path(r"ingress.annotations.kubernetes\.io/class", "nginx").as_deref(),
            Some(r#"{"ingress":{"annotations":{"kubernetes.io/class":"nginx"}}}"#)
        );
        assert_eq!(
            at_target_path("tag", "\"0123\"").as_deref(),
            Some(r#"{"tag":"0123"}"#)
        );
        assert_eq!(at_target_path("hosts[0]", "x"), None);
        assert_eq!(at_target_path("a..b", "x"), None);
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
