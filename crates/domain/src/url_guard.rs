//! The URL guard for `/diagnose` inputs: only public `https` addresses, whatever their spelling.
//!
//! The URLs are inputs of a workflow, so they are values, never code: the text as typed may hold
//! only what RFC 3986 allows in a URL, and not even all of that (`$`, `;`, `'`, `&&`), so that
//! a workflow that puts an input into a shell line cannot be made to run anything.
//!
//! Hosts are parsed the way browsers and HTTP clients parse them (WHATWG URL), so `2130706433`,
//! `0x7f.1`, `0177.0.0.1` and `127.1` are all seen as 127.0.0.1 before any check runs. The guard
//! is syntactic: it does not resolve names. The URLs are fetched by the diagnose workflow's runner,
//! never by the bot, so a name that resolves to a private address only reaches the runner's own
//! network; `ALLOWED_DOMAINS` narrows that further.

use std::net::{Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Settings the guard applies.
#[derive(Debug, Clone, Default)]
pub struct UrlPolicy {
    /// Lower-case domains; `*.example.com` matches `example.com` and its subdomains.
    pub allowed_domains: Vec<String>,
    /// Lets loopback and private addresses through (local testing).
    pub safe_local: bool,
}

/// Why a URL was refused. The text is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRejection {
    #[error("not a valid URL")]
    Unparsable,
    #[error("only https URLs are allowed")]
    NotHttps,
    #[error("URLs with a user name or password are not allowed")]
    UserInfo,
    #[error("the URL has no host")]
    NoHost,
    #[error("{0} addresses are not allowed")]
    Address(&'static str),
    /// A refused IPv4 address inside an IPv6 one: the IPv4 class, then the IPv6 form.
    #[error("{0} addresses are not allowed, inside {1} addresses either")]
    EmbeddedAddress(&'static str, &'static str),
    #[error("localhost is not allowed")]
    Localhost,
    #[error("{0} is not in ALLOWED_DOMAINS")]
    NotAllowed(String),
    #[error("the URL is longer than 2048 characters")]
    TooLong,
    #[error("the URL holds {0}")]
    Text(UnsafeText),
}

/// What in typed URL text is refused before it is parsed, by the class of its character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsafeText {
    /// A space, a tab or other white space.
    Whitespace,
    /// A line break or another control character.
    Control,
    /// `$`, `;`, `|`, `&&` or a backtick: what a shell reads as code.
    Shell(&'static str),
    /// `'` or `"`: what ends a quoted value in a shell, YAML or JSON.
    Quote(char),
    /// `%` not followed by two hex digits.
    BadPercent,
    /// Any other character outside RFC 3986 (`{`, `<`, `\`, non-ASCII).
    NotRfc3986(char),
}

impl std::fmt::Display for UnsafeText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnsafeText::Whitespace => f.write_str("white space"),
            UnsafeText::Control => f.write_str("a control character (a line break, say)"),
            // a backtick cannot stand inside Discord's inline code
            UnsafeText::Shell("`") => f.write_str("a shell metacharacter (a backtick)"),
            UnsafeText::Shell(s) => write!(f, "a shell metacharacter (`{s}`)"),
            UnsafeText::Quote(c) => write!(f, "a quote (`{c}`)"),
            UnsafeText::BadPercent => f.write_str("a `%` that is not followed by two hex digits"),
            UnsafeText::NotRfc3986(c) => {
                write!(f, "a character RFC 3986 does not allow in a URL (U+{:04X})", u32::from(*c))
            }
        }
    }
}

