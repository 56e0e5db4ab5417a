//! Sending alerts: the gates, the dedup window shared through the `AlertLedger`, the send, and
//! the one "resolved" message after a failure is fixed. Nothing is dropped silently: every
//! outcome is logged (`Alert sent`, `Alert skipped`, `Alert rate-limited`, `Alert failed`) and
//! counted in metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use valine_clients::discord_api::Discord;
use valine_domain::alert::{Alert, AlertKind, resolved_message};
use valine_domain::clock::now_secs;
use valine_domain::config::Config;
use valine_domain::metrics::{AlertMetric, Metrics};
use valine_store::{AlertLedger, AlertingState, StoreError};

/// Where alerts and incidents go, and whether they can: the settings both share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub enabled: bool,
    pub channel_id: Option<u64>,
    pub mention_role_id: Option<u64>,
    /// A bot token is set, or `DRY_RUN` posts nowhere: without either, a post can only fail.
    pub can_post: bool,
}

impl Destination {
    pub fn from_config(config: &Config) -> Self {
        Self {
            enabled: config.enable_alerts,
            channel_id: config.alert_channel_id,
            mention_role_id: config.alert_mention_role_id,
            can_post: config.discord_bot_token.is_some() || config.dry_run,
        }
    }

    /// The channel, or why nothing can be posted (logged as `Alert skipped`).
    pub fn gate(&self) -> Result<u64, &'static str> {
        valine_domain::alert::post_gate(self.enabled, self.channel_id, self.can_post)
    }
}

/// The alert settings of section 6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSettings {
    pub destination: Destination,
    pub window_secs: u64,
}

impl AlertSettings {
    pub fn from_config(config: &Config) -> Self {
        Self { destination: Destination::from_config(config), window_secs: config.alert_dedup_seconds }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertOutcome {
    Sent { message_id: u64 },
    Skipped { reason: &'static str },
    RateLimited,
    Failed { error: String },
}

impl AlertOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            AlertOutcome::Sent { .. } => "sent",
            AlertOutcome::Skipped { .. } => "skipped",
            AlertOutcome::RateLimited => "rate_limited",
            AlertOutcome::Failed { .. } => "failed",
        }
    }
}

/// How long a dedup claim may take before the alert goes out without it.
const CLAIM_BUDGET: Duration = Duration::from_millis(600);
/// How long posting an alert may take, a rate-limit wait included.
const POST_BUDGET: Duration = Duration::from_secs(5);
/// Kept back from the caller's deadline when posting, for the bookkeeping after the post: a whole
/// store call (1.6 s at most), or a third of the time left when there is less. On Lambda that
/// bookkeeping must end before the answer goes, or it waits, frozen, for the next invocation.
const SETTLE_RESERVE: Duration = Duration::from_millis(1800);

/// What is left of `deadline` for a step capped at `cap`, keeping `reserve` back.
fn budget(deadline: Instant, cap: Duration, reserve: Duration) -> Duration {
    deadline.saturating_duration_since(Instant::now()).saturating_sub(reserve).min(cap)
}

/// A store call of the alert path: at most [`CLAIM_BUDGET`], and inside `deadline`.
async fn store_call<T>(
    deadline: Instant,
    call: impl Future<Output = valine_store::StoreResult<T>>,
) -> valine_store::StoreResult<T> {
    tokio::time::timeout(budget(deadline, CLAIM_BUDGET, Duration::ZERO), call)
        .await
        .unwrap_or_else(|_| Err(StoreError::Unavailable("no answer in time".into())))
}

/// How long a post may take before `deadline`, keeping time back for the bookkeeping after it.
fn post_budget(deadline: Instant) -> Duration {
    let reserve = SETTLE_RESERVE.min(deadline.saturating_duration_since(Instant::now()) / 3);
    budget(deadline, POST_BUDGET, reserve)
}

