//! Whole-process timings for docs/PERFORMANCE.md: each run starts a release binary under the
//! runtime API, sends one signed PING through an HTTP API event, and measures process start →
//! answer, then the peak resident memory. Then one process answers warm PINGs back to back.
//!
//! `cargo run --release -p valine-e2e --bin coldstart -- [runs]` (default 30).

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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(30);
    let key = ed25519_dalek::SigningKey::from_bytes(&SEED);
    let public = valine_domain::signing::public_key_hex(&key);
    let dir = std::env::temp_dir().join(format!("valine-coldstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let targets = [
        ("bare-lambda", release_binary("valine-e2e", "bare-lambda")),
        ("discord-handler", release_binary("valine-discord", "discord-handler")),
    ];
    println!("| binary | runs | cold start median | p90 | min | peak RSS (max) | warm PING mean |");
    println!("|---|---|---|---|---|---|---|");
    for (name, binary) in &targets {
        let mut times = Vec::with_capacity(runs);
        let mut rss = 0u64;
        for _ in 0..runs {
            let runtime = RuntimeApi::start().await;
            let env = [("DISCORD_PUBLIC_KEY", public.clone()), ("DATA_DIR", dir.display().to_string())];
            let f = Function::start(
                binary,
                &runtime,
                "valine-orchestrator-discord-bench",
                &env,
                &dir.join(format!("{name}.log")),
            );
            let answer = runtime.invoke(ping_event(), Duration::from_secs(10)).await;
            let elapsed = f.started.elapsed();
            match answer {
                Some(Outcome::Response(v)) if v["body"].as_str() == Some(r#"{"type":1}"#) => {}
                other => panic!("{name} did not answer the PING: {other:?}"),
            }
            times.push(elapsed.as_secs_f64() * 1000.0);
            rss = rss.max(f.peak_rss_kib().unwrap_or(0));
        }
        // warm: one process, PINGs back to back
        let runtime = RuntimeApi::start().await;
        let env = [("DISCORD_PUBLIC_KEY", public.clone()), ("DATA_DIR", dir.display().to_string())];
        let _f = Function::start(
            binary,
            &runtime,
            "valine-orchestrator-discord-bench",
            &env,
            &dir.join(format!("{name}-warm.log")),
        );
        runtime.invoke(ping_event(), Duration::from_secs(10)).await.expect("first PING");
        let warm_runs = 500;
        let started = Instant::now();
        for _ in 0..warm_runs {
            runtime.invoke(ping_event(), Duration::from_secs(10)).await.expect("warm PING");
        }
        let warm = started.elapsed().as_secs_f64() * 1000.0 / warm_runs as f64;
        times.sort_by(f64::total_cmp);
        println!(
            "| {name} | {runs} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} MiB | {:.3} ms |",
            percentile(&times, 0.5),
            percentile(&times, 0.9),
            times[0],
            rss as f64 / 1024.0,
            warm
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
