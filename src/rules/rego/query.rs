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
        // regorus starts each print with `file:line: `; every line of it starts so here.
        let at = location_prefix(&printed).unwrap_or_default();
        for (i, line) in printed.lines().enumerate() {
            if answer.prints.len() < MAX_PRINTED_LINES {
                let line = if i == 0 {
                    line.to_owned()
                } else {
                    format!("{at}{line}")
                };
                answer.prints.push(cut(&line, MAX_PRINTED_CHARS));
            } else {
                answer.prints_left_out += 1;
            }
        }
    }
    answer
}

/// `p.rego:4: ` of `p.rego:4: text`.
fn location_prefix(printed: &str) -> Option<&str> {
    printed.match_indices(": ").find_map(|(i, _)| {
        let (_, line) = printed[..i].rsplit_once(':')?;
        let is_line = !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit());
        is_line.then(|| &printed[..i + 2])
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::rego::compile::engine_for;
    use crate::rules::rego::Source;

    fn engine(policy: &str, budget: Duration) -> regorus::Engine {
        let sources = [Source {
            shown: "p.rego".to_owned(),
            text: policy.to_owned(),
        }];
        engine_for(&sources, None, budget).expect("compiles")
    }

    fn set() -> Query {
        Query {
            path: "data.envfence.p.deny".to_owned(),
            shown: "p.rego".to_owned(),
            limit: Some(1),
        }
    }

    #[test]
    fn a_panic_inside_the_interpreter_is_answered() {
        let policy = "package envfence.p\n\ndeny contains msg if {\n\tmsg := sprintf(concat(\"\", [\"%\", input.x, \"²d\"]), [1])\n}\n";
        let mut engine = engine(policy, Duration::from_secs(2));
        engine.set_input(Value::from_json_str(r#"{"x": ""}"#).expect("json"));
        let answer = ask(&mut engine, &set());
        assert!(
            matches!(&answer.outcome, Outcome::Crash(c) if c.contains("panicked")),
            "{answer:?}"
        );
    }

    #[test]
    fn prints_are_answered_line_by_line_and_messages_counted() {
        let policy = "package envfence.p\n\ndeny contains x if {\n\tprint(\"a\\n::error::b\")\n\tsome x in [\"one\", \"two\"]\n}\n";
        let mut engine = engine(policy, Duration::from_secs(2));
        engine.set_input(Value::new_object());
        let answer = ask(&mut engine, &set());
        assert_eq!(answer.outcome, Outcome::TooMany(2));
        assert_eq!(answer.prints, vec!["p.rego:4: a", "p.rego:4: ::error::b"]);
    }

    #[test]
    fn the_interpreters_timer_is_answered_as_time() {
        let policy = "package envfence.p\n\ndeny contains \"x\" if {\n\tsome i in numbers.range(1, 100000)\n\tsome j in numbers.range(1, 100000)\n\ti * j < 0\n}\n";
        let mut engine = engine(policy, Duration::from_millis(50));
        engine.set_input(Value::new_object());
        assert_eq!(ask(&mut engine, &set()).outcome, Outcome::Time);
    }
}
