//! The redactor: finds secrets by their values (provider token shapes, credentials in URLs,
//! webhook URLs, private-key blocks) and by the names they are stored under (`password=…`,
//! `"token": "…"`, `--password …`, `Cookie:`), in one pass over the input. When nothing matches,
//! the input is handed back as it was, without a copy.
//!
//! It works on bytes so that `valinectl redact` can filter any log, valid UTF-8 or not; every cut
//! it makes falls on an ASCII byte, so UTF-8 input stays UTF-8. It reads the forms secrets take in
//! logs: plain, JSON-escaped (`\/`, `\n`, `\u002F`, `\"`), percent-encoded (`%2F`, `%3D`, `%22`).
//!
//! Modules: `names` (which key names say secret), `shapes` (which values are secrets by their
//! shape), and this one (the scan, the forms around the values, streaming).

mod names;
mod shapes;

use std::borrow::Cow;

use names::{KeyKind, secret_key_kind};
use shapes::{
    aws_secret_end, dotted_match, glued_match, is_aws_key_id, is_free_edge, is_mailchimp_key, is_word, prefix_match,
    word_end,
};

/// What every secret is replaced with.
pub const MASK: &str = "***REDACTED***";

/// How many rules the redactor applies, for the performance notes: the provider prefixes, the
/// dotted shapes (the `hvs.`-style prefixes, and JWT, SendGrid, legacy Vault, GitHub `v1.`,
/// Slack `xoxe.`, Terraform Cloud, Discord bot token), the other shapes (AWS access key id, AWS
/// secret key, private-key block, URL credentials, Discord webhook, Slack webhook,
/// `Bearer`/`Basic`/`Bot` credentials, glued tokens, Telegram bot token, Teams / Office 365
/// webhook, Mailchimp key, GitHub token split over lines or escaped), and the rules by place
/// (secret-named values, long flags, short password flags, `user:password` flags, `key=` in a
/// query).
pub fn rule_count() -> usize {
    shapes::PREFIX_RULES.len() + shapes::DOT_PREFIXES.len() + 7 + 12 + 5
}

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
/// `-----END` line has not been seen yet, or a GitHub token wrapped at the chunk's last line end.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StreamState {
    in_private_key: bool,
    /// The rest of a wrapped GitHub token the next chunk should start with.
    wrapped: Option<Wrapped>,
}

/// A GitHub token cut by a line end: how many characters of its body are still to come, and
/// which body characters it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wrapped {
    missing: u8,
    github: GithubForm,
}

impl StreamState {
    /// True while a private-key block is open.
    pub fn in_private_key(&self) -> bool {
        self.in_private_key
    }
}

/// Redacts one chunk of a stream that ends at a line end (or at the end of the stream), carrying
/// an open private-key block over to the next chunk.
pub fn redact_stream<'a>(input: &'a [u8], state: &mut StreamState) -> Cow<'a, [u8]> {
    let mut scan = Scanner::new(input, Sink::Redact { out: None, copied: 0 });
    scan.run(state);
    scan.finish_redacted()
}

/// One secret found by [`find_secrets`]: its kind (`github-pat`, `private-key`, `secret-value`,
/// …) and the byte range of the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: &'static str,
    pub start: usize,
    pub end: usize,
    /// Where the construct that holds the secret starts (a key name, a flag, `-----BEGIN`).
    pub context_start: usize,
    /// Found by the name it is stored under (a key, a flag, a header), not by its shape.
    pub by_name: bool,
    /// The tail of a private-key block carried over from an earlier chunk: replaced by nothing,
    /// since the mask was written where the block began.
    silent: bool,
}

impl Finding {
    /// A stable name for this secret that does not give it away, for allowlists: the first 16
    /// hex digits of SHA-256 over the kind and the secret.
    pub fn fingerprint(&self, input: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.kind.as_bytes());
        h.update(b":");
        h.update(input.get(self.start..self.end).unwrap_or_default());
        let digest: [u8; 32] = h.finalize().into();
        hex::encode(&digest[..8])
    }

    /// For a repository scan: false for a secret-named value that is not a literal secret
    /// (`password: String`, `token = read_token()`, `api_key: ${API_KEY}`, `secret: xxxxxxxx`).
    /// Values found by their shape always count.
    pub fn is_literal(&self, input: &[u8]) -> bool {
        let v = input.get(self.start..self.end).unwrap_or_default();
        let placeholder = v.iter().any(|c| b"${}<>()[]*%".contains(c)) || v == MASK.as_bytes();
        if self.kind == "private-key" {
            // a key body is base64 lines; `{body}` or `…` in a format string is not a key
            return !placeholder && v.iter().filter(|c| c.is_ascii_alphanumeric()).count() >= 16;
        }
        if !self.by_name {
            return true;
        }
        let letters = v.iter().any(u8::is_ascii_alphabetic);
        let digits = v.iter().any(u8::is_ascii_digit);
        let mixed = v.iter().any(u8::is_ascii_lowercase) && v.iter().any(u8::is_ascii_uppercase);
        let blank = v.iter().any(u8::is_ascii_whitespace);
        !placeholder && !blank && ((v.len() >= 8 && letters && digits) || (v.len() >= 20 && mixed))
    }
}

/// Every secret in `input`, in order, as `redact_bytes` would mask them.
pub fn find_secrets(input: &[u8]) -> Vec<Finding> {
    let mut scan = Scanner::new(input, Sink::Collect(Vec::new()));
    scan.run(&mut StreamState::default());
    match scan.sink {
        Sink::Collect(found) => found,
        Sink::Redact { .. } => Vec::new(),
    }
}

/// How far back from the end of a partial chunk a cut must stay, so that every secret that
/// starts before the cut has been seen whole.
const PARTIAL_TAIL: usize = 64 * 1024;

