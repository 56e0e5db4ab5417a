//! `valinectl setup`: everything between `sam deploy` and a working bot, in one idempotent
//! command. Reads the stack's outputs (or takes `--api-url`), sets the Discord application's
//! Interactions Endpoint URL, registers the slash commands (register.rs), creates or updates the
//! repository webhook and checks its ping delivery. Each step prints a line; a second run changes
//! nothing and says so; `--dry-run` only reads.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use valine_domain::config::{Config, Secret};
use valine_domain::repo::RepoName;

/// The events the GitHub function acts on (crates/github/src/app.rs); GitHub sends `ping` to
/// every hook without being asked.
pub(crate) const WEBHOOK_EVENTS: [&str; 2] = ["deployment_status", "workflow_run"];

/// Discord waits for its own signed PING to the endpoint before it answers the PATCH; a cold
/// start of the function fits well within this.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// GitHub sends a new hook's ping within seconds; look this many times, a second apart.
const PING_POLLS: u32 = 15;

#[derive(Debug, Clone)]
pub(crate) struct SetupArgs {
    pub stage: String,
    /// CloudFormation stack; default `valine-orchestrator-<stage>` (samconfig.toml).
    pub stack: Option<String>,
    pub repo: Option<String>,
    /// Skips CloudFormation.
    pub api_url: Option<String>,
    pub dry_run: bool,
    /// Sends GITHUB_WEBHOOK_SECRET to an existing hook even if nothing else differs (GitHub never
    /// shows a hook's secret, so setup cannot tell whether it is the same).
    pub reset_secret: bool,
}

/// What the run did, for the closing lines.
#[derive(Debug, Default)]
struct Outcome {
    changes: Vec<String>,
    would: Vec<String>,
    failures: Vec<String>,
}

