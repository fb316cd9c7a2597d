//! Cluster tiers and workload purposes (DESIGN §3 "Tiers" and "Workload purpose").
//!
//! A cluster's tier says what kind of non-production it is (a staging copy of production, a
//! development cluster, a cluster for load and security tests, the in-house tools); a
//! workload's purpose says what it is for (a feature preview, an integration, load or security
//! test, a CI runner). The words, tool kinds and images that decide both are data in
//! `policies/workload-outside-its-tier.yaml`; this module reads the built-in copy.

use compact_str::CompactString;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;

use crate::config::Config;
use crate::documents::Document;
use crate::location::Location;
use crate::topology::env::{tokens, Env};
use crate::topology::{Placement, Topology};
pub use crate::vocabulary::{Purpose, Tier};

impl Tier {
    /// The environment this tier implies.
    pub fn environment(self) -> Env {
        match self {
            Tier::Production => Env::Production,
            _ => Env::NonProduction,
        }
    }
}

impl Purpose {
    /// The prefix of this purpose's keys in the policy data (`load_test_words`, ...).
    fn data_key(self) -> &'static str {
        match self {
            Purpose::Production => "production",
            Purpose::Feature => "feature",
            Purpose::IntegrationTest => "integration_test",
            Purpose::LoadTest => "load_test",
            Purpose::SecurityTest => "security_test",
            Purpose::Chaos => "chaos",
            Purpose::Ci => "ci",
            Purpose::Unknown => "unknown",
        }
    }

    /// The purposes a non-production workload can have, in the order words are tried.
    const TESTS: [Purpose; 6] = [
        Purpose::Ci,
        Purpose::SecurityTest,
        Purpose::Chaos,
        Purpose::LoadTest,
        Purpose::IntegrationTest,
        Purpose::Feature,
    ];
}

/// A word as a run of tokens (`load-test` → `load`, `test`).
type Phrase = Vec<CompactString>;

/// The words, tool kinds, images and default homes of the tier rule's policy data.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    tier_words: Vec<(Tier, Vec<Phrase>)>,
    purpose_words: Vec<(Purpose, Vec<Phrase>)>,
    machinery: Vec<String>,
    /// (purpose, API group, kind).
    kinds: Vec<(Purpose, String, String)>,
    images: Vec<(Purpose, String)>,
    posture_images: Vec<String>,
    homes: Vec<(Purpose, Vec<Tier>)>,
}

