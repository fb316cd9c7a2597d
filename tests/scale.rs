//! Budgets that grow with the input (issue 29): an honest monorepo of 5,000 applications is
//! judged whole under the default limits, while a hostile repository that pads itself with
//! documents to raise its budgets still stops at a fixed multiple of its own size.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::write_tree;
use serde_json::Value;

/// `../shared/bench/gen-big-repo.py`, when this checkout sits beside it.
fn generator() -> Option<std::path::PathBuf> {
    let path = common::repo_root()
        .join("..")
        .join("shared")
        .join("bench")
        .join("gen-big-repo.py");
    path.is_file().then_some(path)
}

fn files_of(report: &Value, rule: &str) -> BTreeSet<String> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"] == rule && f["severity"] == "error")
        .map(|f| f["file"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The benchmark's 5,000-application repository: the fixed budget of 100,000 expanded objects
/// used to cut 5,816 deliveries (exit 3; 1 of 100 feature overlays sent to production and 36
/// of 71 dev overlays with a production database reported). Now every planted problem is
/// reported at its own file, and nothing is cut.
#[test]
fn an_honest_five_thousand_application_repository_is_judged_whole() {
    let Some(generator) = generator() else {
        eprintln!("skipped: ../shared/bench is not present");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let made = Command::new("python3")
        .arg(&generator)
        .arg(dir.path())
        .arg("5000")
        .status()
        .expect("python3 runs the generator");
    assert!(made.success());
    let out = common::envfence()
        .args(["scan", "--quiet", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let report = common::json_report(&out);
    assert_eq!(out.status.code(), Some(1), "{:?}", report["incomplete"]);
    assert!(
        report["incomplete"].as_array().is_none_or(Vec::is_empty),
        "{:?}",
        report["incomplete"]
    );
    // A feature overlay sent to production for each app i % 50 == 49, a production database
    // URL in the dev overlay for each app i % 70 == 69: each at its own file.
    let sent = files_of(&report, "nonprod-on-prod-cluster");
    let config = files_of(&report, "nonprod-uses-prod-config");
    for i in (0..5000).filter(|i| i % 50 == 49) {
        let file = format!("argocd/features/svc-{i:05}-feature-x.yaml");
        assert!(sent.contains(&file), "{file} not reported");
    }
    for i in (0..5000).filter(|i| i % 70 == 69) {
        let file = format!("apps/svc-{i:05}/overlays/dev-1/kustomization.yaml");
        assert!(config.contains(&file), "{file} not reported");
    }
}

/// A kustomize fan-out to 2^24 objects beside 13,000 padding documents: the budgets grow to
/// 8 per document read, and the fan-out stops there with the incomplete exit.
#[test]
fn a_hostile_repository_padded_with_documents_still_stops_at_its_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::kustomize_fan_out(dir.path(), 24);
    let padding: String = (0..13_000)
        .map(|i| format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: p{i}}}\n"))
        .collect();
    write_tree(dir.path(), &[("padding/configmaps.yaml", &padding)]);
    let out = common::envfence()
        .args(["scan", "--quiet", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let report = common::json_report(&out);
    assert_eq!(out.status.code(), Some(3), "{report:#}");
    let documents = report["summary"]["documents"].as_u64().expect("documents");
    let budget = documents * 8;
    let cut = &report["incomplete"][0];
    assert_eq!(cut["budget"], "limits.kustomize-objects", "{cut:#}");
    let note = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["message"].as_str())
        .find(|m| m.contains("(limits.kustomize-objects)"))
        .expect("a note names the budget");
    // The limit the note names, its thousands separators dropped.
    let limit: u64 = note
        .split("the limit is ")
        .nth(1)
        .and_then(|rest| rest.split(" (limits.kustomize-objects)").next())
        .map(|n| n.replace(',', ""))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no limit in {note}"));
    assert_eq!(limit, budget, "{note}");
}
