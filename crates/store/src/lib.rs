//! Storage ports (traits) and the two adapters behind them: DynamoDB in Lambda, an embedded redb
//! file everywhere else. Both pass one conformance suite (`crates/store/tests/it/conformance.rs`).
//!
//! Conditional operations (claims, first-seen checks, takes) are atomic in both: two Lambda
//! containers, or two tasks in one process, can never both win.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use valine_domain::audit::AuditRecord;
pub use valine_domain::fingerprint::{Flake, Sighting};
use valine_domain::incident::Incident;
pub use valine_domain::known::{KnownIssue, Retry};
pub use valine_domain::lock::Lock;
pub use valine_domain::routing::Subscription;
use valine_domain::trace::Trace;

pub mod dynamo;
pub mod embedded;
#[cfg(feature = "testing")]
pub mod fault_proxy;
pub mod schema;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

/// How long traces are kept.
pub const TRACE_TTL_SECS: u64 = 24 * 3600;
/// The most records any list method returns, whatever limit it is given, in every adapter.
pub const MAX_LIST: usize = 1000;
/// How long delivery and interaction ids are remembered (GitHub lets a delivery be redelivered
/// for days).
pub const DELIVERY_TTL_SECS: u64 = 7 * 24 * 3600;

/// What a store can fail with. "Already exists" is not "unavailable".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or did not answer in time.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// An append-only record with this id exists already.
    #[error("already exists")]
    AlreadyExists,
    /// The store answered, but refused the request (a missing table, a bad key).
    #[error("store refused the request: {0}")]
    Rejected(String),
    /// A stored item could not be read back.
    #[error("stored item is unreadable: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Append-only audit records.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Writes a new record; `AlreadyExists` if its id is taken. Never overwrites.
    async fn append(&self, record: &AuditRecord) -> StoreResult<()>;
    async fn get(&self, audit_id: &str) -> StoreResult<Option<AuditRecord>>;
    /// A user's records, newest first, at most `limit`.
    async fn by_user(&self, user_id: &str, limit: usize) -> StoreResult<Vec<AuditRecord>>;
}

/// Each user's recent traces, kept for [`TRACE_TTL_SECS`].
#[async_trait]
pub trait TraceRepo: Send + Sync {
    /// Stores (or replaces, for the same trace id) a trace.
    async fn put(&self, trace: &Trace) -> StoreResult<()>;
    /// A user's traces, newest first, at most `limit`, expired ones left out.
    async fn recent_for_user(&self, user_id: &str, limit: usize) -> StoreResult<Vec<Trace>>;
    async fn get(&self, trace_id: &str) -> StoreResult<Option<Trace>>;
}

/// A held dedup window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub key: String,
    /// Identifies this holder, so only it can release the claim.
    pub token: String,
    /// Epoch seconds when the window ends.
    pub until: u64,
}

/// Alert dedup claims.
#[async_trait]
pub trait AlertLedger: Send + Sync {
    /// Claims `key` until `now + window_secs`. `None` when another claim still holds it.
    async fn claim(&self, key: &str, now: u64, window_secs: u64) -> StoreResult<Option<Claim>>;
    /// Gives a claim back (its send failed), unless someone else holds the key by now.
    async fn release(&self, claim: &Claim) -> StoreResult<()>;
}

