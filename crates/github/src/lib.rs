//! valine-github: the GitHub webhook handler (bin `github-handler`).

mod acting;
pub(crate) mod answer;
pub mod app;
mod delivery;
pub mod events;
pub(crate) mod gaps;
pub mod lambda;
mod progress;
mod routing;
mod tick;
pub(crate) mod verify;

pub use app::{App, AppParts, SERVICE};
