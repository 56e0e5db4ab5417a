//! GitHub App authentication: an RS256 JWT signed with the App's private key (ring; PKCS#1 or
//! PKCS#8 PEM), the installation of a repository's owner (`GET /repos/{o}/{r}/installation`), and
//! an installation token scoped down to the one repository a call is for (`POST
//! /app/installations/{id}/access_tokens` with `{"repositories": [name]}`), kept per repository
//! until five minutes before it expires. A 401 or 404 drops what was cached, so an App installed
//! again (a new installation id) is found without a restart. Neither the key nor a token is ever
//! logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::Deserialize;
use serde_json::json;

use crate::github_error::{GitHubError, answer_message, rate_limit_pause};
use crate::github_routes::Route;
use valine_domain::repo::RepoName;

/// A token this close to its expiry is renewed before use.
pub const RENEW_BEFORE_SECS: u64 = 300;
/// The JWT's life: GitHub accepts at most ten minutes; `iat` is set back a minute for clock drift.
const JWT_LIFE_SECS: u64 = 540;
const JWT_BACKDATE_SECS: u64 = 60;

/// An installation token and when it expires (epoch seconds).
#[derive(Clone)]
pub struct InstallationToken {
    pub token: String,
    pub expires_at: u64,
}

impl std::fmt::Debug for InstallationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallationToken").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// `owner/name`, lower-case: what a token is kept for.
type RepoKey = (String, String);

fn repo_key(repo: &RepoName) -> RepoKey {
    (repo.owner.to_ascii_lowercase(), repo.name.to_ascii_lowercase())
}

/// The App's credentials, the installation of each owner, and a token per repository.
pub struct AppAuth {
    app_id: u64,
    key: RsaKeyPair,
    base: url::Url,
    http: reqwest::Client,
    /// owner (lower-case) → installation id.
    installations: Mutex<HashMap<String, u64>>,
    /// (owner, name) → a token for that one repository.
    tokens: Mutex<HashMap<RepoKey, InstallationToken>>,
    /// One lock per repository, so that two calls renewing the same token ask GitHub once while
    /// a slow renewal for one never holds up another's.
    renewing: Mutex<HashMap<RepoKey, Arc<tokio::sync::Mutex<()>>>>,
}

/// Whether GitHub's answer says the installation (or the token made from it) is no longer valid.
fn gone(e: &GitHubError) -> bool {
    matches!(e, GitHubError::Status { status: 401 | 404, .. })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl std::fmt::Debug for AppAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppAuth").field("app_id", &self.app_id).finish_non_exhaustive()
    }
}

/// The DER inside a PEM block, and whether it is PKCS#8 (`PRIVATE KEY`) rather than PKCS#1
/// (`RSA PRIVATE KEY`).
fn pem_der(pem: &str) -> Result<(Vec<u8>, bool), String> {
    let pem = pem.replace("\\n", "\n");
    let begin = pem.find("-----BEGIN ").ok_or("no PEM block")?;
    let rest = &pem[begin + "-----BEGIN ".len()..];
    let (label, rest) = rest.split_once("-----").ok_or("a broken PEM header")?;
    let end_marker = format!("-----END {label}-----");
    let body = &rest[..rest.find(&end_marker).ok_or("no PEM end line")?];
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD.decode(b64).map_err(|_| "the PEM body is not base64")?;
    match label {
        "RSA PRIVATE KEY" => Ok((der, false)),
        "PRIVATE KEY" => Ok((der, true)),
        other => Err(format!("a `{other}` block, not an RSA private key")),
    }
}

/// Seconds since the epoch of an RFC 3339 time such as `2026-11-22T15:00:00Z`.
fn expiry(at: &str) -> Option<u64> {
    valine_domain::clock::parse_rfc3339_secs(at)
}

#[derive(Deserialize)]
struct Installation {
    id: u64,
}

#[derive(Deserialize)]
struct AccessToken {
    token: String,
    expires_at: String,
}

