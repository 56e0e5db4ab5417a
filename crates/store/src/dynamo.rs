//! The DynamoDB adapter, over the audit, runs and state tables of `schema`.
//!
//! Conditional writes make claims, first-seen checks and upserts safe across Lambda containers.
//! DynamoDB deletes expired items late (up to two days), so every read filters on `expires_at`.
//! Timeouts and retries are set so that an unreachable store fails in about two seconds, well
//! inside Discord's three.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, ReturnValue, TransactWriteItem};

use super::schema::{AUDIT_USER_INDEX, RUNS_WORKFLOW_INDEX};
use super::*;
use valine_domain::audit::{AuditRecord, AuditResult};
use valine_domain::clock::now_secs;
use valine_domain::config::Config;
use valine_domain::incident::Incident;
use valine_domain::trace::Trace;

type Item = HashMap<String, AttributeValue>;
type HttpResponse = aws_smithy_runtime_api::http::Response;

/// The AWS SDK's HTTPS client: rustls on ring, so the binaries carry one crypto library (the
/// Discord and GitHub clients use ring too). Root certificates load when it first connects, not
/// at start-up.
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// AWS settings from the environment, with [`https_client`]. Every AWS client of the bot starts
/// here.
pub fn sdk_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(https_client())
}

/// Shared AWS settings with deliberate timeouts and retries ([`with_budget`]).
pub async fn sdk_config() -> aws_config::SdkConfig {
    with_budget(sdk_loader()).load().await
}

/// The store's budget: connection 300 ms, each attempt 800 ms, the whole call 1.6 s, two attempts
/// with a short backoff. DynamoDB answers in milliseconds; a store that does not is treated as
/// down quickly, inside Discord's 3 s and GitHub's 10 s. A throttle
/// (`ProvisionedThroughputExceededException`) or a 5xx is tried once more within it; what still
/// fails is `Unavailable`.
pub fn with_budget(loader: aws_config::ConfigLoader) -> aws_config::ConfigLoader {
    loader
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(300))
                .read_timeout(Duration::from_millis(800))
                .operation_attempt_timeout(Duration::from_millis(800))
                .operation_timeout(Duration::from_millis(1600))
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(2)
                .with_initial_backoff(Duration::from_millis(50))
                .with_max_backoff(Duration::from_millis(250)),
        )
}

/// The settings for a write that must reach DynamoDB at most once: a conditional put, or a delete
/// that returns what it removed. Were the SDK to retry one whose first answer was lost, the retry
/// would meet the caller's own write and report it as someone else's (a delivery "already seen",
/// a window "already claimed", a state "already taken"). So nothing is retried but a throttle,
/// which DynamoDB answers before doing anything; a timeout, a lost connection or a 500 (which
/// may have been applied) is `Unavailable`, which every caller treats as "unknown" and handles
/// safely. `E` is the operation's error type, where the throttle's code is read.
fn at_most_once<E>() -> aws_sdk_dynamodb::config::Builder
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    aws_sdk_dynamodb::config::Builder::default().retry_classifier(OnlyThrottles::<E>(std::marker::PhantomData))
}

/// The error codes with which DynamoDB refuses a request it has not carried out.
const THROTTLES: &[&str] = &["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"];

/// Forbids every retry but that of a throttle (which the SDK's own classifiers then retry).
struct OnlyThrottles<E>(std::marker::PhantomData<E>);

impl<E> std::fmt::Debug for OnlyThrottles<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnlyThrottles")
    }
}

impl<E> aws_sdk_dynamodb::config::retry::ClassifyRetry for OnlyThrottles<E>
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    fn classify_retry(
        &self,
        ctx: &aws_smithy_runtime_api::client::interceptors::context::InterceptorContext,
    ) -> aws_sdk_dynamodb::config::retry::RetryAction {
        use aws_sdk_dynamodb::config::retry::RetryAction;
        let code = match ctx.output_or_error() {
            Some(Err(e)) => e.as_operation_error().and_then(|e| e.downcast_ref::<E>()).and_then(|e| e.code()),
            _ => return RetryAction::NoActionIndicated,
        };
        if code.is_some_and(|c| THROTTLES.contains(&c)) {
            RetryAction::NoActionIndicated
        } else {
            RetryAction::RetryForbidden
        }
    }

    fn name(&self) -> &'static str {
        "valine: at most once, only throttles retried"
    }
}

#[derive(Debug, Clone)]
pub struct TableNames {
    pub audit: String,
    pub runs: String,
    pub state: String,
}

