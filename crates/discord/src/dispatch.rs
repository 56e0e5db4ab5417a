//! Dispatch and follow, the one capability behind `/diagnose` and `/deploy-client`: remember the
//! correlation (how to reach the message), dispatch the workflow with the correlation id among
//! its inputs, and show "dispatched". From then on the GitHub handler edits the message from the
//! correlated run's `workflow_run` webhooks; no Lambda polls.

use std::time::Duration;

use serde_json::{Map, Value};
use valine_clients::github_error::GitHubError;
use valine_domain::alert::InternalAlert;
use valine_domain::clock::now_secs;
use valine_domain::trace::TraceRecorder;
use valine_service::diagnose::{CORRELATION_TTL_SECS, progress_message};
use valine_store::{DiagnoseCorrelation, Followed};

use crate::jobs::JobContext;
use crate::services::Services;

/// What to dispatch, and what the message following it shows.
#[derive(Debug, Clone)]
pub(crate) struct FollowRequest {
    pub kind: Followed,
    /// The command, for alerts: `/diagnose`.
    pub command: &'static str,
    pub correlation_id: String,
    pub workflow: String,
    pub git_ref: String,
    /// Shown on the message (and `git_ref` too when the caller chose it).
    pub frontend_url: Option<String>,
    pub api_base: Option<String>,
    pub show_ref: bool,
    /// Workflow inputs besides `correlation_id` and `requester`.
    pub inputs: Vec<(&'static str, String)>,
    /// The repository, checked against `GITHUB_REPOS` already; none: `GITHUB_REPO`.
    pub repo: Option<valine_domain::repo::RepoName>,
}

/// Why nothing is being followed. The caller was told already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FollowFailure {
    /// Nothing configured to dispatch with.
    NotConfigured,
    /// The correlation could not be stored, so nothing was dispatched.
    Store(String),
    /// GitHub refused or did not answer.
    Dispatch(GitHubError),
}

impl std::fmt::Display for FollowFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotConfigured => f.write_str("GitHub is not configured"),
            Self::Store(e) => write!(f, "the store is unavailable ({e})"),
            Self::Dispatch(e) => write!(f, "{e}"),
        }
    }
}

/// Stores the correlation, dispatches, and edits the deferred message to "dispatched". On a
/// failure the caller hears it (privately) and an internal alert goes out for a failed dispatch.
pub(crate) async fn dispatch_and_follow(
    services: &Services,
    rec: &mut TraceRecorder,
    ctx: &JobContext,
    req: FollowRequest,
) -> Result<(), FollowFailure> {
    let (Some(github), Some(repo)) =
        (services.github.clone(), req.repo.clone().or(services.config.github_repo.clone()))
    else {
        return Err(FollowFailure::NotConfigured);
    };
    let label = match req.kind {
        Followed::Diagnose => "Diagnose",
        Followed::Deploy => "The deploy",
    };
    let now = now_secs();
    let correlation = DiagnoseCorrelation {
        correlation_id: req.correlation_id.clone(),
        application_id: ctx.application_id,
        interaction_token: ctx.token.clone(),
        user_id: ctx.user_id.to_string(),
        trace_id: rec.trace_id().to_string(),
        created_at: now,
        expires_at: now + CORRELATION_TTL_SECS,
        frontend_url: req.frontend_url.clone(),
        api_base: req.api_base.clone(),
        kind: req.kind,
        git_ref: req.show_ref.then(|| req.git_ref.clone()),
    };
    let runs = services.stores.runs.clone();
    if let Err(e) = rec.time("store.put_correlation", runs.put_correlation(&correlation)).await {
        rec.fail(&e);
        services.job_failed(rec, ctx, &format!("{label} was not dispatched: the store is unavailable ({e}).")).await;
        return Err(FollowFailure::Store(e.to_string()));
    }
    let mut inputs = Map::new();
    inputs.insert("correlation_id".into(), Value::String(req.correlation_id.clone()));
    inputs.insert("requester".into(), Value::String(format!("{} ({})", ctx.user_name, ctx.user_id)));
    for (name, value) in req.inputs {
        inputs.insert(name.into(), Value::String(value));
    }
    let inputs = Value::Object(inputs);
    let (workflow, git_ref) = (req.workflow.as_str(), req.git_ref.as_str());
    match rec.time("github.dispatch", github.dispatch(&repo, workflow, git_ref, &inputs)).await {
        Ok(()) => {
            tracing::info!(correlation_id = %req.correlation_id, workflow = %workflow, git_ref = %git_ref, cmd = req.command, "workflow dispatched");
            services.edit_original(rec, ctx, &progress_message(&correlation, None)).await;
            Ok(())
        }
        Err(e) => {
            rec.fail(&e);
            services
                .internal_alert(
                    InternalAlert::DispatchFailed,
                    &format!("{} could not dispatch {workflow}", req.command),
                    &e.to_string(),
                    rec.trace_id(),
                    &ctx.user_name,
                    Duration::from_secs(5),
                )
                .await;
            services.job_failed(rec, ctx, &format!("Could not dispatch `{workflow}` on `{git_ref}`: {e}")).await;
            Err(FollowFailure::Dispatch(e))
        }
    }
}
