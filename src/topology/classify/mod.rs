//! Classification: the signals a placement's class is decided from (the object's own
//! identity, its deployer, the overlays and components on the way), the environment words,
//! and the tiers and purposes decided after the worklist (DESIGN §3).

pub mod env;
pub mod namespaces;
pub mod tiers;

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::documents::Document;
use crate::evidence::{Evidence, Hop, IncludeKey};
use crate::topology::expand::kustomize::{self, ItemSource};
use crate::topology::index::{self, RepoIndex};
use crate::topology::{Env, PlacedObject, Signal, SignalLevel};

/// What the labels of the Namespace an object is placed in say (DESIGN §3 "Namespace
/// environment"): the signal of the deciding label, with its hop, and whether the
/// namespace's own name agrees with it.
#[derive(Debug, Clone)]
pub(crate) struct NamespaceSignal {
    pub(crate) signal: Signal,
    pub(crate) hop: Evidence,
    pub(crate) name_agrees: bool,
}

/// Signals from the object itself: its folders, namespace, labels, and (Jobs, CronJobs,
/// Pods) its name. Names of long-running workloads are weak and never decide. `namespace`
/// is what the labels of its Namespace (or, for a Namespace, its own) say: they come after
/// the namespace's name, which they replace when the two disagree.
pub(crate) fn own_signals(
    object: &PlacedObject,
    images: &[(String, u32)],
    doc: Option<&Document>,
    vocabulary: &env::Vocabulary,
    namespace: Option<&NamespaceSignal>,
) -> Vec<Signal> {
    let name_agrees = namespace.is_none_or(|n| n.name_agrees);
    let mut out = Vec::new();
    out.extend(tiers::tool_signal(doc, &object.kind, images));
    for folder in object.file.split('/').rev().skip(1) {
        if matches!(
            folder,
            // Not `integration/` alone: an integration service (a production component
            // that integrates with partners) lives in one as often as a test suite does.
            "tests" | "test" | "e2e" | "integration-tests" | "e2e-tests"
        ) {
            out.push(Signal {
                env: Env::NonProduction,
                note: format!("its folder {folder}/").into(),
                level: SignalLevel::Own,
            });
            break;
        }
    }
    if let Some(ns) = &object.namespace {
        if let Some(m) = vocabulary.classify_workload(ns).filter(|_| name_agrees) {
            out.push(Signal {
                env: m.env,
                note: format!("namespace {ns}").into(),
                level: SignalLevel::Own,
            });
        }
    }
    if let Some(d) = doc {
        for key in ["env", "environment"] {
            if let Some(v) = d.labels.get(key) {
                if let Some(m) = vocabulary.classify_workload(v) {
                    out.push(Signal {
                        env: m.env,
                        note: format!("label {key}={v}").into(),
                        level: SignalLevel::Own,
                    });
                }
            }
        }
    }
    // A Namespace whose labels name its environment is what they say, not what its name says.
    let named_by_labels = object.kind == "Namespace" && !name_agrees;
    if matches!(
        object.kind.as_str(),
        "Job" | "CronJob" | "Pod" | "Namespace"
    ) && !named_by_labels
    {
        if let Some(name) = &object.name {
            if let Some(m) = vocabulary.classify_workload(name) {
                out.push(Signal {
                    env: m.env,
                    note: format!("{} name {name}", object.kind).into(),
                    level: SignalLevel::Own,
                });
            }
        }
    }
    if let Some(n) = namespace {
        out.push(n.signal.clone());
    }
    out
}

/// Signals from the kustomize components and patch files a delivery applies, by their folder
/// (`variants/non-prod/`): they shape every object of the delivery, like an overlay does.
pub(crate) fn variant_signals(
    items: &[kustomize::Item],
    index: &RepoIndex<'_>,
    vocabulary: &env::Vocabulary,
) -> Vec<Signal> {
    let mut folders: BTreeSet<String> = BTreeSet::new();
    for item in items {
        if item.patch {
            if let ItemSource::Doc(r) = &item.source {
                folders.insert(index::parent(&index.doc(*r).file).to_owned());
            }
        }
        for hop in &item.chain {
            if let Hop::Include {
                key: IncludeKey::Components,
                entry,
            } = &*hop.hop
            {
                if let Some(dir) = index::join(index::parent(&hop.location.file), entry, false) {
                    folders.insert(dir);
                }
            }
        }
    }
    folders
        .into_iter()
        .filter_map(|dir| {
            let m = vocabulary.classify_workload(index::basename(&dir))?;
            Some(Signal {
                env: m.env,
                note: format!("component or patch folder {dir}/").into(),
                level: SignalLevel::Parent,
            })
        })
        .collect()
}

