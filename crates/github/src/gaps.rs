//! Gap filling, run by the scheduled tick. GitHub never redelivers a failed delivery by itself:
//! when the function was down, throttled or answered 5xx, the alert or the resolve it carried
//! would be lost. So the tick
//!
//! 1. finds the bot's webhook on the repository (the hook whose URL ends in `/github/webhook`,
//!    or `GITHUB_HOOK_ID`), lists its recent deliveries and asks GitHub to redeliver each one
//!    that no attempt has delivered (at most [`MAX_ATTEMPTS`] attempts per delivery);
//! 2. lists the runs completed since [`RUN_LOOKBACK_SECS`] ago and puts the newest of each
//!    workflow and branch through the same path as a delivery, so that the incident model (which
//!    ignores what it has already seen) catches up on anything a lost delivery carried.
//!
//! What to do is decided here without I/O ([`bot_hook`], [`to_redeliver`], [`newest_runs`]);
//! [`crate::App::fill_gaps`] carries it out.

use std::collections::HashMap;

use serde_json::Value;
use valine_clients::github_api::{GitHub, Hook, HookDelivery};
use valine_domain::trace::TraceRecorder;
use valine_service::deadline::Deadline;

use crate::routing::Routing;
use valine_domain::clock::parse_rfc3339_secs;

/// What gap filling did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GapReport {
    /// Deliveries GitHub was asked to send again.
    pub redelivered: usize,
    /// Completed runs compared with their incidents.
    pub runs_checked: usize,
    /// Runs whose outcome had not reached their incident, now applied.
    pub repaired: usize,
    pub errors: Vec<String>,
}

/// A delivery is tried at most this many times in all (the first attempt and two redeliveries):
/// one the endpoint keeps refusing is not sent for ever.
pub(crate) const MAX_ATTEMPTS: usize = 3;
/// GitHub keeps deliveries for three days; older ones cannot be redelivered.
pub(crate) const DELIVERY_RETENTION_SECS: u64 = 3 * 24 * 3600;
/// How far back the run comparison looks (one page of GitHub's newest 100 runs within it): a day,
/// so that a storm's runs are caught even when their deliveries and the redeliveries all failed.
pub(crate) const RUN_LOOKBACK_SECS: u64 = 24 * 3600;

/// Which hook is the bot's: `configured` (`GITHUB_HOOK_ID`) when set, else the only hook whose
/// URL ends in `/github/webhook`. `Err` says why none was chosen.
pub(crate) fn bot_hook(hooks: &[Hook], configured: Option<u64>) -> Result<u64, String> {
    if let Some(id) = configured {
        return Ok(id);
    }
    let ours: Vec<u64> = hooks
        .iter()
        .filter(|h| h.config.url.as_deref().is_some_and(|u| u.trim_end_matches('/').ends_with("/github/webhook")))
        .map(|h| h.id)
        .collect();
    match ours.as_slice() {
        [id] => Ok(*id),
        [] => Err("no webhook of this repository delivers to …/github/webhook".into()),
        _ => Err(format!("{} webhooks deliver to …/github/webhook (one per stage?): set GITHUB_HOOK_ID", ours.len())),
    }
}

/// Whether an attempt's answer means "try again": no answer, a 5xx, 408 or 429. A 4xx is the
/// bot refusing the delivery on purpose (a bad signature, a malformed body), which another
/// attempt would not change.
pub(crate) fn failed(status_code: u16) -> bool {
    matches!(status_code, 0 | 408 | 429 | 500..)
}

/// The deliveries to redeliver: for each delivery (`guid`) that no attempt delivered, that is
/// younger than GitHub's retention and has had fewer than `MAX_ATTEMPTS` attempts, its newest
/// attempt. Oldest first, so that the incident model sees them in their order.
pub(crate) fn to_redeliver(deliveries: &[HookDelivery], now: u64) -> Vec<&HookDelivery> {
    let mut by_guid: HashMap<&str, Vec<&HookDelivery>> = HashMap::new();
    for d in deliveries.iter().filter(|d| !d.guid.is_empty()) {
        by_guid.entry(d.guid.as_str()).or_default().push(d);
    }
    let mut out: Vec<&HookDelivery> = by_guid
        .into_values()
        .filter(|attempts| attempts.iter().all(|a| failed(a.status_code)) && attempts.len() < MAX_ATTEMPTS)
        .filter_map(|attempts| attempts.into_iter().max_by_key(|a| a.id))
        .filter(|d| {
            let at = d.delivered_at.as_deref().and_then(parse_rfc3339_secs);
            at.is_some_and(|at| now.saturating_sub(at) < DELIVERY_RETENTION_SECS)
        })
        .collect();
    out.sort_by_key(|d| d.id);
    out
}

