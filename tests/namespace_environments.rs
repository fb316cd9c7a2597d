//! Namespaces carry environments and grouped findings stay reviewable (issue 27): a
//! platform layout of namespace folders per cluster, placed by a `paths:` hint, whose
//! Namespaces say what they are through labels (`acme.io/is-production`,
//! `acme.io/environment-name`). Each test is a small repository written the way a platform
//! team lays one out.

mod common;

use std::path::Path;

use common::{envfence, git, json_report, placement, write_tree};
use serde_json::Value;

const CONFIG: &str = "paths:
  - glob: \"namespaces/live.acme.io/**\"
    cluster: live
  - glob: \"namespaces/test.acme.io/**\"
    cluster: test
";

/// A Namespace labelled the platform's way, with an optional line of extra labels.
fn namespace(name: &str, is_production: &str, environment: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1
kind: Namespace
metadata:
  name: {name}
  labels:
    acme.io/is-production: \"{is_production}\"
    acme.io/environment-name: {environment}
    acme.io/team: platform
{extra}"
    )
}

/// A Deployment and a ServiceAccount of the namespace's team.
fn workloads(ns: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
spec:
  template:
    spec:
      containers:
        - name: web
          image: registry.acme.io/web:1.0
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: deployer
  namespace: {ns}
"
    )
}

/// The platform's default NetworkPolicy: ingress only from the namespace's own pods.
fn same_namespace_ingress(ns: &str) -> String {
    format!(
        "kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: default
  namespace: {ns}
spec:
  podSelector: {{}}
  policyTypes:
    - Ingress
  ingress:
    - from:
      - podSelector: {{}}
"
    )
}

/// The files of one namespace folder: `00-namespace.yaml`, `01-apps.yaml`, `02-netpol.yaml`.
fn namespace_folder(cluster: &str, ns: &str, namespace_yaml: &str) -> Vec<(String, String)> {
    let dir = format!("namespaces/{cluster}/{ns}");
    vec![
        (
            format!("{dir}/00-namespace.yaml"),
            namespace_yaml.to_owned(),
        ),
        (format!("{dir}/01-apps.yaml"), workloads(ns)),
        (format!("{dir}/02-netpol.yaml"), same_namespace_ingress(ns)),
    ]
}

/// The platform repository: three production and three non-production namespaces on `live`
/// (one, `reports`, labelled production and development at once; one, `billing-prod`,
/// labelled non-production against its name) and one on the `test` cluster.
fn platform() -> Vec<(String, String)> {
    let mut files = vec![(".envfence.yaml".to_owned(), CONFIG.to_owned())];
    for (cluster, ns, prod, env) in [
        ("live.acme.io", "payments", "true", "production"),
        ("live.acme.io", "checkout", "true", "production"),
        ("live.acme.io", "payments-sandbox", "false", "development"),
        ("live.acme.io", "orders", "false", "staging"),
        ("live.acme.io", "reports", "true", "dev"),
        ("live.acme.io", "billing-prod", "false", "development"),
        ("test.acme.io", "payments-test", "false", "test"),
    ] {
        files.extend(namespace_folder(cluster, ns, &namespace(ns, prod, env, "")));
    }
    files
}

fn as_refs(files: &[(String, String)]) -> Vec<(&str, &str)> {
    files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect()
}

