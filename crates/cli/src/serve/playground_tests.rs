//! The playground's endpoints against a real `serve` on a free port: the page, its setup, the
//! signed command, press, scenario and free-form paths, the event stream, and refusals of bad
//! input.

use std::time::Duration;

use serde_json::{Value, json};
use valine_store::Stores;

use super::{Exposure, Mode, Server, serve_config};
use crate::playground::{self, ALERTS_CHANNEL, GENERAL_CHANNEL, Playground};

struct Running {
    base: String,
    pg: std::sync::Arc<Playground>,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start() -> Running {
    start_with(&[]).await
}

/// `serve` without `--live`, on an empty data directory, with `shell` as the rest of its
/// environment.
async fn start_with(shell: &[(&str, &str)]) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_string_lossy().to_string();
    let get = |k: &str| match k {
        "DATA_DIR" => Some(data.clone()),
        "STORE" => Some("embedded".into()),
        _ => shell.iter().find(|(name, _)| *name == k).map(|(_, v)| v.to_string()),
    };
    let config = serve_config(Mode::Playground, get, false).unwrap();
    let stores = Stores::open(&config).await.unwrap();
    let server =
        Server::build(&config, Mode::Playground, stores, Duration::from_secs(3600), &Exposure::Loopback).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    server.playground.listening(&base).unwrap();
    let pg = server.playground.clone();
    tokio::spawn(async move { axum::serve(listener, server.router).await });
    Running { base, pg, client: reqwest::Client::new(), _dir: dir }
}

impl Running {
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.client.post(format!("{}{path}", self.base)).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn until(&self, what: &str, check: impl Fn(&Playground) -> bool) {
        for _ in 0..200 {
            if check(&self.pg) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}");
    }
}

