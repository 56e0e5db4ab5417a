//! The fuzz checks on generated inputs, inside `cargo test`: arbitrary bytes, and mutations of
//! well-formed interactions and deliveries (the inputs that get furthest into the handlers).

use proptest::prelude::*;
use serde_json::json;

fn config() -> ProptestConfig {
    // Enough to reach every branch the seeds open, quick enough for every test run.
    ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() }
}

/// A command interaction the bot would run, as bytes.
fn interaction_seed(name: &str, options: serde_json::Value) -> Vec<u8> {
    json!({
        "id": "1", "type": 2, "token": "t", "application_id": "2", "version": 1,
        "guild_id": "3", "channel_id": "4",
        "member": {"user": {"id": "1", "username": "a"}, "roles": ["5"]},
        "data": {"id": "6", "name": name, "type": 1, "options": options}
    })
    .to_string()
    .into_bytes()
}

fn interaction_seeds() -> Vec<Vec<u8>> {
    vec![
        br#"{"type":1}"#.to_vec(),
        interaction_seed("status", json!([{"name": "count", "type": 4, "value": 3}])),
        interaction_seed("diagnose", json!([{"name": "frontend_url", "type": 3, "value": "https://example.com"}])),
        interaction_seed("relay-send", json!([{"name": "message", "type": 3, "value": "hi"}])),
        interaction_seed("debug-last", json!([])),
        interaction_seed("incidents", json!([])),
        json!({"id": "1", "type": 3, "token": "t", "application_id": "2", "guild_id": "3", "channel_id": "4",
               "member": {"user": {"id": "1", "username": "a"}, "roles": []},
               "data": {"custom_id": "v1:confirm:abc", "component_type": 2}})
        .to_string()
        .into_bytes(),
    ]
}

fn webhook_seeds() -> Vec<Vec<u8>> {
    let run = |conclusion: &str, number: u64| {
        json!({
            "action": "completed",
            "workflow_run": {"id": number, "run_number": number, "run_attempt": 1, "name": "ci", "path": ".github/workflows/ci.yml",
                "head_branch": "main", "head_sha": "abc", "status": "completed", "conclusion": conclusion,
                "html_url": "https://github.com/o/r/actions/runs/1", "created_at": "2026-01-01T00:00:00Z",
                "updated_at": "2026-01-01T00:01:00Z", "actor": {"login": "a", "id": 1}},
            "repository": {"full_name": "o/r"}
        })
        .to_string()
        .into_bytes()
    };
    vec![run("failure", 7), run("success", 8), run("failure", 9), br#"{"zen":"x","hook_id":1}"#.to_vec()]
}

/// Flips, inserts and deletes bytes of one of the seeds.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = seeds.len();
    (0..n, prop::collection::vec((any::<u16>(), any::<u8>(), 0u8..3), 0..8)).prop_map(move |(i, edits)| {
        let mut b = seeds[i].clone();
        for (at, byte, kind) in edits {
            let at = if b.is_empty() { 0 } else { at as usize % b.len() };
            match kind {
                0 if !b.is_empty() => b[at] = byte,
                1 => b.insert(at, byte),
                _ if !b.is_empty() => {
                    b.remove(at);
                }
                _ => b.push(byte),
            }
        }
        b
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn redact_on_any_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        valine_harness::redact(&data);
    }

    #[test]
    fn redact_on_any_text(text in "\\PC{0,200}") {
        valine_harness::redact(text.as_bytes());
    }

    #[test]
    fn interaction_on_any_bytes(data in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = valine_harness::interaction_bytes(&data);
    }

    #[test]
    fn interaction_on_mutated_commands(sign in any::<bool>(), data in mutated(interaction_seeds())) {
        let _ = valine_harness::interaction(sign, &data);
    }

    #[test]
    fn webhook_on_any_bytes(data in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = valine_harness::webhook_bytes(&data);
    }

    #[test]
    fn webhook_on_mutated_deliveries(event in prop::sample::select(&valine_harness::EVENTS[..]), data in mutated(webhook_seeds())) {
        let _ = valine_harness::webhook(event, &data);
    }
}

/// The seeds themselves are well-formed, so the mutations start from inputs that reach the
/// commands and the event handlers rather than the parser's first refusal.
#[test]
fn the_seeds_reach_the_handlers() {
    for seed in interaction_seeds() {
        let status = valine_harness::interaction(true, &seed);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&seed));
        assert_eq!(valine_harness::interaction(false, &seed), 401);
    }
    for seed in webhook_seeds() {
        let status = valine_harness::webhook("workflow_run", &seed);
        assert!((200..300).contains(&status), "{status} for {}", String::from_utf8_lossy(&seed));
    }
}
