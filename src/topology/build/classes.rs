//! Classes after the worklist: what each placement's images and class are worked out from is
//! recorded while placing, and decided for all placements at once, on all cores.

use std::sync::Arc;

use compact_str::CompactString;

use super::Worklist;
use crate::evidence::{Evidence, Hop, NamespaceEnvironmentHop};
use crate::location::Location;
use crate::topology::classify::namespaces;
use crate::topology::classify::{
    decide_class_of_parts, overlay_signals, own_signals, NamespaceSignal,
};
use crate::topology::env::Env;
use crate::topology::expand::kustomize::{self};
use crate::topology::{HashMap, Placement, RepoIndex, Signal, SignalLevel};

/// What a placement's images and class are worked out from. Nothing in the worklist reads
/// them, so they are worked out for all placements at once when it is done, on all cores
/// ([`Worklist::decide_classes`]): they are most of what placing an object costs. Kept
/// small, since there is one per placement.
#[derive(Clone, Copy)]
pub(super) struct Undecided {
    /// In `Worklist::delivery_signals`; [`Undecided::DECIDED`] for a placement made with its
    /// images and class.
    pub(super) delivery: u32,
    /// The item's `images:` overrides: in `Worklist::image_overrides`, plus one; 0 for none.
    pub(super) images: u32,
    /// The cluster's environment when the object was placed.
    pub(super) cluster_environment: Env,
    /// The placement's own hops start with a HelmRelease's redirect, not an overlay's hop.
    pub(super) redirected: bool,
}

impl Undecided {
    pub(super) const DECIDED: Undecided = Undecided {
        delivery: u32::MAX,
        images: 0,
        cluster_environment: Env::Unknown,
        redirected: false,
    };
}

/// The signals of a delivery that every object it places shares.
pub(super) struct DeliverySignals {
    pub(super) deployer: Vec<Signal>,
    /// Of the components and patch folders it applies.
    pub(super) variants: Vec<Signal>,
}

impl Worklist<'_> {
    /// The images and class of each placement the worklist left undecided, on all cores.
    pub(super) fn decide_classes(&mut self) {
        use rayon::prelude::*;
        let undecided = std::mem::take(&mut self.undecided);
        let delivery_signals = std::mem::take(&mut self.delivery_signals);
        let image_overrides = std::mem::take(&mut self.image_overrides);
        self.image_override_positions = HashMap::default();
        let vocabulary = self.inventory.vocabulary();
        let clusters = &self.inventory.clusters;
        let index = self.index;
        // On a non-production cluster the cluster decides whatever the signals say: one
        // reason for all its objects.
        for (p, u) in self.placements.iter().zip(&undecided) {
            if u.delivery != Undecided::DECIDED.delivery
                && u.cluster_environment == Env::NonProduction
            {
                self.cluster_decides.entry(p.cluster).or_insert_with(|| {
                    decide_class_of_parts(Env::NonProduction, &clusters[p.cluster].name, &[])
                });
            }
        }
        let by_namespace = namespace_signals(
            &self.placements,
            index,
            &self.config.namespaces.environment_keys,
            vocabulary,
        );
        let cluster_decides = &self.cluster_decides;
        self.placements
            .par_iter_mut()
            .zip(undecided.par_iter())
            .for_each(|(p, u)| {
                let Some(delivery) = delivery_signals.get(u.delivery as usize) else {
                    return;
                };
                let overrides = match u.images.checked_sub(1) {
                    Some(i) => image_overrides.get(i as usize).map_or(&[][..], |l| &l[..]),
                    None => &[],
                };
                let doc = p.object.doc.map(|r| index.doc(r));
                let images = doc
                    .map(|d| kustomize::effective_images(d, overrides))
                    .unwrap_or_default();
                let (class, reason, level) = match cluster_decides.get(&p.cluster) {
                    Some(decided) if u.cluster_environment == Env::NonProduction => decided.clone(),
                    _ => {
                        // A Namespace is in its own namespace.
                        let ns = match p.object.kind.as_str() {
                            "Namespace" => p.object.name.as_ref(),
                            _ => p.object.namespace.as_ref(),
                        };
                        let namespace =
                            ns.and_then(|ns| by_namespace.get(&(p.cluster, ns.clone())));
                        let own = own_signals(&p.object, &images, doc, vocabulary, namespace);
                        // The item's own hops: without the redirect and the object's hop.
                        let hops = p.evidence.own();
                        let hops = hops
                            .get(usize::from(u.redirected)..hops.len().saturating_sub(1))
                            .unwrap_or(&[]);
                        let overlay = overlay_signals(hops, vocabulary);
                        let decided = decide_class_of_parts(
                            u.cluster_environment,
                            &clusters[p.cluster].name,
                            &[&delivery.deployer, &own, &overlay, &delivery.variants],
                        );
                        // The label decided (its reason is the label signal's own note, shared,
                        // not a copy): the evidence points at the label line.
                        if let Some(n) =
                            namespace.filter(|n| Arc::ptr_eq(&n.signal.note, &decided.1))
                        {
                            p.evidence.push(n.hop.clone());
                        }
                        decided
                    }
                };
                p.object.images = images.into_boxed_slice();
                p.workload_class = class;
                p.class_reason = reason;
                p.class_level = level;
            });
        // One block per placement's remaining questions: freed here, it goes back to the
        // system at once. A signal list per delivery: tens of thousands of small allocations,
        // freed off the serial path.
        drop(undecided);
        crate::background::drop_in_background((delivery_signals, image_overrides));
    }

    /// DESIGN §3: a cluster still `unknown` that receives a production workload is
    /// production, with that workload as evidence. Workload classes do not change: on a
    /// production cluster only the signals decide them.
    pub(super) fn promote_clusters_holding_production(&mut self) {
        for p in &self.placements {
            if !p.is_workload() || p.workload_class != Env::Production {
                continue;
            }
            // Only a cluster still unknown is promoted: say why only for one.
            if self.inventory.clusters[p.cluster].environment != Env::Unknown {
                continue;
            }
            let via = match &p.deployer {
                Some(d) => format!(" by {} {} ({})", d.kind, d.name, d.location),
                None => String::new(),
            };
            self.inventory.promote(
                p.cluster,
                format!(
                    "it holds production workload {}/{}{via}: {}",
                    p.object.kind,
                    p.object.name.as_deref().unwrap_or("?"),
                    p.class_reason
                ),
            );
        }
    }
}

