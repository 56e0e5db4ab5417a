//! `/diagnose`: URLs through the guard, then a job stores the correlation and dispatches the
//! diagnose workflow. Progress comes from the correlated run's `workflow_run` webhooks (the
//! GitHub handler edits the message); no Lambda polls for minutes.

use std::time::Duration;

use valine_domain::alert::InternalAlert;
use valine_domain::authz::authorize_diagnose;
use valine_domain::config::Feature;
use valine_domain::message::Reply;
use valine_domain::trace::{StepStatus, TraceRecorder};
use valine_domain::url_guard::{UrlPolicy, check_url};
use valine_store::Followed;

use crate::ctx::Ctx;
use crate::deferred::Deferred;
use crate::dispatch::{FollowRequest, dispatch_and_follow};
use crate::interaction::Options;
use crate::jobs::JobContext;
use crate::services::Services;
use crate::spec::{Access, OptKind, OptSpec, Spec, Where};

pub const SPEC: Spec = Spec {
    name: "diagnose",
    description: "Dispatch the diagnose workflow and follow its progress here",
    options: &[
        OptSpec::new("frontend_url", OptKind::String, "Public https URL of the frontend to check").max_length(2048),
        OptSpec::new("api_base", OptKind::String, "Public https base URL of the API to check").max_length(2048),
        OptSpec::new("repo", OptKind::String, "owner/name (default: this channel's repository, else GITHUB_REPO)")
            .max_length(201)
            .autocomplete(),
    ],
    subcommands: &[],
    access: Access::AnyoneUnless("DIAGNOSE_ROLE_IDS"),
    place: Where::Guild,
    summary: "Dispatches `DIAGNOSE_WORKFLOW` once the URLs pass the URL guard; the message then follows the run: queued, running, finished.",
    span: "handle_diagnose",
};

/// The URLs as typed; the guard checks them in [`run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub frontend_url: Option<String>,
    pub api_base: Option<String>,
    pub repo: Option<String>,
}

pub fn parse(o: &Options) -> Args {
    Args {
        frontend_url: o.str("frontend_url").map(str::to_string),
        api_base: o.str("api_base").map(str::to_string),
        repo: o.str("repo").map(str::to_string),
    }
}

pub async fn run(ctx: &mut Ctx<'_>, args: Args) -> Reply {
    if let Err(refusal) = authorize_diagnose(ctx.caller(), &ctx.services.config) {
        let record = ctx.blocked_record();
        return ctx.blocked(&refusal.to_string(), record).await;
    }
    let repo = match crate::commands::subscribe::target_repo(ctx, args.repo.as_deref()).await {
        Ok(r) => r,
        Err(reason) => {
            let typed = valine_domain::message::truncate(args.repo.as_deref().unwrap_or(""), 200);
            let record = ctx.blocked_record().meta("repo", typed);
            return ctx.blocked(&reason, record).await;
        }
    };
    let mut missing = ctx.services.config.missing_for(Feature::GitHubRuns);
    if repo.is_some() {
        missing.retain(|v| *v != "GITHUB_REPO");
    }
    if !missing.is_empty() || ctx.services.github.is_none() {
        let record = ctx.blocked_record();
        return ctx.blocked(&format!("GitHub is not configured: set {}.", missing.join(" and ")), record).await;
    }
    let config = &ctx.services.config;
    let policy = UrlPolicy { allowed_domains: config.allowed_domains.clone(), safe_local: config.safe_local };
    let mut urls = [None, None];
    for ((slot, name), typed) in
        urls.iter_mut().zip(["frontend_url", "api_base"]).zip([args.frontend_url, args.api_base])
    {
        if let Some(raw) = typed.as_deref() {
            match check_url(raw, &policy) {
                Ok(url) => *slot = Some(url.to_string()),
                Err(reason) => {
                    // The address itself stays out of the record: it is the caller's input.
                    let record = ctx
                        .blocked_record()
                        .meta("option", name)
                        .meta("reason", format!("`{name}` was refused: {}.", reason.without_input()));
                    return ctx.blocked(&format!("`{name}` was refused: {reason}."), record).await;
                }
            }
        }
    }
    ctx.rec.note("url_guard", StepStatus::Ok, None);
    match ctx.first_time().await {
        Ok(true) => {}
        Ok(false) => {
            let record = ctx.blocked_record();
            return ctx.blocked("This interaction was already handled; nothing was dispatched again.", record).await;
        }
        Err(e) => return ctx.store_unavailable(&e, "nothing was dispatched").await,
    }
    let correlation_id = uuid::Uuid::new_v4().to_string();
    ctx.rec.set_correlation_id(&correlation_id);
    tracing::info!(correlation_id = %correlation_id, "diagnose requested");
    let [frontend_url, api_base] = urls;
    let repo = repo.map(|r| r.to_string());
    let job = DiagnoseJob { ctx: ctx.job_context(), correlation_id, frontend_url, api_base, repo };
    match ctx.defer(job).await {
        Ok(()) => Reply::Deferred { ephemeral: false },
        Err(e) => {
            ctx.alert(
                InternalAlert::DispatchFailed,
                "/diagnose could not start its job",
                &e.to_string(),
                Duration::ZERO,
            )
            .await;
            ctx.fail(&format!("Diagnose could not start: {e}."))
        }
    }
}

