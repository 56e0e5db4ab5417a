//! Failure fingerprints: the first meaningful error line of a failing job's log, normalised so
//! that the same failure on another run (another temp directory, line number, duration, date,
//! id) reads the same, hashed with the workflow, job and step into a short stable signature id.
//! Pure: the incident desk fetches the log, this decides what the failure is.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A failure's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// `s` and 10 hex digits: stable across runs, machines and versions of this code that keep the
    /// normalisation.
    pub id: String,
    /// The error line as normalised (what the id hashes, beside the names).
    pub line: String,
}

/// A signature seen on one attempt of one run: the fingerprint ledger's record (one per
/// signature, run and attempt, so that a replayed delivery counts once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sighting {
    pub signature: String,
    /// When it was seen (epoch seconds).
    pub at: u64,
    pub repository: String,
    pub workflow: String,
    pub branch: String,
    pub run_id: u64,
    pub run_number: u64,
    pub attempt: u64,
}

/// How far back "seen before" looks.
pub const SEEN_WINDOW_DAYS: u64 = 14;

/// A card's "seen N× in 14 days": how often the signature was seen in the window (this run
/// included), and the newest other run it was seen on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub count: u64,
    pub days: u64,
    pub last_branch: String,
    pub last_run_number: u64,
    /// The run that fixed that failure, when it was this incident's and it was fixed
    /// (`Incident::name_fix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_by: Option<u64>,
}

/// What the ledger's sightings of a signature say about the run `this`: `None` when no other
/// run had it in the last [`SEEN_WINDOW_DAYS`] days (a first sighting shows nothing).
pub fn seen(sightings: &[Sighting], this: &Sighting, now: u64) -> Option<Seen> {
    let since = now.saturating_sub(SEEN_WINDOW_DAYS * 24 * 3600);
    let mut recent: Vec<&Sighting> =
        sightings.iter().filter(|s| s.signature == this.signature && s.at >= since).collect();
    if !recent.iter().any(|s| s.run_id == this.run_id && s.attempt == this.attempt) {
        recent.push(this);
    }
    let last = recent
        .iter()
        .filter(|s| !(s.run_id == this.run_id && s.attempt == this.attempt))
        .max_by_key(|s| (s.at, s.run_id, s.attempt))?;
    Some(Seen {
        count: recent.len() as u64,
        days: SEEN_WINDOW_DAYS,
        last_branch: last.branch.clone(),
        last_run_number: last.run_number,
        fixed_by: None,
    })
}

/// A failure that passed on a re-run of the same run (the same commit): the flake ledger's record,
/// one per run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flake {
    /// The failure's signature, when its log was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// When the passing attempt came (epoch seconds).
    pub at: u64,
    pub repository: String,
    pub workflow: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    pub branch: String,
    pub run_id: u64,
    pub run_number: u64,
    /// The attempt that passed.
    pub attempt: u64,
}

/// One line of `/flaky`: a job (and signature) that flaked, how often, and when last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlakyRow {
    pub repository: String,
    pub workflow: String,
    pub job: Option<String>,
    pub signature: Option<String>,
    pub count: u64,
    pub last_at: u64,
    pub last_run_number: u64,
}

/// The flakiest jobs and signatures of the last `days` days (of `repository` when given, case
/// aside), most flakes first, then most recent.
pub fn flakiest(flakes: &[Flake], repository: Option<&str>, days: u64, now: u64) -> Vec<FlakyRow> {
    let since = now.saturating_sub(days.saturating_mul(24 * 3600));
    let mut rows: Vec<FlakyRow> = Vec::new();
    for f in flakes.iter().filter(|f| f.at >= since) {
        if repository.is_some_and(|r| !r.eq_ignore_ascii_case(&f.repository)) {
            continue;
        }
        let same = |r: &FlakyRow| {
            r.repository == f.repository && r.workflow == f.workflow && r.job == f.job && r.signature == f.signature
        };
        match rows.iter_mut().find(|r| same(r)) {
            Some(row) => {
                row.count += 1;
                if f.at > row.last_at {
                    (row.last_at, row.last_run_number) = (f.at, f.run_number);
                }
            }
            None => rows.push(FlakyRow {
                repository: f.repository.clone(),
                workflow: f.workflow.clone(),
                job: f.job.clone(),
                signature: f.signature.clone(),
                count: 1,
                last_at: f.at,
                last_run_number: f.run_number,
            }),
        }
    }
    rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| b.last_at.cmp(&a.last_at)));
    rows
}

