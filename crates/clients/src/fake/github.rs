//! A GitHub with one demo repository: plausible workflows and runs for `/status`, jobs and logs
//! for incidents, and runs that move by themselves. Whatever the bot asks of it (dispatches,
//! re-runs, and any write added later through [`FakeGitHub::received`]) shows on the [`Feed`].
//!
//! A dispatched or re-run run goes queued → in progress → completed, each step a `workflow_run`
//! delivery handed to [`Deliveries`] (in `valinectl serve`: signed and POSTed to its own
//! `/github/webhook`, exactly as GitHub would). Dispatch accepts any workflow file, so commands
//! that dispatch workflows of their own need nothing here.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use valine_domain::clock::{now_secs, rfc3339_millis};
use valine_domain::repo::RepoName;

use super::feed::Feed;
use crate::github_api::{
    Actor, GitHub, Job, JobStep, SealedSecret, SecretWrite, SecretsKey, VariableWrite, Workflow, WorkflowRun,
};
use crate::github_error::GitHubError;

/// Where the fake's deliveries go.
#[async_trait]
pub trait Deliveries: Send + Sync {
    async fn deliver(&self, event: &str, payload: Value);
}

/// The steps of the playground's GitHub panel. Each builds one delivery (and keeps the run it
/// reports, so `/status` and "Re-run failed jobs" know it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// A new run of CI on `main` fails (an older one is left running).
    Fails,
    /// The next run fails too.
    FailsAgain,
    /// The run left running passes, after the failures: older, so it resolves nothing.
    OlderPassesLate,
    /// A newer run passes: the incident resolves.
    NewerPasses,
    /// The failing run passes on a re-run of itself (attempt 2): a flake.
    PassesOnRerun,
    /// The nightly run fails with the demo's known issue (a DNS timeout linked to #42): its card
    /// says so and pings no one.
    KnownIssueFails,
    /// A deployment to production fails.
    DeploymentFails,
    /// The next deployment to production succeeds.
    DeploymentSucceeds,
}

