//! Sending what an incident's card owes (the outbox, `incident::outbox`): the card posted with a
//! nonce or edited to the newest state, then its replies; what went out is filed back into the
//! incident (with the delivery's trace, so that a delivery stays at three store calls when Discord
//! answers at once). What Discord refuses for now stays in the outbox, sent by the next drain.

use valine_domain::incident::outbox::{PendingReply, Sent, nonce};
use valine_domain::trace::Trace;

use super::*;

/// A card this container claimed and tried to send: to be filed into its incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsettled {
    /// The incident as written with the claim.
    pub incident: Incident,
    pub sent: Sent,
}

impl Unsettled {
    /// Whether anything is left unsent (the card stays in the outbox).
    pub fn left(&self) -> bool {
        self.sent.failed.is_some()
    }
}

/// What a drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Cards that had something to send when the drain looked.
    pub pending: usize,
    /// Cards sent in full.
    pub sent: usize,
    /// Cards still owing something (rate limited, not due yet, held by another sender).
    pub left: usize,
    /// Seconds since the oldest unsent change, at the start.
    pub oldest_secs: u64,
    /// The same, of the cards left at the end.
    pub oldest_left_secs: u64,
    /// The soonest a card left behind may be tried again (epoch milliseconds), if any.
    pub next_due_ms: Option<u64>,
    pub errors: Vec<String>,
}

impl DrainReport {
    /// One card left behind, to be tried again at `at_ms`.
    fn wait(&mut self, at_ms: u64, since: u64) {
        self.left += 1;
        self.oldest_left_secs = self.oldest_left_secs.max(now_secs().saturating_sub(since));
        self.next_due_ms = Some(self.next_due_ms.map_or(at_ms, |d| d.min(at_ms)));
    }
}

/// A message body with Discord's nonce, so that the same post sent twice within minutes is one
/// message (`enforce_nonce`).
fn with_nonce(mut body: serde_json::Value, nonce: &str) -> serde_json::Value {
    if let Some(object) = body.as_object_mut() {
        object.insert("nonce".into(), serde_json::Value::String(nonce.to_string()));
        object.insert("enforce_nonce".into(), serde_json::Value::Bool(true));
    }
    body
}

/// How long to wait after `error` before trying again (0: the card's own backoff).
fn retry_ms(error: &DiscordError) -> u64 {
    match error {
        DiscordError::RateLimited { retry_after } => retry_after.as_millis().try_into().unwrap_or(u64::MAX),
        _ => 0,
    }
}

impl IncidentDesk {
    /// Sends what `incident`'s card owes: earlier cards' last edits, the card (posted, or edited to
    /// this state), then its replies. Stops at the first refusal; what it sent is in the answer.
    pub(super) async fn send(&self, incident: &Incident, deadline: Deadline) -> Sent {
        let mut sent = Sent::default();
        let d = &incident.display;
        let fail = |sent: &mut Sent, what: &str, e: &DiscordError| {
            tracing::warn!(incident = %incident.streak_id(), what, error = %e, "the card could not be sent yet; it stays in the outbox");
            sent.failed = Some((format!("{what}: {e}"), retry_ms(e)));
        };
        for prior in &d.prior {
            let body = serde_json::from_str(&prior.body).unwrap_or(serde_json::Value::Null);
            let message = match prior.message {
                Some(m) => {
                    if !prior.shown {
                        match discord_call(deadline, self.discord.edit_message(m.channel_id, m.message_id, &body)).await
                        {
                            Ok(()) | Err(DiscordError::Status { status: 404, .. }) => {
                                sent.prior_shown.push(prior.nonce.clone());
                            }
                            Err(e) => {
                                fail(&mut sent, "an earlier card", &e);
                                return sent;
                            }
                        }
                    }
                    m
                }
                None => {
                    let body = with_nonce(body, &prior.nonce);
                    match discord_call(deadline, self.discord.post_message(prior.channel_id, &body)).await {
                        Ok(posted) => {
                            let posted = MessageRef {
                                channel_id: posted.channel_id,
                                message_id: posted.id,
                                posted_at: now_secs(),
                                guild_id: posted.guild_id,
                            };
                            sent.prior_posted.push((prior.nonce.clone(), posted));
                            sent.prior_shown.push(prior.nonce.clone());
                            self.metrics.alert(AlertMetric::Sent);
                            posted
                        }
                        Err(e) => {
                            fail(&mut sent, "an earlier card", &e);
                            return sent;
                        }
                    }
                }
            };
            for reply in &prior.replies {
                if let Err(e) = self.send_reply(reply, reply.to.unwrap_or(message), deadline).await {
                    fail(&mut sent, "an earlier card's reply", &e);
                    return sent;
                }
                sent.replies.push(reply.nonce.clone());
            }
        }
        let mut message = incident.message;
        if d.want > d.shown {
            let body = incident::render(incident, now_secs()).to_json();
            match message {
                None => {
                    let body = with_nonce(body, &nonce(&incident.streak_id(), "card"));
                    match discord_call(deadline, self.discord.post_message(incident.key.channel_id, &body)).await {
                        Ok(posted) => {
                            let posted = MessageRef {
                                channel_id: posted.channel_id,
                                message_id: posted.id,
                                posted_at: now_secs(),
                                guild_id: posted.guild_id,
                            };
                            message = Some(posted);
                            sent.posted = Some(posted);
                            sent.shown = Some(d.want);
                            self.metrics.alert(AlertMetric::Sent);
                            tracing::info!(incident = %incident.streak_id(), message_id = posted.message_id, "Alert sent");
                        }
                        Err(e) => {
                            fail(&mut sent, "the card", &e);
                            return sent;
                        }
                    }
                }
                Some(m) => {
                    match discord_call(deadline, self.discord.edit_message(m.channel_id, m.message_id, &body)).await {
                        Ok(()) => sent.shown = Some(d.want),
                        Err(DiscordError::Status { status: 404, .. }) => {
                            // Somebody deleted the card: nothing left to edit.
                            tracing::warn!(incident = %incident.streak_id(), "the card was deleted in Discord; its edit is dropped");
                            sent.shown = Some(d.want);
                        }
                        Err(e) => {
                            fail(&mut sent, "the card's edit", &e);
                            return sent;
                        }
                    }
                }
            }
        }
        for reply in &d.replies {
            let Some(to) = reply.to.or(message) else { break };
            if let Err(e) = self.send_reply(reply, to, deadline).await {
                fail(&mut sent, "a reply", &e);
                return sent;
            }
            sent.replies.push(reply.nonce.clone());
        }
        sent
    }

