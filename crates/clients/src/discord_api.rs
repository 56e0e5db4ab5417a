//! The `Discord` port and its adapters: serenity's HTTP routes over our own reqwest client (so
//! that Discord's rate-limit headers pace every request, see [`crate::discord_ratelimit`], and a
//! 429's `retry_after` is honoured once), and a dry-run adapter that only logs what it would send.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use serenity::http::{HttpBuilder, LightMethod, Request, Route};
use serenity::model::id::{ApplicationId, ChannelId, GuildId, MessageId};

use crate::discord_ratelimit::{Limited, Limiter, RateHeaders, RateKey};

/// The longest `Retry-After` (or exhausted bucket, or global pause) the client waits out itself
/// before giving up with [`DiscordError::RateLimited`].
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DiscordError {
    #[error("Discord rate-limited the request; retry after {:.1} s", retry_after.as_secs_f64())]
    RateLimited { retry_after: Duration },
    #[error("Discord answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("Discord did not answer in time")]
    Timeout,
    #[error("could not reach Discord: {0}")]
    Unreachable(String),
    #[error("Discord sent an answer that could not be read: {0}")]
    BadAnswer(String),
    /// Refused before sending: only interaction answers go without the bot's token.
    #[error("DISCORD_BOT_TOKEN is not set: the bot cannot post, edit or delete messages, or open DMs")]
    NoBotToken,
}

/// What a request authenticates with: the bot token, or the interaction token in its path
/// (interaction answers need no bot token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    Bot,
    Interaction,
}

/// A message Discord accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedMessage {
    pub id: u64,
    pub channel_id: u64,
    pub guild_id: Option<u64>,
}

impl PostedMessage {
    /// `https://discord.com/channels/{guild or @me}/{channel}/{message}`.
    pub fn link(&self) -> String {
        let guild = self.guild_id.map_or_else(|| "@me".to_string(), |g| g.to_string());
        format!("https://discord.com/channels/{guild}/{}/{}", self.channel_id, self.id)
    }
}

/// What the bot asks of Discord.
#[async_trait]
pub trait Discord: Send + Sync {
    /// Posts `body` (a message object) to a channel.
    async fn post_message(&self, channel_id: u64, body: &Value) -> Result<PostedMessage, DiscordError>;
    /// Opens (or finds) the DM channel with a user.
    async fn open_dm(&self, user_id: u64) -> Result<u64, DiscordError>;
    /// Edits the original response of an interaction (`PATCH …/messages/@original`).
    async fn edit_original(&self, application_id: u64, token: &str, body: &Value) -> Result<(), DiscordError>;
    /// Deletes the original response of an interaction (`DELETE …/messages/@original`).
    async fn delete_original(&self, application_id: u64, token: &str) -> Result<(), DiscordError>;
    /// Sends a follow-up message for an interaction.
    async fn follow_up(&self, application_id: u64, token: &str, body: &Value) -> Result<PostedMessage, DiscordError>;
    /// Edits a channel message (`PATCH /channels/{c}/messages/{m}`). Edits do not notify anyone.
    async fn edit_message(&self, _channel_id: u64, _message_id: u64, _body: &Value) -> Result<(), DiscordError> {
        Err(DiscordError::Unreachable("editing messages is not supported by this client".into()))
    }
    /// Deletes a channel message (`DELETE /channels/{c}/messages/{m}`).
    async fn delete_message(&self, _channel_id: u64, _message_id: u64) -> Result<(), DiscordError> {
        Err(DiscordError::Unreachable("deleting messages is not supported by this client".into()))
    }
    /// Replies to a message: a post whose `message_reference` names it. A reply to a message
    /// deleted meanwhile is posted as a plain message (`fail_if_not_exists: false`).
    async fn reply(&self, channel_id: u64, message_id: u64, body: &Value) -> Result<PostedMessage, DiscordError> {
        self.post_message(channel_id, &with_reference(body, channel_id, message_id)).await
    }
    /// True when nothing really leaves the process.
    fn is_dry_run(&self) -> bool {
        false
    }
}

/// `body` with a `message_reference` to `message_id` in `channel_id`.
pub fn with_reference(body: &Value, channel_id: u64, message_id: u64) -> Value {
    let mut body = body.clone();
    if let Some(object) = body.as_object_mut() {
        object.insert(
            "message_reference".into(),
            serde_json::json!({
                "message_id": message_id.to_string(),
                "channel_id": channel_id.to_string(),
                "fail_if_not_exists": false,
            }),
        );
    }
    body
}

