//! github-handler: the Lambda function behind `POST /github/webhook`.

use std::sync::Arc;

use lambda_http::service_fn;
use valine_domain::metrics::Metrics;
use valine_github::{App, SERVICE};
use valine_service::bootstrap::{open_stores, secret_source, started};
use valine_service::drain::{Kick, LambdaKick};
use valine_service::secrets::{Live, process_env};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = valine_domain::logging::init_from_env(SERVICE)?;
    let (stores, sdk) = started(open_stores(&config).await)?;
    let sdk = match sdk {
        Some(sdk) => sdk,
        None => valine_store::dynamo::sdk_config().await,
    };
    let source = config.secret_id.as_ref().and_then(|_| secret_source(&config, &sdk));
    // A delivery that leaves a card unsent asks this function (its alias) for a drain.
    let function_name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
    let kick: Arc<dyn Kick> = Arc::new(LambdaKick::new(aws_sdk_lambda::Client::new(&sdk), function_name));
    let build: valine_service::secrets::Build<App> = Arc::new(move |config| {
        let stores = stores.clone();
        let kick = kick.clone();
        Box::pin(async move {
            App::from_config(config, stores, Metrics::stdout(SERVICE))
                .map(|app| app.with_kick(kick))
                .map_err(|e| e.to_string())
        })
    });
    let live = Arc::new(started(Live::start(process_env(), source, build).await)?);
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "github-handler ready");
    lambda_http::run(service_fn(move |req| {
        let live = live.clone();
        async move { valine_github::lambda::handle_live(&live, req).await }
    }))
    .await
}
