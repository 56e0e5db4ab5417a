//! `/verify-latest`: the latest run of `DEPLOY_WORKFLOW` (conclusion, failed steps, link) and each
//! `VERIFY_URLS` endpoint (status, latency, JSON `status` field), checked in parallel in a
//! deferred job, answered as one embed.

use std::time::Duration;

use valine_domain::alert::InternalAlert;
use valine_domain::config::Feature;
use valine_domain::message::{Message, Reply};
use valine_domain::trace::{StepStatus, TraceRecorder};
use valine_service::verify::{latest_run, run_checks, verify_embed};

use crate::ctx::Ctx;
use crate::deferred::Deferred;
use crate::interaction::Options;
use crate::jobs::JobContext;
use crate::services::Services;
use crate::spec::{Access, Spec, Where};

pub(crate) const SPEC: Spec = Spec {
    name: "verify-latest",
    description: "Check the latest deploy run and the health endpoints",
    options: &[],
    subcommands: &[],
    access: Access::Anyone,
    place: Where::Guild,
    summary: "The latest run of `DEPLOY_WORKFLOW` (conclusion, failed steps, link), then each `VERIFY_URLS` endpoint: status, latency in ms, and the `status` field of JSON health answers.",
    span: "handle_verify_latest",
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args;

pub(crate) fn parse(_: &Options) -> Args {
    Args
}

pub(crate) async fn run(ctx: &mut Ctx<'_>, _: Args) -> Reply {
    let job = VerifyJob { ctx: ctx.job_context() };
    match ctx.defer(job).await {
        Ok(()) => Reply::Deferred { ephemeral: false },
        Err(e) => {
            ctx.alert(
                InternalAlert::JobFailed,
                "/verify-latest could not start its job",
                &e.to_string(),
                Duration::ZERO,
            )
            .await;
            ctx.fail(&format!("Verify could not start: {e}."))
        }
    }
}

/// `/verify-latest`: the latest deploy run and the `VERIFY_URLS` endpoints.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VerifyJob {
    pub ctx: JobContext,
}

impl Deferred for VerifyJob {
    const KIND: &'static str = "verify";

    fn context(&self) -> &JobContext {
        &self.ctx
    }

    fn context_mut(&mut self) -> &mut JobContext {
        &mut self.ctx
    }

    async fn run(self, services: &Services, rec: &mut TraceRecorder) {
        run_job(services, rec, &self.ctx).await
    }
}

/// The job half: both reads at once, then one embed.
async fn run_job(services: &Services, rec: &mut TraceRecorder, ctx: &JobContext) {
    let config = services.config.clone();
    let workflow = config.deploy_workflow.clone();
    let latest = async {
        let missing = config.missing_for(Feature::GitHubRuns);
        match (services.github.as_deref(), config.github_repo.as_ref()) {
            (Some(github), Some(repo)) if missing.is_empty() => {
                latest_run(github, repo, &workflow).await.map_err(|e| e.to_string())
            }
            _ => Err(format!("GitHub is not configured: set {}", missing.join(" and "))),
        }
    };
    let checks = run_checks(services.probe.as_ref(), &config.verify_urls);
    let t = rec.start("verify");
    let (latest, checks) = tokio::join!(latest, checks);
    let healthy = checks.iter().filter(|c| c.healthy()).count();
    let status = if latest.is_ok() && healthy == checks.len() { StepStatus::Ok } else { StepStatus::Error };
    rec.finish(t, status, Some(format!("{healthy}/{} endpoints healthy", checks.len())));
    tracing::info!(endpoints = checks.len(), healthy, deploy_read = latest.is_ok(), "verify done");
    let embed = verify_embed(&workflow, &latest, &checks).footer(format!("trace {}", rec.trace_id()));
    services.edit_original(rec, ctx, &Message::embed_only(embed).replacing()).await;
}
