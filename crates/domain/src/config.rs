//! All environment parsing, once, at init. An invalid value is an error that names its variable;
//! a missing optional setting is `None`, and the command that needs it says what to set.

use std::fmt;
use std::path::PathBuf;

use url::Url;

use crate::repo::{RepoName, RepoPattern, RepoScope};

/// A configuration error: always names the variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{var} is required but not set")]
    Missing { var: &'static str },
    #[error("{var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// A secret setting. Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::redact::MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::redact::MASK)
    }
}

/// Which storage adapter backs the ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    DynamoDb,
    Embedded,
}

/// Every setting of DESIGN.md section 6, parsed.
#[derive(Debug, Clone)]
pub struct Config {
    pub discord_public_key: Option<[u8; 32]>,
    pub discord_bot_token: Option<Secret>,
    pub discord_application_id: Option<u64>,
    pub github_token: Option<Secret>,
    pub github_repo: Option<RepoName>,
    pub github_webhook_secret: Option<Secret>,
    pub admin_user_ids: Vec<u64>,
    pub admin_role_ids: Vec<u64>,
    pub enable_alerts: bool,
    pub alert_channel_id: Option<u64>,
    pub alert_mention_role_id: Option<u64>,
    pub alert_dedup_seconds: u64,
    pub alert_branches: Vec<String>,
    /// Who may press incident buttons, besides admins.
    pub responder_role_ids: Vec<u64>,
    /// GitHub login → Discord user id, for culprit mentions (`login=discord_user_id,…`).
    pub github_discord_users: Vec<(String, u64)>,
    /// An open, unacknowledged incident older than this gets one escalation reply.
    pub alert_escalate_minutes: u64,
    /// More outcome flips than this within `alert_flap_minutes` is flapping.
    pub alert_flap_count: u32,
    pub alert_flap_minutes: u64,
    /// The implicit route (`ALERT_CHANNEL_ID` without routes) allows the one safe retry.
    pub auto_retry: bool,
    /// Workflows never re-run by the one safe retry (globs on the name or file).
    pub auto_retry_never: Vec<String>,
    pub enable_debug_cmd: bool,
    pub debug_cmd_allowed_users: Vec<u64>,
    pub allowed_domains: Vec<String>,
    pub safe_local: bool,
    /// Servers whose interactions are served; empty serves any (logged at start as open).
    pub allowed_guild_ids: Vec<u64>,
    pub diagnose_workflow: String,
    pub diagnose_ref: String,
    pub diagnose_role_ids: Vec<u64>,
    pub status_workflows: Vec<String>,
    pub audit_table_name: String,
    pub runs_table_name: String,
    pub state_table_name: String,
    pub store: StoreKind,
    pub data_dir: PathBuf,
    pub dry_run: bool,
    pub discord_api_base: Option<Url>,
    pub github_api_base: Option<Url>,
    /// The bot's webhook on the repository, for the tick's gap filling; found by its URL when unset.
    pub github_hook_id: Option<u64>,
    pub log_level: String,
    pub stage: String,
    /// Key of the audit digest (HMAC-SHA-256 of relayed texts).
    pub audit_hmac_key: Option<Secret>,
    /// This function's own name, for the deferred-job self-invocation (set by Lambda).
    pub function_name: Option<String>,
    /// `/deploy-client`: the workflow it dispatches, on which ref by default, and who besides
    /// admins may run it.
    pub deploy_workflow: String,
    pub deploy_ref: String,
    pub deploy_role_ids: Vec<u64>,
    /// The environment `/deploy-client` deploys to unless told (its `environment` input).
    pub deploy_environment: String,
    /// `/set-frontend` and `/set-api-base` are refused unless this is on.
    pub allow_secret_writes: bool,
    /// The repository variable `/set-frontend` writes, and the secret `/set-api-base` writes.
    pub frontend_variable_name: String,
    pub api_base_secret_name: String,
    /// `name=url,…`: the endpoints `/verify-latest` and the tick check. Set by operators, so any
    /// http(s) address is allowed.
    pub verify_urls: Vec<VerifyUrl>,
    /// `AWS_REGION` (set by Lambda), for console links.
    pub aws_region: Option<String>,
    /// `GITHUB_REPOS` (else `GITHUB_REPO`): the repositories the bot may touch.
    pub github_repos: RepoScope,
    /// `ROUTES_FILE`: routes as code (TOML), merged with the channel subscriptions.
    pub routes_file: Option<PathBuf>,
    /// `ROUTES_TOML`: the same TOML as a value (the deployed functions' `RoutesToml` parameter,
    /// since a file cannot ship inside the one-file `bootstrap`).
    pub routes_toml: Option<String>,
    /// `SECRET_ID`: the Secrets Manager secret the deployed functions read their secrets from.
    pub secret_id: Option<String>,
    /// `GITHUB_APP_ID`: GitHub App authentication (with `GITHUB_APP_PRIVATE_KEY`).
    pub github_app_id: Option<u64>,
    /// `GITHUB_APP_PRIVATE_KEY`: the App's PEM private key (PKCS#1 or PKCS#8).
    pub github_app_private_key: Option<Secret>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get`, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&get);
        let function_name = env.string("AWS_LAMBDA_FUNCTION_NAME");
        let store = match env.string("STORE").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None => {
                if function_name.is_some() {
                    StoreKind::DynamoDb
                } else {
                    StoreKind::Embedded
                }
            }
            Some("dynamodb") => StoreKind::DynamoDb,
            Some("embedded") => StoreKind::Embedded,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: "STORE",
                    reason: format!("`{other}` is not `dynamodb` or `embedded`"),
                });
            }
        };
        let github_app_id = env.app_id("GITHUB_APP_ID")?;
        let github_app_private_key = env.pem("GITHUB_APP_PRIVATE_KEY")?;
        match (&github_app_id, &github_app_private_key) {
            (Some(_), None) => return Err(ConfigError::Missing { var: "GITHUB_APP_PRIVATE_KEY" }),
            (None, Some(_)) => return Err(ConfigError::Missing { var: "GITHUB_APP_ID" }),
            _ => {}
        }
        let routes_file = env.string("ROUTES_FILE").map(PathBuf::from);
        let routes_toml = env.string("ROUTES_TOML");
        if routes_file.is_some() && routes_toml.is_some() {
            return Err(ConfigError::Invalid {
                var: "ROUTES_TOML",
                reason: "ROUTES_FILE is set too: set one of them".into(),
            });
        }
        Ok(Self {
            discord_public_key: env.public_key("DISCORD_PUBLIC_KEY")?,
            discord_bot_token: env.secret("DISCORD_BOT_TOKEN"),
            discord_application_id: env.id("DISCORD_APPLICATION_ID")?,
            github_token: env.secret("GITHUB_TOKEN"),
            github_repo: env.repo("GITHUB_REPO")?,
            github_webhook_secret: env.secret("GITHUB_WEBHOOK_SECRET"),
            admin_user_ids: env.ids("ADMIN_USER_IDS")?,
            admin_role_ids: env.ids("ADMIN_ROLE_IDS")?,
            enable_alerts: env.flag("ENABLE_ALERTS", false)?,
            alert_channel_id: env.id("ALERT_CHANNEL_ID")?,
            alert_mention_role_id: env.id("ALERT_MENTION_ROLE_ID")?,
            alert_dedup_seconds: env.seconds("ALERT_DEDUP_SECONDS", 300)?,
            alert_branches: env.list("ALERT_BRANCHES").unwrap_or_else(|| vec!["main".into()]),
            responder_role_ids: env.ids("RESPONDER_ROLE_IDS")?,
            github_discord_users: env.user_map("GITHUB_DISCORD_USERS")?,
            alert_escalate_minutes: env.minutes("ALERT_ESCALATE_MINUTES", 30)?,
            alert_flap_count: env.minutes("ALERT_FLAP_COUNT", 4)? as u32,
            alert_flap_minutes: env.minutes("ALERT_FLAP_MINUTES", 60)?,
            auto_retry: env.flag("AUTO_RETRY", false)?,
            auto_retry_never: env
                .list("AUTO_RETRY_NEVER")
                .unwrap_or_else(|| crate::known::RETRY_NEVER_DEFAULT.iter().map(|p| p.to_string()).collect()),
            enable_debug_cmd: env.flag("ENABLE_DEBUG_CMD", false)?,
            debug_cmd_allowed_users: env.ids("DEBUG_CMD_ALLOWED_USERS")?,
            allowed_domains: env
                .list("ALLOWED_DOMAINS")
                .unwrap_or_default()
                .into_iter()
                .map(|d| d.to_ascii_lowercase().trim_end_matches('.').to_string())
                .collect(),
            safe_local: env.flag("SAFE_LOCAL", false)?,
            allowed_guild_ids: env.ids("ALLOWED_GUILD_IDS")?,
            diagnose_workflow: env.string("DIAGNOSE_WORKFLOW").unwrap_or_else(|| "diagnose.yml".into()),
            diagnose_ref: env.string("DIAGNOSE_REF").unwrap_or_else(|| "main".into()),
            diagnose_role_ids: env.ids("DIAGNOSE_ROLE_IDS")?,
            status_workflows: env.list("STATUS_WORKFLOWS").unwrap_or_default(),
            audit_table_name: env.string("AUDIT_TABLE_NAME").unwrap_or_else(|| "valine-orchestrator-audit-dev".into()),
            runs_table_name: env.string("RUNS_TABLE_NAME").unwrap_or_else(|| "valine-orchestrator-runs-dev".into()),
            state_table_name: env.string("STATE_TABLE_NAME").unwrap_or_else(|| "valine-orchestrator-state-dev".into()),
            store,
            data_dir: env.string("DATA_DIR").map_or_else(|| PathBuf::from(".valine"), PathBuf::from),
            dry_run: env.flag("DRY_RUN", false)?,
            discord_api_base: env.url("DISCORD_API_BASE")?,
            github_api_base: env.url("GITHUB_API_BASE")?,
            github_hook_id: env.id("GITHUB_HOOK_ID")?,
            log_level: env.log_level("LOG_LEVEL")?,
            stage: env.string("STAGE").unwrap_or_else(|| "dev".into()),
            audit_hmac_key: env.secret("AUDIT_HMAC_KEY"),
            function_name,
            deploy_workflow: env.string("DEPLOY_WORKFLOW").unwrap_or_else(|| "client-deploy.yml".into()),
            deploy_ref: env.string("DEPLOY_REF").unwrap_or_else(|| "main".into()),
            deploy_role_ids: env.ids("DEPLOY_ROLE_IDS")?,
            deploy_environment: match env.string("DEPLOY_ENVIRONMENT") {
                None => "production".into(),
                Some(e) => crate::lock::parse_environment(&e)
                    .map_err(|reason| ConfigError::Invalid { var: "DEPLOY_ENVIRONMENT", reason })?,
            },
            allow_secret_writes: env.flag("ALLOW_SECRET_WRITES", false)?,
            frontend_variable_name: env.name("FRONTEND_VARIABLE_NAME", "FRONTEND_BASE_URL")?,
            api_base_secret_name: env.name("API_BASE_SECRET_NAME", "VITE_API_BASE")?,
            verify_urls: env.verify_urls("VERIFY_URLS")?,
            aws_region: env.string("AWS_REGION").or_else(|| env.string("AWS_DEFAULT_REGION")),
            github_repos: env.repo_scope("GITHUB_REPOS", "GITHUB_REPO")?,
            routes_file,
            routes_toml,
            secret_id: env.string("SECRET_ID"),
            github_app_id,
            github_app_private_key,
        })
    }

    /// The public key the Discord handler needs to start.
    pub fn require_discord_public_key(&self) -> Result<[u8; 32], ConfigError> {
        self.discord_public_key.ok_or(ConfigError::Missing { var: "DISCORD_PUBLIC_KEY" })
    }

    /// The webhook secret the GitHub handler needs to start.
    pub fn require_github_webhook_secret(&self) -> Result<&Secret, ConfigError> {
        self.github_webhook_secret.as_ref().ok_or(ConfigError::Missing { var: "GITHUB_WEBHOOK_SECRET" })
    }

    /// Routes as code are configured (`ROUTES_FILE` or `ROUTES_TOML`).
    pub fn has_file_routes(&self) -> bool {
        self.routes_file.is_some() || self.routes_toml.is_some()
    }

    /// What makes this configuration broken for `handler` (readiness answers 503 with each
    /// problem): settings switched on without what they need, and what a stage requires.
    /// "Nowhere to post" is decided here without the subscriptions; the handler drops it when a
    /// channel has subscribed.
    pub fn problems(&self, handler: Handler) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.enable_alerts {
            if self.discord_bot_token.is_none() && !self.dry_run {
                out.push(Problem::new(
                    "DISCORD_BOT_TOKEN",
                    "ENABLE_ALERTS is on without DISCORD_BOT_TOKEN (a key of the stack's secret)",
                ));
            }
            if self.alert_channel_id.is_none() && !self.has_file_routes() {
                out.push(Problem::new(
                    NOWHERE_TO_POST,
                    "ENABLE_ALERTS is on with nowhere to post: set ALERT_CHANNEL_ID (parameter AlertChannelId), routes (RoutesToml), or /subscribe a channel",
                ));
            }
        }
        if handler == Handler::Discord && self.stage == "prod" && self.allowed_guild_ids.is_empty() {
            out.push(Problem::new(
                "ALLOWED_GUILD_IDS",
                "ALLOWED_GUILD_IDS is empty: with STAGE=prod the bot serves only the servers it names (parameter AllowedGuildIds)",
            ));
        }
        out
    }

    /// Names of the settings that are missing for a feature, for "set X" messages and readiness.
    pub fn missing_for(&self, feature: Feature) -> Vec<&'static str> {
        let mut missing = Vec::new();
        let mut need = |present: bool, var: &'static str| {
            if !present {
                missing.push(var);
            }
        };
        match feature {
            Feature::DiscordPosts => need(self.discord_bot_token.is_some() || self.dry_run, "DISCORD_BOT_TOKEN"),
            Feature::GitHubRuns => {
                let app = self.github_app_id.is_some() && self.github_app_private_key.is_some();
                need(self.github_token.is_some() || app || self.dry_run, "GITHUB_TOKEN");
                need(self.github_repo.is_some(), "GITHUB_REPO");
            }
            Feature::Relay => {
                need(self.discord_bot_token.is_some() || self.dry_run, "DISCORD_BOT_TOKEN");
                need(self.audit_hmac_key.is_some(), "AUDIT_HMAC_KEY");
            }
            Feature::Alerts => {
                need(self.discord_bot_token.is_some() || self.dry_run, "DISCORD_BOT_TOKEN");
                need(self.alert_channel_id.is_some(), "ALERT_CHANNEL_ID");
            }
        }
        missing
    }
}

/// The variable of the "nowhere to post" problem.
pub const NOWHERE_TO_POST: &str = "ALERT_CHANNEL_ID";

/// Which function a configuration is read by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    Discord,
    GitHub,
}

/// One reason a configuration is not ready: the variable, and what to do, naming the template
/// parameter (or the secret's key) that sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub var: &'static str,
    pub message: &'static str,
}

impl Problem {
    fn new(var: &'static str, message: &'static str) -> Self {
        Self { var, message }
    }
}

/// Where a deployed function gets each setting from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A template parameter of this name, passed as the variable.
    Parameter(&'static str),
    /// Set by the template from the stack itself (table names, the secret's id).
    Stack,
    /// A key of the stack's Secrets Manager secret, read at run time.
    Secret,
    /// Set by the Lambda runtime.
    Runtime,
    /// Local runs and tests only: never set on a deployed function.
    LocalOnly,
}

/// Every variable [`Config`] reads, and where a deployed function gets it. A test
/// (`crates/domain/tests/it/settings.rs`) fails when the configuration reads a variable missing here,
/// or when `template.yaml` does not set a `Parameter`/`Stack` one.
pub const SETTINGS: &[(&str, Source)] = &[
    ("DISCORD_PUBLIC_KEY", Source::Secret),
    ("DISCORD_BOT_TOKEN", Source::Secret),
    ("GITHUB_TOKEN", Source::Secret),
    ("GITHUB_WEBHOOK_SECRET", Source::Secret),
    ("AUDIT_HMAC_KEY", Source::Secret),
    ("GITHUB_APP_PRIVATE_KEY", Source::Secret),
    ("DISCORD_APPLICATION_ID", Source::Parameter("DiscordApplicationId")),
    ("GITHUB_REPO", Source::Parameter("GitHubRepo")),
    ("GITHUB_REPOS", Source::Parameter("GitHubRepos")),
    ("GITHUB_APP_ID", Source::Parameter("GitHubAppId")),
    ("GITHUB_HOOK_ID", Source::Parameter("GitHubHookId")),
    ("ADMIN_USER_IDS", Source::Parameter("AdminUserIds")),
    ("ADMIN_ROLE_IDS", Source::Parameter("AdminRoleIds")),
    ("ALLOWED_GUILD_IDS", Source::Parameter("AllowedGuildIds")),
    ("RESPONDER_ROLE_IDS", Source::Parameter("ResponderRoleIds")),
    ("GITHUB_DISCORD_USERS", Source::Parameter("GitHubDiscordUsers")),
    ("ENABLE_ALERTS", Source::Parameter("EnableAlerts")),
    ("ALERT_CHANNEL_ID", Source::Parameter("AlertChannelId")),
    ("ALERT_MENTION_ROLE_ID", Source::Parameter("AlertMentionRoleId")),
    ("ALERT_DEDUP_SECONDS", Source::Parameter("AlertDedupSeconds")),
    ("ALERT_BRANCHES", Source::Parameter("AlertBranches")),
    ("ALERT_ESCALATE_MINUTES", Source::Parameter("AlertEscalateMinutes")),
    ("ALERT_FLAP_COUNT", Source::Parameter("AlertFlapCount")),
    ("ALERT_FLAP_MINUTES", Source::Parameter("AlertFlapMinutes")),
    ("AUTO_RETRY", Source::Parameter("AutoRetry")),
    ("AUTO_RETRY_NEVER", Source::Parameter("AutoRetryNever")),
    ("ROUTES_TOML", Source::Parameter("RoutesToml")),
    ("ENABLE_DEBUG_CMD", Source::Parameter("EnableDebugCmd")),
    ("DEBUG_CMD_ALLOWED_USERS", Source::Parameter("DebugCmdAllowedUsers")),
    ("ALLOWED_DOMAINS", Source::Parameter("AllowedDomains")),
    ("DIAGNOSE_WORKFLOW", Source::Parameter("DiagnoseWorkflow")),
    ("DIAGNOSE_REF", Source::Parameter("DiagnoseRef")),
    ("DIAGNOSE_ROLE_IDS", Source::Parameter("DiagnoseRoleIds")),
    ("STATUS_WORKFLOWS", Source::Parameter("StatusWorkflows")),
    ("DEPLOY_WORKFLOW", Source::Parameter("DeployWorkflow")),
    ("DEPLOY_REF", Source::Parameter("DeployRef")),
    ("DEPLOY_ROLE_IDS", Source::Parameter("DeployRoleIds")),
    ("DEPLOY_ENVIRONMENT", Source::Parameter("DeployEnvironment")),
    ("ALLOW_SECRET_WRITES", Source::Parameter("AllowSecretWrites")),
    ("FRONTEND_VARIABLE_NAME", Source::Parameter("FrontendVariableName")),
    ("API_BASE_SECRET_NAME", Source::Parameter("ApiBaseSecretName")),
    ("VERIFY_URLS", Source::Parameter("VerifyUrls")),
    ("LOG_LEVEL", Source::Parameter("LogLevel")),
    ("STAGE", Source::Parameter("Stage")),
    ("AUDIT_TABLE_NAME", Source::Stack),
    ("RUNS_TABLE_NAME", Source::Stack),
    ("STATE_TABLE_NAME", Source::Stack),
    ("STORE", Source::Stack),
    ("SECRET_ID", Source::Stack),
    ("AWS_LAMBDA_FUNCTION_NAME", Source::Runtime),
    ("AWS_REGION", Source::Runtime),
    ("AWS_DEFAULT_REGION", Source::Runtime),
    // The embedded store's directory; Lambda has no writable place worth keeping.
    ("DATA_DIR", Source::LocalOnly),
    // Lets the URL guard through loopback and private addresses: for local endpoints only.
    ("SAFE_LOCAL", Source::LocalOnly),
    // No outbound Discord or GitHub calls: for trying things locally.
    ("DRY_RUN", Source::LocalOnly),
    // Fakes and proxies in tests and the playground; the deployed bot talks to the real APIs.
    ("DISCORD_API_BASE", Source::LocalOnly),
    ("GITHUB_API_BASE", Source::LocalOnly),
    // A file beside the binary; deployed functions get ROUTES_TOML instead.
    ("ROUTES_FILE", Source::LocalOnly),
];

/// The template parameter that sets `var`, if one does.
pub fn parameter_of(var: &str) -> Option<&'static str> {
    SETTINGS.iter().find_map(|(v, s)| match s {
        Source::Parameter(p) if *v == var => Some(*p),
        _ => None,
    })
}

/// The keys the stack's secret may hold.
pub fn secret_keys() -> impl Iterator<Item = &'static str> {
    SETTINGS.iter().filter(|(_, s)| *s == Source::Secret).map(|(v, _)| *v)
}

/// One endpoint of `VERIFY_URLS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyUrl {
    pub name: String,
    pub url: Url,
}

/// A group of settings that one feature needs together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    DiscordPosts,
    GitHubRuns,
    Relay,
    Alerts,
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// A set, non-blank value, trimmed.
    fn string(&self, var: &str) -> Option<String> {
        (self.0)(var).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    fn secret(&self, var: &str) -> Option<Secret> {
        self.string(var).map(Secret)
    }

    fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.string(var).map(|v| v.to_ascii_lowercase()).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(other) => Err(ConfigError::Invalid { var, reason: format!("`{other}` is not true or false") }),
        }
    }

    fn id(&self, var: &'static str) -> Result<Option<u64>, ConfigError> {
        self.string(var).map(|v| parse_snowflake(var, &v)).transpose()
    }

    fn ids(&self, var: &'static str) -> Result<Vec<u64>, ConfigError> {
        self.list(var).unwrap_or_default().iter().map(|v| parse_snowflake(var, v)).collect()
    }

    /// A comma list; `None` when unset or blank.
    fn list(&self, var: &str) -> Option<Vec<String>> {
        self.string(var).map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
    }

    fn seconds(&self, var: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.string(var) {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n <= 7 * 24 * 3600 => Ok(n),
                _ => {
                    Err(ConfigError::Invalid { var, reason: format!("`{v}` is not a number of seconds up to 604800") })
                }
            },
        }
    }

    /// A positive count (minutes, flips) up to a week of minutes.
    fn minutes(&self, var: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.string(var) {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (1..=7 * 24 * 60).contains(&n) => Ok(n),
                _ => Err(ConfigError::Invalid { var, reason: format!("`{v}` is not a whole number from 1 to 10080") }),
            },
        }
    }

    /// `login=discord_user_id,…`; logins compare case-insensitively, so they are kept lowercase.
    fn user_map(&self, var: &'static str) -> Result<Vec<(String, u64)>, ConfigError> {
        let mut out = Vec::new();
        for entry in self.list(var).unwrap_or_default() {
            let Some((login, id)) = entry.split_once('=') else {
                return Err(ConfigError::Invalid { var, reason: format!("`{entry}` is not login=discord_user_id") });
            };
            let login = login.trim();
            if login.is_empty() {
                return Err(ConfigError::Invalid { var, reason: format!("`{entry}` has no GitHub login") });
            }
            out.push((login.to_ascii_lowercase(), parse_snowflake(var, id.trim())?));
        }
        Ok(out)
    }

    fn repo(&self, var: &'static str) -> Result<Option<RepoName>, ConfigError> {
        self.string(var)
            .map(|v| v.parse::<RepoName>().map_err(|e| ConfigError::Invalid { var, reason: e.to_string() }))
            .transpose()
    }

    /// A comma list of `owner/name` and `owner/*`; unset: the one repository of `fallback`.
    fn repo_scope(&self, var: &'static str, fallback: &'static str) -> Result<RepoScope, ConfigError> {
        match self.list(var) {
            Some(items) => items
                .iter()
                .map(|i| RepoPattern::parse(i).map_err(|reason| ConfigError::Invalid { var, reason }))
                .collect::<Result<Vec<_>, _>>()
                .map(RepoScope),
            None => Ok(RepoScope(self.repo(fallback)?.map(RepoPattern::from).into_iter().collect())),
        }
    }

    fn app_id(&self, var: &'static str) -> Result<Option<u64>, ConfigError> {
        self.string(var)
            .map(|v| {
                v.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| ConfigError::Invalid {
                    var,
                    reason: "is not a GitHub App id (a positive integer)".into(),
                })
            })
            .transpose()
    }

    /// A PEM private key; `\n` escapes (as a secret store may keep it) become newlines.
    fn pem(&self, var: &'static str) -> Result<Option<Secret>, ConfigError> {
        let Some(v) = self.string(var) else { return Ok(None) };
        let v = if v.contains("\\n") && !v.contains('\n') { v.replace("\\n", "\n") } else { v };
        if !v.starts_with("-----BEGIN ") || !v.contains("PRIVATE KEY-----") {
            return Err(ConfigError::Invalid {
                var,
                reason: "is not a PEM private key (-----BEGIN … PRIVATE KEY-----)".into(),
            });
        }
        Ok(Some(Secret(v)))
    }

    fn public_key(&self, var: &'static str) -> Result<Option<[u8; 32]>, ConfigError> {
        let Some(v) = self.string(var) else { return Ok(None) };
        let mut key = [0u8; 32];
        hex::decode_to_slice(&v, &mut key)
            .map_err(|_| ConfigError::Invalid { var, reason: "expected 64 hex characters (32 bytes)".into() })?;
        ed25519_dalek::VerifyingKey::from_bytes(&key)
            .map_err(|_| ConfigError::Invalid { var, reason: "not a valid Ed25519 public key".into() })?;
        Ok(Some(key))
    }

    fn url(&self, var: &'static str) -> Result<Option<Url>, ConfigError> {
        let Some(v) = self.string(var) else { return Ok(None) };
        let url = Url::parse(&v).map_err(|e| ConfigError::Invalid { var, reason: format!("not a URL: {e}") })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::Invalid { var, reason: "must be an http or https URL".into() });
        }
        Ok(Some(url))
    }

    /// A GitHub Actions variable or secret name: letters, digits and `_`, not starting with a
    /// digit nor with `GITHUB_`.
    fn name(&self, var: &'static str, default: &str) -> Result<String, ConfigError> {
        let v = self.string(var).unwrap_or_else(|| default.to_string());
        let valid = !v.is_empty()
            && v.len() <= 100
            && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !v.starts_with(|c: char| c.is_ascii_digit())
            && !v.to_ascii_uppercase().starts_with("GITHUB_");
        if valid {
            Ok(v)
        } else {
            Err(ConfigError::Invalid {
                var,
                reason: format!(
                    "`{v}` is not a GitHub Actions variable or secret name (letters, digits, _; not GITHUB_…)"
                ),
            })
        }
    }

    /// `name=url,…` with http(s) URLs and distinct names.
    fn verify_urls(&self, var: &'static str) -> Result<Vec<VerifyUrl>, ConfigError> {
        let mut out: Vec<VerifyUrl> = Vec::new();
        for entry in self.list(var).unwrap_or_default() {
            let Some((name, url)) = entry.split_once('=') else {
                return Err(ConfigError::Invalid { var, reason: format!("`{entry}` is not name=url") });
            };
            let name = name.trim();
            if name.is_empty() || name.len() > 64 {
                return Err(ConfigError::Invalid {
                    var,
                    reason: format!("`{entry}` needs a name of 1 to 64 characters"),
                });
            }
            let url = Url::parse(url.trim())
                .map_err(|e| ConfigError::Invalid { var, reason: format!("the URL of `{name}` is not a URL: {e}") })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ConfigError::Invalid { var, reason: format!("the URL of `{name}` must be http or https") });
            }
            if out.iter().any(|v| v.name == name) {
                return Err(ConfigError::Invalid { var, reason: format!("`{name}` is named twice") });
            }
            out.push(VerifyUrl { name: name.to_string(), url });
        }
        Ok(out)
    }

    fn log_level(&self, var: &'static str) -> Result<String, ConfigError> {
        let v = self.string(var).unwrap_or_else(|| "info".into()).to_ascii_lowercase();
        match v.as_str() {
            "trace" | "debug" | "info" | "warn" | "error" => Ok(v),
            _ => Err(ConfigError::Invalid { var, reason: format!("`{v}` is not one of debug, info, warn, error") }),
        }
    }
}

