//! Kargo: `Stage`s promote freight from `Warehouse`s into Argo CD Applications. A Stage
//! delivers nothing itself: Argo CD does. What the Stage says is what the Application is
//! for, so it governs the Applications it promotes into ([`Family::governs`]), found three
//! ways: an `argocd-update` step of its promotion template (`config.apps[]`, also inside a
//! `PromotionTask` it runs), the `promotionMechanisms.argoCDAppUpdates` of Kargo before 1.0,
//! and the `kargo.akuity.io/authorized-stage: <project>:<stage>` annotation of the
//! Application (or of an ApplicationSet's template, one Application per stage).
//!
//! A Stage's environment is its name and environment labels, unless its place in the
//! promotion graph says otherwise: a Stage fed (`requestedFreight[].sources.stages`, or
//! `subscriptions.upstreamStages` before 1.0) from a production Stage promotes freight that
//! production already runs, so it is production whatever its name.
//!
//! Kargo's own objects run on Kargo's control plane and deploy nothing: the documents layer
//! reads them as data, not Kubernetes objects (`documents::is_tool_config`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::documents::{Document, Node};
use crate::evidence::{Evidence, KargoStageHop, StageLink};
use crate::location::Location;
use crate::topology::classify::env::Vocabulary;
use crate::topology::family::{
    api_in, identity_signals, name_of, note_at, Family, Governance, Governed, NoteContext, Notes,
};
use crate::topology::index::RepoIndex;
use crate::topology::{Env, Signal, SignalLevel, Unresolved};

/// Kargo: Stages, and the Argo CD Applications they promote into.
pub struct Kargo;

/// The annotation that authorizes a Stage to update an Argo CD Application.
const AUTHORIZED_STAGE: &str = "kargo.akuity.io/authorized-stage";

/// Where `argocd-update` looks for an Application whose namespace it does not name.
const ARGO_CD_NAMESPACE: &str = "argocd";

