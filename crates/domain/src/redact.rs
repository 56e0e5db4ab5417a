//! The redactor: finds secrets by their values (token shapes, credentials in URLs, private keys)
//! and by the names they are stored under (`password=…`, `"token": "…"`), in one pass over the
//! input. When nothing matches, the input is handed back as it was, without a copy.
//!
//! It works on bytes so that `valinectl redact` can filter any log, valid UTF-8 or not; every cut
//! it makes falls on an ASCII byte, so UTF-8 input stays UTF-8.

use std::borrow::Cow;

/// What every secret is replaced with.
pub const MASK: &str = "***REDACTED***";

/// Redacts a string. Borrowed when nothing matched.
pub fn redact(input: &str) -> Cow<'_, str> {
    match redact_bytes(input.as_bytes()) {
        Cow::Borrowed(_) => Cow::Borrowed(input),
        // Every cut and every replacement is ASCII, so valid UTF-8 in means valid UTF-8 out.
        Cow::Owned(bytes) => {
            Cow::Owned(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
        }
    }
}

/// Redacts bytes. Borrowed when nothing matched.
pub fn redact_bytes(input: &[u8]) -> Cow<'_, [u8]> {
    let mut state = StreamState::default();
    redact_stream(input, &mut state)
}

/// Carries what one chunk of a stream leaves open for the next: a private-key block whose
/// `-----END` line has not been seen yet.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StreamState {
    in_private_key: bool,
}

impl StreamState {
    /// True while a private-key block is open.
    pub fn in_private_key(&self) -> bool {
        self.in_private_key
    }
}

/// Redacts one chunk of a stream (cut at line ends by the caller), carrying open private-key
/// blocks over to the next chunk.
pub fn redact_stream<'a>(input: &'a [u8], state: &mut StreamState) -> Cow<'a, [u8]> {
    let mut scan = Scanner { s: input, out: None, copied: 0 };
    let mut i = 0;
    if state.in_private_key {
        match find_pem_end(input, 0) {
            Some((body_end, _)) => {
                scan.replace(0, body_end, MASK.as_bytes());
                i = body_end;
                state.in_private_key = false;
            }
            None => {
                // The whole chunk is inside the key.
                scan.replace(0, input.len(), b"");
                return scan.finish();
            }
        }
    }
    let n = input.len();
    while i < n {
        if !is_word(input[i]) {
            i += 1;
            continue;
        }
        let we = word_end(input, i);
        i = scan.at_word(i, we, state);
    }
    scan.finish()
}

/// True when a key name (a field, variable or header name) says its value is a secret:
/// `GITHUB_TOKEN`, `password`, `X-Api-Key`, `accessToken`, `client_secret`, `Cookie`. Not
/// `max_tokens`, `tokenizer`, `keyboard`, `DISCORD_PUBLIC_KEY` or `token_type`.
pub fn is_secret_key(name: &str) -> bool {
    secret_key_kind(name.as_bytes()).is_some()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    /// An ordinary secret-named key: the value ends at white space or a delimiter.
    Plain,
    /// A header whose value runs to the end of the line (`Authorization: Bearer x`).
    WholeLine,
}

const SECRET_WORDS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "apikey",
    "credential",
    "session",
    "cookie",
    "passphrase",
    "authorization",
];
/// Long words that also count at the end of a run-together name (`apitoken`, `dbpassword`).
const SECRET_SUFFIXES: &[&str] = &["token", "secret", "password", "passwd", "apikey", "credential", "passphrase"];
/// Pairs of name parts that make a secret together, where neither does alone.
const SECRET_PAIRS: &[(&str, &str)] = &[("api", "key"), ("access", "key"), ("private", "key"), ("signing", "key")];
/// A part after the secret word that says the value is about the secret, not the secret.
const METADATA_PARTS: &[&str] = &[
    "count", "type", "len", "length", "limit", "usage", "expiry", "expires", "ttl", "url", "uri", "endpoint", "name",
    "file", "path", "id", "arn", "header", "kind", "version",
];

