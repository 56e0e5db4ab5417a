//! A store that is down, for tests of what the handlers do without one (feature `testing`).

use async_trait::async_trait;

use crate::*;
use valine_domain::audit::AuditRecord;
use valine_domain::incident::Incident;
use valine_domain::trace::Trace;

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
}

#[async_trait]
impl DeliveryLedger for DownStore {
    async fn first_seen(&self, _: &str) -> StoreResult<bool> {
        self.fail().await
    }
    async fn forget(&self, _: &str) -> StoreResult<()> {
        self.fail().await
    }
    async fn look_up(&self, _: &str, _: &[String]) -> StoreResult<Lookup> {
        self.fail().await
    }
    async fn finish(&self, _: &str, _: &Trace) -> StoreResult<bool> {
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
    async fn put_job_ticket(&self, _: &JobTicket) -> StoreResult<()> {
        self.fail().await
    }
    async fn take_job_ticket(&self, _: &str) -> StoreResult<Option<JobTicket>> {
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

#[async_trait]
impl IncidentRepo for DownStore {
    async fn get_incident(&self, _: &str) -> StoreResult<Option<Incident>> {
        self.fail().await
    }
    async fn write_incident(&self, _: &Incident, _: Option<&str>, _: Option<&Trace>) -> StoreResult<IncidentWrite> {
        self.fail().await
    }
    async fn list_incidents(&self, _: usize) -> StoreResult<Vec<Incident>> {
        self.fail().await
    }
}

#[async_trait]
impl OutboxRepo for DownStore {
    async fn pending_cards(&self, _: usize) -> StoreResult<Vec<OutboxEntry>> {
        self.fail().await
    }
}

#[async_trait]
impl SignatureLedger for DownStore {
    async fn sight(&self, _: &Sighting) -> StoreResult<Vec<Sighting>> {
        self.fail().await
    }
    async fn flake(&self, _: &Flake) -> StoreResult<()> {
        self.fail().await
    }
    async fn flakes(&self) -> StoreResult<Vec<Flake>> {
        self.fail().await
    }
    async fn know(&self, _: &KnownIssue) -> StoreResult<KnownIssue> {
        self.fail().await
    }
    async fn known(&self, _: &str) -> StoreResult<Option<KnownIssue>> {
        self.fail().await
    }
    async fn known_issues(&self) -> StoreResult<Vec<KnownIssue>> {
        self.fail().await
    }
    async fn forget_known(&self, _: &str) -> StoreResult<bool> {
        self.fail().await
    }
    async fn claim_retry(&self, _: &Retry) -> StoreResult<bool> {
        self.fail().await
    }
    async fn retry_of(&self, _: &str, _: u64) -> StoreResult<Option<Retry>> {
        self.fail().await
    }
}

#[async_trait]
impl LockRepo for DownStore {
    async fn lock(&self, _: &Lock) -> StoreResult<Option<Lock>> {
        self.fail().await
    }
    async fn get_lock(&self, _: &str) -> StoreResult<Option<Lock>> {
        self.fail().await
    }
    async fn unlock(&self, _: &str) -> StoreResult<Option<Lock>> {
        self.fail().await
    }
}

#[async_trait]
impl RouteRepo for DownStore {
    async fn put_subscription(&self, _: &Subscription) -> StoreResult<()> {
        self.fail().await
    }
    async fn delete_subscription(&self, _: u64, _: &str) -> StoreResult<bool> {
        self.fail().await
    }
    async fn list_subscriptions(&self) -> StoreResult<Vec<Subscription>> {
        self.fail().await
    }
}
