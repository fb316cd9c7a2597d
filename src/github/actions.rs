//! The GitHub Actions side of a run: the environment the runner sets, the `pull_request`
//! event payload, the base revision to compare with, and the step's output files.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

/// The API of github.com; GitHub Enterprise sets its own `GITHUB_API_URL`.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
pub const DEFAULT_SERVER_URL: &str = "https://github.com";
/// Who the comments are by when the token may not ask (`GET /user` refuses installation
/// tokens such as the workflow's `GITHUB_TOKEN`).
pub const DEFAULT_BOT_LOGIN: &str = "github-actions[bot]";

/// A token that never shows in `Debug` output, logs or error messages.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(token: String) -> Self {
        Token(token)
    }

    /// The secret itself: only for the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the token can go into an HTTP header as is: visible ASCII only (GitHub's
    /// tokens are letters, digits and `_`). A control character would make the HTTP
    /// client panic; a space or a non-ASCII letter is a pasting mistake.
    pub fn is_header_safe(&self) -> bool {
        !self.0.is_empty() && self.0.bytes().all(|b| b.is_ascii_graphic())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// The variables the Actions runner sets (any CI can set the same ones).
#[derive(Debug, Clone, Default)]
pub struct ActionsEnv {
    pub event_path: Option<PathBuf>,
    pub event_name: Option<String>,
    /// `owner/name`.
    pub repository: Option<String>,
    pub api_url: String,
    pub token: Option<Token>,
    pub step_summary: Option<PathBuf>,
    pub workspace: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub server_url: String,
    pub run_id: Option<String>,
    /// `GITHUB_SHA`: the commit of a push; a pull request's head is in its event.
    pub sha: Option<String>,
    /// `ENVFENCE_BOT_LOGIN`: whose comments are ours when `GET /user` is refused.
    pub bot_login: Option<String>,
    /// Test knob `ENVFENCE_GITHUB_RETRY_BASE_MS`: the first retry delay, so the tests of
    /// retries need not wait seconds. Not documented for users.
    pub retry_base: Option<Duration>,
    /// `ENVFENCE_GITHUB_TIMEOUT` (seconds): the deadline of all the API work of a run.
    pub run_timeout: Option<Duration>,
    /// Test knob `ENVFENCE_GITHUB_REQUEST_TIMEOUT_MS`: the deadline of one request, so the
    /// tests of a server that never finishes need not wait 30 s. Not documented for users.
    pub request_timeout: Option<Duration>,
}

impl ActionsEnv {
    pub fn from_env() -> Self {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads the variables through `get`; an empty value counts as unset, as the runner
    /// passes unset inputs as empty strings.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let var = |key: &str| get(key).filter(|v| !v.trim().is_empty());
        ActionsEnv {
            event_path: var("GITHUB_EVENT_PATH").map(PathBuf::from),
            event_name: var("GITHUB_EVENT_NAME"),
            repository: var("GITHUB_REPOSITORY"),
            api_url: var("GITHUB_API_URL").unwrap_or_else(|| DEFAULT_API_URL.to_owned()),
            token: var("GITHUB_TOKEN").map(|t| Token::new(t.trim().to_owned())),
            step_summary: var("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            workspace: var("GITHUB_WORKSPACE").map(PathBuf::from),
            output: var("GITHUB_OUTPUT").map(PathBuf::from),
            server_url: var("GITHUB_SERVER_URL").unwrap_or_else(|| DEFAULT_SERVER_URL.to_owned()),
            run_id: var("GITHUB_RUN_ID"),
            sha: var("GITHUB_SHA"),
            bot_login: var("ENVFENCE_BOT_LOGIN"),
            retry_base: var("ENVFENCE_GITHUB_RETRY_BASE_MS")
                .and_then(|ms| ms.trim().parse().ok())
                .map(Duration::from_millis),
            run_timeout: var("ENVFENCE_GITHUB_TIMEOUT")
                .and_then(|s| s.trim().parse::<f64>().ok())
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .filter(|d| !d.is_zero()),
            request_timeout: var("ENVFENCE_GITHUB_REQUEST_TIMEOUT_MS")
                .and_then(|ms| ms.trim().parse().ok())
                .map(Duration::from_millis)
                .filter(|d| !d.is_zero()),
        }
    }

    /// The workflow run's page, where the full report (summary, annotations, the HTML report
    /// artifact) is; none unless the run id is digits, the repository `owner/name` and the
    /// server an https URL that cannot break out of a Markdown link or an HTML attribute.
    pub fn run_url(&self) -> Option<String> {
        let repository = self.repository.as_deref().filter(|r| valid_repository(r))?;
        let run_id = self.run_id.as_deref().filter(|id| {
            !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit())
        })?;
        let server = self.server_url.trim_end_matches('/');
        let safe = server.len() > "https://".len()
            && server.starts_with("https://")
            && server.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.' | '-' | '_' | '~' | '%')
            });
        safe.then(|| format!("{server}/{repository}/actions/runs/{run_id}"))
    }
}