/// Redacts the leading part of `input` that can be decided without seeing what follows it, for
/// a line too long to hold whole. Returns the redacted part and how many input bytes it covers;
/// the caller keeps the rest and hands it back with more input. Covers nothing (0) when no safe
/// cut exists yet.
///
/// A cut falls only after a separator (white space, `,`, `;`), at least 64 KiB before the end of
/// `input`, and outside every secret and what introduces it (`Authorization: Bearer`, a key
/// name, `-----BEGIN … PRIVATE KEY-----`). An open private-key block is the exception: it is
/// masked up to near the end and carried over in `state`.
pub fn redact_partial<'a>(input: &'a [u8], state: &mut StreamState) -> (Cow<'a, [u8]>, usize) {
    let mut end_state = *state;
    let mut scan = Scanner::new(input, Sink::Collect(Vec::new()));
    scan.run(&mut end_state);
    let Sink::Collect(found) = scan.sink else { return (Cow::Borrowed(&[]), 0) };
    let n = input.len();
    if n <= PARTIAL_TAIL {
        return (Cow::Borrowed(&[]), 0);
    }
    // A private-key block still open at the end: everything up to near the end is masked; the
    // last bytes stay, since they may hold the start of the `-----END` line.
    if end_state.in_private_key {
        let cut = n - 256;
        let open = found.last().map_or(0, |f| f.start);
        if open < cut {
            let out = apply(input, &found, cut, Some(cut));
            *state = end_state;
            return (out, cut);
        }
    }
    let limit = n - PARTIAL_TAIL;
    // The last separator before `limit` outside every finding's reach.
    let mut cut = limit;
    // the findings that start before the cut
    let mut kept = found.as_slice();
    while cut > 0 {
        while let [before @ .., last] = kept
            && last.context_start >= cut
        {
            kept = before;
        }
        if let [.., last] = kept
            && last.end >= cut
        {
            cut = last.context_start;
            continue;
        }
        if matches!(input.get(cut - 1), Some(b' ' | b'\t' | b'\n' | b'\r' | b',' | b';')) {
            break;
        }
        cut -= 1;
    }
    if cut == 0 {
        return (Cow::Borrowed(&[]), 0);
    }
    // No block is open at the cut: one carried in has closed before it (its finding would reach
    // the cut otherwise), and one opened before it would reach the end. Likewise no wrapped
    // token: a cut falls only after a whole line's worth of look-ahead.
    state.in_private_key = false;
    state.wrapped = None;
    (apply(input, kept, cut, None), cut)
}

/// `input[..cut]` with the findings masked (a finding running past `cut` is masked up to it).
/// The findings are in order, apart, and inside `input`, and so is `cut`.
fn apply<'a>(input: &'a [u8], found: &[Finding], cut: usize, clip: Option<usize>) -> Cow<'a, [u8]> {
    let relevant: Vec<&Finding> = found.iter().filter(|f| f.start < cut).collect();
    if relevant.is_empty() {
        return Cow::Borrowed(input.get(..cut).unwrap_or(input));
    }
    let mut out = Vec::with_capacity(cut);
    let mut copied = 0;
    for f in relevant {
        let end = clip.map_or(f.end, |c| f.end.min(c));
        out.extend_from_slice(input.get(copied..f.start).unwrap_or_default());
        if !f.silent {
            out.extend_from_slice(MASK.as_bytes());
        }
        copied = end;
    }
    out.extend_from_slice(input.get(copied.min(cut)..cut).unwrap_or_default());
    Cow::Owned(out)
}

/// True when a key name (a field, variable or header name) says its value is a secret:
/// `GITHUB_TOKEN`, `password`, `X-Api-Key`, `accessToken`, `client_secret`, `Cookie`, `JSESSIONID`.
/// Not `max_tokens`, `tokenizer`, `keyboard`, `DISCORD_PUBLIC_KEY` or `token_type`.
pub fn is_secret_key(name: &str) -> bool {
    secret_key_kind(name.as_bytes()).is_some()
}

enum Sink {
    Redact { out: Option<Vec<u8>>, copied: usize },
    Collect(Vec<Finding>),
}

struct Scanner<'a> {
    s: &'a [u8],
    sink: Sink,
    /// Where the last AWS access key id ended: a secret key is usually written right after it.
    aws_id_end: Option<usize>,
}

/// How close after an AWS access key id a 40-character run without `/` or `+` counts as its
/// secret key.
const AWS_CONTEXT: usize = 256;

/// The length of `ch` written at `s[p..]` in any of the forms logs use: as is, percent-encoded
/// (`%2F`), as a JSON `\u` escape (`\u002F`), and for `/` JSON-escaped (`\/`, `\\/`). 0 if absent.
#[inline]
fn enc_at(s: &[u8], p: usize, ch: u8) -> usize {
    let Some(&b) = s.get(p) else { return 0 };
    if b == ch {
        return 1;
    }
    let hex = |at: usize| -> bool {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        match (s.get(at), s.get(at + 1)) {
            (Some(&h), Some(&l)) => {
                HEX.get(usize::from(ch >> 4)) == Some(&h)
                    && HEX.get(usize::from(ch & 15)).is_some_and(|x| l.eq_ignore_ascii_case(x))
            }
            _ => false,
        }
    };
    match b {
        b'%' if hex(p + 1) => 3,
        b'\\' => match s.get(p + 1) {
            Some(b'u') if s.get(p + 2) == Some(&b'0') && s.get(p + 3) == Some(&b'0') && hex(p + 4) => 6,
            Some(&c) if c == ch && ch == b'/' => 2,
            Some(b'\\') if ch == b'/' && s.get(p + 2) == Some(&b'/') => 3,
            _ => 0,
        },
        _ => 0,
    }
}

#[inline]
/// The quote at `s[p..]` in any form (`"`, `'`, `\"`, `\\\"`, `%22`, `\u0022`, `&quot;`): its bytes.
fn quote_at(s: &[u8], p: usize) -> Option<&[u8]> {
    let rest = s.get(p..)?;
    let b = *rest.first()?;
    let len = match b {
        b'"' | b'\'' => 1,
        b'\\' => {
            let slashes = rest.iter().take_while(|&&c| c == b'\\').count();
            if s.get(p + slashes) == Some(&b'"') && slashes % 2 == 1 {
                slashes + 1
            } else {
                let u = enc_at(s, p, b'"');
                if u == 0 {
                    return None;
                }
                u
            }
        }
        b'%' => {
            let u = enc_at(s, p, b'"');
            if u == 0 {
                return None;
            }
            u
        }
        b'&' if rest.starts_with(b"&quot;") => 6,
        _ => return None,
    };
    rest.get(..len)
}

fn find(s: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut at = from;
    while at + needle.len() <= s.len() {
        let p = at + s.get(at..)?.iter().position(|&c| c == first)?;
        if s.get(p..)?.starts_with(needle) {
            return Some(p);
        }
        at = p + 1;
    }
    None
}

fn line_end(s: &[u8], from: usize) -> usize {
    s.get(from..).and_then(|rest| rest.iter().position(|&c| c == b'\n')).map_or(s.len(), |p| p + from)
}

