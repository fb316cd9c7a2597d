//! The change per cluster of a diff-aware scan (`scan --base`, issue 30), on git repositories
//! built in temp dirs: a base change reaching a production overlay, ApplicationSet elements
//! added and removed, a cluster Secret that makes a generator newly reach production, a
//! values-file change in a chart (with its rendered diff), a change nothing deploys, and a
//! thousand changed applications in a comment that stays within GitHub's limit.

mod common;

use std::path::Path;

use common::{envfence, git, helm_for_tests, json_report, write_tree};
use serde_json::Value;

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

fn deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n\
         spec:\n  template:\n    spec:\n      containers:\n        - name: {name}\n          image: {image}\n"
    )
}

fn application(name: &str, path: &str, cluster: &str, namespace: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\n  namespace: argocd\n\
         spec:\n  project: default\n  source:\n    repoURL: https://git.example.com/platform/gitops.git\n    path: {path}\n\
         \x20 destination:\n    name: {cluster}\n    namespace: {namespace}\n"
    )
}

/// `envfence scan --base BASE --format FORMAT .` in `dir`, with helm off unless `helm` is given.
fn scan(dir: &Path, base: &str, format: &str, helm: Option<&Path>) -> String {
    let mut cmd = envfence();
    cmd.current_dir(dir)
        .args(["scan", "--quiet", "--fail-on", "never", "--format", format])
        .args(["--base", base]);
    match helm {
        Some(helm) => cmd.env("ENVFENCE_HELM", helm),
        None => cmd.args(["--helm", "off"]),
    };
    let out = cmd.arg(".").output().expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if format == "json" {
        return json_report(&out).to_string();
    }
    String::from_utf8(out.stdout).expect("utf-8")
}

fn changes(dir: &Path, base: &str, helm: Option<&Path>) -> Value {
    let report: Value = serde_json::from_str(&scan(dir, base, "json", helm)).expect("json");
    report["changes"].clone()
}

fn cluster<'a>(changes: &'a Value, name: &str) -> &'a Value {
    changes["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|c| c["cluster"] == name)
        .unwrap_or_else(|| panic!("no changes on {name}: {changes:#}"))
}

fn cluster_names(changes: &Value) -> Vec<String> {
    changes["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| c["cluster"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// (change, kind, name) of each object change of a cluster.
fn objects(cluster: &Value) -> Vec<(String, String, String)> {
    cluster["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .map(|o| {
            let s = |k: &str| o[k].as_str().unwrap_or("").to_owned();
            (s("change"), s("kind"), s("name"))
        })
        .collect()
}

/// (change, kind, name, newly reaches production) of each delivery change of a cluster.
fn deliveries(cluster: &Value) -> Vec<(String, String, String, bool)> {
    cluster["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap_or("").to_owned();
            (
                s("change"),
                s("kind"),
                s("name"),
                d["newly_reaches_production"] == true,
            )
        })
        .collect()
}

/// Whether `diff` has a line starting with `sign` whose content, trimmed and without quotes,
/// is `text` (indentation and quoting are the YAML writer's).
fn has_line(diff: &str, sign: char, text: &str) -> bool {
    diff.lines()
        .any(|l| l.starts_with(sign) && l[sign.len_utf8()..].trim().replace('"', "") == text)
}

fn o(change: &str, kind: &str, name: &str) -> (String, String, String) {
    (change.to_owned(), kind.to_owned(), name.to_owned())
}

