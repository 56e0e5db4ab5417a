//! The GitHub webhook handler: the app and its parts, and the routing of a request. What a
//! delivery does lives beside it, one module per reason to change: `delivery` (verify, dedup,
//! record), `routing` (where it goes), `acting` (incidents in each routed channel), `progress`
//! (followed `/diagnose` and `/deploy-client` runs), `gaps` and `tick` (the schedule).
//! Transport-neutral, like the Discord handler.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use valine_clients::discord_api::Discord;
use valine_clients::github_api::GitHub;
use valine_clients::probe::{HttpProbe, Probe};
use valine_domain::config::{Config, Handler, Secret};
use valine_domain::metrics::Metrics;
use valine_domain::routing::Route;
use valine_service::alerting::Alerter;
use valine_service::deadline::Deadline;
use valine_service::drain::Kick;
use valine_service::http::{HttpRequest, HttpResponse};
use valine_service::incidents::IncidentDesk;
use valine_store::{StoreError, Stores};

use crate::answer::{Answer, Status, respond};

pub const SERVICE: &str = "github-handler";
/// GitHub waits 10 s for an answer.
const DELIVERY_BUDGET: Duration = Duration::from_secs(9);
/// The steps of a delivery keep to its budget less this, so that it answers on its own terms
/// rather than being cut off.
const DELIVERY_MARGIN: Duration = Duration::from_millis(500);
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
    pub(crate) secret: Secret,
    pub stores: Stores,
    pub discord: Arc<dyn Discord>,
    pub alerter: Alerter,
    pub incidents: IncidentDesk,
    pub metrics: Metrics,
    /// For gap filling in the tick (and, through the desk, incidents' jobs and re-runs).
    pub(crate) github: Option<Arc<dyn GitHub>>,
    /// `ROUTES_FILE`, read and checked at start.
    pub file_routes: Vec<Route>,
    /// The `VERIFY_URLS` checks after a successful `/deploy-client` run.
    pub probe: Arc<dyn Probe>,
    /// Starts a drain when a delivery leaves a card in the outbox.
    pub kick: Option<Arc<dyn Kick>>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("stores", &self.stores).finish_non_exhaustive()
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
            kick: None,
        })
    }

    /// How a drain is started when a delivery leaves a card unsent (see `valine_service::drain`).
    pub fn with_kick(mut self, kick: Arc<dyn Kick>) -> Self {
        self.kick = Some(kick);
        self
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
        let invoked_by = req.invoked_by.clone();
        let started = std::time::Instant::now();
        let answer = tokio::time::timeout(DELIVERY_BUDGET, self.delivery(req, deadline)).await;
        self.metrics.delivery_duration(started.elapsed().as_millis().try_into().unwrap_or(u64::MAX));
        match answer {
            Ok(answer) => {
                // A card Discord refused for now waits in the outbox: a drain sends it.
                if self.incidents.knows_pending()
                    && let Some(kick) = &self.kick
                {
                    kick.kick(invoked_by.as_deref()).await;
                }
                answer
            }
            Err(_) => {
                // Nothing says it is done (that is written with its last effect), so a
                // redelivery is handled again.
                tracing::error!("delivery incomplete: not handled within 9 s; redeliver it from GitHub");
                let answer = Answer {
                    error: Some("not handled within 9 s; redeliver it".into()),
                    ..Answer::new(Status::Incomplete)
                };
                respond(StatusCode::ACCEPTED, &answer)
            }
        }
    }
}