impl Scenario {
    pub const ALL: [Scenario; 8] = [
        Scenario::Fails,
        Scenario::FailsAgain,
        Scenario::OlderPassesLate,
        Scenario::NewerPasses,
        Scenario::PassesOnRerun,
        Scenario::KnownIssueFails,
        Scenario::DeploymentFails,
        Scenario::DeploymentSucceeds,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::Fails => "fails",
            Self::FailsAgain => "fails-again",
            Self::OlderPassesLate => "older-passes-late",
            Self::NewerPasses => "newer-passes",
            Self::PassesOnRerun => "passes-on-rerun",
            Self::KnownIssueFails => "known-issue-fails",
            Self::DeploymentFails => "deployment-fails",
            Self::DeploymentSucceeds => "deployment-succeeds",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Fails => "A workflow fails",
            Self::FailsAgain => "It fails again",
            Self::OlderPassesLate => "An older run passes late",
            Self::NewerPasses => "A newer run passes",
            Self::PassesOnRerun => "It passes on a re-run (a flake)",
            Self::KnownIssueFails => "Nightly fails with a known issue (#42)",
            Self::DeploymentFails => "A deployment fails",
            Self::DeploymentSucceeds => "A deployment succeeds",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// A demo run: workflow, number, branch, event, conclusion, start, seconds taken.
type SeedRun = (u64, u64, &'static str, &'static str, Option<&'static str>, u64, u64);

#[derive(Debug, Clone)]
struct Run {
    run: WorkflowRun,
    path: String,
    attempt: u64,
    commit_message: String,
    /// It failed with the demo's known issue (its log is the DNS timeout).
    known_issue: bool,
}

#[derive(Debug, Default)]
struct State {
    workflows: Vec<Workflow>,
    runs: Vec<Run>,
    next_run_id: u64,
    next_deployment: u64,
    /// The scenario's run left running by `Fails`, for `OlderPassesLate`.
    older_running: Option<u64>,
    /// The newest scenario failure's number.
    last_failure: Option<u64>,
    /// Names of the repository variables and secrets written, to answer created or updated.
    written: std::collections::HashSet<String>,
}

struct Inner {
    feed: Arc<Feed>,
    repo: RepoName,
    step: Duration,
    deliveries: OnceLock<Arc<dyn Deliveries>>,
    state: Mutex<State>,
    /// The repository's key pair for Actions secrets: what is sealed to it can be opened here,
    /// to show a written secret's length.
    secrets_key: crypto_box::SecretKey,
}

#[derive(Clone)]
pub struct FakeGitHub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FakeGitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGitHub").field("repo", &self.inner.repo.to_string()).finish_non_exhaustive()
    }
}

const SHAS: [&str; 6] = [
    "4f1c2a9e7b3d5c8a1e0f9b2d6c4a8e1f3b5d7c9a",
    "9b8e7d6c5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d",
    "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b",
    "c0ffee00d15ea5e5badc0de5eed5a1ad5000b1e5",
    "7e57ab1e5ca1ab1ec0ded0c5b0a710ad0dd5ba11",
    "de7ec7ab1e5e1ec7ab1ec0ffeeb0a7c4a7d0ff1e",
];
const MESSAGES: [&str; 6] = [
    "checkout: apply discount codes before tax",
    "deps: bump serde to 1.0.229",
    "cart: keep items when the session renews",
    "ci: cache the cargo registry",
    "search: rank exact matches first",
    "payments: retry declined webhooks once",
];
const ACTORS: [&str; 3] = ["mona", "hubot", "octocat"];

fn ts(secs: u64) -> String {
    let s = rfc3339_millis(secs * 1000);
    // GitHub writes whole seconds.
    format!("{}Z", s.split('.').next().unwrap_or(&s))
}

fn title_case(stem: &str) -> String {
    stem.split(['-', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn check_repo(&self, repo: &RepoName) -> Result<(), GitHubError> {
        if repo.to_string().eq_ignore_ascii_case(&self.repo.to_string()) {
            Ok(())
        } else {
            Err(GitHubError::Status { status: 404, message: "Not Found".into() })
        }
    }

    fn html_url(&self, run_id: u64) -> String {
        format!("https://github.com/{}/actions/runs/{run_id}", self.repo)
    }

    /// Adds a run of `workflow_id` and returns its id.
    #[allow(clippy::too_many_arguments)]
    fn add_run(
        &self,
        state: &mut State,
        workflow_id: u64,
        number: u64,
        branch: &str,
        event: &str,
        status: &str,
        conclusion: Option<&str>,
        started: u64,
        took: u64,
        title: Option<String>,
    ) -> u64 {
        state.next_run_id += 1;
        let id = 9_100_000_000 + state.next_run_id;
        let pick = (number as usize) % SHAS.len();
        let (name, path) = state
            .workflows
            .iter()
            .find(|w| w.id == workflow_id)
            .map(|w| (w.name.clone(), w.path.clone()))
            .unwrap_or_default();
        let actor = ACTORS.get((number as usize) % ACTORS.len()).copied().unwrap_or_default();
        let commit_message = MESSAGES.get(pick).copied().unwrap_or_default().to_string();
        let run = WorkflowRun {
            id,
            name: Some(name),
            display_title: Some(title.unwrap_or_else(|| commit_message.clone())),
            head_branch: Some(branch.to_string()),
            head_sha: SHAS.get(pick).copied().unwrap_or_default().to_string(),
            status: Some(status.to_string()),
            conclusion: conclusion.map(str::to_string),
            html_url: self.html_url(id),
            created_at: Some(ts(started)),
            updated_at: Some(ts(started + took)),
            run_started_at: Some(ts(started + 4)),
            run_number: number,
            run_attempt: 1,
            workflow_id,
            event: event.to_string(),
            actor: Some(Actor { login: actor.to_string() }),
            triggering_actor: Some(Actor { login: actor.to_string() }),
        };
        state.runs.push(Run { run, path, attempt: 1, commit_message, known_issue: false });
        id
    }

    /// Adds a failed run of `workflow_id` on `main`, the newest; its id.
    fn add_failure(&self, state: &mut State, workflow_id: u64, now: u64) -> u64 {
        let n = Inner::next_number(state, workflow_id);
        self.add_run(state, workflow_id, n, "main", "push", "completed", Some("failure"), now - 200, 190, None)
    }

    fn next_number(state: &State, workflow_id: u64) -> u64 {
        state.runs.iter().filter(|r| r.run.workflow_id == workflow_id).map(|r| r.run.run_number).max().unwrap_or(0) + 1
    }

    /// A `workflow_run` delivery of the run with id `run_id`, as github.com sends it.
    fn payload(&self, run_id: u64, action: &str) -> Option<Value> {
        let state = self.lock();
        let r = state.runs.iter().find(|r| r.run.id == run_id)?;
        let w = state.workflows.iter().find(|w| w.id == r.run.workflow_id);
        let full = self.repo.to_string();
        let actor = r.run.actor.as_ref().map_or("mona", |a| a.login.as_str());
        Some(json!({
            "action": action,
            "workflow_run": {
                "id": r.run.id, "name": r.run.name, "display_title": r.run.display_title,
                "head_branch": r.run.head_branch, "head_sha": r.run.head_sha, "path": r.path,
                "run_number": r.run.run_number, "run_attempt": r.attempt, "event": r.run.event,
                "status": r.run.status, "conclusion": r.run.conclusion, "workflow_id": r.run.workflow_id,
                "html_url": r.run.html_url, "created_at": r.run.created_at, "updated_at": r.run.updated_at,
                "run_started_at": r.run.run_started_at,
                "actor": {"login": actor}, "triggering_actor": {"login": actor},
                "head_commit": {
                    "id": r.run.head_sha, "message": r.commit_message,
                    "author": {"name": actor, "email": format!("{actor}@users.noreply.github.com")}
                },
                "head_repository": {"full_name": full},
                "repository": {"full_name": full},
                "pull_requests": []
            },
            "workflow": w.map(|w| json!({"id": w.id, "name": w.name, "path": w.path, "state": w.state})),
            "repository": {
                "full_name": full, "name": self.repo.name, "owner": {"login": self.repo.owner},
                "html_url": format!("https://github.com/{full}"), "default_branch": "main"
            },
            "sender": {"login": actor}
        }))
    }

    fn set_status(&self, run_id: u64, status: &str, conclusion: Option<&str>) {
        let mut state = self.lock();
        if let Some(r) = state.runs.iter_mut().find(|r| r.run.id == run_id) {
            r.run.status = Some(status.to_string());
            r.run.conclusion = conclusion.map(str::to_string);
            r.run.updated_at = Some(ts(now_secs()));
        }
    }

    async fn deliver(&self, event: &str, payload: Value) {
        match self.deliveries.get() {
            Some(d) => d.deliver(event, payload).await,
            None => tracing::info!(event, "playground: no delivery sink; delivery dropped"),
        }
    }
}

/// The log of the demo's known issue: a name lookup that timed out in an integration test.
const KNOWN_ISSUE_LOG: &str = "2026-01-01T00:00:01.0000000Z ##[group]Run cargo test
2026-01-01T00:00:40.0000000Z running 212 tests
2026-01-01T00:00:51.0000000Z test integration::checkout_calls_the_payment_api ... FAILED
2026-01-01T00:00:51.1000000Z ---- integration::checkout_calls_the_payment_api stdout ----
2026-01-01T00:00:51.1000000Z Error: dns error: failed to lookup address information: Temporary failure in name resolution
2026-01-01T00:00:53.0000000Z test result: FAILED. 211 passed; 1 failed
2026-01-01T00:00:53.1000000Z ##[error]Process completed with exit code 101.
";

/// Queued, in progress, completed with `conclusion`: one delivery each, `step` apart.
fn progress(inner: Arc<Inner>, run_id: u64, conclusion: &'static str) {
    tokio::spawn(async move {
        let steps: [(&str, &str, Option<&str>); 3] = [
            ("requested", "queued", None),
            ("in_progress", "in_progress", None),
            ("completed", "completed", Some(conclusion)),
        ];
        for (i, (action, status, conclusion)) in steps.into_iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(inner.step).await;
            }
            inner.set_status(run_id, status, conclusion);
            if let Some(payload) = inner.payload(run_id, action) {
                inner.deliver("workflow_run", payload).await;
            }
        }
    });
}

impl FakeGitHub {
    /// The demo repository `repo`, its runs spread over the last two days.
    pub fn new(feed: Arc<Feed>, repo: RepoName) -> Self {
        let inner = Inner {
            feed,
            repo,
            step: Duration::from_millis(1500),
            deliveries: OnceLock::new(),
            state: Mutex::default(),
            secrets_key: crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng),
        };
        {
            let mut s = inner.lock();
            for (id, name, file) in [
                (161_001, "CI", "ci.yml"),
                (161_002, "Deploy", "deploy.yml"),
                (161_003, "Nightly", "nightly.yml"),
                (161_004, "Diagnose", "diagnose.yml"),
            ] {
                s.workflows.push(Workflow {
                    id,
                    name: name.into(),
                    path: format!(".github/workflows/{file}"),
                    state: "active".into(),
                });
            }
            let now = now_secs();
            let h = 3600;
            let seed: [SeedRun; 12] = [
                (161_001, 37, "main", "push", Some("success"), now - 40 * h, 262),
                (161_001, 38, "fix/cart-session", "pull_request", Some("failure"), now - 30 * h, 148),
                (161_001, 39, "fix/cart-session", "pull_request", Some("success"), now - 29 * h, 255),
                (161_001, 40, "main", "push", Some("success"), now - 26 * h, 249),
                (161_001, 41, "main", "push", Some("success"), now - 5 * h, 271),
                (161_002, 17, "main", "push", Some("success"), now - 26 * h, 95),
                (161_002, 18, "main", "push", Some("success"), now - 5 * h, 101),
                (161_003, 20, "main", "schedule", Some("failure"), now - 28 * h, 610),
                (161_003, 21, "main", "schedule", Some("success"), now - 4 * h, 587),
                (161_004, 3, "main", "workflow_dispatch", Some("success"), now - 47 * h, 42),
                (161_001, 42, "main", "push", Some("success"), now - 2 * h, 244),
                (161_001, 43, "search-ranking", "pull_request", Some("success"), now - h, 260),
            ];
            for (workflow, number, branch, event, conclusion, started, took) in seed {
                inner.add_run(&mut s, workflow, number, branch, event, "completed", conclusion, started, took, None);
            }
        }
        Self { inner: Arc::new(inner) }
    }

