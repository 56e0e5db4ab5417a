//! The runtime half of the deploy rehearsal (`scripts/rehearse.py` is the other half): one stage's
//! functions, as `sam build` built them, under our Lambda Runtime API with exactly the
//! environment the translated template gives them, the credentials of a principal holding exactly
//! their role's policies on moto (IAM enforced), and a realistic sequence of events. It writes
//! what happened as JSON for the script, which checks it against the template.
//!
//! `rehearse PLAN.json` (the script writes the plan). Exit 0 when every step answered as
//! expected; the results file lists each check either way.

// Test tool (valine-e2e): the no-panic lints hold for production code only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use valine_domain::clock::now_secs;
use valine_domain::signing::{discord_signature, github_signature};
use valine_e2e::{FakeDiscord, FakeGitHub, Function, Outcome, RuntimeApi, http_api_event};

#[derive(Debug, Deserialize)]
struct Plan {
    stage: String,
    /// moto's endpoint: DynamoDB and Secrets Manager.
    moto: String,
    region: String,
    secret_id: String,
    /// An operator allowed to rotate the secret.
    operator: Creds,
    /// The Discord application's signing key seed (its public key is in the secret), hex.
    seed_hex: String,
    webhook_secret: String,
    rotated_webhook_secret: String,
    /// The stage's repository, guild and alert channel, from its parameters.
    repo: String,
    guild_id: u64,
    functions: Vec<FunctionPlan>,
    results: PathBuf,
    log_dir: PathBuf,
}

#[derive(Debug, Deserialize)]
struct FunctionPlan {
    /// `discord` or `github`.
    handler: String,
    binary: PathBuf,
    function_name: String,
    /// What the API and the schedule invoke: the `live` alias.
    alias_arn: String,
    /// Exactly the translated template's environment for this function.
    env: BTreeMap<String, String>,
    credentials: Creds,
}

#[derive(Debug, Clone, Deserialize)]
struct Creds {
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    session_token: Option<String>,
}

#[derive(Debug, Serialize)]
struct Check {
    function: String,
    step: String,
    ok: bool,
    detail: String,
}

#[derive(Debug, Default, Serialize)]
struct Results {
    stage: String,
    checks: Vec<Check>,
    /// Each deferred job's invocation: `(function as named, qualifier)`.
    job_invocations: Vec<(String, Option<String>)>,
    /// `/health/ready` answers that were not 200, by handler.
    not_ready: BTreeMap<String, Value>,
    /// Log lines that name an access refusal.
    access_denied: Vec<String>,
}

impl Results {
    fn check(&mut self, function: &str, step: &str, ok: bool, detail: impl Into<String>) {
        let detail = detail.into();
        println!(
            "  [{}] {function}: {step}{}",
            if ok { "ok" } else { "FAIL" },
            if ok { String::new() } else { format!(": {detail}") }
        );
        self.checks.push(Check { function: function.into(), step: step.into(), ok, detail });
    }

    fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok) && self.access_denied.is_empty() && self.not_ready.is_empty()
    }
}

/// The environment the rehearsal adds to the template's: the Lambda runtime's own variables,
/// the function's credentials, and where AWS and the chat and code hosts are on this machine.
fn runtime_env(f: &FunctionPlan, plan: &Plan, discord: &FakeDiscord, github: &FakeGitHub) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = f.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    env.push(("AWS_ACCESS_KEY_ID".into(), f.credentials.access_key_id.clone()));
    env.push(("AWS_SECRET_ACCESS_KEY".into(), f.credentials.secret_access_key.clone()));
    if let Some(t) = &f.credentials.session_token {
        env.push(("AWS_SESSION_TOKEN".into(), t.clone()));
    }
    env.push(("AWS_REGION".into(), plan.region.clone()));
    env.push(("AWS_ENDPOINT_URL".into(), plan.moto.clone()));
    env.push(("DISCORD_API_BASE".into(), discord.base()));
    env.push(("GITHUB_API_BASE".into(), github.base()));
    env
}

fn start(f: &FunctionPlan, runtime: &RuntimeApi, env: &[(String, String)], log: &Path) -> Function {
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    Function::start(&f.binary, runtime, &f.function_name, &env, log)
}

