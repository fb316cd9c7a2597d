//! SARIF output: valid against the SARIF 2.1.0 JSON schema (the one the `serde-sarif` crate
//! ships, found through `cargo metadata`), with rule metadata, locations and fingerprints.
//! `.ci/run` also checks it with Microsoft's SARIF Multitool (`--rule-kind Ghas` and `Sarif`).

mod common;

use std::path::PathBuf;

use common::{envfence, fixture};
use serde_json::Value;

fn demo_sarif() -> Value {
    let out = envfence()
        .args(["scan", "--format", "sarif"])
        .arg(fixture("demo"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    serde_json::from_slice(&out.stdout).expect("SARIF is JSON")
}

/// The SARIF 2.1.0 schema shipped inside the serde-sarif crate's sources.
fn schema_path() -> Option<PathBuf> {
    // Offline, and for this platform only, so that no other target's crates are needed.
    let rustc = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .ok()?;
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))?;
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
            &host,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let meta: Value = serde_json::from_slice(&out.stdout).ok()?;
    let manifest = meta["packages"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == "serde-sarif")?["manifest_path"]
        .as_str()?
        .to_owned();
    let path = PathBuf::from(manifest)
        .parent()?
        .join("src")
        .join("schema.json");
    path.is_file().then_some(path)
}

fn relax_language_patterns(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "pattern" && child.as_str().is_some_and(|p| p.ends_with("]?$")) {
                    *child = Value::from("^[a-zA-Z]{2}(-[a-zA-Z]{2})?$");
                } else {
                    relax_language_patterns(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(relax_language_patterns),
        _ => {}
    }
}

#[test]
fn sarif_matches_the_2_1_0_schema() {
    let Some(path) = schema_path() else {
        eprintln!("skipped: the SARIF schema from serde-sarif's sources is not available");
        return;
    };
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("json");
    // The published schema's `language` patterns are not valid regexes for strict
    // meta-validation; envfence never writes `language`, so relax them.
    let mut schema = schema;
    relax_language_patterns(&mut schema);
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let sarif = demo_sarif();
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // And a broken document really fails, so this test can fail.
    let mut broken = sarif.clone();
    broken["runs"][0]["results"][0]["level"] = Value::from("fatal");
    assert!(!validator.is_valid(&broken));
}

#[test]
fn sarif_carries_rules_locations_and_fingerprints() {
    let sarif = demo_sarif();
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    assert_eq!(
        rules.len(),
        11,
        "every built-in rule, workload-outside-its-tier, conflicting-environment-labels and project-denies-destination included"
    );
    assert!(
        rules.iter().any(|r| r["id"] == "project-denies-destination"
            && r["name"] == "ProjectDeniesDestination"
            && r["helpUri"]
                .as_str()
                .is_some_and(|u| u.ends_with("docs/rules/project-denies-destination.md"))),
        "{rules:?}"
    );
    assert!(
        rules
            .iter()
            .any(|r| r["id"] == "conflicting-environment-labels"
                && r["name"] == "ConflictingEnvironmentLabels"
                && r["helpUri"]
                    .as_str()
                    .is_some_and(|u| u.ends_with("docs/rules/conflicting-environment-labels.md"))),
        "{rules:?}"
    );
    for rule in rules {
        assert!(
            rule["help"]["text"].as_str().is_some_and(|t| t.len() > 40),
            "{rule}"
        );
        assert_ne!(rule["id"], rule["name"]);
    }
    let results = run["results"].as_array().expect("results");
    assert_eq!(results.len(), 9, "every planted violation");
    for r in results {
        let index = r["ruleIndex"].as_u64().expect("index") as usize;
        assert_eq!(rules[index]["id"], r["ruleId"]);
        assert!(r["partialFingerprints"]["envfence/v1"]
            .as_str()
            .is_some_and(|f| f.len() == 16));
        let loc = &r["locations"][0]["physicalLocation"];
        assert!(loc["artifactLocation"]["uri"]
            .as_str()
            .is_some_and(|u| !u.starts_with('/')));
        assert!(loc["region"]["startLine"].as_u64().is_some_and(|l| l >= 1));
    }
}
