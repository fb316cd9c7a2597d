//! The cluster inventory, merged by name and server URL from everything that declares a
//! cluster: the config file, Argo CD cluster Secrets (plain, or wrapped in a SealedSecret or
//! ExternalSecret template), Flux `clusters/<name>/` trees, Flux `kubeConfig` Secret names,
//! and server URLs seen only in destinations. Each cluster's environment is decided in the
//! order of DESIGN §3 and carries the reason.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{self, Config};
use crate::location::Location;
use crate::topology::env::{Env, Vocabulary};

/// Argo CD's name for the cluster it runs on.
pub const IN_CLUSTER: &str = "in-cluster";
pub const IN_CLUSTER_SERVER: &str = "https://kubernetes.default.svc";
/// The cluster Flux roots outside any `clusters/<name>/` tree run on.
pub const UNNAMED: &str = "unnamed-cluster";

#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    pub server: Option<String>,
    pub aliases: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// Annotations (a cluster Secret's, the config's): ApplicationSet cluster generators offer
    /// them as `metadata.annotations.<key>`.
    pub annotations: BTreeMap<String, String>,
    pub environment: Env,
    /// Why the environment is what it is, e.g. "label env=production".
    pub env_reason: String,
    pub declared_in: Vec<Location>,
    /// Declared where Argo CD's cluster generator sees it (a cluster Secret, or the config).
    pub argo_known: bool,
    /// The cluster's tier (DESIGN §3 "Tiers"), decided once its environment is final; `None`
    /// for a non-production cluster with no tier word, or an unknown one.
    pub tier: Option<crate::topology::Tier>,
    /// Why the tier is what it is.
    pub tier_reason: String,
    /// How strongly the environment was decided (lower is stronger), to merge declarations.
    env_rank: u8,
}

impl Cluster {
    /// The cluster's tier: `production`, `staging`, `development`, `testing`, `internal`.
    pub fn tier(&self) -> Option<crate::topology::Tier> {
        self.tier
    }
}

#[derive(Debug, Default)]
pub struct Inventory {
    pub clusters: Vec<Cluster>,
    vocabulary: Vocabulary,
    /// Which `repoURL`s are this repository.
    pub repository: crate::topology::repository::ThisRepository,
}

const RANK_CONFIG: u8 = 0;
const RANK_LABEL: u8 = 1;
const RANK_NAME: u8 = 2;
const RANK_SERVER: u8 = 3;
const RANK_FOLDER: u8 = 4;
const RANK_TIER_WORD: u8 = 5;
const RANK_HOLDS_PRODUCTION: u8 = 8;
const RANK_NONE: u8 = 9;

