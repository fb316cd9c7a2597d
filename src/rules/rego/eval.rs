//! Evaluation: every package's sets, once for the repository and once per placement, within
//! the memory budget (`memory.rs`) and the message caps; and the `test_` rules of
//! `envfence test-policies`.

use std::sync::Arc;
use std::time::Duration;

use rayon::prelude::*;
use regorus::Value;

use super::compile::one_line;
use super::findings::finding;
use super::input::{object, object_and_cluster, s, Prepared, Shared};
use super::{memory, Package, RegoPolicies};
use crate::budget::BudgetCut;
use crate::findings::{Finding, Location};
use crate::rules::RuleContext;
use crate::topology::Placement;

/// Messages one set may report in one evaluation for one placement; more is a policy defect,
/// reported as an error.
pub const MAX_MESSAGES_PER_PLACEMENT: usize = 100;

/// Messages one set may report in a repository-level evaluation.
pub const MAX_MESSAGES_PER_REPOSITORY: usize = 10_000;

/// Where a finding of one evaluation points by default, and what it is about.
pub(super) struct Subject<'p> {
    pub placement: Option<&'p Placement>,
    pub location: Location,
}

/// What evaluating the policies of a scan yields.
#[derive(Debug, Default)]
pub struct Evaluated {
    pub findings: Vec<Finding>,
    /// The budgets an evaluation hit (its time, memory, or a crash of the interpreter).
    pub cuts: Vec<BudgetCut>,
    /// What the policies printed, one entry per line, unescaped: outputs escape them.
    pub prints: Vec<String>,
}

/// Runs every Rego policy over the topology; `prepared` are the documents' values when they
/// were made ahead.
pub fn run(
    ctx: &RuleContext<'_>,
    rego: &RegoPolicies,
    prepared: Option<Prepared>,
) -> anyhow::Result<Evaluated> {
    if rego.packages.is_empty() {
        return Ok(Evaluated::default());
    }
    let shared = Shared::new(ctx, prepared);
    let mut engine = rego.engine.clone();
    engine.add_data(object([(&s("envfence"), shared.topology.clone())]))?;
    let per_placement: Vec<&Package> = rego.packages.iter().filter(|p| !p.repository).collect();
    let per_repository: Vec<&Package> = rego.packages.iter().filter(|p| p.repository).collect();

    // The repository-level evaluation runs on one thread while the per-placement evaluations
    // share the others, so neither waits for the other.
    let (repository_findings, placement_findings) = memory::watch(|| {
        rayon::join(
            || {
                let mut engine = engine.clone();
                let mut findings = Vec::new();
                for package in &per_repository {
                    let location = Location::new(&Arc::from(package.file.as_str()), 1);
                    let subject = Subject {
                        placement: None,
                        location,
                    };
                    engine.set_input(shared.topology.clone());
                    for (set, _) in &package.sets {
                        findings.extend(evaluate(&mut engine, package, set, &subject, ctx)?);
                    }
                }
                anyhow::Ok(findings)
            },
            || evaluate_placements(&engine, &shared, &per_placement, ctx),
        )
    });
    let mut findings = repository_findings?;
    findings.extend(placement_findings?);
    shared.drop_in_background(engine);
    Ok(Evaluated {
        findings,
        ..Evaluated::default()
    })
}