/// GitHub delivery ids and Discord interaction ids already handled.
///
/// Discord interactions are claimed when they arrive ([`Self::first_seen`]): an interaction is
/// answered once or not at all. A GitHub delivery is recorded only when it is done, in the same
/// write as its last effect ([`Self::finish`], or [`IncidentRepo::put_incident_with`]): a
/// redelivery of a delivery that did not finish is handled again, one that did is a duplicate,
/// and no lost answer can make an unfinished delivery look done.
#[async_trait]
pub trait DeliveryLedger: Send + Sync {
    /// True the first time `id` is seen (within [`DELIVERY_TTL_SECS`]).
    async fn first_seen(&self, id: &str) -> StoreResult<bool>;
    /// Forgets `id`, so that a redelivery is handled again (its handling failed).
    async fn forget(&self, id: &str) -> StoreResult<()>;
    /// In one read: whether the delivery `id` is recorded done (a record [`Self::first_seen`]
    /// wrote counts), and the live incidents among `incident_ids` that it is about to update.
    async fn look_up(&self, id: &str, incident_ids: &[String]) -> StoreResult<Lookup>;
    /// Records the delivery `id` done, with its trace, in one atomic write. False when it was
    /// recorded already (another attempt at the same delivery finished first): nothing written.
    async fn finish(&self, id: &str, trace: &Trace) -> StoreResult<bool>;
}

/// What [`DeliveryLedger::look_up`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookup {
    pub done: bool,
    /// The live incidents found, in no particular order; the ids not among them have none.
    pub incidents: Vec<Incident>,
}

/// A workflow run as webhooks reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: u64,
    pub repository: String,
    pub workflow_id: u64,
    pub workflow_name: String,
    /// The run's name (`display_title` / `name`), where diagnose runs carry their correlation id.
    pub title: String,
    /// `.github/workflows/diagnose.yml`.
    #[serde(default)]
    pub workflow_path: String,
    pub head_branch: String,
    /// The repository the run's code came from (`owner/name`); a fork's pull request differs
    /// from `repository`. `None` when the payload does not say.
    #[serde(default)]
    pub head_repository: Option<String>,
    pub head_sha: String,
    pub status: String,
    #[serde(default)]
    pub conclusion: Option<String>,
    pub html_url: String,
    pub run_number: u64,
    pub event: String,
    #[serde(default)]
    pub actor: Option<String>,
    /// Epoch seconds.
    pub created_at: u64,
    pub updated_at: u64,
    #[serde(default)]
    pub run_started_at: Option<u64>,
}

impl RunRecord {
    /// `repository#workflow_id`: what recent runs are grouped by.
    pub fn workflow_key(&self) -> String {
        workflow_key(&self.repository, self.workflow_id)
    }
}

pub fn workflow_key(repository: &str, workflow_id: u64) -> String {
    format!("{repository}#{workflow_id}")
}

/// A pending `/diagnose` or `/deploy-client`: how to reach the message that follows its run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnoseCorrelation {
    pub correlation_id: String,
    pub application_id: u64,
    pub interaction_token: String,
    pub user_id: String,
    pub trace_id: String,
    /// Epoch seconds.
    pub created_at: u64,
    pub expires_at: u64,
    #[serde(default)]
    pub frontend_url: Option<String>,
    #[serde(default)]
    pub api_base: Option<String>,
    /// Which command dispatched the run (older items are `/diagnose`'s).
    #[serde(default)]
    pub kind: Followed,
    /// The ref dispatched on, when the command chose it.
    #[serde(default)]
    pub git_ref: Option<String>,
}

/// A dispatched workflow whose run a message follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Followed {
    #[default]
    Diagnose,
    Deploy,
}

/// Workflow runs and diagnose correlations.
#[async_trait]
pub trait RunRepo: Send + Sync {
    /// Stores a run unless a newer update of it (by `updated_at`) is stored already.
    /// Returns whether it was written.
    async fn upsert_run(&self, run: &RunRecord) -> StoreResult<bool>;
    async fn get_run(&self, run_id: u64) -> StoreResult<Option<RunRecord>>;
    /// Runs of one workflow, most recently updated first, at most `limit`.
    async fn recent_runs(&self, workflow_key: &str, limit: usize) -> StoreResult<Vec<RunRecord>>;
    async fn put_correlation(&self, correlation: &DiagnoseCorrelation) -> StoreResult<()>;
    /// The correlation, unless it expired.
    async fn get_correlation(&self, correlation_id: &str) -> StoreResult<Option<DiagnoseCorrelation>>;
}

