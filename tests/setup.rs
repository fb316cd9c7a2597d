//! Getting envfence into a team's tools: `envfence init`, `envfence merge`, shell completions,
//! the man page, colour conventions, and the pre-commit hooks of `.pre-commit-hooks.yaml`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use common::{corpora, envfence, fixture, json_report, repo_root, write_tree};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Cluster name → environment, from `envfence topology --format json`.
fn clusters(repo: &Path, config: Option<&Path>) -> BTreeMap<String, String> {
    let mut cmd = envfence();
    cmd.args(["topology", "--quiet", "--format", "json"]);
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    let out = cmd.arg(repo).output().expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let topology = json_report(&out);
    topology["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_owned(),
                c["environment"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// `envfence init REPO --output FILE`; returns the written config.
fn init_into(repo: &Path, file: &Path) -> String {
    let out = envfence()
        .args(["init", "--quiet", "--output"])
        .arg(file)
        .arg(repo)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("envfence: wrote "),
        "{}",
        stderr(&out)
    );
    std::fs::read_to_string(file).expect("written")
}

#[test]
fn init_on_the_demo_reproduces_its_clusters_and_environments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let written = dir.path().join("starter.yaml");
    let text = init_into(&fixture("demo"), &written);
    let expected = clusters(&fixture("demo"), None);
    assert!(expected.len() >= 3, "{expected:?}");
    assert!(
        expected.values().any(|e| e == "production")
            && expected.values().any(|e| e == "non-production"),
        "{expected:?}"
    );
    for (name, env) in &expected {
        assert!(
            text.contains(&format!("  - name: \"{name}\"\n")),
            "{name}:\n{text}"
        );
        if env != "unknown" {
            assert!(
                text.contains(&format!("    environment: {env}\n")),
                "{text}"
            );
        }
    }
    // Evidence as comments, and the editor schema line.
    assert!(text.contains("  # prod-"), "{text}");
    assert!(text.contains("#   seen at "), "{text}");
    assert!(
        text.starts_with("# yaml-language-server: $schema="),
        "{text}"
    );
    // The written config loads, and declaring what was inferred changes no environment.
    assert_eq!(clusters(&fixture("demo"), Some(&written)), expected);
    envfence()
        .args(["scan", "--quiet", "--config"])
        .arg(&written)
        .arg(fixture("demo"))
        .assert()
        .code(1);
}

#[test]
fn init_never_overwrites() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(
        dir.path(),
        &[
            (".envfence.yaml", "# mine\n"),
            (
                "namespaces/team-a/ns.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n",
            ),
        ],
    );
    let out = envfence()
        .args(["init", "--quiet"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(".envfence.yaml already exists: envfence init never overwrites"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".envfence.yaml")).expect("kept"),
        "# mine\n"
    );
    // A symlink in its place, even a dangling one, is not followed.
    #[cfg(unix)]
    {
        std::fs::remove_file(dir.path().join(".envfence.yaml")).expect("rm");
        std::os::unix::fs::symlink(
            dir.path().join("elsewhere"),
            dir.path().join(".envfence.yaml"),
        )
        .expect("symlink");
        envfence()
            .args(["init", "--quiet"])
            .arg(dir.path())
            .assert()
            .code(2);
        assert!(!dir.path().join("elsewhere").exists());
        std::fs::remove_file(dir.path().join(".envfence.yaml")).expect("rm");
    }
    // Without a config: written in the repository, with the unplaced folder as a comment.
    let out = envfence()
        .args(["init", "--quiet"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(dir.path().join(".envfence.yaml")).expect("written");
    assert!(
        text.contains("#   - glob: \"namespaces/team-a/**\"   # 1 object\n"),
        "{text}"
    );
    assert!(text.contains("clusters: []"), "{text}");
    envfence()
        .args(["scan", "--quiet", "--fail-on", "never"])
        .arg(dir.path())
        .assert()
        .code(0);
    // `--output -` prints it instead.
    let out = envfence()
        .args(["init", "--quiet", "--output", "-"])
        .arg(fixture("demo"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("clusters:\n"), "{}", stdout(&out));
}

#[test]
fn init_on_every_corpus_writes_a_config_that_scan_accepts() {
    let Some(dir) = corpora() else {
        eprintln!("skipped: ../shared/corpora is not present");
        return;
    };
    let out_dir = tempfile::tempdir().expect("tempdir");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpora")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    let mut checked = 0;
    for entry in entries {
        let repo = entry.path();
        let written = out_dir
            .path()
            .join(format!("{}.yaml", entry.file_name().to_string_lossy()));
        init_into(&repo, &written);
        let out = envfence()
            .args([
                "scan",
                "--quiet",
                "--fail-on",
                "never",
                "--format",
                "json",
                "--config",
            ])
            .arg(&written)
            .arg(&repo)
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            repo.display(),
            stderr(&out)
        );
        // Declaring what was inferred changes no cluster's environment. The clusters that
        // the repository's selectors ask for, and the entries proposed for unplaced folders,
        // may add clusters.
        let with = clusters(&repo, Some(&written));
        for (name, env) in clusters(&repo, None) {
            assert_eq!(
                with.get(&name),
                Some(&env),
                "{}: cluster {name}",
                repo.display()
            );
        }
        checked += 1;
    }
    assert!(checked > 0);
}

#[test]
fn merge_sums_the_reports_of_many_repositories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = dir.path().join("acme__platform.json");
    envfence()
        .args([
            "scan",
            "--quiet",
            "--fail-on",
            "never",
            "--format",
            "json",
            "-o",
        ])
        .arg(&demo)
        .arg(fixture("demo"))
        .assert()
        .code(0);
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let clean = dir.path().join("acme__empty.json");
    envfence()
        .args(["scan", "--quiet", "--format", "json", "-o"])
        .arg(&clean)
        .arg(&empty)
        .assert()
        .code(0);
    let out = envfence()
        .arg("merge")
        .args([&clean, &demo])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary = stdout(&out);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&demo).expect("report")).expect("JSON");
    let errors = report["summary"]["findings"]["error"]
        .as_u64()
        .expect("errors");
    assert!(errors > 0);
    assert!(
        summary.starts_with("## envfence: 2 repositories, 1 with errors\n"),
        "{summary}"
    );
    let platform = summary
        .find("| ❌ | acme/platform | ")
        .expect("platform row");
    let empty_row = summary
        .find("| acme/empty | 0 | 0 | 0 |")
        .expect("empty row");
    assert!(
        platform < empty_row,
        "repositories with errors first:\n{summary}"
    );
    assert!(
        summary.contains(&format!("| ❌ | acme/platform | {errors} | ")),
        "{summary}"
    );
    assert!(summary.contains("`nonprod-on-prod-cluster` "), "{summary}");

    // Not a report: exit 2, one line naming the file.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"version\": 9}").expect("write");
    let out = envfence()
        .arg("merge")
        .args([&demo, &bad])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("bad.json: not an envfence JSON report"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1);
}