    /// Posts `reply` under `to` (with its nonce). A card deleted in Discord takes no replies: the
    /// reply is dropped, not retried forever.
    async fn send_reply(&self, reply: &PendingReply, to: MessageRef, deadline: Deadline) -> Result<(), DiscordError> {
        let body = with_nonce(serde_json::from_str(&reply.body).unwrap_or(serde_json::Value::Null), &reply.nonce);
        match discord_call(deadline, self.discord.reply(to.channel_id, to.message_id, &body)).await {
            Ok(_) => Ok(()),
            Err(DiscordError::Status { status: 404, .. }) => {
                tracing::warn!(message_id = to.message_id, "the card was deleted in Discord; its reply is dropped");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Writes what `u.sent` achieved into the incident as stored now (with `trace`, in the same
    /// write), again over a newer version when another writer moved it meanwhile. When the card
    /// still owes something it may send now (another writer changed it while this one sent), the
    /// same write claims it again and it is sent again: a few rounds at most, then the outbox.
    pub async fn settle(&self, u: Unsettled, trace: Option<&Trace>, deadline: Deadline) {
        let mut u = u;
        let mut trace = trace;
        for _round in 0..3 {
            let Some(again) = self.file(&u, trace, deadline).await else { return };
            trace = None;
            let sent = self.send(&again, Deadline::after(POST_BUDGET)).await;
            u = Unsettled { incident: again, sent };
        }
        // Whatever the last round sent is filed; anything left is the outbox's.
        let _ = self.file(&u, None, deadline).await;
        self.note_pending();
    }

    /// One filing of `u`; the incident as written when it claimed the card for another round.
    async fn file(&self, u: &Unsettled, trace: Option<&Trace>, deadline: Deadline) -> Option<Incident> {
        let now_ms = valine_domain::clock::now_millis();
        let mut current = u.incident.clone();
        for _ in 0..ATTEMPTS {
            let mut next = current.next_version(now_secs());
            next.file_sent(u.incident.streak, &u.sent, now_ms);
            let again = u.sent.failed.is_none() && self.claim_if_due(&mut next).is_some();
            match within(deadline, STORE_BUDGET, self.repo.write_incident(&next, None, trace)).await {
                Ok(IncidentWrite::Written) => {
                    self.cache.remember(&next);
                    if again {
                        return Some(next);
                    }
                    if next.display.pending() {
                        self.note_pending();
                    }
                    return None;
                }
                Ok(IncidentWrite::Conflict(Some(stored))) => current = *stored,
                Ok(IncidentWrite::Conflict(None) | IncidentWrite::AlreadyDone) => return None,
                Err(e) => {
                    // The card stays claimed until its lease runs out; then a drain sends it again
                    // (the nonce keeps a post from being doubled within minutes).
                    tracing::error!(incident = %u.incident.streak_id(), error = %e, "what the card sent could not be recorded");
                    self.cache.forget(&u.incident.id);
                    self.note_pending();
                    return None;
                }
            }
        }
        self.note_pending();
        None
    }

    /// Claims `incident`'s card when it is due (written before sending, so that one sender sends
    /// it) and sends it. `None`: nothing due, or another sender holds it.
    pub(super) async fn claim_and_send(&self, incident: &Incident, deadline: Deadline) -> Option<Unsettled> {
        let now_ms = valine_domain::clock::now_millis();
        if !incident.display.due(now_ms) {
            return None;
        }
        let mut claimed = incident.next_version(now_secs());
        self.claim_if_due(&mut claimed)?;
        match within(deadline, STORE_BUDGET, self.repo.put_incident(&claimed)).await {
            Ok(IncidentWrite::Written) => {
                self.cache.remember(&claimed);
                let sent = self.send(&claimed, deadline).await;
                Some(Unsettled { incident: claimed, sent })
            }
            Ok(IncidentWrite::Conflict(stored)) => {
                if let Some(stored) = stored {
                    self.cache.remember(&stored);
                }
                None
            }
            Ok(IncidentWrite::AlreadyDone) => None,
            Err(e) => {
                tracing::warn!(incident = %incident.streak_id(), error = %e, "could not claim the card");
                None
            }
        }
    }

    /// Sends what the outbox holds, oldest first, within `deadline`: each due card claimed, sent
    /// and settled. Cards not due yet, held by another sender or refused again stay.
    pub async fn drain(&self, deadline: Deadline) -> DrainReport {
        let mut report = DrainReport::default();
        let entries = match within(deadline, STORE_BUDGET, self.outbox.pending_cards(valine_store::MAX_LIST)).await {
            Ok(e) => e,
            Err(e) => {
                report.errors.push(format!("could not list the outbox: {e}"));
                return report;
            }
        };
        let now = now_secs();
        report.pending = entries.len();
        report.oldest_secs = entries.iter().map(|e| now.saturating_sub(e.since)).max().unwrap_or(0);
        self.pending.store(!entries.is_empty(), std::sync::atomic::Ordering::Relaxed);
        // A channel Discord rate-limited in this drain is not tried again before its wait is over.
        let mut blocked: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
        for entry in entries {
            let now_ms = valine_domain::clock::now_millis();
            let wait_until = entry.not_before_ms.max(blocked.get(&entry.channel_id).copied().unwrap_or(0));
            if deadline.left() < RESERVE || wait_until > now_ms {
                report.wait(wait_until, entry.since);
                continue;
            }
            let incident = match within(deadline, STORE_BUDGET, self.repo.get_incident(&entry.id)).await {
                Ok(Some(i)) => i,
                Ok(None) => continue,
                Err(e) => {
                    report.errors.push(e.to_string());
                    report.left += 1;
                    continue;
                }
            };
            match self.claim_and_send(&incident, deadline).await {
                Some(u) => {
                    let retry = u.sent.failed.as_ref().map(|(_, ms)| now_ms + ms);
                    self.settle(u, None, deadline).await;
                    match retry {
                        Some(at) => {
                            blocked.insert(entry.channel_id, at);
                            report.wait(at, entry.since);
                        }
                        None => report.sent += 1,
                    }
                }
                None if incident.display.pending() => {
                    let d = &incident.display;
                    report.wait(d.not_before_ms.max(d.lease.as_ref().map_or(0, |l| l.until_ms)), entry.since);
                }
                None => {}
            }
        }
        if report.left == 0 {
            self.pending.store(false, std::sync::atomic::Ordering::Relaxed);
        }
        if report.pending > 0 {
            tracing::info!(
                pending = report.pending,
                sent = report.sent,
                left = report.left,
                oldest_secs = report.oldest_secs,
                "outbox drained"
            );
        }
        report
    }

    /// Drains until the outbox is empty or `deadline`: each round sends what is due, then waits
    /// for the soonest card left behind (Discord's `retry_after`, a backoff, another sender's
    /// hold). What is left at the end is the next drain's (the tick runs every minute).
    pub async fn drain_until(&self, deadline: Deadline) -> DrainReport {
        let mut total = DrainReport::default();
        for round in 0usize.. {
            let report = self.drain(deadline).await;
            if round == 0 {
                total.pending = report.pending;
                total.oldest_secs = report.oldest_secs;
            }
            total.sent += report.sent;
            total.left = report.left;
            total.oldest_left_secs = report.oldest_left_secs;
            total.next_due_ms = report.next_due_ms;
            let failed = !report.errors.is_empty();
            total.errors.extend(report.errors);
            if report.left == 0 || (failed && report.sent == 0) {
                break;
            }
            let now_ms = valine_domain::clock::now_millis();
            let wait = Duration::from_millis(report.next_due_ms.map_or(1000, |at| at.saturating_sub(now_ms)))
                .max(Duration::from_millis(50));
            if deadline.left() < wait + RESERVE {
                break;
            }
            tokio::time::sleep(wait).await;
        }
        total
    }

    /// Something is (as far as this container knows) left in the outbox.
    pub fn knows_pending(&self) -> bool {
        self.pending.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(super) fn note_pending(&self) {
        self.pending.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(poke) = &self.on_pending {
            poke();
        }
    }

    /// A reply for the card to post: its nonce is the streak's and `what`'s.
    pub(super) fn reply_of(incident: &mut Incident, what: &str, body: &serde_json::Value, now: u64) {
        let nonce = nonce(&incident.streak_id(), what);
        incident.display.reply(nonce, body.to_string(), now);
    }
}
