//! `valinectl incidents [--open] [--since 7d] [--json]` and `valinectl tick`: incidents with their
//! durations, then per workflow the failures, MTTR (first failure → resolution), MTTA (message →
//! acknowledgement) and MTTD (run
//! completed → message posted); and one tick, now.

use serde_json::{Value, json};
use valine_domain::clock::{duration, rfc3339_millis};
use valine_domain::config::Config;
use valine_domain::incident::{Incident, WorkflowStats, stats};
use valine_domain::metrics::Metrics;
use valine_store::Stores;

/// `7d`, `24h`, `30m`, `90s` (or plain seconds) as seconds.
pub(crate) fn parse_since(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (number, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let n: u64 = number.parse().map_err(|_| format!("--since {s}: expected a duration such as 7d, 24h or 30m"))?;
    let unit = match unit {
        'd' => 86_400,
        'h' => 3600,
        'm' => 60,
        's' => 1,
        _ => return Err(format!("--since {s}: the unit is d, h, m or s")),
    };
    Ok(n.saturating_mul(unit))
}

fn time(secs: u64) -> String {
    if secs == 0 { "—".into() } else { rfc3339_millis(secs * 1000) }
}

fn opt_duration(secs: Option<u64>) -> String {
    secs.map_or_else(|| "—".into(), duration)
}

/// The incidents to show: open ones, or (without `open_only`) also those changed since `since`.
pub(crate) fn select(incidents: Vec<Incident>, open_only: bool, since: u64) -> Vec<Incident> {
    incidents
        .into_iter()
        .filter(|i| i.open || (!open_only && i.streaks().iter().any(|s| s.opened_at >= since)))
        .collect()
}

fn incident_json(i: &Incident, now: u64) -> Value {
    let first = i.first_failure.as_ref();
    json!({
        "id": i.streak_id(),
        "repository": i.key.repository,
        "workflow": i.key.name(),
        "scope": i.key.scope(),
        "open": i.open,
        "flapping": i.flapping,
        "failures": i.failures,
        "first_failure_at": first.map(|r| r.completed_at),
        "opened_at": i.opened_at,
        "message_posted_at": i.message.map(|m| m.posted_at),
        "message": i.message.map(|m| m.link()),
        "resolved_at": i.resolved_at,
        "open_for_secs": if i.open { Some(now.saturating_sub(i.opened_at)) } else { None },
        "time_to_recover_secs": i.resolved_at.map(|r| r.saturating_sub(i.opened_at)),
        "acknowledged_by": i.acked.map(|a| a.user_id.to_string()),
        "muted_until": i.mute.filter(|m| m.active(now)).map(|m| m.until.map_or_else(|| "fixed".to_string(), |u| u.to_string())),
    })
}

/// The report as JSON: `{"incidents": […], "workflows": […]}`.
pub(crate) fn report_json(incidents: &[Incident], all: &[Incident], since: u64, now: u64) -> Value {
    json!({
        "since": since,
        "incidents": incidents.iter().map(|i| incident_json(i, now)).collect::<Vec<_>>(),
        "workflows": stats(all, since),
    })
}

/// The report as text: one line per incident, then one per workflow.
pub(crate) fn report_text(incidents: &[Incident], all: &[Incident], since: u64, now: u64) -> String {
    let mut out = String::new();
    if incidents.is_empty() {
        out.push_str("No incidents.\n");
    } else {
        out.push_str(&format!(
            "{:<17} {:<8} {:<40} {:>4} {:<24} {:<24} {:>10}\n",
            "INCIDENT", "STATE", "WHAT", "FAIL", "FIRST FAILURE", "RESOLVED", "DURATION"
        ));
        for i in incidents {
            let state = if i.open { if i.flapping { "flapping" } else { "open" } } else { "resolved" };
            let what = format!("{} {} on {}", i.key.repository, i.key.name(), i.key.scope());
            let span = match i.resolved_at {
                Some(r) if !i.open => r.saturating_sub(i.opened_at),
                _ => now.saturating_sub(i.opened_at),
            };
            out.push_str(&format!(
                "{:<17} {:<8} {:<40} {:>4} {:<24} {:<24} {:>10}\n",
                i.streak_id(),
                state,
                what,
                i.failures,
                time(i.first_failure.as_ref().map_or(i.opened_at, |r| r.completed_at)),
                if i.open { "—".to_string() } else { time(i.resolved_at.unwrap_or(0)) },
                duration(span)
            ));
        }
    }
    let workflows: Vec<WorkflowStats> = stats(all, since);
    out.push_str(&format!("\nPer workflow since {}:\n", time(since)));
    if workflows.is_empty() {
        out.push_str("  (no failures)\n");
    }
    for w in workflows {
        out.push_str(&format!(
            "  {} {}: {} failure(s) in {} incident(s), MTTR {}, MTTD {}, MTTA {}\n",
            w.repository,
            w.workflow,
            w.failures,
            w.incidents,
            opt_duration(w.mttr_secs),
            opt_duration(w.mttd_secs),
            opt_duration(w.mtta_secs)
        ));
    }
    out
}

pub(crate) async fn incidents(config: &Config, open_only: bool, since: &str, as_json: bool) -> Result<String, String> {
    let window = parse_since(since)?;
    let now = valine_domain::clock::now_secs();
    let since = now.saturating_sub(window);
    let stores = crate::stage::lookup_stores(config).await?;
    let all = stores.incidents.list_incidents(valine_store::MAX_LIST).await.map_err(|e| e.to_string())?;
    let shown = select(all.clone(), open_only, since);
    Ok(if as_json {
        serde_json::to_string_pretty(&report_json(&shown, &all, since, now)).unwrap_or_default()
    } else {
        report_text(&shown, &all, since, now)
    })
}

/// One tick, now, as the schedule runs it.
pub(crate) async fn tick(config: Config) -> Result<String, String> {
    let stores = Stores::open(&config).await.map_err(|e| e.to_string())?;
    let app = valine_github::App::from_config(config, stores, Metrics::stdout("github-handler"))
        .map_err(|e| e.to_string())?;
    let report = app.tick().await;
    let mut out = tick_line(&json!({
        "open": report.open, "escalated": report.escalated, "calmed": report.calmed,
        "redelivered": report.redelivered, "repaired": report.repaired,
        "checked": report.checked, "unhealthy": report.unhealthy,
    }));
    for e in &report.errors {
        out.push_str(&format!("\n  error: {e}"));
    }
    if report.errors.is_empty() { Ok(out) } else { Err(out) }
}

/// The event EventBridge's schedule sends the GitHub function (crates/github/src/lambda.rs,
/// `is_scheduled_event`), as `tick --stage` sends it.
pub(crate) fn scheduled_event(id: &str, now_ms: u64, region: &str, account: &str) -> Value {
    json!({
        "version": "0",
        "id": id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": rfc3339_millis(now_ms),
        "region": region,
        "resources": [],
        "detail": {},
    })
}

/// The counts line of a tick's report, the same for the local and the deployed tick.
fn tick_line(report: &Value) -> String {
    let n = |k: &str| report[k].as_u64().unwrap_or(0);
    let mut out = format!(
        "tick: {} open, {} escalated, {} calmed, {} redelivered, {} repaired",
        n("open"),
        n("escalated"),
        n("calmed"),
        n("redelivered"),
        n("repaired")
    );
    if n("checked") > 0 {
        out.push_str(&format!(", {} of {} endpoints unhealthy", n("unhealthy"), n("checked")));
    }
    out
}

/// The deployed function's answer to the scheduled event: its body (`{"tick": "done", …}`), as
/// lambda_http returns it for an event that is not an HTTP request, or inside an HTTP-shaped
/// answer (`{"statusCode": …, "body": "…"}`). `Err` when the tick did not run or reported errors.
pub(crate) fn describe_tick_answer(answer: &Value) -> Result<String, String> {
    let body = match (&answer["statusCode"], &answer["body"]) {
        (Value::Number(_), Value::String(body)) => serde_json::from_str(body).unwrap_or(Value::String(body.clone())),
        _ => answer.clone(),
    };
    if body.get("tick").and_then(Value::as_str) != Some("done") {
        return Err(format!("the function did not run the tick; it answered {answer}"));
    }
    let mut out = tick_line(&body);
    let errors: Vec<&str> = body
        .get("errors")
        .and_then(Value::as_array)
        .map_or_else(Vec::new, |e| e.iter().filter_map(Value::as_str).collect());
    for e in &errors {
        out.push_str(&format!("\n  error: {e}"));
    }
    if errors.is_empty() { Ok(out) } else { Err(out) }
}

/// `tick --stage`: the stage's GitHub function runs one tick, invoked at its `live` alias with the
/// schedule's event and waited for; its answer is printed. Nothing runs here.
pub(crate) async fn tick_deployed(stage: &crate::stage::Stage) -> Result<String, String> {
    use aws_sdk_lambda::primitives::Blob;
    use aws_sdk_lambda::types::InvocationType;

    let function = stage.github_function()?;
    let alias = crate::stage::LIVE_ALIAS;
    let region = stage.stack.region.clone().unwrap_or_default();
    // arn:aws:lambda:REGION:ACCOUNT:function:NAME:live
    let account = stage.stack.output("GitHubLiveAlias").and_then(|arn| arn.split(':').nth(4)).unwrap_or_default();
    let event =
        scheduled_event(&uuid::Uuid::new_v4().to_string(), valine_domain::clock::now_millis(), &region, account);
    let sdk = valine_store::dynamo::sdk_loader()
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder().operation_timeout(std::time::Duration::from_secs(90)).build(),
        )
        .load()
        .await;
    let client = aws_sdk_lambda::Client::new(&sdk);
    eprintln!("invoking {function}:{alias} with a scheduled event…");
    let out = client
        .invoke()
        .function_name(function)
        .qualifier(alias)
        .invocation_type(InvocationType::RequestResponse)
        .payload(Blob::new(event.to_string()))
        // Sent once: a retry after a lost answer would tick twice.
        .customize()
        .config_override(
            aws_sdk_lambda::Config::builder().retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled()),
        )
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot invoke {function}:{alias} ({}); check AWS_REGION and that the credentials may call \
                 lambda:InvokeFunction on it",
                aws_sdk_lambda::error::DisplayErrorContext(&e)
            )
        })?;
    let payload = out.payload().map(|p| String::from_utf8_lossy(p.as_ref()).into_owned()).unwrap_or_default();
    let version = out.executed_version().map(|v| format!(", version {v}")).unwrap_or_default();
    if let Some(kind) = out.function_error() {
        return Err(format!("{function}:{alias}{version} failed ({kind}): {}", payload.trim()));
    }
    let answer: Value = serde_json::from_str(&payload)
        .map_err(|_| format!("{function}:{alias}{version} answered something that is not JSON: {}", payload.trim()))?;
    let described = describe_tick_answer(&answer);
    let head = format!("{function}:{alias}{version} ran the tick\n");
    described.map(|d| format!("{head}{d}")).map_err(|d| format!("{head}{d}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use valine_domain::incident::*;

    fn incident() -> Incident {
        let obs = |outcome, n| Observation {
            workflow_file: Default::default(),
            key: IncidentKey::workflow(9, "acme/widget", "CI", "main"),
            outcome,
            run: RunRef {
                order: Order::new(n, 1),
                run_number: n,
                completed_at: 1_000,
                conclusion: "failure".into(),
                ..RunRef::default()
            },
        };
        let mut i = decide(None, &obs(Outcome::Failure, 1), 1_060, Policy::default()).next.unwrap();
        i.message = Some(MessageRef { channel_id: 9, message_id: 1, posted_at: 1_090, guild_id: Some(7) });
        i.acked = Some(Stamp { user_id: 42, at: 1_210 });
        decide(Some(&i), &obs(Outcome::Success, 2), 1_660, Policy::default()).next.unwrap()
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_since("7d"), Ok(7 * 86_400));
        assert_eq!(parse_since("24h"), Ok(86_400));
        assert_eq!(parse_since("30m"), Ok(1800));
        assert_eq!(parse_since("90"), Ok(90));
        assert!(parse_since("soon").is_err());
        assert!(parse_since("3w").is_err());
    }

    #[test]
    fn report_has_durations_and_per_workflow_mttr_and_mttd() {
        let i = incident();
        let all = vec![i.clone()];
        let text = report_text(&select(all.clone(), false, 0), &all, 0, 2_000);
        assert!(text.contains("resolved") && text.contains("acme/widget CI on main"), "{text}");
        assert!(text.contains("10m 00s"), "open for ten minutes: {text}");
        assert!(text.contains("MTTR 11m 00s") && text.contains("MTTD 1m 30s"), "{text}");
        assert!(text.contains("MTTA 2m 00s"), "posted at 1090, acknowledged at 1210: {text}");
        assert!(select(all.clone(), true, 0).is_empty(), "--open leaves resolved ones out");
        let json = report_json(&all, &all, 0, 2_000);
        assert_eq!(json["incidents"][0]["time_to_recover_secs"], 600);
        assert_eq!(json["workflows"][0]["mttr_secs"], 660);
        assert_eq!(json["workflows"][0]["mttd_secs"], 90);
        assert_eq!(json["workflows"][0]["mtta_secs"], 120);
        assert_eq!(json["incidents"][0]["message"], "https://discord.com/channels/7/9/1");
    }

    #[test]
    fn the_scheduled_event_is_one_the_github_function_takes_for_the_schedule() {
        let event = scheduled_event("e-1", 1_767_355_200_000, "eu-west-1", "123456789012");
        assert!(valine_github::lambda::is_scheduled_event(&event), "{event}");
        assert_eq!(event["time"], "2026-01-02T12:00:00.000Z");
        assert_eq!(event["region"], "eu-west-1");
    }

    #[test]
    fn tick_answers_are_read_bare_or_http_shaped() {
        let body = json!({"tick": "done", "open": 2, "escalated": 1, "calmed": 0, "redelivered": 3, "repaired": 0, "errors": []});
        let line = "tick: 2 open, 1 escalated, 0 calmed, 3 redelivered, 0 repaired";
        assert_eq!(describe_tick_answer(&body).unwrap(), line);
        let http = json!({"statusCode": 200, "headers": {}, "body": body.to_string(), "isBase64Encoded": false});
        assert_eq!(describe_tick_answer(&http).unwrap(), line);
        let failed = json!({"tick": "done", "open": 0, "errors": ["set GITHUB_HOOK_ID"]});
        assert!(describe_tick_answer(&failed).unwrap_err().ends_with("\n  error: set GITHUB_HOOK_ID"));
        let refused = json!({"error": "unexpected event"});
        assert!(describe_tick_answer(&refused).unwrap_err().contains("did not run the tick"));
    }
}
