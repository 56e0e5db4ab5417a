//! The Lambda side: every event is an API Gateway (HTTP API) request.

use std::convert::Infallible;

use bytes::Bytes;
use lambda_http::{Body, Request, Response};
use valine_core::http::HttpRequest;

use crate::app::App;

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body {
        Body::Empty => Bytes::new(),
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    let answer = app.handle(HttpRequest::new(parts.method, parts.uri.path(), parts.headers, body)).await;
    let mut response = Response::new(Body::Text(answer.body));
    *response.status_mut() = answer.status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    Ok(response)
}
