//! `/incidents` and `/mutes`: what is open, and what is muted (with Unmute buttons). Both are
//! ephemeral and read the incident store; the incident desk renders them.

use std::time::Duration;

use valine_domain::message::{Message, Reply};
use valine_store::StoreError;

use crate::ctx::Ctx;
use crate::interaction::Options;
use crate::spec::{Access, Spec, Where};

pub(crate) const INCIDENTS: Spec = Spec {
    name: "incidents",
    description: "Open incidents with their state and links",
    options: &[],
    access: Access::Anyone,
    place: Where::Guild,
    summary: "Only you see it: the open incidents, each with its failures, since when, flapping, acknowledged or muted, and a link to its message.",
    span: "handle_incidents",
};

pub(crate) const MUTES: Spec = Spec {
    name: "mutes",
    description: "Active incident mutes, with Unmute buttons",
    options: &[],
    access: Access::Anyone,
    place: Where::Guild,
    summary: "Only you see it: the active mutes, who muted and until when, with Unmute buttons (admins and `RESPONDER_ROLE_IDS`).",
    span: "handle_mutes",
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args;

pub(crate) fn parse(_: &Options) -> Args {
    Args
}

/// `/incidents`.
pub(crate) async fn run_incidents(ctx: &mut Ctx<'_>, _: Args) -> Reply {
    let desk = ctx.services.incidents.clone();
    let listed = ctx.store_step("store.list_incidents", Duration::from_millis(2000), desk.list_open()).await;
    answer(ctx, listed).await
}

/// `/mutes`.
pub(crate) async fn run_mutes(ctx: &mut Ctx<'_>, _: Args) -> Reply {
    let desk = ctx.services.incidents.clone();
    let listed = ctx.store_step("store.list_mutes", Duration::from_millis(2000), desk.list_mutes()).await;
    answer(ctx, listed).await
}

async fn answer(ctx: &mut Ctx<'_>, listed: Result<Message, StoreError>) -> Reply {
    match listed {
        Ok(message) => Reply::Message(message.ephemeral()),
        Err(e) => ctx.fail(&format!("The incident store is unavailable ({e}); try again in a moment.")),
    }
}
