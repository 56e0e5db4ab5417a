//! Previews and their confirmations, for every command that asks before it acts (relays, deploys,
//! repository writes): the preview with Confirm / Cancel, the stored [`Held`] value bound to the
//! caller, taking it once on a press, and the message that replaces the preview. The registry
//! routes a press to the command that asked (its `confirm` entry); this module knows no command.

use std::time::Duration;

use valine_domain::custom_id::CustomId;
use valine_domain::message::{ButtonStyle, Component, Embed, Message, Reply};
use valine_store::{Held, PendingConfirmation, Taken};

use crate::ctx::Ctx;

/// How long a preview's Confirm button works.
pub(crate) const CONFIRM_TTL_SECS: u64 = 300;

/// A preview waiting for its owner's confirmation: only the caller sees it, with `confirm` and
/// Cancel buttons bound to the stored confirmation `id`, and it says what happens (`happens`:
/// "nothing is dispatched until you confirm") and when it expires.
pub(crate) fn preview(embed: Embed, confirm: (&str, ButtonStyle), id: &str, happens: &str, expires_at: u64) -> Reply {
    let buttons = vec![
        Component::button(confirm.0, confirm.1, CustomId::Confirm(id.to_string()).to_string()),
        Component::button("Cancel", ButtonStyle::Secondary, CustomId::Cancel(id.to_string()).to_string()),
    ];
    let content = format!("**Preview**: {happens} (expires <t:{expires_at}:R>).");
    Reply::Message(Message::text(content).with_embed(embed).with_row(buttons).ephemeral())
}

/// Stores what a preview waits on, bound to the caller for [`CONFIRM_TTL_SECS`]. `Err` is the
/// answer to give when the store is down (`nothing`: "nothing was posted").
pub(crate) async fn hold(ctx: &mut Ctx<'_>, held: Held, nothing: &str) -> Result<PendingConfirmation, Reply> {
    let pending = PendingConfirmation {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: ctx.user_id,
        command: ctx.command.clone(),
        held,
        trace_id: ctx.trace_id(),
        expires_at: valine_domain::clock::now_secs() + CONFIRM_TTL_SECS,
    };
    let confirmations = ctx.services.stores.confirmations.clone();
    let cap = Duration::from_millis(1500);
    match ctx.store_step("store.put_confirmation", cap, confirmations.put_confirmation(&pending)).await {
        Ok(()) => Ok(pending),
        Err(e) => Err(ctx.store_unavailable(&e, nothing).await),
    }
}

/// Takes the confirmation a press names, for its owner only; anything else is the answer. On
/// success the context is renamed after the command that asked.
pub(crate) async fn take(ctx: &mut Ctx<'_>, custom_id: &CustomId) -> Result<PendingConfirmation, Reply> {
    let id = custom_id.id();
    let confirmations = ctx.services.stores.confirmations.clone();
    let user_id = ctx.user_id;
    let taken = ctx
        .store_step(
            "store.take_confirmation",
            Duration::from_millis(1500),
            confirmations.take_confirmation(id, user_id),
        )
        .await;
    let now = valine_domain::clock::now_secs();
    match taken {
        // Past its expiry it is gone, whatever the store's TTL sweep has done or returned.
        Ok(Taken::Yours(p)) if p.expires_at > now => {
            ctx.command = p.command.clone();
            Ok(p)
        }
        Ok(Taken::Yours(_) | Taken::Missing) => {
            let reason = "This confirmation expired or was already used. Run the command again.";
            let record = ctx.blocked_record().meta("confirmation", id);
            let text = ctx.blocked_text(reason, record).await;
            Err(settled(format!("⚠️ {text}\n-# trace `{}`", ctx.trace_id())))
        }
        Ok(Taken::NotYours) => {
            // Someone else's preview: it stays for its owner, and the attempt is audited.
            let reason = "Only the person who asked can confirm or cancel this.";
            let record = ctx.blocked_record().meta("confirmation", id);
            Err(ctx.blocked(reason, record).await)
        }
        Err(e) => {
            let answer = ctx.store_unavailable(&e, "nothing was done").await;
            let text = answer.message().and_then(|m| m.content.clone()).unwrap_or_default();
            Err(settled(text))
        }
    }
}

/// What replaces a preview once its button was pressed: the text, and no more buttons.
pub(crate) fn settled(text: impl Into<String>) -> Reply {
    Reply::Update(Message::text(text).replacing())
}

/// A press whose held value is not the kind its command keeps (a damaged or foreign item).
pub(crate) fn damaged(nothing: &str) -> Reply {
    settled(format!("This confirmation is damaged; {nothing}."))
}

/// A Cancel press: the preview says nothing happened.
pub(crate) fn cancelled(ctx: &mut Ctx<'_>, pending: &PendingConfirmation, nothing: &str) -> Reply {
    ctx.rec.note("cancelled", valine_domain::trace::StepStatus::Ok, None);
    tracing::info!(confirmation = %pending.id, command = %pending.command, "cancelled");
    settled(format!("Cancelled. {nothing}."))
}

/// A press on a preview: whether it was Confirm or Cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Press {
    Confirm,
    Cancel,
}

impl Press {
    pub fn of(custom_id: &CustomId) -> Option<Self> {
        match custom_id {
            CustomId::Confirm(_) => Some(Press::Confirm),
            CustomId::Cancel(_) => Some(Press::Cancel),
            _ => None,
        }
    }
}
