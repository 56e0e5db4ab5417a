//! Request verification, in the order of DESIGN.md section 2: size (413), signature headers
//! (401), freshness of the timestamp (401), Ed25519 over timestamp + body (401).

use http::StatusCode;
use serenity::interactions_endpoint::Verifier as Ed25519;
use valine_service::http::HttpRequest;

/// Bodies above this are refused before any other work.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// How far a signature timestamp may be from now, either way.
pub const MAX_SKEW_SECS: u64 = 300;

/// Why a request was refused; the status and a short text for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    TooLarge,
    MissingSignature,
    BadTimestamp,
    Stale,
    BadSignature,
}

impl Rejection {
    pub fn status(self) -> StatusCode {
        match self {
            Rejection::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Rejection::TooLarge => "request body is larger than 1 MiB",
            Rejection::MissingSignature => "X-Signature-Ed25519 and X-Signature-Timestamp are required",
            Rejection::BadTimestamp => "X-Signature-Timestamp is not a Unix time",
            Rejection::Stale => "X-Signature-Timestamp is more than 300 s from now",
            Rejection::BadSignature => "invalid request signature",
        }
    }
}

/// Checks Discord's signature on interactions.
pub struct Verifier {
    key: Ed25519,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier")
    }
}

impl Verifier {
    /// `key` was validated as an Ed25519 point when the configuration was read.
    pub fn new(key: [u8; 32]) -> Option<Self> {
        Ed25519::try_new(key).ok().map(|key| Self { key })
    }

    pub fn verify(&self, req: &HttpRequest, now_secs: u64) -> Result<(), Rejection> {
        if req.body.len() > MAX_BODY_BYTES {
            return Err(Rejection::TooLarge);
        }
        let (Some(signature), Some(timestamp)) =
            (req.header("x-signature-ed25519"), req.header("x-signature-timestamp"))
        else {
            return Err(Rejection::MissingSignature);
        };
        let ts: u64 = timestamp.trim().parse().map_err(|_| Rejection::BadTimestamp)?;
        if ts.abs_diff(now_secs) > MAX_SKEW_SECS {
            return Err(Rejection::Stale);
        }
        // The signature covers the timestamp exactly as sent.
        self.key.verify(signature.trim(), timestamp, &req.body).map_err(|()| Rejection::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use http::{HeaderMap, HeaderValue, Method};

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn signed(body: &[u8], ts: u64, sig_header: &str, ts_header: &str) -> HttpRequest {
        let mut msg = ts.to_string().into_bytes();
        msg.extend_from_slice(body);
        let sig = hex::encode(key().sign(&msg).to_bytes());
        let mut headers = HeaderMap::new();
        headers
            .insert(http::HeaderName::from_bytes(sig_header.as_bytes()).unwrap(), HeaderValue::from_str(&sig).unwrap());
        headers.insert(
            http::HeaderName::from_bytes(ts_header.as_bytes()).unwrap(),
            HeaderValue::from_str(&ts.to_string()).unwrap(),
        );
        HttpRequest::new(Method::POST, "/discord", headers, body.to_vec())
    }

    fn verifier() -> Verifier {
        Verifier::new(key().verifying_key().to_bytes()).unwrap()
    }

    #[test]
    fn accepts_a_fresh_valid_signature_with_any_header_case() {
        let now = 1_800_000_000;
        let req = signed(b"{\"type\":1}", now, "X-Signature-Ed25519", "x-signature-TIMESTAMP");
        assert_eq!(verifier().verify(&req, now + 299), Ok(()));
        assert_eq!(verifier().verify(&req, now - 299), Ok(()));
    }

    #[test]
    fn refuses_stale_future_tampered_and_missing() {
        let now = 1_800_000_000;
        let req = signed(b"{\"type\":1}", now, "x-signature-ed25519", "x-signature-timestamp");
        assert_eq!(verifier().verify(&req, now + 301), Err(Rejection::Stale));
        assert_eq!(verifier().verify(&req, now - 301), Err(Rejection::Stale));
        let mut tampered = req.clone();
        tampered.body = bytes::Bytes::from_static(b"{\"type\":2}");
        assert_eq!(verifier().verify(&tampered, now), Err(Rejection::BadSignature));
        let mut bad_hex = req.clone();
        bad_hex.headers.insert("x-signature-ed25519", HeaderValue::from_static("zz-not-hex"));
        assert_eq!(verifier().verify(&bad_hex, now), Err(Rejection::BadSignature));
        let mut short = req.clone();
        short.headers.insert("x-signature-ed25519", HeaderValue::from_static("abcd"));
        assert_eq!(verifier().verify(&short, now), Err(Rejection::BadSignature));
        let mut missing = req.clone();
        missing.headers.remove("x-signature-timestamp");
        assert_eq!(verifier().verify(&missing, now), Err(Rejection::MissingSignature));
        let mut word = req;
        word.headers.insert("x-signature-timestamp", HeaderValue::from_static("yesterday"));
        assert_eq!(verifier().verify(&word, now), Err(Rejection::BadTimestamp));
    }

    #[test]
    fn size_is_checked_first() {
        let req = HttpRequest::new(Method::POST, "/discord", HeaderMap::new(), vec![b' '; MAX_BODY_BYTES + 1]);
        assert_eq!(verifier().verify(&req, 0), Err(Rejection::TooLarge));
        assert_eq!(Rejection::TooLarge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