/// Checks URL text as typed, before any parsing or normalisation: only RFC 3986's characters
/// (unreserved, reserved, `%` and two hex digits), and of those not `$`, `;`, `'` or `&&`; no
/// white space, control character, `"`, backtick or `|`.
pub fn check_typed_url(raw: &str) -> Result<(), UnsafeText> {
    let b = raw.as_bytes();
    for (i, c) in raw.char_indices() {
        let refused = match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '.' | '_' | '~' => continue,
            ':' | '/' | '?' | '#' | '[' | ']' | '@' | '!' | '(' | ')' | '*' | '+' | ',' | '=' => continue,
            '&' if b.get(i + 1) != Some(&b'&') => continue,
            '%' if b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit) =>
            {
                continue;
            }
            '%' => UnsafeText::BadPercent,
            '&' => UnsafeText::Shell("&&"),
            '$' => UnsafeText::Shell("$"),
            ';' => UnsafeText::Shell(";"),
            '|' => UnsafeText::Shell("|"),
            '`' => UnsafeText::Shell("`"),
            '\'' | '"' => UnsafeText::Quote(c),
            // a tab is white space to a reader; other control characters (line breaks) are not
            '\t' => UnsafeText::Whitespace,
            c if c.is_control() => UnsafeText::Control,
            c if c.is_whitespace() => UnsafeText::Whitespace,
            c => UnsafeText::NotRfc3986(c),
        };
        return Err(refused);
    }
    Ok(())
}

impl UrlRejection {
    /// The reason without anything the caller typed (no host name): what an audit record keeps.
    pub fn without_input(&self) -> String {
        match self {
            UrlRejection::NotAllowed(_) => "the host is not in ALLOWED_DOMAINS".to_string(),
            // the one character is not worth keeping from the caller's input
            UrlRejection::Text(UnsafeText::NotRfc3986(_)) => {
                "the URL holds a character RFC 3986 does not allow in a URL".to_string()
            }
            other => other.to_string(),
        }
    }
}

/// Checks a URL; returns it parsed when it may be used. The text is checked as given
/// ([`check_typed_url`]): option values arrive trimmed of surrounding white space, so any left
/// is inside the URL.
pub fn check_url(raw: &str, policy: &UrlPolicy) -> Result<Url, UrlRejection> {
    if raw.len() > 2048 {
        return Err(UrlRejection::TooLong);
    }
    check_typed_url(raw).map_err(UrlRejection::Text)?;
    let url = Url::parse(raw).map_err(|_| UrlRejection::Unparsable)?;
    if url.scheme() != "https" {
        return Err(UrlRejection::NotHttps);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRejection::UserInfo);
    }
    let host = url.host().ok_or(UrlRejection::NoHost)?;
    match host {
        Host::Ipv4(ip) => check_v4(ip, policy.safe_local)?,
        Host::Ipv6(ip) => check_v6(ip, policy.safe_local)?,
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if !policy.safe_local
                && (name == "localhost" || name.ends_with(".localhost") || name == "localhost.localdomain")
            {
                return Err(UrlRejection::Localhost);
            }
        }
    }
    if !policy.allowed_domains.is_empty() {
        let name = match url.host() {
            Some(Host::Domain(d)) => d.trim_end_matches('.').to_ascii_lowercase(),
            Some(other) => other.to_string(),
            None => return Err(UrlRejection::NoHost),
        };
        if !policy.allowed_domains.iter().any(|pattern| domain_matches(pattern, &name)) {
            return Err(UrlRejection::NotAllowed(name));
        }
    }
    Ok(url)
}

/// `example.com` matches itself; `*.example.com` matches `example.com` and every subdomain.
fn domain_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.');
    match pattern.strip_prefix("*.") {
        Some(base) => {
            host.eq_ignore_ascii_case(base)
                || (host.len() > base.len() + 1
                    && host
                        .as_bytes()
                        .get(host.len() - base.len()..)
                        .is_some_and(|tail| tail.eq_ignore_ascii_case(base.as_bytes()))
                    && host.as_bytes().get(host.len() - base.len() - 1) == Some(&b'.'))
        }
        None => host.eq_ignore_ascii_case(pattern),
    }
}