/// Discord over HTTP: serenity's routes and request builder, our reqwest client. The client (and
/// its TLS configuration) is built on the first call, not at start-up: a PING never needs it.
/// Clones share the rate-limit state: one per container.
#[derive(Clone)]
pub struct HttpDiscord {
    clients: Arc<std::sync::OnceLock<(serenity::http::Http, reqwest::Client)>>,
    /// `None` when `DISCORD_BOT_TOKEN` is unset: bot calls are refused before any request.
    token: Option<Arc<str>>,
    base: Option<String>,
    attempt_timeout: Duration,
    limits: Arc<Limiter>,
}

impl std::fmt::Debug for HttpDiscord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpDiscord").field("base", &self.base).finish()
    }
}

impl HttpDiscord {
    /// `base` replaces `https://discord.com` (tests, proxies); `attempt_timeout` bounds each try.
    /// A blank `token` means none: only interaction answers can be sent.
    pub fn new(token: &str, base: Option<&url::Url>, attempt_timeout: Duration) -> Self {
        let base = base.map(|u| u.as_str().trim_end_matches('/').to_string());
        let token = Some(token.trim()).filter(|t| !t.is_empty()).map(Arc::from);
        Self { clients: Arc::default(), token, base, attempt_timeout, limits: Arc::default() }
    }

    /// serenity's `Http` (routes, token) and the reqwest client that sends, built once.
    fn clients(&self) -> &(serenity::http::Http, reqwest::Client) {
        self.clients.get_or_init(|| {
            let client = reqwest::Client::builder()
                .connect_timeout(Duration::from_millis(800))
                .pool_idle_timeout(Duration::from_secs(50))
                .build()
                .unwrap_or_else(|_| reqwest::Client::new());
            let token = self.token.as_deref().unwrap_or_default();
            let mut builder = HttpBuilder::new(token).ratelimiter_disabled(true).client(client.clone());
            if let Some(b) = &self.base {
                builder = builder.proxy(b.clone());
            }
            (builder.build(), client)
        })
    }

