//! A Discord that keeps every message in memory and shows it on the playground's [`Feed`].
//!
//! Alone it answers as Discord would, with made-up snowflakes; around a real client
//! ([`FakeDiscord::recording`]) it forwards every call and records what the bot itself posted in
//! server channels, so the page still shows the bot's side of the conversation. It records
//! neither direct messages nor the answers to real interactions (only their caller sees those,
//! in Discord): the page is no window on other people's traffic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::feed::Feed;
use crate::discord_api::{Discord, DiscordError, PostedMessage};

/// `flags` bit of a message only its caller sees.
const EPHEMERAL: u64 = 1 << 6;
/// The first made-up snowflake (a plausible 2026 one).
const FIRST_ID: u64 = 1_400_000_000_000_000_000;
/// How long a post's `nonce` is remembered (Discord: "within the past few minutes").
const NONCE_WINDOW: Duration = Duration::from_secs(5 * 60);

/// The interaction a response, edit or follow-up belongs to.
#[derive(Debug, Clone)]
struct Pending {
    channel_id: u64,
    user_id: u64,
    /// `/status count:3`, or the label of the pressed button.
    label: String,
    /// The original response, once there is one.
    message_id: Option<u64>,
}

#[derive(Debug, Clone)]
struct Stored {
    channel_id: u64,
    body: Value,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    messages: HashMap<u64, Stored>,
    interactions: HashMap<String, Pending>,
    dms: HashMap<u64, u64>,
    channels: HashMap<u64, Value>,
    /// (channel, nonce) of a post with `enforce_nonce` → the message it created, and when.
    nonces: HashMap<(u64, String), (PostedMessage, Instant)>,
}

impl State {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        FIRST_ID + self.next_id
    }
}

pub struct FakeDiscord {
    feed: Arc<Feed>,
    inner: Option<Arc<dyn Discord>>,
    guild_id: Option<u64>,
    /// Where answers to interactions the page did not send (`valinectl send`) are shown.
    elsewhere: Option<u64>,
    state: Mutex<State>,
    /// Posts with an enforced nonce, one at a time: two sent at once create one message.
    nonce_posts: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for FakeDiscord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeDiscord").field("recording", &self.inner.is_some()).finish_non_exhaustive()
    }
}

/// `channel_id` of a published message, as a string: JavaScript cannot hold a snowflake.
fn sid(id: u64) -> Value {
    Value::String(id.to_string())
}

/// A PATCH: the fields given replace the stored ones; `flags` stay (Discord ignores them on edits).
fn merge(stored: &mut Value, patch: &Value) {
    let (Some(target), Some(patch)) = (stored.as_object_mut(), patch.as_object()) else {
        return;
    };
    for (k, v) in patch {
        if k != "flags" {
            target.insert(k.clone(), v.clone());
        }
    }
}

impl FakeDiscord {
    /// The fake alone: nothing leaves the process. Messages get the guild `guild_id`.
    pub fn new(feed: Arc<Feed>, guild_id: Option<u64>) -> Self {
        Self { feed, inner: None, guild_id, elsewhere: None, state: Mutex::default(), nonce_posts: Default::default() }
    }

    /// Forwards every call to `inner` and records what it accepted.
    pub fn recording(feed: Arc<Feed>, inner: Arc<dyn Discord>) -> Self {
        Self {
            feed,
            inner: Some(inner),
            guild_id: None,
            elsewhere: None,
            state: Mutex::default(),
            nonce_posts: Default::default(),
        }
    }