#[test]
fn a_base_change_shows_on_the_production_overlay_with_its_path() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    git(dir, &["init", "-q"]);
    write_tree(
        dir,
        &[
            (".envfence.yaml", CONFIG),
            (
                "apps/web/base/deployment.yaml",
                &deployment("web", "web:1.0"),
            ),
            (
                "apps/web/base/kustomization.yaml",
                "resources:\n  - deployment.yaml\n",
            ),
            (
                "apps/web/overlays/prod/kustomization.yaml",
                "namespace: web\nresources:\n  - ../../base\n",
            ),
            (
                "apps/web/overlays/dev/kustomization.yaml",
                "namespace: web-dev\nresources:\n  - ../../base\n",
            ),
            (
                "argocd/web-prod.yaml",
                &application("web-prod", "apps/web/overlays/prod", "prod-eu", "web"),
            ),
            (
                "argocd/web-dev.yaml",
                &application("web-dev", "apps/web/overlays/dev", "dev-eu", "web-dev"),
            ),
        ],
    );
    let base = commit_all(dir, "web 1.0");
    write_tree(
        dir,
        &[(
            "apps/web/base/deployment.yaml",
            &deployment("web", "web:1.1"),
        )],
    );

    let changes = changes(dir, &base, None);
    assert_eq!(changes["nothing_changed"], false);
    // Production first.
    assert_eq!(
        cluster_names(&changes),
        ["prod-eu", "dev-eu"],
        "{changes:#}"
    );
    let prod = cluster(&changes, "prod-eu");
    assert_eq!(prod["environment"], "production");
    assert_eq!(objects(prod), [o("modified", "Deployment", "web")]);
    assert_eq!(prod["counts"]["objects"]["modified"], 1);
    let web = &prod["objects"][0];
    assert_eq!(web["namespace"], "web");
    assert_eq!(web["deployer"]["name"], "web-prod");
    let causes: Vec<&str> = web["causes"]
        .as_array()
        .expect("causes")
        .iter()
        .filter_map(|c| c["file"].as_str())
        .collect();
    assert_eq!(causes, ["apps/web/base/deployment.yaml"]);
    let path = web["path"].to_string();
    assert!(
        path.contains("apps/web/overlays/prod/kustomization.yaml"),
        "{path}"
    );
    assert!(path.contains("argocd/web-prod.yaml"), "{path}");
    let diff = web["diff"].as_str().expect("a diff");
    assert!(has_line(diff, '-', "image: web:1.0"), "{diff}");
    assert!(has_line(diff, '+', "image: web:1.1"), "{diff}");
    // The delivery carried the change.
    assert_eq!(
        deliveries(prod),
        [(
            "modified".to_owned(),
            "Application".to_owned(),
            "web-prod".to_owned(),
            false
        )]
    );
    assert_eq!(
        objects(cluster(&changes, "dev-eu")),
        [o("modified", "Deployment", "web")]
    );

    let markdown = scan(dir, &base, "markdown", None);
    assert!(markdown.contains("### Changes per cluster"), "{markdown}");
    let table = markdown
        .find("| production | prod-eu | +0 −0 ~1 | +0 −0 ~1 |")
        .expect("prod-eu's counts");
    let details = markdown
        .find("<details><summary>prod-eu (production)")
        .expect("prod-eu's details");
    assert!(table < details, "counts first: {markdown}");
    assert!(markdown.contains("```diff\n"), "{markdown}");
    assert!(
        has_line(&markdown.replace("\n  ", "\n"), '+', "image: web:1.1"),
        "{markdown}"
    );
    assert!(
        markdown
            .contains("modified Deployment/web (namespace web) at apps/web/base/deployment.yaml"),
        "{markdown}"
    );

    let text = scan(dir, &base, "text", None);
    assert!(text.contains("Changes per cluster"), "{text}");
    assert!(text.contains("~ Deployment/web (namespace web)"), "{text}");

    // The HTML report has the same section: counts first, then each cluster folded with the
    // object's path and its diff.
    let html = scan(dir, &base, "html", None);
    let section = html
        .find("<h2>Changes per cluster</h2>")
        .expect("the section");
    let prod_row = html
        .find("<strong>prod-eu</strong> <span class=\"env-production\">production</span>")
        .expect("prod-eu's row");
    let folded = html
        .find("<details><summary><strong>prod-eu</strong> (production)")
        .expect("prod-eu folded");
    assert!(section < prod_row && prod_row < folded, "{html}");
    assert!(
        html.contains("<span class=\"add\">+        image: web:1.1</span>")
            || html.contains("<span class=\"add\">+          image: web:1.1</span>"),
        "{html}"
    );
    assert!(
        html.contains("modified Deployment/web (namespace web) at <code>apps/web/base/deployment.yaml:1</code> via Application web-prod"),
        "{html}"
    );
}

