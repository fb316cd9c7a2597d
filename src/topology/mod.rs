//! Topology: which cluster every document lands on, the environment of each cluster, the
//! class of each workload, and the chain of files and lines that proves it (DESIGN §3).
//!
//! The build is a worklist. Seeds are the `clusters/<name>/` trees and the Argo CD
//! Applications and ApplicationSets of the repository. Delivering a directory to a cluster
//! places every object it expands to; a placed object that is itself a deployer (a Flux
//! Kustomization, an Application, ...) runs on that cluster and delivers its own payload.
//! Files no deployer reaches fall back to the config's `paths` and folder conventions.

pub mod argo;
pub mod clusters;
pub mod coverage;
pub mod env;
pub mod flux;
pub mod helm;
pub mod helm_values;
pub mod index;
pub mod kustomize;
pub mod repository;
pub mod reuse;
pub mod tiers;
pub mod unfollowed;

/// Hash maps of the topology: seeded per process like the standard library's, but faster on
/// the short keys (paths, names, document references) the worklist hashes for every object.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Answers already given for a name, shared by threads: the same namespaces, labels and
/// folders recur on thousands of placements. Grows with the distinct names of a repository.
#[derive(Debug, Default)]
pub(crate) struct Remembered<V>(std::sync::Mutex<HashMap<String, V>>);

impl<V: Clone> Remembered<V> {
    /// The answer for `name`, worked out by `answer` the first time.
    pub(crate) fn get(&self, name: &str, answer: impl FnOnce() -> V) -> V {
        let map = || {
            self.0
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

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use compact_str::CompactString;
use globset::Glob;

pub use clusters::{Cluster, Inventory};
pub use env::Env;
pub use index::{DocRef, RepoIndex};
use kustomize::{DirectoryMode, Expander, ItemSource};
pub use tiers::{Purpose, Tier};

use crate::config::{Config, Limits};
use crate::documents::{Document, SkipReason, SourceFile};
use crate::location::{Evidence, Location};
use crate::walk::Skipped;

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
    pub images: Vec<(String, u32)>,
}

/// The deployer that sent an object to its cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Deployer {
    pub kind: String,
    pub name: String,
    /// The line that decides the destination (e.g. `destination.name`, `path`).
    pub location: Location,
}

/// A placement's evidence: the hops its delivery shares with every object it places (one
/// allocation per delivery, not per object), then the object's own hops.
#[derive(Debug, Clone, Default)]
pub struct EvidenceChain {
    shared: Arc<[Evidence]>,
    own: Box<[Evidence]>,
}

impl EvidenceChain {
    pub fn new(shared: Arc<[Evidence]>, own: Vec<Evidence>) -> Self {
        EvidenceChain {
            shared,
            own: own.into_boxed_slice(),
        }
    }

    /// Every hop, outermost first.
    pub fn iter(
        &self,
    ) -> std::iter::Chain<std::slice::Iter<'_, Evidence>, std::slice::Iter<'_, Evidence>> {
        self.shared.iter().chain(self.own.iter())
    }

    pub fn len(&self) -> usize {
        self.shared.len() + self.own.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn to_vec(&self) -> Vec<Evidence> {
        self.iter().cloned().collect()
    }

    /// The hops this placement does not share with the rest of its delivery.
    fn own(&self) -> &[Evidence] {
        &self.own
    }
}

impl From<Vec<Evidence>> for EvidenceChain {
    fn from(own: Vec<Evidence>) -> Self {
        EvidenceChain {
            shared: Arc::from(Vec::new()),
            own: own.into_boxed_slice(),
        }
    }
}

impl<'a> IntoIterator for &'a EvidenceChain {
    type Item = &'a Evidence;
    type IntoIter =
        std::iter::Chain<std::slice::Iter<'a, Evidence>, std::slice::Iter<'a, Evidence>>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
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

impl Placement {
    /// What the workload is for: `production`, `feature`, `integration-test`, ...
    /// A placement of an object that runs or configures something: not a patch, and not a
    /// deployer object (Applications, Flux Kustomizations, sources), which is judged by where
    /// it sends its payload, unless the deployer stands for a payload envfence cannot read (a
    /// chart, an opaque placement). `deployer_kinds` is the `deployer_kinds` list of the
    /// `nonprod-on-prod-cluster` policy.
    pub fn is_workload_among<S: AsRef<str>>(&self, deployer_kinds: &[S]) -> bool {
        self.renders_chart
            || self.opaque
            || (!self.patch
                && !deployer_kinds
                    .iter()
                    .any(|k| k.as_ref() == self.object.kind))
    }

    /// [`Placement::is_workload_among`] the built-in policy's deployer kinds, for what runs
    /// before user policies are loaded (cluster promotion, the purpose × tier counts).
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
            serde_yaml::from_str::<DataOnly>(include_str!(
                "../../policies/nonprod-on-prod-cluster.yaml"
            ))
            .map(|d| d.data.deployer_kinds)
            .unwrap_or_default()
        });
        self.is_workload_among(kinds)
    }

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
}

impl Topology {
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
        let clusters: HashSet<usize> = self.placements.iter().map(|p| p.cluster).collect();
        (self.object_coverage.placed, clusters.len())
    }

    /// Whether a placed object is one that `helm template` rendered (not a repository file).
    pub fn is_rendered(&self, p: &Placement) -> bool {
        p.object.doc.is_some_and(|d| d.file >= self.rendered_from)
    }

    /// The value sources of the render that produced a rendered placement (its deployer's,
    /// when several deployers placed the same render).
    pub fn value_sources(&self, p: &Placement) -> Option<&helm_values::ValueSources> {
        let by_deployer = self.rendered_values.get(&p.object.doc?.file)?;
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
            .filter_map(|p| p.object.doc)
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
}

/// Builds the topology of a parsed repository. `skipped` lists files that were not parsed
/// (templates that define deployers become unresolved entries).
pub fn build(files: &[SourceFile], skipped: &[Skipped], config: &Config) -> Topology {
    let renders = helm::Renders::none(
        helm::Availability::Off("this build does not render charts"),
        files.len(),
    );
    build_with(files, skipped, config, &renders)
}

