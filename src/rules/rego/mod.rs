//! User policies in Rego (docs/policies-rego.md), evaluated with `regorus`.
//!
//! `.rego` files of `--policies DIR` (or the config's `policies:`) whose package lies under
//! `envfence.` follow conftest's conventions: the sets `deny`, `violation` and `warn` hold
//! strings or objects with `msg` (and optional `rule`, `severity`, `location`). Packages under
//! `envfence.repository` are evaluated once, with `input` = the topology; every other
//! `envfence.` package once per placement, with `input` = the placement (`input.rs`). In both,
//! `data.envfence` is the whole topology and the config. Each message becomes a finding with
//! rule id `rego/<package>/<rule>`, which can never be a built-in id.
//!
//! Budgets (docs/security.md): each evaluation runs in a worker process (`worker.rs`) with a
//! time budget ([`EVALUATION_TIME_BUDGET`]) and a memory budget ([`memory`]), all evaluations
//! of a scan share [`TOTAL_EVALUATION_TIME_BUDGET`], what one evaluation may report is capped,
//! and no built-in reaches outside the process (regorus is built without `http` and the other
//! built-ins that do; `check.rs` refuses calls of the rest). A time or memory overrun, a
//! panic, a stack overflow or any other crash of one evaluation ends that evaluation only,
//! as a budget cut, and never the scan; what a policy prints is handed back, never written
//! out.
//!
//! The parts, each a file of this folder, in the order a scan uses them:
//!
//! - `load.rs`: reads the `.rego` files of a policy folder (`*_test.rego` only for
//!   `envfence test-policies`).
//! - `compile.rs`: compiles them into [`RegoPolicies`] on a thread of its own, within
//!   [`COMPILE_TIME_BUDGET`], after `depth.rs` has turned away text nested too deeply, and
//!   has a worker analyse them as regorus does before it first evaluates.
//! - `check.rs`: refuses calls of built-ins that reach outside, and finds whether any policy
//!   reads the topology under `data.envfence`.
//! - `heads.rs`: reads each file's text for the rule heads of the reporting sets and tests,
//!   and the `# METADATA` before them, which regorus does not report.
//! - `index.rs`: decides from a set's rule bodies which placements it can report anything for.
//! - `input.rs`: builds the Rego values a scan's evaluations share: each placement's `input`
//!   and `data.envfence` (the topology and the config).
//! - `eval.rs`: what a scan evaluates (once per repository-level package, once per placement),
//!   and the answers as findings, cuts and printed lines; runs the `test_` rules.
//! - `pool.rs`: hands the evaluations to a few worker processes and enforces the time budgets;
//!   without a worker executable ([`set_worker_executable`], which the binary calls), runs
//!   them in this process, where a stack overflow still ends the process.
//! - `worker.rs`: the worker process (`envfence __rego-worker`) and the parent's handle on it;
//!   `wire.rs`: how values travel to it.
//! - `query.rs`: one evaluation on an engine: a set's messages or a test's verdict, and what
//!   it printed; a panic is caught.
//! - `findings.rs`: turns the messages into findings, with `rego/...` rule ids.

mod check;
mod compile;
mod depth;
mod eval;
mod findings;
mod heads;
mod index;
mod input;
mod load;
pub mod memory;
mod pool;
mod query;
mod wire;
mod worker;

use std::time::Duration;

use super::RuleId;
use crate::findings::Severity;

pub use compile::{
    COMPILE_TIME_BUDGET, EVALUATION_TIME_BUDGET, KILL_GRACE, TOTAL_EVALUATION_TIME_BUDGET,
};
pub use eval::{
    run, Evaluated, TestOutcome, TestResult, MAX_MESSAGES_PER_PLACEMENT,
    MAX_MESSAGES_PER_REPOSITORY,
};
pub use findings::{parse_id, MAX_MESSAGE_CHARS};
pub use input::{cluster_tier, prepare, workload_purpose, Prepared};
pub use load::{is_test_file, read_dir, read_files, test_dir, Source};
pub use pool::MAX_WORKERS;
pub use query::{MAX_PRINTED_CHARS, MAX_PRINTED_LINES};
pub use worker::{
    serve as serve_worker, set_executable as set_worker_executable,
    MEMORY_EXIT as WORKER_MEMORY_EXIT,
};

/// The sets a policy package reports through, and the severity each defaults to.
const SETS: [(&str, Severity); 3] = [
    ("deny", Severity::Error),
    ("violation", Severity::Error),
    ("warn", Severity::Warning),
];

/// The package prefix of policies envfence evaluates.
const PREFIX: &str = "envfence.";
/// Packages evaluated once per repository instead of once per placement.
const REPOSITORY_PACKAGE: &str = "envfence.repository";

/// `# METADATA` of a package or rule: the title and description SARIF shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub title: Option<String>,
    pub description: Option<String>,
}

/// One policy package under `envfence.`.
#[derive(Debug, Clone)]
pub struct Package {
    /// `envfence.images`.
    pub name: String,
    /// The first file that declares it, as shown in messages.
    pub file: String,
    /// Evaluated once per repository (`envfence.repository...`), not per placement.
    pub repository: bool,
    /// The sets it defines (`deny`, `violation`, `warn`), each with its `# METADATA`.
    pub sets: Vec<(&'static str, Metadata)>,
    pub metadata: Metadata,
    /// For each set of `sets`, which inputs it can report anything for.
    indexes: Vec<index::SetIndex>,
}

impl Package {
    /// `rego/envfence.images/deny`.
    pub fn rule_id(&self, set: &str) -> Option<RuleId> {
        parse_id(&format!("rego/{}/{set}", self.name)).map(RuleId::Rego)
    }
}

/// A `test_` rule of a policy file.
#[derive(Debug, Clone)]
struct TestRule {
    package: String,
    name: String,
}

/// The time budgets of Rego evaluation (docs/security.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBudgets {
    /// One evaluation: a set for one placement or for the repository, or one test.
    pub evaluation: Duration,
    /// All evaluations of a scan (of one side of a diff-aware scan), or all tests, together.
    pub total: Duration,
}

impl Default for TimeBudgets {
    fn default() -> Self {
        TimeBudgets {
            evaluation: EVALUATION_TIME_BUDGET,
            total: TOTAL_EVALUATION_TIME_BUDGET,
        }
    }
}

/// Compiled Rego policies.
#[derive(Clone)]
pub struct RegoPolicies {
    /// What each worker compiles.
    sources: Vec<Source>,
    pub packages: Vec<Package>,
    tests: Vec<TestRule>,
    /// Some policy may read the topology under `data.envfence` (`check.rs`); otherwise the
    /// workers are not handed it.
    reads_topology: bool,
    budgets: TimeBudgets,
}

impl RegoPolicies {
    /// Lowers the time budgets (never raises them): for tests that must not wait a minute.
    pub fn lower_time_budgets(&mut self, budgets: TimeBudgets) {
        self.budgets = TimeBudgets {
            evaluation: self.budgets.evaluation.min(budgets.evaluation),
            total: self.budgets.total.min(budgets.total),
        };
    }
}

impl std::fmt::Debug for RegoPolicies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegoPolicies")
            .field("packages", &self.packages)
            .finish_non_exhaustive()
    }
}