/// How many characters of a normalised line are kept (and hashed).
const MAX_LINE: usize = 200;

/// The signature of a failure of `step` in `job` of `workflow` whose log is `log`; `None` when
/// the log holds no error line.
pub fn signature(workflow: &str, job: &str, step: &str, log: &str) -> Option<Signature> {
    let line = normalise(error_line(log)?);
    if line.is_empty() {
        return None;
    }
    let digest = Sha256::digest(format!("{workflow}\u{1f}{job}\u{1f}{step}\u{1f}{line}").as_bytes());
    let id = format!("s{}", hex::encode(digest).chars().take(10).collect::<String>());
    Some(Signature { id, line })
}

/// The first line of `log` that says what went wrong: not the runner's trailers (`##[error]Process
/// completed with exit code 1.`), group markers, command echoes or blank lines. Timestamps and
/// colour codes are stripped first.
pub fn error_line(log: &str) -> Option<String> {
    log.lines().map(clean).find(|l| is_error(l)).map(std::borrow::Cow::into_owned)
}

/// A log line without GitHub's timestamp, ANSI colour codes and the runner's `##[error]` prefix;
/// a copy only when it has colour codes (a log is read line by line to its first error).
fn clean(line: &str) -> std::borrow::Cow<'_, str> {
    if line.contains('\u{1b}') {
        std::borrow::Cow::Owned(bare(&strip_ansi(line)).to_string())
    } else {
        std::borrow::Cow::Borrowed(bare(line))
    }
}

/// `line` without GitHub's timestamp, the `##[error]` prefix and surrounding blanks.
fn bare(line: &str) -> &str {
    let line = strip_timestamp(line.trim_end()).trim();
    line.strip_prefix("##[error]").unwrap_or(line).trim()
}

/// Lines the runner and the tools print around every failure, which say nothing about this one.
fn is_trailer(lower: &str) -> bool {
    const TRAILERS: &[&str] = &[
        "process completed with exit code",
        "##[group]",
        "##[endgroup]",
        "##[warning]",
        "##[debug]",
        "##[command]",
        "error: process didn't exit successfully",
        "error: test failed, to rerun pass",
        "error: 1 target failed",
        "npm err! a complete log of this run can be found in",
        // npm names the error code on a line of its own before the line that says what it is
        "npm err! code ",
        "npm err! errno ",
        "error: command failed with exit code",
        "error: script returned exit code",
        "make: *** [",
        "make[1]: *** [",
        "* try:",
        "run with --stacktrace",
        "> run with --info",
        "build failed in",
        "failure: build failed with an exception",
        "* what went wrong",
        // jest's and go's per-file and per-package summaries: the failing test's line comes first
        "fail ",
        "fail\t",
    ];
    lower.is_empty() || TRAILERS.iter().any(|t| lower.starts_with(t) || (t.starts_with("##[") && lower.contains(t)))
}

/// Whether a cleaned line reports an error.
fn is_error(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    if is_trailer(&lower) {
        return false;
    }
    const STARTS: &[&str] = &[
        "error",
        "fatal",
        "failed",
        "--- fail",
        "e   ",
        "npm err!",
        "thread '",
        "panic:",
        "traceback",
        "exception",
        "assertionerror",
        "● ",
        "curl: (",
    ];
    const CONTAINS: &[&str] = &[
        "error:",
        "error[",
        "exception",
        "panicked at",
        " failed",
        "failed:",
        "timed out",
        "etimedout",
        "econnrefused",
        "econnreset",
        "i/o timeout",
        "could not resolve host",
        "no space left on device",
    ];
    STARTS.iter().any(|s| lower.starts_with(s)) || CONTAINS.iter().any(|c| lower.contains(c))
}

