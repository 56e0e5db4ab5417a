//! What a GitHub call can fail with, and the one reader of the `message` GitHub puts in an error
//! answer. A leaf: both the API adapter and the App authentication use it.

/// A GitHub call that did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("GitHub did not answer in time")]
    Timeout,
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
