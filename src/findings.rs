//! Findings: what a rule reports. A finding cannot exist without a rule, a severity and a
//! primary location; everything else (resource, cluster, evidence) is added by the rule.
//! Outputs only read findings; the stable JSON form lives in `output::json`.

use crate::evidence::Hop;
use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::documents::ResourceId;
pub use crate::evidence::Evidence;
pub use crate::location::Location;
use crate::vocabulary::RuleId;
pub use crate::vocabulary::Severity;

/// Where a finding stands against a base revision (`--base`). A scan without a base has
/// nothing to compare with, so all its findings are `New`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Status {
    #[default]
    New,
    Existing,
    Fixed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Existing => "existing",
            Status::Fixed => "fixed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: RuleId,
    pub severity: Severity,
    pub message: String,
    pub location: Location,
    pub resource: Option<ResourceId>,
    pub cluster: Option<String>,
    pub environment: Option<String>,
    /// The cluster's tier (`staging`, `testing`, ...), where the cluster has one.
    pub tier: Option<String>,
    /// The purpose of the workload the finding is about (`load-test`, `ci`, ...), where known.
    pub purpose: Option<String>,
    pub evidence: Vec<Evidence>,
    /// Identifies "the same problem" across runs; does not depend on line numbers.
    pub fingerprint: String,
    pub status: Status,
    pub suppressed: bool,
    /// The document the finding is about (file, first line), for suppressions on the
    /// resource; not part of the JSON report.
    pub subject: Option<(Arc<str>, u32)>,
    /// Every object (or namespace) a grouped finding stands for, when its message names only
    /// the first few; empty otherwise.
    pub members: Vec<Member>,
    /// Set by [`Finding::discriminator`]; part of the fingerprint.
    discriminator: Option<String>,
}

/// One of the objects or namespaces a grouped finding stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub resource: ResourceId,
    /// Where the object is written; `None` for a namespace known only by its objects.
    pub location: Option<Location>,
}

impl Finding {
    /// Starts a finding. The rule, severity and primary location are required up front.
    pub fn new(
        rule: RuleId,
        severity: Severity,
        location: Location,
        message: impl Into<String>,
    ) -> Self {
        let mut finding = Finding {
            rule,
            severity,
            message: redacted(message.into()),
            location,
            resource: None,
            cluster: None,
            environment: None,
            tier: None,
            purpose: None,
            evidence: Vec::new(),
            fingerprint: String::new(),
            status: Status::New,
            suppressed: false,
            subject: None,
            members: Vec::new(),
            discriminator: None,
        };
        finding.fingerprint = finding.compute_fingerprint();
        finding
    }

    pub fn resource(mut self, resource: ResourceId) -> Self {
        self.resource = Some(resource);
        self.fingerprint = self.compute_fingerprint();
        self
    }

    /// The document this finding is about: an `envfence.dev/ignore` annotation or an ignore
    /// comment on it applies wherever the finding points.
    pub fn subject(mut self, file: &Arc<str>, first_line: u32) -> Self {
        self.subject = Some((Arc::clone(file), first_line));
        self
    }

    pub fn cluster(mut self, cluster: impl Into<String>, environment: impl Into<String>) -> Self {
        self.cluster = Some(cluster.into());
        self.environment = Some(environment.into());
        self.fingerprint = self.compute_fingerprint();
        self
    }

    pub fn evidence(mut self, location: Location, note: impl Into<Arc<str>>) -> Self {
        let note = note.into();
        let note = match crate::redact::secrets(&note) {
            std::borrow::Cow::Borrowed(_) => note,
            std::borrow::Cow::Owned(masked) => masked.into(),
        };
        self.evidence.push(Evidence::new(location, Hop::Said(note)));
        self
    }

    /// Adds a hop of a placement's evidence chain, as it is.
    pub fn hop(mut self, hop: &Evidence) -> Self {
        self.evidence.push(hop.clone());
        self
    }

    /// The full list behind a message that names only the first few of its objects.
    pub fn members(mut self, members: Vec<Member>) -> Self {
        self.members = members;
        self
    }

    /// Distinguishes findings that share rule, file, resource and cluster (for example two
    /// bad env vars of one container) without using line numbers, which shift.
    pub fn discriminator(mut self, key: &str) -> Self {
        self.discriminator = Some(key.to_owned());
        self.fingerprint = self.compute_fingerprint();
        self
    }

    /// Moves the finding's paths (location and evidence) to the files' new names, and
    /// recomputes the fingerprint, so that a base finding matches the same finding after a
    /// rename.
    pub fn follow_renames(&mut self, renames: &HashMap<Arc<str>, Arc<str>>) {
        if renames.is_empty() {
            return;
        }
        let rename = |file: &mut Arc<str>| {
            if let Some(new) = renames.get(file) {
                *file = Arc::clone(new);
            }
        };
        rename(&mut self.location.file);
        for e in &mut self.evidence {
            rename(&mut e.location.file);
        }
        for m in &mut self.members {
            if let Some(at) = &mut m.location {
                rename(&mut at.file);
            }
        }
        if let Some((file, _)) = &mut self.subject {
            rename(file);
        }
        self.fingerprint = self.compute_fingerprint();
    }

    fn compute_fingerprint(&self) -> String {
        let mut h = Sha256::new();
        let mut part = |s: &str| {
            h.update(s.as_bytes());
            h.update([0u8]);
        };
        part(self.rule.as_str());
        part(&self.location.file);
        if let Some(r) = &self.resource {
            for field in [&r.api_version, &r.kind, &r.namespace, &r.name] {
                part(field.as_deref().unwrap_or(""));
            }
        }
        part(self.cluster.as_deref().unwrap_or(""));
        part(self.discriminator.as_deref().unwrap_or(""));
        let digest = h.finalize();
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

/// Text of a finding with credentials masked (see [`crate::redact`]): every output format
/// renders these fields, so this is the one place they are redacted.
fn redacted(text: String) -> String {
    match crate::redact::secrets(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(masked) => masked,
    }
}

/// Findings in report order: by file and line, the most severe first, then by rule.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (&a.location.file, a.location.line, a.location.column)
            .cmp(&(&b.location.file, b.location.line, b.location.column))
            .then(b.severity.cmp(&a.severity))
            .then(a.rule.as_str().cmp(b.rule.as_str()))
            .then(a.message.cmp(&b.message))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_line_shifts_but_not_identity() {
        let file: Arc<str> = Arc::from("a.yaml");
        let a = Finding::new(
            RuleId::InvalidYaml,
            Severity::Warning,
            Location::new(&file, 3),
            "x",
        );
        let b = Finding::new(
            RuleId::InvalidYaml,
            Severity::Warning,
            Location::new(&file, 9),
            "x",
        );
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.fingerprint.len(), 16);
        let c = b.clone().cluster("prod", "production");
        assert_ne!(a.fingerprint, c.fingerprint);
        let d = a.clone().discriminator("env[0]");
        assert_ne!(a.fingerprint, d.fingerprint);
        // Later builder calls keep the discriminator.
        let e = a
            .clone()
            .discriminator("env[0]")
            .cluster("prod", "production");
        assert_ne!(e.fingerprint, c.fingerprint);
    }

    #[test]
    fn severities_are_ordered() {
        assert!(Severity::Error > Severity::Warning && Severity::Warning > Severity::Info);
    }
}
