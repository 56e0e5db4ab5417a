//! The Discord handler: /incidents, /mutes and the incident buttons. The incident lifecycle itself
//! is tested in the GitHub handler's tests; here, that the Discord side routes to it.

use crate::common::*;

#[tokio::test]
async fn incidents_and_mutes_answer_privately() {
    let h = Harness::new(&[]).await;
    let (_, a) = h.send(&command(500, STRANGER, "incidents", json!([]))).await;
    assert_eq!(a["data"]["flags"], 64, "{a}");
    assert!(content(&a).contains("No open incidents"), "{a}");
    let (_, a) = h.send(&command(501, STRANGER, "mutes", json!([]))).await;
    assert_eq!(a["data"]["flags"], 64, "{a}");
    assert!(content(&a).contains("No active mutes"), "{a}");
}

#[tokio::test]
async fn incident_buttons_are_for_responders_and_checked_against_the_store() {
    let h = Harness::new(&[("RESPONDER_ROLE_IDS", "777")]).await;
    // A stranger: refused, audited, and GitHub never hears of it (the mock fails on any request).
    let (_, a) = h.send(&click(510, STRANGER, "v1:inc:rerun:0123456789ab-1")).await;
    assert_eq!(a["data"]["flags"], 64, "{a}");
    assert!(content(&a).contains('⛔'), "{a}");
    let records = h.app.stores.audit.by_user(&STRANGER.to_string(), 10).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!((records[0].command.as_str(), records[0].result), ("incident.rerun", AuditResult::Blocked));
    // A responder, on an incident the store does not have: nothing happens.
    let mut press = click(511, ADMIN, "v1:inc:mute:0123456789ab-1");
    press["member"] = member(ADMIN, &[777]);
    press["data"]["values"] = json!(["4h"]);
    let (_, a) = h.send(&press).await;
    assert!(content(&a).contains("unknown"), "{a}");
}
