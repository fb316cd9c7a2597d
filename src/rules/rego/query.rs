//! One query of an engine: a set's messages for the input the engine holds, or a `test_`
//! rule's verdict, with what the policy printed. A panic inside the interpreter is caught and
//! answered. The same code answers in a worker process (`worker.rs`) and in-process.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use regorus::Value;
use serde::{Deserialize, Serialize};

use super::compile::one_line;
use super::findings::{Message, MAX_MESSAGE_CHARS};

/// Lines the policies of one scan (or one `test-policies` run) may print; the rest are
/// counted, not kept.
pub const MAX_PRINTED_LINES: usize = 1000;

/// Characters of one printed line kept.
pub const MAX_PRINTED_CHARS: usize = 1000;

/// What to evaluate for the input the engine holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Query {
    /// `data.envfence.images.deny`.
    pub path: String,
    /// The name an error starts with: the policy file of a set, the package of a test.
    pub shown: String,
    /// A set, with the most messages it may report; `None` for a `test_` rule.
    pub limit: Option<usize>,
}

/// How one evaluation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Outcome {
    /// The set's messages.
    Messages(Vec<Message>),
    /// The set reported this many messages, more than its limit.
    TooMany(usize),
    /// The test rule is `true`.
    Passed,
    /// The test rule is something else, shown as JSON (or `undefined`).
    Failed(String),
    /// An evaluation error, on one line (`file:line:col: message`).
    Error(String),
    /// Over the per-evaluation time budget.
    Time,
    /// Over the memory budget (the worker process ended).
    Memory,
    /// The interpreter crashed: a panic, a stack overflow, an abnormal end; what is known.
    Crash(String),
    /// Not run: the scan-wide time budget was spent.
    Skipped,
}

/// An outcome and what the evaluation printed, one entry per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Answer {
    pub outcome: Outcome,
    pub prints: Vec<String>,
    /// Lines printed past [`MAX_PRINTED_LINES`], not kept.
    pub prints_left_out: usize,
    /// How long the evaluation took, as the worker measured it (zero when it did not answer).
    pub duration: Duration,
}

impl Answer {
    /// An outcome with nothing printed.
    pub(super) fn bare(outcome: Outcome) -> Answer {
        Answer {
            outcome,
            prints: Vec::new(),
            prints_left_out: 0,
            duration: Duration::ZERO,
        }
    }
}

/// Evaluates `query` on `engine`, which holds the input. After a [`Outcome::Crash`] the
/// engine may be left in any state: do not use it again.
pub(super) fn ask(engine: &mut regorus::Engine, query: &Query) -> Answer {
    let started = Instant::now();
    let evaluated = catch_unwind(AssertUnwindSafe(|| engine.eval_rule(query.path.clone())));
    let duration = started.elapsed();
    let outcome = match evaluated {
        Ok(Ok(value)) => match query.limit {
            Some(limit) => messages(&value, limit),
            None => verdict(&value),
        },
        Ok(Err(e)) if is_time(&e) => Outcome::Time,
        Ok(Err(e)) => Outcome::Error(one_line(&query.shown, &e)),
        Err(payload) => {
            let message = crate::documents::guard::panic_message(payload.as_ref());
            Outcome::Crash(format!(
                "the interpreter panicked: {}",
                cut(&message, MAX_PRINTED_CHARS)
            ))
        }
    };
    let mut answer = Answer::bare(outcome);
    answer.duration = duration;
    for printed in engine.take_prints().unwrap_or_default() {
        for line in printed.lines() {
            if answer.prints.len() < MAX_PRINTED_LINES {
                answer.prints.push(cut(line, MAX_PRINTED_CHARS));
            } else {
                answer.prints_left_out += 1;
            }
        }
    }
    answer
}

fn cut(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

/// The members of a set's value, as messages.
fn messages(value: &Value, limit: usize) -> Outcome {
    let members: Vec<&Value> = match value {
        Value::Set(items) => items.iter().collect(),
        Value::Array(items) => items.iter().collect(),
        Value::Undefined | Value::Null => Vec::new(),
        other => vec![other],
    };
    if members.len() > limit {
        return Outcome::TooMany(members.len());
    }
    Outcome::Messages(members.into_iter().filter_map(Message::of).collect())
}

fn verdict(value: &Value) -> Outcome {
    match value {
        Value::Bool(true) => Outcome::Passed,
        Value::Undefined => Outcome::Failed("undefined".to_owned()),
        other => Outcome::Failed(cut(&other.to_string(), MAX_MESSAGE_CHARS)),
    }
}

/// Whether the interpreter stopped at its execution timer.
fn is_time(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<regorus::LimitError>(),
            Some(regorus::LimitError::TimeLimitExceeded { .. })
        )
    }) || format!("{e:#}").contains("execution exceeded time limit")
}
