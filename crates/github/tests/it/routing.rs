//! Routing in the GitHub handler: subscriptions and `ROUTES_FILE` send each event only where it
//! matches, each channel gets its own incident, deliveries from outside `GITHUB_REPOS` or with no
//! route are `202 ignored` with nothing written.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};
use valine_domain::clock::now_secs;
use valine_domain::logging::Capture;
use valine_domain::metrics::Metrics;
use valine_domain::routing::Subscription;
use valine_github::{App, AppParts};
use valine_service::testing::config_from;
use valine_store::Stores;
use valine_store::embedded::EmbeddedStore;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const SECRET: &str = "webhook-secret-canary";
const WEB_TEAM: u64 = 1184576487578214401;
const OPS_TEAM: u64 = 1184576487578214402;
const LEGACY: u64 = 1184576487578214403;

/// Answers a post with a message in the channel it was posted to.
struct Echo;

impl Respond for Echo {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let channel = req.url.path().split('/').nth(4).unwrap_or("1").to_string();
        ResponseTemplate::new(200).set_body_json(json!({"id": "1400000000000000001", "channel_id": channel}))
    }
}

struct Harness {
    app: App,
    discord: MockServer,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new(overrides: &[(&str, &str)], subs: &[Subscription]) -> Self {
        let discord = MockServer::start().await;
        Mock::given(method("POST")).respond_with(Echo).mount(&discord).await;
        Mock::given(method("PATCH")).respond_with(Echo).mount(&discord).await;
        let dir = tempfile::tempdir().unwrap();
        let stores =
            Stores::from_adapter(Arc::new(EmbeddedStore::open(&dir.path().join("v.redb")).unwrap()), "embedded");
        for s in subs {
            stores.routes.put_subscription(s).await.unwrap();
        }
        let mut base = vec![
            ("GITHUB_WEBHOOK_SECRET", SECRET.to_string()),
            ("DISCORD_BOT_TOKEN", "bot-token".to_string()),
            ("DISCORD_API_BASE", discord.uri()),
            ("ENABLE_ALERTS", "true".to_string()),
            ("ALERT_CHANNEL_ID", LEGACY.to_string()),
            ("GITHUB_REPO", "acme/web".to_string()),
            ("GITHUB_REPOS", "acme/*".to_string()),
        ];
        let routes_path = dir.path().join("routes.toml");
        if let Some((_, text)) = overrides.iter().find(|(k, _)| *k == "ROUTES_TOML") {
            std::fs::write(&routes_path, text).unwrap();
            base.push(("ROUTES_FILE", routes_path.display().to_string()));
        }
        let overrides: Vec<(&str, &str)> = overrides.iter().filter(|(k, _)| *k != "ROUTES_TOML").copied().collect();
        let config = config_from(&base, &overrides);
        let app = App::new(AppParts {
            discord: valine_clients::discord_api::from_config(&config, Duration::from_secs(3)),
            config,
            stores,
            metrics: Metrics::new("github-handler", Arc::new(Capture::default())),
        })
        .unwrap();
        Self { app, discord, _dir: dir }
    }

    async fn deliver(&self, event: &str, delivery: &str, payload: &Value) -> (StatusCode, Value) {
        let req = valine_service::testing::signed_delivery(SECRET, event, delivery, payload.to_string().into_bytes());
        let res = self.app.handle(req).await;
        (res.status, serde_json::from_str(&res.body).unwrap())
    }

    /// The posts per channel.
    async fn posts(&self, channel: u64) -> Vec<Value> {
        let path = format!("/api/v10/channels/{channel}/messages");
        self.discord
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method.as_str() == "POST" && r.url.path() == path)
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    }
}

fn sub(
    channel_id: u64,
    repo: &str,
    workflows: &str,
    branches: &str,
    events: &str,
    mention: Option<u64>,
) -> Subscription {
    Subscription {
        retry: false,
        channel_id,
        guild_id: None,
        repo: repo.into(),
        workflows: workflows.into(),
        branches: branches.into(),
        events: events.into(),
        mention_role_id: mention,
        created_by: 42,
        created_at: now_secs(),
    }
}

