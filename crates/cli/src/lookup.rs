//! `valinectl trace` and `valinectl audit`: look-ups in the store the configuration names, and
//! (for traces) the matching log lines of both functions from CloudWatch Logs, as one timeline.

use serde_json::Value;
use valine_domain::audit::{AuditRecord, digest_matches};
use valine_domain::clock::rfc3339_millis;
use valine_domain::config::Config;
use valine_domain::trace::{StepStatus, Trace};

/// One line of a timeline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub at_ms: u64,
    pub source: String,
    pub text: String,
}

pub(crate) fn trace_entries(trace: &Trace) -> Vec<Entry> {
    let mut out = vec![Entry {
        at_ms: trace.started_at_ms,
        source: "trace".into(),
        text: format!("{} started by user {}", trace.command, trace.user_id),
    }];
    for s in &trace.steps {
        let icon = match s.status {
            StepStatus::Ok => "ok",
            StepStatus::Error => "ERROR",
            StepStatus::Skipped => "skipped",
        };
        let detail = s.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
        out.push(Entry {
            at_ms: trace.started_at_ms + s.started_ms,
            source: "step".into(),
            text: format!("{} [{icon}] {} ms{detail}", s.name, s.duration_ms),
        });
    }
    out
}

/// A CloudWatch log event (one of our JSON lines) as a timeline entry.
pub(crate) fn log_entry(event_ms: u64, message: &str) -> Entry {
    match serde_json::from_str::<Value>(message) {
        Ok(v) => Entry {
            at_ms: event_ms,
            source: v.get("service").and_then(Value::as_str).unwrap_or("log").to_string(),
            text: format!(
                "{} {} {}",
                v.get("level").and_then(Value::as_str).unwrap_or("?"),
                v.get("fn").and_then(Value::as_str).unwrap_or(""),
                v.get("msg").and_then(Value::as_str).unwrap_or(message)
            ),
        },
        Err(_) => Entry {
            at_ms: event_ms,
            source: "log".into(),
            text: valine_domain::redact::redact(message.trim()).into_owned(),
        },
    }
}

pub(crate) fn render_timeline(trace: Option<&Trace>, mut entries: Vec<Entry>) -> String {
    entries.sort_by_key(|e| e.at_ms);
    let start = trace.map(|t| t.started_at_ms).or_else(|| entries.first().map(|e| e.at_ms)).unwrap_or(0);
    let mut out = String::new();
    if let Some(t) = trace {
        out.push_str(&format!("trace {}  {}  user {}  {} ms\n", t.trace_id, t.command, t.user_id, t.duration_ms));
        if let Some(e) = &t.error {
            out.push_str(&format!("error: {e}\n"));
        }
        for l in &t.links {
            out.push_str(&format!("link: {} {}\n", l.label, l.url));
        }
    }
    for e in entries {
        let offset = e.at_ms as i64 - start as i64;
        out.push_str(&format!("{}  {:>+7}ms  {:<16} {}\n", rfc3339_millis(e.at_ms), offset, e.source, e.text));
    }
    valine_domain::redact::redact(&out).into_owned()
}

/// The log groups of both functions of a stage, by their template names.
pub(crate) fn log_groups(stage: &str) -> Vec<String> {
    ["discord", "github"].map(|function| format!("/aws/lambda/valine-orchestrator-{function}-{stage}")).to_vec()
}

/// Whether a log line belongs to the trace. CloudWatch's pattern already selects these; the check
/// keeps other lines out where a pattern is not applied (moto's server, for one).
fn carries_trace(message: &str, trace_id: &str) -> bool {
    match serde_json::from_str::<Value>(message) {
        Ok(v) => v.get("trace_id").and_then(Value::as_str) == Some(trace_id),
        Err(_) => message.contains(trace_id),
    }
}

