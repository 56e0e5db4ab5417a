//! The Discord handler, in process: signed requests in, answers out, with Discord and GitHub
//! played by wiremock servers that assert the exact requests, and a fallback mock on each that
//! fails the test on any request nobody expected.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};
use valine_discord::jobs::LocalJobs;
use valine_discord::{App, AppParts};
use valine_domain::audit::AuditResult;
use valine_domain::clock::now_secs;
use valine_domain::logging::Capture;
use valine_domain::metrics::Metrics;
use valine_service::http::HttpRequest;
use valine_service::testing::{
    capture_logs, config_from, discord_key, discord_signature, down_stores, fail_on_unexpected, public_key_hex,
    stalled_stores,
};
use valine_store::Stores;
use valine_store::embedded::EmbeddedStore;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const APP_ID: u64 = 1290463189401731073;
const ADMIN: u64 = 80351110224678912;
const ADMIN_ROLE: u64 = 806688810598531078;
const STRANGER: u64 = 335249040998531080;
const CHANNEL: u64 = 805950613094531075;
const BOT_TOKEN: &str = "MTI5MDQ2MzE4OTQwMTczMTA3Mw.CANARY.bot-token-canary-value-0123456789";

struct Harness {
    app: Arc<App>,
    discord: MockServer,
    github: MockServer,
    key: ed25519_dalek::SigningKey,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new(overrides: &[(&str, &str)]) -> Self {
        Self::build(overrides, None).await
    }

    async fn build(overrides: &[(&str, &str)], stores: Option<Stores>) -> Self {
        let discord = MockServer::start().await;
        let github = MockServer::start().await;
        fail_on_unexpected(&discord).await;
        fail_on_unexpected(&github).await;
        let key = discord_key(9);
        let base = [
            ("DISCORD_PUBLIC_KEY", public_key_hex(&key)),
            ("DISCORD_BOT_TOKEN", BOT_TOKEN.to_string()),
            ("DISCORD_API_BASE", discord.uri()),
            ("GITHUB_API_BASE", github.uri()),
            ("GITHUB_TOKEN", "ghp_CANARYcanaryCANARYcanary0123456789ab".to_string()),
            ("GITHUB_REPO", "acme/widget".to_string()),
            ("ADMIN_USER_IDS", ADMIN.to_string()),
            ("AUDIT_HMAC_KEY", "audit-key-canary".to_string()),
            ("ENABLE_DEBUG_CMD", "true".to_string()),
            ("STATUS_WORKFLOWS", "CI,Deploy,diagnose.yml".to_string()),
        ];
        let config = config_from(&base, overrides);
        let dir = tempfile::tempdir().unwrap();
        let stores = stores.unwrap_or_else(|| {
            Stores::from_adapter(Arc::new(EmbeddedStore::open(&dir.path().join("v.redb")).unwrap()), "embedded")
        });
        let (jobs, mut rx) = LocalJobs::new();
        let app = Arc::new(
            App::new(AppParts {
                discord: valine_clients::discord_api::from_config(&config, Duration::from_secs(2)),
                github: valine_clients::github_api::from_config(&config, Duration::from_secs(25)).unwrap(),
                config,
                stores,
                jobs: Arc::new(jobs),
                metrics: Metrics::new("discord-handler", Arc::new(Capture::default())),
            })
            .unwrap(),
        );
        let worker = app.clone();
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                worker.run_job(job).await;
            }
        });
        Self { app, discord, github, key, _dir: dir }
    }

    fn signed(&self, body: &[u8]) -> HttpRequest {
        let ts = now_secs().to_string();
        let mut headers = HeaderMap::new();
        headers.insert("x-signature-ed25519", HeaderValue::from_str(&discord_signature(&self.key, &ts, body)).unwrap());
        headers.insert("x-signature-timestamp", HeaderValue::from_str(&ts).unwrap());
        HttpRequest::new(Method::POST, "/discord", headers, body.to_vec())
    }

    async fn send(&self, body: &Value) -> (StatusCode, Value) {
        let started = Instant::now();
        let res = self.app.handle(self.signed(body.to_string().as_bytes())).await;
        // Discord's deadline: every answer inside 3 s.
        assert!(started.elapsed() < Duration::from_secs(3), "answer took {:?}", started.elapsed());
        (res.status, serde_json::from_str(&res.body).unwrap())
    }
}

fn member(user: u64, roles: &[u64]) -> Value {
    json!({
        "user": {"id": user.to_string(), "username": format!("user{user}"), "global_name": null, "discriminator": "0", "avatar": null},
        "roles": roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        "joined_at": "2021-03-04T10:11:12.345000+00:00",
        "deaf": false, "mute": false, "flags": 0, "permissions": "2251799813685247"
    })
}

fn envelope(kind: u8, id: u64, user: u64, roles: &[u64], data: Value) -> Value {
    json!({
        "id": id.to_string(),
        "application_id": APP_ID.to_string(),
        "type": kind,
        "data": data,
        "guild_id": "805588225228931074",
        "channel_id": CHANNEL.to_string(),
        "member": member(user, roles),
        "token": format!("interaction-token-{id}"),
        "version": 1,
        "locale": "en-GB",
        "app_permissions": "2248473465835073",
        "entitlements": [],
        "authorizing_integration_owners": {"0": "805588225228931074"},
        "attachment_size_limit": 10485760,
        "context": 0
    })
}

