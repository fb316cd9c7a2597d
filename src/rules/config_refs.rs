//! What the configuration-reference rules read: the values a placed workload carries (env
//! values, generated ConfigMap literals, container images) and the objects it names
//! (ConfigMaps and Secrets through `envFrom`, `valueFrom` and volumes), each with its line,
//! and how to tell which environment a value points at: hosts of URLs and connection strings
//! (`postgres://`, `redis://`, `jdbc:`...), matched against the config's
//! `environments.*.hosts` globs first, then by whole environment words.

use std::collections::BTreeSet;

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::placement::{object_label, resource_of};
use super::{RuleContext, RuleId};
use crate::config::Config;
use crate::documents::{Node, SourceFile};
use crate::findings::{Finding, Location, Severity};
use crate::topology::env::{tokens, Vocabulary};
use crate::topology::kustomize::split_image;
use crate::topology::{Env, HashMap, HashSet, Placement, Topology};

/// One value or reference of a workload, at the line an author would change.
#[derive(Debug, Clone)]
pub struct Reference {
    pub location: Location,
    /// What it is, for the message: `env ORDERS_DB_URL`, `literal LOG_LEVEL`, `image`,
    /// `secretKeyRef`.
    pub what: String,
    pub value: String,
    pub kind: RefKind,
    /// For an env var, its name (for a ConfigMap key or a generator's literal, the key): a
    /// patch that sets the same name overrides the base value (a merging generator, with
    /// `behavior: merge`, sets its literals' keys over the ConfigMap's).
    pub env_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// A value that may hold URLs or host names.
    Value,
    /// A container image reference; its tag is what counts.
    Image,
    /// The name of a ConfigMap or Secret.
    ObjectName,
}

/// Environment hosts from the config, compiled once, and the hosts production serves.
pub struct Classifier {
    vocabulary: Vocabulary,
    production: GlobSet,
    non_production: GlobSet,
    /// Host names that production Ingresses, routes, Gateways and Services serve (learned from
    /// the topology, without configuration), each with why: `Ingress/shop at apps/shop/ingress.yaml:9`.
    served_by_production: HashMap<String, String>,
}

fn globs(patterns: &[String]) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        if let Ok(g) = Glob::new(&p.to_ascii_lowercase()) {
            b.add(g);
        }
    }
    b.build().unwrap_or_default()
}

impl Classifier {
    pub fn new(config: &Config) -> Self {
        Classifier {
            vocabulary: Vocabulary::new(
                config.environments.production.words.clone(),
                config.environments.non_production.words.clone(),
            ),
            production: globs(&config.environments.production.hosts),
            non_production: globs(&config.environments.non_production.hosts),
            served_by_production: HashMap::default(),
        }
    }

    /// Learns the hosts that the production placements serve ([`served_hosts`]).
    fn with_served_hosts(mut self, served: HashMap<String, String>) -> Self {
        self.served_by_production = served;
        self
    }

    /// The environment a reference points at, and why.
    pub fn classify(&self, r: &Reference) -> Option<(Env, String)> {
        match r.kind {
            RefKind::Value => hosts_in(&r.value).into_iter().find_map(|host| {
                // A single-label host (`http://govspeak-preview`) is a Service of the
                // workload's own namespace, on its own cluster: its name says nothing about
                // another environment. A bucket (`s3://govuk-production-backups`) is global.
                let service = !host.contains('.') && !names_a_bucket(&r.value, &host);
                if service
                    && !self.production.is_match(&host)
                    && !self.non_production.is_match(&host)
                {
                    return None;
                }
                self.host(&host)
            }),
            RefKind::Image => {
                let (repository, tag) = split_image(&r.value);
                let by_tag = || {
                    let tag = tag.strip_prefix(':')?.split('@').next()?;
                    // An environment's channel is the tag (`:prod`) or how it begins
                    // (`:staging-4f2a`); a word after a version or date names a build variant
                    // (`:2023-10-03-114937-production`), not where the image may run.
                    let first = tokens(tag).into_iter().next()?;
                    let m = self.vocabulary.classify(tag)?;
                    let leads = m.token == first || m.token.starts_with(&format!("{first}-"));
                    leads.then(|| (m.env, format!("image tag `{tag}`")))
                };
                // The registry is a host like any other (`registry.staging.acme.io/app`):
                // an environment's registry holds the builds meant for it.
                by_tag().or_else(|| {
                    let registry = image_registry(repository)?;
                    let (env, why) = self.host(registry)?;
                    Some((env, format!("image registry: {why}")))
                })
            }
            RefKind::ObjectName => {
                let m = self.vocabulary.classify_workload(&r.value)?;
                Some((m.env, format!("{} name has `{}`", r.what, m.token)))
            }
        }
    }

    fn host(&self, host: &str) -> Option<(Env, String)> {
        if self.production.is_match(host) {
            return Some((
                Env::Production,
                format!("host {host} is production in the config"),
            ));
        }
        if self.non_production.is_match(host) {
            return Some((
                Env::NonProduction,
                format!("host {host} is non-production in the config"),
            ));
        }
        if let Some(by) = self.served_by_production.get(host) {
            return Some((
                Env::Production,
                format!("host {host} is served by production {by}"),
            ));
        }
        let m = self.vocabulary.classify(without_word_tld(host))?;
        Some((m.env, format!("host {host} has `{}`", m.token)))
    }
}

/// `host` without a top-level domain that is also an environment word (`us-docker.pkg.dev`,
/// `status.example.live`): a public name's TLD says nothing about an environment. Only for
/// names of three labels or more: in `db.dev` the last label is a namespace.
fn without_word_tld(host: &str) -> &str {
    match host.rsplit_once('.') {
        Some((rest, tld))
            if rest.contains('.')
                && matches!(tld, "dev" | "live" | "test" | "qa" | "int" | "review") =>
        {
            rest
        }
        _ => host,
    }
}

