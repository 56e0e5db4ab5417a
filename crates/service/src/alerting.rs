//! Sending alerts: the gates, the dedup window shared through the `AlertLedger`, and the send.
//! Nothing is dropped silently: every outcome is logged (`Alert sent`, `Alert skipped`, `Alert rate-limited`, `Alert failed`) and
//! counted in metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use valine_clients::discord_api::Discord;
use valine_domain::alert::Alert;
use valine_domain::clock::now_secs;
use valine_domain::config::Config;
use valine_domain::metrics::{AlertMetric, Metrics};
use valine_store::{AlertLedger, StoreError};

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

/// Runs the store bookkeeping that follows a post (release the claim of a failed alert) where the caller's deadline cannot cancel it halfway: the
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
        match posted {
            Ok(posted) => {
                tracing::info!(alert_key = %key, severity = alert.severity().as_str(), message_id = posted.id, "Alert sent");
                self.metrics.alert(AlertMetric::Sent);
                AlertOutcome::Sent { message_id: posted.id }
            }
            Err(e) => {
                tracing::error!(alert_key = %key, error = %e, "Alert failed");
                self.metrics.alert(AlertMetric::Failed);
                self.local_release(&key);
                if let Some(claim) = claim {
                    let ledger = self.ledger.clone();
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
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use serde_json::Value;

    use super::*;
    use valine_clients::discord_api::{DiscordError, PostedMessage};

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
            kind: valine_domain::alert::InternalAlert::StoreUnavailable,
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
