//! Where a delivery goes, decided before anything is written: its repository must be in
//! `GITHUB_REPOS`, and a route must take it; and which incidents it may update there.

use std::time::Duration;

use serde_json::Value;
use valine_domain::routing::{RouteEvent, RouteTable, Target};

use crate::app::App;
use crate::events::{self, Decision};

/// How long reading the subscriptions may take before routing goes on without them.
const ROUTES_BUDGET: Duration = Duration::from_millis(1500);
/// Every branch: routes filter branches before the decision.
pub(crate) const ANY_BRANCH: &[&str] = &["*"];

/// Where a delivery goes, decided before anything is written.
pub(crate) enum Routing {
    /// Outside `GITHUB_REPOS`, or no route: `202 ignored`, nothing written.
    Ignore(String),
    /// The channels it goes to (none: an event with no incident to route, or a `/diagnose` run).
    Targets(Vec<Target>),
}

impl App {
    /// The incidents a delivery may update: its decision's key in each routed channel whose
    /// gates are open. Pure; `act` gates and decides the same way.
    pub(crate) fn incident_ids(&self, event: &str, payload: &Value, targets: &[Target], trace_id: &str) -> Vec<String> {
        let decision = match event {
            "workflow_run" => {
                let Some(run) = events::workflow_run_record(payload) else { return Vec::new() };
                let any_branch: Vec<String> = ANY_BRANCH.iter().map(|b| b.to_string()).collect();
                events::decide_workflow_run(
                    payload["action"].as_str().unwrap_or(""),
                    &run,
                    payload,
                    &any_branch,
                    trace_id,
                )
            }
            "deployment_status" => events::decide_deployment_status(payload, trace_id),
            _ => return Vec::new(),
        };
        let Decision::Observe(obs) = decision else { return Vec::new() };
        targets
            .iter()
            .filter_map(|t| self.incidents.route_channel(t.channel_id))
            .map(|channel| {
                let mut key = obs.key.clone();
                key.channel_id = channel;
                key.id()
            })
            .collect()
    }

    /// Routes a delivery before anything is written: its repository must be in `GITHUB_REPOS`,
    /// and a route must take it (a `/diagnose` run needs none: its message follows it anyway).
    pub(crate) async fn route(&self, event: &str, payload: &Value) -> Routing {
        if !matches!(event, "workflow_run" | "deployment_status") {
            return Routing::Targets(Vec::new());
        }
        let repository = events::repository(payload);
        if !self.config.github_repos.admits_delivery(&repository) {
            return Routing::Ignore(format!("repository {repository} is not in GITHUB_REPOS"));
        }
        let table = self.route_table().await;
        let run = if event == "workflow_run" {
            match events::workflow_run_record(payload) {
                Some(run) => Some(run),
                None => return Routing::Targets(Vec::new()),
            }
        } else {
            None
        };
        let action = payload["action"].as_str().unwrap_or("");
        let environment = events::environment(payload);
        let route_event = match &run {
            Some(run) => RouteEvent::Run {
                repository: &run.repository,
                workflow: &run.workflow_name,
                branch: &run.head_branch,
                completed: action == "completed" || run.status == "completed",
            },
            None => RouteEvent::Deployment { repository: &repository, environment: &environment },
        };
        let targets = table.targets(&route_event);
        if targets.is_empty() && !run.as_ref().is_some_and(|r| self.is_diagnose_run(r)) {
            return Routing::Ignore(table.why_not(&route_event));
        }
        Routing::Targets(targets)
    }

    /// The routes in force: subscriptions (cached in this container) and `ROUTES_FILE`.
    pub async fn route_table(&self) -> RouteTable {
        let routes = self.stores.routes.clone();
        let read = async {
            match tokio::time::timeout(
                ROUTES_BUDGET,
                valine_service::routing::route_table(&self.config, routes.as_ref(), &self.file_routes),
            )
            .await
            {
                Ok((table, _)) => table,
                Err(_) => {
                    tracing::warn!(
                        "subscriptions did not answer in time: routing by ROUTES_FILE or ALERT_CHANNEL_ID only"
                    );
                    RouteTable::build(&self.config, Vec::new(), self.file_routes.clone())
                }
            }
        };
        read.await
    }
}
