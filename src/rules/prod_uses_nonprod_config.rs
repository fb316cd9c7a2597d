//! The `prod-uses-nonprod-config` check. What it reports, why that matters and how to fix it are
//! written once, in `policies/prod-uses-nonprod-config.yaml`, the source of
//! `docs/rules/prod-uses-nonprod-config.md` (DESIGN §4).
//!
//! **Example**: a production patch left pointing at the staging cache.
//! ```yaml
//! env:
//!   - name: REDIS_URL
//!     value: redis://cache.staging.acme.internal:6379/0   # prod-uses-nonprod-config
//! ```

use super::config_refs::check;
use super::{Rule, RuleContext, RuleId};
use crate::findings::{Finding, Severity};
use crate::topology::Env;

pub struct ProdUsesNonprodConfig;

impl Rule for ProdUsesNonprodConfig {
    fn id(&self) -> RuleId {
        RuleId::ProdUsesNonprodConfig
    }

    fn check(&self, ctx: &RuleContext<'_>, severity: Severity) -> Vec<Finding> {
        check(
            ctx,
            self.id(),
            severity,
            Env::Production,
            Env::NonProduction,
        )
    }
}
