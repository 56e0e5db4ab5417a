//! The Discord handler: verification, the lenient view, routing through the registry, and the
//! deferred jobs. Transport-neutral: `lambda.rs` and `valinectl serve` feed it requests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;
use valine_clients::discord_api::Discord;
use valine_clients::github_api::GitHub;
use valine_domain::clock::now_secs;
use valine_domain::config::Config;
use valine_domain::custom_id::{CustomId, MuteFor};
use valine_domain::message::{Message, Reply};
use valine_domain::metrics::Metrics;
use valine_domain::trace::{StepStatus, TraceCache, TraceRecorder};
use valine_service::alerting::Alerter;
use valine_service::bootstrap::{Route, route};
use valine_service::http::{HttpRequest, HttpResponse};
use valine_service::incidents::IncidentDesk;
use valine_store::{StoreError, Stores};

use crate::commands;
use crate::commands::confirm::{self, Press};
use crate::ctx::Ctx;
use crate::interaction::{Interaction, Kind};
use crate::jobs::Jobs;
use crate::registry::Command;
use crate::registry::Job;
pub use crate::services::{SERVICE, Services};
use crate::spec::{Where, place_refusal};
use crate::verify::Verifier;

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
    GitHub(#[from] valine_clients::github_error::GitHubError),
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
    verifier: Verifier,
    services: Services,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("services", &self.services).finish_non_exhaustive()
    }
}

