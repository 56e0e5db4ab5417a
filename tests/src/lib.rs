//! A small Lambda Runtime API of our own, to run the real handler binaries as Lambda runs them:
//! the binary long-polls `/runtime/invocation/next`, gets an event, and posts its answer to
//! `/runtime/invocation/{id}/response`. The same server answers the Lambda `Invoke` API, so a
//! handler's asynchronous self-invocation (a deferred job) comes back through `/next`, as it
//! does in AWS.

// Test tool (valine-e2e): the no-panic lints hold for production code only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc, oneshot};

/// What came back for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response(Value),
    Error(Value),
}

struct Shared {
    queue_tx: mpsc::UnboundedSender<(String, Value)>,
    queue_rx: Mutex<mpsc::UnboundedReceiver<(String, Value)>>,
    waiters: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// Events that arrived through the Invoke API (asynchronous self-invocations).
    async_invocations: Mutex<Vec<Value>>,
    /// What each of those invocations named: the function (as sent, an ARN or a name) and the
    /// `Qualifier` parameter, if any.
    invoke_targets: Mutex<Vec<(String, Option<String>)>>,
    init_errors: Mutex<Vec<Value>>,
    /// `Lambda-Runtime-Invoked-Function-Arn` of every invocation.
    invoked_arn: String,
}

/// The Runtime API (and Invoke API) on 127.0.0.1.
pub struct RuntimeApi {
    shared: Arc<Shared>,
    pub addr: std::net::SocketAddr,
    _server: tokio::task::JoinHandle<()>,
}

/// The invoked ARN when none is given: an unqualified function.
pub const DEFAULT_INVOKED_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:valine-e2e";

impl RuntimeApi {
    pub async fn start() -> Self {
        Self::start_as(DEFAULT_INVOKED_ARN).await
    }

    /// A runtime whose invocations come through `invoked_arn` (an alias ARN, as the API and the
    /// schedule call the `live` alias).
    pub async fn start_as(invoked_arn: &str) -> Self {
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue_tx,
            queue_rx: Mutex::new(queue_rx),
            waiters: Mutex::new(HashMap::new()),
            async_invocations: Mutex::new(Vec::new()),
            invoke_targets: Mutex::new(Vec::new()),
            init_errors: Mutex::new(Vec::new()),
            invoked_arn: invoked_arn.to_string(),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .route("/2015-03-31/functions/{name}/invocations", post(invoke_api))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the runtime API");
        let addr = listener.local_addr().expect("local address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { shared, addr, _server: server }
    }

    /// `AWS_LAMBDA_RUNTIME_API` for the binary.
    pub fn runtime_api(&self) -> String {
        self.addr.to_string()
    }

    /// `AWS_ENDPOINT_URL_LAMBDA`: where the binary's Lambda client sends `Invoke`.
    pub fn invoke_endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues an event and waits for the function's answer.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Option<Outcome> {
        let id = uuid_like();
        let (tx, rx) = oneshot::channel();
        self.shared.waiters.lock().await.insert(id.clone(), tx);
        let _ = self.shared.queue_tx.send((id, event));
        tokio::time::timeout(timeout, rx).await.ok().and_then(Result::ok)
    }

    /// Events the function sent itself through the Invoke API.
    pub async fn async_invocations(&self) -> Vec<Value> {
        self.shared.async_invocations.lock().await.clone()
    }

    /// What those invocations named: `(function, qualifier)`.
    pub async fn invoke_targets(&self) -> Vec<(String, Option<String>)> {
        self.shared.invoke_targets.lock().await.clone()
    }

    pub async fn init_errors(&self) -> Vec<Value> {
        self.shared.init_errors.lock().await.clone()
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    format!("00000000-0000-4000-8000-{:012x}", N.fetch_add(1, Ordering::Relaxed))
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let item = shared.queue_rx.lock().await.recv().await;
    let Some((id, event)) = item else {
        return StatusCode::GONE.into_response();
    };
    let deadline =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64) + 60_000;
    let mut headers = HeaderMap::new();
    let put = |h: &mut HeaderMap, k: &'static str, v: String| {
        if let Ok(v) = v.parse() {
            h.insert(k, v);
        }
    };
    put(&mut headers, "lambda-runtime-aws-request-id", id);
    put(&mut headers, "lambda-runtime-deadline-ms", deadline.to_string());
    put(&mut headers, "lambda-runtime-invoked-function-arn", shared.invoked_arn.clone());
    put(&mut headers, "lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".into());
    put(&mut headers, "content-type", "application/json".into());
    (StatusCode::OK, headers, event.to_string()).into_response()
}

