//! Running evaluations: pieces of work (queries over one input) handed to a few worker
//! processes (`worker.rs`), each driven by a thread of the parent that builds the inputs,
//! sends them in small batches, and waits for each answer no longer than the per-evaluation
//! budget allows. A worker that overruns it, passes its memory budget or crashes is replaced,
//! and the rest of its batch goes to the new one. Once the scan-wide budget is spent, nothing
//! more is started.
//!
//! Without a worker executable (library unit tests) the work runs in this process instead,
//! on rayon's threads: the interpreter's own timer and a caught panic still end an
//! evaluation, but a stack overflow ends the process, and one step of the interpreter that
//! outlasts the budget is waited for.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use rayon::prelude::*;
use regorus::Value;

use super::compile::{ended_cause, engine_for, KILL_GRACE};
use super::memory::{self, EVALUATION_MEMORY_BUDGET};
use super::query::{ask, Answer, Outcome, Query};
use super::wire;
use super::worker::{self, Ended, FromWorker, InputKind, Item, Process, StartFailure, ToWorker};
use super::RegoPolicies;

/// Worker processes one scan starts at most (fewer with fewer threads, or less work).
pub const MAX_WORKERS: usize = 4;

/// The smallest memory budget of one worker.
const MIN_WORKER_MEMORY: u64 = 256 << 20;

/// The input of a piece of work.
pub(super) enum Input {
    Value(Value),
    /// The topology (the repository-level input).
    Topology,
    /// None (`test_` rules).
    Undefined,
}

/// Queries over one input.
pub(super) struct Work {
    pub queries: Vec<Query>,
    pub input: Input,
}

/// A piece of work's queries with their answers, in order (as many answers as queries);
/// `None` when it was not started: the scan-wide budget ran out, or an evaluation error
/// stopped the run.
pub(super) type Done = Option<(Vec<Query>, Vec<Answer>)>;

/// What to run.
pub(super) struct Plan<'a> {
    pub rego: &'a RegoPolicies,
    /// The topology, when an input or the policies' data needs it.
    pub topology: Option<&'a Value>,
    /// Values of the topology that inputs hold again (each placement's `input.object`): a
    /// worker that has the topology gets them in an input by number (`wire.rs`).
    pub repeated: &'a [Value],
    /// Pieces of work, asked for by index.
    pub count: usize,
    /// The first pieces are long (repository-level evaluations): each is a batch of its own,
    /// so that no other work waits behind it.
    pub singles: usize,
    /// When the scan-wide budget runs out.
    pub deadline: Instant,
}

/// Whether an answer stops the run (an error exits 2: what comes after it is not needed).
fn stops(answer: &Answer) -> bool {
    matches!(answer.outcome, Outcome::Error(_) | Outcome::TooMany(_))
}

/// Runs `work(i)` for every `i` below `plan.count` (`None`: nothing to evaluate); the
/// result of each, by index. An error is a failure to run at all (a worker that cannot be
/// started); how each evaluation ended is in its answer.
pub(super) fn run(
    plan: &Plan<'_>,
    work: &(dyn Fn(usize) -> Option<Work> + Sync),
) -> anyhow::Result<Vec<Done>> {
    if plan.count == 0 {
        return Ok(Vec::new());
    }
    match worker::executable() {
        Some(exe) => in_workers(exe, plan, work),
        None => here(plan, work),
    }
}

fn in_workers(
    exe: &std::path::Path,
    plan: &Plan<'_>,
    work: &(dyn Fn(usize) -> Option<Work> + Sync),
) -> anyhow::Result<Vec<Done>> {
    let workers = rayon::current_num_threads()
        .clamp(1, MAX_WORKERS)
        .min(plan.count);
    let drive = Drive {
        exe,
        plan,
        work,
        topology: OnceLock::new(),
        memory_budget: (EVALUATION_MEMORY_BUDGET / workers as u64).max(MIN_WORKER_MEMORY),
        batch: (plan.count / (workers * 8)).clamp(1, 32),
        next: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    };
    let outputs: Vec<anyhow::Result<Vec<(usize, Done)>>> = std::thread::scope(|scope| {
        let drivers: Vec<_> = (0..workers).map(|_| scope.spawn(|| drive.run())).collect();
        drivers
            .into_iter()
            .map(|d| {
                d.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a Rego evaluation thread panicked")))
            })
            .collect()
    });
    let mut results: Vec<Done> = (0..plan.count).map(|_| None).collect();
    for output in outputs {
        for (index, done) in output? {
            results[index] = done;
        }
    }
    Ok(results)
}

