//! The outbox: what an incident's card (its one Discord message) must still show, kept in the
//! incident item itself and written in the same conditional write as the state it shows. A
//! delivery's job ends when that write lands; sending is a separate, repeatable step: post the card
//! (with a nonce, so that a retry after a lost answer finds the same message), or edit it to the
//! newest state (edits coalesce: only the latest state is sent), then post the replies. What was
//! sent is settled back into the item. Pure: the desk carries it out.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model::Incident;

/// How long a sender holds a card before another may take it over (a crash, a timeout).
pub const LEASE_MS: u64 = 30_000;
/// Discord keeps a message's nonce this long for `enforce_nonce`: a retry later may post twice.
pub const NONCE_WINDOW_SECS: u64 = 5 * 60;

/// The outbox state of a card.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Display {
    /// Bumped whenever the card must change; the card shows `shown`.
    #[serde(default)]
    pub want: u64,
    #[serde(default)]
    pub shown: u64,
    /// Replies still to post under the card (resolved, escalation), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replies: Vec<PendingReply>,
    /// Last edits of earlier streaks' cards, still to send (a new streak began before they went).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edits: Vec<PendingEdit>,
    /// When the oldest unsent change was recorded (epoch seconds; 0: nothing pending).
    #[serde(default)]
    pub since: u64,
    /// Not to be tried before this (epoch milliseconds): Discord's `retry_after`, or a backoff.
    #[serde(default)]
    pub not_before_ms: u64,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Who is sending it, until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// The group card that shows this incident instead of a card of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<String>,
}

/// A reply waiting to be posted under the card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReply {
    /// Discord's `nonce`: the same reply posted twice within minutes is one message.
    pub nonce: String,
    /// The message body (JSON text).
    pub body: String,
    /// The message it answers, when not this streak's card (an earlier streak's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<super::model::MessageRef>,
}

/// The last state of an earlier streak's card, still to be shown on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingEdit {
    pub nonce: String,
    pub to: super::model::MessageRef,
    pub body: String,
}

/// A sender's hold on a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub by: String,
    pub until_ms: u64,
}

/// What one send achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// The card's message, when this send posted it.
    pub posted: Option<super::model::MessageRef>,
    /// The `want` the card now shows.
    pub shown: Option<u64>,
    /// The replies posted and the earlier cards' edits sent, by nonce.
    pub replies: Vec<String>,
    /// Why the rest was not sent, and how long to wait before trying again.
    pub failed: Option<(String, u64)>,
}

impl Display {
    /// Something is still to be shown.
    pub fn pending(&self) -> bool {
        self.want > self.shown || !self.replies.is_empty() || !self.edits.is_empty()
    }

    /// The card must change: the next send shows the incident as it is now.
    pub fn change(&mut self, now: u64) {
        self.want += 1;
        if self.since == 0 {
            self.since = now;
        }
    }

    /// A reply to post after the card.
    pub fn reply(&mut self, nonce: String, body: String, now: u64) {
        if !self.replies.iter().any(|r| r.nonce == nonce) {
            self.replies.push(PendingReply { nonce, body, to: None });
        }
        if self.since == 0 {
            self.since = now;
        }
    }

    /// Whether `by` may send now: something is pending, the retry time has come, and nobody
    /// else holds it.
    pub fn due(&self, by: &str, now_ms: u64) -> bool {
        self.pending()
            && self.not_before_ms <= now_ms
            && self.lease.as_ref().is_none_or(|l| l.by == by || l.until_ms <= now_ms)
    }

    /// Takes the card for `by` (to be written before sending, so that nobody else sends it).
    pub fn claim(&mut self, by: &str, now_ms: u64) {
        self.lease = Some(Lease { by: by.to_string(), until_ms: now_ms + LEASE_MS });
    }

    /// Whether `by` holds it.
    pub fn held_by(&self, by: &str, now_ms: u64) -> bool {
        self.lease.as_ref().is_some_and(|l| l.by == by && l.until_ms > now_ms)
    }

    /// Files what a send achieved: the newest shown wins, posted replies go, the lease ends, and
    /// a failure sets when to try again.
    pub fn settle(&mut self, sent: &Sent, now_ms: u64) {
        if let Some(shown) = sent.shown {
            self.shown = self.shown.max(shown);
        }
        self.replies.retain(|r| !sent.replies.contains(&r.nonce));
        self.edits.retain(|e| !sent.replies.contains(&e.nonce));
        self.lease = None;
        match &sent.failed {
            Some((error, retry_ms)) => {
                self.attempts = self.attempts.saturating_add(1);
                self.last_error = Some(error.clone());
                // Backoff when Discord names no wait: 1 s, 2 s, 4 s … at most a minute.
                let backoff = 1000u64.saturating_mul(1 << self.attempts.min(6)).min(60_000);
                self.not_before_ms = now_ms + if *retry_ms > 0 { *retry_ms } else { backoff };
            }
            None => {
                self.attempts = 0;
                self.last_error = None;
                self.not_before_ms = 0;
            }
        }
        if !self.pending() {
            self.since = 0;
        }
    }
}

