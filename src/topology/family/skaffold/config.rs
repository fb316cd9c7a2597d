//! Skaffold's `Config` documents as data: their `requires`, their profiles, and what a config
//! deploys once its active profiles apply (their JSON patches, then their sections over the
//! config's own, mapping keys merged and lists replaced, as Skaffold overlays a profile).

use crate::documents::yaml::Entry as YamlEntry;
use crate::documents::{Document, Node, Value};
use crate::topology::expand::kustomize::json_patch;
use crate::topology::family::api_in;
use crate::topology::index::{self, DocRef, RepoIndex};

/// Whether a document is a Skaffold `Config` (`skaffold/v2beta3`, `skaffold/v4beta11`).
pub(super) fn is_config(d: &Document) -> bool {
    d.id.kind.as_deref() == Some("Config") && api_in(d, "skaffold")
}

/// One `Config` document of the repository.
pub(super) struct SkConfig<'a> {
    pub doc: DocRef,
    pub d: &'a Document,
    /// `metadata.name`, or the file's path when it has none.
    pub name: String,
    /// Whether `metadata.name` is set (only named configs can be required by name).
    pub named: bool,
    /// The config's folder: its relative paths start here.
    pub dir: String,
    pub requires: Vec<Require>,
    pub profiles: Vec<Profile<'a>>,
}

/// A `requires` entry.
pub(super) struct Require {
    pub line: u32,
    /// The local file it reads (`path:`), repository-relative; `None`: this file.
    pub path: Option<String>,
    /// The path as written, for notes.
    pub written: Option<String>,
    /// `configs:` names; empty: every config of the file.
    pub configs: Vec<String>,
    /// `activeProfiles`: a profile to activate, and the parent's profiles that activate it
    /// (none: always).
    pub active: Vec<(String, Vec<String>)>,
    /// A remote source (`git`, `googleCloudStorage`, ...) and what it names.
    pub remote: Option<(String, String)>,
}

/// A profile of a config.
pub(super) struct Profile<'a> {
    pub name: String,
    pub line: u32,
    pub node: &'a Node,
}

impl Profile<'_> {
    /// `activation[].kubeContext`, with its line.
    pub fn activation_context(&self) -> Option<(&str, u32)> {
        seq(self.node.get("activation")).iter().find_map(|a| {
            let e = a.entry("kubeContext")?;
            Some((e.value.as_str()?, e.key.span.line))
        })
    }

    /// `activation[].env` conditions.
    pub fn activation_envs(&self) -> Vec<(&str, u32)> {
        seq(self.node.get("activation"))
            .iter()
            .filter_map(|a| {
                let e = a.entry("env")?;
                Some((e.value.as_str()?, e.key.span.line))
            })
            .collect()
    }

    /// `deploy.kubeContext` the profile itself sets, with its line.
    pub fn kube_context(&self) -> Option<(&str, u32)> {
        let e = self.node.get("deploy")?.entry("kubeContext")?;
        Some((e.value.as_str()?, e.key.span.line))
    }

    /// Whether the profile changes what is deployed (a `manifests` or `deploy` section, or
    /// a patch of one).
    pub fn changes_deploy(&self) -> bool {
        self.node.get("manifests").is_some()
            || self.node.get("deploy").is_some()
            || seq(self.node.get("patches")).iter().any(|p| {
                p.get("path")
                    .and_then(Node::as_str)
                    .is_some_and(|p| p.starts_with("/manifests") || p.starts_with("/deploy"))
            })
    }
}

fn seq(node: Option<&Node>) -> &[Node] {
    node.and_then(Node::as_seq).unwrap_or(&[])
}

fn strings(node: Option<&Node>) -> Vec<String> {
    seq(node)
        .iter()
        .filter_map(Node::as_str)
        .map(str::to_owned)
        .collect()
}

/// Every Skaffold config of the repository, in file order.
pub(super) fn read_configs<'a>(index: &RepoIndex<'a>) -> Vec<SkConfig<'a>> {
    let mut out = Vec::new();
    for (file, f) in index.files.iter().enumerate() {
        for (i, d) in f.documents.iter().enumerate() {
            if !is_config(d) {
                continue;
            }
            let dir = index::parent(&f.path).to_owned();
            let meta_name = d
                .root
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Node::as_str);
            let requires = seq(d.root.get("requires"))
                .iter()
                .map(|r| read_require(r, &dir))
                .collect();
            let profiles = seq(d.root.get("profiles"))
                .iter()
                .filter_map(|p| {
                    let e = p.entry("name")?;
                    Some(Profile {
                        name: e.value.as_str()?.to_owned(),
                        line: e.key.span.line,
                        node: p,
                    })
                })
                .collect();
            out.push(SkConfig {
                doc: DocRef::new(file, i),
                d,
                name: meta_name.map_or_else(|| f.path.to_string(), str::to_owned),
                named: meta_name.is_some(),
                dir,
                requires,
                profiles,
            });
        }
    }
    out
}