/// Signals from the overlays on the way to the object (`overlays/production/...`).
pub(crate) fn overlay_signals(chain: &[Evidence], vocabulary: &env::Vocabulary) -> Vec<Signal> {
    chain
        .iter()
        // An edit's line is where a value comes from, not a folder that includes the object.
        .filter(|hop| !matches!(*hop.hop, Hop::KustomizeEdit(_)))
        .filter_map(|hop| {
            let slot = folder_slot(index::parent(&hop.location.file))?;
            let m = vocabulary.classify_workload(slot)?;
            Some(Signal {
                env: m.env,
                note: format!("included by {}", index::parent(&hop.location.file)).into(),
                level: SignalLevel::Parent,
            })
        })
        .collect()
}

/// The class the deployer-level signals alone give: non-production wins, as for workloads.
pub(crate) fn deployer_class(signals: &[Signal]) -> Env {
    let at = |env: Env| {
        signals
            .iter()
            .any(|s| s.level == SignalLevel::Deployer && s.env == env)
    };
    if at(Env::NonProduction) {
        Env::NonProduction
    } else if at(Env::Production) {
        Env::Production
    } else {
        Env::Unknown
    }
}

/// The environment slot of a folder path: the segment after `overlays/`, `envs/`,
/// `environments/` or `stages/` (Kargo layouts), or a `feature-*` segment.
pub fn folder_slot(dir: &str) -> Option<&str> {
    let mut segments = dir.split('/');
    while let Some(s) = segments.next() {
        if matches!(s, "overlays" | "envs" | "environments" | "stages") {
            if let Some(next) = segments.clone().next() {
                return Some(next);
            }
        }
        if s.starts_with("feature-") || s.starts_with("feature_") {
            return Some(s);
        }
    }
    None
}

/// The workload class from the cluster and the signals, with the reason (DESIGN §3).
pub(crate) fn decide_class(
    cluster_env: Env,
    cluster: &str,
    signals: &[Signal],
) -> (Env, Arc<str>, Option<SignalLevel>) {
    decide_class_of_parts(cluster_env, cluster, &[signals])
}

/// `decide_class` over the concatenation of `parts`, without building it: a delivery's
/// signals are shared by all its objects.
pub(crate) fn decide_class_of_parts(
    cluster_env: Env,
    cluster: &str,
    parts: &[&[Signal]],
) -> (Env, Arc<str>, Option<SignalLevel>) {
    if cluster_env == Env::NonProduction {
        return (
            Env::NonProduction,
            format!("placed on non-production cluster {cluster}").into(),
            None,
        );
    }
    let find = |level: SignalLevel, env: Env| {
        parts
            .iter()
            .flat_map(|part| part.iter())
            .find(|s| s.level == level && s.env == env)
    };
    // A non-production signal from the workload's own identity or its own deployer wins.
    for level in [SignalLevel::Own, SignalLevel::Deployer] {
        if let Some(s) = find(level, Env::NonProduction) {
            return (Env::NonProduction, s.note.clone(), Some(level));
        }
    }
    for level in [SignalLevel::Own, SignalLevel::Deployer, SignalLevel::Parent] {
        if let Some(s) = find(level, Env::Production) {
            return (Env::Production, s.note.clone(), Some(level));
        }
    }
    if let Some(s) = find(SignalLevel::Parent, Env::NonProduction) {
        return (
            Env::NonProduction,
            s.note.clone(),
            Some(SignalLevel::Parent),
        );
    }
    (Env::Unknown, "no environment signal".into(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_slots() {
        assert_eq!(
            folder_slot("apps/x/overlays/production"),
            Some("production")
        );
        assert_eq!(folder_slot("envs/dev/apps"), Some("dev"));
        assert_eq!(folder_slot("apps/feature-login/x"), Some("feature-login"));
        assert_eq!(folder_slot("apps/x/base"), None);
    }

    #[test]
    fn own_non_production_beats_parent_production() {
        let signals = vec![
            Signal {
                env: Env::Production,
                note: "included by overlays/production".into(),
                level: SignalLevel::Parent,
            },
            Signal {
                env: Env::NonProduction,
                note: "its folder tests/".into(),
                level: SignalLevel::Own,
            },
        ];
        assert_eq!(
            decide_class(Env::Production, "p", &signals).0,
            Env::NonProduction
        );
        assert_eq!(
            decide_class(Env::Production, "p", &signals[..1]).0,
            Env::Production
        );
        assert_eq!(
            decide_class(Env::NonProduction, "s", &signals[..1]).0,
            Env::NonProduction
        );
        assert_eq!(decide_class(Env::Production, "p", &[]).0, Env::Unknown);
    }
}
