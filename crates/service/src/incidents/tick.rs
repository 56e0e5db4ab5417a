//! The scheduled tick: escalation of open, unacknowledged incidents and calming of flapping ones.

use super::*;

impl IncidentDesk {
    /// The scheduled tick: escalates open, unacknowledged incidents past `ALERT_ESCALATE_MINUTES`
    /// (one reply mentioning `ALERT_MENTION_ROLE_ID`), and resolves flapping ones that calmed.
    pub async fn tick(&self, now: u64, deadline: Deadline) -> TickReport {
        let mut report = TickReport::default();
        if self.channel("tick").is_err() {
            return report;
        }
        let all = match within(deadline, STORE_BUDGET, self.repo.list_incidents(valine_store::MAX_LIST)).await {
            Ok(all) => all,
            Err(e) => {
                tracing::error!(error = %e, "tick: could not list incidents");
                report.errors.push(e.to_string());
                return report;
            }
        };
        for inc in all.into_iter().filter(|i| i.open) {
            report.open += 1;
            if let Some(decision) = incident::calm(&inc, now, self.settings.policy)
                && let Some(mut next) = decision.next
            {
                if decision.action == Action::Resolve {
                    next.display.change(now);
                    let reply = incident::resolved_reply(&next).to_json();
                    Self::reply_of(&mut next, "resolved", &reply, now);
                }
                let claim = self.claim_if_due(&mut next);
                match self.put(&next, None, deadline).await {
                    Ok(IncidentWrite::Written) => {
                        report.calmed += 1;
                        tracing::info!(incident = %next.streak_id(), "Alert resolved: the flapping calmed");
                        if let Some(u) = self.send_written(&next, claim.as_deref()).await {
                            self.settle(u, None, deadline).await;
                        }
                    }
                    // Another writer got there first (no delivery is named: never `AlreadyDone`).
                    Ok(IncidentWrite::Conflict(_) | IncidentWrite::AlreadyDone) => {}
                    Err(e) => report.errors.push(e.to_string()),
                }
                continue;
            }
            if !incident::needs_escalation(&inc, now, self.settings.escalate_minutes) {
                continue;
            }
            let mut next = inc.next_version(now);
            next.escalated_at = Some(now);
            let role = next.mention_role.or(self.settings.destination.mention_role_id);
            let body = incident::escalation_reply(&next, role, now).to_json();
            Self::reply_of(&mut next, "escalated", &body, now);
            let claim = self.claim_if_due(&mut next);
            // Written first, with its reply: of two ticks at once, one escalates.
            match self.put(&next, None, deadline).await {
                Ok(IncidentWrite::Written) => {
                    tracing::info!(incident = %next.streak_id(), "Alert escalated");
                    report.escalated += 1;
                    if let Some(u) = self.send_written(&next, claim.as_deref()).await {
                        if let Some((error, _)) = &u.sent.failed {
                            report.errors.push(format!("escalation queued: {error}"));
                        }
                        self.settle(u, None, deadline).await;
                    }
                }
                Ok(IncidentWrite::Conflict(_) | IncidentWrite::AlreadyDone) => {}
                Err(e) => report.errors.push(e.to_string()),
            }
        }
        tracing::info!(
            open = report.open,
            escalated = report.escalated,
            calmed = report.calmed,
            errors = report.errors.len(),
            "tick done"
        );
        report
    }
}