fn command(id: u64, user: u64, name: &str, options: Value) -> Value {
    envelope(2, id, user, &[], json!({"id": "1", "name": name, "type": 1, "options": options}))
}

fn opt(name: &str, kind: u8, value: Value) -> Value {
    json!({"name": name, "type": kind, "value": value})
}

/// The options of a relay sent with `confirm:true`: a target option and the message.
fn confirmed(target: Value, message: &str) -> Value {
    json!([target, opt("message", 3, json!(message)), opt("confirm", 5, json!(true))])
}

fn click(id: u64, user: u64, custom_id: &str) -> Value {
    let mut e = envelope(3, id, user, &[], json!({"component_type": 2, "custom_id": custom_id}));
    e["message"] = json!({
        "id": "1383824789340291122", "channel_id": CHANNEL.to_string(), "type": 20, "content": "preview",
        "author": {"id": APP_ID.to_string(), "username": "valine", "discriminator": "0", "avatar": null, "bot": true},
        "attachments": [], "embeds": [], "mentions": [], "mention_roles": [], "pinned": false, "mention_everyone": false,
        "tts": false, "timestamp": "2026-11-22T15:05:40.123000+00:00", "edited_timestamp": null, "flags": 64, "components": []
    });
    e
}

fn content(answer: &Value) -> String {
    answer["data"]["content"].as_str().unwrap_or_default().to_string()
}

async fn wait_for(server: &MockServer, count: usize, what: impl Fn(&Request) -> bool) -> Vec<Request> {
    for _ in 0..300 {
        let got: Vec<Request> =
            server.received_requests().await.unwrap_or_default().into_iter().filter(|r| what(r)).collect();
        if got.len() >= count {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected {count} matching requests on the mock server");
}

fn is_edit(r: &Request) -> bool {
    r.method.as_str() == "PATCH" && r.url.path().ends_with("/messages/@original")
}

async fn mount_workflows(github: &MockServer, delay: Duration) {
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/actions/workflows"))
        .respond_with(ResponseTemplate::new(200).set_delay(delay).set_body_json(
            json!({"total_count": 2, "workflows": [
                {"id": 11, "name": "CI", "path": ".github/workflows/ci.yml", "state": "active"},
                {"id": 12, "name": "Nightly", "path": ".github/workflows/nightly.yml", "state": "active"}
            ]}),
        ))
        .mount(github)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/actions/workflows/11/runs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total_count": 2, "workflow_runs": [
            {"id": 2, "name": "CI", "head_branch": "main", "head_sha": "b", "status": "completed", "conclusion": "failure", "html_url": "https://github.com/acme/widget/actions/runs/2", "created_at": "2026-11-22T14:00:00Z", "updated_at": "2026-11-22T14:03:00Z", "run_number": 8, "workflow_id": 11, "event": "push"},
            {"id": 1, "name": "CI", "head_branch": "main", "head_sha": "a", "status": "completed", "conclusion": "success", "html_url": "https://github.com/acme/widget/actions/runs/1", "created_at": "2026-11-22T13:00:00Z", "updated_at": "2026-11-22T13:02:00Z", "run_number": 7, "workflow_id": 11, "event": "push"}
        ]})))
        .mount(github)
        .await;
}

// ---------------------------------------------------------------- protocol

#[tokio::test]
async fn ping_is_answered_with_pong() {
    let h = Harness::new(&[]).await;
    let (status, body) = h.send(&json!({"type": 1, "id": "1", "token": "t", "version": 1})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"type": 1}));
}