/// A pull request that points an Application at a cluster its AppProject does not permit:
/// the change moves its objects between clusters, and the new finding says Argo CD would
/// refuse to sync it.
#[test]
fn an_appproject_denial_is_a_new_finding_beside_the_change() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    git(dir, &["init", "-q"]);
    let project = "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata:\n  name: web-team\n  namespace: argocd\n\
                   spec:\n  sourceRepos:\n    - '*'\n  destinations:\n    - name: dev-eu\n      namespace: '*'\n";
    let app = |cluster: &str| {
        application("web-dev", "apps/web", cluster, "web")
            .replace("project: default", "project: web-team")
    };
    write_tree(
        dir,
        &[
            (".envfence.yaml", CONFIG),
            ("apps/web/deployment.yaml", &deployment("web", "web:1.0")),
            ("argocd/project.yaml", project),
            ("argocd/web-dev.yaml", &app("dev-eu")),
        ],
    );
    let base = commit_all(dir, "web on dev");
    write_tree(dir, &[("argocd/web-dev.yaml", &app("prod-eu"))]);

    let report: Value = serde_json::from_str(&scan(dir, &base, "json", None)).expect("json");
    let denied: Vec<(&str, &str, u64)> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"] == "project-denies-destination")
        .map(|f| {
            (
                f["status"].as_str().unwrap_or(""),
                f["file"].as_str().unwrap_or(""),
                f["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(denied, [("new", "argocd/web-dev.yaml", 12)], "{report:#}");
    let changes = &report["changes"];
    assert_eq!(
        objects(cluster(changes, "prod-eu")),
        [o("added", "Deployment", "web")]
    );
    assert_eq!(
        deliveries(cluster(changes, "prod-eu")),
        [(
            "added".to_owned(),
            "Application".to_owned(),
            "web-dev".to_owned(),
            true
        )]
    );
    assert_eq!(
        objects(cluster(changes, "dev-eu")),
        [o("removed", "Deployment", "web")]
    );

    let markdown = scan(dir, &base, "markdown", None);
    assert!(
        markdown.contains("project-denies-destination"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| production | prod-eu | +1 −0 ~0 | +1 −0 ~0 |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("1 deployer newly reaches a production cluster"),
        "{markdown}"
    );
}

fn appset(elements: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: web\n  namespace: argocd\n\
         spec:\n  generators:\n    - list:\n        elements:\n{elements}\
         \x20 template:\n    metadata:\n      name: 'web-{{{{cluster}}}}'\n    spec:\n      project: default\n\
         \x20     source:\n        repoURL: https://git.example.com/platform/gitops.git\n\
         \x20       path: 'apps/web'\n      destination:\n        name: '{{{{cluster}}}}'\n\
         \x20       namespace: web\n"
    )
}

#[test]
fn applicationset_elements_added_and_removed_list_their_applications_per_cluster() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    git(dir, &["init", "-q"]);
    write_tree(
        dir,
        &[
            (".envfence.yaml", CONFIG),
            ("apps/web/deployment.yaml", &deployment("web", "web:1.0")),
            (
                "argocd/web.yaml",
                &appset("          - cluster: prod-eu\n          - cluster: dev-eu\n"),
            ),
        ],
    );
    let base = commit_all(dir, "web on prod-eu and dev-eu");
    // dev-eu's element is removed, prod-us's added.
    write_tree(
        dir,
        &[(
            "argocd/web.yaml",
            &appset("          - cluster: prod-eu\n          - cluster: prod-us\n"),
        )],
    );

    let changes = changes(dir, &base, None);
    assert_eq!(
        cluster_names(&changes),
        ["prod-us", "dev-eu"],
        "{changes:#}"
    );
    let us = cluster(&changes, "prod-us");
    assert_eq!(
        deliveries(us),
        [(
            "added".to_owned(),
            "Application".to_owned(),
            "web-prod-us".to_owned(),
            true
        )]
    );
    assert_eq!(objects(us), [o("added", "Deployment", "web")]);
    let dev = cluster(&changes, "dev-eu");
    assert_eq!(
        deliveries(dev),
        [(
            "removed".to_owned(),
            "Application".to_owned(),
            "web-dev-eu".to_owned(),
            false
        )]
    );
    assert_eq!(objects(dev), [o("removed", "Deployment", "web")]);
    assert_eq!(changes["totals"]["deliveries"]["added"], 1);
    assert_eq!(changes["totals"]["deliveries"]["removed"], 1);

    let markdown = scan(dir, &base, "markdown", None);
    assert!(
        markdown.contains("| production | prod-us | +1 −0 ~0 | +1 −0 ~0 |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("> **1 deployer newly reaches a production cluster:**\n> - Application web-prod-us → prod-us"),
        "{markdown}"
    );
    assert!(
        markdown.contains("- removed delivery Application web-dev-eu"),
        "{markdown}"
    );
}

#[test]
fn a_cluster_secret_label_makes_a_generator_newly_reach_production() {
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
    let appset = "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: canary\n  namespace: argocd\n\
         spec:\n  generators:\n    - clusters:\n        selector:\n          matchLabels:\n            env: production\n\
         \x20 template:\n    metadata:\n      name: 'canary-{{name}}'\n    spec:\n      project: default\n\
         \x20     source:\n        repoURL: https://git.example.com/platform/gitops.git\n\
         \x20       path: apps/canary\n      destination:\n        server: '{{server}}'\n\
         \x20       namespace: canary\n";
    write_tree(
        dir,
        &[
            ("argocd/clusters/edge-1.yaml", &secret("staging")),
            (
                "apps/canary/deployment.yaml",
                &deployment("canary", "canary:1.0"),
            ),
            ("argocd/canary.yaml", appset),
        ],
    );
    let base = commit_all(dir, "edge-1 is a staging cluster");
    write_tree(
        dir,
        &[("argocd/clusters/edge-1.yaml", &secret("production"))],
    );

    let changes = changes(dir, &base, None);
    let edge = cluster(&changes, "edge-1");
    assert_eq!(edge["environment"], "production", "{changes:#}");
    assert_eq!(
        deliveries(edge),
        [(
            "added".to_owned(),
            "Application".to_owned(),
            "canary-edge-1".to_owned(),
            true
        )],
        "{changes:#}"
    );
    assert_eq!(objects(edge), [o("added", "Deployment", "canary")]);
    let causes = edge["objects"][0]["causes"].to_string();
    assert!(causes.contains("argocd/clusters/edge-1.yaml"), "{causes}");

    let markdown = scan(dir, &base, "markdown", None);
    assert!(
        markdown.contains("> - Application canary-edge-1 → edge-1"),
        "{markdown}"
    );
    assert!(
        markdown.contains("- added delivery Application canary-edge-1 at argocd/canary.yaml"),
        "{markdown}"
    );
    assert!(
        markdown.contains("**newly reaches production**"),
        "{markdown}"
    );
}

const CHART: &str = "apiVersion: v2\nname: web\nversion: 0.1.0\n";
const TEMPLATE: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  template:
    spec:
      containers:
        - name: web
          image: "nginx:{{ .Values.tag }}"
"#;

#[test]
fn a_values_file_change_in_a_chart_shows_the_rendered_diff() {
    let Some(helm) = helm_for_tests() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    git(dir, &["init", "-q"]);
    write_tree(
        dir,
        &[
            (".envfence.yaml", CONFIG),
            ("charts/web/Chart.yaml", CHART),
            ("charts/web/values.yaml", "tag: stable\n"),
            ("charts/web/values-prod.yaml", "tag: \"1.0\"\n"),
            ("charts/web/templates/deployment.yaml", TEMPLATE),
            (
                "argocd/web.yaml",
                "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web\nspec:\n  destination:\n    name: prod-eu\n    namespace: web\n  source:\n    repoURL: https://example.com/repo.git\n    path: charts/web\n    helm:\n      valueFiles:\n        - values-prod.yaml\n",
            ),
        ],
    );
    let base = commit_all(dir, "web 1.0");
    write_tree(dir, &[("charts/web/values-prod.yaml", "tag: \"1.1\"\n")]);

    let changes = changes(dir, &base, Some(&helm));
    assert_eq!(cluster_names(&changes), ["prod-eu"], "{changes:#}");
    let prod = cluster(&changes, "prod-eu");
    assert_eq!(objects(prod), [o("modified", "Deployment", "web")]);
    let web = &prod["objects"][0];
    let diff = web["diff"].as_str().expect("a rendered diff");
    assert!(has_line(diff, '-', "image: nginx:1.0"), "{diff}");
    assert!(has_line(diff, '+', "image: nginx:1.1"), "{diff}");
    let causes = web["causes"].to_string();
    assert!(causes.contains("charts/web/values-prod.yaml"), "{causes}");

    let markdown = scan(dir, &base, "markdown", Some(&helm));
    assert!(
        markdown.contains("| production | prod-eu | +0 −0 ~1 | +0 −0 ~1 |"),
        "{markdown}"
    );
    assert!(
        has_line(&markdown.replace("\n  ", "\n"), '+', "image: nginx:1.1"),
        "{markdown}"
    );
}

#[test]
fn a_change_that_touches_nothing_deployed_says_so_in_one_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    git(dir, &["init", "-q"]);
    write_tree(
        dir,
        &[
            (".envfence.yaml", CONFIG),
            ("apps/web/deployment.yaml", &deployment("web", "web:1.0")),
            (
                "argocd/web.yaml",
                &application("web", "apps/web", "prod-eu", "web"),
            ),
            (
                "scratch/notes.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  a: \"1\"\n",
            ),
        ],
    );
    let base = commit_all(dir, "web");
    write_tree(
        dir,
        &[(
            "scratch/notes.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  a: \"2\"\n",
        )],
    );

    let changes = changes(dir, &base, None);
    assert_eq!(changes["nothing_changed"], true, "{changes:#}");
    assert_eq!(changes["clusters"], Value::Array(Vec::new()));
    assert_eq!(changes["totals"]["objects"]["modified"], 0);
    let markdown = scan(dir, &base, "markdown", None);
    assert!(
        markdown.contains(
            "### Changes per cluster\n\nThis change modifies nothing any cluster receives.\n"
        ),
        "{markdown}"
    );
    // A scan without --base has no change to report.
    let out = envfence()
        .current_dir(dir)
        .args([
            "scan",
            "--quiet",
            "--fail-on",
            "never",
            "--format",
            "json",
            ".",
        ])
        .output()
        .expect("runs");
    assert!(json_report(&out).get("changes").is_none());
}

#[test]
fn a_secret_change_is_diffed_with_its_values_redacted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    git(dir, &["init", "-q"]);
    let secret = |password: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: {password}\n  user: app\n"
        )
    };
    // A credential outside a Secret: a connection string's password.
    let config = |password: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: db\ndata:\n  url: postgres://app:{password}@db.example.com/app\n"
        )
    };
    write_tree(
        dir,
        &[
            (".envfence.yaml", CONFIG),
            ("apps/db/secret.yaml", &secret("hunter2-old")),
            ("apps/db/config.yaml", &config("oldpass123")),
            (
                "argocd/db.yaml",
                &application("db", "apps/db", "prod-eu", "db"),
            ),
        ],
    );
    let base = commit_all(dir, "db");
    write_tree(
        dir,
        &[
            ("apps/db/secret.yaml", &secret("s3cr3t-new")),
            ("apps/db/config.yaml", &config("newpass456")),
        ],
    );
    let json = scan(dir, &base, "json", None);
    for value in ["s3cr3t-new", "hunter2-old", "oldpass123", "newpass456"] {
        assert!(!json.contains(value), "{value} in {json}");
    }
    let markdown = scan(dir, &base, "markdown", None);
    for value in ["s3cr3t-new", "hunter2-old", "oldpass123", "newpass456"] {
        assert!(!markdown.contains(value), "{value} in {markdown}");
    }
    let changes: Value = serde_json::from_str::<Value>(&json).expect("json")["changes"].clone();
    let prod = cluster(&changes, "prod-eu");
    assert_eq!(
        objects(prod),
        [
            o("modified", "ConfigMap", "db"),
            o("modified", "Secret", "db")
        ]
    );
    let url = prod["objects"][0]["diff"].as_str().expect("a diff");
    assert!(
        has_line(url, '+', "url: postgres://app:****@db.example.com/app"),
        "{url}"
    );
    let diff = prod["objects"][1]["diff"]
        .as_str()
        .expect("a diff")
        .to_owned();
    // Redacted on both sides, the changed value says so; the unchanged one shows as unchanged.
    assert!(
        has_line(&diff, '+', "password: <redacted, changed>"),
        "{diff}"
    );
    assert!(has_line(&diff, ' ', "user: <redacted>"), "{diff}");
    assert!(has_line(&diff, '-', "password: <redacted>"), "{diff}");
}

