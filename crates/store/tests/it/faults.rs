//! The DynamoDB adapter behind a fault-injecting proxy (`valine_store::fault_proxy`), with the
//! deployed budget (`dynamo::with_budget`): throttles and 500s are retried once within 1.6 s and
//! the call succeeds, or the call ends `Unavailable` in time; a write that must land at most once
//! is retried after a throttle (DynamoDB did nothing) but never after a 500 (it may have), and
//! faults never turn into a wrong answer (a first delivery seen as a duplicate).
//!
//! Needs a DynamoDB-compatible server at `AWS_ENDPOINT_URL`, like the conformance suite; skips
//! without one unless `VALINE_REQUIRE_DYNAMODB=1`.

use std::time::{Duration, Instant};

use valine_domain::audit::{AuditRecord, AuditResult};
use valine_domain::trace::{Trace, TraceRecorder};
use valine_store::fault_proxy::{Fault, FaultPlan, FaultProxy, dynamo_endpoint, stores_behind_proxy};
use valine_store::*;

/// The whole-call budget of `with_budget`, and what a test allows on top for a loaded machine.
const BUDGET: Duration = Duration::from_millis(1600);
const SLACK: Duration = Duration::from_millis(600);

async fn store_behind_proxy(plan: FaultPlan) -> Option<(Stores, FaultProxy)> {
    let endpoint = dynamo_endpoint()?;
    Some(stores_behind_proxy(&endpoint, plan).await.expect("tables and proxy"))
}

/// Runs `call`, asserting it finished within the budget.
async fn timed<T>(what: &str, call: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = call.await;
    let took = started.elapsed();
    assert!(took <= BUDGET + SLACK, "{what} took {took:?}, over the {BUDGET:?} budget");
    out
}

fn trace() -> Trace {
    TraceRecorder::new("7", "status").snapshot()
}

