//! Evaluation: every package's sets, once for the repository and once per placement, and the
//! `test_` rules of `envfence test-policies`, run by `pool.rs` in worker processes within the
//! time and memory budgets; the answers become findings, budget cuts and printed lines.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use regorus::Value;

use super::findings::finding;
use super::input::{object_and_cluster, Prepared, Shared};
use super::pool::{self, Done, Input, Plan, Work};
use super::query::{Answer, Outcome, Query, MAX_PRINTED_LINES};
use super::{Package, RegoPolicies};
use crate::budget::{Budget, BudgetCut};
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
    /// The budgets an evaluation hit (its time, memory, or a crash of the interpreter), and
    /// the scan-wide time budget when it ran out.
    pub cuts: Vec<BudgetCut>,
    /// What the policies printed, one entry per line (`file:line: text`), unescaped: outputs
    /// escape them. At most [`MAX_PRINTED_LINES`], then one line that counts the rest.
    pub prints: Vec<String>,
}

/// What one piece of a scan's work evaluates.
enum Job {
    /// A repository-level package (index into the packages), over the topology.
    Repository(usize),
    /// The per-placement packages over one placement (index into the placements).
    Placement(usize),
}

/// Which sets a job evaluates, and its input.
struct Jobs<'a> {
    ctx: &'a RuleContext<'a>,
    rego: &'a RegoPolicies,
    shared: &'a Shared<'a>,
    jobs: Vec<Job>,
    /// Packages evaluated per placement.
    per_placement: Vec<usize>,
    /// Every index reads only `input.object` and `input.cluster`.
    indexes_read_object_and_cluster: bool,
}

impl Jobs<'_> {
    /// The sets `job` evaluates (package, set), and the placement's whole input when deciding
    /// them built it.
    fn due(&self, job: &Job) -> (Vec<(usize, &'static str)>, Option<Value>) {
        let index = match job {
            Job::Repository(package) => {
                let sets = self.rego.packages[*package].sets.iter();
                return (sets.map(|(set, _)| (*package, *set)).collect(), None);
            }
            Job::Placement(index) => *index,
        };
        let p = &self.ctx.topology.placements[index];
        let object = self.shared.objects[index].clone();
        // The sets that can report anything for this placement (index.rs): asking the
        // interpreter about the others would cost as much and report nothing. Most indexes
        // read only the object and the cluster, which cost little to put together; the whole
        // input is built only for the placements that need it.
        let decide_by = if self.indexes_read_object_and_cluster {
            object_and_cluster(object, self.shared.cluster_of(p))
        } else {
            self.shared.placement_input(object, p)
        };
        let due = self
            .per_placement
            .iter()
            .flat_map(|&index| {
                let package = &self.rego.packages[index];
                package
                    .sets
                    .iter()
                    .zip(&package.indexes)
                    .filter(|(_, set_index)| set_index.may_report(&decide_by))
                    .map(move |((set, _), _)| (index, *set))
            })
            .collect();
        let whole = (!self.indexes_read_object_and_cluster).then_some(decide_by);
        (due, whole)
    }

    /// What job `index` asks the interpreter; `None` when no set is due.
    fn work(&self, index: usize) -> Option<Work> {
        let job = &self.jobs[index];
        let (due, whole) = self.due(job);
        if due.is_empty() {
            return None;
        }
        let limit = match job {
            Job::Repository(_) => MAX_MESSAGES_PER_REPOSITORY,
            Job::Placement(_) => MAX_MESSAGES_PER_PLACEMENT,
        };
        let queries = due
            .iter()
            .map(|&(package, set)| {
                let package = &self.rego.packages[package];
                Query {
                    path: format!("data.{}.{set}", package.name),
                    shown: package.file.clone(),
                    limit: Some(limit),
                }
            })
            .collect();
        let input = match job {
            Job::Repository(_) => Input::Topology,
            // Built here and dropped after the evaluation, so that the next placement's input
            // reuses the memory (holding every input at once costs page faults).
            Job::Placement(index) => Input::Value(whole.unwrap_or_else(|| {
                let p = &self.ctx.topology.placements[*index];
                self.shared
                    .placement_input(self.shared.objects[*index].clone(), p)
            })),
        };
        Some(Work { queries, input })
    }

    /// Where a job's findings and cuts point, and what it is about.
    fn subject(&self, job: &Job) -> Subject<'_> {
        match job {
            Job::Repository(package) => Subject {
                placement: None,
                location: Location::new(&Arc::from(self.rego.packages[*package].file.as_str()), 1),
            },
            Job::Placement(index) => {
                let p = &self.ctx.topology.placements[*index];
                Subject {
                    placement: Some(p),
                    location: Location::new(&p.object.file, p.object.line),
                }
            }
        }
    }
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
    let started = Instant::now();
    let shared = Shared::new(ctx, prepared);
    let per_placement: Vec<usize> = (0..rego.packages.len())
        .filter(|&i| !rego.packages[i].repository)
        .collect();
    // The repository-level evaluations first: each is long and serial, and the placements
    // fill the other workers meanwhile.
    let mut jobs: Vec<Job> = (0..rego.packages.len())
        .filter(|&i| rego.packages[i].repository)
        .map(Job::Repository)
        .collect();
    if !per_placement.is_empty() {
        let placements = ctx.topology.placements.iter().enumerate();
        jobs.extend(
            placements
                .filter(|(_, p)| !p.patch)
                .map(|(i, _)| Job::Placement(i)),
        );
    }
    let indexes_read_object_and_cluster = per_placement.iter().all(|&package| {
        rego.packages[package]
            .indexes
            .iter()
            .all(|index| index.reads_only(&["object", "cluster"]))
    });
    let needs_topology =
        rego.reads_topology || jobs.iter().any(|j| matches!(j, Job::Repository(_)));
    let jobs = Jobs {
        ctx,
        rego,
        shared: &shared,
        jobs,
        per_placement,
        indexes_read_object_and_cluster,
    };
    let plan = Plan {
        rego,
        topology: needs_topology.then_some(&shared.topology),
        repeated: &shared.objects,
        count: jobs.jobs.len(),
        singles: jobs
            .jobs
            .iter()
            .filter(|j| matches!(j, Job::Repository(_)))
            .count(),
        deadline: started + rego.budgets.total,
    };
    let done = pool::run(&plan, &|index| jobs.work(index))?;
    let evaluated = assemble(&jobs, done);
    drop(jobs);
    shared.drop_in_background();
    evaluated
}

