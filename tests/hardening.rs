//! A hostile repository against envfence's own inputs and outputs: config and policy files
//! that lead outside the repository or never end, file names that would be workflow commands
//! in a CI log, credentials quoted by findings, and option values that would exhaust the
//! machine. Every case finishes in seconds.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{envfence, fixture, json_report, write_tree};

/// Long enough that a whole-value echo is unmistakable, shaped like a service-account token.
const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6InNlY3JldC1rZXktaWQifQ.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0.c2lnbmF0dXJlLXRoYXQtbXVzdC1uZXZlci1sZWFr";

const GOOD: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: b\n";

/// Runs envfence with a deadline, so that a blocking read fails the test instead of hanging.
fn run(args: &[&std::ffi::OsStr], cwd: &Path) -> std::process::Output {
    envfence()
        .args(args)
        .current_dir(cwd)
        .timeout(Duration::from_secs(20))
        .output()
        .expect("runs")
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

/// Exit 2 with one line on stderr that says `cause`, nothing on stdout, no token anywhere.
fn assert_refused(out: &std::process::Output, cause: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("envfence: error: "), "{stderr}");
    assert!(stderr.contains(cause), "`{cause}` in: {stderr}");
    for text in [&stderr, &stdout] {
        // No more than an excerpt of 32 characters.
        assert!(!text.contains(&TOKEN[..33]), "the token leaked: {text}");
    }
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo").arg(path).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
}

#[cfg(unix)]
#[test]
fn a_repository_config_may_not_lead_outside_or_to_a_special_file() {
    use std::os::unix::fs::symlink;

    let outside = tempfile::tempdir().expect("tempdir");
    let token_file = outside.path().join("token");
    std::fs::write(&token_file, TOKEN).expect("write");
    mkfifo(&outside.path().join("fifo"));

    let cases: [(&str, &Path, &str); 4] = [
        (
            "token",
            &token_file,
            "a symlink that leads out of the repository",
        ),
        (
            "zero",
            Path::new("/dev/zero"),
            "a symlink that leads out of the repository",
        ),
        // /dev/stdout resolves to the pipe of the test harness: broken, or outside.
        ("stdout", Path::new("/dev/stdout"), "symlink"),
        (
            "fifo",
            &outside.path().join("fifo"),
            "a symlink that leads out of the repository",
        ),
    ];
    for (name, target, cause) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path();
        write_tree(repo, &[("app.yaml", GOOD)]);
        symlink(target, repo.join(".envfence.yaml")).expect("symlink");
        let out = run(&[os("scan"), os("-q"), repo.as_os_str()], repo);
        assert_refused(&out, cause);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(".envfence.yaml"),
            "{name}"
        );

        // The same link named relative to the repository, as the action's `config:` input
        // does, and as an absolute path inside it.
        symlink(target, repo.join("strict.yaml")).expect("symlink");
        std::fs::remove_file(repo.join(".envfence.yaml")).expect("rm");
        let out = run(
            &[
                os("scan"),
                os("-q"),
                os("--config"),
                os("strict.yaml"),
                os("."),
            ],
            repo,
        );
        assert_refused(&out, cause);
        let absolute = repo.join("strict.yaml");
        let out = run(
            &[
                os("topology"),
                os("-q"),
                os("--config"),
                absolute.as_os_str(),
                repo.as_os_str(),
            ],
            outside.path(),
        );
        assert_refused(&out, cause);
    }
}

#[cfg(unix)]
#[test]
fn special_files_inside_the_repository_are_not_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path();
    write_tree(repo, &[("app.yaml", GOOD)]);
    mkfifo(&repo.join(".envfence.yaml"));
    let out = run(&[os("scan"), os("-q"), os(".")], repo);
    assert_refused(&out, "not a regular file");

    std::fs::remove_file(repo.join(".envfence.yaml")).expect("rm");
    std::os::unix::fs::symlink("app.yaml", repo.join(".envfence.yaml")).expect("symlink");
    // A link that stays inside is fine (app.yaml is not a config, so serde complains).
    let out = run(&[os("scan"), os("-q"), os(".")], repo);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `apiVersion`"));
}

#[test]
fn oversized_configs_are_refused_unread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path();
    let huge = format!("# {}\n", "x".repeat(2 << 20));
    write_tree(repo, &[("app.yaml", GOOD), (".envfence.yaml", &huge)]);
    let out = run(&[os("scan"), os("-q"), os(".")], repo);
    assert_refused(&out, "larger than the limit of 1024 KiB");
}

