//! The `custom_id` of every button and select the bot sends, in one typed, versioned codec.
//!
//! A custom id only names something the bot stored (a pending confirmation, an incident); what it
//! names is always looked up again and checked, never trusted. Ids are at most 100 characters, as
//! Discord requires. Version 1 reads `v1:<kind>:<action>:<id>[:<arg>]`; the relay ids sent before
//! the codec (`relay:confirm:<id>`) still decode, so a preview open during a deploy keeps working.

use std::fmt;

/// How long a mute lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MuteFor {
    Hours(u32),
    /// Until a newer run succeeds.
    UntilFixed,
}

impl MuteFor {
    /// The choices offered on an incident.
    pub const CHOICES: [MuteFor; 4] = [MuteFor::Hours(1), MuteFor::Hours(4), MuteFor::Hours(24), MuteFor::UntilFixed];

    pub fn code(self) -> String {
        match self {
            Self::Hours(h) => format!("{h}h"),
            Self::UntilFixed => "fixed".to_string(),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        if s == "fixed" {
            return Some(Self::UntilFixed);
        }
        let h: u32 = s.strip_suffix('h')?.parse().ok()?;
        (1..=24 * 7).contains(&h).then_some(Self::Hours(h))
    }

    /// "1 h", "until fixed": for people.
    pub fn label(self) -> String {
        match self {
            Self::Hours(h) => format!("{h} h"),
            Self::UntilFixed => "until fixed".to_string(),
        }
    }
}

/// What a button or select means.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CustomId {
    /// Confirm a pending confirmation (a relay, a deploy, a variable or secret write).
    Confirm(String),
    Cancel(String),
    IncidentRerun(String),
    IncidentAck(String),
    /// A mute button with its duration, or the mute select (duration in the selected value).
    IncidentMute(String, Option<MuteFor>),
    IncidentUnmute(String),
    /// "Mark known…" on a card: opens the form that links the failure signature to its issue.
    MarkKnown(String),
    /// That form, submitted.
    KnownForm(String),
}

/// Ids that may appear inside a custom id: what the store hands out (UUIDs, short hex digests).
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl CustomId {
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() > crate::message::MAX_CUSTOM_ID {
            return None;
        }
        let parts: Vec<&str> = raw.split(':').collect();
        let parsed = match parts.as_slice() {
            ["v1", "confirm", "yes", id] | ["relay", "confirm", id] => Self::Confirm(id.to_string()),
            ["v1", "confirm", "no", id] | ["relay", "cancel", id] => Self::Cancel(id.to_string()),
            ["v1", "inc", "rerun", id] => Self::IncidentRerun(id.to_string()),
            ["v1", "inc", "ack", id] => Self::IncidentAck(id.to_string()),
            ["v1", "inc", "mute", id] => Self::IncidentMute(id.to_string(), None),
            ["v1", "inc", "mute", id, d] => Self::IncidentMute(id.to_string(), Some(MuteFor::parse(d)?)),
            ["v1", "inc", "unmute", id] => Self::IncidentUnmute(id.to_string()),
            ["v1", "known", "mark", sig] => Self::MarkKnown(sig.to_string()),
            ["v1", "known", "form", sig] => Self::KnownForm(sig.to_string()),
            _ => return None,
        };
        valid_id(parsed.id()).then_some(parsed)
    }

    /// The stored thing it names.
    pub fn id(&self) -> &str {
        match self {
            Self::Confirm(id)
            | Self::Cancel(id)
            | Self::IncidentRerun(id)
            | Self::IncidentAck(id)
            | Self::IncidentMute(id, _)
            | Self::IncidentUnmute(id)
            | Self::MarkKnown(id)
            | Self::KnownForm(id) => id,
        }
    }

    /// What traces and logs call a press: `component:confirm`, `component:incident.rerun`, ….
    pub fn action(&self) -> &'static str {
        match self {
            Self::Confirm(_) => "confirm",
            Self::Cancel(_) => "cancel",
            Self::IncidentRerun(_) => "incident.rerun",
            Self::IncidentAck(_) => "incident.ack",
            Self::IncidentMute(..) => "incident.mute",
            Self::IncidentUnmute(_) => "incident.unmute",
            Self::MarkKnown(_) => "known.mark",
            Self::KnownForm(_) => "known.form",
        }
    }
}

impl fmt::Display for CustomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Confirm(id) => write!(f, "v1:confirm:yes:{id}"),
            Self::Cancel(id) => write!(f, "v1:confirm:no:{id}"),
            Self::IncidentRerun(id) => write!(f, "v1:inc:rerun:{id}"),
            Self::IncidentAck(id) => write!(f, "v1:inc:ack:{id}"),
            Self::IncidentMute(id, None) => write!(f, "v1:inc:mute:{id}"),
            Self::IncidentMute(id, Some(d)) => write!(f, "v1:inc:mute:{id}:{}", d.code()),
            Self::IncidentUnmute(id) => write!(f, "v1:inc:unmute:{id}"),
            Self::MarkKnown(sig) => write!(f, "v1:known:mark:{sig}"),
            Self::KnownForm(sig) => write!(f, "v1:known:form:{sig}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_within_discords_limit() {
        let id = "0123456789abcdef0123456789abcdef-0123-4567";
        let all = [
            CustomId::Confirm(id.into()),
            CustomId::Cancel(id.into()),
            CustomId::IncidentRerun(id.into()),
            CustomId::IncidentAck(id.into()),
            CustomId::IncidentMute(id.into(), None),
            CustomId::IncidentMute(id.into(), Some(MuteFor::Hours(4))),
            CustomId::IncidentMute(id.into(), Some(MuteFor::UntilFixed)),
            CustomId::IncidentUnmute(id.into()),
        ];
        for c in all {
            let s = c.to_string();
            assert!(s.len() <= 100, "{s}");
            assert_eq!(CustomId::parse(&s), Some(c));
        }
    }

    #[test]
    fn relay_ids_sent_before_the_codec_still_decode() {
        assert_eq!(CustomId::parse("relay:confirm:abc-1"), Some(CustomId::Confirm("abc-1".into())));
        assert_eq!(CustomId::parse("relay:cancel:abc-1"), Some(CustomId::Cancel("abc-1".into())));
    }

    #[test]
    fn anything_else_is_not_recognised() {
        for bad in [
            "",
            "v1",
            "v1:inc:rerun:",
            "v1:inc:rerun:a:b",
            "v1:inc:mute:a:0h",
            "v1:inc:mute:a:9999h",
            "v1:inc:explode:a",
            "v2:inc:rerun:a",
            "relay:confirm:a b",
            "relay:confirm:../../x",
            &format!("v1:inc:ack:{}", "a".repeat(120)),
        ] {
            assert_eq!(CustomId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn mute_durations() {
        for m in MuteFor::CHOICES {
            assert_eq!(MuteFor::parse(&m.code()), Some(m));
        }
        assert_eq!(MuteFor::Hours(24).label(), "24 h");
        assert_eq!(MuteFor::UntilFixed.label(), "until fixed");
    }
}