impl Family for Kargo {
    fn name(&self) -> &'static str {
        "Kargo"
    }

    fn governs(
        &self,
        index: &RepoIndex<'_>,
        vocabulary: &Vocabulary,
        deployer: &Governed<'_>,
    ) -> Governance {
        let mut out = Governance::default();
        if deployer.kind != "Application" || deployer.group != "argoproj.io" {
            return out;
        }
        let stages = read_stages(index);
        if stages.is_empty() && !has_authorization(deployer) {
            return out;
        }
        // Each Stage once, however many ways it is tied to the Application.
        let mut counted: BTreeSet<usize> = BTreeSet::new();
        for (i, stage) in stages.iter().enumerate() {
            for target in &stage.targets {
                if !target.names(deployer) {
                    continue;
                }
                out.hops.push(Evidence::new(
                    target.location.clone(),
                    crate::evidence::Hop::KargoStage(Box::new(KargoStageHop {
                        stage: stage.shown().into(),
                        application: deployer.name.into(),
                        link: target.link,
                    })),
                ));
                if counted.insert(i) {
                    out.signals.extend(stage_signals(&stages, i, vocabulary));
                }
            }
        }
        for (key, value, location) in deployer.annotations {
            if key != AUTHORIZED_STAGE {
                continue;
            }
            // `<project>:<stage>`; a value still holding a placeholder names no Stage.
            let Some((project, name)) = value.split_once(':') else {
                continue;
            };
            if name.is_empty() || value.contains("{{") {
                continue;
            }
            let found = stages.iter().position(|s| s.is(project, name));
            // The Stage itself, when no step of it already led here.
            if let Some(stage) = found.filter(|i| !counted.contains(i)).map(|i| &stages[i]) {
                out.hops.push(Evidence::new(
                    Location::new(
                        &stage.doc.file,
                        stage
                            .doc
                            .line_of("metadata.name")
                            .unwrap_or(stage.doc.first_line),
                    ),
                    crate::evidence::Hop::KargoStage(Box::new(KargoStageHop {
                        stage: stage.shown().into(),
                        application: deployer.name.into(),
                        link: StageLink::Authorized,
                    })),
                ));
            }
            out.hops.push(Evidence::new(
                location.clone(),
                crate::evidence::Hop::KargoStage(Box::new(KargoStageHop {
                    stage: value.as_str().into(),
                    application: deployer.name.into(),
                    link: StageLink::AuthorizedStage,
                })),
            ));
            match found {
                Some(i) => {
                    if counted.insert(i) {
                        out.signals.extend(stage_signals(&stages, i, vocabulary));
                    }
                }
                // A Stage defined elsewhere still says what it is by its name.
                None => out.signals.extend(identity_signals(
                    vocabulary,
                    "Kargo Stage",
                    name,
                    std::iter::empty(),
                )),
            }
        }
        out
    }

    fn notes(&self, cx: &NoteContext<'_, '_>, out: &mut Notes) {
        let stages = read_stages(cx.index);
        if stages.is_empty() {
            return;
        }
        let applications = Applications::read(cx.index);
        for stage in &stages {
            for target in &stage.targets {
                let reason = match &target.name {
                    Err(raw) => format!(
                        "Kargo Stage {}: its argocd-update step names the Application by `{raw}`, which envfence cannot resolve, so where this Stage promotes is not known",
                        stage.name
                    ),
                    Ok(name) if !applications.defines(name) => format!(
                        "Kargo Stage {} promotes into Application {name}, which no Application or ApplicationSet template of this repository defines, so where its freight lands is not known",
                        stage.name
                    ),
                    Ok(_) => continue,
                };
                // At the line that names the Application (in a PromotionTask, maybe).
                out.unless_covered.push(Unresolved {
                    location: target.location.clone(),
                    reason,
                });
            }
            if stage.targets.is_empty() && !applications.authorizes(stage) {
                note_at(
                    out,
                    stage.doc,
                    stage.doc.first_line,
                    format!(
                        "Kargo Stage {} updates no Argo CD Application envfence can see (no argocd-update step names one, and no Application is authorized for it), so what it promotes into is not known",
                        stage.name
                    ),
                );
            }
        }
    }
}

/// Whether a deployer carries the annotation that names its Stage.
fn has_authorization(deployer: &Governed<'_>) -> bool {
    deployer
        .annotations
        .iter()
        .any(|(k, _, _)| k == AUTHORIZED_STAGE)
}

/// A Kargo Stage as read once: its name and project, the Applications it promotes into,
/// and the Stages it is fed from.
struct StageInfo<'d> {
    doc: &'d Document,
    name: &'d str,
    /// Its namespace, which is its Kargo project.
    project: Option<&'d str>,
    targets: Vec<Target>,
    upstream: Vec<String>,
}

impl StageInfo<'_> {
    /// `project:stage`, as Kargo and the annotation name it.
    fn shown(&self) -> String {
        match self.project {
            Some(p) => format!("{p}:{}", self.name),
            None => self.name.to_owned(),
        }
    }

    /// Whether this is Stage `name` of `project` (a Stage without a namespace is in any).
    fn is(&self, project: &str, name: &str) -> bool {
        self.name == name && self.project.is_none_or(|p| p == project)
    }
}

/// One Application a Stage's promotion updates.
struct Target {
    /// Its name, or the text envfence could not resolve.
    name: Result<String, String>,
    /// Its namespace; `None` when it is written as an expression envfence cannot resolve.
    namespace: Option<String>,
    location: Location,
    link: StageLink,
}

impl Target {
    /// Whether this target is the deployer: same name, and same namespace when both are known.
    fn names(&self, deployer: &Governed<'_>) -> bool {
        self.name.as_deref() == Ok(deployer.name)
            && match (&self.namespace, deployer.namespace) {
                (Some(mine), Some(theirs)) => mine == theirs,
                _ => true,
            }
    }
}

