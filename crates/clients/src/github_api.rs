//! The `GitHub` port and its adapters: octocrab against the REST API (base URI overridable),
//! and a dry-run adapter. Run and workflow models are our own and lenient: a field GitHub adds
//! or leaves out never fails a read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use valine_domain::config::{Config, Secret};
use valine_domain::repo::RepoName;

use crate::github_app::AppAuth;
use crate::github_error::{GitHubError, rate_limit_pause};
use crate::github_routes::Route;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workflow {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub state: String,
}

impl Workflow {
    /// The file name (`ci.yml`) of `.github/workflows/ci.yml`.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Actor {
    #[serde(default)]
    pub login: String,
}

/// A workflow run, as both the REST API and `workflow_run` webhooks describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct WorkflowRun {
    pub id: u64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub display_title: Option<String>,
    #[serde(default)]
    pub head_branch: Option<String>,
    #[serde(default)]
    pub head_sha: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub html_url: String,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub run_started_at: Option<String>,
    #[serde(default)]
    pub run_number: u64,
    #[serde(default)]
    pub workflow_id: u64,
    #[serde(default)]
    pub event: String,
    #[serde(default)]
    pub actor: Option<Actor>,
    #[serde(default)]
    pub triggering_actor: Option<Actor>,
    /// 1 for the first attempt, more after re-runs.
    #[serde(default)]
    pub run_attempt: u64,
}

impl WorkflowRun {
    /// Seconds from start to last update, for a finished run.
    pub fn duration_secs(&self) -> Option<u64> {
        let start = self.run_started_at.as_deref().or(self.created_at.as_deref())?;
        let end = self.updated_at.as_deref()?;
        Some(
            valine_domain::clock::parse_rfc3339_secs(end)?
                .saturating_sub(valine_domain::clock::parse_rfc3339_secs(start)?),
        )
    }
}

#[derive(Debug, Deserialize)]
struct WorkflowsPage {
    #[serde(default)]
    workflows: Vec<Workflow>,
}

#[derive(Debug, Deserialize)]
struct RunsPage {
    #[serde(default)]
    workflow_runs: Vec<WorkflowRun>,
}

/// A step of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct JobStep {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub number: u64,
}

/// A job of a workflow run attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Job {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub steps: Vec<JobStep>,
}

impl Job {
    /// The first step that failed (or timed out).
    pub fn failed_step(&self) -> Option<&JobStep> {
        self.steps.iter().find(|s| matches!(s.conclusion.as_deref(), Some("failure" | "timed_out")))
    }
}

/// The first job of `jobs` that failed (or timed out, or was cancelled by a failure).
pub fn first_failed_job(jobs: &[Job]) -> Option<&Job> {
    jobs.iter()
        .find(|j| matches!(j.conclusion.as_deref(), Some("failure" | "timed_out")))
        .or_else(|| jobs.iter().find(|j| j.conclusion.as_deref() == Some("startup_failure")))
}

#[derive(Debug, Deserialize)]
struct JobsPage {
    #[serde(default)]
    jobs: Vec<Job>,
}

/// The longest log text read; its tail is what matters, and a job log can be megabytes.
pub const MAX_LOG_BYTES: usize = 4 * 1024 * 1024;

/// What the bot asks of GitHub.
#[async_trait]
pub trait GitHub: Send + Sync {
    async fn list_workflows(&self, repo: &RepoName) -> Result<Vec<Workflow>, GitHubError>;
    /// The newest runs of one workflow (by id or file name), newest first.
    async fn list_runs(&self, repo: &RepoName, workflow: &str, per_page: u8) -> Result<Vec<WorkflowRun>, GitHubError>;
    /// `workflow_dispatch` of `workflow` (file name or id) on `git_ref` with `inputs`.
    async fn dispatch(&self, repo: &RepoName, workflow: &str, git_ref: &str, inputs: &Value)
    -> Result<(), GitHubError>;
    async fn get_run(&self, repo: &RepoName, run_id: u64) -> Result<WorkflowRun, GitHubError>;
    /// The jobs of one attempt of a run (`GET …/actions/runs/{id}/attempts/{n}/jobs`).
    async fn run_attempt_jobs(&self, _repo: &RepoName, _run_id: u64, _attempt: u64) -> Result<Vec<Job>, GitHubError> {
        Err(GitHubError::Unsupported("listing jobs"))
    }
    /// A job's log text (`GET …/actions/jobs/{id}/logs`, which redirects to the text).
    async fn job_log(&self, _repo: &RepoName, _job_id: u64) -> Result<String, GitHubError> {
        Err(GitHubError::Unsupported("reading logs"))
    }
    /// Re-runs the failed jobs of a run (`POST …/actions/runs/{id}/rerun-failed-jobs`).
    async fn rerun_failed_jobs(&self, _repo: &RepoName, _run_id: u64) -> Result<(), GitHubError> {
        Err(GitHubError::Unsupported("re-running jobs"))
    }
    /// The repository's webhooks (`GET /repos/{o}/{r}/hooks`), for the tick's gap filling.
    async fn list_hooks(&self, _repo: &RepoName) -> Result<Vec<Hook>, GitHubError> {
        Err(GitHubError::Unsupported("listing webhooks"))
    }
    /// A webhook's most recent deliveries, newest first (`GET …/hooks/{id}/deliveries`); GitHub
    /// keeps them for three days.
    async fn hook_deliveries(&self, _repo: &RepoName, _hook_id: u64) -> Result<Vec<HookDelivery>, GitHubError> {
        Err(GitHubError::Unsupported("listing deliveries"))
    }
    /// Asks GitHub to send a delivery again (`POST …/hooks/{id}/deliveries/{delivery}/attempts`).
    async fn redeliver(&self, _repo: &RepoName, _hook_id: u64, _delivery_id: u64) -> Result<(), GitHubError> {
        Err(GitHubError::Unsupported("redelivering"))
    }
    /// Completed runs created at or after `since` (RFC 3339), newest first, as the REST API
    /// describes them: the same shape as a `workflow_run` delivery's `workflow_run`.
    async fn completed_runs(&self, _repo: &RepoName, _since: &str) -> Result<Vec<Value>, GitHubError> {
        Err(GitHubError::Unsupported("listing runs"))
    }
    /// Writes a repository Actions variable: `PATCH …/actions/variables/{name}`, or `POST
    /// …/actions/variables` when it does not exist yet.
    async fn set_variable(&self, _repo: &RepoName, _name: &str, _value: &str) -> Result<VariableWrite, GitHubError> {
        Err(GitHubError::Unsupported("writing variables"))
    }
    /// The repository's public key for Actions secrets: `GET …/actions/secrets/public-key`.
    async fn secrets_public_key(&self, _repo: &RepoName) -> Result<SecretsKey, GitHubError> {
        Err(GitHubError::Unsupported("writing secrets"))
    }
    /// Writes a secret already sealed to the repository's key: `PUT …/actions/secrets/{name}`.
    async fn put_sealed_secret(
        &self,
        _repo: &RepoName,
        _name: &str,
        _sealed: &SealedSecret,
    ) -> Result<SecretWrite, GitHubError> {
        Err(GitHubError::Unsupported("writing secrets"))
    }
    /// Writes a repository Actions secret: the repository's public key, `value` sealed to it
    /// (libsodium sealed box), then `PUT …/actions/secrets/{name}` with the key id.
    async fn set_secret(&self, repo: &RepoName, name: &str, value: &Secret) -> Result<SecretWrite, GitHubError> {
        let key = self.secrets_public_key(repo).await?;
        let sealed = key.seal(value.expose().as_bytes())?;
        self.put_sealed_secret(repo, name, &sealed).await
    }
}