/// What the driving threads share.
struct Drive<'a> {
    exe: &'a std::path::Path,
    plan: &'a Plan<'a>,
    work: &'a (dyn Fn(usize) -> Option<Work> + Sync),
    /// The topology encoded (`wire.rs`), by the first thread that needs it, with the values
    /// of [`Plan::repeated`] it kept.
    topology: OnceLock<Option<(Vec<u8>, wire::Kept)>>,
    memory_budget: u64,
    /// Pieces of work taken at once.
    batch: usize,
    next: AtomicUsize,
    /// Set when an answer stops the run.
    stop: AtomicBool,
}

/// A piece of work being answered.
struct Pending {
    index: usize,
    work: Work,
    answers: Vec<Answer>,
}

impl Pending {
    fn answered(&self) -> bool {
        self.answers.len() == self.work.queries.len()
    }
}

impl Drive<'_> {
    /// One driving thread: takes batches until the work, or the time, runs out.
    fn run(&self) -> anyhow::Result<Vec<(usize, Done)>> {
        let mut out = Vec::new();
        let mut process: Option<Process> = None;
        loop {
            if self.stop.load(Ordering::Relaxed) || Instant::now() >= self.plan.deadline {
                break;
            }
            let first = self.take();
            if first.start >= self.plan.count {
                break;
            }
            let mut batch = Vec::new();
            for index in first.start..first.end.min(self.plan.count) {
                match (self.work)(index) {
                    Some(work) => batch.push(Pending {
                        index,
                        work,
                        answers: Vec::new(),
                    }),
                    None => out.push((index, Some((Vec::new(), Vec::new())))),
                }
            }
            let mut from = 0;
            while from < batch.len() && Instant::now() < self.plan.deadline {
                let mut worker = match process.take() {
                    Some(worker) => worker,
                    None => match self.start() {
                        Ok(Some(worker)) => worker,
                        // The scan-wide budget ran out while it started.
                        Ok(None) => break,
                        Err(e) => {
                            self.stop.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                    },
                };
                let kept = self.exchange(&mut worker, &mut batch[from..]);
                if kept {
                    process = Some(worker);
                }
                while from < batch.len() && batch[from].answered() {
                    from += 1;
                }
            }
            for mut pending in batch {
                // What the scan-wide budget left out.
                while !pending.answered() {
                    pending.answers.push(Answer::bare(Outcome::Skipped));
                }
                if pending.answers.iter().any(stops) {
                    self.stop.store(true, Ordering::Relaxed);
                }
                out.push((pending.index, Some((pending.work.queries, pending.answers))));
            }
        }
        Ok(out)
    }

    fn topology(&self) -> Option<&(Vec<u8>, wire::Kept)> {
        self.topology
            .get_or_init(|| {
                self.plan.topology.map(|value| {
                    let keep = self
                        .plan
                        .repeated
                        .iter()
                        .filter_map(wire::identity)
                        .collect();
                    let mut bytes = Vec::new();
                    let kept = wire::encode_keeping(value, &keep, &mut bytes);
                    (bytes, kept)
                })
            })
            .as_ref()
    }

    /// The next pieces of work to do.
    fn take(&self) -> std::ops::Range<usize> {
        let mut start = self.next.load(Ordering::Relaxed);
        loop {
            let size = if start < self.plan.singles {
                1
            } else {
                self.batch
            };
            match self.next.compare_exchange_weak(
                start,
                start + size,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return start..start + size,
                Err(now) => start = now,
            }
        }
    }

    /// A fresh worker; `None` when the scan-wide budget ran out meanwhile.
    fn start(&self) -> anyhow::Result<Option<Process>> {
        let plan = self.plan;
        let topology = if plan.rego.reads_topology {
            self.topology().map(|(bytes, _)| (bytes.as_slice(), true))
        } else {
            None
        };
        match Process::start(
            self.exe,
            &plan.rego.sources,
            self.memory_budget,
            plan.rego.budgets,
            topology,
            plan.deadline,
        ) {
            Ok(worker) => Ok(Some(worker)),
            Err(StartFailure::Ended(Ended::Late)) => Ok(None),
            Err(StartFailure::Compile(error)) => anyhow::bail!("{error}"),
            Err(StartFailure::Spawn(error)) => {
                anyhow::bail!("cannot start a process to evaluate Rego policies: {error}")
            }
            Err(StartFailure::Ended(ended)) => anyhow::bail!(
                "a process evaluating Rego policies ended as it started: {}",
                ended_cause(&ended)
            ),
        }
    }

    /// Sends what `batch` still asks and takes the answers as they come. `false` when the
    /// worker had to go (killed, crashed, or out of memory): the evaluation it was on has its
    /// answer, and the rest of the batch is for the next worker.
    fn exchange(&self, worker: &mut Process, batch: &mut [Pending]) -> bool {
        let plan = self.plan;
        let needs_topology = batch
            .iter()
            .any(|p| matches!(p.work.input, Input::Topology));
        let mut sent = Ok(());
        if needs_topology && !worker.has_topology {
            let bytes = self.topology().map_or(&[0u8][..], |(bytes, _)| bytes);
            sent = worker.send(&ToWorker::Topology, &[bytes]);
            worker.has_topology = true;
        }
        if sent.is_ok() {
            let mut items = Vec::with_capacity(batch.len());
            // The inputs in one buffer, each frame a range of it.
            let mut bytes = Vec::with_capacity(batch.len() << 12);
            let mut ranges = Vec::new();
            for pending in batch.iter() {
                let input = match &pending.work.input {
                    Input::Value(value) => {
                        let start = bytes.len();
                        match self.topology().filter(|_| worker.has_topology) {
                            Some((_, kept)) => wire::encode_referring(value, kept, &mut bytes),
                            None => wire::encode(value, &mut bytes),
                        }
                        ranges.push(start..bytes.len());
                        InputKind::Inline
                    }
                    Input::Topology => InputKind::Topology,
                    Input::Undefined => InputKind::Undefined,
                };
                let queries = pending.work.queries[pending.answers.len()..].to_vec();
                items.push(Item { input, queries });
            }
            let frames: Vec<&[u8]> = ranges.into_iter().map(|r| &bytes[r]).collect();
            sent = worker.send(&ToWorker::Evaluate { items }, &frames);
        }
        let mut last = Instant::now();
        for pending in batch.iter_mut() {
            while !pending.answered() {
                let budget = last + plan.rego.budgets.evaluation + KILL_GRACE;
                let received = match &sent {
                    Ok(()) => worker.receive(budget.min(plan.deadline)),
                    Err(ended) => Err(ended.clone()),
                };
                let outcome = match received {
                    Ok(FromWorker::Answer(answer)) => {
                        last = Instant::now();
                        pending.answers.push(answer);
                        continue;
                    }
                    Ok(_) => Outcome::Crash("the worker answered out of turn".to_owned()),
                    Err(Ended::Late) if budget > plan.deadline => Outcome::Skipped,
                    Err(Ended::Late) => Outcome::Time,
                    Err(Ended::Memory) => Outcome::Memory,
                    Err(Ended::Crash(cause)) => Outcome::Crash(cause),
                };
                pending.answers.push(Answer::bare(outcome));
                return false;
            }
        }
        true
    }
}

