//! Everything the handler crates' tests share, in one place.

pub use valine_clients::testing::*;
pub use valine_domain::testing::*;
pub use valine_store::testing::*;

/// A GitHub delivery as GitHub sends it: `POST /github/webhook`, JSON, signed with `secret`.
pub fn signed_delivery(secret: &str, event: &str, delivery_id: &str, body: Vec<u8>) -> crate::http::HttpRequest {
    use http::{HeaderMap, HeaderValue, Method};
    let mut h = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set("x-github-event", event);
    set("x-github-delivery", delivery_id);
    set("x-hub-signature-256", &valine_domain::signing::github_signature(secret, &body));
    set("content-type", "application/json");
    crate::http::HttpRequest::new(Method::POST, "/github/webhook", h, body)
}

/// A Discord interaction as Discord sends it: `POST /discord`, its body signed with `key` now.
/// Build the body with [`valine_domain::signing::InteractionBuilder`].
pub fn signed_interaction(key: &valine_domain::signing::SigningKey, body: &[u8]) -> crate::http::HttpRequest {
    use http::{HeaderMap, HeaderValue, Method};
    let mut h = HeaderMap::new();
    for (name, value) in valine_domain::signing::discord_headers(key, body) {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    h.insert("content-type", HeaderValue::from_static("application/json"));
    crate::http::HttpRequest::new(Method::POST, "/discord", h, body.to_vec())
}