/// Every Kargo Stage of the repository.
fn read_stages<'d>(index: &'d RepoIndex<'d>) -> Vec<StageInfo<'d>> {
    index
        .of_kind("Stage")
        .map(|(_, d)| d)
        .filter(|d| api_in(d, "kargo.akuity.io"))
        .map(|d| read_stage(index, d))
        .collect()
}

fn read_stage<'d>(index: &'d RepoIndex<'d>, d: &'d Document) -> StageInfo<'d> {
    let name = name_of(d);
    let project = d.id.namespace.as_deref();
    let spec = d.root.get("spec");
    let mut targets = Vec::new();
    let template = spec
        .and_then(|s| s.get("promotionTemplate"))
        .and_then(|t| t.get("spec"));
    let mut ctx = Expressions::new(name, project);
    ctx.add_vars(template.and_then(|t| t.get("vars")));
    for step in seq(template.and_then(|t| t.get("steps"))) {
        if let Some(task) = step.get("task") {
            // A PromotionTask's steps, with the task's variables as the step sets them.
            let Some((task_doc, task_spec)) = promotion_task(index, task, project) else {
                continue;
            };
            let mut task_ctx = ctx.clone();
            task_ctx.add_vars(task_spec.get("vars"));
            task_ctx.add_vars(step.get("vars"));
            for inner in seq(task_spec.get("steps")) {
                argocd_update(task_doc, inner, &task_ctx, &mut targets);
            }
        } else {
            argocd_update(d, step, &ctx, &mut targets);
        }
    }
    // Kargo before 1.0.
    let mechanisms = spec.and_then(|s| s.get("promotionMechanisms"));
    for update in seq(mechanisms.and_then(|m| m.get("argoCDAppUpdates"))) {
        let Some(entry) = update.entry("appName") else {
            continue;
        };
        let name = entry.value.as_str().unwrap_or("?");
        targets.push(Target {
            name: ctx.render(name).ok_or_else(|| name.to_owned()),
            namespace: Some(
                update
                    .get("appNamespace")
                    .and_then(Node::as_str)
                    .unwrap_or(ARGO_CD_NAMESPACE)
                    .to_owned(),
            ),
            location: d.at(entry.key.span.line),
            link: StageLink::ArgoCdAppUpdates,
        });
    }
    let mut upstream: Vec<String> = seq(spec.and_then(|s| s.get("requestedFreight")))
        .iter()
        .flat_map(|r| seq(r.get("sources").and_then(|s| s.get("stages"))))
        .filter_map(Node::as_str)
        .map(str::to_owned)
        .collect();
    upstream.extend(
        seq(spec
            .and_then(|s| s.get("subscriptions"))
            .and_then(|s| s.get("upstreamStages")))
        .iter()
        .filter_map(|u| u.get("name").and_then(Node::as_str))
        .map(str::to_owned),
    );
    StageInfo {
        doc: d,
        name,
        project,
        targets,
        upstream,
    }
}

/// The Applications an `argocd-update` step updates (`config.apps[]`), written in `d`.
fn argocd_update(d: &Document, step: &Node, ctx: &Expressions, out: &mut Vec<Target>) {
    if step.get("uses").and_then(Node::as_str) != Some("argocd-update") {
        return;
    }
    for app in seq(step.get("config").and_then(|c| c.get("apps"))) {
        let Some(entry) = app.entry("name") else {
            continue;
        };
        let name = entry.value.as_str().unwrap_or("?");
        let namespace = app
            .get("namespace")
            .and_then(Node::as_str)
            .unwrap_or(ARGO_CD_NAMESPACE);
        out.push(Target {
            name: ctx.render(name).ok_or_else(|| name.to_owned()),
            namespace: ctx.render(namespace),
            location: d.at(entry.key.span.line),
            link: StageLink::ArgoCdUpdate,
        });
    }
}

