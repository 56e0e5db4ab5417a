//! Incidents end to end in process: store calls per delivery counted, the failing job and log
//! tail (in time, and late when GitHub is slow), escalation by the tick (also as a scheduled
//! Lambda event), and the buttons (a responder, a stranger, after a resolve, twice at once), with
//! Discord and GitHub played by wiremock servers that assert the exact requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};
use valine_domain::audit::{AuditRecord, AuditResult};
use valine_domain::authz::Caller;
use valine_domain::incident::Incident;
use valine_domain::logging::Capture;
use valine_domain::metrics::Metrics;
use valine_domain::trace::Trace;
use valine_github::{App, AppParts};
use valine_service::http::HttpRequest;
use valine_service::incidents::PressOutcome;
use valine_service::testing::{config_from, fail_on_unexpected, github_signature, signed_delivery};
use valine_store::embedded::EmbeddedStore;
use valine_store::*;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "incident-secret";
const CHANNEL: u64 = 1184576487578214464;
const MESSAGE: &str = "1400000000000000001";
const RESPONDER_ROLE: u64 = 555;
const ADMIN: u64 = 42;

// ---------------------------------------------------------------- a store that counts its calls

/// The embedded store, counting every port call.
struct Counting {
    inner: EmbeddedStore,
    calls: AtomicUsize,
}

impl Counting {
    fn hit(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl AuditLog for Counting {
    async fn append(&self, r: &AuditRecord) -> StoreResult<()> {
        self.hit();
        self.inner.append(r).await
    }
    async fn get(&self, id: &str) -> StoreResult<Option<AuditRecord>> {
        self.hit();
        AuditLog::get(&self.inner, id).await
    }
    async fn by_user(&self, u: &str, l: usize) -> StoreResult<Vec<AuditRecord>> {
        self.hit();
        self.inner.by_user(u, l).await
    }
}

#[async_trait]
impl TraceRepo for Counting {
    async fn put(&self, t: &Trace) -> StoreResult<()> {
        self.hit();
        self.inner.put(t).await
    }
    async fn recent_for_user(&self, u: &str, l: usize) -> StoreResult<Vec<Trace>> {
        self.hit();
        self.inner.recent_for_user(u, l).await
    }
    async fn get(&self, id: &str) -> StoreResult<Option<Trace>> {
        self.hit();
        TraceRepo::get(&self.inner, id).await
    }
}

#[async_trait]
impl AlertLedger for Counting {
    async fn claim(&self, k: &str, n: u64, w: u64) -> StoreResult<Option<Claim>> {
        self.hit();
        self.inner.claim(k, n, w).await
    }
    async fn release(&self, c: &Claim) -> StoreResult<()> {
        self.hit();
        self.inner.release(c).await
    }
}

#[async_trait]
impl DeliveryLedger for Counting {
    async fn first_seen(&self, id: &str) -> StoreResult<bool> {
        self.hit();
        self.inner.first_seen(id).await
    }
    async fn forget(&self, id: &str) -> StoreResult<()> {
        self.hit();
        self.inner.forget(id).await
    }
    async fn look_up(&self, id: &str, incidents: &[String]) -> StoreResult<Lookup> {
        self.hit();
        self.inner.look_up(id, incidents).await
    }
    async fn finish(&self, id: &str, trace: &Trace) -> StoreResult<bool> {
        self.hit();
        self.inner.finish(id, trace).await
    }
}

#[async_trait]
impl RunRepo for Counting {
    async fn upsert_run(&self, r: &RunRecord) -> StoreResult<bool> {
        self.hit();
        self.inner.upsert_run(r).await
    }
    async fn get_run(&self, id: u64) -> StoreResult<Option<RunRecord>> {
        self.hit();
        self.inner.get_run(id).await
    }
    async fn recent_runs(&self, k: &str, l: usize) -> StoreResult<Vec<RunRecord>> {
        self.hit();
        self.inner.recent_runs(k, l).await
    }
    async fn put_correlation(&self, c: &DiagnoseCorrelation) -> StoreResult<()> {
        self.hit();
        self.inner.put_correlation(c).await
    }
    async fn get_correlation(&self, id: &str) -> StoreResult<Option<DiagnoseCorrelation>> {
        self.hit();
        self.inner.get_correlation(id).await
    }
}

#[async_trait]
impl ConfirmationRepo for Counting {
    async fn put_confirmation(&self, p: &PendingConfirmation) -> StoreResult<()> {
        self.hit();
        self.inner.put_confirmation(p).await
    }
    async fn take_confirmation(&self, id: &str, u: u64) -> StoreResult<Taken> {
        self.hit();
        self.inner.take_confirmation(id, u).await
    }
    async fn put_job_ticket(&self, t: &JobTicket) -> StoreResult<()> {
        self.hit();
        self.inner.put_job_ticket(t).await
    }
    async fn take_job_ticket(&self, id: &str) -> StoreResult<Option<JobTicket>> {
        self.hit();
        self.inner.take_job_ticket(id).await
    }
}

#[async_trait]
impl IncidentRepo for Counting {
    async fn get_incident(&self, id: &str) -> StoreResult<Option<Incident>> {
        self.hit();
        self.inner.get_incident(id).await
    }
    async fn write_incident(
        &self,
        i: &Incident,
        done: Option<&str>,
        trace: Option<&valine_domain::trace::Trace>,
    ) -> StoreResult<IncidentWrite> {
        self.hit();
        self.inner.write_incident(i, done, trace).await
    }
    async fn list_incidents(&self, l: usize) -> StoreResult<Vec<Incident>> {
        self.hit();
        self.inner.list_incidents(l).await
    }
}

#[async_trait]
impl OutboxRepo for Counting {
    async fn pending_cards(&self, limit: usize) -> StoreResult<Vec<OutboxEntry>> {
        self.hit();
        self.inner.pending_cards(limit).await
    }
}

#[async_trait]
impl RouteRepo for Counting {
    async fn put_subscription(&self, sub: &Subscription) -> StoreResult<()> {
        self.hit();
        self.inner.put_subscription(sub).await
    }
    async fn delete_subscription(&self, channel_id: u64, repo_key: &str) -> StoreResult<bool> {
        self.hit();
        self.inner.delete_subscription(channel_id, repo_key).await
    }
    async fn list_subscriptions(&self) -> StoreResult<Vec<Subscription>> {
        self.hit();
        self.inner.list_subscriptions().await
    }
}

#[async_trait]
impl SignatureLedger for Counting {
    async fn sight(&self, sighting: &Sighting) -> StoreResult<Vec<Sighting>> {
        self.hit();
        self.inner.sight(sighting).await
    }
    async fn flake(&self, flake: &Flake) -> StoreResult<()> {
        self.hit();
        self.inner.flake(flake).await
    }
    async fn flakes(&self) -> StoreResult<Vec<Flake>> {
        self.hit();
        self.inner.flakes().await
    }
    async fn know(&self, known: &KnownIssue) -> StoreResult<KnownIssue> {
        self.hit();
        self.inner.know(known).await
    }
    async fn known(&self, signature: &str) -> StoreResult<Option<KnownIssue>> {
        self.hit();
        self.inner.known(signature).await
    }
    async fn known_issues(&self) -> StoreResult<Vec<KnownIssue>> {
        self.hit();
        self.inner.known_issues().await
    }
    async fn forget_known(&self, signature: &str) -> StoreResult<bool> {
        self.hit();
        self.inner.forget_known(signature).await
    }
    async fn claim_retry(&self, retry: &Retry) -> StoreResult<bool> {
        self.hit();
        self.inner.claim_retry(retry).await
    }
    async fn retry_of(&self, repository: &str, run_id: u64) -> StoreResult<Option<Retry>> {
        self.hit();
        self.inner.retry_of(repository, run_id).await
    }
}

#[async_trait]
impl LockRepo for Counting {
    async fn lock(&self, lock: &Lock) -> StoreResult<Option<Lock>> {
        self.hit();
        self.inner.lock(lock).await
    }
    async fn get_lock(&self, environment: &str) -> StoreResult<Option<Lock>> {
        self.hit();
        self.inner.get_lock(environment).await
    }
    async fn unlock(&self, environment: &str) -> StoreResult<Option<Lock>> {
        self.hit();
        self.inner.unlock(environment).await
    }
}

#[async_trait]
impl StoreHealth for Counting {
    async fn ping(&self) -> StoreResult<()> {
        self.hit();
        self.inner.ping().await
    }
}

// ---------------------------------------------------------------- harness

struct Harness {
    app: App,
    config: valine_domain::config::Config,
    discord: MockServer,
    github: MockServer,
    counting: Arc<Counting>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new(overrides: &[(&str, &str)]) -> Self {
        let discord = MockServer::start().await;
        let github = MockServer::start().await;
        fail_on_unexpected(&discord).await;
        fail_on_unexpected(&github).await;
        Mock::given(method("POST"))
            .and(path(format!("/api/v10/channels/{CHANNEL}/messages")))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"id": MESSAGE, "channel_id": CHANNEL.to_string(), "guild_id": "7"})),
            )
            .mount(&discord)
            .await;
        Mock::given(method("PATCH"))
            .and(path(format!("/api/v10/channels/{CHANNEL}/messages/{MESSAGE}")))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"id": MESSAGE, "channel_id": CHANNEL.to_string()})),
            )
            .mount(&discord)
            .await;
        let dir = tempfile::tempdir().unwrap();
        let counting = Arc::new(Counting {
            inner: EmbeddedStore::open(&dir.path().join("v.redb")).unwrap(),
            calls: AtomicUsize::new(0),
        });
        let config = config_from(
            &[
                ("GITHUB_WEBHOOK_SECRET", SECRET.to_string()),
                ("DISCORD_BOT_TOKEN", "bot-token".to_string()),
                ("DISCORD_API_BASE", discord.uri()),
                ("GITHUB_TOKEN", "ghp_test".to_string()),
                ("GITHUB_API_BASE", github.uri()),
                ("ENABLE_ALERTS", "true".to_string()),
                ("ALERT_CHANNEL_ID", CHANNEL.to_string()),
                ("ALERT_MENTION_ROLE_ID", "4242".to_string()),
                ("ADMIN_USER_IDS", ADMIN.to_string()),
                ("RESPONDER_ROLE_IDS", RESPONDER_ROLE.to_string()),
            ],
            overrides,
        );
        let app = container(&config, &counting);
        Self { app, config, discord, github, counting, _dir: dir }
    }

    /// A second container: the same store, nothing cached.
    fn another_container(&self) -> App {
        container(&self.config, &self.counting)
    }

    async fn deliver(&self, delivery: &str, payload: &Value) -> (StatusCode, Value) {
        deliver_to(&self.app, delivery, payload).await
    }
}