#[test]
fn config_errors_quote_only_a_short_excerpt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path();
    // A wrong type whose value is the whole token: serde would quote all of it.
    write_tree(
        repo,
        &[
            ("app.yaml", GOOD),
            (".envfence.yaml", &format!("clusters: \"{TOKEN}\"\n")),
        ],
    );
    let out = run(&[os("scan"), os("-q"), os(".")], repo);
    assert_refused(&out, ".envfence.yaml:1:11: clusters: invalid type: string \"eyJhbGciOiJSUzI1NiIsImtpZCI6InNl…\", expected a sequence");

    // The whole file as one string, as a symlink to a token file would give.
    write_tree(repo, &[(".envfence.yaml", TOKEN)]);
    let out = run(&[os("scan"), os("-q"), os(".")], repo);
    assert_refused(
        &out,
        "invalid type: string \"eyJhbGciOiJSUzI1NiIsImtpZCI6InNl…\"",
    );

    // Unknown keys are quoted short too, but what serde expected is listed whole.
    let key = "k".repeat(500);
    write_tree(
        repo,
        &[(".envfence.yaml", &format!("rules:\n  {key}: off\n"))],
    );
    let out = run(&[os("scan"), os("-q"), os(".")], repo);
    assert_refused(&out, "unknown field `kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk…`, expected one of `nonprod-on-prod-cluster`, `nonprod-uses-prod-config`");
}

/// A config the user names outside the repository is theirs: it may be a link to anywhere,
/// and a mistake in it still quotes no more than an excerpt.
#[cfg(unix)]
#[test]
fn a_config_named_outside_the_repository_is_the_users_choice() {
    let outside = tempfile::tempdir().expect("tempdir");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    write_tree(
        elsewhere.path(),
        &[("real.yaml", "rules:\n  invalid-yaml: off\n")],
    );
    let link = outside.path().join("envfence.yaml");
    std::os::unix::fs::symlink(elsewhere.path().join("real.yaml"), &link).expect("symlink");
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path();
    write_tree(repo, &[("broken.yaml", "a: [\n")]);
    let out = run(
        &[
            os("scan"),
            os("-q"),
            os("--fail-on"),
            os("warning"),
            os("--config"),
            link.as_os_str(),
            os("."),
        ],
        repo,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "invalid-yaml is off: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    mkfifo(&outside.path().join("fifo.yaml"));
    let fifo = outside.path().join("fifo.yaml");
    let out = run(
        &[
            os("scan"),
            os("-q"),
            os("--config"),
            fifo.as_os_str(),
            os("."),
        ],
        repo,
    );
    assert_refused(&out, "not a regular file");
}

#[cfg(unix)]
#[test]
fn policy_files_in_the_repository_are_confined_too() {
    let outside = tempfile::tempdir().expect("tempdir");
    let token_file = outside.path().join("token");
    std::fs::write(&token_file, TOKEN).expect("write");
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path();
    write_tree(repo, &[("app.yaml", GOOD), ("policies/.keep", "")]);
    std::os::unix::fs::symlink(&token_file, repo.join("policies/invalid-yaml.yaml"))
        .expect("symlink");
    let out = run(
        &[
            os("scan"),
            os("-q"),
            os("--policies"),
            os("policies"),
            os("."),
        ],
        repo,
    );
    assert_refused(&out, "a symlink that leads out of the repository");

    std::fs::remove_file(repo.join("policies/invalid-yaml.yaml")).expect("rm");
    std::os::unix::fs::symlink("/dev/zero", repo.join("policies/invalid-yaml.yaml"))
        .expect("symlink");
    let out = run(
        &[
            os("scan"),
            os("-q"),
            os("--policies"),
            os("policies"),
            os("."),
        ],
        repo,
    );
    assert_refused(&out, "a symlink that leads out of the repository");
}

#[test]
fn a_policy_data_entry_of_the_wrong_type_is_rejected_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(
        dir.path(),
        &[(
            "nonprod-on-prod-cluster.yaml",
            "id: nonprod-on-prod-cluster\nseverity: warning\ndata:\n  deployer_kinds: Service\n",
        )],
    );
    let policies = dir.path().to_path_buf();
    let out = envfence()
        .args(["scan", "-q", "--policies"])
        .arg(&policies)
        .arg(fixture("demo"))
        .timeout(Duration::from_secs(20))
        .output()
        .expect("runs");
    assert_refused(
        &out,
        "nonprod-on-prod-cluster.yaml:4: data `deployer_kinds` must be a list, like the built-in one, not a string",
    );
}

#[test]
fn sixty_thousand_policy_list_entries_merge_in_linear_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = String::from("id: nonprod-on-prod-cluster\ndata:\n  deployer_kinds:\n");
    for i in 0..60_000 {
        text.push_str(&format!("    - Kind{i}\n"));
    }
    write_tree(dir.path(), &[("nonprod-on-prod-cluster.yaml", &text)]);
    let repo = tempfile::tempdir().expect("tempdir");
    write_tree(repo.path(), &[("app.yaml", GOOD)]);
    let started = std::time::Instant::now();
    let out = envfence()
        .args(["scan", "-q", "--policies"])
        .arg(dir.path())
        .arg(repo.path())
        .timeout(Duration::from_secs(30))
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Quadratic merging took 9.7 s in a release build; linear takes well under one.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