#[tokio::test]
async fn refusals_get_their_4xx() {
    let h = Harness::new(&[]).await;
    let body = br#"{"type":1}"#;
    let mut no_sig = h.signed(body);
    no_sig.headers.remove("x-signature-ed25519");
    assert_eq!(h.app.handle(no_sig).await.status, StatusCode::UNAUTHORIZED);
    let mut bad = h.signed(body);
    bad.body = bytes::Bytes::from_static(br#"{"type":2}"#);
    assert_eq!(h.app.handle(bad).await.status, StatusCode::UNAUTHORIZED);
    let mut stale = h.signed(body);
    let old = (now_secs() - 600).to_string();
    stale.headers.insert("x-signature-timestamp", HeaderValue::from_str(&old).unwrap());
    stale.headers.insert("x-signature-ed25519", HeaderValue::from_str(&discord_signature(&h.key, &old, body)).unwrap());
    assert_eq!(h.app.handle(stale).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(h.app.handle(h.signed(b"not json")).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(h.app.handle(h.signed(br#"{"type":42}"#)).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(h.app.handle(h.signed(br#"[1,2]"#)).await.status, StatusCode::BAD_REQUEST);
    // signed but incomplete (older docs samples): answered from the envelope, nothing run
    let partial = h.app.handle(h.signed(br#"{"type":2,"data":{"name":"relay-send"}}"#)).await;
    assert_eq!(partial.status, StatusCode::OK);
    assert!(partial.body.contains("incomplete"), "{}", partial.body);
    let partial = h.app.handle(h.signed(br#"{"type":4,"data":{"name":"status"}}"#)).await;
    assert_eq!(partial.body, r#"{"data":{"choices":[]},"type":8}"#);
    assert_eq!(h.app.handle(h.signed(&vec![b' '; 2 << 20])).await.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn health_endpoints() {
    let h = Harness::new(&[]).await;
    let res = h.app.handle(HttpRequest::new(Method::GET, "/health", HeaderMap::new(), vec![])).await;
    assert_eq!(res.status, StatusCode::OK);
    let body: Value = serde_json::from_str(&res.body).unwrap();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["service"], "discord-handler");
    let res = h.app.handle(HttpRequest::new(Method::GET, "/health/ready", HeaderMap::new(), vec![])).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let down = Harness::build(&[], Some(down_stores())).await;
    let res = down.app.handle(HttpRequest::new(Method::GET, "/health/ready", HeaderMap::new(), vec![])).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = serde_json::from_str(&res.body).unwrap();
    assert_eq!(body["checks"]["store"]["ok"], false);
}

#[tokio::test]
async fn unknown_command_component_modal_and_autocomplete() {
    let h = Harness::new(&[]).await;
    let (_, a) = h.send(&command(100, STRANGER, "cardsearch", json!([]))).await;
    assert_eq!(content(&a), "Unknown command");
    assert_eq!(a["data"]["flags"], 64);
    let (_, a) = h.send(&click(101, STRANGER, "click_me")).await;
    assert_eq!(a["type"], 4);
    assert_eq!(a["data"]["flags"], 64);
    let modal = envelope(5, 102, STRANGER, &[], json!({"custom_id": "feedback", "components": []}));
    let (_, a) = h.send(&modal).await;
    assert!(content(&a).contains("not recognised"));
    let auto = envelope(
        4,
        103,
        STRANGER,
        &[],
        json!({"id": "1", "name": "status", "type": 1, "options": [{"name": "workflow", "type": 3, "value": "de", "focused": true}]}),
    );
    let (_, a) = h.send(&auto).await;
    assert_eq!(a, json!({"type": 8, "data": {"choices": [{"name": "Deploy", "value": "Deploy"}]}}));
    // each of them left a trace for its caller, newest first (autocomplete aside: keystrokes
    // would push the command itself out of /debug-last)
    let traces = h.app.stores.traces.recent_for_user(&STRANGER.to_string(), 10).await.unwrap();
    let commands: Vec<&str> = traces.iter().map(|t| t.command.as_str()).collect();
    assert_eq!(commands, ["modal:feedback", "component:click_me", "/cardsearch"]);
}

// ---------------------------------------------------------------- /status

#[tokio::test]
async fn status_answers_inline_with_an_embed_per_workflow() {
    let h = Harness::new(&[("STATUS_WORKFLOWS", "")]).await;
    mount_workflows(&h.github, Duration::ZERO).await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/actions/workflows/12/runs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"workflow_runs": []})))
        .mount(&h.github)
        .await;
    let (status, a) = h.send(&command(200, STRANGER, "status", json!([opt("count", 4, json!(2))]))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(a["type"], 4, "{a}");
    let embeds = a["data"]["embeds"].as_array().unwrap();
    assert_eq!(embeds.len(), 2);
    assert_eq!(embeds[0]["title"], "CI");
    assert!(embeds[0]["description"].as_str().unwrap().starts_with("🟢🔴\n"));
    assert_eq!(a["data"]["allowed_mentions"], json!({"parse": []}));
    let runs_req =
        h.github.received_requests().await.unwrap().into_iter().find(|r| r.url.path().ends_with("/11/runs")).unwrap();
    assert_eq!(runs_req.url.query(), Some("per_page=2"));
}

#[tokio::test]
async fn status_defers_when_github_is_slow_and_the_job_edits_the_message() {
    let h = Harness::new(&[("STATUS_WORKFLOWS", "CI")]).await;
    mount_workflows(&h.github, Duration::from_secs(10)).await;
    Mock::given(method("PATCH"))
        .and(path(format!("/api/v10/webhooks/{APP_ID}/interaction-token-201/messages/@original")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "5", "channel_id": CHANNEL.to_string()})))
        .expect(1)
        .mount(&h.discord)
        .await;
    let (status, a) = h.send(&command(201, STRANGER, "status", json!([]))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(a, json!({"type": 5}));
    let edits = wait_for(&h.discord, 1, is_edit).await;
    let body: Value = serde_json::from_slice(&edits[0].body).unwrap();
    assert_eq!(body["embeds"][0]["title"], "CI");
    assert_eq!(body["allowed_mentions"], json!({"parse": []}));
}

#[tokio::test]
async fn status_without_github_settings_names_them() {
    let h = Harness::new(&[("GITHUB_TOKEN", ""), ("GITHUB_REPO", "")]).await;
    let (_, a) = h.send(&command(202, STRANGER, "status", json!([]))).await;
    assert!(content(&a).contains("set GITHUB_TOKEN and GITHUB_REPO"), "{a}");
    assert_eq!(a["data"]["flags"], 64);
}

// ---------------------------------------------------------------- /diagnose

#[tokio::test]
async fn diagnose_refuses_local_urls_and_dispatches_public_ones() {
    let h = Harness::new(&[]).await;
    let (_, a) = h
        .send(&command(
            300,
            STRANGER,
            "diagnose",
            json!([opt("frontend_url", 3, json!("https://169.254.169.254/latest"))]),
        ))
        .await;
    assert!(content(&a).contains("`frontend_url` was refused: link-local addresses are not allowed"), "{a}");
    let (_, a) =
        h.send(&command(301, STRANGER, "diagnose", json!([opt("api_base", 3, json!("https://0x7f.1/"))]))).await;
    assert!(content(&a).contains("loopback"), "{a}");
    // both refusals are audited, naming the option and the reason but never the address
    let records = h.app.stores.audit.by_user(&STRANGER.to_string(), 10).await.unwrap();
    let blocked: Vec<_> = records.iter().filter(|r| r.result == AuditResult::Blocked).collect();
    assert_eq!(blocked.len(), 2, "{records:?}");
    assert!(blocked.iter().all(|r| r.command == "/diagnose"));
    let options: Vec<&str> = blocked.iter().map(|r| r.metadata["option"].as_str()).collect();
    assert!(options.contains(&"frontend_url") && options.contains(&"api_base"), "{options:?}");
    let stored = serde_json::to_string(&records).unwrap();
    assert!(!stored.contains("169.254") && !stored.contains("0x7f"), "{stored}");
    assert!(blocked.iter().all(|r| r.metadata["reason"].contains("was refused")), "{records:?}");

    Mock::given(method("POST"))
        .and(path("/repos/acme/widget/actions/workflows/diagnose.yml/dispatches"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&h.github)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("/api/v10/webhooks/{APP_ID}/interaction-token-302/messages/@original")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "5", "channel_id": "1"})))
        .expect(1)
        .mount(&h.discord)
        .await;
    let options = json!([
        opt("frontend_url", 3, json!("https://app.example.com/")),
        opt("api_base", 3, json!("https://api.example.com"))
    ]);
    let (_, a) = h.send(&command(302, STRANGER, "diagnose", options)).await;
    assert_eq!(a, json!({"type": 5}));
    let edits = wait_for(&h.discord, 1, is_edit).await;
    let edit: Value = serde_json::from_slice(&edits[0].body).unwrap();
    assert!(edit.to_string().contains("Dispatched"), "{edit}");
    let dispatch = h
        .github
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path().ends_with("/dispatches"))
        .unwrap();
    let sent: Value = serde_json::from_slice(&dispatch.body).unwrap();
    assert_eq!(sent["ref"], "main");
    let corr = sent["inputs"]["correlation_id"].as_str().unwrap();
    assert_eq!(
        sent["inputs"],
        json!({"correlation_id": corr, "requester": format!("user{STRANGER} ({STRANGER})"), "frontend_url": "https://app.example.com/", "api_base": "https://api.example.com/"})
    );
    let stored = h.app.stores.runs.get_correlation(corr).await.unwrap().unwrap();
    assert_eq!(stored.interaction_token, "interaction-token-302");
    assert_eq!(stored.application_id, APP_ID);
}

#[tokio::test]
async fn a_host_outside_allowed_domains_is_named_to_the_caller_but_not_stored() {
    let h = Harness::new(&[("ALLOWED_DOMAINS", "example.com")]).await;
    let options = json!([opt("frontend_url", 3, json!("https://secret-staging.internal.acme.io/"))]);
    let (_, a) = h.send(&command(305, STRANGER, "diagnose", options)).await;
    assert!(content(&a).contains("secret-staging.internal.acme.io is not in ALLOWED_DOMAINS"), "{a}");
    let records = h.app.stores.audit.by_user(&STRANGER.to_string(), 10).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].metadata["reason"], "`frontend_url` was refused: the host is not in ALLOWED_DOMAINS.");
    assert!(!serde_json::to_string(&records).unwrap().contains("acme.io"));
}

#[tokio::test]
async fn diagnose_dispatch_failure_is_told_and_alerted() {
    let h = Harness::new(&[("ENABLE_ALERTS", "true"), ("ALERT_CHANNEL_ID", "999")]).await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/widget/actions/workflows/diagnose.yml/dispatches"))
        .respond_with(
            ResponseTemplate::new(422)
                .set_body_json(json!({"message": "Workflow does not have 'workflow_dispatch' trigger"})),
        )
        .mount(&h.github)
        .await;
    // the error goes to the caller only: the public "thinking…" ends in a neutral note (Discord
    // would otherwise make the first follow-up the public message itself), the details follow
    // ephemerally, and the note is deleted
    Mock::given(method("PATCH"))
        .and(path(format!("/api/v10/webhooks/{APP_ID}/interaction-token-303/messages/@original")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "5", "channel_id": CHANNEL.to_string()})))
        .expect(1)
        .mount(&h.discord)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/api/v10/webhooks/{APP_ID}/interaction-token-303")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "8", "channel_id": CHANNEL.to_string()})))
        .expect(1)
        .mount(&h.discord)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/api/v10/webhooks/{APP_ID}/interaction-token-303/messages/@original")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&h.discord)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v10/channels/999/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "7", "channel_id": "999"})))
        .expect(1)
        .mount(&h.discord)
        .await;
    let (_, a) = h.send(&command(303, STRANGER, "diagnose", json!([]))).await;
    assert_eq!(a["type"], 5);
    let told = wait_for(&h.discord, 1, |r| r.url.path().ends_with("/interaction-token-303")).await;
    let told: Value = serde_json::from_slice(&told[0].body).unwrap();
    assert_eq!(told["flags"], 64, "{told}");
    assert_eq!(told["allowed_mentions"], json!({"parse": []}));
    let text = told["content"].as_str().unwrap();
    assert!(
        text.contains("Could not dispatch") && text.contains("workflow_dispatch") && text.contains("trace"),
        "{text}"
    );
    wait_for(&h.discord, 1, |r| r.method.as_str() == "DELETE").await;
    let order: Vec<String> = h
        .discord
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().contains("/webhooks/"))
        .map(|r| r.method.to_string())
        .collect();
    assert_eq!(order, ["PATCH", "POST", "DELETE"]);
    let note: Value = serde_json::from_slice(
        &h.discord.received_requests().await.unwrap().iter().find(|r| r.method.as_str() == "PATCH").unwrap().body,
    )
    .unwrap();
    let note = note["content"].as_str().unwrap();
    assert!(note.contains("sent to") && !note.contains("workflow_dispatch"), "the public note says nothing: {note}");
    let alerts = wait_for(&h.discord, 1, |r| r.url.path() == "/api/v10/channels/999/messages").await;
    let alert: Value = serde_json::from_slice(&alerts[0].body).unwrap();
    assert!(alert.to_string().contains("dispatch"), "{alert}");
    assert_eq!(alert["allowed_mentions"]["parse"], json!([]));
}