/// Conclusions that neither open nor resolve an incident: such a run is never "the newest" that
/// hides an older failure.
const NEUTRAL: [&str; 5] = ["cancelled", "skipped", "neutral", "stale", "action_required"];

/// The newest completed run (by run number, then attempt) of each workflow and branch, among
/// runs that can open or resolve an incident; oldest first.
pub(crate) fn newest_runs(runs: Vec<Value>) -> Vec<Value> {
    let mut newest: HashMap<(u64, String), Value> = HashMap::new();
    for run in runs {
        let conclusion = run.get("conclusion").and_then(Value::as_str).unwrap_or("");
        if conclusion.is_empty() || NEUTRAL.contains(&conclusion) || run.get("id").and_then(Value::as_u64).is_none() {
            continue;
        }
        let key = (
            run.get("workflow_id").and_then(Value::as_u64).unwrap_or(0),
            run.get("head_branch").and_then(Value::as_str).unwrap_or("").to_string(),
        );
        let order = |r: &Value| (r["run_number"].as_u64().unwrap_or(0), r["run_attempt"].as_u64().unwrap_or(1));
        match newest.get(&key) {
            Some(seen) if order(seen) >= order(&run) => {}
            _ => {
                newest.insert(key, run);
            }
        }
    }
    let mut out: Vec<Value> = newest.into_values().collect();
    out.sort_by_key(|r| (r["run_number"].as_u64().unwrap_or(0), r["id"].as_u64().unwrap_or(0)));
    out
}

/// The `workflow_run` delivery a listed run would have come in: the run, its repository and
/// its workflow's name, so that it takes the same path as a real delivery.
pub(crate) fn as_delivery(run: Value, repository: &str) -> Value {
    serde_json::json!({
        "action": "completed",
        "workflow": {"id": run.get("workflow_id"), "name": run.get("name")},
        "repository": {"full_name": repository},
        "workflow_run": run,
    })
}

/// Gap filling, carried out.
impl crate::app::App {
    /// See [`crate::gaps`]: redeliver what failed, and put the newest completed runs through the
    /// delivery path, for each repository of `GITHUB_REPOS` (or `GITHUB_REPO`) that names one
    /// repository. Needs GitHub (a token or an App, not a dry run).
    pub async fn fill_gaps(&self, rec: &mut TraceRecorder, deadline: Deadline) -> GapReport {
        let mut report = GapReport::default();
        let Some(github) = &self.github else { return report };
        if self.config.dry_run {
            return report;
        }
        let mut repos: Vec<valine_domain::repo::RepoName> =
            self.config.github_repos.repositories().filter_map(|p| p.repo_name()).collect();
        if let Some(repo) = &self.config.github_repo
            && !repos.contains(repo)
        {
            repos.push(repo.clone());
        }
        for repo in &repos {
            // GITHUB_HOOK_ID names the hook on GITHUB_REPO; others are found by their URL.
            let hook_id = self.config.github_hook_id.filter(|_| self.config.github_repo.as_ref() == Some(repo));
            self.fill_repo_gaps(github.as_ref(), repo, hook_id, rec, &mut report, deadline).await;
        }
        if report.redelivered + report.repaired > 0 {
            self.metrics.emit(
                &[],
                &[
                    ("DeliveriesRedelivered", report.redelivered as f64, valine_domain::metrics::Unit::Count),
                    ("GapsRepaired", report.repaired as f64, valine_domain::metrics::Unit::Count),
                ],
                false,
            );
        }
        tracing::info!(
            redelivered = report.redelivered,
            runs_checked = report.runs_checked,
            repaired = report.repaired,
            errors = report.errors.len(),
            "gap filling done"
        );
        report
    }

