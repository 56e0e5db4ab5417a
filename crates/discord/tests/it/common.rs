//! The harness every Discord handler test file shares: an App over an embedded store, wiremock
//! Discord and GitHub, signed requests, and interaction builders.
#![allow(dead_code, unused_imports)]

pub(crate) use std::sync::Arc;
pub(crate) use std::time::{Duration, Instant};

pub(crate) use http::{HeaderMap, HeaderValue, Method, StatusCode};
pub(crate) use serde_json::{Value, json};
pub(crate) use valine_discord::jobs::LocalJobs;
pub(crate) use valine_discord::{App, AppParts};
pub(crate) use valine_domain::audit::AuditResult;
pub(crate) use valine_domain::clock::now_secs;
pub(crate) use valine_domain::logging::Capture;
pub(crate) use valine_domain::metrics::Metrics;
pub(crate) use valine_domain::signing::InteractionBuilder;
pub(crate) use valine_service::http::HttpRequest;
pub(crate) use valine_service::testing::{
    capture_logs, config_from, discord_key, discord_signature, down_stores, fail_on_unexpected, public_key_hex,
    stalled_stores,
};
pub(crate) use valine_store::Stores;
pub(crate) use valine_store::embedded::EmbeddedStore;
pub(crate) use wiremock::matchers::{body_json, header, method, path};
pub(crate) use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub(crate) const APP_ID: u64 = 1290463189401731073;
pub(crate) const ADMIN: u64 = 80351110224678912;
pub(crate) const ADMIN_ROLE: u64 = 806688810598531078;
pub(crate) const STRANGER: u64 = 335249040998531080;
pub(crate) const CHANNEL: u64 = 805950613094531075;
pub(crate) const BOT_TOKEN: &str = "MTI5MDQ2MzE4OTQwMTczMTA3Mw.CANARY.bot-token-canary-value-0123456789";

pub(crate) struct Harness {
    pub app: Arc<App>,
    pub discord: MockServer,
    pub github: MockServer,
    pub key: ed25519_dalek::SigningKey,
    pub _dir: tempfile::TempDir,
}

impl Harness {
    pub(crate) async fn new(overrides: &[(&str, &str)]) -> Self {
        Self::build(overrides, None).await
    }

    pub(crate) async fn build(overrides: &[(&str, &str)], stores: Option<Stores>) -> Self {
        let discord = MockServer::start().await;
        let github = MockServer::start().await;
        fail_on_unexpected(&discord).await;
        fail_on_unexpected(&github).await;
        let key = discord_key(9);
        let base = [
            ("DISCORD_PUBLIC_KEY", public_key_hex(&key)),
            ("DISCORD_BOT_TOKEN", BOT_TOKEN.to_string()),
            ("DISCORD_API_BASE", discord.uri()),
            ("GITHUB_API_BASE", github.uri()),
            ("GITHUB_TOKEN", "ghp_CANARYcanaryCANARYcanary0123456789ab".to_string()),
            ("GITHUB_REPO", "acme/widget".to_string()),
            ("ADMIN_USER_IDS", ADMIN.to_string()),
            ("AUDIT_HMAC_KEY", "audit-key-canary".to_string()),
            ("ENABLE_DEBUG_CMD", "true".to_string()),
            ("STATUS_WORKFLOWS", "CI,Deploy,diagnose.yml".to_string()),
        ];
        let config = config_from(&base, overrides);
        let dir = tempfile::tempdir().unwrap();
        let stores = stores.unwrap_or_else(|| {
            Stores::from_adapter(Arc::new(EmbeddedStore::open(&dir.path().join("v.redb")).unwrap()), "embedded")
        });
        let (jobs, mut rx) = LocalJobs::new();
        let app = Arc::new(
            App::new(AppParts {
                discord: valine_clients::discord_api::from_config(&config, Duration::from_secs(2)),
                github: valine_clients::github_api::from_config(&config, Duration::from_secs(25)).unwrap(),
                config,
                stores,
                jobs: Arc::new(jobs),
                metrics: Metrics::new("discord-handler", Arc::new(Capture::default())),
            })
            .unwrap(),
        );
        let worker = app.clone();
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                worker.run_job(job).await;
            }
        });
        Self { app, discord, github, key, _dir: dir }
    }

    pub(crate) fn signed(&self, body: &[u8]) -> HttpRequest {
        valine_service::testing::signed_interaction(&self.key, body)
    }

    pub(crate) async fn send(&self, body: &Value) -> (StatusCode, Value) {
        let started = Instant::now();
        let res = self.app.handle(self.signed(body.to_string().as_bytes())).await;
        // Discord's deadline: every answer inside 3 s.
        assert!(started.elapsed() < Duration::from_secs(3), "answer took {:?}", started.elapsed());
        (res.status, serde_json::from_str(&res.body).unwrap())
    }
}

