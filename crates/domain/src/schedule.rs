//! GitHub Actions schedules: the five-field cron of a workflow's `on.schedule`, always in UTC,
//! and which runs were expected between two instants. Pure: the tick reads the workflow files
//! and the runs; this decides what was missed.
//!
//! GitHub's cron is POSIX cron: minute, hour, day of month, month, day of week; `*`, `a-b`, lists
//! `a,b`, steps `*/n` and `a-b/n` (and `a/n`, from `a` to the end), month and day names
//! (`JAN`–`DEC`, `SUN`–`SAT`), `7` also Sunday. When both the day of month and the day of week are
//! restricted, a day matching either runs (as cron does). GitHub runs a schedule at most once every
//! five minutes, so ticks closer together than that count once.

use std::fmt;

use crate::clock::civil_from_days;

/// GitHub's shortest interval between scheduled runs.
pub const MIN_INTERVAL_SECS: u64 = 300;

/// How long after an expected tick a run may still start (GitHub delays schedules under load).
pub const GRACE_SECS: u64 = 15 * 60;

/// How many expected ticks without a run make a missed schedule.
pub const MISSED_AFTER: usize = 2;

/// One schedule, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    text: String,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// The day-of-month and day-of-week fields were `*` (unrestricted).
    any_day: bool,
    any_weekday: bool,
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One field's allowed values, as a bit set over `lo..=hi`.
fn field(text: &str, what: &str, lo: u32, hi: u32, names: &[&str]) -> Result<u64, String> {
    let value = |s: &str| -> Result<u32, String> {
        let upper = s.to_ascii_uppercase();
        if let Some(i) = names.iter().position(|n| *n == upper) {
            // month names count from 1, day names from 0
            return Ok(i as u32 + lo);
        }
        let n: u32 = s.parse().map_err(|_| format!("{what}: `{s}` is not a number"))?;
        if n < lo || n > hi {
            return Err(format!("{what}: {n} is outside {lo}-{hi}"));
        }
        Ok(n)
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        if part.is_empty() {
            return Err(format!("{what}: an empty list item"));
        }
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| format!("{what}: step `{s}` is not a number"))?;
                if step == 0 {
                    return Err(format!("{what}: a step of 0"));
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (from, to) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a)?, value(b)?);
            if a > b {
                return Err(format!("{what}: the range {range} runs backwards"));
            }
            (a, b)
        } else {
            let a = value(range)?;
            // `a/n` runs from a to the end; a single value is itself
            (a, if part.contains('/') { hi } else { a })
        };
        let mut v = from;
        while v <= to {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

impl Cron {
    pub fn parse(text: &str) -> Result<Self, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields.as_slice() else {
            return Err(format!("`{}` has {} fields, not 5", text.trim(), fields.len()));
        };
        let no_names: &[&str] = &[];
        // 7 is Sunday too (`5-7` is Friday to Sunday)
        let weekdays = field(weekday, "day of week", 0, 7, &WEEKDAYS)?;
        Ok(Self {
            text: fields.join(" "),
            minutes: field(minute, "minute", 0, 59, no_names)?,
            hours: field(hour, "hour", 0, 23, no_names)? as u32,
            days: field(day, "day of month", 1, 31, no_names)? as u32,
            months: field(month, "month", 1, 12, &MONTHS)? as u16,
            weekdays: ((weekdays | (weekdays >> 7)) & 0x7f) as u8,
            any_day: *day == "*",
            any_weekday: *weekday == "*",
        })
    }

    /// Whether the schedule runs on this UTC day: `days` since the epoch.
    fn runs_on(&self, days: i64) -> bool {
        let (_, month, day) = civil_from_days(days);
        // 1970-01-01 was a Thursday
        let weekday = (days + 4).rem_euclid(7) as u32;
        if self.months & (1 << month) == 0 {
            return false;
        }
        let by_day = self.days & (1 << day) != 0;
        let by_weekday = self.weekdays & (1 << weekday) != 0;
        match (self.any_day, self.any_weekday) {
            (true, true) => true,
            (false, true) => by_day,
            (true, false) => by_weekday,
            (false, false) => by_day || by_weekday,
        }
    }

    /// The first tick strictly after `t` (epoch seconds), within five years; `None` for a
    /// schedule that never runs (`0 0 31 2 *`).
    pub fn next_after(&self, t: u64) -> Option<u64> {
        let start = (t / 60 + 1) * 60;
        let first = (start / 86_400) as i64;
        for day in first..first + 5 * 366 {
            if !self.runs_on(day) {
                continue;
            }
            let from = if day == first { (start % 86_400) / 60 } else { 0 };
            for m in from..1440 {
                let (h, mi) = (m / 60, m % 60);
                if self.hours & (1 << h) != 0 && self.minutes & (1 << mi) != 0 {
                    return Some(day as u64 * 86_400 + m * 60);
                }
            }
        }
        None
    }

    /// The ticks in `(from, to]`, GitHub's five-minute minimum applied, at most `cap`.
    pub fn ticks(&self, from: u64, to: u64, cap: usize) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::new();
        let mut t = from;
        while out.len() < cap {
            let Some(next) = self.next_after(t) else { break };
            if next > to {
                break;
            }
            if out.last().is_none_or(|last| next >= last + MIN_INTERVAL_SECS) {
                out.push(next);
            }
            t = next;
        }
        out
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Scheduled runs that did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missed {
    /// How many expected ticks passed (with their grace) without a run, at most 100.
    pub count: usize,
    /// The first and the last of them.
    pub first: u64,
    pub last: u64,
}

/// What a workflow's schedules expected since `since` (its last scheduled run, or when the bot
/// started watching it) and did not get by `now`: `Some` once [`MISSED_AFTER`] ticks are past
/// their [`GRACE_SECS`].
pub fn missed(crons: &[Cron], since: u64, now: u64) -> Option<Missed> {
    let due_by = now.checked_sub(GRACE_SECS)?;
    let mut ticks: Vec<u64> = crons.iter().flat_map(|c| c.ticks(since, due_by, 100)).collect();
    ticks.sort_unstable();
    ticks.dedup();
    // Two schedules of one workflow still run it at most once per five minutes.
    let mut kept: Vec<u64> = Vec::new();
    for t in ticks {
        if kept.last().is_none_or(|last| t >= last + MIN_INTERVAL_SECS) {
            kept.push(t);
        }
    }
    kept.truncate(100);
    match (kept.first(), kept.last()) {
        (Some(&first), Some(&last)) if kept.len() >= MISSED_AFTER => Some(Missed { count: kept.len(), first, last }),
        _ => None,
    }
}

/// What a workflow file says about how it starts, as far as the watchdog needs: its `on.schedule`
/// crons (as written) and whether it has a `workflow_dispatch` trigger ("Run now" needs one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Triggers {
    pub crons: Vec<String>,
    pub dispatch: bool,
}

