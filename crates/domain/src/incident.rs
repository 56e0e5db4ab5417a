//! The incident model: one incident per (repository, workflow, branch) of workflow runs, or per
//! (repository, environment) of deployment statuses, per route channel. Pure: [`decide`] takes the
//! stored incident (or none), one observation, the time and the policy, and answers the next state
//! and what to do about it. The store's conditional write (on [`Incident::version`]) and the
//! ordering key here together make deliveries in any order, duplicated, replayed, or handled by two
//! containers at once converge on the newest run's truth.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::duration;
use crate::custom_id::{CustomId, MuteFor};
use crate::markdown::{escape_markdown as text, inline_code};
use crate::message::{ButtonStyle, Component, Embed, Message};

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
        let digest = Sha256::digest(self.canonical().as_bytes());
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
}

/// One observation of a completed run or a deployment status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub key: IncidentKey,
    pub outcome: Outcome,
    pub run: RunRef,
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
}

impl Incident {
    fn new(key: &IncidentKey) -> Self {
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
            });
        }
        all
    }
}

/// Flap damping and the like, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub flap_count: u32,
    pub flap_minutes: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Self { flap_count: 4, flap_minutes: 60 }
    }
}

/// What to do once the new state is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing changes: older, equal or neutral observations.
    Nothing(&'static str),
    /// The state changes (a success with no incident open, say) but nothing is posted.
    Record,
    /// The first failure of a streak: post the incident message.
    Post,
    /// A later failure (or flapping): edit the message in place.
    Edit,
    /// A newer success: edit the message to resolved and post one reply referencing it.
    Resolve,
    /// A failure of a muted incident: tracked, nothing posted; log `Alert muted`.
    Muted,
}

/// The next state (`None`: write nothing) and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub next: Option<Incident>,
    pub action: Action,
}

impl Decision {
    fn nothing(reason: &'static str) -> Self {
        Self { next: None, action: Action::Nothing(reason) }
    }
}

/// Decides what one observation does to an incident.
///
/// - Older or equal observations (by [`Order`]) change nothing; so do neutral outcomes.
/// - A failure opens a streak (post) or extends it (edit); muted, it posts nothing.
/// - A success resolves only an open streak, and only when newer than its latest failure (it is:
///   it is newer than everything seen); while flapping it edits instead.
/// - A newer success with nothing open is still recorded, so that an older failure arriving
///   after it cannot open an incident while the branch is green.
pub fn decide(current: Option<&Incident>, obs: &Observation, now: u64, policy: Policy) -> Decision {
    if obs.outcome == Outcome::Neutral {
        return Decision::nothing("cancelled, skipped or neutral: opens and resolves nothing");
    }
    let base = current.cloned().unwrap_or_else(|| Incident::new(&obs.key));
    if current.is_some() && obs.run.order <= base.latest {
        return Decision::nothing("not newer than what this incident has seen");
    }
    // A health check: one failure is a strike, not yet an incident; a pass with nothing open and
    // no strike changes nothing (no write per tick per healthy endpoint).
    if matches!(obs.key.subject, Subject::Endpoint { .. }) && !base.open {
        match obs.outcome {
            Outcome::Failure if base.strikes + 1 < ENDPOINT_STRIKES => {
                let mut next = base.next_version(now);
                next.latest = obs.run.order;
                next.strikes = base.strikes + 1;
                return Decision { next: Some(next), action: Action::Record };
            }
            Outcome::Success if base.strikes == 0 => return Decision::nothing("healthy, and nothing open"),
            _ => {}
        }
    }
    let mut next = base.next_version(now);
    next.latest = obs.run.order;
    // A flip is a change of outcome against the previous newest observation; flips outlive a
    // streak, so that fail/pass/fail/pass is seen as flapping however often it resolves.
    let was_failing = base.open && !base.latest_passing;
    let flipped = current.is_some() && (obs.outcome == Outcome::Failure) != was_failing;
    let window = policy.flap_minutes.saturating_mul(60);
    next.flips.retain(|t| now.saturating_sub(*t) < window);
    if flipped {
        next.flips.push(now);
    }
    let flapping = next.flips.len() > policy.flap_count as usize;
    if let Some(m) = next.mute
        && !m.active(now)
    {
        next.mute = None;
    }
    match obs.outcome {
        Outcome::Failure => {
            next.latest_passing = false;
            next.latest_failure = Some(obs.run.clone());
            if base.open {
                next.failures += 1;
                next.flapping = next.flapping || flapping;
                let action = if next.muted(now) {
                    Action::Muted
                } else if next.message.is_none() {
                    Action::Post
                } else {
                    Action::Edit
                };
                return Decision { next: Some(next), action };
            }
            // A new streak.
            next.open = true;
            next.strikes = 0;
            next.streak += 1;
            next.opened_at = now;
            next.failures = 1;
            next.first_failure = Some(obs.run.clone());
            next.fixed_by = None;
            next.resolved_at = None;
            next.acked = None;
            next.escalated_at = None;
            next.rerun = None;
            next.flapping = flapping;
            if flapping && next.message.is_some() {
                // Flapping: the one message comes back to life instead of a new post.
                let action = if next.muted(now) { Action::Muted } else { Action::Edit };
                return Decision { next: Some(next), action };
            }
            next.message = None;
            next.mentioned = Vec::new();
            let action = if next.muted(now) { Action::Muted } else { Action::Post };
            Decision { next: Some(next), action }
        }
        Outcome::Success => {
            next.latest_passing = false;
            next.strikes = 0;
            if !base.open {
                return Decision { next: Some(next), action: Action::Record };
            }
            if flapping {
                // Shown as flapping in the one message; no resolve each time.
                next.flapping = true;
                next.latest_passing = true;
                let action = if next.message.is_some() && !next.muted(now) { Action::Edit } else { Action::Record };
                return Decision { next: Some(next), action };
            }
            next.fixed_by = Some(obs.run.clone());
            resolve(&mut next, now);
            let action = if next.message.is_some() { Action::Resolve } else { Action::Record };
            Decision { next: Some(next), action }
        }
        Outcome::Neutral => Decision::nothing("neutral"),
    }
}

