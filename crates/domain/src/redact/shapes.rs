//! Secret shapes recognised by their value alone: provider tokens with a fixed prefix, dotted
//! tokens (JWTs, Discord bot tokens, SendGrid, Vault), AWS keys, and the byte classes they use.
//! Formats come from the providers' documentation of their token formats.

/// `[A-Za-z0-9_-]`: identifiers and most token alphabets. The scanner walks the input word by word.
#[inline]
pub(super) fn is_word(b: u8) -> bool {
    class(b) & WORD != 0
}

/// The base64 alphabet (standard and URL-safe) without padding.
#[inline]
pub(super) fn is_b64(b: u8) -> bool {
    class(b) & B64 != 0
}

/// The classes of a byte (the table has a row for every byte, so the look-up always succeeds).
#[inline]
fn class(b: u8) -> u8 {
    CLASS.get(usize::from(b)).copied().unwrap_or(0)
}

const WORD: u8 = 1;
const B64: u8 = 2;
const EDGE: u8 = 4;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            t[c] = WORD | B64;
        } else if b == b'+' || b == b'/' {
            t[c] = B64;
        } else if b.is_ascii_whitespace() {
            t[c] = EDGE;
        } else {
            let edges = b"\"'`=:,;()[]{}<>|\\";
            let mut k = 0;
            while k < edges.len() {
                if edges[k] == b {
                    t[c] = EDGE;
                }
                k += 1;
            }
        }
        c += 1;
    }
    t
};

#[inline]
pub(super) fn word_end(s: &[u8], mut i: usize) -> usize {
    while let Some(&b) = s.get(i)
        && is_word(b)
    {
        i += 1;
    }
    i
}

/// Which bytes a token's body may use.
#[derive(Clone, Copy)]
pub(super) enum Body {
    /// `[A-Za-z0-9_-]`
    Word,
    /// `[A-Za-z0-9]`
    Alnum,
    /// `[0-9a-f]`
    LowerHex,
    /// `[0-9a-fA-F]`
    Hex,
    /// `[A-Z0-9]`
    UpperAlnum,
}

impl Body {
    fn accepts(self, b: u8) -> bool {
        match self {
            Body::Word => is_word(b),
            Body::Alnum => b.is_ascii_alphanumeric(),
            Body::LowerHex => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
            Body::Hex => b.is_ascii_hexdigit(),
            Body::UpperAlnum => b.is_ascii_uppercase() || b.is_ascii_digit(),
        }
    }
}

/// A token recognised by its prefix: the body after the prefix has `min..=max` bytes of `body`.
pub(super) struct PrefixRule {
    pub prefix: &'static [u8],
    pub min: usize,
    pub max: usize,
    pub body: Body,
    pub kind: &'static str,
    /// The prefix is distinctive enough to be found glued to what comes before it (`x=1ghp_…`).
    pub glued: bool,
}

const fn rule(
    prefix: &'static [u8],
    min: usize,
    max: usize,
    body: Body,
    kind: &'static str,
    glued: bool,
) -> PrefixRule {
    PrefixRule { prefix, min, max, body, kind, glued }
}

const ANY: usize = 4096;

