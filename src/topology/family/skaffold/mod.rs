//! Skaffold: `skaffold.yaml` configs pushed from a workstation or a pipeline (`skaffold run
//! -p production`). Each profile whose name is an environment word, or that is activated by
//! a kube-context, or that sets `deploy.kubeContext`, is one run: the configs it reaches
//! through `requires` (with the profile propagated to those that define it, and their
//! `activeProfiles`) deploy their kustomize paths, raw manifests and Helm releases to that
//! run's cluster. Without a profile a config deploys to the current kube-context: only a
//! `deploy.kubeContext` names that cluster; otherwise a note says it is not known.
//!
//! Configs are tool data, not Kubernetes objects (`documents::is_tool_config`): each root
//! config (one no other config requires) is run as a deployer once, with no host, and every
//! run of its graph comes out of that one job.

mod config;

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::budget::{Budget, BudgetCut};
use crate::documents::Document;
use crate::evidence::{Evidence, Hop, OpaqueHop, SkaffoldHop, SkaffoldTarget, ValuesFileHop};
use crate::location::Location;
use crate::topology::build::Worklist;
use crate::topology::expand::helm::{
    is_chart, ChartInstall, RenderFlags, RenderRequest, ValuesInput,
};
use crate::topology::expand::kustomize::DirectoryMode;
use crate::topology::family::{
    deployer_signal, note_at, opaque_placement, Family, FamilyRoot, Job, NoteContext, Notes,
    Opaque, Outcome, RunContext, Stage,
};
use crate::topology::index::{self, RepoIndex};
use crate::topology::inventory::clusters::Inventory;
use crate::topology::{Delivery, Deployer, DeployerKind, PlacedObject, Signal, Unresolved};

use config::{Applied, PathEntry, Pipeline, Profile, SkConfig};

/// Skaffold configs and their profiles.
pub struct Skaffold;

/// Configs one root may deploy over all its runs (each profile run and the run without a
/// profile, each config of the `requires` graph once per run).
pub const MAX_RUNS: usize = 10_000;

const FAMILY: &str = "Skaffold";

impl Family for Skaffold {
    fn name(&self) -> &'static str {
        FAMILY
    }

    fn is_deployer(&self, d: &Document) -> bool {
        config::is_config(d)
    }

    fn stage(&self) -> Option<Stage> {
        Some(Stage::Deployers)
    }

    fn seed(&self, w: &mut Worklist<'_>) {
        let configs = config::read_configs(w.index());
        if configs.is_empty() {
            return;
        }
        let graph = Graph::new(&configs);
        let required: BTreeSet<usize> = graph.edges.iter().flatten().map(|(_, t)| *t).collect();
        // Roots first; then configs only a cycle reaches.
        let mut order: Vec<usize> = (0..configs.len())
            .filter(|i| !required.contains(i))
            .collect();
        order.extend((0..configs.len()).filter(|i| required.contains(i)));
        let mut done: BTreeSet<usize> = BTreeSet::new();
        for i in order {
            if done.contains(&i) {
                continue;
            }
            done.extend(graph.closure(i));
            w.run(configs[i].doc, None, Vec::new());
        }
    }

    fn run(&self, cx: &mut RunContext<'_, '_>, job: &Job<'_>) -> Outcome {
        let configs = config::read_configs(cx.index);
        let mut out = Outcome::default();
        let Some(root) = configs.iter().position(|c| c.doc == job.doc) else {
            return out;
        };
        let graph = Graph::new(&configs);
        let mut runner = Runner {
            configs: &configs,
            graph: &graph,
            index: cx.index,
            inventory: cx.inventory,
            out: &mut out,
            steps: 0,
            cut: false,
            chain: job.chain,
        };
        runner.notes_once(root);
        // Each profile name of the graph that names where it deploys is one run.
        let mut names: BTreeSet<&str> = BTreeSet::new();
        for c in graph.closure(root) {
            for p in &configs[c].profiles {
                names.insert(&p.name);
            }
        }
        for name in names {
            if let Some(target) = runner.target(root, name) {
                runner.walk(root, Some(name), target);
            }
        }
        runner.walk(root, None, None);
        out
    }

    fn notes(&self, cx: &NoteContext<'_, '_>, out: &mut Notes) {
        // A config run without a profile deploys to the current kube-context: only
        // `deploy.kubeContext` names it. Said of what no deployer reached.
        for c in config::read_configs(cx.index) {
            let (root, _, _) = config::effective(&c, &[]);
            let pipeline = config::pipeline(&root);
            if pipeline.kube_context.is_some() {
                continue;
            }
            let unreached = unreached_entries(cx, &c, &pipeline);
            if unreached.is_empty() {
                continue;
            }
            let line = c.d.line_of("metadata.name").unwrap_or(c.d.first_line);
            note_at(out, c.d, line, format!(
                "Skaffold config {} deploys {} without a profile to the current kube-context, and no deploy.kubeContext names it, so which cluster that is is not known",
                c.name,
                unreached.join(", ")
            ));
        }
        // The folders of skaffold.yaml files below the root are Skaffold's (a root
        // skaffold.yaml says nothing of the repository's other folders).
        for c in config::read_configs(cx.index) {
            if !c.dir.is_empty() {
                out.roots.insert(FamilyRoot {
                    dir: c.dir.clone(),
                    family: FAMILY,
                });
            }
        }
    }
}

