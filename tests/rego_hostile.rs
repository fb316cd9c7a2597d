//! Hostile Rego policies (issue 25, defects 4–7): a policy that panics the interpreter, one
//! that multiplies big integers or recurses without end, one that prints workflow commands,
//! one that calls `rand.intn`. Each evaluation runs in a worker process (docs/security.md):
//! whatever a policy does ends that evaluation with a budget cut (exit 3) or an error (exit 2)
//! within bounded time, never the scan, and nothing it prints reaches the output. The binary
//! runs under an address-space limit and a timeout; the cuts' details are read through the
//! library, which is told to use the same binary as its worker.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use envfence::budget::{Budget, BudgetCut};
use envfence::config::Config;
use envfence::rules::rego::TimeBudgets;
use envfence::rules::Policies;
use envfence::scan::{self, ScanOptions, ScanReport, Target};
use envfence::topology::helm::HelmChoice;

use common::write_tree;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};

/// Address space of the binary and of each worker it starts (they inherit the limit): what
/// the bounded runs need, far below what the hostile policies would take.
const ADDRESS_SPACE: u64 = 512 << 20;
/// Every run ends well within this, or the test fails.
const TIMEOUT: Duration = Duration::from_secs(30);

const CONFIG: &str = "clusters:\n  - name: prod\n    environment: production\n";

fn deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: shop\n\
         spec:\n  template:\n    spec:\n      containers:\n        - name: {name}\n          image: {image}\n"
    )
}

