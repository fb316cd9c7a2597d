//! Differential test of our kustomize resolution against kubectl's built-in kustomize: for
//! every kustomization in `fixtures/`, the case repositories and `../shared/corpora` that
//! `kubectl kustomize` renders, the set of (kind, namespace, name) we place must equal what it
//! outputs (generator hash suffixes aside), and so must each object's content in the fields
//! the rules read: env values and their `secretKeyRef`/`configMapKeyRef` names, images,
//! `envFrom` names, metadata labels and annotations, and an Argo CD Application's source paths
//! and destination. Skips cleanly without kubectl; skips (and counts) directories kustomize
//! cannot render offline (remote bases, Helm charts).
//!
//! Our side is what the rules read: the object's document as kustomize's JSON patches and
//! replacements left it, with the `images:` overrides, and the strategic-merge patch files of
//! the same object over it (envfence places those beside the object: their containers' env
//! vars override the object's by name, or all of them for a list the patch replaces, and
//! their images apply; their labels and annotations are read on the patch itself). Objects
//! a generator makes are compared by identity only: envfence keeps their literals, not a
//! document.
//!
//! `kustomize_known.txt` lists the kustomizations where we are known to differ, each with its
//! reason: a listed mismatch is tolerated, an unlisted one fails, and so does a listed one that
//! now matches (the list must shrink as the kustomize support grows).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{corpora, repo_root};
use envfence::config::Config;
use envfence::documents::yaml::parse_stream;
use envfence::documents::{FileKind, Node};
use envfence::scan::{self, ScanOptions, Target};
use envfence::topology::kustomize::ImageOverride;

/// (kind, namespace, name).
type Object = (String, String, String);
/// Field → value, for the fields compared; `None` when only the identity is compared.
type Content = Option<BTreeMap<String, String>>;

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn text(node: Option<&Node>) -> Option<String> {
    node.and_then(Node::as_str).map(str::to_owned)
}