/// The PromotionTask (in the Stage's project) or ClusterPromotionTask a step's `task` names:
/// its document and spec.
fn promotion_task<'d>(
    index: &'d RepoIndex<'d>,
    task: &Node,
    project: Option<&str>,
) -> Option<(&'d Document, &'d Node)> {
    let name = task.get("name").and_then(Node::as_str)?;
    let kind = task
        .get("kind")
        .and_then(Node::as_str)
        .unwrap_or("PromotionTask");
    let d = index.of_kind(kind).map(|(_, d)| d).find(|d| {
        api_in(d, "kargo.akuity.io")
            && d.id.name.as_deref() == Some(name)
            && (kind == "ClusterPromotionTask"
                || d.id.namespace.is_none()
                || project.is_none()
                || d.id.namespace.as_deref() == project)
    })?;
    Some((d, d.root.get("spec")?))
}

/// The items of a sequence node, none when it is absent or not a sequence.
fn seq(node: Option<&Node>) -> &[Node] {
    node.and_then(Node::as_seq).unwrap_or(&[])
}

/// The part of Kargo's expression language a promotion's Application names use:
/// `${{ ctx.stage }}`, `${{ ctx.project }}` and `${{ vars.<name> }}`.
#[derive(Clone)]
struct Expressions {
    values: BTreeMap<String, String>,
}

impl Expressions {
    fn new(stage: &str, project: Option<&str>) -> Self {
        let mut values = BTreeMap::new();
        values.insert("ctx.stage".to_owned(), stage.to_owned());
        if let Some(p) = project {
            values.insert("ctx.project".to_owned(), p.to_owned());
        }
        Expressions { values }
    }

    /// Adds `vars` (`[{name, value}]`), in order: each may use the ones before it. One
    /// whose value cannot be resolved is left out.
    fn add_vars(&mut self, vars: Option<&Node>) {
        for var in seq(vars) {
            let (Some(name), Some(value)) = (
                var.get("name").and_then(Node::as_str),
                var.get("value").and_then(Node::as_str),
            ) else {
                continue;
            };
            if let Some(value) = self.render(value) {
                self.values.insert(format!("vars.{name}"), value);
            }
        }
    }

    /// `text` with every `${{ ... }}` replaced; `None` when one is not known.
    fn render(&self, text: &str) -> Option<String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 3..];
            let end = after.find("}}")?;
            out.push_str(self.values.get(after[..end].trim())?);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Some(out)
    }
}

/// The signals of Stage `i`: production when a production Stage feeds it (directly or
/// through others), else its name and environment labels.
fn stage_signals(stages: &[StageInfo<'_>], i: usize, vocabulary: &Vocabulary) -> Vec<Signal> {
    let stage = &stages[i];
    let own = |s: &StageInfo<'_>| {
        identity_signals(
            vocabulary,
            "Kargo Stage",
            s.name,
            s.doc.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
    };
    let production = |signals: &[Signal]| {
        signals.iter().any(|s| s.env == Env::Production)
            && !signals.iter().any(|s| s.env == Env::NonProduction)
    };
    // Upstream, breadth first, each Stage once: bounded by the Stages of the repository.
    let mut seen: BTreeSet<usize> = BTreeSet::from([i]);
    let mut queue: VecDeque<usize> = VecDeque::from([i]);
    while let Some(at) = queue.pop_front() {
        for up in &stages[at].upstream {
            let Some(j) = stages
                .iter()
                .position(|s| s.name == *up && s.project == stages[at].project)
            else {
                continue;
            };
            if !seen.insert(j) {
                continue;
            }
            if production(&own(&stages[j])) {
                return vec![Signal {
                    env: Env::Production,
                    note: format!(
                        "Kargo Stage {} is fed from production Stage {}",
                        stage.name, stages[j].name
                    )
                    .into(),
                    level: SignalLevel::Deployer,
                }];
            }
            queue.push_back(j);
        }
    }
    own(stage)
}

/// The Applications of the repository, as far as Stages need them for notes: Application
/// documents, and ApplicationSet templates (whose names and annotations may hold
/// placeholders).
struct Applications<'d> {
    /// Names, each with its `{{...}}` placeholders.
    names: Vec<&'d str>,
    /// `kargo.akuity.io/authorized-stage` values.
    authorized: Vec<&'d str>,
}

