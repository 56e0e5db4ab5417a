//! Key names that say their value is a secret: `GITHUB_TOKEN`, `password`, `X-Api-Key`,
//! `accessToken`, `client_secret`, `JSESSIONID`, `Cookie`. Not `max_tokens`, `tokenizer`,
//! `keyboard`, `DISCORD_PUBLIC_KEY`, `token_type` or `secret_name`.

/// How far a secret-named value runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum KeyKind {
    /// An ordinary secret-named key: the value ends at white space or a delimiter.
    Plain,
    /// A header whose value runs to the end of the line (`Authorization: Bearer x`, `Cookie: a=b; c=d`).
    WholeLine,
}

/// What one lower-cased part of a key name says.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Names a secret on its own: `token`, `secret`, `password`, `cookies`, `dbpassword`.
    Secret,
    /// Names a secret only when it is the whole name: `sig` (an Azure SAS signature in a query
    /// string), `auth` (Docker's `config.json`).
    WholeName,
    /// Says the value is about the secret, not the secret: `count`, `type`, `url`, `id`.
    Metadata,
    /// The first of a pair that names a secret with `key`: `api_key`, `access_key`, `DD_APP_KEY`.
    PairFirst,
    /// `session`: a secret, and `session_id` too (the id of a session is its secret).
    Session,
    Other,
}

/// Long words that also count at the end of a run-together name (`apitoken`, `dbpassword`,
/// `xsrftoken`, `awsaccesskey`).
const SECRET_SUFFIXES: &[&[u8]] = &[
    b"token",
    b"secret",
    b"password",
    b"passwd",
    b"apikey",
    b"credential",
    b"passphrase",
    b"sessionid",
    b"sessid",
    b"privatekey",
    b"secretkey",
    b"accesskey",
    b"accountkey",
];

fn part_kind(p: &[u8]) -> Part {
    match p {
        // plurals count too (`cookies`, `credentials`), except `tokens` (`max_tokens` is a count) and
        // `secrets` (a collection: GitHub's `"secrets": "read"` permission, a workflow's `secrets:`)
        b"token" | b"secret" | b"password" | b"passwords" | b"passwd" | b"pwd" | b"apikey" | b"apikeys"
        | b"credential" | b"credentials" | b"cookie" | b"cookies" | b"passphrase" | b"authorization" | b"sessionid"
        | b"sessid" | b"jsessionid" | b"phpsessid" | b"privatekey" | b"secretkey" | b"accesskey" | b"accountkey"
        | b"dsn" => Part::Secret,
        b"session" | b"sessions" => Part::Session,
        b"sig" | b"auth" => Part::WholeName,
        b"count" | b"type" | b"len" | b"length" | b"limit" | b"usage" | b"expiry" | b"expires" | b"ttl" | b"url"
        | b"uri" | b"endpoint" | b"name" | b"file" | b"path" | b"id" | b"arn" | b"header" | b"kind" | b"version"
        | b"scanning" | b"required" | b"enabled" | b"timeout" | b"status" | b"format" | b"prefix" | b"source"
        | b"location" | b"ref" | b"field" => Part::Metadata,
        b"api" | b"access" | b"private" | b"signing" | b"account" | b"shared" | b"app" | b"application"
        | b"routing" | b"integration" | b"master" | b"encryption" | b"storage" | b"license" => Part::PairFirst,
        _ if SECRET_SUFFIXES.iter().any(|w| p.len() > w.len() && p.ends_with(w)) => Part::Secret,
        _ => Part::Other,
    }
}