/// Builds the topology with the charts rendered so far: `files[renders.first_rendered..]` are
/// their output. The result lists the renders it asked for (`render_requests`).
pub fn build_with(
    files: &[SourceFile],
    skipped: &[Skipped],
    config: &Config,
    renders: &helm::Renders,
) -> Topology {
    let index = RepoIndex::with_rendered(files, renders.first_rendered);
    let inventory = Inventory::build(config, &index);
    let documents: usize = index.files.iter().map(|f| f.documents.len()).sum();
    // Objects are usually placed on a few clusters each, and expansions stop at the scan's
    // object budget. Room that is never written costs address space, not memory; growing by
    // doubling would copy every placement (and fault in fresh pages) again and again.
    let expected_placements = documents
        .saturating_mul(3)
        .min(config.limits.expanded_objects);
    let mut builder = Builder {
        renders,
        requests: BTreeSet::new(),
        rendered_values: HashMap::default(),
        installed: BTreeSet::new(),
        index: &index,
        expander: Expander::with_limits(
            &index,
            config.limits.kustomize_objects,
            config.limits.expanded_objects,
        )
        .with_renders(renders),
        limits: config.limits,
        inventory,
        placements: Vec::with_capacity(expected_placements),
        placed: PlacedIndex::with_capacity(expected_placements),
        unresolved: Vec::new(),
        queue: VecDeque::new(),
        ran: HashSet::default(),
        host_of: HashMap::default(),
        cluster_decides: HashMap::default(),
        object_notes: HashSet::default(),
        undecided: Vec::with_capacity(expected_placements),
        delivery_signals: Vec::new(),
        image_overrides: Vec::new(),
        image_override_positions: HashMap::default(),
    };
    builder.seed_cluster_trees();
    builder.drain();
    builder.seed_argo();
    builder.drain();
    builder.run_unreached_flux(config);
    builder.seed_env_charts();
    builder.fallbacks(config);
    builder.drain();

    // helmfile deploys releases envfence cannot render; say so once per helmfile.
    let is_helmfile = |path: &str| index::basename(path).starts_with("helmfile");
    let helmfile_reason =
        "helmfile releases are rendered by helmfile; envfence does not render them";
    for skip in skipped {
        if matches!(skip.reason, SkipReason::Template(_)) && is_helmfile(&skip.rel_path) {
            builder.unresolved.push(Unresolved {
                location: Location::new(&skip.rel_path, 1),
                reason: helmfile_reason.into(),
            });
        }
    }
    // Fleet bundles are not read yet (DESIGN lists Fleet as later): say so per bundle.
    for f in files
        .iter()
        .filter(|f| index::basename(&f.path) == "fleet.yaml")
    {
        builder.unresolved.push(Unresolved {
            location: Location::new(&f.path, 1),
            reason: "Fleet bundle: envfence does not read fleet.yaml targets yet, so where Fleet deploys this folder is not known".into(),
        });
    }
    for f in files.iter().filter(|f| is_helmfile(&f.path)) {
        if let Some(entry) = f.documents.iter().find_map(|d| d.root.entry("releases")) {
            builder.unresolved.push(Unresolved {
                location: Location::new(&f.path, entry.key.span.start.line),
                reason: helmfile_reason.into(),
            });
        }
    }
    for skip in skipped {
        if let SkipReason::HelmTemplate {
            deploys: Some(kind),
        } = skip.reason
        {
            // A rendered chart's deployers are placed: nothing is unknown.
            let in_rendered_chart = skip
                .rel_path
                .find("/templates/")
                .is_some_and(|i| renders.rendered_chart(&skip.rel_path[..i]));
            if in_rendered_chart {
                continue;
            }
            builder.unresolved.push(Unresolved {
                location: Location::new(&skip.rel_path, 1),
                reason: format!(
                    "this Helm template defines {}; envfence does not render templates, so where it deploys is not known",
                    match kind {
                        "Application" => "Argo CD Applications",
                        "ApplicationSet" => "Argo CD ApplicationSets",
                        "HelmRelease" => "Flux HelmReleases",
                        _ => "Flux Kustomizations",
                    }
                ),
            });
        }
    }
    builder.decide_classes();
    builder.promote_clusters_holding_production();
    let expanded = |dir: &str| builder.expander.reached(dir);
    let unfollowed = unfollowed::find(&index, &builder.unresolved, &expanded, &builder.installed);
    builder.unresolved.extend(unfollowed.notes);
    // Only the worklist needed the rest of the builder (the expander's resolved
    // kustomizations, the placement keys): it is let go here, before the last steps add to
    // the scan's peak memory, and freed on a thread of its own, which takes a while.
    let (inventory, mut placements, unresolved, requests, rendered_values) = {
        let worklist = builder;
        let Builder {
            inventory,
            placements,
            unresolved,
            requests,
            rendered_values,
            expander,
            placed,
            ran,
            host_of,
            ..
        } = worklist;
        crate::background::drop_in_background((expander.into_caches(), placed, ran, host_of));
        (inventory, placements, unresolved, requests, rendered_values)
    };
    placements.shrink_to_fit();
    let object_coverage = coverage::compute(&index, &placements, &unfollowed.roots);
    let manifests = index.all_docs().filter(|(_, d)| d.is_manifest()).count();
    let mut topology = Topology {
        clusters: inventory.clusters,
        placements,
        unresolved,
        manifests,
        object_coverage,
        rendered_from: renders.first_rendered,
        render_requests: requests,
        rendered_values,
    };
    topology.manifests += topology.rendered_objects();
    for p in &mut topology.placements {
        p.cluster_environment = topology.clusters[p.cluster].environment;
    }
    tiers::assign_tiers(&mut topology.clusters, config);
    tiers::assign_purposes(&mut topology, &index);
    let keys = placement_order(&topology.placements);
    sort_in_place(&mut topology.placements, &keys);
    topology
        .unresolved
        .sort_by(|a, b| (&a.location, &a.reason).cmp(&(&b.location, &b.reason)));
    topology.unresolved.dedup();
    topology
}

/// What makes a placement one: an object (its source and final identity) on one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PlacementKey<'k> {
    source: &'k ItemSource,
    cluster: usize,
    kind: &'k str,
    name: Option<&'k str>,
    namespace: Option<&'k str>,
}

/// The placement of each object and cluster, by position. It keeps positions only: a key's
/// parts are read back from the placement (and the source it came from), not stored a second
/// time, which at 100,000 placements is megabytes instead of tens of megabytes.
#[derive(Default)]
struct PlacedIndex {
    positions: hashbrown::HashTable<usize>,
    /// The source of each placement, by position: the one part of the key a placement lacks.
    sources: Vec<ItemSource>,
    hasher: foldhash::fast::RandomState,
}

impl PlacedIndex {
    /// Room for `n` placements: growing the table rehashes every placement made so far.
    fn with_capacity(n: usize) -> Self {
        PlacedIndex {
            positions: hashbrown::HashTable::with_capacity(n),
            sources: Vec::with_capacity(n),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn find(&self, placements: &[Placement], key: &PlacementKey<'_>) -> Option<usize> {
        let hash = std::hash::BuildHasher::hash_one(&self.hasher, key);
        self.positions
            .find(hash, |&at| {
                Self::key_of(placements, &self.sources, at) == *key
            })
            .copied()
    }

    /// Records `placements[at]`, the newest placement, which came from `source`.
    fn record(&mut self, placements: &[Placement], at: usize, source: ItemSource) {
        debug_assert_eq!(at, self.sources.len());
        self.sources.push(source);
        let key = Self::key_of(placements, &self.sources, at);
        let hash = std::hash::BuildHasher::hash_one(&self.hasher, key);
        let Self {
            positions,
            sources,
            hasher,
        } = self;
        let rehash = |&i: &usize| {
            std::hash::BuildHasher::hash_one(&*hasher, Self::key_of(placements, sources, i))
        };
        positions.insert_unique(hash, at, rehash);
    }

    fn key_of<'p>(
        placements: &'p [Placement],
        sources: &'p [ItemSource],
        at: usize,
    ) -> PlacementKey<'p> {
        let p = &placements[at];
        PlacementKey {
            source: &sources[at],
            cluster: p.cluster,
            kind: &p.object.kind,
            name: p.object.name.as_deref(),
            namespace: p.object.namespace.as_deref(),
        }
    }
}

