//! Deliveries through the GitHub handler with its DynamoDB store behind a fault-injecting proxy
//! (throttles and 500s): never a 5xx to GitHub. Throttles inside the retry budget change nothing
//! (one alert, one resolve); a store that keeps failing makes the delivery `incomplete` (202), and
//! its redelivery, once the store is back, is handled (not taken as a duplicate) and alerts.
//!
//! Needs a DynamoDB-compatible server at `AWS_ENDPOINT_URL`; skips without one unless
//! `VALINE_REQUIRE_DYNAMODB=1`.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};
use valine_domain::config::Config;
use valine_domain::logging::Capture;
use valine_domain::metrics::Metrics;
use valine_github::{App, AppParts};
use valine_service::testing::config_from;
use valine_store::Stores;
use valine_store::fault_proxy::{Fault, FaultPlan, FaultProxy, dynamo_endpoint, stores_behind_proxy};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "webhook-secret-faults";
const ALERT_CHANNEL: u64 = 1184576487578214464;

fn config(discord: &MockServer) -> Config {
    let base = [
        ("GITHUB_WEBHOOK_SECRET", SECRET.to_string()),
        ("DISCORD_BOT_TOKEN", "bot-token".to_string()),
        ("DISCORD_API_BASE", discord.uri()),
        ("ENABLE_ALERTS", "true".to_string()),
        ("ALERT_CHANNEL_ID", ALERT_CHANNEL.to_string()),
    ];
    config_from(&base, &[])
}

struct Harness {
    app: App,
    discord: MockServer,
    proxy: FaultProxy,
}

impl Harness {
    async fn new(plan: FaultPlan) -> Option<Self> {
        let endpoint = dynamo_endpoint()?;
        let (stores, proxy): (Stores, FaultProxy) = stores_behind_proxy(&endpoint, plan).await.unwrap();
        let discord = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"id": "1400000000000000001", "channel_id": ALERT_CHANNEL.to_string()})),
            )
            .mount(&discord)
            .await;
        Mock::given(method("PATCH"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .mount(&discord)
            .await;
        let config = config(&discord);
        let app = App::new(AppParts {
            discord: valine_clients::discord_api::from_config(&config, Duration::from_secs(3)),
            config,
            stores,
            metrics: Metrics::new("github-handler", Arc::new(Capture::default())),
        })
        .unwrap();
        Some(Self { app, discord, proxy })
    }

    async fn deliver(&self, event: &str, delivery: &str, payload: &Value) -> (StatusCode, Value) {
        let req = valine_service::testing::signed_delivery(SECRET, event, delivery, payload.to_string().into_bytes());
        let res = self.app.handle(req).await;
        (res.status, serde_json::from_str(&res.body).unwrap())
    }

    /// Messages posted to the alert channel that are not replies.
    async fn alerts(&self) -> Vec<Value> {
        self.discord
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method.as_str() == "POST")
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
            .filter(|b| b.get("message_reference").is_none())
            .collect()
    }

    async fn replies(&self) -> usize {
        self.discord
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method.as_str() == "POST" && String::from_utf8_lossy(&r.body).contains("message_reference"))
            .count()
    }
}