fn run(repo: &str, workflow: &str, number: u64, conclusion: &str, branch: &str) -> Value {
    json!({
        "action": "completed",
        "workflow_run": {
            "id": 9000 + number, "name": workflow, "display_title": "t", "head_branch": branch,
            "head_sha": "3f1c9a7e0d2b4c6a8e9f0a1b2c3d4e5f60718293", "path": ".github/workflows/x.yml",
            "run_number": number, "run_attempt": 1, "event": "push", "status": "completed", "conclusion": conclusion,
            "workflow_id": 7, "html_url": format!("https://github.com/{repo}/actions/runs/{}", 9000 + number),
            "created_at": "2026-11-22T14:00:00Z", "updated_at": "2026-11-22T14:05:00Z",
            "actor": {"login": "octocat"}, "pull_requests": []
        },
        "workflow": {"id": 7, "name": workflow},
        "repository": {"full_name": repo},
        "sender": {"login": "octocat"}
    })
}

fn two_teams() -> Vec<Subscription> {
    vec![
        // the web team: failures of acme/web on main, CI but not nightly
        sub(WEB_TEAM, "acme/web", "*,!nightly", "main", "failures", Some(777)),
        // ops: every run of CI in every acme repository, any branch
        sub(OPS_TEAM, "acme/*", "ci", "", "all-runs", None),
    ]
}

