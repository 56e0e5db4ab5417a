//! Known issues and the one safe retry. A signature (`crate::fingerprint`) can be linked to the
//! issue that tracks it (its cards then say so at the top and ping no one) or marked transient (a
//! failure with it may be re-run once). Whether a failure is re-run is decided here, without I/O;
//! the incident desk asks the store for what this needs and carries the verdict out.

use serde::{Deserialize, Serialize};

use crate::fingerprint::{Flake, SEEN_WINDOW_DAYS};
use crate::routing::glob;

/// What the team knows about a signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownIssue {
    pub signature: String,
    /// The tracking issue: `#42`, or an issue's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// A failure that goes away when run again: it may be re-run once.
    #[serde(default)]
    pub transient: bool,
    /// Who said so last, and when (epoch seconds).
    pub by: u64,
    pub at: u64,
}

impl KnownIssue {
    /// Whether its cards ping no one: it is linked to the issue that tracks it.
    pub fn silences(&self) -> bool {
        self.issue.is_some()
    }

    /// The line at the top of a card with this signature: `known: #42 — flaky DNS`.
    pub fn header(&self) -> String {
        let mut line = String::from("known: ");
        line.push_str(match &self.issue {
            Some(issue) => issue,
            None => "transient",
        });
        if let Some(note) = &self.note {
            line.push_str(" — ");
            line.push_str(note);
        }
        if self.issue.is_some() && self.transient {
            line.push_str(" (transient)");
        }
        line
    }

    /// `self` with what `other` adds: a link replaces the issue and note, a transient mark adds
    /// itself; the newest hand is the one named.
    pub fn merged(mut self, other: KnownIssue) -> KnownIssue {
        if other.issue.is_some() {
            self.issue = other.issue;
            self.note = other.note;
        }
        self.transient |= other.transient;
        self.by = other.by;
        self.at = other.at;
        self
    }
}

/// The longest note a known issue keeps.
pub const MAX_NOTE: usize = 200;

/// A tracking issue as typed: `#42`, `42`, or `https://github.com/owner/name/issues/42` (or
/// `/pull/42`). Answers the form a card shows: `#42`, or the URL.
pub fn parse_issue(text: &str) -> Result<String, String> {
    let t = text.trim();
    let number = t.strip_prefix('#').unwrap_or(t);
    if number.len() <= 10
        && number.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = number.parse::<u64>()
        && n > 0
    {
        return Ok(format!("#{n}"));
    }
    let Some(path) = t.strip_prefix("https://github.com/") else {
        return Err(format!("`{}` is not an issue: give #42 or https://github.com/owner/name/issues/42", short(t)));
    };
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let ok_name = |s: &str| {
        !s.is_empty() && s.len() <= 100 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    match parts.as_slice() {
        [owner, name, kind @ ("issues" | "pull"), n]
            if ok_name(owner)
                && ok_name(name)
                && !n.is_empty()
                && n.len() <= 10
                && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(format!("https://github.com/{owner}/{name}/{kind}/{n}"))
        }
        _ => Err(format!("`{}` is not an issue: give #42 or https://github.com/owner/name/issues/42", short(t))),
    }
}

/// A note as kept: one line, at most [`MAX_NOTE`] characters, without mentions or markdown that
/// could ping or link.
pub fn clean_note(text: &str) -> Option<String> {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = one_line.chars().take(MAX_NOTE).collect();
    let cut = cut.replace('@', "@\u{200b}");
    (!cut.is_empty()).then(|| crate::markdown::escape_markdown(&cut).into_owned())
}

fn short(t: &str) -> String {
    t.chars().take(60).collect()
}

/// The workflows never re-run by default (`AUTO_RETRY_NEVER`): what a second run could change.
pub const RETRY_NEVER_DEFAULT: &[&str] = &["*deploy*", "*release*", "*publish*"];

/// How many flakes in [`SEEN_WINDOW_DAYS`] make a signature worth one retry.
pub const RETRY_AFTER_FLAKES: usize = 2;

/// Everything the retry verdict reads about one failure.
#[derive(Debug, Clone, Copy)]
pub struct RetryCase<'a> {
    /// A route of this channel allows retries (`retry = true`, `/subscribe retry:true`).
    pub route_allows: bool,
    /// The workflow's name and its file (`.github/workflows/ci.yml`), both matched by the never list.
    pub workflow: &'a str,
    pub workflow_file: &'a str,
    /// `AUTO_RETRY_NEVER`.
    pub never: &'a [String],
    pub attempt: u64,
    /// The incident is muted.
    pub muted: bool,
    /// The failure's signature, when its log had one.
    pub signature: Option<&'a str>,
    pub known: Option<&'a KnownIssue>,
    /// Flakes of the signature in the window.
    pub flakes: usize,
}

/// Whether to re-run a failure's failed jobs, and if not, why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryVerdict {
    Retry,
    Not(&'static str),
}

/// The verdict on one failure. Once per run is the store's part (a conditional write).
pub fn retry_verdict(c: &RetryCase<'_>) -> RetryVerdict {
    use RetryVerdict::Not;
    if !c.route_allows {
        return Not("no route of this channel allows retries");
    }
    if c.attempt > 1 {
        return Not("this run was already re-run");
    }
    let file = c.workflow_file.rsplit('/').next().unwrap_or(c.workflow_file);
    let never = |name: &str| {
        !name.is_empty() && c.never.iter().any(|p| glob(&p.to_ascii_lowercase(), &name.to_ascii_lowercase()))
    };
    if never(c.workflow) || never(file) {
        return Not("the workflow is in AUTO_RETRY_NEVER");
    }
    if c.muted {
        return Not("the incident is muted");
    }
    if c.signature.is_none() {
        return Not("the failure has no signature");
    }
    if c.known.is_some_and(|k| k.transient) || c.flakes >= RETRY_AFTER_FLAKES {
        RetryVerdict::Retry
    } else {
        Not("the signature is neither transient nor a repeated flake")
    }
}

/// Flakes of `signature` in the last [`SEEN_WINDOW_DAYS`].
pub fn recent_flakes(flakes: &[Flake], signature: &str, now: u64) -> usize {
    let since = now.saturating_sub(SEEN_WINDOW_DAYS * 24 * 3600);
    flakes.iter().filter(|f| f.signature.as_deref() == Some(signature) && f.at >= since).count()
}

/// A re-run the bot asked for: at most one per run (the store writes it only where none is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retry {
    pub repository: String,
    pub run_id: u64,
    pub run_number: u64,
    pub workflow: String,
    pub branch: String,
    #[serde(default)]
    pub signature: Option<String>,
    #[serde(default)]
    pub job: Option<String>,
    /// When it was asked for (epoch seconds).
    pub at: u64,
}

/// How long a retry is taken to be under way: a replay of the failure it retries posts nothing
/// within it, and posts the card after it (the re-run never reported back).
pub const RETRY_UNDER_WAY_SECS: u64 = 3600;