impl Incident {
    /// A new streak begins: its card starts afresh. What the old card still owed (its last edit,
    /// its replies) stays pending, addressed to the old message, so that nothing is lost.
    pub fn retire_card(&mut self, last_state: impl FnOnce(&Incident) -> String) {
        let old = std::mem::take(&mut self.display);
        let mut next = Display {
            replies: Vec::new(),
            edits: old.edits,
            since: old.since,
            not_before_ms: old.not_before_ms,
            lease: old.lease,
            ..Display::default()
        };
        match self.message {
            Some(message) => {
                if old.want > old.shown {
                    let body = last_state(self);
                    let nonce = nonce(&self.streak_id(), "last");
                    next.edits.push(PendingEdit { nonce, to: message, body });
                }
                next.replies =
                    old.replies.into_iter().map(|r| PendingReply { to: r.to.or(Some(message)), ..r }).collect();
            }
            // Never posted: what it owed goes with it.
            None => next.replies = old.replies.into_iter().filter(|r| r.to.is_some()).collect(),
        }
        if !next.pending() {
            next.since = 0;
        }
        self.display = next;
        self.message = None;
    }

    /// The incident shows on a card: posted, or waiting to be.
    pub fn has_card(&self) -> bool {
        self.message.is_some() || self.display.want > 0 || self.display.card.is_some()
    }

    /// What `sent` achieved, filed into this incident as it is stored now (which may have moved on
    /// since the send was claimed): the card's message if it is still this streak's, and the
    /// display's progress. `streak` is the streak the send was for.
    pub fn file_sent(&mut self, streak: u64, sent: &Sent, now_ms: u64) {
        if self.streak != streak {
            // A newer streak began meanwhile: what was sent is the old streak's; only the hold
            // is released.
            if self.display.lease.is_some() {
                self.display.lease = None;
            }
            return;
        }
        if self.message.is_none() {
            self.message = sent.posted;
        }
        self.display.settle(sent, now_ms);
    }
}

/// A Discord nonce (at most 25 characters) for `what` of `id`: the same every time it is asked.
pub fn nonce(id: &str, what: &str) -> String {
    let digest = Sha256::digest(format!("{id}\u{1f}{what}").as_bytes());
    hex::encode(digest).chars().take(25).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_is_pending_until_what_it_wants_is_shown_and_its_replies_posted() {
        let mut d = Display::default();
        assert!(!d.pending());
        d.change(100);
        d.change(101);
        assert!(d.pending() && d.since == 100 && d.want == 2);
        d.reply("n1".into(), "{}".into(), 102);
        d.reply("n1".into(), "{}".into(), 103);
        assert_eq!(d.replies.len(), 1, "one reply per nonce");
        // The edit of want 2 went out; the reply did not (rate limited for 5 s).
        d.settle(&Sent { shown: Some(2), failed: Some(("429".into(), 5000)), ..Sent::default() }, 10_000);
        assert!(d.pending() && d.shown == 2 && d.attempts == 1 && d.not_before_ms == 15_000);
        assert!(!d.due("a", 14_999) && d.due("a", 15_000));
        d.settle(&Sent { replies: vec!["n1".into()], ..Sent::default() }, 16_000);
        assert!(!d.pending() && d.since == 0 && d.attempts == 0 && d.last_error.is_none());
    }

    #[test]
    fn one_sender_at_a_time_until_its_lease_runs_out() {
        let mut d = Display::default();
        d.change(1);
        d.claim("a", 1_000);
        assert!(d.held_by("a", 1_001) && !d.due("b", 1_001) && d.due("a", 1_001));
        assert!(d.due("b", 1_000 + LEASE_MS), "a crashed sender's card is taken over");
        d.settle(&Sent { shown: Some(1), ..Sent::default() }, 2_000);
        assert!(d.lease.is_none() && !d.pending());
    }

    #[test]
    fn a_failure_without_a_wait_backs_off_and_caps() {
        let mut d = Display::default();
        d.change(1);
        for _ in 0..10 {
            d.settle(&Sent { failed: Some(("timeout".into(), 0)), ..Sent::default() }, 0);
        }
        assert_eq!(d.not_before_ms, 60_000);
    }

    #[test]
    fn a_new_streak_keeps_what_the_old_card_owed() {
        use super::super::model::{IncidentKey, MessageRef};
        let key = IncidentKey::workflow(1, "acme/web", "CI", "main");
        let mut incident = crate::incident::decide(
            None,
            &crate::incident::Observation {
                key,
                outcome: crate::incident::Outcome::Failure,
                run: crate::incident::RunRef::default(),
            },
            1,
            crate::incident::Policy::default(),
        )
        .next
        .unwrap();
        incident.message = Some(MessageRef { channel_id: 1, message_id: 9, posted_at: 1, guild_id: None });
        incident.display.change(2);
        incident.display.reply("r1".into(), "{}".into(), 2);
        incident.retire_card(|_| "last".into());
        assert!(incident.message.is_none() && incident.display.want == 0);
        assert_eq!(incident.display.edits.len(), 1);
        assert_eq!(incident.display.edits[0].to.message_id, 9);
        assert_eq!(incident.display.replies[0].to.map(|m| m.message_id), Some(9));
        assert!(incident.display.pending());
    }

    #[test]
    fn nonces_are_stable_short_and_distinct() {
        assert_eq!(nonce("abc-1", "card"), nonce("abc-1", "card"));
        assert_ne!(nonce("abc-1", "card"), nonce("abc-2", "card"));
        assert_ne!(nonce("abc-1", "card"), nonce("abc-1", "resolved"));
        assert_eq!(nonce("x", "y").len(), 25);
    }
}