fn container(config: &valine_domain::config::Config, counting: &Arc<Counting>) -> App {
    let metrics = Metrics::new("github-handler", Arc::new(Capture::default()));
    let github_client: Option<Arc<dyn valine_clients::github_api::GitHub>> =
        valine_clients::github_api::from_config(config, Duration::from_secs(5)).unwrap();
    App::new(AppParts {
        discord: valine_clients::discord_api::from_config(config, Duration::from_secs(5)),
        config: config.clone(),
        stores: Stores::from_adapter(counting.clone(), "counting"),
        metrics,
    })
    .unwrap()
    .with_github(github_client)
}

async fn deliver_to(app: &App, delivery: &str, payload: &Value) -> (StatusCode, Value) {
    let req = signed_delivery(SECRET, "workflow_run", delivery, payload.to_string().into_bytes());
    let res = app.handle(req).await;
    (res.status, serde_json::from_str(&res.body).unwrap())
}

impl Harness {
    fn calls(&self) -> usize {
        self.counting.calls.load(Ordering::SeqCst)
    }

    async fn discord_requests(&self, verb: &str, p: &str) -> Vec<Value> {
        self.discord
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.method.as_str() == verb && r.url.path() == p)
            .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
            .collect()
    }

    async fn posts(&self) -> Vec<Value> {
        self.discord_requests("POST", &format!("/api/v10/channels/{CHANNEL}/messages")).await
    }

    async fn edits(&self) -> Vec<Value> {
        self.discord_requests("PATCH", &format!("/api/v10/channels/{CHANNEL}/messages/{MESSAGE}")).await
    }

    async fn github_posts(&self, p: &str) -> usize {
        self.github
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.method.as_str() == "POST" && r.url.path() == p)
            .count()
    }
}

/// Run `number` (id 3000 + number) of CI on main.
fn run(number: u64, conclusion: &str) -> Value {
    let id = 3000 + number;
    json!({
        "action": "completed",
        "workflow_run": {
            "id": id, "name": "CI", "display_title": "t", "head_branch": "main",
            "head_sha": "3f1c9a7e0d2b4c6a8e9f0a1b2c3d4e5f60718293", "path": ".github/workflows/ci.yml",
            "run_number": number, "run_attempt": 1, "event": "push", "status": "completed", "conclusion": conclusion,
            "workflow_id": 7, "html_url": format!("https://github.com/acme/widget/actions/runs/{id}"),
            "created_at": "2026-11-22T14:00:00Z", "updated_at": "2026-11-22T14:05:00Z",
            "actor": {"login": "octocat"}, "triggering_actor": {"login": "octocat"}, "pull_requests": []
        },
        "workflow": {"id": 7, "name": "CI"},
        "repository": {"full_name": "acme/widget"},
        "sender": {"login": "octocat"}
    })
}

/// GitHub's answers for the jobs and log of run `3000 + number`, after `delay`.
async fn github_jobs(server: &MockServer, number: u64, delay: Duration) {
    let id = 3000 + number;
    Mock::given(method("GET"))
        .and(path(format!("/repos/acme/widget/actions/runs/{id}/attempts/1/jobs")))
        .and(header("authorization", "Bearer ghp_test"))
        .respond_with(ResponseTemplate::new(200).set_delay(delay).set_body_json(json!({"total_count": 1, "jobs": [
            {"id": 77, "name": "test", "status": "completed", "conclusion": "failure",
             "html_url": format!("https://github.com/acme/widget/actions/runs/{id}/job/77"),
             "steps": [{"name": "checkout", "conclusion": "success", "number": 1}, {"name": "cargo test", "conclusion": "failure", "number": 2}]}
        ]})))
        .expect(1)
        .mount(server)
        .await;
    let blob = format!("{}/blob/77.txt", server.uri());
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/actions/jobs/77/logs"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", blob.as_str()))
        .mount(server)
        .await;
    let mut log: String = (1..=30).map(|i| format!("2026-11-22T14:04:{:02}.0000000Z line {i}\n", i % 60)).collect();
    log.push_str("2026-11-22T14:04:59.0000000Z error: token ghp_0123456789abcdefghijklmnopqrstuvwxyzAB rejected\n");
    Mock::given(method("GET"))
        .and(path("/blob/77.txt"))
        .respond_with(ResponseTemplate::new(200).set_body_string(log))
        .mount(server)
        .await;
}