/// Runs the store bookkeeping that follows a post (release a claim, remember or restore the
/// alerting state, reset a window) where the caller's deadline cannot cancel it halfway: the
/// caller waits for it until `deadline`, and past that it finishes in the background.
async fn settle(deadline: Instant, what: &'static str, work: impl Future<Output = ()> + Send + 'static) {
    let task = tokio::spawn(work);
    if tokio::time::timeout_at(deadline, task).await.is_err() {
        tracing::warn!(what, "alert bookkeeping still running at the deadline; it finishes in the background");
    }
}

#[derive(Clone)]
pub struct Alerter {
    settings: AlertSettings,
    ledger: Arc<dyn AlertLedger>,
    discord: Arc<dyn Discord>,
    metrics: Metrics,
    local: Arc<Mutex<HashMap<String, u64>>>,
}

impl std::fmt::Debug for Alerter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerter").field("settings", &self.settings).finish()
    }
}

impl Alerter {
    pub fn new(
        settings: AlertSettings,
        ledger: Arc<dyn AlertLedger>,
        discord: Arc<dyn Discord>,
        metrics: Metrics,
    ) -> Self {
        Self { settings, ledger, discord, metrics, local: Arc::default() }
    }

    /// The alerter a handler uses: settings from `config`, the ledger of `stores`.
    pub fn from_config(
        config: &Config,
        stores: &valine_store::Stores,
        discord: Arc<dyn Discord>,
        metrics: Metrics,
    ) -> Self {
        Self::new(AlertSettings::from_config(config), stores.alerts.clone(), discord, metrics)
    }

    fn gate(&self, key: &str) -> Result<u64, AlertOutcome> {
        let reason = match self.settings.destination.gate() {
            Ok(channel) => return Ok(channel),
            Err(reason) => reason,
        };
        tracing::info!(alert_key = key, reason, "Alert skipped");
        self.metrics.alert(AlertMetric::Skipped);
        Err(AlertOutcome::Skipped { reason })
    }

    /// Raises an alert: at most one per dedup key and window across every container. Every step
    /// keeps to `deadline`; the bookkeeping after the post cannot be cut off halfway by it.
    pub async fn raise(&self, alert: &Alert, deadline: Instant) -> AlertOutcome {
        let key = alert.dedup_key();
        let channel = match self.gate(&key) {
            Ok(c) => c,
            Err(outcome) => return outcome,
        };
        let now = now_secs();
        // A store failure's alert does not wait on that store: this container's window only.
        let claimed = if alert.kind.is_store_failure() {
            Err(StoreError::Unavailable("the alert is about the store".into()))
        } else {
            store_call(deadline, self.ledger.claim(&key, now, self.settings.window_secs)).await
        };
        let claim = match claimed {
            Ok(Some(claim)) => Some(claim),
            Ok(None) => return self.rate_limited(&key, &alert.trace_id),
            Err(e) => {
                // Better a duplicate than a lost alert; this container's own memory still keeps
                // one alert per key and window.
                if !self.local_claim(&key, now) {
                    return self.rate_limited(&key, &alert.trace_id);
                }
                if !alert.kind.is_store_failure() {
                    tracing::warn!(alert_key = %key, error = %e, "Alert dedup unavailable; sending without dedup");
                }
                None
            }
        };
        let posted = self.post(channel, &alert.message(self.settings.destination.mention_role_id), deadline).await;
        let ledger = self.ledger.clone();
        match posted {
            Ok(posted) => {
                tracing::info!(alert_key = %key, severity = alert.severity.as_str(), message_id = posted.id, "Alert sent");
                self.metrics.alert(AlertMetric::Sent);
                if matches!(alert.kind, AlertKind::WorkflowFailed | AlertKind::DeploymentFailed) {
                    let state = AlertingState {
                        recovery_key: alert.recovery_key(),
                        since: now_secs(),
                        dedup_key: key.clone(),
                        run_url: alert.run_url.clone(),
                    };
                    settle(deadline, "mark_alerting", async move {
                        if let Err(e) = ledger.mark_alerting(&state).await {
                            tracing::error!(alert_key = %state.dedup_key, error = %e, "could not remember the alert for its recovery message");
                        }
                    })
                    .await;
                }
                AlertOutcome::Sent { message_id: posted.id }
            }
            Err(e) => {
                tracing::error!(alert_key = %key, error = %e, "Alert failed");
                self.metrics.alert(AlertMetric::Failed);
                self.local_release(&key);
                if let Some(claim) = claim {
                    settle(deadline, "release", async move {
                        if let Err(release) = ledger.release(&claim).await {
                            tracing::error!(alert_key = %claim.key, error = %release, "could not release the dedup window of a failed alert");
                        }
                    })
                    .await;
                }
                AlertOutcome::Failed { error: e.to_string() }
            }
        }
    }

