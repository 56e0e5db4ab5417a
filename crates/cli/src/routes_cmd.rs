//! `valinectl routes check FILE` and `valinectl routes explain --event EVENT FILE.json`: a routes
//! file checked line by line, and, for one delivery, every route in force with whether it matched
//! and why not, the incident key per channel, and whether a message would be posted now.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;
use valine_domain::alert::post_gate;
use valine_domain::clock::now_secs;
use valine_domain::config::Config;
use valine_domain::incident::{self, Action, Incident, Policy};
use valine_domain::routing::{Route, RouteEvent, RouteTable, parse_routes_file_in};
use valine_github::events::{self, Decision};

/// `routes check`: the routes, one a line, or every error with its line.
pub(crate) fn check(path: &Path, config: &Config) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    match parse_routes_file_in(&text, &config.github_repos, &config.allowed_guild_ids) {
        Ok(routes) => {
            let mut out = format!("{}: {} route(s), valid\n", path.display(), routes.len());
            for r in &routes {
                out.push_str(&format!("  {}: {}\n", r.origin, r.describe()));
            }
            if config.github_repos.is_unset() {
                out.push_str("  note: GITHUB_REPOS (or GITHUB_REPO) is not set: the repositories were not bounded\n");
            }
            Ok(out)
        }
        Err(errors) => {
            let lines: Vec<String> =
                errors.iter().map(|e| format!("{}:{}: {}", path.display(), e.line, e.message)).collect();
            Err(format!("{} error(s)\n{}", errors.len(), lines.join("\n")))
        }
    }
}

/// What `explain` is given besides the delivery.
pub(crate) struct Inputs<'a> {
    pub config: &'a Config,
    pub subscriptions: Result<Vec<Route>, String>,
    pub file_routes: Vec<Route>,
    /// Stored incidents by id (what is open, muted).
    pub incidents: HashMap<String, Incident>,
    pub now: u64,
}

/// `routes explain`, deterministic: every route, whether it matched and why not; per channel the
/// incident key and whether a message would be posted now.
pub(crate) fn explain(inputs: &Inputs<'_>, event: &str, payload: &Value) -> String {
    let config = inputs.config;
    let mut out = String::new();
    let repository = events::repository(payload);
    let action = payload["action"].as_str().unwrap_or("");
    out.push_str(&format!("delivery: {event} {action} of {repository}\n"));
    if !config.github_repos.admits_delivery(&repository) {
        out.push_str(&format!(
            "ignored (202): repository {repository} is not in GITHUB_REPOS ({})\n",
            config.github_repos
        ));
        return out;
    }
    let subs = match &inputs.subscriptions {
        Ok(s) => s.clone(),
        Err(e) => {
            out.push_str(&format!("subscriptions: not read ({e})\n"));
            Vec::new()
        }
    };
    let table = RouteTable::build(config, subs, inputs.file_routes.clone());
    let run = if event == "workflow_run" { events::workflow_run_record(payload) } else { None };
    let environment = events::environment(payload);
    let route_event = match (event, &run) {
        ("workflow_run", Some(run)) => {
            out.push_str(&format!(
                "run: {} #{} on `{}`, {} {}\n",
                run.workflow_name,
                run.run_number,
                run.head_branch,
                run.status,
                run.conclusion.as_deref().unwrap_or("")
            ));
            RouteEvent::Run {
                repository: &run.repository,
                workflow: &run.workflow_name,
                branch: &run.head_branch,
                completed: action == "completed" || run.status == "completed",
            }
        }
        ("deployment_status", _) => {
            out.push_str(&format!("deployment: {environment}\n"));
            RouteEvent::Deployment { repository: &repository, environment: &environment }
        }
        _ => {
            out.push_str("ignored (202): not a workflow_run or deployment_status the bot routes\n");
            return out;
        }
    };
    out.push_str(match (table.implicit, inputs.subscriptions.is_ok()) {
        (true, true) => "routes: none subscribed, no ROUTES_FILE: the implicit route\n",
        (true, false) => "routes: no ROUTES_FILE; with no subscription either, the implicit route:\n",
        (false, true) => "routes:\n",
        (false, false) => "routes (ROUTES_FILE only; subscriptions unknown):\n",
    });
    for (i, (route, matched)) in table.explain(&route_event).into_iter().enumerate() {
        let verdict = match matched {
            Ok(()) => "MATCHED".to_string(),
            Err(miss) => format!("no ({}): {miss}", miss.field()),
        };
        out.push_str(&format!("  {}. [{}] {}\n     {verdict}\n", i + 1, route.origin, route.describe()));
    }
    let targets = table.targets(&route_event);
    if targets.is_empty() {
        out.push_str(&format!("ignored (202): {}; nothing would be written\n", table.why_not(&route_event)));
        return out;
    }
    let decision = match &run {
        Some(run) => events::decide_workflow_run(action, run, payload, &["*".to_string()], "explain"),
        None => events::decide_deployment_status(payload, "explain"),
    };
    let obs = match decision {
        Decision::Observe(obs) => obs,
        Decision::Nothing(reason) => {
            out.push_str(&format!("decision: nothing ({reason})\n"));
            for t in &targets {
                if t.all_runs && run.is_some() {
                    let channel = t.channel_id.map_or_else(|| "ALERT_CHANNEL_ID".into(), |c| format!("<#{c}>"));
                    out.push_str(&format!("  {channel}: a compact run line would be posted (all-runs)\n"));
                }
            }
            return out;
        }
    };
    out.push_str(&format!("decision: {:?}\n", obs.outcome).to_lowercase());
    let can_post = config.discord_bot_token.is_some() || config.dry_run;
    let policy = Policy { flap_count: config.alert_flap_count, flap_minutes: config.alert_flap_minutes };
    for t in &targets {
        let channel = t.channel_id.map_or_else(|| "ALERT_CHANNEL_ID (not set)".into(), |c| format!("<#{c}>"));
        let mut key = obs.key.clone();
        key.channel_id = t.channel_id.unwrap_or(0);
        out.push_str(&format!("  {channel}: incident {} ({})\n", key.id(), key.canonical().replace('\u{1f}', "|")));
        if let Err(reason) = post_gate(config.enable_alerts, t.channel_id, can_post) {
            out.push_str(&format!("     would post now: no: alerts off ({reason})\n"));
            continue;
        }
        let mut o = (*obs).clone();
        o.key = key.clone();
        let current = inputs.incidents.get(&key.id());
        let d = incident::decide(current, &o, inputs.now, policy);
        let now_what = match d.action {
            Action::Post => "yes: a new incident message".to_string(),
            Action::Edit => "no new message: the open incident's message is edited".to_string(),
            Action::Resolve => "yes: the incident is resolved (its message edited, one reply)".to_string(),
            Action::Muted => "no: muted".to_string(),
            Action::Nothing(why) => {
                if current.is_some_and(|c| c.open) {
                    format!("no: already open ({why})")
                } else {
                    format!("no: {why}")
                }
            }
            Action::Record => "no: recorded, nothing to post".to_string(),
        };
        out.push_str(&format!("     would post now: {now_what}\n"));
    }
    out
}

