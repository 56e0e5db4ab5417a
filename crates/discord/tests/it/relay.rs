//! The Discord handler: relays.

use crate::common::*;

#[tokio::test]
async fn relay_by_a_non_admin_is_refused_and_audited() {
    let h = Harness::new(&[]).await;
    let opts = confirmed(opt("channel", 7, json!(CHANNEL.to_string())), "hello");
    let (_, a) = h.send(&command(400, STRANGER, "relay-send", opts)).await;
    assert!(content(&a).contains("not an admin"), "{a}");
    assert_eq!(a["data"]["flags"], 64);
    let records = h.app.stores.audit.by_user(&STRANGER.to_string(), 10).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].result, AuditResult::Blocked);
    assert_eq!(records[0].command, "/relay-send");
    assert!(records[0].metadata["reason"].contains("not an admin"));
    assert!(records[0].message_fingerprint.as_deref().unwrap().starts_with('…'));
}

#[tokio::test]
async fn no_admins_configured_fails_closed_and_names_the_settings() {
    let h = Harness::new(&[("ADMIN_USER_IDS", "")]).await;
    let opts = confirmed(opt("channel", 7, json!(CHANNEL.to_string())), "hello");
    let (_, a) = h.send(&command(401, ADMIN, "relay-send", opts)).await;
    assert!(content(&a).contains("ADMIN_USER_IDS") && content(&a).contains("ADMIN_ROLE_IDS"), "{a}");
}

#[tokio::test]
async fn relay_by_an_admin_with_confirm_posts_once_without_pings_and_is_audited() {
    let h = Harness::new(&[]).await;
    let text = "Deploy freeze from 17:00 @everyone <@&1>";
    mount_post(&h.discord, CHANNEL, text).await;
    let opts = confirmed(opt("channel", 7, json!(CHANNEL.to_string())), text);
    let request = command(402, ADMIN, "relay-send", opts);
    let (_, a) = h.send(&request).await;
    let summary = content(&a);
    assert!(summary.contains("✅ Sent to <#805950613094531075>"), "{a}");
    assert!(summary.contains("https://discord.com/channels/805588225228931074/805950613094531075/1400000000000000001"));
    assert_eq!(a["data"]["flags"], 64);
    // the same signed request again: nothing is posted twice
    let (_, again) = h.send(&request).await;
    assert!(content(&again).contains("already handled"), "{again}");
    let records = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    let results: Vec<_> = records.iter().map(|r| r.result).collect();
    assert!(results.contains(&AuditResult::Pending) && results.contains(&AuditResult::Posted), "{results:?}");
    let posted = records.iter().find(|r| r.result == AuditResult::Posted).unwrap();
    let intent = records.iter().find(|r| r.result == AuditResult::Pending).unwrap();
    assert_eq!(posted.metadata["intent_audit_id"], intent.audit_id);
    assert_eq!(posted.metadata["message_id"], "1400000000000000001");
    assert_eq!(posted.target_channel.as_deref(), Some(&*CHANNEL.to_string()));
    assert!(summary.contains(&posted.audit_id) && summary.contains(posted.message_fingerprint.as_deref().unwrap()));
    assert!(!serde_json::to_string(&records).unwrap().contains("Deploy freeze"), "the text was stored");
    assert!(valine_domain::audit::digest_matches(b"audit-key-canary", text, posted.message_digest.as_deref().unwrap()));
}

#[tokio::test]
async fn relay_accepts_a_channel_id_string_and_a_visible_summary() {
    let h = Harness::new(&[]).await;
    mount_post(&h.discord, 1184576487578214464, "hi").await;
    let opts = json!([
        opt("channel_id", 3, json!("1184576487578214464")),
        opt("message", 3, json!("hi")),
        opt("confirm", 5, json!(true)),
        opt("ephemeral", 5, json!(false))
    ]);
    let (_, a) = h.send(&command(403, ADMIN, "relay-send", opts)).await;
    assert!(content(&a).contains("✅"), "{a}");
    assert!(a["data"].get("flags").is_none());
}

