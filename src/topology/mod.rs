//! Topology: which cluster every document lands on, the environment of each cluster, the
//! class of each workload, and the chain of files and lines that proves it (DESIGN §3).
//!
//! Read top-down: this file holds what a topology is (clusters, placements, deliveries and
//! the notes of what could not be followed); [`build`] is the worklist that makes one;
//! [`family`] holds each way of delivering manifests (Argo CD, Flux, the conventions, and the
//! families envfence only notes yet) behind one interface; [`expand`] turns a folder into
//! objects (kustomize, Helm); [`classify`] decides environments, classes, tiers and
//! purposes; [`inventory`] is the clusters; [`coverage`] counts what was placed; [`reuse`]
//! lets a diff-aware scan share one topology.

pub mod advice;
pub mod build;
pub mod changes;
pub mod classify;
pub mod coverage;
pub mod evidence;
pub mod expand;
pub mod family;
pub mod index;
pub mod inventory;
pub(crate) mod placed_files;
pub mod reuse;

pub use build::{build, build_with};
pub use classify::{env, folder_slot, tiers};
pub use evidence::EvidenceChain;
pub use expand::kustomize::{kustomize_expansion, kustomize_objects};
pub use expand::{helm, helm_values, kustomize};
pub use family::{argo, flux};
pub use inventory::{clusters, repository};

/// Hash maps of the topology: seeded per process like the standard library's, but faster on
/// the short keys (paths, names, document references) the worklist hashes for every object.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Answers already given for a name, shared by threads: the same namespaces, labels and
/// folders recur on thousands of placements. Grows with the distinct names of a repository.
/// Split in shards by the name's hash, so that threads asking about different names do not
/// wait on one lock (every placement asks several times, on all cores).
#[derive(Debug, Default)]
pub(crate) struct Remembered<V> {
    shards: [std::sync::Mutex<HashMap<String, V>>; REMEMBERED_SHARDS],
    hasher: foldhash::fast::RandomState,
}

const REMEMBERED_SHARDS: usize = 16;

impl<V: Clone> Remembered<V> {
    /// The answer for `name`, worked out by `answer` the first time.
    pub(crate) fn get(&self, name: &str, answer: impl FnOnce() -> V) -> V {
        let hash = std::hash::BuildHasher::hash_one(&self.hasher, name);
        let shard = &self.shards[(hash as usize) % REMEMBERED_SHARDS];
        let map = || {
            shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(known) = map().get(name) {
            return known.clone();
        }
        let value = answer();
        map().insert(name.to_owned(), value.clone());
        value
    }
}

use std::collections::BTreeSet;
use std::sync::Arc;

use compact_str::CompactString;

pub use clusters::{Cluster, Inventory};
pub use env::Env;
pub use index::{DocRef, RepoIndex};
use kustomize::DirectoryMode;
pub use tiers::{Purpose, Tier};

use crate::budget::BudgetCut;
use crate::evidence::Evidence;
use crate::location::Location;

/// The object a placement puts on a cluster.
#[derive(Debug, Clone)]
pub struct PlacedObject {
    pub file: Arc<str>,
    pub line: u32,
    /// The document, or `None` for an object a kustomize generator creates.
    pub doc: Option<DocRef>,
    pub kind: CompactString,
    pub name: Option<CompactString>,
    pub namespace: Option<CompactString>,
    /// Container images after kustomize `images:` overrides, with the line of each `image:`.
    pub images: Box<[(String, u32)]>,
}

/// What kind of deployer sent an object: a deployer object of a family (an Application, a
/// Flux Kustomization, ...), or a convention that stands for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeployerKind {
    /// A deployer object, by its kind.
    Object(&'static str),
    /// A `clusters/<name>/` tree.
    ClusterTree,
    /// An environment folder no deployer reaches (`overlays/prod`).
    EnvironmentFolder,
    /// A `paths` rule of the config.
    ConfigPath,
    /// A chart's values file for an environment (`values-prod.yaml`).
    ValuesFile,
    /// A namespace folder of a Config Sync hierarchical repository (`namespaces/<ns>/`).
    NamespaceFolder,
    /// An entry point the config declares (`entrypoints:`).
    EntryPoint,
    /// A CI pipeline job (GitHub Actions, GitLab CI) that applies manifests.
    Pipeline,
}

impl DeployerKind {
    /// How reports name it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeployerKind::Object(kind) => kind,
            DeployerKind::ClusterTree => "cluster folder",
            DeployerKind::EnvironmentFolder => "folder convention",
            DeployerKind::ConfigPath => "config path",
            DeployerKind::ValuesFile => "values file convention",
            DeployerKind::NamespaceFolder => "namespace folder",
            DeployerKind::EntryPoint => "declared entry point",
            DeployerKind::Pipeline => "CI pipeline",
        }
    }
}

