//! One typed message for everything the bot sends to Discord: interaction answers, edits of
//! `@original`, follow-ups, channel posts and alerts.
//!
//! Discord's rules live here and nowhere else, so a message is never refused with a 400:
//! - `allowed_mentions` is empty unless a user or role is named with [`Message::mention_user`] or
//!   [`Message::mention_role`], and then names exactly those;
//! - the ephemeral flag is set by [`Message::ephemeral`], never by a literal;
//! - limits are kept by visible truncation (`…`): 2000 characters of content, 256 of a title,
//!   4096 of a description, 25 fields of 256/1024, 2048 of a footer, 6000 per message over all
//!   embeds, 10 embeds, 5 rows of 5 components, 80 of a button label, 100 of a custom id;
//! - URLs that are not `http(s)` are dropped; empty field names or values get a placeholder.

use serde_json::{Map, Value, json};

/// Discord's message flag for "only the caller sees this".
pub const EPHEMERAL: u64 = 1 << 6;

pub const MAX_CONTENT: usize = 2000;
pub const MAX_TITLE: usize = 256;
pub const MAX_DESCRIPTION: usize = 4096;
pub const MAX_FIELDS: usize = 25;
pub const MAX_FIELD_NAME: usize = 256;
pub const MAX_FIELD_VALUE: usize = 1024;
pub const MAX_FOOTER: usize = 2048;
pub const MAX_EMBED_TOTAL: usize = 6000;
pub const MAX_EMBEDS: usize = 10;
pub const MAX_ROWS: usize = 5;
pub const MAX_PER_ROW: usize = 5;
pub const MAX_LABEL: usize = 80;
pub const MAX_CUSTOM_ID: usize = 100;
pub const MAX_SELECT_OPTIONS: usize = 25;
pub const MAX_CHOICES: usize = 25;
/// What an empty field name or value becomes: Discord refuses empty ones.
pub const PLACEHOLDER: &str = "—";

/// Cuts `s` to at most `max` characters, marking a cut with "…".
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `Some(url)` when Discord will accept it as a link: `http` or `https` with a host.
pub fn link(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    (matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some_and(|h| !h.is_empty()))
        .then(|| parsed.to_string())
}

fn non_empty(s: &str, max: usize) -> String {
    if s.trim().is_empty() { PLACEHOLDER.to_string() } else { truncate(s, max) }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
    pub inline: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Embed {
    pub title: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
    pub colour: Option<u32>,
    pub fields: Vec<Field>,
    pub footer: Option<String>,
    /// RFC 3339.
    pub timestamp: Option<String>,
}

impl Embed {
    pub fn new(title: impl Into<String>) -> Self {
        Self { title: Some(title.into()), ..Self::default() }
    }

    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }

    pub fn url(mut self, u: impl Into<String>) -> Self {
        self.url = Some(u.into());
        self
    }

    pub fn colour(mut self, c: u32) -> Self {
        self.colour = Some(c);
        self
    }

    pub fn field(mut self, name: impl Into<String>, value: impl Into<String>, inline: bool) -> Self {
        self.fields.push(Field { name: name.into(), value: value.into(), inline });
        self
    }

    pub fn footer(mut self, f: impl Into<String>) -> Self {
        self.footer = Some(f.into());
        self
    }

    pub fn timestamp(mut self, t: impl Into<String>) -> Self {
        self.timestamp = Some(t.into());
        self
    }

    /// The embed within Discord's limits, and how many characters it counts towards the 6000 a
    /// message may hold; `budget` is what is left of those.
    fn to_json(&self, budget: usize) -> (Value, usize) {
        let mut left = Budget(budget);
        let mut e = Map::new();
        if let Some(t) = &self.title {
            e.insert("title".into(), json!(left.take(&non_empty(t, MAX_TITLE), MAX_TITLE)));
        }
        if let Some(d) = self.description.as_deref().filter(|d| !d.trim().is_empty()) {
            e.insert("description".into(), json!(left.take(d, MAX_DESCRIPTION)));
        }
        if let Some(u) = self.url.as_deref().and_then(link) {
            e.insert("url".into(), json!(u));
        }
        if let Some(c) = self.colour {
            e.insert("color".into(), json!(c & 0xFF_FF_FF));
        }
        if let Some(f) = self.footer.as_deref().filter(|f| !f.trim().is_empty()) {
            e.insert("footer".into(), json!({"text": left.take(f, MAX_FOOTER)}));
        }
        let mut fields = Vec::new();
        for f in self.fields.iter().take(MAX_FIELDS) {
            // A field needs at least a character for its name and one for its value.
            if left.0 < 2 {
                break;
            }
            let name = left.take(&non_empty(&f.name, MAX_FIELD_NAME), MAX_FIELD_NAME.min(left.0 - 1));
            let value = left.take(&non_empty(&f.value, MAX_FIELD_VALUE), MAX_FIELD_VALUE);
            fields.push(json!({"name": name, "value": value, "inline": f.inline}));
        }
        if !fields.is_empty() {
            e.insert("fields".into(), Value::Array(fields));
        }
        if let Some(t) = &self.timestamp {
            e.insert("timestamp".into(), json!(t));
        }
        (Value::Object(e), budget - left.0)
    }
}

