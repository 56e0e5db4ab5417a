//! One conformance suite for every storage adapter: each case below runs against the embedded
//! (redb) store and against DynamoDB.
//!
//! The DynamoDB half needs a DynamoDB-compatible server at `AWS_ENDPOINT_URL` (`.ci/run` starts
//! moto's server for it). Without one it skips with a message, unless `VALINE_REQUIRE_DYNAMODB=1`
//! (set by `.ci/run`), where a missing server fails the run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use valine_domain::audit::{AuditRecord, AuditResult};
use valine_domain::clock::{now_millis, now_secs};
use valine_domain::trace::{Step, StepStatus, Trace};
use valine_store::dynamo::{DynamoStore, TableNames, create_tables};
use valine_store::embedded::EmbeddedStore;
use valine_store::*;

fn embedded_stores() -> (Stores, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("nested/valine.redb")).unwrap();
    (Stores::from_adapter(Arc::new(store), "embedded"), dir)
}

async fn dynamo_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let sdk = valine_store::dynamo::sdk_loader()
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "conformance"))
        .endpoint_url(endpoint)
        .load()
        .await;
    aws_sdk_dynamodb::Client::new(&sdk)
}

/// The DynamoDB server's URL, or `None` (with a message) when this machine has none.
fn dynamo_endpoint() -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(e) if !e.is_empty() => Some(e),
        _ => {
            assert!(
                std::env::var("VALINE_REQUIRE_DYNAMODB").as_deref() != Ok("1"),
                "VALINE_REQUIRE_DYNAMODB=1 but AWS_ENDPOINT_URL is not set: the DynamoDB half must run"
            );
            eprintln!(
                "skipping the DynamoDB half: set AWS_ENDPOINT_URL to a DynamoDB-compatible server \
                 (for example `moto_server -p 5000` and AWS_ENDPOINT_URL=http://127.0.0.1:5000), or run .ci/run"
            );
            None
        }
    }
}

async fn dynamo_stores() -> Option<Stores> {
    let client = dynamo_client(&dynamo_endpoint()?).await;
    let (client, names) = dynamo_tables(client).await;
    Some(Stores::from_adapter(Arc::new(DynamoStore::from_client(client, names)), "dynamodb"))
}

/// Fresh tables for one test.
async fn dynamo_tables(client: aws_sdk_dynamodb::Client) -> (aws_sdk_dynamodb::Client, TableNames) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let names = TableNames {
        audit: format!("conf-audit-{id}"),
        runs: format!("conf-runs-{id}"),
        state: format!("conf-state-{id}"),
    };
    create_tables(&client, &names).await.expect("create tables on the DynamoDB server");
    (client, names)
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let (stores, _dir) = super::embedded_stores();
                    super::cases::$case(stores).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(stores) = super::dynamo_stores().await else { return };
                    super::cases::$case(stores).await;
                }
            )*
        }
    };
}

suite!(
    audit_round_trip_with_unicode_and_large_metadata,
    audit_is_append_only,
    audit_by_user_is_newest_first_and_limited,
    audit_by_user_limit_holds_across_query_pages,
    traces_by_user_newest_first_limited_and_replaced,
    traces_expire,
    alert_claim_holds_for_its_window,
    alert_claim_has_one_winner_under_concurrency,
    alert_release_only_by_its_holder,
    deliveries_are_first_seen_once,
    deliveries_can_be_forgotten,
    deliveries_are_done_once_with_their_trace,
    a_delivery_is_done_with_its_incident_write_or_not_at_all,
    runs_keep_the_newest_update,
    runs_recent_per_workflow,
    correlations_round_trip_and_expire,
    confirmations_are_taken_once_by_their_owner_and_expire,
    job_tickets_are_taken_once_and_expire,
    health_ping_answers,
    incidents_round_trip_by_id_and_list_newest_first,
    incident_writes_only_over_the_version_they_read,
    incident_writes_from_many_writers_all_land_once,
    alert_claims_do_not_disturb_incidents,
    subscriptions_are_kept_per_channel_and_repository,
    subscription_cache_sees_its_own_changes_at_once,
    outbox_entries_come_and_go_with_their_incident_writes,
    an_outbox_card_has_one_sender_and_is_marked_sent_with_its_message,
    sightings_count_each_run_attempt_once_per_signature,
    flakes_are_kept_once_per_run_newest_first,
    known_issues_merge_list_and_forget,
    a_run_is_retried_once_whoever_asks,
    an_environment_is_locked_once_until_unlocked_or_expired,
);

fn flake(run_id: u64, signature: Option<&str>, at: u64) -> Flake {
    Flake {
        signature: signature.map(str::to_string),
        at,
        repository: "acme/widget".into(),
        workflow: "CI".into(),
        job: Some("test — ünïcode".into()),
        branch: "main".into(),
        run_id,
        run_number: run_id % 1000,
        attempt: 2,
    }
}

fn sighting(signature: &str, run_id: u64, attempt: u64, at: u64) -> Sighting {
    Sighting {
        signature: signature.to_string(),
        at,
        repository: "acme/widget".into(),
        workflow: "CI — ünïcode".into(),
        branch: format!("feature/{run_id}"),
        run_id,
        run_number: run_id % 1000,
        attempt,
    }
}

fn subscription(channel_id: u64, repo: &str, events: &str) -> Subscription {
    Subscription {
        retry: false,
        channel_id,
        guild_id: Some(7),
        repo: repo.to_string(),
        workflows: "ci,!nightly — ünïcode".to_string(),
        branches: "main,release/*".to_string(),
        events: events.to_string(),
        mention_role_id: Some(42),
        created_by: 80351110224678912,
        created_at: now_secs(),
    }
}

/// A freshly opened incident of `branch`, as the model makes it.
fn opened_incident(branch: &str, run_number: u64, now: u64) -> valine_domain::incident::Incident {
    use valine_domain::incident::*;
    let obs = Observation {
        workflow_file: Default::default(),
        key: IncidentKey::workflow(9, "acme/widget", "CI", branch),
        outcome: Outcome::Failure,
        run: RunRef {
            order: Order::new(run_number, 1),
            run_number,
            conclusion: "failure".into(),
            trace_id: "t".into(),
            ..RunRef::default()
        },
    };
    decide(None, &obs, now, Policy::default()).next.expect("a failure opens an incident")
}

fn record(user: &str, ts: u64, result: AuditResult) -> AuditRecord {
    let mut r = AuditRecord::new("trace-1", 0, "/relay-send", result);
    r.user_id = user.to_string();
    r.timestamp = ts;
    r
}

fn trace(user: &str, started_at_ms: u64, command: &str) -> Trace {
    Trace {
        trace_id: uuid::Uuid::new_v4().to_string(),
        user_id: user.to_string(),
        command: command.to_string(),
        started_at_ms,
        duration_ms: 12,
        steps: vec![Step {
            name: "verify".into(),
            started_ms: 0,
            duration_ms: 1,
            status: StepStatus::Ok,
            detail: None,
        }],
        error: None,
        links: vec![],
        correlation_id: None,
    }
}

