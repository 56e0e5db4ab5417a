//! A fault-injecting HTTP proxy in front of a DynamoDB-compatible server (feature `testing`): it
//! forwards each request, or answers it itself with what DynamoDB says when it is overloaded
//! (`ProvisionedThroughputExceededException`, HTTP 400) or broken (HTTP 500), by a [`FaultPlan`]
//! that a test can change at any time. It counts what it saw, per operation and attempt.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// What the proxy answers instead of DynamoDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 400 with `__type` `…#ProvisionedThroughputExceededException`.
    Throttle,
    /// HTTP 500 with `__type` `…#InternalServerError`.
    ServerError,
    /// The request is carried out, and then its answer is lost: HTTP 500 as for `ServerError`,
    /// though the write landed.
    LostAnswer,
    /// HTTP 500 with an HTML page and no error code, as an overloaded HTTP server answers (moto
    /// does so when concurrent transactions trip over each other).
    Overloaded,
    /// HTTP 400 `TransactionCanceledException` with the reason `TransactionConflict`, as DynamoDB
    /// cancels a transaction while another one is writing one of its items. For
    /// `TransactWriteItems` only.
    TransactionConflict,
}

impl Fault {
    fn response(self) -> Response {
        if self == Fault::Overloaded {
            let page = "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n";
            return (StatusCode::INTERNAL_SERVER_ERROR, [("content-type", "text/html; charset=utf-8")], page)
                .into_response();
        }
        if self == Fault::TransactionConflict {
            let body = serde_json::json!({
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "message": "Transaction cancelled, please refer cancellation reasons for specific reasons [None, TransactionConflict]",
                "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}],
            });
            return (StatusCode::BAD_REQUEST, [("content-type", "application/x-amz-json-1.0")], body.to_string())
                .into_response();
        }
        let (status, kind, message) = match self {
            Fault::Throttle => (
                StatusCode::BAD_REQUEST,
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
            ),
            Fault::ServerError | Fault::LostAnswer | Fault::Overloaded | Fault::TransactionConflict => {
                (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Internal server error")
            }
        };
        let body =
            serde_json::json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": message});
        (
            status,
            [("content-type", "application/x-amz-json-1.0"), ("x-amzn-requestid", "fault-proxy")],
            body.to_string(),
        )
            .into_response()
    }
}

/// Which requests get a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPlan {
    /// Everything is forwarded.
    Pass,
    /// Every request.
    Always(Fault),
    /// The first attempt of every call (by the SDK's `amz-sdk-request: attempt=N` header); retries
    /// are forwarded.
    FirstAttempts(Fault),
    /// `percent` of requests, spread evenly and deterministically (request n is faulted when
    /// `n * percent / 100` steps up); the faults alternate throttle, 500 when `mixed`.
    Share { percent: u64, mixed: bool },
    /// Every request of one DynamoDB operation (`TransactWriteItems`, …); the rest pass.
    Operation(&'static str, Fault),
}

/// What the proxy saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    pub requests: u64,
    pub forwarded: u64,
    pub throttled: u64,
    pub server_errors: u64,
    pub lost_answers: u64,
    pub conflicts: u64,
    /// Requests per DynamoDB operation (`PutItem`, …).
    pub by_operation: BTreeMap<String, u64>,
    /// Requests that were retries (attempt 2 or later).
    pub retries: u64,
}

struct Inner {
    plan: FaultPlan,
    seen: Seen,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    upstream: String,
    client: reqwest::Client,
}

