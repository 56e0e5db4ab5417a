//! The GitHub handler, in process: signed deliveries in, answers out, with Discord played by a
//! wiremock server that counts alert posts and fails the test on any request nobody expected.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};
use valine_domain::config::Config;
use valine_domain::logging::Capture;
use valine_domain::metrics::Metrics;
use valine_github::{App, AppParts};
use valine_service::http::HttpRequest;
use valine_service::testing::{capture_logs, config_from, down_stores, fail_on_unexpected, github_signature};
use valine_store::embedded::EmbeddedStore;
use valine_store::{DiagnoseCorrelation, Stores};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SECRET: &str = "webhook-secret-canary";
const ALERT_CHANNEL: u64 = 1184576487578214464;

fn config(discord: &MockServer, overrides: &[(&str, &str)]) -> Config {
    let base = [
        ("GITHUB_WEBHOOK_SECRET", SECRET.to_string()),
        ("DISCORD_BOT_TOKEN", "bot-token".to_string()),
        ("DISCORD_API_BASE", discord.uri()),
        ("ENABLE_ALERTS", "true".to_string()),
        ("ALERT_CHANNEL_ID", ALERT_CHANNEL.to_string()),
        ("ALERT_MENTION_ROLE_ID", "4242".to_string()),
        ("ALERT_BRANCHES", "main,release/*".to_string()),
    ];
    config_from(&base, overrides)
}

fn app(config: Config, stores: Stores) -> App {
    App::new(AppParts {
        discord: valine_clients::discord_api::from_config(&config, Duration::from_secs(3)),
        config,
        stores,
        metrics: Metrics::new("github-handler", Arc::new(Capture::default())),
    })
    .unwrap()
}

struct Harness {
    app: App,
    discord: MockServer,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new(overrides: &[(&str, &str)]) -> Self {
        let discord = MockServer::start().await;
        fail_on_unexpected(&discord).await;
        let dir = tempfile::tempdir().unwrap();
        let stores =
            Stores::from_adapter(Arc::new(EmbeddedStore::open(&dir.path().join("v.redb")).unwrap()), "embedded");
        let app = app(config(&discord, overrides), stores);
        Self { app, discord, _dir: dir }
    }

    async fn deliver(&self, event: &str, delivery: &str, payload: &Value) -> (StatusCode, Value) {
        deliver(&self.app, event, delivery, payload).await
    }

    async fn alert_posts(&self) -> Vec<Value> {
        let path = format!("/api/v10/channels/{ALERT_CHANNEL}/messages");
        self.discord
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.url.path() == path)
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    }
}

fn signed(event: &str, delivery: &str, body: &[u8]) -> HttpRequest {
    let mut h = HeaderMap::new();
    h.insert("x-github-event", HeaderValue::from_str(event).unwrap());
    h.insert("x-github-delivery", HeaderValue::from_str(delivery).unwrap());
    h.insert("x-hub-signature-256", HeaderValue::from_str(&github_signature(SECRET, body)).unwrap());
    h.insert("content-type", HeaderValue::from_static("application/json"));
    HttpRequest::new(Method::POST, "/github/webhook", h, body.to_vec())
}

async fn deliver(app: &App, event: &str, delivery: &str, payload: &Value) -> (StatusCode, Value) {
    let res = app.handle(signed(event, delivery, payload.to_string().as_bytes())).await;
    (res.status, serde_json::from_str(&res.body).unwrap())
}

async fn accept_posts(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(format!("/api/v10/channels/{ALERT_CHANNEL}/messages")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "1400000000000000001", "channel_id": ALERT_CHANNEL.to_string()})),
        )
        .mount(server)
        .await;
}

/// A github.com `workflow_run` delivery.
fn run(id: u64, status: &str, conclusion: Option<&str>, branch: &str, title: &str, updated_at: &str) -> Value {
    json!({
        "action": if status == "completed" { "completed" } else if status == "in_progress" { "in_progress" } else { "requested" },
        "workflow_run": {
            "id": id, "name": "CI", "display_title": title, "head_branch": branch,
            "head_sha": "3f1c9a7e0d2b4c6a8e9f0a1b2c3d4e5f60718293", "path": ".github/workflows/ci.yml",
            "run_number": 42, "run_attempt": 1, "event": "push", "status": status, "conclusion": conclusion, "workflow_id": 7,
            "html_url": format!("https://github.com/acme/widget/actions/runs/{id}"),
            "created_at": "2026-11-22T14:00:00Z", "updated_at": updated_at, "run_started_at": "2026-11-22T14:00:05Z",
            "actor": {"login": "octocat"}, "triggering_actor": {"login": "octocat"}, "pull_requests": []
        },
        "workflow": {"id": 7, "name": "CI", "path": ".github/workflows/ci.yml", "state": "active"},
        "repository": {"id": 1, "full_name": "acme/widget", "name": "widget", "owner": {"login": "acme"}},
        "sender": {"login": "octocat"}
    })
}

