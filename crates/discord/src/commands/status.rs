//! `/status`: an embed per workflow with a one-line history and the last runs. GitHub gets two
//! seconds; past that the answer is deferred and a job finishes it.

use std::time::Duration;

use futures::future::join_all;
use valine_clients::github_api::{GitHub, Workflow, WorkflowRun};
use valine_clients::github_error::GitHubError;
use valine_domain::clock::{self, now_secs};
use valine_domain::config::Feature;
use valine_domain::markdown::{escape_markdown, inline_code};
use valine_domain::message::{Embed, MAX_EMBEDS, Message, Reply, truncate};
use valine_domain::repo::RepoName;
use valine_domain::trace::{StepStatus, TraceRecorder};

use crate::ctx::Ctx;
use crate::deferred::Deferred;
use crate::interaction::Options;
use crate::jobs::JobContext;
use crate::services::Services;
use crate::spec::{Access, OptKind, OptSpec, Spec, Where};

/// What the embeds' lines may take of the 6000 characters a message holds, leaving room for titles.
const EMBED_TEXT_BUDGET: usize = 5500;
/// How long `/status` waits for GitHub before it defers to a job.
pub(crate) const STATUS_INLINE_BUDGET: Duration = Duration::from_millis(2000);

pub(crate) const SPEC: Spec = Spec {
    name: "status",
    description: "Recent GitHub Actions runs, one line of history per workflow",
    options: &[
        OptSpec::new("count", OptKind::Integer, "Runs per workflow (1-10, default 5)").range(1, 10),
        OptSpec::new("workflow", OptKind::String, "Only this workflow (name or file)").autocomplete(),
        OptSpec::new("repo", OptKind::String, "owner/name (default: this channel's repository, else GITHUB_REPO)")
            .max_length(201)
            .autocomplete(),
    ],
    subcommands: &[],
    access: Access::Anyone,
    place: Where::Guild,
    summary: "An embed per workflow: a one-line history (🟢🟢🔴🟢, newest last), then the last runs with outcome, branch, age, duration and link.",
    span: "handle_status",
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub count: u8,
    pub workflow: Option<String>,
    pub repo: Option<String>,
}

pub(crate) fn parse(o: &Options) -> Args {
    Args {
        count: o.int("count").unwrap_or(5).clamp(1, 10) as u8,
        workflow: o.str("workflow").map(str::to_string),
        repo: o.str("repo").map(str::to_string),
    }
}

