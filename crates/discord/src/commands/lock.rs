//! `/lock environment reason [duration]` and `/unlock environment`: admins and `DEPLOY_ROLE_IDS`
//! (who may deploy may stop deploys). A lock makes `/deploy-client` to that environment refuse,
//! saying who locked it, why and for how long, until `/unlock` or its expiry. Every change
//! audited, every refusal audited `blocked`.

use std::time::Duration;

use valine_domain::audit::{AuditRecord, AuditResult};
use valine_domain::authz::authorize_deploy;
use valine_domain::clock::now_secs;
use valine_domain::lock::{Lock, MAX_REASON, parse_duration, parse_environment};
use valine_domain::message::{Message, Reply, truncate};

use crate::ctx::Ctx;
use crate::interaction::Options;
use crate::spec::{Access, OptKind, OptSpec, Spec, Where};

const ENVIRONMENT: OptSpec =
    OptSpec::new("environment", OptKind::String, "The environment (production, staging)").required().max_length(64);

pub(crate) const LOCK: Spec = Spec {
    name: "lock",
    description: "Lock an environment: /deploy-client to it is refused until /unlock or the lock ends",
    options: &[
        ENVIRONMENT,
        OptSpec::new("reason", OptKind::String, "Why: shown to whoever tries to deploy").required().max_length(200),
        OptSpec::new("duration", OptKind::String, "How long: 30m, 2h, 1d (default until /unlock)").max_length(20),
    ],
    subcommands: &[],
    access: Access::AdminsOr("DEPLOY_ROLE_IDS"),
    place: Where::Guild,
    summary: "Locks the environment: `/deploy-client` to it is refused with who locked it, why and for how long, until `/unlock` or the `duration` (30m, 2h, 1d; at most 30 days) ends. Audited.",
    span: "handle_lock",
};

pub(crate) const UNLOCK: Spec = Spec {
    name: "unlock",
    description: "Unlock an environment locked with /lock",
    options: &[ENVIRONMENT],
    subcommands: &[],
    access: Access::AdminsOr("DEPLOY_ROLE_IDS"),
    place: Where::Guild,
    summary: "Removes the environment's lock, whoever set it. Audited.",
    span: "handle_unlock",
};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Args {
    pub environment: Option<String>,
    pub reason: Option<String>,
    pub duration: Option<String>,
}

pub(crate) fn parse(o: &Options) -> Args {
    Args {
        environment: o.str("environment").map(str::to_string),
        reason: o.str("reason").map(str::to_string),
        duration: o.str("duration").map(str::to_string),
    }
}

const STORE_BUDGET: Duration = Duration::from_millis(1500);

/// The checks both commands share: the caller may deploy, and the environment is one.
async fn checked(ctx: &mut Ctx<'_>, args: &Args) -> Result<String, Reply> {
    let typed = args.environment.clone().unwrap_or_default();
    let record = ctx.blocked_record().meta("environment", truncate(&typed, 64));
    if let Err(refusal) = authorize_deploy(ctx.caller(), &ctx.services.config) {
        return Err(ctx.blocked(&refusal.to_string(), record).await);
    }
    match parse_environment(&typed) {
        Ok(e) => Ok(e),
        Err(reason) => Err(ctx.blocked(&reason, record).await),
    }
}

fn record(ctx: &Ctx<'_>, environment: &str) -> AuditRecord {
    AuditRecord::new(&ctx.trace_id(), ctx.user_id, &ctx.command, AuditResult::Posted)
        .target(environment.to_string())
        .meta("username", &ctx.user_name)
}

/// `/lock`.
pub(crate) async fn run_lock(ctx: &mut Ctx<'_>, args: Args) -> Reply {
    let environment = match checked(ctx, &args).await {
        Ok(e) => e,
        Err(reply) => return reply,
    };
    let now = now_secs();
    let until = match args.duration.as_deref().map(parse_duration).transpose() {
        Ok(d) => d.map(|secs| now + secs),
        Err(reason) => {
            let record = ctx.blocked_record().target(environment.clone());
            return ctx.blocked(&reason, record).await;
        }
    };
    let reason: String = args.reason.unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
    let reason: String = reason.chars().take(MAX_REASON).collect();
    if reason.is_empty() {
        let record = ctx.blocked_record().target(environment.clone());
        return ctx.blocked("Say why: the reason is shown to whoever tries to deploy.", record).await;
    }
    let lock = Lock { environment: environment.clone(), by: ctx.user_id, reason, at: now, until };
    let locks = ctx.services.stores.locks.clone();
    let taken = match ctx.store_step("store.lock", STORE_BUDGET, locks.lock(&lock)).await {
        Ok(t) => t,
        Err(e) => return ctx.store_unavailable(&e, "nothing was locked").await,
    };
    if let Some(held) = taken {
        let record = ctx.blocked_record().target(environment.clone()).meta("locked_by", held.by.to_string());
        let told = format!("Already locked: {}. /unlock it first to change the lock.", held.refusal(now));
        return ctx.blocked(&told, record).await;
    }
    let record = record(ctx, &environment)
        .meta("reason", &lock.reason)
        .meta("until", lock.until.map(|u| u.to_string()).unwrap_or_else(|| "unlock".into()));
    let audited = ctx.audit("audit.lock", &record).await;
    let mut text = format!(
        "🔒 `{environment}` is locked {}: /deploy-client to it is refused until then.",
        lock.lasting(now, false)
    );
    if audited.is_err() {
        text.push_str(" (The audit record could not be written; the lock stands.)");
    }
    Reply::Message(Message::text(text))
}

/// `/unlock`.
pub(crate) async fn run_unlock(ctx: &mut Ctx<'_>, args: Args) -> Reply {
    let environment = match checked(ctx, &args).await {
        Ok(e) => e,
        Err(reply) => return reply,
    };
    let locks = ctx.services.stores.locks.clone();
    let removed = match ctx.store_step("store.unlock", STORE_BUDGET, locks.unlock(&environment)).await {
        Ok(r) => r.filter(|l| l.holds(now_secs())),
        Err(e) => return ctx.store_unavailable(&e, "nothing was unlocked").await,
    };
    let Some(lock) = removed else {
        let record = ctx.blocked_record().target(environment.clone());
        return ctx.blocked(&format!("`{environment}` is not locked."), record).await;
    };
    let record = record(ctx, &environment).meta("locked_by", lock.by.to_string()).meta("reason", &lock.reason);
    let audited = ctx.audit("audit.unlock", &record).await;
    let mut text = format!("🔓 `{environment}` is unlocked (it was locked by <@{}>: {}).", lock.by, lock.reason);
    if audited.is_err() {
        text.push_str(" (The audit record could not be written; it is unlocked.)");
    }
    Reply::Message(Message::text(text))
}
