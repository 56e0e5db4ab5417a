//! The `bootstrap` files `sam build` made (`.aws-sam/build/<Function>/bootstrap`), under the
//! Runtime API: each answers a signed PING or ping delivery and refuses an unsigned one. These are
//! the files `sam deploy` zips, so this proves the deployment path, not only the release build.
//! They run when `VALINE_BOOTSTRAP_DIR` names sam build's output (`.ci/run` builds it before the
//! tests and sets it, with `VALINE_REQUIRE_BOOTSTRAP=1` so that a missing directory fails rather
//! than skips): `VALINE_BOOTSTRAP_DIR=.aws-sam/build cargo test -p valine-e2e --test it bootstrap::`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use valine_domain::clock::now_secs;
use valine_domain::signing::{discord_signature, github_signature, public_key_hex};
use valine_e2e::{Function, Outcome, RuntimeApi, built_bootstrap, http_api_event};

const SEED: [u8; 32] = [23; 32];
const SECRET: &str = "bootstrap-webhook-secret";

/// `$VALINE_BOOTSTRAP_DIR/<function>/bootstrap`; `None` (the test skips) when it is not set,
/// unless `VALINE_REQUIRE_BOOTSTRAP=1`.
fn bootstrap(function: &str) -> Option<PathBuf> {
    let found = built_bootstrap(function);
    if found.is_none() {
        assert!(
            std::env::var("VALINE_REQUIRE_BOOTSTRAP").as_deref() != Ok("1"),
            "VALINE_REQUIRE_BOOTSTRAP=1 but VALINE_BOOTSTRAP_DIR is not set"
        );
        eprintln!("skipping: set VALINE_BOOTSTRAP_DIR to sam build's output (or run .ci/run)");
    }
    found
}

async fn answer(runtime: &RuntimeApi, event: Value) -> (u16, Value) {
    match runtime.invoke(event, Duration::from_secs(20)).await {
        Some(Outcome::Response(r)) => {
            let body = serde_json::from_str(r["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
            (r["statusCode"].as_u64().unwrap_or(0) as u16, body)
        }
        other => panic!("no answer from the bootstrap: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_discord_bootstrap_answers_a_signed_ping() {
    let Some(bootstrap) = bootstrap("DiscordFunction") else { return };
    let dir = tempfile::tempdir().unwrap();
    let runtime = RuntimeApi::start().await;
    let key = ed25519_dalek::SigningKey::from_bytes(&SEED);
    let env = [
        ("DISCORD_PUBLIC_KEY", public_key_hex(&key)),
        ("STORE", "embedded".to_string()),
        ("DATA_DIR", dir.path().display().to_string()),
    ];
    let _f = Function::start(
        &bootstrap,
        &runtime,
        "valine-orchestrator-discord-bootstrap",
        &env,
        &dir.path().join("discord.log"),
    );
    let body = br#"{"type":1,"id":"1","token":"t","version":1}"#;
    let ts = now_secs().to_string();
    let signed = http_api_event(
        "POST",
        "/discord",
        &[
            ("X-Signature-Ed25519", discord_signature(&key, &ts, body)),
            ("X-Signature-Timestamp", ts),
            ("Content-Type", "application/json".into()),
        ],
        body,
        false,
    );
    let (status, answer_body) = answer(&runtime, signed).await;
    let log = std::fs::read_to_string(dir.path().join("discord.log")).unwrap_or_default();
    assert_eq!((status, answer_body), (200, json!({"type": 1})), "{log}");
    let unsigned = http_api_event("POST", "/discord", &[("Content-Type", "application/json".into())], body, false);
    assert_eq!(answer(&runtime, unsigned).await.0, 401);
    println!("DiscordFunction/bootstrap answered a signed PING with PONG and refused an unsigned one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_github_bootstrap_answers_a_signed_ping() {
    let Some(bootstrap) = bootstrap("GitHubFunction") else { return };
    let dir = tempfile::tempdir().unwrap();
    let runtime = RuntimeApi::start().await;
    let env = [
        ("GITHUB_WEBHOOK_SECRET", SECRET.to_string()),
        ("STORE", "embedded".to_string()),
        ("DATA_DIR", dir.path().display().to_string()),
    ];
    let _f = Function::start(
        &bootstrap,
        &runtime,
        "valine-orchestrator-github-bootstrap",
        &env,
        &dir.path().join("github.log"),
    );
    let body = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    let delivery = |signature: String| {
        http_api_event(
            "POST",
            "/github/webhook",
            &[
                ("X-GitHub-Event", "ping".to_string()),
                ("X-GitHub-Delivery", format!("bootstrap-{}", now_secs())),
                ("X-Hub-Signature-256", signature),
                ("Content-Type", "application/json".into()),
            ],
            body,
            false,
        )
    };
    let (status, answer_body) = answer(&runtime, delivery(github_signature(SECRET, body))).await;
    let log = std::fs::read_to_string(dir.path().join("github.log")).unwrap_or_default();
    assert_eq!(status, 200, "{answer_body} {log}");
    assert_eq!(answer_body["event"], "ping");
    assert_eq!(answer(&runtime, delivery(github_signature("another secret", body))).await.0, 401);
    println!("GitHubFunction/bootstrap answered a signed ping delivery and refused a wrongly signed one");
}
