//! What an incident is: its key, the runs it orders, its streaks, mutes and acknowledgement.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How many finished failure streaks an incident item remembers, for `valinectl incidents`.
pub const HISTORY: usize = 20;
/// The most log-tail characters in a message (inside the code block).
pub const LOG_TAIL_CHARS: usize = 1000;
/// How many log lines the tail keeps.
pub const LOG_TAIL_LINES: usize = 15;

/// What an incident is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    Workflow {
        workflow: String,
        branch: String,
    },
    Deployment {
        environment: String,
    },
    /// A `VERIFY_URLS` endpoint checked by the tick: opens after [`ENDPOINT_STRIKES`] failed
    /// checks in a row.
    Endpoint {
        endpoint: String,
    },
}

/// Failed health checks in a row that open an "endpoint unhealthy" incident.
pub const ENDPOINT_STRIKES: u32 = 2;

/// The incident key: subject, repository and the channel it is routed to (each channel its own
/// incident).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IncidentKey {
    pub channel_id: u64,
    pub repository: String,
    pub subject: Subject,
}

impl IncidentKey {
    pub fn workflow(channel_id: u64, repository: &str, workflow: &str, branch: &str) -> Self {
        Self {
            channel_id,
            repository: repository.to_string(),
            subject: Subject::Workflow { workflow: workflow.to_string(), branch: branch.to_string() },
        }
    }

    pub fn endpoint(channel_id: u64, repository: &str, endpoint: &str) -> Self {
        Self {
            channel_id,
            repository: repository.to_string(),
            subject: Subject::Endpoint { endpoint: endpoint.to_string() },
        }
    }

    pub fn deployment(channel_id: u64, repository: &str, environment: &str) -> Self {
        Self {
            channel_id,
            repository: repository.to_string(),
            subject: Subject::Deployment { environment: environment.to_string() },
        }
    }

    /// The full key as text: what the short id hashes.
    pub fn canonical(&self) -> String {
        match &self.subject {
            Subject::Workflow { workflow, branch } => {
                format!("wf\u{1f}{}\u{1f}{}\u{1f}{workflow}\u{1f}{branch}", self.channel_id, self.repository)
            }
            Subject::Deployment { environment } => {
                format!("deploy\u{1f}{}\u{1f}{}\u{1f}{environment}", self.channel_id, self.repository)
            }
            Subject::Endpoint { endpoint } => {
                format!("endpoint\u{1f}{}\u{1f}{}\u{1f}{endpoint}", self.channel_id, self.repository)
            }
        }
    }

    /// A short, stable id of the key (12 hex characters): the store's key, and what button custom
    /// ids carry. Deterministic, so a look-up by id is a look-up by key: O(1), no index item.
    pub fn id(&self) -> String {
        let digest: [u8; 32] = Sha256::digest(self.canonical().as_bytes()).into();
        hex::encode(&digest[..6])
    }

    /// `workflow` or `deploy:environment`, for messages and per-workflow statistics.
    pub fn name(&self) -> String {
        match &self.subject {
            Subject::Workflow { workflow, .. } => workflow.clone(),
            Subject::Deployment { environment } => format!("deploy:{environment}"),
            Subject::Endpoint { endpoint } => format!("endpoint:{endpoint}"),
        }
    }

    /// The branch, or the environment.
    pub fn scope(&self) -> &str {
        match &self.subject {
            Subject::Workflow { branch, .. } => branch,
            Subject::Deployment { environment } => environment,
            Subject::Endpoint { .. } => "health",
        }
    }
}

/// Which of two observations is newer: run number, then run attempt; for deployments the status'
/// `created_at`, then its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Order {
    pub major: u64,
    pub minor: u64,
}

impl Order {
    pub fn new(major: u64, minor: u64) -> Self {
        Self { major, minor }
    }
}

/// An observation's outcome, as far as incidents care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Failure,
    Success,
    /// Cancelled, skipped, neutral, in progress: opens and resolves nothing.
    Neutral,
}

impl Outcome {
    /// `failure`, `timed_out`, `startup_failure` (runs) and `failure`, `error` (deployments).
    pub fn from_conclusion(conclusion: &str) -> Self {
        match conclusion {
            "failure" | "timed_out" | "startup_failure" | "error" => Outcome::Failure,
            "success" => Outcome::Success,
            _ => Outcome::Neutral,
        }
    }
}

