//! Start-up and routing that both Lambda binaries share: the stores the configuration asks for,
//! start-up errors logged before they end the process, and the health routes.

use std::fmt::Display;

use valine_domain::config::{Config, StoreKind};
use valine_store::{StoreError, Stores};

use crate::http::HttpRequest;

/// Where a request goes, by method and path (the API's stage prefix, if any, is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET …/health`
    Health,
    /// `GET …/health/ready`
    Ready,
    /// A `POST`: the handler's own business.
    Post,
    /// Another `GET`.
    NotFound,
    /// Any other method.
    WrongMethod,
}

pub fn route(req: &HttpRequest) -> Route {
    if req.method == http::Method::GET {
        let path = req.path.trim_end_matches('/');
        if path.ends_with("/health/ready") {
            Route::Ready
        } else if path.ends_with("/health") {
            Route::Health
        } else {
            Route::NotFound
        }
    } else if req.method == http::Method::POST {
        Route::Post
    } else {
        Route::WrongMethod
    }
}

/// The stores the configuration asks for, and the AWS settings they were built with (the
/// Discord handler builds its Lambda client from the same ones).
pub async fn open_stores(config: &Config) -> Result<(Stores, Option<aws_config::SdkConfig>), StoreError> {
    match config.store {
        StoreKind::DynamoDb => {
            let sdk = valine_store::dynamo::sdk_config().await;
            Ok((Stores::dynamodb(config, &sdk), Some(sdk)))
        }
        StoreKind::Embedded => Ok((Stores::open(config).await?, None)),
    }
}

/// The stack's secret (`SECRET_ID`), read through Secrets Manager with the function's AWS
/// settings; none without `SECRET_ID`.
pub fn secret_source(
    config: &Config,
    sdk: &aws_config::SdkConfig,
) -> Option<std::sync::Arc<dyn crate::secrets::SecretSource>> {
    let id = config.secret_id.as_deref()?;
    Some(std::sync::Arc::new(crate::secrets::SecretsManager::new(sdk, id)))
}

/// Logs a start-up failure before `main` returns it, so the reason is in the function's log.
pub fn started<T, E: Display>(result: Result<T, E>) -> Result<T, E> {
    if let Err(e) = &result {
        tracing::error!(error = %e, "start-up failed");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, Method};

    #[test]
    fn routes_by_method_and_path() {
        let r = |m: Method, p: &str| route(&HttpRequest::new(m, p, HeaderMap::new(), vec![]));
        assert_eq!(r(Method::GET, "/health"), Route::Health);
        assert_eq!(r(Method::GET, "/prod/health/"), Route::Health);
        assert_eq!(r(Method::GET, "/health/ready"), Route::Ready);
        assert_eq!(r(Method::GET, "/"), Route::NotFound);
        assert_eq!(r(Method::POST, "/discord"), Route::Post);
        assert_eq!(r(Method::PUT, "/discord"), Route::WrongMethod);
    }
}
