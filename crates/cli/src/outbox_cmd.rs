//! `valinectl outbox [--json]`: what waits to be sent to Discord (the outbox, see
//! `valine_domain::incident::outbox`), one line per card, oldest first: what the card owes, how
//! long it has waited, how often sending it failed and why, when it is tried next, and whether a
//! sender holds it. It only reads.

use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use valine_domain::clock::duration;
use valine_domain::config::Config;
use valine_domain::incident::Incident;
use valine_domain::incident::outbox::Display;

/// Incidents read at once (one read per card the outbox lists).
const READS_AT_ONCE: usize = 16;

/// How long the oldest unsent change of `d` has waited, in seconds; `None` when unknown (`since`
/// 0, or the 1 a retired card keeps when it had no time of its own).
fn age(d: &Display, now_secs: u64) -> Option<u64> {
    (d.since > 1).then(|| now_secs.saturating_sub(d.since))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What the card owes: `post` (never posted) or `edit` (posted, showing an older state), its
/// replies, and the earlier streaks' cards that still owe something.
pub(crate) fn owes(i: &Incident) -> String {
    let d = &i.display;
    let mut parts = Vec::new();
    if d.want > d.shown {
        parts.push(if i.message.is_some() { "edit".to_string() } else { "post".to_string() });
    }
    if !d.replies.is_empty() {
        parts.push(plural(d.replies.len(), "reply", "replies"));
    }
    if !d.prior.is_empty() {
        parts.push(plural(d.prior.len(), "earlier card", "earlier cards"));
    }
    if parts.is_empty() { "—".into() } else { parts.join(", ") }
}

/// Milliseconds from `now_ms` until `at_ms`, as a duration rounded up to the second.
fn until(at_ms: u64, now_ms: u64) -> String {
    duration(at_ms.saturating_sub(now_ms).div_ceil(1000))
}

/// When the card may be sent next: `now`, or `in 40s` (Discord's `retry_after`, or the backoff
/// after a failure that named no wait).
pub(crate) fn next_try(d: &Display, now_ms: u64) -> String {
    if d.not_before_ms > now_ms { format!("in {}", until(d.not_before_ms, now_ms)) } else { "now".into() }
}

/// Whether a sender holds the card: `held 25s more`, `lapsed` (a sender claimed it and never
/// filed what it sent: it crashed or timed out; anyone may take it now), or `—`.
pub(crate) fn sender(d: &Display, now_ms: u64) -> String {
    match &d.lease {
        Some(l) if l.until_ms > now_ms => format!("held {} more", until(l.until_ms, now_ms)),
        Some(_) => "lapsed".into(),
        None => "—".into(),
    }
}

/// The last error, redacted and on one line.
fn last_error(d: &Display) -> Option<String> {
    d.last_error.as_deref().map(|e| valine_domain::redact::redact(e).split_whitespace().collect::<Vec<_>>().join(" "))
}

fn what(i: &Incident) -> String {
    format!("{} {} on {}", i.key.repository, i.key.name(), i.key.scope())
}

const TITLES: [&str; 9] =
    ["INCIDENT", "WHAT", "CHANNEL", "OWES", "WAITING", "TRIES", "NEXT TRY", "SENDER", "LAST ERROR"];

/// The cells of a card's line, in the order of the column titles.
pub(crate) fn cells(i: &Incident, now_ms: u64) -> [String; 9] {
    let d = &i.display;
    [
        i.streak_id(),
        what(i),
        i.key.channel_id.to_string(),
        owes(i),
        age(d, now_ms / 1000).map_or_else(|| "—".into(), duration),
        d.attempts.to_string(),
        next_try(d, now_ms),
        sender(d, now_ms),
        last_error(d).unwrap_or_else(|| "—".into()),
    ]
}

fn row(c: &[impl AsRef<str>]) -> String {
    let c = |n: usize| c.get(n).map_or("", AsRef::as_ref);
    format!(
        "{:<17} {:<32} {:<20} {:<22} {:>8}  {:>5}  {:<10} {:<14} {}",
        c(0),
        c(1),
        c(2),
        c(3),
        c(4),
        c(5),
        c(6),
        c(7),
        c(8)
    )
    .trim_end()
    .to_string()
}

/// One card's line.
pub(crate) fn line(i: &Incident, now_ms: u64) -> String {
    row(&cells(i, now_ms))
}

/// Oldest first (by the oldest unsent change), then by id, as the outbox lists them.
pub(crate) fn sort(cards: &mut [Incident]) {
    cards.sort_by(|a, b| a.display.since.cmp(&b.display.since).then_with(|| a.id.cmp(&b.id)));
}

fn oldest(cards: &[Incident], now_ms: u64) -> Option<u64> {
    cards.iter().filter_map(|i| age(&i.display, now_ms / 1000)).max()
}

/// The listing: a line with the count and the oldest age, the column titles, one line per card.
pub(crate) fn report_text(cards: &[Incident], now_ms: u64) -> String {
    if cards.is_empty() {
        return "Nothing waits: the outbox is empty.\n".into();
    }
    let count = if cards.len() == 1 { "1 card waits".to_string() } else { format!("{} cards wait", cards.len()) };
    let mut out = match oldest(cards, now_ms) {
        Some(secs) => format!("{count} to be sent to Discord, the oldest for {}\n", duration(secs)),
        None => format!("{count} to be sent to Discord\n"),
    };
    out.push_str(&row(&TITLES));
    out.push('\n');
    for i in cards {
        out.push_str(&line(i, now_ms));
        out.push('\n');
    }
    out
}

fn card_json(i: &Incident, now_ms: u64) -> Value {
    let d = &i.display;
    json!({
        "incident": i.streak_id(),
        "id": i.id,
        "streak": i.streak,
        "repository": i.key.repository,
        "workflow": i.key.name(),
        "scope": i.key.scope(),
        "channel_id": i.key.channel_id.to_string(),
        "message": i.message.map(|m| m.link()),
        "owes": {
            "post": d.want > d.shown && i.message.is_none(),
            "edit": d.want > d.shown && i.message.is_some(),
            "replies": d.replies.len(),
            "earlier_cards": d.prior.len(),
        },
        "since": d.since,
        "age_secs": age(d, now_ms / 1000),
        "attempts": d.attempts,
        "not_before_ms": d.not_before_ms,
        "due": d.not_before_ms <= now_ms,
        "last_error": last_error(d),
        "lease": d.lease.as_ref().map(|l| json!({"by": l.by, "until_ms": l.until_ms})),
        "held": d.lease.as_ref().is_some_and(|l| l.until_ms > now_ms),
    })
}

/// The listing as JSON: `{"count": …, "oldest_secs": …, "cards": […]}`.
pub(crate) fn report_json(cards: &[Incident], now_ms: u64) -> Value {
    json!({
        "count": cards.len(),
        "oldest_secs": oldest(cards, now_ms),
        "cards": cards.iter().map(|i| card_json(i, now_ms)).collect::<Vec<_>>(),
    })
}

/// Reads the outbox and each listed card's incident. A card sent since the outbox was listed, or
/// whose incident is gone, waits for nothing and is left out.
pub(crate) async fn outbox(config: &Config, as_json: bool) -> Result<String, String> {
    let stores = crate::stage::lookup_stores(config).await?;
    let entries = stores
        .outbox
        .pending_cards(valine_store::MAX_LIST)
        .await
        .map_err(|e| format!("cannot list the outbox: {e}"))?;
    let incidents = stores.incidents.clone();
    let read: Vec<Option<Incident>> = futures::stream::iter(entries)
        .map(|entry| {
            let incidents = incidents.clone();
            async move {
                incidents.get_incident(&entry.id).await.map_err(|e| format!("cannot read incident {}: {e}", entry.id))
            }
        })
        .buffered(READS_AT_ONCE)
        .try_collect()
        .await?;
    let mut cards: Vec<Incident> = read.into_iter().flatten().filter(|i| i.display.pending()).collect();
    sort(&mut cards);
    let now_ms = valine_domain::clock::now_millis();
    Ok(if as_json {
        serde_json::to_string_pretty(&report_json(&cards, now_ms)).unwrap_or_default() + "\n"
    } else {
        report_text(&cards, now_ms)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use valine_domain::incident::outbox::{Lease, PendingReply, PriorCard};
    use valine_domain::incident::*;

    const NOW_MS: u64 = 1_767_355_200_000;
    const NOW: u64 = NOW_MS / 1000;

    fn incident() -> Incident {
        let observation = Observation {
            workflow_file: Default::default(),
            key: IncidentKey::workflow(1_184_576_487_578_214_401, "acme/web", "CI", "main"),
            outcome: Outcome::Failure,
            run: RunRef { order: Order::new(7, 1), run_number: 7, completed_at: NOW - 900, ..RunRef::default() },
        };
        decide(None, &observation, NOW - 800, Policy::default()).next.unwrap()
    }

    fn reply(n: &str) -> PendingReply {
        PendingReply { nonce: n.into(), body: "{}".into(), to: None }
    }

    fn posted() -> Option<MessageRef> {
        Some(MessageRef { channel_id: 1_184_576_487_578_214_401, message_id: 9, posted_at: NOW - 700, guild_id: None })
    }

    #[test]
    fn each_display_state_reads_as_one_line() {
        let prior = PriorCard {
            nonce: "p".into(),
            channel_id: 1,
            message: None,
            body: "{}".into(),
            shown: false,
            replies: vec![],
        };
        let id = incident().streak_id();
        // (message, display) → OWES, WAITING, TRIES, NEXT TRY, SENDER, LAST ERROR
        let cases: Vec<(Option<MessageRef>, Display, [&str; 6])> = vec![
            (None, Display { want: 1, since: NOW - 5, ..Display::default() }, ["post", "5s", "0", "now", "—", "—"]),
            (
                posted(),
                Display { want: 3, shown: 2, since: NOW - 125, ..Display::default() },
                ["edit", "2m 05s", "0", "now", "—", "—"],
            ),
            (
                posted(),
                Display {
                    want: 2,
                    shown: 2,
                    replies: vec![reply("r")],
                    since: NOW - 60,
                    not_before_ms: NOW_MS + 40_000,
                    attempts: 1,
                    last_error: Some("a reply: Discord rate-limited the request; retry after 40.0 s".into()),
                    ..Display::default()
                },
                [
                    "1 reply",
                    "1m 00s",
                    "1",
                    "in 40s",
                    "—",
                    "a reply: Discord rate-limited the request; retry after 40.0 s",
                ],
            ),
            (
                None,
                Display {
                    want: 1,
                    replies: vec![reply("a"), reply("b")],
                    prior: vec![prior.clone(), prior.clone()],
                    since: NOW - 7_300,
                    not_before_ms: NOW_MS - 1,
                    attempts: 7,
                    last_error: Some("the card: Discord answered 403:\n  Missing Access".into()),
                    ..Display::default()
                },
                [
                    "post, 2 replies, 2 earlier cards",
                    "2h 01m",
                    "7",
                    "now",
                    "—",
                    "the card: Discord answered 403: Missing Access",
                ],
            ),
            (
                posted(),
                Display {
                    want: 4,
                    shown: 3,
                    since: NOW - 30,
                    not_before_ms: NOW_MS + 1,
                    lease: Some(Lease { by: "c1-3".into(), until_ms: NOW_MS + 24_200 }),
                    ..Display::default()
                },
                ["edit", "30s", "0", "in 1s", "held 25s more", "—"],
            ),
            (
                posted(),
                Display {
                    prior: vec![PriorCard { replies: vec![reply("x")], ..prior.clone() }],
                    since: 1,
                    attempts: 2,
                    lease: Some(Lease { by: "c1-3".into(), until_ms: NOW_MS }),
                    last_error: Some("an earlier card: Discord did not answer in time".into()),
                    ..Display::default()
                },
                ["1 earlier card", "—", "2", "now", "lapsed", "an earlier card: Discord did not answer in time"],
            ),
        ];
        for (message, display, expected) in cases {
            let mut i = incident();
            i.message = message;
            i.display = display;
            assert!(i.display.pending(), "{:?}", i.display);
            let cells = cells(&i, NOW_MS);
            assert_eq!(cells[..3], [id.as_str(), "acme/web CI on main", "1184576487578214401"]);
            assert_eq!(cells[3..], expected, "{:?}", i.display);
        }
    }

    #[test]
    fn a_line_is_the_cells_in_columns() {
        let mut i = incident();
        i.display = Display {
            want: 1,
            since: NOW - 5,
            attempts: 2,
            last_error: Some("the card: 503".into()),
            ..Display::default()
        };
        assert_eq!(
            line(&i, NOW_MS),
            format!(
                "{:<17} acme/web CI on main              1184576487578214401  post                         5s      2  now        —              the card: 503",
                i.streak_id()
            )
        );
    }

    #[test]
    fn secrets_in_an_error_are_redacted() {
        let mut i = incident();
        let token = format!("ghp_{}", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8");
        i.display =
            Display { want: 1, since: NOW - 5, last_error: Some(format!("the card: {token}")), ..Display::default() };
        let line = line(&i, NOW_MS);
        assert!(!line.contains(&token) && line.contains("the card:"), "{line}");
    }

    #[test]
    fn the_listing_has_the_count_and_the_oldest_age_and_goes_oldest_first() {
        assert_eq!(report_text(&[], NOW_MS), "Nothing waits: the outbox is empty.\n");
        let mut newer = incident();
        newer.id = "bbbbbbbbbbbb".into();
        newer.display = Display { want: 1, since: NOW - 10, ..Display::default() };
        let mut older = incident();
        older.id = "aaaaaaaaaaaa".into();
        older.message = posted();
        older.display = Display { want: 2, shown: 1, since: NOW - 300, ..Display::default() };
        let mut cards = vec![newer, older];
        sort(&mut cards);
        let text = report_text(&cards, NOW_MS);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "2 cards wait to be sent to Discord, the oldest for 5m 00s");
        assert!(lines[1].starts_with("INCIDENT") && lines[1].ends_with("LAST ERROR"), "{text}");
        assert!(lines[2].starts_with("aaaaaaaaaaaa-1") && lines[2].contains("edit"), "{text}");
        assert!(lines[3].starts_with("bbbbbbbbbbbb-1") && lines[3].contains("post"), "{text}");
        assert_eq!(
            report_text(&cards[..1], NOW_MS).lines().next(),
            Some("1 card waits to be sent to Discord, the oldest for 5m 00s")
        );

        let json = report_json(&cards, NOW_MS);
        assert_eq!(json["count"], 2);
        assert_eq!(json["oldest_secs"], 300);
        assert_eq!(json["cards"][0]["incident"], "aaaaaaaaaaaa-1");
        assert_eq!(json["cards"][0]["owes"], json!({"post": false, "edit": true, "replies": 0, "earlier_cards": 0}));
        assert_eq!(json["cards"][0]["channel_id"], "1184576487578214401");
        assert_eq!(json["cards"][1]["due"], true);
        assert_eq!(json["cards"][1]["held"], false);
        assert_eq!(report_json(&[], NOW_MS), json!({"count": 0, "oldest_secs": null, "cards": []}));
    }
}
