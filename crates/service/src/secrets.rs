//! Secrets at run time. In Lambda both functions read one Secrets Manager secret (`SECRET_ID`, a
//! JSON object of setting name → value) when they start, and never hold a secret in their
//! configuration, where `lambda:GetFunctionConfiguration` would show it. A container reads the
//! secret again at most every [`REFRESH_EVERY`] (in the background, so no answer waits for it), and
//! at once when a GitHub signature fails to verify (at most every [`REFUSAL_GAP`]): rotating a
//! secret is `put-secret-value` and nothing else.
//!
//! [`Live`] holds the handler built from the configuration and the secret, and builds it again
//! when the secret's values change. Without `SECRET_ID` (`valinectl serve`, tests) the settings
//! come from the environment and nothing is refreshed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use tokio::time::Instant;
use valine_domain::config::{Config, ConfigError, secret_keys};

/// How old the secret may get before a container reads it again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);
/// The least time between two reads caused by signatures that failed to verify, so that a flood
/// of forged deliveries costs at most one `GetSecretValue` per this, per container.
pub const REFUSAL_GAP: Duration = Duration::from_secs(5);
/// The longest a read may take: at start (Lambda's init allows 10 s) and in a refresh.
const FETCH_BUDGET: Duration = Duration::from_secs(4);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("could not read secret {id}: {reason}")]
    Unreadable { id: String, reason: String },
    #[error("secret {id} is not a JSON object of strings: {reason}")]
    Malformed { id: String, reason: String },
}

/// The values of the secret, by setting name. `Debug` shows the names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretDoc {
    values: BTreeMap<String, String>,
}

impl std::fmt::Debug for SecretDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

impl SecretDoc {
    /// Reads a secret string: `{"GITHUB_WEBHOOK_SECRET": "…", …}`. Unknown keys are dropped.
    pub fn parse(id: &str, text: &str) -> Result<Self, SecretError> {
        let malformed = |reason: String| SecretError::Malformed { id: id.to_string(), reason };
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| malformed(format!("line {} column {}", e.line(), e.column())))?;
        let mut values = BTreeMap::new();
        for (key, value) in object {
            if !secret_keys().any(|k| k == key) {
                tracing::warn!(secret = id, key = %key, "a key of the secret that no setting reads was ignored");
                continue;
            }
            let serde_json::Value::String(value) = value else {
                return Err(malformed(format!("the value of {key} is not a string")));
            };
            values.insert(key, value);
        }
        Ok(Self { values })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The names it holds, for the start-up log line.
    pub fn keys(&self) -> Vec<&str> {
        self.values.keys().map(String::as_str).collect()
    }
}

/// Where the secret comes from.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The secret's id, for messages.
    fn id(&self) -> &str;
    async fn fetch(&self) -> Result<SecretDoc, SecretError>;
}

/// Secrets Manager's `GetSecretValue`.
#[derive(Debug, Clone)]
pub struct SecretsManager {
    client: aws_sdk_secretsmanager::Client,
    id: String,
}

impl SecretsManager {
    /// A client on the function's AWS settings, with its own short time limits (the store's are
    /// tuned for DynamoDB).
    pub fn new(sdk: &aws_config::SdkConfig, id: &str) -> Self {
        use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;
        let config = aws_sdk_secretsmanager::config::Builder::from(sdk)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .operation_attempt_timeout(Duration::from_secs(2))
                    .operation_timeout(FETCH_BUDGET)
                    .build(),
            )
            .build();
        Self { client: aws_sdk_secretsmanager::Client::from_conf(config), id: id.to_string() }
    }
}

#[async_trait]
impl SecretSource for SecretsManager {
    fn id(&self) -> &str {
        &self.id
    }

    async fn fetch(&self) -> Result<SecretDoc, SecretError> {
        let out =
            self.client.get_secret_value().secret_id(&self.id).send().await.map_err(|e| SecretError::Unreadable {
                id: self.id.clone(),
                reason: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
            })?;
        let text = out.secret_string().ok_or_else(|| SecretError::Malformed {
            id: self.id.clone(),
            reason: "it has no SecretString (a binary secret)".into(),
        })?;
        SecretDoc::parse(&self.id, text)
    }
}

/// The environment, as the configuration reads it.
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process environment.
pub fn process_env() -> Env {
    Arc::new(|k: &str| std::env::var(k).ok())
}

/// The configuration from the environment and the secret: for the secret's keys
/// ([`secret_keys`]) the secret's value wins.
pub fn config_with(env: &Env, doc: &SecretDoc) -> Result<Config, ConfigError> {
    Config::from_lookup(|k| doc.get(k).map(str::to_string).or_else(|| env(k)))
}

