//! A lenient view of an incoming interaction: only what the bot reads.
//!
//! Discord adds and omits fields over time (user-installed apps, DMs, older clients), so nothing
//! the bot does not read can stop a command. Snowflakes are read from strings or numbers. Only the
//! envelope is required: a JSON object with a known `type`; everything else has a fallback, and
//! a command that lacks an option it needs says so in its answer.

use serde_json::Value;

/// The kinds of interaction Discord sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ping,
    Command,
    Component,
    Autocomplete,
    Modal,
}

impl Kind {
    fn from_type(t: u64) -> Option<Self> {
        Some(match t {
            1 => Self::Ping,
            2 => Self::Command,
            3 => Self::Component,
            4 => Self::Autocomplete,
            5 => Self::Modal,
            _ => return None,
        })
    }
}

/// Why a body is not an interaction (answered 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    #[error("body is not a JSON object")]
    NotAnObject,
    #[error("unknown interaction type")]
    UnknownType,
}

/// Where an interaction came from (`context` in Discord's model).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Guild,
    BotDm,
    PrivateChannel,
    Unknown,
}

/// One option as sent: its value is kept raw and read through the typed getters of [`Options`].
#[derive(Debug, Clone, PartialEq)]
pub struct OptionValue {
    pub name: String,
    pub value: Value,
    pub focused: bool,
}

/// A command's options. A sub-command's options are flattened; the sub-command itself is kept
/// as an option with an empty name (no option can have one), read by [`Options::subcommand`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options(pub Vec<OptionValue>);

impl Options {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|o| o.name == name).map(|o| &o.value)
    }

    /// The sub-command invoked (`link` of `/known link …`).
    pub fn subcommand(&self) -> Option<&str> {
        self.str("")
    }

    /// A non-blank string, trimmed.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        let v = self.get(name)?;
        v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
    }

    pub fn bool(&self, name: &str) -> Option<bool> {
        self.get(name).and_then(Value::as_bool)
    }

    /// A user, channel, role or mentionable option: a snowflake.
    pub fn id(&self, name: &str) -> Option<u64> {
        self.get(name).and_then(snowflake)
    }

    /// The option being typed into, for autocomplete: (name, text so far).
    pub fn focused(&self) -> Option<(&str, String)> {
        self.0.iter().find(|o| o.focused).map(|o| {
            let typed = match &o.value {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (o.name.as_str(), typed)
        })
    }
}

/// What the interaction carries in `data`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Data {
    /// The command's name (commands and autocomplete).
    pub name: String,
    pub options: Options,
    /// Components and modals.
    pub custom_id: String,
    /// Selected values of a select menu.
    pub values: Vec<String>,
    /// A modal's text inputs: (custom_id, value).
    pub fields: Vec<(String, String)>,
}

/// Who sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub id: u64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    pub id: u64,
    pub kind: Kind,
    pub token: String,
    pub application_id: u64,
    pub guild_id: Option<u64>,
    pub channel_id: Option<u64>,
    pub user: User,
    /// The member's roles; `None` outside a guild (a DM has no roles).
    pub roles: Option<Vec<u64>>,
    pub context: Context,
    pub locale: Option<String>,
    pub data: Data,
}

