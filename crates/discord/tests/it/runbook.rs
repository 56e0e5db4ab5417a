//! The Discord handler: the runbook's commands, /deploy-client, /set-frontend, /set-api-base and
//! /verify-latest.

use crate::common::*;
use wiremock::matchers::path_regex;

const DEPLOYER_ROLE: u64 = 806688810598531099;

fn confirm_id(answer: &Value, n: usize) -> String {
    answer["data"]["components"][0]["components"][n]["custom_id"].as_str().unwrap().to_string()
}

async fn mount_edits(discord: &MockServer) {
    Mock::given(method("PATCH"))
        .and(path_regex(r"^/api/v10/webhooks/\d+/[^/]+/messages/@original$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "5", "channel_id": "1"})))
        .mount(discord)
        .await;
}

/// Discord takes the progress edits, and GitHub takes exactly one dispatch of the deploy workflow.
async fn mount_deploy(h: &Harness) {
    mount_edits(&h.discord).await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/widget/actions/workflows/client-deploy.yml/dispatches"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&h.github)
        .await;
}

fn dispatches(requests: &[Request]) -> Vec<Value> {
    requests
        .iter()
        .filter(|r| r.url.path().ends_with("/dispatches"))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn deploy_client_previews_then_dispatches_once_on_the_callers_confirm() {
    let h = Harness::new(&[("DEPLOY_REF", "release")]).await;
    mount_deploy(&h).await;
    let options = json!([opt("api_base", 3, json!("https://api.example.com"))]);
    let (_, preview) = h.send(&command(700, ADMIN, "deploy-client", options)).await;
    assert_eq!(preview["data"]["flags"], 64, "{preview}");
    let shown = preview.to_string();
    assert!(shown.contains("client-deploy.yml") && shown.contains("`release`") && shown.contains("api.example.com"));
    // nothing is dispatched by the preview
    assert!(dispatches(&h.github.received_requests().await.unwrap()).is_empty());

    // someone else's press: refused, audited, the preview stays for its owner
    let (_, foreign) = h.send(&click(701, STRANGER, &confirm_id(&preview, 0))).await;
    assert!(content(&foreign).contains("Only the person who asked"), "{foreign}");

    let (_, pressed) = h.send(&click(702, ADMIN, &confirm_id(&preview, 0))).await;
    assert_eq!(pressed["type"], 7, "{pressed}");
    assert!(content(&pressed).contains("Dispatching `client-deploy.yml` on `release`"), "{pressed}");
    let edits = wait_for(&h.discord, 1, is_edit).await;
    assert!(edits[0].url.path().contains("interaction-token-702"));
    let edit = String::from_utf8_lossy(&edits[0].body).to_string();
    assert!(edit.contains("Deploy client") && edit.contains("Dispatched"), "{edit}");

    let sent = dispatches(&h.github.received_requests().await.unwrap());
    assert_eq!(sent.len(), 1);
    let corr = sent[0]["inputs"]["correlation_id"].as_str().unwrap().to_string();
    assert_eq!(
        sent[0],
        json!({"ref": "release", "inputs": {"correlation_id": corr, "requester": format!("user{ADMIN} ({ADMIN})"), "api_base": "https://api.example.com/", "environment": "production"}})
    );
    let stored = h.app.stores.runs.get_correlation(&corr).await.unwrap().unwrap();
    assert_eq!(stored.kind, valine_store::Followed::Deploy);
    assert_eq!(stored.interaction_token, "interaction-token-702");

    // the same press replayed, and a second press: nothing more is dispatched
    let (_, replay) = h.send(&click(702, ADMIN, &confirm_id(&preview, 0))).await;
    assert!(content(&replay).contains("expired or was already used"), "{replay}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(dispatches(&h.github.received_requests().await.unwrap()).len(), 1);

    // audited: the foreign press and the replay blocked, the intent and the dispatch posted
    let mut records = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    for _ in 0..40 {
        if records.iter().any(|r| r.result == AuditResult::Posted) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        records = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    }
    let posted = records.iter().find(|r| r.result == AuditResult::Posted).expect("a posted record");
    assert_eq!(posted.command, "/deploy-client");
    assert_eq!(posted.target.as_deref(), Some("client-deploy.yml@release"));
    let intent = records.iter().find(|r| r.result == AuditResult::Pending).unwrap();
    assert_eq!(posted.metadata["intent_audit_id"], intent.audit_id);
    assert!(records.iter().any(|r| r.result == AuditResult::Blocked));
    let strangers = h.app.stores.audit.by_user(&STRANGER.to_string(), 10).await.unwrap();
    // (a press on someone else's preview learns nothing of it, not even its command)
    assert!(strangers.iter().any(|r| r.result == AuditResult::Blocked && r.metadata.contains_key("confirmation")));
}

#[tokio::test]
async fn deploy_client_refuses_non_deployers_and_bad_input_and_dispatches_nothing() {
    let h = Harness::new(&[("DEPLOY_ROLE_IDS", &DEPLOYER_ROLE.to_string())]).await;
    let (_, a) = h.send(&command(710, STRANGER, "deploy-client", json!([]))).await;
    assert!(content(&a).contains("DEPLOY_ROLE_IDS"), "{a}");
    let (_, a) =
        h.send(&command(711, ADMIN, "deploy-client", json!([opt("api_base", 3, json!("https://10.0.0.1/"))]))).await;
    assert!(content(&a).contains("`api_base` was refused: private addresses are not allowed"), "{a}");
    let (_, a) = h.send(&command(712, ADMIN, "deploy-client", json!([opt("ref", 3, json!("main; rm -rf"))]))).await;
    assert!(content(&a).contains("`ref` is not a branch"), "{a}");
    // a member of DEPLOY_ROLE_IDS gets the preview; Cancel dispatches nothing
    let mut i = command(713, STRANGER, "deploy-client", json!([]));
    i["member"]["roles"] = json!([DEPLOYER_ROLE.to_string()]);
    let (_, preview) = h.send(&i).await;
    let mut press = click(714, STRANGER, &confirm_id(&preview, 1));
    press["member"]["roles"] = json!([DEPLOYER_ROLE.to_string()]);
    let (_, cancelled) = h.send(&press).await;
    assert!(content(&cancelled).contains("Cancelled. Nothing was dispatched."), "{cancelled}");
    let records = h.app.stores.audit.by_user(&STRANGER.to_string(), 10).await.unwrap();
    assert_eq!(records.iter().filter(|r| r.result == AuditResult::Blocked).count(), 1, "{records:?}");
    let admin = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    let stored = serde_json::to_string(&admin).unwrap();
    assert!(!stored.contains("10.0.0.1"), "{stored}");
    // the fallback mock fails the test on any GitHub request
    assert!(h.github.received_requests().await.unwrap().is_empty());
}

/// Inputs that reach the deploy workflow are values: a ref `git check-ref-format` refuses or a
/// shell would run, and an `api_base` whose typed text a shell would run, are refused
/// ephemerally, with the reason, audited as blocked, and nothing is dispatched.
#[tokio::test]
async fn deploy_client_refuses_refs_and_urls_a_workflow_would_run_as_code() {
    let h = Harness::new(&[]).await;
    let cases = [
        (
            opt("ref", 3, json!("$(id)")),
            "`ref` is not a branch, tag or commit name: the ref holds `$`, which a shell reads as code.",
        ),
        (opt("ref", 3, json!("main`id`")), "the ref holds a backtick"),
        (opt("ref", 3, json!("@")), "the ref is `@` alone"),
        (opt("ref", 3, json!("feature//x")), "holds `//`"),
        (opt("ref", 3, json!("release/v1.lock")), "ends with `.lock`"),
        (opt("ref", 3, json!("a".repeat(201))), "longer than 200 characters"),
        (
            opt("api_base", 3, json!("https://api.example.com/$(id)")),
            "`api_base` was refused: the URL holds a shell metacharacter (`$`).",
        ),
        (opt("api_base", 3, json!("https://api.example.com/x\nid")), "the URL holds a control character"),
    ];
    for (k, (option, told)) in cases.iter().enumerate() {
        let (_, a) = h.send(&command(730 + k as u64, ADMIN, "deploy-client", json!([option]))).await;
        assert!(content(&a).contains(told), "{option}: {a}");
        assert_eq!(a["data"]["flags"], 64, "ephemeral: {a}");
    }
    let records = h.app.stores.audit.by_user(&ADMIN.to_string(), 20).await.unwrap();
    assert_eq!(records.iter().filter(|r| r.result == AuditResult::Blocked).count(), cases.len(), "{records:?}");
    assert!(
        records.iter().all(|r| r.metadata["reason"].contains("`ref`") || r.metadata["reason"].contains("`api_base`"))
    );
    assert!(h.github.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn set_frontend_is_refused_while_secret_writes_are_off() {
    let h = Harness::new(&[]).await;
    let options = json!([opt("url", 3, json!("https://app.example.com/")), opt("confirm", 5, json!(true))]);
    let (_, a) = h.send(&command(720, ADMIN, "set-frontend", options)).await;
    assert!(content(&a).contains("ALLOW_SECRET_WRITES=true"), "{a}");
    let records = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!((records[0].result, records[0].target.as_deref()), (AuditResult::Blocked, Some("FRONTEND_BASE_URL")));
    assert!(h.github.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn set_frontend_writes_the_variable_creating_it_when_missing() {
    let h = Harness::new(&[("ALLOW_SECRET_WRITES", "true")]).await;
    let url = "https://app.example.com/";
    Mock::given(method("PATCH"))
        .and(path("/repos/acme/widget/actions/variables/FRONTEND_BASE_URL"))
        .and(body_json(json!({"name": "FRONTEND_BASE_URL", "value": url})))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .expect(1)
        .mount(&h.github)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/widget/actions/variables"))
        .and(body_json(json!({"name": "FRONTEND_BASE_URL", "value": url})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({})))
        .expect(1)
        .mount(&h.github)
        .await;
    // non-admins and refused URLs write nothing
    let (_, a) = h.send(&command(730, STRANGER, "set-frontend", json!([opt("url", 3, json!(url))]))).await;
    assert!(content(&a).contains("not an admin"), "{a}");
    let (_, a) =
        h.send(&command(731, ADMIN, "set-frontend", json!([opt("url", 3, json!("http://app.example.com/"))]))).await;
    assert!(content(&a).contains("only https"), "{a}");

    let (_, preview) = h.send(&command(732, ADMIN, "set-frontend", json!([opt("url", 3, json!(url))]))).await;
    assert!(!preview.to_string().contains("app.example.com"), "the preview shows a fingerprint: {preview}");
    assert!(preview.to_string().contains("FRONTEND_BASE_URL"));
    let (_, done) = h.send(&click(733, ADMIN, &confirm_id(&preview, 0))).await;
    assert_eq!(done["type"], 7);
    let text = content(&done);
    assert!(text.contains("`FRONTEND_BASE_URL` was created") && text.contains("fingerprint `…"), "{done}");
    assert!(!text.contains("app.example.com"));
    let records = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    let posted = records.iter().find(|r| r.result == AuditResult::Posted).unwrap();
    assert_eq!(posted.target.as_deref(), Some("FRONTEND_BASE_URL"));
    assert!(posted.message_fingerprint.is_some() && posted.metadata["write"] == "created");
    assert!(!serde_json::to_string(&records).unwrap().contains("app.example.com"));
    // an expired or used confirmation writes nothing more
    let (_, again) = h.send(&click(734, ADMIN, &confirm_id(&preview, 0))).await;
    assert!(content(&again).contains("expired or was already used"), "{again}");
}

#[tokio::test(flavor = "current_thread")]
async fn set_api_base_seals_the_url_to_the_repository_key_and_logs_no_value() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (sink, _guard) = capture_logs("discord-handler");
    let h = Harness::new(&[("ALLOW_SECRET_WRITES", "true")]).await;
    let private = crypto_box::SecretKey::from([3u8; 32]);
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/actions/secrets/public-key"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"key_id": "3380204578043523366", "key": b64.encode(private.public_key().as_bytes())}),
        ))
        .expect(1)
        .mount(&h.github)
        .await;
    Mock::given(method("PUT"))
        .and(path("/repos/acme/widget/actions/secrets/VITE_API_BASE"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&h.github)
        .await;
    let url = "https://api-canary-value.example.com/v2";
    let options = json!([opt("url", 3, json!(url)), opt("confirm", 5, json!(true))]);
    let (_, a) = h.send(&command(740, ADMIN, "set-api-base", options)).await;
    let text = content(&a);
    assert!(text.contains("repository secret `VITE_API_BASE` was updated") && text.contains("fingerprint"), "{a}");
    assert!(!text.contains("canary"));
    let put = h.github.received_requests().await.unwrap().into_iter().find(|r| r.method.as_str() == "PUT").unwrap();
    let body: Value = serde_json::from_slice(&put.body).unwrap();
    assert_eq!(body["key_id"], "3380204578043523366");
    let sealed = b64.decode(body["encrypted_value"].as_str().unwrap()).unwrap();
    assert_eq!(private.unseal(&sealed).unwrap(), url.as_bytes());
    let records = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    assert!(records.iter().any(|r| r.result == AuditResult::Posted && r.target.as_deref() == Some("VITE_API_BASE")));
    assert!(!serde_json::to_string(&records).unwrap().contains("canary-value"));
    // a replay of the same interaction writes nothing again
    let options = json!([opt("url", 3, json!(url)), opt("confirm", 5, json!(true))]);
    let (_, replay) = h.send(&command(740, ADMIN, "set-api-base", options)).await;
    assert!(content(&replay).contains("already handled"), "{replay}");
    let logs = sink.text();
    assert!(logs.contains("repository write done"), "no logs captured: {logs}");
    assert!(!logs.contains("canary-value"), "the value leaked into the log:\n{logs}");
}

#[tokio::test]
async fn verify_latest_names_each_endpoint_with_status_and_latency() {
    let endpoints = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/healthy"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "healthy", "version": "1.4.2"})))
        .mount(&endpoints)
        .await;
    Mock::given(method("GET"))
        .and(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(2600)))
        .mount(&endpoints)
        .await;
    Mock::given(method("GET"))
        .and(path("/broken"))
        .respond_with(ResponseTemplate::new(500).set_body_string("oops"))
        .mount(&endpoints)
        .await;
    Mock::given(method("GET"))
        .and(path("/moved"))
        .respond_with(ResponseTemplate::new(301).insert_header("location", "https://login.example.com/"))
        .mount(&endpoints)
        .await;
    let base = endpoints.uri();
    let urls = format!("api={base}/healthy,search={base}/slow,worker={base}/broken,frontend={base}/moved");
    let h = Harness::new(&[("VERIFY_URLS", &urls)]).await;
    mount_edits(&h.discord).await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/actions/workflows/client-deploy.yml/runs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total_count": 1, "workflow_runs": [
            {"id": 77, "name": "Client deploy", "head_branch": "main", "head_sha": "c0ffee", "status": "completed",
             "conclusion": "failure", "html_url": "https://github.com/acme/widget/actions/runs/77", "run_number": 31,
             "run_attempt": 2, "created_at": "2026-11-22T14:00:00Z", "updated_at": "2026-11-22T14:04:00Z", "workflow_id": 5, "event": "workflow_dispatch"}
        ]})))
        .expect(1)
        .mount(&h.github)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/actions/runs/77/attempts/2/jobs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total_count": 1, "jobs": [
            {"id": 1, "name": "build", "status": "completed", "conclusion": "failure",
             "steps": [{"name": "npm ci", "status": "completed", "conclusion": "failure", "number": 2}]}
        ]})))
        .expect(1)
        .mount(&h.github)
        .await;
    let started = Instant::now();
    let (_, a) = h.send(&command(750, STRANGER, "verify-latest", json!([]))).await;
    assert_eq!(a, json!({"type": 5}));
    let edits = wait_for(&h.discord, 1, is_edit).await;
    // all in parallel, 2 s each: the slow one does not hold the others up
    assert!(started.elapsed() < Duration::from_millis(2600), "{:?}", started.elapsed());
    let edit: Value = serde_json::from_slice(&edits[0].body).unwrap();
    assert_eq!(edit["embeds"].as_array().unwrap().len(), 1);
    let fields = edit["embeds"][0]["fields"].as_array().unwrap();
    let deploy = fields[0]["value"].as_str().unwrap();
    assert!(
        deploy.contains("failure") && deploy.contains("#31") && deploy.contains("failed: build › npm ci"),
        "{deploy}"
    );
    let lines: Vec<&str> = fields[1]["value"].as_str().unwrap().lines().collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines[0].starts_with("✅ **api** · 200 · ") && lines[0].contains(" ms · `healthy`"), "{}", lines[0]);
    assert!(
        lines[1].starts_with("❌ **search** · no answer · ") && lines[1].contains("no answer within 2000 ms"),
        "{}",
        lines[1]
    );
    assert!(lines[2].starts_with("❌ **worker** · 500 · ") && lines[2].contains("answered 500"), "{}", lines[2]);
    assert!(lines[3].starts_with("❌ **frontend** · 301 · ") && lines[3].contains("not followed"), "{}", lines[3]);
    let paths: Vec<String> =
        endpoints.received_requests().await.unwrap().iter().map(|r| r.url.path().to_string()).collect();
    assert_eq!(paths.len(), 4, "the redirect is not followed: {paths:?}");
}

