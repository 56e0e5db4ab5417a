//! `/relay-send` and `/relay-dm`: admins post a message as the bot, to a channel or as a real
//! direct message. Without `confirm:true` the caller gets a preview with Confirm / Cancel
//! buttons, bound to them and expiring after five minutes.
//!
//! Audit: a refusal leaves a `blocked` record. A relay leaves a `pending` record written before
//! the post (nothing is posted unless it was durably written) and a `posted`, `failed` or
//! `dry_run` record after it, pointing back through `metadata.intent_audit_id`. The text is never
//! stored: records carry its keyed digest and `…abcd` fingerprint.

use std::time::Duration;

use serde_json::{Value, json};
use serenity::model::application::CommandDataOption;
use valine_clients::discord_api::{DiscordError, PostedMessage};
use valine_domain::audit::{AuditRecord, AuditResult, MessageDigest};
use valine_domain::authz::authorize_admin;
use valine_domain::clock::now_secs;
use valine_domain::config::Feature;
use valine_domain::trace::StepStatus;
use valine_store::{PendingConfirmation, StoreError, Taken};

use crate::app::{Ctx, opt_bool, opt_channel, opt_str, opt_user};
use crate::response;

/// How long a preview's Confirm button works.
pub const CONFIRM_TTL_SECS: u64 = 300;
/// Discord's limit for message content.
pub const MAX_MESSAGE_CHARS: usize = 2000;
/// Kept back from the answer budget while posting: the outcome record and the answer still
/// need their time, however slow Discord is.
const OUTCOME_RESERVE: Duration = Duration::from_millis(400);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Channel(u64),
    User(u64),
}

impl Target {
    fn mention(self) -> String {
        match self {
            Target::Channel(c) => format!("<#{c}>"),
            Target::User(u) => format!("a DM to <@{u}>"),
        }
    }
}

fn parse_id(raw: &str) -> Option<u64> {
    let raw =
        raw.trim().trim_start_matches("<#").trim_start_matches("<@").trim_start_matches('!').trim_end_matches('>');
    raw.parse::<u64>().ok().filter(|id| *id > 0)
}

pub async fn run_send(ctx: &mut Ctx<'_>, opts: &[CommandDataOption]) -> Value {
    let target =
        opt_channel(opts, "channel").or_else(|| opt_str(opts, "channel_id").and_then(parse_id)).map(Target::Channel);
    let bad_id = target.is_none() && opt_str(opts, "channel_id").is_some();
    request(ctx, opts, target, bad_id, "Give a channel: the `channel` option, or a `channel_id`.").await
}

pub async fn run_dm(ctx: &mut Ctx<'_>, opts: &[CommandDataOption]) -> Value {
    let target = opt_user(opts, "user").or_else(|| opt_str(opts, "user_id").and_then(parse_id)).map(Target::User);
    let bad_id = target.is_none() && opt_str(opts, "user_id").is_some();
    request(ctx, opts, target, bad_id, "Give a user: the `user` option.").await
}

async fn request(
    ctx: &mut Ctx<'_>,
    opts: &[CommandDataOption],
    target: Option<Target>,
    bad_id: bool,
    no_target: &str,
) -> Value {
    let message = opt_str(opts, "message").map(str::to_string);
    let confirm = opt_bool(opts, "confirm").unwrap_or(false);
    let ephemeral = opt_bool(opts, "ephemeral").unwrap_or(true);
    if let Err(refusal) = authorize_admin(ctx.caller(), &ctx.app.config) {
        return blocked(ctx, target, message.as_deref(), &refusal.to_string()).await;
    }
    let Some(target) = target else {
        let reason = if bad_id { "That id is not a Discord id." } else { no_target };
        return blocked(ctx, None, message.as_deref(), reason).await;
    };
    let Some(message) = message else {
        return blocked(ctx, Some(target), None, "Give the `message` to relay.").await;
    };
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return blocked(ctx, Some(target), Some(&message), "The message is longer than Discord's 2000 characters.")
            .await;
    }
    let missing = ctx.app.config.missing_for(Feature::Relay);
    if !missing.is_empty() {
        let reason = format!("Relays are not configured: set {}.", missing.join(" and "));
        return blocked(ctx, Some(target), Some(&message), &reason).await;
    }
    if !confirm {
        return preview(ctx, target, message, ephemeral).await;
    }
    match ctx.first_time().await {
        Ok(true) => {}
        Ok(false) => {
            let reason = "This interaction was already handled; nothing was posted again.";
            return blocked(ctx, Some(target), Some(&message), reason).await;
        }
        Err(e) => return ctx.store_unavailable(&e, "nothing was posted").await,
    }
    match relay(ctx, target, &message).await {
        Ok(summary) => response::message(&summary, ephemeral),
        Err(text) => response::error(&text, &ctx.trace_id()),
    }
}

