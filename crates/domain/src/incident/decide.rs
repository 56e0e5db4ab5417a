//! The decision: the next state of an incident after one observation, and what to do about it;
//! calming, escalation, the log tail and the culprits.

use super::model::*;

/// Flap damping and the like, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub flap_count: u32,
    pub flap_minutes: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Self { flap_count: 4, flap_minutes: 60 }
    }
}

/// What to do once the new state is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing changes: older, equal or neutral observations.
    Nothing(&'static str),
    /// The state changes (a success with no incident open, say) but nothing is posted.
    Record,
    /// The first failure of a streak: post the incident message.
    Post,
    /// A later failure (or flapping): edit the message in place.
    Edit,
    /// A newer success: edit the message to resolved and post one reply referencing it.
    Resolve,
    /// A failure of a muted incident: tracked, nothing posted; log `Alert muted`.
    Muted,
}

/// The next state (`None`: write nothing) and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub next: Option<Incident>,
    pub action: Action,
}

impl Decision {
    fn nothing(reason: &'static str) -> Self {
        Self { next: None, action: Action::Nothing(reason) }
    }
}

/// Decides what one observation does to an incident.
///
/// - Older or equal observations (by [`Order`]) change nothing; so do neutral outcomes.
/// - A failure opens a streak (post) or extends it (edit); muted, it posts nothing.
/// - A success resolves only an open streak, and only when newer than its latest failure (it is:
///   it is newer than everything seen); while flapping it edits instead.
/// - A newer success with nothing open is still recorded, so that an older failure arriving
///   after it cannot open an incident while the branch is green.
pub fn decide(current: Option<&Incident>, obs: &Observation, now: u64, policy: Policy) -> Decision {
    if obs.outcome == Outcome::Neutral {
        return Decision::nothing("cancelled, skipped or neutral: opens and resolves nothing");
    }
    let base = current.cloned().unwrap_or_else(|| Incident::new(&obs.key));
    if current.is_some() && obs.run.order <= base.latest {
        return Decision::nothing("not newer than what this incident has seen");
    }
    // A health check: one failure is a strike, not yet an incident; a pass with nothing open and
    // no strike changes nothing (no write per tick per healthy endpoint).
    if matches!(obs.key.subject, Subject::Endpoint { .. }) && !base.open {
        match obs.outcome {
            Outcome::Failure if base.strikes + 1 < ENDPOINT_STRIKES => {
                let mut next = base.next_version(now);
                next.latest = obs.run.order;
                next.strikes = base.strikes + 1;
                return Decision { next: Some(next), action: Action::Record };
            }
            Outcome::Success if base.strikes == 0 => return Decision::nothing("healthy, and nothing open"),
            _ => {}
        }
    }
    let mut next = base.next_version(now);
    next.latest = obs.run.order;
    // A flip is a change of outcome against the previous newest observation; flips outlive a
    // streak, so that fail/pass/fail/pass is seen as flapping however often it resolves.
    let was_failing = base.open && !base.latest_passing;
    let flipped = current.is_some() && (obs.outcome == Outcome::Failure) != was_failing;
    let window = policy.flap_minutes.saturating_mul(60);
    next.flips.retain(|t| now.saturating_sub(*t) < window);
    if flipped {
        next.flips.push(now);
    }
    let flapping = next.flips.len() > policy.flap_count as usize;
    if let Some(m) = next.mute
        && !m.active(now)
    {
        next.mute = None;
    }
    match obs.outcome {
        Outcome::Failure => {
            next.latest_passing = false;
            next.latest_failure = Some(obs.run.clone());
            if base.open {
                next.failures += 1;
                next.flapping = next.flapping || flapping;
                let action = if next.muted(now) {
                    Action::Muted
                } else if !next.has_card() {
                    Action::Post
                } else {
                    Action::Edit
                };
                return Decision { next: Some(next), action };
            }
            // A new streak.
            next.open = true;
            next.strikes = 0;
            next.streak += 1;
            next.opened_at = now;
            next.failures = 1;
            next.first_failure = Some(obs.run.clone());
            next.fixed_by = None;
            next.resolved_at = None;
            next.acked = None;
            next.escalated_at = None;
            next.rerun = None;
            next.flapping = flapping;
            if flapping && next.has_card() {
                // Flapping: the one message comes back to life instead of a new post.
                let action = if next.muted(now) { Action::Muted } else { Action::Edit };
                return Decision { next: Some(next), action };
            }
            // The old card's last state: as the old streak left it (`base`, not `next`, which
            // already shows the new streak).
            next.retire_card(|| super::render::render(&base, now).to_json().to_string());
            next.mentioned = Vec::new();
            let action = if next.muted(now) { Action::Muted } else { Action::Post };
            Decision { next: Some(next), action }
        }
        Outcome::Success => {
            next.latest_passing = false;
            next.strikes = 0;
            if !base.open {
                return Decision { next: Some(next), action: Action::Record };
            }
            if flapping {
                // Shown as flapping in the one message; no resolve each time.
                next.flapping = true;
                next.latest_passing = true;
                let action = if next.has_card() && !next.muted(now) { Action::Edit } else { Action::Record };
                return Decision { next: Some(next), action };
            }
            next.fixed_by = Some(obs.run.clone());
            resolve(&mut next, now);
            let action = if next.has_card() { Action::Resolve } else { Action::Record };
            Decision { next: Some(next), action }
        }
        Outcome::Neutral => Decision::nothing("neutral"),
    }
}