/// The `requires` edges of each config: the entry's position, the config it names.
struct Graph {
    edges: Vec<Vec<(usize, usize)>>,
}

impl Graph {
    fn new(configs: &[SkConfig<'_>]) -> Self {
        let edges = configs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut out = Vec::new();
                for (k, r) in c.requires.iter().enumerate() {
                    if r.remote.is_some() {
                        continue;
                    }
                    let file = r.path.as_deref();
                    for (j, t) in configs.iter().enumerate() {
                        let same_file = match file {
                            Some(path) => *t.d.file == *path,
                            None => t.d.file == c.d.file,
                        };
                        let named =
                            r.configs.is_empty() || (t.named && r.configs.contains(&t.name));
                        // A `configs:` list without a path names configs of any file.
                        let by_name = file.is_none() && !r.configs.is_empty() && named;
                        if j != i && ((same_file && named) || by_name) {
                            out.push((k, j));
                        }
                    }
                }
                out
            })
            .collect();
        Graph { edges }
    }

    /// The configs `root` reaches, itself included.
    fn closure(&self, root: usize) -> BTreeSet<usize> {
        let mut seen = BTreeSet::from([root]);
        let mut stack = vec![root];
        while let Some(c) = stack.pop() {
            for &(_, t) in &self.edges[c] {
                if seen.insert(t) {
                    stack.push(t);
                }
            }
        }
        seen
    }
}

/// Where a profile run deploys when a config of it sets no `deploy.kubeContext`.
#[derive(Clone)]
struct Target {
    cluster: String,
    by: SkaffoldTarget,
    at: Location,
}

/// One root's runs.
struct Runner<'r, 'a> {
    configs: &'r [SkConfig<'a>],
    graph: &'r Graph,
    index: &'r RepoIndex<'a>,
    inventory: &'r mut Inventory,
    out: &'r mut Outcome,
    steps: usize,
    cut: bool,
    chain: &'r [Evidence],
}

impl Runner<'_, '_> {
    fn note(&mut self, d: &Document, line: u32, reason: String) {
        self.out.unresolved.push(Unresolved {
            location: d.at(line),
            reason,
        });
    }

    /// Notes about what no run follows, once per config of the root's graph: remote
    /// `requires`, profiles activated by an environment variable, profiles that name no
    /// cluster.
    fn notes_once(&mut self, root: usize) {
        for c in self.graph.closure(root) {
            let config = &self.configs[c];
            for r in &config.requires {
                if let Some((kind, what)) = &r.remote {
                    self.note(config.d, r.line, format!(
                        "Skaffold config {} requires a remote config ({kind}: {what}); envfence does not fetch it, so what it deploys is not known",
                        config.name
                    ));
                } else if r.path.is_some()
                    && !self.graph.edges[c]
                        .iter()
                        .any(|(k, _)| config.requires.get(*k).is_some_and(|x| x.line == r.line))
                {
                    self.note(config.d, r.line, format!(
                        "Skaffold config {} requires {} {}, which is not a Skaffold config of this repository",
                        config.name,
                        r.written.as_deref().unwrap_or("?"),
                        r.configs.join(", ")
                    ));
                }
            }
            for p in &config.profiles {
                for (env, line) in p.activation_envs() {
                    self.note(config.d, line, format!(
                        "Skaffold profile {} of config {} is activated by the environment variable condition {env}; envfence does not read the environment, so it follows the profile only by its name",
                        p.name, config.name
                    ));
                }
                if p.changes_deploy() && self.target_of(c, p).is_none() {
                    self.note(config.d, p.line, format!(
                        "Skaffold profile {} of config {} names no environment and no kube-context, so where `skaffold run -p {}` deploys is not known",
                        p.name, config.name, p.name
                    ));
                }
            }
        }
    }

