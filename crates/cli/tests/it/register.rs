//! `valinectl register` against a wiremock Discord: without DISCORD_APPLICATION_ID it asks Discord
//! whose bot token it holds (`GET /applications/@me`) and registers under that id; with it, it
//! asks nothing more.

use serde_json::{Value, json};
use valine_clients::testing::fail_on_unexpected;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "discord-token-test-4e1a";
const APP_ID: &str = "223456789012345678";

/// Answers with the request's own body, as Discord's bulk overwrite does.
struct Echo;

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_raw(request.body.clone(), "application/json")
    }
}

async fn discord() -> MockServer {
    let server = MockServer::start().await;
    fail_on_unexpected(&server).await;
    server
}

/// The commands of `app`: none registered yet, then the bulk overwrite.
async fn mount_commands(server: &MockServer, app: &str) {
    Mock::given(method("GET"))
        .and(path(format!("/api/v10/applications/{app}/commands")))
        .and(header("authorization", format!("Bot {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .named("GET commands")
        .mount(server)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("/api/v10/applications/{app}/commands")))
        .and(header("authorization", format!("Bot {TOKEN}").as_str()))
        .respond_with(Echo)
        .expect(1)
        .named("PUT commands")
        .mount(server)
        .await;
}

async fn register(server: &MockServer, env: &[(&str, &str)]) -> (bool, String) {
    let data = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_valinectl"))
        .arg("register")
        .env_clear()
        .env("DATA_DIR", data.path())
        .env("DISCORD_API_BASE", server.uri())
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    let text =
        format!("{}\n--- stderr\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!text.contains(TOKEN), "the token was printed:\n{text}");
    (output.status.success(), text)
}

#[tokio::test]
async fn without_an_application_id_register_asks_discord_whose_token_it_is() {
    let server = discord().await;
    Mock::given(method("GET"))
        .and(path("/api/v10/applications/@me"))
        .and(header("authorization", format!("Bot {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": APP_ID, "name": "Valine"})))
        .expect(1)
        .named("GET application")
        .mount(&server)
        .await;
    mount_commands(&server, APP_ID).await;

    let (ok, text) = register(&server, &[("DISCORD_BOT_TOKEN", TOKEN)]).await;
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("Application {APP_ID} (the bot token's; DISCORD_APPLICATION_ID is not set)")),
        "{text}"
    );
    let count = valine_discord::registry::SPECS.len();
    assert!(text.contains("+ /status (new)") && text.contains(&format!("Registered {count} commands.")), "{text}");
    server.verify().await;
    let put = server.received_requests().await.unwrap().into_iter().find(|r| r.method.as_str() == "PUT").unwrap();
    let registered: Value = serde_json::from_slice(&put.body).unwrap();
    assert_eq!(registered[0]["name"], "status");
}

#[tokio::test]
async fn discord_application_id_wins_when_set() {
    let server = discord().await;
    let other = "323456789012345678";
    mount_commands(&server, other).await;
    let (ok, text) = register(&server, &[("DISCORD_BOT_TOKEN", TOKEN), ("DISCORD_APPLICATION_ID", other)]).await;
    assert!(ok, "{text}");
    assert!(text.contains(&format!("application {other}")), "{text}");
    // GET /applications/@me would have answered 599 and failed the run (fail_on_unexpected).
    server.verify().await;
}

#[tokio::test]
async fn a_token_discord_refuses_is_reported_and_nothing_is_registered() {
    let server = discord().await;
    Mock::given(method("GET"))
        .and(path("/api/v10/applications/@me"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"message": "401: Unauthorized", "code": 0})))
        .expect(1)
        .mount(&server)
        .await;
    let (ok, text) = register(&server, &[("DISCORD_BOT_TOKEN", TOKEN)]).await;
    assert!(!ok, "{text}");
    assert!(
        text.contains("could not read the Discord application of DISCORD_BOT_TOKEN (check the token, or set DISCORD_APPLICATION_ID): 401 401: Unauthorized"),
        "{text}"
    );
    server.verify().await;
}

#[tokio::test]
async fn without_a_bot_token_register_names_it() {
    let server = discord().await;
    let (ok, text) = register(&server, &[("DISCORD_APPLICATION_ID", APP_ID)]).await;
    assert!(!ok, "{text}");
    assert!(text.contains("set DISCORD_BOT_TOKEN (the application's bot token) to register commands"), "{text}");
    assert!(server.received_requests().await.unwrap().is_empty());
}
