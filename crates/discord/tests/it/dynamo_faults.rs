//! Commands through the Discord handler with its DynamoDB store behind a fault-injecting proxy
//! (throttles and 500s): every answer is a 200 inside Discord's 3 s, never a 5xx. A confirmed
//! relay through throttles inside the retry budget posts once with both audit records; with the
//! store failing it posts nothing and says why.
//!
//! Needs a DynamoDB-compatible server at `AWS_ENDPOINT_URL`; skips without one unless
//! `VALINE_REQUIRE_DYNAMODB=1`.

use crate::common::*;
use valine_store::fault_proxy::{Fault, FaultPlan, FaultProxy, dynamo_endpoint, stores_behind_proxy};

async fn harness(plan: FaultPlan, overrides: &[(&str, &str)]) -> Option<(Harness, FaultProxy)> {
    let endpoint = dynamo_endpoint()?;
    let (stores, proxy) = stores_behind_proxy(&endpoint, plan).await.unwrap();
    Some((Harness::build(overrides, Some(stores)).await, proxy))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_through_throttles_posts_once_and_is_audited() {
    let Some((h, proxy)) = harness(FaultPlan::FirstAttempts(Fault::Throttle), &[]).await else { return };
    let text = "Deploy freeze from 17:00";
    mount_post(&h.discord, CHANNEL, text).await;
    let request = command(902, ADMIN, "relay-send", confirmed(opt("channel", 7, json!(CHANNEL.to_string())), text));
    let (status, a) = h.send(&request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content(&a).contains("✅ Sent to"), "{a}");
    // The same interaction again (Discord retried it): nothing posted twice.
    let (status, again) = h.send(&request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content(&again).contains("already handled"), "{again}");
    let seen = proxy.take_seen();
    assert!(seen.throttled >= 3 && seen.retries == seen.throttled, "{seen:?}");
    proxy.set_plan(FaultPlan::Pass);
    let records = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    let results: Vec<_> = records.iter().map(|r| r.result).collect();
    assert!(results.contains(&AuditResult::Pending) && results.contains(&AuditResult::Posted), "{results:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_gets_an_answer_in_time_and_nothing_is_posted() {
    let overrides = [("ENABLE_ALERTS", "true"), ("ALERT_CHANNEL_ID", "999")];
    let Some((h, proxy)) = harness(FaultPlan::Always(Fault::Throttle), &overrides).await else { return };
    // The only post allowed is the critical alert about the store.
    Mock::given(method("POST"))
        .and(path("/api/v10/channels/999/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "7", "channel_id": "999"})))
        .mount(&h.discord)
        .await;
    for (i, fault) in [Fault::Throttle, Fault::ServerError].into_iter().enumerate() {
        proxy.set_plan(FaultPlan::Always(fault));
        let opts = confirmed(opt("channel", 7, json!(CHANNEL.to_string())), "x");
        // `send` asserts the answer came within 3 s.
        let (status, a) = h.send(&command(910 + i as u64, ADMIN, "relay-send", opts)).await;
        assert_eq!(status, StatusCode::OK, "{fault:?}");
        assert!(content(&a).contains("store is unavailable") && content(&a).contains("nothing was posted"), "{a}");
        let (status, ping) = h.send(&envelope(1, 920 + i as u64, ADMIN, &[], json!(null))).await;
        assert_eq!((status, ping["type"].as_u64()), (StatusCode::OK, Some(1)), "{fault:?}");
    }
    let posts = h.discord.received_requests().await.unwrap();
    assert!(posts.iter().all(|r| r.url.path() != format!("/api/v10/channels/{CHANNEL}/messages")));
    assert!(proxy.take_seen().forwarded == 0);
}
