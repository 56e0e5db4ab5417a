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
        let mut o = json!({"name": self.name, "type": self.kind as u8, "description": self.description,
                           "required": self.required});
        if let Some(m) = self.min {
            o["min_value"] = json!(m);
        }
        if let Some(m) = self.max {
            o["max_value"] = json!(m);
        }
        if let Some(m) = self.max_length {
            o["max_length"] = json!(m);
        }
        if self.autocomplete {
            o["autocomplete"] = json!(true);
        }
        if !self.channel_types.is_empty() {
            o["channel_types"] = json!(self.channel_types);
        }
        if !self.choices.is_empty() {
            o["choices"] = self.choices.iter().map(|(n, v)| json!({"name": n, "value": v})).collect();
        }
        o
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

#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub description: &'static str,
    pub options: &'static [OptSpec],
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
        let mut c = json!({
            "name": self.name, "type": 1, "description": self.description,
            "options": self.options.iter().map(|o| o.to_json()).collect::<Vec<_>>(),
            "contexts": contexts,
            "integration_types": [0],
        });
        if matches!(self.access, Access::Admins | Access::AdminsOr(_)) {
            c["default_member_permissions"] = json!(ADMINISTRATORS_ONLY);
        }
        c
    }

    /// `/status [count] [workflow]`: the usage line of the README's table.
    pub fn usage(&self) -> String {
        let mut u = self.slash();
        for o in self.options {
            if o.required {
                u.push_str(&format!(" {}", o.name));
            } else {
                u.push_str(&format!(" [{}]", o.name));
            }
        }
        u
    }

    /// One row of the README's command table.
    pub fn table_row(&self) -> String {
        let dm = if self.place == Where::GuildAndDm { " Also in a DM with the bot." } else { "" };
        format!("| `{}` | {} | {}{dm} |", self.usage(), self.access.describe(), self.summary)
    }
}
