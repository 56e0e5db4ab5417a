//! Discord's rate limits as its own headers describe them, kept per container.
//!
//! Every answer carries `X-RateLimit-Limit`, `-Remaining`, `-Reset-After` (seconds) and `-Bucket`;
//! a 429 adds `retry_after` and `global` in its body and `X-RateLimit-Scope` (`user`, `global`,
//! `shared`). Discord counts a route's requests per top-level resource (its major parameter: the
//! channel, the guild, the webhook id and token), so the state here is kept per route bucket and
//! major parameter: the route's `X-RateLimit-Bucket` once an answer named it, the route itself
//! before. Besides, a global pause after a global 429; interaction webhooks are not bound to the
//! global limit (Discord's rate-limit documentation), so it does not hold them back.
//!
//! The pure part ([`RateHeaders::read`], [`Limited::of`], [`gate`]) decides; [`Limiter`] holds the
//! state, and the per-key turn that keeps at most one request in flight per major parameter.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::HeaderMap;
use serde_json::Value;
use serenity::http::{LightMethod, Route};
use tokio::time::Instant;

/// The longest pause a header or a 429 is read as; Discord's are seconds, rarely minutes.
pub const MAX_PAUSE: Duration = Duration::from_secs(3600);
/// Idle turns and stale route entries are dropped once there are this many.
const MAX_ENTRIES: usize = 256;
/// How many times [`Limiter::admit`] waits before it gives up (each wait ends a known pause).
const MAX_WAITS: usize = 3;

/// Which limits a request counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RateKey {
    /// The method and path template, `POST /channels/{channel}/messages`: what Discord's
    /// `X-RateLimit-Bucket` is learnt for.
    pub route: String,
    /// The top-level resource: `channel:111`, `webhook:9:<hash of the token>`, `@me`, …
    pub major: String,
    /// Whether the request counts towards the bot's global limit (interaction webhooks do not).
    pub global: bool,
}

/// A hash of an interaction token, so that the state never holds the token itself.
fn token_hash(token: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    token.hash(&mut h);
    h.finish()
}

fn method_name(method: LightMethod) -> &'static str {
    match method {
        LightMethod::Delete => "DELETE",
        LightMethod::Get => "GET",
        LightMethod::Patch => "PATCH",
        LightMethod::Post => "POST",
        LightMethod::Put => "PUT",
    }
}

impl RateKey {
    /// The key of a request on one of the routes this client uses; any other route is its own
    /// key (its whole path).
    pub fn of(route: &Route<'_>, method: LightMethod) -> Self {
        let (template, major, global) = match *route {
            Route::ChannelMessages { channel_id } => {
                ("/channels/{channel}/messages".to_string(), format!("channel:{channel_id}"), true)
            }
            Route::ChannelMessage { channel_id, .. } => {
                ("/channels/{channel}/messages/{message}".to_string(), format!("channel:{channel_id}"), true)
            }
            Route::WebhookOriginalInteractionResponse { application_id, token } => (
                "/webhooks/{application}/{token}/messages/@original".to_string(),
                format!("webhook:{application_id}:{:016x}", token_hash(token)),
                false,
            ),
            Route::WebhookFollowupMessages { application_id, token } => (
                "/webhooks/{application}/{token}".to_string(),
                format!("webhook:{application_id}:{:016x}", token_hash(token)),
                false,
            ),
            Route::UserMeDmChannels => ("/users/@me/channels".to_string(), "@me".to_string(), true),
            Route::Commands { application_id } => {
                ("/applications/{application}/commands".to_string(), format!("application:{application_id}"), true)
            }
            Route::GuildCommands { application_id, guild_id } => (
                "/applications/{application}/guilds/{guild}/commands".to_string(),
                format!("application:{application_id}:guild:{guild_id}"),
                true,
            ),
            other => {
                let path = other.path().into_owned();
                (path.clone(), path, true)
            }
        };
        Self { route: format!("{} {template}", method_name(method)), major, global }
    }
}

/// What an answer's headers say about its limit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateHeaders {
    /// `X-RateLimit-Limit`.
    pub limit: Option<u32>,
    /// `X-RateLimit-Remaining`.
    pub remaining: Option<u32>,
    /// `X-RateLimit-Reset-After`.
    pub reset_after: Option<Duration>,
    /// `X-RateLimit-Bucket`.
    pub bucket: Option<String>,
    /// `X-RateLimit-Global: true`.
    pub global: bool,
    /// `X-RateLimit-Scope`: `user`, `global` or `shared`.
    pub scope: Option<String>,
    /// `Retry-After` (whole seconds, on a 429).
    pub retry_after: Option<Duration>,
}