/// The Confirm / Cancel buttons; `None` for a custom id that is not ours.
pub async fn component(ctx: &mut Ctx<'_>, custom_id: &str) -> Option<Value> {
    let (action, id) = custom_id.strip_prefix("relay:")?.split_once(':')?;
    if action != "confirm" && action != "cancel" {
        return None;
    }
    let confirmations = ctx.app.stores.confirmations.clone();
    let t = ctx.rec.start("store.take_confirmation");
    let user_id = ctx.user_id;
    let taken = ctx
        .within(Duration::from_millis(1500), confirmations.take_confirmation(id, user_id))
        .await
        .unwrap_or_else(|| Err(StoreError::Unavailable("no answer in time".into())));
    ctx.rec.finish(
        t,
        if taken.is_ok() { StepStatus::Ok } else { StepStatus::Error },
        taken.as_ref().err().map(ToString::to_string),
    );
    let pending = match taken {
        Ok(Taken::Yours(p)) => p,
        Ok(Taken::Missing) => {
            let reason = "This confirmation expired or was already used. Run the command again.";
            let record = ctx.blocked_record().meta("confirmation", id);
            let answer = ctx.blocked(reason, record).await;
            let text = answer["data"]["content"].as_str().unwrap_or(reason).to_string();
            return Some(response::update(&text, &[]));
        }
        Ok(Taken::NotYours) => {
            // Someone else's preview: it stays for its owner, and the attempt is audited.
            let reason = "Only the person who asked can confirm or cancel this relay.";
            let record = ctx.blocked_record().meta("confirmation", id);
            return Some(ctx.blocked(reason, record).await);
        }
        Err(e) => {
            let answer = ctx.store_unavailable(&e, "nothing was posted").await;
            let text = answer["data"]["content"]
                .as_str()
                .unwrap_or("The store is unavailable; nothing was posted.")
                .to_string();
            return Some(response::update(&text, &[]));
        }
    };
    ctx.command = pending.command.clone();
    if action == "cancel" {
        ctx.rec.note("cancelled", StepStatus::Ok, None);
        tracing::info!(confirmation = %pending.id, "relay cancelled");
        return Some(response::update("Cancelled. Nothing was posted.", &[]));
    }
    let target = match (pending.channel_id, pending.target_user_id) {
        (Some(c), _) => Target::Channel(c),
        (None, Some(u)) => Target::User(u),
        (None, None) => return Some(response::update("This confirmation is damaged; nothing was posted.", &[])),
    };
    if let Err(refusal) = authorize_admin(ctx.caller(), &ctx.app.config) {
        let answer = blocked(ctx, Some(target), Some(&pending.message), &refusal.to_string()).await;
        let text = answer["data"]["content"].as_str().unwrap_or("Refused.").to_string();
        return Some(response::update(&text, &[]));
    }
    let text = match relay(ctx, target, &pending.message).await {
        Ok(summary) => summary,
        Err(text) => format!("⚠️ {text}\n-# trace `{}`", ctx.trace_id()),
    };
    Some(response::update(&text, &[]))
}

