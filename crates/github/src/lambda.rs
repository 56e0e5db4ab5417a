//! The Lambda side: every event is an API Gateway (HTTP API) request.

use std::convert::Infallible;

use lambda_http::{Body, Request, Response};
use valine_service::lambda;

use crate::app::App;

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(lambda::response(app.handle(lambda::request(req)).await))
}