/// A string list of a policy file's `data`, empty when absent.
pub fn list(data: &BTreeMap<String, serde_yaml::Value>, key: &str) -> Vec<String> {
    data.get(key)
        .and_then(|v| v.as_sequence())
        .map(|seq| {
            seq.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn phrases(words: Vec<String>) -> Vec<Phrase> {
    words
        .iter()
        .map(|w| tokens(w))
        .filter(|p| !p.is_empty())
        .collect()
}

impl Catalog {
    /// The catalog of the built-in policy file.
    pub fn builtin() -> &'static Catalog {
        static BUILTIN: OnceLock<Catalog> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            #[derive(Deserialize)]
            struct DataOnly {
                #[serde(default)]
                data: BTreeMap<String, serde_yaml::Value>,
            }
            let text = include_str!("../../../policies/workload-outside-its-tier.yaml");
            // A broken embedded policy is a build defect that the policy tests catch.
            serde_yaml::from_str::<DataOnly>(text)
                .map(|d| Catalog::from_data(&d.data))
                .unwrap_or_default()
        })
    }

    /// Reads a policy's `data` (built in, or extended by `--policies`).
    pub fn from_data(data: &BTreeMap<String, serde_yaml::Value>) -> Catalog {
        let tier_words = [
            Tier::Staging,
            Tier::Development,
            Tier::Testing,
            Tier::Internal,
        ]
        .into_iter()
        .map(|t| {
            (
                t,
                phrases(list(data, &format!("{}_tier_words", t.as_str()))),
            )
        })
        .collect();
        let purpose_words = Purpose::TESTS
            .into_iter()
            .map(|p| (p, phrases(list(data, &format!("{}_words", p.data_key())))))
            .collect();
        let mut kinds = Vec::new();
        let mut images = Vec::new();
        for p in Purpose::TESTS {
            for entry in list(data, &format!("{}_kinds", p.data_key())) {
                let (group, kind) = entry.rsplit_once('/').unwrap_or(("", &entry));
                kinds.push((p, group.to_owned(), kind.to_owned()));
            }
            for entry in list(data, &format!("{}_images", p.data_key())) {
                images.push((p, entry.to_ascii_lowercase()));
            }
        }
        let homes = Purpose::ALL
            .into_iter()
            .map(|p| {
                let tiers = list(data, &format!("homes_{}", p.data_key()))
                    .iter()
                    .filter_map(|t| Tier::parse(t))
                    .collect();
                (p, tiers)
            })
            .collect();
        Catalog {
            tier_words,
            purpose_words,
            machinery: list(data, "machinery_words"),
            kinds,
            images,
            posture_images: list(data, "posture_scanner_images"),
            homes,
        }
    }

    /// The default homes of a purpose.
    pub fn homes(&self, purpose: Purpose) -> Vec<Tier> {
        self.homes
            .iter()
            .find(|(p, _)| *p == purpose)
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    }

    /// The non-production tier a cluster name or label value names, with the word.
    pub fn tier_word(&self, name: &str) -> Option<(Tier, String)> {
        let toks = tokens(name);
        self.tier_words
            .iter()
            .find_map(|(tier, words)| Some((*tier, find_phrase(&toks, words)?)))
    }

    /// The purpose a name gives (a namespace, a folder, a deployer's name), with the word.
    /// A tool's machinery (`k6-operator`) has none.
    pub fn purpose_word(&self, name: &str) -> Option<(Purpose, String)> {
        // Notes carry punctuation (`(ephemeral)`): only letters and digits make words.
        let plain: String = name
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { '-' })
            .collect();
        let toks = tokens(&plain);
        if toks.iter().any(|t| self.machinery.iter().any(|m| m == t)) {
            return None;
        }
        for (purpose, words) in &self.purpose_words {
            if let Some(word) = find_phrase(&toks, words) {
                return Some((*purpose, word));
            }
            if *purpose == Purpose::Feature {
                if let Some(pr) = pull_request(&toks) {
                    return Some((Purpose::Feature, pr));
                }
            }
        }
        None
    }

    /// The tool an object is, by its kind or its images: what only tests, load tools,
    /// application security testers and CI runners use. Returns the purpose and why.
    pub fn tool(
        &self,
        api_version: Option<&str>,
        kind: &str,
        images: &[(String, u32)],
    ) -> Option<(Purpose, String)> {
        let group = api_version
            .and_then(|v| v.rsplit_once('/').map(|(g, _)| g))
            .unwrap_or("");
        if let Some((p, g, k)) = self
            .kinds
            .iter()
            .find(|(_, g, k)| k == kind && (g.is_empty() || g == group))
        {
            let kind_label = if g.is_empty() {
                k.clone()
            } else {
                format!("{g}/{k}")
            };
            return Some((*p, format!("kind {kind_label} is a {p} tool")));
        }
        for (image, _) in images {
            let repo = repository_of(image);
            if self.posture_images.iter().any(|e| image_matches(&repo, e)) {
                return None;
            }
            if let Some((p, _)) = self.images.iter().find(|(_, e)| image_matches(&repo, e)) {
                return Some((*p, format!("image {repo} is a {p} tool")));
            }
        }
        None
    }

    /// Whether an object runs a cluster-posture scanner (never a security test).
    pub fn is_posture_scanner(&self, images: &[(String, u32)]) -> bool {
        images.iter().any(|(image, _)| {
            let repo = repository_of(image);
            self.posture_images.iter().any(|e| image_matches(&repo, e))
        })
    }
}