/// An ephemeral preview with Confirm / Cancel; the text waits in the state table for 5 minutes.
async fn preview(ctx: &mut Ctx<'_>, target: Target, message: String, ephemeral: bool) -> Value {
    let expires_at = now_secs() + CONFIRM_TTL_SECS;
    let (channel_id, target_user_id) = match target {
        Target::Channel(c) => (Some(c), None),
        Target::User(u) => (None, Some(u)),
    };
    let pending = PendingConfirmation {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: ctx.user_id,
        command: ctx.command.clone(),
        channel_id,
        target_user_id,
        message,
        ephemeral,
        trace_id: ctx.trace_id(),
        expires_at,
    };
    let confirmations = ctx.app.stores.confirmations.clone();
    let t = ctx.rec.start("store.put_confirmation");
    let stored = ctx
        .within(Duration::from_millis(1500), confirmations.put_confirmation(&pending))
        .await
        .unwrap_or_else(|| Err(StoreError::Unavailable("no answer in time".into())));
    ctx.rec.finish(
        t,
        if stored.is_ok() { StepStatus::Ok } else { StepStatus::Error },
        stored.as_ref().err().map(ToString::to_string),
    );
    if let Err(e) = stored {
        return ctx.store_unavailable(&e, "nothing was posted").await;
    }
    let embed = json!({
        "description": pending.message,
        "color": 0x58_65_F2,
        "footer": {"text": format!("Preview · trace {}", pending.trace_id)},
    });
    let buttons = response::buttons(&[
        ("Confirm", format!("relay:confirm:{}", pending.id), 3),
        ("Cancel", format!("relay:cancel:{}", pending.id), 2),
    ]);
    let content =
        format!("**Preview**: this goes to {} when you confirm (expires <t:{expires_at}:R>).", target.mention());
    response::rich(Some(&content), &[embed], &[buttons], true)
}

fn record(ctx: &Ctx<'_>, result: AuditResult, target: Option<Target>, digest: Option<&MessageDigest>) -> AuditRecord {
    let mut r = AuditRecord::new(&ctx.trace_id(), ctx.user_id, &ctx.command, result).meta("username", &ctx.user_name);
    match target {
        Some(Target::Channel(c)) => r.target_channel = Some(c.to_string()),
        Some(Target::User(u)) => r.target_user = Some(u.to_string()),
        None => {}
    }
    if let Some(d) = digest {
        r = r.with_digest(d);
    }
    r
}

fn digest(ctx: &Ctx<'_>, message: Option<&str>) -> Option<MessageDigest> {
    let key = ctx.app.config.audit_hmac_key.as_ref()?;
    message.map(|m| MessageDigest::compute(key.expose().as_bytes(), m))
}

/// A refusal, audited as `blocked`.
async fn blocked(ctx: &mut Ctx<'_>, target: Option<Target>, message: Option<&str>, reason: &str) -> Value {
    let digest = digest(ctx, message);
    let record = record(ctx, AuditResult::Blocked, target, digest.as_ref());
    ctx.blocked(reason, record).await
}

