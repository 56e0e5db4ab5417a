//! The `Probe` port: one HTTP GET of an operator's health endpoint, for `/verify-latest`, the
//! deploy follow-up and the tick. Redirects are not followed (a redirect is an answer to show, not
//! a place to go), the time is bounded, and at most [`MAX_BODY_BYTES`] of the body are read: only
//! a JSON `status` field is looked for in it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use url::Url;

/// The most of a health answer that is read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What one GET found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeAnswer {
    /// The HTTP status, or `None` when no answer came (see `error`).
    pub status: Option<u16>,
    /// From the request to the end of the headers (or to the failure).
    pub latency_ms: u64,
    /// The `status` field of a JSON body (`healthy`, `ready`, …).
    pub health: Option<String>,
    /// The `Location` of a redirect, not followed.
    pub location: Option<String>,
    /// Why no answer came: `timed out after 2000 ms`, `connection refused`, ….
    pub error: Option<String>,
}

/// Fetches health endpoints.
#[async_trait]
pub trait Probe: Send + Sync {
    async fn get(&self, url: &Url, timeout: Duration) -> ProbeAnswer;
}

/// `Probe` over reqwest (already in the tree for log downloads), built on first use.
#[derive(Debug, Clone, Default)]
pub struct HttpProbe {
    client: Arc<std::sync::OnceLock<reqwest::Client>>,
}

impl HttpProbe {
    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(2))
                .user_agent("valine-verify")
                .build()
                .unwrap_or_else(|_| reqwest::Client::new())
        })
    }
}

/// The `status` field of a JSON health answer, if it is a short string.
pub fn health_field(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let s = v.get("status")?.as_str()?;
    (!s.is_empty() && s.len() <= 64).then(|| s.to_string())
}

#[async_trait]
impl Probe for HttpProbe {
    async fn get(&self, url: &Url, timeout: Duration) -> ProbeAnswer {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let elapsed = |s: Instant| s.elapsed().as_millis() as u64;
        let failed = |error: String, latency_ms| ProbeAnswer {
            status: None,
            latency_ms,
            health: None,
            location: None,
            error: Some(error),
        };
        let mut response = match tokio::time::timeout_at(deadline, self.client().get(url.clone()).send()).await {
            Err(_) => return failed(format!("no answer within {} ms", timeout.as_millis()), elapsed(started)),
            Ok(Err(e)) => {
                let reason = if e.is_connect() { "could not connect".to_string() } else { e.without_url().to_string() };
                return failed(reason, elapsed(started));
            }
            Ok(Ok(r)) => r,
        };
        let latency_ms = elapsed(started);
        let status = response.status();
        let location = status
            .is_redirection()
            .then(|| response.headers().get(http::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string))
            .flatten();
        let json = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.contains("json"));
        let mut health = None;
        if json {
            // The body within what is left of the time; a slow body only loses the field.
            let mut body = Vec::new();
            while body.len() < MAX_BODY_BYTES {
                match tokio::time::timeout_at(deadline, response.chunk()).await {
                    Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
                    _ => break,
                }
            }
            health = health_field(&body);
        }
        ProbeAnswer { status: Some(status.as_u16()), latency_ms, health, location, error: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[test]
    fn the_health_field_is_read_from_json_only() {
        assert_eq!(health_field(br#"{"status":"healthy","version":"1"}"#).as_deref(), Some("healthy"));
        assert_eq!(health_field(br#"{"status":3}"#), None);
        assert_eq!(health_field(b"OK"), None);
    }

    #[tokio::test]
    async fn answers_are_read_and_redirects_not_followed() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/health"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"status": "ready"})))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/moved"))
            .respond_with(ResponseTemplate::new(302).insert_header("location", "/elsewhere"))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/slow"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(800)))
            .mount(&server)
            .await;
        let probe = HttpProbe::default();
        let base = Url::parse(&server.uri()).unwrap();
        let ok = probe.get(&base.join("/health").unwrap(), Duration::from_secs(2)).await;
        assert_eq!((ok.status, ok.health.as_deref(), ok.error.as_deref()), (Some(200), Some("ready"), None));
        let moved = probe.get(&base.join("/moved").unwrap(), Duration::from_secs(2)).await;
        assert_eq!((moved.status, moved.location.as_deref()), (Some(302), Some("/elsewhere")));
        let slow = probe.get(&base.join("/slow").unwrap(), Duration::from_millis(200)).await;
        assert_eq!(slow.status, None);
        assert!(slow.error.unwrap().contains("200 ms"));
        assert!(slow.latency_ms < 700, "{}", slow.latency_ms);
        // nothing was requested at the redirect's target
        let paths: Vec<String> =
            server.received_requests().await.unwrap().iter().map(|r| r.url.path().to_string()).collect();
        assert!(!paths.contains(&"/elsewhere".to_string()), "{paths:?}");
    }
}
