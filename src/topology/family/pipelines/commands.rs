//! The command shapes a pipeline family follows, recognised from a script's words:
//! `kubectl apply -f/-k`, `kustomize build DIR | kubectl apply -f -` (and `kubectl
//! kustomize`, `helm template` before the pipe), `helm upgrade --install` / `helm install`,
//! `helmfile … apply|sync` and `skaffold run|deploy`. Every other command of those tools that
//! changes a cluster is [`What::NotFollowed`] with its reason; commands of other tools are
//! nothing. The working folder is tracked through `cd`, `pushd` and `popd`, and variables
//! through assignments, as far as they are known statically.

use super::shell::{assignment, Command, Part, Vars, Word};
use crate::topology::index;

/// A text that is known, or the reference that made it unknown, as written.
pub type Known = Result<String, String>;

/// One recognised command.
#[derive(Debug, Clone)]
pub struct Found {
    pub line: u32,
    /// The command, its references substituted where they are known.
    pub shown: String,
    /// `--context` / `--kube-context`, when given.
    pub context: Option<Known>,
    pub what: What,
}

/// What a recognised command does.
#[derive(Debug, Clone)]
pub enum What {
    /// `kubectl apply -f PATH` (`kustomize: false`) or `-k DIR` / `kustomize build DIR |`.
    Apply {
        /// Each `-f`/`-k` path, and whether it is built with kustomize.
        targets: Vec<(Known, bool)>,
        recursive: bool,
        namespace: Option<String>,
    },
    /// `helm upgrade --install NAME CHART -f values…` (and `helm template … | kubectl
    /// apply`); `chart` is a repository path unless `remote`.
    Helm {
        release: Known,
        /// The chart as written (`./chart`, `bitnami/nginx`, `oci://…`).
        chart: Known,
        /// The chart as a repository path, unless it is plainly remote (`--repo`, a URL).
        path: Option<Known>,
        values: Vec<Known>,
        set: Vec<(String, String, bool)>,
        namespace: Option<String>,
    },
    /// `helmfile [-e ENV] [-f FILE] apply|sync|deploy`, run in folder `dir`.
    Helmfile {
        environment: Option<Known>,
        file: Option<Known>,
        /// `-l`/`--selector` values, as written.
        selectors: Vec<String>,
        dir: String,
        verb: String,
    },
    /// `skaffold run|deploy [-p PROFILE] [-f FILE]`, run in folder `dir`.
    Skaffold {
        profiles: Vec<Known>,
        file: Option<Known>,
        dir: String,
        verb: String,
    },
    /// A command of a deploying tool whose shape is not followed, and why.
    NotFollowed(String),
}

/// The state a script's commands share: its folder (`None` once a `cd` went somewhere not
/// known), the `pushd` stack, and its variables.
pub struct Shell {
    pub dir: Option<String>,
    stack: Vec<Option<String>>,
    pub vars: Vars,
}

impl Shell {
    pub fn new(dir: Option<String>, vars: Vars) -> Self {
        Shell {
            dir,
            stack: Vec::new(),
            vars,
        }
    }

    /// A path word joined onto the script's folder (repository-relative).
    fn path(&self, word: &Word) -> Known {
        let text = word.resolve(&self.vars)?;
        if text.starts_with('/') || text.starts_with('~') {
            return Err(text);
        }
        let dir = self
            .dir
            .as_deref()
            .ok_or_else(|| format!("{text} (in a folder a cd changed to something not known)"))?;
        index::join(dir, text.trim_end_matches('/'), false).ok_or(text)
    }

    /// Reads one pipeline of commands (`cmds[0]` unpiped, the rest piped into each other):
    /// changes the shell's state and returns what it recognised.
    pub fn read(&mut self, cmds: &[Command]) -> Vec<Found> {
        let mut out = Vec::new();
        for (i, c) in cmds.iter().enumerate() {
            let before = i.checked_sub(1).map(|j| &cmds[j]);
            if let Some(found) = self.one(c, before) {
                out.push(found);
            }
        }
        out
    }