/// The first phrase of `words` found as a run of tokens, spelled with `-`.
fn find_phrase(toks: &[CompactString], words: &[Phrase]) -> Option<String> {
    for i in 0..toks.len() {
        // `load-balancer` is not a load test.
        if toks[i] == "load"
            && toks
                .get(i + 1)
                .is_some_and(|n| n.starts_with("balanc") || n == "lb")
        {
            continue;
        }
        // Longest phrases first: `load-test` before `load`.
        let mut best: Option<&Phrase> = None;
        for w in words {
            if toks[i..].starts_with(w) && best.is_none_or(|b| w.len() > b.len()) {
                best = Some(w);
            }
        }
        if let Some(w) = best {
            // `testing-tools`, `qa-tooling`: what testers use (report dashboards), not a test.
            if toks
                .get(i + w.len())
                .is_some_and(|n| n == "tools" || n == "tooling")
            {
                continue;
            }
            return Some(w.join("-"));
        }
    }
    None
}

/// `pr-123` or `pr123`.
fn pull_request(toks: &[CompactString]) -> Option<String> {
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    toks.iter().enumerate().find_map(|(i, t)| {
        if t == "pr" && toks.get(i + 1).is_some_and(|n| digits(n)) {
            Some(format!("pr-{}", toks[i + 1]))
        } else {
            t.strip_prefix("pr")
                .filter(|n| digits(n))
                .map(|n| format!("pr-{n}"))
        }
    })
}

/// An image's repository: without registry host, tag or digest, lower case
/// (`ghcr.io/grafana/k6:0.49@sha256:…` → `grafana/k6`).
pub fn repository_of(image: &str) -> Cow<'_, str> {
    let image = image.trim();
    let without_digest = image.split('@').next().unwrap_or(image);
    // A tag follows the last `:` after the last `/` (a registry port comes before a `/`).
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    let without_tag = match without_digest[last_slash..].find(':') {
        Some(i) => &without_digest[..last_slash + i],
        None => without_digest,
    };
    // The registry host (a first segment with `.` or `:`, or `localhost`) is not part of it.
    let repository = match without_tag.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest
        }
        _ => without_tag,
    };
    // Every placement's images come through here: no copy unless a letter must be lowered.
    if repository.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(repository.to_ascii_lowercase())
    } else {
        Cow::Borrowed(repository)
    }
}

/// An entry with `/` matches the end of the repository path; one without, its last segment.
fn image_matches(repository: &str, entry: &str) -> bool {
    if entry.contains('/') {
        repository == entry
            || repository
                .strip_suffix(entry)
                .is_some_and(|rest| rest.ends_with('/'))
    } else {
        repository.rsplit('/').next() == Some(entry)
    }
}

/// The strong signal an object's kind or images give its workload class: a load tool, an
/// application security tester or a CI runner is non-production wherever it runs.
pub fn tool_signal(
    doc: Option<&Document>,
    kind: &str,
    images: &[(String, u32)],
) -> Option<crate::topology::Signal> {
    let api_version = doc.and_then(|d| d.id.api_version.as_deref());
    let (_, why) = Catalog::builtin().tool(api_version, kind, images)?;
    Some(crate::topology::Signal {
        env: Env::NonProduction,
        note: why.into(),
        level: crate::topology::SignalLevel::Own,
    })
}

/// Kinds whose name says what they are for, like a Job's.
fn named_by_purpose(kind: &str) -> bool {
    matches!(kind, "Job" | "CronJob" | "Pod" | "Namespace")
}

/// Decides the purpose of every placement (after the classes and cluster environments are
/// final): production workloads are `production`; a non-production workload's purpose comes
/// from what it is (tool kinds and images), then its own identity (folders, namespace,
/// `env` labels, Job name), then its deployer (name, source folder), then the overlays that
/// include it.
pub fn assign_purposes(topology: &mut Topology, index: &crate::topology::RepoIndex<'_>) {
    use rayon::prelude::*;
    let catalog = Catalog::builtin();
    // The reasons most placements share, made once.
    let common = CommonReasons {
        not_non_production: Arc::from("not a non-production workload"),
        nothing_found: Arc::from("no purpose word or tool"),
        posture_scanner: Arc::from("a cluster-posture scanner belongs on every cluster it checks"),
    };
    // Each placement's purpose depends on it alone: decided on all cores, a run of
    // placements at a time. Names, namespaces and folders recur on neighbouring placements
    // (the objects of one delivery), and the answer for a name never changes: each run
    // remembers its answers, and forgets them when it ends, so that the memory stays small.
    topology
        .placements
        .par_chunks_mut(PLACEMENTS_PER_RUN)
        .for_each(|run| {
            let known = RefCell::new(crate::topology::HashMap::default());
            let purpose_word = |name: &str| remembered_purpose_word(&known, name);
            for p in run {
                let doc = p.object.doc.map(|r| index.doc(r));
                let (purpose, reason) = purpose_of(p, doc, catalog, &purpose_word, &common);
                p.purpose = purpose;
                p.purpose_reason = reason;
            }
        });
}

