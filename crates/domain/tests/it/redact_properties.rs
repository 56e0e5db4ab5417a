//! The redactor's properties over many generated inputs (the fuzz target `redact` checks the same
//! under libFuzzer): no panic, no copy without a change, UTF-8 kept; a planted secret never
//! survives, whatever surrounds it and in whichever form it is written (plain, JSON, JSON-escaped,
//! percent-encoded, in a URL, as `key=value`, YAML, an environment line, a flag, a cookie, an
//! ADO.NET connection string); and text without secrets comes back byte for byte, uncopied.
//! Tokens are assembled at run time, so this file holds no token shape itself.

use std::borrow::Cow;

use valine_domain::redact::{StreamState, find_secrets, redact, redact_bytes, redact_partial};
use valine_domain::testing::Rng;

const PIECES: &[&str] = &[
    "token",
    "=",
    ":",
    "\"",
    "'",
    "\\\"",
    " ",
    "\n",
    "Bearer ",
    "Basic ",
    "Bot ",
    "https://",
    "@",
    "/",
    ".",
    "-----BEGIN ",
    "PRIVATE KEY-----",
    "-----END ",
    "ghp_",
    "github_pat_",
    "xoxb-",
    "AKIA",
    "eyJ",
    "abc",
    "ABC",
    "123",
    "password",
    "_",
    "-",
    "é",
    "🟢",
    "\u{0}",
    "{",
    "}",
    "[",
    "]",
    ",",
    "max_tokens",
    "Authorization",
    "discord.com/api/webhooks/",
    "=>",
    "::",
];

const SECRETS: &[&str] = &[
    "ghp_PLANTEDplantedPLANTEDplanted0123456789",
    "github_pat_11PLANTED0123456789abc_defghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd",
    "AKIAPLANTED7EXAMPLE0",
    "xoxb-2361234567890-1234567890123-PlantedPlantedPlanted",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.PLANTEDsignatureXXXXXXXXXXXXXXXXXXXXXXXXXX",
];

fn generate(rng: &mut Rng) -> String {
    let n = rng.below(40);
    (0..n).map(|_| PIECES[rng.below(PIECES.len())]).collect()
}

