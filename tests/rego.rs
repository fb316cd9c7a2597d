//! User policies in Rego (docs/policies-rego.md): the example policies and their tests, the
//! findings they make in every output, suppressions, `--base`, the config's `policies:` and
//! `rules:`, and the safety limits.

mod common;

use std::path::Path;

use common::{envfence, git, json_report, repo_root, write_tree};
use serde_json::Value;

fn examples() -> String {
    repo_root()
        .join("examples/policies")
        .to_string_lossy()
        .into_owned()
}

const CONFIG: &str = "clusters:\n  - name: prod-eu\n    environment: production\n  - name: dev\n    environment: non-production\n";

fn deployment(name: &str, namespace: &str, image: &str, annotations: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {namespace}\n{annotations}\
         spec:\n  template:\n    spec:\n      containers:\n        - name: {name}\n          image: {image}\n"
    )
}

fn team_job(image: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: backfill\n  namespace: payments\n  labels:\n    team: payments\n\
         spec:\n  template:\n    spec:\n      containers:\n        - name: backfill\n          image: {image}\n"
    )
}

const DEFAULT_DENY: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: default-deny\n  namespace: billing\n\
     spec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n";

/// A repository that each example policy finds at fault once: a `latest` image and a team
/// Job on the production cluster, in a namespace without a default-deny NetworkPolicy.
fn violating_repo(dir: &Path) {
    clean_repo(dir);
    write_tree(
        dir,
        &[
            (
                "clusters/prod-eu/payments/api.yaml",
                &deployment("api", "payments", "ghcr.io/acme/api:latest", ""),
            ),
            (
                "clusters/prod-eu/payments/backfill.yaml",
                &team_job("ghcr.io/acme/backfill:2.1.0"),
            ),
        ],
    );
}

/// The same kinds of objects, each where the policies allow it.
fn clean_repo(dir: &Path) {
    let billing = format!(
        "{}---\n{DEFAULT_DENY}",
        deployment("billing", "billing", "ghcr.io/acme/billing:3.0.1", "")
    );
    write_tree(
        dir,
        &[
            (".envfence.yaml", CONFIG),
            ("clusters/prod-eu/billing/api.yaml", &billing),
            (
                "clusters/dev/payments/backfill.yaml",
                &team_job("ghcr.io/acme/backfill:latest"),
            ),
        ],
    );
}

fn scan(dir: &Path, args: &[&str]) -> std::process::Output {
    envfence()
        .arg("scan")
        .arg(dir)
        .args(args)
        .output()
        .expect("runs")
}

fn scan_json(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    json_report(&scan(dir, &all))
}

/// (rule, file, line, status, suppressed) of the Rego findings.
fn rego_findings(report: &Value) -> Vec<(String, String, u64, String, bool)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"].as_str().is_some_and(|r| r.starts_with("rego/")))
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or("").to_owned(),
                f["file"].as_str().unwrap_or("").to_owned(),
                f["line"].as_u64().unwrap_or(0),
                f["status"].as_str().unwrap_or("").to_owned(),
                f["suppressed"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

const TEAM_JOB: &str = "rego/envfence.team_jobs/team-job-on-production";
const LATEST: &str = "rego/envfence.images/latest-tag";
const DEFAULT_DENY_RULE: &str = "rego/envfence.repository.default_deny/missing-default-deny";

#[test]
fn example_policies_and_the_conftest_port_pass_their_tests() {
    for (dir, count) in [("examples/policies", 16), ("examples/conftest-port", 3)] {
        let out = envfence()
            .args(["test-policies", "-v"])
            .arg(repo_root().join(dir))
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{dir}:\n{stdout}");
        assert!(
            stdout.contains(&format!("{count} passed, 0 failed, of {count} tests")),
            "{dir}:\n{stdout}"
        );
    }
}

#[test]
fn a_failing_policy_test_exits_1_and_names_the_test() {
    let tmp = tempfile::tempdir().expect("tmp");
    write_tree(
        tmp.path(),
        &[(
            "p_test.rego",
            "package envfence.p_test\n\ntest_fails if {\n\t1 == 2\n}\n\ntest_passes if true\n",
        )],
    );
    let out = envfence()
        .arg("test-policies")
        .arg(tmp.path())
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL envfence.p_test.test_fails: undefined"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 passed, 1 failed, of 2 tests"),
        "{stdout}"
    );
}