/// A preview waiting for its Confirm button: bound to the caller, expiring. `command` names the
/// command that asked (its slash name), which the registry routes the press to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingConfirmation {
    pub id: String,
    pub user_id: u64,
    pub command: String,
    pub held: Held,
    pub trace_id: String,
    /// Epoch seconds.
    pub expires_at: u64,
}

/// What a preview holds until it is confirmed, by kind of command. Nothing in it is a value the
/// caller asked to keep private in the clear: a relay's text and a variable's value are
/// [`Encrypted`] under a key derived from `AUDIT_HMAC_KEY`, and a secret is already sealed to the
/// repository's public key, so that the state table never holds them plain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Held {
    /// A relay: the text, and the channel or user it goes to.
    Relay {
        #[serde(default)]
        channel_id: Option<u64>,
        #[serde(default)]
        user_id: Option<u64>,
        text: Encrypted,
        /// Whether the summary after posting is shown only to the caller.
        ephemeral: bool,
    },
    /// A client deploy: the ref and the API base it passes.
    Deploy {
        git_ref: String,
        #[serde(default)]
        api_base: Option<String>,
        /// The environment (`DEPLOY_ENVIRONMENT` when held before environments).
        #[serde(default)]
        environment: Option<String>,
    },
    /// A repository variable to write, and the keyed audit digest (hex) of its value.
    RepoVariable { value: Encrypted, digest: String },
    /// A repository secret, sealed to the repository's public key `key_id` (base64, as GitHub's
    /// secrets API takes it: only GitHub can open it), and the keyed audit digest (hex) of its
    /// value.
    RepoSecret { key_id: String, encrypted_value: String, digest: String },
}

/// A value encrypted at rest (an AEAD): the nonce and the ciphertext with its tag, hex.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encrypted {
    pub nonce: String,
    pub ciphertext: String,
}

impl std::fmt::Debug for Encrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encrypted").field("bytes", &(self.ciphertext.len() / 2)).finish_non_exhaustive()
    }
}

/// What taking a confirmation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// It was the caller's, and is now removed.
    Yours(PendingConfirmation),
    /// It belongs to someone else and stays where it is.
    NotYours,
    /// Never existed, expired, or already taken.
    Missing,
}

/// What a deferred job needs that must not travel in its event: the interaction token. Written
/// before the job is handed over, taken (once) when it starts, so that the event, and a
/// dead-letter record of it, carries no token, and a job delivered twice runs once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTicket {
    pub job_id: String,
    /// The interaction token (valid 15 minutes). Never logged.
    pub token: String,
    /// Epoch seconds: the token's own expiry.
    pub expires_at: u64,
}

impl std::fmt::Debug for JobTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobTicket").field("job_id", &self.job_id).field("expires_at", &self.expires_at).finish()
    }
}

/// Things that wait to be taken once: relay confirmations (by their owner's button) and job
/// tickets (by the job).
#[async_trait]
pub trait ConfirmationRepo: Send + Sync {
    async fn put_confirmation(&self, pending: &PendingConfirmation) -> StoreResult<()>;
    /// Removes and returns it when `user_id` owns it, atomically: a double click confirms once,
    /// and nobody else's click touches it.
    async fn take_confirmation(&self, id: &str, user_id: u64) -> StoreResult<Taken>;
    async fn put_job_ticket(&self, ticket: &JobTicket) -> StoreResult<()>;
    /// Removes and returns it, atomically: of two deliveries of a job, one gets it. `None` when
    /// it was taken before, expired, or never written.
    async fn take_job_ticket(&self, job_id: &str) -> StoreResult<Option<JobTicket>>;
}

/// How long an incident item outlives its last write (a resolved one, or one nobody reports on).
pub const INCIDENT_TTL_SECS: u64 = 90 * 24 * 3600;