/// `class` is (name, may pass with SAFE_LOCAL) for any non-public address.
fn verdict(class: Option<(&'static str, bool)>, safe_local: bool) -> Result<(), UrlRejection> {
    match class {
        Some((_, true)) if safe_local => Ok(()),
        Some((name, _)) => Err(UrlRejection::Address(name)),
        None => Ok(()),
    }
}

fn check_v4(ip: Ipv4Addr, safe_local: bool) -> Result<(), UrlRejection> {
    let o = ip.octets();
    let class = if ip.is_loopback() {
        Some(("loopback", true))
    } else if ip.is_private() {
        Some(("private", true))
    } else if ip.is_link_local() {
        // includes 169.254.169.254, the instance metadata service
        Some(("link-local", false))
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some(("shared (CGNAT)", true))
    } else if ip.is_unspecified() || o[0] == 0 {
        Some(("unspecified", false))
    } else if ip.is_multicast() {
        Some(("multicast", false))
    } else if ip.is_broadcast()
        || o[0] >= 240
        || ip.is_documentation()
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
    {
        Some(("reserved", false))
    } else {
        None
    };
    verdict(class, safe_local)
}

/// An IPv6 form that carries an IPv4 address: the address, the form's name, and whether a public
/// address may pass in it.
///
/// NAT64 (`64:ff9b::/96`, RFC 6052) and 6to4 (`2002::/16`, RFC 3056) are routed across the
/// Internet to the very IPv4 address they carry, so a public one passes as its IPv4 form does.
/// Mapped (`::ffff:0:0/96`), translated (`::ffff:0:0:0/96`) and compatible (`::/96`, deprecated
/// by RFC 4291) addresses are representations inside a host, never a service's published
/// address: refused whatever they carry.
fn embedded_v4(ip: Ipv6Addr) -> Option<(Ipv4Addr, &'static str, bool)> {
    let seg = ip.segments();
    let low = Ipv4Addr::new((seg[6] >> 8) as u8, seg[6] as u8, (seg[7] >> 8) as u8, seg[7] as u8);
    let zero = |range: std::ops::Range<usize>| seg.get(range).is_some_and(|s| s.iter().all(|&s| s == 0));
    if zero(0..5) && seg[5] == 0xffff {
        Some((low, "IPv4-mapped IPv6", false))
    } else if zero(0..4) && seg[4] == 0xffff && seg[5] == 0 {
        Some((low, "IPv4-translated IPv6", false))
    } else if zero(0..6) {
        Some((low, "IPv4-compatible IPv6", false))
    } else if seg[0] == 0x64 && seg[1] == 0xff9b && zero(2..6) {
        Some((low, "NAT64", true))
    } else if seg[0] == 0x2002 {
        let v4 = Ipv4Addr::new((seg[1] >> 8) as u8, seg[1] as u8, (seg[2] >> 8) as u8, seg[2] as u8);
        Some((v4, "6to4", true))
    } else {
        None
    }
}

fn check_v6(ip: Ipv6Addr, safe_local: bool) -> Result<(), UrlRejection> {
    // `::` and `::1` sit inside the IPv4-compatible range; they are judged as themselves.
    if ip.is_unspecified() {
        return Err(UrlRejection::Address("unspecified"));
    }
    if ip.is_loopback() {
        return verdict(Some(("loopback", true)), safe_local);
    }
    // An IPv4 address carried inside IPv6 is judged as that address. SAFE_LOCAL does not apply:
    // it is for the plain local spellings a developer types, and a local address smuggled
    // inside a translation prefix is never one.
    if let Some((v4, form, public_passes)) = embedded_v4(ip) {
        return match check_v4(v4, false) {
            Err(UrlRejection::Address(class)) => Err(UrlRejection::EmbeddedAddress(class, form)),
            Err(other) => Err(other),
            Ok(()) if public_passes => Ok(()),
            Ok(()) => Err(UrlRejection::Address(form)),
        };
    }
    let seg = ip.segments();
    let class = if (seg[0] & 0xfe00) == 0xfc00 {
        Some(("unique-local", true))
    } else if (seg[0] & 0xffc0) == 0xfe80 {
        Some(("link-local", false))
    } else if (seg[0] & 0xffc0) == 0xfec0 {
        // deprecated by RFC 3879, private in effect; no local setup needs it
        Some(("site-local", false))
    } else if (seg[0] & 0xff00) == 0xff00 {
        Some(("multicast", false))
    } else if seg[0] == 0x64 && seg[1] == 0xff9b {
        // the rest of 64:ff9b::/32, with the local-use prefix 64:ff9b:1::/48 (RFC 8215): where
        // the IPv4 address sits is the operator's choice, so it cannot be judged
        Some(("NAT64", false))
    } else if seg[0] == 0x2001 && (seg[1] == 0 || seg[1] == 0xdb8) {
        Some(("tunnelled or documentation IPv6", false))
    } else {
        None
    };
    verdict(class, safe_local)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> UrlPolicy {
        UrlPolicy::default()
    }

    #[test]
    fn every_local_spelling_is_refused() {
        let refused = [
            "https://127.0.0.1/",
            "https://2130706433/",
            "https://0x7f.1/",
            "https://0x7f000001/",
            "https://0177.0.0.1/",
            "https://127.1/",
            "https://127.0.1/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "https://[::ffff:8.8.8.8]/",
            "https://169.254.169.254/latest/meta-data/",
            "https://0xa9fea9fe/",
            "https://10.0.0.1/",
            "https://172.16.5.4/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://0/",
            "https://[::]/",
            "https://224.0.0.1/",
            "https://255.255.255.255/",
            "https://[fd00::1]/",
            "https://[fc00::1]/",
            "https://[fe80::1]/",
            "https://[ff02::1]/",
            "https://[64:ff9b::7f00:1]/",
            "https://[::127.0.0.1]/",
            "https://[2002:7f00:1::]/",
            "https://localhost/",
            "https://LOCALHOST./",
            "https://app.localhost/",
            "https://localhost.localdomain/",
        ];
        for url in refused {
            assert!(check_url(url, &open()).is_err(), "{url} passed");
        }
    }

    /// Every IPv6 form that carries an IPv4 address, each with a refused address inside: IPv4-mapped
    /// (`::ffff:0:0/96`), IPv4-translated (`::ffff:0:0:0/96`), IPv4-compatible (`::/96`), NAT64
    /// (`64:ff9b::/96` and the local-use `64:ff9b:1::/48`) and 6to4 (`2002::/16`), in both
    /// spellings (dotted and hex).
    #[test]
    fn ipv6_forms_of_refused_ipv4_addresses_are_refused() {
        let refused = [
            // mapped
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::ffff:a9fe:a9fe]/",
            "https://[::FFFF:10.0.0.1]/",
            // translated
            "https://[::ffff:0:7f00:1]/",
            "https://[::ffff:0:127.0.0.1]/",
            "https://[::ffff:0:a9fe:a9fe]/",
            "https://[::ffff:0:192.168.1.1]/",
            "https://[::ffff:0:6440:1]/",
            "https://[0:0:0:0:ffff:0:a00:1]/",
            // compatible
            "https://[::127.0.0.1]/",
            "https://[::7f00:1]/",
            "https://[::10.0.0.1]/",
            "https://[::169.254.169.254]/",
            // NAT64, well-known prefix and local-use prefix
            "https://[64:ff9b::127.0.0.1]/",
            "https://[64:ff9b::7f00:1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[64:ff9b::10.1.2.3]/",
            "https://[64:ff9b::c0a8:101]/",
            "https://[64:ff9b:1::a00:1]/",
            "https://[64:ff9b:1:2:3:4:808:808]/",
            // 6to4
            "https://[2002:7f00:1::]/",
            "https://[2002:a9fe:a9fe::1]/",
            "https://[2002:c0a8:101::1]/",
            "https://[2002:a00:1::]/",
            "https://[2002:6440:1::]/",
            "https://[2002:e000:1::]/",
        ];
        for url in refused {
            assert!(check_url(url, &open()).is_err(), "{url} passed");
        }
        assert_eq!(
            check_url("https://[::ffff:0:7f00:1]/", &open()).map_err(|e| e.to_string()),
            Err("loopback addresses are not allowed, inside IPv4-translated IPv6 addresses either".into())
        );
        assert_eq!(
            check_url("https://[2002:a9fe:a9fe::1]/", &open()).map_err(|e| e.to_string()),
            Err("link-local addresses are not allowed, inside 6to4 addresses either".into())
        );
    }

    /// What a public IPv4 address inside IPv6 gets. NAT64 (well-known prefix) and 6to4 are
    /// globally routed ways to reach that very address, so they pass as the IPv4 form does.
    /// Mapped, translated and compatible addresses are representations inside a host (RFC 4291,
    /// RFC 7915), deprecated or never published as a service address: refused whatever they carry.
    #[test]
    fn public_ipv4_inside_ipv6_passes_only_through_nat64_and_6to4() {
        for ok in ["https://[64:ff9b::8.8.8.8]/", "https://[64:ff9b::808:808]/", "https://[2002:808:808::1]/"] {
            assert!(check_url(ok, &open()).is_ok(), "{ok} refused");
        }
        for bad in
            ["https://[::ffff:8.8.8.8]/", "https://[::ffff:0:8.8.8.8]/", "https://[::8.8.8.8]/", "https://[::808:808]/"]
        {
            assert!(check_url(bad, &open()).is_err(), "{bad} passed");
        }
    }

    /// `fec0::/10`, the site-local range RFC 3879 deprecated: private in effect.
    #[test]
    fn deprecated_site_local_is_refused() {
        for url in ["https://[fec0::1]/", "https://[fed0:1::2]/", "https://[feff:ffff::1]/", "https://[FEC0::a:b]/"] {
            let refused = check_url(url, &open()).map_err(|e| e.to_string());
            assert_eq!(refused, Err("site-local addresses are not allowed".into()), "{url}");
        }
        assert!(check_url("https://[fe00::1]/", &open()).is_ok(), "just below fe80::/10 is not site-local");
    }

    /// SAFE_LOCAL is for the plain local spellings a developer types; a local address inside a
    /// translation prefix, or a site-local one, is never a local test.
    #[test]
    fn safe_local_does_not_open_embedded_or_site_local_addresses() {
        let policy = UrlPolicy { allowed_domains: vec![], safe_local: true };
        for url in [
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:0:a00:1]/",
            "https://[64:ff9b::a00:1]/",
            "https://[2002:7f00:1::]/",
            "https://[fec0::1]/",
        ] {
            assert!(check_url(url, &policy).is_err(), "{url} passed with SAFE_LOCAL");
        }
    }

    /// The URL text goes to a workflow as an input: whatever a shell or a template could read as
    /// code is refused as typed, before parsing could hide it (the parser percent-encodes some of
    /// it and keeps the rest).
    #[test]
    fn typed_text_a_shell_could_run_is_refused() {
        let reason = |url: &str| check_url(url, &open()).map(|_| ()).map_err(|e| e.to_string());
        let cases = [
            ("https://example.com/$(id)", "a shell metacharacter (`$`)"),
            ("https://example.com/${IFS}x", "a shell metacharacter (`$`)"),
            ("https://example.com/`id`", "a shell metacharacter (a backtick)"),
            ("https://example.com/;id", "a shell metacharacter (`;`)"),
            ("https://example.com/x|id", "a shell metacharacter (`|`)"),
            ("https://example.com/?a=1&&id", "a shell metacharacter (`&&`)"),
            ("https://example.com/'x", "a quote (`'`)"),
            ("https://example.com/\"x", "a quote (`\"`)"),
            ("https://example.com/\nid", "a control character (a line break, say)"),
            ("https://example.com/\r\nX-Injected: 1", "a control character (a line break, say)"),
            ("https://example.com/\u{0}", "a control character (a line break, say)"),
            ("https://example.com/a b", "white space"),
            ("https://example.com/a\tb", "white space"),
            ("https://example.com/a\u{a0}b", "white space"),
            ("https://example.com/%zz", "a `%` that is not followed by two hex digits"),
            ("https://example.com/%4", "a `%` that is not followed by two hex digits"),
            ("https://example.com/{x}", "a character RFC 3986 does not allow in a URL (U+007B)"),
            ("https://example.com/<x>", "a character RFC 3986 does not allow in a URL (U+003C)"),
            ("https://example.com\\@evil.example/", "a character RFC 3986 does not allow in a URL (U+005C)"),
            ("https://bücher.example/", "a character RFC 3986 does not allow in a URL (U+00FC)"),
        ];
        for (url, holds) in cases {
            assert_eq!(reason(url), Err(format!("the URL holds {holds}")), "{url:?}");
        }
        // what RFC 3986 allows still passes, `&` alone and percent-escapes included
        for ok in [
            "https://example.com/a-b_c.d~e/f?g=h&i=j#k",
            "https://example.com/p(1)!*+,=@:x",
            "https://example.com/%24%28id%29?q=%3B",
            "https://[2606:4700::1111]:8443/x",
        ] {
            assert_eq!(reason(ok), Ok(()), "{ok:?}");
        }
    }

    /// The check on its own, by character class; `without_input` keeps no typed character out
    /// of RFC 3986 in the audit record.
    #[test]
    fn typed_text_check_by_class() {
        let table: [(&str, Result<(), UnsafeText>); 14] = [
            ("https://example.com/", Ok(())),
            ("", Ok(())),
            ("a&b", Ok(())),
            ("a&&b", Err(UnsafeText::Shell("&&"))),
            ("a&", Ok(())),
            ("%41%7e", Ok(())),
            ("%", Err(UnsafeText::BadPercent)),
            ("%4g", Err(UnsafeText::BadPercent)),
            ("a\u{7f}", Err(UnsafeText::Control)),
            ("a\u{85}", Err(UnsafeText::Control)),
            ("a\u{2028}", Err(UnsafeText::Whitespace)),
            ("a\u{3000}b", Err(UnsafeText::Whitespace)),
            ("a^b", Err(UnsafeText::NotRfc3986('^'))),
            ("ünï", Err(UnsafeText::NotRfc3986('ü'))),
        ];
        for (text, want) in table {
            assert_eq!(check_typed_url(text), want, "{text:?}");
        }
        let e = check_url("https://example.com/{x}", &open()).unwrap_err();
        assert_eq!(e.without_input(), "the URL holds a character RFC 3986 does not allow in a URL");
        let e = check_url("https://example.com/$(id)", &open()).unwrap_err();
        assert_eq!(e.without_input(), e.to_string());
    }

    #[test]
    fn scheme_and_userinfo_rules() {
        assert_eq!(check_url("http://example.com/", &open()), Err(UrlRejection::NotHttps));
        assert_eq!(check_url("ftp://example.com/", &open()), Err(UrlRejection::NotHttps));
        assert_eq!(check_url("https://user:pass@example.com/", &open()), Err(UrlRejection::UserInfo));
        assert_eq!(check_url("https://user@example.com/", &open()), Err(UrlRejection::UserInfo));
        assert_eq!(check_url("not-a-url", &open()), Err(UrlRejection::Unparsable));
        // the typed text is checked before parsing
        assert_eq!(check_url("not a url", &open()), Err(UrlRejection::Text(UnsafeText::Whitespace)));
        assert_eq!(check_url("javascript:alert(1)", &open()), Err(UrlRejection::NotHttps));
        assert!(check_url(&format!("https://example.com/{}", "a".repeat(3000)), &open()).is_err());
    }

    #[test]
    fn public_addresses_pass() {
        for url in [
            "https://example.com/health",
            "https://8.8.8.8/",
            "https://[2606:4700::1111]/",
            "https://api.example.com:8443/x?y=1",
        ] {
            assert!(check_url(url, &open()).is_ok(), "{url} refused");
        }
    }

    #[test]
    fn allowlist_wildcards_and_case() {
        let policy =
            UrlPolicy { allowed_domains: vec!["*.example.com".into(), "status.acme.io".into()], safe_local: false };
        for ok in
            ["https://example.com/", "https://EXAMPLE.com./", "https://a.b.Example.COM/", "https://Status.Acme.io/"]
        {
            assert!(check_url(ok, &policy).is_ok(), "{ok} refused");
        }
        for bad in [
            "https://evilexample.com/",
            "https://example.com.evil.net/",
            "https://acme.io/",
            "https://x.status.acme.io/",
            "https://8.8.8.8/",
        ] {
            assert!(matches!(check_url(bad, &policy), Err(UrlRejection::NotAllowed(_))), "{bad} passed");
        }
    }

    #[test]
    fn safe_local_lets_loopback_and_private_through_but_not_metadata() {
        let policy = UrlPolicy { allowed_domains: vec![], safe_local: true };
        for ok in [
            "https://127.0.0.1:8443/",
            "https://localhost/",
            "https://10.1.2.3/",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://100.64.0.1/",
        ] {
            assert!(check_url(ok, &policy).is_ok(), "{ok} refused");
        }
        assert!(check_url("https://169.254.169.254/", &policy).is_err());
        assert!(check_url("http://127.0.0.1/", &policy).is_err());
    }
}
