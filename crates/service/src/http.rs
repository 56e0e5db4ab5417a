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
pub async fn readiness(
    service: &str,
    config: &Config,
    handler: Handler,
    unconfigured: Vec<(&'static str, Vec<&'static str>)>,
    stores: &valine_store::Stores,
) -> HttpResponse {
    let started = std::time::Instant::now();
    let budget = std::time::Duration::from_secs(2);
    let store = tokio::time::timeout(budget, stores.health.ping()).await;
    let store_ms = started.elapsed().as_millis() as u64;
    let (store_ok, store_detail) = match store {
        Ok(Ok(())) => (true, None),
        Ok(Err(e)) => (false, Some(valine_domain::redact::redact(&e.to_string()).into_owned())),
        Err(_) => (false, Some("no answer within 2 s".to_string())),
    };
    let mut problems = config.problems(handler);
    if store_ok && problems.iter().any(|p| p.var == NOWHERE_TO_POST) {
        let subscribed = tokio::time::timeout(budget, stores.routes.list_subscriptions())
            .await
            .is_ok_and(|subs| subs.is_ok_and(|s| !s.is_empty()));
        if subscribed {
            problems.retain(|p| p.var != NOWHERE_TO_POST);
        }
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
            "store": {"ok": store_ok, "kind": stores.kind, "latency_ms": store_ms, "error": store_detail},
        },
        "features_not_configured": features,
    });
    HttpResponse::json(if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, &body)
}