/// What a conditional incident write found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentWrite {
    /// Written over the version it was read at.
    Written,
    /// Someone else wrote first: this is what is stored now (`None`: nothing, or expired).
    Conflict(Option<Box<Incident>>),
    /// The delivery the write was to record done is recorded already (another attempt at it
    /// finished first): nothing written.
    AlreadyDone,
}

/// One item per incident (see `valine_domain::incident`), keyed by its short id, which is a hash
/// of its key: a look-up by key and by the id a button carries are the same O(1) read.
#[async_trait]
pub trait IncidentRepo: Send + Sync {
    async fn get_incident(&self, id: &str) -> StoreResult<Option<Incident>>;
    /// Writes `incident` only over the version before it (`incident.version - 1`; nothing stored
    /// for version 1), atomically: of two writers that read the same version, one wins and the
    /// other gets [`IncidentWrite::Conflict`] with what is stored, to decide again.
    async fn put_incident(&self, incident: &Incident) -> StoreResult<IncidentWrite> {
        self.put_incident_with(incident, None).await
    }
    /// [`Self::put_incident`], and, with `done`, that delivery recorded done in the same atomic
    /// write (see [`DeliveryLedger`]); [`IncidentWrite::AlreadyDone`] when it was already.
    async fn put_incident_with(&self, incident: &Incident, done: Option<&str>) -> StoreResult<IncidentWrite> {
        self.write_incident(incident, done, None).await
    }
    /// [`Self::put_incident_with`], and `trace` (a delivery's, `TraceRepo::put`) in the same
    /// write. The incident's card goes in or out of the outbox ([`OutboxRepo`]) with it: listed
    /// while its display has something unsent.
    async fn write_incident(
        &self,
        incident: &Incident,
        done: Option<&str>,
        trace: Option<&Trace>,
    ) -> StoreResult<IncidentWrite>;
    /// Every incident, open and resolved, most recently written first, at most `limit`.
    async fn list_incidents(&self, limit: usize) -> StoreResult<Vec<Incident>>;
}

/// A card with something unsent: its incident, since when, and not before when to try it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub id: String,
    pub since: u64,
    #[serde(default)]
    pub not_before_ms: u64,
    /// The channel the card is in (a drain skips a channel Discord has just rate-limited).
    #[serde(default)]
    pub channel_id: u64,
}

impl OutboxEntry {
    /// The entry of `incident`'s card, when it has something unsent.
    pub fn of(incident: &Incident) -> Option<Self> {
        let d = &incident.display;
        d.pending().then(|| Self {
            id: incident.id.clone(),
            since: d.since,
            not_before_ms: d.not_before_ms,
            channel_id: incident.key.channel_id,
        })
    }
}

/// The outbox: the incidents whose cards have something unsent (an entry written with the
/// incident, in the same atomic write, and removed by the write that settles the last of it).
#[async_trait]
pub trait OutboxRepo: Send + Sync {
    /// Oldest first, at most `limit` (and never more than [`MAX_LIST`]).
    async fn pending_cards(&self, limit: usize) -> StoreResult<Vec<OutboxEntry>>;
}

/// How long the fingerprint ledger keeps a sighting (longer than any window it answers for).
pub const SIGHTING_TTL_SECS: u64 = 30 * 24 * 3600;