impl TableNames {
    pub fn from_config(config: &Config) -> Self {
        Self {
            audit: config.audit_table_name.clone(),
            runs: config.runs_table_name.clone(),
            state: config.state_table_name.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    tables: TableNames,
}

impl DynamoStore {
    /// Every live item of the state table under partition `pk` (at most `MAX_LIST`), parsed.
    async fn live_under<T: serde::de::DeserializeOwned>(&self, pk: &str) -> StoreResult<Vec<T>> {
        let now = now_secs();
        let items = self
            .newest_first(&self.tables.state, None, ("pk", pk.to_string()), None, MAX_LIST, |item| {
                live_data(item, now).is_some()
            })
            .await?;
        items.iter().filter_map(|item| live_data(item, now)).map(|d| from_json::<T>(&d)).collect()
    }

    pub fn new(sdk: &aws_config::SdkConfig, tables: TableNames) -> Self {
        Self { client: Client::new(sdk), tables }
    }

    pub fn from_client(client: Client, tables: TableNames) -> Self {
        Self { client, tables }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A trace's two items (by user, by id) as transaction items.
    fn trace_items(&self, trace: &Trace) -> StoreResult<[TransactWriteItem; 2]> {
        let data = to_json(trace);
        let expires_at = trace.started_at_ms / 1000 + TRACE_TTL_SECS;
        let put = |pk: String, sk: String| -> StoreResult<TransactWriteItem> {
            let put = Put::builder()
                .table_name(&self.tables.state)
                .item("pk", s(pk))
                .item("sk", s(sk))
                .item("data", s(data.clone()))
                .item("expires_at", n(expires_at))
                .build()
                .map_err(|e| StoreError::Rejected(e.to_string()))?;
            Ok(TransactWriteItem::builder().put(put).build())
        };
        Ok([
            put(trace_user_pk(&trace.user_id), trace_sk(trace))?,
            put(format!("trace#id#{}", trace.trace_id), "-".into())?,
        ])
    }

    /// The record of a delivery done (or an interaction seen), written only where none is live.
    fn delivery_put(&self, id: &str, now: u64) -> StoreResult<Put> {
        Put::builder()
            .table_name(&self.tables.state)
            .item("pk", s(format!("delivery#{id}")))
            .item("sk", s("-"))
            .item("expires_at", n(now + DELIVERY_TTL_SECS))
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(|e| StoreError::Rejected(e.to_string()))
    }

    fn done_item(&self, id: &str, now: u64) -> StoreResult<TransactWriteItem> {
        Ok(TransactWriteItem::builder().put(self.delivery_put(id, now)?).build())
    }

    /// The incident's outbox entry: put while its card has something unsent, else deleted.
    fn outbox_item(&self, incident: &Incident, expires_at: u64) -> StoreResult<TransactWriteItem> {
        let key = |b: aws_sdk_dynamodb::types::builders::DeleteBuilder| {
            b.table_name(&self.tables.state).key("pk", s(OUTBOX_PK)).key("sk", s(incident.id.clone()))
        };
        Ok(match OutboxEntry::of(incident) {
            Some(entry) => TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.tables.state)
                        .item("pk", s(OUTBOX_PK))
                        .item("sk", s(incident.id.clone()))
                        .item("data", s(to_json(&entry)))
                        .item("expires_at", n(expires_at))
                        .build()
                        .map_err(|e| StoreError::Rejected(e.to_string()))?,
                )
                .build(),
            None => TransactWriteItem::builder()
                .delete(
                    key(aws_sdk_dynamodb::types::Delete::builder())
                        .build()
                        .map_err(|e| StoreError::Rejected(e.to_string()))?,
                )
                .build(),
        })
    }

    /// A conditional put on its own, at most once (see [`at_most_once`]): `Ok(false)` when its
    /// condition failed.
    async fn put_once(&self, put: Put) -> StoreResult<bool> {
        let req = self
            .client
            .put_item()
            .table_name(put.table_name)
            .set_item(Some(put.item))
            .set_condition_expression(put.condition_expression)
            .set_expression_attribute_values(put.expression_attribute_values);
        conditional(req.customize().config_override(at_most_once::<PutItemError>()).send().await)
    }

    /// Sends a transaction at most once (see [`at_most_once`]). `Ok(Some(i))`: cancelled because
    /// the condition of item `i` failed; nothing was written.
    async fn transact_once(&self, items: Vec<TransactWriteItem>) -> StoreResult<Option<usize>> {
        let res = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .customize()
            .config_override(at_most_once::<TransactWriteItemsError>())
            .send()
            .await;
        match res {
            Ok(_) => Ok(None),
            Err(SdkError::ServiceError(se)) => {
                if let TransactWriteItemsError::TransactionCanceledException(c) = se.err() {
                    let reasons = c.cancellation_reasons();
                    if let Some(i) = reasons.iter().position(|r| r.code() == Some("ConditionalCheckFailed")) {
                        return Ok(Some(i));
                    }
                    // Another transaction on one of the items was under way: nothing was
                    // written, and trying again later may succeed.
                    if reasons.iter().any(|r| r.code() == Some("TransactionConflict")) {
                        return Err(StoreError::Unavailable("transaction conflict: an item was being written".into()));
                    }
                }
                Err(map_err(SdkError::ServiceError(se)))
            }
            Err(e) => Err(map_err(e)),
        }
    }

    async fn put_state(&self, pk: String, data: String, expires_at: u64) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.tables.state)
            .item("pk", s(pk))
            .item("sk", s("-"))
            .item("data", s(data))
            .item("expires_at", n(expires_at))
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn get_state(&self, pk: String) -> StoreResult<Option<String>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.state)
            .key("pk", s(pk))
            .key("sk", s("-"))
            .consistent_read(true)
            .send()
            .await
            .map_err(map_err)?;
        Ok(out.item().and_then(|item| live_data(item, now_secs())))
    }

    /// The live item `pk`/`sk` of the state table, parsed (a consistent read).
    async fn get_under<T: serde::de::DeserializeOwned>(&self, pk: &str, sk: &str) -> StoreResult<Option<T>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.state)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(map_err)?;
        out.item().and_then(|item| live_data(item, now_secs())).map(|d| from_json(&d)).transpose()
    }

    /// Items whose `key` equals `value` (and whose sort key is above `after`, when given) and that
    /// `keep` accepts, sort key descending (newest first), at most `limit` (and at most
    /// [`MAX_LIST`]). Follows `LastEvaluatedKey`: a query
    /// page ends at 1 MB, and expired items are skipped, so one page may hold fewer than asked.
    /// Base-table reads are consistent; index reads cannot be.
    async fn newest_first(
        &self,
        table: &str,
        index: Option<&str>,
        (key, value): (&str, String),
        after: Option<(&str, String)>,
        limit: usize,
        keep: impl Fn(&Item) -> bool,
    ) -> StoreResult<Vec<Item>> {
        let limit = limit.min(MAX_LIST);
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        while out.len() < limit {
            let mut query = self
                .client
                .query()
                .table_name(table)
                .set_index_name(index.map(str::to_string))
                .key_condition_expression("#k = :v")
                .expression_attribute_names("#k", key)
                .expression_attribute_values(":v", s(value.clone()));
            if let Some((sort_key, lowest)) = &after {
                query = query
                    .key_condition_expression("#k = :v AND #s > :after")
                    .expression_attribute_names("#s", *sort_key)
                    .expression_attribute_values(":after", s(lowest.clone()));
            }
            let page = query
                .scan_index_forward(false)
                .limit((limit - out.len()) as i32)
                .set_consistent_read(index.is_none().then_some(true))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(map_err)?;
            out.extend(page.items().iter().filter(|item| keep(item)).cloned());
            match page.last_evaluated_key() {
                Some(next) if !next.is_empty() => start = Some(next.clone()),
                _ => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Deletes and returns the item's data, atomically.
    async fn take_state(&self, pk: String) -> StoreResult<Option<String>> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.tables.state)
            .key("pk", s(pk))
            .key("sk", s("-"))
            .return_values(ReturnValue::AllOld)
            .customize()
            .config_override(at_most_once::<DeleteItemError>())
            .send()
            .await
            .map_err(map_err)?;
        Ok(out.attributes().and_then(|item| live_data(item, now_secs())))
    }
}