fn failure(id: u64) -> Value {
    run(id, "completed", Some("failure"), "main", "fix: retry uploads", "2026-11-22T14:05:00Z")
}

fn success(id: u64) -> Value {
    run(id, "completed", Some("success"), "main", "fix: really retry uploads", "2026-11-22T14:25:00Z")
}

// ---------------------------------------------------------------- protocol

#[tokio::test(flavor = "current_thread")]
async fn ping_and_ignored_events() {
    let (sink, _guard) = capture_logs("github-handler");
    let h = Harness::new(&[]).await;
    let (status, body) =
        h.deliver("ping", "d-1", &json!({"zen": "Design for failure.", "hook_id": 30, "hook": {"id": 30}})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["hook_id"], 30);
    let logs = sink.text();
    let line = logs.lines().find(|l| l.contains("webhook ping")).expect("a `webhook ping` log line");
    let line: Value = serde_json::from_str(line).unwrap();
    assert_eq!(line["hook_id"], 30, "{line}");
    let (status, body) = h.deliver("push", "d-2", &json!({"ref": "refs/heads/main"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["status"], "ignored");
}

#[tokio::test]
async fn refusals_get_their_4xx() {
    let h = Harness::new(&[]).await;
    let body = br#"{"zen":"x"}"#;
    let mut sha1 = signed("ping", "d", body);
    sha1.headers.remove("x-hub-signature-256");
    sha1.headers.insert("x-hub-signature", HeaderValue::from_static("sha1=0123456789012345678901234567890123456789"));
    assert_eq!(h.app.handle(sha1).await.status, StatusCode::UNAUTHORIZED);
    let mut none = signed("ping", "d", body);
    none.headers.remove("x-hub-signature-256");
    assert_eq!(h.app.handle(none).await.status, StatusCode::UNAUTHORIZED);
    let mut bad = signed("ping", "d", body);
    bad.body = bytes::Bytes::from_static(br#"{"zen":"y"}"#);
    assert_eq!(h.app.handle(bad).await.status, StatusCode::UNAUTHORIZED);
    let mut no_event = signed("ping", "d", body);
    no_event.headers.remove("x-github-event");
    assert_eq!(h.app.handle(no_event).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(h.app.handle(signed("ping", "d", b"not json")).await.status, StatusCode::BAD_REQUEST);
    let huge = vec![b' '; 7 << 20];
    assert_eq!(h.app.handle(signed("push", "d", &huge)).await.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn form_encoded_deliveries_are_read() {
    let h = Harness::new(&[]).await;
    let payload = json!({"zen": "Speak like a human.", "hook_id": 7});
    let body =
        format!("payload={}", url::form_urlencoded::byte_serialize(payload.to_string().as_bytes()).collect::<String>());
    let mut req = signed("ping", "d-form", body.as_bytes());
    req.headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded"));
    let res = h.app.handle(req).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
}

// ---------------------------------------------------------------- incidents

const MESSAGE_ID: &str = "1400000000000000001";

fn message_path() -> String {
    format!("/api/v10/channels/{ALERT_CHANNEL}/messages/{MESSAGE_ID}")
}

/// Accepts edits of the incident message.
async fn accept_edits(server: &MockServer) {
    Mock::given(method("PATCH"))
        .and(path(message_path()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": MESSAGE_ID, "channel_id": ALERT_CHANNEL.to_string()})),
        )
        .mount(server)
        .await;
}

/// Run `number` of CI on `branch`, completed with `conclusion`.
fn numbered(number: u64, conclusion: &str, branch: &str) -> Value {
    let mut r = run(1000 + number, "completed", Some(conclusion), branch, "t", "2026-11-22T14:05:00Z");
    r["workflow_run"]["run_number"] = json!(number);
    r
}

fn fields(message: &Value) -> std::collections::HashMap<String, String> {
    message["embeds"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap().to_string(), f["value"].as_str().unwrap().to_string()))
        .collect()
}

impl Harness {
    async fn requests(&self, verb: &str, p: &str) -> Vec<Value> {
        self.discord
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method.as_str() == verb && r.url.path() == p)
            .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
            .collect()
    }
    async fn edits(&self) -> Vec<Value> {
        self.requests("PATCH", &message_path()).await
    }
}

#[tokio::test]
async fn a_failure_posts_one_incident_message_with_everything_an_operator_needs() {
    let h = Harness::new(&[("GITHUB_DISCORD_USERS", "octocat=80351110224678912,someone=1")]).await;
    accept_posts(&h.discord).await;
    let (status, body) = h.deliver("workflow_run", "d-10", &failure(100)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["alert"], "sent");
    // GitHub redelivers the same delivery: a duplicate, nothing posted
    let (status, again) = h.deliver("workflow_run", "d-10", &failure(100)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["status"], "duplicate");
    // the same run replayed under a new delivery id: the incident has seen it, nothing changes
    let (_, replay) = h.deliver("workflow_run", "d-11", &failure(100)).await;
    assert_eq!(replay["alert"], "nothing", "{replay}");
    let posts = h.alert_posts().await;
    assert_eq!(posts.len(), 1);
    let embed = &posts[0]["embeds"][0];
    let f = fields(&posts[0]);
    let run_url = "https://github.com/acme/widget/actions/runs/100";
    let trace = format!("`{}`", body["trace_id"].as_str().unwrap());
    for (name, value) in [
        ("Repository", "acme/widget"),
        ("Workflow", "CI"),
        ("Branch", "main"),
        ("Commit", "`3f1c9a7`"),
        ("Actor", "octocat"),
        ("Conclusion", "failure"),
        ("Run", &format!("[#42]({run_url})")),
        ("Trace", &trace),
    ] {
        assert_eq!(f.get(name).map(String::as_str), Some(value), "{name} in {embed}");
    }
    assert_eq!(embed["url"], run_url);
    // the culprit is pinged, and only they
    assert_eq!(posts[0]["content"], "<@80351110224678912>");
    assert_eq!(posts[0]["allowed_mentions"], json!({"parse": [], "users": ["80351110224678912"]}));
    let buttons = posts[0]["components"].to_string();
    for label in ["Re-run failed jobs", "Acknowledge", "Mute 1 h", "Mute until fixed"] {
        assert!(buttons.contains(label), "{label} in {buttons}");
    }
}

#[tokio::test]
async fn later_failures_edit_the_one_message_and_a_newer_success_resolves_it_with_one_reply() {
    let h = Harness::new(&[]).await;
    accept_posts(&h.discord).await;
    accept_edits(&h.discord).await;
    for (i, n) in [11u64, 12, 13].iter().enumerate() {
        let (status, body) = h.deliver("workflow_run", &format!("d-2{i}"), &numbered(*n, "failure", "main")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["alert"], if i == 0 { "sent" } else { "edited" }, "{body}");
    }
    assert_eq!(h.alert_posts().await.len(), 1, "one POST");
    let edits = h.edits().await;
    assert_eq!(edits.len(), 2, "then PATCH edits of the same message");
    let last = fields(edits.last().unwrap());
    assert!(last["Failures"].starts_with("3 since"), "{last:?}");
    assert!(last["Latest failing run"].contains("#13"), "{last:?}");
    // an older success (run 10 finished late) resolves nothing
    let (_, body) = h.deliver("workflow_run", "d-25", &numbered(10, "success", "main")).await;
    assert_eq!(body["alert"], "nothing", "{body}");
    assert_eq!(h.edits().await.len(), 2);
    // a newer one does: the message edited to resolved, and one reply that references it
    let (_, body) = h.deliver("workflow_run", "d-26", &numbered(14, "success", "main")).await;
    assert_eq!(body["resolved"], "sent", "{body}");
    let edits = h.edits().await;
    let resolved = edits.last().unwrap();
    assert!(resolved["embeds"][0]["title"].as_str().unwrap().starts_with("✅ Resolved"), "{resolved}");
    assert_eq!(resolved["components"], json!([]), "a resolved incident has no buttons");
    let f = fields(resolved);
    assert!(f["Fixed by"].contains("#14") && f.contains_key("Time to recover"), "{f:?}");
    let posts = h.alert_posts().await;
    assert_eq!(posts.len(), 2, "the incident message and one reply");
    assert_eq!(posts[1]["message_reference"]["message_id"], MESSAGE_ID);
    assert_eq!(posts[1]["allowed_mentions"], json!({"parse": []}));
    // the next success has nothing to resolve
    let (_, body) = h.deliver("workflow_run", "d-27", &numbered(15, "success", "main")).await;
    assert!(body.get("resolved").is_none(), "{body}");
    assert_eq!(h.alert_posts().await.len(), 2);
}

#[tokio::test]
async fn failure_of_run_11_then_success_of_run_10_resolves_nothing() {
    let h = Harness::new(&[]).await;
    accept_posts(&h.discord).await;
    h.deliver("workflow_run", "d-28", &numbered(11, "failure", "main")).await;
    let (_, body) = h.deliver("workflow_run", "d-29", &numbered(10, "success", "main")).await;
    assert!(body.get("resolved").is_none(), "{body}");
    assert_eq!(h.alert_posts().await.len(), 1);
    // and a success with no incident at all posts nothing
    let h2 = Harness::new(&[]).await;
    h2.deliver("workflow_run", "d-43", &success(403)).await;
    assert!(h2.alert_posts().await.is_empty());
}

#[tokio::test]
async fn a_post_discord_refuses_is_queued_and_sent_once_by_the_outbox() {
    let h = Harness::new(&[]).await;
    Mock::given(method("POST"))
        .and(path(format!("/api/v10/channels/{ALERT_CHANNEL}/messages")))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"message": "Internal Server Error", "code": 0})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&h.discord)
        .await;
    accept_posts(&h.discord).await;
    let (status, body) = h.deliver("workflow_run", "d-30", &failure(300)).await;
    // The delivery's work is done (the incident and its card are written): GitHub is answered
    // 200, and the card waits in the outbox.
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["alert"], "queued", "{body}");
    assert!(h.app.incidents.knows_pending());
    // A redelivery of the same delivery is a duplicate: it does not post.
    let (status, again) = h.deliver("workflow_run", "d-30", &failure(300)).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(h.alert_posts().await.len(), 1, "{again}");
    // Once its backoff (1 s) is over, the drain posts it, with the same nonce as the first try.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = h.app.incidents.drain(valine_service::deadline::Deadline::after(Duration::from_secs(5))).await;
    assert_eq!((report.pending, report.sent, report.left), (1, 1, 0), "{report:?}");
    let posts = h.alert_posts().await;
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0]["nonce"], posts[1]["nonce"]);
    assert_eq!(posts[1]["enforce_nonce"], true);
    assert!(posts[1]["embeds"][0]["title"].as_str().unwrap().starts_with('❌'), "{}", posts[1]);
    // Nothing is left, and a second drain sends nothing.
    let report = h.app.incidents.drain(valine_service::deadline::Deadline::after(Duration::from_secs(5))).await;
    assert_eq!(report.pending, 0, "{report:?}");
    assert!(!h.app.incidents.knows_pending());
    assert_eq!(h.alert_posts().await.len(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn muted_the_next_failure_posts_nothing_and_the_log_says_so() {
    let (sink, _guard) = capture_logs("github-handler");
    let h = Harness::new(&[("ADMIN_USER_IDS", "42")]).await;
    accept_posts(&h.discord).await;
    accept_edits(&h.discord).await;
    let (_, body) = h.deliver("workflow_run", "d-34", &numbered(1, "failure", "main")).await;
    let incident = body["incident"].as_str().unwrap().to_string();
    let admin = valine_domain::authz::Caller { user_id: 42, roles: None };
    let deadline = valine_service::deadline::Deadline::after(Duration::from_secs(5));
    let muted = h
        .app
        .incidents
        .mute(&format!("{incident}-1"), valine_domain::custom_id::MuteFor::UntilFixed, admin, "t-mute", deadline)
        .await;
    assert!(matches!(muted, valine_service::incidents::PressOutcome::Done(_)), "{muted:?}");
    let (_, body) = h.deliver("workflow_run", "d-35", &numbered(2, "failure", "main")).await;
    assert_eq!(body["alert"], "muted", "{body}");
    assert_eq!(h.alert_posts().await.len(), 1, "nothing posted");
    let line =
        sink.text().lines().find(|l| l.contains("Alert muted")).map(str::to_string).expect("an `Alert muted` line");
    assert!(line.contains("acme/widget|CI|main"), "{line}");
    // still tracked: a newer success resolves it, with its one reply
    let (_, body) = h.deliver("workflow_run", "d-36", &numbered(3, "success", "main")).await;
    assert_eq!(body["resolved"], "sent", "{body}");
}

#[tokio::test]
async fn other_branches_and_conclusions_do_not_alert() {
    let h = Harness::new(&[]).await;
    h.deliver(
        "workflow_run",
        "d-50",
        &run(500, "completed", Some("failure"), "feature/x", "t", "2026-11-22T14:05:00Z"),
    )
    .await;
    h.deliver("workflow_run", "d-51", &run(501, "completed", Some("cancelled"), "main", "t", "2026-11-22T14:05:00Z"))
        .await;
    h.deliver("workflow_run", "d-52", &run(502, "in_progress", None, "main", "t", "2026-11-22T14:05:00Z")).await;
    assert!(h.alert_posts().await.is_empty());
    assert!(h.app.stores.incidents.list_incidents(10).await.unwrap().is_empty(), "nothing opened");
}

#[tokio::test]
async fn deployment_failures_open_an_incident_that_mentions_the_deployer() {
    let h = Harness::new(&[("GITHUB_DISCORD_USERS", "deployer=80351110224678912")]).await;
    accept_posts(&h.discord).await;
    accept_edits(&h.discord).await;
    let payload = |state: &str, id: u64, at: &str| {
        json!({
            "action": "created",
            "deployment_status": {"id": id, "state": state, "environment": "production", "description": "health check failed", "target_url": "https://deploy.example.com/9", "creator": {"login": "deployer"}, "created_at": at, "updated_at": at},
            "deployment": {"ref": "main", "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", "environment": "production", "task": "deploy"},
            "repository": {"full_name": "acme/widget"},
            "sender": {"login": "deployer"}
        })
    };
    let (status, body) = h.deliver("deployment_status", "d-60", &payload("failure", 2, "2026-11-22T14:00:00Z")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["alert"], "sent");
    let posts = h.alert_posts().await;
    assert_eq!(posts[0]["content"], "<@80351110224678912>");
    assert_eq!(posts[0]["allowed_mentions"], json!({"parse": [], "users": ["80351110224678912"]}));
    assert!(fields(&posts[0])["Environment"] == "production");
    // an older success (created before the failure) resolves nothing; a newer one does
    let (_, body) = h.deliver("deployment_status", "d-61", &payload("success", 1, "2026-11-22T13:59:00Z")).await;
    assert_eq!(body["alert"], "nothing", "{body}");
    let (_, body) = h.deliver("deployment_status", "d-62", &payload("success", 3, "2026-11-22T14:10:00Z")).await;
    assert_eq!(body["resolved"], "sent", "{body}");
}

#[tokio::test(flavor = "current_thread")]
async fn with_alerts_off_nothing_is_posted_and_the_log_says_why() {
    let (sink, _guard) = capture_logs("github-handler");
    let h = Harness::new(&[("ENABLE_ALERTS", "false")]).await;
    let (status, body) = h.deliver("workflow_run", "d-70", &failure(700)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["alert"], "skipped");
    assert!(h.alert_posts().await.is_empty());
    assert!(h.app.stores.incidents.list_incidents(10).await.unwrap().is_empty(), "nothing written");
    let logs = sink.text();
    let skipped = logs.lines().find(|l| l.contains("Alert skipped")).expect("an `Alert skipped` line");
    assert!(skipped.contains("ENABLE_ALERTS"), "{skipped}");
    assert!(skipped.contains("acme/widget|CI|main"), "{skipped}");
    assert!(!logs.contains(SECRET));
    let h = Harness::new(&[("ALERT_CHANNEL_ID", "")]).await;
    h.deliver("workflow_run", "d-71", &failure(701)).await;
    assert!(sink.text().contains("ALERT_CHANNEL_ID is not set"));
}

#[tokio::test(flavor = "current_thread")]
async fn without_a_bot_token_alerts_are_skipped_and_the_log_says_why() {
    let (sink, _guard) = capture_logs("github-handler");
    let h = Harness::new(&[("DISCORD_BOT_TOKEN", "")]).await;
    let (status, body) = h.deliver("workflow_run", "d-72", &failure(702)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["alert"], "skipped");
    assert!(h.alert_posts().await.is_empty());
    let logs = sink.text();
    let skipped = logs.lines().find(|l| l.contains("Alert skipped")).expect("an `Alert skipped` line");
    assert!(skipped.contains("DISCORD_BOT_TOKEN is not set"), "{skipped}");
}

#[tokio::test]
async fn a_forks_main_neither_alerts_nor_resolves_this_repositorys_main() {
    let h = Harness::new(&[]).await;
    accept_posts(&h.discord).await;
    accept_edits(&h.discord).await;
    let from_fork = |mut payload: Value| {
        payload["workflow_run"]["event"] = json!("pull_request");
        payload["workflow_run"]["head_repository"] = json!({"full_name": "mallory/widget"});
        payload
    };
    let (_, body) = h.deliver("workflow_run", "d-60", &from_fork(numbered(1, "failure", "main"))).await;
    assert!(body.get("alert").is_none(), "{body}");
    assert!(h.alert_posts().await.is_empty(), "a fork's failure is not this repository's");
    let (_, body) = h.deliver("workflow_run", "d-61", &numbered(2, "failure", "main")).await;
    assert_eq!(body["alert"], "sent");
    // a fork's green `main` does not end the real outage...
    let (_, body) = h.deliver("workflow_run", "d-62", &from_fork(numbered(3, "success", "main"))).await;
    assert!(body.get("resolved").is_none(), "{body}");
    // ...this repository's does, once
    let (_, body) = h.deliver("workflow_run", "d-63", &numbered(4, "success", "main")).await;
    assert_eq!(body["resolved"], "sent");
    assert_eq!(h.alert_posts().await.len(), 2);
}

// ---------------------------------------------------------------- diagnose progress

const DIAGNOSE_CORRELATION: &str = "6f1c2a4e-8b3d-4c5e-9f70-112233445566";

/// Stores a pending `/diagnose` correlation, as the Discord handler does when it dispatches.
async fn pending_diagnose(h: &Harness) {
    let now = valine_domain::clock::now_secs();
    h.app
        .stores
        .runs
        .put_correlation(&DiagnoseCorrelation {
            correlation_id: DIAGNOSE_CORRELATION.into(),
            application_id: 1290463189401731073,
            interaction_token: "diag-token".into(),
            user_id: "42".into(),
            trace_id: "t-diag".into(),
            created_at: now,
            expires_at: now + 600,
            frontend_url: Some("https://app.example.com/".into()),
            api_base: None,
            kind: Default::default(),
            git_ref: None,
        })
        .await
        .unwrap();
}

/// A `workflow_run` delivery of the dispatched diagnose workflow, named after the correlation.
fn diagnose_run(status: &str, conclusion: Option<&str>, updated: &str) -> Value {
    let mut r = run(900, status, conclusion, "main", &format!("diagnose {DIAGNOSE_CORRELATION}"), updated);
    r["workflow_run"]["event"] = json!("workflow_dispatch");
    r["workflow_run"]["path"] = json!(".github/workflows/diagnose.yml");
    r["workflow"] = json!({"id": 8, "name": "Diagnose", "path": ".github/workflows/diagnose.yml"});
    r
}

#[tokio::test]
async fn a_progress_edit_that_failed_is_put_right_by_the_redelivery() {
    let h = Harness::new(&[("ENABLE_ALERTS", "false")]).await;
    let edit = "/api/v10/webhooks/1290463189401731073/diag-token/messages/@original";
    Mock::given(method("PATCH"))
        .and(path(edit))
        .respond_with(ResponseTemplate::new(502))
        // the edit is idempotent, so the client itself tries twice
        .up_to_n_times(2)
        .expect(2)
        .mount(&h.discord)
        .await;
    Mock::given(method("PATCH"))
        .and(path(edit))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1", "channel_id": "2"})))
        .expect(1)
        .mount(&h.discord)
        .await;
    pending_diagnose(&h).await;
    let done = diagnose_run("completed", Some("success"), "2026-11-22T14:02:05Z");
    let (status, body) = h.deliver("workflow_run", "d-85", &done).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "incomplete");
    assert_eq!(body["diagnose"], "not_updated");
    // the same delivery again is handled, not taken as a duplicate
    let (status, body) = h.deliver("workflow_run", "d-85", &done).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["diagnose"], "updated");
}

