//! How a command is described once: its name, options, who may run it and where. The registry
//! (`registry.rs`) turns these into the registration JSON, the README's table, and the parser.

use serde_json::{Value, json};

/// Discord's option types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptKind {
    String = 3,
    Integer = 4,
    Boolean = 5,
    User = 6,
    Channel = 7,
    Role = 8,
}

#[derive(Debug, Clone, Copy)]
pub struct OptSpec {
    pub name: &'static str,
    pub kind: OptKind,
    pub description: &'static str,
    pub required: bool,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub max_length: Option<u32>,
    pub autocomplete: bool,
    pub channel_types: &'static [u8],
    /// Fixed choices: (name shown, value sent).
    pub choices: &'static [(&'static str, &'static str)],
}

impl OptSpec {
    pub const fn new(name: &'static str, kind: OptKind, description: &'static str) -> Self {
        Self {
            name,
            kind,
            description,
            required: false,
            min: None,
            max: None,
            max_length: None,
            autocomplete: false,
            channel_types: &[],
            choices: &[],
        }
    }

    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub const fn range(mut self, min: i64, max: i64) -> Self {
        self.min = Some(min);
        self.max = Some(max);
        self
    }

    pub const fn max_length(mut self, n: u32) -> Self {
        self.max_length = Some(n);
        self
    }

    pub const fn autocomplete(mut self) -> Self {
        self.autocomplete = true;
        self
    }

    pub const fn channel_types(mut self, types: &'static [u8]) -> Self {
        self.channel_types = types;
        self
    }

    pub const fn choices(mut self, choices: &'static [(&'static str, &'static str)]) -> Self {
        self.choices = choices;
        self
    }

    fn to_json(self) -> Value {
        // `json!` of an object literal is an object
        let Value::Object(mut o) = json!({"name": self.name, "type": self.kind as u8,
                                          "description": self.description, "required": self.required})
        else {
            return Value::Null;
        };
        if let Some(m) = self.min {
            o.insert("min_value".into(), json!(m));
        }
        if let Some(m) = self.max {
            o.insert("max_value".into(), json!(m));
        }
        if let Some(m) = self.max_length {
            o.insert("max_length".into(), json!(m));
        }
        if self.autocomplete {
            o.insert("autocomplete".into(), json!(true));
        }
        if !self.channel_types.is_empty() {
            o.insert("channel_types".into(), json!(self.channel_types));
        }
        if !self.choices.is_empty() {
            o.insert("choices".into(), self.choices.iter().map(|(n, v)| json!({"name": n, "value": v})).collect());
        }
        Value::Object(o)
    }
}

/// Who may run a command: shown in the README, enforced by the command itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Anyone,
    /// Anyone, unless the named variable restricts it.
    AnyoneUnless(&'static str),
    Admins,
    /// Admins, or members of the roles in the named variable.
    AdminsOr(&'static str),
}

impl Access {
    pub fn describe(self) -> String {
        match self {
            Self::Anyone => "anyone".into(),
            Self::AnyoneUnless(var) => format!("anyone (`{var}` may restrict)"),
            Self::Admins => "admins".into(),
            Self::AdminsOr(var) => format!("admins or `{var}`"),
        }
    }
}

/// Where a command can be used (Discord's interaction context types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Where {
    /// Only in the team's server.
    Guild,
    /// In the server and in a DM with the bot.
    GuildAndDm,
}

/// A sub-command (`/known link …`): its own name, description and options.
#[derive(Debug, Clone, Copy)]
pub struct SubSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub options: &'static [OptSpec],
}

/// Discord's option type of a sub-command.
const SUB_COMMAND: u8 = 1;

#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub description: &'static str,
    /// The command's options; none when it has sub-commands.
    pub options: &'static [OptSpec],
    /// Sub-commands, each with its options (`/known link signature issue [note]`).
    pub subcommands: &'static [SubSpec],
    pub access: Access,
    pub place: Where,
    /// What the README says it does.
    pub summary: &'static str,
    /// The log lines' `fn` while it runs.
    pub span: &'static str,
}

