//! Writes a large synthetic GitOps monorepo for benchmarks.
//!
//! ```text
//! cargo run --release --example gen_monorepo -- OUT_DIR [--apps N] [--clusters M]
//! ```
//!
//! The output depends only on N and M: names, replica counts and versions come from the app's
//! index through a fixed-seed linear congruential generator, never from the clock.
//!
//! Layout (1000 apps on 6 clusters is about 15k files):
//!
//! - `clusters/<cluster>/`: one Flux tree per cluster: `flux-system/gotk-sync.yaml`
//!   (GitRepository + the `flux-system` Kustomization of `./clusters/<cluster>`), one Flux
//!   Kustomization per app the cluster runs (`apps/<app>.yaml`), and `infra/` HelmReleases of
//!   the charts in `charts/`.
//! - `argocd/`: cluster Secrets (`clusters/<cluster>.yaml`), AppProjects, an app-of-apps
//!   (`root.yaml`), Applications (`apps/<app>-<env>.yaml`) and one ApplicationSet file per team
//!   (`appsets/<team>.yaml`: one ApplicationSet per app, each with a list generator of
//!   `cluster`, `env` and `namespace` elements).
//! - `apps/<app>/`: a kustomize `base/` and `overlays/{production,staging,dev}`; one app in 20
//!   also has an `overlays/feature-<name>/` overlay and a `tests/` integration Job.
//! - `charts/<chart>/`: Helm charts whose `templates/` hold Go templates (not YAML until
//!   rendered; envfence skips them by design).
//!
//! Deployers: 60% of the apps are deployed by Flux, 30% by Argo CD Applications and 10% by
//! ApplicationSets. Each app runs on one staging and one dev cluster and on one production
//! cluster (every 4th app on two). Cluster names carry their environment (`prod-eu-1`,
//! `staging-eu-1`, `dev-eu-1`, ...).
//!
//! A few violations are planted on purpose so that a full scan has something to report: one
//! app in 100 has its feature overlay deployed to a production cluster by an Argo CD
//! Application (`argocd/apps/<app>-feature-<name>.yaml`), and one in 200 pulls its
//! integration-test Job into its production overlay (`resources: ../../tests`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: gen_monorepo OUT_DIR [--apps N] [--clusters M]";
const REPO_URL: &str = "https://git.example.com/platform/gitops.git";
const REGISTRY: &str = "registry.example.com";

const DOMAINS: [&str; 20] = [
    "billing",
    "checkout",
    "catalog",
    "search",
    "payments",
    "inventory",
    "orders",
    "accounts",
    "auth",
    "shipping",
    "notifications",
    "reporting",
    "pricing",
    "ratings",
    "media",
    "ledger",
    "fraud",
    "loyalty",
    "gateway",
    "profile",
];
const COMPONENTS: [&str; 10] = [
    "api",
    "worker",
    "web",
    "sync",
    "scheduler",
    "consumer",
    "indexer",
    "proxy",
    "cron",
    "exporter",
];
const TEAMS: [&str; 6] = ["core", "money", "commerce", "data", "identity", "growth"];
const FEATURES: [&str; 6] = [
    "new-checkout-flow",
    "dark-mode",
    "grpc-migration",
    "v2-api",
    "redesign",
    "cache-rework",
];
const REGIONS: [&str; 4] = ["eu", "us", "ap", "sa"];
/// Environment of the i-th cluster, repeating: `prod prod staging dev prod staging`.
const CLUSTER_PATTERN: [Env; 6] = [
    Env::Production,
    Env::Production,
    Env::Staging,
    Env::Dev,
    Env::Production,
    Env::Staging,
];
const CHARTS: [&str; 4] = ["edge-proxy", "metrics-agent", "log-shipper", "redis-cache"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Env {
    Production,
    Staging,
    Dev,
}

impl Env {
    const ALL: [Env; 3] = [Env::Production, Env::Staging, Env::Dev];

    /// Prefix of cluster names.
    fn short(self) -> &'static str {
        match self {
            Env::Production => "prod",
            Env::Staging => "staging",
            Env::Dev => "dev",
        }
    }

    /// Name of the kustomize overlay folder.
    fn overlay(self) -> &'static str {
        match self {
            Env::Production => "production",
            Env::Staging => "staging",
            Env::Dev => "dev",
        }
    }

    /// Value of the `env` label of Argo CD cluster Secrets.
    fn label(self) -> &'static str {
        match self {
            Env::Production => "production",
            Env::Staging => "staging",
            Env::Dev => "development",
        }
    }
}

