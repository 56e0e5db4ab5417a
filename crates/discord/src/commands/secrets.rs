//! `/set-frontend url:<url> [confirm]` and `/set-api-base url:<url> [confirm]`: admins write the
//! repository variable `FRONTEND_VARIABLE_NAME` and the sealed-box secret `API_BASE_SECRET_NAME`,
//! only with `ALLOW_SECRET_WRITES=true`. The URL passes the URL guard. Without `confirm:true`, a
//! preview with Confirm / Cancel (the relay machinery).
//!
//! What is written is the text typed, once the guard accepts it: the parser's normal form only
//! decides, so that the audit digest is of the text typed and `valinectl audit verify ID` says
//! "match" for it. The value never appears in a reply, an audit record, a log line or the state
//! table: they show the name and the value's fingerprint (`…abcd`, from the keyed audit digest),
//! and a preview keeps a variable's value encrypted at rest and a secret already sealed to the
//! repository's key (fetched when the preview is made). Audit: refusals `blocked`; a write
//! leaves a `pending` record before it and `posted`, `failed` or `dry_run` after it, target = the
//! variable or secret name.

use std::time::Duration;

use valine_clients::github_api::{SealedSecret, SecretWrite, VariableWrite};
use valine_clients::github_error::GitHubError;
use valine_domain::alert::InternalAlert;
use valine_domain::audit::{AuditRecord, AuditResult, MessageDigest};
use valine_domain::authz::authorize_secret_write;
use valine_domain::config::{Config, Feature};
use valine_domain::message::{ButtonStyle, Embed, Message, Reply};
use valine_domain::trace::StepStatus;
use valine_domain::url_guard::{UrlPolicy, check_url};
use valine_store::{Held, PendingConfirmation};

use super::at_rest;
use super::confirm::{self, Press, settled};
use crate::ctx::Ctx;
use crate::interaction::Options;
use crate::spec::{Access, OptKind, OptSpec, Spec, Where};

const URL_OPTIONS_FRONTEND: &[OptSpec] = &[
    OptSpec::new("url", OptKind::String, "Public https URL of the frontend").required().max_length(2048),
    OptSpec::new("confirm", OptKind::Boolean, "Write now instead of showing a preview"),
];

const URL_OPTIONS_API: &[OptSpec] = &[
    OptSpec::new("url", OptKind::String, "Public https base URL of the API").required().max_length(2048),
    OptSpec::new("confirm", OptKind::Boolean, "Write now instead of showing a preview"),
];

pub(crate) const FRONTEND: Spec = Spec {
    name: "set-frontend",
    description: "Set the frontend URL repository variable (admins; ALLOW_SECRET_WRITES; audited)",
    options: URL_OPTIONS_FRONTEND,
    subcommands: &[],
    access: Access::Admins,
    place: Where::Guild,
    summary: "With `ALLOW_SECRET_WRITES=true`: writes the repository variable `FRONTEND_VARIABLE_NAME` (default `FRONTEND_BASE_URL`). Without `confirm:true`, a preview with Confirm / Cancel. Replies and audit show the value's fingerprint, never the value.",
    span: "handle_set_frontend",
};

pub(crate) const API_BASE: Spec = Spec {
    name: "set-api-base",
    description: "Set the API base URL repository secret (admins; ALLOW_SECRET_WRITES; audited)",
    options: URL_OPTIONS_API,
    subcommands: &[],
    access: Access::Admins,
    place: Where::Guild,
    summary: "With `ALLOW_SECRET_WRITES=true`: writes the repository secret `API_BASE_SECRET_NAME` (default `VITE_API_BASE`), sealed to the repository's key. Same preview and audit as `/set-frontend`.",
    span: "handle_set_api_base",
};

#[derive(Clone, PartialEq, Eq)]
pub struct Args {
    pub url: Option<String>,
    pub confirm: bool,
}

/// The URL stays out of debug output (traces, panics).
impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Args").field("url", &self.url.as_ref().map(|_| "…")).field("confirm", &self.confirm).finish()
    }
}

pub(crate) fn parse(o: &Options) -> Args {
    Args { url: o.str("url").map(str::to_string), confirm: o.bool("confirm").unwrap_or(false) }
}

/// Which of the two writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Variable,
    Secret,
}

impl Kind {
    fn of(command: &str) -> Self {
        if command == API_BASE.slash() { Kind::Secret } else { Kind::Variable }
    }

