//! Sending alerts: the gates, the dedup window shared through the `AlertLedger`, the send, and
//! the one "resolved" message after a failure is fixed. Nothing is dropped silently: every
//! outcome is logged (`Alert sent`, `Alert skipped`, `Alert rate-limited`, `Alert failed`) and
//! counted in metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::alert::{Alert, AlertKind, resolved_message};
use crate::clock::now_secs;
use crate::config::Config;
use crate::discord_api::Discord;
use crate::metrics::{AlertMetric, Metrics};
use crate::store::{AlertLedger, AlertingState, StoreError};

/// The alert settings of section 6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSettings {
    pub enabled: bool,
    pub channel_id: Option<u64>,
    pub mention_role_id: Option<u64>,
    pub window_secs: u64,
    /// A bot token is set, or `DRY_RUN` posts nowhere: without either, a post can only fail.
    pub can_post: bool,
}

impl AlertSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            enabled: config.enable_alerts,
            channel_id: config.alert_channel_id,
            mention_role_id: config.alert_mention_role_id,
            window_secs: config.alert_dedup_seconds,
            can_post: config.discord_bot_token.is_some() || config.dry_run,
        }
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
/// Kept back from the caller's deadline when posting, for the bookkeeping after the post.
const SETTLE_RESERVE: Duration = Duration::from_millis(300);

/// What is left of `deadline` for a step capped at `cap`, keeping `reserve` back.
fn budget(deadline: Instant, cap: Duration, reserve: Duration) -> Duration {
    deadline.saturating_duration_since(Instant::now()).saturating_sub(reserve).min(cap)
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
        stores: &crate::store::Stores,
        discord: Arc<dyn Discord>,
        metrics: Metrics,
    ) -> Self {
        Self::new(AlertSettings::from_config(config), stores.alerts.clone(), discord, metrics)
    }

    fn gate(&self, key: &str) -> Result<u64, AlertOutcome> {
        let reason = match (self.settings.enabled, self.settings.channel_id, self.settings.can_post) {
            (false, _, _) => "ENABLE_ALERTS is not true",
            (true, None, _) => "ALERT_CHANNEL_ID is not set",
            (true, Some(_), false) => "DISCORD_BOT_TOKEN is not set",
            (true, Some(channel), true) => return Ok(channel),
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
        let claim_budget = budget(deadline, CLAIM_BUDGET, Duration::ZERO);
        let claimed = tokio::time::timeout(claim_budget, self.ledger.claim(&key, now, self.settings.window_secs))
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("no answer in time".into())));
        let claim = match claimed {
            Ok(Some(claim)) => Some(claim),
            Ok(None) => return self.rate_limited(&key, &alert.trace_id),
            Err(e) => {
                // Better a duplicate than a lost alert; this container's own memory still keeps
                // one alert per key and window.
                if !self.local_claim(&key, now) {
                    return self.rate_limited(&key, &alert.trace_id);
                }
                tracing::warn!(alert_key = %key, error = %e, "Alert dedup unavailable; sending without dedup");
                None
            }
        };
        let message = alert.message(self.settings.mention_role_id);
        let post_budget = budget(deadline, POST_BUDGET, SETTLE_RESERVE);
        let posted = tokio::time::timeout(post_budget, self.discord.post_message(channel, &message))
            .await
            .unwrap_or(Err(crate::discord_api::DiscordError::Timeout));
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
        let recovery_key = crate::alert::recovery_key(success.repository, success.workflow, success.branch);
        let take_budget = budget(deadline, CLAIM_BUDGET, Duration::ZERO);
        let taken = tokio::time::timeout(take_budget, self.ledger.take_alerting(&recovery_key))
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("no answer in time".into())));
        let state = match taken {
            Ok(Some(state)) => state,
            Ok(None) => return None,
            Err(e) => {
                tracing::error!(recovery_key = %recovery_key, error = %e, "could not read the alerting state; no resolved message");
                return Some(AlertOutcome::Failed { error: e.to_string() });
            }
        };
        let channel = match self.gate(&recovery_key) {
            Ok(c) => c,
            Err(outcome) => return Some(outcome),
        };
        let message =
            resolved_message(success.repository, success.workflow, success.branch, success.run_url, success.trace_id);
        let post_budget = budget(deadline, POST_BUDGET, SETTLE_RESERVE);
        let posted = tokio::time::timeout(post_budget, self.discord.post_message(channel, &message))
            .await
            .unwrap_or(Err(crate::discord_api::DiscordError::Timeout));
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
                settle(deadline, "restore_alerting", async move {
                    if let Err(put_back) = ledger.mark_alerting(&state).await {
                        tracing::error!(recovery_key = %state.recovery_key, error = %put_back, "could not restore the alerting state");
                    }
                })
                .await;
                Some(AlertOutcome::Failed { error: e.to_string() })
            }
        }
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