#[tokio::test]
async fn the_page_and_its_setup() {
    let s = start().await;
    let page = s.client.get(format!("{}/", s.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.text().await.unwrap().contains("Valine playground"));
    let setup: Value = s.client.get(format!("{}/playground/setup", s.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(setup["mode"], "playground");
    assert_eq!(setup["repo"], "valine-demo/webshop");
    assert_eq!(setup["alert_channel_id"], ALERTS_CHANNEL.to_string());
    let keys: Vec<&str> = setup["identities"].as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["admin", "responder", "member", "dm"]);
    assert!(setup["commands"].as_array().unwrap().iter().any(|c| c["name"] == "status"));
    assert_eq!(setup["scenarios"].as_array().unwrap().len(), 8);
}

#[tokio::test]
async fn tokens_in_the_shell_still_give_the_playground() {
    // What a developer's shell often exports, a half-set GitHub App included: none of it is read.
    let s = start_with(&[
        ("GITHUB_TOKEN", "shell-github-token"),
        ("DISCORD_BOT_TOKEN", "shell-discord-token"),
        ("GITHUB_APP_ID", "not a number"),
    ])
    .await;
    let setup: Value = s.client.get(format!("{}/playground/setup", s.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(setup["mode"], "playground");
    assert_eq!(setup["repo"], "valine-demo/webshop");
    assert_eq!(setup["alert_channel_id"], ALERTS_CHANNEL.to_string());
    // `/status` answers from the fake GitHub's demo runs, and a failure opens an incident in the
    // fake #alerts: the tokens reached neither.
    let (_, answer) = s.post("/playground/command", json!({"as": "admin", "name": "status"})).await;
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(s.pg.discord.messages(GENERAL_CHANNEL).last().unwrap()["embeds"][0]["title"], "CI");
    let (_, answer) = s.post("/playground/scenario", json!({"scenario": "fails"})).await;
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(s.pg.discord.messages(ALERTS_CHANNEL).len(), 1);
}

#[tokio::test]
async fn status_goes_signed_through_discord_and_its_embed_is_posted() {
    let s = start().await;
    let (status, answer) = s.post("/playground/command", json!({"as": "admin", "name": "status", "options": []})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], 200);
    assert_eq!(answer["channel_id"], GENERAL_CHANNEL.to_string());
    let messages = s.pg.discord.messages(GENERAL_CHANNEL);
    let last = messages.last().unwrap();
    assert_eq!(last["embeds"][0]["title"], "CI");
    assert_eq!(last["interaction"]["name"], "/status");
    // In a DM the answer goes to the DM channel.
    let (_, answer) = s.post("/playground/command", json!({"as": "dm", "name": "status"})).await;
    assert_ne!(answer["channel_id"], GENERAL_CHANNEL.to_string());
}

#[tokio::test]
async fn fails_fails_again_newer_passes_is_one_message_resolved_with_a_reply() {
    let s = start().await;
    for scenario in ["fails", "fails-again", "older-passes-late", "newer-passes"] {
        let (status, answer) = s.post("/playground/scenario", json!({"scenario": scenario})).await;
        assert_eq!((status, answer["status"].as_u64()), (200, Some(200)), "{scenario}: {answer}");
    }
    let messages = s.pg.discord.messages(ALERTS_CHANNEL);
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let (incident, reply) = (&messages[0], &messages[1]);
    assert_eq!(incident["edited"], true);
    assert_eq!(incident["components"], json!([]));
    assert_eq!(reply["reply_to"], incident["id"]);
    assert!(reply["content"].as_str().unwrap().contains("Resolved"));
    let deliveries = s.pg.feed.of_kind("delivery");
    assert_eq!(deliveries.len(), 4);
    assert!(deliveries.iter().all(|d| d["status"] == 200));
}

#[tokio::test]
async fn rerun_as_a_responder_reaches_github_and_a_member_is_refused() {
    let s = start().await;
    s.post("/playground/scenario", json!({"scenario": "fails"})).await;
    let incident = s.pg.discord.messages(ALERTS_CHANNEL).remove(0);
    let rerun = incident["components"][0]["components"][0].clone();
    assert_eq!(rerun["label"], "Re-run failed jobs");
    let press = |who: &str| {
        json!({"as": who, "custom_id": rerun["custom_id"], "message_id": incident["id"],
               "channel_id": ALERTS_CHANNEL.to_string(), "label": "Re-run failed jobs"})
    };
    let (_, answer) = s.post("/playground/press", press("member")).await;
    assert!(answer["answer"]["data"]["content"].as_str().unwrap().contains("RESPONDER_ROLE_IDS"), "{answer}");
    let refusal = s.pg.discord.messages(ALERTS_CHANNEL).pop().unwrap();
    assert_eq!(refusal["ephemeral_for"], playground::MEMBER_USER.to_string());
    assert!(s.pg.feed.of_kind("github").is_empty());
    let (_, answer) = s.post("/playground/press", press("responder")).await;
    assert_eq!(answer["status"], 200);
    let received = s.pg.feed.of_kind("github");
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["what"], "rerun");
    // The re-run passes by the fake's own deliveries, and the incident resolves.
    s.until("the re-run to resolve the incident", |pg| {
        pg.discord
            .messages(ALERTS_CHANNEL)
            .iter()
            .any(|m| m["content"].as_str().is_some_and(|c| c.contains("Resolved")))
    })
    .await;
}

#[tokio::test]
async fn the_known_issue_scenario_pings_no_one_and_mark_known_links_through_its_form() {
    let s = start().await;
    let (_, answer) = s.post("/playground/scenario", json!({"scenario": "known-issue-fails"})).await;
    assert_eq!(answer["status"], 200, "{answer}");
    let card = s.pg.discord.messages(ALERTS_CHANNEL).remove(0);
    let content = card["content"].as_str().unwrap();
    assert!(content.starts_with("known: https://github.com/valine-demo/webshop/issues/42 — flaky DNS"), "{card}");
    assert!(!content.contains("<@"), "{card}");
    s.post("/playground/scenario", json!({"scenario": "fails"})).await;
    let card = s.pg.discord.messages(ALERTS_CHANNEL).pop().unwrap();
    let mark = card["components"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["components"].as_array().unwrap().clone())
        .find(|b| b["label"] == "Mark known…")
        .unwrap();
    let (_, answer) = s
        .post(
            "/playground/press",
            json!({"as": "responder", "custom_id": mark["custom_id"], "message_id": card["id"],
                   "channel_id": ALERTS_CHANNEL.to_string(), "label": "Mark known…"}),
        )
        .await;
    assert_eq!(answer["answer"]["type"], 9, "{answer}");
    let form = &answer["answer"]["data"];
    let (_, answer) = s
        .post(
            "/playground/submit",
            json!({"as": "responder", "custom_id": form["custom_id"], "channel_id": ALERTS_CHANNEL.to_string(),
                   "title": form["title"], "fields": [{"custom_id": "issue", "value": "#7"},
                                                       {"custom_id": "note", "value": "slow checkout test"}]}),
        )
        .await;
    let said = answer["answer"]["data"]["content"].as_str().unwrap_or_default().to_string();
    assert!(said.contains("known: #7 — slow checkout test"), "{answer}");
}

#[tokio::test]
async fn free_form_deliveries_and_the_event_stream() {
    let s = start().await;
    let (status, answer) = s
        .post("/playground/webhook", json!({"event": "ping", "body": "{\"zen\": \"Keep it simple.\", \"hook_id\": 1}"}))
        .await;
    assert_eq!((status, answer["status"].as_u64()), (200, Some(200)), "{answer}");
    let mut events = s.client.get(format!("{}/playground/events", s.base)).send().await.unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    while !text.contains("\"kind\":\"delivery\"") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), events.chunk()).await.unwrap().unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.starts_with("data: "));
    assert!(text.contains("\"kind\":\"channel\""));
}

