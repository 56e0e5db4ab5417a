//! The Discord handler: verification, parsing, routing, the per-interaction context, and the
//! deferred jobs. Transport-neutral: `lambda.rs` and `valinectl serve` feed it requests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use serenity::model::application::{
    CommandDataOption, CommandDataOptionValue, CommandInteraction, ComponentInteraction, Interaction, ModalInteraction,
};
use tracing::Instrument;
use valine_clients::discord_api::Discord;
use valine_clients::github_api::GitHub;
use valine_domain::alert::{Alert, AlertKind, Severity};
use valine_domain::audit::AuditRecord;
use valine_domain::authz::Caller;
use valine_domain::clock::now_secs;
use valine_domain::config::{Config, Feature};
use valine_domain::metrics::Metrics;
use valine_domain::trace::{StepStatus, TraceCache, TraceRecorder};
use valine_service::alerting::Alerter;
use valine_service::http::{HttpRequest, HttpResponse};
use valine_store::{StoreError, Stores};

use crate::commands;
use crate::jobs::{Job, JobContext, Jobs};
use crate::response;
use crate::verify::Verifier;

pub const SERVICE: &str = "discord-handler";
/// Everything an interaction does before answering fits in this, leaving room for the network
/// inside Discord's 3 s.
pub const ANSWER_BUDGET: Duration = Duration::from_millis(2500);
/// How long `/status` waits for GitHub before it defers to a job.
pub const STATUS_INLINE_BUDGET: Duration = Duration::from_millis(2000);
/// Discord's per-attempt timeout for calls made while answering.
pub const DISCORD_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(2000);
/// GitHub's read timeout: generous, since slow calls run in jobs.
pub const GITHUB_READ_TIMEOUT: Duration = Duration::from_secs(25);
/// How many users' last traces each container keeps in memory.
pub const TRACE_CACHE_USERS: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] valine_domain::config::ConfigError),
    #[error("DISCORD_PUBLIC_KEY is not a valid Ed25519 public key")]
    PublicKey,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    GitHub(#[from] valine_clients::github_api::GitHubError),
}

/// Everything the handler is built from; tests assemble it by hand.
pub struct AppParts {
    pub config: Config,
    pub stores: Stores,
    pub discord: Arc<dyn Discord>,
    pub github: Option<Arc<dyn GitHub>>,
    pub jobs: Arc<dyn Jobs>,
    pub metrics: Metrics,
}

pub struct App {
    pub config: Arc<Config>,
    verifier: Verifier,
    pub stores: Stores,
    pub discord: Arc<dyn Discord>,
    pub github: Option<Arc<dyn GitHub>>,
    pub jobs: Arc<dyn Jobs>,
    pub alerter: Alerter,
    pub metrics: Metrics,
    pub traces: TraceCache,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("stores", &self.stores).finish_non_exhaustive()
    }
}

impl App {
    pub fn new(parts: AppParts) -> Result<Self, InitError> {
        let key = parts.config.require_discord_public_key()?;
        let verifier = Verifier::new(key).ok_or(InitError::PublicKey)?;
        let alerter = Alerter::from_config(&parts.config, &parts.stores, parts.discord.clone(), parts.metrics.clone());
        Ok(Self {
            config: Arc::new(parts.config),
            verifier,
            stores: parts.stores,
            discord: parts.discord,
            github: parts.github,
            jobs: parts.jobs,
            alerter,
            metrics: parts.metrics,
            traces: TraceCache::new(TRACE_CACHE_USERS),
        })
    }

    /// Builds every client from the configuration (once, at init).
    pub async fn from_config(
        config: Config,
        stores: Stores,
        jobs: Arc<dyn Jobs>,
        metrics: Metrics,
    ) -> Result<Self, InitError> {
        let discord = valine_clients::discord_api::from_config(&config, DISCORD_ATTEMPT_TIMEOUT);
        let github = valine_clients::github_api::from_config(&config, GITHUB_READ_TIMEOUT)?;
        Self::new(AppParts { config, stores, discord, github, jobs, metrics })
    }

    /// Routes one HTTP request: health checks by method and path, everything else is an
    /// interaction.
    pub async fn handle(&self, req: HttpRequest) -> HttpResponse {
        if req.method == http::Method::GET {
            let path = req.path.trim_end_matches('/');
            return if path.ends_with("/health/ready") {
                self.readiness().await
            } else if path.ends_with("/health") {
                valine_service::http::health(SERVICE)
            } else {
                HttpResponse::error(http::StatusCode::NOT_FOUND, "not found")
            };
        }
        if req.method != http::Method::POST {
            return HttpResponse::error(http::StatusCode::METHOD_NOT_ALLOWED, "interactions are POSTed");
        }
        self.handle_interaction(req).await
    }

