//! What the GitHub handler answers a delivery with: a typed body (serialized as the JSON GitHub
//! keeps with the delivery) and the HTTP status. The fields are the ones operators read in
//! GitHub's "Recent deliveries" and the tests assert on; none is written as free-form JSON.

use http::StatusCode;
use serde::Serialize;
use serde_json::Value;

/// How the delivery went, as a word.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    /// Handled.
    #[default]
    Ok,
    /// Handled before: nothing done.
    Duplicate,
    /// An event or a repository nobody routes: nothing written.
    Ignored,
    /// Nothing durable was written: redeliver it.
    Incomplete,
    /// Shown in part (a message went out, its record did not): do not redeliver.
    Partial,
}

/// What one routed channel made of a delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct ChannelAnswer {
    /// The channel, when the delivery went to several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// What became of the alert: `sent`, `edited`, `resolved`, `skipped`, `failed`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<&'static str>,
    /// The incident it observed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// An `all-runs` channel's compact line: `sent`, `failed`, `skipped`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<&'static str>,
    /// Set when this channel failed: the delivery's status then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The body of an answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Answer {
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Why it was ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A duplicate's delivery id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
    /// A ping's hook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<u64>,
    /// A followed run's message: `updated` or `not_updated`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnose: Option<&'static str>,
    /// A deployment status's state, as GitHub sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
    /// The one routed channel's outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<&'static str>,
    /// Each channel's outcome, when it went to several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<ChannelAnswer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

impl Answer {
    pub(crate) fn new(status: Status) -> Self {
        Self { status, ..Self::default() }
    }

    pub(crate) fn event(mut self, event: &str) -> Self {
        self.event = Some(event.to_string());
        self
    }

    /// The one routed channel's outcome, at the top level.
    pub(crate) fn absorb(&mut self, channel: ChannelAnswer) {
        self.alert = channel.alert;
        self.resolved = channel.resolved;
        self.incident = channel.incident;
        self.line = channel.line;
        self.fail_with(channel.status, channel.error);
    }

    /// A channel's failure becomes the delivery's, unless an earlier one did.
    pub(crate) fn fail_with(&mut self, status: Option<Status>, error: Option<String>) {
        if let Some(status) = status
            && self.status == Status::Ok
        {
            self.status = status;
            self.error = error;
        }
    }

    /// Every alert outcome, of the one channel or of each.
    pub(crate) fn alerts(&self) -> impl Iterator<Item = &str> {
        self.alert.as_deref().into_iter().chain(self.routes.iter().filter_map(|r| r.alert.as_deref()))
    }
}

/// How a delivery went, before it becomes a response.
#[derive(Debug, Clone)]
pub(crate) struct Handled {
    pub status: StatusCode,
    pub answer: Answer,
    /// A side effect failed: the delivery is not recorded done, so that a redelivery tries again.
    pub retryable_failure: bool,
    /// What became of the delivery's done record in an incident write (see
    /// `IncidentDesk::observe_delivery`): `Some(true)` written with it, `Some(false)` another
    /// attempt at this delivery finished first, `None` not written yet.
    pub recorded: Option<bool>,
    /// Cards this delivery claimed and sent (or tried to), to file with its trace.
    pub unsettled: Vec<valine_service::incidents::send::Unsettled>,
}

impl Handled {
    pub(crate) fn new(status: StatusCode, answer: Answer, retryable_failure: bool) -> Self {
        Self { status, answer, retryable_failure, recorded: None, unsettled: Vec::new() }
    }
}

/// The JSON response of `answer`.
pub(crate) fn respond(status: StatusCode, answer: &Answer) -> valine_service::http::HttpResponse {
    valine_service::http::HttpResponse::json(status, &serde_json::to_value(answer).unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_serialize_as_github_keeps_them() {
        let ping = Answer { hook_id: Some(7), ..Answer::new(Status::Ok).event("ping") };
        assert_eq!(serde_json::to_value(&ping).unwrap(), json!({"status": "ok", "event": "ping", "hook_id": 7}));
        let mut two = Answer { run_id: Some(5), ..Answer::new(Status::Ok).event("workflow_run") };
        let failed = ChannelAnswer {
            channel: Some("2".into()),
            alert: Some("failed".into()),
            status: Some(Status::Incomplete),
            error: Some("down".into()),
            ..ChannelAnswer::default()
        };
        two.fail_with(failed.status, failed.error.clone());
        two.routes =
            vec![ChannelAnswer { channel: Some("1".into()), alert: Some("sent".into()), ..Default::default() }, failed];
        let v = serde_json::to_value(&two).unwrap();
        assert_eq!((v["status"].as_str(), v["error"].as_str()), (Some("incomplete"), Some("down")));
        assert_eq!(v["routes"][1]["status"], "incomplete");
        assert_eq!(two.alerts().collect::<Vec<_>>(), ["sent", "failed"]);
        let dup = Answer { delivery: Some("d".into()), ..Answer::new(Status::Duplicate) };
        assert_eq!(serde_json::to_value(&dup).unwrap(), json!({"status": "duplicate", "delivery": "d"}));
    }
}
