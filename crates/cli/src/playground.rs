//! The playground of `valinectl serve`: a page at `/` that shows every message the bot posts,
//! rendered as Discord would, with a command box and a GitHub panel.
//!
//! Without `--live` the bot runs against the in-process fakes of `valine_clients::fake` and a
//! demo setup (a demo repository, an alert channel, four identities to act as), whatever tokens
//! the shell holds; the demo settings live only here, never in the Lambda configuration. With
//! `--live` the real clients are wrapped, so the page still shows the bot's own posts in server
//! channels (not DMs, not the answers to real interactions). Whatever the page sends is signed
//! here with the development keys (with `--live` too: never the real webhook secret) and POSTed
//! to the server's own `/discord` and `/github/webhook`, exactly as Discord and GitHub would
//! send it: no shortcut into a handler. The page may not be framed by another site.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};
use valine_clients::discord_api::Discord;
use valine_clients::fake::{Deliveries, FakeDiscord, FakeGitHub, Feed, Scenario};
use valine_domain::clock::now_secs;
use valine_domain::config::Config;
use valine_domain::repo::RepoName;
use valine_domain::signing::{InteractionBuilder, discord_signature, github_signature};

use crate::send::LOCAL_APPLICATION_ID;

const PAGE: &str = include_str!("playground.html");

/// The demo guild, channels and role (plausible snowflakes, local to the playground).
pub(crate) const GUILD_ID: u64 = 100_000_000_000_000_002;
pub(crate) const GENERAL_CHANNEL: u64 = 100_000_000_000_000_003;
pub(crate) const ALERTS_CHANNEL: u64 = 100_000_000_000_000_010;
pub(crate) const RESPONDER_ROLE: u64 = 300_000_000_000_000_001;
pub(crate) const ADMIN_USER: u64 = 200_000_000_000_000_001;
pub(crate) const RESPONDER_USER: u64 = 200_000_000_000_000_002;
pub(crate) const MEMBER_USER: u64 = 200_000_000_000_000_003;

/// Someone to act as in the page's "who am I" switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub key: &'static str,
    pub name: &'static str,
    pub user_id: u64,
    pub roles: Vec<u64>,
    /// Sends from a DM with the bot (no guild, no roles).
    pub dm: bool,
    pub about: &'static str,
}

pub(crate) fn identities() -> Vec<Identity> {
    vec![
        Identity {
            key: "admin",
            name: "Ada",
            user_id: ADMIN_USER,
            roles: vec![],
            dm: false,
            about: "admin (ADMIN_USER_IDS)",
        },
        Identity {
            key: "responder",
            name: "Rui",
            user_id: RESPONDER_USER,
            roles: vec![RESPONDER_ROLE],
            dm: false,
            about: "responder (RESPONDER_ROLE_IDS)",
        },
        Identity { key: "member", name: "Max", user_id: MEMBER_USER, roles: vec![], dm: false, about: "plain member" },
        Identity {
            key: "dm",
            name: "Ada",
            user_id: ADMIN_USER,
            roles: vec![],
            dm: true,
            about: "Ada, in a DM with the bot",
        },
    ]
}

/// The demo repository `/status` shows in the playground.
pub(crate) fn demo_repo() -> RepoName {
    RepoName { owner: "valine-demo".into(), name: "webshop".into() }
}

/// The demo setup: each setting the environment left unset gets a playground value.
/// `is_set` says whether a variable was given (for flags, whose defaults look like a choice).
pub(crate) fn demo_config(mut config: Config, is_set: impl Fn(&str) -> bool) -> Config {
    if config.github_repo.is_none() {
        config.github_repo = Some(demo_repo());
    }
    if config.alert_channel_id.is_none() {
        config.alert_channel_id = Some(ALERTS_CHANNEL);
    }
    if !is_set("ENABLE_ALERTS") {
        config.enable_alerts = true;
    }
    if !is_set("ENABLE_DEBUG_CMD") {
        config.enable_debug_cmd = true;
    }
    if config.admin_user_ids.is_empty() && config.admin_role_ids.is_empty() {
        config.admin_user_ids = vec![ADMIN_USER];
    }
    if config.responder_role_ids.is_empty() {
        config.responder_role_ids = vec![RESPONDER_ROLE];
    }
    if config.alert_mention_role_id.is_none() {
        config.alert_mention_role_id = Some(RESPONDER_ROLE);
    }
    if config.github_discord_users.is_empty() {
        config.github_discord_users = vec![("mona".into(), MEMBER_USER), ("octocat".into(), RESPONDER_USER)];
    }
    config
}