/// Writes the intent, posts, writes the outcome. `Ok` carries the summary, `Err` the failure.
async fn relay(ctx: &mut Ctx<'_>, target: Target, message: &str) -> Result<String, String> {
    let Some(digest) = digest(ctx, Some(message)) else {
        return Err("Relays are not configured: set AUDIT_HMAC_KEY.".into());
    };
    let intent = record(ctx, AuditResult::Pending, Some(target), Some(&digest));
    if let Err(e) = ctx.audit("audit.intent", &intent).await {
        let title = "Audit write failed: a relay was refused";
        ctx.alert("audit_write_failed", title, &e.to_string(), Duration::from_millis(200)).await;
        ctx.rec.fail(&e);
        return Err(format!("The audit store is unavailable ({e}), so nothing was posted."));
    }
    let dry_run = ctx.app.discord.is_dry_run();
    let posted = post(ctx, target, message).await;
    let result = match (&posted, dry_run) {
        (Ok(_), true) => AuditResult::DryRun,
        (Ok(_), false) => AuditResult::Posted,
        (Err(_), _) => AuditResult::Failed,
    };
    let mut outcome = record(ctx, result, Some(target), Some(&digest)).meta("intent_audit_id", &intent.audit_id);
    match &posted {
        Ok(p) if !dry_run => outcome = outcome.meta("message_id", p.id.to_string()),
        Ok(_) => {}
        Err(e) => outcome = outcome.meta("reason", e.to_string()),
    }
    let outcome_written = ctx.audit("audit.outcome", &outcome).await;
    let audit_id = if outcome_written.is_ok() { &outcome.audit_id } else { &intent.audit_id };
    let mut note = String::new();
    if let Err(e) = &outcome_written {
        let title = "Audit write failed: a relay's outcome is not recorded";
        ctx.alert("audit_write_failed", title, &e.to_string(), Duration::from_millis(100)).await;
        note = format!("\n⚠️ The outcome could not be audited; the intent record `{}` stands.", intent.audit_id);
    }
    let tail = format!("fingerprint `{}` · audit `{audit_id}` · trace `{}`", digest.fingerprint(), ctx.trace_id());
    tracing::info!(result = result.as_str(), audit_id = %audit_id, fingerprint = %digest.fingerprint(), "relay done");
    match posted {
        Ok(_) if dry_run => {
            Ok(format!("🧪 DRY_RUN: nothing was sent (it would go to {}).\n{tail}{note}", target.mention()))
        }
        Ok(p) => {
            ctx.rec.link("message", p.link());
            Ok(format!("✅ Sent to {} · [jump to the message]({})\n{tail}{note}", target.mention(), p.link()))
        }
        Err(DiscordError::Timeout) => {
            ctx.rec.fail("Discord did not answer in time");
            Err(format!(
                "Discord did not answer in time: the message may or may not have arrived; check {} before retrying.\n{tail}{note}",
                target.mention()
            ))
        }
        Err(e) => {
            ctx.rec.fail(&e);
            Err(format!("Nothing was posted: {e}.\n{tail}{note}"))
        }
    }
}

/// Posts to the channel, or opens the DM channel and posts there. Never pings anyone. Each call
/// keeps [`OUTCOME_RESERVE`] back, so that the outcome is audited whatever Discord does.
async fn post(ctx: &mut Ctx<'_>, target: Target, message: &str) -> Result<PostedMessage, DiscordError> {
    let discord = ctx.app.discord.clone();
    let body = json!({"content": message, "allowed_mentions": {"parse": []}});
    let cap = |ctx: &Ctx<'_>, cap: Duration| cap.min(ctx.remaining().saturating_sub(OUTCOME_RESERVE));
    let channel = match target {
        Target::Channel(c) => c,
        Target::User(u) => {
            let t = ctx.rec.start("discord.open_dm");
            let opened = ctx
                .within(cap(ctx, Duration::from_secs(2)), discord.open_dm(u))
                .await
                .unwrap_or(Err(DiscordError::Timeout));
            ctx.rec.finish(
                t,
                if opened.is_ok() { StepStatus::Ok } else { StepStatus::Error },
                opened.as_ref().err().map(ToString::to_string),
            );
            opened?
        }
    };
    let t = ctx.rec.start("discord.post_message");
    let posted = ctx
        .within(cap(ctx, Duration::from_millis(2300)), discord.post_message(channel, &body))
        .await
        .unwrap_or(Err(DiscordError::Timeout))
        .map(|mut p| {
            // Discord leaves `guild_id` out of the message it returns; the link needs it, and a
            // channel relay goes to a channel of the guild it was asked from.
            if matches!(target, Target::Channel(_)) {
                p.guild_id = p.guild_id.or(ctx.guild_id);
            }
            p
        });
    ctx.rec.finish(
        t,
        if posted.is_ok() { StepStatus::Ok } else { StepStatus::Error },
        posted.as_ref().err().map(ToString::to_string),
    );
    posted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_from_plain_and_mention_forms() {
        assert_eq!(parse_id("1184576487578214464"), Some(1184576487578214464));
        assert_eq!(parse_id("<#1184576487578214464>"), Some(1184576487578214464));
        assert_eq!(parse_id("<@!42>"), Some(42));
        assert_eq!(parse_id("0"), None);
        assert_eq!(parse_id("general"), None);
    }
}
