//! `valinectl serve`: both handlers in one process on 127.0.0.1:8787, the embedded store in
//! `DATA_DIR`, deferred jobs as Tokio tasks. Same routes as the deployed HTTP API.
//!
//! It listens on a loopback address unless `--public` says otherwise; with `--public`, every
//! route but the ones Discord, GitHub and health checks call asks for `SERVE_TOKEN`, and the
//! playground is off: its page signs whatever it is sent.

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
use valine_service::drain::LocalKick;

use crate::devkeys::DevKeys;
use crate::playground::{self, Playground};

/// Who may reach `serve`.
#[derive(Clone)]
pub(crate) enum Exposure {
    /// A loopback address: this machine only. The playground is on.
    Loopback,
    /// `--public`: anyone who reaches the address (a shared dev box, a tunnel). `POST /discord`,
    /// `POST /github/webhook` and `GET /health…` answer as deployed (they verify their own
    /// signatures); everything else needs `Authorization: Bearer $SERVE_TOKEN`, and the
    /// playground is off.
    Public { token: Secret },
}

impl std::fmt::Debug for Exposure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Exposure::Loopback => "Loopback",
            Exposure::Public { .. } => "Public",
        })
    }
}

/// The shortest `SERVE_TOKEN` accepted: a bearer token on the open network must not be guessable.
pub(crate) const MIN_SERVE_TOKEN: usize = 16;

/// Decides who may reach `serve` on `addr`: refused (before anything is made) when the address is
/// not a loopback one and `--public` was not given, or when `--public` has no `SERVE_TOKEN`.
pub(crate) fn exposure(addr: SocketAddr, public: bool, token: Option<String>) -> Result<Exposure, String> {
    if !public {
        if addr.ip().is_loopback() {
            return Ok(Exposure::Loopback);
        }
        return Err(format!(
            "serve: {addr} is not a loopback address: the playground and its development keys would be \
             open to the network. Use --addr 127.0.0.1:PORT, or --public with SERVE_TOKEN set (then every \
             route but POST /discord, POST /github/webhook and GET /health needs the token, and the \
             playground is off)"
        ));
    }
    let token = token.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).ok_or_else(|| {
        "serve --public: set SERVE_TOKEN: every route but POST /discord, POST /github/webhook and GET \
         /health needs `Authorization: Bearer $SERVE_TOKEN`"
            .to_string()
    })?;
    if token.chars().count() < MIN_SERVE_TOKEN {
        return Err(format!("serve --public: SERVE_TOKEN is shorter than {MIN_SERVE_TOKEN} characters"));
    }
    Ok(Exposure::Public { token: Secret::new(token) })
}

/// What `--public` answers without the token: what Discord, GitHub and health checks call.
fn open_route(method: &Method, path: &str) -> bool {
    match path {
        "/discord" | "/github/webhook" => method == Method::POST,
        "/health" | "/health/ready" => method == Method::GET || method == Method::HEAD,
        _ => false,
    }
}

/// `--public`: everything but [`open_route`]s needs the bearer token, compared in constant time.
async fn bearer(State(token): State<Secret>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if open_route(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(given) if valine_domain::signing::secrets_equal(given.as_bytes(), token.expose().as_bytes()) => {
            next.run(req).await
        }
        _ => (
            axum::http::StatusCode::UNAUTHORIZED,
            [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(serde_json::json!({"error": "this route needs Authorization: Bearer $SERVE_TOKEN"})),
        )
            .into_response(),
    }
}

/// Larger than both handlers' limits, so that they (not the server) answer 413 with a reason.
const BODY_LIMIT: usize = 8 * 1024 * 1024;

#[derive(Clone)]
struct Apps {
    discord: Arc<valine_discord::App>,
    github: Arc<valine_github::App>,
}

/// What the other local commands (`send`, `trace`, `tick`…) run with: the development keys, and
/// a dry run when no token is set.
pub(crate) fn local_config(config: Config) -> Result<Config, String> {
    let mut config = with_dev_keys(config, false)?;
    if config.discord_bot_token.is_none() && config.github_token.is_none() {
        config.dry_run = true;
    }
    Ok(config)
}

/// The development keys for whatever the environment left unset.
fn with_dev_keys(mut config: Config, announce: bool) -> Result<Config, String> {
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
    Ok(config)
}

/// What `serve` talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// In-process fakes of Discord and GitHub with the demo setup: nothing leaves the machine.
    Playground,
    /// The real Discord and GitHub clients, with the page recording what the bot says.
    Live,
}