#[tokio::test]
async fn relay_preview_is_bound_to_its_caller_and_confirms_once() {
    let h = Harness::new(&[("ADMIN_USER_IDS", ""), ("ADMIN_ROLE_IDS", &ADMIN_ROLE.to_string())]).await;
    mount_post(&h.discord, CHANNEL, "maintenance at 18:00").await;
    let mut preview_req = command(
        404,
        ADMIN,
        "relay-send",
        json!([opt("channel", 7, json!(CHANNEL.to_string())), opt("message", 3, json!("maintenance at 18:00"))]),
    );
    preview_req["member"] = member(ADMIN, &[ADMIN_ROLE]);
    let (_, preview) = h.send(&preview_req).await;
    assert_eq!(preview["data"]["flags"], 64);
    assert!(content(&preview).contains("Preview"));
    let buttons = &preview["data"]["components"][0]["components"];
    let confirm_id = buttons[0]["custom_id"].as_str().unwrap().to_string();
    let cancel_id = buttons[1]["custom_id"].as_str().unwrap().to_string();
    assert!(confirm_id.starts_with("v1:confirm:yes:") && cancel_id.starts_with("v1:confirm:no:"));
    // someone else clicks: refused, and the confirmation survives
    let (_, other) = h.send(&click(405, STRANGER, &confirm_id)).await;
    assert!(content(&other).contains("Only the person who asked"), "{other}");
    let theirs = h.app.stores.audit.by_user(&STRANGER.to_string(), 10).await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].result, AuditResult::Blocked);
    // the caller clicks
    let mut mine = click(406, ADMIN, &confirm_id);
    mine["member"] = member(ADMIN, &[ADMIN_ROLE]);
    let (_, done) = h.send(&mine).await;
    assert_eq!(done["type"], 7);
    assert!(content(&done).contains("✅ Sent"), "{done}");
    assert_eq!(done["data"]["components"], json!([]));
    // a second click finds nothing
    let mut twice = click(407, ADMIN, &confirm_id);
    twice["member"] = member(ADMIN, &[ADMIN_ROLE]);
    let (_, twice) = h.send(&twice).await;
    assert!(content(&twice).contains("expired or was already used"), "{twice}");
    let records = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    assert!(records.iter().any(|r| r.result == AuditResult::Posted && r.command == "/relay-send"));
    let late = records
        .iter()
        .find(|r| r.result == AuditResult::Blocked && r.metadata.contains_key("confirmation"))
        .expect("the late click is audited");
    assert!(late.metadata["reason"].contains("expired or was already used"), "{late:?}");
}

#[tokio::test]
async fn relay_cancel_posts_nothing() {
    let h = Harness::new(&[]).await;
    let (_, preview) = h
        .send(&command(
            408,
            ADMIN,
            "relay-send",
            json!([opt("channel", 7, json!(CHANNEL.to_string())), opt("message", 3, json!("x"))]),
        ))
        .await;
    let cancel_id = preview["data"]["components"][0]["components"][1]["custom_id"].as_str().unwrap().to_string();
    let (_, done) = h.send(&click(409, ADMIN, &cancel_id)).await;
    assert_eq!(done["type"], 7);
    assert!(content(&done).contains("Cancelled"));
}

#[tokio::test]
async fn relay_dm_opens_a_real_dm_channel_and_posts_there() {
    let h = Harness::new(&[]).await;
    Mock::given(method("POST"))
        .and(path("/api/v10/users/@me/channels"))
        .and(body_json(json!({"recipient_id": STRANGER.to_string()})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1500000000000000002", "type": 1})))
        .expect(1)
        .mount(&h.discord)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v10/channels/1500000000000000002/messages"))
        .and(body_json(json!({"content": "your on-call shift starts", "allowed_mentions": {"parse": []}})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "1500000000000000003", "channel_id": "1500000000000000002"})),
        )
        .expect(1)
        .mount(&h.discord)
        .await;
    let opts = confirmed(opt("user", 6, json!(STRANGER.to_string())), "your on-call shift starts");
    let (_, a) = h.send(&command(410, ADMIN, "relay-dm", opts)).await;
    assert!(content(&a).contains("Sent to a DM to <@335249040998531080>"), "{a}");
    assert!(content(&a).contains("https://discord.com/channels/@me/1500000000000000002/1500000000000000003"));
    let records = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    assert!(records.iter().any(|r| r.result == AuditResult::Posted
        && r.command == "/relay-dm"
        && r.target_user.as_deref() == Some("335249040998531080")));
}