    async fn fill_repo_gaps(
        &self,
        github: &dyn GitHub,
        repo: &valine_domain::repo::RepoName,
        configured_hook: Option<u64>,
        rec: &mut TraceRecorder,
        report: &mut GapReport,
        deadline: Deadline,
    ) {
        let now = valine_domain::clock::now_secs();
        let failed = |what: &str, e: String| format!("gap filling on {repo}: {what}: {e}");
        // 1. Deliveries that never arrived.
        let hook = match configured_hook {
            Some(id) => Ok(id),
            None => match deadline.run(github.list_hooks(repo)).await {
                Some(Ok(hooks)) => bot_hook(&hooks, None),
                Some(Err(e)) => Err(e.to_string()),
                None => Err("timed out".into()),
            },
        };
        match hook {
            Ok(hook_id) => match deadline.run(github.hook_deliveries(repo, hook_id)).await {
                Some(Ok(deliveries)) => {
                    for d in to_redeliver(&deliveries, now) {
                        match deadline.run(github.redeliver(repo, hook_id, d.id)).await {
                            Some(Ok(())) => {
                                report.redelivered += 1;
                                tracing::warn!(repo = %repo, delivery = %d.guid, event = %d.event, status_code = d.status_code, "gap filled: a failed delivery was redelivered");
                            }
                            Some(Err(e)) => report.errors.push(failed("redeliver", e.to_string())),
                            None => report.errors.push(failed("redeliver", "timed out".into())),
                        }
                    }
                }
                Some(Err(e)) => report.errors.push(failed("list deliveries", e.to_string())),
                None => report.errors.push(failed("list deliveries", "timed out".into())),
            },
            Err(e) => report.errors.push(failed("find the webhook", e)),
        }
        // 2. Runs whose deliveries are lost for good: compared with the incidents, through the
        // same routing and incident model as a delivery.
        let since = valine_domain::clock::rfc3339_millis(now.saturating_sub(RUN_LOOKBACK_SECS) * 1000);
        let since = format!("{}Z", since.split('.').next().unwrap_or(&since));
        let runs = match deadline.run(github.completed_runs(repo, &since)).await {
            Some(Ok(runs)) => runs,
            Some(Err(e)) => {
                report.errors.push(failed("list runs", e.to_string()));
                Vec::new()
            }
            None => {
                report.errors.push(failed("list runs", "timed out".into()));
                Vec::new()
            }
        };
        for run in newest_runs(runs) {
            if deadline.left().is_zero() {
                report.errors.push(failed("compare runs", "out of time".into()));
                break;
            }
            let run_id = run.get("id").and_then(Value::as_u64).unwrap_or(0);
            let payload = as_delivery(run, &repo.to_string());
            let targets = match self.route("workflow_run", &payload).await {
                Routing::Targets(targets) => targets,
                Routing::Ignore(_) => continue,
            };
            let mut store_error = None;
            let handled =
                self.workflow_run(rec, &payload, "completed", &targets, &mut store_error, None, deadline).await;
            report.runs_checked += 1;
            let alerts: Vec<&str> = handled.answer.alerts().collect();
            if alerts.iter().any(|a| matches!(*a, "sent" | "edited" | "resolved" | "recorded" | "muted" | "queued")) {
                report.repaired += 1;
                tracing::warn!(repo = %repo, run_id, alerts = ?alerts, "gap filled: a run's outcome had not reached its incident");
            } else if handled.retryable_failure {
                let error = handled.answer.error.as_deref().unwrap_or("failed").to_string();
                report.errors.push(failed("compare runs", error));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use valine_clients::github_api::HookConfig;

    fn hook(id: u64, url: &str) -> Hook {
        Hook { id, config: HookConfig { url: Some(url.into()) } }
    }

    #[test]
    fn the_bot_hook_is_the_configured_one_or_the_only_github_webhook() {
        let one = [hook(1, "https://ci.example/hook"), hook(2, "https://x.execute-api.aws/github/webhook")];
        let two = [hook(2, "https://dev.example/github/webhook/"), hook(3, "https://prod.example/github/webhook")];
        type Case<'a> = (&'a [Hook], Option<u64>, Result<u64, &'a str>);
        let cases: [Case; 5] = [
            (&one, None, Ok(2)),
            (&one, Some(9), Ok(9)),
            (&two, None, Err("2 webhooks")),
            (&two, Some(3), Ok(3)),
            (&[hook(1, "https://ci.example/hook")], None, Err("no webhook")),
        ];
        for (hooks, configured, want) in cases {
            let got = bot_hook(hooks, configured);
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w),
                (Err(g), Err(w)) => assert!(g.contains(w), "{g}"),
                (g, w) => panic!("{g:?} != {w:?}"),
            }
        }
    }

    #[test]
    fn what_counts_as_failed() {
        for (code, want) in [(0, true), (200, false), (202, false), (400, false), (401, false), (408, true)] {
            assert_eq!(failed(code), want, "{code}");
        }
        for (code, want) in [(429, true), (500, true), (502, true), (503, true), (404, false)] {
            assert_eq!(failed(code), want, "{code}");
        }
    }

    fn attempt(id: u64, guid: &str, code: u16, at: &str) -> HookDelivery {
        HookDelivery {
            id,
            guid: guid.into(),
            delivered_at: Some(at.into()),
            redelivery: id > 100,
            status_code: code,
            event: "workflow_run".into(),
            action: Some("completed".into()),
        }
    }

    #[test]
    fn redelivers_what_no_attempt_delivered_within_the_limits() {
        let now = parse_rfc3339_secs("2026-11-29T12:00:00Z").unwrap();
        let recent = "2026-11-29T11:00:00Z";
        let deliveries = vec![
            attempt(1, "ok", 200, recent),
            attempt(2, "down", 502, recent),
            attempt(3, "timeout", 0, recent),
            attempt(4, "fixed", 500, recent),
            attempt(104, "fixed", 200, recent),
            attempt(5, "tried", 500, recent),
            attempt(105, "tried", 500, recent),
            attempt(106, "tried", 503, recent),
            attempt(6, "refused", 401, recent),
            attempt(7, "twice", 500, recent),
            attempt(107, "twice", 500, recent),
            attempt(8, "old", 500, "2026-11-26T11:00:00Z"),
            attempt(9, "", 500, recent),
        ];
        let ids: Vec<u64> = to_redeliver(&deliveries, now).iter().map(|d| d.id).collect();
        // "down" and "timeout" once each; "twice" by its newest attempt; "fixed" delivered,
        // "tried" out of attempts, "refused" a 4xx, "old" past retention, "" no guid.
        assert_eq!(ids, vec![2, 3, 107]);
    }

    #[test]
    fn the_newest_deciding_run_of_each_workflow_and_branch() {
        let run = |id: u64, wf: u64, branch: &str, number: u64, attempt: u64, conclusion: &str| {
            json!({"id": id, "workflow_id": wf, "head_branch": branch, "run_number": number,
                   "run_attempt": attempt, "conclusion": conclusion})
        };
        let runs = vec![
            run(1, 10, "main", 5, 1, "failure"),
            run(2, 10, "main", 6, 1, "success"),
            run(3, 10, "main", 7, 1, "cancelled"),
            run(4, 10, "dev", 3, 1, "failure"),
            run(5, 11, "main", 8, 1, "failure"),
            run(6, 11, "main", 8, 2, "success"),
            json!({"workflow_id": 12, "conclusion": "failure"}),
        ];
        let ids: Vec<u64> = newest_runs(runs).iter().map(|r| r["id"].as_u64().unwrap()).collect();
        assert_eq!(ids, vec![4, 2, 6]);
    }

    #[test]
    fn a_listed_run_becomes_the_delivery_it_came_in() {
        let d = as_delivery(json!({"id": 1, "workflow_id": 10, "name": "ci"}), "acme/widget");
        assert_eq!(d["action"], "completed");
        assert_eq!(d["workflow"]["name"], "ci");
        assert_eq!(d["repository"]["full_name"], "acme/widget");
        assert_eq!(d["workflow_run"]["id"], 1);
    }
}
