//! Test support shared by the handler crates (feature `testing`): a store that is down, and
//! request signing the way Discord and GitHub sign.

use async_trait::async_trait;

use crate::audit::AuditRecord;
use crate::store::*;
use crate::trace::Trace;

/// A store that is down: every port answers `Unavailable` at once (a refused connection), or,
/// with `stalled`, never answers at all (a silent network).
#[derive(Debug, Default, Clone, Copy)]
pub struct DownStore {
    pub stalled: bool,
}

impl DownStore {
    async fn fail<T>(&self) -> StoreResult<T> {
        if self.stalled {
            std::future::pending::<()>().await;
        }
        Err(StoreError::Unavailable("connection refused (test store is down)".into()))
    }
}

#[async_trait]
impl AuditLog for DownStore {
    async fn append(&self, _: &AuditRecord) -> StoreResult<()> {
        self.fail().await
    }
    async fn get(&self, _: &str) -> StoreResult<Option<AuditRecord>> {
        self.fail().await
    }
    async fn by_user(&self, _: &str, _: usize) -> StoreResult<Vec<AuditRecord>> {
        self.fail().await
    }
}

#[async_trait]
impl TraceRepo for DownStore {
    async fn put(&self, _: &Trace) -> StoreResult<()> {
        self.fail().await
    }
    async fn recent_for_user(&self, _: &str, _: usize) -> StoreResult<Vec<Trace>> {
        self.fail().await
    }
    async fn get(&self, _: &str) -> StoreResult<Option<Trace>> {
        self.fail().await
    }
}

#[async_trait]
impl AlertLedger for DownStore {
    async fn claim(&self, _: &str, _: u64, _: u64) -> StoreResult<Option<Claim>> {
        self.fail().await
    }
    async fn release(&self, _: &Claim) -> StoreResult<()> {
        self.fail().await
    }
    async fn mark_alerting(&self, _: &AlertingState) -> StoreResult<()> {
        self.fail().await
    }
    async fn get_alerting(&self, _: &str) -> StoreResult<Option<AlertingState>> {
        self.fail().await
    }
    async fn take_alerting(&self, _: &str) -> StoreResult<Option<AlertingState>> {
        self.fail().await
    }
    async fn forget_claim(&self, _: &str) -> StoreResult<()> {
        self.fail().await
    }
}

#[async_trait]
impl DeliveryLedger for DownStore {
    async fn first_seen(&self, _: &str) -> StoreResult<bool> {
        self.fail().await
    }
    async fn forget(&self, _: &str) -> StoreResult<()> {
        self.fail().await
    }
}

#[async_trait]
impl RunRepo for DownStore {
    async fn upsert_run(&self, _: &RunRecord) -> StoreResult<bool> {
        self.fail().await
    }
    async fn get_run(&self, _: u64) -> StoreResult<Option<RunRecord>> {
        self.fail().await
    }
    async fn recent_runs(&self, _: &str, _: usize) -> StoreResult<Vec<RunRecord>> {
        self.fail().await
    }
    async fn put_correlation(&self, _: &DiagnoseCorrelation) -> StoreResult<()> {
        self.fail().await
    }
    async fn get_correlation(&self, _: &str) -> StoreResult<Option<DiagnoseCorrelation>> {
        self.fail().await
    }
}

#[async_trait]
impl ConfirmationRepo for DownStore {
    async fn put_confirmation(&self, _: &PendingConfirmation) -> StoreResult<()> {
        self.fail().await
    }
    async fn take_confirmation(&self, _: &str, _: u64) -> StoreResult<Taken> {
        self.fail().await
    }
}

#[async_trait]
impl StoreHealth for DownStore {
    async fn ping(&self) -> StoreResult<()> {
        self.fail().await
    }
}

/// Stores whose every port is down.
pub fn down_stores() -> Stores {
    Stores::from_adapter(std::sync::Arc::new(DownStore { stalled: false }), "down")
}

/// Stores whose every port never answers.
pub fn stalled_stores() -> Stores {
    Stores::from_adapter(std::sync::Arc::new(DownStore { stalled: true }), "stalled")
}

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
    let sink = crate::logging::Capture::default();
    let layer = crate::logging::JsonLayer::new(service, std::sync::Arc::new(sink.clone()));
    let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    (sink, guard)
}

/// A mock that takes any request no other mock takes, answers 599, and fails the test when the
/// server is dropped: nothing may reach a mocked API unexpectedly.
pub async fn fail_on_unexpected(server: &wiremock::MockServer) {
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(599).set_body_string("unexpected request"))
        .with_priority(255)
        .expect(0)
        .named("unexpected request")
        .mount(server)
        .await;
}