/// What is left of the 6000 characters a message's embeds may hold.
struct Budget(usize);

impl Budget {
    /// `s` cut to `max` and to what is left (at least one character), then counted.
    fn take(&mut self, s: &str, max: usize) -> String {
        let t = truncate(s, max.min(self.0).max(1));
        self.0 = self.0.saturating_sub(t.chars().count());
        t
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonStyle {
    Primary = 1,
    Secondary = 2,
    Success = 3,
    Danger = 4,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Component {
    Button {
        label: String,
        style: ButtonStyle,
        custom_id: String,
        disabled: bool,
    },
    Link {
        label: String,
        url: String,
    },
    /// A string select: (label, value) options.
    Select {
        custom_id: String,
        placeholder: String,
        options: Vec<(String, String)>,
    },
}

impl Component {
    pub fn button(label: impl Into<String>, style: ButtonStyle, custom_id: impl Into<String>) -> Self {
        Self::Button { label: label.into(), style, custom_id: custom_id.into(), disabled: false }
    }

    pub fn link(label: impl Into<String>, url: impl Into<String>) -> Self {
        Self::Link { label: label.into(), url: url.into() }
    }

    /// `None` for a component Discord would refuse (a link that is not http(s), an over-long id).
    fn to_json(&self) -> Option<Value> {
        match self {
            Self::Button { label, style, custom_id, disabled } => {
                (custom_id.len() <= MAX_CUSTOM_ID && !custom_id.is_empty()).then(|| {
                    json!({"type": 2, "label": non_empty(label, MAX_LABEL), "style": *style as u8,
                           "custom_id": custom_id, "disabled": disabled})
                })
            }
            Self::Link { label, url } => {
                link(url).map(|u| json!({"type": 2, "style": 5, "label": non_empty(label, MAX_LABEL), "url": u}))
            }
            Self::Select { custom_id, placeholder, options } => {
                (custom_id.len() <= MAX_CUSTOM_ID && !custom_id.is_empty() && !options.is_empty()).then(|| {
                    let options: Vec<Value> = options
                        .iter()
                        .take(MAX_SELECT_OPTIONS)
                        .map(|(l, v)| json!({"label": non_empty(l, 100), "value": truncate(v, 100)}))
                        .collect();
                    json!({"type": 3, "custom_id": custom_id, "placeholder": truncate(placeholder, 150), "options": options})
                })
            }
        }
    }
}

/// Who a message may ping: nobody unless named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mentions {
    pub users: Vec<u64>,
    pub roles: Vec<u64>,
}

impl Mentions {
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("parse".into(), json!([]));
        if !self.users.is_empty() {
            m.insert("users".into(), json!(self.users.iter().map(u64::to_string).collect::<Vec<_>>()));
        }
        if !self.roles.is_empty() {
            m.insert("roles".into(), json!(self.roles.iter().map(u64::to_string).collect::<Vec<_>>()));
        }
        Value::Object(m)
    }
}

/// A message the bot sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub content: Option<String>,
    pub embeds: Vec<Embed>,
    pub rows: Vec<Vec<Component>>,
    pub ephemeral: bool,
    pub mentions: Mentions,
    /// Sends `"components": []` even with no rows, so an edit removes the buttons.
    pub clear_components: bool,
    /// Sends `"embeds": []` even with none, so an edit removes the embeds.
    pub clear_embeds: bool,
}