fn secret_key_kind(name: &[u8]) -> Option<KeyKind> {
    if name.len() > 64 || name.is_empty() {
        return None;
    }
    // Split into lower-cased parts at `_`, `-`, `.` and lower→upper case changes, without allocating.
    let mut parts: [(usize, usize); 12] = [(0, 0); 12];
    let mut count = 0;
    let mut start = 0;
    let mut push = |a: usize, b: usize, count: &mut usize| {
        if b > a && *count < parts.len() {
            parts[*count] = (a, b);
            *count += 1;
        }
    };
    for j in 0..name.len() {
        let c = name[j];
        if c == b'_' || c == b'-' || c == b'.' {
            push(start, j, &mut count);
            start = j + 1;
        } else if j > start && c.is_ascii_uppercase() && name[j - 1].is_ascii_lowercase() {
            push(start, j, &mut count);
            start = j;
        }
    }
    push(start, name.len(), &mut count);
    let part = |k: usize| &name[parts[k].0..parts[k].1];
    let eq = |p: &[u8], w: &str| p.eq_ignore_ascii_case(w.as_bytes());
    let ends = |p: &[u8], w: &str| p.len() >= w.len() && p[p.len() - w.len()..].eq_ignore_ascii_case(w.as_bytes());
    let followed_by_metadata = |k: usize| k + 1 < count && METADATA_PARTS.iter().any(|m| eq(part(k + 1), m));

    for k in 0..count {
        let p = part(k);
        let word = SECRET_WORDS.iter().find(|w| {
            eq(p, w)
                // plurals: `secrets`, `cookies`; never `tokens` (`max_tokens` is a count)
                || (!eq(p, "tokens") && p.len() == w.len() + 1 && ends(p, "s") && eq(&p[..w.len()], w))
        });
        let suffix = word.is_none() && SECRET_SUFFIXES.iter().any(|w| p.len() > w.len() && ends(p, w));
        let pair = k + 1 < count && SECRET_PAIRS.iter().any(|(a, b)| eq(p, a) && eq(part(k + 1), b));
        if pair && !(k + 2 < count && METADATA_PARTS.iter().any(|m| eq(part(k + 2), m))) {
            return Some(KeyKind::Plain);
        }
        if (word.is_some() || suffix) && !followed_by_metadata(k) {
            let whole_line = count == 1 && (eq(p, "authorization") || eq(p, "cookie"))
                || (count == 2 && (eq(part(0), "proxy") || eq(part(0), "set")));
            return Some(if whole_line { KeyKind::WholeLine } else { KeyKind::Plain });
        }
    }
    None
}

/// `[A-Za-z0-9_-]`: the characters of identifiers and of most token alphabets.
#[inline]
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The standard base64 alphabet without padding.
#[inline]
fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

#[inline]
fn word_end(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_word(s[i]) {
        i += 1;
    }
    i
}

fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn find(s: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if from >= s.len() {
        return None;
    }
    s[from..].windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// Where the body of a private key ends (the start of `-----END … PRIVATE KEY-----`) and where
/// that END line ends.
fn find_pem_end(s: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut at = from;
    while let Some(p) = find(s, at, b"-----END ") {
        let label_start = p + 9;
        if let Some(close) = find(s, label_start, b"-----")
            && is_private_key_label(&s[label_start..close])
        {
            return Some((p, close + 5));
        }
        at = p + 9;
    }
    None
}

/// `RSA PRIVATE KEY`, `OPENSSH PRIVATE KEY`, …: capitals and spaces only, so that nothing else
/// (a token among the words, say) passes for a label and escapes with it.
fn is_private_key_label(label: &[u8]) -> bool {
    label.len() <= 40 && label.ends_with(b"PRIVATE KEY") && label.iter().all(|&c| c.is_ascii_uppercase() || c == b' ')
}

fn has_upper_and_lower(s: &[u8]) -> bool {
    s.iter().any(u8::is_ascii_uppercase) && s.iter().any(u8::is_ascii_lowercase)
}

/// Bytes that may stand on either side of a free-standing secret (not inside a path or a word).
fn is_free_edge(b: Option<&u8>) -> bool {
    match b {
        None => true,
        Some(b) => b.is_ascii_whitespace() || b"\"'`=:,;()[]{}<>|".contains(b),
    }
}

struct Scanner<'a> {
    s: &'a [u8],
    out: Option<Vec<u8>>,
    copied: usize,
}