fn skip_blanks(s: &[u8], mut p: usize) -> usize {
    while matches!(s.get(p), Some(b' ' | b'\t')) {
        p += 1;
    }
    p
}

/// The words private-key labels are made of.
const LABEL_WORDS: &[&[u8]] = &[
    b"PRIVATE",
    b"KEY",
    b"RSA",
    b"DSA",
    b"EC",
    b"ECDSA",
    b"ED25519",
    b"OPENSSH",
    b"ENCRYPTED",
    b"PGP",
    b"BLOCK",
    b"SSH2",
];

/// A private-key label (`RSA PRIVATE KEY`, `OPENSSH PRIVATE KEY`, `PGP PRIVATE KEY BLOCK`) from
/// `s[p..]` up to the closing `-----`, its words separated by spaces in any form (` `, `%20`,
/// `\u0020`, `+`). Only known label words count, so that nothing else (a token among the words,
/// say) passes for a label and escapes with it. Returns where the closing `-----` ends.
fn private_label_end(s: &[u8], mut p: usize) -> Option<usize> {
    let mut words = 0;
    let mut last_two: [&[u8]; 2] = [b"", b""];
    loop {
        if words > 5 {
            return None;
        }
        let rest = s.get(p..)?;
        let word_len = rest.iter().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit()).count();
        let (word, after) = rest.split_at_checked(word_len)?;
        if !LABEL_WORDS.contains(&word) {
            return None;
        }
        words += 1;
        last_two = [last_two[1], word];
        p += word_len;
        if after.starts_with(b"-----") {
            break;
        }
        let space = if s.get(p) == Some(&b'+') { 1 } else { enc_at(s, p, b' ') };
        if space == 0 {
            return None;
        }
        p += space;
    }
    let private = last_two == [b"PRIVATE".as_slice(), b"KEY"] || last_two == [b"KEY".as_slice(), b"BLOCK"];
    private.then_some(p + 5)
}

/// The first `-----END <private label>-----` at or after `from`: where it starts and ends.
fn find_pem_end(s: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut at = from;
    while let Some(p) = find(s, at, b"-----END") {
        let mut q = p + 8;
        let space = if s.get(q) == Some(&b'+') { 1 } else { enc_at(s, q, b' ') };
        if space > 0 {
            q += space;
            if let Some(end) = private_label_end(s, q) {
                return Some((p, end));
            }
        }
        at = p + 8;
    }
    None
}

/// Command-line tools whose short flag takes a password: `mysql -p X`, `mysql -pX`,
/// `sshpass -p X`, `docker login -p X`, `redis-cli -a X`; the tool, the subcommand it needs
/// (`docker run -p 8080:80` is a port), and the flag.
/// A tool, the subcommand it needs, and its password flag.
type PasswordFlag = (&'static [u8], Option<&'static [u8]>, u8);

const PASSWORD_SHORT_FLAGS: &[PasswordFlag] = &[
    (b"mysql", None, b'p'),
    (b"mysqldump", None, b'p'),
    (b"mysqladmin", None, b'p'),
    (b"mariadb", None, b'p'),
    (b"mariadb-dump", None, b'p'),
    (b"mongo", None, b'p'),
    (b"mongosh", None, b'p'),
    (b"mongodump", None, b'p'),
    (b"mongorestore", None, b'p'),
    (b"sshpass", None, b'p'),
    (b"docker", Some(b"login"), b'p'),
    (b"podman", Some(b"login"), b'p'),
    (b"nerdctl", Some(b"login"), b'p'),
    (b"redis-cli", None, b'a'),
];

/// Where the tool starts when the line holding `pos` runs, before `pos`, a tool whose short
/// `flag` takes a password: its name as a whole word (or the last part of a path), then its
/// subcommand if it needs one.
fn line_runs(s: &[u8], pos: usize, flag: u8) -> Option<usize> {
    let before = s.get(..pos)?;
    let start = before.iter().rposition(|&c| c == b'\n').map_or(0, |p| p + 1).max(pos.saturating_sub(1024));
    let line = before.get(start..)?;
    let mut i = 0;
    let mut wanted: Option<(&[u8], usize)> = None;
    while let Some(&b) = line.get(i) {
        if !is_word(b) {
            i += 1;
            continue;
        }
        let e = word_end(line, i);
        let word = line.get(i..e)?;
        if let Some((sub, at)) = wanted.take()
            && word == sub
        {
            return Some(at);
        }
        let boundary =
            i == 0 || matches!(line.get(i - 1), Some(b' ' | b'\t' | b'/' | b'"' | b'\'' | b'`' | b'(' | b';' | b'|'));
        if boundary
            && let Some((_, sub, _)) = PASSWORD_SHORT_FLAGS.iter().find(|(cmd, _, f)| *f == flag && word == *cmd)
        {
            match sub {
                None => return Some(start + i),
                Some(sub) => wanted = Some((sub, start + i)),
            }
        }
        i = e;
    }
    None
}

impl<'a> Scanner<'a> {
    fn new(s: &'a [u8], sink: Sink) -> Self {
        Scanner { s, sink, aws_id_end: None }
    }

    /// Masks `s[start..end]`, a secret of `kind` whose construct starts at `from`.
    fn mask(&mut self, from: usize, start: usize, end: usize, kind: &'static str, by_name: bool) {
        self.mask_as(from, start, end, kind, by_name, false);
    }

    fn mask_as(&mut self, from: usize, start: usize, end: usize, kind: &'static str, by_name: bool, silent: bool) {
        match &mut self.sink {
            Sink::Redact { out, copied } => {
                let out = out.get_or_insert_with(|| Vec::with_capacity(self.s.len() + 16));
                // findings come in order, apart: `copied <= start`
                out.extend_from_slice(self.s.get(*copied..start).unwrap_or_default());
                if !silent {
                    out.extend_from_slice(MASK.as_bytes());
                }
                *copied = end;
            }
            Sink::Collect(found) => {
                found.push(Finding { kind, start, end, context_start: from.min(start), by_name, silent })
            }
        }
    }

