//! What a preview keeps in the state table until its Confirm button, encrypted: a relay's text
//! and a repository variable's value are sealed (XSalsa20-Poly1305, a fresh random nonce each)
//! under a key derived from `AUDIT_HMAC_KEY`, so that the table, a backup of it or a look at an
//! item never shows them. (A secret is sealed to the repository's own key instead: see
//! `secrets`.) A key that changed in between, or an item someone edited, opens to nothing.

use crypto_secretbox::aead::{Aead, OsRng};
use crypto_secretbox::{AeadCore, Key, KeyInit, Nonce, XSalsa20Poly1305};
use valine_domain::audit::derive_key;
use valine_domain::config::Config;
use valine_store::Encrypted;

/// What the derived key is for; a new purpose is a new key.
const PURPOSE: &str = "valine confirmations at rest v1";

fn cipher(config: &Config) -> Option<XSalsa20Poly1305> {
    let key = config.audit_hmac_key.as_ref()?;
    let derived = derive_key(key.expose().as_bytes(), PURPOSE);
    Some(XSalsa20Poly1305::new(Key::from_slice(&derived)))
}

/// `text` sealed for the state table; `None` without `AUDIT_HMAC_KEY` (every command that holds
/// a preview refuses without it first).
pub(crate) fn seal(config: &Config, text: &str) -> Option<Encrypted> {
    let cipher = cipher(config)?;
    let nonce = XSalsa20Poly1305::generate_nonce(&mut OsRng);
    let ciphertext = cipher.encrypt(&nonce, text.as_bytes()).ok()?;
    Some(Encrypted { nonce: hex::encode(nonce), ciphertext: hex::encode(ciphertext) })
}

/// The text `sealed` holds; `None` when it does not open with this configuration's key.
pub(crate) fn open(config: &Config, sealed: &Encrypted) -> Option<String> {
    let cipher = cipher(config)?;
    let nonce: [u8; 24] = hex::decode(&sealed.nonce).ok()?.try_into().ok()?;
    let ciphertext = hex::decode(&sealed.ciphertext).ok()?;
    let plain = cipher.decrypt(Nonce::from_slice(&nonce), ciphertext.as_slice()).ok()?;
    String::from_utf8(plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(key: Option<&str>) -> Config {
        Config::from_lookup(|k| (k == "AUDIT_HMAC_KEY").then(|| key.map(str::to_string)).flatten()).unwrap()
    }

    #[test]
    fn sealed_texts_open_with_the_same_key_only() {
        let text = "déploiement 🚀 at 14:00, do not merge";
        let with = config(Some("audit-key"));
        let sealed = seal(&with, text).unwrap();
        assert!(!sealed.ciphertext.contains(&hex::encode(text)) && !format!("{sealed:?}").contains("déploiement"));
        assert_eq!(open(&with, &sealed).as_deref(), Some(text));
        // A fresh nonce each time: the same text never seals the same.
        assert_ne!(seal(&with, text).unwrap(), sealed);
        assert_eq!(open(&config(Some("another key")), &sealed), None);
        assert_eq!(open(&config(None), &sealed), None);
        assert!(seal(&config(None), text).is_none());
        let mut edited = sealed.clone();
        edited.ciphertext.replace_range(0..2, if &sealed.ciphertext[0..2] == "00" { "01" } else { "00" });
        assert_eq!(open(&with, &edited), None, "an edited item opens to nothing");
        assert_eq!(open(&with, &Encrypted { nonce: "zz".into(), ciphertext: sealed.ciphertext }), None);
    }
}
