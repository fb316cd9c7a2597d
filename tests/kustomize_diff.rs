//! Differential test of our kustomize resolution against kubectl's built-in kustomize: for
//! every kustomization in `fixtures/`, the case repositories and `../shared/corpora` that
//! `kubectl kustomize` renders, the set of (kind, namespace, name) we place must equal what it
//! outputs (generator hash suffixes aside). Skips cleanly without kubectl; skips (and counts)
//! directories kustomize cannot render offline (remote bases, Helm charts).
//!
//! `kustomize_known.txt` lists the kustomizations where we are known to differ, each with its
//! reason: a listed mismatch is tolerated, an unlisted one fails, and so does a listed one that
//! now matches (the list must shrink as the kustomize support grows).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{corpora, fixture, repo_root};
use envfence::config::Config;
use envfence::documents::yaml::parse_stream;
use envfence::documents::FileKind;
use envfence::scan::{self, ScanOptions, Target};

type Object = (String, String, String);

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// kubectl's view, or `None` when it cannot render the directory.
fn kubectl_objects(dir: &Path) -> Option<BTreeSet<Object>> {
    let out = Command::new("timeout")
        .args(["30", "kubectl", "kustomize"])
        .arg(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let stream = parse_stream(&text);
    let mut set = BTreeSet::new();
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
        // Generated ConfigMaps and Secrets carry a 10-character content hash, written in
        // kustomize's alphabet (hex with 0, 1, 3, a, e swapped for letters no word needs), so
        // that a name such as `wolf-root-entrypoint` keeps its last part.
        if matches!(kind.as_str(), "ConfigMap" | "Secret") {
            if let Some((base, hash)) = name.rsplit_once('-') {
                if hash.len() == 10 && hash.chars().all(|c| "245678bcdfghkmt9".contains(c)) {
                    name = base.to_owned();
                }
            }
        }
        set.insert((
            kind,
            get(&["metadata", "namespace"]).unwrap_or_default(),
            name,
        ));
    }
    Some(set)
}

struct Tally {
    compared: usize,
    skipped: usize,
    /// (`<repository folder>/<kustomization folder>`, what differs).
    mismatches: Vec<(String, String)>,
}

/// The known mismatches: key → reason, from `kustomize_known.txt` (`key<TAB>reason` lines,
/// `#` comments).
fn known_mismatches() -> std::collections::BTreeMap<String, String> {
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
        let ours: BTreeSet<Object> = envfence::topology::kustomize_objects(&workspace.files, &dir)
            .into_iter()
            .map(|(kind, name, ns)| (kind, ns.unwrap_or_default(), name.unwrap_or_default()))
            .collect();
        tally.compared += 1;
        if ours != expected {
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
            let key = format!("{repository}/{dir}");
            let missing: Vec<_> = expected.difference(&ours).collect();
            let extra: Vec<_> = ours.difference(&expected).collect();
            tally.mismatches.push((
                key,
                format!(
                    "{}/{dir}: kustomize has but we do not {missing:?}; we have but kustomize does not {extra:?}",
                    root.display()
                ),
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
    let mut roots: Vec<PathBuf> = vec![fixture("demo")];
    let cases = repo_root().join("tests").join("cases");
    for entry in std::fs::read_dir(&cases)
        .expect("cases")
        .filter_map(Result::ok)
    {
        let repo = entry.path().join("repo");
        if repo.is_dir() {
            roots.push(repo);
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
    };
    for root in &roots {
        compare_repository(root, &mut tally);
    }
    eprintln!(
        "kustomize differential: {} kustomizations compared, {} not renderable offline, {} mismatches",
        tally.compared,
        tally.skipped,
        tally.mismatches.len()
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
        "{} mismatches are known (tests/kustomize_known.txt)",
        tally.mismatches.len() - unknown.len()
    );
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
