//! Frames from the upstream venue (Shift's `graphql-transport-ws`):
//! `feeds::shift::parse_frame`.
//!
//! Invariants: a frame over `UPSTREAM_BOUNDS` is refused before parsing;
//! a frame that is not JSON is refused; a refusal's message is
//! terse and repeats little of the frame (it reaches the log).
//!
//! "JSON" is the grammar (RFC 8259) in UTF-8: the oracle skips every value
//! (`IgnoredAny`), so a number past `f64`'s range in a field the adapter
//! never reads is JSON, as it is to `parse_frame`, which skips it too.
#![no_main]

use feeds::shift::{parse_frame, UPSTREAM_BOUNDS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_frame(data) {
        Ok(_) => {
            assert!(
                UPSTREAM_BOUNDS.check(data).is_ok(),
                "a frame over the bounds was read"
            );
            let text = std::str::from_utf8(data).expect("a frame that is not UTF-8 was read");
            assert!(
                serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok(),
                "a frame that is not JSON was read"
            );
        }
        Err(e) => nax_fuzz::assert_terse(&e.0, data),
    }
});