fn parse_snowflake(var: &'static str, v: &str) -> Result<u64, ConfigError> {
    v.parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ConfigError::Invalid { var, reason: format!("`{v}` is not a Discord id (a positive integer)") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_design() {
        let c = config(&[]).unwrap();
        assert_eq!(c.alert_dedup_seconds, 300);
        assert_eq!(c.alert_branches, vec!["main"]);
        assert_eq!(c.diagnose_workflow, "diagnose.yml");
        assert_eq!(c.diagnose_ref, "main");
        assert_eq!(c.audit_table_name, "valine-orchestrator-audit-dev");
        assert_eq!(c.runs_table_name, "valine-orchestrator-runs-dev");
        assert_eq!(c.state_table_name, "valine-orchestrator-state-dev");
        assert_eq!(c.store, StoreKind::Embedded);
        assert_eq!(c.data_dir, PathBuf::from(".valine"));
        assert_eq!(c.log_level, "info");
        assert_eq!(c.stage, "dev");
        assert!(!c.enable_alerts && !c.enable_debug_cmd && !c.safe_local && !c.dry_run);
        assert!(c.admin_user_ids.is_empty() && c.admin_role_ids.is_empty());
    }

    #[test]
    fn runbook_settings_default_and_parse() {
        let c = config(&[]).unwrap();
        assert_eq!((c.deploy_workflow.as_str(), c.deploy_ref.as_str()), ("client-deploy.yml", "main"));
        assert!(c.deploy_role_ids.is_empty() && !c.allow_secret_writes && c.verify_urls.is_empty());
        assert_eq!(
            (c.frontend_variable_name.as_str(), c.api_base_secret_name.as_str()),
            ("FRONTEND_BASE_URL", "VITE_API_BASE")
        );
        let c = config(&[
            ("VERIFY_URLS", "frontend=https://app.example.com/, api = http://10.0.0.5:8080/health"),
            ("ALLOW_SECRET_WRITES", "true"),
            ("DEPLOY_ROLE_IDS", "42"),
        ])
        .unwrap();
        let names: Vec<_> = c.verify_urls.iter().map(|v| (v.name.as_str(), v.url.as_str())).collect();
        assert_eq!(names, [("frontend", "https://app.example.com/"), ("api", "http://10.0.0.5:8080/health")]);
        assert!(c.allow_secret_writes);
        assert_eq!(c.deploy_role_ids, [42]);
    }

    #[test]
    fn lambda_defaults_to_dynamodb() {
        let c = config(&[("AWS_LAMBDA_FUNCTION_NAME", "valine-orchestrator-discord-dev")]).unwrap();
        assert_eq!(c.store, StoreKind::DynamoDb);
        assert_eq!(
            config(&[("AWS_LAMBDA_FUNCTION_NAME", "f"), ("STORE", "embedded")]).unwrap().store,
            StoreKind::Embedded
        );
    }

    #[test]
    fn every_invalid_value_names_its_variable() {
        let cases: &[(&str, &str)] = &[
            ("DISCORD_PUBLIC_KEY", "not-hex"),
            ("DISCORD_APPLICATION_ID", "abc"),
            ("GITHUB_REPO", "no-slash"),
            ("ADMIN_USER_IDS", "1,two"),
            ("ADMIN_ROLE_IDS", "-5"),
            ("ENABLE_ALERTS", "maybe"),
            ("ALERT_CHANNEL_ID", "x"),
            ("ALERT_MENTION_ROLE_ID", "0"),
            ("ALERT_DEDUP_SECONDS", "-1"),
            ("ENABLE_DEBUG_CMD", "2"),
            ("DEBUG_CMD_ALLOWED_USERS", "a"),
            ("SAFE_LOCAL", "perhaps"),
            ("DIAGNOSE_ROLE_IDS", "1.5"),
            ("STORE", "postgres"),
            ("DRY_RUN", "y"),
            ("DISCORD_API_BASE", "ftp://x"),
            ("GITHUB_API_BASE", "::"),
            ("LOG_LEVEL", "loud"),
            ("DEPLOY_ROLE_IDS", "ops"),
            ("ALLOW_SECRET_WRITES", "sure"),
            ("FRONTEND_VARIABLE_NAME", "GITHUB_X"),
            ("API_BASE_SECRET_NAME", "has space"),
            ("VERIFY_URLS", "api"),
            ("VERIFY_URLS", "api=ftp://x"),
            ("VERIFY_URLS", "=https://x"),
            ("VERIFY_URLS", "a=https://x,a=https://y"),
        ];
        for (var, value) in cases {
            let err = config(&[(var, value)]).unwrap_err();
            assert!(err.to_string().starts_with(var), "{var}: {err}");
        }
    }

    #[test]
    fn lists_ids_and_flags_parse() {
        let c = config(&[
            ("ADMIN_USER_IDS", " 80351110224678912, 1184576487578214464 "),
            ("ALERT_BRANCHES", "main,release/1.x"),
            ("ENABLE_ALERTS", "TRUE"),
            ("ALLOWED_DOMAINS", "Example.COM., *.Corp.example"),
            ("GITHUB_REPO", "acme/widget"),
            ("DISCORD_PUBLIC_KEY", "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"),
        ])
        .unwrap();
        assert_eq!(c.admin_user_ids, vec![80351110224678912, 1184576487578214464]);
        assert_eq!(c.alert_branches, vec!["main", "release/1.x"]);
        assert!(c.enable_alerts);
        assert_eq!(c.allowed_domains, vec!["example.com", "*.corp.example"]);
        assert_eq!(c.github_repo.unwrap().to_string(), "acme/widget");
        assert!(c.discord_public_key.is_some());
        assert_eq!(c.auto_retry_never, ["*deploy*", "*release*", "*publish*"], "the default");
        assert!(!c.auto_retry);
        let c = config(&[("AUTO_RETRY", "true"), ("AUTO_RETRY_NEVER", "ship-*, *.prod.yml")]).unwrap();
        assert!(c.auto_retry && crate::routing::Route::implicit(&c).retry);
        assert_eq!(c.auto_retry_never, ["ship-*", "*.prod.yml"]);
    }

    #[test]
    fn secrets_never_print() {
        let c = config(&[("DISCORD_BOT_TOKEN", "canary-token-value"), ("GITHUB_TOKEN", "ghp_canary")]).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("canary"));
        assert_eq!(c.discord_bot_token.unwrap().expose(), "canary-token-value");
    }

    #[test]
    fn missing_settings_are_named() {
        let c = config(&[]).unwrap();
        assert_eq!(c.missing_for(Feature::GitHubRuns), vec!["GITHUB_TOKEN", "GITHUB_REPO"]);
        assert_eq!(
            c.require_discord_public_key().unwrap_err().to_string(),
            "DISCORD_PUBLIC_KEY is required but not set"
        );
        assert_eq!(c.missing_for(Feature::Alerts), vec!["DISCORD_BOT_TOKEN", "ALERT_CHANNEL_ID"]);
    }

    #[test]
    fn incident_settings_parse_and_name_their_variable() {
        let c = Config::from_lookup(|_| None).unwrap();
        assert_eq!((c.alert_escalate_minutes, c.alert_flap_count, c.alert_flap_minutes), (30, 4, 60));
        assert!(c.github_discord_users.is_empty() && c.responder_role_ids.is_empty());
        let vars: HashMap<&str, &str> = [
            ("GITHUB_DISCORD_USERS", "OctoCat=80351110224678912, hubot = 1184576487578214464"),
            ("RESPONDER_ROLE_IDS", "42"),
            ("ALERT_FLAP_COUNT", "6"),
        ]
        .into();
        let c = Config::from_lookup(|k| vars.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(
            c.github_discord_users,
            vec![("octocat".to_string(), 80351110224678912), ("hubot".to_string(), 1184576487578214464)]
        );
        assert_eq!((c.responder_role_ids.as_slice(), c.alert_flap_count), (&[42][..], 6));
        for (var, value) in [
            ("GITHUB_DISCORD_USERS", "octocat"),
            ("GITHUB_DISCORD_USERS", "octocat=abc"),
            ("GITHUB_DISCORD_USERS", "=12"),
            ("ALERT_ESCALATE_MINUTES", "0"),
            ("ALERT_FLAP_MINUTES", "soon"),
            ("RESPONDER_ROLE_IDS", "x"),
        ] {
            let err = Config::from_lookup(|k| (k == var).then(|| value.to_string())).unwrap_err();
            assert!(err.to_string().contains(var), "{var}={value}: {err}");
        }
    }

    #[test]
    fn repository_scope_and_app_settings() {
        let c = config(&[("GITHUB_REPO", "acme/web")]).unwrap();
        assert_eq!(c.github_repos.to_string(), "acme/web");
        let c = config(&[("GITHUB_REPO", "acme/web"), ("GITHUB_REPOS", "acme/*, solo/app")]).unwrap();
        assert_eq!(c.github_repos.to_string(), "acme/*,solo/app");
        assert!(config(&[]).unwrap().github_repos.is_unset());
        let c = config(&[
            ("GITHUB_APP_ID", "12345"),
            ("GITHUB_APP_PRIVATE_KEY", "-----BEGIN RSA PRIVATE KEY-----\\nMIIB\\n-----END RSA PRIVATE KEY-----"),
            ("ROUTES_FILE", "routes.toml"),
        ])
        .unwrap();
        assert_eq!(c.github_app_id, Some(12345));
        assert!(c.github_app_private_key.unwrap().expose().contains("-----\nMIIB\n"));
        assert_eq!(c.routes_file, Some(PathBuf::from("routes.toml")));
        for (var, value) in [
            ("GITHUB_REPOS", "acme"),
            ("GITHUB_REPOS", "*/*"),
            ("GITHUB_APP_ID", "x"),
            ("GITHUB_APP_PRIVATE_KEY", "abc"),
        ] {
            let err = config(&[(var, value)]).unwrap_err();
            assert!(err.to_string().starts_with(var), "{var}: {err}");
            assert!(!err.to_string().contains("abc") || var != "GITHUB_APP_PRIVATE_KEY");
        }
    }

    #[test]
    fn problems_name_the_setting_and_its_parameter() {
        let vars = |c: &Config, h: Handler| c.problems(h).iter().map(|p| p.var).collect::<Vec<_>>();
        type Case<'a> = (&'a [(&'a str, &'a str)], Handler, &'a [&'a str]);
        let cases: &[Case<'_>] = &[
            (&[], Handler::Discord, &[]),
            (&[("STAGE", "prod")], Handler::Discord, &["ALLOWED_GUILD_IDS"]),
            (&[("STAGE", "prod")], Handler::GitHub, &[]),
            (&[("STAGE", "prod"), ("ALLOWED_GUILD_IDS", "5")], Handler::Discord, &[]),
            (&[("ENABLE_ALERTS", "true")], Handler::GitHub, &["DISCORD_BOT_TOKEN", "ALERT_CHANNEL_ID"]),
            (&[("ENABLE_ALERTS", "true"), ("DISCORD_BOT_TOKEN", "t")], Handler::GitHub, &["ALERT_CHANNEL_ID"]),
            (&[("ENABLE_ALERTS", "true"), ("DISCORD_BOT_TOKEN", "t"), ("ALERT_CHANNEL_ID", "7")], Handler::GitHub, &[]),
            (
                &[("ENABLE_ALERTS", "true"), ("DISCORD_BOT_TOKEN", "t"), ("ROUTES_TOML", "route = []")],
                Handler::Discord,
                &[],
            ),
        ];
        for (pairs, handler, expected) in cases {
            let c = config(pairs).unwrap();
            assert_eq!(vars(&c, *handler), *expected, "{pairs:?} {handler:?}");
        }
        let prod = config(&[("STAGE", "prod")]).unwrap();
        assert!(prod.problems(Handler::Discord)[0].message.contains("parameter AllowedGuildIds"));
        for (var, _) in SETTINGS.iter().filter(|(_, s)| matches!(s, Source::Parameter(_))) {
            assert!(parameter_of(var).is_some(), "{var}");
        }
        assert_eq!(parameter_of("ALLOWED_GUILD_IDS"), Some("AllowedGuildIds"));
        assert_eq!(secret_keys().count(), 6);
    }

    #[test]
    fn routes_come_from_a_file_or_a_value_not_both() {
        let c = config(&[("ROUTES_TOML", "route = [{channel = 1, repo = \"a/b\"}]")]).unwrap();
        assert!(c.has_file_routes() && c.routes_file.is_none());
        let err = config(&[("ROUTES_TOML", "route = []"), ("ROUTES_FILE", "r.toml")]).unwrap_err();
        assert!(err.to_string().starts_with("ROUTES_TOML is invalid: ROUTES_FILE is set too"), "{err}");
        assert_eq!(
            config(&[("SECRET_ID", "valine-orchestrator/prod")]).unwrap().secret_id.as_deref(),
            Some("valine-orchestrator/prod")
        );
    }
}
