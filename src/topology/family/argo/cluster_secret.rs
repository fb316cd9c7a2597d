//! Argo CD cluster Secrets (`argocd.argoproj.io/secret-type: cluster`), also inside a
//! SealedSecret or ExternalSecret template: each declares a cluster with its labels.

use std::collections::BTreeMap;

use base64::Engine as _;

use crate::documents::{Document, Node};
use crate::location::Location;
use crate::topology::index::RepoIndex;
use crate::topology::inventory::clusters::Inventory;

/// Declares the cluster of every Argo CD cluster Secret of the repository.
pub fn declare(index: &RepoIndex<'_>, inv: &mut Inventory) {
    for (_, doc) in index.all_docs() {
        if let Some(secret) = argo_cluster_secret(doc) {
            let c = inv.declare(
                secret.name.as_deref(),
                secret.server.as_deref(),
                secret.labels,
                Some(Location::new(&doc.file, secret.line)),
                None,
            );
            let cluster = &mut inv.clusters[c];
            for (k, v) in secret.annotations {
                cluster.annotations.entry(k).or_insert(v);
            }
            cluster.argo_known = true;
        }
    }
}

struct ClusterSecret {
    name: Option<String>,
    server: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    line: u32,
}

/// The metadata and (plain) data of a Secret template inside a wrapper object.
fn wrapped(template: Option<&Node>) -> (Option<&Node>, Vec<(&Node, bool)>) {
    (
        template.and_then(|t| t.get("metadata")),
        template
            .and_then(|t| t.get("data"))
            .map(|d| vec![(d, false)])
            .unwrap_or_default(),
    )
}

/// An Argo CD cluster Secret, also inside a SealedSecret or ExternalSecret template. (Why
/// `reuse::PLAIN_KINDS` has no Secrets.)
fn argo_cluster_secret(doc: &Document) -> Option<ClusterSecret> {
    const LABEL: &str = "argocd.argoproj.io/secret-type";
    let kind = doc.id.kind.as_deref()?;
    let (metadata, data_nodes): (Option<&Node>, Vec<(&Node, bool)>) = match kind {
        "Secret" => (
            doc.root.get("metadata"),
            [("stringData", false), ("data", true)]
                .into_iter()
                .filter_map(|(k, b64)| Some((doc.root.get(k)?, b64)))
                .collect(),
        ),
        // Wrapped Secrets carry the real Secret's labels and data in a template.
        "SealedSecret" => wrapped(doc.root.get("spec").and_then(|s| s.get("template"))),
        "ExternalSecret" => wrapped(
            doc.root
                .get("spec")
                .and_then(|s| s.get("target"))
                .and_then(|t| t.get("template")),
        ),
        _ => return None,
    };
    let map_at = |key: &str| -> BTreeMap<String, String> {
        metadata
            .and_then(|m| m.get(key))
            .map(|l| l.string_map().into_iter().collect())
            .unwrap_or_default()
    };
    let labels = map_at("labels");
    if labels.get(LABEL).map(String::as_str) != Some("cluster") {
        return None;
    }
    let field = |key: &str| -> Option<(String, u32)> {
        data_nodes.iter().find_map(|(node, b64)| {
            let entry = node.entry(key)?;
            let raw = entry.value.as_str()?;
            let value = if *b64 {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(raw.trim())
                    .ok()?;
                String::from_utf8(bytes).ok()?
            } else {
                raw.to_owned()
            };
            // Templated values (`{{ .name }}`) say nothing statically.
            (!value.contains("{{")).then_some((value, entry.key.span.line))
        })
    };
    let name = field("name");
    let server = field("server");
    // Without a readable name, a wrapped Secret is known by its own name.
    let fallback_name = doc
        .id
        .name
        .as_deref()
        .map(|n| n.strip_prefix("cluster-").unwrap_or(n).to_owned());
    let line = name
        .as_ref()
        .map(|(_, l)| *l)
        .or(server.as_ref().map(|(_, l)| *l))
        .unwrap_or(doc.first_line);
    Some(ClusterSecret {
        name: name.map(|(n, _)| n).or(if server.is_none() {
            fallback_name
        } else {
            None
        }),
        server: server.map(|(s, _)| s),
        labels: labels.into_iter().filter(|(k, _)| k != LABEL).collect(),
        annotations: map_at("annotations"),
        line,
    })
}
