//! JSON log lines, one object per line on stdout, every string passed through the redactor:
//!
//! `{"ts":"…","level":"info","service":"discord-handler","fn":"handle_status","trace_id":"…",
//! "correlation_id":"…","user_id":"…","cmd":"/status","msg":"…",…}`
//!
//! Fields come from the event and from every span it sits in (innermost wins), so a handler
//! opens one span with `trace_id`, `user_id` and `cmd` and every line inside carries them. A
//! field whose name says secret (`token`, `password`, …) is masked whole, whatever its value.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::redact::{MASK, is_secret_key, redact};

/// Where finished lines go: stdout in production, a buffer in tests.
pub trait LineSink: Send + Sync + 'static {
    fn write_line(&self, line: &str);
}

/// Standard output, one `write` per line so lines from several threads never interleave.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stdout;

impl LineSink for Stdout {
    fn write_line(&self, line: &str) {
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&buf);
        let _ = out.flush();
    }
}

/// Keeps lines in memory, for tests.
#[derive(Debug, Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<String>>>);

impl Capture {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    pub fn text(&self) -> String {
        self.lines().join("\n")
    }
}

impl LineSink for Capture {
    fn write_line(&self, line: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(line.to_string());
    }
}

/// Keys written first, in this order, when present.
const LEADING: [&str; 5] = ["trace_id", "correlation_id", "user_id", "cmd", "msg"];

#[derive(Debug, Clone)]
enum Value {
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

#[derive(Debug, Default, Clone)]
struct Fields(Vec<(&'static str, Value)>);

impl Fields {
    fn set(&mut self, key: &'static str, value: Value) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(name(field), Value::Str(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(name(field), Value::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(name(field), Value::U64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(name(field), Value::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(name(field), Value::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(s) = source {
            let _ = write!(text, ": {s}");
            source = s.source();
        }
        self.set(name(field), Value::Str(text));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(name(field), Value::Str(format!("{value:?}")));
    }
}

fn name(field: &Field) -> &'static str {
    match field.name() {
        "message" => "msg",
        other => other,
    }
}

/// The layer that writes JSON lines.
pub struct JsonLayer {
    service: &'static str,
    sink: Arc<dyn LineSink>,
}

impl JsonLayer {
    pub fn new(service: &'static str, sink: Arc<dyn LineSink>) -> Self {
        Self { service, sink }
    }
}

impl<S> Layer<S> for JsonLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(fields) = ext.get_mut::<Fields>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        let mut function: Option<&'static str> = None;
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                function = Some(span.name());
                if let Some(span_fields) = span.extensions().get::<Fields>() {
                    for (k, v) in &span_fields.0 {
                        fields.set(k, v.clone());
                    }
                }
            }
        }
        event.record(&mut fields);
        let meta = event.metadata();
        let function = match fields.0.iter().position(|(k, _)| *k == "fn") {
            Some(i) => match fields.0.remove(i).1 {
                Value::Str(s) => s,
                _ => String::new(),
            },
            None => {
                function.map_or_else(|| meta.target().rsplit("::").next().unwrap_or("").to_string(), str::to_string)
            }
        };
        let line = render(crate::clock::now_millis(), level_name(*meta.level()), self.service, &function, &fields);
        self.sink.write_line(&line);
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        _ => "debug",
    }
}

fn render(ts_ms: u64, level: &str, service: &str, function: &str, fields: &Fields) -> String {
    let mut line = String::with_capacity(256);
    line.push_str("{\"ts\":\"");
    line.push_str(&crate::clock::rfc3339_millis(ts_ms));
    line.push_str("\",\"level\":\"");
    line.push_str(level);
    line.push_str("\",\"service\":");
    push_json_str(&mut line, service);
    line.push_str(",\"fn\":");
    push_json_str(&mut line, &redact(function));
    for key in LEADING {
        if let Some((_, v)) = fields.0.iter().find(|(k, _)| *k == key) {
            push_field(&mut line, key, v);
        }
    }
    for (k, v) in &fields.0 {
        if !LEADING.contains(k) && !matches!(*k, "ts" | "level" | "service") {
            push_field(&mut line, k, v);
        }
    }
    line.push('}');
    line
}

fn push_field(line: &mut String, key: &str, value: &Value) {
    line.push(',');
    push_json_str(line, key);
    line.push(':');
    let secret_name = is_secret_key(key);
    match value {
        Value::Str(s) if secret_name && !s.is_empty() => push_json_str(line, MASK),
        Value::Str(s) => push_json_str(line, &redact(s)),
        _ if secret_name => push_json_str(line, MASK),
        Value::I64(n) => {
            let _ = write!(line, "{n}");
        }
        Value::U64(n) => {
            let _ = write!(line, "{n}");
        }
        Value::F64(n) if n.is_finite() => {
            let _ = write!(line, "{n}");
        }
        Value::F64(n) => push_json_str(line, &n.to_string()),
        Value::Bool(b) => line.push_str(if *b { "true" } else { "false" }),
    }
}

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The filter for a `LOG_LEVEL`: the level for Valine's crates, and `warn` for the libraries
/// underneath, whose debug output is noise in an operator's log.
pub fn filter(level: &str) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    let ours = match level {
        "trace" => LevelFilter::TRACE,
        "debug" => LevelFilter::DEBUG,
        "warn" => LevelFilter::WARN,
        "error" => LevelFilter::ERROR,
        _ => LevelFilter::INFO,
    };
    Targets::new()
        .with_default(ours.min(LevelFilter::WARN))
        .with_target("valine_domain", ours)
        .with_target("valine_store", ours)
        .with_target("valine_clients", ours)
        .with_target("valine_service", ours)
        .with_target("valine_discord", ours)
        .with_target("valine_github", ours)
        .with_target("valinectl", ours)
        .with_target("discord_handler", ours)
        .with_target("github_handler", ours)
}