/// The fingerprint ledger: which runs each failure signature was seen on.
#[async_trait]
pub trait SignatureLedger: Send + Sync {
    /// Records `sighting` (one record per signature, run and attempt: a replay, or a second
    /// container, changes nothing but its time) and answers every live sighting of its signature,
    /// this one included, newest first, at most [`MAX_LIST`].
    async fn sight(&self, sighting: &Sighting) -> StoreResult<Vec<Sighting>>;
    /// Records `flake` (one record per run: a replay changes nothing but its time).
    async fn flake(&self, flake: &Flake) -> StoreResult<()>;
    /// Every live flake, newest run first, at most [`MAX_LIST`].
    async fn flakes(&self) -> StoreResult<Vec<Flake>>;
    /// Records what the team knows about a signature, merged with what was known of it
    /// ([`KnownIssue::merged`]); answers the record as kept. Known issues do not expire.
    async fn know(&self, known: &KnownIssue) -> StoreResult<KnownIssue>;
    async fn known(&self, signature: &str) -> StoreResult<Option<KnownIssue>>;
    /// Every known issue, in signature order, at most [`MAX_LIST`].
    async fn known_issues(&self) -> StoreResult<Vec<KnownIssue>>;
    /// Forgets a signature's known issue; `false` when none was kept.
    async fn forget_known(&self, signature: &str) -> StoreResult<bool>;
    /// Records `retry` only where no live retry of its run is kept: `true` when this call wrote
    /// it (the one caller that may re-run the run), `false` when one was there already.
    async fn claim_retry(&self, retry: &Retry) -> StoreResult<bool>;
    /// The retry of a run, when the bot asked for one.
    async fn retry_of(&self, repository: &str, run_id: u64) -> StoreResult<Option<Retry>>;
}

/// Deploy locks, one per environment (`/lock`, `/unlock`).
#[async_trait]
pub trait LockRepo: Send + Sync {
    /// Sets `lock` where no live lock of its environment is: `Ok(None)`. Otherwise nothing is
    /// written and the live lock is answered.
    async fn lock(&self, lock: &Lock) -> StoreResult<Option<Lock>>;
    /// The environment's live lock (any case).
    async fn get_lock(&self, environment: &str) -> StoreResult<Option<Lock>>;
    /// Removes the environment's lock, answering it when one was live.
    async fn unlock(&self, environment: &str) -> StoreResult<Option<Lock>>;
}

/// The key of an environment's lock.
pub fn lock_key(environment: &str) -> String {
    format!("lock#{}", environment.to_ascii_lowercase())
}

/// When a lock's item expires: its end, or never.
pub fn lock_expires_at(lock: &Lock) -> u64 {
    lock.until.unwrap_or(NEVER_EXPIRES)
}

/// The known issues' partition (sort key: the signature).
pub const KNOWN_PK: &str = "known";

/// The key of a run's retry.
pub fn retry_key(repository: &str, run_id: u64) -> String {
    format!("retry#{}#{run_id}", repository.to_ascii_lowercase())
}

/// The flake ledger's partition.
pub const FLAKE_PK: &str = "flake";

/// The sort key of a flake: its run.
pub fn flake_key(flake: &Flake) -> String {
    format!("{:020}", flake.run_id)
}

/// The store keys of a sighting: its signature's partition, then run and attempt.
pub fn sighting_key(sighting: &Sighting) -> (String, String) {
    (format!("sig#{}", sighting.signature), format!("{:020}#{:05}", sighting.run_id, sighting.attempt))
}

/// Newest first, as [`SignatureLedger::sight`] answers.
pub fn sort_sightings(all: &mut [Sighting]) {
    all.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.run_id.cmp(&a.run_id)).then_with(|| b.attempt.cmp(&a.attempt)));
}

/// Subscriptions never expire; their items carry this as `expires_at` (9999-12-31).
pub const NEVER_EXPIRES: u64 = 253_402_300_799;

/// Channel subscriptions (`/subscribe`): one per channel and repository pattern.
#[async_trait]
pub trait RouteRepo: Send + Sync {
    /// Adds the subscription, or replaces the one of its channel and repository pattern.
    async fn put_subscription(&self, sub: &Subscription) -> StoreResult<()>;
    /// Removes the subscription of `channel_id` to `repo_key` (lowercase pattern); whether there
    /// was one.
    async fn delete_subscription(&self, channel_id: u64, repo_key: &str) -> StoreResult<bool>;
    /// Every subscription, by channel, then repository pattern; at most [`MAX_LIST`].
    async fn list_subscriptions(&self) -> StoreResult<Vec<Subscription>>;
    /// What this container last read, however old, without any I/O (for autocomplete).
    fn cached_subscriptions(&self) -> Option<Vec<Subscription>> {
        None
    }
}