/// The registry host of an image repository (`registry.staging.acme.io/app` →
/// `registry.staging.acme.io`): its first segment when that is a host (a dot, a port, or
/// `localhost`); Docker Hub's short names have none.
fn image_registry(repository: &str) -> Option<&str> {
    let (first, _) = repository.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost")
        .then(|| first.split(':').next().unwrap_or(first))
}

/// The kinds whose host names route traffic to a workload.
const ROUTE_KINDS: &[&str] = &[
    "Ingress",
    "HTTPRoute",
    "GRPCRoute",
    "TLSRoute",
    "Gateway",
    "Service",
    "Route",
];

/// The host names an Ingress, Gateway API route or Gateway, OpenShift Route, or Service
/// (through external-dns's annotation) claims, each with the line of its value. Wildcards
/// are left out: they claim no one host.
fn route_hosts(kind: &str, root: &Node) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let mut push = |node: &Node| {
        if let Some(host) = node.as_str() {
            let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
            if host.contains('.') && !host.contains('*') {
                out.push((host, node.span.line));
            }
        }
    };
    let spec = root.get("spec");
    fn seq(node: Option<&Node>) -> &[Node] {
        node.and_then(Node::as_seq).unwrap_or(&[])
    }
    match kind {
        "Ingress" => {
            for rule in seq(spec.and_then(|s| s.get("rules"))) {
                rule.get("host").into_iter().for_each(&mut push);
            }
            for tls in seq(spec.and_then(|s| s.get("tls"))) {
                seq(tls.get("hosts")).iter().for_each(&mut push);
            }
        }
        "HTTPRoute" | "GRPCRoute" | "TLSRoute" => {
            seq(spec.and_then(|s| s.get("hostnames")))
                .iter()
                .for_each(&mut push);
        }
        "Gateway" => {
            for listener in seq(spec.and_then(|s| s.get("listeners"))) {
                listener.get("hostname").into_iter().for_each(&mut push);
            }
        }
        "Route" => {
            spec.and_then(|s| s.get("host"))
                .into_iter()
                .for_each(&mut push);
        }
        _ => {}
    }
    // external-dns publishes these names for any of the kinds (a LoadBalancer Service too).
    if let Some(names) = root
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get("external-dns.alpha.kubernetes.io/hostname"))
    {
        if let Some(text) = names.as_str() {
            for host in text.split(',') {
                let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
                if host.contains('.') && !host.contains('*') {
                    out.push((host, names.span.line));
                }
            }
        }
    }
    out
}

/// The hosts production placements claim (see [`route_hosts`]), each with the object that
/// claims it first in placement order.
fn served_hosts(files: &[SourceFile], topology: &Topology) -> HashMap<String, String> {
    let mut served: HashMap<String, String> = HashMap::default();
    for p in &topology.placements {
        if p.workload_class != Env::Production
            || p.patch
            || !ROUTE_KINDS.contains(&p.object.kind.as_str())
        {
            continue;
        }
        // As the cluster receives it: a route kustomize's edits changed is read as changed.
        let Some(doc) = p.object.doc.and_then(|r| topology.document(files, r)) else {
            continue;
        };
        for (host, line) in route_hosts(&p.object.kind, &doc.root) {
            served
                .entry(host)
                .or_insert_with(|| format!("{} at {}:{line}", object_label(p), p.object.file));
        }
    }
    served
}

/// Whether `host` is a bucket of an object store URL in `value` (`s3://host/...`): bucket
/// names are global, not names of the cluster's Services.
fn names_a_bucket(value: &str, host: &str) -> bool {
    [
        "s3", "s3a", "s3n", "gs", "gcs", "az", "abfs", "abfss", "wasb", "wasbs", "oss", "cos", "r2",
    ]
    .iter()
    .any(|scheme| value.contains(&format!("{scheme}://{host}")))
}

/// Host names in a value: of every `scheme://[user[:pass]@]host[:port]` (also `jdbc:...`),
/// or the value itself when it is a bare dotted host name.
pub fn hosts_in(value: &str) -> Vec<String> {
    let mut hosts = Vec::new();
    let mut rest = value;
    while let Some(i) = rest.find("://") {
        let after = &rest[i + 3..];
        let authority = after
            .split(['/', '?', '#', ' ', '"', '\'', ',', ';'])
            .next()
            .unwrap_or("");
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = host_port.split(':').next().unwrap_or("");
        if !host.is_empty() {
            hosts.push(host.to_ascii_lowercase());
        }
        rest = after;
    }
    let v = value.trim();
    if hosts.is_empty()
        && v.contains('.')
        && !v.contains(char::is_whitespace)
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        && v.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
    {
        hosts.push(v.split(':').next().unwrap_or(v).to_ascii_lowercase());
    }
    hosts
}

const POD_KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "Pod",
    "ReplicaSet",
];