/// Turns an SDK error into a port error: no answer is `Unavailable`, an answer is `Rejected`.
fn map_err<E>(e: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let text = aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string();
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(text)
        }
        // A 5xx, whatever its body says (an overloaded server's HTML page has no error code).
        SdkError::ServiceError(se) if se.raw().status().is_server_error() => StoreError::Unavailable(text),
        SdkError::ServiceError(se) => match se.err().code() {
            Some(
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "ServiceUnavailable"
                | "UnrecognizedClientException"
                | "ExpiredTokenException",
            ) => StoreError::Unavailable(text),
            _ => StoreError::Rejected(text),
        },
        _ => StoreError::Unavailable(text),
    }
}

/// `Ok(true)` when a conditional write went through, `Ok(false)` when its condition failed.
fn conditional<T, E>(res: Result<T, SdkError<E, HttpResponse>>) -> StoreResult<bool>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match res {
        Ok(_) => Ok(true),
        Err(SdkError::ServiceError(se)) if se.err().code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(map_err(e)),
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s(item: &Item, key: &str) -> StoreResult<String> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .ok_or_else(|| StoreError::Corrupt(format!("attribute `{key}` missing or not a string")))
}

fn opt_s(item: &Item, key: &str) -> Option<String> {
    item.get(key).and_then(|v| v.as_s().ok()).cloned()
}

fn get_n(item: &Item, key: &str) -> StoreResult<u64> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("attribute `{key}` missing or not a number")))
}

fn live_data(item: &Item, now: u64) -> Option<String> {
    let expires_at = get_n(item, "expires_at").ok()?;
    if !alive(expires_at, now) {
        return None;
    }
    opt_s(item, "data")
}

fn from_json<T: serde::de::DeserializeOwned>(data: &str) -> StoreResult<T> {
    serde_json::from_str(data).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Our record types serialize to JSON infallibly: string keys, no non-finite floats.
    serde_json::to_string(value).unwrap_or_default()
}

