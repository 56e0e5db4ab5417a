//! `/deploy-client [ref] [api_base]`: admins or `DEPLOY_ROLE_IDS`. An ephemeral preview with
//! Confirm / Cancel (the relay machinery: bound to the caller, 5 minutes, taken once); Confirm
//! writes the intent record, then a job dispatches `DEPLOY_WORKFLOW` and the message follows the
//! run like `/diagnose` (see [`crate::dispatch`]), verified when `VERIFY_URLS` is set.
//!
//! Audit: refusals `blocked`; a confirmed deploy a `pending` record before the dispatch and a
//! `posted`, `failed` or `dry_run` record after it, target = `workflow@ref`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use valine_domain::alert::InternalAlert;
use valine_domain::audit::{AuditRecord, AuditResult};
use valine_domain::authz::authorize_deploy;
use valine_domain::config::{Config, Feature};
use valine_domain::git_ref::check_ref_name;
use valine_domain::lock::{Lock, parse_environment};
use valine_domain::message::{ButtonStyle, Embed, Reply};
use valine_domain::trace::{StepStatus, TraceRecorder};
use valine_domain::url_guard::{UrlPolicy, check_url};
use valine_store::{Followed, Held, PendingConfirmation};

use super::confirm::{self, Press, settled};
use crate::ctx::Ctx;
use crate::deferred::Deferred;
use crate::dispatch::{FollowRequest, dispatch_and_follow};
use crate::interaction::Options;
use crate::jobs::JobContext;
use crate::services::Services;
use crate::spec::{Access, OptKind, OptSpec, Spec, Where};

pub(crate) const SPEC: Spec = Spec {
    name: "deploy-client",
    description: "Deploy the client: dispatch the deploy workflow after a confirmation, then follow it",
    options: &[
        OptSpec::new("ref", OptKind::String, "Branch, tag or commit to deploy (default DEPLOY_REF)").max_length(255),
        OptSpec::new("api_base", OptKind::String, "Public https base URL of the API the client should use")
            .max_length(2048),
        OptSpec::new(
            "environment",
            OptKind::String,
            "Where to deploy (default DEPLOY_ENVIRONMENT); refused while /lock holds it",
        )
        .max_length(64),
    ],
    subcommands: &[],
    access: Access::AdminsOr("DEPLOY_ROLE_IDS"),
    place: Where::Guild,
    summary: "A preview with Confirm / Cancel; Confirm dispatches `DEPLOY_WORKFLOW` on `ref` (default `DEPLOY_REF`) with the `environment` input (default `DEPLOY_ENVIRONMENT`) and the message follows the run, then verifies `VERIFY_URLS`. Refused while the environment is locked (`/lock`).",
    span: "handle_deploy_client",
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub git_ref: Option<String>,
    pub api_base: Option<String>,
    pub environment: Option<String>,
}

pub(crate) fn parse(o: &Options) -> Args {
    Args {
        git_ref: o.str("ref").map(str::to_string),
        api_base: o.str("api_base").map(str::to_string),
        environment: o.str("environment").map(str::to_string),
    }
}

/// What the checks look at: the ref, the API base and the environment as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    git_ref: String,
    api_base: Option<String>,
    environment: String,
}

/// A ref GitHub could take, and that no workflow could read as code: see
/// [`valine_domain::git_ref::check_ref_name`]. Only the tests ask it (the checks call
/// `check_ref_name` directly).
#[cfg(test)]
pub(crate) fn valid_ref(r: &str) -> bool {
    check_ref_name(r).is_ok()
}

/// The checks of the command, again at the press and in the job: the caller may deploy, the ref
/// is a ref, and the API base passes the URL guard. `Ok` carries the API base as the guard
/// normalised it. The error is safe to audit (it carries nothing the caller typed).
fn check(config: &Config, caller: valine_domain::authz::Caller<'_>, p: &Pending) -> Result<Option<String>, Checked> {
    authorize_deploy(caller, config).map_err(|r| Checked::plain(r.to_string()))?;
    let missing = config.missing_for(Feature::GitHubRuns);
    if !missing.is_empty() {
        return Err(Checked::plain(format!("GitHub is not configured: set {}.", missing.join(" and "))));
    }
    // The reason names a class or a character of a fixed set, never the ref: safe to audit.
    if let Err(reason) = check_ref_name(&p.git_ref) {
        return Err(Checked::plain(format!("`ref` is not a branch, tag or commit name: {reason}.")));
    }
    if let Err(reason) = parse_environment(&p.environment) {
        return Err(Checked::plain(format!("`environment` was refused: {reason}")));
    }
    let policy = UrlPolicy { allowed_domains: config.allowed_domains.clone(), safe_local: config.safe_local };
    p.api_base
        .as_deref()
        .map(|raw| {
            check_url(raw, &policy).map(|u| u.to_string()).map_err(|reason| Checked {
                told: format!("`api_base` was refused: {reason}."),
                audited: format!("`api_base` was refused: {}.", reason.without_input()),
            })
        })
        .transpose()
}