/// The values and references of one placement.
pub fn references(
    p: &Placement,
    topology: &Topology,
    files: &[SourceFile],
    by_path: &HashMap<&str, usize>,
) -> Vec<Reference> {
    let mut out = Vec::new();
    if (p.object.kind == "ConfigMap" || p.object.kind == "Secret") && p.object.doc.is_none() {
        generator_literals(p, files, by_path, &mut out);
        return out;
    }
    let Some(doc) = p.object.doc.and_then(|r| topology.document(files, r)) else {
        return out;
    };
    // A value a kustomize edit set points at the edit's line.
    let at = |line: u32| doc.at(line);
    if p.object.kind == "ConfigMap" {
        for e in doc.root.get("data").and_then(Node::as_map).unwrap_or(&[]) {
            if let (Some(k), Some(v)) = (e.key.as_str(), e.value.as_str()) {
                out.push(Reference {
                    location: at(e.value.span.line),
                    what: format!("ConfigMap key {k}"),
                    value: v.to_owned(),
                    kind: RefKind::Value,
                    env_name: Some(k.to_owned()),
                });
            }
        }
        return out;
    }
    match p.object.kind.as_str() {
        "ExternalSecret" => {
            external_secret(&doc.root, &at, &mut out);
            return out;
        }
        "HelmRelease" => {
            helm_release(&doc.root, &at, &mut out);
            return out;
        }
        "Application" if p.renders_chart => {
            argo_helm(&doc.root, files, &at, &mut out);
            return out;
        }
        k if ROUTE_KINDS.contains(&k) => {
            // The hosts it claims: a non-production route that claims a production host
            // takes production's traffic.
            for (host, line) in route_hosts(k, &doc.root) {
                out.push(Reference {
                    location: at(line),
                    what: format!("{k} host"),
                    value: host,
                    kind: RefKind::Value,
                    env_name: None,
                });
            }
            return out;
        }
        k if !POD_KINDS.contains(&k) => return out,
        _ => {}
    }
    vault_annotations(&doc.root, &at, &mut out);
    for (image, line) in &p.object.images {
        out.push(Reference {
            location: at(*line),
            what: "image".into(),
            value: image.clone(),
            kind: RefKind::Image,
            env_name: None,
        });
    }
    // Walk the whole object for env entries and references: pod templates nest differently
    // per kind (Deployment, CronJob, Pod).
    let mut stack = vec![&doc.root];
    while let Some(node) = stack.pop() {
        if let Some(entries) = node.as_map() {
            for e in entries {
                match e.key.as_str() {
                    Some("env") => env_entries(&e.value, &at, &mut out),
                    Some(
                        k @ ("configMapRef" | "secretRef" | "configMapKeyRef" | "secretKeyRef"),
                    ) => {
                        if let Some(name) = e.value.entry("name") {
                            if let Some(v) = name.value.as_str() {
                                out.push(Reference {
                                    location: at(name.key.span.line),
                                    what: k.to_owned(),
                                    value: v.to_owned(),
                                    kind: RefKind::ObjectName,
                                    env_name: None,
                                });
                            }
                        }
                    }
                    Some(k @ ("configMap" | "secret")) => {
                        let key = if k == "secret" { "secretName" } else { "name" };
                        if let Some(name) = e.value.entry(key) {
                            if let Some(v) = name.value.as_str() {
                                out.push(Reference {
                                    location: at(name.key.span.line),
                                    what: format!("{k} volume"),
                                    value: v.to_owned(),
                                    kind: RefKind::ObjectName,
                                    env_name: None,
                                });
                            }
                        }
                    }
                    _ => {}
                }
                stack.push(&e.value);
            }
        } else if let Some(items) = node.as_seq() {
            stack.extend(items.iter());
        }
    }
    out
}

fn name_ref(
    what: String,
    node: &Node,
    line_of: &Node,
    at: &dyn Fn(u32) -> Location,
) -> Option<Reference> {
    Some(Reference {
        location: at(line_of.span.line),
        what,
        value: node.as_str()?.to_owned(),
        kind: RefKind::ObjectName,
        env_name: None,
    })
}

/// ExternalSecret: the store it reads from and the remote keys (`secret/data/prod/db`).
fn external_secret(root: &Node, at: &dyn Fn(u32) -> Location, out: &mut Vec<Reference>) {
    let Some(spec) = root.get("spec") else { return };
    if let Some(e) = spec.get("secretStoreRef").and_then(|s| s.entry("name")) {
        out.extend(name_ref("secretStoreRef".into(), &e.value, &e.key, at));
    }
    for item in spec.get("data").and_then(Node::as_seq).unwrap_or(&[]) {
        if let Some(e) = item.get("remoteRef").and_then(|r| r.entry("key")) {
            out.extend(name_ref("remoteRef.key".into(), &e.value, &e.key, at));
        }
    }
    for item in spec.get("dataFrom").and_then(Node::as_seq).unwrap_or(&[]) {
        for source in ["extract", "find"] {
            let Some(node) = item.get(source) else {
                continue;
            };
            for key in ["key", "path"] {
                if let Some(e) = node.entry(key) {
                    out.extend(name_ref(
                        format!("dataFrom.{source}.{key}"),
                        &e.value,
                        &e.key,
                        at,
                    ));
                }
            }
        }
    }
}

/// Vault agent injector annotations on a pod template: the secret paths and the role.
fn vault_annotations(root: &Node, at: &dyn Fn(u32) -> Location, out: &mut Vec<Reference>) {
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        if let Some(annotations) = node
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(Node::as_map)
        {
            for e in annotations {
                let Some(key) = e.key.as_str() else { continue };
                if key.starts_with("vault.hashicorp.com/agent-inject-secret-")
                    || key == "vault.hashicorp.com/role"
                {
                    out.extend(name_ref(key.to_owned(), &e.value, &e.key, at));
                }
            }
        }
        if let Some(entries) = node.as_map() {
            stack.extend(
                entries
                    .iter()
                    .filter(|e| e.key.as_str() != Some("metadata"))
                    .map(|e| &e.value),
            );
        }
    }
}

