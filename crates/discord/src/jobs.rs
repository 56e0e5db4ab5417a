//! Deferred work: what runs after the 3-second answer. In Lambda a job is an asynchronous
//! invocation of this same function (`InvocationType::Event`); under `valinectl serve` it is a
//! Tokio task fed through a channel. Each command's job type implements `deferred::Deferred`; the
//! registry turns the events back into them.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use valine_domain::trace::Trace;

/// What a job needs to reach its interaction again.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct JobContext {
    /// The key of the job's ticket in the store (the token, taken once when the job starts), so
    /// that a job delivered twice runs once.
    #[serde(default)]
    pub job_id: String,
    /// The caller's roles when they asked (`None` in a DM): the job checks authorization again.
    #[serde(default)]
    pub roles: Option<Vec<u64>>,
    pub application_id: u64,
    /// The interaction token (valid 15 minutes). Never logged, and never sent in the job's event:
    /// it waits in the store under `job_id` (see `Ctx::defer`). Read from events written before
    /// that, which carry it.
    #[serde(default, skip_serializing)]
    pub token: String,
    pub user_id: u64,
    pub user_name: String,
    /// The trace so far; the job adds its steps and stores it again.
    pub trace: Trace,
    /// The ARN the interaction came through (the `live` alias in Lambda): the job is invoked on
    /// it, so it runs the same version, under the alias's retry, age and on-failure settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoked_arn: Option<String>,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("application_id", &self.application_id)
            .field("user_id", &self.user_id)
            .field("trace_id", &self.trace.trace_id)
            .finish_non_exhaustive()
    }
}

/// The event a job travels in: `{"valine_job": {"kind": …, "ctx": …, …}}`, built by
/// `deferred::handover` and read back by the registry (`registry::Job::from_event`).
pub const EVENT_KEY: &str = "valine_job";

/// A job on its way to the queue: its event, and the ARN its interaction came through.
#[derive(Debug, Clone, PartialEq)]
pub struct Handover {
    pub kind: &'static str,
    pub event: serde_json::Value,
    pub invoked_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not start the background job: {0}")]
pub struct JobError(pub String);

/// Runs work after the answer.
#[async_trait]
pub trait Jobs: Send + Sync {
    async fn enqueue(&self, job: Handover) -> Result<(), JobError>;
}

/// Asynchronous self-invocation: Lambda queues the event and answers 202 at once.
#[derive(Debug, Clone)]
pub struct LambdaJobs {
    client: aws_sdk_lambda::Client,
    /// Only for a job whose interaction carried no invoked ARN (never the case in Lambda).
    function_name: String,
}

impl LambdaJobs {
    pub fn new(client: aws_sdk_lambda::Client, function_name: String) -> Self {
        Self { client, function_name }
    }

    /// What the job's invocation names: the ARN its interaction came through, alias included.
    pub fn target<'a>(&'a self, job: &'a Handover) -> &'a str {
        job.invoked_arn.as_deref().unwrap_or(&self.function_name)
    }
}

#[async_trait]
impl Jobs for LambdaJobs {
    async fn enqueue(&self, job: Handover) -> Result<(), JobError> {
        let target = self.target(&job).to_string();
        let payload = serde_json::to_vec(&job.event).map_err(|e| JobError(e.to_string()))?;
        // (A job delivered twice runs once: see `job_id`.)
        valine_service::lambda::invoke_event(&self.client, &target, payload).await.map_err(JobError)?;
        Ok(())
    }
}

/// In-process jobs for `valinectl serve` and tests: a worker takes their events off the channel
/// (and runs them with `App::run_job`).
#[derive(Debug, Clone)]
pub struct LocalJobs {
    tx: mpsc::UnboundedSender<serde_json::Value>,
}

impl LocalJobs {
    pub fn new() -> (Self, mpsc::UnboundedReceiver<serde_json::Value>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, rx)
    }
}

#[async_trait]
impl Jobs for LocalJobs {
    async fn enqueue(&self, job: Handover) -> Result<(), JobError> {
        self.tx.send(job.event).map_err(|_| JobError("the local job worker has stopped".into()))
    }
}
