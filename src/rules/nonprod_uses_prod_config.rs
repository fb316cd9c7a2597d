//! The `nonprod-uses-prod-config` check. What it reports, why that matters and how to fix it are
//! written once, in `policies/nonprod-uses-prod-config.yaml`, the source of
//! `docs/rules/nonprod-uses-prod-config.md` (DESIGN §4).
//!
//! **Example**: a test Job on a dev cluster pointed at the production database.
//! ```yaml
//! env:
//!   - name: ORDERS_DB_URL
//!     value: postgres://orders@orders-db.prod.acme.internal/orders   # nonprod-uses-prod-config
//! ```
//! Values are read as URLs, connection strings and host names, matched against the config's
//! `environments.production.hosts` and then by environment words; ConfigMap and Secret names
//! and image tags count too.

use super::config_refs::check;
use super::{Rule, RuleContext, RuleId};
use crate::findings::{Finding, Severity};
use crate::topology::Env;

pub struct NonprodUsesProdConfig;

impl Rule for NonprodUsesProdConfig {
    fn id(&self) -> RuleId {
        RuleId::NonprodUsesProdConfig
    }

    fn check(&self, ctx: &RuleContext<'_>, severity: Severity) -> Vec<Finding> {
        check(
            ctx,
            self.id(),
            severity,
            Env::NonProduction,
            Env::Production,
        )
    }
}
