//! Interaction verification and parsing: any body, signed or not, gets an answer below 500 and
//! never a panic. The check is `valine_harness::interaction_bytes`, which `cargo test` also runs
//! on generated inputs (crates/harness/tests/properties.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    valine_harness::interaction_bytes(data);
});
