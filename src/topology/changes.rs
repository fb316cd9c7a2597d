//! What a pull request changes on each cluster (issue 30): the deliveries and objects a
//! diff-aware scan's head adds, removes or modifies compared with its base, per cluster,
//! production first, each with the path it took and the changed files it went through, and
//! for modified objects a unified diff of the object as the cluster receives it (after
//! kustomize and helm), Secrets' values redacted.
//!
//! Objects are matched by (cluster, API group, kind, namespace, name). Content is compared
//! only where the two sides' documents are not the very same parse: a file whose blob is the
//! same on both sides is parsed once and shared, so the check is a pointer comparison; YAML is
//! written out only for the objects that differ. The work is linear in the placements.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::documents::yaml::{Node, Value};
use crate::documents::{Document, SourceFile};
use crate::evidence::Evidence;
use crate::location::Location;
use crate::topology::{Deployer, Env, HashMap, Placement, Tier, Topology};

/// Lines of one object's diff kept; the rest is cut with a note.
pub const DIFF_MAX_LINES: usize = 60;
/// Bytes of one object's diff kept.
pub const DIFF_MAX_BYTES: usize = 4 * 1024;
/// Bytes of diffs one report keeps; objects past it are listed without their diff.
pub const REPORT_DIFF_BYTES: usize = 256 * 1024;

/// Time one object's line diff may take before a coarser diff is taken.
const DIFF_TIME: std::time::Duration = std::time::Duration::from_millis(100);
/// Time a report's diffs may take in all; objects past it are listed without their diff.
const REPORT_DIFF_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// What replaces the value of a Secret's `data`/`stringData` key in a diff.
pub const SECRET_PLACEHOLDER: &str = "<redacted>";
/// The placeholder of a Secret value that differs between the sides.
pub const SECRET_CHANGED_PLACEHOLDER: &str = "<redacted, changed>";

/// One side of the comparison: its topology and the files its placements' documents are in.
#[derive(Clone, Copy)]
pub struct Side<'a> {
    pub topology: &'a Topology,
    pub files: &'a [SourceFile],
}

/// Added, removed or modified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    Added,
    Removed,
    Modified,
}

impl ChangeKind {
    /// `added`, `removed`, `modified`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Modified => "modified",
        }
    }

    /// `+`, `-`, `~`.
    pub fn sign(self) -> char {
        match self {
            ChangeKind::Added => '+',
            ChangeKind::Removed => '-',
            ChangeKind::Modified => '~',
        }
    }
}

/// How many added, removed and modified.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub added: usize,
    pub removed: usize,
    pub modified: usize,
}

impl Counts {
    fn count(&mut self, kind: ChangeKind) {
        match kind {
            ChangeKind::Added => self.added += 1,
            ChangeKind::Removed => self.removed += 1,
            ChangeKind::Modified => self.modified += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.added + self.removed + self.modified
    }

    fn add(&mut self, other: Counts) {
        self.added += other.added;
        self.removed += other.removed;
        self.modified += other.modified;
    }
}

/// A deployer (Application, Flux Kustomization, HelmRelease, a convention, ...) as it
/// delivers to one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryChange {
    pub change: ChangeKind,
    /// How reports name its kind (`Application`, `folder convention`).
    pub kind: String,
    pub name: String,
    /// The line that decides its destination (the head's, or the base's when removed).
    pub location: Location,
    /// It reaches this production cluster now and did not before (a new deployer, or a
    /// cluster that became production): shown even when no rule fires.
    pub newly_reaches_production: bool,
    /// Object changes on this cluster that came through it.
    pub objects: usize,
}

/// A unified diff of an object as the cluster receives it, base to head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedDiff {
    /// The diff (`--- base`/`+++ head` and hunks), Secret values redacted, cut to
    /// [`DIFF_MAX_LINES`] lines and [`DIFF_MAX_BYTES`] bytes.
    pub text: String,
    /// Lines cut from the end.
    pub lines_cut: usize,
}

