//! What a delivery does: the event's decision carried out in every routed channel, an incident
//! in each (and an `all-runs` channel's compact line), and the critical alert when the store fails.

use http::StatusCode;
use serde_json::Value;
use valine_domain::routing::Target;
use valine_domain::trace::{StepStatus, TraceRecorder};
use valine_service::deadline::Deadline;
use valine_service::incidents::Observed;
use valine_service::incidents::send::Unsettled;
use valine_store::StoreError;

use crate::answer::{Answer, ChannelAnswer, Handled, Status};
use crate::app::{App, SERVICE};
use crate::events::{self, Decision};
use crate::routing::ANY_BRANCH;

impl App {
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn workflow_run(
        &self,
        rec: &mut TraceRecorder,
        payload: &Value,
        action: &str,
        targets: &[Target],
        store_error: &mut Option<StoreError>,
        done: Option<&str>,
        deadline: Deadline,
    ) -> Handled {
        let Some(run) = events::workflow_run_record(payload) else {
            rec.note("parse", StepStatus::Skipped, Some("no workflow_run in the payload".into()));
            let answer =
                Answer { reason: Some("no workflow_run".into()), ..Answer::new(Status::Ignored).event("workflow_run") };
            return Handled::new(StatusCode::ACCEPTED, answer, false);
        };
        tracing::info!(run_id = run.run_id, workflow = %run.workflow_name, branch = %run.head_branch, status = %run.status, conclusion = run.conclusion.as_deref().unwrap_or(""), "workflow run");
        // When the store already failed for this delivery, do not wait on it again: the alert
        // still goes out, and the delivery answers 503 so that it can be redelivered.
        let store_down = store_error.as_ref().is_some_and(StoreError::is_unavailable);
        // Only a run that may be a `/diagnose` run is recorded: it is the one read back. Every
        // other run's truth lives in its incident, which keeps a delivery at three store calls.
        let newer = if !self.is_diagnose_run(&run) {
            true
        } else if store_down {
            rec.note("store.upsert_run", StepStatus::Skipped, Some("store unavailable".into()));
            false
        } else {
            match rec.time("store.upsert_run", self.stores.runs.upsert_run(&run)).await {
                Ok(written) => written,
                Err(e) => {
                    store_error.get_or_insert(e);
                    true
                }
            }
        };
        let progress =
            if newer && store_error.is_none() { self.diagnose_progress(rec, &run, deadline).await } else { None };
        let mut answer = Answer { run_id: Some(run.run_id), ..Answer::new(Status::Ok).event("workflow_run") };
        if let Some(p) = &progress {
            answer.diagnose = Some(if p.is_ok() { "updated" } else { "not_updated" });
        }
        let any_branch: Vec<String> = ANY_BRANCH.iter().map(|b| b.to_string()).collect();
        let decision = events::decide_workflow_run(action, &run, payload, &any_branch, rec.trace_id());
        let completed = action == "completed" || run.status == "completed";
        let line = completed.then(|| events::run_line(&run));
        // A `/diagnose` message still to update is the delivery's last effect, not the incident.
        let done = if matches!(progress, Some(Err(_))) { None } else { done };
        let (mut failed, recorded, unsettled) =
            self.act_routed(rec, decision, targets, line.as_deref(), &mut answer, store_down, done, deadline).await;
        if let Some(Err(e)) = progress {
            // The edit is idempotent: a redelivery puts the message right.
            if !failed {
                answer.status = Status::Incomplete;
                answer.error = Some(format!("the /diagnose message could not be updated: {e}; redeliver to retry"));
            }
            failed = true;
        }
        let status = if failed { StatusCode::ACCEPTED } else { StatusCode::OK };
        Handled { status, answer, retryable_failure: failed, recorded, unsettled }
    }