/// Closes the open streak of `next` at `now` and files it in the history.
fn resolve(next: &mut Incident, now: u64) {
    next.open = false;
    next.latest_passing = false;
    next.flapping = false;
    next.resolved_at = Some(now);
    // "until fixed" ends here; a timed mute runs on.
    if next.mute.is_some_and(|m| m.until.is_none()) {
        next.mute = None;
    }
    if let Some(first) = &next.first_failure {
        next.history.push(Streak {
            streak: next.streak,
            opened_at: next.opened_at,
            first_failure_completed_at: first.completed_at,
            message_posted_at: next.message.map(|m| m.posted_at),
            resolved_at: now,
            failures: next.failures,
        });
        let excess = next.history.len().saturating_sub(HISTORY);
        next.history.drain(..excess);
    }
}

/// For the tick: a flapping incident whose newest run passed and whose flips have left the window
/// is resolved now (the success that would have resolved it was damped).
pub fn calm(incident: &Incident, now: u64, policy: Policy) -> Option<Decision> {
    if !(incident.open && incident.flapping && incident.latest_passing) {
        return None;
    }
    let window = policy.flap_minutes.saturating_mul(60);
    let recent = incident.flips.iter().filter(|t| now.saturating_sub(**t) < window).count();
    if recent > policy.flap_count as usize {
        return None;
    }
    let mut next = incident.next_version(now);
    next.flips.retain(|t| now.saturating_sub(*t) < window);
    next.fixed_by = next.fixed_by.clone().or_else(|| {
        next.latest_failure.clone().map(|mut r| {
            r.order = next.latest;
            r.conclusion = "success".into();
            r.detail = None;
            r
        })
    });
    resolve(&mut next, now);
    let action = if next.message.is_some() { Action::Resolve } else { Action::Record };
    Some(Decision { next: Some(next), action })
}

/// Whether the tick should escalate this incident now.
pub fn needs_escalation(incident: &Incident, now: u64, escalate_minutes: u64) -> bool {
    incident.open
        && incident.message.is_some()
        && incident.acked.is_none()
        && incident.escalated_at.is_none()
        && !incident.muted(now)
        && now.saturating_sub(incident.opened_at) >= escalate_minutes.saturating_mul(60)
}

/// The last [`LOG_TAIL_LINES`] lines of a job log, redacted, at most [`LOG_TAIL_CHARS`]
/// characters (cut at the front: the end of a log is where it failed).
pub fn log_tail(log: &str) -> String {
    let redacted = crate::redact::redact(log);
    let lines: Vec<&str> = redacted.lines().collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    // GitHub prefixes each line with a timestamp; it only takes room.
    let tail: Vec<&str> = lines[start..].iter().map(|l| strip_timestamp(l)).collect();
    let mut text = tail.join("\n").replace("```", "`\u{200b}``");
    let count = text.chars().count();
    if count > LOG_TAIL_CHARS {
        text = format!("…{}", text.chars().skip(count - LOG_TAIL_CHARS + 1).collect::<String>());
    }
    text
}

fn strip_timestamp(line: &str) -> &str {
    match line.split_once(' ') {
        Some((ts, rest)) if ts.len() >= 20 && ts.as_bytes().get(4) == Some(&b'-') && ts.ends_with('Z') => rest,
        _ => line,
    }
}

/// Discord users to mention for a failure: the run's actor and the head commit's author, through
/// `GITHUB_DISCORD_USERS`. Each at most once, in that order.
pub fn culprits(run: &RunRef, users: &[(String, u64)]) -> Vec<u64> {
    let mut out = Vec::new();
    for login in [run.actor.as_deref(), run.commit_author.as_deref()].into_iter().flatten() {
        let login = login.to_ascii_lowercase();
        if let Some((_, id)) = users.iter().find(|(l, _)| *l == login)
            && !out.contains(id)
        {
            out.push(*id);
        }
    }
    out
}

const RED: u32 = 0xE0_1E_5A;
const AMBER: u32 = 0xF2_C7_44;
const GREEN: u32 = 0x2E_B6_7D;
const GREY: u32 = 0x99_AA_B5;

