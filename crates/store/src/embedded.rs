//! The embedded adapter: one redb file under `DATA_DIR`, with the same semantics as DynamoDB.
//!
//! redb runs one write transaction at a time, so a claim or first-seen check that reads and
//! writes inside one transaction is atomic for every task of the process. Only one process can
//! open the file; a second gets a clear "in use" error.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::*;
use valine_domain::audit::AuditRecord;
use valine_domain::clock::now_secs;
use valine_domain::trace::Trace;

const AUDIT: TableDefinition<&str, &[u8]> = TableDefinition::new("audit");
/// `user \0 timestamp(20) \0 audit_id` → audit_id
const AUDIT_BY_USER: TableDefinition<&str, &str> = TableDefinition::new("audit_by_user");
/// `pk \0 sk` → [`StateItem`]
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
const RUNS: TableDefinition<u64, &[u8]> = TableDefinition::new("runs");
/// `workflow_key \0 updated_at(20) \0 run_id(20)` → run_id
const RUNS_BY_WORKFLOW: TableDefinition<&str, u64> = TableDefinition::new("runs_by_workflow");

#[derive(Debug, Serialize, Deserialize)]
struct StateItem {
    expires_at: u64,
    #[serde(default)]
    data: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    until: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredRun {
    version: u64,
    run: RunRecord,
}

#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmbeddedStore")
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("embedded store: {e}"))
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn state_key(pk: &str, sk: &str) -> String {
    format!("{pk}\0{sk}")
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    // Our record types serialize to JSON infallibly: string keys, no non-finite floats.
    serde_json::to_vec(value).unwrap_or_default()
}

