//! Argo CD AppProjects: what a project permits (destinations, source repositories, the
//! namespaces its Applications may live in, cluster-scoped kinds), matched as Argo CD matches
//! them, so that an Application its project would refuse is known before anything syncs.
//!
//! Argo CD's rules, followed here:
//! - a destination is permitted when a `destinations` entry matches its server or name, and
//!   its namespace, and no `!` entry denies it (a `!` pattern that does not match the value
//!   denies it; denials win);
//! - a source is permitted when a `sourceRepos` entry matches its normalised `repoURL` (`*`
//!   stops at `/`, `**` does not) and no `!` entry denies it;
//! - an Application in another namespace than Argo CD's own (the project's) needs that
//!   namespace in `sourceNamespaces`;
//! - a cluster-scoped kind needs a `clusterResourceWhitelist` entry (none means none) and no
//!   `clusterResourceBlacklist` entry.
//!
//! What cannot be known statically (a destination given by name whose server is not declared,
//! a regular-expression pattern) is neither permitted nor denied: nothing is said of it.

use std::sync::Arc;

use crate::documents::{Document, Node};
use crate::evidence::{AppProjectHop, Evidence, ProjectVerdict};
use crate::location::Location;
use crate::topology::clusters::{Cluster, IN_CLUSTER, IN_CLUSTER_SERVER};
use crate::topology::env::Env;
use crate::topology::index::RepoIndex;

/// One `destinations` entry.
#[derive(Debug, Clone)]
pub struct DestinationEntry {
    pub server: String,
    pub name: String,
    pub namespace: String,
    pub line: u32,
}

/// A `group`/`kind` entry of a cluster resource list.
#[derive(Debug, Clone)]
pub struct GroupKind {
    pub group: String,
    pub kind: String,
    pub line: u32,
}

/// An AppProject as written in the repository.
#[derive(Debug, Clone)]
pub struct AppProject {
    pub name: String,
    pub file: Arc<str>,
    pub origins: Option<Arc<[Location]>>,
    pub first_line: u32,
    /// `metadata.namespace`: where Argo CD itself runs.
    pub namespace: Option<String>,
    /// Labelled projects may be extended by Argo CD's global projects (`globalProjects` in
    /// `argocd-cm`, selected by label): what they lack may come from there.
    pub labelled: bool,
    pub destinations: Vec<DestinationEntry>,
    pub destinations_line: u32,
    pub source_repos: Vec<(String, u32)>,
    pub source_repos_line: u32,
    pub source_namespaces: Vec<String>,
    pub source_namespaces_line: u32,
    pub cluster_whitelist: Vec<GroupKind>,
    pub cluster_whitelist_line: u32,
    pub cluster_blacklist: Vec<GroupKind>,
}

/// What a project says of an Application: permitted (with the hop that says by which
/// entry), denied (with the hop that says why), or not known.
#[derive(Debug, Clone)]
pub enum Judgement {
    Permitted(Evidence),
    Denied(Evidence),
    Unknown,
}

/// The Application being judged, as Argo CD sees it.
pub struct Judged<'a> {
    /// `destination.name`, when the Application gives one.
    pub dest_name: Option<&'a str>,
    /// `destination.server`, or the server of the cluster its name resolves to; `None` when
    /// it is not known.
    pub dest_server: Option<&'a str>,
    pub dest_namespace: &'a str,
    /// The Application's own namespace, when it sets one.
    pub app_namespace: Option<&'a str>,
    /// Each source's `repoURL`, with the line findings about it point at.
    pub sources: Vec<(&'a str, Location)>,
    /// The Application's destination line.
    pub at: Location,
}

