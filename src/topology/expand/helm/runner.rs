//! Running helm: finding the binary the user chose, the confined runner (empty environment,
//! timeout, memory watchdog, output cap), the check that a chart stays inside the repository,
//! and one `helm template` with its failure explained (never in helm's words). Kept apart so that every way helm is started
//! is in one place to review.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::documents::SourceFile;
use crate::topology::expand::helm::output::split_output;
use crate::topology::expand::helm::store::RenderStore;
use crate::topology::expand::helm::{
    Availability, Helm, HelmBudgets, HelmChoice, RenderRequest, ValuesInput, MAX_CHART_BYTES,
    MAX_CHART_FILES,
};

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
    let limits = ChildLimits {
        timeout: Duration::from_secs(10),
        memory: HelmBudgets::default().memory,
        output: 4096,
    };
    let out = run_confined(path, &args, homes.path(), &limits).map_err(|stop| match stop {
        // `helm version` prints no values: its own first line says what is wrong.
        Stop::Helm(text) => first_error_line(&text),
        other => other.to_string(),
    })?;
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

/// The bounds of one helm child.
#[derive(Debug, Clone, Copy)]
pub(super) struct ChildLimits {
    /// Wall time, after which it is killed.
    pub timeout: Duration,
    /// Resident memory (bytes), past which it is killed.
    pub memory: u64,
    /// Bytes of stdout, past which it is killed.
    pub output: usize,
}

/// Why a helm child gave no output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stop {
    /// It ran past [`ChildLimits::timeout`].
    Timeout(Duration),
    /// Its resident memory passed [`ChildLimits::memory`].
    Memory(u64),
    /// Its stdout passed [`ChildLimits::output`].
    Output(usize),
    /// It failed: its stderr (up to 64 KiB), which can quote values and is never shown whole.
    Helm(String),
    /// It could not be run or waited for (envfence's own words).
    Run(String),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Timeout(limit) => write!(
                f,
                "it ran longer than {} and was stopped",
                shown_duration(*limit)
            ),
            Stop::Memory(limit) => write!(
                f,
                "it used more than {} MiB of memory and was stopped",
                limit >> 20
            ),
            Stop::Output(cap) => write!(f, "its output passed the {} cap", shown_bytes(*cap)),
            Stop::Helm(_) => f.write_str("helm failed"),
            Stop::Run(e) => f.write_str(e),
        }
    }
}

/// `10 s`, or `1500 ms` when not whole seconds.
pub(super) fn shown_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && !d.is_zero() {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// `16 MiB`, or `3000000 bytes` when not whole MiB.
pub(super) fn shown_bytes(n: usize) -> String {
    if n.is_multiple_of(1 << 20) && n > 0 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

/// How often the child is checked (exit, output, memory).
const POLL: Duration = Duration::from_millis(5);

/// The resident memory of a running (or not yet reaped) process, from `/proc/<pid>/status`;
/// `None` where there is no `/proc` (the memory bound is then not enforced).
fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib.saturating_mul(1024))
}

/// Runs helm with an empty environment (only temporary Helm homes in `homes`), stdin closed,
/// in `homes`; kills it once it runs past `limits.timeout`, its resident memory passes
/// `limits.memory` (a watchdog reading `/proc`: an address-space rlimit would break Go, which
/// reserves far more than it uses) or its stdout passes `limits.output`. Returns stdout.
fn run_confined(
    binary: &Path,
    args: &[OsString],
    homes: &Path,
    limits: &ChildLimits,
) -> Result<Vec<u8>, Stop> {
    let cap = limits.output;
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
        .map_err(|e| Stop::Run(format!("cannot run {}: {e}", binary.display())))?;
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
    let pid = child.id();
    let status = loop {
        let stop = match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if overflow.load(Ordering::Relaxed) => Stop::Output(cap),
            Ok(None) if started.elapsed() > limits.timeout => Stop::Timeout(limits.timeout),
            // Not reaped yet, so the pid is still this child's.
            Ok(None) if resident_bytes(pid).is_some_and(|rss| rss > limits.memory) => {
                Stop::Memory(limits.memory)
            }
            Ok(None) => {
                std::thread::sleep(POLL);
                continue;
            }
            Err(e) => Stop::Run(format!("cannot wait for helm: {e}")),
        };
        let _ = child.kill();
        let _ = child.wait();
        break Err(stop);
    };
    let out = stdout.and_then(|t| t.join().ok()).and_then(Result::ok);
    let err = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    let status = status?;
    if overflow.load(Ordering::Relaxed) {
        return Err(Stop::Output(cap));
    }
    if !status.success() {
        return Err(Stop::Helm(String::from_utf8_lossy(&err).into_owned()));
    }
    out.ok_or_else(|| Stop::Run("cannot read its output".to_owned()))
}

