//! Argo CD ApplicationSets: their generators' parameter sets (list, clusters, git, matrix,
//! merge), bounded by the scan's budget, and the Applications their template yields.

use super::application::{deliver_app, AppSpec};
use super::generators::{add_values, cluster_params, declare_element_cluster, flatten, git_params};
use super::template::render;
use std::collections::{BTreeMap, HashMap};

use crate::budget::BudgetCut;
use crate::config::Limits;
use crate::documents::{Document, Node};
use crate::evidence::{Evidence, GeneratorHop, Hop};
use crate::location::Location;
use crate::topology::clusters::Inventory;
use crate::topology::family::Family;
use crate::topology::index::{DocRef, RepoIndex};
use crate::topology::kustomize::count_text;
use crate::topology::{Outcome, Signal, Unresolved};

/// One set of generator parameters, with the line that produced it.
#[derive(Debug, Clone, Default)]
pub(super) struct Params {
    pub(super) values: BTreeMap<String, String>,
    pub(super) evidence: Vec<Evidence>,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn run_appset(
    index: &RepoIndex<'_>,
    inventory: &mut Inventory,
    doc: DocRef,
    host: Option<usize>,
    chain: &[Evidence],
    parent_signals: &[Signal],
    limits: &Limits,
    families: &[&dyn Family],
    out: &mut Outcome,
) {
    let d = index.doc(doc);
    let spec = d.root.get("spec");
    let go = go_template(d);
    let Some(template) = spec.and_then(|s| s.get("template")) else {
        out.unresolved.push(Unresolved {
            location: d.at(d.first_line),
            reason: "ApplicationSet has no template".into(),
        });
        return;
    };
    let appset_name = d.id.name.clone().unwrap_or_else(|| "?".into());
    // At most `limit` parameter sets, counted while generating (a matrix is never built
    // whole); what the rest would have been is counted, not materialised.
    let limit = limits.appset_parameter_sets;
    let mut ephemeral = false;
    let mut sets = Vec::new();
    let mut total: u64 = 0;
    let mut overflow = None;
    for g in spec
        .and_then(|s| s.get("generators"))
        .and_then(Node::as_seq)
        .unwrap_or(&[])
    {
        let remaining = limit.saturating_sub(sets.len());
        let generated = generate_bounded(index, inventory, d, g, remaining, limit, out);
        ephemeral |= generated.ephemeral;
        total = total.saturating_add(generated.total);
        // A generator cut only because earlier ones used the budget is counted in `total`.
        overflow = overflow.or(generated.overflow.filter(|(_, _, n)| *n > limit as u64));
        sets.extend(generated.sets);
    }
    note_unmatched_selectors(&appset_name, out);
    if overflow.is_some() || total > limit as u64 {
        let (location, what, count) = overflow.unwrap_or_else(|| {
            (
                d.at(d.first_line),
                format!("the generators of ApplicationSet {appset_name}"),
                total,
            )
        });
        let limit = limit as u64;
        out.cuts.push(BudgetCut::new(
            crate::budget::Budget::AppsetParameterSets,
            Some(location.clone()),
            format!(
                "{what} would yield {} parameter sets; the first {} are expanded, the rest are not",
                count_text(count),
                count_text(count.min(limit))
            ),
        ));
        out.unresolved.push(Unresolved {
            location,
            reason: format!(
                "{what} would yield {} parameter sets; the limit is {} (limits.appset-parameter-sets): the first {} are expanded, the other {} are not placed",
                count_text(count),
                count_text(limit),
                count_text(count.min(limit)),
                count_text(count.saturating_sub(limit)),
            ),
        });
    }
    let hop = Evidence::new(
        d.at(d.first_line),
        Hop::ApplicationSet {
            name: appset_name.as_str().into(),
        },
    );
    let mut chain = chain.to_vec();
    chain.push(hop);
    for params in sets {
        let subst = |s: &str| render(s, &params.values, go);
        // An ephemeral Application's source may depend on the pull request: it is then an
        // opaque placement on the destination rather than nothing.
        match AppSpec::read(template, &d.file, &subst, ephemeral) {
            Ok(mut app) => {
                // Generated Applications stand on the ApplicationSet's document, in its
                // namespace unless the template says another.
                app.doc = Some(doc);
                if app.namespace.is_none() {
                    app.namespace = d.id.namespace.as_deref().map(str::to_owned);
                }
                app.origins.clone_from(&d.origins);
                deliver_app(
                    index,
                    inventory,
                    &app,
                    host,
                    &chain,
                    parent_signals,
                    &params.evidence,
                    ephemeral,
                    families,
                    out,
                )
            }
            Err(reason) => out.unresolved.push(Unresolved {
                // The set's own line (a list element, a matched cluster), not a value's.
                location: params
                    .evidence
                    .iter()
                    .rev()
                    .find(|e| {
                        !matches!(&*e.hop, Hop::Generator(g) if matches!(**g, GeneratorHop::Value { .. }))
                    })
                    .map_or_else(
                    || d.at(d.first_line),
                    |e| e.location.clone(),
                ),
                reason: format!("ApplicationSet {appset_name}: {reason}"),
            }),
        }
    }
}

/// One note for the cluster selectors of an ApplicationSet that match no cluster, at the first
/// of them: a merge of three clusters generators is one ApplicationSet to fix, not three.
fn note_unmatched_selectors(appset_name: &str, out: &mut Outcome) {
    let unmatched = std::mem::take(&mut out.unmatched_selectors);
    let Some((first, _)) = unmatched.first() else {
        return;
    };
    let mut terms: Vec<String> = Vec::new();
    for (_, t) in &unmatched {
        let t = format!("{{{t}}}");
        if !terms.contains(&t) {
            terms.push(t);
        }
    }
    let reason = match terms.as_slice() {
        [one] => format!(
            "clusters generator: the selector {one} matches no cluster declared in this repository (Argo CD cluster Secrets, .envfence.yaml clusters), so where these Applications go is not known"
        ),
        many => format!(
            "ApplicationSet {appset_name}: the selectors of its clusters generators ({}) match no cluster declared in this repository (Argo CD cluster Secrets, .envfence.yaml clusters), so where these Applications go is not known",
            many.join(", ")
        ),
    };
    out.unresolved.push(Unresolved {
        location: first.clone(),
        reason,
    });
}

/// Whether the ApplicationSet renders its template (and its generators' `values`) as Go
/// templates.
fn go_template(d: &Document) -> bool {
    d.root
        .get("spec")
        .and_then(|s| s.get("goTemplate"))
        .and_then(Node::as_str)
        == Some("true")
}

/// Parameter sets of one generator, at most the limit it was given.
#[derive(Debug, Default)]
pub(super) struct Generated {
    pub(super) sets: Vec<Params>,
    pub(super) ephemeral: bool,
    /// How many sets there would be without the limit (saturating).
    pub(super) total: u64,
    /// The outermost generator whose sets were cut: where, which, how many it would yield.
    pub(super) overflow: Option<(Location, String, u64)>,
}

/// Expands a generator into at most `limit` parameter sets, the first ones in Argo CD's
/// order; matrix and merge combine their children here without building the whole product.
/// `ceiling` is the ApplicationSet's limit (a merge's other generators add no sets, so they
/// are cut only there).
// Long: one match over the generator kinds, matrix and merge among them, each a few lines.
pub(super) fn generate_bounded(
    index: &RepoIndex<'_>,
    inventory: &mut Inventory,
    d: &Document,
    g: &Node,
    limit: usize,
    ceiling: usize,
    out: &mut Outcome,
) -> Generated {
    let location = d.at(g.span.line);
    for combiner in ["matrix", "merge"] {
        let Some(node) = g.get(combiner) else {
            continue;
        };
        let children: Vec<Generated> = node
            .get("generators")
            .and_then(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .enumerate()
            .map(|(i, child)| {
                let limit = if combiner == "merge" && i > 0 {
                    ceiling
                } else {
                    limit
                };
                generate_bounded(index, inventory, d, child, limit, ceiling, out)
            })
            .collect();
        let ephemeral = children.iter().any(|c| c.ephemeral);
        let mut children = children.into_iter();
        let Some(first) = children.next() else {
            return Generated::default();
        };
        if combiner == "matrix" {
            let mut inner_overflow = first.overflow;
            let mut total = first.total;
            let mut sets = first.sets;
            for next in children {
                inner_overflow = inner_overflow.or(next.overflow);
                total = total.saturating_mul(next.total);
                let mut product =
                    Vec::with_capacity(sets.len().saturating_mul(next.sets.len()).min(limit));
                'product: for a in &sets {
                    for b in &next.sets {
                        if product.len() >= limit {
                            break 'product;
                        }
                        let mut values = a.values.clone();
                        values.extend(b.values.iter().map(|(k, v)| (k.clone(), v.clone())));
                        let mut evidence = a.evidence.clone();
                        evidence.extend(b.evidence.iter().cloned());
                        product.push(Params { values, evidence });
                    }
                }
                sets = product;
            }
            // The product's own count, else a merge inside it that lost sets.
            let overflow = if total > limit as u64 {
                Some((location, "matrix generator".to_owned(), total))
            } else {
                inner_overflow.filter(|_| total > 0)
            };
            return Generated {
                sets,
                ephemeral,
                total,
                overflow,
            };
        }
        let keys: Vec<String> = node
            .get("mergeKeys")
            .and_then(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect();
        let mut base = first.sets;
        let mut overflow = (first.total > limit as u64)
            .then(|| (location.clone(), "merge generator".to_owned(), first.total))
            .or(first.overflow);
        let mut repeated = false;
        for next in children {
            overflow = overflow.or(next.overflow);
            if keys.is_empty() {
                continue;
            }
            // Index the other generator by its merge-key values: linear, not |base|×|next|.
            // A set without every merge key (a declared cluster with no server, merged on
            // `server`) matches no other: it is kept as it is, never merged with another
            // that also lacks the key.
            let key_of = |p: &Params| -> Option<Vec<String>> {
                keys.iter().map(|k| p.values.get(k).cloned()).collect()
            };
            // Argo CD rejects repeated merge keys; the first set with a key is the one merged.
            let mut by_key: HashMap<Vec<String>, &Params> = HashMap::new();
            for b in next.sets.iter().rev() {
                if let Some(key) = key_of(b) {
                    repeated |= by_key.insert(key, b).is_some();
                }
            }
            for a in base.iter_mut() {
                if let Some(b) = key_of(a).and_then(|key| by_key.get(&key)) {
                    a.values
                        .extend(b.values.iter().map(|(k, v)| (k.clone(), v.clone())));
                    a.evidence.extend(b.evidence.iter().cloned());
                }
            }
        }
        if repeated {
            out.unresolved.push(Unresolved {
                location: location.clone(),
                reason: "merge generator: several parameter sets share the same merge key values, which Argo CD rejects; envfence merges the first of them".into(),
            });
        }
        return Generated {
            sets: base,
            ephemeral,
            total: first.total,
            overflow,
        };
    }
    let (mut sets, ephemeral) = generate(index, inventory, d, g, out);
    let total = sets.len() as u64;
    let overflow = (sets.len() > limit).then(|| {
        let kind = g
            .as_map()
            .and_then(|entries| entries.first())
            .and_then(|e| e.key.as_str())
            .unwrap_or("?");
        (location, format!("{kind} generator"), total)
    });
    sets.truncate(limit);
    add_values(&d.file, g, go_template(d), &mut sets);
    Generated {
        sets,
        ephemeral,
        total,
        overflow,
    }
}

/// Expands one leaf generator (matrix and merge are `generate_bounded`'s) into parameter
/// sets; the flag says its Applications are ephemeral.
pub(super) fn generate(
    index: &RepoIndex<'_>,
    inventory: &mut Inventory,
    d: &Document,
    g: &Node,
    out: &mut Outcome,
) -> (Vec<Params>, bool) {
    let at = |line: u32| d.at(line);
    if let Some(list) = g.get("list") {
        let mut sets = Vec::new();
        for element in list.get("elements").and_then(Node::as_seq).unwrap_or(&[]) {
            let mut values = BTreeMap::new();
            flatten("", element, &mut values);
            declare_element_cluster(inventory, &values, at(element.span.line));
            let summary: Vec<String> = values
                .iter()
                .take(4)
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            sets.push(Params {
                values,
                evidence: vec![Evidence::new(
                    at(element.span.line),
                    Hop::Generator(Box::new(GeneratorHop::ListElement {
                        summary: summary.join(", ").into(),
                    })),
                )],
            });
        }
        if list.get("elementsYaml").is_some() {
            out.unresolved.push(Unresolved {
                location: at(list.span.line),
                reason: "list generator elementsYaml is computed at run time".into(),
            });
        }
        return (sets, false);
    }
    if let Some(clusters) = g.get("clusters") {
        return (cluster_params(inventory, clusters, &at, out), false);
    }
    if let Some(git) = g.get("git") {
        let this = inventory
            .repository
            .classify(git.get("repoURL").and_then(Node::as_str));
        return (git_params(index, git, &this, g.span.line, &at, out), false);
    }
    // Pull requests and SCM repositories are known only at run time: one ephemeral,
    // non-production Application on the template's destination stands for them.
    for (kind, what) in [
        ("pullRequest", "one Application per open pull request"),
        (
            "scmProvider",
            "one Application per repository the SCM provider finds",
        ),
    ] {
        if let Some(node) = g.get(kind) {
            return (
                vec![Params {
                    values: BTreeMap::new(),
                    evidence: vec![Evidence::new(
                        at(node.span.line),
                        Hop::Generator(Box::new(GeneratorHop::Ephemeral {
                            kind: kind.into(),
                            what: what.into(),
                        })),
                    )],
                }],
                true,
            );
        }
    }
    for (kind, why) in [
        (
            "clusterDecisionResource",
            "cluster decision resource generator: clusters are decided at run time",
        ),
        (
            "plugin",
            "plugin generator: parameters come from a plugin at run time",
        ),
    ] {
        if let Some(node) = g.get(kind) {
            out.unresolved.push(Unresolved {
                location: at(node.span.line),
                reason: why.into(),
            });
            // One parameter set with no values: a template whose destination and path do not
            // depend on the parameters still places its Applications.
            return (
                vec![Params {
                    values: BTreeMap::new(),
                    evidence: vec![Evidence::new(
                        at(node.span.line),
                        Hop::Generator(Box::new(GeneratorHop::RunTime { kind: kind.into() })),
                    )],
                }],
                false,
            );
        }
    }
    out.unresolved.push(Unresolved {
        location: at(g.span.line),
        reason: "unknown ApplicationSet generator".into(),
    });
    (Vec::new(), false)
}
