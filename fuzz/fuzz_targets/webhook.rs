//! Delivery verification and event handling: any signed body under any event name gets an
//! answer below 500 (the store here always answers) and never a panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use valine_domain::config::Config;
use valine_service::http::HttpRequest;
use valine_domain::logging::Capture;
use valine_domain::metrics::Metrics;
use valine_store::Stores;
use valine_store::embedded::EmbeddedStore;
use valine_service::testing::github_signature;
use valine_github::{App, AppParts};

const EVENTS: [&str; 6] = ["workflow_run", "deployment_status", "ping", "push", "issues", "workflow_job"];

struct Fixture {
    runtime: tokio::runtime::Runtime,
    app: App,
    _dir: std::path::PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = std::env::temp_dir().join(format!("valine-fuzz-{}", std::process::id()));
        let stores = Stores::from_adapter(Arc::new(EmbeddedStore::open(&dir.join("f.redb")).unwrap()), "embedded");
        let config = Config::from_lookup(|k| match k {
            "GITHUB_WEBHOOK_SECRET" => Some("fuzz".into()),
            "DRY_RUN" => Some("true".into()),
            "ENABLE_ALERTS" => Some("true".into()),
            "ALERT_CHANNEL_ID" => Some("1".into()),
            _ => None,
        })
        .unwrap();
        let app = App::new(AppParts {
            discord: valine_clients::discord_api::from_config(&config, std::time::Duration::from_millis(50)),
            config,
            stores,
            metrics: Metrics::new("fuzz", Arc::new(Capture::default())),
        })
        .unwrap();
        Fixture { runtime, app, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let event = EVENTS[data.first().map_or(0, |b| *b as usize) % EVENTS.len()];
    let mut headers = HeaderMap::new();
    headers.insert("x-github-event", HeaderValue::from_static(event));
    headers.insert("x-hub-signature-256", HeaderValue::from_str(&github_signature("fuzz", data)).unwrap());
    let res = f.runtime.block_on(f.app.handle(HttpRequest::new(Method::POST, "/github/webhook", headers, data.to_vec())));
    assert!(res.status.as_u16() < 500, "{} for {:?}", res.status, String::from_utf8_lossy(data));
});
