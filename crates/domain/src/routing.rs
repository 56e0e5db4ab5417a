//! Routing: which channels a GitHub event goes to, and why a route did or did not match. Pure:
//! routes come from channel subscriptions (`/subscribe`, kept in the store) and from `ROUTES_FILE`
//! (TOML); with neither, the one implicit route of `ALERT_CHANNEL_ID` + `ALERT_BRANCHES` keeps the
//! single-channel behaviour. `GITHUB_REPOS` bounds every repository a route or a command may name.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::repo::{RepoPattern, RepoScope};

/// `*` matches any run of characters (`/` included), `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while let Some(&tc) = t.get(ti) {
        let pc = p.get(pi).copied();
        if pc == Some('?') || pc == Some(tc) {
            pi += 1;
            ti += 1;
        } else if pc == Some('*') {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p.iter().skip(pi).all(|c| *c == '*')
}

/// Globs to include (none: everything) and `!globs` to exclude.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Globs {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Workflow names compare case-insensitively; branches do not.
    pub fold_case: bool,
}

/// Why a [`Globs`] refused a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobMiss {
    Excluded(String),
    NotIncluded,
}

impl Globs {
    /// A comma list (`ci, deploy-*, !nightly`); blank or `*` is everything.
    pub fn parse(list: &str, fold_case: bool) -> Result<Self, String> {
        Self::from_items(list.split(','), fold_case)
    }

    pub fn from_items<'a>(items: impl IntoIterator<Item = &'a str>, fold_case: bool) -> Result<Self, String> {
        let mut globs = Self { fold_case, ..Self::default() };
        for item in items {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            if item.len() > 200 || item.chars().any(char::is_control) {
                return Err(format!("`{item}` is not a glob"));
            }
            match item.strip_prefix('!') {
                Some("") => return Err("`!` excludes nothing: write !glob".into()),
                Some(ex) => globs.exclude.push(ex.trim().to_string()),
                None if item == "*" => {}
                None => globs.include.push(item.to_string()),
            }
        }
        Ok(globs)
    }

    pub fn everything(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    pub fn check(&self, text: &str) -> Result<(), GlobMiss> {
        let m = |p: &str| {
            if self.fold_case { glob(&p.to_lowercase(), &text.to_lowercase()) } else { glob(p, text) }
        };
        if let Some(ex) = self.exclude.iter().find(|p| m(p)) {
            return Err(GlobMiss::Excluded(ex.clone()));
        }
        if self.include.is_empty() || self.include.iter().any(|p| m(p)) { Ok(()) } else { Err(GlobMiss::NotIncluded) }
    }
}

impl fmt::Display for Globs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self.include.clone();
        parts.extend(self.exclude.iter().map(|e| format!("!{e}")));
        if parts.is_empty() {
            return f.write_str("*");
        }
        f.write_str(&parts.join(","))
    }
}

/// What a route carries: failures (open and resolve incidents), all runs (failures, and a compact
/// line for every other completed run), deployments (`deployment_status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Events {
    pub failures: bool,
    pub all_runs: bool,
    pub deployments: bool,
}

impl Events {
    pub const FAILURES: Events = Events { failures: true, all_runs: false, deployments: false };

    /// One of `failures`, `all-runs`, `deployments`, or a comma list of them; blank: failures.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::from_items(text.split(','))
    }

    pub fn from_items<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut e = Events::default();
        for item in items {
            match item.trim().to_ascii_lowercase().replace('_', "-").as_str() {
                "" => {}
                "failures" => e.failures = true,
                "all-runs" => e.all_runs = true,
                "deployments" => e.deployments = true,
                other => return Err(format!("`{other}` is not failures, all-runs or deployments")),
            }
        }
        Ok(if e == Events::default() { Events::FAILURES } else { e })
    }

    /// Whether completed workflow runs are carried.
    pub fn runs(&self) -> bool {
        self.failures || self.all_runs
    }
}

impl fmt::Display for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.all_runs {
            parts.push("all-runs");
        } else if self.failures {
            parts.push("failures");
        }
        if self.deployments {
            parts.push("deployments");
        }
        f.write_str(&parts.join(","))
    }
}

