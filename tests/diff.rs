//! Diff-aware scans (`--base REV [--head REV]`) on real git repositories built in temp dirs:
//! added, changed, deleted and renamed files, a shared base that moves many placements, a
//! cluster definition that changes, a merge-commit checkout, shallow clones.

mod common;

use std::path::Path;

use common::{envfence, git, json_report, write_tree};
use serde_json::Value;

/// Commits everything in the work tree; returns the new commit id.
fn commit_all(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

const CONFIG: &str = "\
clusters:
  - name: prod-eu
    environment: production
  - name: prod-us
    environment: production
  - name: dev-eu
    environment: non-production
";

fn deployment(name: &str, env: &[(&str, &str)]) -> String {
    let mut text = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {name}\n\
         spec:\n  template:\n    spec:\n      containers:\n        - name: {name}\n          image: {name}:1.0\n"
    );
    if !env.is_empty() {
        text.push_str("          env:\n");
        for (key, value) in env {
            text.push_str(&format!(
                "            - name: {key}\n              value: {value}\n"
            ));
        }
    }
    text
}

fn application(name: &str, path: &str, cluster: &str, namespace: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\n  namespace: argocd\n\
         spec:\n  project: default\n  source:\n    repoURL: https://git.example.com/platform/gitops.git\n    path: {path}\n\
         \x20 destination:\n    name: {cluster}\n    namespace: {namespace}\n"
    )
}

/// A repository with one production app, committed; returns its first commit.
fn base_repo(dir: &Path) -> String {
    git(dir, &["init", "-q"]);
    write_tree(
        dir,
        &[
            (".envfence.yaml", CONFIG),
            ("apps/web/deployment.yaml", &deployment("web", &[])),
            ("apps/login/deployment.yaml", &deployment("login", &[])),
            (
                "argocd/web-production.yaml",
                &application("web-production", "apps/web", "prod-eu", "web"),
            ),
        ],
    );
    commit_all(dir, "base")
}

fn add_feature_app(dir: &Path) {
    write_tree(
        dir,
        &[(
            "argocd/feature-login.yaml",
            &application("feature-login", "apps/login", "prod-eu", "login"),
        )],
    );
}

/// Runs `envfence scan --format json` with `args`; returns (exit code, report).
fn scan_json(dir: &Path, args: &[&str]) -> (i32, Value) {
    let out = envfence()
        .current_dir(dir)
        .args(["scan", "--quiet", "--format", "json"])
        .args(args)
        .arg(".")
        .output()
        .expect("runs");
    (out.status.code().unwrap_or(-1), json_report(&out))
}

/// (status, rule, file, cluster) of each finding, for readable assertions.
fn statuses(report: &Value) -> Vec<(String, String, String, String)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("").to_owned();
            (s("status"), s("rule"), s("file"), s("cluster"))
        })
        .collect()
}

fn with_status<'a>(report: &'a Value, status: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["status"] == status)
        .collect()
}

