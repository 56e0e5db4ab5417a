//! The Lambda side: API Gateway (HTTP API) requests, and the EventBridge schedule that drives the
//! tick. `lambda_http` hands any event that is not an HTTP request over as a "pass-through"
//! request (`POST /events`, the event as its body); a scheduled event among those runs the tick
//! and is never taken for a webhook delivery.

use std::convert::Infallible;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};
use valine_service::http::HttpResponse;
use valine_service::lambda;

use crate::app::App;

/// `{"source": "aws.events", "detail-type": "Scheduled Event", …}`.
pub fn is_scheduled_event(event: &Value) -> bool {
    event["source"] == "aws.events" && event["detail-type"] == "Scheduled Event"
}

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Infallible> {
    if matches!(req.request_context_ref(), Some(RequestContext::PassThrough)) {
        let body = lambda::body_bytes(req.into_body());
        let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !is_scheduled_event(&event) {
            tracing::warn!("an event that is neither an HTTP request nor the schedule: ignored");
            let answer = HttpResponse::json(http::StatusCode::BAD_REQUEST, &json!({"error": "unexpected event"}));
            return Ok(lambda::response(answer));
        }
        let report = app.tick().await;
        let answer = json!({
            "tick": "done",
            "open": report.open,
            "escalated": report.escalated,
            "calmed": report.calmed,
            "redelivered": report.redelivered,
            "repaired": report.repaired,
            "errors": report.errors,
        });
        return Ok(lambda::response(HttpResponse::json(http::StatusCode::OK, &answer)));
    }
    Ok(lambda::response(app.handle(lambda::request(req)).await))
}