/// The first `Error:` line of helm's stderr (else its first line), at most 400 characters.
fn first_error_line(text: &str) -> String {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("Error:"))
        .or_else(|| text.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("no message");
    first.chars().take(400).collect()
}

/// Every file of the chart folder, after symlinks, stays inside the repository.
pub(super) fn confined(root: &Path, chart: &Path) -> Result<(), String> {
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

/// Whether `real` (a canonical path) lies in a `.git` folder of the repository at `root`.
fn in_git_folder(root: &Path, real: &Path) -> bool {
    real.strip_prefix(root).map_or(true, |rel| {
        rel.components().any(|c| c.as_os_str() == ".git")
    })
}

/// Copies the chart folder into `dest` as envfence reads it, for helm to render: regular files,
/// and symlinks to regular files inside the chart folder (as their content); never anything
/// in `.git`, a symlink that leaves the chart, a symlinked folder or a device. Bounded by
/// [`MAX_CHART_FILES`] and [`MAX_CHART_BYTES`]. helm is never handed a repository path: its
/// `.Files.Get` would read the checkout's `.git/config`, where a job's token can be.
///
/// Returns the text of each template and CRD file (under a `templates` or `crds` folder) by
/// its path inside the chart: the only files the line alignment of helm's output may read.
///
/// With no `dest`, nothing is copied: the texts are all a render kept from an earlier run needs.
fn stage_chart(
    root: &Path,
    chart_dir: &Path,
    dest: Option<&Path>,
) -> Result<HashMap<String, String>, String> {
    let root =
        std::fs::canonicalize(root).map_err(|e| format!("cannot read the repository: {e}"))?;
    let chart =
        std::fs::canonicalize(chart_dir).map_err(|e| format!("cannot read the chart: {e}"))?;
    if in_git_folder(&root, &chart) {
        return Err("the chart is inside a .git folder; it is not rendered".to_owned());
    }
    let copy_failed = |e: std::io::Error| format!("cannot write a temporary copy: {e}");
    let (mut files, mut bytes) = (0usize, 0u64);
    let mut texts = HashMap::new();
    let walk = walkdir::WalkDir::new(&chart)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git");
    for entry in walk {
        let entry = entry.map_err(|e| {
            let shown = e
                .path()
                .and_then(|p| p.strip_prefix(&root).ok())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            format!("{shown}: cannot be read; the chart is not rendered")
        })?;
        files += 1;
        if files > MAX_CHART_FILES {
            return Err(format!("the chart has more than {MAX_CHART_FILES} files"));
        }
        let Ok(rel) = entry.path().strip_prefix(&chart) else {
            continue;
        };
        let target = dest.map(|d| d.join(rel));
        let kind = entry.file_type();
        if kind.is_dir() {
            if let Some(target) = &target {
                std::fs::create_dir_all(target).map_err(copy_failed)?;
            }
            continue;
        }
        let source = if kind.is_symlink() {
            match std::fs::canonicalize(entry.path()) {
                Ok(real) if real.starts_with(&chart) && !in_git_folder(&root, &real) => real,
                _ => continue,
            }
        } else if kind.is_file() {
            entry.path().to_path_buf()
        } else {
            continue;
        };
        if !std::fs::metadata(&source).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let mut content = Vec::new();
        std::fs::File::open(&source)
            .and_then(|f| {
                f.take(MAX_CHART_BYTES.saturating_sub(bytes) + 1)
                    .read_to_end(&mut content)
            })
            .map_err(|e| {
                format!(
                    "{}: cannot read it ({e}); the chart is not rendered",
                    entry.path().strip_prefix(&root).unwrap_or(rel).display()
                )
            })?;
        bytes += content.len() as u64;
        if bytes > MAX_CHART_BYTES {
            return Err(format!(
                "the chart has more than {} MiB of files",
                MAX_CHART_BYTES / (1024 * 1024)
            ));
        }
        if let Some(target) = &target {
            std::fs::write(target, &content).map_err(copy_failed)?;
        }
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts[..parts.len().saturating_sub(1)]
            .iter()
            .any(|p| p == "templates" || p == "crds")
        {
            texts.insert(
                parts.join("/"),
                String::from_utf8_lossy(&content).into_owned(),
            );
        }
    }
    Ok(texts)
}

/// The bounds of one render: its child, and the objects its output may hold.
#[derive(Debug, Clone, Copy)]
pub(super) struct RenderLimits {
    pub child: ChildLimits,
    pub objects: usize,
}

/// Why a render gave no files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// A bound of [`RenderLimits::child`] stopped helm ([`Stop::Timeout`], [`Stop::Memory`] or
    /// [`Stop::Output`]).
    Stopped(Stop),
    /// The output held more objects than [`RenderLimits::objects`].
    Objects(usize),
    /// Not rendered, for the reason this note gives (helm's own words masked).
    Note(String),
}