#[test]
fn a_feature_app_added_on_production_is_new_then_existing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let base = base_repo(dir);
    add_feature_app(dir);
    let head = commit_all(dir, "add feature-login");

    let (code, report) = scan_json(dir, &["--base", &base]);
    assert_eq!(code, 1, "a new error fails the check");
    let new = with_status(&report, "new");
    assert!(
        new.iter().any(|f| f["rule"] == "nonprod-on-prod-cluster"
            && f["file"] == "argocd/feature-login.yaml"
            && f["cluster"] == "prod-eu"),
        "{:#?}",
        statuses(&report)
    );
    let comparison = &report["summary"]["comparison"];
    assert_eq!(comparison["base"], base.as_str());
    assert_eq!(comparison["base_commit"], base.as_str());
    assert_eq!(comparison["head_commit"], Value::Null);
    assert_eq!(comparison["new"], new.len());

    // An unrelated commit: against the previous head, the same finding is existing.
    write_tree(dir, &[("README.md", "unrelated\n")]);
    write_tree(dir, &[("apps/web/notes.yaml", "owner: web-team\n")]);
    commit_all(dir, "unrelated");
    let (code, report) = scan_json(dir, &["--base", &head]);
    assert_eq!(code, 0, "{:#?}", statuses(&report));
    assert!(with_status(&report, "new").is_empty());
    assert!(with_status(&report, "existing")
        .iter()
        .any(|f| f["rule"] == "nonprod-on-prod-cluster"));
    assert_eq!(report["summary"]["comparison"]["fixed"], 0);
    // Every base file but none changed: the base reused the head's parse of each.
    assert_eq!(report["summary"]["comparison"]["unchanged_files"], 5);

    // Against HEAD itself nothing changed: every finding of a plain scan is existing.
    let (_, plain) = scan_json(dir, &[]);
    let (code, report) = scan_json(dir, &["--base", "HEAD"]);
    assert_eq!(code, 0);
    assert_eq!(
        with_status(&report, "existing").len(),
        plain["findings"].as_array().map_or(0, Vec::len)
    );
    assert_eq!(report["summary"]["comparison"]["new"], 0);

    // The text report says what it compared, and counts new findings only.
    let out = envfence()
        .current_dir(dir)
        .args(["scan", "--quiet", "--base", &head, "."])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("No new findings."), "{text}");
    assert!(
        text.contains(&format!(
            "Compared the working tree with base {head} ({}): 0 new, 4 existing, 0 fixed.",
            &head[..12]
        )),
        "{text}"
    );
    assert!(text.contains("(existing)"), "{text}");
}

#[test]
fn renamed_and_moved_files_keep_their_findings() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    base_repo(dir);
    add_feature_app(dir);
    let before = commit_all(dir, "add feature-login");
    std::fs::create_dir_all(dir.join("argocd/features")).expect("mkdir");
    git(
        dir,
        &[
            "mv",
            "argocd/feature-login.yaml",
            "argocd/features/login.yaml",
        ],
    );
    // A renamed file whose lines also shifted.
    let moved = dir.join("argocd/features/login.yaml");
    let text = std::fs::read_to_string(&moved).expect("read");
    std::fs::write(&moved, format!("# moved into features/\n\n{text}")).expect("write");
    commit_all(dir, "move it");

    let (code, report) = scan_json(dir, &["--base", &before]);
    assert_eq!(code, 0, "{:#?}", statuses(&report));
    assert!(
        with_status(&report, "new").is_empty(),
        "{:#?}",
        statuses(&report)
    );
    assert!(
        with_status(&report, "fixed").is_empty(),
        "{:#?}",
        statuses(&report)
    );
    let existing = with_status(&report, "existing");
    assert!(existing
        .iter()
        .any(|f| f["file"] == "argocd/features/login.yaml"
            && f["rule"] == "nonprod-on-prod-cluster"
            && f["line"] == 14));

    // The same through the working tree: an uncommitted rename (untracked new file).
    git(dir, &["reset", "-q", "--hard", &before]);
    std::fs::rename(
        dir.join("argocd/feature-login.yaml"),
        dir.join("argocd/login-feature.yaml"),
    )
    .expect("rename");
    let (code, report) = scan_json(dir, &["--base", &before]);
    assert_eq!(code, 0, "{:#?}", statuses(&report));
    assert!(
        with_status(&report, "new").is_empty(),
        "{:#?}",
        statuses(&report)
    );
}

#[test]
fn a_deleted_deployer_reports_its_findings_fixed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    base_repo(dir);
    add_feature_app(dir);
    let with_feature = commit_all(dir, "add feature-login");
    std::fs::remove_file(dir.join("argocd/feature-login.yaml")).expect("rm");

    let (code, report) = scan_json(dir, &["--base", &with_feature]);
    assert_eq!(code, 0);
    assert!(with_status(&report, "new").is_empty());
    let fixed = with_status(&report, "fixed");
    assert!(
        fixed
            .iter()
            .any(|f| f["rule"] == "nonprod-on-prod-cluster"
                && f["file"] == "argocd/feature-login.yaml"),
        "{:#?}",
        statuses(&report)
    );
    assert_eq!(report["summary"]["comparison"]["fixed"], fixed.len());
    // The head's own counts do not include what was fixed.
    assert_eq!(report["summary"]["findings"]["error"], 0);

    // SARIF describes the head only.
    let out = envfence()
        .current_dir(dir)
        .args([
            "scan",
            "--quiet",
            "--format",
            "sarif",
            "--base",
            &with_feature,
            ".",
        ])
        .output()
        .expect("runs");
    let sarif: Value = serde_json::from_slice(&out.stdout).expect("SARIF is JSON");
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    assert!(results
        .iter()
        .all(|r| r["ruleId"] != "nonprod-on-prod-cluster"));
}

