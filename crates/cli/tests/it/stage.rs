//! `--stage`: the look-ups read the tables a deployed stage's CloudFormation stack names, and
//! `tick --stage` invokes the stage's GitHub function.
//!
//! The look-ups run against moto's server at `AWS_ENDPOINT_URL`, which hosts CloudFormation,
//! DynamoDB and CloudWatch Logs: each test creates a small stack (the template's three tables and
//! the outputs) under a stage name of its own, writes through the store, and runs the built
//! `valinectl`. Without `AWS_ENDPOINT_URL` they skip with a message, unless
//! `VALINE_REQUIRE_DYNAMODB=1` (set by `.ci/run`), where that fails the run. The tick tests need
//! no server: CloudFormation and Lambda are wiremock.

use std::process::Stdio;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use valine_clients::testing::fail_on_unexpected;
use valine_domain::audit::{AuditRecord, AuditResult, MessageDigest};
use valine_domain::clock::{now_millis, now_secs};
use valine_domain::incident::{IncidentKey, Observation, Order, Outcome, Policy, RunRef, decide};
use valine_domain::trace::{Step, StepStatus, Trace};
use valine_store::Stores;
use valine_store::dynamo::{DynamoStore, TableNames};
use wiremock::matchers::{body_partial_json, body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const HMAC_KEY: &str = "5f3a9c0e7b1d4a6f8e2c0b9d7a5e3c1f9b7d5a3e1c0f8e6d4b2a0c9e7f5d3b1a";

/// moto's server, or `None` (with a message) when this machine has none.
fn moto_endpoint() -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(e) if !e.is_empty() => Some(e),
        _ => {
            assert!(
                std::env::var("VALINE_REQUIRE_DYNAMODB").as_deref() != Ok("1"),
                "VALINE_REQUIRE_DYNAMODB=1 but AWS_ENDPOINT_URL is not set: the --stage tests must run"
            );
            eprintln!(
                "skipping: set AWS_ENDPOINT_URL to moto's server (scripts/moto-dynamodb.py) to run the --stage \
                 look-up tests"
            );
            None
        }
    }
}

async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    valine_store::dynamo::sdk_loader()
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "stage-test"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// A stage deployed on moto: a stack with the template's tables and the outputs valinectl reads.
struct MotoStage {
    endpoint: String,
    name: String,
    sdk: aws_config::SdkConfig,
    stores: Stores,
}

impl MotoStage {
    async fn deploy(endpoint: String) -> Self {
        let name = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let sdk = sdk(&endpoint).await;
        let template = format!(
            "Parameters:\n  Stage:\n    Type: String\nResources:\n{}\nOutputs:\n\
             \x20 AuditTableName:\n    Value: !Ref AuditTable\n\
             \x20 RunsTableName:\n    Value: !Ref RunsTable\n\
             \x20 StateTableName:\n    Value: !Ref StateTable\n\
             \x20 DiscordFunctionName:\n    Value: !Sub valine-orchestrator-discord-${{Stage}}\n\
             \x20 GitHubFunctionName:\n    Value: !Sub valine-orchestrator-github-${{Stage}}\n",
            valine_store::schema::cloudformation_tables()
        );
        aws_sdk_cloudformation::Client::new(&sdk)
            .create_stack()
            .stack_name(format!("valine-orchestrator-{name}"))
            .template_body(template)
            .parameters(
                aws_sdk_cloudformation::types::Parameter::builder()
                    .parameter_key("Stage")
                    .parameter_value(&name)
                    .build(),
            )
            .send()
            .await
            .expect("create the stack on moto");
        let tables = TableNames {
            audit: format!("valine-orchestrator-audit-{name}"),
            runs: format!("valine-orchestrator-runs-{name}"),
            state: format!("valine-orchestrator-state-{name}"),
        };
        let store = DynamoStore::from_client(aws_sdk_dynamodb::Client::new(&sdk), tables);
        let stores = Stores::from_adapter(Arc::new(store), "dynamodb");
        Self { endpoint, name, sdk, stores }
    }

