//! Argo CD AppProjects (issue 30, item 3): `project-denies-destination` for a destination, a
//! `!` denial, a source repository and a cluster-scoped kind a project does not permit; the
//! AppProject hop in the evidence of a permitted Application; an ApplicationSet's generated
//! Applications judged with their templated project; a production-only project as a
//! production signal; a pull request that makes a project deny an Application.

mod common;

use std::path::Path;

use common::{envfence, git, json_report, run_on_files, write_tree};
use serde_json::Value;

const RULE: &str = "project-denies-destination";

const CONFIG: &str = "\
clusters:
  - name: prod-us
    server: https://prod-us.example.com
    environment: production
  - name: prod-eu
    server: https://prod-eu.example.com
    environment: production
  - name: staging-us
    server: https://staging-us.example.com
    environment: non-production
";

const WEB: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          image: web:1.0
";

/// An AppProject `team-a` with these `destinations` entries (each a flow mapping) and
/// `sourceRepos`; its destinations key is on line 7, its first entry on line 8.
fn project(destinations: &[&str], repos: &[&str], extra: &str) -> String {
    let mut text = String::from(
        "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata:\n  name: team-a\n  namespace: argocd\nspec:\n  destinations:\n",
    );
    for d in destinations {
        text.push_str(&format!("    - {d}\n"));
    }
    text.push_str("  sourceRepos:\n");
    for r in repos {
        text.push_str(&format!("    - '{r}'\n"));
    }
    text.push_str(extra);
    text
}

/// An Application of project `team-a`: its destination name is on line 12, its repoURL on 9.
fn application(name: &str, cluster: &str, namespace: &str, repo: &str) -> String {
    application_of("apps/web", name, cluster, namespace, repo)
}

/// [`application`] of the folder `path`.
fn application_of(path: &str, name: &str, cluster: &str, namespace: &str, repo: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\n  namespace: argocd\n\
         spec:\n  project: team-a\n  source:\n    repoURL: {repo}\n    path: {path}\n  destination:\n    name: {cluster}\n    namespace: {namespace}\n"
    )
}

const REPO: &str = "https://github.com/acme/gitops.git";

fn findings<'a>(report: &'a Value, rule: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"] == rule)
        .collect()
}