fn field(message: &Value, name: &str) -> Option<String> {
    message["embeds"][0]["fields"]
        .as_array()?
        .iter()
        .find(|f| f["name"] == name)
        .map(|f| f["value"].as_str().unwrap_or("").to_string())
}

fn deadline() -> valine_service::deadline::Deadline {
    valine_service::deadline::Deadline::after(Duration::from_secs(8))
}

fn incident_id(body: &Value) -> String {
    format!("{}-1", body["incident"].as_str().unwrap())
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn store_calls_per_workflow_run_delivery_are_at_most_three() {
    let h = Harness::new(&[("GITHUB_TOKEN", "")]).await;
    // A container reads the subscriptions once, and then at most every 60 s: not per delivery.
    let before = h.calls();
    h.deliver("d-0", &run(1, "success")).await;
    assert_eq!(h.calls() - before, 4, "first: subscriptions, delivery + incident read, incident write + done, trace");
    let expected = [
        // delivery + incident read (none stored: remembered), incident write + done, trace
        (2, "failure", 3),
        // the incident is cached now: delivery read, incident write + done, trace
        (3, "failure", 3),
        // older than what the incident saw: delivery read, done + trace
        (2, "success", 2),
        (4, "success", 3),
        (5, "cancelled", 2),
        (6, "failure", 3),
    ];
    for (i, (number, conclusion, calls)) in expected.iter().enumerate() {
        let before = h.calls();
        let (status, body) = h.deliver(&format!("d-{}", i + 1), &run(*number, conclusion)).await;
        assert!(status.is_success(), "{body}");
        let used = h.calls() - before;
        assert_eq!(used, *calls, "run #{number} {conclusion} ({}): {used} store calls", body["alert"]);
    }
    // a duplicate delivery costs one
    let before = h.calls();
    let (_, body) = h.deliver("d-1", &run(2, "failure")).await;
    assert_eq!(body["status"], "duplicate");
    assert_eq!(h.calls() - before, 1, "the delivery check only");

    // Another container, nothing cached: the incident is read with the delivery's record.
    let other = h.another_container();
    let before = h.calls();
    let (_, body) = deliver_to(&other, "d-9", &run(7, "failure")).await;
    assert_eq!(body["alert"], "edited", "{body}");
    assert_eq!(h.calls() - before, 4, "subscriptions (once a minute), delivery + incident read, write + done, trace");
    let before = h.calls();
    let (_, body) = deliver_to(&other, "d-10", &run(8, "success")).await;
    assert_eq!(body["alert"], "resolved", "{body}");
    assert_eq!(h.calls() - before, 3, "delivery read, write + done, trace");
}

#[tokio::test]
async fn the_failing_job_step_and_redacted_log_tail_are_in_the_first_post() {
    let h = Harness::new(&[]).await;
    github_jobs(&h.github, 1, Duration::ZERO).await;
    let (_, body) = h.deliver("d-1", &run(1, "failure")).await;
    assert_eq!(body["alert"], "sent", "{body}");
    let posts = h.posts().await;
    let job = field(&posts[0], "Failing job").unwrap();
    assert!(job.contains("test › cargo test") && job.contains("/job/77"), "{job}");
    let tail = field(&posts[0], "Log tail").unwrap();
    assert!(tail.starts_with("```\n") && tail.ends_with("\n```"), "{tail}");
    assert!(tail.contains("line 30") && !tail.contains("line 15\n"), "the last 15 lines: {tail}");
    assert!(!tail.contains("ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"), "redacted: {tail}");
    assert!(tail.chars().count() <= 1000 + 8);
}

#[tokio::test]
async fn when_github_is_slow_the_message_goes_out_without_the_job_and_an_edit_adds_it() {
    let h = Harness::new(&[]).await;
    github_jobs(&h.github, 1, Duration::from_millis(3200)).await;
    let started = std::time::Instant::now();
    let (status, body) = h.deliver("d-1", &run(1, "failure")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(started.elapsed() < Duration::from_secs(9), "inside GitHub's 10 s");
    let posts = h.posts().await;
    assert_eq!(posts.len(), 1);
    assert!(field(&posts[0], "Failing job").is_none(), "posted without waiting for GitHub");
    let edits = h.edits().await;
    assert_eq!(edits.len(), 1, "then edited in");
    assert!(field(&edits[0], "Failing job").unwrap().contains("cargo test"));
    // and the incident remembers it
    let next = h.app.stores.incidents.get_incident(body["incident"].as_str().unwrap()).await.unwrap().unwrap();
    assert!(next.first_failure.unwrap().detail.is_some());
}

#[tokio::test]
async fn the_tick_escalates_an_unacknowledged_incident_once() {
    let h = Harness::new(&[("GITHUB_TOKEN", ""), ("ALERT_ESCALATE_MINUTES", "30")]).await;
    let (_, body) = h.deliver("d-1", &run(1, "failure")).await;
    let now = valine_domain::clock::now_secs();
    assert_eq!(h.app.incidents.tick(now + 10 * 60, deadline()).await.escalated, 0, "not yet");
    let report = h.app.incidents.tick(now + 31 * 60, deadline()).await;
    assert_eq!((report.open, report.escalated), (1, 1), "{report:?}");
    assert_eq!(h.app.incidents.tick(now + 40 * 60, deadline()).await.escalated, 0, "once");
    let posts = h.posts().await;
    assert_eq!(posts.len(), 2);
    assert!(posts[1]["content"].as_str().unwrap().starts_with("<@&4242>"), "{}", posts[1]);
    assert_eq!(posts[1]["allowed_mentions"], json!({"parse": [], "roles": ["4242"]}));
    assert_eq!(posts[1]["message_reference"]["message_id"], MESSAGE);
    // an acknowledged incident is not escalated
    let h = Harness::new(&[("GITHUB_TOKEN", "")]).await;
    let (_, body2) = h.deliver("d-1", &run(1, "failure")).await;
    let admin = Caller { user_id: ADMIN, roles: None };
    assert!(matches!(
        h.app.incidents.acknowledge(&incident_id(&body2), admin, "t", deadline()).await,
        PressOutcome::Done(_)
    ));
    assert_eq!(h.app.incidents.tick(now + 31 * 60, deadline()).await.escalated, 0);
    let _ = body;
}

#[tokio::test]
async fn a_scheduled_event_at_the_github_function_runs_the_tick() {
    let h = Harness::new(&[("GITHUB_TOKEN", "")]).await;
    let event = json!({
        "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-11-22T14:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/valine-tick"], "detail": {}
    });
    // the way lambda_http reads an event that is not an HTTP request
    let request: lambda_http::request::LambdaRequest = serde_json::from_value(event).unwrap();
    let response = valine_github::lambda::handle(&h.app, request.into()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let lambda_http::Body::Text(text) = response.body() else { panic!("a text body") };
    assert!(text.contains("\"tick\":\"done\""), "{text}");
    // anything else that is not HTTP is refused, not taken for a delivery
    let other: lambda_http::request::LambdaRequest = serde_json::from_value(json!({"hello": "world"})).unwrap();
    let response = valine_github::lambda::handle(&h.app, other.into()).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn rerun_by_a_responder_posts_once_and_the_message_shows_who_asked() {
    let h = Harness::new(&[]).await;
    github_jobs(&h.github, 1, Duration::ZERO).await;
    let rerun_path = "/repos/acme/widget/actions/runs/3001/rerun-failed-jobs";
    Mock::given(method("POST"))
        .and(path(rerun_path))
        .and(header("authorization", "Bearer ghp_test"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({})))
        .mount(&h.github)
        .await;
    let (_, body) = h.deliver("d-1", &run(1, "failure")).await;
    let id = incident_id(&body);
    let roles = [RESPONDER_ROLE];
    let responder = Caller { user_id: 900, roles: Some(&roles) };
    // pressed twice at once: one re-run
    let (a, b) = tokio::join!(
        h.app.incidents.rerun(&id, responder, "t-1", deadline()),
        h.app.incidents.rerun(&id, responder, "t-2", deadline())
    );
    let done = [&a, &b].iter().filter(|o| matches!(o, PressOutcome::Done(_))).count();
    assert_eq!(done, 1, "{a:?} {b:?}");
    assert!([&a, &b].iter().any(|o| matches!(o, PressOutcome::Already(_))), "{a:?} {b:?}");
    assert_eq!(h.github_posts(rerun_path).await, 1, "exactly one POST …/rerun-failed-jobs");
    let shown = field(h.edits().await.last().unwrap(), "Re-run").unwrap();
    assert!(shown.contains("<@900>"), "{shown}");
    let audit = h.app.stores.audit.by_user("900", 10).await.unwrap();
    assert_eq!(audit.len(), 2);
    assert!(audit.iter().all(|r| r.command == "incident.rerun" && r.result == AuditResult::Posted), "{audit:?}");

    // a stranger: refused, nothing called, a `blocked` record
    let other_roles = [1];
    let stranger = Caller { user_id: 901, roles: Some(&other_roles) };
    let refused = h.app.incidents.rerun(&id, stranger, "t-3", deadline()).await;
    assert!(matches!(refused, PressOutcome::Refused(_)), "{refused:?}");
    assert!(refused.reply().to_json()["flags"] == json!(64), "ephemeral");
    assert_eq!(h.github_posts(rerun_path).await, 1);
    let audit = h.app.stores.audit.by_user("901", 10).await.unwrap();
    assert_eq!((audit[0].command.as_str(), audit[0].result), ("incident.rerun", AuditResult::Blocked));

    // after a resolve: answers, changes nothing
    h.deliver("d-2", &run(2, "success")).await;
    let admin = Caller { user_id: ADMIN, roles: None };
    let late = h.app.incidents.mute(&id, valine_domain::custom_id::MuteFor::Hours(4), admin, "t-4", deadline()).await;
    assert_eq!(late, PressOutcome::NotOpen);
    let stored = h.app.stores.incidents.get_incident(body["incident"].as_str().unwrap()).await.unwrap().unwrap();
    assert!(stored.mute.is_none() && !stored.open);
    // an id nobody issued
    assert_eq!(h.app.incidents.acknowledge("000000000000-1", admin, "t-5", deadline()).await, PressOutcome::Unknown);
    assert_eq!(h.app.incidents.acknowledge("not an id", admin, "t-6", deadline()).await, PressOutcome::Unknown);
    let audit = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    assert!(audit.iter().all(|r| r.result == AuditResult::Blocked), "{audit:?}");
}

#[tokio::test]
async fn a_rerun_github_refuses_is_failed_and_can_be_pressed_again() {
    let h = Harness::new(&[]).await;
    github_jobs(&h.github, 1, Duration::ZERO).await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/widget/actions/runs/3001/rerun-failed-jobs"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"message": "Resource not accessible by integration"})),
        )
        .mount(&h.github)
        .await;
    let (_, body) = h.deliver("d-1", &run(1, "failure")).await;
    let admin = Caller { user_id: ADMIN, roles: None };
    let first = h.app.incidents.rerun(&incident_id(&body), admin, "t", deadline()).await;
    assert!(matches!(&first, PressOutcome::Failed(why) if why.contains("Resource not accessible")), "{first:?}");
    let again = h.app.incidents.rerun(&incident_id(&body), admin, "t", deadline()).await;
    assert!(matches!(again, PressOutcome::Failed(_)), "tried again, not 'already requested': {again:?}");
    let audit = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    assert!(audit.iter().all(|r| r.result == AuditResult::Failed));
}

#[tokio::test]
async fn open_incidents_and_mutes_are_listed_with_unmute_buttons() {
    let h = Harness::new(&[("GITHUB_TOKEN", "")]).await;
    let (_, body) = h.deliver("d-1", &run(1, "failure")).await;
    let listed = h.app.incidents.list_open().await.unwrap().to_json();
    assert_eq!(listed["flags"], json!(64));
    let text = listed["content"].as_str().unwrap();
    assert!(text.contains("CI on main") && text.contains("https://discord.com/channels/7/"), "{text}");
    assert!(
        h.app.incidents.list_mutes().await.unwrap().to_json()["content"].as_str().unwrap().contains("No active mutes")
    );
    let admin = Caller { user_id: ADMIN, roles: None };
    let id = incident_id(&body);
    h.app.incidents.mute(&id, valine_domain::custom_id::MuteFor::Hours(1), admin, "t", deadline()).await;
    let mutes = h.app.incidents.list_mutes().await.unwrap().to_json();
    let unmute = mutes["components"][0]["components"][0]["custom_id"].as_str().unwrap();
    assert_eq!(unmute, format!("v1:inc:unmute:{id}"));
    assert!(matches!(h.app.incidents.unmute(&id, admin, "t", deadline()).await, PressOutcome::Done(_)));
    let audit = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    let mut commands: Vec<&str> = audit.iter().map(|r| r.command.as_str()).collect();
    commands.sort();
    assert_eq!(commands, ["incident.mute", "incident.unmute"]);
    // the message shows the mute while it lasts
    let edits = h.edits().await;
    assert!(edits.iter().any(|e| field(e, "Muted").is_some_and(|m| m.contains("<@42>"))));
}

/// GitHub's names are text in `/incidents` and `/mutes` too: a workflow named like a masked link
/// cannot end the listing's own link text early, and a branch named `@everyone` reads as no
/// mention.
#[tokio::test]
async fn listings_show_github_names_as_text() {
    let h = Harness::new(&[("GITHUB_TOKEN", ""), ("ALERT_BRANCHES", "*")]).await;
    let mut payload = run(1, "failure");
    let name = "x](https://evil.example) [click";
    payload["workflow_run"]["name"] = json!(name);
    payload["workflow"]["name"] = json!(name);
    payload["workflow_run"]["head_branch"] = json!("@everyone");
    let (_, body) = h.deliver("d-1", &payload).await;
    let listed = h.app.incidents.list_open().await.unwrap().to_json();
    let text = listed["content"].as_str().unwrap();
    assert!(text.contains("click") && text.contains("https://discord.com/channels/7/"), "{text}");
    assert!(!text.contains("x](") && !text.contains("@everyone"), "{text}");
    let admin = Caller { user_id: ADMIN, roles: None };
    h.app
        .incidents
        .mute(&incident_id(&body), valine_domain::custom_id::MuteFor::Hours(1), admin, "t", deadline())
        .await;
    let mutes = h.app.incidents.list_mutes().await.unwrap().to_json();
    let text = mutes["content"].as_str().unwrap();
    assert!(text.contains("click") && !text.contains("x](") && !text.contains("@everyone"), "{text}");
}

// ---------------------------------------------------------------- gap filling

/// GitHub's deliveries of hook 12, as its API lists them.
async fn github_deliveries(server: &MockServer, attempts: Value, times: u64) {
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/hooks/12/deliveries"))
        .respond_with(ResponseTemplate::new(200).set_body_json(attempts))
        .up_to_n_times(times)
        .mount(server)
        .await;
}

fn attempt(id: u64, guid: &str, status_code: u16, redelivery: bool) -> Value {
    let at = valine_domain::clock::rfc3339_millis((valine_domain::clock::now_secs() - 600) * 1000);
    json!({"id": id, "guid": guid, "delivered_at": at, "redelivery": redelivery, "duration": 0.2,
           "status": "", "status_code": status_code, "event": "workflow_run", "action": "completed",
           "installation_id": null, "repository_id": 1})
}

#[tokio::test]
async fn the_tick_redelivers_a_failed_delivery_and_applies_a_run_whose_deliveries_were_lost() {
    let h = Harness::new(&[("GITHUB_REPO", "acme/widget")]).await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/hooks"))
        .and(header("authorization", "Bearer ghp_test"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": 9, "config": {"url": "https://ci.example/hook"}},
            {"id": 12, "config": {"url": "https://abc.execute-api.us-east-1.amazonaws.com/github/webhook"}}
        ])))
        .expect(2)
        .mount(&h.github)
        .await;
    // The first tick sees delivery "lost-1" failed (the function was down) and "ok-1" delivered;
    // the second sees "lost-1" delivered by the redelivery.
    github_deliveries(&h.github, json!([attempt(501, "lost-1", 502, false), attempt(502, "ok-1", 200, false)]), 1)
        .await;
    github_deliveries(
        &h.github,
        json!([
            attempt(503, "lost-1", 200, true),
            attempt(501, "lost-1", 502, false),
            attempt(502, "ok-1", 200, false)
        ]),
        1,
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/widget/hooks/12/deliveries/501/attempts"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({})))
        .expect(1)
        .mount(&h.github)
        .await;
    // Run #12 failed and none of its deliveries arrived; run #11 (older, passed) is not the newest.
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/actions/runs"))
        .and(wiremock::matchers::query_param("status", "completed"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total_count": 2,
            "workflow_runs": [run(12, "failure")["workflow_run"], run(11, "success")["workflow_run"]]
        })))
        .expect(2)
        .mount(&h.github)
        .await;
    github_jobs(&h.github, 12, Duration::ZERO).await;

    let report = h.app.tick().await;
    assert_eq!((report.redelivered, report.repaired), (1, 1), "{report:?}");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let posts = h.posts().await;
    assert_eq!(posts.len(), 1, "the lost failure opened its incident");
    assert!(posts[0].to_string().contains("#12"), "{}", posts[0]);

    // Nothing left to repair: no second redelivery, no second post.
    let report = h.app.tick().await;
    assert_eq!((report.redelivered, report.repaired), (0, 0), "{report:?}");
    assert_eq!(h.posts().await.len(), 1);
    assert_eq!(h.github_posts("/repos/acme/widget/hooks/12/deliveries/501/attempts").await, 1);
}

