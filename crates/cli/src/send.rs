//! `valinectl send`: signs an interaction (with the development key, or `VALINE_DISCORD_SEED`)
//! or a GitHub delivery (with `GITHUB_WEBHOOK_SECRET` or the development secret), sends it to a
//! running `valinectl serve`, and prints the answer.

use std::path::Path;

use serde_json::{Value, json};
use valine_domain::clock::now_secs;
use valine_domain::config::Config;
use valine_domain::signing::{InteractionBuilder, discord_headers, github_signature};

use crate::devkeys::DevKeys;

/// The interaction to build.
#[derive(Debug, Default, Clone)]
pub(crate) struct Interaction {
    pub command: String,
    pub count: Option<i64>,
    pub workflow: Option<String>,
    pub frontend_url: Option<String>,
    pub api_base: Option<String>,
    pub channel: Option<String>,
    pub user: Option<String>,
    pub message: Option<String>,
    pub confirm: bool,
    pub public: bool,
    pub as_user: u64,
    pub roles: Vec<u64>,
    /// More string options, `name=value` (`--opt repo=acme/web`).
    pub options: Vec<String>,
    /// The channel the interaction is typed in (default a local one).
    pub in_channel: Option<u64>,
    /// `/deploy-client`'s `ref`.
    pub git_ref: Option<String>,
    /// `/set-frontend` and `/set-api-base`'s `url`.
    pub set_url: Option<String>,
    /// A button press instead of a command: the button's custom id (Confirm / Cancel of a preview).
    pub press: Option<String>,
}

/// The application id local interactions claim to come from.
pub(crate) const LOCAL_APPLICATION_ID: u64 = 100_000_000_000_000_001;

impl Interaction {
    pub(crate) fn body(&self) -> Value {
        let id = (now_secs() as u128 * 1_000_000 + u128::from(uuid::Uuid::new_v4().as_u128() as u32)) as u64;
        if self.command == "ping" {
            return json!({"type": 1, "id": id.to_string(), "application_id": LOCAL_APPLICATION_ID.to_string(), "token": "local", "version": 1});
        }
        let mut options = Vec::new();
        let mut add =
            |name: &str, kind: u8, value: Value| options.push(json!({"name": name, "type": kind, "value": value}));
        if let Some(c) = self.count {
            add("count", 4, json!(c));
        }
        if let Some(w) = &self.workflow {
            add("workflow", 3, json!(w));
        }
        if let Some(u) = &self.frontend_url {
            add("frontend_url", 3, json!(u));
        }
        if let Some(u) = &self.api_base {
            add("api_base", 3, json!(u));
        }
        if let Some(r) = &self.git_ref {
            add("ref", 3, json!(r));
        }
        if let Some(u) = &self.set_url {
            add("url", 3, json!(u));
        }
        if let Some(c) = &self.channel {
            add("channel_id", 3, json!(c));
        }
        if let Some(u) = &self.user {
            add("user", 6, json!(u));
        }
        if let Some(m) = &self.message {
            add("message", 3, json!(m));
        }
        if self.confirm {
            add("confirm", 5, json!(true));
        }
        if self.public {
            add("ephemeral", 5, json!(false));
        }
        for pair in &self.options {
            let (name, value) = pair.split_once('=').unwrap_or((pair.as_str(), ""));
            match value {
                "true" | "false" => add(name.trim(), 5, json!(value == "true")),
                _ => add(name.trim(), 3, json!(value)),
            }
        }
        let built = match &self.press {
            Some(custom_id) => InteractionBuilder::button(custom_id),
            None => InteractionBuilder::command(&self.command, Value::Array(options)),
        };
        built
            .id(id)
            .token(&format!("local-interaction-{id}"))
            .application(LOCAL_APPLICATION_ID)
            .user(self.as_user, &format!("local{}", self.as_user % 10_000))
            .member_of(100_000_000_000_000_002, &self.roles)
            .channel(self.in_channel.unwrap_or(100_000_000_000_000_003))
            .body()
    }
}

/// The signing key: `VALINE_DISCORD_SEED` (hex), else the development key of `DATA_DIR`.
pub(crate) fn signing_key(config: &Config) -> Result<ed25519_dalek::SigningKey, String> {
    if let Ok(seed) = std::env::var("VALINE_DISCORD_SEED") {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(seed.trim(), &mut bytes)
            .map_err(|_| "VALINE_DISCORD_SEED is not 64 hex characters".to_string())?;
        return Ok(ed25519_dalek::SigningKey::from_bytes(&bytes));
    }
    let (keys, _) = DevKeys::load_or_create(&config.data_dir).map_err(|e| e.to_string())?;
    keys.signing_key().ok_or_else(|| "the development Discord seed is not 32 hex bytes".into())
}