fn audit_item(r: &AuditRecord) -> Item {
    let mut item = Item::new();
    item.insert("audit_id".into(), s(&r.audit_id));
    item.insert("trace_id".into(), s(&r.trace_id));
    item.insert("user_id".into(), s(&r.user_id));
    item.insert("command".into(), s(&r.command));
    if let Some(v) = &r.target_channel {
        item.insert("target_channel".into(), s(v));
    }
    if let Some(v) = &r.target_user {
        item.insert("target_user".into(), s(v));
    }
    if let Some(v) = &r.target {
        item.insert("target".into(), s(v));
    }
    if let Some(v) = &r.message_fingerprint {
        item.insert("message_fingerprint".into(), s(v));
    }
    if let Some(v) = &r.message_digest {
        item.insert("message_digest".into(), s(v));
    }
    item.insert("timestamp".into(), n(r.timestamp));
    item.insert("result".into(), s(r.result.as_str()));
    item.insert("metadata".into(), AttributeValue::M(r.metadata.iter().map(|(k, v)| (k.clone(), s(v))).collect()));
    item
}

fn audit_from_item(item: &Item) -> StoreResult<AuditRecord> {
    let result = get_s(item, "result")?;
    let result: AuditResult =
        serde_json::from_value(serde_json::Value::String(result)).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let metadata = match item.get("metadata") {
        Some(AttributeValue::M(m)) => m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_s().ok()?.clone()))).collect(),
        _ => Default::default(),
    };
    Ok(AuditRecord {
        audit_id: get_s(item, "audit_id")?,
        trace_id: get_s(item, "trace_id")?,
        user_id: get_s(item, "user_id")?,
        command: get_s(item, "command")?,
        target_channel: opt_s(item, "target_channel"),
        target_user: opt_s(item, "target_user"),
        target: opt_s(item, "target"),
        message_fingerprint: opt_s(item, "message_fingerprint"),
        message_digest: opt_s(item, "message_digest"),
        timestamp: get_n(item, "timestamp")?,
        result,
        metadata,
    })
}

/// Orders updates of one run: a later `updated_at` wins, and within one second a later status.
pub(crate) fn run_version(run: &RunRecord) -> u64 {
    let rank = match run.status.as_str() {
        "completed" => 3,
        "in_progress" => 2,
        "queued" | "waiting" | "pending" => 1,
        _ => 0,
    };
    run.updated_at * 4 + rank
}

fn trace_user_pk(user_id: &str) -> String {
    format!("trace#user#{user_id}")
}

fn trace_sk(trace: &Trace) -> String {
    format!("{:020}#{}", trace.started_at_ms, trace.trace_id)
}

#[async_trait]
impl AuditLog for DynamoStore {
    async fn append(&self, record: &AuditRecord) -> StoreResult<()> {
        let res = self
            .client
            .put_item()
            .table_name(&self.tables.audit)
            .set_item(Some(audit_item(record)))
            .condition_expression("attribute_not_exists(audit_id)")
            .customize()
            .config_override(at_most_once::<PutItemError>())
            .send()
            .await;
        if conditional(res)? { Ok(()) } else { Err(StoreError::AlreadyExists) }
    }

    async fn get(&self, audit_id: &str) -> StoreResult<Option<AuditRecord>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.audit)
            .key("audit_id", s(audit_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(map_err)?;
        out.item().map(audit_from_item).transpose()
    }

    async fn by_user(&self, user_id: &str, limit: usize) -> StoreResult<Vec<AuditRecord>> {
        let items = self
            .newest_first(
                &self.tables.audit,
                Some(AUDIT_USER_INDEX),
                ("user_id", user_id.to_string()),
                None,
                limit,
                |_| true,
            )
            .await?;
        items.iter().map(audit_from_item).collect()
    }
}

#[async_trait]
impl TraceRepo for DynamoStore {
    async fn put(&self, trace: &Trace) -> StoreResult<()> {
        // Both copies (by user, by id) in one transaction, as the embedded store writes them: a
        // trace is never listed without being readable, nor the other way round.
        let mut txn = self.client.transact_write_items();
        for item in self.trace_items(trace)? {
            txn = txn.transact_items(item);
        }
        txn.send().await.map_err(map_err)?;
        Ok(())
    }

    async fn recent_for_user(&self, user_id: &str, limit: usize) -> StoreResult<Vec<Trace>> {
        let now = now_secs();
        let live = |item: &Item| live_data(item, now).is_some();
        // Only traces started inside their lifetime are read: expired ones (which DynamoDB's TTL
        // deletes late) would otherwise be paged through, ten at a time, before the live ones.
        let oldest_live = format!("{:020}", now.saturating_sub(TRACE_TTL_SECS) * 1000);
        let user = ("pk", trace_user_pk(user_id));
        let items = self.newest_first(&self.tables.state, None, user, Some(("sk", oldest_live)), limit, live).await?;
        items.iter().filter_map(|item| live_data(item, now)).map(|d| from_json(&d)).collect()
    }

