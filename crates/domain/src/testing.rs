//! Test support shared by every crate's tests: keys, signatures, a generator, configurations, log capture.

// Test support behind the `testing` feature: the no-panic lints hold for production code only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

/// A fixed Ed25519 key for tests; its public half goes in `DISCORD_PUBLIC_KEY`.
pub fn discord_key(seed: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
}

pub use crate::signing::{discord_signature, github_signature, public_key_hex};

/// A small deterministic generator (xorshift) for generated-input tests.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// A configuration from `base` settings with `overrides`; an empty override removes the setting.
pub fn config_from(base: &[(&str, String)], overrides: &[(&str, &str)]) -> crate::config::Config {
    let mut env: std::collections::HashMap<String, String> =
        base.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    for (k, v) in overrides {
        if v.is_empty() {
            env.remove(*k);
        } else {
            env.insert(k.to_string(), v.to_string());
        }
    }
    crate::config::Config::from_lookup(|k| env.get(k).cloned()).unwrap_or_else(|e| panic!("test configuration: {e}"))
}

/// Captures the JSON log lines written on this thread while the guard lives (with a
/// current-thread runtime, that includes every task the test spawns).
pub fn capture_logs(service: &'static str) -> (crate::logging::Capture, tracing::subscriber::DefaultGuard) {
    use tracing_subscriber::layer::SubscriberExt;
    // Tests running at once on other threads log without a capture; tracing caches what a log
    // line's interest is across threads. A process-wide subscriber that keeps every line "maybe
    // interesting" makes each line ask the capture of its own thread.
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        let _ = tracing::subscriber::set_global_default(Quiet);
    });
    let sink = crate::logging::Capture::default();
    let layer = crate::logging::JsonLayer::new(service, std::sync::Arc::new(sink.clone()));
    let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    (sink, guard)
}

/// Records nothing, and keeps every callsite's interest open ("sometimes").
struct Quiet;

impl tracing::Subscriber for Quiet {
    fn register_callsite(&self, _: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
