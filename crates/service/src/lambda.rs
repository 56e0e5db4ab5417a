//! The Lambda side of both handlers: API Gateway (HTTP API) events in and out of the
//! transport-neutral [`HttpRequest`] / [`HttpResponse`].

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
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

/// Queues `payload` as an asynchronous invocation of `target` (Lambda answers 202 at once). Sent
/// once: a retry after a lost answer would queue it twice, so what is invoked must be safe to run
/// twice anyway. An unqualified target runs `$LATEST`, outside the alias's settings: said in the
/// log, since it only happens outside Lambda.
pub async fn invoke_event(client: &aws_sdk_lambda::Client, target: &str, payload: Vec<u8>) -> Result<(), String> {
    if !target.contains(":function:") || target.matches(':').count() < 7 {
        tracing::warn!(target = %target, "invoked unqualified");
    }
    let out = client
        .invoke()
        .function_name(target)
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(payload))
        .customize()
        .config_override(
            aws_sdk_lambda::Config::builder().retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled()),
        )
        .send()
        .await
        .map_err(|e| aws_sdk_lambda::error::DisplayErrorContext(&e).to_string())?;
    if out.status_code() != 202 {
        return Err(format!("Lambda answered {} to the invocation", out.status_code()));
    }
    Ok(())
}

/// A JSON response for API Gateway.
pub fn response(answer: HttpResponse) -> Response<Body> {
    let mut response = Response::new(Body::Text(answer.body));
    *response.status_mut() = answer.status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}