    fn finish_redacted(self) -> Cow<'a, [u8]> {
        match self.sink {
            Sink::Redact { out: Some(mut out), copied } => {
                out.extend_from_slice(self.s.get(copied..).unwrap_or_default());
                Cow::Owned(out)
            }
            _ => Cow::Borrowed(self.s),
        }
    }

    fn run(&mut self, state: &mut StreamState) {
        let s = self.s;
        let n = s.len();
        let mut i = 0;
        if state.in_private_key {
            match find_pem_end(s, 0) {
                Some((body_end, end)) => {
                    self.mask_as(0, 0, body_end, "private-key", false, true);
                    i = end;
                    state.in_private_key = false;
                }
                None => {
                    // The whole chunk is inside the key.
                    self.mask_as(0, 0, n, "private-key", false, true);
                    return;
                }
            }
        }
        if let Some(w) = state.wrapped.take() {
            i = self.wrapped_rest(w);
        }
        while let Some(&b) = s.get(i) {
            if !is_word(b) {
                i += 1;
                continue;
            }
            let we = word_end(s, i);
            let ws = unescaped_start(s, i, we);
            i = self.at_word(ws, we, state);
        }
    }

    /// Looks at the word `s[ws..we]` and whatever follows it; returns where scanning resumes.
    #[inline]
    fn at_word(&mut self, ws: usize, we: usize, state: &mut StreamState) -> usize {
        let s = self.s;
        // a word is never empty (the scan starts one at a word byte)
        let word = s.get(ws..we).unwrap_or_default();
        let Some(&first) = word.first() else { return we };
        let len = word.len();
        let next = s.get(we).copied();

        // A GitHub token with an escape in it or wrapped at a line end: only words starting
        // `gh` or `gi` before a `\`, `%` or line end pay for the look.
        if first == b'g'
            && matches!(word.get(1), Some(b'h' | b'i'))
            && matches!(next, Some(b'\\' | b'%' | b'\n' | b'\r'))
            && let Some(end) = self.github_split(ws, state)
        {
            return end;
        }
        if first == b'-' {
            if word.starts_with(b"-----BEGIN")
                && let Some(end) = self.private_key(ws, ws, state)
            {
                return end;
            }
            if let Some(end) = self.flag(ws, we) {
                return end;
            }
        }
        if len >= 20 {
            if let Some((rule, end)) = prefix_match(s, ws, we) {
                self.mask(ws, ws, end, rule.kind, false);
                return end;
            }
            if is_aws_key_id(word) {
                self.aws_id_end = Some(we);
                self.mask(ws, ws, we, "aws-access-key-id", false);
                return we;
            }
            if len >= 24
                && let Some((at, rule)) = glued_match(word)
            {
                self.mask(ws + at, ws + at, we, rule.kind, false);
                return we;
            }
            if is_mailchimp_key(word) {
                self.mask(ws, ws, we, "mailchimp-api-key", false);
                return we;
            }
        }
        let Some(next) = next else {
            return self.aws_secret(ws, we, len, None).unwrap_or(we);
        };
        match next {
            b'.' => {
                if len == 5 && word.eq_ignore_ascii_case(b"hooks") {
                    if let Some(end) = self.slack_webhook(ws, we) {
                        return end;
                    }
                } else if (len >= 10 || len <= 4)
                    && let Some((end, kind)) = dotted_match(s, ws, we)
                {
                    self.mask(ws, ws, end, kind, false);
                    return end;
                }
                // a dotted key name (`connect.sid=`) ends at its last part
                self.aws_secret(ws, we, len, Some(next)).unwrap_or(we)
            }
            b'/' | b'%' | b'\\' | b':' => {
                if len == 8
                    && word.eq_ignore_ascii_case(b"webhooks")
                    && let Some(end) = self.discord_webhook(we)
                {
                    return end;
                }
                if (len == 7 || len == 9)
                    && word.first().is_some_and(|&c| (c | 0x20) == b'w')
                    && let Some(end) = self.office_webhook(ws, we)
                {
                    return end;
                }
                if word.last().is_some_and(u8::is_ascii_digit)
                    && let Some(end) = self.telegram(ws, we)
                {
                    return end;
                }
                if next != b'/' && len >= 2 {
                    let colon = enc_at(s, we, b':');
                    if colon > 0 {
                        let a = enc_at(s, we + colon, b'/');
                        if a > 0 {
                            let b = enc_at(s, we + colon + a, b'/');
                            if b > 0 {
                                return self.url(we + colon + a + b);
                            }
                        }
                    }
                    if let Some(end) = self.key_value(ws, we, state) {
                        return end;
                    }
                }
                self.aws_secret(ws, we, len, Some(next)).unwrap_or(we)
            }
            b'"' | b'\'' | b'=' | b'&' => match self.key_value(ws, we, state) {
                Some(end) => end,
                None => self.aws_secret(ws, we, len, Some(next)).unwrap_or(we),
            },
            b' ' | b'\t' => {
                if let Some(end) = self.key_value(ws, we, state) {
                    return end;
                }
                // `Bot`, `Basic`, `Bearer`
                if matches!(len, 3 | 5 | 6)
                    && word.first().is_some_and(|&c| (c | 0x20) == b'b')
                    && let Some(end) = self.scheme_credential(ws, word, we)
                {
                    return end;
                }
                self.aws_secret(ws, we, len, Some(next)).unwrap_or(we)
            }
            _ => self.aws_secret(ws, we, len, Some(next)).unwrap_or(we),
        }
    }

    /// A 40-character base64 run is this very word, or goes on past it through `/` or `+`;
    /// checking that first spares a second scan of every ordinary word.
    #[inline]
    fn aws_secret(&mut self, ws: usize, we: usize, len: usize, next: Option<u8>) -> Option<usize> {
        if !(len == 40 || (len < 40 && matches!(next, Some(b'/' | b'+'))))
            || (ws > 0 && !is_free_edge(self.s.get(ws - 1)))
        {
            return None;
        }
        let end = aws_secret_end(self.s, ws)?;
        let _ = we;
        // Base64 of ordinary data (GitHub node ids, say) also comes in runs of 40: without a `/`
        // or `+`, only right after an access key id is it taken for a secret key.
        let near_id = self.aws_id_end.is_some_and(|e| ws - e <= AWS_CONTEXT);
        if !near_id && !self.s.get(ws..end).is_some_and(|run| run.iter().any(|&c| c == b'/' || c == b'+')) {
            return None;
        }
        // When the id is what makes it a secret key, the finding reaches back to the id, so that
        // a streaming cut never separates them.
        let from = match self.aws_id_end {
            Some(e) if near_id => e - 20,
            _ => ws,
        };
        self.mask(from, ws, end, "aws-secret-access-key", false);
        Some(end)
    }

    /// `-----BEGIN … PRIVATE KEY-----` … `-----END … PRIVATE KEY-----` at `ws`: the body goes.
    fn private_key(&mut self, from: usize, ws: usize, state: &mut StreamState) -> Option<usize> {
        let s = self.s;
        let mut p = ws + 10; // "-----BEGIN"
        let space = if s.get(p) == Some(&b'+') { 1 } else { enc_at(s, p, b' ') };
        if space == 0 {
            return None;
        }
        p += space;
        let body_start = private_label_end(s, p)?;
        if let Some((body_end, end)) = find_pem_end(s, body_start) {
            self.mask(from, body_start, body_end, "private-key", false);
            return Some(end);
        }
        // No END: in a JSON string (`\n` escapes) the block cannot outlive the string; with real
        // newlines it goes on in the next chunk.
        if s.get(body_start) == Some(&b'\\') {
            let mut end = body_start;
            while let Some(&c) = s.get(end)
                && !matches!(c, b'"' | b'\n' | b'\r')
            {
                end += 1;
            }
            // stop at the `\` of an escaped closing quote
            if end > body_start && s.get(end - 1) == Some(&b'\\') && s.get(end) == Some(&b'"') {
                end -= 1;
            }
            self.mask(from, body_start, end, "private-key", false);
            return Some(end);
        }
        self.mask(from, body_start, s.len(), "private-key", false);
        state.in_private_key = true;
        Some(s.len())
    }

    /// After `scheme://` (in any form): user-info goes (`https://***REDACTED***@host`).
    fn url(&mut self, authority: usize) -> usize {
        let s = self.s;
        let mut end = authority;
        let mut at = None;
        let mut has_colon = false;
        let limit = (authority + 512).min(s.len());
        while end < limit
            && let Some(&c) = s.get(end)
        {
            if c.is_ascii_whitespace() || b"/?#\"'<>`".contains(&c) {
                break;
            }
            if c == b'\\' || c == b'%' {
                if enc_at(s, end, b'/') > 0 || quote_at(s, end).is_some() {
                    break;
                }
                let a = enc_at(s, end, b'@');
                if a > 0 {
                    at = Some((end, a));
                    end += a;
                    continue;
                }
                let colon = enc_at(s, end, b':');
                if colon > 0 {
                    has_colon |= at.is_none();
                    end += colon;
                    continue;
                }
                if c == b'\\' {
                    break;
                }
            }
            if c == b'@' {
                at = Some((end, 1));
            } else if c == b':' && at.is_none() {
                has_colon = true;
            }
            end += 1;
        }
        if let Some((at, at_len)) = at {
            if has_colon || at - authority >= 16 {
                self.mask(authority, authority, at, "url-credentials", true);
            }
            return at + at_len;
        }
        authority
    }

    /// `…/webhooks/{id}/{token}` (Discord, in any host spelling, port or escaping): from the
    /// id to the end of the token.
    fn discord_webhook(&mut self, we: usize) -> Option<usize> {
        let s = self.s;
        let mut p = we + enc_at(s, we, b'/');
        if p == we {
            return None;
        }
        let id_start = p;
        let digits = s.get(p..)?.iter().take_while(|c| c.is_ascii_digit()).count();
        if !(15..=21).contains(&digits) {
            return None;
        }
        p += digits;
        let slash = enc_at(s, p, b'/');
        if slash == 0 {
            return None;
        }
        let token_end = word_end(s, p + slash);
        if token_end - (p + slash) < 40 {
            return None;
        }
        self.mask(id_start, id_start, token_end, "discord-webhook", false);
        Some(token_end)
    }

    /// `hooks.slack.com/services/…`, `/workflows/…`, `/triggers/…`: everything after the kind.
    fn slack_webhook(&mut self, ws: usize, we: usize) -> Option<usize> {
        let s = self.s;
        if !s.get(we..)?.starts_with(b".slack.com") {
            return None;
        }
        let mut p = we + 10;
        if s.get(p) == Some(&b':') {
            p += 1 + s.get(p + 1..)?.iter().take_while(|c| c.is_ascii_digit()).count();
        }
        p += enc_at(s, p, b'/');
        let kind_end = word_end(s, p);
        let kind = s.get(p..kind_end)?;
        if !(kind == b"services" || kind == b"workflows" || kind == b"triggers") {
            return None;
        }
        let slash = enc_at(s, kind_end, b'/');
        if slash == 0 {
            return None;
        }
        let start = kind_end + slash;
        let mut end = start;
        while let Some(&c) = s.get(end)
            && !(c.is_ascii_whitespace() || b"\"'<>`?#)]},".contains(&c))
        {
            if c == b'\\' && quote_at(s, end).is_some() {
                break;
            }
            end += 1;
        }
        if end - start < 20 {
            return None;
        }
        self.mask(ws, start, end, "slack-webhook", false);
        Some(end)
    }

    /// `…/webhookb2/…` (Microsoft Teams incoming webhooks, on `*.webhook.office.com`) anywhere,
    /// and `…/webhook/…` on `outlook.office.com` or `outlook.office365.com`: everything after the
    /// kind, which holds the group, tenant, hash and creator that make the URL a credential.
    fn office_webhook(&mut self, ws: usize, we: usize) -> Option<usize> {
        let s = self.s;
        let word = s.get(ws..we)?;
        if !(word.eq_ignore_ascii_case(b"webhookb2")
            || (word.eq_ignore_ascii_case(b"webhook")
                && (host_before(s, ws, b"office.com") || host_before(s, ws, b"office365.com"))))
        {
            return None;
        }
        let slash = enc_at(s, we, b'/');
        if slash == 0 {
            return None;
        }
        let start = we + slash;
        let mut end = start;
        while let Some(&c) = s.get(end)
            && !(c.is_ascii_whitespace() || b"\"'<>`?#&)]},".contains(&c))
        {
            if c == b'\\' && quote_at(s, end).is_some() {
                break;
            }
            end += 1;
        }
        if end - start < 20 {
            return None;
        }
        self.mask(ws, start, end, "teams-webhook", false);
        Some(end)
    }

    /// A Telegram bot token: the bot's id (5 to 16 digits, alone or after `bot` in an API URL),
    /// `:` in any form, and a 35-character secret starting with `A`. The id goes too: it is
    /// half of the token.
    fn telegram(&mut self, ws: usize, we: usize) -> Option<usize> {
        let s = self.s;
        let word = s.get(ws..we)?;
        let digits = word.iter().rev().take_while(|c| c.is_ascii_digit()).count();
        let id_start = we - digits;
        let before_id = word.get(..word.len() - digits)?;
        if !(5..=16).contains(&digits) || !(id_start == ws || before_id.eq_ignore_ascii_case(b"bot")) {
            return None;
        }
        let colon = enc_at(s, we, b':');
        if colon == 0 || s.get(we + colon) != Some(&b'A') {
            return None;
        }
        let end = word_end(s, we + colon);
        if end - (we + colon) != 35 {
            return None;
        }
        self.mask(id_start, id_start, end, "telegram-bot-token", false);
        Some(end)
    }

    /// A GitHub token that is not one plain word: a character of it written as a JSON or
    /// percent escape (`ghp\u005f…`, `ghp%5F…`), or wrapped at a line end (a real one, or a
    /// JSON `\n` inside a string). Each piece between real line ends is masked on its own, so
    /// that the lines stay lines; a chunk that ends inside the token leaves the rest to the next
    /// one through `state`.
    fn github_split(&mut self, ws: usize, state: &mut StreamState) -> Option<usize> {
        let s = self.s;
        let (form, mut p) = github_prefix(s, ws)?;
        let mut escaped = p - ws > form.prefix_len();
        let mut body = 0;
        let mut wrapped = false;
        let mut piece_start = ws;
        let mut pieces: [(usize, usize); 4] = [(0, 0); 4];
        let mut n = 0;
        loop {
            if let Some((c, l)) = decoded_at(s, p)
                && form.accepts(c)
            {
                body += 1;
                escaped |= l > 1;
                p += l;
                continue;
            }
            if body >= form.body_len() || n + 1 >= pieces.len() {
                break;
            }
            let missing = form.body_len() - body;
            let raw = line_break_at(s, p);
            if raw > 0 {
                if p + raw == s.len() {
                    // The chunk ends here: the rest of the token starts the next one.
                    if let Some(piece) = pieces.get_mut(n) {
                        *piece = (piece_start, p);
                        n += 1;
                    }
                    state.wrapped = Some(Wrapped { missing: missing as u8, github: form });
                    wrapped = true;
                    p += raw;
                    piece_start = p;
                    break;
                }
                if decoded_run(s, p + raw, form, missing) < missing {
                    break;
                }
                if let Some(piece) = pieces.get_mut(n) {
                    *piece = (piece_start, p);
                    n += 1;
                }
                p += raw;
                piece_start = p;
                wrapped = true;
                continue;
            }
            let esc = escaped_line_break_at(s, p);
            if esc > 0 && decoded_run(s, p + esc, form, missing) >= missing {
                p += esc;
                wrapped = true;
                continue;
            }
            break;
        }
        // A plain token (prefix and body one word) is the prefix rules' to find.
        if !(wrapped || (escaped && body >= form.min_body())) {
            return None;
        }
        if piece_start < p
            && let Some(piece) = pieces.get_mut(n)
        {
            *piece = (piece_start, p);
            n += 1;
        }
        for &(a, b) in pieces.iter().take(n) {
            self.mask(ws, a, b, form.kind(), false);
        }
        Some(p)
    }

    /// The start of a chunk after one that ended inside a wrapped GitHub token: the rest of the
    /// token, when the chunk starts with it. Returns where scanning goes on.
    fn wrapped_rest(&mut self, w: Wrapped) -> usize {
        let s = self.s;
        let missing = w.missing as usize;
        if decoded_run(s, 0, w.github, missing) < missing {
            return 0;
        }
        let mut p = 0;
        while let Some((c, l)) = decoded_at(s, p)
            && w.github.accepts(c)
        {
            p += l;
        }
        self.mask(0, 0, p, w.github.kind(), false);
        p
    }

    /// `name=value`, `name: value`, `"name": "value"` (quoted or escaped in any form) where the
    /// name says secret.
    fn key_value(&mut self, ws: usize, we: usize, state: &mut StreamState) -> Option<usize> {
        let s = self.s;
        let mut p = we;
        // the closing quote of a quoted name
        if let Some(q) = quote_at(s, p) {
            p += q.len();
        }
        p = skip_blanks(s, p);
        let b = *s.get(p)?;
        let sep = match b {
            b'=' => {
                if matches!(s.get(p + 1), Some(b'=' | b'>' | b'~')) {
                    return None;
                }
                1
            }
            b':' => match s.get(p + 1) {
                Some(b':') => return None,
                Some(b'=') => 2,
                _ => 1,
            },
            b'%' | b'\\' => {
                let eq = enc_at(s, p, b'=');
                if eq > 0 { eq } else { enc_at(s, p, b':') }
            }
            _ => return None,
        };
        if sep == 0 {
            return None;
        }
        let name = s.get(ws..we)?;
        let kind = match secret_key_kind(name) {
            Some(kind) => kind,
            // a dotted name (`connect.sid`, `spring.datasource.password`): the whole of it
            None if ws > 0 && s.get(ws - 1) == Some(&b'.') => {
                let start = s.get(..ws)?.iter().rposition(|&c| !(is_word(c) || c == b'.')).map_or(0, |p| p + 1);
                secret_key_kind(s.get(start.max(ws.saturating_sub(64))..we)?)?
            }
            // `?key=…`, `&key=…`: an API key in a query string. `key` alone names too much else
            // (`"key": …` in GitHub's payloads, `primary key=id`) to count anywhere else.
            None if we - ws == 3 && name.eq_ignore_ascii_case(b"key") && after_query_separator(s, ws) => KeyKind::Plain,
            None => return None,
        };
        let eq_sep = b == b'=' || (sep > 1 && enc_at(s, p, b'=') > 0);
        p = skip_blanks(s, p + sep);
        self.named_value(ws, p, kind, eq_sep, state)
    }

    /// The value of a secret-named key or flag, starting at `p`.
    fn named_value(
        &mut self,
        from: usize,
        p: usize,
        kind: KeyKind,
        eq_sep: bool,
        state: &mut StreamState,
    ) -> Option<usize> {
        let s = self.s;
        let quote = quote_at(s, p);
        let vs = p + quote.map_or(0, <[u8]>::len);
        // A private key in any form runs to its END line, across lines.
        if s.get(vs..).is_some_and(|v| v.starts_with(b"-----BEGIN")) {
            return self.private_key(from, vs, state);
        }
        let ve = match quote {
            Some(q) => {
                let mut e = vs;
                if let &[q @ (b'"' | b'\'')] = q {
                    while let Some(&c) = s.get(e)
                        && c != q
                        && c != b'\n'
                    {
                        if c == b'\\' {
                            e += 1;
                        }
                        e += 1;
                    }
                    e.min(s.len())
                } else {
                    let line = line_end(s, vs);
                    s.get(..line).and_then(|l| find(l, vs, q)).unwrap_or(line)
                }
            }
            None => {
                let first = *s.get(vs)?;
                if first == b'{' || first == b'[' {
                    return None;
                }
                let mut e = vs;
                while let Some(&c) = s.get(e) {
                    let stop = match kind {
                        KeyKind::WholeLine => c == b'\n' || c == b'\r' || c == b'"' || c == b'\\',
                        KeyKind::Plain => c.is_ascii_whitespace() || b"&,;\"'`)]}<>\\".contains(&c),
                    };
                    if stop {
                        break;
                    }
                    e += 1;
                }
                // ADO.NET-style connection strings: `Password=two words;` runs to the `;`.
                if kind == KeyKind::Plain && eq_sep && matches!(s.get(e), Some(b' ' | b'\t')) {
                    let mut q = e;
                    while q - vs < 256
                        && let Some(&c) = s.get(q)
                        && !matches!(c, b';' | b'\n' | b'\r' | b'"' | b'\'' | b'=')
                    {
                        q += 1;
                    }
                    if s.get(q) == Some(&b';') {
                        e = q;
                    }
                }
                e
            }
        };
        let value = s.get(vs..ve).unwrap_or_default();
        if value.is_empty() || value == MASK.as_bytes() || value == b"null" {
            return Some(ve.max(vs));
        }
        self.mask(from, vs, ve, "secret-value", true);
        Some(ve)
    }

    /// Command-line flags: `--password X`, `-token X` (a secret-named flag and a separate value),
    /// `-p X` / `-pX` after a tool whose `-p` is a password (`mysql`, `sshpass`, `docker login`),
    /// `-u user:pass` / `--user user:pass`. `--token=X` is a key and value.
    fn flag(&mut self, ws: usize, we: usize) -> Option<usize> {
        let s = self.s;
        let word = s.get(ws..we)?;
        let dashes = word.iter().take_while(|&&c| c == b'-').count();
        if dashes > 2
            || dashes == word.len()
            || (ws > 0 && !s.get(ws - 1).is_some_and(|&c| c.is_ascii_whitespace() || matches!(c, b'"' | b'\'')))
        {
            return None;
        }
        let name = word.get(dashes..)?;
        let blank = matches!(s.get(we), Some(b' ' | b'\t'));
        let value_at = skip_blanks(s, we);
        let value_ok = blank && s.get(value_at).is_some_and(|&c| c != b'-' && !c.is_ascii_whitespace());
        if name.len() >= 3 && value_ok && secret_key_kind(name).is_some() {
            return self.flag_value(ws, value_at, None);
        }
        if dashes == 1
            && let Some(&short) = name.first()
        {
            // The finding reaches back to the tool, so that a streaming cut never separates them.
            if (short == b'p' || short == b'a')
                && let Some(tool) = line_runs(s, ws, short)
            {
                if name.len() > 1 {
                    // `-pSECRET`: the value is glued to the flag
                    return self.flag_value(tool, ws + 2, None);
                }
                if value_ok {
                    return self.flag_value(tool, value_at, None);
                }
            }
        }
        if value_ok && (name == b"u" || name == b"user") {
            // `user:password`: the part after the first colon, unless it is a numeric group id
            let end = self.value_end(value_at);
            let colon = s.get(value_at..end)?.iter().position(|&c| c == b':')? + value_at;
            if colon + 1 < end && s.get(colon + 1..end).is_some_and(|gid| !gid.iter().all(u8::is_ascii_digit)) {
                return self.flag_value(ws, colon + 1, Some(end));
            }
        }
        None
    }

    /// Where a command-line value starting at `p` ends: its closing quote, or white space.
    fn value_end(&self, p: usize) -> usize {
        let s = self.s;
        if let Some(&q) = s.get(p).filter(|&&c| c == b'"' || c == b'\'') {
            return s
                .get(p + 1..)
                .and_then(|rest| rest.iter().position(|&c| c == q || c == b'\n'))
                .map_or(s.len(), |e| p + 1 + e + 1);
        }
        s.get(p..).and_then(|rest| rest.iter().position(u8::is_ascii_whitespace)).map_or(s.len(), |e| p + e)
    }

    fn flag_value(&mut self, from: usize, p: usize, end: Option<usize>) -> Option<usize> {
        let s = self.s;
        let mut end = end.unwrap_or_else(|| self.value_end(p));
        let mut start = p;
        if let Some(&q) = s.get(p).filter(|&&c| c == b'"' || c == b'\'') {
            start += 1;
            if end > start && s.get(end - 1) == Some(&q) {
                end -= 1;
            }
        }
        if end <= start || s.get(start..end).is_none_or(|v| v == MASK.as_bytes()) {
            return None;
        }
        self.mask(from, start, end, "secret-flag", true);
        Some(end)
    }

    /// `Bearer x`, `Basic x`, `Bot x` outside a header: the credential goes when it looks like one.
    fn scheme_credential(&mut self, ws: usize, word: &[u8], we: usize) -> Option<usize> {
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
        while let Some(&c) = s.get(ve)
            && (c.is_ascii_alphanumeric() || b"._~+/=-".contains(&c))
        {
            ve += 1;
        }
        let cred = s.get(vs..ve)?;
        // base64 pads only at the end; `x=y` after the word is a setting, not a credential
        let body = cred.get(..cred.len() - cred.iter().rev().take_while(|&&c| c == b'=').count())?;
        if body.contains(&b'=') {
            return None;
        }
        let looks_like_credential = if bot {
            cred.len() >= 30 && cred.contains(&b'.')
        } else {
            // a word after `Bearer` in prose (`Bearer authentication`, `bearer sk-learn`) has
            // no digit and is short
            cred.len() >= 8
                && (cred.iter().any(u8::is_ascii_digit)
                    || (cred.len() >= 16
                        && (cred.iter().any(|c| b"._~+/=-".contains(c))
                            || cred.iter().skip(1).any(u8::is_ascii_uppercase))))
        };
        if !looks_like_credential {
            return None;
        }
        self.mask(ws, vs, ve, "authorization-credential", false);
        Some(ve)
    }
}

