//! Rules turn the document model and the topology into findings. One module per rule; each
//! rule's metadata (severity, summary, rationale, remediation) lives in `policies/<id>.yaml`,
//! embedded in the binary, and is the one source of `docs/rules/<id>.md` ([`doc_page`]). A rule
//! module's own doc comment points there and adds only what the code does (an example, how
//! many findings, at which line). Rule ids are vocabulary ([`RuleId`]), so the config can
//! name a rule without importing the rules.

mod config_refs;
mod conflicting_environment_labels;
mod invalid_yaml;
mod mixed_environment_cluster;
mod no_network_isolation;
mod nonprod_on_prod_cluster;
mod nonprod_uses_prod_config;
mod placement;
mod prod_uses_nonprod_config;
mod project_denies_destination;
pub mod rego;
mod unresolved_placement;
mod workload_outside_its_tier;

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{Config, RuleLevel};
use crate::documents::SourceFile;
use crate::findings::Finding;
use crate::topology::Topology;
pub use crate::vocabulary::RuleId;
use crate::vocabulary::Severity;

impl RuleId {
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
            RuleId::WorkloadOutsideItsTier => {
                include_str!("../../policies/workload-outside-its-tier.yaml")
            }
            RuleId::UnresolvedPlacement => include_str!("../../policies/unresolved-placement.yaml"),
            RuleId::InvalidYaml => include_str!("../../policies/invalid-yaml.yaml"),
            RuleId::UnusedSuppression => include_str!("../../policies/unused-suppression.yaml"),
            RuleId::ConflictingEnvironmentLabels => {
                include_str!("../../policies/conflicting-environment-labels.yaml")
            }
            RuleId::ProjectDeniesDestination => {
                include_str!("../../policies/project-denies-destination.yaml")
            }
            RuleId::Rego(_) => "",
        }
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
    /// The `.rego` files read so far, and the policies they compile to.
    rego_sources: Vec<rego::Source>,
    rego: Option<std::sync::Arc<rego::RegoPolicies>>,
    /// Levels the config's `rules:` gives Rego rule ids (`None`: off).
    rego_levels: BTreeMap<RuleId, Option<Severity>>,
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
        Ok(Policies {
            policies,
            levels,
            rego_sources: Vec::new(),
            rego: None,
            rego_levels: BTreeMap::new(),
        })
    }

    /// Applies the policy files of `--policies DIR`: each `<id>.yaml` may change a rule's
    /// severity and texts, and extends its data lists (entries are added, not replaced).
    /// `root` is the scanned repository: a folder inside it is repository content and is read
    /// under the same confinement as `.envfence.yaml` ([`crate::config::Repository`]).
    pub fn apply_dir(
        &mut self,
        dir: &std::path::Path,
        root: &std::path::Path,
    ) -> anyhow::Result<()> {
        use crate::config::{safe_message, shown_path, Repository};

        let repository = Repository::at(root);
        let confined = repository.names(dir);
        let entries = std::fs::read_dir(dir)
            .map_err(|e| anyhow::anyhow!("cannot read policies {}: {e}", shown_path(dir)))?;
        let mut paths: Vec<std::path::PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        paths.sort();
        for path in paths {
            let shown = shown_path(&path);
            let text = repository
                .read(&path, confined)
                .map_err(|cause| anyhow::anyhow!("cannot read {shown}: {cause}"))?;
            let o: PolicyOverride = serde_yaml::from_str(&text).map_err(|e| {
                let message = e.to_string();
                let message = match e.location() {
                    Some(l) => {
                        let suffix = format!(" at line {} column {}", l.line(), l.column());
                        let message = message.strip_suffix(&suffix).unwrap_or(&message);
                        format!("{shown}:{}:{}: {message}", l.line(), l.column())
                    }
                    None => format!("{shown}: {message}"),
                };
                anyhow::anyhow!("{}", safe_message(&message))
            })?;
            let rule = RuleId::parse(&o.id)
                .filter(|r| !matches!(r, RuleId::Rego(_)))
                .ok_or_else(|| {
                    let id = safe_message(&format!("`{}`", o.id));
                    anyhow::anyhow!("{shown}: unknown rule id {id}")
                })?;
            let Some(policy) = self.policies.get_mut(&rule) else {
                continue;
            };
            check_data_types(&policy.data, &o.data, &text, &shown)?;
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
                    ) => extend_unique(existing, more),
                    (_, value) => {
                        policy.data.insert(key, value);
                    }
                }
            }
        }
        self.add_rego(&rego::read_dir(dir, &repository, confined)?)
    }

    /// Adds Rego policies: all sources read so far are compiled together, and each rule they
    /// declare gets a policy (its `# METADATA` title and description) for the reports.
    pub fn add_rego(&mut self, sources: &[rego::Source]) -> anyhow::Result<()> {
        if sources.is_empty() {
            return Ok(());
        }
        self.rego_sources.extend_from_slice(sources);
        let compiled = rego::RegoPolicies::compile(&self.rego_sources)?;
        for (rule, severity, metadata) in compiled.declared_rules() {
            let summary = metadata
                .title
                .unwrap_or_else(|| format!("Rego policy {}", rule.as_str()));
            self.levels.entry(rule).or_insert(Some(severity));
            self.policies.insert(
                rule,
                Policy {
                    id: rule.as_str().to_owned(),
                    severity,
                    summary,
                    rationale: metadata.description.unwrap_or_default(),
                    remediation: "See the policy's message and its Rego source.".to_owned(),
                    data: BTreeMap::new(),
                },
            );
        }
        self.rego = Some(std::sync::Arc::new(compiled));
        Ok(())
    }

    /// Lowers the Rego time budgets of the policies added so far (never raises them): for
    /// tests that must not wait a minute.
    pub fn lower_rego_time_budgets(&mut self, budgets: rego::TimeBudgets) {
        if let Some(compiled) = &mut self.rego {
            std::sync::Arc::make_mut(compiled).lower_time_budgets(budgets);
        }
    }

    /// The Rego policies in force, if any.
    pub fn rego(&self) -> Option<&rego::RegoPolicies> {
        self.rego.as_deref()
    }

    /// The level the config's `rules:` gives a Rego rule: `None` when it names no level,
    /// `Some(None)` when it turns the rule off.
    pub fn rego_level(&self, rule: RuleId) -> Option<Option<Severity>> {
        self.rego_levels.get(&rule).copied()
    }

    /// Every rule the reports may describe: the built-in ones, then the Rego rules declared.
    pub fn rule_ids(&self) -> Vec<RuleId> {
        let mut ids = RuleId::ALL.to_vec();
        ids.extend(
            self.policies
                .keys()
                .filter(|r| matches!(r, RuleId::Rego(_))),
        );
        ids
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
            if let RuleId::Rego(_) = rule {
                self.rego_levels.insert(rule, severity);
            }
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

/// Appends the items of `more` that `list` does not hold yet, in order, in linear time (a
/// policy file may add tens of thousands of entries).
fn extend_unique(list: &mut Vec<serde_yaml::Value>, more: Vec<serde_yaml::Value>) {
    let mut seen: std::collections::HashSet<serde_yaml::Value> = list.iter().cloned().collect();
    for item in more {
        if seen.insert(item.clone()) {
            list.push(item);
        }
    }
}

/// What kind of YAML value a policy data entry is, for messages.
fn value_kind(value: &serde_yaml::Value) -> &'static str {
    match value {
        serde_yaml::Value::Null => "empty",
        serde_yaml::Value::Bool(_) => "a boolean",
        serde_yaml::Value::Number(_) => "a number",
        serde_yaml::Value::String(_) => "a string",
        serde_yaml::Value::Sequence(_) => "a list",
        serde_yaml::Value::Mapping(_) => "a mapping",
        serde_yaml::Value::Tagged(_) => "a tagged value",
    }
}