/// Placements whose purposes are decided together, sharing the answers for their names.
const PLACEMENTS_PER_RUN: usize = 2048;

/// [`Catalog::purpose_word`] of the built-in catalog, remembered in `known`.
fn remembered_purpose_word(
    known: &RefCell<crate::topology::HashMap<CompactString, PurposeWord>>,
    name: &str,
) -> PurposeWord {
    if let Some(answer) = known.borrow().get(name) {
        return answer.clone();
    }
    let answer = Catalog::builtin()
        .purpose_word(name)
        .map(|(purpose, word)| (purpose, Arc::<str>::from(word)));
    known
        .borrow_mut()
        .insert(CompactString::from(name), answer.clone());
    answer
}

/// A purpose and the word that says it ([`Catalog::purpose_word`]).
type PurposeWord = Option<(Purpose, Arc<str>)>;

/// The reasons [`purpose_of`] gives most often, shared.
struct CommonReasons {
    not_non_production: Arc<str>,
    nothing_found: Arc<str>,
    posture_scanner: Arc<str>,
}

/// `purpose_word` is [`Catalog::purpose_word`] of `catalog`, remembered.
fn purpose_of(
    p: &Placement,
    doc: Option<&Document>,
    catalog: &Catalog,
    purpose_word: &dyn Fn(&str) -> PurposeWord,
    common: &CommonReasons,
) -> (Purpose, Arc<str>) {
    if p.workload_class == Env::Production {
        return (Purpose::Production, Arc::clone(&p.class_reason));
    }
    let api_version = doc.and_then(|d| d.id.api_version.as_deref());
    if let Some((purpose, why)) = catalog.tool(api_version, &p.object.kind, &p.object.images) {
        return (purpose, why.into());
    }
    if catalog.is_posture_scanner(&p.object.images) {
        return (Purpose::Unknown, Arc::clone(&common.posture_scanner));
    }
    if p.workload_class != Env::NonProduction {
        return (Purpose::Unknown, Arc::clone(&common.not_non_production));
    }
    // The workload's own identity, most specific first: its name (Jobs, Pods, deployers
    // standing for a chart), its `env` labels, its namespace, its folders from the nearest.
    // The first source with a purpose word decides; a source's note is written only then.
    let found = |name: &str, note: &dyn Fn() -> String| {
        purpose_word(name)
            .map(|(purpose, word)| (purpose, format!("{} has `{word}`", note()).into()))
    };
    if let Some(name) = &p.object.name {
        if named_by_purpose(&p.object.kind) || p.opaque || p.renders_chart {
            if let Some(hit) = found(name, &|| format!("{} name {name}", p.object.kind)) {
                return hit;
            }
        }
    }
    if let Some(d) = doc {
        for key in ["env", "environment"] {
            if let Some(v) = d.labels.get(key) {
                if let Some(hit) = found(v, &|| format!("label {key}={v}")) {
                    return hit;
                }
            }
        }
    }
    if let Some(ns) = &p.object.namespace {
        if let Some(hit) = found(ns, &|| format!("namespace {ns}")) {
            return hit;
        }
    }
    // Folders: the environment slot (`overlays/<x>`, `feature-*`), and any folder that is a
    // purpose word as a whole (`tests/`, `load/`, `e2e/`), not one that merely contains one
    // (`dev-portal/`).
    let file_dir = crate::topology::index::parent(&p.object.file);
    for folder in file_dir.rsplit('/').filter(|s| !s.is_empty()) {
        let whole = purpose_word(folder).is_some_and(|(_, word)| tokens(&word) == tokens(folder));
        if whole {
            if let Some(hit) = found(folder, &|| format!("its folder {folder}/")) {
                return hit;
            }
        }
    }
    if let Some(slot) = crate::topology::folder_slot(file_dir) {
        if let Some(hit) = found(slot, &|| format!("its folder {slot}/")) {
            return hit;
        }
    }
    if let Some(d) = &p.deployer {
        if let Some(hit) = found(&d.name, &|| format!("{} {}", d.kind, d.name)) {
            return hit;
        }
        let dir = crate::topology::index::parent(&d.location.file);
        if let Some(slot) = crate::topology::folder_slot(dir) {
            if let Some(hit) = found(slot, &|| format!("deployer folder {dir}/")) {
                return hit;
            }
        }
    }
    // The signal that made the workload non-production, unless that was its cluster (a
    // cluster's own name says nothing about what runs on it).
    if p.class_level.is_some() {
        if let Some(hit) = found(&p.class_reason, &|| p.class_reason.to_string()) {
            return hit;
        }
    }
    for hop in &p.evidence {
        let dir = crate::topology::index::parent(&hop.location.file);
        if let Some(slot) = crate::topology::folder_slot(dir) {
            if let Some(hit) = found(slot, &|| format!("included by {dir}/")) {
                return hit;
            }
        }
    }
    (Purpose::Unknown, Arc::clone(&common.nothing_found))
}