fn read_require(r: &Node, dir: &str) -> Require {
    let written = r.get("path").and_then(Node::as_str).map(str::to_owned);
    let remote = ["git", "googleCloudStorage", "googleCloudBuildRepoV2"]
        .into_iter()
        .find_map(|k| {
            let n = r.get(k)?;
            let what = ["repo", "source", "repository"]
                .into_iter()
                .find_map(|f| n.get(f).and_then(Node::as_str))
                .unwrap_or("?");
            let path = n.get("path").and_then(Node::as_str).unwrap_or("");
            Some((k.to_owned(), format!("{what} {path}").trim().to_owned()))
        });
    Require {
        line: r.span.line,
        path: written
            .as_deref()
            .filter(|_| remote.is_none())
            .and_then(|p| index::join(dir, p, false)),
        written,
        configs: strings(r.get("configs")),
        active: seq(r.get("activeProfiles"))
            .iter()
            .filter_map(|a| {
                Some((
                    a.get("name")?.as_str()?.to_owned(),
                    strings(a.get("activatedBy")),
                ))
            })
            .collect(),
        remote,
    }
}

/// A profile patch operation that applied: the profile, the op, its pointer and its lines.
pub(super) struct Applied {
    pub profile: String,
    pub op: &'static str,
    pub path: String,
    pub lines: (u32, u32),
}

/// The config once `active` profiles (in the config's order) apply: the tree, the patch
/// operations that applied, and those that did not (each a sentence).
pub(super) fn effective(
    config: &SkConfig<'_>,
    active: &[&Profile<'_>],
) -> (Node, Vec<Applied>, Vec<(u32, String)>) {
    let mut root = config.d.root.clone();
    let mut applied = Vec::new();
    let mut failed = Vec::new();
    for p in active {
        if let Some(list) = p.node.get("patches") {
            match json_patch::parse_ops(list) {
                Ok(ops) => {
                    for ((op, line), item) in ops.iter().zip(seq(Some(list))) {
                        match json_patch::apply(&mut root, op) {
                            Ok(()) => applied.push(Applied {
                                profile: p.name.clone(),
                                op: op.name(),
                                path: op.path().to_owned(),
                                lines: (*line, item.span.end_line().max(*line)),
                            }),
                            Err(e) => failed.push((*line, e)),
                        }
                    }
                }
                Err(e) => failed.push((list.span.line, e)),
            }
        }
        for e in p.node.as_map().unwrap_or(&[]) {
            let Some(key) = e.key.as_str() else { continue };
            if matches!(
                key,
                "name" | "activation" | "patches" | "requiresAllActivations"
            ) {
                continue;
            }
            overlay_key(&mut root, e);
        }
    }
    (root, applied, failed)
}

/// Sets `entry` in the mapping `target`: merged into a mapping it already has, else as is.
fn overlay_key(target: &mut Node, entry: &YamlEntry) {
    let Value::Map(entries) = &mut target.value else {
        return;
    };
    let Some(key) = entry.key.as_str() else {
        return;
    };
    if let Some(i) = entries.iter().rposition(|e| e.key.as_str() == Some(key)) {
        if entries[i].value.as_map().is_some() && entry.value.as_map().is_some() {
            overlay(&mut entries[i].value, &entry.value);
        } else {
            // The profile's entry, key and all: its lines are where the value is set.
            entries[i] = entry.clone();
        }
        return;
    }
    let mut v = std::mem::take(entries).into_vec();
    v.push(entry.clone());
    *entries = v.into_boxed_slice();
}

/// A profile's mapping over the config's: merged key by key.
fn overlay(target: &mut Node, src: &Node) {
    for e in src.as_map().unwrap_or(&[]) {
        overlay_key(target, e);
    }
}

/// A path entry of a config: the field, the value as written, its line.
#[derive(Debug, Clone)]
pub(super) struct PathEntry {
    pub field: &'static str,
    pub value: String,
    pub line: u32,
}

/// A Helm release a config deploys.
#[derive(Debug, Clone)]
pub(super) struct Release {
    pub name: String,
    pub line: u32,
    /// A local chart folder (`chartPath`).
    pub chart_path: Option<PathEntry>,
    /// A remote chart (`remoteChart`, or a v2 `chartPath` with `remote: true`) and its repo.
    pub remote: Option<String>,
    pub namespace: Option<String>,
    pub values_files: Vec<PathEntry>,
    /// `setValues`, flattened to dotted keys.
    pub set: Vec<(String, String)>,
    /// `setValueTemplates` keys (templates of the environment, not followed).
    pub templates: Vec<(String, u32)>,
}

/// What a config deploys.
#[derive(Debug, Default)]
pub(super) struct Pipeline {
    pub kube_context: Option<(String, u32)>,
    pub raw: Vec<PathEntry>,
    pub kustomize: Vec<PathEntry>,
    pub helm: Vec<Release>,
}

impl Pipeline {
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty() && self.kustomize.is_empty() && self.helm.is_empty()
    }
}