    /// Runs valinectl with a local store configured (STORE=embedded, an empty DATA_DIR) that
    /// `--stage` must ignore.
    async fn valinectl(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
        let data = tempfile::tempdir().unwrap();
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_valinectl"));
        command
            .args(args)
            .env_clear()
            .env("STORE", "embedded")
            .env("DATA_DIR", data.path())
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", data.path().join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", data.path().join("none"))
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or("").as_bytes()).await.unwrap();
        drop(input);
        let output = child.wait_with_output().await.unwrap();
        Run {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit ok: {}\n--- stdout\n{}\n--- stderr\n{}", self.ok, self.stdout, self.stderr)
    }
}

/// An open incident: CI failing on main of acme/web, in channel 9.
fn open_incident() -> valine_domain::incident::Incident {
    let now = now_secs();
    let observation = Observation {
        workflow_file: Default::default(),
        key: IncidentKey::workflow(9, "acme/web", "CI", "main"),
        outcome: Outcome::Failure,
        run: RunRef {
            order: Order::new(41, 1),
            run_number: 41,
            completed_at: now - 120,
            conclusion: "failure".into(),
            ..RunRef::default()
        },
    };
    decide(None, &observation, now - 60, Policy::default()).next.unwrap()
}

#[tokio::test]
async fn incidents_and_audit_read_the_stage_the_stack_names_not_the_local_store() {
    let Some(endpoint) = moto_endpoint() else { return };
    let stage = MotoStage::deploy(endpoint).await;
    let incident = open_incident();
    stage.stores.incidents.put_incident(&incident).await.unwrap();
    let digest = MessageDigest::compute(HMAC_KEY.as_bytes(), "deploy at 5");
    let record = AuditRecord::new("t-stage-1", 80351110224678912, "/relay-send", AuditResult::Posted)
        .target("#ops")
        .with_digest(&digest);
    stage.stores.audit.append(&record).await.unwrap();
    let s = stage.name.as_str();

    let run = stage.valinectl(&["incidents", "--stage", s, "--json"], &[], None).await;
    assert!(run.ok, "{run}");
    let report: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run}"));
    let shown = &report["incidents"][0];
    assert_eq!(shown["repository"], "acme/web", "{run}");
    assert_eq!(shown["workflow"], "CI", "{run}");
    assert_eq!(shown["open"], true, "{run}");
    assert!(
        run.stderr.contains(&format!(
            "stage {s}: stack valine-orchestrator-{s} (CREATE_COMPLETE), tables valine-orchestrator-audit-{s}, \
             valine-orchestrator-runs-{s}, valine-orchestrator-state-{s}"
        )),
        "{run}"
    );
    let run = stage.valinectl(&["incidents", "--stage", s], &[], None).await;
    assert!(run.ok && run.stdout.contains("acme/web CI on main"), "{run}");

    // Without --stage: the local store, as before (empty here).
    let run = stage.valinectl(&["incidents"], &[], None).await;
    assert!(run.ok && run.stdout.contains("No incidents."), "{run}");

    let id = record.audit_id.as_str();
    let run = stage.valinectl(&["audit", "show", id, "--stage", s], &[], None).await;
    assert!(run.ok, "{run}");
    let shown: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run}"));
    assert_eq!(shown["audit_id"], id);
    assert_eq!(shown["command"], "/relay-send");

    // --stage before the action works as well.
    let run = stage.valinectl(&["audit", "--stage", s, "user", "80351110224678912"], &[], None).await;
    assert!(run.ok && run.stdout.contains(id) && run.stdout.contains("posted"), "{run}");

    let key = [("AUDIT_HMAC_KEY", HMAC_KEY)];
    let run = stage.valinectl(&["audit", "verify", id, "--stage", s], &key, Some("deploy at 5\n")).await;
    assert!(run.ok && run.stdout.contains(&format!("match: this is the text record {id} was made from")), "{run}");
    let run = stage.valinectl(&["audit", "verify", id, "--stage", s], &key, Some("deploy at 6\n")).await;
    assert!(!run.ok && run.stderr.contains("no match"), "{run}");

    let run = stage.valinectl(&["audit", "show", id], &[], None).await;
    assert!(!run.ok && run.stderr.contains(&format!("no audit record {id}")), "the local store has none: {run}");
}