fn run(run_id: u64, workflow_id: u64, updated_at: u64, status: &str, conclusion: Option<&str>) -> RunRecord {
    RunRecord {
        run_id,
        repository: "acme/widget".into(),
        workflow_id,
        workflow_name: "CI".into(),
        title: "CI run".into(),
        workflow_path: ".github/workflows/ci.yml".into(),
        head_branch: "main".into(),
        head_repository: None,
        head_sha: "3f1c9a7e0d2b4c6a8e9f0a1b2c3d4e5f60718293".into(),
        status: status.into(),
        conclusion: conclusion.map(str::to_string),
        html_url: format!("https://github.com/acme/widget/actions/runs/{run_id}"),
        run_number: run_id,
        event: "push".into(),
        actor: Some("octocat".into()),
        created_at: updated_at - 10,
        updated_at,
        run_started_at: Some(updated_at - 5),
    }
}

mod cases {
    use super::*;

    /// The fingerprint ledger: each signature's runs, once per run and attempt (a replay, or two
    /// containers at once, count once), newest first, separate per signature.
    /// The flake ledger: one record per run (a replay changes nothing), newest run first.
    pub(super) async fn flakes_are_kept_once_per_run_newest_first(s: Stores) {
        let now = now_secs();
        assert_eq!(s.signatures.flakes().await.unwrap(), vec![]);
        s.signatures.flake(&flake(1001, Some("s0a1b2c3d4e"), now - 100)).await.unwrap();
        s.signatures.flake(&flake(1003, None, now - 10)).await.unwrap();
        // a replay of the first
        s.signatures.flake(&flake(1001, Some("s0a1b2c3d4e"), now - 50)).await.unwrap();
        let all = s.signatures.flakes().await.unwrap();
        assert_eq!(all, vec![flake(1003, None, now - 10), flake(1001, Some("s0a1b2c3d4e"), now - 50)]);
    }

    /// Known issues: a link and a transient mark merge; the list is in signature order; forgetting
    /// says whether there was something to forget.
    pub(super) async fn known_issues_merge_list_and_forget(s: Stores) {
        let now = now_secs();
        let known = |sig: &str, issue: Option<&str>, transient: bool, by: u64| KnownIssue {
            signature: sig.into(),
            issue: issue.map(str::to_string),
            note: issue.map(|_| "flaky DNS — ünïcode".to_string()),
            transient,
            by,
            at: now,
        };
        assert_eq!(s.signatures.known("s0a1b2c3d4e").await.unwrap(), None);
        let kept = s.signatures.know(&known("s0a1b2c3d4e", Some("#42"), false, 1)).await.unwrap();
        assert_eq!(kept, known("s0a1b2c3d4e", Some("#42"), false, 1));
        let kept = s.signatures.know(&known("s0a1b2c3d4e", None, true, 2)).await.unwrap();
        let merged = KnownIssue { transient: true, by: 2, ..known("s0a1b2c3d4e", Some("#42"), false, 1) };
        assert_eq!(kept, merged);
        assert_eq!(s.signatures.known("s0a1b2c3d4e").await.unwrap(), Some(merged.clone()));
        s.signatures.know(&known("s00000000aa", None, true, 3)).await.unwrap();
        let sigs: Vec<String> = s.signatures.known_issues().await.unwrap().into_iter().map(|k| k.signature).collect();
        assert_eq!(sigs, ["s00000000aa", "s0a1b2c3d4e"]);
        assert!(s.signatures.forget_known("s0a1b2c3d4e").await.unwrap());
        assert!(!s.signatures.forget_known("s0a1b2c3d4e").await.unwrap());
        assert_eq!(s.signatures.known("s0a1b2c3d4e").await.unwrap(), None);
        assert_eq!(s.signatures.known_issues().await.unwrap().len(), 1);
    }

