//! Tests of strict body decoding and of clipping echoed input.

use super::errors::clip_quoted;
use super::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Req {
    email: String,
    qty: String,
    nested: Option<Nested>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Nested {
    a: String,
}

fn err(body: &str) -> ApiError {
    decode::<Req>(body.as_bytes()).unwrap_err()
}

#[test]
fn unknown_field_is_400_naming_it() {
    let e = err(r#"{"email":"a","qty":"1","is_admin":true}"#);
    assert_eq!((e.status.as_u16(), &*e.code), (400, "unknown_field"));
    assert!(e.message.contains("is_admin"), "{}", e.message);
}

#[test]
fn nested_unknown_field_names_its_path() {
    let e = err(r#"{"email":"a","qty":"1","nested":{"a":"x","b":1}}"#);
    assert_eq!(&*e.code, "unknown_field");
    assert!(e.message.contains("nested.b"), "{}", e.message);
}

#[test]
fn missing_field_is_422_naming_it() {
    let e = err(r#"{"email":"a"}"#);
    assert_eq!((e.status.as_u16(), &*e.code), (422, "missing_field"));
    assert!(e.message.contains("qty"), "{}", e.message);
}

#[test]
fn wrong_type_is_422_naming_the_field() {
    let e = err(r#"{"email":"a","qty":1.5}"#);
    assert_eq!((e.status.as_u16(), &*e.code), (422, "invalid_field"));
    assert!(e.message.starts_with("qty:"), "{}", e.message);
}

#[test]
fn unknown_field_is_named_once() {
    let e = err(r#"{"email":"a","qty":"1","is_admin":true}"#);
    assert_eq!(e.message, "unknown field: is_admin");
    let e = err(r#"{"email":"a","qty":"1","nested":{"a":"x","b":1}}"#);
    assert_eq!(e.message, "unknown field: nested.b");
    let e = err(r#"{"email":"a","nested":{"a":"x"}}"#);
    assert_eq!(e.message, "missing field: qty");
}

#[test]
fn trailing_garbage_is_400() {
    let e = err(r#"{"email":"a","qty":"1"} xx"#);
    assert_eq!((e.status.as_u16(), &*e.code), (400, "bad_request"));
    assert!(decode::<Req>(b"{\"email\":\"a\",\"qty\":\"1\"}\n ").is_ok());
}

#[test]
fn malformed_json_is_400() {
    let e = err(r#"{"email":"#);
    assert_eq!((e.status.as_u16(), &*e.code), (400, "bad_request"));
    let e = err("");
    assert_eq!(e.status.as_u16(), 400);
}

#[test]
fn deep_nesting_is_refused_naming_the_limit() {
    // Far over the body limit: 413, as from the extractor.
    let e = err(&format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)));
    assert_eq!((e.status.as_u16(), &*e.code), (413, "payload_too_large"));
    // Under it, refused before serde (whose own recursion limit is 128).
    for body in [
        format!("{}{}", "[".repeat(30_000), "]".repeat(30_000)),
        format!(r#"{{"email":{}"a"{}}}"#, "[".repeat(9), "]".repeat(9)),
    ] {
        let e = err(&body);
        assert_eq!((e.status.as_u16(), &*e.code), (400, "bad_request"));
        assert_eq!(e.message, "body refused: input nests deeper than 8 levels");
    }
}

#[test]
fn too_many_elements_are_refused_naming_the_limit() {
    // As many elements as fit under the byte limit.
    let body = format!("[{}0]", "0,".repeat(super::super::MAX_BODY_BYTES / 2 - 2));
    assert!(body.len() <= super::super::MAX_BODY_BYTES);
    let e = err(&body);
    assert_eq!((e.status.as_u16(), &*e.code), (400, "bad_request"));
    assert_eq!(
        e.message,
        "body refused: input holds more than 1024 elements"
    );
    let members: String = (0..1100).map(|i| format!(r#","k{i}":1"#)).collect();
    let e = err(&format!(r#"{{"email":"a","qty":"1"{members}}}"#));
    assert_eq!(
        e.message,
        "body refused: input holds more than 1024 elements"
    );
}

#[test]
fn messages_echo_at_most_40_characters_of_input() {
    let long = "x".repeat(5000);
    let e = err(&format!(r#"{{"email":"a","qty":"1","{long}":1}}"#));
    assert_eq!(
        e.message,
        format!("unknown field: {}…", "x".repeat(ECHO_MAX))
    );
    let e = err(&format!(
        r#"{{"email":"a","qty":"1","nested":{{"{long}":1}}}}"#
    ));
    assert_eq!(&*e.code, "unknown_field");
    assert!(e.message.len() < 100, "{}", e.message);
    // serde repeats a mistyped value: cut too.
    let e = err(&format!(r#"{{"email":"a","qty":"1","nested":"{long}"}}"#));
    assert_eq!(&*e.code, "invalid_field");
    assert!(e.message.len() < 150, "{}", e.message);
    assert!(
        !e.message.contains(&"x".repeat(ECHO_MAX + 1)),
        "{}",
        e.message
    );
}

/// Found by fuzzing (`rest_bodies`): a backquote inside an unknown
/// variant ended the cut early and the rest was repeated whole.
#[test]
fn a_backquote_in_an_unknown_variant_does_not_end_the_cut() {
    let body = r#"{"client_order_id":"c","pair":"BTC-USD","side":"xxxxxxxxxxxxxamountxxxxxxxxxxxxxxxxxxxxxpxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxp`exxxx*x.xx:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxzxxxxxxxxxxxxxxxxxxxxqxx""}"#;
    let (name, check) = REQUEST_BODIES[6];
    assert_eq!(name, "PlaceOrderRequest");
    let e = check(body.as_bytes()).unwrap_err();
    assert_eq!(&*e.code, "invalid_field");
    assert_eq!(
        e.message,
        "side: unknown variant `xxxxxxxxxxxxxamountxxxxxxxxxxxxxxxxxxxxx…`, expected `buy` or `sell`"
    );
}

#[test]
fn clip_quoted_cuts_each_quoted_piece() {
    let long = "y".repeat(50);
    assert_eq!(
        clip_quoted(&format!("unknown variant `{long}`, expected `a` or `b`")),
        format!("unknown variant `{}…`, expected `a` or `b`", "y".repeat(40))
    );
    assert_eq!(
        clip_quoted(&format!(r#"invalid type: string "\"{long}", expected x"#)),
        format!(
            r#"invalid type: string "\"{}…", expected x"#,
            "y".repeat(38)
        )
    );
    // A name holding backquotes is cut as a whole.
    let tricky = format!("{long}`{long}`, expected {long}");
    assert_eq!(
        clip_quoted(&format!(
            "unknown variant `{tricky}`, expected `buy` or `sell`"
        )),
        format!(
            "unknown variant `{}…`, expected `buy` or `sell`",
            "y".repeat(40)
        )
    );
    assert_eq!(clip_quoted("no quotes"), "no quotes");
    assert_eq!(clip_quoted("torn `abc"), "torn `abc");
}

#[test]
fn good_body_decodes() {
    let r = decode::<Req>(br#"{"email":"a","qty":"1"}"#).unwrap();
    assert_eq!(r.qty, "1");
}