/// Issue 25, defect 13: `merge` parsed a report whole (a 500 MB report grew to 8.7 GB). A
/// 24 MB report of 16,000 findings is now summed under a 128 MiB address space (the whole
/// parse needed about 200 MiB for it, and aborted), with the same table as before.
#[test]
fn merge_streams_a_large_report() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("prlimit is not installed: skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("acme__big.json");
    let rules = [
        "nonprod-on-prod-cluster",
        "mixed-environment-cluster",
        "no-network-isolation",
    ];
    let (mut errors, mut warnings, mut notes, mut suppressed) = (0, 0, 0, 0);
    let mut per_rule = [0usize; 3];
    {
        use std::io::Write as _;
        let file = std::fs::File::create(&path).expect("create");
        let mut out = std::io::BufWriter::new(file);
        out.write_all(b"{\"version\": 1, \"findings\": [")
            .expect("write");
        for i in 0..16_000usize {
            let severity = ["error", "warning", "info"][i % 3];
            let status = if i % 13 == 0 { "fixed" } else { "new" };
            let hidden = i % 11 == 0;
            let rule = (i / 3) % 3;
            if status != "fixed" {
                if hidden {
                    suppressed += 1;
                } else {
                    match severity {
                        "error" => errors += 1,
                        "warning" => warnings += 1,
                        _ => notes += 1,
                    }
                    per_rule[rule] += 1;
                }
            }
            let evidence: Vec<String> = (0..8)
                .map(|hop| {
                    format!(
                        "{{\"file\": \"argocd/apps/app-{i}.yaml\", \"line\": {hop}, \"note\": \"source.path apps/app-{i}/overlays/production/{hop}\"}}"
                    )
                })
                .collect();
            write!(
                out,
                "{}{{\"rule\": \"{}\", \"severity\": \"{severity}\", \"message\": \"non-production Deployment/app-{i} on cluster prod-eu: env DATABASE_URL = `postgres://app:****@db-{i}.staging.acme.internal:5432/app` names a staging host, and {}\", \"file\": \"apps/app-{i}/deployment.yaml\", \"line\": 21, \"end_line\": 21, \"column\": null, \"resource\": {{\"api_version\": \"apps/v1\", \"kind\": \"Deployment\", \"name\": \"app-{i}\", \"namespace\": \"app-{i}\"}}, \"cluster\": \"prod-eu\", \"environment\": \"production\", \"evidence\": [{}], \"fingerprint\": \"{i:016x}\", \"status\": \"{status}\", \"suppressed\": {hidden}}}",
                if i == 0 { "" } else { ", " },
                rules[rule],
                "x".repeat(200),
                evidence.join(", ")
            )
            .expect("write");
        }
        out.write_all(b"], \"summary\": {\"coverage\": {\"objects\": 9, \"placed\": 7}}}\n")
            .expect("write");
        out.flush().expect("flush");
    }
    let size = std::fs::metadata(&path).expect("size").len();
    assert!(size > 20_000_000, "{size} bytes");
    let out = assert_cmd::Command::new("prlimit")
        .arg(format!("--as={}", 128u64 << 20))
        .arg("--")
        .arg(assert_cmd::cargo::cargo_bin("envfence"))
        .arg("merge")
        .arg(&path)
        .env("MALLOC_ARENA_MAX", "1")
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{:?}: {}",
        out.status,
        stderr(&out)
    );
    let summary = stdout(&out);
    let mut top: Vec<(usize, &str)> = per_rule.iter().copied().zip(rules).collect();
    top.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let shown: Vec<String> = top.iter().map(|(n, r)| format!("`{r}` {n}")).collect();
    let expected = format!(
        "## envfence: 1 repository, 1 with errors\n\n\
         | | repository | errors | warnings | notes | checked | most frequent rules |\n\
         |---|---|---:|---:|---:|---|---|\n\
         | ❌ | acme/big | {errors} | {warnings} | {notes} | 7 of 9 objects | {} |\n\
         | | **total** | **{errors}** | **{warnings}** | **{notes}** | 7 of 9 objects | |\n\
         \n{suppressed} suppressed findings not counted.\n",
        shown.join(", ")
    );
    assert_eq!(summary, expected);
}