async fn answer(runtime: &RuntimeApi, event: Value) -> Result<(u16, Value), String> {
    match runtime.invoke(event, Duration::from_secs(30)).await {
        Some(Outcome::Response(r)) => {
            let status = r["statusCode"].as_u64().unwrap_or(0) as u16;
            let body = match r["body"].as_str() {
                Some(text) => serde_json::from_str(text).unwrap_or(Value::String(text.to_string())),
                None => r.clone(),
            };
            Ok((status, body))
        }
        Some(Outcome::Error(e)) => Err(format!("the function failed: {e}")),
        None => Err("no answer within 30 s".into()),
    }
}

/// Waits until `ready` holds (at most `within`).
async fn wait_until(within: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        if ready() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ready()
}

fn signing_key(plan: &Plan) -> Result<ed25519_dalek::SigningKey, String> {
    let mut seed = [0u8; 32];
    hex_decode(&plan.seed_hex, &mut seed)?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

fn hex_decode(text: &str, out: &mut [u8; 32]) -> Result<(), String> {
    if text.len() != 64 {
        return Err("the seed is not 64 hex characters".into());
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2).unwrap_or("zz"), 16).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn discord_event(key: &ed25519_dalek::SigningKey, body: &Value) -> Value {
    let body = body.to_string();
    let ts = now_secs().to_string();
    let sig = discord_signature(key, &ts, body.as_bytes());
    http_api_event(
        "POST",
        "/discord",
        &[("X-Signature-Ed25519", sig), ("X-Signature-Timestamp", ts), ("Content-Type", "application/json".into())],
        body.as_bytes(),
        false,
    )
}

fn command(id: u64, name: &str, guild_id: u64, options: Value) -> Value {
    valine_domain::signing::InteractionBuilder::command(name, options)
        .id(id)
        .token(&format!("rehearsal-token-{id}"))
        .user(1_300_000_000_000_000_042, "oncall")
        .member_of(guild_id, &[])
        .channel(1_300_000_000_000_000_099)
        .body()
}

fn delivery(secret: &str, event: &str, id: &str, body: &Value) -> Value {
    let body = body.to_string();
    http_api_event(
        "POST",
        "/github/webhook",
        &[
            ("X-GitHub-Event", event.to_string()),
            ("X-GitHub-Delivery", id.to_string()),
            ("X-Hub-Signature-256", github_signature(secret, body.as_bytes())),
            ("Content-Type", "application/json".into()),
        ],
        body.as_bytes(),
        false,
    )
}

fn workflow_run(repo: &str, run_id: u64, run_number: u64, conclusion: &str) -> Value {
    named_run(repo, "CI", run_id, run_number, conclusion)
}

/// A completed run of the workflow `name` (its file `name`.yml).
fn named_run(repo: &str, name: &str, run_id: u64, run_number: u64, conclusion: &str) -> Value {
    let workflow_id = if name == "CI" { 1 } else { run_id };
    let path =
        if name == "CI" { ".github/workflows/ci.yml".to_string() } else { format!(".github/workflows/{name}.yml") };
    json!({
        "action": "completed",
        "workflow_run": {
            "id": run_id, "name": name, "workflow_id": workflow_id, "run_number": run_number, "run_attempt": 1,
            "head_branch": "main", "head_sha": format!("{run_id:040x}"), "event": "push",
            "status": "completed", "conclusion": conclusion,
            "html_url": format!("https://github.com/{repo}/actions/runs/{run_id}"),
            "created_at": "2026-12-03T10:00:00Z", "updated_at": "2026-12-03T10:05:00Z", "run_started_at": "2026-12-03T10:00:05Z",
            "actor": {"login": "octocat"}, "triggering_actor": {"login": "octocat"},
            "head_commit": {"id": format!("{run_id:040x}"), "message": "Change the checkout", "author": {"name": "Octo Cat"}}
        },
        "workflow": {"id": workflow_id, "name": name, "path": path},
        "repository": {"full_name": repo, "name": repo.split('/').nth(1).unwrap_or(repo), "owner": {"login": repo.split('/').next().unwrap_or(repo)}},
        "sender": {"login": "octocat"}
    })
}

fn deployment_failure(repo: &str) -> Value {
    json!({
        "action": "created",
        "deployment_status": {"id": 901, "state": "failure", "environment": "production",
            "target_url": format!("https://github.com/{repo}/actions/runs/950"), "created_at": "2026-12-03T10:06:00Z",
            "description": "Deploy failed"},
        "deployment": {"id": 900, "sha": "ab".repeat(20), "ref": "main", "environment": "production",
            "created_at": "2026-12-03T10:02:00Z", "creator": {"login": "octocat"}},
        "repository": {"full_name": repo},
        "sender": {"login": "octocat"}
    })
}

fn scheduled_event(plan: &Plan) -> Value {
    json!({
        "version": "0", "id": "b3f0c9a2-0000-4000-8000-000000000001", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-12-03T10:10:00Z", "region": plan.region,
        "resources": [format!("arn:aws:events:{}:123456789012:rule/valine-tick-{}", plan.region, plan.stage)], "detail": {}
    })
}

/// The log lines that show an access refusal by AWS.
fn access_denied(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            l.contains("AccessDenied") || l.contains("not authorized to perform") || l.contains("UnrecognizedClient")
        })
        .map(|l| l.chars().take(400).collect())
        .collect()
}

