//! The few REST calls the bot makes, over octocrab's raw requests so that status codes and
//! headers (rate limits, pagination) stay visible. Paths are always relative to the API base
//! URL: octocrab then sends the token to that host and nowhere else.

use std::fmt;
use std::time::Duration;

use http::{HeaderMap, Method};
use http_body_util::BodyExt as _;
use octocrab::Octocrab;
use serde::Deserialize;
use tokio::time::Instant;

use super::actions::Token;
use super::retry::{classify, RetryPolicy, Transient};

/// Comments per page, GitHub's maximum.
const PER_PAGE: u32 = 100;
/// Pages of comments read at most (10,000 comments): a bound on a misbehaving server.
const MAX_PAGES: usize = 100;
/// The largest answer read (a page of 100 comments of 65,536 characters is under 7 MiB).
pub const MAX_RESPONSE_BYTES: usize = 10 * 1024 * 1024;

/// A failed call. Messages hold the status and GitHub's own message, never a header.
#[derive(Debug, Clone)]
pub enum ApiError {
    Http {
        status: u16,
        message: String,
        transient: Option<Transient>,
    },
    /// No answer at all: connection, TLS, timeout.
    Transport(String),
    /// An answer that cannot be GitHub's: too large, or not the JSON asked for. Not retried.
    Invalid(String),
}

impl ApiError {
    /// A server error or no answer: a POST may have been carried out anyway.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            ApiError::Transport(_)
                | ApiError::Invalid(_)
                | ApiError::Http {
                    transient: Some(Transient::ServerError(_)),
                    ..
                }
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Http {
                status, message, ..
            } if message.is_empty() => write!(f, "HTTP {status}"),
            ApiError::Http {
                status, message, ..
            } => write!(f, "HTTP {status}: {message}"),
            ApiError::Transport(cause) => write!(f, "no answer from the GitHub API: {cause}"),
            ApiError::Invalid(cause) => write!(f, "unexpected answer from the GitHub API: {cause}"),
        }
    }
}

/// An issue comment, as much of it as the bot reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: u64,
    pub html_url: String,
    pub body: String,
    pub author: String,
}

#[derive(Deserialize)]
struct RawComment {
    id: u64,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    user: Option<RawUser>,
}

#[derive(Deserialize)]
struct RawUser {
    login: String,
}

impl From<RawComment> for Comment {
    fn from(raw: RawComment) -> Self {
        Comment {
            id: raw.id,
            html_url: raw.html_url.unwrap_or_default(),
            body: raw.body.unwrap_or_default(),
            author: raw.user.map(|u| u.login).unwrap_or_default(),
        }
    }
}

struct Reply {
    headers: HeaderMap,
    body: String,
}

/// A client for one repository.
pub struct Api {
    client: Octocrab,
    repository: String,
    policy: RetryPolicy,
    /// When the run's API work must be over: no request or retry goes past it.
    deadline: Instant,
}