/// A repository webhook: its id and where it delivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Hook {
    pub id: u64,
    #[serde(default)]
    pub config: HookConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HookConfig {
    #[serde(default)]
    pub url: Option<String>,
}

/// One attempt of one delivery. Attempts of the same delivery share its `guid` (the
/// `X-GitHub-Delivery` header); a redelivery is a new attempt with `redelivery: true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HookDelivery {
    pub id: u64,
    #[serde(default)]
    pub guid: String,
    #[serde(default)]
    pub delivered_at: Option<String>,
    #[serde(default)]
    pub redelivery: bool,
    /// The HTTP status the endpoint answered (0: no answer, such as a timeout).
    #[serde(default)]
    pub status_code: u16,
    #[serde(default)]
    pub event: String,
    #[serde(default)]
    pub action: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawRunsPage {
    #[serde(default)]
    workflow_runs: Vec<Value>,
}

/// What writing a variable did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariableWrite {
    Updated,
    Created,
    /// `DRY_RUN`: nothing was written.
    DryRun,
}

/// What writing a secret did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretWrite {
    Updated,
    Created,
    DryRun,
}

/// A repository's public key for Actions secrets: `GET …/actions/secrets/public-key`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SecretsKey {
    pub key_id: String,
    /// Base64 of the repository's X25519 public key.
    pub key: String,
}

impl SecretsKey {
    /// `value` sealed to this key: only GitHub can open it.
    pub fn seal(&self, value: &[u8]) -> Result<SealedSecret, GitHubError> {
        Ok(SealedSecret { key_id: self.key_id.clone(), encrypted_value: seal_secret(&self.key, value)? })
    }
}

/// A secret's value sealed to a repository's key, as `PUT …/actions/secrets/{name}` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub key_id: String,
    /// Base64 of the libsodium sealed box.
    pub encrypted_value: String,
}

/// `value` as a libsodium sealed box to the base64 X25519 `public_key`, base64-encoded: what
/// GitHub's secrets API takes as `encrypted_value`.
pub fn seal_secret(public_key: &str, value: &[u8]) -> Result<String, GitHubError> {
    use base64::Engine as _;
    let bad = || GitHubError::Unreachable("the repository's public key is not a 32-byte base64 key".into());
    let raw = base64::engine::general_purpose::STANDARD.decode(public_key.trim()).map_err(|_| bad())?;
    let bytes: [u8; 32] = raw.try_into().map_err(|_| bad())?;
    let key = crypto_box::PublicKey::from(bytes);
    let sealed = key
        .seal(&mut crypto_box::aead::OsRng, value)
        .map_err(|_| GitHubError::Unreachable("could not encrypt the secret".into()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(sealed))
}

/// GitHub over octocrab. The client (and the root certificates its TLS connector loads) is built
/// on the first call, not at start-up: a PING or a delivery nobody routes never needs it.
#[derive(Clone)]
pub struct OctocrabGitHub {
    crab: Arc<std::sync::OnceLock<Result<octocrab::Octocrab, GitHubError>>>,
    token: Arc<str>,
    base: Option<url::Url>,
    /// For the redirect of a log download: a plain client, so that the token never goes to the
    /// storage host the redirect names. Built on first use too.
    plain: Arc<std::sync::OnceLock<reqwest::Client>>,
    read_timeout: Duration,
    /// GitHub App authentication instead of the token: an installation token per repository.
    app: Option<Arc<AppAuth>>,
    /// A client per repository (`owner/name`, lower-case), on the token it was built with.
    app_clients: Arc<std::sync::Mutex<std::collections::HashMap<String, (String, octocrab::Octocrab)>>>,
    /// After a rate-limited job or log look-up, until when the next ones fail fast without a
    /// request: per credential (the token: one entry; the App: one per owner's installation).
    paused: Arc<Mutex<HashMap<String, Instant>>>,
}

impl std::fmt::Debug for OctocrabGitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OctocrabGitHub")
    }
}

impl OctocrabGitHub {
    pub fn new(token: &str, base: Option<&url::Url>, read_timeout: Duration) -> Result<Self, GitHubError> {
        if let Some(base) = base {
            // Checked now, so that a wrong GITHUB_API_BASE fails the start, not the first command.
            octocrab::Octocrab::builder()
                .base_uri(base.as_str())
                .map_err(|e| GitHubError::Unreachable(e.to_string()))?;
        }
        Ok(Self {
            crab: Arc::default(),
            token: Arc::from(token),
            base: base.cloned(),
            plain: Arc::default(),
            read_timeout,
            app: None,
            app_clients: Arc::default(),
            paused: Arc::default(),
        })
    }

    /// GitHub App authentication: every call carries the installation token of its
    /// repository's owner.
    pub fn with_app(app: AppAuth, base: Option<&url::Url>, read_timeout: Duration) -> Result<Self, GitHubError> {
        let mut gh = Self::new("", base, read_timeout)?;
        gh.app = Some(Arc::new(app));
        Ok(gh)
    }