/// Builds the handler from a configuration.
pub type Build<A> = Arc<dyn Fn(Config) -> BoxFuture<'static, Result<A, String>> + Send + Sync>;

struct State<A> {
    app: Arc<A>,
    doc: SecretDoc,
    /// When the secret was last asked for, whatever the answer.
    asked_at: Instant,
}

/// The handler as built from the current secret.
pub struct Live<A> {
    env: Env,
    source: Option<Arc<dyn SecretSource>>,
    build: Build<A>,
    state: Mutex<State<A>>,
    refreshing: AtomicBool,
}

impl<A: Send + Sync + 'static> Live<A> {
    /// Reads the secret (when there is a source) and builds the handler; a secret that cannot be
    /// read stops the start, since nothing could be verified without it.
    pub async fn start(env: Env, source: Option<Arc<dyn SecretSource>>, build: Build<A>) -> Result<Self, String> {
        let doc = match &source {
            Some(s) => {
                let doc = fetch(s.as_ref()).await.map_err(|e| e.to_string())?;
                tracing::info!(secret = s.id(), keys = ?doc.keys(), "settings read from the secret");
                doc
            }
            None => SecretDoc::default(),
        };
        let config = config_with(&env, &doc).map_err(|e| e.to_string())?;
        let app = Arc::new(build(config).await?);
        Ok(Self {
            env,
            source,
            build,
            state: Mutex::new(State { app, doc, asked_at: Instant::now() }),
            refreshing: AtomicBool::new(false),
        })
    }

    /// The handler to answer with now. When the secret is due for a refresh, it is read in the
    /// background: this answer uses the current handler, the next ones the new one.
    pub fn current(self: &Arc<Self>) -> Arc<A> {
        let (app, due) = {
            let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            (state.app.clone(), self.source.is_some() && state.asked_at.elapsed() >= REFRESH_EVERY)
        };
        if due && !self.refreshing.swap(true, Ordering::AcqRel) {
            let live = self.clone();
            tokio::spawn(async move {
                let _ = live.refresh().await;
                live.refreshing.store(false, Ordering::Release);
            });
        }
        app
    }

    /// A signature failed to verify: reads the secret now (unless it was asked for within
    /// [`REFUSAL_GAP`]) and returns the new handler when the values changed.
    pub async fn after_refusal(&self) -> Option<Arc<A>> {
        let recent = {
            let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.asked_at.elapsed() < REFUSAL_GAP
        };
        if recent || self.source.is_none() {
            return None;
        }
        self.refresh().await
    }

    /// Reads the secret; builds and keeps a new handler when its values changed.
    async fn refresh(&self) -> Option<Arc<A>> {
        let source = self.source.as_ref()?;
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.asked_at = Instant::now();
        }
        let doc = match fetch(source.as_ref()).await {
            Ok(doc) => doc,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the secret again; the settings read before stay in use");
                return None;
            }
        };
        let unchanged = self.state.lock().unwrap_or_else(PoisonError::into_inner).doc == doc;
        if unchanged {
            return None;
        }
        let built = match config_with(&self.env, &doc) {
            Ok(config) => (self.build)(config).await,
            Err(e) => Err(e.to_string()),
        };
        match built {
            Ok(app) => {
                let app = Arc::new(app);
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                state.app = app.clone();
                state.doc = doc;
                tracing::info!(secret = source.id(), "the secret changed: settings read again");
                Some(app)
            }
            Err(e) => {
                tracing::error!(error = %e, "the secret changed to settings that do not work; the ones read before stay in use");
                None
            }
        }
    }
}

