//! Whole-process timings for docs/PERFORMANCE.md. Each run starts a release binary under the
//! runtime API with the production configuration (bot token, GitHub token, repository, alerts on,
//! the DynamoDB store, which makes no call before a request needs it), sends one request through an
//! HTTP API event (a signed PING to discord-handler, `GET /health` to github-handler: a delivery
//! would reach for DynamoDB, which is not here), and measures process start → answer, then the peak
//! resident memory. The binaries take turns run by run, so the machine's load falls on all of them alike.
//! Then one process of each answers warm requests back to back.
//!
//! `cargo run --release -p valine-e2e --bin coldstart -- [runs]` (default 30).
//!
//! With `--secret-endpoint URL` (moto's server: `python3 scripts/moto-dynamodb.py`), the production
//! configuration as deployed: no secret in the environment, `SECRET_ID` naming a secret this
//! creates on that server, so each handler reads it once at start; the bare binary reads it once
//! too (`BARE_SECRET_ID`), so the yardstick is the floor plus the one read.

// Test tool (valine-e2e): the no-panic lints hold for production code only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::{Duration, Instant};

use valine_e2e::{Function, Outcome, RuntimeApi, http_api_event, release_binary};

const SEED: [u8; 32] = [7; 32];

fn ping_event() -> serde_json::Value {
    let key = ed25519_dalek::SigningKey::from_bytes(&SEED);
    let body = br#"{"type":1,"id":"1","application_id":"1","token":"t","version":1}"#;
    let ts = valine_domain::clock::now_secs().to_string();
    let sig = valine_domain::signing::discord_signature(&key, &ts, body);
    http_api_event(
        "POST",
        "/discord",
        &[("X-Signature-Ed25519", sig), ("X-Signature-Timestamp", ts), ("Content-Type", "application/json".into())],
        body,
        false,
    )
}