#[tokio::test]
async fn a_failure_routed_to_two_channels_is_one_incident_in_each() {
    let h = Harness::new(&[], &two_teams()).await;
    let (status, body) = h.deliver("workflow_run", "d-1", &run("acme/web", "CI", 1, "failure", "main")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let routes = body["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 2, "{body}");
    assert_ne!(routes[0]["incident"], routes[1]["incident"], "each channel its own incident");
    let web = h.posts(WEB_TEAM).await;
    let ops = h.posts(OPS_TEAM).await;
    assert_eq!((web.len(), ops.len()), (1, 1));
    // the web team's route mentions its role; ops' does not
    assert_eq!(web[0]["content"], "<@&777>");
    assert_eq!(web[0]["allowed_mentions"]["roles"], json!(["777"]));
    assert_eq!(ops[0]["allowed_mentions"], json!({"parse": []}));
    // each has its own buttons
    let id = |m: &Value| m["components"][0]["components"][0]["custom_id"].as_str().unwrap().to_string();
    assert_ne!(id(&web[0]), id(&ops[0]));
    assert!(h.posts(LEGACY).await.is_empty(), "ALERT_CHANNEL_ID keeps only the bot's own alerts");
    let incidents = h.app.stores.incidents.list_incidents(10).await.unwrap();
    assert_eq!(incidents.len(), 2);
}

#[tokio::test]
async fn deliveries_land_only_where_they_match() {
    let h = Harness::new(&[], &two_teams()).await;
    // nightly on acme/web main: excluded by the web team, not CI for ops: nobody
    let (status, body) = h.deliver("workflow_run", "d-1", &run("acme/web", "nightly", 1, "failure", "main")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["status"], "ignored");
    assert!(body["reason"].as_str().unwrap().starts_with("no route matched (2 routes"), "{body}");
    // CI on a feature branch of acme/api: ops only, a failure opens an incident there
    let (status, body) = h.deliver("workflow_run", "d-2", &run("acme/api", "CI", 1, "failure", "feature/x")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["alert"], "sent");
    assert_eq!((h.posts(WEB_TEAM).await.len(), h.posts(OPS_TEAM).await.len()), (0, 1));
    // a success with no incident open: ops (all-runs) gets a compact line, nobody else anything
    let (_, body) = h.deliver("workflow_run", "d-3", &run("acme/docs", "CI", 5, "success", "main")).await;
    assert_eq!(body["line"], "sent", "{body}");
    let ops = h.posts(OPS_TEAM).await;
    assert_eq!(ops.len(), 2);
    let line = ops[1]["content"].as_str().unwrap();
    assert!(line.starts_with("🟢 CI #5 on `main` (acme/docs): success"), "{line}");
    assert!(ops[1].get("embeds").is_none_or(|e| e.as_array().unwrap().is_empty()));
    // a newer success resolves ops' acme/api incident: an edit and a reply, no extra line
    let (_, body) = h.deliver("workflow_run", "d-4", &run("acme/api", "CI", 2, "success", "feature/x")).await;
    assert_eq!(body["resolved"], "sent", "{body}");
    assert!(body.get("line").is_none(), "{body}");
}

#[tokio::test]
async fn outside_github_repos_or_without_a_route_nothing_is_written() {
    let h = Harness::new(&[], &two_teams()).await;
    for (delivery, payload, reason) in [
        ("d-evil", run("evil/app", "CI", 1, "failure", "main"), "repository evil/app is not in GITHUB_REPOS"),
        ("d-none", run("acme/web", "lint", 1, "failure", "feature/y"), "no route matched"),
    ] {
        let (status, body) = h.deliver("workflow_run", delivery, &payload).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["status"], "ignored");
        assert!(body["reason"].as_str().unwrap().starts_with(reason), "{body}");
        // nothing written: the delivery id is still unseen, no trace, no incident
        assert!(h.app.stores.deliveries.first_seen(&format!("github:{delivery}")).await.unwrap());
    }
    assert!(h.app.stores.traces.recent_for_user("github", 10).await.unwrap().is_empty());
    assert!(h.app.stores.incidents.list_incidents(10).await.unwrap().is_empty());
    assert!(h.discord.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn deployments_go_to_channels_routed_deployments() {
    let subs =
        vec![sub(OPS_TEAM, "acme/*", "", "", "deployments", None), sub(WEB_TEAM, "acme/web", "", "", "failures", None)];
    let h = Harness::new(&[], &subs).await;
    let payload = json!({
        "action": "created",
        "deployment_status": {"id": 3, "state": "failure", "environment": "production", "created_at": "2026-11-22T14:00:00Z"},
        "deployment": {"ref": "main", "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", "environment": "production"},
        "repository": {"full_name": "acme/web"},
        "sender": {"login": "deployer"}
    });
    let (status, body) = h.deliver("deployment_status", "d-1", &payload).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["alert"], "sent");
    assert_eq!((h.posts(OPS_TEAM).await.len(), h.posts(WEB_TEAM).await.len()), (1, 0));
}

#[tokio::test]
async fn routes_file_routes_merge_with_subscriptions() {
    let file = format!("[[route]]\nchannel = {LEGACY}\nrepo = \"acme/web\"\nbranches = [\"release/*\"]\n");
    let h = Harness::new(&[("ROUTES_TOML", &file)], &[sub(WEB_TEAM, "acme/web", "", "main", "failures", None)]).await;
    assert_eq!(h.app.file_routes.len(), 1);
    h.deliver("workflow_run", "d-1", &run("acme/web", "CI", 1, "failure", "release/2")).await;
    h.deliver("workflow_run", "d-2", &run("acme/web", "CI", 1, "failure", "main")).await;
    assert_eq!((h.posts(LEGACY).await.len(), h.posts(WEB_TEAM).await.len()), (1, 1));
}

#[tokio::test]
async fn an_invalid_routes_file_stops_the_start_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.toml");
    std::fs::write(&path, "[[route]]\nchannel = 1\nrepo = \"evil/x\"\n").unwrap();
    let config = config_from(
        &[("GITHUB_WEBHOOK_SECRET", SECRET.to_string()), ("GITHUB_REPOS", "acme/*".into())],
        &[("ROUTES_FILE", path.to_str().unwrap())],
    );
    let stores = Stores::from_adapter(Arc::new(EmbeddedStore::open(&dir.path().join("v.redb")).unwrap()), "e");
    let err = App::new(AppParts {
        discord: valine_clients::discord_api::from_config(&config, Duration::from_secs(3)),
        config,
        stores,
        metrics: Metrics::new("github-handler", Arc::new(Capture::default())),
    })
    .unwrap_err();
    assert!(err.to_string().contains("line 3: repository `evil/x` is outside GITHUB_REPOS"), "{err}");
}