/// The settings that reach the real Discord or GitHub. `serve` reads them only with `--live`:
/// a developer's shell often exports a token, and the README's first command must still give the
/// playground.
pub(crate) const LIVE_SETTINGS: [&str; 4] =
    ["DISCORD_BOT_TOKEN", "GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY"];

/// How `serve` starts: its mode, why (for the start-up banner), and one line per thing to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Start {
    pub mode: Mode,
    pub why: String,
    pub notices: Vec<String>,
}

const GITHUB_APP: &str = "GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY";

/// Decides `serve`'s mode from `--live` and which [`LIVE_SETTINGS`] are set (`is_set`). Without
/// `--live` it is the playground whatever is set, and each set one is named as ignored. With it,
/// the real clients: refused when neither Discord nor GitHub can be reached, with what to set; a
/// side that cannot is named in a notice.
pub(crate) fn decide(live: bool, is_set: impl Fn(&str) -> bool) -> Result<Start, String> {
    if !live {
        let notices =
            LIVE_SETTINGS.iter().filter(|v| is_set(v)).map(|v| format!("{v} is set; ignored without --live")).collect();
        return Ok(Start { mode: Mode::Playground, why: "no --live".into(), notices });
    }
    let discord = is_set("DISCORD_BOT_TOKEN");
    let token = is_set("GITHUB_TOKEN");
    let app = match (is_set("GITHUB_APP_ID"), is_set("GITHUB_APP_PRIVATE_KEY")) {
        (true, true) => true,
        (false, false) => false,
        (true, false) => return Err("serve --live: GITHUB_APP_ID is set without GITHUB_APP_PRIVATE_KEY".into()),
        (false, true) => return Err("serve --live: GITHUB_APP_PRIVATE_KEY is set without GITHUB_APP_ID".into()),
    };
    if !discord && !token && !app {
        return Err(format!(
            "serve --live: no credentials are set: set DISCORD_BOT_TOKEN and GITHUB_TOKEN (or {GITHUB_APP}); \
             without --live, serve runs the playground"
        ));
    }
    let mut notices = Vec::new();
    let mut uses = Vec::new();
    if discord {
        uses.push("Discord with DISCORD_BOT_TOKEN".to_string());
    } else {
        notices
            .push("DISCORD_BOT_TOKEN is not set: no posts, DMs or alerts (commands that need them say so)".to_string());
    }
    if app {
        uses.push("GitHub as the App (GITHUB_APP_ID)".to_string());
        if token {
            notices.push("GITHUB_TOKEN is set; ignored: the GitHub App is used".to_string());
        }
    } else if token {
        uses.push("GitHub with GITHUB_TOKEN".to_string());
    } else {
        notices.push(format!("no GITHUB_TOKEN (or {GITHUB_APP}): commands that need GitHub answer with what to set"));
    }
    Ok(Start { mode: Mode::Live, why: format!("--live: {}", uses.join(", ")), notices })
}