#[tokio::test]
async fn outbox_reads_the_stage_table_not_the_local_store() {
    let Some(endpoint) = moto_endpoint() else { return };
    let stage = MotoStage::deploy(endpoint).await;
    let s = stage.name.as_str();
    let run = stage.valinectl(&["outbox", "--stage", s], &[], None).await;
    assert!(run.ok && run.stdout == "Nothing waits: the outbox is empty.\n", "{run}");

    let seeded = super::outbox::seed(&stage.stores).await;
    let text = stage.valinectl(&["outbox", "--stage", s], &[], None).await;
    assert!(text.ok, "{text}");
    assert!(text.stderr.contains(&format!("stage {s}: stack valine-orchestrator-{s}")), "{text}");
    let json = stage.valinectl(&["outbox", "--json", "--stage", s], &[], None).await;
    assert!(json.ok, "{json}");
    super::outbox::assert_listing(&text.stdout, &json.stdout, &seeded);

    // Without --stage: the local store (empty here).
    let run = stage.valinectl(&["outbox"], &[], None).await;
    assert!(run.ok && run.stdout.contains("the outbox is empty"), "{run}");
}

#[tokio::test]
async fn trace_reads_the_stage_table_and_the_log_groups_of_its_functions() {
    let Some(endpoint) = moto_endpoint() else { return };
    let stage = MotoStage::deploy(endpoint).await;
    let s = stage.name.as_str();
    let trace_id = format!("trace-{s}");
    let started = now_millis() - 5_000;
    let trace = Trace {
        trace_id: trace_id.clone(),
        user_id: "42".into(),
        command: "/status".into(),
        started_at_ms: started,
        duration_ms: 40,
        steps: vec![Step {
            name: "github.status".into(),
            started_ms: 10,
            duration_ms: 25,
            status: StepStatus::Ok,
            detail: None,
        }],
        error: None,
        links: vec![],
        correlation_id: None,
    };
    stage.stores.traces.put(&trace).await.unwrap();
    // The GitHub function has logged; the Discord function has no log group yet.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&stage.sdk);
    let group = format!("/aws/lambda/valine-orchestrator-github-{s}");
    logs.create_log_group().log_group_name(&group).send().await.unwrap();
    logs.create_log_stream().log_group_name(&group).log_stream_name("2026/11/22/[live]1").send().await.unwrap();
    let line = |trace: &str, msg: &str| {
        aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
            .timestamp(started as i64 + 20)
            .message(
                json!({"level": "info", "service": "github-handler", "fn": "tick", "trace_id": trace, "msg": msg})
                    .to_string(),
            )
            .build()
            .unwrap()
    };
    logs.put_log_events()
        .log_group_name(&group)
        .log_stream_name("2026/11/22/[live]1")
        .log_events(line(&trace_id, "Alert sent"))
        .log_events(line("another-trace", "not this one"))
        .send()
        .await
        .unwrap();

    let run = stage.valinectl(&["trace", &trace_id, "--stage", s], &[], None).await;
    assert!(run.ok, "{run}");
    for text in [
        format!("trace {trace_id}  /status  user 42"),
        "github.status [ok] 25 ms".into(),
        "github-handler   info tick Alert sent".into(),
        format!("(no log group /aws/lambda/valine-orchestrator-discord-{s}: the function has not logged yet)"),
    ] {
        assert!(run.stdout.contains(&text), "missing {text:?}: {run}");
    }
    assert!(!run.stdout.contains("not this one"), "{run}");

    let run = stage.valinectl(&["trace", "no-such-trace", "--stage", s, "--no-logs"], &[], None).await;
    assert!(!run.ok, "{run}");
    assert!(run.stderr.contains(&format!("no trace no-such-trace in table valine-orchestrator-state-{s}")), "{run}");
}

