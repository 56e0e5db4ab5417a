//! The incident's one Discord message, its buttons, and its replies.

use crate::clock::duration;
use crate::custom_id::{CustomId, MuteFor};
use crate::markdown::{escape_markdown as text, inline_code};
use crate::message::{ButtonStyle, Component, Embed, Message};

use super::model::*;

const RED: u32 = 0xE0_1E_5A;
const AMBER: u32 = 0xF2_C7_44;
const GREEN: u32 = 0x2E_B6_7D;
const GREY: u32 = 0x99_AA_B5;

fn short_sha(sha: &str) -> &str {
    sha.char_indices().nth(7).map_or(sha, |(i, _)| &sha[..i])
}

/// The incident's name and scope (`CI`, `main`) as text for a message: GitHub's names are not
/// markdown.
fn shown_name(key: &IncidentKey) -> (String, String) {
    (text(&key.name()).into_owned(), text(key.scope()).into_owned())
}

fn run_label(run: &RunRef) -> String {
    let label = if run.run_number > 0 {
        if run.attempt > 1 {
            format!("#{} (attempt {})", run.run_number, run.attempt)
        } else {
            format!("#{}", run.run_number)
        }
    } else {
        "deployment".to_string()
    };
    match run.url.as_deref().and_then(crate::message::link) {
        Some(u) => format!("[{label}]({u})"),
        None => label,
    }
}

/// The incident message: an embed that says where it stands, the culprits in `content` (mentioned
/// by name, so `allowed_mentions` names exactly them), and, while open, its buttons. An edit with
/// it replaces everything, so a resolved incident loses its buttons. Every name GitHub sent is
/// shown as text ([`crate::markdown`]).
pub fn render(incident: &Incident, now: u64) -> Message {
    let key = &incident.key;
    let failing = incident.latest_failure.as_ref().or(incident.first_failure.as_ref());
    let endpoint = match &key.subject {
        Subject::Endpoint { endpoint } => Some(text(endpoint)),
        _ => None,
    };
    let (name, scope) = shown_name(key);
    let (title, colour) = if let Some(e) = endpoint.as_ref().filter(|_| !incident.flapping) {
        if incident.open {
            (format!("❌ Endpoint unhealthy: {e}"), RED)
        } else {
            (format!("✅ Resolved: {e} is healthy"), GREEN)
        }
    } else if !incident.open {
        (format!("✅ Resolved: {name} on {scope}"), GREEN)
    } else if incident.flapping {
        (format!("🔁 Flapping: {name} on {scope}"), AMBER)
    } else {
        let conclusion = text(failing.map_or("failure", |r| r.conclusion.as_str()));
        (format!("❌ {name} on {scope}: {conclusion}"), RED)
    };
    let muted = incident.open && incident.muted(now);
    let mut embed = Embed::new(title).colour(if muted { GREY } else { colour });
    embed = embed.field("Repository", text(&key.repository), true);
    match &key.subject {
        Subject::Workflow { workflow, branch } => {
            embed = embed.field("Workflow", text(workflow), true).field("Branch", text(branch), true);
        }
        Subject::Deployment { environment } => embed = embed.field("Environment", text(environment), true),
        Subject::Endpoint { endpoint } => {
            embed = embed.field("Endpoint", text(endpoint), true);
            if let Some(u) = failing.and_then(|r| r.url.as_deref()) {
                embed = embed.field("URL", u, false);
            }
        }
    }
    if let Some(run) = failing {
        if let Some(c) = &run.commit {
            embed = embed.field("Commit", inline_code(short_sha(c)), true);
        }
        if let Some(a) = &run.actor {
            embed = embed.field("Actor", text(a), true);
        }
        embed = embed.field(if endpoint.is_some() { "Problem" } else { "Conclusion" }, text(&run.conclusion), true);
        if endpoint.is_none() {
            let name = if incident.failures > 1 { "Latest failing run" } else { "Run" };
            embed = embed.field(name, run_label(run), true);
            if let Some(u) = &run.url {
                embed = embed.url(u);
            }
        }
    }
    if incident.failures > 1 {
        let since = crate::clock::relative(incident.opened_at, now);
        embed = embed.field("Failures", format!("{} since {since}", incident.failures), true);
    }
    if incident.flapping {
        let latest = if incident.latest_passing { "passed" } else { "failed" };
        embed =
            embed.field("Flapping", format!("{} flips recently; the latest run {latest}", incident.flips.len()), false);
    }
    if let Some(detail) = failing.and_then(|r| r.detail.as_ref()) {
        // escaped, so that a `]` in a name cannot end the link text below
        let mut place = text(detail.job.as_deref().unwrap_or_default()).into_owned();
        if let Some(step) = &detail.step {
            place = format!("{place} › {}", text(step));
        }
        if let Some(u) = detail.job_url.as_deref().and_then(crate::message::link) {
            place = format!("[{place}]({u})");
        }
        if !place.is_empty() {
            embed = embed.field("Failing job", place, false);
        }
        if let Some(signature) = &detail.signature {
            embed = embed.field("Signature", signature_line(signature, detail.seen.as_ref()), false);
        }
        if let Some(known) = &detail.known {
            embed = embed.field("Known issue", known.header(), false);
        }
        if let Some(tail) = detail.log_tail.as_deref().filter(|t| !t.trim().is_empty()) {
            embed = embed.field("Log tail", format!("```\n{tail}\n```"), false);
        }
    }
    if !incident.open
        && let (Some(fix), Some(resolved_at)) = (&incident.fixed_by, incident.resolved_at)
    {
        let mut fixed = run_label(fix);
        if let Some(c) = &fix.commit {
            fixed = format!("{fixed} at {}", inline_code(short_sha(c)));
        }
        embed = embed.field("Fixed by", fixed, true).field(
            "Time to recover",
            duration(resolved_at.saturating_sub(incident.opened_at)),
            true,
        );
    }
    if failing.is_some_and(|r| r.retried) {
        embed = embed.field("Retry", "retried once, failed again", false);
    }
    if let Some(r) = incident.rerun {
        embed = embed.field("Re-run", format!("requested by <@{}> <t:{}:R>", r.user_id, r.at), false);
    }
    if let Some(a) = incident.acked {
        embed = embed.field("Acknowledged", format!("by <@{}> <t:{}:R>", a.user_id, a.at), false);
    }
    if let Some(m) = incident.mute.filter(|m| m.active(now)) {
        let until = m.until.map_or_else(|| "until fixed".to_string(), |u| format!("until <t:{u}:t>"));
        embed = embed.field("Muted", format!("by <@{}> {until}", m.by), false);
    }
    if let Some(run) = failing {
        embed = embed.field("Trace", format!("`{}`", run.trace_id), false);
    }
    embed = embed.footer(format!("incident {}", incident.streak_id()));
    // A known issue says so first; its card pings no one (the desk mentions nobody for it).
    let known = failing.and_then(|r| r.detail.as_ref()).and_then(|d| d.known.as_ref()).filter(|_| incident.open);
    let mut content: Vec<String> = known.map(|k| k.header()).into_iter().collect();
    content.extend(incident.mention_role.iter().map(|r| format!("<@&{r}>")));
    content.extend(incident.mentioned.iter().map(|u| format!("<@{u}>")));
    let mut message = Message::text(content.join(" ")).with_embed(embed).replacing();
    for user in &incident.mentioned {
        message = message.mention_user(*user);
    }
    if let Some(role) = incident.mention_role {
        message = message.mention_role(role);
    }
    if incident.open {
        for row in buttons(incident, now).chunks(crate::message::MAX_PER_ROW) {
            message = message.with_row(row.to_vec());
        }
    }
    message
}