impl Api {
    /// Builds the client. Must run inside a Tokio runtime. `repository` is `owner/name`,
    /// already checked.
    pub fn new(
        api_url: &str,
        token: &Token,
        repository: &str,
        policy: RetryPolicy,
    ) -> Result<Api, ApiError> {
        // octocrab's header builder panics on a token it cannot send.
        if !token.is_header_safe() {
            return Err(ApiError::Invalid(
                "GITHUB_TOKEN holds a character that cannot be sent in an HTTP header".to_owned(),
            ));
        }
        let deadline = Instant::now() + policy.run_timeout;
        let client = Octocrab::builder()
            .base_uri(api_url)
            .map_err(|_| ApiError::Transport(format!("GITHUB_API_URL `{api_url}` is not a URL")))?
            .personal_token(token.expose().to_owned())
            .add_header(
                http::header::ACCEPT,
                "application/vnd.github+json".to_owned(),
            )
            // Per connect and per read; the whole answer's deadline is in `send`.
            .set_connect_timeout(Some(policy.request_timeout.min(Duration::from_secs(15))))
            .set_read_timeout(Some(policy.request_timeout))
            .build()
            .map_err(|e| ApiError::Transport(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Api {
            client,
            repository: repository.to_owned(),
            policy,
            deadline,
        })
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The login the token acts as (`GET /user`).
    pub async fn login(&self) -> Result<String, ApiError> {
        let reply = self.send(&Method::GET, "/user", None, true).await?;
        #[derive(Deserialize)]
        struct User {
            login: String,
        }
        serde_json::from_str::<User>(&reply.body)
            .map(|u| u.login)
            .map_err(|e| ApiError::Invalid(format!("GET /user: {e}")))
    }

    /// Every comment of issue or pull request `number`, following `Link: rel="next"`.
    pub async fn comments(&self, number: u64) -> Result<Vec<Comment>, ApiError> {
        let mut path = format!(
            "/repos/{}/issues/{number}/comments?per_page={PER_PAGE}",
            self.repository
        );
        let mut all = Vec::new();
        for _ in 0..MAX_PAGES {
            let reply = self.send(&Method::GET, &path, None, true).await?;
            let page: Vec<RawComment> = serde_json::from_str(&reply.body)
                .map_err(|e| ApiError::Invalid(format!("listing comments: {e}")))?;
            all.extend(page.into_iter().map(Comment::from));
            match next_page(&reply.headers) {
                Some(next) => path = next,
                None => break,
            }
        }
        Ok(all)
    }

    /// Posts a new comment. Not retried on server errors: the caller lists the comments
    /// first, in case the first try was carried out.
    pub async fn create(&self, number: u64, body: &str) -> Result<Comment, ApiError> {
        let path = format!("/repos/{}/issues/{number}/comments", self.repository);
        let payload = serde_json::json!({ "body": body });
        let reply = self
            .send(&Method::POST, &path, Some(&payload), false)
            .await?;
        parse_comment(&reply.body)
    }

    /// Replaces a comment's body (idempotent, so retried like a read).
    pub async fn update(&self, id: u64, body: &str) -> Result<Comment, ApiError> {
        let path = format!("/repos/{}/issues/comments/{id}", self.repository);
        let payload = serde_json::json!({ "body": body });
        let reply = self
            .send(&Method::PATCH, &path, Some(&payload), true)
            .await?;
        parse_comment(&reply.body)
    }

    /// Sends a request, trying again on rate limits and (for `idempotent` ones) on server
    /// errors and lost connections. Each try has the request deadline for its whole answer
    /// (a server that trickles a byte at a time passes every read timeout); no try and no
    /// wait goes past the run's deadline.
    async fn send(
        &self,
        method: &Method,
        path: &str,
        payload: Option<&serde_json::Value>,
        idempotent: bool,
    ) -> Result<Reply, ApiError> {
        let mut retry = 0;
        loop {
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(self.out_of_time());
            }
            let limit = self.policy.request_timeout.min(remaining);
            let result = tokio::time::timeout(limit, self.send_once(method, path, payload))
                .await
                .unwrap_or_else(|_| {
                    let which = if limit < self.policy.request_timeout {
                        format!(
                            "before the run's GitHub API deadline ({})",
                            seconds(self.policy.run_timeout)
                        )
                    } else {
                        format!("within {}", seconds(limit))
                    };
                    Err(ApiError::Transport(format!(
                        "{method} {}: no complete answer {which}",
                        path.split('?').next().unwrap_or(path),
                    )))
                });
            let hint = match &result {
                Ok(_) => return result,
                Err(ApiError::Http {
                    transient: Some(Transient::RateLimited(hint)),
                    ..
                }) => *hint,
                Err(ApiError::Http {
                    transient: Some(Transient::ServerError(hint)),
                    ..
                }) if idempotent => *hint,
                Err(ApiError::Transport(_)) if idempotent => None,
                Err(_) => return result,
            };
            let delay = self.policy.delay(retry, hint);
            if retry + 1 >= self.policy.attempts || Instant::now() + delay >= self.deadline {
                return result;
            }
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }

    /// Waits `delay` unless that would end past the run's deadline.
    pub async fn pause(&self, delay: Duration) -> Result<(), ApiError> {
        if Instant::now() + delay >= self.deadline {
            return Err(self.out_of_time());
        }
        tokio::time::sleep(delay).await;
        Ok(())
    }

    fn out_of_time(&self) -> ApiError {
        ApiError::Transport(format!(
            "the run's GitHub API deadline ({}) has passed",
            seconds(self.policy.run_timeout)
        ))
    }

    async fn send_once(
        &self,
        method: &Method,
        path: &str,
        payload: Option<&serde_json::Value>,
    ) -> Result<Reply, ApiError> {
        let response = match *method {
            Method::POST => self.client._post(path, payload).await,
            Method::PATCH => self.client._patch(path, payload).await,
            _ => self.client._get(path).await,
        }
        .map_err(|e| ApiError::Transport(transport_cause(&e)))?;
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        let headers = parts.headers;
        let declared = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let too_large = || {
            ApiError::Invalid(format!(
                "an answer over the {MAX_RESPONSE_BYTES}-byte cap (HTTP {status})"
            ))
        };
        if declared.is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
            return Err(too_large());
        }
        let bytes = match http_body_util::Limited::new(body, MAX_RESPONSE_BYTES)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
            Err(e) => return Err(ApiError::Transport(one_line(&error_chain(&*e), 300))),
        };
        let body = String::from_utf8_lossy(&bytes).into_owned();
        if (200..300).contains(&status) {
            return Ok(Reply { headers, body });
        }
        let message = github_message(&body);
        Err(ApiError::Http {
            status,
            transient: classify(status, &headers, &message),
            message,
        })
    }
}