struct Builder<'a> {
    renders: &'a helm::Renders,
    requests: BTreeSet<helm::RenderRequest>,
    rendered_values: HashMap<usize, Vec<(Location, Arc<helm_values::ValueSources>)>>,
    /// Chart folders some deployer installs.
    installed: BTreeSet<String>,
    index: &'a RepoIndex<'a>,
    expander: Expander<'a>,
    limits: Limits,
    inventory: Inventory,
    placements: Vec<Placement>,
    /// One placement per object and cluster. An object is its source and its final identity:
    /// one base document becomes several objects when overlays rename it.
    placed: PlacedIndex,
    unresolved: Vec<Unresolved>,
    queue: VecDeque<(DocRef, usize, Vec<Evidence>, Vec<Signal>)>,
    /// Deployers already run, per cluster they run on.
    ran: HashSet<(DocRef, usize)>,
    /// The first cluster each deployer document was placed on.
    host_of: HashMap<DocRef, usize>,
    /// The class of every object on a non-production cluster, by cluster.
    cluster_decides: HashMap<usize, (Env, Arc<str>, Option<SignalLevel>)>,
    /// The texts of the placed objects' own hops, shared by the placements of one object.
    object_notes: HashSet<Arc<str>>,
    /// What each placement's images and class are worked out from, by position.
    undecided: Vec<Undecided>,
    /// What [`Undecided::delivery`] points at.
    delivery_signals: Vec<DeliverySignals>,
    /// What [`Undecided::images`] points at, and the position of each list by its address.
    image_overrides: Vec<Arc<[kustomize::ImageOverride]>>,
    image_override_positions: HashMap<usize, u32>,
}

/// What a placement's images and class are worked out from. Nothing in the worklist reads
/// them, so they are worked out for all placements at once when it is done, on all cores
/// ([`Builder::decide_classes`]): they are most of what placing an object costs. Kept
/// small, since there is one per placement.
#[derive(Clone, Copy)]
struct Undecided {
    /// In `Builder::delivery_signals`; [`Undecided::DECIDED`] for a placement made with its
    /// images and class.
    delivery: u32,
    /// The item's `images:` overrides: in `Builder::image_overrides`, plus one; 0 for none.
    images: u32,
    /// The cluster's environment when the object was placed.
    cluster_environment: Env,
    /// The placement's own hops start with a HelmRelease's redirect, not an overlay's hop.
    redirected: bool,
}

impl Undecided {
    const DECIDED: Undecided = Undecided {
        delivery: u32::MAX,
        images: 0,
        cluster_environment: Env::Unknown,
        redirected: false,
    };
}

/// The signals of a delivery that every object it places shares.
struct DeliverySignals {
    deployer: Vec<Signal>,
    /// Of the components and patch folders it applies.
    variants: Vec<Signal>,
}

impl<'a> Builder<'a> {
    fn seed_cluster_trees(&mut self) {
        let mut trees: BTreeSet<(String, String)> = BTreeSet::new();
        for f in self.index.files {
            if let Some(name) = clusters::cluster_tree_of(&f.path) {
                let marker = format!("clusters/{name}/");
                if let Some(pos) = f.path.find(&marker) {
                    let dir = &f.path[..pos + marker.len() - 1];
                    trees.insert((name.to_owned(), dir.to_owned()));
                }
            }
        }
        // A tree that a Flux object outside it points into is a payload (a hub deploying to
        // spokes), not a cluster's own root: that deployer places it.
        let targeted: Vec<String> = self
            .index
            .all_docs()
            .filter(|(_, d)| flux::is_flux_deployer(d))
            .filter_map(|(_, d)| {
                let path = d.root.get("spec")?.get("path")?.as_str()?;
                let target = index::join("", path, true)?;
                let tree = trees
                    .iter()
                    .find(|(_, dir)| target == *dir || target.starts_with(&format!("{dir}/")))?;
                (!d.file.starts_with(&format!("{}/", tree.1))).then(|| tree.1.clone())
            })
            .collect();
        for (name, dir) in trees {
            if targeted.contains(&dir) {
                continue;
            }
            let Some(cluster) = self.inventory.find(&name) else {
                continue;
            };
            let location = self.inventory.clusters[cluster]
                .declared_in
                .iter()
                .find(|l| l.file.starts_with(&dir))
                .cloned()
                .unwrap_or_else(|| Location::new(&Arc::from(dir.as_str()), 1));
            let delivery = Delivery {
                deployer: Deployer {
                    kind: "cluster folder".into(),
                    name: dir.clone(),
                    location: location.clone(),
                },
                cluster,
                dir: dir.clone(),
                mode: DirectoryMode::recursive(),
                force_namespace: None,
                default_namespace: None,
                chain: vec![Evidence {
                    location,
                    note: format!("cluster {name}'s tree is {dir}/").into(),
                }],
                signals: Vec::new(),
                helm_releases_to: None,
            };
            self.deliver(&delivery);
        }
    }

    /// Runs every Argo CD Application and ApplicationSet that no placement reached, parents
    /// (apps of apps) first so that their children carry the parent in their evidence.
    fn seed_argo(&mut self) {
        let mut roots = Vec::new();
        let mut contained = Vec::new();
        let argo: Vec<(DocRef, &Document)> = self
            .index
            .of_kind("Application")
            .chain(self.index.of_kind("ApplicationSet"))
            .filter(|(_, d)| argo::is_argo_deployer(d))
            .collect();
        let mut sources: HashMap<String, Vec<DocRef>> = HashMap::default();
        for (r, d) in &argo {
            for p in argo::source_paths(d) {
                sources.entry(p).or_default().push(*r);
            }
        }
        for (r, d) in &argo {
            if covered_by_others(&d.file, *r, &sources) {
                contained.push(*r);
            } else {
                roots.push(*r);
            }
        }
        roots.sort();
        contained.sort();
        for r in roots.into_iter().chain(contained) {
            if self.host_of.contains_key(&r) {
                continue;
            }
            self.queue
                .push_back((r, usize::MAX, Vec::new(), Vec::new()));
            self.drain();
        }
    }

    fn drain(&mut self) {
        while let Some((doc, host, chain, parent_signals)) = self.queue.pop_front() {
            if !self.ran.insert((doc, host)) {
                continue;
            }
            let host = (host != usize::MAX).then_some(host);
            let d = self.index.doc(doc);
            let outcome = match d.id.kind.as_deref() {
                Some("Application") | Some("ApplicationSet") => argo::run(
                    self.index,
                    &mut self.inventory,
                    doc,
                    host,
                    &chain,
                    &parent_signals,
                    &self.limits,
                ),
                Some("Kustomization") | Some("HelmRelease") => flux::run(
                    self.index,
                    &mut self.inventory,
                    doc,
                    host.unwrap_or(usize::MAX),
                    &chain,
                ),
                _ => continue,
            };
            self.unresolved.extend(outcome.unresolved);
            for delivery in outcome.deliveries {
                self.deliver(&delivery);
            }
            for extra in outcome.extra_placements {
                self.place_raw(extra);
            }
            for chart in outcome.charts {
                self.install_chart(chart);
            }
        }
    }