    fn name(self, config: &Config) -> String {
        match self {
            Kind::Variable => config.frontend_variable_name.clone(),
            Kind::Secret => config.api_base_secret_name.clone(),
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Variable => "repository variable",
            Kind::Secret => "repository secret",
        }
    }
}

/// A refusal: what the caller is told, and what the audit record keeps.
struct Refused {
    told: String,
    audited: String,
}

impl Refused {
    fn plain(text: String) -> Self {
        Self { audited: text.clone(), told: text }
    }
}

/// Who may write and whether writes are set up: checked at the command and again at the press.
fn allowed(ctx: &Ctx<'_>) -> Result<(), Refused> {
    let config = &ctx.services.config;
    authorize_secret_write(ctx.caller(), config).map_err(|r| Refused::plain(r.to_string()))?;
    let mut missing = config.missing_for(Feature::GitHubRuns);
    if config.audit_hmac_key.is_none() {
        missing.push("AUDIT_HMAC_KEY");
    }
    if !missing.is_empty() || ctx.services.github.is_none() {
        return Err(Refused::plain(format!("Repository writes are not configured: set {}.", missing.join(" and "))));
    }
    Ok(())
}

/// Everything checked before a write. `Ok` is the URL as typed: the guard decides on the text
/// given (and on what the parser makes of it), and the text is what gets written.
fn check(ctx: &Ctx<'_>, url: Option<&str>) -> Result<String, Refused> {
    allowed(ctx)?;
    let Some(url) = url else { return Err(Refused::plain("Give the `url` to write.".into())) };
    let config = &ctx.services.config;
    let policy = UrlPolicy { allowed_domains: config.allowed_domains.clone(), safe_local: config.safe_local };
    check_url(url, &policy).map(|_| url.to_string()).map_err(|reason| Refused {
        told: format!("`url` was refused: {reason}."),
        audited: format!("`url` was refused: {}.", reason.without_input()),
    })
}

/// What a write sends: a variable's value, or a secret sealed to the repository's key.
enum Writing {
    Variable(String),
    Secret(SealedSecret),
}

/// Kept back from the answer budget while fetching the repository's key: the write and its
/// audit still follow.
const KEY_RESERVE: Duration = Duration::from_millis(900);

/// `url` sealed to the repository's public key (one GitHub call): only GitHub can open it.
/// `Err` is the text to answer.
async fn seal_to_repository(ctx: &mut Ctx<'_>, url: &str) -> Result<SealedSecret, String> {
    let (Some(github), Some(repo)) = (ctx.services.github.clone(), ctx.services.config.github_repo.clone()) else {
        return Err("GitHub is not configured.".into());
    };
    let limit = Duration::from_millis(1500).min(ctx.remaining().saturating_sub(KEY_RESERVE));
    let key = ctx
        .step("github.secrets_public_key", limit, || GitHubError::Timeout, github.secrets_public_key(&repo))
        .await
        .map_err(|e| format!("The repository's public key could not be read ({e}); nothing was written"))?;
    key.seal(url.as_bytes()).map_err(|e| format!("The value could not be sealed ({e}); nothing was written"))
}

fn digest(ctx: &Ctx<'_>, value: &str) -> Option<MessageDigest> {
    let key = ctx.services.config.audit_hmac_key.as_ref()?;
    Some(MessageDigest::compute(key.expose().as_bytes(), value))
}

fn record(ctx: &Ctx<'_>, result: AuditResult, name: &str, digest: Option<&MessageDigest>) -> AuditRecord {
    let mut r = AuditRecord::new(&ctx.trace_id(), ctx.user_id, &ctx.command, result)
        .target(name)
        .meta("username", &ctx.user_name);
    if let Some(d) = digest {
        r = r.with_digest(d);
    }
    r
}

async fn refuse(ctx: &mut Ctx<'_>, name: &str, refused: Refused) -> Reply {
    let r = record(ctx, AuditResult::Blocked, name, None).meta("reason", &refused.audited);
    ctx.blocked(&refused.told, r).await
}