    fn one(&mut self, c: &Command, before: Option<&Command>) -> Option<Found> {
        let mut words: &[Word] = &c.words;
        // Leading assignments: `A=b` alone sets a variable; `A=b cmd` only for `cmd`.
        let mut assigned = Vec::new();
        while let Some((name, value)) = words.first().and_then(assignment) {
            assigned.push((name, value));
            words = &words[1..];
        }
        if words.is_empty() {
            for (name, value) in assigned {
                self.set(name, &value);
            }
            return None;
        }
        let program = words[0].literal()?;
        let program = index::basename(&program).to_owned();
        let args = &words[1..];
        match program.as_str() {
            "export" => {
                for (name, value) in args.iter().filter_map(assignment) {
                    self.set(name, &value);
                }
                None
            }
            "cd" | "pushd" => {
                if program == "pushd" {
                    self.stack.push(self.dir.clone());
                }
                self.dir = match args.first() {
                    None => Some(String::new()),
                    Some(w) => self.path(w).ok(),
                };
                None
            }
            "popd" => {
                if let Some(d) = self.stack.pop() {
                    self.dir = d;
                }
                None
            }
            "kubectl" | "helm" | "helmfile" | "skaffold" => {
                let mut shown = shown(words, &self.vars);
                if let (true, Some(b)) = (c.piped, before) {
                    shown = format!("{} | {shown}", self::shown(&b.words, &self.vars));
                }
                let (context, what) = match program.as_str() {
                    "kubectl" => self.kubectl(args, c.piped.then_some(before).flatten())?,
                    "helm" => self.helm(args)?,
                    "helmfile" => self.helmfile(args)?,
                    _ => self.skaffold(args)?,
                };
                Some(Found {
                    line: c.line,
                    shown,
                    context,
                    what,
                })
            }
            _ => None,
        }
    }

    fn set(&mut self, name: String, value: &Word) {
        match value.resolve(&self.vars) {
            Ok(v) => {
                self.vars.shell.insert(name, v);
            }
            Err(_) => {
                self.vars.shell.remove(&name);
            }
        }
    }

    fn kubectl(&self, args: &[Word], before: Option<&Command>) -> Option<(Option<Known>, What)> {
        let a = Args::parse(args, &self.vars, KUBECTL_VALUE_FLAGS);
        let context = a.value(&["--context"]);
        let verb = a.positional.first().map(String::as_str);
        match verb {
            Some("apply") => {}
            Some("create" | "replace" | "patch" | "set" | "scale" | "run" | "expose") => {
                return Some((
                    context,
                    What::NotFollowed(format!(
                        "kubectl {} changes objects envfence does not read",
                        verb.unwrap_or_default()
                    )),
                ));
            }
            // Reads, waits, deletions and dry runs deliver nothing.
            _ => return None,
        }
        let dry = a.flag(&["--dry-run"])
            || a.values(&["--dry-run"])
                .iter()
                .any(|v| v.as_deref().is_ok_and(|v| v != "none"));
        if dry {
            return None;
        }
        let namespace = a.value(&["-n", "--namespace"]).and_then(Result::ok);
        let recursive = a.flag(&["-R", "--recursive"]);
        let kustomize = a.words(&["-k", "--kustomize"]);
        let files = a.words(&["-f", "--filename"]);
        let mut targets: Vec<(Known, bool)> = Vec::new();
        for w in kustomize {
            targets.push((self.path(w), true));
        }
        for w in files {
            let literal = w.resolve(&self.vars);
            match literal.as_deref() {
                Ok("-") => return Some((context, self.piped_input(before, namespace))),
                Ok(url) if url.contains("://") => {
                    return Some((
                        context,
                        What::NotFollowed(format!(
                            "it applies manifests from {url}, which envfence does not read"
                        )),
                    ))
                }
                _ => targets.push((self.path(w), false)),
            }
        }
        if targets.is_empty() {
            return Some((
                context,
                What::NotFollowed("it names no -f or -k path".into()),
            ));
        }
        Some((
            context,
            What::Apply {
                targets,
                recursive,
                namespace,
            },
        ))
    }

    /// `… | kubectl apply -f -`: what the command before the pipe renders.
    fn piped_input(&self, before: Option<&Command>, namespace: Option<String>) -> What {
        let not = || {
            What::NotFollowed(
                "it applies what the command before it writes, which envfence does not run".into(),
            )
        };
        let Some(before) = before else { return not() };
        let Some(program) = before.words.first().and_then(Word::literal) else {
            return not();
        };
        let args = &before.words[1..];
        match index::basename(&program) {
            "kustomize" => {
                let a = Args::parse(args, &self.vars, &["-o", "--output"]);
                match (
                    a.positional.first().map(String::as_str),
                    a.words_positional.get(1),
                ) {
                    (Some("build"), Some(dir)) => What::Apply {
                        targets: vec![(self.path(dir), true)],
                        recursive: false,
                        namespace,
                    },
                    (Some("build"), None) => What::Apply {
                        targets: vec![(self.dir.clone().ok_or_else(|| ".".to_owned()), true)],
                        recursive: false,
                        namespace,
                    },
                    _ => not(),
                }
            }
            "kubectl" => {
                let a = Args::parse(args, &self.vars, KUBECTL_VALUE_FLAGS);
                match (
                    a.positional.first().map(String::as_str),
                    a.words_positional.get(1),
                ) {
                    (Some("kustomize"), Some(dir)) => What::Apply {
                        targets: vec![(self.path(dir), true)],
                        recursive: false,
                        namespace,
                    },
                    _ => not(),
                }
            }
            "helm" => {
                let a = Args::parse(args, &self.vars, HELM_VALUE_FLAGS);
                if a.positional.first().map(String::as_str) == Some("template") {
                    self.helm_install(&a, 1).unwrap_or_else(not)
                } else {
                    not()
                }
            }
            _ => not(),
        }
    }