/// `GET /health`: github-handler's first answer that needs nothing outside the process.
fn health_event() -> serde_json::Value {
    http_api_event("GET", "/health", &[], b"", false)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Target {
    name: &'static str,
    binary: std::path::PathBuf,
    event: fn() -> serde_json::Value,
    times: Vec<f64>,
    rss_kib: u64,
}

/// Creates the secret the handlers read on moto at `endpoint`; returns its id.
async fn create_secret(endpoint: &str, values: &[(&str, String)]) -> String {
    let sdk = valine_store::dynamo::sdk_loader()
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new("test", "test", None, None, "bench"))
        .load()
        .await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let id = format!("valine-coldstart/{}", std::process::id());
    let doc: serde_json::Map<String, serde_json::Value> =
        values.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone()))).collect();
    client
        .create_secret()
        .name(&id)
        .secret_string(serde_json::Value::Object(doc).to_string())
        .send()
        .await
        .expect("create the secret on the endpoint");
    id
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(30);
    let secret_endpoint = args.iter().position(|a| a == "--secret-endpoint").and_then(|i| args.get(i + 1)).cloned();
    let key = ed25519_dalek::SigningKey::from_bytes(&SEED);
    let public = valine_domain::signing::public_key_hex(&key);
    let dir = std::env::temp_dir().join(format!("valine-coldstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // What Lambda has: both tokens, the repository, alerts on. Nothing is called at start-up.
    let mut env = vec![
        ("DISCORD_PUBLIC_KEY", public.clone()),
        // Shaped like real ones, assembled here so that no token-shaped text sits in the source.
        ("DISCORD_BOT_TOKEN", ["MTI5MDQ2MzE4OTQwMTczMTA3Mw", "Gc0ld5", &"c".repeat(38)].join(".")),
        ("GITHUB_TOKEN", format!("ghp_{}", "0".repeat(36))),
        ("GITHUB_REPO", "acme/widget".to_string()),
        ("GITHUB_WEBHOOK_SECRET", "coldstart-webhook-secret".to_string()),
        ("ADMIN_USER_IDS", "42".to_string()),
        ("ENABLE_ALERTS", "true".to_string()),
        ("ALERT_CHANNEL_ID", "805950613094531075".to_string()),
        ("AUDIT_HMAC_KEY", "coldstart-audit-key".to_string()),
        ("DATA_DIR", dir.display().to_string()),
    ];
    let mut bare_env = env.clone();
    if let Some(endpoint) = &secret_endpoint {
        // As deployed: the secret's keys leave the environment for the secret.
        let secret_keys: Vec<&str> = valine_domain::config::secret_keys().collect();
        let (in_secret, rest): (Vec<_>, Vec<_>) = env.into_iter().partition(|(k, _)| secret_keys.contains(k));
        let id = create_secret(endpoint, &in_secret).await;
        env = rest;
        env.extend([("SECRET_ID", id.clone()), ("AWS_ENDPOINT_URL", endpoint.clone())]);
        bare_env = env.clone();
        bare_env.push(("BARE_SECRET_ID", id));
        println!("production configuration: the secret read once at start from {endpoint}");
    }
    let mut targets = [
        Target {
            name: "bare-lambda",
            binary: release_binary("valine-e2e", "bare-lambda"),
            event: ping_event,
            times: Vec::new(),
            rss_kib: 0,
        },
        Target {
            name: "discord-handler",
            binary: release_binary("valine-discord", "discord-handler"),
            event: ping_event,
            times: Vec::new(),
            rss_kib: 0,
        },
        Target {
            name: "github-handler",
            binary: release_binary("valine-github", "github-handler"),
            event: health_event,
            times: Vec::new(),
            rss_kib: 0,
        },
    ];
    for _ in 0..runs {
        for t in targets.iter_mut() {
            let runtime = RuntimeApi::start().await;
            let f = Function::start(
                &t.binary,
                &runtime,
                "valine-orchestrator-bench",
                if t.name == "bare-lambda" { &bare_env } else { &env },
                &dir.join(format!("{}.log", t.name)),
            );
            let answer = runtime.invoke((t.event)(), Duration::from_secs(10)).await;
            let elapsed = f.started.elapsed();
            match answer {
                Some(Outcome::Response(v)) if v["statusCode"].as_u64().is_none_or(|s| s < 300) => {}
                other => panic!("{} did not answer: {other:?}", t.name),
            }
            t.times.push(elapsed.as_secs_f64() * 1000.0);
            t.rss_kib = t.rss_kib.max(f.peak_rss_kib().unwrap_or(0));
        }
    }
    println!(
        "| binary | runs | cold start median | p90 | min | × bare (median) | peak RSS (max) | warm request mean |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let bare = {
        let mut t = targets[0].times.clone();
        t.sort_by(f64::total_cmp);
        percentile(&t, 0.5)
    };
    for t in targets.iter_mut() {
        // warm: one process, requests back to back
        let runtime = RuntimeApi::start().await;
        let _f = Function::start(
            &t.binary,
            &runtime,
            "valine-orchestrator-bench",
            if t.name == "bare-lambda" { &bare_env } else { &env },
            &dir.join(format!("{}-warm.log", t.name)),
        );
        runtime.invoke((t.event)(), Duration::from_secs(10)).await.expect("first request");
        let warm_runs = 300;
        let started = Instant::now();
        for _ in 0..warm_runs {
            runtime.invoke((t.event)(), Duration::from_secs(10)).await.expect("warm request");
        }
        let warm = started.elapsed().as_secs_f64() * 1000.0 / warm_runs as f64;
        t.times.sort_by(f64::total_cmp);
        let median = percentile(&t.times, 0.5);
        println!(
            "| {} | {runs} | {median:.1} ms | {:.1} ms | {:.1} ms | {:.2}× | {:.1} MiB | {warm:.3} ms |",
            t.name,
            percentile(&t.times, 0.9),
            t.times[0],
            median / bare,
            t.rss_kib as f64 / 1024.0,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