/// What each Namespace placed on a cluster says of its environment through its labels and
/// annotations, by (cluster, namespace). Where one namespace is defined twice on a cluster,
/// the first definition (by file and line) speaks.
fn namespace_signals(
    placements: &[Placement],
    index: &RepoIndex<'_>,
    extra_keys: &[String],
    vocabulary: &crate::topology::env::Vocabulary,
) -> HashMap<(usize, CompactString), NamespaceSignal> {
    let mut first: HashMap<(usize, CompactString), &Placement> = HashMap::default();
    for p in placements.iter().filter(|p| p.object.kind == "Namespace") {
        let (Some(name), Some(_)) = (&p.object.name, p.object.doc) else {
            continue;
        };
        first
            .entry((p.cluster, name.clone()))
            .and_modify(|known| {
                if (&p.object.file, p.object.line) < (&known.object.file, known.object.line) {
                    *known = p;
                }
            })
            .or_insert(p);
    }
    let mut out = HashMap::default();
    for (key, p) in first {
        let Some(doc) = p.object.doc.map(|r| index.doc(r)) else {
            continue;
        };
        let labels = namespaces::environment_labels(doc, extra_keys, vocabulary);
        let Some(label) = namespaces::deciding(&labels) else {
            continue;
        };
        let hop = Evidence::new(
            Location::new(&p.object.file, label.line),
            Hop::NamespaceEnvironment(Box::new(NamespaceEnvironmentHop {
                namespace: key.1.as_str().into(),
                key: label.key.as_str().into(),
                value: label.value.as_str().into(),
                annotation: label.annotation,
                environment: label.env.as_str(),
            })),
        );
        let signal = Signal {
            env: label.env,
            note: format!("namespace {} {}", key.1, label.describe()).into(),
            level: SignalLevel::Own,
        };
        let name_agrees = namespaces::name_agrees(&key.1, label.env, vocabulary);
        out.insert(
            key,
            NamespaceSignal {
                signal,
                hop,
                name_agrees,
            },
        );
    }
    out
}