/// One object that a cluster receives differently.
#[derive(Debug, Clone)]
pub struct ObjectChange {
    pub change: ChangeKind,
    pub api_version: Option<String>,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// Where the object is written (the head's; the base's when removed).
    pub location: Location,
    /// The deployer that sent it: (kind as reports name it, name).
    pub deployer: Option<(String, String)>,
    /// The placement's evidence: the hops from the cluster down to the object.
    pub path: Vec<Evidence>,
    /// What caused it, when known: the changed files its path or sources go through (a base,
    /// component, values file, generator, cluster Secret, or the object's own file), once each.
    pub causes: Vec<Location>,
    /// For a modified object whose content was read: the diff (`None` when the object is
    /// generated, or the report's budget for diffs is spent).
    pub diff: Option<RenderedDiff>,
}

/// The changes on one cluster.
#[derive(Debug, Clone)]
pub struct ClusterChanges {
    pub cluster: String,
    /// The head's environment and tier of the cluster (the base's when only the base has it).
    pub environment: Env,
    pub tier: Option<Tier>,
    /// Deliveries added, removed or modified (a delivery is modified when an object it sends
    /// changed), newly-production ones first.
    pub deliveries: Vec<DeliveryChange>,
    /// Objects added, removed or modified, by kind of change, then kind, namespace, name.
    pub objects: Vec<ObjectChange>,
}

impl ClusterChanges {
    pub fn delivery_counts(&self) -> Counts {
        let mut c = Counts::default();
        for d in &self.deliveries {
            c.count(d.change);
        }
        c
    }

    pub fn object_counts(&self) -> Counts {
        let mut c = Counts::default();
        for o in &self.objects {
            c.count(o.change);
        }
        c
    }

    /// The tier's group name: the tier, else `non-production` or `unknown`.
    pub fn group(&self) -> &'static str {
        match (self.tier, self.environment) {
            (Some(t), _) => t.as_str(),
            (None, Env::Production) => "production",
            (None, Env::NonProduction) => "non-production",
            (None, Env::Unknown) => "unknown",
        }
    }

    /// Whether the cluster is a production one.
    pub fn is_production(&self) -> bool {
        self.tier == Some(Tier::Production) || self.environment == Env::Production
    }
}

/// The change per cluster of a diff-aware scan.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Clusters with a change, grouped by tier (production first, then staging, development,
    /// testing, internal, non-production without a tier, unknown), then by name.
    pub clusters: Vec<ClusterChanges>,
    /// Modified objects listed without their diff because the report's budget
    /// ([`REPORT_DIFF_BYTES`], [`REPORT_DIFF_TIME`]) was spent.
    pub diffs_left_out: usize,
}

impl Changes {
    /// Nothing any cluster receives changed.
    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }

    /// Totals over every cluster: (deliveries, objects).
    pub fn totals(&self) -> (Counts, Counts) {
        let (mut d, mut o) = (Counts::default(), Counts::default());
        for c in &self.clusters {
            d.add(c.delivery_counts());
            o.add(c.object_counts());
        }
        (d, o)
    }

    /// Deliveries that newly reach a production cluster, with their cluster.
    pub fn newly_production(&self) -> impl Iterator<Item = (&ClusterChanges, &DeliveryChange)> {
        self.clusters.iter().flat_map(|c| {
            c.deliveries
                .iter()
                .filter(|d| d.newly_reaches_production)
                .map(move |d| (c, d))
        })
    }
}

/// The sentence for a change that touches nothing deployed.
pub const NOTHING_CHANGED: &str = "This change modifies nothing any cluster receives.";

/// An object's identity on a cluster.
type ObjectKey<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);
/// A delivery's identity: (cluster, deployer kind, deployer name).
type DeliveryKey<'a> = (&'a str, &'a str, &'a str);