#[tokio::test]
async fn gap_filling_names_what_it_could_not_do_and_the_tick_goes_on() {
    // Two hooks of two stages deliver to …/github/webhook: which one is ours is not guessed.
    let h = Harness::new(&[("GITHUB_REPO", "acme/widget")]).await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/hooks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": 12, "config": {"url": "https://dev.example/github/webhook"}},
            {"id": 13, "config": {"url": "https://prod.example/github/webhook"}}
        ])))
        .mount(&h.github)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/actions/runs"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"message": "boom"})))
        .mount(&h.github)
        .await;
    let report = h.app.tick().await;
    assert_eq!((report.redelivered, report.repaired), (0, 0));
    assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
    assert!(report.errors[0].contains("GITHUB_HOOK_ID"), "{:?}", report.errors);
    assert!(report.errors[1].contains("list runs"), "{:?}", report.errors);
}

// ---------------------------------------------------------------- Discord's rules

/// Deliveries with the longest names GitHub allows and odd values (no branch, no commit, a
/// `target_url` that is not a URL): every message and edit sent to Discord keeps to its rules,
/// so none is refused and no alert is lost.
#[tokio::test]
async fn odd_deliveries_still_make_messages_discord_accepts() {
    let h = Harness::new(&[("GITHUB_TOKEN", ""), ("ALERT_BRANCHES", "*")]).await;
    let long = "ワークフロー".repeat(50);
    let mut odd = run(1, "failure");
    odd["workflow"]["name"] = json!(long);
    odd["workflow_run"]["name"] = json!(long);
    odd["workflow_run"]["display_title"] = json!("t".repeat(1000));
    odd["workflow_run"]["head_branch"] = json!("b".repeat(255));
    odd["workflow_run"]["head_sha"] = json!("");
    odd["workflow_run"]["html_url"] = json!("not a url");
    odd["workflow_run"]["actor"] = json!({"login": "a".repeat(39)});
    let (status, _) = h.deliver("odd-1", &odd).await;
    assert_eq!(status, StatusCode::OK);
    let mut empty = run(2, "failure");
    empty["workflow_run"]["head_branch"] = json!("");
    empty["workflow_run"]["id"] = json!(99);
    empty["workflow"]["name"] = json!("Nightly");
    empty["workflow_run"]["name"] = json!("Nightly");
    let (status, _) = h.deliver("odd-2", &empty).await;
    assert_eq!(status, StatusCode::OK);
    // A deployment whose target_url is not a URL, in a long-named environment.
    let deployment = json!({
        "action": "created",
        "deployment_status": {"id": 5, "state": "failure", "environment": long, "target_url": "not a url",
            "log_url": "", "description": "d".repeat(500), "creator": {"login": "deployer"},
            "created_at": "2026-11-22T14:00:00Z", "updated_at": "2026-11-22T14:00:00Z"},
        "deployment": {"id": 1, "sha": "", "ref": "", "environment": long, "creator": {"login": "deployer"}},
        "repository": {"full_name": "acme/widget"}
    });
    let body = deployment.to_string().into_bytes();
    let mut headers = HeaderMap::new();
    headers.insert("x-github-event", HeaderValue::from_static("deployment_status"));
    headers.insert("x-github-delivery", HeaderValue::from_static("odd-3"));
    headers.insert("x-hub-signature-256", HeaderValue::from_str(&github_signature(SECRET, &body)).unwrap());
    let res = h.app.handle(HttpRequest::new(Method::POST, "/github/webhook", headers, body)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    // A newer success of the long-named workflow: the edit to resolved and its reply.
    let mut fixed = run(3, "success");
    fixed["workflow"]["name"] = json!(long);
    fixed["workflow_run"]["name"] = json!(long);
    fixed["workflow_run"]["head_branch"] = json!("b".repeat(255));
    Mock::given(method("POST"))
        .and(path(format!("/api/v10/channels/{CHANNEL}/messages")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "5", "channel_id": CHANNEL.to_string()})))
        .mount(&h.discord)
        .await;
    let (status, body) = h.deliver("odd-4", &fixed).await;
    assert_eq!((status, body["alert"].as_str()), (StatusCode::OK, Some("resolved")), "{body}");

    let sent: Vec<Value> = h
        .discord
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect();
    assert!(sent.len() >= 5, "three posts, an edit and a reply: {}", sent.len());
    for body in &sent {
        let v = valine_domain::message::violations(body);
        assert!(v.is_empty(), "{v:?} in {body}");
    }
}

