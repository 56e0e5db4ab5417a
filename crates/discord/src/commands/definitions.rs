//! The slash commands as Discord registers them (`valinectl register` sends these).

use serde_json::{Value, json};

/// Option types of Discord's API.
const STRING: u8 = 3;
const INTEGER: u8 = 4;
const BOOLEAN: u8 = 5;
const USER: u8 = 6;
const CHANNEL: u8 = 7;

/// Every command, in the shape of `PUT /applications/{id}/commands`.
pub fn definitions() -> Value {
    json!([
        {
            "name": "status", "type": 1,
            "description": "Recent GitHub Actions runs, one line of history per workflow",
            "options": [
                {"name": "count", "type": INTEGER, "description": "Runs per workflow (1-10, default 5)", "required": false, "min_value": 1, "max_value": 10},
                {"name": "workflow", "type": STRING, "description": "Only this workflow (name or file)", "required": false, "autocomplete": true}
            ]
        },
        {
            "name": "diagnose", "type": 1,
            "description": "Dispatch the diagnose workflow and follow its progress here",
            "options": [
                {"name": "frontend_url", "type": STRING, "description": "Public https URL of the frontend to check", "required": false, "max_length": 2048},
                {"name": "api_base", "type": STRING, "description": "Public https base URL of the API to check", "required": false, "max_length": 2048}
            ]
        },
        {
            "name": "relay-send", "type": 1,
            "description": "Post a message as the bot (admins; audited)",
            "options": [
                {"name": "message", "type": STRING, "description": "The text to post (no one is pinged)", "required": true, "max_length": 2000},
                {"name": "channel", "type": CHANNEL, "description": "Where to post", "required": false, "channel_types": [0, 5, 10, 11, 12]},
                {"name": "channel_id", "type": STRING, "description": "Where to post, as an id (when the channel is not listed)", "required": false},
                {"name": "confirm", "type": BOOLEAN, "description": "Post now instead of showing a preview", "required": false},
                {"name": "ephemeral", "type": BOOLEAN, "description": "Keep the summary visible only to you (default true)", "required": false}
            ]
        },
        {
            "name": "relay-dm", "type": 1,
            "description": "Send a direct message as the bot (admins; audited)",
            "options": [
                {"name": "user", "type": USER, "description": "Who receives it", "required": true},
                {"name": "message", "type": STRING, "description": "The text to send", "required": true, "max_length": 2000},
                {"name": "confirm", "type": BOOLEAN, "description": "Send now instead of showing a preview", "required": false},
                {"name": "ephemeral", "type": BOOLEAN, "description": "Keep the summary visible only to you (default true)", "required": false}
            ]
        },
        {
            "name": "debug-last", "type": 1,
            "description": "Show the trace of your own last command",
            "options": []
        }
    ])
}

/// The part of a registered command that `register` compares: what a user sees and sends.
pub fn comparable(command: &Value) -> Value {
    let options: Vec<Value> = command["options"]
        .as_array()
        .map(|opts| {
            opts.iter()
                .map(|o| {
                    json!({
                        "name": o["name"], "type": o["type"], "description": o["description"],
                        "required": o["required"].as_bool().unwrap_or(false),
                        "autocomplete": o["autocomplete"].as_bool().unwrap_or(false),
                        "min_value": o["min_value"], "max_value": o["max_value"], "max_length": o["max_length"],
                        "channel_types": o["channel_types"],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({"name": command["name"], "description": command["description"], "options": options})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_commands_with_valid_names_and_limits() {
        let defs = definitions();
        let names: Vec<_> = defs.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
        assert_eq!(names, ["status", "diagnose", "relay-send", "relay-dm", "debug-last"]);
        for c in defs.as_array().unwrap() {
            assert!(c["description"].as_str().unwrap().len() <= 100);
            for o in c["options"].as_array().unwrap() {
                let name = o["name"].as_str().unwrap();
                assert!(name.len() <= 32 && name.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_' || ch == '-'));
                assert!(o["description"].as_str().unwrap().len() <= 100);
            }
            // required options come first, as Discord demands
            let required: Vec<bool> =
                c["options"].as_array().unwrap().iter().map(|o| o["required"].as_bool().unwrap()).collect();
            assert!(required.windows(2).all(|w| w[0] || !w[1]), "{}", c["name"]);
        }
    }

    #[test]
    fn comparison_ignores_what_discord_adds() {
        let mut registered = definitions()[0].clone();
        registered["id"] = json!("123");
        registered["version"] = json!("456");
        registered["application_id"] = json!("789");
        assert_eq!(comparable(&registered), comparable(&definitions()[0]));
    }
}