fn short_sha(sha: &str) -> &str {
    sha.char_indices().nth(7).map_or(sha, |(i, _)| &sha[..i])
}

/// The incident's name and scope (`CI`, `main`) as text for a message: GitHub's names are not
/// markdown.
fn shown_name(key: &IncidentKey) -> (String, String) {
    (text(&key.name()).into_owned(), text(key.scope()).into_owned())
}

fn run_label(run: &RunRef) -> String {
    let label = if run.run_number > 0 {
        if run.attempt > 1 {
            format!("#{} (attempt {})", run.run_number, run.attempt)
        } else {
            format!("#{}", run.run_number)
        }
    } else {
        "deployment".to_string()
    };
    match run.url.as_deref().and_then(crate::message::link) {
        Some(u) => format!("[{label}]({u})"),
        None => label,
    }
}

/// The incident message: an embed that says where it stands, the culprits in `content` (mentioned
/// by name, so `allowed_mentions` names exactly them), and, while open, its buttons. An edit with
/// it replaces everything, so a resolved incident loses its buttons. Every name GitHub sent is
/// shown as text ([`crate::markdown`]).
pub fn render(incident: &Incident, now: u64) -> Message {
    let key = &incident.key;
    let failing = incident.latest_failure.as_ref().or(incident.first_failure.as_ref());
    let endpoint = match &key.subject {
        Subject::Endpoint { endpoint } => Some(text(endpoint)),
        _ => None,
    };
    let (name, scope) = shown_name(key);
    let (title, colour) = if let Some(e) = endpoint.as_ref().filter(|_| !incident.flapping) {
        if incident.open {
            (format!("❌ Endpoint unhealthy: {e}"), RED)
        } else {
            (format!("✅ Resolved: {e} is healthy"), GREEN)
        }
    } else if !incident.open {
        (format!("✅ Resolved: {name} on {scope}"), GREEN)
    } else if incident.flapping {
        (format!("🔁 Flapping: {name} on {scope}"), AMBER)
    } else {
        let conclusion = text(failing.map_or("failure", |r| r.conclusion.as_str()));
        (format!("❌ {name} on {scope}: {conclusion}"), RED)
    };
    let muted = incident.open && incident.muted(now);
    let mut embed = Embed::new(title).colour(if muted { GREY } else { colour });
    embed = embed.field("Repository", text(&key.repository), true);
    match &key.subject {
        Subject::Workflow { workflow, branch } => {
            embed = embed.field("Workflow", text(workflow), true).field("Branch", text(branch), true);
        }
        Subject::Deployment { environment } => embed = embed.field("Environment", text(environment), true),
        Subject::Endpoint { endpoint } => {
            embed = embed.field("Endpoint", text(endpoint), true);
            if let Some(u) = failing.and_then(|r| r.url.as_deref()) {
                embed = embed.field("URL", u, false);
            }
        }
    }
    if let Some(run) = failing {
        if let Some(c) = &run.commit {
            embed = embed.field("Commit", inline_code(short_sha(c)), true);
        }
        if let Some(a) = &run.actor {
            embed = embed.field("Actor", text(a), true);
        }
        embed = embed.field(if endpoint.is_some() { "Problem" } else { "Conclusion" }, text(&run.conclusion), true);
        if endpoint.is_none() {
            let name = if incident.failures > 1 { "Latest failing run" } else { "Run" };
            embed = embed.field(name, run_label(run), true);
            if let Some(u) = &run.url {
                embed = embed.url(u);
            }
        }
    }
    if incident.failures > 1 {
        let since = crate::clock::relative(incident.opened_at, now);
        embed = embed.field("Failures", format!("{} since {since}", incident.failures), true);
    }
    if incident.flapping {
        let latest = if incident.latest_passing { "passed" } else { "failed" };
        embed =
            embed.field("Flapping", format!("{} flips recently; the latest run {latest}", incident.flips.len()), false);
    }
    if let Some(detail) = failing.and_then(|r| r.detail.as_ref()) {
        // escaped, so that a `]` in a name cannot end the link text below
        let mut place = text(detail.job.as_deref().unwrap_or_default()).into_owned();
        if let Some(step) = &detail.step {
            place = format!("{place} › {}", text(step));
        }
        if let Some(u) = detail.job_url.as_deref().and_then(crate::message::link) {
            place = format!("[{place}]({u})");
        }
        if !place.is_empty() {
            embed = embed.field("Failing job", place, false);
        }
        if let Some(tail) = detail.log_tail.as_deref().filter(|t| !t.trim().is_empty()) {
            embed = embed.field("Log tail", format!("```\n{tail}\n```"), false);
        }
    }
    if !incident.open
        && let (Some(fix), Some(resolved_at)) = (&incident.fixed_by, incident.resolved_at)
    {
        let mut fixed = run_label(fix);
        if let Some(c) = &fix.commit {
            fixed = format!("{fixed} at {}", inline_code(short_sha(c)));
        }
        embed = embed.field("Fixed by", fixed, true).field(
            "Time to recover",
            duration(resolved_at.saturating_sub(incident.opened_at)),
            true,
        );
    }
    if let Some(r) = incident.rerun {
        embed = embed.field("Re-run", format!("requested by <@{}> <t:{}:R>", r.user_id, r.at), false);
    }
    if let Some(a) = incident.acked {
        embed = embed.field("Acknowledged", format!("by <@{}> <t:{}:R>", a.user_id, a.at), false);
    }
    if let Some(m) = incident.mute.filter(|m| m.active(now)) {
        let until = m.until.map_or_else(|| "until fixed".to_string(), |u| format!("until <t:{u}:t>"));
        embed = embed.field("Muted", format!("by <@{}> {until}", m.by), false);
    }
    if let Some(run) = failing {
        embed = embed.field("Trace", format!("`{}`", run.trace_id), false);
    }
    embed = embed.footer(format!("incident {}", incident.streak_id()));
    let mut content: Vec<String> = incident.mention_role.iter().map(|r| format!("<@&{r}>")).collect();
    content.extend(incident.mentioned.iter().map(|u| format!("<@{u}>")));
    let mut message = Message::text(content.join(" ")).with_embed(embed).replacing();
    for user in &incident.mentioned {
        message = message.mention_user(*user);
    }
    if let Some(role) = incident.mention_role {
        message = message.mention_role(role);
    }
    if incident.open {
        for row in buttons(incident, now).chunks(crate::message::MAX_PER_ROW) {
            message = message.with_row(row.to_vec());
        }
    }
    message
}