/// The configuration `serve` runs with in `mode`, its settings read through `get`. The playground
/// never reads [`LIVE_SETTINGS`] (so neither a token nor a half-set App in the shell reaches it),
/// runs dry as with no tokens, and fills the demo setup into what is left unset.
pub(crate) fn serve_config(mode: Mode, get: impl Fn(&str) -> Option<String>, announce: bool) -> Result<Config, String> {
    let config = match mode {
        Mode::Live => Config::from_lookup(&get),
        Mode::Playground => Config::from_lookup(|k| if LIVE_SETTINGS.contains(&k) { None } else { get(k) }),
    }
    .map_err(|e| e.to_string())?;
    let mut config = with_dev_keys(config, announce)?;
    if mode == Mode::Playground {
        config.dry_run = true;
        config = playground::demo_config(config, |k| get(k).is_some());
    }
    Ok(config)
}

/// The ports the handlers act through.
type Ports = (Arc<dyn Discord>, Option<Arc<dyn GitHub>>);

/// The Discord and GitHub ports: the playground's fakes, or (live) the real clients with the
/// playground recording what is said through Discord.
fn clients(config: &Config, pg: &Playground) -> Result<Ports, String> {
    if pg.fakes {
        return Ok((pg.discord.clone(), Some(Arc::new(pg.github.clone()))));
    }
    let github = valine_clients::github_api::from_config(config, valine_discord::app::GITHUB_READ_TIMEOUT)
        .map_err(|e| e.to_string())?;
    Ok((pg.discord.clone(), github))
}

/// Everything `serve` runs, built but not yet listening.
pub(crate) struct Server {
    pub router: Router,
    pub playground: Arc<Playground>,
    pub stores: Stores,
    /// Sending `true` ends the page's event streams (they would hold a graceful shutdown open).
    pub stop: tokio::sync::watch::Sender<bool>,
}

/// The outbox's drainer under `serve`: at start (what a killed process left), whenever a delivery
/// leaves a card unsent, and while cards wait, when the soonest may be tried again.
async fn drainer(github: Arc<valine_github::App>, wake: Arc<tokio::sync::Notify>) {
    use std::time::Duration;
    loop {
        let report =
            github.incidents.drain_until(valine_service::deadline::Deadline::after(Duration::from_secs(30))).await;
        let wait = match report.next_due_ms {
            Some(at) if report.left > 0 => Duration::from_millis(at.saturating_sub(valine_domain::clock::now_millis()))
                .clamp(Duration::from_millis(100), Duration::from_secs(5)),
            _ => Duration::from_secs(60),
        };
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

impl Server {
    /// Both handlers on `stores` (`config` from [`serve_config`] for `mode`), their deferred jobs
    /// as Tokio tasks, the outbox's drainer, and the incident tick every `tick`; the playground unless `exposure` is
    /// public, which puts everything but the open routes behind the token.
    pub(crate) async fn build(
        config: &Config,
        mode: Mode,
        stores: Stores,
        tick: std::time::Duration,
        exposure: &Exposure,
    ) -> Result<Self, String> {
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let real = match mode {
            Mode::Playground => None,
            Mode::Live => {
                Some(valine_clients::discord_api::from_config(config, valine_discord::app::DISCORD_ATTEMPT_TIMEOUT))
            }
        };
        let pg = Playground::new(config, real, stopping);
        // The fake GitHub's demo has a known issue (its "known issue" scenario fails with it).
        if let (Mode::Playground, Some(known)) = (mode, pg.github.known_issue())
            && let Err(e) = stores.signatures.know(&known).await
        {
            tracing::warn!(error = %e, "playground: could not record the demo's known issue");
        }
        let (discord_port, github_port) = clients(config, &pg)?;
        let (jobs, mut rx) = LocalJobs::new();
        let wake = Arc::new(tokio::sync::Notify::new());
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
            .with_github(github_port)
            .with_kick(Arc::new(LocalKick { wake: wake.clone() })),
        );
        tokio::spawn(drainer(github.clone(), wake));
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
        let router = router(Apps { discord, github });
        let router = match exposure {
            Exposure::Loopback => router.merge(playground::routes(pg.clone())),
            Exposure::Public { token } => router.layer(axum::middleware::from_fn_with_state(token.clone(), bearer)),
        };
        Ok(Self { router, playground: pg, stores, stop })
    }
}

/// A setting is set when it holds more than blanks, as [`Config`] reads it.
fn env_is_set(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| !v.trim().is_empty())
}

