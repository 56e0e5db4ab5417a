//! An observation (a delivery's run, a health check) carried through the incident model: decide,
//! write over the version read, then post, edit or reply; the failing job and log tail fetched
//! alongside and edited in when they come late.

use super::*;

impl IncidentDesk {
    /// Writes `next` over the version before it (with `done`, that delivery recorded done in the
    /// same write); remembers what is stored either way. A write whose answer was lost is looked
    /// for once: found as written, it is written.
    pub(super) async fn put(
        &self,
        next: &Incident,
        done: Option<&str>,
        deadline: Deadline,
    ) -> StoreResult<IncidentWrite> {
        self.put_checked(next, done, deadline).await.0
    }

    /// [`Self::put`], and, when it failed, whether reading back showed it did not land (`true`)
    /// rather than nothing being known.
    async fn put_checked(
        &self,
        next: &Incident,
        done: Option<&str>,
        deadline: Deadline,
    ) -> (StoreResult<IncidentWrite>, bool) {
        let mut not_landed = false;
        let written = match within(deadline, STORE_BUDGET, self.repo.put_incident_with(next, done)).await {
            Err(e) if e.is_unavailable() && deadline.left() > RESERVE => {
                match within(deadline, STORE_BUDGET, self.repo.get_incident(&next.id)).await {
                    Ok(Some(stored)) if stored == *next => {
                        tracing::info!(incident = %next.streak_id(), "the incident write's answer was lost, but it landed");
                        Ok(IncidentWrite::Written)
                    }
                    Ok(_) => {
                        not_landed = true;
                        Err(e)
                    }
                    Err(_) => Err(e),
                }
            }
            other => other,
        };
        match &written {
            Ok(IncidentWrite::Written) => self.cache.remember(next),
            Ok(IncidentWrite::Conflict(Some(stored))) => self.cache.remember(stored),
            Ok(IncidentWrite::Conflict(None) | IncidentWrite::AlreadyDone) | Err(_) => self.cache.forget(&next.id),
        }
        (written, not_landed)
    }

    /// Carries one observation through the incident model: decide, write over the version read,
    /// then post, edit or reply. Keeps to `deadline`.
    pub async fn observe(&self, obs: &Observation, deadline: Deadline) -> Observed {
        self.observe_routed(obs, None, deadline).await
    }

    /// [`Self::observe`] for a route that mentions `mention_role` when an incident opens.
    pub async fn observe_routed(&self, obs: &Observation, mention_role: Option<u64>, deadline: Deadline) -> Observed {
        self.observe_delivery(obs, mention_role, None, deadline).await.0
    }