/// Provider tokens by the first byte of their prefix, longest prefixes first within a byte.
pub(super) static PREFIX_RULES: &[PrefixRule] = &[
    // GitHub: classic PATs, OAuth, user-to-server, App installation (server-to-server) and refresh tokens
    rule(b"github_pat_", 40, ANY, Body::Word, "github-fine-grained-pat", true),
    rule(b"ghp_", 30, ANY, Body::Alnum, "github-pat", true),
    rule(b"gho_", 30, ANY, Body::Alnum, "github-oauth-token", true),
    rule(b"ghu_", 30, ANY, Body::Alnum, "github-user-token", true),
    rule(b"ghs_", 30, ANY, Body::Alnum, "github-app-installation-token", true),
    rule(b"ghr_", 30, ANY, Body::Alnum, "github-app-refresh-token", true),
    // GitLab
    rule(b"glpat-", 20, ANY, Body::Word, "gitlab-pat", true),
    rule(b"glptt-", 20, ANY, Body::Word, "gitlab-pipeline-trigger-token", true),
    rule(b"glsoat-", 20, ANY, Body::Word, "gitlab-oauth-app-token", true),
    rule(b"glcbt-", 20, ANY, Body::Word, "gitlab-ci-build-token", true),
    rule(b"glffct-", 20, ANY, Body::Word, "gitlab-feature-flag-token", true),
    rule(b"glimt-", 20, ANY, Body::Word, "gitlab-incoming-mail-token", true),
    rule(b"glagent-", 40, ANY, Body::Word, "gitlab-agent-token", true),
    rule(b"gloas-", 20, ANY, Body::Word, "gitlab-oauth-secret", true),
    rule(b"gldt-", 20, ANY, Body::Word, "gitlab-deploy-token", true),
    rule(b"glrt-", 20, ANY, Body::Word, "gitlab-runner-token", true),
    rule(b"glft-", 20, ANY, Body::Word, "gitlab-feed-token", true),
    rule(b"GR1348941", 20, ANY, Body::Word, "gitlab-runner-registration-token", false),
    // Grafana
    rule(b"glsa_", 32, ANY, Body::Word, "grafana-service-account-token", true),
    rule(b"glc_", 32, ANY, Body::Word, "grafana-cloud-token", true),
    // Slack: bot, user, app, refresh, config and session tokens
    rule(b"xoxb-", 20, ANY, Body::Word, "slack-token", true),
    rule(b"xoxp-", 20, ANY, Body::Word, "slack-token", true),
    rule(b"xoxa-", 20, ANY, Body::Word, "slack-token", true),
    rule(b"xoxr-", 20, ANY, Body::Word, "slack-token", true),
    rule(b"xoxs-", 20, ANY, Body::Word, "slack-token", true),
    rule(b"xoxo-", 20, ANY, Body::Word, "slack-token", true),
    rule(b"xoxc-", 20, ANY, Body::Word, "slack-token", true),
    rule(b"xoxd-", 20, ANY, Body::Word, "slack-token", true),
    rule(b"xoxe-", 20, ANY, Body::Word, "slack-token", true),
    rule(b"xapp-", 20, ANY, Body::Word, "slack-app-token", true),
    // Stripe (secret, restricted, webhook signing)
    rule(b"sk_live_", 20, ANY, Body::Alnum, "stripe-secret-key", true),
    rule(b"rk_live_", 20, ANY, Body::Alnum, "stripe-restricted-key", true),
    rule(b"sk_test_", 20, ANY, Body::Alnum, "stripe-test-key", true),
    rule(b"rk_test_", 20, ANY, Body::Alnum, "stripe-test-key", true),
    rule(b"whsec_", 24, ANY, Body::Alnum, "stripe-webhook-secret", true),
    // Anthropic, then OpenAI (project, service-account, admin and legacy keys)
    rule(b"sk-ant-", 32, ANY, Body::Word, "anthropic-api-key", true),
    rule(b"sk-proj-", 20, ANY, Body::Word, "openai-api-key", true),
    rule(b"sk-svcacct-", 20, ANY, Body::Word, "openai-api-key", true),
    rule(b"sk-admin-", 20, ANY, Body::Word, "openai-api-key", true),
    rule(b"sk-", 32, ANY, Body::Word, "openai-api-key", false),
    // Shopify
    rule(b"shpat_", 32, 32, Body::Hex, "shopify-token", true),
    rule(b"shpss_", 32, 32, Body::Hex, "shopify-token", true),
    rule(b"shpca_", 32, 32, Body::Hex, "shopify-token", true),
    rule(b"shppa_", 32, 32, Body::Hex, "shopify-token", true),
    // Sentry organisation and user auth tokens
    rule(b"sntrys_", 40, ANY, Body::Word, "sentry-token", true),
    rule(b"sntryu_", 64, 64, Body::LowerHex, "sentry-token", true),
    // Supabase
    rule(b"sbp_", 40, 40, Body::LowerHex, "supabase-token", true),
    // Twilio API key SIDs and account SIDs
    rule(b"SK", 32, 32, Body::LowerHex, "twilio-api-key", false),
    rule(b"AC", 32, 32, Body::LowerHex, "twilio-account-sid", false),
    // Google API keys and OAuth client secrets
    rule(b"AIza", 35, 35, Body::Word, "google-api-key", false),
    rule(b"GOCSPX-", 24, ANY, Body::Word, "google-oauth-client-secret", true),
    // age
    rule(b"AGE-SECRET-KEY-1", 50, ANY, Body::UpperAlnum, "age-secret-key", true),
    // Atlassian
    rule(b"ATATT3", 50, ANY, Body::Word, "atlassian-api-token", false),
    // Mailgun
    rule(b"key-", 32, 32, Body::Alnum, "mailgun-api-key", false),
    // npm
    rule(b"npm_", 36, ANY, Body::Alnum, "npm-token", true),
    // PyPI and TestPyPI upload tokens (macaroons)
    rule(b"pypi-AgE", 50, ANY, Body::Word, "pypi-token", true),
    // RubyGems API keys
    rule(b"rubygems_", 48, 48, Body::Hex, "rubygems-api-key", true),
    // Docker Hub personal and organisation access tokens
    rule(b"dckr_pat_", 20, ANY, Body::Word, "docker-hub-token", true),
    rule(b"dckr_oat_", 20, ANY, Body::Word, "docker-hub-token", true),
    // Databricks
    rule(b"dapi", 32, 34, Body::Word, "databricks-token", false),
    // Heroku
    rule(b"HRKU-", 30, ANY, Body::Word, "heroku-api-key", true),
    // Hugging Face user and organisation tokens
    rule(b"hf_", 30, 40, Body::Alnum, "huggingface-token", false),
    rule(b"api_org_", 30, 40, Body::Alnum, "huggingface-token", true),
    // DigitalOcean personal, OAuth and refresh tokens
    rule(b"dop_v1_", 64, 64, Body::LowerHex, "digitalocean-token", true),
    rule(b"doo_v1_", 64, 64, Body::LowerHex, "digitalocean-token", true),
    rule(b"dor_v1_", 64, 64, Body::LowerHex, "digitalocean-token", true),
    // New Relic user, admin and insert keys
    rule(b"NRAK-", 27, 27, Body::UpperAlnum, "newrelic-api-key", true),
    rule(b"NRAA-", 27, 27, Body::Word, "newrelic-api-key", true),
    rule(b"NRII-", 24, 40, Body::Word, "newrelic-insert-key", true),
    // Postman, Linear, Notion
    rule(b"PMAK-", 50, ANY, Body::Word, "postman-api-key", true),
    rule(b"lin_api_", 40, ANY, Body::Alnum, "linear-api-key", true),
    rule(b"ntn_", 40, ANY, Body::Alnum, "notion-token", true),
    // Square OAuth access tokens and application secrets, then Square `EAAA` access tokens
    // (64 characters) before Facebook / Meta access tokens (`EAA` and a long alphanumeric run)
    rule(b"sq0atp-", 22, ANY, Body::Word, "square-access-token", true),
    rule(b"sq0csp-", 43, ANY, Body::Word, "square-oauth-secret", true),
    rule(b"EAAA", 60, ANY, Body::Word, "square-access-token", false),
    rule(b"EAA", 100, ANY, Body::Alnum, "facebook-access-token", false),
    // JFrog Artifactory API keys and reference tokens (`cmVmdGtu` is base64 of `reftkn`)
    rule(b"AKCp", 69, ANY, Body::Alnum, "jfrog-api-key", false),
    rule(b"cmVmdGtu", 56, ANY, Body::Alnum, "jfrog-reference-token", false),
    // AWS STS session tokens (base64; the run goes on through `+`, `/` and `=`)
    rule(b"IQoJb3JpZ2luX2", 80, ANY, Body::Word, "aws-session-token", false),
    rule(b"FwoGZXIvYXdzE", 80, ANY, Body::Word, "aws-session-token", false),
    rule(b"FQoGZXIvYXdzE", 80, ANY, Body::Word, "aws-session-token", false),
    rule(b"AgoJb3JpZ2luX2", 80, ANY, Body::Word, "aws-session-token", false),
];