pub(crate) async fn run(addr: SocketAddr, live: bool, public: bool) -> Result<(), String> {
    // First: nothing is made (keys, store) for a server that may not start.
    let exposure = exposure(addr, public, std::env::var("SERVE_TOKEN").ok())?;
    let start = decide(live, env_is_set)?;
    for notice in &start.notices {
        eprintln!("{notice}");
    }
    let config = serve_config(start.mode, |k| std::env::var(k).ok(), true)?;
    valine_domain::logging::init("valinectl", &config.log_level);
    let stores = Stores::open(&config).await.map_err(|e| e.to_string())?;
    let server = Server::build(&config, start.mode, stores, std::time::Duration::from_secs(60), &exposure).await?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    // The scenarios' and dispatches' deliveries go to the server's own loopback side.
    let own = match local.ip() {
        ip if ip.is_unspecified() && ip.is_ipv6() => format!("http://[::1]:{}", local.port()),
        ip if ip.is_unspecified() => format!("http://127.0.0.1:{}", local.port()),
        _ => format!("http://{local}"),
    };
    server.playground.listening(&own)?;
    eprintln!(
        "valinectl serve: http://{local} (store: {} in {}, dry run: {})",
        server.stores.kind,
        config.data_dir.display(),
        config.dry_run
    );
    match start.mode {
        Mode::Playground => eprintln!(
            "  PLAYGROUND MODE ({}): Discord and GitHub are in-process fakes with a demo setup \
             (repository {}, an #alerts channel, users Ada/admin, Rui/responder, Max/member); \
             nothing leaves this machine. `serve --live` uses real tokens",
            start.why,
            config.github_repo.as_ref().map_or_else(String::new, ToString::to_string)
        ),
        Mode::Live => {
            eprintln!("  LIVE MODE ({}); the page shows what the bot says through Discord", start.why)
        }
    }
    match &exposure {
        Exposure::Loopback => {
            eprintln!("  open http://{local}/ in a browser");
            eprintln!("  POST /discord  POST /github/webhook  GET /health  GET /health/ready  GET / (playground)");
        }
        Exposure::Public { .. } => {
            eprintln!("  PUBLIC (--public): anyone who reaches {local} is answered; the playground is off");
            eprintln!(
                "  POST /discord  POST /github/webhook  GET /health  GET /health/ready; every other route needs \
                 Authorization: Bearer $SERVE_TOKEN"
            );
        }
    }
    tracing::info!(addr = %local, playground = (start.mode == Mode::Playground), "serving");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn set(vars: &'static [&'static str]) -> impl Fn(&str) -> bool {
        move |k| vars.contains(&k)
    }

    #[test]
    fn without_live_it_is_the_playground_and_each_token_set_is_named_as_ignored() {
        let start = decide(false, set(&[])).unwrap();
        assert_eq!(start, Start { mode: Mode::Playground, why: "no --live".into(), notices: vec![] });
        let start = decide(false, set(&["GITHUB_TOKEN", "DISCORD_BOT_TOKEN", "STAGE"])).unwrap();
        assert_eq!(start.mode, Mode::Playground);
        assert_eq!(
            start.notices,
            ["DISCORD_BOT_TOKEN is set; ignored without --live", "GITHUB_TOKEN is set; ignored without --live"]
        );
        // Even a half-set App: the playground never reads it, so it cannot be wrong.
        let start = decide(false, set(&["GITHUB_APP_ID"])).unwrap();
        assert_eq!(start.mode, Mode::Playground);
        assert_eq!(start.notices, ["GITHUB_APP_ID is set; ignored without --live"]);
    }

    #[test]
    fn live_with_nothing_to_go_live_with_is_refused_naming_what_to_set() {
        let err = decide(true, set(&["STAGE"])).unwrap_err();
        for var in ["DISCORD_BOT_TOKEN", "GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY"] {
            assert!(err.contains(var), "{err}");
        }
        assert!(err.contains("without --live"), "{err}");
        let err = decide(true, set(&["DISCORD_BOT_TOKEN", "GITHUB_APP_ID"])).unwrap_err();
        assert_eq!(err, "serve --live: GITHUB_APP_ID is set without GITHUB_APP_PRIVATE_KEY");
        let err = decide(true, set(&["GITHUB_APP_PRIVATE_KEY"])).unwrap_err();
        assert_eq!(err, "serve --live: GITHUB_APP_PRIVATE_KEY is set without GITHUB_APP_ID");
    }

    #[test]
    fn live_says_what_it_uses_and_which_side_is_missing() {
        let start = decide(true, set(&["DISCORD_BOT_TOKEN", "GITHUB_TOKEN"])).unwrap();
        assert_eq!(start.mode, Mode::Live);
        assert_eq!(start.why, "--live: Discord with DISCORD_BOT_TOKEN, GitHub with GITHUB_TOKEN");
        assert!(start.notices.is_empty());

        let start = decide(true, set(&["GITHUB_TOKEN"])).unwrap();
        assert_eq!(start.why, "--live: GitHub with GITHUB_TOKEN");
        assert_eq!(
            start.notices,
            ["DISCORD_BOT_TOKEN is not set: no posts, DMs or alerts (commands that need them say so)"]
        );

        let start = decide(true, set(&["DISCORD_BOT_TOKEN"])).unwrap();
        assert_eq!(start.why, "--live: Discord with DISCORD_BOT_TOKEN");
        assert_eq!(start.notices.len(), 1);
        assert!(start.notices[0].starts_with("no GITHUB_TOKEN (or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY)"));

        // The App wins over a token, as in the deployed functions.
        let all = set(&["DISCORD_BOT_TOKEN", "GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY"]);
        let start = decide(true, all).unwrap();
        assert_eq!(start.why, "--live: Discord with DISCORD_BOT_TOKEN, GitHub as the App (GITHUB_APP_ID)");
        assert_eq!(start.notices, ["GITHUB_TOKEN is set; ignored: the GitHub App is used"]);
    }

    #[test]
    fn the_playground_config_holds_no_live_setting_and_live_holds_them() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_string_lossy().to_string();
        let shell = move |k: &str| match k {
            "DATA_DIR" => Some(data.clone()),
            "DISCORD_BOT_TOKEN" => Some("shell-discord-token".into()),
            "GITHUB_TOKEN" => Some("shell-github-token".into()),
            "GITHUB_APP_ID" => Some("not a number".into()),
            _ => None,
        };
        let config = serve_config(Mode::Playground, &shell, false).unwrap();
        assert!(config.discord_bot_token.is_none() && config.github_token.is_none());
        assert!(config.github_app_id.is_none() && config.github_app_private_key.is_none());
        assert!(config.dry_run);
        assert_eq!(config.github_repo, Some(playground::demo_repo()));
        assert!(config.discord_public_key.is_some() && config.github_webhook_secret.is_some());

        // Live reads them all, and so refuses the App id that is not one.
        let err = serve_config(Mode::Live, &shell, false).unwrap_err();
        assert!(err.contains("GITHUB_APP_ID"), "{err}");
        let live = |k: &str| if k == "GITHUB_APP_ID" { None } else { shell(k) };
        let config = serve_config(Mode::Live, live, false).unwrap();
        assert_eq!(config.discord_bot_token.as_ref().map(Secret::expose), Some("shell-discord-token"));
        assert_eq!(config.github_token.as_ref().map(Secret::expose), Some("shell-github-token"));
        assert!(!config.dry_run);
        assert_eq!(config.github_repo, None);
    }
}
