//! `prod-uses-nonprod-config`: a production workload refers to non-production endpoints or
//! config.
//!
//! **Why it matters**: production that depends on a staging cache or a dev queue breaks when
//! that environment is reset, and lets whoever controls non-production influence production.
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
