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
    /// Earlier streaks' cards that still owe something (a new streak began before it went).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prior: Vec<PriorCard>,
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

/// An earlier streak's card that still owes its last state (and perhaps its replies): posted
/// first when it never was, else edited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorCard {
    /// The card's own post nonce: a post that went out unrecorded is found again.
    pub nonce: String,
    pub channel_id: u64,
    #[serde(default)]
    pub message: Option<super::model::MessageRef>,
    /// Its last state (JSON text), and whether the card shows it.
    pub body: String,
    #[serde(default)]
    pub shown: bool,
    #[serde(default)]
    pub replies: Vec<PendingReply>,
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
    /// The replies posted, by nonce.
    pub replies: Vec<String>,
    /// Earlier cards: posted now (by their nonce), and shown in their last state.
    pub prior_posted: Vec<(String, super::model::MessageRef)>,
    pub prior_shown: Vec<String>,
    /// Why the rest was not sent, and how long to wait before trying again.
    pub failed: Option<(String, u64)>,
}

impl Display {
    /// Something is still to be shown.
    pub fn pending(&self) -> bool {
        self.want > self.shown || !self.replies.is_empty() || !self.prior.is_empty()
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

    /// Whether the card may be sent now: something is pending, the retry time has come, and no
    /// send holds it (each send claims it afresh, so that two sends from one container do not
    /// overlap either).
    pub fn due(&self, now_ms: u64) -> bool {
        self.pending() && self.not_before_ms <= now_ms && self.lease.as_ref().is_none_or(|l| l.until_ms <= now_ms)
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
        for prior in &mut self.prior {
            if let Some((_, m)) = sent.prior_posted.iter().find(|(n, _)| *n == prior.nonce) {
                prior.message = prior.message.or(Some(*m));
            }
            prior.shown |= sent.prior_shown.contains(&prior.nonce);
            prior.replies.retain(|r| !sent.replies.contains(&r.nonce));
        }
        self.prior.retain(|p| !(p.shown && p.replies.is_empty()));
        self.lease = None;
        match &sent.failed {
            Some((error, retry_ms)) => {
                self.attempts = self.attempts.saturating_add(1);
                self.last_error = Some(error.clone());
                // Backoff when Discord names no wait: 1 s, 2 s, 4 s … at most a minute.
                let backoff = 1000u64.saturating_mul(1 << (self.attempts - 1).min(6)).min(60_000);
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
    /// A new streak begins: its card starts afresh. What the old card still owed (its last state,
    /// rendered by `last_state` from the incident as the old streak left it; its replies; posted
    /// first if it never was) stays pending as a prior card, so that nothing is lost.
    pub fn retire_card(&mut self, last_state: impl FnOnce() -> String) {
        let old = std::mem::take(&mut self.display);
        let owes = old.want > old.shown || !old.replies.is_empty();
        let mut next = Display { prior: old.prior, lease: old.lease, ..Display::default() };
        if owes {
            next.prior.push(PriorCard {
                nonce: nonce(&self.streak_id(), "card"),
                channel_id: self.key.channel_id,
                message: self.message,
                body: last_state(),
                shown: old.want <= old.shown && self.message.is_some(),
                replies: old.replies,
            });
        }
        if next.pending() {
            next.since = if old.since > 0 { old.since } else { 1 };
            next.not_before_ms = old.not_before_ms;
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
            // A newer streak began meanwhile: what was sent is the old streak's, now a prior card
            // (its post recorded there, so that it is edited rather than posted again; its posted
            // replies gone). Its last state is still to be shown: that edit is the prior's.
            let mut old = Sent { posted: None, shown: None, ..sent.clone() };
            if let Some(posted) = sent.posted {
                old.prior_posted.push((nonce(&format!("{}-{streak}", self.id), "card"), posted));
            }
            self.display.settle(&old, now_ms);
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
        assert!(!d.due(14_999) && d.due(15_000));
        d.settle(&Sent { replies: vec!["n1".into()], ..Sent::default() }, 16_000);
        assert!(!d.pending() && d.since == 0 && d.attempts == 0 && d.last_error.is_none());
    }

    #[test]
    fn one_sender_at_a_time_until_its_lease_runs_out() {
        let mut d = Display::default();
        d.change(1);
        d.claim("a", 1_000);
        assert!(d.held_by("a", 1_001) && !d.held_by("b", 1_001) && !d.due(1_001), "not even by its holder");
        assert!(d.due(1_000 + LEASE_MS), "a crashed sender's card is taken over");
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
                workflow_file: Default::default(),
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
        incident.retire_card(|| "last".into());
        assert!(incident.message.is_none() && incident.display.want == 0);
        let prior = &incident.display.prior;
        assert_eq!(prior.len(), 1);
        assert_eq!(prior[0].message.map(|m| m.message_id), Some(9));
        assert_eq!((prior[0].body.as_str(), prior[0].shown, prior[0].replies.len()), ("last", false, 1));
        assert!(incident.display.pending());
        // Sent in part: posted nothing new (it had a message), showed its last state; its reply waits.
        let mut d = incident.display.clone();
        d.settle(&Sent { prior_shown: vec![prior[0].nonce.clone()], ..Sent::default() }, 0);
        assert!(d.prior[0].shown && d.pending());
        d.settle(&Sent { replies: vec!["r1".into()], ..Sent::default() }, 0);
        assert!(d.prior.is_empty() && !d.pending());
    }

    #[test]
    fn a_post_that_lands_after_its_streak_ended_is_filed_into_the_prior_card() {
        use super::super::model::{IncidentKey, MessageRef};
        let key = IncidentKey::workflow(1, "acme/web", "CI", "main");
        let observation = |outcome| crate::incident::Observation {
            workflow_file: Default::default(),
            key: key.clone(),
            outcome,
            run: crate::incident::RunRef::default(),
        };
        let mut incident = crate::incident::decide(
            None,
            &observation(crate::incident::Outcome::Failure),
            1,
            crate::incident::Policy::default(),
        )
        .next
        .unwrap();
        incident.display.change(1);
        let first = incident.streak;
        // A sender claims the card and posts it; meanwhile a new streak begins.
        incident.retire_card(|| "last".into());
        incident.streak += 1;
        let posted = MessageRef { channel_id: 1, message_id: 9, posted_at: 1, guild_id: None };
        incident.file_sent(first, &Sent { posted: Some(posted), shown: Some(1), ..Sent::default() }, 5);
        assert!(incident.message.is_none(), "the new streak's card is its own");
        let prior = &incident.display.prior;
        assert_eq!(prior.len(), 1);
        assert_eq!(prior[0].message, Some(posted), "edited next, not posted again");
        assert!(!prior[0].shown, "its last state is still to be shown");
        assert!(incident.display.lease.is_none());
    }

    #[test]
    fn nonces_are_stable_short_and_distinct() {
        assert_eq!(nonce("abc-1", "card"), nonce("abc-1", "card"));
        assert_ne!(nonce("abc-1", "card"), nonce("abc-2", "card"));
        assert_ne!(nonce("abc-1", "card"), nonce("abc-1", "resolved"));
        assert_eq!(nonce("x", "y").len(), 25);
    }
}
