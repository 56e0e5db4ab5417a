//! discord-handler: the Lambda function behind `POST /discord`.

use std::sync::Arc;

use lambda_http::service_fn;
use valine_discord::jobs::{Jobs, LambdaJobs};
use valine_discord::{App, SERVICE};
use valine_domain::metrics::Metrics;
use valine_service::bootstrap::{open_stores, started};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = valine_domain::logging::init_from_env(SERVICE)?;
    let (stores, sdk) = started(open_stores(&config).await)?;
    // The Lambda runtime requires AWS_LAMBDA_FUNCTION_NAME; deferred jobs invoke that name.
    let function_name = started(config.function_name.clone().ok_or(
        "AWS_LAMBDA_FUNCTION_NAME is not set: discord-handler runs under a Lambda runtime (use `valinectl serve` locally)",
    ))?;
    let sdk = match sdk {
        Some(sdk) => sdk,
        None => valine_store::dynamo::sdk_config().await,
    };
    let jobs: Arc<dyn Jobs> = Arc::new(LambdaJobs::new(aws_sdk_lambda::Client::new(&sdk), function_name));
    let app = Arc::new(started(App::from_config(config, stores, jobs, Metrics::stdout(SERVICE)).await)?);
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "discord-handler ready");
    lambda_http::run(service_fn(move |req| {
        let app = app.clone();
        async move { valine_discord::lambda::handle(&app, req).await }
    }))
    .await
}
