//! Signing requests the way Discord and GitHub do: for `valinectl send`, the replay of local
//! traffic, and tests.

use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `DISCORD_PUBLIC_KEY` for `key`.
pub fn public_key_hex(key: &SigningKey) -> String {
    hex::encode(key.verifying_key().to_bytes())
}

/// `X-Signature-Ed25519` for `timestamp` + `body`.
pub fn discord_signature(key: &SigningKey, timestamp: &str, body: &[u8]) -> String {
    let mut msg = Vec::with_capacity(timestamp.len() + body.len());
    msg.extend_from_slice(timestamp.as_bytes());
    msg.extend_from_slice(body);
    hex::encode(key.sign(&msg).to_bytes())
}

/// `X-Hub-Signature-256` for `body`.
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_signature_matches_githubs_documented_example() {
        // docs.github.com "Validating webhook deliveries": secret "It's a Secret to Everybody"
        assert_eq!(
            github_signature("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn discord_signature_verifies() {
        use ed25519_dalek::Verifier;
        let key = SigningKey::from_bytes(&[1; 32]);
        let sig = discord_signature(&key, "123", b"{}");
        let mut bytes = [0u8; 64];
        hex::decode_to_slice(sig, &mut bytes).unwrap();
        assert!(key.verifying_key().verify(b"123{}", &ed25519_dalek::Signature::from_bytes(&bytes)).is_ok());
    }
}