#[tokio::test]
async fn bad_input_is_a_clear_400() {
    let s = start().await;
    let cases = [
        ("/playground/command", json!({"as": "root", "name": "status"}), "no identity"),
        ("/playground/command", json!({"as": "admin", "name": ""}), "command name"),
        ("/playground/command", json!({"as": "admin", "name": "status", "options": [{"value": 1}]}), "options"),
        ("/playground/command", json!({"name": "status"}), "bad request"),
        (
            "/playground/press",
            json!({"as": "admin", "custom_id": "x", "message_id": "abc", "channel_id": "1"}),
            "message_id",
        ),
        ("/playground/scenario", json!({"scenario": "meteor"}), "no scenario"),
        ("/playground/submit", json!({"as": "admin", "custom_id": "", "channel_id": "1"}), "custom_id"),
        (
            "/playground/submit",
            json!({"as": "admin", "custom_id": "v1:known:form:s0a1b2c3d4e", "channel_id": "1",
                   "fields": [{"custom_id": "issue", "value": "x".repeat(4001)}]}),
            "4000",
        ),
        ("/playground/webhook", json!({"event": "push", "body": "{not json"}), "not JSON"),
        ("/playground/webhook", json!({"event": "push", "body": "[1]"}), "not a JSON object"),
        ("/playground/webhook", json!({"event": "Push Event", "body": "{}"}), "event name"),
    ];
    for (path, body, why) in cases {
        let (status, answer) = s.post(path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body}");
        assert!(answer["error"].as_str().unwrap().contains(why), "{path} {body}: {answer}");
    }
    let post = |path: &str| s.client.post(format!("{}{path}", s.base));
    let r = post("/playground/command").header("content-type", "application/json").body("nope").send().await.unwrap();
    assert_eq!(r.status(), 400);
    // Not JSON, another origin, another host: refused before anything is signed.
    let r = post("/playground/scenario").body(r#"{"scenario": "fails"}"#).send().await.unwrap();
    assert_eq!(r.status(), 415);
    let r = post("/playground/scenario")
        .header("origin", "https://evil.example")
        .json(&json!({"scenario": "fails"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = s.client.get(format!("{}/playground/setup", s.base)).header("host", "evil.example").send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(s.pg.feed.of_kind("delivery").is_empty());
}

#[tokio::test]
async fn the_page_cannot_be_framed_by_another_site() {
    let s = start().await;
    let page = s.client.get(format!("{}/", s.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
}

/// Reads the page's event stream until `until` shows, and returns all of it.
async fn events_until(s: &Running, until: &str) -> String {
    let mut events = s.client.get(format!("{}/playground/events", s.base)).send().await.unwrap();
    let mut text = String::new();
    while !text.contains(until) {
        let chunk = tokio::time::timeout(Duration::from_secs(5), events.chunk()).await.unwrap().unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

#[tokio::test]
async fn live_the_page_signs_with_the_development_secret_and_shows_only_the_bots_own_posts() {
    use valine_clients::discord_api::Discord as _;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let discord = MockServer::start().await;
    let dm_channel = "1500000000000000099";
    for (verb, at, answer) in [
        (
            "POST",
            format!("/api/v10/channels/{ALERTS_CHANNEL}/messages"),
            json!({"id": "1500000000000000001", "channel_id": ALERTS_CHANNEL.to_string()}),
        ),
        ("POST", "/api/v10/users/@me/channels".to_string(), json!({"id": dm_channel})),
        (
            "POST",
            format!("/api/v10/channels/{dm_channel}/messages"),
            json!({"id": "1500000000000000002", "channel_id": dm_channel}),
        ),
        (
            "PATCH",
            "/api/v10/webhooks/1290463189401731073/real-interaction-token/messages/@original".to_string(),
            json!({}),
        ),
    ] {
        Mock::given(method(verb))
            .and(path(at))
            .respond_with(ResponseTemplate::new(200).set_body_json(answer))
            .mount(&discord)
            .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_string_lossy().to_string();
    let uri = discord.uri();
    let get = |k: &str| match k {
        "DATA_DIR" => Some(data.clone()),
        "STORE" => Some("embedded".into()),
        "DISCORD_BOT_TOKEN" => Some("live-bot-token-for-tests".into()),
        "DISCORD_API_BASE" => Some(uri.clone()),
        "GITHUB_WEBHOOK_SECRET" => Some("the-real-webhook-secret".into()),
        "GITHUB_REPO" => Some("acme/widget".into()),
        "ENABLE_ALERTS" => Some("true".into()),
        "ALERT_CHANNEL_ID" => Some(ALERTS_CHANNEL.to_string()),
        _ => None,
    };
    let config = serve_config(Mode::Live, get, false).unwrap();
    let stores = Stores::open(&config).await.unwrap();
    let server =
        Server::build(&config, Mode::Live, stores, Duration::from_secs(3600), &Exposure::Loopback).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    server.playground.listening(&base).unwrap();
    let pg = server.playground.clone();
    tokio::spawn(async move { axum::serve(listener, server.router).await });
    let s = Running { base, pg, client: reqwest::Client::new(), _dir: dir };

    // Signed with the development secret, which the real one refuses: nothing reaches the bot.
    let (_, answer) = s.post("/playground/scenario", json!({"scenario": "fails"})).await;
    assert_eq!(answer["status"], 401, "{answer}");
    let setup: Value = s.client.get(format!("{}/playground/setup", s.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(setup["mode"], "recording");
    assert_eq!(setup["webhook_signing"], "development");
    assert!(setup["notice"].as_str().unwrap().contains("development secret"), "{setup}");

    // The bot's own post in a channel shows; a DM and an answer only its caller sees do not.
    s.pg.discord.post_message(ALERTS_CHANNEL, &json!({"content": "incident card"})).await.unwrap();
    let dm = s.pg.discord.open_dm(playground::MEMBER_USER).await.unwrap();
    s.pg.discord.post_message(dm, &json!({"content": "dm-private-text"})).await.unwrap();
    let private = json!({"content": "ephemeral-private-text", "flags": 64});
    s.pg.discord.edit_original(1290463189401731073, "real-interaction-token", &private).await.unwrap();
    s.pg.discord.post_message(ALERTS_CHANNEL, &json!({"content": "sentinel"})).await.unwrap();
    let text = events_until(&s, "sentinel").await;
    assert!(text.contains("incident card"), "{text}");
    for hidden in ["dm-private-text", "ephemeral-private-text", "\"kind\":\"dm\"", &playground::MEMBER_USER.to_string()]
    {
        assert!(!text.contains(hidden), "the page shows `{hidden}`:\n{text}");
    }
}

#[tokio::test]
async fn public_serving_asks_for_the_token_everywhere_but_where_discord_github_and_health_checks_call() {
    // Made at run time: no tracked file holds a token-shaped value for the leaked-secret check.
    let token = format!("serve-{}", uuid::Uuid::new_v4().simple());
    let token = token.as_str();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_string_lossy().to_string();
    let get = |k: &str| match k {
        "DATA_DIR" => Some(data.clone()),
        "STORE" => Some("embedded".into()),
        _ => None,
    };
    let config = serve_config(Mode::Playground, get, false).unwrap();
    let exposure = super::exposure("0.0.0.0:8787".parse().unwrap(), true, Some(token.into())).unwrap();
    let stores = Stores::open(&config).await.unwrap();
    let server = Server::build(&config, Mode::Playground, stores, Duration::from_secs(3600), &exposure).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    server.playground.listening(&base).unwrap();
    tokio::spawn(async move { axum::serve(listener, server.router).await });
    let client = reqwest::Client::new();
    let status = |r: reqwest::Response| r.status().as_u16();

    // What Discord, GitHub and health checks call answers as deployed, without the token.
    assert_eq!(status(client.get(format!("{base}/health")).send().await.unwrap()), 200);
    assert_ne!(status(client.get(format!("{base}/health/ready")).send().await.unwrap()), 401);
    let ping = json!({"type": 1, "id": "1", "application_id": "1", "token": "t", "version": 1}).to_string();
    let key = crate::send::signing_key(&config).unwrap();
    let mut discord = client.post(format!("{base}/discord")).body(ping.clone());
    for (name, value) in valine_domain::signing::discord_headers(&key, ping.as_bytes()) {
        discord = discord.header(name, value);
    }
    assert_eq!(status(discord.send().await.unwrap()), 200);
    let secret = crate::send::webhook_secret(&config).unwrap();
    let body = r#"{"zen": "Keep it simple.", "hook_id": 1}"#;
    let r = client
        .post(format!("{base}/github/webhook"))
        .header("x-github-event", "ping")
        .header("x-github-delivery", "d-1")
        .header("x-hub-signature-256", valine_domain::signing::github_signature(&secret, body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    // Everything else needs the token; the playground is not there at all.
    for (verb, at) in [
        ("GET", "/"),
        ("GET", "/playground/setup"),
        ("GET", "/playground/events"),
        ("POST", "/playground/scenario"),
        ("GET", "/github/health"),
        ("GET", "/discord"),
        ("GET", "/nowhere"),
    ] {
        let request = |auth: Option<&str>| {
            let mut r = client.request(verb.parse().unwrap(), format!("{base}{at}"));
            if let Some(a) = auth {
                r = r.header("authorization", a);
            }
            r.send()
        };
        assert_eq!(status(request(None).await.unwrap()), 401, "{verb} {at} without the token");
        assert_eq!(status(request(Some("Bearer not-the-token")).await.unwrap()), 401, "{verb} {at}");
        assert_eq!(status(request(Some(token)).await.unwrap()), 401, "{verb} {at} without `Bearer `");
        let with = status(request(Some(&format!("Bearer {token}"))).await.unwrap());
        match at {
            "/github/health" => assert_eq!(with, 200),
            "/discord" => assert_eq!(with, 405),
            _ => assert_eq!(with, 404, "{verb} {at}: the playground is off"),
        }
    }
}

#[test]
fn only_a_loopback_address_goes_without_public_and_public_needs_a_token() {
    let addr = |a: &str| a.parse::<std::net::SocketAddr>().unwrap();
    for local in ["127.0.0.1:8787", "[::1]:8787", "127.0.0.2:0"] {
        assert!(matches!(super::exposure(addr(local), false, None), Ok(Exposure::Loopback)), "{local}");
    }
    for open in ["0.0.0.0:8787", "[::]:8787", "192.168.1.10:8787"] {
        let err = super::exposure(addr(open), false, Some("a-long-enough-serve-token".into())).unwrap_err();
        assert!(err.contains(open) && err.contains("--public"), "{err}");
    }
    for (token, says) in
        [(None, "set SERVE_TOKEN"), (Some("   "), "set SERVE_TOKEN"), (Some("short"), "shorter than 16")]
    {
        let err = super::exposure(addr("0.0.0.0:8787"), true, token.map(str::to_string)).unwrap_err();
        assert!(err.contains(says), "{err}");
    }
    assert!(matches!(
        super::exposure(addr("0.0.0.0:8787"), true, Some("a-long-enough-serve-token".into())),
        Ok(Exposure::Public { .. })
    ));
}