    fn helm(&self, args: &[Word]) -> Option<(Option<Known>, What)> {
        let a = Args::parse(args, &self.vars, HELM_VALUE_FLAGS);
        let context = a.value(&["--kube-context"]);
        let install = match a.positional.first().map(String::as_str) {
            Some("install") => true,
            Some("upgrade") => a.flag(&["--install", "-i"]),
            _ => false,
        };
        if !install {
            return match a.positional.first().map(String::as_str) {
                Some("upgrade") => Some((
                    context,
                    What::NotFollowed(
                        "helm upgrade without --install changes a release envfence does not read"
                            .into(),
                    ),
                )),
                _ => None,
            };
        }
        if a.flag(&["--dry-run"]) {
            return None;
        }
        let what = self.helm_install(&a, 1).unwrap_or_else(|| {
            What::NotFollowed(
                "it names no release and chart (--generate-name is not followed)".into(),
            )
        });
        Some((context, what))
    }

    /// `helm install|upgrade|template NAME CHART …` from the positional word at `at`.
    fn helm_install(&self, a: &Args<'_>, at: usize) -> Option<What> {
        let release = a.words_positional.get(at)?.resolve(&self.vars);
        let chart_word = a.words_positional.get(at + 1)?;
        let written = chart_word.resolve(&self.vars);
        let remote =
            a.value(&["--repo"]).is_some() || written.as_deref().is_ok_and(|c| c.contains("://"));
        let path = (!remote).then(|| self.path(chart_word));
        let values = a
            .words(&["-f", "--values"])
            .into_iter()
            .map(|w| self.path(w))
            .collect();
        let mut set = Vec::new();
        for (flag, as_string) in [("--set", false), ("--set-string", true)] {
            for v in a.values(&[flag]).into_iter().flatten() {
                for pair in v.split(',') {
                    if let Some((k, val)) = pair.split_once('=') {
                        set.push((k.to_owned(), val.to_owned(), as_string));
                    }
                }
            }
        }
        Some(What::Helm {
            release,
            chart: written,
            path,
            values,
            set,
            namespace: a.value(&["-n", "--namespace"]).and_then(Result::ok),
        })
    }

    fn helmfile(&self, args: &[Word]) -> Option<(Option<Known>, What)> {
        let a = Args::parse(args, &self.vars, HELMFILE_VALUE_FLAGS);
        let verb = a.positional.first()?.clone();
        if !matches!(verb.as_str(), "apply" | "sync" | "deploy") {
            return None;
        }
        Some((
            a.value(&["--kube-context"]),
            What::Helmfile {
                environment: a.value(&["-e", "--environment"]),
                file: a.words(&["-f", "--file"]).first().map(|w| self.path(w)),
                selectors: a
                    .values(&["-l", "--selector"])
                    .into_iter()
                    .map(|v| v.unwrap_or_else(|piece| piece))
                    .collect(),
                dir: self.dir.clone().unwrap_or_default(),
                verb,
            },
        ))
    }

    fn skaffold(&self, args: &[Word]) -> Option<(Option<Known>, What)> {
        let a = Args::parse(args, &self.vars, SKAFFOLD_VALUE_FLAGS);
        let verb = a.positional.first()?.clone();
        if !matches!(verb.as_str(), "run" | "deploy") {
            return None;
        }
        let profiles = a
            .values(&["-p", "--profile"])
            .into_iter()
            .flat_map(|v| match v {
                Ok(list) => list.split(',').map(|p| Ok(p.to_owned())).collect(),
                Err(e) => vec![Err(e)],
            })
            .collect();
        Some((
            a.value(&["--kube-context"]),
            What::Skaffold {
                profiles,
                file: a.words(&["-f", "--filename"]).first().map(|w| self.path(w)),
                dir: self.dir.clone().unwrap_or_default(),
                verb,
            },
        ))
    }
}