    pub async fn readiness(&self) -> HttpResponse {
        let c = &self.config;
        let features = [
            ("status", c.missing_for(Feature::GitHubRuns)),
            ("relay", c.missing_for(Feature::Relay)),
            ("alerts", c.missing_for(Feature::Alerts)),
        ]
        .into_iter()
        .filter(|(_, m)| !m.is_empty())
        .collect();
        // Alerts switched on without their settings is a broken configuration, not a choice.
        let broken = if c.enable_alerts { c.missing_for(Feature::Alerts) } else { Vec::new() };
        valine_service::http::readiness(SERVICE, &broken, features, &self.stores).await
    }

    /// Verifies, parses and answers one interaction.
    pub async fn handle_interaction(&self, req: HttpRequest) -> HttpResponse {
        let started = Instant::now();
        if let Err(rejection) = self.verifier.verify(&req, now_secs()) {
            self.metrics.verification_failure();
            tracing::warn!(reason = rejection.message(), status = rejection.status().as_u16(), "interaction refused");
            return HttpResponse::error(rejection.status(), rejection.message());
        }
        #[derive(serde::Deserialize)]
        struct Envelope {
            #[serde(rename = "type")]
            kind: Option<u64>,
        }
        let kind = match serde_json::from_slice::<Envelope>(&req.body) {
            Ok(e) => e.kind,
            Err(_) => return HttpResponse::error(http::StatusCode::BAD_REQUEST, "body is not a JSON object"),
        };
        match kind {
            Some(1) => return HttpResponse::ok(&response::pong()),
            Some(2..=5) => {}
            _ => return HttpResponse::error(http::StatusCode::BAD_REQUEST, "unknown interaction type"),
        }
        let interaction: Interaction = match serde_json::from_slice(&req.body) {
            Ok(i) => i,
            Err(e) => {
                // Signed by Discord, but missing fields serenity's model requires (older or
                // partial shapes): answer from the envelope rather than fail the interaction.
                tracing::warn!(error = %e, "interaction could not be read in full; answered from its envelope");
                return HttpResponse::ok(&partial_answer(&req.body, kind));
            }
        };
        let answer = match interaction {
            Interaction::Ping(_) => response::pong(),
            Interaction::Command(ci) => self.command(ci, started).await,
            Interaction::Autocomplete(ci) => {
                // Logged, not stored: a trace per keystroke would push the command itself out of
                // the caller's /debug-last.
                let cmd = format!("autocomplete:/{}", ci.data.name);
                let rec = TraceRecorder::new(ci.user.id.get().to_string(), cmd.clone());
                let answer = commands::autocomplete(self, &ci);
                let choices = answer["data"]["choices"].as_array().map_or(0, Vec::len);
                tracing::info!(trace_id = %rec.trace_id(), user_id = %ci.user.id, cmd = %cmd, choices, "autocomplete answered");
                answer
            }
            Interaction::Component(ci) => self.component(ci, started).await,
            Interaction::Modal(mi) => self.modal(mi, started).await,
            _ => response::message("This kind of interaction is not supported.", true),
        };
        HttpResponse::ok(&answer)
    }

    async fn command(&self, ci: CommandInteraction, started: Instant) -> Value {
        let name = format!("/{}", ci.data.name);
        let mut ctx = Ctx::for_command(self, &ci, &name, started);
        let span = command_span(&ci.data.name, ctx.rec.trace_id(), ctx.user_id, &name);
        async {
            let opts = &ci.data.options;
            let answer = match ci.data.name.as_str() {
                "status" => commands::status::run(&mut ctx, opts).await,
                "diagnose" => commands::diagnose::run(&mut ctx, opts).await,
                "relay-send" => commands::relay::run_send(&mut ctx, opts).await,
                "relay-dm" => commands::relay::run_dm(&mut ctx, opts).await,
                "debug-last" => commands::debug_last::run(&mut ctx).await,
                _ => {
                    ctx.rec.note("route", StepStatus::Skipped, Some("unknown command".into()));
                    response::message("Unknown command", true)
                }
            };
            ctx.finish(&answer).await;
            answer
        }
        .instrument(span)
        .await
    }