    /// [`Self::observe_routed`] as the last step of the delivery `done`: its first incident
    /// write records the delivery done too. The flag says what became of that record:
    /// `Some(true)` written with the incident, `Some(false)` found written by another attempt at
    /// the same delivery (nothing done here, any message of this attempt deleted), `None` not
    /// written (no write happened, or none was asked).
    pub async fn observe_delivery(
        &self,
        obs: &Observation,
        mention_role: Option<u64>,
        mut done: Option<&str>,
        deadline: Deadline,
    ) -> (Observed, Option<bool>) {
        let id = obs.key.id();
        let alert_key = obs.key.canonical().replace('\u{1f}', "|");
        let now = now_secs();
        let mut current = match self.cache.get(&id) {
            Some(c) => c,
            None => match within(deadline, STORE_BUDGET, self.repo.get_incident(&id)).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(alert_key = %alert_key, error = %e, "Alert failed: the incident could not be read");
                    self.metrics.alert(AlertMetric::Failed);
                    return (Observed::Failed { error: e.to_string(), posted: false, store: true }, None);
                }
            },
        };
        let mut detail_task: Option<JoinHandle<Option<FailureDetail>>> = None;
        let mut detail: Option<FailureDetail> = None;
        // A message this delivery posted before losing the write to another container.
        let mut orphan: Option<PostedMessage> = None;
        for _ in 0..ATTEMPTS {
            let decision = incident::decide(current.as_ref(), obs, now, self.settings.policy);
            let Some(mut next) = decision.next else {
                self.discard(orphan.take(), deadline).await;
                let Action::Nothing(reason) = decision.action else {
                    return (Observed::Nothing { reason: "no change" }, None);
                };
                tracing::info!(alert_key = %alert_key, reason, "incident unchanged");
                return (Observed::Nothing { reason }, None);
            };
            let shows_failure =
                obs.outcome == Outcome::Failure && matches!(decision.action, Action::Post | Action::Edit);
            if shows_failure && detail.is_none() {
                if detail_task.is_none() {
                    detail_task = self.start_detail(obs);
                }
                if let Some(task) = detail_task.as_mut() {
                    let wait = DETAIL_WAIT.min(deadline.left() / 3);
                    if let Ok(joined) = tokio::time::timeout(wait, &mut *task).await {
                        detail = joined.ok().flatten();
                        detail_task = None;
                    }
                }
            }
            if let Some(d) = &detail {
                attach_detail(&mut next, obs, d);
            }
            match decision.action {
                Action::Post => {
                    next.mentioned = incident::culprits(&obs.run, &self.settings.users);
                    next.mention_role = mention_role;
                    let body = incident::render(&next, now).to_json();
                    let posted = match orphan.take() {
                        // Ours from the lost round: edit it rather than post again.
                        Some(mine) => {
                            let _ = discord_call(deadline, self.discord.edit_message(mine.channel_id, mine.id, &body))
                                .await;
                            Ok(mine)
                        }
                        None => discord_call(deadline, self.discord.post_message(obs.key.channel_id, &body)).await,
                    };
                    let posted = match posted {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::error!(alert_key = %alert_key, error = %e, "Alert failed");
                            self.metrics.alert(AlertMetric::Failed);
                            return (Observed::Failed { error: e.to_string(), posted: false, store: false }, None);
                        }
                    };
                    next.message = Some(MessageRef {
                        channel_id: posted.channel_id,
                        message_id: posted.id,
                        posted_at: now_secs(),
                        guild_id: posted.guild_id,
                    });
                    let (written, not_landed) = self.put_checked(&next, done, deadline).await;
                    match written {
                        Ok(IncidentWrite::Written) => {
                            tracing::info!(alert_key = %alert_key, incident = %next.streak_id(), message_id = posted.id, "Alert sent");
                            self.metrics.alert(AlertMetric::Sent);
                            let recorded = done.take().map(|_| true);
                            self.late_detail(next, obs, detail_task, deadline).await;
                            return (Observed::Posted { message_id: posted.id }, recorded);
                        }
                        Ok(IncidentWrite::Conflict(stored)) => {
                            orphan = Some(posted);
                            current = stored.map(|b| *b);
                        }
                        Ok(IncidentWrite::AlreadyDone) => {
                            self.discard(Some(posted), deadline).await;
                            return (Observed::Nothing { reason: ALREADY_DONE }, Some(false));
                        }
                        Err(e) if not_landed => {
                            // Read back: not written. A message its incident does not know would
                            // never be edited or resolved: it is taken back, for a redelivery.
                            tracing::error!(alert_key = %alert_key, error = %e, "Alert failed: the incident could not be written; its message is taken back");
                            self.metrics.alert(AlertMetric::Failed);
                            self.discard(Some(posted), deadline).await;
                            return (Observed::Failed { error: e.to_string(), posted: false, store: true }, None);
                        }
                        Err(e) => {
                            tracing::error!(alert_key = %alert_key, error = %e, "the incident message is out but its state was not written");
                            self.metrics.alert(AlertMetric::Sent);
                            return (Observed::Failed { error: e.to_string(), posted: true, store: true }, None);
                        }
                    }
                }
                action => match self.put(&next, done, deadline).await {
                    Ok(IncidentWrite::Written) => {
                        let recorded = done.take().map(|_| true);
                        self.discard(orphan.take(), deadline).await;
                        let observed = self.carry_out(&action, &next, &alert_key, now, deadline).await;
                        if matches!(observed, Observed::Edited) {
                            self.late_detail(next, obs, detail_task, deadline).await;
                        }
                        return (observed, recorded);
                    }
                    Ok(IncidentWrite::Conflict(stored)) => current = stored.map(|b| *b),
                    Ok(IncidentWrite::AlreadyDone) => {
                        self.discard(orphan.take(), deadline).await;
                        return (Observed::Nothing { reason: ALREADY_DONE }, Some(false));
                    }
                    Err(e) => {
                        self.discard(orphan.take(), deadline).await;
                        tracing::error!(alert_key = %alert_key, error = %e, "Alert failed: the incident could not be written");
                        self.metrics.alert(AlertMetric::Failed);
                        return (Observed::Failed { error: e.to_string(), posted: false, store: true }, None);
                    }
                },
            }
        }
        self.discard(orphan.take(), deadline).await;
        let failed = Observed::Failed {
            error: "the incident kept changing under this delivery; redeliver it".into(),
            posted: false,
            store: false,
        };
        (failed, None)
    }

    /// The effects of a written decision other than a first post.
    pub(super) async fn carry_out(
        &self,
        action: &Action,
        next: &Incident,
        alert_key: &str,
        now: u64,
        deadline: Deadline,
    ) -> Observed {
        let Some(message) = next.message else {
            if *action == Action::Muted {
                tracing::info!(alert_key, incident = %next.streak_id(), "Alert muted");
                self.metrics.alert(AlertMetric::Suppressed);
                return Observed::Muted;
            }
            return Observed::Recorded;
        };
        match action {
            Action::Muted => {
                tracing::info!(alert_key, incident = %next.streak_id(), "Alert muted");
                self.metrics.alert(AlertMetric::Suppressed);
                // Still shown as it is (count, latest run), without a ping.
                let _ = self.edit(next, message, now, deadline).await;
                Observed::Muted
            }
            Action::Edit => {
                if let Err(e) = self.edit(next, message, now, deadline).await {
                    return Observed::Failed {
                        error: format!("the incident is recorded but its message could not be edited: {e}"),
                        posted: true,
                        store: false,
                    };
                }
                tracing::info!(alert_key, incident = %next.streak_id(), failures = next.failures, "Alert updated");
                Observed::Edited
            }
            Action::Resolve => {
                let edited = self.edit(next, message, now, deadline).await;
                let reply = incident::resolved_reply(next).to_json();
                let replied =
                    discord_call(deadline, self.discord.reply(message.channel_id, message.message_id, &reply)).await;
                match (edited, replied) {
                    (Ok(()), Ok(_)) => {
                        tracing::info!(alert_key, incident = %next.streak_id(), "Alert resolved");
                        self.metrics.alert(AlertMetric::Sent);
                        Observed::Resolved
                    }
                    (e1, e2) => {
                        let error =
                            [e1.err(), e2.err()].into_iter().flatten().map(|e| e.to_string()).collect::<Vec<_>>();
                        tracing::error!(alert_key, error = %error.join("; "), "Alert failed: the resolve was recorded but not all of it was shown");
                        self.metrics.alert(AlertMetric::Failed);
                        Observed::Failed { error: error.join("; "), posted: true, store: false }
                    }
                }
            }
            Action::Record | Action::Nothing(_) | Action::Post => Observed::Recorded,
        }
    }

    pub(super) async fn edit(
        &self,
        next: &Incident,
        message: MessageRef,
        now: u64,
        deadline: Deadline,
    ) -> Result<(), DiscordError> {
        let body = incident::render(next, now).to_json();
        let edited =
            discord_call(deadline, self.discord.edit_message(message.channel_id, message.message_id, &body)).await;
        if let Err(e) = &edited {
            tracing::warn!(incident = %next.streak_id(), error = %e, "could not edit the incident message");
        }
        edited
    }

    /// Deletes a message this delivery posted for a streak another container posted first.
    async fn discard(&self, orphan: Option<PostedMessage>, deadline: Deadline) {
        if let Some(m) = orphan
            && let Err(e) = discord_call(deadline, self.discord.delete_message(m.channel_id, m.id)).await
        {
            tracing::warn!(message_id = m.id, error = %e, "could not delete a duplicate incident message");
        }
    }

    fn start_detail(&self, obs: &Observation) -> Option<JoinHandle<Option<FailureDetail>>> {
        let github = self.github.clone()?;
        if obs.run.run_id == 0 {
            return None;
        }
        let repo: RepoName = obs.key.repository.parse().ok()?;
        let (run_id, attempt) = (obs.run.run_id, obs.run.attempt.max(1));
        Some(tokio::spawn(fetch_detail(github, repo, run_id, attempt)))
    }

    /// GitHub was slow: the message went out without the failing job; add it if it comes within
    /// the delivery's budget (an edit and one more write).
    async fn late_detail(
        &self,
        written: Incident,
        obs: &Observation,
        task: Option<JoinHandle<Option<FailureDetail>>>,
        deadline: Deadline,
    ) {
        let Some(task) = task else { return };
        let wait = deadline.left().saturating_sub(RESERVE);
        let Ok(Ok(Some(detail))) = tokio::time::timeout(wait, task).await else {
            tracing::info!(incident = %written.streak_id(), "the failing job is not known in time; the message goes without it");
            return;
        };
        let mut next = written.next_version(now_secs());
        attach_detail(&mut next, obs, &detail);
        if let (Ok(IncidentWrite::Written), Some(message)) = (self.put(&next, None, deadline).await, next.message) {
            let _ = self.edit(&next, message, now_secs(), deadline).await;
        }
    }
}

