//! valine-github: the GitHub webhook handler (bin `github-handler`).

mod acting;
pub mod answer;
pub mod app;
mod delivery;
pub mod events;
pub mod gaps;
pub mod lambda;
mod progress;
mod routing;
mod tick;
pub mod verify;

pub use app::{App, AppParts, SERVICE};