/// The answers, in job order, as findings, cuts and printed lines; the first evaluation
/// error is the run's error.
fn assemble(jobs: &Jobs<'_>, done: Vec<Done>) -> anyhow::Result<Evaluated> {
    let rego = jobs.rego;
    let sets: HashMap<String, (usize, &'static str)> = rego
        .packages
        .iter()
        .enumerate()
        .flat_map(|(index, package)| {
            package
                .sets
                .iter()
                .map(move |(set, _)| (format!("data.{}.{set}", package.name), (index, *set)))
        })
        .collect();
    let mut evaluated = Evaluated::default();
    let mut printed = Printed::default();
    let (mut placements_left, mut packages_left) = (0usize, 0usize);
    for (job, done) in jobs.jobs.iter().zip(done) {
        let subject = jobs.subject(job);
        let mut left_out = false;
        match done {
            None => left_out = !jobs.due(job).0.is_empty(),
            Some((queries, answers)) => {
                for (query, answer) in queries.iter().zip(answers) {
                    printed.add(&answer);
                    let Some(&(package, set)) = sets.get(&query.path) else {
                        continue;
                    };
                    let package = &rego.packages[package];
                    match answer.outcome {
                        Outcome::Messages(messages) => evaluated.findings.extend(
                            messages
                                .iter()
                                .filter_map(|m| finding(package, set, m, &subject, jobs.ctx)),
                        ),
                        Outcome::Error(error) => {
                            let at = match subject.placement {
                                Some(p) => format!(" for {}:{}", p.object.file, p.object.line),
                                None => " for the repository".to_owned(),
                            };
                            anyhow::bail!(
                                "policy {} ({}): evaluating {set}{at} failed: {}",
                                package.name,
                                package.file,
                                error.trim_start_matches(&format!("{}: ", package.file))
                            );
                        }
                        Outcome::TooMany(count) => anyhow::bail!(
                            "policy {} ({}): {set} reported {count} messages in one evaluation, more than the limit of {}",
                            package.name,
                            package.file,
                            query.limit.unwrap_or_default()
                        ),
                        Outcome::Skipped => left_out = true,
                        Outcome::Passed | Outcome::Failed(_) => {}
                        outcome => evaluated.cuts.push(cut(
                            &outcome,
                            package,
                            set,
                            &subject,
                            jobs.ctx,
                            rego.budgets.evaluation,
                        )),
                    }
                }
            }
        }
        if left_out {
            match job {
                Job::Repository(_) => packages_left += 1,
                Job::Placement(_) => placements_left += 1,
            }
        }
    }
    if placements_left + packages_left > 0 {
        let mut parts = Vec::new();
        if placements_left > 0 {
            parts.push(format!("{placements_left} placements"));
        }
        if packages_left > 0 {
            parts.push(format!("{packages_left} repository-level packages"));
        }
        evaluated.cuts.push(BudgetCut::new(
            Budget::RegoTime,
            None,
            format!(
                "the Rego evaluations of this scan ran past their {} budget together: {} \
                 were not evaluated, and their findings are missing",
                seconds(rego.budgets.total),
                parts.join(" and ")
            ),
        ));
    }
    evaluated.prints = printed.finish();
    Ok(evaluated)
}

/// `2 s`, `0.5 s`.
fn seconds(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// The budget an evaluation hit, located at the placement (or the policy file of a
/// repository-level package) and naming the policy, the set and the object.
fn cut(
    outcome: &Outcome,
    package: &Package,
    set: &str,
    subject: &Subject<'_>,
    ctx: &RuleContext<'_>,
    evaluation_budget: Duration,
) -> BudgetCut {
    let what = match subject.placement {
        Some(p) => {
            let name = p.object.name.as_deref().unwrap_or("(unnamed)");
            let name = match p.object.namespace.as_deref() {
                Some(namespace) => format!("{namespace}/{name}"),
                None => name.to_owned(),
            };
            let cluster = ctx.topology.clusters.get(p.cluster).map_or("", |c| &c.name);
            format!("{} {name} on cluster {cluster}", p.object.kind)
        }
        None => "the repository".to_owned(),
    };
    let policy = format!(
        "policy {} ({}): {set} for {what}",
        package.name, package.file
    );
    let (budget, happened) = match outcome {
        Outcome::Time => (
            Budget::RegoTime,
            format!(
                "ran past its {} time budget and was stopped",
                seconds(evaluation_budget)
            ),
        ),
        Outcome::Memory => (
            Budget::RegoMemory,
            "grew its worker's memory past the budget and was stopped".to_owned(),
        ),
        Outcome::Crash(cause) => (
            Budget::RegoCrash,
            format!("crashed the interpreter ({cause})"),
        ),
        _ => (Budget::RegoCrash, "ended without an answer".to_owned()),
    };
    let detail = format!("{policy} {happened}; its findings there are missing");
    BudgetCut::new(
        budget,
        Some(subject.location.clone()),
        crate::sanitize::text(&detail).into_owned(),
    )
}

/// Printed lines, kept up to [`MAX_PRINTED_LINES`].
#[derive(Default)]
struct Printed {
    lines: Vec<String>,
    left_out: usize,
}

impl Printed {
    fn add(&mut self, answer: &Answer) {
        for line in &answer.prints {
            if self.lines.len() < MAX_PRINTED_LINES {
                self.lines.push(line.clone());
            } else {
                self.left_out += 1;
            }
        }
        self.left_out += answer.prints_left_out;
    }

    fn finish(mut self) -> Vec<String> {
        if self.left_out > 0 {
            self.lines.push(format!(
                "({} more printed lines left out: at most {MAX_PRINTED_LINES} are kept)",
                self.left_out
            ));
        }
        self.lines
    }
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
    /// What the test printed, one entry per line, unescaped.
    pub prints: Vec<String>,
}

impl RegoPolicies {
    /// Runs the `test_` rules: (package.rule, outcome) in file order. Each test is an
    /// evaluation with its time and memory budgets, and the tests together have the
    /// scan-wide time budget; a test that runs past one, or crashes the interpreter, is an
    /// error of that test.
    pub fn run_tests(&self) -> anyhow::Result<Vec<TestOutcome>> {
        let started = Instant::now();
        let queries: Vec<Query> = self
            .tests
            .iter()
            .map(|t| Query {
                path: format!("data.{}.{}", t.package, t.name),
                shown: t.package.clone(),
                limit: None,
            })
            .collect();
        let plan = Plan {
            rego: self,
            topology: None,
            repeated: &[],
            count: queries.len(),
            singles: 0,
            deadline: started + self.budgets.total,
        };
        let done = pool::run(&plan, &|index| {
            Some(Work {
                queries: vec![queries[index].clone()],
                input: Input::Undefined,
            })
        })?;
        let outcomes = self
            .tests
            .iter()
            .zip(done)
            .map(|(t, done)| {
                let answer = done
                    .and_then(|(_, answers)| answers.into_iter().next())
                    .unwrap_or_else(|| Answer::bare(Outcome::Skipped));
                let result = match answer.outcome {
                    Outcome::Passed => TestResult::Pass,
                    Outcome::Failed(got) => TestResult::Fail(got),
                    Outcome::Error(error) => TestResult::Error(error),
                    Outcome::Time => TestResult::Error(format!(
                        "ran past its {} time budget and was stopped",
                        seconds(self.budgets.evaluation)
                    )),
                    Outcome::Memory => {
                        TestResult::Error("grew past the memory budget and was stopped".to_owned())
                    }
                    Outcome::Crash(cause) => {
                        TestResult::Error(format!("crashed the interpreter ({cause})"))
                    }
                    Outcome::Skipped => TestResult::Error(format!(
                        "not run: the tests ran past their {} budget together",
                        seconds(self.budgets.total)
                    )),
                    Outcome::Messages(_) | Outcome::TooMany(_) => {
                        TestResult::Error("not a test".to_owned())
                    }
                };
                TestOutcome {
                    name: format!("{}.{}", t.package, t.name),
                    result,
                    duration: answer.duration,
                    prints: answer.prints,
                }
            })
            .collect();
        Ok(outcomes)
    }
}