impl<'a> Scanner<'a> {
    fn replace(&mut self, start: usize, end: usize, with: &[u8]) {
        let out = self.out.get_or_insert_with(|| Vec::with_capacity(self.s.len()));
        out.extend_from_slice(&self.s[self.copied..start]);
        out.extend_from_slice(with);
        self.copied = end;
    }

    fn finish(mut self) -> Cow<'a, [u8]> {
        match self.out.take() {
            None => Cow::Borrowed(self.s),
            Some(mut out) => {
                out.extend_from_slice(&self.s[self.copied..]);
                Cow::Owned(out)
            }
        }
    }

    /// Looks at the word `s[ws..we]` and whatever follows it; returns where scanning resumes.
    fn at_word(&mut self, ws: usize, we: usize, state: &mut StreamState) -> usize {
        let s = self.s;
        let word = &s[ws..we];
        let rest = &s[we..];

        if word.starts_with(b"-----BEGIN")
            && let Some(next) = self.private_key(ws, state)
        {
            return next;
        }
        if rest.starts_with(b"://") {
            return self.url(we + 3);
        }
        if let Some(len) = token_prefix_len(word)
            && word.len() >= len + 20
        {
            self.replace(ws, we, MASK.as_bytes());
            return we;
        }
        // A token glued to what comes before it (`x=1ghp_…`, `2zghp_…`): from its prefix on.
        if word.len() >= 24
            && let Some(at) = embedded_token(word)
        {
            self.replace(ws + at, we, MASK.as_bytes());
            return we;
        }
        if word.len() == 20 && is_aws_key_id(word) {
            self.replace(ws, we, MASK.as_bytes());
            return we;
        }
        if let Some(end) = dotted_token_end(s, ws, we) {
            self.replace(ws, end, MASK.as_bytes());
            return end;
        }
        if let Some(next) = self.key_value(ws, we) {
            return next;
        }
        // `Bot`, `Basic`, `Bearer`
        if matches!(word.len(), 3 | 5 | 6)
            && (word[0] | 0x20) == b'b'
            && let Some(next) = self.scheme_credential(word, we)
        {
            return next;
        }
        // A 40-character base64 run is this very word, or goes on past it through `/` or `+`;
        // checking that first spares a second scan of every ordinary word.
        if (word.len() == 40 || matches!(rest.first(), Some(b'/' | b'+')))
            && let Some(end) = aws_secret_end(s, ws)
        {
            self.replace(ws, end, MASK.as_bytes());
            return end;
        }
        we
    }

    /// `-----BEGIN … PRIVATE KEY-----` … `-----END … PRIVATE KEY-----`: the body goes.
    fn private_key(&mut self, ws: usize, state: &mut StreamState) -> Option<usize> {
        let s = self.s;
        let label_start = ws + 11; // "-----BEGIN "
        if label_start > s.len() || s.get(ws + 10) != Some(&b' ') {
            return None;
        }
        let close = find(s, label_start, b"-----")?;
        if !is_private_key_label(&s[label_start..close]) {
            return None;
        }
        let body_start = close + 5;
        match find_pem_end(s, body_start) {
            Some((body_end, end)) => {
                self.replace(body_start, body_end, MASK.as_bytes());
                Some(end)
            }
            None => {
                self.replace(body_start, s.len(), MASK.as_bytes());
                state.in_private_key = true;
                Some(s.len())
            }
        }
    }

    /// After `scheme://`: user-info goes (`https://***REDACTED***@host`), and so do Discord
    /// webhook ids and tokens.
    fn url(&mut self, authority: usize) -> usize {
        let s = self.s;
        let mut end = authority;
        let mut at = None;
        while end < s.len() {
            let c = s[end];
            if c == b'/' || c == b'?' || c == b'#' || c.is_ascii_whitespace() || b"\"'<>`\\".contains(&c) {
                break;
            }
            if c == b'@' {
                at = Some(end);
            }
            end += 1;
        }
        if let Some(at) = at {
            let info = &s[authority..at];
            if info.contains(&b':') || info.len() >= 16 {
                self.replace(authority, at, MASK.as_bytes());
            }
            return at + 1;
        }
        let host = &s[authority..end];
        let discord = [b"discord.com".as_slice(), b"discordapp.com"].iter().any(|d| {
            host.eq_ignore_ascii_case(d)
                || (host.len() > d.len() && host.ends_with(d) && host[host.len() - d.len() - 1] == b'.')
        });
        if discord {
            // /api/webhooks/{id}/{token} or /api/v10/webhooks/{id}/{token}
            let mut p = end;
            if starts_with_ci(&s[p..], b"/api/") {
                p += 5;
                if s.get(p) == Some(&b'v') {
                    let digits = s[p + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                    if digits > 0 && s.get(p + 1 + digits) == Some(&b'/') {
                        p += digits + 2;
                    }
                }
                if starts_with_ci(&s[p..], b"webhooks/") {
                    let start = p + 9;
                    let mut stop = start;
                    while stop < s.len() && !s[stop].is_ascii_whitespace() && !b"\"'<>`?#)\\".contains(&s[stop]) {
                        stop += 1;
                    }
                    if stop > start {
                        self.replace(start, stop, MASK.as_bytes());
                        return stop;
                    }
                }
            }
        }
        authority
    }

    /// `name=value`, `name: value`, `"name": "value"` where the name says secret.
    fn key_value(&mut self, ws: usize, we: usize) -> Option<usize> {
        let s = self.s;
        let mut p = we;
        // the closing quote of a quoted name, possibly escaped (`\"token\": \"…\"`)
        if s.get(p) == Some(&b'\\') && matches!(s.get(p + 1), Some(b'"')) {
            p += 2;
        } else if matches!(s.get(p), Some(b'"' | b'\'')) {
            p += 1;
        }
        while matches!(s.get(p), Some(b' ' | b'\t')) {
            p += 1;
        }
        let sep = *s.get(p)?;
        if sep != b'=' && sep != b':' {
            return None;
        }
        let next = s.get(p + 1).copied();
        if (sep == b'=' && matches!(next, Some(b'=' | b'>'))) || (sep == b':' && matches!(next, Some(b':'))) {
            return None;
        }
        let kind = secret_key_kind(&s[ws..we])?;
        p += 1;
        while matches!(s.get(p), Some(b' ' | b'\t')) {
            p += 1;
        }
        let (vs, ve) = value_span(s, p, kind)?;
        let value = &s[vs..ve];
        if value == MASK.as_bytes() || value == b"null" || value.is_empty() {
            return Some(ve);
        }
        self.replace(vs, ve, MASK.as_bytes());
        Some(ve)
    }

    /// `Bearer x`, `Basic x`, `Bot x` outside a header: the credential goes when it looks like one.
    fn scheme_credential(&mut self, word: &[u8], we: usize) -> Option<usize> {
        let s = self.s;
        let bot = word.eq_ignore_ascii_case(b"bot");
        if !(bot || word.eq_ignore_ascii_case(b"bearer") || word.eq_ignore_ascii_case(b"basic")) {
            return None;
        }
        if s.get(we) != Some(&b' ') {
            return None;
        }
        let vs = we + 1;
        let mut ve = vs;
        while ve < s.len() && (s[ve].is_ascii_alphanumeric() || b"._~+/=-".contains(&s[ve])) {
            ve += 1;
        }
        let cred = &s[vs..ve];
        // base64 pads only at the end; `x=y` after the word is a setting, not a credential
        let body = &cred[..cred.len() - cred.iter().rev().take_while(|&&c| c == b'=').count()];
        if body.contains(&b'=') {
            return None;
        }
        let looks_like_credential = if bot {
            cred.len() >= 30 && cred.contains(&b'.')
        } else {
            cred.len() >= 8
                && (cred.iter().any(|c| c.is_ascii_digit() || b"._~+/=-".contains(c))
                    || cred[1..].iter().any(u8::is_ascii_uppercase))
        };
        if !looks_like_credential {
            return None;
        }
        self.replace(vs, ve, MASK.as_bytes());
        Some(ve)
    }
}

