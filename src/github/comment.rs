//! The one pull-request comment: find it, then create, update, resolve or leave it.
//!
//! Ours is the first comment that carries [`MARKER`] and was written by the bot's own login;
//! a marked comment by anyone else is never touched. A create that fails without a clear
//! answer (server error, lost connection) may still have been carried out, so the comments
//! are listed again before any second try: the bot never leaves two comments.

use crate::findings::Status;
use crate::output::markdown::{self, CommentOptions, MARKER};
use crate::scan::ScanReport;

use super::actions::{Token, DEFAULT_BOT_LOGIN};
use super::api::{Api, ApiError, Comment};
use super::retry::RetryPolicy;

/// GitHub refuses comment bodies over 65,536 characters; this leaves room for its counting.
pub const MAX_BODY: usize = 65_000;
/// Tries to create the comment, each after listing the comments again.
const CREATE_ATTEMPTS: u32 = 3;

/// `--comment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CommentMode {
    /// Comment when the pull request introduces findings; keep an existing comment current.
    Auto,
    /// Comment on every pull request, clean ones too.
    Always,
    /// Never write to the API.
    Never,
}

/// What to publish, and where.
#[derive(Debug)]
pub struct Publish<'a> {
    pub api_url: &'a str,
    pub token: &'a Token,
    /// `owner/name`, checked by the caller.
    pub repository: &'a str,
    pub number: u64,
    pub mode: CommentMode,
    /// Whose marked comments are ours when `GET /user` is refused.
    pub fallback_login: Option<&'a str>,
    /// The workflow run, for the note on left-out findings.
    pub run_url: Option<&'a str>,
    /// Where locations link to: `<server>/<repo>/blob/<head commit>`.
    pub blob_url: Option<&'a str>,
    /// The run's page, when the HTML report was written for the run to keep.
    pub report_url: Option<&'a str>,
    pub policy: RetryPolicy,
}

/// What happened to the comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Created,
    Updated,
    /// Our comment already said exactly this.
    Unchanged,
    /// A clean pull request that never had a comment (`--comment auto`).
    NotNeeded,
    /// The API refused or failed; the warnings say why.
    Failed,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub action: Action,
    /// The comment's page, when there is one.
    pub url: Option<String>,
    /// The body says **Resolved**: the job summary should agree.
    pub resolved: bool,
    /// One line each, for standard error.
    pub warnings: Vec<String>,
}

impl Outcome {
    fn failed(what: &str, error: &ApiError) -> Outcome {
        Outcome {
            action: Action::Failed,
            url: None,
            resolved: false,
            warnings: vec![format!(
                "cannot {what} ({error}); the findings are in the annotations and the job summary"
            )],
        }
    }
}

/// New, unsuppressed findings: what a pull request introduces.
pub fn new_findings(report: &ScanReport) -> usize {
    report
        .findings
        .iter()
        .filter(|f| !f.suppressed && f.status == Status::New)
        .count()
}

/// Publishes the report as the pull request's comment. Runs its own single-threaded
/// runtime; never fails, the outcome carries warnings instead.
pub fn publish(report: &ScanReport, request: &Publish) -> Outcome {
    if request.mode == CommentMode::Never {
        return Outcome {
            action: Action::NotNeeded,
            url: None,
            resolved: false,
            warnings: Vec::new(),
        };
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return Outcome::failed("start the HTTP client", &ApiError::Transport(e.to_string()))
        }
    };
    // A backstop: every request and wait already stops at the deadline.
    let limit = request.policy.run_timeout + std::time::Duration::from_secs(1);
    runtime.block_on(async {
        tokio::time::timeout(limit, publish_async(report, request))
            .await
            .unwrap_or_else(|_| {
                Outcome::failed(
                    "finish with the pull-request comment",
                    &ApiError::Transport(format!(
                        "the run's GitHub API deadline ({} s) has passed",
                        request.policy.run_timeout.as_secs_f64()
                    )),
                )
            })
    })
}

async fn publish_async(report: &ScanReport, request: &Publish<'_>) -> Outcome {
    let api = match Api::new(
        request.api_url,
        request.token,
        request.repository,
        request.policy.clone(),
    ) {
        Ok(api) => api,
        Err(e) => return Outcome::failed("reach the GitHub API", &e),
    };
    // An installation token (the workflow's GITHUB_TOKEN) may not read /user: refused
    // with 401 or 403, the login is the configured one, or the Actions bot's. Any other
    // failure leaves the login unknown, and a comment of another identity could pass for
    // ours: then nothing is created or edited.
    let login = match api.login().await {
        Ok(login) => login,
        Err(ApiError::Http {
            status: 401 | 403,
            transient: None,
            ..
        }) => request
            .fallback_login
            .unwrap_or(DEFAULT_BOT_LOGIN)
            .to_owned(),
        Err(e) => {
            let mut outcome = Outcome::failed("tell which login the token acts as", &e);
            outcome.warnings = vec![format!(
                "cannot tell which login the token acts as (GET /user: {e}): no pull-request comment was created or edited; the findings are in the annotations and the job summary"
            )];
            return outcome;
        }
    };
    let comments = match api.comments(request.number).await {
        Ok(c) => c,
        Err(e) => return Outcome::failed("read the pull request's comments", &e),
    };
    let ours = find_ours(&comments, &login).cloned();

    let new = new_findings(report);
    let resolved = new == 0
        && ours
            .as_ref()
            .is_some_and(|c| !markdown::is_clean_from_the_start(&c.body));
    if new == 0 && ours.is_none() && request.mode == CommentMode::Auto {
        return Outcome {
            action: Action::NotNeeded,
            url: None,
            resolved: false,
            warnings: Vec::new(),
        };
    }
    let options = CommentOptions {
        resolved,
        max_len: Some(MAX_BODY),
        run_url: request.run_url,
        blob_url: request.blob_url,
        report_url: request.report_url,
    };
    let body = markdown::render_comment(report, &options);
    let minimal = markdown::render_minimal(report, &options);
    let mut outcome = match ours {
        Some(existing) => update(&api, &existing, &body, &minimal).await,
        None => create(&api, request.number, &login, &body, &minimal).await,
    };
    outcome.resolved = resolved;
    outcome
}

