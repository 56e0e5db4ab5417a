//! Incidents through their ports: an observation from a delivery becomes one Discord message per
//! failure streak (posted, edited, resolved with one reply), the tick escalates and calms, and the
//! buttons (re-run, acknowledge, mute, unmute) act on the stored incident, never on what a custom
//! id claims. Every decision is [`valine_domain::incident::decide`]'s; this module carries it out.
//!
//! Store calls: an incident costs one conditional write per delivery (its state is cached: an
//! ordering key only grows, so a cached "older or equal" is final, and the write's version check
//! catches anything else). A delivery reads the incidents it is about to update together with its
//! own record ([`IncidentDesk::prime`]), and its last write records it done
//! ([`IncidentDesk::observe_delivery`]), so the read and the record cost no call of their own.
//!
//! The desk is here; what it does is one module per reason to change: `cache` (what this
//! container knows of each incident), `observe` (a delivery or a check becomes a message),
//! `tick`, `press` (the buttons) and `list` (`/incidents`, `/mutes`).

mod cache;
mod list;
mod observe;
mod press;
pub mod send;
mod tick;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::alerting::Destination;
use crate::deadline::Deadline;
use valine_clients::discord_api::{Discord, DiscordError};
use valine_clients::github_api::{GitHub, first_failed_job};
use valine_domain::audit::{AuditRecord, AuditResult};
use valine_domain::authz::{Caller, authorize_responder};
use valine_domain::clock::now_secs;
use valine_domain::config::Config;
use valine_domain::custom_id::{CustomId, MuteFor};
use valine_domain::incident::{
    self, Action, FailureDetail, Incident, MessageRef, Mute, Observation, Outcome, Policy, Stamp,
};
use valine_domain::markdown::escape_markdown as text;
use valine_domain::message::{ButtonStyle, Component, Message};
use valine_domain::metrics::{AlertMetric, Metrics};
use valine_domain::repo::RepoName;
use valine_store::{AuditLog, IncidentRepo, IncidentWrite, StoreError, StoreResult};

/// The longest one store call of the incident path may take.
const STORE_BUDGET: Duration = Duration::from_millis(1600);
/// How long posting or editing may take, a rate-limit wait included.
const POST_BUDGET: Duration = Duration::from_secs(4);
/// How long the first failure waits for its job, step and log tail before posting without them.
const DETAIL_WAIT: Duration = Duration::from_millis(2500);
/// Kept back from the deadline for the writes after a post.
const RESERVE: Duration = Duration::from_millis(1800);
/// Concurrent writers on one incident: decide again at most this often (each conflict answers
/// with the stored version, so a retry costs one write; the burst puts ~4 writers on one key).
const ATTEMPTS: usize = 8;
/// Why a delivery changed nothing: another attempt at it finished first.
pub const ALREADY_DONE: &str = "the delivery was handled by another attempt";
/// A re-run asked within this long is not asked again by a second press.
const RERUN_GUARD_SECS: u64 = 60;

/// The incident settings of section 6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentSettings {
    pub destination: Destination,
    pub policy: Policy,
    pub escalate_minutes: u64,
    pub users: Vec<(String, u64)>,
}

impl IncidentSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            destination: Destination::from_config(config),
            policy: Policy { flap_count: config.alert_flap_count, flap_minutes: config.alert_flap_minutes },
            escalate_minutes: config.alert_escalate_minutes,
            users: config.github_discord_users.clone(),
        }
    }
}