    /// Sends one request, paced by Discord's headers: one request at a time per rate-limit key,
    /// a limit of at most [`MAX_RETRY_AFTER`] waited out and a longer one refused without
    /// sending; on a 429 retries once when `retry_after` is short, and on a 5xx retries once when
    /// the request is idempotent.
    async fn send(
        &self,
        route: Route<'_>,
        method: LightMethod,
        body: Option<&Value>,
        idempotent: bool,
        auth: Auth,
    ) -> Result<Value, DiscordError> {
        if auth == Auth::Bot && self.token.is_none() {
            return Err(DiscordError::NoBotToken);
        }
        let bytes = body.map(|b| b.to_string().into_bytes());
        let key = RateKey::of(&route, method);
        let _turn = self.limits.turn(&key).await;
        let mut retried = false;
        loop {
            if let Err(retry_after) = self.limits.admit(&key, MAX_RETRY_AFTER).await {
                tracing::warn!(
                    route = %key.route,
                    retry_after_ms = retry_after.as_millis() as u64,
                    "Discord rate limit; not sending"
                );
                return Err(DiscordError::RateLimited { retry_after });
            }
            let (http, client) = self.clients();
            let mut request = Request::new(route, method)
                .body(bytes.clone())
                .build(client, http.token(), self.base.as_deref())
                .map_err(|e| DiscordError::Unreachable(e.to_string()))?
                .build()
                .map_err(|e| DiscordError::Unreachable(e.without_url().to_string()))?;
            if self.token.is_none() {
                // serenity always sets the header; with no token it would say `Bot ` and nothing.
                request.headers_mut().remove(reqwest::header::AUTHORIZATION);
            }
            let response = match tokio::time::timeout(self.attempt_timeout, client.execute(request)).await {
                Err(_) => return Err(DiscordError::Timeout),
                Ok(Err(e)) if e.is_timeout() => return Err(DiscordError::Timeout),
                Ok(Err(e)) => return Err(DiscordError::Unreachable(e.without_url().to_string())),
                Ok(Ok(r)) => r,
            };
            let status = response.status();
            let limits = RateHeaders::read(response.headers());
            self.limits.record(&key, &limits, None, tokio::time::Instant::now());
            let text = match tokio::time::timeout(self.attempt_timeout, response.text()).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => return Err(DiscordError::Unreachable(e.without_url().to_string())),
                Err(_) => return Err(DiscordError::Timeout),
            };
            if status.is_success() {
                if text.trim().is_empty() {
                    return Ok(Value::Null);
                }
                return serde_json::from_str(&text).map_err(|e| DiscordError::BadAnswer(e.to_string()));
            }
            let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if status.as_u16() == 429 {
                let limited = Limited::of(&limits, &json);
                self.limits.record(&key, &RateHeaders::default(), Some(limited), tokio::time::Instant::now());
                let Limited { retry_after, global } = limited;
                if !retried && retry_after <= MAX_RETRY_AFTER {
                    retried = true;
                    tracing::warn!(
                        retry_after_ms = retry_after.as_millis() as u64,
                        global,
                        "Discord rate limit; retrying once"
                    );
                    tokio::time::sleep(retry_after).await;
                    continue;
                }
                return Err(DiscordError::RateLimited { retry_after });
            }
            if status.is_server_error() && idempotent && !retried {
                retried = true;
                tracing::warn!(status = status.as_u16(), "Discord server error; retrying once");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let message = json
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| valine_domain::alert::truncate(&text, 200), str::to_string);
            return Err(DiscordError::Status { status: status.as_u16(), message });
        }
    }

    /// The application's commands (global, or of one guild).
    pub async fn get_commands(&self, application_id: u64, guild_id: Option<u64>) -> Result<Value, DiscordError> {
        let app = ApplicationId::new(application_id);
        let route = match guild_id {
            Some(g) => Route::GuildCommands { application_id: app, guild_id: GuildId::new(g) },
            None => Route::Commands { application_id: app },
        };
        self.send(route, LightMethod::Get, None, true, Auth::Bot).await
    }

    /// Replaces all of the application's commands (bulk overwrite).
    pub async fn put_commands(
        &self,
        application_id: u64,
        guild_id: Option<u64>,
        commands: &Value,
    ) -> Result<Value, DiscordError> {
        let app = ApplicationId::new(application_id);
        let route = match guild_id {
            Some(g) => Route::GuildCommands { application_id: app, guild_id: GuildId::new(g) },
            None => Route::Commands { application_id: app },
        };
        self.send(route, LightMethod::Put, Some(commands), true, Auth::Bot).await
    }
}

fn posted(v: &Value) -> Result<PostedMessage, DiscordError> {
    let id = |k: &str| v[k].as_str().and_then(|s| s.parse::<u64>().ok());
    Ok(PostedMessage {
        id: id("id").ok_or_else(|| DiscordError::BadAnswer("message without an id".into()))?,
        channel_id: id("channel_id").ok_or_else(|| DiscordError::BadAnswer("message without a channel_id".into()))?,
        guild_id: id("guild_id"),
    })
}

/// Ids of zero are refused by serenity's id types; Discord never issues them.
fn nonzero(id: u64) -> Result<u64, DiscordError> {
    if id == 0 { Err(DiscordError::Status { status: 400, message: "id 0 is not a Discord id".into() }) } else { Ok(id) }
}

#[async_trait]
impl Discord for HttpDiscord {
    async fn post_message(&self, channel_id: u64, body: &Value) -> Result<PostedMessage, DiscordError> {
        let route = Route::ChannelMessages { channel_id: ChannelId::new(nonzero(channel_id)?) };
        let answer = self.send(route, LightMethod::Post, Some(body), false, Auth::Bot).await?;
        posted(&answer)
    }

    async fn edit_message(&self, channel_id: u64, message_id: u64, body: &Value) -> Result<(), DiscordError> {
        let route = Route::ChannelMessage {
            channel_id: ChannelId::new(nonzero(channel_id)?),
            message_id: MessageId::new(nonzero(message_id)?),
        };
        // An edit is idempotent: a 5xx may be retried.
        self.send(route, LightMethod::Patch, Some(body), true, Auth::Bot).await.map(|_| ())
    }

    async fn delete_message(&self, channel_id: u64, message_id: u64) -> Result<(), DiscordError> {
        let route = Route::ChannelMessage {
            channel_id: ChannelId::new(nonzero(channel_id)?),
            message_id: MessageId::new(nonzero(message_id)?),
        };
        self.send(route, LightMethod::Delete, None, true, Auth::Bot).await.map(|_| ())
    }

