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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::alerting::Destination;
use crate::deadline::Deadline;
use valine_clients::discord_api::{Discord, DiscordError, PostedMessage};
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
/// Concurrent writers on one incident: decide again at most this often.
const ATTEMPTS: usize = 4;
/// Incidents kept in a container's memory.
const CACHE_SIZE: usize = 512;
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
    /// Incidents as this container last wrote or read them; `None`: known to have none stored.
    cache: Arc<Mutex<HashMap<String, Option<Incident>>>>,
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

/// The failing job and step of a run, and its log tail: two GitHub calls.
async fn fetch_detail(github: Arc<dyn GitHub>, repo: RepoName, run_id: u64, attempt: u64) -> Option<FailureDetail> {
    let jobs = match github.run_attempt_jobs(&repo, run_id, attempt).await {
        Ok(jobs) => jobs,
        Err(e) => {
            tracing::warn!(run_id, error = %e, "could not list the run's jobs; the incident goes without them");
            return None;
        }
    };
    let job = first_failed_job(&jobs)?;
    let mut detail = FailureDetail {
        job: Some(job.name.clone()),
        step: job.failed_step().map(|s| s.name.clone()),
        job_url: job.html_url.clone(),
        log_tail: None,
    };
    match github.job_log(&repo, job.id).await {
        Ok(log) => detail.log_tail = Some(incident::log_tail(&log)).filter(|t| !t.trim().is_empty()),
        Err(e) => tracing::warn!(run_id, job_id = job.id, error = %e, "could not read the job's log"),
    }
    Some(detail)
}