/// Autocomplete for `workflow`, from configuration only (no network call): `STATUS_WORKFLOWS`
/// entries that start with (or contain) what was typed.
pub(crate) fn complete(services: &Services, option: &str, typed: &str) -> Vec<(String, String)> {
    if option != "workflow" {
        return Vec::new();
    }
    let typed = typed.to_ascii_lowercase();
    let mut matches: Vec<(String, String)> = services
        .config
        .status_workflows
        .iter()
        .filter(|w| w.to_ascii_lowercase().contains(&typed))
        .map(|w| (w.clone(), w.clone()))
        .collect();
    matches.sort_by_key(|(w, _)| !w.to_ascii_lowercase().starts_with(&typed));
    matches.truncate(25);
    matches
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum StatusError {
    #[error("{0}")]
    GitHub(#[from] GitHubError),
    #[error("no workflow named `{0}` in {1}")]
    NoSuchWorkflow(String, String),
    #[error("no active workflows in {0}")]
    NoWorkflows(String),
}

pub(crate) async fn run(ctx: &mut Ctx<'_>, Args { count, workflow, repo }: Args) -> Reply {
    let typed_repo = repo;
    let repo = match crate::commands::subscribe::target_repo(ctx, typed_repo.as_deref()).await {
        Ok(r) => r,
        Err(reason) => {
            let record = ctx
                .blocked_record()
                .meta("repo", valine_domain::message::truncate(typed_repo.as_deref().unwrap_or(""), 200));
            return ctx.blocked(&reason, record).await;
        }
    };
    let mut missing = ctx.services.config.missing_for(Feature::GitHubRuns);
    if repo.is_some() {
        missing.retain(|v| *v != "GITHUB_REPO");
    }
    let (Some(github), Some(repo), true) = (ctx.services.github.clone(), repo, missing.is_empty()) else {
        let record = ctx.blocked_record();
        return ctx.blocked(&format!("GitHub is not configured: set {}.", missing.join(" and ")), record).await;
    };
    let filter = ctx.services.config.status_workflows.clone();
    let t = ctx.rec.start("github.status");
    let inline = tokio::time::timeout(
        // leave time to hand the work to a job if GitHub does not answer
        STATUS_INLINE_BUDGET.min(ctx.remaining().saturating_sub(Duration::from_millis(400))),
        fetch(github.as_ref(), &repo, &filter, count, workflow.as_deref()),
    )
    .await;
    match inline {
        Ok(Ok(embeds)) => {
            ctx.rec.finish(t, StepStatus::Ok, Some(format!("{} workflows", embeds.len())));
            Reply::Message(Message { embeds, ..Message::default() })
        }
        Ok(Err(e)) => {
            ctx.rec.finish(t, StepStatus::Error, Some(e.to_string()));
            ctx.fail(&format!("Could not read the workflow runs: {e}"))
        }
        Err(_) => {
            ctx.rec.finish(t, StepStatus::Skipped, Some("GitHub slower than 2 s: deferred".into()));
            let job = StatusJob { ctx: ctx.job_context(), count, workflow, repo: Some(repo.to_string()) };
            match ctx.defer(job).await {
                Ok(()) => Reply::Deferred { ephemeral: false },
                Err(e) => ctx.fail(&format!("GitHub is slow and {e}. Try again in a moment.")),
            }
        }
    }
}

/// `/status` when GitHub was too slow to answer inline.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StatusJob {
    pub ctx: JobContext,
    pub count: u8,
    pub workflow: Option<String>,
    /// The `repo` option's repository; none: `GITHUB_REPO`.
    #[serde(default)]
    pub repo: Option<String>,
}

impl Deferred for StatusJob {
    const KIND: &'static str = "status";

    fn context(&self) -> &JobContext {
        &self.ctx
    }

    fn context_mut(&mut self) -> &mut JobContext {
        &mut self.ctx
    }

    async fn run(self, services: &Services, rec: &mut TraceRecorder) {
        run_job(services, rec, &self.ctx, self.count, self.workflow.as_deref(), self.repo.as_deref()).await
    }
}

/// The job half: fetch without the two-second limit, then edit the deferred message.
async fn run_job(
    services: &Services,
    rec: &mut TraceRecorder,
    ctx: &JobContext,
    count: u8,
    workflow: Option<&str>,
    repo: Option<&str>,
) {
    let repo = match crate::commands::subscribe::recheck_repo(&services.config, repo) {
        Ok(r) => r,
        Err(reason) => {
            rec.fail(&reason);
            return services.job_failed(rec, ctx, &format!("Nothing was read: {reason}")).await;
        }
    };
    let (Some(github), Some(repo)) = (services.github.clone(), repo) else {
        return;
    };
    let filter = services.config.status_workflows.clone();
    let result = rec.time("github.status", fetch(github.as_ref(), &repo, &filter, count, workflow)).await;
    match result {
        Ok(embeds) => {
            let message = Message { content: Some(String::new()), embeds, ..Message::default() };
            services.edit_original(rec, ctx, &message).await;
        }
        Err(e) => {
            rec.fail(&e);
            services.job_failed(rec, ctx, &format!("Could not read the workflow runs: {e}")).await;
        }
    }
}

/// One embed per workflow (at most ten), newest runs first.
pub(crate) async fn fetch(
    github: &dyn GitHub,
    repo: &RepoName,
    filter: &[String],
    count: u8,
    only: Option<&str>,
) -> Result<Vec<Embed>, StatusError> {
    let workflows = github.list_workflows(repo).await?;
    let matches =
        |w: &Workflow, name: &str| w.name.eq_ignore_ascii_case(name) || w.file_name().eq_ignore_ascii_case(name);
    let mut chosen: Vec<Workflow> = workflows
        .into_iter()
        .filter(|w| w.state == "active" || w.state.is_empty())
        .filter(|w| filter.is_empty() || filter.iter().any(|f| matches(w, f)))
        .filter(|w| only.is_none_or(|o| matches(w, o)))
        .collect();
    if chosen.is_empty() {
        return Err(match only {
            Some(o) => StatusError::NoSuchWorkflow(o.to_string(), repo.to_string()),
            None => StatusError::NoWorkflows(repo.to_string()),
        });
    }
    let hidden = chosen.len().saturating_sub(MAX_EMBEDS);
    chosen.truncate(MAX_EMBEDS);
    let ids: Vec<String> = chosen.iter().map(|w| w.id.to_string()).collect();
    let runs = join_all(ids.iter().map(|id| github.list_runs(repo, id, count))).await;
    let budget = EMBED_TEXT_BUDGET / chosen.len();
    let now = now_secs();
    let mut embeds = Vec::with_capacity(chosen.len());
    for (w, runs) in chosen.iter().zip(runs) {
        let runs = runs?;
        embeds.push(workflow_embed(repo, w, &runs, now, budget));
    }
    if hidden > 0
        && let Some(last) = embeds.last_mut()
    {
        last.footer = Some(format!("+{hidden} more workflows: use the workflow option"));
    }
    Ok(embeds)
}

fn icon(run: &WorkflowRun) -> &'static str {
    match (run.status.as_deref(), run.conclusion.as_deref()) {
        (Some("completed"), Some("success")) => "🟢",
        (Some("completed"), Some("failure" | "timed_out" | "startup_failure")) => "🔴",
        (Some("completed"), Some("action_required")) => "🟠",
        (Some("completed"), _) => "⚪",
        _ => "🟡",
    }
}