fn buttons(incident: &Incident, now: u64) -> Vec<Component> {
    let id = incident.streak_id();
    let mut row = Vec::new();
    if matches!(incident.key.subject, Subject::Workflow { .. }) {
        row.push(Component::button(
            "Re-run failed jobs",
            ButtonStyle::Primary,
            CustomId::IncidentRerun(id.clone()).to_string(),
        ));
    }
    if incident.acked.is_none() {
        row.push(Component::button(
            "Acknowledge",
            ButtonStyle::Secondary,
            CustomId::IncidentAck(id.clone()).to_string(),
        ));
    }
    if incident.muted(now) {
        row.push(Component::button("Unmute", ButtonStyle::Secondary, CustomId::IncidentUnmute(id).to_string()));
    } else {
        for d in MuteFor::CHOICES {
            let label = format!("Mute {}", d.label());
            row.push(Component::button(
                label,
                ButtonStyle::Secondary,
                CustomId::IncidentMute(id.clone(), Some(d)).to_string(),
            ));
        }
    }
    row
}

/// The one short reply that tells the channel the incident is resolved (edits do not notify).
pub fn resolved_reply(incident: &Incident) -> Message {
    let recover = incident.resolved_at.map(|r| duration(r.saturating_sub(incident.opened_at))).unwrap_or_default();
    let fix = incident.fixed_by.as_ref().map(run_label).unwrap_or_default();
    let (name, scope) = shown_name(&incident.key);
    Message::text(format!("✅ Resolved: {name} on {scope} after {recover} ({fix})."))
}

/// The one escalation reply: mentions the role, and only it.
pub fn escalation_reply(incident: &Incident, role: Option<u64>, now: u64) -> Message {
    let open_for = duration(now.saturating_sub(incident.opened_at));
    let (name, scope) = shown_name(&incident.key);
    let text = format!("⏰ {name} on {scope} has been failing for {open_for} and nobody has acknowledged it.");
    match role {
        Some(r) => Message::text(format!("<@&{r}> {text}")).mention_role(r),
        None => Message::text(text),
    }
}

/// Failure streaks of one workflow (or deployment environment) in a window: what
/// `valinectl incidents` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowStats {
    pub repository: String,
    /// `workflow` or `deploy:environment`.
    pub workflow: String,
    /// Failure streaks opened in the window (each one incident message).
    pub incidents: u64,
    /// Failing runs in those streaks.
    pub failures: u64,
    /// Mean time to recover: first failure's completion → resolution, over resolved streaks.
    pub mttr_secs: Option<u64>,
    /// Mean time to detect: first failure's completion → incident message posted.
    pub mttd_secs: Option<u64>,
}

fn mean(values: &[u64]) -> Option<u64> {
    (!values.is_empty()).then(|| values.iter().sum::<u64>() / values.len() as u64)
}