/// A refusal: what the caller is told, and what the audit record keeps.
struct Checked {
    told: String,
    audited: String,
}

impl Checked {
    fn plain(text: String) -> Self {
        Self { audited: text.clone(), told: text }
    }
}

fn target(config: &Config, git_ref: &str) -> String {
    format!("{}@{git_ref}", config.deploy_workflow)
}

/// The environment's lock, when one holds it. A store that cannot say refuses the deploy: a lock
/// may be there.
async fn lock_of(services: &Services, environment: &str) -> Result<Option<Lock>, Checked> {
    let now = valine_domain::clock::now_secs();
    let read = tokio::time::timeout(LOCK_READ_BUDGET, services.stores.locks.get_lock(environment)).await;
    match read {
        Ok(Ok(lock)) => Ok(lock.filter(|l| l.holds(now))),
        Ok(Err(e)) => {
            Err(Checked::plain(format!("Whether `{environment}` is locked is unknown ({e}); nothing was dispatched.")))
        }
        Err(_) => Err(Checked::plain(format!(
            "Whether `{environment}` is locked is unknown (the store did not answer); nothing was dispatched."
        ))),
    }
}

/// [`check`], then the environment's lock: `Ok` carries the API base as the guard normalised it.
async fn check_all(
    services: &Services,
    caller: valine_domain::authz::Caller<'_>,
    p: &Pending,
) -> Result<Option<String>, Checked> {
    let api_base = check(&services.config, caller, p)?;
    match lock_of(services, &p.environment).await? {
        Some(lock) => {
            let now = valine_domain::clock::now_secs();
            Err(Checked { told: lock.refusal(now), audited: format!("{} is locked by {}", p.environment, lock.by) })
        }
        None => Ok(api_base),
    }
}

const LOCK_READ_BUDGET: Duration = Duration::from_millis(1500);

pub(crate) async fn run(ctx: &mut Ctx<'_>, args: Args) -> Reply {
    let config = ctx.services.config.clone();
    let pending = Pending {
        git_ref: args.git_ref.unwrap_or_else(|| config.deploy_ref.clone()),
        api_base: args.api_base,
        environment: args.environment.unwrap_or_else(|| config.deploy_environment.clone()),
    };
    let api_base = match check_all(ctx.services, ctx.caller(), &pending).await {
        Ok(a) => a,
        Err(refusal) => {
            let record = ctx.blocked_record().target(config.deploy_workflow.clone()).meta("reason", &refusal.audited);
            return ctx.blocked(&refusal.told, record).await;
        }
    };
    ctx.rec.note("checks", StepStatus::Ok, None);
    let pending = Pending { api_base, ..pending };
    let held = Held::Deploy {
        git_ref: pending.git_ref.clone(),
        api_base: pending.api_base.clone(),
        environment: Some(pending.environment.clone()),
    };
    let stored = match confirm::hold(ctx, held, "nothing was dispatched").await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let expires_at = stored.expires_at;
    let repo = config.github_repo.as_ref().map(ToString::to_string).unwrap_or_default();
    let mut embed = Embed::new("🚀 Deploy client?")
        .colour(0x58_65_F2)
        .field("Workflow", format!("`{}`", config.deploy_workflow), true)
        .field("Ref", format!("`{}`", pending.git_ref), true)
        .field("Environment", format!("`{}`", pending.environment), true)
        .field("Repository", format!("`{repo}`"), true);
    if let Some(a) = &pending.api_base {
        embed = embed.field("API base", a, false);
    }
    if !config.verify_urls.is_empty() {
        embed = embed.field("Then", "verifies the VERIFY_URLS endpoints once the run succeeds", false);
    }
    embed = embed.footer(format!("Preview · trace {}", stored.trace_id));
    let happens = "nothing is dispatched until you confirm";
    confirm::preview(embed, ("Deploy", ButtonStyle::Success), &stored.id, happens, expires_at)
}