async fn rehearse_discord(plan: &Plan, f: &FunctionPlan, results: &mut Results) -> Result<(), String> {
    let name = "discord-handler";
    let discord = FakeDiscord::start().await;
    let github = FakeGitHub::start().await;
    let runtime = RuntimeApi::start_as(&f.alias_arn).await;
    let log = plan.log_dir.join(format!("{}-discord.log", plan.stage));
    let _function = start(f, &runtime, &runtime_env(f, plan, &discord, &github), &log);
    let key = signing_key(plan)?;

    let (status, body) = answer(&runtime, http_api_event("GET", "/health/ready", &[], b"", false)).await?;
    if status != 200 {
        results.not_ready.insert(name.into(), body.clone());
    }
    results.check(name, "GET /health/ready is 200", status == 200, body.to_string());

    let ping = json!({"id": "1300000000000000001", "application_id": "1290463189401731073", "type": 1, "token": "t", "version": 1});
    let (status, body) = answer(&runtime, discord_event(&key, &ping)).await?;
    results.check(name, "PING answers PONG", (status, &body) == (200, &json!({"type": 1})), format!("{status} {body}"));

    let status_cmd = command(1_300_000_000_000_000_002, "status", plan.guild_id, json!([]));
    let (status, body) = answer(&runtime, discord_event(&key, &status_cmd)).await?;
    let shown = body["type"] == 4 && body["data"]["embeds"][0]["title"] == "CI";
    results.check(
        name,
        "/status answers with the workflow's embed",
        status == 200 && shown,
        format!("{status} {body}"),
    );

    let diagnose = command(1_300_000_000_000_000_003, "diagnose", plan.guild_id, json!([]));
    let (status, body) = answer(&runtime, discord_event(&key, &diagnose)).await?;
    results.check(name, "/diagnose defers", (status, &body) == (200, &json!({"type": 5})), format!("{status} {body}"));
    let dispatched = wait_until(Duration::from_secs(20), || {
        github.calls().iter().any(|c| c.method == "POST" && c.path.ends_with("/dispatches"))
            && discord.calls().iter().any(|c| c.method == "PATCH" && c.path.contains("/messages/@original"))
    })
    .await;
    results.check(
        name,
        "the /diagnose job dispatched the workflow and edited the answer",
        dispatched,
        format!(
            "GitHub saw {:?}",
            github.calls().iter().map(|c| format!("{} {}", c.method, c.path)).collect::<Vec<_>>()
        ),
    );
    let targets = runtime.invoke_targets().await;
    results.check(name, "one job invocation", targets.len() == 1, format!("{targets:?}"));
    results.job_invocations.extend(targets);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    results.access_denied.extend(access_denied(&text));
    Ok(())
}