/// The placements of one side by object, and its deliveries.
struct Indexed<'a> {
    objects: HashMap<ObjectKey<'a>, &'a Placement>,
    deliveries: HashMap<DeliveryKey<'a>, &'a Deployer>,
}

fn group_of(api_version: Option<&str>) -> &str {
    match api_version {
        Some(v) => v.rsplit_once('/').map_or("", |(g, _)| g),
        None => "",
    }
}

fn index<'a>(side: Side<'a>) -> Indexed<'a> {
    let mut objects =
        HashMap::with_capacity_and_hasher(side.topology.placements.len(), Default::default());
    let mut deliveries = HashMap::default();
    for p in &side.topology.placements {
        // A patch changes another object: that object's own placement carries the change.
        if p.patch {
            continue;
        }
        let Some(cluster) = side.topology.clusters.get(p.cluster) else {
            continue;
        };
        let doc = p
            .object
            .doc
            .and_then(|r| side.topology.document(side.files, r));
        let api_version = doc.and_then(|d| d.id.api_version.as_deref());
        let key = (
            cluster.name.as_str(),
            group_of(api_version),
            p.object.kind.as_str(),
            p.object.namespace.as_deref().unwrap_or(""),
            p.object.name.as_deref().unwrap_or(""),
        );
        objects.entry(key).or_insert(p);
        if let Some(d) = &p.deployer {
            deliveries
                .entry((cluster.name.as_str(), d.kind.as_str(), d.name.as_str()))
                .or_insert(&**d);
        }
    }
    // Deliveries whose objects another deployer placed first have no placement of their own.
    for (d, cluster) in &side.topology.delivered {
        if let Some(cluster) = side.topology.clusters.get(*cluster) {
            deliveries
                .entry((cluster.name.as_str(), d.kind.as_str(), d.name.as_str()))
                .or_insert(&**d);
        }
    }
    Indexed {
        objects,
        deliveries,
    }
}

fn document<'a>(side: Side<'a>, p: &Placement) -> Option<&'a Document> {
    side.topology.document(side.files, p.object.doc?)
}

/// The changed files a placement goes through: its evidence hops, its own file, its render's
/// values files and chart, its cluster's declarations.
fn causes(side: Side<'_>, p: &Placement, changed: &HashSet<&str>) -> Vec<Location> {
    let mut out: Vec<Location> = Vec::new();
    let mut push = |l: Location| {
        if changed.contains(&*l.file) && !out.iter().any(|o| o.file == l.file) {
            out.push(l);
        }
    };
    if let Some(cluster) = side.topology.clusters.get(p.cluster) {
        for at in &cluster.declared_in {
            push(at.clone());
        }
    }
    for hop in &p.evidence {
        push(hop.location.clone());
    }
    if let Some(sources) = side.topology.value_sources(p) {
        let mut first = true;
        for file in sources.files() {
            push(Location::new(file, 1));
            // The first is the chart's values.yaml: a changed template counts too.
            if first {
                first = false;
                let chart = file.strip_suffix("values.yaml").unwrap_or("");
                if !chart.is_empty() {
                    let mut templates: Vec<&&str> = changed
                        .iter()
                        .filter(|f| f.starts_with(chart) && !f.ends_with("values.yaml"))
                        .collect();
                    templates.sort();
                    for t in templates {
                        push(Location::new(&Arc::<str>::from(*t), 1));
                    }
                }
            }
        }
    }
    push(Location::new(&p.object.file, p.object.line));
    out
}