    /// Posts `message` within what `deadline` leaves for it.
    async fn post(
        &self,
        channel: u64,
        message: &serde_json::Value,
        deadline: Instant,
    ) -> Result<valine_clients::discord_api::PostedMessage, valine_clients::discord_api::DiscordError> {
        tokio::time::timeout(post_budget(deadline), self.discord.post_message(channel, message))
            .await
            .unwrap_or(Err(valine_clients::discord_api::DiscordError::Timeout))
    }

    fn rate_limited(&self, key: &str, trace_id: &str) -> AlertOutcome {
        tracing::info!(alert_key = %key, trace_id = %trace_id, "Alert rate-limited");
        self.metrics.alert(AlertMetric::Suppressed);
        AlertOutcome::RateLimited
    }

    /// The fallback window, in this container only, for when the shared ledger is down.
    fn local_claim(&self, key: &str, now: u64) -> bool {
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        local.retain(|_, until| *until > now);
        if local.contains_key(key) {
            return false;
        }
        local.insert(key.to_string(), now + self.settings.window_secs);
        true
    }

    fn local_release(&self, key: &str) {
        self.local.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    /// After a success: posts one "resolved" message if this workflow + branch had alerted.
    /// `None` when there was nothing to resolve. Keeps to `deadline` like [`Alerter::raise`].
    pub async fn resolve(&self, success: &Resolution<'_>, deadline: Instant) -> Option<AlertOutcome> {
        let recovery_key = valine_domain::alert::recovery_key(success.repository, success.workflow, success.branch);
        let failed = |e: &StoreError| {
            tracing::error!(recovery_key = %recovery_key, error = %e, "could not read the alerting state; no resolved message");
            Some(AlertOutcome::Failed { error: e.to_string() })
        };
        // A read first: most successes follow no alert, and the state read is what gets put
        // back should the take below end without an answer.
        let peeked = match store_call(deadline, self.ledger.get_alerting(&recovery_key)).await {
            Ok(Some(state)) => state,
            Ok(None) => return None,
            Err(e) => return failed(&e),
        };
        // Gated before the take: with alerts off, the state stays for when they are back on.
        let channel = match self.gate(&recovery_key) {
            Ok(c) => c,
            Err(outcome) => return Some(outcome),
        };
        // Taking it is what makes one "resolved" of two concurrent successes.
        let ledger = self.ledger.clone();
        let key = recovery_key.clone();
        let mut take = tokio::spawn(async move { ledger.take_alerting(&key).await });
        let taken = match tokio::time::timeout(budget(deadline, CLAIM_BUDGET, Duration::ZERO), &mut take).await {
            Ok(joined) => joined.unwrap_or_else(|e| Err(StoreError::Unavailable(format!("task failed: {e}")))),
            Err(_) => {
                // Still running: should it land, the state goes back for the next success.
                let ledger = self.ledger.clone();
                let state = peeked.clone();
                settle(deadline, "restore_alerting", async move {
                    if !matches!(take.await, Ok(Ok(None))) {
                        restore(ledger.as_ref(), &state).await;
                    }
                })
                .await;
                return failed(&StoreError::Unavailable("no answer in time".into()));
            }
        };
        let state = match taken {
            Ok(Some(state)) => state,
            // another success took it first: its "resolved" is the one
            Ok(None) => return None,
            Err(e) => {
                // The take may have landed with its answer lost: put the state back.
                let ledger = self.ledger.clone();
                settle(deadline, "restore_alerting", async move { restore(ledger.as_ref(), &peeked).await }).await;
                return failed(&e);
            }
        };
        let message =
            resolved_message(success.repository, success.workflow, success.branch, success.run_url, success.trace_id);
        let posted = self.post(channel, &message, deadline).await;
        let ledger = self.ledger.clone();
        match posted {
            Ok(posted) => {
                tracing::info!(recovery_key = %recovery_key, message_id = posted.id, "Alert resolved");
                self.metrics.alert(AlertMetric::Sent);
                // Fixed: the next failure is news, whatever the window says.
                self.local_release(&state.dedup_key);
                settle(deadline, "forget_claim", async move {
                    if let Err(e) = ledger.forget_claim(&state.dedup_key).await {
                        tracing::error!(alert_key = %state.dedup_key, error = %e, "could not reset the dedup window after recovery; a failure inside it stays quiet");
                    }
                })
                .await;
                Some(AlertOutcome::Sent { message_id: posted.id })
            }
            Err(e) => {
                tracing::error!(recovery_key = %recovery_key, error = %e, "Alert failed: resolved message not sent; the next success retries");
                self.metrics.alert(AlertMetric::Failed);
                settle(deadline, "restore_alerting", async move { restore(ledger.as_ref(), &state).await }).await;
                Some(AlertOutcome::Failed { error: e.to_string() })
            }
        }
    }
}

/// Puts an alerting state back, so that the next success tries its "resolved" again.
async fn restore(ledger: &dyn AlertLedger, state: &AlertingState) {
    if let Err(e) = ledger.mark_alerting(state).await {
        tracing::error!(recovery_key = %state.recovery_key, error = %e, "could not restore the alerting state");
    }
}

/// A success that may end an alert: its workflow (or deployment) and branch, and where it ran.
#[derive(Debug, Clone, Copy)]
pub struct Resolution<'a> {
    pub repository: &'a str,
    pub workflow: &'a str,
    pub branch: &'a str,
    pub run_url: Option<&'a str>,
    pub trace_id: &'a str,
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use async_trait::async_trait;
    use serde_json::Value;