    async fn get(&self, trace_id: &str) -> StoreResult<Option<Trace>> {
        self.get_state(format!("trace#id#{trace_id}")).await?.map(|d| from_json(&d)).transpose()
    }
}

#[async_trait]
impl AlertLedger for DynamoStore {
    async fn claim(&self, key: &str, now: u64, window_secs: u64) -> StoreResult<Option<Claim>> {
        let claim = Claim { key: key.to_string(), token: uuid::Uuid::new_v4().to_string(), until: now + window_secs };
        let res = self
            .client
            .put_item()
            .table_name(&self.tables.state)
            .item("pk", s(format!("alert#claim#{key}")))
            .item("sk", s("-"))
            .item("token", s(&claim.token))
            .item("until", n(claim.until))
            .item("expires_at", n(claim.until))
            .condition_expression("attribute_not_exists(pk) OR #until <= :now")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":now", n(now))
            .customize()
            .config_override(at_most_once::<PutItemError>())
            .send()
            .await;
        Ok(conditional(res)?.then_some(claim))
    }

    async fn release(&self, claim: &Claim) -> StoreResult<()> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.tables.state)
            .key("pk", s(format!("alert#claim#{}", claim.key)))
            .key("sk", s("-"))
            .condition_expression("#token = :token")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", s(&claim.token))
            .send()
            .await;
        // A condition that failed means someone else holds the key by now: nothing to give back.
        conditional(res).map(|_| ())
    }
}

#[async_trait]
impl DeliveryLedger for DynamoStore {
    async fn first_seen(&self, id: &str) -> StoreResult<bool> {
        self.put_once(self.delivery_put(id, now_secs())?).await
    }

    async fn forget(&self, id: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.tables.state)
            .key("pk", s(format!("delivery#{id}")))
            .key("sk", s("-"))
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn look_up(&self, id: &str, incident_ids: &[String]) -> StoreResult<Lookup> {
        let delivery_pk = format!("delivery#{id}");
        let key = |pk: &str, sk: &str| HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))]);
        let mut keys = vec![key(&delivery_pk, "-")];
        keys.extend(incident_ids.iter().take(99).map(|i| key(INCIDENT_PK, i)));
        let mut lookup = Lookup::default();
        let now = now_secs();
        // DynamoDB may leave keys unprocessed (throttling); they are asked again, a few times.
        for _ in 0..4 {
            let wanted = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Rejected(e.to_string()))?;
            let out =
                self.client.batch_get_item().request_items(&self.tables.state, wanted).send().await.map_err(map_err)?;
            for item in out.responses().and_then(|r| r.get(&self.tables.state)).into_iter().flatten() {
                if opt_s(item, "pk").as_deref() == Some(delivery_pk.as_str()) {
                    // A delivery's record has no data; only its expiry.
                    lookup.done = get_n(item, "expires_at").is_ok_and(|at| alive(at, now));
                } else if let Some(data) = live_data(item, now) {
                    lookup.incidents.push(from_json(&data)?);
                }
            }
            keys = match out.unprocessed_keys().and_then(|u| u.get(&self.tables.state)) {
                Some(left) if !left.keys().is_empty() => left.keys().to_vec(),
                _ => return Ok(lookup),
            };
        }
        Err(StoreError::Unavailable("DynamoDB left keys unprocessed four times (throttled)".into()))
    }

    async fn finish(&self, id: &str, trace: &Trace) -> StoreResult<bool> {
        let mut items = vec![self.done_item(id, now_secs())?];
        items.extend(self.trace_items(trace)?);
        Ok(self.transact_once(items).await?.is_none())
    }
}

#[async_trait]
impl RunRepo for DynamoStore {
    async fn upsert_run(&self, run: &RunRecord) -> StoreResult<bool> {
        let version = run_version(run);
        let res = self
            .client
            .put_item()
            .table_name(&self.tables.runs)
            .item("run_id", n(run.run_id))
            .item("workflow_key", s(run.workflow_key()))
            .item("updated_at", n(run.updated_at))
            .item("version", n(version))
            .item("data", s(to_json(run)))
            .condition_expression("attribute_not_exists(run_id) OR version <= :v")
            .expression_attribute_values(":v", n(version))
            .send()
            .await;
        conditional(res)
    }

