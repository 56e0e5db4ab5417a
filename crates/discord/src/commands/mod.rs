//! The commands, one module each: its `SPEC`, its typed `Args` and `parse`, and `run`, which
//! decides and acts through [`crate::ctx::Ctx`]. The registry (`crate::registry`) lists them.

pub mod debug_last;
pub mod deploy;
pub mod diagnose;
pub mod incidents;
pub mod relay;
pub mod secrets;
pub mod status;
pub mod subscribe;
pub mod verify_latest;

/// Kept for `valinectl register`: the registration JSON comes from the registry.
pub mod definitions {
    pub use crate::registry::{comparable, definitions};
}

use valine_domain::custom_id::CustomId;
use valine_domain::message::{ButtonStyle, Component, Embed, Message, Reply};

use crate::interaction::Options;
use crate::services::Services;

/// Autocomplete answers from configuration only (no network call), within microseconds.
pub fn autocomplete(services: &Services, command: &str, options: &Options) -> Reply {
    let Some((option, typed)) = options.focused() else { return Reply::Choices(Vec::new()) };
    let choices = if option == "repo" {
        let concrete = command == status::SPEC.name || command == diagnose::SPEC.name;
        subscribe::complete_repo(services, &typed, concrete)
    } else if command == status::SPEC.name {
        status::complete(services, option, &typed)
    } else {
        Vec::new()
    };
    Reply::Choices(choices)
}

/// A preview waiting for its owner's confirmation (relays, deploys, repository writes): only the
/// caller sees it, with `confirm` and Cancel buttons bound to the stored confirmation `id`, and
/// says what happens (`happens`: "nothing is dispatched until you confirm") and when it expires.
pub fn preview(embed: Embed, confirm: (&str, ButtonStyle), id: &str, happens: &str, expires_at: u64) -> Reply {
    let buttons = vec![
        Component::button(confirm.0, confirm.1, CustomId::Confirm(id.to_string()).to_string()),
        Component::button("Cancel", ButtonStyle::Secondary, CustomId::Cancel(id.to_string()).to_string()),
    ];
    let content = format!("**Preview**: {happens} (expires <t:{expires_at}:R>).");
    Reply::Message(Message::text(content).with_embed(embed).with_row(buttons).ephemeral())
}

/// Stores what a preview waits on, bound to the caller for [`relay::CONFIRM_TTL_SECS`]: `message`
/// (a relay's text, or a command's own JSON) and, for relays, where it goes (`to`: channel, user).
/// `Err` is the answer to give when the store is down (`nothing`: "nothing was posted").
pub async fn hold(
    ctx: &mut crate::ctx::Ctx<'_>,
    message: String,
    to: (Option<u64>, Option<u64>),
    ephemeral: bool,
    nothing: &str,
) -> Result<valine_store::PendingConfirmation, Reply> {
    let pending = valine_store::PendingConfirmation {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: ctx.user_id,
        command: ctx.command.clone(),
        channel_id: to.0,
        target_user_id: to.1,
        message,
        ephemeral,
        trace_id: ctx.trace_id(),
        expires_at: valine_domain::clock::now_secs() + relay::CONFIRM_TTL_SECS,
    };
    let confirmations = ctx.services.stores.confirmations.clone();
    let cap = std::time::Duration::from_millis(1500);
    match ctx.store_step("store.put_confirmation", cap, confirmations.put_confirmation(&pending)).await {
        Ok(()) => Ok(pending),
        Err(e) => Err(ctx.store_unavailable(&e, nothing).await),
    }
}
