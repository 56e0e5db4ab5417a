//! The yardstick for the cold-start budget: a bare `lambda_http` binary that builds the same AWS
//! clients as discord-handler (shared config, DynamoDB, Lambda) and answers every request with
//! `{"type":1}`, checking nothing. With `BARE_SECRET_ID` it also reads that secret once at start
//! (one `GetSecretValue`, as the handlers do in production): the floor plus the one read.

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let https = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https).load().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    if let Ok(id) = std::env::var("BARE_SECRET_ID") {
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
        secrets.get_secret_value().secret_id(id).send().await?;
    }
    lambda_http::run(service_fn(move |_req: Request| {
        let _clients = (&dynamodb, &lambda);
        async move {
            let mut res = Response::new(Body::Text(r#"{"type":1}"#.to_string()));
            res.headers_mut().insert("content-type", "application/json".parse().map_err(|_| "header")?);
            Ok::<_, Error>(res)
        }
    }))
    .await
}