/// Confirm or Cancel on a deploy preview, once its confirmation was taken by its owner.
pub(crate) async fn confirmed(ctx: &mut Ctx<'_>, stored: PendingConfirmation, press: Press) -> Reply {
    if press == Press::Cancel {
        return confirm::cancelled(ctx, &stored, "Nothing was dispatched");
    }
    let config = ctx.services.config.clone();
    let Held::Deploy { git_ref, api_base, environment } = stored.held else {
        return confirm::damaged("nothing was dispatched");
    };
    let environment = environment.unwrap_or_else(|| config.deploy_environment.clone());
    let pending = Pending { git_ref, api_base, environment };
    let record_target = target(&config, &pending.git_ref);
    let api_base = match check_all(ctx.services, ctx.caller(), &pending).await {
        Ok(a) => a,
        Err(refusal) => {
            let record = ctx.blocked_record().target(record_target).meta("reason", &refusal.audited);
            let text = ctx.blocked_text(&refusal.told, record).await;
            return settled(format!("⚠️ {text}\n-# trace `{}`", ctx.trace_id()));
        }
    };
    // Nothing is dispatched without a durable record of the intent.
    let intent = AuditRecord::new(&ctx.trace_id(), ctx.user_id, &SPEC.slash(), AuditResult::Pending)
        .target(record_target.clone())
        .meta("username", &ctx.user_name)
        .meta("environment", &pending.environment);
    if let Err(e) = ctx.audit("audit.intent", &intent).await {
        let title = "Audit write failed: a deploy was refused";
        ctx.alert(InternalAlert::AuditWriteFailed, title, &e.to_string(), Duration::from_millis(200)).await;
        ctx.rec.fail(&e);
        return settled(format!(
            "⚠️ The audit store is unavailable ({e}), so nothing was dispatched.\n-# trace `{}`",
            ctx.trace_id()
        ));
    }
    let correlation_id = uuid::Uuid::new_v4().to_string();
    ctx.rec.set_correlation_id(&correlation_id);
    let job = DeployJob {
        ctx: ctx.job_context(),
        correlation_id,
        git_ref: pending.git_ref.clone(),
        api_base,
        intent_audit_id: intent.audit_id.clone(),
        environment: Some(pending.environment.clone()),
    };
    match ctx.defer(job).await {
        Ok(()) => settled(format!(
            "⏳ Dispatching `{}` on `{}` to `{}`…\n-# audit `{}` · trace `{}`",
            config.deploy_workflow,
            pending.git_ref,
            pending.environment,
            intent.audit_id,
            ctx.trace_id()
        )),
        Err(e) => {
            let outcome = AuditRecord::new(&ctx.trace_id(), ctx.user_id, &SPEC.slash(), AuditResult::Failed)
                .target(record_target)
                .meta("username", &ctx.user_name)
                .meta("intent_audit_id", &intent.audit_id)
                .meta("reason", e.to_string());
            let _ = ctx.audit("audit.outcome", &outcome).await;
            ctx.alert(
                InternalAlert::DispatchFailed,
                "/deploy-client could not start its job",
                &e.to_string(),
                Duration::ZERO,
            )
            .await;
            ctx.rec.fail(&e);
            settled(format!(
                "⚠️ The deploy could not start: {e}. Nothing was dispatched.\n-# trace `{}`",
                ctx.trace_id()
            ))
        }
    }
}

/// `/deploy-client`, confirmed: dispatch `DEPLOY_WORKFLOW` and follow it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployJob {
    pub ctx: JobContext,
    pub correlation_id: String,
    pub git_ref: String,
    pub api_base: Option<String>,
    pub intent_audit_id: String,
    /// `None` in a job queued before environments: `DEPLOY_ENVIRONMENT`.
    #[serde(default)]
    pub environment: Option<String>,
}

impl Deferred for DeployJob {
    const KIND: &'static str = "deploy";

    fn context(&self) -> &JobContext {
        &self.ctx
    }

