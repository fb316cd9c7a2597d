//! The `unresolved-placement` check. What it reports, why that matters and how to fix it are
//! written once, in `policies/unresolved-placement.yaml`, the source of
//! `docs/rules/unresolved-placement.md` (DESIGN §4).
//!
//! **Example**: an Application whose cluster is declared nowhere.
//! ```yaml
//! spec:
//!   destination:
//!     name: somewhere    # unresolved-placement: declare it in .envfence.yaml `clusters`
//! ```
//! One finding per unresolved entry of the topology, with its reason.

use super::{Rule, RuleContext, RuleId};
use crate::findings::{Finding, Severity};

pub struct UnresolvedPlacement;

impl Rule for UnresolvedPlacement {
    fn id(&self) -> RuleId {
        RuleId::UnresolvedPlacement
    }

    fn check(&self, ctx: &RuleContext<'_>, severity: Severity) -> Vec<Finding> {
        ctx.topology
            .unresolved
            .iter()
            .map(|u| {
                Finding::new(self.id(), severity, u.location.clone(), u.reason.clone())
                    .discriminator(&u.reason)
            })
            .collect()
    }
}
