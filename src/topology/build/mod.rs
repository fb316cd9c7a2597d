//! The topology build: a worklist over the deployer families (DESIGN §3).
//!
//! Families declare their clusters, then seed the worklist stage by stage (the repository's
//! own cluster folders, deployers no placement reached, then conventions for what is still
//! unreached). Delivering a folder to a cluster places every object it expands to; a placed
//! object that is itself a deployer runs on that cluster and delivers its own payload. When
//! the worklist is empty the families say what they could not follow, the classes of all
//! placements are decided on all cores, and tiers and purposes follow.

mod classes;
mod order;
mod placed;
mod worklist;

pub use worklist::Worklist;

use crate::config::Config;
use crate::documents::{SkipReason, SourceFile};
use crate::location::Location;
use crate::topology::expand::helm;
use crate::topology::expand::kustomize;
use crate::topology::family::{self, Family, NoteContext, Notes, Stage};
use crate::topology::index::RepoIndex;
use crate::topology::inventory::clusters::Inventory;
use crate::topology::{advice, coverage, tiers, HashSet, Topology, Unresolved};
use crate::walk::Skipped;

/// Builds the topology of a parsed repository. `skipped` lists files that were not parsed
/// (templates that define deployers become unresolved entries).
pub fn build(files: &[SourceFile], skipped: &[Skipped], config: &Config) -> Topology {
    let renders = helm::Renders::none(
        helm::Availability::Off("this build does not render charts"),
        files.len(),
    );
    build_with(files, skipped, config, &renders)
}

/// Builds the topology with the charts rendered so far: `files[renders.first_rendered..]` are
/// their output. The result lists the renders it asked for (`render_requests`).
pub fn build_with(
    files: &[SourceFile],
    skipped: &[Skipped],
    config: &Config,
    renders: &helm::Renders,
) -> Topology {
    build_with_families(files, skipped, config, renders, family::REGISTRY)
}

/// [`build_with`] over the given families: the registry, or a test's own.
pub(crate) fn build_with_families(
    files: &[SourceFile],
    skipped: &[Skipped],
    config: &Config,
    renders: &helm::Renders,
    families: &[&dyn Family],
) -> Topology {
    let mut index = RepoIndex::with_rendered(files, renders.first_rendered);
    // The budgets grow with what was read: an honest monorepo is judged whole, while what
    // a hostile one expands to stays a fixed multiple of its own size.
    let documents: usize = files.iter().map(|f| f.documents.len()).sum();
    let limits = config.limits.for_documents(documents);
    // kustomize's JSON patches and replacements change objects before anything is placed:
    // the changed documents join the index, and the expansions find them by level.
    let prepared = kustomize::prepare_edits(&index, Some(renders), &limits);
    index.add_changed(prepared.files, prepared.origins);
    let mut inventory = Inventory::build(config);
    for f in families {
        f.declare_clusters(&index, &mut inventory);
    }
    let mut worklist = Worklist::new(
        &index, inventory, config, limits, renders, families, skipped,
    );
    worklist.use_edits(prepared.table, prepared.cuts);
    for stage in [Stage::Roots, Stage::Deployers, Stage::Conventions] {
        for f in families.iter().filter(|f| f.stage() == Some(stage)) {
            f.seed(&mut worklist);
            worklist.drain();
        }
    }

    let mut notes = Notes::default();
    let cx = NoteContext {
        index: &index,
        files,
        skipped,
        renders,
        installed: worklist.installed(),
        expanded: &|dir: &str| worklist.reached(dir),
    };
    for f in families {
        f.notes(&cx, &mut notes);
    }
    template_notes(
        families,
        skipped,
        renders,
        worklist.installed(),
        &mut notes.always,
    );
    notes
        .unless_covered
        .extend(kustomize::unexpanded_chart_notes(&index, &|dir: &str| {
            worklist.reached(dir)
        }));
    let Notes {
        always,
        unless_covered,
        roots,
    } = notes;
    worklist.note_all(always);
    let covered: HashSet<(std::sync::Arc<str>, u32)> = worklist
        .notes()
        .iter()
        .map(|u| (std::sync::Arc::clone(&u.location.file), u.location.line))
        .collect();
    let unless_covered: Vec<Unresolved> = unless_covered
        .into_iter()
        .filter(|u| !covered.contains(&(std::sync::Arc::clone(&u.location.file), u.location.line)))
        .collect();
    worklist.note_all(unless_covered);
    worklist.decide_classes();
    worklist.promote_clusters_holding_production();
    let done = worklist.finish();

    let mut inventory = done.inventory;
    let mut placements = done.placements;
    placements.shrink_to_fit();
    let roots: Vec<_> = roots.into_iter().collect();
    let object_coverage = coverage::compute(&index, &placements, &done.stood_for, &roots);
    let manifests = index
        .all_docs()
        .filter(|(_, d)| d.is_manifest() && !crate::topology::index::is_local_config(d))
        .count();
    let advice = advice::compute(advice::Inputs {
        index: &index,
        clusters: &inventory.clusters,
        vocabulary: inventory.vocabulary(),
        coverage: &object_coverage,
        selectors: families
            .iter()
            .flat_map(|f| f.cluster_selectors(&index))
            .collect(),
        placed_any: !placements.is_empty(),
        // Only a repository where nothing was placed needs the answer (a catalog has no
        // deployer): asking every document of a large repository costs time.
        has_deployer: placements.is_empty()
            && index
                .all_docs()
                .any(|(_, d)| family::family_of_deployer(families, d).is_some()),
    });
    let mut topology = Topology {
        clusters: std::mem::take(&mut inventory.clusters),
        placements,
        unresolved: done.unresolved,
        cuts: done.cuts,
        manifests,
        object_coverage,
        rendered_from: renders.first_rendered,
        render_requests: done.requests,
        rendered_values: done.rendered_values,
        advice,
        changed_from: files.len(),
        changed: Vec::new(),
        changed_origins: index.changed_origins().to_vec(),
        delivered: done.delivered,
    };
    topology.manifests += topology.rendered_objects();
    for p in &mut topology.placements {
        p.cluster_environment = topology.clusters[p.cluster].environment;
    }
    tiers::assign_tiers(&mut topology.clusters, config);
    tiers::assign_purposes(&mut topology, &index);
    topology.changed = index.take_changed();
    order::sort_placements(&mut topology.placements);
    topology
        .unresolved
        .sort_by(|a, b| (&a.location, &a.reason).cmp(&(&b.location, &b.reason)));
    topology.unresolved.dedup();
    crate::budget::settle(&mut topology.cuts);
    // Tens of thousands of small allocations at 5,000 apps (7 ms to free, one at a time).
    crate::background::let_go((index, inventory));
    topology
}