impl ActionsEnv {
    /// `<server>/<owner>/<name>/blob/<commit>`, the prefix of a link to a file at `commit`;
    /// none unless the repository is `owner/name`, the commit a hex id, and the server an
    /// http(s) URL that cannot break out of a Markdown link or an HTML attribute.
    pub fn blob_url(&self, commit: Option<&str>) -> Option<String> {
        let repository = self.repository.as_deref().filter(|r| valid_repository(r))?;
        let commit = commit.filter(|c| {
            !c.is_empty() && c.len() <= 64 && c.chars().all(|c| c.is_ascii_hexdigit())
        })?;
        let server = self.server_url.trim_end_matches('/');
        let safe = (server.starts_with("https://") || server.starts_with("http://"))
            && server.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.' | '-' | '_' | '~' | '%')
            });
        safe.then(|| format!("{server}/{repository}/blob/{commit}"))
    }
}

/// What the bot needs of a `pull_request` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub number: u64,
    pub base_sha: String,
    pub head_sha: String,
    /// `repository.full_name` of the payload, for when `GITHUB_REPOSITORY` is unset.
    pub repository: Option<String>,
}

/// Events whose payload carries a pull request.
const PULL_REQUEST_EVENTS: &[&str] = &["pull_request", "pull_request_target"];

/// The pull request of this run, or `None` for other events (push, workflow_dispatch, ...).
pub fn pull_request(env: &ActionsEnv) -> anyhow::Result<Option<PullRequest>> {
    if let Some(name) = &env.event_name {
        if !PULL_REQUEST_EVENTS.contains(&name.as_str()) {
            return Ok(None);
        }
    }
    let Some(path) = &env.event_path else {
        if env.event_name.is_some() {
            anyhow::bail!("GITHUB_EVENT_PATH is not set for a pull_request event");
        }
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the event payload {}", path.display()))?;
    let payload: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("the event payload {} is not JSON", path.display()))?;
    let Some(pr) = payload.get("pull_request").filter(|v| v.is_object()) else {
        if env.event_name.is_some() {
            anyhow::bail!(
                "the event payload {} has no pull_request object",
                path.display()
            );
        }
        return Ok(None);
    };
    let number = pr
        .get("number")
        .or_else(|| payload.get("number"))
        .and_then(serde_json::Value::as_u64)
        .context("the event payload has no pull request number")?;
    let sha = |side: &str| -> anyhow::Result<String> {
        let sha = pr
            .pointer(&format!("/{side}/sha"))
            .and_then(serde_json::Value::as_str)
            .with_context(|| format!("the event payload has no pull_request.{side}.sha"))?;
        anyhow::ensure!(
            !sha.is_empty() && sha.len() <= 64 && sha.chars().all(|c| c.is_ascii_hexdigit()),
            "pull_request.{side}.sha in the event payload is not a commit id"
        );
        Ok(sha.to_ascii_lowercase())
    };
    Ok(Some(PullRequest {
        number,
        base_sha: sha("base")?,
        head_sha: sha("head")?,
        repository: payload
            .pointer("/repository/full_name")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
    }))
}

/// The revision to compare the working tree with. Usually the PR's base commit; but when
/// the checkout is the merge commit GitHub made of the PR (the default `actions/checkout` of
/// `refs/pull/N/merge`), its first parent: the base branch as the merge saw it, which may be
/// newer than `pull_request.base.sha`.
pub fn base_revision(workdir: &Path, pr: &PullRequest) -> String {
    merge_base_parent(workdir, &pr.head_sha).unwrap_or_else(|| pr.base_sha.clone())
}

fn merge_base_parent(workdir: &Path, head_sha: &str) -> Option<String> {
    let repo = git2::Repository::discover(workdir).ok()?;
    let head = repo.head().ok()?.peel_to_commit().ok()?;
    // Parent ids are in the commit itself: this works in a shallow clone too.
    if head.parent_count() != 2 {
        return None;
    }
    let second = head.parent_id(1).ok()?.to_string();
    if !second.eq_ignore_ascii_case(head_sha) {
        return None;
    }
    Some(head.parent_id(0).ok()?.to_string())
}

/// Checks `owner/name`, which goes into API paths.
pub fn valid_repository(repository: &str) -> bool {
    let ok = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    matches!(repository.split_once('/'), Some((owner, name)) if ok(owner) && ok(name))
}

/// Appends `name=value` lines to the `GITHUB_OUTPUT` file. Values are single-line: a line
/// break would let a value forge another output.
pub fn append_outputs(path: &Path, outputs: &[(&str, &str)]) -> anyhow::Result<()> {
    let mut text = String::new();
    for (name, value) in outputs {
        let value: String = value
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .collect();
        text.push_str(&format!("{name}={value}\n"));
    }
    append(path, &text)
}

