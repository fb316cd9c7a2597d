//! Evidence: the hops of the chain that explains a placement or a finding. Each hop says what
//! it is ([`Hop`]) and carries its data and its location; code that needs to know what a hop
//! is (an include, a destination, a Helm parameter, ...) matches on the variant, never on
//! words. The words are made in one place, [`Hop`]'s `Display` below, which every output
//! (and the Rego input) reads; nothing parses them back.
//!
//! Below the topology and the findings, beside [`crate::location`]; imports nothing else.

use std::fmt;
use std::sync::Arc;

use crate::location::Location;

/// One hop of the chain that explains a finding: "this file, this line, because ...".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Evidence {
    pub location: Location,
    /// Shared: a delivery's hops are copied into every placement it makes, and an object's
    /// hop into each of its placements.
    pub hop: Arc<Hop>,
}

impl Evidence {
    pub fn new(location: Location, hop: Hop) -> Self {
        Evidence {
            location,
            hop: Arc::new(hop),
        }
    }

    /// A hop shared with other evidence (an object's, on each cluster it is placed on).
    pub fn shared(location: Location, hop: Arc<Hop>) -> Self {
        Evidence { location, hop }
    }

    /// The hop in words, as every output shows it: credentials a value carries are masked
    /// ([`crate::redact::secrets`]).
    pub fn note(&self) -> String {
        let words = self.hop.to_string();
        match crate::redact::secrets(&words) {
            std::borrow::Cow::Borrowed(_) => words,
            std::borrow::Cow::Owned(masked) => masked,
        }
    }
}

/// The key of a kustomization that includes a file or folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IncludeKey {
    Resources,
    Bases,
    Components,
    /// A patch file (`patches`, `patchesStrategicMerge`, ...).
    Patch,
}

impl IncludeKey {
    pub fn as_str(self) -> &'static str {
        match self {
            IncludeKey::Resources => "resources",
            IncludeKey::Bases => "bases",
            IncludeKey::Components => "components",
            IncludeKey::Patch => "patch",
        }
    }
}

/// The field of an Argo CD Application that names its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DestinationField {
    /// `destination.name`.
    Name,
    /// `destination.server`.
    Server,
}

impl fmt::Display for DestinationField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DestinationField::Name => write!(f, "destination.name"),
            DestinationField::Server => write!(f, "destination.server"),
        }
    }
}

/// Why an ApplicationSet generator yields what it does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GeneratorHop {
    /// One element of a list generator, summarised by its first keys.
    ListElement { summary: Arc<str> },
    /// A clusters generator (all clusters, or the local one).
    Clusters { local: bool },
    /// A cluster a clusters generator's selector matched.
    ClusterMatched { cluster: Arc<str> },
    /// A git directories generator's directory.
    GitDirectory {
        dir: Arc<str>,
        repo: Arc<str>,
        read_from: Arc<str>,
    },
    /// A git files generator's file.
    GitFile { file: Arc<str>, repo: Arc<str> },
    /// A generator whose Applications exist per pull request or SCM branch.
    Ephemeral { kind: Arc<str>, what: Arc<str> },
    /// A generator whose parameters only the live system knows.
    RunTime { kind: Arc<str> },
    /// One entry of a generator's `values`, as rendered with the set's own parameters: the
    /// template reads it as `values.<key>`.
    Value { key: Arc<str>, value: Arc<str> },
}

