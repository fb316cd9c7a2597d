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
//! Budgets (docs/security.md): a time budget per evaluation, a memory budget for the
//! evaluations of a scan ([`memory`]), a cap on what one evaluation may report, and no network
//! built-ins (regorus is built without `http`, and without the other built-ins that reach
//! outside the process).
//!
//! The parts, each a file of this folder, in the order a scan uses them:
//!
//! - `load.rs`: reads the `.rego` files of a policy folder (`*_test.rego` only for
//!   `envfence test-policies`).
//! - `compile.rs`: compiles them into [`RegoPolicies`] on a thread of its own, within
//!   [`COMPILE_TIME_BUDGET`], after `depth.rs` has turned away text nested too deeply; gives
//!   the engine its [`EVALUATION_TIME_BUDGET`].
//! - `heads.rs`: reads each file's text for the rule heads of the reporting sets and tests,
//!   and the `# METADATA` before them, which regorus does not report.
//! - `index.rs`: decides from a set's rule bodies which placements it can report anything for.
//! - `input.rs`: builds the Rego values a scan's evaluations share: each placement's `input`
//!   and `data.envfence` (the topology and the config).
//! - `eval.rs`: evaluates the sets, once per repository and once per placement, within the
//!   memory budget ([`memory`]) and the message caps; runs the `test_` rules.
//! - `findings.rs`: turns the messages into findings, with `rego/...` rule ids.

mod compile;
mod depth;
mod eval;
mod findings;
mod heads;
mod index;
mod input;
mod load;
pub mod memory;

use super::RuleId;
use crate::findings::Severity;

pub use compile::{COMPILE_TIME_BUDGET, EVALUATION_TIME_BUDGET};
pub use eval::{
    run, Evaluated, TestOutcome, TestResult, MAX_MESSAGES_PER_PLACEMENT,
    MAX_MESSAGES_PER_REPOSITORY,
};
pub use findings::{parse_id, MAX_MESSAGE_CHARS};
pub use input::{cluster_tier, prepare, workload_purpose, Prepared};
pub use load::{is_test_file, read_dir, read_files, test_dir, Source};

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

/// Compiled Rego policies.
#[derive(Clone)]
pub struct RegoPolicies {
    engine: regorus::Engine,
    pub packages: Vec<Package>,
    tests: Vec<TestRule>,
}

impl std::fmt::Debug for RegoPolicies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegoPolicies")
            .field("packages", &self.packages)
            .finish_non_exhaustive()
    }
}