    async fn component(&self, ci: ComponentInteraction, started: Instant) -> Value {
        let custom_id = ci.data.custom_id.clone();
        let mut ctx = Ctx::for_component(self, &ci, started);
        let span = tracing::info_span!("handle_component", trace_id = %ctx.rec.trace_id(), user_id = %ctx.user_id, cmd = %ctx.command);
        async {
            let answer = commands::relay::component(&mut ctx, &custom_id).await.unwrap_or_else(|| {
                ctx.rec.note("route", StepStatus::Skipped, Some("unrecognised custom_id".into()));
                response::message("This button is no longer recognised. Run the command again.", true)
            });
            ctx.finish(&answer).await;
            answer
        }
        .instrument(span)
        .await
    }

    /// The bot opens no forms, so a modal submit is always one it does not recognise; it still
    /// gets a trace and an answer.
    async fn modal(&self, mi: ModalInteraction, started: Instant) -> Value {
        let mut ctx = Ctx::for_modal(self, &mi, started);
        let span = tracing::info_span!("handle_modal", trace_id = %ctx.rec.trace_id(), user_id = %ctx.user_id, cmd = %ctx.command);
        async {
            ctx.rec.note("route", StepStatus::Skipped, Some("unrecognised custom_id".into()));
            let answer = response::message("This form is not recognised. Run the command again.", true);
            ctx.finish(&answer).await;
            answer
        }
        .instrument(span)
        .await
    }

    /// Runs a deferred job to the end; failures are told in Discord with the trace id.
    pub async fn run_job(&self, job: Job) {
        let ctx = job.ctx().clone();
        let span = tracing::info_span!(
            "run_job",
            trace_id = %ctx.trace.trace_id,
            user_id = %ctx.user_id,
            cmd = %ctx.trace.command,
            job = job.name()
        );
        async {
            let mut rec = TraceRecorder::resume(ctx.trace.clone());
            match job {
                Job::Status { ctx, count, workflow } => {
                    commands::status::run_job(self, &mut rec, &ctx, count, workflow.as_deref()).await
                }
                Job::Diagnose { ctx, correlation_id, frontend_url, api_base } => {
                    commands::diagnose::run_job(self, &mut rec, &ctx, correlation_id, frontend_url, api_base).await
                }
            }
            let trace = rec.snapshot();
            if let Err(e) = self.stores.traces.put(&trace).await {
                tracing::warn!(error = %e, "could not store the job's trace");
            }
            self.traces.put(trace);
            tracing::info!("job finished");
        }
        .instrument(span)
        .await
    }