    use super::*;
    use valine_clients::discord_api::{DiscordError, PostedMessage};
    use valine_store::embedded::EmbeddedStore;
    use valine_store::{Claim, StoreResult};

    /// The embedded store, except that a take can be made to land and then lose its answer.
    struct LossyTake {
        inner: EmbeddedStore,
        lose_next_take: AtomicBool,
    }

    #[async_trait]
    impl AlertLedger for LossyTake {
        async fn claim(&self, key: &str, now: u64, window_secs: u64) -> StoreResult<Option<Claim>> {
            self.inner.claim(key, now, window_secs).await
        }
        async fn release(&self, claim: &Claim) -> StoreResult<()> {
            self.inner.release(claim).await
        }
        async fn mark_alerting(&self, state: &AlertingState) -> StoreResult<()> {
            self.inner.mark_alerting(state).await
        }
        async fn get_alerting(&self, recovery_key: &str) -> StoreResult<Option<AlertingState>> {
            self.inner.get_alerting(recovery_key).await
        }
        async fn take_alerting(&self, recovery_key: &str) -> StoreResult<Option<AlertingState>> {
            let taken = self.inner.take_alerting(recovery_key).await;
            if self.lose_next_take.swap(false, Ordering::SeqCst) {
                return Err(StoreError::Unavailable("the answer was lost".into()));
            }
            taken
        }
        async fn forget_claim(&self, key: &str) -> StoreResult<()> {
            self.inner.forget_claim(key).await
        }
    }

    /// Counts what would be posted.
    #[derive(Default)]
    struct Posts(AtomicUsize);