/// The failing job and step of a run, and its log tail (already redacted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FailureDetail {
    #[serde(default)]
    pub job: Option<String>,
    #[serde(default)]
    pub step: Option<String>,
    #[serde(default)]
    pub job_url: Option<String>,
    #[serde(default)]
    pub log_tail: Option<String>,
    /// The failure's signature (`crate::fingerprint`), when the log held an error line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Where the fingerprint ledger had seen it before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<crate::fingerprint::Seen>,
    /// What the team said about the signature (`/known`) when the failure was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known: Option<crate::known::KnownIssue>,
}

/// One run (or deployment status) as an incident remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RunRef {
    pub order: Order,
    /// The run id (0 for a deployment).
    #[serde(default)]
    pub run_id: u64,
    #[serde(default)]
    pub run_number: u64,
    #[serde(default)]
    pub attempt: u64,
    #[serde(default)]
    pub conclusion: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub commit: Option<String>,
    /// Who triggered it.
    #[serde(default)]
    pub actor: Option<String>,
    /// Who wrote the head commit (a GitHub login when the payload has one).
    #[serde(default)]
    pub commit_author: Option<String>,
    /// When it completed, epoch seconds.
    #[serde(default)]
    pub completed_at: u64,
    #[serde(default)]
    pub trace_id: String,
    #[serde(default)]
    pub detail: Option<FailureDetail>,
    /// The bot re-ran this run's failed jobs once (`AUTO_RETRY`), and this attempt failed again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retried: bool,
}

/// One observation of a completed run or a deployment status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub key: IncidentKey,
    pub outcome: Outcome,
    pub run: RunRef,
    /// The workflow's file (`.github/workflows/ci.yml`), when the event named it.
    pub workflow_file: String,
}

/// Where the incident's message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    pub channel_id: u64,
    pub message_id: u64,
    /// When it was posted, epoch seconds (MTTD = this − the first failure's completion).
    pub posted_at: u64,
    #[serde(default)]
    pub guild_id: Option<u64>,
}

impl MessageRef {
    /// `https://discord.com/channels/{guild or @me}/{channel}/{message}`.
    pub fn link(&self) -> String {
        let guild = self.guild_id.map_or_else(|| "@me".to_string(), |g| g.to_string());
        format!("https://discord.com/channels/{guild}/{}/{}", self.channel_id, self.message_id)
    }
}

/// Who did something, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub user_id: u64,
    pub at: u64,
}

/// A mute: until a time, or until the incident is fixed (`until: None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mute {
    pub by: u64,
    pub at: u64,
    #[serde(default)]
    pub until: Option<u64>,
}

impl Mute {
    pub fn active(&self, now: u64) -> bool {
        self.until.is_none_or(|until| until > now)
    }
}

/// A finished failure streak, kept for statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Streak {
    pub streak: u64,
    pub opened_at: u64,
    pub first_failure_completed_at: u64,
    #[serde(default)]
    pub message_posted_at: Option<u64>,
    pub resolved_at: u64,
    pub failures: u64,
    /// The run number of the streak's last failure, and of the run that fixed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_run: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_by_run: Option<u64>,
    /// When somebody acknowledged it, if anybody did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_at: Option<u64>,
}

