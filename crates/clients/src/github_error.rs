//! What a GitHub call can fail with, and the one reader of the `message` GitHub puts in an error
//! answer (and of the rate limit it may report). A leaf: both the API adapter and the App
//! authentication use it.

use std::time::Duration;

/// The longest pause a rate-limit answer is read as: GitHub's primary limits reset hourly.
pub const MAX_RATE_LIMIT_PAUSE: Duration = Duration::from_secs(3600);
/// The pause when GitHub reports a limit without saying until when: "wait at least one minute"
/// (GitHub's REST documentation, secondary rate limits).
pub const DEFAULT_RATE_LIMIT_PAUSE: Duration = Duration::from_secs(60);

/// A GitHub call that did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("GitHub did not answer in time")]
    Timeout,
    /// A primary or secondary rate limit; no call waits it out, the caller decides.
    #[error("GitHub rate-limited the request; retry after {} s", retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    #[error("could not reach GitHub: {0}")]
    Unreachable(String),
    /// A call this client does not make (the dry run's, a fake's); it names the call, as in
    /// "listing jobs". Rendered as it was when it was an `Unreachable`.
    #[error("could not reach GitHub: {0} is not supported by this client")]
    Unsupported(&'static str),
    /// `GITHUB_APP_PRIVATE_KEY` is not an RSA private key the App can sign with. Never holds the
    /// key. Rendered as it was when it was an `Unreachable`.
    #[error("could not reach GitHub: GITHUB_APP_PRIVATE_KEY is not usable: {0}")]
    BadKey(String),
    #[error("DRY_RUN is on: GitHub is not called")]
    DryRun,
}

impl GitHubError {
    /// A non-success answer as a typed error, with GitHub's `message` when it sent one.
    pub fn from_answer(status: http::StatusCode, body: &str) -> Self {
        Self::Status { status: status.as_u16(), message: answer_message(status, body) }
    }

    /// A non-success answer as a typed error: [`GitHubError::RateLimited`] when it reports a rate
    /// limit (see [`rate_limit_pause`]; `now_secs`: seconds since the epoch), else as
    /// [`GitHubError::from_answer`].
    pub fn from_response(status: http::StatusCode, headers: &http::HeaderMap, body: &str, now_secs: u64) -> Self {
        let message = answer_message(status, body);
        match rate_limit_pause(status, headers, &message, now_secs) {
            Some(retry_after) => Self::RateLimited { retry_after },
            None => Self::Status { status: status.as_u16(), message },
        }
    }
}

/// How long to wait when a non-success answer reports a rate limit, else `None`. A limit is a
/// 429; a 403 whose `x-ratelimit-remaining` is 0; a 403 with `Retry-After`; a 403 or 429 whose
/// `message` speaks of a "secondary rate limit". The pause is `Retry-After` (seconds) when
/// given, else `x-ratelimit-reset` (epoch seconds) minus `now_secs` when nothing remains, else
/// [`DEFAULT_RATE_LIMIT_PAUSE`]; never more than [`MAX_RATE_LIMIT_PAUSE`], at least a second.
pub fn rate_limit_pause(
    status: http::StatusCode,
    headers: &http::HeaderMap,
    message: &str,
    now_secs: u64,
) -> Option<Duration> {
    let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
    let retry_after = number("retry-after");
    let exhausted = number("x-ratelimit-remaining") == Some(0);
    let secondary = message.to_ascii_lowercase().contains("secondary rate limit");
    let limited = match status.as_u16() {
        429 => true,
        403 => exhausted || retry_after.is_some() || secondary,
        _ => false,
    };
    if !limited {
        return None;
    }
    let secs = match (retry_after, number("x-ratelimit-reset")) {
        (Some(secs), _) => secs,
        (None, Some(reset)) if exhausted => reset.saturating_sub(now_secs),
        _ => DEFAULT_RATE_LIMIT_PAUSE.as_secs(),
    };
    Some(Duration::from_secs(secs.clamp(1, MAX_RATE_LIMIT_PAUSE.as_secs())))
}

