//! `valinectl redact`: stdin to stdout through the redactor, streaming, so it works on logs of
//! any size in constant memory.

use std::io::{self, BufRead, Write};

use valine_domain::redact::{StreamState, redact_stream};

/// A line longer than this is cut at its last white space (or here) and redacted in pieces.
const MAX_CHUNK: usize = 1 << 20;

/// Copies `input` to `output`, redacted. Returns the number of bytes read.
pub fn run(input: impl io::Read, output: impl Write) -> io::Result<u64> {
    let mut reader = io::BufReader::with_capacity(256 * 1024, input);
    let mut writer = io::BufWriter::with_capacity(256 * 1024, output);
    let mut state = StreamState::default();
    let mut pending: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut total = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let len = buf.len();
        total += len as u64;
        // Everything up to the last newline in this buffer is complete lines.
        match buf.iter().rposition(|&b| b == b'\n') {
            Some(nl) => {
                if pending.is_empty() {
                    writer.write_all(&redact_stream(&buf[..=nl], &mut state))?;
                } else {
                    pending.extend_from_slice(&buf[..=nl]);
                    writer.write_all(&redact_stream(&pending, &mut state))?;
                    pending.clear();
                }
                pending.extend_from_slice(&buf[nl + 1..]);
            }
            None => pending.extend_from_slice(buf),
        }
        reader.consume(len);
        if pending.len() > MAX_CHUNK {
            let cut = safe_cut(&pending);
            writer.write_all(&redact_stream(&pending[..cut], &mut state))?;
            pending.drain(..cut);
        }
    }
    if !pending.is_empty() {
        writer.write_all(&redact_stream(&pending, &mut state))?;
    }
    writer.flush()?;
    Ok(total)
}

/// Where to cut a line too long to hold: after white space, but never between a credential and
/// what introduces it (`Bearer x`, `password: x`, `token= x`).
fn safe_cut(buf: &[u8]) -> usize {
    let mut end = buf.len();
    for _ in 0..32 {
        let Some(ws) = buf[..end].iter().rposition(u8::is_ascii_whitespace) else { break };
        let word_start = buf[..ws].iter().rposition(u8::is_ascii_whitespace).map_or(0, |p| p + 1);
        let word = &buf[word_start..ws];
        let introduces = word.ends_with(b":")
            || word.ends_with(b"=")
            || [b"bearer".as_slice(), b"basic", b"bot", b"token", b"authorization"]
                .iter()
                .any(|w| word.eq_ignore_ascii_case(w));
        if !introduces {
            return ws + 1;
        }
        end = ws;
    }
    buf.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        run(input, &mut out).unwrap();
        out
    }

    #[test]
    fn redacts_tokens_and_keeps_shas() {
        let out = filter(b"Authorization: Bearer ghp_abcdefghijklmnopqrstuvwxyz0123456789\ncommit 3f1c9a7e0d2b4c6a8e9f0a1b2c3d4e5f60718293\n");
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "Authorization: ***REDACTED***\ncommit 3f1c9a7e0d2b4c6a8e9f0a1b2c3d4e5f60718293\n");
    }

    #[test]
    fn secrets_split_across_reads_are_still_caught() {
        // a reader that hands out three bytes at a time
        struct Trickle<'a>(&'a [u8]);
        impl io::Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(3).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let input = b"a password=hunter2secret b\nno newline at the end token=abc123";
        let mut out = Vec::new();
        run(Trickle(input), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "a password=***REDACTED*** b\nno newline at the end token=***REDACTED***");
    }

    #[test]
    fn long_lines_are_never_cut_between_a_credential_and_its_introducer() {
        let mut input = vec![b'x'; MAX_CHUNK - 20];
        input.extend_from_slice(b" Authorization: Bearer ");
        input.extend_from_slice(b"sk-live-0123456789abcdef");
        input.extend(std::iter::repeat_n(b'y', MAX_CHUNK));
        input.extend_from_slice(b" password: hunter2hunter2 z");
        input.extend(std::iter::repeat_n(b'w', MAX_CHUNK));
        let text = String::from_utf8(filter(&input)).unwrap();
        assert!(!text.contains("sk-live-0123456789abcdef") && !text.contains("hunter2"));
        assert_eq!(safe_cut(b"a b Bearer "), 4);
        assert_eq!(safe_cut(b"a token= "), 2);
        assert_eq!(safe_cut(b"plain words "), 12);
    }

    #[test]
    fn private_keys_across_lines_and_huge_lines() {
        let mut input =
            b"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nAbCdEf\n-----END RSA PRIVATE KEY-----\nok\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 3 * MAX_CHUNK));
        input.extend_from_slice(b" token=zzz\n");
        let out = filter(&input);
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("MIIEowIBAAKCAQEA") && !text.contains("AbCdEf") && !text.contains("zzz"));
        assert!(text.contains("ok\n"));
        assert!(
            text.starts_with("-----BEGIN RSA PRIVATE KEY-----***REDACTED***-----END RSA PRIVATE KEY-----\nok\nxxx")
        );
        assert!(text.ends_with("x token=***REDACTED***\n"));
        assert_eq!(text.matches('x').count(), 3 * MAX_CHUNK);
    }
}