/// The stored incident: the newest run seen for its key and the current (or last) failure streak.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// [`IncidentKey::id`].
    pub id: String,
    pub key: IncidentKey,
    /// Bumped by every write; the store writes only over the version it was read at.
    pub version: u64,
    /// The newest observation seen (failure or success), whatever the streak.
    pub latest: Order,
    /// Whether a failure streak is open.
    pub open: bool,
    /// Counts failure streaks of this key; a button carries it, so a press on an old streak's
    /// message never acts on a newer one.
    pub streak: u64,
    /// When the current (or last) streak opened, by the bot's clock.
    #[serde(default)]
    pub opened_at: u64,
    #[serde(default)]
    pub failures: u64,
    #[serde(default)]
    pub first_failure: Option<RunRef>,
    /// The newest failing run: what a success must be newer than to resolve.
    #[serde(default)]
    pub latest_failure: Option<RunRef>,
    #[serde(default)]
    pub fixed_by: Option<RunRef>,
    #[serde(default)]
    pub resolved_at: Option<u64>,
    #[serde(default)]
    pub message: Option<MessageRef>,
    /// When the outcome flipped (failure ↔ success), inside the flap window.
    #[serde(default)]
    pub flips: Vec<u64>,
    #[serde(default)]
    pub flapping: bool,
    /// The newest observation's outcome was a success while flapping kept the incident open.
    #[serde(default)]
    pub latest_passing: bool,
    #[serde(default)]
    pub acked: Option<Stamp>,
    #[serde(default)]
    pub mute: Option<Mute>,
    #[serde(default)]
    pub escalated_at: Option<u64>,
    #[serde(default)]
    pub rerun: Option<Stamp>,
    /// Culprits mentioned on the first post (Discord user ids).
    #[serde(default)]
    pub mentioned: Vec<u64>,
    /// The role its route mentions (`/subscribe mention:`), pinged on the first post and named by
    /// escalations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mention_role: Option<u64>,
    #[serde(default)]
    pub history: Vec<Streak>,
    /// When this item was last written.
    #[serde(default)]
    pub updated_at: u64,
    /// Failed health checks in a row while nothing is open (endpoint incidents only).
    #[serde(default)]
    pub strikes: u32,
    /// What its card must still show (the outbox; see `incident::outbox`).
    #[serde(default)]
    pub display: super::outbox::Display,
}

impl Incident {
    pub(super) fn new(key: &IncidentKey) -> Self {
        Self {
            id: key.id(),
            key: key.clone(),
            version: 0,
            latest: Order::default(),
            open: false,
            streak: 0,
            opened_at: 0,
            failures: 0,
            first_failure: None,
            latest_failure: None,
            fixed_by: None,
            resolved_at: None,
            message: None,
            flips: Vec::new(),
            flapping: false,
            latest_passing: false,
            acked: None,
            mute: None,
            escalated_at: None,
            rerun: None,
            mentioned: Vec::new(),
            mention_role: None,
            history: Vec::new(),
            updated_at: 0,
            strikes: 0,
            display: super::outbox::Display::default(),
        }
    }

    /// `{id}-{streak}`: what a button carries (the id of this failure streak).
    pub fn streak_id(&self) -> String {
        format!("{}-{}", self.id, self.streak)
    }

    pub fn muted(&self, now: u64) -> bool {
        self.mute.is_some_and(|m| m.active(now))
    }

    /// The next write of this incident: the same item, one version on.
    pub fn next_version(&self, now: u64) -> Self {
        let mut next = self.clone();
        next.version += 1;
        next.updated_at = now;
        next
    }

    /// Names in `seen` the run that fixed the failure last seen, when that failure was this
    /// incident's: the streak that ended with it says which run resolved it.
    pub fn name_fix(&self, seen: &mut crate::fingerprint::Seen) {
        if seen.last_branch != self.key.scope() {
            return;
        }
        seen.fixed_by = self
            .history
            .iter()
            .rev()
            .find(|s| s.last_failure_run == Some(seen.last_run_number))
            .and_then(|s| s.fixed_by_run);
    }

    /// The attempt that fixed it, when that was a re-run of the run that failed last (the same
    /// commit passed on a later attempt: a flake, not a fix).
    pub fn flaky(&self) -> Option<u64> {
        let (fix, failed) = (self.fixed_by.as_ref()?, self.latest_failure.as_ref()?);
        let same_commit = fix.run_id == failed.run_id || (fix.commit.is_some() && fix.commit == failed.commit);
        (!self.open && fix.attempt > 1 && same_commit && fix.order.major == failed.order.major).then_some(fix.attempt)
    }

    /// Every streak this item knows (the finished ones, then the current one if open), for stats.
    pub fn streaks(&self) -> Vec<Streak> {
        let mut all = self.history.clone();
        if self.open
            && let Some(first) = &self.first_failure
        {
            all.push(Streak {
                streak: self.streak,
                opened_at: self.opened_at,
                first_failure_completed_at: first.completed_at,
                message_posted_at: self.message.map(|m| m.posted_at),
                resolved_at: 0,
                failures: self.failures,
                last_failure_run: self.latest_failure.as_ref().map(|r| r.run_number),
                fixed_by_run: None,
                acked_at: self.acked.map(|a| a.at),
            });
        }
        all
    }
}