/// GitHub's `message` in the JSON body of an error answer (`{"message": "Not Found", …}`), else
/// the status line.
pub fn answer_message(status: http::StatusCode, body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(serde_json::Value::as_str).map(str::to_string))
        .unwrap_or_else(|| status.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_githubs_when_it_sent_one() {
        let not_found = http::StatusCode::NOT_FOUND;
        assert_eq!(
            GitHubError::from_answer(not_found, r#"{"message": "Not Found", "documentation_url": "x"}"#),
            GitHubError::Status { status: 404, message: "Not Found".into() }
        );
        assert_eq!(answer_message(not_found, "<html>"), "404 Not Found");
        assert_eq!(answer_message(not_found, r#"{"message": 5}"#), "404 Not Found");
        assert_eq!(answer_message(http::StatusCode::BAD_GATEWAY, ""), "502 Bad Gateway");
    }

    #[test]
    fn rate_limits_are_told_from_other_refusals() {
        let now = 1_700_000_000;
        let s = Duration::from_secs;
        type Headers = &'static [(&'static str, &'static str)];
        let cases: Vec<(u16, Headers, &str, Option<Duration>)> = vec![
            // Primary: nothing remains until the reset.
            (
                403,
                &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1700000042")],
                "API rate limit exceeded",
                Some(s(42)),
            ),
            (429, &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1700000100")], "", Some(s(100))),
            // A reset already past, or hours away: at least a second, at most an hour.
            (403, &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1699999990")], "", Some(s(1))),
            (
                403,
                &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1700086400")],
                "",
                Some(MAX_RATE_LIMIT_PAUSE),
            ),
            (403, &[("x-ratelimit-remaining", "0")], "", Some(DEFAULT_RATE_LIMIT_PAUSE)),
            // Secondary: Retry-After first, else a minute.
            (
                403,
                &[("retry-after", "30"), ("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1700000500")],
                "",
                Some(s(30)),
            ),
            (429, &[("retry-after", "7")], "", Some(s(7))),
            (
                403,
                &[],
                "You have exceeded a secondary rate limit. Please wait a few minutes.",
                Some(DEFAULT_RATE_LIMIT_PAUSE),
            ),
            (429, &[], "", Some(DEFAULT_RATE_LIMIT_PAUSE)),
            (403, &[("retry-after", "0")], "", Some(s(1))),
            // Not limits: a plain 403, requests remaining, other statuses.
            (403, &[], "Resource not accessible by integration", None),
            (
                403,
                &[("x-ratelimit-remaining", "4999"), ("x-ratelimit-reset", "1700000042")],
                "Must have admin rights",
                None,
            ),
            (404, &[("retry-after", "30")], "Not Found", None),
            (500, &[], "secondary rate limit", None),
            (403, &[("x-ratelimit-remaining", "zero")], "", None),
        ];
        for (status, pairs, message, expected) in cases {
            let mut headers = http::HeaderMap::new();
            for (k, v) in pairs {
                headers.insert(*k, http::HeaderValue::from_static(v));
            }
            let status = http::StatusCode::from_u16(status).unwrap();
            assert_eq!(rate_limit_pause(status, &headers, message, now), expected, "{status} {pairs:?} {message}");
        }
    }

    #[test]
    fn an_answer_reporting_a_limit_is_rate_limited() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-ratelimit-remaining", http::HeaderValue::from_static("0"));
        headers.insert("x-ratelimit-reset", http::HeaderValue::from_static("1060"));
        let forbidden = http::StatusCode::FORBIDDEN;
        let err = GitHubError::from_response(forbidden, &headers, r#"{"message": "API rate limit exceeded"}"#, 1000);
        assert_eq!(err, GitHubError::RateLimited { retry_after: Duration::from_secs(60) });
        assert_eq!(err.to_string(), "GitHub rate-limited the request; retry after 60 s");
        assert_eq!(
            GitHubError::from_response(forbidden, &http::HeaderMap::new(), r#"{"message": "Forbidden"}"#, 1000),
            GitHubError::Status { status: 403, message: "Forbidden".into() }
        );
    }

    #[test]
    fn unsupported_calls_and_bad_keys_read_as_before() {
        assert_eq!(
            GitHubError::Unsupported("listing jobs").to_string(),
            "could not reach GitHub: listing jobs is not supported by this client"
        );
        assert_eq!(
            GitHubError::BadKey("no PEM block".into()).to_string(),
            "could not reach GitHub: GITHUB_APP_PRIVATE_KEY is not usable: no PEM block"
        );
    }
}