/// The command as the evidence shows it: each word substituted where known.
fn shown(words: &[Word], vars: &Vars) -> String {
    let mut out = words
        .iter()
        .map(|w| w.resolve(vars).unwrap_or_else(|_| w.written()))
        .collect::<Vec<_>>()
        .join(" ");
    if out.chars().count() > 200 {
        out = out.chars().take(200).collect::<String>() + "…";
    }
    out
}

const KUBECTL_VALUE_FLAGS: &[&str] = &[
    "-f",
    "--filename",
    "-k",
    "--kustomize",
    "-n",
    "--namespace",
    "--context",
    "--kubeconfig",
    "--cluster",
    "--user",
    "-l",
    "--selector",
    "-o",
    "--output",
    "-s",
    "--server",
    "--token",
    "--field-manager",
    "--timeout",
    "--prune-allowlist",
    "--prune-whitelist",
];

const HELM_VALUE_FLAGS: &[&str] = &[
    "-f",
    "--values",
    "-n",
    "--namespace",
    "--kube-context",
    "--kubeconfig",
    "--set",
    "--set-string",
    "--set-file",
    "--set-json",
    "--version",
    "--repo",
    "--timeout",
    "--post-renderer",
    "-o",
    "--output",
    "--description",
    "--history-max",
    "--username",
    "--password",
    "--ca-file",
    "--cert-file",
    "--key-file",
    "--kube-apiserver",
    "--kube-token",
];

const HELMFILE_VALUE_FLAGS: &[&str] = &[
    "-e",
    "--environment",
    "-f",
    "--file",
    "-l",
    "--selector",
    "-n",
    "--namespace",
    "--kube-context",
    "--state-values-set",
    "--state-values-file",
    "--args",
    "--concurrency",
    "-c",
    "--chart",
];

const SKAFFOLD_VALUE_FLAGS: &[&str] = &[
    "-p",
    "--profile",
    "-f",
    "--filename",
    "--kube-context",
    "--kubeconfig",
    "-n",
    "--namespace",
    "-d",
    "--default-repo",
    "-t",
    "--tag",
    "-l",
    "--label",
    "--build-artifacts",
    "-a",
    "-m",
    "--module",
];

/// A command's words sorted into flags (with their values) and positional words.
struct Args<'w> {
    vars: &'w Vars,
    /// `(flag, value word)` for flags that take a value (`--flag=value` included);
    /// `(flag, None)` for switches.
    flags: Vec<(String, Option<Word>)>,
    /// Positional words, resolved (unknown ones as written).
    positional: Vec<String>,
    words_positional: Vec<&'w Word>,
}

/// `--flag=value` → (`--flag`, the word `value`), when the `=` is in the literal start.
fn split_inline(w: &Word) -> Option<(String, Word)> {
    let Some(Part::Lit(first)) = w.0.first() else {
        return None;
    };
    let (flag, rest) = first.split_once('=')?;
    let mut value = Vec::new();
    if !rest.is_empty() {
        value.push(Part::Lit(rest.to_owned()));
    }
    value.extend(w.0[1..].iter().cloned());
    Some((flag.to_owned(), Word(value)))
}

impl<'w> Args<'w> {
    fn parse(words: &'w [Word], vars: &'w Vars, value_flags: &[&str]) -> Self {
        let mut a = Args {
            vars,
            flags: Vec::new(),
            positional: Vec::new(),
            words_positional: Vec::new(),
        };
        let mut i = 0;
        while i < words.len() {
            let w = &words[i];
            let text = w.resolve(vars).unwrap_or_else(|_| w.written());
            if text.starts_with('-') && text.len() > 1 {
                if let Some((flag, value)) = split_inline(w) {
                    a.flags.push((flag, Some(value)));
                } else if value_flags.contains(&text.as_str()) {
                    a.flags.push((text.clone(), words.get(i + 1).cloned()));
                    i += 1;
                } else {
                    a.flags.push((text, None));
                }
            } else {
                a.positional.push(text);
                a.words_positional.push(w);
            }
            i += 1;
        }
        a
    }

    fn flag(&self, names: &[&str]) -> bool {
        self.flags
            .iter()
            .any(|(f, v)| v.is_none() && names.contains(&f.as_str()))
    }

    /// The flag's value words, in order.
    fn words(&self, names: &[&str]) -> Vec<&Word> {
        self.flags
            .iter()
            .filter(|(f, _)| names.contains(&f.as_str()))
            .filter_map(|(_, v)| v.as_ref())
            .collect()
    }

    fn values(&self, names: &[&str]) -> Vec<Known> {
        self.words(names)
            .into_iter()
            .map(|w| w.resolve(self.vars))
            .collect()
    }

    fn value(&self, names: &[&str]) -> Option<Known> {
        self.values(names).into_iter().last()
    }
}