    async fn open_dm(&self, user_id: u64) -> Result<u64, DiscordError> {
        let body = serde_json::json!({ "recipient_id": nonzero(user_id)?.to_string() });
        let answer = self.send(Route::UserMeDmChannels, LightMethod::Post, Some(&body), true, Auth::Bot).await?;
        answer
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| DiscordError::BadAnswer("DM channel without an id".into()))
    }

    async fn edit_original(&self, application_id: u64, token: &str, body: &Value) -> Result<(), DiscordError> {
        let route = Route::WebhookOriginalInteractionResponse {
            application_id: ApplicationId::new(nonzero(application_id)?),
            token,
        };
        self.send(route, LightMethod::Patch, Some(body), true, Auth::Interaction).await.map(|_| ())
    }

    async fn delete_original(&self, application_id: u64, token: &str) -> Result<(), DiscordError> {
        let route = Route::WebhookOriginalInteractionResponse {
            application_id: ApplicationId::new(nonzero(application_id)?),
            token,
        };
        self.send(route, LightMethod::Delete, None, true, Auth::Interaction).await.map(|_| ())
    }

    async fn follow_up(&self, application_id: u64, token: &str, body: &Value) -> Result<PostedMessage, DiscordError> {
        let route =
            Route::WebhookFollowupMessages { application_id: ApplicationId::new(nonzero(application_id)?), token };
        let answer = self.send(route, LightMethod::Post, Some(body), false, Auth::Interaction).await?;
        posted(&answer)
    }
}

/// `DRY_RUN`: logs what would be sent and answers as Discord would, with made-up ids.
#[derive(Debug, Default, Clone)]
pub struct DryRunDiscord;

#[async_trait]
impl Discord for DryRunDiscord {
    async fn post_message(&self, channel_id: u64, body: &Value) -> Result<PostedMessage, DiscordError> {
        tracing::info!(channel_id, body = %body, "DRY_RUN: would post a message");
        Ok(PostedMessage { id: 0, channel_id, guild_id: None })
    }
    async fn edit_message(&self, channel_id: u64, message_id: u64, body: &Value) -> Result<(), DiscordError> {
        tracing::info!(channel_id, message_id, body = %body, "DRY_RUN: would edit a message");
        Ok(())
    }
    async fn delete_message(&self, channel_id: u64, message_id: u64) -> Result<(), DiscordError> {
        tracing::info!(channel_id, message_id, "DRY_RUN: would delete a message");
        Ok(())
    }
    async fn open_dm(&self, user_id: u64) -> Result<u64, DiscordError> {
        tracing::info!(recipient_id = user_id, "DRY_RUN: would open a DM channel");
        Ok(user_id)
    }
    async fn edit_original(&self, application_id: u64, _token: &str, body: &Value) -> Result<(), DiscordError> {
        tracing::info!(application_id, body = %body, "DRY_RUN: would edit the original response");
        Ok(())
    }
    async fn delete_original(&self, application_id: u64, _token: &str) -> Result<(), DiscordError> {
        tracing::info!(application_id, "DRY_RUN: would delete the original response");
        Ok(())
    }
    async fn follow_up(&self, application_id: u64, _token: &str, body: &Value) -> Result<PostedMessage, DiscordError> {
        tracing::info!(application_id, body = %body, "DRY_RUN: would send a follow-up");
        Ok(PostedMessage { id: 0, channel_id: 0, guild_id: None })
    }
    fn is_dry_run(&self) -> bool {
        true
    }
}

