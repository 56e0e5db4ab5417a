//! github-handler: the Lambda function behind `POST /github/webhook`.

use std::sync::Arc;

use lambda_http::service_fn;
use valine_domain::metrics::Metrics;
use valine_github::{App, SERVICE};
use valine_service::bootstrap::{open_stores, secret_source, started};
use valine_service::secrets::{Live, process_env};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = valine_domain::logging::init_from_env(SERVICE)?;
    let (stores, sdk) = started(open_stores(&config).await)?;
    let source = match (&config.secret_id, sdk) {
        (None, _) => None,
        (Some(_), Some(sdk)) => secret_source(&config, &sdk),
        (Some(_), None) => secret_source(&config, &valine_store::dynamo::sdk_config().await),
    };
    let build: valine_service::secrets::Build<App> = Arc::new(move |config| {
        let stores = stores.clone();
        Box::pin(async move { App::from_config(config, stores, Metrics::stdout(SERVICE)).map_err(|e| e.to_string()) })
    });
    let live = Arc::new(started(Live::start(process_env(), source, build).await)?);
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "github-handler ready");
    lambda_http::run(service_fn(move |req| {
        let live = live.clone();
        async move { valine_github::lambda::handle_live(&live, req).await }
    }))
    .await
}
