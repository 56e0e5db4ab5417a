//! github-handler: the Lambda function behind `POST /github/webhook`.

use std::sync::Arc;

use lambda_http::service_fn;
use valine_domain::metrics::Metrics;
use valine_github::{App, SERVICE};
use valine_service::bootstrap::{open_stores, started};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = valine_domain::logging::init_from_env(SERVICE)?;
    let (stores, _) = started(open_stores(&config).await)?;
    let app = Arc::new(started(App::from_config(config, stores, Metrics::stdout(SERVICE)))?);
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "github-handler ready");
    lambda_http::run(service_fn(move |req| {
        let app = app.clone();
        async move { valine_github::lambda::handle(&app, req).await }
    }))
    .await
}
