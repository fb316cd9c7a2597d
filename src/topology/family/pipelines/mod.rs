//! CI pipelines: GitHub Actions workflows (`.github/workflows/*.yml`) and GitLab CI
//! (`.gitlab-ci.yml`) that push manifests to clusters. Each job's `run:`/`script:` lines are
//! split into commands ([`shell`]); the shapes in [`commands`] are followed (`kubectl apply
//! -f/-k`, `kustomize build … | kubectl apply -f -`, `helm upgrade --install`), with matrix
//! values and the job's own variables substituted where they are known. The cluster is the
//! command's `--context`/`--kube-context`, else the job's `environment:`, else a kubeconfig
//! secret whose name holds an environment word. A folder or file is delivered through the
//! worklist (so kustomize, Helm and further deployers apply), a local chart rendered, a remote
//! chart placed opaque under its release name. `helmfile` and `skaffold` runs are recorded
//! ([`plan`]) and noted for their own families. Nothing is executed; any other shape, and any
//! path or cluster not known statically, is a note at its line.

pub mod commands;
pub mod jobs;
pub mod shell;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::budget::{Budget, BudgetCut};
use crate::documents::FileKind;
use crate::evidence::{Evidence, Hop, OpaqueHop, PipelineHop, PipelineStep, ValuesFileHop};
use crate::location::Location;
use crate::topology::build::Worklist;
use crate::topology::classify::env::Vocabulary;
use crate::topology::expand::helm::{
    is_chart, ChartInstall, RenderFlags, RenderRequest, ValuesInput,
};
use crate::topology::expand::kustomize::DirectoryMode;
use crate::topology::family::{
    deployer_signal, identity_signals, opaque_placement, Family, Opaque, Stage,
};
use crate::topology::index::{self, DocRef, RepoIndex};
use crate::topology::{Delivery, Deployer, DeployerKind, PlacedObject, Signal, Unresolved};

use commands::{Found, Known, Shell, What};
use jobs::{CiJob, Matrix};
use shell::{Vars, Word};

/// The family's name, as notes and coverage say it.
pub const NAME: &str = "CI pipelines";

/// Matrix combinations read per job: GitHub Actions itself runs at most 256 jobs of one
/// matrix. The first ones are kept; a cut is recorded.
pub const MATRIX_COMBINATIONS: usize = 256;

/// Shell lines read per pipeline file, each line counted once per matrix combination it runs
/// in (a step and a variable count as a line too). Past it, the file's remaining jobs are
/// not read; a cut is recorded.
pub const PIPELINE_LINES: usize = 50_000;

/// CI pipelines that apply manifests.
pub struct Pipelines;

impl Family for Pipelines {
    fn name(&self) -> &'static str {
        NAME
    }

    fn stage(&self) -> Option<Stage> {
        Some(Stage::Roots)
    }

    fn seed(&self, w: &mut Worklist<'_>) {
        let plan = plan(w.index(), w.inventory().vocabulary());
        for cut in plan.cuts {
            w.cut(cut);
        }
        for note in plan.notes {
            w.note(note);
        }
        let mut done: HashSet<String> = HashSet::new();
        for step in plan.steps {
            follow(w, &step, &mut done);
        }
    }
}

/// One command a job runs on a known cluster.
#[derive(Debug, Clone)]
pub struct Step {
    pub ci: jobs::Ci,
    /// The pipeline file, and the index of its document.
    pub file: Arc<str>,
    pub doc: DocRef,
    pub job: String,
    pub found: Found,
    /// The cluster's name and the hops that name it (the `environment:` line, a secret);
    /// empty for a helmfile or Skaffold run that leaves the cluster to its own file.
    pub cluster: String,
    pub by_context: bool,
    pub cluster_hops: Vec<Evidence>,
    /// The matrix combination (`env=prod, region=eu`), when the job has one.
    pub matrix: Option<String>,
    /// The job's identity signals (its name).
    pub signals: Vec<Signal>,
}

impl Step {
    fn at(&self) -> Location {
        Location::new(&self.file, self.found.line)
    }