/// The handler's services (`app.stores`, `app.config`, …) are the commands' own.
impl std::ops::Deref for App {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

impl App {
    pub fn new(parts: AppParts) -> Result<Self, InitError> {
        let key = parts.config.require_discord_public_key()?;
        let verifier = Verifier::new(key).ok_or(InitError::PublicKey)?;
        let alerter = Alerter::from_config(&parts.config, &parts.stores, parts.discord.clone(), parts.metrics.clone());
        if parts.config.allowed_guild_ids.is_empty() {
            tracing::warn!("ALLOWED_GUILD_IDS is empty: interactions from any server are served");
        }
        let config = Arc::new(parts.config);
        let incidents = IncidentDesk::new(
            config.clone(),
            &parts.stores,
            parts.discord.clone(),
            parts.github.clone(),
            parts.metrics.clone(),
        );
        Ok(Self {
            verifier,
            services: Services {
                config,
                incidents,
                stores: parts.stores,
                discord: parts.discord,
                github: parts.github,
                jobs: parts.jobs,
                alerter,
                metrics: parts.metrics,
                traces: TraceCache::new(TRACE_CACHE_USERS),
                probe: Arc::new(valine_clients::probe::HttpProbe::default()),
            },
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

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Routes one HTTP request: health checks by method and path, everything else is an
    /// interaction.
    pub async fn handle(&self, req: HttpRequest) -> HttpResponse {
        match route(&req) {
            Route::Ready => self.services.readiness().await,
            Route::Health => valine_service::http::health(SERVICE),
            Route::NotFound => HttpResponse::error(http::StatusCode::NOT_FOUND, "not found"),
            Route::WrongMethod => HttpResponse::error(http::StatusCode::METHOD_NOT_ALLOWED, "interactions are POSTed"),
            Route::Post => self.handle_interaction(req).await,
        }
    }

    pub async fn readiness(&self) -> HttpResponse {
        self.services.readiness().await
    }

    /// Verifies, reads and answers one interaction.
    pub async fn handle_interaction(&self, req: HttpRequest) -> HttpResponse {
        let started = Instant::now();
        if let Err(rejection) = self.verifier.verify(&req, now_secs()) {
            self.metrics.verification_failure();
            tracing::warn!(reason = rejection.message(), status = rejection.status().as_u16(), "interaction refused");
            return HttpResponse::error(rejection.status(), rejection.message());
        }
        let interaction = match Interaction::parse(&req.body) {
            Ok(i) => i,
            Err(e) => return HttpResponse::error(http::StatusCode::BAD_REQUEST, &e.to_string()),
        };
        let via = req.invoked_by.as_deref();
        let answer = match interaction.kind {
            Kind::Ping => Reply::Pong,
            Kind::Command => self.command(&interaction, started, via).await,
            Kind::Autocomplete => self.autocomplete(&interaction),
            Kind::Component => self.component(&interaction, started, via).await,
            Kind::Modal => self.modal(&interaction, started, via).await,
        };
        HttpResponse::ok(&answer.to_json())
    }

    async fn command(&self, i: &Interaction, started: Instant, via: Option<&str>) -> Reply {
        let slash = format!("/{}", i.data.name);
        let mut ctx = Ctx::new(&self.services, i, slash.clone(), started).invoked_by(via);
        let Some(command) = Command::parse(&i.data.name, &i.data.options) else {
            let span = tracing::info_span!("handle_command", trace_id = %ctx.rec.trace_id(), user_id = %ctx.user_id, cmd = %slash);
            return async {
                ctx.rec.note("route", StepStatus::Skipped, Some("unknown command".into()));
                let answer = Reply::Message(Message::text("Unknown command").ephemeral());
                ctx.finish(&answer, true).await;
                answer
            }
            .instrument(span)
            .await;
        };
        let spec = command.spec();
        let span = tracing::info_span!("handle_command", fn = spec.span, trace_id = %ctx.rec.trace_id(), user_id = %ctx.user_id, cmd = %slash);
        let refusal = place_refusal(&self.config.allowed_guild_ids, i.guild_id, spec.place);
        async {
            let answer = match refusal {
                Some(reason) => {
                    let record =
                        ctx.blocked_record().meta("guild_id", i.guild_id.map_or("dm".into(), |g| g.to_string()));
                    ctx.blocked(reason, record).await
                }
                None => command.run(&mut ctx).await,
            };
            // Looking at a trace leaves none: the next /debug-last shows the command before.
            let keep_trace = spec.name != commands::debug_last::SPEC.name;
            ctx.finish(&answer, keep_trace).await;
            answer
        }
        .instrument(span)
        .await
    }

    /// Logged, not stored: a trace per keystroke would push the command itself out of the
    /// caller's /debug-last.
    fn autocomplete(&self, i: &Interaction) -> Reply {
        let cmd = format!("autocomplete:/{}", i.data.name);
        let rec = TraceRecorder::new(i.user.id.to_string(), cmd.clone());
        let place = crate::registry::spec(&i.data.name).map_or(Where::Guild, |s| s.place);
        let answer = if place_refusal(&self.config.allowed_guild_ids, i.guild_id, place).is_some() {
            Reply::Choices(Vec::new())
        } else {
            commands::autocomplete(&self.services, &i.data.name, &i.data.options)
        };
        let choices = match &answer {
            Reply::Choices(c) => c.len(),
            _ => 0,
        };
        tracing::info!(trace_id = %rec.trace_id(), user_id = %i.user.id, cmd = %cmd, choices, "autocomplete answered");
        answer
    }

    async fn component(&self, i: &Interaction, started: Instant, via: Option<&str>) -> Reply {
        let parsed = CustomId::parse(&i.data.custom_id);
        let command = parsed
            .as_ref()
            .map_or_else(|| unrecognised("component", &i.data.custom_id), |c| format!("component:{}", c.action()));
        let mut ctx = Ctx::new(&self.services, i, command, started).invoked_by(via);
        let span = tracing::info_span!("handle_component", trace_id = %ctx.rec.trace_id(), user_id = %ctx.user_id, cmd = %ctx.command);
        // Buttons come from the bot's own messages in the team's server.
        let refusal = place_refusal(&self.config.allowed_guild_ids, i.guild_id, Where::Guild);
        async {
            if let Some(reason) = refusal {
                let record = ctx.blocked_record().meta("guild_id", i.guild_id.map_or("dm".into(), |g| g.to_string()));
                let answer = ctx.blocked(reason, record).await;
                ctx.finish(&answer, true).await;
                return answer;
            }
            let answer = match &parsed {
                Some(id @ (CustomId::Confirm(_) | CustomId::Cancel(_))) => {
                    let press = if matches!(id, CustomId::Cancel(_)) { Press::Cancel } else { Press::Confirm };
                    match confirm::take(&mut ctx, id).await {
                        Ok(pending) => crate::registry::confirmed(&mut ctx, pending, press).await,
                        Err(answer) => answer,
                    }
                }
                Some(CustomId::MarkKnown(signature)) => {
                    match valine_domain::authz::authorize_responder(ctx.caller(), &self.config) {
                        Ok(()) => {
                            ctx.rec.note("known.form", StepStatus::Ok, None);
                            Reply::Modal(commands::known::form(signature))
                        }
                        Err(refusal) => {
                            let record = ctx.blocked_record().meta("signature", signature.as_str());
                            ctx.blocked(&refusal.to_string(), record).await
                        }
                    }
                }
                Some(id) => {
                    // The mute select carries its duration in the chosen value.
                    let id = match id {
                        CustomId::IncidentMute(incident, None) => CustomId::IncidentMute(
                            incident.clone(),
                            i.data.values.first().and_then(|v| MuteFor::parse(v)),
                        ),
                        other => other.clone(),
                    };
                    let deadline = ctx.deadline();
                    let trace_id = ctx.trace_id();
                    let t = ctx.rec.start("incident.press");
                    let outcome = self.services.incidents.press(&id, ctx.caller(), &trace_id, deadline).await;
                    let status = match outcome.audit_result() {
                        valine_domain::audit::AuditResult::Posted => StepStatus::Ok,
                        valine_domain::audit::AuditResult::Failed => StepStatus::Error,
                        _ => StepStatus::Skipped,
                    };
                    ctx.rec.finish(t, status, Some(format!("{outcome:?}")));
                    Reply::Message(outcome.reply())
                }
                None => {
                    ctx.rec.note("route", StepStatus::Skipped, Some("unrecognised custom_id".into()));
                    Reply::Message(
                        Message::text("This button is no longer recognised. Run the command again.").ephemeral(),
                    )
                }
            };
            ctx.finish(&answer, true).await;
            answer
        }
        .instrument(span)
        .await
    }

    /// A form submitted: the "Mark known…" form links its signature (as `/known link` does);
    /// any other is one the bot does not recognise, and still gets a trace and an answer.
    async fn modal(&self, i: &Interaction, started: Instant, via: Option<&str>) -> Reply {
        let parsed = CustomId::parse(&i.data.custom_id);
        let command = match &parsed {
            Some(CustomId::KnownForm(_)) => "/known".to_string(),
            _ => unrecognised("modal", &i.data.custom_id),
        };
        let mut ctx = Ctx::new(&self.services, i, command, started).invoked_by(via);
        let span = tracing::info_span!("handle_modal", trace_id = %ctx.rec.trace_id(), user_id = %ctx.user_id, cmd = %ctx.command);
        async {
            let refusal = place_refusal(&self.config.allowed_guild_ids, i.guild_id, Where::Guild);
            let answer = match (&parsed, refusal) {
                (_, Some(reason)) => {
                    let record =
                        ctx.blocked_record().meta("guild_id", i.guild_id.map_or("dm".into(), |g| g.to_string()));
                    ctx.blocked(reason, record).await
                }
                (Some(CustomId::KnownForm(signature)), None) => {
                    let field = |name: &str| {
                        i.data.fields.iter().find(|(id, _)| id == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
                    };
                    let (issue, note) = (field("issue").unwrap_or_default(), field("note"));
                    commands::known::link(&mut ctx, signature, issue, note).await
                }
                _ => {
                    ctx.rec.note("route", StepStatus::Skipped, Some("unrecognised custom_id".into()));
                    Reply::Message(Message::text("This form is not recognised. Run the command again.").ephemeral())
                }
            };
            ctx.finish(&answer, true).await;
            answer
        }
        .instrument(span)
        .await
    }

    /// Runs the job of a deferred event (`{"valine_job": …}`) to the end; failures are told in
    /// Discord with the trace id. An event that is no job is logged and dropped.
    pub async fn run_job(&self, event: serde_json::Value) {
        let mut job = match Job::from_event(event) {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(error = %e, "an event that is no job was ignored");
                return;
            }
        };
        let ctx = job.context().clone();
        let span = tracing::info_span!(
            "run_job",
            trace_id = %ctx.trace.trace_id,
            user_id = %ctx.user_id,
            cmd = %ctx.trace.command,
            job = job.kind()
        );
        let services = &self.services;
        async {
            let mut rec = TraceRecorder::resume(ctx.trace.clone());
            // The token waits in the store: taking it is the job's start, so a job handed over
            // twice (a retried invoke, a redelivered event) runs once. An event from before
            // tickets carries its token and no job id.
            if !ctx.job_id.is_empty() {
                let confirmations = services.stores.confirmations.clone();
                match rec.time("store.take_job_ticket", confirmations.take_job_ticket(&ctx.job_id)).await {
                    Ok(Some(ticket)) => job.context_mut().token = ticket.token,
                    Ok(None) => {
                        tracing::warn!(job_id = %ctx.job_id, "this job already ran, or its ticket expired; nothing was done");
                        return;
                    }
                    Err(e) => {
                        // Without its token the job cannot even answer; Discord shows that the
                        // interaction failed once the token expires.
                        tracing::error!(job_id = %ctx.job_id, error = %e, "the job's ticket could not be read: the job did not run");
                        return;
                    }
                }
            }
            job.run(services, &mut rec).await;
            let trace = rec.snapshot();
            if let Err(e) = services.stores.traces.put(&trace).await {
                tracing::warn!(error = %e, "could not store the job's trace");
            }
            services.traces.put(trace);
            tracing::info!("job finished");
        }
        .instrument(span)
        .await
    }
}

/// `component:feedback` for an unrecognised custom id `feedback:…`: what its trace is called.
fn unrecognised(kind: &str, custom_id: &str) -> String {
    let head: String = custom_id.split(':').next().unwrap_or_default().chars().take(32).collect();
    if head.is_empty() { kind.to_string() } else { format!("{kind}:{head}") }
}