impl Inventory {
    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocabulary
    }

    pub fn find(&self, name: &str) -> Option<usize> {
        self.clusters
            .iter()
            .position(|c| c.name == name || c.aliases.iter().any(|a| a == name))
    }

    pub fn find_server(&self, server: &str) -> Option<usize> {
        let want = normalise_server(server);
        self.clusters
            .iter()
            .position(|c| c.server.as_deref().map(normalise_server) == Some(want.clone()))
    }

    /// Adds or merges a declaration; returns the cluster's index.
    pub(crate) fn declare(
        &mut self,
        name: Option<&str>,
        server: Option<&str>,
        labels: BTreeMap<String, String>,
        location: Option<Location>,
        explicit_env: Option<(Env, String)>,
    ) -> usize {
        let existing = name
            .and_then(|n| self.find(n))
            .or_else(|| server.and_then(|s| self.find_server(s)));
        let index = match existing {
            Some(i) => i,
            None => {
                let name = name
                    .map(str::to_owned)
                    .or_else(|| server.map(str::to_owned))
                    .unwrap_or_default();
                self.clusters.push(Cluster {
                    name,
                    server: None,
                    aliases: Vec::new(),
                    labels: BTreeMap::new(),
                    annotations: BTreeMap::new(),
                    environment: Env::Unknown,
                    env_reason: "no environment word in its name, labels or server".into(),
                    declared_in: Vec::new(),
                    argo_known: false,
                    tier: None,
                    tier_reason: String::new(),
                    env_rank: RANK_NONE,
                });
                self.clusters.len() - 1
            }
        };
        let vocabulary = self.vocabulary.clone();
        let c = &mut self.clusters[index];
        if c.server.is_none() {
            c.server = server.map(str::to_owned);
        }
        for (k, v) in labels {
            c.labels.entry(k).or_insert(v);
        }
        if let Some(loc) = location {
            if !c.declared_in.contains(&loc) {
                c.declared_in.push(loc);
            }
        }
        // Decide the environment: explicit (config) > labels > name > server URL.
        let mut candidates: Vec<(u8, Env, String)> = Vec::new();
        if let Some((env, why)) = explicit_env {
            candidates.push((RANK_CONFIG, env, why));
        }
        for key in ["env", "environment", "stage"] {
            if let Some(value) = c.labels.get(key) {
                if let Some(m) = vocabulary.classify(value) {
                    candidates.push((RANK_LABEL, m.env, format!("label {key}={value}")));
                }
            }
        }
        if let Some(m) = vocabulary.classify(&c.name) {
            candidates.push((
                RANK_NAME,
                m.env,
                format!("name `{}` has `{}`", c.name, m.token),
            ));
        }
        if let Some(server) = &c.server {
            if let Some(m) = vocabulary.classify(&host_of(server)) {
                candidates.push((
                    RANK_SERVER,
                    m.env,
                    format!("server {server} has `{}`", m.token),
                ));
            }
        }
        // A word of a non-production tier (`load-1`, `tools`, `ci-eu`) makes the cluster
        // non-production when no environment word says otherwise.
        if candidates.is_empty() {
            if let Some((tier, why)) = crate::topology::tiers::cluster_tier_word(
                c,
                crate::topology::tiers::Catalog::builtin(),
            ) {
                candidates.push((
                    RANK_TIER_WORD,
                    Env::NonProduction,
                    format!("{why}, a word of the {tier} tier"),
                ));
            }
        }
        if let Some((rank, env, why)) = candidates.into_iter().min_by_key(|(r, ..)| *r) {
            if rank < c.env_rank {
                c.env_rank = rank;
                c.environment = env;
                c.env_reason = why;
            }
        }
        index
    }

    /// A cluster named only by the folder that holds its tree (`clusters/<x>/`).
    pub(crate) fn declare_folder(&mut self, name: &str, location: Location) -> usize {
        let i = self.declare(Some(name), None, BTreeMap::new(), Some(location), None);
        let vocabulary = self.vocabulary.clone();
        let c = &mut self.clusters[i];
        if c.env_rank > RANK_FOLDER {
            if let Some(m) = vocabulary.classify(name) {
                c.env_rank = RANK_FOLDER;
                c.environment = m.env;
                c.env_reason = format!("its tree is clusters/{name}");
            }
        }
        i
    }

    /// A cluster named by the deepest folder below an environment folder
    /// (`overlays/prod/<region>/<name>/`): the environment folder's word (`env_word`) says its
    /// environment, as a `clusters/<x>/` folder does, unless something stronger already did.
    pub(crate) fn declare_nested(
        &mut self,
        name: &str,
        env_word: &str,
        environment_dir: &str,
        location: Location,
    ) -> usize {
        let i = self.declare(Some(name), None, BTreeMap::new(), Some(location), None);
        let vocabulary = self.vocabulary.clone();
        let c = &mut self.clusters[i];
        if c.env_rank > RANK_FOLDER {
            if let Some(m) = vocabulary.classify(env_word) {
                c.env_rank = RANK_FOLDER;
                c.environment = m.env;
                c.env_reason =
                    format!("its folder is below the environment folder {environment_dir}/");
            }
        }
        i
    }

    /// The cluster whose API server's host is `host` (`api.` in front of it counts too:
    /// `namespaces/live.example.org/` is the cluster at `https://api.live.example.org`).
    pub fn find_host(&self, host: &str) -> Option<usize> {
        let host = host.to_ascii_lowercase();
        self.clusters.iter().position(|c| {
            c.server.as_deref().is_some_and(|s| {
                let h = host_of(s);
                h == host || h.strip_prefix("api.") == Some(host.as_str())
            })
        })
    }

    /// The cluster a destination names, creating it when only the destination knows it.
    /// Returns the index and whether it was declared anywhere else.
    pub fn resolve_destination(
        &mut self,
        name: Option<&str>,
        server: Option<&str>,
        location: Location,
    ) -> (usize, bool) {
        if let Some(i) = name.and_then(|n| self.find(n)) {
            return (i, true);
        }
        if let Some(i) = server.and_then(|s| self.find_server(s)) {
            return (i, true);
        }
        let i = self.declare(name, server, BTreeMap::new(), Some(location), None);
        (i, false)
    }

    /// The inventory of the clusters the config declares; the families declare the ones the
    /// repository describes (`Family::declare_clusters`).
    pub fn build(config: &Config) -> Inventory {
        let mut inv = Inventory {
            clusters: Vec::new(),
            vocabulary: Vocabulary::new(
                config.environments.production.words.clone(),
                config.environments.non_production.words.clone(),
            ),
            repository: crate::topology::repository::ThisRepository::from_config(config),
        };
        let config_file: Arc<str> = Arc::from(config.shown_file());
        for (i, decl) in config.clusters.iter().enumerate() {
            let line = config
                .source
                .as_ref()
                .and_then(|s| s.line_of(&format!("clusters[{i}].name")))
                .unwrap_or(1);
            // Without `environment` the cluster is only named here; its environment is
            // inferred like any other's.
            let explicit = decl
                .environment
                .map(|e| {
                    let env = match e {
                        config::Environment::Production => Env::Production,
                        config::Environment::NonProduction => Env::NonProduction,
                    };
                    (env, format!("declared {env} in the config"))
                })
                .or_else(|| {
                    let tier = decl.tier?;
                    Some((
                        tier.environment(),
                        format!("declared tier {tier} in the config"),
                    ))
                });
            // Declared labels are matched by selectors as a cluster Secret's are.
            let c = inv.declare(
                Some(&decl.name),
                decl.server.as_deref(),
                decl.labels.clone(),
                Some(Location::new(&config_file, line)),
                explicit,
            );
            let cluster = &mut inv.clusters[c];
            cluster.aliases.extend(decl.aliases.iter().cloned());
            for (k, v) in &decl.annotations {
                cluster.annotations.entry(k.clone()).or_insert(v.clone());
            }
            cluster.argo_known = true;
        }
        inv
    }

    /// Argo CD's `in-cluster`: the cluster that runs the deployer, when that is known.
    pub fn in_cluster(&mut self, host: Option<usize>, location: Location) -> usize {
        if let Some(h) = host {
            return h;
        }
        if let Some(i) = self
            .find(IN_CLUSTER)
            .or_else(|| self.find_server(IN_CLUSTER_SERVER))
        {
            return i;
        }
        let i = self.declare(
            Some(IN_CLUSTER),
            Some(IN_CLUSTER_SERVER),
            BTreeMap::new(),
            Some(location),
            None,
        );
        let c = &mut self.clusters[i];
        c.environment = Env::Unknown;
        c.env_rank = RANK_NONE;
        c.env_reason = "Argo CD's own cluster; which cluster runs Argo CD is not declared".into();
        i
    }

    /// The one cluster of a repository whose Flux root names no cluster.
    pub fn unnamed(&mut self, location: Location) -> usize {
        self.unnamed_because(
            location,
            "the Flux root is outside any clusters/<name>/ tree; nothing names this cluster",
        )
    }

    /// The one cluster of a repository whose roots name no cluster; `why` says so when this
    /// root is the first to land there.
    pub fn unnamed_because(&mut self, location: Location, why: &str) -> usize {
        if let Some(i) = self.find(UNNAMED) {
            return i;
        }
        let i = self.declare(Some(UNNAMED), None, BTreeMap::new(), Some(location), None);
        self.clusters[i].env_reason = why.into();
        i
    }

    /// A Flux `kubeConfig.secretRef`: the Secret names the cluster (`<x>-kubeconfig`,
    /// `kubeconfig-<x>` → `<x>`), so that every deployer using one Secret lands on one
    /// cluster. A generic name (`kubeconfig`, `cluster-kubeconfig`, `value`) says nothing:
    /// the namespace that holds the Secret names the cluster (a hub with one namespace per
    /// spoke).
    pub fn kubeconfig_cluster(
        &mut self,
        secret_name: &str,
        namespace: Option<&str>,
        location: Location,
    ) -> usize {
        let name = match (kubeconfig_secret_cluster(secret_name), namespace) {
            (Some(name), _) => name,
            (None, Some(ns)) if !ns.is_empty() => ns,
            (None, _) => secret_name,
        };
        self.declare(Some(name), None, BTreeMap::new(), Some(location), None)
    }

    /// A generator element that carries both a cluster name and its URL: one cluster known
    /// by both (a cluster first seen by its URL takes the name, the URL stays an alias).
    pub fn declare_element(&mut self, name: &str, server: &str, location: Location) -> usize {
        if self.find(name).is_none() {
            if let Some(i) = self.find_server(server) {
                let c = &mut self.clusters[i];
                if c.name == server || normalise_server(&c.name) == normalise_server(server) {
                    c.aliases
                        .push(std::mem::replace(&mut c.name, name.to_owned()));
                } else {
                    c.aliases.push(name.to_owned());
                }
                return self.declare(
                    Some(name),
                    Some(server),
                    BTreeMap::new(),
                    Some(location),
                    None,
                );
            }
        }
        let i = self.declare(
            Some(name),
            Some(server),
            BTreeMap::new(),
            Some(location),
            None,
        );
        let c = &mut self.clusters[i];
        if !c.aliases.iter().any(|a| a == server) && c.name != server {
            c.aliases.push(server.to_owned());
        }
        i
    }

    /// DESIGN §3: a cluster whose environment is still unknown after every other signal and
    /// that receives a production workload is production, with that workload as evidence.
    pub fn promote(&mut self, cluster: usize, why: String) {
        let c = &mut self.clusters[cluster];
        if c.environment == Env::Unknown {
            c.environment = Env::Production;
            c.env_reason = why;
            c.env_rank = RANK_HOLDS_PRODUCTION;
        }
    }
}