/// What a hop is. Each variant carries the data its words are made of. The hops every
/// placement has (includes, source paths, destinations, the object) are held inline; the
/// rarer ones with several parts are boxed, so that a hop stays three words long.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Hop {
    /// A kustomization includes a file or folder (`resources ../base`), or a patch file.
    Include { key: IncludeKey, entry: Arc<str> },
    /// A kustomize generator (`configMapGenerator`, ...) creates the object.
    Generated(Box<GeneratedHop>),
    /// A kustomization's `helmCharts` entry, rendered.
    KustomizeChart(Box<KustomizeChartHop>),
    /// An Argo CD Application's destination as written (`destination.name=prod`); `local`
    /// when it is the cluster that runs Argo CD itself.
    Destination {
        field: DestinationField,
        local: bool,
        value: Arc<str>,
    },
    /// A Flux deployer's remote cluster: its `kubeConfig` reference and the cluster it names.
    KubeConfig(Box<KubeConfigHop>),
    /// Another family's destination field (`spec.cluster=prod`).
    FieldDestination(Box<FieldDestinationHop>),
    /// A hub's inline patch that sends every HelmRelease to a spoke cluster.
    HelmReleasesTo(Box<HelmReleasesToHop>),
    /// The folder an Argo CD Application reads (`source.path`); `chart` when it is a Helm
    /// chart that Argo CD renders.
    SourcePath { path: Arc<str>, chart: bool },
    /// A source known only per pull request (`repoURL` of a pull-request generator).
    PerPullRequestSource { repo: Arc<str> },
    /// A Helm chart from a Helm repository or OCI registry, rendered by Argo CD.
    RemoteChart(Box<RemoteChartHop>),
    /// A source path of another repository.
    OtherRepositoryPath(Box<OtherRepositoryPathHop>),
    /// The folder a Flux Kustomization reads.
    FluxPath(Box<FluxPathHop>),
    /// A Flux Kustomization no cluster tree reaches: it runs where envfence puts it.
    UnreachedFlux { name: Arc<str> },
    /// The ApplicationSet whose template made the Application.
    ApplicationSet { name: Arc<str> },
    /// An ApplicationSet generator.
    Generator(Box<GeneratorHop>),
    /// A source assumed to be this repository, and why (`repoURL`, a GitRepository defined
    /// nowhere here).
    AssumedThisRepository(Box<AssumedThisRepositoryHop>),
    /// A values file of a Helm render, and the field that names it.
    ValuesFile(Box<ValuesFileHop>),
    /// Inline values of a Helm render (`helm.values`, `HelmRelease values`, ...).
    InlineValues { field: Arc<str> },
    /// A HelmRelease's `valuesFrom` entry: a key of a ConfigMap or Secret, nested at
    /// `targetPath` when it has one.
    ValuesFrom(Box<ValuesFromHop>),
    /// A `helm.parameters` entry of an Argo CD Application.
    Parameter(Box<ParameterHop>),
    /// A HelmRelease installs a chart of this repository.
    InstallsChart(Box<InstallsChartHop>),
    /// A chart rendered for its deployer, described by its render's inputs.
    Rendered { render: Arc<str> },
    /// A chart no deployer installs, delivered by its values file for an environment.
    ValuesFileConvention(Box<ValuesFileConventionHop>),
    /// A `clusters/<name>/` tree.
    ClusterTree(Box<ClusterTreeHop>),
    /// A `paths` rule of the config.
    ConfigPath(Box<ConfigPathHop>),
    /// An environment folder (`overlays/prod`) that no deployer reaches names its cluster.
    FolderConvention(Box<FolderConventionHop>),
    /// A folder no deployer reaches whose name is a cluster's (`namespaces/<cluster-host>/`,
    /// `overlays/prod/<region>/<cluster>/`): it is inferred to land on that cluster.
    InferredCluster(Box<InferredClusterHop>),
    /// An entry point the config declares: something outside the repository delivers it.
    EntryPoint(Box<EntryPointHop>),
    /// A deployer standing for a payload envfence did not read (DESIGN §3 opaque placement).
    Opaque(Box<OpaqueHop>),
    /// A CI pipeline job delivers to a cluster: the command it runs, or what names the
    /// cluster (its `environment:`, a kubeconfig secret).
    Pipeline(Box<PipelineHop>),
    /// A step of Config Sync: the folder a RootSync reads, a hierarchical repository's
    /// namespace folder, a selector that picks a cluster or namespace.
    ConfigSync(Box<ConfigSyncHop>),
    /// A step of Rancher Fleet: a GitRepo's path or target, a bundle, a target customization.
    Fleet(Box<FleetHop>),
    /// A Kargo Stage that promotes freight into an Argo CD Application, and what ties them.
    KargoStage(Box<KargoStageHop>),
    /// An application of a Kubeflow KfDef: kfctl applies the kustomize folder it built for it.
    KfctlApplication(Box<KfctlApplicationHop>),
    /// A step of Skaffold: the profile a run activates, a config another requires, the
    /// manifests entry that names a folder, file or chart, a profile's patch.
    Skaffold(Box<SkaffoldHop>),
    /// A label or annotation of the object's Namespace names its environment (DESIGN §3
    /// "Namespace environment"), at the line of the key.
    NamespaceEnvironment(Box<NamespaceEnvironmentHop>),
    /// A kustomize edit changed the object: a JSON patch operation, a replacement or a var.
    KustomizeEdit(Box<KustomizeEditHop>),
    /// A step of a helmfile: the environment it runs for, the line that names the cluster,
    /// a release, the condition value that installs it.
    Helmfile(Box<HelmfileHop>),
    /// An Argo CD AppProject permits or denies the Application: the entry that decides, at
    /// its line in the AppProject.
    AppProject(Box<AppProjectHop>),
    /// The placed object itself (see [`ObjectId`]).
    Object { id: ObjectId },
    /// A rule's own words about a hop it adds to a finding (a value and where it is set).
    Said(Arc<str>),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GeneratedHop {
    pub generator: Arc<str>,
    pub name: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KustomizeChartHop {
    pub chart: Arc<str>,
    pub render: Arc<str>,
}

/// What a kustomize edit did to a field of the object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KustomizeEditHop {
    pub edit: KustomizeEdit,
    /// The field it changed: a JSON pointer (`/spec/source/path`) or a kustomize field path
    /// (`spec.template.spec.containers.[name=app].env.[name=DB].value`).
    pub field: Arc<str>,
    /// The value it wrote, when that is one piece of text.
    pub value: Option<Arc<str>>,
}