/// `{id}-{streak}` of a custom id.
fn split_streak_id(streak_id: &str) -> Option<(&str, u64)> {
    let (id, streak) = streak_id.rsplit_once('-')?;
    Some((id, streak.parse().ok()?))
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
            audit: stores.audit.clone(),
            discord,
            github,
            metrics,
            cache: Arc::default(),
        }
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

    fn cached(&self, id: &str) -> Option<Option<Incident>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    fn remember(&self, incident: &Incident) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_SIZE && !cache.contains_key(&incident.id) {
            cache.clear();
        }
        // Never replace a newer version with an older one (two tasks of one container).
        if cache.get(&incident.id).is_none_or(|c| c.as_ref().is_none_or(|c| c.version <= incident.version)) {
            cache.insert(incident.id.clone(), Some(incident.clone()));
        }
    }

    fn forget(&self, id: &str) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Which of `ids` a delivery reads with its record (which costs no call of its own): those
    /// this container holds no incident for. "None stored" is not trusted from an earlier read:
    /// another container may have opened it since, and acting on "none" would post a message
    /// only to delete it when the write finds the incident.
    pub fn unknown(&self, ids: &[String]) -> Vec<String> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        ids.iter().filter(|id| !matches!(cache.get(*id), Some(Some(_)))).cloned().collect()
    }

    /// What a delivery's read found for `asked`: the incidents in `found`, none for the rest.
    /// "None" is as safe to act on as a stale version: the write's condition catches both.
    pub fn prime(&self, asked: &[String], found: &[Incident]) {
        for incident in found {
            self.remember(incident);
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        for id in asked {
            // This delivery's read: fresh now, read again by the next delivery, and never over
            // an incident another task of this container wrote meanwhile.
            if !found.iter().any(|i| &i.id == id) && cache.len() < CACHE_SIZE && !matches!(cache.get(id), Some(Some(_)))
            {
                cache.insert(id.clone(), None);
            }
        }
    }

    /// The channel of a route, quietly (no `Alert skipped` log): where its incident would live.
    pub fn route_channel(&self, channel: Option<u64>) -> Option<u64> {
        Destination { channel_id: channel, ..self.settings.destination.clone() }.gate().ok()
    }

    /// Writes `next` over the version before it (with `done`, that delivery recorded done in the
    /// same write); remembers what is stored either way. A write whose answer was lost is looked
    /// for once: found as written, it is written.
    async fn put(&self, next: &Incident, done: Option<&str>, deadline: Deadline) -> StoreResult<IncidentWrite> {
        self.put_checked(next, done, deadline).await.0
    }

    /// [`Self::put`], and, when it failed, whether reading back showed it did not land (`true`)
    /// rather than nothing being known.
    async fn put_checked(
        &self,
        next: &Incident,
        done: Option<&str>,
        deadline: Deadline,
    ) -> (StoreResult<IncidentWrite>, bool) {
        let mut not_landed = false;
        let written = match within(deadline, STORE_BUDGET, self.repo.put_incident_with(next, done)).await {
            Err(e) if e.is_unavailable() && deadline.left() > RESERVE => {
                match within(deadline, STORE_BUDGET, self.repo.get_incident(&next.id)).await {
                    Ok(Some(stored)) if stored == *next => {
                        tracing::info!(incident = %next.streak_id(), "the incident write's answer was lost, but it landed");
                        Ok(IncidentWrite::Written)
                    }
                    Ok(_) => {
                        not_landed = true;
                        Err(e)
                    }
                    Err(_) => Err(e),
                }
            }
            other => other,
        };
        match &written {
            Ok(IncidentWrite::Written) => self.remember(next),
            Ok(IncidentWrite::Conflict(Some(stored))) => self.remember(stored),
            Ok(IncidentWrite::Conflict(None) | IncidentWrite::AlreadyDone) | Err(_) => self.forget(&next.id),
        }
        (written, not_landed)
    }

    /// Carries one observation through the incident model: decide, write over the version read,
    /// then post, edit or reply. Keeps to `deadline`.
    pub async fn observe(&self, obs: &Observation, deadline: Deadline) -> Observed {
        self.observe_routed(obs, None, deadline).await
    }

    /// [`Self::observe`] for a route that mentions `mention_role` when an incident opens.
    pub async fn observe_routed(&self, obs: &Observation, mention_role: Option<u64>, deadline: Deadline) -> Observed {
        self.observe_delivery(obs, mention_role, None, deadline).await.0
    }

    /// [`Self::observe_routed`] as the last step of the delivery `done`: its first incident
    /// write records the delivery done too. The flag says what became of that record:
    /// `Some(true)` written with the incident, `Some(false)` found written by another attempt at
    /// the same delivery (nothing done here, any message of this attempt deleted), `None` not
    /// written (no write happened, or none was asked).
    pub async fn observe_delivery(
        &self,
        obs: &Observation,
        mention_role: Option<u64>,
        mut done: Option<&str>,
        deadline: Deadline,
    ) -> (Observed, Option<bool>) {
        let id = obs.key.id();
        let alert_key = obs.key.canonical().replace('\u{1f}', "|");
        let now = now_secs();
        let mut current = match self.cached(&id) {
            Some(c) => c,
            None => match within(deadline, STORE_BUDGET, self.repo.get_incident(&id)).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(alert_key = %alert_key, error = %e, "Alert failed: the incident could not be read");
                    self.metrics.alert(AlertMetric::Failed);
                    return (Observed::Failed { error: e.to_string(), posted: false, store: true }, None);
                }
            },
        };
        let mut detail_task: Option<JoinHandle<Option<FailureDetail>>> = None;
        let mut detail: Option<FailureDetail> = None;
        // A message this delivery posted before losing the write to another container.
        let mut orphan: Option<PostedMessage> = None;
        for _ in 0..ATTEMPTS {
            let decision = incident::decide(current.as_ref(), obs, now, self.settings.policy);
            let Some(mut next) = decision.next else {
                self.discard(orphan.take(), deadline).await;
                let Action::Nothing(reason) = decision.action else {
                    return (Observed::Nothing { reason: "no change" }, None);
                };
                tracing::info!(alert_key = %alert_key, reason, "incident unchanged");
                return (Observed::Nothing { reason }, None);
            };
            let shows_failure =
                obs.outcome == Outcome::Failure && matches!(decision.action, Action::Post | Action::Edit);
            if shows_failure && detail.is_none() {
                if detail_task.is_none() {
                    detail_task = self.start_detail(obs);
                }
                if let Some(task) = detail_task.as_mut() {
                    let wait = DETAIL_WAIT.min(deadline.left() / 3);
                    if let Ok(joined) = tokio::time::timeout(wait, &mut *task).await {
                        detail = joined.ok().flatten();
                        detail_task = None;
                    }
                }
            }
            if let Some(d) = &detail {
                attach_detail(&mut next, obs, d);
            }
            match decision.action {
                Action::Post => {
                    next.mentioned = incident::culprits(&obs.run, &self.settings.users);
                    next.mention_role = mention_role;
                    let body = incident::render(&next, now).to_json();
                    let posted = match orphan.take() {
                        // Ours from the lost round: edit it rather than post again.
                        Some(mine) => {
                            let _ = discord_call(deadline, self.discord.edit_message(mine.channel_id, mine.id, &body))
                                .await;
                            Ok(mine)
                        }
                        None => discord_call(deadline, self.discord.post_message(obs.key.channel_id, &body)).await,
                    };
                    let posted = match posted {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::error!(alert_key = %alert_key, error = %e, "Alert failed");
                            self.metrics.alert(AlertMetric::Failed);
                            return (Observed::Failed { error: e.to_string(), posted: false, store: false }, None);
                        }
                    };
                    next.message = Some(MessageRef {
                        channel_id: posted.channel_id,
                        message_id: posted.id,
                        posted_at: now_secs(),
                        guild_id: posted.guild_id,
                    });
                    let (written, not_landed) = self.put_checked(&next, done, deadline).await;
                    match written {
                        Ok(IncidentWrite::Written) => {
                            tracing::info!(alert_key = %alert_key, incident = %next.streak_id(), message_id = posted.id, "Alert sent");
                            self.metrics.alert(AlertMetric::Sent);
                            let recorded = done.take().map(|_| true);
                            self.late_detail(next, obs, detail_task, deadline).await;
                            return (Observed::Posted { message_id: posted.id }, recorded);
                        }
                        Ok(IncidentWrite::Conflict(stored)) => {
                            orphan = Some(posted);
                            current = stored.map(|b| *b);
                        }
                        Ok(IncidentWrite::AlreadyDone) => {
                            self.discard(Some(posted), deadline).await;
                            return (Observed::Nothing { reason: ALREADY_DONE }, Some(false));
                        }
                        Err(e) if not_landed => {
                            // Read back: not written. A message its incident does not know would
                            // never be edited or resolved: it is taken back, for a redelivery.
                            tracing::error!(alert_key = %alert_key, error = %e, "Alert failed: the incident could not be written; its message is taken back");
                            self.metrics.alert(AlertMetric::Failed);
                            self.discard(Some(posted), deadline).await;
                            return (Observed::Failed { error: e.to_string(), posted: false, store: true }, None);
                        }
                        Err(e) => {
                            tracing::error!(alert_key = %alert_key, error = %e, "the incident message is out but its state was not written");
                            self.metrics.alert(AlertMetric::Sent);
                            return (Observed::Failed { error: e.to_string(), posted: true, store: true }, None);
                        }
                    }
                }
                action => match self.put(&next, done, deadline).await {
                    Ok(IncidentWrite::Written) => {
                        let recorded = done.take().map(|_| true);
                        self.discard(orphan.take(), deadline).await;
                        let observed = self.carry_out(&action, &next, &alert_key, now, deadline).await;
                        if matches!(observed, Observed::Edited) {
                            self.late_detail(next, obs, detail_task, deadline).await;
                        }
                        return (observed, recorded);
                    }
                    Ok(IncidentWrite::Conflict(stored)) => current = stored.map(|b| *b),
                    Ok(IncidentWrite::AlreadyDone) => {
                        self.discard(orphan.take(), deadline).await;
                        return (Observed::Nothing { reason: ALREADY_DONE }, Some(false));
                    }
                    Err(e) => {
                        self.discard(orphan.take(), deadline).await;
                        tracing::error!(alert_key = %alert_key, error = %e, "Alert failed: the incident could not be written");
                        self.metrics.alert(AlertMetric::Failed);
                        return (Observed::Failed { error: e.to_string(), posted: false, store: true }, None);
                    }
                },
            }
        }
        self.discard(orphan.take(), deadline).await;
        let failed = Observed::Failed {
            error: "the incident kept changing under this delivery; redeliver it".into(),
            posted: false,
            store: false,
        };
        (failed, None)
    }

    /// The effects of a written decision other than a first post.
    async fn carry_out(
        &self,
        action: &Action,
        next: &Incident,
        alert_key: &str,
        now: u64,
        deadline: Deadline,
    ) -> Observed {
        let Some(message) = next.message else {
            if *action == Action::Muted {
                tracing::info!(alert_key, incident = %next.streak_id(), "Alert muted");
                self.metrics.alert(AlertMetric::Suppressed);
                return Observed::Muted;
            }
            return Observed::Recorded;
        };
        match action {
            Action::Muted => {
                tracing::info!(alert_key, incident = %next.streak_id(), "Alert muted");
                self.metrics.alert(AlertMetric::Suppressed);
                // Still shown as it is (count, latest run), without a ping.
                let _ = self.edit(next, message, now, deadline).await;
                Observed::Muted
            }
            Action::Edit => {
                if let Err(e) = self.edit(next, message, now, deadline).await {
                    return Observed::Failed {
                        error: format!("the incident is recorded but its message could not be edited: {e}"),
                        posted: true,
                        store: false,
                    };
                }
                tracing::info!(alert_key, incident = %next.streak_id(), failures = next.failures, "Alert updated");
                Observed::Edited
            }
            Action::Resolve => {
                let edited = self.edit(next, message, now, deadline).await;
                let reply = incident::resolved_reply(next).to_json();
                let replied =
                    discord_call(deadline, self.discord.reply(message.channel_id, message.message_id, &reply)).await;
                match (edited, replied) {
                    (Ok(()), Ok(_)) => {
                        tracing::info!(alert_key, incident = %next.streak_id(), "Alert resolved");
                        self.metrics.alert(AlertMetric::Sent);
                        Observed::Resolved
                    }
                    (e1, e2) => {
                        let error =
                            [e1.err(), e2.err()].into_iter().flatten().map(|e| e.to_string()).collect::<Vec<_>>();
                        tracing::error!(alert_key, error = %error.join("; "), "Alert failed: the resolve was recorded but not all of it was shown");
                        self.metrics.alert(AlertMetric::Failed);
                        Observed::Failed { error: error.join("; "), posted: true, store: false }
                    }
                }
            }
            Action::Record | Action::Nothing(_) | Action::Post => Observed::Recorded,
        }
    }

    async fn edit(
        &self,
        next: &Incident,
        message: MessageRef,
        now: u64,
        deadline: Deadline,
    ) -> Result<(), DiscordError> {
        let body = incident::render(next, now).to_json();
        let edited =
            discord_call(deadline, self.discord.edit_message(message.channel_id, message.message_id, &body)).await;
        if let Err(e) = &edited {
            tracing::warn!(incident = %next.streak_id(), error = %e, "could not edit the incident message");
        }
        edited
    }

    /// Deletes a message this delivery posted for a streak another container posted first.
    async fn discard(&self, orphan: Option<PostedMessage>, deadline: Deadline) {
        if let Some(m) = orphan
            && let Err(e) = discord_call(deadline, self.discord.delete_message(m.channel_id, m.id)).await
        {
            tracing::warn!(message_id = m.id, error = %e, "could not delete a duplicate incident message");
        }
    }

    fn start_detail(&self, obs: &Observation) -> Option<JoinHandle<Option<FailureDetail>>> {
        let github = self.github.clone()?;
        if obs.run.run_id == 0 {
            return None;
        }
        let repo: RepoName = obs.key.repository.parse().ok()?;
        let (run_id, attempt) = (obs.run.run_id, obs.run.attempt.max(1));
        Some(tokio::spawn(fetch_detail(github, repo, run_id, attempt)))
    }

    /// GitHub was slow: the message went out without the failing job; add it if it comes within
    /// the delivery's budget (an edit and one more write).
    async fn late_detail(
        &self,
        written: Incident,
        obs: &Observation,
        task: Option<JoinHandle<Option<FailureDetail>>>,
        deadline: Deadline,
    ) {
        let Some(task) = task else { return };
        let wait = deadline.left().saturating_sub(RESERVE);
        let Ok(Ok(Some(detail))) = tokio::time::timeout(wait, task).await else {
            tracing::info!(incident = %written.streak_id(), "the failing job is not known in time; the message goes without it");
            return;
        };
        let mut next = written.next_version(now_secs());
        attach_detail(&mut next, obs, &detail);
        if let (Ok(IncidentWrite::Written), Some(message)) = (self.put(&next, None, deadline).await, next.message) {
            let _ = self.edit(&next, message, now_secs(), deadline).await;
        }
    }

    /// The scheduled tick: escalates open, unacknowledged incidents past `ALERT_ESCALATE_MINUTES`
    /// (one reply mentioning `ALERT_MENTION_ROLE_ID`), and resolves flapping ones that calmed.
    pub async fn tick(&self, now: u64, deadline: Deadline) -> TickReport {
        let mut report = TickReport::default();
        if self.channel("tick").is_err() {
            return report;
        }
        let all = match within(deadline, STORE_BUDGET, self.repo.list_incidents(valine_store::MAX_LIST)).await {
            Ok(all) => all,
            Err(e) => {
                tracing::error!(error = %e, "tick: could not list incidents");
                report.errors.push(e.to_string());
                return report;
            }
        };
        for inc in all.into_iter().filter(|i| i.open) {
            report.open += 1;
            if let Some(decision) = incident::calm(&inc, now, self.settings.policy)
                && let Some(next) = decision.next
            {
                match self.put(&next, None, deadline).await {
                    Ok(IncidentWrite::Written) => {
                        report.calmed += 1;
                        let key = inc.key.canonical().replace('\u{1f}', "|");
                        let _ = self.carry_out(&decision.action, &next, &key, now, deadline).await;
                    }
                    // Another writer got there first (no delivery is named: never `AlreadyDone`).
                    Ok(IncidentWrite::Conflict(_) | IncidentWrite::AlreadyDone) => {}
                    Err(e) => report.errors.push(e.to_string()),
                }
                continue;
            }
            if !incident::needs_escalation(&inc, now, self.settings.escalate_minutes) {
                continue;
            }
            let Some(message) = inc.message else { continue };
            let mut next = inc.next_version(now);
            next.escalated_at = Some(now);
            // Written first: of two ticks at once, one escalates.
            match self.put(&next, None, deadline).await {
                Ok(IncidentWrite::Written) => {
                    let body = incident::escalation_reply(
                        &next,
                        next.mention_role.or(self.settings.destination.mention_role_id),
                        now,
                    )
                    .to_json();
                    match discord_call(deadline, self.discord.reply(message.channel_id, message.message_id, &body))
                        .await
                    {
                        Ok(_) => {
                            tracing::info!(incident = %next.streak_id(), "Alert escalated");
                            report.escalated += 1;
                        }
                        Err(e) => {
                            tracing::error!(incident = %next.streak_id(), error = %e, "Alert failed: escalation");
                            report.errors.push(e.to_string());
                        }
                    }
                }
                Ok(IncidentWrite::Conflict(_) | IncidentWrite::AlreadyDone) => {}
                Err(e) => report.errors.push(e.to_string()),
            }
        }
        tracing::info!(
            open = report.open,
            escalated = report.escalated,
            calmed = report.calmed,
            errors = report.errors.len(),
            "tick done"
        );
        report
    }

    /// A press of an incident button (`custom_id` already parsed), by `caller`: authorized, checked
    /// against the store, carried out, audited, and answered with a typed outcome.
    pub async fn press(&self, id: &CustomId, caller: Caller<'_>, trace_id: &str, deadline: Deadline) -> PressOutcome {
        let command = match id {
            CustomId::IncidentRerun(_) => "incident.rerun",
            CustomId::IncidentAck(_) => "incident.ack",
            CustomId::IncidentMute(..) => "incident.mute",
            CustomId::IncidentUnmute(_) => "incident.unmute",
            CustomId::Confirm(_) | CustomId::Cancel(_) => return PressOutcome::Unknown,
        };
        let outcome = match authorize_responder(caller, &self.config) {
            Err(refusal) => PressOutcome::Refused(refusal.to_string()),
            Ok(()) => self.act(id, caller.user_id, deadline).await,
        };
        let mut record = AuditRecord::new(trace_id, caller.user_id, command, outcome.audit_result())
            .meta("incident", id.id())
            .meta("outcome", format!("{outcome:?}"));
        if let CustomId::IncidentMute(_, Some(d)) = id {
            record = record.meta("duration", d.code());
        }
        if let Err(e) = within(deadline, STORE_BUDGET, self.audit.append(&record)).await {
            tracing::error!(audit_id = %record.audit_id, command, error = %e, "could not write the audit record of an incident press");
        }
        tracing::info!(
            command,
            user_id = caller.user_id,
            incident = id.id(),
            result = record.result.as_str(),
            "incident press"
        );
        outcome
    }

    /// Re-runs the failed jobs of the incident's latest failing run.
    pub async fn rerun(&self, streak_id: &str, caller: Caller<'_>, trace_id: &str, deadline: Deadline) -> PressOutcome {
        self.press(&CustomId::IncidentRerun(streak_id.into()), caller, trace_id, deadline).await
    }

    pub async fn acknowledge(
        &self,
        streak_id: &str,
        caller: Caller<'_>,
        trace_id: &str,
        deadline: Deadline,
    ) -> PressOutcome {
        self.press(&CustomId::IncidentAck(streak_id.into()), caller, trace_id, deadline).await
    }

    pub async fn mute(
        &self,
        streak_id: &str,
        duration: MuteFor,
        caller: Caller<'_>,
        trace_id: &str,
        deadline: Deadline,
    ) -> PressOutcome {
        self.press(&CustomId::IncidentMute(streak_id.into(), Some(duration)), caller, trace_id, deadline).await
    }

    pub async fn unmute(
        &self,
        streak_id: &str,
        caller: Caller<'_>,
        trace_id: &str,
        deadline: Deadline,
    ) -> PressOutcome {
        self.press(&CustomId::IncidentUnmute(streak_id.into()), caller, trace_id, deadline).await
    }

    /// Changes the stored incident (read fresh, written over its version, again on a conflict),
    /// then shows the change in its message.
    async fn act(&self, id: &CustomId, user: u64, deadline: Deadline) -> PressOutcome {
        let Some((incident_id, streak)) = split_streak_id(id.id()) else { return PressOutcome::Unknown };
        let now = now_secs();
        let mut fresh = None;
        for _ in 0..ATTEMPTS {
            let current = match fresh.take() {
                Some(c) => c,
                None => match within(deadline, STORE_BUDGET, self.repo.get_incident(incident_id)).await {
                    Ok(Some(c)) => c,
                    Ok(None) => return PressOutcome::Unknown,
                    Err(e) => return PressOutcome::Failed(format!("the incident store is unavailable: {e}")),
                },
            };
            if current.streak != streak || !current.open {
                return if current.streak < streak { PressOutcome::Unknown } else { PressOutcome::NotOpen };
            }
            let mut next = current.next_version(now);
            let done = match id {
                CustomId::IncidentAck(_) => {
                    if let Some(a) = current.acked {
                        return PressOutcome::Already(format!("Already acknowledged by <@{}>.", a.user_id));
                    }
                    next.acked = Some(Stamp { user_id: user, at: now });
                    "Acknowledged: no escalation for this incident.".to_string()
                }
                CustomId::IncidentMute(_, duration) => {
                    let duration = duration.unwrap_or(MuteFor::Hours(1));
                    let until = match duration {
                        MuteFor::Hours(h) => Some(now + u64::from(h) * 3600),
                        MuteFor::UntilFixed => None,
                    };
                    next.mute = Some(Mute { by: user, at: now, until });
                    format!("Muted {}: its failures post nothing; it still resolves.", duration.label())
                }
                CustomId::IncidentUnmute(_) => {
                    if !current.muted(now) {
                        return PressOutcome::Already("This incident is not muted.".into());
                    }
                    next.mute = None;
                    "Unmuted.".to_string()
                }
                CustomId::IncidentRerun(_) => {
                    if let Some(r) = current.rerun
                        && now.saturating_sub(r.at) < RERUN_GUARD_SECS
                    {
                        return PressOutcome::Already(format!("A re-run was just requested by <@{}>.", r.user_id));
                    }
                    if self.github.is_none() {
                        return PressOutcome::Failed("GitHub is not configured: set GITHUB_TOKEN.".into());
                    }
                    next.rerun = Some(Stamp { user_id: user, at: now });
                    "Re-run of the failed jobs requested.".to_string()
                }
                CustomId::Confirm(_) | CustomId::Cancel(_) => return PressOutcome::Unknown,
            };
            match within(deadline, STORE_BUDGET, self.repo.put_incident(&next)).await {
                Ok(IncidentWrite::Written) => {
                    self.remember(&next);
                    if matches!(id, CustomId::IncidentRerun(_))
                        && let Err(why) = self.call_rerun(&next, deadline).await
                    {
                        // Give the guard back, so that another press can try again.
                        let mut undo = next.next_version(now_secs());
                        undo.rerun = current.rerun;
                        let _ = self.put(&undo, None, deadline).await;
                        return PressOutcome::Failed(why);
                    }
                    if let Some(message) = next.message {
                        let _ = self.edit(&next, message, now, deadline).await;
                    }
                    return PressOutcome::Done(done);
                }
                Ok(IncidentWrite::Conflict(Some(stored))) => fresh = Some(*stored),
                Ok(IncidentWrite::Conflict(None) | IncidentWrite::AlreadyDone) => return PressOutcome::Unknown,
                Err(e) => return PressOutcome::Failed(format!("the incident store is unavailable: {e}")),
            }
        }
        PressOutcome::Failed("the incident kept changing; press again".into())
    }

    async fn call_rerun(&self, incident: &Incident, deadline: Deadline) -> Result<(), String> {
        let github = self.github.as_ref().ok_or("GitHub is not configured: set GITHUB_TOKEN.")?;
        let run =
            incident.latest_failure.as_ref().filter(|r| r.run_id > 0).ok_or("this incident has no run to re-run")?;
        let repo: RepoName =
            incident.key.repository.parse().map_err(|_| "the incident's repository is not owner/name")?;
        match deadline.run(github.rerun_failed_jobs(&repo, run.run_id)).await {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(format!("GitHub refused the re-run: {e}")),
            None => Err("GitHub did not answer in time; press again".into()),
        }
    }

    /// Open incidents, most recently changed first.
    pub async fn open_incidents(&self) -> StoreResult<Vec<Incident>> {
        Ok(self.repo.list_incidents(valine_store::MAX_LIST).await?.into_iter().filter(|i| i.open).collect())
    }

    /// `/incidents`: the open incidents with links and state, ephemeral.
    pub async fn list_open(&self) -> StoreResult<Message> {
        let now = now_secs();
        let open = self.open_incidents().await?;
        if open.is_empty() {
            return Ok(Message::text("No open incidents. ✅").ephemeral());
        }
        let lines: Vec<String> = open
            .iter()
            .map(|i| {
                let mut state = vec![format!(
                    "{} failure(s) since {}",
                    i.failures,
                    valine_domain::clock::relative(i.opened_at, now)
                )];
                if i.flapping {
                    state.push("flapping".into());
                }
                if let Some(a) = i.acked {
                    state.push(format!("acknowledged by <@{}>", a.user_id));
                }
                if i.muted(now) {
                    state.push("muted".into());
                }
                let name = format!("{} on {} ({})", text(&i.key.name()), text(i.key.scope()), text(&i.key.repository));
                let name = match i.message {
                    Some(m) => format!("[{name}]({})", m.link()),
                    None => name,
                };
                format!("• {name}: {}", state.join(", "))
            })
            .collect();
        Ok(Message::text(format!("**Open incidents ({})**\n{}", open.len(), lines.join("\n"))).ephemeral())
    }

    /// `/mutes`: the active mutes, each with an Unmute button, ephemeral.
    pub async fn list_mutes(&self) -> StoreResult<Message> {
        let now = now_secs();
        let muted: Vec<Incident> = self
            .repo
            .list_incidents(valine_store::MAX_LIST)
            .await?
            .into_iter()
            .filter(|i| i.open && i.muted(now))
            .collect();
        if muted.is_empty() {
            return Ok(Message::text("No active mutes.").ephemeral());
        }
        let lines: Vec<String> = muted
            .iter()
            .filter_map(|i| {
                let m = i.mute?;
                let until = m.until.map_or_else(|| "until fixed".to_string(), |u| format!("until <t:{u}:f>"));
                Some(format!(
                    "• {} on {} ({}): muted by <@{}> {until}",
                    text(&i.key.name()),
                    text(i.key.scope()),
                    text(&i.key.repository),
                    m.by
                ))
            })
            .collect();
        let mut message =
            Message::text(format!("**Active mutes ({})**\n{}", muted.len(), lines.join("\n"))).ephemeral();
        let buttons: Vec<Component> = muted
            .iter()
            .take(valine_domain::message::MAX_ROWS * valine_domain::message::MAX_PER_ROW)
            .map(|i| {
                let label = format!("Unmute {} on {}", i.key.name(), i.key.scope());
                Component::button(label, ButtonStyle::Secondary, CustomId::IncidentUnmute(i.streak_id()).to_string())
            })
            .collect();
        for row in buttons.chunks(valine_domain::message::MAX_PER_ROW) {
            message = message.with_row(row.to_vec());
        }
        Ok(message)
    }
}