/// The tier of every cluster (after environments are final): the config's `tier`, else a
/// production cluster is the production tier, else a non-production cluster's labels and
/// name; a non-production cluster with no tier word has none.
pub fn assign_tiers(clusters: &mut [crate::topology::Cluster], config: &Config) {
    let catalog = Catalog::builtin();
    for c in clusters.iter_mut() {
        let declared = config.clusters.iter().enumerate().find(|(_, d)| {
            d.name == c.name || d.aliases.contains(&c.name) || c.aliases.contains(&d.name)
        });
        if let Some((i, tier)) = declared.and_then(|(i, d)| Some((i, d.tier?))) {
            let line = config
                .source
                .as_ref()
                .and_then(|s| s.line_of(&format!("clusters[{i}].tier")))
                .unwrap_or(1);
            let file = config.shown_file();
            c.tier = Some(tier);
            c.tier_reason = format!("declared tier {tier} in the config ({file}:{line})");
            continue;
        }
        match c.environment {
            Env::Production => {
                c.tier = Some(Tier::Production);
                c.tier_reason = format!("a production cluster ({})", c.env_reason);
            }
            Env::NonProduction => {
                if let Some((tier, why)) = cluster_tier_word(c, catalog) {
                    c.tier = Some(tier);
                    c.tier_reason = why;
                } else {
                    c.tier = None;
                    c.tier_reason =
                        "non-production, with no tier word in its name or labels".into();
                }
            }
            Env::Unknown => {
                c.tier = None;
                c.tier_reason = "its environment is unknown".into();
            }
        }
    }
}

/// The labels that may carry a cluster's tier.
pub const TIER_LABELS: [&str; 4] = ["tier", "env", "environment", "stage"];

/// A tier word in a cluster's labels, else its name, with why.
pub fn cluster_tier_word(
    c: &crate::topology::Cluster,
    catalog: &Catalog,
) -> Option<(Tier, String)> {
    for key in TIER_LABELS {
        if let Some(v) = c.labels.get(key) {
            if let Some(t) = Tier::parse(v).filter(|t| *t != Tier::Production) {
                return Some((t, format!("label {key}={v}")));
            }
            if let Some((t, word)) = catalog.tier_word(v) {
                return Some((t, format!("label {key}={v} has `{word}`")));
            }
        }
    }
    catalog
        .tier_word(&c.name)
        .map(|(t, word)| (t, format!("name `{}` has `{word}`", c.name)))
}

