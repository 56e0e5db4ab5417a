//! The Lambda side of both handlers: API Gateway (HTTP API) events in and out of the
//! transport-neutral [`HttpRequest`] / [`HttpResponse`].

use bytes::Bytes;
use lambda_http::{Body, Request, RequestExt, Response};

use crate::http::{HttpRequest, HttpResponse};

/// The request a handler works on. `lambda_http` has already base64-decoded the body when the
/// event said `isBase64Encoded`, and lower-cased the header names. It keeps the ARN the function
/// was invoked through (see [`HttpRequest::invoked_by`]).
pub fn request(req: Request) -> HttpRequest {
    let invoked_by = invoked_arn(&req);
    let (parts, body) = req.into_parts();
    HttpRequest::new(parts.method, parts.uri.path(), parts.headers, body_bytes(body)).invoked_by(invoked_by)
}

/// The ARN of this invocation, alias or version included (`…:function:name:live`).
pub fn invoked_arn(req: &Request) -> Option<String> {
    req.lambda_context_ref().map(|c| c.invoked_function_arn.clone())
}

pub fn body_bytes(body: Body) -> Bytes {
    match body {
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    }
}

/// A JSON response for API Gateway.
pub fn response(answer: HttpResponse) -> Response<Body> {
    let mut response = Response::new(Body::Text(answer.body));
    *response.status_mut() = answer.status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}