/// A file whose name would be a workflow command if printed raw, with a finding in it.
const HOSTILE_NAME: &str = "x\n::error title=pwned::y.yaml";

/// True when some line of `text` would be run by the GitHub Actions runner: it starts with
/// `::` once leading whitespace is trimmed, or holds the legacy `##[` anywhere.
fn workflow_commands(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.trim_start().starts_with("::") || l.contains("##["))
        .map(str::to_owned)
        .collect()
}

#[cfg(unix)]
fn hostile_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(
        dir.path(),
        &[
            (
                ".envfence.yaml",
                "clusters:\n  - name: prod\n    environment: production\npaths:\n  - glob: \"**\"\n    cluster: prod\n",
            ),
            (HOSTILE_NAME, "a: [\n"),
            (
                "apps/##[group]feature\n::warning::z.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: \"feature-x\\n::error::name\"\n",
            ),
        ],
    );
    dir
}

#[cfg(unix)]
#[test]
fn file_names_cannot_become_workflow_commands() {
    let dir = hostile_repo();
    let repo = dir.path();
    for format in ["text", "markdown"] {
        let out = run(
            &[os("scan"), os("-q"), os("--format"), os(format), os(".")],
            repo,
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{format}: {stdout}"
        );
        assert!(stdout.contains("invalid-yaml"), "{format}: {stdout}");
        assert_eq!(workflow_commands(&stdout), Vec::<String>::new(), "{format}");
    }
    let out = run(
        &[os("scan"), os("-q"), os("--format"), os("github"), os(".")],
        repo,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.is_empty());
    for line in stdout.lines() {
        // Only envfence's own annotations, each on one line.
        assert!(
            ["::error file=", "::warning file=", "::notice "]
                .iter()
                .any(|p| line.starts_with(p)),
            "{line}"
        );
        assert!(!line.contains("##["), "{line}");
    }
    for args in [
        vec!["topology", "-q", "."],
        vec!["topology", "-q", "--format", "mermaid", "."],
        vec!["topology", "-q", "--format", "dot", "."],
    ] {
        let args: Vec<&std::ffi::OsStr> = args.into_iter().map(os).collect();
        let out = run(&args, repo);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        // Graphs show deployers only; the text lists the objects.
        assert!(
            args.len() > 3 || stdout.contains("feature-x"),
            "{args:?}: {stdout}"
        );
        assert_eq!(workflow_commands(&stdout), Vec::<String>::new(), "{args:?}");
    }
    let hostile = repo.join("apps/##[group]feature\n::warning::z.yaml");
    let out = run(&[os("explain"), os("-q"), hostile.as_os_str()], repo);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("feature-x"), "{stdout}");
    assert_eq!(workflow_commands(&stdout), Vec::<String>::new());
}