    /// Shows the deferred answers and follow-ups of interactions sent by others than the page
    /// (`valinectl send`) in `channel_id`, instead of answering them as unknown.
    pub fn answers_elsewhere_in(mut self, channel_id: u64) -> Self {
        self.elsewhere = Some(channel_id);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Names a channel for the page (`kind`: `text` or `dm`). Recording, a DM channel is known
    /// but not shown.
    pub fn add_channel(&self, id: u64, name: &str, kind: &str, user_id: Option<u64>) {
        let channel = json!({"id": sid(id), "name": name, "kind": kind, "user_id": user_id.map(sid)});
        let mut state = self.lock();
        if state.channels.get(&id) == Some(&channel) {
            return;
        }
        state.channels.insert(id, channel.clone());
        drop(state);
        if !(self.inner.is_some() && kind == "dm") {
            self.feed.publish("channel", channel);
        }
    }

    /// Recording, what goes to a DM stays between the bot and its reader.
    fn private(&self, state: &State, channel_id: u64) -> bool {
        self.inner.is_some() && state.channels.get(&channel_id).is_some_and(|c| c["kind"] == "dm")
    }

    /// Every stored message of a channel, oldest first (for tests and the page's first load).
    pub fn messages(&self, channel_id: u64) -> Vec<Value> {
        let state = self.lock();
        let mut out: Vec<(u64, Value)> = state
            .messages
            .iter()
            .filter(|(_, m)| m.channel_id == channel_id)
            .map(|(id, m)| (*id, m.body.clone()))
            .collect();
        out.sort_by_key(|(id, _)| *id);
        out.into_iter().map(|(_, b)| b).collect()
    }

    /// One stored message.
    pub fn message(&self, message_id: u64) -> Option<Value> {
        self.lock().messages.get(&message_id).map(|m| m.body.clone())
    }

    /// The page sent an interaction with this token from `channel_id` as `user_id`.
    pub fn interaction_sent(&self, token: &str, channel_id: u64, user_id: u64, label: &str) {
        self.lock()
            .interactions
            .insert(token.to_string(), Pending { channel_id, user_id, label: label.to_string(), message_id: None });
    }

    /// Discord's side of the answer to an interaction: a new message (4), a "thinking" one (5),
    /// an update of the message whose button was pressed (7) or nothing (1, 6, 8). Returns the id
    /// of the message it shows, if any.
    pub fn interaction_answered(&self, token: &str, response: &Value, source_message: Option<u64>) -> Option<u64> {
        let kind = response["type"].as_u64().unwrap_or(0);
        let data = response.get("data").cloned().unwrap_or_else(|| json!({}));
        let pending = self.lock().interactions.get(token).cloned()?;
        match kind {
            4 | 5 => {
                let mut body = if kind == 5 {
                    json!({"content": "", "deferred": true, "flags": data.get("flags").and_then(Value::as_u64).unwrap_or(0)})
                } else {
                    data
                };
                self.decorate(&mut body, &pending);
                let id = self.store_new(pending.channel_id, body, None);
                if let Some(p) = self.lock().interactions.get_mut(token) {
                    p.message_id = Some(id);
                }
                Some(id)
            }
            6 | 7 => {
                let source = source_message?;
                if let Some(p) = self.lock().interactions.get_mut(token) {
                    p.message_id = Some(source);
                }
                if kind == 7 {
                    self.store_edit(source, &data);
                }
                Some(source)
            }
            _ => None,
        }
    }

    /// Marks a message as the answer to an interaction: who ran what, and who alone sees it.
    fn decorate(&self, body: &mut Value, pending: &Pending) {
        if let Some(o) = body.as_object_mut() {
            o.insert("interaction".into(), json!({"user_id": sid(pending.user_id), "name": pending.label}));
            if o.get("flags").and_then(Value::as_u64).unwrap_or(0) & EPHEMERAL != 0 {
                o.insert("ephemeral_for".into(), sid(pending.user_id));
            }
        }
    }

    /// Stores and publishes a new message; `id` is Discord's when a real one accepted it.
    fn store_new(&self, channel_id: u64, mut body: Value, id: Option<u64>) -> u64 {
        let mut state = self.lock();
        let id = id.filter(|i| *i != 0).unwrap_or_else(|| state.id());
        if self.private(&state, channel_id) {
            return id;
        }
        if !body.is_object() {
            body = json!({"content": body.to_string()});
        }
        if let Some(o) = body.as_object_mut() {
            o.insert("id".into(), sid(id));
            o.insert("channel_id".into(), sid(channel_id));
            o.insert("author".into(), json!({"bot": true, "name": "Valine"}));
            if let Some(r) = o.remove("message_reference") {
                o.insert("reply_to".into(), r.get("message_id").cloned().unwrap_or(Value::Null));
            }
        }
        state.messages.insert(id, Stored { channel_id, body: body.clone() });
        drop(state);
        self.feed.publish("message", body);
        id
    }

    fn store_edit(&self, message_id: u64, patch: &Value) -> bool {
        let mut state = self.lock();
        let Some(stored) = state.messages.get_mut(&message_id) else {
            return false;
        };
        merge(&mut stored.body, patch);
        if let Some(o) = stored.body.as_object_mut() {
            o.remove("deferred");
            o.insert("edited".into(), Value::Bool(true));
        }
        let body = stored.body.clone();
        drop(state);
        self.feed.publish("message_update", body);
        true
    }

    fn store_delete(&self, message_id: u64) {
        let removed = self.lock().messages.remove(&message_id);
        if let Some(m) = removed {
            self.feed.publish("message_delete", json!({"id": sid(message_id), "channel_id": sid(m.channel_id)}));
        }
    }

    /// The real client, for an interaction Discord sent; the page's own interactions were never
    /// Discord's, so their answers stay here.
    fn forward(&self, token: &str) -> Option<&Arc<dyn Discord>> {
        self.inner.as_ref().filter(|_| !self.known(token))
    }

    fn pending(&self, token: &str) -> Option<Pending> {
        let mut state = self.lock();
        if let Some(p) = state.interactions.get(token) {
            return Some(p.clone());
        }
        let channel_id = self.elsewhere.filter(|_| self.inner.is_none())?;
        let p =
            Pending { channel_id, user_id: 0, label: "an interaction sent from elsewhere".into(), message_id: None };
        state.interactions.insert(token.to_string(), p.clone());
        Some(p)
    }

    /// Whether the page sent the interaction with this token.
    fn known(&self, token: &str) -> bool {
        self.lock().interactions.contains_key(token)
    }

    fn posted(&self, id: u64, channel_id: u64) -> PostedMessage {
        PostedMessage { id, channel_id, guild_id: self.guild_id }
    }
}

#[async_trait]
impl Discord for FakeDiscord {
    /// A post repeating the enforced `nonce` of one in the same channel within [`NONCE_WINDOW`]
    /// answers the message created the first time, as Discord does, and creates none.
    async fn post_message(&self, channel_id: u64, body: &Value) -> Result<PostedMessage, DiscordError> {
        let nonce = valine_domain::message::enforced_nonce(body).map(|n| (channel_id, n));
        let _one_at_a_time = match nonce {
            Some(_) => Some(self.nonce_posts.lock().await),
            None => None,
        };
        if let Some(key) = &nonce {
            let mut state = self.lock();
            state.nonces.retain(|_, (_, at)| at.elapsed() < NONCE_WINDOW);
            if let Some((first, _)) = state.nonces.get(key) {
                tracing::info!(channel_id, "playground: a post repeated its nonce; the first message answers");
                return Ok(first.clone());
            }
        }
        let real = match &self.inner {
            Some(inner) => Some(inner.post_message(channel_id, body).await?),
            None => None,
        };
        tracing::info!(channel_id, "playground: message posted");
        let id = self.store_new(channel_id, body.clone(), real.as_ref().map(|p| p.id));
        let posted = real.unwrap_or_else(|| self.posted(id, channel_id));
        if let Some(key) = nonce {
            self.lock().nonces.insert(key, (posted.clone(), Instant::now()));
        }
        Ok(posted)
    }