fn record(user: u64) -> AuditRecord {
    AuditRecord::new("trace-faults", user, "relay-send", AuditResult::Pending)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_first_attempts_are_retried_within_the_budget_and_succeed() {
    let Some((stores, proxy)) = store_behind_proxy(FaultPlan::FirstAttempts(Fault::Throttle)).await else { return };
    let r = record(7);
    timed("append", stores.audit.append(&r)).await.unwrap();
    assert_eq!(timed("get", stores.audit.get(&r.audit_id)).await.unwrap().unwrap().audit_id, r.audit_id);
    // A conditional put retried after a throttle does not meet itself: still "first seen".
    assert!(timed("first_seen", stores.deliveries.first_seen("github:d-1")).await.unwrap());
    assert!(!timed("first_seen again", stores.deliveries.first_seen("github:d-1")).await.unwrap());
    let claim = timed("claim", stores.alerts.claim("k", 1000, 60)).await.unwrap();
    assert!(claim.is_some());
    timed("trace put", stores.traces.put(&trace())).await.unwrap();
    let seen = proxy.take_seen();
    assert_eq!(seen.throttled, 6, "{seen:?}");
    assert_eq!(seen.retries, 6, "every throttled call is tried again: {seen:?}");
    assert_eq!(seen.forwarded, 6, "{seen:?}");
    assert_eq!(seen.by_operation.get("PutItem"), Some(&8), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_except_on_writes_that_must_land_at_most_once() {
    let Some((stores, proxy)) = store_behind_proxy(FaultPlan::FirstAttempts(Fault::ServerError)).await else { return };
    // Reads and plain puts: tried again, and they succeed.
    timed("trace put", stores.traces.put(&trace())).await.unwrap();
    assert!(timed("get", stores.audit.get("none")).await.unwrap().is_none());
    let seen = proxy.take_seen();
    assert_eq!((seen.server_errors, seen.retries, seen.forwarded), (2, 2, 2), "{seen:?}");

    // A conditional put after a 500 may or may not have landed: not retried, `Unavailable`.
    let err = timed("first_seen", stores.deliveries.first_seen("github:d-2")).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    let err = timed("append", stores.audit.append(&record(8))).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    let seen = proxy.take_seen();
    assert_eq!((seen.requests, seen.retries), (2, 0), "at-most-once writes are sent once: {seen:?}");

    // Here the 500 came from the proxy, so nothing landed: once the store is back, it is new.
    proxy.set_plan(FaultPlan::Pass);
    assert!(stores.deliveries.first_seen("github:d-2").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_faults_end_unavailable_within_the_budget() {
    let Some((stores, proxy)) = store_behind_proxy(FaultPlan::Pass).await else { return };
    for fault in [Fault::Throttle, Fault::ServerError, Fault::Overloaded] {
        proxy.set_plan(FaultPlan::Always(fault));
        let e = timed("get", stores.audit.get("x")).await.unwrap_err();
        assert!(e.is_unavailable(), "{fault:?}: {e:?}");
        let e = timed("first_seen", stores.deliveries.first_seen("github:d-3")).await.unwrap_err();
        assert!(e.is_unavailable(), "{fault:?}: {e:?}");
        let e = timed("trace put", stores.traces.put(&trace())).await.unwrap_err();
        assert!(e.is_unavailable(), "{fault:?}: {e:?}");
        let e = timed("ping", stores.health.ping()).await.unwrap_err();
        assert!(e.is_unavailable(), "{fault:?}: {e:?}");
        let seen = proxy.take_seen();
        // Two attempts each, but the conditional put after a 500: one.
        let expected = if fault == Fault::Throttle { 8 } else { 7 };
        assert_eq!(seen.requests, expected, "{fault:?}: {seen:?}");
        assert_eq!(seen.forwarded, 0, "{seen:?}");
    }
    // And back: the store answers again at once.
    proxy.set_plan(FaultPlan::Pass);
    assert!(stores.deliveries.first_seen("github:d-3").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_share_of_faults_never_makes_a_first_delivery_a_duplicate() {
    let Some((stores, proxy)) = store_behind_proxy(FaultPlan::Share { percent: 30, mixed: true }).await else { return };
    let mut tasks = Vec::new();
    for i in 0..60 {
        let deliveries = stores.deliveries.clone();
        tasks.push(tokio::spawn(async move { (i, deliveries.first_seen(&format!("github:share-{i}")).await) }));
    }
    let (mut first, mut unavailable) = (0, 0);
    for t in tasks {
        let (i, res) = t.await.unwrap();
        match res {
            Ok(true) => first += 1,
            Ok(false) => panic!("delivery share-{i} was seen for the first time, yet answered as a duplicate"),
            Err(e) => {
                assert!(e.is_unavailable(), "{e:?}");
                unavailable += 1;
            }
        }
    }
    let seen = proxy.take_seen();
    assert!(seen.throttled > 0 && seen.server_errors > 0, "{seen:?}");
    assert!(first >= 40, "most calls get through a 30% fault rate with one retry: {first} of 60 ({seen:?})");
    // Only a 500 on the (not retried) put, or two faults in a row, ends unavailable.
    assert_eq!(first + unavailable, 60);
}

/// DynamoDB cancels a transaction whose item another transaction is writing: nothing was
/// written, so it is `Unavailable` (try again), never a refusal or "already done".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_conflict_is_unavailable_and_writes_nothing() {
    let Some((stores, proxy)) =
        store_behind_proxy(FaultPlan::Operation("TransactWriteItems", Fault::TransactionConflict)).await
    else {
        return;
    };
    let t = trace();
    let err = timed("finish", stores.deliveries.finish("github:conflict", &t)).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(!stores.deliveries.look_up("github:conflict", &[]).await.unwrap().done);
    assert_eq!(proxy.take_seen().conflicts, 1);
    proxy.set_plan(FaultPlan::Pass);
    assert!(stores.deliveries.finish("github:conflict", &t).await.unwrap());
}
