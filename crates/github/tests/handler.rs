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

// ---------------------------------------------------------------- alerts

#[tokio::test]
async fn a_failure_alerts_once_with_everything_an_operator_needs() {
    let h = Harness::new(&[]).await;
    accept_posts(&h.discord).await;
    let (status, body) = h.deliver("workflow_run", "d-10", &failure(100)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["alert"], "sent");
    // GitHub redelivers the same delivery: a duplicate, nothing posted
    let (status, again) = h.deliver("workflow_run", "d-10", &failure(100)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["status"], "duplicate");
    // a second delivery of the same failure inside the window: rate-limited
    let (_, second) = h.deliver("workflow_run", "d-11", &failure(101)).await;
    assert_eq!(second["alert"], "rate_limited");
    let posts = h.alert_posts().await;
    assert_eq!(posts.len(), 1);
    let embed = &posts[0]["embeds"][0];
    let fields: std::collections::HashMap<&str, &str> = embed["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["value"].as_str().unwrap()))
        .collect();
    let run_url = "https://github.com/acme/widget/actions/runs/100";
    let trace = format!("`{}`", body["trace_id"].as_str().unwrap());
    for (name, value) in [
        ("Repository", "acme/widget"),
        ("Workflow", "CI"),
        ("Branch", "main"),
        ("Commit", "`3f1c9a7`"),
        ("Actor", "octocat"),
        ("Conclusion", "failure"),
        ("Run", &format!("[open]({run_url})")),
        ("Trace", &trace),
    ] {
        assert_eq!(fields.get(name).copied(), Some(value), "{name} in {embed}");
    }
    assert_eq!(embed["url"], run_url);
    assert_eq!(embed["color"], json!(valine_domain::alert::Severity::Error.colour()));
    assert!(embed["title"].as_str().unwrap().starts_with(valine_domain::alert::Severity::Error.emoji()), "{embed}");
    assert_eq!(posts[0]["allowed_mentions"], json!({"parse": []}), "an error alert pings nobody");
}

#[tokio::test]
async fn after_the_window_the_failure_alerts_again() {
    let h = Harness::new(&[("ALERT_DEDUP_SECONDS", "2")]).await;
    accept_posts(&h.discord).await;
    h.deliver("workflow_run", "d-20", &failure(200)).await;
    h.deliver("workflow_run", "d-21", &failure(201)).await;
    assert_eq!(h.alert_posts().await.len(), 1);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (_, body) = h.deliver("workflow_run", "d-22", &failure(202)).await;
    assert_eq!(body["alert"], "sent");
    assert_eq!(h.alert_posts().await.len(), 2);
}

#[tokio::test]
async fn a_send_that_failed_does_not_use_up_the_window() {
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
    // a real payload always gets a 2xx; the body says what is missing
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "incomplete");
    assert_eq!(body["alert"], "failed");
    // the next delivery of the failure is sent
    let (status, body) = h.deliver("workflow_run", "d-31", &failure(301)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["alert"], "sent");
    // and the failed delivery itself may be redelivered: its id was forgotten
    let (_, again) = h.deliver("workflow_run", "d-30", &failure(300)).await;
    assert_eq!(again["alert"], "rate_limited");
}

#[tokio::test]
async fn success_after_failure_posts_one_resolved() {
    let h = Harness::new(&[]).await;
    accept_posts(&h.discord).await;
    h.deliver("workflow_run", "d-40", &failure(400)).await;
    let (_, body) = h.deliver("workflow_run", "d-41", &success(401)).await;
    assert_eq!(body["resolved"], "sent");
    let (_, body) = h.deliver("workflow_run", "d-42", &success(402)).await;
    assert!(body.get("resolved").is_none(), "{body}");
    let posts = h.alert_posts().await;
    assert_eq!(posts.len(), 2);
    assert!(posts[1].to_string().contains("Resolved"));
    // a success with nothing to resolve posts nothing
    let h2 = Harness::new(&[]).await;
    h2.deliver("workflow_run", "d-43", &success(403)).await;
    assert!(h2.alert_posts().await.is_empty());
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
    assert_eq!(h.app.stores.runs.get_run(502).await.unwrap().unwrap().status, "in_progress");
}

#[tokio::test]
async fn deployment_failures_alert_and_production_mentions_the_role() {
    let h = Harness::new(&[]).await;
    accept_posts(&h.discord).await;
    let payload = json!({
        "action": "created",
        "deployment_status": {"state": "failure", "environment": "production", "description": "health check failed", "target_url": "https://deploy.example.com/9", "creator": {"login": "deployer"}},
        "deployment": {"ref": "main", "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", "environment": "production", "task": "deploy"},
        "repository": {"full_name": "acme/widget"},
        "sender": {"login": "deployer"}
    });
    let (status, body) = h.deliver("deployment_status", "d-60", &payload).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["alert"], "sent");
    let posts = h.alert_posts().await;
    assert_eq!(posts[0]["content"], "<@&4242>");
    assert_eq!(posts[0]["allowed_mentions"], json!({"parse": [], "roles": ["4242"]}));
    assert!(posts[0].to_string().contains("health check failed"));
}