    /// The hops from the pipeline to the command: what names the cluster, then the command.
    pub fn chain(&self) -> Vec<Evidence> {
        let mut chain = self.cluster_hops.clone();
        chain.push(Evidence::new(
            self.at(),
            Hop::Pipeline(Box::new(PipelineHop {
                ci: self.ci.name(),
                job: self.job.as_str().into(),
                step: PipelineStep::Runs {
                    command: self.found.shown.as_str().into(),
                    cluster: self.cluster.as_str().into(),
                    context: self.by_context,
                    matrix: self.matrix.as_deref().map(Arc::from),
                },
            })),
        ));
        chain
    }

    fn deployer(&self) -> Deployer {
        Deployer {
            kind: DeployerKind::Pipeline,
            name: self.job.clone(),
            location: self.at(),
        }
    }

    fn note(&self, why: String) -> Unresolved {
        Unresolved {
            location: self.at(),
            reason: format!(
                "{} job {}: \"{}\" is not followed: {why}",
                self.ci.name(),
                self.job,
                self.found.shown
            ),
        }
    }
}

/// What the pipelines of a repository run: the commands on known clusters, the notes for
/// what is not followed, and the budgets that cut the reading short. `helmfile` and
/// `skaffold` steps are here for their families to follow (the pipeline family only notes
/// them).
#[derive(Debug, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub notes: Vec<Unresolved>,
    pub cuts: Vec<BudgetCut>,
}

/// Whether a CI file is one this family reads.
fn is_pipeline(path: &str) -> Option<jobs::Ci> {
    if path
        .strip_prefix(".github/workflows/")
        .is_some_and(|rest| !rest.contains('/'))
    {
        return Some(jobs::Ci::GitHub);
    }
    matches!(path, ".gitlab-ci.yml" | ".gitlab-ci.yaml").then_some(jobs::Ci::GitLab)
}

/// Reads every pipeline of the repository.
pub fn plan(index: &RepoIndex<'_>, vocabulary: &Vocabulary) -> Plan {
    let mut plan = Plan::default();
    for (file_index, f) in index.files.iter().enumerate() {
        if f.kind != FileKind::CiWorkflow {
            continue;
        }
        let Some(ci) = is_pipeline(&f.path) else {
            continue;
        };
        let mut budget = PIPELINE_LINES;
        for (doc_index, d) in f.documents.iter().enumerate() {
            let read = match ci {
                jobs::Ci::GitHub => jobs::github_jobs(d, MATRIX_COMBINATIONS),
                jobs::Ci::GitLab => jobs::gitlab_jobs(d, MATRIX_COMBINATIONS),
            };
            let doc = DocRef::new(file_index, doc_index);
            for job in read {
                if !read_job(&mut plan, vocabulary, &job, doc, &mut budget) {
                    break;
                }
            }
        }
    }
    plan
}

/// A variable's value substituted with what is known so far.
fn expand(text: &str, vars: &Vars) -> Known {
    let words: Vec<Word> = shell::commands(&[(text.to_owned(), 0)])
        .into_iter()
        .flat_map(|c| c.words)
        .collect();
    let mut out = Vec::new();
    for w in &words {
        out.push(w.resolve(vars)?);
    }
    Ok(out.join(" "))
}

/// Adds `pairs` to `vars` (as `$NAME` and `env.NAME`), each substituted with the ones before.
fn add_vars(vars: &mut Vars, pairs: &[(String, String)]) {
    for (k, v) in pairs {
        match expand(v, vars) {
            Ok(value) => {
                vars.expr.insert(format!("env.{k}"), value.clone());
                vars.shell.insert(k.clone(), value);
            }
            Err(_) => {
                vars.expr.remove(&format!("env.{k}"));
                vars.shell.remove(k);
            }
        }
    }
}