/// Which kind of kustomize edit changed a field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KustomizeEdit {
    /// An operation of a JSON patch (`patches`, `patchesJson6902`): `add`, `replace`, ...
    JsonPatch { op: &'static str },
    /// A strategic-merge patch kustomize applies to the objects a `target` selects (or
    /// written inline); `field` is the file that holds it.
    StrategicMerge,
    /// A `replacements` entry, copying a field of another object (`ConfigMap/db data.host`).
    Replacement { source: Arc<str> },
    /// A `vars` entry (`$(DB_HOST)`), with the field it reads (`ConfigMap/db data.host`);
    /// `field` is the var's name.
    Var { name: Arc<str>, source: Arc<str> },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KubeConfigHop {
    /// `secretRef` or `configMapRef`.
    pub reference: Arc<str>,
    pub secret: Arc<str>,
    pub cluster: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldDestinationHop {
    pub field: Arc<str>,
    pub value: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HelmReleasesToHop {
    pub secret: Arc<str>,
    pub cluster: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteChartHop {
    pub chart: Arc<str>,
    pub repo: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OtherRepositoryPathHop {
    pub path: Arc<str>,
    pub repo: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FluxPathHop {
    pub name: Arc<str>,
    pub path: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AssumedThisRepositoryHop {
    pub source: Arc<str>,
    pub path: Arc<str>,
    pub git_repository: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ValuesFileHop {
    pub path: Arc<str>,
    pub via: Option<Arc<str>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ValuesFromHop {
    pub kind: Arc<str>,
    pub name: Arc<str>,
    pub key: Arc<str>,
    pub target: Option<Arc<str>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ParameterHop {
    pub name: Arc<str>,
    pub value: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstallsChartHop {
    pub release: Arc<str>,
    pub chart: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ValuesFileConventionHop {
    pub chart: Arc<str>,
    pub values_file: Arc<str>,
    pub cluster: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusterTreeHop {
    pub cluster: Arc<str>,
    pub dir: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConfigPathHop {
    pub glob: Arc<str>,
    pub cluster: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FolderConventionHop {
    pub dir: Arc<str>,
    pub slot: Arc<str>,
    pub cluster: Arc<str>,
}

/// How a folder's name was found to name a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClusterInference {
    /// The folder is named after a known cluster (its name or an alias).
    Name,
    /// The folder is named after a known cluster's API host.
    Host,
    /// The deepest folder of an environment folder's tree (`overlays/prod/<region>/<x>`):
    /// `x` is the cluster, and the environment folder (`overlays/prod`) its environment.
    Nested { environment_dir: Arc<str> },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InferredClusterHop {
    pub dir: Arc<str>,
    pub cluster: Arc<str>,
    pub by: ClusterInference,
}

/// What a declared entry point is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryPointKind {
    /// A folder: a kustomization, or plain manifests with their sub-folders.
    Folder,
    /// A Helm chart, installed with the entry point's values files.
    Chart,
    /// A file of root deployers (Argo CD Applications, Flux Kustomizations), run there.
    Deployer,
    /// A file of plain manifests.
    File,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntryPointHop {
    pub path: Arc<str>,
    pub cluster: Arc<str>,
    pub kind: EntryPointKind,
}

/// A step of a CI pipeline job ([`Hop::Pipeline`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PipelineHop {
    /// "GitHub Actions", "GitLab CI".
    pub ci: &'static str,
    pub job: Arc<str>,
    pub step: PipelineStep,
}

/// What a pipeline step says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PipelineStep {
    /// The job's `environment:` names the cluster.
    Environment { name: Arc<str> },
    /// A kubeconfig secret the job reads names the cluster.
    KubeconfigSecret { secret: Arc<str>, cluster: Arc<str> },
    /// The job runs the command on the cluster; `context` when the command's own
    /// `--context`/`--kube-context` names it; `matrix` the combination it runs in.
    Runs {
        command: Arc<str>,
        cluster: Arc<str>,
        context: bool,
        matrix: Option<Arc<str>>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OpaqueHop {
    pub kind: Arc<str>,
    pub name: Arc<str>,
    pub why: Arc<str>,
    pub judged_by: &'static str,
}

/// The annotation of a Config Sync selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SelectorAnnotation {
    /// `configmanagement.gke.io/cluster-selector`: the name of a `ClusterSelector`.
    ClusterSelector,
    /// `configsync.gke.io/cluster-name-selector`: cluster names, comma-separated.
    ClusterNameSelector,
    /// `configmanagement.gke.io/namespace-selector`: the name of a `NamespaceSelector`.
    NamespaceSelector,
}

impl SelectorAnnotation {
    /// The annotation's key.
    pub fn key(self) -> &'static str {
        match self {
            SelectorAnnotation::ClusterSelector => "configmanagement.gke.io/cluster-selector",
            SelectorAnnotation::ClusterNameSelector => "configsync.gke.io/cluster-name-selector",
            SelectorAnnotation::NamespaceSelector => "configmanagement.gke.io/namespace-selector",
        }
    }

    /// What it picks: `cluster` or `namespace`.
    pub fn picks(self) -> &'static str {
        match self {
            SelectorAnnotation::NamespaceSelector => "namespace",
            _ => "cluster",
        }
    }
}

/// A step of Rancher Fleet (see [`Hop::Fleet`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FleetHop {
    /// A GitRepo's `paths` entry (or the repository root) holds the bundle folder `bundle`.
    GitRepoPath {
        gitrepo: Arc<str>,
        path: Arc<str>,
        bundle: Arc<str>,
    },
    /// A GitRepo target picks the cluster: `by` is how (`clusterName`, `clusterSelector
    /// env=prod`, `clusterGroup prod`).
    Target {
        gitrepo: Arc<str>,
        by: Arc<str>,
        cluster: Arc<str>,
    },
    /// A GitRepo in `fleet-local` deploys to the cluster that runs Fleet.
    Local { gitrepo: Arc<str> },
    /// A bundle folder nothing here deploys: it goes where envfence puts it.
    Unreached { bundle: Arc<str> },
    /// A `fleet.yaml` target customization applies on the cluster: `by` is what matches it.
    Customization {
        name: Arc<str>,
        by: Arc<str>,
        cluster: Arc<str>,
    },
    /// The bundle is read as `how` says (`kustomize dir overlays/prod`, `chart ./chart`).
    Content { bundle: Arc<str>, how: Arc<str> },
}

impl fmt::Display for FleetHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetHop::GitRepoPath {
                gitrepo,
                path,
                bundle,
            } => {
                if path.is_empty() {
                    write!(f, "Fleet GitRepo {gitrepo} reads the repository root: bundle {bundle}")
                } else {
                    write!(f, "Fleet GitRepo {gitrepo} path {path}: bundle {bundle}")
                }
            }
            FleetHop::Target {
                gitrepo,
                by,
                cluster,
            } => write!(f, "Fleet GitRepo {gitrepo} targets {by}: cluster {cluster}"),
            FleetHop::Local { gitrepo } => write!(
                f,
                "Fleet GitRepo {gitrepo} is in namespace fleet-local: it deploys to the cluster that runs Fleet"
            ),
            FleetHop::Unreached { bundle } => write!(
                f,
                "Fleet bundle {bundle}: no GitRepo here deploys it, so it lands where envfence puts it"
            ),
            FleetHop::Customization { name, by, cluster } => write!(
                f,
                "Fleet targetCustomization {name} ({by}) applies on cluster {cluster}"
            ),
            FleetHop::Content { bundle, how } => write!(f, "Fleet bundle {bundle}: {how}"),
        }
    }
}

/// Why a Skaffold run deploys to its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkaffoldTarget {
    /// The profile's name is an environment word, which names the cluster.
    ProfileName,
    /// The profile is activated by this kube-context (`activation[].kubeContext`).
    Activation,
    /// The config sets `deploy.kubeContext`.
    KubeContext,
}

/// What a Skaffold hop is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SkaffoldHop {
    /// `skaffold run -p <profile>` (or none) deploys config `config` to `cluster`.
    Run {
        config: Arc<str>,
        profile: Option<Arc<str>>,
        cluster: Arc<str>,
        by: SkaffoldTarget,
    },
    /// A `requires` entry: config `from` brings in config `to`, with these profiles active.
    Requires {
        from: Arc<str>,
        to: Arc<str>,
        profiles: Arc<str>,
    },
    /// A manifests entry (`manifests.kustomize.paths`, `deploy.helm.releases[].chartPath`).
    Entry { field: Arc<str>, value: Arc<str> },
    /// A profile's JSON patch operation set the entry.
    Patch {
        profile: Arc<str>,
        op: &'static str,
        path: Arc<str>,
    },
}

impl fmt::Display for SkaffoldHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkaffoldHop::Run {
                config,
                profile: Some(profile),
                cluster,
                by,
            } => {
                let why = match by {
                    SkaffoldTarget::ProfileName => "its name names the environment",
                    SkaffoldTarget::Activation => "activated by that kube-context",
                    SkaffoldTarget::KubeContext => "its deploy.kubeContext",
                };
                write!(
                    f,
                    "skaffold run -p {profile}: Skaffold config {config} deploys to cluster {cluster} ({why})"
                )
            }
            SkaffoldHop::Run {
                config,
                profile: None,
                cluster,
                ..
            } => write!(
                f,
                "skaffold run: Skaffold config {config} deploys to deploy.kubeContext {cluster}"
            ),
            SkaffoldHop::Requires { from, to, profiles } => {
                write!(f, "Skaffold config {from} requires config {to}")?;
                if !profiles.is_empty() {
                    write!(f, " (profiles {profiles} active)")?;
                }
                Ok(())
            }
            SkaffoldHop::Entry { field, value } => write!(f, "Skaffold {field} {value}"),
            SkaffoldHop::Patch { profile, op, path } => {
                write!(f, "Skaffold profile {profile} patches: {op} {path}")
            }
        }
    }
}

/// What a Config Sync hop is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConfigSyncHop {
    /// A RootSync, RepoSync or ConfigManagement syncs a folder of this repository: `field`
    /// is where the folder is written (`spec.git.dir`, `spec.git.policyDir`).
    Dir {
        kind: Arc<str>,
        name: Arc<str>,
        field: &'static str,
        dir: Arc<str>,
        hierarchical: bool,
    },
    /// What no placement reached (a RootSync, a hierarchical repository no RootSync names):
    /// it runs where envfence puts it.
    Unreached { what: Arc<str> },
    /// A hierarchical repository's namespace folder: its objects, and those of the abstract
    /// namespace folder `inherited` above it, go to `namespace`.
    Namespace {
        namespace: Arc<str>,
        dir: Arc<str>,
        inherited: Option<Arc<str>>,
    },
    /// A selector annotation picks a cluster or namespace; `by` names the labels that match
    /// (empty for a list of names).
    Selected {
        annotation: SelectorAnnotation,
        selector: Arc<str>,
        picked: Arc<str>,
        by: Arc<str>,
    },
}

impl fmt::Display for ConfigSyncHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSyncHop::Dir {
                kind,
                name,
                field,
                dir,
                hierarchical,
            } => {
                let format = if *hierarchical {
                    "a hierarchical repository"
                } else {
                    "unstructured"
                };
                let shown = if dir.is_empty() { "/" } else { dir };
                write!(f, "Config Sync {kind} {name} syncs {field} {shown} ({format})")
            }
            ConfigSyncHop::Unreached { what } => {
                write!(f, "{what} (no cluster tree or deployer reaches it)")
            }
            ConfigSyncHop::Namespace {
                namespace,
                dir,
                inherited: None,
            } => write!(
                f,
                "hierarchical repository: the objects of {dir}/ go to namespace {namespace}"
            ),
            ConfigSyncHop::Namespace {
                namespace,
                dir,
                inherited: Some(from),
            } => write!(
                f,
                "hierarchical repository: namespace {namespace} ({dir}/) inherits the objects of the abstract namespace folder {from}/"
            ),
            ConfigSyncHop::Selected {
                annotation,
                selector,
                picked,
                by,
            } => {
                write!(
                    f,
                    "{}: {selector} picks {} {picked}",
                    annotation.key(),
                    annotation.picks()
                )?;
                if !by.is_empty() {
                    write!(f, " ({by})")?;
                }
                Ok(())
            }
        }
    }
}