// ---------------------------------------------------------------- relays

#[tokio::test]
async fn relay_by_a_non_admin_is_refused_and_audited() {
    let h = Harness::new(&[]).await;
    let opts = confirmed(opt("channel", 7, json!(CHANNEL.to_string())), "hello");
    let (_, a) = h.send(&command(400, STRANGER, "relay-send", opts)).await;
    assert!(content(&a).contains("not an admin"), "{a}");
    assert_eq!(a["data"]["flags"], 64);
    let records = h.app.stores.audit.by_user(&STRANGER.to_string(), 10).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].result, AuditResult::Blocked);
    assert_eq!(records[0].command, "/relay-send");
    assert!(records[0].metadata["reason"].contains("not an admin"));
    assert!(records[0].message_fingerprint.as_deref().unwrap().starts_with('…'));
}

#[tokio::test]
async fn no_admins_configured_fails_closed_and_names_the_settings() {
    let h = Harness::new(&[("ADMIN_USER_IDS", "")]).await;
    let opts = confirmed(opt("channel", 7, json!(CHANNEL.to_string())), "hello");
    let (_, a) = h.send(&command(401, ADMIN, "relay-send", opts)).await;
    assert!(content(&a).contains("ADMIN_USER_IDS") && content(&a).contains("ADMIN_ROLE_IDS"), "{a}");
}