async fn fetch(source: &dyn SecretSource) -> Result<SecretDoc, SecretError> {
    tokio::time::timeout(FETCH_BUDGET, source.fetch()).await.unwrap_or_else(|_| {
        Err(SecretError::Unreadable { id: source.id().to_string(), reason: "no answer in time".into() })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A secret whose value the test changes, counting the reads.
    struct Rotating {
        value: Mutex<String>,
        reads: AtomicUsize,
        fail: AtomicBool,
    }

    #[async_trait]
    impl SecretSource for Rotating {
        fn id(&self) -> &str {
            "valine-orchestrator/test"
        }
        async fn fetch(&self) -> Result<SecretDoc, SecretError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                return Err(SecretError::Unreadable { id: self.id().into(), reason: "down".into() });
            }
            let value = self.value.lock().unwrap().clone();
            SecretDoc::parse(self.id(), &serde_json::json!({ "GITHUB_WEBHOOK_SECRET": value }).to_string())
        }
    }

    fn env(pairs: &'static [(&'static str, &'static str)]) -> Env {
        Arc::new(move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    /// The "handler": the webhook secret it was built with.
    fn build() -> Build<String> {
        Arc::new(|config: Config| {
            Box::pin(async move {
                config.github_webhook_secret.map(|s| s.expose().to_string()).ok_or_else(|| "no secret".to_string())
            })
        })
    }

    fn source(value: &str) -> Arc<Rotating> {
        Arc::new(Rotating { value: Mutex::new(value.into()), reads: AtomicUsize::new(0), fail: AtomicBool::new(false) })
    }

    #[test]
    fn a_secret_document_keeps_known_string_keys_and_never_prints_values() {
        let doc = SecretDoc::parse("s", r#"{"GITHUB_TOKEN": "canary-value", "OTHER": "x"}"#).unwrap();
        assert_eq!(doc.get("GITHUB_TOKEN"), Some("canary-value"));
        assert_eq!(doc.get("OTHER"), None);
        assert!(!format!("{doc:?}").contains("canary"));
        for bad in [r#"["x"]"#, r#"{"GITHUB_TOKEN": 5}"#, "not json canary-value"] {
            let err = SecretDoc::parse("s", bad).unwrap_err().to_string();
            assert!(err.starts_with("secret s is not a JSON object"), "{err}");
            assert!(!err.contains("canary"), "{err}");
        }
    }

    #[test]
    fn the_secret_wins_over_the_environment_for_its_keys_only() {
        let doc = SecretDoc::parse("s", r#"{"GITHUB_WEBHOOK_SECRET": "from-secret"}"#).unwrap();
        let config = config_with(&env(&[("GITHUB_WEBHOOK_SECRET", "from-env"), ("STAGE", "prod")]), &doc).unwrap();
        assert_eq!(config.github_webhook_secret.unwrap().expose(), "from-secret");
        assert_eq!(config.stage, "prod");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_reads_the_rotated_secret_at_once_but_not_twice_within_the_gap() {
        let src = source("old");
        let live = Live::start(env(&[]), Some(src.clone() as Arc<dyn SecretSource>), build()).await.unwrap();
        assert_eq!(*live.state.lock().unwrap().app, "old");
        *src.value.lock().unwrap() = "new".into();
        // Right after start: within the gap, nothing is read.
        assert!(live.after_refusal().await.is_none());
        assert_eq!(src.reads.load(Ordering::SeqCst), 1);
        tokio::time::advance(REFUSAL_GAP).await;
        assert_eq!(live.after_refusal().await.as_deref().map(String::as_str), Some("new"));
        assert_eq!(src.reads.load(Ordering::SeqCst), 2);
        // Unchanged since: nothing new to build.
        tokio::time::advance(REFUSAL_GAP).await;
        assert!(live.after_refusal().await.is_none());
        assert_eq!(src.reads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn the_secret_is_read_again_in_the_background_every_five_minutes() {
        let src = source("old");
        let live = Arc::new(Live::start(env(&[]), Some(src.clone() as Arc<dyn SecretSource>), build()).await.unwrap());
        *src.value.lock().unwrap() = "new".into();
        tokio::time::advance(REFRESH_EVERY - Duration::from_secs(1)).await;
        assert_eq!(*live.current(), "old");
        assert_eq!(src.reads.load(Ordering::SeqCst), 1, "not due yet");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(*live.current(), "old", "this answer does not wait for the read");
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(*live.current(), "new");
        assert_eq!(src.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_read_keeps_the_settings_and_a_start_without_the_secret_fails() {
        let src = source("old");
        let live = Live::start(env(&[]), Some(src.clone() as Arc<dyn SecretSource>), build()).await.unwrap();
        src.fail.store(true, Ordering::SeqCst);
        tokio::time::advance(REFUSAL_GAP).await;
        assert!(live.after_refusal().await.is_none());
        assert_eq!(*live.state.lock().unwrap().app, "old");
        let err = Live::start(env(&[]), Some(src as Arc<dyn SecretSource>), build()).await.err().unwrap();
        assert_eq!(err, "could not read secret valine-orchestrator/test: down");
    }

    #[tokio::test]
    async fn without_a_source_the_environment_is_the_configuration() {
        let live = Live::start(env(&[("GITHUB_WEBHOOK_SECRET", "local")]), None, build()).await.unwrap();
        assert_eq!(*live.state.lock().unwrap().app, "local");
        assert!(live.after_refusal().await.is_none());
    }
}
