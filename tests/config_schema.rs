//! `docs/envfence.schema.json`, the editor schema of `.envfence.yaml`, is generated from the
//! config types; this test fails when the committed file drifts from them.
//! `ENVFENCE_BLESS=1 cargo test --test config_schema` regenerates it (after a config change,
//! that one command is all it takes).
//!
//! The schema must also judge a config as the loader does: every case below is run through
//! both, and they must agree (glob syntax and cross-references are the loader's alone).

mod common;

use common::repo_root;
use envfence::config::{json_schema, Config, SCHEMA_URL};

fn schema_path() -> std::path::PathBuf {
    repo_root().join("docs").join("envfence.schema.json")
}

#[test]
fn committed_schema_matches_the_config_types() {
    let generated = json_schema();
    let path = schema_path();
    if std::env::var_os("ENVFENCE_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write docs/envfence.schema.json");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/envfence.schema.json is out of date (run ENVFENCE_BLESS=1 cargo test --test config_schema)"
    );
    assert!(
        generated.contains(SCHEMA_URL),
        "the schema names its own URL"
    );
}

fn validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(&json_schema()).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

/// A YAML config as the JSON an editor's language server validates.
fn as_json(yaml: &str) -> serde_json::Value {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).expect("YAML");
    serde_json::to_value(value).expect("JSON")
}

/// (config text, whether the loader accepts it): both the loader and the schema must say so.
const CASES: &[(&str, bool)] = &[
    ("clusters:\n  - name: load-1\n    tier: testing\n", true),
    ("clusters:\n  - name: a\n    tier: qa\n", false),
    (
        "tiers:\n  load-test: [testing, staging]\n  ci: [internal]\n",
        true,
    ),
    ("tiers:\n  smoke-test: [testing]\n", false),
    ("tiers:\n  load-test: testing\n", false),
    ("rules:\n  workload-outside-its-tier: error\n", true),
    ("rules:\n  rego/envfence.limits/deny: warning\n", true),
    ("rules:\n  rego/envfence.limits/deny: loud\n", false),
    ("policies: policies/\n", true),
    (
        "clusters:\n  - name: prod-eu\n    environment: production\n",
        true,
    ),
    (
        "clusters:\n  - name: a\n    server: https://a\n    aliases: [b]\n",
        true,
    ),
    ("clusters:\n  - name: a\n    environment: null\n", true),
    (
        "clusters:\n  - name: a\n    labels: {env: prod, tier: gold}\n    annotations: {region: eu}\n",
        true,
    ),
    ("clusters:\n  - name: a\n    labels: [env]\n", false),
    ("clusters:\n  - name: a\n    annotations:\n      x: {y: z}\n", false),
    (
        "rules:\n  no-network-isolation: off\n  invalid-yaml: error\n",
        true,
    ),
    ("limits:\n  kustomize-objects: 1000000\n", true),
    (
        "helm:\n  enabled: false\n  kube-version: \"v1.31.2\"\n",
        true,
    ),
    (
        "repository:\n  urls: [https://github.com/acme/platform.git]\n",
        true,
    ),
    (
        "environments:\n  non-production:\n    words: [sbx]\n    hosts: ['*.stg']\n",
        true,
    ),
    // Unknown keys, at every level.
    ("clusterz: []\n", false),
    ("clusters:\n  - name: a\n    lables: {}\n", false),
    ("environments:\n  staging: {}\n", false),
    ("environments:\n  production:\n    word: [x]\n", false),
    (
        "paths:\n  - glob: a/**\n    cluster: a\n    env: prod\n",
        false,
    ),
    ("rules:\n  no-such-rule: off\n", false),
    ("limits:\n  appset-sets: 5\n", false),
    ("helm:\n  binary: ./evil.sh\n", false),
    ("repository:\n  url: x\n", false),
    // Wrong types and values.
    ("clusters: prod\n", false),
    ("clusters:\n  - environment: production\n", false),
    ("clusters:\n  - name: a\n    environment: prod\n", false),
    ("clusters:\n  - name: a\n    aliases: b\n", false),
    ("rules:\n  invalid-yaml: loud\n", false),
    ("paths:\n  - glob: a/**\n", false),
    ("ignore: vendor/**\n", false),
    ("helm:\n  enabled: \"yes\"\n", false),
    ("helm:\n  kube-version: \"1.31; rm\"\n", false),
    ("limits:\n  kustomize-objects: 0\n", false),
    ("limits:\n  kustomize-objects: 1000001\n", false),
    ("limits:\n  expanded-objects: many\n", false),
];

#[test]
fn schema_and_loader_agree() {
    let validator = validator();
    let mut disagreements = Vec::new();
    for (text, loads) in CASES {
        let loader = Config::parse(std::path::Path::new(".envfence.yaml"), text);
        assert_eq!(loader.is_ok(), *loads, "the loader on {text:?}: {loader:?}");
        let schema_ok = validator.is_valid(&as_json(text));
        if schema_ok != *loads {
            disagreements.push(format!(
                "{text:?}: loader {}, schema {}",
                if *loads { "accepts" } else { "rejects" },
                if schema_ok { "accepts" } else { "rejects" }
            ));
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

/// The README's config example and every config in the test cases are valid for editors too.
#[test]
fn documented_and_tested_configs_validate() {
    let validator = validator();
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README");
    let start = readme
        .find("### Configuration: `.envfence.yaml`")
        .expect("README's config section");
    let block = readme[start..]
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("README's config example");
    let mut configs = vec![("README.md".to_owned(), block.to_owned())];
    let demo = repo_root().join("fixtures/demo/.envfence.yaml");
    configs.push((
        demo.display().to_string(),
        std::fs::read_to_string(&demo).expect("the demo's config"),
    ));
    let cases = repo_root().join("tests").join("cases");
    for entry in std::fs::read_dir(&cases).expect("tests/cases").flatten() {
        for name in [".envfence.yaml", "repo/.envfence.yaml"] {
            let path = entry.path().join(name);
            if let Ok(text) = std::fs::read_to_string(&path) {
                // Cases that exist to show a loader error are not valid configs.
                if Config::parse(&path, &text).is_ok() {
                    configs.push((path.display().to_string(), text));
                }
            }
        }
    }
    assert!(configs.len() >= 2, "{configs:?}");
    for (name, text) in configs {
        let json = as_json(&text);
        let errors: Vec<String> = validator
            .iter_errors(&json)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
}
