//! The release handler binaries under a Lambda Runtime API, answering real HTTP API (payload 2.0)
//! events, the format Function URLs use too. Discord and GitHub are wiremock servers; the
//! deferred job of discord-handler travels through the Lambda Invoke API back into the runtime.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};
use valine_domain::clock::now_secs;
use valine_domain::signing::{discord_signature, github_signature, public_key_hex};
use valine_e2e::{Function, Outcome, RuntimeApi, handler_binary, http_api_event};
use valine_service::testing::fail_on_unexpected;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SEED: [u8; 32] = [11; 32];
const SECRET: &str = "e2e-webhook-secret";

/// discord-handler under `runtime`, logging to `dir/discord.log`.
fn discord_function(runtime: &RuntimeApi, env: &[(&str, String)], dir: &std::path::Path) -> Function {
    Function::start(&binaries().0, runtime, "valine-orchestrator-discord-e2e", env, &dir.join("discord.log"))
}

/// github-handler under `runtime`, logging to `dir/github.log`.
fn github_function(runtime: &RuntimeApi, env: &[(&str, String)], dir: &std::path::Path) -> Function {
    Function::start(&binaries().1, runtime, "valine-orchestrator-github-e2e", env, &dir.join("github.log"))
}

fn binaries() -> &'static (PathBuf, PathBuf) {
    static BINS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BINS.get_or_init(|| {
        (
            handler_binary("DiscordFunction", "valine-discord", "discord-handler"),
            handler_binary("GitHubFunction", "valine-github", "github-handler"),
        )
    })
}

fn key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&SEED)
}