    /// Places what a chart rendered; without a render, the deployer's opaque placement and a
    /// note that says why (and how to render it).
    fn install_chart(&mut self, install: helm::ChartInstall) {
        let chart = install.request.chart.clone();
        self.installed.insert(chart.clone());
        self.requests.insert(install.request.clone());
        self.unresolved.extend(install.notes);
        let chart_yaml: Arc<str> = Arc::from(
            format!("{chart}/Chart.yaml")
                .trim_start_matches('/')
                .to_owned(),
        );
        match self.renders.get(&install.request) {
            Some(helm::Rendered::Files(files)) => {
                let sources = Arc::new(helm_values::ValueSources::new(
                    &install.request,
                    &install.values_evidence,
                ));
                for &f in files {
                    self.rendered_values.entry(f).or_default().push((
                        install.delivery.deployer.location.clone(),
                        Arc::clone(&sources),
                    ));
                }
                let mut delivery = install.delivery;
                delivery.chain.extend(install.values_evidence);
                delivery.chain.push(Evidence {
                    location: Location::new(&chart_yaml, 1),
                    note: install.request.describe().into(),
                });
                let items: Vec<kustomize::Item> = helm::rendered_docs(files)
                    .into_iter()
                    .map(|r| kustomize::Item {
                        source: ItemSource::Doc(r),
                        chain: Vec::new(),
                        namespace: None,
                        prefix: String::new(),
                        suffix: String::new(),
                        patch: false,
                        images: None,
                    })
                    .collect();
                self.place_items(&delivery, items);
            }
            other => {
                for p in install.fallback {
                    self.place_raw(p);
                }
                // One note per chart: why it is not rendered (and how to render it).
                let note = match other {
                    Some(helm::Rendered::Failed(note)) => Unresolved {
                        location: install.delivery.deployer.location.clone(),
                        reason: note.clone(),
                    },
                    _ if self.renders.helm().is_some() => {
                        self.unresolved.extend(install.fallback_notes);
                        return;
                    }
                    _ => Unresolved {
                        location: Location::new(&chart_yaml, 1),
                        reason: format!(
                            "chart {chart} is not rendered: {}",
                            self.renders.availability.hint()
                        ),
                    },
                };
                self.unresolved.push(note);
            }
        }
    }

    /// Charts no deployer installs, rendered per `values-<env>.yaml` onto cluster `<env>`.
    fn seed_env_charts(&mut self) {
        let installs = helm::implicit_installs(self.index, &mut self.inventory, &self.installed);
        for install in installs {
            self.install_chart(install);
        }
        self.drain();
    }

    /// Places everything a delivery's directory expands to, and queues deployers among them.
    fn deliver(&mut self, delivery: &Delivery) {
        let expansion = self.expander.expand(&delivery.dir, &delivery.mode);
        for chart in self.expander.take_charts() {
            self.installed.insert(chart.request.chart.clone());
            self.requests.insert(chart.request);
            for (&f, sources) in chart.files.iter().zip(chart.sources.iter().cycle()) {
                self.rendered_values
                    .entry(f)
                    .or_default()
                    .push((delivery.deployer.location.clone(), Arc::clone(sources)));
            }
        }
        for problem in &expansion.problems {
            self.unresolved.push(Unresolved {
                location: problem.location.clone(),
                reason: problem.reason.clone(),
            });
        }
        // Each expansion is made for its delivery: its items (and their evidence) move into
        // the placements instead of being copied.
        let items =
            Arc::try_unwrap(expansion).map_or_else(|shared| shared.items.clone(), |own| own.items);
        self.place_items(delivery, items);
    }

    /// Places the objects of one delivery, and queues deployers among them.
    fn place_items(&mut self, delivery: &Delivery, items: Vec<kustomize::Item>) {
        let signals = self.delivery_signals.len() as u32;
        self.delivery_signals.push(DeliverySignals {
            deployer: delivery.signals.clone(),
            variants: variant_signals(&items, self.index, self.inventory.vocabulary()),
        });
        let shared_chain: Arc<[Evidence]> = Arc::from(delivery.chain.as_slice());
        let deployer_class_of_delivery = deployer_class(&delivery.signals);
        let deployer = Arc::new(delivery.deployer.clone());
        let undecided_reason: Arc<str> = Arc::from("");
        let mut note_text = String::new();
        for item in items {
            let doc = match &item.source {
                ItemSource::Doc(r) => Some(self.index.doc(*r)),
                ItemSource::Generated(_) => None,
            };
            let (kind, name, mut namespace) = kustomize::placed_identity(&item, doc);
            let namespaced = !kustomize::is_cluster_scoped(&kind);
            if namespaced {
                if let Some(ns) = &delivery.force_namespace {
                    namespace = Some(ns.as_str().into());
                } else if namespace.is_none() {
                    namespace = delivery
                        .default_namespace
                        .as_deref()
                        .map(CompactString::from);
                }
            }
            let (file, line, doc_ref) = match &item.source {
                ItemSource::Doc(r) => {
                    let d = self.index.doc(*r);
                    (Arc::clone(&d.file), d.first_line, Some(*r))
                }
                ItemSource::Generated(generator) => (
                    Arc::clone(&self.index.files[generator.file].path),
                    generator.line,
                    None,
                ),
            };
            let (cluster, redirect) = match &delivery.helm_releases_to {
                Some((c, hop)) if kind == "HelmRelease" => (*c, Some(hop.clone())),
                _ => (delivery.cluster, None),
            };
            let key = PlacementKey {
                source: &item.source,
                cluster,
                kind: &kind,
                name: name.as_deref(),
                namespace: namespace.as_deref(),
            };
            if self.placed.find(&self.placements, &key).is_some() {
                continue;
            }
            // The object's own hops: the item's chain (moved, not copied), then the object.
            let mut evidence = item.chain;
            let redirected = redirect.is_some();
            if let Some(hop) = redirect {
                evidence.insert(0, hop);
            }
            // An object placed on several clusters (a base under several overlays) shares
            // its hop's text; the text is written into one buffer to be looked up.
            note_text.clear();
            note_text.push_str(&kind);
            note_text.push('/');
            note_text.push_str(name.as_deref().unwrap_or("?"));
            if let Some(ns) = &namespace {
                note_text.push_str(" in namespace ");
                note_text.push_str(ns);
            }
            let note = match self.object_notes.get(note_text.as_str()) {
                Some(known) => Arc::clone(known),
                None => {
                    let note: Arc<str> = Arc::from(note_text.as_str());
                    self.object_notes.insert(Arc::clone(&note));
                    note
                }
            };
            evidence.push(Evidence {
                location: Location::new(&file, line),
                note,
            });
            let object = PlacedObject {
                file,
                line,
                doc: doc_ref,
                kind,
                name,
                namespace,
                images: Vec::new(),
            };
            let images = item.images.map_or(0, |list| {
                let positions = &mut self.image_override_positions;
                let lists = &mut self.image_overrides;
                *positions.entry(list.as_ptr() as usize).or_insert_with(|| {
                    lists.push(Arc::clone(&list));
                    lists.len() as u32
                })
            });
            self.undecided.push(Undecided {
                delivery: signals,
                images,
                cluster_environment: self.inventory.clusters[cluster].environment,
                redirected,
            });
            let placement = Placement {
                object,
                cluster,
                cluster_environment: Env::Unknown,
                workload_class: Env::Unknown,
                class_reason: Arc::clone(&undecided_reason),
                class_level: None,
                deployer_class: deployer_class_of_delivery,
                evidence: EvidenceChain::new(Arc::clone(&shared_chain), evidence),
                deployer: Some(Arc::clone(&deployer)),
                patch: item.patch,
                renders_chart: false,
                opaque: false,
                purpose: Purpose::Unknown,
                purpose_reason: Arc::clone(&undecided_reason),
            };
            self.placements.push(placement);
            self.placed
                .record(&self.placements, self.placements.len() - 1, item.source);
            if let (Some(r), Some(d)) = (doc_ref, doc) {
                if !item.patch && (argo::is_argo_deployer(d) || flux::is_flux_deployer(d)) {
                    self.host_of.entry(r).or_insert(cluster);
                    let parent: Vec<Signal> = delivery
                        .signals
                        .iter()
                        .filter(|s| s.level == SignalLevel::Deployer)
                        .map(|s| Signal {
                            level: SignalLevel::Parent,
                            ..s.clone()
                        })
                        .collect();
                    let chain = self.placements[self.placements.len() - 1].evidence.to_vec();
                    self.queue.push_back((r, cluster, chain, parent));
                }
            }
        }
    }