    pub(crate) async fn deployment_status(
        &self,
        rec: &mut TraceRecorder,
        payload: &Value,
        targets: &[Target],
        store_down: bool,
        done: Option<&str>,
        deadline: Deadline,
    ) -> Handled {
        let decision = events::decide_deployment_status(payload, rec.trace_id());
        let state = Some(payload.get("deployment_status").and_then(|d| d.get("state")).cloned().unwrap_or(Value::Null));
        let mut answer = Answer { state, ..Answer::new(Status::Ok).event("deployment_status") };
        let (failed, recorded, unsettled) =
            self.act_routed(rec, decision, targets, None, &mut answer, store_down, done, deadline).await;
        let status = if failed { StatusCode::ACCEPTED } else { StatusCode::OK };
        Handled { status, answer, retryable_failure: failed, recorded, unsettled }
    }

    /// Carries out a decision in every routed channel: its own incident in each, and, for
    /// channels routed `all-runs`, a compact line for a completed run that changed no incident
    /// message. True when the delivery should be offered for redelivery; and what became of the
    /// delivery's done record, which the last channel's incident write carries when every
    /// channel before it went well.
    #[allow(clippy::too_many_arguments)]
    async fn act_routed(
        &self,
        rec: &mut TraceRecorder,
        decision: Decision,
        targets: &[Target],
        line: Option<&str>,
        answer: &mut Answer,
        store_down: bool,
        done: Option<&str>,
        deadline: Deadline,
    ) -> (bool, Option<bool>, Vec<Unsettled>) {
        if let [target] = targets {
            let mut part = ChannelAnswer::default();
            let (failed, recorded, unsettled) =
                self.act(rec, &decision, target, line, &mut part, store_down, done, deadline).await;
            answer.absorb(part);
            return (failed, recorded, unsettled.into_iter().collect());
        }
        if let Decision::Nothing(reason) = &decision
            && line.is_none()
        {
            rec.note("decide", StepStatus::Skipped, Some(reason.to_string()));
            return (false, None, Vec::new());
        }
        let mut failed = false;
        let mut recorded = None;
        let mut unsettled = Vec::new();
        let mut routes = Vec::new();
        for (i, target) in targets.iter().enumerate() {
            let mut part = ChannelAnswer { channel: target.channel_id.map(|c| c.to_string()), ..Default::default() };
            let last_done = done.filter(|_| i + 1 == targets.len() && !failed);
            let (f, r, u) = self.act(rec, &decision, target, line, &mut part, store_down, last_done, deadline).await;
            failed |= f;
            recorded = recorded.or(r);
            unsettled.extend(u);
            answer.fail_with(part.status, part.error.clone());
            routes.push(part);
        }
        answer.routes = routes;
        (failed, recorded, unsettled)
    }