/// Reads one job, each matrix combination in turn. Returns false once the file's line budget
/// is spent.
fn read_job(
    plan: &mut Plan,
    vocabulary: &Vocabulary,
    job: &CiJob,
    doc: DocRef,
    budget: &mut usize,
) -> bool {
    if let Some(cut) = job.matrix_cut {
        plan.cuts.push(BudgetCut::new(
            Budget::PipelineMatrix,
            Some(Location::new(&job.file, job.line)),
            format!(
                "job {} has more than {MATRIX_COMBINATIONS} matrix combinations: the first {MATRIX_COMBINATIONS} are read, {cut} more are not",
                job.name
            ),
        ));
    }
    let combos = match &job.matrix {
        Matrix::Combinations(c) => c.clone(),
        // Its values are not known: commands that use them are noted as such.
        Matrix::Unknown { .. } => vec![BTreeMap::new()],
    };
    let signals: Vec<Signal> = deployer_signal(vocabulary, &job.name, || {
        format!("{} job {}", job.ci.name(), job.name)
    })
    .into_iter()
    .collect();
    // What one combination costs: each shell line, each step (even an empty one) and each
    // variable, so that no part of a hostile file is read without counting.
    let lines: usize = job.vars.len()
        + job
            .scripts
            .iter()
            .map(|s| s.lines.len() + s.env.len() + 1)
            .sum::<usize>();
    let mut seen_notes: HashSet<(u32, String)> = HashSet::new();
    for combo in &combos {
        if lines > *budget {
            plan.cuts.push(BudgetCut::new(
                Budget::PipelineLines,
                Some(Location::new(&job.file, job.line)),
                format!(
                    "more than {PIPELINE_LINES} shell lines (each matrix combination counted): job {} and the jobs after it are not read",
                    job.name
                ),
            ));
            return false;
        }
        *budget -= lines;
        let mut vars = Vars::default();
        for (k, v) in combo {
            vars.expr.insert(format!("matrix.{k}"), v.clone());
        }
        add_vars(&mut vars, &job.vars);
        let matrix = (!combo.is_empty()).then(|| {
            combo
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let environment = job
            .environment
            .as_ref()
            .map(|e| (expand(&e.text, &vars), e.line));
        for script in &job.scripts {
            let mut script_vars = vars.clone();
            add_vars(&mut script_vars, &script.env);
            let dir = match &script.dir {
                None => Some(String::new()),
                Some(d) => expand(d, &script_vars)
                    .ok()
                    .and_then(|d| index::join("", &d, true)),
            };
            let mut sh = Shell::new(dir, script_vars);
            let cmds = shell::commands(&script.lines);
            let mut start = 0;
            for end in 1..=cmds.len() {
                // A pipeline is a command and those piped into it.
                if end < cmds.len() && cmds[end].piped {
                    continue;
                }
                for found in sh.read(&cmds[start..end]) {
                    let step = place(
                        vocabulary,
                        job,
                        doc,
                        found,
                        environment.as_ref(),
                        &matrix,
                        &signals,
                    );
                    match step {
                        Ok(step) => plan.steps.push(step),
                        Err(note) => {
                            if seen_notes.insert((note.location.line, note.reason.clone())) {
                                plan.notes.push(note);
                            }
                        }
                    }
                }
                start = end;
            }
        }
    }
    true
}

/// The cluster a recognised command runs on, as a [`Step`], or the note that says why it is
/// not known.
fn place(
    vocabulary: &Vocabulary,
    job: &CiJob,
    doc: DocRef,
    found: Found,
    environment: Option<&(Known, u32)>,
    matrix: &Option<String>,
    signals: &[Signal],
) -> Result<Step, Unresolved> {
    let mut step = Step {
        ci: job.ci,
        file: Arc::clone(&job.file),
        doc,
        job: job.name.clone(),
        found,
        cluster: String::new(),
        by_context: false,
        cluster_hops: Vec::new(),
        matrix: matrix.clone(),
        signals: signals.to_vec(),
    };
    if let What::NotFollowed(why) = &step.found.what {
        return Err(step.note(why.clone()));
    }
    let hop = |line: u32, s: PipelineStep| {
        Evidence::new(
            Location::new(&job.file, line),
            Hop::Pipeline(Box::new(PipelineHop {
                ci: job.ci.name(),
                job: job.name.as_str().into(),
                step: s,
            })),
        )
    };
    match step.found.context.clone() {
        Some(Ok(context)) => {
            step.cluster = context;
            step.by_context = true;
            return Ok(step);
        }
        Some(Err(piece)) => {
            return Err(step.note(format!("its context {piece} is not known statically")));
        }
        None => {}
    }
    let mut unknown_environment = None;
    match environment {
        Some((Ok(name), line)) => {
            step.cluster = name.clone();
            step.cluster_hops.push(hop(
                *line,
                PipelineStep::Environment {
                    name: name.as_str().into(),
                },
            ));
            return Ok(step);
        }
        Some((Err(piece), _)) => unknown_environment = Some(piece.clone()),
        None => {}
    }
    let from_secrets: Vec<(&jobs::Written, String)> = job
        .kube_secrets
        .iter()
        .filter_map(|s| secret_cluster(vocabulary, &s.text).map(|c| (s, c)))
        .collect();
    let distinct: HashSet<&str> = from_secrets.iter().map(|(_, c)| c.as_str()).collect();
    if distinct.len() == 1 {
        let (secret, cluster) = &from_secrets[0];
        step.cluster = cluster.clone();
        step.cluster_hops.push(hop(
            secret.line,
            PipelineStep::KubeconfigSecret {
                secret: secret.text.as_str().into(),
                cluster: cluster.as_str().into(),
            },
        ));
        return Ok(step);
    }
    // helmfile and Skaffold pick their own cluster (a helmfile environment's kubeContext, a
    // profile's kubeContext) when the job does not: their families decide.
    if matches!(
        step.found.what,
        What::Helmfile { .. } | What::Skaffold { .. }
    ) {
        return Ok(step);
    }
    let why = match unknown_environment {
        Some(piece) => {
            format!("the cluster is not known: its environment {piece} is not known statically")
        }
        None if distinct.len() > 1 => {
            "the cluster is not known: the job reads several kubeconfig secrets".to_owned()
        }
        None => {
            "the cluster is not known: no --context, environment: or kubeconfig secret names it"
                .to_owned()
        }
    };
    Err(step.note(why))
}

/// `KUBECONFIG_PROD` → `prod`, when what is left of the name is an environment word.
fn secret_cluster(vocabulary: &Vocabulary, secret: &str) -> Option<String> {
    let lower = secret.to_ascii_lowercase().replace('_', "-");
    let mut rest = lower.clone();
    for generic in ["kubeconfig", "kube-config", "kube"] {
        rest = rest.replace(generic, "");
    }
    let rest = rest
        .split('-')
        .filter(|s| !s.is_empty() && *s != "secret" && *s != "config" && *s != "data")
        .collect::<Vec<_>>()
        .join("-");
    (!rest.is_empty() && vocabulary.classify(&rest).is_some()).then_some(rest)
}

/// Follows one step on the worklist: delivers its folder or file, renders its chart, places
/// its remote chart opaque, or notes a helmfile or Skaffold run. `done` keeps one delivery
/// per command, cluster and target across matrix combinations.
fn follow(w: &mut Worklist<'_>, step: &Step, done: &mut HashSet<String>) {
    let at = step.at();
    let on = if step.cluster.is_empty() {
        "the cluster its own configuration selects".to_owned()
    } else {
        format!("cluster {}", step.cluster)
    };
    if let Some(note) = tool_note(step, &on) {
        w.note(note);
        return;
    }
    // The cluster is first named where its name is written: the `environment:` line.
    let named_at = step
        .cluster_hops
        .first()
        .map_or_else(|| at.clone(), |h| h.location.clone());
    let (cluster, _) = w
        .inventory_mut()
        .resolve_destination(Some(&step.cluster), None, named_at);
    let key = |target: &str| format!("{at}\0{cluster}\0{target}");
    match &step.found.what {
        What::Apply {
            targets,
            recursive,
            namespace,
        } => {
            for (path, kustomize) in targets {
                let path = match path {
                    Ok(p) => p,
                    Err(piece) => {
                        w.note(step.note(format!("its path {piece} is not known statically")));
                        continue;
                    }
                };
                if done.insert(key(path)) {
                    apply(
                        w,
                        step,
                        cluster,
                        path,
                        *kustomize,
                        *recursive,
                        namespace.clone(),
                    );
                }
            }
        }
        What::Helm {
            release,
            chart,
            path,
            values,
            set,
            namespace,
        } => {
            let release = release.clone().unwrap_or_else(|e| e);
            let chart_written = chart.clone().unwrap_or_else(|e| e);
            if !done.insert(key(&format!("{release}\0{chart_written}"))) {
                return;
            }
            match path {
                Some(Ok(p)) if is_chart(w.index(), p) => {
                    let install = chart_install(
                        w,
                        step,
                        cluster,
                        p,
                        &release,
                        values,
                        set,
                        namespace.clone(),
                    );
                    w.install_chart(install);
                }
                Some(Err(piece)) => {
                    w.note(step.note(format!("its chart {piece} is not known statically")));
                }
                Some(Ok(p)) if chart_written.starts_with('.') || w.index().is_dir(p) => {
                    w.note(step.note(format!("{p} is not a Helm chart of this repository")));
                }
                // `repo/chart`, a URL, `--repo`: a chart from elsewhere, placed opaque.
                _ => {
                    let placement = remote_chart(
                        w,
                        step,
                        cluster,
                        &release,
                        &chart_written,
                        namespace.clone(),
                    );
                    w.place_raw(placement);
                }
            }
        }
        What::Helmfile { .. } | What::Skaffold { .. } => {}
        What::NotFollowed(why) => w.note(step.note(why.clone())),
    }
}

/// The note for a helmfile or Skaffold run: which file, environment or profile, on which
/// cluster (`on`). Their own families place what they deploy.
fn tool_note(step: &Step, on: &str) -> Option<Unresolved> {
    let at = step.at();
    match &step.found.what {
        What::Helmfile {
            environment,
            file,
            selectors,
            dir,
            verb,
        } => {
            let selected = if selectors.is_empty() {
                String::new()
            } else {
                format!(" (releases {})", selectors.join(" and "))
            };
            let env = environment.as_ref().map_or_else(
                || "default".to_owned(),
                |e| e.clone().unwrap_or_else(|piece| piece),
            );
            let file = file.as_ref().map_or_else(
                || {
                    if dir.is_empty() {
                        "in the repository root".to_owned()
                    } else {
                        format!("in {dir}/")
                    }
                },
                |f| format!("of {}", f.clone().unwrap_or_else(|piece| piece)),
            );
            Some(Unresolved {
                location: at,
                reason: format!(
                    "{} job {} runs helmfile {verb} for environment {env}{selected} {file} on {on}: the helmfile's releases are not placed by the pipeline",
                    step.ci.name(),
                    step.job,
                ),
            })
        }
        What::Skaffold {
            profiles,
            file,
            dir,
            verb,
        } => {
            let profiles = if profiles.is_empty() {
                "no profile".to_owned()
            } else {
                let names: Vec<String> = profiles
                    .iter()
                    .map(|p| p.clone().unwrap_or_else(|piece| piece))
                    .collect();
                format!("profile {}", names.join(","))
            };
            let file = file.as_ref().map_or_else(
                || {
                    format!(
                        "{}skaffold.yaml",
                        if dir.is_empty() {
                            String::new()
                        } else {
                            format!("{dir}/")
                        }
                    )
                },
                |f| f.clone().unwrap_or_else(|piece| piece),
            );
            Some(Unresolved {
                location: at,
                reason: format!(
                    "{} job {} runs skaffold {verb} with {profiles} of {file} on {on}: Skaffold's manifests are not placed by the pipeline",
                    step.ci.name(),
                    step.job,
                ),
            })
        }
        _ => None,
    }
}

/// `kubectl apply -f PATH` / `-k DIR` on `cluster`.
fn apply(
    w: &mut Worklist<'_>,
    step: &Step,
    cluster: usize,
    path: &str,
    kustomize: bool,
    recursive: bool,
    namespace: Option<String>,
) {
    let index = w.index();
    let delivery = |dir: String, mode: DirectoryMode| Delivery {
        mode,
        default_namespace: namespace.clone(),
        signals: step.signals.clone(),
        ..Delivery::new(step.deployer(), cluster, dir, step.chain())
    };
    if let Some(file) = index.file(path) {
        if kustomize {
            w.note(step.note(format!(
                "-k names {path}, a file, not a kustomization folder"
            )));
            return;
        }
        // A file of deployers (an Argo CD root Application) runs on the cluster.
        if w.run_deployers_in(file, cluster, step.chain()) {
            return;
        }
        let mut names = globset::GlobSetBuilder::new();
        if let Ok(g) = globset::Glob::new(&globset::escape(index::basename(path))) {
            names.add(g);
        }
        let mode = DirectoryMode {
            include: names.build().ok(),
            ..DirectoryMode::default()
        };
        w.deliver(&delivery(index::parent(path).to_owned(), mode));
        return;
    }
    if !index.is_dir(path) {
        w.note(step.note(format!("{path} is not a file or folder of this repository")));
        return;
    }
    if kustomize && index.kustomization_in(path).is_none() {
        w.note(step.note(format!("-k names {path}, which holds no kustomization")));
        return;
    }
    let mode = if recursive {
        DirectoryMode::recursive()
    } else {
        DirectoryMode::default()
    };
    w.deliver(&delivery(path.to_owned(), mode));
}

/// `helm upgrade --install RELEASE CHART -f values…` of a chart in this repository.
#[allow(clippy::too_many_arguments)]
fn chart_install(
    w: &Worklist<'_>,
    step: &Step,
    cluster: usize,
    chart: &str,
    release: &str,
    values: &[Known],
    set: &[(String, String, bool)],
    namespace: Option<String>,
) -> ChartInstall {
    let index = w.index();
    let mut inputs = Vec::new();
    let mut values_evidence = Vec::new();
    let mut notes = Vec::new();
    for v in values {
        match v {
            Ok(p) if index.file(p).is_some() => {
                values_evidence.push(Evidence::new(
                    step.at(),
                    Hop::ValuesFile(Box::new(ValuesFileHop {
                        path: p.as_str().into(),
                        via: Some("helm -f".into()),
                    })),
                ));
                inputs.push(ValuesInput::File(p.clone()));
            }
            Ok(p) => notes.push(step.note(format!(
                "values file {p} is not in this repository; the chart is rendered without it"
            ))),
            Err(piece) => notes.push(step.note(format!(
                "values file {piece} is not known statically; the chart is rendered without it"
            ))),
        }
    }
    ChartInstall {
        request: RenderRequest {
            chart: chart.to_owned(),
            release: release.to_owned(),
            namespace: namespace.clone(),
            values: inputs,
            set: set.to_vec(),
            flags: RenderFlags::default(),
        },
        delivery: Delivery {
            default_namespace: namespace,
            signals: step.signals.clone(),
            ..Delivery::new(step.deployer(), cluster, chart.to_owned(), step.chain())
        },
        values_evidence,
        notes,
        fallback: Vec::new(),
        fallback_notes: Vec::new(),
    }
}

/// A release of a chart from elsewhere: an opaque placement under its release name.
fn remote_chart(
    w: &Worklist<'_>,
    step: &Step,
    cluster: usize,
    release: &str,
    chart: &str,
    namespace: Option<String>,
) -> crate::topology::Placement {
    const KIND: &str = "Helm release";
    let vocabulary = w.inventory().vocabulary();
    let mut signals = identity_signals(vocabulary, KIND, release, []);
    signals.extend(step.signals.iter().cloned());
    let mut evidence = step.chain();
    evidence.push(Evidence::new(
        step.at(),
        Hop::Opaque(Box::new(OpaqueHop {
            kind: KIND.into(),
            name: release.into(),
            why: format!("chart {chart} is not in this repository").into(),
            judged_by: "release name and job name",
        })),
    ));
    opaque_placement(
        Opaque {
            object: PlacedObject {
                file: Arc::clone(&step.file),
                line: step.found.line,
                doc: Some(step.doc),
                kind: KIND.into(),
                name: Some(release.into()),
                namespace: namespace.map(Into::into),
                images: Box::default(),
            },
            cluster,
            signals,
            evidence,
            deployer: step.deployer(),
            renders_chart: true,
        },
        w.inventory(),
    )
}