    async fn open_dm(&self, user_id: u64) -> Result<u64, DiscordError> {
        let channel = match &self.inner {
            Some(inner) => inner.open_dm(user_id).await?,
            None => {
                let mut state = self.lock();
                match state.dms.get(&user_id) {
                    Some(c) => *c,
                    None => {
                        let c = state.id();
                        state.dms.insert(user_id, c);
                        c
                    }
                }
            }
        };
        self.add_channel(channel, &format!("DM {user_id}"), "dm", Some(user_id));
        Ok(channel)
    }

    async fn edit_original(&self, application_id: u64, token: &str, body: &Value) -> Result<(), DiscordError> {
        if let Some(inner) = self.forward(token) {
            // Someone's real interaction: they see the answer in Discord; the page does not.
            return inner.edit_original(application_id, token, body).await;
        }
        let Some(pending) = self.pending(token) else {
            return Err(DiscordError::Status { status: 404, message: "Unknown Webhook".into() });
        };
        match pending.message_id {
            Some(id) if self.store_edit(id, body) => {}
            _ => {
                let mut body = body.clone();
                self.decorate(&mut body, &pending);
                let id = self.store_new(pending.channel_id, body, None);
                if let Some(p) = self.lock().interactions.get_mut(token) {
                    p.message_id = Some(id);
                }
            }
        }
        Ok(())
    }

