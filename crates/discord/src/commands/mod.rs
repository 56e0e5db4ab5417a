//! The five commands, the relay buttons, and autocomplete.

pub mod debug_last;
pub mod definitions;
pub mod diagnose;
pub mod relay;
pub mod status;

use serde_json::Value;
use serenity::model::application::CommandInteraction;

use crate::app::App;
use crate::response;

/// Autocomplete answers from configuration only (no network call), within microseconds:
/// `/status workflow` offers `STATUS_WORKFLOWS` entries that start with (or contain) what was typed.
pub fn autocomplete(app: &App, ci: &CommandInteraction) -> Value {
    let Some(focused) = ci.data.autocomplete() else { return response::choices(&[]) };
    if ci.data.name != "status" || focused.name != "workflow" {
        return response::choices(&[]);
    }
    let typed = focused.value.to_ascii_lowercase();
    let mut matches: Vec<(String, String)> = app
        .config
        .status_workflows
        .iter()
        .filter(|w| w.to_ascii_lowercase().contains(&typed))
        .map(|w| (w.clone(), w.clone()))
        .collect();
    matches.sort_by_key(|(w, _)| !w.to_ascii_lowercase().starts_with(&typed));
    matches.truncate(25);
    response::choices(&matches)
}