    /// The time between a run's steps (1.5 s by default; tests shorten it).
    pub fn with_step(self, step: Duration) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.step = step;
                Self { inner: Arc::new(inner) }
            }
            Err(inner) => Self { inner },
        }
    }

    /// Where deliveries go (set once, when the server knows its own address).
    pub fn deliver_to(&self, sink: Arc<dyn Deliveries>) {
        let _ = self.inner.deliveries.set(sink);
    }

    pub fn repo(&self) -> &RepoName {
        &self.inner.repo
    }

    /// Shows a request the bot made on the page's GitHub panel: `what` (`dispatch`, `rerun`,
    /// `variable`, `secret`…) and its details. Port methods added later call this too.
    pub fn received(&self, what: &str, detail: Value) {
        tracing::info!(what, "playground: GitHub received a request");
        self.inner.feed.publish("github", json!({"what": what, "detail": detail}));
    }

    /// The demo's known issue: the signature of the DNS timeout that the "known issue" scenario
    /// fails with, linked to #42. The playground records it when it starts.
    pub fn known_issue(&self) -> Option<valine_domain::known::KnownIssue> {
        let signature = valine_domain::fingerprint::signature("Nightly", "test", "cargo test", KNOWN_ISSUE_LOG)?;
        Some(valine_domain::known::KnownIssue {
            signature: signature.id,
            issue: Some(format!("https://github.com/{}/issues/42", self.inner.repo)),
            note: Some("flaky DNS in the integration tests".into()),
            transient: true,
            by: 0,
            at: now_secs(),
        })
    }

    /// The delivery of one scenario step; the run (or deployment) it reports is kept.
    pub fn scenario(&self, scenario: Scenario) -> (String, Value) {
        let inner = &self.inner;
        let ci = 161_001;
        let now = now_secs();
        let run_id = {
            let mut s = inner.lock();
            match scenario {
                Scenario::Fails | Scenario::FailsAgain => {
                    if scenario == Scenario::Fails || s.older_running.is_none() {
                        // The run before it is still going: "an older run passes late" ends it.
                        let n = Inner::next_number(&s, ci);
                        let older =
                            inner.add_run(&mut s, ci, n, "main", "push", "in_progress", None, now - 300, 0, None);
                        s.older_running = Some(older);
                    }
                    let id = inner.add_failure(&mut s, ci, now);
                    s.last_failure = s.runs.iter().find(|r| r.run.id == id).map(|r| r.run.run_number);
                    Some(id)
                }
                Scenario::OlderPassesLate => {
                    let id = match s.older_running.take() {
                        Some(id) => id,
                        None => {
                            // Nothing left running: a run numbered just below the last failure.
                            let n = s.last_failure.unwrap_or_else(|| Inner::next_number(&s, ci)).saturating_sub(1);
                            inner.add_run(&mut s, ci, n.max(1), "main", "push", "in_progress", None, now - 400, 0, None)
                        }
                    };
                    if let Some(r) = s.runs.iter_mut().find(|r| r.run.id == id) {
                        r.run.status = Some("completed".into());
                        r.run.conclusion = Some("success".into());
                        r.run.updated_at = Some(ts(now));
                    }
                    Some(id)
                }
                Scenario::NewerPasses => {
                    let n = Inner::next_number(&s, ci);
                    s.last_failure = None;
                    Some(inner.add_run(
                        &mut s,
                        ci,
                        n,
                        "main",
                        "push",
                        "completed",
                        Some("success"),
                        now - 250,
                        240,
                        None,
                    ))
                }
                Scenario::PassesOnRerun => {
                    // The newest failure (or, with none, a new run that failed) is run again and
                    // passes on its next attempt.
                    let failed = s.last_failure.take().and_then(|n| {
                        s.runs.iter().find(|r| r.run.workflow_id == ci && r.run.run_number == n).map(|r| r.run.id)
                    });
                    let id = match failed {
                        Some(id) => id,
                        None => inner.add_failure(&mut s, ci, now),
                    };
                    if let Some(r) = s.runs.iter_mut().find(|r| r.run.id == id) {
                        r.attempt += 1;
                        r.run.status = Some("completed".into());
                        r.run.conclusion = Some("success".into());
                        r.run.updated_at = Some(ts(now));
                    }
                    Some(id)
                }
                Scenario::KnownIssueFails => {
                    // The nightly run, so that CI's incident and its flapping are left alone.
                    let nightly = 161_003;
                    let n = Inner::next_number(&s, nightly);
                    let id = inner.add_run(
                        &mut s,
                        nightly,
                        n,
                        "main",
                        "schedule",
                        "completed",
                        Some("failure"),
                        now - 200,
                        190,
                        None,
                    );
                    if let Some(r) = s.runs.iter_mut().find(|r| r.run.id == id) {
                        r.known_issue = true;
                    }
                    Some(id)
                }
                Scenario::DeploymentFails | Scenario::DeploymentSucceeds => None,
            }
        };
        if let Some(id) = run_id {
            let payload = inner.payload(id, "completed").unwrap_or_default();
            return ("workflow_run".into(), payload);
        }
        let state = if scenario == Scenario::DeploymentFails { "failure" } else { "success" };
        let status_id = {
            let mut s = inner.lock();
            s.next_deployment += 1;
            5_200_000_000 + s.next_deployment
        };
        let full = inner.repo.to_string();
        let sha = SHAS.get((status_id as usize) % SHAS.len()).copied().unwrap_or_default();
        let payload = json!({
            "action": "created",
            "deployment_status": {
                "id": status_id, "state": state, "environment": "production",
                "description": if state == "failure" { "Health check failed after rollout" } else { "Deployed" },
                "created_at": ts(now), "updated_at": ts(now),
                "log_url": format!("https://github.com/{full}/actions/runs/{}", 9_200_000_000 + status_id % 1000),
                "target_url": format!("https://github.com/{full}/deployments"),
                "creator": {"login": "hubot"}
            },
            "deployment": {
                "id": status_id - 100, "sha": sha, "ref": "main", "task": "deploy", "environment": "production",
                "creator": {"login": "mona"}, "created_at": ts(now - 60)
            },
            "repository": {"full_name": full, "name": inner.repo.name, "owner": {"login": inner.repo.owner}},
            "sender": {"login": "hubot"}
        });
        ("deployment_status".into(), payload)
    }

    /// Every run kept, for tests.
    pub fn runs(&self) -> Vec<WorkflowRun> {
        self.inner.lock().runs.iter().map(|r| r.run.clone()).collect()
    }

    fn find_workflow(state: &State, workflow: &str) -> Option<Workflow> {
        state
            .workflows
            .iter()
            .find(|w| {
                w.id.to_string() == workflow
                    || w.file_name().eq_ignore_ascii_case(workflow)
                    || w.name.eq_ignore_ascii_case(workflow)
            })
            .cloned()
    }
}