/// The first comment with the marker by `login` (logins are case-insensitive).
fn find_ours<'c>(comments: &'c [Comment], login: &str) -> Option<&'c Comment> {
    comments
        .iter()
        .find(|c| c.body.contains(MARKER) && c.author.eq_ignore_ascii_case(login))
}

/// Bodies as GitHub may give them back (line ends normalised, trailing space trimmed).
fn same_body(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.replace("\r\n", "\n").trim_end().to_owned();
    norm(a) == norm(b)
}

async fn update(api: &Api, existing: &Comment, body: &str, minimal: &str) -> Outcome {
    // A minimal body already there stands for this report: GitHub refused the full one
    // before, and would again.
    if same_body(&existing.body, body) || (body != minimal && same_body(&existing.body, minimal)) {
        return Outcome {
            action: Action::Unchanged,
            url: Some(existing.html_url.clone()),
            resolved: false,
            warnings: Vec::new(),
        };
    }
    let result = match api.update(existing.id, body).await {
        Err(ApiError::Http { status: 422, .. }) => api.update(existing.id, minimal).await,
        other => other,
    };
    match result {
        Ok(c) => Outcome {
            action: Action::Updated,
            url: Some(non_empty_or(c.html_url, &existing.html_url)),
            resolved: false,
            warnings: Vec::new(),
        },
        Err(e) => Outcome::failed("update the pull-request comment", &e),
    }
}

async fn create(api: &Api, number: u64, login: &str, body: &str, minimal: &str) -> Outcome {
    let mut body = body;
    let mut last_error = None;
    for attempt in 0..CREATE_ATTEMPTS {
        match api.create(number, body).await {
            Ok(c) => {
                return Outcome {
                    action: Action::Created,
                    url: Some(c.html_url),
                    resolved: false,
                    warnings: Vec::new(),
                }
            }
            // Too long after all: once more, with the smallest body.
            Err(ApiError::Http { status: 422, .. }) if body != minimal => body = minimal,
            Err(e) if e.outcome_unknown() => {
                if api.pause(api.policy().delay(attempt, None)).await.is_err() {
                    return Outcome::failed("post the pull-request comment", &e);
                }
                // Did the failed create land? Then that comment is ours to update. When the
                // list cannot tell, another create could make a second comment: stop.
                let comments = match api.comments(number).await {
                    Ok(comments) => comments,
                    Err(_) => return Outcome::failed("post the pull-request comment", &e),
                };
                if let Some(existing) = find_ours(&comments, login) {
                    let existing = existing.clone();
                    let mut outcome = update(api, &existing, body, minimal).await;
                    if outcome.action == Action::Unchanged {
                        outcome.action = Action::Created;
                    }
                    return outcome;
                }
                last_error = Some(e);
            }
            Err(e) => return Outcome::failed("post the pull-request comment", &e),
        }
    }
    match last_error {
        Some(e) => Outcome::failed("post the pull-request comment", &e),
        None => Outcome::failed(
            "post the pull-request comment",
            &ApiError::Transport("GitHub refused every body".to_owned()),
        ),
    }
}

fn non_empty_or(url: String, fallback: &str) -> String {
    if url.is_empty() {
        fallback.to_owned()
    } else {
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comment(id: u64, author: &str, body: &str) -> Comment {
        Comment {
            id,
            html_url: format!("https://github.test/c/{id}"),
            body: body.to_owned(),
            author: author.to_owned(),
        }
    }

    #[test]
    fn ours_is_marked_and_by_the_bot() {
        let marked = format!("{MARKER}\nreport");
        let comments = vec![
            comment(1, "mallory", &marked),
            comment(2, "github-actions[bot]", "no marker"),
            comment(3, "GitHub-Actions[bot]", &marked),
            comment(4, "github-actions[bot]", &marked),
        ];
        assert_eq!(
            find_ours(&comments, "github-actions[bot]").map(|c| c.id),
            Some(3)
        );
        assert!(find_ours(&comments[..2], "github-actions[bot]").is_none());
    }

    #[test]
    fn bodies_compare_as_github_returns_them() {
        assert!(same_body("a\r\nb\n", "a\nb"));
        assert!(!same_body("a", "b"));
    }
}
