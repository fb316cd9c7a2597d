//! `.envfence.yaml`: the optional configuration file at the repository root (DESIGN §5).
//!
//! Mistakes here are the user's to fix, so every error names the file, line and column, and
//! unknown keys are rejected rather than ignored (a typo must not silently turn a rule off).

use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::documents::{path as field_path, yaml, FieldPath, Node};
use crate::rules::RuleId;

/// The file name looked for at the repository root.
pub const FILE_NAME: &str = ".envfence.yaml";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Environment {
    Production,
    NonProduction,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterDecl {
    pub name: String,
    #[serde(default)]
    pub server: Option<String>,
    pub environment: Environment,
    #[serde(default)]
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentWords {
    /// Extra environment words, added to the built-in tokens.
    #[serde(default)]
    pub words: Vec<String>,
    /// Host names or globs (`*.example.com`) that belong to this environment.
    #[serde(default)]
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environments {
    #[serde(default)]
    pub production: EnvironmentWords,
    #[serde(default, rename = "non-production")]
    pub non_production: EnvironmentWords,
}

/// "Files matching `glob` land on `cluster`", for files no deployer reaches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathRule {
    pub glob: String,
    pub cluster: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleLevel {
    Off,
    Info,
    Warning,
    Error,
}

/// Per-rule levels. One field per rule id, so that serde rejects an unknown id with its line.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    #[serde(default, rename = "nonprod-on-prod-cluster")]
    nonprod_on_prod_cluster: Option<RuleLevel>,
    #[serde(default, rename = "nonprod-uses-prod-config")]
    nonprod_uses_prod_config: Option<RuleLevel>,
    #[serde(default, rename = "prod-uses-nonprod-config")]
    prod_uses_nonprod_config: Option<RuleLevel>,
    #[serde(default, rename = "mixed-environment-cluster")]
    mixed_environment_cluster: Option<RuleLevel>,
    #[serde(default, rename = "no-network-isolation")]
    no_network_isolation: Option<RuleLevel>,
    #[serde(default, rename = "unresolved-placement")]
    unresolved_placement: Option<RuleLevel>,
    #[serde(default, rename = "invalid-yaml")]
    invalid_yaml: Option<RuleLevel>,
    #[serde(default, rename = "unused-suppression")]
    unused_suppression: Option<RuleLevel>,
}

impl RulesConfig {
    /// The levels the file sets, by rule.
    pub fn levels(&self) -> Vec<(RuleId, RuleLevel)> {
        [
            (RuleId::NonprodOnProdCluster, self.nonprod_on_prod_cluster),
            (RuleId::NonprodUsesProdConfig, self.nonprod_uses_prod_config),
            (RuleId::ProdUsesNonprodConfig, self.prod_uses_nonprod_config),
            (
                RuleId::MixedEnvironmentCluster,
                self.mixed_environment_cluster,
            ),
            (RuleId::NoNetworkIsolation, self.no_network_isolation),
            (RuleId::UnresolvedPlacement, self.unresolved_placement),
            (RuleId::InvalidYaml, self.invalid_yaml),
            (RuleId::UnusedSuppression, self.unused_suppression),
        ]
        .into_iter()
        .filter_map(|(rule, level)| Some((rule, level?)))
        .collect()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub clusters: Vec<ClusterDecl>,
    #[serde(default)]
    pub environments: Environments,
    #[serde(default)]
    pub paths: Vec<PathRule>,
    #[serde(default)]
    pub rules: RulesConfig,
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Where the config came from, for diagnostics that point into it.
    #[serde(skip)]
    pub source: Option<ConfigSource>,
    #[serde(skip)]
    ignore_set: GlobSet,
}

/// The config file's path and its span tree, so that later stages can point into it.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    pub path: PathBuf,
    pub root: Option<Node>,
    /// How evidence names the file: `.envfence.yaml` for the repository's own config, the
    /// path as given for `--config`.
    pub shown: String,
}

impl ConfigSource {
    /// The line of a field of the config file, e.g. `clusters[1].name`.
    pub fn line_of(&self, path: &str) -> Option<u32> {
        let path = FieldPath::parse(path).ok()?;
        field_path::locate(self.root.as_ref()?, &path).map(|l| l.pos.line)
    }
}

/// A config problem, already phrased as `file:line:col: message`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Loads `explicit` (which must exist), or `.envfence.yaml` in `root` if there is one.
    pub fn discover(root: &Path, explicit: Option<&Path>) -> Result<Config, ConfigError> {
        match explicit {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError(format!("cannot read config {}: {e}", path.display()))
                })?;
                Config::parse(path, &text)
            }
            None => {
                let path = root.join(FILE_NAME);
                match std::fs::read_to_string(&path) {
                    Ok(text) => Config::parse(&path, &text).map(|mut c| {
                        if let Some(s) = &mut c.source {
                            s.shown = FILE_NAME.to_owned();
                        }
                        c
                    }),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
                    // A directory of that name, or a file we cannot read, is not "missing".
                    Err(e) => Err(ConfigError(format!(
                        "cannot read config {}: {e}",
                        path.display()
                    ))),
                }
            }
        }
    }

    /// Parses and validates config text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        // A panic of the YAML layer is a bug; here it is a config error, not a crash.
        let stream = crate::documents::guard::guarded(|| yaml::parse_stream(text))
            .map_err(|panic| ConfigError(format!("{shown}: the YAML reader failed: {panic}")))?;
        if let Some(e) = &stream.error {
            return Err(ConfigError(format!(
                "{shown}:{}:{}: invalid YAML: {}",
                e.pos.line, e.pos.col, e.message
            )));
        }
        if stream.docs.len() > 1 {
            let line = stream.docs[1].start_line;
            return Err(ConfigError(format!(
                "{shown}:{line}:1: the config holds one YAML document, found more"
            )));
        }
        let root = stream.docs.into_iter().next().map(|d| d.root);
        let mut config = match &root {
            None => Config::default(),
            Some(node) if node.is_null() => Config::default(),
            Some(_) => serde_yaml::from_str::<Config>(text).map_err(|e| {
                let message = e.to_string();
                match e.location() {
                    Some(loc) => {
                        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
                        let message = message.strip_suffix(&suffix).unwrap_or(&message);
                        ConfigError(format!(
                            "{shown}:{}:{}: {message}",
                            loc.line(),
                            loc.column()
                        ))
                    }
                    None => ConfigError(format!("{shown}: {message}")),
                }
            })?,
        };
        config.source = Some(ConfigSource {
            path: path.to_path_buf(),
            root,
            shown: shown.clone(),
        });
        config.validate(&shown)?;
        Ok(config)
    }

    fn validate(&mut self, shown: &str) -> Result<(), ConfigError> {
        let source = self.source.clone();
        let at = |field: String, message: String| {
            let line = source.as_ref().and_then(|s| s.line_of(&field)).unwrap_or(1);
            ConfigError(format!("{shown}:{line}: {message}"))
        };
        let mut seen = std::collections::BTreeMap::new();
        for (i, cluster) in self.clusters.iter().enumerate() {
            if cluster.name.trim().is_empty() {
                return Err(at(
                    format!("clusters[{i}].name"),
                    "a cluster needs a name".into(),
                ));
            }
            for name in std::iter::once(&cluster.name).chain(&cluster.aliases) {
                if let Some(first) = seen.insert(name.clone(), i) {
                    return Err(at(
                        format!("clusters[{i}]"),
                        format!("cluster name `{name}` is already used by clusters[{first}]"),
                    ));
                }
            }
        }
        let mut ignore = GlobSetBuilder::new();
        for (i, pattern) in self.ignore.iter().enumerate() {
            let glob = Glob::new(pattern).map_err(|e| {
                at(
                    format!("ignore[{i}]"),
                    format!("invalid glob `{pattern}`: {e}"),
                )
            })?;
            ignore.add(glob);
        }
        self.ignore_set = ignore
            .build()
            .map_err(|e| at("ignore".into(), format!("invalid ignore globs: {e}")))?;
        for (i, rule) in self.paths.iter().enumerate() {
            Glob::new(&rule.glob).map_err(|e| {
                at(
                    format!("paths[{i}].glob"),
                    format!("invalid glob `{}`: {e}", rule.glob),
                )
            })?;
        }
        let host_lists = [
            ("production", &self.environments.production.hosts),
            ("non-production", &self.environments.non_production.hosts),
        ];
        for (env, hosts) in host_lists {
            for (i, host) in hosts.iter().enumerate() {
                Glob::new(host).map_err(|e| {
                    at(
                        format!("environments.{env}.hosts[{i}]"),
                        format!("invalid host pattern `{host}`: {e}"),
                    )
                })?;
            }
        }
        Ok(())
    }

    /// True when the config's `ignore` globs exclude this repository-relative path.
    pub fn is_ignored(&self, rel_path: &str) -> bool {
        !self.ignore.is_empty() && self.ignore_set.is_match(rel_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new(".envfence.yaml"), text)
    }

    #[test]
    fn full_example_parses() {
        let c = parse(
            r#"
clusters:
  - name: prod-eu
    server: https://prod-eu.k8s.example.com
    environment: production
    aliases: [prod-eu-1]
environments:
  production:
    words: [live]
    hosts: [api.example.com, "*.payments-live.net"]
  non-production:
    words: [sbx]
    hosts: ["*.staging.example.com"]
paths:
  - glob: "legacy/eu/**"
    cluster: prod-eu
rules:
  no-network-isolation: off
ignore: ["vendor/**"]
"#,
        )
        .expect("valid");
        assert_eq!(c.clusters[0].environment, Environment::Production);
        assert_eq!(
            c.rules.levels(),
            vec![(RuleId::NoNetworkIsolation, RuleLevel::Off)]
        );
        assert!(c.is_ignored("vendor/a/b.yaml"));
        assert!(!c.is_ignored("apps/a.yaml"));
        assert_eq!(
            c.source
                .as_ref()
                .and_then(|s| s.line_of("paths[0].cluster")),
            Some(16)
        );
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        let e = parse("clusters:\n  - name: a\n    environment: production\n    lables: {}\n")
            .expect_err("unknown key");
        assert!(e.0.starts_with(".envfence.yaml:4:5: "), "{}", e.0);
        assert!(e.0.contains("unknown field `lables`"), "{}", e.0);
        let e = parse("rules:\n  no-such-rule: off\n").expect_err("unknown rule");
        assert!(
            e.0.contains(":2:") && e.0.contains("no-such-rule"),
            "{}",
            e.0
        );
        let e = parse("rules:\n  invalid-yaml: loud\n").expect_err("bad level");
        assert!(e.0.contains(":2:"), "{}", e.0);
    }

    #[test]
    fn semantic_errors_point_at_their_line() {
        let e = parse("ignore:\n  - ok/**\n  - 'bad[glob'\n").expect_err("glob");
        assert!(e.0.starts_with(".envfence.yaml:3: invalid glob"), "{}", e.0);
        let e = parse(
            "clusters:\n  - {name: a, environment: production}\n  - {name: a, environment: non-production}\n",
        )
        .expect_err("dup");
        assert!(
            e.0.starts_with(".envfence.yaml:3: cluster name `a`"),
            "{}",
            e.0
        );
    }

    #[test]
    fn empty_and_comment_only_files_are_fine() {
        assert!(parse("").is_ok());
        assert!(parse("# nothing yet\n").is_ok());
        assert!(parse("a: [").is_err());
        // A block scalar that runs to the end of the file, with no final line break.
        let c = parse("clusters:\n  - name: prod\n    environment: production\n    server: |\n      https://prod.example").expect("valid");
        assert_eq!(c.clusters.len(), 1);
    }
}
