//! valine-discord: the Discord interactions handler (bin `discord-handler`).
//!
//! An interaction is verified (`verify`), read leniently (`interaction`), parsed into a typed
//! command by the registry (`registry`, from each command's `spec`), decided and carried out by
//! its command module through the context's effects (`ctx`, `services`), and answered with a
//! typed reply. Slow work goes to `jobs`.

pub mod app;
pub mod commands;
pub(crate) mod ctx;
pub mod deferred;
pub(crate) mod dispatch;
pub(crate) mod interaction;
pub mod jobs;
pub mod lambda;
pub mod registry;
pub(crate) mod services;
pub mod spec;
pub mod verify;

pub use app::{App, AppParts, SERVICE};