impl Message {
    pub fn text(content: impl Into<String>) -> Self {
        Self { content: Some(content.into()), ..Self::default() }
    }

    pub fn embed_only(embed: Embed) -> Self {
        Self { embeds: vec![embed], ..Self::default() }
    }

    /// A short error for the caller only, with the trace id to quote.
    pub fn error(text: &str, trace_id: &str) -> Self {
        Self::text(format!("⚠️ {text}\n-# trace `{trace_id}`")).ephemeral()
    }

    pub fn ephemeral(mut self) -> Self {
        self.ephemeral = true;
        self
    }

    pub fn with_embed(mut self, embed: Embed) -> Self {
        self.embeds.push(embed);
        self
    }

    pub fn with_row(mut self, row: Vec<Component>) -> Self {
        self.rows.push(row);
        self
    }

    /// Replaces what the message had: an edit with this removes embeds and buttons not given.
    pub fn replacing(mut self) -> Self {
        self.clear_components = true;
        self.clear_embeds = true;
        self
    }

    /// Allows a ping of this user; the caller writes `<@id>` in the content.
    pub fn mention_user(mut self, id: u64) -> Self {
        if !self.mentions.users.contains(&id) {
            self.mentions.users.push(id);
        }
        self
    }

    pub fn mention_role(mut self, id: u64) -> Self {
        if !self.mentions.roles.contains(&id) {
            self.mentions.roles.push(id);
        }
        self
    }

    /// The message body Discord takes for posts, edits and follow-ups, within its limits.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(c) = &self.content {
            m.insert("content".into(), json!(truncate(c, MAX_CONTENT)));
        }
        let mut left = MAX_EMBED_TOTAL;
        let embeds: Vec<Value> = self
            .embeds
            .iter()
            .take(MAX_EMBEDS)
            .filter_map(|e| {
                if left == 0 {
                    return None;
                }
                let (json, used) = e.to_json(left);
                left = left.saturating_sub(used);
                Some(json)
            })
            .collect();
        if !embeds.is_empty() || self.clear_embeds {
            m.insert("embeds".into(), Value::Array(embeds));
        }
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|row| row.iter().filter_map(Component::to_json).take(MAX_PER_ROW).collect::<Vec<_>>())
            .filter(|row| !row.is_empty())
            .take(MAX_ROWS)
            .map(|components| json!({"type": 1, "components": components}))
            .collect();
        if !rows.is_empty() || self.clear_components {
            m.insert("components".into(), Value::Array(rows));
        }
        if self.ephemeral {
            m.insert("flags".into(), json!(EPHEMERAL));
        }
        m.insert("allowed_mentions".into(), self.mentions.to_json());
        Value::Object(m)
    }
}

/// An answer to an interaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Pong,
    /// A message (type 4).
    Message(Message),
    /// "Thinking…" (type 5); a job edits the message later.
    Deferred {
        ephemeral: bool,
    },
    /// Replaces the message a button sits on (type 7).
    Update(Message),
    /// Acknowledges a button press without changing anything yet (type 6).
    DeferredUpdate,
    /// Autocomplete choices (type 8): (name, value).
    Choices(Vec<(String, String)>),
    /// A form (type 9).
    Modal(Modal),
}

/// A form of text inputs, opened in answer to a button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modal {
    pub custom_id: String,
    pub title: String,
    pub inputs: Vec<TextInput>,
}

/// One text input of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextInput {
    pub custom_id: String,
    pub label: String,
    /// Several lines (a paragraph) rather than one.
    pub paragraph: bool,
    pub required: bool,
    pub max_length: u32,
    pub placeholder: Option<String>,
}

