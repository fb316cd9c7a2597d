//! `envfence topology` and `envfence explain` as a user runs them.

mod common;

use common::{corpora, envfence, fixture, normalise};
use serde_json::Value;

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = envfence().args(args).output().expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn demo() -> String {
    fixture("demo").to_string_lossy().into_owned()
}

#[test]
fn demo_topology_text() {
    let (code, out) = run(&["topology", "-q", &demo()]);
    assert_eq!(code, Some(0));
    insta::assert_snapshot!("demo_topology_text", out);
}

#[test]
fn demo_topology_json() {
    let (code, out) = run(&["topology", "-q", "--format", "json", &demo()]);
    assert_eq!(code, Some(0));
    let t: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(t["version"], 1);
    // Every planted non-production workload is where the demo README says it is.
    let placed = |file: &str, cluster: &str| {
        t["placements"]
            .as_array()
            .expect("placements")
            .iter()
            .find(|p| p["file"] == file && p["cluster"] == cluster)
            .cloned()
            .unwrap_or_else(|| panic!("{file} not placed on {cluster}"))
    };
    let feature = placed("apps/checkout/base/deployment.yaml", "prod-us");
    let preview = placed(
        "apps/payments/overlays/preview-pr-481/namespace.yaml",
        "prod-eu",
    );
    let test_job = placed(
        "apps/checkout/overlays/dev/integration-test-job.yaml",
        "dev-us",
    );
    let cache_patch = placed("apps/orders/overlays/production/cache.yaml", "prod-us");
    assert_eq!(preview["cluster_environment"], "production");
    assert_eq!(preview["workload_class"], "non-production");
    assert_eq!(test_job["workload_class"], "non-production");
    assert_eq!(cache_patch["workload_class"], "production");
    assert_eq!(cache_patch["patch"], true);
    // The base Deployment lands on prod-us twice: once as production checkout, once renamed
    // by the feature overlay.
    let names: Vec<&str> = t["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .filter(|p| p["file"] == "apps/checkout/base/deployment.yaml" && p["cluster"] == "prod-us")
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, vec!["checkout-dark-mode", "checkout"]);
    assert_eq!(feature["workload_class"], "non-production");
    let evidence: Vec<String> = feature["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .map(|e| format!("{}:{}", e["file"].as_str().unwrap_or(""), e["line"]))
        .collect();
    assert_eq!(
        evidence,
        vec![
            "argocd/root.yaml:14",
            "argocd/root.yaml:12",
            "argocd/apps/checkout-feature-dark-mode.yaml:2",
            "argocd/apps/checkout-feature-dark-mode.yaml:16",
            "argocd/apps/checkout-feature-dark-mode.yaml:14",
            "apps/checkout/overlays/feature-dark-mode/kustomization.yaml:6",
            "apps/checkout/base/kustomization.yaml:4",
            "apps/checkout/base/deployment.yaml:1",
        ]
    );
    insta::assert_snapshot!("demo_topology_json", out);
}

#[test]
fn demo_graphs() {
    let (code, mermaid) = run(&["topology", "-q", "--format", "mermaid", &demo()]);
    assert_eq!(code, Some(0));
    assert!(mermaid.starts_with("flowchart LR\n"));
    assert!(
        mermaid.contains("[\"Application checkout-feature-dark-mode<br/><small>argocd/apps/checkout-feature-dark-mode.yaml</small>\"] --> c_prod_us"),
        "{mermaid}"
    );
    let (code, dot) = run(&["topology", "-q", "--format", "dot", &demo()]);
    assert_eq!(code, Some(0));
    assert!(dot.starts_with("digraph topology {"));
    assert!(
        dot.contains("\"Kustomization payments-preview-pr-481 clusters/prod-eu/payments-preview.yaml\" -> \"cluster:prod-eu\";"),
        "{dot}"
    );
    insta::assert_snapshot!("demo_topology_mermaid", mermaid);
}

#[test]
fn explain_shows_the_chain_with_lines() {
    let file = fixture("demo").join("apps/checkout/overlays/dev/integration-test-job.yaml");
    let (code, out) = run(&["explain", "-q", "--root", &demo(), &file.to_string_lossy()]);
    assert_eq!(code, Some(0));
    insta::assert_snapshot!("demo_explain_test_job", out);
    // A file nothing deploys says so.
    let file = fixture("demo").join("argocd/clusters/dev-us.yaml");
    let (_, out) = run(&["explain", "-q", "--root", &demo(), &file.to_string_lossy()]);
    assert!(out.contains("not placed on any cluster"), "{out}");
}

#[test]
fn explain_finds_the_root_from_the_config_file() {
    // fixtures/demo has .envfence.yaml, which marks the repository root.
    let file = fixture("demo").join("clusters/prod-eu/payments-preview.yaml");
    let (code, out) = run(&["explain", "-q", &file.to_string_lossy()]);
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with("clusters/prod-eu/payments-preview.yaml\n"),
        "{out}"
    );
    let out = envfence()
        .args(["explain", "/nonexistent.yaml"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn scan_summary_counts_placements() {
    let (_, out) = run(&["scan", "-q", &demo()]);
    assert!(
        normalise(&out).contains("Placed 22 of 26 Kubernetes objects on 5 clusters; 4 reached by no deployer: argocd/clusters/ 2, argocd/ 1, argocd/appsets/ 1."),
        "{out}"
    );
}

/// DESIGN's acceptance example: the Flux kustomize-helm example places its production and
/// staging apps on the right clusters, with evidence.
#[test]
fn flux_kustomize_helm_example() {
    let Some(dir) = corpora() else {
        eprintln!("skipped: ../shared/corpora is not present");
        return;
    };
    let repo = dir.join("fluxcd__flux2-kustomize-helm-example");
    let (code, out) = run(&[
        "topology",
        "-q",
        "--format",
        "json",
        &repo.to_string_lossy(),
    ]);
    assert_eq!(code, Some(0));
    let t: Value = serde_json::from_str(&out).expect("json");
    let placements = t["placements"].as_array().expect("placements");
    let on = |prefix: &str, cluster: &str, env: &str| {
        let hits: Vec<&Value> = placements
            .iter()
            .filter(|p| {
                p["file"].as_str().is_some_and(|f| f.starts_with(prefix)) && p["cluster"] == cluster
            })
            .collect();
        assert!(!hits.is_empty(), "nothing from {prefix} on {cluster}");
        for p in hits {
            assert_eq!(p["cluster_environment"], env, "{p}");
            assert!(
                p["evidence"].as_array().is_some_and(|e| e.len() >= 3),
                "{p}"
            );
        }
    };
    on("apps/production/", "production", "production");
    on("apps/base/podinfo/", "production", "production");
    on("apps/staging/", "staging", "non-production");
    on("apps/base/podinfo/", "staging", "non-production");
    assert!(!placements.iter().any(|p| p["file"]
        .as_str()
        .is_some_and(|f| f.starts_with("apps/staging/"))
        && p["cluster"] == "production"));
}

/// Every evidence hop and every placement names a line that exists and holds text, and hops
/// that quote a field (`destination.name=…`, `resources …`, `path …`) sit on that field's line.
#[test]
fn evidence_points_at_real_lines() {
    let mut roots = vec![fixture("demo")];
    if let Some(dir) = corpora() {
        let mut more: Vec<_> = std::fs::read_dir(dir)
            .expect("corpora")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        more.sort();
        roots.extend(more);
    }
    let mut checked = 0;
    let mut problems = Vec::new();
    for root in roots {
        let (_, out) = run(&[
            "topology",
            "-q",
            "--format",
            "json",
            &root.to_string_lossy(),
        ]);
        let t: Value = serde_json::from_str(&out).expect("json");
        let mut files: std::collections::HashMap<String, Vec<String>> = Default::default();
        let mut line_of = |file: &str, line: u64| -> Option<String> {
            let lines = files.entry(file.to_owned()).or_insert_with(|| {
                std::fs::read_to_string(root.join(file))
                    .map(|t| t.lines().map(str::to_owned).collect())
                    .unwrap_or_default()
            });
            lines
                .get(usize::try_from(line).ok()?.checked_sub(1)?)
                .cloned()
        };
        for p in t["placements"].as_array().expect("placements") {
            let own = serde_json::json!({"file": p["file"], "line": p["line"], "note": "object"});
            for hop in p["evidence"]
                .as_array()
                .expect("evidence")
                .iter()
                .chain([&own])
            {
                checked += 1;
                let file = hop["file"].as_str().unwrap_or("");
                let note = hop["note"].as_str().unwrap_or("");
                let Some(text) = line_of(file, hop["line"].as_u64().unwrap_or(0)) else {
                    problems.push(format!(
                        "{}: {file}:{} does not exist ({note})",
                        root.display(),
                        hop["line"]
                    ));
                    continue;
                };
                let quoted = ["destination.name", "destination.server", "source.path"]
                    .iter()
                    .find(|k| note.starts_with(*k))
                    .map(|k| k.rsplit('.').next().unwrap_or(k).to_owned())
                    .or_else(|| {
                        ["resources ", "bases ", "components ", "patch "]
                            .iter()
                            .find_map(|k| note.strip_prefix(k))
                            .map(str::to_owned)
                    });
                if text.trim().is_empty()
                    || quoted.as_ref().is_some_and(|q| !text.contains(q.as_str()))
                {
                    problems.push(format!(
                        "{}: {file}:{} is `{text}` for `{note}`",
                        root.display(),
                        hop["line"]
                    ));
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} hops checked");
    assert!(
        problems.is_empty(),
        "{} of {checked} hops are off:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Issue 11's acceptance corpus: one Argo CD instance deploys production and non-production
/// Applications to its own cluster. `in-cluster` holds `prod-us-app`, so it is production and
/// the qa and staging Applications are errors at their destination lines; the mixed-cluster and
/// isolation warnings come once per deployer.
#[test]
fn multi_sources_example_local_cluster_is_production() {
    let Some(dir) = corpora() else {
        eprintln!("skipped: ../shared/corpora is not present");
        return;
    };
    let repo = dir.join("kostis-codefresh__multi-sources-example");
    let out = common::envfence()
        .env_remove("GITHUB_REPOSITORY")
        .args(["scan", "-q", "--format", "json"])
        .arg(&repo)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let report = common::json_report(&out);
    let at = |rule: &str| -> Vec<String> {
        let mut v: Vec<String> = report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["rule"] == rule)
            .map(|f| format!("{}:{}", f["file"].as_str().unwrap_or(""), f["line"]))
            .collect();
        v.sort();
        v
    };
    let errors = at("nonprod-on-prod-cluster");
    for expected in [
        "example-apps/qa-app.yaml:11",
        "example-apps/staging-eu-app.yaml:11",
    ] {
        assert!(errors.contains(&expected.to_owned()), "{errors:?}");
    }
    assert!(
        !errors
            .iter()
            .any(|e| e.starts_with("example-apps/prod-us.yaml")),
        "{errors:?}"
    );
    let in_cluster = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["file"] == "example-apps/qa-app.yaml" && f["rule"] == "nonprod-on-prod-cluster")
        .expect("qa-app error");
    assert_eq!(in_cluster["cluster"], "in-cluster");
    // Grouped: one mixed-cluster and one isolation finding per deployer line.
    for rule in ["mixed-environment-cluster", "no-network-isolation"] {
        let lines = at(rule);
        let mut unique = lines.clone();
        unique.dedup();
        assert_eq!(lines, unique, "{rule}: {lines:?}");
        assert!(
            lines.contains(&"example-apps/qa-app.yaml:11".to_owned()),
            "{rule}: {lines:?}"
        );
    }
}
