//! `/relay-send` and `/relay-dm`: admins post a message as the bot, to a channel or as a real
//! direct message. Without `confirm:true` the caller gets a preview with Confirm / Cancel
//! buttons, bound to them and expiring after five minutes.
//!
//! Audit: a refusal leaves a `blocked` record. A relay leaves a `pending` record written before
//! the post (nothing is posted unless it was durably written) and a `posted`, `failed` or
//! `dry_run` record after it, pointing back through `metadata.intent_audit_id`. The text is never
//! stored in the clear: records carry its keyed digest and `…abcd` fingerprint, and a preview
//! keeps it encrypted at rest until its Confirm.

use std::time::Duration;

use valine_clients::discord_api::{DiscordError, PostedMessage};
use valine_domain::alert::InternalAlert;
use valine_domain::audit::{AuditRecord, AuditResult, MessageDigest};
use valine_domain::authz::authorize_admin;
use valine_domain::config::Feature;
use valine_domain::message::{ButtonStyle, Embed, Message, Reply};
use valine_store::{Held, PendingConfirmation};

use super::at_rest;
use super::confirm::{self, Press, settled};
use crate::ctx::Ctx;
use crate::interaction::Options;
use crate::spec::{Access, OptKind, OptSpec, Spec, Where};

const CHANNEL_TYPES: &[u8] = &[0, 5, 10, 11, 12];

pub(crate) const SEND: Spec = Spec {
    name: "relay-send",
    description: "Post a message as the bot (admins; audited)",
    options: &[
        OptSpec::new("message", OptKind::String, "The text to post (no one is pinged)").required().max_length(2000),
        OptSpec::new("channel", OptKind::Channel, "Where to post").channel_types(CHANNEL_TYPES),
        OptSpec::new("channel_id", OptKind::String, "Where to post, as an id (when the channel is not listed)"),
        OptSpec::new("confirm", OptKind::Boolean, "Post now instead of showing a preview"),
        OptSpec::new("ephemeral", OptKind::Boolean, "Keep the summary visible only to you (default true)"),
    ],
    subcommands: &[],
    access: Access::Admins,
    place: Where::Guild,
    summary: "Posts as the bot. Without `confirm:true` you get a preview with Confirm / Cancel buttons. Posts never ping anyone, and every attempt is audited.",
    span: "handle_relay_send",
};

pub(crate) const DM: Spec = Spec {
    name: "relay-dm",
    description: "Send a direct message as the bot (admins; audited)",
    options: &[
        OptSpec::new("user", OptKind::User, "Who receives it").required(),
        OptSpec::new("message", OptKind::String, "The text to send").required().max_length(2000),
        OptSpec::new("confirm", OptKind::Boolean, "Send now instead of showing a preview"),
        OptSpec::new("ephemeral", OptKind::Boolean, "Keep the summary visible only to you (default true)"),
    ],
    subcommands: &[],
    access: Access::Admins,
    place: Where::Guild,
    summary: "A real direct message, with the same confirmation and audit.",
    span: "handle_relay_dm",
};

/// A relay as asked: the target may be missing or malformed, which the command refuses (and
/// audits) rather than the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub target: Option<Target>,
    /// An id option was given but is not a Discord id.
    pub bad_id: bool,
    pub message: Option<String>,
    pub confirm: bool,
    pub ephemeral: bool,
}

fn parse_with(o: &Options, target: Option<Target>, id_option: &str) -> Args {
    Args {
        bad_id: target.is_none() && o.str(id_option).is_some(),
        target,
        message: o.str("message").map(str::to_string),
        confirm: o.bool("confirm").unwrap_or(false),
        ephemeral: o.bool("ephemeral").unwrap_or(true),
    }
}

pub(crate) fn parse_send(o: &Options) -> Args {
    let target = o.id("channel").or_else(|| o.str("channel_id").and_then(parse_id)).map(Target::Channel);
    parse_with(o, target, "channel_id")
}

pub(crate) fn parse_dm(o: &Options) -> Args {
    let target = o.id("user").or_else(|| o.str("user_id").and_then(parse_id)).map(Target::User);
    parse_with(o, target, "user_id")
}

/// Discord's limit for message content.
pub(crate) const MAX_MESSAGE_CHARS: usize = 2000;
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

/// `/relay-send` and `/relay-dm`.
pub(crate) async fn run(ctx: &mut Ctx<'_>, Args { target, bad_id, message, confirm, ephemeral }: Args) -> Reply {
    let no_target = if ctx.command == DM.slash() {
        "Give a user: the `user` option."
    } else {
        "Give a channel: the `channel` option, or a `channel_id`."
    };
    if let Err(refusal) = authorize_admin(ctx.caller(), &ctx.services.config) {
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
    let missing = ctx.services.config.missing_for(Feature::Relay);
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
        Ok(summary) => Reply::Message(Message { ephemeral, ..Message::text(summary) }),
        Err(text) => Reply::Message(Message::error(&text, &ctx.trace_id())),
    }
}

