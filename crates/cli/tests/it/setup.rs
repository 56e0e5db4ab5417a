//! `valinectl setup` against wiremock Discord, GitHub and CloudFormation, with every request
//! asserted: a first run creates, a second run against the state the first one left changes
//! nothing, `--dry-run` only reads, and a refused ping fails the run.

use std::process::Output;

use serde_json::{Value, json};
use valine_clients::testing::fail_on_unexpected;
use wiremock::matchers::{body_json, body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const APP_ID: &str = "123456789012345678";
const API: &str = "https://api.valine.test";
const SECRET: &str = "whsec-test-6b1f";
const DISCORD_TOKEN: &str = "discord-token-test-93d0";
const GITHUB_TOKEN: &str = "ghp_test_0b7a";

struct Fakes {
    discord: MockServer,
    github: MockServer,
    cloudformation: MockServer,
}

impl Fakes {
    async fn start() -> Self {
        let fakes = Self {
            discord: MockServer::start().await,
            github: MockServer::start().await,
            cloudformation: MockServer::start().await,
        };
        fakes.guard().await;
        fakes
    }

    /// Anything not mounted answers 599 and fails the test.
    async fn guard(&self) {
        for server in [&self.discord, &self.github, &self.cloudformation] {
            fail_on_unexpected(server).await;
        }
    }

    async fn reset(&self) {
        for server in [&self.discord, &self.github, &self.cloudformation] {
            server.reset().await;
        }
        self.guard().await;
    }

    async fn verify(&self) {
        for server in [&self.discord, &self.github, &self.cloudformation] {
            server.verify().await;
        }
    }

    async fn run(&self, args: &[&str]) -> (Output, String) {
        let data = tempfile::tempdir().unwrap();
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_valinectl"))
            .arg("setup")
            .args(args)
            .env_clear()
            .env("DATA_DIR", data.path())
            .env("DISCORD_BOT_TOKEN", DISCORD_TOKEN)
            .env("GITHUB_TOKEN", GITHUB_TOKEN)
            .env("GITHUB_WEBHOOK_SECRET", SECRET)
            .env("DISCORD_API_BASE", self.discord.uri())
            .env("GITHUB_API_BASE", self.github.uri())
            .env("AWS_ENDPOINT_URL", self.cloudformation.uri())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", data.path().join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", data.path().join("none"))
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        for secret in [SECRET, DISCORD_TOKEN, GITHUB_TOKEN] {
            assert!(!stdout.contains(secret) && !stderr.contains(secret), "a secret was printed:\n{stdout}\n{stderr}");
        }
        (output, format!("{stdout}\n--- stderr\n{stderr}"))
    }

    async fn mount_stack(&self) {
        let xml = format!(
            r#"<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">
  <DescribeStacksResult><Stacks><member>
    <StackName>valine-orchestrator-dev</StackName>
    <StackId>arn:aws:cloudformation:us-east-1:123456789012:stack/valine-orchestrator-dev/1</StackId>
    <CreationTime>2026-11-01T00:00:00Z</CreationTime>
    <StackStatus>UPDATE_COMPLETE</StackStatus>
    <Outputs>
      <member><OutputKey>ApiUrl</OutputKey><OutputValue>{API}</OutputValue></member>
      <member><OutputKey>SecretId</OutputKey><OutputValue>valine-orchestrator/dev</OutputValue></member>
    </Outputs>
  </member></Stacks></DescribeStacksResult>
  <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>
</DescribeStacksResponse>"#
        );
        Mock::given(method("POST"))
            .and(path("/"))
            .and(body_string_contains("Action=DescribeStacks"))
            .and(body_string_contains("StackName=valine-orchestrator-dev"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(xml, "text/xml"))
            .expect(1)
            .named("DescribeStacks")
            .mount(&self.cloudformation)
            .await;
    }

    async fn mount_application(&self, endpoint: Option<&str>) {
        Mock::given(method("GET"))
            .and(path("/api/v10/applications/@me"))
            .and(header("authorization", format!("Bot {DISCORD_TOKEN}").as_str()))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"id": APP_ID, "name": "Valine", "interactions_endpoint_url": endpoint})),
            )
            .expect(1)
            .named("GET application")
            .mount(&self.discord)
            .await;
    }

    async fn mount_commands(&self, current: Value) {
        Mock::given(method("GET"))
            .and(path(format!("/api/v10/applications/{APP_ID}/commands")))
            .respond_with(ResponseTemplate::new(200).set_body_json(current))
            .expect(1)
            .named("GET commands")
            .mount(&self.discord)
            .await;
    }

    async fn mount_hooks(&self, hooks: Value) {
        Mock::given(method("GET"))
            .and(path("/repos/valine-ops/valine/hooks"))
            .and(header("authorization", format!("Bearer {GITHUB_TOKEN}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(hooks))
            .expect(1)
            .named("GET hooks")
            .mount(&self.github)
            .await;
    }

    async fn mount_deliveries(&self, per_page: &str, deliveries: Value) {
        Mock::given(method("GET"))
            .and(path("/repos/valine-ops/valine/hooks/77/deliveries"))
            .and(query_param("per_page", per_page))
            .respond_with(ResponseTemplate::new(200).set_body_json(deliveries))
            .expect(1)
            .named("GET deliveries")
            .mount(&self.github)
            .await;
    }

    /// The writes of a first run: the endpoint URL, the commands and the new hook.
    async fn mount_first_run_writes(&self) {
        Mock::given(method("PATCH"))
            .and(path("/api/v10/applications/@me"))
            .and(body_json(json!({"interactions_endpoint_url": format!("{API}/discord")})))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"id": APP_ID, "interactions_endpoint_url": format!("{API}/discord")})),
            )
            .expect(1)
            .named("PATCH application")
            .mount(&self.discord)
            .await;
        Mock::given(method("PUT"))
            .and(path(format!("/api/v10/applications/{APP_ID}/commands")))
            .respond_with(Echo)
            .expect(1)
            .named("PUT commands")
            .mount(&self.discord)
            .await;
        Mock::given(method("POST"))
            .and(path("/repos/valine-ops/valine/hooks"))
            .and(body_json(wanted_hook()))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 77, "active": true})))
            .expect(1)
            .named("POST hook")
            .mount(&self.github)
            .await;
    }
}