    /// A deferred job failed: only its caller hears the details, as errors always are.
    ///
    /// Discord turns the first follow-up after a deferral into the deferred message itself, with
    /// the deferral's (public) visibility. So the "thinking…" message is first edited to a
    /// neutral note, which ends it; then the ephemeral follow-up with the error and the trace id
    /// is a message of its own; then the note is deleted. Should the follow-up fail, the deferred
    /// message says what went wrong instead, so that the caller is never left without an answer.
    pub async fn job_failed(&self, rec: &mut TraceRecorder, ctx: &JobContext, text: &str) {
        let content = format!("⚠️ {text}\n-# trace `{}`", rec.trace_id());
        let discord = self.discord.clone();
        let (app_id, token) = (ctx.application_id, ctx.token.as_str());
        let note = json!({
            "content": format!("⚠️ This did not work; the details were sent to <@{}> only.", ctx.user_id),
            "embeds": [],
            "allowed_mentions": {"parse": []},
        });
        if let Err(e) = rec.time("discord.edit_original", discord.edit_original(app_id, token, &note)).await {
            rec.fail(&e);
            tracing::error!(error = %e, "could not tell the caller that the job failed");
            return;
        }
        let private = json!({"content": content, "flags": 64, "allowed_mentions": {"parse": []}});
        match rec.time("discord.follow_up", discord.follow_up(app_id, token, &private)).await {
            Ok(_) => {
                if let Err(e) = rec.time("discord.delete_original", discord.delete_original(app_id, token)).await {
                    tracing::warn!(error = %e, "could not delete the deferred message; its neutral note stays");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not tell the caller privately; the deferred message says it");
                let public = json!({"content": content, "embeds": [], "allowed_mentions": {"parse": []}});
                if let Err(e) = rec.time("discord.edit_original", discord.edit_original(app_id, token, &public)).await {
                    rec.fail(&e);
                    tracing::error!(error = %e, "could not tell the caller that the job failed");
                }
            }
        }
    }

    /// Raises a critical alert about the bot itself, within `budget`.
    pub async fn internal_alert(
        &self,
        what: &'static str,
        title: &str,
        detail: &str,
        trace_id: &str,
        actor: &str,
        budget: Duration,
    ) {
        let alert = Alert {
            severity: if matches!(what, "audit_write_failed" | "store_unavailable") {
                Severity::Critical
            } else {
                Severity::Error
            },
            kind: AlertKind::Internal(what),
            title: title.to_string(),
            repository: self.config.github_repo.as_ref().map_or_else(|| "valine".to_string(), |r| r.to_string()),
            workflow: SERVICE.to_string(),
            branch: self.config.stage.clone(),
            commit: None,
            actor: Some(actor.to_string()),
            conclusion: None,
            run_url: None,
            trace_id: trace_id.to_string(),
            detail: Some(valine_domain::redact::redact(detail).into_owned()),
        };
        // The alerter keeps to the budget and logs what happened (`Alert sent` / `Alert failed`).
        self.alerter.raise(&alert, tokio::time::Instant::now() + budget).await;
    }
}

/// The span a command runs in: its name is the log lines' `fn` (`handle_diagnose`, …).
fn command_span(command: &str, trace_id: &str, user_id: u64, cmd: &str) -> tracing::Span {
    macro_rules! span {
        ($name:literal) => {
            tracing::info_span!($name, trace_id = %trace_id, user_id = %user_id, cmd = %cmd)
        };
    }
    match command {
        "status" => span!("handle_status"),
        "diagnose" => span!("handle_diagnose"),
        "relay-send" => span!("handle_relay_send"),
        "relay-dm" => span!("handle_relay_dm"),
        "debug-last" => span!("handle_debug_last"),
        _ => span!("handle_command"),
    }
}

/// The answer to an interaction that could not be read in full: nothing is run.
fn partial_answer(body: &[u8], kind: Option<u64>) -> Value {
    let name = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["data"]["name"].as_str().map(str::to_string))
        .unwrap_or_default();
    match kind {
        Some(4) => response::choices(&[]),
        Some(2) if ["status", "diagnose", "relay-send", "relay-dm", "debug-last"].contains(&name.as_str()) => {
            response::message("This command arrived incomplete and was not run. Try again.", true)
        }
        Some(2) => response::message("Unknown command", true),
        _ => response::message("This interaction is not recognised.", true),
    }
}

/// The [`Who`] of an interaction of any kind (they all carry these fields); `member` is the
/// guild member, boxed in some kinds and not in others.
macro_rules! who {
    ($interaction:expr, $member:expr) => {
        Who {
            user: &$interaction.user,
            member: $member,
            application_id: $interaction.application_id.get(),
            token: &$interaction.token,
            interaction_id: $interaction.id.get(),
            guild_id: $interaction.guild_id.map(|g| g.get()),
        }
    };
}

/// Who sent an interaction, and the ids needed to answer it.
struct Who<'i> {
    user: &'i serenity::model::user::User,
    member: Option<&'i serenity::model::guild::Member>,
    application_id: u64,
    token: &'i str,
    interaction_id: u64,
    guild_id: Option<u64>,
}

/// `component:relay` for the custom id `relay:confirm:…`: what a trace and the logs call it.
fn custom_id_command(kind: &str, custom_id: &str) -> String {
    custom_id.split(':').next().filter(|p| !p.is_empty()).map_or_else(|| kind.to_string(), |p| format!("{kind}:{p}"))
}

/// One interaction being answered.
pub struct Ctx<'a> {
    pub app: &'a App,
    pub rec: TraceRecorder,
    pub user_id: u64,
    pub user_name: String,
    /// `None` in a DM.
    pub roles: Option<Vec<u64>>,
    pub application_id: u64,
    pub token: String,
    pub interaction_id: u64,
    pub guild_id: Option<u64>,
    pub command: String,
    started: Instant,
}

impl<'a> Ctx<'a> {
    /// The context of one interaction by `user`, traced as `command`.
    fn new(app: &'a App, who: Who<'_>, command: String, started: Instant) -> Self {
        Self {
            app,
            rec: TraceRecorder::new(who.user.id.get().to_string(), command.clone()),
            user_id: who.user.id.get(),
            user_name: who.user.name.clone(),
            roles: who.member.map(|m| m.roles.iter().map(|r| r.get()).collect()),
            application_id: who.application_id,
            token: who.token.to_string(),
            interaction_id: who.interaction_id,
            guild_id: who.guild_id,
            command,
            started,
        }
    }