#[test]
fn each_example_policy_finds_its_violation_and_nothing_on_a_clean_repository() {
    let tmp = tempfile::tempdir().expect("tmp");
    clean_repo(tmp.path());
    let clean = scan_json(tmp.path(), &["--policies", &examples()]);
    assert_eq!(rego_findings(&clean), vec![], "{clean:#}");

    violating_repo(tmp.path());
    let report = scan_json(tmp.path(), &["--policies", &examples()]);
    let found = rego_findings(&report);
    let api = "clusters/prod-eu/payments/api.yaml".to_owned();
    let job = "clusters/prod-eu/payments/backfill.yaml".to_owned();
    assert_eq!(
        found,
        vec![
            (
                DEFAULT_DENY_RULE.to_owned(),
                api.clone(),
                1,
                "new".into(),
                false
            ),
            (LATEST.to_owned(), api.clone(), 11, "new".into(), false),
            (TEAM_JOB.to_owned(), job, 1, "new".into(), false),
        ],
        "{report:#}"
    );
    let latest = report["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["rule"] == LATEST))
        .expect("latest finding");
    assert_eq!(latest["severity"], "error");
    assert_eq!(latest["cluster"], "prod-eu");
    assert_eq!(latest["environment"], "production");
    assert_eq!(latest["resource"]["kind"], "Deployment");
    assert!(
        latest["evidence"]
            .as_array()
            .is_some_and(|e| e.iter().any(|h| h["file"] == api.as_str())),
        "{latest:#}"
    );
    assert_eq!(latest["fingerprint"].as_str().map(str::len), Some(16));
}

#[test]
fn rego_findings_appear_in_every_output_format() {
    let tmp = tempfile::tempdir().expect("tmp");
    violating_repo(tmp.path());
    let text = scan(tmp.path(), &["--policies", &examples()]);
    assert_eq!(text.status.code(), Some(1));
    let text = String::from_utf8_lossy(&text.stdout);
    for rule in [TEAM_JOB, LATEST, DEFAULT_DENY_RULE] {
        assert!(text.contains(rule), "text lacks {rule}:\n{text}");
    }

    let sarif = scan(
        tmp.path(),
        &["--policies", &examples(), "--format", "sarif"],
    );
    let sarif: Value = serde_json::from_slice(&sarif.stdout).expect("sarif json");
    let rules = sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules");
    // Declared sets carry the `# METADATA` title; ids named by a message's `rule` are listed.
    let deny = rules
        .iter()
        .find(|r| r["id"] == "rego/envfence.images/deny")
        .expect("declared rule");
    assert_eq!(
        deny["shortDescription"]["text"],
        "No `latest` image tags on production clusters"
    );
    assert!(deny["fullDescription"]["text"]
        .as_str()
        .is_some_and(|t| t.contains("pinned to a version or a digest")));
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    for rule in [TEAM_JOB, LATEST, DEFAULT_DENY_RULE] {
        let result = results
            .iter()
            .find(|r| r["ruleId"] == rule)
            .unwrap_or_else(|| panic!("no SARIF result for {rule}"));
        let index = result["ruleIndex"].as_u64().expect("index") as usize;
        assert_eq!(rules[index]["id"], rule);
    }

    let markdown = scan(
        tmp.path(),
        &["--policies", &examples(), "--format", "markdown"],
    );
    let markdown = String::from_utf8_lossy(&markdown.stdout);
    for rule in [TEAM_JOB, LATEST, DEFAULT_DENY_RULE] {
        assert!(
            markdown.contains(rule),
            "markdown lacks {rule}:\n{markdown}"
        );
    }

    let github = scan(
        tmp.path(),
        &["--policies", &examples(), "--format", "github"],
    );
    let github = String::from_utf8_lossy(&github.stdout);
    assert!(
        github.contains("file=clusters/prod-eu/payments/api.yaml,line=11"),
        "{github}"
    );
}

#[test]
fn suppressions_and_rule_levels_apply_to_rego_rules() {
    let tmp = tempfile::tempdir().expect("tmp");
    violating_repo(tmp.path());
    let annotated = deployment(
        "api",
        "payments",
        "ghcr.io/acme/api:latest",
        "  annotations:\n    envfence.dev/ignore: \"rego/envfence.images/latest-tag: pinned by admission\"\n",
    );
    write_tree(
        tmp.path(),
        &[("clusters/prod-eu/payments/api.yaml", &annotated)],
    );
    let report = scan_json(tmp.path(), &["--policies", &examples()]);
    let found = rego_findings(&report);
    assert!(
        found.iter().any(|f| f.0 == LATEST && f.4),
        "suppressed: {found:?}"
    );
    assert!(
        found.iter().any(|f| f.0 == TEAM_JOB && !f.4),
        "not suppressed: {found:?}"
    );
    // A suppression naming a Rego id is not "an unknown rule".
    let unused = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"] == "unused-suppression")
        .count();
    assert_eq!(unused, 0, "{report:#}");

    // The config's `rules:` and `policies:` take Rego ids and folders.
    std::fs::create_dir_all(tmp.path().join("policies")).expect("mkdir");
    for name in ["team_jobs.rego", "latest_tag.rego"] {
        std::fs::copy(
            repo_root().join("examples/policies").join(name),
            tmp.path().join("policies").join(name),
        )
        .expect("copy");
    }
    let config =
        format!("{CONFIG}policies: policies\nrules:\n  {TEAM_JOB}: warning\n  {LATEST}: off\n");
    write_tree(tmp.path(), &[(".envfence.yaml", &config)]);
    let report = scan_json(tmp.path(), &[]);
    let rules: Vec<(String, String)> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"].as_str().is_some_and(|r| r.starts_with("rego/")))
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or("").to_owned(),
                f["severity"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        vec![(TEAM_JOB.to_owned(), "warning".to_owned())],
        "{report:#}"
    );
}

#[test]
fn base_marks_rego_findings_new_existing_and_fixed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    git(dir, &["init", "-q"]);
    clean_repo(dir);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "clean"]);
    violating_repo(dir);
    let report = scan_json(dir, &["--policies", &examples(), "--base", "HEAD"]);
    let statuses: Vec<String> = rego_findings(&report).into_iter().map(|f| f.3).collect();
    assert_eq!(statuses, vec!["new", "new", "new"], "{report:#}");

    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "violations"]);
    let out = scan(
        dir,
        &[
            "--policies",
            &examples(),
            "--base",
            "HEAD",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "existing findings do not fail");
    let statuses: Vec<String> = rego_findings(&json_report(&out))
        .into_iter()
        .map(|f| f.3)
        .collect();
    assert_eq!(statuses, vec!["existing", "existing", "existing"]);

    std::fs::remove_file(dir.join("clusters/prod-eu/payments/backfill.yaml")).expect("rm");
    let report = scan_json(dir, &["--policies", &examples(), "--base", "HEAD"]);
    let fixed: Vec<String> = rego_findings(&report)
        .into_iter()
        .filter(|f| f.3 == "fixed")
        .map(|f| f.0)
        .collect();
    assert_eq!(fixed, vec![TEAM_JOB.to_owned()], "{report:#}");
}