/// Runs `envfence <command> -q --format json` on `files`: (exit code, report).
fn run(command: &str, files: &[(String, String)]) -> (Option<i32>, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(dir.path(), &as_refs(files));
    let out = envfence()
        .env_remove("GITHUB_REPOSITORY")
        .args([command, "-q", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    (out.status.code(), json_report(&out))
}

/// The findings of `rule`, as (file:line, message).
fn findings(report: &Value, rule: &str) -> Vec<(String, String)> {
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

fn at(report: &Value, rule: &str) -> Vec<String> {
    findings(report, rule).into_iter().map(|(l, _)| l).collect()
}

/// The evidence of a placement or finding as "file:line note".
fn chain(value: &Value) -> Vec<String> {
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

#[test]
fn namespace_labels_class_every_object_in_the_namespace() {
    let (_, topology) = run("topology", &platform());
    let class = |ns: &str| {
        let p = placement(
            &topology,
            &format!("namespaces/live.acme.io/{ns}/01-apps.yaml"),
            "live",
        );
        (
            p["workload_class"].as_str().unwrap_or("").to_owned(),
            p["workload_class_reason"].as_str().unwrap_or("").to_owned(),
        )
    };
    // Names that say nothing: the labels decide, both ways.
    assert_eq!(
        class("payments"),
        (
            "production".into(),
            "namespace payments label acme.io/is-production=true".into()
        )
    );
    assert_eq!(
        class("orders"),
        (
            "non-production".into(),
            "namespace orders label acme.io/is-production=false".into()
        )
    );
    // Labels that disagree: non-production wins, as for any workload's own signals.
    assert_eq!(
        class("reports"),
        (
            "non-production".into(),
            "namespace reports label acme.io/environment-name=dev".into()
        )
    );
    // A name that disagrees with its labels: the labels decide.
    assert_eq!(class("billing-prod").0, "non-production");
    // The evidence points at the label line, after the object.
    let web = placement(
        &topology,
        "namespaces/live.acme.io/reports/01-apps.yaml",
        "live",
    );
    assert_eq!(
        chain(web),
        [
            ".envfence.yaml:2 paths: namespaces/live.acme.io/** → cluster live",
            "namespaces/live.acme.io/reports/01-apps.yaml:1 Deployment/web in namespace reports",
            "namespaces/live.acme.io/reports/00-namespace.yaml:7 namespace reports is non-production: its label acme.io/environment-name=dev",
        ]
    );
    // The Namespace object itself follows its labels, not its name.
    let billing = placement(
        &topology,
        "namespaces/live.acme.io/billing-prod/00-namespace.yaml",
        "live",
    );
    assert_eq!(billing["workload_class"], "non-production", "{billing:#}");
}

#[test]
fn the_platform_layout_reports_each_namespace_at_its_own_file() {
    let (code, report) = run("scan", &platform());
    assert_eq!(code, Some(1), "{report:#}");
    // One error per non-production namespace on the production cluster, at its Namespace
    // object; none for production namespaces, none on the test cluster.
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        [
            "namespaces/live.acme.io/billing-prod/00-namespace.yaml:1",
            "namespaces/live.acme.io/orders/00-namespace.yaml:1",
            "namespaces/live.acme.io/payments-sandbox/00-namespace.yaml:1",
            "namespaces/live.acme.io/reports/00-namespace.yaml:1",
        ]
    );
    assert_eq!(
        at(&report, "mixed-environment-cluster"),
        at(&report, "nonprod-on-prod-cluster")
    );
    // The messages stay short: one namespace's objects each.
    for (line, message) in findings(&report, "nonprod-on-prod-cluster") {
        assert!(message.len() < 600, "{line}: {message}");
    }
    let (_, orders) = &findings(&report, "nonprod-on-prod-cluster")[1];
    assert_eq!(
        orders,
        "4 non-production objects (Namespace/orders, Deployment/web, ServiceAccount/deployer, NetworkPolicy/default) in namespace orders placed by config path namespaces/live.acme.io/** on production cluster live (namespace orders label acme.io/is-production=false); cluster-scoped Namespace/orders changes the whole cluster"
    );
    // The contradictions are warnings at their label lines.
    assert_eq!(
        findings(&report, "conflicting-environment-labels"),
        [
            (
                "namespaces/live.acme.io/billing-prod/00-namespace.yaml:6".to_owned(),
                "namespace billing-prod: its name says production (`prod`), but label acme.io/is-production=false says non-production; envfence follows the label, so the namespace and every object in it are non-production".to_owned()
            ),
            (
                "namespaces/live.acme.io/reports/00-namespace.yaml:6".to_owned(),
                "namespace reports: label acme.io/is-production=true says production, but label acme.io/environment-name=dev (line 7) says non-production; envfence treats the namespace and every object in it as non-production".to_owned()
            ),
        ]
    );
    // The default policy admits ingress only from the namespace itself: egress is what is open.
    let isolation = findings(&report, "no-network-isolation");
    assert_eq!(isolation.len(), 6, "{isolation:#?}");
    for (line, message) in &isolation {
        assert!(
            message.contains("has no default-deny NetworkPolicy for egress: its workloads (such as Deployment/web) can reach every other namespace")
                && !message.contains("ingress"),
            "{line}: {message}"
        );
    }
}

#[test]
fn labels_that_agree_with_the_name_are_not_reported() {
    let mut files = vec![(".envfence.yaml".to_owned(), CONFIG.to_owned())];
    files.extend(namespace_folder(
        "live.acme.io",
        "payments-prod",
        &namespace("payments-prod", "true", "production", ""),
    ));
    files.extend(namespace_folder(
        "live.acme.io",
        "payments-dev",
        &namespace("payments-dev", "false", "development", ""),
    ));
    let (_, report) = run("scan", &files);
    assert!(
        findings(&report, "conflicting-environment-labels").is_empty(),
        "{report:#}"
    );
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        ["namespaces/live.acme.io/payments-dev/00-namespace.yaml:1"]
    );
}

#[test]
fn configured_keys_and_annotations_name_environments_too() {
    let config = format!("{CONFIG}namespaces:\n  environment-keys: [acme.io/tier-name]\n");
    let labelled = "apiVersion: v1
kind: Namespace
metadata:
  name: ledger
  labels:
    acme.io/tier-name: sandbox
";
    let annotated = "apiVersion: v1
kind: Namespace
metadata:
  name: search
  annotations:
    platform.acme.io/environment: production
";
    let mut files = vec![(".envfence.yaml".to_owned(), config)];
    files.extend(namespace_folder("live.acme.io", "ledger", labelled));
    files.extend(namespace_folder("live.acme.io", "search", annotated));
    let (_, topology) = run("topology", &files);
    let ledger = placement(
        &topology,
        "namespaces/live.acme.io/ledger/01-apps.yaml",
        "live",
    );
    assert_eq!(ledger["workload_class"], "non-production");
    assert_eq!(
        ledger["workload_class_reason"],
        "namespace ledger label acme.io/tier-name=sandbox"
    );
    let search = placement(
        &topology,
        "namespaces/live.acme.io/search/01-apps.yaml",
        "live",
    );
    assert_eq!(search["workload_class"], "production");
    assert!(
        chain(search).last().is_some_and(|hop| hop
            == "namespaces/live.acme.io/search/00-namespace.yaml:6 namespace search is production: its annotation platform.acme.io/environment=production"),
        "{search:#}"
    );
    // Without the configured key, the label says nothing.
    let mut unconfigured = files.clone();
    unconfigured[0].1 = CONFIG.to_owned();
    let (_, topology) = run("topology", &unconfigured);
    let ledger = placement(
        &topology,
        "namespaces/live.acme.io/ledger/01-apps.yaml",
        "live",
    );
    assert_eq!(ledger["workload_class"], "unknown", "{ledger:#}");
}

#[test]
fn a_large_group_names_the_first_few_and_lists_all_in_json() {
    // One non-production namespace with a dozen ConfigMaps.
    let mut files = vec![(".envfence.yaml".to_owned(), CONFIG.to_owned())];
    files.extend(namespace_folder(
        "live.acme.io",
        "payments",
        &namespace("payments", "true", "production", ""),
    ));
    files.extend(namespace_folder(
        "live.acme.io",
        "sandbox",
        &namespace("sandbox", "false", "development", ""),
    ));
    let maps: String = (1..=12)
        .map(|i| {
            format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings-{i}\n  namespace: sandbox\n")
        })
        .collect();
    files.push((
        "namespaces/live.acme.io/sandbox/03-config.yaml".into(),
        maps,
    ));
    let (_, report) = run("scan", &files);
    let error = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule"] == "nonprod-on-prod-cluster")
        .expect("an error");
    let message = error["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("16 non-production objects (Namespace/sandbox, Deployment/web, ServiceAccount/deployer, NetworkPolicy/default, ConfigMap/settings-1 and 11 more) in namespace sandbox placed by"),
        "{message}"
    );
    let objects = error["objects"].as_array().expect("the full list");
    assert_eq!(objects.len(), 16);
    assert_eq!(objects[15]["name"], "settings-12");
    assert_eq!(
        objects[15]["file"],
        "namespaces/live.acme.io/sandbox/03-config.yaml"
    );
    assert_eq!(objects[15]["line"], 68);
    // A group the message names whole has no list.
    let mixed = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule"] == "mixed-environment-cluster")
        .expect("a warning");
    assert!(mixed.get("objects").is_none(), "{mixed:#}");
}

fn commit_all(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

fn scan_base(dir: &Path, base: &str) -> (Option<i32>, Value) {
    let out = envfence()
        .env_remove("GITHUB_REPOSITORY")
        .current_dir(dir)
        .args(["scan", "--quiet", "--format", "json", "--base", base, "."])
        .output()
        .expect("runs");
    (out.status.code(), json_report(&out))
}

#[test]
fn a_pull_request_that_adds_a_namespace_gets_a_new_finding_at_its_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    git(dir, &["init", "-q"]);
    let mut files = vec![(".envfence.yaml".to_owned(), CONFIG.to_owned())];
    files.extend(namespace_folder(
        "live.acme.io",
        "payments",
        &namespace("payments", "true", "production", ""),
    ));
    files.extend(namespace_folder(
        "live.acme.io",
        "orders",
        &namespace("orders", "false", "staging", ""),
    ));
    write_tree(dir, &as_refs(&files));
    let base = commit_all(dir, "base");
    let (_, before) = scan_base(dir, "HEAD");
    let orders_before = findings(&before, "nonprod-on-prod-cluster");

    // The pull request: one more non-production namespace folder on the production cluster.
    let added = namespace_folder(
        "live.acme.io",
        "search-dev",
        &namespace("search-dev", "false", "development", ""),
    );
    write_tree(dir, &as_refs(&added));
    commit_all(dir, "add search-dev");
    let (code, report) = scan_base(dir, &base);
    assert_eq!(code, Some(1), "a new error fails the check: {report:#}");
    let of = |status: &str, rule: &str| -> Vec<String> {
        report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["status"] == status && f["rule"] == rule)
            .map(|f| format!("{}:{}", f["file"].as_str().unwrap_or(""), f["line"]))
            .collect()
    };
    assert_eq!(
        of("new", "nonprod-on-prod-cluster"),
        ["namespaces/live.acme.io/search-dev/00-namespace.yaml:1"]
    );
    assert_eq!(
        of("new", "mixed-environment-cluster"),
        ["namespaces/live.acme.io/search-dev/00-namespace.yaml:1"]
    );
    assert_eq!(
        of("new", "no-network-isolation"),
        ["namespaces/live.acme.io/search-dev/00-namespace.yaml:1"]
    );
    // The existing namespace's finding is untouched: same place, same words.
    assert_eq!(
        of("existing", "nonprod-on-prod-cluster"),
        ["namespaces/live.acme.io/orders/00-namespace.yaml:1"]
    );
    let orders_after: Vec<(String, String)> = findings(&report, "nonprod-on-prod-cluster")
        .into_iter()
        .filter(|(l, _)| l.contains("/orders/"))
        .collect();
    assert_eq!(orders_after, orders_before);
    assert!(of("fixed", "nonprod-on-prod-cluster").is_empty());
}
