//! valine-core: what both handlers and the CLI share. Configuration, the redactor, JSON logs and
//! metrics, traces, the alert model, audit records, the URL guard, authorization, the storage
//! ports with their adapters, and the Discord and GitHub clients.

pub mod alert;
pub mod alerting;
pub mod audit;
pub mod authz;
pub mod clock;
pub mod config;
pub mod diagnose;
pub mod discord_api;
pub mod github_api;
pub mod http;
pub mod lambda;
pub mod logging;
pub mod metrics;
pub mod redact;
pub mod signing;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod trace;
pub mod url_guard;
