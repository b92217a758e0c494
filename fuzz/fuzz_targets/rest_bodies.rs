//! REST request bodies: every body type a route takes
//! (`api::http::json::REQUEST_BODIES`), as its route checks it before
//! reading any state. The first byte picks the type; the rest is the body.
//!
//! Invariants: a refusal is 400, 413 or 422 with a terse message that
//! echoes little of the body; an accepted body is JSON within
//! `BODY_BOUNDS`.
#![no_main]

use api::http::json::{BODY_BOUNDS, REQUEST_BODIES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let (_name, check) = REQUEST_BODIES[pick as usize % REQUEST_BODIES.len()];
    match check(body) {
        Ok(()) => {
            assert!(
                BODY_BOUNDS.check(body).is_ok(),
                "accepted a body over the bounds"
            );
            assert!(serde_json::from_slice::<serde_json::Value>(body).is_ok());
        }
        Err(e) => {
            assert!(
                matches!(e.status.as_u16(), 400 | 413 | 422),
                "status {} ({}: {})",
                e.status,
                e.code,
                e.message
            );
            nax_fuzz::assert_terse(&e.message, body);
        }
    }
});
