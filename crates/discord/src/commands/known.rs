//! `/known link|transient|list|forget`: what the team knows about a failure signature. A linked
//! signature's cards say so at the top and ping no one; a transient one may be re-run once where
//! a route allows retries. Admins and `RESPONDER_ROLE_IDS`; every change audited, every refusal
//! audited `blocked`. The "Mark known…" button of a card opens a form that links the same way.

use std::time::Duration;

use valine_domain::audit::{AuditRecord, AuditResult};
use valine_domain::authz::authorize_responder;
use valine_domain::clock::now_secs;
use valine_domain::custom_id::CustomId;
use valine_domain::known::{KnownIssue, clean_note, parse_issue};
use valine_domain::message::{Message, Modal, Reply, TextInput, truncate};

use crate::ctx::Ctx;
use crate::interaction::Options;
use crate::spec::{Access, OptKind, OptSpec, Spec, SubSpec, Where};

const SIGNATURE: OptSpec =
    OptSpec::new("signature", OptKind::String, "The failure signature, as a card shows it (s0a1b2c3d4e)")
        .required()
        .max_length(11);

pub(crate) const SPEC: Spec = Spec {
    name: "known",
    description: "Known issues: link a failure signature to its issue, mark it transient, list or forget",
    options: &[],
    subcommands: &[
        SubSpec {
            name: "link",
            description: "Link a failure signature to the issue that tracks it: its cards say so and ping no one",
            options: &[
                SIGNATURE,
                OptSpec::new("issue", OptKind::String, "#42 or the issue's URL").required().max_length(200),
                OptSpec::new("note", OptKind::String, "A few words shown on its cards").max_length(200),
            ],
        },
        SubSpec {
            name: "transient",
            description: "Mark a failure signature transient: re-run once where a route allows retries",
            options: &[SIGNATURE],
        },
        SubSpec { name: "list", description: "The known issues", options: &[] },
        SubSpec { name: "forget", description: "Forget what is known of a failure signature", options: &[SIGNATURE] },
    ],
    access: Access::AdminsOr("RESPONDER_ROLE_IDS"),
    place: Where::Guild,
    summary: "Links a failure signature to its issue (its cards then say `known: #42 — note` at the top and ping no one), marks it transient (one retry where a route has `retry`), lists or forgets them. Audited.",
    span: "handle_known",
};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Args {
    pub sub: Option<String>,
    pub signature: Option<String>,
    pub issue: Option<String>,
    pub note: Option<String>,
}

pub(crate) fn parse(o: &Options) -> Args {
    Args {
        sub: o.subcommand().map(str::to_string),
        signature: o.str("signature").map(str::to_string),
        issue: o.str("issue").map(str::to_string),
        note: o.str("note").map(str::to_string),
    }
}

const STORE_BUDGET: Duration = Duration::from_millis(1500);