/// Every per-placement package over every placement (patches excepted), in placement order.
fn evaluate_placements(
    engine: &regorus::Engine,
    shared: &Shared<'_>,
    per_placement: &[&Package],
    ctx: &RuleContext<'_>,
) -> anyhow::Result<Vec<Finding>> {
    if per_placement.is_empty() {
        return Ok(Vec::new());
    }
    let placements: Vec<(usize, &Placement)> = ctx
        .topology
        .placements
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.patch)
        .collect();
    let indexes_read_object_and_cluster = per_placement.iter().all(|package| {
        package
            .indexes
            .iter()
            .all(|index| index.reads_only(&["object", "cluster"]))
    });
    let results: Vec<anyhow::Result<Vec<Finding>>> = placements
        .par_iter()
        .map_init(
            || engine.clone(),
            |engine, &(index, p)| {
                let object = shared.objects[index].clone();
                // The sets that can report anything for this placement (index.rs): asking
                // the interpreter about the others would cost as much and report nothing.
                // Most indexes read only the object and the cluster, which cost little to
                // put together; the whole input is built only for the placements that need it.
                let decide_by = if indexes_read_object_and_cluster {
                    object_and_cluster(object.clone(), shared.cluster_of(p))
                } else {
                    shared.placement_input(object.clone(), p)
                };
                let due: Vec<(&Package, &str)> = per_placement
                    .iter()
                    .flat_map(|package| {
                        package
                            .sets
                            .iter()
                            .zip(&package.indexes)
                            .filter(|(_, index)| index.may_report(&decide_by))
                            .map(move |((set, _), _)| (*package, *set))
                    })
                    .collect();
                let mut out = Vec::new();
                if due.is_empty() {
                    return Ok(out);
                }
                // Built here and dropped after the evaluation, so that the next placement's
                // input reuses the memory (holding every input at once costs page faults).
                let input = if indexes_read_object_and_cluster {
                    shared.placement_input(object, p)
                } else {
                    decide_by
                };
                let subject = Subject {
                    placement: Some(p),
                    location: Location::new(&p.object.file, p.object.line),
                };
                // One input for all the packages: evaluating a rule leaves it as it was.
                engine.set_input(input);
                for (package, set) in due {
                    out.extend(evaluate(engine, package, set, &subject, ctx)?);
                }
                Ok(out)
            },
        )
        .collect();
    let mut findings = Vec::new();
    for result in results {
        findings.extend(result?);
    }
    Ok(findings)
}

/// One evaluation: a set of a package for the input the engine holds.
fn evaluate(
    engine: &mut regorus::Engine,
    package: &Package,
    set: &str,
    subject: &Subject<'_>,
    ctx: &RuleContext<'_>,
) -> anyhow::Result<Vec<Finding>> {
    let mut out = Vec::new();
    let path = format!("data.{}.{set}", package.name);
    let value = engine.eval_rule(path).map_err(|e| {
        let at = match subject.placement {
            Some(p) => format!(" for {}:{}", p.object.file, p.object.line),
            None => " for the repository".to_owned(),
        };
        anyhow::anyhow!(
            "policy {} ({}): evaluating {set}{at} failed: {}",
            package.name,
            package.file,
            one_line(&package.file, &e).trim_start_matches(&format!("{}: ", package.file))
        )
    })?;
    let members: Vec<Value> = match &value {
        Value::Set(items) => items.iter().cloned().collect(),
        Value::Array(items) => items.iter().cloned().collect(),
        Value::Undefined | Value::Null => Vec::new(),
        other => vec![other.clone()],
    };
    let limit = match subject.placement {
        Some(_) => MAX_MESSAGES_PER_PLACEMENT,
        None => MAX_MESSAGES_PER_REPOSITORY,
    };
    if members.len() > limit {
        anyhow::bail!(
            "policy {} ({}): {set} reported {} messages in one evaluation, more than the limit of {limit}",
            package.name,
            package.file,
            members.len()
        );
    }
    for member in members {
        if let Some(f) = finding(package, set, &member, subject, ctx) {
            out.push(f);
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestResult {
    Pass,
    Fail(String),
    Error(String),
}

#[derive(Debug, Clone)]
pub struct TestOutcome {
    pub name: String,
    pub result: TestResult,
    pub duration: Duration,
}

impl RegoPolicies {
    /// Runs the `test_` rules: (package.rule, outcome) in file order.
    pub fn run_tests(&self) -> Vec<TestOutcome> {
        let mut engine = self.engine.clone();
        memory::watch(|| {
            self.tests
                .iter()
                .map(|t| {
                    let name = format!("{}.{}", t.package, t.name);
                    engine.set_input(Value::Undefined);
                    let started = std::time::Instant::now();
                    let result = match engine.eval_rule(format!("data.{name}")) {
                        Ok(Value::Bool(true)) => TestResult::Pass,
                        Ok(Value::Undefined) => TestResult::Fail("undefined".to_owned()),
                        Ok(other) => TestResult::Fail(format!("{other}")),
                        Err(e) => TestResult::Error(one_line(&t.package, &e)),
                    };
                    TestOutcome {
                        name,
                        result,
                        duration: started.elapsed(),
                    }
                })
                .collect()
        })
    }
}