pub(crate) async fn run(config: Config, args: SetupArgs) -> Result<(), String> {
    let repo = match args.repo.as_deref() {
        Some(r) => r.parse::<RepoName>().map_err(|e| e.to_string())?,
        None => {
            config.github_repo.clone().ok_or("say which repository to watch: --repo owner/name (or GITHUB_REPO)")?
        }
    };
    let missing: Vec<&str> = [
        ("DISCORD_BOT_TOKEN", config.discord_bot_token.is_none()),
        ("GITHUB_TOKEN", config.github_token.is_none()),
        ("GITHUB_WEBHOOK_SECRET", config.github_webhook_secret.is_none()),
    ]
    .into_iter()
    .filter_map(|(var, absent)| absent.then_some(var))
    .collect();
    if !missing.is_empty() {
        return Err(format!(
            "set {} (the values in the stack's Secrets Manager secret; see README, \"Deploying\")",
            missing.join(", ")
        ));
    }
    let (Some(discord_token), Some(github_token), Some(webhook_secret)) =
        (&config.discord_bot_token, &config.github_token, &config.github_webhook_secret)
    else {
        return Err("tokens missing".into());
    };
    let mode = if args.dry_run { " (dry run: nothing is changed)" } else { "" };
    println!("valinectl setup: stage {}, repository {repo}{mode}", args.stage);
    let mut outcome = Outcome::default();

    // 1. Where the API is.
    let api = match &args.api_url {
        Some(url) => {
            let api = normalise_api_url(url)?;
            println!("[1/4] API: {api} (from --api-url)");
            api
        }
        None => {
            let stack = crate::stage::stack_name(&args.stage, args.stack.as_deref());
            let info =
                crate::stage::Stack::read(&stack, &args.stage).await.map_err(|e| format!("{e}; or pass --api-url"))?;
            let api = normalise_api_url(info.require("ApiUrl")?)?;
            let secret = info.output("SecretId").unwrap_or("(no SecretId output)");
            println!("[1/4] Stack {stack} ({}): API {api}, secret {secret}", info.status);
            if info.unhealthy() {
                outcome.failures.push(format!("stack {stack} is {}: fix the deployment first", info.status));
            }
            api
        }
    };

    // 2. Discord's Interactions Endpoint URL.
    let discord = Api::discord(&config, discord_token)?;
    let interactions_url = format!("{api}/discord");
    let app = discord.call(reqwest::Method::GET, "/applications/@me", None).await?;
    let app = app.ok("read the Discord application")?;
    let app_id = app
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or("the Discord application has no id")?;
    let current = app.get("interactions_endpoint_url").and_then(Value::as_str).unwrap_or("");
    if current == interactions_url {
        println!("[2/4] Discord interactions endpoint: unchanged, {interactions_url}");
    } else if args.dry_run {
        let was = if current.is_empty() { "none".to_string() } else { current.to_string() };
        println!("[2/4] Discord interactions endpoint: would set {interactions_url} (now: {was})");
        outcome.would.push("set the interactions endpoint URL".into());
    } else {
        let answer = discord
            .call(
                reqwest::Method::PATCH,
                "/applications/@me",
                Some(json!({"interactions_endpoint_url": interactions_url})),
            )
            .await?;
        if answer.status.is_success() {
            println!(
                "[2/4] Discord interactions endpoint: set to {interactions_url} (Discord's signed PING was answered)"
            );
            outcome.changes.push("set the interactions endpoint URL".into());
        } else {
            let line = format!(
                "Discord refused {interactions_url} ({}: {}); it sends the endpoint a signed PING first, so the \
                 function must be deployed and DISCORD_PUBLIC_KEY in the secret must be this application's key",
                answer.status.as_u16(),
                api_error(&answer.body)
            );
            println!("[2/4] Discord interactions endpoint: FAILED: {line}");
            outcome.failures.push(line);
        }
    }

    // 3. Slash commands: register.rs prints the difference and overwrites only if there is one.
    println!("[3/4] Slash commands (global) of application {app_id}:");
    let mut register_config = config.clone();
    register_config.discord_application_id = Some(app_id);
    if let Err(e) = crate::register::run(&register_config, None, args.dry_run).await {
        println!("      FAILED: {e}");
        outcome.failures.push(format!("registering the commands: {e}"));
    }
    let bot = app.get("name").and_then(Value::as_str).unwrap_or("the bot");
    let admin_lines = crate::register::admin_visibility(&valine_discord::registry::definitions(), bot);
    for line in &admin_lines {
        println!("      {line}");
    }

    // 4. The repository webhook and its ping.
    let github = Api::github(&config, github_token)?;
    let webhook_url = format!("{api}/github/webhook");
    webhook(&github, &repo, &webhook_url, webhook_secret, &args, &mut outcome).await?;

    // What is left.
    println!();
    if args.dry_run {
        if outcome.would.is_empty() {
            println!("Dry run: everything is already set up; a real run would change nothing.");
        } else {
            println!("Dry run: a real run would {} (and the commands as listed).", outcome.would.join(", "));
        }
    } else if outcome.changes.is_empty() {
        println!(
            "Nothing changed: the interactions endpoint and the webhook were already set up (commands as listed)."
        );
    } else {
        println!("Changed: {}.", outcome.changes.join("; "));
    }
    println!("Left for you:");
    println!(
        "  - invite the bot, if not yet done: https://discord.com/oauth2/authorize?client_id={app_id}&scope=bot%20applications.commands&permissions=19456"
    );
    if !admin_lines.is_empty() {
        println!("  - let the ADMIN_ROLE_IDS and DEPLOY_ROLE_IDS roles see the admin commands (under [3/4] above)");
    }
    println!("  - check the deployment: valinectl smoke --url {api}");
    println!("  - try /status in a channel the bot can see");
    if outcome.failures.is_empty() {
        Ok(())
    } else {
        Err(format!("setup is not complete: {}", outcome.failures.join("; ")))
    }
}