/// `30 s`, `1.5 s`.
fn seconds(d: Duration) -> String {
    let text = format!("{:.1}", d.as_secs_f64());
    format!("{} s", text.strip_suffix(".0").unwrap_or(&text))
}

/// An error and its sources, on one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        cause.push_str(": ");
        cause.push_str(&s.to_string());
        source = s.source();
    }
    cause
}

/// octocrab's error, on one line, without its backtrace.
fn transport_cause(e: &octocrab::Error) -> String {
    one_line(&error_chain(e), 300)
}

fn parse_comment(body: &str) -> Result<Comment, ApiError> {
    serde_json::from_str::<RawComment>(body)
        .map(Comment::from)
        .map_err(|e| ApiError::Invalid(format!("about a comment: {e}")))
}

/// GitHub's `message` of an error answer, short and on one line.
fn github_message(body: &str) -> String {
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_default();
    one_line(&message, 200)
}

fn one_line(text: &str, max_chars: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match flat.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

/// The path and query of the `rel="next"` link, to request relative to the API base (so the
/// token never goes to a host named in a header).
fn next_page(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(http::header::LINK) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for link in value.split(',') {
            let mut parts = link.split(';');
            let url = parts.next()?.trim();
            let is_next = parts.any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            if !is_next {
                continue;
            }
            let url = url.strip_prefix('<')?.strip_suffix('>')?;
            let uri: http::Uri = url.parse().ok()?;
            return uri.path_and_query().map(|pq| pq.as_str().to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_become_relative_paths() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::LINK,
            http::HeaderValue::from_static(
                "<https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=2>; rel=\"next\", <https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=5>; rel=\"last\"",
            ),
        );
        assert_eq!(
            next_page(&h).as_deref(),
            Some("/repositories/1/issues/2/comments?per_page=100&page=2")
        );
        let mut last = HeaderMap::new();
        last.insert(
            http::header::LINK,
            http::HeaderValue::from_static("<https://x/y?page=1>; rel=\"prev\""),
        );
        assert_eq!(next_page(&last), None);
    }

    #[test]
    fn messages_are_one_short_line() {
        assert_eq!(
            github_message(r#"{"message":"Bad\ncredentials"}"#),
            "Bad credentials"
        );
        assert_eq!(github_message("<html>"), "");
        assert_eq!(one_line(&"x".repeat(10), 4), "xxxx…");
    }
}