fn path_entries(node: Option<&Node>, field: &'static str) -> Vec<PathEntry> {
    seq(node)
        .iter()
        .filter_map(|n| {
            Some(PathEntry {
                field,
                value: n.as_str()?.to_owned(),
                line: n.span.line,
            })
        })
        .collect()
}

/// The paths of a kustomize section: its `paths`, or `.` when it names none.
fn kustomize_paths(section: &Node, field: &'static str) -> Vec<PathEntry> {
    match section.get("paths") {
        Some(p) => path_entries(Some(p), field),
        None => vec![PathEntry {
            field,
            value: ".".into(),
            line: section.span.line,
        }],
    }
}

/// What an effective config tree deploys: `manifests.rawYaml`, `manifests.kustomize.paths`,
/// `manifests.helm.releases` (v3, v4), `deploy.kubectl.manifests`, `deploy.kustomize.paths`
/// (v2), `deploy.helm.releases` (all), and `deploy.kubeContext`. A kubectl deployer with no
/// manifests at all reads `k8s/*.yaml`, Skaffold's default.
pub(super) fn pipeline(root: &Node) -> Pipeline {
    let mut out = Pipeline::default();
    let manifests = root.get("manifests");
    let deploy = root.get("deploy");
    if let Some(e) = deploy.and_then(|d| d.entry("kubeContext")) {
        if let Some(v) = e.value.as_str() {
            out.kube_context = Some((v.to_owned(), e.key.span.line));
        }
    }
    out.raw = path_entries(
        manifests.and_then(|m| m.get("rawYaml")),
        "manifests.rawYaml",
    );
    out.raw.extend(path_entries(
        deploy
            .and_then(|d| d.get("kubectl"))
            .and_then(|k| k.get("manifests")),
        "deploy.kubectl.manifests",
    ));
    if let Some(k) = manifests.and_then(|m| m.get("kustomize")) {
        out.kustomize = kustomize_paths(k, "manifests.kustomize.paths");
    }
    if let Some(k) = deploy.and_then(|d| d.get("kustomize")) {
        out.kustomize
            .extend(kustomize_paths(k, "deploy.kustomize.paths"));
    }
    for section in [manifests, deploy] {
        let releases = seq(section
            .and_then(|s| s.get("helm"))
            .and_then(|h| h.get("releases")));
        for r in releases {
            if let Some(rel) = read_release(r) {
                if !out.helm.iter().any(|h| h.name == rel.name) {
                    out.helm.push(rel);
                }
            }
        }
    }
    if out.is_empty() {
        if let Some(k) = deploy.and_then(|d| d.entry("kubectl")) {
            out.raw.push(PathEntry {
                field: "deploy.kubectl (default manifests)",
                value: "k8s/*.yaml".into(),
                line: k.key.span.line,
            });
        }
    }
    out
}

fn read_release(r: &Node) -> Option<Release> {
    let name = r.get("name")?.as_str()?.to_owned();
    let text = |k: &str| r.get(k).and_then(Node::as_str).map(str::to_owned);
    let remote_flag = text("remote").as_deref() == Some("true");
    let chart_entry = r.entry("chartPath").and_then(|e| {
        Some(PathEntry {
            field: "helm.releases.chartPath",
            value: e.value.as_str()?.to_owned(),
            line: e.value.span.line,
        })
    });
    let remote = match (text("remoteChart"), &chart_entry) {
        (Some(c), _) => Some(match text("repo") {
            Some(repo) => format!("{c} from {repo}"),
            None => c,
        }),
        (None, Some(c)) if remote_flag => Some(c.value.clone()),
        _ => None,
    };
    let mut set = Vec::new();
    if let Some(v) = r.get("setValues") {
        flatten("", v, &mut set);
    }
    let templates = r
        .get("setValueTemplates")
        .and_then(Node::as_map)
        .unwrap_or(&[])
        .iter()
        .filter_map(|e| Some((e.key.as_str()?.to_owned(), e.key.span.line)))
        .collect();
    Some(Release {
        line: r.span.line,
        chart_path: chart_entry.filter(|_| remote.is_none()),
        remote,
        namespace: text("namespace"),
        values_files: path_entries(r.get("valuesFiles"), "helm.releases.valuesFiles"),
        set,
        templates,
        name,
    })
}