/// For a handler's `main`: reads the configuration and installs the JSON log at its level. An
/// invalid configuration is logged (at `info`) before it is returned, so the reason is in the log.
pub fn init_from_env(service: &'static str) -> Result<crate::config::Config, crate::config::ConfigError> {
    match crate::config::Config::from_env() {
        Ok(config) => {
            init(service, &config.log_level);
            Ok(config)
        }
        Err(e) => {
            init(service, "info");
            tracing::error!(error = %e, "invalid configuration");
            Err(e)
        }
    }
}

/// Installs the JSON layer on stdout as the global subscriber. Call once, first thing in `main`.
pub fn init(service: &'static str, level: &str) {
    init_with(service, level, Arc::new(Stdout));
}

/// Installs the JSON layer writing to `sink`.
pub fn init_with(service: &'static str, level: &str, sink: Arc<dyn LineSink>) {
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber = tracing_subscriber::registry().with(JsonLayer::new(service, sink).with_filter(filter(level)));
    let _ = tracing::subscriber::set_global_default(subscriber);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    const CANARY: &str = "ghp_CANARYcanaryCANARYcanary0123456789ab";

    #[derive(Debug, thiserror::Error)]
    #[error("request failed with Authorization: Bearer {0}")]
    struct Failure(String);

    fn capture<F: FnOnce()>(f: F) -> Vec<serde_json::Value> {
        let sink = Capture::default();
        let subscriber = tracing_subscriber::registry()
            .with(JsonLayer::new("test-service", Arc::new(sink.clone())).with_filter(filter("debug")));
        tracing::subscriber::with_default(subscriber, f);
        sink.lines().iter().map(|l| serde_json::from_str(l).expect("every line is one JSON object")).collect()
    }

    #[test]
    fn lines_have_the_documented_shape_and_order() {
        let lines = capture(|| {
            let span = tracing::info_span!("handle_diagnose", trace_id = "t-1", user_id = "42", cmd = "/diagnose");
            let _g = span.enter();
            tracing::info!(correlation_id = "c-9", extra = 5u64, ok = true, "dispatched");
        });
        assert_eq!(lines.len(), 1);
        let l = &lines[0];
        assert_eq!(l["level"], "info");
        assert_eq!(l["service"], "test-service");
        assert_eq!(l["fn"], "handle_diagnose");
        assert_eq!(l["trace_id"], "t-1");
        assert_eq!(l["correlation_id"], "c-9");
        assert_eq!(l["user_id"], "42");
        assert_eq!(l["cmd"], "/diagnose");
        assert_eq!(l["msg"], "dispatched");
        assert_eq!(l["extra"], 5);
        assert_eq!(l["ok"], true);
        let ts = l["ts"].as_str().unwrap();
        assert_eq!(ts.len(), 24);
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T');
        let raw = {
            let sink = Capture::default();
            let subscriber = tracing_subscriber::registry().with(JsonLayer::new("s", Arc::new(sink.clone())));
            tracing::subscriber::with_default(subscriber, || {
                let span = tracing::info_span!("f", cmd = "/x", trace_id = "t");
                let _g = span.enter();
                tracing::warn!(user_id = "1", "m");
            });
            sink.lines()[0].clone()
        };
        let order: Vec<usize> =
            ["\"ts\"", "\"level\"", "\"service\"", "\"fn\"", "\"trace_id\"", "\"user_id\"", "\"cmd\"", "\"msg\""]
                .iter()
                .map(|k| raw.find(k).unwrap())
                .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{raw}");
        assert!(raw.contains("\"level\":\"warn\""));
    }

    #[test]
    fn a_canary_secret_never_reaches_the_output() {
        let lines = capture(|| {
            let span = tracing::info_span!("handler", header = %format!("Bearer {CANARY}"));
            let _g = span.enter();
            tracing::info!("got token {CANARY} from env");
            tracing::info!(value = %CANARY, "field");
            tracing::info!(token = "short", password = 12345u64, "secret-named fields");
            tracing::error!(error = &Failure(CANARY.into()) as &dyn std::error::Error, "failed");
            tracing::warn!(debugged = ?vec![CANARY], "debug field");
        });
        assert_eq!(lines.len(), 5);
        let all = lines.iter().map(|l| l.to_string()).collect::<Vec<_>>().join("\n");
        assert!(!all.contains("CANARY") && !all.contains("canary0123456789"), "{all}");
        assert!(!all.contains("short") && !all.contains("12345"), "{all}");
        assert!(all.contains(MASK));
        assert_eq!(lines[2]["token"], MASK);
    }

    #[test]
    fn filter_keeps_library_noise_out() {
        let sink = Capture::default();
        let subscriber = tracing_subscriber::registry()
            .with(JsonLayer::new("s", Arc::new(sink.clone())).with_filter(filter("debug")));
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "hyper::client", "noise");
            tracing::warn!(target: "hyper::client", "kept");
            tracing::debug!(target: "valine_store::x", "ours");
        });
        let text = sink.text();
        assert!(!text.contains("noise") && text.contains("kept") && text.contains("ours"));
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut s = String::new();
        push_json_str(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(serde_json::from_str::<String>(&s).unwrap(), "a\"b\\c\nd\u{1}é");
    }
}