    fn build(&self, token: &str) -> Result<octocrab::Octocrab, GitHubError> {
        let mut builder = octocrab::Octocrab::builder()
            .personal_token(token.to_string())
            .set_connect_timeout(Some(Duration::from_secs(2)))
            .set_read_timeout(Some(self.read_timeout))
            .set_write_timeout(Some(Duration::from_secs(5)));
        if let Some(base) = &self.base {
            builder = builder.base_uri(base.as_str()).map_err(|e| GitHubError::Unreachable(e.to_string()))?;
        }
        builder.build().map_err(|e| GitHubError::Unreachable(e.to_string()))
    }

    /// The client for a call on `repo`: the token's, or one on an installation token for that
    /// repository alone (renewed five minutes before it expires).
    async fn client(&self, repo: &RepoName) -> Result<octocrab::Octocrab, GitHubError> {
        let Some(app) = &self.app else { return self.crab().cloned() };
        let token = app.token_for(repo).await?;
        let key = repo.to_string().to_ascii_lowercase();
        let mut clients = self.app_clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((t, c)) = clients.get(&key)
            && *t == token.token
        {
            return Ok(c.clone());
        }
        let client = self.build(&token.token)?;
        clients.insert(key, (token.token, client.clone()));
        Ok(client)
    }

    /// `e`, after forgetting the App's token for `repo` when GitHub refused it (401): the App
    /// was uninstalled or installed again, and the next call should find out which.
    fn refused(&self, repo: &RepoName, e: GitHubError) -> GitHubError {
        if let (Some(app), GitHubError::Status { status: 401, .. }) = (&self.app, &e) {
            app.forget(repo);
            self.app_clients.lock().unwrap_or_else(|p| p.into_inner()).remove(&repo.to_string().to_ascii_lowercase());
        }
        e
    }

    fn plain(&self) -> &reqwest::Client {
        self.plain.get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(2))
                .redirect(reqwest::redirect::Policy::limited(3))
                .build()
                .unwrap_or_else(|_| reqwest::Client::new())
        })
    }

    /// The client, built once. Must be called inside a Tokio runtime (octocrab spawns its
    /// request buffer).
    fn crab(&self) -> Result<&octocrab::Octocrab, GitHubError> {
        self.crab.get_or_init(|| self.build(&self.token)).as_ref().map_err(Clone::clone)
    }

    /// Whose rate limit a call on `repo` counts against: the token's, or the owner's
    /// installation's.
    fn limit_key(&self, repo: &RepoName) -> String {
        if self.app.is_some() { repo.owner.to_ascii_lowercase() } else { String::new() }
    }

    /// How long look-ups on `repo` stay paused by an earlier rate limit, if they are.
    pub fn paused_for(&self, repo: &RepoName) -> Option<Duration> {
        let paused = self.paused.lock().unwrap_or_else(PoisonError::into_inner);
        let until = *paused.get(&self.limit_key(repo))?;
        Some(until.saturating_duration_since(Instant::now())).filter(|d| !d.is_zero())
    }

    /// Fails fast with [`GitHubError::RateLimited`] while look-ups on `repo` are paused.
    fn unless_paused(&self, repo: &RepoName) -> Result<(), GitHubError> {
        match self.paused_for(repo) {
            Some(retry_after) => Err(GitHubError::RateLimited { retry_after }),
            None => Ok(()),
        }
    }

    /// Pauses look-ups on `repo` when `result` is a rate limit.
    fn noted<T>(&self, repo: &RepoName, result: Result<T, GitHubError>) -> Result<T, GitHubError> {
        if let Err(GitHubError::RateLimited { retry_after }) = &result {
            let now = Instant::now();
            let mut paused = self.paused.lock().unwrap_or_else(PoisonError::into_inner);
            paused.retain(|_, until| *until > now);
            paused.insert(self.limit_key(repo), now.checked_add(*retry_after).unwrap_or(now));
            tracing::warn!(repo = %repo, retry_after_s = retry_after.as_secs(), "GitHub rate limit; job and log look-ups paused");
        }
        result
    }
}

fn map_err(e: octocrab::Error) -> GitHubError {
    if let octocrab::Error::GitHub { source, .. } = &e {
        let headers = source.headers.clone().unwrap_or_default();
        let now = valine_domain::clock::now_secs();
        if let Some(retry_after) = rate_limit_pause(source.status_code, &headers, &source.message, now) {
            return GitHubError::RateLimited { retry_after };
        }
        return GitHubError::Status { status: source.status_code.as_u16(), message: source.message.clone() };
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return GitHubError::Timeout;
        }
        if c.to_string().contains("timed out") {
            return GitHubError::Timeout;
        }
        cause = c.source();
    }
    GitHubError::Unreachable(e.to_string())
}

/// A non-success answer as a typed error, with GitHub's `message` when it sent one, or the rate
/// limit it reports. (A macro: octocrab's raw response body type is not nameable from here.)
macro_rules! status_error {
    ($gh:expr, $response:expr) => {{
        let response = $response;
        let status = response.status();
        let headers = response.headers().clone();
        match $gh.crab() {
            Ok(crab) => {
                let body: String = crab.body_to_string(response).await.unwrap_or_default();
                GitHubError::from_response(status, &headers, &body, valine_domain::clock::now_secs())
            }
            Err(e) => e,
        }
    }};
}

#[async_trait]
impl GitHub for OctocrabGitHub {
    async fn list_workflows(&self, repo: &RepoName) -> Result<Vec<Workflow>, GitHubError> {
        let route = Route::Workflows { repo }.path();
        let page: WorkflowsPage = self
            .client(repo)
            .await?
            .get(route, Some(&[("per_page", "100")]))
            .await
            .map_err(|e| self.refused(repo, map_err(e)))?;
        Ok(page.workflows)
    }

    async fn list_runs(&self, repo: &RepoName, workflow: &str, per_page: u8) -> Result<Vec<WorkflowRun>, GitHubError> {
        let route = Route::WorkflowRuns { repo, workflow }.path();
        let per_page = per_page.clamp(1, 100).to_string();
        let page: RunsPage = self
            .client(repo)
            .await?
            .get(route, Some(&[("per_page", per_page.as_str())]))
            .await
            .map_err(|e| self.refused(repo, map_err(e)))?;
        Ok(page.workflow_runs)
    }