/// Where a purpose may run: the config's `tiers:` entry, else the policy's default homes.
pub fn homes(
    purpose: Purpose,
    config: &Config,
    catalog: &Catalog,
) -> (Vec<Tier>, Option<Location>) {
    if let Some(tiers) = config.tiers.get(purpose) {
        let line = config
            .source
            .as_ref()
            .and_then(|s| s.line_of(&format!("tiers.{}", purpose.as_str())))
            .unwrap_or(1);
        let file = config.shown_file();
        return (
            tiers.to_vec(),
            Some(Location::new(&std::sync::Arc::from(file), line)),
        );
    }
    (catalog.homes(purpose), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_count_by_repository_not_tag() {
        assert_eq!(repository_of("grafana/k6:0.49.0"), "grafana/k6");
        assert_eq!(repository_of("ghcr.io/grafana/k6@sha256:abc"), "grafana/k6");
        assert_eq!(repository_of("localhost:5000/locust:1"), "locust");
        assert_eq!(repository_of("registry:5000/x/y:z"), "x/y");
        let c = Catalog::builtin();
        let tool = |image: &str| {
            c.tool(None, "Deployment", &[(image.to_owned(), 1)])
                .map(|t| t.0)
        };
        assert_eq!(tool("grafana/k6:latest"), Some(Purpose::LoadTest));
        assert_eq!(tool("docker.io/locustio/locust"), Some(Purpose::LoadTest));
        assert_eq!(
            tool("ghcr.io/zaproxy/zaproxy:stable"),
            Some(Purpose::SecurityTest)
        );
        assert_eq!(tool("gitlab/gitlab-runner:alpine"), Some(Purpose::Ci));
        // A tag is not a tool: `app:k6` is an app.
        assert_eq!(tool("acme/app:k6"), None);
        assert_eq!(tool("grafana/k6-operator:latest"), None);
        assert_eq!(tool("aquasec/kube-bench:v0.7"), None);
        assert_eq!(tool("summerwind/actions-runner-controller:v0.27"), None);
    }

    #[test]
    fn kinds_need_their_group() {
        let c = Catalog::builtin();
        assert_eq!(
            c.tool(Some("k6.io/v1alpha1"), "TestRun", &[]).map(|t| t.0),
            Some(Purpose::LoadTest)
        );
        assert_eq!(c.tool(Some("example.com/v1"), "TestRun", &[]), None);
        assert_eq!(
            c.tool(
                Some("actions.summerwind.dev/v1alpha1"),
                "RunnerDeployment",
                &[]
            )
            .map(|t| t.0),
            Some(Purpose::Ci)
        );
    }

    #[test]
    fn words() {
        let c = Catalog::builtin();
        let purpose = |n: &str| c.purpose_word(n).map(|p| p.0);
        assert_eq!(purpose("checkout-load-test"), Some(Purpose::LoadTest));
        assert_eq!(purpose("zap-baseline"), Some(Purpose::SecurityTest));
        assert_eq!(purpose("preview-pr481"), Some(Purpose::Feature));
        assert_eq!(purpose("e2e"), Some(Purpose::IntegrationTest));
        assert_eq!(purpose("k6-operator"), None);
        assert_eq!(purpose("aws-load-balancer-controller"), None);
        assert_eq!(purpose("nginx-load-balancer"), None);
        assert_eq!(purpose("payments"), None);
        // Found on real repositories: a data import and an editorial task, not tests.
        assert_eq!(purpose("search-api-load-page-traffic"), None);
        assert_eq!(purpose("whitehall-admin-send-review-reminders"), None);
        // Tools for testers (report dashboards), not tests; chaos experiments by word.
        assert_eq!(purpose("testing-tools"), None);
        assert_eq!(purpose("qa-tooling"), None);
        assert_eq!(purpose("checkout-chaos-experiment"), Some(Purpose::Chaos));
        assert_eq!(purpose("chaos-mesh"), None);
        let tier = |n: &str| c.tier_word(n).map(|t| t.0);
        assert_eq!(tier("load-1"), Some(Tier::Testing));
        assert_eq!(tier("tools"), Some(Tier::Internal));
        assert_eq!(tier("ci-eu"), Some(Tier::Internal));
        assert_eq!(tier("staging-eu"), Some(Tier::Staging));
        assert_eq!(tier("dev"), Some(Tier::Development));
        assert_eq!(tier("devops"), None);
        assert_eq!(tier("prod-eu"), None);
    }
}
