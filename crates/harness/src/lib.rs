//! The checks the fuzz targets make, in one place: `fuzz/` runs them under libFuzzer (nightly,
//! `cargo fuzz run`), and this crate's tests run them on generated inputs inside `cargo test`, so
//! CI exercises the same properties on a stable toolchain.
//!
//! Each check panics when a property fails, which is what both drivers report.

// Test code (the fuzz checks panic when a property fails): the no-panic lints hold for production code only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderValue, Method};
use valine_domain::config::Config;
use valine_domain::logging::Capture;
use valine_domain::metrics::Metrics;
use valine_domain::redact::{StreamState, find_secrets, redact as redact_text, redact_bytes, redact_partial};
use valine_service::http::HttpRequest;
use valine_service::testing::{discord_key, discord_signature, down_stores, github_signature, public_key_hex};
use valine_store::Stores;
use valine_store::embedded::EmbeddedStore;

/// The redactor on arbitrary bytes: never panics, never copies when nothing changed, keeps UTF-8
/// valid, and a GitHub token set apart by spaces never survives; finding secrets and the
/// streaming cut never panic either, and a cut never reaches past the input.
pub fn redact(data: &[u8]) {
    if let Cow::Borrowed(b) = redact_bytes(data) {
        assert_eq!(b, data);
    }
    for f in find_secrets(data) {
        assert!(f.start <= f.end && f.end <= data.len());
    }
    let (_, consumed) = redact_partial(data, &mut StreamState::default());
    assert!(consumed <= data.len());
    if let Ok(text) = std::str::from_utf8(data) {
        let out = redact_text(text);
        assert!(std::str::from_utf8(out.as_bytes()).is_ok());
        // Assembled here so that this file holds no token shape itself.
        let token = format!("ghp_{}0123456789ab", "FUZZfuzz".repeat(3) + "FUZZfuzz");
        let planted = format!("{text} {token} {text}");
        assert!(!redact_text(&planted).contains(&token), "planted token survived");
    }
}

/// Runs `f` on a single-threaded runtime kept for the whole process (libFuzzer calls the
/// target millions of times; a runtime per call would dominate).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("runtime: {e}"))
    })
}

fn discord_app() -> &'static valine_discord::App {
    static APP: OnceLock<valine_discord::App> = OnceLock::new();
    APP.get_or_init(|| {
        let public = public_key_hex(&discord_key(5));
        let config = Config::from_lookup(|k| match k {
            "DISCORD_PUBLIC_KEY" => Some(public.clone()),
            "DRY_RUN" => Some("true".into()),
            "ADMIN_USER_IDS" => Some("1".into()),
            "ENABLE_DEBUG_CMD" => Some("true".into()),
            _ => None,
        })
        .unwrap_or_else(|e| panic!("config: {e}"));
        let (jobs, rx) = valine_discord::jobs::LocalJobs::new();
        // Deferred jobs are queued and never run: the property is about the answer.
        std::mem::forget(rx);
        valine_discord::App::new(valine_discord::AppParts {
            discord: valine_clients::discord_api::from_config(&config, std::time::Duration::from_millis(50)),
            github: None,
            config,
            stores: down_stores(),
            jobs: Arc::new(jobs),
            metrics: Metrics::new("fuzz", Arc::new(Capture::default())),
        })
        .unwrap_or_else(|e| panic!("app: {e}"))
    })
}

/// The fuzz target's entry: signed when the first byte is even.
pub fn interaction_bytes(data: &[u8]) -> u16 {
    interaction(data.first().is_some_and(|b| b & 1 == 0), data)
}

/// Interaction verification and parsing: any body, correctly signed or not, gets an answer
/// below 500 and never a panic. The store here is down, so every path that reaches it meets an
/// outage too.
pub fn interaction(sign: bool, data: &[u8]) -> u16 {
    let app = discord_app();
    let ts = valine_domain::clock::now_secs().to_string();
    let sig = if sign { discord_signature(&discord_key(5), &ts, data) } else { "00".repeat(64) };
    let mut headers = HeaderMap::new();
    headers.insert("x-signature-ed25519", header(&sig));
    headers.insert("x-signature-timestamp", header(&ts));
    let res = runtime().block_on(app.handle(HttpRequest::new(Method::POST, "/discord", headers, data.to_vec())));
    assert!(res.status.as_u16() < 500, "{} for {:?}", res.status, String::from_utf8_lossy(data));
    res.status.as_u16()
}

/// The event names the webhook check sends a body under, chosen by its first byte.
pub const EVENTS: [&str; 6] = ["workflow_run", "deployment_status", "ping", "push", "issues", "workflow_job"];

struct GitHubFixture {
    app: valine_github::App,
    _dir: PathBuf,
}

fn github_app() -> &'static GitHubFixture {
    static F: OnceLock<GitHubFixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("valine-harness-{}", std::process::id()));
        let store = EmbeddedStore::open(&dir.join("f.redb")).unwrap_or_else(|e| panic!("store: {e}"));
        let stores = Stores::from_adapter(Arc::new(store), "embedded");
        let config = Config::from_lookup(|k| match k {
            "GITHUB_WEBHOOK_SECRET" => Some("fuzz".into()),
            "DRY_RUN" => Some("true".into()),
            "ENABLE_ALERTS" => Some("true".into()),
            "ALERT_CHANNEL_ID" => Some("1".into()),
            _ => None,
        })
        .unwrap_or_else(|e| panic!("config: {e}"));
        let app = valine_github::App::new(valine_github::AppParts {
            discord: valine_clients::discord_api::from_config(&config, std::time::Duration::from_millis(50)),
            config,
            stores,
            metrics: Metrics::new("fuzz", Arc::new(Capture::default())),
        })
        .unwrap_or_else(|e| panic!("app: {e}"));
        GitHubFixture { app, _dir: dir }
    })
}

/// The fuzz target's entry: the first byte picks the event name.
pub fn webhook_bytes(data: &[u8]) -> u16 {
    webhook(EVENTS[data.first().map_or(0, |b| *b as usize) % EVENTS.len()], data)
}

/// Delivery verification and event handling: any signed body under any event name gets an
/// answer below 500 (the store here answers) and never a panic.
pub fn webhook(event: &'static str, data: &[u8]) -> u16 {
    let f = github_app();
    let mut headers = HeaderMap::new();
    headers.insert("x-github-event", HeaderValue::from_static(event));
    headers.insert("x-hub-signature-256", header(&github_signature("fuzz", data)));
    // A new delivery id each time, so that no body is turned away as a duplicate of another.
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = format!("fuzz-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    headers.insert("x-github-delivery", header(&id));
    let res =
        runtime().block_on(f.app.handle(HttpRequest::new(Method::POST, "/github/webhook", headers, data.to_vec())));
    assert!(res.status.as_u16() < 500, "{} for {:?}", res.status, String::from_utf8_lossy(data));
    res.status.as_u16()
}

fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|e| panic!("header {value:?}: {e}"))
}
