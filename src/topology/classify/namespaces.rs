//! Namespace environments (DESIGN §3): what a Namespace's labels and annotations say about
//! the environment of every object placed in it.
//!
//! The keys are `environment`, `env`, `stage`, any key ending in `/environment`,
//! `/environment-name`, `/env` or `/is-production`, and the config's
//! `namespaces.environment-keys`. A key ending in `is-production` takes `"true"` or
//! `"false"`; the others take an environment name, read with the environment words.

use crate::documents::Document;
use crate::topology::env::{Env, Vocabulary};

/// Keys that name an environment wherever they stand.
const KEYS: &[&str] = &["environment", "env", "stage"];
/// Endings of prefixed keys (`acme.io/environment-name`) that name an environment.
const KEY_ENDINGS: &[&str] = &[
    "/environment",
    "/environment-name",
    "/env",
    "/is-production",
];

/// One label or annotation of a Namespace that says what its environment is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentLabel {
    pub key: String,
    pub value: String,
    pub env: Env,
    /// The line of the key.
    pub line: u32,
    /// An annotation rather than a label.
    pub annotation: bool,
}

impl EnvironmentLabel {
    /// `label acme.io/is-production=true`, as notes and messages name it.
    pub fn describe(&self) -> String {
        let what = if self.annotation {
            "annotation"
        } else {
            "label"
        };
        format!("{what} {}={}", self.key, self.value)
    }
}

/// Whether `key` names an environment: a built-in key or one of `extra` (the config's).
pub fn is_environment_key(key: &str, extra: &[String]) -> bool {
    KEYS.contains(&key)
        || KEY_ENDINGS.iter().any(|end| key.ends_with(end))
        || extra.iter().any(|k| k == key)
}

/// What the value of an environment key says: `true`/`false` for an `is-production` key, the
/// environment words for any other.
fn verdict(key: &str, value: &str, vocabulary: &Vocabulary) -> Option<Env> {
    if key.ends_with("is-production") {
        return match value.trim().to_ascii_lowercase().as_str() {
            "true" => Some(Env::Production),
            "false" => Some(Env::NonProduction),
            _ => None,
        };
    }
    vocabulary.classify_workload(value).map(|m| m.env)
}

/// The labels, then annotations, of a Namespace document that name an environment, in the
/// order of their lines. `extra` are the config's `namespaces.environment-keys`.
pub fn environment_labels(
    doc: &Document,
    extra: &[String],
    vocabulary: &Vocabulary,
) -> Vec<EnvironmentLabel> {
    let metadata = doc.root.get("metadata");
    let mut out = Vec::new();
    for (field, map, annotation) in [
        ("labels", &doc.labels, false),
        ("annotations", &doc.annotations, true),
    ] {
        for (key, value) in map {
            if !is_environment_key(key, extra) {
                continue;
            }
            let Some(env) = verdict(key, value, vocabulary) else {
                continue;
            };
            let line = metadata
                .and_then(|m| m.get(field))
                .and_then(|m| m.entry(key))
                .map_or(doc.first_line, |e| e.key.span.line);
            out.push(EnvironmentLabel {
                key: key.clone(),
                value: value.clone(),
                env,
                line,
                annotation,
            });
        }
    }
    out.sort_by_key(|l| l.line);
    out
}

/// The label that decides the namespace's environment: the first non-production one, else
/// the first production one. As for a workload's own signals, non-production wins when they
/// disagree (DESIGN §3).
pub fn deciding(labels: &[EnvironmentLabel]) -> Option<&EnvironmentLabel> {
    labels
        .iter()
        .find(|l| l.env == Env::NonProduction)
        .or_else(|| labels.first())
}

/// Whether the namespace's name says nothing of its environment or says what `env` says.
pub fn name_agrees(name: &str, env: Env, vocabulary: &Vocabulary) -> bool {
    vocabulary
        .classify_workload(name)
        .is_none_or(|m| m.env == env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::{load, Loaded};
    use std::sync::Arc;

    fn namespace(text: &str) -> Document {
        let path: Arc<str> = Arc::from("ns.yaml");
        match load(&path, text.as_bytes(), None) {
            Loaded::File(file) => file.documents[0].clone(),
            _ => panic!("parses"),
        }
    }

    #[test]
    fn built_in_and_configured_keys() {
        assert!(is_environment_key("env", &[]));
        assert!(is_environment_key("acme.io/is-production", &[]));
        assert!(is_environment_key(
            "cloud-platform.justice.gov.uk/environment-name",
            &[]
        ));
        assert!(!is_environment_key("environment-name", &[]));
        assert!(!is_environment_key("team", &[]));
        assert!(is_environment_key("tier-name", &["tier-name".to_owned()]));
    }

    #[test]
    fn labels_and_annotations_with_their_lines() {
        let doc = namespace(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: reports-dev\n  labels:\n    acme.io/is-production: \"true\"\n    team: reports\n    acme.io/environment-name: dev\n  annotations:\n    acme.io/env: staging\n    acme.io/is-production: maybe\n",
        );
        let labels = environment_labels(&doc, &[], &Vocabulary::default());
        let summary: Vec<(String, Env, u32, bool)> = labels
            .iter()
            .map(|l| (l.key.clone(), l.env, l.line, l.annotation))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("acme.io/is-production".into(), Env::Production, 6, false),
                (
                    "acme.io/environment-name".into(),
                    Env::NonProduction,
                    8,
                    false
                ),
                ("acme.io/env".into(), Env::NonProduction, 10, true),
            ]
        );
        assert_eq!(deciding(&labels).map(|l| l.line), Some(8));
        assert_eq!(labels[0].describe(), "label acme.io/is-production=true");
        assert!(!name_agrees(
            "payments-prod",
            Env::NonProduction,
            &Vocabulary::default()
        ));
        assert!(name_agrees(
            "payments",
            Env::NonProduction,
            &Vocabulary::default()
        ));
    }
}