/// A production cluster with `count` Deployments (`app0` ...), one file each, and one more
/// with a `latest` image that `LATEST` reports: the finding that shows the scan went on.
fn repo(dir: &Path, count: usize) {
    let mut files = vec![
        (".envfence.yaml".to_owned(), CONFIG.to_owned()),
        (
            "clusters/prod/shop/latest.yaml".to_owned(),
            deployment("latest", "ghcr.io/acme/latest:latest"),
        ),
    ];
    for i in 0..count {
        files.push((
            format!("clusters/prod/shop/app{i}.yaml"),
            deployment(&format!("app{i}"), "ghcr.io/acme/app:1.0"),
        ));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    write_tree(dir, &files);
}

/// An ordinary policy beside the hostile one: its finding must survive.
const LATEST: (&str, &str) = (
    "latest.rego",
    "package envfence.latest\n\ndeny contains msg if {\n\tsome i in input.object.images\n\tendswith(i.image, \":latest\")\n\tmsg := sprintf(\"%s is tagged latest\", [i.image])\n}\n",
);

/// A repository of `count` Deployments with the policies `p/<name>` beside it.
fn setup(count: usize, policies: &[(&str, &str)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tmp");
    repo(tmp.path(), count);
    write_tree(&tmp.path().join("p"), policies);
    tmp
}

fn prlimit_available() -> bool {
    std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs the binary with `args` under the address-space limit (when prlimit is there) and
/// the timeout; fails the test if it does not end by itself.
fn envfence_bounded(args: &[&str]) -> std::process::Output {
    let binary = assert_cmd::cargo::cargo_bin("envfence");
    let mut cmd = if prlimit_available() {
        let mut cmd = assert_cmd::Command::new("prlimit");
        cmd.arg(format!("--as={ADDRESS_SPACE}"))
            .arg("--")
            .arg(binary);
        cmd
    } else {
        assert_cmd::Command::new(binary)
    };
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env("ENVFENCE_HELM", "off")
        .timeout(TIMEOUT);
    let started = Instant::now();
    let out = cmd.output().expect("runs");
    assert!(
        started.elapsed() < TIMEOUT,
        "envfence {args:?} did not end within {TIMEOUT:?}: {:?}",
        out.status
    );
    out
}

/// `envfence scan DIR --policies DIR/p --format FORMAT --jobs 2`.
fn scan_bounded(dir: &Path, format: &str) -> std::process::Output {
    let dir = dir.to_string_lossy();
    let policies = format!("{dir}/p");
    envfence_bounded(&[
        "scan",
        &dir,
        "--policies",
        &policies,
        "--format",
        format,
        "--jobs",
        "2",
        "--quiet",
    ])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The same scan through the library, with the binary as its worker, and the time budgets
/// lowered to `budgets`.
fn try_library_scan(dir: &Path, budgets: Option<TimeBudgets>) -> anyhow::Result<ScanReport> {
    envfence::rules::rego::set_worker_executable(PathBuf::from(env!("CARGO_BIN_EXE_envfence")));
    let target = Target::resolve(dir)?;
    let config = Config::discover(&target.display_root, None)?;
    let mut policies = Policies::builtin()?;
    policies.apply_dir(&dir.join("p"), &target.display_root)?;
    if let Some(budgets) = budgets {
        policies.lower_rego_time_budgets(budgets);
    }
    let options = ScanOptions {
        jobs: Some(2),
        helm: HelmChoice::Off,
        ..ScanOptions::default()
    };
    scan::scan(&target, &config, &policies, &options, &|_| {})
}

fn library_scan(dir: &Path, budgets: Option<TimeBudgets>) -> ScanReport {
    try_library_scan(dir, budgets).expect("scans")
}

fn cuts_of(report: &ScanReport, budget: Budget) -> Vec<&BudgetCut> {
    report
        .summary
        .cuts
        .iter()
        .filter(|c| c.budget == budget)
        .collect()
}

fn has_latest_finding(report: &ScanReport) -> bool {
    report
        .findings
        .iter()
        .any(|f| f.rule.as_str() == "rego/envfence.latest/deny")
}

/// A `sprintf` format whose `%` is followed by a character of two bytes: regorus slices the
/// format inside that character and panics. Read from the input, so that only evaluation
/// meets it (a constant format is met by the analysis).
const PANIC: (&str, &str) = (
    "panic.rego",
    "package envfence.panic\n\ndeny contains msg if {\n\tmsg := sprintf(concat(\"\", [\"%\", substring(input.object.name, 0, 0), \"²d\"]), [1])\n}\n",
);

/// A function that calls itself without end: regorus recurses until the stack overflows.
const RECURSION: (&str, &str) = (
    "rec.rego",
    "package envfence.rec\n\nf(x) := y if {\n\ty := f(x + 1)\n}\n\ndeny contains msg if {\n\tmsg := sprintf(\"%v\", [f(1)])\n}\n",
);

/// Workflow commands printed by a policy: they would switch off envfence's annotations and
/// forge one.
const PRINTS: (&str, &str) = (
    "print.rego",
    "package envfence.prints\n\ndeny contains \"never\" if {\n\tprint(\"::stop-commands::pwned\")\n\tprint(\"::error file=forged.yaml::forged\")\n\tfalse\n}\n",
);

/// 27 squarings of a small number (5 for `app0`): one multiplication of the last takes
/// minutes, and the interpreter checks its timer only between steps.
fn big_integers() -> String {
    let mut text = String::from(
        "package envfence.big\n\ndeny contains msg if {\n\tinput.object.name != \"latest\"\n\ta0 := count(input.object.name) + 1\n",
    );
    for i in 1..28 {
        text.push_str(&format!("\ta{i} := a{} * a{}\n", i - 1, i - 1));
    }
    text.push_str("\ta27 > 0\n\tmsg := \"never\"\n}\n");
    text
}

/// Lines of the output that a GitHub Actions runner would take as a workflow command from a
/// policy.
fn forged_commands(out: &std::process::Output) -> Vec<String> {
    let mut all = text(&out.stdout);
    all.push_str(&text(&out.stderr));
    all.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("::stop-commands") || l.starts_with("::error file=forged"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_panic_inside_the_interpreter_is_a_cut_and_the_scan_goes_on() {
    let tmp = setup(1, &[LATEST, PANIC]);
    let out = scan_bounded(tmp.path(), "json");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let report = common::json_report(&out);
    assert!(
        report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["rule"] == "rego/envfence.latest/deny"),
        "{report:#}"
    );

    let report = library_scan(tmp.path(), None);
    assert!(has_latest_finding(&report));
    let crashes = cuts_of(&report, Budget::RegoCrash);
    assert_eq!(crashes.len(), 2, "{crashes:?}");
    let cut = crashes
        .iter()
        .find(|c| c.detail.contains("Deployment shop/app0"))
        .expect("app0's cut");
    assert_eq!(
        cut.location.as_ref().map(ToString::to_string).as_deref(),
        Some("clusters/prod/shop/app0.yaml:1")
    );
    for part in [
        "policy envfence.panic",
        "panic.rego",
        "deny for",
        "on cluster prod",
        "panicked",
    ] {
        assert!(cut.detail.contains(part), "{part}: {cut}");
    }

    // With a constant format, the scan once waited for the compile budget (10 s) and blamed
    // deeply nested arrays.
    let constant =
        "package envfence.panic\n\ndeny contains msg if {\n\tmsg := sprintf(\"%²d\", [1])\n}\n";
    let tmp = setup(1, &[LATEST, ("panic.rego", constant)]);
    let started = Instant::now();
    let out = scan_bounded(tmp.path(), "text");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn big_integer_work_is_stopped_at_the_evaluation_budget() {
    let tmp = setup(1, &[LATEST, ("big.rego", &big_integers())]);
    let started = Instant::now();
    let out = scan_bounded(tmp.path(), "json");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    // One evaluation of 2 s (and its grace), not the minutes the multiplications take.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    let report = library_scan(tmp.path(), None);
    assert!(has_latest_finding(&report));
    let cuts = cuts_of(&report, Budget::RegoTime);
    assert_eq!(cuts.len(), 1, "{cuts:?}");
    assert!(
        cuts[0]
            .detail
            .contains("deny for Deployment shop/app0 on cluster prod ran past its 2 s time budget"),
        "{}",
        cuts[0]
    );
}

#[test]
fn the_evaluations_of_a_scan_share_a_total_time_budget() {
    let tmp = setup(12, &[LATEST, ("big.rego", &big_integers())]);
    let budgets = TimeBudgets {
        evaluation: Duration::from_millis(500),
        total: Duration::from_secs(2),
    };
    let started = Instant::now();
    let report = library_scan(tmp.path(), Some(budgets));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let cuts = cuts_of(&report, Budget::RegoTime);
    let total: Vec<_> = cuts.iter().filter(|c| c.location.is_none()).collect();
    assert_eq!(total.len(), 1, "{cuts:?}");
    assert!(
        total[0]
            .detail
            .contains("ran past their 2 s budget together")
            && total[0].detail.contains("placements were not evaluated"),
        "{}",
        total[0]
    );
    // Those that ran were each stopped at half a second.
    let each: Vec<_> = cuts.iter().filter(|c| c.location.is_some()).collect();
    assert!(!each.is_empty() && each.len() < 12, "{cuts:?}");
    assert!(
        each.iter()
            .all(|c| c.detail.contains("its 0.5 s time budget")),
        "{each:?}"
    );
}

/// A built-in that builds a huge value in one step (a string of 900 MB): the worker's memory
/// watchdog ends it, and that evaluation is cut (under the address-space limit, the
/// allocation fails first: a crash).
#[test]
fn an_evaluation_that_grows_memory_past_the_budget_is_cut() {
    let huge = "package envfence.huge\n\ndeny contains \"never\" if {\n\tinput.object.name == \"app0\"\n\tcount(sprintf(\"%0900000000d\", [1])) < 0\n}\n";
    let tmp = setup(1, &[LATEST, ("huge.rego", huge)]);
    let out = scan_bounded(tmp.path(), "json");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));

    let report = library_scan(tmp.path(), None);
    assert!(has_latest_finding(&report));
    let cuts = cuts_of(&report, Budget::RegoMemory);
    assert_eq!(cuts.len(), 1, "{:?}", report.summary.cuts);
    assert!(
        cuts[0].detail.contains("deny for Deployment shop/app0 on cluster prod grew its worker's memory past the budget"),
        "{}",
        cuts[0]
    );
}

#[test]
fn what_a_policy_prints_never_reaches_the_output() {
    let tmp = setup(1, &[LATEST, PRINTS]);
    for format in ["text", "json", "github", "sarif", "markdown"] {
        let out = scan_bounded(tmp.path(), format);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{format}: {}",
            text(&out.stderr)
        );
        assert_eq!(forged_commands(&out), Vec::<String>::new(), "{format}");
    }

    let report = library_scan(tmp.path(), None);
    let prints = &report.summary.policy_prints;
    assert_eq!(prints.len(), 4, "{prints:?}");
    assert!(
        prints[0].ends_with("print.rego:4: ::stop-commands::pwned"),
        "{prints:?}"
    );
    assert!(
        prints[1].ends_with("print.rego:5: ::error file=forged.yaml::forged"),
        "{prints:?}"
    );
}

#[test]
fn unbounded_recursion_is_a_cut_not_an_abort() {
    let tmp = setup(1, &[LATEST, RECURSION]);
    let out = scan_bounded(tmp.path(), "json");
    // It was 134 (SIGABRT, "thread has overflowed its stack") with no report at all.
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("overflowed"),
        "{}",
        text(&out.stderr)
    );
    let report = common::json_report(&out);
    assert!(report["findings"].as_array().is_some_and(|f| !f.is_empty()));

    let report = library_scan(tmp.path(), None);
    assert!(has_latest_finding(&report));
    let crashes = cuts_of(&report, Budget::RegoCrash);
    assert_eq!(crashes.len(), 2, "{crashes:?}");
    assert!(
        crashes
            .iter()
            .all(|c| c.detail.contains("overflowed its stack")),
        "{crashes:?}"
    );
}

#[test]
fn built_ins_that_reach_outside_are_refused_when_policies_load() {
    // Columns as regorus counts them: a tab is four.
    for (call, column) in [("rand.intn(\"k\", 100)", 10), ("time.now_ns()", 10)] {
        let policy = format!(
            "package envfence.outside\n\ndeny contains msg if {{\n\tx := {call}\n\tmsg := sprintf(\"%v\", [x])\n}}\n"
        );
        let tmp = setup(1, &[("outside.rego", &policy)]);
        let out = scan_bounded(tmp.path(), "text");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{call}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        let name = &call[..call.find('(').unwrap_or(0)];
        assert!(
            stderr.contains(&format!(
                "outside.rego:4:{column}: `{name}` is not available"
            )),
            "{stderr}"
        );
    }
}

#[test]
fn hostile_policy_tests_are_errors_of_their_own() {
    let tests = format!(
        "package envfence.hostile_test\n\n\
         f(x) := y if {{\n\ty := f(x + 1)\n}}\n\n\
         test_recurses if {{\n\tf(1) == 1\n}}\n\n\
         test_panics if {{\n\tsprintf(concat(\"\", [\"%\", \"²d\"]), [1]) == \"\"\n}}\n\n\
         test_big if {{\n\ta0 := 5\n{}\ta27 > 0\n}}\n\n\
         test_prints if {{\n\tprint(\"::stop-commands::pwned\")\n}}\n\n\
         test_passes if true\n",
        (1..28)
            .map(|i| format!("\ta{i} := a{} * a{}\n", i - 1, i - 1))
            .collect::<String>()
    );
    let tmp = tempfile::tempdir().expect("tmp");
    write_tree(tmp.path(), &[("hostile_test.rego", &tests)]);
    let started = Instant::now();
    let out = envfence_bounded(&["test-policies", "-v", &tmp.path().to_string_lossy()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    for line in [
        "ERROR envfence.hostile_test.test_recurses: crashed the interpreter (the interpreter overflowed its stack)",
        "ERROR envfence.hostile_test.test_panics: crashed the interpreter (the interpreter panicked",
        "ERROR envfence.hostile_test.test_big: ran past its 2 s time budget and was stopped",
        "PASS envfence.hostile_test.test_prints",
        "PASS envfence.hostile_test.test_passes",
        "2 passed, 3 failed, of 5 tests",
    ] {
        assert!(stdout.contains(line), "{line}:\n{stdout}");
    }
    // The print is shown, escaped and indented, under its test.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("  /")
                && l.ends_with("hostile_test.rego:48: ::stop-commands::pwned")),
        "{stdout}"
    );
    assert_eq!(forged_commands(&out), Vec::<String>::new());
}

/// Strings for names, formats, patterns and keys: short, with format and escape characters,
/// a character of two bytes, quotes and workflow-command colons.
fn tricky() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9%²\\\\\"':.{}\\[\\] -]{0,8}",
        2 => Just("%²d".to_owned()),
        1 => Just("::stop-commands::x".to_owned()),
        1 => Just("%v%s%d%!".to_owned()),
        1 => Just(String::new()),
    ]
}

