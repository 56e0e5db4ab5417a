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

/// The `bootstrap` `sam build` made for `function` (`$VALINE_BOOTSTRAP_DIR/<function>/bootstrap`),
/// when `VALINE_BOOTSTRAP_DIR` names that output. `None` when it is not set; a panic naming the
/// file when it is set and the file is missing.
pub fn built_bootstrap(function: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("VALINE_BOOTSTRAP_DIR")?;
    let path = PathBuf::from(dir).join(function).join("bootstrap");
    assert!(path.is_file(), "{} is missing: did sam build run?", path.display());
    Some(path)
}

/// A handler to run under the Runtime API: the bootstrap `sam build` made for `function` when
/// `VALINE_BOOTSTRAP_DIR` is set (what `sam deploy` zips; `.ci/run` sets it), else the release
/// build of `bin`.
pub fn handler_binary(function: &str, package: &str, bin: &str) -> PathBuf {
    built_bootstrap(function).unwrap_or_else(|| release_binary(package, bin))
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
    /// The id the fake gave the message it created (POST to a channel), else 0: also 0 for a
    /// refused request and for a post answered by its enforced nonce.
    pub created_id: u64,
    /// The HTTP status the fake answered: 200, 204, or 429 when the channel's limit refused it.
    pub status: u16,
    /// A post whose enforced `nonce` was already seen in its channel: the message the fake
    /// answered with (created earlier), nothing created now.
    pub replay_of: Option<u64>,
    /// When the fake answered it.
    pub at: Instant,
}

impl DiscordCall {
    /// Refused with a 429.
    pub fn rate_limited(&self) -> bool {
        self.status == 429
    }
}

/// Discord's per-channel limit on message creates and edits: `limit` requests per `per`, counted
/// per channel (Discord's major parameter) in one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelLimit {
    pub limit: u32,
    pub per: Duration,
}

/// The bucket id the fake names in `X-RateLimit-Bucket` for message creates and edits (Discord's
/// are opaque hashes, the same for every channel: the major parameter tells channels apart).
pub const FAKE_MESSAGE_BUCKET: &str = "5f0d7a1c3e9b48d2a6c4e8f1b3d5a7c9";

/// How long a post's enforced `nonce` is remembered in its channel (Discord: "within the past
/// few minutes").
pub const NONCE_WINDOW: Duration = Duration::from_secs(5 * 60);

/// One channel's bucket: the window opens at its first request and lasts `per`.
#[derive(Debug, Clone, Copy)]
struct Window {
    opened: Instant,
    used: u32,
}

/// What a bucket says about a request: its limit, what is left, and when it resets.
#[derive(Debug, Clone, Copy)]
struct Quota {
    limit: u32,
    remaining: u32,
    reset_after: Duration,
}

impl Quota {
    /// The `X-RateLimit-*` headers Discord sends with every answer on a limited route.
    fn headers(&self) -> Vec<(&'static str, String)> {
        // Discord's seconds carry milliseconds; a bucket never says it resets in 0 s.
        let reset_after = self.reset_after.as_secs_f64().max(0.001);
        let reset_at = std::time::SystemTime::now()
            .checked_add(self.reset_after)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        vec![
            ("x-ratelimit-limit", self.limit.to_string()),
            ("x-ratelimit-remaining", self.remaining.to_string()),
            ("x-ratelimit-reset", format!("{reset_at:.3}")),
            ("x-ratelimit-reset-after", format!("{reset_after:.3}")),
            ("x-ratelimit-bucket", FAKE_MESSAGE_BUCKET.to_string()),
        ]
    }
}

/// Everything the fake knows, behind one lock: a request is decided (limit, nonce, id) and
/// recorded in one step, so concurrent requests see each other as they would in Discord.
#[derive(Debug)]
struct Ledger {
    calls: Vec<DiscordCall>,
    next_id: u64,
    /// Channel → its message bucket (only with a limit).
    windows: HashMap<String, Window>,
    /// (channel, nonce) of a post with `enforce_nonce` → the message it created, and when.
    nonces: HashMap<(String, String), (u64, Instant)>,
}