fn buttons(incident: &Incident, now: u64) -> Vec<Component> {
    let id = incident.streak_id();
    let mut row = Vec::new();
    if matches!(incident.key.subject, Subject::Workflow { .. }) {
        row.push(Component::button(
            "Re-run failed jobs",
            ButtonStyle::Primary,
            CustomId::IncidentRerun(id.clone()).to_string(),
        ));
    }
    // A failure with a signature nobody linked yet can be linked from its card.
    let detail = incident.latest_failure.as_ref().and_then(|r| r.detail.as_ref());
    if let Some(sig) =
        detail.filter(|d| d.known.as_ref().is_none_or(|k| !k.silences())).and_then(|d| d.signature.as_ref())
    {
        row.push(Component::button(
            "Mark known…",
            ButtonStyle::Secondary,
            CustomId::MarkKnown(sig.clone()).to_string(),
        ));
    }
    if incident.acked.is_none() {
        row.push(Component::button(
            "Acknowledge",
            ButtonStyle::Secondary,
            CustomId::IncidentAck(id.clone()).to_string(),
        ));
    }
    if incident.muted(now) {
        row.push(Component::button("Unmute", ButtonStyle::Secondary, CustomId::IncidentUnmute(id).to_string()));
    } else {
        for d in MuteFor::CHOICES {
            let label = format!("Mute {}", d.label());
            row.push(Component::button(
                label,
                ButtonStyle::Secondary,
                CustomId::IncidentMute(id.clone(), Some(d)).to_string(),
            ));
        }
    }
    row
}

/// The one short reply that tells the channel the incident is resolved (edits do not notify).
pub fn resolved_reply(incident: &Incident) -> Message {
    let recover = incident.resolved_at.map(|r| duration(r.saturating_sub(incident.opened_at))).unwrap_or_default();
    let fix = incident.fixed_by.as_ref().map(run_label).unwrap_or_default();
    let (name, scope) = shown_name(&incident.key);
    match incident.flaky() {
        Some(attempt) => Message::text(format!(
            "✅ Resolved: {name} on {scope} after {recover} ({fix}) — flaky: passed on attempt {attempt}."
        )),
        None => Message::text(format!("✅ Resolved: {name} on {scope} after {recover} ({fix}).")),
    }
}

/// The one escalation reply: mentions the role, and only it.
pub fn escalation_reply(incident: &Incident, role: Option<u64>, now: u64) -> Message {
    let open_for = duration(now.saturating_sub(incident.opened_at));
    let (name, scope) = shown_name(&incident.key);
    let text = format!("⏰ {name} on {scope} has been failing for {open_for} and nobody has acknowledged it.");
    match role {
        Some(r) => Message::text(format!("<@&{r}> {text}")).mention_role(r),
        None => Message::text(text),
    }
}

/// "`s1a2b3c4d5e` · seen 3× in 14 days (last on main, #41, fixed by #42)", or "… · first seen" on its first
/// sighting.
pub(crate) fn signature_line(signature: &str, seen: Option<&crate::fingerprint::Seen>) -> String {
    match seen {
        Some(seen) => format!(
            "{} · seen {}× in {} days (last on {}, #{}{})",
            inline_code(signature),
            seen.count,
            seen.days,
            text(&seen.last_branch),
            seen.last_run_number,
            seen.fixed_by.map(|run| format!(", fixed by #{run}")).unwrap_or_default()
        ),
        None => format!("{} · first seen", inline_code(signature)),
    }
}