/// Plain YAML scalars that the input builder types (null, booleans, numbers) or keeps as text.
const SCALARS: [&str; 12] = [
    "~",
    "true",
    "False",
    "012",
    "1.5",
    "-0",
    "1e400",
    ".inf",
    "0x1F",
    "9223372036854775808",
    "-12",
    "text",
];

#[derive(Debug, Clone)]
struct Object {
    kind: String,
    name: String,
    namespace: Option<String>,
    labels: Vec<(String, String)>,
    images: Vec<String>,
    scalar: usize,
    production: bool,
}

fn object() -> impl Strategy<Value = Object> {
    (
        prop_oneof![
            Just("Deployment".to_owned()),
            Just("Job".to_owned()),
            tricky()
        ],
        tricky(),
        proptest::option::of(tricky()),
        proptest::collection::vec((tricky(), tricky()), 0..3),
        proptest::collection::vec(tricky(), 0..3),
        0..SCALARS.len(),
        any::<bool>(),
    )
        .prop_map(
            |(kind, name, namespace, labels, images, scalar, production)| Object {
                kind,
                name,
                namespace,
                labels,
                images,
                scalar,
                production,
            },
        )
}

impl Object {
    /// The manifest, its strings quoted as JSON (which YAML reads), one scalar plain.
    fn yaml(&self) -> String {
        let q = |t: &str| serde_json::to_string(t).unwrap_or_default();
        let mut text = format!(
            "apiVersion: v1\nkind: {}\nmetadata:\n  name: {}\n",
            q(&self.kind),
            q(&self.name)
        );
        if let Some(ns) = &self.namespace {
            text.push_str(&format!("  namespace: {}\n", q(ns)));
        }
        text.push_str("  labels:\n");
        for (k, v) in &self.labels {
            text.push_str(&format!("    {}: {}\n", q(k), q(v)));
        }
        text.push_str(&format!(
            "spec:\n  x: {}\n  template:\n    spec:\n      containers:\n",
            SCALARS[self.scalar]
        ));
        for image in &self.images {
            text.push_str(&format!(
                "        - name: c\n          image: {}\n",
                q(image)
            ));
        }
        text
    }
}

