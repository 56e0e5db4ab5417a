//! The model-based test of incidents: random run histories of several workflows and branches,
//! delivered shuffled, duplicated and replayed under new delivery ids, split across two handler
//! instances that share one store (redb; DynamoDB too when `AWS_ENDPOINT_URL` names a server).
//! At the end each incident's message shows the newest run's state, there is one message per
//! failure streak, and nothing says "resolved" while a newer failure exists.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};
use valine_clients::discord_api::{Discord, DiscordError, PostedMessage};
use valine_domain::incident::IncidentKey;
use valine_domain::logging::Capture;
use valine_domain::metrics::Metrics;
use valine_github::{App, AppParts};
use valine_service::http::HttpRequest;
use valine_service::testing::config_from;
use valine_store::Stores;
use valine_store::embedded::EmbeddedStore;

const SECRET: &str = "model-secret";
const CHANNEL: u64 = 1184576487578214464;

/// A channel that remembers what the bot made of it: each message's current body, deletions and
/// replies.
#[derive(Default)]
struct Recorder {
    next_id: Mutex<u64>,
    messages: Mutex<BTreeMap<u64, Message>>,
}

#[derive(Debug, Clone)]
struct Message {
    body: Value,
    deleted: bool,
    reply_to: Option<u64>,
}

#[async_trait]
impl Discord for Recorder {
    async fn post_message(&self, channel_id: u64, body: &Value) -> Result<PostedMessage, DiscordError> {
        let id = {
            let mut next = self.next_id.lock().unwrap();
            *next += 1;
            *next
        };
        let reply_to = body["message_reference"]["message_id"].as_str().and_then(|m| m.parse().ok());
        self.messages.lock().unwrap().insert(id, Message { body: body.clone(), deleted: false, reply_to });
        // A little time in flight, so that deliveries overlap.
        tokio::task::yield_now().await;
        Ok(PostedMessage { id, channel_id, guild_id: None })
    }
    async fn edit_message(&self, _: u64, message_id: u64, body: &Value) -> Result<(), DiscordError> {
        tokio::task::yield_now().await;
        match self.messages.lock().unwrap().get_mut(&message_id) {
            Some(m) if !m.deleted => {
                m.body = body.clone();
                Ok(())
            }
            _ => Err(DiscordError::Status { status: 404, message: "Unknown Message".into() }),
        }
    }
    async fn delete_message(&self, _: u64, message_id: u64) -> Result<(), DiscordError> {
        if let Some(m) = self.messages.lock().unwrap().get_mut(&message_id) {
            m.deleted = true;
        }
        Ok(())
    }
    async fn open_dm(&self, _: u64) -> Result<u64, DiscordError> {
        Err(DiscordError::Unreachable("not here".into()))
    }
    async fn edit_original(&self, _: u64, _: &str, _: &Value) -> Result<(), DiscordError> {
        Err(DiscordError::Unreachable("not here".into()))
    }
    async fn delete_original(&self, _: u64, _: &str) -> Result<(), DiscordError> {
        Err(DiscordError::Unreachable("not here".into()))
    }
    async fn follow_up(&self, _: u64, _: &str, _: &Value) -> Result<PostedMessage, DiscordError> {
        Err(DiscordError::Unreachable("not here".into()))
    }
}

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

#[derive(Debug, Clone)]
struct Run {
    workflow: &'static str,
    branch: &'static str,
    number: u64,
    attempt: u64,
    conclusion: &'static str,
}

impl Run {
    fn payload(&self) -> Value {
        let workflow_id = if self.workflow == "CI" { 7 } else { 8 };
        let id = workflow_id * 1_000_000 + self.number * 10 + self.attempt;
        json!({
            "action": "completed",
            "workflow_run": {
                "id": id, "name": self.workflow, "display_title": "t", "head_branch": self.branch,
                "head_sha": format!("{:040x}", self.number), "path": format!(".github/workflows/{}.yml", self.workflow),
                "run_number": self.number, "run_attempt": self.attempt, "event": "push", "status": "completed",
                "conclusion": self.conclusion, "workflow_id": workflow_id,
                "html_url": format!("https://github.com/acme/widget/actions/runs/{id}"),
                "created_at": "2026-11-22T14:00:00Z", "updated_at": "2026-11-22T14:05:00Z",
                "actor": {"login": "octocat"}, "triggering_actor": {"login": "octocat"}, "pull_requests": []
            },
            "workflow": {"id": workflow_id, "name": self.workflow},
            "repository": {"full_name": "acme/widget"},
            "sender": {"login": "octocat"}
        })
    }
}