    /// Carries out a decision in one routed channel; true when the delivery should be offered for
    /// redelivery (nothing was shown, and a retry can show it), and what became of the done
    /// record of `done`, when the incident write carried it.
    #[allow(clippy::too_many_arguments)]
    async fn act(
        &self,
        rec: &mut TraceRecorder,
        decision: &Decision,
        target: &Target,
        line: Option<&str>,
        answer: &mut ChannelAnswer,
        store_down: bool,
        done: Option<&str>,
        deadline: Deadline,
    ) -> (bool, Option<bool>, Option<Unsettled>) {
        let mut obs = match decision {
            Decision::Observe(obs) => obs.clone(),
            Decision::Nothing(reason) => {
                rec.note("decide", StepStatus::Skipped, Some(reason.to_string()));
                if target.all_runs
                    && let Some(line) = line
                {
                    self.run_line(rec, target, line, answer, deadline).await;
                }
                return (false, None, None);
            }
        };
        let key = format!("{}|{}|{}", obs.key.repository, obs.key.name(), obs.key.scope());
        // The gates come before any store call: a delivery nobody routes writes nothing.
        match self.incidents.gate(&key, target.channel_id) {
            Ok(channel) => obs.key.channel_id = channel,
            Err(reason) => {
                rec.note("incident", StepStatus::Skipped, Some(reason.to_string()));
                answer.alert = Some("skipped".into());
                return (false, None, None);
            }
        }
        let (observed, recorded, unsettled) = if store_down {
            // Not asked again: this delivery already found the store down.
            rec.note("incident.observe", StepStatus::Skipped, Some("store unavailable".into()));
            (Observed::Failed { error: "store unavailable".into(), posted: false, store: true }, None, None)
        } else {
            let t = rec.start("incident.observe");
            let (observed, recorded, unsettled) =
                self.incidents.observe_delivery(&obs, target.mention_role_id, target.retry, done, deadline).await;
            let label = match &observed {
                Observed::Nothing { reason } | Observed::Skipped { reason } => {
                    format!("{}: {reason}", observed.as_str())
                }
                other => other.as_str().to_string(),
            };
            let failed = matches!(observed, Observed::Failed { .. });
            rec.finish(t, if failed { StepStatus::Error } else { StepStatus::Ok }, Some(label));
            (observed, recorded, unsettled)
        };
        if let Observed::Failed { error, store: true, .. } = &observed {
            self.store_alert(error, rec.trace_id(), deadline).await;
        }
        answer.incident = Some(obs.key.id());
        if target.all_runs
            && let Some(line) = line
            && !matches!(
                observed,
                Observed::Posted { .. } | Observed::Edited | Observed::Resolved | Observed::Muted | Observed::Queued
            )
        {
            self.run_line(rec, target, line, answer, deadline).await;
        }
        let failed = match &observed {
            Observed::Resolved => {
                answer.alert = Some("resolved".into());
                answer.resolved = Some("sent");
                false
            }
            Observed::Failed { error, posted, .. } => {
                rec.fail(error);
                answer.alert = Some("failed".into());
                if *posted {
                    // Shown in part: a redelivery could post a second message.
                    answer.status = Some(Status::Partial);
                    answer.error = Some(format!("{error}; do not redeliver, the next run updates the incident"));
                    false
                } else {
                    answer.status = Some(Status::Incomplete);
                    answer.error = Some(format!("the incident could not be updated: {error}; redeliver to retry"));
                    true
                }
            }
            other => {
                answer.alert = Some(other.as_str().into());
                false
            }
        };
        (failed, recorded, unsettled)
    }

    /// Posts a run's compact line in an `all-runs` channel (gates permitting).
    async fn run_line(
        &self,
        rec: &mut TraceRecorder,
        target: &Target,
        line: &str,
        answer: &mut ChannelAnswer,
        deadline: Deadline,
    ) {
        let Ok(channel) = self.incidents.gate("run line", target.channel_id) else {
            answer.line = Some("skipped");
            return;
        };
        let t = rec.start("discord.post_line");
        let posted = self.incidents.post_line(channel, line, deadline).await;
        rec.finish(t, if posted.is_ok() { StepStatus::Ok } else { StepStatus::Error }, None);
        answer.line = Some(if posted.is_ok() { "sent" } else { "failed" });
    }

    /// The critical alert about the store itself: it keeps its dedup window, in this container only,
    /// because it must not wait on the store that failed.
    async fn store_alert(&self, error: &str, trace_id: &str, deadline: Deadline) {
        let alert = valine_domain::alert::Alert {
            kind: valine_domain::alert::InternalAlert::StoreUnavailable,
            title: "The store is unavailable: workflow failures cannot be tracked".into(),
            repository: self.config.github_repo.as_ref().map_or_else(|| "valine".to_string(), |r| r.to_string()),
            workflow: SERVICE.to_string(),
            branch: self.config.stage.clone(),
            commit: None,
            actor: None,
            conclusion: None,
            run_url: None,
            trace_id: trace_id.to_string(),
            detail: Some(valine_domain::redact::redact(error).into_owned()),
        };
        self.alerter.raise(&alert, deadline.instant()).await;
    }
}
