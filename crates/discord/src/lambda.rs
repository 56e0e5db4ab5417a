//! The Lambda side: API Gateway (HTTP API) events are interactions, pass-through events are
//! deferred jobs. The two are told apart by the request context, never by the path.

use std::convert::Infallible;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use valine_service::http::HttpResponse;
use valine_service::lambda;

use crate::app::App;
use crate::jobs::EVENT_KEY;

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Infallible> {
    if matches!(req.request_context_ref(), Some(RequestContext::PassThrough)) {
        return Ok(run_job(app, req.body().as_ref()).await);
    }
    Ok(lambda::response(app.handle(lambda::request(req)).await))
}

/// A job answers `done` whatever happened inside it: failures are told in Discord, and a Lambda
/// retry would repeat side effects (a second dispatch). Only crashes and timeouts reach the
/// dead-letter queue.
async fn run_job(app: &App, body: &[u8]) -> Response<Body> {
    let status = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(event) if event.get(EVENT_KEY).is_some() => {
            app.run_job(event).await;
            "done"
        }
        _ => {
            tracing::error!("an event that is neither an HTTP request nor a job was ignored");
            "ignored"
        }
    };
    lambda::response(HttpResponse::ok(&serde_json::json!({ "status": status })))
}