    /// The images and class of each placement the worklist left undecided, on all cores.
    fn decide_classes(&mut self) {
        use rayon::prelude::*;
        let undecided = std::mem::take(&mut self.undecided);
        let delivery_signals = std::mem::take(&mut self.delivery_signals);
        let image_overrides = std::mem::take(&mut self.image_overrides);
        self.image_override_positions = HashMap::default();
        let vocabulary = self.inventory.vocabulary();
        let clusters = &self.inventory.clusters;
        let index = self.index;
        // On a non-production cluster the cluster decides whatever the signals say: one
        // reason for all its objects.
        for (p, u) in self.placements.iter().zip(&undecided) {
            if u.delivery != Undecided::DECIDED.delivery
                && u.cluster_environment == Env::NonProduction
            {
                self.cluster_decides.entry(p.cluster).or_insert_with(|| {
                    decide_class_of_parts(Env::NonProduction, &clusters[p.cluster].name, &[])
                });
            }
        }
        let cluster_decides = &self.cluster_decides;
        self.placements
            .par_iter_mut()
            .zip(undecided.par_iter())
            .for_each(|(p, u)| {
                let Some(delivery) = delivery_signals.get(u.delivery as usize) else {
                    return;
                };
                let overrides = match u.images.checked_sub(1) {
                    Some(i) => image_overrides.get(i as usize).map_or(&[][..], |l| &l[..]),
                    None => &[],
                };
                let doc = p.object.doc.map(|r| index.doc(r));
                let images = doc
                    .map(|d| kustomize::effective_images(d, overrides))
                    .unwrap_or_default();
                let (class, reason, level) = match cluster_decides.get(&p.cluster) {
                    Some(decided) if u.cluster_environment == Env::NonProduction => decided.clone(),
                    _ => {
                        let own = own_signals(&p.object, &images, doc, vocabulary);
                        // The item's own hops: without the redirect and the object's hop.
                        let hops = p.evidence.own();
                        let hops = hops
                            .get(usize::from(u.redirected)..hops.len().saturating_sub(1))
                            .unwrap_or(&[]);
                        let overlay = overlay_signals(hops, vocabulary);
                        decide_class_of_parts(
                            u.cluster_environment,
                            &clusters[p.cluster].name,
                            &[&delivery.deployer, &own, &overlay, &delivery.variants],
                        )
                    }
                };
                p.object.images = images;
                p.workload_class = class;
                p.class_reason = reason;
                p.class_level = level;
            });
    }

    /// DESIGN §3: a cluster still `unknown` that receives a production workload is
    /// production, with that workload as evidence. Workload classes do not change: on a
    /// production cluster only the signals decide them.
    fn promote_clusters_holding_production(&mut self) {
        for p in &self.placements {
            if !p.is_workload() || p.workload_class != Env::Production {
                continue;
            }
            // Only a cluster still unknown is promoted: say why only for one.
            if self.inventory.clusters[p.cluster].environment != Env::Unknown {
                continue;
            }
            let via = match &p.deployer {
                Some(d) => format!(" by {} {} ({})", d.kind, d.name, d.location),
                None => String::new(),
            };
            self.inventory.promote(
                p.cluster,
                format!(
                    "it holds production workload {}/{}{via}: {}",
                    p.object.kind,
                    p.object.name.as_deref().unwrap_or("?"),
                    p.class_reason
                ),
            );
        }
    }

    /// A placement a deployer makes directly (a HelmRelease on its kubeConfig cluster).
    fn place_raw(&mut self, placement: Placement) {
        let Some(doc) = placement.object.doc else {
            return;
        };
        let source = ItemSource::Doc(doc);
        let key = PlacementKey {
            source: &source,
            cluster: placement.cluster,
            kind: &placement.object.kind,
            name: placement.object.name.as_deref(),
            namespace: placement.object.namespace.as_deref(),
        };
        if let Some(existing) = self.placed.find(&self.placements, &key) {
            // The deployer object was placed here as an object (an app of apps, a Flux tree)
            // and also stands for its unread payload here: it is the opaque workload.
            if placement.opaque && !self.placements[existing].opaque {
                self.placements[existing] = placement;
                // It comes with its class.
                if let Some(u) = self.undecided.get_mut(existing) {
                    *u = Undecided::DECIDED;
                }
            }
            return;
        }
        self.placements.push(placement);
        self.undecided.push(Undecided::DECIDED);
        self.placed
            .record(&self.placements, self.placements.len() - 1, source);
    }

