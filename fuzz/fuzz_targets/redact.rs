//! The redactor on arbitrary bytes: never panics, never copies when nothing changed, keeps UTF-8
//! valid, and a GitHub token set apart by spaces never survives.
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use valine_domain::redact::{redact, redact_bytes};

const TOKEN: &str = "ghp_FUZZfuzzFUZZfuzzFUZZfuzz0123456789ab";

fuzz_target!(|data: &[u8]| {
    if let Cow::Borrowed(b) = redact_bytes(data) {
        assert_eq!(b, data);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let out = redact(text);
        assert!(std::str::from_utf8(out.as_bytes()).is_ok());
        let planted = format!("{text} {TOKEN} {text}");
        assert!(!redact(&planted).contains(TOKEN), "planted token survived");
    }
});