fn notes(value: &Value) -> Vec<String> {
    value["evidence"]
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

fn scan(files: &[(&str, &str)]) -> Value {
    run_on_files("scan", files).1
}

#[test]
fn a_destination_the_project_does_not_list_is_an_error_at_the_destination_line() {
    let project = project(&["{name: 'staging-*', namespace: 'web-*'}"], &["*"], "");
    let app = application("web-prod", "prod-us", "web-a", REPO);
    let (code, report) = run_on_files(
        "scan",
        &[
            (".envfence.yaml", CONFIG),
            ("apps/web/deployment.yaml", WEB),
            ("argocd/project.yaml", &project),
            ("argocd/web-prod.yaml", &app),
        ],
    );
    assert_eq!(code, Some(1), "an error fails the scan");
    let found = findings(&report, RULE);
    assert_eq!(found.len(), 1, "{report:#}");
    let f = found[0];
    assert_eq!(f["severity"], "error");
    assert_eq!(f["file"], "argocd/web-prod.yaml");
    assert_eq!(f["line"], 12);
    assert_eq!(f["cluster"], "prod-us");
    let message = f["message"].as_str().unwrap_or("");
    assert!(
        message.contains("AppProject team-a") && message.contains("prod-us / web-a"),
        "{message}"
    );
    let last = notes(f).pop().unwrap_or_default();
    assert_eq!(
        last,
        "argocd/project.yaml:7 AppProject team-a has no destinations entry that permits prod-us / web-a"
    );
}

#[test]
fn a_denial_wins_over_a_glob_that_permits() {
    let project = project(
        &[
            "{server: '*', namespace: '*'}",
            "{name: '!prod-*', namespace: '*'}",
        ],
        &["*"],
        "",
    );
    let files = |cluster: &str| {
        vec![
            (".envfence.yaml".to_owned(), CONFIG.to_owned()),
            ("apps/web/deployment.yaml".to_owned(), WEB.to_owned()),
            ("argocd/project.yaml".to_owned(), project.clone()),
            (
                "argocd/web.yaml".to_owned(),
                application("web", cluster, "web", REPO),
            ),
        ]
    };
    let as_refs = |v: &[(String, String)]| -> Vec<(String, String)> { v.to_vec() };
    let denied = as_refs(&files("prod-eu"));
    let denied: Vec<(&str, &str)> = denied
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let report = scan(&denied);
    let found = findings(&report, RULE);
    assert_eq!(found.len(), 1, "{report:#}");
    assert_eq!(found[0]["line"], 12);
    let last = notes(found[0]).pop().unwrap_or_default();
    assert_eq!(
        last,
        "argocd/project.yaml:9 AppProject team-a denies destination prod-eu / web (!prod-*)"
    );
    // The same project lets the staging cluster through.
    let permitted = as_refs(&files("staging-us"));
    let permitted: Vec<(&str, &str)> = permitted
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert!(findings(&scan(&permitted), RULE).is_empty());
}

#[test]
fn a_source_repository_the_project_does_not_list_is_an_error_at_the_repo_url_line() {
    // Found by (file, line, last evidence hop).
    let denials = |report: &Value| -> Vec<(String, u64, String)> {
        findings(report, RULE)
            .iter()
            .map(|f| {
                (
                    f["file"].as_str().unwrap_or("").to_owned(),
                    f["line"].as_u64().unwrap_or(0),
                    notes(f).pop().unwrap_or_default(),
                )
            })
            .collect()
    };
    let listed = project(
        &["{server: '*', namespace: '*'}"],
        &["https://github.com/acme/*"],
        "",
    );
    let report = scan(&[
        (".envfence.yaml", CONFIG),
        ("apps/web/deployment.yaml", WEB),
        ("argocd/project.yaml", &listed),
        (
            "argocd/web.yaml",
            &application(
                "web",
                "staging-us",
                "web",
                "https://github.com/other/gitops.git",
            ),
        ),
    ]);
    assert_eq!(
        denials(&report),
        vec![(
            "argocd/web.yaml".to_owned(),
            9,
            "argocd/project.yaml:9 AppProject team-a has no sourceRepos entry that permits https://github.com/other/gitops.git".to_owned()
        )],
        "{report:#}"
    );
    // A `!` entry denies its repository (case and `.git` aside) even where a glob permits it.
    let denying = project(
        &["{server: '*', namespace: '*'}"],
        &[
            "https://github.com/acme/*",
            "!https://github.com/acme/forbidden",
        ],
        "",
    );
    let report = scan(&[
        (".envfence.yaml", CONFIG),
        // One folder each: an object two Applications place on one cluster is placed once.
        ("apps/forbidden/deployment.yaml", WEB),
        ("apps/ok/deployment.yaml", WEB),
        ("argocd/project.yaml", &denying),
        (
            "argocd/forbidden.yaml",
            &application_of(
                "apps/forbidden",
                "forbidden",
                "staging-us",
                "web",
                "https://github.com/acme/Forbidden.git",
            ),
        ),
        (
            "argocd/ok.yaml",
            &application_of("apps/ok", "ok", "staging-us", "web", REPO),
        ),
    ]);
    assert_eq!(
        denials(&report),
        vec![(
            "argocd/forbidden.yaml".to_owned(),
            9,
            "argocd/project.yaml:11 AppProject team-a denies source https://github.com/acme/Forbidden.git (!https://github.com/acme/forbidden)".to_owned()
        )],
        "{report:#}"
    );
}

#[test]
fn a_cluster_scoped_kind_the_project_does_not_whitelist_is_denied() {
    let whitelist = "  clusterResourceWhitelist:\n    - group: ''\n      kind: Namespace\n";
    let project = project(&["{server: '*', namespace: '*'}"], &["*"], whitelist);
    let role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: web-reader\n";
    let namespace = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n";
    let report = scan(&[
        (".envfence.yaml", CONFIG),
        ("apps/web/deployment.yaml", WEB),
        ("apps/web/role.yaml", role),
        ("apps/web/namespace.yaml", namespace),
        ("argocd/project.yaml", &project),
        (
            "argocd/web.yaml",
            &application("web", "staging-us", "web", REPO),
        ),
    ]);
    let found = findings(&report, RULE);
    assert_eq!(
        found.len(),
        1,
        "the Namespace is whitelisted, the ClusterRole is not: {report:#}"
    );
    let f = found[0];
    assert_eq!(
        (f["file"].as_str(), f["line"].as_u64()),
        (Some("argocd/web.yaml"), Some(12))
    );
    let message = f["message"].as_str().unwrap_or("");
    assert!(message.contains("ClusterRole/web-reader"), "{message}");
    assert_eq!(
        notes(f).pop().unwrap_or_default(),
        "argocd/project.yaml:11 AppProject team-a does not permit cluster-scoped ClusterRole (group rbac.authorization.k8s.io): no clusterResourceWhitelist entry matches it"
    );
}

#[test]
fn a_permitted_application_is_silent_and_its_evidence_names_the_project_entry() {
    let project = project(
        &["{name: 'staging-*', namespace: 'web-*'}"],
        &["https://github.com/acme/*"],
        "",
    );
    let files = [
        (".envfence.yaml", CONFIG),
        ("apps/web/deployment.yaml", WEB),
        ("argocd/project.yaml", project.as_str()),
        (
            "argocd/web.yaml",
            &application("web", "staging-us", "web-a", REPO),
        ),
    ];
    let report = scan(&files);
    assert!(findings(&report, RULE).is_empty(), "{report:#}");
    let (_, topology) = run_on_files("topology", &files);
    let placement = topology["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .find(|p| p["object"]["kind"] == "Deployment" || p["kind"] == "Deployment")
        .expect("the Deployment is placed");
    let hops = notes(placement);
    assert!(
        hops.contains(
            &"argocd/project.yaml:8 AppProject team-a permits destination staging-* / web-*"
                .to_owned()
        ),
        "{hops:#?}"
    );
    // Right after the destination it permits.
    let at = hops
        .iter()
        .position(|h| h.contains("AppProject"))
        .unwrap_or(0);
    assert!(
        hops[at - 1].contains("destination.name=staging-us"),
        "{hops:#?}"
    );
}

#[test]
fn an_application_set_generates_applications_judged_by_their_templated_project() {
    let project = project(&["{name: 'staging-*', namespace: '*'}"], &["*"], "");
    let appset = "\
apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: web
  namespace: argocd
spec:
  generators:
    - list:
        elements:
          - cluster: staging-us
            team: team-a
          - cluster: prod-us
            team: team-a
  template:
    metadata:
      name: 'web-{{cluster}}'
    spec:
      project: '{{team}}'
      source:
        repoURL: https://github.com/acme/gitops.git
        path: apps/web
      destination:
        name: '{{cluster}}'
        namespace: web
";
    let report = scan(&[
        (".envfence.yaml", CONFIG),
        ("apps/web/deployment.yaml", WEB),
        ("argocd/project.yaml", &project),
        ("argocd/appset.yaml", appset),
    ]);
    let found = findings(&report, RULE);
    assert_eq!(found.len(), 1, "{report:#}");
    let f = found[0];
    assert_eq!(
        (f["file"].as_str(), f["line"].as_u64()),
        (Some("argocd/appset.yaml"), Some(23))
    );
    assert_eq!(f["cluster"], "prod-us");
    assert!(
        f["message"]
            .as_str()
            .unwrap_or("")
            .contains("Application web-prod-us"),
        "{f:#}"
    );
}

#[test]
fn a_project_that_permits_only_production_makes_its_applications_production() {
    let config = "\
clusters:
  - name: eu-1
    server: https://eu-1.example.com
    environment: production
  - name: eu-2
    server: https://eu-2.example.com
    environment: production
  - name: lab
    server: https://lab.example.com
    environment: non-production
";
    // eu-3 is not declared: its environment is not known.
    let app = |project: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web\n  namespace: argocd\n\
             spec:\n  project: {project}\n  source:\n    repoURL: {REPO}\n    path: apps/web\n  destination:\n    server: https://eu-3.example.com\n    namespace: web\n"
        )
    };
    let projects = "\
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: payments
  namespace: argocd
spec:
  sourceRepos: ['*']
  destinations:
    - {server: 'https://eu-*.example.com', namespace: '*'}
---
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: everywhere
  namespace: argocd
spec:
  sourceRepos: ['*']
  destinations:
    - {server: '*', namespace: '*'}
";
    let class_of = |project: &str| -> (String, String) {
        let (_, topology) = run_on_files(
            "topology",
            &[
                (".envfence.yaml", config),
                ("apps/web/deployment.yaml", WEB),
                ("argocd/projects.yaml", projects),
                ("argocd/web.yaml", &app(project)),
            ],
        );
        let p = topology["placements"]
            .as_array()
            .expect("placements")
            .iter()
            .find(|p| p["object"]["kind"] == "Deployment" || p["kind"] == "Deployment")
            .cloned()
            .expect("the Deployment is placed");
        (
            p["workload_class"].as_str().unwrap_or("").to_owned(),
            p["workload_class_reason"].as_str().unwrap_or("").to_owned(),
        )
    };
    let (class, reason) = class_of("payments");
    assert_eq!(class, "production", "{reason}");
    assert!(
        reason.contains("AppProject payments permits only production clusters (eu-1, eu-2)"),
        "{reason}"
    );
    // A project that also reaches the non-production lab says nothing of its Applications.
    assert_ne!(class_of("everywhere").0, "production");
}

