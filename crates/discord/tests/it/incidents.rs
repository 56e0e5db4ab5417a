//! The Discord handler: /incidents, /mutes, /flaky and the incident buttons. The incident lifecycle itself
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
async fn flaky_lists_the_flakiest_jobs_of_the_window_privately() {
    use valine_store::Flake;
    let h = Harness::new(&[]).await;
    let (_, a) = h.send(&command(520, STRANGER, "flaky", json!([]))).await;
    assert_eq!(a["data"]["flags"], 64, "{a}");
    assert!(content(&a).contains("No flakes in the last 14 days"), "{a}");
    let now = valine_domain::clock::now_secs();
    let flake = |run_id: u64, repo: &str, job: &str, ago_days: u64| Flake {
        signature: Some("s0a1b2c3d4e".into()),
        at: now - ago_days * 24 * 3600 - 60,
        repository: repo.into(),
        workflow: "CI".into(),
        job: Some(job.into()),
        branch: "main".into(),
        run_id,
        run_number: run_id - 5000,
        attempt: 2,
    };
    for f in [
        flake(5041, "acme/widget", "integration", 1),
        flake(5040, "acme/widget", "integration", 3),
        flake(5039, "acme/widget", "unit", 2),
        flake(5020, "acme/widget", "unit", 20),
        flake(5010, "acme/other", "e2e", 1),
    ] {
        h.app.stores.signatures.flake(&f).await.unwrap();
    }
    let (_, a) =
        h.send(&command(521, STRANGER, "flaky", json!([{"name": "repo", "type": 3, "value": "acme/widget"}]))).await;
    let text = content(&a);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].contains("Flakiest jobs in acme/widget, last 14 days"), "{text}");
    assert!(lines[1].contains("CI › integration `s0a1b2c3d4e` (acme/widget): 2× (last 1d ago, #41)"), "{text}");
    assert!(
        lines[2].contains("CI › unit `s0a1b2c3d4e` (acme/widget): 1×"),
        "the 20-day-old one is out of the window: {text}"
    );
    let (_, a) = h.send(&command(522, STRANGER, "flaky", json!([{"name": "days", "type": 4, "value": 30}]))).await;
    let text = content(&a);
    assert!(text.contains("unit `s0a1b2c3d4e` (acme/widget): 2×") && text.contains("acme/other"), "{text}");
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