    /// Flux Kustomizations that no cluster tree or deployer reached. One with a remote
    /// `kubeConfig` names its cluster; the others (a single-cluster repository with its root
    /// in, say, `kubernetes/flux/cluster/`) run on one unnamed cluster of unknown environment,
    /// shallowest first so that roots reach their children.
    fn run_unreached_flux(&mut self, config: &Config) {
        let flux: Vec<(DocRef, &Document)> = self
            .index
            .of_kind("Kustomization")
            .filter(|(_, d)| flux::is_flux_deployer(d) && !self.index.is_patch_file(&d.file))
            .collect();
        // Roots first: a Kustomization whose file no other Kustomization's path covers.
        let mut paths: HashMap<String, Vec<DocRef>> = HashMap::default();
        for (r, d) in &flux {
            let path = d
                .root
                .get("spec")
                .and_then(|s| s.get("path"))
                .and_then(|p| p.as_str());
            if let Some(dir) = path.and_then(|p| index::join("", p, true)) {
                paths.entry(dir).or_default().push(*r);
            }
        }
        let mut pending: Vec<(bool, usize, DocRef)> = flux
            .iter()
            .map(|(r, d)| {
                (
                    covered_by_others(&d.file, *r, &paths),
                    d.file.matches('/').count(),
                    *r,
                )
            })
            .collect();
        pending.sort();
        for (_, _, r) in pending {
            if self.host_of.contains_key(&r) {
                continue;
            }
            let d = self.index.doc(r);
            let location = Location::new(&d.file, d.first_line);
            let remote = d
                .root
                .get("spec")
                .and_then(|s| s.get("kubeConfig"))
                .is_some();
            let by_rule = config.paths.iter().enumerate().find(|(_, rule)| {
                Glob::new(&rule.glob).is_ok_and(|g| g.compile_matcher().is_match(&*d.file))
            });
            let host = if remote {
                usize::MAX
            } else if let Some((i, rule)) = by_rule {
                let line = config
                    .source
                    .as_ref()
                    .and_then(|s| s.line_of(&format!("paths[{i}].glob")))
                    .unwrap_or(1);
                let (c, _) = self.inventory.resolve_destination(
                    Some(&rule.cluster),
                    None,
                    Location::new(&config_file(config), line),
                );
                c
            } else {
                self.unresolved.push(Unresolved {
                    location: location.clone(),
                    reason: format!(
                        "Flux Kustomization {} is not inside a clusters/<name>/ tree, so its cluster is not named: envfence places it on `{}` of unknown environment (name it with a `paths` rule for this file in .envfence.yaml)",
                        d.id.name.as_deref().unwrap_or("?"),
                        clusters::UNNAMED
                    ),
                });
                self.inventory.unnamed(location.clone())
            };
            self.host_of.insert(r, host);
            let chain = vec![Evidence {
                location,
                note: format!(
                    "Flux Kustomization {} (no cluster tree reaches it)",
                    d.id.name.as_deref().unwrap_or("?")
                )
                .into(),
            }];
            self.queue.push_back((r, host, chain, Vec::new()));
            self.drain();
        }
    }

    /// Files no deployer reached: the config's `paths`, then folder conventions.
    fn fallbacks(&mut self, config: &Config) {
        let mut placed_files: HashSet<Arc<str>> = self
            .placements
            .iter()
            .map(|p| Arc::clone(&p.object.file))
            .collect();
        let placed_before = self.placements.len();
        let reached = |f: &str| placed_files.contains(f);
        // config paths
        for (i, rule) in config.paths.iter().enumerate() {
            let Ok(glob) = Glob::new(&rule.glob) else {
                continue;
            };
            let matcher = glob.compile_matcher();
            let line = config
                .source
                .as_ref()
                .and_then(|s| s.line_of(&format!("paths[{i}].glob")))
                .unwrap_or(1);
            let location = Location::new(&config_file(config), line);
            let (cluster, _) =
                self.inventory
                    .resolve_destination(Some(&rule.cluster), None, location.clone());
            let dirs: BTreeSet<String> = self
                .index
                .files
                .iter()
                .filter(|f| matcher.is_match(&*f.path) && !reached(&f.path))
                .map(|f| index::parent(&f.path).to_owned())
                .collect();
            for dir in dirs {
                // Only the files the glob names, not their neighbours.
                let mut names = globset::GlobSetBuilder::new();
                for f in self.index.files_in(&dir) {
                    let path = &self.index.files[*f].path;
                    if matcher.is_match(&**path) && !reached(path) {
                        if let Ok(g) = Glob::new(&globset::escape(index::basename(path))) {
                            names.add(g);
                        }
                    }
                }
                let mode = DirectoryMode {
                    include: names.build().ok(),
                    ..DirectoryMode::default()
                };
                self.deliver(&Delivery {
                    deployer: Deployer {
                        kind: "config path".into(),
                        name: rule.glob.clone(),
                        location: location.clone(),
                    },
                    cluster,
                    dir: dir.clone(),
                    mode,
                    force_namespace: None,
                    default_namespace: None,
                    chain: vec![Evidence {
                        location: location.clone(),
                        note: format!("paths: {} → cluster {}", rule.glob, rule.cluster).into(),
                    }],
                    signals: Vec::new(),
                    helm_releases_to: None,
                });
            }
        }
        // Folder conventions: envs/<x>, environments/<x>, overlays/<x>, stages/<x> name the
        // cluster x when x is an environment word. The files placed so far: the set above and
        // what the config paths placed (one set, not a second copy at the scan's peak).
        placed_files.extend(
            self.placements[placed_before..]
                .iter()
                .map(|p| Arc::clone(&p.object.file)),
        );
        let mut roots: BTreeSet<(String, String, String)> = BTreeSet::new();
        for f in self.index.files {
            if placed_files.contains(&f.path) || self.expander.reached(index::parent(&f.path)) {
                continue;
            }
            let segments: Vec<&str> = f.path.split('/').collect();
            for (i, w) in segments.windows(2).enumerate() {
                if matches!(w[0], "envs" | "environments" | "overlays" | "stages")
                    && i + 2 < segments.len()
                {
                    let dir = segments[..i + 2].join("/");
                    if self.expander.reached(&dir) {
                        break;
                    }
                    if self.index.kustomization_in(&dir).is_some()
                        || f.documents.iter().any(Document::is_manifest)
                    {
                        roots.insert((dir, w[1].to_owned(), w[0].to_owned()));
                    }
                    break;
                }
            }
        }
        for (dir, name, slot) in roots {
            // Only a folder name with an environment meaning names a cluster (`overlays/blue`
            // says nothing about where it runs).
            if self.inventory.vocabulary().classify(&name).is_none() {
                continue;
            }
            // Point at the folder's kustomization (or its first file), not at the folder; a
            // folder of folders, at the first of those found below it.
            let location = match first_file_under(self.index, &dir) {
                Some(f) => Location::new(&self.index.files[f].path, 1),
                None => Location::new(&Arc::from(dir.as_str()), 1),
            };
            let (cluster, _) =
                self.inventory
                    .resolve_destination(Some(&name), None, location.clone());
            self.deliver(&Delivery {
                deployer: Deployer {
                    kind: "folder convention".into(),
                    name: dir.clone(),
                    location: location.clone(),
                },
                cluster,
                dir: dir.clone(),
                mode: DirectoryMode::recursive(),
                force_namespace: None,
                default_namespace: None,
                chain: vec![Evidence {
                    location,
                    note: format!(
                        "no deployer reaches {dir}; the folder {slot}/{name} names cluster {name}"
                    )
                    .into(),
                }],
                signals: Vec::new(),
                helm_releases_to: None,
            });
        }
    }
}

/// The file that stands for a folder in evidence: its kustomization, else its first file, else
/// the same found in its first sub-folder (in path order) that has one.
fn first_file_under(index: &RepoIndex<'_>, dir: &str) -> Option<usize> {
    index
        .kustomization_in(dir)
        .or_else(|| index.files_in(dir).first().copied())
        .or_else(|| {
            index
                .subdirs_of(dir)
                .find_map(|sub| first_file_under(index, sub))
        })
}

