//! `valinectl redact`: stdin to stdout through the redactor, streaming, so it works on logs of
//! any size in constant memory. `valinectl redact --check [PATH…]`: the leaked-secret watchguard,
//! which scans files (by default the files git tracks) and reports each secret as
//! `file:line: kind (fp:…)` without printing it.

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use valine_domain::redact::{StreamState, find_secrets, redact_partial, redact_stream};

/// A line longer than this is redacted in pieces, cut only where no secret can straddle the cut.
const MAX_CHUNK: usize = 1 << 20;

/// Copies `input` to `output`, redacted. Returns the number of bytes read.
pub(crate) fn run(input: impl io::Read, output: impl Write) -> io::Result<u64> {
    run_with(input, output, MAX_CHUNK)
}

fn run_with(input: impl io::Read, output: impl Write, max_chunk: usize) -> io::Result<u64> {
    let mut reader = io::BufReader::with_capacity(256 * 1024, input);
    let mut writer = io::BufWriter::with_capacity(256 * 1024, output);
    let mut state = StreamState::default();
    let mut pending: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut total = 0u64;
    // How long `pending` may grow before the next attempt to cut it: doubles while no safe cut
    // is found (one run with no cut point, such as a huge base64 blob), so each byte is scanned
    // a bounded number of times.
    let mut next_try = max_chunk;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let len = buf.len();
        total += len as u64;
        // Everything up to the last newline in this buffer is complete lines.
        match buf.iter().rposition(|&b| b == b'\n').and_then(|nl| buf.split_at_checked(nl + 1)) {
            Some((lines, rest)) => {
                if pending.is_empty() {
                    writer.write_all(&redact_stream(lines, &mut state))?;
                } else {
                    pending.extend_from_slice(lines);
                    writer.write_all(&redact_stream(&pending, &mut state))?;
                    pending.clear();
                }
                pending.extend_from_slice(rest);
                next_try = max_chunk;
            }
            None => pending.extend_from_slice(buf),
        }
        reader.consume(len);
        if pending.len() > next_try {
            let (out, consumed) = redact_partial(&pending, &mut state);
            writer.write_all(&out)?;
            drop(out);
            pending.drain(..consumed);
            next_try = if consumed == 0 { pending.len() * 2 } else { max_chunk };
        }
    }
    if !pending.is_empty() {
        writer.write_all(&redact_stream(&pending, &mut state))?;
    }
    writer.flush()?;
    Ok(total)
}

/// The allowlist of `.redact-allow`: path globs of files not to scan (test fixtures with fake
/// tokens) and fingerprints of single findings to accept.
#[derive(Debug, Default)]
pub(crate) struct Allowlist {
    globs: Vec<String>,
    fingerprints: Vec<String>,
}

impl Allowlist {
    /// Reads `.redact-allow`: one entry a line; `#` starts a comment; `fp:` and 16 hex digits is
    /// a fingerprint; anything else is a path glob (`*` within a path segment, `**` across
    /// segments, `?` one character; a glob without `/` matches the file name anywhere).
    pub(crate) fn parse(text: &str) -> Self {
        let mut list = Allowlist::default();
        for line in text.lines() {
            let entry = line.split('#').next().unwrap_or_default().trim();
            if entry.is_empty() {
                continue;
            }
            match entry.strip_prefix("fp:") {
                Some(fp) => list.fingerprints.push(fp.trim().to_ascii_lowercase()),
                None => list.globs.push(entry.trim_start_matches("./").to_string()),
            }
        }
        list
    }