/// What a render yielded: its files, and the bytes of helm's output they came from.
pub(super) struct Output {
    pub files: Vec<SourceFile>,
    pub bytes: usize,
    /// Taken from the store of an earlier run: helm did not run.
    pub cached: bool,
}

/// Runs one `helm template` and turns its output into one file per rendered document.
pub(super) fn render(
    helm: &Helm,
    root: &Path,
    r: &RenderRequest,
    limits: &RenderLimits,
    store: Option<(&RenderStore, [u8; 32])>,
) -> Result<Output, Failure> {
    let chart_dir = root.join(&r.chart);
    confined(root, &chart_dir).map_err(Failure::Note)?;
    // An earlier run's output of the same content: split it as if helm had printed it.
    if let Some(out) = store.and_then(|(s, key)| s.get(&key, limits.child.output)) {
        let templates = stage_chart(root, &chart_dir, None).map_err(Failure::Note)?;
        let text = String::from_utf8_lossy(&out);
        let files = split_output(root, r, &text, &templates, limits.objects)
            .map_err(|_| Failure::Objects(limits.objects))?;
        return Ok(Output {
            files,
            bytes: out.len(),
            cached: true,
        });
    }
    let homes = tempfile::tempdir()
        .map_err(|e| Failure::Note(format!("cannot make a temporary folder: {e}")))?;
    let staged = homes.path().join("chart");
    let templates = stage_chart(root, &chart_dir, Some(&staged)).map_err(Failure::Note)?;
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
    // Each values file as helm is handed it, and as a note may name it.
    let mut shown_values: Vec<(String, String)> = Vec::new();
    for (i, v) in r.values.iter().enumerate() {
        let (path, shown) = match v {
            ValuesInput::File(f) => {
                let path = root.join(f);
                let real = std::fs::canonicalize(&path)
                    .map_err(|e| Failure::Note(format!("values file {f}: {e}")))?;
                let root_real =
                    std::fs::canonicalize(root).map_err(|e| Failure::Note(e.to_string()))?;
                if !real.starts_with(&root_real)
                    || in_git_folder(&root_real, &real)
                    || !real.is_file()
                {
                    return Err(Failure::Note(format!(
                        "values file {f} is a symlink that leaves the repository; not rendered"
                    )));
                }
                (real, format!("values file {f}"))
            }
            ValuesInput::Inline(text) => {
                let path = homes.path().join(format!("inline-values-{i}.yaml"));
                std::fs::write(&path, text)
                    .map_err(|e| Failure::Note(format!("cannot write inline values: {e}")))?;
                (path, "the inline values".to_owned())
            }
        };
        shown_values.push((path.display().to_string(), shown));
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
    args.push(staged.clone().into_os_string());
    let out =
        run_confined(&helm.path, &args, homes.path(), &limits.child).map_err(
            |stop| match stop {
                Stop::Helm(text) => Failure::Note(explain_failure(&r.chart, &text, &shown_values)),
                Stop::Run(e) => Failure::Note(format!("chart {} was not rendered: {e}", r.chart)),
                bound => Failure::Stopped(bound),
            },
        )?;
    if let Some((s, key)) = store {
        s.put(&key, &out);
    }
    let text = String::from_utf8_lossy(&out);
    let files = split_output(root, r, &text, &templates, limits.objects)
        .map_err(|_| Failure::Objects(limits.objects))?;
    Ok(Output {
        files,
        bytes: out.len(),
        cached: false,
    })
}

/// What a note may add to a fixed reason: helm names the template line that failed
/// (`web/templates/a.yaml:3:7`), shown as the repository path of the chart's copy
/// (`charts/web/templates/a.yaml:3`). Only a plain path and line numbers: never the text
/// around them.
fn failed_template(chart: &str, error: &str) -> Option<String> {
    let at = [
        "execution error at (",
        "parse error at (",
        "template: ",
        "YAML parse error on ",
    ]
    .iter()
    .find_map(|marker| error.find(marker).map(|i| &error[i + marker.len()..]))?;
    let token: String = at
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':'))
        .take(300)
        .collect();
    let mut parts = token.trim_end_matches(':').split(':');
    let path = parts.next()?;
    let line = parts.next().filter(|l| l.parse::<u32>().is_ok());
    let (_, within) = path.split_once('/')?;
    let plain = within
        .split('/')
        .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    if !plain || !(within.starts_with("templates/") || within.contains("/templates/")) {
        return None;
    }
    let shown = crate::topology::index::join(chart, within, false)?;
    Some(match line {
        Some(line) => format!("{shown}:{line}"),
        None => shown,
    })
}