/// A snowflake, from a string (as Discord sends them) or a number.
pub(crate) fn snowflake(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
    .filter(|id| *id > 0)
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn options(v: &Value) -> Options {
    let mut out = Vec::new();
    fn walk(list: &Value, out: &mut Vec<OptionValue>) {
        for o in list.as_array().into_iter().flatten() {
            // Sub-commands and groups (types 1 and 2) carry options of their own.
            if o["type"].as_u64() == Some(1) {
                out.push(OptionValue { name: String::new(), value: o["name"].clone(), focused: false });
            }
            if let Some(nested) = o.get("options").filter(|n| n.is_array()) {
                walk(nested, out);
            }
            if o.get("value").is_some() {
                out.push(OptionValue {
                    name: text(&o["name"]),
                    value: o["value"].clone(),
                    focused: o["focused"].as_bool().unwrap_or(false),
                });
            }
        }
    }
    walk(v, &mut out);
    Options(out)
}

fn modal_fields(v: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for row in v.as_array().into_iter().flatten() {
        // Rows of text inputs; newer layouts put a single component under `component`.
        let inner = row
            .get("components")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_else(|| row.get("component").map(|c| vec![c.clone()]).unwrap_or_else(|| vec![row.clone()]));
        for c in inner {
            if let Some(id) = c.get("custom_id").and_then(Value::as_str) {
                out.push((id.to_string(), text(c.get("value").unwrap_or(&Value::Null))));
            }
        }
    }
    out
}

impl Interaction {
    /// Reads the parts the bot uses. Only a non-object body or an unknown `type` is an error.
    pub fn parse(body: &[u8]) -> Result<Self, ViewError> {
        let v: Value = serde_json::from_slice(body).map_err(|_| ViewError::NotAnObject)?;
        if !v.is_object() {
            return Err(ViewError::NotAnObject);
        }
        // a field, `null` when absent (as `v[key]` reads it)
        let field = |key: &str| v.get(key).unwrap_or(&Value::Null);
        let kind = field("type").as_u64().and_then(Kind::from_type).ok_or(ViewError::UnknownType)?;
        // In a guild the caller is `member.user`; in a DM it is `user`.
        let member = v.get("member").filter(|m| m.is_object());
        let user_v = member.and_then(|m| m.get("user")).filter(|u| u.is_object()).or_else(|| v.get("user"));
        let user = user_v
            .map(|u| User {
                id: snowflake(&u["id"]).unwrap_or(0),
                name: u["username"].as_str().or_else(|| u["global_name"].as_str()).unwrap_or_default().to_string(),
            })
            .unwrap_or_default();
        let roles = member.map(|m| m["roles"].as_array().into_iter().flatten().filter_map(snowflake).collect());
        let guild_id = snowflake(field("guild_id"));
        let context = match field("context").as_u64() {
            Some(0) => Context::Guild,
            Some(1) => Context::BotDm,
            Some(2) => Context::PrivateChannel,
            // Older payloads have no `context`: a guild id says where it came from.
            _ if guild_id.is_some() => Context::Guild,
            _ if v.get("user").is_some_and(Value::is_object) => Context::BotDm,
            _ => Context::Unknown,
        };
        let d = field("data");
        let data = Data {
            name: text(&d["name"]),
            options: options(&d["options"]),
            custom_id: text(&d["custom_id"]),
            values: d["values"].as_array().into_iter().flatten().map(text).collect(),
            fields: modal_fields(&d["components"]),
        };
        Ok(Self {
            id: snowflake(field("id")).unwrap_or(0),
            kind,
            token: text(field("token")),
            application_id: snowflake(field("application_id")).unwrap_or(0),
            guild_id,
            channel_id: snowflake(field("channel_id")).or_else(|| snowflake(&field("channel")["id"])),
            user,
            roles,
            context,
            locale: field("locale").as_str().map(str::to_string),
            data,
        })
    }

    /// A DM with the bot (or a private channel), where there are no roles.
    pub fn is_dm(&self) -> bool {
        self.guild_id.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Interaction, ViewError> {
        Interaction::parse(v.to_string().as_bytes())
    }

    #[test]
    fn a_minimal_guild_command_reads_in_full() {
        let i = parse(json!({
            "id": "111", "type": 2, "token": "tok", "application_id": "222", "guild_id": "333",
            "channel_id": "444",
            "member": {"user": {"id": "555", "username": "ada"}, "roles": ["7", "8"]},
            "data": {"name": "status", "options": [{"name": "count", "type": 4, "value": 3}]}
        }))
        .unwrap();
        assert_eq!(
            (i.id, i.kind, i.application_id, i.guild_id, i.channel_id),
            (111, Kind::Command, 222, Some(333), Some(444))
        );
        assert_eq!(i.user, User { id: 555, name: "ada".into() });
        assert_eq!(i.roles, Some(vec![7, 8]));
        assert_eq!(i.context, Context::Guild);
        assert_eq!(i.data.name, "status");
        assert_eq!(i.data.options.int("count"), Some(3));
    }

    #[test]
    fn fields_the_bot_does_not_read_never_matter() {
        // No attachment_size_limit, entitlements, app_permissions, locale, version…
        let i = parse(json!({"type": 2, "data": {"name": "debug-last"}})).unwrap();
        assert_eq!(i.data.name, "debug-last");
        assert_eq!(i.user.id, 0);
        // …and unknown new ones are ignored.
        let i = parse(json!({"type": 2, "brand_new": {"x": [1]}, "user": {"id": 9, "username": "n"}, "context": 1,
                             "data": {"name": "status", "options": "not a list"}}))
        .unwrap();
        assert_eq!((i.user.id, i.context, i.roles.clone()), (9, Context::BotDm, None));
        assert!(i.data.options.0.is_empty());
        assert!(i.is_dm());
    }

    #[test]
    fn only_non_objects_and_unknown_types_are_refused() {
        assert_eq!(Interaction::parse(b"nope"), Err(ViewError::NotAnObject));
        assert_eq!(parse(json!([1])), Err(ViewError::NotAnObject));
        assert_eq!(parse(json!({"type": 9})), Err(ViewError::UnknownType));
        assert_eq!(parse(json!({})), Err(ViewError::UnknownType));
        assert_eq!(parse(json!({"type": 1})).unwrap().kind, Kind::Ping);
    }

    #[test]
    fn typed_option_getters() {
        let i = parse(json!({"type": 4, "data": {"name": "relay-send", "options": [
            {"name": "message", "value": "  hi  "}, {"name": "blank", "value": "  "},
            {"name": "confirm", "value": true}, {"name": "channel", "value": "1184576487578214464"},
            {"name": "n", "value": 4.0}, {"name": "workflow", "value": "ci", "focused": true}
        ]}}))
        .unwrap();
        let o = &i.data.options;
        assert_eq!(o.str("message"), Some("hi"));
        assert_eq!(o.str("blank"), None);
        assert_eq!(o.bool("confirm"), Some(true));
        assert_eq!(o.id("channel"), Some(1184576487578214464));
        assert_eq!(o.int("n"), Some(4));
        assert_eq!(o.focused(), Some(("workflow", "ci".to_string())));
        assert_eq!(o.int("message"), None);
    }

    #[test]
    fn components_and_modals() {
        let i = parse(json!({"type": 3, "data": {"custom_id": "v1:inc:mute:abc", "values": ["4h"]}})).unwrap();
        assert_eq!((i.data.custom_id.as_str(), i.data.values.clone()), ("v1:inc:mute:abc", vec!["4h".to_string()]));
        let i = parse(json!({"type": 5, "data": {"custom_id": "m", "components": [
            {"type": 1, "components": [{"type": 4, "custom_id": "reason", "value": "flaky"}]}]}}))
        .unwrap();
        assert_eq!(i.data.fields, vec![("reason".to_string(), "flaky".to_string())]);
    }
}
