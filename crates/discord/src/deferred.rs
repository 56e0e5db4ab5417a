//! One command's deferred work, as the command defines it: [`Deferred`] is what a job type is
//! (its event `kind`, its context, how it runs), [`handover`] makes its event. The registry names
//! each command's job type on its line and reads events back into them.

use serde::Serialize;

use crate::jobs::{EVENT_KEY, Handover, JobContext, JobError};
use crate::services::Services;

/// One command's deferred work: what it carries and how it runs. Each command that defers
/// defines its own job type; the registry names it on the command's line.
pub trait Deferred: Serialize + serde::de::DeserializeOwned + Send {
    /// The `kind` of its event. Stable: an event queued by one version may run on the next.
    const KIND: &'static str;
    fn context(&self) -> &JobContext;
    fn context_mut(&mut self) -> &mut JobContext;
    /// Runs the job to the end; failures are told in Discord (`Services::job_failed`).
    fn run(
        self,
        services: &Services,
        rec: &mut valine_domain::trace::TraceRecorder,
    ) -> impl std::future::Future<Output = ()> + Send;
}

/// The event of `job`, ready for [`crate::jobs::Jobs::enqueue`].
pub fn handover<J: Deferred>(job: &J) -> Result<Handover, JobError> {
    let mut body = serde_json::to_value(job).map_err(|e| JobError(e.to_string()))?;
    let serde_json::Value::Object(fields) = &mut body else {
        return Err(JobError(format!("the {} job is not a JSON object", J::KIND)));
    };
    fields.insert("kind".into(), serde_json::Value::String(J::KIND.into()));
    let mut event = serde_json::Map::new();
    event.insert(EVENT_KEY.into(), body);
    Ok(Handover {
        kind: J::KIND,
        event: serde_json::Value::Object(event),
        invoked_arn: job.context().invoked_arn.clone(),
    })
}