async fn mount_post(server: &MockServer, channel: u64, text: &str) {
    Mock::given(method("POST"))
        .and(path(format!("/api/v10/channels/{channel}/messages")))
        .and(header("authorization", format!("Bot {BOT_TOKEN}").as_str()))
        .and(body_json(json!({"content": text, "allowed_mentions": {"parse": []}})))
        // as Discord answers a REST post: no `guild_id`
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "1400000000000000001", "channel_id": channel.to_string()})),
        )
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn relay_by_an_admin_with_confirm_posts_once_without_pings_and_is_audited() {
    let h = Harness::new(&[]).await;
    let text = "Deploy freeze from 17:00 @everyone <@&1>";
    mount_post(&h.discord, CHANNEL, text).await;
    let opts = confirmed(opt("channel", 7, json!(CHANNEL.to_string())), text);
    let request = command(402, ADMIN, "relay-send", opts);
    let (_, a) = h.send(&request).await;
    let summary = content(&a);
    assert!(summary.contains("✅ Sent to <#805950613094531075>"), "{a}");
    assert!(summary.contains("https://discord.com/channels/805588225228931074/805950613094531075/1400000000000000001"));
    assert_eq!(a["data"]["flags"], 64);
    // the same signed request again: nothing is posted twice
    let (_, again) = h.send(&request).await;
    assert!(content(&again).contains("already handled"), "{again}");
    let records = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    let results: Vec<_> = records.iter().map(|r| r.result).collect();
    assert!(results.contains(&AuditResult::Pending) && results.contains(&AuditResult::Posted), "{results:?}");
    let posted = records.iter().find(|r| r.result == AuditResult::Posted).unwrap();
    let intent = records.iter().find(|r| r.result == AuditResult::Pending).unwrap();
    assert_eq!(posted.metadata["intent_audit_id"], intent.audit_id);
    assert_eq!(posted.metadata["message_id"], "1400000000000000001");
    assert_eq!(posted.target_channel.as_deref(), Some(&*CHANNEL.to_string()));
    assert!(summary.contains(&posted.audit_id) && summary.contains(posted.message_fingerprint.as_deref().unwrap()));
    assert!(!serde_json::to_string(&records).unwrap().contains("Deploy freeze"), "the text was stored");
    assert!(valine_domain::audit::digest_matches(b"audit-key-canary", text, posted.message_digest.as_deref().unwrap()));
}

