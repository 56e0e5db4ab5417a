//! The `GitHub` port and its adapters: octocrab against the REST API (base URI overridable),
//! and a dry-run adapter. Run and workflow models are our own and lenient: a field GitHub adds
//! or leaves out never fails a read.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use valine_domain::config::{Config, Secret};
use valine_domain::repo::RepoName;

use crate::github_app::AppAuth;
use crate::github_error::GitHubError;
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
    /// Writes a repository Actions secret: the repository's public key, `value` sealed to it
    /// (libsodium sealed box), then `PUT …/actions/secrets/{name}` with the key id.
    async fn set_secret(&self, _repo: &RepoName, _name: &str, _value: &Secret) -> Result<SecretWrite, GitHubError> {
        Err(GitHubError::Unsupported("writing secrets"))
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

/// `GET …/actions/secrets/public-key`.
#[derive(Debug, Deserialize)]
struct SecretsPublicKey {
    key_id: String,
    /// Base64 of the repository's X25519 public key.
    key: String,
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
    /// GitHub App authentication instead of the token: installation tokens per owner.
    app: Option<Arc<AppAuth>>,
    /// A client per owner, on the installation token it was built with.
    app_clients: Arc<std::sync::Mutex<std::collections::HashMap<String, (String, octocrab::Octocrab)>>>,
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

    /// The client for a call on `repo`: the token's, or one on the owner's installation token
    /// (renewed five minutes before it expires).
    async fn client(&self, repo: &RepoName) -> Result<octocrab::Octocrab, GitHubError> {
        let Some(app) = &self.app else { return self.crab().cloned() };
        let token = app.token_for(repo).await?;
        let owner = repo.owner.to_ascii_lowercase();
        let mut clients = self.app_clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((t, c)) = clients.get(&owner)
            && *t == token.token
        {
            return Ok(c.clone());
        }
        let client = self.build(&token.token)?;
        clients.insert(owner, (token.token, client.clone()));
        Ok(client)
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
}

fn map_err(e: octocrab::Error) -> GitHubError {
    if let octocrab::Error::GitHub { source, .. } = &e {
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

/// A non-success answer as a typed error, with GitHub's `message` when it sent one. (A macro:
/// octocrab's raw response body type is not nameable from here.)
macro_rules! status_error {
    ($gh:expr, $response:expr) => {{
        let response = $response;
        let status = response.status();
        match $gh.crab() {
            Ok(crab) => {
                let body: String = crab.body_to_string(response).await.unwrap_or_default();
                GitHubError::from_answer(status, &body)
            }
            Err(e) => e,
        }
    }};
}

#[async_trait]
impl GitHub for OctocrabGitHub {
    async fn list_workflows(&self, repo: &RepoName) -> Result<Vec<Workflow>, GitHubError> {
        let route = Route::Workflows { repo }.path();
        let page: WorkflowsPage =
            self.client(repo).await?.get(route, Some(&[("per_page", "100")])).await.map_err(map_err)?;
        Ok(page.workflows)
    }

    async fn list_runs(&self, repo: &RepoName, workflow: &str, per_page: u8) -> Result<Vec<WorkflowRun>, GitHubError> {
        let route = Route::WorkflowRuns { repo, workflow }.path();
        let per_page = per_page.clamp(1, 100).to_string();
        let page: RunsPage =
            self.client(repo).await?.get(route, Some(&[("per_page", per_page.as_str())])).await.map_err(map_err)?;
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
            .map_err(map_err)
    }

    async fn get_run(&self, repo: &RepoName, run_id: u64) -> Result<WorkflowRun, GitHubError> {
        let route = Route::Run { repo, run_id }.path();
        self.client(repo).await?.get(route, None::<&()>).await.map_err(map_err)
    }

    async fn run_attempt_jobs(&self, repo: &RepoName, run_id: u64, attempt: u64) -> Result<Vec<Job>, GitHubError> {
        let route = Route::RunAttemptJobs { repo, run_id, attempt: attempt.max(1) }.path();
        let page: JobsPage =
            self.client(repo).await?.get(route, Some(&[("per_page", "100")])).await.map_err(map_err)?;
        Ok(page.jobs)
    }

    async fn job_log(&self, repo: &RepoName, job_id: u64) -> Result<String, GitHubError> {
        let route = Route::JobLogs { repo, job_id }.path();
        let response = self.client(repo).await?._get(route).await.map_err(map_err)?;
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
        let body = self.client(repo).await?.body_to_string(response).await.map_err(map_err)?;
        if !status.is_success() {
            return Err(GitHubError::from_answer(status, &body));
        }
        Ok(log_text(body.as_bytes()))
    }

    async fn rerun_failed_jobs(&self, repo: &RepoName, run_id: u64) -> Result<(), GitHubError> {
        let route = Route::RerunFailedJobs { repo, run_id }.path();
        self.post_empty(repo, route).await
    }

    async fn list_hooks(&self, repo: &RepoName) -> Result<Vec<Hook>, GitHubError> {
        let route = Route::Hooks { repo }.path();
        self.client(repo).await?.get(route, Some(&[("per_page", "100")])).await.map_err(map_err)
    }

    async fn hook_deliveries(&self, repo: &RepoName, hook_id: u64) -> Result<Vec<HookDelivery>, GitHubError> {
        let route = Route::HookDeliveries { repo, hook_id }.path();
        self.client(repo).await?.get(route, Some(&[("per_page", "100")])).await.map_err(map_err)
    }

    async fn redeliver(&self, repo: &RepoName, hook_id: u64, delivery_id: u64) -> Result<(), GitHubError> {
        let route = Route::HookDeliveryAttempts { repo, hook_id, delivery_id }.path();
        self.post_empty(repo, route).await
    }

    async fn completed_runs(&self, repo: &RepoName, since: &str) -> Result<Vec<Value>, GitHubError> {
        let route = Route::Runs { repo }.path();
        let created = format!(">={since}");
        let query = [("status", "completed"), ("created", created.as_str()), ("per_page", "100")];
        let page: RawRunsPage = self.client(repo).await?.get(route, Some(&query)).await.map_err(map_err)?;
        Ok(page.workflow_runs)
    }

    async fn set_variable(&self, repo: &RepoName, name: &str, value: &str) -> Result<VariableWrite, GitHubError> {
        let body = serde_json::json!({"name": name, "value": value});
        let response = self
            .client(repo)
            .await?
            ._patch(Route::Variable { repo, name }.path(), Some(&body))
            .await
            .map_err(map_err)?;
        if response.status().is_success() {
            return Ok(VariableWrite::Updated);
        }
        if response.status() != http::StatusCode::NOT_FOUND {
            return Err(status_error!(self, response));
        }
        let response =
            self.client(repo).await?._post(Route::Variables { repo }.path(), Some(&body)).await.map_err(map_err)?;
        if response.status().is_success() {
            return Ok(VariableWrite::Created);
        }
        Err(status_error!(self, response))
    }

    async fn set_secret(&self, repo: &RepoName, name: &str, value: &Secret) -> Result<SecretWrite, GitHubError> {
        let key: SecretsPublicKey = self
            .client(repo)
            .await?
            .get(Route::SecretsPublicKey { repo }.path(), None::<&()>)
            .await
            .map_err(map_err)?;
        let encrypted_value = seal_secret(&key.key, value.expose().as_bytes())?;
        let body = serde_json::json!({"encrypted_value": encrypted_value, "key_id": key.key_id});
        let response =
            self.client(repo).await?._put(Route::Secret { repo, name }.path(), Some(&body)).await.map_err(map_err)?;
        match response.status() {
            http::StatusCode::CREATED => Ok(SecretWrite::Created),
            s if s.is_success() => Ok(SecretWrite::Updated),
            _ => Err(status_error!(self, response)),
        }
    }
}

impl OctocrabGitHub {
    /// A `POST` without a body whose answer is only its status (204, 201 or 202 when done).
    async fn post_empty(&self, repo: &RepoName, route: String) -> Result<(), GitHubError> {
        let response = self.client(repo).await?._post(route, None::<&()>).await.map_err(map_err)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body: String = self.client(repo).await?.body_to_string(response).await.unwrap_or_default();
        Err(GitHubError::from_answer(status, &body))
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
    async fn set_secret(&self, repo: &RepoName, name: &str, _value: &Secret) -> Result<SecretWrite, GitHubError> {
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

    #[test]
    fn a_malformed_public_key_is_refused() {
        assert!(seal_secret("not base64!", b"x").is_err());
        assert!(seal_secret("AAAA", b"x").is_err());
    }
}