/// The store key of a subscription: channel, then repository pattern.
pub fn subscription_key(channel_id: u64, repo_key: &str) -> String {
    format!("{channel_id:020}#{}", repo_key.to_ascii_lowercase())
}

/// Sorts subscriptions as [`RouteRepo::list_subscriptions`] answers them.
pub fn sort_subscriptions(subs: &mut [Subscription]) {
    subs.sort_by(|a, b| a.channel_id.cmp(&b.channel_id).then_with(|| a.repo_key().cmp(&b.repo_key())));
}

/// A container's cache of the subscriptions in front of the store: read at most every
/// [`ROUTE_CACHE_TTL`]; what this container changes it sees at once.
pub struct CachedRoutes {
    inner: Arc<dyn RouteRepo>,
    ttl: std::time::Duration,
    cached: std::sync::Mutex<Option<(std::time::Instant, Vec<Subscription>)>>,
}

/// How long a container trusts its copy of the subscriptions.
pub const ROUTE_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

impl CachedRoutes {
    pub fn new(inner: Arc<dyn RouteRepo>, ttl: std::time::Duration) -> Self {
        Self { inner, ttl, cached: std::sync::Mutex::new(None) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(std::time::Instant, Vec<Subscription>)>> {
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies a change this container made to the cached copy (when there is one).
    fn apply(&self, change: impl FnOnce(&mut Vec<Subscription>)) {
        if let Some((_, subs)) = self.lock().as_mut() {
            change(subs);
            sort_subscriptions(subs);
        }
    }
}

#[async_trait]
impl RouteRepo for CachedRoutes {
    async fn put_subscription(&self, sub: &Subscription) -> StoreResult<()> {
        self.inner.put_subscription(sub).await?;
        let sub = sub.clone();
        self.apply(move |subs| {
            subs.retain(|s| !(s.channel_id == sub.channel_id && s.repo_key() == sub.repo_key()));
            subs.push(sub);
        });
        Ok(())
    }

    async fn delete_subscription(&self, channel_id: u64, repo_key: &str) -> StoreResult<bool> {
        let removed = self.inner.delete_subscription(channel_id, repo_key).await?;
        let key = repo_key.to_ascii_lowercase();
        self.apply(move |subs| subs.retain(|s| !(s.channel_id == channel_id && s.repo_key() == key)));
        Ok(removed)
    }

    async fn list_subscriptions(&self) -> StoreResult<Vec<Subscription>> {
        if let Some((at, subs)) = self.lock().as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(subs.clone());
        }
        let fresh = self.inner.list_subscriptions().await?;
        *self.lock() = Some((std::time::Instant::now(), fresh.clone()));
        Ok(fresh)
    }

    fn cached_subscriptions(&self) -> Option<Vec<Subscription>> {
        self.lock().as_ref().map(|(_, subs)| subs.clone())
    }
}

/// Whether the store answers, for `/health/ready`.
#[async_trait]
pub trait StoreHealth: Send + Sync {
    async fn ping(&self) -> StoreResult<()>;
}

/// How long `/health/ready` keeps what it learned from the store.
pub const READY_CHECK_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// What `/health/ready` learned from the store: whether it answered (with the error when not),
/// how fast, and whether any channel has subscribed (when that was asked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreCheck {
    pub error: Option<String>,
    pub latency_ms: u64,
    pub subscribed: Option<bool>,
}

/// The last [`StoreCheck`], kept for [`READY_CHECK_TTL`] in this container: the route is public,
/// and without it every call would read the store. Callers wait for a check under way rather
/// than start their own.
#[derive(Debug, Default)]
pub struct ReadyCache {
    last: tokio::sync::Mutex<Option<(tokio::time::Instant, StoreCheck)>>,
}

impl ReadyCache {
    /// The kept check when it is younger than [`READY_CHECK_TTL`] and `enough` accepts it; else
    /// the one `check` makes, kept.
    pub async fn get<F>(&self, enough: impl Fn(&StoreCheck) -> bool, check: F) -> StoreCheck
    where
        F: std::future::Future<Output = StoreCheck>,
    {
        let mut last = self.last.lock().await;
        if let Some((at, kept)) = last.as_ref()
            && at.elapsed() < READY_CHECK_TTL
            && enough(kept)
        {
            return kept.clone();
        }
        let fresh = check.await;
        *last = Some((tokio::time::Instant::now(), fresh.clone()));
        fresh
    }
}

/// Every port, as the handlers hold them.
#[derive(Clone)]
pub struct Stores {
    pub audit: Arc<dyn AuditLog>,
    pub traces: Arc<dyn TraceRepo>,
    pub alerts: Arc<dyn AlertLedger>,
    pub deliveries: Arc<dyn DeliveryLedger>,
    pub runs: Arc<dyn RunRepo>,
    pub confirmations: Arc<dyn ConfirmationRepo>,
    pub incidents: Arc<dyn IncidentRepo>,
    /// The cards with something unsent.
    pub outbox: Arc<dyn OutboxRepo>,
    /// Channel subscriptions, behind this container's [`CachedRoutes`].
    pub routes: Arc<dyn RouteRepo>,
    /// The fingerprint ledger.
    pub signatures: Arc<dyn SignatureLedger>,
    /// Deploy locks.
    pub locks: Arc<dyn LockRepo>,
    pub health: Arc<dyn StoreHealth>,
    /// What `/health/ready` last learned through `health` and `routes`.
    pub ready: Arc<ReadyCache>,
    pub kind: &'static str,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").field("kind", &self.kind).finish()
    }
}