    /// A run's retry is written once: two containers asking at once get one `true`; the retry is
    /// read back by repository (any case) and run.
    pub(super) async fn a_run_is_retried_once_whoever_asks(s: Stores) {
        let retry = Retry {
            repository: "Acme/Widget".into(),
            run_id: 4242,
            run_number: 7,
            workflow: "CI".into(),
            branch: "main".into(),
            signature: Some("s0a1b2c3d4e".into()),
            job: Some("test".into()),
            at: now_secs(),
        };
        assert_eq!(s.signatures.retry_of("acme/widget", 4242).await.unwrap(), None);
        let (a, b) = tokio::join!(s.signatures.claim_retry(&retry), s.signatures.claim_retry(&retry));
        assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|w| **w).count(), 1, "exactly one claim wins");
        assert!(!s.signatures.claim_retry(&Retry { at: retry.at + 5, ..retry.clone() }).await.unwrap());
        assert_eq!(s.signatures.retry_of("acme/widget", 4242).await.unwrap(), Some(retry.clone()));
        assert_eq!(s.signatures.retry_of("acme/widget", 4243).await.unwrap(), None);
    }

    /// One lock per environment (any case): a second is refused with the first, `unlock` answers
    /// what it removed, and an expired lock is no lock.
    pub(super) async fn an_environment_is_locked_once_until_unlocked_or_expired(s: Stores) {
        let now = now_secs();
        let lock = |by: u64, until: Option<u64>| Lock {
            environment: "Production".into(),
            by,
            reason: "release freeze — ünïcode".into(),
            at: now,
            until,
        };
        assert_eq!(s.locks.get_lock("production").await.unwrap(), None);
        let (first, second) = (lock(1, Some(now + 3600)), lock(2, None));
        let (a, b) = tokio::join!(s.locks.lock(&first), s.locks.lock(&second));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!([&a, &b].iter().filter(|r| r.is_none()).count(), 1, "one of two at once wins: {a:?} {b:?}");
        let held = s.locks.get_lock("PRODUCTION").await.unwrap().unwrap();
        assert_eq!(a.or(b), Some(held.clone()), "the loser is told the winner's lock");
        assert_eq!(s.locks.unlock("production").await.unwrap(), Some(held));
        assert_eq!(s.locks.unlock("production").await.unwrap(), None);
        // an expired lock neither holds nor stops a new one
        assert_eq!(s.locks.lock(&lock(3, Some(now - 1))).await.unwrap(), None);
        assert_eq!(s.locks.get_lock("production").await.unwrap(), None);
        assert_eq!(s.locks.lock(&lock(4, None)).await.unwrap(), None);
        assert_eq!(s.locks.get_lock("production").await.unwrap().map(|l| l.by), Some(4));
    }

    pub(super) async fn sightings_count_each_run_attempt_once_per_signature(s: Stores) {
        let now = now_secs();
        let first = s.signatures.sight(&sighting("s0a1b2c3d4e", 101, 1, now - 300)).await.unwrap();
        assert_eq!(first, vec![sighting("s0a1b2c3d4e", 101, 1, now - 300)]);
        // another signature is another ledger
        let other = s.signatures.sight(&sighting("s99999999ff", 102, 1, now - 200)).await.unwrap();
        assert_eq!(other.len(), 1);
        // the same run attempt again (a replay): still one
        let again = s.signatures.sight(&sighting("s0a1b2c3d4e", 101, 1, now - 250)).await.unwrap();
        assert_eq!(again.len(), 1, "a replay counts once: {again:?}");
        // a re-run attempt and another run count; two containers at once still count once each
        let (retry, next) = (sighting("s0a1b2c3d4e", 101, 2, now - 100), sighting("s0a1b2c3d4e", 103, 1, now - 50));
        let (a, b) = tokio::join!(s.signatures.sight(&retry), s.signatures.sight(&next));
        assert!(a.unwrap().len() >= 2);
        assert!(b.unwrap().len() >= 2);
        let all = s.signatures.sight(&sighting("s0a1b2c3d4e", 103, 1, now - 50)).await.unwrap();
        let order: Vec<(u64, u64)> = all.iter().map(|x| (x.run_id, x.attempt)).collect();
        assert_eq!(order, vec![(103, 1), (101, 2), (101, 1)], "newest first");
        assert_eq!(all.last().map(|x| x.workflow.as_str()), Some("CI — ünïcode"));
    }

    pub(super) async fn outbox_entries_come_and_go_with_their_incident_writes(s: Stores) {
        let now = now_secs();
        let mut a = opened_incident("main", 1, now);
        let b = opened_incident("release/1.x", 1, now);
        // What the card must show is written with the incident, in the same write.
        a.display.change(now - 10);
        let t = trace("github", now * 1000, "webhook:workflow_run");
        assert_eq!(s.incidents.write_incident(&a, Some("d-1"), Some(&t)).await.unwrap(), IncidentWrite::Written);
        assert_eq!(s.incidents.put_incident(&b).await.unwrap(), IncidentWrite::Written);
        let pending = s.outbox.pending_cards(10).await.unwrap();
        assert_eq!(
            pending,
            vec![OutboxEntry { id: a.id.clone(), since: now - 10, not_before_ms: 0, channel_id: a.key.channel_id }]
        );
        assert!(s.deliveries.look_up("d-1", &[]).await.unwrap().done, "the delivery was recorded with it");
        assert_eq!(s.traces.get(&t.trace_id).await.unwrap().map(|x| x.trace_id), Some(t.trace_id.clone()));
        // A failed write writes no entry either.
        let mut stale = b.clone();
        stale.display.change(now);
        assert!(matches!(s.incidents.put_incident(&stale).await.unwrap(), IncidentWrite::Conflict(_)));
        assert_eq!(s.outbox.pending_cards(10).await.unwrap().len(), 1);
        // Settled: out of the outbox.
        let mut sent = a.next_version(now + 1);
        sent.display.settle(&valine_domain::incident::outbox::Sent { shown: Some(1), ..Default::default() }, 0);
        assert_eq!(s.incidents.put_incident(&sent).await.unwrap(), IncidentWrite::Written);
        assert!(s.outbox.pending_cards(10).await.unwrap().is_empty());
    }

    pub(super) async fn an_outbox_card_has_one_sender_and_is_marked_sent_with_its_message(s: Stores) {
        use valine_domain::incident::MessageRef;
        use valine_domain::incident::outbox::Sent;
        let now = now_secs();
        let mut a = opened_incident("main", 1, now);
        a.display.change(now);
        assert_eq!(s.incidents.put_incident(&a).await.unwrap(), IncidentWrite::Written);
        // Two containers claim the card from the same version: one wins, the other sends nothing.
        let claims: Vec<_> = ["one", "two", "three"]
            .into_iter()
            .map(|by| {
                let mut claim = a.next_version(now);
                claim.display.claim(by, now * 1000);
                let incidents = s.incidents.clone();
                tokio::spawn(async move { (by, incidents.put_incident(&claim).await.unwrap()) })
            })
            .collect();
        let mut winners = Vec::new();
        for c in claims {
            let (by, written) = c.await.unwrap();
            if written == IncidentWrite::Written {
                winners.push(by);
            }
        }
        assert_eq!(winners.len(), 1, "one sender: {winners:?}");
        let held = s.incidents.get_incident(&a.id).await.unwrap().unwrap();
        assert!(held.display.held_by(winners[0], now * 1000) && !held.display.due(now * 1000));
        assert_eq!(s.outbox.pending_cards(10).await.unwrap().len(), 1, "claimed, still unsent");
        // Marked sent with the message Discord returned.
        let message = MessageRef { channel_id: 9, message_id: 1300000000000000777, posted_at: now, guild_id: Some(5) };
        let mut done = held.next_version(now + 1);
        done.file_sent(
            held.streak,
            &Sent { posted: Some(message), shown: Some(held.display.want), ..Default::default() },
            now * 1000,
        );
        assert_eq!(s.incidents.put_incident(&done).await.unwrap(), IncidentWrite::Written);
        let stored = s.incidents.get_incident(&a.id).await.unwrap().unwrap();
        assert_eq!(stored.message, Some(message));
        assert!(!stored.display.pending() && stored.display.lease.is_none());
        assert!(s.outbox.pending_cards(10).await.unwrap().is_empty());
    }

    pub(super) async fn audit_round_trip_with_unicode_and_large_metadata(s: Stores) {
        let mut r = record("80351110224678912", now_secs(), AuditResult::Posted);
        r.target_channel = Some("1184576487578214464".into());
        r.target = Some("FRONTEND_BASE_URL".into());
        r.message_fingerprint = Some("…abcd".into());
        r.message_digest = Some("ab".repeat(32));
        let mut metadata = BTreeMap::new();
        metadata.insert("username".to_string(), "Zoë 🚀 ä名前".to_string());
        metadata.insert("reason".to_string(), "x".repeat(100_000));
        r.metadata = metadata;
        s.audit.append(&r).await.unwrap();
        assert_eq!(s.audit.get(&r.audit_id).await.unwrap(), Some(r));
        assert_eq!(s.audit.get("no-such-id").await.unwrap(), None);
    }

    pub(super) async fn audit_is_append_only(s: Stores) {
        let r = record("1", now_secs(), AuditResult::Pending);
        s.audit.append(&r).await.unwrap();
        let mut other = r.clone();
        other.result = AuditResult::Posted;
        assert_eq!(s.audit.append(&other).await, Err(StoreError::AlreadyExists));
        assert_eq!(s.audit.get(&r.audit_id).await.unwrap().unwrap().result, AuditResult::Pending);
    }

    /// `by_user` once it holds `n` records: the user index may be eventually consistent.
    async fn by_user_eventually(s: &Stores, user: &str, n: usize) -> Vec<AuditRecord> {
        let mut got = Vec::new();
        for _ in 0..20 {
            got = s.audit.by_user(user, n).await.unwrap();
            if got.len() == n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        got
    }

    pub(super) async fn audit_by_user_is_newest_first_and_limited(s: Stores) {
        let base = now_secs() - 1000;
        let mut ids = Vec::new();
        for i in 0..5 {
            let r = record("42", base + i * 10, AuditResult::Posted);
            ids.push(r.audit_id.clone());
            s.audit.append(&r).await.unwrap();
        }
        s.audit.append(&record("43", base + 500, AuditResult::Blocked)).await.unwrap();
        let got = by_user_eventually(&s, "42", 3).await;
        let got_ids: Vec<_> = got.iter().map(|r| r.audit_id.clone()).collect();
        assert_eq!(got_ids, vec![ids[4].clone(), ids[3].clone(), ids[2].clone()]);
        assert_eq!(s.audit.by_user("42", 100).await.unwrap().len(), 5);
        assert!(s.audit.by_user("nobody", 10).await.unwrap().is_empty());
        assert!(s.audit.by_user("42", 0).await.unwrap().is_empty());
    }

    /// Big records fill DynamoDB's 1 MB query pages: the limit is still met, in order.
    pub(super) async fn audit_by_user_limit_holds_across_query_pages(s: Stores) {
        let base = now_secs() - 1000;
        let mut ids = Vec::new();
        for i in 0..24 {
            let mut r = record("pager", base + i, AuditResult::Posted);
            r.metadata.insert("reason".to_string(), format!("{i:02}").repeat(45_000));
            ids.push(r.audit_id.clone());
            s.audit.append(&r).await.unwrap();
        }
        ids.reverse();
        let got = by_user_eventually(&s, "pager", 20).await;
        let got_ids: Vec<_> = got.iter().map(|r| r.audit_id.clone()).collect();
        assert_eq!(got_ids, ids[..20].to_vec());
        assert_eq!(s.audit.by_user("pager", usize::MAX).await.unwrap().len(), 24);
    }

    pub(super) async fn traces_by_user_newest_first_limited_and_replaced(s: Stores) {
        let now = now_millis();
        let old = trace("7", now - 3000, "/status");
        let mid = trace("7", now - 2000, "/diagnose");
        let mut new = trace("7", now - 1000, "/relay-send");
        let other = trace("8", now, "/status");
        for t in [&old, &mid, &new, &other] {
            s.traces.put(t).await.unwrap();
        }
        let got = s.traces.recent_for_user("7", 2).await.unwrap();
        assert_eq!(got.iter().map(|t| t.command.as_str()).collect::<Vec<_>>(), ["/relay-send", "/diagnose"]);
        // a deferred job re-puts the same trace with more steps
        new.steps.push(Step {
            name: "job".into(),
            started_ms: 5,
            duration_ms: 900,
            status: StepStatus::Ok,
            detail: Some("ünï ✓".into()),
        });
        new.error = Some("e".repeat(10_000));
        s.traces.put(&new).await.unwrap();
        let got = s.traces.recent_for_user("7", 10).await.unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], new);
        assert_eq!(s.traces.get(&new.trace_id).await.unwrap(), Some(new));
        assert_eq!(s.traces.get("missing").await.unwrap(), None);
        assert!(s.traces.recent_for_user("9", 5).await.unwrap().is_empty());
    }

    pub(super) async fn traces_expire(s: Stores) {
        let stale = trace("5", now_millis() - (TRACE_TTL_SECS + 60) * 1000, "/status");
        let fresh = trace("5", now_millis(), "/status");
        s.traces.put(&stale).await.unwrap();
        s.traces.put(&fresh).await.unwrap();
        let got = s.traces.recent_for_user("5", 10).await.unwrap();
        assert_eq!(got, vec![fresh]);
        assert_eq!(s.traces.get(&stale.trace_id).await.unwrap(), None);
    }

    pub(super) async fn alert_claim_holds_for_its_window(s: Stores) {
        let now = now_secs();
        let key = "acme/widget|CI|main|workflow_failed";
        let first = s.alerts.claim(key, now, 300).await.unwrap().expect("first claim wins");
        assert_eq!(first.until, now + 300);
        assert_eq!(s.alerts.claim(key, now + 299, 300).await.unwrap(), None);
        assert!(s.alerts.claim("acme/widget|CI|dev|workflow_failed", now, 300).await.unwrap().is_some());
        let later = s.alerts.claim(key, now + 300, 300).await.unwrap().expect("window over");
        assert_ne!(later.token, first.token);
    }

    pub(super) async fn alert_claim_has_one_winner_under_concurrency(s: Stores) {
        let now = now_secs();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let alerts = s.alerts.clone();
            tasks.push(tokio::spawn(async move { alerts.claim("k|w|b|kind", now, 300).await }));
        }
        let mut wins = 0;
        for t in tasks {
            if t.await.unwrap().unwrap().is_some() {
                wins += 1;
            }
        }
        assert_eq!(wins, 1);
    }

    pub(super) async fn alert_release_only_by_its_holder(s: Stores) {
        let now = now_secs();
        let claim = s.alerts.claim("rel", now, 300).await.unwrap().unwrap();
        let impostor = Claim { token: "not-the-holder".into(), ..claim.clone() };
        s.alerts.release(&impostor).await.unwrap();
        assert_eq!(s.alerts.claim("rel", now, 300).await.unwrap(), None, "a stranger's release freed the key");
        s.alerts.release(&claim).await.unwrap();
        assert!(s.alerts.claim("rel", now, 300).await.unwrap().is_some(), "the holder's release did not free the key");
        // releasing a claim that is gone is not an error
        s.alerts.release(&claim).await.unwrap();
    }

    pub(super) async fn deliveries_are_first_seen_once(s: Stores) {
        let id = uuid::Uuid::new_v4().to_string();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let d = s.deliveries.clone();
            let id = id.clone();
            tasks.push(tokio::spawn(async move { d.first_seen(&id).await }));
        }
        let mut firsts = 0;
        for t in tasks {
            if t.await.unwrap().unwrap() {
                firsts += 1;
            }
        }
        assert_eq!(firsts, 1);
        assert!(!s.deliveries.first_seen(&id).await.unwrap());
        assert!(s.deliveries.first_seen("another-id").await.unwrap());
    }

    pub(super) async fn deliveries_can_be_forgotten(s: Stores) {
        assert!(s.deliveries.first_seen("d-1").await.unwrap());
        s.deliveries.forget("d-1").await.unwrap();
        assert!(s.deliveries.first_seen("d-1").await.unwrap());
        s.deliveries.forget("never-seen").await.unwrap();
    }

    /// A GitHub delivery is recorded done once, with its trace, by whichever of several
    /// attempts finishes first; a record `first_seen` wrote counts as done.
    pub(super) async fn deliveries_are_done_once_with_their_trace(s: Stores) {
        let id = format!("github:{}", uuid::Uuid::new_v4());
        assert_eq!(s.deliveries.look_up(&id, &[]).await.unwrap(), Lookup::default());
        let mut tasks = Vec::new();
        for i in 0..8u64 {
            let s = s.clone();
            let id = id.clone();
            tasks.push(tokio::spawn(async move {
                let t = trace("github", now_secs() * 1000 + i, &format!("webhook:attempt-{i}"));
                (s.deliveries.finish(&id, &t).await.unwrap(), t)
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            let (done, t) = task.await.unwrap();
            if done {
                winners.push(t);
            } else {
                assert_eq!(s.traces.get(&t.trace_id).await.unwrap(), None, "a losing attempt writes nothing");
            }
        }
        assert_eq!(winners.len(), 1, "one attempt records the delivery done");
        assert_eq!(s.traces.get(&winners[0].trace_id).await.unwrap().as_ref(), Some(&winners[0]));
        assert!(s.deliveries.look_up(&id, &[]).await.unwrap().done);
        // an interaction-style first-seen record counts as done
        assert!(s.deliveries.first_seen("github:old-style").await.unwrap());
        assert!(s.deliveries.look_up("github:old-style", &[]).await.unwrap().done);
        assert!(!s.deliveries.finish("github:old-style", &trace("github", now_secs() * 1000, "x")).await.unwrap());
    }

    /// The last write of a delivery carries its done record: both land, or neither.
    pub(super) async fn a_delivery_is_done_with_its_incident_write_or_not_at_all(s: Stores) {
        let now = now_secs();
        let a = opened_incident("main", 1, now);
        let b = opened_incident("release/2.x", 1, now);
        let d1 = format!("github:{}", uuid::Uuid::new_v4());
        let both = [a.id.clone(), b.id.clone()];
        assert_eq!(s.deliveries.look_up(&d1, &both).await.unwrap(), Lookup::default());
        assert_eq!(s.incidents.put_incident_with(&a, Some(&d1)).await.unwrap(), IncidentWrite::Written);
        let found = s.deliveries.look_up(&d1, &both).await.unwrap();
        assert_eq!(found, Lookup { done: true, incidents: vec![a.clone()] });
        // the same delivery again, over the right version: refused, nothing written
        let mut v2 = a.next_version(now + 1);
        v2.failures = 2;
        assert_eq!(s.incidents.put_incident_with(&v2, Some(&d1)).await.unwrap(), IncidentWrite::AlreadyDone);
        assert_eq!(s.incidents.get_incident(&a.id).await.unwrap().as_ref(), Some(&a));
        // another delivery, over a stale version: a conflict, and that delivery stays not done
        let d2 = format!("github:{}", uuid::Uuid::new_v4());
        let stale = opened_incident("main", 9, now);
        assert_eq!(
            s.incidents.put_incident_with(&stale, Some(&d2)).await.unwrap(),
            IncidentWrite::Conflict(Some(Box::new(a.clone())))
        );
        assert!(!s.deliveries.look_up(&d2, &[]).await.unwrap().done);
        assert_eq!(s.incidents.put_incident_with(&v2, Some(&d2)).await.unwrap(), IncidentWrite::Written);
        let found = s.deliveries.look_up(&d2, &[a.id.clone(), "no-such-incident".into()]).await.unwrap();
        assert_eq!(found, Lookup { done: true, incidents: vec![v2] });
    }

    pub(super) async fn runs_keep_the_newest_update(s: Stores) {
        let t = now_secs();
        assert!(s.runs.upsert_run(&run(1, 10, t, "in_progress", None)).await.unwrap());
        assert!(s.runs.upsert_run(&run(1, 10, t + 60, "completed", Some("failure"))).await.unwrap());
        // a late, older delivery does not roll the run back
        assert!(!s.runs.upsert_run(&run(1, 10, t + 30, "in_progress", None)).await.unwrap());
        // within one second, completed beats in_progress
        assert!(!s.runs.upsert_run(&run(1, 10, t + 60, "in_progress", None)).await.unwrap());
        let got = s.runs.get_run(1).await.unwrap().unwrap();
        assert_eq!(got.status, "completed");
        assert_eq!(got.conclusion.as_deref(), Some("failure"));
        // the same update again is harmless
        assert!(s.runs.upsert_run(&got).await.unwrap());
        assert_eq!(s.runs.get_run(999).await.unwrap(), None);
    }

    pub(super) async fn runs_recent_per_workflow(s: Stores) {
        let t = now_secs();
        for i in 0..5u64 {
            s.runs.upsert_run(&run(100 + i, 10, t + i, "completed", Some("success"))).await.unwrap();
        }
        s.runs.upsert_run(&run(200, 11, t + 100, "completed", Some("failure"))).await.unwrap();
        // run 100 is updated last, so it moves to the front
        s.runs.upsert_run(&run(100, 10, t + 50, "completed", Some("failure"))).await.unwrap();
        let key = workflow_key("acme/widget", 10);
        let mut got = Vec::new();
        for _ in 0..20 {
            got = s.runs.recent_runs(&key, 3).await.unwrap();
            if got.first().is_some_and(|r| r.run_id == 100) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(got.iter().map(|r| r.run_id).collect::<Vec<_>>(), [100, 104, 103]);
        let all = s.runs.recent_runs(&key, 50).await.unwrap();
        assert_eq!(all.len(), 5, "an updated run is listed once");
        assert_eq!(s.runs.recent_runs(&workflow_key("acme/widget", 11), 10).await.unwrap().len(), 1);
    }

    pub(super) async fn correlations_round_trip_and_expire(s: Stores) {
        let now = now_secs();
        let c = DiagnoseCorrelation {
            correlation_id: "diag-1".into(),
            application_id: 1184576487578214464,
            interaction_token: "aW50ZXJhY3Rpb24".repeat(20),
            user_id: "42".into(),
            trace_id: "t".into(),
            created_at: now,
            expires_at: now + 900,
            frontend_url: Some("https://example.com/ünï".into()),
            api_base: None,
            kind: valine_store::Followed::Deploy,
            git_ref: Some("release/1.x".into()),
        };
        s.runs.put_correlation(&c).await.unwrap();
        assert_eq!(s.runs.get_correlation("diag-1").await.unwrap(), Some(c.clone()));
        let expired = DiagnoseCorrelation { correlation_id: "diag-2".into(), expires_at: now - 1, ..c };
        s.runs.put_correlation(&expired).await.unwrap();
        assert_eq!(s.runs.get_correlation("diag-2").await.unwrap(), None);
        assert_eq!(s.runs.get_correlation("diag-3").await.unwrap(), None);
    }

    pub(super) async fn confirmations_are_taken_once_by_their_owner_and_expire(s: Stores) {
        let now = now_secs();
        let p = PendingConfirmation {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: 42,
            command: "/relay-send".into(),
            held: Held::Relay {
                channel_id: Some(1184576487578214464),
                user_id: None,
                // As long as the longest relay's, sealed: 2000 characters of up to 4 bytes, and a tag.
                text: Encrypted { nonce: "ab".repeat(24), ciphertext: "cd".repeat(8016) },
                ephemeral: false,
            },
            trace_id: "t".into(),
            expires_at: now + 300,
        };
        s.confirmations.put_confirmation(&p).await.unwrap();
        // someone else's click neither takes nor removes it
        assert_eq!(s.confirmations.take_confirmation(&p.id, 7).await.unwrap(), Taken::NotYours);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let c = s.confirmations.clone();
            let id = p.id.clone();
            tasks.push(tokio::spawn(async move { c.take_confirmation(&id, 42).await }));
        }
        let mut taken = Vec::new();
        for t in tasks {
            match t.await.unwrap().unwrap() {
                Taken::Yours(x) => taken.push(x),
                Taken::Missing => {}
                Taken::NotYours => panic!("the owner was told it is not theirs"),
            }
        }
        assert_eq!(taken, vec![p.clone()]);
        assert_eq!(s.confirmations.take_confirmation(&p.id, 7).await.unwrap(), Taken::Missing);
        let stale = PendingConfirmation { id: "stale".into(), expires_at: now - 1, ..p.clone() };
        s.confirmations.put_confirmation(&stale).await.unwrap();
        // Expired, whatever the TTL sweep has done: gone for everyone, not "someone else's".
        assert_eq!(s.confirmations.take_confirmation("stale", 7).await.unwrap(), Taken::Missing);
        assert_eq!(s.confirmations.take_confirmation("stale", 42).await.unwrap(), Taken::Missing);
        assert_eq!(s.confirmations.take_confirmation("never", 42).await.unwrap(), Taken::Missing);
        // Every kind of held value comes back as it went in.
        for held in [
            Held::Deploy {
                git_ref: "main".into(),
                api_base: Some("https://api.example.com".into()),
                environment: Some("production".into()),
            },
            Held::RepoVariable {
                value: Encrypted { nonce: "01".repeat(24), ciphertext: "02".repeat(40) },
                digest: "e3".repeat(32),
            },
            Held::RepoSecret {
                key_id: "3380204578043523366".into(),
                encrypted_value: "c2VhbGVk".into(),
                digest: "e3".repeat(32),
            },
        ] {
            let q = PendingConfirmation { id: uuid::Uuid::new_v4().to_string(), held, ..p.clone() };
            s.confirmations.put_confirmation(&q).await.unwrap();
            assert_eq!(s.confirmations.take_confirmation(&q.id, 42).await.unwrap(), Taken::Yours(q));
        }
    }

    pub(super) async fn job_tickets_are_taken_once_and_expire(s: Stores) {
        let now = now_secs();
        let t = JobTicket { job_id: uuid::Uuid::new_v4().to_string(), token: "t".repeat(200), expires_at: now + 900 };
        s.confirmations.put_job_ticket(&t).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let c = s.confirmations.clone();
            let id = t.job_id.clone();
            tasks.push(tokio::spawn(async move { c.take_job_ticket(&id).await }));
        }
        let mut taken = Vec::new();
        for task in tasks {
            if let Some(x) = task.await.unwrap().unwrap() {
                taken.push(x);
            }
        }
        assert_eq!(taken, vec![t.clone()], "a job delivered many times at once runs once");
        assert_eq!(s.confirmations.take_job_ticket(&t.job_id).await.unwrap(), None);
        let stale = JobTicket { job_id: "stale-job".into(), expires_at: now - 1, ..t };
        s.confirmations.put_job_ticket(&stale).await.unwrap();
        assert_eq!(s.confirmations.take_job_ticket("stale-job").await.unwrap(), None);
        assert_eq!(s.confirmations.take_job_ticket("never").await.unwrap(), None);
    }

    pub(super) async fn health_ping_answers(s: Stores) {
        s.health.ping().await.unwrap();
    }

    pub(super) async fn incidents_round_trip_by_id_and_list_newest_first(s: Stores) {
        let now = now_secs();
        let a = opened_incident("main", 1, now);
        let b = opened_incident("release/1.x — ünïcode", 7, now + 5);
        assert_eq!(s.incidents.get_incident(&a.id).await.unwrap(), None);
        assert_eq!(s.incidents.put_incident(&a).await.unwrap(), IncidentWrite::Written);
        assert_eq!(s.incidents.put_incident(&b).await.unwrap(), IncidentWrite::Written);
        assert_eq!(s.incidents.get_incident(&a.id).await.unwrap().as_ref(), Some(&a));
        assert_eq!(s.incidents.get_incident(&b.id).await.unwrap().as_ref(), Some(&b));
        let listed = s.incidents.list_incidents(10).await.unwrap();
        assert_eq!(listed.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), [b.id.as_str(), a.id.as_str()]);
        assert_eq!(s.incidents.list_incidents(1).await.unwrap().len(), 1);
    }

    pub(super) async fn incident_writes_only_over_the_version_they_read(s: Stores) {
        let now = now_secs();
        let v1 = opened_incident("main", 1, now);
        assert_eq!(s.incidents.put_incident(&v1).await.unwrap(), IncidentWrite::Written);
        // a second "first" write loses, and learns what is stored
        let other = opened_incident("main", 2, now);
        assert_eq!(
            s.incidents.put_incident(&other).await.unwrap(),
            IncidentWrite::Conflict(Some(Box::new(v1.clone())))
        );
        let mut v2 = v1.next_version(now + 1);
        v2.failures = 2;
        let mut stale = v1.next_version(now + 1);
        stale.failures = 99;
        assert_eq!(s.incidents.put_incident(&v2).await.unwrap(), IncidentWrite::Written);
        // read at v1 as well: refused
        assert!(
            matches!(s.incidents.put_incident(&stale).await.unwrap(), IncidentWrite::Conflict(Some(c)) if c.failures == 2)
        );
        // a version from the future is refused too
        let mut ahead = v2.next_version(now + 2);
        ahead.version += 3;
        assert!(matches!(s.incidents.put_incident(&ahead).await.unwrap(), IncidentWrite::Conflict(_)));
        assert_eq!(s.incidents.get_incident(&v1.id).await.unwrap(), Some(v2));
    }

    pub(super) async fn incident_writes_from_many_writers_all_land_once(s: Stores) {
        let now = now_secs();
        let first = opened_incident("main", 1, now);
        s.incidents.put_incident(&first).await.unwrap();
        let id = first.id.clone();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = s.clone();
            let id = id.clone();
            tasks.push(tokio::spawn(async move {
                // read, change, write over what was read; on a conflict, again with what is stored
                let mut current = s.incidents.get_incident(&id).await.unwrap().unwrap();
                loop {
                    let mut next = current.next_version(now);
                    next.failures += 1;
                    match s.incidents.put_incident(&next).await.unwrap() {
                        IncidentWrite::Written => break,
                        IncidentWrite::Conflict(stored) => current = *stored.unwrap(),
                        IncidentWrite::AlreadyDone => unreachable!("no delivery named"),
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let end = s.incidents.get_incident(&id).await.unwrap().unwrap();
        assert_eq!((end.version, end.failures), (9, 9), "every increment landed exactly once");
    }

    /// Alert dedup claims live under other keys than incidents: they are neither read as
    /// incidents nor in the way of one.
    pub(super) async fn alert_claims_do_not_disturb_incidents(s: Stores) {
        let now = now_secs();
        s.alerts.claim("acme/widget|CI|main|workflow_failed", now, 300).await.unwrap();
        assert!(s.incidents.list_incidents(10).await.unwrap().is_empty());
        let inc = opened_incident("main", 1, now);
        assert_eq!(s.incidents.put_incident(&inc).await.unwrap(), IncidentWrite::Written);
        assert_eq!(s.incidents.list_incidents(10).await.unwrap(), vec![inc]);
    }
    pub(super) async fn subscriptions_are_kept_per_channel_and_repository(s: Stores) {
        // a fresh view of the store, past any cache
        let raw = || valine_store::CachedRoutes::new(s.routes.clone(), Duration::ZERO);
        assert!(s.routes.list_subscriptions().await.unwrap().is_empty());
        let a = subscription(2, "acme/web", "failures");
        let b = subscription(1, "acme/*", "all-runs");
        let c = subscription(2, "Acme/API", "deployments");
        for sub in [&a, &b, &c] {
            s.routes.put_subscription(sub).await.unwrap();
        }
        let listed = raw().list_subscriptions().await.unwrap();
        assert_eq!(listed, vec![b.clone(), c.clone(), a.clone()]);
        // the same channel and repository (case aside) replaces
        let mut a2 = subscription(2, "ACME/web", "all-runs");
        a2.mention_role_id = None;
        s.routes.put_subscription(&a2).await.unwrap();
        let listed = raw().list_subscriptions().await.unwrap();
        assert_eq!(listed.len(), 3);
        assert_eq!(listed[2], a2);
        // deleting: by channel and lowercase pattern; twice is false
        assert!(s.routes.delete_subscription(2, "acme/web").await.unwrap());
        assert!(!s.routes.delete_subscription(2, "acme/web").await.unwrap());
        assert!(!s.routes.delete_subscription(3, "acme/*").await.unwrap());
        assert_eq!(raw().list_subscriptions().await.unwrap(), vec![b, c]);
    }

    pub(super) async fn subscription_cache_sees_its_own_changes_at_once(s: Stores) {
        // two containers over one store, each with its own cache
        let here = valine_store::CachedRoutes::new(s.routes.clone(), Duration::from_secs(60));
        let there = valine_store::CachedRoutes::new(s.routes.clone(), Duration::from_millis(300));
        assert!(here.list_subscriptions().await.unwrap().is_empty());
        assert!(there.list_subscriptions().await.unwrap().is_empty());
        let sub = subscription(5, "acme/web", "failures");
        here.put_subscription(&sub).await.unwrap();
        assert_eq!(here.list_subscriptions().await.unwrap(), vec![sub.clone()], "this container sees it at once");
        assert!(
            there.list_subscriptions().await.unwrap().is_empty(),
            "another container within its cache time does not"
        );
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(there.list_subscriptions().await.unwrap(), vec![sub.clone()], "and does once it expires");
        there.delete_subscription(5, "acme/web").await.unwrap();
        assert!(there.list_subscriptions().await.unwrap().is_empty());
        assert_eq!(here.list_subscriptions().await.unwrap(), vec![sub], "cached for up to its time");
    }
}

/// With the store unreachable (a closed port), every DynamoDB port method answers a typed
/// `Unavailable` error, and none of them hangs.
#[tokio::test]
async fn dynamodb_unreachable_is_a_typed_error_for_every_method() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    every_method_is_unavailable(closed).await;
}

/// A server that takes the connection and never answers: the SDK's timeouts end every call
/// with `Unavailable`, at the 1.6 s operation timeout (docs/PERFORMANCE.md), never a hang.
#[tokio::test]
async fn dynamodb_silent_is_a_typed_error_for_every_method() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    every_method_is_unavailable(port).await;
    silent.abort();
}

/// The AWS settings the handlers use (timeouts, retries), for a server at `127.0.0.1:port`.
async fn production_sdk(port: u16) -> aws_config::SdkConfig {
    let production = valine_store::dynamo::sdk_config().await;
    valine_store::dynamo::sdk_loader()
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "conformance"))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .timeout_config(production.timeout_config().cloned().unwrap())
        .retry_config(production.retry_config().cloned().unwrap())
        .load()
        .await
}

/// Calls every port method of a DynamoDB store at `127.0.0.1:port`, all at once, with the
/// production timeouts and retries: each must end in `Unavailable`.
async fn every_method_is_unavailable(port: u16) {
    let sdk = production_sdk(port).await;
    let names = TableNames { audit: "a".into(), runs: "r".into(), state: "s".into() };
    let s = Stores::from_adapter(Arc::new(DynamoStore::new(&sdk, names)), "dynamodb");
    let now = now_secs();
    let claim = Claim { key: "k".into(), token: "t".into(), until: now };
    let corr = DiagnoseCorrelation {
        correlation_id: "c".into(),
        application_id: 1,
        interaction_token: "t".into(),
        user_id: "1".into(),
        trace_id: "t".into(),
        created_at: now,
        expires_at: now + 10,
        frontend_url: None,
        api_base: None,
        kind: Default::default(),
        git_ref: None,
    };
    let pending = PendingConfirmation {
        id: "p".into(),
        user_id: 1,
        command: "/deploy-client".into(),
        held: Held::Deploy { git_ref: "main".into(), api_base: None, environment: None },
        trace_id: "t".into(),
        expires_at: now + 10,
    };
    let t = trace("1", now_millis(), "/status");
    let r = record("1", now, AuditResult::Posted);
    let rr = run(1, 1, now, "queued", None);
    let sub = subscription(1, "a/b", "");

    // A generous ceiling that only catches a hang; the real figure is in docs/PERFORMANCE.md.
    async fn check<T: std::fmt::Debug>(name: &str, fut: impl std::future::Future<Output = StoreResult<T>>) {
        let res = tokio::time::timeout(Duration::from_secs(20), fut).await;
        match res {
            Err(_) => panic!("{name} hung"),
            Ok(Err(StoreError::Unavailable(_))) => {}
            Ok(other) => panic!("{name}: expected Unavailable, got {other:?}"),
        }
    }
    let inc = opened_incident("main", 1, now);
    let seen = sighting("s1", 1, 1, now);
    let flaked = flake(1, None, now);
    let started = std::time::Instant::now();
    tokio::join!(
        check("audit.append", s.audit.append(&r)),
        check("audit.get", s.audit.get("x")),
        check("audit.by_user", s.audit.by_user("1", 5)),
        check("traces.put", s.traces.put(&t)),
        check("traces.recent_for_user", s.traces.recent_for_user("1", 5)),
        check("traces.get", s.traces.get("x")),
        check("alerts.claim", s.alerts.claim("k", now, 300)),
        check("alerts.release", s.alerts.release(&claim)),
        check("deliveries.first_seen", s.deliveries.first_seen("d")),
        check("deliveries.forget", s.deliveries.forget("d")),
        check("deliveries.look_up", s.deliveries.look_up("d", &[])),
        check("deliveries.finish", s.deliveries.finish("d", &t)),
        check("runs.upsert_run", s.runs.upsert_run(&rr)),
        check("runs.get_run", s.runs.get_run(1)),
        check("runs.recent_runs", s.runs.recent_runs("k", 5)),
        check("runs.put_correlation", s.runs.put_correlation(&corr)),
        check("runs.get_correlation", s.runs.get_correlation("c")),
        check("confirmations.put", s.confirmations.put_confirmation(&pending)),
        check("confirmations.take", s.confirmations.take_confirmation("p", 1)),
        check("health.ping", s.health.ping()),
        check("incidents.get", s.incidents.get_incident("i")),
        check("incidents.put", s.incidents.put_incident(&inc)),
        check("incidents.list", s.incidents.list_incidents(5)),
        check("routes.put", s.routes.put_subscription(&sub)),
        check("routes.delete", s.routes.delete_subscription(1, "a/b")),
        check("routes.list", s.routes.list_subscriptions()),
        check("signatures.sight", s.signatures.sight(&seen)),
        check("signatures.flake", s.signatures.flake(&flaked)),
        check("signatures.flakes", s.signatures.flakes()),
    );
    // every call ran at once: together they take about one call's timeout
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
}

/// A second process (or a second open in this one) gets a clear "in use" error, not a hang.
#[test]
fn embedded_store_in_use_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("valine.redb");
    let _first = EmbeddedStore::open(&path).unwrap();
    let err = EmbeddedStore::open(&path).unwrap_err();
    assert!(err.is_unavailable());
    assert!(err.to_string().contains("in use"), "{err}");
}