/// A note for each chart whose Helm templates define a family's deployers and that nothing
/// in the repository installs: where those deploy is not known, and an entry point would say.
/// A chart some deployer installs is placed when rendered, and otherwise its install's own
/// note says why it is not (rendering off, helm missing, a failed render).
fn template_notes(
    families: &[&dyn Family],
    skipped: &[Skipped],
    renders: &helm::Renders,
    installed: &std::collections::BTreeSet<String>,
    out: &mut Vec<Unresolved>,
) {
    // Per chart: what its templates define, and how many do.
    let mut charts: std::collections::BTreeMap<&str, (Vec<&'static str>, usize)> =
        std::collections::BTreeMap::new();
    for skip in skipped {
        let SkipReason::HelmTemplate { kinds, apis } = &skip.reason else {
            continue;
        };
        let claimed = kinds.iter().find_map(|kind| {
            families.iter().flat_map(|f| f.template_kinds()).find(|t| {
                t.kind == kind.as_str()
                    && t.api
                        .is_none_or(|api| apis.iter().any(|a| a.starts_with(api)))
            })
        });
        let Some(claimed) = claimed else {
            continue;
        };
        let Some(at) = skip
            .rel_path
            .find("/templates/")
            .or_else(|| skip.rel_path.starts_with("templates/").then_some(0))
        else {
            continue;
        };
        let chart = &skip.rel_path[..at];
        // A chart, or a dependency in its `charts/`, that something installs.
        let installs = |c: &str| installed.contains(c) || renders.rendered_chart(c);
        let mut up = chart;
        let mut by_parent = false;
        while let Some(i) = up.rfind("/charts/") {
            up = &up[..i];
            by_parent |= installs(up);
        }
        if installs(chart) || by_parent {
            continue;
        }
        let entry = charts.entry(chart).or_default();
        if !entry.0.contains(&claimed.described) {
            entry.0.push(claimed.described);
        }
        entry.1 += 1;
    }
    // A chart some deployer installs but that was not rendered may install others: then
    // envfence cannot say that nothing does.
    let unrendered: Vec<&String> = installed
        .iter()
        .filter(|c| !renders.rendered_chart(c))
        .collect();
    for (chart, (described, templates)) in charts {
        let chart_yaml = if chart.is_empty() {
            "Chart.yaml".to_owned()
        } else {
            format!("{chart}/Chart.yaml")
        };
        let shown = if chart.is_empty() { "." } else { chart };
        out.push(Unresolved {
            location: Location::new(&std::sync::Arc::from(chart_yaml.as_str()), 1),
            reason: format!(
                "chart {shown}, whose templates define {} ({templates} template{}), is installed by {}, so where they deploy is not known; if something outside the repository installs it (a bootstrap command, Terraform), declare it under entrypoints: in .envfence.yaml with the cluster it is installed on",
                described.join(" and "),
                if templates == 1 { "" } else { "s" },
                match unrendered.first() {
                    None => "nothing in this repository".to_owned(),
                    Some(first) => format!(
                        "nothing envfence could read ({}{}, which it could not render, may install it)",
                        if first.is_empty() { "." } else { first.as_str() },
                        if unrendered.len() > 1 {
                            let more = unrendered.len() - 1;
                            format!(" and {more} more chart{}", if more == 1 { "" } else { "s" })
                        } else {
                            String::new()
                        }
                    ),
                },
            ),
        });
    }
}
