//! Differential test of our kustomize resolution against kubectl's built-in kustomize: for
//! every kustomization in `fixtures/`, the case repositories and `../shared/corpora` that
//! `kubectl kustomize` renders, the set of (kind, namespace, name) we place must equal what it
//! outputs (generator hash suffixes aside). Skips cleanly without kubectl; skips (and counts)
//! directories kustomize cannot render offline (remote bases, Helm charts).

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
        // Generated ConfigMaps and Secrets carry a 10-character content hash.
        if matches!(kind.as_str(), "ConfigMap" | "Secret") {
            if let Some((base, hash)) = name.rsplit_once('-') {
                if hash.len() == 10 && hash.chars().all(|c| c.is_ascii_alphanumeric()) {
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
    mismatches: Vec<String>,
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
            let missing: Vec<_> = expected.difference(&ours).collect();
            let extra: Vec<_> = ours.difference(&expected).collect();
            tally.mismatches.push(format!(
                "{}/{dir}: kustomize has but we do not {missing:?}; we have but kustomize does not {extra:?}",
                root.display()
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
    assert!(
        tally.mismatches.is_empty(),
        "{}",
        tally.mismatches.join("\n")
    );
}
