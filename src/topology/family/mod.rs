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
//! ([`identity_signals`], [`deployer_signal`]), its opaque placement ([`opaque_placement`])
//! and the config file's name in evidence ([`config_file`]).

pub mod argo;
pub mod configsync;
pub mod conventions;
pub mod fleet;
pub mod flux;
pub mod helmfile;
pub mod kargo;
pub mod kfctl;
pub mod pipelines;
pub mod skaffold;

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::config::{Config, Limits};
use crate::documents::{Document, SourceFile};
use crate::evidence::Evidence;
use crate::topology::build::Worklist;
use crate::topology::classify::{decide_class, deployer_class, env::Vocabulary};
use crate::topology::expand::helm::Renders;
use crate::topology::index::{self, DocRef, RepoIndex};
use crate::topology::inventory::clusters::Inventory;
use crate::topology::inventory::selector::SelectorUse;
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
    &conventions::entrypoints::EntryPoints,
    &conventions::values_file::ValuesFiles,
    &conventions::Fallbacks,
    &configsync::ConfigSync,
    &kargo::Kargo,
    &kfctl::Kfctl,
    &fleet::Fleet,
    &helmfile::Helmfile,
    &pipelines::Pipelines,
    &skaffold::Skaffold,
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
/// reached it), the evidence that led there, the signals of the deployer that placed it, and
/// the namespace it was placed in.
pub struct Job<'j> {
    pub doc: DocRef,
    pub host: Option<usize>,
    pub chain: &'j [Evidence],
    pub parent_signals: &'j [Signal],
    /// The namespace the deployer object was placed in (a kustomization may have set it),
    /// when a placement reached it.
    pub namespace: Option<&'j str>,
}

/// What a family's deployer may read and change while it runs.
pub struct RunContext<'r, 'a> {
    pub index: &'r RepoIndex<'a>,
    pub inventory: &'r mut Inventory,
    pub limits: &'r Limits,
    /// The families of this build, whose [`Family::governs`] a deployer asks.
    pub families: &'r [&'r dyn Family],
}

/// A deployer that another family's objects may govern without delivering it (a Kargo Stage
/// promotes freight into an Argo CD Application): who it is, as its own family read it.
pub struct Governed<'g> {
    /// Its kind and API group (`Application`, `argoproj.io`).
    pub kind: &'g str,
    pub group: &'g str,
    pub name: &'g str,
    /// Its namespace, when it is known.
    pub namespace: Option<&'g str>,
    /// Its annotations, each with where it is set.
    pub annotations: &'g [(String, String, crate::location::Location)],
}

/// What governs a deployer ([`Family::governs`]): the hops that lead from the governing
/// objects to it, and the signals they give it, at the level of its own identity.
#[derive(Debug, Default)]
pub struct Governance {
    pub hops: Vec<Evidence>,
    pub signals: Vec<Signal>,
}

