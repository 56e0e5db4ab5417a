//! valine-clients: the Discord and GitHub ports and their HTTP adapters.

pub mod discord_api;
pub mod discord_ratelimit;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod github_api;
pub mod github_app;
pub mod github_error;
pub mod github_routes;
pub mod probe;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