/// The kind of a secret-named key, or `None` when the name does not say secret.
pub(super) fn secret_key_kind(name: &[u8]) -> Option<KeyKind> {
    if name.len() > 64 || name.len() < 3 || name.first().is_some_and(u8::is_ascii_digit) || !has_anchor(name) {
        return None;
    }
    let mut lower = [0u8; 64];
    for (l, c) in lower.iter_mut().zip(name) {
        *l = c.to_ascii_lowercase();
    }
    // Split into parts at `_`, `-`, `.` and lower→upper case changes, without allocating.
    let mut parts: [(usize, usize); 12] = [(0, 0); 12];
    let mut count = 0;
    let mut start = 0;
    let mut push = |a: usize, b: usize, count: &mut usize| {
        if b > a
            && let Some(slot) = parts.get_mut(*count)
        {
            *slot = (a, b);
            *count += 1;
        }
    };
    for (j, &c) in name.iter().enumerate() {
        if c == b'_' || c == b'-' || c == b'.' {
            push(start, j, &mut count);
            start = j + 1;
        } else if j > start && c.is_ascii_uppercase() && name.get(j - 1).is_some_and(u8::is_ascii_lowercase) {
            push(start, j, &mut count);
            start = j;
        }
    }
    push(start, name.len(), &mut count);
    // a part past the last one is empty
    let part = |k: usize| parts.get(k).and_then(|&(a, b)| lower.get(a..b)).unwrap_or_default();
    let kind_of = |k: usize| if k < count { part_kind(part(k)) } else { Part::Other };

    for k in 0..count {
        let next = kind_of(k + 1);
        match part_kind(part(k)) {
            Part::PairFirst
                if k + 1 < count && matches!(part(k + 1), b"key" | b"keys") && kind_of(k + 2) != Part::Metadata =>
            {
                return Some(KeyKind::Plain);
            }
            Part::Session if k + 1 < count && matches!(part(k + 1), b"id" | b"key") => return Some(KeyKind::Plain),
            Part::Secret | Part::Session if next != Part::Metadata => {
                let p = part(k);
                let whole_line = count == 1 && (p == b"authorization" || p == b"cookie")
                    || (count == 2 && k == 1 && matches!(part(0), b"proxy" | b"set"));
                return Some(if whole_line { KeyKind::WholeLine } else { KeyKind::Plain });
            }
            Part::WholeName if count == 1 => return Some(KeyKind::Plain),
            _ => {}
        }
        // the signature of a presigned URL (`X-Amz-Signature`, `X-Goog-Signature`) is a credential
        if matches!(part(k), b"amz" | b"goog") && k + 1 < count && part(k + 1) == b"signature" {
            return Some(KeyKind::Plain);
        }
        // `connect.sid`: Express's session cookie
        if part(k) == b"connect" && k + 1 < count && part(k + 1) == b"sid" {
            return Some(KeyKind::Plain);
        }
    }
    None
}

/// Every secret name holds one of these three-letter pieces; most names (`level`, `trace_id`,
/// `duration_ms`) hold none, and are cleared without splitting them into parts.
const ANCHORS: &[&[u8; 3]] =
    &[b"tok", b"sec", b"pas", b"pwd", b"key", b"cre", b"ses", b"coo", b"aut", b"dsn", b"sig", b"sid"];

/// The anchors as a set of 15-bit keys (five low bits of each letter, so case does not matter).
static ANCHOR_SET: [u64; 512] = {
    let mut t = [0u64; 512];
    let mut i = 0;
    while i < ANCHORS.len() {
        let a = ANCHORS[i];
        let k = trigram(a[0], a[1], a[2]);
        t[k >> 6] |= 1 << (k & 63);
        i += 1;
    }
    t
};

#[inline]
const fn trigram(a: u8, b: u8, c: u8) -> usize {
    (((a & 31) as usize) << 10) | (((b & 31) as usize) << 5) | (c & 31) as usize
}

#[inline]
fn has_anchor(name: &[u8]) -> bool {
    name.array_windows::<3>().any(|&[a, b, c]| {
        let k = trigram(a, b, c);
        ANCHOR_SET.get(k >> 6).is_some_and(|bits| bits & (1 << (k & 63)) != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_and_near_misses() {
        for k in [
            "token",
            "GITHUB_TOKEN",
            "password",
            "X-Api-Key",
            "accessToken",
            "client_secret",
            "cookie",
            "session_id",
            "sessionId",
            "session_id2",
            "JSESSIONID",
            "PHPSESSID",
            "connect.sid",
            "credentials",
            "aws_secret_access_key",
            "apikey",
            "AccountKey",
            "SharedAccessKey",
            "sig",
            "DD_API_KEY",
            "DD_APP_KEY",
            "routing_key",
            "SENTRY_DSN",
            "Pwd",
            "csrftoken",
            "X-Amz-Signature",
            "X-Amz-Credential",
        ] {
            assert!(secret_key_kind(k.as_bytes()).is_some(), "{k} should be secret");
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
            "secret_scanning",
            "secret_type",
            "keys_url",
            "access_tokens_url",
            "key",
            "signature",
            "author",
            "session_count",
            "assignees",
            "secrets",
            "organization_secrets",
        ] {
            assert!(secret_key_kind(k.as_bytes()).is_none(), "{k} should not be secret");
        }
        assert_eq!(secret_key_kind(b"Authorization"), Some(KeyKind::WholeLine));
        assert_eq!(secret_key_kind(b"Set-Cookie"), Some(KeyKind::WholeLine));
        assert_eq!(secret_key_kind(b"Proxy-Authorization"), Some(KeyKind::WholeLine));
    }
}