/// The trace's log lines in `groups`, and a note for each group that does not exist (yet: a
/// function that never logged has none).
async fn cloudwatch_entries(
    groups: &[String],
    trace_id: &str,
    hours: u64,
) -> Result<(Vec<Entry>, Vec<String>), String> {
    use aws_sdk_cloudwatchlogs::error::{DisplayErrorContext, ProvideErrorMetadata};
    let sdk = valine_store::dynamo::sdk_loader().load().await;
    let client = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let since = valine_domain::clock::now_millis().saturating_sub(hours * 3600 * 1000) as i64;
    let pattern = format!("{{ $.trace_id = \"{trace_id}\" }}");
    let mut out = Vec::new();
    let mut missing = Vec::new();
    'groups: for group in groups {
        let mut token: Option<String> = None;
        for page in 1..=20 {
            eprintln!("querying {group} (page {page})…");
            let answer = client
                .filter_log_events()
                .log_group_name(group)
                .filter_pattern(&pattern)
                .start_time(since)
                .set_next_token(token.clone())
                .send()
                .await;
            let res = match answer {
                Ok(res) => res,
                Err(e) => match e.as_service_error() {
                    Some(se) if se.is_resource_not_found_exception() => {
                        missing.push(format!("(no log group {group}: the function has not logged yet)"));
                        continue 'groups;
                    }
                    Some(se) => {
                        return Err(format!(
                            "{group}: {}: {}; check AWS_REGION and that the credentials may read its logs",
                            se.code().unwrap_or("error"),
                            se.message().unwrap_or("")
                        ));
                    }
                    None => return Err(format!("{group}: {}", DisplayErrorContext(&e))),
                },
            };
            for ev in res.events().iter().filter(|ev| carries_trace(ev.message().unwrap_or(""), trace_id)) {
                out.push(log_entry(ev.timestamp().unwrap_or(0).max(0) as u64, ev.message().unwrap_or("")));
            }
            token = res.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    Ok((out, missing))
}

/// The stored trace and, with `log_groups`, the matching lines of those CloudWatch log groups.
pub(crate) async fn trace(
    config: &Config,
    trace_id: &str,
    hours: u64,
    log_groups: Option<&[String]>,
) -> Result<String, String> {
    let stores = crate::stage::lookup_stores(config).await?;
    let trace = stores.traces.get(trace_id).await.map_err(|e| e.to_string())?;
    let mut entries = trace.as_ref().map(trace_entries).unwrap_or_default();
    let mut notes = String::new();
    if let Some(groups) = log_groups {
        match cloudwatch_entries(groups, trace_id, hours).await {
            Ok((e, missing)) => {
                entries.extend(e);
                for m in missing {
                    notes.push_str(&format!("{m}\n"));
                }
            }
            Err(e) => notes.push_str(&format!("(CloudWatch Logs not read: {e})\n")),
        }
    } else {
        notes.push_str("(CloudWatch Logs not read: set AWS_REGION, with AWS credentials, or this was --no-logs)\n");
    }
    if trace.is_none() && entries.is_empty() {
        return Err(format!(
            "no trace {trace_id} in {} (traces are kept 24 h){}",
            match config.store {
                valine_domain::config::StoreKind::DynamoDb => format!("table {}", config.state_table_name),
                valine_domain::config::StoreKind::Embedded => format!("the {} store", stores.kind),
            },
            if notes.is_empty() { String::new() } else { format!("\n{notes}") }
        ));
    }
    Ok(format!("{}{notes}", render_timeline(trace.as_ref(), entries)))
}

fn show(r: &AuditRecord) -> String {
    serde_json::to_string_pretty(r).unwrap_or_default()
}

pub(crate) async fn audit_show(config: &Config, audit_id: &str) -> Result<String, String> {
    let stores = crate::stage::lookup_stores(config).await?;
    match stores.audit.get(audit_id).await.map_err(|e| e.to_string())? {
        Some(r) => Ok(show(&r)),
        None => Err(format!("no audit record {audit_id}")),
    }
}

pub(crate) async fn audit_user(config: &Config, user_id: &str, limit: usize) -> Result<String, String> {
    let stores = crate::stage::lookup_stores(config).await?;
    let records = stores.audit.by_user(user_id, limit).await.map_err(|e| e.to_string())?;
    if records.is_empty() {
        return Ok(format!("no audit records for user {user_id}"));
    }
    let mut out = format!(
        "{:<24}  {:<8}  {:<11}  {:<20}  {:<6}  {}\n",
        "time", "result", "command", "target", "print", "audit id"
    );
    for r in records {
        let target = r
            .target_channel
            .as_deref()
            .map(|c| format!("#{c}"))
            .or(r.target_user.map(|u| format!("@{u}")))
            .or(r.target)
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<24}  {:<8}  {:<11}  {:<20}  {:<6}  {}\n",
            rfc3339_millis(r.timestamp * 1000),
            r.result.as_str(),
            r.command,
            target,
            r.message_fingerprint.unwrap_or_default(),
            r.audit_id
        ));
    }
    Ok(out)
}

/// Whether `text` is the text a record's digest was made from (needs `AUDIT_HMAC_KEY`).
pub(crate) async fn audit_verify(config: &Config, audit_id: &str, text: &str) -> Result<bool, String> {
    let key = config.audit_hmac_key.as_ref().ok_or("set AUDIT_HMAC_KEY (the key the digests were made with)")?;
    let stores = crate::stage::lookup_stores(config).await?;
    let record = stores
        .audit
        .get(audit_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no audit record {audit_id}"))?;
    let digest = record.message_digest.ok_or("this record carries no digest")?;
    Ok(digest_matches(key.expose().as_bytes(), text, &digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use valine_domain::trace::Step;

    #[test]
    fn timeline_merges_steps_and_log_lines_in_order() {
        let trace = Trace {
            trace_id: "t-1".into(),
            user_id: "42".into(),
            command: "/status".into(),
            started_at_ms: 1_767_355_200_000,
            duration_ms: 30,
            steps: vec![Step {
                name: "github.status".into(),
                started_ms: 10,
                duration_ms: 20,
                status: StepStatus::Ok,
                detail: None,
            }],
            error: None,
            links: vec![],
            correlation_id: None,
        };
        let mut entries = trace_entries(&trace);
        entries.push(log_entry(1_767_355_200_005, r#"{"ts":"2026-01-02T12:00:00.005Z","level":"info","service":"discord-handler","fn":"handle_command","msg":"token=abc123 seen"}"#));
        let text = render_timeline(Some(&trace), entries);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("trace t-1"));
        assert!(
            lines[1].contains("/status started")
                && lines[2].contains("discord-handler")
                && lines[3].contains("github.status [ok] 20 ms"),
            "{text}"
        );
        assert!(lines[3].contains("+10ms"));
        assert!(!text.contains("abc123"));
    }

    #[test]
    fn only_the_traces_own_log_lines_are_kept() {
        assert!(carries_trace(r#"{"trace_id":"t-1","msg":"a"}"#, "t-1"));
        assert!(!carries_trace(r#"{"trace_id":"t-12","msg":"t-1"}"#, "t-1"));
        assert!(carries_trace("REPORT t-1", "t-1"));
        assert!(!carries_trace("START RequestId: 1", "t-1"));
        assert_eq!(
            log_groups("dev"),
            ["/aws/lambda/valine-orchestrator-discord-dev", "/aws/lambda/valine-orchestrator-github-dev"]
        );
    }
}