/// A pull request that changes a thousand applications: the comment stays under GitHub's
/// limit, and its counts are complete.
#[test]
fn a_thousand_changed_applications_fit_in_one_comment_with_complete_counts() {
    use envfence::config::Config;
    use envfence::output::markdown::{render_comment, CommentOptions};
    use envfence::rules::Policies;
    use envfence::scan::{diff_scan, Revisions, ScanOptions, Target};
    use envfence::topology::helm::HelmChoice;

    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    git(dir, &["init", "-q"]);
    let clusters = ["prod-eu", "prod-us", "dev-eu"];
    let tree = |image: &str| -> Vec<(String, String)> {
        let mut files = vec![(".envfence.yaml".to_owned(), CONFIG.to_owned())];
        for i in 0..1000 {
            let name = format!("app-{i:04}");
            files.push((
                format!("apps/{name}/deployment.yaml"),
                deployment(&name, &format!("{name}:{image}")),
            ));
            files.push((
                format!("argocd/{name}.yaml"),
                application(&name, &format!("apps/{name}"), clusters[i % 3], &name),
            ));
        }
        files
    };
    let write = |files: &[(String, String)]| {
        let borrowed: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, t)| (p.as_str(), t.as_str()))
            .collect();
        write_tree(dir, &borrowed);
    };
    write(&tree("1.0"));
    let base = commit_all(dir, "a thousand apps");
    write(&tree("1.1"));

    let target = Target::resolve(dir).expect("target");
    let config = Config::discover(&target.display_root, None).expect("config");
    let policies = Policies::builtin().expect("policies");
    let options = ScanOptions {
        jobs: Some(2),
        helm: HelmChoice::Off,
        ..ScanOptions::default()
    };
    let revisions = Revisions { base, head: None };
    let report =
        diff_scan(&target, &config, &policies, &options, &revisions, &|_| {}).expect("scans");
    let changes = report.changes.as_ref().expect("changes");
    assert_eq!(changes.totals().1.modified, 1000);
    let body = render_comment(
        &report,
        &CommentOptions {
            max_len: Some(envfence::github::comment::MAX_BODY),
            ..CommentOptions::default()
        },
    );
    assert!(body.chars().count() < 65_536, "{} characters", body.len());
    // Every cluster's counts, and the total.
    assert!(
        body.contains("| production | prod-eu | +0 −0 ~334 | +0 −0 ~334 |"),
        "{body}"
    );
    assert!(
        body.contains("| production | prod-us | +0 −0 ~333 | +0 −0 ~333 |"),
        "{body}"
    );
    assert!(
        body.contains("| dev-eu | +0 −0 ~333 | +0 −0 ~333 |"),
        "{body}"
    );
    assert!(
        body.contains("| | **total** | **+0 −0 ~1000** | **+0 −0 ~1000** |"),
        "{body}"
    );
    // The details that did not fit are counted.
    assert!(
        body.contains(
            "left out to keep this within its size limit; the counts above are complete."
        ),
        "{body}"
    );
    // Unbounded, the same report is far longer: the limit did the trimming.
    let full = render_comment(&report, &CommentOptions::default());
    assert!(full.len() > 65_536, "{}", full.len());
}