/// Where a secret value starts and ends.
fn value_span(s: &[u8], p: usize, kind: KeyKind) -> Option<(usize, usize)> {
    let first = *s.get(p)?;
    if first == b'\\' && s.get(p + 1) == Some(&b'"') {
        // an escaped string inside a JSON string: up to the next `\"`
        let vs = p + 2;
        let ve = find(s, vs, b"\\\"").unwrap_or_else(|| line_end(s, vs));
        return Some((vs, ve));
    }
    if first == b'"' || first == b'\'' {
        let vs = p + 1;
        let mut q = vs;
        while q < s.len() && s[q] != first && s[q] != b'\n' {
            if s[q] == b'\\' {
                q += 1;
            }
            q += 1;
        }
        return Some((vs, q.min(s.len())));
    }
    if first == b'{' || first == b'[' {
        return None;
    }
    let mut q = p;
    while q < s.len() {
        let c = s[q];
        let stop = match kind {
            KeyKind::WholeLine => c == b'\n' || c == b'\r' || c == b'"' || c == b'\\',
            KeyKind::Plain => c.is_ascii_whitespace() || b"&,;\"'`)]}<>\\".contains(&c),
        };
        if stop {
            break;
        }
        q += 1;
    }
    Some((p, q))
}

fn line_end(s: &[u8], from: usize) -> usize {
    s[from..].iter().position(|&c| c == b'\n').map_or(s.len(), |p| p + from)
}