/// `/diagnose`: store the correlation, dispatch the workflow, show "dispatched".
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DiagnoseJob {
    pub ctx: JobContext,
    pub correlation_id: String,
    pub frontend_url: Option<String>,
    pub api_base: Option<String>,
    #[serde(default)]
    pub repo: Option<String>,
}

impl Deferred for DiagnoseJob {
    const KIND: &'static str = "diagnose";

    fn context(&self) -> &JobContext {
        &self.ctx
    }

    fn context_mut(&mut self) -> &mut JobContext {
        &mut self.ctx
    }

    async fn run(self, services: &Services, rec: &mut TraceRecorder) {
        let DiagnoseJob { ctx, correlation_id, frontend_url, api_base, repo } = self;
        run_job(services, rec, &ctx, correlation_id, (frontend_url, api_base), repo.as_deref()).await
    }
}

/// The job half: dispatch and follow (see [`crate::dispatch`]).
async fn run_job(
    services: &Services,
    rec: &mut TraceRecorder,
    ctx: &JobContext,
    correlation_id: String,
    (frontend_url, api_base): (Option<String>, Option<String>),
    repo: Option<&str>,
) {
    let repo = match crate::commands::subscribe::recheck_repo(&services.config, repo) {
        Ok(r) => r,
        Err(reason) => {
            rec.fail(&reason);
            return services.job_failed(rec, ctx, &format!("Nothing was dispatched: {reason}.")).await;
        }
    };
    // The job trusts nothing it was handed: whoever can invoke the function could have sent it.
    if let Err(reason) = recheck(services, ctx, frontend_url.as_deref(), api_base.as_deref()) {
        rec.fail(&reason);
        tracing::warn!(reason = %reason, "a diagnose job failed its checks; nothing was dispatched");
        return services.job_failed(rec, ctx, &format!("Nothing was dispatched: {reason}.")).await;
    }
    let request = FollowRequest {
        kind: Followed::Diagnose,
        command: "/diagnose",
        correlation_id,
        workflow: services.config.diagnose_workflow.clone(),
        git_ref: services.config.diagnose_ref.clone(),
        inputs: vec![
            ("frontend_url", frontend_url.clone().unwrap_or_default()),
            ("api_base", api_base.clone().unwrap_or_default()),
        ],
        frontend_url,
        api_base,
        show_ref: false,
        repo,
    };
    // Told to the caller already when it fails.
    let _ = dispatch_and_follow(services, rec, ctx, request).await;
}

/// What the command checked, checked again in the job: the caller may still run `/diagnose`, and
/// the URLs pass the guard.
fn recheck(
    services: &Services,
    ctx: &JobContext,
    frontend_url: Option<&str>,
    api_base: Option<&str>,
) -> Result<(), String> {
    let caller = valine_domain::authz::Caller { user_id: ctx.user_id, roles: ctx.roles.as_deref() };
    authorize_diagnose(caller, &services.config).map_err(|r| r.to_string())?;
    let config = &services.config;
    let policy = UrlPolicy { allowed_domains: config.allowed_domains.clone(), safe_local: config.safe_local };
    for (name, url) in [("frontend_url", frontend_url), ("api_base", api_base)] {
        if let Some(url) = url {
            check_url(url, &policy).map_err(|r| format!("`{name}` was refused: {}", r.without_input()))?;
        }
    }
    Ok(())
}