/// A container that once read "no incident" for a key reads it again with its next delivery's
/// record (no call of its own), so an incident another container opened since is edited, not
/// posted a second time and deleted.
#[tokio::test]
async fn none_stored_is_read_again_so_another_containers_incident_is_edited() {
    let h = Harness::new(&[("GITHUB_TOKEN", "")]).await;
    let b = h.another_container();
    let (_, body) = deliver_to(&b, "n-1", &run(1, "cancelled")).await;
    assert_eq!(body["status"], "ok", "{body}");
    let (_, body) = h.deliver("n-2", &run(2, "failure")).await;
    assert_eq!(body["alert"], "sent", "{body}");
    let (_, body) = deliver_to(&b, "n-3", &run(3, "failure")).await;
    assert_eq!(body["alert"], "edited", "{body}");
    assert_eq!(h.posts().await.len(), 1, "one incident message");
    let deletes = h.discord.received_requests().await.unwrap().iter().filter(|r| r.method.as_str() == "DELETE").count();
    assert_eq!(deletes, 0);
}

/// Records each drain asked for, with the ARN the delivery came through.
#[derive(Default)]
struct Kicks(std::sync::Mutex<Vec<Option<String>>>);

#[async_trait]
impl valine_service::drain::Kick for Kicks {
    async fn kick(&self, invoked_by: Option<&str>) {
        self.0.lock().unwrap().push(invoked_by.map(str::to_string));
    }
}