/// `line` with what differs between runs of the same failure replaced by placeholders: paths under
/// the runner's workspace made relative, temporary paths, UUIDs, long hex ids, dates, times,
/// durations, IP addresses, and the numbers of `file:line:col` and `line N`. Whitespace is
/// collapsed; the result is at most 200 characters.
pub fn normalise(line: impl AsRef<str>) -> String {
    let words: Vec<&str> = line.as_ref().split_whitespace().collect();
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    while let Some(word) = words.get(i) {
        // "10001 milliseconds", "3.2 s": a number and its unit are one duration.
        if let Some(next) = words.get(i + 1)
            && is_number(word)
            && is_unit(next)
        {
            out.push(format!("<dur>{}", trailing_punct(next)));
            i += 2;
            continue;
        }
        // "line 42": the number goes.
        if let Some(prev) = out.last()
            && prev.eq_ignore_ascii_case("line")
            && is_number(word)
        {
            out.push(format!("<n>{}", trailing_punct(word)));
            i += 1;
            continue;
        }
        out.push(word_normalised(word));
        i += 1;
    }
    let joined = out.join(" ");
    joined.chars().take(MAX_LINE).collect()
}

/// One whitespace-free word of a line, normalised.
fn word_normalised(word: &str) -> String {
    if let Some(path) = temp_or_workspace(word) {
        return path;
    }
    if is_duration(word) {
        let open = word.len() - word.trim_start_matches('(').len();
        return format!("{}<dur>{}", word.get(..open).unwrap_or(""), trailing_punct(word));
    }
    scrub(word)
}

/// The punctuation a word ends with (`,`, `.`, `)`, `:`, `;`), kept after a placeholder.
fn trailing_punct(word: &str) -> &str {
    let kept = word.trim_end_matches([',', '.', ')', ':', ';', ']']);
    word.get(kept.len()..).unwrap_or("")
}

/// Paths: a temporary directory's become `<tmp>`; under the runner's workspace they become
/// relative to the repository.
fn temp_or_workspace(word: &str) -> Option<String> {
    const TEMP: &[&str] =
        &["/tmp/", "/var/folders/", "/private/var/", "\\temp\\", "/runner/_temp/", "/__t/", "/_temp/"];
    let lower = word.to_ascii_lowercase();
    if let Some(at) = TEMP.iter().filter_map(|t| lower.find(t)).min() {
        let before = word.get(..at).unwrap_or("");
        // The quote or bracket a path often starts with stays; what follows the path goes with it.
        let lead: String = before.chars().filter(|c| matches!(c, '\'' | '"' | '(' | '[' | '<' | '`')).collect();
        return Some(format!("{lead}<tmp>{}", trailing_punct(word)));
    }
    // `/home/runner/work/<repo>/<repo>/src/x.rs`, `/__w/<repo>/<repo>/…`, `D:\a\<repo>\<repo>\…`
    for prefix in ["/home/runner/work/", "/Users/runner/work/", "/__w/", ":\\a\\"] {
        if let Some(at) = word.find(prefix) {
            let rest = word.get(at + prefix.len()..).unwrap_or("");
            let sep = if prefix.contains('\\') { '\\' } else { '/' };
            let mut parts = rest.splitn(3, sep);
            let (_, _, tail) = (parts.next(), parts.next(), parts.next());
            let lead = word.get(..at).unwrap_or("");
            let lead =
                if prefix.starts_with(':') { lead.get(..lead.len().saturating_sub(1)).unwrap_or("") } else { lead };
            return Some(scrub(&format!("{lead}{}", tail.unwrap_or(""))));
        }
    }
    None
}

fn is_number(word: &str) -> bool {
    let w = word.trim_start_matches('(').trim_end_matches([',', '.', ')', ':', ';']);
    !w.is_empty() && w.chars().all(|c| c.is_ascii_digit() || c == '.') && w.chars().any(|c| c.is_ascii_digit())
}