impl AppProject {
    /// Reads an AppProject document; `None` for any other document.
    pub fn read(d: &Document) -> Option<AppProject> {
        if d.id.kind.as_deref() != Some("AppProject")
            || !d
                .id
                .api_version
                .as_deref()
                .is_some_and(|v| v.starts_with("argoproj.io/"))
        {
            return None;
        }
        let name = d.id.name.as_deref()?.to_owned();
        let spec = d.root.get("spec");
        let line_of = |key: &str| {
            spec.and_then(|s| s.entry(key))
                .map_or(d.first_line, |e| e.key.span.line)
        };
        let items = |key: &str| seq(spec, key);
        let text = |n: &Node, key: &str| n.get(key).and_then(Node::as_str).unwrap_or("").to_owned();
        let destinations = items("destinations")
            .iter()
            .map(|n| DestinationEntry {
                server: text(n, "server"),
                name: text(n, "name"),
                namespace: text(n, "namespace"),
                line: n.span.line,
            })
            .collect();
        let strings = |key: &str| -> Vec<(String, u32)> {
            items(key)
                .iter()
                .filter_map(|n| Some((n.as_str()?.to_owned(), n.span.line)))
                .collect()
        };
        let kinds = |key: &str| -> Vec<GroupKind> {
            items(key)
                .iter()
                .map(|n| GroupKind {
                    group: text(n, "group"),
                    kind: text(n, "kind"),
                    line: n.span.line,
                })
                .collect()
        };
        Some(AppProject {
            name,
            file: Arc::clone(&d.file),
            origins: d.origins.clone(),
            first_line: d.first_line,
            namespace: d.id.namespace.as_deref().map(str::to_owned),
            labelled: !d.labels.is_empty(),
            destinations,
            destinations_line: line_of("destinations"),
            source_repos: strings("sourceRepos"),
            source_repos_line: line_of("sourceRepos"),
            source_namespaces: strings("sourceNamespaces")
                .into_iter()
                .map(|(s, _)| s)
                .collect(),
            source_namespaces_line: line_of("sourceNamespaces"),
            cluster_whitelist: kinds("clusterResourceWhitelist"),
            cluster_whitelist_line: line_of("clusterResourceWhitelist"),
            cluster_blacklist: kinds("clusterResourceBlacklist"),
        })
    }

    fn at(&self, line: u32) -> Location {
        crate::documents::located(&self.file, self.origins.as_deref(), line)
    }

    fn hop(&self, line: u32, verdict: ProjectVerdict) -> Evidence {
        Evidence::new(
            self.at(line),
            crate::evidence::Hop::AppProject(Box::new(AppProjectHop {
                project: self.name.as_str().into(),
                verdict,
            })),
        )
    }

    /// Judges an Application's destination, sources and namespace, in that order.
    pub fn judge(&self, app: &Judged<'_>) -> Judgement {
        let shown = format!(
            "{} / {}",
            app.dest_name.or(app.dest_server).unwrap_or("?"),
            if app.dest_namespace.is_empty() {
                "(no namespace)"
            } else {
                app.dest_namespace
            }
        );
        let permit = match self.destination(app) {
            Dest::Permitted(entry) => {
                // The name pattern when it is what matched (or all there is), else the server's.
                let by_name = entry.server.is_empty()
                    || (!entry.name.is_empty()
                        && app
                            .dest_name
                            .is_some_and(|n| glob(&entry.name, n, None) == Some(true)));
                let cluster = if by_name { &entry.name } else { &entry.server };
                self.hop(
                    entry.line,
                    ProjectVerdict::Permits {
                        cluster: cluster.as_str().into(),
                        namespace: entry.namespace.as_str().into(),
                    },
                )
            }
            Dest::Unknown => return Judgement::Unknown,
            Dest::DeniedBy(_) | Dest::NoEntry if self.labelled => return Judgement::Unknown,
            Dest::DeniedBy(entry) => {
                let pattern = [&entry.name, &entry.server, &entry.namespace]
                    .into_iter()
                    .find(|p| p.starts_with('!'))
                    .map_or("", |p| p.as_str());
                return Judgement::Denied(self.hop(
                    entry.line,
                    ProjectVerdict::DeniedDestination {
                        destination: shown.into(),
                        entry: pattern.into(),
                        application: app.at.clone(),
                    },
                ));
            }
            Dest::NoEntry => {
                return Judgement::Denied(self.hop(
                    self.destinations_line,
                    ProjectVerdict::NoDestination {
                        destination: shown.into(),
                        application: app.at.clone(),
                    },
                ))
            }
        };
        for (repo, at) in &app.sources {
            match self.source(repo) {
                Some(Ok(())) => {}
                None => return Judgement::Unknown,
                Some(Err(_)) if self.labelled => return Judgement::Unknown,
                Some(Err(entry)) => {
                    let line = entry.map_or(self.source_repos_line, |(_, l)| l);
                    return Judgement::Denied(self.hop(
                        line,
                        ProjectVerdict::DeniedSource {
                            repo: (*repo).into(),
                            entry: entry.map(|(p, _)| p.into()),
                            application: at.clone(),
                        },
                    ));
                }
            }
        }
        if let (Some(ns), Some(home)) = (app.app_namespace, self.namespace.as_deref()) {
            if ns != home {
                let listed = self
                    .source_namespaces
                    .iter()
                    .map(|p| {
                        if p.len() > 1 && p.starts_with('/') && p.ends_with('/') {
                            None // a regular expression: not judged
                        } else {
                            glob(p, ns, None)
                        }
                    })
                    .fold(Some(false), or);
                match listed {
                    Some(true) => {}
                    None => return Judgement::Unknown,
                    Some(false) => {
                        return Judgement::Denied(self.hop(
                            self.source_namespaces_line,
                            ProjectVerdict::DeniedNamespace {
                                namespace: ns.into(),
                                home: home.into(),
                                application: app.at.clone(),
                            },
                        ))
                    }
                }
            }
        }
        Judgement::Permitted(permit)
    }

