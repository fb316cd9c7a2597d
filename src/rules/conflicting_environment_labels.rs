//! The `conflicting-environment-labels` check. What it reports, why that matters and how to fix
//! it are written once, in `policies/conflicting-environment-labels.yaml`, the source of
//! `docs/rules/conflicting-environment-labels.md` (DESIGN §4).
//!
//! **Example**: a namespace that says it is production and development at once.
//! ```yaml
//! kind: Namespace
//! metadata:
//!   name: reports
//!   labels:
//!     acme.io/is-production: "true"     # conflicting-environment-labels
//!     acme.io/environment-name: dev
//! ```
//! One finding per Namespace document of the repository (rendered charts are left out), at
//! the line of the label envfence does not follow; a name that contradicts labels which agree
//! is reported at the line of the label that decides.

use std::sync::Arc;

use super::{Rule, RuleContext, RuleId};
use crate::documents::{Document, ResourceId};
use crate::evidence::{Hop, NamespaceEnvironmentHop};
use crate::findings::{Evidence, Finding, Location, Severity};
use crate::topology::classify::namespaces::{self, EnvironmentLabel};
use crate::topology::env::Vocabulary;

pub struct ConflictingEnvironmentLabels;

impl Rule for ConflictingEnvironmentLabels {
    fn id(&self) -> RuleId {
        RuleId::ConflictingEnvironmentLabels
    }

    fn check(&self, ctx: &RuleContext<'_>, severity: Severity) -> Vec<Finding> {
        let words = &ctx.config.environments;
        let vocabulary = Vocabulary::new(
            words.production.words.clone(),
            words.non_production.words.clone(),
        );
        let keys = &ctx.config.namespaces.environment_keys;
        let mut findings = Vec::new();
        // The repository's own files: a rendered Namespace is its template's, once per render.
        for file in ctx.files.iter().take(ctx.topology.rendered_from) {
            for doc in file.documents.iter() {
                if !doc.is_manifest() || doc.id.kind.as_deref() != Some("Namespace") {
                    continue;
                }
                let Some(name) = doc.id.name.as_deref() else {
                    continue;
                };
                let labels = namespaces::environment_labels(doc, keys, &vocabulary);
                if let Some(f) = conflict(doc, name, &labels, &vocabulary, severity) {
                    findings.push(f);
                }
            }
        }
        findings
    }
}

/// The finding about one Namespace document, if its labels disagree with each other or
/// with its name.
fn conflict(
    doc: &Document,
    name: &str,
    labels: &[EnvironmentLabel],
    vocabulary: &Vocabulary,
    severity: Severity,
) -> Option<Finding> {
    let deciding = namespaces::deciding(labels)?;
    let at = |line: u32| Location::new(&doc.file, line);
    let (location, message) = match labels.iter().find(|l| l.env != deciding.env) {
        Some(other) => (
            at(other.line),
            format!(
                "namespace {name}: {} says {}, but {} (line {}) says {}; envfence treats the namespace and every object in it as {}",
                other.describe(),
                other.env,
                deciding.describe(),
                deciding.line,
                deciding.env,
                deciding.env
            ),
        ),
        None => {
            let word = vocabulary
                .classify_workload(name)
                .filter(|m| m.env != deciding.env)?;
            (
                at(deciding.line),
                format!(
                    "namespace {name}: its name says {} (`{}`), but {} says {}; envfence follows the {}, so the namespace and every object in it are {}",
                    word.env,
                    word.token,
                    deciding.describe(),
                    deciding.env,
                    if deciding.annotation {
                        "annotation"
                    } else {
                        "label"
                    },
                    deciding.env
                ),
            )
        }
    };
    let hop = Evidence::new(
        at(deciding.line),
        Hop::NamespaceEnvironment(Box::new(NamespaceEnvironmentHop {
            namespace: Arc::from(name),
            key: deciding.key.as_str().into(),
            value: deciding.value.as_str().into(),
            annotation: deciding.annotation,
            environment: deciding.env.as_str(),
        })),
    );
    Some(
        Finding::new(
            RuleId::ConflictingEnvironmentLabels,
            severity,
            location,
            message,
        )
        .resource(ResourceId {
            api_version: doc.id.api_version.clone(),
            kind: doc.id.kind.clone(),
            name: doc.id.name.clone(),
            namespace: None,
        })
        .subject(&doc.file, doc.first_line)
        .hop(&hop),
    )
}