pub(crate) async fn run(ctx: &mut Ctx<'_>, Args { url, confirm }: Args) -> Reply {
    let kind = Kind::of(&ctx.command);
    let name = kind.name(&ctx.services.config);
    let url = match check(ctx, url.as_deref()) {
        Ok(u) => u,
        Err(refused) => return refuse(ctx, &name, refused).await,
    };
    ctx.rec.note("checks", StepStatus::Ok, None);
    if !confirm {
        return preview(ctx, kind, &name, url).await;
    }
    match ctx.first_time().await {
        Ok(true) => {}
        Ok(false) => {
            let refused = Refused::plain("This interaction was already handled; nothing was written again.".into());
            return refuse(ctx, &name, refused).await;
        }
        Err(e) => return ctx.store_unavailable(&e, "nothing was written").await,
    }
    let Some(digest) = digest(ctx, &url) else {
        return refuse(ctx, &name, Refused::plain("Repository writes are not configured: set AUDIT_HMAC_KEY.".into()))
            .await;
    };
    let writing = match kind {
        Kind::Variable => Writing::Variable(url),
        Kind::Secret => match seal_to_repository(ctx, &url).await {
            Ok(sealed) => Writing::Secret(sealed),
            Err(text) => return ctx.fail(&text),
        },
    };
    let text = write(ctx, kind, &name, &writing, &digest).await;
    Reply::Message(Message::text(text).ephemeral())
}

async fn preview(ctx: &mut Ctx<'_>, kind: Kind, name: &str, url: String) -> Reply {
    let config = ctx.services.config.clone();
    let Some(digest) = digest(ctx, &url) else {
        return refuse(ctx, name, Refused::plain("Repository writes are not configured: set AUDIT_HMAC_KEY.".into()))
            .await;
    };
    // What waits for the Confirm button is never the value itself.
    let held = match kind {
        Kind::Variable => match at_rest::seal(&config, &url) {
            Some(value) => Held::RepoVariable { value, digest: digest.hex().to_string() },
            None => return ctx.fail("The value could not be encrypted; nothing was written."),
        },
        Kind::Secret => match seal_to_repository(ctx, &url).await {
            Ok(sealed) => Held::RepoSecret {
                key_id: sealed.key_id,
                encrypted_value: sealed.encrypted_value,
                digest: digest.hex().to_string(),
            },
            Err(text) => return ctx.fail(&text),
        },
    };
    let stored = match confirm::hold(ctx, held, "nothing was written").await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let expires_at = stored.expires_at;
    let repo = ctx.services.config.github_repo.as_ref().map(ToString::to_string).unwrap_or_default();
    let embed = Embed::new(format!("Write the {} `{name}`?", kind.noun()))
        .colour(0x58_65_F2)
        .field("Repository", format!("`{repo}`"), true)
        .field("Value", format!("fingerprint `{}`", digest.fingerprint()), true)
        .footer(format!("Preview · trace {}", stored.trace_id));
    let happens = "nothing is written until you confirm";
    confirm::preview(embed, ("Write", ButtonStyle::Danger), &stored.id, happens, expires_at)
}

/// Confirm or Cancel on a write preview, once its confirmation was taken by its owner.
pub(crate) async fn confirmed(ctx: &mut Ctx<'_>, stored: PendingConfirmation, press: Press) -> Reply {
    if press == Press::Cancel {
        return confirm::cancelled(ctx, &stored, "Nothing was written");
    }
    let kind = Kind::of(&ctx.command);
    let name = kind.name(&ctx.services.config);
    let (writing, digest) = match (kind, stored.held) {
        (Kind::Variable, Held::RepoVariable { value, digest }) => match at_rest::open(&ctx.services.config, &value) {
            Some(url) => (Writing::Variable(url), digest),
            // AUDIT_HMAC_KEY changed since the preview, or the item was altered.
            None => return confirm::damaged("nothing was written"),
        },
        (Kind::Secret, Held::RepoSecret { key_id, encrypted_value, digest }) => {
            (Writing::Secret(SealedSecret { key_id, encrypted_value }), digest)
        }
        _ => return confirm::damaged("nothing was written"),
    };
    let Some(digest) = MessageDigest::from_hex(&digest) else {
        return confirm::damaged("nothing was written");
    };
    // Checked again at the press; a sealed secret's URL was checked at the preview, as only
    // GitHub can open it now.
    let checked = match &writing {
        Writing::Variable(url) => check(ctx, Some(url)).map(|_| ()),
        Writing::Secret(_) => allowed(ctx),
    };
    if let Err(refused) = checked {
        let r = record(ctx, AuditResult::Blocked, &name, None).meta("reason", &refused.audited);
        let text = ctx.blocked_text(&refused.told, r).await;
        return settled(format!("⚠️ {text}\n-# trace `{}`", ctx.trace_id()));
    }
    settled(write(ctx, kind, &name, &writing, &digest).await)
}

