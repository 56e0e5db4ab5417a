//! `/subscribe`, `/unsubscribe` and `/subscriptions`: which GitHub events of which repositories
//! go to the channel the command is typed in. Admins only; every change audited, every refusal
//! audited `blocked`. Repositories are bounded by `GITHUB_REPOS`. Also the `repo` option that
//! `/status` and `/diagnose` share: its autocomplete and its default.

use std::time::Duration;

use valine_domain::audit::{AuditRecord, AuditResult};
use valine_domain::authz::authorize_admin;
use valine_domain::clock::now_secs;
use valine_domain::config::Config;
use valine_domain::message::{Message, Reply, truncate};
use valine_domain::repo::RepoName;
use valine_domain::repo::RepoPattern;
use valine_domain::routing::{Events, Globs, Subscription, mention_refusal};

use crate::ctx::Ctx;
use crate::interaction::Options;
use crate::services::Services;
use crate::spec::{Access, OptKind, OptSpec, Spec, Where};

const EVENTS: &[(&str, &str)] = &[
    ("failures (open and resolve incidents)", "failures"),
    ("all-runs (and a line per run)", "all-runs"),
    ("deployments", "deployments"),
];

pub(crate) const SUBSCRIBE: Spec = Spec {
    name: "subscribe",
    description: "Route a repository's GitHub events to this channel (admins; audited)",
    options: &[
        OptSpec::new("repo", OptKind::String, "owner/name, or owner/* for every repository of the owner")
            .required()
            .max_length(201)
            .autocomplete(),
        OptSpec::new(
            "workflows",
            OptKind::String,
            "Workflow name globs, comma-separated; !glob excludes (default all)",
        )
        .max_length(500),
        OptSpec::new("branches", OptKind::String, "Branch globs, comma-separated; !glob excludes (default all)")
            .max_length(500),
        OptSpec::new("events", OptKind::String, "What to post (default failures)").choices(EVENTS),
        OptSpec::new("mention", OptKind::Role, "A role to mention when an incident opens here"),
        OptSpec::new("retry", OptKind::Boolean, "Re-run a transient or repeatedly flaky failure once before posting"),
    ],
    subcommands: &[],
    access: Access::Admins,
    place: Where::Guild,
    summary: "Routes the repository's workflow failures (or every run, or deployments) to this channel, filtered by workflow and branch globs; each channel gets its own incidents. `retry:true` re-runs a transient or repeatedly flaky failure once before anyone is told (never `AUTO_RETRY_NEVER` workflows).",
    span: "handle_subscribe",
};

pub(crate) const UNSUBSCRIBE: Spec = Spec {
    name: "unsubscribe",
    description: "Stop routing a repository's events to this channel (admins; audited)",
    options: &[OptSpec::new("repo", OptKind::String, "The subscribed owner/name or owner/*")
        .required()
        .max_length(201)
        .autocomplete()],
    subcommands: &[],
    access: Access::Admins,
    place: Where::Guild,
    summary: "Removes this channel's subscription to the repository.",
    span: "handle_unsubscribe",
};

pub(crate) const SUBSCRIPTIONS: Spec = Spec {
    name: "subscriptions",
    description: "This channel's subscriptions, or every channel's (admins)",
    options: &[OptSpec::new("all", OptKind::Boolean, "Every channel's, not only this one's")],
    subcommands: &[],
    access: Access::Admins,
    place: Where::Guild,
    summary: "Only you see it: the subscriptions of this channel (or, with `all:true`, of every channel), with their filters.",
    span: "handle_subscriptions",
};

/// The options of all three; each command reads what it has.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Args {
    pub repo: Option<String>,
    pub workflows: Option<String>,
    pub branches: Option<String>,
    pub events: Option<String>,
    pub mention: Option<u64>,
    pub retry: bool,
    pub all: bool,
}

pub(crate) fn parse(o: &Options) -> Args {
    Args {
        repo: o.str("repo").map(str::to_string),
        workflows: o.str("workflows").map(str::to_string),
        branches: o.str("branches").map(str::to_string),
        events: o.str("events").map(str::to_string),
        mention: o.id("mention"),
        retry: o.bool("retry").unwrap_or(false),
        all: o.bool("all").unwrap_or(false),
    }
}