#[test]
fn a_change_to_a_shared_base_re_evaluates_every_placement() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    base_repo(dir);
    write_tree(
        dir,
        &[
            (
                "argocd/web-production-us.yaml",
                &application("web-production-us", "apps/web", "prod-us", "web"),
            ),
            (
                "argocd/web-dev.yaml",
                &application("web-dev", "apps/web", "dev-eu", "web"),
            ),
        ],
    );
    let base = commit_all(dir, "web on three clusters");
    // One line in the shared manifest: a staging database for every cluster that runs it.
    write_tree(
        dir,
        &[(
            "apps/web/deployment.yaml",
            &deployment(
                "web",
                &[("DATABASE_URL", "postgres://db.staging.example.com/web")],
            ),
        )],
    );

    let (_, report) = scan_json(dir, &["--base", &base]);
    let new = with_status(&report, "new");
    let mut clusters: Vec<&str> = new
        .iter()
        .filter(|f| f["rule"] == "prod-uses-nonprod-config")
        .map(|f| f["cluster"].as_str().unwrap_or(""))
        .collect();
    clusters.sort_unstable();
    assert_eq!(clusters, ["prod-eu", "prod-us"], "{:#?}", statuses(&report));
    assert!(new.iter().all(|f| f["file"] == "apps/web/deployment.yaml"));
}

/// A change to what an object says, not to where it lands: the base is judged with its own
/// files (the topology is the head's, which is the base's too).
#[test]
fn a_configmap_change_fixes_the_finding_its_old_data_caused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    base_repo(dir);
    let config_map = |url: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: login-config\n  namespace: login\n\
             data:\n  DATABASE_URL: {url}\n"
        )
    };
    write_tree(
        dir,
        &[
            (
                "apps/login/configmap.yaml",
                &config_map("postgres://db.prod.example.com/login"),
            ),
            (
                "argocd/login-dev.yaml",
                &application("login-dev", "apps/login", "dev-eu", "login"),
            ),
        ],
    );
    let base = commit_all(dir, "login on dev, reading the production database");
    let (_, plain) = scan_json(dir, &[]);
    let at_base: Vec<_> = statuses(&plain)
        .into_iter()
        .filter(|(_, rule, file, _)| {
            rule == "nonprod-uses-prod-config" && file == "apps/login/configmap.yaml"
        })
        .collect();
    assert_eq!(at_base.len(), 1, "{:#?}", statuses(&plain));

    // The data changes (a line longer, too); nothing that places or classes the object does.
    write_tree(
        dir,
        &[(
            "apps/login/configmap.yaml",
            &format!(
                "{}  POOL_SIZE: \"5\"\n",
                config_map("postgres://db.dev.example.com/login")
            ),
        )],
    );
    let (code, report) = scan_json(dir, &["--base", &base]);
    assert_eq!(code, 0, "{:#?}", statuses(&report));
    assert!(
        with_status(&report, "new").is_empty(),
        "{:#?}",
        statuses(&report)
    );
    let fixed = with_status(&report, "fixed");
    assert!(
        fixed.iter().any(|f| f["rule"] == "nonprod-uses-prod-config"
            && f["file"] == "apps/login/configmap.yaml"
            && f["cluster"] == "dev-eu"),
        "{:#?}",
        statuses(&report)
    );
    // Every other finding of the head was in the base.
    let (_, head_only) = scan_json(dir, &[]);
    assert_eq!(
        with_status(&report, "existing").len(),
        head_only["findings"].as_array().map_or(0, Vec::len)
    );
}