/// The guild the tests' interactions come from.
pub(crate) const GUILD: u64 = 805588225228931074;

/// The `member` object of `user` with `roles`, as an interaction carries it.
pub(crate) fn member(user: u64, roles: &[u64]) -> Value {
    envelope(2, 1, user, roles, json!({}))["member"].clone()
}

pub(crate) fn envelope(kind: u8, id: u64, user: u64, roles: &[u64], data: Value) -> Value {
    InteractionBuilder::new(kind, data)
        .id(id)
        .application(APP_ID)
        .user(user, &format!("user{user}"))
        .member_of(GUILD, roles)
        .channel(CHANNEL)
        .body()
}

pub(crate) fn command(id: u64, user: u64, name: &str, options: Value) -> Value {
    envelope(2, id, user, &[], json!({"id": "1", "name": name, "type": 1, "options": options}))
}

pub(crate) fn opt(name: &str, kind: u8, value: Value) -> Value {
    json!({"name": name, "type": kind, "value": value})
}

/// The options of a relay sent with `confirm:true`: a target option and the message.
pub(crate) fn confirmed(target: Value, message: &str) -> Value {
    json!([target, opt("message", 3, json!(message)), opt("confirm", 5, json!(true))])
}

pub(crate) fn click(id: u64, user: u64, custom_id: &str) -> Value {
    let mut e = envelope(3, id, user, &[], json!({"component_type": 2, "custom_id": custom_id}));
    e["message"] = json!({
        "id": "1383824789340291122", "channel_id": CHANNEL.to_string(), "type": 20, "content": "preview",
        "author": {"id": APP_ID.to_string(), "username": "valine", "discriminator": "0", "avatar": null, "bot": true},
        "attachments": [], "embeds": [], "mentions": [], "mention_roles": [], "pinned": false, "mention_everyone": false,
        "tts": false, "timestamp": "2026-11-22T15:05:40.123000+00:00", "edited_timestamp": null, "flags": 64, "components": []
    });
    e
}

pub(crate) fn content(answer: &Value) -> String {
    answer["data"]["content"].as_str().unwrap_or_default().to_string()
}

pub(crate) async fn wait_for(server: &MockServer, count: usize, what: impl Fn(&Request) -> bool) -> Vec<Request> {
    for _ in 0..300 {
        let got: Vec<Request> =
            server.received_requests().await.unwrap_or_default().into_iter().filter(|r| what(r)).collect();
        if got.len() >= count {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected {count} matching requests on the mock server");
}

pub(crate) fn is_edit(r: &Request) -> bool {
    r.method.as_str() == "PATCH" && r.url.path().ends_with("/messages/@original")
}

pub(crate) async fn mount_workflows(github: &MockServer, delay: Duration) {
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/actions/workflows"))
        .respond_with(ResponseTemplate::new(200).set_delay(delay).set_body_json(
            json!({"total_count": 2, "workflows": [
                {"id": 11, "name": "CI", "path": ".github/workflows/ci.yml", "state": "active"},
                {"id": 12, "name": "Nightly", "path": ".github/workflows/nightly.yml", "state": "active"}
            ]}),
        ))
        .mount(github)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/actions/workflows/11/runs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total_count": 2, "workflow_runs": [
            {"id": 2, "name": "CI", "head_branch": "main", "head_sha": "b", "status": "completed", "conclusion": "failure", "html_url": "https://github.com/acme/widget/actions/runs/2", "created_at": "2026-11-22T14:00:00Z", "updated_at": "2026-11-22T14:03:00Z", "run_number": 8, "workflow_id": 11, "event": "push"},
            {"id": 1, "name": "CI", "head_branch": "main", "head_sha": "a", "status": "completed", "conclusion": "success", "html_url": "https://github.com/acme/widget/actions/runs/1", "created_at": "2026-11-22T13:00:00Z", "updated_at": "2026-11-22T13:02:00Z", "run_number": 7, "workflow_id": 11, "event": "push"}
        ]})))
        .mount(github)
        .await;
}

pub(crate) async fn mount_post(server: &MockServer, channel: u64, text: &str) {
    Mock::given(method("POST"))
        .and(path(format!("/api/v10/channels/{channel}/messages")))
        .and(header("authorization", format!("Bot {BOT_TOKEN}").as_str()))
        .and(body_json(json!({"content": text, "allowed_mentions": {"parse": []}})))
        // as Discord answers a REST post: no `guild_id`
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "1400000000000000001", "channel_id": channel.to_string()})),
        )
        .expect(1)
        .mount(server)
        .await;
}