#[tokio::test]
async fn a_card_discord_rate_limits_asks_for_a_drain_and_the_drain_event_sends_it() {
    let h = Harness::new(&[("GITHUB_TOKEN", "")]).await;
    // Discord's channel bucket is spent for 3 s: longer than a delivery waits.
    Mock::given(method("POST"))
        .and(path(format!("/api/v10/channels/{CHANNEL}/messages")))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "3")
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset-after", "3.000")
                .insert_header("x-ratelimit-bucket", "b-channel")
                .set_body_json(json!({"message": "You are being rate limited.", "retry_after": 3.0, "global": false})),
        )
        .with_priority(1)
        .up_to_n_times(1)
        .mount(&h.discord)
        .await;
    let kicks = Arc::new(Kicks::default());
    let app = h.another_container().with_kick(kicks.clone());
    let alias = "arn:aws:lambda:us-east-1:123456789012:function:valine-orchestrator-github-dev:live";
    let req = signed_delivery(SECRET, "workflow_run", "d-rl", run(1, "failure").to_string().into_bytes())
        .invoked_by(Some(alias.to_string()));
    let res = app.handle(req).await;
    let body: Value = serde_json::from_str(&res.body).unwrap();
    assert_eq!(res.status, StatusCode::OK, "{body}");
    assert_eq!(body["alert"], "queued", "{body}");
    assert_eq!(*kicks.0.lock().unwrap(), vec![Some(alias.to_string())], "a drain asked for, on the alias");
    assert_eq!(h.posts().await.len(), 1);
    // The drain the kick starts: Lambda hands it over as a pass-through event; it waits out
    // Discord's 3 s and posts the card, with the nonce of the first try.
    let event: lambda_http::request::LambdaRequest =
        serde_json::from_value(json!({"valine_drain": {"asked_at_ms": 1}})).unwrap();
    let response = valine_github::lambda::handle(&app, event.into()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let lambda_http::Body::Text(text) = response.body() else { panic!("a text body") };
    let report: Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        (report["drain"].as_str(), report["sent"].as_u64(), report["left"].as_u64()),
        (Some("done"), Some(1), Some(0)),
        "{report}"
    );
    let posts = h.posts().await;
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0]["nonce"], posts[1]["nonce"]);
    // A second drain finds nothing, and a delivery with nothing left asks for none.
    assert!(!app.incidents.knows_pending());
    let (status, _) = deliver_to(&app, "d-rl-2", &run(2, "success")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kicks.0.lock().unwrap().len(), 1);
}

/// GitHub's jobs for run `3000 + number` (job `100 + number`, failing in step "cargo test") and
/// that job's log.
async fn github_job_log(server: &MockServer, number: u64, log: String) {
    github_attempt_log(server, number, 1, log).await;
}

/// A cargo test failure as a job log, with what differs between runs of it.
fn failing_log(ts: &str, tmp: &str, line: u32, secs: &str, test: &str) -> String {
    [
        "##[group]Run cargo test".to_string(),
        "##[endgroup]".to_string(),
        format!("   Compiling widget v0.1.0 ({tmp}/widget)"),
        "running 2 tests".to_string(),
        format!("test store::tests::{test} ... FAILED"),
        format!("thread 'store::tests::{test}' panicked at src/store.rs:{line}:9:"),
        format!("test result: FAILED. 1 passed; 1 failed; finished in {secs}s"),
        "##[error]Process completed with exit code 101.".to_string(),
    ]
    .iter()
    .map(|l| format!("{ts} {l}"))
    .collect::<Vec<_>>()
    .join("\n")
}

/// The Signature field of the newest card posted, after checking that `n` were.
async fn cards_after(h: &Harness, n: usize) -> String {
    let posts = h.posts().await;
    let cards: Vec<Value> =
        posts.into_iter().filter(|p| p["embeds"][0]["title"].as_str().is_some_and(|t| t.starts_with('❌'))).collect();
    assert_eq!(cards.len(), n, "{cards:?}");
    field(cards.last().unwrap(), "Signature").unwrap()
}