async fn rehearse_github(plan: &Plan, f: &FunctionPlan, results: &mut Results) -> Result<(), String> {
    let name = "github-handler";
    let discord = FakeDiscord::start().await;
    let github = FakeGitHub::start().await;
    let runtime = RuntimeApi::start_as(&f.alias_arn).await;
    let log = plan.log_dir.join(format!("{}-github.log", plan.stage));
    let _function = start(f, &runtime, &runtime_env(f, plan, &discord, &github), &log);
    let secret = plan.webhook_secret.as_str();
    let run = |id: &str| format!("rehearsal-{}-{id}-{}", plan.stage, now_secs());

    let (status, body) = answer(&runtime, http_api_event("GET", "/github/health/ready", &[], b"", false)).await?;
    if status != 200 {
        results.not_ready.insert(name.into(), body.clone());
    }
    results.check(name, "GET /github/health/ready is 200", status == 200, body.to_string());

    let (status, body) =
        answer(&runtime, delivery(secret, "ping", &run("ping"), &json!({"zen": "Design for failure.", "hook_id": 1})))
            .await?;
    results.check(name, "ping is 200", status == 200, format!("{status} {body}"));

    let failure_id = run("failure");
    let failure = workflow_run(&plan.repo, 5_001, 10, "failure");
    let (status, body) = answer(&runtime, delivery(secret, "workflow_run", &failure_id, &failure)).await?;
    let posted = discord.posts().len();
    results.check(
        name,
        "a workflow_run failure opens an incident (200 ok, one message)",
        status == 200 && body["status"] == "ok" && posted == 1,
        format!("{status} {body}; {posted} message(s) posted"),
    );
    let (status, body) = answer(&runtime, delivery(secret, "workflow_run", &failure_id, &failure)).await?;
    results.check(
        name,
        "the same delivery again is a duplicate",
        status == 200 && body["status"] == "duplicate",
        format!("{status} {body}"),
    );
    let success = workflow_run(&plan.repo, 5_002, 11, "success");
    let (status, body) = answer(&runtime, delivery(secret, "workflow_run", &run("success"), &success)).await?;
    let resolved = discord.calls().iter().any(|c| c.method == "PATCH" && c.path.contains("/channels/"));
    results.check(
        name,
        "a newer success resolves it (200 ok, the message edited)",
        status == 200 && body["status"] == "ok" && resolved,
        format!("{status} {body}"),
    );
    let (status, body) =
        answer(&runtime, delivery(secret, "deployment_status", &run("deploy"), &deployment_failure(&plan.repo)))
            .await?;
    results.check(
        name,
        "a deployment_status failure is 200 ok",
        status == 200 && body["status"] == "ok",
        format!("{status} {body}"),
    );
    let (status, body) = answer(&runtime, scheduled_event(plan)).await?;
    let errors = body["errors"].as_array().map_or(1, Vec::len);
    results.check(
        name,
        "the scheduled tick runs without errors",
        body["tick"] == "done" && errors == 0,
        format!("{status} {body}"),
    );

    // Rotation: `put-secret-value` and nothing else; the next delivery signed with the new
    // secret verifies, one signed with the old does not.
    rotate(plan).await?;
    tokio::time::sleep(valine_service::secrets::REFUSAL_GAP + Duration::from_millis(500)).await;
    let ping = json!({"zen": "Keep it logically awesome.", "hook_id": 1});
    let (status, body) =
        answer(&runtime, delivery(&plan.rotated_webhook_secret, "ping", &run("rotated"), &ping)).await?;
    results.check(
        name,
        "after put-secret-value, a delivery signed with the new secret is 200",
        status == 200,
        format!("{status} {body}"),
    );
    let (status, body) = answer(&runtime, delivery(secret, "ping", &run("old"), &ping)).await?;
    results.check(name, "and one signed with the old secret is 401", status == 401, format!("{status} {body}"));

    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    results.access_denied.extend(access_denied(&text));
    Ok(())
}