impl Modal {
    fn to_json(&self) -> Value {
        let rows: Vec<Value> = self
            .inputs
            .iter()
            .take(MAX_ROWS)
            .map(|i| {
                let mut input = json!({
                    "type": 4, "custom_id": truncate(&i.custom_id, MAX_CUSTOM_ID), "label": non_empty(&i.label, 45),
                    "style": if i.paragraph { 2 } else { 1 }, "required": i.required,
                    "max_length": i.max_length.min(4000),
                });
                if let (Some(p), Some(o)) = (&i.placeholder, input.as_object_mut()) {
                    o.insert("placeholder".into(), json!(truncate(p, 100)));
                }
                json!({"type": 1, "components": [input]})
            })
            .collect();
        json!({"custom_id": truncate(&self.custom_id, MAX_CUSTOM_ID), "title": non_empty(&self.title, 45), "components": rows})
    }
}

impl Reply {
    /// The interaction response type Discord expects.
    pub fn kind(&self) -> u64 {
        match self {
            Self::Pong => 1,
            Self::Message(_) => 4,
            Self::Deferred { .. } => 5,
            Self::DeferredUpdate => 6,
            Self::Update(_) => 7,
            Self::Choices(_) => 8,
            Self::Modal(_) => 9,
        }
    }

    /// The message it carries, if any.
    pub fn message(&self) -> Option<&Message> {
        match self {
            Self::Message(m) | Self::Update(m) => Some(m),
            _ => None,
        }
    }

    pub fn to_json(&self) -> Value {
        let kind = self.kind();
        match self {
            Self::Pong | Self::DeferredUpdate => json!({"type": kind}),
            Self::Message(m) | Self::Update(m) => json!({"type": kind, "data": m.to_json()}),
            Self::Deferred { ephemeral: true } => json!({"type": kind, "data": {"flags": EPHEMERAL}}),
            Self::Deferred { ephemeral: false } => json!({"type": kind}),
            Self::Choices(choices) => {
                let list: Vec<Value> = choices
                    .iter()
                    .take(MAX_CHOICES)
                    .map(|(name, value)| json!({"name": non_empty(name, 100), "value": truncate(value, 100)}))
                    .collect();
                json!({"type": kind, "data": {"choices": list}})
            }
            Self::Modal(m) => json!({"type": kind, "data": m.to_json()}),
        }
    }
}

/// What in a message body (as sent to Discord: a message, an edit, or an interaction response
/// with its `data`) breaks Discord's rules: lengths, counts, empty fields, links that are not
/// http(s), duplicate button ids. Empty when Discord would take it. The typed builders above keep
/// to these by construction; tests hold every outgoing body to them.
pub fn violations(body: &Value) -> Vec<String> {
    let body = if body.get("type").is_some() && body.get("data").is_some() { &body["data"] } else { body };
    let mut out = Vec::new();
    let len = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    let check = |out: &mut Vec<String>, what: String, v: &Value, max: usize, required: bool| {
        let n = len(v);
        if n > max {
            out.push(format!("{what} has {n} characters (at most {max})"));
        }
        if required && v.as_str().is_none_or(|s| s.trim().is_empty()) {
            out.push(format!("{what} is empty"));
        }
    };
    check(&mut out, "content".into(), &body["content"], MAX_CONTENT, false);
    let embeds = body["embeds"].as_array().map_or(&[][..], Vec::as_slice);
    let mut total = 0;
    for (i, e) in embeds.iter().enumerate() {
        check(&mut out, format!("embed {i} title"), &e["title"], MAX_TITLE, false);
        check(&mut out, format!("embed {i} description"), &e["description"], MAX_DESCRIPTION, false);
        let footer = e.get("footer").and_then(|f| f.get("text")).unwrap_or(&Value::Null);
        check(&mut out, format!("embed {i} footer"), footer, MAX_FOOTER, false);
        total += len(&e["title"]) + len(&e["description"]) + len(footer);
        let fields = e["fields"].as_array().map_or(&[][..], Vec::as_slice);
        for (j, f) in fields.iter().enumerate() {
            check(&mut out, format!("embed {i} field {j} name"), &f["name"], MAX_FIELD_NAME, true);
            check(&mut out, format!("embed {i} field {j} value"), &f["value"], MAX_FIELD_VALUE, true);
            total += len(&f["name"]) + len(&f["value"]);
        }
        if fields.len() > MAX_FIELDS {
            out.push(format!("embed {i} has {} fields (at most {MAX_FIELDS})", fields.len()));
        }
        if let Some(u) = e.get("url")
            && u.as_str().and_then(link).is_none()
        {
            out.push(format!("embed {i} url {u} is not an http(s) link"));
        }
    }
    if embeds.len() > MAX_EMBEDS {
        out.push(format!("{} embeds (at most {MAX_EMBEDS})", embeds.len()));
    }
    if total > MAX_EMBED_TOTAL {
        out.push(format!("the embeds hold {total} characters (at most {MAX_EMBED_TOTAL})"));
    }
    let rows = body["components"].as_array().map_or(&[][..], Vec::as_slice);
    if rows.len() > MAX_ROWS {
        out.push(format!("{} rows of components (at most {MAX_ROWS})", rows.len()));
    }
    let mut ids = std::collections::HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        let items = row["components"].as_array().map_or(&[][..], Vec::as_slice);
        if items.is_empty() || items.len() > MAX_PER_ROW {
            out.push(format!("row {i} has {} components (1 to {MAX_PER_ROW})", items.len()));
        }
        for (j, c) in items.iter().enumerate() {
            if len(&c["label"]) > MAX_LABEL {
                out.push(format!("row {i} component {j} label is longer than {MAX_LABEL}"));
            }
            match c["custom_id"].as_str() {
                Some(id) if id.is_empty() || id.chars().count() > MAX_CUSTOM_ID => {
                    out.push(format!("row {i} component {j} custom_id has {} characters", id.chars().count()))
                }
                Some(id) if !ids.insert(id.to_string()) => out.push(format!("custom_id {id} is used twice")),
                Some(_) => {}
                None if c["url"].as_str().and_then(link).is_none() => {
                    out.push(format!("row {i} component {j} has neither a custom_id nor an http(s) url"))
                }
                None => {}
            }
            if c["options"].as_array().is_some_and(|o| o.len() > MAX_SELECT_OPTIONS) {
                out.push(format!("row {i} component {j} has more than {MAX_SELECT_OPTIONS} options"));
            }
        }
    }
    out
}