/// What the page's server holds: the feed, the fakes, and how to sign.
pub(crate) struct Playground {
    pub feed: Arc<Feed>,
    pub discord: Arc<FakeDiscord>,
    /// The port adapter when `fakes`; otherwise only the source of scenario deliveries.
    pub github: FakeGitHub,
    pub fakes: bool,
    config: Arc<Config>,
    sender: OnceLock<Arc<Sender>>,
    shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for Playground {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Playground").field("fakes", &self.fakes).finish_non_exhaustive()
    }
}

impl Playground {
    /// `real` is the Discord client to record around (`--live`); `None` runs the fake.
    pub(crate) fn new(config: &Config, real: Option<Arc<dyn Discord>>, shutdown: watch::Receiver<bool>) -> Arc<Self> {
        let feed = Feed::new();
        let fakes = real.is_none();
        let discord = Arc::new(match real {
            Some(inner) => FakeDiscord::recording(feed.clone(), inner),
            // `valinectl send` claims to send from #general: its deferred answers show there.
            None => FakeDiscord::new(feed.clone(), Some(GUILD_ID)).answers_elsewhere_in(GENERAL_CHANNEL),
        });
        let repo = config.github_repo.clone().unwrap_or_else(demo_repo);
        let github = FakeGitHub::new(feed.clone(), repo);
        discord.add_channel(GENERAL_CHANNEL, "general", "text", None);
        if let Some(alerts) = config.alert_channel_id {
            discord.add_channel(alerts, "alerts", "text", None);
        }
        Arc::new(Self {
            feed,
            discord,
            github,
            fakes,
            config: Arc::new(config.clone()),
            sender: OnceLock::new(),
            shutdown,
        })
    }

    /// The server's own address is known: deliveries and interactions can be sent.
    pub(crate) fn listening(&self, base: &str) -> Result<(), String> {
        let key = crate::send::signing_key(&self.config)?;
        // With real settings the page signs with the development secret, never the real one: a
        // page that can sign anything must not hold the key GitHub's deliveries are checked with.
        let secret = if self.fakes {
            crate::send::webhook_secret(&self.config)?
        } else {
            crate::devkeys::DevKeys::load_or_create(&self.config.data_dir)
                .map_err(|e| format!("development keys: {e}"))?
                .0
                .github_webhook_secret
        };
        let sender =
            Arc::new(Sender { base: base.trim_end_matches('/').to_string(), key, secret, feed: self.feed.clone() });
        self.github.deliver_to(sender.clone());
        let _ = self.sender.set(sender);
        Ok(())
    }

    fn sender(&self) -> Result<&Arc<Sender>, Bad> {
        self.sender.get().ok_or_else(|| bad(StatusCode::SERVICE_UNAVAILABLE, "the server is still starting"))
    }

    fn setup(&self) -> Value {
        let ids: Vec<Value> = identities()
            .iter()
            .map(|i| {
                json!({"key": i.key, "name": i.name, "user_id": i.user_id.to_string(),
                       "roles": i.roles.iter().map(u64::to_string).collect::<Vec<_>>(), "dm": i.dm, "about": i.about})
            })
            .collect();
        let notice = (!self.fakes).then_some(LIVE_NOTICE);
        json!({
            "mode": if self.fakes { "playground" } else { "recording" },
            "webhook_signing": if self.fakes { "server" } else { "development" },
            "notice": notice,
            "repo": self.config.github_repo.as_ref().map(ToString::to_string),
            "guild_id": GUILD_ID.to_string(),
            "general_channel_id": GENERAL_CHANNEL.to_string(),
            "alert_channel_id": self.config.alert_channel_id.map(|c| c.to_string()),
            "identities": ids,
            "roles": {RESPONDER_ROLE.to_string(): "responders"},
            "commands": valine_discord::registry::definitions(),
            "scenarios": Scenario::ALL.iter().map(|s| json!({"code": s.code(), "label": s.label()})).collect::<Vec<_>>(),
        })
    }
}