/// kustomize's edits copy the objects they change into the topology, with the head's content:
/// an overlay's `namePrefix` renames the ConfigMap a Deployment reads, so the Deployment is
/// copied. A change to that Deployment is judged with the base's own content (the old finding
/// is fixed); a change elsewhere still shares the head's topology, the finding unchanged.
#[test]
fn a_change_to_an_object_an_overlay_edits_is_judged_with_each_sides_content() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    base_repo(dir);
    let worker = |url: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: login-worker\n\
             spec:\n  template:\n    spec:\n      containers:\n        - name: worker\n\
             \x20         image: worker:1.0\n          envFrom:\n            - configMapRef:\n\
             \x20               name: login-config\n          env:\n            - name: DATABASE_URL\n\
             \x20             value: {url}\n"
        )
    };
    write_tree(
        dir,
        &[
            (
                "apps/login/base/kustomization.yaml",
                "resources:\n  - worker.yaml\n  - configmap.yaml\n",
            ),
            (
                "apps/login/base/worker.yaml",
                &worker("postgres://db.prod.example.com/login"),
            ),
            (
                "apps/login/base/configmap.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: login-config\ndata:\n  LOG: info\n",
            ),
            (
                "apps/login/dev/kustomization.yaml",
                "namePrefix: dev-\nresources:\n  - ../base\n",
            ),
            (
                "argocd/login-dev.yaml",
                &application("login-dev", "apps/login/dev", "dev-eu", "login"),
            ),
        ],
    );
    let base = commit_all(dir, "login on dev, reading the production database");
    let finding = |report: &Value, status: &str| {
        with_status(report, status)
            .iter()
            .filter(|f| {
                f["rule"] == "nonprod-uses-prod-config"
                    && f["file"] == "apps/login/base/worker.yaml"
            })
            .count()
    };
    let (_, plain) = scan_json(dir, &[]);
    assert_eq!(finding(&plain, "new"), 1, "{:#?}", statuses(&plain));

    // An unrelated file changes: the finding stays, as it is.
    write_tree(
        dir,
        &[(
            "apps/web/deployment.yaml",
            &deployment("web", &[("LOG", "debug")]),
        )],
    );
    let (_, report) = scan_json(dir, &["--base", &base]);
    assert_eq!(finding(&report, "existing"), 1, "{:#?}", statuses(&report));
    assert!(
        with_status(&report, "new").is_empty(),
        "{:#?}",
        statuses(&report)
    );

    // The edited Deployment itself changes: the base's copy has the production URL.
    write_tree(
        dir,
        &[(
            "apps/login/base/worker.yaml",
            &worker("postgres://db.dev.example.com/login"),
        )],
    );
    let (_, report) = scan_json(dir, &["--base", &base]);
    assert_eq!(finding(&report, "fixed"), 1, "{:#?}", statuses(&report));
    assert_eq!(finding(&report, "existing"), 0, "{:#?}", statuses(&report));
}

#[test]
fn a_cluster_definition_change_re_evaluates_what_lands_on_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    git(dir, &["init", "-q"]);
    let secret = |env: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: edge-1\n  namespace: argocd\n  labels:\n\
             \x20   argocd.argoproj.io/secret-type: cluster\n    env: {env}\n\
             stringData:\n  name: edge-1\n  server: https://edge-1.k8s.example.com\n"
        )
    };
    write_tree(
        dir,
        &[
            ("argocd/clusters/edge-1.yaml", &secret("staging")),
            ("apps/web/deployment.yaml", &deployment("web", &[])),
            ("apps/login/deployment.yaml", &deployment("login", &[])),
            (
                "argocd/web-production.yaml",
                &application("web-production", "apps/web", "edge-1", "web"),
            ),
            (
                "argocd/feature-login.yaml",
                &application("feature-login", "apps/login", "edge-1", "login"),
            ),
        ],
    );
    let base = commit_all(dir, "edge-1 is a staging cluster");
    // Only the cluster Secret changes; the feature app now lands on production.
    write_tree(
        dir,
        &[("argocd/clusters/edge-1.yaml", &secret("production"))],
    );

    let (code, report) = scan_json(dir, &["--base", &base]);
    assert_eq!(code, 1, "{:#?}", statuses(&report));
    assert!(with_status(&report, "new")
        .iter()
        .any(|f| f["rule"] == "nonprod-on-prod-cluster"
            && f["file"] == "argocd/feature-login.yaml"
            && f["cluster"] == "edge-1"));
}

