//! The `invalid-yaml` check. What it reports, why that matters and how to fix it are written once,
//! in `policies/invalid-yaml.yaml`, the source of `docs/rules/invalid-yaml.md` (DESIGN §4).
//!
//! **Example**: a tab in indentation.
//! ```yaml
//! metadata:
//! →name: web      # invalid-yaml: found a tab character that violates indentation
//! ```
//! Helm chart templates and other files with `{{ }}` template syntax are skipped with a note
//! instead: they are not YAML until rendered.

use super::{Rule, RuleContext, RuleId};
use crate::findings::{Finding, Location, Severity};

pub struct InvalidYaml;

impl Rule for InvalidYaml {
    fn id(&self) -> RuleId {
        RuleId::InvalidYaml
    }

    fn check(&self, ctx: &RuleContext<'_>, severity: Severity) -> Vec<Finding> {
        ctx.files
            .iter()
            .filter_map(|file| file.problem.as_ref())
            .map(|problem| {
                let location = Location::new(&problem.file, problem.pos.line.max(1))
                    .with_column(problem.pos.col.max(1));
                Finding::new(
                    RuleId::InvalidYaml,
                    severity,
                    location,
                    problem.message.clone(),
                )
                // The parser's wording identifies the problem without its position, so a
                // fix elsewhere in the file does not make the finding look new.
                .discriminator(&problem.message)
            })
            .collect()
    }
}
