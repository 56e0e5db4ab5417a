//! Every command, defined once. From each command module's `SPEC` and `parse` come the typed
//! [`Command`], the router ([`Command::run`]), the span and metric names, the JSON that
//! `valinectl register` sends, and the README's command table. A command that asks before it acts
//! names its `confirm` handler (a press on its preview is routed there by [`confirmed`]); one
//! that defers names its `job` type (the [`Job`] events are read back into). Adding a command is
//! one module plus one line here.

use serde_json::{Value, json};
use valine_domain::message::Reply;
use valine_domain::trace::TraceRecorder;
use valine_store::PendingConfirmation;

use crate::commands::confirm::{self, Press};
use crate::commands::{
    debug_last, deploy, diagnose, incidents, known, lock, relay, secrets, status, subscribe, verify_latest,
};
use crate::ctx::Ctx;
use crate::deferred::Deferred;
use crate::interaction::Options;
use crate::jobs::{EVENT_KEY, JobContext};
use crate::services::Services;
use crate::spec::Spec;

macro_rules! registry {
    ($(
        $variant:ident($args:ty) => $module:ident :: $spec:ident, $parse:path, $run:path
        $(, confirm: $confirm:path)?
        $(, job: $job:ty)?
        ;
    )*) => {
        /// A command as the bot understands it, with typed options.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Command {
            $( $variant($args), )*
        }

        /// Every command's definition, in registration order.
        pub const SPECS: &[&Spec] = &[ $( &$module::$spec, )* ];

        impl Command {
            /// The typed command for a name and its options; `None` for a name the bot does not
            /// have.
            pub fn parse(name: &str, options: &Options) -> Option<Self> {
                $( if name == $module::$spec.name { return Some(Self::$variant($parse(options))); } )*
                None
            }

            pub fn spec(&self) -> &'static Spec {
                match self { $( Self::$variant(_) => &$module::$spec, )* }
            }

            /// Runs it: the one place a command meets its module.
            pub async fn run(self, ctx: &mut Ctx<'_>) -> Reply {
                match self { $( Self::$variant(args) => $run(ctx, args).await, )* }
            }
        }

        /// A Confirm or Cancel press on a preview, once its owner took the confirmation: the
        /// command that asked carries on.
        pub async fn confirmed(ctx: &mut Ctx<'_>, pending: PendingConfirmation, press: Press) -> Reply {
            $( $(
                if pending.command == $module::$spec.slash() {
                    return $confirm(ctx, pending, press).await;
                }
            )? )*
            tracing::warn!(command = %pending.command, "a confirmation of a command that asks for none");
            confirm::damaged("nothing was done")
        }

        /// A deferred job, read back from its event.
        #[derive(Debug)]
        pub enum Job {
            $( $( $variant($job), )? )*
        }

        impl Job {
            /// The job an event carries (`{"valine_job": {"kind": …, …}}`).
            pub fn from_event(event: Value) -> Result<Self, String> {
                let Some(body) = event.get(EVENT_KEY).cloned() else {
                    return Err(format!("not a job event: no `{EVENT_KEY}`"));
                };
                let kind = body.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
                $( $(
                    if kind == <$job as Deferred>::KIND {
                        return serde_json::from_value(body).map(Self::$variant).map_err(|e| format!("a {kind} job: {e}"));
                    }
                )? )*
                Err(format!("no job of kind `{kind}`"))
            }

            pub fn kind(&self) -> &'static str {
                match self { $( $( Self::$variant(_) => <$job as Deferred>::KIND, )? )* }
            }

            pub fn context(&self) -> &JobContext {
                match self { $( $( Self::$variant(j) => Deferred::context(j as &$job), )? )* }
            }

            pub fn context_mut(&mut self) -> &mut JobContext {
                match self { $( $( Self::$variant(j) => Deferred::context_mut(j as &mut $job), )? )* }
            }

            /// Runs it: the one place a job meets its command.
            pub async fn run(self, services: &Services, rec: &mut TraceRecorder) {
                match self { $( $( Self::$variant(j) => Deferred::run(j as $job, services, rec).await, )? )* }
            }
        }
    };
}

