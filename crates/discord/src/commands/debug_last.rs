//! `/debug-last`: the caller's own last trace, from any container (the store first, this
//! container's cache as a fallback), never anyone else's. Redacted and cut to Discord's limits.

use std::time::Duration;

use valine_domain::authz::authorize_debug;
use valine_domain::message::{Embed, Message, Reply, truncate};
use valine_domain::redact::redact;
use valine_domain::trace::{StepStatus, Trace};

use crate::ctx::Ctx;
use crate::interaction::Options;
use crate::spec::{Access, Spec, Where};

pub(crate) const SPEC: Spec = Spec {
    name: "debug-last",
    description: "Show the trace of your own last command",
    options: &[],
    subcommands: &[],
    access: Access::AnyoneUnless("DEBUG_CMD_ALLOWED_USERS"),
    place: Where::GuildAndDm,
    summary: "With `ENABLE_DEBUG_CMD=true`: your own last trace, its steps with their measured durations, the error, and links.",
    span: "handle_debug_last",
};

/// Traces of `/debug-last` itself are skipped: the caller wants what came before.
const SELF: &str = "/debug-last";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args;

pub(crate) fn parse(_: &Options) -> Args {
    Args
}

pub(crate) async fn run(ctx: &mut Ctx<'_>, _: Args) -> Reply {
    if let Err(refusal) = authorize_debug(ctx.caller(), &ctx.services.config) {
        let record = ctx.blocked_record();
        return ctx.blocked(&refusal.to_string(), record).await;
    }
    let user = ctx.user_id.to_string();
    let traces = ctx.services.stores.traces.clone();
    let stored =
        ctx.store_step("store.recent_traces", Duration::from_millis(1500), traces.recent_for_user(&user, 10)).await;
    let (from_store, note) = match stored {
        Ok(list) => (list, None),
        Err(e) => {
            (Vec::new(), Some(format!("The trace store is unavailable ({e}); this is what this container remembers.")))
        }
    };
    let cached = ctx.services.traces.last_for_user(&user);
    // Only the caller's own traces, whatever a store returned.
    let last = from_store
        .into_iter()
        .chain(cached)
        .filter(|t| t.user_id == user && t.command != SELF)
        .max_by_key(|t| t.started_at_ms);
    let Some(trace) = last else {
        return Reply::Message(Message::text("No trace of yours in the last 24 hours.").ephemeral());
    };
    let embed = render(&trace, ctx.services.config.aws_region.as_deref(), &ctx.services.config.stage);
    Reply::Message(Message { content: note, ..Message::embed_only(embed) }.ephemeral())
}

fn status_icon(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Ok => "✅",
        StepStatus::Error => "❌",
        StepStatus::Skipped => "⏭️",
    }
}

/// The trace as one embed, inside Discord's limits (description 4096, field 1024, total 6000).
pub(crate) fn render(trace: &Trace, region: Option<&str>, stage: &str) -> Embed {
    let mut steps = String::from("```\n");
    for (i, s) in trace.steps.iter().enumerate() {
        let detail = s.detail.as_deref().map(|d| format!("  {}", truncate(&redact(d), 120))).unwrap_or_default();
        let line = format!(
            "{} {:<24} +{:>5}ms {:>6}ms{detail}\n",
            status_icon(s.status),
            truncate(&s.name, 24),
            s.started_ms,
            s.duration_ms
        );
        if steps.len() + line.len() > 3000 {
            steps.push_str(&format!("… {} more steps\n", trace.steps.len() - i));
            break;
        }
        steps.push_str(&line);
    }
    if trace.steps.is_empty() {
        steps.push_str("(no steps recorded)\n");
    }
    steps.push_str("```");
    let mut embed = Embed::new(format!("🔎 Your last command: {}", trace.command))
        .description(steps)
        .colour(if trace.error.is_some() { 0xE0_1E_5A } else { 0x2E_B6_7D })
        .field("Trace", format!("`{}`", trace.trace_id), false)
        .field("Started", format!("<t:{}:f>", trace.started_at_ms / 1000), true)
        .field("Duration", format!("{} ms", trace.duration_ms), true);
    if let Some(c) = &trace.correlation_id {
        embed = embed.field("Correlation", format!("`{c}`"), true);
    }
    if let Some(e) = &trace.error {
        embed = embed.field("Error", truncate(&redact(e), 1000), false);
    }
    let mut links: Vec<String> =
        trace.links.iter().map(|l| format!("[{}]({})", truncate(&l.label, 40), l.url)).collect();
    if let Some(region) = region {
        links.push(format!("[CloudWatch Logs Insights]({})", logs_insights_url(region, stage, &trace.trace_id)));
    }
    links.push(format!("`valinectl trace {}`", trace.trace_id));
    embed.field("Links", truncate(&links.join(" · "), 1000), false)
}

