//! `/subscribe`, `/unsubscribe`, `/subscriptions` and the `repo` option, against the embedded
//! store (the conformance suite covers the DynamoDB adapter of the same port).

use crate::common::*;
use serde_json::{Value, json};
use valine_domain::audit::AuditResult;

const REPOS: (&str, &str) = ("GITHUB_REPOS", "acme/*,solo/app");

fn sub_opts(repo: &str, extra: &[Value]) -> Value {
    let mut o = vec![opt("repo", 3, json!(repo))];
    o.extend(extra.iter().cloned());
    Value::Array(o)
}

async fn audit_of(h: &Harness, user: u64) -> Vec<valine_domain::audit::AuditRecord> {
    h.app.services().stores.audit.by_user(&user.to_string(), 20).await.unwrap()
}

#[tokio::test]
async fn an_admin_subscribes_lists_and_unsubscribes_this_channel() {
    admin_flow(Harness::new(&[REPOS]).await).await;
}

/// The same on DynamoDB, when a DynamoDB-compatible server is at `AWS_ENDPOINT_URL` (`.ci/run`
/// starts one); skipped otherwise.
#[tokio::test]
async fn an_admin_subscribes_lists_and_unsubscribes_on_dynamodb() {
    if std::env::var("AWS_ENDPOINT_URL").unwrap_or_default().is_empty() {
        eprintln!("skipping: no AWS_ENDPOINT_URL (a DynamoDB-compatible server)");
        return;
    }
    let sdk = valine_store::dynamo::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let id = valine_domain::clock::now_millis();
    let names = valine_store::dynamo::TableNames {
        audit: format!("sub-audit-{id}"),
        runs: format!("sub-runs-{id}"),
        state: format!("sub-state-{id}"),
    };
    valine_store::dynamo::create_tables(&client, &names).await.unwrap();
    let store = valine_store::dynamo::DynamoStore::from_client(client, names);
    let stores = valine_store::Stores::from_adapter(std::sync::Arc::new(store), "dynamodb");
    admin_flow(Harness::build(&[REPOS], Some(stores)).await).await;
}

async fn admin_flow(h: Harness) {
    let opts = sub_opts(
        "acme/*",
        &[
            opt("workflows", 3, json!("ci, !nightly")),
            opt("branches", 3, json!("main,release/*")),
            opt("events", 3, json!("all-runs")),
            opt("mention", 8, json!("4242")),
            opt("retry", 5, json!(true)),
        ],
    );
    let (status, answer) = h.send(&command(1, ADMIN, "subscribe", opts)).await;
    assert_eq!(status, 200);
    let text = content(&answer);
    assert!(text.starts_with("✅ Subscribed: acme/* → <#805950613094531075>: workflows ci,!nightly, branches main,release/*, events all-runs, mentions <@&4242>, retries once"), "{text}");
    assert_eq!(answer["data"]["flags"], 64);
    let subs = h.app.services().stores.routes.list_subscriptions().await.unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!((subs[0].channel_id, subs[0].mention_role_id, subs[0].created_by), (CHANNEL, Some(4242), ADMIN));
    assert!(subs[0].retry && subs[0].route().is_some_and(|r| r.retry), "{subs:?}");
    let records = audit_of(&h, ADMIN).await;
    assert_eq!(records[0].result, AuditResult::Posted);
    assert_eq!(records[0].command, "/subscribe");
    assert_eq!(records[0].metadata["repo"], "acme/*");
    assert_eq!(records[0].target_channel.as_deref(), Some(CHANNEL.to_string().as_str()));

    // listed, here and with all:true
    let (_, answer) = h.send(&command(2, ADMIN, "subscriptions", json!([]))).await;
    assert!(content(&answer).contains("acme/* → <#805950613094531075>"), "{}", content(&answer));
    let (_, answer) = h.send(&command(3, ADMIN, "subscriptions", json!([opt("all", 5, json!(true))]))).await;
    assert!(content(&answer).contains("Subscriptions of every channel (1)"));

    // unsubscribe (case aside), then again: nothing left, refused and audited
    let (_, answer) = h.send(&command(4, ADMIN, "unsubscribe", sub_opts("ACME/*", &[]))).await;
    assert!(content(&answer).starts_with("✅ Unsubscribed"), "{}", content(&answer));
    assert!(h.app.services().stores.routes.list_subscriptions().await.unwrap().is_empty());
    let (_, answer) = h.send(&command(5, ADMIN, "unsubscribe", sub_opts("acme/*", &[]))).await;
    assert!(content(&answer).contains("no subscription to `acme/*`"), "{}", content(&answer));
    let records = audit_of(&h, ADMIN).await;
    assert!(
        records.iter().any(|r| r.result == AuditResult::Blocked && r.metadata["reason"].contains("no subscription"))
    );
    assert_eq!(records.iter().filter(|r| r.result == AuditResult::Posted).count(), 2, "subscribe, unsubscribe");
}