/// The change per cluster from `base` to `head`. `changed` are the repository files whose
/// content differs between the sides (added and deleted ones included).
pub fn compute(head: Side<'_>, base: Side<'_>, changed: &HashSet<&str>) -> Changes {
    // Each side's objects by identity: tens of thousands of placements each, side by side.
    let (h, b) = rayon::join(|| index(head), || index(base));
    struct Found<'a> {
        change: ChangeKind,
        placement: &'a Placement,
        side: Side<'a>,
        diff: Option<(&'a Document, &'a Document)>,
    }
    let mut found: Vec<(ObjectKey<'_>, Found<'_>)> = Vec::new();
    let mut in_both = 0;
    for (key, hp) in &h.objects {
        match b.objects.get(key) {
            None => found.push((
                *key,
                Found {
                    change: ChangeKind::Added,
                    placement: hp,
                    side: head,
                    diff: None,
                },
            )),
            Some(bp) => {
                in_both += 1;
                let (hd, bd) = (document(head, hp), document(base, bp));
                let modified = match (hd, bd) {
                    // The same parse of the same blob: nothing to compare.
                    (Some(x), Some(y)) if std::ptr::eq(x, y) => false,
                    (Some(x), Some(y)) => !x.root.same_content(&y.root),
                    // Generated objects: their inputs are what can show a change.
                    (None, None) => !causes(head, hp, changed).is_empty(),
                    _ => true,
                };
                if modified {
                    found.push((
                        *key,
                        Found {
                            change: ChangeKind::Modified,
                            placement: hp,
                            side: head,
                            diff: hd.zip(bd).map(|(x, y)| (y, x)),
                        },
                    ));
                }
            }
        }
    }
    // When every base object is one of the head's (the usual pull request), none was removed.
    let removed_any = in_both < b.objects.len();
    for (key, bp) in b.objects.iter().filter(|_| removed_any) {
        if !h.objects.contains_key(key) {
            found.push((
                *key,
                Found {
                    change: ChangeKind::Removed,
                    placement: bp,
                    side: base,
                    diff: None,
                },
            ));
        }
    }
    // Clusters' environments on each side, to tell a cluster that became production.
    let production = |side: Side<'_>, name: &str| {
        side.topology
            .clusters
            .iter()
            .find(|c| c.name == name)
            .is_some_and(|c| c.environment == Env::Production || c.tier == Some(Tier::Production))
    };
    // Deterministic order before diffs spend the report's budget.
    found.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.change.cmp(&b.1.change)));
    let mut clusters: BTreeMap<&str, ClusterChanges> = BTreeMap::new();
    let mut budget = REPORT_DIFF_BYTES;
    let started = std::time::Instant::now();
    let mut diffs_left_out = 0;
    let mut through: HashMap<DeliveryKey<'_>, usize> = HashMap::default();
    for (key, f) in &found {
        let cluster = cluster_entry(&mut clusters, key.0, head, base);
        let p = f.placement;
        let doc = document(f.side, p);
        let diff = match f.diff {
            Some((old, new)) if budget > 0 && started.elapsed() < REPORT_DIFF_TIME => {
                let d = rendered_diff(old, new);
                budget = budget.saturating_sub(d.text.len());
                // Content that differs only where YAML text does not (a quoted number).
                (!d.text.is_empty()).then_some(d)
            }
            Some(_) => {
                diffs_left_out += 1;
                None
            }
            None => None,
        };
        if let Some(d) = &p.deployer {
            *through
                .entry((key.0, d.kind.as_str(), d.name.as_str()))
                .or_default() += 1;
        }
        cluster.objects.push(ObjectChange {
            change: f.change,
            api_version: doc.and_then(|d| d.id.api_version.as_deref().map(str::to_owned)),
            kind: p.object.kind.to_string(),
            namespace: p.object.namespace.as_deref().map(str::to_owned),
            name: p.object.name.as_deref().map(str::to_owned),
            location: Location::new(&p.object.file, p.object.line),
            deployer: p
                .deployer
                .as_ref()
                .map(|d| (d.kind.as_str().to_owned(), d.name.clone())),
            path: p.evidence.to_vec(),
            causes: causes(f.side, p, changed),
            diff,
        });
    }
    // Deliveries: added and removed ones, and those that carried an object change.
    let mut deliveries: Vec<(DeliveryKey<'_>, ChangeKind, &Deployer)> = Vec::new();
    for (key, hp) in &h.deliveries {
        if !b.deliveries.contains_key(key) {
            deliveries.push((*key, ChangeKind::Added, *hp));
        } else if through.contains_key(key) {
            deliveries.push((*key, ChangeKind::Modified, *hp));
        }
    }
    for (key, bp) in &b.deliveries {
        if !h.deliveries.contains_key(key) {
            deliveries.push((*key, ChangeKind::Removed, *bp));
        }
    }
    for (key, change, d) in deliveries {
        let newly = change != ChangeKind::Removed
            && production(head, key.0)
            && (change == ChangeKind::Added || !production(base, key.0));
        let cluster = cluster_entry(&mut clusters, key.0, head, base);
        cluster.deliveries.push(DeliveryChange {
            change,
            kind: d.kind.as_str().to_owned(),
            name: d.name.clone(),
            location: d.location.clone(),
            newly_reaches_production: newly,
            objects: through.get(&key).copied().unwrap_or(0),
        });
    }
    let mut clusters: Vec<ClusterChanges> = clusters.into_values().collect();
    for c in &mut clusters {
        c.deliveries.sort_by(|a, b| {
            b.newly_reaches_production
                .cmp(&a.newly_reaches_production)
                .then(a.change.cmp(&b.change))
                .then(a.kind.cmp(&b.kind))
                .then(a.name.cmp(&b.name))
        });
        c.objects.sort_by(|a, b| {
            a.change
                .cmp(&b.change)
                .then(a.kind.cmp(&b.kind))
                .then(a.namespace.cmp(&b.namespace))
                .then(a.name.cmp(&b.name))
        });
    }
    clusters.sort_by(|a, b| {
        tier_rank(a)
            .cmp(&tier_rank(b))
            .then(a.cluster.cmp(&b.cluster))
    });
    Changes {
        clusters,
        diffs_left_out,
    }
}