/// The GitHub token families a split token is read for: the classic ones (`ghp_` and the like,
/// 36 letters and digits) and fine-grained PATs (`github_pat_`, 82 characters with a `_`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GithubForm {
    Classic(u8),
    FineGrained,
}

impl GithubForm {
    fn prefix_len(self) -> usize {
        match self {
            GithubForm::Classic(_) => 4,
            GithubForm::FineGrained => 11,
        }
    }
    /// The length of a whole body: what a wrapped token must add up to.
    fn body_len(self) -> usize {
        match self {
            GithubForm::Classic(_) => 36,
            GithubForm::FineGrained => 82,
        }
    }
    /// The prefix rules' minimum, for a token that is escaped but not wrapped.
    fn min_body(self) -> usize {
        match self {
            GithubForm::Classic(_) => 30,
            GithubForm::FineGrained => 40,
        }
    }
    fn accepts(self, c: u8) -> bool {
        c.is_ascii_alphanumeric() || (self == GithubForm::FineGrained && c == b'_')
    }
    fn kind(self) -> &'static str {
        match self {
            GithubForm::Classic(b'p') => "github-pat",
            GithubForm::Classic(b'o') => "github-oauth-token",
            GithubForm::Classic(b'u') => "github-user-token",
            GithubForm::Classic(b's') => "github-app-installation-token",
            GithubForm::Classic(_) => "github-app-refresh-token",
            GithubForm::FineGrained => "github-fine-grained-pat",
        }
    }
}

