//! Input building: the topology as Rego values, made once per scan and shared by its
//! evaluations. Each placement's `input` (docs/policies-rego.md "What a policy sees"), and
//! `data.envfence`: the clusters, the placements by cluster, what was left unresolved and the
//! config. Keys and repeated strings are made once, since a large repository's inputs hold
//! millions of them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use rayon::prelude::*;
use regorus::Value;

use crate::rules::RuleContext;
use crate::topology::{Cluster, DocRef, Placement, Topology};

/// `input.cluster.tier` (DESIGN §3): `null` for a non-production cluster with no tier signal.
pub fn cluster_tier(cluster: &Cluster) -> Option<String> {
    cluster.tier().map(|t| t.to_string())
}

/// `input.workload.purpose` and the signal that decided it (none when nothing did).
pub fn workload_purpose(placement: &Placement) -> (String, Option<String>) {
    let reason =
        (!placement.purpose_reason.is_empty()).then(|| placement.purpose_reason.to_string());
    (placement.purpose().to_string(), reason)
}

pub(super) fn s(text: &str) -> Value {
    Value::from(text)
}

fn opt(text: Option<&str>) -> Value {
    text.map_or(Value::Null, Value::from)
}

fn num(n: u32) -> Value {
    Value::from(u64::from(n))
}

/// An object of a few entries. Inserting one by one costs less than collecting, which
/// buffers and sorts the entries first.
pub(super) fn object<const N: usize>(entries: [(&Value, Value); N]) -> Value {
    let mut map = BTreeMap::new();
    for (key, value) in entries {
        map.insert(key.clone(), value);
    }
    Value::from(map)
}

fn string_map(map: &BTreeMap<String, String>) -> Value {
    let mut values = BTreeMap::new();
    for (k, v) in map {
        values.insert(s(k), s(v));
    }
    Value::from(values)
}

/// The value under `key` of an object; `None` for anything else.
pub(super) fn field<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    value.as_object().ok()?.get(&s(key))
}

/// A YAML node as a Rego value, with YAML 1.2 core scalars (as Kubernetes reads them).
fn node_value(node: &crate::documents::Node, strings: &mut Strings) -> Value {
    use crate::documents::yaml::{ScalarKind, Value as Yaml};
    match &node.value {
        Yaml::Map(entries) => {
            // Inserted one by one (a later duplicate key wins, as with `collect`), which
            // costs less than collecting: that buffers and sorts the entries first.
            let mut map = BTreeMap::new();
            for e in entries {
                if let Some(key) = e.key.as_str() {
                    map.insert(strings.get(key), node_value(&e.value, strings));
                }
            }
            Value::from(map)
        }
        Yaml::Seq(items) => Value::from(
            items
                .iter()
                .map(|item| node_value(item, strings))
                .collect::<Vec<_>>(),
        ),
        Yaml::Scalar(text) => {
            if node.scalar_kind() != ScalarKind::Plain {
                return s(text);
            }
            // Most plain scalars are words: only these first characters can start a null, a
            // boolean or a number.
            // (`inf` and `nan` parse as numbers, but are kept as strings: not finite.)
            let may_be_other = match text.as_bytes().first() {
                None => true,
                Some(first) => matches!(
                    first,
                    b'~' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'0'
                        ..=b'9' | b'-' | b'+' | b'.'
                ),
            };
            if !may_be_other {
                return s(text);
            }
            match text.as_str() {
                "" | "~" | "null" | "Null" | "NULL" => Value::Null,
                "true" | "True" | "TRUE" => Value::Bool(true),
                "false" | "False" | "FALSE" => Value::Bool(false),
                t => t
                    .parse::<i64>()
                    .map(Value::from)
                    .ok()
                    .or_else(|| {
                        t.parse::<f64>()
                            .ok()
                            .filter(|f| f.is_finite())
                            .map(Value::from)
                    })
                    .unwrap_or_else(|| s(t)),
            }
        }
    }
}

