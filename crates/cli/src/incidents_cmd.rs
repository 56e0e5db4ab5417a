//! `valinectl incidents [--open] [--since 7d] [--json]` and `valinectl tick`: incidents with their
//! durations, then per workflow the failures, MTTR (first failure → resolution) and MTTD (run
//! completed → message posted); and one tick, now.

use serde_json::{Value, json};
use valine_domain::clock::{duration, rfc3339_millis};
use valine_domain::config::Config;
use valine_domain::incident::{Incident, WorkflowStats, stats};
use valine_domain::metrics::Metrics;
use valine_store::Stores;

/// `7d`, `24h`, `30m`, `90s` (or plain seconds) as seconds.
pub fn parse_since(s: &str) -> Result<u64, String> {
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
pub fn select(incidents: Vec<Incident>, open_only: bool, since: u64) -> Vec<Incident> {
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
pub fn report_json(incidents: &[Incident], all: &[Incident], since: u64, now: u64) -> Value {
    json!({
        "since": since,
        "incidents": incidents.iter().map(|i| incident_json(i, now)).collect::<Vec<_>>(),
        "workflows": stats(all, since),
    })
}

/// The report as text: one line per incident, then one per workflow.
pub fn report_text(incidents: &[Incident], all: &[Incident], since: u64, now: u64) -> String {
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
            "  {} {}: {} failure(s) in {} incident(s), MTTR {}, MTTD {}\n",
            w.repository,
            w.workflow,
            w.failures,
            w.incidents,
            opt_duration(w.mttr_secs),
            opt_duration(w.mttd_secs)
        ));
    }
    out
}

pub async fn incidents(config: &Config, open_only: bool, since: &str, as_json: bool) -> Result<String, String> {
    let window = parse_since(since)?;
    let now = valine_domain::clock::now_secs();
    let since = now.saturating_sub(window);
    let stores = Stores::open(config).await.map_err(|e| e.to_string())?;
    let all = stores.incidents.list_incidents(valine_store::MAX_LIST).await.map_err(|e| e.to_string())?;
    let shown = select(all.clone(), open_only, since);
    Ok(if as_json {
        serde_json::to_string_pretty(&report_json(&shown, &all, since, now)).unwrap_or_default()
    } else {
        report_text(&shown, &all, since, now)
    })
}

/// One tick, now, as the schedule runs it.
pub async fn tick(config: Config) -> Result<String, String> {
    let stores = Stores::open(&config).await.map_err(|e| e.to_string())?;
    let app = valine_github::App::from_config(config, stores, Metrics::stdout("github-handler"))
        .map_err(|e| e.to_string())?;
    let report = app.tick().await;
    let mut out = format!(
        "tick: {} open, {} escalated, {} calmed, {} redelivered, {} repaired",
        report.open, report.escalated, report.calmed, report.redelivered, report.repaired
    );
    if report.checked > 0 {
        out.push_str(&format!(", {} of {} endpoints unhealthy", report.unhealthy, report.checked));
    }
    for e in &report.errors {
        out.push_str(&format!("\n  error: {e}"));
    }
    if report.errors.is_empty() { Ok(out) } else { Err(out) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use valine_domain::incident::*;

    fn incident() -> Incident {
        let obs = |outcome, n| Observation {
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
        assert!(select(all.clone(), true, 0).is_empty(), "--open leaves resolved ones out");
        let json = report_json(&all, &all, 0, 2_000);
        assert_eq!(json["incidents"][0]["time_to_recover_secs"], 600);
        assert_eq!(json["workflows"][0]["mttr_secs"], 660);
        assert_eq!(json["workflows"][0]["mttd_secs"], 90);
        assert_eq!(json["incidents"][0]["message"], "https://discord.com/channels/7/9/1");
    }
}