impl DeployerKind {
    /// Whether a pull request adds to what this deployer places by adding namespaces (the
    /// folders a `paths` rule, an entry point, a cluster folder or an environment folder assigns to a
    /// cluster) rather than by adding deployers: findings about its objects are grouped per
    /// namespace, each at the namespace's own file. A hierarchical namespace folder and a
    /// values file are one unit already.
    pub fn delivers_namespaces(self) -> bool {
        matches!(
            self,
            DeployerKind::ConfigPath
                | DeployerKind::EntryPoint
                | DeployerKind::ClusterTree
                | DeployerKind::EnvironmentFolder
        )
    }
}

impl std::fmt::Display for DeployerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The deployer that sent an object to its cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Deployer {
    pub kind: DeployerKind,
    pub name: String,
    /// The line that decides the destination (e.g. `destination.name`, `path`).
    pub location: Location,
}

#[derive(Debug, Clone)]
pub struct Placement {
    pub object: PlacedObject,
    pub cluster: usize,
    pub cluster_environment: Env,
    pub workload_class: Env,
    /// Why the workload class is what it is.
    pub class_reason: Arc<str>,
    /// How close to the object the deciding signal was (`None`: the cluster decided, or
    /// nothing did).
    pub class_level: Option<SignalLevel>,
    /// What the deployer alone says (its name, labels, source folder): a non-production
    /// deployer is the thing to change, even when the object's own namespace also says so.
    pub deployer_class: Env,
    /// The hops from the cluster down to the object (`iter()` or `for hop in &p.evidence`).
    pub evidence: EvidenceChain,
    /// Shared by all placements of one delivery.
    pub deployer: Option<Arc<Deployer>>,
    /// A kustomize patch or merging generator: it changes an object rather than being one.
    pub patch: bool,
    /// The object stands for a Helm chart that its deployer renders on this cluster (an Argo
    /// CD Application of a chart, a HelmRelease): a workload, though envfence cannot see inside.
    pub renders_chart: bool,
    /// An opaque placement (DESIGN §3): the deployer's payload is not in the repository (a
    /// chart from a Helm repository, another repository, a source known only per pull
    /// request), so the deployer itself stands for it, classed by its own identity. Its
    /// contents were not read; coverage counts these apart from objects.
    pub opaque: bool,
    /// What the workload is for (DESIGN §3 "Workload purpose"), decided once the classes are.
    pub purpose: Purpose,
    /// Why the purpose is what it is.
    pub purpose_reason: Arc<str>,
}

#[cfg(test)]
impl Placement {
    /// For tests: a ConfigMap at line 1 of `file` on cluster 0, nothing decided about it;
    /// each test sets what it looks at.
    pub(crate) fn of_file(file: &Arc<str>) -> Placement {
        Placement {
            object: PlacedObject {
                file: Arc::clone(file),
                line: 1,
                doc: None,
                kind: "ConfigMap".into(),
                name: None,
                namespace: None,
                images: Box::default(),
            },
            cluster: 0,
            cluster_environment: Env::Unknown,
            workload_class: Env::Unknown,
            class_reason: Arc::from(""),
            class_level: None,
            deployer_class: Env::Unknown,
            evidence: EvidenceChain::from(Vec::new()),
            deployer: None,
            patch: false,
            renders_chart: false,
            opaque: false,
            purpose: Purpose::Unknown,
            purpose_reason: Arc::from(""),
        }
    }
}

impl Placement {
    /// A placement of an object that runs or configures something: not a patch, and not a
    /// deployer object (Applications, Flux Kustomizations, sources), which is judged by where
    /// it sends its payload, unless the deployer stands for a payload envfence cannot read (a
    /// chart, an opaque placement). `deployer_kinds` are the families' built-in kinds and the
    /// `deployer_kinds` data of the `nonprod-on-prod-cluster` policy
    /// ([`family::deployer_kinds_and`]).
    pub fn is_workload_among<S: AsRef<str>>(&self, deployer_kinds: &[S]) -> bool {
        self.renders_chart
            || self.opaque
            || (!self.patch
                && !deployer_kinds
                    .iter()
                    .any(|k| k.as_ref() == self.object.kind))
    }

    /// [`Placement::is_workload_among`] the families' built-in deployer kinds and those the
    /// built-in policy adds, for what runs before user policies are loaded (cluster
    /// promotion, the purpose × tier counts).
    pub fn is_workload(&self) -> bool {
        static KINDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        let kinds = KINDS.get_or_init(|| {
            #[derive(serde::Deserialize)]
            struct DataOnly {
                #[serde(default)]
                data: DeployerKinds,
            }
            #[derive(serde::Deserialize, Default)]
            struct DeployerKinds {
                #[serde(default)]
                deployer_kinds: Vec<String>,
            }
            // A broken embedded policy is a build defect that the policy tests catch.
            let added = serde_yaml::from_str::<DataOnly>(include_str!(
                "../../policies/nonprod-on-prod-cluster.yaml"
            ))
            .map(|d| d.data.deployer_kinds)
            .unwrap_or_default();
            family::deployer_kinds_and(&added)
        });
        self.is_workload_among(kinds)
    }

