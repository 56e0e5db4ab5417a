//! The Discord handler: /debug-last.

use crate::common::*;

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