impl AppAuth {
    /// From `GITHUB_APP_ID` and `GITHUB_APP_PRIVATE_KEY`; the error never contains the key.
    pub fn new(
        app_id: u64,
        private_key_pem: &str,
        base: Option<&url::Url>,
        timeout: Duration,
    ) -> Result<Self, GitHubError> {
        let (der, pkcs8) = pem_der(private_key_pem).map_err(GitHubError::BadKey)?;
        let key = if pkcs8 { RsaKeyPair::from_pkcs8(&der) } else { RsaKeyPair::from_der(&der) }
            .map_err(|e| GitHubError::BadKey(format!("not an RSA key ring accepts ({e})")))?;
        let base = match base {
            Some(b) => b.clone(),
            None => url::Url::parse("https://api.github.com/").map_err(|e| GitHubError::Unreachable(e.to_string()))?,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(timeout)
            .user_agent("valine-orchestrator")
            .build()
            .map_err(|e| GitHubError::Unreachable(e.without_url().to_string()))?;
        Ok(Self {
            app_id,
            key,
            base,
            http,
            installations: Mutex::default(),
            tokens: Mutex::default(),
            renewing: Mutex::default(),
        })
    }

    /// The App's JWT at `now`: RS256 over `{"iat", "exp", "iss"}`.
    pub fn jwt(&self, now: u64) -> Result<String, GitHubError> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims =
            json!({"iat": now - JWT_BACKDATE_SECS, "exp": now + JWT_LIFE_SECS, "iss": self.app_id.to_string()});
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{payload}");
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), signing_input.as_bytes(), &mut signature)
            .map_err(|_| GitHubError::Unreachable("the App's JWT could not be signed".into()))?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    /// The public key (PKCS#1 RSAPublicKey DER), for verifying the JWT in tests.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.key.public().as_ref().to_vec()
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base.as_str().trim_end_matches('/'), path.trim_start_matches('/'))
    }

    fn cached(&self, key: &RepoKey, now: u64) -> Option<InstallationToken> {
        lock(&self.tokens).get(key).cloned().filter(|t| t.expires_at > now + RENEW_BEFORE_SECS)
    }

    /// Forgets `repo`'s token and its owner's installation: GitHub no longer accepts the token
    /// (a 401), most likely because the App was uninstalled or installed again. The next call
    /// looks the installation up afresh.
    pub fn forget(&self, repo: &RepoName) {
        let key = repo_key(repo);
        lock(&self.tokens).remove(&key);
        lock(&self.installations).remove(&key.0);
        tracing::warn!(owner = %key.0, "GitHub refused the App's token; its installation will be looked up again");
    }

    /// A token for `repo` alone: the cached one unless it expires within five minutes, else a
    /// new one.
    pub async fn token_for(&self, repo: &RepoName) -> Result<InstallationToken, GitHubError> {
        let key = repo_key(repo);
        let now = valine_domain::clock::now_secs();
        if let Some(t) = self.cached(&key, now) {
            return Ok(t);
        }
        let renewing = lock(&self.renewing).entry(key.clone()).or_default().clone();
        let _one_at_a_time = renewing.lock().await;
        if let Some(t) = self.cached(&key, now) {
            return Ok(t);
        }
        let jwt = self.jwt(now)?;
        let known = lock(&self.installations).get(&key.0).copied();
        let token = match known {
            Some(installation) => match self.access_token(installation, repo, &jwt, now).await {
                // The installation is gone (uninstalled, or installed again under a new id).
                Err(e) if gone(&e) => {
                    lock(&self.installations).remove(&key.0);
                    tracing::warn!(owner = %key.0, installation, "the App's installation is gone; looking it up again");
                    let installation = self.installation(repo, &jwt).await?;
                    self.access_token(installation, repo, &jwt, now).await?
                }
                other => other?,
            },
            None => {
                let installation = self.installation(repo, &jwt).await?;
                self.access_token(installation, repo, &jwt, now).await?
            }
        };
        lock(&self.tokens).insert(key, token.clone());
        Ok(token)
    }

    /// The installation of `repo`'s owner, looked up and kept.
    async fn installation(&self, repo: &RepoName, jwt: &str) -> Result<u64, GitHubError> {
        let path = Route::Installation { repo }.path();
        let found: Installation = self.call(self.http.get(self.url(&path)), None, jwt).await?;
        lock(&self.installations).insert(repo.owner.to_ascii_lowercase(), found.id);
        Ok(found.id)
    }

    /// A token of `installation` that can reach `repo` and nothing else of the owner's.
    async fn access_token(
        &self,
        installation: u64,
        repo: &RepoName,
        jwt: &str,
        now: u64,
    ) -> Result<InstallationToken, GitHubError> {
        let path = Route::InstallationToken { installation }.path();
        let body = json!({"repositories": [repo.name]});
        let token: AccessToken = self.call(self.http.post(self.url(&path)), Some(&body), jwt).await?;
        let expires_at = expiry(&token.expires_at).unwrap_or(now + 3600);
        tracing::info!(repo = %repo, installation, expires_at, "GitHub App installation token obtained");
        Ok(InstallationToken { token: token.token, expires_at })
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        body: Option<&serde_json::Value>,
        jwt: &str,
    ) -> Result<T, GitHubError> {
        let req = match body {
            Some(b) => req.json(b),
            None => req,
        };
        let res = req
            .bearer_auth(jwt)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    GitHubError::Timeout
                } else {
                    GitHubError::Unreachable(e.without_url().to_string())
                }
            })?;
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.text().await.map_err(|e| GitHubError::Unreachable(e.without_url().to_string()))?;
        if !status.is_success() {
            let message = answer_message(status, &body);
            let now = valine_domain::clock::now_secs();
            if let Some(retry_after) = rate_limit_pause(status, &headers, &message, now) {
                return Err(GitHubError::RateLimited { retry_after });
            }
            return Err(GitHubError::Status { status: status.as_u16(), message: format!("GitHub App: {message}") });
        }
        serde_json::from_str(&body).map_err(|e| GitHubError::Unreachable(format!("GitHub App: unexpected answer: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_of_both_kinds_and_nothing_else() {
        let pkcs1 = include_str!("../tests/fixtures/github-app-test-key-pkcs1.pem");
        let pkcs8 = include_str!("../tests/fixtures/github-app-test-key-pkcs8.pem");
        assert!(!pem_der(pkcs1).unwrap().1);
        assert!(pem_der(pkcs8).unwrap().1);
        // as a secret store may keep it: one line with `\n` escapes
        assert!(pem_der(&pkcs1.replace('\n', "\\n")).is_ok());
        assert!(pem_der("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").is_err());
        assert!(pem_der("not a key").is_err());
        let err = AppAuth::new(
            1,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
            None,
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(matches!(err, GitHubError::BadKey(_)), "{err:?}");
        let err = err.to_string();
        assert!(err.starts_with("could not reach GitHub: GITHUB_APP_PRIVATE_KEY is not usable"), "{err}");
    }
}