/// Cards Discord refuses for its rate limit: the function answers every delivery 200, the cards
/// wait in the outbox, and the drain it starts (itself invoked on the alias it came through,
/// which the script checks its role allows) posts them all, once each.
async fn rehearse_drain(plan: &Plan, f: &FunctionPlan, results: &mut Results) -> Result<(), String> {
    const STORM: u64 = 8;
    const LIMIT: u32 = 5;
    let name = "github-handler";
    let discord = FakeDiscord::start_limited(LIMIT, Duration::from_secs(5)).await;
    let github = FakeGitHub::start().await;
    let runtime = RuntimeApi::start_as(&f.alias_arn).await;
    let log = plan.log_dir.join(format!("{}-github-drain.log", plan.stage));
    let _function = start(f, &runtime, &runtime_env(f, plan, &discord, &github), &log);
    // After the rotation step: the stage's secret holds the rotated value.
    let secret = plan.rotated_webhook_secret.as_str();
    let stamp = now_secs();

    let mut answers = Vec::new();
    for i in 0..STORM {
        let run_id = 7_000 + i;
        let body = named_run(&plan.repo, &format!("rehearsal-storm-{stamp}-{i}"), run_id, 1, "failure");
        let id = format!("rehearsal-{}-storm-{stamp}-{i}", plan.stage);
        let (status, answer) = answer(&runtime, delivery(secret, "workflow_run", &id, &body)).await?;
        answers.push((status, answer));
    }
    let refused: Vec<String> = answers
        .iter()
        .filter(|(status, body)| *status != 200 || body["status"] != "ok")
        .map(|(status, body)| format!("{status} {body}"))
        .collect();
    results.check(
        name,
        &format!("{STORM} failures at once on one channel limited to {LIMIT} per 5 s are all answered 200 ok"),
        refused.is_empty(),
        refused.join("; "),
    );
    let cards = |d: &FakeDiscord| d.posts().iter().filter(|c| c.body.get("message_reference").is_none()).count();
    let all_posted = wait_until(Duration::from_secs(30), || cards(&discord) >= STORM as usize).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let posted = cards(&discord);
    results.check(
        name,
        "the outbox drain posts every card once",
        all_posted && posted == STORM as usize,
        format!("{posted} of {STORM} cards posted; {} requests refused 429", discord.rate_limited()),
    );
    let targets = runtime.invoke_targets().await;
    results.check(name, "a drain was invoked", !targets.is_empty(), format!("{targets:?}"));
    results.job_invocations.extend(targets);

    let text = std::fs::read_to_string(&log).unwrap_or_default();
    results.access_denied.extend(access_denied(&text));
    Ok(())
}

/// Writes the rotated webhook secret into the stage's secret, as the RUNBOOK's rotation does.
async fn rotate(plan: &Plan) -> Result<(), String> {
    let creds = aws_sdk_secretsmanager::config::Credentials::new(
        &plan.operator.access_key_id,
        &plan.operator.secret_access_key,
        plan.operator.session_token.clone(),
        None,
        "rehearsal-operator",
    );
    let sdk = valine_store::dynamo::sdk_loader()
        .region(aws_config::Region::new(plan.region.clone()))
        .endpoint_url(&plan.moto)
        .credentials_provider(creds)
        .load()
        .await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let current = client
        .get_secret_value()
        .secret_id(&plan.secret_id)
        .send()
        .await
        .map_err(|e| format!("read the secret: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(&e)))?;
    let mut doc: serde_json::Map<String, Value> =
        serde_json::from_str(current.secret_string().unwrap_or("{}")).map_err(|e| e.to_string())?;
    doc.insert("GITHUB_WEBHOOK_SECRET".into(), json!(plan.rotated_webhook_secret));
    client
        .put_secret_value()
        .secret_id(&plan.secret_id)
        .secret_string(Value::Object(doc).to_string())
        .send()
        .await
        .map_err(|e| format!("put-secret-value: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(&e)))?;
    Ok(())
}

async fn run(plan_path: &Path) -> Result<bool, String> {
    let text = std::fs::read_to_string(plan_path).map_err(|e| format!("{}: {e}", plan_path.display()))?;
    let plan: Plan = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", plan_path.display()))?;
    let mut results = Results { stage: plan.stage.clone(), ..Results::default() };
    println!("stage {}: the built functions under the Runtime API, on moto with IAM enforced", plan.stage);
    for f in &plan.functions {
        let outcome = match f.handler.as_str() {
            "discord" => rehearse_discord(&plan, f, &mut results).await,
            "github" => match rehearse_github(&plan, f, &mut results).await {
                Ok(()) => rehearse_drain(&plan, f, &mut results).await,
                Err(e) => Err(e),
            },
            other => Err(format!("unknown handler {other}")),
        };
        if let Err(e) = outcome {
            results.check(&f.handler, "the sequence ran", false, e);
        }
    }
    if !results.access_denied.is_empty() {
        println!("  [FAIL] {} log line(s) name an access refusal (listed below)", results.access_denied.len());
    }
    let passed = results.passed();
    let json = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
    std::fs::write(&plan.results, json).map_err(|e| format!("{}: {e}", plan.results.display()))?;
    Ok(passed)
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(plan) = std::env::args().nth(1) else {
        eprintln!("usage: rehearse PLAN.json (scripts/rehearse.py writes it)");
        return ExitCode::from(2);
    };
    match run(Path::new(&plan)).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("rehearse: {e}");
            ExitCode::from(2)
        }
    }
}
