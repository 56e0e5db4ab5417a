//! The alert model: severities, what an alert carries, its dedup key and window, and the Discord
//! message it becomes. Pure: sending and claiming live in `valine_service::alerting`.

use serde_json::Value;

use crate::markdown::{escape_markdown as text, inline_code};
use crate::message::{Embed, Message, link};

/// How bad it is. `Critical` may mention `ALERT_MENTION_ROLE_ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Critical,
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
    pub fn emoji(self) -> &'static str {
        match self {
            Severity::Critical => "🚨",
            Severity::Error => "❌",
            Severity::Warning => "⚠️",
            Severity::Info => "ℹ️",
        }
    }
    /// Embed colour.
    pub fn colour(self) -> u32 {
        match self {
            Severity::Critical => 0x99_00_00,
            Severity::Error => 0xE0_1E_5A,
            Severity::Warning => 0xF2_C7_44,
            Severity::Info => 0x36_C5_F0,
        }
    }
}

/// A failure inside the bot that it alerts about: what went wrong, as far as dedup is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InternalAlert {
    /// The store failed a command or a delivery that needs it.
    StoreUnavailable,
    /// An audit record could not be written.
    AuditWriteFailed,
    /// A workflow dispatch, or the job that makes it, could not be started.
    DispatchFailed,
    /// A command's job could not be started.
    JobFailed,
}

impl InternalAlert {
    /// The name in dedup keys, metrics and log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            InternalAlert::StoreUnavailable => "store_unavailable",
            InternalAlert::AuditWriteFailed => "audit_write_failed",
            InternalAlert::DispatchFailed => "dispatch_failed",
            InternalAlert::JobFailed => "job_failed",
        }
    }

    /// Without its store or its audit trail the bot is blind: critical, which may mention
    /// `ALERT_MENTION_ROLE_ID`.
    pub fn severity(self) -> Severity {
        match self {
            InternalAlert::StoreUnavailable | InternalAlert::AuditWriteFailed => Severity::Critical,
            InternalAlert::DispatchFailed | InternalAlert::JobFailed => Severity::Error,
        }
    }

    /// Raised because the store failed: its alert must not wait on that store first.
    pub fn is_store_failure(self) -> bool {
        matches!(self, InternalAlert::StoreUnavailable | InternalAlert::AuditWriteFailed)
    }
}

/// One alert about the bot itself, with everything an operator needs to act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub kind: InternalAlert,
    /// One line: what failed.
    pub title: String,
    pub repository: String,
    /// The bot's function.
    pub workflow: String,
    pub branch: String,
    pub commit: Option<String>,
    pub actor: Option<String>,
    pub conclusion: Option<String>,
    pub run_url: Option<String>,
    pub trace_id: String,
    pub detail: Option<String>,
}

impl Alert {
    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }

    /// Repository + workflow + branch + kind. Never a trace id: two deliveries of one failure
    /// share a key.
    pub fn dedup_key(&self) -> String {
        format!("{}|{}|{}|{}", self.repository, self.workflow, self.branch, self.kind.as_str())
    }

    /// The Discord message body. Only `mention_role` (for critical alerts) may be pinged. Values
    /// GitHub sent (a `target_url` that is not a URL, an empty ref) are made acceptable by
    /// [`Message`], never refused by Discord; names it sent are shown as text, not markdown.
    pub fn message(&self, mention_role: Option<u64>) -> Value {
        let severity = self.severity();
        let mut embed = Embed::new(format!("{} {}", severity.emoji(), text(&self.title)))
            .colour(severity.colour())
            .field("Repository", text(&self.repository), true)
            .field("Workflow", text(&self.workflow), true)
            .field("Branch", text(&self.branch), true)
            .footer(format!("severity: {}", severity.as_str()));
        if let Some(c) = &self.conclusion {
            embed = embed.field("Conclusion", text(c), true);
        }
        if let Some(c) = &self.commit {
            embed = embed.field("Commit", inline_code(short_sha(c)), true);
        }
        if let Some(a) = &self.actor {
            embed = embed.field("Actor", text(a), true);
        }
        if let Some(u) = self.run_url.as_deref().and_then(link) {
            embed = embed.url(&u).field("Run", format!("[open]({u})"), true);
        }
        if let Some(d) = &self.detail {
            embed = embed.field("Detail", truncate(d, 1000), false);
        }
        embed = embed.field("Trace", format!("`{}`", self.trace_id), false);
        let message = Message::embed_only(embed);
        match mention_role.filter(|_| severity == Severity::Critical) {
            Some(role) => Message { content: Some(format!("<@&{role}>")), ..message }.mention_role(role).to_json(),
            None => message.to_json(),
        }
    }
}

/// Where an alert may go: the channel, or why it cannot be posted (logged as `Alert skipped`).
/// One gate for incidents and for the bot's own alerts.
pub fn post_gate(enabled: bool, channel_id: Option<u64>, can_post: bool) -> Result<u64, &'static str> {
    match (enabled, channel_id, can_post) {
        (false, _, _) => Err("ENABLE_ALERTS is not true"),
        (true, None, _) => Err("ALERT_CHANNEL_ID is not set"),
        (true, Some(_), false) => Err("DISCORD_BOT_TOKEN is not set"),
        (true, Some(channel), true) => Ok(channel),
    }
}

