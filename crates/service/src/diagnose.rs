//! Dispatch and follow, shared by `/diagnose` and `/deploy-client`: the progress message both
//! handlers render, from "dispatched" to "finished", and how a workflow run is matched to its
//! pending correlation (the id in the run's name).

use valine_domain::message::{Embed, Message};
use valine_store::{DiagnoseCorrelation, Followed, RunRecord};

use crate::verify::{EndpointCheck, checks_text};

/// How long a correlation (and the interaction token it carries) stays usable. Discord's
/// interaction tokens live 15 minutes.
pub const CORRELATION_TTL_SECS: u64 = 14 * 60;

/// The progress message for a correlation, before (`run` is `None`) or after its run appeared.
pub fn progress_message(c: &DiagnoseCorrelation, run: Option<&RunRecord>) -> Message {
    progress_message_with(c, run, None)
}

/// What the message of a followed run is titled.
pub fn title(kind: Followed) -> &'static str {
    match kind {
        Followed::Diagnose => "🧪 Diagnose",
        Followed::Deploy => "🚀 Deploy client",
    }
}

/// The progress message, with the endpoint checks run after a successful deploy.
pub fn progress_message_with(
    c: &DiagnoseCorrelation,
    run: Option<&RunRecord>,
    checks: Option<&[EndpointCheck]>,
) -> Message {
    let (status, colour) = match run {
        None => ("⏳ Dispatched — waiting for the run to start".to_string(), 0x95_A5_A6),
        Some(r) => match (r.status.as_str(), r.conclusion.as_deref()) {
            ("completed", Some("success")) => ("✅ Finished: success".to_string(), 0x2E_B6_7D),
            ("completed", Some(c)) => (format!("❌ Finished: {c}"), 0xE0_1E_5A),
            ("completed", None) => ("🏁 Finished".to_string(), 0x95_A5_A6),
            ("in_progress", _) => ("🏃 Running".to_string(), 0x36_C5_F0),
            (other, _) => (format!("🕒 {}", if other == "queued" { "Queued" } else { other }), 0xF2_C7_44),
        },
    };
    let mut embed = Embed::new(title(c.kind)).colour(colour).field("Status", status, false).field(
        "Requested by",
        format!("<@{}>", c.user_id),
        true,
    );
    if let Some(r) = run {
        embed = embed.url(&r.html_url).field("Run", format!("[#{}]({})", r.run_number, r.html_url), true);
        if r.status == "completed" {
            let start = r.run_started_at.unwrap_or(r.created_at);
            embed = embed.field("Duration", valine_domain::clock::duration(r.updated_at.saturating_sub(start)), true);
        }
    }
    if let Some(r) = &c.git_ref {
        embed = embed.field("Ref", format!("`{r}`"), true);
    }
    if let Some(u) = &c.frontend_url {
        embed = embed.field("Frontend", u, false);
    }
    if let Some(u) = &c.api_base {
        embed = embed.field("API base", u, false);
    }
    if let Some(checks) = checks.filter(|c| !c.is_empty()) {
        let all = checks.iter().all(EndpointCheck::healthy);
        let name = if all { "Verify: all endpoints healthy" } else { "Verify: problems found" };
        embed = embed.field(name, checks_text(checks), false);
    }
    embed = embed.field("Correlation", format!("`{}`", c.correlation_id), true).field(
        "Trace",
        format!("`{}`", c.trace_id),
        true,
    );
    Message::text("").with_embed(embed).replacing()
}

/// Every UUID in a run's name: candidates for a pending correlation id.
pub fn correlation_ids_in(title: &str) -> Vec<String> {
    let b = title.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(cand) = b.get(i..i + 36) {
        if cand.get(8) == Some(&b'-')
            && uuid::Uuid::try_parse_ascii(cand).is_ok()
            && (i == 0 || !b.get(i - 1).is_some_and(u8::is_ascii_hexdigit))
            && !b.get(i + 36).is_some_and(u8::is_ascii_hexdigit)
        {
            out.push(String::from_utf8_lossy(cand).to_ascii_lowercase());
            i += 36;
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corr() -> DiagnoseCorrelation {
        DiagnoseCorrelation {
            correlation_id: "6f1c2a4e-8b3d-4c5e-9f70-112233445566".into(),
            application_id: 1,
            interaction_token: "tok".into(),
            user_id: "42".into(),
            trace_id: "t-1".into(),
            created_at: 0,
            expires_at: 900,
            frontend_url: Some("https://example.com".into()),
            api_base: None,
            kind: Default::default(),
            git_ref: None,
        }
    }

    #[test]
    fn finds_correlation_ids_in_run_names() {
        assert_eq!(
            correlation_ids_in("diagnose 6F1C2A4E-8B3D-4C5E-9F70-112233445566 by alice"),
            vec!["6f1c2a4e-8b3d-4c5e-9f70-112233445566"]
        );
        assert!(correlation_ids_in("CI on main").is_empty());
        assert!(correlation_ids_in("a6f1c2a4e-8b3d-4c5e-9f70-112233445566").is_empty());
        assert_eq!(correlation_ids_in("ünï 6f1c2a4e-8b3d-4c5e-9f70-112233445566").len(), 1);
    }

    #[test]
    fn progress_shows_each_stage() {
        let c = corr();
        let waiting = progress_message(&c, None).to_json().to_string();
        assert!(waiting.contains("Dispatched") && waiting.contains("t-1") && waiting.contains("<@42>"));
        let mut run = RunRecord {
            run_id: 9,
            repository: "acme/widget".into(),
            workflow_id: 1,
            workflow_name: "Diagnose".into(),
            title: "diagnose x".into(),
            workflow_path: ".github/workflows/diagnose.yml".into(),
            head_branch: "main".into(),
            head_repository: None,
            head_sha: "abc".into(),
            status: "queued".into(),
            conclusion: None,
            html_url: "https://github.com/acme/widget/actions/runs/9".into(),
            run_number: 3,
            event: "workflow_dispatch".into(),
            actor: None,
            created_at: 100,
            updated_at: 100,
            run_started_at: Some(110),
        };
        assert!(progress_message(&c, Some(&run)).to_json().to_string().contains("Queued"));
        run.status = "in_progress".into();
        assert!(progress_message(&c, Some(&run)).to_json().to_string().contains("Running"));
        run.status = "completed".into();
        run.conclusion = Some("failure".into());
        run.updated_at = 230;
        let done = progress_message(&c, Some(&run)).to_json();
        let text = done.to_string();
        assert!(text.contains("Finished: failure") && text.contains("2m 00s") && text.contains("actions/runs/9"));
        assert_eq!(done["allowed_mentions"], serde_json::json!({"parse": []}));
    }
}
