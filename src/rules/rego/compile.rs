//! Compiling: policies into one regorus engine, on a thread of its own within the compile
//! time budget, with what the text declares (`heads.rs`) and each set's index (`index.rs`).

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use std::time::Instant;

use regorus::Value;

use super::heads::scan_heads;
use super::input::{object, s};
use super::memory::EVALUATION_MEMORY_BUDGET;
use super::worker::{self, Ended, Process, StartFailure};
use super::{
    check, depth, index, Metadata, Package, RegoPolicies, Source, TestRule, TimeBudgets, PREFIX,
    REPOSITORY_PACKAGE,
};

/// Wall time one evaluation (one set of a package for one placement, or for the repository)
/// may take: the interpreter stops itself at this time, and a worker that has not answered
/// [`KILL_GRACE`] later is killed.
pub const EVALUATION_TIME_BUDGET: Duration = Duration::from_secs(2);

/// Wall time all evaluations of a scan (one side of a diff-aware scan), or all tests of
/// `envfence test-policies`, may take together, from the moment evaluating begins (building
/// the inputs and starting the workers included). What is left when it runs out is not
/// evaluated.
pub const TOTAL_EVALUATION_TIME_BUDGET: Duration = Duration::from_secs(60);

/// How long past its budget an evaluation may take to answer before its worker is killed:
/// the interpreter checks its timer between steps, and answers on its own when it can.
pub const KILL_GRACE: Duration = Duration::from_millis(250);

/// Wall time compiling a scan's policies may take.
pub const COMPILE_TIME_BUDGET: Duration = Duration::from_secs(10);

fn new_engine(evaluation_budget: Duration) -> regorus::Engine {
    let mut engine = regorus::Engine::new();
    // OPA's behaviour: a built-in given the wrong types is undefined, not an error.
    engine.set_strict_builtin_errors(false);
    engine.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
        limit: evaluation_budget,
        check_interval: NonZeroU32::new(1024).unwrap_or(NonZeroU32::MIN),
    });
    engine
}

/// A regorus error on one line: `file:line:col: message` when it points into a policy (its
/// own form is a source excerpt over several lines), else its first line.
pub(super) fn one_line(shown: &str, error: &anyhow::Error) -> String {
    let text = format!("{error:#}");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let at = lines.iter().find_map(|l| l.strip_prefix("--> "));
    let message = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .or_else(|| {
            lines
                .iter()
                .find(|l| !l.is_empty() && !l.starts_with("-->"))
                .copied()
        })
        .unwrap_or("unknown error");
    let line = match at {
        Some(at) => format!("{at}: {message}"),
        None if message.starts_with(shown) => message.to_owned(),
        None => format!("{shown}: {message}"),
    };
    crate::sanitize::text(&line).into_owned()
}

impl RegoPolicies {
    /// Compiles the sources. A file that does not compile is an error naming its
    /// `file:line:col`; so is one that nests too deeply ([`depth`]), and compiling that takes
    /// longer than [`COMPILE_TIME_BUDGET`] is an error too.
    ///
    /// regorus's parser takes time exponential in how deeply arrays, sets and objects nest
    /// (about twice as long per level: 1.7 s for one expression 16 levels deep), and it cannot
    /// be interrupted. So it runs on a thread of its own, and the scan stops waiting at the
    /// budget; the thread is left to end with the process.
    ///
    /// Nothing is evaluated here: a call of a built-in that reaches outside is refused from
    /// the text (`check.rs`), and what regorus finds only when it analyses the policies is
    /// found by a worker process that analyses them (`worker.rs`).
    pub fn compile(sources: &[Source]) -> anyhow::Result<RegoPolicies> {
        let owned = sources.to_vec();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("envfence-rego-compile".into())
            .spawn(move || {
                let _ = tx.send(Self::compile_here(&owned));
            })?;
        match rx.recv_timeout(COMPILE_TIME_BUDGET) {
            Ok(compiled) => compiled,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                anyhow::bail!("the policies could not be compiled: the Rego parser crashed")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => anyhow::bail!(
                "policies did not compile within {} s (the compile time budget; deeply nested \
                 arrays, sets or objects take the parser exponential time)",
                COMPILE_TIME_BUDGET.as_secs()
            ),
        }
    }

