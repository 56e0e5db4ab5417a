//! Development keys for local mode, kept in `DATA_DIR/dev-keys.json` (mode 0600): the Discord
//! signing seed (its public half is the local `DISCORD_PUBLIC_KEY`), a GitHub webhook secret and
//! an audit digest key. Created on first use; never used when real settings are given.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DevKeys {
    /// Hex of the 32-byte Ed25519 seed.
    pub discord_seed: String,
    pub github_webhook_secret: String,
    pub audit_hmac_key: String,
}

pub(crate) fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("dev-keys.json")
}

/// 32 random bytes, from two v4 UUIDs (the operating system's generator).
fn random_hex() -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    format!("{}{}", a.simple(), b.simple())
}

impl DevKeys {
    pub(crate) fn load_or_create(data_dir: &Path) -> std::io::Result<(Self, bool)> {
        let p = path(data_dir);
        if let Ok(text) = std::fs::read_to_string(&p) {
            let keys: DevKeys = serde_json::from_str(&text)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", p.display())))?;
            return Ok((keys, false));
        }
        std::fs::create_dir_all(data_dir)?;
        let keys =
            DevKeys { discord_seed: random_hex(), github_webhook_secret: random_hex(), audit_hmac_key: random_hex() };
        let text = serde_json::to_string_pretty(&keys).unwrap_or_default();
        write_private(&p, text.as_bytes())?;
        Ok((keys, true))
    }

    pub(crate) fn signing_key(&self) -> Option<ed25519_dalek::SigningKey> {
        let mut seed = [0u8; 32];
        hex::decode_to_slice(&self.discord_seed, &mut seed).ok()?;
        Some(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    pub(crate) fn public_key_hex(&self) -> Option<String> {
        self.signing_key().map(|k| hex::encode(k.verifying_key().to_bytes()))
    }
}

fn write_private(p: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(p)?;
    f.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, created) = DevKeys::load_or_create(dir.path()).unwrap();
        assert!(created);
        let (b, created) = DevKeys::load_or_create(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(a.discord_seed, b.discord_seed);
        assert_eq!(a.public_key_hex().unwrap().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path(dir.path())).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "dev keys readable by others");
        }
    }
}