/// `setValues` as `--set` pairs: nested mappings become dotted keys.
fn flatten(prefix: &str, node: &Node, out: &mut Vec<(String, String)>) {
    match &node.value {
        Value::Map(entries) => {
            for e in entries.iter() {
                let Some(k) = e.key.as_str() else { continue };
                let key = if prefix.is_empty() {
                    k.to_owned()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, &e.value, out);
            }
        }
        Value::Scalar(s) if !prefix.is_empty() => out.push((prefix.to_owned(), s.to_string())),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::{load, Loaded, SourceFile};
    use std::sync::Arc;

    fn file(text: &str) -> SourceFile {
        match load(&Arc::from("skaffold.yaml"), text.as_bytes(), None) {
            Loaded::File(f) => f,
            _ => panic!("not loaded"),
        }
    }

    /// A profile's patch applies first, then its sections merge into the config's: a
    /// mapping key by key, a list replaced whole.
    #[test]
    fn a_profile_patches_then_overlays_the_config() {
        let f = file(
            "apiVersion: skaffold/v4beta11
kind: Config
metadata: {name: app}
manifests:
  rawYaml: [k8s/a.yaml]
  kustomize:
    paths: [base]
deploy:
  kubeContext: dev
profiles:
- name: prod
  patches:
  - op: replace
    path: /manifests/kustomize/paths/0
    value: overlays/prod
  manifests:
    rawYaml: [k8s/b.yaml]
  deploy:
    kubeContext: prod-eu
",
        );
        let files = [f];
        let index = RepoIndex::new(&files);
        let configs = read_configs(&index);
        assert_eq!(configs.len(), 1);
        let c = &configs[0];
        assert_eq!(c.name, "app");
        let prod: Vec<&Profile<'_>> = c.profiles.iter().collect();
        let (root, applied, failed) = effective(c, &prod);
        assert!(failed.is_empty());
        assert_eq!(applied.len(), 1);
        assert_eq!(applied[0].lines.0, 13);
        let p = pipeline(&root);
        assert_eq!(p.kube_context, Some(("prod-eu".to_owned(), 19)));
        let kustomize: Vec<(&str, u32)> = p
            .kustomize
            .iter()
            .map(|e| (e.value.as_str(), e.line))
            .collect();
        assert_eq!(kustomize, [("overlays/prod", 15)]);
        let raw: Vec<&str> = p.raw.iter().map(|e| e.value.as_str()).collect();
        assert_eq!(raw, ["k8s/b.yaml"]);
        // Without the profile the config is as written.
        let (root, _, _) = effective(c, &[]);
        let p = pipeline(&root);
        assert_eq!(p.kustomize[0].value, "base");
        assert_eq!(p.kube_context, Some(("dev".to_owned(), 9)));
    }

    /// v2: `deploy.kubectl` without manifests reads `k8s/*.yaml`; Helm releases' local and
    /// remote charts, values files and nested `setValues`.
    #[test]
    fn v2_defaults_and_helm_releases() {
        let f = file(
            "apiVersion: skaffold/v2beta29
kind: Config
deploy:
  kubectl: {}
---
apiVersion: skaffold/v2beta29
kind: Config
deploy:
  helm:
    releases:
    - name: web
      chartPath: charts/web
      valuesFiles: [charts/web/values-prod.yaml]
      setValues:
        image:
          tag: v1
    - name: redis
      chartPath: bitnami/redis
      remote: true
",
        );
        let files = [f];
        let index = RepoIndex::new(&files);
        let configs = read_configs(&index);
        assert_eq!(configs.len(), 2);
        assert_eq!(configs[0].name, "skaffold.yaml");
        let p = pipeline(&effective(&configs[0], &[]).0);
        assert_eq!(p.raw[0].value, "k8s/*.yaml");
        let p = pipeline(&effective(&configs[1], &[]).0);
        assert_eq!(p.helm.len(), 2);
        let web = &p.helm[0];
        assert_eq!(
            web.chart_path.as_ref().map(|e| e.value.as_str()),
            Some("charts/web")
        );
        assert_eq!(web.set, [("image.tag".to_owned(), "v1".to_owned())]);
        assert_eq!(web.values_files.len(), 1);
        assert_eq!(p.helm[1].remote.as_deref(), Some("bitnami/redis"));
        assert!(p.helm[1].chart_path.is_none());
    }
}
