//! An observation (a delivery's run, a health check) carried through the incident model: decide,
//! write over the version read, then post, edit or reply; the failing job and log tail fetched
//! alongside and edited in when they come late.

use super::send::Unsettled;
use super::*;
use valine_domain::fingerprint::{self, Flake, Sighting};
use valine_domain::known::{RETRY_UNDER_WAY_SECS, Retry, RetryCase, RetryVerdict, recent_flakes, retry_verdict};
use valine_store::SignatureLedger;

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

    /// Carries one observation through the incident model: decide, write over the version read
    /// (with what its card must show), then send the card and file what went out. Keeps to
    /// `deadline`.
    pub async fn observe(&self, obs: &Observation, deadline: Deadline) -> Observed {
        self.observe_routed(obs, None, deadline).await
    }

    /// [`Self::observe`] for a route that mentions `mention_role` when an incident opens.
    pub async fn observe_routed(&self, obs: &Observation, mention_role: Option<u64>, deadline: Deadline) -> Observed {
        let (observed, _, unsettled) = self.observe_delivery(obs, mention_role, false, None, deadline).await;
        if let Some(u) = unsettled {
            self.settle(u, None, deadline).await;
        }
        observed
    }

    /// [`Self::observe_routed`] as the last step of the delivery `done`: its incident write
    /// records the delivery done too, and carries what the card must show (the outbox). The
    /// delivery's job ends there; the card is then sent, and what went out comes back as
    /// [`Unsettled`], for the delivery to file with its trace ([`Self::settle`]). The flag says
    /// what became of the delivery's record: `Some(true)` written with the incident, `Some(false)`
    /// found written by another attempt at the same delivery (nothing done here), `None` not
    /// written (no write happened, or none was asked). `retry`: a route of the channel allows
    /// one retry of a failure ([`valine_domain::known`]).
    pub async fn observe_delivery(
        &self,
        obs: &Observation,
        mention_role: Option<u64>,
        retry: bool,
        done: Option<&str>,
        deadline: Deadline,
    ) -> (Observed, Option<bool>, Option<Unsettled>) {
        // A later attempt of a run the bot re-ran: a failure says "retried once", a pass is a
        // flake. Only a route that retries can have re-run it, so only such a delivery asks.
        let retried = if retry && obs.run.attempt > 1 && obs.run.run_id != 0 {
            match within(deadline, STORE_BUDGET, self.signatures.retry_of(&obs.key.repository, obs.run.run_id)).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(run_id = obs.run.run_id, error = %e, "could not read whether the run was retried");
                    None
                }
            }
        } else {
            None
        };
        let marked;
        let obs = match &retried {
            Some(_) if obs.outcome == Outcome::Failure => {
                marked = Observation { run: incident::RunRef { retried: true, ..obs.run.clone() }, ..obs.clone() };
                &marked
            }
            _ => obs,
        };
        let answer = self.observe_run(obs, mention_role, retry, done, deadline).await;
        // Once per run whatever the incident did (an older streak may have resolved with it).
        if let Some(r) = retried.filter(|_| obs.outcome == Outcome::Success) {
            self.record_retried_flake(&r, obs.run.attempt, deadline).await;
        }
        answer
    }

    async fn observe_run(
        &self,
        obs: &Observation,
        mention_role: Option<u64>,
        retry: bool,
        done: Option<&str>,
        deadline: Deadline,
    ) -> (Observed, Option<bool>, Option<Unsettled>) {
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
                    return (Observed::Failed { error: e.to_string(), posted: false, store: true }, None, None);
                }
            },
        };
        let mut detail_task: Option<JoinHandle<Option<FailureDetail>>> = None;
        let mut detail: Option<FailureDetail> = None;
        let mut may_retry = retry && obs.outcome == Outcome::Failure && obs.run.attempt <= 1;
        for _ in 0..ATTEMPTS {
            let decision = incident::decide(current.as_ref(), obs, now, self.settings.policy);
            let Some(mut next) = decision.next else {
                let Action::Nothing(reason) = decision.action else {
                    return (Observed::Nothing { reason: "no change" }, None, None);
                };
                tracing::info!(alert_key = %alert_key, reason, "incident unchanged");
                return (Observed::Nothing { reason }, None, None);
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
            if may_retry && shows_failure {
                may_retry = false;
                // The verdict needs the signature: wait for it as long as the delivery can.
                if let Some(task) = detail_task.take().filter(|_| detail.is_none()) {
                    let wait = deadline.left().saturating_sub(RESERVE);
                    detail = tokio::time::timeout(wait, task).await.ok().and_then(Result::ok).flatten();
                }
                let muted = current.as_ref().is_some_and(|c| c.open && c.muted(now));
                if let Some(observed) = self.retry_once(obs, muted, detail.as_ref(), deadline).await {
                    return (observed, None, None);
                }
            }
            if let Some(d) = &detail {
                attach_detail(&mut next, obs, d);
            }
            let claim = self.show(&mut next, &decision.action, mention_role, obs, now);
            let (written, not_landed) = self.put_checked(&next, done, deadline).await;
            match written {
                Ok(IncidentWrite::Written) => {
                    let recorded = done.map(|_| true);
                    let unsettled = self.send_written(&next, claim.as_deref()).await;
                    // after the card's send: the ledger is not what the channel waits for
                    if decision.action == Action::Resolve {
                        self.record_flake(&next, deadline).await;
                    }
                    let observed = self.observed(&decision.action, &next, unsettled.as_ref(), &alert_key);
                    let unsettled = self.late_detail(next, obs, detail_task, unsettled, deadline).await;
                    return (observed, recorded, unsettled);
                }
                Ok(IncidentWrite::Conflict(stored)) => current = stored.map(|b| *b),
                Ok(IncidentWrite::AlreadyDone) => {
                    return (Observed::Nothing { reason: ALREADY_DONE }, Some(false), None);
                }
                Err(e) => {
                    let why = if not_landed { "it was not written" } else { "whether it was written is unknown" };
                    tracing::error!(alert_key = %alert_key, error = %e, why, "Alert failed: the incident write failed");
                    self.metrics.alert(AlertMetric::Failed);
                    return (Observed::Failed { error: e.to_string(), posted: false, store: true }, None, None);
                }
            }
        }
        let failed = Observed::Failed {
            error: "the incident kept changing under this delivery; redeliver it".into(),
            posted: false,
            store: false,
        };
        (failed, None, None)
    }

    /// What the card of `next` must show after `action`, recorded in its display, and claimed for
    /// this container when it is due (it sends it right after the write).
    fn show(
        &self,
        next: &mut Incident,
        action: &Action,
        mention_role: Option<u64>,
        obs: &Observation,
        now: u64,
    ) -> Option<String> {
        match action {
            Action::Post => {
                // A failure linked to its known issue pings no one.
                let known = next.latest_failure.as_ref().and_then(|r| r.detail.as_ref()).and_then(|d| d.known.as_ref());
                if known.is_some_and(|k| k.silences()) {
                    next.mentioned = Vec::new();
                    next.mention_role = None;
                } else {
                    next.mentioned = incident::culprits(&obs.run, &self.settings.users);
                    next.mention_role = mention_role;
                }
                next.display.change(now);
            }
            // A muted incident's card still shows where it stands, without a ping (edits notify
            // nobody); one never posted stays unposted.
            Action::Edit | Action::Muted if next.has_card() => next.display.change(now),
            Action::Resolve => {
                next.display.change(now);
                let reply = incident::resolved_reply(next).to_json();
                Self::reply_of(next, "resolved", &reply, now);
            }
            _ => {}
        }
        self.claim_if_due(next)
    }

    /// Claims `next`'s card for one send from this container when something is due; the claim.
    pub(super) fn claim_if_due(&self, next: &mut Incident) -> Option<String> {
        let now_ms = valine_domain::clock::now_millis();
        if !next.display.due(now_ms) {
            return None;
        }
        let claim = format!("{}-{}", self.sender, self.claims.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        next.display.claim(&claim, now_ms);
        Some(claim)
    }

    /// After a write that made `claim`: sends the card. `None` when the write claimed nothing.
    pub(super) async fn send_written(&self, next: &Incident, claim: Option<&str>) -> Option<Unsettled> {
        if !claim.is_some_and(|c| next.display.held_by(c, valine_domain::clock::now_millis())) {
            if next.display.pending() {
                self.note_pending();
            }
            return None;
        }
        // The card's own budget: the delivery's durable part is done by now.
        let sent = self.send(next, Deadline::after(POST_BUDGET)).await;
        if sent.failed.is_some() {
            self.note_pending();
        }
        Some(Unsettled { incident: next.clone(), sent })
    }

    /// The observation's outcome, as the channel will see it: shown now, or queued in the outbox.
    fn observed(&self, action: &Action, next: &Incident, u: Option<&Unsettled>, alert_key: &str) -> Observed {
        let shown = u.is_some_and(|u| !u.left());
        if !shown && next.display.pending() && matches!(action, Action::Post | Action::Edit | Action::Resolve) {
            tracing::info!(alert_key, incident = %next.streak_id(), "Alert queued: the outbox sends it");
            return Observed::Queued;
        }
        match action {
            Action::Post => Observed::Posted { message_id: u.and_then(|u| u.sent.posted).map_or(0, |m| m.message_id) },
            Action::Edit => {
                tracing::info!(alert_key, incident = %next.streak_id(), failures = next.failures, "Alert updated");
                Observed::Edited
            }
            Action::Resolve => {
                tracing::info!(alert_key, incident = %next.streak_id(), "Alert resolved");
                self.metrics.alert(AlertMetric::Sent);
                Observed::Resolved
            }
            Action::Muted => {
                tracing::info!(alert_key, incident = %next.streak_id(), "Alert muted");
                self.metrics.alert(AlertMetric::Suppressed);
                Observed::Muted
            }
            Action::Record | Action::Nothing(_) => Observed::Recorded,
        }
    }

    /// A resolve by a re-run of the failing run is a flake: one record in the flake ledger (of
    /// the failure's signature, when its log was read). Not recorded is logged, not retried: the
    /// incident is right either way.
    async fn record_flake(&self, resolved: &Incident, deadline: Deadline) {
        let (Some(attempt), Some(fix)) = (resolved.flaky(), resolved.fixed_by.as_ref()) else { return };
        let detail = resolved.latest_failure.as_ref().and_then(|f| f.detail.as_ref());
        let flake = Flake {
            signature: detail.and_then(|d| d.signature.clone()),
            at: now_secs(),
            repository: resolved.key.repository.clone(),
            workflow: resolved.key.name(),
            job: detail.and_then(|d| d.job.clone()),
            branch: resolved.key.scope().to_string(),
            run_id: fix.run_id,
            run_number: fix.run_number,
            attempt,
        };
        match within(deadline, STORE_BUDGET, self.signatures.flake(&flake)).await {
            Ok(()) => tracing::info!(incident = %resolved.streak_id(), attempt, "flake recorded"),
            Err(e) => tracing::warn!(incident = %resolved.streak_id(), error = %e, "could not record the flake"),
        }
    }

    /// The one safe retry: when the verdict allows it and this is the first ask for the run (a
    /// conditional write), the run's failed jobs are re-run, audited as the bot, and nothing is
    /// posted (`Some(Retrying)`). A retry already asked (a replay, another container) posts nothing
    /// either while it is under way. `None`: no retry, the card goes out as usual (also when
    /// asking GitHub failed: nothing is lost).
    async fn retry_once(
        &self,
        obs: &Observation,
        muted: bool,
        detail: Option<&FailureDetail>,
        deadline: Deadline,
    ) -> Option<Observed> {
        let github = self.github.clone()?;
        let repo: RepoName = obs.key.repository.parse().ok()?;
        let now = now_secs();
        let signature = detail.and_then(|d| d.signature.as_deref());
        let known = detail.and_then(|d| d.known.as_ref());
        let flakes = match signature {
            Some(sig) if !known.is_some_and(|k| k.transient) => {
                match within(deadline, STORE_BUDGET, self.signatures.flakes()).await {
                    Ok(all) => recent_flakes(&all, sig, now),
                    Err(e) => {
                        tracing::warn!(run_id = obs.run.run_id, error = %e, "could not read the flake ledger; no retry");
                        return None;
                    }
                }
            }
            _ => 0,
        };
        let workflow = obs.key.name();
        let case = RetryCase {
            route_allows: true,
            workflow: &workflow,
            workflow_file: &obs.workflow_file,
            never: &self.config.auto_retry_never,
            attempt: obs.run.attempt.max(1),
            muted,
            signature,
            known,
            flakes,
        };
        if let RetryVerdict::Not(why) = retry_verdict(&case) {
            tracing::info!(run_id = obs.run.run_id, why, "no retry");
            return None;
        }
        let retry = Retry {
            repository: obs.key.repository.clone(),
            run_id: obs.run.run_id,
            run_number: obs.run.run_number,
            workflow,
            branch: obs.key.scope().to_string(),
            signature: signature.map(str::to_string),
            job: detail.and_then(|d| d.job.clone()),
            at: now,
        };
        match within(deadline, STORE_BUDGET, self.signatures.claim_retry(&retry)).await {
            Ok(true) => {}
            Ok(false) => {
                let asked =
                    within(deadline, STORE_BUDGET, self.signatures.retry_of(&retry.repository, retry.run_id)).await;
                let under_way = asked.ok().flatten().is_none_or(|r| now.saturating_sub(r.at) < RETRY_UNDER_WAY_SECS);
                tracing::info!(run_id = retry.run_id, under_way, "a retry of this run was asked already");
                return under_way.then_some(Observed::Nothing { reason: "a retry of this run is under way" });
            }
            Err(e) => {
                tracing::warn!(run_id = retry.run_id, error = %e, "could not record the retry; the card goes out instead");
                return None;
            }
        }
        let wait = deadline.left().saturating_sub(RESERVE);
        let asked = tokio::time::timeout(wait, github.rerun_failed_jobs(&repo, retry.run_id)).await;
        let result = if matches!(asked, Ok(Ok(()))) { AuditResult::Posted } else { AuditResult::Failed };
        let bot = self.config.discord_application_id.unwrap_or(0);
        let mut record = AuditRecord::new(&obs.run.trace_id, bot, "incident.retry", result)
            .meta("repository", &retry.repository)
            .meta("run_id", retry.run_id.to_string())
            .meta("workflow", &retry.workflow);
        if let Some(sig) = &retry.signature {
            record = record.meta("signature", sig);
        }
        if let Err(e) = within(deadline, STORE_BUDGET, self.audit.append(&record)).await {
            tracing::error!(audit_id = %record.audit_id, error = %e, "could not write the audit record of a retry");
        }
        match asked {
            Ok(Ok(())) => {
                tracing::info!(run_id = retry.run_id, signature = ?retry.signature, "failure re-run once; nothing posted while it runs");
                Some(Observed::Retrying)
            }
            Ok(Err(e)) => {
                tracing::warn!(run_id = retry.run_id, error = %e, "GitHub refused the retry; the card goes out");
                None
            }
            Err(_) => {
                tracing::warn!(run_id = retry.run_id, "GitHub did not answer the retry in time; the card goes out");
                None
            }
        }
    }

    /// A run the bot re-ran passed: a flake of its signature, and nobody was paged.
    async fn record_retried_flake(&self, retry: &Retry, attempt: u64, deadline: Deadline) {
        let flake = Flake {
            signature: retry.signature.clone(),
            at: now_secs(),
            repository: retry.repository.clone(),
            workflow: retry.workflow.clone(),
            job: retry.job.clone(),
            branch: retry.branch.clone(),
            run_id: retry.run_id,
            run_number: retry.run_number,
            attempt,
        };
        match within(deadline, STORE_BUDGET, self.signatures.flake(&flake)).await {
            Ok(()) => tracing::info!(run_id = retry.run_id, attempt, "the retried run passed: flake recorded"),
            Err(e) => tracing::warn!(run_id = retry.run_id, error = %e, "could not record the flake"),
        }
    }

    fn start_detail(&self, obs: &Observation) -> Option<JoinHandle<Option<FailureDetail>>> {
        let github = self.github.clone()?;
        if obs.run.run_id == 0 {
            return None;
        }
        let repo: RepoName = obs.key.repository.parse().ok()?;
        let sighting = Sighting {
            signature: String::new(),
            at: now_secs(),
            repository: obs.key.repository.clone(),
            workflow: obs.key.name(),
            branch: obs.key.scope().to_string(),
            run_id: obs.run.run_id,
            run_number: obs.run.run_number,
            attempt: obs.run.attempt.max(1),
        };
        Some(tokio::spawn(fetch_detail(github, self.signatures.clone(), repo, sighting)))
    }

    /// GitHub was slow: the card went out without the failing job; add it if it comes within
    /// the delivery's budget (one more write, and an edit). What the first send achieved is filed
    /// in that write.
    async fn late_detail(
        &self,
        written: Incident,
        obs: &Observation,
        task: Option<JoinHandle<Option<FailureDetail>>>,
        unsettled: Option<Unsettled>,
        deadline: Deadline,
    ) -> Option<Unsettled> {
        let Some(task) = task else { return unsettled };
        let wait = deadline.left().saturating_sub(RESERVE);
        let Ok(Ok(Some(detail))) = tokio::time::timeout(wait, task).await else {
            tracing::info!(incident = %written.streak_id(), "the failing job is not known in time; the card goes without it");
            return unsettled;
        };
        let now = now_secs();
        let mut next = written.next_version(now);
        if let Some(u) = &unsettled {
            next.file_sent(u.incident.streak, &u.sent, valine_domain::clock::now_millis());
        }
        attach_detail(&mut next, obs, &detail);
        next.display.change(now);
        let claim = self.claim_if_due(&mut next);
        match self.put(&next, None, deadline).await {
            Ok(IncidentWrite::Written) => self.send_written(&next, claim.as_deref()).await,
            // Another writer moved it on: the first send is still filed (over the newer version)
            // by whoever settles `unsettled`.
            _ => unsettled,
        }
    }
}

