//! Anything a client can send gets an answer below 500 and never a panic: mutated interactions,
//! correctly signed, and random bodies. The fuzz target `interaction` checks the same under
//! libFuzzer.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method};
use serde_json::{Value, json};
use valine_discord::jobs::LocalJobs;
use valine_discord::{App, AppParts};
use valine_domain::config::Config;
use valine_domain::logging::Capture;
use valine_domain::metrics::Metrics;
use valine_service::http::HttpRequest;
use valine_service::testing::{Rng, discord_key, discord_signature, down_stores, public_key_hex};

fn weird(rng: &mut Rng) -> Value {
    match rng.below(9) {
        0 => Value::Null,
        1 => json!(rng.next_u64()),
        2 => json!(-1),
        3 => json!("x".repeat(rng.below(3000))),
        4 => json!([]),
        5 => json!({}),
        6 => json!(true),
        7 => json!("18446744073709551616"),
        _ => json!("<@&1> @everyone"),
    }
}

/// Replaces a random field somewhere in `v` with something odd.
fn mutate(v: &mut Value, rng: &mut Rng) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = &keys[rng.below(keys.len())];
            if rng.below(3) == 0 {
                map.insert(key.clone(), weird(rng));
            } else if rng.below(4) == 0 {
                map.remove(key);
            } else if let Some(child) = map.get_mut(key) {
                mutate(child, rng);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let i = rng.below(items.len());
            mutate(&mut items[i], rng);
        }
        other => *other = weird(rng),
    }
}

fn base(name: &str, options: Value) -> Value {
    json!({
        "id": "1383825439574851596", "application_id": "1290463189401731073", "type": 2,
        "data": {"id": "1", "name": name, "type": 1, "options": options},
        "guild_id": "5", "channel_id": "6",
        "member": {"user": {"id": "1", "username": "a", "discriminator": "0", "avatar": null}, "roles": ["2"], "joined_at": "2026-01-01T00:00:00+00:00", "deaf": false, "mute": false, "flags": 0},
        "token": "t", "version": 1, "locale": "en-US", "entitlements": [], "authorizing_integration_owners": {}, "attachment_size_limit": 1
    })
}

#[tokio::test]
async fn mutated_and_random_signed_bodies_never_get_a_5xx() {
    let key = discord_key(5);
    let config = Config::from_lookup(|k| match k {
        "DISCORD_PUBLIC_KEY" => Some(public_key_hex(&key)),
        "DRY_RUN" => Some("true".into()),
        "ADMIN_USER_IDS" => Some("1".into()),
        "ENABLE_DEBUG_CMD" => Some("true".into()),
        "AUDIT_HMAC_KEY" => Some("k".into()),
        _ => None,
    })
    .unwrap();
    let (jobs, _rx) = LocalJobs::new();
    let app = App::new(AppParts {
        discord: valine_clients::discord_api::from_config(&config, Duration::from_millis(50)),
        github: None,
        config,
        stores: down_stores(),
        jobs: Arc::new(jobs),
        metrics: Metrics::new("t", Arc::new(Capture::default())),
    })
    .unwrap();
    let seeds = [
        base(
            "relay-send",
            json!([{"name": "channel", "type": 7, "value": "9"}, {"name": "message", "type": 3, "value": "m"}, {"name": "confirm", "type": 5, "value": true}]),
        ),
        base(
            "relay-dm",
            json!([{"name": "user", "type": 6, "value": "9"}, {"name": "message", "type": 3, "value": "m"}]),
        ),
        base("status", json!([{"name": "count", "type": 4, "value": 3}])),
        base("diagnose", json!([{"name": "frontend_url", "type": 3, "value": "https://example.com"}])),
        base("debug-last", json!([])),
        json!({"type": 3, "id": "1", "application_id": "1", "token": "t", "version": 1, "data": {"custom_id": "relay:confirm:x", "component_type": 2}}),
        json!({"type": 4, "data": {"name": "status", "options": [{"name": "workflow", "type": 3, "value": "c", "focused": true}]}}),
    ];
    let mut rng = Rng(0xC0FFEE);
    for i in 0..3000 {
        let body = if i % 10 == 9 {
            (0..rng.below(200)).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>()
        } else {
            let mut v = seeds[rng.below(seeds.len())].clone();
            for _ in 0..=rng.below(3) {
                mutate(&mut v, &mut rng);
            }
            v.to_string().into_bytes()
        };
        let ts = valine_domain::clock::now_secs().to_string();
        let mut headers = HeaderMap::new();
        headers.insert("x-signature-ed25519", HeaderValue::from_str(&discord_signature(&key, &ts, &body)).unwrap());
        headers.insert("x-signature-timestamp", HeaderValue::from_str(&ts).unwrap());
        let res = app.handle(HttpRequest::new(Method::POST, "/discord", headers, body.clone())).await;
        assert!(res.status.as_u16() < 500, "{} for {}", res.status, String::from_utf8_lossy(&body));
        assert!(serde_json::from_str::<Value>(&res.body).is_ok(), "answer is not JSON: {}", res.body);
    }
}