/// What one observation came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// A gate is closed (`Alert skipped`): nothing read or written.
    Skipped { reason: &'static str },
    /// Older, equal or neutral: nothing changed.
    Nothing { reason: &'static str },
    /// The state changed; nothing to post (a success with no incident open, say).
    Recorded,
    /// The first failure of a streak: one message.
    Posted { message_id: u64 },
    /// A later failure, or flapping: the message edited.
    Edited,
    /// A newer success: the message edited to resolved and one reply.
    Resolved,
    /// A failure of a muted incident: tracked, nothing posted.
    Muted,
    /// A failure re-run once (`AUTO_RETRY`): nothing posted while the re-run runs.
    Retrying,
    /// Recorded with what its card must show, which Discord did not take yet (rate limited,
    /// slow, down): the outbox sends it.
    Queued,
    /// Something failed. `posted`: a message went out although its state could not be written, so
    /// a redelivery might post it again. `store`: the store failed (an internal alert is due).
    Failed { error: String, posted: bool, store: bool },
}

impl Observed {
    pub fn as_str(&self) -> &'static str {
        match self {
            Observed::Skipped { .. } => "skipped",
            Observed::Nothing { .. } => "nothing",
            Observed::Recorded => "recorded",
            Observed::Posted { .. } => "sent",
            Observed::Edited => "edited",
            Observed::Resolved => "resolved",
            Observed::Muted => "muted",
            Observed::Retrying => "retrying",
            Observed::Queued => "queued",
            Observed::Failed { .. } => "failed",
        }
    }
}

/// What a tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    pub open: usize,
    pub escalated: usize,
    pub calmed: usize,
    /// Failed deliveries GitHub was asked to send again (gap filling).
    pub redelivered: usize,
    /// Completed runs whose outcome had not reached their incident (gap filling).
    pub repaired: usize,
    /// `VERIFY_URLS` endpoints checked, and how many failed their check.
    pub checked: usize,
    pub unhealthy: usize,
    /// Cards the tick's drain sent, and those still waiting after it.
    pub outbox_sent: usize,
    pub outbox_left: usize,
    pub errors: Vec<String>,
}

/// The outcome of a button press, for the Discord side to answer with (always ephemeral).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PressOutcome {
    /// Not an admin nor a responder: refused, audited `blocked`.
    Refused(String),
    /// No such incident (an unknown or malformed id): nothing changed.
    Unknown,
    /// The incident (this streak of it) is resolved: nothing changed.
    NotOpen,
    /// Done; the text says what.
    Done(String),
    /// Already done by someone (a second press): nothing changed.
    Already(String),
    /// It could not be done; the text says why.
    Failed(String),
}

impl PressOutcome {
    /// The ephemeral answer to the press.
    pub fn reply(&self) -> Message {
        let text = match self {
            PressOutcome::Refused(why) => format!("⛔ {why}"),
            PressOutcome::Unknown => "This incident is unknown (or was forgotten); nothing was done.".to_string(),
            PressOutcome::NotOpen => "This incident is resolved; nothing was done.".to_string(),
            PressOutcome::Done(what) => format!("✅ {what}"),
            PressOutcome::Already(what) => format!("ℹ️ {what}"),
            PressOutcome::Failed(why) => format!("⚠️ {why}"),
        };
        Message::text(text).ephemeral()
    }

    pub fn audit_result(&self) -> AuditResult {
        match self {
            PressOutcome::Done(_) | PressOutcome::Already(_) => AuditResult::Posted,
            PressOutcome::Refused(_) | PressOutcome::Unknown | PressOutcome::NotOpen => AuditResult::Blocked,
            PressOutcome::Failed(_) => AuditResult::Failed,
        }
    }
}