impl EmbeddedStore {
    /// Opens (or creates) the store file, creating its folder and every table.
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| unavailable(format!("cannot create {}: {e}", dir.display())))?;
        }
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => unavailable(format!(
                "{} is in use by another process (is `valinectl serve` running? stop it, or point DATA_DIR elsewhere)",
                path.display()
            )),
            other => unavailable(format!(
                "cannot open {}: {other}. If the file is damaged (a disk filled up, a copy cut short), \
                 move it aside and start again with an empty store, or restore it from a copy",
                path.display()
            )),
        })?;
        let txn = db.begin_write().map_err(unavailable)?;
        {
            txn.open_table(AUDIT).map_err(unavailable)?;
            txn.open_table(AUDIT_BY_USER).map_err(unavailable)?;
            txn.open_table(STATE).map_err(unavailable)?;
            txn.open_table(RUNS).map_err(unavailable)?;
            txn.open_table(RUNS_BY_WORKFLOW).map_err(unavailable)?;
        }
        txn.commit().map_err(unavailable)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Deletes every expired item of the state table (deliveries, claims, traces, confirmations,
    /// correlations), as DynamoDB's TTL does for the deployed tables; answers how many went.
    /// Reads never see expired items either way: this only keeps the file from growing.
    pub fn sweep_expired(&self) -> StoreResult<usize> {
        sweep(&self.db, now_secs())
    }

    /// Sweeps at once and then every `every` while the store stays open, in the background on
    /// the current tokio runtime (none: no sweeping). The task holds no reference that would keep
    /// the file open.
    pub fn sweep_periodically(&self, every: std::time::Duration) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let db = Arc::downgrade(&self.db);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(db) = db.upgrade() else { break };
                match tokio::task::spawn_blocking(move || sweep(&db, now_secs())).await {
                    Ok(Ok(0)) => {}
                    Ok(Ok(removed)) => tracing::debug!(removed, "embedded store: expired items deleted"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "embedded store: sweeping expired items failed"),
                    Err(e) => tracing::warn!(error = %e, "embedded store: the sweep task failed"),
                }
            }
        });
    }

    /// Runs blocking database work off the async threads.
    async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> StoreResult<T> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db)).await.map_err(|e| unavailable(format!("task failed: {e}")))?
    }

    /// The live items of the state table's partition `pk` (expired ones left out), at most `cap`,
    /// parsed as `T`, in key order.
    async fn live_items<T>(&self, pk: &'static str, cap: usize) -> StoreResult<Vec<T>>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        self.run(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(STATE).map_err(unavailable)?;
            let from = state_key(pk, "");
            let to = format!("{pk}\u{1}");
            let now = now_secs();
            let mut out = Vec::new();
            for entry in table.range(from.as_str()..to.as_str()).map_err(unavailable)? {
                let (_, value) = entry.map_err(unavailable)?;
                let item: StateItem = serde_json::from_slice(value.value()).map_err(corrupt)?;
                if alive(item.expires_at, now) && out.len() < cap {
                    out.push(parse::<T>(&item.data)?);
                }
            }
            Ok(out)
        })
        .await
    }

    /// A write transaction on the state table: `f` gets the current live item (if any) and
    /// returns what to store (`Some`), delete (`None`), and what to answer.
    async fn update_state<T, F>(&self, key: String, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(Option<StateItem>, u64) -> (Change, T) + Send + 'static,
    {
        self.run(move |db| {
            let now = now_secs();
            let txn = db.begin_write().map_err(unavailable)?;
            let answer = {
                let mut table = txn.open_table(STATE).map_err(unavailable)?;
                let current = match table.get(key.as_str()).map_err(unavailable)? {
                    Some(v) => Some(serde_json::from_slice::<StateItem>(v.value()).map_err(corrupt)?),
                    None => None,
                };
                let current = current.filter(|item| alive(item.expires_at, now));
                let (change, answer) = f(current, now);
                match change {
                    Change::Keep => {}
                    Change::Put(item) => {
                        table.insert(key.as_str(), json(&item).as_slice()).map_err(unavailable)?;
                    }
                    Change::Delete => {
                        table.remove(key.as_str()).map_err(unavailable)?;
                    }
                }
                answer
            };
            txn.commit().map_err(unavailable)?;
            Ok(answer)
        })
        .await
    }

    async fn put_state(&self, key: String, data: String, expires_at: u64) -> StoreResult<()> {
        self.update_state(key, move |_, _| (Change::Put(StateItem { expires_at, data, token: None, until: None }), ()))
            .await
    }

    async fn get_state(&self, key: String) -> StoreResult<Option<String>> {
        self.run(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(STATE).map_err(unavailable)?;
            let Some(v) = table.get(key.as_str()).map_err(unavailable)? else { return Ok(None) };
            let item: StateItem = serde_json::from_slice(v.value()).map_err(corrupt)?;
            Ok(alive(item.expires_at, now_secs()).then_some(item.data))
        })
        .await
    }
}

/// Finds the expired items with a read (no lock, no disk write), then deletes them, if any, in
/// one write transaction. An item renewed in between is judged again there, not deleted blindly.
fn sweep(db: &Database, now: u64) -> StoreResult<usize> {
    let expired = |value: &[u8]| {
        // An unreadable item is left for a person to look at, not deleted.
        serde_json::from_slice::<StateItem>(value).is_ok_and(|item| !alive(item.expires_at, now))
    };
    let candidates: Vec<String> = {
        let txn = db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(STATE).map_err(unavailable)?;
        let mut found = Vec::new();
        for entry in table.iter().map_err(unavailable)? {
            let (key, value) = entry.map_err(unavailable)?;
            if expired(value.value()) {
                found.push(key.value().to_string());
            }
        }
        found
    };
    if candidates.is_empty() {
        return Ok(0);
    }
    let txn = db.begin_write().map_err(unavailable)?;
    let mut removed = 0;
    {
        let mut table = txn.open_table(STATE).map_err(unavailable)?;
        for key in &candidates {
            let still_expired = table.get(key.as_str()).map_err(unavailable)?.is_some_and(|v| expired(v.value()));
            if still_expired {
                table.remove(key.as_str()).map_err(unavailable)?;
                removed += 1;
            }
        }
    }
    txn.commit().map_err(unavailable)?;
    Ok(removed)
}