#[test]
fn completions_for_every_shell() {
    for (shell, marker) in [
        ("bash", "_envfence()"),
        ("zsh", "#compdef envfence"),
        ("fish", "complete -c envfence"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[envfence]"),
    ] {
        let out = envfence()
            .args(["completions", shell])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell}:\n{script}");
        for command in ["scan", "init", "merge", "--fail-on"] {
            assert!(script.contains(command), "{shell} lacks {command}");
        }
    }
    envfence().args(["completions", "tcsh"]).assert().code(2);
}

#[test]
fn man_pages_for_every_command() {
    let out = envfence().arg("man").output().expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{page}");
    assert!(page.contains(".TH envfence 1"), "{page}");
    let dir = tempfile::tempdir().expect("tempdir");
    let pages = dir.path().join("man1");
    envfence()
        .arg("man")
        .arg("--dir")
        .arg(&pages)
        .assert()
        .code(0);
    for name in [
        "envfence.1",
        "envfence-scan.1",
        "envfence-init.1",
        "envfence-merge.1",
    ] {
        let text = std::fs::read_to_string(pages.join(name)).unwrap_or_default();
        assert!(text.contains(".SH"), "{name}: {text}");
    }
    let scan = std::fs::read_to_string(pages.join("envfence-scan.1")).expect("scan page");
    assert!(scan.contains("fail\\-on"), "{scan}");
    // `man` itself reads it, where there is one.
    if let Ok(out) = std::process::Command::new("man")
        .arg(pages.join("envfence-scan.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
    {
        if out.status.success() {
            assert!(stdout(&out).contains("Examples"), "{}", stdout(&out));
        }
    }
}

#[test]
fn colour_follows_no_color_and_clicolor_force() {
    let run = |vars: &[(&str, &str)]| {
        let mut cmd = envfence();
        cmd.env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
        for (key, value) in vars {
            cmd.env(key, value);
        }
        let out = cmd
            .args(["scan", "--quiet"])
            .arg(fixture("demo"))
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1));
        stdout(&out)
    };
    // Not a terminal: plain, unless CLICOLOR_FORCE asks; NO_COLOR wins over both.
    assert!(!run(&[]).contains('\u{1b}'));
    assert!(run(&[("CLICOLOR_FORCE", "1")]).contains("\u{1b}["));
    assert!(!run(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]).contains('\u{1b}'));
    // Help text too.
    let out = envfence()
        .env_remove("NO_COLOR")
        .env("CLICOLOR_FORCE", "1")
        .args(["scan", "--help"])
        .output()
        .expect("runs");
    assert!(stdout(&out).contains("\u{1b}["), "{}", stdout(&out));
}

/// The hooks of `.pre-commit-hooks.yaml`, by id.
fn hooks() -> BTreeMap<String, serde_yaml::Value> {
    let text = std::fs::read_to_string(repo_root().join(".pre-commit-hooks.yaml")).expect("hooks");
    let hooks: Vec<serde_yaml::Value> = serde_yaml::from_str(&text).expect("YAML");
    hooks
        .into_iter()
        .map(|h| (h["id"].as_str().unwrap_or_default().to_owned(), h))
        .collect()
}

