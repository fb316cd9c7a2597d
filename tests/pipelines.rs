//! CI pipelines (issue 28): GitHub Actions workflows and GitLab CI jobs that push manifests
//! with `kubectl apply`, `kustomize build | kubectl apply` and `helm upgrade --install`. Each
//! test is a small repository whose pipeline is written the way shops write them; the
//! placements, the findings and the notes are asserted with their lines.

mod common;

use std::path::Path;

use common::{envfence, json_report, write_tree};
use serde_json::Value;

fn json(dir: &Path, args: &[&str]) -> (Option<i32>, Value) {
    let out = envfence()
        .env_remove("GITHUB_REPOSITORY")
        .args(args)
        .args(["-q", "--format", "json"])
        .arg(dir)
        .output()
        .expect("runs");
    (out.status.code(), json_report(&out))
}

fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(dir.path(), files);
    dir
}

fn topology(dir: &Path) -> Value {
    json(dir, &["topology"]).1
}

fn scan(dir: &Path) -> Value {
    json(dir, &["scan", "--fail-on", "never"]).1
}

/// `file:line` of each finding of `rule`, sorted.
fn at(report: &Value, rule: &str) -> Vec<String> {
    let mut out: Vec<String> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"] == rule)
        .map(|f| format!("{}:{}", f["file"].as_str().unwrap_or(""), f["line"]))
        .collect();
    out.sort();
    out
}