/// Production first, then the tiers in their order, then non-production, then unknown.
fn tier_rank(c: &ClusterChanges) -> usize {
    if c.is_production() {
        return 0;
    }
    match (c.tier, c.environment) {
        (Some(t), _) => 1 + Tier::ALL.iter().position(|x| *x == t).unwrap_or(0),
        (None, Env::NonProduction) => 1 + Tier::ALL.len(),
        _ => 2 + Tier::ALL.len(),
    }
}

fn cluster_entry<'m, 'a>(
    clusters: &'m mut BTreeMap<&'a str, ClusterChanges>,
    name: &'a str,
    head: Side<'_>,
    base: Side<'_>,
) -> &'m mut ClusterChanges {
    clusters.entry(name).or_insert_with(|| {
        let known = head
            .topology
            .clusters
            .iter()
            .chain(&base.topology.clusters)
            .find(|c| c.name == name);
        ClusterChanges {
            cluster: name.to_owned(),
            environment: known.map_or(Env::Unknown, |c| c.environment),
            tier: known.and_then(|c| c.tier),
            deliveries: Vec::new(),
            objects: Vec::new(),
        }
    })
}

/// The diff of an object from `old` (base) to `new` (head), Secret values redacted, capped.
fn rendered_diff(old: &Document, new: &Document) -> RenderedDiff {
    let secret = |d: &Document| d.id.kind.as_deref() == Some("Secret");
    let (old_root, new_root) = if secret(old) || secret(new) {
        (
            redact_secret(&old.root, &new.root, false),
            redact_secret(&new.root, &old.root, true),
        )
    } else {
        (old.root.clone(), new.root.clone())
    };
    let (a, b) = (emit(&old_root), emit(&new_root));
    // Myers' diff grows with the product of size and difference: past its time a coarser
    // (still correct) diff is taken, so that a huge rewritten object cannot stall the scan.
    let diff = similar::TextDiff::configure()
        .timeout(DIFF_TIME)
        .diff_lines(&a, &b);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header("base", "head")
        .to_string();
    // Credentials elsewhere (an env value, a URL's password) are masked line by line; a
    // Secret's placeholders are left as they are, so that a changed one still says so.
    let mut masked = String::with_capacity(text.len());
    for line in text.lines() {
        let value = line.trim_end().trim_end_matches('"');
        if value.ends_with(SECRET_PLACEHOLDER) || value.ends_with(SECRET_CHANGED_PLACEHOLDER) {
            masked.push_str(line);
        } else {
            masked.push_str(&crate::redact::secrets(line));
        }
        masked.push('\n');
    }
    cap(&masked)
}