/// The character at `s[p..]`, plain or escaped (`\u005f`, `%5F`), when it is a word character:
/// the character and how many bytes it takes.
#[inline]
fn decoded_at(s: &[u8], p: usize) -> Option<(u8, usize)> {
    let b = *s.get(p)?;
    if is_word(b) {
        return Some((b, 1));
    }
    let hex = |at: usize| -> Option<u8> { (*s.get(at)? as char).to_digit(16).map(|d| d as u8) };
    let (value, len) = match b {
        b'%' => ((hex(p + 1)? << 4) | hex(p + 2)?, 3),
        b'\\' if s.get(p + 1) == Some(&b'u') && s.get(p + 2) == Some(&b'0') && s.get(p + 3) == Some(&b'0') => {
            ((hex(p + 4)? << 4) | hex(p + 5)?, 6)
        }
        _ => return None,
    };
    is_word(value).then_some((value, len))
}

/// A GitHub token prefix at `s[ws..]`, its characters plain or escaped: the family and where the
/// body starts.
fn github_prefix(s: &[u8], ws: usize) -> Option<(GithubForm, usize)> {
    let mut got = [0u8; 11];
    let mut p = ws;
    for k in 0..got.len() {
        let (c, l) = decoded_at(s, p)?;
        if let Some(slot) = got.get_mut(k) {
            *slot = c;
        }
        p += l;
        if k == 3
            && c == b'_'
            && let [b'g', b'h', family @ (b'p' | b'o' | b'u' | b's' | b'r'), ..] = got
        {
            return Some((GithubForm::Classic(family), p));
        }
    }
    (got == *b"github_pat_").then_some((GithubForm::FineGrained, p))
}