const UNITS: &[&str] = &[
    "ns",
    "us",
    "µs",
    "ms",
    "s",
    "sec",
    "secs",
    "second",
    "seconds",
    "millisecond",
    "milliseconds",
    "m",
    "min",
    "mins",
    "minute",
    "minutes",
    "h",
    "hours",
];

fn is_unit(word: &str) -> bool {
    let w = word.trim_end_matches([',', '.', ')', ':', ';']).to_ascii_lowercase();
    UNITS.contains(&w.as_str())
}

/// `0.01s`, `(12ms)`, `1m30s`, `3.2sec`: a number with a unit attached.
fn is_duration(word: &str) -> bool {
    let w = word.trim_start_matches('(').trim_end_matches([',', '.', ')', ':', ';', ']']);
    let digits = w.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(w.len());
    if digits == 0 {
        return false;
    }
    let mut rest = w.get(digits..).unwrap_or("");
    if rest.is_empty() {
        return false;
    }
    // units, possibly chained: 1m30s, 1h2m3s
    while !rest.is_empty() {
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = rest.get(..unit_end).unwrap_or("").to_ascii_lowercase();
        if !UNITS.contains(&unit.as_str()) {
            return false;
        }
        rest = rest.get(unit_end..).unwrap_or("");
        let next_digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if next_digits == 0 && !rest.is_empty() {
            return false;
        }
        rest = rest.get(next_digits..).unwrap_or("");
    }
    true
}

/// What varies inside a word, tried in this order at each word boundary: the placeholder, and the
/// length matched at a position (if it matches there).
type Matcher = fn(&[char], usize) -> Option<usize>;
const MATCHERS: &[(&str, Matcher)] =
    &[("<uuid>", uuid_at), ("<date>", date_at), ("<time>", time_at), ("<ip>", ipv4_at), ("<hex>", hex_at)];

/// Inside a word: UUIDs, long hex ids, dates, times, IPv4 addresses and `file:line:col` numbers
/// become placeholders. Scans once, left to right.
fn scrub(word: &str) -> String {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::with_capacity(word.len());
    let mut i = 0;
    while i < chars.len() {
        let at_boundary = i == 0 || chars.get(i - 1).is_none_or(|c| !c.is_ascii_alphanumeric());
        if at_boundary
            && let Some((placeholder, len)) = MATCHERS.iter().find_map(|(p, at)| at(&chars, i).map(|len| (*p, len)))
        {
            out.push_str(placeholder);
            i += len;
            continue;
        }
        // `file.rs:10:5`, `app.js:120`: after a name with an extension, `:digits` is a position.
        if chars.get(i) == Some(&':')
            && chars.get(i + 1).is_some_and(char::is_ascii_digit)
            && out.rsplit(['/', '\\', '(', ' ', '"', '\'']).next().is_some_and(|name| name.contains('.'))
        {
            let digits = run_len(&chars, i + 1, |c| c.is_ascii_digit());
            out.push_str(":<n>");
            i += 1 + digits;
            continue;
        }
        if let Some(c) = chars.get(i) {
            out.push(*c);
        }
        i += 1;
    }
    out
}

fn run_len(chars: &[char], from: usize, f: impl Fn(&char) -> bool) -> usize {
    chars.iter().skip(from).take_while(|c| f(c)).count()
}

fn ends_word(chars: &[char], at: usize) -> bool {
    chars.get(at).is_none_or(|c| !c.is_ascii_alphanumeric())
}

/// Runs of characters `f` accepts, of the lengths `parts` allows (least, most), separated by
/// `sep`, from `i`: where they end.
fn separated(chars: &[char], i: usize, sep: char, parts: &[(usize, usize)], f: fn(&char) -> bool) -> Option<usize> {
    let mut at = i;
    for (n, (least, most)) in parts.iter().enumerate() {
        let len = run_len(chars, at, f);
        if len < *least || len > *most {
            return None;
        }
        at += len;
        if n + 1 < parts.len() {
            if chars.get(at) != Some(&sep) {
                return None;
            }
            at += 1;
        }
    }
    Some(at)
}