/// Closes the open streak of `next` at `now` and files it in the history.
fn resolve(next: &mut Incident, now: u64) {
    next.open = false;
    next.latest_passing = false;
    next.flapping = false;
    next.resolved_at = Some(now);
    // "until fixed" ends here; a timed mute runs on.
    if next.mute.is_some_and(|m| m.until.is_none()) {
        next.mute = None;
    }
    if let Some(first) = &next.first_failure {
        next.history.push(Streak {
            streak: next.streak,
            opened_at: next.opened_at,
            first_failure_completed_at: first.completed_at,
            message_posted_at: next.message.map(|m| m.posted_at),
            resolved_at: now,
            failures: next.failures,
            last_failure_run: next.latest_failure.as_ref().map(|r| r.run_number),
            fixed_by_run: next.fixed_by.as_ref().map(|r| r.run_number),
            acked_at: next.acked.map(|a| a.at),
        });
        let excess = next.history.len().saturating_sub(HISTORY);
        next.history.drain(..excess);
    }
}

/// For the tick: a flapping incident whose newest run passed and whose flips have left the window
/// is resolved now (the success that would have resolved it was damped).
pub fn calm(incident: &Incident, now: u64, policy: Policy) -> Option<Decision> {
    if !(incident.open && incident.flapping && incident.latest_passing) {
        return None;
    }
    let window = policy.flap_minutes.saturating_mul(60);
    let recent = incident.flips.iter().filter(|t| now.saturating_sub(**t) < window).count();
    if recent > policy.flap_count as usize {
        return None;
    }
    let mut next = incident.next_version(now);
    next.flips.retain(|t| now.saturating_sub(*t) < window);
    next.fixed_by = next.fixed_by.clone().or_else(|| {
        next.latest_failure.clone().map(|mut r| {
            r.order = next.latest;
            r.conclusion = "success".into();
            r.detail = None;
            r
        })
    });
    resolve(&mut next, now);
    let action = if next.has_card() { Action::Resolve } else { Action::Record };
    Some(Decision { next: Some(next), action })
}

/// Whether the tick should escalate this incident now.
pub fn needs_escalation(incident: &Incident, now: u64, escalate_minutes: u64) -> bool {
    incident.open
        && incident.has_card()
        && incident.acked.is_none()
        && incident.escalated_at.is_none()
        && !incident.muted(now)
        && now.saturating_sub(incident.opened_at) >= escalate_minutes.saturating_mul(60)
}

/// The last [`LOG_TAIL_LINES`] lines of a job log, redacted, at most [`LOG_TAIL_CHARS`]
/// characters (cut at the front: the end of a log is where it failed).
pub fn log_tail(log: &str) -> String {
    let redacted = crate::redact::redact(log);
    let lines: Vec<&str> = redacted.lines().collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    // GitHub prefixes each line with a timestamp; it only takes room.
    let tail: Vec<&str> = lines.iter().skip(start).map(|l| crate::fingerprint::strip_timestamp(l)).collect();
    let mut text = tail.join("\n").replace("```", "`\u{200b}``");
    let count = text.chars().count();
    if count > LOG_TAIL_CHARS {
        text = format!("…{}", text.chars().skip(count - LOG_TAIL_CHARS + 1).collect::<String>());
    }
    text
}

/// Discord users to mention for a failure: the run's actor and the head commit's author, through
/// `GITHUB_DISCORD_USERS`. Each at most once, in that order.
pub fn culprits(run: &RunRef, users: &[(String, u64)]) -> Vec<u64> {
    let mut out = Vec::new();
    for login in [run.actor.as_deref(), run.commit_author.as_deref()].into_iter().flatten() {
        let login = login.to_ascii_lowercase();
        if let Some((_, id)) = users.iter().find(|(l, _)| *l == login)
            && !out.contains(id)
        {
            out.push(*id);
        }
    }
    out
}