async fn webhook(
    github: &Api,
    repo: &RepoName,
    url: &str,
    secret: &Secret,
    args: &SetupArgs,
    outcome: &mut Outcome,
) -> Result<(), String> {
    let hooks_path = format!("/repos/{}/{}/hooks", repo.owner, repo.name);
    let hooks = github.call(reqwest::Method::GET, &format!("{hooks_path}?per_page=100"), None).await?;
    let hooks =
        hooks.ok(&format!("list the webhooks of {repo} (the token needs admin:repo_hook or Webhooks: write)"))?;
    let existing = hooks.as_array().and_then(|hooks| {
        hooks.iter().find(|h| h.get("config").and_then(|c| c.get("url")).and_then(Value::as_str) == Some(url))
    });
    let events = WEBHOOK_EVENTS.join(", ");
    let body = || {
        json!({
            "name": "web",
            "active": true,
            "events": WEBHOOK_EVENTS,
            "config": {"url": url, "content_type": "json", "insecure_ssl": "0", "secret": secret.expose()},
        })
    };
    let Some(hook) = existing else {
        if args.dry_run {
            println!(
                "[4/4] GitHub webhook on {repo}: would create {url} (events {events}; JSON; with the secret), then check its ping"
            );
            outcome.would.push("create the webhook".into());
            return Ok(());
        }
        let created = github.call(reqwest::Method::POST, &hooks_path, Some(body())).await?;
        let created = created.ok(&format!("create the webhook on {repo}"))?;
        let id = created.get("id").and_then(Value::as_u64).ok_or("GitHub answered the new webhook without an id")?;
        println!("[4/4] GitHub webhook on {repo}: created hook {id}, {url} (events {events}; JSON; with the secret)");
        outcome.changes.push(format!("created webhook {id}"));
        check_ping(github, &format!("{hooks_path}/{id}"), &BTreeSet::new(), outcome).await;
        return Ok(());
    };
    let id = hook["id"].as_u64().ok_or("a webhook without an id")?;
    let differences = hook_differences(hook);
    let reset = args.reset_secret && differences.is_empty();
    if differences.is_empty() && !reset {
        println!("[4/4] GitHub webhook on {repo}: unchanged, hook {id} ({url}, events {events})");
        last_delivery(github, &format!("{hooks_path}/{id}"), outcome).await;
        return Ok(());
    }
    let why = if reset { "the secret".to_string() } else { differences.join(", ") };
    if args.dry_run {
        println!("[4/4] GitHub webhook on {repo}: would update hook {id} ({why}), then ping it");
        outcome.would.push(format!("update webhook {id}"));
        return Ok(());
    }
    // Deliveries seen before the ping, so the check below finds the new one.
    let before = delivery_ids(github, &format!("{hooks_path}/{id}")).await;
    let updated = github.call(reqwest::Method::PATCH, &format!("{hooks_path}/{id}"), Some(body())).await?;
    updated.ok(&format!("update webhook {id} on {repo}"))?;
    println!("[4/4] GitHub webhook on {repo}: updated hook {id} ({why})");
    outcome.changes.push(format!("updated webhook {id} ({why})"));
    let pinged = github.call(reqwest::Method::POST, &format!("{hooks_path}/{id}/pings"), None).await?;
    pinged.ok(&format!("ping webhook {id}"))?;
    check_ping(github, &format!("{hooks_path}/{id}"), &before, outcome).await;
    Ok(())
}

/// What differs between an existing hook and the one setup makes; empty when nothing does.
pub(crate) fn hook_differences(hook: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let events: BTreeSet<&str> =
        hook["events"].as_array().map_or_else(BTreeSet::new, |e| e.iter().filter_map(Value::as_str).collect());
    let wanted: BTreeSet<&str> = WEBHOOK_EVENTS.into_iter().collect();
    if events != wanted {
        out.push(format!("events {} → {}", join(&events), join(&wanted)));
    }
    if hook["active"].as_bool() != Some(true) {
        out.push("inactive → active".into());
    }
    let config = &hook["config"];
    if config["content_type"].as_str() != Some("json") {
        out.push(format!("content type {} → json", config["content_type"].as_str().unwrap_or("none")));
    }
    if !matches!(config["insecure_ssl"].as_str(), None | Some("0"))
        || config["insecure_ssl"].as_u64().is_some_and(|v| v != 0)
    {
        out.push("TLS verification off → on".into());
    }
    // GitHub shows a set secret as asterisks and leaves the key out when there is none.
    if config["secret"].as_str().is_none_or(str::is_empty) {
        out.push("no secret → the secret".into());
    }
    out
}

fn join(set: &BTreeSet<&str>) -> String {
    if set.is_empty() { "none".into() } else { set.iter().copied().collect::<Vec<_>>().join(",") }
}

async fn delivery_ids(github: &Api, hook_path: &str) -> BTreeSet<u64> {
    match github.call(reqwest::Method::GET, &format!("{hook_path}/deliveries?per_page=30"), None).await {
        Ok(a) if a.status.is_success() => {
            a.body.as_array().map_or_else(BTreeSet::new, |d| d.iter().filter_map(|d| d["id"].as_u64()).collect())
        }
        _ => BTreeSet::new(),
    }
}