/// A small policy: a few conditions from `CONDITIONS` and a message from `MESSAGES`, their
/// holes filled with tricky strings and small integers.
#[derive(Debug, Clone)]
struct Policy {
    repository: bool,
    conditions: Vec<usize>,
    message: usize,
    strings: Vec<String>,
    numbers: Vec<i32>,
}

const CONDITIONS: [&str; 15] = [
    "input.object.kind == S",
    "count(input.object.images) > N",
    "startswith(input.object.name, S)",
    "some img in input.object.images",
    "input.cluster.environment == \"production\"",
    "regex.match(S, input.object.name)",
    "x := object.get(input.object.labels, S, S)",
    "n := count(numbers.range(N, N))",
    "some p in data.envfence.placements[input.cluster.name]",
    "print(S, input.object.name)",
    "y := to_number(S)",
    "z := split(input.object.name, S)[N]",
    "json.unmarshal(S)",
    "w := units.parse_bytes(S)",
    "semver.compare(S, \"1.0.0\") > N",
];

const MESSAGES: [&str; 11] = [
    "S",
    "sprintf(S, [input.object.name])",
    "concat(S, [input.object.kind, S])",
    "substring(input.object.name, N, N)",
    "json.marshal(input.object.manifest)",
    "format_int(N, N)",
    "{\"msg\": S, \"rule\": S, \"severity\": S, \"location\": {\"file\": S, \"line\": N}}",
    "upper(trim(input.object.name, S))",
    "base64.decode(S)",
    "sprintf(\"%v\", [input])",
    "hex.decode(S)",
];

