//! `valinectl serve`: both handlers in one process on 127.0.0.1:8787, the embedded store in
//! `DATA_DIR`, deferred jobs as Tokio tasks. Same routes as the deployed HTTP API.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use valine_discord::jobs::LocalJobs;
use valine_domain::config::{Config, Secret};
use valine_domain::metrics::Metrics;
use valine_service::http::{HttpRequest, HttpResponse};
use valine_store::Stores;

use valine_clients::discord_api::Discord;
use valine_clients::github_api::GitHub;

use crate::devkeys::DevKeys;
use crate::playground::{self, Playground};

/// Larger than both handlers' limits, so that they (not the server) answer 413 with a reason.
const BODY_LIMIT: usize = 8 * 1024 * 1024;

#[derive(Clone)]
struct Apps {
    discord: Arc<valine_discord::App>,
    github: Arc<valine_github::App>,
}

/// Fills in what local mode generates: dev keys, and a dry run when no token is set.
pub fn local_config(mut config: Config, announce: bool) -> Result<Config, String> {
    let (keys, created) = DevKeys::load_or_create(&config.data_dir).map_err(|e| format!("development keys: {e}"))?;
    if config.discord_public_key.is_none() {
        let public = keys.public_key_hex().ok_or("development keys: the Discord seed is not 32 hex bytes")?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(&public, &mut key).map_err(|e| e.to_string())?;
        config.discord_public_key = Some(key);
        if announce {
            eprintln!("Discord public key (development{}): {public}", if created { ", new" } else { "" });
        }
    }
    if config.github_webhook_secret.is_none() {
        config.github_webhook_secret = Some(Secret::new(keys.github_webhook_secret.clone()));
        if announce {
            eprintln!("GitHub webhook secret (development): in {}", crate::devkeys::path(&config.data_dir).display());
        }
    }
    if config.audit_hmac_key.is_none() {
        config.audit_hmac_key = Some(Secret::new(keys.audit_hmac_key.clone()));
    }
    if config.discord_bot_token.is_none() && config.github_token.is_none() && !config.dry_run {
        config.dry_run = true;
        if announce {
            eprintln!(
                "No DISCORD_BOT_TOKEN or GITHUB_TOKEN: running dry (DRY_RUN=true) against the playground's fakes"
            );
        }
    }
    Ok(config)
}

/// The ports the handlers act through.
type Ports = (Arc<dyn Discord>, Option<Arc<dyn GitHub>>);

/// The Discord and GitHub ports: the playground's fakes with no tokens, else the real clients
/// with the playground recording what is said through Discord.
fn clients(config: &Config, pg: &Playground) -> Result<Ports, String> {
    if pg.fakes {
        return Ok((pg.discord.clone(), Some(Arc::new(pg.github.clone()))));
    }
    let github = valine_clients::github_api::from_config(config, valine_discord::app::GITHUB_READ_TIMEOUT)
        .map_err(|e| e.to_string())?;
    Ok((pg.discord.clone(), github))
}

/// Everything `serve` runs, built but not yet listening.
pub struct Server {
    pub router: Router,
    pub playground: Arc<Playground>,
    pub stores: Stores,
    /// Sending `true` ends the page's event streams (they would hold a graceful shutdown open).
    pub stop: tokio::sync::watch::Sender<bool>,
}

