//! The worklist: deliveries place objects, placed deployers run through their family and
//! deliver more, until nothing is left to run.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use compact_str::CompactString;

use super::classes::{DeliverySignals, Undecided};
use super::placed::{PlacedIndex, PlacementKey};
use crate::budget::BudgetCut;
use crate::config::{Config, Limits};
use crate::evidence::{Evidence, Hop, ObjectId};
use crate::location::Location;
use crate::topology::classify::deployer_class;
use crate::topology::classify::variant_signals;
use crate::topology::expand::kustomize::{self, Expander, ItemSource};
use crate::topology::expand::{helm, helm_values};
use crate::topology::family::{self, Family, Job, RunContext};
use crate::topology::index::{DocRef, RepoIndex};
use crate::topology::inventory::clusters::Inventory;
use crate::topology::{
    Delivery, Deployer, Env, EvidenceChain, HashMap, HashSet, PlacedObject, Placement, Purpose,
    Signal, SignalLevel, Unresolved,
};
use crate::walk::Skipped;

/// The worklist: the deliveries made so far and the deployers still to run. Families seed it
/// through the methods below; only the build reads the rest.
pub struct Worklist<'a> {
    pub(super) families: &'a [&'a dyn Family],
    pub(super) config: &'a Config,
    pub(super) renders: &'a helm::Renders,
    pub(super) requests: BTreeSet<helm::RenderRequest>,
    pub(super) rendered_values: HashMap<usize, Vec<(Location, Arc<helm_values::ValueSources>)>>,
    /// Chart folders some deployer installs.
    pub(super) installed: BTreeSet<String>,
    pub(super) index: &'a RepoIndex<'a>,
    /// The files the walk passed over (a Go template keeps its text: helmfiles are read
    /// from it).
    pub(super) skipped: &'a [Skipped],
    pub(super) expander: Expander<'a>,
    pub(super) limits: Limits,
    pub(super) inventory: Inventory,
    pub(super) placements: Vec<Placement>,
    /// One placement per object and cluster. An object is its source and its final identity:
    /// one base document becomes several objects when overlays rename it.
    pub(super) placed: PlacedIndex,
    pub(super) unresolved: Vec<Unresolved>,
    /// The budgets that cut this build short (each also a note in `unresolved`).
    pub(super) cuts: Vec<BudgetCut>,
    /// Deployers to run: the document, the cluster it runs on, the evidence that led there,
    /// and the signals of the deployer that placed it.
    pub(super) queue: VecDeque<Queued>,
    /// Deployers already run, per cluster they run on.
    pub(super) ran: HashSet<(DocRef, Option<usize>)>,
    /// Deployer documents some placement or seed reached: seeds pass over them.
    pub(super) reached_deployers: HashSet<DocRef>,
    /// Deployer documents placed as objects whose placement then became their opaque one on
    /// the same cluster: they were placed all the same, and coverage counts them.
    pub(super) stood_for: Vec<DocRef>,
    /// Every delivery's deployer and cluster, whether or not it placed anything of its own
    /// (an object another deployer placed first is placed once): [`Topology::delivered`].
    pub(super) delivered: Vec<(Arc<Deployer>, usize)>,
    /// The class of every object on a non-production cluster, by cluster.
    pub(super) cluster_decides: HashMap<usize, (Env, Arc<str>, Option<SignalLevel>)>,
    /// The placed objects' own hops, shared by the placements of one object.
    pub(super) object_hops: ObjectHops,
    /// What each placement's images and class are worked out from, by position.
    pub(super) undecided: Vec<Undecided>,
    /// What [`Undecided::delivery`] points at.
    pub(super) delivery_signals: Vec<DeliverySignals>,
    /// What [`Undecided::images`] points at, and the position of each list by its address.
    pub(super) image_overrides: Vec<Arc<[kustomize::ImageOverride]>>,
    pub(super) image_override_positions: HashMap<usize, u32>,
}

/// A deployer to run: the document, the cluster it runs on (`None`: no placement reached it),
/// the evidence that led there, and the signals of the deployer that placed it.
pub(super) struct Queued {
    doc: DocRef,
    host: Option<usize>,
    chain: Vec<Evidence>,
    parent_signals: Vec<Signal>,
    /// The namespace the deployer object was placed in, when a placement reached it.
    namespace: Option<CompactString>,
}