/// What the page says with `--live`.
const LIVE_NOTICE: &str = "Live: GitHub deliveries from this page are signed with the development secret, \
never GITHUB_WEBHOOK_SECRET, so a server with a real one refuses them (401). The page shows only what the \
bot posts in server channels: not DMs, and not the answers to real interactions.";

/// Signs and sends what the page asks for, to the server's own endpoints.
struct Sender {
    base: String,
    key: ed25519_dalek::SigningKey,
    secret: String,
    feed: Arc<Feed>,
}

/// One line for the GitHub panel: what a delivery says.
fn delivery_summary(event: &str, payload: &Value) -> String {
    match event {
        "workflow_run" => {
            let r = &payload["workflow_run"];
            let outcome = r["conclusion"].as_str().or_else(|| r["status"].as_str()).unwrap_or("?");
            format!(
                "{} #{} on {} (attempt {}): {}",
                payload
                    .get("workflow")
                    .and_then(|w| w.get("name"))
                    .and_then(Value::as_str)
                    .or_else(|| r["name"].as_str())
                    .unwrap_or("workflow"),
                r["run_number"],
                r["head_branch"].as_str().unwrap_or("?"),
                r["run_attempt"].as_u64().unwrap_or(1),
                outcome
            )
        }
        "deployment_status" => format!(
            "deployment to {}: {}",
            payload.get("deployment_status").and_then(|d| d.get("environment")).and_then(Value::as_str).unwrap_or("?"),
            payload.get("deployment_status").and_then(|d| d.get("state")).and_then(Value::as_str).unwrap_or("?")
        ),
        other => match payload["action"].as_str() {
            Some(a) => format!("{other} ({a})"),
            None => other.to_string(),
        },
    }
}

impl Sender {
    async fn webhook(&self, event: &str, body: Vec<u8>, summary: String) -> (u16, Value) {
        let headers = vec![
            ("x-github-event", event.to_string()),
            ("x-github-delivery", uuid::Uuid::new_v4().to_string()),
            ("x-hub-signature-256", github_signature(&self.secret, &body)),
        ];
        let (status, answer) = match crate::send::post(&format!("{}/github/webhook", self.base), headers, body).await {
            Ok(a) => (a.status, serde_json::from_str(&a.body).unwrap_or(Value::String(a.body))),
            Err(e) => (0, Value::String(e)),
        };
        self.feed.publish(
            "delivery",
            json!({"event": event, "summary": summary, "status": status, "answer": answer, "at": now_secs()}),
        );
        (status, answer)
    }

    async fn interaction(&self, body: &Value) -> Result<(u16, Value), String> {
        let text = body.to_string();
        let ts = now_secs().to_string();
        let sig = discord_signature(&self.key, &ts, text.as_bytes());
        let answer = crate::send::post(
            &format!("{}/discord", self.base),
            vec![("x-signature-ed25519", sig), ("x-signature-timestamp", ts)],
            text.into_bytes(),
        )
        .await?;
        Ok((answer.status, serde_json::from_str(&answer.body).unwrap_or(Value::String(answer.body))))
    }
}

#[async_trait::async_trait]
impl Deliveries for Sender {
    async fn deliver(&self, event: &str, payload: Value) {
        let summary = delivery_summary(event, &payload);
        let (status, _) = self.webhook(event, payload.to_string().into_bytes(), summary).await;
        tracing::info!(event, status, "playground: delivery sent");
    }
}

/// A request the page got wrong (or one the server cannot carry out), with its reason.
#[derive(Debug)]
struct Bad(StatusCode, String);

impl IntoResponse for Bad {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({"error": self.1}))).into_response()
    }
}

