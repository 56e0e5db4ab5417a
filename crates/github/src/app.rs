//! The GitHub webhook handler: verification, delivery dedup, run tracking, alerts with dedup
//! and recovery, and `/diagnose` progress. Transport-neutral, like the Discord handler.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use http::StatusCode;
use serde_json::{Value, json};
use tracing::Instrument;
use valine_clients::discord_api::Discord;
use valine_clients::github_api::GitHub;
use valine_clients::probe::{HttpProbe, Probe};
use valine_domain::config::{Config, Handler, Secret};
use valine_domain::metrics::Metrics;
use valine_domain::trace::{StepStatus, TraceRecorder};
use valine_service::alerting::Alerter;
use valine_service::deadline::Deadline;
use valine_service::diagnose::{correlation_ids_in, progress_message_with};
use valine_service::http::{HttpRequest, HttpResponse};
use valine_service::incidents::{IncidentDesk, Observed, TickReport};
use valine_store::{Followed, RunRecord, StoreError, Stores};

use crate::events::{self, Decision};
use crate::verify;
use valine_domain::routing::Route;
use valine_domain::routing::{RouteEvent, RouteTable, Target};

pub const SERVICE: &str = "github-handler";
/// GitHub waits 10 s for an answer.
const DELIVERY_BUDGET: Duration = Duration::from_secs(9);
/// The steps of a delivery keep to its budget less this, so that it answers on its own terms
/// rather than being cut off.
const DELIVERY_MARGIN: Duration = Duration::from_millis(500);
/// The longest a `/diagnose` progress edit may take.
const PROGRESS_EDIT_BUDGET: Duration = Duration::from_millis(2500);
/// The longest a tick runs (the function's timeout, 15 s in `template.yaml`, is longer).
const TICK_BUDGET: Duration = Duration::from_secs(12);
/// Deliveries have no Discord user; their traces are kept under this one, for `valinectl trace`.
pub const TRACE_USER: &str = "github";

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] valine_domain::config::ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Routes(String),
}

pub struct AppParts {
    pub config: Config,
    pub stores: Stores,
    pub discord: Arc<dyn Discord>,
    pub metrics: Metrics,
}

pub struct App {
    pub config: Arc<Config>,
    secret: Secret,
    pub stores: Stores,
    pub discord: Arc<dyn Discord>,
    pub alerter: Alerter,
    pub incidents: IncidentDesk,
    pub metrics: Metrics,
    /// For gap filling in the tick (and, through the desk, incidents' jobs and re-runs).
    github: Option<Arc<dyn GitHub>>,
    /// `ROUTES_FILE`, read and checked at start.
    pub file_routes: Vec<Route>,
    /// The `VERIFY_URLS` checks after a successful `/deploy-client` run.
    pub probe: Arc<dyn Probe>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("stores", &self.stores).finish_non_exhaustive()
    }
}

/// How long reading the subscriptions may take before routing goes on without them.
const ROUTES_BUDGET: Duration = Duration::from_millis(1500);
/// Every branch: routes filter branches before the decision.
const ANY_BRANCH: &[&str] = &["*"];

/// Where a delivery goes, decided before anything is written.
enum Routing {
    /// Outside `GITHUB_REPOS`, or no route: `202 ignored`, nothing written.
    Ignore(String),
    /// The channels it goes to (none: an event with no incident to route, or a `/diagnose` run).
    Targets(Vec<Target>),
}

/// How a delivery went, before it becomes a response.
struct Handled {
    status: StatusCode,
    body: Value,
    /// A side effect failed: the delivery is not recorded done, so that a redelivery tries again.
    retryable_failure: bool,
    /// What became of the delivery's done record in an incident write (see
    /// [`IncidentDesk::observe_delivery`]): `Some(true)` written with it, `Some(false)` another
    /// attempt at this delivery finished first, `None` not written yet.
    recorded: Option<bool>,
}

impl Handled {
    fn new(status: StatusCode, body: Value, retryable_failure: bool) -> Self {
        Self { status, body, retryable_failure, recorded: None }
    }
}

impl App {
    pub fn new(parts: AppParts) -> Result<Self, InitError> {
        let secret = parts.config.require_github_webhook_secret()?.clone();
        let file_routes = valine_service::routing::load_routes_file(&parts.config).map_err(InitError::Routes)?;
        let alerter = Alerter::from_config(&parts.config, &parts.stores, parts.discord.clone(), parts.metrics.clone());
        let config = Arc::new(parts.config);
        let incidents =
            IncidentDesk::new(config.clone(), &parts.stores, parts.discord.clone(), None, parts.metrics.clone());
        Ok(Self {
            config,
            secret,
            stores: parts.stores,
            discord: parts.discord,
            alerter,
            incidents,
            metrics: parts.metrics,
            github: None,
            file_routes,
            probe: Arc::new(HttpProbe::default()),
        })
    }

    /// GitHub, for the failing job and step of an incident and for re-runs.
    pub fn with_github(mut self, github: Option<Arc<dyn GitHub>>) -> Self {
        self.incidents = IncidentDesk::new(
            self.config.clone(),
            &self.stores,
            self.discord.clone(),
            github.clone(),
            self.metrics.clone(),
        );
        self.github = github;
        self
    }

