//! The Discord handler: /diagnose.

use crate::common::*;

/// The URLs are inputs of the diagnose workflow: typed text a shell would run is refused before
/// parsing, audited as blocked, and nothing is dispatched.
#[tokio::test]
async fn diagnose_refuses_urls_a_shell_would_run() {
    let h = Harness::new(&[]).await;
    let cases = [
        ("https://app.example.com/`id`", "a shell metacharacter (a backtick)"),
        ("https://app.example.com/$(id)", "a shell metacharacter (`$`)"),
        ("https://app.example.com/;id", "a shell metacharacter (`;`)"),
        ("https://app.example.com/x|id", "a shell metacharacter (`|`)"),
        ("https://app.example.com/x\nid", "a control character (a line break, say)"),
        ("https://app.example.com/'x", "a quote (`'`)"),
    ];
    for (k, (url, holds)) in cases.iter().enumerate() {
        let (_, a) =
            h.send(&command(320 + k as u64, STRANGER, "diagnose", json!([opt("frontend_url", 3, json!(url))]))).await;
        assert!(content(&a).contains(&format!("`frontend_url` was refused: the URL holds {holds}.")), "{url:?}: {a}");
    }
    let records = h.app.stores.audit.by_user(&STRANGER.to_string(), 20).await.unwrap();
    assert_eq!(records.iter().filter(|r| r.result == AuditResult::Blocked).count(), cases.len(), "{records:?}");
    assert!(h.github.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn diagnose_refuses_local_urls_and_dispatches_public_ones() {
    let h = Harness::new(&[]).await;
    let (_, a) = h
        .send(&command(
            300,
            STRANGER,
            "diagnose",
            json!([opt("frontend_url", 3, json!("https://169.254.169.254/latest"))]),
        ))
        .await;
    assert!(content(&a).contains("`frontend_url` was refused: link-local addresses are not allowed"), "{a}");
    let (_, a) =
        h.send(&command(301, STRANGER, "diagnose", json!([opt("api_base", 3, json!("https://0x7f.1/"))]))).await;
    assert!(content(&a).contains("loopback"), "{a}");
    // both refusals are audited, naming the option and the reason but never the address
    let records = h.app.stores.audit.by_user(&STRANGER.to_string(), 10).await.unwrap();
    let blocked: Vec<_> = records.iter().filter(|r| r.result == AuditResult::Blocked).collect();
    assert_eq!(blocked.len(), 2, "{records:?}");
    assert!(blocked.iter().all(|r| r.command == "/diagnose"));
    let options: Vec<&str> = blocked.iter().map(|r| r.metadata["option"].as_str()).collect();
    assert!(options.contains(&"frontend_url") && options.contains(&"api_base"), "{options:?}");
    let stored = serde_json::to_string(&records).unwrap();
    assert!(!stored.contains("169.254") && !stored.contains("0x7f"), "{stored}");
    assert!(blocked.iter().all(|r| r.metadata["reason"].contains("was refused")), "{records:?}");

    Mock::given(method("POST"))
        .and(path("/repos/acme/widget/actions/workflows/diagnose.yml/dispatches"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&h.github)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("/api/v10/webhooks/{APP_ID}/interaction-token-302/messages/@original")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "5", "channel_id": "1"})))
        .expect(1)
        .mount(&h.discord)
        .await;
    let options = json!([
        opt("frontend_url", 3, json!("https://app.example.com/")),
        opt("api_base", 3, json!("https://api.example.com"))
    ]);
    let (_, a) = h.send(&command(302, STRANGER, "diagnose", options)).await;
    assert_eq!(a, json!({"type": 5}));
    let edits = wait_for(&h.discord, 1, is_edit).await;
    let edit: Value = serde_json::from_slice(&edits[0].body).unwrap();
    assert!(edit.to_string().contains("Dispatched"), "{edit}");
    let dispatch = h
        .github
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path().ends_with("/dispatches"))
        .unwrap();
    let sent: Value = serde_json::from_slice(&dispatch.body).unwrap();
    assert_eq!(sent["ref"], "main");
    let corr = sent["inputs"]["correlation_id"].as_str().unwrap();
    assert_eq!(
        sent["inputs"],
        json!({"correlation_id": corr, "requester": format!("user{STRANGER} ({STRANGER})"), "frontend_url": "https://app.example.com/", "api_base": "https://api.example.com/"})
    );
    let stored = h.app.stores.runs.get_correlation(corr).await.unwrap().unwrap();
    assert_eq!(stored.interaction_token, "interaction-token-302");
    assert_eq!(stored.application_id, APP_ID);
}

#[tokio::test]
async fn a_host_outside_allowed_domains_is_named_to_the_caller_but_not_stored() {
    let h = Harness::new(&[("ALLOWED_DOMAINS", "example.com")]).await;
    let options = json!([opt("frontend_url", 3, json!("https://secret-staging.internal.acme.io/"))]);
    let (_, a) = h.send(&command(305, STRANGER, "diagnose", options)).await;
    assert!(content(&a).contains("secret-staging.internal.acme.io is not in ALLOWED_DOMAINS"), "{a}");
    let records = h.app.stores.audit.by_user(&STRANGER.to_string(), 10).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].metadata["reason"], "`frontend_url` was refused: the host is not in ALLOWED_DOMAINS.");
    assert!(!serde_json::to_string(&records).unwrap().contains("acme.io"));
}

