//! Deployer families: each way of delivering manifests to clusters is one implementation of
//! [`Family`], listed once in [`REGISTRY`]. The worklist (`build/`) knows families only
//! through this interface: which documents are deployers and how they run, how a family
//! seeds the worklist, which clusters it declares, which kinds of an unrendered Helm template
//! define its deployers, and the notes and owned folders it leaves for the coverage report.
//!
//! A new family is a folder or file here, an implementation of [`Family`], and one line in
//! [`REGISTRY`]; nothing else in the crate names its kinds.
//!
//! What every family shares is written once below: the deployer's identity signals
//! ([`identity_signals`]), its opaque placement ([`opaque_placement`]) and the config file's
//! name in evidence ([`config_file`]).

pub mod argo;
pub mod configsync;
pub mod conventions;
pub mod fleet;
pub mod flux;
pub mod helmfile;
pub mod kargo;

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::config::{Config, Limits};
use crate::documents::{Document, SourceFile};
use crate::location::Evidence;
use crate::topology::build::Worklist;
use crate::topology::classify::{decide_class, deployer_class, env::Vocabulary};
use crate::topology::expand::helm::Renders;
use crate::topology::index::{self, DocRef, RepoIndex};
use crate::topology::inventory::clusters::Inventory;
use crate::topology::{
    Deployer, Env, HashMap, PlacedObject, Placement, Purpose, Signal, SignalLevel, Unresolved,
};
use crate::walk::Skipped;

/// Every family envfence knows, in the order their hooks run: clusters are declared in this
/// order (which numbers them), and within a [`Stage`] families seed in this order.
pub static REGISTRY: &[&dyn Family] = &[
    &argo::ArgoCd,
    &flux::Flux,
    &conventions::cluster_tree::ClusterTrees,
    &conventions::values_file::ValuesFiles,
    &conventions::Fallbacks,
    &configsync::ConfigSync,
    &kargo::Kargo,
    &fleet::Fleet,
    &helmfile::Helmfile,
];

/// When a family seeds the worklist. Stages run in this order, each family's seed followed by
/// a drain of what it queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Folders the repository itself assigns to a cluster (`clusters/<name>/`).
    Roots,
    /// Deployers no placement reached (an Argo CD root Application, a Flux Kustomization
    /// outside any cluster tree).
    Deployers,
    /// Conventions for what no deployer reached: values files per environment, the config's
    /// `paths`, environment folders.
    Conventions,
}

/// A kind that, written in a Helm template envfence did not render, defines a deployer.
#[derive(Debug, Clone, Copy)]
pub struct TemplateKind {
    pub kind: &'static str,
    /// A text the template must also hold (its API group), when the kind alone is ambiguous.
    pub api: Option<&'static str>,
    /// How a note names these deployers ("Argo CD Applications").
    pub described: &'static str,
}

/// One deployer to run: the document, the cluster it was placed on (`None` when no placement
/// reached it), the evidence that led there, and the signals of the deployer that placed it.
pub struct Job<'j> {
    pub doc: DocRef,
    pub host: Option<usize>,
    pub chain: &'j [Evidence],
    pub parent_signals: &'j [Signal],
}

/// What a family's deployer may read and change while it runs.
pub struct RunContext<'r, 'a> {
    pub index: &'r RepoIndex<'a>,
    pub inventory: &'r mut Inventory,
    pub limits: &'r Limits,
}

/// What the notes of a family may read, once the worklist is done.
pub struct NoteContext<'n, 'a> {
    pub index: &'n RepoIndex<'a>,
    /// Every file, rendered output included.
    pub files: &'n [SourceFile],
    pub skipped: &'n [Skipped],
    pub renders: &'n Renders,
    /// Chart folders some deployer installed (rendered, or noted there).
    pub installed: &'n BTreeSet<String>,
    /// Whether a delivery expanded a folder.
    pub expanded: &'n dyn Fn(&str) -> bool,
}

/// The notes of the families, and the folders they own.
#[derive(Debug, Default)]
pub struct Notes {
    /// Notes kept whatever else was said.
    pub always: Vec<Unresolved>,
    /// Notes dropped where the worklist or an `always` note already spoke of that line.
    pub unless_covered: Vec<Unresolved>,
    /// Folders a family owns: unplaced objects under them are that family's.
    pub roots: BTreeSet<FamilyRoot>,
}

/// A folder a deployer family owns: unplaced objects under it are that family's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FamilyRoot {
    /// Repository-relative folder ("" for the root).
    pub dir: String,
    /// "Config Sync", "Fleet", "Helm chart", "helmfile".
    pub family: &'static str,
}

/// A way of delivering manifests to clusters. Every method but [`Family::name`] has a default
/// that does nothing, so a family implements only what it does.
pub trait Family: Sync {
    /// The family's name, as notes and coverage say it.
    fn name(&self) -> &'static str;

    /// Kinds of this family that deliver or describe other objects rather than run: the
    /// built-in `deployer_kinds` of the `nonprod-on-prod-cluster` policy.
    fn deployer_kinds(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether a placed document is one of this family's deployers, to be run on the cluster
    /// it landed on.
    fn is_deployer(&self, _doc: &Document) -> bool {
        false
    }

    /// The kinds that define this family's deployers inside an unrendered Helm template.
    fn template_kinds(&self) -> &'static [TemplateKind] {
        &[]
    }

