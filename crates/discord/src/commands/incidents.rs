//! `/incidents` and `/mutes`: what is open, and what is muted (with Unmute buttons); `/flaky`: what
//! failed and then passed on a re-run of the same run. All ephemeral; they read the store and the
//! incident desk renders them.

use std::time::Duration;

use valine_domain::message::{Message, Reply};
use valine_store::StoreError;

use crate::ctx::Ctx;
use crate::interaction::Options;
use crate::spec::{Access, OptKind, OptSpec, Spec, Where};

pub(crate) const INCIDENTS: Spec = Spec {
    name: "incidents",
    description: "Open incidents with their state and links",
    options: &[],
    subcommands: &[],
    access: Access::Anyone,
    place: Where::Guild,
    summary: "Only you see it: the open incidents, each with its failures, since when, flapping, acknowledged or muted, and a link to its message.",
    span: "handle_incidents",
};

pub(crate) const MUTES: Spec = Spec {
    name: "mutes",
    description: "Active incident mutes, with Unmute buttons",
    options: &[],
    subcommands: &[],
    access: Access::Anyone,
    place: Where::Guild,
    summary: "Only you see it: the active mutes, who muted and until when, with Unmute buttons (admins and `RESPONDER_ROLE_IDS`).",
    span: "handle_mutes",
};

pub(crate) const FLAKY: Spec = Spec {
    name: "flaky",
    description: "The flakiest jobs: failures that passed on a re-run of the same run",
    options: &[
        OptSpec::new("repo", OptKind::String, "owner/name (default every repository)").max_length(201).autocomplete(),
        OptSpec::new("days", OptKind::Integer, "How far back (1-30, default 14)").range(1, 30),
    ],
    subcommands: &[],
    access: Access::Anyone,
    place: Where::Guild,
    summary: "Only you see it: the jobs (and failure signatures) that failed and then passed on a re-run of the same run in the last `days` days, most flakes first, with when they last flaked.",
    span: "handle_flaky",
};

/// The options of the three; `/incidents` and `/mutes` have none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Args {
    pub repo: Option<String>,
    pub days: Option<i64>,
}

pub(crate) fn parse(o: &Options) -> Args {
    Args { repo: o.str("repo").map(str::to_string), days: o.int("days") }
}

/// `/flaky [repo] [days]`.
pub(crate) async fn run_flaky(ctx: &mut Ctx<'_>, args: Args) -> Reply {
    let days = args.days.map_or(valine_domain::fingerprint::SEEN_WINDOW_DAYS, |d| d.clamp(1, 30).unsigned_abs());
    let repo = args.repo.as_deref().map(str::trim).filter(|r| !r.is_empty());
    let desk = ctx.services.incidents.clone();
    let listed = ctx.store_step("store.list_flakes", Duration::from_millis(2000), desk.list_flaky(repo, days)).await;
    answer(ctx, listed).await
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