#[tokio::test]
async fn diagnose_dispatch_failure_is_told_and_alerted() {
    let h = Harness::new(&[("ENABLE_ALERTS", "true"), ("ALERT_CHANNEL_ID", "999")]).await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/widget/actions/workflows/diagnose.yml/dispatches"))
        .respond_with(
            ResponseTemplate::new(422)
                .set_body_json(json!({"message": "Workflow does not have 'workflow_dispatch' trigger"})),
        )
        .mount(&h.github)
        .await;
    // the error goes to the caller only: the public "thinking…" ends in a neutral note (Discord
    // would otherwise make the first follow-up the public message itself), the details follow
    // ephemerally, and the note is deleted
    Mock::given(method("PATCH"))
        .and(path(format!("/api/v10/webhooks/{APP_ID}/interaction-token-303/messages/@original")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "5", "channel_id": CHANNEL.to_string()})))
        .expect(1)
        .mount(&h.discord)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/api/v10/webhooks/{APP_ID}/interaction-token-303")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "8", "channel_id": CHANNEL.to_string()})))
        .expect(1)
        .mount(&h.discord)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/api/v10/webhooks/{APP_ID}/interaction-token-303/messages/@original")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&h.discord)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v10/channels/999/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "7", "channel_id": "999"})))
        .expect(1)
        .mount(&h.discord)
        .await;
    let (_, a) = h.send(&command(303, STRANGER, "diagnose", json!([]))).await;
    assert_eq!(a["type"], 5);
    let told = wait_for(&h.discord, 1, |r| r.url.path().ends_with("/interaction-token-303")).await;
    let told: Value = serde_json::from_slice(&told[0].body).unwrap();
    assert_eq!(told["flags"], 64, "{told}");
    assert_eq!(told["allowed_mentions"], json!({"parse": []}));
    let text = told["content"].as_str().unwrap();
    assert!(
        text.contains("Could not dispatch") && text.contains("workflow_dispatch") && text.contains("trace"),
        "{text}"
    );
    wait_for(&h.discord, 1, |r| r.method.as_str() == "DELETE").await;
    let order: Vec<String> = h
        .discord
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().contains("/webhooks/"))
        .map(|r| r.method.to_string())
        .collect();
    assert_eq!(order, ["PATCH", "POST", "DELETE"]);
    let note: Value = serde_json::from_slice(
        &h.discord.received_requests().await.unwrap().iter().find(|r| r.method.as_str() == "PATCH").unwrap().body,
    )
    .unwrap();
    let note = note["content"].as_str().unwrap();
    assert!(note.contains("sent to") && !note.contains("workflow_dispatch"), "the public note says nothing: {note}");
    let alerts = wait_for(&h.discord, 1, |r| r.url.path() == "/api/v10/channels/999/messages").await;
    let alert: Value = serde_json::from_slice(&alerts[0].body).unwrap();
    assert!(alert.to_string().contains("dispatch"), "{alert}");
    assert_eq!(alert["allowed_mentions"]["parse"], json!([]));
}

/// The event of a `/diagnose` job, as `Ctx::defer` hands it over.
fn job(id: &str, token: &str, frontend_url: Option<&str>) -> serde_json::Value {
    let ctx = valine_discord::jobs::JobContext {
        job_id: id.to_string(),
        roles: Some(vec![]),
        application_id: APP_ID,
        token: token.to_string(),
        user_id: STRANGER,
        user_name: "someone".into(),
        trace: valine_domain::trace::TraceRecorder::new(STRANGER.to_string(), "/diagnose".to_string()).snapshot(),
        invoked_arn: None,
    };
    let job = valine_discord::commands::diagnose::DiagnoseJob {
        ctx,
        correlation_id: uuid::Uuid::new_v4().to_string(),
        frontend_url: frontend_url.map(str::to_string),
        api_base: None,
        repo: None,
    };
    valine_discord::deferred::handover(&job).unwrap().event
}

#[tokio::test]
async fn a_job_checks_again_what_the_command_checked_and_runs_once() {
    let h = Harness::new(&[]).await;
    // Whatever the job tells its caller goes through the interaction webhook.
    Mock::given(wiremock::matchers::path_regex(format!("^/api/v10/webhooks/{APP_ID}/.*")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "5", "channel_id": "1"})))
        .mount(&h.discord)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/widget/actions/workflows/diagnose.yml/dispatches"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&h.github)
        .await;
    // The tokens wait in the store, as `Ctx::defer` leaves them; the events carry none.
    let expires_at = valine_domain::clock::now_secs() + 900;
    for (job_id, token) in [("forged-1", "forged-token"), ("real-1", "real-token")] {
        let ticket = valine_store::JobTicket { job_id: job_id.into(), token: token.into(), expires_at };
        h.app.stores.confirmations.put_job_ticket(&ticket).await.unwrap();
    }
    let event = job("real-1", "real-token", None).to_string();
    assert!(!event.contains("real-token"), "a job's event carries no interaction token");
    assert_eq!(job("real-1", "", None)["valine_job"]["kind"], "diagnose");
    // A forged job with a URL the guard refuses: nothing is dispatched.
    h.app.run_job(job("forged-1", "", Some("https://169.254.169.254/latest"))).await;
    // A job whose ticket was never written (or already taken) does nothing at all.
    h.app.run_job(job("unknown-1", "", Some("https://app.example.com/"))).await;
    // A real one, handed over twice: dispatched once.
    let real = job("real-1", "", Some("https://app.example.com/"));
    h.app.run_job(real.clone()).await;
    h.app.run_job(real).await;
    let dispatches = h
        .github
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path().ends_with("/dispatches"))
        .count();
    assert_eq!(dispatches, 1);
    let told: Vec<String> = h
        .discord
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().contains("forged-token"))
        .map(|r| String::from_utf8_lossy(&r.body).to_string())
        .collect();
    assert!(told.iter().any(|b| b.contains("Nothing was dispatched") && b.contains("link-local")), "{told:?}");
}
