//! Reading pipeline files as documents: GitHub Actions workflows (`.github/workflows/*.yml`)
//! and GitLab CI (`.gitlab-ci.yml` at the repository root) become [`CiJob`]s: each job's
//! environment, variables, matrix combinations and the shell lines of its steps, each line
//! with its file line. Nothing here reads the process environment: a job's variables are the
//! ones its file writes.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::documents::yaml::ScalarKind;
use crate::documents::{Document, Node};

/// Which CI system a job belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ci {
    GitHub,
    GitLab,
}

impl Ci {
    pub fn name(self) -> &'static str {
        match self {
            Ci::GitHub => "GitHub Actions",
            Ci::GitLab => "GitLab CI",
        }
    }
}

/// A text a file writes, with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub text: String,
    pub line: u32,
}

/// The shell lines of one step (`run:`) or of a GitLab job's `before_script`/`script`.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// Each shell line with its file line.
    pub lines: Vec<(String, u32)>,
    /// The step's own `env:`.
    pub env: Vec<(String, String)>,
    /// The step's `working-directory` (else the job's default).
    pub dir: Option<String>,
}

/// The matrix of a job: its combinations, or why they are not known.
#[derive(Debug, Clone)]
pub enum Matrix {
    /// Each combination's values by key (one empty combination for a job without matrix).
    Combinations(Vec<BTreeMap<String, String>>),
    /// A matrix written as an expression (`${{ fromJSON(...) }}`): its values are not known.
    Unknown { line: u32 },
}

/// One CI job, as the pipeline family reads it.
#[derive(Debug, Clone)]
pub struct CiJob {
    pub ci: Ci,
    pub file: Arc<str>,
    pub name: String,
    pub line: u32,
    /// `environment:` (a string or `name:`), as written.
    pub environment: Option<Written>,
    /// The workflow's then the job's `env:` (GitLab: `variables:`), in order.
    pub vars: Vec<(String, String)>,
    pub matrix: Matrix,
    /// The combinations a budget left out (kept: the first ones).
    pub matrix_cut: Option<usize>,
    pub scripts: Vec<Script>,
    /// Kubeconfig secrets or variables the job reads (`secrets.KUBECONFIG_PROD`,
    /// `$KUBE_CONFIG_STAGING`), by name, at their lines.
    pub kube_secrets: Vec<Written>,
}

/// The names of kubeconfig secrets a job's scalars read: GitHub `secrets.NAME` and GitLab
/// `$NAME` whose name holds `KUBE`.
pub fn kube_secrets(node: &Node) -> Vec<Written> {
    let mut out = Vec::new();
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        if let Some(seq) = n.as_seq() {
            stack.extend(seq.iter());
        } else if let Some(map) = n.as_map() {
            stack.extend(map.iter().map(|e| &e.value));
        } else if let Some(text) = n.as_str() {
            for name in secret_names(text) {
                if !out.iter().any(|w: &Written| w.text == name) {
                    out.push(Written {
                        text: name,
                        line: n.span.line,
                    });
                }
            }
        }
    }
    out.sort_by_key(|w| w.line);
    out
}

fn secret_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let name_at = |rest: &str| -> String {
        rest.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect()
    };
    for (i, _) in text.match_indices("secrets.") {
        out.push(name_at(&text[i + "secrets.".len()..]));
    }
    for (i, _) in text.match_indices('$') {
        let rest = text[i + 1..].trim_start_matches('{');
        out.push(name_at(rest));
    }
    out.retain(|n| n.to_ascii_uppercase().contains("KUBE"));
    out
}