/// A failed render as its note shows it: a fixed reason by the kind of failure, with the
/// template line or values file helm names. helm's own words are never shown: `fail`,
/// `required`, `tpl` and YAML errors quote values, which can be credentials, and every note
/// ends up in logs and pull-request comments. `values`: each values path handed to helm, and
/// how a note names it.
fn explain_failure(chart: &str, stderr: &str, values: &[(String, String)]) -> String {
    const MISSING: &str = "missing in charts/ directory:";
    // The line that says what failed; helm may print warnings before it.
    let error = stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("Error:"))
        .unwrap_or("");
    if let Some(pos) = error.find(MISSING) {
        // Dependency names come from Chart.yaml; only plain names are repeated.
        let names = error[pos + MISSING.len()..].trim();
        let plain = names.len() <= 200
            && names
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ',' | ' '));
        let names = if plain && !names.is_empty() {
            format!("dependency {names} is")
        } else {
            "a dependency is".to_owned()
        };
        return format!(
            "chart {chart} was not rendered: {names} not vendored; run `helm dependency build {chart}`"
        );
    }
    let at = |what: &str| match failed_template(chart, error) {
        Some(place) => format!("{what} at {place}"),
        None => what.to_owned(),
    };
    let reason = if error.contains("execution error at (") {
        at("a template stopped the render (`fail` or `required`)")
    } else if error.contains("YAML parse error on ") {
        at("a template renders text that is not YAML")
    } else if error.contains("parse error at (")
        || (error.contains("template: ") && !error.contains("executing \""))
    {
        at("a template does not parse")
    } else if error.contains("template: ") {
        at("a template failed")
    } else if error.contains("invalid release name") {
        "invalid release name (helm takes lowercase letters, digits, `-` and `.`, at most 53 characters)".to_owned()
    } else if error.contains("values don't meet the specifications of the schema") {
        "the values do not match the chart's values.schema.json".to_owned()
    } else if error.contains("chart requires kubeVersion") {
        "the chart's kubeVersion excludes the Kubernetes version helm renders for (helm.kube-version in the config sets it)".to_owned()
    } else if let Some((_, shown)) = values
        .iter()
        .find(|(path, _)| error.contains(&format!("failed to parse {path}")))
    {
        format!("{shown} is not valid YAML")
    } else if error.contains("cannot load values.yaml") {
        "the chart's values.yaml is not valid YAML".to_owned()
    } else if error.contains("Chart.yaml") || error.contains("validation: chart.metadata") {
        "its Chart.yaml is not valid".to_owned()
    } else {
        "helm template failed".to_owned()
    };
    let note = format!(
        "chart {chart} was not rendered: {reason} (helm's message is not shown, as it can quote values; run helm template on the chart to see it)"
    );
    crate::redact::secrets(&note).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_dependencies_say_how_to_vendor_them() {
        let note = explain_failure(
            "charts/web",
            "Error: An error occurred while checking for chart dependencies. You may need to run `helm dependency build` to fetch missing dependencies: found in Chart.yaml, but missing in charts/ directory: common",
            &[],
        );
        assert!(note.contains("dependency common is not vendored"), "{note}");
        let odd = explain_failure(
            "c",
            "Error: found in Chart.yaml, but missing in charts/ directory: a\"b",
            &[],
        );
        assert!(odd.contains("a dependency is not vendored"), "{odd}");
    }

    /// helm's own words never reach a note: a fixed reason, and at most the template line.
    #[test]
    fn failures_keep_only_a_fixed_reason_and_the_template_line() {
        let values = [(
            "/tmp/x/values-prod.yaml".to_owned(),
            "values file charts/web/values-prod.yaml".to_owned(),
        )];
        for (stderr, expected) in [
            (
                "Error: execution error at (web/templates/t.yaml:1:3): hunter2-SECRET\n\nUse --debug flag",
                "a template stopped the render (`fail` or `required`) at charts/web/templates/t.yaml:1 (",
            ),
            (
                "Error: template: web/templates/t.yaml:1:6: executing \"web/templates/t.yaml\" at <tpl .Values.password .>: error calling tpl: cannot parse template \"{{ hunter2-SECRET }\": template: gotpl:1: bad character",
                "a template failed at charts/web/templates/t.yaml:1 (",
            ),
            (
                "Error: parse error at (web/templates/t.yaml:1): function \"hunter2-SECRET\" not defined",
                "a template does not parse at charts/web/templates/t.yaml:1 (",
            ),
            (
                "Error: YAML parse error on web/templates/t.yaml: error converting YAML to JSON: yaml: unmarshal errors: cannot unmarshal !!str `hunter2-SECRET`",
                "a template renders text that is not YAML at charts/web/templates/t.yaml (",
            ),
            (
                "Error: values don't meet the specifications of the schema(s) in the following chart(s):\nweb:\n- password: hunter2-SECRET",
                "the values do not match the chart's values.schema.json (",
            ),
            (
                "Error: failed to parse /tmp/x/values-prod.yaml: error converting YAML to JSON: yaml: hunter2-SECRET",
                "values file charts/web/values-prod.yaml is not valid YAML (",
            ),
            (
                "Error: execution error at (web/templates/../../hunter2-SECRET:1:3): x",
                "a template stopped the render (`fail` or `required`) (",
            ),
            (
                "Error: release name \"hunter2-SECRET_\": invalid release name, must match regex ^[a-z0-9]",
                "invalid release name (helm takes",
            ),
            ("Error: hunter2-SECRET", "helm template failed ("),
        ] {
            let note = explain_failure("charts/web", stderr, &values);
            assert!(!note.contains("hunter2"), "{note}");
            assert!(
                note.starts_with(&format!("chart charts/web was not rendered: {expected}")),
                "{note}"
            );
        }
    }
}