/// Puts the failing job and log tail on the run they belong to.
fn attach_detail(next: &mut Incident, obs: &Observation, detail: &FailureDetail) {
    for run in [next.latest_failure.as_mut(), next.first_failure.as_mut()].into_iter().flatten() {
        if run.order == obs.run.order {
            run.detail = Some(detail.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_ids_name_an_incident_and_a_streak_or_nothing() {
        assert_eq!(split_streak_id("f7d3348c25c5-3"), Some(("f7d3348c25c5", 3)));
        assert_eq!(split_streak_id("f7d3348c25c5"), None);
        assert_eq!(split_streak_id("f7d3348c25c5-x"), None);
        let repo_name = |repository: &str| repository.parse::<RepoName>().ok();
        assert_eq!(repo_name("acme/widget").map(|r| r.to_string()).as_deref(), Some("acme/widget"));
        assert!(repo_name("acme").is_none() && repo_name("/widget").is_none());
    }

    #[test]
    fn press_outcomes_map_to_audit_results_and_ephemeral_replies() {
        let cases = [
            (PressOutcome::Done("ok".into()), AuditResult::Posted),
            (PressOutcome::Already("ok".into()), AuditResult::Posted),
            (PressOutcome::Refused("no".into()), AuditResult::Blocked),
            (PressOutcome::Unknown, AuditResult::Blocked),
            (PressOutcome::NotOpen, AuditResult::Blocked),
            (PressOutcome::Failed("x".into()), AuditResult::Failed),
        ];
        for (outcome, result) in cases {
            assert_eq!(outcome.audit_result(), result, "{outcome:?}");
            assert_eq!(outcome.reply().to_json()["flags"], 64, "{outcome:?}");
        }
    }
}