/// The containers of every pod template (or pod) under `root`: `containers` and
/// `initContainers` lists, wherever they are.
fn containers(root: &Node) -> Vec<&Node> {
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        if let Some(entries) = node.as_map() {
            for e in entries {
                if matches!(e.key.as_str(), Some("containers" | "initContainers")) {
                    out.extend(e.value.as_seq().unwrap_or(&[]).iter());
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

/// The compared fields of one document; `image` maps an image as written to the one placed.
fn content_of(root: &Node, image: &dyn Fn(&str) -> String) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let metadata = root.get("metadata");
    for key in ["labels", "annotations"] {
        for e in metadata
            .and_then(|m| m.get(key))
            .and_then(Node::as_map)
            .unwrap_or(&[])
        {
            // An empty value is `""` once applied, however it was written.
            let value = e.value.as_str().or(e.value.is_null().then_some(""));
            if let (Some(k), Some(v)) = (e.key.as_str(), value) {
                out.insert(format!("{key}.{k}"), v.to_owned());
            }
        }
    }
    for c in containers(root) {
        let name = text(c.get("name")).unwrap_or_default();
        if let Some(i) = text(c.get("image")) {
            out.insert(format!("container[{name}].image"), image(&i));
        }
        for env in c.get("env").and_then(Node::as_seq).unwrap_or(&[]) {
            let Some(var) = text(env.get("name")) else {
                continue;
            };
            let value = match (env.get("value"), env.get("valueFrom")) {
                (Some(v), _) => text(Some(v)),
                (None, Some(from)) => ["secretKeyRef", "configMapKeyRef"].iter().find_map(|k| {
                    let name = text(from.get(k)?.get("name"))?;
                    Some(format!("{k}:{}", without_hash(&name)))
                }),
                _ => None,
            };
            if let Some(value) = value {
                out.insert(format!("container[{name}].env[{var}]"), value);
            }
        }
        let from: BTreeSet<String> = c
            .get("envFrom")
            .and_then(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .flat_map(|f| {
                ["configMapRef", "secretRef"]
                    .into_iter()
                    .filter_map(move |k| {
                        let name = text(f.get(k)?.get("name"))?;
                        Some(format!("{k}:{}", without_hash(&name)))
                    })
            })
            .collect();
        if !from.is_empty() {
            out.insert(
                format!("container[{name}].envFrom"),
                from.into_iter().collect::<Vec<_>>().join(","),
            );
        }
    }
    if text(root.get("kind")).as_deref() == Some("Application") {
        let spec = root.get("spec");
        if let Some(path) = text(
            spec.and_then(|s| s.get("source"))
                .and_then(|s| s.get("path")),
        ) {
            out.insert("source.path".into(), path);
        }
        let sources = spec.and_then(|s| s.get("sources")).and_then(Node::as_seq);
        for (i, s) in sources.unwrap_or(&[]).iter().enumerate() {
            if let Some(path) = text(s.get("path")) {
                out.insert(format!("sources[{i}].path"), path);
            }
        }
        for key in ["server", "name", "namespace"] {
            let dest = spec.and_then(|s| s.get("destination"));
            if let Some(v) = text(dest.and_then(|d| d.get(key))) {
                out.insert(format!("destination.{key}"), v);
            }
        }
    }
    out
}

/// A generated ConfigMap's or Secret's name without the 10-character content hash kustomize
/// appends, written in its alphabet (hex with 0, 1, 3, a, e swapped for letters no word
/// needs), so that a name such as `wolf-root-entrypoint` keeps its last part.
fn without_hash(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((base, hash))
            if hash.len() == 10 && hash.chars().all(|c| "245678bcdfghkmt9".contains(c)) =>
        {
            base
        }
        _ => name,
    }
}

/// kubectl's view, or `None` when it cannot render the directory.
fn kubectl_objects(dir: &Path) -> Option<BTreeMap<Object, Content>> {
    let out = Command::new("timeout")
        .args(["30", "kubectl", "kustomize"])
        .arg(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text_out = String::from_utf8(out.stdout).ok()?;
    let stream = parse_stream(&text_out);
    let mut objects = BTreeMap::new();
    for doc in stream.docs {
        let get = |path: &[&str]| {
            let mut node = &doc.root;
            for key in path {
                node = node.get(key)?;
            }
            node.as_str().map(str::to_owned)
        };
        let kind = get(&["kind"]).unwrap_or_default();
        let mut name = get(&["metadata", "name"]).unwrap_or_default();
        if matches!(kind.as_str(), "ConfigMap" | "Secret") {
            name = without_hash(&name).to_owned();
        }
        let namespace = get(&["metadata", "namespace"]).unwrap_or_default();
        let content = content_of(&doc.root, &|i| i.to_owned());
        objects.insert((kind, namespace, name), Some(content));
    }
    Some(objects)
}

/// `image` after the `images:` overrides, in order.
fn overridden(image: &str, overrides: &[ImageOverride]) -> String {
    let mut current = image.to_owned();
    for o in overrides {
        if let Some(next) = o.apply(&current) {
            current = next;
        }
    }
    current
}

/// Our view: the placed objects' content, the strategic-merge patches of each over it.
fn our_objects(files: &[envfence::documents::SourceFile], dir: &str) -> BTreeMap<Object, Content> {
    let expansion = envfence::topology::kustomize_expansion(files, dir);
    let key = |o: &envfence::topology::kustomize::ExpandedObject| {
        (
            o.kind.clone(),
            o.namespace.clone().unwrap_or_default(),
            o.name.clone().unwrap_or_default(),
        )
    };
    let mut objects: BTreeMap<Object, Content> = BTreeMap::new();
    for o in expansion.iter().filter(|o| !o.patch) {
        let content = o
            .doc
            .as_ref()
            .map(|d| content_of(&d.root, &|i| overridden(i, &o.images)));
        objects.insert(key(o), content);
    }
    for p in expansion.iter().filter(|o| o.patch) {
        let (Some(Some(content)), Some(doc)) = (objects.get_mut(&key(p)), &p.doc) else {
            continue;
        };
        // The rules take a patch's containers (env vars by name, images) over the object's,
        // all of a container's env vars when the patch replaces its list (`$patch: replace`);
        // its labels and annotations stay the patch's own.
        for c in containers(&doc.root) {
            let replaced = c
                .get("env")
                .and_then(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .any(|e| text(e.get("$patch")).as_deref() == Some("replace"));
            if replaced {
                let prefix = format!(
                    "container[{}].env[",
                    text(c.get("name")).unwrap_or_default()
                );
                content.retain(|field, _| !field.starts_with(&prefix));
            }
        }
        for (field, value) in content_of(&doc.root, &|i| overridden(i, &p.images)) {
            if field.starts_with("container[") {
                content.insert(field, value);
            }
        }
    }
    objects
}

struct Tally {
    compared: usize,
    skipped: usize,
    /// (`<repository folder>/<kustomization folder>`, what differs).
    mismatches: Vec<(String, String)>,
    /// Of those, the ones whose identities already differ.
    identity: usize,
}

/// The known mismatches: key → reason, from `kustomize_known.txt` (`key<TAB>reason` lines,
/// `#` comments).
fn known_mismatches() -> BTreeMap<String, String> {
    let path = repo_root().join("tests").join("kustomize_known.txt");
    let text = std::fs::read_to_string(&path).expect("tests/kustomize_known.txt is readable");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (key, reason) = l.split_once('\t').unwrap_or((l, ""));
            assert!(
                !reason.trim().is_empty(),
                "known mismatch without a reason: {l}"
            );
            (key.trim().to_owned(), reason.trim().to_owned())
        })
        .collect()
}

/// What differs between kustomize's objects and ours, in words; `None` when nothing does.
fn differences(
    expected: &BTreeMap<Object, Content>,
    ours: &BTreeMap<Object, Content>,
) -> Option<(bool, String)> {
    let theirs: BTreeSet<&Object> = expected.keys().collect();
    let mine: BTreeSet<&Object> = ours.keys().collect();
    if theirs != mine {
        let missing: Vec<_> = theirs.difference(&mine).collect();
        let extra: Vec<_> = mine.difference(&theirs).collect();
        return Some((
            true,
            format!(
                "kustomize has but we do not {missing:?}; we have but kustomize does not {extra:?}"
            ),
        ));
    }
    let mut out = Vec::new();
    for (object, theirs) in expected {
        let (Some(theirs), Some(Some(mine))) = (theirs, ours.get(object)) else {
            continue;
        };
        let fields: BTreeSet<&String> = theirs.keys().chain(mine.keys()).collect();
        for field in fields {
            let (t, m) = (theirs.get(field), mine.get(field));
            if t != m {
                out.push(format!(
                    "{}/{} {field}: kustomize {t:?}, we {m:?}",
                    object.0, object.2
                ));
            }
        }
    }
    (!out.is_empty()).then(|| (false, out.join("; ")))
}

fn compare_repository(root: &Path, tally: &mut Tally) {
    let target = Target::resolve(root).expect("repository exists");
    let workspace = scan::index(
        &target,
        &Config::default(),
        &ScanOptions::default(),
        &|_| {},
    )
    .expect("indexes");
    let dirs: BTreeSet<String> = workspace
        .files
        .iter()
        .filter(|f| f.kind == FileKind::Kustomization)
        .map(|f| {
            f.path
                .rsplit_once('/')
                .map_or(String::new(), |(d, _)| d.to_owned())
        })
        .collect();
    for dir in dirs {
        let Some(expected) = kubectl_objects(&target.root.join(&dir)) else {
            tally.skipped += 1;
            continue;
        };
        let ours = our_objects(&workspace.files, &dir);
        tally.compared += 1;
        if let Some((identity, what)) = differences(&expected, &ours) {
            let repository = root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let repository = if repository == "repo" {
                // A case repository: `tests/cases/<case>/repo`.
                root.parent()
                    .and_then(Path::file_name)
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            } else {
                repository
            };
            tally.identity += usize::from(identity);
            tally.mismatches.push((
                format!("{repository}/{dir}"),
                format!("{}/{dir}: {what}", root.display()),
            ));
        }
    }
}

#[test]
fn placements_match_kubectl_kustomize() {
    if !kubectl_available() {
        eprintln!("skipped: kubectl is not installed");
        return;
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    for parent in [
        repo_root().join("fixtures"),
        repo_root().join("tests").join("cases"),
    ] {
        for entry in std::fs::read_dir(&parent)
            .expect("fixtures and cases")
            .filter_map(Result::ok)
        {
            // A case's repository is `<case>/repo`; a fixture is its own folder.
            let repo = entry.path().join("repo");
            if repo.is_dir() {
                roots.push(repo);
            } else if entry.path().is_dir() && parent.ends_with("fixtures") {
                roots.push(entry.path());
            }
        }
    }
    if let Some(dir) = corpora() {
        for entry in std::fs::read_dir(dir)
            .expect("corpora")
            .filter_map(Result::ok)
        {
            if entry.path().is_dir() {
                roots.push(entry.path());
            }
        }
    }
    roots.sort();
    let mut tally = Tally {
        compared: 0,
        skipped: 0,
        mismatches: Vec::new(),
        identity: 0,
    };
    for root in &roots {
        compare_repository(root, &mut tally);
    }
    eprintln!(
        "kustomize differential: {} kustomizations compared, {} not renderable offline, {} mismatches ({} in the objects placed, {} in their content)",
        tally.compared,
        tally.skipped,
        tally.mismatches.len(),
        tally.identity,
        tally.mismatches.len() - tally.identity
    );
    assert!(tally.compared > 0, "nothing was compared");
    let known = known_mismatches();
    let unknown: Vec<&String> = tally
        .mismatches
        .iter()
        .filter(|(key, _)| !known.contains_key(key))
        .map(|(_, text)| text)
        .collect();
    eprintln!(
        "{} mismatches are known (tests/kustomize_known.txt):",
        tally.mismatches.len() - unknown.len()
    );
    for (key, text) in tally
        .mismatches
        .iter()
        .filter(|(key, _)| known.contains_key(key))
    {
        eprintln!(
            "  {key}: {}",
            text.split_once(": ").map_or("", |(_, what)| what)
        );
    }
    assert!(
        unknown.is_empty(),
        "{} mismatches not in tests/kustomize_known.txt:\n{}",
        unknown.len(),
        unknown
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Only where the corpora are present can a known mismatch be seen to match.
    if corpora().is_some() {
        let now_match: Vec<&String> = known
            .keys()
            .filter(|k| !tally.mismatches.iter().any(|(key, _)| key == *k))
            .collect();
        assert!(
            now_match.is_empty(),
            "these known mismatches now match kustomize: remove them from tests/kustomize_known.txt: {now_match:?}"
        );
    }
}
