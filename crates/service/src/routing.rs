//! Routes in force: the channel subscriptions in the store (cached per container) merged with
//! `ROUTES_FILE`, bounded by `GITHUB_REPOS`; the implicit route when there are neither.

use valine_domain::config::Config;
use valine_domain::routing::{Route, RouteTable, parse_routes_file_in};
use valine_store::{RouteRepo, StoreError};

/// Reads and checks the routes as code: `ROUTES_TOML` (the deployed functions' `RoutesToml`
/// parameter) or `ROUTES_FILE` (none set: no file routes). The error names where the routes came
/// from and the line of each problem.
pub fn load_routes_file(config: &Config) -> Result<Vec<Route>, String> {
    let (origin, text) = match (&config.routes_toml, &config.routes_file) {
        (Some(text), _) => ("ROUTES_TOML".to_string(), text.clone()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("ROUTES_FILE {} cannot be read: {e}", path.display()))?;
            (format!("ROUTES_FILE {}", path.display()), text)
        }
        (None, None) => return Ok(Vec::new()),
    };
    parse_routes_file_in(&text, &config.github_repos, &config.allowed_guild_ids).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        format!("{origin} is invalid: {}", lines.join("; "))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_lookup(|k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).unwrap()
    }

    #[test]
    fn deployed_routes_come_from_routes_toml_and_name_it_when_invalid() {
        let c =
            config(&[("GITHUB_REPOS", "acme/*"), ("ROUTES_TOML", r#"route = [{channel = "111", repo = "acme/web"}]"#)]);
        let routes = load_routes_file(&c).unwrap();
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].channel_id, Some(111));
        let c = config(&[
            ("GITHUB_REPOS", "acme/*"),
            ("ROUTES_TOML", r#"route = [{channel = "111", repo = "other/web"}]"#),
        ]);
        let err = load_routes_file(&c).unwrap_err();
        assert!(err.starts_with("ROUTES_TOML is invalid: line 1:"), "{err}");
        assert!(load_routes_file(&config(&[])).unwrap().is_empty());
    }
}
