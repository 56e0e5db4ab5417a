//! Streaming: a long line handed to `redact_partial` piece by piece, the way `valinectl redact`
//! holds it, comes out exactly as the whole line redacted at once, wherever the pieces end:
//! no cut falls inside a secret or between a secret and what introduces it.

use valine_domain::redact::{StreamState, redact_bytes, redact_partial, redact_stream};

/// Streams `input` in reads of `read` bytes, trying a partial cut whenever more than `hold`
/// bytes are pending, and returns the output.
fn stream(input: &[u8], read: usize, hold: usize) -> Vec<u8> {
    let mut state = StreamState::default();
    let mut pending = Vec::new();
    let mut out = Vec::new();
    for piece in input.chunks(read) {
        pending.extend_from_slice(piece);
        if pending.len() > hold {
            let (done, consumed) = redact_partial(&pending, &mut state);
            out.extend_from_slice(&done);
            pending.drain(..consumed);
        }
    }
    out.extend_from_slice(&redact_stream(&pending, &mut state));
    out
}

fn long_line(pieces: &[&str], len: usize) -> String {
    let mut line = String::new();
    let mut k = 0;
    while line.len() < len {
        line.push_str(pieces[k % pieces.len()]);
        line.push_str(&"ab ".repeat(k % 61));
        line.push_str(if k % 3 == 0 { ", " } else { " " });
        k += 1;
    }
    line
}

#[test]
fn partial_cuts_change_nothing() {
    let token = format!("xoxb-1234567890-{}", "Tq7".repeat(10));
    let pieces = [
        "-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ -----END OPENSSH PRIVATE KEY-----",
        "\"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----\\n\"",
        "Authorization: Bearer abcdef0123456789ABCDEF",
        "Cookie: theme=dark; session=0123456789abcdef0123",
        token.as_str(),
        "Server=db;User Id=sa;Password=two words here;Encrypt=true",
        "https://deploy:pa55word@example.com:8443/x",
        "--password hunter2secret",
        "key AKIAQWERTYUIOP234567, then, its secret; wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY12",
        "mysql -h db, -u root, -p s3cretpass",
        "ordinary text with commit 3f1c9a7e0d2b4c6a8e9f0a1b2c3d4e5f60718293",
    ];
    let line = long_line(&pieces, 700_000);
    let expected = redact_bytes(line.as_bytes()).into_owned();
    for (read, hold) in [(1000, 70_000), (4093, 100_000), (65_536, 65_537), (9973, 200_000)] {
        let out = stream(line.as_bytes(), read, hold);
        assert!(out == expected, "reads of {read}, holding {hold}: the streamed output differs");
    }
    let text = String::from_utf8(expected).unwrap_or_default();
    for secret in [
        "b3BlbnNzaC1rZXkt",
        "MIIEvQIBADAN",
        "abcdef0123456789ABCDEF",
        "0123456789abcdef0123",
        &token,
        "two words here",
        "pa55word",
        "hunter2secret",
        "wJalrXUtnFEMIK7MDENG",
        "s3cretpass",
    ] {
        assert!(!text.contains(secret), "{secret} survived");
    }
}

/// A private-key block with real newlines inside one huge "line" of a stream whose newlines
/// the caller does not cut at: an open block is carried over in the state.
#[test]
fn an_open_private_key_is_carried_across_partial_cuts() {
    let body: String = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0123456789+/".repeat(5000);
    let input = format!("start -----BEGIN RSA PRIVATE KEY-----{body}-----END RSA PRIVATE KEY----- token=abc123 end");
    let expected = redact_bytes(input.as_bytes()).into_owned();
    assert_eq!(
        String::from_utf8_lossy(&expected),
        "start -----BEGIN RSA PRIVATE KEY-----***REDACTED***-----END RSA PRIVATE KEY----- token=***REDACTED*** end"
    );
    for read in [999, 4096, 70_001] {
        let out = stream(input.as_bytes(), read, 80_000);
        assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&expected), "reads of {read}");
    }
}

#[test]
fn short_input_is_left_for_later() {
    let mut state = StreamState::default();
    let (out, consumed) = redact_partial(b"password: hunter2", &mut state);
    assert_eq!((out.len(), consumed), (0, 0));
}

/// A block carried in from the previous chunk closes, ordinary text follows, and a second block
/// opens near the end: the cut falls between them and the state says no block is open there.
#[test]
fn a_carried_block_that_closes_before_the_cut() {
    let body = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0123456789+/".repeat(2000);
    let filler = "plain words ".repeat(20_000);
    let input = format!(
        "{body}-----END RSA PRIVATE KEY----- {filler}-----BEGIN EC PRIVATE KEY-----{body}-----END EC PRIVATE KEY----- after"
    );
    let mut carried = StreamState::default();
    let _ = redact_stream(b"-----BEGIN RSA PRIVATE KEY-----\n", &mut carried);
    assert!(carried.in_private_key());
    let mut expected_state = carried;
    let expected = redact_stream(input.as_bytes(), &mut expected_state).into_owned();
    let mut state = carried;
    let mut out = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    for piece in input.as_bytes().chunks(50_000) {
        pending.extend_from_slice(piece);
        if pending.len() > 150_000 {
            let (done, consumed) = redact_partial(&pending, &mut state);
            out.extend_from_slice(&done);
            pending.drain(..consumed);
        }
    }
    out.extend_from_slice(&redact_stream(&pending, &mut state));
    assert!(out == expected, "the streamed output differs");
    assert!(String::from_utf8_lossy(&out).ends_with("-----END EC PRIVATE KEY----- after"));
    assert!(String::from_utf8_lossy(&out).contains("plain words plain words"));
}

/// Secrets whose finding depends on what comes before them on the line (an AWS secret key with
/// neither `/` nor `+` after its access key id, the value of `-p` after `mysql`): the end of
/// the held text falls inside the secret, and the cut must not fall between the two.
#[test]
fn a_cut_never_separates_a_secret_from_its_context() {
    let secret = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY12";
    for (before, value) in [("key AKIAQWERTYUIOP234567 then ", secret), ("mysql -u root, -p ", "s3cretpass")] {
        // one word after the value, long enough that the last byte a cut may fall on (64 KiB
        // before the end) lies in the middle of the value
        let tail = "z".repeat(64 * 1024 - 1 - value.len() / 2);
        let input = format!("start {before}{value} {tail}");
        let mut state = StreamState::default();
        let (done, consumed) = redact_partial(input.as_bytes(), &mut state);
        let mut out = done.into_owned();
        out.extend_from_slice(&redact_stream(&input.as_bytes()[consumed..], &mut state));
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains(value), "{value} survived a cut at {consumed}: {}", &text[..80]);
        assert_eq!(out, redact_bytes(input.as_bytes()).into_owned());
    }
}
