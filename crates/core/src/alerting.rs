//! Sending alerts: the gates, the dedup window shared through the `AlertLedger`, the send, and
//! the one "resolved" message after a failure is fixed. Nothing is dropped silently: every
//! outcome is logged (`Alert sent`, `Alert skipped`, `Alert rate-limited`, `Alert failed`) and
//! counted in metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
}

impl AlertSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            enabled: config.enable_alerts,
            channel_id: config.alert_channel_id,
            mention_role_id: config.alert_mention_role_id,
            window_secs: config.alert_dedup_seconds,
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
        let reason = if !self.settings.enabled {
            "ENABLE_ALERTS is not true"
        } else if let Some(channel) = self.settings.channel_id {
            return Ok(channel);
        } else {
            "ALERT_CHANNEL_ID is not set"
        };
        tracing::info!(alert_key = key, reason, "Alert skipped");
        self.metrics.alert(AlertMetric::Skipped);
        Err(AlertOutcome::Skipped { reason })
    }

    /// Raises an alert: at most one per dedup key and window across every container.
    pub async fn raise(&self, alert: &Alert) -> AlertOutcome {
        let key = alert.dedup_key();
        let channel = match self.gate(&key) {
            Ok(c) => c,
            Err(outcome) => return outcome,
        };
        let now = now_secs();
        let claimed = tokio::time::timeout(CLAIM_BUDGET, self.ledger.claim(&key, now, self.settings.window_secs))
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
        let posted = tokio::time::timeout(POST_BUDGET, self.discord.post_message(channel, &message))
            .await
            .unwrap_or(Err(crate::discord_api::DiscordError::Timeout));
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
                    if let Err(e) = self.ledger.mark_alerting(&state).await {
                        tracing::error!(alert_key = %key, error = %e, "could not remember the alert for its recovery message");
                    }
                }
                AlertOutcome::Sent { message_id: posted.id }
            }
            Err(e) => {
                tracing::error!(alert_key = %key, error = %e, "Alert failed");
                self.metrics.alert(AlertMetric::Failed);
                if let Some(claim) = claim
                    && let Err(release) = self.ledger.release(&claim).await
                {
                    tracing::error!(alert_key = %key, error = %release, "could not release the dedup window of a failed alert");
                }
                self.local_release(&key);
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
    /// `None` when there was nothing to resolve.
    pub async fn resolve(
        &self,
        repository: &str,
        workflow: &str,
        branch: &str,
        run_url: Option<&str>,
        trace_id: &str,
    ) -> Option<AlertOutcome> {
        let recovery_key = crate::alert::recovery_key(repository, workflow, branch);
        let state = match self.ledger.take_alerting(&recovery_key).await {
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
        let message = resolved_message(repository, workflow, branch, run_url, trace_id);
        let posted = tokio::time::timeout(POST_BUDGET, self.discord.post_message(channel, &message))
            .await
            .unwrap_or(Err(crate::discord_api::DiscordError::Timeout));
        match posted {
            Ok(posted) => {
                tracing::info!(recovery_key = %recovery_key, message_id = posted.id, "Alert resolved");
                self.metrics.alert(AlertMetric::Sent);
                // Fixed: the next failure is news, whatever the window says.
                self.local_release(&state.dedup_key);
                if let Err(e) = self.ledger.forget_claim(&state.dedup_key).await {
                    tracing::warn!(alert_key = %state.dedup_key, error = %e, "could not reset the dedup window after recovery");
                }
                Some(AlertOutcome::Sent { message_id: posted.id })
            }
            Err(e) => {
                tracing::error!(recovery_key = %recovery_key, error = %e, "Alert failed: resolved message not sent; the next success retries");
                self.metrics.alert(AlertMetric::Failed);
                if let Err(put_back) = self.ledger.mark_alerting(&state).await {
                    tracing::error!(recovery_key = %recovery_key, error = %put_back, "could not restore the alerting state");
                }
                Some(AlertOutcome::Failed { error: e.to_string() })
            }
        }
    }
}