/// A step of a helmfile run.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HelmfileHop {
    /// The helmfile is run for this environment (`helmfile --environment <name>`).
    Environment { name: Arc<str> },
    /// The field that names the release's cluster (`kubeContext`,
    /// `helmDefaults.kubeContext`), and its value.
    KubeContext {
        field: &'static str,
        value: Arc<str>,
    },
    /// No `kubeContext`: the cluster is named after the environment, or after the helmfile's
    /// file (`clusters/<name>.yaml`).
    NamedCluster { by: &'static str, name: Arc<str> },
    /// A release and its chart.
    Release { name: Arc<str>, chart: Arc<str> },
    /// The release's `condition:` is true at this values line of the environment.
    Condition {
        key: Arc<str>,
        environment: Arc<str>,
    },
    /// A `helmfiles:` entry: the nested helmfile runs with the same environment.
    Nested { path: Arc<str> },
    /// No environment and no `kubeContext`: the release goes to the current kube context.
    CurrentContext,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KfctlApplicationHop {
    pub application: Arc<str>,
    /// The folder `kfctl build` wrote for it (`kustomize/<application>`).
    pub dir: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KargoStageHop {
    /// The Stage as Kargo names it: `project:stage`, or its name when its project is not known.
    pub stage: Arc<str>,
    pub application: Arc<str>,
    pub link: StageLink,
}

/// What ties a Kargo Stage to the Argo CD Application it promotes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StageLink {
    /// An `argocd-update` step of the Stage's promotion template names the Application.
    ArgoCdUpdate,
    /// The Stage's `promotionMechanisms.argoCDAppUpdates` (Kargo before 1.0) names it.
    ArgoCdAppUpdates,
    /// The Stage, at its own line, promotes into an Application authorized for it.
    Authorized,
    /// The Application's `kargo.akuity.io/authorized-stage` annotation names the Stage.
    AuthorizedStage,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NamespaceEnvironmentHop {
    pub namespace: Arc<str>,
    pub key: Arc<str>,
    pub value: Arc<str>,
    /// An annotation rather than a label.
    pub annotation: bool,
    /// `production` or `non-production`.
    pub environment: &'static str,
}

/// What an Argo CD AppProject says of one Application ([`Hop::AppProject`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppProjectHop {
    pub project: Arc<str>,
    pub verdict: ProjectVerdict,
}

/// Whether an AppProject permits an Application, and by which entry; a denial carries the
/// Application's line it is about (its destination, or the source's `repoURL`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProjectVerdict {
    /// A `destinations` entry permits the destination: its cluster (name or server) and
    /// namespace patterns.
    Permits {
        cluster: Arc<str>,
        namespace: Arc<str>,
    },
    /// No `destinations` entry matches the destination (`cluster / namespace`).
    NoDestination {
        destination: Arc<str>,
        application: Location,
    },
    /// A `!` entry of `destinations` denies the destination.
    DeniedDestination {
        destination: Arc<str>,
        entry: Arc<str>,
        application: Location,
    },
    /// The source's `repoURL` is denied by a `!` entry of `sourceRepos`, or no entry permits it.
    DeniedSource {
        repo: Arc<str>,
        entry: Option<Arc<str>>,
        application: Location,
    },
    /// The Application lives in a namespace other than Argo CD's own (`home`, the project's)
    /// that `sourceNamespaces` does not list.
    DeniedNamespace {
        namespace: Arc<str>,
        home: Arc<str>,
        application: Location,
    },
    /// A cluster-scoped kind the Application delivers is not in `clusterResourceWhitelist`,
    /// or is in `clusterResourceBlacklist`.
    DeniedClusterResource {
        group: Arc<str>,
        kind: Arc<str>,
        blacklisted: bool,
        application: Location,
    },
}

