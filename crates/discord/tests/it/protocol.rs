//! The Discord handler: protocol.

use crate::common::*;

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
    // signed but sparse (older docs samples): read leniently and answered; with no guild it
    // counts as a DM, where relays do not run
    let partial = h.app.handle(h.signed(br#"{"type":2,"data":{"name":"relay-send"}}"#)).await;
    assert_eq!(partial.status, StatusCode::OK);
    assert!(partial.body.contains("direct message"), "{}", partial.body);
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

/// The same command sent from a DM: no guild, no member, the caller under `user`.
fn from_dm(mut req: Value, user: u64) -> Value {
    let o = req.as_object_mut().unwrap();
    o.remove("guild_id");
    o.remove("member");
    o.insert("user".into(), json!({"id": user.to_string(), "username": "someone"}));
    o.insert("context".into(), json!(1));
    req
}

#[tokio::test]
async fn only_the_team_server_is_served_and_dms_only_for_debug_last() {
    let h = Harness::new(&[("ALLOWED_GUILD_IDS", "805588225228931074"), ("ENABLE_DEBUG_CMD", "true")]).await;
    // Another server: refused and audited.
    let mut other = command(280, STRANGER, "status", json!([]));
    other["guild_id"] = json!("999999999999999999");
    let (status, a) = h.send(&other).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(a["data"]["flags"], 64);
    assert!(content(&a).contains("ALLOWED_GUILD_IDS"), "{a}");
    // A DM: refused and audited.
    let (_, a) = h.send(&from_dm(command(281, STRANGER, "status", json!([])), STRANGER)).await;
    assert!(content(&a).contains("direct message"), "{a}");
    let records = h.app.stores.audit.by_user(&STRANGER.to_string(), 10).await.unwrap();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.result == AuditResult::Blocked && r.command == "/status"));
    // /debug-last in a DM is answered.
    let (_, a) = h.send(&from_dm(command(282, STRANGER, "debug-last", json!([])), STRANGER)).await;
    assert_eq!(a["type"], 4);
    assert!(!content(&a).contains("direct message"), "{a}");
    assert_eq!(h.app.stores.audit.by_user(&STRANGER.to_string(), 10).await.unwrap().len(), 2);
}