#[tokio::test]
async fn a_strangers_subscribe_is_refused_and_audited() {
    let h = Harness::new(&[REPOS]).await;
    for (id, name) in [(1, "subscribe"), (2, "unsubscribe"), (3, "subscriptions")] {
        let opts = if name == "subscriptions" { json!([]) } else { sub_opts("acme/web", &[]) };
        let (status, answer) = h.send(&command(id, STRANGER, name, opts)).await;
        assert_eq!(status, 200);
        assert_eq!(answer["data"]["flags"], 64);
        assert!(content(&answer).contains("audit `"), "{name}: {}", content(&answer));
    }
    let records = audit_of(&h, STRANGER).await;
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r.result == AuditResult::Blocked));
    assert!(h.app.services().stores.routes.list_subscriptions().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_repository_outside_github_repos_cannot_be_subscribed() {
    let h = Harness::new(&[REPOS]).await;
    for (id, repo, why) in [
        (1, "evil/app", "outside GITHUB_REPOS"),
        (2, "solo/*", "outside GITHUB_REPOS"),
        (3, "not a repo", "is not owner/name"),
    ] {
        let (_, answer) = h.send(&command(id, ADMIN, "subscribe", sub_opts(repo, &[]))).await;
        assert!(content(&answer).contains(why), "{repo}: {}", content(&answer));
    }
    let (_, answer) =
        h.send(&command(4, ADMIN, "subscribe", sub_opts("acme/web", &[opt("branches", 3, json!("main,!"))]))).await;
    assert!(content(&answer).contains("branches:"), "{}", content(&answer));
    assert!(h.app.services().stores.routes.list_subscriptions().await.unwrap().is_empty());
    assert!(audit_of(&h, ADMIN).await.iter().all(|r| r.result == AuditResult::Blocked));
}

#[tokio::test]
async fn repo_autocomplete_offers_github_repos_and_subscriptions() {
    let h = Harness::new(&[REPOS]).await;
    h.send(&command(1, ADMIN, "subscribe", sub_opts("acme/api", &[]))).await;
    // autocomplete does no I/O: it knows the subscriptions this container last read
    h.send(&command(9, ADMIN, "subscriptions", json!([]))).await;
    let autocomplete = |id: u64, name: &str, typed: &str| {
        envelope(
            4,
            id,
            STRANGER,
            &[],
            json!({"id": "1", "name": name, "type": 1, "options": [{"name": "repo", "type": 3, "value": typed, "focused": true}]}),
        )
    };
    let (status, answer) = h.send(&autocomplete(2, "status", "")).await;
    assert_eq!(status, 200);
    assert_eq!(answer["type"], 8);
    let names: Vec<&str> =
        answer["data"]["choices"].as_array().unwrap().iter().map(|c| c["value"].as_str().unwrap()).collect();
    // GITHUB_REPO, GITHUB_REPOS' one repository, the subscription; never owner/* for /status
    assert_eq!(names, ["acme/widget", "solo/app", "acme/api"]);
    let (_, answer) = h.send(&autocomplete(3, "subscribe", "ac")).await;
    let names: Vec<&str> =
        answer["data"]["choices"].as_array().unwrap().iter().map(|c| c["value"].as_str().unwrap()).collect();
    assert_eq!(names, ["acme/widget", "acme/*", "acme/api"]);
}

#[tokio::test]
async fn status_reads_the_repo_option_within_github_repos() {
    let h = Harness::new(&[REPOS]).await;
    // outside: refused and audited, nothing asked of GitHub (which fails on any unexpected call)
    let (_, answer) = h.send(&command(1, STRANGER, "status", json!([opt("repo", 3, json!("evil/app"))]))).await;
    assert!(content(&answer).contains("outside GITHUB_REPOS"), "{}", content(&answer));
    assert_eq!(audit_of(&h, STRANGER).await[0].result, AuditResult::Blocked);
    let (_, answer) = h.send(&command(2, STRANGER, "status", json!([opt("repo", 3, json!("acme/*"))]))).await;
    assert!(content(&answer).contains("give one"), "{}", content(&answer));
    // the channel's only subscribed repository is the default
    mount_workflows(&h.github, std::time::Duration::ZERO).await;
    h.send(&command(3, ADMIN, "subscribe", sub_opts("acme/widget", &[]))).await;
    let (status, answer) = h.send(&command(4, STRANGER, "status", json!([]))).await;
    assert_eq!(status, 200);
    assert_eq!(answer["data"]["embeds"][0]["title"].as_str().map(|t| t.contains("CI")), Some(true), "{answer}");
}

#[tokio::test]
async fn subscribe_refuses_to_mention_everyone() {
    let h = Harness::new(&[REPOS]).await;
    // A role option's @everyone is the role whose id is the server's.
    let opts = sub_opts("acme/web", &[opt("mention", 8, json!(GUILD.to_string()))]);
    let (status, answer) = h.send(&command(60, ADMIN, "subscribe", opts)).await;
    assert_eq!(status, 200);
    assert_eq!(answer["data"]["flags"], 64, "{answer}");
    assert!(content(&answer).contains("@everyone"), "{answer}");
    assert!(h.app.services().stores.routes.list_subscriptions().await.unwrap().is_empty(), "it was subscribed");
    let records = audit_of(&h, ADMIN).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].result, AuditResult::Blocked);
    assert!(records[0].metadata["reason"].contains("@everyone"), "{records:?}");
    // Another role is fine.
    let opts = sub_opts("acme/web", &[opt("mention", 8, json!("4242"))]);
    let (_, answer) = h.send(&command(61, ADMIN, "subscribe", opts)).await;
    assert!(content(&answer).contains("Subscribed"), "{answer}");
}
