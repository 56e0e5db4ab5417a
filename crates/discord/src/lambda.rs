//! The Lambda side: API Gateway (HTTP API) events are interactions, pass-through events are
//! deferred jobs. The two are told apart by the request context, never by the path.

use std::convert::Infallible;

use bytes::Bytes;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use valine_core::http::HttpRequest;

use crate::app::App;
use crate::jobs::JobEvent;

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Infallible> {
    if matches!(req.request_context_ref(), Some(RequestContext::PassThrough)) {
        return Ok(run_job(app, req.body().as_ref()).await);
    }
    let (parts, body) = req.into_parts();
    let body = match body {
        Body::Empty => Bytes::new(),
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    let answer = app.handle(HttpRequest::new(parts.method, parts.uri.path(), parts.headers, body)).await;
    Ok(json_response(answer.status, answer.body))
}

/// A job answers `done` whatever happened inside it: failures are told in Discord, and a Lambda
/// retry would repeat side effects (a second dispatch). Only crashes and timeouts reach the
/// dead-letter queue.
async fn run_job(app: &App, body: &[u8]) -> Response<Body> {
    match serde_json::from_slice::<JobEvent>(body) {
        Ok(event) => {
            app.run_job(event.valine_job).await;
            json_response(http::StatusCode::OK, r#"{"status":"done"}"#.to_string())
        }
        Err(e) => {
            tracing::error!(error = %e, "an event that is neither an HTTP request nor a job was ignored");
            json_response(http::StatusCode::OK, r#"{"status":"ignored"}"#.to_string())
        }
    }
}

fn json_response(status: http::StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}
