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

fn sub(name: &str, options: Value) -> Value {
    json!([{"name": name, "type": 1, "options": options}])
}

#[tokio::test]
async fn known_links_marks_lists_and_forgets_for_responders_only() {
    let h = Harness::new(&[("RESPONDER_ROLE_IDS", "777")]).await;
    let link = sub(
        "link",
        json!([
            opt("signature", 3, json!("s0a1b2c3d4e")),
            opt("issue", 3, json!("#42")),
            opt("note", 3, json!("flaky DNS in integration tests"))
        ]),
    );
    // a stranger is refused, and the refusal is audited
    let (_, a) = h.send(&command(600, STRANGER, "known", link.clone())).await;
    assert!(content(&a).contains("Only admins"), "{a}");
    assert_eq!(h.app.stores.signatures.known("s0a1b2c3d4e").await.unwrap(), None);
    let records = h.app.stores.audit.by_user(&STRANGER.to_string(), 10).await.unwrap();
    assert_eq!((records[0].command.as_str(), records[0].result), ("/known", AuditResult::Blocked));
    // a responder links it
    let mut cmd = command(601, STRANGER, "known", link);
    cmd["member"] = member(STRANGER, &[777]);
    let (_, a) = h.send(&cmd).await;
    assert_eq!(a["data"]["flags"], 64, "{a}");
    assert!(content(&a).contains("known: #42 — flaky DNS in integration tests"), "{a}");
    let kept = h.app.stores.signatures.known("s0a1b2c3d4e").await.unwrap().unwrap();
    assert_eq!((kept.issue.as_deref(), kept.transient, kept.by), (Some("#42"), false, STRANGER));
    // an admin marks another transient; a bad signature or issue is refused
    let (_, a) = h
        .send(&command(602, ADMIN, "known", sub("transient", json!([opt("signature", 3, json!("s99999999ff"))]))))
        .await;
    assert!(content(&a).contains("known: transient"), "{a}");
    let (_, a) =
        h.send(&command(603, ADMIN, "known", sub("transient", json!([opt("signature", 3, json!("$(id)"))])))).await;
    assert!(content(&a).contains("signature"), "{a}");
    let bad = sub("link", json!([opt("signature", 3, json!("s0a1b2c3d4e")), opt("issue", 3, json!("javascript:x"))]));
    let (_, a) = h.send(&command(604, ADMIN, "known", bad)).await;
    assert!(content(&a).contains("not an issue"), "{a}");
    // listed, then forgotten
    let (_, a) = h.send(&command(605, ADMIN, "known", sub("list", json!([])))).await;
    let text = content(&a);
    assert!(text.contains("`s0a1b2c3d4e` known: #42") && text.contains("`s99999999ff` known: transient"), "{text}");
    let (_, a) =
        h.send(&command(606, ADMIN, "known", sub("forget", json!([opt("signature", 3, json!("s0a1b2c3d4e"))])))).await;
    assert!(content(&a).contains("no longer known"), "{a}");
    assert_eq!(h.app.stores.signatures.known("s0a1b2c3d4e").await.unwrap(), None);
    let audited = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    assert_eq!(audited.iter().filter(|r| r.command == "/known" && r.result == AuditResult::Posted).count(), 2);
}

#[tokio::test]
async fn mark_known_opens_a_form_whose_submission_links_the_signature() {
    let h = Harness::new(&[("RESPONDER_ROLE_IDS", "777")]).await;
    let (_, a) = h.send(&click(610, STRANGER, "v1:known:mark:s0a1b2c3d4e")).await;
    assert!(content(&a).contains("Only admins"), "{a}");
    let mut press = click(611, STRANGER, "v1:known:mark:s0a1b2c3d4e");
    press["member"] = member(STRANGER, &[777]);
    let (_, a) = h.send(&press).await;
    assert_eq!(a["type"], 9, "a form: {a}");
    assert_eq!(a["data"]["custom_id"], "v1:known:form:s0a1b2c3d4e");
    let inputs: Vec<&str> = a["data"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["components"][0]["custom_id"].as_str().unwrap())
        .collect();
    assert_eq!(inputs, ["issue", "note"]);
    assert!(valine_domain::message::violations(&a).is_empty(), "{:?}", valine_domain::message::violations(&a));
    let submit = |user: u64, roles: &[u64]| {
        envelope(
            5,
            612,
            user,
            roles,
            json!({"custom_id": "v1:known:form:s0a1b2c3d4e", "components": [
            {"type": 1, "components": [{"type": 4, "custom_id": "issue", "value": "https://github.com/acme/widget/issues/42"}]},
            {"type": 1, "components": [{"type": 4, "custom_id": "note", "value": "flaky DNS"}]}]}),
        )
    };
    let (_, a) = h.send(&submit(STRANGER, &[])).await;
    assert!(content(&a).contains("Only admins"), "a form replayed by someone else links nothing: {a}");
    assert_eq!(h.app.stores.signatures.known("s0a1b2c3d4e").await.unwrap(), None);
    let (_, a) = h.send(&submit(STRANGER, &[777])).await;
    assert!(content(&a).contains("known: https://github.com/acme/widget/issues/42 — flaky DNS"), "{a}");
    assert!(h.app.stores.signatures.known("s0a1b2c3d4e").await.unwrap().is_some_and(|k| k.silences()));
}
