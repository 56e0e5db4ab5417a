//! Interaction verification and parsing: any body, correctly signed or not, gets an answer
//! below 500 and never a panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use valine_domain::config::Config;
use valine_service::http::HttpRequest;
use valine_domain::logging::Capture;
use valine_domain::metrics::Metrics;
use valine_service::testing::{discord_key, discord_signature, down_stores, public_key_hex};
use valine_discord::jobs::LocalJobs;
use valine_discord::{App, AppParts};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    app: App,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let public = public_key_hex(&discord_key(5));
        let config = Config::from_lookup(|k| match k {
            "DISCORD_PUBLIC_KEY" => Some(public.clone()),
            "DRY_RUN" => Some("true".into()),
            "ADMIN_USER_IDS" => Some("1".into()),
            "ENABLE_DEBUG_CMD" => Some("true".into()),
            _ => None,
        })
        .unwrap();
        let (jobs, _rx) = LocalJobs::new();
        std::mem::forget(_rx);
        let app = App::new(AppParts {
            discord: valine_clients::discord_api::from_config(&config, std::time::Duration::from_millis(50)),
            github: None,
            config,
            stores: down_stores(),
            jobs: Arc::new(jobs),
            metrics: Metrics::new("fuzz", Arc::new(Capture::default())),
        })
        .unwrap();
        Fixture { runtime, app }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let ts = valine_domain::clock::now_secs().to_string();
    let sign = data.first().is_some_and(|b| b & 1 == 0);
    let mut headers = HeaderMap::new();
    let sig = if sign { discord_signature(&discord_key(5), &ts, data) } else { "00".repeat(64) };
    headers.insert("x-signature-ed25519", HeaderValue::from_str(&sig).unwrap());
    headers.insert("x-signature-timestamp", HeaderValue::from_str(&ts).unwrap());
    let res = f.runtime.block_on(f.app.handle(HttpRequest::new(Method::POST, "/discord", headers, data.to_vec())));
    assert!(res.status.as_u16() < 500, "{} for {:?}", res.status, String::from_utf8_lossy(data));
});
