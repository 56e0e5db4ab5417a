//! One interaction being answered: who sent it, its trace, and the effects a command may run.
//!
//! Every effect goes through [`Ctx::step`]: it opens a trace step, bounds the call by what is
//! left of the answer budget (and by its own cap), and closes the step with its measured
//! duration and outcome. Commands decide; this carries the decision out.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

use valine_domain::alert::InternalAlert;
use valine_domain::audit::{AuditRecord, AuditResult};
use valine_domain::authz::Caller;
use valine_domain::message::{Message, Reply};
use valine_domain::trace::{StepStatus, TraceRecorder};
use valine_service::deadline::Deadline;
use valine_store::{JobTicket, StoreError};

use crate::deferred::{Deferred, handover};
use crate::interaction::Interaction;
use crate::jobs::{JobContext, JobError};
use crate::services::Services;

/// Everything an interaction does before answering fits in this, leaving room for the network
/// inside Discord's 3 s.
pub(crate) const ANSWER_BUDGET: Duration = Duration::from_millis(2500);

pub struct Ctx<'a> {
    pub services: &'a Services,
    pub rec: TraceRecorder,
    pub user_id: u64,
    pub user_name: String,
    /// `None` in a DM.
    pub roles: Option<Vec<u64>>,
    pub application_id: u64,
    pub token: String,
    pub interaction_id: u64,
    pub guild_id: Option<u64>,
    pub channel_id: Option<u64>,
    /// `/status`, `component:confirm`, …: what traces, metrics and audit records call it.
    pub command: String,
    /// The ARN the interaction came through, for the jobs it hands over (see `JobContext`).
    pub invoked_by: Option<String>,
    started: Instant,
    /// [`ANSWER_BUDGET`] after `started`.
    deadline: Deadline,
}

impl<'a> Ctx<'a> {
    pub fn new(services: &'a Services, i: &Interaction, command: String, started: Instant) -> Self {
        Self {
            services,
            rec: TraceRecorder::new(i.user.id.to_string(), command.clone()),
            user_id: i.user.id,
            user_name: i.user.name.clone(),
            roles: i.roles.clone(),
            application_id: i.application_id,
            token: i.token.clone(),
            interaction_id: i.id,
            guild_id: i.guild_id,
            channel_id: i.channel_id,
            command,
            invoked_by: None,
            started,
            deadline: Deadline::at(tokio::time::Instant::from_std(started) + ANSWER_BUDGET),
        }
    }

    /// The same context, for an interaction that came through `arn`.
    pub fn invoked_by(mut self, arn: Option<&str>) -> Self {
        self.invoked_by = arn.map(str::to_string);
        self
    }