/// A policy file's `data` entries must have the type of the built-in entry they extend: a
/// string where the rule reads a list would otherwise replace the whole built-in list.
fn check_data_types(
    builtin: &BTreeMap<String, serde_yaml::Value>,
    data: &BTreeMap<String, serde_yaml::Value>,
    text: &str,
    shown: &str,
) -> anyhow::Result<()> {
    use crate::documents::{path as field_path, yaml, FieldPath};

    for (key, value) in data {
        let Some(expected) = builtin.get(key) else {
            continue;
        };
        let (want, found) = (value_kind(expected), value_kind(value));
        if want == found {
            continue;
        }
        let stream = yaml::parse_stream(text);
        let line = stream
            .docs
            .first()
            .and_then(|doc| {
                let path = FieldPath(vec![
                    field_path::Segment::Key("data".to_owned()),
                    field_path::Segment::Key(key.clone()),
                ]);
                field_path::locate(&doc.root, &path)
            })
            .map_or(1, |l| l.line);
        let key = crate::config::safe_message(&format!("`{key}`"));
        anyhow::bail!(
            "{shown}:{line}: data {key} must be {want}, like the built-in one, not {found}"
        );
    }
    Ok(())
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
            let line = match built_in_entries(rule, key) {
                Some((what, see, built_in)) => {
                    let built_in: Vec<String> = built_in.iter().map(|k| format!("`{k}`")).collect();
                    let listed = if items.is_empty() {
                        "any listed in the policy file (none by default)".to_owned()
                    } else {
                        format!("those listed in the policy file: {}", items.join(", "))
                    };
                    format!(
                        "- `{key}`: {what} ({}; {see}) and {listed}; a policy file in `--policies` adds to both\n",
                        built_in.join(", ")
                    )
                }
                None => format!("- `{key}`: {}\n", items.join(", ")),
            };
            page.push_str(&line);
        }
    }
    page
}