/// 8-4-4-4-12 hex digits.
fn uuid_at(chars: &[char], i: usize) -> Option<usize> {
    let end = separated(chars, i, '-', &[(8, 8), (4, 4), (4, 4), (4, 4), (12, 12)], char::is_ascii_hexdigit)?;
    ends_word(chars, end).then_some(end - i)
}

/// `2026-11-22` (and `2026/11/22`).
fn date_at(chars: &[char], i: usize) -> Option<usize> {
    let y = run_len(chars, i, char::is_ascii_digit);
    let sep = *chars.get(i + 4)?;
    if y != 4 || !(sep == '-' || sep == '/') {
        return None;
    }
    let m = run_len(chars, i + 5, char::is_ascii_digit);
    if !(1..=2).contains(&m) || chars.get(i + 5 + m) != Some(&sep) {
        return None;
    }
    let d = run_len(chars, i + 6 + m, char::is_ascii_digit);
    if !(1..=2).contains(&d) {
        return None;
    }
    let mut len = 6 + m + d;
    // an ISO timestamp: the time goes with the date
    if chars.get(i + len) == Some(&'T')
        && let Some(t) = time_at(chars, i + len + 1)
    {
        len += 1 + t;
    }
    Some(len)
}

/// `14:05:00`, `14:05:00.123`, with an optional `Z`.
fn time_at(chars: &[char], i: usize) -> Option<usize> {
    let h = run_len(chars, i, char::is_ascii_digit);
    if !(1..=2).contains(&h) || chars.get(i + h) != Some(&':') {
        return None;
    }
    let m = run_len(chars, i + h + 1, char::is_ascii_digit);
    if m != 2 || chars.get(i + h + 1 + m) != Some(&':') {
        return None;
    }
    let s = run_len(chars, i + h + 2 + m, char::is_ascii_digit);
    if s != 2 {
        return None;
    }
    let mut len = h + m + s + 2;
    if chars.get(i + len) == Some(&'.') {
        let frac = run_len(chars, i + len + 1, char::is_ascii_digit);
        if frac > 0 {
            len += 1 + frac;
        }
    }
    if chars.get(i + len) == Some(&'Z') {
        len += 1;
    }
    Some(len)
}

/// `140.82.112.3`, with an optional `:port`.
fn ipv4_at(chars: &[char], i: usize) -> Option<usize> {
    let mut at = separated(chars, i, '.', &[(1, 3); 4], char::is_ascii_digit)?;
    if chars.get(at) == Some(&':') {
        let port = run_len(chars, at + 1, char::is_ascii_digit);
        if port > 0 {
            at += 1 + port;
        }
    }
    ends_word(chars, at).then_some(at - i)
}

/// A hex id: at least 8 hex digits with a digit and a letter among them (a commit, an object id,
/// a container id), or at least 12 digits (a run or pid-like number).
fn hex_at(chars: &[char], i: usize) -> Option<usize> {
    let len = run_len(chars, i, char::is_ascii_hexdigit);
    if !ends_word(chars, i + len) {
        return None;
    }
    let run: Vec<&char> = chars.iter().skip(i).take(len).collect();
    let digits = run.iter().filter(|c| c.is_ascii_digit()).count();
    let mixed = len >= 8 && digits > 0 && digits < len;
    (mixed || (len >= 12 && digits == len)).then_some(len)
}

/// `\x1b[31m` and the like.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// A log line without GitHub's `2026-01-01T00:00:01.0000000Z ` before it (the log tail strips it
/// too).
pub(crate) fn strip_timestamp(line: &str) -> &str {
    match line.split_once(' ') {
        Some((ts, rest)) if ts.len() >= 20 && ts.as_bytes().get(4) == Some(&b'-') && ts.ends_with('Z') => rest,
        _ => line,
    }
}