registry! {
    Status(status::Args) => status::SPEC, status::parse, status::run, job: status::StatusJob;
    Diagnose(diagnose::Args) => diagnose::SPEC, diagnose::parse, diagnose::run, job: diagnose::DiagnoseJob;
    RelaySend(relay::Args) => relay::SEND, relay::parse_send, relay::run, confirm: relay::confirmed;
    RelayDm(relay::Args) => relay::DM, relay::parse_dm, relay::run, confirm: relay::confirmed;
    DebugLast(debug_last::Args) => debug_last::SPEC, debug_last::parse, debug_last::run;
    Incidents(incidents::Args) => incidents::INCIDENTS, incidents::parse, incidents::run_incidents;
    Mutes(incidents::Args) => incidents::MUTES, incidents::parse, incidents::run_mutes;
    Flaky(incidents::Args) => incidents::FLAKY, incidents::parse, incidents::run_flaky;
    Known(known::Args) => known::SPEC, known::parse, known::run;
    Subscribe(subscribe::Args) => subscribe::SUBSCRIBE, subscribe::parse, subscribe::run_subscribe;
    Unsubscribe(subscribe::Args) => subscribe::UNSUBSCRIBE, subscribe::parse, subscribe::run_unsubscribe;
    Subscriptions(subscribe::Args) => subscribe::SUBSCRIPTIONS, subscribe::parse, subscribe::run_subscriptions;
    DeployClient(deploy::Args) => deploy::SPEC, deploy::parse, deploy::run, confirm: deploy::confirmed, job: deploy::DeployJob;
    Lock(lock::Args) => lock::LOCK, lock::parse, lock::run_lock;
    Unlock(lock::Args) => lock::UNLOCK, lock::parse, lock::run_unlock;
    SetFrontend(secrets::Args) => secrets::FRONTEND, secrets::parse, secrets::run, confirm: secrets::confirmed;
    SetApiBase(secrets::Args) => secrets::API_BASE, secrets::parse, secrets::run, confirm: secrets::confirmed;
    VerifyLatest(verify_latest::Args) => verify_latest::SPEC, verify_latest::parse, verify_latest::run, job: verify_latest::VerifyJob;
}

/// The spec of a command name, if the bot has it.
pub fn spec(name: &str) -> Option<&'static Spec> {
    SPECS.iter().copied().find(|s| s.name == name)
}

/// Every command, in the shape of `PUT /applications/{id}/commands`.
pub fn definitions() -> Value {
    Value::Array(SPECS.iter().map(|s| s.to_json()).collect())
}

/// The part of a registered command that `register` compares: what a user sees and sends, and
/// where the command may be used.
pub fn comparable(command: &Value) -> Value {
    json!({
        "name": command["name"], "description": command["description"], "options": comparable_options(&command["options"]),
        "contexts": command["contexts"], "integration_types": command["integration_types"],
        "default_member_permissions": command["default_member_permissions"],
    })
}

