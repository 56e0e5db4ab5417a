//! The commands, one module each: its `SPEC`, its typed `Args` and `parse`, and `run`, which
//! decides and acts through [`crate::ctx::Ctx`]. The registry (`crate::registry`) lists them.

pub(crate) mod at_rest;
pub(crate) mod confirm;
pub(crate) mod debug_last;
pub(crate) mod deploy;
pub mod diagnose;
pub(crate) mod incidents;
pub(crate) mod known;
pub(crate) mod lock;
pub(crate) mod relay;
pub(crate) mod secrets;
pub(crate) mod status;
pub(crate) mod subscribe;
pub(crate) mod verify_latest;

/// Kept for `valinectl register`: the registration JSON comes from the registry.
pub mod definitions {
    pub use crate::registry::{comparable, definitions};
}

use valine_domain::message::Reply;

use crate::interaction::Options;
use crate::services::Services;

/// Autocomplete answers from configuration only (no network call), within microseconds.
pub fn autocomplete(services: &Services, command: &str, options: &Options) -> Reply {
    let Some((option, typed)) = options.focused() else { return Reply::Choices(Vec::new()) };
    let choices = if option == "repo" {
        // `/flaky` and the status commands name one repository; subscriptions may name owner/*
        let concrete =
            command == status::SPEC.name || command == diagnose::SPEC.name || command == incidents::FLAKY.name;
        subscribe::complete_repo(services, &typed, concrete)
    } else if command == status::SPEC.name {
        status::complete(services, option, &typed)
    } else {
        Vec::new()
    };
    Reply::Choices(choices)
}