#[tokio::test]
async fn a_relay_to_a_slow_discord_is_answered_in_time_and_its_outcome_audited() {
    let h = Harness::new(&[]).await;
    Mock::given(method("POST"))
        .and(path("/api/v10/users/@me/channels"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_millis(300))
                .set_body_json(json!({"id": "1500000000000000002", "type": 1})),
        )
        .mount(&h.discord)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v10/channels/1500000000000000002/messages"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_secs(5))
                .set_body_json(json!({"id": "1", "channel_id": "1500000000000000002"})),
        )
        .mount(&h.discord)
        .await;
    let opts = confirmed(opt("user", 6, json!(STRANGER.to_string())), "on-call");
    // `send` asserts the answer comes inside 3 s
    let (_, a) = h.send(&command(430, ADMIN, "relay-dm", opts)).await;
    assert!(content(&a).contains("did not answer in time") && content(&a).contains("may or may not"), "{a}");
    let records = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    let results: Vec<_> = records.iter().map(|r| r.result).collect();
    assert!(results.contains(&AuditResult::Pending) && results.contains(&AuditResult::Failed), "{results:?}");
    let failed = records.iter().find(|r| r.result == AuditResult::Failed).unwrap();
    assert!(content(&a).contains(&failed.audit_id), "the answer points at the outcome record: {a}");
}

#[tokio::test]
async fn discord_429_is_retried_once_then_a_clear_error() {
    let h = Harness::new(&[]).await;
    Mock::given(method("POST"))
        .and(path(format!("/api/v10/channels/{CHANNEL}/messages")))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "0.3")
                .set_body_json(json!({"message": "You are being rate limited.", "retry_after": 0.3, "global": false})),
        )
        .expect(2)
        .mount(&h.discord)
        .await;
    let opts = confirmed(opt("channel", 7, json!(CHANNEL.to_string())), "x");
    let (_, a) = h.send(&command(411, ADMIN, "relay-send", opts)).await;
    assert!(content(&a).contains("rate-limited") && content(&a).contains("Nothing was posted"), "{a}");
    let records = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    let failed = records.iter().find(|r| r.result == AuditResult::Failed).expect("a failed record");
    assert!(failed.metadata["reason"].contains("rate-limited"));
}

#[tokio::test]
async fn discord_429_then_success_posts_once() {
    let h = Harness::new(&[]).await;
    Mock::given(method("POST"))
        .and(path(format!("/api/v10/channels/{CHANNEL}/messages")))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "0.2")
                .set_body_json(json!({"retry_after": 0.2, "global": false})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&h.discord)
        .await;
    mount_post(&h.discord, CHANNEL, "x").await;
    let opts = confirmed(opt("channel", 7, json!(CHANNEL.to_string())), "x");
    let (_, a) = h.send(&command(412, ADMIN, "relay-send", opts)).await;
    assert!(content(&a).contains("✅ Sent"), "{a}");
}

