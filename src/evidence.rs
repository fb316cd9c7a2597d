//! Evidence: the hops of the chain that explains a placement or a finding. Each hop says what
//! it is ([`Hop`]) and carries its data and its location; code that needs to know what a hop
//! is (an include, a destination, a Helm parameter, ...) matches on the variant, never on
//! words. The words are made in one place, [`Hop`]'s `Display` below, which every output
//! (and the Rego input) reads; nothing parses them back.
//!
//! Below the topology and the findings, beside [`crate::location`]; imports nothing else.

use std::fmt;
use std::sync::Arc;

use compact_str::CompactString;

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

/// The field of a deployer that names its destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DestinationField {
    /// Argo CD `destination.name`.
    Name,
    /// Argo CD `destination.server`.
    Server,
    /// Flux `kubeConfig.secretRef` or `kubeConfig.configMapRef`: the reference's key.
    KubeConfig { reference: Arc<str> },
    /// Another family's field, by its path (`spec.cluster`).
    Field(Arc<str>),
}

impl fmt::Display for DestinationField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DestinationField::Name => write!(f, "destination.name"),
            DestinationField::Server => write!(f, "destination.server"),
            DestinationField::KubeConfig { reference } => write!(f, "kubeConfig.{reference}.name"),
            DestinationField::Field(path) => write!(f, "{path}"),
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
}

/// What a hop is. Each variant carries the data its words are made of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Hop {
    /// A kustomization includes a file or folder (`resources ../base`), or a patch file.
    Include { key: IncludeKey, entry: Arc<str> },
    /// A kustomize generator (`configMapGenerator`, ...) creates the object.
    Generated { generator: Arc<str>, name: Arc<str> },
    /// A kustomization's `helmCharts` entry, rendered.
    KustomizeChart { chart: Arc<str>, render: Arc<str> },
    /// A deployer's destination as written (`destination.name=prod`,
    /// `kubeConfig.secretRef.name=x`), the cluster it names when that differs from the value,
    /// and whether it is the cluster that runs the deployer itself (Argo CD's local cluster).
    Destination {
        field: DestinationField,
        value: Arc<str>,
        cluster: Option<Arc<str>>,
        local: bool,
    },
    /// A hub's inline patch that sends every HelmRelease to a spoke cluster.
    HelmReleasesTo { secret: Arc<str>, cluster: Arc<str> },
    /// The folder an Argo CD Application reads (`source.path`); `chart` when it is a Helm
    /// chart that Argo CD renders.
    SourcePath { path: Arc<str>, chart: bool },
    /// A source known only per pull request (`repoURL` of a pull-request generator).
    PerPullRequestSource { repo: Arc<str> },
    /// A Helm chart from a Helm repository or OCI registry, rendered by Argo CD.
    RemoteChart { chart: Arc<str>, repo: Arc<str> },
    /// A source path of another repository.
    OtherRepositoryPath { path: Arc<str>, repo: Arc<str> },
    /// The folder a Flux Kustomization reads.
    FluxPath { name: Arc<str>, path: Arc<str> },
    /// A Flux Kustomization no cluster tree reaches: it runs where envfence puts it.
    UnreachedFlux { name: Arc<str> },
    /// The ApplicationSet whose template made the Application.
    ApplicationSet { name: Arc<str> },
    /// An ApplicationSet generator.
    Generator(GeneratorHop),
    /// A source assumed to be this repository, and why (`repoURL`, a GitRepository defined
    /// nowhere here).
    AssumedThisRepository {
        source: Arc<str>,
        path: Arc<str>,
        git_repository: bool,
    },
    /// A values file of a Helm render, and the field that names it.
    ValuesFile {
        path: Arc<str>,
        via: Option<Arc<str>>,
    },
    /// Inline values of a Helm render (`helm.values`, `HelmRelease values`, ...).
    InlineValues { field: Arc<str> },
    /// A HelmRelease's `valuesFrom` entry: a key of a ConfigMap or Secret, nested at
    /// `targetPath` when it has one.
    ValuesFrom {
        kind: Arc<str>,
        name: Arc<str>,
        key: Arc<str>,
        target: Option<Arc<str>>,
    },
    /// A `helm.parameters` entry of an Argo CD Application.
    Parameter { name: Arc<str>, value: Arc<str> },
    /// A HelmRelease installs a chart of this repository.
    InstallsChart { release: Arc<str>, chart: Arc<str> },
    /// A chart rendered for its deployer, described by its render's inputs.
    Rendered { render: Arc<str> },
    /// A chart no deployer installs, delivered by its values file for an environment.
    ValuesFileConvention {
        chart: Arc<str>,
        values_file: Arc<str>,
        cluster: Arc<str>,
    },
    /// A `clusters/<name>/` tree.
    ClusterTree { cluster: Arc<str>, dir: Arc<str> },
    /// A `paths` rule of the config.
    ConfigPath { glob: Arc<str>, cluster: Arc<str> },
    /// An environment folder (`overlays/prod`) that no deployer reaches names its cluster.
    FolderConvention {
        dir: Arc<str>,
        slot: Arc<str>,
        cluster: Arc<str>,
    },
    /// A deployer standing for a payload envfence did not read (DESIGN §3 opaque placement).
    Opaque {
        kind: Arc<str>,
        name: Arc<str>,
        why: Arc<str>,
        judged_by: &'static str,
    },
    /// The placed object itself: `Kind/name in namespace ns`.
    Object(ObjectRef),
    /// A rule's own words about a hop it adds to a finding (a value and where it is set).
    Said(Arc<str>),
}