/// The work in this process, without a worker executable.
fn here(
    plan: &Plan<'_>,
    work: &(dyn Fn(usize) -> Option<Work> + Sync),
) -> anyhow::Result<Vec<Done>> {
    let rego = plan.rego;
    let data = plan.topology.filter(|_| rego.reads_topology).cloned();
    let engine = engine_for(&rego.sources, data, rego.budgets.evaluation)?;
    let stop = AtomicBool::new(false);
    let done = memory::watch(|| {
        (0..plan.count)
            .into_par_iter()
            .map_init(
                || engine.clone(),
                |local, index| {
                    if stop.load(Ordering::Relaxed) || Instant::now() >= plan.deadline {
                        return None;
                    }
                    let Some(work) = work(index) else {
                        return Some((Vec::new(), Vec::new()));
                    };
                    let input = match work.input {
                        Input::Value(value) => value,
                        Input::Topology => plan.topology.cloned().unwrap_or(Value::Null),
                        Input::Undefined => Value::Undefined,
                    };
                    local.set_input(input.clone());
                    let mut answers = Vec::with_capacity(work.queries.len());
                    for query in &work.queries {
                        let answer = ask(local, query);
                        if matches!(answer.outcome, Outcome::Crash(_)) {
                            // A panic may leave the interpreter in any state.
                            *local = engine.clone();
                            local.set_input(input.clone());
                        }
                        if stops(&answer) {
                            stop.store(true, Ordering::Relaxed);
                        }
                        answers.push(answer);
                    }
                    Some((work.queries, answers))
                },
            )
            .collect()
    });
    crate::background::drop_in_background(engine);
    Ok(done)
}
