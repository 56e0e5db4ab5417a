//! Delivery verification: size first (413), then `X-Hub-Signature-256` (401; a SHA-1-only
//! delivery is refused), compared in constant time, then `X-GitHub-Event` (400).

use hmac::{Hmac, Mac};
use http::StatusCode;
use sha2::Sha256;
use valine_service::http::HttpRequest;

/// Lambda's synchronous payload limit.
pub(crate) const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    TooLarge,
    Sha1Only,
    MissingSignature,
    BadSignature,
    MissingEvent,
    /// `X-GitHub-Delivery` missing, empty, too long for a key, or with characters GitHub never uses.
    BadDelivery,
}

impl Rejection {
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Rejection::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::MissingEvent | Rejection::BadDelivery => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    pub(crate) fn message(self) -> &'static str {
        match self {
            Rejection::TooLarge => "delivery body is larger than 6 MiB",
            Rejection::Sha1Only => "X-Hub-Signature (SHA-1) is not accepted: X-Hub-Signature-256 is required",
            Rejection::MissingSignature => "X-Hub-Signature-256 is required",
            Rejection::BadSignature => "invalid X-Hub-Signature-256",
            Rejection::MissingEvent => "X-GitHub-Event is required",
            Rejection::BadDelivery => "X-GitHub-Delivery must be 1 to 128 characters of A-Z, a-z, 0-9 and -",
        }
    }
}

/// Checks a delivery; returns its event name.
pub(crate) fn verify<'r>(req: &'r HttpRequest, secret: &[u8]) -> Result<&'r str, Rejection> {
    if req.body.len() > MAX_BODY_BYTES {
        return Err(Rejection::TooLarge);
    }
    let Some(signature) = req.header("x-hub-signature-256") else {
        return Err(if req.header("x-hub-signature").is_some() {
            Rejection::Sha1Only
        } else {
            Rejection::MissingSignature
        });
    };
    let hex_sig = signature.trim().strip_prefix("sha256=").ok_or(Rejection::BadSignature)?;
    let mut expected = [0u8; 32];
    hex::decode_to_slice(hex_sig, &mut expected).map_err(|_| Rejection::BadSignature)?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).map_err(|_| Rejection::BadSignature)?;
    mac.update(&req.body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected).map_err(|_| Rejection::BadSignature)?;
    let event = req.header("x-github-event").map(str::trim).filter(|e| !e.is_empty()).ok_or(Rejection::MissingEvent)?;
    // The id keys the dedup record: an empty one would make every later empty-id delivery a
    // "duplicate", and one past the store's key limit could never be recorded.
    match req.header("x-github-delivery") {
        Some(id) if valid_delivery_id(id) => Ok(event),
        _ => Err(Rejection::BadDelivery),
    }
}

/// GitHub's delivery ids are UUIDs; anything of 1–128 characters of `[A-Za-z0-9-]` is accepted.
pub(crate) fn valid_delivery_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue, Method};
    use valine_service::testing::github_signature;

    fn req(body: &[u8], sig: Option<&str>, event: Option<&str>) -> HttpRequest {
        let mut h = HeaderMap::new();
        if let Some(s) = sig {
            h.insert("X-Hub-Signature-256", HeaderValue::from_str(s).unwrap());
        }
        if let Some(e) = event {
            h.insert("x-github-event", HeaderValue::from_str(e).unwrap());
        }
        h.insert("x-github-delivery", HeaderValue::from_static("72d3162e-cc78-11e3-81ab-4c9367dc0958"));
        HttpRequest::new(Method::POST, "/github/webhook", h, body.to_vec())
    }

    #[test]
    fn accepts_a_valid_signature() {
        let body = br#"{"zen":"Keep it logically awesome."}"#;
        let sig = github_signature("s3cret", body);
        assert_eq!(verify(&req(body, Some(&sig), Some("ping")), b"s3cret"), Ok("ping"));
    }

    #[test]
    fn refuses_what_must_be_refused() {
        let body = b"{}";
        let sig = github_signature("s3cret", body);
        assert_eq!(verify(&req(body, Some(&sig), Some("ping")), b"other"), Err(Rejection::BadSignature));
        assert_eq!(verify(&req(body, Some("sha256=zz"), Some("ping")), b"s3cret"), Err(Rejection::BadSignature));
        assert_eq!(verify(&req(body, Some(&sig[7..]), Some("ping")), b"s3cret"), Err(Rejection::BadSignature));
        assert_eq!(verify(&req(body, None, Some("ping")), b"s3cret"), Err(Rejection::MissingSignature));
        assert_eq!(verify(&req(body, Some(&sig), None), b"s3cret"), Err(Rejection::MissingEvent));
        let mut sha1 = req(body, None, Some("ping"));
        sha1.headers
            .insert("x-hub-signature", HeaderValue::from_static("sha1=0000000000000000000000000000000000000000"));
        assert_eq!(verify(&sha1, b"s3cret"), Err(Rejection::Sha1Only));
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(verify(&req(&big, Some(&sig), Some("ping")), b"s3cret"), Err(Rejection::TooLarge));
        assert_eq!(Rejection::MissingEvent.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn delivery_ids_are_checked() {
        let body = b"{}";
        let sig = github_signature("s3cret", body);
        for (id, ok) in [
            (Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"), true),
            (Some("d-1"), true),
            (Some(&*"a".repeat(128)), true),
            (Some(&*"a".repeat(129)), false),
            (Some(""), false),
            (Some("a b"), false),
            (Some("a:b"), false),
            (Some("ü"), false),
            (None, false),
        ] {
            let mut r = req(body, Some(&sig), Some("ping"));
            r.headers.remove("x-github-delivery");
            if let Some(id) = id {
                r.headers.insert("x-github-delivery", HeaderValue::from_bytes(id.as_bytes()).unwrap());
            }
            let expected = if ok { Ok("ping") } else { Err(Rejection::BadDelivery) };
            assert_eq!(verify(&r, b"s3cret"), expected, "{id:?}");
        }
        assert_eq!(Rejection::BadDelivery.status(), StatusCode::BAD_REQUEST);
    }
}
