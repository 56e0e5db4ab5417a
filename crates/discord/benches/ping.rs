//! A warm PING through the whole handler (verify, parse, answer) against the bare signature
//! check it contains. `cargo bench -p valine-discord`.

// Benchmark code: the no-panic lints hold for production code only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method};
use valine_discord::jobs::LocalJobs;
use valine_discord::verify::Verifier;
use valine_discord::{App, AppParts};
use valine_domain::config::Config;
use valine_domain::logging::Capture;
use valine_domain::metrics::Metrics;
use valine_domain::signing::{discord_signature, public_key_hex};
use valine_service::http::HttpRequest;

fn ping(c: &mut Criterion) {
    let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let public = public_key_hex(&key);
    let body = br#"{"type":1,"id":"1383825439574851596","application_id":"1290463189401731073","token":"aW50ZXJhY3Rpb24","version":1}"#;
    let ts = valine_domain::clock::now_secs().to_string();
    let mut headers = HeaderMap::new();
    headers.insert("x-signature-ed25519", HeaderValue::from_str(&discord_signature(&key, &ts, body)).unwrap());
    headers.insert("x-signature-timestamp", HeaderValue::from_str(&ts).unwrap());
    let request = HttpRequest::new(Method::POST, "/discord", headers, body.to_vec());

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let config = Config::from_lookup(|k| (k == "DISCORD_PUBLIC_KEY").then(|| public.clone())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stores = valine_store::Stores::from_adapter(
        Arc::new(valine_store::embedded::EmbeddedStore::open(&dir.path().join("b.redb")).unwrap()),
        "embedded",
    );
    let (jobs, _rx) = LocalJobs::new();
    let app = App::new(AppParts {
        discord: valine_clients::discord_api::from_config(&config, std::time::Duration::from_secs(2)),
        github: None,
        config,
        stores,
        jobs: Arc::new(jobs),
        metrics: Metrics::new("bench", Arc::new(Capture::default())),
    })
    .unwrap();
    let mut raw = [0u8; 32];
    hex::decode_to_slice(&public, &mut raw).unwrap();
    let verifier = Verifier::new(raw).unwrap();
    let now = valine_domain::clock::now_secs();

    let mut g = c.benchmark_group("warm_ping");
    g.bench_function("signature_check_only", |b| b.iter(|| verifier.verify(black_box(&request), now).is_ok()));
    g.bench_function("whole_handler", |b| b.iter(|| runtime.block_on(app.handle(black_box(request.clone()))).status));
    g.finish();
}

criterion_group!(benches, ping);
criterion_main!(benches);