    async fn delete_original(&self, application_id: u64, token: &str) -> Result<(), DiscordError> {
        if let Some(inner) = self.forward(token) {
            return inner.delete_original(application_id, token).await;
        }
        let pending =
            self.pending(token).ok_or(DiscordError::Status { status: 404, message: "Unknown Webhook".into() })?;
        if let Some(id) = pending.message_id {
            self.store_delete(id);
        }
        Ok(())
    }

    async fn follow_up(&self, application_id: u64, token: &str, body: &Value) -> Result<PostedMessage, DiscordError> {
        if let Some(inner) = self.forward(token) {
            return inner.follow_up(application_id, token, body).await;
        }
        let pending =
            self.pending(token).ok_or(DiscordError::Status { status: 404, message: "Unknown Webhook".into() })?;
        let mut body = body.clone();
        self.decorate(&mut body, &pending);
        let id = self.store_new(pending.channel_id, body, None);
        Ok(self.posted(id, pending.channel_id))
    }

    async fn edit_message(&self, channel_id: u64, message_id: u64, body: &Value) -> Result<(), DiscordError> {
        if let Some(inner) = &self.inner {
            inner.edit_message(channel_id, message_id, body).await?;
        }
        if self.store_edit(message_id, body) || self.inner.is_some() {
            Ok(())
        } else {
            Err(DiscordError::Status { status: 404, message: "Unknown Message".into() })
        }
    }

    async fn delete_message(&self, channel_id: u64, message_id: u64) -> Result<(), DiscordError> {
        if let Some(inner) = &self.inner {
            inner.delete_message(channel_id, message_id).await?;
        }
        self.store_delete(message_id);
        Ok(())
    }

    fn is_dry_run(&self) -> bool {
        self.inner.as_ref().is_some_and(|i| i.is_dry_run())
    }
}

/// The message objects of a feed, as the page would assemble them: by id, edits applied.
pub fn assemble(events: &[Value]) -> Vec<Value> {
    let mut order: Vec<String> = Vec::new();
    let mut by_id: Map<String, Value> = Map::new();
    for e in events {
        let data = &e["data"];
        let id = data["id"].as_str().unwrap_or_default().to_string();
        match e["kind"].as_str() {
            Some("message") => {
                order.push(id.clone());
                by_id.insert(id, data.clone());
            }
            Some("message_update") => {
                by_id.insert(id, data.clone());
            }
            Some("message_delete") => {
                by_id.remove(&id);
            }
            _ => {}
        }
    }
    order.into_iter().filter_map(|id| by_id.get(&id).cloned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discord_api::DryRunDiscord;

    fn fake() -> (Arc<Feed>, FakeDiscord) {
        let feed = Feed::new();
        (feed.clone(), FakeDiscord::new(feed, Some(9)))
    }

    #[tokio::test]
    async fn posts_edits_replies_and_deletes_show_on_the_feed() {
        let (feed, d) = fake();
        let posted = d.post_message(5, &json!({"content": "failing", "components": [{"type": 1}]})).await.unwrap();
        assert_eq!(posted.channel_id, 5);
        assert_eq!(posted.guild_id, Some(9));
        assert!(posted.id > FIRST_ID);
        d.edit_message(5, posted.id, &json!({"content": "resolved", "components": []})).await.unwrap();
        let reply = d.reply(5, posted.id, &json!({"content": "fixed by #13"})).await.unwrap();
        let messages = d.messages(5);
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0]["content"], "resolved");
        assert_eq!(messages[0]["edited"], true);
        assert_eq!(messages[0]["components"], json!([]));
        assert_eq!(messages[1]["reply_to"], posted.id.to_string());
        assert_eq!(assemble(&feed.history()), messages);
        d.delete_message(5, reply.id).await.unwrap();
        assert_eq!(d.messages(5).len(), 1);
        assert_eq!(assemble(&feed.history()).len(), 1);
        // Editing a message that does not exist is Discord's 404.
        let err = d.edit_message(5, 1, &json!({"content": "x"})).await.unwrap_err();
        assert!(matches!(err, DiscordError::Status { status: 404, .. }));
    }