impl ProjectVerdict {
    /// The Application's line a denial is about; `None` for a permission.
    pub fn denied_at(&self) -> Option<&Location> {
        match self {
            ProjectVerdict::Permits { .. } => None,
            ProjectVerdict::NoDestination { application, .. }
            | ProjectVerdict::DeniedDestination { application, .. }
            | ProjectVerdict::DeniedSource { application, .. }
            | ProjectVerdict::DeniedNamespace { application, .. }
            | ProjectVerdict::DeniedClusterResource { application, .. } => Some(application),
        }
    }
}

impl fmt::Display for AppProjectHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.project;
        match &self.verdict {
            ProjectVerdict::Permits { cluster, namespace } => {
                let namespace = if namespace.is_empty() { "(no namespace)" } else { namespace };
                write!(f, "AppProject {p} permits destination {cluster} / {namespace}")
            }
            ProjectVerdict::NoDestination { destination, .. } => write!(
                f,
                "AppProject {p} has no destinations entry that permits {destination}"
            ),
            ProjectVerdict::DeniedDestination {
                destination, entry, ..
            } => write!(f, "AppProject {p} denies destination {destination} ({entry})"),
            ProjectVerdict::DeniedSource {
                repo,
                entry: Some(entry),
                ..
            } => write!(f, "AppProject {p} denies source {repo} ({entry})"),
            ProjectVerdict::DeniedSource {
                repo, entry: None, ..
            } => write!(f, "AppProject {p} has no sourceRepos entry that permits {repo}"),
            ProjectVerdict::DeniedNamespace {
                namespace, home, ..
            } => write!(
                f,
                "AppProject {p} does not list namespace {namespace} in sourceNamespaces (Argo CD runs in {home})"
            ),
            ProjectVerdict::DeniedClusterResource {
                group,
                kind,
                blacklisted,
                ..
            } => {
                let group = if group.is_empty() { "core" } else { group };
                if *blacklisted {
                    write!(f, "AppProject {p} lists cluster-scoped {kind} (group {group}) in clusterResourceBlacklist")
                } else {
                    write!(f, "AppProject {p} does not permit cluster-scoped {kind} (group {group}): no clusterResourceWhitelist entry matches it")
                }
            }
        }
    }
}