/// Every string under `node` as a value reference, named by its path; `shift` is added to
/// line numbers (for YAML parsed out of a block scalar).
fn string_leaves(
    prefix: &str,
    node: &Node,
    shift: u32,
    loc: &dyn Fn(u32) -> Location,
    out: &mut Vec<Reference>,
) {
    let mut stack = vec![(prefix.to_owned(), node)];
    while let Some((path, node)) = stack.pop() {
        if let Some(v) = node
            .as_str()
            .filter(|_| node.as_map().is_none() && node.as_seq().is_none())
        {
            out.push(Reference {
                location: loc(node.span.line + shift),
                what: path,
                value: v.to_owned(),
                kind: RefKind::Value,
                env_name: None,
            });
        } else if let Some(entries) = node.as_map() {
            for e in entries {
                let key = e.key.as_str().unwrap_or("?");
                stack.push((format!("{path}.{key}"), &e.value));
            }
        } else if let Some(items) = node.as_seq() {
            for (i, item) in items.iter().enumerate() {
                stack.push((format!("{path}[{i}]"), item));
            }
        }
    }
}

/// An Argo CD Application of a Helm chart: `helm.values` (YAML text), `helm.valuesObject`,
/// `helm.parameters`, and the `helm.valueFiles` found in this repository.
fn argo_helm(
    root: &Node,
    files: &[SourceFile],
    at: &dyn Fn(u32) -> Location,
    out: &mut Vec<Reference>,
) {
    let Some(spec) = root.get("spec") else { return };
    let mut sources: Vec<&Node> = spec.get("source").into_iter().collect();
    sources.extend(spec.get("sources").and_then(Node::as_seq).unwrap_or(&[]));
    for source in sources {
        let Some(helm) = source.get("helm") else {
            continue;
        };
        if let Some(values) = helm.get("values") {
            if let Some(text) = values.as_str() {
                // The block's first content line is the line after its `|` indicator.
                let parsed = crate::documents::yaml::parse_stream(text);
                for doc in &parsed.docs {
                    string_leaves("helm.values", &doc.root, values.span.line, at, out);
                }
            }
        }
        if let Some(object) = helm.get("valuesObject") {
            string_leaves("helm.valuesObject", object, 0, at, out);
        }
        for param in helm.get("parameters").and_then(Node::as_seq).unwrap_or(&[]) {
            let name = param.get("name").and_then(Node::as_str).unwrap_or("?");
            if let Some(e) = param.entry("value") {
                if let Some(v) = e.value.as_str() {
                    out.push(Reference {
                        location: at(e.key.span.line),
                        what: format!("helm parameter {name}"),
                        value: v.to_owned(),
                        kind: RefKind::Value,
                        env_name: None,
                    });
                }
            }
        }
        let dir = source.get("path").and_then(Node::as_str).unwrap_or("");
        for vf in helm.get("valueFiles").and_then(Node::as_seq).unwrap_or(&[]) {
            let Some(rel) = vf.as_str() else { continue };
            let Some(path) = crate::topology::index::join(dir.trim_start_matches("./"), rel, false)
            else {
                continue;
            };
            let Some(file) = files.iter().find(|f| *f.path == *path) else {
                continue;
            };
            let loc = |line: u32| Location::new(&file.path, line);
            for doc in file.documents.iter() {
                string_leaves(&format!("values file {path}"), &doc.root, 0, &loc, out);
            }
        }
    }
}

/// HelmRelease: every string of `values` (read as URLs and hosts) and the `valuesFrom` objects.
fn helm_release(root: &Node, at: &dyn Fn(u32) -> Location, out: &mut Vec<Reference>) {
    let Some(spec) = root.get("spec") else { return };
    if let Some(values) = spec.get("values") {
        let mut stack = vec![(String::from("values"), values)];
        while let Some((path, node)) = stack.pop() {
            if let Some(entries) = node.as_map() {
                for e in entries {
                    let key = e.key.as_str().unwrap_or("?");
                    if let Some(v) = e.value.as_str() {
                        out.push(Reference {
                            location: at(e.key.span.line),
                            what: format!("{path}.{key}"),
                            value: v.to_owned(),
                            kind: RefKind::Value,
                            env_name: None,
                        });
                    } else {
                        stack.push((format!("{path}.{key}"), &e.value));
                    }
                }
            } else if let Some(items) = node.as_seq() {
                for (i, item) in items.iter().enumerate() {
                    if let Some(v) = item.as_str() {
                        out.push(Reference {
                            location: at(item.span.line),
                            what: format!("{path}[{i}]"),
                            value: v.to_owned(),
                            kind: RefKind::Value,
                            env_name: None,
                        });
                    } else {
                        stack.push((format!("{path}[{i}]"), item));
                    }
                }
            }
        }
    }
    for item in spec.get("valuesFrom").and_then(Node::as_seq).unwrap_or(&[]) {
        let kind = item
            .get("kind")
            .and_then(Node::as_str)
            .unwrap_or("ConfigMap");
        if let Some(e) = item.entry("name") {
            out.extend(name_ref(format!("valuesFrom {kind}"), &e.value, &e.key, at));
        }
    }
}

fn env_entries(env: &Node, at: &dyn Fn(u32) -> Location, out: &mut Vec<Reference>) {
    for item in env.as_seq().unwrap_or(&[]) {
        let name = item.get("name").and_then(Node::as_str).unwrap_or("?");
        if let Some(value) = item.entry("value") {
            if let Some(v) = value.value.as_str() {
                out.push(Reference {
                    location: at(value.key.span.line),
                    what: format!("env {name}"),
                    value: v.to_owned(),
                    kind: RefKind::Value,
                    env_name: Some(name.to_owned()),
                });
            }
        }
    }
}