#[tokio::test]
async fn one_failure_on_three_commits_has_one_signature_and_the_third_card_says_seen_3_times() {
    // every flip of this history is inside one flapping window: damping is tested on its own
    let h = Harness::new(&[("ALERT_FLAP_COUNT", "10000")]).await;
    let logs = [
        (1, failing_log("2026-11-20T09:00:01.0000000Z", "/tmp/.tmpA1b2C3", 41, "0.42", "saves")),
        (3, failing_log("2026-11-21T13:30:44.1234567Z", "/tmp/.tmpZz9y8X", 57, "3.07", "saves")),
        (5, failing_log("2026-11-22T22:15:09.7654321Z", "/tmp/.tmpQ0q0Q0", 63, "12.5", "saves")),
        // the same step failing with another error
        (7, failing_log("2026-11-23T08:00:00.0000000Z", "/tmp/.tmpA1b2C3", 41, "0.42", "loads")),
    ];
    for (number, log) in logs {
        github_job_log(&h.github, number, log).await;
    }
    // fail, pass, fail, pass, fail (the third on a container started afresh), pass, fail
    h.deliver("d-1", &run(1, "failure")).await;
    let first = cards_after(&h, 1).await;
    assert!(first.ends_with("· first seen"), "{first}");
    let id = first.split('`').nth(1).unwrap().to_string();
    assert!(id.starts_with('s') && id.len() == 11, "{id}");
    h.deliver("d-2", &run(2, "success")).await;
    h.deliver("d-3", &run(3, "failure")).await;
    let second = cards_after(&h, 2).await;
    assert_eq!(second, format!("`{id}` · seen 2× in 14 days (last on main, #1, fixed by #2)"));
    h.deliver("d-4", &run(4, "success")).await;
    // a restart: the ledger is in the store, not in the container
    let restarted = h.another_container();
    let (_, body) = deliver_to(&restarted, "d-5", &run(5, "failure")).await;
    assert_eq!(body["alert"], "sent", "{body}");
    let third = cards_after(&h, 3).await;
    assert_eq!(third, format!("`{id}` · seen 3× in 14 days (last on main, #3, fixed by #4)"));
    // the same run delivered again under a new delivery id counts once
    let (_, body) = deliver_to(&restarted, "d-5-again", &run(5, "failure")).await;
    assert_eq!(body["alert"], "nothing", "{body}");
    deliver_to(&restarted, "d-6", &run(6, "success")).await;
    deliver_to(&restarted, "d-7", &run(7, "failure")).await;
    let other = cards_after(&h, 4).await;
    assert!(other.ends_with("· first seen") && !other.contains(&id), "another error, another signature: {other}");
}

#[tokio::test]
async fn a_failure_that_passes_on_a_rerun_is_a_flake_of_its_signature_recorded_once() {
    let h = Harness::new(&[]).await;
    github_job_log(&h.github, 11, failing_log("2026-11-20T09:00:01.0000000Z", "/tmp/.tmpA1b2C3", 41, "0.42", "saves"))
        .await;
    let (_, body) = h.deliver("d-1", &run(11, "failure")).await;
    assert_eq!(body["alert"], "sent", "{body}");
    let signature = cards_after(&h, 1).await;
    let id = signature.split('`').nth(1).unwrap().to_string();
    // attempt 2 of the same run passes
    let mut rerun = run(11, "success");
    rerun["workflow_run"]["run_attempt"] = json!(2);
    let (_, body) = h.deliver("d-2", &rerun).await;
    assert_eq!(body["alert"], "resolved", "{body}");
    let replies: Vec<Value> = h.posts().await.into_iter().filter(|p| p.get("message_reference").is_some()).collect();
    assert_eq!(replies.len(), 1, "{replies:?}");
    let reply = replies[0]["content"].as_str().unwrap();
    assert!(reply.ends_with("flaky: passed on attempt 2."), "{reply}");
    // redelivered under a new id: the incident has seen it, and the ledger counts the run once
    let (_, body) = h.deliver("d-2-again", &rerun).await;
    assert_eq!(body["alert"], "nothing", "{body}");
    let flakes = h.counting.inner.flakes().await.unwrap();
    assert_eq!(flakes.len(), 1, "{flakes:?}");
    let f = &flakes[0];
    assert_eq!(
        (f.signature.as_deref(), f.job.as_deref(), f.workflow.as_str(), f.run_id, f.attempt),
        (Some(id.as_str()), Some("test"), "CI", 3011, 2)
    );
    // a pass on another run is a fix, not a flake
    github_job_log(&h.github, 12, failing_log("2026-11-21T09:00:01.0000000Z", "/tmp/.tmpB", 41, "0.5", "saves")).await;
    h.deliver("d-3", &run(12, "failure")).await;
    h.deliver("d-4", &run(13, "success")).await;
    assert_eq!(h.counting.inner.flakes().await.unwrap().len(), 1);
}

/// The route of the incident channel, allowing one retry.
fn retry_route() -> String {
    format!("[[route]]\nchannel = {CHANNEL}\nrepo = \"acme/widget\"\nretry = true\n")
}

/// GitHub's jobs of attempt `attempt` of run `3000 + number` and the failing job's log.
async fn github_attempt_log(server: &MockServer, number: u64, attempt: u64, log: String) {
    let (id, job) = (3000 + number, 100 * attempt + number);
    Mock::given(method("GET"))
        .and(path(format!("/repos/acme/widget/actions/runs/{id}/attempts/{attempt}/jobs")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total_count": 1, "jobs": [
            {"id": job, "name": "test", "status": "completed", "conclusion": "failure",
             "html_url": format!("https://github.com/acme/widget/actions/runs/{id}/job/{job}"),
             "steps": [{"name": "cargo test", "conclusion": "failure", "number": 1}]}
        ]})))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/repos/acme/widget/actions/jobs/{job}/logs")))
        .respond_with(ResponseTemplate::new(200).set_body_string(log))
        .mount(server)
        .await;
}

/// GitHub accepts a re-run of run `3000 + number`'s failed jobs.
async fn github_accepts_rerun(server: &MockServer, number: u64) -> String {
    let p = format!("/repos/acme/widget/actions/runs/{}/rerun-failed-jobs", 3000 + number);
    Mock::given(method("POST")).and(path(p.clone())).respond_with(ResponseTemplate::new(201)).mount(server).await;
    p
}

fn on_attempt(mut payload: Value, n: u64) -> Value {
    payload["workflow_run"]["run_attempt"] = json!(n);
    payload
}

fn signature_of(log: &str) -> String {
    valine_domain::fingerprint::signature("CI", "test", "cargo test", log).unwrap().id
}

async fn mark_transient(h: &Harness, signature: &str) {
    let known = KnownIssue {
        signature: signature.into(),
        issue: None,
        note: None,
        transient: true,
        by: ADMIN,
        at: valine_domain::clock::now_secs(),
    };
    h.counting.inner.know(&known).await.unwrap();
}

#[tokio::test]
async fn a_transient_failure_is_retried_once_and_its_pass_pages_nobody() {
    let h = Harness::new(&[("ROUTES_TOML", &retry_route())]).await;
    let log = failing_log("2026-11-20T09:00:01.0000000Z", "/tmp/.tmpA1b2C3", 41, "0.42", "resolves_dns");
    let id = signature_of(&log);
    mark_transient(&h, &id).await;
    github_attempt_log(&h.github, 21, 1, log).await;
    let rerun = github_accepts_rerun(&h.github, 21).await;
    let (status, body) = h.deliver("d-1", &run(21, "failure")).await;
    assert_eq!((status, body["alert"].as_str()), (StatusCode::OK, Some("retrying")), "{body}");
    assert_eq!(h.github_posts(&rerun).await, 1);
    assert!(h.posts().await.is_empty(), "nothing is posted while the retry runs");
    // audited as the bot
    let audit = h.counting.inner.by_user("0", 10).await.unwrap();
    assert!(audit.iter().any(|r| r.command == "incident.retry"), "{audit:?}");
    // a replayed delivery and a second container re-run nothing and post nothing
    let (_, body) = h.deliver("d-1-again", &run(21, "failure")).await;
    assert_eq!(body["alert"], "nothing", "{body}");
    let (_, body) = deliver_to(&h.another_container(), "d-1-third", &run(21, "failure")).await;
    assert_eq!(body["alert"], "nothing", "{body}");
    assert_eq!(h.github_posts(&rerun).await, 1, "one re-run per run");
    // attempt 2 passes: still nothing posted, and the flake is counted once
    let (status, _) = h.deliver("d-2", &on_attempt(run(21, "success"), 2)).await;
    assert_eq!(status, StatusCode::OK);
    h.deliver("d-2-again", &on_attempt(run(21, "success"), 2)).await;
    assert!(h.posts().await.is_empty());
    let flakes = h.counting.inner.flakes().await.unwrap();
    assert_eq!(flakes.len(), 1, "{flakes:?}");
    assert_eq!((flakes[0].signature.as_deref(), flakes[0].attempt), (Some(id.as_str()), 2));
    let listed = h.app.incidents.list_flaky(None, 14).await.unwrap();
    let text = listed.content.unwrap_or_default();
    assert_eq!(text.matches(&id).count(), 1, "{text}");
    assert!(text.contains("1×"), "{text}");
}

