//! The Lambda side: API Gateway (HTTP API) requests, and the EventBridge schedule that drives the
//! tick. `lambda_http` hands any event that is not an HTTP request over as a "pass-through"
//! request (`POST /events`, the event as its body); a scheduled event among those runs the tick,
//! a `{"valine_drain": …}` event (this function invoking itself, see `valine_service::drain`)
//! drains the outbox, and neither is ever taken for a webhook delivery.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};
use valine_service::drain::DRAIN_EVENT;
use valine_service::http::HttpResponse;
use valine_service::lambda;
use valine_service::secrets::Live;

use crate::app::App;
use crate::tick::DRAIN_BUDGET;

/// `{"source": "aws.events", "detail-type": "Scheduled Event", …}`.
pub fn is_scheduled_event(event: &Value) -> bool {
    event["source"] == "aws.events" && event["detail-type"] == "Scheduled Event"
}

/// One invocation, answered by the handler built from the current secret. A delivery refused for
/// its signature is tried once more when reading the secret again finds it rotated.
pub async fn handle_live(live: &Arc<Live<App>>, req: Request) -> Result<Response<Body>, Infallible> {
    let app = live.current();
    if is_pass_through(&req) {
        return handle(&app, req).await;
    }
    let req = lambda::request(req);
    let signed = req.header("x-hub-signature-256").is_some();
    let answer = app.handle(req.clone()).await;
    if answer.status == http::StatusCode::UNAUTHORIZED
        && signed
        && let Some(app) = live.after_refusal().await
    {
        return Ok(lambda::response(app.handle(req).await));
    }
    Ok(lambda::response(answer))
}

fn is_pass_through(req: &Request) -> bool {
    matches!(req.request_context_ref(), Some(RequestContext::PassThrough))
}

/// One invocation, answered by `app`: an HTTP request, or the schedule's event (the tick).
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Infallible> {
    if is_pass_through(&req) {
        let body = lambda::body_bytes(req.into_body());
        let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if event.get(DRAIN_EVENT).is_some() {
            let report = app.drain_outbox(DRAIN_BUDGET).await;
            let answer = json!({
                "drain": "done",
                "pending": report.pending,
                "sent": report.sent,
                "left": report.left,
                "errors": report.errors,
            });
            return Ok(lambda::response(HttpResponse::json(http::StatusCode::OK, &answer)));
        }
        if !is_scheduled_event(&event) {
            tracing::warn!("an event that is neither an HTTP request, the schedule nor a drain: ignored");
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
            "outbox_sent": report.outbox_sent,
            "outbox_left": report.outbox_left,
            "errors": report.errors,
        });
        return Ok(lambda::response(HttpResponse::json(http::StatusCode::OK, &answer)));
    }
    Ok(lambda::response(app.handle(lambda::request(req)).await))
}
