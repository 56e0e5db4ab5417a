//! In-process fakes of Discord and GitHub for `valinectl serve`'s playground (cargo feature
//! `fake`, enabled only by valinectl: the Lambda binaries never carry it).
//!
//! Both are port adapters like the HTTP ones. [`FakeDiscord`] keeps every message the bot posts,
//! edits, replies or deletes, per channel, and publishes each change on a [`Feed`] that the
//! playground page follows; wrapped around a real client it forwards and records. [`FakeGitHub`]
//! serves a demo repository, records what the bot asks of it, and moves dispatched and re-run
//! runs through queued, in progress and completed by sending `workflow_run` deliveries through a
//! [`Deliveries`] sink (the server's own signed webhook endpoint).

mod discord;
mod feed;
mod github;

pub use discord::{FakeDiscord, assemble};
pub use feed::Feed;
pub use github::{Deliveries, FakeGitHub, Scenario};