impl<'d> Applications<'d> {
    fn read(index: &'d RepoIndex<'d>) -> Self {
        let mut out = Applications {
            names: Vec::new(),
            authorized: Vec::new(),
        };
        let argo = |kind: &'static str| {
            index
                .of_kind(kind)
                .map(|(_, d)| d)
                .filter(|d| api_in(d, "argoproj.io"))
        };
        let metadata = argo("Application")
            .filter_map(|d| d.root.get("metadata"))
            .chain(
                argo("ApplicationSet")
                    .filter_map(|d| d.root.get("spec")?.get("template")?.get("metadata")),
            );
        for m in metadata {
            out.names.extend(m.get("name").and_then(Node::as_str));
            out.authorized.extend(
                m.get("annotations")
                    .and_then(|a| a.get(AUTHORIZED_STAGE))
                    .and_then(Node::as_str),
            );
        }
        out
    }

    fn defines(&self, name: &str) -> bool {
        self.names.iter().any(|n| placeholders_match(n, name))
    }

    fn authorizes(&self, stage: &StageInfo<'_>) -> bool {
        self.authorized.iter().any(|value| {
            value.split_once(':').is_some_and(|(project, name)| {
                placeholders_match(name, stage.name)
                    && stage.project.is_none_or(|p| placeholders_match(project, p))
            })
        })
    }
}

/// Whether `text` matches `pattern`, each `{{...}}` of which stands for any text.
fn placeholders_match(pattern: &str, text: &str) -> bool {
    let mut pieces: Vec<&str> = Vec::new();
    let mut rest = pattern;
    while let Some(start) = rest.find("{{") {
        pieces.push(&rest[..start]);
        match rest[start..].find("}}") {
            Some(end) => rest = &rest[start + end + 2..],
            None => return pattern == text,
        }
    }
    pieces.push(rest);
    let [first, middle @ .., last] = pieces.as_slice() else {
        return pattern == text;
    };
    let Some(mut tail) = text.strip_prefix(first) else {
        return false;
    };
    for piece in middle {
        match tail.find(piece) {
            Some(at) => tail = &tail[at + piece.len()..],
            None => return false,
        }
    }
    tail.len() >= last.len() && tail.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_stand_for_any_text() {
        assert!(placeholders_match("guestbook-{{stage}}", "guestbook-test"));
        assert!(placeholders_match("{{app}}-{{stage}}", "web-prod"));
        assert!(placeholders_match("guestbook", "guestbook"));
        assert!(!placeholders_match("guestbook", "guestbook-test"));
        assert!(!placeholders_match("guestbook-{{stage}}", "checkout-test"));
        assert!(!placeholders_match("a-{{x}}-b", "a-b"));
    }

    #[test]
    fn expressions_resolve_the_context_and_variables() {
        let mut ctx = Expressions::new("uat", Some("shop"));
        let vars = crate::documents::yaml::parse_stream(
            "- name: app\n  value: checkout-${{ ctx.stage }}\n- name: other\n  value: ${{ secret('x') }}\n",
        );
        ctx.add_vars(vars.docs.first().map(|d| &d.root));
        assert_eq!(
            ctx.render("${{ vars.app }}").as_deref(),
            Some("checkout-uat")
        );
        assert_eq!(ctx.render("${{ctx.project}}-x").as_deref(), Some("shop-x"));
        assert_eq!(ctx.render("${{ vars.other }}"), None);
        assert_eq!(ctx.render("plain").as_deref(), Some("plain"));
    }
}