    #[tokio::test]
    async fn interaction_answers_deferrals_and_follow_ups() {
        let (_, d) = fake();
        d.interaction_sent("t1", 7, 42, "/status");
        let id = d.interaction_answered("t1", &json!({"type": 5}), None).unwrap();
        assert_eq!(d.message(id).unwrap()["deferred"], true);
        d.edit_original(1, "t1", &json!({"embeds": [{"title": "CI"}]})).await.unwrap();
        let m = d.message(id).unwrap();
        assert_eq!(m["embeds"][0]["title"], "CI");
        assert_eq!(m["interaction"]["name"], "/status");
        assert!(m.get("deferred").is_none());
        let f = d.follow_up(1, "t1", &json!({"content": "only you", "flags": 64})).await.unwrap();
        assert_eq!(d.message(f.id).unwrap()["ephemeral_for"], "42");
        d.delete_original(1, "t1").await.unwrap();
        assert!(d.message(id).is_none());
        // An ephemeral answer, and an update of the message whose button was pressed.
        d.interaction_sent("t2", 7, 43, "Acknowledge");
        let e = d.interaction_answered("t2", &json!({"type": 4, "data": {"content": "no", "flags": 64}}), Some(f.id));
        assert_eq!(d.message(e.unwrap()).unwrap()["ephemeral_for"], "43");
        d.interaction_sent("t3", 7, 43, "Confirm");
        let u = d.interaction_answered("t3", &json!({"type": 7, "data": {"content": "sent"}}), Some(f.id));
        assert_eq!(u, Some(f.id));
        assert_eq!(d.message(f.id).unwrap()["content"], "sent");
        // Unknown tokens are Discord's 404, as with a real expired token.
        assert!(d.edit_original(1, "nope", &json!({})).await.is_err());
        assert_eq!(d.interaction_answered("nope", &json!({"type": 4}), None), None);
        // With a channel for them, answers to interactions sent elsewhere show there.
        let (_, d) = fake();
        let d = d.answers_elsewhere_in(3);
        d.edit_original(1, "from-send", &json!({"content": "done"})).await.unwrap();
        assert_eq!(d.messages(3)[0]["content"], "done");
    }

    #[tokio::test]
    async fn dms_get_one_channel_per_user_and_are_announced() {
        let (feed, d) = fake();
        let a = d.open_dm(42).await.unwrap();
        assert_eq!(d.open_dm(42).await.unwrap(), a);
        assert_ne!(d.open_dm(43).await.unwrap(), a);
        let channels = feed.of_kind("channel");
        assert_eq!(channels.len(), 2);
        assert_eq!(channels[0]["kind"], "dm");
        assert_eq!(channels[0]["user_id"], "42");
    }