/// `literals` of the kustomize generator that creates this ConfigMap or Secret.
fn generator_literals(
    p: &Placement,
    files: &[SourceFile],
    by_path: &HashMap<&str, usize>,
    out: &mut Vec<Reference>,
) {
    let Some(f) = by_path.get(&*p.object.file).and_then(|&i| files.get(i)) else {
        return;
    };
    let Some(root) = f.documents.first().map(|d| &d.root) else {
        return;
    };
    for key in ["configMapGenerator", "secretGenerator"] {
        for g in root.get(key).and_then(Node::as_seq).unwrap_or(&[]) {
            let Some(name) = g.entry("name") else {
                continue;
            };
            if name.key.span.line != p.object.line {
                continue;
            }
            for lit in g.get("literals").and_then(Node::as_seq).unwrap_or(&[]) {
                if let Some((k, v)) = lit.as_str().and_then(|l| l.split_once('=')) {
                    out.push(Reference {
                        location: Location::new(&f.path, lit.span.line),
                        what: format!("literal {k}"),
                        value: v.to_owned(),
                        kind: RefKind::Value,
                        env_name: Some(k.to_owned()),
                    });
                }
            }
        }
    }
}

/// What both configuration-reference rules need from the placements, worked out once and
/// shared through the [`RuleContext`]. Reading an object's references walks the whole object;
/// each rule needs those of production and non-production workloads alike (its own, and the
/// other environment's to tell a workload's own ConfigMap names apart), so two separate passes
/// read every object twice each.
#[derive(Default, Clone)]
pub struct ReferencePass<'t> {
    by_path: HashMap<&'t str, usize>,
    /// Env var names a patch sets on an object: the base's value for them never lands.
    /// Only for the objects of crossings that an env var names ([`ReferencePass::overrides`]):
    /// at 5,000 apps, 40,000 patch entries for 71 crossings when kept for every patch.
    overridden: HashSet<(Identity<'t>, String)>,
    /// Per environment ([`slot`]): the ConfigMap and Secret names each workload uses where it
    /// runs there.
    local_names: [LocalNames<'t>; 2],
    /// The references of production and non-production workloads that point at the other
    /// environment, in placement order: what the rules turn into findings.
    crossings: Vec<Crossing>,
}

/// The ConfigMap and Secret names each workload (kind, name) uses.
type LocalNames<'t> = HashMap<(&'t str, Option<&'t str>), BTreeSet<String>>;

/// The environment a reference points at, and why ([`Classifier::classify`]).
type Verdict = Option<(Env, String)>;

/// An object on a cluster: what a patch and its base share.
type Identity<'t> = (usize, &'t str, Option<&'t str>, Option<&'t str>);

fn identity(p: &Placement) -> Identity<'_> {
    (
        p.cluster,
        &p.object.kind,
        p.object.name.as_deref(),
        p.object.namespace.as_deref(),
    )
}

/// A reference of the workload at `placement` that points at `env`, for `why`.
#[derive(Clone)]
struct Crossing {
    placement: usize,
    reference: Reference,
    env: Env,
    why: String,
    /// The object name's environment word is a weak one (`live`): a name the workload uses
    /// alike in both environments is then its own, not the other environment's.
    weak_word: bool,
}

/// Environment words that also mean other things in object names (`live-router-nginx-conf`,
/// `int-parser`, `stage-manager`): only these let a name used in both environments pass. A
/// strong word (`payments-db-prod-credentials`) names the other environment's object even when
/// production uses the same name.
const WEAK_WORDS: &[&str] = &["live", "int", "stage", "test", "tests", "testing", "review"];

/// Whether `r` names an object with a weak environment word ([`WEAK_WORDS`]).
fn has_weak_word(classifier: &Classifier, r: &Reference) -> bool {
    r.kind == RefKind::ObjectName
        && classifier
            .vocabulary
            .classify_workload(&r.value)
            .is_some_and(|m| WEAK_WORDS.contains(&m.token.as_str()))
}

/// Where an environment's entries are kept in [`ReferencePass::local_names`].
fn slot(env: Env) -> Option<usize> {
    match env {
        Env::Production => Some(0),
        Env::NonProduction => Some(1),
        Env::Unknown => None,
    }
}

impl<'t> ReferencePass<'t> {
    pub fn new(files: &'t [SourceFile], topology: &'t Topology, config: &Config) -> Self {
        let classifier = Classifier::new(config).with_served_hosts(served_hosts(files, topology));
        let by_path = paths_of(files);
        let runs = Self::runs(files, topology, &by_path, &classifier, |_| true);
        ReferencePass {
            by_path,
            ..ReferencePass::default()
        }
        .absorb(runs)
        .overrides(files, topology)
    }

