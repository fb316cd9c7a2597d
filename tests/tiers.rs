//! Cluster tiers, workload purposes and `workload-outside-its-tier` (DESIGN §3, §4), on small
//! repositories scanned by the real binary.

mod common;

use common::{envfence, json_report, write_tree};
use serde_json::Value;

/// An Argo CD Application named `name` that sends `path` to cluster `cluster`; the
/// destination's `name:` is line 12.
fn app(name: &str, path: &str, cluster: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://github.com/acme/gitops.git
    path: {path}
  destination:
    name: {cluster}
    namespace: {name}
"
    )
}

const DESTINATION_LINE: u64 = 12;

/// A config naming the clusters (their tiers come from their names) and, optionally, more.
fn config(clusters: &[&str], more: &str) -> String {
    let mut out =
        String::from("repository:\n  urls: [https://github.com/acme/gitops.git]\nclusters:\n");
    for c in clusters {
        out.push_str(&format!("  - name: {c}\n"));
    }
    out.push_str(more);
    out
}

const K6_TESTRUN: &str = "apiVersion: k6.io/v1alpha1
kind: TestRun
metadata:
  name: checkout
spec:
  parallelism: 2
  script:
    configMap: {name: checkout-script, file: checkout.js}
";

const ZAP_JOB: &str = "apiVersion: batch/v1
kind: Job
metadata:
  name: baseline
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: scan
          image: ghcr.io/zaproxy/zaproxy:stable
";

const RUNNERS: &str = "apiVersion: actions.summerwind.dev/v1alpha1
kind: RunnerDeployment
metadata:
  name: runners
spec:
  replicas: 2
  template:
    spec:
      repository: acme/app
";

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout
spec:
  template:
    spec:
      containers:
        - name: app
          image: ghcr.io/acme/checkout:1.0
";

fn scan(files: &[(&str, &str)]) -> (Option<i32>, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(dir.path(), files);
    let out = envfence()
        .args(["scan", "-q", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    (out.status.code(), json_report(&out))
}

fn findings_of<'a>(report: &'a Value, rule: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"] == rule)
        .collect()
}

fn topology(files: &[(&str, &str)]) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(dir.path(), files);
    let out = envfence()
        .args(["topology", "-q", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    json_report(&out)
}

#[test]
fn a_load_test_on_staging_is_flagged_when_a_testing_cluster_exists() {
    let cfg = config(&["prod-eu", "staging-eu", "load-eu"], "");
    let load_app = app("checkout-soak", "tests/load", "staging-eu");
    let (code, report) = scan(&[
        (".envfence.yaml", &cfg),
        ("argocd/checkout-soak.yaml", &load_app),
        ("tests/load/testrun.yaml", K6_TESTRUN),
    ]);
    assert_eq!(code, Some(0), "a warning does not fail the scan");
    let found = findings_of(&report, "workload-outside-its-tier");
    assert_eq!(found.len(), 1, "{report:#}");
    let f = found[0];
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["file"], "argocd/checkout-soak.yaml");
    assert_eq!(f["line"], DESTINATION_LINE);
    assert_eq!(f["cluster"], "staging-eu");
    assert_eq!(f["tier"], "staging");
    assert_eq!(f["purpose"], "load-test");
    let message = f["message"].as_str().expect("message");
    assert!(
        message.contains("load-test workload TestRun/checkout"),
        "{message}"
    );
    assert!(message.contains("such as load-eu"), "{message}");
}

#[test]
fn a_load_test_on_staging_is_fine_without_a_testing_cluster() {
    let cfg = config(&["prod-eu", "staging-eu", "dev-eu"], "");
    let load_app = app("checkout-soak", "tests/load", "staging-eu");
    let (code, report) = scan(&[
        (".envfence.yaml", &cfg),
        ("argocd/checkout-soak.yaml", &load_app),
        ("tests/load/testrun.yaml", K6_TESTRUN),
    ]);
    assert_eq!(code, Some(0));
    assert!(
        findings_of(&report, "workload-outside-its-tier").is_empty(),
        "{report:#}"
    );
    // Not for want of knowing: the test is a load test, on a staging cluster.
    let t = topology(&[
        (".envfence.yaml", &cfg),
        ("argocd/checkout-soak.yaml", &load_app),
        ("tests/load/testrun.yaml", K6_TESTRUN),
    ]);
    let run = placement(&t, "TestRun");
    assert_eq!(run["purpose"], "load-test", "{t:#}");
    assert_eq!(cluster_of(&t, "staging-eu")["tier"], "staging");
}

fn placement(t: &Value, kind: &str) -> Value {
    t["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .find(|p| p["kind"] == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} placed: {t:#}"))
}