/// The hop of each placed object, by its identity ([`ObjectId`]): one per object, shared by
/// its placements on every cluster, looked up without an allocation.
#[derive(Default)]
pub(super) struct ObjectHops {
    hops: hashbrown::HashTable<Arc<Hop>>,
    hasher: foldhash::fast::RandomState,
}

impl ObjectHops {
    fn key(hop: &Hop) -> &str {
        match hop {
            Hop::Object { id } => id.as_key(),
            _ => "",
        }
    }

    /// The hop of the object whose key ([`ObjectId::write_key`]) is `key`.
    fn get(&mut self, key: &str) -> Arc<Hop> {
        let hash = std::hash::BuildHasher::hash_one(&self.hasher, key);
        if let Some(known) = self.hops.find(hash, |h| Self::key(h) == key) {
            return Arc::clone(known);
        }
        let hop = Arc::new(Hop::Object {
            id: ObjectId::from_key(key),
        });
        let hasher = &self.hasher;
        self.hops.insert_unique(hash, Arc::clone(&hop), |h| {
            std::hash::BuildHasher::hash_one(hasher, Self::key(h))
        });
        hop
    }
}

/// What the build keeps of a finished worklist.
pub(super) struct Finished {
    pub inventory: Inventory,
    pub placements: Vec<Placement>,
    pub unresolved: Vec<Unresolved>,
    pub cuts: Vec<BudgetCut>,
    pub requests: BTreeSet<helm::RenderRequest>,
    pub rendered_values: HashMap<usize, Vec<(Location, Arc<helm_values::ValueSources>)>>,
    /// See [`Worklist::stood_for`].
    pub stood_for: Vec<DocRef>,
    /// See [`Worklist::delivered`].
    pub delivered: Vec<(Arc<Deployer>, usize)>,
}