#[tokio::test(flavor = "current_thread")]
async fn with_alerts_off_nothing_is_posted_and_the_log_says_why() {
    let (sink, _guard) = capture_logs("github-handler");
    let h = Harness::new(&[("ENABLE_ALERTS", "false")]).await;
    let (status, body) = h.deliver("workflow_run", "d-70", &failure(700)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["alert"], "skipped");
    assert!(h.alert_posts().await.is_empty());
    let logs = sink.text();
    let skipped = logs.lines().find(|l| l.contains("Alert skipped")).expect("an `Alert skipped` line");
    assert!(skipped.contains("ENABLE_ALERTS"), "{skipped}");
    assert!(skipped.contains("acme/widget|CI|main|workflow_failed"), "{skipped}");
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
    let from_fork = |mut payload: Value| {
        payload["workflow_run"]["event"] = json!("pull_request");
        payload["workflow_run"]["head_repository"] = json!({"full_name": "mallory/widget"});
        payload
    };
    let (_, body) = h.deliver("workflow_run", "d-60", &from_fork(failure(600))).await;
    assert!(body.get("alert").is_none(), "{body}");
    assert!(h.alert_posts().await.is_empty(), "a fork's failure is not this repository's");
    let (_, body) = h.deliver("workflow_run", "d-61", &failure(601)).await;
    assert_eq!(body["alert"], "sent");
    // a fork's green `main` does not end the real outage...
    let (_, body) = h.deliver("workflow_run", "d-62", &from_fork(success(602))).await;
    assert!(body.get("resolved").is_none(), "{body}");
    // ...this repository's does, once
    let (_, body) = h.deliver("workflow_run", "d-63", &success(603)).await;
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

async fn shared_store_posts_one_alert(stores: Stores) {
    let discord = MockServer::start().await;
    fail_on_unexpected(&discord).await;
    Mock::given(method("POST"))
        .and(path(format!("/api/v10/channels/{ALERT_CHANNEL}/messages")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_millis(100))
                .set_body_json(json!({"id": "1", "channel_id": ALERT_CHANNEL.to_string()})),
        )
        .expect(1)
        .mount(&discord)
        .await;
    let a = Arc::new(app(config(&discord, &[]), stores.clone()));
    let b = Arc::new(app(config(&discord, &[]), stores));
    // the same failure, delivered to two containers at once (GitHub sent it twice)
    let payload = failure(1000);
    let (ra, rb) =
        tokio::join!(deliver(&a, "workflow_run", "d-a", &payload), deliver(&b, "workflow_run", "d-b", &payload));
    let mut outcomes = [ra.1["alert"].as_str().unwrap().to_string(), rb.1["alert"].as_str().unwrap().to_string()];
    outcomes.sort();
    assert_eq!(outcomes, ["rate_limited", "sent"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_sharing_the_embedded_store_post_one_alert() {
    let dir = tempfile::tempdir().unwrap();
    let stores = Stores::from_adapter(Arc::new(EmbeddedStore::open(&dir.path().join("v.redb")).unwrap()), "embedded");
    shared_store_posts_one_alert(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_sharing_dynamodb_post_one_alert() {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") else {
        assert!(
            std::env::var("VALINE_REQUIRE_DYNAMODB").as_deref() != Ok("1"),
            "VALINE_REQUIRE_DYNAMODB=1 but AWS_ENDPOINT_URL is not set"
        );
        eprintln!("skipping: set AWS_ENDPOINT_URL to a DynamoDB-compatible server (or run .ci/run)");
        return;
    };
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
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
    let stores =
        Stores::from_adapter(Arc::new(valine_store::dynamo::DynamoStore::from_client(client, names)), "dynamodb");
    shared_store_posts_one_alert(stores).await;
}

#[tokio::test]
async fn store_down_still_alerts_once_and_does_not_invite_a_redelivery() {
    let discord = MockServer::start().await;
    fail_on_unexpected(&discord).await;
    accept_posts(&discord).await;
    let a = app(config(&discord, &[]), down_stores());
    let (status, body) = deliver(&a, "workflow_run", "d-90", &failure(1100)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["alert"], "sent", "an alert is never dropped because dedup is down");
    // the alert is out and its window could not be shared: a redelivery elsewhere would post it
    // again, so the answer says the run is missing but does not ask for one
    assert_eq!(body["status"], "partial");
    assert!(body["error"].as_str().unwrap().contains("do not redeliver"), "{body}");
    // a delivery that changes nothing but the run record does ask for one
    let (status, body) =
        deliver(&a, "workflow_run", "d-93", &run(1101, "queued", None, "main", "t", "2026-11-22T14:01:00Z")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "incomplete");
    // this container still remembers the window: a redelivery does not post twice
    let (_, again) = deliver(&a, "workflow_run", "d-90", &failure(1100)).await;
    assert_eq!(again["alert"], "rate_limited");
    let (status, _) = deliver(&a, "ping", "d-91", &json!({"zen": "z"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = deliver(&a, "push", "d-92", &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}