fn store_file(h: &Harness) -> Vec<u8> {
    std::fs::read(h._dir.path().join("v.redb")).unwrap()
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn set_frontend_writes_what_was_typed_and_its_digest_verifies() {
    let h = Harness::new(&[("ALLOW_SECRET_WRITES", "true")]).await;
    // The URL parser would write `https://app.example.com/`: the guard decides on that, and what
    // is written is what was typed.
    let typed = "https://App.Example.com";
    Mock::given(method("PATCH"))
        .and(path("/repos/acme/widget/actions/variables/FRONTEND_BASE_URL"))
        .and(body_json(json!({"name": "FRONTEND_BASE_URL", "value": typed})))
        .respond_with(ResponseTemplate::new(204))
        .expect(2)
        .mount(&h.github)
        .await;
    // At once, and through a preview.
    let options = json!([opt("url", 3, json!(typed)), opt("confirm", 5, json!(true))]);
    let (_, a) = h.send(&command(760, ADMIN, "set-frontend", options)).await;
    assert!(content(&a).contains("was updated"), "{a}");
    let (_, preview) = h.send(&command(761, ADMIN, "set-frontend", json!([opt("url", 3, json!(typed))]))).await;
    assert!(!holds(&store_file(&h), "App.Example.com"), "the value waits in the state table in the clear");
    let (_, done) = h.send(&click(762, ADMIN, &confirm_id(&preview, 0))).await;
    assert!(content(&done).contains("was updated"), "{done}");
    let records = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    let posted: Vec<_> = records.iter().filter(|r| r.result == AuditResult::Posted).collect();
    assert_eq!(posted.len(), 2);
    for r in posted {
        // What `valinectl audit verify ID` checks, with the text typed.
        let digest = r.message_digest.as_deref().unwrap();
        assert!(valine_domain::audit::digest_matches(b"audit-key-canary", typed, digest), "{r:?}");
        assert!(!valine_domain::audit::digest_matches(b"audit-key-canary", "https://app.example.com/", digest));
    }
}

#[tokio::test]
async fn set_api_base_seals_what_was_typed_at_the_preview_and_keeps_no_plain_value() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let h = Harness::new(&[("ALLOW_SECRET_WRITES", "true")]).await;
    let private = crypto_box::SecretKey::from([5u8; 32]);
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/actions/secrets/public-key"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"key_id": "568250167242549743", "key": b64.encode(private.public_key().as_bytes())}),
            ),
        )
        .expect(1)
        .mount(&h.github)
        .await;
    Mock::given(method("PUT"))
        .and(path("/repos/acme/widget/actions/secrets/VITE_API_BASE"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&h.github)
        .await;
    // `..` and the upper case would be normalised away by the parser; they are written as typed.
    let typed = "https://API.plain-canary.example.com/v1/../v2";
    let (_, preview) = h.send(&command(770, ADMIN, "set-api-base", json!([opt("url", 3, json!(typed))]))).await;
    assert!(content(&preview).contains("Preview"), "{preview}");
    assert!(!holds(&store_file(&h), "plain-canary"), "the API base waits in the state table in the clear");
    let id = confirm_id(&preview, 0);
    let confirmations = h.app.stores.confirmations.clone();
    let valine_store::Taken::Yours(item) =
        confirmations.take_confirmation(id.rsplit(':').next().unwrap(), ADMIN).await.unwrap()
    else {
        panic!("the preview's confirmation is not stored");
    };
    let serialized = serde_json::to_string(&item).unwrap();
    assert!(!serialized.contains("plain-canary") && serialized.contains("568250167242549743"), "{serialized}");
    confirmations.put_confirmation(&item).await.unwrap();
    let (_, done) = h.send(&click(771, ADMIN, &id)).await;
    assert!(content(&done).contains("`VITE_API_BASE` was updated"), "{done}");
    let put = h.github.received_requests().await.unwrap().into_iter().find(|r| r.method.as_str() == "PUT").unwrap();
    let body: Value = serde_json::from_slice(&put.body).unwrap();
    assert_eq!(body["key_id"], "568250167242549743");
    let sealed = b64.decode(body["encrypted_value"].as_str().unwrap()).unwrap();
    assert_eq!(private.unseal(&sealed).unwrap(), typed.as_bytes());
    let records = h.app.stores.audit.by_user(&ADMIN.to_string(), 10).await.unwrap();
    let posted = records.iter().find(|r| r.result == AuditResult::Posted).unwrap();
    assert!(valine_domain::audit::digest_matches(
        b"audit-key-canary",
        typed,
        posted.message_digest.as_deref().unwrap()
    ));
}