impl Stores {
    /// All ports backed by one adapter.
    pub fn from_adapter<A>(adapter: Arc<A>, kind: &'static str) -> Self
    where
        A: AuditLog
            + TraceRepo
            + AlertLedger
            + DeliveryLedger
            + RunRepo
            + ConfirmationRepo
            + IncidentRepo
            + OutboxRepo
            + RouteRepo
            + SignatureLedger
            + LockRepo
            + StoreHealth
            + 'static,
    {
        Self {
            audit: adapter.clone(),
            traces: adapter.clone(),
            alerts: adapter.clone(),
            deliveries: adapter.clone(),
            runs: adapter.clone(),
            confirmations: adapter.clone(),
            incidents: adapter.clone(),
            outbox: adapter.clone(),
            routes: Arc::new(CachedRoutes::new(adapter.clone(), ROUTE_CACHE_TTL)),
            signatures: adapter.clone(),
            locks: adapter.clone(),
            health: adapter,
            ready: Arc::default(),
            kind,
        }
    }

    /// Opens the store the configuration names.
    pub async fn open(config: &valine_domain::config::Config) -> StoreResult<Self> {
        match config.store {
            valine_domain::config::StoreKind::Embedded => {
                let store = embedded::EmbeddedStore::open(&config.data_dir.join("valine.redb"))?;
                // What DynamoDB's TTL does for the deployed tables: in the background, at once
                // and then hourly, so that opening stays fast.
                store.sweep_periodically(std::time::Duration::from_secs(3600));
                Ok(Self::from_adapter(Arc::new(store), "embedded"))
            }
            valine_domain::config::StoreKind::DynamoDb => Ok(Self::dynamodb(config, &dynamo::sdk_config().await)),
        }
    }

    /// The DynamoDB adapter over an already loaded AWS configuration.
    pub fn dynamodb(config: &valine_domain::config::Config, sdk: &aws_config::SdkConfig) -> Self {
        let store = dynamo::DynamoStore::new(sdk, dynamo::TableNames::from_config(config));
        Self::from_adapter(Arc::new(store), "dynamodb")
    }
}

/// `true` when an item with this expiry is still alive at `now`.
pub(crate) fn alive(expires_at: u64, now: u64) -> bool {
    expires_at > now
}
