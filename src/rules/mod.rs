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

/// A policy file of `--policies DIR`: only `id` is required.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyOverride {
    id: String,
    #[serde(default)]
    severity: Option<Severity>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    rationale: Option<String>,
    #[serde(default)]
    remediation: Option<String>,
    #[serde(default)]
    data: BTreeMap<String, serde_yaml::Value>,
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

    /// Applies the policy files of `--policies DIR`: each `<id>.yaml` may change a rule's
    /// severity and texts, and extends its data lists (entries are added, not replaced).
    pub fn apply_dir(&mut self, dir: &std::path::Path) -> anyhow::Result<()> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| anyhow::anyhow!("cannot read policies {}: {e}", dir.display()))?;
        let mut paths: Vec<std::path::PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        paths.sort();
        for path in paths {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("cannot read {shown}: {e}"))?;
            let o: PolicyOverride =
                serde_yaml::from_str(&text).map_err(|e| match e.location() {
                    Some(l) => anyhow::anyhow!("{shown}:{}:{}: {e}", l.line(), l.column()),
                    None => anyhow::anyhow!("{shown}: {e}"),
                })?;
            let rule = RuleId::parse(&o.id)
                .ok_or_else(|| anyhow::anyhow!("{shown}: unknown rule id `{}`", o.id))?;
            let Some(policy) = self.policies.get_mut(&rule) else {
                continue;
            };
            if let Some(sev) = o.severity {
                policy.severity = sev;
                self.levels.insert(rule, Some(sev));
            }
            for (field, value) in [
                (&mut policy.summary, o.summary),
                (&mut policy.rationale, o.rationale),
                (&mut policy.remediation, o.remediation),
            ] {
                if let Some(v) = value {
                    *field = v;
                }
            }
            for (key, value) in o.data {
                match (policy.data.get_mut(&key), value) {
                    (
                        Some(serde_yaml::Value::Sequence(existing)),
                        serde_yaml::Value::Sequence(more),
                    ) => {
                        for item in more {
                            if !existing.contains(&item) {
                                existing.push(item);
                            }
                        }
                    }
                    (_, value) => {
                        policy.data.insert(key, value);
                    }
                }
            }
        }
        Ok(())
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

/// The documentation page of a rule, generated from its policy file: `docs/rules/<id>.md`.
/// A test keeps the committed pages in step with the policies.
pub fn doc_page(rule: RuleId, policy: &Policy) -> String {
    let mut page = format!(
        "<!-- Generated from policies/{id}.yaml by `ENVFENCE_BLESS=1 cargo test --test rule_docs`; do not edit. -->\n\
         # `{id}`\n\n\
         **Default severity:** {severity}\n\n\
         {summary}\n\n\
         ## Why it matters\n\n{rationale}\n\n\
         ## How to fix it\n\n{remediation}\n\n\
         ## Configuration\n\n\
         Change its severity or turn it off in `.envfence.yaml`:\n\n\
         ```yaml\nrules:\n  {id}: off   # off | info | warning | error\n```\n\n\
         Silence one finding with a reason: `envfence.dev/ignore: \"{id}: <reason>\"` on the\n\
         resource, or `# envfence: ignore[{id}] <reason>` on the line.\n",
        id = rule.as_str(),
        severity = policy.severity,
        summary = policy.summary,
        rationale = policy.rationale,
        remediation = policy.remediation,
    );
    if !policy.data.is_empty() {
        page.push_str("\n## Data\n\nTunable lists in the policy file:\n\n");
        for (key, value) in &policy.data {
            let items: Vec<String> = value
                .as_sequence()
                .map(|seq| {
                    seq.iter()
                        .filter_map(|v| v.as_str().map(|s| format!("`{s}`")))
                        .collect()
                })
                .unwrap_or_default();
            page.push_str(&format!("- `{key}`: {}\n", items.join(", ")));
        }
    }
    page
}

impl<'a> RuleContext<'a> {
    pub fn new(
        files: &'a [SourceFile],
        topology: &'a Topology,
        policies: &'a Policies,
        config: &'a Config,
    ) -> Self {
        RuleContext {
            files,
            topology,
            policies,
            config,
            references: std::sync::OnceLock::new(),
        }
    }
}

/// What a rule gets to look at.
pub struct RuleContext<'a> {
    pub files: &'a [SourceFile],
    pub topology: &'a Topology,
    pub policies: &'a Policies,
    pub config: &'a Config,
    /// The configuration references of every placement, computed on first use.
    pub(crate) references: std::sync::OnceLock<Vec<Vec<config_refs::Reference>>>,
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