/// The identity of a placed object (kind, name, namespace) in one allocation: an object's
/// hop is shared by its placements on every cluster, and there is one per object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectId(Box<str>);

impl ObjectId {
    /// Writes the identity's text into `out` (cleared first): what [`ObjectId::as_key`]
    /// returns for it, without an allocation when `out` has room.
    pub fn write_key(out: &mut String, kind: &str, name: Option<&str>, namespace: Option<&str>) {
        out.clear();
        out.push_str(kind);
        out.push('/');
        out.push_str(name.unwrap_or("?"));
        if let Some(ns) = namespace {
            out.push('\0');
            out.push_str(ns);
        }
    }

    /// The identity of a key written by [`ObjectId::write_key`].
    pub fn from_key(key: &str) -> Self {
        ObjectId(key.into())
    }

    pub fn as_key(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.split_once('\0') {
            Some((object, namespace)) => write!(f, "{object} in namespace {namespace}"),
            None => write!(f, "{}", self.0),
        }
    }
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hop::Include { key, entry } => write!(f, "{} {entry}", key.as_str()),
            Hop::Generated(h) => write!(f, "{} {}", h.generator, h.name),
            Hop::KustomizeChart(h) => write!(f, "helmCharts {}: {}", h.chart, h.render),
            Hop::Destination {
                field,
                local,
                value,
            } => {
                write!(f, "{field}={value}")?;
                if *local {
                    write!(f, " (the cluster running Argo CD)")?;
                }
                Ok(())
            }
            Hop::KubeConfig(h) => write!(
                f,
                "kubeConfig.{}.name={} → cluster {}",
                h.reference, h.secret, h.cluster
            ),
            Hop::FieldDestination(h) => write!(f, "{}={}", h.field, h.value),
            Hop::HelmReleasesTo(h) => write!(
                f,
                "an inline patch gives every HelmRelease kubeConfig {} → cluster {}",
                h.secret, h.cluster
            ),
            Hop::SourcePath { path, chart: false } => write!(f, "source.path {path}"),
            Hop::SourcePath { path, chart: true } => {
                write!(f, "source.path {path}: a Helm chart rendered by Argo CD")
            }
            Hop::PerPullRequestSource { repo } => write!(f, "source {repo} (per pull request)"),
            Hop::RemoteChart(h) => write!(
                f,
                "Helm chart {} from {}, rendered by Argo CD",
                h.chart, h.repo
            ),
            Hop::OtherRepositoryPath(h) => write!(
                f,
                "source.path {} of {} (another repository)",
                h.path, h.repo
            ),
            Hop::FluxPath(h) => write!(f, "Flux Kustomization {} path {}", h.name, h.path),
            Hop::UnreachedFlux { name } => {
                write!(f, "Flux Kustomization {name} (no cluster tree reaches it)")
            }
            Hop::ApplicationSet { name } => write!(f, "ApplicationSet {name}"),
            Hop::Generator(g) => match &**g {
                GeneratorHop::ListElement { summary } => write!(f, "list element {summary}"),
                GeneratorHop::Clusters { local: false } => write!(f, "clusters generator"),
                GeneratorHop::Clusters { local: true } => {
                    write!(f, "clusters generator (the local cluster)")
                }
                GeneratorHop::ClusterMatched { cluster } => {
                    write!(f, "cluster {cluster} matches the selector")
                }
                GeneratorHop::GitDirectory {
                    dir,
                    repo,
                    read_from,
                } => write!(f, "git directory {dir} (repoURL {repo}, {read_from})"),
                GeneratorHop::GitFile { file, repo } => {
                    write!(f, "git file {file} (repoURL {repo})")
                }
                GeneratorHop::Ephemeral { kind, what } => {
                    write!(f, "{kind} generator: {what} (ephemeral, non-production)")
                }
                GeneratorHop::RunTime { kind } => {
                    write!(f, "{kind} generator (parameters known at run time)")
                }
                GeneratorHop::Value { key, value } => write!(f, "values.{key}={value}"),
            },
            Hop::AssumedThisRepository(h) if h.git_repository => write!(
                f,
                "GitRepository {} is not defined in this repository; assumed to be this repository because {} exists here",
                h.source, h.path
            ),
            Hop::AssumedThisRepository(h) => write!(
                f,
                "repoURL {} is assumed to be this repository: {} exists here (declare it in repository.urls to make this certain)",
                h.source, h.path
            ),
            Hop::ValuesFile(h) => match &h.via {
                None => write!(f, "values file {}", h.path),
                Some(via) => write!(f, "values file {} ({via})", h.path),
            },
            Hop::InlineValues { field } => write!(f, "{field}"),
            Hop::ValuesFrom(h) => {
                write!(f, "valuesFrom {} {} key {}", h.kind, h.name, h.key)?;
                if let Some(path) = &h.target {
                    write!(f, " at {path}")?;
                }
                Ok(())
            }
            Hop::Parameter(h) => write!(f, "helm.parameters {} = {}", h.name, h.value),
            Hop::InstallsChart(h) => {
                write!(f, "HelmRelease {} installs chart {}", h.release, h.chart)
            }
            Hop::Rendered { render } => write!(f, "{render}"),
            Hop::ValuesFileConvention(h) => write!(
                f,
                "no deployer in this repository installs chart {}; its values file {} names cluster {}",
                h.chart, h.values_file, h.cluster
            ),
            Hop::ClusterTree(h) => write!(f, "cluster {}'s tree is {}/", h.cluster, h.dir),
            Hop::ConfigPath(h) => write!(f, "paths: {} → cluster {}", h.glob, h.cluster),
            Hop::FolderConvention(h) => write!(
                f,
                "no deployer reaches {}; the folder {}/{} names cluster {}",
                h.dir, h.slot, h.cluster, h.cluster
            ),
            Hop::InferredCluster(h) => match &h.by {
                ClusterInference::Name => write!(
                    f,
                    "no deployer reaches {}; its folder is named after cluster {}",
                    h.dir, h.cluster
                ),
                ClusterInference::Host => write!(
                    f,
                    "no deployer reaches {}; its folder is named after the API host of cluster {}",
                    h.dir, h.cluster
                ),
                ClusterInference::Nested { environment_dir } => write!(
                    f,
                    "no deployer reaches {}; below the environment folder {environment_dir}/ its deepest folder names cluster {}",
                    h.dir, h.cluster
                ),
            },
            Hop::Helmfile(h) => match &**h {
                HelmfileHop::Environment { name } => {
                    write!(f, "helmfile run for environment {name}")
                }
                HelmfileHop::KubeContext { field, value } => write!(f, "{field}={value}"),
                HelmfileHop::NamedCluster { by, name } => write!(
                    f,
                    "no kubeContext: the cluster is the {by}'s name, {name}"
                ),
                HelmfileHop::Release { name, chart } => {
                    write!(f, "helmfile release {name} (chart {chart})")
                }
                HelmfileHop::Condition { key, environment } => write!(
                    f,
                    "condition {key} is true in environment {environment}: the release is installed"
                ),
                HelmfileHop::Nested { path } => write!(f, "helmfiles: runs {path}"),
                HelmfileHop::CurrentContext => f.write_str(
                    "no environment and no kubeContext: the release goes to the current kube context",
                ),
            },
            Hop::EntryPoint(h) => {
                let what = match h.kind {
                    EntryPointKind::Folder => "folder",
                    EntryPointKind::Chart => "chart",
                    EntryPointKind::Deployer => "root deployer",
                    EntryPointKind::File => "file",
                };
                write!(
                    f,
                    "declared entry point: {what} {} is delivered to cluster {} from outside the repository",
                    h.path, h.cluster
                )
            }
            Hop::Opaque(h) => write!(
                f,
                "opaque placement: the contents of {} {} were not read ({}); it is judged by its own {}",
                h.kind, h.name, h.why, h.judged_by
            ),
            Hop::Pipeline(h) => {
                write!(f, "{} job {} ", h.ci, h.job)?;
                match &h.step {
                    PipelineStep::Environment { name } => {
                        write!(f, "runs in environment {name}, which names its cluster")
                    }
                    PipelineStep::KubeconfigSecret { secret, cluster } => {
                        write!(f, "reads kubeconfig secret {secret} → cluster {cluster}")
                    }
                    PipelineStep::Runs {
                        command,
                        cluster,
                        context,
                        matrix,
                    } => {
                        write!(f, "runs \"{command}\" on cluster {cluster}")?;
                        if *context {
                            write!(f, " (its context)")?;
                        }
                        if let Some(m) = matrix {
                            write!(f, " (matrix {m})")?;
                        }
                        Ok(())
                    }
                }
            }
            Hop::ConfigSync(h) => write!(f, "{h}"),
            Hop::KfctlApplication(h) => write!(
                f,
                "kfctl applies application {} from {}, the folder kfctl build wrote for it",
                h.application, h.dir
            ),
            Hop::Fleet(h) => write!(f, "{h}"),
            Hop::Skaffold(h) => write!(f, "{h}"),
            Hop::KargoStage(h) => match h.link {
                StageLink::ArgoCdUpdate => write!(
                    f,
                    "Kargo Stage {} promotes into Application {} (argocd-update step)",
                    h.stage, h.application
                ),
                StageLink::ArgoCdAppUpdates => write!(
                    f,
                    "Kargo Stage {} promotes into Application {} (promotionMechanisms.argoCDAppUpdates)",
                    h.stage, h.application
                ),
                StageLink::Authorized => write!(
                    f,
                    "Kargo Stage {} promotes into Application {}, which is authorized for it",
                    h.stage, h.application
                ),
                StageLink::AuthorizedStage => write!(
                    f,
                    "Application {} is authorized for Kargo Stage {} (kargo.akuity.io/authorized-stage)",
                    h.application, h.stage
                ),
            },
            Hop::NamespaceEnvironment(h) => write!(
                f,
                "namespace {} is {}: its {} {}={}",
                h.namespace,
                h.environment,
                if h.annotation { "annotation" } else { "label" },
                h.key,
                h.value
            ),
            Hop::KustomizeEdit(h) => {
                match &h.edit {
                    KustomizeEdit::JsonPatch { op } => {
                        write!(f, "kustomize JSON patch: {op} {}", h.field)?;
                    }
                    KustomizeEdit::StrategicMerge => {
                        write!(f, "kustomize strategic-merge patch in {}", h.field)?;
                    }
                    KustomizeEdit::Replacement { source } => {
                        write!(f, "kustomize replacement: {} from {source}", h.field)?;
                    }
                    KustomizeEdit::Var { name, source } => {
                        write!(f, "kustomize var $({name}) from {source}")?;
                    }
                }
                if let Some(value) = &h.value {
                    write!(f, " = {value}")?;
                }
                Ok(())
            }
            Hop::AppProject(h) => write!(f, "{h}"),
            Hop::Object { id } => write!(f, "{id}"),
            Hop::Said(text) => write!(f, "{text}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hop_is_three_words_long() {
        // Every hop is allocated once and shared; its size is most of that allocation.
        assert!(
            std::mem::size_of::<Hop>() <= 24,
            "{}",
            std::mem::size_of::<Hop>()
        );
    }

    #[test]
    fn an_object_reads_with_its_namespace() {
        let mut key = String::new();
        ObjectId::write_key(&mut key, "Deployment", Some("web"), Some("shop"));
        let id = ObjectId::from_key(&key);
        assert_eq!(id.to_string(), "Deployment/web in namespace shop");
        ObjectId::write_key(&mut key, "Namespace", None, None);
        assert_eq!(ObjectId::from_key(&key).to_string(), "Namespace/?");
    }
}