/// Runs a hook's entry as pre-commit does: from the repository root, no file names.
fn run_entry(entry: &str, program: &Path, repo: &Path, env: &[(&str, &Path)]) -> Output {
    let mut words = entry.split_whitespace();
    words.next();
    let mut cmd = std::process::Command::new(program);
    cmd.args(words)
        .current_dir(repo)
        .env("NO_COLOR", "1")
        .env("ENVFENCE_HELM", "off");
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().expect("runs")
}

#[test]
fn the_source_hook_scans_the_whole_repository() {
    let hooks = hooks();
    let hook = &hooks["envfence"];
    assert_eq!(hook["language"].as_str(), Some("rust"));
    assert_eq!(hook["pass_filenames"].as_bool(), Some(false));
    let entry = hook["entry"].as_str().expect("entry");
    assert!(entry.starts_with("envfence "), "{entry}");
    let binary = assert_cmd::cargo::cargo_bin("envfence");
    let out = run_entry(entry, &binary, &fixture("demo"), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("nonprod-on-prod-cluster"),
        "{}",
        stdout(&out)
    );
}

/// The release hook against a fake release folder (file:// URLs): the binary is downloaded,
/// checked against the checksum file, cached, and run; a tampered archive is refused.
#[cfg(unix)]
#[test]
fn the_release_hook_checks_and_runs_the_release_binary() {
    let hooks = hooks();
    let hook = &hooks["envfence-release"];
    assert_eq!(hook["language"].as_str(), Some("script"));
    assert_eq!(hook["pass_filenames"].as_bool(), Some(false));
    let entry = hook["entry"].as_str().expect("entry");
    let script = repo_root().join(entry.split_whitespace().next().expect("script"));
    let version = env!("CARGO_PKG_VERSION");

    let dir = tempfile::tempdir().expect("tempdir");
    let releases = dir.path().join("releases");
    let assets = releases.join(format!("v{version}"));
    let staging = dir.path().join("staging");
    std::fs::create_dir_all(&assets).expect("mkdir");
    std::fs::create_dir_all(&staging).expect("mkdir");
    std::fs::copy(
        assert_cmd::cargo::cargo_bin("envfence"),
        staging.join("envfence"),
    )
    .expect("copy");
    let target = "x86_64-unknown-linux-musl";
    let archive = format!("envfence-{target}.tar.gz");
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(assets.join(&archive))
        .arg("-C")
        .arg(&staging)
        .arg("envfence")
        .status()
        .expect("tar");
    assert!(status.success());
    let bytes = std::fs::read(assets.join(&archive)).expect("archive");
    let digest = {
        use sha2::Digest;
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    std::fs::write(
        assets.join(format!("envfence-{target}.sha256")),
        format!("{digest}  {archive}\n"),
    )
    .expect("write");

    let cache = dir.path().join("cache");
    let url = format!("file://{}", releases.display());
    let run = |cache: &Path| {
        let mut cmd = std::process::Command::new(&script);
        cmd.args(entry.split_whitespace().skip(1))
            .current_dir(fixture("demo"))
            .env("NO_COLOR", "1")
            .env("ENVFENCE_HELM", "off")
            .env("XDG_CACHE_HOME", cache)
            .env("ENVFENCE_RELEASES", &url)
            .env("ENVFENCE_TARGET", target)
            .env("ENVFENCE_ATTESTATION", "skip");
        cmd.output().expect("runs")
    };
    let out = run(&cache);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("nonprod-on-prod-cluster"));
    assert!(cache.join(format!("envfence/{version}/envfence")).is_file());
    assert!(
        stderr(&out).contains("build provenance not checked"),
        "{}",
        stderr(&out)
    );

    // A tampered archive: refused, nothing installed.
    let mut tampered = bytes.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    std::fs::write(assets.join(&archive), &tampered).expect("write");
    let fresh = dir.path().join("fresh-cache");
    let out = run(&fresh);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("SHA-256 mismatch"),
        "{}",
        stderr(&out)
    );
    assert!(!fresh.join(format!("envfence/{version}/envfence")).exists());

    // No release for these sources: exit 3, for the action to build from source instead.
    let out = std::process::Command::new(repo_root().join("scripts/install-release.sh"))
        .args([
            version,
            &dir.path().join("bin").display().to_string(),
            "0000",
        ])
        .env("ENVFENCE_RELEASES", &url)
        .env("ENVFENCE_TARGET", target)
        .env("ENVFENCE_ATTESTATION", "skip")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}