/// Per workflow (and repository), over the streaks opened at or after `since`.
pub fn stats(incidents: &[Incident], since: u64) -> Vec<WorkflowStats> {
    let mut groups: std::collections::BTreeMap<(String, String), Vec<Streak>> = Default::default();
    for incident in incidents {
        let entry = groups.entry((incident.key.repository.clone(), incident.key.name())).or_default();
        entry.extend(incident.streaks().into_iter().filter(|s| s.opened_at >= since));
    }
    groups
        .into_iter()
        .filter(|(_, streaks)| !streaks.is_empty())
        .map(|((repository, workflow), streaks)| {
            let recover: Vec<u64> = streaks
                .iter()
                .filter(|s| s.resolved_at > 0)
                .map(|s| s.resolved_at.saturating_sub(s.first_failure_completed_at.min(s.opened_at)))
                .collect();
            let detect: Vec<u64> = streaks
                .iter()
                .filter_map(|s| s.message_posted_at.map(|p| p.saturating_sub(s.first_failure_completed_at)))
                .collect();
            WorkflowStats {
                repository,
                workflow,
                incidents: streaks.len() as u64,
                failures: streaks.iter().map(|s| s.failures).sum(),
                mttr_secs: mean(&recover),
                mttd_secs: mean(&detect),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> IncidentKey {
        IncidentKey::workflow(9, "acme/widget", "CI", "main")
    }

    fn obs(outcome: Outcome, number: u64, attempt: u64) -> Observation {
        Observation {
            key: key(),
            outcome,
            run: RunRef {
                order: Order::new(number, attempt),
                run_id: 1000 + number,
                run_number: number,
                attempt,
                conclusion: match outcome {
                    Outcome::Failure => "failure",
                    Outcome::Success => "success",
                    Outcome::Neutral => "cancelled",
                }
                .into(),
                url: Some(format!("https://github.com/acme/widget/actions/runs/{}", 1000 + number)),
                commit: Some("3f1c9a7e0d2b4c6a8e9f0a1b2c3d4e5f60718293".into()),
                actor: Some("octocat".into()),
                commit_author: Some("Hubot".into()),
                completed_at: 1_000,
                trace_id: format!("t-{number}"),
                detail: None,
            },
        }
    }

    /// Applies observations in order, posting a message when told to.
    fn run(steps: &[(Outcome, u64, u64)], policy: Policy) -> (Option<Incident>, Vec<Action>) {
        let mut state: Option<Incident> = None;
        let mut actions = Vec::new();
        for (i, (outcome, n, a)) in steps.iter().enumerate() {
            let now = 10_000 + i as u64 * 60;
            let d = decide(state.as_ref(), &obs(*outcome, *n, *a), now, policy);
            if let Some(mut next) = d.next {
                if d.action == Action::Post {
                    next.message = Some(MessageRef { channel_id: 9, message_id: 77, posted_at: now, guild_id: None });
                }
                state = Some(next);
            }
            actions.push(d.action);
        }
        (state, actions)
    }

    use Outcome::{Failure as F, Neutral as N, Success as S};

    #[test]
    fn decision_table() {
        let p = Policy::default();
        type Case = (&'static str, Vec<(Outcome, u64, u64)>, Vec<&'static str>, bool);
        let cases: Vec<Case> = vec![
            ("first failure posts", vec![(F, 1, 1)], vec!["post"], true),
            ("failures edit", vec![(F, 1, 1), (F, 2, 1), (F, 3, 1)], vec!["post", "edit", "edit"], true),
            ("newer success resolves", vec![(F, 11, 1), (S, 12, 1)], vec!["post", "resolve"], false),
            ("older success changes nothing", vec![(F, 11, 1), (S, 10, 1)], vec!["post", "nothing"], true),
            ("equal order changes nothing", vec![(F, 11, 1), (S, 11, 1)], vec!["post", "nothing"], true),
            ("a re-run attempt is newer", vec![(F, 11, 1), (S, 11, 2)], vec!["post", "resolve"], false),
            ("duplicate failure", vec![(F, 11, 1), (F, 11, 1)], vec!["post", "nothing"], true),
            ("cancelled opens nothing", vec![(N, 1, 1)], vec!["nothing"], false),
            ("skipped/cancelled resolve nothing", vec![(F, 1, 1), (N, 2, 1)], vec!["post", "nothing"], true),
            ("success without incident is recorded", vec![(S, 5, 1)], vec!["record"], false),
            (
                "older failure after a success opens nothing",
                vec![(S, 11, 1), (F, 10, 1)],
                vec!["record", "nothing"],
                false,
            ),
            (
                "new streak after resolve posts again",
                vec![(F, 1, 1), (S, 2, 1), (F, 3, 1)],
                vec!["post", "resolve", "post"],
                true,
            ),
            (
                "replay after resolve changes nothing",
                vec![(F, 1, 1), (S, 2, 1), (F, 1, 1)],
                vec!["post", "resolve", "nothing"],
                false,
            ),
        ];
        for (name, steps, expected, open) in cases {
            let (state, actions) = run(&steps, p);
            let got: Vec<&str> = actions
                .iter()
                .map(|a| match a {
                    Action::Nothing(_) => "nothing",
                    Action::Record => "record",
                    Action::Post => "post",
                    Action::Edit => "edit",
                    Action::Resolve => "resolve",
                    Action::Muted => "muted",
                })
                .collect();
            assert_eq!(got, expected, "{name}");
            assert_eq!(state.as_ref().is_some_and(|s| s.open), open, "{name}");
        }
    }

    /// Every message an incident shows, built from the longest names GitHub allows and from odd
    /// values (no branch, no commit, a `target_url` that is not a URL, a huge log tail), keeps to
    /// Discord's rules: Discord would refuse the post otherwise and the alert would be lost.
    #[test]
    fn every_message_keeps_to_discords_rules_with_the_longest_and_oddest_values() {
        use crate::message::violations;
        let long_name = "ワークフロー".repeat(50);
        let repo = format!("{}/{}", "o".repeat(39), "r".repeat(100));
        let keys = [
            IncidentKey::workflow(9, &repo, &long_name, &"b".repeat(255)),
            IncidentKey::workflow(9, "a/b", "", ""),
            IncidentKey::deployment(9, &repo, &long_name),
        ];
        let detail = FailureDetail {
            job: Some("j".repeat(300)),
            step: Some("s".repeat(300)),
            job_url: Some("javascript:alert(1)".into()),
            log_tail: Some("```\n".repeat(400) + &"x".repeat(20_000)),
        };
        type Odd<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, Option<FailureDetail>);
        let odd: [Odd; 3] = [
            (Some("not a url"), Some(""), Some(""), None),
            (None, None, None, Some(FailureDetail::default())),
            (
                Some(&*format!("https://github.com/{}", "p".repeat(3000))),
                Some(&*"f".repeat(40)),
                Some(&*"a".repeat(39)),
                Some(detail),
            ),
        ];
        let check = |what: &str, m: crate::message::Message| {
            let v = violations(&m.to_json());
            assert!(v.is_empty(), "{what}: {v:?}");
        };
        for key in &keys {
            for (url, commit, actor, detail) in &odd {
                let at = |outcome, n| {
                    let mut o = obs(outcome, n, 1);
                    o.key = key.clone();
                    o.run.url = url.map(str::to_string);
                    o.run.commit = commit.map(str::to_string);
                    o.run.actor = actor.map(str::to_string);
                    o.run.commit_author = actor.map(str::to_string);
                    o.run.detail = detail.clone();
                    o
                };
                let policy = Policy::default();
                let mut open = decide(None, &at(F, 1), 10_000, policy).next.unwrap();
                open.message = Some(MessageRef { channel_id: 9, message_id: 77, posted_at: 10_000, guild_id: Some(1) });
                check("first failure", render(&open, 10_060));
                let again = decide(Some(&open), &at(F, 2), 10_120, policy).next.unwrap();
                check("later failure", render(&again, 10_180));
                check("escalation", escalation_reply(&again, Some(4242), 99_999));
                let resolved = decide(Some(&again), &at(S, 3), 10_240, policy).next.unwrap();
                check("resolved", render(&resolved, 10_300));
                check("resolved reply", resolved_reply(&resolved));
            }
        }
    }

    #[test]
    fn failures_are_counted_and_the_latest_is_kept() {
        let (state, _) = run(&[(F, 1, 1), (F, 3, 1), (F, 2, 1)], Policy::default());
        let s = state.unwrap();
        assert_eq!(s.failures, 2, "run 2 arrived after run 3: older, ignored");
        assert_eq!(s.latest_failure.unwrap().run_number, 3);
        assert_eq!(s.first_failure.unwrap().run_number, 1);
        assert_eq!(s.version, 2);
    }

    #[test]
    fn flapping_is_shown_without_resolves_or_posts() {
        let p = Policy { flap_count: 2, flap_minutes: 60 };
        let steps = [(F, 1, 1), (S, 2, 1), (F, 3, 1), (S, 4, 1), (F, 5, 1), (S, 6, 1), (F, 7, 1), (S, 8, 1)];
        let (state, actions) = run(&steps, p);
        // 1 post, 1 resolve, 1 post (new streak) … then flapping: edits only
        // flips: S2, F3, S4 (3 > 2: flapping) … then edits only
        assert_eq!(&actions[..3], &[Action::Post, Action::Resolve, Action::Post], "{actions:?}");
        assert!(actions[3..].iter().all(|a| *a == Action::Edit), "{actions:?}");
        let s = state.unwrap();
        assert!(s.flapping && s.open && s.latest_passing);
        assert!(render(&s, 20_000).to_json().to_string().contains("Flapping"));
        // once the flips leave the window, the tick resolves it
        assert!(calm(&s, 10_500, p).is_none());
        let d = calm(&s, 10_000 + 3 * 3600, p).unwrap();
        assert_eq!(d.action, Action::Resolve);
        assert!(!d.next.unwrap().open);
    }

    #[test]
    fn muted_failures_post_nothing_and_still_resolve() {
        let (state, _) = run(&[(F, 1, 1)], Policy::default());
        let mut s = state.unwrap();
        s.mute = Some(Mute { by: 5, at: 10_000, until: None });
        let d = decide(Some(&s), &obs(F, 2, 1), 10_100, Policy::default());
        assert_eq!(d.action, Action::Muted);
        let d = decide(d.next.as_ref(), &obs(S, 3, 1), 10_200, Policy::default());
        assert_eq!(d.action, Action::Resolve);
        assert!(d.next.as_ref().unwrap().mute.is_none(), "until fixed ends at the fix");
        // a timed mute that ran out no longer mutes
        s.mute = Some(Mute { by: 5, at: 10_000, until: Some(10_050) });
        assert_eq!(decide(Some(&s), &obs(F, 2, 1), 10_100, Policy::default()).action, Action::Edit);
        // a new streak while muted posts nothing, and is still tracked
        let mut fresh = Incident::new(&key());
        fresh.mute = Some(Mute { by: 5, at: 10_000, until: Some(99_999) });
        let d = decide(Some(&fresh), &obs(F, 1, 1), 10_100, Policy::default());
        assert_eq!(d.action, Action::Muted);
        assert!(d.next.unwrap().open);
    }

    #[test]
    fn keys_ids_and_custom_ids() {
        let a = key();
        assert_eq!(a.id(), key().id());
        assert_eq!(a.id().len(), 12);
        assert_ne!(a.id(), IncidentKey::workflow(10, "acme/widget", "CI", "main").id(), "per channel");
        assert_ne!(a.id(), IncidentKey::deployment(9, "acme/widget", "main").id());
        let (state, _) = run(&[(F, 1, 1)], Policy::default());
        let s = state.unwrap();
        let m = render(&s, 10_000).to_json();
        let ids: Vec<&str> = m["components"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row["components"].as_array().unwrap())
            .map(|b| b["custom_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 6, "{m}");
        for id in ids {
            let parsed = CustomId::parse(id).unwrap();
            assert_eq!(parsed.id(), s.streak_id(), "{id}");
        }
    }

    #[test]
    fn message_mentions_exactly_the_culprits() {
        let (state, _) = run(&[(F, 1, 1)], Policy::default());
        let mut s = state.unwrap();
        let users = vec![("octocat".to_string(), 111), ("hubot".to_string(), 222), ("other".to_string(), 333)];
        s.mentioned = culprits(s.first_failure.as_ref().unwrap(), &users);
        assert_eq!(s.mentioned, vec![111, 222]);
        let m = render(&s, 10_000).to_json();
        assert_eq!(m["content"], "<@111> <@222>");
        assert_eq!(m["allowed_mentions"], json!({"parse": [], "users": ["111", "222"]}));
        let text = m.to_string();
        for needle in
            ["acme/widget", "CI", "main", "3f1c9a7", "octocat", "failure", "runs/1001", "t-1", "Re-run failed jobs"]
        {
            assert!(text.contains(needle), "{needle} missing");
        }
        s.mentioned.clear();
        assert_eq!(render(&s, 10_000).to_json()["allowed_mentions"], json!({"parse": []}));
    }

    /// Every string a message shows: content, titles, field names and values, footers.
    fn shown(m: &serde_json::Value) -> Vec<String> {
        let mut out = vec![m["content"].as_str().unwrap_or_default().to_string()];
        for e in m["embeds"].as_array().into_iter().flatten() {
            out.push(e["title"].as_str().unwrap_or_default().to_string());
            out.push(e["footer"]["text"].as_str().unwrap_or_default().to_string());
            for f in e["fields"].as_array().into_iter().flatten() {
                out.push(f["name"].as_str().unwrap_or_default().to_string());
                out.push(f["value"].as_str().unwrap_or_default().to_string());
            }
        }
        out
    }

    /// Names GitHub sends are text: a workflow named like a masked link renders no link, a branch
    /// named `@everyone` pings nobody and reads as no mention, markdown in a job, step or actor
    /// stays literal, and a backtick in a commit id cannot close the code span around it.
    #[test]
    fn github_names_render_as_text_not_markdown() {
        let mut o = obs(F, 1, 1);
        o.key = IncidentKey::workflow(9, "acme/widget", "[click](https://evil.example)", "@everyone");
        o.run.actor = Some("**bold** <@123> <@&456> <#789> @here".into());
        o.run.commit = Some("a`b[x](https://evil.example)`".into());
        o.run.detail = Some(FailureDetail {
            job: Some("# heading".into()),
            step: Some("[step](https://evil.example) ||spoiler|| ~~x~~ __u__".into()),
            job_url: Some("https://github.com/acme/widget/actions/runs/1/job/2".into()),
            log_tail: None,
        });
        let policy = Policy::default();
        let mut open = decide(None, &o, 10_000, policy).next.unwrap();
        open.message = Some(MessageRef { channel_id: 9, message_id: 77, posted_at: 10_000, guild_id: None });
        let mut later = o.clone();
        later.outcome = S;
        later.run.order = Order::new(2, 1);
        let resolved = decide(Some(&open), &later, 10_120, policy).next.unwrap();
        let messages = [
            render(&open, 10_060).to_json(),
            render(&resolved, 10_200).to_json(),
            resolved_reply(&resolved).to_json(),
            escalation_reply(&open, None, 99_999).to_json(),
        ];
        for m in &messages {
            assert_eq!(m["allowed_mentions"], json!({"parse": []}), "{m}");
            for text in shown(m) {
                for bad in ["[click](", "[step](", "@everyone", "@here", "<@123>", "<@&456>", "<#789>", "**bold**"] {
                    assert!(!text.contains(bad), "{bad:?} shows in {text:?}");
                }
                assert!(
                    !text.contains("||spoiler||") && !text.contains("~~x~~") && !text.contains("__u__"),
                    "{text:?}"
                );
                assert!(!text.starts_with("# "), "{text:?}");
            }
        }
        let first = &messages[0]["embeds"][0];
        assert!(first["title"].as_str().unwrap().contains("click"), "the name is still shown: {first}");
        let field = |name: &str| {
            first["fields"].as_array().unwrap().iter().find(|f| f["name"] == name).unwrap()["value"].as_str().unwrap()
        };
        assert_eq!(field("Commit").matches('`').count(), 2, "only the code span's own backticks");
        assert!(field("Failing job").starts_with("[\\# heading"), "{}", field("Failing job"));
        assert!(field("Branch").contains("everyone") && field("Actor").contains("bold"));
    }

    #[test]
    fn log_tail_is_redacted_short_and_fenced_safely() {
        let mut log = String::new();
        for i in 0..40 {
            log.push_str(&format!("2024-01-01T00:00:{:02}.0000000Z line {i}\n", i % 60));
        }
        log.push_str("2024-01-01T00:01:00.0000000Z token=ghp_abcdefghijklmnopqrstuvwxyz0123456789\n```\n");
        let tail = log_tail(&log);
        assert!(!tail.contains("ghp_abcdefghijklmnopqrstuvwxyz0123456789"), "{tail}");
        assert!(!tail.contains("line 20"), "only the last 15 lines");
        assert!(tail.contains("line 39"));
        assert!(!tail.contains("```"));
        assert!(!tail.contains("2024-01-01T"));
        let long = "x".repeat(5000);
        assert!(log_tail(&long).chars().count() <= LOG_TAIL_CHARS);
    }

    #[test]
    fn escalation_once_and_only_when_unacknowledged() {
        let (state, _) = run(&[(F, 1, 1)], Policy::default());
        let mut s = state.unwrap();
        assert!(!needs_escalation(&s, s.opened_at + 29 * 60, 30));
        assert!(needs_escalation(&s, s.opened_at + 30 * 60, 30));
        s.acked = Some(Stamp { user_id: 1, at: 1 });
        assert!(!needs_escalation(&s, s.opened_at + 31 * 60, 30));
        s.acked = None;
        s.escalated_at = Some(1);
        assert!(!needs_escalation(&s, s.opened_at + 31 * 60, 30));
        let m = escalation_reply(&s, Some(42), s.opened_at + 31 * 60).to_json();
        assert_eq!(m["allowed_mentions"], json!({"parse": [], "roles": ["42"]}));
    }

    #[test]
    fn statistics_per_workflow() {
        let p = Policy::default();
        // streak 1: failure completed at 1_000, posted at 10_000, resolved at 10_060
        let (state, _) = run(&[(F, 1, 1), (S, 2, 1), (F, 3, 1)], p);
        let s = state.unwrap();
        let stats = stats(std::slice::from_ref(&s), 0);
        assert_eq!(stats.len(), 1);
        let w = &stats[0];
        assert_eq!((w.workflow.as_str(), w.incidents, w.failures), ("CI", 2, 2));
        assert_eq!(w.mttr_secs, Some(10_060 - 1_000));
        assert_eq!(w.mttd_secs, Some((10_000 - 1_000 + 10_120 - 1_000) / 2));
        assert!(super::stats(&[s], 20_000).is_empty(), "nothing opened since");
    }
}

#[cfg(test)]
mod endpoint_tests {
    use super::*;

    fn check(outcome: Outcome, at: u64) -> Observation {
        Observation {
            key: IncidentKey::endpoint(9, "acme/widget", "api"),
            outcome,
            run: RunRef {
                order: Order::new(at, 0),
                conclusion: if outcome == Outcome::Failure { "answered 500".into() } else { "healthy".into() },
                url: Some("https://api.example.com/health".into()),
                completed_at: at,
                ..RunRef::default()
            },
        }
    }

    #[test]
    fn two_failed_checks_in_a_row_open_and_a_pass_resolves() {
        let p = Policy::default();
        assert_eq!(
            decide(None, &check(Outcome::Success, 100), 100, p).action,
            Action::Nothing("healthy, and nothing open")
        );
        let one = decide(None, &check(Outcome::Failure, 100), 100, p);
        assert_eq!(one.action, Action::Record);
        let one = one.next.unwrap();
        assert!(!one.open && one.strikes == 1);
        // a pass in between clears the strike
        let cleared = decide(Some(&one), &check(Outcome::Success, 400), 400, p).next.unwrap();
        assert_eq!((cleared.open, cleared.strikes), (false, 0));
        let again = decide(Some(&cleared), &check(Outcome::Failure, 700), 700, p).next.unwrap();
        let two = decide(Some(&again), &check(Outcome::Failure, 1000), 1000, p);
        assert_eq!(two.action, Action::Post);
        let mut open = two.next.unwrap();
        assert!(open.open && open.strikes == 0);
        let shown = render(&open, 1000).to_json().to_string();
        assert!(shown.contains("Endpoint unhealthy: api") && shown.contains("answered 500"), "{shown}");
        assert!(!shown.contains("Re-run"), "{shown}");
        assert!(shown.contains("Acknowledge"));
        open.message = Some(MessageRef { channel_id: 9, message_id: 1, posted_at: 1000, guild_id: None });
        let resolved = decide(Some(&open), &check(Outcome::Success, 1300), 1300, p);
        assert_eq!(resolved.action, Action::Resolve);
        let shown = render(resolved.next.as_ref().unwrap(), 1300).to_json().to_string();
        assert!(shown.contains("Resolved: api is healthy"), "{shown}");
        // an older check arriving late changes nothing
        assert!(decide(resolved.next.as_ref(), &check(Outcome::Failure, 1200), 1300, p).next.is_none());
    }
}
