//! valine-service: what both Lambda binaries share. The transport-neutral request and the health
//! and readiness answers, the Lambda adapter, alert posting, and `/diagnose` progress.

pub mod alerting;
pub mod bootstrap;
pub mod deadline;
pub mod diagnose;
pub mod drain;
pub mod http;
pub mod incidents;
pub mod lambda;
pub mod routing;
pub mod secrets;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod verify;