#[tokio::test]
async fn routes_explain_reads_the_stages_subscriptions() {
    let Some(endpoint) = moto_endpoint() else { return };
    let stage = MotoStage::deploy(endpoint).await;
    let subscription = valine_store::Subscription {
        retry: false,
        channel_id: 333,
        guild_id: None,
        repo: "acme/web".into(),
        workflows: "CI".into(),
        branches: String::new(),
        events: "failures".into(),
        mention_role_id: None,
        created_by: 42,
        created_at: now_secs(),
    };
    stage.stores.routes.put_subscription(&subscription).await.unwrap();
    let delivery = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/routes/workflow_run.json");
    let env = [("GITHUB_REPOS", "acme/*"), ("ENABLE_ALERTS", "true"), ("DRY_RUN", "true")];

    let run = stage
        .valinectl(&["routes", "explain", "--event", "workflow_run", delivery, "--stage", &stage.name], &env, None)
        .await;
    assert!(run.ok, "{run}");
    for text in [
        "1. [subscription by <@42>] acme/web → <#333>: workflows CI, branches *, events failures",
        "MATCHED",
        "<#333>: incident",
        "would post now: yes: a new incident message",
    ] {
        assert!(run.stdout.contains(text), "missing {text:?}: {run}");
    }
    assert!(run.stderr.contains("subscriptions and incidents from the stage's state table"), "{run}");

    // The local store has no subscription: the implicit route.
    let run = stage.valinectl(&["routes", "explain", "--event", "workflow_run", delivery], &env, None).await;
    assert!(run.ok && run.stdout.contains("routes: none subscribed, no ROUTES_FILE: the implicit route"), "{run}");
}

#[tokio::test]
async fn a_stage_that_is_not_deployed_says_to_deploy_it() {
    let Some(endpoint) = moto_endpoint() else { return };
    let stage = MotoStage::deploy(endpoint).await;
    let missing = format!("{}-nowhere", stage.name);
    for args in [
        vec!["incidents", "--stage", missing.as_str()],
        vec!["audit", "show", "x", "--stage", missing.as_str()],
        vec!["tick", "--stage", missing.as_str()],
    ] {
        let run = stage.valinectl(&args, &[], None).await;
        assert!(!run.ok, "{run}");
        assert!(
            run.stderr.contains(&format!(
                "there is no stack valine-orchestrator-{missing} in us-east-1: deploy the stage first \
                 (`sam build && sam deploy --config-env {missing}`), check AWS_REGION, or name the stack with --stack"
            )),
            "{run}"
        );
    }
    // --stack names the stack.
    let run = stage
        .valinectl(
            &["incidents", "--stage", "elsewhere", "--stack", &format!("valine-orchestrator-{}", stage.name)],
            &[],
            None,
        )
        .await;
    assert!(run.ok && run.stdout.contains("No incidents."), "{run}");
    assert!(run.stderr.contains("stage elsewhere: stack valine-orchestrator-"), "{run}");
}

const GITHUB_FUNCTION: &str = "valine-orchestrator-github-dev";
const LIVE_ALIAS_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:valine-orchestrator-github-dev:live";

/// CloudFormation and Lambda as wiremock, for `tick --stage dev`.
struct TickFakes {
    cloudformation: MockServer,
    lambda: MockServer,
}

impl TickFakes {
    async fn start() -> Self {
        let fakes = Self { cloudformation: MockServer::start().await, lambda: MockServer::start().await };
        fail_on_unexpected(&fakes.cloudformation).await;
        fail_on_unexpected(&fakes.lambda).await;
        let output =
            |k: &str, v: &str| format!("<member><OutputKey>{k}</OutputKey><OutputValue>{v}</OutputValue></member>");
        let outputs = [
            output("AuditTableName", "valine-orchestrator-audit-dev"),
            output("RunsTableName", "valine-orchestrator-runs-dev"),
            output("StateTableName", "valine-orchestrator-state-dev"),
            output("GitHubFunctionName", GITHUB_FUNCTION),
            output("GitHubLiveAlias", LIVE_ALIAS_ARN),
        ]
        .concat();
        let xml = format!(
            r#"<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">
  <DescribeStacksResult><Stacks><member>
    <StackName>valine-orchestrator-dev</StackName>
    <StackId>arn:aws:cloudformation:us-east-1:123456789012:stack/valine-orchestrator-dev/1</StackId>
    <CreationTime>2026-11-01T00:00:00Z</CreationTime>
    <StackStatus>UPDATE_COMPLETE</StackStatus>
    <Outputs>{outputs}</Outputs>
  </member></Stacks></DescribeStacksResult>
  <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>
</DescribeStacksResponse>"#
        );
        Mock::given(method("POST"))
            .and(path("/"))
            .and(body_string_contains("Action=DescribeStacks"))
            .and(body_string_contains("StackName=valine-orchestrator-dev"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(xml, "text/xml"))
            .expect(1)
            .named("DescribeStacks")
            .mount(&fakes.cloudformation)
            .await;
        fakes
    }

    /// The one invocation `tick --stage` may make: the live alias, waited for, with the schedule's
    /// event.
    async fn mount_invoke(&self, answer: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path(format!("/2015-03-31/functions/{GITHUB_FUNCTION}/invocations")))
            .and(query_param("Qualifier", "live"))
            .and(header("x-amz-invocation-type", "RequestResponse"))
            .and(body_partial_json(json!({"source": "aws.events", "detail-type": "Scheduled Event",
                "account": "123456789012", "region": "us-east-1", "detail": {}})))
            .respond_with(answer)
            .expect(1)
            .named("Invoke live")
            .mount(&self.lambda)
            .await;
    }