struct Cluster {
    name: String,
    env: Env,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Deployer {
    Flux,
    ArgoApplication,
    ApplicationSet,
}

struct App {
    index: usize,
    name: String,
    team: &'static str,
    deployer: Deployer,
    /// Feature overlay name (`feature-<x>`), for one app in 20.
    feature: Option<String>,
    /// Planted: the feature overlay is also deployed to a production cluster.
    feature_on_prod: bool,
    /// Planted: the production overlay includes the integration-test Job.
    tests_in_prod: bool,
}

impl App {
    fn new(index: usize) -> App {
        let domain = DOMAINS[index % DOMAINS.len()];
        let component = COMPONENTS[(index / DOMAINS.len()) % COMPONENTS.len()];
        let round = index / (DOMAINS.len() * COMPONENTS.len());
        let name = if round == 0 {
            format!("{domain}-{component}")
        } else {
            format!("{domain}-{component}-{}", round + 1)
        };
        // Spread deployers and features over domains (and so teams): shift by the row.
        let row = index / DOMAINS.len();
        let mixed = index + row;
        let deployer = match mixed % 10 {
            0..=5 => Deployer::Flux,
            6..=8 => Deployer::ArgoApplication,
            _ => Deployer::ApplicationSet,
        };
        let has_feature = mixed % 20 == 7;
        let feature = has_feature.then(|| format!("feature-{}", FEATURES[row % FEATURES.len()]));
        App {
            index,
            name,
            team: TEAMS[index % DOMAINS.len() % TEAMS.len()],
            deployer,
            feature,
            feature_on_prod: has_feature && row % 5 == 2,
            tests_in_prod: has_feature && row % 10 == 5,
        }
    }

    fn namespace(&self, env: Env) -> String {
        match env {
            Env::Production => self.team.to_owned(),
            Env::Staging | Env::Dev => format!("{}-{}", self.team, env.overlay()),
        }
    }

    fn image(&self) -> String {
        format!("{REGISTRY}/{}/{}", self.team, self.name)
    }

    fn database_url(&self, env: Env) -> String {
        format!(
            "postgres://{app}-db.{env}.example.internal:5432/{db}",
            app = self.name,
            env = env.overlay(),
            db = self.name.replace('-', "_"),
        )
    }
}

/// A small fixed-seed linear congruential generator (Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    fn new(seed: u64) -> Lcg {
        let mut lcg = Lcg(seed ^ 0x9E37_79B9_7F4A_7C15);
        lcg.next();
        lcg
    }

    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let len = u64::try_from(items.len()).unwrap_or(1).max(1);
        let i = usize::try_from(self.next() % len).unwrap_or(0);
        items.get(i).copied().unwrap_or("")
    }
}

/// Writes files under a root and counts them.
struct Out {
    root: PathBuf,
    files: usize,
    bytes: u64,
}

impl Out {
    fn write(&mut self, rel: &str, content: &str) -> Result<(), String> {
        let path = self.root.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        std::fs::write(&path, content)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        self.files += 1;
        self.bytes += content.len() as u64;
        Ok(())
    }
}

struct Args {
    out: PathBuf,
    apps: usize,
    clusters: usize,
}

enum ArgsError {
    Help,
    Bad(String),
}

