//! Rules turn the document model (and, later, the topology) into findings. One module per
//! rule; each rule's metadata (severity, summary, rationale, remediation) lives in
//! `policies/<id>.yaml`, embedded in the binary.

mod config_refs;
mod invalid_yaml;
mod mixed_environment_cluster;
mod no_network_isolation;
mod nonprod_on_prod_cluster;
mod nonprod_uses_prod_config;
mod placement;
mod prod_uses_nonprod_config;
mod unresolved_placement;

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::config::{Config, RuleLevel};
use crate::documents::SourceFile;
use crate::findings::{Finding, Severity};
use crate::topology::Topology;

/// Every rule id of the product contract (DESIGN §4), including rules whose checks have not
/// landed yet: the config file may already name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleId {
    NonprodOnProdCluster,
    NonprodUsesProdConfig,
    ProdUsesNonprodConfig,
    MixedEnvironmentCluster,
    NoNetworkIsolation,
    UnresolvedPlacement,
    InvalidYaml,
    UnusedSuppression,
}

impl RuleId {
    pub const ALL: [RuleId; 8] = [
        RuleId::NonprodOnProdCluster,
        RuleId::NonprodUsesProdConfig,
        RuleId::ProdUsesNonprodConfig,
        RuleId::MixedEnvironmentCluster,
        RuleId::NoNetworkIsolation,
        RuleId::UnresolvedPlacement,
        RuleId::InvalidYaml,
        RuleId::UnusedSuppression,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::NonprodOnProdCluster => "nonprod-on-prod-cluster",
            RuleId::NonprodUsesProdConfig => "nonprod-uses-prod-config",
            RuleId::ProdUsesNonprodConfig => "prod-uses-nonprod-config",
            RuleId::MixedEnvironmentCluster => "mixed-environment-cluster",
            RuleId::NoNetworkIsolation => "no-network-isolation",
            RuleId::UnresolvedPlacement => "unresolved-placement",
            RuleId::InvalidYaml => "invalid-yaml",
            RuleId::UnusedSuppression => "unused-suppression",
        }
    }

    pub fn parse(id: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.as_str() == id)
    }

    /// The embedded policy file of this rule.
    fn policy_source(self) -> &'static str {
        match self {
            RuleId::NonprodOnProdCluster => {
                include_str!("../../policies/nonprod-on-prod-cluster.yaml")
            }
            RuleId::NonprodUsesProdConfig => {
                include_str!("../../policies/nonprod-uses-prod-config.yaml")
            }
            RuleId::ProdUsesNonprodConfig => {
                include_str!("../../policies/prod-uses-nonprod-config.yaml")
            }
            RuleId::MixedEnvironmentCluster => {
                include_str!("../../policies/mixed-environment-cluster.yaml")
            }
            RuleId::NoNetworkIsolation => include_str!("../../policies/no-network-isolation.yaml"),
            RuleId::UnresolvedPlacement => include_str!("../../policies/unresolved-placement.yaml"),
            RuleId::InvalidYaml => include_str!("../../policies/invalid-yaml.yaml"),
            RuleId::UnusedSuppression => include_str!("../../policies/unused-suppression.yaml"),
        }
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule's description and defaults, as written in `policies/<id>.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub id: String,
    pub severity: Severity,
    pub summary: String,
    pub rationale: String,
    pub remediation: String,
    /// Tunable data (token lists, reference fields, ...), read by the rule that owns it.
    #[serde(default)]
    pub data: BTreeMap<String, serde_yaml::Value>,
}

/// The policies in force: the built-in ones, with the config's severities applied.
#[derive(Debug, Clone)]
pub struct Policies {
    policies: BTreeMap<RuleId, Policy>,
    /// `None` when the config turned the rule off.
    levels: BTreeMap<RuleId, Option<Severity>>,
}

impl Policies {
    /// The embedded policies. A broken embedded file is a build defect, caught by tests.
    pub fn builtin() -> anyhow::Result<Self> {
        let mut policies = BTreeMap::new();
        let mut levels = BTreeMap::new();
        for rule in RuleId::ALL {
            let policy: Policy = serde_yaml::from_str(rule.policy_source())
                .map_err(|e| anyhow::anyhow!("built-in policy {rule}: {e}"))?;
            anyhow::ensure!(
                policy.id == rule.as_str(),
                "built-in policy {rule} has id {}",
                policy.id
            );
            levels.insert(rule, Some(policy.severity));
            policies.insert(rule, policy);
        }
        Ok(Policies { policies, levels })
    }

    /// Applies the config's `rules:` section.
    pub fn apply_config(&mut self, config: &Config) {
        for (rule, level) in config.rules.levels() {
            let severity = match level {
                RuleLevel::Off => None,
                RuleLevel::Info => Some(Severity::Info),
                RuleLevel::Warning => Some(Severity::Warning),
                RuleLevel::Error => Some(Severity::Error),
            };
            self.levels.insert(rule, severity);
        }
    }

    pub fn get(&self, rule: RuleId) -> Option<&Policy> {
        self.policies.get(&rule)
    }

    /// The severity a rule reports at, or `None` when it is off.
    pub fn severity(&self, rule: RuleId) -> Option<Severity> {
        self.levels.get(&rule).copied().flatten()
    }
}

/// What a rule gets to look at.
pub struct RuleContext<'a> {
    pub files: &'a [SourceFile],
    pub topology: &'a Topology,
    pub policies: &'a Policies,
    pub config: &'a Config,
}

/// A check. `severity` is the level the rule is configured at (it does not run when off).
pub trait Rule: Sync {
    fn id(&self) -> RuleId;
    fn check(&self, ctx: &RuleContext<'_>, severity: Severity) -> Vec<Finding>;
}

/// The rules whose checks exist in this build.
pub fn registry() -> Vec<Box<dyn Rule>> {
    vec![
        Box::new(nonprod_on_prod_cluster::NonprodOnProdCluster),
        Box::new(nonprod_uses_prod_config::NonprodUsesProdConfig),
        Box::new(prod_uses_nonprod_config::ProdUsesNonprodConfig),
        Box::new(mixed_environment_cluster::MixedEnvironmentCluster),
        Box::new(no_network_isolation::NoNetworkIsolation),
        Box::new(unresolved_placement::UnresolvedPlacement),
        Box::new(invalid_yaml::InvalidYaml),
    ]
}

/// Runs every enabled rule.
pub fn run_all(ctx: &RuleContext<'_>) -> Vec<Finding> {
    registry()
        .iter()
        .filter_map(|rule| {
            let severity = ctx.policies.severity(rule.id())?;
            Some(rule.check(ctx, severity))
        })
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_policy_parses_and_matches_its_id() {
        let p = Policies::builtin().expect("policies");
        for rule in RuleId::ALL {
            assert_eq!(p.get(rule).map(|p| p.id.as_str()), Some(rule.as_str()));
            assert_eq!(RuleId::parse(rule.as_str()), Some(rule));
        }
        assert_eq!(p.severity(RuleId::InvalidYaml), Some(Severity::Warning));
        assert_eq!(
            p.severity(RuleId::NonprodOnProdCluster),
            Some(Severity::Error)
        );
    }
}