    /// Whether a cluster-scoped kind of `group` may be synced through this project: `Err`
    /// with the hop that says why not.
    pub fn cluster_kind(
        &self,
        group: &str,
        kind: &str,
        application: &Location,
    ) -> Result<(), Evidence> {
        fn listed<'l>(list: &'l [GroupKind], group: &str, kind: &str) -> Option<&'l GroupKind> {
            list.iter().find(|gk| {
                glob(&gk.kind, kind, Some('/')) == Some(true)
                    && glob(&gk.group, group, Some('/')) == Some(true)
            })
        }
        let verdict = |blacklisted: bool| ProjectVerdict::DeniedClusterResource {
            group: group.into(),
            kind: kind.into(),
            blacklisted,
            application: application.clone(),
        };
        if let Some(gk) = listed(&self.cluster_blacklist, group, kind) {
            return Err(self.hop(gk.line, verdict(true)));
        }
        if listed(&self.cluster_whitelist, group, kind).is_none() && !self.labelled {
            return Err(self.hop(self.cluster_whitelist_line, verdict(false)));
        }
        Ok(())
    }

    /// The production clusters the `destinations` entries reach, when every entry that
    /// permits reaches at least one production cluster and none of another environment: the
    /// production signal's words.
    /// A labelled project gives none: a global project may add destinations to it.
    pub fn production_only(&self, clusters: &[Cluster]) -> Option<Vec<String>> {
        if self.labelled {
            return None;
        }
        let mut names = Vec::new();
        let mut permitting = 0;
        for entry in &self.destinations {
            if [&entry.name, &entry.server]
                .iter()
                .any(|p| p.starts_with('!'))
            {
                continue;
            }
            permitting += 1;
            let reached: Vec<&Cluster> = clusters
                .iter()
                .filter(|c| {
                    (!entry.name.is_empty() && glob(&entry.name, &c.name, None) == Some(true))
                        || (!entry.server.is_empty()
                            && server_of(c)
                                .is_some_and(|s| glob(&entry.server, s, None) == Some(true)))
                })
                .collect();
            // Clusters whose environment is not known (named only by a destination) say
            // nothing either way.
            if !reached.iter().any(|c| c.environment == Env::Production)
                || reached.iter().any(|c| c.environment == Env::NonProduction)
            {
                return None;
            }
            for c in reached.iter().filter(|c| c.environment == Env::Production) {
                if !names.contains(&c.name) {
                    names.push(c.name.clone());
                }
            }
        }
        (permitting > 0).then_some(names)
    }

    /// The destination, as Argo CD's `isDestinationMatched` decides it, in three values.
    fn destination(&self, app: &Judged<'_>) -> Dest<'_> {
        let mut any = Some(false);
        let mut permitted_by = None;
        let mut denied_by = None;
        let mut unknown_denial = false;
        for entry in &self.destinations {
            let name = match app.dest_name {
                Some(n) if !n.is_empty() => glob_or_deny(&entry.name, n),
                _ => Some(false),
            };
            let server = match app.dest_server {
                Some(s) if !s.is_empty() => glob_or_deny(&entry.server, s),
                Some(_) => Some(false),
                // Not known: only `*` (or nothing) decides.
                None if entry.server == "*" => Some(true),
                None if entry.server.is_empty() => Some(false),
                None => None,
            };
            let namespace = glob_or_deny(&entry.namespace, app.dest_namespace);
            let matched = and(or(server, name), namespace);
            if matched == Some(true) && permitted_by.is_none() {
                permitted_by = Some(entry);
            }
            any = or(any, matched);
            let deny_cluster = or(
                and(not(name), Some(is_deny(&entry.name))),
                and(not(server), Some(is_deny(&entry.server))),
            );
            let denies = or(
                and(deny_cluster, namespace),
                and(or(server, name), Some(is_deny(&entry.namespace))),
            );
            match and(not(matched), denies) {
                Some(true) if denied_by.is_none() => denied_by = Some(entry),
                None => unknown_denial = true,
                _ => {}
            }
        }
        if let Some(entry) = denied_by {
            return Dest::DeniedBy(entry);
        }
        match (any, permitted_by) {
            (Some(true), Some(entry)) if !unknown_denial => Dest::Permitted(entry),
            (Some(false), _) => Dest::NoEntry,
            _ => Dest::Unknown,
        }
    }

    /// `Ok` when a `sourceRepos` entry permits `repo`; `Err` with the `!` entry that denies
    /// it, or with nothing when no entry permits it; `None` when it cannot be told.
    #[allow(clippy::type_complexity)]
    fn source(&self, repo: &str) -> Option<Result<(), Option<(&str, u32)>>> {
        let wanted = normalize_git_url(repo);
        let mut any = false;
        for (pattern, line) in &self.source_repos {
            let normalized = match pattern.strip_prefix('!') {
                Some(rest) => format!("!{}", normalize_git_url(rest)),
                None => normalize_git_url(pattern),
            };
            let matched = if let Some(rest) = normalized.strip_prefix('!') {
                not(glob(rest, &wanted, Some('/')))
            } else if normalized == "*" {
                Some(true)
            } else {
                glob(&normalized, &wanted, Some('/'))
            };
            match matched {
                Some(true) => any = true,
                Some(false) if normalized.starts_with('!') => {
                    return Some(Err(Some((pattern.as_str(), *line))))
                }
                Some(false) => {}
                None => return None,
            }
        }
        Some(if any { Ok(()) } else { Err(None) })
    }
}