/// Where a route comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `/subscribe` in the channel, by this user.
    Subscription { by: u64 },
    /// `ROUTES_FILE`, the `[[route]]` starting on this line.
    File { line: usize },
    /// No subscription and no routes file: `ALERT_CHANNEL_ID` + `ALERT_BRANCHES`.
    Implicit,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Subscription { by } => write!(f, "subscription by <@{by}>"),
            Origin::File { line } => write!(f, "ROUTES_FILE line {line}"),
            Origin::Implicit => f.write_str("ALERT_CHANNEL_ID + ALERT_BRANCHES"),
        }
    }
}

/// One route: which events of which repositories go to one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub origin: Origin,
    /// `None` only for the implicit route without `ALERT_CHANNEL_ID` (its gate says so).
    pub channel_id: Option<u64>,
    /// `None`: any repository (the implicit route; `GITHUB_REPOS` still bounds deliveries).
    pub repo: Option<RepoPattern>,
    pub workflows: Globs,
    pub branches: Globs,
    pub events: Events,
    pub mention_role_id: Option<u64>,
    /// A failure may be re-run once before anyone is told (`retry = true`; see `crate::known`).
    pub retry: bool,
}

/// An event as routing sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteEvent<'a> {
    /// A `workflow_run` delivery.
    Run { repository: &'a str, workflow: &'a str, branch: &'a str, completed: bool },
    /// A `deployment_status` delivery.
    Deployment { repository: &'a str, environment: &'a str },
}

impl RouteEvent<'_> {
    pub fn repository(&self) -> &str {
        match self {
            RouteEvent::Run { repository, .. } | RouteEvent::Deployment { repository, .. } => repository,
        }
    }
}

/// Why a route did not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    Repository { wanted: String, got: String },
    Workflow { got: String, why: GlobMiss, wanted: String },
    Branch { got: String, why: GlobMiss, wanted: String },
    EventKind(String),
}

impl Miss {
    /// `repository`, `workflow`, `branch` or `event kind`.
    pub fn field(&self) -> &'static str {
        match self {
            Miss::Repository { .. } => "repository",
            Miss::Workflow { .. } => "workflow",
            Miss::Branch { .. } => "branch",
            Miss::EventKind(_) => "event kind",
        }
    }
}

impl fmt::Display for Miss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let glob_miss = |f: &mut fmt::Formatter<'_>, what: &str, got: &str, why: &GlobMiss, wanted: &str| match why {
            GlobMiss::Excluded(p) => write!(f, "{what} `{got}` is excluded by !{p}"),
            GlobMiss::NotIncluded => write!(f, "{what} `{got}` is not in {wanted}"),
        };
        match self {
            Miss::Repository { wanted, got } => write!(f, "repository `{got}` is not {wanted}"),
            Miss::Workflow { got, why, wanted } => glob_miss(f, "workflow", got, why, wanted),
            Miss::Branch { got, why, wanted } => glob_miss(f, "branch", got, why, wanted),
            Miss::EventKind(why) => write!(f, "event kind: {why}"),
        }
    }
}

impl Route {
    /// The route of the single-channel set-up: every repository `GITHUB_REPOS` admits, every
    /// workflow, `ALERT_BRANCHES`, failures and deployments, to `ALERT_CHANNEL_ID`.
    pub fn implicit(config: &Config) -> Self {
        Self {
            origin: Origin::Implicit,
            channel_id: config.alert_channel_id,
            repo: None,
            workflows: Globs { fold_case: true, ..Globs::default() },
            branches: Globs::from_items(config.alert_branches.iter().map(String::as_str), false).unwrap_or_default(),
            events: Events { failures: true, all_runs: false, deployments: true },
            mention_role_id: None,
            retry: config.auto_retry,
        }
    }

