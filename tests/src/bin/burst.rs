//! Proofs under load and crash, against the release `valinectl serve` (docs/PERFORMANCE.md).
//!
//! **Burst** (default): 2,000 signed GitHub deliveries at concurrency 32, mixed: `workflow_run`
//! failures over a few incident keys (only failures on those keys, so each must open exactly one
//! incident whatever the order), successes on other keys, `deployment_status` failures and
//! successes, pings, and about 10% sent again under the same delivery id. Checks, each a hard
//! failure: no 5xx (nor any answer but 200), every delivery id handled once and its copies answered
//! `duplicate`, exactly one incident message per failing key; then, one by one, a newer success per
//! key resolves each incident with exactly one reply, and a second copy of it changes nothing;
//! finally, with serve stopped, the store holds every delivery id and one resolved incident per key.
//! Prints p50 / p99 / max answer time and throughput.
//!
//! `cargo run --release -p valine-e2e --bin burst -- --store embedded [--count 2000 --concurrency 32]`
//! `cargo run --release -p valine-e2e --bin burst -- --store dynamodb` (a DynamoDB-compatible server at
//! `AWS_ENDPOINT_URL`, e.g. moto; fresh tables are created for the run).
//!
//! **Crash** (`--crash`, embedded store): confirmed `/relay-send`s from admins at concurrency 16;
//! `kill -9` of serve once about half have been posted; a restart on the same data directory must
//! come up ready (the store opens cleanly) and relay again; then, with serve stopped, every message
//! the fake Discord received must have its `pending` intent record (matched by the keyed digest of
//! its text).
//!
//! `cargo run --release -p valine-e2e --bin burst -- --crash [--count 400 --concurrency 16]`

// Test tool (valine-e2e): the no-panic lints hold for production code only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use valine_domain::audit::{AuditResult, MessageDigest};
use valine_domain::clock::{now_secs, rfc3339_millis};
use valine_domain::signing::{discord_signature, github_signature, public_key_hex};
use valine_e2e::{FakeDiscord, Serve, free_port, interaction_body, release_binary};
use valine_store::Stores;

const SEED: [u8; 32] = [11; 32];
const WEBHOOK_SECRET: &str = "burst-webhook-secret";
const AUDIT_KEY: &str = "burst-audit-hmac-key";
const ALERT_CHANNEL: u64 = 805_950_613_094_531_075;
const RELAY_CHANNEL: u64 = 805_950_613_094_531_076;
const ADMINS: [u64; 4] =
    [100_000_000_000_000_041, 100_000_000_000_000_042, 100_000_000_000_000_043, 100_000_000_000_000_044];
const REPO: &str = "acme/widget";
/// Workflows that only fail in the burst: one incident each.
const FAILING_WORKFLOWS: usize = 8;
/// Environments whose deployments only fail in the burst: one incident each.
const FAILING_ENVIRONMENTS: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreKind {
    Embedded,
    DynamoDb,
}

#[derive(Debug)]
struct Opts {
    store: StoreKind,
    count: usize,
    concurrency: usize,
    crash: bool,
    seed: u64,
}

fn parse_args() -> Result<Opts, String> {
    let mut opts = Opts { store: StoreKind::Embedded, count: 0, concurrency: 0, crash: false, seed: 15 };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--store" => {
                opts.store = match value("--store")?.as_str() {
                    "embedded" => StoreKind::Embedded,
                    "dynamodb" => StoreKind::DynamoDb,
                    other => return Err(format!("--store is embedded or dynamodb, not {other}")),
                }
            }
            "--count" => opts.count = value("--count")?.parse().map_err(|_| "--count is a number")?,
            "--concurrency" => {
                opts.concurrency = value("--concurrency")?.parse().map_err(|_| "--concurrency is a number")?
            }
            "--seed" => opts.seed = value("--seed")?.parse().map_err(|_| "--seed is a number")?,
            "--crash" => opts.crash = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if opts.count == 0 {
        opts.count = if opts.crash { 400 } else { 2000 };
    }
    if opts.concurrency == 0 {
        opts.concurrency = if opts.crash { 16 } else { 32 };
    }
    if opts.crash && opts.store != StoreKind::Embedded {
        return Err("--crash runs on the embedded store (a killed process and its redb file)".into());
    }
    Ok(opts)
}

/// xorshift64*: a fixed, reproducible mix for a given `--seed`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Violations, collected; any one fails the run.
#[derive(Default)]
struct Verdict(Vec<String>);