fn cluster_of(t: &Value, name: &str) -> Value {
    t["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no cluster {name}: {t:#}"))
}

#[test]
fn a_security_scanner_on_the_testing_cluster_is_clean() {
    let cfg = config(&["prod-eu", "staging-eu", "security-eu"], "");
    let scan_app = app("checkout-baseline", "tests/security", "security-eu");
    let (code, report) = scan(&[
        (".envfence.yaml", &cfg),
        ("argocd/checkout-baseline.yaml", &scan_app),
        ("tests/security/zap.yaml", ZAP_JOB),
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(report["findings"], serde_json::json!([]), "{report:#}");
    let t = topology(&[
        (".envfence.yaml", &cfg),
        ("argocd/checkout-baseline.yaml", &scan_app),
        ("tests/security/zap.yaml", ZAP_JOB),
    ]);
    let job = t["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .find(|p| p["kind"] == "Job")
        .expect("the Job is placed");
    assert_eq!(job["purpose"], "security-test");
    let cluster = t["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|c| c["name"] == "security-eu")
        .expect("cluster");
    assert_eq!(cluster["tier"], "testing");
    assert_eq!(cluster["environment"], "non-production");
}

#[test]
fn a_runner_deployment_on_production_is_an_error_that_says_why() {
    let cfg = config(&["prod-eu", "tools-eu"], "");
    let runners_app = app("platform", "ci/runners", "prod-eu");
    let (code, report) = scan(&[
        (".envfence.yaml", &cfg),
        ("argocd/platform.yaml", &runners_app),
        ("ci/runners/runners.yaml", RUNNERS),
    ]);
    assert_eq!(code, Some(1), "{report:#}");
    let found = findings_of(&report, "nonprod-on-prod-cluster");
    assert_eq!(found.len(), 1, "{report:#}");
    let message = found[0]["message"].as_str().expect("message");
    assert!(message.contains("RunnerDeployment/runners"), "{message}");
    assert!(
        message.contains("CI runners execute code from pull requests"),
        "{message}"
    );
    assert_eq!(found[0]["purpose"], "ci");
    assert_eq!(found[0]["tier"], "production");
}

#[test]
fn a_neutral_k6_test_run_on_production_is_an_error() {
    let cfg = config(&["prod-eu"], "");
    let payments = app("payments", "apps/payments", "prod-eu");
    let (code, report) = scan(&[
        (".envfence.yaml", &cfg),
        ("argocd/payments.yaml", &payments),
        ("apps/payments/deployment.yaml", DEPLOYMENT),
        ("apps/payments/testrun.yaml", K6_TESTRUN),
    ]);
    assert_eq!(code, Some(1), "{report:#}");
    let found = findings_of(&report, "nonprod-on-prod-cluster");
    assert_eq!(found.len(), 1, "{report:#}");
    let message = found[0]["message"].as_str().expect("message");
    assert!(message.contains("TestRun/checkout"), "{message}");
    assert!(
        message.contains("k6.io/TestRun is a load-test tool"),
        "{message}"
    );
    assert!(!message.contains("Deployment/checkout"), "{message}");
}

#[test]
fn a_posture_scanner_on_production_is_not_a_test() {
    let cfg = config(&["prod-eu"], "");
    let bench = "apiVersion: batch/v1
kind: CronJob
metadata:
  name: kube-bench
spec:
  schedule: '0 3 * * *'
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: bench
              image: docker.io/aquasec/kube-bench:v0.7.0
";
    // An image tag is not a tool: `:k6` is an app's tag.
    let tagged = DEPLOYMENT.replace("checkout:1.0", "checkout:k6");
    let platform = app("platform", "platform", "prod-eu");
    let (code, report) = scan(&[
        (".envfence.yaml", &cfg),
        ("argocd/platform.yaml", &platform),
        ("platform/kube-bench.yaml", bench),
        ("platform/app.yaml", &tagged),
    ]);
    assert_eq!(code, Some(0), "{report:#}");
    assert!(
        findings_of(&report, "nonprod-on-prod-cluster").is_empty(),
        "{report:#}"
    );
    let t = topology(&[
        (".envfence.yaml", &cfg),
        ("argocd/platform.yaml", &platform),
        ("platform/kube-bench.yaml", bench),
        ("platform/app.yaml", &tagged),
    ]);
    let bench = placement(&t, "CronJob");
    assert_eq!(bench["purpose"], "unknown", "{t:#}");
    assert!(
        bench["purpose_reason"]
            .as_str()
            .is_some_and(|r| r.contains("posture scanner")),
        "{t:#}"
    );
}

#[test]
fn a_feature_preview_on_the_testing_cluster_is_flagged() {
    let cfg = config(&["prod-eu", "dev-eu", "perf-eu"], "");
    let preview = app("checkout-preview-pr-42", "apps/checkout", "perf-eu");
    let (code, report) = scan(&[
        (".envfence.yaml", &cfg),
        ("argocd/preview.yaml", &preview),
        ("apps/checkout/deployment.yaml", DEPLOYMENT),
    ]);
    assert_eq!(code, Some(0));
    let found = findings_of(&report, "workload-outside-its-tier");
    assert_eq!(found.len(), 1, "{report:#}");
    assert_eq!(found[0]["line"], DESTINATION_LINE);
    assert_eq!(found[0]["purpose"], "feature");
    assert_eq!(found[0]["tier"], "testing");
    let message = found[0]["message"].as_str().expect("message");
    assert!(
        message.contains("feature workload Deployment/checkout"),
        "{message}"
    );
    assert!(
        message.contains("belong on development clusters, such as dev-eu"),
        "{message}"
    );
}

#[test]
fn the_config_tiers_can_allow_load_tests_on_staging() {
    let cfg = config(
        &["prod-eu", "staging-eu", "load-eu"],
        "tiers:\n  load-test: [testing, staging]\n",
    );
    let load_app = app("checkout-soak", "tests/load", "staging-eu");
    let (code, report) = scan(&[
        (".envfence.yaml", &cfg),
        ("argocd/checkout-soak.yaml", &load_app),
        ("tests/load/testrun.yaml", K6_TESTRUN),
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(report["findings"], serde_json::json!([]), "{report:#}");
}

#[test]
fn the_config_tier_of_a_cluster_wins_over_its_name() {
    // `qa-1` has no tier word; the config makes it the testing cluster, so the load test on
    // staging has a better home.
    let cfg = "clusters:\n  - name: staging-eu\n  - name: qa-1\n    tier: testing\n";
    let load_app = app("checkout-soak", "tests/load", "staging-eu");
    let (_, report) = scan(&[
        (".envfence.yaml", cfg),
        ("argocd/checkout-soak.yaml", &load_app),
        ("tests/load/testrun.yaml", K6_TESTRUN),
    ]);
    let found = findings_of(&report, "workload-outside-its-tier");
    assert_eq!(found.len(), 1, "{report:#}");
    assert!(found[0]["message"]
        .as_str()
        .is_some_and(|m| m.contains("such as qa-1")));
}

#[test]
fn tier_words_make_clusters_non_production_but_production_wins() {
    let t = topology(&[(
        ".envfence.yaml",
        &config(&["ops-prod", "load-1", "tools", "ci-eu", "qa"], ""),
    )]);
    let cluster = |name: &str| {
        t["clusters"]
            .as_array()
            .expect("clusters")
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name}: {t:#}"))
    };
    assert_eq!(cluster("ops-prod")["environment"], "production");
    assert_eq!(cluster("ops-prod")["tier"], "production");
    for (name, tier) in [
        ("load-1", "testing"),
        ("tools", "internal"),
        ("ci-eu", "internal"),
    ] {
        assert_eq!(cluster(name)["environment"], "non-production", "{name}");
        assert_eq!(cluster(name)["tier"], tier, "{name}");
    }
    // A non-production cluster without a tier word takes no part in tier checks.
    assert_eq!(cluster("qa")["environment"], "non-production");
    assert_eq!(cluster("qa").get("tier"), None);
}

#[test]
fn the_topology_text_groups_clusters_by_tier_and_prints_the_matrix() {
    let dir = common::fixture("tiers");
    let out = envfence()
        .args(["topology", "-q"])
        .arg(&dir)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("staging-eu (non-production · staging tier)"),
        "{text}"
    );
    assert!(text.contains("Purposes by tier"), "{text}");
    let order: Vec<usize> = [
        "prod-eu (",
        "staging-eu (",
        "dev-eu (",
        "testing-eu (",
        "tools-eu (",
    ]
    .iter()
    .map(|c| text.find(c).unwrap_or_else(|| panic!("{c}: {text}")))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    let mermaid = envfence()
        .args(["topology", "-q", "--format", "mermaid"])
        .arg(&dir)
        .output()
        .expect("runs");
    let mermaid = String::from_utf8_lossy(&mermaid.stdout);
    assert!(
        mermaid.contains("subgraph tier_testing[\"tier: testing\"]"),
        "{mermaid}"
    );
    let dot = envfence()
        .args(["topology", "-q", "--format", "dot"])
        .arg(&dir)
        .output()
        .expect("runs");
    let dot = String::from_utf8_lossy(&dot.stdout);
    assert!(dot.contains("subgraph \"cluster_tier_internal\""), "{dot}");
    let explain = envfence()
        .args(["explain", "-q"])
        .arg(dir.join("tests/load/testrun.yaml"))
        .output()
        .expect("runs");
    let explain = String::from_utf8_lossy(&explain.stdout);
    assert!(explain.contains("purpose load-test"), "{explain}");
    assert!(explain.contains("is of the testing tier"), "{explain}");
}

#[test]
fn the_tiers_fixture_reports_its_one_planted_mistake() {
    let out = envfence()
        .args(["scan", "-q", "--format", "json"])
        .arg(common::fixture("tiers"))
        .output()
        .expect("runs");
    let report = json_report(&out);
    let rules: Vec<&str> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["rule"].as_str())
        .collect();
    assert_eq!(rules, ["workload-outside-its-tier"], "{report:#}");
    assert_eq!(
        report["findings"][0]["file"],
        "argocd/apps/checkout-soak.yaml"
    );
}

#[test]
fn config_tiers_reject_unknown_purposes_and_tiers_with_their_line() {
    for (text, line, needle) in [
        ("tiers:\n  load-tests: [testing]\n", 2, "load-tests"),
        ("tiers:\n  load-test: [testing, qa]\n", 2, "qa"),
        ("clusters:\n  - name: a\n    tier: prod\n", 3, "prod"),
        (
            "clusters:\n  - name: a\n    environment: production\n    tier: staging\n",
            4,
            "declared production but its tier is staging",
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        write_tree(dir.path(), &[(".envfence.yaml", text)]);
        let out = envfence()
            .arg("scan")
            .arg(dir.path())
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(".envfence.yaml:{line}")) && stderr.contains(needle),
            "{text}: {stderr}"
        );
    }
}
