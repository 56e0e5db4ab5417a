//! Post-deployment checks, shared by `/verify-latest`, the `/deploy-client` follow-up and the
//! tick: the latest run of `DEPLOY_WORKFLOW`, and each endpoint of `VERIFY_URLS`, all in parallel,
//! [`CHECK_TIMEOUT`] each, redirects not followed. What counts as healthy is decided here, in
//! pure functions; the probing goes through the `Probe` port.

use std::time::Duration;

use valine_clients::github_api::{GitHub, WorkflowRun, first_failed_job};
use valine_clients::github_error::GitHubError;
use valine_clients::probe::{Probe, ProbeAnswer};
use valine_domain::config::VerifyUrl;
use valine_domain::message::Embed;
use valine_domain::redact::redact;
use valine_domain::repo::RepoName;

/// How long one endpoint may take.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// JSON `status` values that mean healthy (compared case-insensitively).
const HEALTHY_STATES: &[&str] = &["healthy", "ready", "ok", "pass", "up", "green", "available"];

/// One endpoint's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointCheck {
    pub name: String,
    pub url: String,
    pub answer: ProbeAnswer,
}

impl EndpointCheck {
    /// What is wrong with it, or `None` when healthy: a 2xx, and a JSON `status` (if any) that
    /// says healthy.
    pub fn problem(&self) -> Option<String> {
        let a = &self.answer;
        let Some(status) = a.status else {
            return Some(a.error.clone().unwrap_or_else(|| "no answer".into()));
        };
        if (300..400).contains(&status) {
            let to = a.location.as_deref().map(|l| format!(" to {}", redact(l))).unwrap_or_default();
            return Some(format!("redirects{to} (not followed)"));
        }
        if !(200..300).contains(&status) {
            return Some(format!("answered {status}"));
        }
        match &a.health {
            Some(h) if !HEALTHY_STATES.iter().any(|s| s.eq_ignore_ascii_case(h)) => Some(format!("reports `{h}`")),
            _ => None,
        }
    }

    pub fn healthy(&self) -> bool {
        self.problem().is_none()
    }

    /// `✅ **api** · 200 · 84 ms · \`healthy\``: one line of the embed.
    pub fn line(&self) -> String {
        let a = &self.answer;
        let icon = if self.healthy() { "✅" } else { "❌" };
        let mut parts = vec![format!("{icon} **{}**", self.name)];
        match a.status {
            Some(s) => parts.push(s.to_string()),
            None => parts.push("no answer".into()),
        }
        parts.push(format!("{} ms", a.latency_ms));
        if let Some(h) = &a.health {
            parts.push(format!("`{h}`"));
        }
        if let Some(p) = self.problem().filter(|_| a.status.is_some() || a.error.is_some()) {
            parts.push(p);
        }
        parts.join(" · ")
    }
}

/// Checks every endpoint at once; the result keeps `VERIFY_URLS`' order.
pub async fn run_checks(probe: &dyn Probe, urls: &[VerifyUrl]) -> Vec<EndpointCheck> {
    let checks = urls.iter().map(|v| async move {
        let answer = probe.get(&v.url, CHECK_TIMEOUT).await;
        EndpointCheck { name: v.name.clone(), url: redact(v.url.as_str()).into_owned(), answer }
    });
    futures::future::join_all(checks).await
}

/// The checks as lines, for an embed's description or field.
pub fn checks_text(checks: &[EndpointCheck]) -> String {
    checks.iter().map(EndpointCheck::line).collect::<Vec<_>>().join("\n")
}

/// The latest run of the deploy workflow, with its failed steps (`job › step`) when it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestRun {
    pub run: WorkflowRun,
    pub failed_steps: Vec<String>,
}

/// Reads the newest run of `workflow`; for a failed one, the steps that failed (best effort: a
/// jobs read that fails leaves them out).
pub async fn latest_run(
    github: &dyn GitHub,
    repo: &RepoName,
    workflow: &str,
) -> Result<Option<LatestRun>, GitHubError> {
    let Some(run) = github.list_runs(repo, workflow, 1).await?.into_iter().next() else { return Ok(None) };
    let mut failed_steps = Vec::new();
    if matches!(run.conclusion.as_deref(), Some("failure" | "timed_out" | "startup_failure")) {
        match github.run_attempt_jobs(repo, run.id, run.run_attempt.max(1)).await {
            Ok(jobs) => {
                for job in &jobs {
                    if let Some(step) = job.failed_step() {
                        failed_steps.push(format!("{} › {}", job.name, step.name));
                    } else if matches!(job.conclusion.as_deref(), Some("failure" | "timed_out")) {
                        failed_steps.push(job.name.clone());
                    }
                }
                if failed_steps.is_empty()
                    && let Some(job) = first_failed_job(&jobs)
                {
                    failed_steps.push(job.name.clone());
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, run_id = run.id, "could not read the failed jobs of the latest deploy run")
            }
        }
    }
    Ok(Some(LatestRun { run, failed_steps }))
}