fn is_edit(r: &Request) -> bool {
    r.method.as_str() == "PATCH"
        && r.url.path() == "/api/v10/webhooks/1290463189401731073/diag-token/messages/@original"
}

#[tokio::test]
async fn workflow_runs_of_a_pending_diagnose_edit_its_message() {
    let h = Harness::new(&[("ENABLE_ALERTS", "false")]).await;
    Mock::given(method("PATCH"))
        .and(path("/api/v10/webhooks/1290463189401731073/diag-token/messages/@original"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1", "channel_id": "2"})))
        .expect(3)
        .mount(&h.discord)
        .await;
    pending_diagnose(&h).await;
    let title = format!("diagnose {DIAGNOSE_CORRELATION}");
    // a run of another workflow that carries the id in its title (a pull request, say) is ignored
    let (_, impostor) = h
        .deliver(
            "workflow_run",
            "d-79",
            &run(899, "completed", Some("success"), "main", &title, "2026-11-22T14:00:00Z"),
        )
        .await;
    assert!(impostor.get("diagnose").is_none(), "{impostor}");
    let queued = diagnose_run("queued", None, "2026-11-22T14:00:00Z");
    let (_, body) = h.deliver("workflow_run", "d-80", &queued).await;
    assert_eq!(body["diagnose"], "updated");
    let running = diagnose_run("in_progress", None, "2026-11-22T14:00:30Z");
    h.deliver("workflow_run", "d-81", &running).await;
    // an older update arriving late changes nothing
    let (_, late) = h.deliver("workflow_run", "d-82", &queued).await;
    assert!(late.get("diagnose").is_none(), "{late}");
    let done = diagnose_run("completed", Some("success"), "2026-11-22T14:02:05Z");
    h.deliver("workflow_run", "d-83", &done).await;
    let edits: Vec<Value> = h
        .discord
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(is_edit)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(edits.len(), 3);
    assert!(edits[0].to_string().contains("Queued"));
    assert!(edits[1].to_string().contains("Running"));
    let last = edits[2].to_string();
    assert!(
        last.contains("Finished: success")
            && last.contains("2m 00s")
            && last.contains("actions/runs/900")
            && last.contains("t-diag"),
        "{last}"
    );
}

// ---------------------------------------------------------------- shared store

async fn shared_store_keeps_one_message(stores: Stores) {
    let discord = MockServer::start().await;
    fail_on_unexpected(&discord).await;
    Mock::given(method("POST"))
        .and(path(format!("/api/v10/channels/{ALERT_CHANNEL}/messages")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_millis(100))
                .set_body_json(json!({"id": "1", "channel_id": ALERT_CHANNEL.to_string()})),
        )
        .mount(&discord)
        .await;
    // a duplicate posted in a race is deleted by the container that lost the write
    Mock::given(method("DELETE")).respond_with(ResponseTemplate::new(204)).mount(&discord).await;
    let a = Arc::new(app(config(&discord, &[]), stores.clone()));
    let b = Arc::new(app(config(&discord, &[]), stores));
    // the same failure, delivered to two containers at once (GitHub sent it twice)
    let payload = failure(1000);
    let (ra, rb) =
        tokio::join!(deliver(&a, "workflow_run", "d-a", &payload), deliver(&b, "workflow_run", "d-b", &payload));
    let mut outcomes = [ra.1["alert"].as_str().unwrap().to_string(), rb.1["alert"].as_str().unwrap().to_string()];
    outcomes.sort();
    assert_eq!(outcomes, ["nothing", "sent"]);
    let requests = discord.received_requests().await.unwrap();
    let posts = requests.iter().filter(|r| r.method.as_str() == "POST").count();
    let deletes = requests.iter().filter(|r| r.method.as_str() == "DELETE").count();
    assert_eq!(posts - deletes, 1, "one message stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_sharing_the_embedded_store_keep_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let stores = Stores::from_adapter(Arc::new(EmbeddedStore::open(&dir.path().join("v.redb")).unwrap()), "embedded");
    shared_store_keeps_one_message(stores).await;
}

/// Fresh DynamoDB tables on the server at `AWS_ENDPOINT_URL`, or `None` (skipping) without one.
pub(crate) async fn dynamo_stores() -> Option<Stores> {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") else {
        assert!(
            std::env::var("VALINE_REQUIRE_DYNAMODB").as_deref() != Ok("1"),
            "VALINE_REQUIRE_DYNAMODB=1 but AWS_ENDPOINT_URL is not set"
        );
        eprintln!("skipping: set AWS_ENDPOINT_URL to a DynamoDB-compatible server (or run .ci/run)");
        return None;
    };
    let sdk = valine_store::dynamo::sdk_loader()
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(&endpoint)
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let names = valine_store::dynamo::TableNames {
        audit: format!("gh-audit-{id}"),
        runs: format!("gh-runs-{id}"),
        state: format!("gh-state-{id}"),
    };
    valine_store::dynamo::create_tables(&client, &names).await.unwrap();
    Some(Stores::from_adapter(Arc::new(valine_store::dynamo::DynamoStore::from_client(client, names)), "dynamodb"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_sharing_dynamodb_keep_one_message() {
    let Some(stores) = dynamo_stores().await else { return };
    shared_store_keeps_one_message(stores).await;
}

#[tokio::test]
async fn store_down_raises_one_store_alert_and_invites_a_redelivery() {
    let discord = MockServer::start().await;
    fail_on_unexpected(&discord).await;
    accept_posts(&discord).await;
    let a = app(config(&discord, &[]), down_stores());
    let (status, body) = deliver(&a, "workflow_run", "d-90", &failure(1100)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["alert"], "failed");
    // nothing was shown: the delivery asks to be redelivered once the store is back
    assert_eq!(body["status"], "incomplete");
    assert!(body["error"].as_str().unwrap().contains("redeliver"), "{body}");
    // the store alert went out (critical: it mentions the role) without waiting on the store
    let posts: Vec<Value> =
        discord.received_requests().await.unwrap().iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0]["content"], "<@&4242>");
    assert!(posts[0].to_string().contains("store is unavailable"));
    // within its window, this container does not post it again
    let (_, again) = deliver(&a, "workflow_run", "d-91", &failure(1101)).await;
    assert_eq!(again["alert"], "failed");
    assert_eq!(discord.received_requests().await.unwrap().len(), 1);
    // a ping is answered, but it cannot be recorded: a redelivery is welcome
    let (status, body) = deliver(&a, "ping", "d-92", &json!({"zen": "z"})).await;
    assert_eq!((status, body["event"].as_str()), (StatusCode::ACCEPTED, Some("ping")), "{body}");
    assert_eq!(body["status"], "incomplete", "{body}");
    let (status, _) = deliver(&a, "push", "d-93", &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_successful_deploy_run_is_verified_on_its_message() {
    let endpoints = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "ready"})))
        .expect(1)
        .mount(&endpoints)
        .await;
    let urls = format!("api={}/health", endpoints.uri());
    let h = Harness::new(&[("ENABLE_ALERTS", "false"), ("VERIFY_URLS", &urls)]).await;
    let edit = "/api/v10/webhooks/1290463189401731073/deploy-token/messages/@original";
    Mock::given(method("PATCH"))
        .and(path(edit))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1", "channel_id": "2"})))
        .expect(2)
        .mount(&h.discord)
        .await;
    let correlation = "0b7e3c1d-5a2f-4e6b-8c9d-aabbccddeeff";
    let now = valine_domain::clock::now_secs();
    h.app
        .stores
        .runs
        .put_correlation(&DiagnoseCorrelation {
            correlation_id: correlation.into(),
            application_id: 1290463189401731073,
            interaction_token: "deploy-token".into(),
            user_id: "42".into(),
            trace_id: "t-deploy".into(),
            created_at: now,
            expires_at: now + 600,
            frontend_url: None,
            api_base: Some("https://api.example.com/".into()),
            kind: valine_store::Followed::Deploy,
            git_ref: Some("main".into()),
        })
        .await
        .unwrap();
    let deploy_run = |status: &str, conclusion: Option<&str>, updated: &str| {
        let mut r = run(950, status, conclusion, "main", &format!("client deploy {correlation}"), updated);
        r["workflow_run"]["event"] = json!("workflow_dispatch");
        r["workflow_run"]["path"] = json!(".github/workflows/client-deploy.yml");
        r
    };
    let (_, body) = h.deliver("workflow_run", "d-95", &deploy_run("in_progress", None, "2026-11-22T14:00:30Z")).await;
    assert_eq!(body["diagnose"], "updated", "{body}");
    let (_, body) =
        h.deliver("workflow_run", "d-96", &deploy_run("completed", Some("success"), "2026-11-22T14:03:05Z")).await;
    assert_eq!(body["diagnose"], "updated", "{body}");
    let edits: Vec<String> = h
        .discord
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == edit)
        .map(|r| String::from_utf8_lossy(&r.body).to_string())
        .collect();
    assert!(edits[0].contains("Deploy client") && edits[0].contains("Running") && !edits[0].contains("Verify"));
    let last = &edits[1];
    assert!(last.contains("Finished: success") && last.contains("Verify: all endpoints healthy"), "{last}");
    assert!(last.contains("✅ **api** · 200") && last.contains("`ready`"), "{last}");
}