    #[tokio::test]
    async fn a_repeated_enforced_nonce_answers_the_first_message() {
        let (feed, d) = fake();
        let card = json!({"content": "CI failed", "nonce": "inc-42-post", "enforce_nonce": true});
        let first = d.post_message(5, &card).await.unwrap();
        let again = d
            .post_message(5, &json!({"content": "CI failed (resent)", "nonce": "inc-42-post", "enforce_nonce": true}))
            .await
            .unwrap();
        assert_eq!(again, first);
        assert_eq!(d.messages(5).len(), 1);
        assert_eq!(d.messages(5)[0]["content"], "CI failed");
        assert_eq!(feed.of_kind("message").len(), 1, "the repeat was not published");
        // Integer nonces too; a reply carrying the nonce is deduplicated the same way.
        let numbered = json!({"content": "n", "nonce": 1234567, "enforce_nonce": true});
        let n = d.post_message(5, &numbered).await.unwrap();
        assert_eq!(d.post_message(5, &numbered).await.unwrap(), n);
        let reply = d
            .reply(5, first.id, &json!({"content": "resolved", "nonce": "inc-42-r", "enforce_nonce": true}))
            .await
            .unwrap();
        assert_eq!(
            d.reply(5, first.id, &json!({"content": "resolved", "nonce": "inc-42-r", "enforce_nonce": true}))
                .await
                .unwrap(),
            reply
        );
        assert_eq!(d.messages(5).len(), 3);
        // The same nonce in another channel, or without enforce_nonce, is a new message.
        let other = d.post_message(6, &card).await.unwrap();
        assert_ne!(other.id, first.id);
        let loose = json!({"content": "loose", "nonce": "inc-42-post"});
        let a = d.post_message(5, &loose).await.unwrap();
        let b = d.post_message(5, &loose).await.unwrap();
        assert_ne!(a.id, b.id);
        assert_ne!(a.id, first.id);
        let unenforced = json!({"content": "x", "nonce": "k", "enforce_nonce": false});
        assert_ne!(d.post_message(5, &unenforced).await.unwrap(), d.post_message(5, &unenforced).await.unwrap());
        assert_eq!(d.messages(5).len(), 7);
        assert_eq!(d.messages(6).len(), 1);
    }

    /// A Discord that takes its time to post, and counts the posts.
    #[derive(Default)]
    struct Slow(std::sync::atomic::AtomicU64);

    #[async_trait]
    impl Discord for Slow {
        async fn post_message(&self, channel_id: u64, _: &Value) -> Result<PostedMessage, DiscordError> {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            Ok(PostedMessage { id: 900 + n, channel_id, guild_id: None })
        }
        async fn open_dm(&self, user_id: u64) -> Result<u64, DiscordError> {
            Ok(user_id)
        }
        async fn edit_original(&self, _: u64, _: &str, _: &Value) -> Result<(), DiscordError> {
            Ok(())
        }
        async fn delete_original(&self, _: u64, _: &str) -> Result<(), DiscordError> {
            Ok(())
        }
        async fn follow_up(&self, _: u64, _: &str, _: &Value) -> Result<PostedMessage, DiscordError> {
            Err(DiscordError::Timeout)
        }
    }

    #[tokio::test]
    async fn two_posts_with_one_nonce_at_once_create_one_message() {
        let inner = Arc::new(Slow::default());
        let d = FakeDiscord::recording(Feed::new(), inner.clone());
        let card = json!({"content": "at once", "nonce": "inc-43-post", "enforce_nonce": true});
        let (a, b) = tokio::join!(d.post_message(7, &card), d.post_message(7, &card));
        assert_eq!(a.unwrap(), b.unwrap());
        assert_eq!(inner.0.load(std::sync::atomic::Ordering::SeqCst), 1, "the repeat reached Discord");
        assert_eq!(d.messages(7).len(), 1);
    }

    #[tokio::test]
    async fn recording_forwards_and_keeps_what_was_accepted() {
        let feed = Feed::new();
        let d = FakeDiscord::recording(feed.clone(), Arc::new(DryRunDiscord));
        assert!(d.is_dry_run());
        d.post_message(3, &json!({"content": "hello"})).await.unwrap();
        assert_eq!(d.messages(3)[0]["content"], "hello");
    }
}