    fn context_mut(&mut self) -> &mut JobContext {
        &mut self.ctx
    }

    async fn run(self, services: &Services, rec: &mut TraceRecorder) {
        run_job(services, rec, self).await
    }
}

/// The job half: check again, dispatch and follow, audit the outcome.
async fn run_job(services: &Services, rec: &mut TraceRecorder, job: DeployJob) {
    let DeployJob { ctx, correlation_id, git_ref, api_base, intent_audit_id, environment } = job;
    let ctx = &ctx;
    let config = services.config.clone();
    let record_target = target(&config, &git_ref);
    let caller = valine_domain::authz::Caller { user_id: ctx.user_id, roles: ctx.roles.as_deref() };
    let environment = environment.unwrap_or_else(|| config.deploy_environment.clone());
    let pending = Pending { git_ref: git_ref.clone(), api_base: api_base.clone(), environment: environment.clone() };
    let trace_id = rec.trace_id().to_string();
    let outcome = |result: AuditResult| {
        AuditRecord::new(&trace_id, ctx.user_id, &SPEC.slash(), result)
            .target(record_target.clone())
            .meta("username", &ctx.user_name)
            .meta("intent_audit_id", &intent_audit_id)
            .meta("environment", &environment)
    };
    // The job trusts nothing it was handed: whoever can invoke the function could have sent it;
    // and a lock set since the confirmation holds.
    let (record, result) = match check_all(services, caller, &pending).await {
        Err(refusal) => {
            let record = outcome(AuditResult::Blocked).meta("reason", &refusal.audited);
            rec.fail(&refusal.audited);
            tracing::warn!(reason = %refusal.audited, "a deploy job failed its checks; nothing was dispatched");
            services.job_failed(rec, ctx, &format!("Nothing was dispatched: {}", refusal.told)).await;
            (record, Err(()))
        }
        Ok(api_base) => {
            let request = FollowRequest {
                kind: Followed::Deploy,
                command: "/deploy-client",
                correlation_id: correlation_id.clone(),
                workflow: config.deploy_workflow.clone(),
                git_ref: git_ref.clone(),
                inputs: vec![("api_base", api_base.clone().unwrap_or_default()), ("environment", environment.clone())],
                frontend_url: None,
                api_base,
                show_ref: true,
                repo: None,
            };
            match dispatch_and_follow(services, rec, ctx, request).await {
                Ok(()) if config.dry_run => (outcome(AuditResult::DryRun), Ok(())),
                Ok(()) => (outcome(AuditResult::Posted).meta("correlation_id", &correlation_id), Ok(())),
                Err(e) => (outcome(AuditResult::Failed).meta("reason", e.to_string()), Err(())),
            }
        }
    };
    if let Err(e) = rec.time("audit.outcome", services.stores.audit.append(&record)).await {
        tracing::error!(error = %e, audit_id = %record.audit_id, "audit write failed: the deploy's outcome is not recorded");
        services
            .internal_alert(
                InternalAlert::AuditWriteFailed,
                "Audit write failed: a deploy's outcome is not recorded",
                &e.to_string(),
                rec.trace_id(),
                &ctx.user_name,
                Duration::from_secs(2),
            )
            .await;
    }
    tracing::info!(result = record.result.as_str(), audit_id = %record.audit_id, ok = result.is_ok(), "deploy done");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs() {
        for ok in ["main", "release/1.x", "v1.2.3", "a1b2c3d", "feature/x_y-z"] {
            assert!(valid_ref(ok), "{ok}");
        }
        for bad in ["", "has space", "-x", "a..b", "a:b", "x/", "x.", "a@{1}", "a~1", "a\u{7}"] {
            assert!(!valid_ref(bad), "{bad}");
        }
    }

    /// What `git check-ref-format` refuses, and what a workflow would read as code.
    #[test]
    fn refs_follow_git_check_ref_format_and_hold_no_code() {
        let long = "a".repeat(201);
        for bad in [
            "@",
            "a//b",
            "feature/.hidden",
            ".dotfirst",
            "x.lock",
            "release/x.lock/y",
            "$(id)",
            "main;id",
            "main`id`",
            "a|b",
            "a&&b",
            "it's",
            long.as_str(),
        ] {
            assert!(!valid_ref(bad), "{bad}");
        }
        assert!(valid_ref(&"a".repeat(200)));
    }
}