/// The failing job and step of a run, and its log tail: two GitHub calls.
async fn fetch_detail(github: Arc<dyn GitHub>, repo: RepoName, run_id: u64, attempt: u64) -> Option<FailureDetail> {
    let jobs = match github.run_attempt_jobs(&repo, run_id, attempt).await {
        Ok(jobs) => jobs,
        Err(e) => {
            tracing::warn!(run_id, error = %e, "could not list the run's jobs; the incident goes without them");
            return None;
        }
    };
    let job = first_failed_job(&jobs)?;
    let mut detail = FailureDetail {
        job: Some(job.name.clone()),
        step: job.failed_step().map(|s| s.name.clone()),
        job_url: job.html_url.clone(),
        log_tail: None,
    };
    match github.job_log(&repo, job.id).await {
        Ok(log) => detail.log_tail = Some(incident::log_tail(&log)).filter(|t| !t.trim().is_empty()),
        Err(e) => tracing::warn!(run_id, job_id = job.id, error = %e, "could not read the job's log"),
    }
    Some(detail)
}

/// Puts the failing job and log tail on the run they belong to.
fn attach_detail(next: &mut Incident, obs: &Observation, detail: &FailureDetail) {
    for run in [next.latest_failure.as_mut(), next.first_failure.as_mut()].into_iter().flatten() {
        if run.order == obs.run.order {
            run.detail = Some(detail.clone());
        }
    }
}