fn bad(status: StatusCode, reason: &str) -> Bad {
    Bad(status, reason.to_string())
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Bad> {
    serde_json::from_slice(body).map_err(|e| bad(StatusCode::BAD_REQUEST, &format!("bad request: {e}")))
}

fn identity(key: &str) -> Result<Identity, Bad> {
    identities()
        .into_iter()
        .find(|i| i.key == key)
        .ok_or_else(|| bad(StatusCode::BAD_REQUEST, &format!("no identity `{key}` (admin, responder, member, dm)")))
}

/// A signed interaction's body: `data` from `who` in `channel_id`, as Discord sends it.
pub(crate) fn interaction_body(
    kind: u8,
    data: Value,
    who: &Identity,
    channel_id: u64,
    token: &str,
    message: Option<Value>,
) -> Value {
    let id = (now_secs() as u128 * 1_000_000 + u128::from(uuid::Uuid::new_v4().as_u128() as u32)) as u64;
    let built = InteractionBuilder::new(kind, data)
        .id(id)
        .token(token)
        .application(LOCAL_APPLICATION_ID)
        .user(who.user_id, who.name)
        .channel(channel_id);
    let built = if who.dm { built.in_dm() } else { built.member_of(GUILD_ID, &who.roles) };
    match message {
        Some(m) => built.message(m).body(),
        None => built.body(),
    }
}

#[derive(Debug, Deserialize)]
struct CommandRequest {
    #[serde(rename = "as")]
    who: String,
    name: String,
    #[serde(default)]
    options: Vec<Value>,
    #[serde(default)]
    channel_id: Option<String>,
    /// What the person typed, shown above the answer as Discord shows the command.
    #[serde(default)]
    label: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PressRequest {
    #[serde(rename = "as")]
    who: String,
    custom_id: String,
    message_id: String,
    channel_id: String,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default)]
    label: String,
}

#[derive(Debug, Deserialize)]
struct ScenarioRequest {
    scenario: String,
}

#[derive(Debug, Deserialize)]
struct WebhookRequest {
    event: String,
    body: String,
}

fn snowflake(s: &str, what: &str) -> Result<u64, Bad> {
    s.trim()
        .parse::<u64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| bad(StatusCode::BAD_REQUEST, &format!("{what} is not a snowflake")))
}