#[cfg(unix)]
#[test]
fn under_github_actions_human_output_is_fenced_off() {
    let dir = hostile_repo();
    let repo = dir.path();
    let fenced = |args: &[&str]| {
        let out = envfence()
            .args(args)
            .current_dir(repo)
            .env("GITHUB_ACTIONS", "true")
            .timeout(Duration::from_secs(20))
            .output()
            .expect("runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for args in [
        &["scan", "-q", "."][..],
        &["scan", "-q", "--format", "markdown", "."],
        &["topology", "-q", "."],
    ] {
        let stdout = fenced(args);
        let lines: Vec<&str> = stdout.lines().collect();
        let token = lines[0]
            .strip_prefix("::stop-commands::")
            .unwrap_or_else(|| panic!("{args:?}: {stdout}"));
        assert!(token.len() >= 32, "{token}");
        assert_eq!(lines.last().copied(), Some(&*format!("::{token}::")));
        assert_eq!(workflow_commands(&stdout).len(), 2, "{args:?}: {stdout}");
    }
    // Two runs, two tokens.
    assert_ne!(
        fenced(&["scan", "-q", "."]).lines().next(),
        fenced(&["scan", "-q", "."]).lines().next()
    );
    // Machine formats are left alone: annotations must work, JSON must parse.
    let annotations = fenced(&["scan", "-q", "--format", "github", "."]);
    assert!(
        annotations.starts_with("::") && !annotations.contains("stop-commands"),
        "{annotations}"
    );
    let json = fenced(&["scan", "-q", "--format", "json", "."]);
    assert!(
        serde_json::from_str::<serde_json::Value>(&json).is_ok(),
        "{json}"
    );
}

#[test]
fn the_demo_never_repeats_a_password() {
    let demo = fixture("demo");
    for format in ["text", "json", "github", "markdown", "sarif"] {
        let out = envfence()
            .args(["scan", "-q", "--format", format])
            .arg(&demo)
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains("orders:orders"), "{format}: {stdout}");
        // The finding still names the production host it is about (Markdown escapes `*@`).
        let masked = match format {
            "markdown" => "postgres://orders:\\*\\*\\*\\*&#64;orders-db.prod.acme.internal",
            _ => "postgres://orders:****@orders-db.prod.acme.internal",
        };
        assert!(stdout.contains(masked), "{format}: {stdout}");
    }
    for args in [
        &["topology", "-q", "--format", "json"][..],
        &["topology", "-q"],
    ] {
        let out = envfence().args(args).arg(&demo).output().expect("runs");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("orders:orders"));
    }
    // The bot: annotations on stdout, the job summary (the comment's body) and SARIF.
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = dir.path().join("summary.md");
    let sarif = dir.path().join("report.sarif");
    let out = envfence()
        .args(["github", "-q", "--comment", "never", "--sarif"])
        .arg(&sarif)
        .arg(&demo)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_EVENT_NAME", "push")
        .env_remove("GITHUB_EVENT_PATH")
        .env_remove("GITHUB_WORKSPACE")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GITHUB_OUTPUT")
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for text in [
        String::from_utf8_lossy(&out.stdout).into_owned(),
        std::fs::read_to_string(&summary).expect("summary"),
        std::fs::read_to_string(&sarif).expect("sarif"),
    ] {
        assert!(text.contains("orders-db.prod.acme.internal"), "{text}");
        assert!(!text.contains("orders:orders"), "{text}");
    }
}

#[test]
fn option_values_are_capped() {
    let demo = fixture("demo");
    let out = envfence()
        .args(["scan", "-q", "--max-file-size", "20G"])
        .arg(&demo)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`20G` is above the largest file size envfence reads, 256MiB"),
        "{stderr}"
    );
    let out = envfence()
        .args([
            "scan",
            "-q",
            "--max-file-size",
            "256MiB",
            "--format",
            "json",
        ])
        .arg(&demo)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    json_report(&out);

    // 65,535 threads would take a minute to start; the pool is capped at 4 per core.
    let started = std::time::Instant::now();
    let out = envfence()
        .args(["scan", "-q", "-j", "65535", "--format", "json"])
        .arg(&demo)
        .timeout(Duration::from_secs(30))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_base_revision_with_a_newline_is_a_one_line_error() {
    let out = envfence()
        .args(["scan", "-q", "--base", "main\n::error::x"])
        .arg(fixture("demo"))
        .timeout(Duration::from_secs(20))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("main\\n::error::x"), "{stderr}");
}

/// Issue 25, defect 14: a token as a URL's user (no password) and a JWT in a value that a
/// finding quotes are masked in every format, the production host kept (before: both printed).
#[test]
fn token_users_and_jwts_in_a_quoted_value_are_masked() {
    fn copy_tree(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read_dir") {
            let entry = entry.expect("entry");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("type").is_dir() {
                copy_tree(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).expect("copy");
            }
        }
    }
    const USER: &str = "ghp_abcdefghij0123456789ABCDEFGHIJ";
    const JWT: &str =
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjaSIsInJvbGUiOiJhZG1pbiJ9.c2lnbmF0dXJlX2J5dGVzX2hlcmU";
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("demo");
    copy_tree(&fixture("demo"), &repo);
    let job = repo.join("apps/checkout/overlays/dev/integration-test-job.yaml");
    let text = std::fs::read_to_string(&job).expect("job");
    let hostile = text.replace(
        "postgres://orders:orders@orders-db.prod.acme.internal:5432/orders",
        &format!("https://{USER}@orders-db.prod.acme.internal/orders?session={JWT}"),
    );
    assert_ne!(text, hostile);
    std::fs::write(&job, hostile).expect("write");
    for format in ["text", "json", "github", "markdown", "sarif"] {
        let out = envfence()
            .args(["scan", "-q", "--format", format])
            .arg(&repo)
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{format}: {stdout}");
        assert!(
            !stdout.contains("ghp_abcdefghij") && !stdout.contains("eyJhbGciOiJIUzI1NiJ9"),
            "{format}: {stdout}"
        );
        assert!(
            stdout.contains("orders-db.prod.acme.internal"),
            "{format}: {stdout}"
        );
        if matches!(format, "text" | "json") {
            assert!(
                stdout.contains("https://****@orders-db.prod.acme.internal/orders?session=****"),
                "{format}: {stdout}"
            );
        }
    }
}