#[test]
fn generated_inputs_keep_every_property() {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let cases = std::env::var("VALINE_PROPERTY_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    for _ in 0..cases {
        let text = generate(&mut rng);
        let out = redact(&text);
        if let Cow::Borrowed(b) = &out {
            assert_eq!(*b, text);
        }
        let bytes_out = redact_bytes(text.as_bytes());
        assert_eq!(bytes_out.as_ref(), out.as_bytes());
        let secret = SECRETS[rng.below(SECRETS.len())];
        let planted = format!("{text} {secret} {}", generate(&mut rng));
        let red = redact(&planted);
        assert!(!red.contains(secret), "survived in {planted:?} -> {red:?}");
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0xDEAD_BEEF_0000_0001);
    for _ in 0..5_000 {
        let len = rng.below(300);
        let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let _ = redact_bytes(&data);
        for f in find_secrets(&data) {
            assert!(f.start <= f.end && f.end <= data.len());
        }
        let (_, consumed) = redact_partial(&data, &mut StreamState::default());
        assert!(consumed <= data.len());
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const LOWER_HEX: &[u8] = b"0123456789abcdef";
const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const WORD: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

fn body(rng: &mut Rng, len: usize, alphabet: &[u8]) -> String {
    let mut out: Vec<u8> = (0..len).map(|_| alphabet[rng.below(alphabet.len())]).collect();
    // real keys mix cases and digits; make sure generated ones do too
    if len > 6 && alphabet.len() > 36 {
        out[1] = b'Q';
        out[3] = b'q';
        out[5] = b'7';
    }
    String::from_utf8(out).unwrap_or_default()
}

/// A token of a random provider shape.
fn provider_token(rng: &mut Rng) -> String {
    let (prefix, len, alphabet): (&str, usize, &[u8]) = match rng.below(29) {
        0 => ("ghp_", 36, ALNUM),
        1 => ("ghs_", 36, ALNUM),
        2 => ("github_pat_11", 80, ALNUM),
        3 => ("glpat-", 20, WORD),
        4 => ("xoxb-1234567890-", 30, ALNUM),
        5 => ("AKIA", 16, UPPER_ALNUM),
        6 => ("AIza", 35, WORD),
        7 => ("sk_live_", 24, ALNUM),
        8 => ("SK", 32, LOWER_HEX),
        9 => ("npm_", 36, ALNUM),
        10 => ("pypi-AgEIcHlwaS5vcmc", 90, WORD),
        11 => ("dckr_pat_", 27, WORD),
        12 => ("shpat_", 32, LOWER_HEX),
        13 => ("sk-proj-", 80, WORD),
        14 => ("sk-ant-api03-", 90, WORD),
        15 => ("hf_", 34, ALNUM),
        16 => ("hvs.", 90, WORD),
        17 => ("dop_v1_", 64, LOWER_HEX),
        18 => ("NRAK-", 27, UPPER_ALNUM),
        19 => ("eyJhbGciOiJIUzI1NiJ9.eyJ", 40, ALNUM),
        20 => ("sntrys_", 80, ALNUM),
        21 => ("1234567890:AA", 33, WORD),
        22 => ("sq0atp-", 22, WORD),
        23 => ("EAAA", 60, WORD),
        24 => ("EAAG", 180, ALNUM),
        25 => ("rubygems_", 48, LOWER_HEX),
        26 => ("AKCp8", 68, ALNUM),
        27 => ("cmVmdGtuOjAx", 52, ALNUM),
        _ => ("glrt-", 20, WORD),
    };
    let mut t = format!("{prefix}{}", body(rng, len, alphabet));
    if prefix.starts_with("eyJ") {
        t = format!("{t}.{}", body(rng, 43, WORD));
    }
    if prefix == "glrt-" && rng.below(2) == 0 {
        // a Mailchimp key instead: 32 hex digits and the data centre
        t = format!("{}-us{}", body(rng, 32, LOWER_HEX), 1 + rng.below(20));
    }
    t
}

/// `secret` written in one of the forms logs and configuration use.
/// A secret of no known shape is only found by where it stands, so never plain (form 0).
fn in_form(rng: &mut Rng, secret: &str, shaped: bool) -> String {
    let escaped_json = |s: &str| s.replace('/', "\\/");
    match rng.below(20) + usize::from(!shaped) {
        0 => secret.to_string(),
        1 => format!("{{\"token\":\"{secret}\"}}"),
        2 => format!("{{\\\"password\\\": \\\"{secret}\\\"}}"),
        3 => format!("api_key={secret}"),
        4 => format!("\"client_secret\": \"{secret}\""),
        5 => format!("password: {secret}"),
        6 => format!("export GITHUB_TOKEN={secret}"),
        7 => format!("--password {secret}"),
        8 => format!("--token={secret}"),
        9 => format!("https://deploy:{secret}@example.com:8443/x"),
        10 => format!("postgresql://app:{secret}@db:5432/app"),
        11 => format!("Cookie: theme=dark; session={secret}"),
        12 => format!("JSESSIONID={secret}"),
        13 => format!("Server=db;User Id=sa;Password={secret};"),
        14 => format!("q=password%3D{secret}%26x"),
        15 => format!("%22token%22%3A%22{secret}%22"),
        16 => format!("Authorization: Bearer {secret}"),
        17 => escaped_json(&format!("\"url\":\"https://u:{secret}@h/p\"")),
        18 => format!("mysql -u root -p{secret}"),
        _ => format!("session_id={secret}"),
    }
}

/// Pieces of ordinary log text: nothing here is a secret.
const CLEAN: &[&str] = &[
    " ",
    "\n",
    ", ",
    "\"level\":\"info\"",
    "{\"ts\":\"2026-01-02T12:00:00.000Z\"}",
    "commit 3f1c9a7e0d2b4c6a8e9f0a1b2c3d4e5f60718293",
    "6f1c2a4e-8b3d-4c5e-9f70-112233445566",
    "user 1184576487578214464",
    "tokenizer=bert",
    "max_tokens=512",
    "{\"token_type\":\"bearer\"}",
    "aGVsbG8gd29ybGQsIHRoaXMgaXMgYSBsb2cgbGluZQ==",
    "MDE3OlB1bGxSZXF1ZXN0UmV2aWV3MjM3ODk1Njcx",
    "https://api.github.com/repos/acme/widget/actions/runs?per_page=5",
    "ssh://git@github.com/acme/widget.git",
    "GET /health 200 3ms",
    "The Bot started; Bearer authentication is supported.",
    "é🟢",
    "-----BEGIN CERTIFICATE-----",
    "sk-learn",
    "v1.2.3",
    "ls -p /tmp",
    "session_count=3",
    "\"secrets\": \"read\"",
    "keys_url",
    "docker run -u 1000:1000",
];

#[test]
fn a_generated_secret_never_survives_in_any_form() {
    let mut rng = Rng(0x5EED_FACE_0003_0002);
    let cases = std::env::var("VALINE_PROPERTY_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    for _ in 0..cases {
        let shaped = rng.below(3) != 0;
        let secret = if shaped {
            provider_token(&mut rng)
        } else {
            let len = 12 + rng.below(30);
            body(&mut rng, len, ALNUM)
        };
        let before: String = (0..rng.below(4)).map(|_| CLEAN[rng.below(CLEAN.len())]).collect();
        let after: String = (0..rng.below(4)).map(|_| CLEAN[rng.below(CLEAN.len())]).collect();
        let sep = [" ", "\n", "\t", " | "][rng.below(4)];
        let text = format!("{before}{sep}{}{sep}{after}", in_form(&mut rng, &secret, shaped));
        let out = redact(&text);
        let tail = &secret[secret.len() - 8..];
        assert!(!out.contains(&secret) && !out.contains(tail), "survived in {text:?} -> {out:?}");
    }
}

#[test]
fn secret_free_text_comes_back_byte_for_byte() {
    let mut rng = Rng(0x5EED_C1EA_0003_0003);
    for _ in 0..20_000 {
        let n = 1 + rng.below(12);
        let text: Vec<&str> = (0..n).map(|_| CLEAN[rng.below(CLEAN.len())]).collect();
        let text = text.join([" ", "\n", "\t"][rng.below(3)]);
        let out = redact(&text);
        assert!(matches!(out, Cow::Borrowed(_)), "changed {text:?} -> {out:?}");
    }
}