enum Change {
    Keep,
    Put(StateItem),
    Delete,
}

fn parse<T: serde::de::DeserializeOwned>(data: &str) -> StoreResult<T> {
    serde_json::from_str(data).map_err(corrupt)
}

#[async_trait]
impl AuditLog for EmbeddedStore {
    async fn append(&self, record: &AuditRecord) -> StoreResult<()> {
        let record = record.clone();
        self.run(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            {
                let mut audit = txn.open_table(AUDIT).map_err(unavailable)?;
                if audit.get(record.audit_id.as_str()).map_err(unavailable)?.is_some() {
                    return Err(StoreError::AlreadyExists);
                }
                audit.insert(record.audit_id.as_str(), json(&record).as_slice()).map_err(unavailable)?;
                let mut by_user = txn.open_table(AUDIT_BY_USER).map_err(unavailable)?;
                let index_key = format!("{}\0{:020}\0{}", record.user_id, record.timestamp, record.audit_id);
                by_user.insert(index_key.as_str(), record.audit_id.as_str()).map_err(unavailable)?;
            }
            txn.commit().map_err(unavailable)
        })
        .await
    }

    async fn get(&self, audit_id: &str) -> StoreResult<Option<AuditRecord>> {
        let audit_id = audit_id.to_string();
        self.run(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let audit = txn.open_table(AUDIT).map_err(unavailable)?;
            let value = audit.get(audit_id.as_str()).map_err(unavailable)?;
            value.map(|v| serde_json::from_slice(v.value()).map_err(corrupt)).transpose()
        })
        .await
    }

    async fn by_user(&self, user_id: &str, limit: usize) -> StoreResult<Vec<AuditRecord>> {
        let lo = format!("{user_id}\0");
        let hi = format!("{user_id}\u{1}");
        self.run(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let by_user = txn.open_table(AUDIT_BY_USER).map_err(unavailable)?;
            let audit = txn.open_table(AUDIT).map_err(unavailable)?;
            let mut out = Vec::new();
            for entry in by_user.range(lo.as_str()..hi.as_str()).map_err(unavailable)?.rev().take(limit.min(MAX_LIST)) {
                let (_, id) = entry.map_err(unavailable)?;
                if let Some(v) = audit.get(id.value()).map_err(unavailable)? {
                    out.push(serde_json::from_slice(v.value()).map_err(corrupt)?);
                }
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl TraceRepo for EmbeddedStore {
    async fn put(&self, trace: &Trace) -> StoreResult<()> {
        let entries = trace_entries(trace)?;
        self.run(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            {
                let mut table = txn.open_table(STATE).map_err(unavailable)?;
                for (key, item) in &entries {
                    table.insert(key.as_str(), item.as_slice()).map_err(unavailable)?;
                }
            }
            txn.commit().map_err(unavailable)
        })
        .await
    }

    async fn recent_for_user(&self, user_id: &str, limit: usize) -> StoreResult<Vec<Trace>> {
        let lo = state_key(&format!("trace#user#{user_id}"), "");
        let hi = format!("trace#user#{user_id}\u{1}");
        self.run(move |db| {
            let now = now_secs();
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(STATE).map_err(unavailable)?;
            let mut out = Vec::new();
            for entry in table.range(lo.as_str()..hi.as_str()).map_err(unavailable)?.rev() {
                if out.len() >= limit.min(MAX_LIST) {
                    break;
                }
                let (_, v) = entry.map_err(unavailable)?;
                let item: StateItem = serde_json::from_slice(v.value()).map_err(corrupt)?;
                if alive(item.expires_at, now) {
                    out.push(parse(&item.data)?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn get(&self, trace_id: &str) -> StoreResult<Option<Trace>> {
        self.get_state(state_key(&format!("trace#id#{trace_id}"), "-")).await?.map(|d| parse(&d)).transpose()
    }
}

#[async_trait]
impl AlertLedger for EmbeddedStore {
    async fn claim(&self, key: &str, now: u64, window_secs: u64) -> StoreResult<Option<Claim>> {
        let claim = Claim { key: key.to_string(), token: uuid::Uuid::new_v4().to_string(), until: now + window_secs };
        let storage_key = state_key(&format!("alert#claim#{key}"), "-");
        self.update_state(storage_key, move |current, _| {
            // the window is judged on the caller's `now`, as the DynamoDB condition does
            if current.as_ref().and_then(|c| c.until).is_some_and(|until| until > now) {
                return (Change::Keep, None);
            }
            let item = StateItem {
                expires_at: claim.until,
                data: String::new(),
                token: Some(claim.token.clone()),
                until: Some(claim.until),
            };
            (Change::Put(item), Some(claim))
        })
        .await
    }

    async fn release(&self, claim: &Claim) -> StoreResult<()> {
        let token = claim.token.clone();
        self.update_state(state_key(&format!("alert#claim#{}", claim.key), "-"), move |current, _| match current {
            Some(item) if item.token.as_deref() == Some(token.as_str()) => (Change::Delete, ()),
            _ => (Change::Keep, ()),
        })
        .await
    }
}

#[async_trait]
impl DeliveryLedger for EmbeddedStore {
    async fn first_seen(&self, id: &str) -> StoreResult<bool> {
        self.update_state(delivery_key(id), |current, now| match current {
            Some(_) => (Change::Keep, false),
            None => (
                Change::Put(StateItem {
                    expires_at: now + DELIVERY_TTL_SECS,
                    data: String::new(),
                    token: None,
                    until: None,
                }),
                true,
            ),
        })
        .await
    }

    async fn forget(&self, id: &str) -> StoreResult<()> {
        self.update_state(delivery_key(id), |_, _| (Change::Delete, ())).await
    }

    async fn look_up(&self, id: &str, incident_ids: &[String]) -> StoreResult<Lookup> {
        let delivery = delivery_key(id);
        let incidents: Vec<String> = incident_ids.iter().map(|i| state_key(INCIDENT_PK, i)).collect();
        self.run(move |db| {
            let now = now_secs();
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(STATE).map_err(unavailable)?;
            let done = live_item(&table, &delivery, now)?.is_some();
            let mut found = Vec::new();
            for key in &incidents {
                if let Some(item) = live_item(&table, key, now)? {
                    found.push(parse::<Incident>(&item.data)?);
                }
            }
            Ok(Lookup { done, incidents: found })
        })
        .await
    }

    async fn finish(&self, id: &str, trace: &Trace) -> StoreResult<bool> {
        let delivery = delivery_key(id);
        let entries = trace_entries(trace)?;
        self.run(move |db| {
            let now = now_secs();
            let txn = db.begin_write().map_err(unavailable)?;
            {
                let mut table = txn.open_table(STATE).map_err(unavailable)?;
                if live_item(&table, &delivery, now)?.is_some() {
                    return Ok(false);
                }
                table.insert(delivery.as_str(), done_item(now).as_slice()).map_err(unavailable)?;
                for (key, item) in &entries {
                    table.insert(key.as_str(), item.as_slice()).map_err(unavailable)?;
                }
            }
            txn.commit().map_err(unavailable)?;
            Ok(true)
        })
        .await
    }
}

/// The partition of the outbox's entries (one per incident whose card has something unsent).
const OUTBOX_PK: &str = "outbox";

#[async_trait]
impl OutboxRepo for EmbeddedStore {
    async fn pending_cards(&self, limit: usize) -> StoreResult<Vec<OutboxEntry>> {
        let limit = limit.min(MAX_LIST);
        let mut all: Vec<OutboxEntry> = self.live_items(OUTBOX_PK, usize::MAX).await?;
        all.sort_by(|a, b| a.since.cmp(&b.since).then_with(|| a.id.cmp(&b.id)));
        all.truncate(limit);
        Ok(all)
    }
}

fn delivery_key(id: &str) -> String {
    state_key(&format!("delivery#{id}"), "-")
}

/// The record of a delivery done (or an interaction seen).
fn done_item(now: u64) -> Vec<u8> {
    json(&StateItem { expires_at: now + DELIVERY_TTL_SECS, data: String::new(), token: None, until: None })
}

/// The live item under `key`, if any.
fn live_item(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
    now: u64,
) -> StoreResult<Option<StateItem>> {
    let Some(v) = table.get(key).map_err(unavailable)? else { return Ok(None) };
    let item: StateItem = serde_json::from_slice(v.value()).map_err(corrupt)?;
    Ok(alive(item.expires_at, now).then_some(item))
}

/// A trace's two items (by user, by id), as (key, value).
fn trace_entries(trace: &Trace) -> StoreResult<Vec<(String, Vec<u8>)>> {
    let data = serde_json::to_string(trace).map_err(corrupt)?;
    let expires_at = trace.started_at_ms / 1000 + TRACE_TTL_SECS;
    let item = json(&StateItem { expires_at, data, token: None, until: None });
    let by_user =
        state_key(&format!("trace#user#{}", trace.user_id), &format!("{:020}#{}", trace.started_at_ms, trace.trace_id));
    let by_id = state_key(&format!("trace#id#{}", trace.trace_id), "-");
    Ok(vec![(by_user, item.clone()), (by_id, item)])
}

#[async_trait]
impl RunRepo for EmbeddedStore {
    async fn upsert_run(&self, run: &RunRecord) -> StoreResult<bool> {
        let run = run.clone();
        self.run(move |db| {
            let version = super::dynamo::run_version(&run);
            let txn = db.begin_write().map_err(unavailable)?;
            let written = {
                let mut runs = txn.open_table(RUNS).map_err(unavailable)?;
                let previous: Option<StoredRun> = match runs.get(run.run_id).map_err(unavailable)? {
                    Some(v) => Some(serde_json::from_slice(v.value()).map_err(corrupt)?),
                    None => None,
                };
                if previous.as_ref().is_some_and(|p| p.version > version) {
                    false
                } else {
                    let mut index = txn.open_table(RUNS_BY_WORKFLOW).map_err(unavailable)?;
                    if let Some(p) = &previous {
                        let old = format!("{}\0{:020}\0{:020}", p.run.workflow_key(), p.run.updated_at, p.run.run_id);
                        index.remove(old.as_str()).map_err(unavailable)?;
                    }
                    let new = format!("{}\0{:020}\0{:020}", run.workflow_key(), run.updated_at, run.run_id);
                    index.insert(new.as_str(), run.run_id).map_err(unavailable)?;
                    let stored = json(&StoredRun { version, run: run.clone() });
                    runs.insert(run.run_id, stored.as_slice()).map_err(unavailable)?;
                    true
                }
            };
            txn.commit().map_err(unavailable)?;
            Ok(written)
        })
        .await
    }

    async fn get_run(&self, run_id: u64) -> StoreResult<Option<RunRecord>> {
        self.run(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let runs = txn.open_table(RUNS).map_err(unavailable)?;
            let value = runs.get(run_id).map_err(unavailable)?;
            value.map(|v| serde_json::from_slice::<StoredRun>(v.value()).map(|s| s.run).map_err(corrupt)).transpose()
        })
        .await
    }

    async fn recent_runs(&self, workflow_key: &str, limit: usize) -> StoreResult<Vec<RunRecord>> {
        let lo = format!("{workflow_key}\0");
        let hi = format!("{workflow_key}\u{1}");
        self.run(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let index = txn.open_table(RUNS_BY_WORKFLOW).map_err(unavailable)?;
            let runs = txn.open_table(RUNS).map_err(unavailable)?;
            let mut out = Vec::new();
            for entry in index.range(lo.as_str()..hi.as_str()).map_err(unavailable)?.rev().take(limit.min(MAX_LIST)) {
                let (_, run_id) = entry.map_err(unavailable)?;
                if let Some(v) = runs.get(run_id.value()).map_err(unavailable)? {
                    out.push(serde_json::from_slice::<StoredRun>(v.value()).map_err(corrupt)?.run);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn put_correlation(&self, c: &DiagnoseCorrelation) -> StoreResult<()> {
        let data = serde_json::to_string(c).map_err(corrupt)?;
        self.put_state(state_key(&format!("diagnose#{}", c.correlation_id), "-"), data, c.expires_at).await
    }

    async fn get_correlation(&self, correlation_id: &str) -> StoreResult<Option<DiagnoseCorrelation>> {
        self.get_state(state_key(&format!("diagnose#{correlation_id}"), "-")).await?.map(|d| parse(&d)).transpose()
    }
}

#[async_trait]
impl ConfirmationRepo for EmbeddedStore {
    async fn put_confirmation(&self, p: &PendingConfirmation) -> StoreResult<()> {
        let data = serde_json::to_string(p).map_err(corrupt)?;
        self.put_state(state_key(&format!("confirm#{}", p.id), "-"), data, p.expires_at).await
    }

    async fn take_confirmation(&self, id: &str, user_id: u64) -> StoreResult<Taken> {
        self.update_state(state_key(&format!("confirm#{id}"), "-"), move |current, _| match current {
            None => (Change::Keep, Ok(Taken::Missing)),
            Some(item) => match serde_json::from_str::<PendingConfirmation>(&item.data) {
                Ok(p) if p.user_id == user_id => (Change::Delete, Ok(Taken::Yours(p))),
                Ok(_) => (Change::Keep, Ok(Taken::NotYours)),
                Err(e) => (Change::Keep, Err(corrupt(e))),
            },
        })
        .await?
    }

    async fn put_job_ticket(&self, t: &JobTicket) -> StoreResult<()> {
        let data = serde_json::to_string(t).map_err(corrupt)?;
        self.put_state(state_key(&format!("job#{}", t.job_id), "-"), data, t.expires_at).await
    }

    async fn take_job_ticket(&self, job_id: &str) -> StoreResult<Option<JobTicket>> {
        self.update_state(state_key(&format!("job#{job_id}"), "-"), move |current, _| match current {
            None => (Change::Keep, Ok(None)),
            Some(item) => match serde_json::from_str::<JobTicket>(&item.data) {
                Ok(t) => (Change::Delete, Ok(Some(t))),
                Err(e) => (Change::Keep, Err(corrupt(e))),
            },
        })
        .await?
    }
}

const INCIDENT_PK: &str = "incident";

#[async_trait]
impl IncidentRepo for EmbeddedStore {
    async fn get_incident(&self, id: &str) -> StoreResult<Option<Incident>> {
        self.get_state(state_key(INCIDENT_PK, id)).await?.map(|d| parse(&d)).transpose()
    }

    async fn write_incident(
        &self,
        incident: &Incident,
        done: Option<&str>,
        trace: Option<&Trace>,
    ) -> StoreResult<IncidentWrite> {
        let data = serde_json::to_string(incident).map_err(corrupt)?;
        let version = incident.version;
        let expires_at = incident.updated_at.max(now_secs()) + INCIDENT_TTL_SECS;
        let key = state_key(INCIDENT_PK, &incident.id);
        let outbox_key = state_key(OUTBOX_PK, &incident.id);
        let outbox = OutboxEntry::of(incident)
            .map(|e| {
                serde_json::to_string(&e).map(|data| json(&StateItem { expires_at, data, token: None, until: None }))
            })
            .transpose()
            .map_err(corrupt)?;
        let done = done.map(delivery_key);
        let traces = trace.map(trace_entries).transpose()?.unwrap_or_default();
        self.run(move |db| {
            let now = now_secs();
            let txn = db.begin_write().map_err(unavailable)?;
            {
                let mut table = txn.open_table(STATE).map_err(unavailable)?;
                // An unreadable item is not overwritten blindly.
                let stored = live_item(&table, &key, now)?.map(|item| parse::<Incident>(&item.data)).transpose()?;
                let expected = version.saturating_sub(1);
                let matches = match &stored {
                    None => expected == 0,
                    Some(s) => s.version == expected,
                };
                if !matches {
                    return Ok(IncidentWrite::Conflict(stored.map(Box::new)));
                }
                if let Some(done) = &done
                    && live_item(&table, done, now)?.is_some()
                {
                    return Ok(IncidentWrite::AlreadyDone);
                }
                let item = json(&StateItem { expires_at, data, token: None, until: None });
                table.insert(key.as_str(), item.as_slice()).map_err(unavailable)?;
                if let Some(done) = &done {
                    table.insert(done.as_str(), done_item(now).as_slice()).map_err(unavailable)?;
                }
                match &outbox {
                    Some(entry) => {
                        table.insert(outbox_key.as_str(), entry.as_slice()).map_err(unavailable)?;
                    }
                    None => {
                        table.remove(outbox_key.as_str()).map_err(unavailable)?;
                    }
                }
                for (k, item) in &traces {
                    table.insert(k.as_str(), item.as_slice()).map_err(unavailable)?;
                }
            }
            txn.commit().map_err(unavailable)?;
            Ok(IncidentWrite::Written)
        })
        .await
    }

    async fn list_incidents(&self, limit: usize) -> StoreResult<Vec<Incident>> {
        let limit = limit.min(MAX_LIST);
        let mut all: Vec<Incident> = self.live_items(INCIDENT_PK, usize::MAX).await?;
        all.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then_with(|| a.id.cmp(&b.id)));
        all.truncate(limit);
        Ok(all)
    }
}

const ROUTE_PK: &str = "route";

#[async_trait]
impl RouteRepo for EmbeddedStore {
    async fn put_subscription(&self, sub: &Subscription) -> StoreResult<()> {
        let data = serde_json::to_string(sub).map_err(corrupt)?;
        self.put_state(state_key(ROUTE_PK, &subscription_key(sub.channel_id, &sub.repo)), data, NEVER_EXPIRES).await
    }

    async fn delete_subscription(&self, channel_id: u64, repo_key: &str) -> StoreResult<bool> {
        self.update_state(state_key(ROUTE_PK, &subscription_key(channel_id, repo_key)), |current, _| match current {
            Some(_) => (Change::Delete, true),
            None => (Change::Keep, false),
        })
        .await
    }

    async fn list_subscriptions(&self) -> StoreResult<Vec<Subscription>> {
        let mut all: Vec<Subscription> = self.live_items(ROUTE_PK, MAX_LIST).await?;
        sort_subscriptions(&mut all);
        Ok(all)
    }
}

#[async_trait]
impl SignatureLedger for EmbeddedStore {
    async fn sight(&self, sighting: &Sighting) -> StoreResult<Vec<Sighting>> {
        let (pk, sk) = sighting_key(sighting);
        let item = StateItem {
            expires_at: sighting.at + SIGHTING_TTL_SECS,
            data: serde_json::to_string(sighting).map_err(corrupt)?,
            token: None,
            until: None,
        };
        self.run(move |db| {
            let now = now_secs();
            let txn = db.begin_write().map_err(unavailable)?;
            let mut out = Vec::new();
            {
                let mut table = txn.open_table(STATE).map_err(unavailable)?;
                table.insert(state_key(&pk, &sk).as_str(), json(&item).as_slice()).map_err(unavailable)?;
                let (from, to) = (state_key(&pk, ""), format!("{pk}\u{1}"));
                for entry in table.range(from.as_str()..to.as_str()).map_err(unavailable)? {
                    let (_, value) = entry.map_err(unavailable)?;
                    let item: StateItem = serde_json::from_slice(value.value()).map_err(corrupt)?;
                    if alive(item.expires_at, now) {
                        out.push(parse::<Sighting>(&item.data)?);
                    }
                }
            }
            txn.commit().map_err(unavailable)?;
            sort_sightings(&mut out);
            out.truncate(MAX_LIST);
            Ok(out)
        })
        .await
    }

    async fn flake(&self, flake: &Flake) -> StoreResult<()> {
        let data = serde_json::to_string(flake).map_err(corrupt)?;
        self.put_state(state_key(FLAKE_PK, &flake_key(flake)), data, flake.at + SIGHTING_TTL_SECS).await
    }

    async fn flakes(&self) -> StoreResult<Vec<Flake>> {
        let mut all: Vec<Flake> = self.live_items(FLAKE_PK, usize::MAX).await?;
        all.reverse();
        all.truncate(MAX_LIST);
        Ok(all)
    }

    async fn know(&self, known: &KnownIssue) -> StoreResult<KnownIssue> {
        let known = known.clone();
        let answer = self
            .update_state(state_key(KNOWN_PK, &known.signature), move |current, _| {
                let was = current.and_then(|item| serde_json::from_str::<KnownIssue>(&item.data).ok());
                let kept = match was {
                    Some(w) => w.merged(known),
                    None => known,
                };
                let data = serde_json::to_string(&kept).unwrap_or_default();
                (Change::Put(StateItem { expires_at: NEVER_EXPIRES, data, token: None, until: None }), kept)
            })
            .await?;
        Ok(answer)
    }

    async fn known(&self, signature: &str) -> StoreResult<Option<KnownIssue>> {
        self.get_state(state_key(KNOWN_PK, signature)).await?.map(|d| parse(&d)).transpose()
    }

    async fn known_issues(&self) -> StoreResult<Vec<KnownIssue>> {
        self.live_items(KNOWN_PK, MAX_LIST).await
    }

    async fn forget_known(&self, signature: &str) -> StoreResult<bool> {
        self.update_state(state_key(KNOWN_PK, signature), |current, _| match current {
            Some(_) => (Change::Delete, true),
            None => (Change::Keep, false),
        })
        .await
    }

    async fn claim_retry(&self, retry: &Retry) -> StoreResult<bool> {
        let data = serde_json::to_string(retry).map_err(corrupt)?;
        let expires_at = retry.at + SIGHTING_TTL_SECS;
        self.update_state(retry_key(&retry.repository, retry.run_id), move |current, _| match current {
            Some(_) => (Change::Keep, false),
            None => (Change::Put(StateItem { expires_at, data, token: None, until: None }), true),
        })
        .await
    }

    async fn retry_of(&self, repository: &str, run_id: u64) -> StoreResult<Option<Retry>> {
        self.get_state(retry_key(repository, run_id)).await?.map(|d| parse(&d)).transpose()
    }
}

#[async_trait]
impl LockRepo for EmbeddedStore {
    async fn lock(&self, lock: &Lock) -> StoreResult<Option<Lock>> {
        let data = serde_json::to_string(lock).map_err(corrupt)?;
        let expires_at = lock_expires_at(lock);
        self.update_state(lock_key(&lock.environment), move |current, _| match current {
            Some(item) => (Change::Keep, serde_json::from_str(&item.data).ok()),
            None => (Change::Put(StateItem { expires_at, data, token: None, until: None }), None),
        })
        .await
    }

    async fn get_lock(&self, environment: &str) -> StoreResult<Option<Lock>> {
        self.get_state(lock_key(environment)).await?.map(|d| parse(&d)).transpose()
    }

    async fn unlock(&self, environment: &str) -> StoreResult<Option<Lock>> {
        self.update_state(lock_key(environment), |current, _| match current {
            Some(item) => (Change::Delete, serde_json::from_str(&item.data).ok()),
            None => (Change::Keep, None),
        })
        .await
    }
}

#[async_trait]
impl StoreHealth for EmbeddedStore {
    async fn ping(&self) -> StoreResult<()> {
        self.run(|db| {
            let txn = db.begin_read().map_err(unavailable)?;
            txn.open_table(STATE).map_err(unavailable)?;
            Ok(())
        })
        .await
    }
}