#[tokio::test]
async fn relay_accepts_a_channel_id_string_and_a_visible_summary() {
    let h = Harness::new(&[]).await;
    mount_post(&h.discord, 1184576487578214464, "hi").await;
    let opts = json!([
        opt("channel_id", 3, json!("1184576487578214464")),
        opt("message", 3, json!("hi")),
        opt("confirm", 5, json!(true)),
        opt("ephemeral", 5, json!(false))
    ]);
    let (_, a) = h.send(&command(403, ADMIN, "relay-send", opts)).await;
    assert!(content(&a).contains("✅"), "{a}");
    assert!(a["data"].get("flags").is_none());
}

#[tokio::test]
async fn relay_preview_is_bound_to_its_caller_and_confirms_once() {
    let h = Harness::new(&[("ADMIN_USER_IDS", ""), ("ADMIN_ROLE_IDS", &ADMIN_ROLE.to_string())]).await;
    mount_post(&h.discord, CHANNEL, "maintenance at 18:00").await;
    let mut preview_req = command(
        404,
        ADMIN,
        "relay-send",
        json!([opt("channel", 7, json!(CHANNEL.to_string())), opt("message", 3, json!("maintenance at 18:00"))]),
    );
    preview_req["member"] = member(ADMIN, &[ADMIN_ROLE]);
    let (_, preview) = h.send(&preview_req).await;
    assert_eq!(preview["data"]["flags"], 64);
    assert!(content(&preview).contains("Preview"));
    let buttons = &preview["data"]["components"][0]["components"];
    let confirm_id = buttons[0]["custom_id"].as_str().unwrap().to_string();
    let cancel_id = buttons[1]["custom_id"].as_str().unwrap().to_string();
    assert!(confirm_id.starts_with("relay:confirm:") && cancel_id.starts_with("relay:cancel:"));
    // someone else clicks: refused, and the confirmation survives
    let (_, other) = h.send(&click(405, STRANGER, &confirm_id)).await;
    assert!(content(&other).contains("Only the person who asked"), "{other}");
    let theirs = h.app.stores.audit.by_user(&STRANGER.to_string(), 10).await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].result, AuditResult::Blocked);
    // the caller clicks
    let mut mine = click(406, ADMIN, &confirm_id);
    mine["member"] = member(ADMIN, &[ADMIN_ROLE]);
    let (_, done) = h.send(&mine).await;
    assert_eq!(done["type"], 7);
    assert!(content(&done).contains("✅ Sent"), "{done}");
    assert_eq!(done["data"]["components"], json!([]));
    // a second click finds nothing
    let mut twice = click(407, ADMIN, &confirm_id);
    twice["member"] = member(ADMIN, &[ADMIN_ROLE]);
    let (_, twice) = h.send(&twice).await;
    assert!(content(&twice).contains("expired or was already used"), "{twice}");
    let records = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    assert!(records.iter().any(|r| r.result == AuditResult::Posted && r.command == "/relay-send"));
    let late = records
        .iter()
        .find(|r| r.result == AuditResult::Blocked && r.metadata.contains_key("confirmation"))
        .expect("the late click is audited");
    assert!(late.metadata["reason"].contains("expired or was already used"), "{late:?}");
}

#[tokio::test]
async fn relay_cancel_posts_nothing() {
    let h = Harness::new(&[]).await;
    let (_, preview) = h
        .send(&command(
            408,
            ADMIN,
            "relay-send",
            json!([opt("channel", 7, json!(CHANNEL.to_string())), opt("message", 3, json!("x"))]),
        ))
        .await;
    let cancel_id = preview["data"]["components"][0]["components"][1]["custom_id"].as_str().unwrap().to_string();
    let (_, done) = h.send(&click(409, ADMIN, &cancel_id)).await;
    assert_eq!(done["type"], 7);
    assert!(content(&done).contains("Cancelled"));
}

#[tokio::test]
async fn relay_dm_opens_a_real_dm_channel_and_posts_there() {
    let h = Harness::new(&[]).await;
    Mock::given(method("POST"))
        .and(path("/api/v10/users/@me/channels"))
        .and(body_json(json!({"recipient_id": STRANGER.to_string()})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1500000000000000002", "type": 1})))
        .expect(1)
        .mount(&h.discord)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v10/channels/1500000000000000002/messages"))
        .and(body_json(json!({"content": "your on-call shift starts", "allowed_mentions": {"parse": []}})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "1500000000000000003", "channel_id": "1500000000000000002"})),
        )
        .expect(1)
        .mount(&h.discord)
        .await;
    let opts = confirmed(opt("user", 6, json!(STRANGER.to_string())), "your on-call shift starts");
    let (_, a) = h.send(&command(410, ADMIN, "relay-dm", opts)).await;
    assert!(content(&a).contains("Sent to a DM to <@335249040998531080>"), "{a}");
    assert!(content(&a).contains("https://discord.com/channels/@me/1500000000000000002/1500000000000000003"));
    let records = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    assert!(records.iter().any(|r| r.result == AuditResult::Posted
        && r.command == "/relay-dm"
        && r.target_user.as_deref() == Some("335249040998531080")));
}