    async fn tick(&self) -> Run {
        let data = tempfile::tempdir().unwrap();
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_valinectl"))
            .args(["tick", "--stage", "dev"])
            .env_clear()
            .env("DATA_DIR", data.path())
            .env("AWS_ENDPOINT_URL", self.cloudformation.uri())
            .env("AWS_ENDPOINT_URL_LAMBDA", self.lambda.uri())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", data.path().join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", data.path().join("none"))
            .output()
            .await
            .unwrap();
        Run {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

#[tokio::test]
async fn tick_with_a_stage_invokes_the_live_alias_with_a_scheduled_event_and_prints_its_answer() {
    let fakes = TickFakes::start().await;
    let answer =
        json!({"tick": "done", "open": 3, "escalated": 1, "calmed": 0, "redelivered": 2, "repaired": 1, "errors": []});
    fakes
        .mount_invoke(ResponseTemplate::new(200).insert_header("x-amz-executed-version", "7").set_body_json(answer))
        .await;

    let run = fakes.tick().await;
    assert!(run.ok, "{run}");
    assert!(run.stdout.contains("valine-orchestrator-github-dev:live, version 7 ran the tick"), "{run}");
    assert!(run.stdout.contains("tick: 3 open, 1 escalated, 0 calmed, 2 redelivered, 1 repaired"), "{run}");
    fakes.cloudformation.verify().await;
    fakes.lambda.verify().await;
    // The event is the schedule's, in full.
    let requests = fakes.lambda.received_requests().await.unwrap();
    let event: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(event["version"], "0");
    assert_eq!(event["resources"], json!([]));
    assert!(event["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{event}");
    assert!(event["id"].as_str().is_some_and(|id| !id.is_empty()), "{event}");
}

#[tokio::test]
async fn tick_with_a_stage_reports_the_functions_failure_and_the_ticks_errors() {
    let fakes = TickFakes::start().await;
    fakes
        .mount_invoke(
            ResponseTemplate::new(200)
                .insert_header("x-amz-function-error", "Unhandled")
                .insert_header("x-amz-executed-version", "8")
                .set_body_json(json!({"errorType": "Runtime.ExitError", "errorMessage": "exited with status 101"})),
        )
        .await;
    let run = fakes.tick().await;
    assert!(!run.ok, "{run}");
    assert!(
        run.stderr.contains("valine-orchestrator-github-dev:live, version 8 failed (Unhandled)")
            && run.stderr.contains("exited with status 101"),
        "{run}"
    );
    fakes.lambda.verify().await;

    // A tick that ran but could not do everything: its errors, and a failing exit.
    let fakes = TickFakes::start().await;
    let answer = json!({"tick": "done", "open": 0, "escalated": 0, "calmed": 0, "redelivered": 0, "repaired": 0,
                        "errors": ["gap filling: set GITHUB_HOOK_ID"]});
    fakes.mount_invoke(ResponseTemplate::new(200).set_body_json(answer)).await;
    let run = fakes.tick().await;
    assert!(!run.ok, "{run}");
    assert!(
        run.stderr.contains("tick: 0 open") && run.stderr.contains("error: gap filling: set GITHUB_HOOK_ID"),
        "{run}"
    );
    fakes.lambda.verify().await;
}
