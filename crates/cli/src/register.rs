//! `valinectl register`: bulk-overwrites the slash commands (global, or one guild's), printing
//! the difference first; `--dry-run` stops after the difference.

use serde_json::Value;
use valine_clients::discord_api::HttpDiscord;
use valine_discord::commands::definitions::{comparable, definitions};
use valine_domain::config::{Config, Secret};

/// One line per command: `+` new, `~` changed, `-` removed, `=` unchanged.
pub(crate) fn diff(current: &Value, wanted: &Value) -> (Vec<String>, bool) {
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
pub(crate) async fn application_id(config: &Config, token: &Secret) -> Result<u64, String> {
    let discord = crate::setup::Api::discord(config, token)?;
    let app = discord
        .call(reqwest::Method::GET, "/applications/@me", None)
        .await?
        .ok("read the Discord application of DISCORD_BOT_TOKEN (check the token, or set DISCORD_APPLICATION_ID)")?;
    app.get("id")
        .and_then(serde_json::Value::as_str)
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| "Discord answered GET /applications/@me without an application id".to_string())
}

/// The commands Discord shows only to server administrators (registered with
/// `default_member_permissions` "0"), grouped by the role variables whose members the bot lets run
/// them: `(variables, commands)`.
pub(crate) fn admin_only(definitions: &Value) -> Vec<(Vec<&'static str>, Vec<String>)> {
    use valine_discord::spec::Access;
    let mut groups: Vec<(Vec<&'static str>, Vec<String>)> = Vec::new();
    for command in definitions.as_array().into_iter().flatten() {
        if command["default_member_permissions"] != "0" {
            continue;
        }
        let name = command["name"].as_str().unwrap_or("?");
        let roles = match valine_discord::registry::spec(name).map(|s| s.access) {
            Some(Access::AdminsOr(var)) => vec!["ADMIN_ROLE_IDS", var],
            _ => vec!["ADMIN_ROLE_IDS"],
        };
        match groups.iter_mut().find(|(r, _)| *r == roles) {
            Some((_, names)) => names.push(format!("/{name}")),
            None => groups.push((roles, vec![format!("/{name}")])),
        }
    }
    groups
}

/// What `setup` prints after registering: which commands only administrators see, and how to
/// show them to the roles the bot lets run them. `bot` is the application's name.
pub(crate) fn admin_visibility(definitions: &Value, bot: &str) -> Vec<String> {
    let groups = admin_only(definitions);
    if groups.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![
        "Discord shows these commands only to server administrators until the server lets a role use them:".to_string(),
    ];
    for (roles, names) in &groups {
        lines.push(format!("  {}: for the roles of {}", names.join(", "), roles.join(" and ")));
    }
    lines.push(format!(
        "To let those roles see and use them: Server Settings → Integrations → {bot} → each command above → \
         Add Roles or Members → the role (and save)."
    ));
    lines.push(
        "The bot still checks ADMIN_USER_IDS, ADMIN_ROLE_IDS and DEPLOY_ROLE_IDS itself: a role Discord shows a \
         command to but the bot's settings do not name is refused."
            .to_string(),
    );
    lines
}

pub(crate) async fn run(config: &Config, guild: Option<u64>, dry_run: bool) -> Result<(), String> {
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
                "+ /flaky (new)",
                "+ /known (new)",
                "+ /subscribe (new)",
                "+ /unsubscribe (new)",
                "+ /subscriptions (new)",
                "+ /deploy-client (new)",
                "+ /lock (new)",
                "+ /unlock (new)",
                "+ /set-frontend (new)",
                "+ /set-api-base (new)",
                "+ /verify-latest (new)",
                "- /legacy (removed)"
            ]
        );
        let (_, changed) = diff(&wanted, &wanted);
        assert!(!changed);
    }

    #[test]
    fn admin_only_commands_come_from_the_registry_with_their_role_variables() {
        let defs = definitions();
        let groups = admin_only(&defs);
        let listed: Vec<&String> = groups.iter().flat_map(|(_, names)| names).collect();
        for c in defs.as_array().unwrap() {
            let shown = listed.contains(&&format!("/{}", c["name"].as_str().unwrap()));
            assert_eq!(shown, c["default_member_permissions"] == "0", "{}", c["name"]);
        }
        assert!(
            groups.iter().any(|(roles, names)| roles == &["ADMIN_ROLE_IDS", "DEPLOY_ROLE_IDS"]
                && names == &["/deploy-client", "/lock", "/unlock"]),
            "{groups:?}"
        );
        assert!(
            groups
                .iter()
                .any(|(roles, names)| roles == &["ADMIN_ROLE_IDS"] && names.contains(&"/relay-send".to_string())),
            "{groups:?}"
        );
        let lines = admin_visibility(&defs, "Valine");
        assert!(lines[lines.len() - 2].contains("Server Settings → Integrations → Valine → each command"), "{lines:?}");
        assert!(admin_visibility(&json!([{"name": "status"}]), "Valine").is_empty());
    }
}
