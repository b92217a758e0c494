//! Property-based fuzzing of what the HubSpot client reads from an answer
//! (outside input: HubSpot's, or whatever answers at its address):
//! arbitrary bytes never panic the decoder, nesting past the bounds is
//! refused before parsing, and an error body only ever rejects contacts
//! that were sent, each with a bounded message.

use proptest::prelude::*;
use serde_json::{json, Value};
use worker::hubspot::client::{decode_answer, rejected_inputs, MAX_MESSAGE_CHARS};

const SENT: [&str; 3] = ["a@example.com", "Bob@Example.com", "c@example.com"];

/// An error body as HubSpot shapes it, naming `ids` in `errors[]` and,
/// with `top`, in a top-level `context` too.
fn error_body(ids: &[String], message: &str, top: bool) -> Value {
    let mut body = json!({
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": message,
        "errors": ids.iter().map(|id| json!({
            "message": message,
            "context": {"ids": [id]},
        })).collect::<Vec<_>>(),
    });
    if top {
        body["context"] = json!({ "ids": ids });
    }
    body
}

fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(SENT.to_vec()).prop_map(str::to_owned),
        prop::sample::select(SENT.to_vec()).prop_map(str::to_uppercase),
        "[a-z]{1,8}@[a-z]{1,8}\\.com",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let body = decode_answer(&bytes);
        let named = rejected_inputs(&body, &SENT);
        for email in named.keys() {
            prop_assert!(SENT.iter().any(|s| s.to_lowercase() == *email));
        }
    }

    #[test]
    fn json_shaped_bytes_never_panic(
        text in r#"[\[\]{}":,a-z0-9@. ]{0,512}"#,
    ) {
        let body = decode_answer(text.as_bytes());
        let _ = rejected_inputs(&body, &SENT);
    }

    #[test]
    fn only_sent_contacts_are_rejected_with_bounded_messages(
        ids in prop::collection::vec(id(), 0..12),
        message in any::<String>(),
        top in any::<bool>(),
    ) {
        let bytes = serde_json::to_vec(&error_body(&ids, &message, top)).unwrap();
        let body = decode_answer(&bytes);
        prop_assert!(!body.is_null(), "a well-formed error body decodes");
        let named = rejected_inputs(&body, &SENT);
        let want: std::collections::BTreeSet<String> = ids
            .iter()
            .map(|i| i.to_lowercase())
            .filter(|i| SENT.iter().any(|s| s.to_lowercase() == *i))
            .collect();
        prop_assert_eq!(named.keys().cloned().collect::<std::collections::BTreeSet<_>>(), want);
        for m in named.values() {
            prop_assert!(m.chars().count() <= MAX_MESSAGE_CHARS);
            prop_assert!(message.starts_with(m.as_str()));
        }
    }
}

#[test]
fn nesting_past_the_bounds_is_refused_before_parsing() {
    for depth in [17, 1_000, 100_000] {
        let bytes = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(
            decode_answer(bytes.as_bytes()),
            Value::Null,
            "depth {depth}"
        );
    }
    let shallow = format!("{}{}", "[".repeat(16), "]".repeat(16));
    assert_ne!(decode_answer(shallow.as_bytes()), Value::Null);
}

#[test]
fn answers_over_a_mebibyte_are_refused() {
    let big = format!(r#"{{"message":"{}"}}"#, "x".repeat(1024 * 1024));
    assert_eq!(decode_answer(big.as_bytes()), Value::Null);
}
