//! Interaction responses. Every message the bot sends carries `allowed_mentions` with nothing
//! in it, so no answer ever pings anyone.

use serde_json::{Value, json};

/// Discord's message flag for "only the caller sees this".
pub const EPHEMERAL: u64 = 1 << 6;

pub fn pong() -> Value {
    json!({"type": 1})
}

/// A message answer (type 4).
pub fn message(content: &str, ephemeral: bool) -> Value {
    json!({"type": 4, "data": data(Some(content), &[], &[], ephemeral)})
}

/// A message answer with embeds and components.
pub fn rich(content: Option<&str>, embeds: &[Value], components: &[Value], ephemeral: bool) -> Value {
    json!({"type": 4, "data": data(content, embeds, components, ephemeral)})
}

/// "Thinking…" (type 5); a job edits the message later.
pub fn deferred(ephemeral: bool) -> Value {
    if ephemeral { json!({"type": 5, "data": {"flags": EPHEMERAL}}) } else { json!({"type": 5}) }
}

/// Replaces the message a button sits on (type 7).
pub fn update(content: &str, embeds: &[Value]) -> Value {
    json!({"type": 7, "data": {"content": content, "embeds": embeds, "components": [], "allowed_mentions": {"parse": []}}})
}

/// Autocomplete choices (type 8).
pub fn choices(choices: &[(String, String)]) -> Value {
    let list: Vec<Value> = choices.iter().map(|(name, value)| json!({"name": name, "value": value})).collect();
    json!({"type": 8, "data": {"choices": list}})
}

/// A short, ephemeral error that carries the trace id; internals stay in the log.
pub fn error(text: &str, trace_id: &str) -> Value {
    message(&format!("⚠️ {text}\n-# trace `{trace_id}`"), true)
}

/// The body of a message: for answers, edits of `@original` and follow-ups alike.
pub fn data(content: Option<&str>, embeds: &[Value], components: &[Value], ephemeral: bool) -> Value {
    let mut d = json!({"allowed_mentions": {"parse": []}});
    if let Some(c) = content {
        d["content"] = json!(valine_domain::alert::truncate(c, 2000));
    }
    if !embeds.is_empty() {
        d["embeds"] = json!(embeds);
    }
    if !components.is_empty() {
        d["components"] = json!(components);
    }
    if ephemeral {
        d["flags"] = json!(EPHEMERAL);
    }
    d
}

/// A row of buttons: (label, custom_id, style) with style 1 primary, 2 secondary, 3 success, 4 danger.
pub fn buttons(buttons: &[(&str, String, u8)]) -> Value {
    let list: Vec<Value> = buttons
        .iter()
        .map(|(label, id, style)| json!({"type": 2, "label": label, "custom_id": id, "style": style}))
        .collect();
    json!({"type": 1, "components": list})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_never_ping_and_ephemeral_sets_the_flag() {
        let m = message("hi <@123> @everyone", true);
        assert_eq!(m["type"], 4);
        assert_eq!(m["data"]["flags"], EPHEMERAL);
        assert_eq!(m["data"]["allowed_mentions"], json!({"parse": []}));
        assert!(message("x", false)["data"].get("flags").is_none());
        assert_eq!(update("done", &[])["data"]["allowed_mentions"], json!({"parse": []}));
        assert_eq!(deferred(true), json!({"type": 5, "data": {"flags": 64}}));
        assert_eq!(deferred(false), json!({"type": 5}));
    }

    #[test]
    fn errors_carry_the_trace_id_and_long_text_is_cut() {
        let e = error("GitHub is down", "t-1");
        assert!(e["data"]["content"].as_str().unwrap().contains("t-1"));
        assert_eq!(e["data"]["flags"], EPHEMERAL);
        let long = message(&"x".repeat(5000), false);
        assert_eq!(long["data"]["content"].as_str().unwrap().chars().count(), 2000);
    }
}
