//! The transport-neutral request and response both handlers work on, so that the same code
//! answers behind API Gateway (lambda_http) and under `valinectl serve` (axum).

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    pub path: String,
    /// Header names are case-insensitive: `HeaderMap` lower-cases them.
    pub headers: HeaderMap,
    /// Already base64-decoded when the gateway sent `isBase64Encoded`.
    pub body: Bytes,
}

impl HttpRequest {
    pub fn new(method: Method, path: impl Into<String>, headers: HeaderMap, body: impl Into<Bytes>) -> Self {
        Self { method, path: path.into(), headers, body: body.into() }
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
pub async fn readiness(
    service: &str,
    config_missing: &[&'static str],
    unconfigured: Vec<(&'static str, Vec<&'static str>)>,
    stores: &valine_store::Stores,
) -> HttpResponse {
    let started = std::time::Instant::now();
    let store = tokio::time::timeout(std::time::Duration::from_secs(2), stores.health.ping()).await;
    let store_ms = started.elapsed().as_millis() as u64;
    let (store_ok, store_detail) = match store {
        Ok(Ok(())) => (true, None),
        Ok(Err(e)) => (false, Some(valine_domain::redact::redact(&e.to_string()).into_owned())),
        Err(_) => (false, Some("no answer within 2 s".to_string())),
    };
    let config_ok = config_missing.is_empty();
    let ready = config_ok && store_ok;
    let features: serde_json::Map<String, Value> =
        unconfigured.into_iter().map(|(feature, missing)| (feature.to_string(), json!({"missing": missing}))).collect();
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "service": service,
        "checks": {
            "config": {"ok": config_ok, "missing": config_missing},
            "store": {"ok": store_ok, "kind": stores.kind, "latency_ms": store_ms, "error": store_detail},
        },
        "features_not_configured": features,
    });
    HttpResponse::json(if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, &body)
}