    /// The cluster profile `p` of config `c` names by itself.
    fn target_of(&self, c: usize, p: &Profile<'_>) -> Option<Target> {
        let d = self.configs[c].d;
        if let Some((ctx, line)) = p.kube_context() {
            return Some(Target {
                cluster: ctx.to_owned(),
                by: SkaffoldTarget::KubeContext,
                at: d.at(line),
            });
        }
        if let Some((ctx, line)) = p.activation_context() {
            return Some(Target {
                cluster: ctx.to_owned(),
                by: SkaffoldTarget::Activation,
                at: d.at(line),
            });
        }
        self.inventory
            .vocabulary()
            .classify(&p.name)
            .map(|_| Target {
                cluster: p.name.clone(),
                by: SkaffoldTarget::ProfileName,
                at: d.at(p.line),
            })
    }

    /// Where `skaffold run -p name` from `root` deploys: the first config of the graph
    /// (breadth first from the root) whose profile of that name names a cluster.
    fn target(&self, root: usize, name: &str) -> Option<Option<Target>> {
        let mut queue = std::collections::VecDeque::from([root]);
        let mut seen = BTreeSet::from([root]);
        let mut defined = false;
        while let Some(c) = queue.pop_front() {
            if let Some(p) = self.configs[c].profiles.iter().find(|p| p.name == name) {
                defined = true;
                if let Some(t) = self.target_of(c, p) {
                    return Some(Some(t));
                }
            }
            for &(_, t) in &self.graph.edges[c] {
                if seen.insert(t) {
                    queue.push_back(t);
                }
            }
        }
        // A profile that names nothing still runs where its configs set a kubeContext.
        defined.then_some(None)
    }

    /// One run from `root`: with `profile` active (and propagated), or none; configs deploy
    /// to their own `deploy.kubeContext`, else to `target`.
    fn walk(&mut self, root: usize, profile: Option<&str>, target: Option<Target>) {
        let mut visited: BTreeSet<usize> = BTreeSet::new();
        let root_active: BTreeSet<String> = profile
            .filter(|p| self.configs[root].profiles.iter().any(|x| x.name == *p))
            .map(|p| BTreeSet::from([p.to_owned()]))
            .unwrap_or_default();
        let mut stack: Vec<(usize, BTreeSet<String>, Vec<Evidence>)> =
            vec![(root, root_active, self.chain.to_vec())];
        while let Some((c, active, chain)) = stack.pop() {
            if !visited.insert(c) {
                continue;
            }
            self.steps += 1;
            if self.steps > MAX_RUNS {
                if !self.cut {
                    self.cut = true;
                    let at = self.configs[root].d.at(self.configs[root].d.first_line);
                    let detail = format!(
                        "Skaffold config {}: the first {MAX_RUNS} config runs of its profiles and requires are followed, the rest are not",
                        self.configs[root].name
                    );
                    self.out.unresolved.push(Unresolved {
                        location: at.clone(),
                        reason: detail.clone(),
                    });
                    self.out
                        .cuts
                        .push(BudgetCut::new(Budget::SkaffoldRuns, Some(at), detail));
                }
                return;
            }
            self.deploy(c, profile, &active, target.as_ref(), &chain);
            let config = &self.configs[c];
            let mut children = Vec::new();
            for &(k, t) in self.graph.edges[c].iter().rev() {
                let r = &config.requires[k];
                let child = &self.configs[t];
                let mut child_active: BTreeSet<String> = BTreeSet::new();
                if let Some(p) = profile {
                    if child.profiles.iter().any(|x| x.name == p) {
                        child_active.insert(p.to_owned());
                    }
                }
                for (name, by) in &r.active {
                    if by.is_empty() || by.iter().any(|b| active.contains(b)) {
                        child_active.insert(name.clone());
                    }
                }
                let mut next = chain.clone();
                next.push(Evidence::new(
                    config.d.at(r.line),
                    Hop::Skaffold(Box::new(SkaffoldHop::Requires {
                        from: config.name.as_str().into(),
                        to: child.name.as_str().into(),
                        profiles: child_active
                            .iter()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                            .into(),
                    })),
                ));
                children.push((t, child_active, next));
            }
            stack.extend(children);
        }
    }