#[test]
fn head_revisions_are_read_from_git_objects_not_the_work_tree() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let base = base_repo(dir);
    add_feature_app(dir);
    let head = commit_all(dir, "add feature-login");
    // Uncommitted noise in the work tree must not show up in a --head scan.
    write_tree(dir, &[("argocd/broken.yaml", "a: [\n")]);
    std::fs::remove_file(dir.join("argocd/feature-login.yaml")).expect("rm");

    let (code, report) = scan_json(dir, &["--base", &base, "--head", &head]);
    assert_eq!(code, 1, "{:#?}", statuses(&report));
    assert!(with_status(&report, "new")
        .iter()
        .any(|f| f["file"] == "argocd/feature-login.yaml"));
    assert!(statuses(&report).iter().all(|f| f.1 != "invalid-yaml"));
    assert_eq!(
        report["summary"]["comparison"]["head_commit"],
        head.as_str()
    );

    // The head's configuration applies: without it, prod-eu is unknown and nothing is an error.
    std::fs::remove_file(dir.join(".envfence.yaml")).expect("rm");
    let (code, _) = scan_json(dir, &["--base", &base, "--head", &head]);
    assert_eq!(
        code, 1,
        "--head reads .envfence.yaml from the head revision"
    );
}

#[test]
fn a_merge_commit_checkout_is_compared_with_its_first_parent() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    base_repo(dir);
    git(dir, &["checkout", "-q", "-b", "feature"]);
    add_feature_app(dir);
    let pr_head = commit_all(dir, "add feature-login");
    git(dir, &["checkout", "-q", "main"]);
    write_tree(dir, &[("apps/web/extra.yaml", "owner: web-team\n")]);
    let main_tip = commit_all(dir, "main moves on");
    // What actions/checkout gives a pull_request run: the merge of the PR into its base.
    git(dir, &["checkout", "-q", "--detach", &main_tip]);
    git(
        dir,
        &[
            "merge",
            "-q",
            "--no-ff",
            "-m",
            "Merge pull request",
            &pr_head,
        ],
    );

    let (code, report) = scan_json(dir, &["--base", "HEAD^1"]);
    assert_eq!(code, 1);
    assert!(with_status(&report, "new")
        .iter()
        .any(|f| f["file"] == "argocd/feature-login.yaml"));
    assert_eq!(
        report["summary"]["comparison"]["base_commit"],
        main_tip.as_str()
    );
}

#[test]
fn a_subfolder_is_compared_with_the_same_subfolder() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let top = tmp.path();
    git(top, &["init", "-q"]);
    let dir = top.join("gitops");
    std::fs::create_dir_all(&dir).expect("mkdir");
    write_tree(
        &dir,
        &[
            (".envfence.yaml", CONFIG),
            ("apps/web/deployment.yaml", &deployment("web", &[])),
            ("apps/login/deployment.yaml", &deployment("login", &[])),
            (
                "argocd/web-production.yaml",
                &application("web-production", "apps/web", "prod-eu", "web"),
            ),
        ],
    );
    write_tree(top, &[("other/ignored.yaml", "a: [\n")]);
    let base = commit_all(top, "base");
    add_feature_app(&dir);

    let (code, report) = scan_json(&dir, &["--base", &base]);
    assert_eq!(code, 1);
    let new = with_status(&report, "new");
    assert!(new.iter().any(|f| f["file"] == "argocd/feature-login.yaml"));
    assert!(statuses(&report).iter().all(|f| f.1 != "invalid-yaml"));
    assert_eq!(report["summary"]["comparison"]["unchanged_files"], 4);
}