#[tokio::test]
async fn store_down_refuses_the_relay_posts_nothing_and_says_why() {
    let h = Harness::build(&[("ENABLE_ALERTS", "true"), ("ALERT_CHANNEL_ID", "999")], Some(down_stores())).await;
    // the only Discord request allowed is the critical alert about the audit store
    Mock::given(method("POST"))
        .and(path("/api/v10/channels/999/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "7", "channel_id": "999"})))
        .mount(&h.discord)
        .await;
    let opts = confirmed(opt("channel", 7, json!(CHANNEL.to_string())), "x");
    let (status, a) = h.send(&command(413, ADMIN, "relay-send", opts)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content(&a).contains("store is unavailable") && content(&a).contains("nothing was posted"), "{a}");
    assert!(content(&a).contains("trace"));
    let posts = h.discord.received_requests().await.unwrap();
    assert!(posts.iter().all(|r| r.url.path() != format!("/api/v10/channels/{CHANNEL}/messages")));
    // the store being down is a critical failure of the bot: alerted, without dedup
    let alerts: Vec<String> = posts.iter().map(|r| String::from_utf8_lossy(&r.body).to_string()).collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].contains("Store unavailable") && alerts[0].contains("critical"), "{}", alerts[0]);
    // a second refusal in the same container is inside the window: no second alert
    let opts = confirmed(opt("channel", 7, json!(CHANNEL.to_string())), "y");
    h.send(&command(420, ADMIN, "relay-send", opts)).await;
    assert_eq!(h.discord.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_silent_store_still_gets_every_answer_out_in_time() {
    // `send` asserts each answer comes inside Discord's 3 s
    let h = Harness::build(&[], Some(stalled_stores())).await;
    let opts = confirmed(opt("channel", 7, json!(CHANNEL.to_string())), "x");
    let (_, a) = h.send(&command(415, ADMIN, "relay-send", opts)).await;
    assert!(content(&a).contains("store is unavailable") && content(&a).contains("nothing was posted"), "{a}");
    let (_, a) = h
        .send(&command(
            416,
            ADMIN,
            "relay-send",
            json!([opt("channel", 7, json!(CHANNEL.to_string())), opt("message", 3, json!("x"))]),
        ))
        .await;
    assert!(content(&a).contains("store is unavailable"), "{a}");
    let (_, a) = h
        .send(&command(
            417,
            STRANGER,
            "relay-send",
            json!([opt("channel", 7, json!(CHANNEL.to_string())), opt("message", 3, json!("x"))]),
        ))
        .await;
    assert!(content(&a).contains("could not be audited"), "{a}");
    let (_, a) = h.send(&command(418, ADMIN, "debug-last", json!([]))).await;
    assert!(a.to_string().contains("no answer in time") && a.to_string().contains("/relay-send"), "{a}");
    let (_, a) = h.send(&command(419, STRANGER, "diagnose", json!([]))).await;
    assert!(content(&a).contains("store is unavailable") && content(&a).contains("nothing was dispatched"), "{a}");
}

#[tokio::test]
async fn store_down_during_the_audit_write_alerts_critically() {
    // deliveries answer (the replay check passes) but the audit log is down
    let dir = tempfile::tempdir().unwrap();
    let mut stores =
        Stores::from_adapter(Arc::new(EmbeddedStore::open(&dir.path().join("v.redb")).unwrap()), "embedded");
    stores.audit = down_stores().audit;
    let h = Harness::build(
        &[("ENABLE_ALERTS", "true"), ("ALERT_CHANNEL_ID", "999"), ("ALERT_MENTION_ROLE_ID", "4242")],
        Some(stores),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/api/v10/channels/999/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "7", "channel_id": "999"})))
        .expect(1)
        .mount(&h.discord)
        .await;
    let opts = confirmed(opt("channel", 7, json!(CHANNEL.to_string())), "x");
    let (_, a) = h.send(&command(414, ADMIN, "relay-send", opts)).await;
    assert!(content(&a).contains("audit store is unavailable"), "{a}");
    let alert = &h.discord.received_requests().await.unwrap()[0];
    let alert: Value = serde_json::from_slice(&alert.body).unwrap();
    assert_eq!(alert["content"], "<@&4242>");
    assert_eq!(alert["allowed_mentions"], json!({"parse": [], "roles": ["4242"]}));
    assert!(alert.to_string().contains("Audit write failed"));
}