    /// The passes of both sides of a diff-aware scan that judges them with one topology
    /// (`crate::topology::reuse`): a run of placements that reads no file the sides hold
    /// differently has the same references on both, so it is worked out once. A pull request
    /// changes a few files: this halves what the base's judging costs.
    pub fn for_both_sides(
        head: &'t [SourceFile],
        base: &'t [SourceFile],
        topology: &'t Topology,
        config: &Config,
    ) -> (Self, Self) {
        let same_paths =
            head.len() == base.len() && head.iter().zip(base).all(|(h, b)| h.path == b.path);
        let head_hosts = served_hosts(head, topology);
        let base_hosts = served_hosts(base, topology);
        if !same_paths || head_hosts != base_hosts {
            return rayon::join(
                || Self::new(head, topology, config),
                || Self::new(base, topology, config),
            );
        }
        let classifier = Classifier::new(config).with_served_hosts(head_hosts);
        // Files whose parse the sides do not share: an unchanged blob is parsed once.
        let differs: Vec<bool> = head
            .iter()
            .zip(base)
            .map(|(h, b)| !std::sync::Arc::ptr_eq(&h.documents, &b.documents))
            .collect();
        let (head_paths, base_paths) = (paths_of(head), paths_of(base));
        let reads_a_difference = |p: &Placement| match p.object.doc {
            // A copy that kustomize's edits made is the same on both sides (`edits_read_alike`).
            Some(r) => r.file() < topology.changed_from && differs.get(r.file()) != Some(&false),
            // A generated ConfigMap or Secret is read from its kustomization.
            None => head_paths
                .get(&*p.object.file)
                .is_none_or(|&i| differs.get(i) != Some(&false)),
        };
        let dirty: Vec<bool> = topology
            .placements
            .chunks(PLACEMENTS_PER_RUN)
            .map(|run| run.iter().any(reads_a_difference))
            .collect();
        let is_dirty = |run: usize| dirty.get(run) == Some(&true);
        let (shared, (head_runs, base_runs)) = rayon::join(
            || {
                Self::runs(head, topology, &head_paths, &classifier, |run| {
                    !is_dirty(run)
                })
            },
            || {
                rayon::join(
                    || Self::runs(head, topology, &head_paths, &classifier, is_dirty),
                    || Self::runs(base, topology, &base_paths, &classifier, is_dirty),
                )
            },
        );
        let shared = ReferencePass::default().absorb(shared);
        let mut head_pass = shared.clone().absorb(head_runs);
        let mut base_pass = shared.absorb(base_runs);
        head_pass.by_path = head_paths;
        base_pass.by_path = base_paths;
        rayon::join(
            || head_pass.overrides(head, topology),
            || base_pass.overrides(base, topology),
        )
    }

    /// The passes of the runs of placements that `wanted` picks (by run index), on all cores.
    fn runs(
        files: &'t [SourceFile],
        topology: &'t Topology,
        by_path: &HashMap<&'t str, usize>,
        classifier: &Classifier,
        wanted: impl Fn(usize) -> bool + Sync,
    ) -> Vec<ReferencePass<'t>> {
        use rayon::prelude::*;
        topology
            .placements
            .par_chunks(PLACEMENTS_PER_RUN)
            .enumerate()
            .filter(|(run, _)| wanted(*run))
            .map(|(run, placements)| {
                let first = run * PLACEMENTS_PER_RUN;
                Self::of_run(files, topology, by_path, classifier, first, placements)
            })
            .collect()
    }

    /// Adds the runs' results. Crossings stay in placement order, as if one pass had made
    /// them all: runs come in order, and a later addition is sorted into place.
    fn absorb(mut self, runs: Vec<ReferencePass<'t>>) -> Self {
        let in_order = |pass: &Self| pass.crossings.last().map(|c| c.placement);
        let mut sorted = true;
        for mut run in runs {
            sorted &= match (in_order(&self), run.crossings.first()) {
                (Some(last), Some(next)) => last <= next.placement,
                _ => true,
            };
            for (all, of_run) in self.local_names.iter_mut().zip(run.local_names) {
                for (object, mut names) in of_run {
                    all.entry(object).or_default().append(&mut names);
                }
            }
            self.crossings.append(&mut run.crossings);
        }
        if !sorted {
            // Stable: a placement's crossings keep their order.
            self.crossings.sort_by_key(|c| c.placement);
        }
        self
    }

    /// The env var names that patches set on the objects of the crossings an env var names:
    /// the only ones [`ReferencePass::overridden`] is asked about.
    fn overrides(mut self, files: &'t [SourceFile], topology: &'t Topology) -> Self {
        use rayon::prelude::*;
        let wanted: HashSet<Identity<'t>> = self
            .crossings
            .iter()
            .filter(|c| c.reference.env_name.is_some())
            .map(|c| &topology.placements[c.placement])
            .filter(|p| !p.patch)
            .map(identity)
            .collect();
        if wanted.is_empty() {
            return self;
        }
        let by_path = &self.by_path;
        let overridden: Vec<(Identity<'t>, String)> = topology
            .placements
            .par_iter()
            .filter(|p| p.patch && wanted.contains(&identity(p)))
            .flat_map_iter(|p| {
                let mut names: Vec<String> = references(p, topology, files, by_path)
                    .into_iter()
                    .filter_map(|r| r.env_name)
                    .collect();
                // Env vars a patch gives from elsewhere (`valueFrom`) replace the base's too,
                // and a list it replaces whole (`$patch: replace`) replaces all of them.
                if let Some(doc) = p.object.doc.and_then(|r| topology.document(files, r)) {
                    names.extend(patch_env_names(&doc.root));
                }
                names.into_iter().map(move |name| (identity(p), name))
            })
            .collect();
        self.overridden.extend(overridden);
        self
    }

    /// The pass over `placements`, the first of which is placement `first`.
    fn of_run(
        files: &'t [SourceFile],
        topology: &'t Topology,
        by_path: &HashMap<&'t str, usize>,
        classifier: &Classifier,
        first: usize,
        placements: &'t [Placement],
    ) -> Self {
        let mut pass = ReferencePass::default();
        // References are worked out per placement as the pass reaches it, not kept for all
        // placements at once: at 1,000 applications they were megabytes at the scan's peak.
        let mut refs = LastReferences::new(files, topology, by_path);
        for (at, p) in placements.iter().enumerate() {
            let class = slot(p.workload_class);
            let Some(class) = class else { continue };
            let (references, classes) = refs.of(p, classifier);
            // A name used alike in both environments is that workload's own, on every cluster
            // (each cluster has its own object of that name), not a pointer into the other
            // environment. Paths in external secret stores are not: clusters may share the
            // store. Only names with a weak word are kept: no other crossing looks them up.
            for (r, _) in references
                .iter()
                .zip(classes)
                .filter(|(r, c)| c.is_some() && names_a_local_object(r))
                .filter(|(r, _)| has_weak_word(classifier, r))
            {
                pass.local_names[class]
                    .entry((p.object.kind.as_str(), p.object.name.as_deref()))
                    .or_default()
                    .insert(r.value.clone());
            }
            for (r, class_of_r) in references.iter().zip(classes) {
                let Some((env, why)) = class_of_r else {
                    continue;
                };
                if *env != p.workload_class {
                    let weak_word = has_weak_word(classifier, r);
                    pass.crossings.push(Crossing {
                        placement: first + at,
                        reference: r.clone(),
                        env: *env,
                        why: why.clone(),
                        weak_word,
                    });
                }
            }
        }
        pass
    }
}