/// Appends Markdown to the job summary (`GITHUB_STEP_SUMMARY`).
pub fn append_summary(path: &Path, markdown: &str) -> anyhow::Result<()> {
    append(path, markdown)
}

fn append(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut file = crate::files::open_for_writing(path, crate::files::WriteMode::Append)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> ActionsEnv {
        ActionsEnv::from_lookup(|key| {
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_and_run_url() {
        let e = env(&[
            ("GITHUB_REPOSITORY", "acme/gitops"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_TOKEN", ""),
        ]);
        assert_eq!(e.api_url, DEFAULT_API_URL);
        assert!(e.token.is_none(), "an empty token is no token");
        assert_eq!(
            e.run_url().as_deref(),
            Some("https://github.com/acme/gitops/actions/runs/42")
        );
    }

    #[test]
    fn the_run_url_needs_digits_and_an_https_server() {
        let with = |server: &str, run: &str| {
            env(&[
                ("GITHUB_REPOSITORY", "acme/gitops"),
                ("GITHUB_SERVER_URL", server),
                ("GITHUB_RUN_ID", run),
            ])
            .run_url()
        };
        assert_eq!(
            with("https://git.acme.example/", "7").as_deref(),
            Some("https://git.acme.example/acme/gitops/actions/runs/7")
        );
        for (server, run) in [
            ("https://github.com", "7; rm"),
            ("https://github.com", "../1"),
            ("http://github.com", "7"),
            ("javascript:alert(1)", "7"),
            ("https://x\"><b>", "7"),
            ("https://x/a)b", "7"),
        ] {
            assert!(with(server, run).is_none(), "{server} {run}");
        }
        let bad_repo = env(&[("GITHUB_REPOSITORY", "acme/../x"), ("GITHUB_RUN_ID", "7")]);
        assert!(bad_repo.run_url().is_none());
        assert!(env(&[("GITHUB_REPOSITORY", "acme/gitops")])
            .run_url()
            .is_none());
    }

    #[test]
    fn links_need_a_safe_server_a_repository_and_a_commit() {
        let e = env(&[
            ("GITHUB_REPOSITORY", "acme/gitops"),
            ("GITHUB_SERVER_URL", "https://git.acme.example/"),
        ]);
        assert_eq!(
            e.blob_url(Some("abc123")).as_deref(),
            Some("https://git.acme.example/acme/gitops/blob/abc123")
        );
        assert!(e.blob_url(Some("main; x")).is_none(), "not a commit id");
        assert!(e.blob_url(None).is_none());
        for server in ["javascript:alert(1)", "https://x\"><b>", "https://x/a)b"] {
            let e = env(&[
                ("GITHUB_REPOSITORY", "acme/gitops"),
                ("GITHUB_SERVER_URL", server),
            ]);
            assert!(e.blob_url(Some("abc")).is_none(), "{server}");
        }
        let e = env(&[("GITHUB_REPOSITORY", "acme/../x")]);
        assert!(e.blob_url(Some("abc")).is_none());
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let e = env(&[("GITHUB_TOKEN", "ghs_secret")]);
        assert!(!format!("{e:?}").contains("ghs_secret"));
    }

    #[test]
    fn repository_names_are_checked() {
        assert!(valid_repository("acme/git-ops.io"));
        assert!(!valid_repository("acme"));
        assert!(!valid_repository("acme/../x"));
        assert!(!valid_repository("acme/x?y"));
        assert!(!valid_repository("../x"));
    }

    #[test]
    fn pull_request_payloads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("event.json");
        std::fs::write(
            &path,
            r#"{"number":7,"pull_request":{"number":7,"base":{"sha":"AAAA"},"head":{"sha":"bbbb"}},"repository":{"full_name":"acme/gitops"}}"#,
        )
        .expect("write");
        let p = path.to_string_lossy().into_owned();
        let pr = pull_request(&env(&[
            ("GITHUB_EVENT_NAME", "pull_request"),
            ("GITHUB_EVENT_PATH", &p),
        ]))
        .expect("parses")
        .expect("a pull request");
        assert_eq!(pr.number, 7);
        assert_eq!(pr.base_sha, "aaaa");
        assert_eq!(pr.repository.as_deref(), Some("acme/gitops"));
        let push = pull_request(&env(&[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_EVENT_PATH", &p),
        ]))
        .expect("parses");
        assert!(push.is_none());
        std::fs::write(
            &path,
            r#"{"pull_request":{"number":7,"base":{"sha":"x;rm"},"head":{"sha":"b"}}}"#,
        )
        .expect("write");
        assert!(pull_request(&env(&[
            ("GITHUB_EVENT_NAME", "pull_request"),
            ("GITHUB_EVENT_PATH", &p),
        ]))
        .is_err());
    }

    #[test]
    fn outputs_cannot_forge_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out");
        append_outputs(&path, &[("a", "1\nb=2"), ("c", "")]).expect("writes");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "a=1 b=2\nc=\n"
        );
    }
}
