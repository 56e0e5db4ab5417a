//! CloudWatch Embedded Metric Format: one JSON line per measurement, namespace
//! `ValineOrchestrator`, turned into metrics by CloudWatch Logs without any API call.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::logging::{LineSink, Stdout};

pub const NAMESPACE: &str = "ValineOrchestrator";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
        }
    }
}

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertMetric {
    Sent,
    Suppressed,
    Failed,
    Skipped,
}

/// Writes EMF lines for one service.
#[derive(Clone)]
pub struct Metrics {
    service: &'static str,
    sink: Arc<dyn LineSink>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("service", &self.service).finish()
    }
}

impl Metrics {
    pub fn new(service: &'static str, sink: Arc<dyn LineSink>) -> Self {
        Self { service, sink }
    }

    pub fn stdout(service: &'static str) -> Self {
        Self::new(service, Arc::new(Stdout))
    }

    /// One command handled, and how long the answer took.
    pub fn command(&self, command: &str, duration_ms: u64) {
        self.emit(
            &[("Command", command)],
            &[("CommandCount", 1.0, Unit::Count), ("CommandDuration", duration_ms as f64, Unit::Milliseconds)],
            false,
        );
    }

    pub fn alert(&self, outcome: AlertMetric) {
        let name = match outcome {
            AlertMetric::Sent => "AlertsSent",
            AlertMetric::Suppressed => "AlertsSuppressed",
            AlertMetric::Failed => "AlertsFailed",
            AlertMetric::Skipped => "AlertsSkipped",
        };
        // Also without any dimension: one alarm covers the alerts of both functions.
        self.emit(&[], &[(name, 1.0, Unit::Count)], true);
    }

    /// What waits in the outbox after the tick's drain: how many cards, and the oldest's age
    /// (the alarm's metric). Account-wide, with no dimension.
    pub fn outbox(&self, depth: usize, oldest_secs: u64) {
        self.emit(
            &[],
            &[("OutboxDepth", depth as f64, Unit::Count), ("OutboxOldestSeconds", oldest_secs as f64, Unit::Seconds)],
            true,
        );
    }

    pub fn delivery(&self, event: &str) {
        self.emit(&[("Event", event)], &[("Deliveries", 1.0, Unit::Count)], false);
    }

    /// How long a delivery took to be answered (the p99 alarm's metric).
    pub fn delivery_duration(&self, duration_ms: u64) {
        self.emit(&[], &[("DeliveryDuration", duration_ms as f64, Unit::Milliseconds)], false);
    }

    pub fn verification_failure(&self) {
        self.emit(&[], &[("VerificationFailures", 1.0, Unit::Count)], false);
    }

    /// A line with the given metrics under `Service` plus `dimensions`, also rolled up under
    /// `Service` alone, and (`account_wide`) under no dimension at all.
    pub fn emit(&self, dimensions: &[(&str, &str)], metrics: &[(&str, f64, Unit)], account_wide: bool) {
        let line = emf_line(self.service, crate::clock::now_millis(), dimensions, metrics, account_wide);
        self.sink.write_line(&line);
    }
}

/// Builds one EMF object.
pub fn emf_line(
    service: &str,
    ts_ms: u64,
    dimensions: &[(&str, &str)],
    metrics: &[(&str, f64, Unit)],
    account_wide: bool,
) -> String {
    let mut full = vec![json!("Service")];
    full.extend(dimensions.iter().map(|(k, _)| json!(k)));
    let mut sets = vec![Value::Array(full)];
    if !dimensions.is_empty() {
        sets.push(json!(["Service"]));
    }
    if account_wide {
        sets.push(json!([]));
    }
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": ts_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": sets,
                "Metrics": metrics.iter().map(|(n, _, u)| json!({"Name": n, "Unit": u.as_str()})).collect::<Vec<_>>(),
            }],
        }),
    );
    root.insert("Service".into(), json!(service));
    for (k, v) in dimensions {
        root.insert((*k).into(), json!(crate::redact::redact(v)));
    }
    for (n, v, _) in metrics {
        root.insert((*n).into(), json!(v));
    }
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::Capture;

    #[test]
    fn emf_shape() {
        let sink = Capture::default();
        let m = Metrics::new("discord-handler", Arc::new(sink.clone()));
        m.command("/status", 120);
        m.alert(AlertMetric::Suppressed);
        let lines: Vec<Value> = sink.lines().iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        let l = &lines[0];
        let cw = &l["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "ValineOrchestrator");
        // per command, and per service (what the p99 alarm watches)
        assert_eq!(cw["Dimensions"], json!([["Service", "Command"], ["Service"]]));
        assert_eq!(
            cw["Metrics"],
            json!([{"Name": "CommandCount", "Unit": "Count"}, {"Name": "CommandDuration", "Unit": "Milliseconds"}])
        );
        assert!(l["_aws"]["Timestamp"].as_u64().unwrap() > 1_600_000_000_000);
        assert_eq!(l["Service"], "discord-handler");
        assert_eq!(l["Command"], "/status");
        assert_eq!(l["CommandCount"], 1.0);
        assert_eq!(l["CommandDuration"], 120.0);
        // every metric named in the directive has a value at the top level
        for line in &lines {
            for metric in line["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap() {
                assert!(line.get(metric["Name"].as_str().unwrap()).is_some());
            }
        }
        assert_eq!(lines[1]["AlertsSuppressed"], 1.0);
        // alerts also count account-wide (one alarm for both functions)
        assert_eq!(lines[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Service"], []]));
    }
}
