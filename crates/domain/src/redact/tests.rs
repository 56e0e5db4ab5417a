//! Unit tests of the redactor's documented behaviour; the rule tables are in `tests/it/redact_rules.rs`.

use super::*;

const GHP: &str = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
const PAT: &str = "github_pat_11ABCDEFG0123456789abc_defghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd";
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
    assert_eq!(&*c, b"-----END OPENSSH PRIVATE KEY-----\nafter\n");
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

#[test]
fn rule_count_is_reported() {
    // docs/PERFORMANCE.md quotes this number; update it there when it changes
    println!("rules: {}", rule_count());
    assert!(rule_count() >= 90);
}
