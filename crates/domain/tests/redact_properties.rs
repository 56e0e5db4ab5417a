//! The redactor's properties over many generated inputs (the fuzz target `redact` checks the same
//! under libFuzzer): no panic, no copy without a change, UTF-8 kept, and a planted secret set
//! apart by white space never survives, whatever surrounds it.

use std::borrow::Cow;

use valine_domain::redact::{redact, redact_bytes};
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
    }
}