impl Ledger {
    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Counts a request against `channel`'s bucket: `Ok` with what is left, or `Err` when the
    /// bucket is exhausted until its reset.
    fn take(&mut self, channel: &str, limit: ChannelLimit, now: Instant) -> Result<Quota, Quota> {
        let w = self.windows.entry(channel.to_string()).or_insert(Window { opened: now, used: 0 });
        let closes = |w: &Window| w.opened.checked_add(limit.per).unwrap_or(w.opened);
        if now >= closes(w) {
            *w = Window { opened: now, used: 0 };
        }
        let closes = closes(w);
        let reset_after = closes.saturating_duration_since(now);
        if w.used < limit.limit {
            w.used += 1;
            Ok(Quota { limit: limit.limit, remaining: limit.limit - w.used, reset_after })
        } else {
            Err(Quota { limit: limit.limit, remaining: 0, reset_after })
        }
    }

    /// The message an earlier post in `channel` with the same enforced nonce created, within
    /// [`NONCE_WINDOW`].
    fn seen(&mut self, channel: &str, nonce: &str, now: Instant) -> Option<u64> {
        self.nonces.retain(|_, (_, at)| now.saturating_duration_since(*at) < NONCE_WINDOW);
        self.nonces.get(&(channel.to_string(), nonce.to_string())).map(|(id, _)| *id)
    }
}

struct FakeDiscordState {
    ledger: std::sync::Mutex<Ledger>,
    limit: Option<ChannelLimit>,
}

impl FakeDiscordState {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// An in-process Discord API (`DISCORD_API_BASE`): answers posts, edits, replies, DMs and
/// interaction follow-ups the way Discord does, and records each call. A post with
/// `"enforce_nonce": true` whose `nonce` was seen in its channel within [`NONCE_WINDOW`] is
/// answered with the message the first one created, and creates nothing. Started with
/// [`FakeDiscord::start_limited`], it also enforces a per-channel limit on message creates and
/// edits, with Discord's `X-RateLimit-*` headers and its 429 answer.
pub struct FakeDiscord {
    state: Arc<FakeDiscordState>,
    pub addr: std::net::SocketAddr,
    _server: tokio::task::JoinHandle<()>,
}

impl FakeDiscord {
    /// No rate limit.
    pub async fn start() -> Self {
        Self::serve(None).await
    }

    /// Message creates and edits (`POST /channels/{c}/messages`, replies included, and `PATCH
    /// /channels/{c}/messages/{m}`) limited to `limit` per `per` in each channel, as Discord limits
    /// them (5 per 5 s): past it, Discord's 429 with `retry_after` and `Retry-After`; every
    /// answer on those routes carries `X-RateLimit-*` with what is left.
    pub async fn start_limited(limit: u32, per: Duration) -> Self {
        Self::serve(Some(ChannelLimit { limit, per })).await
    }

    async fn serve(limit: Option<ChannelLimit>) -> Self {
        let state = Arc::new(FakeDiscordState {
            ledger: std::sync::Mutex::new(Ledger {
                calls: Vec::new(),
                next_id: 1_400_000_000_000_000_000,
                windows: HashMap::new(),
                nonces: HashMap::new(),
            }),
            limit,
        });
        let app = Router::new().fallback(fake_discord).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake Discord");
        let addr = listener.local_addr().expect("local address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { state, addr, _server: server }
    }

    /// `DISCORD_API_BASE`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request, in the order answered (refused ones and nonce replays included).
    pub fn calls(&self) -> Vec<DiscordCall> {
        self.state.ledger().calls.clone()
    }

    /// Messages created in a channel (`POST /channels/{c}/messages`), replies included; not the
    /// posts refused with a 429 nor those answered by an enforced nonce (they created nothing).
    pub fn posts(&self) -> Vec<DiscordCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == "POST" && c.path.contains("/channels/") && c.created_id != 0)
            .collect()
    }

    /// How many requests were refused with a 429.
    pub fn rate_limited(&self) -> usize {
        self.state.ledger().calls.iter().filter(|c| c.rate_limited()).count()
    }

    /// Posts answered by their enforced nonce: sent again, created nothing.
    pub fn replays(&self) -> Vec<DiscordCall> {
        self.calls().into_iter().filter(|c| c.replay_of.is_some()).collect()
    }
}

