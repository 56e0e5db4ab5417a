//! discord-handler: the Lambda function behind `POST /discord`.

use std::sync::Arc;

use lambda_http::service_fn;
use valine_discord::jobs::{Jobs, LambdaJobs};
use valine_discord::{App, SERVICE};
use valine_domain::metrics::Metrics;
use valine_service::bootstrap::{open_stores, secret_source, started};
use valine_service::secrets::{Live, process_env};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = valine_domain::logging::init_from_env(SERVICE)?;
    let (stores, sdk) = started(open_stores(&config).await)?;
    // The Lambda runtime requires AWS_LAMBDA_FUNCTION_NAME; a job whose interaction carried no
    // invoked ARN (never the case in Lambda) invokes that name.
    let function_name = started(config.function_name.clone().ok_or(
        "AWS_LAMBDA_FUNCTION_NAME is not set: discord-handler runs under a Lambda runtime (use `valinectl serve` locally)",
    ))?;
    let sdk = match sdk {
        Some(sdk) => sdk,
        None => valine_store::dynamo::sdk_config().await,
    };
    let jobs: Arc<dyn Jobs> = Arc::new(LambdaJobs::new(aws_sdk_lambda::Client::new(&sdk), function_name));
    let build: valine_service::secrets::Build<App> = Arc::new(move |config| {
        let (stores, jobs) = (stores.clone(), jobs.clone());
        Box::pin(async move {
            App::from_config(config, stores, jobs, Metrics::stdout(SERVICE)).await.map_err(|e| e.to_string())
        })
    });
    let live = Arc::new(started(Live::start(process_env(), secret_source(&config, &sdk), build).await)?);
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "discord-handler ready");
    lambda_http::run(service_fn(move |req| {
        let app = live.current();
        async move { valine_discord::lambda::handle(&app, req).await }
    }))
    .await
}