/// Waits for a ping delivery not in `before` and reports what the API answered it.
async fn check_ping(github: &Api, hook_path: &str, before: &BTreeSet<u64>, outcome: &mut Outcome) {
    for attempt in 0..PING_POLLS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let answer = match github.call(reqwest::Method::GET, &format!("{hook_path}/deliveries?per_page=30"), None).await
        {
            Ok(a) if a.status.is_success() => a.body,
            Ok(a) => {
                let line = format!("could not read the webhook's deliveries ({})", a.status.as_u16());
                println!("      ping: FAILED: {line}");
                outcome.failures.push(line);
                return;
            }
            Err(e) => {
                println!("      ping: FAILED: {e}");
                outcome.failures.push(e);
                return;
            }
        };
        let ping = answer.as_array().and_then(|d| {
            d.iter().find(|d| d["event"] == "ping" && d["id"].as_u64().is_some_and(|id| !before.contains(&id)))
        });
        if let Some(ping) = ping {
            report_delivery("ping", ping, outcome);
            return;
        }
    }
    let line = format!("GitHub shows no ping delivery after {PING_POLLS} s; look at the hook's Recent Deliveries");
    println!("      ping: FAILED: {line}");
    outcome.failures.push(line);
}

/// For a hook that was already set up: the newest delivery says whether it still gets through.
async fn last_delivery(github: &Api, hook_path: &str, outcome: &mut Outcome) {
    match github.call(reqwest::Method::GET, &format!("{hook_path}/deliveries?per_page=1"), None).await {
        Ok(a) if a.status.is_success() => match a.body.as_array().and_then(|d| d.first()) {
            Some(newest) => report_delivery("newest delivery", newest, outcome),
            None => println!("      no deliveries yet"),
        },
        Ok(a) => println!("      could not read the webhook's deliveries ({})", a.status.as_u16()),
        Err(e) => println!("      could not read the webhook's deliveries: {e}"),
    }
}

fn report_delivery(what: &str, delivery: &Value, outcome: &mut Outcome) {
    let code = delivery["status_code"].as_u64().unwrap_or(0);
    let event = delivery["event"].as_str().unwrap_or("?");
    let status = delivery["status"].as_str().unwrap_or("");
    if (200..300).contains(&code) {
        println!("      {what} ({event}): delivered, the API answered {code}");
        return;
    }
    let hint = match code {
        401 => {
            ": the signature was refused, so the hook's secret is not GITHUB_WEBHOOK_SECRET of the stack (run again with --reset-secret)"
        }
        0 => ": GitHub could not reach the API",
        _ => "",
    };
    let line = format!("{what} ({event}) failed: the API answered {code} {status}{hint}");
    println!("      {line}");
    outcome.failures.push(line);
}

