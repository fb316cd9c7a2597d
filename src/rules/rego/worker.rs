//! Worker processes: Rego evaluated in a child process, so that no policy can hang, crash or
//! outgrow the scan (docs/security.md).
//!
//! A stack overflow cannot be caught in Rust, and a step of the interpreter (a big-integer
//! multiplication, a built-in building a huge value) cannot be interrupted. So the `envfence`
//! binary starts itself again as `envfence __rego-worker` ([`set_executable`] tells the library
//! its path; [`serve`] is that command), and the parent can always stop waiting, kill the
//! worker and start a fresh one.
//!
//! The worker reads frames on standard input and writes frames on standard output: a frame is
//! its length (8 bytes, little-endian) and its bytes. The parent sends [`ToWorker`] messages as
//! JSON; the topology and each input follow their message as frames of their own, in the
//! encoding of `wire.rs`. The
//! worker answers `Init` with [`FromWorker::Ready`] (or the compile error), and each query of
//! an `Evaluate` with one [`FromWorker::Answer`], in order, as soon as it is evaluated.
//!
//! A worker is started with an empty environment; its standard error is read by the parent
//! and never shown (a crash is described from it). It ends when its input closes, when its
//! parent goes away ([`ProcessGuard`]), or when its memory passes its budget (with exit code
//! [`MEMORY_EXIT`]). After a panic, which is caught and answered, it goes on from the
//! compiled policies, as the interpreter's state is unknown then.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use regorus::Value;
use serde::{Deserialize, Serialize};

use super::compile::engine_for;
use super::memory::ProcessGuard;
use super::query::{ask, Answer, Outcome, Query};
use super::wire::Decoder;
use super::{Source, TimeBudgets};

/// The exit code of a worker whose memory passed its budget.
pub const MEMORY_EXIT: i32 = 86;

/// The largest frame a parent reads from a worker: 10,000 messages of 2,000 characters with
/// their fields fit many times over.
const MAX_ANSWER_BYTES: u64 = 256 << 20;

/// An evaluation that took this long may have grown the worker past its memory budget: the
/// worker looks before answering, so that the memory is blamed on it (a quick one cannot).
const LONG_EVALUATION: Duration = Duration::from_millis(5);

/// Bytes of a worker's standard error kept to describe a crash.
const STDERR_KEPT: usize = 16 << 10;

static EXECUTABLE: OnceLock<PathBuf> = OnceLock::new();

/// The program that serves `__rego-worker` (the `envfence` binary itself). Without one, the
/// library evaluates policies in its own process, where a stack overflow ends the process and
/// an evaluation stuck in one step of the interpreter is waited for (library unit tests).
pub fn set_executable(path: PathBuf) {
    let _ = EXECUTABLE.set(path);
}

pub(super) fn executable() -> Option<&'static Path> {
    EXECUTABLE.get().map(PathBuf::as_path)
}

/// What the parent sends.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum ToWorker {
    /// Compile these policies. With `topology`, its frame follows: the topology, also given as
    /// `data.envfence` when `Some(true)`.
    Init {
        sources: Vec<(String, String)>,
        memory_budget: u64,
        /// The interpreter's timer, per evaluation.
        evaluation_budget: Duration,
        topology: Option<bool>,
    },
    /// The topology's frame follows, for repository-level inputs only.
    Topology,
    /// Evaluate these items, in order; the frame of each `Inline` input follows, in order.
    Evaluate { items: Vec<Item> },
}

/// Queries over one input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Item {
    pub input: InputKind,
    pub queries: Vec<Query>,
}

/// Where an item's input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum InputKind {
    /// Its own frame.
    Inline,
    /// The topology.
    Topology,
    /// No input (`test_` rules).
    Undefined,
}

/// What a worker answers.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum FromWorker {
    Ready,
    /// The policies do not compile: the error on one line.
    Failed(String),
    Answer(Answer),
}

fn write_frame(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(&(bytes.len() as u64).to_le_bytes())?;
    out.write_all(bytes)
}