/// Prefixes that are whole words followed by `.`: the word before the dot and the kind.
pub(super) const DOT_PREFIXES: &[(&[u8], usize, &str)] = &[
    (b"hvs", 24, "vault-token"),
    (b"hvb", 24, "vault-token"),
    (b"hvr", 24, "vault-token"),
    (b"ya29", 20, "google-oauth-token"),
];

/// AWS access key ids: a four-letter prefix naming the kind of id, then 16 of `[A-Z0-9]`.
const AWS_KEY_PREFIXES: &[&[u8; 4]] =
    &[b"AKIA", b"ASIA", b"ABIA", b"ACCA", b"AGPA", b"AIDA", b"AIPA", b"ANPA", b"ANVA", b"AROA", b"APKA", b"ASCA"];

pub(super) fn is_aws_key_id(word: &[u8]) -> bool {
    word.len() == 20
        && AWS_KEY_PREFIXES.iter().any(|p| word.starts_with(*p))
        && word.iter().skip(4).all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// A Mailchimp API key: 32 hex digits, `-us` and the one- or two-digit number of its data centre.
#[inline]
pub(super) fn is_mailchimp_key(word: &[u8]) -> bool {
    if !(35..=37).contains(&word.len()) {
        return false;
    }
    match word.split_at_checked(32) {
        Some((key, [b'-', b'u', b's', centre @ ..])) => {
            centre.iter().all(u8::is_ascii_digit) && key.iter().all(u8::is_ascii_hexdigit)
        }
        _ => false,
    }
}

/// Up to 24 rule indices per first byte of a prefix, so a word is checked only against the
/// rules its first byte can start.
static BY_FIRST: [[u8; 24]; 256] = {
    let mut t = [[u8::MAX; 24]; 256];
    let mut i = 0;
    while i < PREFIX_RULES.len() {
        let f = PREFIX_RULES[i].prefix[0] as usize;
        let mut k = 0;
        while t[f][k] != u8::MAX {
            k += 1;
        }
        t[f][k] = i as u8;
        i += 1;
    }
    t
};

/// Where a glued prefix has its first `_` or `-`; 0 when it has none.
const fn delimiter(prefix: &[u8]) -> usize {
    let Some((_, mut rest)) = prefix.split_first() else { return 0 };
    let mut i = 1;
    while let [b, tail @ ..] = rest {
        if *b == b'_' || *b == b'-' {
            return i;
        }
        rest = tail;
        i += 1;
    }
    0
}

/// The two bytes before the first `_`/`-` of every glued prefix (`hp` of `ghp_`), as a bit set:
/// most words with a `-` (UUIDs, dates) are cleared by one look-up.
static GLUED_PAIRS: [u64; 1024] = {
    let mut t = [0u64; 1024];
    let mut i = 0;
    while i < PREFIX_RULES.len() {
        let r = &PREFIX_RULES[i];
        let d = delimiter(r.prefix);
        if r.glued && d >= 2 {
            let pair = ((r.prefix[d - 2] as usize) << 8) | r.prefix[d - 1] as usize;
            t[pair >> 6] |= 1 << (pair & 63);
        }
        i += 1;
    }
    t
};

/// The prefix rule a word matches from its start: the rule and where the token ends (the token
/// may go on past the word for base64 session tokens).
pub(super) fn prefix_match(s: &[u8], ws: usize, we: usize) -> Option<(&'static PrefixRule, usize)> {
    let word = s.get(ws..we)?;
    let first = *word.first()?;
    for &index in BY_FIRST.get(usize::from(first))? {
        let Some(r) = PREFIX_RULES.get(index as usize) else { break };
        if !word.starts_with(r.prefix) {
            continue;
        }
        if r.kind == "aws-session-token" {
            // base64: the run goes on through `+`, `/` and `=`
            let mut end = we;
            while let Some(&c) = s.get(end)
                && (is_b64(c) || c == b'=')
            {
                end += 1;
            }
            if end - ws >= r.prefix.len() + r.min {
                return Some((r, end));
            }
            continue;
        }
        if word.len() < r.prefix.len() + r.min {
            continue;
        }
        let Some(body) = word.get(r.prefix.len()..) else { continue };
        if body.len() > r.max || !body.iter().all(|&b| r.body.accepts(b)) {
            // Exact-length shapes (Twilio, Shopify, Google) with a longer or foreign body are
            // something else; open-ended ones take their valid leading part.
            if r.max != ANY {
                continue;
            }
            let valid = body.iter().take_while(|&&b| r.body.accepts(b)).count();
            if valid < r.min {
                continue;
            }
        }
        return Some((r, we));
    }
    None
}

/// Where a distinctive token prefix starts inside a longer word (`1ghp_…`, `x2xoxb-…`).
pub(super) fn glued_match(word: &[u8]) -> Option<(usize, &'static PrefixRule)> {
    // `j` is where the window's last byte `b` stands, from 3 on.
    for (j, &[before, last, b]) in (2..).zip(word.array_windows::<3>()).skip(1) {
        if b != b'_' && b != b'-' {
            continue;
        }
        let pair = ((before as usize) << 8) | last as usize;
        if GLUED_PAIRS.get(pair >> 6).is_none_or(|bits| bits & (1 << (pair & 63)) == 0) {
            continue;
        }
        for r in PREFIX_RULES {
            let d = delimiter(r.prefix);
            if !r.glued || d == 0 || d >= j || r.prefix.get(d) != Some(&b) {
                continue;
            }
            let Some(tail) = word.get(j - d..) else { continue };
            if tail.starts_with(r.prefix)
                && tail.len() >= r.prefix.len() + r.min
                && tail
                    .get(r.prefix.len()..)
                    .is_some_and(|body| body.iter().take_while(|&&c| r.body.accepts(c)).count() >= r.min)
            {
                return Some((j - d, r));
            }
        }
    }
    None
}

#[inline]
pub(super) fn has_upper_and_lower(s: &[u8]) -> bool {
    s.iter().any(u8::is_ascii_uppercase) && s.iter().any(u8::is_ascii_lowercase)
}

/// A dotted token starting at the word `s[ws..we]`, which a `.` follows: a JWT, a Discord bot
/// token, a SendGrid key, a Vault or legacy Vault service token, a Google OAuth access token, a
/// Terraform Cloud token, a Slack configuration token or an old GitHub App installation token.
/// Returns where the token ends and its kind.
pub(super) fn dotted_match(s: &[u8], ws: usize, we: usize) -> Option<(usize, &'static str)> {
    let first = s.get(ws..we)?;
    let m_start = we + 1;
    let m_end = word_end(s, m_start);
    let middle = s.get(m_start..m_end)?;
    if first.starts_with(b"eyJ") && first.len() >= 10 {
        // header.payload.signature; an unsigned JWT ends in a bare dot
        if s.get(m_end) != Some(&b'.') || middle.len() < 2 {
            return None;
        }
        let end = word_end(s, m_end + 1);
        let sig = end - (m_end + 1);
        if sig >= 16 || (sig == 0 && middle.starts_with(b"eyJ")) {
            return Some((if sig == 0 { m_end + 1 } else { end }, "jwt"));
        }
        return None;
    }
    match first {
        b"SG" => {
            if middle.len() == 22 && s.get(m_end) == Some(&b'.') {
                let end = word_end(s, m_end + 1);
                if end - (m_end + 1) >= 40 {
                    return Some((end, "sendgrid-api-key"));
                }
            }
            return None;
        }
        b"s" => {
            // the legacy Vault service token: `s.` and 24 mixed-case letters and digits
            if middle.len() == 24
                && middle.iter().all(u8::is_ascii_alphanumeric)
                && has_upper_and_lower(middle)
                && middle.iter().any(u8::is_ascii_digit)
                && s.get(m_end) != Some(&b'.')
            {
                return Some((m_end, "vault-token"));
            }
            return None;
        }
        b"v1" => {
            if middle.len() == 40 && middle.iter().all(|&c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) {
                return Some((m_end, "github-app-installation-token"));
            }
            return None;
        }
        b"xoxe" => {
            // xoxe.xoxp-1-…: a Slack configuration token
            if middle.starts_with(b"xox") && middle.len() >= 20 {
                return Some((m_end, "slack-token"));
            }
            return None;
        }
        _ => {}
    }
    for (prefix, min, kind) in DOT_PREFIXES {
        if first == *prefix {
            let mut end = m_end;
            // Google access tokens may carry further dotted parts
            while s.get(end) == Some(&b'.') && s.get(end + 1).is_some_and(|&c| is_word(c)) {
                end = word_end(s, end + 1);
            }
            return (end - m_start >= *min).then_some((end, *kind));
        }
    }
    // Terraform Cloud / Enterprise: 14 characters, `.atlasv1.`, then the secret
    if first.len() == 14 && middle == b"atlasv1" && s.get(m_end) == Some(&b'.') {
        let mut end = m_end + 1;
        while let Some(&c) = s.get(end)
            && (is_word(c) || c == b'=')
        {
            end += 1;
        }
        return (end - m_end > 40).then_some((end, "terraform-cloud-token"));
    }
    // Discord bot token: base64 of the bot's snowflake id, a timestamp, an HMAC
    if (23..=28).contains(&first.len())
        && matches!(first.first(), Some(b'M' | b'N' | b'O'))
        && first.iter().all(u8::is_ascii_alphanumeric)
        && (5..=7).contains(&middle.len())
        && s.get(m_end) == Some(&b'.')
    {
        let end = word_end(s, m_end + 1);
        if (27..=80).contains(&(end - (m_end + 1))) {
            return Some((end, "discord-bot-token"));
        }
    }
    None
}

/// A free-standing run of exactly 40 base64 characters with upper case, lower case and digits,
/// starting at `ws`: the shape of an AWS secret access key. Returns where it ends.
pub(super) fn aws_secret_end(s: &[u8], ws: usize) -> Option<usize> {
    if ws > 0 && !is_free_edge(s.get(ws - 1)) {
        return None;
    }
    let mut end = ws;
    while end - ws <= 40
        && let Some(&c) = s.get(end)
        && is_b64(c)
    {
        end += 1;
    }
    if end - ws != 40 || !is_free_edge(s.get(end)) {
        return None;
    }
    let run = s.get(ws..end)?;
    if !has_upper_and_lower(run) || !run.iter().any(u8::is_ascii_digit) || run.windows(2).any(|w| w == b"//") {
        return None;
    }
    Some(end)
}

/// Bytes that may stand on either side of a free-standing secret (not inside a path or a word).
#[inline]
pub(super) fn is_free_edge(b: Option<&u8>) -> bool {
    match b {
        None => true,
        Some(&b) => class(b) & EDGE != 0,
    }
}
