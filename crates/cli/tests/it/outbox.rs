//! `valinectl outbox`: the cards with something unsent, written through the store as the handlers
//! write them, listed by the built `valinectl` from the local embedded store; `stage.rs` runs the
//! same listing against a stage's DynamoDB table on moto.

use serde_json::Value;
use valine_domain::clock::{now_millis, now_secs};
use valine_domain::config::Config;
use valine_domain::incident::outbox::{Display, Lease, PendingReply};
use valine_domain::incident::{Incident, IncidentKey, MessageRef, Observation, Order, Outcome, Policy, RunRef, decide};
use valine_store::Stores;

/// An open incident of `workflow` on main of `repo`, in channel 9.
fn incident(repo: &str, workflow: &str) -> Incident {
    let now = now_secs();
    let observation = Observation {
        workflow_file: Default::default(),
        key: IncidentKey::workflow(9, repo, workflow, "main"),
        outcome: Outcome::Failure,
        run: RunRef {
            order: Order::new(41, 1),
            run_number: 41,
            completed_at: now - 900,
            conclusion: "failure".into(),
            ..RunRef::default()
        },
    };
    decide(None, &observation, now - 800, Policy::default()).next.unwrap()
}

/// Three incidents: a card never posted, rate limited for 90 s more after three attempts, waiting
/// 10 minutes; a posted card owing an edit and a reply for 2 minutes, held by a sender; and one
/// whose card is up to date (not in the outbox).
pub(crate) fn seeded() -> [Incident; 3] {
    let (now, now_ms) = (now_secs(), now_millis());
    let mut unposted = incident("acme/web", "CI");
    unposted.display = Display {
        want: 1,
        since: now - 600,
        not_before_ms: now_ms + 90_000,
        attempts: 3,
        last_error: Some("the card: Discord rate-limited the request; retry after 90.0 s".into()),
        ..Display::default()
    };
    let mut held = incident("acme/api", "Deploy");
    held.message = Some(MessageRef { channel_id: 9, message_id: 77, posted_at: now - 700, guild_id: Some(5) });
    held.display = Display {
        want: 3,
        shown: 2,
        replies: vec![PendingReply { nonce: "n-resolved".into(), body: "{\"content\":\"resolved\"}".into(), to: None }],
        since: now - 120,
        lease: Some(Lease { by: "sender-1".into(), until_ms: now_ms + 25_000 }),
        ..Display::default()
    };
    let mut settled = incident("acme/web", "Nightly");
    settled.message = Some(MessageRef { channel_id: 9, message_id: 78, posted_at: now - 700, guild_id: Some(5) });
    settled.display = Display { want: 1, shown: 1, ..Display::default() };
    [unposted, held, settled]
}

/// Writes `seeded()` through `stores`, and answers them.
pub(crate) async fn seed(stores: &Stores) -> [Incident; 3] {
    let incidents = seeded();
    for i in &incidents {
        stores.incidents.put_incident(i).await.unwrap();
    }
    incidents
}

/// What `valinectl outbox` and `outbox --json` print for `seeded()`.
pub(crate) fn assert_listing(text: &str, json: &str, seeded: &[Incident; 3]) {
    let [unposted, held, settled] = seeded;
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("2 cards wait to be sent to Discord, the oldest for 10m 0"), "{text}");
    assert!(lines[1].starts_with("INCIDENT") && lines[1].contains("OWES"), "{text}");
    assert_eq!(lines.len(), 4, "{text}");
    let first = lines[2];
    assert!(first.starts_with(&unposted.streak_id()), "oldest first: {text}");
    for cell in [
        "acme/web CI on main",
        " 9 ",
        " post ",
        "10m 0",
        " 3 ",
        "in 1m",
        "the card: Discord rate-limited the request; retry after 90.0 s",
    ] {
        assert!(first.contains(cell), "missing {cell:?}: {text}");
    }
    let second = lines[3];
    assert!(second.starts_with(&held.streak_id()), "{text}");
    for cell in ["acme/api Deploy on main", "edit, 1 reply", "2m 0", " now ", "held ", "s more"] {
        assert!(second.contains(cell), "missing {cell:?}: {text}");
    }
    assert!(!text.contains(&settled.id), "an up-to-date card is not listed: {text}");

    let report: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(report["count"], 2, "{json}");
    assert!(report["oldest_secs"].as_u64().is_some_and(|s| (600..660).contains(&s)), "{json}");
    let cards = &report["cards"];
    assert_eq!(cards[0]["incident"], unposted.streak_id());
    assert_eq!(cards[0]["owes"]["post"], true);
    assert_eq!(cards[0]["attempts"], 3);
    assert_eq!(cards[0]["due"], false);
    assert_eq!(cards[0]["held"], false);
    assert_eq!(cards[0]["channel_id"], "9");
    assert_eq!(cards[1]["incident"], held.streak_id());
    assert_eq!(cards[1]["owes"]["edit"], true);
    assert_eq!(cards[1]["owes"]["replies"], 1);
    assert_eq!(cards[1]["held"], true);
    assert_eq!(cards[1]["lease"]["by"], "sender-1");
    assert_eq!(cards[1]["message"], "https://discord.com/channels/5/9/77");
}

/// Runs valinectl on the embedded store in `data`.
async fn valinectl(data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_valinectl"))
        .args(args)
        .env_clear()
        .env("STORE", "embedded")
        .env("DATA_DIR", data)
        .output()
        .await
        .unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned());
    (output.status.success(), stdout, stderr)
}

#[tokio::test]
async fn outbox_lists_what_waits_for_discord_in_the_local_store_oldest_first() {
    let data = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = valinectl(data.path(), &["outbox"]).await;
    assert!(ok && stdout == "Nothing waits: the outbox is empty.\n", "{stdout}{stderr}");
    let (ok, stdout, stderr) = valinectl(data.path(), &["outbox", "--json"]).await;
    assert!(ok, "{stdout}{stderr}");
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap(),
        serde_json::json!({"count": 0, "oldest_secs": null, "cards": []})
    );

    let config = Config::from_lookup(|k| match k {
        "STORE" => Some("embedded".into()),
        "DATA_DIR" => Some(data.path().display().to_string()),
        _ => None,
    })
    .unwrap();
    let stores = Stores::open(&config).await.unwrap();
    let seeded = seed(&stores).await;
    // The store file is one process's at a time.
    drop(stores);

    let (ok, text, stderr) = valinectl(data.path(), &["outbox"]).await;
    assert!(ok, "{text}{stderr}");
    let (ok, json, stderr) = valinectl(data.path(), &["outbox", "--json"]).await;
    assert!(ok, "{json}{stderr}");
    assert_listing(&text, &json, &seeded);
}
