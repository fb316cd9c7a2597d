//! Bounded fuzzing (proptest, fixed seed and case count) of the kustomize expander and the
//! ApplicationSet generator expansion, called directly so that any panic fails the test: random
//! kustomization graphs (cycles, missing and remote paths, prefixes, deep nesting) and random
//! matrix/merge/list nests, each checked against its budget.

use std::sync::Arc;

use envfence::config::{Config, Limits};
use envfence::documents::{self, FileKind, Loaded, SourceFile};
use envfence::topology::kustomize::{DirectoryMode, Expander};
use envfence::topology::{argo, Inventory, RepoIndex};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};

fn source_files(files: &[(String, String)]) -> Vec<SourceFile> {
    files
        .iter()
        .filter_map(|(path, text)| {
            let kind = FileKind::from_path(path, false, false);
            match documents::load(&Arc::from(path.as_str()), text.as_bytes(), kind) {
                Loaded::File(f) => Some(f),
                Loaded::Skipped(_) => None,
            }
        })
        .collect()
}

/// Fixed seed and case count: the same cases on every run, a few seconds in all.
fn runner(cases: u32) -> TestRunner {
    TestRunner::new_with_rng(
        RunnerConfig {
            cases,
            failure_persistence: None,
            ..RunnerConfig::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    )
}

#[derive(Debug, Clone)]
enum Entry {
    /// Another kustomization of the graph (any, so cycles happen).
    Dir(usize),
    File,
    Missing,
    Remote,
    Outside,
    Garbage,
}

#[derive(Debug, Clone)]
struct Kustomization {
    entries: Vec<Entry>,
    prefix: bool,
    namespace: bool,
    generator: bool,
    /// No kustomization file at all: a plain folder.
    plain: bool,
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        6 => (0usize..10).prop_map(Entry::Dir),
        2 => Just(Entry::File),
        1 => Just(Entry::Missing),
        1 => Just(Entry::Remote),
        1 => Just(Entry::Outside),
        1 => Just(Entry::Garbage),
    ]
}

fn kustomization() -> impl Strategy<Value = Kustomization> {
    (
        prop::collection::vec(entry(), 0..5),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(entries, prefix, namespace, generator, plain)| Kustomization {
                entries,
                prefix,
                namespace,
                generator,
                plain,
            },
        )
}

fn kustomize_repo(graph: &[Kustomization]) -> Vec<(String, String)> {
    let n = graph.len();
    let mut files = Vec::new();
    for (i, k) in graph.iter().enumerate() {
        files.push((
            format!("k/d{i}/cm.yaml"),
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{i}\n"),
        ));
        if k.plain {
            continue;
        }
        let mut text = String::from("resources:\n");
        for e in &k.entries {
            text.push_str(&match e {
                Entry::Dir(j) => format!("- ../d{}\n", j % n),
                Entry::File => "- cm.yaml\n".into(),
                Entry::Missing => "- ../nowhere\n".into(),
                Entry::Remote => "- https://github.com/acme/base?ref=v1\n".into(),
                Entry::Outside => "- ../../../../etc\n".into(),
                Entry::Garbage => "- {a: [1, 2]}\n- 7\n".into(),
            });
        }
        if k.prefix {
            text.push_str(&format!("namePrefix: p{i}-\n"));
        }
        if k.namespace {
            text.push_str(&format!("namespace: ns{i}\n"));
        }
        if k.generator {
            text.push_str(&format!(
                "configMapGenerator:\n- name: gen{i}\n  literals: [a=b]\n"
            ));
        }
        files.push((format!("k/d{i}/kustomization.yaml"), text));
    }
    files
}

/// Objects `dir` yields, each path counted, when the graph has no cycle from it.
fn paths(graph: &[Kustomization], i: usize, depth: usize) -> Option<u64> {
    let k = &graph[i];
    if k.plain {
        return Some(1); // its cm.yaml, when expanded as a root
    }
    if depth > graph.len() {
        return None; // a cycle
    }
    let mut count = u64::from(k.generator);
    for e in &k.entries {
        count = count.saturating_add(match e {
            Entry::Dir(j) => {
                let j = j % graph.len();
                if graph[j].plain {
                    0
                } else {
                    paths(graph, j, depth + 1)?
                }
            }
            Entry::File => 1,
            _ => 0,
        });
    }
    Some(count)
}

#[test]
fn kustomize_expander_survives_random_graphs_within_its_budget() {
    let strategy = (
        prop::collection::vec(kustomization(), 1..10),
        1usize..60,
        0usize..10,
        any::<bool>(),
    );
    runner(400)
        .run(&strategy, |(graph, limit, root, recurse)| {
            let sources = source_files(&kustomize_repo(&graph));
            let index = RepoIndex::new(&sources);
            let mut expander = Expander::with_limits(&index, limit, limit * 3);
            let root = root % graph.len();
            let dir = format!("k/d{root}");
            let mode = if recurse {
                DirectoryMode::recursive()
            } else {
                DirectoryMode::default()
            };
            let expansion = expander.expand(&dir, &mode);
            prop_assert!(expansion.items.len() <= limit);
            let noted = expansion
                .problems
                .iter()
                .any(|p| p.reason.contains("(limits.kustomize-objects)"));
            if let Some(expected) = paths(&graph, root, 0) {
                prop_assert_eq!(expansion.items.len() as u64, expected.min(limit as u64));
                prop_assert_eq!(noted, expected > limit as u64);
            }
            // The whole tree as a recursive root (cluster-tree style) is bounded too.
            let all = expander.expand("k", &DirectoryMode::recursive());
            prop_assert!(all.items.len() <= limit);
            Ok(())
        })
        .expect("no panic, no budget overrun");
}

