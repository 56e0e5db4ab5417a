//! discord-handler: the Lambda function behind `POST /discord`.

use std::sync::Arc;

use lambda_http::service_fn;
use valine_discord::jobs::{Jobs, LambdaJobs};
use valine_discord::{App, SERVICE};
use valine_domain::config::StoreKind;
use valine_domain::metrics::Metrics;
use valine_store::Stores;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = valine_domain::logging::init_from_env(SERVICE)?;
    let sdk = valine_store::dynamo::sdk_config().await;
    let stores = match config.store {
        StoreKind::DynamoDb => Stores::dynamodb(&config, &sdk),
        StoreKind::Embedded => Stores::open(&config).await?,
    };
    // The Lambda runtime requires AWS_LAMBDA_FUNCTION_NAME; deferred jobs invoke that name.
    let Some(function_name) = config.function_name.clone() else {
        let e = "AWS_LAMBDA_FUNCTION_NAME is not set: discord-handler runs under a Lambda runtime (use `valinectl serve` locally)";
        tracing::error!(error = e, "start-up failed");
        return Err(e.into());
    };
    let jobs: Arc<dyn Jobs> = Arc::new(LambdaJobs::new(aws_sdk_lambda::Client::new(&sdk), function_name));
    let app = Arc::new(App::from_config(config, stores, jobs, Metrics::stdout(SERVICE)).await.map_err(|e| {
        tracing::error!(error = %e, "start-up failed");
        e
    })?);
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "discord-handler ready");
    lambda_http::run(service_fn(move |req| {
        let app = app.clone();
        async move { valine_discord::lambda::handle(&app, req).await }
    }))
    .await
}