async fn fake_discord(
    State(state): State<Arc<FakeDiscordState>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let segments: Vec<&str> = path.trim_start_matches("/api/v10/").split('/').collect();
    let now = Instant::now();
    // One lock for the decision and the record: the limit, the nonce and the id are decided as
    // one step per request, as Discord does.
    let mut ledger = state.ledger();
    let mut created_id = 0;
    let mut replay_of = None;
    let limited_channel = match (method.as_str(), segments.as_slice()) {
        ("POST", ["channels", channel, "messages"]) | ("PATCH", ["channels", channel, "messages", _]) => {
            Some(channel.to_string())
        }
        _ => None,
    };
    let quota = match (state.limit, &limited_channel) {
        (Some(limit), Some(channel)) => match ledger.take(channel, limit, now) {
            Ok(quota) => Some(quota),
            Err(quota) => {
                let retry_after = quota.reset_after.as_secs_f64().max(0.001);
                ledger.calls.push(DiscordCall {
                    method: method.to_string(),
                    path,
                    body,
                    created_id: 0,
                    status: 429,
                    replay_of: None,
                    at: now,
                });
                let mut headers = quota.headers();
                headers.push(("retry-after", (retry_after.ceil() as u64).max(1).to_string()));
                headers.push(("x-ratelimit-scope", "user".to_string()));
                let answer = json!({"message": "You are being rate limited.", "retry_after": (retry_after * 1000.0).round() / 1000.0, "global": false, "code": 0});
                return answer_with(StatusCode::TOO_MANY_REQUESTS, &headers, answer);
            }
        },
        _ => None,
    };
    let mut status = StatusCode::OK;
    let answer = match (method.as_str(), segments.as_slice()) {
        ("POST", ["channels", channel, "messages"]) => {
            let nonce = valine_domain::message::enforced_nonce(&body);
            match nonce.as_deref().and_then(|n| ledger.seen(channel, n, now)) {
                Some(first) => {
                    replay_of = Some(first);
                    json!({"id": first.to_string(), "channel_id": channel, "nonce": nonce})
                }
                None => {
                    created_id = ledger.new_id();
                    if let Some(n) = nonce {
                        ledger.nonces.insert((channel.to_string(), n), (created_id, now));
                    }
                    json!({"id": created_id.to_string(), "channel_id": channel, "content": body["content"]})
                }
            }
        }
        ("PATCH", ["channels", channel, "messages", message]) => json!({"id": message, "channel_id": channel}),
        ("POST", ["users", "@me", "channels"]) => {
            json!({"id": format!("9{}", body["recipient_id"].as_str().unwrap_or("1")), "type": 1})
        }
        ("POST", ["webhooks", _, _]) => {
            created_id = ledger.new_id();
            json!({"id": created_id.to_string(), "channel_id": "100000000000000003"})
        }
        ("PATCH", ["webhooks", ..]) => json!({"id": "1", "channel_id": "100000000000000003"}),
        ("DELETE", _) => {
            status = StatusCode::NO_CONTENT;
            Value::Null
        }
        _ => json!({"message": "unknown route in the fake Discord", "code": 0}),
    };
    ledger.calls.push(DiscordCall {
        method: method.to_string(),
        path,
        body,
        created_id,
        status: status.as_u16(),
        replay_of,
        at: now,
    });
    drop(ledger);
    let headers = quota.map(|q| q.headers()).unwrap_or_default();
    if status == StatusCode::NO_CONTENT {
        return (status, header_map(&headers)).into_response();
    }
    answer_with(status, &headers, answer)
}

fn header_map(headers: &[(&'static str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        if let Ok(v) = v.parse() {
            map.insert(*k, v);
        }
    }
    map
}