#[test]
fn committed_symlinks_never_leave_the_scanned_folder() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let base = base_repo(dir);
    std::os::unix::fs::symlink("/etc/passwd", dir.join("escape.yaml")).expect("symlink");
    std::os::unix::fs::symlink("../../../outside.yaml", dir.join("apps/up.yaml")).expect("symlink");
    std::os::unix::fs::symlink("web/deployment.yaml", dir.join("apps/alias.yaml"))
        .expect("symlink");
    std::os::unix::fs::symlink("web", dir.join("apps/dir.yaml")).expect("symlink");
    std::os::unix::fs::symlink("loop-b.yaml", dir.join("loop-a.yaml")).expect("symlink");
    std::os::unix::fs::symlink("loop-a.yaml", dir.join("loop-b.yaml")).expect("symlink");
    let head = commit_all(dir, "links");

    let (_, report) = scan_json(dir, &["--base", &base, "--head", &head]);
    let skipped: Vec<(String, String)> = report["summary"]["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .map(|s| {
            (
                s["file"].as_str().unwrap_or("").to_owned(),
                s["category"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expect = |file: &str, category: &str| {
        assert!(
            skipped.contains(&(file.to_owned(), category.to_owned())),
            "{file}: {category} not in {skipped:#?}"
        );
    };
    expect("escape.yaml", "symlink out of the repository");
    expect("apps/up.yaml", "symlink out of the repository");
    expect("apps/dir.yaml", "symlinked directory");
    expect("loop-a.yaml", "broken symlink");
    // A link inside the folder is read through its target.
    assert!(!skipped.iter().any(|(f, _)| f == "apps/alias.yaml"));
}

#[test]
fn revisions_that_cannot_be_read_are_one_line_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("repo");
    std::fs::create_dir_all(&dir).expect("mkdir");
    base_repo(&dir);
    add_feature_app(&dir);
    commit_all(&dir, "second");

    let exit_2 = |cwd: &Path, args: &[&str]| {
        let out = envfence()
            .current_dir(cwd)
            .args(["scan", "--quiet"])
            .args(args)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        stderr
    };
    let run = |cwd: &Path, args: &[&str]| {
        let stderr = exit_2(cwd, args);
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        stderr
    };
    let err = run(&dir, &["--base", "no-such-branch", "."]);
    assert!(
        err.contains("--base no-such-branch: no such revision"),
        "{err}"
    );
    // A usage error, in clap's words (with a usage line).
    let err = exit_2(&dir, &["--head", "HEAD", "."]);
    assert!(
        err.contains("--base"),
        "--head alone is a usage error: {err}"
    );

    // A shallow clone that lacks the base says which fetch depth to use.
    let shallow = tmp.path().join("shallow");
    let url = format!("file://{}", dir.display());
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--depth",
            "1",
            &url,
            shallow.to_str().expect("utf-8"),
        ],
    );
    let err = run(&shallow, &["--base", "HEAD~1", "."]);
    assert!(
        err.contains("shallow clone") && err.contains("fetch-depth: 0"),
        "{err}"
    );

    // Outside any repository.
    let plain = tmp.path().join("plain");
    std::fs::create_dir_all(&plain).expect("mkdir");
    let err = run(&plain, &["--base", "main", "."]);
    assert!(err.contains("not inside one"), "{err}");
}

#[test]
fn a_generator_element_added_to_an_applicationset_is_new() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    git(dir, &["init", "-q"]);
    let appset = |elements: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: web\n  namespace: argocd\n\
             spec:\n  generators:\n    - list:\n        elements:\n{elements}\
             \x20 template:\n    metadata:\n      name: 'web-{{{{overlay}}}}'\n    spec:\n      project: default\n\
             \x20     source:\n        repoURL: https://git.example.com/platform/gitops.git\n\
             \x20       path: 'apps/web/{{{{overlay}}}}'\n      destination:\n        name: '{{{{cluster}}}}'\n\
             \x20       namespace: web\n"
        )
    };
    let production = "          - cluster: prod-eu\n            overlay: production\n";
    let preview = "          - cluster: prod-eu\n            overlay: preview\n";
    write_tree(
        dir,
        &[
            (".envfence.yaml", CONFIG),
            (
                "apps/web/production/deployment.yaml",
                &deployment("web", &[]),
            ),
            (
                "apps/web/preview/deployment.yaml",
                &deployment("web-preview", &[]),
            ),
            ("argocd/web.yaml", &appset(production)),
        ],
    );
    let base = commit_all(dir, "web on production");
    // One generator element: the preview overlay, sent to the production cluster.
    write_tree(
        dir,
        &[(
            "argocd/web.yaml",
            &appset(&format!("{production}{preview}")),
        )],
    );

    let (code, report) = scan_json(dir, &["--base", &base]);
    assert_eq!(code, 1, "{:#?}", statuses(&report));
    assert!(
        with_status(&report, "new")
            .iter()
            .any(|f| f["rule"] == "nonprod-on-prod-cluster"
                && f["file"] == "argocd/web.yaml"
                && f["cluster"] == "prod-eu"),
        "{:#?}",
        statuses(&report)
    );
}