#[tokio::test]
async fn a_relay_to_a_slow_discord_is_answered_in_time_and_its_outcome_audited() {
    let h = Harness::new(&[]).await;
    Mock::given(method("POST"))
        .and(path("/api/v10/users/@me/channels"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_millis(300))
                .set_body_json(json!({"id": "1500000000000000002", "type": 1})),
        )
        .mount(&h.discord)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v10/channels/1500000000000000002/messages"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_secs(5))
                .set_body_json(json!({"id": "1", "channel_id": "1500000000000000002"})),
        )
        .mount(&h.discord)
        .await;
    let opts = confirmed(opt("user", 6, json!(STRANGER.to_string())), "on-call");
    // `send` asserts the answer comes inside 3 s
    let (_, a) = h.send(&command(430, ADMIN, "relay-dm", opts)).await;
    assert!(content(&a).contains("did not answer in time") && content(&a).contains("may or may not"), "{a}");
    let records = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    let results: Vec<_> = records.iter().map(|r| r.result).collect();
    assert!(results.contains(&AuditResult::Pending) && results.contains(&AuditResult::Failed), "{results:?}");
    let failed = records.iter().find(|r| r.result == AuditResult::Failed).unwrap();
    assert!(content(&a).contains(&failed.audit_id), "the answer points at the outcome record: {a}");
}

#[tokio::test]
async fn discord_429_is_retried_once_then_a_clear_error() {
    let h = Harness::new(&[]).await;
    Mock::given(method("POST"))
        .and(path(format!("/api/v10/channels/{CHANNEL}/messages")))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "0.3")
                .set_body_json(json!({"message": "You are being rate limited.", "retry_after": 0.3, "global": false})),
        )
        .expect(2)
        .mount(&h.discord)
        .await;
    let opts = confirmed(opt("channel", 7, json!(CHANNEL.to_string())), "x");
    let (_, a) = h.send(&command(411, ADMIN, "relay-send", opts)).await;
    assert!(content(&a).contains("rate-limited") && content(&a).contains("Nothing was posted"), "{a}");
    let records = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    let failed = records.iter().find(|r| r.result == AuditResult::Failed).expect("a failed record");
    assert!(failed.metadata["reason"].contains("rate-limited"));
}

#[tokio::test]
async fn discord_429_then_success_posts_once() {
    let h = Harness::new(&[]).await;
    Mock::given(method("POST"))
        .and(path(format!("/api/v10/channels/{CHANNEL}/messages")))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "0.2")
                .set_body_json(json!({"retry_after": 0.2, "global": false})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&h.discord)
        .await;
    mount_post(&h.discord, CHANNEL, "x").await;
    let opts = confirmed(opt("channel", 7, json!(CHANNEL.to_string())), "x");
    let (_, a) = h.send(&command(412, ADMIN, "relay-send", opts)).await;
    assert!(content(&a).contains("✅ Sent"), "{a}");
}

#[tokio::test]
async fn store_down_refuses_the_relay_posts_nothing_and_says_why() {
    let h = Harness::build(&[("ENABLE_ALERTS", "true"), ("ALERT_CHANNEL_ID", "999")], Some(down_stores())).await;
    // the only Discord request allowed is the critical alert about the audit store
    Mock::given(method("POST"))
        .and(path("/api/v10/channels/999/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "7", "channel_id": "999"})))
        .mount(&h.discord)
        .await;
    let opts = confirmed(opt("channel", 7, json!(CHANNEL.to_string())), "x");
    let (status, a) = h.send(&command(413, ADMIN, "relay-send", opts)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content(&a).contains("store is unavailable") && content(&a).contains("nothing was posted"), "{a}");
    assert!(content(&a).contains("trace"));
    let posts = h.discord.received_requests().await.unwrap();
    assert!(posts.iter().all(|r| r.url.path() != format!("/api/v10/channels/{CHANNEL}/messages")));
    // the store being down is a critical failure of the bot: alerted, without dedup
    let alerts: Vec<String> = posts.iter().map(|r| String::from_utf8_lossy(&r.body).to_string()).collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].contains("Store unavailable") && alerts[0].contains("critical"), "{}", alerts[0]);
    // a second refusal in the same container is inside the window: no second alert
    let opts = confirmed(opt("channel", 7, json!(CHANNEL.to_string())), "y");
    h.send(&command(420, ADMIN, "relay-send", opts)).await;
    assert_eq!(h.discord.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_silent_store_still_gets_every_answer_out_in_time() {
    // `send` asserts each answer comes inside Discord's 3 s
    let h = Harness::build(&[], Some(stalled_stores())).await;
    let opts = confirmed(opt("channel", 7, json!(CHANNEL.to_string())), "x");
    let (_, a) = h.send(&command(415, ADMIN, "relay-send", opts)).await;
    assert!(content(&a).contains("store is unavailable") && content(&a).contains("nothing was posted"), "{a}");
    let (_, a) = h
        .send(&command(
            416,
            ADMIN,
            "relay-send",
            json!([opt("channel", 7, json!(CHANNEL.to_string())), opt("message", 3, json!("x"))]),
        ))
        .await;
    assert!(content(&a).contains("store is unavailable"), "{a}");
    let (_, a) = h
        .send(&command(
            417,
            STRANGER,
            "relay-send",
            json!([opt("channel", 7, json!(CHANNEL.to_string())), opt("message", 3, json!("x"))]),
        ))
        .await;
    assert!(content(&a).contains("could not be audited"), "{a}");
    let (_, a) = h.send(&command(418, ADMIN, "debug-last", json!([]))).await;
    assert!(a.to_string().contains("did not answer in time") && a.to_string().contains("/relay-send"), "{a}");
    let (_, a) = h.send(&command(419, STRANGER, "diagnose", json!([]))).await;
    assert!(content(&a).contains("store is unavailable") && content(&a).contains("nothing was dispatched"), "{a}");
}

#[tokio::test]
async fn store_down_during_the_audit_write_alerts_critically() {
    // deliveries answer (the replay check passes) but the audit log is down
    let dir = tempfile::tempdir().unwrap();
    let mut stores =
        Stores::from_adapter(Arc::new(EmbeddedStore::open(&dir.path().join("v.redb")).unwrap()), "embedded");
    stores.audit = down_stores().audit;
    let h = Harness::build(
        &[("ENABLE_ALERTS", "true"), ("ALERT_CHANNEL_ID", "999"), ("ALERT_MENTION_ROLE_ID", "4242")],
        Some(stores),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/api/v10/channels/999/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "7", "channel_id": "999"})))
        .expect(1)
        .mount(&h.discord)
        .await;
    let opts = confirmed(opt("channel", 7, json!(CHANNEL.to_string())), "x");
    let (_, a) = h.send(&command(414, ADMIN, "relay-send", opts)).await;
    assert!(content(&a).contains("audit store is unavailable"), "{a}");
    let alert = &h.discord.received_requests().await.unwrap()[0];
    let alert: Value = serde_json::from_slice(&alert.body).unwrap();
    assert_eq!(alert["content"], "<@&4242>");
    assert_eq!(alert["allowed_mentions"], json!({"parse": [], "roles": ["4242"]}));
    assert!(alert.to_string().contains("Audit write failed"));
}