/// The prefix length of a GitHub or Slack token shape, when the word starts with one.
fn token_prefix_len(word: &[u8]) -> Option<usize> {
    if word.len() < 8 {
        return None;
    }
    match word[0] {
        b'g' => {
            if word.starts_with(b"github_pat_") {
                Some(11)
            } else if word.starts_with(b"gh") && b"pousr".contains(&word[2]) && word[3] == b'_' {
                Some(4)
            } else {
                None
            }
        }
        b'x' if (word.starts_with(b"xox") && word[3].is_ascii_lowercase() && word[4] == b'-')
            || word.starts_with(b"xapp-") =>
        {
            Some(5)
        }
        _ => None,
    }
}

/// Where a GitHub or Slack token starts inside a longer word, if one does.
fn embedded_token(word: &[u8]) -> Option<usize> {
    (1..word.len().saturating_sub(23)).find(|&at| {
        matches!(word[at], b'g' | b'x') && token_prefix_len(&word[at..]).is_some_and(|len| word.len() - at >= len + 20)
    })
}

const AWS_KEY_PREFIXES: &[&[u8; 4]] =
    &[b"AKIA", b"ASIA", b"ABIA", b"ACCA", b"AGPA", b"AIDA", b"AIPA", b"ANPA", b"ANVA", b"AROA", b"APKA", b"ASCA"];