/// Answers with the request's own body, as Discord's bulk overwrite does.
struct Echo;

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_raw(request.body.clone(), "application/json")
    }
}

fn wanted_hook() -> Value {
    json!({
        "name": "web",
        "active": true,
        "events": ["deployment_status", "workflow_run"],
        "config": {"url": format!("{API}/github/webhook"), "content_type": "json", "insecure_ssl": "0", "secret": SECRET},
    })
}

/// The lines about the commands only administrators see: each of them (from the registry, by
/// `default_member_permissions` "0") and no other, the roles, and where to grant them.
fn assert_admin_visibility(text: &str) {
    let start = text
        .find("Discord shows these commands only to server administrators until the server lets a role use them:")
        .unwrap_or_else(|| panic!("no admin-command lines in:\n{text}"));
    let block: String = text[start..].lines().take_while(|l| !l.starts_with("[4/4]")).collect::<Vec<_>>().join("\n");
    let definitions = valine_discord::registry::definitions();
    for command in definitions.as_array().unwrap() {
        let name = format!("/{}", command["name"].as_str().unwrap());
        let listed = block.contains(&format!("{name},")) || block.contains(&format!("{name}:"));
        assert_eq!(listed, command["default_member_permissions"] == "0", "{name} in:\n{block}");
    }
    for line in [
        "/deploy-client, /lock, /unlock: for the roles of ADMIN_ROLE_IDS and DEPLOY_ROLE_IDS",
        "for the roles of ADMIN_ROLE_IDS\n",
        "To let those roles see and use them: Server Settings → Integrations → Valine → each command above → Add Roles or Members → the role (and save).",
        "The bot still checks ADMIN_USER_IDS, ADMIN_ROLE_IDS and DEPLOY_ROLE_IDS itself",
    ] {
        assert!(block.contains(line), "missing {line:?} in:\n{block}");
    }
    assert!(text.contains("  - let the ADMIN_ROLE_IDS and DEPLOY_ROLE_IDS roles see the admin commands"), "{text}");
}

fn ping(id: u64, status_code: u16) -> Value {
    json!({"id": id, "guid": "g", "event": "ping", "action": null, "status_code": status_code,
           "status": if status_code == 200 { "OK" } else { "Invalid HTTP Response: 401" }, "redelivery": false})
}