    /// Whether `event` goes this way; the first field that does not match, when not.
    pub fn check(&self, event: &RouteEvent<'_>) -> Result<(), Miss> {
        if let Some(repo) = &self.repo
            && !repo.matches(event.repository())
        {
            return Err(Miss::Repository { wanted: repo.to_string(), got: event.repository().to_string() });
        }
        match *event {
            RouteEvent::Run { workflow, branch, completed, .. } => {
                if !self.events.runs() {
                    return Err(Miss::EventKind(format!("workflow runs are not in events {}", self.events)));
                }
                self.workflows.check(workflow).map_err(|why| Miss::Workflow {
                    got: workflow.to_string(),
                    why,
                    wanted: self.workflows.to_string(),
                })?;
                self.branches.check(branch).map_err(|why| Miss::Branch {
                    got: branch.to_string(),
                    why,
                    wanted: self.branches.to_string(),
                })?;
                if !completed {
                    return Err(Miss::EventKind("the run is not completed".into()));
                }
                Ok(())
            }
            RouteEvent::Deployment { .. } => {
                if self.events.deployments {
                    Ok(())
                } else {
                    Err(Miss::EventKind(format!("deployment statuses are not in events {}", self.events)))
                }
            }
        }
    }

    /// One line: `acme/* → <#123>: workflows ci, branches main, events failures`.
    pub fn describe(&self) -> String {
        let repo = self.repo.as_ref().map_or_else(|| "any repository".to_string(), ToString::to_string);
        let channel = self.channel_id.map_or_else(|| "ALERT_CHANNEL_ID (not set)".to_string(), |c| format!("<#{c}>"));
        let mut line = format!(
            "{repo} → {channel}: workflows {}, branches {}, events {}",
            self.workflows, self.branches, self.events
        );
        if let Some(role) = self.mention_role_id {
            line.push_str(&format!(", mentions <@&{role}>"));
        }
        if self.retry {
            line.push_str(", retries once");
        }
        line
    }
}

/// Where one event goes: a channel (its own incident), and what that channel wants of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub channel_id: Option<u64>,
    pub mention_role_id: Option<u64>,
    /// A compact line for a completed run that opens, changes or resolves no incident.
    pub all_runs: bool,
    /// A route to this channel allows one retry of a failure.
    pub retry: bool,
}

/// Every route in force, and whether it is the implicit one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    pub routes: Vec<Route>,
    pub implicit: bool,
}

impl RouteTable {
    /// Subscriptions and file routes merged; the implicit route when there are neither.
    pub fn build(config: &Config, subscriptions: Vec<Route>, file: Vec<Route>) -> Self {
        let mut routes = subscriptions;
        routes.extend(file);
        if routes.is_empty() {
            return Self { routes: vec![Route::implicit(config)], implicit: true };
        }
        Self { routes, implicit: false }
    }

    /// Every route with whether it matched and why not.
    pub fn explain<'r>(&'r self, event: &RouteEvent<'_>) -> Vec<(&'r Route, Result<(), Miss>)> {
        self.routes.iter().map(|r| (r, r.check(event))).collect()
    }

    /// The channels `event` goes to, one target per channel (two routes naming one channel make
    /// one incident there), in route order.
    pub fn targets(&self, event: &RouteEvent<'_>) -> Vec<Target> {
        let mut out: Vec<Target> = Vec::new();
        for route in self.routes.iter().filter(|r| r.check(event).is_ok()) {
            match out.iter_mut().find(|t| t.channel_id == route.channel_id) {
                Some(t) => {
                    t.all_runs |= route.events.all_runs;
                    t.retry |= route.retry;
                    t.mention_role_id = t.mention_role_id.or(route.mention_role_id);
                }
                None => out.push(Target {
                    channel_id: route.channel_id,
                    mention_role_id: route.mention_role_id,
                    all_runs: route.events.all_runs,
                    retry: route.retry,
                }),
            }
        }
        out
    }

    /// Why nothing matched, in one line (for `202 ignored`).
    pub fn why_not(&self, event: &RouteEvent<'_>) -> String {
        let misses: Vec<String> =
            self.routes.iter().filter_map(|r| r.check(event).err()).map(|m| m.to_string()).collect();
        match misses.as_slice() {
            [] => "no route".to_string(),
            [one] => format!("no route: {one}"),
            [first, ..] => format!("no route matched ({} routes; first: {first})", misses.len()),
        }
    }
}