/// Each file's index, by path.
fn paths_of(files: &[SourceFile]) -> HashMap<&str, usize> {
    files
        .iter()
        .enumerate()
        .map(|(i, f)| (&*f.path, i))
        .collect()
}

/// What [`ReferencePass::overridden`] holds for a patch that replaces an env list whole.
const ALL_ENV: &str = "$patch: replace";

/// The env var names a strategic-merge patch sets (by `value` or `valueFrom`), and
/// [`ALL_ENV`] when it replaces an env list whole.
fn patch_env_names(root: &Node) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        if let Some(entries) = node.as_map() {
            for e in entries {
                if e.key.as_str() == Some("env") {
                    for item in e.value.as_seq().unwrap_or(&[]) {
                        if item.get("$patch").and_then(Node::as_str) == Some("replace") {
                            out.push(ALL_ENV.to_owned());
                        } else if let Some(name) = item.get("name").and_then(Node::as_str) {
                            out.push(name.to_owned());
                        }
                    }
                } else {
                    stack.push(&e.value);
                }
            }
        } else if let Some(items) = node.as_seq() {
            stack.extend(items.iter());
        }
    }
    out
}

/// Placements per run of [`ReferencePass::new`]: enough that a run's start-up costs nothing
/// next to its work, few enough that the runs spread over the cores.
const PLACEMENTS_PER_RUN: usize = 512;

/// The shared check: workloads of class `workload` whose references point at `target`. One
/// finding per (line, cluster).
pub fn check(
    ctx: &RuleContext<'_>,
    rule: RuleId,
    severity: Severity,
    workload: Env,
    target: Env,
) -> Vec<Finding> {
    let t = ctx.topology;
    let (Some(pass), Some(target_slot)) = (&ctx.reference_pass, slot(target)) else {
        return Vec::new();
    };
    let mut seen = BTreeSet::new();
    let mut findings = Vec::new();
    for crossing in &pass.crossings {
        let p = &t.placements[crossing.placement];
        let r = &crossing.reference;
        if p.workload_class != workload || crossing.env != target {
            continue;
        }
        // Env vars that a patch sets on an object: the base's value for them never lands.
        let is_overridden = !p.patch
            && r.env_name.as_ref().is_some_and(|name| {
                pass.overridden.contains(&(identity(p), name.clone()))
                    || pass.overridden.contains(&(identity(p), ALL_ENV.to_owned()))
            });
        let used_alike = crossing.weak_word
            && names_a_local_object(r)
            && pass.local_names[target_slot]
                .get(&(p.object.kind.as_str(), p.object.name.as_deref()))
                .is_some_and(|values| values.contains(&r.value));
        if is_overridden || used_alike {
            continue;
        }
        let why = &crossing.why;
        let c = &t.clusters[p.cluster];
        let message = format!(
            "{} {} {} on cluster {} refers to {} {}: {} = `{}` ({why})",
            p.workload_class,
            object_label(p),
            if p.patch { "(patch)" } else { "" },
            c.name,
            target,
            if r.kind == RefKind::ObjectName {
                "config"
            } else {
                "endpoints"
            },
            r.what,
            r.value
        )
        .replace("  ", " ");
        // A rendered value points at the values line that sets it, when one does.
        let origin = t
            .is_rendered(p)
            .then(|| value_origin(t, p, r, ctx.files, &pass.by_path))
            .flatten();
        let location = origin
            .as_ref()
            .map_or_else(|| r.location.clone(), |o| o.location.clone());
        // One finding per line to change and cluster: renders of one template with
        // different values are told apart by the values line that set each.
        if !seen.insert((location.clone(), p.cluster)) {
            continue;
        }
        let mut f = Finding::new(rule, severity, location, message)
            .resource(resource_of(p, ctx.topology, ctx.files))
            .subject(&p.object.file, p.object.line)
            .cluster(c.name.clone(), c.environment.as_str())
            .discriminator(&r.what);
        for hop in &p.evidence {
            f = f.hop(hop);
        }
        match origin {
            Some(o) => {
                f = f.evidence(
                    r.location.clone(),
                    format!(
                        "{} = {}, rendered at {}:{} from {}",
                        r.what, r.value, r.location.file, r.location.line, o.note
                    ),
                );
                f = f.evidence(o.location, o.note);
            }
            None => {
                f = f.evidence(r.location.clone(), format!("{} = {}", r.what, r.value));
            }
        }
        findings.push(f);
    }
    findings
}