#[tokio::test]
async fn a_first_run_sets_up_everything_and_a_second_run_changes_nothing() {
    let fakes = Fakes::start().await;
    fakes.mount_stack().await;
    fakes.mount_application(None).await;
    fakes.mount_commands(json!([])).await;
    fakes.mount_hooks(json!([])).await;
    fakes.mount_first_run_writes().await;
    fakes.mount_deliveries("30", json!([ping(5, 200)])).await;

    let (output, text) = fakes.run(&["--repo", "valine-ops/valine"]).await;
    assert!(output.status.success(), "{text}");
    for line in [
        "[1/4] Stack valine-orchestrator-dev (UPDATE_COMPLETE): API https://api.valine.test, secret valine-orchestrator/dev",
        "[2/4] Discord interactions endpoint: set to https://api.valine.test/discord",
        "+ /status (new)",
        "[4/4] GitHub webhook on valine-ops/valine: created hook 77, https://api.valine.test/github/webhook (events deployment_status, workflow_run; JSON; with the secret)",
        "ping (ping): delivered, the API answered 200",
        "Changed: set the interactions endpoint URL; created webhook 77.",
        "valinectl smoke --url https://api.valine.test",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert_admin_visibility(&text);
    // What the first run registered is what Discord now has.
    let registered = fakes
        .discord
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.method.as_str() == "PUT")
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .unwrap();
    assert!(registered.as_array().is_some_and(|c| c.iter().any(|c| c["name"] == "status")), "{registered}");
    fakes.verify().await;

    // The state the first run left: a second run reads it and writes nothing.
    fakes.reset().await;
    fakes.mount_stack().await;
    fakes.mount_application(Some(&format!("{API}/discord"))).await;
    fakes.mount_commands(registered).await;
    let mut hook = wanted_hook();
    hook["id"] = json!(77);
    hook["config"]["secret"] = json!("********");
    fakes.mount_hooks(json!([{"id": 12, "active": true, "events": ["push"], "config": {"url": "https://elsewhere.test/hook", "content_type": "form"}}, hook])).await;
    fakes.mount_deliveries("1", json!([ping(5, 200)])).await;

    let (output, text) = fakes.run(&["--repo", "valine-ops/valine"]).await;
    assert!(output.status.success(), "{text}");
    for line in [
        "[2/4] Discord interactions endpoint: unchanged, https://api.valine.test/discord",
        "= /status",
        "Nothing to change.",
        "[4/4] GitHub webhook on valine-ops/valine: unchanged, hook 77",
        "newest delivery (ping): delivered, the API answered 200",
        "Nothing changed",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    fakes.verify().await;
}

#[tokio::test]
async fn a_dry_run_reads_and_lists_what_it_would_do() {
    let fakes = Fakes::start().await;
    // --api-url: CloudFormation is not asked.
    fakes.mount_application(None).await;
    fakes.mount_commands(json!([])).await;
    fakes.mount_hooks(json!([])).await;

    let (output, text) =
        fakes.run(&["--repo", "valine-ops/valine", "--api-url", "https://api.valine.test/", "--dry-run"]).await;
    assert!(output.status.success(), "{text}");
    // `cargo test -p valinectl --test setup -- --nocapture` shows what a dry run prints.
    println!("{text}");
    for line in [
        "(dry run: nothing is changed)",
        "[1/4] API: https://api.valine.test (from --api-url)",
        "[2/4] Discord interactions endpoint: would set https://api.valine.test/discord (now: none)",
        "+ /status (new)",
        "Dry run: nothing was changed.",
        "[4/4] GitHub webhook on valine-ops/valine: would create https://api.valine.test/github/webhook (events deployment_status, workflow_run; JSON; with the secret)",
        "Dry run: a real run would set the interactions endpoint URL, create the webhook",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert_admin_visibility(&text);
    fakes.verify().await;
}

#[tokio::test]
async fn a_refused_ping_fails_the_run_and_says_why() {
    let fakes = Fakes::start().await;
    fakes.mount_stack().await;
    fakes.mount_application(None).await;
    fakes.mount_commands(json!([])).await;
    fakes.mount_hooks(json!([])).await;
    fakes.mount_first_run_writes().await;
    fakes.mount_deliveries("30", json!([ping(6, 401)])).await;

    let (output, text) = fakes.run(&["--repo", "valine-ops/valine"]).await;
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("ping (ping) failed: the API answered 401"), "{text}");
    assert!(text.contains("--reset-secret"), "{text}");
    assert!(text.contains("setup is not complete"), "{text}");
    fakes.verify().await;
}

#[tokio::test]
async fn a_hook_with_other_events_is_updated_and_pinged() {
    let fakes = Fakes::start().await;
    fakes.mount_application(Some(&format!("{API}/discord"))).await;
    fakes.mount_commands(json!([])).await;
    Mock::given(method("PUT"))
        .and(path(format!("/api/v10/applications/{APP_ID}/commands")))
        .respond_with(Echo)
        .expect(1)
        .mount(&fakes.discord)
        .await;
    fakes.mount_hooks(json!([{"id": 77, "active": true, "events": ["workflow_run"],
        "config": {"url": format!("{API}/github/webhook"), "content_type": "json", "insecure_ssl": "0", "secret": "********"}}])).await;
    // Deliveries before the update (an old ping), then after the ping (a new one).
    Mock::given(method("GET"))
        .and(path("/repos/valine-ops/valine/hooks/77/deliveries"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([ping(3, 200)])))
        .up_to_n_times(1)
        .expect(1)
        .mount(&fakes.github)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/valine-ops/valine/hooks/77"))
        .and(body_json(wanted_hook()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 77})))
        .expect(1)
        .mount(&fakes.github)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/valine-ops/valine/hooks/77/pings"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&fakes.github)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/valine-ops/valine/hooks/77/deliveries"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([ping(4, 200), ping(3, 200)])))
        .expect(1)
        .mount(&fakes.github)
        .await;

    let (output, text) = fakes.run(&["--repo", "valine-ops/valine", "--api-url", API]).await;
    assert!(output.status.success(), "{text}");
    assert!(text.contains("updated hook 77 (events workflow_run → deployment_status,workflow_run)"), "{text}");
    assert!(text.contains("ping (ping): delivered, the API answered 200"), "{text}");
    fakes.verify().await;
}

#[tokio::test]
async fn missing_tokens_are_named_before_anything_is_sent() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_valinectl"))
        .args(["setup", "--repo", "valine-ops/valine", "--api-url", API])
        .env_clear()
        .env("DATA_DIR", tempfile::tempdir().unwrap().path())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("set DISCORD_BOT_TOKEN, GITHUB_TOKEN, GITHUB_WEBHOOK_SECRET"), "{stderr}");
}
