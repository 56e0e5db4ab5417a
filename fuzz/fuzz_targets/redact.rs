//! The redactor on arbitrary bytes; the check is `valine_harness::redact`, which `cargo test`
//! also runs on generated inputs (crates/harness/tests/properties.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| valine_harness::redact(data));