fn run(id: u64, number: u64, conclusion: &str) -> Value {
    json!({
        "action": "completed",
        "workflow_run": {
            "id": id, "name": "CI", "display_title": "fix: retry uploads", "head_branch": "main",
            "head_sha": "3f1c9a7e0d2b4c6a8e9f0a1b2c3d4e5f60718293", "path": ".github/workflows/ci.yml",
            "run_number": number, "run_attempt": 1, "event": "push", "status": "completed", "conclusion": conclusion,
            "workflow_id": 7, "html_url": format!("https://github.com/acme/widget/actions/runs/{id}"),
            "created_at": "2026-11-22T14:00:00Z", "updated_at": "2026-11-22T14:05:00Z",
            "actor": {"login": "octocat"}, "head_repository": {"full_name": "acme/widget"}
        },
        "workflow": {"id": 7, "name": "CI", "path": ".github/workflows/ci.yml"},
        "repository": {"full_name": "acme/widget"},
        "sender": {"login": "octocat"}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttles_within_the_budget_change_nothing() {
    let Some(h) = Harness::new(FaultPlan::FirstAttempts(Fault::Throttle)).await else { return };
    let (status, body) = h.deliver("workflow_run", "f-1", &run(1, 10, "failure")).await;
    assert_eq!(
        (status, body["status"].as_str(), body["alert"].as_str()),
        (StatusCode::OK, Some("ok"), Some("sent")),
        "{body}"
    );
    let (status, body) = h.deliver("workflow_run", "f-1", &run(1, 10, "failure")).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("duplicate")), "{body}");
    let (status, body) = h.deliver("workflow_run", "f-2", &run(2, 11, "success")).await;
    assert_eq!((status, body["alert"].as_str()), (StatusCode::OK, Some("resolved")), "{body}");
    assert_eq!(h.alerts().await.len(), 1);
    assert_eq!(h.replies().await, 1);
    let seen = h.proxy.take_seen();
    assert!(seen.throttled >= 5 && seen.retries == seen.throttled, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_gets_no_5xx_and_the_redelivery_alerts_once_it_is_back() {
    let Some(h) = Harness::new(FaultPlan::Always(Fault::Throttle)).await else { return };
    for (i, fault) in [Fault::Throttle, Fault::ServerError].into_iter().enumerate() {
        h.proxy.set_plan(FaultPlan::Always(fault));
        let id = format!("f-down-{i}");
        let (status, body) = h.deliver("workflow_run", &id, &run(10 + i as u64, 20 + i as u64, "failure")).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{fault:?}: {body}");
        assert_eq!(body["status"], "incomplete", "{fault:?}: {body}");
        // a ping is answered, never a 5xx; not recorded, it invites a redelivery
        let (status, body) = h.deliver("ping", &format!("p-{i}"), &json!({"zen": "z", "hook_id": 1})).await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::ACCEPTED, Some("incomplete")), "{fault:?}");
    }
    // The store's own alert went out; no incident message could be (its state cannot be kept).
    let alerts = h.alerts().await;
    assert!(alerts.iter().all(|a| a.to_string().contains("store is unavailable")), "{alerts:?}");
    // Back: GitHub's redelivery (same id) is handled, not a duplicate, and alerts once.
    h.proxy.set_plan(FaultPlan::Pass);
    let (status, body) = h.deliver("workflow_run", "f-down-1", &run(11, 21, "failure")).await;
    assert_eq!((status, body["alert"].as_str()), (StatusCode::OK, Some("sent")), "{body}");
    let (_, again) = h.deliver("workflow_run", "f-down-1", &run(11, 21, "failure")).await;
    assert_eq!(again["status"], "duplicate");
    let (status, body) = h.deliver("ping", "p-1", &json!({"zen": "z", "hook_id": 1})).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")), "{body}");
    let (_, again) = h.deliver("ping", "p-1", &json!({"zen": "z", "hook_id": 1})).await;
    assert_eq!(again["status"], "duplicate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_share_of_faults_under_concurrency_never_answers_5xx() {
    let Some(h) = Harness::new(FaultPlan::Share { percent: 30, mixed: true }).await else { return };
    let h = Arc::new(h);
    let mut tasks = Vec::new();
    for i in 0..40u64 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            let (event, payload) = match i % 4 {
                0 => ("ping", json!({"zen": "z", "hook_id": 1})),
                1 => ("workflow_run", run(100 + i, 100 + i, "success")),
                _ => ("workflow_run", run(100 + i, 100 + i, "failure")),
            };
            let (status, body) = h.deliver(event, &format!("share-{i}"), &payload).await;
            (status, body)
        }));
    }
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert!(status.is_success(), "{status}: {body}");
        *outcomes.entry(format!("{} {}", status.as_u16(), body["status"].as_str().unwrap_or(""))).or_default() += 1;
    }
    let seen = h.proxy.take_seen();
    assert!(seen.throttled > 0 && seen.server_errors > 0, "{seen:?}");
    // Whatever failed said so: `incomplete` (202: redeliver) or `partial` (the alert is out but
    // not recorded: not to be redelivered, or it could post twice).
    for outcome in outcomes.keys() {
        assert!(
            ["200 ok", "202 incomplete", "200 partial", "202 partial"].contains(&outcome.as_str()),
            "unexpected outcome {outcome}: {outcomes:?}"
        );
    }
}

/// The write that records a delivery done lands, and its answer is lost. The delivery's effects
/// went in with that record, so a redelivery finds it done and does nothing again; when the
/// record did not land, the redelivery is handled. (Before the record went with the last effect,
/// a claim that landed with its answer lost made the redelivery a "duplicate" of a delivery
/// nothing had finished.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_whose_done_record_landed_unseen_is_done_and_one_that_did_not_is_handled_again() {
    let Some(h) = Harness::new(FaultPlan::Operation("TransactWriteItems", Fault::LostAnswer)).await else { return };
    // The incident write (with the delivery's record) lands unseen: read back, it is known written.
    let (status, body) = h.deliver("workflow_run", "lost-1", &run(30, 40, "failure")).await;
    assert_eq!((status, body["alert"].as_str()), (StatusCode::OK, Some("sent")), "{body}");
    let (_, again) = h.deliver("workflow_run", "lost-1", &run(30, 40, "failure")).await;
    assert_eq!(again["status"], "duplicate", "{again}");
    assert_eq!(h.alerts().await.len(), 1);
    // A ping's record lands unseen: answered `incomplete`, and the redelivery finds it done.
    let (status, body) = h.deliver("ping", "lost-ping", &json!({"zen": "z", "hook_id": 1})).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::ACCEPTED, Some("incomplete")), "{body}");
    h.proxy.set_plan(FaultPlan::Pass);
    let (_, again) = h.deliver("ping", "lost-ping", &json!({"zen": "z", "hook_id": 1})).await;
    assert_eq!(again["status"], "duplicate", "{again}");
    // The record does not land (refused outright): the redelivery is handled, and resolves.
    h.proxy.set_plan(FaultPlan::Operation("TransactWriteItems", Fault::ServerError));
    let (status, body) = h.deliver("workflow_run", "lost-2", &run(31, 41, "success")).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::ACCEPTED, Some("incomplete")), "{body}");
    assert_eq!(h.replies().await, 0, "nothing resolved yet");
    h.proxy.set_plan(FaultPlan::Pass);
    let (status, body) = h.deliver("workflow_run", "lost-2", &run(31, 41, "success")).await;
    assert_eq!((status, body["alert"].as_str()), (StatusCode::OK, Some("resolved")), "{body}");
    assert_eq!(h.replies().await, 1);
    let seen = h.proxy.take_seen();
    assert!(seen.lost_answers >= 2, "{seen:?}");
}