/// The cluster a kubeconfig Secret's name gives, or `None` for a generic name.
pub fn kubeconfig_secret_cluster(secret: &str) -> Option<&str> {
    let derived = secret
        .strip_suffix("-kubeconfig-secret")
        .or_else(|| secret.strip_suffix("-kubeconfig"))
        .or_else(|| secret.strip_prefix("kubeconfig-"))?;
    let generic = matches!(
        derived,
        "" | "cluster" | "remote" | "target" | "default" | "value"
    );
    (!generic).then_some(derived)
}

/// `clusters/<name>/...` → `<name>` (the path must go below the cluster folder).
pub fn cluster_tree_of(path: &str) -> Option<&str> {
    // The last `clusters` segment with two more after it (called for every file: no Vec,
    // and most paths have no `clusters/` at all, which one substring search says).
    if !path.contains("clusters/") {
        return None;
    }
    let mut tree = None;
    let mut segments = path.split('/');
    while let Some(segment) = segments.next() {
        if segment == "clusters" {
            let mut ahead = segments.clone();
            if let (Some(name), Some(_)) = (ahead.next(), ahead.next()) {
                tree = Some(name);
            }
        }
    }
    tree
}

fn normalise_server(server: &str) -> String {
    server.trim_end_matches('/').to_ascii_lowercase()
}

/// The host of a URL, or the text itself.
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = host
        .rsplit_once(':')
        .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    host.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_trees_and_hosts() {
        assert_eq!(
            cluster_tree_of("clusters/prod-eu/apps.yaml"),
            Some("prod-eu")
        );
        assert_eq!(
            cluster_tree_of("x/clusters/staging/flux-system/gotk-sync.yaml"),
            Some("staging")
        );
        assert_eq!(cluster_tree_of("argocd/clusters/prod-us.yaml"), None);
        // The last `clusters` folder that has a cluster folder and something in it.
        assert_eq!(cluster_tree_of("clusters/a/b/clusters/c/d.yaml"), Some("c"));
        assert_eq!(cluster_tree_of("clusters/a/clusters/b.yaml"), Some("a"));
        assert_eq!(cluster_tree_of("clusters/a"), None);
        assert_eq!(
            host_of("https://user@prod-us.k8s.acme.io:6443/path"),
            "prod-us.k8s.acme.io"
        );
        assert_eq!(host_of("postgres://u:p@db.prod.x:5432/db"), "db.prod.x");
    }
}