/// `routes explain` against the configured store and `ROUTES_FILE`.
pub(crate) async fn explain_now(config: &Config, event: &str, file: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let payload: Value = serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", file.display()))?;
    let file_routes = valine_service::routing::load_routes_file(config)?;
    let (subscriptions, incidents) = match crate::stage::lookup_stores(config).await {
        Ok(stores) => {
            let subs = stores
                .routes
                .list_subscriptions()
                .await
                .map(|s| valine_service::routing::subscription_routes(config, &s))
                .map_err(|e| e.to_string());
            let incidents = stores.incidents.list_incidents(valine_store::MAX_LIST).await.unwrap_or_default();
            (subs, incidents.into_iter().map(|i| (i.id.clone(), i)).collect())
        }
        Err(e) => (Err(format!("the store cannot be opened: {e}")), HashMap::new()),
    };
    let inputs = Inputs { config, subscriptions, file_routes, incidents, now: now_secs() };
    Ok(explain(&inputs, event, &payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let vars: HashMap<&str, &str> = [
            ("GITHUB_REPO", "acme/web"),
            ("GITHUB_REPOS", "acme/*"),
            ("ENABLE_ALERTS", "true"),
            ("DISCORD_BOT_TOKEN", "x"),
            ("ALERT_CHANNEL_ID", "99"),
        ]
        .into();
        Config::from_lookup(|k| vars.get(k).map(|v| v.to_string())).unwrap()
    }

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/routes");

    fn golden(name: &str, got: &str) {
        let path = format!("{DIR}/{name}");
        if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
            std::fs::write(&path, got).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(got, want, "{path} differs; UPDATE_GOLDEN=1 rewrites it");
    }

    #[test]
    fn explain_matches_its_golden_file() {
        let config = config();
        let text = std::fs::read_to_string(format!("{DIR}/routes.toml")).unwrap();
        let file_routes = parse_routes_file_in(&text, &config.github_repos, &config.allowed_guild_ids).unwrap();
        let sub = valine_domain::routing::Subscription {
            retry: false,
            channel_id: 333,
            guild_id: None,
            repo: "acme/web".into(),
            workflows: "deploy-*".into(),
            branches: String::new(),
            events: "failures".into(),
            mention_role_id: None,
            created_by: 42,
            created_at: 0,
        };
        let payload: Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/workflow_run.json")).unwrap()).unwrap();
        let inputs = Inputs {
            config: &config,
            subscriptions: Ok(vec![sub.route().unwrap()]),
            file_routes,
            incidents: HashMap::new(),
            now: 1_795_000_000,
        };
        golden("explain.golden", &explain(&inputs, "workflow_run", &payload));
        // outside GITHUB_REPOS
        let mut evil = payload.clone();
        evil["repository"]["full_name"] = "evil/app".into();
        assert!(
            explain(&inputs, "workflow_run", &evil)
                .contains("ignored (202): repository evil/app is not in GITHUB_REPOS")
        );
    }

    #[test]
    fn check_names_the_line_of_each_error() {
        let config = config();
        let ok = check(Path::new(&format!("{DIR}/routes.toml")), &config).unwrap();
        assert!(ok.contains("2 route(s), valid"), "{ok}");
        let err = check(Path::new(&format!("{DIR}/broken.toml")), &config).unwrap_err();
        let lines: Vec<&str> = err.lines().skip(1).collect();
        assert_eq!(lines.len(), 3, "{err}");
        assert!(lines[0].ends_with("broken.toml:4: repo: `acme` is not owner/name or owner/*"), "{err}");
        assert!(lines[1].ends_with("broken.toml:8: repository `evil/*` is outside GITHUB_REPOS (acme/*)"), "{err}");
        assert!(
            lines[2].ends_with("broken.toml:9: events: `everything` is not failures, all-runs or deployments"),
            "{err}"
        );
        let syntax = check(Path::new(&format!("{DIR}/syntax.toml")), &config).unwrap_err();
        assert!(syntax.contains("syntax.toml:3:"), "{syntax}");
    }
}