    async fn get_run(&self, run_id: u64) -> StoreResult<Option<RunRecord>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.runs)
            .key("run_id", n(run_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(map_err)?;
        out.item().map(|item| get_s(item, "data").and_then(|d| from_json(&d))).transpose()
    }

    async fn recent_runs(&self, workflow_key: &str, limit: usize) -> StoreResult<Vec<RunRecord>> {
        let items = self
            .newest_first(
                &self.tables.runs,
                Some(RUNS_WORKFLOW_INDEX),
                ("workflow_key", workflow_key.to_string()),
                None,
                limit,
                |_| true,
            )
            .await?;
        items.iter().map(|item| get_s(item, "data").and_then(|d| from_json(&d))).collect()
    }

    async fn put_correlation(&self, c: &DiagnoseCorrelation) -> StoreResult<()> {
        self.put_state(format!("diagnose#{}", c.correlation_id), to_json(c), c.expires_at).await
    }

    async fn get_correlation(&self, correlation_id: &str) -> StoreResult<Option<DiagnoseCorrelation>> {
        self.get_state(format!("diagnose#{correlation_id}")).await?.map(|d| from_json(&d)).transpose()
    }
}

#[async_trait]
impl ConfirmationRepo for DynamoStore {
    async fn put_confirmation(&self, p: &PendingConfirmation) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.tables.state)
            .item("pk", s(format!("confirm#{}", p.id)))
            .item("sk", s("-"))
            .item("data", s(to_json(p)))
            .item("owner", n(p.user_id))
            .item("expires_at", n(p.expires_at))
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn take_confirmation(&self, id: &str, user_id: u64) -> StoreResult<Taken> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.tables.state)
            .key("pk", s(format!("confirm#{id}")))
            .key("sk", s("-"))
            .condition_expression("#owner = :u AND expires_at > :now")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":u", n(user_id))
            .expression_attribute_values(":now", n(now_secs()))
            .return_values(ReturnValue::AllOld)
            .customize()
            .config_override(at_most_once::<DeleteItemError>())
            .send()
            .await;
        match res {
            Ok(out) => match out.attributes().and_then(|item| live_data(item, now_secs())) {
                Some(data) => Ok(Taken::Yours(from_json(&data)?)),
                None => Ok(Taken::Missing),
            },
            Err(SdkError::ServiceError(se)) if se.err().code() == Some("ConditionalCheckFailedException") => {
                // Someone else's, or gone: only a read tells which.
                let alive = self.get_state(format!("confirm#{id}")).await?;
                Ok(if alive.is_some() { Taken::NotYours } else { Taken::Missing })
            }
            Err(e) => Err(map_err(e)),
        }
    }

    async fn put_job_ticket(&self, t: &JobTicket) -> StoreResult<()> {
        self.put_state(format!("job#{}", t.job_id), to_json(t), t.expires_at).await
    }

    async fn take_job_ticket(&self, job_id: &str) -> StoreResult<Option<JobTicket>> {
        // An expired ticket that TTL has not removed yet is gone all the same (`take_state`).
        self.take_state(format!("job#{job_id}")).await?.map(|data| from_json(&data)).transpose()
    }
}

const INCIDENT_PK: &str = "incident";

#[async_trait]
impl IncidentRepo for DynamoStore {
    async fn get_incident(&self, id: &str) -> StoreResult<Option<Incident>> {
        self.get_under(INCIDENT_PK, id).await
    }

    async fn write_incident(
        &self,
        incident: &Incident,
        done: Option<&str>,
        trace: Option<&Trace>,
    ) -> StoreResult<IncidentWrite> {
        let now = now_secs();
        let expected = incident.version.saturating_sub(1);
        // Version 1 goes where nothing (live) is; any other over exactly the version before it.
        let condition = if expected == 0 {
            "attribute_not_exists(pk) OR expires_at <= :now"
        } else {
            "version = :expected AND expires_at > :now"
        };
        let expires_at = incident.updated_at.max(now) + INCIDENT_TTL_SECS;
        let mut put = Put::builder()
            .table_name(&self.tables.state)
            .item("pk", s(INCIDENT_PK))
            .item("sk", s(incident.id.clone()))
            .item("version", n(incident.version))
            .item("updated_at", n(incident.updated_at))
            .item("data", s(to_json(incident)))
            .item("expires_at", n(expires_at))
            .condition_expression(condition)
            .expression_attribute_values(":now", n(now));
        if expected > 0 {
            put = put.expression_attribute_values(":expected", n(expected));
        }
        let put = put.build().map_err(|e| StoreError::Rejected(e.to_string()))?;
        // The incident first and the delivery's record second: a cancelled transaction names
        // which condition failed by its index.
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        if let Some(id) = done {
            items.push(self.done_item(id, now)?);
        }
        items.push(self.outbox_item(incident, expires_at)?);
        if let Some(trace) = trace {
            items.extend(self.trace_items(trace)?);
        }
        match self.transact_once(items).await? {
            None => Ok(IncidentWrite::Written),
            Some(0) => Ok(IncidentWrite::Conflict(self.get_incident(&incident.id).await?.map(Box::new))),
            Some(_) => Ok(IncidentWrite::AlreadyDone),
        }
    }