async fn finish(shared: &Shared, id: &str, outcome: Outcome) {
    if let Some(tx) = shared.waiters.lock().await.remove(id) {
        let _ = tx.send(outcome);
    }
}

async fn response(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    finish(&shared, &id, Outcome::Response(value)).await;
    StatusCode::ACCEPTED
}

async fn error(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    finish(&shared, &id, Outcome::Error(value)).await;
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    shared.init_errors.lock().await.push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    StatusCode::ACCEPTED
}

/// The Lambda `Invoke` API: an `Event` invocation is queued (202) and runs through `/next`.
async fn invoke_api(
    State(shared): State<Arc<Shared>>,
    UrlPath(function): UrlPath<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let asynchronous = headers.get("x-amz-invocation-type").and_then(|v| v.to_str().ok()) == Some("Event");
    if !asynchronous {
        return (StatusCode::BAD_REQUEST, "only Event invocations are emulated").into_response();
    }
    let qualifier = uri.query().unwrap_or("").split('&').find_map(|p| p.strip_prefix("Qualifier=")).map(str::to_string);
    shared.invoke_targets.lock().await.push((function, qualifier));
    shared.async_invocations.lock().await.push(event.clone());
    let id = uuid_like();
    let _ = shared.queue_tx.send((id, event));
    (StatusCode::ACCEPTED, [("x-amzn-requestid", "e2e")], "").into_response()
}

/// An API Gateway HTTP API (payload 2.0) event, which is also what a Function URL sends.
pub fn http_api_event(method: &str, path: &str, headers: &[(&str, String)], body: &[u8], base64: bool) -> Value {
    use base64::Engine;
    let header_map: serde_json::Map<String, Value> =
        headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), json!(v))).collect();
    let body = if base64 {
        json!(base64::engine::general_purpose::STANDARD.encode(body))
    } else {
        json!(String::from_utf8_lossy(body))
    };
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": header_map,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "e2eapi",
            "domainName": "e2eapi.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "e2eapi",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7", "userAgent": "Discord-Interactions/1.0"},
            "requestId": "e2e-request",
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": "22/Nov/2026:15:00:00 +0000",
            "timeEpoch": 1_795_000_000_000u64
        },
        "body": body,
        "isBase64Encoded": base64
    })
}

/// Where the workspace builds to.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"))
}

/// Builds (if needed) and returns a release binary of the workspace.
pub fn release_binary(package: &str, bin: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--quiet", "-p", package, "--bin", bin])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .status()
        .expect("run cargo build --release");
    assert!(status.success(), "cargo build --release -p {package} failed");
    target_dir().join("release").join(bin)
}

/// A handler binary running under the runtime API.
pub struct Function {
    pub child: Child,
    pub started: Instant,
}

impl Function {
    /// Starts `binary` with the Lambda environment plus `env`; stdout (the JSON log) is captured.
    pub fn start(binary: &Path, runtime: &RuntimeApi, name: &str, env: &[(&str, String)], log: &Path) -> Self {
        let log_file = std::fs::File::create(log).expect("create the log file");
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", runtime.runtime_api())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "e2e")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL_LAMBDA", runtime.invoke_endpoint())
            .stdout(Stdio::from(log_file.try_clone().expect("clone the log file")))
            .stderr(Stdio::from(log_file));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let child = cmd.spawn().expect("start the handler binary");
        Self { child, started }
    }

    /// Peak resident memory so far (VmHWM), in KiB, on Linux.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port on 127.0.0.1 (bound, then released: another process could take it meanwhile).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// One request the fake Discord received.
#[derive(Debug, Clone)]
pub struct DiscordCall {
    pub method: String,
    pub path: String,
    pub body: Value,
    /// The id the fake gave the message it created (POST to a channel), else 0.
    pub created_id: u64,
}

/// An in-process Discord API (`DISCORD_API_BASE`): answers posts, edits, replies, DMs and
/// interaction follow-ups the way Discord does, and records each call.
pub struct FakeDiscord {
    calls: Arc<std::sync::Mutex<Vec<DiscordCall>>>,
    pub addr: std::net::SocketAddr,
    _server: tokio::task::JoinHandle<()>,
}

