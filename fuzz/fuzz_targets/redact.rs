//! The redactor on arbitrary bytes: never panics, never copies when nothing changed, keeps UTF-8
//! valid, and a GitHub token set apart by spaces never survives; finding secrets and the
//! streaming cut never panic either, and a cut never reaches past the input.
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use valine_domain::redact::{StreamState, find_secrets, redact, redact_bytes, redact_partial};

const TOKEN: &str = "ghp_FUZZfuzzFUZZfuzzFUZZfuzz0123456789ab";

fuzz_target!(|data: &[u8]| {
    if let Cow::Borrowed(b) = redact_bytes(data) {
        assert_eq!(b, data);
    }
    for f in find_secrets(data) {
        assert!(f.start <= f.end && f.end <= data.len());
    }
    let (_, consumed) = redact_partial(data, &mut StreamState::default());
    assert!(consumed <= data.len());
    if let Ok(text) = std::str::from_utf8(data) {
        let out = redact(text);
        assert!(std::str::from_utf8(out.as_bytes()).is_ok());
        let planted = format!("{text} {TOKEN} {text}");
        assert!(!redact(&planted).contains(TOKEN), "planted token survived");
    }
});