/// Options as `register` compares them (a sub-command's own options likewise).
fn comparable_options(options: &Value) -> Vec<Value> {
    options
        .as_array()
        .map(|opts| {
            opts.iter()
                .map(|o| {
                    json!({
                        "name": o["name"], "type": o["type"], "description": o["description"],
                        "required": o["required"].as_bool().unwrap_or(false),
                        "autocomplete": o["autocomplete"].as_bool().unwrap_or(false),
                        "min_value": o["min_value"], "max_value": o["max_value"], "max_length": o["max_length"],
                        "channel_types": o["channel_types"], "choices": o["choices"],
                        "options": comparable_options(&o["options"]),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The README's command table.
pub fn markdown_table() -> String {
    let mut t = String::from("| command | who | what |\n|---|---|---|\n");
    for s in SPECS {
        t.push_str(&s.table_row());
        t.push('\n');
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_options_and_limits_are_valid_for_discord() {
        let defs = definitions();
        let names: Vec<_> = defs.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
        assert_eq!(
            names,
            [
                "status",
                "diagnose",
                "relay-send",
                "relay-dm",
                "debug-last",
                "incidents",
                "mutes",
                "flaky",
                "known",
                "subscribe",
                "unsubscribe",
                "subscriptions",
                "deploy-client",
                "lock",
                "unlock",
                "set-frontend",
                "set-api-base",
                "verify-latest"
            ]
        );
        // A command's options, or each sub-command's: every list Discord checks.
        let mut lists: Vec<(String, Value)> = Vec::new();
        for c in defs.as_array().unwrap() {
            let d = c["description"].as_str().unwrap();
            assert!(!d.is_empty() && d.len() <= 100, "{d}");
            assert_eq!(c["integration_types"], json!([0]));
            let opts = c["options"].as_array().unwrap();
            if opts.iter().any(|o| o["type"] == 1) {
                assert!(opts.iter().all(|o| o["type"] == 1), "sub-commands and options do not mix: {}", c["name"]);
                for s in opts {
                    assert!(s["description"].as_str().unwrap().len() <= 100);
                    lists.push((format!("{} {}", c["name"], s["name"]), s["options"].clone()));
                }
            } else {
                lists.push((c["name"].to_string(), c["options"].clone()));
            }
        }
        for (name, options) in lists {
            let options = options.as_array().unwrap();
            assert!(options.len() <= 25);
            for o in options {
                let n = o["name"].as_str().unwrap();
                assert!(
                    !n.is_empty()
                        && n.len() <= 32
                        && n.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_' || ch == '-')
                );
                assert!(o["description"].as_str().unwrap().len() <= 100);
            }
            // Required options come first, as Discord demands.
            let required: Vec<bool> = options.iter().map(|o| o["required"].as_bool().unwrap()).collect();
            assert!(required.windows(2).all(|w| w[0] || !w[1]), "{name}");
        }
    }

    #[test]
    fn where_and_who_come_from_the_spec() {
        let defs = definitions();
        let by_name = |n: &str| defs.as_array().unwrap().iter().find(|c| c["name"] == n).unwrap().clone();
        assert_eq!(by_name("status")["contexts"], json!([0]));
        assert_eq!(by_name("debug-last")["contexts"], json!([0, 1]));
        assert_eq!(by_name("relay-send")["default_member_permissions"], "0");
        assert!(by_name("status").get("default_member_permissions").is_none());
    }

    #[test]
    fn comparison_ignores_what_discord_adds() {
        let mut registered = definitions()[0].clone();
        registered["id"] = json!("123");
        registered["version"] = json!("456");
        registered["application_id"] = json!("789");
        assert_eq!(comparable(&registered), comparable(&definitions()[0]));
    }

    #[test]
    fn every_command_parses_from_its_name() {
        for s in SPECS {
            let c = Command::parse(s.name, &Options::default()).unwrap();
            assert_eq!(c.spec().name, s.name);
        }
        assert!(Command::parse("nope", &Options::default()).is_none());
    }

    #[test]
    fn a_sub_commands_options_are_compared_too() {
        let wanted = spec("known").unwrap().to_json();
        assert_eq!(wanted["options"][0]["type"], 1);
        assert_eq!(wanted["options"][0]["options"][0]["name"], "signature");
        let mut registered = wanted.clone();
        registered["options"][0]["options"][1]["description"] = json!("an older text");
        assert_ne!(comparable(&registered), comparable(&wanted));
        // what Discord leaves out of a registered sub-command changes nothing
        let mut registered = wanted.clone();
        registered["options"][2]["options"] = Value::Null;
        assert_eq!(comparable(&registered), comparable(&wanted));
    }

    #[test]
    fn the_readme_table_is_the_registrys() {
        let readme = include_str!("../../../README.md");
        let table = markdown_table();
        assert!(readme.contains(&table), "README.md's command table is out of date; replace it with:\n\n{table}");
    }
}