#[async_trait]
impl GitHub for FakeGitHub {
    async fn list_workflows(&self, repo: &RepoName) -> Result<Vec<Workflow>, GitHubError> {
        self.inner.check_repo(repo)?;
        Ok(self.inner.lock().workflows.clone())
    }

    async fn list_runs(&self, repo: &RepoName, workflow: &str, per_page: u8) -> Result<Vec<WorkflowRun>, GitHubError> {
        self.inner.check_repo(repo)?;
        let state = self.inner.lock();
        let w = Self::find_workflow(&state, workflow)
            .ok_or(GitHubError::Status { status: 404, message: "Not Found".into() })?;
        let mut runs: Vec<WorkflowRun> =
            state.runs.iter().filter(|r| r.run.workflow_id == w.id).map(|r| r.run.clone()).collect();
        runs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.run_number.cmp(&a.run_number)));
        runs.truncate(usize::from(per_page.max(1)));
        Ok(runs)
    }

    async fn dispatch(
        &self,
        repo: &RepoName,
        workflow: &str,
        git_ref: &str,
        inputs: &Value,
    ) -> Result<(), GitHubError> {
        self.inner.check_repo(repo)?;
        let run_id = {
            let mut s = self.inner.lock();
            let w = match Self::find_workflow(&s, workflow) {
                Some(w) => w,
                None if workflow.ends_with(".yml") || workflow.ends_with(".yaml") => {
                    // Any workflow file exists here: a command may dispatch one of its own.
                    let stem = workflow.trim_end_matches(".yaml").trim_end_matches(".yml");
                    let w = Workflow {
                        id: 161_100 + s.workflows.len() as u64,
                        name: title_case(stem),
                        path: format!(".github/workflows/{workflow}"),
                        state: "active".into(),
                    };
                    s.workflows.push(w.clone());
                    w
                }
                None => {
                    return Err(GitHubError::Status {
                        status: 404,
                        message: format!("No workflow file `{workflow}` in {}", self.inner.repo),
                    });
                }
            };
            // A dispatched workflow's `run-name` usually names its inputs (the diagnose workflow
            // puts its correlation id there): the title is the name and the input values.
            let values: Vec<String> = inputs
                .as_object()
                .map(|o| o.values().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).collect())
                .unwrap_or_default();
            let title = if values.is_empty() { w.name.clone() } else { format!("{} {}", w.name, values.join(" ")) };
            let n = Inner::next_number(&s, w.id);
            self.inner.add_run(
                &mut s,
                w.id,
                n,
                git_ref,
                "workflow_dispatch",
                "queued",
                None,
                now_secs(),
                0,
                Some(title),
            )
        };
        self.received(
            "dispatch",
            json!({"workflow": workflow, "ref": git_ref, "inputs": inputs, "run_id": run_id.to_string()}),
        );
        progress(self.inner.clone(), run_id, "success");
        Ok(())
    }

    async fn get_run(&self, repo: &RepoName, run_id: u64) -> Result<WorkflowRun, GitHubError> {
        self.inner.check_repo(repo)?;
        let state = self.inner.lock();
        state
            .runs
            .iter()
            .find(|r| r.run.id == run_id)
            .map(|r| r.run.clone())
            .ok_or(GitHubError::Status { status: 404, message: "Not Found".into() })
    }

    async fn run_attempt_jobs(&self, repo: &RepoName, run_id: u64, _attempt: u64) -> Result<Vec<Job>, GitHubError> {
        let run = self.get_run(repo, run_id).await?;
        let failed = matches!(run.conclusion.as_deref(), Some("failure"));
        let step = |number: u64, name: &str, conclusion: &str| JobStep {
            name: name.into(),
            status: Some("completed".into()),
            conclusion: Some(conclusion.into()),
            number,
        };
        let url = |n: u64| Some(format!("{}/job/{}", run.html_url, run_id * 10 + n));
        Ok(vec![
            Job {
                id: run_id * 10 + 1,
                name: "build".into(),
                status: Some("completed".into()),
                conclusion: Some("success".into()),
                html_url: url(1),
                steps: vec![step(1, "Set up job", "success"), step(2, "cargo build", "success")],
            },
            Job {
                id: run_id * 10 + 2,
                name: "test".into(),
                status: Some("completed".into()),
                conclusion: Some(if failed { "failure" } else { "success" }.into()),
                html_url: url(2),
                steps: vec![
                    step(1, "Set up job", "success"),
                    step(2, "Checkout", "success"),
                    step(3, "cargo test", if failed { "failure" } else { "success" }),
                    step(4, "Upload report", if failed { "skipped" } else { "success" }),
                ],
            },
        ])
    }

    async fn job_log(&self, repo: &RepoName, job_id: u64) -> Result<String, GitHubError> {
        self.inner.check_repo(repo)?;
        // job ids are the run's id × 10 + the job's number
        let known = self.inner.lock().runs.iter().any(|r| r.run.id == job_id / 10 && r.known_issue);
        if known {
            return Ok(KNOWN_ISSUE_LOG.to_string());
        }
        Ok(format!(
            "2026-01-01T00:00:01.0000000Z ##[group]Run cargo test\n\
             2026-01-01T00:00:40.0000000Z running 212 tests\n\
             2026-01-01T00:00:52.0000000Z test checkout::applies_discount_before_tax ... FAILED\n\
             2026-01-01T00:00:52.1000000Z ---- checkout::applies_discount_before_tax stdout ----\n\
             2026-01-01T00:00:52.1000000Z assertion `left == right` failed: total\n\
             2026-01-01T00:00:52.1000000Z   left: 1089\n\
             2026-01-01T00:00:52.1000000Z  right: 1080\n\
             2026-01-01T00:00:53.0000000Z test result: FAILED. 211 passed; 1 failed (job {job_id})\n\
             2026-01-01T00:00:53.1000000Z ##[error]Process completed with exit code 101.\n"
        ))
    }

    async fn rerun_failed_jobs(&self, repo: &RepoName, run_id: u64) -> Result<(), GitHubError> {
        self.inner.check_repo(repo)?;
        let (number, workflow, attempt) = {
            let mut s = self.inner.lock();
            let r = s
                .runs
                .iter_mut()
                .find(|r| r.run.id == run_id)
                .ok_or(GitHubError::Status { status: 404, message: "Not Found".into() })?;
            if r.run.status.as_deref() != Some("completed") {
                return Err(GitHubError::Status { status: 403, message: "This workflow run is not completed".into() });
            }
            r.attempt += 1;
            (r.run.run_number, r.run.name.clone().unwrap_or_default(), r.attempt)
        };
        self.received(
            "rerun",
            json!({"run_id": run_id.to_string(), "run_number": number, "workflow": workflow, "attempt": attempt}),
        );
        // The failure was a flake: the failed jobs pass on their second try.
        progress(self.inner.clone(), run_id, "success");
        Ok(())
    }

    async fn set_variable(&self, repo: &RepoName, name: &str, value: &str) -> Result<VariableWrite, GitHubError> {
        self.inner.check_repo(repo)?;
        let created = self.inner.lock().written.insert(format!("variable:{name}"));
        self.received("variable", json!({"name": name, "value": value, "created": created}));
        Ok(if created { VariableWrite::Created } else { VariableWrite::Updated })
    }

    async fn secrets_public_key(&self, repo: &RepoName) -> Result<SecretsKey, GitHubError> {
        use base64::Engine as _;
        self.inner.check_repo(repo)?;
        let key = base64::engine::general_purpose::STANDARD.encode(self.inner.secrets_key.public_key().as_bytes());
        Ok(SecretsKey { key_id: "playground-key".into(), key })
    }

    /// The panel shows the secret's name and length, never its value.
    async fn put_sealed_secret(
        &self,
        repo: &RepoName,
        name: &str,
        sealed: &SealedSecret,
    ) -> Result<SecretWrite, GitHubError> {
        use base64::Engine as _;
        self.inner.check_repo(repo)?;
        let refused = || GitHubError::Status { status: 422, message: "Bad request: the value is not sealed".into() };
        let bytes = base64::engine::general_purpose::STANDARD.decode(&sealed.encrypted_value).map_err(|_| refused())?;
        let length = self.inner.secrets_key.unseal(&bytes).map_err(|_| refused())?.len();
        let created = self.inner.lock().written.insert(format!("secret:{name}"));
        self.received("secret", json!({"name": name, "length": length, "created": created}));
        Ok(if created { SecretWrite::Created } else { SecretWrite::Updated })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> RepoName {
        RepoName { owner: "valine-demo".into(), name: "webshop".into() }
    }

    #[derive(Default)]
    struct Sink(Mutex<Vec<(String, Value)>>);

    #[async_trait]
    impl Deliveries for Sink {
        async fn deliver(&self, event: &str, payload: Value) {
            self.0.lock().unwrap().push((event.to_string(), payload));
        }
    }

    async fn wait_for(sink: &Sink, n: usize) -> Vec<(String, Value)> {
        for _ in 0..200 {
            if sink.0.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        sink.0.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn serves_the_demo_repository_for_status() {
        let gh = FakeGitHub::new(Feed::new(), repo());
        let workflows = gh.list_workflows(&repo()).await.unwrap();
        assert_eq!(
            workflows.iter().map(|w| w.file_name()).collect::<Vec<_>>(),
            ["ci.yml", "deploy.yml", "nightly.yml", "diagnose.yml"]
        );
        let runs = gh.list_runs(&repo(), "161001", 3).await.unwrap();
        assert_eq!(runs.iter().map(|r| r.run_number).collect::<Vec<_>>(), [43, 42, 41]);
        assert!(runs.iter().all(|r| r.duration_secs().is_some() && r.html_url.contains("valine-demo/webshop")));
        assert_eq!(gh.list_runs(&repo(), "ci.yml", 1).await.unwrap()[0].run_number, 43);
        let other = RepoName { owner: "acme".into(), name: "widget".into() };
        assert!(matches!(gh.list_workflows(&other).await, Err(GitHubError::Status { status: 404, .. })));
        assert!(gh.list_runs(&repo(), "nope.yml", 3).await.is_err());
    }

    #[tokio::test]
    async fn variable_and_secret_writes_show_in_the_panel_without_the_secret() {
        let feed = Feed::new();
        let gh = FakeGitHub::new(feed.clone(), repo());
        let url = "https://app.example.com/";
        assert_eq!(gh.set_variable(&repo(), "FRONTEND_BASE_URL", url).await.unwrap(), VariableWrite::Created);
        assert_eq!(gh.set_variable(&repo(), "FRONTEND_BASE_URL", url).await.unwrap(), VariableWrite::Updated);
        let secret = valine_domain::config::Secret::new("https://api.example.com/v1");
        assert_eq!(gh.set_secret(&repo(), "VITE_API_BASE", &secret).await.unwrap(), SecretWrite::Created);
        let received = feed.of_kind("github");
        assert_eq!(received[0]["what"], "variable");
        assert_eq!(received[0]["detail"]["value"], url);
        assert_eq!(received[2]["what"], "secret");
        assert_eq!(received[2]["detail"]["name"], "VITE_API_BASE");
        assert!(!received[2].to_string().contains("api.example.com"), "{}", received[2]);
        let other = RepoName { owner: "evil".into(), name: "app".into() };
        assert!(gh.set_variable(&other, "X", "y").await.is_err());
    }

    #[tokio::test]
    async fn a_dispatch_of_any_workflow_is_recorded_and_progresses_by_deliveries() {
        let feed = Feed::new();
        let gh = FakeGitHub::new(feed.clone(), repo()).with_step(Duration::from_millis(1));
        let sink = Arc::new(Sink::default());
        gh.deliver_to(sink.clone());
        let inputs = json!({"correlation_id": "0d6b0c0e-8f4e-4a4b-9a51-5a4b6f7e8d9c"});
        gh.dispatch(&repo(), "deploy-client.yml", "main", &inputs).await.unwrap();
        let got = wait_for(&sink, 3).await;
        let actions: Vec<_> = got.iter().map(|(_, p)| p["action"].as_str().unwrap().to_string()).collect();
        assert_eq!(actions, ["requested", "in_progress", "completed"]);
        let last = &got[2].1;
        assert_eq!(got[2].0, "workflow_run");
        assert_eq!(last["workflow_run"]["conclusion"], "success");
        assert_eq!(last["workflow_run"]["event"], "workflow_dispatch");
        assert_eq!(last["workflow_run"]["path"], ".github/workflows/deploy-client.yml");
        assert_eq!(last["workflow"]["name"], "Deploy Client");
        assert!(last["workflow_run"]["display_title"].as_str().unwrap().contains("0d6b0c0e-8f4e"));
        let received = feed.of_kind("github");
        assert_eq!(received[0]["what"], "dispatch");
        assert_eq!(received[0]["detail"]["workflow"], "deploy-client.yml");
        assert_eq!(received[0]["detail"]["inputs"], inputs);
        assert!(gh.dispatch(&repo(), "12345", "main", &json!({})).await.is_err());
    }

    #[tokio::test]
    async fn scenarios_keep_their_runs_and_order_them() {
        let gh = FakeGitHub::new(Feed::new(), repo());
        let (event, fail) = gh.scenario(Scenario::Fails);
        assert_eq!(event, "workflow_run");
        assert_eq!(fail["workflow_run"]["conclusion"], "failure");
        assert_eq!(fail["workflow_run"]["head_branch"], "main");
        let first = fail["workflow_run"]["run_number"].as_u64().unwrap();
        let (_, again) = gh.scenario(Scenario::FailsAgain);
        assert_eq!(again["workflow_run"]["run_number"].as_u64().unwrap(), first + 1);
        let (_, late) = gh.scenario(Scenario::OlderPassesLate);
        assert_eq!(late["workflow_run"]["conclusion"], "success");
        assert!(late["workflow_run"]["run_number"].as_u64().unwrap() < first);
        let (_, newer) = gh.scenario(Scenario::NewerPasses);
        assert_eq!(newer["workflow_run"]["run_number"].as_u64().unwrap(), first + 2);
        let (_, again) = gh.scenario(Scenario::Fails);
        let (_, flake) = gh.scenario(Scenario::PassesOnRerun);
        assert_eq!(flake["workflow_run"]["id"], again["workflow_run"]["id"], "the same run, re-run");
        assert_eq!(
            (flake["workflow_run"]["run_attempt"].as_u64(), flake["workflow_run"]["conclusion"].as_str()),
            (Some(2), Some("success"))
        );
        let (event, dep) = gh.scenario(Scenario::DeploymentFails);
        assert_eq!(event, "deployment_status");
        assert_eq!(dep["deployment_status"]["state"], "failure");
        assert_eq!(dep["repository"]["full_name"], "valine-demo/webshop");
        // The scenario's runs are GitHub's runs now: jobs, logs and re-runs know them.
        let id = fail["workflow_run"]["id"].as_u64().unwrap();
        let jobs = gh.run_attempt_jobs(&repo(), id, 1).await.unwrap();
        let failed = crate::github_api::first_failed_job(&jobs).unwrap();
        assert_eq!(failed.failed_step().unwrap().name, "cargo test");
        assert!(gh.job_log(&repo(), failed.id).await.unwrap().contains("FAILED"));
        for s in Scenario::ALL {
            assert_eq!(Scenario::parse(s.code()), Some(s));
        }
    }

    #[tokio::test]
    async fn a_rerun_is_recorded_and_its_run_passes() {
        let feed = Feed::new();
        let gh = FakeGitHub::new(feed.clone(), repo()).with_step(Duration::from_millis(1));
        let sink = Arc::new(Sink::default());
        gh.deliver_to(sink.clone());
        let (_, fail) = gh.scenario(Scenario::Fails);
        let id = fail["workflow_run"]["id"].as_u64().unwrap();
        gh.rerun_failed_jobs(&repo(), id).await.unwrap();
        let got = wait_for(&sink, 3).await;
        assert_eq!(got[2].1["workflow_run"]["run_attempt"], 2);
        assert_eq!(got[2].1["workflow_run"]["conclusion"], "success");
        assert_eq!(feed.of_kind("github")[0]["what"], "rerun");
        assert!(matches!(gh.rerun_failed_jobs(&repo(), 1).await, Err(GitHubError::Status { status: 404, .. })));
    }
}