fn parse_args(args: &[String]) -> Result<Args, ArgsError> {
    let mut out = None;
    let mut apps = 1000;
    let mut clusters = 6;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => return Err(ArgsError::Help),
            "--apps" | "--clusters" => {
                let value = it
                    .next()
                    .ok_or_else(|| ArgsError::Bad(format!("{arg} needs a number")))?;
                let n: usize = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    ArgsError::Bad(format!("{arg}: expected a positive number, got {value:?}"))
                })?;
                if arg == "--apps" {
                    apps = n;
                } else {
                    clusters = n;
                }
            }
            other if other.starts_with('-') => {
                return Err(ArgsError::Bad(format!("unknown option {other}")))
            }
            other => {
                if out.is_some() {
                    return Err(ArgsError::Bad(format!("unexpected argument {other}")));
                }
                out = Some(PathBuf::from(other));
            }
        }
    }
    let out = out.ok_or_else(|| ArgsError::Bad("missing OUT_DIR".to_owned()))?;
    Ok(Args {
        out,
        apps,
        clusters,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&args) {
        Ok(args) => args,
        Err(ArgsError::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(ArgsError::Bad(message)) => {
            eprintln!("gen_monorepo: {message}");
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match generate(&args) {
        Ok(out) => {
            println!(
                "generated {} files ({:.1} MiB) for {} apps on {} clusters in {}",
                out.files,
                out.bytes as f64 / (1024.0 * 1024.0),
                args.apps,
                args.clusters,
                args.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("gen_monorepo: {message}");
            ExitCode::FAILURE
        }
    }
}

fn make_clusters(count: usize) -> Vec<Cluster> {
    let mut seen = [0usize; 3];
    (0..count)
        .map(|i| {
            let env = CLUSTER_PATTERN[i % CLUSTER_PATTERN.len()];
            let slot = Env::ALL.iter().position(|e| *e == env).unwrap_or(0);
            let n = seen[slot];
            seen[slot] += 1;
            let region = REGIONS[n % REGIONS.len()];
            let number = n / REGIONS.len() + 1;
            Cluster {
                name: format!("{}-{region}-{number}", env.short()),
                env,
            }
        })
        .collect()
}

/// Refuses to write into a non-empty directory, so that files of an earlier, larger run
/// cannot linger among the new ones.
fn check_out_dir(out: &Path) -> Result<(), String> {
    match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(format!(
                    "{} exists and is not empty; remove it or pick another directory",
                    out.display()
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot use {}: {e}", out.display())),
    }
}

fn generate(args: &Args) -> Result<Out, String> {
    check_out_dir(&args.out)?;
    let mut out = Out {
        root: args.out.clone(),
        files: 0,
        bytes: 0,
    };
    let clusters = make_clusters(args.clusters);
    let by_env = |env: Env| -> Vec<&Cluster> { clusters.iter().filter(|c| c.env == env).collect() };
    let prod = by_env(Env::Production);
    let staging = by_env(Env::Staging);
    let dev = by_env(Env::Dev);
    let apps: Vec<App> = (0..args.apps).map(App::new).collect();

    out.write("README.md", &readme(args))?;
    for cluster in &clusters {
        write_flux_system(&mut out, cluster)?;
        write_argo_cluster(&mut out, cluster)?;
        write_infra(&mut out, cluster)?;
    }
    write_argo_root(&mut out)?;
    for team in TEAMS {
        out.write(&format!("argocd/projects/{team}.yaml"), &app_project(team))?;
    }
    for chart in CHARTS {
        write_chart(&mut out, chart)?;
    }

    // Per team, the ApplicationSets of its apps, written as one multi-document file.
    let mut appsets: Vec<String> = vec![String::new(); TEAMS.len()];
    for app in &apps {
        write_app_tree(&mut out, app)?;

        // Where the app runs, per environment.
        let mut placements: Vec<(Env, Vec<&Cluster>)> = Vec::new();
        if !prod.is_empty() {
            let mut targets = vec![prod[app.index % prod.len()]];
            if prod.len() > 1 && app.index % 4 == 0 {
                targets.push(prod[(app.index + 1) % prod.len()]);
            }
            placements.push((Env::Production, targets));
        }
        if !staging.is_empty() {
            placements.push((Env::Staging, vec![staging[app.index % staging.len()]]));
        }
        if !dev.is_empty() {
            placements.push((Env::Dev, vec![dev[app.index % dev.len()]]));
        }

        match app.deployer {
            Deployer::Flux => {
                for (env, targets) in &placements {
                    for cluster in targets {
                        let path = format!("./apps/{}/overlays/{}", app.name, env.overlay());
                        out.write(
                            &format!("clusters/{}/apps/{}.yaml", cluster.name, app.name),
                            &flux_kustomization(&app.name, &path, app.team, &[]),
                        )?;
                    }
                }
            }
            Deployer::ArgoApplication => {
                for (env, targets) in &placements {
                    let docs: Vec<String> = targets
                        .iter()
                        .map(|cluster| {
                            argo_application(
                                &format!("{}-{}", app.name, cluster.name),
                                app.team,
                                env.overlay(),
                                &format!("apps/{}/overlays/{}", app.name, env.overlay()),
                                &cluster.name,
                                &app.namespace(*env),
                            )
                        })
                        .collect();
                    out.write(
                        &format!("argocd/apps/{}-{}.yaml", app.name, env.overlay()),
                        &docs.join("---\n"),
                    )?;
                }
            }
            Deployer::ApplicationSet => {
                let slot = TEAMS.iter().position(|t| *t == app.team).unwrap_or(0);
                let doc = application_set(app, &placements);
                if !appsets[slot].is_empty() {
                    appsets[slot].push_str("---\n");
                }
                appsets[slot].push_str(&doc);
            }
        }

        if let Some(feature) = &app.feature {
            let path = format!("./apps/{}/overlays/{feature}", app.name);
            if let Some(cluster) = dev.get(app.index % dev.len().max(1)) {
                out.write(
                    &format!("clusters/{}/apps/{}-{feature}.yaml", cluster.name, app.name),
                    &flux_kustomization(
                        &format!("{}-{feature}", app.name),
                        &path,
                        app.team,
                        &[("preview", "true")],
                    ),
                )?;
            }
            if app.feature_on_prod {
                if let Some(cluster) = prod.get(app.index % prod.len().max(1)) {
                    out.write(
                        &format!("argocd/apps/{}-{feature}.yaml", app.name),
                        &argo_application(
                            &format!("{}-{feature}", app.name),
                            app.team,
                            feature,
                            &format!("apps/{}/overlays/{feature}", app.name),
                            &cluster.name,
                            &format!("{}-{feature}", app.team),
                        ),
                    )?;
                }
            }
        }
    }
    for (team, doc) in TEAMS.iter().zip(&appsets) {
        if !doc.is_empty() {
            out.write(&format!("argocd/appsets/{team}.yaml"), doc)?;
        }
    }
    Ok(out)
}

fn readme(args: &Args) -> String {
    format!(
        "# Synthetic GitOps monorepo\n\n\
         Generated by `cargo run --example gen_monorepo -- OUT_DIR --apps {} --clusters {}`.\n\
         Everything here is made up; it exists to benchmark envfence.\n",
        args.apps, args.clusters
    )
}

// ---------------------------------------------------------------------------------------
// Flux

fn write_flux_system(out: &mut Out, cluster: &Cluster) -> Result<(), String> {
    let name = &cluster.name;
    let sync = format!(
        "---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m0s
  ref:
    branch: main
  secretRef:
    name: flux-system
  url: ssh://git@git.example.com/platform/gitops.git
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 10m0s
  path: ./clusters/{name}
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"
    );
    out.write(
        &format!("clusters/{name}/flux-system/gotk-sync.yaml"),
        &sync,
    )?;
    out.write(
        &format!("clusters/{name}/flux-system/kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - gotk-sync.yaml
",
    )
}

fn flux_kustomization(name: &str, path: &str, team: &str, labels: &[(&str, &str)]) -> String {
    let mut s = format!(
        "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: {name}
  namespace: flux-system
  labels:
    team: {team}
"
    );
    for (k, v) in labels {
        let _ = writeln!(s, "    {k}: \"{v}\"");
    }
    let _ = write!(
        s,
        "spec:
  interval: 10m
  retryInterval: 1m
  timeout: 5m
  path: {path}
  prune: true
  wait: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"
    );
    s
}

fn write_infra(out: &mut Out, cluster: &Cluster) -> Result<(), String> {
    let name = &cluster.name;
    out.write(
        &format!("clusters/{name}/infra/namespace.yaml"),
        "apiVersion: v1
kind: Namespace
metadata:
  name: infra
  labels:
    toolkit.fluxcd.io/tenant: platform
",
    )?;
    for chart in CHARTS {
        let mut values_files =
            format!("      valuesFiles:\n        - ./charts/{chart}/values.yaml\n");
        if cluster.env == Env::Production {
            let _ = writeln!(
                values_files,
                "        - ./charts/{chart}/values-production.yaml"
            );
        }
        let release = format!(
            "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {chart}
  namespace: infra
spec:
  interval: 30m
  chart:
    spec:
      chart: ./charts/{chart}
      reconcileStrategy: Revision
      sourceRef:
        kind: GitRepository
        name: flux-system
        namespace: flux-system
{values_files}  install:
    remediation:
      retries: 3
  upgrade:
    remediation:
      retries: 3
  values:
    cluster: {name}
    region: {region}
",
            region = name.split('-').nth(1).unwrap_or("eu"),
        );
        out.write(&format!("clusters/{name}/infra/{chart}.yaml"), &release)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Argo CD

fn write_argo_cluster(out: &mut Out, cluster: &Cluster) -> Result<(), String> {
    let name = &cluster.name;
    let region = name.split('-').nth(1).unwrap_or("eu");
    let secret = format!(
        "apiVersion: v1
kind: Secret
metadata:
  name: cluster-{name}
  namespace: argocd
  labels:
    argocd.argoproj.io/secret-type: cluster
    env: {env}
    region: {region}
type: Opaque
stringData:
  name: {name}
  server: https://{name}.k8s.example.com
  config: '{{\"tlsClientConfig\": {{\"insecure\": false}}}}'
",
        env = cluster.env.label(),
    );
    out.write(&format!("argocd/clusters/{name}.yaml"), &secret)
}

fn write_argo_root(out: &mut Out) -> Result<(), String> {
    let mut docs = Vec::new();
    for (name, path) in [
        ("projects", "argocd/projects"),
        ("cluster-secrets", "argocd/clusters"),
        ("apps", "argocd/apps"),
        ("appsets", "argocd/appsets"),
    ] {
        docs.push(format!(
            "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: root-{name}
  namespace: argocd
spec:
  project: default
  source:
    repoURL: {REPO_URL}
    targetRevision: main
    path: {path}
  destination:
    server: https://kubernetes.default.svc
    namespace: argocd
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
"
        ));
    }
    out.write("argocd/root.yaml", &docs.join("---\n"))
}

fn app_project(team: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: {team}
  namespace: argocd
spec:
  description: Workloads of the {team} team
  sourceRepos:
    - {REPO_URL}
  destinations:
    - name: '*'
      namespace: '{team}'
    - name: '*'
      namespace: '{team}-*'
  clusterResourceWhitelist:
    - group: ''
      kind: Namespace
"
    )
}

fn argo_application(
    name: &str,
    team: &str,
    env: &str,
    path: &str,
    cluster: &str,
    namespace: &str,
) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
  namespace: argocd
  labels:
    team: {team}
    env: {env}
  finalizers:
    - resources-finalizer.argocd.argoproj.io
spec:
  project: {team}
  source:
    repoURL: {REPO_URL}
    targetRevision: main
    path: {path}
  destination:
    name: {cluster}
    namespace: {namespace}
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
    syncOptions:
      - CreateNamespace=true
"
    )
}

fn application_set(app: &App, placements: &[(Env, Vec<&Cluster>)]) -> String {
    let mut elements = String::new();
    for (env, targets) in placements {
        for cluster in targets {
            let _ = writeln!(
                elements,
                "          - cluster: {}\n            env: {}\n            namespace: {}",
                cluster.name,
                env.overlay(),
                app.namespace(*env),
            );
        }
    }
    if elements.is_empty() {
        elements.push_str("          []\n");
    }
    let name = &app.name;
    let team = app.team;
    format!(
        "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: {name}
  namespace: argocd
  labels:
    team: {team}
spec:
  generators:
    - list:
        elements:
{elements}  template:
    metadata:
      name: '{name}-{{{{cluster}}}}'
      labels:
        team: {team}
        env: '{{{{env}}}}'
    spec:
      project: {team}
      source:
        repoURL: {REPO_URL}
        targetRevision: main
        path: 'apps/{name}/overlays/{{{{env}}}}'
      destination:
        name: '{{{{cluster}}}}'
        namespace: '{{{{namespace}}}}'
      syncPolicy:
        automated:
          prune: true
        syncOptions:
          - CreateNamespace=true
"
    )
}

// ---------------------------------------------------------------------------------------
// Apps

fn write_app_tree(out: &mut Out, app: &App) -> Result<(), String> {
    let mut rng = Lcg::new(app.index as u64);
    let name = &app.name;
    let team = app.team;
    let dir = format!("apps/{name}");
    let port = 8080 + rng.range(0, 3) * 10;
    let version = format!(
        "{}.{}.{}",
        rng.range(1, 4),
        rng.range(0, 30),
        rng.range(0, 12)
    );

    out.write(
        &format!("{dir}/base/kustomization.yaml"),
        &format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - serviceaccount.yaml
  - configmap.yaml
  - deployment.yaml
  - service.yaml
labels:
  - pairs:
      app.kubernetes.io/name: {name}
      app.kubernetes.io/part-of: {team}
    includeSelectors: false
"
        ),
    )?;
    out.write(
        &format!("{dir}/base/serviceaccount.yaml"),
        &format!(
            "apiVersion: v1
kind: ServiceAccount
metadata:
  name: {name}
automountServiceAccountToken: false
"
        ),
    )?;
    out.write(
        &format!("{dir}/base/configmap.yaml"),
        &format!(
            "apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}-config
data:
  LOG_FORMAT: json
  HTTP_PORT: \"{port}\"
  CACHE_TTL_SECONDS: \"{ttl}\"
  app.properties: |
    server.port={port}
    server.shutdown=graceful
    metrics.enabled=true
    tracing.sample-rate=0.{sample}
",
            ttl = rng.range(30, 600),
            sample = rng.range(1, 9),
        ),
    )?;
    out.write(
        &format!("{dir}/base/deployment.yaml"),
        &deployment(app, port, &version, &mut rng),
    )?;
    out.write(
        &format!("{dir}/base/service.yaml"),
        &format!(
            "apiVersion: v1
kind: Service
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  type: ClusterIP
  selector:
    app: {name}
  ports:
    - name: http
      port: 80
      targetPort: http
      protocol: TCP
    - name: metrics
      port: 9090
      targetPort: metrics
      protocol: TCP
"
        ),
    )?;

    for env in Env::ALL {
        write_overlay(out, app, env, &version, &mut rng)?;
    }
    if let Some(feature) = &app.feature {
        write_feature_overlay(out, app, feature, &version)?;
        write_tests(out, app, &version)?;
    }
    Ok(())
}

fn deployment(app: &App, port: u64, version: &str, rng: &mut Lcg) -> String {
    let name = &app.name;
    let image = app.image();
    let cpu = rng.range(1, 5) * 50;
    let memory = rng.range(1, 8) * 64;
    let workers = rng.range(2, 16);
    let delay = rng.range(5, 20);
    let mut extra_env = String::new();
    if app.name.contains("worker") || app.name.contains("consumer") {
        let _ = writeln!(
            extra_env,
            "            - name: QUEUE_URL\n              value: amqp://rabbitmq.infra.svc:5672/{name}"
        );
    }
    if app.index.is_multiple_of(3) {
        let _ = writeln!(
            extra_env,
            "            - name: REDIS_URL\n              value: redis://redis-cache.infra.svc:6379/{}",
            app.index % 16
        );
    }
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app: {name}
    app.kubernetes.io/version: \"{version}\"
spec:
  replicas: 1
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      app: {name}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app: {name}
      annotations:
        prometheus.io/scrape: \"true\"
        prometheus.io/port: \"9090\"
    spec:
      serviceAccountName: {name}
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        fsGroup: 10001
      containers:
        - name: {name}
          image: {image}:{version}
          imagePullPolicy: IfNotPresent
          args:
            - --port={port}
            - --workers={workers}
          ports:
            - name: http
              containerPort: {port}
            - name: metrics
              containerPort: 9090
          env:
            - name: DATABASE_URL
              value: {db}
            - name: DATABASE_POOL_SIZE
              value: \"{pool}\"
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
{extra_env}          envFrom:
            - configMapRef:
                name: {name}-config
            - configMapRef:
                name: {name}-env
          resources:
            requests:
              cpu: {cpu}m
              memory: {memory}Mi
            limits:
              memory: {limit}Mi
          readinessProbe:
            httpGet:
              path: /ready
              port: http
            initialDelaySeconds: {delay}
            periodSeconds: 10
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            initialDelaySeconds: {live_delay}
            periodSeconds: 20
            failureThreshold: 3
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: [\"ALL\"]
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            - name: config
              mountPath: /etc/{name}
              readOnly: true
      volumes:
        - name: tmp
          emptyDir: {{}}
        - name: config
          configMap:
            name: {name}-config
",
        db = app.database_url(Env::Dev),
        pool = rng.range(5, 40),
        limit = memory * 2,
        live_delay = delay + 10,
    )
}

fn write_overlay(
    out: &mut Out,
    app: &App,
    env: Env,
    version: &str,
    rng: &mut Lcg,
) -> Result<(), String> {
    let name = &app.name;
    let dir = format!("apps/{name}/overlays/{}", env.overlay());
    let namespace = app.namespace(env);
    let hpa = env == Env::Production && app.index % 3 == 1;

    let mut k = String::from(
        "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
",
    );
    let _ = writeln!(k, "namespace: {namespace}");
    k.push_str("resources:\n  - ../../base\n");
    if hpa {
        k.push_str("  - hpa.yaml\n");
    }
    if env == Env::Production && app.tests_in_prod {
        k.push_str("  - ../../tests\n");
    }
    if env == Env::Dev {
        k.push_str("namePrefix: dev-\n");
    }
    let _ = write!(
        k,
        "labels:
  - pairs:
      env: {env}
      team: {team}
    includeSelectors: false
",
        env = env.overlay(),
        team = app.team,
    );
    if app.index.is_multiple_of(2) {
        k.push_str("patches:\n  - path: patch-replicas.yaml\n");
    } else {
        k.push_str("patchesStrategicMerge:\n  - patch-replicas.yaml\n");
    }
    let log_level = if env == Env::Production {
        "info"
    } else {
        "debug"
    };
    let flags = rng.pick(&[
        "none",
        "beta-search",
        "new-pricing,beta-search",
        "async-export",
    ]);
    let _ = write!(
        k,
        "configMapGenerator:
  - name: {name}-env
    literals:
      - ENVIRONMENT={env}
      - LOG_LEVEL={log_level}
      - FEATURE_FLAGS={flags}
      - OTEL_SERVICE_NAME={name}
images:
  - name: {image}
    newTag: \"{version}\"
",
        env = env.overlay(),
        image = app.image(),
    );
    out.write(&format!("{dir}/kustomization.yaml"), &k)?;

    let replicas = match env {
        Env::Production => rng.range(3, 12),
        Env::Staging => 2,
        Env::Dev => 1,
    };
    let cpu = match env {
        Env::Production => rng.range(2, 8) * 100,
        Env::Staging | Env::Dev => 100,
    };
    out.write(
        &format!("{dir}/patch-replicas.yaml"),
        &format!(
            "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  template:
    spec:
      containers:
        - name: {name}
          env:
            - name: DATABASE_URL
              value: {db}
          resources:
            requests:
              cpu: {cpu}m
",
            db = app.database_url(env),
        ),
    )?;
    if hpa {
        out.write(
            &format!("{dir}/hpa.yaml"),
            &format!(
                "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {name}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {name}
  minReplicas: {replicas}
  maxReplicas: {max}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 70
",
                max = replicas * 3,
            ),
        )?;
    }
    Ok(())
}

fn write_feature_overlay(
    out: &mut Out,
    app: &App,
    feature: &str,
    version: &str,
) -> Result<(), String> {
    let name = &app.name;
    let dir = format!("apps/{name}/overlays/{feature}");
    out.write(
        &format!("{dir}/kustomization.yaml"),
        &format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {team}-{feature}
namePrefix: {feature}-
resources:
  - ../../base
  - ../../tests
labels:
  - pairs:
      env: preview
      feature: {feature}
    includeSelectors: false
patches:
  - path: patch-replicas.yaml
configMapGenerator:
  - name: {name}-env
    literals:
      - ENVIRONMENT=preview
      - LOG_LEVEL=debug
      - FEATURE_FLAGS={feature}
images:
  - name: {image}
    newTag: \"{version}-{feature}\"
",
            team = app.team,
            image = app.image(),
        ),
    )?;
    out.write(
        &format!("{dir}/patch-replicas.yaml"),
        &format!(
            "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 1
  template:
    spec:
      containers:
        - name: {name}
          env:
            - name: DATABASE_URL
              value: {db}
",
            db = app.database_url(Env::Dev),
        ),
    )
}

fn write_tests(out: &mut Out, app: &App, version: &str) -> Result<(), String> {
    let name = &app.name;
    let dir = format!("apps/{name}/tests");
    out.write(
        &format!("{dir}/kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - integration-job.yaml
",
    )?;
    out.write(
        &format!("{dir}/integration-job.yaml"),
        &format!(
            "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}-integration-tests
  labels:
    app: {name}
    purpose: integration-tests
spec:
  backoffLimit: 0
  ttlSecondsAfterFinished: 3600
  template:
    metadata:
      labels:
        app: {name}-integration-tests
    spec:
      restartPolicy: Never
      containers:
        - name: tests
          image: {image}-tests:{version}
          args:
            - --suite=integration
            - --target=http://{name}
          env:
            - name: DATABASE_URL
              value: {db}
",
            image = app.image(),
            db = app.database_url(Env::Dev),
        ),
    )
}

// ---------------------------------------------------------------------------------------
// Helm charts

fn write_chart(out: &mut Out, chart: &str) -> Result<(), String> {
    let dir = format!("charts/{chart}");
    out.write(
        &format!("{dir}/Chart.yaml"),
        &format!(
            "apiVersion: v2
name: {chart}
description: Platform component {chart}
type: application
version: 0.4.2
appVersion: \"1.9.0\"
"
        ),
    )?;
    out.write(
        &format!("{dir}/values.yaml"),
        &format!(
            "image: {REGISTRY}/platform/{chart}:1.9.0
replicaCount: 1
cluster: unknown
region: eu
service:
  port: 8080
resources:
  requests:
    cpu: 50m
    memory: 64Mi
extraArgs: []
"
        ),
    )?;
    out.write(
        &format!("{dir}/values-production.yaml"),
        "replicaCount: 3
resources:
  requests:
    cpu: 200m
    memory: 256Mi
  limits:
    memory: 512Mi
",
    )?;
    out.write(
        &format!("{dir}/templates/_helpers.tpl"),
        &format!(
            "{{{{- define \"{chart}.fullname\" -}}}}
{{{{- printf \"%s-%s\" .Release.Name .Chart.Name | trunc 63 | trimSuffix \"-\" -}}}}
{{{{- end -}}}}
"
        ),
    )?;
    out.write(
        &format!("{dir}/templates/deployment.yaml"),
        &format!(
            "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{{{ include \"{chart}.fullname\" . }}}}
  labels:
    app.kubernetes.io/name: {chart}
    app.kubernetes.io/instance: {{{{ .Release.Name }}}}
spec:
  replicas: {{{{ .Values.replicaCount }}}}
  selector:
    matchLabels:
      app.kubernetes.io/name: {chart}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {chart}
    spec:
      containers:
        - name: {chart}
          image: {{{{ .Values.image }}}}
          args:
            - --cluster={{{{ .Values.cluster }}}}
            {{{{- range .Values.extraArgs }}}}
            - {{{{ . }}}}
            {{{{- end }}}}
          ports:
            - containerPort: {{{{ .Values.service.port }}}}
          resources:
            {{{{- toYaml .Values.resources | nindent 12 }}}}
"
        ),
    )?;
    out.write(
        &format!("{dir}/templates/service.yaml"),
        &format!(
            "apiVersion: v1
kind: Service
metadata:
  name: {{{{ include \"{chart}.fullname\" . }}}}
spec:
  selector:
    app.kubernetes.io/name: {chart}
  ports:
    - port: {{{{ .Values.service.port }}}}
      targetPort: {{{{ .Values.service.port }}}}
"
        ),
    )
}