/// A new deployer of objects another deployer places already: each object is placed once, so
/// the other deployer has no placement of its own left; it still delivers, and is not removed.
#[test]
fn a_second_deployer_of_the_same_objects_is_added_and_the_first_stays() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    git(dir, &["init", "-q"]);
    write_tree(
        dir,
        &[
            (".envfence.yaml", CONFIG),
            ("apps/web/deployment.yaml", &deployment("web", "web:1.0")),
            (
                "argocd/web-prod.yaml",
                &application("web-prod", "apps/web", "prod-eu", "web"),
            ),
        ],
    );
    let base = commit_all(dir, "web");
    write_tree(
        dir,
        &[(
            "argocd/feature-web.yaml",
            &application("feature-web", "apps/web", "prod-eu", "web"),
        )],
    );
    let changes = changes(dir, &base, None);
    let prod = cluster(&changes, "prod-eu");
    assert_eq!(
        deliveries(prod),
        [(
            "added".to_owned(),
            "Application".to_owned(),
            "feature-web".to_owned(),
            true
        )],
        "{changes:#}"
    );
}

/// A huge object rewritten line by line: its diff is bounded in time (a coarser diff past
/// 100 ms), so the scan finishes and still lists the object as modified.
#[test]
fn a_huge_rewritten_object_is_diffed_within_its_time() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    git(dir, &["init", "-q"]);
    let config_map = |value: &str| {
        let mut text = String::from(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\n  namespace: big\ndata:\n",
        );
        for i in 0..30_000 {
            text.push_str(&format!("  key-{i}: {value}-{i}\n"));
        }
        text
    };
    write_tree(
        dir,
        &[
            (".envfence.yaml", CONFIG),
            ("clusters/dev-eu/big/configmap.yaml", &config_map("old")),
        ],
    );
    let base = commit_all(dir, "big");
    write_tree(
        dir,
        &[("clusters/dev-eu/big/configmap.yaml", &config_map("new"))],
    );
    let started = std::time::Instant::now();
    let changes = changes(dir, &base, None);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let dev = cluster(&changes, "dev-eu");
    assert_eq!(objects(dev), [o("modified", "ConfigMap", "big")]);
    let diff = dev["objects"][0]["diff"].as_str().expect("a diff");
    assert!(diff.lines().count() <= 61, "{diff}");
}
