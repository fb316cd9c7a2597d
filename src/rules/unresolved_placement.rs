//! `unresolved-placement`: a deployer whose destination cannot be resolved statically.
//!
//! **Why it matters**: envfence can only check what it can place. An unknown cluster name, a
//! pull-request or SCM generator, another repository or a Helm chart it does not render hides
//! where a workload lands, and so hides any violation there.
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