/// The failing job and step of a run, its log tail and its failure signature: two GitHub calls,
/// and the fingerprint ledger's record of the signature (where it was seen before).
async fn fetch_detail(
    github: Arc<dyn GitHub>,
    signatures: Arc<dyn SignatureLedger>,
    repo: RepoName,
    mut sighting: Sighting,
) -> Option<FailureDetail> {
    let (run_id, attempt) = (sighting.run_id, sighting.attempt);
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
        ..FailureDetail::default()
    };
    let log = match github.job_log(&repo, job.id).await {
        Ok(log) => log,
        Err(e) => {
            tracing::warn!(run_id, job_id = job.id, error = %e, "could not read the job's log");
            return Some(detail);
        }
    };
    detail.log_tail = Some(incident::log_tail(&log)).filter(|t| !t.trim().is_empty());
    let step = detail.step.as_deref().unwrap_or_default();
    if let Some(signature) = fingerprint::signature(&sighting.workflow, &job.name, step, &log) {
        sighting.signature = signature.id.clone();
        detail.signature = Some(signature.id);
        let (seen, known) = tokio::join!(signatures.sight(&sighting), signatures.known(&sighting.signature));
        match seen {
            Ok(all) => detail.seen = fingerprint::seen(&all, &sighting, now_secs()),
            Err(e) => tracing::warn!(run_id, error = %e, "could not record the failure's signature"),
        }
        match known {
            Ok(k) => detail.known = k,
            Err(e) => tracing::warn!(run_id, error = %e, "could not read whether the signature is known"),
        }
    }
    Some(detail)
}

/// Puts the failing job and log tail on the run they belong to.
fn attach_detail(next: &mut Incident, obs: &Observation, detail: &FailureDetail) {
    let mut detail = detail.clone();
    if let Some(seen) = detail.seen.as_mut() {
        next.name_fix(seen);
    }
    let detail = &detail;
    for run in [next.latest_failure.as_mut(), next.first_failure.as_mut()].into_iter().flatten() {
        if run.order == obs.run.order {
            run.detail = Some(detail.clone());
        }
    }
}