/// [`references`] of the placement asked about last, with the environment each points at,
/// kept for the next one. Placements are sorted by file and line, so a document placed on
/// several clusters comes up several times in a row, and its references are the same each
/// time when its kind and images are. Keeping just the last answer saves that work without
/// holding every placement's references at once.
struct LastReferences<'a, 'p> {
    files: &'a [SourceFile],
    topology: &'a Topology,
    by_path: &'a HashMap<&'a str, usize>,
    last: Option<(&'p Placement, Vec<Reference>, Vec<Verdict>)>,
}

impl<'a, 'p> LastReferences<'a, 'p> {
    fn new(
        files: &'a [SourceFile],
        topology: &'a Topology,
        by_path: &'a HashMap<&'a str, usize>,
    ) -> Self {
        LastReferences {
            files,
            topology,
            by_path,
            last: None,
        }
    }

    fn of(&mut self, p: &'p Placement, classifier: &Classifier) -> (&[Reference], &[Verdict]) {
        let same = |q: &Placement| {
            p.object.doc.is_some()
                && q.object.doc == p.object.doc
                && q.object.kind == p.object.kind
                && q.object.file == p.object.file
                && q.object.images == p.object.images
                && q.renders_chart == p.renders_chart
        };
        if !self.last.as_ref().is_some_and(|(q, _, _)| same(q)) {
            let refs = references(p, self.topology, self.files, self.by_path);
            let classes = refs.iter().map(|r| classifier.classify(r)).collect();
            self.last = Some((p, refs, classes));
        }
        self.last.as_ref().map_or((&[], &[]), |(_, refs, classes)| {
            (refs.as_slice(), classes.as_slice())
        })
    }
}

/// A reference to a ConfigMap or Secret of the workload's own namespace (not a path in an
/// external secret store, which clusters may share).
fn names_a_local_object(r: &Reference) -> bool {
    r.kind == RefKind::ObjectName
        && matches!(
            r.what.as_str(),
            "configMapRef"
                | "secretRef"
                | "configMapKeyRef"
                | "secretKeyRef"
                | "configMap volume"
                | "secret volume"
        )
}

/// The values-file line, inline `values:` block or parameter that set a rendered value: the
/// value itself, or the part the finding is about (a URL's host, an image's tag).
fn value_origin(
    t: &crate::topology::Topology,
    p: &Placement,
    r: &Reference,
    files: &[SourceFile],
    by_path: &HashMap<&str, usize>,
) -> Option<crate::topology::helm_values::Origin> {
    let sources = t.value_sources(p)?;
    let parts = match r.kind {
        RefKind::Value => hosts_in(&r.value),
        RefKind::Image => {
            let (_, tag) = split_image(&r.value);
            let tag = tag.strip_prefix(':').and_then(|t| t.split('@').next());
            tag.map(str::to_owned).into_iter().collect()
        }
        RefKind::ObjectName => Vec::new(),
    };
    let wanted = crate::topology::helm_values::Wanted {
        value: &r.value,
        parts,
    };
    sources.origin(files, by_path, &wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_urls_and_connection_strings() {
        assert_eq!(
            hosts_in("postgres://u:p@orders-db.prod.acme.internal:5432/orders"),
            vec!["orders-db.prod.acme.internal"]
        );
        assert_eq!(
            hosts_in("jdbc:postgresql://db.staging.x:5432/a"),
            vec!["db.staging.x"]
        );
        assert_eq!(hosts_in("redis://cache:6379/0"), vec!["cache"]);
        assert_eq!(
            hosts_in("api.prod.example.com"),
            vec!["api.prod.example.com"]
        );
        assert!(hosts_in("debug").is_empty());
        assert!(hosts_in("0 3 * * *").is_empty());
        assert!(hosts_in("1.2.3").is_empty());
    }

    fn verdict(kind: RefKind, value: &str) -> Option<Env> {
        let r = Reference {
            location: Location::new(&std::sync::Arc::from("x.yaml"), 1),
            what: "x".into(),
            value: value.into(),
            kind,
            env_name: None,
        };
        Classifier::new(&Config::default())
            .classify(&r)
            .map(|(env, _)| env)
    }

    #[test]
    fn image_tags_count_when_an_environment_word_leads() {
        for tag in ["prod", "production-4f2a", "staging", "pr-42-abc"] {
            assert!(
                verdict(RefKind::Image, &format!("acme/web:{tag}")).is_some(),
                "{tag}"
            );
        }
        for tag in ["2023-10-03-114937-production", "1.2.3-prod", "latest"] {
            assert_eq!(
                verdict(RefKind::Image, &format!("acme/web:{tag}")),
                None,
                "{tag}"
            );
        }
    }

    #[test]
    fn single_label_hosts_are_services_of_the_namespace() {
        assert_eq!(verdict(RefKind::Value, "http://govspeak-preview"), None);
        assert_eq!(verdict(RefKind::Value, "redis://cache-prod:6379"), None);
        assert_eq!(
            verdict(RefKind::Value, "s3://govuk-production-database-backups"),
            Some(Env::Production)
        );
        assert_eq!(
            verdict(RefKind::Value, "https://api.prod.example.com"),
            Some(Env::Production)
        );
    }

    #[test]
    fn registries_are_hosts_and_a_tld_is_no_environment() {
        assert_eq!(
            verdict(
                RefKind::Image,
                "registry.staging.acme.io/shop/cleanup:1.0.3"
            ),
            Some(Env::NonProduction)
        );
        // Google's Artifact Registry is under `.dev`; Docker Hub names have no registry.
        assert_eq!(
            verdict(
                RefKind::Image,
                "us-docker.pkg.dev/google-samples/gb-frontend:v5"
            ),
            None
        );
        assert_eq!(verdict(RefKind::Image, "prod/app:1.0"), None);
        assert_eq!(verdict(RefKind::Value, "https://status.example.live"), None);
        assert_eq!(
            verdict(RefKind::Value, "postgres://db.dev:5432/x"),
            Some(Env::NonProduction)
        );
    }
}