// ---------------------------------------------------------------- /debug-last

#[tokio::test]
async fn debug_last_shows_only_the_callers_own_trace() {
    let h = Harness::new(&[]).await;
    mount_post(&h.discord, CHANNEL, "secret plan").await;
    let opts = confirmed(opt("channel", 7, json!(CHANNEL.to_string())), "secret plan");
    let (_, a) = h.send(&command(500, ADMIN, "relay-send", opts)).await;
    assert!(content(&a).contains("✅"));
    // another user never sees it
    let (_, theirs) = h.send(&command(501, STRANGER, "debug-last", json!([]))).await;
    assert_eq!(content(&theirs), "No trace of yours in the last 24 hours.");
    // the admin sees their relay, with measured steps and no message text
    let (_, mine) = h.send(&command(502, ADMIN, "debug-last", json!([]))).await;
    assert_eq!(mine["data"]["flags"], 64);
    let embed = &mine["data"]["embeds"][0];
    assert!(embed["title"].as_str().unwrap().contains("/relay-send"), "{mine}");
    let steps = embed["description"].as_str().unwrap();
    for step in ["audit.intent", "discord.post_message", "audit.outcome"] {
        assert!(steps.contains(step), "{steps}");
    }
    assert!(!mine.to_string().contains("secret plan"));
    // /debug-last by the stranger still shows nothing of the admin's, even after their own debug-last
    let (_, theirs) = h.send(&command(503, STRANGER, "debug-last", json!([]))).await;
    assert!(!theirs.to_string().contains("/relay-send"));
}

#[tokio::test]
async fn debug_last_is_off_unless_enabled() {
    let h = Harness::new(&[("ENABLE_DEBUG_CMD", "")]).await;
    let (_, a) = h.send(&command(504, ADMIN, "debug-last", json!([]))).await;
    assert!(content(&a).contains("ENABLE_DEBUG_CMD=true"), "{a}");
    let records = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    assert_eq!(records[0].result, AuditResult::Blocked);
    assert_eq!(records[0].command, "/debug-last");
}

#[tokio::test]
async fn debug_last_keeps_showing_the_command_before_it() {
    let h = Harness::new(&[("GITHUB_TOKEN", ""), ("GITHUB_REPO", "")]).await;
    h.send(&command(505, ADMIN, "status", json!([]))).await;
    for i in 0..12 {
        let (_, a) = h.send(&command(506 + i, ADMIN, "debug-last", json!([]))).await;
        assert!(a["data"]["embeds"][0]["title"].as_str().unwrap_or("").contains("/status"), "run {i}: {a}");
    }
}

// ---------------------------------------------------------------- logs

#[tokio::test(flavor = "current_thread")]
async fn canary_secrets_never_reach_the_log() {
    let (sink, _guard) = capture_logs("discord-handler");
    let h = Harness::new(&[("DRY_RUN", "true")]).await;
    let canary = "ghp_CANARYinputCANARYinput0123456789abcd";
    let opts = confirmed(opt("channel", 7, json!(CHANNEL.to_string())), &format!("token {canary}"));
    let (_, a) = h.send(&command(600, ADMIN, "relay-send", opts)).await;
    assert!(content(&a).contains("DRY_RUN"), "{a}");
    let (_, _) = h
        .send(&command(
            601,
            STRANGER,
            "diagnose",
            json!([opt("frontend_url", 3, json!(format!("https://user:{canary}@example.com/")))]),
        ))
        .await;
    let logs = sink.text();
    assert!(logs.contains("interaction answered"), "no logs captured: {logs}");
    for secret in [canary, "CANARYinput", BOT_TOKEN, "bot-token-canary", "audit-key-canary", "interaction-token-600"] {
        assert!(!logs.contains(secret), "{secret} leaked into the log:\n{logs}");
    }
}
