//! The Discord handler: /status.

use crate::common::*;

#[tokio::test]
async fn status_answers_inline_with_an_embed_per_workflow() {
    let h = Harness::new(&[("STATUS_WORKFLOWS", "")]).await;
    mount_workflows(&h.github, Duration::ZERO).await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/actions/workflows/12/runs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"workflow_runs": []})))
        .mount(&h.github)
        .await;
    let (status, a) = h.send(&command(200, STRANGER, "status", json!([opt("count", 4, json!(2))]))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(a["type"], 4, "{a}");
    let embeds = a["data"]["embeds"].as_array().unwrap();
    assert_eq!(embeds.len(), 2);
    assert_eq!(embeds[0]["title"], "CI");
    assert!(embeds[0]["description"].as_str().unwrap().starts_with("🟢🔴\n"));
    assert_eq!(a["data"]["allowed_mentions"], json!({"parse": []}));
    let runs_req =
        h.github.received_requests().await.unwrap().into_iter().find(|r| r.url.path().ends_with("/11/runs")).unwrap();
    assert_eq!(runs_req.url.query(), Some("per_page=2"));
}

#[tokio::test]
async fn a_command_without_the_fields_the_bot_does_not_read_still_runs() {
    let h = Harness::new(&[("STATUS_WORKFLOWS", "")]).await;
    mount_workflows(&h.github, Duration::ZERO).await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/actions/workflows/12/runs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"workflow_runs": []})))
        .mount(&h.github)
        .await;
    for (i, missing) in
        ["attachment_size_limit", "entitlements", "app_permissions", "locale", "version"].iter().enumerate()
    {
        let mut req = command(260 + i as u64, STRANGER, "status", json!([]));
        req.as_object_mut().unwrap().remove(*missing);
        let (status, a) = h.send(&req).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(a["type"], 4, "without {missing}: {a}");
        assert_eq!(a["data"]["embeds"][0]["title"], "CI", "without {missing}: {a}");
    }
    // All of them missing at once, and a field Discord may add tomorrow.
    let mut req = command(270, STRANGER, "status", json!([]));
    for f in ["attachment_size_limit", "entitlements", "app_permissions", "authorizing_integration_owners"] {
        req.as_object_mut().unwrap().remove(f);
    }
    req["a_field_from_the_future"] = json!({"nested": [1, 2, 3]});
    let (_, a) = h.send(&req).await;
    assert_eq!(a["data"]["embeds"][0]["title"], "CI", "{a}");
}

#[tokio::test]
async fn status_defers_when_github_is_slow_and_the_job_edits_the_message() {
    let h = Harness::new(&[("STATUS_WORKFLOWS", "CI")]).await;
    mount_workflows(&h.github, Duration::from_secs(10)).await;
    Mock::given(method("PATCH"))
        .and(path(format!("/api/v10/webhooks/{APP_ID}/interaction-token-201/messages/@original")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "5", "channel_id": CHANNEL.to_string()})))
        .expect(1)
        .mount(&h.discord)
        .await;
    let (status, a) = h.send(&command(201, STRANGER, "status", json!([]))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(a, json!({"type": 5}));
    let edits = wait_for(&h.discord, 1, is_edit).await;
    let body: Value = serde_json::from_slice(&edits[0].body).unwrap();
    assert_eq!(body["embeds"][0]["title"], "CI");
    assert_eq!(body["allowed_mentions"], json!({"parse": []}));
}

#[tokio::test]
async fn status_without_github_settings_names_them() {
    let h = Harness::new(&[("GITHUB_TOKEN", ""), ("GITHUB_REPO", "")]).await;
    let (_, a) = h.send(&command(202, STRANGER, "status", json!([]))).await;
    assert!(content(&a).contains("set GITHUB_TOKEN and GITHUB_REPO"), "{a}");
    assert_eq!(a["data"]["flags"], 64);
}

/// Ten workflows with 300-character names and runs with odd values (no branch, a URL that is not
/// one, 100-character titles): the answer still keeps to Discord's rules.
#[tokio::test]
async fn status_with_the_longest_names_keeps_to_discords_rules() {
    let h = Harness::new(&[("STATUS_WORKFLOWS", "")]).await;
    let long = |i: usize| format!("{i}{}", "ワークフロー".repeat(50));
    let workflows: Vec<Value> = (0..12)
        .map(|i| json!({"id": 100 + i, "name": long(i), "path": format!(".github/workflows/{}.yml", "w".repeat(200)), "state": "active"}))
        .collect();
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/actions/workflows"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total_count": 12, "workflows": workflows})))
        .mount(&h.github)
        .await;
    let runs: Vec<Value> = (0..10)
        .map(|i| {
            json!({"id": 9000 + i, "name": long(i), "display_title": "t".repeat(100), "head_branch": if i % 2 == 0 { json!("") } else { json!("b".repeat(255)) },
                   "head_sha": "", "status": "completed", "conclusion": if i % 3 == 0 { "failure" } else { "success" },
                   "html_url": if i % 2 == 0 { "not a url" } else { "https://github.com/acme/widget/actions/runs/1" },
                   "created_at": "2026-11-22T14:00:00Z", "updated_at": "2026-11-22T14:05:00Z", "run_number": i, "event": "push"})
        })
        .collect();
    Mock::given(method("GET"))
        .and(wiremock::matchers::path_regex("^/repos/acme/widget/actions/workflows/[0-9]+/runs$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"workflow_runs": runs})))
        .mount(&h.github)
        .await;
    let (status, a) = h.send(&command(200, STRANGER, "status", json!([opt("count", 4, json!(10))]))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!a["data"]["embeds"].as_array().unwrap().is_empty(), "{a}");
    let v = valine_domain::message::violations(&a);
    assert!(v.is_empty(), "{v:?}");
}
