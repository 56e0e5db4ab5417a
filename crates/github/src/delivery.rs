//! One delivery: verified, routed, checked against its record (a duplicate does nothing),
//! handed to the event's handler, and recorded done with its last effect.

use http::StatusCode;
use serde_json::Value;
use tokio::time::Instant;
use tracing::Instrument;
use valine_domain::trace::{StepStatus, TraceRecorder};
use valine_service::deadline::Deadline;
use valine_service::http::{HttpRequest, HttpResponse};
use valine_store::StoreError;

use crate::answer::{Answer, Handled, Status, respond};

/// How long filing what the cards sent may take, after the delivery's own budget.
const SETTLE_BUDGET: std::time::Duration = std::time::Duration::from_millis(1600);
use crate::app::{App, TRACE_USER};
use crate::routing::Routing;
use crate::verify;

impl App {
    pub(crate) async fn delivery(&self, req: HttpRequest, deadline: Deadline) -> HttpResponse {
        let started = Instant::now();
        let event = match verify::verify(&req, self.secret.expose().as_bytes()) {
            Ok(e) => e.to_string(),
            Err(rejection) => {
                if rejection != verify::Rejection::TooLarge && rejection != verify::Rejection::MissingEvent {
                    self.metrics.verification_failure();
                }
                tracing::warn!(reason = rejection.message(), status = rejection.status().as_u16(), "delivery refused");
                return HttpResponse::error(rejection.status(), rejection.message());
            }
        };
        let Some(payload) = parse_payload(&req) else {
            return HttpResponse::error(StatusCode::BAD_REQUEST, "body is not a JSON object");
        };
        let targets = match self.route(&event, &payload).await {
            Routing::Targets(t) => t,
            Routing::Ignore(reason) => {
                tracing::info!(event = %event, reason = %reason, "delivery ignored: nothing written");
                let answer = Answer { reason: Some(reason), ..Answer::new(Status::Ignored).event(&event) };
                return respond(StatusCode::ACCEPTED, &answer);
            }
        };
        let delivery_id = req.header("x-github-delivery").map(str::to_string);
        let mut rec = TraceRecorder::new(TRACE_USER, format!("webhook:{event}"));
        let span = tracing::info_span!(
            "handle_delivery",
            trace_id = %rec.trace_id(),
            delivery_id = delivery_id.as_deref().unwrap_or(""),
            event = %event,
            cmd = %format!("webhook:{event}")
        );
        async {
            self.metrics.delivery(&event);
            let mut store_error: Option<StoreError> = None;
            // `X-GitHub-Delivery` is required (`verify`); the tick's runs come without one.
            let done_key = delivery_id.as_ref().map(|id| format!("github:{id}"));
            if let Some(key) = &done_key {
                // The delivery's record and the incidents it may update, in one read.
                let ids = self.incident_ids(&event, &payload, &targets, rec.trace_id());
                let unknown = self.incidents.unknown(&ids);
                match rec.time("store.look_up", self.stores.deliveries.look_up(key, &unknown)).await {
                    Ok(found) if found.done => {
                        tracing::info!("duplicate delivery: nothing done");
                        let answer = Answer { delivery: delivery_id.clone(), ..Answer::new(Status::Duplicate) };
                        return respond(StatusCode::OK, &answer);
                    }
                    Ok(found) => self.incidents.prime(&unknown, &found.incidents),
                    Err(e) => {
                        tracing::warn!(error = %e, "delivery dedup unavailable; handling anyway");
                        store_error = Some(e);
                    }
                }
            }
            let done = done_key.as_deref();
            let action = payload.get("action").and_then(Value::as_str).unwrap_or("").to_string();
            let mut handled = match event.as_str() {
                "ping" => {
                    let hook_id = payload
                        .get("hook_id")
                        .and_then(Value::as_u64)
                        .or_else(|| payload.get("hook").and_then(|h| h.get("id")).and_then(Value::as_u64));
                    let zen = payload.get("zen").and_then(Value::as_str).unwrap_or("");
                    tracing::info!(hook_id = hook_id.unwrap_or(0), zen, "webhook ping");
                    Handled::new(StatusCode::OK, Answer { hook_id, ..Answer::new(Status::Ok).event("ping") }, false)
                }
                "workflow_run" => {
                    self.workflow_run(&mut rec, &payload, &action, &targets, &mut store_error, done, deadline).await
                }
                "deployment_status" => {
                    let store_down = store_error.as_ref().is_some_and(StoreError::is_unavailable);
                    self.deployment_status(&mut rec, &payload, &targets, store_down, done, deadline).await
                }
                _ => {
                    rec.note("route", StepStatus::Skipped, Some("event not acted on".into()));
                    Handled::new(StatusCode::ACCEPTED, Answer::new(Status::Ignored).event(&event), false)
                }
            };
            // Only events that act need the store; a ping or an ignored event answers as usual.
            let acts = matches!(event.as_str(), "workflow_run" | "deployment_status");
            if let Some(e) = &store_error
                && acts
                && handled.status.is_success()
                && handled.status != StatusCode::ACCEPTED
                && handled.recorded.is_none()
            {
                rec.fail(e);
                handled.status = StatusCode::ACCEPTED;
                if handled.answer.alert.as_deref() == Some("sent") {
                    // The alert is out; a redelivery might post it again (the store could not
                    // hold its dedup window), so this delivery is not offered for one.
                    handled.answer.status = Status::Partial;
                    handled.answer.error = Some(format!(
                        "{e}; the alert was posted but the run was not recorded; do not redeliver, or the alert may be posted twice"
                    ));
                } else {
                    handled.answer.status = Status::Incomplete;
                    handled.answer.error = Some(format!("{e}; redeliver once the store is back"));
                    handled.retryable_failure = true;
                }
            }
            handled.answer.trace_id = Some(rec.trace_id().to_string());
            if !action.is_empty() {
                handled.answer.action = Some(action);
            }
            self.finish(&mut rec, &mut handled, done, store_error.as_ref()).await;
            let duration_ms = started.elapsed().as_millis() as u64;
            if handled.retryable_failure {
                let error = handled.answer.error.as_deref().unwrap_or("");
                tracing::error!(status = handled.status.as_u16(), duration_ms, error, "delivery incomplete: redeliver it from GitHub once the cause is fixed");
            } else {
                tracing::info!(status = handled.status.as_u16(), duration_ms, outcome = ?handled.answer.status, "delivery handled");
            }
            respond(handled.status, &handled.answer)
        }
        .instrument(span)
        .await
    }

