//! Running helm: finding the binary the user chose, the confined runner (empty environment,
//! timeout, output cap), the check that a chart stays inside the repository, and one
//! `helm template` with its failure explained. Kept apart so that every way helm is started
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
use crate::topology::expand::helm::{
    Availability, Helm, HelmChoice, RenderRequest, ValuesInput, MAX_CHART_BYTES, MAX_CHART_FILES,
    MAX_RENDER_OUTPUT, RENDER_TIMEOUT,
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
fn stage_chart(
    root: &Path,
    chart_dir: &Path,
    dest: &Path,
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
        let target = dest.join(rel);
        let kind = entry.file_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(copy_failed)?;
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
        std::fs::write(&target, &content).map_err(copy_failed)?;
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

/// Runs one `helm template` and turns its output into one file per rendered document.
pub(super) fn render(
    helm: &Helm,
    root: &Path,
    r: &RenderRequest,
) -> Result<Vec<SourceFile>, String> {
    let chart_dir = root.join(&r.chart);
    confined(root, &chart_dir)?;
    let homes = tempfile::tempdir().map_err(|e| format!("cannot make a temporary folder: {e}"))?;
    let staged = homes.path().join("chart");
    let templates = stage_chart(root, &chart_dir, &staged)?;
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
                if !real.starts_with(&root_real)
                    || in_git_folder(&root_real, &real)
                    || !real.is_file()
                {
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
    args.push(staged.clone().into_os_string());
    let out = run_confined(
        &helm.path,
        &args,
        homes.path(),
        RENDER_TIMEOUT,
        MAX_RENDER_OUTPUT,
    )
    // helm may name the chart by its absolute path: show the chart folder, relative, the same
    // on both sides of a diff-aware scan.
    .map_err(|e| {
        let shown = if r.chart.is_empty() { "." } else { &r.chart };
        let e = e
            .replace(&staged.display().to_string(), shown)
            .replace(&format!("{}/", root.display()), "");
        explain_failure(&r.chart, &e)
    })?;
    let text = String::from_utf8_lossy(&out);
    Ok(split_output(root, r, &text, &templates))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_dependencies_say_how_to_vendor_them() {
        let note = explain_failure(
            "charts/web",
            "Error: An error occurred while checking for chart dependencies. You may need to run `helm dependency build` to fetch missing dependencies: found in Chart.yaml, but missing in charts/ directory: common",
        );
        assert!(note.contains("dependency common is not vendored"), "{note}");
        assert!(explain_failure("c", "Error: boom").contains("\"Error: boom\""));
    }
}