/// (file, category) of each skip note of a JSON report.
fn skips(report: &Value) -> Vec<(String, String)> {
    report["summary"]["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .map(|s| {
            (
                s["file"].as_str().unwrap_or("").to_owned(),
                s["category"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_huge_base_blob_is_skipped_unread() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("prlimit is not installed: skipped");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    base_repo(dir);
    // 256 MiB of zeros: sparse on disk, a few hundred KiB in git, 256 MiB once inflated.
    let big = std::fs::File::create(dir.join("apps/zeros.yaml")).expect("create");
    big.set_len(256 << 20).expect("set_len");
    drop(big);
    commit_all(dir, "a huge file");

    // 256 MiB of address space cannot hold the inflated blob: libgit2 would fail with "out
    // of memory" (a skip as unreadable). Both sides must read the blob's header only.
    let limited = |revisions: &[&str]| {
        let out = std::process::Command::new("prlimit")
            .arg("--as=268435456")
            .arg("--")
            .arg(assert_cmd::cargo::cargo_bin("envfence"))
            .args(["scan", "--quiet", "--format", "json", "-j", "1"])
            .args(revisions)
            .arg(".")
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .env("MALLOC_ARENA_MAX", "1")
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report = json_report(&out);
        assert!(
            skips(&report).contains(&("apps/zeros.yaml".to_owned(), "too large".to_owned())),
            "{:#?}",
            skips(&report)
        );
        assert_eq!(report["summary"]["comparison"]["new"], 0);
    };
    limited(&["--base", "HEAD"]);
    // With a head revision, the report's skip notes are those of a side read from git.
    limited(&["--base", "HEAD", "--head", "HEAD"]);
}

#[test]
fn submodules_are_skipped_alike_on_both_sides() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sub = tmp.path().join("shared");
    std::fs::create_dir_all(&sub).expect("mkdir");
    git(&sub, &["init", "-q"]);
    // Left alone, this would put a feature app on a production cluster.
    write_tree(
        &sub,
        &[(
            "feature-web.yaml",
            &application("feature-web", "apps/web", "prod-eu", "web"),
        )],
    );
    commit_all(&sub, "shared");

    let dir = tmp.path().join("repo");
    std::fs::create_dir_all(&dir).expect("mkdir");
    base_repo(&dir);
    git(
        &dir,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            sub.to_str().expect("utf-8"),
            "vendor/shared",
        ],
    );
    commit_all(&dir, "add a submodule");
    assert!(dir.join("vendor/shared/.git").is_file());

    let (code, report) = scan_json(&dir, &["--base", "HEAD"]);
    assert_eq!(code, 0, "{:#?}", statuses(&report));
    assert_eq!(report["summary"]["comparison"]["new"], 0);
    assert!(
        skips(&report).contains(&("vendor/shared".to_owned(), "submodule".to_owned())),
        "{:#?}",
        skips(&report)
    );
    // A plain scan passes over it the same way.
    let (code, plain) = scan_json(&dir, &[]);
    assert_eq!(code, 0, "{:#?}", statuses(&plain));
    assert!(skips(&plain).contains(&("vendor/shared".to_owned(), "submodule".to_owned())));
    assert!(!statuses(&plain)
        .iter()
        .any(|(_, _, file, _)| file.starts_with("vendor/")));
}

#[test]
fn a_missing_base_blob_is_an_error_not_new_findings() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let origin = tmp.path().join("origin");
    std::fs::create_dir_all(&origin).expect("mkdir");
    base_repo(&origin);
    add_feature_app(&origin);
    commit_all(&origin, "feature");
    // The pull request changes the feature app: its base version is another blob.
    write_tree(
        &origin,
        &[(
            "argocd/feature-login.yaml",
            &application("feature-login", "apps/login", "prod-eu", "login-v2"),
        )],
    );
    commit_all(&origin, "change the feature app");
    git(&origin, &["config", "uploadpack.allowFilter", "true"]);

    let one_line_error = |dir: &Path| {
        let out = envfence()
            .current_dir(dir)
            .args(["scan", "--quiet", "--base", "HEAD~1", "."])
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("the blob of argocd/feature-login.yaml at ")
                && err.contains("is missing from this repository")
                && err.contains("git fetch --refetch --no-filter origin"),
            "{err}"
        );
    };

    // A blobless partial clone has the head's blobs (checked out) but not the base's.
    let partial = tmp.path().join("partial");
    let url = format!("file://{}", origin.display());
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--filter=blob:none",
            &url,
            partial.to_str().expect("utf-8"),
        ],
    );
    one_line_error(&partial);
    // The advice works: after the fetch the comparison runs, and the old finding is existing.
    git(
        &partial,
        &["fetch", "-q", "--refetch", "--no-filter", "origin"],
    );
    let (code, report) = scan_json(&partial, &["--base", "HEAD~1"]);
    assert_eq!(code, 0, "{:#?}", statuses(&report));
    assert_eq!(report["summary"]["comparison"]["new"], 0);
    assert!(with_status(&report, "existing")
        .iter()
        .any(|f| f["file"] == "argocd/feature-login.yaml"));

    // A lost loose object in an ordinary repository.
    let old = git(&origin, &["rev-parse", "HEAD~1:argocd/feature-login.yaml"]);
    std::fs::remove_file(origin.join(".git/objects").join(&old[..2]).join(&old[2..]))
        .expect("the base blob is a loose object");
    one_line_error(&origin);
}