/// The next frame; `None` at the end of the input, or past `max` bytes.
fn read_frame(input: &mut impl Read, max: u64) -> Option<Vec<u8>> {
    let mut length = [0u8; 8];
    input.read_exact(&mut length).ok()?;
    let length = u64::from_le_bytes(length);
    if length > max {
        return None;
    }
    let mut bytes = Vec::new();
    input.take(length).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 == length).then_some(bytes)
}

/// `envfence __rego-worker`: serves one parent until `input` ends (the binary hands it its
/// stdin and stdout: library code opens no stream of its own). Writes nothing but frames;
/// returns the exit code.
pub fn serve(input: impl Read, output: impl Write) -> u8 {
    let mut input = BufReader::new(input);
    let mut output = BufWriter::new(output);
    match serve_on(&mut input, &mut output) {
        Some(()) => 0,
        None => 1,
    }
}

/// Writes and flushes: an answer left in a buffer would be lost with a worker that crashes or
/// is killed in the next evaluation, and that evaluation taken for the one before it.
fn send(output: &mut impl Write, message: &FromWorker) -> Option<()> {
    let bytes = serde_json::to_vec(message).ok()?;
    write_frame(output, &bytes).ok()?;
    output.flush().ok()
}

fn serve_on(input: &mut impl Read, output: &mut impl Write) -> Option<()> {
    let mut engine: Option<regorus::Engine> = None;
    let mut guard: Option<ProcessGuard> = None;
    let mut topology = Value::Null;
    let mut decoder = Decoder::default();
    while let Some(frame) = read_frame(input, u64::MAX) {
        match serde_json::from_slice::<ToWorker>(&frame).ok()? {
            ToWorker::Init {
                sources,
                memory_budget,
                evaluation_budget,
                topology: with_topology,
            } => {
                let started =
                    guard.get_or_insert_with(|| ProcessGuard::start(memory_budget, MEMORY_EXIT));
                let sources: Vec<Source> = sources
                    .into_iter()
                    .map(|(shown, text)| Source { shown, text })
                    .collect();
                if with_topology.is_some() {
                    topology = decoder.decode(&read_frame(input, u64::MAX)?)?;
                }
                let data = (with_topology == Some(true)).then(|| topology.clone());
                match engine_for(&sources, data, evaluation_budget) {
                    Ok(made) => {
                        engine = Some(made);
                        started.rebase();
                        send(output, &FromWorker::Ready)?;
                    }
                    Err(e) => send(output, &FromWorker::Failed(e.to_string()))?,
                }
            }
            ToWorker::Topology => {
                topology = decoder.decode(&read_frame(input, u64::MAX)?)?;
                if let Some(guard) = &guard {
                    guard.rebase();
                }
            }
            ToWorker::Evaluate { items } => {
                let compiled = &engine;
                let mut engine = compiled.clone()?;
                let engine = &mut engine;
                // Every frame of the request is read before anything is evaluated, so that
                // the parent never waits to write while an evaluation runs.
                let mut frames = Vec::new();
                for item in &items {
                    if item.input == InputKind::Inline {
                        frames.push(read_frame(input, u64::MAX)?);
                    }
                }
                let mut frames = frames.into_iter();
                for item in &items {
                    let value = match item.input {
                        InputKind::Inline => decoder.decode(&frames.next()?)?,
                        InputKind::Topology => topology.clone(),
                        InputKind::Undefined => Value::Undefined,
                    };
                    engine.set_input(value.clone());
                    for query in &item.queries {
                        let answer = ask(engine, query);
                        if answer.duration >= LONG_EVALUATION {
                            if let Some(guard) = &guard {
                                guard.check(MEMORY_EXIT);
                            }
                        }
                        if matches!(answer.outcome, Outcome::Crash(_)) {
                            // A panic may leave the interpreter in any state: go on from the
                            // compiled one.
                            *engine = compiled.clone()?;
                            engine.set_input(value.clone());
                        }
                        send(output, &FromWorker::Answer(answer))?;
                    }
                }
            }
        }
    }
    Some(())
}

/// How waiting for a worker ended, when not with an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ended {
    /// The deadline passed; the worker was killed.
    Late,
    /// Its memory passed the budget.
    Memory,
    /// It ended otherwise: what is known of why.
    Crash(String),
}