/// Strings made once per thread: the values of a large repository repeat the same keys,
/// kinds, files and namespaces thousands of times, and each new string is an allocation.
#[derive(Default)]
struct Strings(crate::topology::HashMap<Box<str>, Value>);

impl Strings {
    fn get(&mut self, text: &str) -> Value {
        if let Some(value) = self.0.get(text) {
            return value.clone();
        }
        let value = s(text);
        self.0.insert(text.into(), value.clone());
        value
    }
}

/// The keys of the objects envfence builds, made once: each `Value::from(&str)` is an
/// allocation, and the inputs of a large repository hold millions of keys.
macro_rules! keys {
    ($($key:ident),* $(,)?) => {
        struct Keys {
            $($key: Value,)*
        }

        fn keys() -> &'static Keys {
            static KEYS: OnceLock<Keys> = OnceLock::new();
            KEYS.get_or_init(|| Keys {
                $($key: s(stringify!($key)),)*
            })
        }
    };
}

keys!(
    aliases,
    annotations,
    api_version,
    class,
    class_signal,
    cluster,
    cluster_environment,
    clusters,
    config,
    deployer,
    environment,
    environment_reason,
    environment_signal,
    evidence,
    file,
    image,
    images,
    kind,
    labels,
    line,
    manifest,
    name,
    namespace,
    note,
    object,
    opaque,
    placements,
    purpose,
    purpose_reason,
    purpose_signal,
    reason,
    rendered,
    server,
    tier,
    unresolved,
    workload,
    workload_class,
    workload_class_reason,
);

/// What every evaluation of one scan shares: the topology as Rego values.
pub(super) struct Shared<'a> {
    ctx: &'a RuleContext<'a>,
    /// Per document: what its placements share.
    documents: HashMap<DocRef, DocumentValues>,
    clusters: Vec<Value>,
    /// `input.object` of each placement, by index (`null` for patches).
    pub(super) objects: Vec<Value>,
    /// `data.envfence`, and the repository-level `input` (the same document).
    pub(super) topology: Value,
}

/// The Rego values of a workspace's documents, made ahead of the placements ([`prepare`]).
pub struct Prepared(crate::topology::HashMap<DocRef, DocumentValues>);

/// The Rego values of every manifest of `files`: made while the topology is built, on cores
/// its worklist leaves idle. A placed document that is not among them is made when needed.
pub fn prepare(files: &[crate::documents::SourceFile]) -> Prepared {
    let docs: Vec<(DocRef, &crate::documents::Document)> = files
        .iter()
        .enumerate()
        .flat_map(|(file, f)| {
            f.documents
                .iter()
                .enumerate()
                .filter(|(_, d)| d.is_manifest())
                .map(move |(doc, d)| (DocRef::new(file, doc), d))
        })
        .collect();
    Prepared(
        docs.par_iter()
            .map_init(Strings::default, |strings, (r, d)| {
                (*r, DocumentValues::of(d, strings))
            })
            .collect(),
    )
}

/// What every placement of one document shares.
#[derive(Clone)]
struct DocumentValues {
    manifest: Value,
    api_version: Value,
    labels: Value,
    annotations: Value,
}

impl DocumentValues {
    fn of(doc: &crate::documents::Document, strings: &mut Strings) -> DocumentValues {
        DocumentValues {
            manifest: node_value(&doc.root, strings),
            api_version: opt(doc.id.api_version.as_deref()),
            labels: string_map(&doc.labels),
            annotations: string_map(&doc.annotations),
        }
    }
}