/// How many body characters of `form` start at `s[p..]`, counted up to `want`.
fn decoded_run(s: &[u8], mut p: usize, form: GithubForm, want: usize) -> usize {
    let mut n = 0;
    while n < want
        && let Some((c, l)) = decoded_at(s, p)
        && form.accepts(c)
    {
        n += 1;
        p += l;
    }
    n
}

/// A real line end at `s[p..]` (`\n`, `\r\n`): its length, else 0.
fn line_break_at(s: &[u8], p: usize) -> usize {
    match (s.get(p), s.get(p + 1)) {
        (Some(b'\n'), _) => 1,
        (Some(b'\r'), Some(b'\n')) => 2,
        _ => 0,
    }
}

/// A JSON-escaped line end at `s[p..]` (`\n`, `\r\n` as written in a string): its length, else 0.
fn escaped_line_break_at(s: &[u8], p: usize) -> usize {
    if s.get(p) != Some(&b'\\') {
        return 0;
    }
    match s.get(p + 1) {
        Some(b'n') => 2,
        Some(b'r') if s.get(p + 2) == Some(&b'\\') && s.get(p + 3) == Some(&b'n') => 4,
        _ => 0,
    }
}

/// Whether `host` (any case) ends right before the `/` in front of `s[ws..]`, with or without a
/// port, the `/` in any form.
fn host_before(s: &[u8], ws: usize, host: &[u8]) -> bool {
    let slash = [6, 3, 2, 1].into_iter().find(|&l| ws >= l && enc_at(s, ws - l, b'/') == l);
    let Some(slash) = slash else { return false };
    let mut end = ws - slash;
    let port = s.get(..end).map_or(0, |before| before.iter().rev().take_while(|c| c.is_ascii_digit()).count());
    if port > 0 && end > port && s.get(end - port - 1) == Some(&b':') {
        end -= port + 1;
    }
    end >= host.len()
        && s.get(end - host.len()..end).is_some_and(|h| h.eq_ignore_ascii_case(host))
        && (end == host.len() || matches!(s.get(end - host.len() - 1), Some(b'.' | b'/')))
}