/// A Confirm or Cancel press on a relay's preview, once its owner took the confirmation.
pub(crate) async fn confirmed(ctx: &mut Ctx<'_>, pending: PendingConfirmation, press: Press) -> Reply {
    if press == Press::Cancel {
        return confirm::cancelled(ctx, &pending, "Nothing was posted");
    }
    let Held::Relay { channel_id, user_id, text, .. } = pending.held else {
        return confirm::damaged("nothing was posted");
    };
    // AUDIT_HMAC_KEY changed since the preview, or the item was altered: nothing to post.
    let Some(text) = at_rest::open(&ctx.services.config, &text) else {
        return confirm::damaged("nothing was posted");
    };
    let target = match (channel_id, user_id) {
        (Some(c), _) => Target::Channel(c),
        (None, Some(u)) => Target::User(u),
        (None, None) => return confirm::damaged("nothing was posted"),
    };
    if let Err(refusal) = authorize_admin(ctx.caller(), &ctx.services.config) {
        let text = blocked_text(ctx, Some(target), Some(&text), &refusal.to_string()).await;
        return settled(format!("⚠️ {text}\n-# trace `{}`", ctx.trace_id()));
    }
    let text = match relay(ctx, target, &text).await {
        Ok(summary) => summary,
        Err(text) => format!("⚠️ {text}\n-# trace `{}`", ctx.trace_id()),
    };
    settled(text)
}

/// An ephemeral preview with Confirm / Cancel; the text waits in the state table for 5 minutes,
/// encrypted.
async fn preview(ctx: &mut Ctx<'_>, target: Target, message: String, ephemeral: bool) -> Reply {
    let (channel_id, user_id) = match target {
        Target::Channel(c) => (Some(c), None),
        Target::User(u) => (None, Some(u)),
    };
    let Some(text) = at_rest::seal(&ctx.services.config, &message) else {
        return blocked(ctx, Some(target), Some(&message), "Relays are not configured: set AUDIT_HMAC_KEY.").await;
    };
    let held = Held::Relay { channel_id, user_id, text, ephemeral };
    let pending = match confirm::hold(ctx, held, "nothing was posted").await {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    let expires_at = pending.expires_at;
    let embed = Embed::default()
        .description(&message)
        .colour(0x58_65_F2)
        .footer(format!("Preview · trace {}", pending.trace_id));
    let happens = format!("this goes to {} when you confirm", target.mention());
    confirm::preview(embed, ("Confirm", ButtonStyle::Success), &pending.id, &happens, expires_at)
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
    let key = ctx.services.config.audit_hmac_key.as_ref()?;
    message.map(|m| MessageDigest::compute(key.expose().as_bytes(), m))
}

/// A refusal, audited as `blocked`: the text to tell.
async fn blocked_text(ctx: &mut Ctx<'_>, target: Option<Target>, message: Option<&str>, reason: &str) -> String {
    let digest = digest(ctx, message);
    let record = record(ctx, AuditResult::Blocked, target, digest.as_ref());
    ctx.blocked_text(reason, record).await
}

/// A refusal, audited as `blocked`.
async fn blocked(ctx: &mut Ctx<'_>, target: Option<Target>, message: Option<&str>, reason: &str) -> Reply {
    let text = blocked_text(ctx, target, message, reason).await;
    Reply::Message(Message::error(&text, &ctx.trace_id()))
}

/// Writes the intent, posts, writes the outcome. `Ok` carries the summary, `Err` the failure.
async fn relay(ctx: &mut Ctx<'_>, target: Target, message: &str) -> Result<String, String> {
    let Some(digest) = digest(ctx, Some(message)) else {
        return Err("Relays are not configured: set AUDIT_HMAC_KEY.".into());
    };
    let intent = record(ctx, AuditResult::Pending, Some(target), Some(&digest));
    if let Err(e) = ctx.audit("audit.intent", &intent).await {
        let title = "Audit write failed: a relay was refused";
        ctx.alert(InternalAlert::AuditWriteFailed, title, &e.to_string(), Duration::from_millis(200)).await;
        ctx.rec.fail(&e);
        return Err(format!("The audit store is unavailable ({e}), so nothing was posted."));
    }
    let dry_run = ctx.services.discord.is_dry_run();
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
        ctx.alert(InternalAlert::AuditWriteFailed, title, &e.to_string(), Duration::from_millis(100)).await;
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
    let discord = ctx.services.discord.clone();
    // The relayed text as it is: never a ping, whatever it says.
    let body = Message::text(message).to_json();
    let cap = |ctx: &Ctx<'_>, cap: Duration| cap.min(ctx.remaining().saturating_sub(OUTCOME_RESERVE));
    let channel = match target {
        Target::Channel(c) => c,
        Target::User(u) => {
            let limit = cap(ctx, Duration::from_secs(2));
            ctx.step("discord.open_dm", limit, || DiscordError::Timeout, discord.open_dm(u)).await?
        }
    };
    let limit = cap(ctx, Duration::from_millis(2300));
    let guild_id = ctx.guild_id;
    ctx.step("discord.post_message", limit, || DiscordError::Timeout, discord.post_message(channel, &body)).await.map(
        |mut p| {
            // Discord leaves `guild_id` out of the message it returns; the link needs it, and a
            // channel relay goes to a channel of the guild it was asked from.
            if matches!(target, Target::Channel(_)) {
                p.guild_id = p.guild_id.or(guild_id);
            }
            p
        },
    )
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