    /// What the workload is for: `production`, `feature`, `integration-test`, ...
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }
}

/// What running one deployer yields.
#[derive(Debug, Default)]
pub struct Outcome {
    pub deliveries: Vec<Delivery>,
    pub unresolved: Vec<Unresolved>,
    /// Placements a deployer makes directly (a HelmRelease on a remote cluster).
    pub extra_placements: Vec<Placement>,
    /// Local Helm charts the deployer installs (rendered, or opaque when they cannot be).
    pub charts: Vec<helm::ChartInstall>,
    /// Budgets the deployer hit (each also a note in `unresolved`).
    pub cuts: Vec<BudgetCut>,
    /// Cluster selectors of the deployer that matched no cluster: the selector's line and
    /// its terms. The family says them in one note per deployer, not one per generator.
    pub unmatched_selectors: Vec<(Location, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    pub location: Location,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Topology {
    pub clusters: Vec<Cluster>,
    /// Sorted by object file, line and cluster: see [`Topology::placement_at`].
    pub placements: Vec<Placement>,
    pub unresolved: Vec<Unresolved>,
    /// Kubernetes objects in the repository, placed or not, plus the objects Helm rendered.
    pub manifests: usize,
    /// Objects placed, opaque placements, and the folders of the unplaced objects.
    pub object_coverage: coverage::Coverage,
    /// Files from this index on are Helm output: see [`Topology::is_rendered`].
    pub rendered_from: usize,
    /// The renders this build asked for (the next round renders those not done yet).
    pub render_requests: BTreeSet<helm::RenderRequest>,
    /// For each rendered file, the value sources of the renders that placed it, by deployer
    /// location: see [`Topology::value_sources`].
    pub rendered_values: HashMap<usize, Vec<(Location, Arc<helm_values::ValueSources>)>>,
    /// The budgets that cut this build short (each also a note in `unresolved`).
    pub cuts: Vec<BudgetCut>,
    /// What reports and `envfence init` advise: entries that would place unplaced folders,
    /// cluster labels the selectors ask for, whether this is a component catalog.
    pub advice: advice::Advice,
    /// Documents kustomize edits changed (JSON patches, replacements): a placement's
    /// `DocRef` from `changed_from` on (the number of files, rendered ones included) is one
    /// of them ([`Topology::document`]), made from `changed_origins` at the same position.
    pub changed_from: usize,
    pub changed: Vec<crate::documents::SourceFile>,
    pub changed_origins: Vec<DocRef>,
    /// Every delivery's deployer and cluster, also those whose objects other deployers
    /// placed first (an object is placed once per cluster): what a diff-aware scan compares
    /// deliveries by ([`changes`]).
    pub delivered: Vec<(Arc<Deployer>, usize)>,
}

impl Topology {
    /// The document `r` of a placement: one of `files` (the repository's and rendered ones),
    /// or one that kustomize edits changed.
    pub fn document<'a>(
        &'a self,
        files: &'a [crate::documents::SourceFile],
        r: DocRef,
    ) -> Option<&'a crate::documents::Document> {
        match r.file().checked_sub(self.changed_from) {
            Some(i) => self.changed.get(i)?.documents.get(r.doc()),
            None => files.get(r.file())?.documents.get(r.doc()),
        }
    }

    /// The document a changed one was made from; any other is its own.
    pub fn original(&self, r: DocRef) -> DocRef {
        r.file()
            .checked_sub(self.changed_from)
            .and_then(|i| self.changed_origins.get(i))
            .copied()
            .unwrap_or(r)
    }

    /// The first placement of the object at `file:line` on `cluster`, found by its place in
    /// the sorted placements.
    pub fn placement_at(&self, file: &str, line: u32, cluster: usize) -> Option<&Placement> {
        fn key(p: &Placement) -> (&str, u32, usize) {
            (&p.object.file, p.object.line, p.cluster)
        }
        let at = self
            .placements
            .partition_point(|p| key(p) < (file, line, cluster));
        self.placements
            .get(at)
            .filter(|p| key(p) == (file, line, cluster))
    }