/// The proxy, on 127.0.0.1; it stops when dropped.
pub struct FaultProxy {
    shared: Shared,
    pub addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:5000`) with `plan`.
    pub async fn start(upstream: &str, plan: FaultPlan) -> std::io::Result<Self> {
        let shared = Shared {
            inner: Arc::new(Mutex::new(Inner { plan, seen: Seen::default() })),
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::new(),
        };
        let app = Router::new().fallback(proxy).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { shared, addr, server })
    }

    /// The endpoint URL to give the SDK.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_plan(&self, plan: FaultPlan) {
        if let Ok(mut inner) = self.shared.inner.lock() {
            inner.plan = plan;
        }
    }

    /// What was seen so far, and starts counting again.
    pub fn take_seen(&self) -> Seen {
        self.shared.inner.lock().map(|mut i| std::mem::take(&mut i.seen)).unwrap_or_default()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The attempt number of `amz-sdk-request: attempt=2; max=2`.
fn attempt(headers: &HeaderMap) -> u64 {
    headers
        .get("amz-sdk-request")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').find_map(|p| p.trim().strip_prefix("attempt=")))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

async fn proxy(
    State(shared): State<Shared>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let operation = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("-")
        .to_string();
    let attempt = attempt(&headers);
    let fault = {
        let Ok(mut inner) = shared.inner.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        inner.seen.requests += 1;
        *inner.seen.by_operation.entry(operation.clone()).or_default() += 1;
        if attempt > 1 {
            inner.seen.retries += 1;
        }
        let n = inner.seen.requests;
        let fault = match inner.plan {
            FaultPlan::Pass => None,
            FaultPlan::Always(f) => Some(f),
            FaultPlan::FirstAttempts(f) => (attempt == 1).then_some(f),
            FaultPlan::Share { percent, mixed } => {
                let step = (n * percent / 100) > ((n - 1) * percent / 100);
                let nth = n * percent / 100;
                step.then_some(if mixed && nth % 2 == 0 { Fault::ServerError } else { Fault::Throttle })
            }
            FaultPlan::Operation(op, f) => (op == operation).then_some(f),
        };
        match fault {
            Some(Fault::Throttle) => inner.seen.throttled += 1,
            Some(Fault::ServerError | Fault::Overloaded) => inner.seen.server_errors += 1,
            Some(Fault::TransactionConflict) => inner.seen.conflicts += 1,
            Some(Fault::LostAnswer) => inner.seen.lost_answers += 1,
            None => inner.seen.forwarded += 1,
        }
        fault
    };
    if let Some(f) = fault
        && f != Fault::LostAnswer
    {
        return f.response();
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = shared.client.request(method, format!("{}{path}", shared.upstream)).body(body);
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            req = req.header(k, v);
        }
    }
    match req.send().await {
        Ok(res) => {
            let status = res.status();
            let mut out = HeaderMap::new();
            for (k, v) in res.headers() {
                if k != "content-length" && k != "transfer-encoding" && k != "connection" {
                    out.insert(k.clone(), v.clone());
                }
            }
            let bytes = res.bytes().await.unwrap_or_default();
            if fault == Some(Fault::LostAnswer) {
                return Fault::LostAnswer.response();
            }
            (status, out, bytes).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("fault proxy: upstream unreachable: {e}")).into_response(),
    }
}

/// The DynamoDB-compatible server of `AWS_ENDPOINT_URL`, or `None` (with a message: the test
/// skips) when there is none, unless `VALINE_REQUIRE_DYNAMODB=1`, where it panics.
pub fn dynamo_endpoint() -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(e) if !e.is_empty() => Some(e),
        _ => {
            assert!(
                std::env::var("VALINE_REQUIRE_DYNAMODB").as_deref() != Ok("1"),
                "VALINE_REQUIRE_DYNAMODB=1 but AWS_ENDPOINT_URL is not set: the DynamoDB fault tests must run"
            );
            eprintln!(
                "skipping: set AWS_ENDPOINT_URL to a DynamoDB-compatible server (e.g. moto_server) to run the fault tests"
            );
            None
        }
    }
}

async fn client(endpoint: &str, budget: bool) -> aws_sdk_dynamodb::Client {
    let loader = crate::dynamo::sdk_loader();
    let loader = if budget { crate::dynamo::with_budget(loader) } else { loader };
    let sdk = loader
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "fault-proxy"))
        .endpoint_url(endpoint)
        .load()
        .await;
    aws_sdk_dynamodb::Client::new(&sdk)
}

/// Fresh tables on the server at `endpoint` (created directly, not through the proxy), and every
/// port over them through a new proxy with `plan`, on the deployed budget (`dynamo::with_budget`).
pub async fn stores_behind_proxy(endpoint: &str, plan: FaultPlan) -> Result<(crate::Stores, FaultProxy), String> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let names = crate::dynamo::TableNames {
        audit: format!("fault-audit-{id}"),
        runs: format!("fault-runs-{id}"),
        state: format!("fault-state-{id}"),
    };
    crate::dynamo::create_tables(&client(endpoint, false).await, &names).await.map_err(|e| e.to_string())?;
    let proxy = FaultProxy::start(endpoint, plan).await.map_err(|e| e.to_string())?;
    let store = crate::dynamo::DynamoStore::from_client(client(&proxy.url(), true).await, names);
    Ok((crate::Stores::from_adapter(Arc::new(store), "dynamodb"), proxy))
}