/// Incidents, through their ports.
#[derive(Clone)]
pub struct IncidentDesk {
    settings: IncidentSettings,
    config: Arc<Config>,
    repo: Arc<dyn IncidentRepo>,
    audit: Arc<dyn AuditLog>,
    discord: Arc<dyn Discord>,
    github: Option<Arc<dyn GitHub>>,
    metrics: Metrics,
    /// Incidents as this container last wrote or read them.
    cache: Arc<cache::IncidentCache>,
    /// The cards with something unsent.
    outbox: Arc<dyn valine_store::OutboxRepo>,
    /// The fingerprint ledger: where each failure signature was seen.
    signatures: Arc<dyn valine_store::SignatureLedger>,
    /// This container, as the holder of the cards it sends (each send's claim is this and a count).
    sender: String,
    claims: Arc<std::sync::atomic::AtomicU64>,
    /// Whether this container knows of something left in the outbox.
    pending: Arc<std::sync::atomic::AtomicBool>,
    /// Called when something is left in the outbox (the handler starts a drain).
    on_pending: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for IncidentDesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncidentDesk").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// `call` within `budget` and `deadline`; no answer in time is `Unavailable`.
async fn within<T>(deadline: Deadline, budget: Duration, call: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
    deadline.within(budget).run(call).await.unwrap_or_else(|| Err(StoreError::Unavailable("no answer in time".into())))
}

fn discord_budget(deadline: Deadline) -> Duration {
    let left = deadline.left();
    left.saturating_sub(RESERVE.min(left / 3)).min(POST_BUDGET)
}

async fn discord_call<T>(
    deadline: Deadline,
    call: impl Future<Output = Result<T, DiscordError>>,
) -> Result<T, DiscordError> {
    tokio::time::timeout(discord_budget(deadline), call).await.unwrap_or(Err(DiscordError::Timeout))
}

impl IncidentDesk {
    pub fn new(
        config: Arc<Config>,
        stores: &valine_store::Stores,
        discord: Arc<dyn Discord>,
        github: Option<Arc<dyn GitHub>>,
        metrics: Metrics,
    ) -> Self {
        Self {
            settings: IncidentSettings::from_config(&config),
            config,
            repo: stores.incidents.clone(),
            outbox: stores.outbox.clone(),
            signatures: stores.signatures.clone(),
            sender: uuid::Uuid::new_v4().simple().to_string(),
            claims: Arc::default(),
            pending: Arc::default(),
            on_pending: None,
            audit: stores.audit.clone(),
            discord,
            github,
            metrics,
            cache: Arc::default(),
        }
    }

    /// The same desk, calling `poke` whenever something is left in the outbox (to start a drain).
    pub fn on_pending(mut self, poke: Arc<dyn Fn() + Send + Sync>) -> Self {
        self.on_pending = Some(poke);
        self
    }

    pub fn settings(&self) -> &IncidentSettings {
        &self.settings
    }

    /// The channel incidents go to, or why there is none (logged as `Alert skipped`).
    pub fn channel(&self, key: &str) -> Result<u64, &'static str> {
        let reason = match self.settings.destination.gate() {
            Ok(channel) => return Ok(channel),
            Err(reason) => reason,
        };
        tracing::info!(alert_key = key, reason, "Alert skipped");
        self.metrics.alert(AlertMetric::Skipped);
        Err(reason)
    }

    /// The gates for a routed channel (`None`: the implicit route without `ALERT_CHANNEL_ID`):
    /// alerts on, somewhere to post, a way to post. Logged as `Alert skipped` when closed.
    pub fn gate(&self, key: &str, channel: Option<u64>) -> Result<u64, &'static str> {
        let destination = Destination { channel_id: channel, ..self.settings.destination.clone() };
        let reason = match destination.gate() {
            Ok(channel) => return Ok(channel),
            Err(reason) => reason,
        };
        tracing::info!(alert_key = key, reason, "Alert skipped");
        self.metrics.alert(AlertMetric::Skipped);
        Err(reason)
    }

    /// One compact line for a completed run in a channel routed `all-runs` (no incident of its
    /// own changed). Never pings.
    pub async fn post_line(&self, channel_id: u64, text: &str, deadline: Deadline) -> Result<u64, String> {
        let body = Message::text(text).to_json();
        match discord_call(deadline, self.discord.post_message(channel_id, &body)).await {
            Ok(posted) => Ok(posted.id),
            Err(e) => {
                tracing::warn!(channel_id, error = %e, "could not post the run's line");
                Err(e.to_string())
            }
        }
    }

    /// Which of `ids` a delivery reads with its record (see [`cache::IncidentCache::unknown`]).
    pub fn unknown(&self, ids: &[String]) -> Vec<String> {
        self.cache.unknown(ids)
    }

    /// What a delivery's read found for `asked` (see [`cache::IncidentCache::prime`]).
    pub fn prime(&self, asked: &[String], found: &[Incident]) {
        self.cache.prime(asked, found)
    }

    /// The channel of a route, quietly (no `Alert skipped` log): where its incident would live.
    pub fn route_channel(&self, channel: Option<u64>) -> Option<u64> {
        Destination { channel_id: channel, ..self.settings.destination.clone() }.gate().ok()
    }
}