/// A running worker, seen from the parent. Dropping it kills the worker.
pub(super) struct Process {
    child: Child,
    stdin: Option<BufWriter<ChildStdin>>,
    answers: mpsc::Receiver<FromWorker>,
    reader: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    /// The topology was sent.
    pub has_topology: bool,
}

/// Why a worker could not be started.
pub(super) enum StartFailure {
    /// The policies do not compile (the error on one line).
    Compile(String),
    /// The program could not be run.
    Spawn(String),
    /// It ended, or the deadline passed, before it was ready.
    Ended(Ended),
}

impl Process {
    /// Starts a worker and waits until it has compiled `sources` (and read the topology
    /// when given, as data when its flag is set), at most until `deadline`.
    pub(super) fn start(
        exe: &Path,
        sources: &[Source],
        memory_budget: u64,
        budgets: TimeBudgets,
        topology: Option<(&[u8], bool)>,
        deadline: Instant,
    ) -> Result<Process, StartFailure> {
        let mut command = Command::new(exe);
        command
            .arg("__rego-worker")
            .env_clear()
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| StartFailure::Spawn(format!("{}: {e}", exe.display())))?;
        let (Some(stdin), Some(mut stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(StartFailure::Spawn("no pipes to the worker".to_owned()));
        };
        let (tx, answers) = mpsc::channel();
        let reader = std::thread::Builder::new()
            .name("envfence-rego-answers".into())
            .spawn(move || {
                let mut stdout = BufReader::with_capacity(1 << 16, &mut stdout);
                while let Some(frame) = read_frame(&mut stdout, MAX_ANSWER_BYTES) {
                    let Ok(message) = serde_json::from_slice::<FromWorker>(&frame) else {
                        break;
                    };
                    if tx.send(message).is_err() {
                        break;
                    }
                }
            })
            .ok();
        // Read to the end (a full pipe would block the worker), keeping the beginning.
        let stderr = std::thread::Builder::new()
            .name("envfence-rego-stderr".into())
            .spawn(move || {
                let mut kept = Vec::new();
                let mut buffer = [0u8; 4096];
                while let Ok(n) = stderr.read(&mut buffer) {
                    if n == 0 {
                        break;
                    }
                    let room = STDERR_KEPT.saturating_sub(kept.len()).min(n);
                    kept.extend_from_slice(&buffer[..room]);
                }
                kept
            })
            .ok();
        let mut process = Process {
            child,
            stdin: Some(BufWriter::new(stdin)),
            answers,
            reader,
            stderr,
            has_topology: topology.is_some(),
        };
        let init = ToWorker::Init {
            sources: sources
                .iter()
                .map(|s| (s.shown.clone(), s.text.clone()))
                .collect(),
            memory_budget,
            evaluation_budget: budgets.evaluation,
            topology: topology.map(|(_, as_data)| as_data),
        };
        let frames: Vec<&[u8]> = topology.iter().map(|(bytes, _)| *bytes).collect();
        process.send(&init, &frames).map_err(StartFailure::Ended)?;
        match process.receive(deadline).map_err(StartFailure::Ended)? {
            FromWorker::Ready => Ok(process),
            FromWorker::Failed(error) => Err(StartFailure::Compile(error)),
            FromWorker::Answer(_) => Err(StartFailure::Ended(Ended::Crash(
                "the worker answered out of turn".to_owned(),
            ))),
        }
    }

    /// Sends a message and the frames that follow it.
    pub(super) fn send(&mut self, message: &ToWorker, frames: &[&[u8]]) -> Result<(), Ended> {
        let sent = (|| {
            let stdin = self.stdin.as_mut()?;
            let bytes = serde_json::to_vec(message).ok()?;
            write_frame(stdin, &bytes).ok()?;
            for frame in frames {
                write_frame(stdin, frame).ok()?;
            }
            stdin.flush().ok()
        })();
        match sent {
            Some(()) => Ok(()),
            None => Err(self.ended()),
        }
    }

    /// The next message, waiting at most until `deadline` (then the worker is killed).
    pub(super) fn receive(&mut self, deadline: Instant) -> Result<FromWorker, Ended> {
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.answers.recv_timeout(wait) {
            Ok(message) => Ok(message),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.kill();
                Err(Ended::Late)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(self.ended()),
        }
    }