/// Discord's "nobody but server administrators until the server grants it" permission value.
const ADMINISTRATORS_ONLY: &str = "0";

impl Spec {
    /// `/status`: what traces, metrics and audit records call it.
    pub fn slash(&self) -> String {
        format!("/{}", self.name)
    }

    /// The command as `PUT /applications/{id}/commands` takes it.
    pub fn to_json(&self) -> Value {
        let contexts: &[u8] = match self.place {
            Where::Guild => &[0],
            Where::GuildAndDm => &[0, 1],
        };
        // `json!` of an object literal is an object
        let Value::Object(mut c) = json!({
            "name": self.name, "type": 1, "description": self.description,
            "options": self.options_json(),
            "contexts": contexts,
            "integration_types": [0],
        }) else {
            return Value::Null;
        };
        if matches!(self.access, Access::Admins | Access::AdminsOr(_)) {
            c.insert("default_member_permissions".into(), json!(ADMINISTRATORS_ONLY));
        }
        Value::Object(c)
    }

    fn options_json(&self) -> Vec<Value> {
        if self.subcommands.is_empty() {
            return self.options.iter().map(|o| o.to_json()).collect();
        }
        self.subcommands
            .iter()
            .map(|sub| {
                json!({"name": sub.name, "type": SUB_COMMAND, "description": sub.description,
                       "options": sub.options.iter().map(|o| o.to_json()).collect::<Vec<_>>()})
            })
            .collect()
    }

    /// `/status [count] [workflow]`: the usage line of the README's table; a command with
    /// sub-commands has one per sub-command (`/known link signature issue [note]`).
    pub fn usage(&self) -> Vec<String> {
        let line = |head: String, options: &[OptSpec]| {
            let mut u = head;
            for o in options {
                if o.required {
                    u.push_str(&format!(" {}", o.name));
                } else {
                    u.push_str(&format!(" [{}]", o.name));
                }
            }
            u
        };
        if self.subcommands.is_empty() {
            return vec![line(self.slash(), self.options)];
        }
        self.subcommands.iter().map(|sub| line(format!("{} {}", self.slash(), sub.name), sub.options)).collect()
    }

    /// One row of the README's command table.
    pub fn table_row(&self) -> String {
        let dm = if self.place == Where::GuildAndDm { " Also in a DM with the bot." } else { "" };
        let usage: Vec<String> = self.usage().iter().map(|u| format!("`{u}`")).collect();
        format!("| {} | {} | {}{dm} |", usage.join("<br>"), self.access.describe(), self.summary)
    }
}

/// Why an interaction is refused for where it came from, or `None` when it may run: with
/// `ALLOWED_GUILD_IDS` set, only those servers are served, and in a DM only commands defined for
/// DMs (`/debug-last`). Without it, any server is served and DMs follow each command's `place`.
pub fn place_refusal(allowed_guilds: &[u64], guild_id: Option<u64>, place: Where) -> Option<&'static str> {
    match guild_id {
        None if place == Where::GuildAndDm => None,
        None => Some("This command works only in the team's server, not in a direct message."),
        Some(_) if allowed_guilds.is_empty() => None,
        Some(g) if allowed_guilds.contains(&g) => None,
        Some(_) => Some("This bot serves only its team's server (ALLOWED_GUILD_IDS)."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_an_interaction_may_run() {
        use Where::*;
        let team = [805588225228931074];
        let cases: &[(&[u64], Option<u64>, Where, bool)] = &[
            (&team, Some(805588225228931074), Guild, true),
            (&team, Some(1), Guild, false),
            (&team, Some(1), GuildAndDm, false),
            (&team, None, Guild, false),
            (&team, None, GuildAndDm, true),
            (&[], Some(1), Guild, true),
            (&[], None, Guild, false),
            (&[], None, GuildAndDm, true),
        ];
        for (allowed, guild, place, ok) in cases {
            assert_eq!(place_refusal(allowed, *guild, *place).is_none(), *ok, "{allowed:?} {guild:?} {place:?}");
        }
    }
}