impl<'a> Shared<'a> {
    pub(super) fn new(ctx: &'a RuleContext<'a>, prepared: Option<Prepared>) -> Shared<'a> {
        let t = ctx.topology;
        let docs: Vec<DocRef> = t
            .placements
            .iter()
            .filter_map(|p| p.object.doc)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let documents: HashMap<DocRef, DocumentValues> = docs
            .par_iter()
            .map_init(Strings::default, |strings, r| {
                if let Some(made) = prepared.as_ref().and_then(|p| p.0.get(r)) {
                    return Some((*r, made.clone()));
                }
                let doc = ctx.topology.document(ctx.files, *r)?;
                Some((*r, DocumentValues::of(doc, strings)))
            })
            .flatten()
            .collect();
        // The documents no placement needed.
        crate::background::drop_in_background(prepared);
        let clusters: Vec<Value> = t.clusters.iter().map(cluster_value).collect();
        let mut shared = Shared {
            ctx,
            documents,
            clusters,
            objects: Vec::new(),
            topology: Value::Null,
        };
        // Each placement's `input.object`, built once for its evaluation and for the data.
        shared.objects = t
            .placements
            .par_iter()
            .map_init(Strings::default, |strings, p| {
                if p.patch {
                    Value::Null
                } else {
                    shared.object_value(p, strings)
                }
            })
            .collect();
        shared.topology = shared.topology_value(t);
        shared
    }

    /// Frees the values on a thread of their own: that takes a while, and the report need
    /// not wait for it.
    pub(super) fn drop_in_background(self) {
        let values = (self.documents, self.objects, self.topology);
        crate::background::drop_in_background(values);
    }

    fn object_value(&self, p: &Placement, strings: &mut Strings) -> Value {
        let k = keys();
        let doc = p.object.doc.and_then(|r| self.documents.get(&r));
        let images: Vec<Value> = p
            .object
            .images
            .iter()
            .map(|(image, line)| object([(&k.image, s(image)), (&k.line, num(*line))]))
            .collect();
        let of_doc = |get: fn(&DocumentValues) -> &Value, absent: fn() -> Value| {
            doc.map_or_else(absent, |d| get(d).clone())
        };
        object([
            (&k.api_version, of_doc(|d| &d.api_version, || Value::Null)),
            (&k.kind, strings.get(&p.object.kind)),
            (&k.name, opt(p.object.name.as_deref())),
            (
                &k.namespace,
                p.object
                    .namespace
                    .as_deref()
                    .map_or(Value::Null, |n| strings.get(n)),
            ),
            (&k.labels, of_doc(|d| &d.labels, Value::new_object)),
            (
                &k.annotations,
                of_doc(|d| &d.annotations, Value::new_object),
            ),
            (&k.file, strings.get(&p.object.file)),
            (&k.line, num(p.object.line)),
            (&k.images, Value::from(images)),
            // For `data.envfence.placements`, where no `input.workload` sits beside it: `class`,
            // and the topology JSON's names (`envfence topology --format json`).
            (&k.class, strings.get(p.workload_class.as_str())),
            (&k.workload_class, strings.get(p.workload_class.as_str())),
            (
                &k.cluster_environment,
                strings.get(p.cluster_environment.as_str()),
            ),
            (&k.purpose, strings.get(p.purpose().as_str())),
            (
                &k.deployer,
                p.deployer.as_ref().map_or(Value::Null, |d| {
                    strings.get(&format!("{}/{}", d.kind, d.name))
                }),
            ),
            (&k.manifest, of_doc(|d| &d.manifest, || Value::Null)),
        ])
    }

    fn workload_value(p: &Placement) -> Value {
        let k = keys();
        let (purpose, purpose_signal) = workload_purpose(p);
        object([
            (&k.class, s(p.workload_class.as_str())),
            (
                &k.class_signal,
                if p.class_reason.is_empty() {
                    Value::Null
                } else {
                    s(&p.class_reason)
                },
            ),
            (&k.purpose, s(&purpose)),
            (&k.purpose_signal, opt(purpose_signal.as_deref())),
        ])
    }

    pub(super) fn placement_input(&self, object_value: Value, p: &Placement) -> Value {
        let k = keys();
        let deployer = p.deployer.as_ref().map_or(Value::Null, |d| {
            object([
                (&k.kind, s(d.kind.as_str())),
                (&k.name, s(&d.name)),
                (&k.file, s(&d.location.file)),
                (&k.line, num(d.location.line)),
            ])
        });
        let evidence: Vec<Value> = p.evidence.iter().map(hop_value).collect();
        object([
            (&k.object, object_value),
            (&k.cluster, self.cluster_of(p)),
            (&k.workload, Self::workload_value(p)),
            (&k.deployer, deployer),
            (&k.evidence, Value::from(evidence)),
            (&k.opaque, Value::Bool(p.opaque)),
            (&k.rendered, Value::Bool(self.ctx.topology.is_rendered(p))),
            // The same facts under the names and values of a placement of the topology JSON
            // (`envfence topology --format json`); the names above stay.
            (&k.cluster_environment, s(p.cluster_environment.as_str())),
            (&k.workload_class, s(p.workload_class.as_str())),
            (&k.workload_class_reason, s(&p.class_reason)),
            (&k.purpose, s(p.purpose().as_str())),
            (&k.purpose_reason, s(&p.purpose_reason)),
        ])
    }

    /// The placement's cluster, with the environment the placement gives it (an unknown
    /// cluster that receives production is production).
    pub(super) fn cluster_of(&self, p: &Placement) -> Value {
        let mut cluster = self.clusters.get(p.cluster).cloned().unwrap_or(Value::Null);
        let environment = s(p.cluster_environment.as_str());
        let differs = field(&cluster, "environment").is_some_and(|e| *e != environment);
        if differs {
            if let Ok(map) = cluster.as_object_mut() {
                map.insert(keys().environment.clone(), environment);
            }
        }
        cluster
    }

    fn topology_value(&self, t: &Topology) -> Value {
        let k = keys();
        let mut by_cluster: BTreeMap<Value, Vec<Value>> = t
            .clusters
            .iter()
            .map(|c| (s(&c.name), Vec::new()))
            .collect();
        for (p, object) in t.placements.iter().zip(&self.objects) {
            let Some(cluster) = t.clusters.get(p.cluster).filter(|_| !p.patch) else {
                continue;
            };
            let entry = object.clone();
            by_cluster.entry(s(&cluster.name)).or_default().push(entry);
        }
        let placements: BTreeMap<Value, Value> = by_cluster
            .into_iter()
            .map(|(k, v)| (k, Value::from(v)))
            .collect();
        let unresolved: Vec<Value> = t
            .unresolved
            .iter()
            .map(|u| {
                object([
                    (&k.file, s(&u.location.file)),
                    (&k.line, num(u.location.line)),
                    (&k.reason, s(&u.reason)),
                ])
            })
            .collect();
        let config = self
            .ctx
            .config
            .source
            .as_ref()
            .and_then(|source| source.root.as_ref())
            .map_or_else(Value::new_object, |root| {
                node_value(root, &mut Strings::default())
            });
        object([
            (&k.clusters, Value::from(self.clusters.clone())),
            (&k.placements, Value::from(placements)),
            (&k.unresolved, Value::from(unresolved)),
            (&k.config, config),
        ])
    }
}

/// The part of a placement's input most indexes read.
pub(super) fn object_and_cluster(object: Value, cluster: Value) -> Value {
    let k = keys();
    self::object([(&k.object, object), (&k.cluster, cluster)])
}

fn hop_value(hop: &crate::findings::Evidence) -> Value {
    let k = keys();
    object([
        (&k.file, s(&hop.location.file)),
        (&k.line, num(hop.location.line)),
        (&k.note, s(&hop.hop.to_string())),
    ])
}

fn cluster_value(c: &Cluster) -> Value {
    let k = keys();
    object([
        (&k.name, s(&c.name)),
        (&k.server, opt(c.server.as_deref())),
        (
            &k.aliases,
            Value::from(c.aliases.iter().map(|a| s(a)).collect::<Vec<_>>()),
        ),
        (&k.labels, string_map(&c.labels)),
        (&k.environment, s(c.environment.as_str())),
        (&k.environment_signal, s(&c.env_reason)),
        // `environment_signal` by the topology JSON's name.
        (&k.environment_reason, s(&c.env_reason)),
        (&k.tier, opt(cluster_tier(c).as_deref())),
    ])
}
