//! Signing requests the way Discord and GitHub do, and the interactions Discord sends: for
//! `valinectl send`, the playground, the end-to-end tests and every other test. One builder, so
//! that what the tools send and what the tests send cannot drift from what Discord sends.

use ed25519_dalek::Signer;
pub use ed25519_dalek::SigningKey;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// Whether two secrets are equal, in time that depends on neither (their HMACs under a key of
/// this process are compared in constant time, so not even their lengths show).
pub fn secrets_equal(given: &[u8], expected: &[u8]) -> bool {
    let key = uuid::Uuid::new_v4();
    let mac = |v: &[u8]| {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        m.update(v);
        m
    };
    mac(given).verify_slice(&mac(expected).finalize().into_bytes()).is_ok()
}

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
    // HMAC accepts keys of any length, so this cannot fail; the all-zero key only keeps it total.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The `X-Signature-Ed25519` and `X-Signature-Timestamp` headers of `body`, signed now.
pub fn discord_headers(key: &SigningKey, body: &[u8]) -> [(&'static str, String); 2] {
    let ts = crate::clock::now_secs().to_string();
    [("x-signature-ed25519", discord_signature(key, &ts, body)), ("x-signature-timestamp", ts)]
}

/// Where an interaction is sent from: a member of a guild (with roles), or a DM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    Member { guild_id: u64, roles: Vec<u64> },
    Dm,
}

/// An interaction as Discord sends it (the fields Discord sends today, whether the bot reads them
/// or not). `kind` is Discord's interaction type: 2 a command, 3 a component, 4 autocomplete,
/// 5 a modal.
#[derive(Debug, Clone, PartialEq)]
pub struct InteractionBuilder {
    kind: u8,
    id: u64,
    application_id: u64,
    data: Value,
    user_id: u64,
    user_name: String,
    from: From,
    channel_id: u64,
    token: String,
    message: Option<Value>,
}

impl InteractionBuilder {
    /// Any interaction of `kind` with `data`, from user 42 in guild 5, channel 6.
    pub fn new(kind: u8, data: Value) -> Self {
        let id = 1_300_000_000_000_000_000 + u64::from(uuid::Uuid::new_v4().as_u128() as u32);
        Self {
            kind,
            id,
            application_id: 1_290_463_189_401_731_073,
            data,
            user_id: 42,
            user_name: "oncall".into(),
            from: From::Member { guild_id: 5, roles: Vec::new() },
            channel_id: 6,
            token: format!("interaction-token-{id}"),
            message: None,
        }
    }

    /// A slash command with its options (Discord's option objects).
    pub fn command(name: &str, options: Value) -> Self {
        Self::new(2, json!({"id": "1", "name": name, "type": 1, "options": options}))
    }

    /// A button press on the bot's message.
    pub fn button(custom_id: &str) -> Self {
        Self::new(3, json!({"component_type": 2, "custom_id": custom_id}))
    }

    pub fn id(mut self, id: u64) -> Self {
        self.id = id;
        self.token = format!("interaction-token-{id}");
        self
    }

    pub fn application(mut self, application_id: u64) -> Self {
        self.application_id = application_id;
        self
    }

    pub fn user(mut self, user_id: u64, name: &str) -> Self {
        self.user_id = user_id;
        self.user_name = name.to_string();
        self
    }

    /// From a member of `guild_id` with `roles`.
    pub fn member_of(mut self, guild_id: u64, roles: &[u64]) -> Self {
        self.from = From::Member { guild_id, roles: roles.to_vec() };
        self
    }

    /// From a direct message with the bot.
    pub fn in_dm(mut self) -> Self {
        self.from = From::Dm;
        self
    }

    pub fn channel(mut self, channel_id: u64) -> Self {
        self.channel_id = channel_id;
        self
    }

    pub fn token(mut self, token: &str) -> Self {
        self.token = token.to_string();
        self
    }

    /// The message a component was pressed on.
    pub fn message(mut self, message: Value) -> Self {
        self.message = Some(message);
        self
    }

    pub fn body(&self) -> Value {
        let user = json!({"id": self.user_id.to_string(), "username": self.user_name.to_ascii_lowercase(),
                          "global_name": self.user_name, "discriminator": "0", "avatar": null});
        let mut body = json!({
            "id": self.id.to_string(),
            "application_id": self.application_id.to_string(),
            "type": self.kind,
            "data": self.data,
            "channel_id": self.channel_id.to_string(),
            "token": self.token,
            "version": 1,
            "locale": "en-US",
            "app_permissions": "0",
            "entitlements": [],
            "attachment_size_limit": 10485760,
        });
        // `body` is the object just written
        let Value::Object(fields) = &mut body else { return body };
        match &self.from {
            From::Dm => {
                fields.insert("user".into(), user);
                fields.insert("context".into(), json!(1));
                fields.insert("authorizing_integration_owners".into(), json!({"1": self.user_id.to_string()}));
            }
            From::Member { guild_id, roles } => {
                fields.insert("guild_id".into(), json!(guild_id.to_string()));
                fields.insert("context".into(), json!(0));
                fields.insert("authorizing_integration_owners".into(), json!({"0": guild_id.to_string()}));
                fields.insert(
                    "member".into(),
                    json!({
                        "user": user,
                        "roles": roles.iter().map(u64::to_string).collect::<Vec<_>>(),
                        "joined_at": "2026-01-01T00:00:00.000000+00:00",
                        "deaf": false, "mute": false, "flags": 0, "permissions": "0"
                    }),
                );
            }
        }
        if let Some(m) = &self.message {
            fields.insert("message".into(), m.clone());
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_equal_only_when_every_byte_is() {
        assert!(secrets_equal(b"s3cret-token", b"s3cret-token"));
        assert!(!secrets_equal(b"s3cret-token", b"s3cret-tokem"));
        assert!(!secrets_equal(b"s3cret", b"s3cret-token"));
        assert!(!secrets_equal(b"", b"s3cret-token"));
    }

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

    #[test]
    fn built_interactions_have_what_discord_sends() {
        let b = InteractionBuilder::command("status", json!([])).id(7).user(9, "Ada").member_of(11, &[12]).channel(13);
        let v = b.body();
        assert_eq!(
            (v["id"].as_str(), v["type"].as_u64(), v["token"].as_str()),
            (Some("7"), Some(2), Some("interaction-token-7"))
        );
        assert_eq!((v["guild_id"].as_str(), v["member"]["roles"][0].as_str()), (Some("11"), Some("12")));
        assert_eq!(v["member"]["user"]["id"], "9");
        let dm = InteractionBuilder::button("v1:x").in_dm().body();
        assert!(dm.get("guild_id").is_none() && dm.get("member").is_none());
        assert_eq!((dm["user"]["id"].as_str(), dm["context"].as_u64()), (Some("42"), Some(1)));
        let headers = discord_headers(&SigningKey::from_bytes(&[1; 32]), b"{}");
        assert_eq!(headers[0].0, "x-signature-ed25519");
    }
}
