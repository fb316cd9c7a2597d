//! Helpers shared by the integration tests: run the real binary, normalise what varies.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The `envfence` binary built by cargo for this test run, with colour and progress off,
/// chart rendering off (outputs must not depend on whether this machine has helm; the Helm
/// tests turn it on with `ENVFENCE_HELM`) and no render cache.
pub fn envfence() -> Command {
    let mut cmd = Command::cargo_bin("envfence").expect("binary is built");
    cmd.env("NO_COLOR", "1")
        .env_remove("CLICOLOR_FORCE")
        .env("ENVFENCE_HELM", "off")
        // Renders kept between runs would make a test depend on the runs before it.
        .env("ENVFENCE_CACHE", "off");
    cmd
}

/// The helm binary for the Helm tests: `ENVFENCE_TEST_HELM`, else `helm` on PATH. Without
/// one the test says "skipped: helm not found", or fails when `CI=true`.
pub fn helm_for_tests() -> Option<PathBuf> {
    let found = std::env::var_os("ENVFENCE_TEST_HELM")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|d| d.join("helm"))
                .find(|p| p.is_file())
        });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "helm not found, and CI=true: .ci/run puts a pinned helm on PATH"
        );
        eprintln!("skipped: helm not found");
    }
    found
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("fixtures").join(name)
}

/// `../shared/corpora`, when this checkout sits beside it.
pub fn corpora() -> Option<PathBuf> {
    let dir = repo_root().join("..").join("shared").join("corpora");
    dir.is_dir().then_some(dir)
}

/// Every file under `dir` (`.git` folders passed over) whose name `wanted` accepts, sorted.
pub fn files_under(dir: &Path, wanted: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if kind.is_dir() {
                if name != ".git" {
                    pending.push(path);
                }
            } else if kind.is_file() && wanted(&name) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Replaces timings, which change from run to run.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut line = line.to_owned();
        for (prefix, suffix) in [(" in ", " ms."), (" in ", " s.")] {
            if let (Some(start), true) = (line.rfind(prefix), line.ends_with(suffix)) {
                line = format!("{} in [duration].", &line[..start]);
            }
        }
        if let Some(start) = line.find("\"duration_ms\": ") {
            line = format!("{}\"duration_ms\": 0", &line[..start]);
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Writes `files` (path, content) under `dir`.
pub fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, content).expect("write");
    }
}

/// Parses the JSON report on stdout.
pub fn json_report(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Runs git in `dir` with a fixed identity and no system or user configuration, failing the
/// test on error; returns stdout, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=envfence tests",
            "-c",
            "user.email=tests@envfence.invalid",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs `envfence <command> -q --format json` on a repository of `files` written to a temp
/// folder: (exit code, report).
pub fn run_on_files(command: &str, files: &[(&str, &str)]) -> (Option<i32>, serde_json::Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(dir.path(), files);
    let out = envfence()
        .env_remove("GITHUB_REPOSITORY")
        .args([command, "-q", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    (out.status.code(), json_report(&out))
}

/// The findings of `rule` in a JSON report, as (file:line, message).
pub fn findings(report: &serde_json::Value, rule: &str) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"] == rule)
        .map(|f| {
            (
                format!("{}:{}", f["file"].as_str().unwrap_or(""), f["line"]),
                f["message"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Where the findings of `rule` are, as file:line.
pub fn at(report: &serde_json::Value, rule: &str) -> Vec<String> {
    findings(report, rule).into_iter().map(|(l, _)| l).collect()
}

/// `clusters/prod` includes level 0; each of the two folders of a level includes both folders
/// of the next, with its own name prefix (so every path is a distinct object, as kustomize
/// builds it): 2^depth objects from 2 * depth + 3 small files.
pub fn kustomize_fan_out(dir: &Path, depth: usize) {
    let mut files: Vec<(String, String)> = vec![(
        "clusters/prod/kustomization.yaml".into(),
        "resources:\n- ../../fan/l0/a\n- ../../fan/l0/b\n".into(),
    )];
    for level in 0..depth {
        for folder in ["a", "b"] {
            let includes = if level + 1 < depth {
                format!("- ../../l{next}/a\n- ../../l{next}/b\n", next = level + 1)
            } else {
                "- ../../leaf\n".to_owned()
            };
            files.push((
                format!("fan/l{level}/{folder}/kustomization.yaml"),
                format!("resources:\n{includes}namePrefix: {folder}-\n"),
            ));
        }
    }
    files.push((
        "fan/leaf/kustomization.yaml".into(),
        "resources:\n- configmap.yaml\n".into(),
    ));
    files.push((
        "fan/leaf/configmap.yaml".into(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n".into(),
    ));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    write_tree(dir, &refs);
}

/// The clusters (sorted) the object `kind/name` in `file` is placed on, with each placement's
/// namespace.
pub fn placed(
    topology: &serde_json::Value,
    file: &str,
    name: &str,
) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = topology["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .filter(|p| p["file"] == file && p["name"] == name)
        .map(|p| {
            (
                p["cluster"].as_str().unwrap_or("").to_owned(),
                p["namespace"].as_str().map(str::to_owned),
            )
        })
        .collect();
    out.sort();
    out
}

/// The evidence notes of the placement of `name` from `file` on `cluster`, as `file:line note`.
pub fn evidence(
    topology: &serde_json::Value,
    file: &str,
    name: &str,
    cluster: &str,
) -> Vec<String> {
    topology["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .find(|p| p["file"] == file && p["name"] == name && p["cluster"] == cluster)
        .unwrap_or_else(|| panic!("{name} of {file} is not on {cluster}: {topology:#}"))["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .map(|e| {
            format!(
                "{}:{} {}",
                e["file"].as_str().unwrap_or(""),
                e["line"],
                e["note"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// The notes (`file:line reason`) of a topology.
pub fn notes(topology: &serde_json::Value) -> Vec<String> {
    topology["unresolved"]
        .as_array()
        .expect("unresolved")
        .iter()
        .map(|u| {
            format!(
                "{}:{} {}",
                u["file"].as_str().unwrap_or(""),
                u["line"],
                u["reason"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// The placement of `file` on `cluster`.
pub fn placement<'t>(
    topology: &'t serde_json::Value,
    file: &str,
    cluster: &str,
) -> &'t serde_json::Value {
    topology["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .find(|p| p["file"] == file && p["cluster"] == cluster)
        .unwrap_or_else(|| panic!("{file} is placed on {cluster}: {topology:#}"))
}