#[tokio::test]
async fn a_retried_failure_that_fails_again_is_one_card_saying_retried_once() {
    let h = Harness::new(&[("ROUTES_TOML", &retry_route())]).await;
    let log = failing_log("2026-11-20T09:00:01.0000000Z", "/tmp/.tmpA1b2C3", 41, "0.42", "resolves_dns");
    let id = signature_of(&log);
    // flaked twice in the last two weeks: worth one retry without being marked
    let now = valine_domain::clock::now_secs();
    for (run_id, ago) in [(901, 3 * 86_400), (902, 86_400)] {
        let flake = Flake {
            signature: Some(id.clone()),
            at: now - ago,
            repository: "acme/widget".into(),
            workflow: "CI".into(),
            job: Some("test".into()),
            branch: "main".into(),
            run_id,
            run_number: run_id,
            attempt: 2,
        };
        h.counting.inner.flake(&flake).await.unwrap();
    }
    github_attempt_log(&h.github, 22, 1, log.clone()).await;
    github_attempt_log(&h.github, 22, 2, log.replace("0.42", "0.57")).await;
    let rerun = github_accepts_rerun(&h.github, 22).await;
    let (_, body) = h.deliver("d-1", &run(22, "failure")).await;
    assert_eq!(body["alert"], "retrying", "{body}");
    let (_, body) = h.deliver("d-2", &on_attempt(run(22, "failure"), 2)).await;
    assert_eq!(body["alert"], "sent", "{body}");
    assert_eq!(h.github_posts(&rerun).await, 1, "attempt 2 is never re-run");
    let posts = h.posts().await;
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(field(&posts[0], "Retry").as_deref(), Some("retried once, failed again"));
}

#[tokio::test]
async fn no_retry_for_a_deploy_workflow_an_unknown_signature_a_second_attempt_or_another_route() {
    let h = Harness::new(&[("ROUTES_TOML", &retry_route())]).await;
    let log = failing_log("2026-11-20T09:00:01.0000000Z", "/tmp/.tmpA1b2C3", 41, "0.42", "resolves_dns");
    mark_transient(&h, &signature_of(&log)).await;
    // a deploy workflow with a transient signature (by its file name: "Ship" is deploy.yml)
    let mut deploy = run(31, "failure");
    deploy["workflow_run"]["name"] = json!("Ship");
    deploy["workflow_run"]["path"] = json!(".github/workflows/deploy.yml");
    deploy["workflow"]["name"] = json!("Ship");
    let ship_log = log.clone();
    let ship_id = valine_domain::fingerprint::signature("Ship", "test", "cargo test", &ship_log).unwrap().id;
    mark_transient(&h, &ship_id).await;
    github_attempt_log(&h.github, 31, 1, ship_log).await;
    let (_, body) = h.deliver("d-1", &deploy).await;
    assert_eq!(body["alert"], "sent", "{body}");
    // a signature neither transient nor flaky
    let other = failing_log("2026-11-20T09:00:01.0000000Z", "/tmp/.tmpA1b2C3", 41, "0.42", "saves");
    github_attempt_log(&h.github, 32, 1, other).await;
    let (_, body) = h.deliver("d-2", &run(32, "failure")).await;
    assert_eq!(body["alert"], "sent", "{body}");
    // an attempt-2 delivery of a transient failure the bot never re-ran
    let mut second = on_attempt(run(33, "failure"), 2);
    second["workflow_run"]["head_branch"] = json!("release");
    github_attempt_log(&h.github, 33, 2, log.clone()).await;
    let (_, body) = h.deliver("d-3", &second).await;
    assert_eq!(body["alert"], "sent", "{body}");
    // every re-run POST would have hit the catch-all (expect 0)
    let reruns = h
        .github
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/rerun-failed-jobs"))
        .count();
    assert_eq!(reruns, 0);
    // the same transient failure routed without retry is posted at once
    let plain = Harness::new(&[]).await;
    mark_transient(&plain, &signature_of(&log)).await;
    github_attempt_log(&plain.github, 34, 1, log).await;
    let (_, body) = plain.deliver("d-4", &run(34, "failure")).await;
    assert_eq!(body["alert"], "sent", "{body}");
}

#[tokio::test]
async fn a_known_signature_says_so_at_the_top_and_pings_no_one() {
    let h = Harness::new(&[("GITHUB_DISCORD_USERS", "octocat=9001")]).await;
    let log = failing_log("2026-11-20T09:00:01.0000000Z", "/tmp/.tmpA1b2C3", 41, "0.42", "resolves_dns");
    let id = signature_of(&log);
    github_attempt_log(&h.github, 41, 1, log.clone()).await;
    // before it is known: the culprit and the role are pinged, and the card offers "Mark known…"
    h.deliver("d-1", &run(41, "failure")).await;
    let first = h.posts().await.remove(0);
    let pinged = first["content"].as_str().unwrap().to_string();
    assert!(pinged.contains("<@9001>"), "{first}");
    let buttons: Vec<String> = first["components"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r["components"].as_array().unwrap().iter().map(|b| b["custom_id"].as_str().unwrap_or("").to_string())
        })
        .collect();
    assert!(buttons.contains(&format!("v1:known:mark:{id}")), "{buttons:?}");
    h.deliver("d-2", &run(42, "success")).await;
    // linked (as /known link does), the next failure with it names the issue and pings no one
    let known = KnownIssue {
        signature: id.clone(),
        issue: Some("#42".into()),
        note: Some("flaky DNS in integration tests".into()),
        transient: false,
        by: ADMIN,
        at: valine_domain::clock::now_secs(),
    };
    h.counting.inner.know(&known).await.unwrap();
    github_attempt_log(&h.github, 43, 1, log.replace("0.42", "1.5")).await;
    let restarted = h.another_container();
    let (_, body) = deliver_to(&restarted, "d-3", &run(43, "failure")).await;
    assert_eq!(body["alert"], "sent", "{body}");
    let cards: Vec<Value> = h.posts().await.into_iter().filter(|p| p.get("message_reference").is_none()).collect();
    let card = cards.last().unwrap();
    assert_eq!(card["content"], "known: #42 — flaky DNS in integration tests", "{card}");
    assert!(card["allowed_mentions"]["users"].as_array().is_none_or(|u| u.is_empty()), "{card}");
    assert!(card["allowed_mentions"]["roles"].as_array().is_none_or(|r| r.is_empty()), "{card}");
    assert_eq!(field(card, "Known issue").as_deref(), Some("known: #42 — flaky DNS in integration tests"));
    assert!(!card.to_string().contains("v1:known:mark"), "a linked signature offers no second link");
}