    fn kill(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Why the worker ended (it closed its output, or its input is gone).
    fn ended(&mut self) -> Ended {
        self.stdin = None;
        // Its output is closed: it has ended, or is about to.
        let started = Instant::now();
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if started.elapsed() < std::time::Duration::from_secs(2) => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                _ => {
                    self.kill();
                    break None;
                }
            }
        };
        if status.and_then(|s| s.code()) == Some(MEMORY_EXIT) {
            return Ended::Memory;
        }
        let stderr = self
            .stderr
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        let stderr = String::from_utf8_lossy(&stderr);
        if stderr.contains("overflowed its stack") {
            return Ended::Crash("the interpreter overflowed its stack".to_owned());
        }
        Ended::Crash(match status {
            Some(status) => describe(status),
            None => "the worker stopped answering".to_owned(),
        })
    }
}

#[cfg(unix)]
fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (_, Some(signal)) => format!("the worker process was ended by signal {signal}"),
        (Some(code), _) => format!("the worker process exited with code {code}"),
        _ => "the worker process ended".to_owned(),
    }
}

#[cfg(not(unix))]
fn describe(status: std::process::ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("the worker process exited with code {code}"),
        None => "the worker process ended".to_owned(),
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        if let Some(stderr) = self.stderr.take() {
            let _ = stderr.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_stop_at_their_cap() {
        let mut bytes = Vec::new();
        write_frame(&mut bytes, b"hello").expect("written");
        write_frame(&mut bytes, b"").expect("written");
        let mut reader = bytes.as_slice();
        assert_eq!(read_frame(&mut reader, 100).as_deref(), Some(&b"hello"[..]));
        assert_eq!(read_frame(&mut reader, 100).as_deref(), Some(&b""[..]));
        assert_eq!(read_frame(&mut reader, 100), None);
        let mut reader = bytes.as_slice();
        assert_eq!(read_frame(&mut reader, 4), None);
    }

    #[test]
    fn a_worker_answers_each_query_and_ends_with_its_input() {
        let policy = "package envfence.p\n\ndeny contains msg if {\n\tprint(\"::error::x\")\n\tmsg := input.name\n}\n";
        let init = ToWorker::Init {
            sources: vec![("p.rego".to_owned(), policy.to_owned())],
            memory_budget: 1 << 30,
            evaluation_budget: Duration::from_secs(2),
            topology: None,
        };
        let query = Query {
            path: "data.envfence.p.deny".to_owned(),
            shown: "p.rego".to_owned(),
            limit: Some(10),
        };
        let evaluate = ToWorker::Evaluate {
            items: vec![Item {
                input: InputKind::Inline,
                queries: vec![query],
            }],
        };
        let mut request = Vec::new();
        for frame in [
            serde_json::to_vec(&init).expect("json"),
            serde_json::to_vec(&evaluate).expect("json"),
            {
                let mut input = Vec::new();
                super::super::wire::encode(
                    &Value::from_json_str(r#"{"name": "api"}"#).expect("json"),
                    &mut input,
                );
                input
            },
        ] {
            write_frame(&mut request, &frame).expect("written");
        }
        let mut answers = Vec::new();
        assert_eq!(serve_on(&mut request.as_slice(), &mut answers), Some(()));
        let mut reader = answers.as_slice();
        let ready = read_frame(&mut reader, u64::MAX).expect("ready");
        assert!(matches!(
            serde_json::from_slice::<FromWorker>(&ready),
            Ok(FromWorker::Ready)
        ));
        let answer = read_frame(&mut reader, u64::MAX).expect("answer");
        let Ok(FromWorker::Answer(answer)) = serde_json::from_slice::<FromWorker>(&answer) else {
            panic!("not an answer");
        };
        assert!(matches!(&answer.outcome, Outcome::Messages(m) if m.len() == 1));
        assert_eq!(answer.prints, vec!["p.rego:4: ::error::x".to_owned()]);
        assert_eq!(read_frame(&mut reader, u64::MAX), None);
    }
}