/// The items of the list at `key` of `spec`, none when it is not a list.
fn seq<'n>(spec: Option<&'n Node>, key: &str) -> &'n [Node] {
    spec.and_then(|s| s.get(key))
        .and_then(Node::as_seq)
        .unwrap_or(&[])
}

/// How the destinations decide.
enum Dest<'p> {
    Permitted(&'p DestinationEntry),
    DeniedBy(&'p DestinationEntry),
    NoEntry,
    Unknown,
}

/// A cluster's API server: the one it declares, or Argo CD's own for `in-cluster`.
fn server_of(c: &Cluster) -> Option<&str> {
    c.server
        .as_deref()
        .or((c.name == IN_CLUSTER).then_some(IN_CLUSTER_SERVER))
}

/// The repository's AppProjects named `name`, with the `default` project Argo CD makes
/// itself left out unless the repository writes its own. Several documents of one name (an
/// overlay per Argo CD instance) are all returned.
pub fn named(index: &RepoIndex<'_>, name: &str) -> Vec<AppProject> {
    index
        .of_kind("AppProject")
        .filter(|(_, d)| d.id.name.as_deref() == Some(name))
        .filter_map(|(_, d)| AppProject::read(d))
        .collect()
}

/// Judges an Application against every document of its project: permitted when one
/// permits it, denied when all deny it (by the first one's reason), else not known.
pub fn judge_all(projects: &[AppProject], app: &Judged<'_>) -> Judgement {
    let mut denied = None;
    for p in projects {
        match p.judge(app) {
            Judgement::Permitted(hop) => return Judgement::Permitted(hop),
            Judgement::Unknown => return Judgement::Unknown,
            Judgement::Denied(hop) => {
                denied.get_or_insert(hop);
            }
        }
    }
    denied.map_or(Judgement::Unknown, Judgement::Denied)
}

fn is_deny(pattern: &str) -> bool {
    pattern.starts_with('!')
}

/// Argo CD's `globMatch` with negation: a `!` pattern matches what its rest does not.
fn glob_or_deny(pattern: &str, value: &str) -> Option<bool> {
    match pattern.strip_prefix('!') {
        Some(rest) => not(glob(rest, value, None)),
        None if pattern == "*" => Some(true),
        None => glob(pattern, value, None),
    }
}

fn not(a: Option<bool>) -> Option<bool> {
    a.map(|b| !b)
}

fn and(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn or(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

/// A repository URL as Argo CD compares them: lower case, `git@host:path` as `git@host/path`,
/// no `ssh://`, no trailing `.git`.
pub fn normalize_git_url(url: &str) -> String {
    let mut repo = url.trim().to_lowercase();
    let scp_like = !repo.contains("://") && repo.contains('@') && repo.contains(':');
    if scp_like {
        repo = repo.replacen(':', "/", 1);
    }
    if let Some(rest) = repo.strip_prefix("ssh://") {
        repo = rest.to_owned();
    }
    if let Some(rest) = repo.strip_suffix(".git") {
        repo = rest.to_owned();
    }
    repo
}

/// The longest pattern matched; past it the match is not known.
const MAX_PATTERN: usize = 1024;

/// The most `{` a pattern may hold; past it the match is not known.
const MAX_BRACE_GROUPS: usize = 8;

/// The most alternatives a `{a,b}` pattern expands to; past it the match is not known.
const MAX_ALTERNATIVES: usize = 64;

/// Matches `value` against a glob pattern as Argo CD's glob library does: `*` any run of
/// characters (not `separator`), `**` any run, `?` one character (not `separator`),
/// `[abc]`/`[a-z]`/`[!abc]`, `{a,b}` alternatives, `\` escapes. `None` when the pattern
/// cannot be read (too many alternatives).
pub fn glob(pattern: &str, value: &str, separator: Option<char>) -> Option<bool> {
    // Real patterns are short: a long one, or one of many `{}` groups (each a level of
    // recursion below), is not judged rather than worked through.
    if pattern.len() > MAX_PATTERN || pattern.matches('{').count() > MAX_BRACE_GROUPS {
        return None;
    }
    let alternatives = expand_braces(pattern)?;
    let value: Vec<char> = value.chars().collect();
    Some(
        alternatives
            .iter()
            .any(|p| matches_tokens(&tokens(p), &value, separator)),
    )
}

/// `a{b,c}d` → `abd`, `acd` (nested braces too); `None` past [`MAX_ALTERNATIVES`].
fn expand_braces(pattern: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = pattern.chars().collect();
    // The first top-level `{` with its matching `}`.
    let mut depth = 0usize;
    let mut open = None;
    let mut escaped = false;
    for (i, c) in chars.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '{' => {
                if depth == 0 {
                    open = Some(i);
                }
                depth += 1;
            }
            '}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    let start = open?;
                    let (head, tail): (String, String) = (
                        chars[..start].iter().collect(),
                        chars[i + 1..].iter().collect(),
                    );
                    let mut parts = Vec::new();
                    let (mut level, mut from) = (0usize, start + 1);
                    for (j, c) in chars.iter().enumerate().take(i).skip(start + 1) {
                        match c {
                            '{' => level += 1,
                            '}' => level = level.saturating_sub(1),
                            ',' if level == 0 => {
                                parts.push(chars[from..j].iter().collect::<String>());
                                from = j + 1;
                            }
                            _ => {}
                        }
                    }
                    parts.push(chars[from..i].iter().collect::<String>());
                    let mut out = Vec::new();
                    for part in parts {
                        for expanded in expand_braces(&format!("{head}{part}{tail}"))? {
                            out.push(expanded);
                            if out.len() > MAX_ALTERNATIVES {
                                return None;
                            }
                        }
                    }
                    return Some(out);
                }
            }
            _ => {}
        }
    }
    Some(vec![pattern.to_owned()])
}