fn history(rng: &mut Rng) -> Vec<Run> {
    let mut runs = Vec::new();
    for workflow in ["CI", "Lint"] {
        for branch in ["main", "release/1"] {
            let n = 3 + rng.below(10);
            for number in 1..=n {
                let attempts = if rng.below(5) == 0 { 2 } else { 1 };
                for attempt in 1..=attempts {
                    let conclusion = match rng.below(10) {
                        0..=3 => "failure",
                        4..=8 => "success",
                        _ => ["cancelled", "skipped", "timed_out"][rng.below(3) as usize],
                    };
                    runs.push(Run { workflow, branch, number, attempt, conclusion });
                }
            }
        }
    }
    runs
}

fn signed(delivery: &str, payload: &Value) -> HttpRequest {
    valine_service::testing::signed_delivery(SECRET, "workflow_run", delivery, payload.to_string().into_bytes())
}

fn app(stores: Stores, discord: Arc<Recorder>) -> App {
    let config = config_from(
        &[
            ("GITHUB_WEBHOOK_SECRET", SECRET.to_string()),
            ("DISCORD_BOT_TOKEN", "bot-token".to_string()),
            ("ENABLE_ALERTS", "true".to_string()),
            ("ALERT_CHANNEL_ID", CHANNEL.to_string()),
            ("ALERT_BRANCHES", "main,release/*".to_string()),
            // every flip of a fast test is inside one window: damping is tested on its own
            ("ALERT_FLAP_COUNT", "10000".to_string()),
        ],
        &[],
    );
    App::new(AppParts {
        config,
        stores,
        discord,
        metrics: Metrics::new("github-handler", Arc::new(Capture::default())),
    })
    .unwrap()
}