    fn for_command(app: &'a App, ci: &CommandInteraction, name: &str, started: Instant) -> Self {
        let who = who!(ci, ci.member.as_deref());
        Self::new(app, who, name.to_string(), started)
    }

    fn for_component(app: &'a App, ci: &ComponentInteraction, started: Instant) -> Self {
        let who = who!(ci, ci.member.as_ref());
        Self::new(app, who, custom_id_command("component", &ci.data.custom_id), started)
    }

    fn for_modal(app: &'a App, mi: &ModalInteraction, started: Instant) -> Self {
        let who = who!(mi, mi.member.as_ref());
        Self::new(app, who, custom_id_command("modal", &mi.data.custom_id), started)
    }

    pub fn caller(&self) -> Caller<'_> {
        Caller { user_id: self.user_id, roles: self.roles.as_deref() }
    }

    pub fn trace_id(&self) -> String {
        self.rec.trace_id().to_string()
    }

    /// Time left before the answer must go.
    pub fn remaining(&self) -> Duration {
        ANSWER_BUDGET.saturating_sub(self.started.elapsed())
    }

    /// Runs `fut` with at most `cap` of the time left; `None` when time ran out.
    pub async fn within<T>(&self, cap: Duration, fut: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::time::timeout(cap.min(self.remaining()), fut).await.ok()
    }

    /// A refusal: ephemeral, with the trace id.
    pub fn refuse(&mut self, text: &str) -> Value {
        self.rec.note("refused", StepStatus::Skipped, Some(text.to_string()));
        response::error(text, self.rec.trace_id())
    }

    /// A failure: recorded as the trace's error, told briefly with the trace id.
    pub fn fail(&mut self, text: &str) -> Value {
        self.rec.fail(text);
        tracing::error!(error = %text, "command failed");
        response::error(text, self.rec.trace_id())
    }

    /// A refusal, audited as `blocked` (with `record`'s target and digest) and told with the
    /// audit id.
    pub async fn blocked(&mut self, reason: &str, record: AuditRecord) -> Value {
        // A record may carry its own reason, without what the caller typed.
        let record = if record.metadata.contains_key("reason") { record } else { record.meta("reason", reason) };
        tracing::warn!(reason, audit_id = %record.audit_id, "refused");
        let text = match self.audit("audit.blocked", &record).await {
            Ok(()) => format!("{reason}\n-# audit `{}`", record.audit_id),
            Err(_) => format!("{reason}\n-# (this refusal could not be audited: the store is unavailable)"),
        };
        self.refuse(&text)
    }

    /// A blocked record of this command by this caller, with nothing else filled in.
    pub fn blocked_record(&self) -> AuditRecord {
        AuditRecord::new(&self.trace_id(), self.user_id, &self.command, valine_domain::audit::AuditResult::Blocked)
            .meta("username", &self.user_name)
    }

    /// Raises an internal alert about this interaction with the time left, less `keep` (for what
    /// still has to happen before the answer).
    pub async fn alert(&self, what: &'static str, title: &str, detail: &str, keep: Duration) {
        let budget = self.remaining().saturating_sub(keep);
        self.app.internal_alert(what, title, detail, self.rec.trace_id(), &self.user_name, budget).await;
    }

    /// The store failed a command that needs it: a critical alert (the bot cannot keep its
    /// audit trail), and a short answer that says nothing was done.
    pub async fn store_unavailable(&mut self, error: &StoreError, nothing_done: &str) -> Value {
        let title = "Store unavailable: commands that need it are refused";
        self.alert("store_unavailable", title, &error.to_string(), Duration::from_millis(150)).await;
        self.fail(&format!("The store is unavailable ({error}); {nothing_done}."))
    }

    /// True the first time this interaction id is seen: a replayed request (same signed body
    /// within the 5-minute window) must not post or dispatch twice.
    pub async fn first_time(&mut self) -> Result<bool, StoreError> {
        let id = format!("interaction:{}", self.interaction_id);
        let deliveries = self.app.stores.deliveries.clone();
        let t = self.rec.start("store.first_seen");
        let res = match self.within(Duration::from_millis(1500), deliveries.first_seen(&id)).await {
            Some(r) => r,
            None => Err(StoreError::Unavailable("no answer in time".into())),
        };
        let status = if res.is_ok() { StepStatus::Ok } else { StepStatus::Error };
        self.rec.finish(t, status, res.as_ref().err().map(ToString::to_string));
        res
    }

    /// Appends an audit record within the time left.
    pub async fn audit(&mut self, step: &str, record: &AuditRecord) -> Result<(), StoreError> {
        let audit = self.app.stores.audit.clone();
        let t = self.rec.start(step);
        let res = match self.within(Duration::from_millis(2000), audit.append(record)).await {
            Some(r) => r,
            None => Err(StoreError::Unavailable("no answer in time".into())),
        };
        let status = if res.is_ok() { StepStatus::Ok } else { StepStatus::Error };
        self.rec.finish(t, status, res.as_ref().err().map(ToString::to_string));
        if let Err(e) = &res {
            tracing::error!(error = %e, audit_id = %record.audit_id, result = record.result.as_str(), "audit write failed");
        }
        res
    }

    /// Hands `job` to the deferred path within the time left; the answer can then say "thinking…".
    pub async fn defer(&mut self, job: Job) -> Result<(), crate::jobs::JobError> {
        let jobs = self.app.jobs.clone();
        let t = self.rec.start("job.enqueue");
        let res = self
            .within(Duration::from_millis(1000), jobs.enqueue(job))
            .await
            .unwrap_or_else(|| Err(crate::jobs::JobError("no answer in time".into())));
        self.rec.finish(
            t,
            if res.is_ok() { StepStatus::Ok } else { StepStatus::Error },
            res.as_ref().err().map(ToString::to_string),
        );
        res
    }

    /// What a deferred job needs to carry on.
    pub fn job_context(&self) -> JobContext {
        JobContext {
            application_id: self.application_id,
            token: self.token.clone(),
            user_id: self.user_id,
            user_name: self.user_name.clone(),
            trace: self.rec.snapshot(),
        }
    }

    /// Stores the trace, counts the command, logs the answer.
    async fn finish(&mut self, answer: &Value) {
        let elapsed = self.started.elapsed().as_millis() as u64;
        self.app.metrics.command(&self.command, elapsed);
        if self.command == "/debug-last" {
            // Looking at a trace leaves none: the next /debug-last shows the command before.
            tracing::info!(
                answer_type = answer["type"].as_u64().unwrap_or(0),
                duration_ms = elapsed,
                "interaction answered"
            );
            return;
        }
        let trace = self.rec.snapshot();
        let traces = self.app.stores.traces.clone();
        // Slow commands are the ones worth a trace: they may use the answer's last 250 ms too.
        let budget = (self.remaining() + Duration::from_millis(250))
            .clamp(Duration::from_millis(150), Duration::from_millis(500));
        let stored = match tokio::time::timeout(budget, traces.put(&trace)).await.ok() {
            Some(Ok(())) => "stored",
            Some(Err(e)) => {
                tracing::warn!(error = %e, "could not store the trace; kept in this container only");
                "cache only"
            }
            None => {
                tracing::warn!("no time left to store the trace; kept in this container only");
                "cache only"
            }
        };
        self.app.traces.put(trace);
        tracing::info!(
            answer_type = answer["type"].as_u64().unwrap_or(0),
            duration_ms = elapsed,
            trace = stored,
            "interaction answered"
        );
    }
}

/// Looks up a named option.
fn option<'o>(opts: &'o [CommandDataOption], name: &str) -> Option<&'o CommandDataOptionValue> {
    opts.iter().find(|o| o.name == name).map(|o| &o.value)
}

pub fn opt_str<'o>(opts: &'o [CommandDataOption], name: &str) -> Option<&'o str> {
    option(opts, name).and_then(|v| v.as_str()).map(str::trim).filter(|s| !s.is_empty())
}

pub fn opt_i64(opts: &[CommandDataOption], name: &str) -> Option<i64> {
    option(opts, name).and_then(|v| v.as_i64())
}

pub fn opt_bool(opts: &[CommandDataOption], name: &str) -> Option<bool> {
    option(opts, name).and_then(|v| v.as_bool())
}

pub fn opt_channel(opts: &[CommandDataOption], name: &str) -> Option<u64> {
    option(opts, name).and_then(|v| v.as_channel_id()).map(|c| c.get())
}

pub fn opt_user(opts: &[CommandDataOption], name: &str) -> Option<u64> {
    option(opts, name).and_then(|v| v.as_user_id()).map(|u| u.get())
}