pub(crate) fn webhook_secret(config: &Config) -> Result<String, String> {
    if let Some(s) = &config.github_webhook_secret {
        return Ok(s.expose().to_string());
    }
    let (keys, _) = DevKeys::load_or_create(&config.data_dir).map_err(|e| e.to_string())?;
    Ok(keys.github_webhook_secret)
}

pub(crate) struct Answer {
    pub status: u16,
    pub body: String,
}

pub(crate) async fn interaction(base: &str, config: &Config, interaction: &Interaction) -> Result<Answer, String> {
    let key = signing_key(config)?;
    let body = interaction.body().to_string();
    let headers = discord_headers(&key, body.as_bytes()).to_vec();
    post(&format!("{}/discord", base.trim_end_matches('/')), headers, body.into_bytes()).await
}

pub(crate) async fn webhook(base: &str, config: &Config, event: &str, file: &Path) -> Result<Answer, String> {
    let body = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    serde_json::from_slice::<Value>(&body).map_err(|e| format!("{} is not JSON: {e}", file.display()))?;
    let secret = webhook_secret(config)?;
    let headers = vec![
        ("x-github-event", event.to_string()),
        ("x-github-delivery", uuid::Uuid::new_v4().to_string()),
        ("x-hub-signature-256", github_signature(&secret, &body)),
    ];
    post(&format!("{}/github/webhook", base.trim_end_matches('/')), headers, body).await
}

pub(crate) async fn post(url: &str, headers: Vec<(&'static str, String)>, body: Vec<u8>) -> Result<Answer, String> {
    let client =
        reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build().map_err(|e| e.to_string())?;
    let mut req = client.post(url).header("content-type", "application/json").body(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let res = req.send().await.map_err(|e| format!("could not reach {url}: {e} (is `valinectl serve` running?)"))?;
    let status = res.status().as_u16();
    let body = res.text().await.map_err(|e| e.to_string())?;
    Ok(Answer { status, body })
}

/// The answer, pretty-printed, with a word on what a deferred answer means.
pub(crate) fn describe(answer: &Answer) -> String {
    let pretty = serde_json::from_str::<Value>(&answer.body)
        .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default())
        .unwrap_or_else(|_| answer.body.clone());
    let mut out = format!("HTTP {}\n{pretty}", answer.status);
    if answer.body.contains("\"type\":5") {
        out.push_str("\n(deferred: a job finishes the answer; its edit shows in the server's log)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_interactions_parse_as_discord_interactions() {
        let i = Interaction {
            command: "relay-send".into(),
            channel: Some("42".into()),
            message: Some("hi".into()),
            confirm: true,
            as_user: 7,
            roles: vec![9],
            ..Default::default()
        };
        let body = i.body();
        let parsed: serenity::model::application::Interaction = serde_json::from_value(body.clone()).unwrap();
        let ci = parsed.command().unwrap();
        assert_eq!(ci.data.name, "relay-send");
        assert_eq!(ci.user.id.get(), 7);
        assert_eq!(ci.member.unwrap().roles[0].get(), 9);
        assert_eq!(body["data"]["options"].as_array().unwrap().len(), 3);
        let ping = Interaction { command: "ping".into(), ..Default::default() }.body();
        assert_eq!(ping["type"], 1);
        let deploy = Interaction {
            command: "deploy-client".into(),
            git_ref: Some("release/1.x".into()),
            api_base: Some("https://api.example.com".into()),
            ..Default::default()
        }
        .body();
        let names: Vec<&str> =
            deploy["data"]["options"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["api_base", "ref"]);
        let set = Interaction {
            command: "set-api-base".into(),
            set_url: Some("https://x.example".into()),
            ..Default::default()
        }
        .body();
        assert_eq!(set["data"]["options"][0]["name"], "url");
        let press =
            Interaction { command: "press".into(), press: Some("v1:confirm:yes:abc".into()), ..Default::default() }
                .body();
        assert_eq!(
            (press["type"].as_u64(), press["data"]["custom_id"].as_str()),
            (Some(3), Some("v1:confirm:yes:abc"))
        );
    }
}