impl Verdict {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            let w = what();
            eprintln!("VIOLATION: {w}");
            self.0.push(w);
        }
    }
}

/// The environment of `valinectl serve`, the same for a restart.
fn serve_env(data_dir: &Path, discord: &FakeDiscord, store: StoreKind, tables: &str) -> Vec<(String, String)> {
    let key = ed25519_dalek::SigningKey::from_bytes(&SEED);
    let mut env: Vec<(String, String)> = [
        ("DATA_DIR", data_dir.display().to_string()),
        ("STORE", if store == StoreKind::Embedded { "embedded" } else { "dynamodb" }.to_string()),
        ("DISCORD_PUBLIC_KEY", public_key_hex(&key)),
        ("DISCORD_APPLICATION_ID", "100000000000000001".to_string()),
        ("DISCORD_BOT_TOKEN", "burst-fake-discord-bot-token".to_string()),
        ("DISCORD_API_BASE", discord.base()),
        ("GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET.to_string()),
        ("GITHUB_REPO", REPO.to_string()),
        ("ENABLE_ALERTS", "true".to_string()),
        ("ALERT_CHANNEL_ID", ALERT_CHANNEL.to_string()),
        ("ADMIN_USER_IDS", ADMINS.iter().map(u64::to_string).collect::<Vec<_>>().join(",")),
        ("AUDIT_HMAC_KEY", AUDIT_KEY.to_string()),
        ("LOG_LEVEL", "info".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if store == StoreKind::DynamoDb {
        for (k, v) in table_env(tables) {
            env.push((k.to_string(), v));
        }
        for k in [
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
            "AWS_EC2_METADATA_DISABLED",
        ] {
            if let Ok(v) = std::env::var(k) {
                env.push((k.to_string(), v));
            }
        }
    }
    env
}

fn table_env(prefix: &str) -> [(&'static str, String); 3] {
    [
        ("AUDIT_TABLE_NAME", format!("{prefix}-audit")),
        ("RUNS_TABLE_NAME", format!("{prefix}-runs")),
        ("STATE_TABLE_NAME", format!("{prefix}-state")),
    ]
}

/// The store serve used, opened by this process (serve stopped, for the embedded one).
async fn open_store(data_dir: &Path, store: StoreKind, tables: &str) -> Result<Stores, String> {
    let mut vars: Vec<(&str, String)> = vec![("DATA_DIR", data_dir.display().to_string())];
    vars.push(("STORE", if store == StoreKind::Embedded { "embedded" } else { "dynamodb" }.into()));
    vars.extend(table_env(tables));
    let config =
        valine_domain::config::Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
            .map_err(|e| e.to_string())?;
    Stores::open(&config).await.map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------------
// The burst

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    /// A workflow that only fails: one incident.
    Failing(String),
    /// A deployment environment that only fails: one incident.
    FailingEnv(String),
    /// Successes only: no incident, no message.
    Quiet,
    Ping,
}

struct Delivery {
    id: String,
    event: &'static str,
    body: Vec<u8>,
    signature: String,
    key: Key,
}

impl Delivery {
    fn new(id: String, event: &'static str, body: Value, key: Key) -> Self {
        let body = body.to_string().into_bytes();
        let signature = github_signature(WEBHOOK_SECRET, &body);
        Self { id, event, body, signature, key }
    }
}

fn workflow_run(run_id: u64, workflow: &str, workflow_id: u64, run_number: u64, conclusion: &str, at_ms: u64) -> Value {
    let ts = rfc3339_millis(at_ms);
    json!({
        "action": "completed",
        "workflow_run": {
            "id": run_id, "name": workflow, "display_title": format!("burst run {run_number}"),
            "head_branch": "main", "head_sha": format!("{run_id:040x}"),
            "path": format!(".github/workflows/{workflow}.yml"),
            "status": "completed", "conclusion": conclusion,
            "html_url": format!("https://github.com/{REPO}/actions/runs/{run_id}"),
            "run_number": run_number, "run_attempt": 1, "event": "push", "workflow_id": workflow_id,
            "created_at": ts, "updated_at": ts, "run_started_at": ts,
            "actor": {"login": "octo"}, "triggering_actor": {"login": "octo"},
            "head_repository": {"full_name": REPO}
        },
        "workflow": {"id": workflow_id, "name": workflow, "path": format!(".github/workflows/{workflow}.yml")},
        "repository": {"full_name": REPO},
        "sender": {"login": "octo"}
    })
}

fn deployment_status(status_id: u64, environment: &str, state: &str, at_ms: u64) -> Value {
    let ts = rfc3339_millis(at_ms);
    json!({
        "action": "created",
        "deployment_status": {
            "id": status_id, "state": state, "environment": environment,
            "created_at": ts, "updated_at": ts,
            "target_url": format!("https://example.com/deploys/{status_id}"),
            "creator": {"login": "octo"}
        },
        "deployment": {"id": status_id / 10, "sha": format!("{status_id:040x}"), "environment": environment, "creator": {"login": "octo"}},
        "repository": {"full_name": REPO},
        "sender": {"login": "octo"}
    })
}

fn failing_workflow(i: usize) -> String {
    format!("burst-wf-{i:02}")
}

fn failing_env(i: usize) -> String {
    format!("burst-env-{i:02}")
}

/// The deliveries of the burst, in sending order, and how many failures each key got.
fn burst_deliveries(count: usize, rng: &mut Rng) -> (Vec<Arc<Delivery>>, BTreeMap<Key, u64>) {
    let resends = count / 10;
    let unique = count - resends;
    let base_ms = (now_secs() - 3600) * 1000;
    let mut next_run = 7_000_000_000u64;
    let mut run_numbers: HashMap<String, u64> = HashMap::new();
    let mut failures: BTreeMap<Key, u64> = BTreeMap::new();
    let mut out: Vec<Arc<Delivery>> = Vec::with_capacity(count);
    for i in 0..unique {
        let id = format!("b0000000-0000-4000-8000-{:012x}", i);
        let at = base_ms + i as u64 * 1000;
        next_run += 1;
        let roll = rng.below(100);
        let d = if roll < 45 {
            let w = rng.below(FAILING_WORKFLOWS);
            let name = failing_workflow(w);
            let n = run_numbers.entry(name.clone()).or_default();
            *n += 1;
            let key = Key::Failing(name.clone());
            *failures.entry(key.clone()).or_default() += 1;
            Delivery::new(id, "workflow_run", workflow_run(next_run, &name, 500 + w as u64, *n, "failure", at), key)
        } else if roll < 75 {
            let w = rng.below(8);
            let name = format!("burst-green-{w:02}");
            let n = run_numbers.entry(name.clone()).or_default();
            *n += 1;
            Delivery::new(
                id,
                "workflow_run",
                workflow_run(next_run, &name, 600 + w as u64, *n, "success", at),
                Key::Quiet,
            )
        } else if roll < 82 {
            let e = failing_env(rng.below(FAILING_ENVIRONMENTS));
            let key = Key::FailingEnv(e.clone());
            *failures.entry(key.clone()).or_default() += 1;
            Delivery::new(id, "deployment_status", deployment_status(next_run, &e, "failure", at), key)
        } else if roll < 90 {
            let e = format!("burst-calm-{:02}", rng.below(3));
            Delivery::new(id, "deployment_status", deployment_status(next_run, &e, "success", at), Key::Quiet)
        } else {
            let body = json!({"zen": "Keep it logically awesome.", "hook_id": 4242, "hook": {"id": 4242, "type": "Repository"}, "repository": {"full_name": REPO}});
            Delivery::new(id, "ping", body, Key::Ping)
        };
        out.push(Arc::new(d));
    }
    for _ in 0..resends {
        let again = out[rng.below(unique)].clone();
        out.push(again);
    }
    // Fisher–Yates: copies may come before their original, and keys interleave.
    for i in (1..out.len()).rev() {
        let j = rng.below(i + 1);
        out.swap(i, j);
    }
    (out, failures)
}

struct Answer {
    index: usize,
    status: u16,
    outcome: String,
    millis: f64,
    error: Option<String>,
}

async fn send_delivery(client: &reqwest::Client, base: &str, d: &Delivery) -> (u16, Value, Option<String>) {
    let res = client
        .post(format!("{base}/github/webhook"))
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/burst")
        .header("x-github-event", d.event)
        .header("x-github-delivery", &d.id)
        .header("x-hub-signature-256", &d.signature)
        .body(d.body.clone())
        .send()
        .await;
    match res {
        Ok(r) => {
            let status = r.status().as_u16();
            let body = r.json::<Value>().await.unwrap_or(Value::Null);
            (status, body, None)
        }
        Err(e) => (0, Value::Null, Some(e.to_string())),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The key a message of the alert channel is about, by the unique names in its text.
fn message_key(body: &Value) -> Option<Key> {
    let text = body.to_string();
    for i in 0..FAILING_WORKFLOWS {
        if text.contains(&failing_workflow(i)) {
            return Some(Key::Failing(failing_workflow(i)));
        }
    }
    for i in 0..FAILING_ENVIRONMENTS {
        if text.contains(&failing_env(i)) {
            return Some(Key::FailingEnv(failing_env(i)));
        }
    }
    None
}

fn is_reply(call: &valine_e2e::DiscordCall) -> bool {
    call.body.get("message_reference").is_some()
}

async fn burst(opts: &Opts, work: &Path, v: &mut Verdict) -> Result<(), String> {
    let valinectl = valinectl();
    let discord = FakeDiscord::start().await;
    let data_dir = work.join("data");
    let tables = format!("burst-{}-{}", std::process::id(), now_secs());
    if opts.store == StoreKind::DynamoDb {
        let endpoint = std::env::var("AWS_ENDPOINT_URL").map_err(|_| "--store dynamodb needs AWS_ENDPOINT_URL")?;
        let sdk = valine_store::dynamo::sdk_loader().load().await;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        let [(_, audit), (_, runs), (_, state)] = table_env(&tables);
        let names = valine_store::dynamo::TableNames { audit, runs, state };
        valine_store::dynamo::create_tables(&client, &names).await.map_err(|e| format!("create tables: {e}"))?;
        eprintln!("tables {tables}-* created on {endpoint}");
    }
    let env = serve_env(&data_dir, &discord, opts.store, &tables);
    let port = free_port();
    let log = work.join("serve.log");
    let mut serve = Serve::start(&valinectl, port, &env, &log).await?;
    let mut rng = Rng(opts.seed.max(1));
    let (deliveries, failures) = burst_deliveries(opts.count, &mut rng);
    let unique: HashSet<String> = deliveries.iter().map(|d| d.id.clone()).collect();
    eprintln!(
        "burst: {} deliveries ({} unique ids, {} sent again), concurrency {}, store {:?}; serve log {}",
        deliveries.len(),
        unique.len(),
        deliveries.len() - unique.len(),
        opts.concurrency,
        opts.store,
        log.display()
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let list = Arc::new(deliveries);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..opts.concurrency {
        let (list, next, client, base) = (list.clone(), next.clone(), client.clone(), serve.base.clone());
        workers.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(d) = list.get(index) else { break };
                let t = Instant::now();
                let (status, body, error) = send_delivery(&client, &base, d).await;
                let millis = t.elapsed().as_secs_f64() * 1000.0;
                let outcome = body["status"].as_str().unwrap_or("").to_string();
                answers.push(Answer { index, status, outcome, millis, error });
            }
            answers
        }));
    }
    let mut answers = Vec::new();
    for w in workers {
        answers.extend(w.await.map_err(|e| e.to_string())?);
    }
    let wall = started.elapsed();

    // Answers: 200, each id handled once, its copies `duplicate`. On DynamoDB a store call may
    // outlast its budget under this load: the delivery then answers 202 `incomplete` (it is not
    // recorded done) and is redelivered here, as the answer asks and as an operator (or
    // GitHub's redelivery) would; on the embedded store that is a violation.
    let mut handled: HashMap<String, usize> = HashMap::new();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let mut incomplete: Vec<usize> = Vec::new();
    for a in &answers {
        let d = &list[a.index];
        *statuses.entry(format!("{} {}", a.status, a.outcome)).or_default() += 1;
        v.check(a.error.is_none(), || format!("delivery {} got no answer: {:?}", d.id, a.error));
        v.check(a.status < 500, || format!("delivery {} ({}) answered {}", d.id, d.event, a.status));
        match (a.status, a.outcome.as_str()) {
            (200, "duplicate") => {}
            (200, "ok") => *handled.entry(d.id.clone()).or_default() += 1,
            (202, "incomplete") => {
                v.check(opts.store == StoreKind::DynamoDb, || {
                    format!("delivery {} ({}) answered 202 incomplete", d.id, d.event)
                });
                incomplete.push(a.index);
            }
            (status, other) => {
                v.check(false, || format!("delivery {} ({}) answered {status} {other:?}", d.id, d.event))
            }
        }
    }
    // Redelivered once the store answers quickly again (as the runbook says: once
    // `/github/health/ready` is 200), in up to three rounds.
    let mut redelivered = 0;
    let mut settled_ms = Vec::new();
    let mut pending: Vec<usize> = incomplete.clone();
    for _round in 0..3 {
        if pending.is_empty() {
            break;
        }
        settled_ms.push(settle(&client, &serve.base).await);
        let mut again = Vec::new();
        for index in pending {
            let d = &list[index];
            redelivered += 1;
            let (status, body, error) = send_delivery(&client, &serve.base, d).await;
            match (status, body["status"].as_str()) {
                (200, Some("ok")) => *handled.entry(d.id.clone()).or_default() += 1,
                // A later copy of it was handled meanwhile.
                (200, Some("duplicate")) => {}
                (202, Some("incomplete")) => again.push(index),
                _ => v.check(false, || format!("redelivery of {} answered {status} {body} {error:?}", d.id)),
            }
        }
        pending = again;
    }
    for index in &pending {
        v.check(false, || format!("delivery {} still incomplete after three redeliveries", list[*index].id));
    }
    let mut copies: HashMap<&str, usize> = HashMap::new();
    for d in list.iter() {
        *copies.entry(&d.id).or_default() += 1;
    }
    // A delivery is recorded done only with its last effect, so no id is ever handled twice.
    // One whose record landed with its answer lost answered `incomplete`, and its redelivery
    // `duplicate`: handled once, answered `ok` never (counted; the store check below holds).
    let mut done_unseen = 0;
    for (id, n) in &copies {
        let h = handled.get(*id).copied().unwrap_or(0);
        if h == 0 && incomplete.iter().any(|i| list[*i].id == *id) {
            done_unseen += 1;
            continue;
        }
        v.check(h == 1, || format!("delivery {id} handled {h} times (sent {n} times, redeliveries included)"));
    }

    // One incident message per failing key, nothing else in the channel. Two first failures of
    // a key handled at once may both post; the one that loses the incident write deletes its
    // message, so what counts is the messages left standing.
    let deleted: HashSet<u64> = discord
        .calls()
        .iter()
        .filter(|c| c.method == "DELETE")
        .filter_map(|c| c.path.rsplit('/').next().and_then(|id| id.parse().ok()))
        .collect();
    let mut opened: BTreeMap<Key, Vec<u64>> = BTreeMap::new();
    let mut duplicates_deleted = 0;
    let mut store_alerts = 0;
    for call in discord.posts() {
        let channel_ok = call.path.contains(&format!("/channels/{ALERT_CHANNEL}/"));
        let key = message_key(&call.body);
        if key.is_none() && !incomplete.is_empty() && call.body.to_string().contains("store unavailable") {
            // The bot's own alert that its store failed, which those incomplete deliveries raised.
            store_alerts += 1;
            continue;
        }
        v.check(channel_ok && key.is_some() && !is_reply(&call), || {
            format!(
                "unexpected post during the burst: {} {}",
                call.path,
                call.body.to_string().chars().take(300).collect::<String>()
            )
        });
        if deleted.contains(&call.created_id) {
            duplicates_deleted += 1;
            continue;
        }
        if let Some(k) = key {
            opened.entry(k).or_default().push(call.created_id);
        }
    }
    for key in failures.keys() {
        let n = opened.get(key).map_or(0, Vec::len);
        v.check(n == 1, || format!("{key:?}: {n} incident messages left standing (expected exactly 1)"));
    }
    let mut times: Vec<f64> = answers.iter().map(|a| a.millis).collect();
    times.sort_by(f64::total_cmp);
    let report = format!(
        "burst ({:?} store): {} deliveries in {:.2} s at concurrency {}: {:.0} deliveries/s; answer time p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        opts.store,
        answers.len(),
        wall.as_secs_f64(),
        opts.concurrency,
        answers.len() as f64 / wall.as_secs_f64(),
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times.last().copied().unwrap_or(0.0),
    );
    println!("{report}");
    println!("  answers: {statuses:?}");
    if !incomplete.is_empty() {
        println!(
            "  {} deliveries answered 202 incomplete (a store call over its budget); {} redeliveries once the store answered quickly again (after waiting {:?} ms); {} of them were done already (their record landed with its answer lost); {} store-unavailable alerts posted",
            incomplete.len(),
            redelivered,
            settled_ms,
            done_unseen,
            store_alerts
        );
    }
    println!(
        "  incidents opened: {} keys, one message each ({} failures among them; {} duplicate first posts from concurrent first failures, deleted at once); unique ids handled once: {}",
        opened.len(),
        failures.values().sum::<u64>(),
        duplicates_deleted,
        handled.values().filter(|n| **n == 1).count()
    );

    // Resolution, one by one: a newer success per failing key, then the same outcome again.
    let settled = settle(&client, &serve.base).await;
    if settled > 0 {
        println!("  (waited {settled} ms for the store to answer quickly before resolving)");
    }
    let mut resolve_times = Vec::new();
    let posts_before = discord.posts().len();
    let now_ms = now_secs() * 1000;
    let mut resolves = Vec::new();
    for (i, key) in failures.keys().enumerate() {
        let id = format!("c0000000-0000-4000-8000-{:012x}", i);
        let d = match key {
            Key::Failing(name) => {
                let w: u64 = name.trim_start_matches("burst-wf-").parse().unwrap_or(0);
                Delivery::new(
                    id,
                    "workflow_run",
                    workflow_run(9_000_000_000 + i as u64, name, 500 + w, 1_000_000, "success", now_ms),
                    key.clone(),
                )
            }
            Key::FailingEnv(env) => Delivery::new(
                id,
                "deployment_status",
                deployment_status(9_000_000_000 + i as u64, env, "success", now_ms),
                key.clone(),
            ),
            _ => continue,
        };
        resolves.push(d);
    }
    for d in &resolves {
        let t = Instant::now();
        let (status, body, error) = send_delivery(&client, &serve.base, d).await;
        resolve_times.push(t.elapsed().as_secs_f64() * 1000.0);
        v.check(status == 200 && body["status"] == "ok", || format!("resolve {:?}: {status} {body} {error:?}", d.key));
    }
    // The same successes again under new delivery ids (a second copy from GitHub's side).
    for (i, d) in resolves.iter().enumerate() {
        let again = Delivery {
            id: format!("c1000000-0000-4000-8000-{:012x}", i),
            ..Delivery::new(
                String::new(),
                d.event,
                serde_json::from_slice(&d.body).unwrap_or(Value::Null),
                d.key.clone(),
            )
        };
        let (status, body, _) = send_delivery(&client, &serve.base, &again).await;
        v.check(status == 200 && body["status"] == "ok", || format!("second resolve {:?}: {status} {body}", d.key));
    }
    let calls = discord.calls();
    let new_posts: Vec<_> = discord.posts().into_iter().skip(posts_before).collect();
    for (key, ids) in &opened {
        let Some(message_id) = ids.first() else { continue };
        let replies = new_posts
            .iter()
            .filter(|c| c.body["message_reference"]["message_id"].as_str() == Some(&message_id.to_string()))
            .count();
        v.check(replies == 1, || format!("{key:?}: {replies} resolve replies (expected exactly 1)"));
        let edited = calls.iter().any(|c| c.method == "PATCH" && c.path.ends_with(&format!("/messages/{message_id}")));
        v.check(edited, || format!("{key:?}: its message was never edited to resolved"));
    }
    v.check(new_posts.len() == opened.len(), || {
        format!("{} posts during resolution for {} incidents (one reply each expected)", new_posts.len(), opened.len())
    });
    println!(
        "  resolution: {} incidents resolved one by one, each with one reply (answer p50 {:.1} ms); second copies changed nothing",
        resolves.len(),
        percentile(
            &{
                let mut t = resolve_times.clone();
                t.sort_by(f64::total_cmp);
                t
            },
            0.5
        )
    );

    // The store, read back with serve stopped.
    serve.stop();
    dump_calls(&discord, work);
    let stores = open_store(&data_dir, opts.store, &tables).await?;
    let mut unrecorded = 0;
    for id in unique.iter() {
        match stores.deliveries.look_up(&format!("github:{id}"), &[]).await {
            Ok(found) if found.done => {}
            Ok(_) => unrecorded += 1,
            Err(e) => return Err(format!("reading the delivery ledger: {e}")),
        }
    }
    v.check(unrecorded == 0, || format!("{unrecorded} delivery ids missing from the store"));
    let incidents = stores.incidents.list_incidents(1000).await.map_err(|e| e.to_string())?;
    for key in failures.keys() {
        let name = match key {
            Key::Failing(n) => n.clone(),
            Key::FailingEnv(e) => format!("deploy:{e}"),
            _ => continue,
        };
        let mine: Vec<_> = incidents.iter().filter(|i| i.key.name() == name).collect();
        v.check(mine.len() == 1, || format!("{name}: {} incidents stored", mine.len()));
        if let Some(i) = mine.first() {
            let standing = opened.get(key).and_then(|ids| ids.first()).copied();
            v.check(i.message.map(|m| m.message_id) == standing, || {
                format!(
                    "{name}: the stored incident points at message {:?}, the one standing is {standing:?}",
                    i.message.map(|m| m.message_id)
                )
            });
            v.check(!i.open && i.streak == 1 && i.resolved_at.is_some(), || {
                format!("{name}: stored incident open={} streak={} resolved_at={:?}", i.open, i.streak, i.resolved_at)
            });
        }
    }
    println!(
        "  store: all {} delivery ids recorded ({} missing); one incident per failing key ({}), each resolved, pointing at the message left standing",
        unique.len(),
        unrecorded,
        failures.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// kill -9 in the middle of confirmed relays

fn relay_text(i: usize) -> String {
    format!("crash-proof relay {i:05}: deploy window moves to 17:{:02} UTC", i % 60)
}

async fn send_relay(client: &reqwest::Client, base: &str, i: usize) -> Result<(u16, Value), String> {
    let key = ed25519_dalek::SigningKey::from_bytes(&SEED);
    let id = 1_300_000_000_000_000_000u64 + i as u64;
    let admin = ADMINS[i % ADMINS.len()];
    let options = json!([
        {"name": "channel_id", "type": 3, "value": RELAY_CHANNEL.to_string()},
        {"name": "message", "type": 3, "value": relay_text(i)},
        {"name": "confirm", "type": 5, "value": true}
    ]);
    let body = interaction_body(id, "relay-send", admin, options).to_string();
    let ts = now_secs().to_string();
    let sig = discord_signature(&key, &ts, body.as_bytes());
    let res = client
        .post(format!("{base}/discord"))
        .header("content-type", "application/json")
        .header("x-signature-ed25519", sig)
        .header("x-signature-timestamp", ts)
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    Ok((status, res.json::<Value>().await.unwrap_or(Value::Null)))
}

async fn crash(opts: &Opts, work: &Path, v: &mut Verdict) -> Result<(), String> {
    let valinectl = valinectl();
    let discord = FakeDiscord::start().await;
    let data_dir = work.join("data");
    let env = serve_env(&data_dir, &discord, StoreKind::Embedded, "");
    let port = free_port();
    let log = work.join("serve.log");
    let mut serve = Serve::start(&valinectl, port, &env, &log).await?;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(|e| e.to_string())?;
    let relayed =
        |d: &FakeDiscord| d.posts().iter().filter(|c| c.path.contains(&format!("/channels/{RELAY_CHANNEL}/"))).count();

    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..opts.concurrency {
        let (next, client, base, count) = (next.clone(), client.clone(), serve.base.clone(), opts.count);
        workers.push(tokio::spawn(async move {
            let (mut ok, mut cut) = (0usize, 0usize);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                match send_relay(&client, &base, i).await {
                    Ok((200, _)) => ok += 1,
                    Ok((status, body)) => return Err(format!("relay {i} answered {status}: {body}")),
                    Err(_) => cut += 1,
                }
            }
            Ok((ok, cut))
        }));
    }
    // Kill when about half are out.
    let started = Instant::now();
    while relayed(&discord) < opts.count / 2 && started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let at_kill = relayed(&discord);
    serve.kill9();
    let (mut ok, mut cut) = (0, 0);
    for w in workers {
        match w.await.map_err(|e| e.to_string())? {
            Ok((o, c)) => {
                ok += o;
                cut += c;
            }
            Err(e) => v.check(false, || e),
        }
    }
    let posted_before_restart = relayed(&discord);
    println!(
        "crash: kill -9 after {at_kill} of {} relays were posted; {ok} answered 200, {cut} got no answer (in flight at the kill, or sent to the dead server); {posted_before_restart} posted in all",
        opts.count
    );

    // Restart on the same data directory: it must come up ready and relay again.
    let restarted = Instant::now();
    let mut serve = Serve::start(&valinectl, port, &env, &log).await.map_err(|e| format!("restart: {e}"))?;
    let ready = client.get(format!("{}/health/ready", serve.base)).send().await.map_err(|e| e.to_string())?;
    let ready_status = ready.status().as_u16();
    let ready_body = ready.text().await.unwrap_or_default();
    v.check(ready_status == 200, || format!("after the restart /health/ready answered {ready_status}: {ready_body}"));
    let restart_ms = restarted.elapsed().as_millis();
    let after = opts.count + 1;
    match send_relay(&client, &serve.base, after).await {
        Ok((200, body)) => v.check(body.to_string().contains("Sent to"), || format!("relay after the restart: {body}")),
        other => v.check(false, || format!("relay after the restart: {other:?}")),
    }
    serve.stop();

    // Every message Discord received has its intent record.
    let stores =
        open_store(&data_dir, StoreKind::Embedded, "").await.map_err(|e| format!("store after the crash: {e}"))?;
    let mut records = Vec::new();
    for admin in ADMINS {
        records.extend(stores.audit.by_user(&admin.to_string(), 1000).await.map_err(|e| e.to_string())?);
    }
    let digests = |result: AuditResult| -> HashSet<String> {
        records.iter().filter(|r| r.result == result).filter_map(|r| r.message_digest.clone()).collect()
    };
    let pending = digests(AuditResult::Pending);
    let posted = digests(AuditResult::Posted);
    let received: Vec<String> = discord
        .posts()
        .into_iter()
        .filter(|c| c.path.contains(&format!("/channels/{RELAY_CHANNEL}/")))
        .filter_map(|c| c.body["content"].as_str().map(str::to_string))
        .collect();
    let mut without_intent = 0;
    let mut without_outcome = 0;
    for text in &received {
        let d = MessageDigest::compute(AUDIT_KEY.as_bytes(), text).hex().to_string();
        if !pending.contains(&d) {
            without_intent += 1;
            v.check(false, || format!("posted without an intent record: {text:?}"));
        }
        if !posted.contains(&d) {
            without_outcome += 1;
        }
    }
    let distinct: HashSet<&String> = received.iter().collect();
    v.check(distinct.len() == received.len(), || {
        format!("{} texts posted more than once", received.len() - distinct.len())
    });
    println!(
        "  restart: ready in {restart_ms} ms (/health/ready {ready_status}), relays again; audit: {} records, {} intents, {} outcomes `posted`",
        records.len(),
        pending.len(),
        posted.len()
    );
    println!(
        "  {} messages received by Discord: {} without an intent record, {} posted but cut off before their outcome record (lone `pending`), {} intents never posted",
        received.len(),
        without_intent,
        without_outcome,
        pending.len().saturating_sub(received.len() - without_intent)
    );
    Ok(())
}

/// Waits (at most 120 s) until serve's `/health/ready` answers 200 with a store round trip under
/// 100 ms three times in a row; answers how long that took, in ms.
async fn settle(client: &reqwest::Client, base: &str) -> u64 {
    let started = Instant::now();
    let mut calm = 0;
    while started.elapsed() < Duration::from_secs(120) {
        if let Ok(r) = client.get(format!("{base}/health/ready")).send().await {
            let ok = r.status().as_u16() == 200;
            let body = r.json::<Value>().await.unwrap_or(Value::Null);
            if ok && body["checks"]["store"]["latency_ms"].as_u64().is_some_and(|ms| ms < 100) {
                calm += 1;
                if calm >= 3 {
                    break;
                }
            } else {
                calm = 0;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let waited = started.elapsed().as_millis() as u64;
    // Three calm probes take at least 400 ms; report only a real wait.
    if waited < 1000 { 0 } else { waited }
}

/// What the fake Discord received, for a look after a failed run.
fn dump_calls(discord: &FakeDiscord, work: &Path) {
    let calls: Vec<Value> = discord
        .calls()
        .into_iter()
        .map(|c| json!({"method": c.method, "path": c.path, "created_id": c.created_id.to_string(), "body": c.body}))
        .collect();
    let _ = std::fs::write(work.join("discord-calls.json"), serde_json::to_string_pretty(&calls).unwrap_or_default());
}

/// The release `valinectl`, built if needed; `VALINECTL_BIN` names another build instead.
fn valinectl() -> PathBuf {
    std::env::var_os("VALINECTL_BIN").map_or_else(|| release_binary("valinectl", "valinectl"), PathBuf::from)
}

fn work_dir(mode: &str) -> PathBuf {
    std::env::temp_dir().join(format!("valine-{mode}-{}", std::process::id()))
}

#[tokio::main]
async fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("burst: {e}");
            return ExitCode::from(2);
        }
    };
    let work = work_dir(if opts.crash { "crash" } else { "burst" });
    if let Err(e) = std::fs::create_dir_all(&work) {
        eprintln!("burst: {}: {e}", work.display());
        return ExitCode::FAILURE;
    }
    let mut verdict = Verdict::default();
    let run =
        if opts.crash { crash(&opts, &work, &mut verdict).await } else { burst(&opts, &work, &mut verdict).await };
    if let Err(e) = &run {
        verdict.check(false, || e.clone());
    }
    if verdict.0.is_empty() {
        println!("all checks passed");
        let _ = std::fs::remove_dir_all(&work);
        ExitCode::SUCCESS
    } else {
        println!("{} violation(s); serve's log and data kept in {}", verdict.0.len(), work.display());
        ExitCode::FAILURE
    }
}
