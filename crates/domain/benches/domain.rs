//! Redaction throughput, dedup and trace-cache operations. `cargo bench -p valine-domain --bench domain`.
//!
//! Redaction is measured twice: in wall-clock time (`redact_1MiB`), and in the CPU time of the
//! benchmark thread (`redact_1MiB_cpu`), which a machine shared with other jobs does not inflate.

// Benchmark code: the no-panic lints hold for production code only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::hint::black_box;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use valine_domain::alert::{Alert, InternalAlert, window_holds};
use valine_domain::redact::redact_bytes;
use valine_domain::trace::{Trace, TraceCache};

/// 1 MiB of realistic log text, optionally with a secret in every KiB.
fn log_text(with_secrets: bool) -> Vec<u8> {
    let lines = [
        r#"{"ts":"2026-01-02T12:00:00.000Z","level":"info","service":"discord-handler","fn":"handle_command","trace_id":"6f1c2a4e-8b3d-4c5e-9f70-112233445566","user_id":"80351110224678912","cmd":"/status","msg":"interaction answered","duration_ms":182}"#,
        "2026-01-02 12:00:01 INFO deploy: pushed commit 3f1c9a7e0d2b4c6a8e9f0a1b2c3d4e5f60718293 to main for acme/widget",
        "GET https://api.github.com/repos/acme/widget/actions/runs?per_page=5 200 312ms tokenizer=bert max_tokens=512",
    ];
    // Put together at run time, so that the source holds no secret-shaped literal for
    // `valinectl redact --check` to report.
    let secrets = [
        format!("Authorization: Bearer ghp_{}", "abcdefghijklmnopqrstuvwxyz0123456789"),
        format!("password={}", "correct-horse-battery-staple"),
        format!("AKIA{}", "IOSFODNN7EXAMPLE"),
        format!("https://user:{}@db.internal/app", "hunter2"),
    ];
    let mut out = Vec::with_capacity(1 << 20);
    let mut next_secret = 1024;
    let mut i = 0;
    while out.len() < (1 << 20) {
        out.extend_from_slice(lines[i % lines.len()].as_bytes());
        out.push(b'\n');
        if with_secrets && out.len() >= next_secret {
            out.extend_from_slice(secrets[i % secrets.len()].as_bytes());
            out.push(b'\n');
            next_secret += 1024;
        }
        i += 1;
    }
    out.truncate(1 << 20);
    out
}

fn redaction(c: &mut Criterion) {
    let mut g = c.benchmark_group("redact_1MiB");
    g.throughput(Throughput::BytesDecimal(1 << 20));
    for (name, secrets) in [("clean", false), ("secret_every_KiB", true)] {
        let text = log_text(secrets);
        g.bench_function(name, |b| b.iter(|| black_box(redact_bytes(black_box(&text))).len()));
    }
    g.finish();
}

fn redaction_cpu(c: &mut Criterion<ThreadCpuTime>) {
    let mut g = c.benchmark_group("redact_1MiB_cpu");
    g.throughput(Throughput::BytesDecimal(1 << 20));
    for (name, secrets) in [("clean", false), ("secret_every_KiB", true)] {
        let text = log_text(secrets);
        g.bench_function(name, |b| b.iter(|| black_box(redact_bytes(black_box(&text))).len()));
    }
    g.finish();
}

/// The CPU time the benchmark thread has run, in nanoseconds, from Linux's
/// `/proc/thread-self/schedstat` (its first field); time spent waiting for a core is not in it.
struct ThreadCpuTime;

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Nanoseconds of CPU time as `ms`, and throughput as decimal `MB/s`.
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, _typical: f64, values: &mut [f64]) -> &'static str {
        for v in values {
            *v /= 1e6;
        }
        "ms (CPU)"
    }
    fn scale_throughputs(&self, _typical: f64, throughput: &Throughput, values: &mut [f64]) -> &'static str {
        let per_iteration = match *throughput {
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => n as f64,
            Throughput::Elements(n) | Throughput::Bits(n) => n as f64,
            Throughput::ElementsAndBytes { bytes, .. } => bytes as f64,
        };
        for v in values {
            *v = per_iteration * 1e3 / *v;
        }
        "MB/s (CPU)"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn alert(trace: &str) -> Alert {
    Alert {
        kind: InternalAlert::DispatchFailed,
        title: "CI failed on main".into(),
        repository: "acme/widget".into(),
        workflow: "CI".into(),
        branch: "main".into(),
        commit: None,
        actor: None,
        conclusion: Some("failure".into()),
        run_url: None,
        trace_id: trace.into(),
        detail: None,
    }
}

fn dedup(c: &mut Criterion) {
    let a = alert("6f1c2a4e-8b3d-4c5e-9f70-112233445566");
    c.bench_function("dedup_key_and_window", |b| {
        b.iter(|| {
            let key = black_box(&a).dedup_key();
            black_box(window_holds(Some(1_000_300), black_box(1_000_000))) && !key.is_empty()
        })
    });
}

fn trace_cache(c: &mut Criterion) {
    let mut g = c.benchmark_group("trace_cache");
    for users in [100usize, 10_000, 100_000] {
        let cache = TraceCache::new(users);
        let trace = |u: usize| Trace {
            trace_id: format!("t-{u}"),
            user_id: u.to_string(),
            command: "/status".into(),
            started_at_ms: 0,
            duration_ms: 1,
            steps: vec![],
            error: None,
            links: vec![],
            correlation_id: None,
        };
        for u in 0..users {
            cache.put(trace(u));
        }
        let probe = (users / 2).to_string();
        g.bench_with_input(BenchmarkId::new("last_for_user", users), &users, |b, _| {
            b.iter(|| black_box(cache.last_for_user(black_box(&probe))).is_some())
        });
        let mut n = users;
        g.bench_with_input(BenchmarkId::new("put_evicting", users), &users, |b, _| {
            b.iter(|| {
                n += 1;
                cache.put(trace(n));
            })
        });
    }
    g.finish();
}

criterion_group!(benches, redaction, dedup, trace_cache);
criterion_group! {
    name = cpu_benches;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = redaction_cpu
}
criterion_main!(benches, cpu_benches);