#[test]
fn deep_kustomize_chains_are_cut_without_panicking() {
    // A chain deeper than the nesting limit, with a fan-out of two at every level.
    let depth = 80;
    let mut files = Vec::new();
    for i in 0..depth {
        files.push((
            format!("k/d{i}/kustomization.yaml"),
            format!(
                "resources:\n- ../d{}\n- ../d{}\n- cm.yaml\nnamePrefix: x-\n",
                i + 1,
                i + 1
            ),
        ));
        files.push((
            format!("k/d{i}/cm.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n".into(),
        ));
    }
    let sources = source_files(&files);
    let index = RepoIndex::new(&sources);
    let mut expander = Expander::with_limits(&index, 1000, 1_000_000);
    let expansion = expander.expand("k/d0", &DirectoryMode::default());
    assert_eq!(expansion.items.len(), 1000);
    assert!(expansion
        .problems
        .iter()
        .any(|p| p.reason.contains("nested deeper than")));
    assert!(expansion
        .problems
        .iter()
        .any(|p| p.reason.contains("(limits.kustomize-objects)")));
}

#[derive(Debug, Clone)]
enum Generator {
    List(usize),
    Matrix(Vec<Generator>),
    Merge(Vec<Generator>),
    PullRequest,
    Unknown,
}

fn generator() -> impl Strategy<Value = Generator> {
    let leaf = prop_oneof![
        6 => (0usize..40).prop_map(Generator::List),
        1 => Just(Generator::PullRequest),
        1 => Just(Generator::Unknown),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            3 => prop::collection::vec(inner.clone(), 0..4).prop_map(Generator::Matrix),
            1 => prop::collection::vec(inner, 0..4).prop_map(Generator::Merge),
        ]
    })
}

impl Generator {
    /// Parameter sets without any limit (saturating), as Argo CD would count them.
    fn total(&self) -> u64 {
        match self {
            Generator::List(n) => *n as u64,
            Generator::Matrix(children) if children.is_empty() => 0,
            Generator::Matrix(children) => children
                .iter()
                .fold(1u64, |acc, c| acc.saturating_mul(c.total())),
            Generator::Merge(children) => children.first().map_or(0, Generator::total),
            Generator::PullRequest => 1,
            Generator::Unknown => 0,
        }
    }

    fn has_merge(&self) -> bool {
        match self {
            Generator::Merge(_) => true,
            Generator::Matrix(children) => children.iter().any(Generator::has_merge),
            _ => false,
        }
    }

    fn yaml(&self, indent: usize, key: &mut usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match self {
            Generator::List(n) => {
                *key += 1;
                out.push_str(&format!("{pad}- list:\n{pad}    elements:\n"));
                for i in 0..*n {
                    out.push_str(&format!(
                        "{pad}    - {{k{key}: v{i}, shared: s{}}}\n",
                        i % 3
                    ));
                }
            }
            Generator::Matrix(children) | Generator::Merge(children) => {
                let kind = if matches!(self, Generator::Matrix(_)) {
                    "matrix"
                } else {
                    "merge"
                };
                out.push_str(&format!("{pad}- {kind}:\n"));
                if kind == "merge" {
                    out.push_str(&format!("{pad}    mergeKeys: [shared]\n"));
                }
                out.push_str(&format!("{pad}    generators:\n"));
                for c in children {
                    c.yaml(indent + 4, key, out);
                }
            }
            Generator::PullRequest => {
                out.push_str(&format!(
                    "{pad}- pullRequest:\n{pad}    github: {{owner: a, repo: b}}\n"
                ));
            }
            Generator::Unknown => out.push_str(&format!("{pad}- somethingElse: {{}}\n")),
        }
    }
}

#[test]
fn appset_generators_survive_random_nests_within_their_budget() {
    let strategy = (prop::collection::vec(generator(), 0..3), 1usize..300);
    runner(300)
        .run(&strategy, |(generators, limit)| {
            let mut text = String::from(
                "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: fuzz\nspec:\n  generators:\n",
            );
            let mut key = 0;
            for g in &generators {
                g.yaml(2, &mut key, &mut text);
            }
            text.push_str("  template:\n    metadata:\n      name: app\n    spec:\n      source:\n        repoURL: https://example.com/r.git\n        path: apps/x\n      destination:\n        name: prod\n");
            let files = vec![
                ("argocd/appset.yaml".to_owned(), text),
                (
                    "apps/x/cm.yaml".to_owned(),
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n".to_owned(),
                ),
            ];
            let sources = source_files(&files);
            let index = RepoIndex::new(&sources);
            let mut inventory = Inventory::build(&Config::default());
            let (appset, _) = index
                .of_kind("ApplicationSet")
                .next()
                .expect("the ApplicationSet parses");
            let limits = Limits {
                appset_parameter_sets: limit,
                ..Limits::default()
            };
            let outcome = argo::run(&index, &mut inventory, appset, None, &[], &[], &limits);
            prop_assert!(outcome.deliveries.len() <= limit);
            let total = generators
                .iter()
                .fold(0u64, |acc, g| acc.saturating_add(g.total()));
            let noted = outcome
                .unresolved
                .iter()
                .any(|u| u.reason.contains("(limits.appset-parameter-sets)"));
            if total > limit as u64 {
                prop_assert!(noted, "{total} sets, limit {limit}: no note");
            }
            if !generators.iter().any(Generator::has_merge) {
                prop_assert_eq!(noted, total > limit as u64);
                prop_assert_eq!(outcome.deliveries.len() as u64, total.min(limit as u64));
            }
            Ok(())
        })
        .expect("no panic, no budget overrun");
}