fn answer_with(status: StatusCode, headers: &[(&'static str, String)], body: Value) -> Response {
    let mut map = header_map(headers);
    map.insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
    (status, map, body.to_string()).into_response()
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

#[cfg(test)]
mod fake_discord_tests {
    use super::*;

    async fn post(d: &FakeDiscord, channel: u64, body: Value) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}/api/v10/channels/{channel}/messages", d.base()))
            .json(&body)
            .send()
            .await
            .expect("the fake answers")
    }

    async fn edit(d: &FakeDiscord, channel: u64, message: &str) -> reqwest::Response {
        reqwest::Client::new()
            .patch(format!("{}/api/v10/channels/{channel}/messages/{message}", d.base()))
            .json(&json!({"content": "edited"}))
            .send()
            .await
            .expect("the fake answers")
    }

    fn header(r: &reqwest::Response, name: &str) -> String {
        r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }

    #[tokio::test]
    async fn a_channel_takes_its_limit_then_answers_429_as_discord_does() {
        let d = FakeDiscord::start_limited(3, Duration::from_secs(60)).await;
        for left in [2, 1, 0] {
            let r = post(&d, 7, json!({"content": "hi"})).await;
            assert_eq!(r.status(), 200);
            assert_eq!(header(&r, "x-ratelimit-limit"), "3");
            assert_eq!(header(&r, "x-ratelimit-remaining"), left.to_string());
            assert_eq!(header(&r, "x-ratelimit-bucket"), FAKE_MESSAGE_BUCKET);
            let reset_after: f64 = header(&r, "x-ratelimit-reset-after").parse().unwrap();
            assert!(reset_after > 0.0 && reset_after <= 60.0, "{reset_after}");
            let reset: f64 = header(&r, "x-ratelimit-reset").parse().unwrap();
            assert!(reset > 1.7e9, "{reset}");
        }
        // An edit counts in the same bucket.
        let r = edit(&d, 7, "1").await;
        assert_eq!(r.status(), 429);
        assert_eq!(header(&r, "x-ratelimit-remaining"), "0");
        assert_eq!(header(&r, "x-ratelimit-scope"), "user");
        let retry_header: u64 = header(&r, "retry-after").parse().unwrap();
        assert!((1..=60).contains(&retry_header), "{retry_header}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["message"], "You are being rate limited.");
        assert_eq!(body["global"], false);
        assert_eq!(body["code"], 0);
        let retry_after = body["retry_after"].as_f64().unwrap();
        assert!(retry_after > 0.0 && retry_after <= 60.0, "{retry_after}");
        // Another channel has its own bucket.
        assert_eq!(post(&d, 8, json!({"content": "hi"})).await.status(), 200);
        assert_eq!(post(&d, 7, json!({"content": "again"})).await.status(), 429);
        assert_eq!(d.rate_limited(), 2);
        assert_eq!(d.posts().len(), 4, "refused posts created nothing");
        assert!(d.calls().iter().filter(|c| c.rate_limited()).all(|c| c.created_id == 0));
    }

    #[tokio::test]
    async fn a_bucket_opens_again_after_its_window() {
        let d = FakeDiscord::start_limited(1, Duration::from_millis(200)).await;
        assert_eq!(post(&d, 7, json!({"content": "one"})).await.status(), 200);
        let refused = post(&d, 7, json!({"content": "two"})).await;
        assert_eq!(refused.status(), 429);
        let body: Value = refused.json().await.unwrap();
        let wait = Duration::from_secs_f64(body["retry_after"].as_f64().unwrap());
        // The fake's own clock decides; waiting out what it asked for (and a little) must do.
        tokio::time::sleep(wait + Duration::from_millis(20)).await;
        let r = post(&d, 7, json!({"content": "two"})).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-ratelimit-remaining"), "0");
        assert_eq!(d.posts().len(), 2);
    }

    #[tokio::test]
    async fn an_enforced_nonce_seen_in_the_channel_answers_the_first_message() {
        let d = FakeDiscord::start().await;
        let card = json!({"content": "card", "nonce": "abc", "enforce_nonce": true});
        let first: Value = post(&d, 7, card.clone()).await.json().await.unwrap();
        let again = post(&d, 7, card.clone()).await;
        assert_eq!(again.status(), 200);
        assert!(again.headers().get("x-ratelimit-limit").is_none(), "no limit, no headers");
        let again: Value = again.json().await.unwrap();
        assert_eq!(again["id"], first["id"]);
        // Another channel, or a nonce not enforced, is another message.
        let elsewhere: Value = post(&d, 8, card).await.json().await.unwrap();
        assert_ne!(elsewhere["id"], first["id"]);
        post(&d, 7, json!({"content": "card", "nonce": "abc"})).await;
        post(&d, 7, json!({"content": "card", "nonce": "abc"})).await;
        assert_eq!(d.posts().len(), 4);
        let replays = d.replays();
        assert_eq!(replays.len(), 1);
        assert_eq!(replays[0].created_id, 0);
        assert_eq!(Some(replays[0].replay_of.unwrap().to_string()), first["id"].as_str().map(str::to_string));
    }

    #[tokio::test]
    async fn concurrent_posts_with_one_nonce_create_one_message() {
        let d = FakeDiscord::start_limited(50, Duration::from_secs(60)).await;
        let url = format!("{}/api/v10/channels/7/messages", d.base());
        let card = json!({"content": "card", "nonce": 42, "enforce_nonce": true});
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (url, card) = (url.clone(), card.clone());
                tokio::spawn(async move {
                    let r = reqwest::Client::new().post(url).json(&card).send().await.expect("the fake answers");
                    r.json::<Value>().await.expect("a JSON answer")
                })
            })
            .collect();
        let mut ids = std::collections::HashSet::new();
        for t in tasks {
            ids.insert(t.await.expect("the post")["id"].to_string());
        }
        assert_eq!(ids.len(), 1, "{ids:?}");
        assert_eq!(d.posts().len(), 1);
        assert_eq!(d.replays().len(), 9);
    }
}