    /// Deploys config `c` of a run with its `active` profiles.
    fn deploy(
        &mut self,
        c: usize,
        profile: Option<&str>,
        active: &BTreeSet<String>,
        target: Option<&Target>,
        chain: &[Evidence],
    ) {
        let config = &self.configs[c];
        let profiles: Vec<&Profile<'_>> = config
            .profiles
            .iter()
            .filter(|p| active.contains(&p.name))
            .collect();
        let (root, applied, failed) = config::effective(config, &profiles);
        let pipeline = config::pipeline(&root);
        for (line, why) in failed {
            self.note(config.d, line, format!(
                "Skaffold config {}: a profile patch does not apply ({why}); Skaffold would stop here, and envfence reads the config without it",
                config.name
            ));
        }
        let (cluster, by, at) = match (&pipeline.kube_context, target) {
            (Some((ctx, line)), _) => {
                (ctx.clone(), SkaffoldTarget::KubeContext, config.d.at(*line))
            }
            (None, Some(t)) => (t.cluster.clone(), t.by, t.at.clone()),
            // Without a profile or a kubeContext: the current kube-context, which nothing
            // names; `notes` says so of what no other deployer reached.
            (None, None) => return,
        };
        if profile.is_none() && pipeline.is_empty() {
            return;
        }
        let (cluster_index, _) =
            self.inventory
                .resolve_destination(Some(&cluster), None, at.clone());
        let mut head = vec![Evidence::new(
            at.clone(),
            Hop::Skaffold(Box::new(SkaffoldHop::Run {
                config: config.name.as_str().into(),
                profile: profile.map(Into::into),
                cluster: cluster.as_str().into(),
                by,
            })),
        )];
        head.extend(chain.iter().cloned());
        let mut signals: Vec<Signal> = Vec::new();
        let vocabulary = self.inventory.vocabulary();
        if let Some(p) = profile {
            signals.extend(deployer_signal(vocabulary, p, || {
                format!("Skaffold profile {p}")
            }));
        }
        let name = config.name.clone();
        signals.extend(deployer_signal(vocabulary, &name, || {
            format!("Skaffold config {name}")
        }));
        let deployer = Deployer {
            kind: DeployerKind::Object("Skaffold Config"),
            name: match profile {
                Some(p) => format!("{} -p {p}", config.name),
                None => config.name.clone(),
            },
            location: at,
        };
        let cx = Deploy {
            config,
            cluster: cluster_index,
            head,
            signals,
            deployer,
            applied: &applied,
        };
        self.deliver(&cx, &pipeline);
    }

    fn deliver(&mut self, cx: &Deploy<'_, '_>, pipeline: &Pipeline) {
        let config = cx.config;
        for e in &pipeline.kustomize {
            if e.value.contains("{{") {
                self.templated(config, e);
                continue;
            }
            let Some(dir) = index::join(&config.dir, &e.value, false) else {
                self.outside(config, e);
                continue;
            };
            if !self.index.is_dir(&dir) {
                self.note(config.d, e.line, format!(
                    "Skaffold config {}: {} {} is not a folder of this repository, so nothing is deployed from it",
                    config.name, e.field, e.value
                ));
                continue;
            }
            let chain = cx.chain_for(e);
            self.out.deliveries.push(Delivery {
                signals: cx.signals.clone(),
                ..Delivery::new(cx.deployer_at(e), cx.cluster, dir, chain)
            });
        }
        for e in &pipeline.raw {
            if e.value.contains("{{") {
                self.templated(config, e);
                continue;
            }
            if e.value.contains("://") {
                self.note(
                    config.d,
                    e.line,
                    format!(
                        "Skaffold config {}: {} {} is a remote URL; envfence does not fetch it",
                        config.name, e.field, e.value
                    ),
                );
                continue;
            }
            let files = raw_files(self.index, &config.dir, &e.value);
            if files.is_empty() && !e.field.contains("default") {
                self.note(
                    config.d,
                    e.line,
                    format!(
                        "Skaffold config {}: {} {} matches no file of this repository",
                        config.name, e.field, e.value
                    ),
                );
            }
            for file in files {
                let mut names = globset::GlobSetBuilder::new();
                if let Ok(g) = globset::Glob::new(&globset::escape(index::basename(&file))) {
                    names.add(g);
                }
                self.out.deliveries.push(Delivery {
                    mode: DirectoryMode {
                        include: names.build().ok(),
                        ..DirectoryMode::default()
                    },
                    signals: cx.signals.clone(),
                    ..Delivery::new(
                        cx.deployer_at(e),
                        cx.cluster,
                        index::parent(&file).to_owned(),
                        cx.chain_for(e),
                    )
                });
            }
        }
        for r in &pipeline.helm {
            self.release(cx, r);
        }
    }