fn discord_event(body: &[u8], base64: bool) -> Value {
    let ts = now_secs().to_string();
    let sig = discord_signature(&key(), &ts, body);
    http_api_event(
        "POST",
        "/discord",
        &[("X-Signature-Ed25519", sig), ("X-Signature-Timestamp", ts), ("Content-Type", "application/json".into())],
        body,
        base64,
    )
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn github_event(event: &str, body: &[u8]) -> Value {
    http_api_event(
        "POST",
        "/github/webhook",
        &[
            ("X-GitHub-Event", event.to_string()),
            (
                "X-GitHub-Delivery",
                format!("e2e-{}-{}", now_secs(), NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
            ),
            ("X-Hub-Signature-256", github_signature(SECRET, body)),
            ("Content-Type", "application/json".into()),
        ],
        body,
        false,
    )
}

async fn answer(runtime: &RuntimeApi, event: Value) -> (u16, Value) {
    match runtime.invoke(event, Duration::from_secs(20)).await {
        Some(Outcome::Response(r)) => {
            let body = serde_json::from_str(r["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
            (r["statusCode"].as_u64().unwrap_or(0) as u16, body)
        }
        other => panic!("no answer from the function: {other:?}"),
    }
}

fn log_of(dir: &tempfile::TempDir, name: &str) -> String {
    std::fs::read_to_string(dir.path().join(name)).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_handler_answers_pings_refusals_and_health_under_the_runtime_api() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = RuntimeApi::start().await;
    let env = [
        ("DISCORD_PUBLIC_KEY", public_key_hex(&key())),
        ("STORE", "embedded".to_string()),
        ("DATA_DIR", dir.path().display().to_string()),
        ("DISCORD_BOT_TOKEN", "MTI5MDQ2MzE4OTQwMTczMTA3Mw.CANARY.e2e-bot-token-canary-0123456789".to_string()),
    ];
    let _f = discord_function(&runtime, &env, dir.path());
    // isBase64Encoded bodies are decoded before verification
    let (status, body) = answer(&runtime, discord_event(br#"{"type":1,"id":"1","token":"t","version":1}"#, true)).await;
    assert_eq!((status, body), (200, json!({"type": 1})));
    let (status, body) = answer(&runtime, discord_event(br#"{"type":1}"#, false)).await;
    assert_eq!((status, body), (200, json!({"type": 1})));
    let mut forged = discord_event(br#"{"type":1}"#, false);
    forged["body"] = json!(r#"{"type":2}"#);
    assert_eq!(answer(&runtime, forged).await.0, 401);
    let mut unsigned = discord_event(br#"{"type":1}"#, false);
    unsigned["headers"].as_object_mut().unwrap().remove("x-signature-ed25519");
    assert_eq!(answer(&runtime, unsigned).await.0, 401);
    assert_eq!(answer(&runtime, discord_event(b"not json", false)).await.0, 400);
    let (status, body) = answer(&runtime, http_api_event("GET", "/health", &[], b"", false)).await;
    assert_eq!(status, 200);
    assert_eq!(body["service"], "discord-handler");
    let (status, body) = answer(&runtime, http_api_event("GET", "/health/ready", &[], b"", false)).await;
    assert_eq!(status, 200, "{body}");
    let log = log_of(&dir, "discord.log");
    assert!(log.lines().any(|l| l.contains("\"msg\":\"discord-handler ready\"")), "{log}");
    assert!(
        log.lines().filter(|l| l.starts_with('{')).all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "a log line is not JSON:\n{log}"
    );
    assert!(!log.contains("e2e-bot-token-canary"), "the bot token leaked into the log");
    assert!(runtime.init_errors().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_status_defers_and_its_job_comes_back_through_the_invoke_api() {
    let dir = tempfile::tempdir().unwrap();
    let discord = MockServer::start().await;
    let github = MockServer::start().await;
    fail_on_unexpected(&discord).await;
    fail_on_unexpected(&github).await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/actions/workflows"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(4)).set_body_json(
            json!({"workflows": [{"id": 1, "name": "CI", "path": ".github/workflows/ci.yml", "state": "active"}]}),
        ))
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/actions/workflows/1/runs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"workflow_runs": [{"id": 9, "status": "completed", "conclusion": "success", "head_branch": "main", "html_url": "https://github.com/acme/widget/actions/runs/9", "run_number": 3}]})))
        .mount(&github)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/api/v10/webhooks/1290463189401731073/e2e-token/messages/@original"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1", "channel_id": "2"})))
        .expect(1)
        .mount(&discord)
        .await;
    let runtime = RuntimeApi::start().await;
    let env = [
        ("DISCORD_PUBLIC_KEY", public_key_hex(&key())),
        ("STORE", "embedded".to_string()),
        ("DATA_DIR", dir.path().display().to_string()),
        ("DISCORD_API_BASE", discord.uri()),
        ("GITHUB_API_BASE", github.uri()),
        ("GITHUB_TOKEN", "ghp_e2e".to_string()),
        ("GITHUB_REPO", "acme/widget".to_string()),
    ];
    let _f = discord_function(&runtime, &env, dir.path());
    let interaction = json!({
        "id": "1400000000000000000", "application_id": "1290463189401731073", "type": 2,
        "data": {"id": "1", "name": "status", "type": 1, "options": []},
        "guild_id": "5", "channel_id": "6",
        "member": {"user": {"id": "42", "username": "oncall", "discriminator": "0", "avatar": null, "global_name": null}, "roles": [], "joined_at": "2026-01-01T00:00:00+00:00", "deaf": false, "mute": false, "flags": 0},
        "token": "e2e-token", "version": 1, "locale": "en-US", "entitlements": [], "authorizing_integration_owners": {}, "attachment_size_limit": 10485760
    });
    let started = std::time::Instant::now();
    let (status, body) = answer(&runtime, discord_event(interaction.to_string().as_bytes(), false)).await;
    assert!(started.elapsed() < Duration::from_secs(3), "answered after {:?}", started.elapsed());
    assert_eq!((status, body), (200, json!({"type": 5})));
    // the job: an Event invocation of the function itself, then the edit of @original
    let mut edited = false;
    for _ in 0..200 {
        if discord.received_requests().await.unwrap_or_default().iter().any(|r| r.method.as_str() == "PATCH") {
            edited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(edited, "the deferred job never edited the message; log:\n{}", log_of(&dir, "discord.log"));
    let jobs = runtime.async_invocations().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["valine_job"]["kind"], "status");
    assert!(!jobs[0].to_string().contains("e2e-token"), "the job's event carries no interaction token: {}", jobs[0]);
    let edit = discord.received_requests().await.unwrap().into_iter().find(|r| r.method.as_str() == "PATCH").unwrap();
    let edit: Value = serde_json::from_slice(&edit.body).unwrap();
    assert_eq!(edit["embeds"][0]["title"], "CI");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_handler_answers_deliveries_and_alerts_under_the_runtime_api() {
    let dir = tempfile::tempdir().unwrap();
    let discord = MockServer::start().await;
    fail_on_unexpected(&discord).await;
    Mock::given(method("POST"))
        .and(path("/api/v10/channels/777/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1", "channel_id": "777"})))
        .expect(1)
        .mount(&discord)
        .await;
    let runtime = RuntimeApi::start().await;
    let env = [
        ("GITHUB_WEBHOOK_SECRET", SECRET.to_string()),
        ("STORE", "embedded".to_string()),
        ("DATA_DIR", dir.path().display().to_string()),
        ("DISCORD_API_BASE", discord.uri()),
        ("DISCORD_BOT_TOKEN", "bot".to_string()),
        ("ENABLE_ALERTS", "true".to_string()),
        ("ALERT_CHANNEL_ID", "777".to_string()),
    ];
    let _f = github_function(&runtime, &env, dir.path());
    let (status, body) =
        answer(&runtime, github_event("ping", br#"{"zen":"Approachable is better than simple.","hook_id":1}"#)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = answer(&runtime, github_event("push", br#"{"ref":"refs/heads/main"}"#)).await;
    assert_eq!(status, 202);
    let failure = json!({
        "action": "completed",
        "workflow_run": {"id": 5, "name": "CI", "head_branch": "main", "head_sha": "abc", "status": "completed", "conclusion": "failure", "html_url": "https://github.com/acme/widget/actions/runs/5", "run_number": 1, "workflow_id": 1, "updated_at": "2026-11-22T14:00:00Z"},
        "workflow": {"id": 1, "name": "CI"},
        "repository": {"full_name": "acme/widget"},
        "sender": {"login": "octocat"}
    });
    let (status, body) = answer(&runtime, github_event("workflow_run", failure.to_string().as_bytes())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["alert"], "sent");
    let mut sha1 = github_event("ping", b"{}");
    sha1["headers"].as_object_mut().unwrap().remove("x-hub-signature-256");
    assert_eq!(answer(&runtime, sha1).await.0, 401);
    let (status, body) = answer(&runtime, http_api_event("GET", "/github/health", &[], b"", false)).await;
    assert_eq!((status, body["service"].as_str()), (200, Some("github-handler")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_required_setting_is_an_init_failure_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = RuntimeApi::start().await;
    let mut f = github_function(
        &runtime,
        &[("STORE", "embedded".into()), ("DATA_DIR", dir.path().display().to_string())],
        dir.path(),
    );
    let status = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = f.child.try_wait().unwrap() {
                return Some(s);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    assert!(status.is_some_and(|s| !s.success()), "github-handler started without GITHUB_WEBHOOK_SECRET");
    let log = log_of(&dir, "github.log");
    assert!(log.contains("GITHUB_WEBHOOK_SECRET"), "{log}");
}