async fn check_one_history(seed: u64, stores: Stores) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let runs = history(&mut rng);
    // deliveries: each run once, some duplicated (same id), some replayed (new id)
    let mut deliveries: Vec<(String, usize)> = Vec::new();
    for (i, _) in runs.iter().enumerate() {
        deliveries.push((format!("d-{seed}-{i}"), i));
        match rng.below(6) {
            0 => deliveries.push((format!("d-{seed}-{i}"), i)),
            1 => deliveries.push((format!("r-{seed}-{i}"), i)),
            _ => {}
        }
    }
    rng.shuffle(&mut deliveries);
    let discord = Arc::new(Recorder::default());
    let a = Arc::new(app(stores.clone(), discord.clone()));
    let b = Arc::new(app(stores.clone(), discord.clone()));
    // in small concurrent batches, each delivery to one of the two instances
    for batch in deliveries.chunks(4) {
        let mut tasks = Vec::new();
        for (delivery, i) in batch {
            let target = if rng.below(2) == 0 { a.clone() } else { b.clone() };
            let request = signed(delivery, &runs[*i].payload());
            tasks.push(tokio::spawn(async move { target.handle(request).await }));
        }
        for t in tasks {
            let res = t.await.unwrap();
            assert!(res.status.is_success(), "seed {seed}: {} {}", res.status, res.body);
        }
    }

    // What a concurrent write left in the outbox goes out with the drain the delivery kicked (in
    // Lambda a self-invoke, under serve a wake-up), as it would after the storm. Its budget
    // outlasts a send's 30 s claim: a card whose sender could not record what it sent is sent
    // again once that claim lapses. The drain returns as soon as nothing is left.
    let drained = a.drain_outbox(std::time::Duration::from_secs(40)).await;
    assert!(drained.errors.is_empty(), "seed {seed}: the drain failed: {:?}", drained.errors);
    let messages = discord.messages.lock().unwrap().clone();
    let incidents = stores.incidents.list_incidents(100).await.unwrap();
    let mut groups: HashMap<(&str, &str), Vec<&Run>> = HashMap::new();
    for r in &runs {
        groups.entry((r.workflow, r.branch)).or_default().push(r);
    }
    for ((workflow, branch), group) in groups {
        let id = IncidentKey::workflow(CHANNEL, "acme/widget", workflow, branch).id();
        let counted: Vec<&&Run> =
            group.iter().filter(|r| r.conclusion != "cancelled" && r.conclusion != "skipped").collect();
        let newest = counted.iter().max_by_key(|r| (r.number, r.attempt));
        let stored = incidents.iter().find(|i| i.id == id);
        let (Some(newest), Some(stored)) = (newest, stored) else {
            assert!(newest.is_none(), "seed {seed} {workflow}@{branch}: runs but no incident");
            continue;
        };
        let ctx = format!(
            "seed {seed} {workflow}@{branch}, newest #{}.{} {}",
            newest.number, newest.attempt, newest.conclusion
        );
        assert_eq!(
            (stored.latest.major, stored.latest.minor),
            (newest.number, newest.attempt),
            "{ctx}: newest run seen"
        );
        let failing = newest.conclusion != "success";
        assert_eq!(stored.open, failing, "{ctx}: incident state");
        // messages of this incident, by the streak id in their footer
        let mut by_streak: BTreeMap<u64, Vec<&Message>> = BTreeMap::new();
        for m in messages.values().filter(|m| !m.deleted && m.reply_to.is_none()) {
            let footer = m.body["embeds"][0]["footer"]["text"].as_str().unwrap_or("");
            if let Some(streak) = footer.strip_prefix(&format!("incident {id}-")).and_then(|s| s.parse().ok()) {
                by_streak.entry(streak).or_default().push(m);
            }
        }
        assert_eq!(by_streak.len() as u64, stored.streak, "{ctx}: one message per failure streak");
        for (streak, ms) in &by_streak {
            assert_eq!(ms.len(), 1, "{ctx}: streak {streak} has {} messages", ms.len());
            let title = ms[0].body["embeds"][0]["title"].as_str().unwrap_or("");
            let latest = *streak == stored.streak;
            if latest && failing {
                assert!(title.starts_with('❌'), "{ctx}: the open incident shows the failure: {title}");
                let shown = ms[0].body["embeds"][0]["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|f| f["name"] == "Run" || f["name"] == "Latest failing run")
                    .map(|f| f["value"].as_str().unwrap().to_string())
                    .unwrap_or_default();
                assert!(
                    shown.starts_with(&format!("[#{}", newest.number)),
                    "{ctx}: shows the newest failing run: {shown}"
                );
            } else {
                assert!(title.starts_with("✅ Resolved"), "{ctx}: streak {streak} is resolved: {title}");
            }
            if latest && failing {
                assert!(!title.contains("Resolved"), "{ctx}: no resolved while a newer failure exists");
            }
        }
        // one reply per resolved streak, each referencing its message
        for m in messages.values().filter(|m| !m.deleted && m.reply_to.is_some()) {
            let target = m.reply_to.unwrap();
            assert!(
                messages.get(&target).is_some_and(|t| !t.deleted),
                "seed {seed}: a reply to a message that is gone"
            );
        }
    }
    let replies = messages.values().filter(|m| m.reply_to.is_some()).count();
    let resolved: usize = incidents.iter().map(|i| i.history.len()).sum();
    assert_eq!(replies, resolved, "seed {seed}: one reply per resolve");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_histories_converge_on_the_newest_run_with_the_embedded_store() {
    for seed in 1..=12 {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("v.redb")).unwrap();
        check_one_history(seed, Stores::from_adapter(Arc::new(store), "embedded")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_histories_converge_on_the_newest_run_with_dynamodb() {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") else {
        assert!(
            std::env::var("VALINE_REQUIRE_DYNAMODB").as_deref() != Ok("1"),
            "VALINE_REQUIRE_DYNAMODB=1 but AWS_ENDPOINT_URL is not set"
        );
        eprintln!("skipping: set AWS_ENDPOINT_URL to a DynamoDB-compatible server (or run .ci/run)");
        return;
    };
    let sdk = valine_store::dynamo::sdk_loader()
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(&endpoint)
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    for seed in 101..=103 {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let names = valine_store::dynamo::TableNames {
            audit: format!("model-audit-{id}"),
            runs: format!("model-runs-{id}"),
            state: format!("model-state-{id}"),
        };
        valine_store::dynamo::create_tables(&client, &names).await.unwrap();
        let store = valine_store::dynamo::DynamoStore::from_client(client.clone(), names);
        check_one_history(seed, Stores::from_adapter(Arc::new(store), "dynamodb")).await;
    }
}