/// Reads the triggers of a workflow file. A small reader of the block style GitHub's own
/// templates and nearly every workflow use (`on:` with nested keys, `- cron: '…'` items), and of
/// the one-line forms `on: workflow_dispatch` and `on: [push, workflow_dispatch]`; a file in a
/// style it does not read gives no schedules (the watchdog then watches nothing there, which is
/// never a false alarm).
pub fn triggers(yaml: &str) -> Triggers {
    let mut out = Triggers::default();
    // (indent of the `on:` key's children, once inside it), and whether inside `schedule:`
    let mut on_children: Option<usize> = None;
    let mut in_on = false;
    let mut in_schedule: Option<usize> = None;
    for raw in yaml.lines() {
        let line = strip_comment(raw);
        if line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if indent == 0 {
            in_on = false;
            in_schedule = None;
            on_children = None;
            let Some((key, value)) = text.split_once(':') else { continue };
            if unquote(key) != "on" {
                continue;
            }
            let value = value.trim();
            if value.is_empty() {
                in_on = true;
            } else {
                let names = value.trim_start_matches('[').trim_end_matches(']');
                out.dispatch |= names.split(',').any(|n| unquote(n) == "workflow_dispatch");
            }
            continue;
        }
        if !in_on {
            continue;
        }
        let children = *on_children.get_or_insert(indent);
        if indent <= children {
            in_schedule = None;
        }
        if indent == children {
            let key = text.split(':').next().map(unquote).unwrap_or_default();
            if key == "workflow_dispatch" {
                out.dispatch = true;
            }
            if key == "schedule" {
                in_schedule = Some(indent);
            }
            continue;
        }
        if in_schedule.is_some() {
            let item = text.trim_start_matches('-').trim();
            if let Some(cron) = item.strip_prefix("cron:").or_else(|| item.strip_prefix("\"cron\":")) {
                out.crons.push(unquote(cron).to_string());
            }
        }
    }
    out
}

fn strip_comment(line: &str) -> &str {
    // a `#` after a blank starts a comment, outside quotes (crons hold no `#`)
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if prev.is_whitespace() => return &line[..i],
            _ => {}
        }
        prev = c;
    }
    line
}

fn unquote(s: &str) -> &str {
    s.trim().trim_matches(|c| c == '\'' || c == '"').trim()
}
