//! The Discord handler: logs.

use crate::common::*;

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