/// `now` plus a pause (never more than [`MAX_PAUSE`] in practice; no panic if it were).
fn after(now: Instant, pause: Duration) -> Instant {
    now.checked_add(pause).unwrap_or(now)
}

/// Seconds as a duration: finite, not negative, at most [`MAX_PAUSE`].
fn seconds(s: f64) -> Option<Duration> {
    s.is_finite().then(|| Duration::from_secs_f64(s.clamp(0.0, MAX_PAUSE.as_secs_f64())))
}

impl RateHeaders {
    /// Reads the headers; a missing or unreadable one is `None`.
    pub fn read(headers: &HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let secs = |name: &str| text(name).and_then(|v| v.parse::<f64>().ok()).and_then(seconds);
        Self {
            limit: text("x-ratelimit-limit").and_then(|v| v.parse().ok()),
            remaining: text("x-ratelimit-remaining").and_then(|v| v.parse().ok()),
            reset_after: secs("x-ratelimit-reset-after"),
            bucket: text("x-ratelimit-bucket").filter(|b| !b.is_empty()).map(str::to_string),
            global: text("x-ratelimit-global").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            scope: text("x-ratelimit-scope").map(str::to_ascii_lowercase),
            retry_after: secs("retry-after"),
        }
    }
}

/// What a 429 asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
    /// The bot's global limit rather than the route's.
    pub global: bool,
}

impl Limited {
    /// The wait a 429 asks for: the body's `retry_after` (float seconds), else `Retry-After`, else
    /// one second; global when the body's `global`, `X-RateLimit-Global` or the scope says so.
    pub fn of(headers: &RateHeaders, body: &Value) -> Self {
        let retry_after = body
            .get("retry_after")
            .and_then(Value::as_f64)
            .and_then(seconds)
            .or(headers.retry_after)
            .unwrap_or(Duration::from_secs(1));
        let global = body.get("global").and_then(Value::as_bool).unwrap_or(false)
            || headers.global
            || headers.scope.as_deref() == Some("global");
        Self { retry_after, global }
    }
}

/// A bucket's state: requests left until `reset_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub remaining: u32,
    pub reset_at: Instant,
}

/// What to do with a request before it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Send,
    /// Wait this long, then ask again.
    Wait(Duration),
    /// Do not send: the limit lasts this long yet, more than the caller waits.
    Refuse(Duration),
}

/// The decision for a request at `now`: its bucket is exhausted until its reset, the global pause
/// lasts until `global_until`; a wait of at most `max_wait` is waited out, a longer one refused.
pub fn gate(bucket: Option<&Bucket>, global_until: Option<Instant>, now: Instant, max_wait: Duration) -> Gate {
    let bucket_wait =
        bucket.filter(|b| b.remaining == 0).map_or(Duration::ZERO, |b| b.reset_at.saturating_duration_since(now));
    let global_wait = global_until.map_or(Duration::ZERO, |g| g.saturating_duration_since(now));
    let wait = bucket_wait.max(global_wait);
    if wait.is_zero() {
        Gate::Send
    } else if wait <= max_wait {
        Gate::Wait(wait)
    } else {
        Gate::Refuse(wait)
    }
}

#[derive(Debug, Default)]
struct State {
    /// route → Discord's bucket id, once an answer named it.
    bucket_ids: HashMap<String, String>,
    /// (bucket id, or the route before one is known; major parameter) → its state. Entries whose
    /// reset has passed say nothing and are dropped.
    buckets: HashMap<(String, String), Bucket>,
    global_until: Option<Instant>,
}

impl State {
    fn bucket_key(&self, key: &RateKey) -> (String, String) {
        let id = self.bucket_ids.get(&key.route).unwrap_or(&key.route);
        (id.clone(), key.major.clone())
    }
}