/// The objects one directory expands to, as (kind, name, namespace), without patches: what
/// `kustomize build` of that directory would output (generated names without their hash).
/// Used by the differential test against kubectl's kustomize.
pub fn kustomize_objects(
    files: &[SourceFile],
    dir: &str,
) -> Vec<(String, Option<String>, Option<String>)> {
    let index = RepoIndex::new(files);
    let mut expander = Expander::new(&index);
    let expansion = expander.expand(dir, &DirectoryMode::default());
    expansion
        .items
        .iter()
        .filter(|item| !item.patch)
        .map(|item| {
            let doc = match &item.source {
                ItemSource::Doc(r) => Some(index.doc(*r)),
                ItemSource::Generated(_) => None,
            };
            let (kind, name, namespace) = kustomize::placed_identity(item, doc);
            (
                kind.to_string(),
                name.map(|n| n.to_string()),
                namespace.map(|n| n.to_string()),
            )
        })
        .collect()
}

/// Whether some deployer other than `me` reads a folder that holds `file` (its path is the
/// file's folder or one of its ancestors, the repository root included).
fn covered_by_others(file: &str, me: DocRef, dirs: &HashMap<String, Vec<DocRef>>) -> bool {
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

/// A stable sort that needs no copy of the elements: `slice::sort_by` borrows a buffer of half
/// the slice, megabytes for the placements of a large repository at the scan's peak memory.
/// Sorts positions instead (stable, so ties keep their order) and moves each element once.
fn sort_in_place<T, K: Ord>(items: &mut [T], keys: &[K]) {
    let mut order: Vec<usize> = (0..items.len().min(keys.len())).collect();
    order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
    // `items[j]` must become the element now at `order[j]`: follow each cycle once.
    for start in 0..items.len() {
        let mut j = start;
        while order[j] != start {
            let next = order[j];
            items.swap(j, next);
            order[j] = j;
            j = next;
        }
        order[j] = j;
    }
}

/// The key that orders placements: (file, line, cluster), with each file by its rank among
/// the placements' files. The placements of one file share its path's allocation, so the
/// paths are compared once per file instead of once per comparison.
fn placement_order(placements: &[Placement]) -> Vec<(u32, u32, usize)> {
    let mut files: Vec<&Arc<str>> = Vec::new();
    let mut position: HashMap<*const u8, usize> = HashMap::default();
    for p in placements {
        position.entry(p.object.file.as_ptr()).or_insert_with(|| {
            files.push(&p.object.file);
            files.len() - 1
        });
    }
    let mut by_name: Vec<usize> = (0..files.len()).collect();
    by_name.sort_by(|&a, &b| files[a].cmp(files[b]));
    // Equal paths in separate allocations share a rank.
    let mut rank = vec![0u32; files.len()];
    let mut current = 0u32;
    for (i, pair) in by_name.iter().enumerate() {
        if i > 0 && files[by_name[i - 1]] != files[*pair] {
            current += 1;
        }
        rank[*pair] = current;
    }
    placements
        .iter()
        .map(|p| {
            let file = position
                .get(&p.object.file.as_ptr())
                .map_or(0, |&i| rank[i]);
            (file, p.object.line, p.cluster)
        })
        .collect()
}

/// The config file's path, as findings and evidence name it.
fn config_file(config: &Config) -> Arc<str> {
    config
        .source
        .as_ref()
        .map(|s| Arc::from(s.shown.as_str()))
        .unwrap_or_else(|| Arc::from(crate::config::FILE_NAME))
}

/// Signals from the object itself: its folders, namespace, labels, and (Jobs, CronJobs,
/// Pods) its name. Names of long-running workloads are weak and never decide.
fn own_signals(
    object: &PlacedObject,
    images: &[(String, u32)],
    doc: Option<&Document>,
    vocabulary: &env::Vocabulary,
) -> Vec<Signal> {
    let mut out = Vec::new();
    out.extend(tiers::tool_signal(doc, &object.kind, images));
    for folder in object.file.split('/').rev().skip(1) {
        if matches!(
            folder,
            "tests" | "test" | "e2e" | "integration" | "integration-tests" | "e2e-tests"
        ) {
            out.push(Signal {
                env: Env::NonProduction,
                note: format!("its folder {folder}/").into(),
                level: SignalLevel::Own,
            });
            break;
        }
    }
    if let Some(ns) = &object.namespace {
        if let Some(m) = vocabulary.classify_workload(ns) {
            out.push(Signal {
                env: m.env,
                note: format!("namespace {ns}").into(),
                level: SignalLevel::Own,
            });
        }
    }
    if let Some(d) = doc {
        for key in ["env", "environment"] {
            if let Some(v) = d.labels.get(key) {
                if let Some(m) = vocabulary.classify_workload(v) {
                    out.push(Signal {
                        env: m.env,
                        note: format!("label {key}={v}").into(),
                        level: SignalLevel::Own,
                    });
                }
            }
        }
    }
    if matches!(
        object.kind.as_str(),
        "Job" | "CronJob" | "Pod" | "Namespace"
    ) {
        if let Some(name) = &object.name {
            if let Some(m) = vocabulary.classify_workload(name) {
                out.push(Signal {
                    env: m.env,
                    note: format!("{} name {name}", object.kind).into(),
                    level: SignalLevel::Own,
                });
            }
        }
    }
    out
}

/// Signals from the kustomize components and patch files a delivery applies, by their folder
/// (`variants/non-prod/`): they shape every object of the delivery, like an overlay does.
fn variant_signals(
    items: &[kustomize::Item],
    index: &RepoIndex<'_>,
    vocabulary: &env::Vocabulary,
) -> Vec<Signal> {
    let mut folders: BTreeSet<String> = BTreeSet::new();
    for item in items {
        if item.patch {
            if let ItemSource::Doc(r) = &item.source {
                folders.insert(index::parent(&index.doc(*r).file).to_owned());
            }
        }
        for hop in &item.chain {
            if let Some(entry) = hop.note.strip_prefix("components ") {
                if let Some(dir) = index::join(index::parent(&hop.location.file), entry, false) {
                    folders.insert(dir);
                }
            }
        }
    }
    folders
        .into_iter()
        .filter_map(|dir| {
            let m = vocabulary.classify_workload(index::basename(&dir))?;
            Some(Signal {
                env: m.env,
                note: format!("component or patch folder {dir}/").into(),
                level: SignalLevel::Parent,
            })
        })
        .collect()
}

/// Signals from the overlays on the way to the object (`overlays/production/...`).
fn overlay_signals(chain: &[Evidence], vocabulary: &env::Vocabulary) -> Vec<Signal> {
    chain
        .iter()
        .filter_map(|hop| {
            let slot = folder_slot(index::parent(&hop.location.file))?;
            let m = vocabulary.classify_workload(slot)?;
            Some(Signal {
                env: m.env,
                note: format!("included by {}", index::parent(&hop.location.file)).into(),
                level: SignalLevel::Parent,
            })
        })
        .collect()
}

/// The class the deployer-level signals alone give: non-production wins, as for workloads.
pub(crate) fn deployer_class(signals: &[Signal]) -> Env {
    let at = |env: Env| {
        signals
            .iter()
            .any(|s| s.level == SignalLevel::Deployer && s.env == env)
    };
    if at(Env::NonProduction) {
        Env::NonProduction
    } else if at(Env::Production) {
        Env::Production
    } else {
        Env::Unknown
    }
}

/// The environment slot of a folder path: the segment after `overlays/`, `envs/`,
/// `environments/` or `stages/` (Kargo layouts), or a `feature-*` segment.
pub fn folder_slot(dir: &str) -> Option<&str> {
    let mut segments = dir.split('/');
    while let Some(s) = segments.next() {
        if matches!(s, "overlays" | "envs" | "environments" | "stages") {
            if let Some(next) = segments.clone().next() {
                return Some(next);
            }
        }
        if s.starts_with("feature-") || s.starts_with("feature_") {
            return Some(s);
        }
    }
    None
}

/// The workload class from the cluster and the signals, with the reason (DESIGN §3).
pub(crate) fn decide_class(
    cluster_env: Env,
    cluster: &str,
    signals: &[Signal],
) -> (Env, Arc<str>, Option<SignalLevel>) {
    decide_class_of_parts(cluster_env, cluster, &[signals])
}

/// `decide_class` over the concatenation of `parts`, without building it: a delivery's
/// signals are shared by all its objects.
fn decide_class_of_parts(
    cluster_env: Env,
    cluster: &str,
    parts: &[&[Signal]],
) -> (Env, Arc<str>, Option<SignalLevel>) {
    if cluster_env == Env::NonProduction {
        return (
            Env::NonProduction,
            format!("placed on non-production cluster {cluster}").into(),
            None,
        );
    }
    let find = |level: SignalLevel, env: Env| {
        parts
            .iter()
            .flat_map(|part| part.iter())
            .find(|s| s.level == level && s.env == env)
    };
    // A non-production signal from the workload's own identity or its own deployer wins.
    for level in [SignalLevel::Own, SignalLevel::Deployer] {
        if let Some(s) = find(level, Env::NonProduction) {
            return (Env::NonProduction, s.note.clone(), Some(level));
        }
    }
    for level in [SignalLevel::Own, SignalLevel::Deployer, SignalLevel::Parent] {
        if let Some(s) = find(level, Env::Production) {
            return (Env::Production, s.note.clone(), Some(level));
        }
    }
    if let Some(s) = find(SignalLevel::Parent, Env::NonProduction) {
        return (
            Env::NonProduction,
            s.note.clone(),
            Some(SignalLevel::Parent),
        );
    }
    (Env::Unknown, "no environment signal".into(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_slots() {
        assert_eq!(
            folder_slot("apps/x/overlays/production"),
            Some("production")
        );
        assert_eq!(folder_slot("envs/dev/apps"), Some("dev"));
        assert_eq!(folder_slot("apps/feature-login/x"), Some("feature-login"));
        assert_eq!(folder_slot("apps/x/base"), None);
    }

    /// A placement of the object at `file:line` on `cluster`; `purpose` tells it apart.
    fn placed(file: &str, line: u32, cluster: usize, purpose: Purpose) -> Placement {
        Placement {
            object: PlacedObject {
                file: Arc::from(file),
                line,
                doc: None,
                kind: "ConfigMap".into(),
                name: None,
                namespace: None,
                images: Vec::new(),
            },
            cluster,
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
            purpose,
            purpose_reason: Arc::from(""),
        }
    }

    #[test]
    fn placements_sort_by_path_whatever_allocation_holds_it() {
        // Each placement has its own allocation of its path: equal paths must share a rank.
        let mut placements = vec![
            placed("b/x.yaml", 3, 0, Purpose::IntegrationTest),
            placed("a/x.yaml", 9, 1, Purpose::Feature),
            placed("b/x.yaml", 1, 0, Purpose::Ci),
            placed("b/x.yaml", 3, 0, Purpose::LoadTest),
            placed("a/x.yaml", 9, 0, Purpose::SecurityTest),
        ];
        let keys = placement_order(&placements);
        sort_in_place(&mut placements, &keys);
        let order: Vec<(&str, u32, usize, Purpose)> = placements
            .iter()
            .map(|p| (&*p.object.file, p.object.line, p.cluster, p.purpose))
            .collect();
        assert_eq!(
            order,
            [
                ("a/x.yaml", 9, 0, Purpose::SecurityTest),
                ("a/x.yaml", 9, 1, Purpose::Feature),
                ("b/x.yaml", 1, 0, Purpose::Ci),
                ("b/x.yaml", 3, 0, Purpose::IntegrationTest),
                ("b/x.yaml", 3, 0, Purpose::LoadTest),
            ]
        );
    }

    #[test]
    fn the_placement_at_a_line_is_the_first_of_that_object_on_that_cluster() {
        let mut placements = vec![
            placed("a.yaml", 1, 0, Purpose::IntegrationTest),
            placed("a.yaml", 4, 1, Purpose::Feature),
            placed("a.yaml", 4, 1, Purpose::LoadTest),
            placed("b.yaml", 4, 0, Purpose::Ci),
        ];
        let keys = placement_order(&placements);
        sort_in_place(&mut placements, &keys);
        let topology = Topology {
            clusters: Vec::new(),
            placements,
            unresolved: Vec::new(),
            manifests: 0,
            object_coverage: coverage::Coverage::default(),
            rendered_from: 0,
            render_requests: BTreeSet::new(),
            rendered_values: HashMap::default(),
        };
        let purpose = |file, line, cluster| {
            topology
                .placement_at(file, line, cluster)
                .map(|p| p.purpose)
        };
        assert_eq!(purpose("a.yaml", 4, 1), Some(Purpose::Feature));
        assert_eq!(purpose("b.yaml", 4, 0), Some(Purpose::Ci));
        assert_eq!(purpose("a.yaml", 1, 0), Some(Purpose::IntegrationTest));
        assert_eq!(purpose("a.yaml", 4, 0), None);
        assert_eq!(purpose("a.yaml", 2, 0), None);
        assert_eq!(purpose("c.yaml", 1, 0), None);
    }

    #[test]
    fn sorting_in_place_is_stable() {
        let mut items: Vec<(u8, usize)> = [3, 1, 2, 1, 3, 0, 2, 1]
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k, i))
            .collect();
        let mut expected = items.clone();
        expected.sort_by_key(|&(k, _)| k);
        let keys: Vec<u8> = items.iter().map(|&(k, _)| k).collect();
        sort_in_place(&mut items, &keys);
        assert_eq!(items, expected);
        let mut empty: Vec<u8> = Vec::new();
        sort_in_place(&mut empty, &Vec::<u8>::new());
        assert!(empty.is_empty());
    }

    #[test]
    fn own_non_production_beats_parent_production() {
        let signals = vec![
            Signal {
                env: Env::Production,
                note: "included by overlays/production".into(),
                level: SignalLevel::Parent,
            },
            Signal {
                env: Env::NonProduction,
                note: "its folder tests/".into(),
                level: SignalLevel::Own,
            },
        ];
        assert_eq!(
            decide_class(Env::Production, "p", &signals).0,
            Env::NonProduction
        );
        assert_eq!(
            decide_class(Env::Production, "p", &signals[..1]).0,
            Env::Production
        );
        assert_eq!(
            decide_class(Env::NonProduction, "s", &signals[..1]).0,
            Env::NonProduction
        );
        assert_eq!(decide_class(Env::Production, "p", &[]).0, Env::Unknown);
    }
}
