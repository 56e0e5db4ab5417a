//! The buttons of an incident message: re-run, acknowledge, mute, unmute. They act on the stored
//! incident, never on what a custom id claims; every press is authorized and audited.

use super::*;

impl IncidentDesk {
    /// A press of an incident button (`custom_id` already parsed), by `caller`: authorized, checked
    /// against the store, carried out, audited, and answered with a typed outcome.
    pub async fn press(&self, id: &CustomId, caller: Caller<'_>, trace_id: &str, deadline: Deadline) -> PressOutcome {
        let command = match id {
            CustomId::IncidentRerun(_) => "incident.rerun",
            CustomId::IncidentAck(_) => "incident.ack",
            CustomId::IncidentMute(..) => "incident.mute",
            CustomId::IncidentUnmute(_) => "incident.unmute",
            CustomId::Confirm(_) | CustomId::Cancel(_) | CustomId::MarkKnown(_) | CustomId::KnownForm(_) => {
                return PressOutcome::Unknown;
            }
        };
        let outcome = match authorize_responder(caller, &self.config) {
            Err(refusal) => PressOutcome::Refused(refusal.to_string()),
            Ok(()) => self.act(id, caller.user_id, deadline).await,
        };
        let mut record = AuditRecord::new(trace_id, caller.user_id, command, outcome.audit_result())
            .meta("incident", id.id())
            .meta("outcome", format!("{outcome:?}"));
        if let CustomId::IncidentMute(_, Some(d)) = id {
            record = record.meta("duration", d.code());
        }
        if let Err(e) = within(deadline, STORE_BUDGET, self.audit.append(&record)).await {
            tracing::error!(audit_id = %record.audit_id, command, error = %e, "could not write the audit record of an incident press");
        }
        tracing::info!(
            command,
            user_id = caller.user_id,
            incident = id.id(),
            result = record.result.as_str(),
            "incident press"
        );
        outcome
    }

    /// Re-runs the failed jobs of the incident's latest failing run.
    pub async fn rerun(&self, streak_id: &str, caller: Caller<'_>, trace_id: &str, deadline: Deadline) -> PressOutcome {
        self.press(&CustomId::IncidentRerun(streak_id.into()), caller, trace_id, deadline).await
    }

    pub async fn acknowledge(
        &self,
        streak_id: &str,
        caller: Caller<'_>,
        trace_id: &str,
        deadline: Deadline,
    ) -> PressOutcome {
        self.press(&CustomId::IncidentAck(streak_id.into()), caller, trace_id, deadline).await
    }

    pub async fn mute(
        &self,
        streak_id: &str,
        duration: MuteFor,
        caller: Caller<'_>,
        trace_id: &str,
        deadline: Deadline,
    ) -> PressOutcome {
        self.press(&CustomId::IncidentMute(streak_id.into(), Some(duration)), caller, trace_id, deadline).await
    }

    pub async fn unmute(
        &self,
        streak_id: &str,
        caller: Caller<'_>,
        trace_id: &str,
        deadline: Deadline,
    ) -> PressOutcome {
        self.press(&CustomId::IncidentUnmute(streak_id.into()), caller, trace_id, deadline).await
    }