fn policy() -> impl Strategy<Value = Policy> {
    (
        prop::bool::weighted(0.2),
        proptest::collection::vec(0..CONDITIONS.len(), 0..3),
        0..MESSAGES.len(),
        proptest::collection::vec(tricky(), 12),
        proptest::collection::vec(-20i32..20, 12),
    )
        .prop_map(
            |(repository, conditions, message, strings, numbers)| Policy {
                repository,
                conditions,
                message,
                strings,
                numbers,
            },
        )
}

impl Policy {
    fn rego(&self, index: usize) -> String {
        let mut strings = self.strings.iter().cycle();
        let mut numbers = self.numbers.iter().cycle();
        let mut fill = |template: &str| {
            let mut out = String::new();
            for c in template.chars() {
                match c {
                    'S' => out.push_str(
                        &serde_json::to_string(strings.next().map_or("", String::as_str))
                            .unwrap_or_default(),
                    ),
                    'N' => out.push_str(&numbers.next().copied().unwrap_or(0).to_string()),
                    c => out.push(c),
                }
            }
            out
        };
        let package = if self.repository {
            format!("envfence.repository.f{index}")
        } else {
            format!("envfence.f{index}")
        };
        let mut text = format!("package {package}\n\ndeny contains msg if {{\n");
        for &c in &self.conditions {
            text.push_str(&format!("\t{}\n", fill(CONDITIONS[c])));
        }
        text.push_str(&format!("\tmsg := {}\n}}\n", fill(MESSAGES[self.message])));
        text
    }
}