    /// Declares the clusters the repository describes in this family's way.
    fn declare_clusters(&self, _index: &RepoIndex<'_>, _inventory: &mut Inventory) {}

    /// When this family seeds the worklist, if it does.
    fn stage(&self) -> Option<Stage> {
        None
    }

    /// Seeds the worklist: what no placement reached yet.
    fn seed(&self, _worklist: &mut Worklist<'_>) {}

    /// Runs one of this family's deployers ([`Family::is_deployer`]).
    fn run(&self, _cx: &mut RunContext<'_, '_>, _job: &Job<'_>) -> Outcome {
        Outcome::default()
    }

    /// Notes once the worklist is done: deployers this family cannot follow yet, and the
    /// folders it owns.
    fn notes(&self, _cx: &NoteContext<'_, '_>, _out: &mut Notes) {}
}

pub use crate::topology::Outcome;

/// The family whose deployer `doc` is, if any.
pub fn family_of_deployer<'f>(
    families: &[&'f dyn Family],
    doc: &Document,
) -> Option<&'f dyn Family> {
    families.iter().copied().find(|f| f.is_deployer(doc))
}

/// The built-in deployer kinds of every family.
pub fn deployer_kinds() -> impl Iterator<Item = &'static str> {
    REGISTRY
        .iter()
        .flat_map(|f| f.deployer_kinds().iter().copied())
}

/// Whether some deployer other than `me` reads a folder that holds `file` (its path is the
/// file's folder or one of its ancestors, the repository root included): such a deployer is
/// not a root.
pub fn covered_by_others(file: &str, me: DocRef, dirs: &HashMap<String, Vec<DocRef>>) -> bool {
    let mut dir = index::parent(file);
    loop {
        if dirs
            .get(dir)
            .is_some_and(|owners| owners.iter().any(|o| *o != me))
        {
            return true;
        }
        if dir.is_empty() {
            return false;
        }
        dir = index::parent(dir);
    }
}

/// The config file's path, as findings and evidence name it.
pub fn config_file(config: &Config) -> Arc<str> {
    config
        .source
        .as_ref()
        .map(|s| Arc::from(s.shown.as_str()))
        .unwrap_or_else(|| Arc::from(crate::config::FILE_NAME))
}

/// A deployer's identity signals (DESIGN §3): its name, then its `env`, `environment` and
/// `stage` labels, each a [`SignalLevel::Deployer`] signal when the vocabulary knows it.
pub fn identity_signals(
    name: &str,
    labels: &std::collections::BTreeMap<String, String>,
    what: &str,
    label_keys: &[&str],
    vocabulary: &Vocabulary,
) -> Vec<Signal> {
    let mut out = Vec::new();
    if let Some(m) = vocabulary.classify_workload(name) {
        out.push(Signal {
            env: m.env,
            note: format!("{what} name {name}").into(),
            level: SignalLevel::Deployer,
        });
    }
    for key in label_keys {
        if let Some(v) = labels.get(*key) {
            if let Some(m) = vocabulary.classify_workload(v) {
                out.push(Signal {
                    env: m.env,
                    note: format!("label {key}={v}").into(),
                    level: SignalLevel::Deployer,
                });
            }
        }
    }
    out
}

/// The parts of an opaque placement (DESIGN §3) that differ between deployers.
pub struct Opaque<'o> {
    pub object: PlacedObject,
    pub cluster: usize,
    pub cluster_environment: Env,
    pub cluster_name: &'o str,
    pub signals: Vec<Signal>,
    pub evidence: Vec<Evidence>,
    pub deployer: Deployer,
    /// The deployer renders a chart (a HelmRelease, an Application of a chart).
    pub renders_chart: bool,
}

/// A deployer standing for a payload envfence cannot read: placed on its destination and
/// classed by its own signals.
pub fn opaque_placement(o: Opaque<'_>) -> Placement {
    let (class, class_reason, level) =
        decide_class(o.cluster_environment, o.cluster_name, &o.signals);
    Placement {
        object: o.object,
        cluster: o.cluster,
        cluster_environment: o.cluster_environment,
        workload_class: class,
        class_reason,
        class_level: level,
        deployer_class: deployer_class(&o.signals),
        evidence: o.evidence.into(),
        deployer: Some(Arc::new(o.deployer)),
        patch: false,
        renders_chart: o.renders_chart,
        opaque: true,
        purpose: Purpose::Unknown,
        purpose_reason: Arc::from(""),
    }
}

/// Whether a document's API version is in `group`.
pub fn api_in(d: &Document, group: &str) -> bool {
    d.id.api_version.as_deref().is_some_and(|a| {
        a.strip_prefix(group)
            .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// A document's name, `?` when it has none, for notes.
pub fn name_of(d: &Document) -> &str {
    d.id.name.as_deref().unwrap_or("?")
}

/// The text at `path` below `node`.
pub fn field_text<'n>(node: Option<&'n crate::documents::Node>, path: &[&str]) -> Option<&'n str> {
    let mut node = node?;
    for key in path {
        node = node.get(key)?;
    }
    node.as_str()
}

/// A note at `line` of document `d`, dropped where something else already spoke of that line.
pub fn note_at(out: &mut Notes, d: &Document, line: u32, reason: String) {
    out.unless_covered.push(Unresolved {
        location: crate::location::Location::new(&d.file, line),
        reason,
    });
}

/// The family that owns `dir`: the deepest family root that holds it, else the family of the
/// roots inside it when they all agree.
pub fn family_owning(roots: &[FamilyRoot], dir: &str) -> Option<&'static str> {
    let holds = |outer: &str, inner: &str| {
        outer.is_empty() || inner == outer || inner.starts_with(&format!("{outer}/"))
    };
    if let Some(r) = roots
        .iter()
        .filter(|r| holds(&r.dir, dir))
        .max_by_key(|r| r.dir.len())
    {
        return Some(r.family);
    }
    let mut inside = roots
        .iter()
        .filter(|r| holds(dir, &r.dir))
        .map(|r| r.family);
    let first = inside.next()?;
    inside.all(|f| f == first).then_some(first)
}
