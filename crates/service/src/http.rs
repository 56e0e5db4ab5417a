//! The transport-neutral request and response both handlers work on, so that the same code
//! answers behind API Gateway (lambda_http) and under `valinectl serve` (axum).

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use valine_domain::config::{Config, Handler, NOWHERE_TO_POST};

#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    pub path: String,
    /// Header names are case-insensitive: `HeaderMap` lower-cases them.
    pub headers: HeaderMap,
    /// Already base64-decoded when the gateway sent `isBase64Encoded`.
    pub body: Bytes,
    /// In Lambda, the ARN this invocation came through (the `live` alias, or a version): deferred
    /// jobs invoke the same one, so they run the code and the async settings of the version that
    /// took the interaction. `None` under `valinectl serve`.
    pub invoked_by: Option<String>,
}

impl HttpRequest {
    pub fn new(method: Method, path: impl Into<String>, headers: HeaderMap, body: impl Into<Bytes>) -> Self {
        Self { method, path: path.into(), headers, body: body.into(), invoked_by: None }
    }

    /// The same request, as invoked through `arn`.
    pub fn invoked_by(mut self, arn: Option<String>) -> Self {
        self.invoked_by = arn.filter(|a| !a.is_empty());
        self
    }

    /// A header's value, when present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: StatusCode,
    /// JSON text.
    pub body: String,
}

impl HttpResponse {
    pub fn json(status: StatusCode, value: &Value) -> Self {
        Self { status, body: value.to_string() }
    }

    pub fn ok(value: &Value) -> Self {
        Self::json(StatusCode::OK, value)
    }

    /// `{"error": message}` with `status`.
    pub fn error(status: StatusCode, message: &str) -> Self {
        Self::json(status, &json!({ "error": message }))
    }

    pub fn content_type(&self) -> &'static str {
        "application/json"
    }
}

/// `GET /health`.
pub fn health(service: &str) -> HttpResponse {
    HttpResponse::ok(&json!({"status": "healthy", "service": service, "version": env!("CARGO_PKG_VERSION")}))
}

/// `GET /health/ready`: 200 when every check passed, else 503; each check's result either way.
/// The configuration is broken when it has [`Config::problems`] for `handler` ("nowhere to post"
/// is not one when a channel has subscribed); `unconfigured` lists features that are merely off.
/// What it learns from the store is kept [`valine_store::READY_CHECK_TTL`] (5 s) per container.
pub async fn readiness(
    service: &str,
    config: &Config,
    handler: Handler,
    unconfigured: Vec<(&'static str, Vec<&'static str>)>,
    stores: &valine_store::Stores,
) -> HttpResponse {
    let mut problems = config.problems(handler);
    let nowhere = problems.iter().any(|p| p.var == NOWHERE_TO_POST);
    // Kept five seconds per container: the route is public, and must not read the store per call.
    let check = stores.ready.get(|kept| !nowhere || kept.subscribed.is_some(), check_store(stores, nowhere)).await;
    let store_ok = check.error.is_none();
    if check.subscribed == Some(true) {
        problems.retain(|p| p.var != NOWHERE_TO_POST);
    }
    let config_ok = problems.is_empty();
    let ready = config_ok && store_ok;
    let missing: Vec<&str> = problems.iter().map(|p| p.var).collect();
    let messages: Vec<&str> = problems.iter().map(|p| p.message).collect();
    let features: serde_json::Map<String, Value> =
        unconfigured.into_iter().map(|(feature, missing)| (feature.to_string(), json!({"missing": missing}))).collect();
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "service": service,
        "checks": {
            "config": {"ok": config_ok, "missing": missing, "problems": messages},
            "store": {"ok": store_ok, "kind": stores.kind, "latency_ms": check.latency_ms, "error": check.error},
        },
        "features_not_configured": features,
    });
    HttpResponse::json(if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, &body)
}

/// Pings the store and, when `subscriptions` and it answered, reads whether a channel subscribed.
async fn check_store(stores: &valine_store::Stores, subscriptions: bool) -> valine_store::StoreCheck {
    let started = std::time::Instant::now();
    let budget = std::time::Duration::from_secs(2);
    let store = tokio::time::timeout(budget, stores.health.ping()).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    let error = match store {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(valine_domain::redact::redact(&e.to_string()).into_owned()),
        Err(_) => Some("no answer within 2 s".to_string()),
    };
    let subscribed = match (&error, subscriptions) {
        (None, true) => Some(
            tokio::time::timeout(budget, stores.routes.list_subscriptions())
                .await
                .is_ok_and(|subs| subs.is_ok_and(|s| !s.is_empty())),
        ),
        _ => None,
    };
    valine_store::StoreCheck { error, latency_ms, subscribed }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use valine_domain::routing::Subscription;
    use valine_store::embedded::EmbeddedStore;
    use valine_store::{RouteRepo, StoreHealth, StoreResult, Stores};

    use super::*;

    /// Counts the store calls readiness makes.
    #[derive(Default)]
    struct Counting {
        pings: AtomicUsize,
        lists: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl StoreHealth for Counting {
        async fn ping(&self) -> StoreResult<()> {
            self.pings.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[async_trait::async_trait]
    impl RouteRepo for Counting {
        async fn put_subscription(&self, _: &Subscription) -> StoreResult<()> {
            Ok(())
        }
        async fn delete_subscription(&self, _: u64, _: &str) -> StoreResult<bool> {
            Ok(false)
        }
        async fn list_subscriptions(&self) -> StoreResult<Vec<Subscription>> {
            self.lists.fetch_add(1, Ordering::SeqCst);
            Ok(Vec::new())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_store_checks_of_readiness_are_kept_five_seconds_per_container() {
        let dir = tempfile::tempdir().unwrap();
        let mut stores =
            Stores::from_adapter(Arc::new(EmbeddedStore::open(&dir.path().join("v.redb")).unwrap()), "embedded");
        let counting = Arc::new(Counting::default());
        stores.health = counting.clone();
        stores.routes = counting.clone();
        // Alerts on with no channel: readiness also reads the subscriptions ("nowhere to post").
        let config = Config::from_lookup(|k| (k == "ENABLE_ALERTS").then(|| "true".to_string())).unwrap();
        let calls = || (counting.pings.load(Ordering::SeqCst), counting.lists.load(Ordering::SeqCst));
        for _ in 0..20 {
            let answer = readiness("test", &config, Handler::GitHub, Vec::new(), &stores).await;
            assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{}", answer.body);
        }
        assert_eq!(calls(), (1, 1), "twenty calls inside five seconds read the store once");
        tokio::time::advance(std::time::Duration::from_millis(4900)).await;
        readiness("test", &config, Handler::GitHub, Vec::new(), &stores).await;
        assert_eq!(calls(), (1, 1));
        tokio::time::advance(std::time::Duration::from_millis(200)).await;
        readiness("test", &config, Handler::GitHub, Vec::new(), &stores).await;
        assert_eq!(calls(), (2, 2), "after five seconds the store is read again");
    }
}