impl FakeDiscord {
    pub async fn start() -> Self {
        let calls: Arc<std::sync::Mutex<Vec<DiscordCall>>> = Arc::default();
        let next_id = Arc::new(std::sync::atomic::AtomicU64::new(1_400_000_000_000_000_000));
        let state = (calls.clone(), next_id);
        let app = Router::new().fallback(fake_discord).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake Discord");
        let addr = listener.local_addr().expect("local address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { calls, addr, _server: server }
    }

    /// `DISCORD_API_BASE`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn calls(&self) -> Vec<DiscordCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Messages posted to a channel (`POST /channels/{c}/messages`), replies included.
    pub fn posts(&self) -> Vec<DiscordCall> {
        self.calls().into_iter().filter(|c| c.method == "POST" && c.path.contains("/channels/")).collect()
    }
}

type FakeState = (Arc<std::sync::Mutex<Vec<DiscordCall>>>, Arc<std::sync::atomic::AtomicU64>);

async fn fake_discord(
    State((calls, next_id)): State<FakeState>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let segments: Vec<&str> = path.trim_start_matches("/api/v10/").split('/').collect();
    let mut created_id = 0;
    let answer = match (method.as_str(), segments.as_slice()) {
        ("POST", ["channels", channel, "messages"]) => {
            created_id = next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            json!({"id": created_id.to_string(), "channel_id": channel, "content": body["content"]})
        }
        ("PATCH", ["channels", channel, "messages", message]) => json!({"id": message, "channel_id": channel}),
        ("POST", ["users", "@me", "channels"]) => {
            json!({"id": format!("9{}", body["recipient_id"].as_str().unwrap_or("1")), "type": 1})
        }
        ("POST", ["webhooks", _, _]) => {
            created_id = next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            json!({"id": created_id.to_string(), "channel_id": "100000000000000003"})
        }
        ("PATCH", ["webhooks", ..]) => json!({"id": "1", "channel_id": "100000000000000003"}),
        ("DELETE", _) => {
            if let Ok(mut c) = calls.lock() {
                c.push(DiscordCall { method: method.to_string(), path, body, created_id });
            }
            return StatusCode::NO_CONTENT.into_response();
        }
        _ => json!({"message": "unknown route in the fake Discord", "code": 0}),
    };
    if let Ok(mut c) = calls.lock() {
        c.push(DiscordCall { method: method.to_string(), path, body, created_id });
    }
    (StatusCode::OK, [("content-type", "application/json")], answer.to_string()).into_response()
}

/// A Discord interaction: a slash command with options, from a member of a guild.
pub fn interaction_body(id: u64, command: &str, user_id: u64, options: Value) -> Value {
    valine_domain::signing::InteractionBuilder::command(command, options)
        .id(id)
        .token(&format!("e2e-interaction-{id}"))
        .application(100_000_000_000_000_001)
        .user(user_id, &format!("admin{}", user_id % 1000))
        .member_of(100_000_000_000_000_002, &[])
        .channel(100_000_000_000_000_003)
        .body()
}

/// `valinectl serve` as a child process, its output in a log file.
pub struct Serve {
    pub child: Child,
    pub base: String,
}

impl Serve {
    /// Starts `binary serve --live` on `port` with exactly `env` (plus PATH) and waits for
    /// `GET /health`. `--live`: the real clients, which `env` points at fakes (`DISCORD_API_BASE`).
    pub async fn start(binary: &Path, port: u16, env: &[(String, String)], log: &Path) -> Result<Self, String> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .args(["serve", "--live", "--addr", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::from(log_file.try_clone().map_err(|e| e.to_string())?))
            .stderr(Stdio::from(log_file));
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().map_err(|e| format!("start {}: {e}", binary.display()))?;
        let mut serve = Self { child, base: format!("http://127.0.0.1:{port}") };
        let client = reqwest::Client::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = serve.child.try_wait() {
                return Err(format!("valinectl serve exited at start ({status}); see {}", log.display()));
            }
            if client.get(format!("{}/health", serve.base)).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(serve);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = serve.child.kill();
        Err(format!("valinectl serve did not answer /health within 30 s; see {}", log.display()))
    }