    fn compile_here(sources: &[Source]) -> anyhow::Result<RegoPolicies> {
        let started = Instant::now();
        let mut engine = regorus::Engine::new();
        let mut packages: BTreeMap<String, Package> = BTreeMap::new();
        let mut tests = Vec::new();
        for source in sources {
            if let Some(at) = depth::check(&source.text) {
                anyhow::bail!("{}:{at}", source.shown);
            }
            let package = engine
                .add_policy(source.shown.clone(), source.text.clone())
                .map_err(|e| anyhow::anyhow!("{}", one_line(&source.shown, &e)))?;
            let package = package.strip_prefix("data.").unwrap_or(&package).to_owned();
            let heads = scan_heads(&source.text);
            for name in heads.tests {
                tests.push(TestRule {
                    package: package.clone(),
                    name,
                });
            }
            if !package.starts_with(PREFIX) {
                continue;
            }
            let entry = packages.entry(package.clone()).or_insert_with(|| Package {
                name: package.clone(),
                file: source.shown.clone(),
                repository: package == REPOSITORY_PACKAGE
                    || package.starts_with(&format!("{REPOSITORY_PACKAGE}.")),
                sets: Vec::new(),
                metadata: Metadata::default(),
                indexes: Vec::new(),
            });
            if entry.metadata == Metadata::default() {
                entry.metadata = heads.package_metadata;
            }
            for (set, metadata) in heads.sets {
                match entry.sets.iter_mut().find(|(s, _)| *s == set) {
                    Some((_, m)) if *m == Metadata::default() => *m = metadata,
                    Some(_) => {}
                    None => entry.sets.push((set, metadata)),
                }
            }
        }
        let modules = engine.get_modules().clone();
        let shown: Vec<String> = sources.iter().map(|s| s.shown.clone()).collect();
        let found = check::check(&modules, &shown);
        if let Some(refused) = found.refused {
            anyhow::bail!("{}", crate::sanitize::text(&refused));
        }
        for package in packages.values_mut() {
            package.indexes = package
                .sets
                .iter()
                .map(|(set, _)| index::index(&modules, &package.name, set))
                .collect();
        }
        analyse(sources, started + COMPILE_TIME_BUDGET)?;
        Ok(RegoPolicies {
            sources: sources.to_vec(),
            packages: packages.into_values().collect(),
            tests,
            reads_topology: found.reads_topology,
            budgets: TimeBudgets::default(),
        })
    }
}

/// An engine with `sources` compiled and analysed, prints gathered, `topology` as
/// `data.envfence`, and a timer that stops each evaluation at `evaluation_budget`; an error
/// on one line. What a worker does first.
pub(super) fn engine_for(
    sources: &[Source],
    topology: Option<Value>,
    evaluation_budget: Duration,
) -> anyhow::Result<regorus::Engine> {
    let mut engine = new_engine(evaluation_budget);
    // What a policy prints is handed back, never written to standard error.
    engine.set_gather_prints(true);
    for source in sources {
        engine
            .add_policy(source.shown.clone(), source.text.clone())
            .map_err(|e| anyhow::anyhow!("{}", one_line(&source.shown, &e)))?;
    }
    if let Some(topology) = topology {
        engine.add_data(object([(&s("envfence"), topology)]))?;
    }
    // regorus resolves names (unsafe variables, imports) when it first evaluates; a query
    // that reads no rule makes it do so now, without running any policy.
    let shown = sources.first().map_or("policies", |s| s.shown.as_str());
    engine
        .eval_query("true".to_owned(), false)
        .map_err(|e| anyhow::anyhow!("{}", one_line(shown, &e)))?;
    Ok(engine)
}

/// Has the policies analysed as a worker does, so that what regorus reports only then stops
/// the run up front with `file:line:col`. In a worker process when there is one: the analysis
/// runs no policy, but may write warnings to standard error, which a worker keeps from the
/// scan's output.
fn analyse(sources: &[Source], deadline: Instant) -> anyhow::Result<()> {
    let Some(exe) = worker::executable() else {
        return engine_for(sources, None, EVALUATION_TIME_BUDGET).map(drop);
    };
    let budgets = TimeBudgets::default();
    match Process::start(
        exe,
        sources,
        EVALUATION_MEMORY_BUDGET,
        budgets,
        None,
        deadline,
    ) {
        Ok(_) => Ok(()),
        Err(StartFailure::Compile(error)) => anyhow::bail!("{error}"),
        Err(StartFailure::Spawn(error)) => {
            anyhow::bail!("cannot start a process to evaluate Rego policies: {error}")
        }
        // Past the deadline the caller has already given up.
        Err(StartFailure::Ended(Ended::Late)) => anyhow::bail!("policies did not compile in time"),
        Err(StartFailure::Ended(ended)) => {
            anyhow::bail!(
                "the policies could not be analysed: {}",
                ended_cause(&ended)
            )
        }
    }
}

/// A worker's end, in words.
pub(super) fn ended_cause(ended: &Ended) -> String {
    match ended {
        Ended::Late => "it ran past its time budget".to_owned(),
        Ended::Memory => "it grew past its memory budget".to_owned(),
        Ended::Crash(cause) => cause.clone(),
    }
}