    /// Changes the stored incident (read fresh, written over its version, again on a conflict),
    /// then shows the change in its message.
    async fn act(&self, id: &CustomId, user: u64, deadline: Deadline) -> PressOutcome {
        let Some((incident_id, streak)) = split_streak_id(id.id()) else { return PressOutcome::Unknown };
        let now = now_secs();
        let mut fresh = None;
        for _ in 0..ATTEMPTS {
            let current = match fresh.take() {
                Some(c) => c,
                None => match within(deadline, STORE_BUDGET, self.repo.get_incident(incident_id)).await {
                    Ok(Some(c)) => c,
                    Ok(None) => return PressOutcome::Unknown,
                    Err(e) => return PressOutcome::Failed(format!("the incident store is unavailable: {e}")),
                },
            };
            if current.streak != streak || !current.open {
                return if current.streak < streak { PressOutcome::Unknown } else { PressOutcome::NotOpen };
            }
            let mut next = current.next_version(now);
            let done = match id {
                CustomId::IncidentAck(_) => {
                    if let Some(a) = current.acked {
                        return PressOutcome::Already(format!("Already acknowledged by <@{}>.", a.user_id));
                    }
                    next.acked = Some(Stamp { user_id: user, at: now });
                    "Acknowledged: no escalation for this incident.".to_string()
                }
                CustomId::IncidentMute(_, duration) => {
                    let duration = duration.unwrap_or(MuteFor::Hours(1));
                    let until = match duration {
                        MuteFor::Hours(h) => Some(now + u64::from(h) * 3600),
                        MuteFor::UntilFixed => None,
                    };
                    next.mute = Some(Mute { by: user, at: now, until });
                    format!("Muted {}: its failures post nothing; it still resolves.", duration.label())
                }
                CustomId::IncidentUnmute(_) => {
                    if !current.muted(now) {
                        return PressOutcome::Already("This incident is not muted.".into());
                    }
                    next.mute = None;
                    "Unmuted.".to_string()
                }
                CustomId::IncidentRerun(_) => {
                    if let Some(r) = current.rerun
                        && now.saturating_sub(r.at) < RERUN_GUARD_SECS
                    {
                        return PressOutcome::Already(format!("A re-run was just requested by <@{}>.", r.user_id));
                    }
                    if self.github.is_none() {
                        return PressOutcome::Failed("GitHub is not configured: set GITHUB_TOKEN.".into());
                    }
                    next.rerun = Some(Stamp { user_id: user, at: now });
                    "Re-run of the failed jobs requested.".to_string()
                }
                CustomId::Confirm(_) | CustomId::Cancel(_) | CustomId::MarkKnown(_) | CustomId::KnownForm(_) => {
                    return PressOutcome::Unknown;
                }
            };
            // The card shows the change (acknowledged, muted): through the outbox.
            let mut claim = None;
            if next.has_card() {
                next.display.change(now);
                claim = self.claim_if_due(&mut next);
            }
            match within(deadline, STORE_BUDGET, self.repo.put_incident(&next)).await {
                Ok(IncidentWrite::Written) => {
                    self.cache.remember(&next);
                    if matches!(id, CustomId::IncidentRerun(_))
                        && let Err(why) = self.call_rerun(&next, deadline).await
                    {
                        // Give the guard back, so that another press can try again.
                        let mut undo = next.next_version(now_secs());
                        undo.rerun = current.rerun;
                        let _ = self.put(&undo, None, deadline).await;
                        return PressOutcome::Failed(why);
                    }
                    if let Some(u) = self.send_written(&next, claim.as_deref()).await {
                        self.settle(u, None, deadline).await;
                    }
                    return PressOutcome::Done(done);
                }
                Ok(IncidentWrite::Conflict(Some(stored))) => fresh = Some(*stored),
                Ok(IncidentWrite::Conflict(None) | IncidentWrite::AlreadyDone) => return PressOutcome::Unknown,
                Err(e) => return PressOutcome::Failed(format!("the incident store is unavailable: {e}")),
            }
        }
        PressOutcome::Failed("the incident kept changing; press again".into())
    }

    async fn call_rerun(&self, incident: &Incident, deadline: Deadline) -> Result<(), String> {
        let github = self.github.as_ref().ok_or("GitHub is not configured: set GITHUB_TOKEN.")?;
        let run =
            incident.latest_failure.as_ref().filter(|r| r.run_id > 0).ok_or("this incident has no run to re-run")?;
        let repo: RepoName =
            incident.key.repository.parse().map_err(|_| "the incident's repository is not owner/name")?;
        match deadline.run(github.rerun_failed_jobs(&repo, run.run_id)).await {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(format!("GitHub refused the re-run: {e}")),
            None => Err("GitHub did not answer in time; press again".into()),
        }
    }
}

/// `{id}-{streak}` of a custom id.
fn split_streak_id(streak_id: &str) -> Option<(&str, u64)> {
    let (id, streak) = streak_id.rsplit_once('-')?;
    Some((id, streak.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_ids_name_an_incident_and_a_streak_or_nothing() {
        assert_eq!(split_streak_id("f7d3348c25c5-3"), Some(("f7d3348c25c5", 3)));
        assert_eq!(split_streak_id("f7d3348c25c5"), None);
        assert_eq!(split_streak_id("f7d3348c25c5-x"), None);
        let repo_name = |repository: &str| repository.parse::<RepoName>().ok();
        assert_eq!(repo_name("acme/widget").map(|r| r.to_string()).as_deref(), Some("acme/widget"));
        assert!(repo_name("acme").is_none() && repo_name("/widget").is_none());
    }

    #[test]
    fn press_outcomes_map_to_audit_results_and_ephemeral_replies() {
        let cases = [
            (PressOutcome::Done("ok".into()), AuditResult::Posted),
            (PressOutcome::Already("ok".into()), AuditResult::Posted),
            (PressOutcome::Refused("no".into()), AuditResult::Blocked),
            (PressOutcome::Unknown, AuditResult::Blocked),
            (PressOutcome::NotOpen, AuditResult::Blocked),
            (PressOutcome::Failed("x".into()), AuditResult::Failed),
        ];
        for (outcome, result) in cases {
            assert_eq!(outcome.audit_result(), result, "{outcome:?}");
            assert_eq!(outcome.reply().to_json()["flags"], 64, "{outcome:?}");
        }
    }
}