    fn templated(&mut self, config: &SkConfig<'_>, e: &PathEntry) {
        self.note(config.d, e.line, format!(
            "Skaffold config {}: {} {} is a template of the environment; envfence does not evaluate it",
            config.name, e.field, e.value
        ));
    }

    fn outside(&mut self, config: &SkConfig<'_>, e: &PathEntry) {
        self.note(
            config.d,
            e.line,
            format!(
                "Skaffold config {}: {} {} leaves the repository; envfence reads nothing outside it",
                config.name, e.field, e.value
            ),
        );
    }

    /// A Helm release: a local chart rendered with its values files and `setValues`, a
    /// remote chart an opaque placement.
    fn release(&mut self, cx: &Deploy<'_, '_>, r: &config::Release) {
        let config = cx.config;
        for (key, line) in &r.templates {
            self.note(config.d, *line, format!(
                "Skaffold release {}: setValueTemplates {key} is a template of the environment; envfence renders the chart without it",
                r.name
            ));
        }
        if let Some(remote) = &r.remote {
            self.opaque(cx, r, remote);
            return;
        }
        let Some(e) = &r.chart_path else {
            self.note(config.d, r.line, format!(
                "Skaffold release {} of config {} names no chartPath or remoteChart, so what it deploys is not known",
                r.name, config.name
            ));
            return;
        };
        if e.value.contains("{{") {
            self.templated(config, e);
            return;
        }
        let chart = index::join(&config.dir, &e.value, false);
        let Some(chart) = chart.filter(|c| is_chart(self.index, c)) else {
            // Not a chart folder here: a chart of a repository Skaffold adds (`repo/chart`).
            self.opaque(cx, r, &e.value);
            return;
        };
        let mut values = Vec::new();
        let mut values_evidence = Vec::new();
        let mut notes = Vec::new();
        for v in &r.values_files {
            match index::join(&config.dir, &v.value, false).filter(|p| self.index.file(p).is_some()) {
                Some(p) => {
                    values_evidence.push(Evidence::new(
                        config.d.at(v.line),
                        Hop::ValuesFile(Box::new(ValuesFileHop {
                            path: p.as_str().into(),
                            via: Some("Skaffold valuesFiles".into()),
                        })),
                    ));
                    values.push(ValuesInput::File(p));
                }
                None => notes.push(Unresolved {
                    location: config.d.at(v.line),
                    reason: format!(
                        "Skaffold release {}: values file {} is not a file of this repository; the chart is rendered without it",
                        r.name, v.value
                    ),
                }),
            }
        }
        let set = r
            .set
            .iter()
            .map(|(k, v)| (k.clone(), v.clone(), false))
            .collect();
        self.out.charts.push(ChartInstall {
            request: RenderRequest {
                chart: chart.clone(),
                release: r.name.clone(),
                namespace: r.namespace.clone(),
                values,
                set,
                flags: RenderFlags::default(),
            },
            delivery: Delivery {
                default_namespace: r.namespace.clone(),
                signals: cx.signals.clone(),
                ..Delivery::new(cx.deployer_at(e), cx.cluster, chart, cx.chain_for(e))
            },
            values_evidence,
            notes,
            fallback: Vec::new(),
            fallback_notes: Vec::new(),
        });
    }

