//! Deploy locks: `/lock environment reason [duration]` keeps `/deploy-client` from deploying to an
//! environment until `/unlock` or the lock's expiry. Parsing and the refusal text; the store keeps
//! one lock per environment, written only where none is live.

use serde::{Deserialize, Serialize};

/// The longest a lock may be set for; longer holds are an `/unlock` away.
pub const MAX_LOCK_SECS: u64 = 30 * 24 * 3600;

/// The longest reason a lock keeps.
pub const MAX_REASON: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// As typed (its key is lowercase).
    pub environment: String,
    pub by: u64,
    pub reason: String,
    /// When it was set, and when it ends by itself (`None`: at `/unlock`).
    pub at: u64,
    #[serde(default)]
    pub until: Option<u64>,
}

impl Lock {
    /// Whether it still holds at `now`.
    pub fn holds(&self, now: u64) -> bool {
        self.until.is_none_or(|u| u > now)
    }

    /// How long it lasts from `now`, for people: "for 1h 20m (until …)", "until someone runs
    /// /unlock"; `more` says "for 1h 20m more (until …)".
    pub fn lasting(&self, now: u64, more: bool) -> String {
        match self.until {
            Some(u) => {
                let more = if more { " more" } else { "" };
                format!("for {}{more} (until <t:{u}:f>)", crate::clock::duration(u.saturating_sub(now)))
            }
            None => "until someone runs /unlock".to_string(),
        }
    }

    /// What a refused deploy is told.
    pub fn refusal(&self, now: u64) -> String {
        format!(
            "`{}` is locked by <@{}> {}: {}",
            self.environment,
            self.by,
            self.lasting(now, true),
            crate::markdown::escape_markdown(&self.reason)
        )
    }
}

/// An environment's name as GitHub allows it and as a workflow input can carry it safely:
/// letters, digits, `.`, `-` and `_`, 1 to 64 of them.
pub fn parse_environment(text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.is_empty() || t.len() > 64 || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err("An environment is 1 to 64 letters, digits, `.`, `-` or `_` (production, staging).".into());
    }
    Ok(t.to_string())
}

/// A duration as typed: `30m`, `2h`, `1d`, `1h30m` (a bare number is minutes); at most
/// [`MAX_LOCK_SECS`].
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let shown: String = t.chars().take(20).collect();
    let bad = || format!("`{shown}` is not a duration: write 30m, 2h, 1d or 1h30m.");
    if t.is_empty() {
        return Err(bad());
    }
    let mut total = 0u64;
    // a bare number is minutes
    let t = if t.bytes().all(|b| b.is_ascii_digit()) { format!("{t}m") } else { t };
    let mut number = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = total.saturating_add(n.saturating_mul(unit));
        number.clear();
    }
    if !number.is_empty() {
        return Err(bad());
    }
    within(total).ok_or_else(|| {
        format!("A lock lasts 1 minute to {} days; without a duration it lasts until /unlock.", MAX_LOCK_SECS / 86_400)
    })
}

fn within(secs: u64) -> Option<u64> {
    (60..=MAX_LOCK_SECS).contains(&secs).then_some(secs)
}