/// Commits everything in the work tree; returns the new commit id.
fn commit_all(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

#[test]
fn a_pull_request_that_moves_an_application_out_of_its_project_is_new() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    git(dir, &["init", "-q"]);
    let project = project(&["{name: 'staging-*', namespace: '*'}"], &["*"], "");
    write_tree(
        dir,
        &[
            (".envfence.yaml", CONFIG),
            ("apps/web/deployment.yaml", WEB),
            ("argocd/project.yaml", &project),
            (
                "argocd/web.yaml",
                &application("web", "staging-us", "web", REPO),
            ),
        ],
    );
    let base = commit_all(dir, "base");
    write_tree(
        dir,
        &[(
            "argocd/web.yaml",
            &application("web", "prod-eu", "web", REPO),
        )],
    );
    commit_all(dir, "move web to prod-eu");
    let out = envfence()
        .current_dir(dir)
        .args(["scan", "--quiet", "--format", "json", "--base", &base, "."])
        .output()
        .expect("runs");
    let report = json_report(&out);
    assert_eq!(out.status.code(), Some(1));
    let found = findings(&report, RULE);
    assert_eq!(found.len(), 1, "{report:#}");
    assert_eq!(found[0]["status"], "new");
    assert_eq!(
        (found[0]["file"].as_str(), found[0]["line"].as_u64()),
        (Some("argocd/web.yaml"), Some(12))
    );
}

#[test]
fn an_application_outside_argo_cds_namespace_needs_the_project_to_list_it() {
    let project = project(
        &["{server: '*', namespace: '*'}"],
        &["*"],
        "  sourceNamespaces:\n    - 'team-*'\n",
    );
    let in_namespace = |ns: &str| {
        application("web", "staging-us", "web", REPO)
            .replace("namespace: argocd", &format!("namespace: {ns}"))
    };
    let run = |ns: &str| {
        scan(&[
            (".envfence.yaml", CONFIG),
            ("apps/web/deployment.yaml", WEB),
            ("argocd/project.yaml", &project),
            ("argocd/web.yaml", &in_namespace(ns)),
        ])
    };
    assert!(
        findings(&run("team-a"), RULE).is_empty(),
        "team-a is listed"
    );
    let report = run("sandbox");
    let found = findings(&report, RULE);
    assert_eq!(found.len(), 1, "{report:#}");
    assert_eq!(found[0]["line"], 12);
    assert_eq!(
        notes(found[0]).pop().unwrap_or_default(),
        "argocd/project.yaml:11 AppProject team-a does not list namespace sandbox in sourceNamespaces (Argo CD runs in argocd)"
    );
}