    /// Records the delivery done, with its trace, unless its incident write did already, or it
    /// failed and is to be redelivered (then only the trace is kept). A delivery whose record
    /// cannot be written answers `incomplete`: a redelivery is handled again, idempotently. The
    /// cards it sent are filed too, the trace riding with the last of them.
    async fn finish(
        &self,
        rec: &mut TraceRecorder,
        handled: &mut Handled,
        done: Option<&str>,
        store_error: Option<&StoreError>,
    ) {
        let store_down = store_error.is_some_and(StoreError::is_unavailable);
        let mut unsettled = std::mem::take(&mut handled.unsettled);
        let deadline = Deadline::after(SETTLE_BUDGET);
        match (handled.recorded, done) {
            (Some(false), _) => {
                tracing::info!("duplicate delivery: another attempt finished it first");
                handled.answer.status = Status::Duplicate;
                for u in unsettled {
                    self.incidents.settle(u, None, deadline).await;
                }
                return;
            }
            (None, Some(key)) if !handled.retryable_failure => {
                for u in unsettled {
                    self.incidents.settle(u, None, deadline).await;
                }
                let trace = rec.snapshot();
                match rec.time("store.finish", self.stores.deliveries.finish(key, &trace)).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::info!("duplicate delivery: another attempt finished it first");
                        handled.answer.status = Status::Duplicate;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the delivery is handled but could not be recorded");
                        if matches!(handled.answer.status, Status::Ok | Status::Ignored) {
                            handled.status = StatusCode::ACCEPTED;
                            handled.answer.status = Status::Incomplete;
                            handled.answer.error = Some(format!(
                                "{e}; handled, but not recorded: redeliver once the store is back (handling it again changes nothing)"
                            ));
                            handled.retryable_failure = true;
                        }
                    }
                }
                return;
            }
            _ => {}
        }
        // The trace rides with the last card's settling: one write for both.
        let last = unsettled.pop();
        for u in unsettled {
            self.incidents.settle(u, None, deadline).await;
        }
        if store_down {
            tracing::warn!("store unavailable: the delivery's trace is only in this log");
            if let Some(u) = last {
                self.incidents.settle(u, None, deadline).await;
            }
        } else if let Some(u) = last {
            let trace = rec.snapshot();
            self.incidents.settle(u, Some(&trace), deadline).await;
        } else if let Err(e) = self.stores.traces.put(&rec.snapshot()).await {
            tracing::warn!(error = %e, "could not store the delivery's trace");
        }
    }
}

/// The JSON payload: the body itself, or the `payload` field of a form-encoded delivery.
fn parse_payload(req: &HttpRequest) -> Option<Value> {
    let form = req.header("content-type").is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let value: Value = if form {
        let payload = url::form_urlencoded::parse(&req.body).find(|(k, _)| k == "payload")?.1;
        serde_json::from_str(&payload).ok()?
    } else {
        serde_json::from_slice(&req.body).ok()?
    };
    value.is_object().then_some(value)
}