/// Kept back from the answer budget while GitHub writes: the outcome record and the answer
/// still need their time.
const OUTCOME_RESERVE: Duration = Duration::from_millis(400);

/// Writes the intent, the value, the outcome: the text to answer with. `digest` is the keyed
/// digest of the text typed.
async fn write(ctx: &mut Ctx<'_>, kind: Kind, name: &str, writing: &Writing, digest: &MessageDigest) -> String {
    let intent = record(ctx, AuditResult::Pending, name, Some(digest));
    if let Err(e) = ctx.audit("audit.intent", &intent).await {
        let title = "Audit write failed: a repository write was refused";
        ctx.alert(InternalAlert::AuditWriteFailed, title, &e.to_string(), Duration::from_millis(200)).await;
        ctx.rec.fail(&e);
        return format!(
            "⚠️ The audit store is unavailable ({e}), so nothing was written.\n-# trace `{}`",
            ctx.trace_id()
        );
    }
    let (Some(github), Some(repo)) = (ctx.services.github.clone(), ctx.services.config.github_repo.clone()) else {
        return "⚠️ GitHub is not configured.".into();
    };
    let limit = Duration::from_millis(2200).min(ctx.remaining().saturating_sub(OUTCOME_RESERVE));
    let written: Result<&'static str, GitHubError> = match writing {
        Writing::Variable(url) => ctx
            .step("github.set_variable", limit, || GitHubError::Timeout, github.set_variable(&repo, name, url))
            .await
            .map(|w| match w {
                VariableWrite::Updated => "updated",
                VariableWrite::Created => "created",
                VariableWrite::DryRun => "dry_run",
            }),
        Writing::Secret(sealed) => ctx
            .step("github.set_secret", limit, || GitHubError::Timeout, github.put_sealed_secret(&repo, name, sealed))
            .await
            .map(|w| match w {
                SecretWrite::Updated => "updated",
                SecretWrite::Created => "created",
                SecretWrite::DryRun => "dry_run",
            }),
    };
    let result = match written {
        Ok("dry_run") => AuditResult::DryRun,
        Ok(_) => AuditResult::Posted,
        Err(_) => AuditResult::Failed,
    };
    let mut outcome = record(ctx, result, name, Some(digest)).meta("intent_audit_id", &intent.audit_id);
    match &written {
        Ok(how) => outcome = outcome.meta("write", *how),
        Err(e) => outcome = outcome.meta("reason", e.to_string()),
    }
    let outcome_written = ctx.audit("audit.outcome", &outcome).await;
    let audit_id = if outcome_written.is_ok() { &outcome.audit_id } else { &intent.audit_id };
    let mut note = String::new();
    if let Err(e) = &outcome_written {
        let title = "Audit write failed: a repository write's outcome is not recorded";
        ctx.alert(InternalAlert::AuditWriteFailed, title, &e.to_string(), Duration::from_millis(100)).await;
        note = format!("\n⚠️ The outcome could not be audited; the intent record `{}` stands.", intent.audit_id);
    }
    let tail = format!("fingerprint `{}` · audit `{audit_id}` · trace `{}`", digest.fingerprint(), ctx.trace_id());
    tracing::info!(result = result.as_str(), target = name, audit_id = %audit_id, fingerprint = %digest.fingerprint(), "repository write done");
    let noun = kind.noun();
    match written {
        Ok("dry_run") => format!("🧪 DRY_RUN: nothing was written (the {noun} `{name}`).\n{tail}{note}"),
        Ok(how) => format!("✅ The {noun} `{name}` was {how}.\n{tail}{note}"),
        Err(GitHubError::Timeout) => {
            ctx.rec.fail("GitHub did not answer in time");
            format!(
                "⚠️ GitHub did not answer in time: the {noun} `{name}` may or may not have been written; check it before retrying.\n{tail}{note}"
            )
        }
        Err(e) => {
            ctx.rec.fail(&e);
            format!("⚠️ Nothing was written: {e}.\n{tail}{note}")
        }
    }
}