/// A channel subscription as the store keeps it (one per channel and repository pattern).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub channel_id: u64,
    #[serde(default)]
    pub guild_id: Option<u64>,
    /// `owner/name` or `owner/*`.
    pub repo: String,
    /// Comma list of globs, `!` excludes; empty: every workflow.
    #[serde(default)]
    pub workflows: String,
    #[serde(default)]
    pub branches: String,
    /// `failures`, `all-runs` or `deployments`.
    #[serde(default)]
    pub events: String,
    #[serde(default)]
    pub mention_role_id: Option<u64>,
    /// `/subscribe retry:true`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retry: bool,
    pub created_by: u64,
    pub created_at: u64,
}

impl Subscription {
    /// The repository pattern in its key form (lowercase).
    pub fn repo_key(&self) -> String {
        self.repo.to_ascii_lowercase()
    }

    /// The route it makes; `None` when a stored value no longer parses (never written so).
    pub fn route(&self) -> Option<Route> {
        Some(Route {
            origin: Origin::Subscription { by: self.created_by },
            channel_id: Some(self.channel_id),
            repo: Some(RepoPattern::parse(&self.repo).ok()?),
            workflows: Globs::parse(&self.workflows, true).ok()?,
            branches: Globs::parse(&self.branches, false).ok()?,
            events: Events::parse(&self.events).ok()?,
            mention_role_id: self.mention_role_id,
            retry: self.retry,
        })
    }
}

/// An error of a routes file, with the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A list in TOML, or the same as one comma-separated string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum ListOrString {
    List(Vec<String>),
    One(String),
}

impl ListOrString {
    fn items(&self) -> Vec<&str> {
        match self {
            ListOrString::List(v) => v.iter().map(String::as_str).collect(),
            ListOrString::One(s) => s.split(',').collect(),
        }
    }
}

/// A Discord id, as a TOML integer or string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Snowflake {
    Int(i64),
    Text(String),
}