    /// (objects placed, clusters that received something), as [`coverage::Coverage`] defines
    /// them: a patch counts as placed, an opaque placement does not.
    pub fn coverage(&self) -> (usize, usize) {
        // Clusters are numbered densely: a flag each, not a hash per placement.
        let mut used = vec![false; self.clusters.len()];
        let mut beyond: HashSet<usize> = HashSet::default();
        for p in &self.placements {
            match used.get_mut(p.cluster) {
                Some(flag) => *flag = true,
                None => {
                    beyond.insert(p.cluster);
                }
            }
        }
        let clusters = used.iter().filter(|&&u| u).count() + beyond.len();
        (self.object_coverage.placed, clusters)
    }

    /// Whether a placed object is one that `helm template` rendered (not a repository file).
    pub fn is_rendered(&self, p: &Placement) -> bool {
        p.object
            .doc
            .is_some_and(|d| self.original(d).file() >= self.rendered_from)
    }

    /// The value sources of the render that produced a rendered placement (its deployer's,
    /// when several deployers placed the same render).
    pub fn value_sources(&self, p: &Placement) -> Option<&helm_values::ValueSources> {
        let by_deployer = self
            .rendered_values
            .get(&self.original(p.object.doc?).file())?;
        let deployer = p.deployer.as_ref().map(|d| &d.location);
        by_deployer
            .iter()
            .find(|(at, _)| Some(at) == deployer)
            .or(by_deployer.first())
            .map(|(_, sources)| sources.as_ref())
    }

    /// Distinct objects that Helm rendered and some deployer placed.
    pub fn rendered_objects(&self) -> usize {
        let docs: HashSet<DocRef> = self
            .placements
            .iter()
            .filter(|p| self.is_rendered(p))
            .filter_map(|p| p.object.doc.map(|d| self.original(d)))
            .collect();
        docs.len()
    }

    pub fn placements_of_file<'a>(
        &'a self,
        file: &'a str,
    ) -> impl Iterator<Item = &'a Placement> + 'a {
        self.placements
            .iter()
            .filter(move |p| &*p.object.file == file)
    }
}

/// A signal about a workload's class, and how close to the workload it comes from.
#[derive(Debug, Clone)]
pub struct Signal {
    pub env: Env,
    pub note: Arc<str>,
    pub level: SignalLevel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SignalLevel {
    /// The object's own folder, namespace, labels, or (Jobs, Pods) name.
    Own,
    /// Its own deployer: name, labels, source folder, generator element.
    Deployer,
    /// An overlay or parent deployer that includes it.
    Parent,
}

/// "Send what `dir` expands to onto `cluster`": one deployer's payload.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub deployer: Deployer,
    pub cluster: usize,
    pub dir: String,
    pub mode: DirectoryMode,
    /// Flux `targetNamespace`: overrides every namespaced object's namespace.
    pub force_namespace: Option<String>,
    /// Argo CD `destination.namespace`: for objects that do not set one.
    pub default_namespace: Option<String>,
    pub chain: Vec<Evidence>,
    pub signals: Vec<Signal>,
    /// A Flux Kustomization whose inline patches give every HelmRelease a `kubeConfig` (a hub
    /// deploying charts to spokes): those HelmReleases render on this cluster instead.
    pub helm_releases_to: Option<(usize, Evidence)>,
    /// Which of the documents `dir` expands to this delivery places (Config Sync's selectors
    /// pick objects one by one).
    pub documents: DocumentFilter,
}

/// Which documents of an expansion a delivery places.
#[derive(Debug, Clone, Default)]
pub enum DocumentFilter {
    /// All of them.
    #[default]
    All,
    /// Only these (objects a generator creates are left out).
    Only(Arc<HashSet<DocRef>>),
    /// All but these.
    Except(Arc<HashSet<DocRef>>),
}

impl DocumentFilter {
    /// Whether the delivery places the document `doc` (`None`: a generated object).
    pub fn admits(&self, doc: Option<DocRef>) -> bool {
        match (self, doc) {
            (DocumentFilter::All, _) => true,
            (DocumentFilter::Only(docs), Some(d)) => docs.contains(&d),
            (DocumentFilter::Only(_), None) => false,
            (DocumentFilter::Except(docs), Some(d)) => !docs.contains(&d),
            (DocumentFilter::Except(_), None) => true,
        }
    }
}

impl Delivery {
    /// `dir` as it is (its kustomization, else its files) onto `cluster`, with the evidence
    /// that leads there: no namespace set, no signals, no redirect. The other fields are set
    /// with struct update syntax (`Delivery { mode, ..Delivery::new(...) }`) where they differ.
    pub fn new(deployer: Deployer, cluster: usize, dir: String, chain: Vec<Evidence>) -> Self {
        Delivery {
            deployer,
            cluster,
            dir,
            mode: DirectoryMode::default(),
            force_namespace: None,
            default_namespace: None,
            chain,
            signals: Vec::new(),
            helm_releases_to: None,
            documents: DocumentFilter::All,
        }
    }
}