const STORE_BUDGET: Duration = Duration::from_millis(1500);

/// Why a repository pattern may not be named, or the pattern.
pub(crate) fn bounded(config: &Config, typed: &str) -> Result<RepoPattern, String> {
    let pattern = RepoPattern::parse(typed)?;
    if config.github_repos.is_unset() {
        return Err("No repository may be named: set GITHUB_REPOS (or GITHUB_REPO).".into());
    }
    if !config.github_repos.allows(&pattern) {
        return Err(format!("`{pattern}` is outside GITHUB_REPOS ({}).", config.github_repos));
    }
    Ok(pattern)
}

/// The admin check and the channel, or the refusal (audited).
async fn admin_in_channel(ctx: &mut Ctx<'_>, repo: Option<&str>) -> Result<u64, Reply> {
    let mut record = ctx.blocked_record();
    if let Some(r) = repo {
        record = record.meta("repo", truncate(r, 200));
    }
    if let Err(refusal) = authorize_admin(ctx.caller(), &ctx.services.config) {
        return Err(ctx.blocked(&refusal.to_string(), record).await);
    }
    match ctx.channel_id {
        Some(c) => Ok(c),
        None => Err(ctx.blocked("Run it in the channel that should get the events.", record).await),
    }
}

/// `/subscribe`.
pub(crate) async fn run_subscribe(ctx: &mut Ctx<'_>, args: Args) -> Reply {
    let channel_id = match admin_in_channel(ctx, args.repo.as_deref()).await {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    let typed = args.repo.clone().unwrap_or_default();
    let checked = (|| {
        let repo = bounded(&ctx.services.config, &typed)?;
        let workflows =
            Globs::parse(args.workflows.as_deref().unwrap_or(""), true).map_err(|e| format!("workflows: {e}"))?;
        let branches =
            Globs::parse(args.branches.as_deref().unwrap_or(""), false).map_err(|e| format!("branches: {e}"))?;
        let events = Events::parse(args.events.as_deref().unwrap_or("")).map_err(|e| format!("events: {e}"))?;
        if let Some(role) = args.mention {
            // @everyone's id is the server's; @here is not a role. Neither pings a whole server.
            let guilds: Vec<u64> =
                ctx.guild_id.into_iter().chain(ctx.services.config.allowed_guild_ids.clone()).collect();
            if let Some(reason) = mention_refusal(&role.to_string(), &guilds) {
                return Err(format!("{reason}."));
            }
        }
        Ok::<_, String>((repo, workflows, branches, events))
    })();
    let (repo, workflows, branches, events) = match checked {
        Ok(c) => c,
        Err(reason) => {
            let record = ctx.blocked_record().meta("repo", truncate(&typed, 200));
            return ctx.blocked(&reason, record).await;
        }
    };
    let sub = Subscription {
        retry: args.retry,
        channel_id,
        guild_id: ctx.guild_id,
        repo: repo.to_string(),
        workflows: workflows.to_string(),
        branches: branches.to_string(),
        events: events.to_string(),
        mention_role_id: args.mention,
        created_by: ctx.user_id,
        created_at: now_secs(),
    };
    let routes = ctx.services.stores.routes.clone();
    if let Err(e) = ctx.store_step("store.put_subscription", STORE_BUDGET, routes.put_subscription(&sub)).await {
        return ctx.store_unavailable(&e, "nothing was subscribed").await;
    }
    let route = sub.route().map(|r| r.describe()).unwrap_or_default();
    let record = change_record(ctx, AuditResult::Posted, channel_id, &sub.repo)
        .meta("workflows", &sub.workflows)
        .meta("branches", &sub.branches)
        .meta("events", &sub.events)
        .meta("mention", sub.mention_role_id.map(|r| r.to_string()).unwrap_or_default())
        .meta("retry", sub.retry.to_string());
    let audited = ctx.audit("audit.subscribe", &record).await;
    Reply::Message(Message::text(done_text(&format!("✅ Subscribed: {route}"), &record, audited.is_ok())).ephemeral())
}

/// `/unsubscribe`.
pub(crate) async fn run_unsubscribe(ctx: &mut Ctx<'_>, args: Args) -> Reply {
    let channel_id = match admin_in_channel(ctx, args.repo.as_deref()).await {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    let typed = args.repo.clone().unwrap_or_default();
    let pattern = match RepoPattern::parse(&typed) {
        Ok(p) => p,
        Err(reason) => {
            let record = ctx.blocked_record().meta("repo", truncate(&typed, 200));
            return ctx.blocked(&reason, record).await;
        }
    };
    let routes = ctx.services.stores.routes.clone();
    let key = pattern.key();
    let removed = match ctx
        .store_step("store.delete_subscription", STORE_BUDGET, routes.delete_subscription(channel_id, &key))
        .await
    {
        Ok(r) => r,
        Err(e) => return ctx.store_unavailable(&e, "nothing was unsubscribed").await,
    };
    if !removed {
        let record = ctx.blocked_record().meta("repo", pattern.to_string()).meta("channel", channel_id.to_string());
        return ctx.blocked(&format!("This channel has no subscription to `{pattern}`."), record).await;
    }
    let record = change_record(ctx, AuditResult::Posted, channel_id, &pattern.to_string());
    let audited = ctx.audit("audit.unsubscribe", &record).await;
    let text = format!("✅ Unsubscribed: <#{channel_id}> no longer gets `{pattern}`.");
    Reply::Message(Message::text(done_text(&text, &record, audited.is_ok())).ephemeral())
}

/// `/subscriptions`.
pub(crate) async fn run_subscriptions(ctx: &mut Ctx<'_>, args: Args) -> Reply {
    let channel_id = match admin_in_channel(ctx, None).await {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    let routes = ctx.services.stores.routes.clone();
    let subs = match ctx.store_step("store.list_subscriptions", STORE_BUDGET, routes.list_subscriptions()).await {
        Ok(s) => s,
        Err(e) => return ctx.fail(&format!("The store is unavailable ({e}); try again in a moment.")),
    };
    let shown: Vec<&Subscription> = subs.iter().filter(|s| args.all || s.channel_id == channel_id).collect();
    let title = if args.all {
        "Subscriptions of every channel".to_string()
    } else {
        format!("Subscriptions of <#{channel_id}>")
    };
    let mut text = format!("**{title} ({})**\n", shown.len());
    if shown.is_empty() {
        text.push_str("None. `/subscribe repo:owner/name` adds one.");
    }
    for s in &shown {
        let line = s.route().map_or_else(|| format!("{} (unreadable)", s.repo), |r| r.describe());
        let outside = RepoPattern::parse(&s.repo).is_ok_and(|p| !ctx.services.config.github_repos.allows(&p));
        text.push_str(&format!("• {line}{}\n", if outside { " ⚠️ outside GITHUB_REPOS: ignored" } else { "" }));
    }
    if ctx.services.config.has_file_routes() {
        text.push_str(
            "-# Routes as code (ROUTES_TOML or ROUTES_FILE) also apply: `valinectl routes check` lists them.",
        );
    }
    Reply::Message(Message::text(truncate(&text, 2000)).ephemeral())
}

fn change_record(ctx: &Ctx<'_>, result: AuditResult, channel_id: u64, repo: &str) -> AuditRecord {
    let mut record = AuditRecord::new(&ctx.trace_id(), ctx.user_id, &ctx.command, result)
        .meta("username", &ctx.user_name)
        .meta("repo", repo);
    record.target_channel = Some(channel_id.to_string());
    record
}

fn done_text(text: &str, record: &AuditRecord, audited: bool) -> String {
    if audited {
        format!("{text}\n-# audit `{}`", record.audit_id)
    } else {
        format!("{text}\n-# (this change could not be audited: the store is unavailable)")
    }
}

/// The concrete repositories the bot knows without I/O: `GITHUB_REPOS`' named ones, `GITHUB_REPO`,
/// and the subscriptions this container last read.
fn known_repositories(services: &Services) -> Vec<String> {
    let config = &services.config;
    let mut repos: Vec<String> = Vec::new();
    let mut add = |r: String| {
        if !repos.iter().any(|x| x.eq_ignore_ascii_case(&r)) {
            repos.push(r);
        }
    };
    if let Some(r) = &config.github_repo {
        add(r.to_string());
    }
    for p in config.github_repos.repositories() {
        add(p.to_string());
    }
    for s in services.stores.routes.cached_subscriptions().unwrap_or_default() {
        if RepoPattern::parse(&s.repo).is_ok_and(|p| config.github_repos.allows(&p)) {
            add(s.repo.clone());
        }
    }
    repos
}

/// Autocomplete for a `repo` option. `concrete`: only `owner/name` (for `/status`, `/diagnose`).
pub(crate) fn complete_repo(services: &Services, typed: &str, concrete: bool) -> Vec<(String, String)> {
    let typed = typed.to_ascii_lowercase();
    let mut matches: Vec<(String, String)> = known_repositories(services)
        .into_iter()
        .filter(|r| !concrete || !r.ends_with("/*"))
        .filter(|r| r.to_ascii_lowercase().contains(&typed))
        .map(|r| (r.clone(), r))
        .collect();
    matches.sort_by_key(|(r, _)| !r.to_ascii_lowercase().starts_with(&typed));
    matches.truncate(25);
    matches
}

/// The repository a `/status` or `/diagnose` acts on: the one typed (one repository, within
/// `GITHUB_REPOS`), else the channel's only subscribed repository, else `GITHUB_REPO`.
pub(crate) async fn target_repo(ctx: &mut Ctx<'_>, typed: Option<&str>) -> Result<Option<RepoName>, String> {
    if let Some(typed) = typed {
        let pattern = bounded(&ctx.services.config, typed)?;
        return pattern
            .repo_name()
            .map(Some)
            .ok_or_else(|| format!("`{pattern}` names many repositories: give one, owner/name."));
    }
    if let Some(channel) = ctx.channel_id {
        let routes = ctx.services.stores.routes.clone();
        if let Ok(subs) =
            ctx.store_step("store.list_subscriptions", Duration::from_millis(500), routes.list_subscriptions()).await
        {
            let mut mine: Vec<RepoName> = subs
                .iter()
                .filter(|s| s.channel_id == channel)
                .filter_map(|s| RepoPattern::parse(&s.repo).ok())
                .filter(|p| ctx.services.config.github_repos.allows(p))
                .filter_map(|p| p.repo_name())
                .collect();
            mine.dedup_by(|a, b| a.to_string().eq_ignore_ascii_case(&b.to_string()));
            if let [only] = mine.as_slice() {
                return Ok(Some(only.clone()));
            }
        }
    }
    Ok(ctx.services.config.github_repo.clone())
}

/// A repository handed to a job, checked again: whoever can invoke the function could have sent it.
pub(crate) fn recheck_repo(config: &Config, repo: Option<&str>) -> Result<Option<RepoName>, String> {
    match repo {
        None => Ok(config.github_repo.clone()),
        Some(r) => bounded(config, r)?.repo_name().map(Some).ok_or_else(|| "not one repository".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_are_bounded_by_github_repos() {
        let config = Config::from_lookup(|k| match k {
            "GITHUB_REPO" => Some("acme/web".into()),
            "GITHUB_REPOS" => Some("acme/*,solo/app".into()),
            _ => None,
        })
        .unwrap();
        assert!(bounded(&config, "acme/anything").is_ok());
        assert!(bounded(&config, "acme/*").is_ok());
        assert!(bounded(&config, "solo/app").is_ok());
        assert!(bounded(&config, "solo/*").unwrap_err().contains("outside GITHUB_REPOS"));
        assert!(bounded(&config, "evil/app").unwrap_err().contains("outside GITHUB_REPOS"));
        assert!(bounded(&config, "nonsense").is_err());
        assert_eq!(recheck_repo(&config, None).unwrap().unwrap().to_string(), "acme/web");
        assert!(recheck_repo(&config, Some("acme/*")).is_err());
        assert!(recheck_repo(&config, Some("evil/x")).is_err());
        let unset = Config::from_lookup(|_| None).unwrap();
        assert!(bounded(&unset, "acme/web").unwrap_err().contains("set GITHUB_REPOS"));
    }
}