/// A TCP proxy in front of the DynamoDB server that, when armed, lets the next request through and
/// drops its answer along with the connection: the write is applied, the caller never hears so.
async fn lossy_proxy(upstream: String) -> (u16, Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let armed = Arc::new(AtomicBool::new(false));
    let drop_next = armed.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let drop_next = drop_next.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else { return };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let requests = tokio::spawn(async move { tokio::io::copy(&mut client_read, &mut server_write).await });
                let mut buf = vec![0; 64 * 1024];
                loop {
                    let n = match server_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if drop_next.swap(false, Ordering::SeqCst) || client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                requests.abort();
            });
        }
    });
    (port, armed)
}

/// A write that DynamoDB applied but whose answer was lost must come back `Unavailable` ("not
/// known"), never as the caller having lost a race against itself, which would drop a delivery,
/// hold an alert window nobody used, refuse a relay or lose a job ticket.
#[tokio::test]
async fn dynamodb_write_whose_answer_was_lost_is_unavailable_not_a_lost_race() {
    use std::sync::atomic::Ordering;
    let Some(endpoint) = dynamo_endpoint() else { return };
    let upstream = endpoint.trim_start_matches("http://").trim_end_matches('/').to_string();
    let (port, armed) = lossy_proxy(upstream).await;
    let sdk = production_sdk(port).await;
    let (client, names) = dynamo_tables(aws_sdk_dynamodb::Client::new(&sdk)).await;
    let s = Stores::from_adapter(Arc::new(DynamoStore::from_client(client, names)), "dynamodb");
    let now = now_secs();

    armed.store(true, Ordering::SeqCst);
    let seen = s.deliveries.first_seen("lost-answer").await;
    assert!(matches!(seen, Err(StoreError::Unavailable(_))), "first_seen: {seen:?}");
    assert!(!s.deliveries.first_seen("lost-answer").await.unwrap(), "the first write did land");

    // A delivery's done record, with its trace: a lost answer is "not known", and a second
    // attempt then finds it done (never a delivery taken as done that is not).
    let t = trace("github", now * 1000, "webhook:workflow_run");
    armed.store(true, Ordering::SeqCst);
    let finished = s.deliveries.finish("github:lost-done", &t).await;
    assert!(matches!(finished, Err(StoreError::Unavailable(_))), "finish: {finished:?}");
    assert!(s.deliveries.look_up("github:lost-done", &[]).await.unwrap().done, "the first write did land");
    assert!(!s.deliveries.finish("github:lost-done", &t).await.unwrap());

    armed.store(true, Ordering::SeqCst);
    let claimed = s.alerts.claim("lost-claim", now, 300).await;
    assert!(matches!(claimed, Err(StoreError::Unavailable(_))), "claim: {claimed:?}");

    let r = record("lost-audit", now, AuditResult::Pending);
    armed.store(true, Ordering::SeqCst);
    let appended = s.audit.append(&r).await;
    assert!(matches!(appended, Err(StoreError::Unavailable(_))), "append: {appended:?}");
    assert!(s.audit.get(&r.audit_id).await.unwrap().is_some(), "the first write did land");

    // A take (a delete that answers with what it deleted) whose answer was lost.
    let ticket = JobTicket { job_id: "lost-ticket".into(), token: "t".into(), expires_at: now + 900 };
    s.confirmations.put_job_ticket(&ticket).await.unwrap();
    armed.store(true, Ordering::SeqCst);
    let taken = s.confirmations.take_job_ticket("lost-ticket").await;
    assert!(matches!(taken, Err(StoreError::Unavailable(_))), "take_job_ticket: {taken:?}");
}