/// The `nonce` of a message create that asks Discord to enforce it (`"enforce_nonce": true`): a
/// string or an integer, as Discord takes it. What the fake Discords dedupe posts by.
pub fn enforced_nonce(body: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    if body.get("enforce_nonce").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    match body.get("nonce")? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(v: &Value) -> usize {
        v.as_str().map_or(0, |s| s.chars().count())
    }

    #[test]
    fn nobody_is_pinged_unless_named() {
        let m = Message::text("hi <@1> @everyone").to_json();
        assert_eq!(m["allowed_mentions"], json!({"parse": []}));
        let m = Message::text("<@7> <@&9>").mention_user(7).mention_user(7).mention_role(9).to_json();
        assert_eq!(m["allowed_mentions"], json!({"parse": [], "users": ["7"], "roles": ["9"]}));
    }

    #[test]
    fn ephemeral_sets_the_flag_and_errors_carry_the_trace() {
        let m = Message::error("GitHub is down", "t-1");
        let j = Reply::Message(m).to_json();
        assert_eq!(j["type"], 4);
        assert_eq!(j["data"]["flags"], EPHEMERAL);
        assert!(j["data"]["content"].as_str().unwrap().contains("t-1"));
        assert!(Message::text("x").to_json().get("flags").is_none());
        assert_eq!(Reply::Deferred { ephemeral: true }.to_json(), json!({"type": 5, "data": {"flags": 64}}));
        assert_eq!(Reply::Deferred { ephemeral: false }.to_json(), json!({"type": 5}));
        assert_eq!(Reply::Pong.to_json(), json!({"type": 1}));
    }

    #[test]
    fn limits_are_kept_by_visible_truncation() {
        let long = "x".repeat(10_000);
        let mut embed = Embed::new(&long).description(&long).footer(&long);
        for _ in 0..40 {
            embed = embed.field(&long, &long, false);
        }
        let m = Message::text(&long).with_embed(embed.clone()).with_embed(embed.clone());
        let m = (0..12).fold(m, |m, _| m.with_embed(embed.clone()));
        let j = m.to_json();
        assert_eq!(chars(&j["content"]), MAX_CONTENT);
        assert!(j["content"].as_str().unwrap().ends_with('…'));
        let embeds = j["embeds"].as_array().unwrap();
        assert!(embeds.len() <= MAX_EMBEDS);
        let mut total = 0;
        for e in embeds {
            assert!(chars(&e["title"]) <= MAX_TITLE);
            assert!(chars(&e["description"]) <= MAX_DESCRIPTION);
            total += chars(&e["title"]) + chars(&e["description"]) + chars(&e["footer"]["text"]);
            for f in e["fields"].as_array().into_iter().flatten() {
                assert!(chars(&f["name"]) <= MAX_FIELD_NAME && chars(&f["value"]) <= MAX_FIELD_VALUE);
                assert!(chars(&f["name"]) > 0 && chars(&f["value"]) > 0);
                total += chars(&f["name"]) + chars(&f["value"]);
            }
            assert!(e["fields"].as_array().map_or(0, Vec::len) <= MAX_FIELDS);
        }
        assert!(total <= MAX_EMBED_TOTAL, "{total}");
    }

    #[test]
    fn odd_values_are_made_acceptable() {
        let e = Embed::new("").url("not a url").field("", "", true).field("Branch", "  ", true);
        let j = Message::embed_only(e).to_json();
        let e = &j["embeds"][0];
        assert!(e.get("url").is_none());
        assert_eq!(e["title"], PLACEHOLDER);
        assert_eq!(e["fields"][0]["name"], PLACEHOLDER);
        assert_eq!(e["fields"][1]["value"], PLACEHOLDER);
        for bad in ["javascript:alert(1)", "ftp://x", "", "https://"] {
            assert!(link(bad).is_none(), "{bad}");
        }
        assert_eq!(link("https://github.com/a/b").as_deref(), Some("https://github.com/a/b"));
    }

    #[test]
    fn components_keep_to_rows_of_five_and_drop_what_discord_refuses() {
        let row: Vec<Component> =
            (0..8).map(|i| Component::button(format!("b{i}"), ButtonStyle::Primary, format!("id{i}"))).collect();
        let mut m = Message::text("x");
        for _ in 0..7 {
            m = m.with_row(row.clone());
        }
        m = m.with_row(vec![
            Component::link("bad", "javascript:x"),
            Component::button("long", ButtonStyle::Danger, "x".repeat(101)),
        ]);
        let j = m.to_json();
        let rows = j["components"].as_array().unwrap();
        assert_eq!(rows.len(), MAX_ROWS);
        assert!(rows.iter().all(|r| r["components"].as_array().unwrap().len() == MAX_PER_ROW));
        // An edit that removes buttons says so explicitly.
        assert_eq!(Message::text("done").replacing().to_json()["components"], json!([]));
        assert!(Message::text("x").to_json().get("components").is_none());
    }

    #[test]
    fn violations_name_what_discord_would_refuse() {
        assert!(violations(&Message::text("fine").to_json()).is_empty());
        let bad = json!({
            "content": "x".repeat(2001),
            "embeds": [{"title": "t", "url": "not a url", "fields": [{"name": "", "value": "v"}]}],
            "components": [{"type": 1, "components": [
                {"type": 2, "label": "a", "custom_id": "same"}, {"type": 2, "label": "b", "custom_id": "same"},
                {"type": 2, "label": "c", "style": 5, "url": "javascript:x"}
            ]}]
        });
        let found = violations(&json!({"type": 4, "data": bad}));
        assert_eq!(found.len(), 5, "{found:?}");
        for want in ["content has 2001", "url \"not a url\"", "field 0 name is empty", "used twice", "neither"] {
            assert!(found.iter().any(|v| v.contains(want)), "{want}: {found:?}");
        }
    }

    #[test]
    fn choices_are_capped() {
        let many: Vec<(String, String)> = (0..40).map(|i| (format!("n{i}"), format!("v{i}"))).collect();
        assert_eq!(Reply::Choices(many).to_json()["data"]["choices"].as_array().unwrap().len(), MAX_CHOICES);
        assert_eq!(Reply::Choices(vec![]).to_json(), json!({"type": 8, "data": {"choices": []}}));
    }
}