    async fn dispatch(
        &self,
        repo: &RepoName,
        workflow: &str,
        git_ref: &str,
        inputs: &Value,
    ) -> Result<(), GitHubError> {
        let inputs = if inputs.is_object() { inputs.clone() } else { Value::Object(Default::default()) };
        self.client(repo)
            .await?
            .actions()
            .create_workflow_dispatch(&repo.owner, &repo.name, workflow, git_ref)
            .inputs(inputs)
            .send()
            .await
            .map_err(|e| self.refused(repo, map_err(e)))
    }

    async fn get_run(&self, repo: &RepoName, run_id: u64) -> Result<WorkflowRun, GitHubError> {
        let route = Route::Run { repo, run_id }.path();
        self.client(repo).await?.get(route, None::<&()>).await.map_err(|e| self.refused(repo, map_err(e)))
    }

    /// Fails fast with `RateLimited` while an earlier rate limit pauses look-ups.
    async fn run_attempt_jobs(&self, repo: &RepoName, run_id: u64, attempt: u64) -> Result<Vec<Job>, GitHubError> {
        self.unless_paused(repo)?;
        let jobs = self.attempt_jobs(repo, run_id, attempt).await;
        self.noted(repo, jobs)
    }

    /// Fails fast with `RateLimited` while an earlier rate limit pauses look-ups.
    async fn job_log(&self, repo: &RepoName, job_id: u64) -> Result<String, GitHubError> {
        self.unless_paused(repo)?;
        let log = self.log(repo, job_id).await;
        self.noted(repo, log)
    }

    async fn rerun_failed_jobs(&self, repo: &RepoName, run_id: u64) -> Result<(), GitHubError> {
        let route = Route::RerunFailedJobs { repo, run_id }.path();
        self.post_empty(repo, route).await
    }

    async fn list_hooks(&self, repo: &RepoName) -> Result<Vec<Hook>, GitHubError> {
        let route = Route::Hooks { repo }.path();
        self.client(repo)
            .await?
            .get(route, Some(&[("per_page", "100")]))
            .await
            .map_err(|e| self.refused(repo, map_err(e)))
    }

    async fn hook_deliveries(&self, repo: &RepoName, hook_id: u64) -> Result<Vec<HookDelivery>, GitHubError> {
        let route = Route::HookDeliveries { repo, hook_id }.path();
        self.client(repo)
            .await?
            .get(route, Some(&[("per_page", "100")]))
            .await
            .map_err(|e| self.refused(repo, map_err(e)))
    }

    async fn redeliver(&self, repo: &RepoName, hook_id: u64, delivery_id: u64) -> Result<(), GitHubError> {
        let route = Route::HookDeliveryAttempts { repo, hook_id, delivery_id }.path();
        self.post_empty(repo, route).await
    }

    async fn completed_runs(&self, repo: &RepoName, since: &str) -> Result<Vec<Value>, GitHubError> {
        let route = Route::Runs { repo }.path();
        let created = format!(">={since}");
        let query = [("status", "completed"), ("created", created.as_str()), ("per_page", "100")];
        let page: RawRunsPage =
            self.client(repo).await?.get(route, Some(&query)).await.map_err(|e| self.refused(repo, map_err(e)))?;
        Ok(page.workflow_runs)
    }

    async fn set_variable(&self, repo: &RepoName, name: &str, value: &str) -> Result<VariableWrite, GitHubError> {
        let body = serde_json::json!({"name": name, "value": value});
        let response = self
            .client(repo)
            .await?
            ._patch(Route::Variable { repo, name }.path(), Some(&body))
            .await
            .map_err(|e| self.refused(repo, map_err(e)))?;
        if response.status().is_success() {
            return Ok(VariableWrite::Updated);
        }
        if response.status() != http::StatusCode::NOT_FOUND {
            return Err(self.refused(repo, status_error!(self, response)));
        }
        let response = self
            .client(repo)
            .await?
            ._post(Route::Variables { repo }.path(), Some(&body))
            .await
            .map_err(|e| self.refused(repo, map_err(e)))?;
        if response.status().is_success() {
            return Ok(VariableWrite::Created);
        }
        Err(self.refused(repo, status_error!(self, response)))
    }

    async fn secrets_public_key(&self, repo: &RepoName) -> Result<SecretsKey, GitHubError> {
        self.client(repo)
            .await?
            .get(Route::SecretsPublicKey { repo }.path(), None::<&()>)
            .await
            .map_err(|e| self.refused(repo, map_err(e)))
    }

    async fn put_sealed_secret(
        &self,
        repo: &RepoName,
        name: &str,
        sealed: &SealedSecret,
    ) -> Result<SecretWrite, GitHubError> {
        let body = serde_json::json!({"encrypted_value": sealed.encrypted_value, "key_id": sealed.key_id});
        let response = self
            .client(repo)
            .await?
            ._put(Route::Secret { repo, name }.path(), Some(&body))
            .await
            .map_err(|e| self.refused(repo, map_err(e)))?;
        match response.status() {
            http::StatusCode::CREATED => Ok(SecretWrite::Created),
            s if s.is_success() => Ok(SecretWrite::Updated),
            _ => Err(self.refused(repo, status_error!(self, response))),
        }
    }
}

impl OctocrabGitHub {
    /// The jobs of one attempt of a run: the request behind [`GitHub::run_attempt_jobs`].
    async fn attempt_jobs(&self, repo: &RepoName, run_id: u64, attempt: u64) -> Result<Vec<Job>, GitHubError> {
        let route = Route::RunAttemptJobs { repo, run_id, attempt: attempt.max(1) }.path();
        let page: JobsPage = self
            .client(repo)
            .await?
            .get(route, Some(&[("per_page", "100")]))
            .await
            .map_err(|e| self.refused(repo, map_err(e)))?;
        Ok(page.jobs)
    }

