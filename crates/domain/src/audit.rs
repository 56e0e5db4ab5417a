//! The audit record: who relayed what, where, with which outcome. The text itself is never
//! stored; a keyed digest lets an investigator holding the key confirm a given text.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The outcome a record states. A relay leaves two records: `pending` written before the post
/// (so nothing is posted without a durable record) and `posted` or `failed` after it, pointing
/// back through `metadata.intent_audit_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditResult {
    Pending,
    Posted,
    Blocked,
    Failed,
    DryRun,
}

impl AuditResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditResult::Pending => "pending",
            AuditResult::Posted => "posted",
            AuditResult::Blocked => "blocked",
            AuditResult::Failed => "failed",
            AuditResult::DryRun => "dry_run",
        }
    }
}

/// One append-only audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub audit_id: String,
    pub trace_id: String,
    pub user_id: String,
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_user: Option<String>,
    /// What was written or dispatched, when it is neither a channel nor a user: a repository
    /// variable or secret name, a workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `…abcd`: the last four hex digits of the digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_fingerprint: Option<String>,
    /// HMAC-SHA-256 of the text under `AUDIT_HMAC_KEY`, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_digest: Option<String>,
    /// Epoch seconds.
    pub timestamp: u64,
    pub result: AuditResult,
    /// username, message id, reason, intent_audit_id, …
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl AuditRecord {
    /// A new record with a fresh id and the current time.
    pub fn new(trace_id: &str, user_id: u64, command: &str, result: AuditResult) -> Self {
        Self {
            audit_id: uuid::Uuid::new_v4().to_string(),
            trace_id: trace_id.to_string(),
            user_id: user_id.to_string(),
            command: command.to_string(),
            target_channel: None,
            target_user: None,
            target: None,
            message_fingerprint: None,
            message_digest: None,
            timestamp: crate::clock::now_secs(),
            result,
            metadata: BTreeMap::new(),
        }
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn with_digest(mut self, digest: &MessageDigest) -> Self {
        self.message_fingerprint = Some(digest.fingerprint());
        self.message_digest = Some(digest.hex().to_string());
        self
    }

    /// Adds a metadata entry, redacted: reasons can carry error texts.
    pub fn meta(mut self, key: &str, value: impl AsRef<str>) -> Self {
        self.metadata.insert(key.to_string(), crate::redact::redact(value.as_ref()).into_owned());
        self
    }
}

/// The keyed digest of a relayed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageDigest(String);

impl MessageDigest {
    /// HMAC-SHA-256 of `text` under `key`.
    pub fn compute(key: &[u8], text: &str) -> Self {
        Self(hex::encode(mac(key, text).finalize().into_bytes()))
    }

    pub fn hex(&self) -> &str {
        &self.0
    }

    /// A digest kept as [`hex`](Self::hex) (a preview's, until its Confirm): 64 lower-case hex
    /// digits, or `None`.
    pub fn from_hex(hex: &str) -> Option<Self> {
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            .then(|| Self(hex.to_string()))
    }

    /// `…abcd`.
    pub fn fingerprint(&self) -> String {
        format!("…{}", &self.0[self.0.len() - 4..])
    }
}

/// Whether `text` is the text whose digest the record holds (constant-time compare).
pub fn digest_matches(key: &[u8], text: &str, digest_hex: &str) -> bool {
    match hex::decode(digest_hex) {
        Ok(expected) => mac(key, text).verify_slice(&expected).is_ok(),
        Err(_) => false,
    }
}

/// A 32-byte key for `purpose` derived from `key` (HKDF-SHA-256, RFC 5869, one output block):
/// what the bot encrypts at rest under `AUDIT_HMAC_KEY` without using that key itself for two
/// jobs.
pub fn derive_key(key: &[u8], purpose: &str) -> [u8; 32] {
    // Extract with a fixed salt, then expand with the purpose as `info` and the counter 1.
    let prk = keyed(b"valine-orchestrator").chain_update(key).finalize().into_bytes();
    let okm = keyed(&prk).chain_update(purpose.as_bytes()).chain_update([1u8]).finalize().into_bytes();
    okm.into()
}

fn keyed(key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

fn mac(key: &[u8], text: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail; the all-zero key only keeps it total.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
    mac.update(text.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_follow_rfc_5869_and_differ_by_purpose() {
        let a = derive_key(b"audit-key", "confirmation text");
        assert_eq!(a, derive_key(b"audit-key", "confirmation text"));
        assert_ne!(a, derive_key(b"audit-key", "something else"));
        assert_ne!(a, derive_key(b"another key", "confirmation text"));
        // Computed with Python's `hmac`: extract, then one expand block.
        assert_eq!(hex::encode(a), "422ade767213b8b564355479be90d86d1c7edf071ac44f741a4afa996a9cc7e3");
    }

    #[test]
    fn digest_is_keyed_and_fingerprint_is_its_tail() {
        let d = MessageDigest::compute(b"key", "deploy at 5pm");
        assert_eq!(d.hex().len(), 64);
        assert_eq!(d.fingerprint(), format!("…{}", &d.hex()[60..]));
        assert_ne!(d, MessageDigest::compute(b"other key", "deploy at 5pm"));
        // RFC 4231 test case 2
        assert_eq!(
            MessageDigest::compute(b"Jefe", "what do ya want for nothing?").hex(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(digest_matches(b"key", "deploy at 5pm", d.hex()));
        assert!(!digest_matches(b"key", "deploy at 6pm", d.hex()));
        assert!(!digest_matches(b"key", "deploy at 5pm", "zz"));
    }

    #[test]
    fn record_serializes_without_the_text() {
        let d = MessageDigest::compute(b"k", "the secret plan");
        let r = AuditRecord::new("t", 42, "/relay-send", AuditResult::Posted)
            .with_digest(&d)
            .meta("reason", "failed with token=abc123");
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("secret plan"));
        assert!(json.contains("\"result\":\"posted\""));
        assert_eq!(r.metadata["reason"], "failed with token=***REDACTED***");
        let back: AuditRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        assert_eq!(uuid::Uuid::parse_str(&r.audit_id).unwrap().get_version_num(), 4);
    }
}