fn colour(latest: Option<&WorkflowRun>) -> u32 {
    match latest.map(icon) {
        Some("🟢") => 0x2E_B6_7D,
        Some("🔴") => 0xE0_1E_5A,
        Some("🟡") => 0xF2_C7_44,
        _ => 0x95_A5_A6,
    }
}

/// History (oldest → newest), then a line per run (newest first).
fn workflow_embed(repo: &RepoName, w: &Workflow, runs: &[WorkflowRun], now: u64, budget: usize) -> Embed {
    let history: String = runs.iter().rev().map(icon).collect();
    let mut description = if runs.is_empty() { "No runs yet.".to_string() } else { format!("{history}\n") };
    for run in runs {
        let label = run.conclusion.as_deref().or(run.status.as_deref()).unwrap_or("unknown");
        let when = run
            .created_at
            .as_deref()
            .and_then(clock::parse_rfc3339_secs)
            .map_or_else(|| "?".to_string(), |t| clock::relative(t, now));
        let took = match run.status.as_deref() {
            Some("completed") => run.duration_secs().map_or_else(|| "?".to_string(), clock::duration),
            _ => "running".to_string(),
        };
        let line = format!(
            "{} **{label}** · {} · {when} · {took} · [#{}]({})\n",
            icon(run),
            inline_code(run.head_branch.as_deref().unwrap_or("?")),
            run.run_number,
            run.html_url
        );
        if description.chars().count() + line.chars().count() > budget.min(4000) {
            break;
        }
        description.push_str(&line);
    }
    let title = if w.name.is_empty() { w.file_name().to_string() } else { w.name.clone() };
    Embed::new(truncate(&escape_markdown(&title), 200))
        .url(format!("https://github.com/{repo}/actions/workflows/{}", w.file_name()))
        .description(description)
        .colour(colour(runs.first()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(status: &str, conclusion: Option<&str>) -> WorkflowRun {
        WorkflowRun {
            id: 1,
            status: Some(status.into()),
            conclusion: conclusion.map(str::to_string),
            head_branch: Some("main".into()),
            html_url: "https://github.com/acme/widget/actions/runs/1".into(),
            created_at: Some("2026-01-02T12:00:00Z".into()),
            run_started_at: Some("2026-01-02T12:00:00Z".into()),
            updated_at: Some("2026-01-02T12:02:05Z".into()),
            run_number: 12,
            ..Default::default()
        }
    }

    #[test]
    fn history_is_oldest_first_and_lines_carry_everything() {
        let repo = RepoName { owner: "acme".into(), name: "widget".into() };
        let w = Workflow { id: 7, name: "CI".into(), path: ".github/workflows/ci.yml".into(), state: "active".into() };
        // newest first, as GitHub lists them
        let runs = vec![run("in_progress", None), run("completed", Some("failure")), run("completed", Some("success"))];
        let e = workflow_embed(&repo, &w, &runs, 1_767_355_200 + 600, 5000);
        let d = e.description.as_deref().unwrap();
        assert!(d.starts_with("🟢🔴🟡\n"), "{d}");
        assert!(
            d.contains(
                "**failure** · `main` · 10m ago · 2m 05s · [#12](https://github.com/acme/widget/actions/runs/1)"
            ),
            "{d}"
        );
        assert!(d.contains("**in_progress**") && d.contains("running"));
        assert_eq!(e.url.as_deref(), Some("https://github.com/acme/widget/actions/workflows/ci.yml"));
        assert_eq!(e.colour, Some(0xF2_C7_44));
    }

    /// A branch name cannot close its code span, a workflow name is no markdown in the title.
    #[test]
    fn github_names_are_text() {
        let repo = RepoName { owner: "acme".into(), name: "widget".into() };
        let name = "**CI** [click](https://evil.example)";
        let w = Workflow { id: 7, name: name.into(), path: "a.yml".into(), state: "active".into() };
        let mut r = run("completed", Some("failure"));
        r.head_branch = Some("x`[y](https://evil.example)`".into());
        let e = workflow_embed(&repo, &w, &[r], 0, 5000);
        let title = e.title.as_deref().unwrap();
        assert!(!title.contains("**CI**") && !title.contains("[click]("), "{title}");
        let line = e.description.as_deref().unwrap().lines().nth(1).unwrap();
        assert_eq!(line.matches('`').count(), 2, "{line}");
    }

    #[test]
    fn embeds_stay_inside_discord_limits() {
        let repo = RepoName { owner: "acme".into(), name: "widget".into() };
        let w = Workflow { id: 7, name: "x".repeat(300), path: "a.yml".into(), state: "active".into() };
        let runs: Vec<_> = (0..10).map(|_| run("completed", Some("success"))).collect();
        let e = workflow_embed(&repo, &w, &runs, 0, EMBED_TEXT_BUDGET / 10);
        assert!(e.description.as_deref().unwrap().chars().count() <= EMBED_TEXT_BUDGET / 10);
        assert!(e.title.as_deref().unwrap().chars().count() <= 200);
    }
}