impl Snowflake {
    fn get(&self) -> Option<u64> {
        match self {
            Snowflake::Int(n) => u64::try_from(*n).ok(),
            Snowflake::Text(s) => s.trim().parse().ok(),
        }
        .filter(|n| *n > 0)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRoute {
    channel: toml::Spanned<Snowflake>,
    repo: toml::Spanned<String>,
    #[serde(default)]
    workflows: Option<toml::Spanned<ListOrString>>,
    #[serde(default)]
    branches: Option<toml::Spanned<ListOrString>>,
    #[serde(default)]
    events: Option<toml::Spanned<ListOrString>>,
    #[serde(default)]
    mention: Option<toml::Spanned<Snowflake>>,
    #[serde(default)]
    retry: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesDoc {
    #[serde(default)]
    route: Vec<toml::Spanned<FileRoute>>,
}

/// The line (1-based) of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes().iter().take(offset).filter(|b| **b == b'\n').count() + 1
}

/// Parses a routes file: `[[route]]` tables with `channel`, `repo`, and optional `workflows`,
/// `branches`, `events` and `mention`. Every error names its line; every repository must be
/// within `scope` (when it is set).
pub fn parse_routes_file(text: &str, scope: &RepoScope) -> Result<Vec<Route>, Vec<FileError>> {
    parse_routes_file_in(text, scope, &[])
}

/// Why `mention` may not name this role: `@everyone` (its id is the guild's, so any of
/// `guild_ids`, the servers the bot serves) or `@here`, written out. A file cannot know every
/// guild, so an id is refused only when it is one of `guild_ids`.
pub fn mention_refusal(mention: &str, guild_ids: &[u64]) -> Option<String> {
    let name = mention.trim().trim_start_matches('@').to_ascii_lowercase();
    if name == "everyone" || name == "here" {
        return Some(format!("mention cannot be @{name}: name a role (its id) to mention"));
    }
    let id = name.trim_start_matches("<&").trim_end_matches('>').parse::<u64>().ok()?;
    guild_ids
        .contains(&id)
        .then(|| format!("mention {id} is the @everyone role of that server (its id is the server's): name a role"))
}

/// [`parse_routes_file`], also refusing a `mention` of `@everyone` by any of `guild_ids`
/// (`ALLOWED_GUILD_IDS`).
pub fn parse_routes_file_in(text: &str, scope: &RepoScope, guild_ids: &[u64]) -> Result<Vec<Route>, Vec<FileError>> {
    let doc: RoutesDoc = match toml::from_str(text) {
        Ok(d) => d,
        Err(e) => {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            let message = e.message().trim().to_string();
            return Err(vec![FileError { line, message }]);
        }
    };
    let mut routes = Vec::new();
    let mut errors = Vec::new();
    for spanned in doc.route {
        let start = line_of(text, spanned.span().start);
        let r = spanned.into_inner();
        let at = |span: std::ops::Range<usize>| line_of(text, span.start);
        let mut err = |line: usize, message: String| errors.push(FileError { line, message });
        let channel = r.channel.get_ref().get();
        if channel.is_none() {
            err(at(r.channel.span()), "channel is not a Discord channel id".into());
        }
        let repo = match RepoPattern::parse(r.repo.get_ref()) {
            Ok(p) if scope.is_unset() || scope.allows(&p) => Some(p),
            Ok(p) => {
                err(at(r.repo.span()), format!("repository `{p}` is outside GITHUB_REPOS ({scope})"));
                None
            }
            Err(e) => {
                err(at(r.repo.span()), format!("repo: {e}"));
                None
            }
        };
        let globs = |v: &Option<toml::Spanned<ListOrString>>, fold, errors: &mut Vec<FileError>, what: &str| match v {
            None => Some(Globs { fold_case: fold, ..Globs::default() }),
            Some(s) => match Globs::from_items(s.get_ref().items(), fold) {
                Ok(g) => Some(g),
                Err(e) => {
                    errors.push(FileError { line: line_of(text, s.span().start), message: format!("{what}: {e}") });
                    None
                }
            },
        };
        let workflows = globs(&r.workflows, true, &mut errors, "workflows");
        let branches = globs(&r.branches, false, &mut errors, "branches");
        let events = match &r.events {
            None => Some(Events::FAILURES),
            Some(s) => match Events::from_items(s.get_ref().items()) {
                Ok(e) => Some(e),
                Err(e) => {
                    errors.push(FileError { line: line_of(text, s.span().start), message: format!("events: {e}") });
                    None
                }
            },
        };
        let mention = match &r.mention {
            None => Some(None),
            Some(m) => {
                let written = match m.get_ref() {
                    Snowflake::Int(n) => n.to_string(),
                    Snowflake::Text(t) => t.clone(),
                };
                let refused = mention_refusal(&written, guild_ids);
                match (m.get_ref().get(), refused) {
                    (Some(id), None) => Some(Some(id)),
                    (_, refused) => {
                        let message = refused.unwrap_or_else(|| "mention is not a Discord role id".into());
                        errors.push(FileError { line: line_of(text, m.span().start), message });
                        None
                    }
                }
            }
        };
        if let (Some(channel), Some(repo), Some(workflows), Some(branches), Some(events), Some(mention_role_id)) =
            (channel, repo, workflows, branches, events, mention)
        {
            routes.push(Route {
                origin: Origin::File { line: start },
                channel_id: Some(channel),
                repo: Some(repo),
                workflows,
                branches,
                events,
                mention_role_id,
                retry: r.retry,
            });
        }
    }
    if errors.is_empty() { Ok(routes) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_never_mentions_everyone_or_here() {
        let file = |mention: &str| format!("[[route]]\nchannel = 111\nrepo = \"a/b\"\nmention = {mention}\n");
        for (mention, says) in [
            ("\"@everyone\"", "mention cannot be @everyone"),
            ("\"@here\"", "mention cannot be @here"),
            ("\"everyone\"", "mention cannot be @everyone"),
        ] {
            let errors = parse_routes_file(&file(mention), &scope(&["a/*"])).unwrap_err();
            assert_eq!(errors.len(), 1, "{mention}: {errors:?}");
            assert_eq!(errors[0].line, 4);
            assert!(errors[0].message.starts_with(says), "{mention}: {}", errors[0].message);
        }
        // The @everyone role's id is its server's: refused where the servers are known.
        let guild = 805588225228931074_u64;
        let errors = parse_routes_file_in(&file(&guild.to_string()), &scope(&["a/*"]), &[guild]).unwrap_err();
        assert!(errors[0].message.contains("@everyone role"), "{errors:?}");
        let errors = parse_routes_file_in(&file(&format!("\"{guild}\"")), &scope(&["a/*"]), &[7, guild]).unwrap_err();
        assert!(errors[0].message.contains("@everyone role"), "{errors:?}");
        let routes = parse_routes_file_in(&file("222"), &scope(&["a/*"]), &[guild]).unwrap();
        assert_eq!(routes[0].mention_role_id, Some(222));
    }

    fn scope(list: &[&str]) -> RepoScope {
        RepoScope(list.iter().map(|p| RepoPattern::parse(p).unwrap()).collect())
    }

    fn route(repo: &str, workflows: &str, branches: &str, events: &str) -> Route {
        Route {
            retry: false,
            origin: Origin::Subscription { by: 1 },
            channel_id: Some(10),
            repo: Some(RepoPattern::parse(repo).unwrap()),
            workflows: Globs::parse(workflows, true).unwrap(),
            branches: Globs::parse(branches, false).unwrap(),
            events: Events::parse(events).unwrap(),
            mention_role_id: None,
        }
    }

    fn run<'a>(repo: &'a str, workflow: &'a str, branch: &'a str) -> RouteEvent<'a> {
        RouteEvent::Run { repository: repo, workflow, branch, completed: true }
    }

    #[test]
    fn globs() {
        let cases = [
            ("main", "main", true),
            ("main", "mainline", false),
            ("release/*", "release/1.0", true),
            ("release/*", "release", false),
            ("*", "", true),
            ("*-deploy", "web-deploy", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("v?.x", "v1.x", true),
            ("v?.x", "v10.x", false),
            ("**", "x/y", true),
        ];
        for (p, t, want) in cases {
            assert_eq!(glob(p, t), want, "{p} {t}");
        }
    }

    #[test]
    fn route_matching_table() {
        // (route repo, workflows, branches, events, event, expected: None = match, Some(field))
        let cases: Vec<(Route, RouteEvent<'_>, Option<&str>)> = vec![
            (route("acme/web", "", "", ""), run("acme/web", "CI", "main"), None),
            (route("acme/web", "", "", ""), run("ACME/Web", "CI", "main"), None),
            (route("acme/web", "", "", ""), run("acme/api", "CI", "main"), Some("repository")),
            (route("acme/*", "", "", ""), run("acme/brand-new", "CI", "x"), None),
            (route("acme/*", "", "", ""), run("other/web", "CI", "x"), Some("repository")),
            (route("acme/*", "ci,deploy-*", "", ""), run("acme/web", "Deploy-prod", "main"), None),
            (route("acme/*", "ci,deploy-*", "", ""), run("acme/web", "lint", "main"), Some("workflow")),
            (route("acme/*", "!nightly", "", ""), run("acme/web", "Nightly", "main"), Some("workflow")),
            (route("acme/*", "!nightly", "", ""), run("acme/web", "ci", "main"), None),
            (route("acme/*", "*,!nightly*", "", ""), run("acme/web", "nightly-e2e", "main"), Some("workflow")),
            (route("acme/*", "", "main,release/*", ""), run("acme/web", "ci", "release/2"), None),
            (route("acme/*", "", "main,release/*", ""), run("acme/web", "ci", "feature/x"), Some("branch")),
            (route("acme/*", "", "!dependabot/*", ""), run("acme/web", "ci", "dependabot/npm/x"), Some("branch")),
            (route("acme/*", "", "", "deployments"), run("acme/web", "ci", "main"), Some("event kind")),
            (route("acme/*", "", "", "all-runs"), run("acme/web", "ci", "main"), None),
            (
                route("acme/*", "", "", "failures"),
                RouteEvent::Run { repository: "acme/web", workflow: "ci", branch: "main", completed: false },
                Some("event kind"),
            ),
            (
                route("acme/*", "", "", "deployments"),
                RouteEvent::Deployment { repository: "acme/web", environment: "prod" },
                None,
            ),
            (
                route("acme/*", "", "", "failures"),
                RouteEvent::Deployment { repository: "acme/web", environment: "prod" },
                Some("event kind"),
            ),
            (
                route("acme/web", "", "", "deployments"),
                RouteEvent::Deployment { repository: "acme/api", environment: "prod" },
                Some("repository"),
            ),
        ];
        for (r, ev, want) in cases {
            let got = r.check(&ev);
            assert_eq!(got.as_ref().err().map(Miss::field), want, "{} {ev:?}: {got:?}", r.describe());
            if let Err(m) = got {
                assert!(!m.to_string().is_empty());
            }
        }
    }

    #[test]
    fn miss_reasons_read_well() {
        let r = route("acme/*", "ci,!nightly", "main", "");
        assert_eq!(
            r.check(&run("acme/web", "nightly", "main")).unwrap_err().to_string(),
            "workflow `nightly` is excluded by !nightly"
        );
        assert_eq!(
            r.check(&run("acme/web", "lint", "main")).unwrap_err().to_string(),
            "workflow `lint` is not in ci,!nightly"
        );
        assert_eq!(r.check(&run("x/web", "ci", "main")).unwrap_err().to_string(), "repository `x/web` is not acme/*");
    }

    #[test]
    fn targets_are_one_per_channel_and_no_route_says_why() {
        let config = Config::from_lookup(|_| None).unwrap();
        let mut second = route("acme/*", "", "", "all-runs");
        second.channel_id = Some(20);
        let mut same_channel = route("acme/web", "", "", "all-runs");
        same_channel.mention_role_id = Some(7);
        let table = RouteTable::build(&config, vec![route("acme/web", "", "main", ""), second, same_channel], vec![]);
        assert!(!table.implicit);
        let targets = table.targets(&run("acme/web", "ci", "main"));
        assert_eq!(
            targets,
            vec![
                Target { channel_id: Some(10), mention_role_id: Some(7), all_runs: true, retry: false },
                Target { channel_id: Some(20), mention_role_id: None, all_runs: true, retry: false },
            ]
        );
        assert_eq!(table.targets(&run("other/web", "ci", "main")), vec![]);
        assert!(table.why_not(&run("other/web", "ci", "main")).starts_with("no route matched (3 routes"));
    }

    #[test]
    fn no_routes_is_the_implicit_route() {
        let config = Config::from_lookup(|k| match k {
            "ALERT_CHANNEL_ID" => Some("99".into()),
            "ALERT_BRANCHES" => Some("main,release/*".into()),
            _ => None,
        })
        .unwrap();
        let table = RouteTable::build(&config, vec![], vec![]);
        assert!(table.implicit);
        let to_99 = vec![Target { channel_id: Some(99), mention_role_id: None, all_runs: false, retry: false }];
        assert_eq!(table.targets(&run("anyone/repo", "CI", "release/1")), to_99);
        assert_eq!(table.targets(&RouteEvent::Deployment { repository: "a/b", environment: "prod" }), to_99);
        assert!(table.targets(&run("anyone/repo", "CI", "feature/x")).is_empty());
        // without ALERT_CHANNEL_ID the route is there; the gate says what to set
        let bare = RouteTable::build(&Config::from_lookup(|_| None).unwrap(), vec![], vec![]);
        assert_eq!(bare.targets(&run("a/b", "CI", "main"))[0].channel_id, None);
    }

    #[test]
    fn events_parse() {
        assert_eq!(Events::parse("").unwrap(), Events::FAILURES);
        assert!(Events::parse("all-runs").unwrap().all_runs);
        assert!(Events::parse("all_runs, deployments").unwrap().deployments);
        assert!(Events::parse("everything").is_err());
        assert!(Globs::parse("ci,!", true).is_err());
    }

    #[test]
    fn a_route_may_allow_one_retry_and_its_channel_retries_if_any_route_does() {
        let text = "[[route]]\nchannel = 10\nrepo = \"a/b\"\nretry = true\n\n[[route]]\nchannel = 10\nrepo = \"a/*\"\n";
        let routes = parse_routes_file(text, &scope(&["a/*"])).unwrap();
        assert_eq!(routes.iter().map(|r| r.retry).collect::<Vec<_>>(), [true, false]);
        assert!(routes[0].describe().ends_with(", retries once"), "{}", routes[0].describe());
        let table = RouteTable { routes, implicit: false };
        let event = RouteEvent::Run { repository: "a/b", workflow: "CI", branch: "main", completed: true };
        assert!(table.targets(&event)[0].retry);
        let other = RouteEvent::Run { repository: "a/c", workflow: "CI", branch: "main", completed: true };
        assert!(!table.targets(&other)[0].retry);
        let errors = parse_routes_file("[[route]]\nchannel = 10\nrepo = \"a/b\"\nretry = \"yes\"\n", &scope(&["a/*"]));
        assert!(errors.is_err(), "retry is a boolean");
    }

    #[test]
    fn subscriptions_become_routes() {
        let sub = Subscription {
            retry: false,
            channel_id: 5,
            guild_id: None,
            repo: "acme/*".into(),
            workflows: "ci".into(),
            branches: String::new(),
            events: "all-runs".into(),
            mention_role_id: Some(9),
            created_by: 42,
            created_at: 0,
        };
        let r = sub.route().unwrap();
        assert!(r.check(&run("acme/web", "CI", "anything")).is_ok());
        assert_eq!(r.describe(), "acme/* → <#5>: workflows ci, branches *, events all-runs, mentions <@&9>");
    }

    #[test]
    fn routes_files_parse_and_name_the_line_of_each_error() {
        let good = "# team routes\n[[route]]\nchannel = 111\nrepo = \"acme/*\"\nworkflows = [\"ci\", \"!nightly\"]\nbranches = \"main, release/*\"\nevents = \"all-runs\"\nmention = \"222\"\n\n[[route]]\nchannel = \"333\"\nrepo = \"acme/web\"\nevents = [\"deployments\"]\n";
        let routes = parse_routes_file(good, &scope(&["acme/*"])).unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].origin, Origin::File { line: 2 });
        assert_eq!(routes[0].mention_role_id, Some(222));
        assert_eq!(routes[1].origin, Origin::File { line: 10 });
        assert!(routes[1].events.deployments && !routes[1].events.failures);

        let cases: &[(&str, &[usize])] = &[
            // TOML syntax: the line of the bad token
            ("[[route]]\nchannel = 1\nrepo = \"a/b\"\nbranches = [\"main\"\n", &[4]),
            // unknown field
            ("[[route]]\nchannel = 1\nrepo = \"a/b\"\nbranch = \"main\"\n", &[4]),
            // bad values, each on its own line
            (
                "[[route]]\nchannel = 1\nrepo = \"nope\"\n\n[[route]]\nchannel = -4\nrepo = \"a/b\"\nevents = \"loud\"\n",
                &[3, 6, 8],
            ),
            // outside GITHUB_REPOS
            ("[[route]]\nchannel = 1\nrepo = \"evil/x\"\n", &[3]),
            // missing channel
            ("[[route]]\nrepo = \"a/b\"\n", &[1]),
        ];
        for (text, lines) in cases {
            let errors = parse_routes_file(text, &scope(&["a/*"])).unwrap_err();
            let got: Vec<usize> = errors.iter().map(|e| e.line).collect();
            assert_eq!(&got, lines, "{text}: {errors:?}");
        }
    }
}