/// A signature as the fingerprint makes them: `s` and 10 hex digits.
fn valid_signature(s: &str) -> bool {
    s.len() == 11 && s.starts_with('s') && s.bytes().skip(1).all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// `/known …`.
pub(crate) async fn run(ctx: &mut Ctx<'_>, args: Args) -> Reply {
    let sub = args.sub.clone().unwrap_or_default();
    let needs_signature = sub != "list";
    let signature = match checked(ctx, &sub, args.signature.as_deref().filter(|_| needs_signature)).await {
        Ok(s) => s,
        Err(reply) => return reply,
    };
    match sub.as_str() {
        "list" => list(ctx).await,
        "link" => link_checked(ctx, signature, args.issue.as_deref().unwrap_or(""), args.note.as_deref()).await,
        "transient" => {
            let known =
                KnownIssue { signature, issue: None, note: None, transient: true, by: ctx.user_id, at: now_secs() };
            keep(ctx, known, "transient").await
        }
        "forget" => forget(ctx, &signature).await,
        _ => {
            let record = ctx.blocked_record().meta("subcommand", truncate(&sub, 20));
            ctx.blocked("Use /known link, /known transient, /known list or /known forget.", record).await
        }
    }
}

/// The checks of every sub-command and of the form, each once: the caller is an admin or a
/// responder, and `signature` (when one is asked for) is one. Answers the signature ("" for none).
async fn checked(ctx: &mut Ctx<'_>, sub: &str, signature: Option<&str>) -> Result<String, Reply> {
    let mut record = ctx.blocked_record().meta("subcommand", truncate(sub, 20));
    if let Some(s) = signature {
        record = record.meta("signature", truncate(s, 20));
    }
    if let Err(refusal) = authorize_responder(ctx.caller(), &ctx.services.config) {
        return Err(ctx.blocked(&refusal.to_string(), record).await);
    }
    if sub == "list" {
        return Ok(String::new());
    }
    match signature.filter(|s| valid_signature(s)) {
        Some(s) => Ok(s.to_string()),
        None => {
            let reason = "Name a signature as a card shows it: `s` and 10 hex digits (s0a1b2c3d4e).";
            Err(ctx.blocked(reason, record).await)
        }
    }
}

/// The form "Mark known…" opens: the issue and a note for `signature`.
pub(crate) fn form(signature: &str) -> Modal {
    let input = |custom_id: &str, label: &str, required: bool, placeholder: &str| TextInput {
        custom_id: custom_id.into(),
        label: label.into(),
        paragraph: false,
        required,
        max_length: 200,
        placeholder: Some(placeholder.into()),
    };
    Modal {
        custom_id: CustomId::KnownForm(signature.to_string()).to_string(),
        title: format!("Mark {signature} known"),
        inputs: vec![
            input("issue", "Issue", true, "#42 or https://github.com/owner/name/issues/42"),
            input("note", "Note", false, "flaky DNS in integration tests"),
        ],
    }
}

/// The card's form, submitted: checked as `/known link` is, then linked.
pub(crate) async fn link(ctx: &mut Ctx<'_>, signature: &str, issue: &str, note: Option<&str>) -> Reply {
    match checked(ctx, "link", Some(signature)).await {
        Ok(signature) => link_checked(ctx, signature, issue, note).await,
        Err(reply) => reply,
    }
}

/// Links an already checked `signature` to `issue`.
async fn link_checked(ctx: &mut Ctx<'_>, signature: String, issue: &str, note: Option<&str>) -> Reply {
    let issue = match parse_issue(issue) {
        Ok(i) => i,
        Err(reason) => {
            let record = ctx.blocked_record().meta("subcommand", "link").meta("signature", &signature);
            return ctx.blocked(&reason, record).await;
        }
    };
    let known = KnownIssue {
        signature,
        issue: Some(issue),
        note: note.and_then(clean_note),
        transient: false,
        by: ctx.user_id,
        at: now_secs(),
    };
    keep(ctx, known, "link").await
}

async fn keep(ctx: &mut Ctx<'_>, known: KnownIssue, what: &str) -> Reply {
    let ledger = ctx.services.stores.signatures.clone();
    let kept = match ctx.store_step("store.know", STORE_BUDGET, ledger.know(&known)).await {
        Ok(k) => k,
        Err(e) => return ctx.store_unavailable(&e, "nothing was marked").await,
    };
    let mut record = AuditRecord::new(&ctx.trace_id(), ctx.user_id, &ctx.command, AuditResult::Posted)
        .meta("username", &ctx.user_name)
        .meta("subcommand", what)
        .meta("signature", &kept.signature)
        .meta("transient", kept.transient.to_string());
    if let Some(issue) = &kept.issue {
        record = record.meta("issue", issue);
    }
    let audited = ctx.audit("audit.known", &record).await;
    let then = if kept.silences() {
        "Its next cards say so at the top and ping no one."
    } else {
        "A failure with it is re-run once where a route allows retries."
    };
    let mut text = format!("✅ `{}` — {}. {then}", kept.signature, kept.header());
    if audited.is_err() {
        text.push_str(" (The audit record could not be written; the change stands.)");
    }
    Reply::Message(Message::text(text).ephemeral())
}

async fn forget(ctx: &mut Ctx<'_>, signature: &str) -> Reply {
    let ledger = ctx.services.stores.signatures.clone();
    let forgotten = match ctx.store_step("store.forget_known", STORE_BUDGET, ledger.forget_known(signature)).await {
        Ok(f) => f,
        Err(e) => return ctx.store_unavailable(&e, "nothing was forgotten").await,
    };
    let record = AuditRecord::new(&ctx.trace_id(), ctx.user_id, &ctx.command, AuditResult::Posted)
        .meta("username", &ctx.user_name)
        .meta("subcommand", "forget")
        .meta("signature", signature)
        .meta("found", forgotten.to_string());
    let audited = ctx.audit("audit.known", &record).await;
    let mut text = if forgotten {
        format!("✅ `{signature}` is no longer known: its next cards ping as usual.")
    } else {
        format!("Nothing was known of `{signature}`.")
    };
    if audited.is_err() {
        text.push_str(" (The audit record could not be written; the change stands.)");
    }
    Reply::Message(Message::text(text).ephemeral())
}

async fn list(ctx: &mut Ctx<'_>) -> Reply {
    let ledger = ctx.services.stores.signatures.clone();
    let all = match ctx.store_step("store.known_issues", STORE_BUDGET, ledger.known_issues()).await {
        Ok(all) => all,
        Err(e) => return ctx.store_unavailable(&e, "nothing was listed").await,
    };
    if all.is_empty() {
        return Reply::Message(Message::text("No known issues. Link one with /known link.").ephemeral());
    }
    let lines: Vec<String> = all
        .iter()
        .take(25)
        .map(|k| format!("• `{}` {} (by <@{}> <t:{}:R>)", k.signature, k.header(), k.by, k.at))
        .collect();
    let more = if all.len() > 25 { format!("\n… and {} more", all.len() - 25) } else { String::new() };
    Reply::Message(Message::text(truncate(&format!("**Known issues**\n{}{more}", lines.join("\n")), 1900)).ephemeral())
}
