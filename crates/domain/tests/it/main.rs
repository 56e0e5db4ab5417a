//! The integration tests of this crate, one binary (as cargo's own test suite is): a module per
//! area, so that the crate and its dependencies are linked once.

// Test code: the no-panic lints hold for production code only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod fingerprint;
mod known;
mod lock;
mod redact_corpus;
mod redact_properties;
mod redact_rules;
mod redact_stream;
mod schedule;
mod settings;