/// Bounded fuzzing: random objects on two clusters and random small policies, scanned
/// through the library (input building, the worker protocol, the answers' findings, cuts and
/// prints). Whatever the policies do, the scan returns, with a report or a one-line error.
#[test]
fn random_objects_and_policies_never_panic_the_scan() {
    let strategy = (
        proptest::collection::vec(object(), 1..5),
        proptest::collection::vec(policy(), 1..3),
    );
    let mut runner = TestRunner::new_with_rng(
        RunnerConfig {
            cases: 64,
            failure_persistence: None,
            ..RunnerConfig::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[25; 32]),
    );
    runner
        .run(&strategy, |(objects, policies)| {
            let tmp = tempfile::tempdir().expect("tmp");
            let mut files = vec![(
                ".envfence.yaml".to_owned(),
                "clusters:\n  - name: prod\n    environment: production\n  - name: dev\n    environment: non-production\n".to_owned(),
            )];
            for (i, o) in objects.iter().enumerate() {
                let cluster = if o.production { "prod" } else { "dev" };
                files.push((format!("clusters/{cluster}/o{i}.yaml"), o.yaml()));
            }
            for (i, p) in policies.iter().enumerate() {
                files.push((format!("p/f{i}.rego"), p.rego(i)));
            }
            let files: Vec<(&str, &str)> =
                files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
            write_tree(tmp.path(), &files);
            let started = Instant::now();
            match try_library_scan(tmp.path(), None) {
                Ok(report) => {
                    for cut in &report.summary.cuts {
                        prop_assert!(!cut.detail.contains('\n'), "{cut}");
                    }
                    for line in &report.summary.policy_prints {
                        prop_assert!(!line.contains('\n'), "{line:?}");
                    }
                }
                Err(e) => {
                    let line = format!("{e:#}");
                    prop_assert!(!line.contains('\n'), "{line}");
                }
            }
            prop_assert!(started.elapsed() < Duration::from_secs(20));
            Ok(())
        })
        .expect("no panic, one line per error");
}