/// Whether a claim made until `held_until` still holds at `now`.
pub fn window_holds(held_until: Option<u64>, now: u64) -> bool {
    held_until.is_some_and(|until| until > now)
}

fn short_sha(sha: &str) -> &str {
    sha.char_indices().nth(7).map_or(sha, |(i, _)| &sha[..i])
}

pub use crate::message::truncate;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alert(trace: &str) -> Alert {
        Alert {
            kind: InternalAlert::StoreUnavailable,
            title: "CI failed on main".into(),
            repository: "acme/widget".into(),
            workflow: "CI".into(),
            branch: "main".into(),
            commit: Some("3f1c9a7e0d2b4c6a8e9f0a1b2c3d4e5f60718293".into()),
            actor: Some("octocat".into()),
            conclusion: Some("failure".into()),
            run_url: Some("https://github.com/acme/widget/actions/runs/1".into()),
            trace_id: trace.into(),
            detail: None,
        }
    }

    #[test]
    fn dedup_key_never_contains_the_trace_id() {
        let a = alert("trace-one");
        let b = alert("trace-two");
        assert_eq!(a.dedup_key(), b.dedup_key());
        assert_eq!(a.dedup_key(), "acme/widget|CI|main|store_unavailable");
        assert!(!a.dedup_key().contains("trace"));
        let mut c = alert("t");
        c.kind = InternalAlert::DispatchFailed;
        assert_ne!(a.dedup_key(), c.dedup_key());
    }

    #[test]
    fn window_logic() {
        assert!(!window_holds(None, 100));
        assert!(window_holds(Some(400), 100));
        assert!(!window_holds(Some(100), 100));
    }

    #[test]
    fn message_carries_everything_and_pings_only_the_role() {
        let m = alert("abc").message(Some(42));
        let text = m.to_string();
        for needle in ["acme/widget", "CI", "main", "3f1c9a7", "octocat", "failure", "actions/runs/1", "abc", "🚨"] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
        assert_eq!(m["content"], "<@&42>");
        assert_eq!(m["allowed_mentions"], json!({"parse": [], "roles": ["42"]}));
        let mut error = alert("abc");
        error.kind = InternalAlert::DispatchFailed;
        let m = error.message(Some(42));
        assert!(m.get("content").is_none());
        assert_eq!(m["allowed_mentions"], json!({"parse": []}));
        assert_eq!(m["embeds"][0]["color"], Severity::Error.colour());
    }

    #[test]
    fn internal_alerts_keep_their_names_severities_and_store_failures() {
        use InternalAlert::*;
        let table = [
            (StoreUnavailable, "store_unavailable", Severity::Critical, true),
            (AuditWriteFailed, "audit_write_failed", Severity::Critical, true),
            (DispatchFailed, "dispatch_failed", Severity::Error, false),
            (JobFailed, "job_failed", Severity::Error, false),
        ];
        for (kind, name, severity, store_failure) in table {
            assert_eq!(kind.as_str(), name);
            assert_eq!(kind.severity(), severity, "{name}");
            assert_eq!(kind.is_store_failure(), store_failure, "{name}");
        }
    }

    /// Names GitHub sends are text in alerts too: no masked link, no mention, no markdown, and no
    /// way out of the commit's code span.
    #[test]
    fn github_names_in_alerts_are_text_not_markdown() {
        let mut a = alert("t");
        a.workflow = "[click](https://evil.example)".into();
        a.branch = "@everyone".into();
        a.actor = Some("<@123> **bold**".into());
        a.repository = "acme/__widget__".into();
        a.commit = Some("a`[x](https://evil.example)`".into());
        for m in [a.message(None)] {
            assert_eq!(m["allowed_mentions"], json!({"parse": []}));
            let e = &m["embeds"][0];
            let mut texts = vec![e["title"].as_str().unwrap().to_string()];
            for f in e["fields"].as_array().unwrap() {
                texts.push(f["value"].as_str().unwrap().to_string());
            }
            for text in &texts {
                for bad in ["[click](", "@everyone", "<@123>", "**bold**", "__widget__"] {
                    assert!(!text.contains(bad), "{bad:?} shows in {text:?}");
                }
            }
        }
        let m = a.message(None);
        let commit = m["embeds"][0]["fields"].as_array().unwrap().iter().find(|f| f["name"] == "Commit").unwrap();
        assert_eq!(commit["value"].as_str().unwrap().matches('`').count(), 2, "{commit}");
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("ab", 4), "ab");
        assert_eq!(truncate("ééééé", 3).chars().count(), 3);
    }

    #[test]
    fn odd_values_from_github_still_make_a_message_discord_accepts() {
        let mut a = alert("t-1");
        a.run_url = Some("not a url".into());
        a.branch = String::new();
        a.workflow = "w".repeat(300);
        let m = a.message(None);
        let e = &m["embeds"][0];
        assert!(e.get("url").is_none(), "{e}");
        assert!(!m.to_string().contains("not a url"));
        let fields = e["fields"].as_array().unwrap();
        assert!(fields.iter().all(|f| !f["value"].as_str().unwrap().is_empty()));
        assert!(fields.iter().all(|f| f["value"].as_str().unwrap().chars().count() <= 1024));
        assert!(e["title"].as_str().unwrap().chars().count() <= 256);
    }
}
