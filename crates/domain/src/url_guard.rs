//! The URL guard for `/diagnose` inputs: only public `https` addresses, whatever their spelling.
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
    #[error("localhost is not allowed")]
    Localhost,
    #[error("{0} is not in ALLOWED_DOMAINS")]
    NotAllowed(String),
    #[error("the URL is longer than 2048 characters")]
    TooLong,
}

impl UrlRejection {
    /// The reason without anything the caller typed (no host name): what an audit record keeps.
    pub fn without_input(&self) -> String {
        match self {
            UrlRejection::NotAllowed(_) => "the host is not in ALLOWED_DOMAINS".to_string(),
            other => other.to_string(),
        }
    }
}

/// Checks a URL; returns it parsed when it may be used.
pub fn check_url(raw: &str, policy: &UrlPolicy) -> Result<Url, UrlRejection> {
    let raw = raw.trim();
    if raw.len() > 2048 {
        return Err(UrlRejection::TooLong);
    }
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
                    && host[host.len() - base.len()..].eq_ignore_ascii_case(base)
                    && host.as_bytes()[host.len() - base.len() - 1] == b'.')
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

fn check_v6(ip: Ipv6Addr, safe_local: bool) -> Result<(), UrlRejection> {
    // An IPv4 address carried inside IPv6 is judged as that address, then refused anyway: a
    // mapped or translated address is never the plain public form.
    if let Some(v4) = ip.to_ipv4_mapped() {
        check_v4(v4, safe_local)?;
        return Err(UrlRejection::Address("IPv4-mapped IPv6"));
    }
    let seg = ip.segments();
    let class = if ip.is_loopback() {
        Some(("loopback", true))
    } else if ip.is_unspecified() {
        Some(("unspecified", false))
    } else if (seg[0] & 0xfe00) == 0xfc00 {
        Some(("unique-local", true))
    } else if (seg[0] & 0xffc0) == 0xfe80 {
        Some(("link-local", false))
    } else if (seg[0] & 0xff00) == 0xff00 {
        Some(("multicast", false))
    } else if seg[0] == 0x64 && seg[1] == 0xff9b {
        Some(("NAT64", false))
    } else if seg[0] == 0 && seg[1] == 0 && seg[2] == 0 && seg[3] == 0 && seg[4] == 0 && seg[5] == 0 {
        Some(("IPv4-compatible IPv6", false))
    } else if seg[0] == 0x2002 || (seg[0] == 0x2001 && seg[1] == 0) || (seg[0] == 0x2001 && seg[1] == 0xdb8) {
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

    #[test]
    fn scheme_and_userinfo_rules() {
        assert_eq!(check_url("http://example.com/", &open()), Err(UrlRejection::NotHttps));
        assert_eq!(check_url("ftp://example.com/", &open()), Err(UrlRejection::NotHttps));
        assert_eq!(check_url("https://user:pass@example.com/", &open()), Err(UrlRejection::UserInfo));
        assert_eq!(check_url("https://user@example.com/", &open()), Err(UrlRejection::UserInfo));
        assert_eq!(check_url("not a url", &open()), Err(UrlRejection::Unparsable));
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