    pub fn from_config(config: Config, stores: Stores, metrics: Metrics) -> Result<Self, InitError> {
        let discord = valine_clients::discord_api::from_config(&config, std::time::Duration::from_secs(3));
        let github = match valine_clients::github_api::from_config(&config, Duration::from_secs(3)) {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(error = %e, "GitHub client unavailable: incidents go without the failing job, and re-runs fail");
                None
            }
        };
        Ok(Self::new(AppParts { config, stores, discord, metrics })?.with_github(github))
    }

    /// The scheduled tick (EventBridge every 5 minutes; every minute under `valinectl serve`).
    /// Gap filling first (so that escalation sees the repaired incidents), then the incidents'
    /// own tick.
    pub async fn tick(&self) -> TickReport {
        let mut trace = TraceRecorder::new(TRACE_USER, "tick".to_string());
        let span = tracing::info_span!("tick", trace_id = %trace.trace_id(), cmd = "tick");
        let deadline = Deadline::after(TICK_BUDGET);
        let trace_id = trace.trace_id().to_string();
        async {
            let gaps = self.fill_gaps(&mut trace, deadline).await;
            let now = valine_domain::clock::now_secs();
            let mut report = self.incidents.tick(now, deadline).await;
            report.redelivered = gaps.redelivered;
            report.repaired = gaps.repaired;
            report.errors.extend(gaps.errors);
            if !self.config.verify_urls.is_empty() {
                self.health_tick(&mut report, &trace_id, now, deadline).await;
            }
            report
        }
        .instrument(span)
        .await
    }

    /// See [`crate::gaps`]: redeliver what failed, and put the newest completed runs through the
    /// delivery path, for each repository of `GITHUB_REPOS` (or `GITHUB_REPO`) that names one
    /// repository. Needs GitHub (a token or an App, not a dry run).
    pub async fn fill_gaps(&self, rec: &mut TraceRecorder, deadline: Deadline) -> crate::gaps::GapReport {
        let mut report = crate::gaps::GapReport::default();
        let Some(github) = &self.github else { return report };
        if self.config.dry_run {
            return report;
        }
        let mut repos: Vec<valine_domain::repo::RepoName> =
            self.config.github_repos.repositories().filter_map(|p| p.repo_name()).collect();
        if let Some(repo) = &self.config.github_repo
            && !repos.contains(repo)
        {
            repos.push(repo.clone());
        }
        for repo in &repos {
            // GITHUB_HOOK_ID names the hook on GITHUB_REPO; others are found by their URL.
            let hook_id = self.config.github_hook_id.filter(|_| self.config.github_repo.as_ref() == Some(repo));
            self.fill_repo_gaps(github.as_ref(), repo, hook_id, rec, &mut report, deadline).await;
        }
        if report.redelivered + report.repaired > 0 {
            self.metrics.emit(
                &[],
                &[
                    ("DeliveriesRedelivered", report.redelivered as f64, valine_domain::metrics::Unit::Count),
                    ("GapsRepaired", report.repaired as f64, valine_domain::metrics::Unit::Count),
                ],
                false,
            );
        }
        tracing::info!(
            redelivered = report.redelivered,
            runs_checked = report.runs_checked,
            repaired = report.repaired,
            errors = report.errors.len(),
            "gap filling done"
        );
        report
    }

    async fn fill_repo_gaps(
        &self,
        github: &dyn GitHub,
        repo: &valine_domain::repo::RepoName,
        configured_hook: Option<u64>,
        rec: &mut TraceRecorder,
        report: &mut crate::gaps::GapReport,
        deadline: Deadline,
    ) {
        use crate::gaps;
        let now = valine_domain::clock::now_secs();
        let failed = |what: &str, e: String| format!("gap filling on {repo}: {what}: {e}");
        // 1. Deliveries that never arrived.
        let hook = match configured_hook {
            Some(id) => Ok(id),
            None => match deadline.run(github.list_hooks(repo)).await {
                Some(Ok(hooks)) => gaps::bot_hook(&hooks, None),
                Some(Err(e)) => Err(e.to_string()),
                None => Err("timed out".into()),
            },
        };
        match hook {
            Ok(hook_id) => match deadline.run(github.hook_deliveries(repo, hook_id)).await {
                Some(Ok(deliveries)) => {
                    for d in gaps::to_redeliver(&deliveries, now) {
                        match deadline.run(github.redeliver(repo, hook_id, d.id)).await {
                            Some(Ok(())) => {
                                report.redelivered += 1;
                                tracing::warn!(repo = %repo, delivery = %d.guid, event = %d.event, status_code = d.status_code, "gap filled: a failed delivery was redelivered");
                            }
                            Some(Err(e)) => report.errors.push(failed("redeliver", e.to_string())),
                            None => report.errors.push(failed("redeliver", "timed out".into())),
                        }
                    }
                }
                Some(Err(e)) => report.errors.push(failed("list deliveries", e.to_string())),
                None => report.errors.push(failed("list deliveries", "timed out".into())),
            },
            Err(e) => report.errors.push(failed("find the webhook", e)),
        }
        // 2. Runs whose deliveries are lost for good: compared with the incidents, through the
        // same routing and incident model as a delivery.
        let since = valine_domain::clock::rfc3339_millis(now.saturating_sub(gaps::RUN_LOOKBACK_SECS) * 1000);
        let since = format!("{}Z", since.split('.').next().unwrap_or(&since));
        let runs = match deadline.run(github.completed_runs(repo, &since)).await {
            Some(Ok(runs)) => runs,
            Some(Err(e)) => {
                report.errors.push(failed("list runs", e.to_string()));
                Vec::new()
            }
            None => {
                report.errors.push(failed("list runs", "timed out".into()));
                Vec::new()
            }
        };
        for run in gaps::newest_runs(runs) {
            if deadline.left().is_zero() {
                report.errors.push(failed("compare runs", "out of time".into()));
                break;
            }
            let run_id = run["id"].as_u64().unwrap_or(0);
            let payload = gaps::as_delivery(run, &repo.to_string());
            let targets = match self.route("workflow_run", &payload).await {
                Routing::Targets(targets) => targets,
                Routing::Ignore(_) => continue,
            };
            let mut store_error = None;
            let handled =
                self.workflow_run(rec, &payload, "completed", &targets, &mut store_error, None, deadline).await;
            report.runs_checked += 1;
            // One channel answers with `alert`, several with `routes: [{alert, …}]`.
            let mut alerts: Vec<&str> = handled.body["routes"]
                .as_array()
                .map(|r| r.iter().filter_map(|t| t["alert"].as_str()).collect())
                .unwrap_or_default();
            alerts.extend(handled.body["alert"].as_str());
            if alerts.iter().any(|a| matches!(*a, "sent" | "edited" | "resolved" | "recorded" | "muted")) {
                report.repaired += 1;
                tracing::warn!(repo = %repo, run_id, alerts = ?alerts, "gap filled: a run's outcome had not reached its incident");
            } else if handled.retryable_failure {
                report
                    .errors
                    .push(failed("compare runs", handled.body["error"].as_str().unwrap_or("failed").to_string()));
            }
        }
    }

    /// The `VERIFY_URLS` checks of the tick: each endpoint is an observation of its own incident,
    /// which opens after two failed checks in a row and resolves on a pass (see
    /// `valine_domain::incident::decide`).
    pub async fn health_tick(&self, report: &mut TickReport, trace_id: &str, now: u64, deadline: Deadline) {
        use valine_domain::incident::{IncidentKey, Observation, Order, Outcome, RunRef};
        let checks = valine_service::verify::run_checks(self.probe.as_ref(), &self.config.verify_urls).await;
        let repository = self.config.github_repo.as_ref().map_or_else(|| "valine".to_string(), |r| r.to_string());
        for check in checks {
            report.checked += 1;
            let problem = check.problem();
            if problem.is_some() {
                report.unhealthy += 1;
            }
            tracing::info!(endpoint = %check.name, status = check.answer.status.unwrap_or(0), latency_ms = check.answer.latency_ms, healthy = problem.is_none(), "endpoint checked");
            let mut key = IncidentKey::endpoint(0, &repository, &check.name);
            let gate = format!("{repository}|endpoint:{}|health", check.name);
            match self.incidents.channel(&gate) {
                Ok(channel) => key.channel_id = channel,
                Err(_) => continue,
            }
            let obs = Observation {
                key,
                outcome: if problem.is_some() { Outcome::Failure } else { Outcome::Success },
                run: RunRef {
                    // Milliseconds: two ticks in one second are still ordered.
                    order: Order::new(valine_domain::clock::now_millis(), 0),
                    conclusion: problem.unwrap_or_else(|| "healthy".into()),
                    url: Some(check.url.clone()),
                    completed_at: now,
                    trace_id: trace_id.to_string(),
                    ..RunRef::default()
                },
            };
            if let Observed::Failed { error, .. } = self.incidents.observe(&obs, deadline).await {
                report.errors.push(error);
            }
        }
    }

    pub async fn handle(&self, req: HttpRequest) -> HttpResponse {
        use valine_service::bootstrap::{Route, route};
        match route(&req) {
            Route::Ready => {
                // Alerts switched on without their settings is a broken configuration.
                let config = &self.config;
                return valine_service::http::readiness(SERVICE, config, Handler::GitHub, Vec::new(), &self.stores)
                    .await;
            }
            Route::Health => return valine_service::http::health(SERVICE),
            Route::NotFound => return HttpResponse::error(StatusCode::NOT_FOUND, "not found"),
            Route::WrongMethod => return HttpResponse::error(StatusCode::METHOD_NOT_ALLOWED, "deliveries are POSTed"),
            Route::Post => {}
        }
        // GitHub gives up after 10 s; answer before that whatever hangs.
        let deadline = Deadline::after(DELIVERY_BUDGET - DELIVERY_MARGIN);
        match tokio::time::timeout(DELIVERY_BUDGET, self.delivery(req, deadline)).await {
            Ok(answer) => answer,
            Err(_) => {
                // Nothing says it is done (that is written with its last effect), so a
                // redelivery is handled again.
                tracing::error!("delivery incomplete: not handled within 9 s; redeliver it from GitHub");
                HttpResponse::json(
                    StatusCode::ACCEPTED,
                    &json!({"status": "incomplete", "error": "not handled within 9 s; redeliver it"}),
                )
            }
        }
    }

    async fn delivery(&self, req: HttpRequest, deadline: Deadline) -> HttpResponse {
        let started = Instant::now();
        let event = match verify::verify(&req, self.secret.expose().as_bytes()) {
            Ok(e) => e.to_string(),
            Err(rejection) => {
                if rejection != verify::Rejection::TooLarge && rejection != verify::Rejection::MissingEvent {
                    self.metrics.verification_failure();
                }
                tracing::warn!(reason = rejection.message(), status = rejection.status().as_u16(), "delivery refused");
                return HttpResponse::error(rejection.status(), rejection.message());
            }
        };
        let Some(payload) = parse_payload(&req) else {
            return HttpResponse::error(StatusCode::BAD_REQUEST, "body is not a JSON object");
        };
        let targets = match self.route(&event, &payload).await {
            Routing::Targets(t) => t,
            Routing::Ignore(reason) => {
                tracing::info!(event = %event, reason = %reason, "delivery ignored: nothing written");
                return HttpResponse::json(
                    StatusCode::ACCEPTED,
                    &json!({"status": "ignored", "event": event, "reason": reason}),
                );
            }
        };
        let delivery_id = req.header("x-github-delivery").map(str::to_string);
        let mut rec = TraceRecorder::new(TRACE_USER, format!("webhook:{event}"));
        let span = tracing::info_span!(
            "handle_delivery",
            trace_id = %rec.trace_id(),
            delivery_id = delivery_id.as_deref().unwrap_or(""),
            event = %event,
            cmd = %format!("webhook:{event}")
        );
        async {
            self.metrics.delivery(&event);
            let mut store_error: Option<StoreError> = None;
            // `X-GitHub-Delivery` is required (`verify`); the tick's runs come without one.
            let done_key = delivery_id.as_ref().map(|id| format!("github:{id}"));
            if let Some(key) = &done_key {
                // The delivery's record and the incidents it may update, in one read.
                let ids = self.incident_ids(&event, &payload, &targets, rec.trace_id());
                let unknown = self.incidents.unknown(&ids);
                match rec.time("store.look_up", self.stores.deliveries.look_up(key, &unknown)).await {
                    Ok(found) if found.done => {
                        tracing::info!("duplicate delivery: nothing done");
                        return HttpResponse::ok(&json!({"status": "duplicate", "delivery": delivery_id}));
                    }
                    Ok(found) => self.incidents.prime(&unknown, &found.incidents),
                    Err(e) => {
                        tracing::warn!(error = %e, "delivery dedup unavailable; handling anyway");
                        store_error = Some(e);
                    }
                }
            }
            let done = done_key.as_deref();
            let action = payload["action"].as_str().unwrap_or("").to_string();
            let mut handled = match event.as_str() {
                "ping" => {
                    let hook_id = payload["hook_id"].as_u64().or_else(|| payload["hook"]["id"].as_u64());
                    tracing::info!(hook_id = hook_id.unwrap_or(0), zen = payload["zen"].as_str().unwrap_or(""), "webhook ping");
                    Handled::new(StatusCode::OK, json!({"status": "ok", "event": "ping", "hook_id": hook_id}), false)
                }
                "workflow_run" => {
                    self.workflow_run(&mut rec, &payload, &action, &targets, &mut store_error, done, deadline).await
                }
                "deployment_status" => {
                    let store_down = store_error.as_ref().is_some_and(StoreError::is_unavailable);
                    self.deployment_status(&mut rec, &payload, &targets, store_down, done, deadline).await
                }
                _ => {
                    rec.note("route", StepStatus::Skipped, Some("event not acted on".into()));
                    Handled::new(StatusCode::ACCEPTED, json!({"status": "ignored", "event": event}), false)
                }
            };
            // Only events that act need the store; a ping or an ignored event answers as usual.
            let acts = matches!(event.as_str(), "workflow_run" | "deployment_status");
            if let Some(e) = &store_error
                && acts
                && handled.status.is_success()
                && handled.status != StatusCode::ACCEPTED
                && handled.recorded.is_none()
            {
                rec.fail(e);
                handled.status = StatusCode::ACCEPTED;
                if handled.body["alert"] == "sent" {
                    // The alert is out; a redelivery might post it again (the store could not
                    // hold its dedup window), so this delivery is not offered for one.
                    handled.body["status"] = json!("partial");
                    handled.body["error"] = json!(format!(
                        "{e}; the alert was posted but the run was not recorded; do not redeliver, or the alert may be posted twice"
                    ));
                } else {
                    handled.body["status"] = json!("incomplete");
                    handled.body["error"] = json!(format!("{e}; redeliver once the store is back"));
                    handled.retryable_failure = true;
                }
            }
            handled.body["trace_id"] = json!(rec.trace_id());
            if !action.is_empty() {
                handled.body["action"] = json!(action);
            }
            self.finish(&mut rec, &mut handled, done, store_error.as_ref()).await;
            let duration_ms = started.elapsed().as_millis() as u64;
            if handled.retryable_failure {
                tracing::error!(status = handled.status.as_u16(), duration_ms, error = %handled.body["error"], "delivery incomplete: redeliver it from GitHub once the cause is fixed");
            } else {
                tracing::info!(status = handled.status.as_u16(), duration_ms, outcome = %handled.body["status"], "delivery handled");
            }
            HttpResponse::json(handled.status, &handled.body)
        }
        .instrument(span)
        .await
    }

    /// Records the delivery done, with its trace, unless its incident write did already, or it
    /// failed and is to be redelivered (then only the trace is kept). A delivery whose record
    /// cannot be written answers `incomplete`: a redelivery is handled again, idempotently.
    async fn finish(
        &self,
        rec: &mut TraceRecorder,
        handled: &mut Handled,
        done: Option<&str>,
        store_error: Option<&StoreError>,
    ) {
        let store_down = store_error.is_some_and(StoreError::is_unavailable);
        match (handled.recorded, done) {
            (Some(false), _) => {
                tracing::info!("duplicate delivery: another attempt finished it first");
                handled.body["status"] = json!("duplicate");
                return;
            }
            (None, Some(key)) if !handled.retryable_failure => {
                let trace = rec.snapshot();
                match rec.time("store.finish", self.stores.deliveries.finish(key, &trace)).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::info!("duplicate delivery: another attempt finished it first");
                        handled.body["status"] = json!("duplicate");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the delivery is handled but could not be recorded");
                        if handled.body["status"] == "ok" || handled.body["status"] == "ignored" {
                            handled.status = StatusCode::ACCEPTED;
                            handled.body["status"] = json!("incomplete");
                            handled.body["error"] = json!(format!(
                                "{e}; handled, but not recorded: redeliver once the store is back (handling it again changes nothing)"
                            ));
                            handled.retryable_failure = true;
                        }
                    }
                }
                return;
            }
            _ => {}
        }
        if store_down {
            tracing::warn!("store unavailable: the delivery's trace is only in this log");
        } else if let Err(e) = self.stores.traces.put(&rec.snapshot()).await {
            tracing::warn!(error = %e, "could not store the delivery's trace");
        }
    }

    /// The incidents a delivery may update: its decision's key in each routed channel whose
    /// gates are open. Pure; `act` gates and decides the same way.
    fn incident_ids(&self, event: &str, payload: &Value, targets: &[Target], trace_id: &str) -> Vec<String> {
        let decision = match event {
            "workflow_run" => {
                let Some(run) = events::workflow_run_record(payload) else { return Vec::new() };
                let any_branch: Vec<String> = ANY_BRANCH.iter().map(|b| b.to_string()).collect();
                events::decide_workflow_run(
                    payload["action"].as_str().unwrap_or(""),
                    &run,
                    payload,
                    &any_branch,
                    trace_id,
                )
            }
            "deployment_status" => events::decide_deployment_status(payload, trace_id),
            _ => return Vec::new(),
        };
        let Decision::Observe(obs) = decision else { return Vec::new() };
        targets
            .iter()
            .filter_map(|t| self.incidents.route_channel(t.channel_id))
            .map(|channel| {
                let mut key = obs.key.clone();
                key.channel_id = channel;
                key.id()
            })
            .collect()
    }

    /// Routes a delivery before anything is written: its repository must be in `GITHUB_REPOS`,
    /// and a route must take it (a `/diagnose` run needs none: its message follows it anyway).
    async fn route(&self, event: &str, payload: &Value) -> Routing {
        if !matches!(event, "workflow_run" | "deployment_status") {
            return Routing::Targets(Vec::new());
        }
        let repository = events::repository(payload);
        if !self.config.github_repos.admits_delivery(&repository) {
            return Routing::Ignore(format!("repository {repository} is not in GITHUB_REPOS"));
        }
        let table = self.route_table().await;
        let run = if event == "workflow_run" {
            match events::workflow_run_record(payload) {
                Some(run) => Some(run),
                None => return Routing::Targets(Vec::new()),
            }
        } else {
            None
        };
        let action = payload["action"].as_str().unwrap_or("");
        let environment = events::environment(payload);
        let route_event = match &run {
            Some(run) => RouteEvent::Run {
                repository: &run.repository,
                workflow: &run.workflow_name,
                branch: &run.head_branch,
                completed: action == "completed" || run.status == "completed",
            },
            None => RouteEvent::Deployment { repository: &repository, environment: &environment },
        };
        let targets = table.targets(&route_event);
        if targets.is_empty() && !run.as_ref().is_some_and(|r| self.is_diagnose_run(r)) {
            return Routing::Ignore(table.why_not(&route_event));
        }
        Routing::Targets(targets)
    }

    /// The routes in force: subscriptions (cached in this container) and `ROUTES_FILE`.
    pub async fn route_table(&self) -> RouteTable {
        let routes = self.stores.routes.clone();
        let read = async {
            match tokio::time::timeout(
                ROUTES_BUDGET,
                valine_service::routing::route_table(&self.config, routes.as_ref(), &self.file_routes),
            )
            .await
            {
                Ok((table, _)) => table,
                Err(_) => {
                    tracing::warn!(
                        "subscriptions did not answer in time: routing by ROUTES_FILE or ALERT_CHANNEL_ID only"
                    );
                    RouteTable::build(&self.config, Vec::new(), self.file_routes.clone())
                }
            }
        };
        read.await
    }

    #[allow(clippy::too_many_arguments)]
    async fn workflow_run(
        &self,
        rec: &mut TraceRecorder,
        payload: &Value,
        action: &str,
        targets: &[Target],
        store_error: &mut Option<StoreError>,
        done: Option<&str>,
        deadline: Deadline,
    ) -> Handled {
        let Some(run) = events::workflow_run_record(payload) else {
            rec.note("parse", StepStatus::Skipped, Some("no workflow_run in the payload".into()));
            let body = json!({"status": "ignored", "event": "workflow_run", "reason": "no workflow_run"});
            return Handled::new(StatusCode::ACCEPTED, body, false);
        };
        tracing::info!(run_id = run.run_id, workflow = %run.workflow_name, branch = %run.head_branch, status = %run.status, conclusion = run.conclusion.as_deref().unwrap_or(""), "workflow run");
        // When the store already failed for this delivery, do not wait on it again: the alert
        // still goes out, and the delivery answers 503 so that it can be redelivered.
        let store_down = store_error.as_ref().is_some_and(StoreError::is_unavailable);
        // Only a run that may be a `/diagnose` run is recorded: it is the one read back. Every
        // other run's truth lives in its incident, which keeps a delivery at three store calls.
        let newer = if !self.is_diagnose_run(&run) {
            true
        } else if store_down {
            rec.note("store.upsert_run", StepStatus::Skipped, Some("store unavailable".into()));
            false
        } else {
            match rec.time("store.upsert_run", self.stores.runs.upsert_run(&run)).await {
                Ok(written) => written,
                Err(e) => {
                    store_error.get_or_insert(e);
                    true
                }
            }
        };
        let progress =
            if newer && store_error.is_none() { self.diagnose_progress(rec, &run, deadline).await } else { None };
        let mut body = json!({"status": "ok", "event": "workflow_run", "run_id": run.run_id});
        if let Some(p) = &progress {
            body["diagnose"] = json!(if p.is_ok() { "updated" } else { "not_updated" });
        }
        let any_branch: Vec<String> = ANY_BRANCH.iter().map(|b| b.to_string()).collect();
        let decision = events::decide_workflow_run(action, &run, payload, &any_branch, rec.trace_id());
        let completed = action == "completed" || run.status == "completed";
        let line = completed.then(|| events::run_line(&run));
        // A `/diagnose` message still to update is the delivery's last effect, not the incident.
        let done = if matches!(progress, Some(Err(_))) { None } else { done };
        let (mut failed, recorded) =
            self.act_routed(rec, decision, targets, line.as_deref(), &mut body, store_down, done, deadline).await;
        if let Some(Err(e)) = progress {
            // The edit is idempotent: a redelivery puts the message right.
            if !failed {
                body["status"] = json!("incomplete");
                body["error"] = json!(format!("the /diagnose message could not be updated: {e}; redeliver to retry"));
            }
            failed = true;
        }
        let status = if failed { StatusCode::ACCEPTED } else { StatusCode::OK };
        Handled { status, body, retryable_failure: failed, recorded }
    }

    async fn deployment_status(
        &self,
        rec: &mut TraceRecorder,
        payload: &Value,
        targets: &[Target],
        store_down: bool,
        done: Option<&str>,
        deadline: Deadline,
    ) -> Handled {
        let decision = events::decide_deployment_status(payload, rec.trace_id());
        let mut body =
            json!({"status": "ok", "event": "deployment_status", "state": payload["deployment_status"]["state"]});
        let (failed, recorded) =
            self.act_routed(rec, decision, targets, None, &mut body, store_down, done, deadline).await;
        let status = if failed { StatusCode::ACCEPTED } else { StatusCode::OK };
        Handled { status, body, retryable_failure: failed, recorded }
    }

    /// Carries out a decision in every routed channel: its own incident in each, and, for
    /// channels routed `all-runs`, a compact line for a completed run that changed no incident
    /// message. True when the delivery should be offered for redelivery; and what became of the
    /// delivery's done record, which the last channel's incident write carries when every
    /// channel before it went well.
    #[allow(clippy::too_many_arguments)]
    async fn act_routed(
        &self,
        rec: &mut TraceRecorder,
        decision: Decision,
        targets: &[Target],
        line: Option<&str>,
        body: &mut Value,
        store_down: bool,
        done: Option<&str>,
        deadline: Deadline,
    ) -> (bool, Option<bool>) {
        if let [target] = targets {
            return self.act(rec, &decision, target, line, body, store_down, done, deadline).await;
        }
        if let Decision::Nothing(reason) = &decision
            && line.is_none()
        {
            rec.note("decide", StepStatus::Skipped, Some(reason.to_string()));
            return (false, None);
        }
        let mut failed = false;
        let mut recorded = None;
        let mut routes = Vec::new();
        for (i, target) in targets.iter().enumerate() {
            let mut part = json!({"channel": target.channel_id.map(|c| c.to_string())});
            let last_done = done.filter(|_| i + 1 == targets.len() && !failed);
            let (f, r) = self.act(rec, &decision, target, line, &mut part, store_down, last_done, deadline).await;
            failed |= f;
            recorded = recorded.or(r);
            if let Some(status) = part.get("status").cloned()
                && body["status"] == "ok"
            {
                body["status"] = status;
                body["error"] = part["error"].clone();
            }
            routes.push(part);
        }
        if !routes.is_empty() {
            body["routes"] = json!(routes);
        }
        (failed, recorded)
    }

    /// Carries out a decision in one routed channel; true when the delivery should be offered for
    /// redelivery (nothing was shown, and a retry can show it), and what became of the done
    /// record of `done`, when the incident write carried it.
    #[allow(clippy::too_many_arguments)]
    async fn act(
        &self,
        rec: &mut TraceRecorder,
        decision: &Decision,
        target: &Target,
        line: Option<&str>,
        body: &mut Value,
        store_down: bool,
        done: Option<&str>,
        deadline: Deadline,
    ) -> (bool, Option<bool>) {
        let mut obs = match decision {
            Decision::Observe(obs) => obs.clone(),
            Decision::Nothing(reason) => {
                rec.note("decide", StepStatus::Skipped, Some(reason.to_string()));
                if target.all_runs
                    && let Some(line) = line
                {
                    self.run_line(rec, target, line, body, deadline).await;
                }
                return (false, None);
            }
        };
        let key = format!("{}|{}|{}", obs.key.repository, obs.key.name(), obs.key.scope());
        // The gates come before any store call: a delivery nobody routes writes nothing.
        match self.incidents.gate(&key, target.channel_id) {
            Ok(channel) => obs.key.channel_id = channel,
            Err(reason) => {
                rec.note("incident", StepStatus::Skipped, Some(reason.to_string()));
                body["alert"] = json!("skipped");
                return (false, None);
            }
        }
        let (observed, recorded) = if store_down {
            // Not asked again: this delivery already found the store down.
            rec.note("incident.observe", StepStatus::Skipped, Some("store unavailable".into()));
            (Observed::Failed { error: "store unavailable".into(), posted: false, store: true }, None)
        } else {
            let t = rec.start("incident.observe");
            let (observed, recorded) =
                self.incidents.observe_delivery(&obs, target.mention_role_id, done, deadline).await;
            let label = match &observed {
                Observed::Nothing { reason } | Observed::Skipped { reason } => {
                    format!("{}: {reason}", observed.as_str())
                }
                other => other.as_str().to_string(),
            };
            let failed = matches!(observed, Observed::Failed { .. });
            rec.finish(t, if failed { StepStatus::Error } else { StepStatus::Ok }, Some(label));
            (observed, recorded)
        };
        if let Observed::Failed { error, store: true, .. } = &observed {
            self.store_alert(error, rec.trace_id(), deadline).await;
        }
        body["incident"] = json!(obs.key.id());
        if target.all_runs
            && let Some(line) = line
            && !matches!(observed, Observed::Posted { .. } | Observed::Edited | Observed::Resolved | Observed::Muted)
        {
            self.run_line(rec, target, line, body, deadline).await;
        }
        let failed = match &observed {
            Observed::Resolved => {
                body["alert"] = json!("resolved");
                body["resolved"] = json!("sent");
                false
            }
            Observed::Failed { error, posted, .. } => {
                rec.fail(error);
                body["alert"] = json!("failed");
                if *posted {
                    // Shown in part: a redelivery could post a second message.
                    body["status"] = json!("partial");
                    body["error"] = json!(format!("{error}; do not redeliver, the next run updates the incident"));
                    false
                } else {
                    body["status"] = json!("incomplete");
                    body["error"] = json!(format!("the incident could not be updated: {error}; redeliver to retry"));
                    true
                }
            }
            other => {
                body["alert"] = json!(other.as_str());
                false
            }
        };
        (failed, recorded)
    }

    /// Posts a run's compact line in an `all-runs` channel (gates permitting).
    async fn run_line(
        &self,
        rec: &mut TraceRecorder,
        target: &Target,
        line: &str,
        body: &mut Value,
        deadline: Deadline,
    ) {
        let Ok(channel) = self.incidents.gate("run line", target.channel_id) else {
            body["line"] = json!("skipped");
            return;
        };
        let t = rec.start("discord.post_line");
        let posted = self.incidents.post_line(channel, line, deadline).await;
        rec.finish(t, if posted.is_ok() { StepStatus::Ok } else { StepStatus::Error }, None);
        body["line"] = json!(if posted.is_ok() { "sent" } else { "failed" });
    }

    /// The critical alert about the store itself: it keeps its dedup window, in this container only,
    /// because it must not wait on the store that failed.
    async fn store_alert(&self, error: &str, trace_id: &str, deadline: Deadline) {
        let alert = valine_domain::alert::Alert {
            kind: valine_domain::alert::InternalAlert::StoreUnavailable,
            title: "The store is unavailable: workflow failures cannot be tracked".into(),
            repository: self.config.github_repo.as_ref().map_or_else(|| "valine".to_string(), |r| r.to_string()),
            workflow: SERVICE.to_string(),
            branch: self.config.stage.clone(),
            commit: None,
            actor: None,
            conclusion: None,
            run_url: None,
            trace_id: trace_id.to_string(),
            detail: Some(valine_domain::redact::redact(error).into_owned()),
        };
        self.alerter.raise(&alert, deadline.instant()).await;
    }

    /// Whether `run` can be a followed run at all (`/diagnose`, `/deploy-client`): dispatched, of
    /// `DIAGNOSE_WORKFLOW` or `DEPLOY_WORKFLOW`, in `GITHUB_REPO` or `GITHUB_REPOS` (`/diagnose
    /// repo:`). Anything else (a pull request titled with a correlation id, say) never touches a
    /// followed message.
    fn is_diagnose_run(&self, run: &RunRecord) -> bool {
        !self.followed_kinds(run).is_empty()
    }

    /// Which commands' workflow `run` is (both, when they dispatch the same workflow).
    fn followed_kinds(&self, run: &RunRecord) -> Vec<Followed> {
        let file = run.workflow_path.rsplit('/').next().unwrap_or("");
        let is = |wanted: &str| {
            file.eq_ignore_ascii_case(wanted)
                || run.workflow_name.eq_ignore_ascii_case(wanted)
                || run.workflow_id.to_string() == wanted
        };
        let ours = run.event == "workflow_dispatch"
            && (self.config.github_repo.as_ref().is_none_or(|r| r.to_string().eq_ignore_ascii_case(&run.repository))
                || self.config.github_repos.admits_delivery(&run.repository));
        if !ours {
            return Vec::new();
        }
        let mut kinds = Vec::new();
        if is(&self.config.diagnose_workflow) {
            kinds.push(Followed::Diagnose);
        }
        if is(&self.config.deploy_workflow) {
            kinds.push(Followed::Deploy);
        }
        kinds
    }

    /// Edits the `/diagnose` message of a pending correlation named in the run's title. `None`
    /// when the run is no pending diagnose; an error when its message could not be updated.
    async fn diagnose_progress(
        &self,
        rec: &mut TraceRecorder,
        run: &RunRecord,
        deadline: Deadline,
    ) -> Option<Result<(), String>> {
        if !self.is_diagnose_run(run) {
            return None;
        }
        let mut lookup_error = None;
        for id in correlation_ids_in(&run.title) {
            let correlation = match rec.time("store.get_correlation", self.stores.runs.get_correlation(&id)).await {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(correlation_id = %id, error = %e, "could not look up a diagnose correlation");
                    lookup_error = Some(e.to_string());
                    continue;
                }
            };
            if !self.followed_kinds(run).contains(&correlation.kind) {
                // A correlation of the other command named in this run's title: not ours to edit.
                continue;
            }
            rec.set_correlation_id(&id);
            // A successful deploy is verified before it is called done.
            let checks = if correlation.kind == Followed::Deploy
                && run.status == "completed"
                && run.conclusion.as_deref() == Some("success")
                && !self.config.verify_urls.is_empty()
            {
                let t = rec.start("verify.endpoints");
                let checks = valine_service::verify::run_checks(self.probe.as_ref(), &self.config.verify_urls).await;
                let healthy = checks.iter().filter(|c| c.healthy()).count();
                let status = if healthy == checks.len() { StepStatus::Ok } else { StepStatus::Error };
                rec.finish(t, status, Some(format!("{healthy}/{} healthy", checks.len())));
                Some(checks)
            } else {
                None
            };
            let body = progress_message_with(&correlation, Some(run), checks.as_deref()).to_json();
            let discord = self.discord.clone();
            let bound = deadline.within(PROGRESS_EDIT_BUDGET);
            let edited = rec
                .time("discord.edit_original", async {
                    let edit = discord.edit_original(correlation.application_id, &correlation.interaction_token, &body);
                    bound.run(edit).await.unwrap_or(Err(valine_clients::discord_api::DiscordError::Timeout))
                })
                .await;
            return Some(match edited {
                Ok(()) => {
                    tracing::info!(correlation_id = %id, status = %run.status, "diagnose progress updated");
                    Ok(())
                }
                Err(e) => {
                    tracing::warn!(correlation_id = %id, error = %e, "could not update the diagnose message");
                    Err(e.to_string())
                }
            });
        }
        lookup_error.map(Err)
    }
}

/// The JSON payload: the body itself, or the `payload` field of a form-encoded delivery.
fn parse_payload(req: &HttpRequest) -> Option<Value> {
    let form = req.header("content-type").is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let value: Value = if form {
        let payload = url::form_urlencoded::parse(&req.body).find(|(k, _)| k == "payload")?.1;
        serde_json::from_str(&payload).ok()?
    } else {
        serde_json::from_slice(&req.body).ok()?
    };
    value.is_object().then_some(value)
}