impl Server {
    /// Both handlers on `stores`, on the fakes when `config.dry_run` (after [`local_config`]),
    /// their deferred jobs as Tokio tasks, and the incident tick every `tick`.
    pub async fn build(config: &Config, stores: Stores, tick: std::time::Duration) -> Result<Self, String> {
        let fakes = playground::uses_fakes(config);
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let real = if fakes {
            None
        } else {
            Some(valine_clients::discord_api::from_config(config, valine_discord::app::DISCORD_ATTEMPT_TIMEOUT))
        };
        let pg = Playground::new(config, real, stopping);
        let (discord_port, github_port) = clients(config, &pg)?;
        let (jobs, mut rx) = LocalJobs::new();
        let discord = Arc::new(
            valine_discord::App::new(valine_discord::app::AppParts {
                config: config.clone(),
                stores: stores.clone(),
                discord: discord_port.clone(),
                github: github_port.clone(),
                jobs: Arc::new(jobs),
                metrics: Metrics::stdout("discord-handler"),
            })
            .map_err(|e| e.to_string())?,
        );
        let github = Arc::new(
            valine_github::App::new(valine_github::app::AppParts {
                config: config.clone(),
                stores: stores.clone(),
                discord: discord_port,
                metrics: Metrics::stdout("github-handler"),
            })
            .map_err(|e| e.to_string())?
            .with_github(github_port),
        );
        // The schedule of the deployed function, more often here.
        let ticker = github.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(tick);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                every.tick().await;
                ticker.tick().await;
            }
        });
        let worker = discord.clone();
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                let app = worker.clone();
                tokio::spawn(async move { app.run_job(job).await });
            }
        });
        let router = router(Apps { discord, github }).merge(playground::routes(pg.clone()));
        Ok(Self { router, playground: pg, stores, stop })
    }
}

pub async fn run(addr: SocketAddr) -> Result<(), String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let config = local_config(config, true)?;
    let fakes = playground::uses_fakes(&config);
    let config = if fakes { playground::demo_config(config, |k| std::env::var_os(k).is_some()) } else { config };
    valine_domain::logging::init("valinectl", &config.log_level);
    let stores = Stores::open(&config).await.map_err(|e| e.to_string())?;
    let server = Server::build(&config, stores, std::time::Duration::from_secs(60)).await?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    server.playground.listening(&format!("http://{local}"))?;
    eprintln!(
        "valinectl serve: http://{local} (store: {} in {}, dry run: {})",
        server.stores.kind,
        config.data_dir.display(),
        config.dry_run
    );
    if fakes {
        eprintln!(
            "  PLAYGROUND MODE: no tokens, so Discord and GitHub are in-process fakes with a demo setup \
             (repository {}, an #alerts channel, users Ada/admin, Rui/responder, Max/member)",
            config.github_repo.as_ref().map_or_else(String::new, ToString::to_string)
        );
    } else {
        eprintln!("  real Discord and GitHub clients; the page shows what the bot says through Discord");
    }
    eprintln!("  open http://{local}/ in a browser");
    eprintln!("  POST /discord  POST /github/webhook  GET /health  GET /health/ready  GET / (playground)");
    tracing::info!(addr = %local, playground = fakes, "serving");
    let stop = server.stop;
    axum::serve(listener, server.router)
        .with_graceful_shutdown(async move {
            shutdown().await;
            let _ = stop.send(true);
        })
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("valinectl serve: stopped");
    Ok(())
}

fn router(apps: Apps) -> Router {
    Router::new()
        .route("/discord", post(discord))
        .route("/github/webhook", post(github))
        .route("/health", get(health))
        .route("/health/ready", get(ready))
        .route("/github/health", get(github_passthrough))
        .route("/github/health/ready", get(github_passthrough))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(apps)
}

fn to_response(r: HttpResponse) -> Response {
    (r.status, [(axum::http::header::CONTENT_TYPE, r.content_type())], r.body).into_response()
}

async fn discord(State(apps): State<Apps>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    to_response(apps.discord.handle(HttpRequest::new(Method::POST, uri.path(), headers, body)).await)
}

async fn github(State(apps): State<Apps>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    to_response(apps.github.handle(HttpRequest::new(Method::POST, uri.path(), headers, body)).await)
}

async fn github_passthrough(State(apps): State<Apps>, uri: Uri) -> Response {
    to_response(apps.github.handle(HttpRequest::new(Method::GET, uri.path(), HeaderMap::new(), Bytes::new())).await)
}

async fn health() -> Response {
    to_response(valine_service::http::health("valinectl"))
}

async fn ready(State(apps): State<Apps>) -> Response {
    to_response(apps.discord.readiness().await)
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod playground_tests;