    /// A release of a chart envfence cannot read: it stands for its payload on the run's
    /// cluster, judged by its own names.
    fn opaque(&mut self, cx: &Deploy<'_, '_>, r: &config::Release, chart: &str) {
        let config = cx.config;
        let mut evidence = cx.head.clone();
        evidence.push(Evidence::new(
            config.d.at(r.line),
            Hop::Opaque(Box::new(OpaqueHop {
                kind: "Skaffold Helm release".into(),
                name: r.name.as_str().into(),
                why: format!("the chart {chart} is not in this repository").into(),
                judged_by: "release name, config name and profile",
            })),
        ));
        let mut signals = cx.signals.clone();
        let name = r.name.clone();
        signals.extend(deployer_signal(self.inventory.vocabulary(), &name, || {
            format!("Skaffold release {name}")
        }));
        let placement = opaque_placement(
            Opaque {
                object: PlacedObject {
                    file: Arc::clone(&config.d.file),
                    line: r.line,
                    doc: Some(config.doc),
                    kind: "HelmRelease".into(),
                    name: Some(r.name.as_str().into()),
                    namespace: r.namespace.as_deref().map(Into::into),
                    images: Box::default(),
                },
                cluster: cx.cluster,
                signals,
                evidence,
                deployer: cx.deployer.clone(),
                renders_chart: true,
            },
            self.inventory,
        );
        self.out.extra_placements.push(placement);
    }
}

/// What one config of a run deploys with.
struct Deploy<'d, 'a> {
    config: &'d SkConfig<'a>,
    cluster: usize,
    /// The run's hop, then the `requires` hops that led here.
    head: Vec<Evidence>,
    signals: Vec<Signal>,
    deployer: Deployer,
    applied: &'d [Applied],
}

impl Deploy<'_, '_> {
    /// The deployer of one entry: its line is the entry's, the line that sends that folder,
    /// file or chart to the run's cluster.
    fn deployer_at(&self, e: &PathEntry) -> Deployer {
        Deployer {
            location: self.config.d.at(e.line),
            ..self.deployer.clone()
        }
    }

    /// The evidence of one entry: the run, the requires, the patch that set the entry (if a
    /// patch did), the entry.
    fn chain_for(&self, e: &PathEntry) -> Vec<Evidence> {
        let mut chain = self.head.clone();
        for a in self.applied {
            if a.lines.0 <= e.line && e.line <= a.lines.1 {
                chain.push(Evidence::new(
                    self.config.d.at(a.lines.0),
                    Hop::Skaffold(Box::new(SkaffoldHop::Patch {
                        profile: a.profile.as_str().into(),
                        op: a.op,
                        path: a.path.as_str().into(),
                    })),
                ));
            }
        }
        chain.push(Evidence::new(
            self.config.d.at(e.line),
            Hop::Skaffold(Box::new(SkaffoldHop::Entry {
                field: e.field.into(),
                value: e.value.as_str().into(),
            })),
        ));
        chain
    }
}

/// The entries of a config's own pipeline that name something of this repository no
/// deployer reached, as written.
fn unreached_entries(
    cx: &NoteContext<'_, '_>,
    c: &SkConfig<'_>,
    pipeline: &Pipeline,
) -> Vec<String> {
    let mut out = Vec::new();
    for e in &pipeline.kustomize {
        if index::join(&c.dir, &e.value, false)
            .is_some_and(|d| cx.index.is_dir(&d) && !(cx.expanded)(&d))
        {
            out.push(e.value.clone());
        }
    }
    for e in &pipeline.raw {
        if raw_files(cx.index, &c.dir, &e.value)
            .iter()
            .any(|f| !(cx.expanded)(index::parent(f)))
        {
            out.push(e.value.clone());
        }
    }
    for r in &pipeline.helm {
        let local = r
            .chart_path
            .as_ref()
            .and_then(|e| index::join(&c.dir, &e.value, false))
            .filter(|p| is_chart(cx.index, p));
        match local {
            Some(chart) if cx.installed.contains(&chart) => {}
            _ => out.push(format!("Helm release {}", r.name)),
        }
    }
    out
}

/// The repository files a raw manifests glob (relative to the config's folder) matches.
fn raw_files(index: &RepoIndex<'_>, dir: &str, pattern: &str) -> Vec<String> {
    let Some(joined) = index::join(dir, pattern, false) else {
        return Vec::new();
    };
    let Ok(glob) = globset::GlobBuilder::new(&joined)
        .literal_separator(true)
        .build()
    else {
        return Vec::new();
    };
    let matcher = glob.compile_matcher();
    let mut out: Vec<String> = index
        .files
        .iter()
        .filter(|f| matcher.is_match(&*f.path))
        .map(|f| f.path.to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}