fn run_icon(run: &WorkflowRun) -> &'static str {
    match (run.status.as_deref(), run.conclusion.as_deref()) {
        (Some("completed"), Some("success")) => "✅",
        (Some("completed"), Some("cancelled" | "skipped" | "neutral")) => "⚪",
        (Some("completed"), _) => "❌",
        _ => "🏃",
    }
}

/// The answer of `/verify-latest`: one embed, green only when the latest deploy succeeded and
/// every endpoint is healthy.
pub fn verify_embed(workflow: &str, latest: &Result<Option<LatestRun>, String>, checks: &[EndpointCheck]) -> Embed {
    let mut ok = checks.iter().all(EndpointCheck::healthy);
    let deploy = match latest {
        Ok(Some(l)) => {
            let r = &l.run;
            ok &= r.conclusion.as_deref() == Some("success");
            let outcome = r.conclusion.as_deref().or(r.status.as_deref()).unwrap_or("unknown");
            let mut text = format!("{} {outcome} · [#{}]({})", run_icon(r), r.run_number, r.html_url);
            if let Some(branch) = &r.head_branch {
                text.push_str(&format!(" · `{branch}`"));
            }
            if let Some(secs) = r.duration_secs().filter(|_| r.status.as_deref() == Some("completed")) {
                text.push_str(&format!(" · {}", valine_domain::clock::duration(secs)));
            }
            for step in &l.failed_steps {
                text.push_str(&format!("\nfailed: {step}"));
            }
            text
        }
        Ok(None) => {
            ok = false;
            "no runs yet".to_string()
        }
        Err(e) => {
            ok = false;
            format!("⚠️ could not read it: {e}")
        }
    };
    let endpoints = if checks.is_empty() { "none configured (VERIFY_URLS)".to_string() } else { checks_text(checks) };
    let (title, colour) =
        if ok { ("✅ Verify: all good", 0x2E_B6_7D) } else { ("❌ Verify: problems found", 0xE0_1E_5A) };
    Embed::new(title).colour(colour).field(format!("Latest `{workflow}`"), deploy, false).field(
        "Endpoints",
        endpoints,
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: Option<u16>, health: Option<&str>, location: Option<&str>, error: Option<&str>) -> EndpointCheck {
        EndpointCheck {
            name: "api".into(),
            url: "https://api.example.com/health".into(),
            answer: ProbeAnswer {
                status,
                latency_ms: 42,
                health: health.map(str::to_string),
                location: location.map(str::to_string),
                error: error.map(str::to_string),
            },
        }
    }

    #[test]
    fn what_counts_as_healthy() {
        let cases: &[(EndpointCheck, Option<&str>)] = &[
            (check(Some(200), None, None, None), None),
            (check(Some(204), Some("Healthy"), None, None), None),
            (check(Some(200), Some("ready"), None, None), None),
            (check(Some(200), Some("degraded"), None, None), Some("reports `degraded`")),
            (check(Some(500), Some("healthy"), None, None), Some("answered 500")),
            (
                check(Some(301), None, Some("https://elsewhere.example/"), None),
                Some("redirects to https://elsewhere.example/ (not followed)"),
            ),
            (check(None, None, None, Some("no answer within 2000 ms")), Some("no answer within 2000 ms")),
        ];
        for (c, want) in cases {
            assert_eq!(c.problem().as_deref(), *want, "{c:?}");
        }
    }

    #[test]
    fn a_line_names_status_latency_and_health() {
        assert_eq!(check(Some(200), Some("healthy"), None, None).line(), "✅ **api** · 200 · 42 ms · `healthy`");
        assert_eq!(check(Some(500), None, None, None).line(), "❌ **api** · 500 · 42 ms · answered 500");
        assert_eq!(
            check(None, None, None, Some("no answer within 2000 ms")).line(),
            "❌ **api** · no answer · 42 ms · no answer within 2000 ms"
        );
    }

    #[test]
    fn the_embed_is_green_only_when_everything_is() {
        let run = WorkflowRun {
            id: 9,
            status: Some("completed".into()),
            conclusion: Some("failure".into()),
            html_url: "https://github.com/acme/widget/actions/runs/9".into(),
            run_number: 12,
            head_branch: Some("main".into()),
            ..Default::default()
        };
        let latest = Ok(Some(LatestRun { run, failed_steps: vec!["build › npm ci".into()] }));
        let e = verify_embed("client-deploy.yml", &latest, &[check(Some(200), None, None, None)]);
        assert!(e.title.as_deref().unwrap().contains("problems"));
        assert!(e.fields[0].value.contains("failed: build › npm ci") && e.fields[0].value.contains("#12"));
        let e = verify_embed("client-deploy.yml", &Err("GitHub did not answer in time".into()), &[]);
        assert!(e.fields[0].value.contains("could not read it") && e.fields[1].value.contains("VERIFY_URLS"));
    }
}