/// The adapter the configuration asks for: dry-run when `DRY_RUN` is set, HTTP otherwise (the
/// bot token may be missing: interaction answers need only the interaction token, and every
/// other call is refused with [`DiscordError::NoBotToken`] before it is sent).
pub fn from_config(config: &valine_domain::config::Config, attempt_timeout: Duration) -> Arc<dyn Discord> {
    if config.dry_run {
        return Arc::new(DryRunDiscord);
    }
    let token = config.discord_bot_token.as_ref().map_or("", |t| t.expose());
    Arc::new(HttpDiscord::new(token, config.discord_api_base.as_ref(), attempt_timeout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    async fn server() -> (MockServer, HttpDiscord) {
        let server = MockServer::start().await;
        let base = url::Url::parse(&server.uri()).unwrap();
        let client = HttpDiscord::new("test-bot-token", Some(&base), Duration::from_secs(2));
        (server, client)
    }

    #[tokio::test]
    async fn posts_with_the_bot_token_and_exact_body() {
        let (server, client) = server().await;
        let body = json!({"content": "hello", "allowed_mentions": {"parse": []}});
        Mock::given(method("POST"))
            .and(path("/api/v10/channels/111/messages"))
            .and(header("authorization", "Bot test-bot-token"))
            .and(body_json(&body))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"id": "999", "channel_id": "111", "guild_id": "5"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        crate::testing::fail_on_unexpected(&server).await;
        let posted = client.post_message(111, &body).await.unwrap();
        assert_eq!(posted, PostedMessage { id: 999, channel_id: 111, guild_id: Some(5) });
        assert_eq!(posted.link(), "https://discord.com/channels/5/111/999");
    }

    #[tokio::test]
    async fn a_short_429_is_waited_out_once() {
        let (server, client) = server().await;
        Mock::given(method("POST"))
            .and(path("/api/v10/channels/111/messages"))
            .respond_with(
                ResponseTemplate::new(429).insert_header("retry-after", "0.2").set_body_json(
                    json!({"message": "You are being rate limited.", "retry_after": 0.2, "global": false}),
                ),
            )
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v10/channels/111/messages"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1", "channel_id": "111"})))
            .expect(1)
            .mount(&server)
            .await;
        let started = std::time::Instant::now();
        assert_eq!(client.post_message(111, &json!({"content": "x"})).await.unwrap().id, 1);
        assert!(started.elapsed() >= Duration::from_millis(200), "Retry-After was not honoured");
    }

    #[tokio::test]
    async fn a_second_429_is_a_clear_error() {
        let (server, client) = server().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("retry-after", "0.1")
                    .set_body_json(json!({"retry_after": 0.1})),
            )
            .expect(2)
            .mount(&server)
            .await;
        let err = client.post_message(111, &json!({"content": "x"})).await.unwrap_err();
        assert!(matches!(err, DiscordError::RateLimited { .. }), "{err:?}");
        assert!(err.to_string().contains("rate-limited"));
    }

    #[tokio::test]
    async fn a_nonsense_retry_after_is_read_as_one_second() {
        let (server, client) = server().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("retry-after", "NaN")
                    .set_body_json(json!({"retry_after": "soon"})),
            )
            .expect(2)
            .mount(&server)
            .await;
        let err = client.post_message(111, &json!({"content": "x"})).await.unwrap_err();
        assert_eq!(err, DiscordError::RateLimited { retry_after: Duration::from_secs(1) });
    }

    #[tokio::test]
    async fn a_long_retry_after_is_not_waited_for() {
        let (server, client) = server().await;
        Mock::given(method("PATCH"))
            .respond_with(ResponseTemplate::new(429).set_body_json(json!({"retry_after": 30.0, "global": true})))
            .expect(1)
            .mount(&server)
            .await;
        let err = client.edit_original(1, "tok", &json!({"content": "x"})).await.unwrap_err();
        assert_eq!(err, DiscordError::RateLimited { retry_after: Duration::from_secs(30) });
    }

    #[tokio::test]
    async fn server_errors_retry_only_idempotent_calls() {
        let (server, client) = server().await;
        Mock::given(method("POST"))
            .and(path("/api/v10/channels/111/messages"))
            .respond_with(ResponseTemplate::new(500).set_body_json(json!({"message": "oops", "code": 0})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("PATCH"))
            .and(path("/api/v10/webhooks/7/tok/messages/@original"))
            .respond_with(ResponseTemplate::new(502))
            .expect(2)
            .mount(&server)
            .await;
        assert_eq!(
            client.post_message(111, &json!({})).await.unwrap_err(),
            DiscordError::Status { status: 500, message: "oops".into() }
        );
        assert!(matches!(
            client.edit_original(7, "tok", &json!({})).await.unwrap_err(),
            DiscordError::Status { status: 502, .. }
        ));
    }

    #[tokio::test]
    async fn slow_answers_time_out() {
        let server = MockServer::start().await;
        let base = url::Url::parse(&server.uri()).unwrap();
        let client = HttpDiscord::new("t", Some(&base), Duration::from_millis(200));
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
            .mount(&server)
            .await;
        assert_eq!(client.open_dm(5).await.unwrap_err(), DiscordError::Timeout);
    }

    #[tokio::test]
    async fn dm_edit_and_follow_up_routes() {
        let (server, client) = server().await;
        Mock::given(method("POST"))
            .and(path("/api/v10/users/@me/channels"))
            .and(body_json(json!({"recipient_id": "42"})))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "77", "type": 1})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("PATCH"))
            .and(path("/api/v10/webhooks/9/the-token/messages/@original"))
            .and(body_json(json!({"content": "done"})))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1", "channel_id": "2"})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v10/webhooks/9/the-token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "3", "channel_id": "2"})))
            .expect(1)
            .mount(&server)
            .await;
        crate::testing::fail_on_unexpected(&server).await;
        assert_eq!(client.open_dm(42).await.unwrap(), 77);
        client.edit_original(9, "the-token", &json!({"content": "done"})).await.unwrap();
        assert_eq!(client.follow_up(9, "the-token", &json!({"content": "more"})).await.unwrap().id, 3);
    }

    #[tokio::test]
    async fn edits_replies_and_deletes_channel_messages_exactly() {
        let (server, client) = server().await;
        let edit = json!({
            "content": "<@111>",
            "embeds": [{"title": "❌ CI on main: failure"}],
            "allowed_mentions": {"parse": [], "users": ["111"]},
        });
        Mock::given(method("PATCH"))
            .and(path("/api/v10/channels/5/messages/77"))
            .and(header("authorization", "Bot test-bot-token"))
            .and(body_json(&edit))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "77", "channel_id": "5"})))
            .expect(1)
            .mount(&server)
            .await;
        let reply = json!({
            "content": "✅ Resolved",
            "allowed_mentions": {"parse": []},
            "message_reference": {"message_id": "77", "channel_id": "5", "fail_if_not_exists": false},
        });
        Mock::given(method("POST"))
            .and(path("/api/v10/channels/5/messages"))
            .and(body_json(&reply))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "78", "channel_id": "5"})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .and(path("/api/v10/channels/5/messages/79"))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        crate::testing::fail_on_unexpected(&server).await;
        client.edit_message(5, 77, &edit).await.unwrap();
        let posted =
            client.reply(5, 77, &json!({"content": "✅ Resolved", "allowed_mentions": {"parse": []}})).await.unwrap();
        assert_eq!(posted.id, 78);
        client.delete_message(5, 79).await.unwrap();
        assert!(client.edit_message(0, 77, &edit).await.is_err(), "id 0 is refused before any request");
    }

    fn ok(channel: &str, remaining: &str, reset_after: &str) -> ResponseTemplate {
        ResponseTemplate::new(200)
            .insert_header("x-ratelimit-limit", "5")
            .insert_header("x-ratelimit-remaining", remaining)
            .insert_header("x-ratelimit-reset-after", reset_after)
            .insert_header("x-ratelimit-bucket", "80c17d2f203122d936070c88c8d10f33")
            .set_body_json(json!({"id": "1", "channel_id": channel}))
    }

    fn limited(retry_after: f64, global: bool) -> ResponseTemplate {
        let scope = if global { "global" } else { "user" };
        let mut answer = ResponseTemplate::new(429)
            .insert_header("retry-after", (retry_after.ceil() as u64).to_string().as_str())
            .insert_header("x-ratelimit-scope", scope)
            .set_body_json(
                json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": global}),
            );
        if global {
            answer = answer.insert_header("x-ratelimit-global", "true");
        } else {
            answer = answer
                .insert_header("x-ratelimit-limit", "5")
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset-after", retry_after.to_string().as_str())
                .insert_header("x-ratelimit-bucket", "80c17d2f203122d936070c88c8d10f33");
        }
        answer
    }

    #[tokio::test]
    async fn an_exhausted_bucket_refuses_at_once_without_sending_while_other_channels_go_out() {
        let (server, client) = server().await;
        Mock::given(method("POST"))
            .and(path("/api/v10/channels/111/messages"))
            .respond_with(ok("111", "0", "5"))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v10/channels/222/messages"))
            .respond_with(ok("222", "4", "5"))
            .expect(2)
            .mount(&server)
            .await;
        Mock::given(method("PATCH"))
            .and(path("/api/v10/channels/111/messages/7"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "7", "channel_id": "111"})))
            .expect(1)
            .mount(&server)
            .await;
        crate::testing::fail_on_unexpected(&server).await;
        client.post_message(111, &json!({"content": "first"})).await.unwrap();
        let started = std::time::Instant::now();
        let err = client.post_message(111, &json!({"content": "second"})).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(500), "refused at once, not waited: {:?}", started.elapsed());
        let DiscordError::RateLimited { retry_after } = err else { panic!("{err:?}") };
        assert!(retry_after > Duration::from_millis(4500) && retry_after <= Duration::from_secs(5), "{retry_after:?}");
        // Another channel has its own count, though Discord names the same bucket for it; an
        // edit on the channel is another route with its own bucket.
        client.post_message(222, &json!({"content": "elsewhere"})).await.unwrap();
        client.post_message(222, &json!({"content": "elsewhere again"})).await.unwrap();
        client.edit_message(111, 7, &json!({"content": "edited"})).await.unwrap();
        assert_eq!(server.received_requests().await.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn a_429_of_half_a_second_is_retried_once_and_succeeds() {
        let (server, client) = server().await;
        Mock::given(method("POST"))
            .and(path("/api/v10/channels/111/messages"))
            .respond_with(limited(0.5, false))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v10/channels/111/messages"))
            .respond_with(ok("111", "4", "5"))
            .expect(1)
            .mount(&server)
            .await;
        crate::testing::fail_on_unexpected(&server).await;
        let started = std::time::Instant::now();
        client.post_message(111, &json!({"content": "x"})).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(500), "retry_after was not honoured");
    }

    #[tokio::test]
    async fn a_429_of_thirty_seconds_is_handed_back_after_one_request() {
        let (server, client) = server().await;
        Mock::given(method("POST"))
            .and(path("/api/v10/channels/111/messages"))
            .respond_with(limited(30.0, false))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v10/channels/222/messages"))
            .respond_with(ok("222", "4", "5"))
            .expect(1)
            .mount(&server)
            .await;
        crate::testing::fail_on_unexpected(&server).await;
        let started = std::time::Instant::now();
        assert_eq!(
            client.post_message(111, &json!({"content": "x"})).await.unwrap_err(),
            DiscordError::RateLimited { retry_after: Duration::from_secs(30) }
        );
        // The next post to the channel is refused without a request; another channel goes out.
        let err = client.post_message(111, &json!({"content": "y"})).await.unwrap_err();
        let DiscordError::RateLimited { retry_after } = err else { panic!("{err:?}") };
        assert!(retry_after > Duration::from_secs(29), "{retry_after:?}");
        client.post_message(222, &json!({"content": "z"})).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(5), "nothing was waited out: {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_global_429_pauses_every_bot_route_but_not_interaction_webhooks() {
        let (server, client) = server().await;
        Mock::given(method("POST"))
            .and(path("/api/v10/channels/111/messages"))
            .respond_with(limited(30.0, true))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("PATCH"))
            .and(path("/api/v10/webhooks/9/the-token/messages/@original"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1", "channel_id": "2"})))
            .expect(1)
            .mount(&server)
            .await;
        crate::testing::fail_on_unexpected(&server).await;
        let limited = |e: Result<_, DiscordError>| match e {
            Err(DiscordError::RateLimited { retry_after }) => retry_after > Duration::from_secs(29),
            _ => false,
        };
        assert!(limited(client.post_message(111, &json!({"content": "x"})).await.map(|_| ())));
        assert!(limited(client.post_message(222, &json!({"content": "x"})).await.map(|_| ())));
        assert!(limited(client.edit_message(333, 4, &json!({"content": "x"})).await));
        assert!(limited(client.open_dm(42).await.map(|_| ())));
        // Interaction endpoints are not bound to the bot's global limit.
        client.edit_original(9, "the-token", &json!({"content": "done"})).await.unwrap();
    }

    /// Answers after `delay` and counts, at each arrival, the requests still in flight.
    struct Overlaps {
        delay: Duration,
        arrivals: std::sync::Mutex<Vec<std::time::Instant>>,
        most: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl wiremock::Respond for Overlaps {
        fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
            let now = std::time::Instant::now();
            let mut arrivals = self.arrivals.lock().unwrap();
            let in_flight = 1 + arrivals.iter().filter(|t| now < **t + self.delay).count();
            self.most.fetch_max(in_flight, std::sync::atomic::Ordering::SeqCst);
            arrivals.push(now);
            let channel = request.url.path().split('/').nth(4).unwrap_or_default().to_string();
            ResponseTemplate::new(200)
                .set_delay(self.delay)
                .set_body_json(json!({"id": arrivals.len().to_string(), "channel_id": channel}))
        }
    }

    async fn most_in_flight(channels: [u64; 3]) -> (usize, Duration) {
        let (server, client) = server().await;
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let delay = Duration::from_millis(300);
        Mock::given(method("POST"))
            .respond_with(Overlaps { delay, arrivals: Default::default(), most: most.clone() })
            .expect(3)
            .mount(&server)
            .await;
        let started = std::time::Instant::now();
        let body = json!({"content": "x"});
        let (a, b, c) = tokio::join!(
            client.post_message(channels[0], &body),
            client.post_message(channels[1], &body),
            client.post_message(channels[2], &body),
        );
        let ids: std::collections::HashSet<u64> = [a.unwrap().id, b.unwrap().id, c.unwrap().id].into();
        assert_eq!(ids.len(), 3);
        (most.load(std::sync::atomic::Ordering::SeqCst), started.elapsed())
    }

    #[tokio::test]
    async fn posts_to_one_channel_are_never_in_flight_together() {
        let (most, took) = most_in_flight([111, 111, 111]).await;
        assert_eq!(most, 1, "requests to one channel overlapped");
        assert!(took >= Duration::from_millis(900), "{took:?}");
        // Other channels are other keys: they go out together.
        let (most, _) = most_in_flight([111, 222, 333]).await;
        assert!(most >= 2, "requests to other channels waited for each other");
    }

    #[tokio::test]
    async fn an_edit_is_retried_once_on_a_server_error() {
        let (server, client) = server().await;
        Mock::given(method("PATCH"))
            .and(path("/api/v10/channels/5/messages/77"))
            .respond_with(ResponseTemplate::new(502))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("PATCH"))
            .and(path("/api/v10/channels/5/messages/77"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "77", "channel_id": "5"})))
            .expect(1)
            .mount(&server)
            .await;
        client.edit_message(5, 77, &json!({"content": "x"})).await.unwrap();
    }

    /// A configuration with no `DISCORD_BOT_TOKEN`, whose Discord is `server`.
    fn tokenless(server: &MockServer) -> Arc<dyn Discord> {
        let uri = server.uri();
        let config = valine_domain::config::Config::from_lookup(|k| match k {
            "DISCORD_API_BASE" => Some(uri.clone()),
            _ => None,
        })
        .unwrap();
        from_config(&config, Duration::from_secs(2))
    }

    #[tokio::test]
    async fn without_a_bot_token_bot_calls_fail_clearly_before_any_request() {
        let server = MockServer::start().await;
        let discord = tokenless(&server);
        let body = json!({"content": "hello", "allowed_mentions": {"parse": []}});
        let errors = [
            discord.post_message(111, &body).await.unwrap_err(),
            discord.open_dm(42).await.unwrap_err(),
            discord.edit_message(111, 5, &body).await.unwrap_err(),
            discord.delete_message(111, 5).await.unwrap_err(),
            discord.reply(111, 5, &body).await.unwrap_err(),
        ];
        for e in errors {
            assert!(e.to_string().contains("DISCORD_BOT_TOKEN is not set"), "{e}");
        }
        assert!(server.received_requests().await.unwrap().is_empty(), "a request left without a token");
    }

    #[tokio::test]
    async fn without_a_bot_token_interaction_answers_go_without_an_authorization_header() {
        let server = MockServer::start().await;
        let discord = tokenless(&server);
        Mock::given(method("PATCH"))
            .and(path("/api/v10/webhooks/1290463189401731073/interaction-token/messages/@original"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1", "channel_id": "2"})))
            .expect(1)
            .mount(&server)
            .await;
        crate::testing::fail_on_unexpected(&server).await;
        discord.edit_original(1290463189401731073, "interaction-token", &json!({"content": "done"})).await.unwrap();
        let sent = server.received_requests().await.unwrap();
        assert_eq!(sent.len(), 1);
        assert!(sent[0].headers.get("authorization").is_none(), "{:?}", sent[0].headers);
    }
}