/// The values of a string map (`env:`, `variables:`), scalars only; GitLab's
/// `{value: x, description: ...}` form read as its value.
fn string_pairs(node: Option<&Node>) -> Vec<(String, String)> {
    let Some(entries) = node.and_then(Node::as_map) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|e| {
            let key = e.key.as_str()?;
            let value = e
                .value
                .as_str()
                .or_else(|| e.value.get("value").and_then(Node::as_str))?;
            Some((key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// A scalar's shell lines with their file lines. A literal block (`run: |`) maps line for
/// line from the line after its indicator; a plain or quoted scalar, or a folded block
/// whose lines were joined, is read at its first line.
pub fn script_lines(node: &Node) -> Vec<(String, u32)> {
    let Some(text) = node.as_str() else {
        return Vec::new();
    };
    let start = node.span.line;
    if node.scalar_kind() == ScalarKind::Block {
        let lines: Vec<&str> = text.lines().collect();
        let room = node.span.last_line().saturating_sub(start) as usize;
        if lines.len() <= room {
            return lines
                .iter()
                .enumerate()
                .map(|(i, l)| ((*l).to_owned(), start + 1 + i as u32))
                .collect();
        }
        return lines.iter().map(|l| ((*l).to_owned(), start + 1)).collect();
    }
    // A multi-line plain scalar is folded into one line by YAML already.
    text.lines().map(|l| (l.to_owned(), start)).collect()
}

fn environment_of(node: Option<&Node>) -> Option<Written> {
    let node = node?;
    if let Some(text) = node.as_str() {
        return Some(Written {
            text: text.to_owned(),
            line: node.span.line,
        });
    }
    let name = node.get("name")?;
    Some(Written {
        text: name.as_str()?.to_owned(),
        line: name.span.line,
    })
}

/// A matrix value as a string, when it is a scalar.
fn scalar_text(node: &Node) -> Option<String> {
    node.as_str().map(str::to_owned)
}

/// A GitHub `strategy.matrix`: the product of its lists, then `include` and `exclude`, at
/// most `limit` combinations (the count left out is returned).
pub fn github_matrix(node: Option<&Node>, limit: usize) -> (Matrix, Option<usize>) {
    let Some(node) = node else {
        return (Matrix::Combinations(vec![BTreeMap::new()]), None);
    };
    let Some(entries) = node.as_map() else {
        return (
            Matrix::Unknown {
                line: node.span.line,
            },
            None,
        );
    };
    let mut combos: Vec<BTreeMap<String, String>> = vec![BTreeMap::new()];
    let mut originals: Vec<String> = Vec::new();
    let mut cut = 0usize;
    let mut include = None;
    let mut exclude = None;
    for e in entries {
        let Some(key) = e.key.as_str() else { continue };
        match key {
            "include" => include = Some(&e.value),
            "exclude" => exclude = Some(&e.value),
            _ => {
                let Some(values) = e.value.as_seq() else {
                    // `os: ${{ fromJSON(...) }}`: this key's values are not known.
                    return (
                        Matrix::Unknown {
                            line: e.value.span.line,
                        },
                        None,
                    );
                };
                originals.push(key.to_owned());
                let mut next = Vec::new();
                for combo in &combos {
                    for v in values {
                        if next.len() >= limit {
                            cut += 1;
                            continue;
                        }
                        let mut c = combo.clone();
                        // A map value is not a string: its key stays unknown in the combo.
                        if let Some(text) = scalar_text(v) {
                            c.insert(key.to_owned(), text);
                        }
                        next.push(c);
                    }
                }
                combos = next;
            }
        }
    }
    if let Some(excluded) = exclude.and_then(Node::as_seq) {
        for x in excluded {
            let pairs = string_pairs(Some(x));
            combos.retain(|c| !pairs.iter().all(|(k, v)| c.get(k) == Some(v)));
        }
    }
    if let Some(included) = include.and_then(Node::as_seq) {
        for inc in included {
            let pairs = string_pairs(Some(inc));
            let mut matched = false;
            let base = combos.len();
            for c in combos.iter_mut().take(base) {
                // An entry joins each combination whose original values it does not change.
                let fits = pairs
                    .iter()
                    .all(|(k, v)| !originals.contains(k) || c.get(k).is_none_or(|x| x == v));
                if fits && !originals.is_empty() {
                    matched = true;
                    for (k, v) in &pairs {
                        c.insert(k.clone(), v.clone());
                    }
                }
            }
            if !matched {
                if combos.len() >= limit {
                    cut += 1;
                    continue;
                }
                // With no original key the base combination is empty: replace it.
                if originals.is_empty() && combos.len() == 1 && combos[0].is_empty() {
                    combos.clear();
                }
                combos.push(pairs.into_iter().collect());
            }
        }
    }
    (Matrix::Combinations(combos), (cut > 0).then_some(cut))
}

/// Every job of a GitHub Actions workflow.
pub fn github_jobs(d: &Document, matrix_limit: usize) -> Vec<CiJob> {
    let workflow_env = string_pairs(d.root.get("env"));
    let workflow_dir = d
        .root
        .get("defaults")
        .and_then(|x| x.get("run"))
        .and_then(|x| x.get("working-directory"))
        .and_then(Node::as_str);
    let Some(jobs) = d.root.get("jobs").and_then(Node::as_map) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in jobs {
        let Some(name) = entry.key.as_str() else {
            continue;
        };
        let job = &entry.value;
        let mut vars = workflow_env.clone();
        vars.extend(string_pairs(job.get("env")));
        let dir = job
            .get("defaults")
            .and_then(|x| x.get("run"))
            .and_then(|x| x.get("working-directory"))
            .and_then(Node::as_str)
            .or(workflow_dir);
        let (matrix, matrix_cut) = github_matrix(
            job.get("strategy").and_then(|s| s.get("matrix")),
            matrix_limit,
        );
        let scripts = job
            .get("steps")
            .and_then(Node::as_seq)
            .unwrap_or_default()
            .iter()
            .filter_map(|step| {
                let run = step.get("run")?;
                Some(Script {
                    lines: script_lines(run),
                    env: string_pairs(step.get("env")),
                    dir: step
                        .get("working-directory")
                        .and_then(Node::as_str)
                        .or(dir)
                        .map(str::to_owned),
                })
            })
            .collect();
        out.push(CiJob {
            ci: Ci::GitHub,
            file: Arc::clone(&d.file),
            name: name.to_owned(),
            line: entry.key.span.line,
            environment: environment_of(job.get("environment")),
            vars,
            matrix,
            matrix_cut,
            scripts,
            kube_secrets: kube_secrets(job),
        });
    }
    out
}

/// Top-level keys of `.gitlab-ci.yml` that are not jobs.
const GITLAB_KEYWORDS: &[&str] = &[
    "stages",
    "variables",
    "default",
    "include",
    "workflow",
    "image",
    "services",
    "before_script",
    "after_script",
    "cache",
    "pages",
];

/// How many jobs one key's lookup through `extends` visits at most: GitLab itself follows 11
/// levels; a hostile file's lists of parents (or a cycle) would otherwise multiply.
const EXTENDS_VISITS: usize = 64;

/// A GitLab job's key, following `extends` (a name or a list, last one wins) to the nearest
/// job that sets it.
fn gitlab_key<'n>(root: &'n Node, job: &'n Node, key: &str) -> Option<&'n Node> {
    let mut visits = 0;
    gitlab_key_from(root, job, key, &mut visits)
}

fn gitlab_key_from<'n>(
    root: &'n Node,
    job: &'n Node,
    key: &str,
    visits: &mut usize,
) -> Option<&'n Node> {
    *visits += 1;
    if let Some(v) = job.get(key) {
        return Some(v);
    }
    if *visits >= EXTENDS_VISITS {
        return None;
    }
    let extends = job.get("extends")?;
    let parents: Vec<&str> = match extends.as_seq() {
        Some(list) => list.iter().filter_map(Node::as_str).collect(),
        None => extends.as_str().into_iter().collect(),
    };
    for parent in parents.iter().rev().filter_map(|p| root.get(p)) {
        if *visits >= EXTENDS_VISITS {
            return None;
        }
        if let Some(v) = gitlab_key_from(root, parent, key, visits) {
            return Some(v);
        }
    }
    None
}

/// A GitLab `script:`: a string or a list of strings (nested lists flattened once, as
/// GitLab does for anchors).
fn gitlab_script(node: Option<&Node>) -> Vec<(String, u32)> {
    let Some(node) = node else { return Vec::new() };
    match node.as_seq() {
        Some(items) => items
            .iter()
            .flat_map(|i| match i.as_seq() {
                Some(inner) => inner.iter().flat_map(script_lines).collect(),
                None => script_lines(i),
            })
            .collect(),
        None => script_lines(node),
    }
}

/// Every job of a `.gitlab-ci.yml`: top-level maps with a `script` (hidden `.jobs` are
/// templates for `extends`, not jobs).
pub fn gitlab_jobs(d: &Document, matrix_limit: usize) -> Vec<CiJob> {
    let root = &d.root;
    let global_vars = string_pairs(root.get("variables"));
    let Some(entries) = root.as_map() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries {
        let Some(name) = entry.key.as_str() else {
            continue;
        };
        if name.starts_with('.') || GITLAB_KEYWORDS.contains(&name) {
            continue;
        }
        let job = &entry.value;
        let Some(script) = gitlab_key(root, job, "script") else {
            continue;
        };
        let mut vars = global_vars.clone();
        vars.extend(string_pairs(gitlab_key(root, job, "variables")));
        let before = gitlab_key(root, job, "before_script").or_else(|| {
            root.get("default")
                .and_then(|x| x.get("before_script"))
                .or_else(|| root.get("before_script"))
        });
        let mut lines = gitlab_script(before);
        lines.extend(gitlab_script(Some(script)));
        let (matrix, matrix_cut) = gitlab_matrix(
            gitlab_key(root, job, "parallel").and_then(|p| p.get("matrix")),
            matrix_limit,
        );
        out.push(CiJob {
            ci: Ci::GitLab,
            file: Arc::clone(&d.file),
            name: name.to_owned(),
            line: entry.key.span.line,
            environment: environment_of(gitlab_key(root, job, "environment")),
            vars,
            matrix,
            matrix_cut,
            scripts: vec![Script {
                lines,
                env: Vec::new(),
                dir: None,
            }],
            kube_secrets: kube_secrets(job),
        });
    }
    out
}

/// A GitLab `parallel: matrix:`: a list of maps, each the product of its keys' values (a
/// scalar or a list), at most `limit` combinations in all.
fn gitlab_matrix(node: Option<&Node>, limit: usize) -> (Matrix, Option<usize>) {
    let Some(node) = node else {
        return (Matrix::Combinations(vec![BTreeMap::new()]), None);
    };
    let Some(items) = node.as_seq() else {
        return (
            Matrix::Unknown {
                line: node.span.line,
            },
            None,
        );
    };
    let mut all = Vec::new();
    let mut cut = 0usize;
    for item in items {
        let Some(entries) = item.as_map() else {
            continue;
        };
        let mut combos: Vec<BTreeMap<String, String>> = vec![BTreeMap::new()];
        for e in entries {
            let Some(key) = e.key.as_str() else { continue };
            let values: Vec<String> = match e.value.as_seq() {
                Some(list) => list.iter().filter_map(scalar_text).collect(),
                None => scalar_text(&e.value).into_iter().collect(),
            };
            let mut next = Vec::new();
            for c in &combos {
                for v in &values {
                    if all.len() + next.len() >= limit {
                        cut += 1;
                        continue;
                    }
                    let mut c = c.clone();
                    c.insert(key.to_owned(), v.clone());
                    next.push(c);
                }
            }
            combos = next;
        }
        all.extend(combos);
    }
    if all.is_empty() {
        all.push(BTreeMap::new());
    }
    (Matrix::Combinations(all), (cut > 0).then_some(cut))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::{load, Loaded};

    fn doc(path: &str, text: &str) -> Document {
        match load(&Arc::from(path), text.as_bytes(), None) {
            Loaded::File(f) => f.documents[0].clone(),
            Loaded::Skipped(r) => panic!("{r}"),
        }
    }

    #[test]
    fn a_literal_run_block_maps_each_shell_line_to_its_file_line() {
        let d = doc(
            ".github/workflows/d.yml",
            "jobs:\n  deploy:\n    environment: production\n    steps:\n      - run: |\n          echo one\n\n          kubectl apply -k overlays/prod\n      - run: kubectl apply -f tests/\n",
        );
        let jobs = github_jobs(&d, 256);
        assert_eq!(jobs.len(), 1);
        let j = &jobs[0];
        assert_eq!(
            j.environment,
            Some(Written {
                text: "production".into(),
                line: 3
            })
        );
        assert_eq!(
            j.scripts[0].lines,
            vec![
                ("echo one".to_owned(), 6),
                (String::new(), 7),
                ("kubectl apply -k overlays/prod".to_owned(), 8)
            ]
        );
        assert_eq!(
            j.scripts[1].lines,
            vec![("kubectl apply -f tests/".to_owned(), 9)]
        );
    }

    #[test]
    fn a_matrix_is_the_product_with_include_and_exclude() {
        let d = doc(
            ".github/workflows/m.yml",
            "jobs:\n  d:\n    strategy:\n      matrix:\n        env: [dev, prod]\n        region: [eu, us]\n        exclude:\n          - env: dev\n            region: us\n        include:\n          - env: prod\n            context: prod-ctx\n          - env: qa\n            region: eu\n",
        );
        let jobs = github_jobs(&d, 256);
        let Matrix::Combinations(c) = &jobs[0].matrix else {
            panic!("known matrix")
        };
        let shown: Vec<String> = c
            .iter()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        assert_eq!(
            shown,
            [
                "env=dev,region=eu",
                "context=prod-ctx,env=prod,region=eu",
                "context=prod-ctx,env=prod,region=us",
                "env=qa,region=eu"
            ]
        );
        let (m, cut) = github_matrix(
            d.root
                .get("jobs")
                .and_then(|j| j.get("d"))
                .and_then(|j| j.get("strategy"))
                .and_then(|s| s.get("matrix")),
            2,
        );
        let Matrix::Combinations(c) = m else {
            panic!("known matrix")
        };
        assert_eq!(c.len(), 2);
        assert_eq!(cut, Some(3));
        // 2 × 2 product cut to 2, then `exclude` and two `include` entries past the limit.
    }

    #[test]
    fn gitlab_jobs_follow_extends_and_skip_templates() {
        let d = doc(
            ".gitlab-ci.yml",
            "variables:\n  OVERLAY: overlays/prod\n.deploy:\n  environment:\n    name: production\n  script:\n    - kubectl apply -k $OVERLAY\ndeploy-prod:\n  extends: .deploy\nstages: [deploy]\n",
        );
        let jobs = gitlab_jobs(&d, 256);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].name, "deploy-prod");
        assert_eq!(jobs[0].environment.as_ref().map(|e| e.line), Some(5));
        assert_eq!(
            jobs[0].scripts[0].lines,
            vec![("kubectl apply -k $OVERLAY".to_owned(), 7)]
        );
        assert_eq!(
            jobs[0].vars,
            vec![("OVERLAY".into(), "overlays/prod".into())]
        );
    }
}

#[cfg(test)]
mod hostile {
    use super::*;
    use crate::documents::{load, Loaded};

    /// A hostile `.gitlab-ci.yml`: `extends` lists that cycle and fan out end after a bounded
    /// number of lookups instead of multiplying.
    #[test]
    fn extends_cycles_and_fan_outs_end() {
        let parents = "[.a, .a, .a, .a, .a, .a, .a, .a]";
        let text =
            format!(".a:\n  extends: {parents}\njob:\n  extends: {parents}\n  script: [echo]\n");
        let Loaded::File(f) = load(&Arc::from(".gitlab-ci.yml"), text.as_bytes(), None) else {
            panic!("parsed")
        };
        let jobs = gitlab_jobs(&f.documents[0], 256);
        assert_eq!(jobs.len(), 1);
        assert!(jobs[0].environment.is_none());
    }
}
