//! What commands and jobs act through: the configuration, the stores, the Discord and GitHub
//! ports, the job queue, the alerter, metrics and the trace cache. Commands see this, never the
//! router, so the two cannot depend on each other.

use std::sync::Arc;
use std::time::Duration;

use valine_clients::discord_api::Discord;
use valine_clients::github_api::GitHub;
use valine_domain::alert::{Alert, InternalAlert};
use valine_domain::config::{Config, Feature, Handler};
use valine_domain::message::Message;
use valine_domain::metrics::Metrics;
use valine_domain::trace::{TraceCache, TraceRecorder};
use valine_service::alerting::Alerter;
use valine_service::http::HttpResponse;
use valine_service::incidents::IncidentDesk;
use valine_store::Stores;

use crate::jobs::{JobContext, Jobs};

pub const SERVICE: &str = "discord-handler";

pub struct Services {
    pub config: Arc<Config>,
    pub stores: Stores,
    pub discord: Arc<dyn Discord>,
    pub github: Option<Arc<dyn GitHub>>,
    pub jobs: Arc<dyn Jobs>,
    pub alerter: Alerter,
    pub metrics: Metrics,
    pub traces: TraceCache,
    /// Incident buttons, `/incidents` and `/mutes`.
    pub incidents: IncidentDesk,
    /// `VERIFY_URLS` checks for `/verify-latest`.
    pub probe: Arc<dyn valine_clients::probe::Probe>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").field("stores", &self.stores).finish_non_exhaustive()
    }
}

impl Services {
    pub async fn readiness(&self) -> HttpResponse {
        let c = &self.config;
        let features = [
            ("status", c.missing_for(Feature::GitHubRuns)),
            ("relay", c.missing_for(Feature::Relay)),
            ("alerts", c.missing_for(Feature::Alerts)),
        ]
        .into_iter()
        .filter(|(_, m)| !m.is_empty())
        .collect();
        valine_service::http::readiness(SERVICE, c, Handler::Discord, features, &self.stores).await
    }

    /// Edits a deferred message to `message`; a failure is the trace's error and logged.
    pub async fn edit_original(&self, rec: &mut TraceRecorder, ctx: &JobContext, message: &Message) {
        let body = message.to_json();
        let discord = self.discord.clone();
        if let Err(e) =
            rec.time("discord.edit_original", discord.edit_original(ctx.application_id, &ctx.token, &body)).await
        {
            rec.fail(&e);
            tracing::error!(error = %e, "could not edit the deferred message");
        }
    }

    /// A deferred job failed: only its caller hears the details, as errors always are.
    ///
    /// Discord turns the first follow-up after a deferral into the deferred message itself, with
    /// the deferral's (public) visibility. So the "thinking…" message is first edited to a
    /// neutral note, which ends it; then the ephemeral follow-up with the error and the trace id
    /// is a message of its own; then the note is deleted. Should the follow-up fail, the deferred
    /// message says what went wrong instead, so that the caller is never left without an answer.
    pub async fn job_failed(&self, rec: &mut TraceRecorder, ctx: &JobContext, text: &str) {
        let private = Message::error(text, rec.trace_id());
        let discord = self.discord.clone();
        let (app_id, token) = (ctx.application_id, ctx.token.as_str());
        let note = Message::text(format!("⚠️ This did not work; the details were sent to <@{}> only.", ctx.user_id))
            .replacing();
        if let Err(e) = rec.time("discord.edit_original", discord.edit_original(app_id, token, &note.to_json())).await {
            rec.fail(&e);
            tracing::error!(error = %e, "could not tell the caller that the job failed");
            return;
        }
        match rec.time("discord.follow_up", discord.follow_up(app_id, token, &private.to_json())).await {
            Ok(_) => {
                if let Err(e) = rec.time("discord.delete_original", discord.delete_original(app_id, token)).await {
                    tracing::warn!(error = %e, "could not delete the deferred message; its neutral note stays");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not tell the caller privately; the deferred message says it");
                let public = Message { ephemeral: false, ..private }.replacing();
                if let Err(e) =
                    rec.time("discord.edit_original", discord.edit_original(app_id, token, &public.to_json())).await
                {
                    rec.fail(&e);
                    tracing::error!(error = %e, "could not tell the caller that the job failed");
                }
            }
        }
    }

    /// Raises a critical alert about the bot itself, within `budget`.
    pub async fn internal_alert(
        &self,
        what: InternalAlert,
        title: &str,
        detail: &str,
        trace_id: &str,
        actor: &str,
        budget: Duration,
    ) {
        let alert = Alert {
            kind: what,
            title: title.to_string(),
            repository: self.config.github_repo.as_ref().map_or_else(|| "valine".to_string(), |r| r.to_string()),
            workflow: SERVICE.to_string(),
            branch: self.config.stage.clone(),
            commit: None,
            actor: Some(actor.to_string()),
            conclusion: None,
            run_url: None,
            trace_id: trace_id.to_string(),
            detail: Some(valine_domain::redact::redact(detail).into_owned()),
        };
        // The alerter keeps to the budget and logs what happened (`Alert sent` / `Alert failed`).
        self.alerter.raise(&alert, tokio::time::Instant::now() + budget).await;
    }
}