/// Everything the embedded store has written, as bytes: the state table included.
fn store_file(h: &Harness) -> Vec<u8> {
    std::fs::read(h._dir.path().join("v.redb")).unwrap()
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn a_relay_preview_keeps_no_plain_text_in_the_state_table() {
    let h = Harness::new(&[]).await;
    let text = "quarterly numbers leak-canary 7f3a9c before the announcement";
    mount_post(&h.discord, CHANNEL, text).await;
    let (_, preview) = h
        .send(&command(
            420,
            ADMIN,
            "relay-send",
            json!([opt("channel", 7, json!(CHANNEL.to_string())), opt("message", 3, json!(text))]),
        ))
        .await;
    assert!(content(&preview).contains("Preview"), "{preview}");
    assert!(!holds(&store_file(&h), "leak-canary"), "the relay text is in the store's file in the clear");
    // The item itself, as both adapters serialize it.
    let confirm_id = preview["data"]["components"][0]["components"][0]["custom_id"].as_str().unwrap().to_string();
    let id = confirm_id.rsplit(':').next().unwrap();
    let confirmations = h.app.stores.confirmations.clone();
    let valine_store::Taken::Yours(item) = confirmations.take_confirmation(id, ADMIN).await.unwrap() else {
        panic!("the preview's confirmation is not stored");
    };
    let serialized = serde_json::to_string(&item).unwrap();
    assert!(!serialized.contains("leak-canary"), "{serialized}");
    confirmations.put_confirmation(&item).await.unwrap();
    // Confirmed, the text posted is the one typed.
    let (_, done) = h.send(&click(421, ADMIN, &confirm_id)).await;
    assert!(content(&done).contains("✅ Sent"), "{done}");
}

/// A store whose takes return confirmations past their expiry, as one whose TTL sweep lags and
/// whose read does not check would.
struct Lagging(Arc<dyn valine_store::ConfirmationRepo>);

#[async_trait::async_trait]
impl valine_store::ConfirmationRepo for Lagging {
    async fn put_confirmation(&self, p: &valine_store::PendingConfirmation) -> valine_store::StoreResult<()> {
        self.0.put_confirmation(p).await
    }
    async fn take_confirmation(&self, id: &str, user_id: u64) -> valine_store::StoreResult<valine_store::Taken> {
        Ok(match self.0.take_confirmation(id, user_id).await? {
            valine_store::Taken::Yours(mut p) => {
                p.expires_at = now_secs() - 1;
                valine_store::Taken::Yours(p)
            }
            other => other,
        })
    }
    async fn put_job_ticket(&self, t: &valine_store::JobTicket) -> valine_store::StoreResult<()> {
        self.0.put_job_ticket(t).await
    }
    async fn take_job_ticket(&self, id: &str) -> valine_store::StoreResult<Option<valine_store::JobTicket>> {
        self.0.take_job_ticket(id).await
    }
}

#[tokio::test]
async fn an_expired_confirmation_is_refused_whatever_the_store_returns() {
    let dir = tempfile::tempdir().unwrap();
    let mut stores =
        Stores::from_adapter(Arc::new(EmbeddedStore::open(&dir.path().join("lagging.redb")).unwrap()), "embedded");
    stores.confirmations = Arc::new(Lagging(stores.confirmations.clone()));
    let h = Harness::build(&[], Some(stores)).await;
    let (_, preview) = h
        .send(&command(
            422,
            ADMIN,
            "relay-send",
            json!([opt("channel", 7, json!(CHANNEL.to_string())), opt("message", 3, json!("too late"))]),
        ))
        .await;
    let confirm_id = preview["data"]["components"][0]["components"][0]["custom_id"].as_str().unwrap().to_string();
    let (_, done) = h.send(&click(423, ADMIN, &confirm_id)).await;
    assert!(content(&done).contains("expired"), "{done}");
    assert!(h.discord.received_requests().await.unwrap().is_empty(), "an expired confirmation posted");
    let records = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    assert!(records.iter().any(|r| r.result == AuditResult::Blocked), "{records:?}");
    assert!(!records.iter().any(|r| r.result == AuditResult::Pending), "{records:?}");
}