/// The identity of a placed object, shared by its placements on several clusters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    pub kind: CompactString,
    pub name: Option<CompactString>,
    pub namespace: Option<CompactString>,
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hop::Include { key, entry } => write!(f, "{} {entry}", key.as_str()),
            Hop::Generated { generator, name } => write!(f, "{generator} {name}"),
            Hop::KustomizeChart { chart, render } => write!(f, "helmCharts {chart}: {render}"),
            Hop::Destination {
                field,
                value,
                cluster,
                local,
            } => {
                write!(f, "{field}={value}")?;
                if let Some(c) = cluster {
                    write!(f, " → cluster {c}")?;
                }
                if *local {
                    write!(f, " (the cluster running Argo CD)")?;
                }
                Ok(())
            }
            Hop::HelmReleasesTo { secret, cluster } => write!(
                f,
                "an inline patch gives every HelmRelease kubeConfig {secret} → cluster {cluster}"
            ),
            Hop::SourcePath { path, chart: false } => write!(f, "source.path {path}"),
            Hop::SourcePath { path, chart: true } => {
                write!(f, "source.path {path}: a Helm chart rendered by Argo CD")
            }
            Hop::PerPullRequestSource { repo } => write!(f, "source {repo} (per pull request)"),
            Hop::RemoteChart { chart, repo } => {
                write!(f, "Helm chart {chart} from {repo}, rendered by Argo CD")
            }
            Hop::OtherRepositoryPath { path, repo } => {
                write!(f, "source.path {path} of {repo} (another repository)")
            }
            Hop::FluxPath { name, path } => write!(f, "Flux Kustomization {name} path {path}"),
            Hop::UnreachedFlux { name } => {
                write!(f, "Flux Kustomization {name} (no cluster tree reaches it)")
            }
            Hop::ApplicationSet { name } => write!(f, "ApplicationSet {name}"),
            Hop::Generator(g) => match g {
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
            },
            Hop::AssumedThisRepository {
                source,
                path,
                git_repository: false,
            } => write!(
                f,
                "repoURL {source} is assumed to be this repository: {path} exists here (declare it in repository.urls to make this certain)"
            ),
            Hop::AssumedThisRepository {
                source,
                path,
                git_repository: true,
            } => write!(
                f,
                "GitRepository {source} is not defined in this repository; assumed to be this repository because {path} exists here"
            ),
            Hop::ValuesFile { path, via: None } => write!(f, "values file {path}"),
            Hop::ValuesFile {
                path,
                via: Some(via),
            } => write!(f, "values file {path} ({via})"),
            Hop::InlineValues { field } => write!(f, "{field}"),
            Hop::ValuesFrom {
                kind,
                name,
                key,
                target,
            } => {
                write!(f, "valuesFrom {kind} {name} key {key}")?;
                if let Some(path) = target {
                    write!(f, " at {path}")?;
                }
                Ok(())
            }
            Hop::Parameter { name, value } => write!(f, "helm.parameters {name} = {value}"),
            Hop::InstallsChart { release, chart } => {
                write!(f, "HelmRelease {release} installs chart {chart}")
            }
            Hop::Rendered { render } => write!(f, "{render}"),
            Hop::ValuesFileConvention {
                chart,
                values_file,
                cluster,
            } => write!(
                f,
                "no deployer in this repository installs chart {chart}; its values file {values_file} names cluster {cluster}"
            ),
            Hop::ClusterTree { cluster, dir } => write!(f, "cluster {cluster}'s tree is {dir}/"),
            Hop::ConfigPath { glob, cluster } => write!(f, "paths: {glob} → cluster {cluster}"),
            Hop::FolderConvention { dir, slot, cluster } => write!(
                f,
                "no deployer reaches {dir}; the folder {slot}/{cluster} names cluster {cluster}"
            ),
            Hop::Opaque {
                kind,
                name,
                why,
                judged_by,
            } => write!(
                f,
                "opaque placement: the contents of {kind} {name} were not read ({why}); it is judged by its own {judged_by}"
            ),
            Hop::Object(o) => {
                write!(f, "{}/{}", o.kind, o.name.as_deref().unwrap_or("?"))?;
                if let Some(ns) = &o.namespace {
                    write!(f, " in namespace {ns}")?;
                }
                Ok(())
            }
            Hop::Said(text) => write!(f, "{text}"),
        }
    }
}