impl<'a> Worklist<'a> {
    pub(in crate::topology) fn new(
        index: &'a RepoIndex<'a>,
        inventory: Inventory,
        config: &'a Config,
        limits: Limits,
        renders: &'a helm::Renders,
        families: &'a [&'a dyn Family],
        skipped: &'a [Skipped],
    ) -> Self {
        let documents: usize = index.files.iter().map(|f| f.documents.len()).sum();
        // Objects are usually placed on a few clusters each, and expansions stop at the scan's
        // object budget. Room that is never written costs address space, not memory; growing
        // by doubling would copy every placement (and fault in fresh pages) again and again.
        let expected_placements = documents.saturating_mul(3).min(limits.expanded_objects);
        Worklist {
            families,
            config,
            renders,
            requests: BTreeSet::new(),
            rendered_values: HashMap::default(),
            installed: BTreeSet::new(),
            index,
            skipped,
            expander: Expander::with_limits(
                index,
                limits.kustomize_objects,
                limits.expanded_objects,
            )
            .with_renders(renders),
            limits,
            inventory,
            placements: Vec::with_capacity(expected_placements),
            placed: PlacedIndex::with_capacity(expected_placements),
            unresolved: Vec::new(),
            cuts: Vec::new(),
            queue: VecDeque::new(),
            ran: HashSet::default(),
            reached_deployers: HashSet::default(),
            stood_for: Vec::new(),
            delivered: Vec::new(),
            cluster_decides: HashMap::default(),
            object_hops: ObjectHops::default(),
            undecided: Vec::with_capacity(expected_placements),
            delivery_signals: Vec::new(),
            image_overrides: Vec::new(),
            image_override_positions: HashMap::default(),
        }
    }

    pub fn index(&self) -> &'a RepoIndex<'a> {
        self.index
    }

    /// Expands with the edits [`kustomize::prepare_edits`] worked out, and records the
    /// budgets that cut that work short.
    pub(super) fn use_edits(&mut self, table: Arc<kustomize::EditTable>, cuts: Vec<BudgetCut>) {
        // Each cut's note is the expansion's to give, where the kustomization is reached.
        self.expander.use_edits(table);
        self.cuts.extend(cuts);
    }

    /// The files the walk passed over, with the text of Go templates.
    pub fn skipped(&self) -> &'a [Skipped] {
        self.skipped
    }

    pub fn config(&self) -> &'a Config {
        self.config
    }

    /// The families of this build.
    pub fn families(&self) -> &'a [&'a dyn Family] {
        self.families
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    pub fn inventory_mut(&mut self) -> &mut Inventory {
        &mut self.inventory
    }

    /// The placements made so far.
    pub fn placements(&self) -> &[Placement] {
        &self.placements
    }

    /// Whether a delivery expanded `dir` (a kustomization reached through it counts).
    pub fn reached(&self, dir: &str) -> bool {
        self.expander.reached(dir)
    }

    /// Whether a placement or a seed already reached the deployer document `doc`.
    pub fn was_reached(&self, doc: DocRef) -> bool {
        self.reached_deployers.contains(&doc)
    }

    /// Chart folders some deployer installs.
    pub fn installed(&self) -> &BTreeSet<String> {
        &self.installed
    }

    /// Runs on `cluster` every deployer of file `file` (a file of Argo CD Applications named
    /// directly by an entry point or a pipeline), each with `chain`; whether there were any.
    pub fn run_deployers_in(&mut self, file: usize, cluster: usize, chain: Vec<Evidence>) -> bool {
        let index = self.index;
        let deployers: Vec<DocRef> = index
            .manifests_of(file)
            .filter(|r| {
                crate::topology::family::family_of_deployer(self.families, index.doc(*r)).is_some()
            })
            .collect();
        for &r in &deployers {
            self.run(r, Some(cluster), chain.clone());
        }
        !deployers.is_empty()
    }

    /// Runs the deployer `doc` on `host` (`None`: no placement reached it), and everything it
    /// reaches, before returning.
    pub fn run(&mut self, doc: DocRef, host: Option<usize>, chain: Vec<Evidence>) {
        self.reached_deployers.insert(doc);
        self.queue.push_back(Queued {
            doc,
            host,
            chain,
            parent_signals: Vec::new(),
            namespace: None,
        });
        self.drain();
    }

    pub fn note(&mut self, note: Unresolved) {
        self.unresolved.push(note);
    }

    /// Records a budget that cut a family's seed short (its note is the family's to give).
    pub fn cut(&mut self, cut: BudgetCut) {
        self.cuts.push(cut);
    }

    pub(super) fn note_all(&mut self, notes: Vec<Unresolved>) {
        self.unresolved.extend(notes);
    }

    /// The notes so far.
    pub(super) fn notes(&self) -> &[Unresolved] {
        &self.unresolved
    }

    /// What the build keeps of the worklist. Only the worklist needed the rest (the
    /// expander's resolved kustomizations, the placement keys): it is let go here, before the
    /// last steps add to the scan's peak memory, and freed on a thread of its own, which takes
    /// a while.
    pub(super) fn finish(self) -> Finished {
        let Worklist {
            inventory,
            placements,
            unresolved,
            cuts,
            requests,
            rendered_values,
            expander,
            placed,
            ran,
            reached_deployers,
            stood_for,
            delivered,
            ..
        } = self;
        // The placement index is two large blocks (and a box per generated object): freed
        // here, they go back to the system at once, before the last steps allocate.
        drop(placed);
        crate::background::drop_in_background((expander.into_caches(), ran, reached_deployers));
        Finished {
            inventory,
            placements,
            unresolved,
            cuts,
            requests,
            rendered_values,
            stood_for,
            delivered,
        }
    }

    /// Runs the queued deployers, each through its family, until none is left.
    pub fn drain(&mut self) {
        while let Some(Queued {
            doc,
            host,
            chain,
            parent_signals,
            namespace,
        }) = self.queue.pop_front()
        {
            if !self.ran.insert((doc, host)) {
                continue;
            }
            let Some(family) = family::family_of_deployer(self.families, self.index.doc(doc))
            else {
                continue;
            };
            let mut cx = RunContext {
                index: self.index,
                inventory: &mut self.inventory,
                limits: &self.limits,
                families: self.families,
            };
            let job = Job {
                doc,
                host,
                chain: &chain,
                parent_signals: &parent_signals,
                namespace: namespace.as_deref(),
            };
            let outcome = family.run(&mut cx, &job);
            self.unresolved.extend(outcome.unresolved);
            self.cuts.extend(outcome.cuts);
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
    pub fn install_chart(&mut self, install: helm::ChartInstall) {
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
                delivery.chain.push(Evidence::new(
                    Location::new(&chart_yaml, 1),
                    Hop::Rendered {
                        render: install.request.describe().into(),
                    },
                ));
                let items: Vec<kustomize::Item> = helm::rendered_docs(files)
                    .into_iter()
                    .map(|r| kustomize::Item::plain(ItemSource::Doc(r)))
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

    /// Places everything a delivery's directory expands to, and queues deployers among them.
    pub fn deliver(&mut self, delivery: &Delivery) {
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
        self.cuts.extend(expansion.cuts.iter().cloned());
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
    // Long: the worklist's hot path, one pass per item (identity, key, hops, placement,
    // deployer); split, each part would take the item's state as arguments.
    fn place_items(&mut self, delivery: &Delivery, items: Vec<kustomize::Item>) {
        let mut object_key = String::new();
        let signals = self.delivery_signals.len() as u32;
        self.delivery_signals.push(DeliverySignals {
            deployer: delivery.signals.clone(),
            variants: variant_signals(&items, self.index, self.inventory.vocabulary()),
        });
        let shared_chain: Arc<[Evidence]> = Arc::from(delivery.chain.as_slice());
        let deployer_class_of_delivery = deployer_class(&delivery.signals);
        let deployer = Arc::new(delivery.deployer.clone());
        self.delivered
            .push((Arc::clone(&deployer), delivery.cluster));
        let undecided_reason: Arc<str> = Arc::from("");
        for item in items {
            let doc_ref = match &item.source {
                ItemSource::Doc(r) => Some(*r),
                ItemSource::Generated(_) => None,
            };
            if !delivery.documents.admits(doc_ref) {
                continue;
            }
            let doc = doc_ref.map(|r| self.index.doc(r));
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
            // its hop.
            ObjectId::write_key(
                &mut object_key,
                &kind,
                name.as_deref(),
                namespace.as_deref(),
            );
            let hop = self.object_hops.get(&object_key);
            evidence.push(Evidence::shared(Location::new(&file, line), hop));
            let object = PlacedObject {
                file,
                line,
                doc: doc_ref,
                kind,
                name,
                namespace,
                images: Box::default(),
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
                if !item.patch && family::family_of_deployer(self.families, d).is_some() {
                    self.reached_deployers.insert(r);
                    // A deployer a kustomize edit changed stands for the one written: seeds
                    // pass over that one too.
                    self.reached_deployers.insert(self.index.original(r));
                    let parent: Vec<Signal> = delivery
                        .signals
                        .iter()
                        .filter(|s| s.level == SignalLevel::Deployer)
                        .map(|s| Signal {
                            level: SignalLevel::Parent,
                            ..s.clone()
                        })
                        .collect();
                    let placed = &self.placements[self.placements.len() - 1];
                    let chain = placed.evidence.to_vec();
                    let namespace = placed.object.namespace.clone();
                    self.queue.push_back(Queued {
                        doc: r,
                        host: Some(cluster),
                        chain,
                        parent_signals: parent,
                        namespace,
                    });
                }
            }
        }
    }

    /// A placement a deployer makes directly (a HelmRelease on its kubeConfig cluster).
    pub fn place_raw(&mut self, placement: Placement) {
        let source = match placement.object.doc {
            Some(doc) => ItemSource::Doc(doc),
            // A deployer that is no document (a helmfile release) stands for itself, at its
            // file and line.
            None => ItemSource::Generated(Box::new(kustomize::Generator {
                file: usize::MAX,
                line: placement.object.line,
                kind: "deployer",
                name: placement.object.file.to_string(),
            })),
        };
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
                if let (false, Some(doc)) =
                    (self.placements[existing].is_opaque(), placement.object.doc)
                {
                    self.stood_for.push(doc);
                }
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
}