#[tokio::test]
async fn a_lock_refuses_deploys_to_its_environment_until_unlock_or_expiry() {
    let h = Harness::new(&[("DEPLOY_ROLE_IDS", &DEPLOYER_ROLE.to_string())]).await;
    mount_deploy(&h).await;
    let lock_opts = |env: &str, duration: Option<&str>| {
        let mut o = vec![opt("environment", 3, json!(env)), opt("reason", 3, json!("release freeze for the launch"))];
        if let Some(d) = duration {
            o.push(opt("duration", 3, json!(d)));
        }
        Value::Array(o)
    };
    // a stranger may not lock; a deployer may, and says for how long
    let (_, a) = h.send(&command(800, STRANGER, "lock", lock_opts("production", Some("2h")))).await;
    assert!(content(&a).contains("DEPLOY_ROLE_IDS"), "{a}");
    let mut lock = command(801, STRANGER, "lock", lock_opts("production", Some("2h")));
    lock["member"] = member(STRANGER, &[DEPLOYER_ROLE]);
    let (_, a) = h.send(&lock).await;
    assert!(content(&a).starts_with("🔒 `production` is locked for 2h"), "{a}");
    let (_, a) = h.send(&command(802, ADMIN, "lock", lock_opts("PRODUCTION", None))).await;
    assert!(content(&a).contains("Already locked"), "a second lock is refused: {a}");
    // a deploy to it is refused with who, why and how long; another environment is not
    let (_, refused) = h.send(&command(803, ADMIN, "deploy-client", json!([]))).await;
    let told = content(&refused);
    assert!(
        told.contains(&format!("`production` is locked by <@{STRANGER}> for 2h"))
            && told.contains("release freeze for the launch"),
        "{refused}"
    );
    let (_, staging) =
        h.send(&command(804, ADMIN, "deploy-client", json!([opt("environment", 3, json!("staging"))]))).await;
    assert!(staging.to_string().contains("`staging`"), "a preview for staging: {staging}");
    // a preview taken before the lock is refused at its Confirm
    h.send(&command(805, ADMIN, "unlock", json!([opt("environment", 3, json!("production"))]))).await;
    let (_, preview) = h.send(&command(806, ADMIN, "deploy-client", json!([]))).await;
    assert!(preview.to_string().contains("`production`"), "{preview}");
    h.send(&command(807, ADMIN, "lock", lock_opts("production", None))).await;
    let (_, pressed) = h.send(&click(808, ADMIN, &confirm_id(&preview, 0))).await;
    assert!(content(&pressed).contains("is locked by"), "{pressed}");
    assert!(dispatches(&h.github.received_requests().await.unwrap()).is_empty());
    // unlocked: the deploy goes, with its environment as an input
    let (_, a) = h.send(&command(809, ADMIN, "unlock", json!([opt("environment", 3, json!("production"))]))).await;
    assert!(content(&a).contains("🔓 `production` is unlocked"), "{a}");
    let (_, a) = h.send(&command(810, ADMIN, "unlock", json!([opt("environment", 3, json!("production"))]))).await;
    assert!(content(&a).contains("is not locked"), "{a}");
    // an expired lock holds nothing
    let expired = valine_store::Lock {
        environment: "production".into(),
        by: STRANGER,
        reason: "over".into(),
        at: 1,
        until: Some(valine_domain::clock::now_secs() - 1),
    };
    h.app.services().stores.locks.lock(&expired).await.unwrap();
    let (_, preview) = h.send(&command(811, ADMIN, "deploy-client", json!([]))).await;
    h.send(&click(812, ADMIN, &confirm_id(&preview, 0))).await;
    let sent = wait_for(&h.github, 1, |r| r.url.path().ends_with("/dispatches")).await;
    let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(body["inputs"]["environment"], "production", "{body}");
    let audited = h.app.services().stores.audit.by_user(&ADMIN.to_string(), 30).await.unwrap();
    assert!(audited.iter().any(|r| r.command == "/unlock" && r.result == AuditResult::Posted));
    assert!(audited.iter().any(|r| r.command == "/lock" && r.result == AuditResult::Blocked));
    let by_stranger = h.app.services().stores.audit.by_user(&STRANGER.to_string(), 30).await.unwrap();
    assert!(by_stranger.iter().any(|r| r.command == "/lock" && r.result == AuditResult::Posted));
}