#[derive(Debug)]
enum Token {
    Char(char),
    Any,
    Star,
    SuperStar,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

fn tokens(pattern: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(Token::Char(chars.next().unwrap_or('\\'))),
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                out.push(Token::SuperStar);
            }
            '*' => out.push(Token::Star),
            '?' => out.push(Token::Any),
            '[' => {
                let rest: Vec<char> = chars.clone().collect();
                match rest.iter().position(|&c| c == ']') {
                    Some(end) if end > 0 => {
                        let body = &rest[..end];
                        let (negated, body) = match body.first() {
                            Some('!') | Some('^') => (true, &body[1..]),
                            _ => (false, body),
                        };
                        let mut ranges = Vec::new();
                        let mut i = 0;
                        while i < body.len() {
                            if i + 2 < body.len() && body[i + 1] == '-' {
                                ranges.push((body[i], body[i + 2]));
                                i += 3;
                            } else {
                                ranges.push((body[i], body[i]));
                                i += 1;
                            }
                        }
                        for _ in 0..=end {
                            chars.next();
                        }
                        out.push(Token::Class { negated, ranges });
                    }
                    _ => out.push(Token::Char('[')),
                }
            }
            c => out.push(Token::Char(c)),
        }
    }
    out
}

/// Dynamic programming over (token, character): linear in each, never exponential.
fn matches_tokens(tokens: &[Token], value: &[char], separator: Option<char>) -> bool {
    let is_sep = |c: char| separator == Some(c);
    // reach[j]: the tokens so far can match value[..j].
    let mut reach = vec![false; value.len() + 1];
    reach[0] = true;
    for token in tokens {
        let mut next = vec![false; value.len() + 1];
        match token {
            Token::Star | Token::SuperStar => {
                let super_star = matches!(token, Token::SuperStar);
                let mut on = false;
                for j in 0..=value.len() {
                    if reach[j] {
                        on = true;
                    }
                    next[j] = on;
                    if j < value.len() && !super_star && is_sep(value[j]) {
                        on = false;
                    }
                }
            }
            single => {
                for j in 0..value.len() {
                    if !reach[j] {
                        continue;
                    }
                    let c = value[j];
                    let ok = match single {
                        Token::Char(p) => *p == c,
                        Token::Any => !is_sep(c),
                        Token::Class { negated, ranges } => {
                            let inside = ranges.iter().any(|(a, b)| *a <= c && c <= *b);
                            inside != *negated && !is_sep(c)
                        }
                        Token::Star | Token::SuperStar => false,
                    };
                    next[j + 1] = ok;
                }
            }
        }
        reach = next;
    }
    reach[value.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_argo_cd_does() {
        assert_eq!(glob("prod-*", "prod-us", None), Some(true));
        assert_eq!(glob("prod-*", "staging", None), Some(false));
        assert_eq!(glob("payments-?", "payments-1", None), Some(true));
        assert_eq!(glob("{dev,test}-*", "test-a", None), Some(true));
        assert_eq!(glob("[a-c]x", "bx", None), Some(true));
        assert_eq!(glob("[!a-c]x", "bx", None), Some(false));
        assert_eq!(
            glob(
                "https://github.com/org/*",
                "https://github.com/org/repo",
                Some('/')
            ),
            Some(true)
        );
        assert_eq!(
            glob(
                "https://github.com/org/*",
                "https://github.com/org/a/b",
                Some('/')
            ),
            Some(false)
        );
        assert_eq!(
            glob(
                "https://github.com/**",
                "https://github.com/org/a/b",
                Some('/')
            ),
            Some(true)
        );
        assert_eq!(glob("", "x", None), Some(false));
        assert_eq!(glob("", "", None), Some(true));
        // Hostile patterns are not judged, and do not recurse deeply.
        assert_eq!(glob(&"{a}".repeat(100_000), "a", None), None);
        assert_eq!(glob(&"{a,b}".repeat(7), "a", None), None);
        assert_eq!(glob(&"[".repeat(5000), "a", None), None);
    }

    #[test]
    fn git_urls_normalise() {
        assert_eq!(
            normalize_git_url("git@GitHub.com:Org/Repo.git"),
            "git@github.com/org/repo"
        );
        assert_eq!(
            normalize_git_url("https://github.com/org/repo.git"),
            "https://github.com/org/repo"
        );
    }
}