#[test]
fn a_policy_that_does_not_compile_exits_2_with_file_line_and_column() {
    let tmp = tempfile::tempdir().expect("tmp");
    clean_repo(tmp.path());
    let policies = tmp.path().join("p");
    write_tree(
        &policies,
        &[(
            "broken.rego",
            "package envfence.broken\n\ndeny contains msg if {\n\tmsg := 1 +\n}\n",
        )],
    );
    let out = scan(tmp.path(), &["--policies", &policies.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("broken.rego:4:"), "{stderr}");

    // A network built-in is not there to call.
    write_tree(
        &policies,
        &[(
            "broken.rego",
            "package envfence.broken\n\ndeny contains msg if {\n\tr := http.send({\"method\": \"get\", \"url\": \"http://127.0.0.1:1\"})\n\tmsg := r.body\n}\n",
        )],
    );
    let out = scan(tmp.path(), &["--policies", &policies.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("broken.rego:4:"), "{stderr}");
}

#[test]
fn messages_name_their_own_rule_but_never_a_builtin_id() {
    let tmp = tempfile::tempdir().expect("tmp");
    violating_repo(tmp.path());
    let policies = tmp.path().join("p");
    write_tree(
        &policies,
        &[(
            "own.rego",
            "package envfence.own\n\n\
             warn contains {\"msg\": \"plain\", \"rule\": \"nonprod-on-prod-cluster\"} if {\n\tinput.object.kind == \"Job\"\n\tinput.cluster.name == \"prod-eu\"\n}\n\n\
             deny contains \"a string message\" if {\n\tinput.object.kind == \"Job\"\n\tinput.cluster.name == \"prod-eu\"\n}\n\n\
             violation contains {\"msg\": \"info level\", \"severity\": \"info\", \"location\": {\"file\": \"clusters/prod-eu/billing/api.yaml\", \"line\": 3}} if {\n\tinput.object.kind == \"Job\"\n\tinput.cluster.name == \"prod-eu\"\n}\n",
        )],
    );
    let report = scan_json(tmp.path(), &["--policies", &policies.to_string_lossy()]);
    let mut got: Vec<(String, String, String, u64)> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"].as_str().is_some_and(|r| r.starts_with("rego/")))
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or("").to_owned(),
                f["severity"].as_str().unwrap_or("").to_owned(),
                f["file"].as_str().unwrap_or("").to_owned(),
                f["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    got.sort();
    let job = "clusters/prod-eu/payments/backfill.yaml".to_owned();
    assert_eq!(
        got,
        vec![
            (
                "rego/envfence.own/deny".into(),
                "error".into(),
                job.clone(),
                1
            ),
            (
                "rego/envfence.own/nonprod-on-prod-cluster".into(),
                "warning".into(),
                job,
                1
            ),
            (
                "rego/envfence.own/violation".into(),
                "info".into(),
                "clusters/prod-eu/billing/api.yaml".into(),
                3
            ),
        ],
        "{report:#}"
    );
}

#[test]
fn a_policy_sees_the_topology_and_the_config() {
    let tmp = tempfile::tempdir().expect("tmp");
    violating_repo(tmp.path());
    let policies = tmp.path().join("p");
    write_tree(
        &policies,
        &[(
            "neighbours.rego",
            "package envfence.neighbours\n\n\
             deny contains msg if {\n\
             \tinput.object.kind == \"Job\"\n\
             \tinput.cluster.name == \"prod-eu\"\n\
             \tneighbours := [sprintf(\"%s/%s\", [p.kind, p.name]) | some p in data.envfence.placements[input.cluster.name]; p.file != input.object.file]\n\
             \tmsg := sprintf(\"%s %s %s %s %v %s\", [input.cluster.name, input.cluster.tier, input.workload.class, input.workload.purpose, neighbours, data.envfence.config.clusters[0].name])\n\
             }\n",
        )],
    );
    let report = scan_json(tmp.path(), &["--policies", &policies.to_string_lossy()]);
    let messages: Vec<&str> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"] == "rego/envfence.neighbours/deny")
        .filter_map(|f| f["message"].as_str())
        .collect();
    assert_eq!(
        messages,
        vec![
            "prod-eu production unknown unknown [\"Deployment/billing\", \"NetworkPolicy/default-deny\", \"Deployment/api\"] prod-eu"
        ],
        "{report:#}"
    );
}

/// A rule body that runs out of its time budget (400 million steps), left open for the tests
/// to close.
const SLOW_BODY: &str = "package envfence.slow\n\n\
    deny contains \"never\" if {\n\
    \tsome i in numbers.range(1, 20000)\n\
    \tsome j in numbers.range(1, 20000)\n\
    \ti * j == -1\n";

/// A scan of the violating repository with one policy file, `name` holding `text`.
fn scan_with_one_policy(name: &str, text: &str) -> std::process::Output {
    let tmp = tempfile::tempdir().expect("tmp");
    violating_repo(tmp.path());
    let policies = tmp.path().join("p");
    write_tree(&policies, &[(name, text)]);
    scan(tmp.path(), &["--policies", &policies.to_string_lossy()])
}

/// An evaluation over its time budget is stopped and cut (exit 3, docs/security.md); the rest
/// of the scan goes on.
#[test]
fn an_evaluation_over_its_time_budget_is_cut_and_the_scan_goes_on() {
    let started = std::time::Instant::now();
    let out = scan_with_one_policy("slow.rego", &format!("{SLOW_BODY}}}\n"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(!stderr.contains("error:"), "{stderr}");
    // The report is still written.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Placed 5 of 5 Kubernetes objects"),
        "{stdout}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

/// Rule indexing (docs/policies-rego.md, "What a policy costs"): a set whose bodies require of
/// `input` what no placement has is never handed to the interpreter, so the slow body below,
/// which would run out of its time budget, is never run.
#[test]
fn a_set_whose_conditions_no_placement_meets_is_not_evaluated() {
    let out = scan_with_one_policy(
        "slow.rego",
        &format!("{SLOW_BODY}\tinput.object.kind == \"NoSuchKind\"\n}}\n"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Evaluated, it would stop the scan with exit code 2, as in the test above.
    assert_ne!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("envfence.slow"), "{stderr}");
}

/// A built-in call can build a huge value in one step, which the time budget cannot interrupt:
/// the worker's memory budget ends that evaluation instead, as a cut (docs/security.md).
#[test]
fn a_policy_that_grows_memory_past_the_budget_is_cut() {
    let started = std::time::Instant::now();
    let out = scan_with_one_policy(
        "huge.rego",
        "package envfence.repository.huge\n\n\
         deny contains \"never\" if {\n\
         \tcount(numbers.range(1, 200000000)) < 0\n\
         }\n",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(!stderr.contains("error:"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

/// Policies from a repository's config are untrusted: a reference of thousands of parts would
/// overflow regorus's stack, and deeply nested arrays take its parser exponential time. Both
/// stop the scan with one line instead of aborting or hanging it (docs/security.md).
#[test]
fn policies_that_would_crash_or_hang_the_parser_stop_the_scan_with_one_line() {
    let chain = format!(
        "package envfence.deep\n\ndeny contains \"x\" if {{\n\tinput{} == \"x\"\n}}\n",
        "[\n\"a\"]".repeat(20_000)
    );
    let out = scan_with_one_policy("deep.rego", &chain);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("deep.rego:504:5: a reference of more than 500 parts"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let nested = format!(
        "package envfence.deep\n\ndeny contains \"x\" if {{\n\tinput.a == {}\"x\"{}\n}}\n",
        "[".repeat(30),
        "]".repeat(30)
    );
    let started = std::time::Instant::now();
    let out = scan_with_one_policy("nested.rego", &nested);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("compile time budget"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

/// The placement's facts under the topology JSON's names (`input.workload_class`,
/// `input.cluster_environment`, ...) select and report the same as under the input's own
/// names, which remain (docs/policies-rego.md, "What a policy sees").
#[test]
fn topology_json_names_fire_the_same_as_the_input_names() {
    let tmp = tempfile::tempdir().expect("tmp");
    violating_repo(tmp.path());
    let policies = tmp.path().join("p");
    write_tree(
        &policies,
        &[
            (
                "old.rego",
                "package envfence.old\n\n\
                 deny contains msg if {\n\
                 \tinput.cluster.environment == \"production\"\n\
                 \tinput.workload.class != \"non-production\"\n\
                 \tmsg := sprintf(\"%s %s %s %s %s\", [input.object.name, input.cluster.environment, input.workload.class, input.workload.purpose, input.cluster.environment_signal])\n\
                 }\n\n\
                 warn contains msg if {\n\
                 \tmsg := sprintf(\"%s on %s\", [input.object.name, input.cluster.name])\n\
                 }\n",
            ),
            (
                "new.rego",
                "package envfence.new\n\n\
                 deny contains msg if {\n\
                 \tinput.cluster_environment == \"production\"\n\
                 \tinput.workload_class != \"non-production\"\n\
                 \tmsg := sprintf(\"%s %s %s %s %s\", [input.object.name, input.cluster_environment, input.workload_class, input.purpose, input.cluster.environment_reason])\n\
                 }\n\n\
                 class_reason_agrees if input.workload_class_reason == input.workload.class_signal\n\n\
                 class_reason_agrees if {\n\
                 \tinput.workload.class_signal == null\n\
                 \tinput.workload_class_reason == \"\"\n\
                 }\n\n\
                 purpose_reason_agrees if input.purpose_reason == input.workload.purpose_signal\n\n\
                 purpose_reason_agrees if {\n\
                 \tinput.workload.purpose_signal == null\n\
                 \tinput.purpose_reason == \"\"\n\
                 }\n\n\
                 warn contains msg if {\n\
                 \tclass_reason_agrees\n\
                 \tpurpose_reason_agrees\n\
                 \tsome p in data.envfence.placements[input.cluster.name]\n\
                 \tp.file == input.object.file\n\
                 \tp.line == input.object.line\n\
                 \tp.workload_class == p.class\n\
                 \tp.cluster_environment == input.cluster_environment\n\
                 \tsome c in data.envfence.clusters\n\
                 \tc.name == input.cluster.name\n\
                 \tc.environment_reason == c.environment_signal\n\
                 \tmsg := sprintf(\"%s on %s\", [input.object.name, input.cluster.name])\n\
                 }\n",
            ),
        ],
    );
    let report = scan_json(tmp.path(), &["--policies", &policies.to_string_lossy()]);
    let of = |rule: &str| -> Vec<(String, u64, String)> {
        let mut found: Vec<(String, u64, String)> = report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["rule"] == rule)
            .map(|f| {
                (
                    f["file"].as_str().unwrap_or("").to_owned(),
                    f["line"].as_u64().unwrap_or(0),
                    f["message"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        found.sort();
        found
    };
    let old = of("rego/envfence.old/deny");
    assert!(!old.is_empty(), "{report:#}");
    assert_eq!(old, of("rego/envfence.new/deny"), "{report:#}");
    let every = of("rego/envfence.old/warn");
    assert!(every.len() >= 4, "{report:#}");
    assert_eq!(every, of("rego/envfence.new/warn"), "{report:#}");
}