/// The clusters the objects of `file` are placed on, sorted.
fn placed_on(t: &Value, file: &str) -> Vec<String> {
    let mut out: Vec<String> = t["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .filter(|p| p["file"] == file)
        .map(|p| p["cluster"].as_str().unwrap_or("").to_owned())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The evidence of the placement of `file` on `cluster`, as `file:line note`.
fn evidence_of(t: &Value, file: &str, cluster: &str) -> Vec<String> {
    let p = t["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .find(|p| p["file"] == file && p["cluster"] == cluster)
        .unwrap_or_else(|| panic!("{file} is not placed on {cluster}: {t:#}"));
    p["evidence"]
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

/// The topology's notes, as `file:line reason`.
fn notes(t: &Value) -> Vec<String> {
    t["unresolved"]
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

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: web:1\n";
const JOB: &str = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: smoke\nspec:\n  template:\n    spec:\n      containers:\n        - name: t\n          image: curl:1\n";

fn overlay_repo(workflow: &str) -> tempfile::TempDir {
    repo(&[
        ("base/kustomization.yaml", "resources:\n  - deploy.yaml\n"),
        ("base/deploy.yaml", DEPLOYMENT),
        (
            "overlays/prod/kustomization.yaml",
            "resources:\n  - ../../base\n",
        ),
        ("tests/job.yaml", JOB),
        (".github/workflows/deploy.yml", workflow),
    ])
}

const RELEASE_WORKFLOW: &str = "name: deploy
on:
  push:
    branches: [main]
jobs:
  release:
    runs-on: ubuntu-latest
    environment: production
    steps:
      - uses: actions/checkout@v4
      - name: apply
        run: |
          echo deploying
          kubectl apply -k overlays/prod
";

#[test]
fn a_workflow_applying_an_overlay_in_the_production_environment_places_it_on_production() {
    let dir = overlay_repo(RELEASE_WORKFLOW);
    let t = topology(dir.path());
    assert_eq!(placed_on(&t, "base/deploy.yaml"), ["production"]);
    assert_eq!(
        evidence_of(&t, "base/deploy.yaml", "production"),
        [
            ".github/workflows/deploy.yml:8 GitHub Actions job release runs in environment production, which names its cluster",
            ".github/workflows/deploy.yml:14 GitHub Actions job release runs \"kubectl apply -k overlays/prod\" on cluster production",
            "overlays/prod/kustomization.yaml:2 resources ../../base",
            "base/kustomization.yaml:2 resources deploy.yaml",
            "base/deploy.yaml:1 Deployment/web",
        ]
    );
    let cluster = &t["clusters"][0];
    assert_eq!(cluster["environment"], "production");
    assert_eq!(cluster["declared_in"][0]["line"], 8);
    // Nothing applies tests/: it is not placed, and the scan is silent.
    assert!(placed_on(&t, "tests/job.yaml").is_empty());
    let report = scan(dir.path());
    assert!(
        at(&report, "nonprod-on-prod-cluster").is_empty(),
        "{report:#}"
    );
}

#[test]
fn a_workflow_applying_a_tests_folder_to_production_is_an_error_at_the_run_line() {
    let workflow =
        format!("{RELEASE_WORKFLOW}      - name: smoke\n        run: kubectl apply -f tests/\n");
    let dir = overlay_repo(&workflow);
    let report = scan(dir.path());
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        [".github/workflows/deploy.yml:16"],
        "{report:#}"
    );
    let finding = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule"] == "nonprod-on-prod-cluster")
        .expect("a finding");
    assert_eq!(finding["severity"], "error");
    assert!(
        finding["message"]
            .as_str()
            .is_some_and(|m| m.contains("Job/smoke") && m.contains("production")),
        "{finding:#}"
    );
}

/// A shop's release manifests go to production through its release workflow; its pull
/// requests are deployed by another workflow to a PR cluster. Every object is placed, and
/// neither is an error.
#[test]
fn release_manifests_go_to_production_and_pull_requests_to_a_pr_cluster() {
    let dir = repo(&[
        ("kubernetes-manifests/web.yaml", DEPLOYMENT),
        (
            "kubernetes-manifests/config.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\n",
        ),
        (
            "release/web.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-release\n",
        ),
        (
            ".github/workflows/release.yml",
            "on:\n  release:\n    types: [published]\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    steps:\n      - run: kubectl apply -f ./release --context=production\n",
        ),
        (
            ".github/workflows/pr.yml",
            "on: pull_request\nenv:\n  CLUSTER: pr-cluster\njobs:\n  deploy-pr:\n    runs-on: ubuntu-latest\n    steps:\n      - run: |\n          kubectl config get-contexts\n          kubectl apply -f kubernetes-manifests \\\n            --context \"$CLUSTER\"\n",
        ),
    ]);
    let t = topology(dir.path());
    assert_eq!(placed_on(&t, "release/web.yaml"), ["production"]);
    assert_eq!(
        placed_on(&t, "kubernetes-manifests/web.yaml"),
        ["pr-cluster"]
    );
    assert_eq!(
        placed_on(&t, "kubernetes-manifests/config.yaml"),
        ["pr-cluster"]
    );
    assert_eq!(
        evidence_of(&t, "kubernetes-manifests/web.yaml", "pr-cluster")[0],
        ".github/workflows/pr.yml:10 GitHub Actions job deploy-pr runs \"kubectl apply -f kubernetes-manifests --context pr-cluster\" on cluster pr-cluster (its context)"
    );
    assert_eq!(t["summary"]["placed"], 3, "{:#}", t["summary"]);
    let report = scan(dir.path());
    assert!(
        at(&report, "nonprod-on-prod-cluster").is_empty(),
        "{report:#}"
    );
}

#[test]
fn a_matrix_applies_each_environment_to_its_own_cluster() {
    let dir = repo(&[
        ("overlays/staging/kustomization.yaml", "resources:\n  - ../../base\n"),
        ("overlays/production/kustomization.yaml", "resources:\n  - ../../base\n"),
        ("base/kustomization.yaml", "resources:\n  - deploy.yaml\n"),
        ("base/deploy.yaml", DEPLOYMENT),
        (
            ".github/workflows/deploy.yml",
            "jobs:\n  deploy:\n    strategy:\n      matrix:\n        env: [staging, production]\n    environment: ${{ matrix.env }}\n    steps:\n      - run: kustomize build overlays/${{ matrix.env }} | kubectl apply -f -\n",
        ),
    ]);
    let t = topology(dir.path());
    assert_eq!(placed_on(&t, "base/deploy.yaml"), ["production", "staging"]);
    assert_eq!(
        evidence_of(&t, "base/deploy.yaml", "staging")[..2],
        [
            ".github/workflows/deploy.yml:6 GitHub Actions job deploy runs in environment staging, which names its cluster",
            ".github/workflows/deploy.yml:8 GitHub Actions job deploy runs \"kustomize build overlays/staging | kubectl apply -f -\" on cluster staging (matrix env=staging)",
        ]
    );
}

#[test]
fn gitlab_ci_jobs_follow_extends_variables_and_environments() {
    let dir = repo(&[
        ("deploy/prod/kustomization.yaml", "resources:\n  - ../../base\n"),
        ("base/kustomization.yaml", "resources:\n  - deploy.yaml\n"),
        ("base/deploy.yaml", DEPLOYMENT),
        ("e2e/job.yaml", JOB),
        (
            ".gitlab-ci.yml",
            "stages: [deploy]\nvariables:\n  OVERLAY: deploy/prod\n.deploy:\n  stage: deploy\n  environment:\n    name: production\ndeploy-prod:\n  extends: .deploy\n  script:\n    - kubectl apply -k $OVERLAY\n    - kubectl apply -f e2e/job.yaml\n",
        ),
    ]);
    let t = topology(dir.path());
    assert_eq!(placed_on(&t, "base/deploy.yaml"), ["production"]);
    assert_eq!(
        evidence_of(&t, "base/deploy.yaml", "production")[..2],
        [
            ".gitlab-ci.yml:7 GitLab CI job deploy-prod runs in environment production, which names its cluster",
            ".gitlab-ci.yml:11 GitLab CI job deploy-prod runs \"kubectl apply -k deploy/prod\" on cluster production",
        ]
    );
    let report = scan(dir.path());
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        [".gitlab-ci.yml:12"],
        "{report:#}"
    );
}

#[test]
fn a_kubeconfig_secret_named_for_an_environment_names_the_cluster() {
    let dir = repo(&[
        ("manifests/web.yaml", DEPLOYMENT),
        (
            ".github/workflows/deploy.yml",
            "jobs:\n  deploy:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: azure/k8s-set-context@v4\n        with:\n          kubeconfig: ${{ secrets.KUBECONFIG_STAGING }}\n      - run: kubectl apply -f manifests/\n",
        ),
    ]);
    let t = topology(dir.path());
    assert_eq!(placed_on(&t, "manifests/web.yaml"), ["staging"]);
    assert_eq!(
        evidence_of(&t, "manifests/web.yaml", "staging")[0],
        ".github/workflows/deploy.yml:7 GitHub Actions job deploy reads kubeconfig secret KUBECONFIG_STAGING → cluster staging"
    );
}

#[test]
fn a_remote_chart_is_an_opaque_placement_named_by_its_release() {
    let dir = repo(&[(
        ".github/workflows/deploy.yml",
        "jobs:\n  deploy:\n    environment: production\n    steps:\n      - run: |\n          helm repo add jenkins https://charts.jenkins.io\n          helm upgrade --install jenkins-staging jenkins/jenkins -n ci --kube-context prod-eu\n",
    )]);
    let t = topology(dir.path());
    let p = t["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .find(|p| p["name"] == "jenkins-staging")
        .unwrap_or_else(|| panic!("an opaque release: {t:#}"));
    assert_eq!(p["cluster"], "prod-eu");
    assert_eq!(p["file"], ".github/workflows/deploy.yml");
    assert_eq!(p["line"], 7);
    assert_eq!(p["opaque"], true);
    assert_eq!(p["workload_class"], "non-production", "{p:#}");
    let report = scan(dir.path());
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        [".github/workflows/deploy.yml:7"],
        "{report:#}"
    );
}

#[test]
fn a_local_chart_is_rendered_with_its_values_files() {
    let Some(helm) = common::helm_for_tests() else {
        return;
    };
    let dir = repo(&[
        ("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n"),
        ("charts/web/values.yaml", "name: web\n"),
        ("charts/web/values-dev.yaml", "name: web-dev\n"),
        (
            "charts/web/templates/deploy.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Values.name }}\n",
        ),
        (
            ".github/workflows/deploy.yml",
            "jobs:\n  deploy:\n    environment: production\n    steps:\n      - run: |\n          cd charts\n          helm upgrade --install web ./web -f web/values-dev.yaml --namespace shop\n",
        ),
    ]);
    let out = envfence()
        .env("ENVFENCE_HELM", helm)
        .env_remove("GITHUB_REPOSITORY")
        .args(["topology", "-q", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let t = json_report(&out);
    let p = t["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .find(|p| p["name"] == "web-dev")
        .unwrap_or_else(|| panic!("the chart is rendered with values-dev.yaml: {t:#}"));
    assert_eq!(p["cluster"], "production");
    assert_eq!(p["namespace"], "shop");
}

#[test]
fn what_is_not_followed_is_a_note_at_its_line() {
    let dir = repo(&[
        ("manifests/web.yaml", DEPLOYMENT),
        (
            ".github/workflows/deploy.yml",
            "jobs:\n  deploy:\n    environment: ${{ inputs.target }}\n    steps:\n      - run: |\n          kubectl apply -f manifests/\n          kubectl apply -f $(ls -d manifests*) --context prod\n          curl -sL https://example.com/x.yaml | kubectl apply -f - --context prod\n          kubectl apply -f https://example.com/crds.yaml --context prod\n          helmfile --environment production apply\n          skaffold run -p production --kube-context prod\n          kubectl get pods\n",
        ),
    ]);
    let t = topology(dir.path());
    let notes = notes(&t);
    let expected = [
        ".github/workflows/deploy.yml:6 GitHub Actions job deploy: \"kubectl apply -f manifests/\" is not followed: the cluster is not known: its environment ${{ inputs.target }} is not known statically",
        ".github/workflows/deploy.yml:7 GitHub Actions job deploy: \"kubectl apply -f $(ls -d manifests*) --context prod\" is not followed: its path $(ls -d manifests*) is not known statically",
        ".github/workflows/deploy.yml:8 GitHub Actions job deploy: \"curl -sL https://example.com/x.yaml | kubectl apply -f - --context prod\" is not followed: it applies what the command before it writes, which envfence does not run",
        ".github/workflows/deploy.yml:9 GitHub Actions job deploy: \"kubectl apply -f https://example.com/crds.yaml --context prod\" is not followed: it applies manifests from https://example.com/crds.yaml, which envfence does not read",
        ".github/workflows/deploy.yml:10 GitHub Actions job deploy runs helmfile apply for environment production in the repository root on the cluster its own configuration selects: the helmfile's releases are not placed by the pipeline",
        ".github/workflows/deploy.yml:11 GitHub Actions job deploy runs skaffold run with profile production of skaffold.yaml on cluster prod: Skaffold's manifests are not placed by the pipeline",
    ];
    for e in expected {
        assert!(notes.iter().any(|n| n == e), "missing {e}\nin {notes:#?}");
    }
    // `kubectl get` delivers nothing, and says nothing.
    assert!(!notes.iter().any(|n| n.contains(":12 ")), "{notes:#?}");
    assert!(placed_on(&t, "manifests/web.yaml").is_empty());
}

#[test]
fn a_helmfile_run_is_noted_with_its_environment_and_folder() {
    let dir = repo(&[
        ("helmfile/helmfile.yaml", "releases:\n  - name: web\n    chart: ./web\n"),
        (
            ".github/workflows/apply.yml",
            "jobs:\n  apply:\n    environment: production\n    steps:\n      - run: |\n          pushd helmfile\n          helmfile --environment production -l 'tier=crd' apply\n          popd\n",
        ),
    ]);
    let t = topology(dir.path());
    assert!(
        notes(&t).iter().any(|n| n == ".github/workflows/apply.yml:7 GitHub Actions job apply runs helmfile apply for environment production (releases tier=crd) in helmfile/ on cluster production: the helmfile's releases are not placed by the pipeline"),
        "{:#?}",
        notes(&t)
    );
}

/// Budgets: a job's matrix is read up to 256 combinations (GitHub's own maximum); a larger
/// one is cut, the scan exits 3 and says which job.
#[test]
fn a_matrix_larger_than_its_budget_is_cut_and_the_scan_is_incomplete() {
    let values: Vec<String> = (0..17).map(|i| format!("v{i}")).collect();
    let list = values.join(", ");
    let workflow = format!(
        "jobs:\n  deploy:\n    strategy:\n      matrix:\n        a: [{list}]\n        b: [{list}]\n    environment: staging\n    steps:\n      - run: kubectl apply -f manifests/\n"
    );
    let dir = repo(&[
        ("manifests/web.yaml", DEPLOYMENT),
        (".github/workflows/deploy.yml", &workflow),
    ]);
    let (code, report) = json(dir.path(), &["scan"]);
    assert_eq!(code, Some(3), "{report:#}");
    assert_eq!(
        report["incomplete"],
        serde_json::json!([{
            "budget": "pipeline matrix combinations",
            "file": ".github/workflows/deploy.yml",
            "line": 2,
            "detail": "job deploy has more than 256 matrix combinations: the first 256 are read, 33 more are not"
        }])
    );
    // What was read is still placed.
    assert_eq!(
        placed_on(&topology(dir.path()), "manifests/web.yaml"),
        ["staging"]
    );
}

/// Budgets: a pipeline file is read up to 50,000 shell lines, each matrix combination
/// counted; past it the remaining jobs are not read, and the scan exits 3.
#[test]
fn a_pipeline_past_its_line_budget_is_cut_and_the_scan_is_incomplete() {
    let values: Vec<String> = (0..16).map(|i| format!("v{i}")).collect();
    let list = values.join(", ");
    let echoes = "          echo step\n".repeat(200);
    let workflow = format!(
        "jobs:\n  build:\n    strategy:\n      matrix:\n        a: [{list}]\n        b: [{list}]\n    steps:\n      - run: |\n{echoes}  deploy:\n    environment: staging\n    steps:\n      - run: kubectl apply -f manifests/\n"
    );
    let dir = repo(&[
        ("manifests/web.yaml", DEPLOYMENT),
        (".github/workflows/deploy.yml", &workflow),
    ]);
    let (code, report) = json(dir.path(), &["scan"]);
    assert_eq!(code, Some(3), "{report:#}");
    assert_eq!(report["incomplete"][0]["budget"], "pipeline shell lines");
    assert_eq!(report["incomplete"][0]["line"], 2);
    // The job after the cut is not read: nothing is placed.
    assert!(placed_on(&topology(dir.path()), "manifests/web.yaml").is_empty());
}