/// Discord's limits as this container knows them, and the turn of each major parameter.
#[derive(Debug, Default)]
pub struct Limiter {
    state: Mutex<State>,
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A request's turn: no other request with the same major parameter is sent while it is held.
pub type Turn = tokio::sync::OwnedMutexGuard<()>;

impl Limiter {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the turn of `key`'s major parameter. Idle turns are dropped as the map grows.
    pub async fn turn(&self, key: &RateKey) -> Turn {
        let lock = {
            let mut turns = self.turns.lock().unwrap_or_else(PoisonError::into_inner);
            if turns.len() >= MAX_ENTRIES {
                // An entry only the map holds is idle: nobody has or awaits its turn.
                turns.retain(|_, m| Arc::strong_count(m) > 1);
            }
            turns.entry(key.major.clone()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// How many majors have a turn entry (for tests of the bound).
    pub fn turns_held(&self) -> usize {
        self.turns.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// The decision for `key` at `now`.
    pub fn gate(&self, key: &RateKey, now: Instant, max_wait: Duration) -> Gate {
        let state = self.state();
        let bucket = state.buckets.get(&state.bucket_key(key));
        let global = state.global_until.filter(|_| key.global);
        gate(bucket, global, now, max_wait)
    }

    /// Waits out a limit of at most `max_wait`; `Err(retry_after)` when the request must not be
    /// sent.
    pub async fn admit(&self, key: &RateKey, max_wait: Duration) -> Result<(), Duration> {
        for _ in 0..MAX_WAITS {
            match self.gate(key, Instant::now(), max_wait) {
                Gate::Send => return Ok(()),
                Gate::Wait(wait) => {
                    tracing::info!(route = %key.route, wait_ms = wait.as_millis() as u64, "Discord rate limit; waiting");
                    tokio::time::sleep(wait).await;
                }
                Gate::Refuse(wait) => return Err(wait),
            }
        }
        match self.gate(key, Instant::now(), max_wait) {
            Gate::Send => Ok(()),
            Gate::Wait(wait) | Gate::Refuse(wait) => Err(wait),
        }
    }

    /// Records what an answer to `key` said at `now`: its headers, and the 429 if it was one.
    pub fn record(&self, key: &RateKey, headers: &RateHeaders, limited: Option<Limited>, now: Instant) {
        let mut state = self.state();
        if let Some(id) = &headers.bucket
            && state.bucket_ids.get(&key.route) != Some(id)
        {
            if state.bucket_ids.len() >= MAX_ENTRIES {
                state.bucket_ids.clear();
            }
            // What was learnt under the route now belongs to its bucket, for every major.
            state.bucket_ids.insert(key.route.clone(), id.clone());
            let learnt: Vec<_> = state.buckets.keys().filter(|(r, _)| *r == key.route).cloned().collect();
            for before in learnt {
                if let Some(b) = state.buckets.remove(&before) {
                    state.buckets.insert((id.clone(), before.1), b);
                }
            }
        }
        state.buckets.retain(|_, b| b.reset_at > now);
        let bucket_key = state.bucket_key(key);
        if let (Some(remaining), Some(reset_after)) = (headers.remaining, headers.reset_after) {
            state.buckets.insert(bucket_key.clone(), Bucket { remaining, reset_at: after(now, reset_after) });
        }
        match limited {
            Some(Limited { retry_after, global: true }) => {
                let until = after(now, retry_after);
                state.global_until = Some(state.global_until.map_or(until, |g| g.max(until)));
            }
            Some(Limited { retry_after, global: false }) => {
                let reset_at = after(now, retry_after);
                let b = state.buckets.entry(bucket_key).or_insert(Bucket { remaining: 0, reset_at });
                b.remaining = 0;
                b.reset_at = b.reset_at.max(reset_at);
            }
            None => {}
        }
        if state.global_until.is_some_and(|g| g <= now) {
            state.global_until = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use serenity::model::id::{ApplicationId, ChannelId, MessageId};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn headers_are_read_as_discord_sends_them() {
        let ms = Duration::from_millis;
        let cases: Vec<(&[(&'static str, &'static str)], RateHeaders)> = vec![
            (&[], RateHeaders::default()),
            (
                &[
                    ("x-ratelimit-limit", "5"),
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset-after", "1.250"),
                    ("x-ratelimit-bucket", "abcd1234"),
                ],
                RateHeaders {
                    limit: Some(5),
                    remaining: Some(0),
                    reset_after: Some(ms(1250)),
                    bucket: Some("abcd1234".into()),
                    ..RateHeaders::default()
                },
            ),
            (
                &[("X-RateLimit-Global", "true"), ("X-RateLimit-Scope", "Global"), ("Retry-After", "65")],
                RateHeaders {
                    global: true,
                    scope: Some("global".into()),
                    retry_after: Some(Duration::from_secs(65)),
                    ..RateHeaders::default()
                },
            ),
            // Nonsense is no information; a pause is never negative nor longer than an hour.
            (
                &[
                    ("x-ratelimit-remaining", "-1"),
                    ("x-ratelimit-reset-after", "NaN"),
                    ("retry-after", "99999"),
                    ("x-ratelimit-bucket", ""),
                    ("x-ratelimit-global", "yes"),
                ],
                RateHeaders { retry_after: Some(MAX_PAUSE), ..RateHeaders::default() },
            ),
            (
                &[("x-ratelimit-reset-after", "-3")],
                RateHeaders { reset_after: Some(Duration::ZERO), ..RateHeaders::default() },
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(RateHeaders::read(&headers(pairs)), expected, "{pairs:?}");
        }
    }

    #[test]
    fn a_429_is_read_from_its_body_first() {
        let s = Duration::from_secs_f64;
        let retry = |secs| RateHeaders { retry_after: Some(Duration::from_secs(secs)), ..RateHeaders::default() };
        let scope = |s: &str| RateHeaders { scope: Some(s.into()), ..RateHeaders::default() };
        let cases = vec![
            (
                RateHeaders::default(),
                json!({"retry_after": 0.5, "global": false}),
                Limited { retry_after: s(0.5), global: false },
            ),
            (retry(3), json!({"retry_after": 2.25}), Limited { retry_after: s(2.25), global: false }),
            (retry(3), json!({"retry_after": "soon"}), Limited { retry_after: s(3.0), global: false }),
            (RateHeaders::default(), json!(null), Limited { retry_after: s(1.0), global: false }),
            (
                RateHeaders::default(),
                json!({"retry_after": 30.0, "global": true}),
                Limited { retry_after: s(30.0), global: true },
            ),
            (scope("global"), json!({"retry_after": 1}), Limited { retry_after: s(1.0), global: true }),
            (scope("shared"), json!({"retry_after": 1}), Limited { retry_after: s(1.0), global: false }),
            (
                RateHeaders { global: true, ..RateHeaders::default() },
                json!({"retry_after": 4}),
                Limited { retry_after: s(4.0), global: true },
            ),
        ];
        for (headers, body, expected) in cases {
            assert_eq!(Limited::of(&headers, &body), expected, "{headers:?} {body}");
        }
    }

    #[test]
    fn the_gate_sends_waits_or_refuses() {
        let now = Instant::now();
        let s = Duration::from_secs;
        let max = Duration::from_secs(2);
        let bucket = |remaining, reset_in: u64| Bucket { remaining, reset_at: now + s(reset_in) };
        let cases: Vec<(Option<Bucket>, Option<Instant>, Gate)> = vec![
            (None, None, Gate::Send),
            (Some(bucket(3, 5)), None, Gate::Send),
            (Some(bucket(0, 1)), None, Gate::Wait(s(1))),
            (Some(bucket(0, 2)), None, Gate::Wait(s(2))),
            (Some(bucket(0, 5)), None, Gate::Refuse(s(5))),
            // A reset in the past: the bucket is full again.
            (Some(Bucket { remaining: 0, reset_at: now - Duration::from_millis(1) }), None, Gate::Send),
            (None, Some(now + s(1)), Gate::Wait(s(1))),
            (None, Some(now + s(30)), Gate::Refuse(s(30))),
            (None, Some(now - s(1)), Gate::Send),
            // The longer of the two limits counts.
            (Some(bucket(0, 1)), Some(now + s(2)), Gate::Wait(s(2))),
            (Some(bucket(0, 9)), Some(now + s(1)), Gate::Refuse(s(9))),
            (Some(bucket(4, 9)), Some(now + s(9)), Gate::Refuse(s(9))),
        ];
        for (bucket, global, expected) in cases {
            assert_eq!(gate(bucket.as_ref(), global, now, max), expected, "{bucket:?} {global:?}");
        }
    }

    fn channel(id: u64) -> RateKey {
        RateKey::of(&Route::ChannelMessages { channel_id: ChannelId::new(id) }, LightMethod::Post)
    }

    #[test]
    fn keys_are_the_route_and_its_major_parameter() {
        assert_eq!(
            channel(111),
            RateKey { route: "POST /channels/{channel}/messages".into(), major: "channel:111".into(), global: true }
        );
        let edit = RateKey::of(
            &Route::ChannelMessage { channel_id: ChannelId::new(111), message_id: MessageId::new(5) },
            LightMethod::Patch,
        );
        assert_eq!(edit.major, "channel:111");
        assert_eq!(edit.route, "PATCH /channels/{channel}/messages/{message}");
        let original = |token| {
            RateKey::of(
                &Route::WebhookOriginalInteractionResponse { application_id: ApplicationId::new(9), token },
                LightMethod::Patch,
            )
        };
        let (a, b) = (original("token-a"), original("token-b"));
        assert_ne!(a.major, b.major, "each interaction token is its own webhook");
        assert!(a.major.starts_with("webhook:9:") && !a.major.contains("token-a"), "{}", a.major);
        assert!(!a.global, "interaction webhooks are not bound to the global limit");
    }

    #[test]
    fn the_limiter_keeps_buckets_per_major_and_learns_bucket_ids() {
        let limiter = Limiter::default();
        let now = Instant::now();
        let max = Duration::from_secs(2);
        let exhausted = RateHeaders {
            remaining: Some(0),
            reset_after: Some(Duration::from_secs(5)),
            bucket: Some("b1".into()),
            ..RateHeaders::default()
        };
        limiter.record(&channel(1), &exhausted, None, now);
        assert_eq!(limiter.gate(&channel(1), now, max), Gate::Refuse(Duration::from_secs(5)));
        assert_eq!(limiter.gate(&channel(2), now, max), Gate::Send, "another channel has its own count");
        assert_eq!(limiter.gate(&channel(1), now + Duration::from_secs(5), max), Gate::Send);
        // A later answer with requests left replaces the state.
        let left = RateHeaders { remaining: Some(4), reset_after: Some(Duration::from_secs(5)), ..exhausted.clone() };
        limiter.record(&channel(1), &left, None, now);
        assert_eq!(limiter.gate(&channel(1), now, max), Gate::Send);
        // A 429 without headers exhausts the bucket for its retry_after.
        let limited = Limited { retry_after: Duration::from_millis(500), global: false };
        limiter.record(&channel(3), &RateHeaders::default(), Some(limited), now);
        assert_eq!(limiter.gate(&channel(3), now, max), Gate::Wait(Duration::from_millis(500)));
        // A state learnt before the bucket id was known moves to the bucket.
        limiter.record(&channel(3), &RateHeaders { bucket: Some("b1".into()), ..RateHeaders::default() }, None, now);
        assert_eq!(limiter.gate(&channel(3), now, max), Gate::Wait(Duration::from_millis(500)));
    }

    #[test]
    fn a_global_limit_holds_back_every_bot_route_but_not_interaction_webhooks() {
        let limiter = Limiter::default();
        let now = Instant::now();
        let max = Duration::from_secs(2);
        let global = Limited { retry_after: Duration::from_secs(30), global: true };
        limiter.record(&channel(1), &RateHeaders::default(), Some(global), now);
        assert_eq!(limiter.gate(&channel(2), now, max), Gate::Refuse(Duration::from_secs(30)));
        let dm = RateKey::of(&Route::UserMeDmChannels, LightMethod::Post);
        assert_eq!(limiter.gate(&dm, now, max), Gate::Refuse(Duration::from_secs(30)));
        let webhook = RateKey::of(
            &Route::WebhookFollowupMessages { application_id: ApplicationId::new(9), token: "t" },
            LightMethod::Post,
        );
        assert_eq!(limiter.gate(&webhook, now, max), Gate::Send);
        assert_eq!(limiter.gate(&channel(2), now + Duration::from_secs(30), max), Gate::Send);
    }

    #[tokio::test]
    async fn idle_turns_are_dropped() {
        let limiter = Limiter::default();
        let held = limiter.turn(&channel(1)).await;
        for id in 2..=(MAX_ENTRIES as u64 + 10) {
            drop(limiter.turn(&channel(id)).await);
        }
        assert!(limiter.turns_held() <= MAX_ENTRIES, "{}", limiter.turns_held());
        // The turn held is kept: a second request on its channel must wait for it.
        let again = tokio::time::timeout(Duration::from_millis(50), limiter.turn(&channel(1))).await;
        assert!(again.is_err(), "two turns at once on one channel");
        drop(held);
        assert!(tokio::time::timeout(Duration::from_millis(50), limiter.turn(&channel(1))).await.is_ok());
    }
}
