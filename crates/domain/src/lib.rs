//! valine-domain: Valine's pure logic. Configuration, the redactor, the URL guard, git ref names,
//! Discord markdown escaping, authorization, the alert model, audit records, traces, and the JSON
//! log and metric formats. Nothing here does I/O beyond writing log lines, so the fuzz targets and
//! `valinectl redact` build from it alone.

pub mod alert;
pub mod audit;
pub mod authz;
pub mod clock;
pub mod config;
pub mod custom_id;
pub mod fingerprint;
pub mod git_ref;
pub mod incident;
pub mod known;
pub mod lock;
pub mod logging;
pub mod markdown;
pub mod message;
pub mod metrics;
pub mod redact;
pub mod repo;
pub mod routing;
pub mod schedule;
pub mod signing;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod trace;
pub mod url_guard;