/// What every family of `families` says governs `deployer`, in their order.
pub fn governance(
    families: &[&dyn Family],
    index: &RepoIndex<'_>,
    vocabulary: &Vocabulary,
    deployer: &Governed<'_>,
) -> Governance {
    let mut all = Governance::default();
    for f in families {
        let g = f.governs(index, vocabulary, deployer);
        all.hops.extend(g.hops);
        all.signals.extend(g.signals);
    }
    all
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

    /// Kinds of this family that deliver or describe other objects rather than run: they are
    /// judged by where they send their payload, not as workloads. The `deployer_kinds` data
    /// of the `nonprod-on-prod-cluster` policy adds to these ([`deployer_kinds_and`]).
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

    /// The cluster selectors this family's objects write (an ApplicationSet's clusters
    /// generators, a Config Sync ClusterSelector): the build records which match no cluster,
    /// so that reports and `envfence init` can say which cluster labels to declare.
    fn cluster_selectors(&self, _index: &RepoIndex<'_>) -> Vec<SelectorUse> {
        Vec::new()
    }

    /// What this family's objects say of another family's deployer they govern without
    /// delivering it (a Kargo Stage and the Argo CD Application it promotes into): the hops
    /// from them to it and the signals they give it. A deployer asks every family as it runs
    /// ([`governance`]).
    fn governs(
        &self,
        _index: &RepoIndex<'_>,
        _vocabulary: &Vocabulary,
        _deployer: &Governed<'_>,
    ) -> Governance {
        Governance::default()
    }
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

/// The deployer kinds a placement rule uses: every family's built-in kinds
/// ([`deployer_kinds`]), then the `extra` ones a policy's `deployer_kinds` data adds, each
/// once.
pub fn deployer_kinds_and<S: AsRef<str>>(extra: &[S]) -> Vec<String> {
    let mut kinds: Vec<String> = Vec::new();
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let built_in = deployer_kinds().map(|k| -> &str { k });
    for kind in built_in.chain(extra.iter().map(AsRef::as_ref)) {
        if seen.insert(kind) {
            kinds.push(kind.to_owned());
        }
    }
    kinds
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

/// The order in which a family tries its roots that nothing reached: first those whose file no
/// other root's folder (`dirs`) covers, then the shallower files first (a root deeper in
/// another's folder is likely delivered by it).
pub fn unreached_root_order<'d>(
    roots: impl Iterator<Item = (DocRef, &'d str)>,
    dirs: &HashMap<String, Vec<DocRef>>,
) -> Vec<DocRef> {
    let mut pending: Vec<(bool, usize, DocRef)> = roots
        .map(|(r, file)| {
            (
                covered_by_others(file, r, dirs),
                file.matches('/').count(),
                r,
            )
        })
        .collect();
    pending.sort();
    pending.into_iter().map(|(_, _, r)| r).collect()
}

/// The config file's path, as findings and evidence name it.
pub fn config_file(config: &Config) -> Arc<str> {
    Arc::from(config.shown_file())
}

/// A deployer-level signal from one word of a deployer's identity (its name, a label, its
/// namespace, source path or revision), when the vocabulary knows the word. `note` says where
/// the word comes from; it is only written when the word is a signal.
pub fn deployer_signal(
    vocabulary: &Vocabulary,
    word: &str,
    note: impl FnOnce() -> String,
) -> Option<Signal> {
    let m = vocabulary.classify_workload_anew(word)?;
    Some(Signal {
        env: m.env,
        note: note().into(),
        level: SignalLevel::Deployer,
    })
}

/// The labels that say a deployer's environment.
pub const ENVIRONMENT_LABELS: [&str; 3] = ["env", "environment", "stage"];

/// A deployer's identity signals (DESIGN §3): its name, then each environment label
/// ([`ENVIRONMENT_LABELS`]) among `labels`, in their order, each named `{kind} name x` or
/// `{kind} label k=v`. Every family reads the same labels.
pub fn identity_signals<'l>(
    vocabulary: &Vocabulary,
    kind: &str,
    name: &str,
    labels: impl IntoIterator<Item = (&'l str, &'l str)>,
) -> Vec<Signal> {
    let mut out = Vec::new();
    out.extend(deployer_signal(vocabulary, name, || {
        format!("{kind} name {name}")
    }));
    for (key, value) in labels {
        if ENVIRONMENT_LABELS.contains(&key) {
            out.extend(deployer_signal(vocabulary, value, || {
                format!("{kind} label {key}={value}")
            }));
        }
    }
    out
}

/// What an opaque placement (DESIGN §3) is made of: the deployer object standing for a
/// payload envfence cannot read, on its destination, classed by its own signals.
pub struct Opaque {
    pub object: PlacedObject,
    pub cluster: usize,
    pub signals: Vec<Signal>,
    pub evidence: Vec<Evidence>,
    pub deployer: Deployer,
    /// The deployer renders a chart (a HelmRelease, an Application of a chart): rules read
    /// its values as the chart's.
    pub renders_chart: bool,
}

/// The placement of an [`Opaque`] deployer: its class decided from its own signals on its
/// cluster.
pub fn opaque_placement(o: Opaque, inventory: &Inventory) -> Placement {
    let c = &inventory.clusters[o.cluster];
    let (class, class_reason, level) = decide_class(c.environment, &c.name, &o.signals);
    Placement {
        object: o.object,
        cluster: o.cluster,
        cluster_environment: Env::Unknown,
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

/// Declares each `Cluster` object of API group `group` (Config Sync's `clusterregistry.k8s.io`,
/// Fleet's `fleet.cattle.io`) as a cluster, with its labels (what selectors match), at its
/// name's line.
pub fn declare_cluster_objects(index: &RepoIndex<'_>, inventory: &mut Inventory, group: &str) {
    for (_, d) in index.of_kind("Cluster").filter(|(_, d)| api_in(d, group)) {
        let Some(name) = d.id.name.as_deref() else {
            continue;
        };
        let line = d.line_of("metadata.name").unwrap_or(d.first_line);
        inventory.declare(Some(name), None, d.labels.clone(), Some(d.at(line)), None);
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
        location: d.at(line),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::{load, Loaded};
    use crate::evidence::{FieldDestinationHop, Hop};
    use crate::location::Location;
    use crate::topology::build::build_with_families;
    use crate::topology::expand::helm;
    use crate::topology::expand::kustomize::DirectoryMode;
    use crate::topology::{Delivery, DeployerKind};

    /// A family envfence does not ship: a `Shipment` (`example.com/v1`) sends the folder
    /// `spec.path` to the cluster `spec.cluster` names. All it needs is written here, against
    /// the [`Family`] interface alone.
    struct Fake;

    const FAKE: &str = "Fake shipments";

    fn is_shipment(d: &Document) -> bool {
        d.id.kind.as_deref() == Some("Shipment") && api_in(d, "example.com")
    }

    impl Family for Fake {
        fn name(&self) -> &'static str {
            FAKE
        }

        fn deployer_kinds(&self) -> &'static [&'static str] {
            &["Shipment"]
        }

        fn is_deployer(&self, d: &Document) -> bool {
            is_shipment(d)
        }

        fn stage(&self) -> Option<Stage> {
            Some(Stage::Deployers)
        }

        fn seed(&self, w: &mut Worklist<'_>) {
            let shipments: Vec<DocRef> = w
                .index()
                .of_kind("Shipment")
                .filter(|(_, d)| is_shipment(d))
                .map(|(r, _)| r)
                .collect();
            for r in shipments {
                if !w.was_reached(r) {
                    w.run(r, None, Vec::new());
                }
            }
        }

        fn run(&self, cx: &mut RunContext<'_, '_>, job: &Job<'_>) -> Outcome {
            let mut out = Outcome::default();
            let d = cx.index.doc(job.doc);
            let spec = d.root.get("spec");
            let Some(entry) = spec.and_then(|s| s.entry("cluster")) else {
                return out;
            };
            let (Some(name), Some(dir)) = (
                entry.value.as_str(),
                field_text(spec, &["path"]).and_then(|p| index::join("", p, true)),
            ) else {
                return out;
            };
            let at = Location::new(&d.file, entry.key.span.line);
            let (cluster, _) = cx
                .inventory
                .resolve_destination(Some(name), None, at.clone());
            let mut chain = job.chain.to_vec();
            chain.push(Evidence::new(
                at.clone(),
                Hop::FieldDestination(Box::new(FieldDestinationHop {
                    field: "spec.cluster".into(),
                    value: name.into(),
                })),
            ));
            out.deliveries.push(Delivery {
                mode: DirectoryMode::recursive(),
                ..Delivery::new(
                    Deployer {
                        kind: DeployerKind::Object("Shipment"),
                        name: name_of(d).to_owned(),
                        location: at,
                    },
                    cluster,
                    dir,
                    chain,
                )
            });
            out
        }

        fn notes(&self, cx: &NoteContext<'_, '_>, out: &mut Notes) {
            for (_, d) in cx.index.of_kind("Shipment").filter(|(_, d)| is_shipment(d)) {
                if field_text(d.root.get("spec"), &["path"]).is_none() {
                    note_at(
                        out,
                        d,
                        d.first_line,
                        format!(
                            "Shipment {} has no spec.path: what it ships is not known",
                            name_of(d)
                        ),
                    );
                    out.roots.insert(FamilyRoot {
                        dir: index::parent(&d.file).to_owned(),
                        family: FAKE,
                    });
                }
            }
        }
    }

    fn source_files(files: &[(&str, &str)]) -> Vec<SourceFile> {
        let mut out: Vec<SourceFile> = files
            .iter()
            .map(
                |(path, text)| match load(&Arc::from(*path), text.as_bytes(), None) {
                    Loaded::File(f) => f,
                    Loaded::Skipped(r) => panic!("{path} skipped: {r}"),
                },
            )
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    #[test]
    fn a_family_outside_the_registry_places_notes_and_draws_its_deployers() {
        let files = source_files(&[
            (
                "shipments/web.yaml",
                "apiVersion: example.com/v1\nkind: Shipment\nmetadata:\n  name: web\nspec:\n  cluster: prod-eu\n  path: apps/web\n",
            ),
            (
                "apps/web/config.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  k: v\n",
            ),
            (
                "legacy/pending.yaml",
                "apiVersion: example.com/v1\nkind: Shipment\nmetadata:\n  name: pending\nspec:\n  cluster: prod-eu\n",
            ),
            (
                "legacy/config.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: old-config\n",
            ),
        ]);
        let renders = helm::Renders::none(helm::Availability::Off("a test"), files.len());
        let t = build_with_families(&files, &[], &Config::default(), &renders, &[&Fake]);

        // Placed on the cluster the Shipment names, with the Shipment's hop in its chain.
        let config_map: Vec<&Placement> = t.placements_of_file("apps/web/config.yaml").collect();
        assert_eq!(config_map.len(), 1, "{:?}", t.placements);
        let p = config_map[0];
        assert_eq!(t.clusters[p.cluster].name, "prod-eu");
        assert!(
            p.evidence
                .iter()
                .any(|e| &*e.location.file == "shipments/web.yaml"
                    && e.location.line == 6
                    && matches!(&*e.hop, Hop::FieldDestination(h) if &*h.value == "prod-eu")
                    && e.note() == "spec.cluster=prod-eu"),
            "{:?}",
            p.evidence.iter().collect::<Vec<_>>()
        );
        let deployer = p.deployer.as_deref().expect("a deployer");
        assert_eq!(
            (deployer.kind.as_str(), deployer.name.as_str()),
            ("Shipment", "web")
        );
        assert_eq!(
            deployer.location,
            Location::new(&Arc::from("shipments/web.yaml"), 6)
        );

        // The Shipment without a path is noted, and its folder is the family's.
        assert!(
            t.unresolved
                .iter()
                .any(|u| &*u.location.file == "legacy/pending.yaml"
                    && u.reason.starts_with("Shipment pending has no spec.path")),
            "{:?}",
            t.unresolved
        );
        let legacy = t
            .object_coverage
            .unplaced_folders
            .iter()
            .find(|f| f.folder == "legacy")
            .expect("legacy/ is unplaced");
        assert_eq!(legacy.family, Some(FAKE));
        assert_eq!(legacy.objects, 2);

        // The graph draws the Shipment's edge to its cluster.
        let graph = crate::output::topology::mermaid(&t);
        assert!(
            graph.contains(
                "d_Shipment_web_shipments_web_yaml[\"Shipment web<br/><small>shipments/web.yaml</small>\"] --> c_prod_eu"
            ),
            "{graph}"
        );
    }

    #[test]
    fn the_deployer_kinds_are_the_families_and_a_policy_adds_to_them() {
        let kinds = deployer_kinds_and(&["Service", "Application"]);
        assert_eq!(
            kinds,
            [
                "Application",
                "ApplicationSet",
                "AppProject",
                "Kustomization",
                "GitRepository",
                "HelmRepository",
                "OCIRepository",
                "Bucket",
                "HelmChart",
                "ArtifactGenerator",
                "ExternalArtifact",
                "RootSync",
                "RepoSync",
                "ConfigManagement",
                "KfDef",
                "GitRepo",
                "Service",
            ]
        );
    }

    /// The placement of the object in `file` on cluster `cluster`, built with the registry.
    fn placed_with_registry<'t>(
        topology: &'t crate::topology::Topology,
        file: &str,
        cluster: &str,
    ) -> &'t crate::topology::Placement {
        topology
            .placements
            .iter()
            .find(|p| &*p.object.file == file && topology.clusters[p.cluster].name == cluster)
            .unwrap_or_else(|| panic!("{file} is placed on {cluster}"))
    }

    #[test]
    fn a_flux_kustomization_reads_the_stage_label_as_argo_cd_does() {
        let files = source_files(&[
            (
                "clusters/prod/apps.yaml",
                "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\n  labels:\n    stage: dev\nspec:\n  path: ./apps/web\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n",
            ),
            (
                "apps/web/config.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n",
            ),
        ]);
        let renders = helm::Renders::none(helm::Availability::Off("test"), files.len());
        let topology = build_with_families(&files, &[], &Config::default(), &renders, REGISTRY);
        let p = placed_with_registry(&topology, "apps/web/config.yaml", "prod");
        assert_eq!(p.workload_class, Env::NonProduction, "{}", p.class_reason);
        assert_eq!(&*p.class_reason, "Kustomization label stage=dev");
    }

    #[test]
    fn a_flux_kustomization_an_application_places_carries_the_applications_signals() {
        let files = source_files(&[
            (
                "argocd/checkout-feature-x.yaml",
                "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: checkout-feature-x\nspec:\n  source:\n    path: flux/checkout\n  destination:\n    name: prod\n",
            ),
            (
                "flux/checkout/sync.yaml",
                "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: checkout\nspec:\n  path: ./apps/checkout\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n",
            ),
            (
                "apps/checkout/config.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: checkout\n",
            ),
        ]);
        let renders = helm::Renders::none(helm::Availability::Off("test"), files.len());
        let topology = build_with_families(&files, &[], &Config::default(), &renders, REGISTRY);
        let p = placed_with_registry(&topology, "apps/checkout/config.yaml", "prod");
        assert_eq!(p.workload_class, Env::NonProduction, "{}", p.class_reason);
        assert_eq!(&*p.class_reason, "Application name checkout-feature-x");
    }

    #[test]
    fn the_deepest_root_names_the_family() {
        let roots = vec![
            FamilyRoot {
                dir: String::new(),
                family: "Config Sync",
            },
            FamilyRoot {
                dir: "charts/web".into(),
                family: "Helm chart",
            },
        ];
        assert_eq!(family_owning(&roots, "namespaces/a"), Some("Config Sync"));
        assert_eq!(family_owning(&roots, "charts/web/crds"), Some("Helm chart"));
        let roots = &roots[1..];
        assert_eq!(family_owning(roots, "charts"), Some("Helm chart"));
        assert_eq!(family_owning(roots, "apps"), None);
    }
}