    pub fn caller(&self) -> Caller<'_> {
        Caller { user_id: self.user_id, roles: self.roles.as_deref() }
    }

    pub fn trace_id(&self) -> String {
        self.rec.trace_id().to_string()
    }

    /// Time left before the answer must go.
    pub fn remaining(&self) -> Duration {
        self.deadline.left()
    }

    /// When the answer must go.
    pub fn deadline(&self) -> Deadline {
        self.deadline
    }

    /// Runs one effect as a trace step named `name`, with at most `cap` of the time left.
    /// Running out of time is `timeout()`'s error.
    pub async fn step<T, E: Display>(
        &mut self,
        name: &str,
        cap: Duration,
        timeout: impl FnOnce() -> E,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let t = self.rec.start(name);
        let res = match self.deadline.within(cap).run(fut).await {
            Some(r) => r,
            None => Err(timeout()),
        };
        let status = if res.is_ok() { StepStatus::Ok } else { StepStatus::Error };
        self.rec.finish(t, status, res.as_ref().err().map(ToString::to_string));
        res
    }

    /// A store call as a step; no answer in time is `Unavailable`.
    pub async fn store_step<T>(
        &mut self,
        name: &str,
        cap: Duration,
        fut: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.step(name, cap, || StoreError::Unavailable("no answer in time".into()), fut).await
    }

    /// A refusal: ephemeral, with the trace id.
    pub fn refuse(&mut self, text: &str) -> Reply {
        self.rec.note("refused", StepStatus::Skipped, Some(text.to_string()));
        Reply::Message(Message::error(text, self.rec.trace_id()))
    }

    /// A failure: recorded as the trace's error, told briefly with the trace id.
    pub fn fail(&mut self, text: &str) -> Reply {
        self.rec.fail(text);
        tracing::error!(error = %text, "command failed");
        Reply::Message(Message::error(text, self.rec.trace_id()))
    }

    /// Audits a refusal as `blocked` (with `record`'s target and digest) and returns what to tell
    /// the caller: the reason and the audit id.
    pub async fn blocked_text(&mut self, reason: &str, record: AuditRecord) -> String {
        // A record may carry its own reason, without what the caller typed.
        let record = if record.metadata.contains_key("reason") { record } else { record.meta("reason", reason) };
        tracing::warn!(reason, audit_id = %record.audit_id, "refused");
        let text = match self.audit("audit.blocked", &record).await {
            Ok(()) => format!("{reason}\n-# audit `{}`", record.audit_id),
            Err(_) => format!("{reason}\n-# (this refusal could not be audited: the store is unavailable)"),
        };
        self.rec.note("refused", StepStatus::Skipped, Some(text.clone()));
        text
    }

    /// A refusal, audited as `blocked` and told with the audit id.
    pub async fn blocked(&mut self, reason: &str, record: AuditRecord) -> Reply {
        let text = self.blocked_text(reason, record).await;
        Reply::Message(Message::error(&text, self.rec.trace_id()))
    }

    /// A blocked record of this command by this caller, with nothing else filled in.
    pub fn blocked_record(&self) -> AuditRecord {
        AuditRecord::new(&self.trace_id(), self.user_id, &self.command, AuditResult::Blocked)
            .meta("username", &self.user_name)
    }

    /// Raises an internal alert about this interaction with the time left, less `keep` (for what
    /// still has to happen before the answer).
    pub async fn alert(&self, what: InternalAlert, title: &str, detail: &str, keep: Duration) {
        let budget = self.remaining().saturating_sub(keep);
        self.services.internal_alert(what, title, detail, self.rec.trace_id(), &self.user_name, budget).await;
    }

    /// The store failed a command that needs it: a critical alert (the bot cannot keep its
    /// audit trail), and a short answer that says nothing was done.
    pub async fn store_unavailable(&mut self, error: &StoreError, nothing_done: &str) -> Reply {
        let title = "Store unavailable: commands that need it are refused";
        self.alert(InternalAlert::StoreUnavailable, title, &error.to_string(), Duration::from_millis(150)).await;
        self.fail(&format!("The store is unavailable ({error}); {nothing_done}."))
    }

    /// True the first time this interaction id is seen: a replayed request (same signed body
    /// within the 5-minute window) must not post or dispatch twice.
    pub async fn first_time(&mut self) -> Result<bool, StoreError> {
        let id = format!("interaction:{}", self.interaction_id);
        let deliveries = self.services.stores.deliveries.clone();
        self.store_step("store.first_seen", Duration::from_millis(1500), deliveries.first_seen(&id)).await
    }

    /// Appends an audit record within the time left.
    pub async fn audit(&mut self, step: &str, record: &AuditRecord) -> Result<(), StoreError> {
        let audit = self.services.stores.audit.clone();
        let res = self.store_step(step, Duration::from_millis(2000), audit.append(record)).await;
        if let Err(e) = &res {
            tracing::error!(error = %e, audit_id = %record.audit_id, result = record.result.as_str(), "audit write failed");
        }
        res
    }

    /// Hands `job` to the deferred path within the time left; the answer can then say "thinking…".
    pub async fn defer<J: Deferred>(&mut self, job: J) -> Result<(), JobError> {
        let handover = handover(&job)?;
        let ticket = JobTicket {
            job_id: job.context().job_id.clone(),
            token: self.token.clone(),
            expires_at: valine_domain::clock::now_secs() + 15 * 60,
        };
        let confirmations = self.services.stores.confirmations.clone();
        self.store_step("store.put_job_ticket", Duration::from_millis(800), confirmations.put_job_ticket(&ticket))
            .await
            .map_err(|e| JobError(format!("the store is unavailable ({e}), so the job could not be handed over")))?;
        let jobs = self.services.jobs.clone();
        self.step(
            "job.enqueue",
            Duration::from_millis(1000),
            || JobError("no answer in time".into()),
            jobs.enqueue(handover),
        )
        .await
    }

    /// What a deferred job needs to carry on.
    pub fn job_context(&self) -> JobContext {
        JobContext {
            job_id: uuid::Uuid::new_v4().to_string(),
            roles: self.roles.clone(),
            application_id: self.application_id,
            token: self.token.clone(),
            user_id: self.user_id,
            user_name: self.user_name.clone(),
            trace: self.rec.snapshot(),
            invoked_arn: self.invoked_by.clone(),
        }
    }

    /// Stores the trace, counts the command, logs the answer.
    pub async fn finish(&mut self, answer: &Reply, keep_trace: bool) {
        let elapsed = self.started.elapsed().as_millis() as u64;
        self.services.metrics.command(&self.command, elapsed);
        if !keep_trace {
            // Looking at a trace leaves none: the next /debug-last shows the command before.
            tracing::info!(answer_type = answer.kind(), duration_ms = elapsed, "interaction answered");
            return;
        }
        let trace = self.rec.snapshot();
        let traces = self.services.stores.traces.clone();
        // Slow commands are the ones worth a trace: they may use the answer's last 250 ms too.
        let budget = (self.remaining() + Duration::from_millis(250))
            .clamp(Duration::from_millis(150), Duration::from_millis(500));
        let stored = match tokio::time::timeout(budget, traces.put(&trace)).await.ok() {
            Some(Ok(())) => "stored",
            Some(Err(e)) => {
                tracing::warn!(error = %e, "could not store the trace; kept in this container only");
                "cache only"
            }
            None => {
                tracing::warn!("no time left to store the trace; kept in this container only");
                "cache only"
            }
        };
        self.services.traces.put(trace);
        tracing::info!(answer_type = answer.kind(), duration_ms = elapsed, trace = stored, "interaction answered");
    }
}