    #[async_trait]
    impl Discord for Posts {
        async fn post_message(&self, channel_id: u64, _: &Value) -> Result<PostedMessage, DiscordError> {
            let id = self.0.fetch_add(1, Ordering::SeqCst) as u64 + 1;
            Ok(PostedMessage { id, channel_id, guild_id: None })
        }
        async fn open_dm(&self, _: u64) -> Result<u64, DiscordError> {
            Err(DiscordError::Unreachable("not in this test".into()))
        }
        async fn edit_original(&self, _: u64, _: &str, _: &Value) -> Result<(), DiscordError> {
            Err(DiscordError::Unreachable("not in this test".into()))
        }
        async fn delete_original(&self, _: u64, _: &str) -> Result<(), DiscordError> {
            Err(DiscordError::Unreachable("not in this test".into()))
        }
        async fn follow_up(&self, _: u64, _: &str, _: &Value) -> Result<PostedMessage, DiscordError> {
            Err(DiscordError::Unreachable("not in this test".into()))
        }
    }

    #[tokio::test]
    async fn a_take_whose_answer_was_lost_puts_the_state_back_for_the_next_success() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Arc::new(LossyTake {
            inner: EmbeddedStore::open(&dir.path().join("v.redb")).unwrap(),
            lose_next_take: AtomicBool::new(false),
        });
        let posts = Arc::new(Posts::default());
        let settings = AlertSettings {
            destination: Destination { enabled: true, channel_id: Some(9), mention_role_id: None, can_post: true },
            window_secs: 300,
        };
        let metrics = Metrics::new("test", Arc::new(valine_domain::logging::Capture::default()));
        let alerter = Alerter::new(settings, ledger.clone(), posts.clone(), metrics);
        let state = AlertingState {
            recovery_key: valine_domain::alert::recovery_key("acme/widget", "CI", "main"),
            since: now_secs(),
            dedup_key: "acme/widget|CI|main|workflow_failed".into(),
            run_url: None,
        };
        ledger.mark_alerting(&state).await.unwrap();
        let success =
            Resolution { repository: "acme/widget", workflow: "CI", branch: "main", run_url: None, trace_id: "t-1" };
        let deadline = || Instant::now() + Duration::from_secs(5);

        ledger.lose_next_take.store(true, Ordering::SeqCst);
        assert!(matches!(alerter.resolve(&success, deadline()).await, Some(AlertOutcome::Failed { .. })));
        assert_eq!(posts.0.load(Ordering::SeqCst), 0, "nothing posted without the take");
        assert_eq!(ledger.get_alerting(&state.recovery_key).await.unwrap(), Some(state.clone()), "put back");

        // the next success posts the one "resolved", and the one after it has nothing to resolve
        assert!(matches!(alerter.resolve(&success, deadline()).await, Some(AlertOutcome::Sent { .. })));
        assert_eq!(alerter.resolve(&success, deadline()).await, None);
        assert_eq!(posts.0.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_store_failure_alert_does_not_wait_on_the_store_and_keeps_its_window() {
        // a ledger that never answers: any wait on it would use up the whole deadline
        let ledger = Arc::new(valine_store::testing::DownStore { stalled: true });
        let posts = Arc::new(Posts::default());
        let settings = AlertSettings {
            destination: Destination { enabled: true, channel_id: Some(9), mention_role_id: Some(4), can_post: true },
            window_secs: 300,
        };
        let metrics = Metrics::new("test", Arc::new(valine_domain::logging::Capture::default()));
        let alerter = Alerter::new(settings, ledger, posts.clone(), metrics);
        let alert = Alert {
            severity: valine_domain::alert::Severity::Critical,
            kind: AlertKind::Internal("store_unavailable"),
            title: "store down".into(),
            repository: "acme/widget".into(),
            workflow: "github-handler".into(),
            branch: "dev".into(),
            commit: None,
            actor: None,
            conclusion: None,
            run_url: None,
            trace_id: "t".into(),
            detail: None,
        };
        let started = std::time::Instant::now();
        let deadline = Instant::now() + Duration::from_secs(5);
        assert!(matches!(alerter.raise(&alert, deadline).await, AlertOutcome::Sent { .. }));
        assert!(started.elapsed() < Duration::from_millis(500), "waited {:?}", started.elapsed());
        // its dedup window holds, in this container
        assert_eq!(alerter.raise(&alert, deadline).await, AlertOutcome::RateLimited);
        assert_eq!(posts.0.load(Ordering::SeqCst), 1);
    }
}
