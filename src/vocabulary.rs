//! The shared vocabulary: the few words that config, topology, findings and rules all speak.
//! Rule ids, severities, cluster tiers and workload purposes live here, below every layer
//! that names them, so that `.envfence.yaml` can name a rule or a tier without importing the
//! rules or the topology. This module imports nothing of the crate.
//!
//! What the words mean to the checks stays with the layer that acts on them: a rule's
//! metadata is `policies/<id>.yaml` (read by `rules`), and the words that decide a tier or a
//! purpose are the tier rule's policy data (read by `topology::tiers`).

use std::collections::HashSet;
use std::fmt;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

/// Every rule id of the product contract (DESIGN §4): the built-in rules, each checked in
/// `rules` and described in `policies/<id>.yaml`, and the rules of user policies in Rego.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleId {
    NonprodOnProdCluster,
    NonprodUsesProdConfig,
    ProdUsesNonprodConfig,
    MixedEnvironmentCluster,
    NoNetworkIsolation,
    WorkloadOutsideItsTier,
    UnresolvedPlacement,
    InvalidYaml,
    UnusedSuppression,
    ConflictingEnvironmentLabels,
    ProjectDeniesDestination,
    /// A rule of a user policy in Rego: `rego/<package>/<rule>` ([`parse_rego_id`]).
    Rego(&'static str),
}

impl RuleId {
    pub const ALL: [RuleId; 11] = [
        RuleId::NonprodOnProdCluster,
        RuleId::NonprodUsesProdConfig,
        RuleId::ProdUsesNonprodConfig,
        RuleId::MixedEnvironmentCluster,
        RuleId::NoNetworkIsolation,
        RuleId::WorkloadOutsideItsTier,
        RuleId::UnresolvedPlacement,
        RuleId::InvalidYaml,
        RuleId::UnusedSuppression,
        RuleId::ConflictingEnvironmentLabels,
        RuleId::ProjectDeniesDestination,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::NonprodOnProdCluster => "nonprod-on-prod-cluster",
            RuleId::NonprodUsesProdConfig => "nonprod-uses-prod-config",
            RuleId::ProdUsesNonprodConfig => "prod-uses-nonprod-config",
            RuleId::MixedEnvironmentCluster => "mixed-environment-cluster",
            RuleId::NoNetworkIsolation => "no-network-isolation",
            RuleId::WorkloadOutsideItsTier => "workload-outside-its-tier",
            RuleId::UnresolvedPlacement => "unresolved-placement",
            RuleId::InvalidYaml => "invalid-yaml",
            RuleId::UnusedSuppression => "unused-suppression",
            RuleId::ConflictingEnvironmentLabels => "conflicting-environment-labels",
            RuleId::ProjectDeniesDestination => "project-denies-destination",
            RuleId::Rego(id) => id,
        }
    }

    /// A built-in rule id, or `rego/<package>/<rule>`.
    pub fn parse(id: &str) -> Option<RuleId> {
        RuleId::ALL
            .into_iter()
            .find(|r| r.as_str() == id)
            .or_else(|| parse_rego_id(id).map(RuleId::Rego))
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Distinct Rego rule ids a process keeps (ids are interned for the life of the process).
const MAX_RULE_IDS: usize = 10_000;

/// `rego/<package>/<rule>`: a rule id of a Rego policy, interned so that [`RuleId`] stays
/// `Copy`. `None` when `id` is not such an id.
pub fn parse_rego_id(id: &str) -> Option<&'static str> {
    let rest = id.strip_prefix("rego/")?;
    let (package, rule) = rest.split_once('/')?;
    let package_ok = !package.is_empty()
        && package
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    let rule_ok = !rule.is_empty()
        && rule
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    (package_ok && rule_ok).then(|| intern(id)).flatten()
}

fn intern(id: &str) -> Option<&'static str> {
    static IDS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut ids = IDS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = ids.get(id) {
        return Some(known);
    }
    if ids.len() >= MAX_RULE_IDS {
        return None;
    }
    let leaked: &'static str = Box::leak(id.to_owned().into_boxed_str());
    ids.insert(leaked);
    Some(leaked)
}

/// How bad a finding is. Ordered, so `--fail-on warning` means "warning or worse".
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of cluster a cluster is. Production is the one production tier.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    Default,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    #[default]
    Production,
    Staging,
    Development,
    Testing,
    Internal,
}

impl Tier {
    pub const ALL: [Tier; 5] = [
        Tier::Production,
        Tier::Staging,
        Tier::Development,
        Tier::Testing,
        Tier::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Production => "production",
            Tier::Staging => "staging",
            Tier::Development => "development",
            Tier::Testing => "testing",
            Tier::Internal => "internal",
        }
    }

    pub fn parse(text: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a placed workload is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    Production,
    Feature,
    IntegrationTest,
    LoadTest,
    SecurityTest,
    /// Chaos experiments (Chaos Mesh, Litmus, Chaos Toolkit); their operators are tools.
    Chaos,
    Ci,
    #[default]
    Unknown,
}

impl Purpose {
    pub const ALL: [Purpose; 8] = [
        Purpose::Production,
        Purpose::Feature,
        Purpose::IntegrationTest,
        Purpose::LoadTest,
        Purpose::SecurityTest,
        Purpose::Chaos,
        Purpose::Ci,
        Purpose::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Production => "production",
            Purpose::Feature => "feature",
            Purpose::IntegrationTest => "integration-test",
            Purpose::LoadTest => "load-test",
            Purpose::SecurityTest => "security-test",
            Purpose::Chaos => "chaos",
            Purpose::Ci => "ci",
            Purpose::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
