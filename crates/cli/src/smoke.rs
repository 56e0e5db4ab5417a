//! `valinectl smoke --url API_URL`: the post-deploy checks. Both functions answer their health
//! routes, Discord request verification is on (an unsigned interaction gets 401), and the GitHub
//! function accepts a `ping` delivery signed with `GITHUB_WEBHOOK_SECRET`. One line per check;
//! the command fails when any check does.

use std::time::{Duration, Instant};

use serde_json::json;
use valine_domain::config::Secret;
use valine_domain::signing::github_signature;

/// A cold start of a deployed function takes well under this; a check that waits longer fails.
const CHECK_TIMEOUT: Duration = Duration::from_secs(15);

/// What one check expects of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Status(u16),
    Success,
}

impl Expect {
    fn accepts(self, status: u16) -> bool {
        match self {
            Self::Status(s) => status == s,
            Self::Success => (200..300).contains(&status),
        }
    }

    fn describe(self) -> String {
        match self {
            Self::Status(s) => s.to_string(),
            Self::Success => "2xx".into(),
        }
    }
}

/// Runs every check, prints one line each, and fails if any failed.
pub(crate) async fn run(url: &str, webhook_secret: Option<&Secret>) -> Result<(), String> {
    let base = url.trim_end_matches('/');
    if !(base.starts_with("https://") || base.starts_with("http://")) {
        return Err(format!("--url must be an http(s) URL, not `{base}`"));
    }
    let client = reqwest::Client::builder().timeout(CHECK_TIMEOUT).build().map_err(|e| e.to_string())?;
    let mut failed = 0;
    let mut total = 0;
    let mut report = |ok: bool, line: String| {
        total += 1;
        if !ok {
            failed += 1;
        }
        println!("{} {line}", if ok { "ok  " } else { "FAIL" });
    };

    for path in ["/health", "/health/ready", "/github/health"] {
        let (ok, line) = check(client.get(format!("{base}{path}")), &format!("GET {path}"), Expect::Status(200)).await;
        report(ok, line);
    }

    let unsigned = client
        .post(format!("{base}/discord"))
        .header("content-type", "application/json")
        .body(json!({"type": 1}).to_string());
    let (ok, line) = check(unsigned, "POST /discord unsigned (verification on)", Expect::Status(401)).await;
    report(ok, line);

    match webhook_secret {
        Some(secret) => {
            let body = json!({"zen": "valinectl smoke", "hook_id": 0, "hook": {"type": "Repository"}}).to_string();
            let signed = client
                .post(format!("{base}/github/webhook"))
                .header("content-type", "application/json")
                .header("x-github-event", "ping")
                .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
                .header("x-hub-signature-256", github_signature(secret.expose(), body.as_bytes()))
                .body(body);
            let (ok, line) = check(signed, "POST /github/webhook signed ping", Expect::Success).await;
            report(ok, line);
        }
        None => report(
            false,
            "POST /github/webhook signed ping: set GITHUB_WEBHOOK_SECRET (the value in the stack's secret)".into(),
        ),
    }

    if failed == 0 {
        println!("{total} passed, 0 failed");
        Ok(())
    } else {
        println!("{} passed, {failed} failed", total - failed);
        Err(format!("{failed} of {total} smoke checks failed against {base}"))
    }
}

/// Sends one request; the line names the check, the status and the time it took.
async fn check(request: reqwest::RequestBuilder, name: &str, expect: Expect) -> (bool, String) {
    let started = Instant::now();
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let ms = started.elapsed().as_millis();
            if expect.accepts(status) {
                (true, format!("{name} → {status} ({ms} ms)"))
            } else {
                // The body says why (e.g. "not ready: set GITHUB_TOKEN"); it never holds a secret,
                // and is cut so a large error page stays one line.
                let body = response.text().await.unwrap_or_default();
                let body: String = body.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(200).collect();
                (false, format!("{name} → {status}, expected {} ({ms} ms): {body}", expect.describe()))
            }
        }
        Err(e) => (false, format!("{name}: no answer ({})", e.without_url())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations() {
        assert!(Expect::Status(401).accepts(401));
        assert!(!Expect::Status(401).accepts(200));
        assert!(Expect::Success.accepts(202));
        assert!(!Expect::Success.accepts(300));
        assert_eq!(Expect::Success.describe(), "2xx");
    }

    #[tokio::test]
    async fn refuses_a_url_that_is_not_http() {
        let err = run("ftp://example.invalid", None).await.unwrap_err();
        assert!(err.contains("http(s)"), "{err}");
    }
}
