//! Which API failures are worth another try, and how long to wait first.
//!
//! GitHub answers 429, or 403 with a "secondary rate limit" message, a `retry-after` header
//! or `x-ratelimit-remaining: 0`, when a client goes too fast; 5xx when it has a bad moment.
//! Both pass. Other 4xx answers are final.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

/// One request, from connecting to the last byte of its answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// All the API work of one run: every request, retry and wait.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// How many times, and how patiently, to try a request.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The first wait; each later one doubles.
    pub base: Duration,
    /// No wait is longer, whatever `retry-after` asks for: a CI job should not hang.
    pub max_delay: Duration,
    /// The deadline of one try, whole answer included.
    pub request_timeout: Duration,
    /// The deadline of all the API calls of a run; no try or wait goes past it.
    pub run_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            request_timeout: REQUEST_TIMEOUT,
            run_timeout: RUN_TIMEOUT,
        }
    }
}

impl RetryPolicy {
    /// The wait before try number `retry + 2`: the server's hint when it gave one, else
    /// exponential backoff; capped either way.
    pub fn delay(&self, retry: u32, hint: Option<Duration>) -> Duration {
        let backoff = self.base.saturating_mul(2u32.saturating_pow(retry.min(16)));
        hint.unwrap_or(backoff).min(self.max_delay)
    }
}

/// Why an answer may succeed on another try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transient {
    /// Rate limited: the request was refused unread, so even a POST can be sent again.
    RateLimited(Option<Duration>),
    /// A server error: a POST may have been carried out all the same.
    ServerError(Option<Duration>),
}

/// Classifies an HTTP answer; `None` for success and for final failures.
pub fn classify(status: u16, headers: &HeaderMap, message: &str) -> Option<Transient> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let retry_after = header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let exhausted = header("x-ratelimit-remaining").is_some_and(|v| v.trim() == "0");
    match status {
        429 => Some(Transient::RateLimited(
            retry_after.or_else(|| reset_in(headers)),
        )),
        403 if retry_after.is_some()
            || exhausted
            || message
                .to_ascii_lowercase()
                .contains("secondary rate limit") =>
        {
            Some(Transient::RateLimited(
                retry_after.or_else(|| exhausted.then(|| reset_in(headers)).flatten()),
            ))
        }
        500..=599 => Some(Transient::ServerError(retry_after)),
        _ => None,
    }
}

/// The time until `x-ratelimit-reset` (epoch seconds), when the primary limit is used up.
fn reset_in(headers: &HeaderMap) -> Option<Duration> {
    let reset: u64 = headers
        .get("x-ratelimit-reset")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now).max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn rate_limits_and_server_errors_are_transient() {
        let none = HeaderMap::new();
        assert_eq!(
            classify(429, &headers(&[("retry-after", "3")]), ""),
            Some(Transient::RateLimited(Some(Duration::from_secs(3))))
        );
        assert_eq!(
            classify(403, &none, "You have exceeded a secondary rate limit."),
            Some(Transient::RateLimited(None))
        );
        assert!(matches!(
            classify(403, &headers(&[("x-ratelimit-remaining", "0")]), ""),
            Some(Transient::RateLimited(_))
        ));
        assert_eq!(classify(502, &none, ""), Some(Transient::ServerError(None)));
        assert_eq!(
            classify(403, &none, "Resource not accessible by integration"),
            None
        );
        assert_eq!(classify(422, &none, ""), None);
        assert_eq!(classify(200, &none, ""), None);
    }

    #[test]
    fn delays_double_and_are_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(0, None), Duration::from_secs(1));
        assert_eq!(p.delay(2, None), Duration::from_secs(4));
        assert_eq!(p.delay(30, None), p.max_delay);
        assert_eq!(p.delay(0, Some(Duration::from_secs(3600))), p.max_delay);
        assert_eq!(
            p.delay(3, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
    }
}