#[tokio::test]
async fn two_failed_health_checks_in_a_row_open_an_incident_and_a_pass_resolves_it() {
    let endpoints = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"status": "down"})))
        .up_to_n_times(3)
        .mount(&endpoints)
        .await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "healthy"})))
        .mount(&endpoints)
        .await;
    let urls = format!("api={}/health", endpoints.uri());
    let h = Harness::new(&[("VERIFY_URLS", &urls), ("GITHUB_REPO", "acme/widget")]).await;
    accept_posts(&h.discord).await;
    Mock::given(method("PATCH"))
        .and(path(format!("/api/v10/channels/{ALERT_CHANNEL}/messages/1400000000000000001")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "1400000000000000001", "channel_id": ALERT_CHANNEL.to_string()})),
        )
        .mount(&h.discord)
        .await;
    let first = h.app.tick().await;
    assert_eq!((first.checked, first.unhealthy), (1, 1));
    assert!(h.alert_posts().await.is_empty(), "one failed check is not yet an incident");
    tokio::time::sleep(Duration::from_millis(5)).await;
    h.app.tick().await;
    let posts = h.alert_posts().await;
    assert_eq!(posts.len(), 1);
    let shown = posts[0].to_string();
    assert!(shown.contains("Endpoint unhealthy: api") && shown.contains("answered 503"), "{shown}");
    assert!(shown.contains("Acknowledge") && !shown.contains("Re-run"), "{shown}");
    tokio::time::sleep(Duration::from_millis(5)).await;
    h.app.tick().await;
    assert_eq!(h.alert_posts().await.len(), 1, "a third failure edits, it does not post again");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let healthy = h.app.tick().await;
    assert_eq!(healthy.unhealthy, 0);
    let posts = h.alert_posts().await;
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert!(posts[1].to_string().contains("Resolved"), "{}", posts[1]);
    let edits: Vec<String> = h
        .discord
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "PATCH")
        .map(|r| String::from_utf8_lossy(&r.body).to_string())
        .collect();
    assert!(edits.last().unwrap().contains("Resolved: api is healthy"), "{edits:?}");
}
