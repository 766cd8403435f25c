//! Any bytes as the body of `POST /api/v1/events`: decoding an `EventBatch`
//! never panics; what decodes re-encodes and decodes to the same events; and
//! every code in it goes through normalisation and classification as the
//! server and the stations do. (The protocol has no other event validation:
//! the rest is the server's, with the database.)

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use traitortrack_protocol::{normalize, EventBatch, EventResults, FormatSpec, Formats};

fn formats() -> &'static Formats {
    static FORMATS: OnceLock<Formats> = OnceLock::new();
    FORMATS
        .get_or_init(|| Formats::new(FormatSpec::default()).expect("the default formats compile"))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = serde_json::from_slice::<EventBatch>(data) {
        for ev in &batch.events {
            let _ = ev.kind.as_str();
            for code in [&ev.parent, &ev.child, &ev.bill].into_iter().flatten() {
                if let Ok(code) = normalize(code) {
                    let _ = formats().classify(&code);
                }
            }
        }
        let again = serde_json::to_vec(&batch).expect("a decoded batch encodes");
        let back: EventBatch = serde_json::from_slice(&again).expect("and decodes again");
        assert_eq!(back.events, batch.events);
    }
    // The answer a station decodes.
    let _ = serde_json::from_slice::<EventResults>(data);
});
