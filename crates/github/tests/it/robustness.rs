//! Any signed delivery, under any event name, with any mutation of a real payload shape, gets an
//! answer below 500 and never a panic. The fuzz target `webhook` checks the same under libFuzzer.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method};
use serde_json::{Value, json};
use valine_domain::config::Config;
use valine_domain::logging::Capture;
use valine_domain::metrics::Metrics;
use valine_github::{App, AppParts};
use valine_service::http::HttpRequest;
use valine_service::testing::{Rng, github_signature};
use valine_store::Stores;
use valine_store::embedded::EmbeddedStore;

fn weird(rng: &mut Rng) -> Value {
    match rng.below(8) {
        0 => Value::Null,
        1 => json!(rng.next_u64()),
        2 => json!(-7.5),
        3 => json!("ü".repeat(rng.below(500))),
        4 => json!([1, "2"]),
        5 => json!({"login": {}}),
        6 => json!("2026-13-45T99:99:99Z"),
        _ => json!("6f1c2a4e-8b3d-4c5e-9f70-112233445566"),
    }
}

fn mutate(v: &mut Value, rng: &mut Rng) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = &keys[rng.below(keys.len())];
            match rng.below(4) {
                0 => {
                    map.insert(key.clone(), weird(rng));
                }
                1 => {
                    map.remove(key);
                }
                _ => {
                    if let Some(child) = map.get_mut(key) {
                        mutate(child, rng);
                    }
                }
            }
        }
        other => *other = weird(rng),
    }
}

#[tokio::test]
async fn mutated_deliveries_never_get_a_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let stores = Stores::from_adapter(Arc::new(EmbeddedStore::open(&dir.path().join("r.redb")).unwrap()), "embedded");
    let config = Config::from_lookup(|k| match k {
        "GITHUB_WEBHOOK_SECRET" => Some("s".into()),
        "DRY_RUN" => Some("true".into()),
        "ENABLE_ALERTS" => Some("true".into()),
        "ALERT_CHANNEL_ID" => Some("1".into()),
        _ => None,
    })
    .unwrap();
    let app = App::new(AppParts {
        discord: valine_clients::discord_api::from_config(&config, Duration::from_millis(50)),
        config,
        stores,
        metrics: Metrics::new("t", Arc::new(Capture::default())),
    })
    .unwrap();
    let seeds = [
        (
            "workflow_run",
            json!({"action": "completed", "workflow_run": {"id": 1, "name": "CI", "display_title": "t", "head_branch": "main", "head_sha": "a", "status": "completed", "conclusion": "failure", "html_url": "h", "run_number": 1, "workflow_id": 2, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:01:00Z", "actor": {"login": "o"}}, "workflow": {"id": 2, "name": "CI"}, "repository": {"full_name": "a/b"}, "sender": {"login": "o"}}),
        ),
        (
            "deployment_status",
            json!({"action": "created", "deployment_status": {"state": "failure", "environment": "production", "creator": {"login": "d"}}, "deployment": {"ref": "main", "sha": "s"}, "repository": {"full_name": "a/b"}}),
        ),
        ("ping", json!({"zen": "z", "hook_id": 1, "hook": {"id": 1}})),
        ("push", json!({"ref": "refs/heads/main"})),
    ];
    let mut rng = Rng(0xFEED);
    for i in 0..2000 {
        let (event, seed) = &seeds[rng.below(seeds.len())];
        let mut v = seed.clone();
        for _ in 0..=rng.below(3) {
            mutate(&mut v, &mut rng);
        }
        let body = if i % 10 == 9 {
            (0..rng.below(100)).map(|_| rng.next_u64() as u8).collect()
        } else {
            v.to_string().into_bytes()
        };
        let mut headers = HeaderMap::new();
        headers.insert("x-github-event", HeaderValue::from_static(event));
        headers.insert("x-github-delivery", HeaderValue::from_str(&format!("d-{i}")).unwrap());
        headers.insert("x-hub-signature-256", HeaderValue::from_str(&github_signature("s", &body)).unwrap());
        let res = app.handle(HttpRequest::new(Method::POST, "/github/webhook", headers, body.clone())).await;
        assert!(res.status.as_u16() < 500, "{} for {}", res.status, String::from_utf8_lossy(&body));
    }
}
