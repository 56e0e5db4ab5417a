//! valine-github: the GitHub webhook handler (bin `github-handler`).

pub mod app;
pub mod events;
pub mod gaps;
pub mod lambda;
pub mod verify;

pub use app::{App, AppParts, SERVICE};
