//! `valinectl register`: bulk-overwrites the slash commands (global, or one guild's), printing
//! the difference first; `--dry-run` stops after the difference.

use serde_json::Value;
use valine_clients::discord_api::HttpDiscord;
use valine_discord::commands::definitions::{comparable, definitions};
use valine_domain::config::{Config, Secret};

/// One line per command: `+` new, `~` changed, `-` removed, `=` unchanged.
pub fn diff(current: &Value, wanted: &Value) -> (Vec<String>, bool) {
    let empty = Vec::new();
    let current = current.as_array().unwrap_or(&empty);
    let wanted = wanted.as_array().unwrap_or(&empty);
    let mut lines = Vec::new();
    let mut changed = false;
    for w in wanted {
        let name = w["name"].as_str().unwrap_or("?");
        match current.iter().find(|c| c["name"] == w["name"]) {
            None => {
                lines.push(format!("+ /{name} (new)"));
                changed = true;
            }
            Some(c) if comparable(c) != comparable(w) => {
                lines.push(format!("~ /{name} (changed)"));
                changed = true;
            }
            Some(_) => lines.push(format!("= /{name}")),
        }
    }
    for c in current {
        if !wanted.iter().any(|w| w["name"] == c["name"]) {
            lines.push(format!("- /{} (removed)", c["name"].as_str().unwrap_or("?")));
            changed = true;
        }
    }
    (lines, changed)
}

/// The application the bot token belongs to (`GET /applications/@me`), for when
/// `DISCORD_APPLICATION_ID` is not set.
pub async fn application_id(config: &Config, token: &Secret) -> Result<u64, String> {
    let discord = crate::setup::Api::discord(config, token)?;
    let app = discord
        .call(reqwest::Method::GET, "/applications/@me", None)
        .await?
        .ok("read the Discord application of DISCORD_BOT_TOKEN (check the token, or set DISCORD_APPLICATION_ID)")?;
    app["id"]
        .as_str()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| "Discord answered GET /applications/@me without an application id".to_string())
}

pub async fn run(config: &Config, guild: Option<u64>, dry_run: bool) -> Result<(), String> {
    let token = config
        .discord_bot_token
        .as_ref()
        .ok_or("set DISCORD_BOT_TOKEN (the application's bot token) to register commands")?;
    let app = match config.discord_application_id {
        Some(app) => app,
        None => {
            let app = application_id(config, token).await?;
            eprintln!("Application {app} (the bot token's; DISCORD_APPLICATION_ID is not set)");
            app
        }
    };
    let client = HttpDiscord::new(token.expose(), config.discord_api_base.as_ref(), std::time::Duration::from_secs(15));
    let scope = guild.map_or_else(|| "global commands".to_string(), |g| format!("commands of guild {g}"));
    eprintln!("Reading the {scope} of application {app}…");
    let current = client.get_commands(app, guild).await.map_err(|e| e.to_string())?;
    let wanted = definitions();
    let (lines, changed) = diff(&current, &wanted);
    for line in &lines {
        println!("{line}");
    }
    if dry_run {
        println!("Dry run: nothing was changed.");
        return Ok(());
    }
    if !changed {
        println!("Nothing to change.");
        return Ok(());
    }
    eprintln!("Overwriting the {scope}…");
    let registered = client.put_commands(app, guild, &wanted).await.map_err(|e| e.to_string())?;
    println!("Registered {} commands.", registered.as_array().map_or(0, Vec::len));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_names_new_changed_removed_and_unchanged() {
        let wanted = definitions();
        let mut current = wanted.as_array().unwrap()[..3].to_vec();
        current[1]["description"] = json!("old text");
        current.push(json!({"name": "legacy", "description": "x", "options": []}));
        let (lines, changed) = diff(&Value::Array(current), &wanted);
        assert!(changed);
        assert_eq!(
            lines,
            [
                "= /status",
                "~ /diagnose (changed)",
                "= /relay-send",
                "+ /relay-dm (new)",
                "+ /debug-last (new)",
                "+ /incidents (new)",
                "+ /mutes (new)",
                "+ /subscribe (new)",
                "+ /unsubscribe (new)",
                "+ /subscriptions (new)",
                "+ /deploy-client (new)",
                "+ /set-frontend (new)",
                "+ /set-api-base (new)",
                "+ /verify-latest (new)",
                "- /legacy (removed)"
            ]
        );
        let (_, changed) = diff(&wanted, &wanted);
        assert!(!changed);
    }
}