    async fn list_incidents(&self, limit: usize) -> StoreResult<Vec<Incident>> {
        let mut all: Vec<Incident> = self.live_under(INCIDENT_PK).await?;
        all.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then_with(|| a.id.cmp(&b.id)));
        all.truncate(limit.min(MAX_LIST));
        Ok(all)
    }
}

/// The partition of the outbox's entries (one per incident whose card has something unsent).
const OUTBOX_PK: &str = "outbox";

#[async_trait]
impl OutboxRepo for DynamoStore {
    async fn pending_cards(&self, limit: usize) -> StoreResult<Vec<OutboxEntry>> {
        let mut all: Vec<OutboxEntry> = self.live_under(OUTBOX_PK).await?;
        all.sort_by(|a, b| a.since.cmp(&b.since).then_with(|| a.id.cmp(&b.id)));
        all.truncate(limit.min(MAX_LIST));
        Ok(all)
    }
}

const ROUTE_PK: &str = "route";

#[async_trait]
impl RouteRepo for DynamoStore {
    async fn put_subscription(&self, sub: &Subscription) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.tables.state)
            .item("pk", s(ROUTE_PK))
            .item("sk", s(subscription_key(sub.channel_id, &sub.repo)))
            .item("data", s(to_json(sub)))
            .item("expires_at", n(NEVER_EXPIRES))
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_subscription(&self, channel_id: u64, repo_key: &str) -> StoreResult<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.tables.state)
            .key("pk", s(ROUTE_PK))
            .key("sk", s(subscription_key(channel_id, repo_key)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(map_err)?;
        Ok(out.attributes().is_some_and(|a| !a.is_empty()))
    }

    async fn list_subscriptions(&self) -> StoreResult<Vec<Subscription>> {
        let mut all: Vec<Subscription> = self.live_under(ROUTE_PK).await?;
        sort_subscriptions(&mut all);
        Ok(all)
    }
}

#[async_trait]
impl SignatureLedger for DynamoStore {
    async fn sight(&self, sighting: &Sighting) -> StoreResult<Vec<Sighting>> {
        let (pk, sk) = sighting_key(sighting);
        self.client
            .put_item()
            .table_name(&self.tables.state)
            .item("pk", s(pk.clone()))
            .item("sk", s(sk))
            .item("data", s(to_json(sighting)))
            .item("expires_at", n(sighting.at + SIGHTING_TTL_SECS))
            .send()
            .await
            .map_err(map_err)?;
        let mut all: Vec<Sighting> = self.live_under(&pk).await?;
        sort_sightings(&mut all);
        Ok(all)
    }

    async fn flake(&self, flake: &Flake) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.tables.state)
            .item("pk", s(FLAKE_PK))
            .item("sk", s(flake_key(flake)))
            .item("data", s(to_json(flake)))
            .item("expires_at", n(flake.at + SIGHTING_TTL_SECS))
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn flakes(&self) -> StoreResult<Vec<Flake>> {
        self.live_under(FLAKE_PK).await
    }

    /// Read, merged and written back: two people marking one signature at the same moment keep
    /// the later hand's fields, which is what either of them would see on a second look.
    async fn know(&self, known: &KnownIssue) -> StoreResult<KnownIssue> {
        let kept = match self.known(&known.signature).await? {
            Some(was) => was.merged(known.clone()),
            None => known.clone(),
        };
        self.client
            .put_item()
            .table_name(&self.tables.state)
            .item("pk", s(KNOWN_PK))
            .item("sk", s(kept.signature.clone()))
            .item("data", s(to_json(&kept)))
            .item("expires_at", n(NEVER_EXPIRES))
            .send()
            .await
            .map_err(map_err)?;
        Ok(kept)
    }

    async fn known(&self, signature: &str) -> StoreResult<Option<KnownIssue>> {
        self.get_under(KNOWN_PK, signature).await
    }

    async fn known_issues(&self) -> StoreResult<Vec<KnownIssue>> {
        let mut all: Vec<KnownIssue> = self.live_under(KNOWN_PK).await?;
        all.sort_by(|a, b| a.signature.cmp(&b.signature));
        Ok(all)
    }

    async fn forget_known(&self, signature: &str) -> StoreResult<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.tables.state)
            .key("pk", s(KNOWN_PK))
            .key("sk", s(signature))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(map_err)?;
        Ok(out.attributes().and_then(|item| live_data(item, now_secs())).is_some())
    }

    async fn claim_retry(&self, retry: &Retry) -> StoreResult<bool> {
        let now = now_secs();
        let put = Put::builder()
            .table_name(&self.tables.state)
            .item("pk", s(retry_key(&retry.repository, retry.run_id)))
            .item("sk", s("-"))
            .item("data", s(to_json(retry)))
            .item("expires_at", n(retry.at + SIGHTING_TTL_SECS))
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(|e| StoreError::Rejected(e.to_string()))?;
        self.put_once(put).await
    }

    async fn retry_of(&self, repository: &str, run_id: u64) -> StoreResult<Option<Retry>> {
        self.get_state(retry_key(repository, run_id)).await?.map(|d| from_json(&d)).transpose()
    }
}