    /// Reads `.redact-allow` in `root`, or an empty list when there is none.
    pub(crate) fn load(root: &Path) -> io::Result<Self> {
        match std::fs::read_to_string(root.join(".redact-allow")) {
            Ok(text) => Ok(Self::parse(&text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    fn allows_path(&self, path: &str) -> bool {
        self.globs.iter().any(|g| {
            if g.contains('/') {
                glob_match(g.as_bytes(), path.as_bytes())
            } else {
                let name = path.rsplit('/').next().unwrap_or(path);
                glob_match(g.as_bytes(), name.as_bytes())
            }
        })
    }

    fn allows_fingerprint(&self, fp: &str) -> bool {
        self.fingerprints.iter().any(|f| f == fp)
    }
}

/// `*` matches within a path segment, `**` across segments (and `**/` also nothing), `?` one
/// character other than `/`.
fn glob_match(glob: &[u8], path: &[u8]) -> bool {
    match glob.split_first() {
        None => path.is_empty(),
        Some((b'*', [b'*', rest @ ..])) => {
            let after_slash = rest.strip_prefix(b"/").unwrap_or(rest);
            (0..=path.len()).filter_map(|i| path.get(i..)).any(|p| glob_match(rest, p) || glob_match(after_slash, p))
        }
        Some((b'*', rest)) => {
            let segment = path.iter().position(|&c| c == b'/').unwrap_or(path.len());
            (0..=segment).filter_map(|i| path.get(i..)).any(|p| glob_match(rest, p))
        }
        Some((b'?', rest)) => path.split_first().is_some_and(|(&c, tail)| c != b'/' && glob_match(rest, tail)),
        Some((&c, rest)) => path.split_first().is_some_and(|(&p, tail)| p == c && glob_match(rest, tail)),
    }
}

/// What `--check` found.
#[derive(Debug, Default)]
pub(crate) struct CheckReport {
    pub files: usize,
    pub findings: usize,
    pub allowed: usize,
}

/// Scans `paths` (relative to `root`, or absolute), writing `file:line: kind (fp:…)` for each
/// secret to `out`. Files the allowlist names, files that are not there and binary files are
/// skipped.
pub(crate) fn check_files(
    root: &Path,
    paths: &[PathBuf],
    allow: &Allowlist,
    out: &mut impl Write,
) -> io::Result<CheckReport> {
    let mut report = CheckReport::default();
    for path in paths {
        let shown = path.to_string_lossy().replace('\\', "/");
        if allow.allows_path(&shown) {
            continue;
        }
        let full = if path.is_absolute() { path.clone() } else { root.join(path) };
        let data = match std::fs::read(&full) {
            Ok(d) => d,
            // deleted but still tracked, a directory, a dangling link: nothing to scan
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::IsADirectory) => continue,
            Err(e) if full.is_dir() => {
                let _ = e;
                continue;
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", full.display()))),
        };
        if data.get(..8000).unwrap_or(data.as_slice()).contains(&0) {
            continue; // binary
        }
        report.files += 1;
        let mut line = 1;
        let mut counted_to = 0;
        for f in find_secrets(&data) {
            if !f.is_literal(&data) {
                continue;
            }
            let fp = f.fingerprint(&data);
            if allow.allows_fingerprint(&fp) {
                report.allowed += 1;
                continue;
            }
            line += data.get(counted_to..f.start).unwrap_or_default().iter().filter(|&&c| c == b'\n').count();
            counted_to = f.start;
            writeln!(out, "{shown}:{line}: {} (fp:{fp})", f.kind)?;
            report.findings += 1;
        }
    }
    Ok(report)
}

/// The files git tracks in `root` (`git ls-files -z`).
pub(crate) fn tracked_files(root: &Path) -> Result<Vec<PathBuf>, String> {
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z"])
        .output()
        .map_err(|e| format!("cannot run git ls-files: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "git ls-files failed in {}: {}",
            root.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(output
        .stdout
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
        .collect())
}

/// `valinectl redact --check [PATH…]` in `root`: Ok when nothing is found; an error (exit 1)
/// naming the count otherwise. Findings go to `out`.
pub(crate) fn check(root: &Path, paths: &[PathBuf], out: &mut impl Write) -> Result<CheckReport, String> {
    let allow = Allowlist::load(root).map_err(|e| format!(".redact-allow: {e}"))?;
    let files = if paths.is_empty() { tracked_files(root)? } else { paths.to_vec() };
    let report = check_files(root, &files, &allow, out).map_err(|e| e.to_string())?;
    if report.findings > 0 {
        return Err(format!(
            "{} possible secret(s) in {} file(s) scanned; remove them, or allow a test fixture in .redact-allow (see docs/RUNBOOK.md)",
            report.findings, report.files
        ));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        run(input, &mut out).unwrap();
        out
    }

    /// A reader that hands out `n` bytes at a time.
    struct Trickle<'a>(&'a [u8], usize);
    impl io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn redacts_tokens_and_keeps_shas() {
        let token = format!("ghp_{}", "aB3".repeat(12));
        let input = format!("Authorization: Bearer {token}\ncommit 3f1c9a7e0d2b4c6a8e9f0a1b2c3d4e5f60718293\n");
        let text = String::from_utf8(filter(input.as_bytes())).unwrap();
        assert_eq!(text, "Authorization: ***REDACTED***\ncommit 3f1c9a7e0d2b4c6a8e9f0a1b2c3d4e5f60718293\n");
    }

    #[test]
    fn secrets_split_across_reads_are_still_caught() {
        // the values are joined at run time, so the source holds no secret-shaped literal
        let input = format!("a password={}{} b\nno newline at the end token=abc123", "hunter2", "secret");
        let mut out = Vec::new();
        run(Trickle(input.as_bytes(), 3), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "a password=***REDACTED*** b\nno newline at the end token=***REDACTED***");
    }

    /// One long line (no newline) of words, with private-key blocks (whose header has spaces),
    /// `Authorization: Bearer`, `password: x` and tokens at every offset: streamed through small
    /// chunks, it comes out exactly as the whole line redacted at once.
    #[test]
    fn long_lines_are_never_cut_inside_a_secret() {
        let token = format!("ghp_{}", "Zq9".repeat(12));
        let key = format!(
            "-----BEGIN RSA PRIVATE KEY----- {} -----END RSA PRIVATE KEY-----",
            "MIIEowIBAAKCAQEA0123456789abcdefABCDEF"
        );
        let password = format!("password: {}", "hunter2hunter2");
        let flag = format!("mysql -u root -p {}", "s3cretpass");
        let pieces = [
            key.as_str(),
            "Authorization: Bearer sk-live-0123456789abcdef",
            password.as_str(),
            token.as_str(),
            "plain words, commas; and semicolons",
            flag.as_str(),
        ];
        let mut line = String::new();
        let mut k = 0;
        while line.len() < 3 * (1 << 20) {
            line.push_str(pieces[k % pieces.len()]);
            // varying filler so the secrets land on every offset relative to the chunk size
            line.push_str(&" x".repeat(k % 97));
            line.push(' ');
            k += 1;
        }
        let expected = valine_domain::redact::redact_bytes(line.as_bytes()).into_owned();
        for (chunk, read) in [(1 << 20, 4096), (200_000, 7919), (100_000, 65_537)] {
            let mut out = Vec::new();
            run_with(Trickle(line.as_bytes(), read), &mut out, chunk).unwrap();
            assert!(out == expected, "chunk {chunk}, reads of {read}: the streamed output differs");
        }
        let text = String::from_utf8(expected).unwrap();
        for secret in ["MIIEowIBAAKCAQEA", "sk-live-0123456789abcdef", "hunter2hunter2", &token, "s3cretpass"] {
            assert!(!text.contains(secret), "{secret} survived");
        }
    }

    #[test]
    fn private_keys_across_lines_and_huge_lines() {
        let mut input = format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{}\nAbCdEf\n-----END RSA PRIVATE KEY-----\nok\n",
            "MIIEowIBAAKCAQEA"
        )
        .into_bytes();
        input.extend(std::iter::repeat_n(b'x', 3 * MAX_CHUNK));
        input.extend_from_slice(b" token=zzz\n");
        let out = filter(&input);
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("MIIEowIBAAKCAQEA") && !text.contains("AbCdEf") && !text.contains("zzz"));
        assert!(
            text.starts_with("-----BEGIN RSA PRIVATE KEY-----***REDACTED***-----END RSA PRIVATE KEY-----\nok\nxxx")
        );
        assert!(text.ends_with("x token=***REDACTED***\n"));
        assert_eq!(text.matches('x').count(), 3 * MAX_CHUNK);
    }

    /// A private key with real newlines, read one byte at a time: every chunk boundary falls
    /// somewhere inside it.
    #[test]
    fn a_private_key_read_byte_by_byte() {
        let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj";
        let input = format!(
            "before\nprivate_key=-----BEGIN PRIVATE KEY-----\n{body}\n{body}\n-----END PRIVATE KEY-----\nafter\n"
        );
        let mut out = Vec::new();
        run(Trickle(input.as_bytes(), 1), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "before\nprivate_key=-----BEGIN PRIVATE KEY-----***REDACTED***-----END PRIVATE KEY-----\nafter\n"
        );
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"crates/*/tests/*.rs", b"crates/domain/tests/redact_rules.rs"));
        assert!(!glob_match(b"crates/*/tests/*.rs", b"crates/domain/tests/sub/x.rs"));
        assert!(glob_match(b"crates/**/fixtures/**", b"crates/a/b/fixtures/c/d.json"));
        assert!(glob_match(b"docs/**/*.md", b"docs/RUNBOOK.md"));
        assert!(glob_match(b"file?.txt", b"file1.txt"));
        assert!(!glob_match(b"*.rs", b"src/main.rs"));
        let allow = Allowlist::parse(
            "# fixtures\n*.pem\ncrates/domain/src/redact/tests.rs  # fake tokens\nfp:ABCDEF0123456789\n",
        );
        assert!(allow.allows_path("keys/dev.pem"));
        assert!(allow.allows_path("crates/domain/src/redact/tests.rs"));
        assert!(!allow.allows_path("crates/domain/src/redact/mod.rs"));
        assert!(allow.allows_fingerprint("abcdef0123456789"));
    }

    fn git(dir: &Path, args: &[&str]) {
        let status = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "commit.gpgsign=false"])
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    /// A scratch repository with a planted token: found, reported without the secret, exit 1
    /// (an error from `check`); then allowed by fingerprint and by glob: exit 0.
    #[test]
    fn the_watchguard_finds_a_planted_token() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        git(root, &["init", "-q"]);
        let token = format!("ghp_{}", "Pl4nted".repeat(5));
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join("src/config.rs"), format!("// settings\nconst T: &str = \"{token}\";\n")).unwrap();
        std::fs::write(root.join("README.md"), "nothing to see; commit 3f1c9a7e0d2b4c6a8e9f0a1b2c3d4e5f60718293\n")
            .unwrap();
        std::fs::write(root.join("untracked.txt"), format!("{token}\n")).unwrap();
        git(root, &["add", "src/config.rs", "README.md"]);

        let mut out = Vec::new();
        let err = check(root, &[], &mut out).unwrap_err();
        let text = String::from_utf8(out).unwrap();
        assert!(err.contains("1 possible secret"), "{err}");
        assert!(text.starts_with("src/config.rs:2: github-pat (fp:"), "{text}");
        assert!(!text.contains(&token[4..12]), "the secret was printed: {text}");
        assert_eq!(text.lines().count(), 1, "the untracked file is not scanned: {text}");

        // explicit paths are scanned whether tracked or not
        let mut out = Vec::new();
        assert!(check(root, &[PathBuf::from("untracked.txt")], &mut out).is_err());

        let fp = text.split("(fp:").nth(1).unwrap().trim_end().trim_end_matches(')').to_string();
        std::fs::write(root.join(".redact-allow"), format!("fp:{fp}\n")).unwrap();
        let report = check(root, &[], &mut Vec::new()).unwrap();
        assert_eq!((report.findings, report.allowed), (0, 1));

        std::fs::write(root.join(".redact-allow"), "src/*.rs\n").unwrap();
        let report = check(root, &[], &mut Vec::new()).unwrap();
        assert_eq!(report.findings, 0);
    }

    #[test]
    fn code_that_names_secrets_is_not_a_finding() {
        let code = b"struct C { password: String, token: Option<String> }\nlet token = read_token();\napi_key: ${API_KEY}\nsecret: SecretString\nDB_PASSWORD=changeme\n";
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.rs"), code).unwrap();
        let mut out = Vec::new();
        let report = check_files(dir.path(), &[PathBuf::from("c.rs")], &Allowlist::default(), &mut out).unwrap();
        assert_eq!(report.findings, 0, "{}", String::from_utf8_lossy(&out));
        std::fs::write(dir.path().join("d.env"), format!("DB_PASSWORD={}\n", "s3cr3t-P4ssw0rd")).unwrap();
        let report =
            check_files(dir.path(), &[PathBuf::from("d.env")], &Allowlist::default(), &mut Vec::new()).unwrap();
        assert_eq!(report.findings, 1);
    }
}