/// The embedded store deletes what has expired, as DynamoDB's TTL does, so `DATA_DIR` does not
/// grow for ever; what is alive stays.
#[tokio::test]
async fn embedded_store_sweeps_expired_items_and_keeps_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("valine.redb")).unwrap();
    let now = now_secs();
    let pending = |id: &str, expires_at: u64| PendingConfirmation {
        id: id.into(),
        user_id: 1,
        command: "/set-frontend".into(),
        held: Held::RepoVariable {
            value: Encrypted { nonce: "01".repeat(24), ciphertext: "02".repeat(40) },
            digest: "e3".repeat(32),
        },
        trace_id: "t".into(),
        expires_at,
    };
    store.put_confirmation(&pending("gone", now - 1)).await.unwrap();
    store.put_confirmation(&pending("kept", now + 300)).await.unwrap();
    assert!(store.claim("old-window", now - 600, 300).await.unwrap().is_some());
    assert!(store.first_seen("delivery").await.unwrap());
    assert_eq!(store.sweep_expired().unwrap(), 2, "the expired confirmation and the closed window");
    assert_eq!(store.sweep_expired().unwrap(), 0);
    assert!(matches!(store.take_confirmation("kept", 1).await.unwrap(), Taken::Yours(_)));
    assert!(!store.first_seen("delivery").await.unwrap(), "a live delivery id stays");
}

/// Creating the tables twice is harmless, and the state table ends with TTL on `expires_at`
/// either way, so that `valinectl tables create` can also repair tables made by hand.
#[tokio::test]
async fn dynamodb_tables_can_be_created_twice_and_get_their_ttl() {
    let Some(endpoint) = dynamo_endpoint() else { return };
    let (client, names) = dynamo_tables(dynamo_client(&endpoint).await).await;
    create_tables(&client, &names).await.expect("a second create is harmless");
    let ttl = client.describe_time_to_live().table_name(&names.state).send().await.unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(ttl.time_to_live_status(), Some(&aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled));
}
