//! Any bytes, as a scanned string, through code normalisation and
//! classification: no panic, a refusal has a code and a plain message, and an
//! accepted code is at most 64 characters of `A-Z 0-9 - _ . /` that
//! normalises to itself.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use traitortrack_protocol::codes::MAX_CODE_LEN;
use traitortrack_protocol::{normalize, CodeKind, FormatSpec, Formats};

fn formats() -> &'static Formats {
    static FORMATS: OnceLock<Formats> = OnceLock::new();
    FORMATS
        .get_or_init(|| Formats::new(FormatSpec::default()).expect("the default formats compile"))
}

fuzz_target!(|data: &[u8]| {
    // Scanners send bytes; the server sees UTF-8 text (lossy for the rest).
    let raw = String::from_utf8_lossy(data);
    let formats = formats();
    // Unnormalised input too: a caller that forgets to normalise must not crash.
    let _ = formats.classify(&raw);
    match normalize(&raw) {
        Ok(code) => {
            assert!(!code.is_empty() && code.len() <= MAX_CODE_LEN, "{code:?}");
            assert!(
                code.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"-_./".contains(&b)),
                "{code:?}"
            );
            assert_eq!(
                normalize(&code).as_deref(),
                Ok(code.as_str()),
                "not idempotent"
            );
            assert_eq!(
                normalize(&code.to_lowercase()).as_deref(),
                Ok(code.as_str())
            );
            if let CodeKind::Parent { capacity } = formats.classify(&code) {
                assert!(capacity == 30 || capacity == 15, "{code:?}: {capacity}");
            }
        }
        Err(e) => {
            assert!(!e.code().is_empty());
            assert!(e.message().trim().len() > 10, "{e:?}");
        }
    }
});