/// `https://…/` → `https://…`; only http(s).
fn normalise_api_url(url: &str) -> Result<String, String> {
    let parsed = url::Url::parse(url.trim()).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(format!("`{url}` is not an http(s) URL"));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

/// A JSON API with one authorization header. Errors name the request, never the token.
pub(crate) struct Api {
    client: reqwest::Client,
    base: String,
    name: &'static str,
}

pub(crate) struct Answer {
    pub(crate) status: reqwest::StatusCode,
    pub(crate) body: Value,
}

impl Answer {
    pub(crate) fn ok(self, what: &str) -> Result<Value, String> {
        if self.status.is_success() {
            Ok(self.body)
        } else {
            Err(format!("could not {what}: {} {}", self.status.as_u16(), api_error(&self.body)))
        }
    }
}

impl Api {
    fn new(base: String, name: &'static str, headers: &[(&str, String)]) -> Result<Self, String> {
        let mut map = reqwest::header::HeaderMap::new();
        for (k, v) in headers {
            let mut value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|_| format!("{name}: a header value is not valid text"))?;
            if k.eq_ignore_ascii_case("authorization") {
                value.set_sensitive(true);
            }
            let key = reqwest::header::HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?;
            map.insert(key, value);
        }
        let client =
            reqwest::Client::builder().timeout(HTTP_TIMEOUT).default_headers(map).build().map_err(|e| e.to_string())?;
        Ok(Self { client, base, name })
    }

    /// DISCORD_API_BASE replaces `https://discord.com`, as for the bot's own client.
    pub(crate) fn discord(config: &Config, token: &Secret) -> Result<Self, String> {
        let root = config.discord_api_base.as_ref().map_or("https://discord.com", |u| u.as_str().trim_end_matches('/'));
        Self::new(
            format!("{root}/api/v10"),
            "Discord",
            &[
                ("authorization", format!("Bot {}", token.expose())),
                (
                    "user-agent",
                    format!("DiscordBot (https://github.com/valine-ops/valine, {})", env!("CARGO_PKG_VERSION")),
                ),
            ],
        )
    }

    /// GITHUB_API_BASE replaces `https://api.github.com`.
    fn github(config: &Config, token: &Secret) -> Result<Self, String> {
        let root =
            config.github_api_base.as_ref().map_or("https://api.github.com", |u| u.as_str().trim_end_matches('/'));
        Self::new(
            root.to_string(),
            "GitHub",
            &[
                ("authorization", format!("Bearer {}", token.expose())),
                ("accept", "application/vnd.github+json".into()),
                ("x-github-api-version", "2022-11-28".into()),
                ("user-agent", concat!("valinectl/", env!("CARGO_PKG_VERSION")).into()),
            ],
        )
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Answer, String> {
        let what = format!("{method} {}{path}", self.name);
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| format!("{what}: no answer ({})", e.without_url()))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| format!("{what}: {}", e.without_url()))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Answer { status, body })
    }
}

/// The most specific message in a Discord or GitHub error body.
fn api_error(body: &Value) -> String {
    fn first_nested(v: &Value) -> Option<String> {
        match v {
            Value::Object(map) => {
                if let Some(errors) = map.get("_errors").and_then(Value::as_array) {
                    return errors.first().and_then(|e| e["message"].as_str()).map(str::to_string);
                }
                map.values().find_map(first_nested)
            }
            _ => None,
        }
    }
    first_nested(&body["errors"])
        .or_else(|| body["message"].as_str().map(str::to_string))
        .or_else(|| body.as_str().map(|s| s.chars().take(200).collect()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repos_parse() {
        let parse_repo = |value: &str| value.parse::<RepoName>();
        assert_eq!(
            parse_repo("valine-ops/valine").unwrap(),
            RepoName { owner: "valine-ops".into(), name: "valine".into() }
        );
        assert!(parse_repo("valine").is_err());
        assert!(parse_repo("a/b/c").is_err());
        assert!(parse_repo("/b").is_err());
    }

    #[test]
    fn api_urls_normalise() {
        assert_eq!(normalise_api_url("https://x.example/").unwrap(), "https://x.example");
        assert!(normalise_api_url("ftp://x.example").is_err());
        assert!(normalise_api_url("nope").is_err());
    }

    #[test]
    fn a_hook_as_setup_makes_it_has_no_differences() {
        let hook = json!({"id": 1, "active": true, "events": ["workflow_run", "deployment_status"],
            "config": {"url": "https://x/github/webhook", "content_type": "json", "insecure_ssl": "0", "secret": "********"}});
        assert!(hook_differences(&hook).is_empty());
    }

    #[test]
    fn hook_differences_are_named() {
        let hook = json!({"id": 1, "active": false, "events": ["push"],
            "config": {"url": "https://x/github/webhook", "content_type": "form", "insecure_ssl": "1"}});
        assert_eq!(
            hook_differences(&hook),
            [
                "events push → deployment_status,workflow_run",
                "inactive → active",
                "content type form → json",
                "TLS verification off → on",
                "no secret → the secret",
            ]
        );
    }

    #[test]
    fn api_errors_give_the_nested_message() {
        let body = json!({"code": 50035, "message": "Invalid Form Body", "errors": {"interactions_endpoint_url":
            {"_errors": [{"code": "APPLICATION_INTERACTIONS_ENDPOINT_URL_INVALID", "message": "The specified interactions endpoint url could not be verified."}]}}});
        assert_eq!(api_error(&body), "The specified interactions endpoint url could not be verified.");
        assert_eq!(api_error(&json!({"message": "Not Found"})), "Not Found");
    }
}