#[async_trait]
impl LockRepo for DynamoStore {
    async fn lock(&self, lock: &Lock) -> StoreResult<Option<Lock>> {
        let put = Put::builder()
            .table_name(&self.tables.state)
            .item("pk", s(lock_key(&lock.environment)))
            .item("sk", s("-"))
            .item("data", s(to_json(lock)))
            .item("expires_at", n(lock_expires_at(lock)))
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", n(now_secs()))
            .build()
            .map_err(|e| StoreError::Rejected(e.to_string()))?;
        if self.put_once(put).await? {
            return Ok(None);
        }
        // Taken: answer the live lock (gone in between, it is answered as the one asked for).
        Ok(Some(self.get_lock(&lock.environment).await?.unwrap_or_else(|| lock.clone())))
    }

    async fn get_lock(&self, environment: &str) -> StoreResult<Option<Lock>> {
        self.get_state(lock_key(environment)).await?.map(|d| from_json(&d)).transpose()
    }

    async fn unlock(&self, environment: &str) -> StoreResult<Option<Lock>> {
        self.take_state(lock_key(environment)).await?.map(|d| from_json(&d)).transpose()
    }
}

#[async_trait]
impl StoreHealth for DynamoStore {
    async fn ping(&self) -> StoreResult<()> {
        self.get_state("health#ping".into()).await.map(|_| ())
    }
}

/// Creates the three tables from `schema` (for local servers and tests), with TTL on the state
/// table. Tables that exist already are left as they are.
pub async fn create_tables(client: &Client, names: &TableNames) -> StoreResult<()> {
    use super::schema::{self, AttrType, KeyAttr, TableSpec};
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
        ScalarAttributeType, TimeToLiveSpecification, TimeToLiveStatus,
    };

    fn keys(hash: KeyAttr, range: Option<KeyAttr>) -> StoreResult<Vec<KeySchemaElement>> {
        let mut out = vec![
            KeySchemaElement::builder()
                .attribute_name(hash.name)
                .key_type(KeyType::Hash)
                .build()
                .map_err(|e| StoreError::Rejected(e.to_string()))?,
        ];
        if let Some(r) = range {
            out.push(
                KeySchemaElement::builder()
                    .attribute_name(r.name)
                    .key_type(KeyType::Range)
                    .build()
                    .map_err(|e| StoreError::Rejected(e.to_string()))?,
            );
        }
        Ok(out)
    }

    let specs: [(&TableSpec, &str); 3] =
        [(&schema::AUDIT, &names.audit), (&schema::RUNS, &names.runs), (&schema::STATE, &names.state)];
    for (spec, name) in specs {
        let mut req = client.create_table().table_name(name).billing_mode(BillingMode::PayPerRequest);
        for a in spec.key_attributes() {
            let ty = match a.ty {
                AttrType::S => ScalarAttributeType::S,
                AttrType::N => ScalarAttributeType::N,
            };
            req = req.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(a.name)
                    .attribute_type(ty)
                    .build()
                    .map_err(|e| StoreError::Rejected(e.to_string()))?,
            );
        }
        req = req.set_key_schema(Some(keys(spec.hash, spec.range)?));
        for index in spec.indexes {
            req = req.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index.name)
                    .set_key_schema(Some(keys(index.hash, index.range)?))
                    .projection(Projection::builder().projection_type(ProjectionType::All).build())
                    .build()
                    .map_err(|e| StoreError::Rejected(e.to_string()))?,
            );
        }
        match req.send().await {
            Ok(_) => {}
            // There already: still made sure of below, TTL included.
            Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_in_use_exception()) => {}
            Err(e) => return Err(map_err(e)),
        }
        wait_until_active(client, name).await?;
        if let Some(ttl) = spec.ttl_attribute {
            let current = client.describe_time_to_live().table_name(name).send().await.map_err(map_err)?;
            let status = current.time_to_live_description().and_then(|d| d.time_to_live_status());
            if matches!(status, Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)) {
                continue;
            }
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .enabled(true)
                        .attribute_name(ttl)
                        .build()
                        .map_err(|e| StoreError::Rejected(e.to_string()))?,
                )
                .send()
                .await
                .map_err(map_err)?;
        }
    }
    Ok(())
}

/// Waits (up to a minute) for a new table to leave CREATING: DynamoDB refuses TTL settings and
/// writes until then.
async fn wait_until_active(client: &Client, name: &str) -> StoreResult<()> {
    use aws_sdk_dynamodb::types::TableStatus;
    for _ in 0..120 {
        let out = client.describe_table().table_name(name).send().await.map_err(map_err)?;
        match out.table().and_then(|t| t.table_status()) {
            Some(TableStatus::Creating | TableStatus::Updating) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            _ => return Ok(()),
        }
    }
    Err(StoreError::Unavailable(format!("table {name} is still being created after a minute")))
}