/// `/status count:3`: how Discord shows a command above its answer.
fn command_label(name: &str, options: &[Value]) -> String {
    let mut label = format!("/{name}");
    for o in options {
        let value = match &o["value"] {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        label.push_str(&format!(" {}:{}", o["name"].as_str().unwrap_or("?"), value));
    }
    label
}

/// The channel an interaction comes from: the caller's DM, or a channel the page shows.
async fn channel_for(pg: &Playground, who: &Identity, asked: Option<&str>) -> Result<u64, Bad> {
    if who.dm {
        return pg.discord.open_dm(who.user_id).await.map_err(|e| bad(StatusCode::BAD_GATEWAY, &e.to_string()));
    }
    match asked.filter(|s| !s.trim().is_empty()) {
        Some(s) => snowflake(s, "channel_id"),
        None => Ok(GENERAL_CHANNEL),
    }
}

/// Sends one interaction and shows Discord's side of its answer.
async fn send_interaction(
    pg: &Playground,
    body: Value,
    token: &str,
    source_message: Option<u64>,
) -> Result<Response, Bad> {
    let sender = pg.sender()?;
    let (status, answer) = sender.interaction(&body).await.map_err(|e| bad(StatusCode::BAD_GATEWAY, &e))?;
    if status == 200 {
        pg.discord.interaction_answered(token, &answer, source_message);
    } else {
        pg.feed.publish(
            "interaction_failed",
            json!({"status": status, "answer": answer, "channel_id": body.get("channel_id")}),
        );
    }
    Ok(axum::Json(json!({"status": status, "answer": answer, "channel_id": body.get("channel_id")})).into_response())
}

async fn command(State(pg): State<Arc<Playground>>, body: Bytes) -> Response {
    let run = async {
        let req: CommandRequest = parse(&body)?;
        let who = identity(&req.who)?;
        let name = req.name.trim().trim_start_matches('/');
        if name.is_empty() || name.len() > 32 {
            return Err(bad(StatusCode::BAD_REQUEST, "a command name has 1 to 32 characters"));
        }
        if req.options.len() > 25 || req.options.iter().any(|o| !o["name"].is_string() || !o["type"].is_u64()) {
            return Err(bad(StatusCode::BAD_REQUEST, "options are at most 25 objects with a name and a type"));
        }
        let channel = channel_for(&pg, &who, req.channel_id.as_deref()).await?;
        let token = format!("playground-{}", uuid::Uuid::new_v4().simple());
        let data = json!({"id": "1", "name": name, "type": 1, "options": req.options});
        let label = match req.label.as_deref().map(str::trim) {
            Some(l) if l.starts_with('/') && l.chars().count() <= 200 => l.to_string(),
            _ => command_label(name, &req.options),
        };
        pg.discord.interaction_sent(&token, channel, who.user_id, &label);
        send_interaction(&pg, interaction_body(2, data, &who, channel, &token, None), &token, None).await
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn press(State(pg): State<Arc<Playground>>, body: Bytes) -> Response {
    let run = async {
        let req: PressRequest = parse(&body)?;
        let who = identity(&req.who)?;
        if req.custom_id.is_empty() || req.custom_id.len() > 100 {
            return Err(bad(StatusCode::BAD_REQUEST, "a custom_id has 1 to 100 characters"));
        }
        let message_id = snowflake(&req.message_id, "message_id")?;
        let channel = snowflake(&req.channel_id, "channel_id")?;
        let token = format!("playground-{}", uuid::Uuid::new_v4().simple());
        let select = !req.values.is_empty();
        let data = if select {
            json!({"custom_id": req.custom_id, "component_type": 3, "values": req.values})
        } else {
            json!({"custom_id": req.custom_id, "component_type": 2})
        };
        let label = if req.label.is_empty() { req.custom_id.clone() } else { req.label.clone() };
        pg.discord.interaction_sent(&token, channel, who.user_id, &format!("pressed “{label}”"));
        let message = json!({"id": message_id.to_string(), "channel_id": channel.to_string(), "type": 0});
        send_interaction(&pg, interaction_body(3, data, &who, channel, &token, Some(message)), &token, Some(message_id))
            .await
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// A form (modal) the bot opened, submitted from the page.
#[derive(Debug, Deserialize)]
struct SubmitRequest {
    #[serde(rename = "as")]
    who: String,
    custom_id: String,
    channel_id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    fields: Vec<SubmitField>,
}

#[derive(Debug, Deserialize)]
struct SubmitField {
    custom_id: String,
    value: String,
}

async fn submit(State(pg): State<Arc<Playground>>, body: Bytes) -> Response {
    let run = async {
        let req: SubmitRequest = parse(&body)?;
        let who = identity(&req.who)?;
        if req.custom_id.is_empty() || req.custom_id.len() > 100 || req.fields.len() > 5 {
            return Err(bad(
                StatusCode::BAD_REQUEST,
                "a form has a custom_id of 1 to 100 characters and at most 5 inputs",
            ));
        }
        if req
            .fields
            .iter()
            .any(|f| f.custom_id.is_empty() || f.custom_id.len() > 100 || f.value.chars().count() > 4000)
        {
            return Err(bad(
                StatusCode::BAD_REQUEST,
                "an input has a custom_id of 1 to 100 characters and at most 4000 characters",
            ));
        }
        let channel = snowflake(&req.channel_id, "channel_id")?;
        let token = format!("playground-{}", uuid::Uuid::new_v4().simple());
        let rows: Vec<Value> = req
            .fields
            .iter()
            .map(|f| json!({"type": 1, "components": [{"type": 4, "custom_id": f.custom_id, "value": f.value}]}))
            .collect();
        let data = json!({"custom_id": req.custom_id, "components": rows});
        let title: String = req.title.chars().take(45).collect();
        pg.discord.interaction_sent(&token, channel, who.user_id, &format!("submitted “{title}”"));
        send_interaction(&pg, interaction_body(5, data, &who, channel, &token, None), &token, None).await
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn scenario(State(pg): State<Arc<Playground>>, body: Bytes) -> Response {
    let run = async {
        let req: ScenarioRequest = parse(&body)?;
        let s = Scenario::parse(&req.scenario)
            .ok_or_else(|| bad(StatusCode::BAD_REQUEST, &format!("no scenario `{}`", req.scenario)))?;
        let sender = pg.sender()?;
        let (event, payload) = pg.github.scenario(s);
        let summary = format!("{}: {}", s.label(), delivery_summary(&event, &payload));
        let (status, answer) = sender.webhook(&event, payload.to_string().into_bytes(), summary).await;
        Ok::<_, Bad>(axum::Json(json!({"status": status, "answer": answer, "event": event})).into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn webhook(State(pg): State<Arc<Playground>>, body: Bytes) -> Response {
    let run = async {
        let req: WebhookRequest = parse(&body)?;
        let event = req.event.trim();
        if event.is_empty() || event.len() > 64 || !event.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(bad(StatusCode::BAD_REQUEST, "an event name is lower-case letters and _ (workflow_run)"));
        }
        let payload: Value = serde_json::from_str(&req.body)
            .map_err(|e| bad(StatusCode::BAD_REQUEST, &format!("the body is not JSON: {e}")))?;
        if !payload.is_object() {
            return Err(bad(StatusCode::BAD_REQUEST, "the body is not a JSON object"));
        }
        let sender = pg.sender()?;
        let summary = format!("free form: {}", delivery_summary(event, &payload));
        let (status, answer) = sender.webhook(event, req.body.into_bytes(), summary).await;
        Ok(axum::Json(json!({"status": status, "answer": answer})).into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// The page's own script and style only, talking to this server only; never inside another
/// site's frame (a page that signs what it is sent must not be clicked through a disguise).
const PAGE_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

async fn page() -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Html(PAGE),
    )
        .into_response()
}

async fn setup(State(pg): State<Arc<Playground>>) -> Response {
    axum::Json(pg.setup()).into_response()
}

fn to_event(e: &Value) -> Result<Event, Infallible> {
    Ok(Event::default().data(e.to_string()))
}

/// The feed so far, then live, until the server shuts down. A page that falls behind is told to
/// reload rather than shown a partial history.
fn live(pg: &Playground) -> impl Stream<Item = Result<Event, Infallible>> + use<> {
    let (history, rx) = pg.feed.subscribe();
    let past = futures::stream::iter(history.into_iter().map(|e| to_event(&e)));
    let next = futures::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(e) => Some((to_event(&e), rx)),
            Err(broadcast::error::RecvError::Lagged(_)) => {
                Some((Ok(Event::default().data(json!({"kind": "reset"}).to_string())), rx))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    });
    let mut shutdown = pg.shutdown.clone();
    past.chain(next).take_until(async move {
        if shutdown.wait_for(|stop| *stop).await.is_err() {
            // Nobody can stop the server any more: the stream lasts as long as the page.
            std::future::pending::<()>().await;
        }
    })
}

async fn events(State(pg): State<Arc<Playground>>) -> Response {
    Sse::new(live(&pg)).keep_alive(KeepAlive::default()).into_response()
}

/// Only this machine's browser may use the playground: it signs what it is sent, with the
/// development keys (or the playground's own settings). A `Host` other than a
/// loopback name is refused (a DNS-rebinding page), and so is a POST that is not JSON or comes
/// from another origin (a cross-site form or fetch, which cannot send JSON without asking first).
fn check_local(method: &axum::http::Method, headers: &axum::http::HeaderMap) -> Result<(), Bad> {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let host = text(header::HOST).unwrap_or("");
    let name = match host.rsplit_once(':') {
        Some((n, port)) if port.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => host,
    };
    if !matches!(name.to_ascii_lowercase().as_str(), "127.0.0.1" | "localhost" | "[::1]") {
        return Err(bad(
            StatusCode::FORBIDDEN,
            "the playground answers only on 127.0.0.1 or localhost, from this machine's browser",
        ));
    }
    if method == axum::http::Method::POST {
        let json = text(header::CONTENT_TYPE).is_some_and(|c| c.to_ascii_lowercase().starts_with("application/json"));
        if !json {
            return Err(bad(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send JSON (content-type: application/json)"));
        }
        if let Some(origin) = text(header::ORIGIN)
            && origin != format!("http://{host}")
        {
            return Err(bad(StatusCode::FORBIDDEN, "requests from another origin are refused"));
        }
    }
    Ok(())
}

async fn local_only(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match check_local(req.method(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(b) => b.into_response(),
    }
}

pub(crate) fn routes(pg: Arc<Playground>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/playground/setup", get(setup))
        .route("/playground/events", get(events))
        .route("/playground/command", post(command))
        .route("/playground/press", post(press))
        .route("/playground/scenario", post(scenario))
        .route("/playground/submit", post(submit))
        .route("/playground/webhook", post(webhook))
        .layer(axum::middleware::from_fn(local_only))
        .with_state(pg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_settings_fill_only_what_is_unset() {
        let config = Config::from_lookup(|_| None).unwrap();
        let demo = demo_config(config, |_| false);
        assert_eq!(demo.github_repo, Some(demo_repo()));
        assert_eq!(demo.alert_channel_id, Some(ALERTS_CHANNEL));
        assert!(demo.enable_alerts && demo.enable_debug_cmd);
        assert_eq!(demo.admin_user_ids, [ADMIN_USER]);
        assert_eq!(demo.responder_role_ids, [RESPONDER_ROLE]);
        let given = Config::from_lookup(|k| match k {
            "GITHUB_REPO" => Some("acme/widget".into()),
            "ADMIN_ROLE_IDS" => Some("5".into()),
            "ENABLE_ALERTS" => Some("false".into()),
            _ => None,
        })
        .unwrap();
        let demo = demo_config(given, |k| k == "ENABLE_ALERTS");
        assert_eq!(demo.github_repo.unwrap().to_string(), "acme/widget");
        assert!(demo.admin_user_ids.is_empty());
        assert!(!demo.enable_alerts);
    }

    #[test]
    fn interactions_parse_as_discord_interactions_in_a_guild_and_in_a_dm() {
        for who in identities() {
            let body = interaction_body(2, json!({"id": "1", "name": "status", "type": 1}), &who, 7, "t", None);
            let parsed: serenity::model::application::Interaction = serde_json::from_value(body).unwrap();
            let ci = parsed.command().unwrap();
            assert_eq!(ci.user.id.get(), who.user_id);
            assert_eq!(ci.guild_id.is_none(), who.dm);
            assert_eq!(ci.member.map(|m| m.roles.len()).unwrap_or(0), who.roles.len());
        }
        let who = &identities()[1];
        let message = json!({"id": "9", "channel_id": "7", "type": 0});
        let body = interaction_body(3, json!({"custom_id": "x", "component_type": 2}), who, 7, "t", Some(message));
        assert_eq!(body["message"]["id"], "9");
        assert_eq!(body["type"], 3);
    }

    #[test]
    fn the_page_is_one_file_with_nothing_from_elsewhere() {
        for outside in ["src=", "<link", "@import", "url(", "cdn", "innerHTML"] {
            assert!(!PAGE.contains(outside), "the page contains `{outside}`");
        }
        assert!(PAGE.contains("new EventSource(\"/playground/events\")"));
    }

    #[test]
    fn only_this_machines_browser_is_served() {
        use axum::http::{HeaderMap, HeaderValue, Method};
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_str(v).unwrap());
            }
            h
        };
        let json = "application/json";
        let ok = [
            (Method::GET, headers(&[("host", "127.0.0.1:8787")])),
            (Method::GET, headers(&[("host", "localhost")])),
            (Method::GET, headers(&[("host", "[::1]:8787")])),
            (Method::POST, headers(&[("host", "127.0.0.1:8787"), ("content-type", json)])),
            (
                Method::POST,
                headers(&[
                    ("host", "localhost:8787"),
                    ("content-type", "application/json; charset=utf-8"),
                    ("origin", "http://localhost:8787"),
                ]),
            ),
        ];
        for (m, h) in ok {
            assert!(check_local(&m, &h).is_ok(), "{m} {h:?}");
        }
        let refused = [
            (Method::GET, headers(&[]), 403),
            (Method::GET, headers(&[("host", "evil.example:8787")]), 403),
            (Method::GET, headers(&[("host", "127.0.0.1.evil.example")]), 403),
            (Method::POST, headers(&[("host", "127.0.0.1:8787"), ("content-type", "text/plain")]), 415),
            (Method::POST, headers(&[("host", "127.0.0.1:8787")]), 415),
            (
                Method::POST,
                headers(&[("host", "127.0.0.1:8787"), ("content-type", json), ("origin", "https://evil.example")]),
                403,
            ),
        ];
        for (m, h, status) in refused {
            assert_eq!(check_local(&m, &h).unwrap_err().0.as_u16(), status, "{m} {h:?}");
        }
    }

    #[test]
    fn summaries_and_labels() {
        assert_eq!(command_label("status", &[json!({"name": "count", "type": 4, "value": 3})]), "/status count:3");
        let gh = FakeGitHub::new(Feed::new(), demo_repo());
        let (event, payload) = gh.scenario(Scenario::Fails);
        assert!(delivery_summary(&event, &payload).starts_with("CI #"));
        assert!(delivery_summary(&event, &payload).ends_with("failure"));
        let (event, payload) = gh.scenario(Scenario::DeploymentFails);
        assert_eq!(delivery_summary(&event, &payload), "deployment to production: failure");
        assert_eq!(delivery_summary("ping", &json!({})), "ping");
    }
}