/// Entries of a policy data list that envfence has built in, and that the list adds to: the
/// deployer families' kinds for `nonprod-on-prod-cluster`'s `deployer_kinds`
/// ([`crate::topology::family::deployer_kinds`]). With how the page names them and where it
/// sends the reader.
fn built_in_entries(
    rule: RuleId,
    key: &str,
) -> Option<(&'static str, &'static str, Vec<&'static str>)> {
    match (rule, key) {
        (RuleId::NonprodOnProdCluster, "deployer_kinds") => Some((
            "the deployer families' built-in kinds",
            "see [families](../families.md)",
            crate::topology::family::deployer_kinds().collect(),
        )),
        _ => None,
    }
}

impl<'a> RuleContext<'a> {
    pub fn new(
        files: &'a [SourceFile],
        topology: &'a Topology,
        policies: &'a Policies,
        config: &'a Config,
    ) -> Self {
        // The two configuration-reference rules read every workload's references: that is
        // done once for both, on all cores (its results are small: what crosses environments).
        let reference_pass = reads_references(policies)
            .then(|| config_refs::ReferencePass::new(files, topology, config));
        RuleContext {
            files,
            topology,
            policies,
            config,
            reference_pass,
        }
    }

    /// The contexts of both sides of a diff-aware scan judged with one topology (the base's
    /// files differ only in what the topology does not read): what the sides' references
    /// share is worked out once ([`config_refs::ReferencePass::for_both_sides`]).
    pub fn for_both_sides(
        head: &'a [SourceFile],
        base: &'a [SourceFile],
        topology: &'a Topology,
        policies: &'a Policies,
        config: &'a Config,
    ) -> (Self, Self) {
        let (head_pass, base_pass) = if reads_references(policies) {
            let (h, b) = config_refs::ReferencePass::for_both_sides(head, base, topology, config);
            (Some(h), Some(b))
        } else {
            (None, None)
        };
        let side = |files, reference_pass| RuleContext {
            files,
            topology,
            policies,
            config,
            reference_pass,
        };
        (side(head, head_pass), side(base, base_pass))
    }
}

/// Whether either configuration-reference rule is enabled: they share one reading of every
/// workload's references.
fn reads_references(policies: &Policies) -> bool {
    let enabled = |rule| policies.severity(rule).is_some();
    enabled(RuleId::NonprodUsesProdConfig) || enabled(RuleId::ProdUsesNonprodConfig)
}

/// What a rule gets to look at.
pub struct RuleContext<'a> {
    pub files: &'a [SourceFile],
    pub topology: &'a Topology,
    pub policies: &'a Policies,
    pub config: &'a Config,
    /// What the two configuration-reference rules share, when either is enabled.
    reference_pass: Option<config_refs::ReferencePass<'a>>,
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
        Box::new(workload_outside_its_tier::WorkloadOutsideItsTier),
        Box::new(unresolved_placement::UnresolvedPlacement),
        Box::new(invalid_yaml::InvalidYaml),
        Box::new(conflicting_environment_labels::ConflictingEnvironmentLabels),
        Box::new(project_denies_destination::ProjectDeniesDestination),
    ]
}

/// Runs every enabled rule.
pub fn run_all(ctx: &RuleContext<'_>) -> Vec<Finding> {
    // Rules run one after the other on the calling thread, in the registry's order, so that
    // their working sets reuse the heap the topology build just freed: on worker threads
    // they grew those threads' heaps at the scan's peak (10 MB at 5,000 apps), for no
    // measurable gain in time.
    let mut findings: Vec<Finding> = registry()
        .iter()
        .filter_map(|rule| {
            let severity = ctx.policies.severity(rule.id())?;
            Some(rule.check(ctx, severity))
        })
        .flatten()
        .collect();
    add_tiers_and_purposes(ctx.topology, &mut findings);
    findings
}

/// Names the tier of each finding's cluster and the purpose of the workload it is about, so
/// that outputs (which only read findings) can show them.
fn add_tiers_and_purposes(topology: &Topology, findings: &mut [Finding]) {
    use crate::topology::Purpose;
    if findings.is_empty() {
        return;
    }
    for f in findings {
        let Some(name) = f.cluster.as_deref() else {
            continue;
        };
        let Some(cluster) = topology.clusters.iter().position(|c| c.name == name) else {
            continue;
        };
        f.tier = topology.clusters[cluster]
            .tier
            .map(|t| t.as_str().to_owned());
        if let Some((file, line)) = &f.subject {
            f.purpose = topology
                .placement_at(file, *line, cluster)
                .map(|p| p.purpose)
                .filter(|p| *p != Purpose::Unknown)
                .map(|p| p.as_str().to_owned());
        }
    }
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