fn is_aws_key_id(word: &[u8]) -> bool {
    AWS_KEY_PREFIXES.iter().any(|p| word.starts_with(*p))
        && word[4..].iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// Three base64url runs joined by dots: a Discord bot token or a JWT. Returns where it ends.
fn dotted_token_end(s: &[u8], ws: usize, we: usize) -> Option<usize> {
    if s.get(we) != Some(&b'.') {
        return None;
    }
    let first = &s[ws..we];
    let jwt = first.starts_with(b"eyJ");
    if first.len() < 16 && !(jwt && first.len() >= 10) {
        return None;
    }
    let m_end = word_end(s, we + 1);
    if s.get(m_end) != Some(&b'.') || m_end - (we + 1) < if jwt { 2 } else { 4 } {
        return None;
    }
    let end = word_end(s, m_end + 1);
    let last = &s[m_end + 1..end];
    if last.len() < 16 || !(jwt || has_upper_and_lower(first) || has_upper_and_lower(last)) {
        return None;
    }
    Some(end)
}

/// A free-standing run of exactly 40 base64 characters in mixed case: an AWS secret access key.
/// Git SHAs (lower-case hex) and runs inside paths or URLs are left alone.
fn aws_secret_end(s: &[u8], ws: usize) -> Option<usize> {
    if ws > 0 && !is_free_edge(s.get(ws - 1)) {
        return None;
    }
    let mut end = ws;
    while end < s.len() && end - ws <= 40 && is_b64(s[end]) {
        end += 1;
    }
    if end - ws != 40 || !is_free_edge(s.get(end)) {
        return None;
    }
    let run = &s[ws..end];
    if !has_upper_and_lower(run) || run.windows(2).any(|w| w == b"//") {
        return None;
    }
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GHP: &str = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
    const PAT: &str =
        "github_pat_11ABCDEFG0123456789abc_defghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd";
    const BOT_TOKEN: &str = "MTE4NDU3NjQ4NzU3ODIxNDQ2NA.GhKz3c.dQw4w9WgXcQ-abcdefghijklmnopqrstuvwxyz1234";
    const WEBHOOK: &str = "https://discord.com/api/webhooks/1184576487578214464/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdEfGhIjKlMnOpQrStUvWx";
    const AWS_ID: &str = "AKIAIOSFODNN7EXAMPLE";
    const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    const SLACK: &str = "xoxb-2361234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx";

    /// Every secret shape: the input, and the secret part that must not survive.
    fn secret_cases() -> Vec<(String, &'static str)> {
        let pem_body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\nMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu";
        vec![
            (format!("token {GHP} used"), GHP),
            (format!("found {PAT}."), PAT),
            (
                format!("gho_{} ghu_{} ghs_{} ghr_{}", "a".repeat(36), "b".repeat(36), "c".repeat(36), "d".repeat(36)),
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            ),
            (format!("login with {BOT_TOKEN} failed"), BOT_TOKEN),
            (format!("Bot {BOT_TOKEN}"), BOT_TOKEN),
            (format!("posting to {WEBHOOK} now"), "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
            (format!("key {AWS_ID} secret {AWS_SECRET}"), AWS_ID),
            (format!("key {AWS_ID} secret {AWS_SECRET}"), AWS_SECRET),
            (format!("aws_secret_access_key = {AWS_SECRET}"), AWS_SECRET),
            (format!("jwt={JWT}"), JWT),
            (format!("id_token {JWT}"), "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"),
            (format!("slack {SLACK}"), SLACK),
            (
                format!("-----BEGIN PRIVATE KEY-----\n{pem_body}\n-----END PRIVATE KEY-----"),
                "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
            ),
            (format!("-----BEGIN RSA PRIVATE KEY-----\n{pem_body}"), "MzEfYyjiWA4R4"),
            ("Authorization: Bearer abc.def-ghi_jkl".to_string(), "abc.def-ghi_jkl"),
            ("authorization: token sk-live-ABCDEF".to_string(), "sk-live-ABCDEF"),
            ("\"Authorization\": \"Basic dXNlcjpwYXNz\"".to_string(), "dXNlcjpwYXNz"),
            ("curl -H 'Authorization: Bot abcd1234efgh'".to_string(), "abcd1234efgh"),
            ("sent with Bearer eyabc123DEF456".to_string(), "eyabc123DEF456"),
            ("clone https://user:hunter2@example.com/repo.git".to_string(), "hunter2"),
            ("db postgresql://app:s3cr3t-P4ss@db.internal:5432/app".to_string(), "s3cr3t-P4ss"),
            ("connect password=correcthorse now".to_string(), "correcthorse"),
            ("{\"token\": \"abc123secretvalue\"}".to_string(), "abc123secretvalue"),
            ("{\\\"token\\\": \\\"abc123secretvalue\\\"}".to_string(), "abc123secretvalue"),
            ("GITHUB_TOKEN=abcdef123456 next".to_string(), "abcdef123456"),
            ("client_secret: 'qwerty-uiop'".to_string(), "qwerty-uiop"),
            ("X-Api-Key: k3y-v4lue".to_string(), "k3y-v4lue"),
            ("accessToken=zzz111yyy".to_string(), "zzz111yyy"),
            ("Cookie: session=abc; theme=dark".to_string(), "session=abc"),
            ("?api_key=abcd1234&x=1".to_string(), "abcd1234"),
            ("private_key=MIIBOgIBAAJBAK".to_string(), "MIIBOgIBAAJBAK"),
            ("DB_PASSWORD=\"with spaces inside\"".to_string(), "with spaces inside"),
            ("apitoken=plainvalue".to_string(), "plainvalue"),
            (format!("glued 2z{GHP}"), GHP),
            (format!("id=1{SLACK}"), SLACK),
        ]
    }

    #[test]
    fn every_secret_shape_is_redacted() {
        for (input, secret) in secret_cases() {
            let out = redact(&input);
            assert!(!out.contains(secret), "secret survived in {input:?} -> {out:?}");
            assert!(out.contains(MASK), "no mask in {input:?} -> {out:?}");
        }
    }

    #[test]
    fn no_trailing_characters_of_a_token_survive() {
        let input = format!("x {GHP}");
        let out = redact(&input);
        assert_eq!(out, format!("x {MASK}"));
        for tail in 4..12 {
            assert!(!out.contains(&GHP[GHP.len() - tail..]));
        }
    }

    #[test]
    fn replacements_have_the_documented_shape() {
        assert_eq!(redact("token=abc123"), "token=***REDACTED***");
        assert_eq!(redact("Authorization: Bearer abc123"), "Authorization: ***REDACTED***");
        assert_eq!(redact("https://user:pass@host/x"), "https://***REDACTED***@host/x");
        assert_eq!(redact(&format!("Bot {BOT_TOKEN}")), "Bot ***REDACTED***");
        assert_eq!(redact("{\"password\": \"hunter2\"}"), "{\"password\": \"***REDACTED***\"}");
        assert_eq!(
            redact("-----BEGIN EC PRIVATE KEY-----\nabc\n-----END EC PRIVATE KEY-----\nafter"),
            "-----BEGIN EC PRIVATE KEY-----***REDACTED***-----END EC PRIVATE KEY-----\nafter"
        );
        assert_eq!(redact(WEBHOOK), "https://discord.com/api/webhooks/***REDACTED***");
    }

    #[test]
    fn non_secrets_stay_and_are_not_copied() {
        let keep = [
            "commit 3f1c9a7e0d2b4c6a8e9f0a1b2c3d4e5f60718293",
            "trace 6f1c2a4e-8b3d-4c5e-9f70-112233445566",
            "user 1184576487578214464 in guild 81384788765712384",
            "tokenizer=bert max_tokens=512 keyboard=us",
            "DISCORD_PUBLIC_KEY=e7a51b2f6d0c48a1a3b9c2d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c",
            "token_type=bearer secret_name=valine/prod",
            "https://github.com/acme/Widget/actions/runs/12345678901",
            "The Bot started; Bearer authentication and Basic Authentication are supported",
            "ssh://git@github.com/acme/widget.git",
            "version 1.2.3 of some_long_file_name.tar.gz",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYextra is not 40",
            "plain ascii log line with nothing to hide",
            "ünïcödé ✓ 🟢🔴 text",
        ];
        for input in keep {
            let out = redact(input);
            assert!(matches!(out, Cow::Borrowed(_)), "copied or changed {input:?} -> {out:?}");
        }
    }

    #[test]
    fn secret_keys_are_recognised_by_name() {
        for k in [
            "token",
            "GITHUB_TOKEN",
            "password",
            "X-Api-Key",
            "accessToken",
            "client_secret",
            "cookie",
            "session_id2",
            "credentials",
            "aws_secret_access_key",
            "apikey",
        ] {
            assert!(is_secret_key(k), "{k} should be secret");
        }
        for k in [
            "max_tokens",
            "tokenizer",
            "keyboard",
            "DISCORD_PUBLIC_KEY",
            "token_type",
            "user_id",
            "trace_id",
            "secret_name",
        ] {
            assert!(!is_secret_key(k), "{k} should not be secret");
        }
    }

    #[test]
    fn a_private_key_spanning_chunks_is_redacted_across_them() {
        let mut st = StreamState::default();
        let a = redact_stream(b"before\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n", &mut st);
        assert!(st.in_private_key());
        assert!(!String::from_utf8_lossy(&a).contains("b3BlbnNzaC1rZXktdjEAAAAA"));
        let b = redact_stream(b"QyNTUxOQAAACDxyz\n", &mut st);
        assert!(b.is_empty());
        let c = redact_stream(b"-----END OPENSSH PRIVATE KEY-----\nafter\n", &mut st);
        assert!(!st.in_private_key());
        assert_eq!(&*c, b"***REDACTED***-----END OPENSSH PRIVATE KEY-----\nafter\n");
    }

    #[test]
    fn invalid_utf8_and_odd_input_never_panic() {
        let inputs: [&[u8]; 8] =
            [b"", b"=", b"token=", b"\xff\xfe token=\xff", b"https://", b"-----BEGIN ", b"Bearer ", b"\"token\":\\"];
        for i in inputs {
            let _ = redact_bytes(i);
        }
        assert_eq!(&*redact_bytes(b"\xff password=x \xfe"), b"\xff password=***REDACTED*** \xfe");
    }

    #[test]
    fn redaction_is_idempotent() {
        for (input, _) in secret_cases() {
            let once = redact(&input).into_owned();
            let twice = redact(&once).into_owned();
            assert_eq!(once, twice, "{input:?}");
        }
    }
}