/// A Logs Insights link that opens the query for this trace id over both functions' logs.
pub(crate) fn logs_insights_url(region: &str, stage: &str, trace_id: &str) -> String {
    // The console encodes its query state with `*` where percent-encoding has `%`.
    fn enc(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
                out.push(b as char);
            } else {
                out.push_str(&format!("*{b:02x}"));
            }
        }
        out
    }
    let query = format!("fields ts, level, service, fn, msg\n| filter trace_id = \"{trace_id}\"\n| sort ts asc");
    let sources: String = ["discord", "github"]
        .iter()
        .map(|f| format!("~'{}", enc(&format!("/aws/lambda/valine-orchestrator-{f}-{stage}"))))
        .collect();
    format!(
        "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:logs-insights$3FqueryDetail$3D~(end~0~start~-86400~timeType~'RELATIVE~unit~'seconds~editorString~'{}~source~({sources}))",
        enc(&query)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use valine_domain::trace::Step;

    fn trace(steps: usize) -> Trace {
        Trace {
            trace_id: "6f1c2a4e-8b3d-4c5e-9f70-112233445566".into(),
            user_id: "42".into(),
            command: "/status".into(),
            started_at_ms: 1_767_355_200_000,
            duration_ms: 2100,
            steps: (0..steps)
                .map(|i| Step {
                    name: format!("step-{i}"),
                    started_ms: i as u64,
                    duration_ms: 5,
                    status: StepStatus::Error,
                    detail: Some("failed with token=abc123 and more".into()),
                })
                .collect(),
            error: Some("GitHub said Authorization: Bearer ghp_abcdefghijklmnopqrstuvwxyz0123456789".into()),
            links: vec![],
            correlation_id: None,
        }
    }

    #[test]
    fn renders_redacted_and_within_limits() {
        let e = Message::embed_only(render(&trace(500), Some("eu-west-1"), "prod")).to_json()["embeds"][0].clone();
        let text = e.to_string();
        assert!(!text.contains("abc123") && !text.contains("ghp_"), "{text}");
        assert!(e["description"].as_str().unwrap().chars().count() <= 4096);
        let total: usize = e["title"].as_str().unwrap().chars().count()
            + e["description"].as_str().unwrap().chars().count()
            + e["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["name"].as_str().unwrap().len() + f["value"].as_str().unwrap().chars().count())
                .sum::<usize>();
        assert!(total <= 6000, "{total}");
        assert!(text.contains("more steps"));
        assert!(text.contains("<t:1767355200:f>"));
    }

    #[test]
    fn logs_insights_link_names_both_log_groups_and_the_trace() {
        let url = logs_insights_url("eu-west-1", "prod", "abc-1");
        assert!(url.starts_with("https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:logs-insights$3FqueryDetail$3D~("));
        assert!(url.contains("*2faws*2flambda*2fvaline-orchestrator-discord-prod"));
        assert!(url.contains("*2faws*2flambda*2fvaline-orchestrator-github-prod"));
        assert!(url.contains("abc-1"));
        assert!(!url.contains(' ') && !url.contains('"') && !url.contains('\n'));
    }
}