    /// A job's log text: the requests behind [`GitHub::job_log`].
    async fn log(&self, repo: &RepoName, job_id: u64) -> Result<String, GitHubError> {
        let route = Route::JobLogs { repo, job_id }.path();
        let response = self.client(repo).await?._get(route).await.map_err(|e| self.refused(repo, map_err(e)))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| url::Url::parse(v).ok())
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| GitHubError::Unreachable("log redirect without a usable Location".into()))?;
            let answer = tokio::time::timeout(self.read_timeout, self.plain().get(location).send())
                .await
                .map_err(|_| GitHubError::Timeout)?
                .map_err(|e| GitHubError::Unreachable(e.without_url().to_string()))?;
            if !answer.status().is_success() {
                return Err(GitHubError::Status {
                    status: answer.status().as_u16(),
                    message: "the log download failed".into(),
                });
            }
            let bytes = tokio::time::timeout(self.read_timeout, answer.bytes())
                .await
                .map_err(|_| GitHubError::Timeout)?
                .map_err(|e| GitHubError::Unreachable(e.without_url().to_string()))?;
            return Ok(log_text(&bytes));
        }
        let headers = response.headers().clone();
        let body = self.client(repo).await?.body_to_string(response).await.map_err(map_err)?;
        if !status.is_success() {
            return Err(GitHubError::from_response(status, &headers, &body, valine_domain::clock::now_secs()));
        }
        Ok(log_text(body.as_bytes()))
    }

    /// A `POST` without a body whose answer is only its status (204, 201 or 202 when done).
    async fn post_empty(&self, repo: &RepoName, route: String) -> Result<(), GitHubError> {
        let response =
            self.client(repo).await?._post(route, None::<&()>).await.map_err(|e| self.refused(repo, map_err(e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let headers = response.headers().clone();
        let body: String = self.client(repo).await?.body_to_string(response).await.unwrap_or_default();
        Err(self.refused(repo, GitHubError::from_response(status, &headers, &body, valine_domain::clock::now_secs())))
    }
}

/// The tail of a log as text: at most [`MAX_LOG_BYTES`] from its end, invalid UTF-8 replaced.
fn log_text(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(MAX_LOG_BYTES);
    String::from_utf8_lossy(bytes.get(start..).unwrap_or_default()).into_owned()
}

/// `DRY_RUN`: nothing is called; a dispatch is logged as it would be sent.
#[derive(Debug, Default, Clone)]
pub struct DryRunGitHub;

#[async_trait]
impl GitHub for DryRunGitHub {
    async fn list_workflows(&self, _repo: &RepoName) -> Result<Vec<Workflow>, GitHubError> {
        Err(GitHubError::DryRun)
    }
    async fn list_runs(&self, _: &RepoName, _: &str, _: u8) -> Result<Vec<WorkflowRun>, GitHubError> {
        Err(GitHubError::DryRun)
    }
    async fn dispatch(
        &self,
        repo: &RepoName,
        workflow: &str,
        git_ref: &str,
        inputs: &Value,
    ) -> Result<(), GitHubError> {
        tracing::info!(repo = %repo, workflow, git_ref, inputs = %inputs, "DRY_RUN: would dispatch a workflow");
        Ok(())
    }
    async fn get_run(&self, _: &RepoName, _: u64) -> Result<WorkflowRun, GitHubError> {
        Err(GitHubError::DryRun)
    }
    async fn run_attempt_jobs(&self, _: &RepoName, _: u64, _: u64) -> Result<Vec<Job>, GitHubError> {
        Err(GitHubError::DryRun)
    }
    async fn job_log(&self, _: &RepoName, _: u64) -> Result<String, GitHubError> {
        Err(GitHubError::DryRun)
    }
    async fn rerun_failed_jobs(&self, repo: &RepoName, run_id: u64) -> Result<(), GitHubError> {
        tracing::info!(repo = %repo, run_id, "DRY_RUN: would re-run the failed jobs");
        Ok(())
    }
    async fn set_variable(&self, repo: &RepoName, name: &str, _value: &str) -> Result<VariableWrite, GitHubError> {
        tracing::info!(repo = %repo, variable = name, "DRY_RUN: would write a repository variable");
        Ok(VariableWrite::DryRun)
    }
    /// A throwaway key nobody keeps: a dry run seals as it would, and writes nothing.
    async fn secrets_public_key(&self, _repo: &RepoName) -> Result<SecretsKey, GitHubError> {
        use base64::Engine as _;
        let throwaway = crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng);
        let key = base64::engine::general_purpose::STANDARD.encode(throwaway.public_key().as_bytes());
        Ok(SecretsKey { key_id: "dry-run".into(), key })
    }
    async fn put_sealed_secret(
        &self,
        repo: &RepoName,
        name: &str,
        _: &SealedSecret,
    ) -> Result<SecretWrite, GitHubError> {
        tracing::info!(repo = %repo, secret = name, "DRY_RUN: would write a repository secret");
        Ok(SecretWrite::DryRun)
    }
}

/// The adapter the configuration asks for; `None` when there is no token and no dry run.
pub fn from_config(config: &Config, read_timeout: Duration) -> Result<Option<Arc<dyn GitHub>>, GitHubError> {
    if config.dry_run {
        return Ok(Some(Arc::new(DryRunGitHub)));
    }
    if let (Some(app_id), Some(key)) = (config.github_app_id, &config.github_app_private_key) {
        let app = AppAuth::new(app_id, key.expose(), config.github_api_base.as_ref(), read_timeout)?;
        return Ok(Some(Arc::new(OctocrabGitHub::with_app(app, config.github_api_base.as_ref(), read_timeout)?)));
    }
    match &config.github_token {
        Some(token) => {
            Ok(Some(Arc::new(OctocrabGitHub::new(token.expose(), config.github_api_base.as_ref(), read_timeout)?)))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wiremock::matchers::{body_json, header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn repo() -> RepoName {
        RepoName { owner: "acme".into(), name: "widget".into() }
    }

    async fn setup(read_timeout: Duration) -> (MockServer, OctocrabGitHub) {
        let server = MockServer::start().await;
        let base = url::Url::parse(&server.uri()).unwrap();
        let gh = OctocrabGitHub::new("ghp_test", Some(&base), read_timeout).unwrap();
        crate::testing::fail_on_unexpected(&server).await;
        (server, gh)
    }

    #[tokio::test]
    async fn lists_workflows_and_runs() {
        let (server, gh) = setup(Duration::from_secs(5)).await;
        Mock::given(method("GET"))
            .and(path("/repos/acme/widget/actions/workflows"))
            .and(header("authorization", "Bearer ghp_test"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total_count": 1, "workflows": [{"id": 7, "name": "CI", "path": ".github/workflows/ci.yml", "state": "active", "extra": true}]})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/repos/acme/widget/actions/workflows/7/runs"))
            .and(query_param("per_page", "3"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total_count": 1, "workflow_runs": [{"id": 1, "name": "CI", "head_branch": "main", "head_sha": "abc", "status": "completed", "conclusion": "success", "html_url": "https://github.com/acme/widget/actions/runs/1", "created_at": "2026-01-02T12:00:00Z", "run_started_at": "2026-01-02T12:00:10Z", "updated_at": "2026-01-02T12:03:10Z", "run_number": 4, "workflow_id": 7, "event": "push"}]})))
            .expect(1)
            .mount(&server)
            .await;
        let workflows = gh.list_workflows(&repo()).await.unwrap();
        assert_eq!(workflows[0].file_name(), "ci.yml");
        let runs = gh.list_runs(&repo(), "7", 3).await.unwrap();
        assert_eq!(runs[0].conclusion.as_deref(), Some("success"));
        assert_eq!(runs[0].duration_secs(), Some(180));
    }

    #[tokio::test]
    async fn dispatch_sends_ref_and_inputs() {
        let (server, gh) = setup(Duration::from_secs(5)).await;
        Mock::given(method("POST"))
            .and(path("/repos/acme/widget/actions/workflows/diagnose.yml/dispatches"))
            .and(body_json(json!({"ref": "main", "inputs": {"correlation_id": "c1", "requester": "42"}})))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        gh.dispatch(&repo(), "diagnose.yml", "main", &json!({"correlation_id": "c1", "requester": "42"}))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn errors_are_typed() {
        let (server, gh) = setup(Duration::from_millis(300)).await;
        Mock::given(method("POST"))
            .and(path("/repos/acme/widget/actions/workflows/missing.yml/dispatches"))
            .respond_with(
                ResponseTemplate::new(404)
                    .set_body_json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com"})),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/repos/acme/widget/actions/runs/5"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)).set_body_json(json!({"id": 5})))
            .mount(&server)
            .await;
        let err = gh.dispatch(&repo(), "missing.yml", "main", &json!({})).await.unwrap_err();
        assert_eq!(err, GitHubError::Status { status: 404, message: "Not Found".into() });
        assert_eq!(gh.get_run(&repo(), 5).await.unwrap_err(), GitHubError::Timeout);
    }

    #[tokio::test]
    async fn jobs_of_a_run_attempt_and_the_first_failed_step() {
        let (server, gh) = setup(Duration::from_secs(5)).await;
        Mock::given(method("GET"))
            .and(path("/repos/acme/widget/actions/runs/30433642/attempts/2/jobs"))
            .and(query_param("per_page", "100"))
            .and(header("authorization", "Bearer ghp_test"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total_count": 2, "jobs": [
                {"id": 1, "name": "lint", "status": "completed", "conclusion": "success", "steps": []},
                {"id": 399444496, "name": "test", "status": "completed", "conclusion": "failure",
                 "html_url": "https://github.com/acme/widget/actions/runs/30433642/job/399444496",
                 "steps": [
                    {"name": "Set up job", "status": "completed", "conclusion": "success", "number": 1},
                    {"name": "cargo test", "status": "completed", "conclusion": "failure", "number": 2},
                    {"name": "Post", "status": "completed", "conclusion": "skipped", "number": 3}
                 ]}
            ]})))
            .expect(1)
            .mount(&server)
            .await;
        let jobs = gh.run_attempt_jobs(&repo(), 30433642, 2).await.unwrap();
        let job = first_failed_job(&jobs).unwrap();
        assert_eq!((job.id, job.name.as_str()), (399444496, "test"));
        assert_eq!(job.failed_step().unwrap().name, "cargo test");
    }

    #[tokio::test]
    async fn a_job_log_follows_its_redirect_without_the_token() {
        let (server, gh) = setup(Duration::from_secs(5)).await;
        let blob = format!("{}/blob/logs/399444496.txt?sig=abc", server.uri());
        Mock::given(method("GET"))
            .and(path("/repos/acme/widget/actions/jobs/399444496/logs"))
            .and(header("authorization", "Bearer ghp_test"))
            .respond_with(ResponseTemplate::new(302).insert_header("location", blob.as_str()))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/blob/logs/399444496.txt"))
            .and(query_param("sig", "abc"))
            .respond_with(ResponseTemplate::new(200).set_body_string("line 1\nerror: test failed\n"))
            .expect(1)
            .mount(&server)
            .await;
        let log = gh.job_log(&repo(), 399444496).await.unwrap();
        assert_eq!(log, "line 1\nerror: test failed\n");
        let requests = server.received_requests().await.unwrap();
        let blob_request = requests.iter().find(|r| r.url.path().starts_with("/blob/")).unwrap();
        assert!(blob_request.headers.get("authorization").is_none(), "the token must not follow the redirect");
    }

    #[tokio::test]
    async fn a_missing_log_is_a_typed_error() {
        let (server, gh) = setup(Duration::from_secs(5)).await;
        Mock::given(method("GET"))
            .and(path("/repos/acme/widget/actions/jobs/5/logs"))
            .respond_with(ResponseTemplate::new(410).set_body_json(json!({"message": "Gone"})))
            .expect(1)
            .mount(&server)
            .await;
        assert_eq!(
            gh.job_log(&repo(), 5).await.unwrap_err(),
            GitHubError::Status { status: 410, message: "Gone".into() }
        );
    }

    #[tokio::test]
    async fn rerun_failed_jobs_posts_once() {
        let (server, gh) = setup(Duration::from_secs(5)).await;
        Mock::given(method("POST"))
            .and(path("/repos/acme/widget/actions/runs/30433642/rerun-failed-jobs"))
            .and(header("authorization", "Bearer ghp_test"))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/repos/acme/widget/actions/runs/1/rerun-failed-jobs"))
            .respond_with(
                ResponseTemplate::new(403).set_body_json(json!({"message": "This workflow run is not re-runnable"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        gh.rerun_failed_jobs(&repo(), 30433642).await.unwrap();
        assert_eq!(
            gh.rerun_failed_jobs(&repo(), 1).await.unwrap_err(),
            GitHubError::Status { status: 403, message: "This workflow run is not re-runnable".into() }
        );
    }

    #[tokio::test]
    async fn hooks_deliveries_redelivery_and_completed_runs() {
        let (server, gh) = setup(Duration::from_secs(2)).await;
        Mock::given(method("GET"))
            .and(path("/repos/acme/widget/hooks"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([
                {"id": 7, "config": {"url": "https://x.example/github/webhook", "content_type": "json"}, "events": ["workflow_run"]}
            ])))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/repos/acme/widget/hooks/7/deliveries"))
            .and(query_param("per_page", "100"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([
                {"id": 11, "guid": "g-1", "delivered_at": "2026-11-29T10:00:00Z", "redelivery": false,
                 "duration": 0.3, "status": "Internal Server Error", "status_code": 500, "event": "workflow_run",
                 "action": "completed", "installation_id": null, "repository_id": 1}
            ])))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/repos/acme/widget/hooks/7/deliveries/11/attempts"))
            .respond_with(ResponseTemplate::new(202).set_body_json(json!({})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/repos/acme/widget/actions/runs"))
            .and(query_param("status", "completed"))
            .and(query_param("created", ">=2026-11-29T09:00:00Z"))
            .and(query_param("per_page", "100"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "total_count": 1, "workflow_runs": [{"id": 5, "run_number": 9, "conclusion": "failure"}]
            })))
            .expect(1)
            .mount(&server)
            .await;

        let hooks = gh.list_hooks(&repo()).await.unwrap();
        assert_eq!(hooks[0].id, 7);
        assert_eq!(hooks[0].config.url.as_deref(), Some("https://x.example/github/webhook"));
        let deliveries = gh.hook_deliveries(&repo(), 7).await.unwrap();
        assert_eq!(deliveries[0].guid, "g-1");
        assert_eq!(deliveries[0].status_code, 500);
        gh.redeliver(&repo(), 7, 11).await.unwrap();
        let runs = gh.completed_runs(&repo(), "2026-11-29T09:00:00Z").await.unwrap();
        assert_eq!(runs[0]["run_number"], 9);
    }

    #[tokio::test]
    async fn a_variable_is_patched_and_created_when_missing() {
        let (server, gh) = setup(Duration::from_secs(5)).await;
        Mock::given(method("PATCH"))
            .and(path("/repos/acme/widget/actions/variables/FRONTEND_BASE_URL"))
            .and(header("authorization", "Bearer ghp_test"))
            .and(body_json(json!({"name": "FRONTEND_BASE_URL", "value": "https://app.example.com/"})))
            .respond_with(ResponseTemplate::new(204))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        assert_eq!(
            gh.set_variable(&repo(), "FRONTEND_BASE_URL", "https://app.example.com/").await.unwrap(),
            VariableWrite::Updated
        );
        Mock::given(method("PATCH"))
            .and(path("/repos/acme/widget/actions/variables/FRONTEND_BASE_URL"))
            .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/repos/acme/widget/actions/variables"))
            .and(body_json(json!({"name": "FRONTEND_BASE_URL", "value": "https://app.example.com/"})))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({})))
            .expect(1)
            .mount(&server)
            .await;
        assert_eq!(
            gh.set_variable(&repo(), "FRONTEND_BASE_URL", "https://app.example.com/").await.unwrap(),
            VariableWrite::Created
        );
    }

    #[tokio::test]
    async fn a_variable_write_refused_by_github_is_a_typed_error() {
        let (server, gh) = setup(Duration::from_secs(5)).await;
        Mock::given(method("PATCH"))
            .and(path("/repos/acme/widget/actions/variables/X"))
            .respond_with(ResponseTemplate::new(403).set_body_json(json!({"message": "Resource not accessible"})))
            .expect(1)
            .mount(&server)
            .await;
        assert_eq!(
            gh.set_variable(&repo(), "X", "v").await.unwrap_err(),
            GitHubError::Status { status: 403, message: "Resource not accessible".into() }
        );
    }

    #[tokio::test]
    async fn a_secret_is_sealed_to_the_repository_key() {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let (server, gh) = setup(Duration::from_secs(5)).await;
        let private = crypto_box::SecretKey::from([7u8; 32]);
        let public = b64.encode(private.public_key().as_bytes());
        Mock::given(method("GET"))
            .and(path("/repos/acme/widget/actions/secrets/public-key"))
            .and(header("authorization", "Bearer ghp_test"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"key_id": "568250167242549743", "key": public})),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("PUT"))
            .and(path("/repos/acme/widget/actions/secrets/VITE_API_BASE"))
            .respond_with(ResponseTemplate::new(201))
            .expect(1)
            .mount(&server)
            .await;
        let url = "https://api.example.com/v1";
        let written = gh.set_secret(&repo(), "VITE_API_BASE", &Secret::new(url)).await.unwrap();
        assert_eq!(written, SecretWrite::Created);
        let put = server.received_requests().await.unwrap().into_iter().find(|r| r.method.as_str() == "PUT").unwrap();
        let body: Value = serde_json::from_slice(&put.body).unwrap();
        assert_eq!(body["key_id"], "568250167242549743");
        assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
        let sealed = b64.decode(body["encrypted_value"].as_str().unwrap()).unwrap();
        assert_eq!(private.unseal(&sealed).unwrap(), url.as_bytes());
        assert!(!String::from_utf8_lossy(&put.body).contains("api.example.com"));
    }

    fn paths(requests: &[wiremock::Request]) -> Vec<String> {
        requests.iter().map(|r| format!("{} {}", r.method, r.url.path())).collect()
    }

    #[tokio::test]
    async fn a_primary_limit_pauses_job_and_log_look_ups_without_requests() {
        let (server, gh) = setup(Duration::from_secs(5)).await;
        let reset = valine_domain::clock::now_secs() + 120;
        Mock::given(method("GET"))
            .and(path("/repos/acme/widget/actions/runs/5/attempts/1/jobs"))
            .respond_with(
                ResponseTemplate::new(403)
                    .insert_header("x-ratelimit-limit", "5000")
                    .insert_header("x-ratelimit-remaining", "0")
                    .insert_header("x-ratelimit-reset", reset.to_string().as_str())
                    .set_body_json(json!({"message": "API rate limit exceeded for installation ID 1."})),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/repos/acme/widget/actions/runs/5"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 5})))
            .expect(1)
            .mount(&server)
            .await;
        let err = gh.run_attempt_jobs(&repo(), 5, 1).await.unwrap_err();
        let GitHubError::RateLimited { retry_after } = err else { panic!("{err:?}") };
        assert!((Duration::from_secs(118)..=Duration::from_secs(120)).contains(&retry_after), "{retry_after:?}");
        assert!(gh.paused_for(&repo()).is_some());
        // Within the pause the look-ups fail fast, without a request.
        for _ in 0..2 {
            assert!(matches!(gh.run_attempt_jobs(&repo(), 5, 1).await, Err(GitHubError::RateLimited { .. })));
            let err = gh.job_log(&repo(), 9).await.unwrap_err();
            assert!(matches!(err, GitHubError::RateLimited { retry_after } if retry_after > Duration::from_secs(100)));
        }
        // Other calls are the caller's to decide: they still go out.
        assert_eq!(gh.get_run(&repo(), 5).await.unwrap().id, 5);
        assert_eq!(
            paths(&server.received_requests().await.unwrap()),
            ["GET /repos/acme/widget/actions/runs/5/attempts/1/jobs", "GET /repos/acme/widget/actions/runs/5"]
        );
        // Clones share the pause: it is the container's.
        assert!(gh.clone().job_log(&repo(), 9).await.is_err());
        assert_eq!(server.received_requests().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_pause_ends_and_look_ups_resume() {
        let (server, gh) = setup(Duration::from_secs(5)).await;
        Mock::given(method("GET"))
            .and(path("/repos/acme/widget/actions/jobs/9/logs"))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1").set_body_json(json!({
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
            })))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/repos/acme/widget/actions/jobs/9/logs"))
            .respond_with(ResponseTemplate::new(200).set_body_string("the log"))
            .expect(1)
            .mount(&server)
            .await;
        assert_eq!(
            gh.job_log(&repo(), 9).await.unwrap_err(),
            GitHubError::RateLimited { retry_after: Duration::from_secs(1) }
        );
        assert!(gh.job_log(&repo(), 9).await.is_err());
        assert_eq!(server.received_requests().await.unwrap().len(), 1, "a request during the pause");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(gh.job_log(&repo(), 9).await.unwrap(), "the log");
        assert_eq!(gh.paused_for(&repo()), None);
    }

    #[tokio::test]
    async fn secondary_limits_are_rate_limited_on_every_path() {
        let (server, gh) = setup(Duration::from_secs(5)).await;
        // octocrab's typed calls
        Mock::given(method("POST"))
            .and(path("/repos/acme/widget/actions/workflows/ci.yml/dispatches"))
            .respond_with(ResponseTemplate::new(403).set_body_json(json!({
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
            })))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/repos/acme/widget/actions/workflows"))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "30"))
            .expect(1)
            .mount(&server)
            .await;
        // a bodiless POST
        Mock::given(method("POST"))
            .and(path("/repos/acme/widget/actions/runs/1/rerun-failed-jobs"))
            .respond_with(
                ResponseTemplate::new(403).insert_header("retry-after", "5").set_body_json(json!({"message": "x"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        // a raw PATCH read by status
        Mock::given(method("PATCH"))
            .and(path("/repos/acme/widget/actions/variables/X"))
            .respond_with(ResponseTemplate::new(429).set_body_json(json!({"message": "Too Many Requests"})))
            .expect(1)
            .mount(&server)
            .await;
        let limited = |secs| GitHubError::RateLimited { retry_after: Duration::from_secs(secs) };
        assert_eq!(gh.dispatch(&repo(), "ci.yml", "main", &json!({})).await.unwrap_err(), limited(60));
        assert_eq!(gh.list_workflows(&repo()).await.unwrap_err(), limited(30));
        assert_eq!(gh.rerun_failed_jobs(&repo(), 1).await.unwrap_err(), limited(5));
        assert_eq!(gh.set_variable(&repo(), "X", "v").await.unwrap_err(), limited(60));
        // None of these are look-ups: they leave the look-ups unpaused.
        assert_eq!(gh.paused_for(&repo()), None);
        assert_eq!(server.received_requests().await.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn with_the_app_a_limit_pauses_only_the_owners_installation() {
        let server = MockServer::start().await;
        let base = url::Url::parse(&server.uri()).unwrap();
        let pem = include_str!("../tests/fixtures/github-app-test-key-pkcs1.pem");
        let app = AppAuth::new(1, pem, Some(&base), Duration::from_secs(5)).unwrap();
        let gh = OctocrabGitHub::with_app(app, Some(&base), Duration::from_secs(5)).unwrap();
        crate::testing::fail_on_unexpected(&server).await;
        Mock::given(method("GET"))
            .and(path("/repos/acme/widget/installation"))
            .respond_with(
                ResponseTemplate::new(403)
                    .insert_header("x-ratelimit-remaining", "0")
                    .insert_header("x-ratelimit-reset", (valine_domain::clock::now_secs() + 600).to_string().as_str())
                    .set_body_json(json!({"message": "API rate limit exceeded"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/repos/other/widget/installation"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 77})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/app/installations/77/access_tokens"))
            .respond_with(
                ResponseTemplate::new(201)
                    .set_body_json(json!({"token": "ghs_other", "expires_at": "2099-01-01T00:00:00Z"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/repos/other/widget/actions/runs/5/attempts/1/jobs"))
            .and(header("authorization", "Bearer ghs_other"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total_count": 0, "jobs": []})))
            .expect(1)
            .mount(&server)
            .await;
        let err = gh.run_attempt_jobs(&repo(), 5, 1).await.unwrap_err();
        assert!(matches!(err, GitHubError::RateLimited { retry_after } if retry_after > Duration::from_secs(590)));
        assert!(matches!(gh.job_log(&repo(), 9).await, Err(GitHubError::RateLimited { .. })));
        let other = RepoName { owner: "other".into(), name: "widget".into() };
        assert_eq!(gh.run_attempt_jobs(&other, 5, 1).await.unwrap(), vec![]);
        assert_eq!(
            paths(&server.received_requests().await.unwrap()),
            [
                "GET /repos/acme/widget/installation",
                "GET /repos/other/widget/installation",
                "POST /app/installations/77/access_tokens",
                "GET /repos/other/widget/actions/runs/5/attempts/1/jobs",
            ]
        );
    }

    #[test]
    fn a_malformed_public_key_is_refused() {
        assert!(seal_secret("not base64!", b"x").is_err());
        assert!(seal_secret("AAAA", b"x").is_err());
    }
}