/// The first [`DIFF_MAX_LINES`] lines of a diff, within [`DIFF_MAX_BYTES`].
fn cap(text: &str) -> RenderedDiff {
    let mut kept = String::new();
    let total = text.lines().count();
    let mut lines = 0;
    for line in text.lines() {
        if lines == DIFF_MAX_LINES || kept.len() + line.len() + 1 > DIFF_MAX_BYTES {
            break;
        }
        kept.push_str(line);
        kept.push('\n');
        lines += 1;
    }
    RenderedDiff {
        text: kept,
        lines_cut: total - lines,
    }
}

/// A Secret with the values of `data` and `stringData` replaced by a placeholder; with
/// `mark`, the placeholder says where `other` (the other side's Secret) has a different value
/// under the same key, so that the diff shows which values changed and none of them.
fn redact_secret(root: &Node, other: &Node, mark: bool) -> Node {
    let mut root = root.clone();
    let Value::Map(entries) = &mut root.value else {
        return root;
    };
    for e in entries.iter_mut() {
        let Some(field) = e
            .key
            .as_str()
            .filter(|k| matches!(*k, "data" | "stringData"))
        else {
            continue;
        };
        let theirs = other.get(field);
        if let Value::Map(values) = &mut e.value.value {
            for v in values.iter_mut() {
                let same = v
                    .key
                    .as_str()
                    .and_then(|k| theirs.and_then(|t| t.get(k)))
                    .is_some_and(|t| t.same_content(&v.value));
                let placeholder = if same || !mark {
                    SECRET_PLACEHOLDER
                } else {
                    SECRET_CHANGED_PLACEHOLDER
                };
                v.value.set_quoted(placeholder);
            }
        } else if !e.value.is_null() {
            e.value.set_quoted(SECRET_PLACEHOLDER);
        }
    }
    root
}

/// An object as YAML text, for diffs.
fn emit(node: &Node) -> String {
    crate::documents::emit::to_yaml(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        let stream = crate::documents::yaml::parse_stream(text);
        stream.docs.into_iter().next().expect("a document").root
    }

    #[test]
    fn secret_values_are_placeholders_that_tell_a_change() {
        let old = root("kind: Secret\ndata:\n  a: b2xk\n  b: c2FtZQ==\n");
        let new = root("kind: Secret\ndata:\n  a: bmV3\n  b: c2FtZQ==\n");
        let text = emit(&redact_secret(&new, &old, true));
        assert_eq!(
            emit(&redact_secret(&old, &new, false)),
            "kind: Secret\ndata:\n  a: <redacted>\n  b: <redacted>\n"
        );
        assert!(text.contains("a: <redacted, changed>"), "{text}");
        assert!(text.contains("b: <redacted>\n"), "{text}");
        assert!(!text.contains("bmV3") && !text.contains("c2FtZQ"), "{text}");
    }

    #[test]
    fn a_long_diff_is_cut_at_the_line_cap() {
        let text: String = (0..100).map(|i| format!("+line {i}\n")).collect();
        let d = cap(&text);
        assert_eq!(d.text.lines().count(), DIFF_MAX_LINES);
        assert_eq!(d.lines_cut, 100 - DIFF_MAX_LINES);
    }
}