/// The base is judged with the head's topology, and what its references share with the head's
/// is worked out once: across several runs of placements, only the run that reads a changed
/// file is read again. Each side's findings are still its own: one fixed, one new, and every
/// other as a full scan of the head finds it.
#[test]
fn many_placements_are_judged_with_each_sides_own_changed_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    git(dir, &["init", "-q"]);
    let config_map = |i: usize, stage: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-{i}\n  namespace: app-{i}\n\
             data:\n  DATABASE_URL: postgres://db.{stage}.example.com/app-{i}\n"
        )
    };
    let stage = |i: usize| if i.is_multiple_of(3) { "prod" } else { "dev" };
    let mut files = vec![(".envfence.yaml".to_owned(), CONFIG.to_owned())];
    for i in 0..300 {
        files.push((
            format!("clusters/dev-eu/app-{i}/configmap.yaml"),
            config_map(i, stage(i)),
        ));
        files.push((
            format!("clusters/dev-eu/app-{i}/deployment.yaml"),
            deployment(&format!("app-{i}"), &[]),
        ));
    }
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (&**p, &**t)).collect();
    write_tree(dir, &files);
    let base = commit_all(
        dir,
        "300 apps on dev, a third reading production's database",
    );
    // Late in the placements: app-150 no longer reads production's database, app-151 now does.
    write_tree(
        dir,
        &[
            (
                "clusters/dev-eu/app-150/configmap.yaml",
                &config_map(150, "dev"),
            ),
            (
                "clusters/dev-eu/app-151/configmap.yaml",
                &config_map(151, "prod"),
            ),
        ],
    );
    let (_, report) = scan_json(dir, &["--base", &base]);
    let of = |status: &str| -> Vec<String> {
        let mut files: Vec<String> = with_status(&report, status)
            .into_iter()
            .filter(|f| f["rule"] == "nonprod-uses-prod-config")
            .map(|f| f["file"].as_str().unwrap_or_default().to_owned())
            .collect();
        files.sort();
        files
    };
    assert_eq!(of("fixed"), ["clusters/dev-eu/app-150/configmap.yaml"]);
    assert_eq!(of("new"), ["clusters/dev-eu/app-151/configmap.yaml"]);
    assert_eq!(of("existing").len(), 99, "{:#?}", of("existing"));
    // The head's findings are what a scan of the head alone reports.
    let (_, head_only) = scan_json(dir, &[]);
    let mut alone: Vec<String> = common::findings(&head_only, "nonprod-uses-prod-config")
        .into_iter()
        .map(|(at, _)| {
            at.rsplit_once(':')
                .map_or(at.clone(), |(file, _)| file.to_owned())
        })
        .collect();
    alone.sort();
    let mut judged = [of("new"), of("existing")].concat();
    judged.sort();
    assert_eq!(judged, alone);
}
