//! Routes in force: the channel subscriptions in the store (cached per container) merged with
//! `ROUTES_FILE`, bounded by `GITHUB_REPOS`; the implicit route when there are neither.

use valine_domain::config::Config;
use valine_domain::routing::{Route, RouteTable, parse_routes_file};
use valine_store::{RouteRepo, StoreError};

/// Reads and checks `ROUTES_FILE` (none set: no file routes). The error names the file and the
/// line of each problem.
pub fn load_routes_file(config: &Config) -> Result<Vec<Route>, String> {
    let Some(path) = &config.routes_file else { return Ok(Vec::new()) };
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("ROUTES_FILE {} cannot be read: {e}", path.display()))?;
    parse_routes_file(&text, &config.github_repos).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        format!("ROUTES_FILE {} is invalid: {}", path.display(), lines.join("; "))
    })
}

/// The routes of the subscriptions still within `GITHUB_REPOS`.
pub fn subscription_routes(config: &Config, subs: &[valine_store::Subscription]) -> Vec<Route> {
    subs.iter()
        .filter_map(|s| {
            let route = s.route()?;
            let inside = route.repo.as_ref().is_some_and(|p| config.github_repos.allows(p));
            if !inside {
                tracing::warn!(channel_id = s.channel_id, repo = %s.repo, "subscription outside GITHUB_REPOS: ignored");
            }
            inside.then_some(route)
        })
        .collect()
}

/// The table in force. When the subscriptions cannot be read, the file routes (or, without any,
/// the implicit route) stand in, and the error comes back for the trace.
pub async fn route_table(
    config: &Config,
    routes: &dyn RouteRepo,
    file_routes: &[Route],
) -> (RouteTable, Option<StoreError>) {
    match routes.list_subscriptions().await {
        Ok(subs) => (RouteTable::build(config, subscription_routes(config, &subs), file_routes.to_vec()), None),
        Err(e) => {
            tracing::warn!(error = %e, "subscriptions unavailable: routing by ROUTES_FILE or ALERT_CHANNEL_ID only");
            (RouteTable::build(config, Vec::new(), file_routes.to_vec()), Some(e))
        }
    }
}