    /// SIGKILL: the process ends at once, mid-request.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the graceful shutdown (at most 10 s, then SIGKILL).
    pub fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}

/// One request the fake GitHub received.
#[derive(Debug, Clone)]
pub struct GitHubCall {
    pub method: String,
    pub path: String,
    pub body: Value,
}

/// An in-process GitHub REST API (`GITHUB_API_BASE`) for one repository: a workflow `CI` with a
/// passing run, a failing job with a log, dispatches, re-runs, no webhooks and no recent runs to
/// reconcile. Records each call; anything else is GitHub's 404.
pub struct FakeGitHub {
    calls: Arc<std::sync::Mutex<Vec<GitHubCall>>>,
    pub addr: std::net::SocketAddr,
    _server: tokio::task::JoinHandle<()>,
}

impl FakeGitHub {
    pub async fn start() -> Self {
        let calls: Arc<std::sync::Mutex<Vec<GitHubCall>>> = Arc::default();
        let app = Router::new().fallback(fake_github).with_state(calls.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake GitHub");
        let addr = listener.local_addr().expect("local address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { calls, addr, _server: server }
    }

    /// `GITHUB_API_BASE`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn calls(&self) -> Vec<GitHubCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

async fn fake_github(
    State(calls): State<Arc<std::sync::Mutex<Vec<GitHubCall>>>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Ok(mut c) = calls.lock() {
        c.push(GitHubCall { method: method.to_string(), path: path.clone(), body: parsed });
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let json = |status: StatusCode, v: Value| (status, [("content-type", "application/json")], v.to_string());
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["repos", o, r, "actions", "workflows"]) => json(
            StatusCode::OK,
            json!({"total_count": 1, "workflows": [{"id": 1, "name": "CI", "path": ".github/workflows/ci.yml", "state": "active", "html_url": format!("https://github.com/{o}/{r}/actions/workflows/ci.yml")}]}),
        )
        .into_response(),
        ("GET", ["repos", o, r, "actions", "workflows", _, "runs"]) => json(
            StatusCode::OK,
            json!({"total_count": 1, "workflow_runs": [{"id": 9, "name": "CI", "status": "completed", "conclusion": "success", "head_branch": "main", "head_sha": "0123456789abcdef0123456789abcdef01234567", "run_number": 3, "event": "push", "html_url": format!("https://github.com/{o}/{r}/actions/runs/9"), "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:04:00Z", "run_started_at": "2026-12-01T10:00:05Z"}]}),
        )
        .into_response(),
        ("POST", ["repos", _, _, "actions", "workflows", _, "dispatches"]) => StatusCode::NO_CONTENT.into_response(),
        ("POST", ["repos", _, _, "actions", "runs", _, "rerun-failed-jobs"]) => {
            json(StatusCode::CREATED, json!({})).into_response()
        }
        ("GET", ["repos", o, r, "actions", "runs", run, "attempts", _, "jobs"]) => json(
            StatusCode::OK,
            json!({"total_count": 1, "jobs": [{"id": 77, "name": "test", "status": "completed", "conclusion": "failure", "html_url": format!("https://github.com/{o}/{r}/actions/runs/{run}/job/77"), "steps": [
                {"name": "Set up job", "status": "completed", "conclusion": "success", "number": 1},
                {"name": "cargo test", "status": "completed", "conclusion": "failure", "number": 2}
            ]}]}),
        )
        .into_response(),
        ("GET", ["repos", _, _, "actions", "jobs", _, "logs"]) => (
            StatusCode::OK,
            [("content-type", "text/plain")],
            "2026-12-01T10:03:59.0000000Z test tests::checkout ... FAILED\n2026-12-01T10:04:00.0000000Z ##[error]Process completed with exit code 101.\n".to_string(),
        )
            .into_response(),
        ("GET", ["repos", _, _, "hooks"]) => json(
            StatusCode::OK,
            json!([{"id": 7, "config": {"url": "https://rehearsal.execute-api.us-east-1.amazonaws.com/github/webhook", "content_type": "json"}, "events": ["workflow_run", "deployment_status"]}]),
        )
        .into_response(),
        ("GET", ["repos", _, _, "hooks", _, "deliveries"]) => json(StatusCode::OK, json!([])).into_response(),
        ("GET", ["repos", _, _, "actions", "runs"]) => {
            json(StatusCode::OK, json!({"total_count": 0, "workflow_runs": []})).into_response()
        }
        _ => json(
            StatusCode::NOT_FOUND,
            json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
        )
        .into_response(),
    }
}
