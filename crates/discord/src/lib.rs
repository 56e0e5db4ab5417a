//! valine-discord: the Discord interactions handler (bin `discord-handler`).

pub mod app;
pub mod commands;
pub mod jobs;
pub mod lambda;
pub mod response;
pub mod verify;

pub use app::{App, AppParts, SERVICE};