/// Whether the name at `ws` starts a query parameter: after `?` or `&` in any form (`%3F`,
/// `%26`, `\u0026`, `&amp;`).
fn after_query_separator(s: &[u8], ws: usize) -> bool {
    let Some(before) = s.get(..ws) else { return false };
    matches!(before.last(), Some(b'?' | b'&'))
        || (before.len() >= 3 && (enc_at(s, ws - 3, b'?') == 3 || enc_at(s, ws - 3, b'&') == 3))
        || (before.len() >= 6 && (enc_at(s, ws - 6, b'?') == 6 || enc_at(s, ws - 6, b'&') == 6))
        || before.ends_with(b"&amp;")
}

/// Where a word really starts when an escape is glued to its front: `\nMIIE…` (a JSON `\n`),
/// `\u002Fwebhooks`, `%2Fwebhooks`, `%22token`.
#[inline]
fn unescaped_start(s: &[u8], ws: usize, we: usize) -> usize {
    // most words have neither in front of them
    if ws == 0 || !matches!(s.get(ws - 1), Some(b'\\' | b'%')) {
        return ws;
    }
    // the byte before the word, then the word: `_` stands for the word's bytes that must be there
    match s.get(ws - 1..we) {
        Some([b'\\', b'n' | b't' | b'r' | b'b' | b'f', _, ..]) => ws + 1,
        Some([b'\\', b'u', a, b, c, d, _, ..]) if [a, b, c, d].iter().all(|h| h.is_ascii_hexdigit()) => ws + 5,
        Some([b'%', a, b, _, ..]) if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() => ws + 2,
        _ => ws,
    }
}

#[cfg(test)]
mod tests;
