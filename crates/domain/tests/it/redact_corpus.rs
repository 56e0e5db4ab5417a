//! The real GitHub webhook payloads and Discord interactions of the replay corpus
//! (`../shared/corpus`, or `VALINE_CORPUS`): redaction leaves them as they are, except for the
//! values listed in `docs/DECISIONS.md` ("Redaction"), which are secrets or stand where secrets
//! do. Skipped, with a message, when the corpus is not there.

use std::path::{Path, PathBuf};

use valine_domain::redact::{MASK, find_secrets, redact_bytes};

/// Keys whose values the corpus holds secrets in: Discord's interaction `token` (it answers the
/// interaction for 15 minutes), GitHub's secret-scanning `secret` (shown as `********` in the
/// samples), and the AWS access key id and signature of the presigned S3 URLs in the `package`
/// samples (`X-Amz-Credential=AKIA…`, `X-Amz-Signature=…`).
const SECRET_KEYS: &[&str] = &["token", "secret", "X-Amz-Credential", "X-Amz-Signature"];

fn corpus_dir() -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        std::env::var_os("VALINE_CORPUS").map(PathBuf::from),
        Some(manifest.join("../../../shared/corpus")),
        Some(manifest.join("../../../../shared/corpus")),
    ];
    candidates.into_iter().flatten().find(|p| p.join("github").is_dir())
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// The key a value starting at `start` belongs to: `"key": "` or `key=` right before it.
fn key_before(text: &[u8], start: usize) -> Option<String> {
    let mut p = start.checked_sub(1)?;
    if text[p] == b'=' {
        let name_start = text[..p].iter().rposition(|&c| !(c.is_ascii_alphanumeric() || c == b'-' || c == b'_'))?;
        return Some(String::from_utf8_lossy(&text[name_start + 1..p]).into_owned());
    }
    if text[p] != b'"' {
        return None;
    }
    while p > 0 && text[p - 1] == b' ' {
        p -= 1;
    }
    p = p.checked_sub(1)?;
    if text[p] != b':' {
        return None;
    }
    while p > 0 && text[p - 1] == b' ' {
        p -= 1;
    }
    let close = p.checked_sub(1)?;
    if text[close] != b'"' {
        return None;
    }
    let open = text[..close].iter().rposition(|&c| c == b'"')?;
    Some(String::from_utf8_lossy(&text[open + 1..close]).into_owned())
}

#[test]
fn corpus_payloads_pass_unchanged_but_for_listed_secrets() {
    let Some(dir) = corpus_dir() else {
        println!("no corpus (../shared/corpus or VALINE_CORPUS): skipped");
        return;
    };
    let mut files = Vec::new();
    json_files(&dir, &mut files);
    files.sort();
    assert!(files.len() > 300, "only {} JSON files under {}", files.len(), dir.display());
    let mut unexpected = Vec::new();
    let mut listed = 0;
    for path in &files {
        let Ok(text) = std::fs::read(path) else { continue };
        let found = find_secrets(&text);
        for f in &found {
            let key = key_before(&text, f.start);
            let whole_value = matches!(text.get(f.end), Some(b'"' | b'&'));
            if whole_value && key.as_deref().is_some_and(|k| SECRET_KEYS.contains(&k)) {
                listed += 1;
                println!("redacted: {} {:?} ({})", path.strip_prefix(&dir).unwrap_or(path).display(), key, f.kind);
            } else {
                unexpected.push(format!(
                    "{}: {} under {:?}: {:?}",
                    path.strip_prefix(&dir).unwrap_or(path).display(),
                    f.kind,
                    key,
                    String::from_utf8_lossy(&text[f.start..f.end.min(f.start + 80)])
                ));
            }
        }
        // Redaction changes exactly what was found.
        let out = redact_bytes(&text);
        let masks = out.windows(MASK.len()).filter(|w| *w == MASK.as_bytes()).count();
        let before = text.windows(MASK.len()).filter(|w| *w == MASK.as_bytes()).count();
        assert_eq!(masks - before, found.len(), "{}", path.display());
    }
    assert!(unexpected.is_empty(), "{} unexpected findings:\n{}", unexpected.len(), unexpected.join("\n"));
    println!("{} files, {listed} listed secret values redacted", files.len());
}
