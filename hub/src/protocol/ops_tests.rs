//! Tests of the client frame decoder (`ops.rs`).
use super::*;

#[test]
fn decodes_every_op() {
    assert_eq!(decode(r#"{"op":"ping","id":3}"#), Ok(Op::Ping { id: 3 }));
    let sub = decode(r#"{"op":"subscribe","id":1,"channels":["book.BTC-USD"],"resume":{"book.BTC-USD":{"epoch":"9f","seq":7}}}"#)
        .unwrap();
    let Op::Subscribe {
        id,
        channels,
        resume,
    } = sub
    else {
        panic!("not a subscribe")
    };
    assert_eq!((id, channels), (1, vec!["book.BTC-USD".to_string()]));
    assert_eq!(
        resume["book.BTC-USD"],
        ResumePoint {
            epoch: "9f".into(),
            seq: 7
        }
    );
    assert_eq!(
        decode(r#"{"op":"unsubscribe","id":2,"channels":[]}"#),
        Ok(Op::Unsubscribe {
            id: 2,
            channels: vec![]
        })
    );
    assert_eq!(
        decode(r#"{"op":"auth","id":4,"token":"t"}"#),
        Ok(Op::Auth {
            id: 4,
            token: "t".into(),
            cancel_on_disconnect: false,
        })
    );
    assert_eq!(
        decode(r#"{"op":"auth","id":4,"token":"t","cancel_on_disconnect":true}"#),
        Ok(Op::Auth {
            id: 4,
            token: "t".into(),
            cancel_on_disconnect: true,
        })
    );
    let Ok(Op::OrderPlace { id: 5, order }) = decode(
        r#"{"op":"order.place","id":5,"order":{"client_order_id":"c1","pair":"BTC-USD","side":"buy","type":"limit","qty":"0.01","price":"1000.00"}}"#,
    ) else {
        panic!("an order.place")
    };
    let order: serde_json::Value = serde_json::from_str(&order).unwrap();
    assert_eq!(order["price"], "1000.00");
    assert_eq!(order["type"], "limit");
    assert_eq!(
        decode(r#"{"op":"order.cancel","id":6,"order_id":"o"}"#),
        Ok(Op::OrderCancel {
            id: 6,
            order_id: "o".into()
        })
    );
    assert_eq!(
        decode(r#"{"op":"order.cancel_all","id":7}"#),
        Ok(Op::OrderCancelAll { id: 7, pair: None })
    );
    assert_eq!(
        decode(r#"{"op":"cancel_after","id":8,"timeout_ms":0}"#),
        Ok(Op::CancelAfter {
            id: 8,
            timeout_ms: 0
        })
    );
}

#[test]
fn order_entry_frames_are_bounded() {
    let code = |s: &str| decode(s).unwrap_err();
    for bad in [
        r#"{"op":"cancel_after","id":1,"timeout_ms":999}"#,
        r#"{"op":"cancel_after","id":1,"timeout_ms":86400001}"#,
        r#"{"op":"cancel_after","id":1,"timeout_ms":-1}"#,
        r#"{"op":"cancel_after","id":1,"timeout_ms":"5000"}"#,
        r#"{"op":"cancel_after","id":1}"#,
        r#"{"op":"order.place","id":1,"order":"x"}"#,
        r#"{"op":"order.place","id":1,"order":{},"x":1}"#,
        r#"{"op":"order.cancel","id":1,"order_id":7}"#,
        r#"{"op":"order.cancel_all","id":1,"pair":null}"#,
        r#"{"op":"auth","id":1,"token":"t","cancel_on_disconnect":"yes"}"#,
    ] {
        let e = code(bad);
        assert_eq!((e.code, e.id), (ErrorCode::BadRequest, Some(1)), "{bad}");
    }
}

#[test]
fn every_op_name_decodes_to_its_op() {
    for name in OpName::ALL {
        let frame = match name {
            OpName::Subscribe => r#"{"op":"subscribe","id":1,"channels":["heartbeat"]}"#,
            OpName::Unsubscribe => r#"{"op":"unsubscribe","id":1,"channels":["heartbeat"]}"#,
            OpName::Auth => r#"{"op":"auth","id":1,"token":"t"}"#,
            OpName::Ping => r#"{"op":"ping","id":1}"#,
            OpName::OrderPlace => r#"{"op":"order.place","id":1,"order":{}}"#,
            OpName::OrderCancel => r#"{"op":"order.cancel","id":1,"order_id":"o"}"#,
            OpName::OrderCancelAll => r#"{"op":"order.cancel_all","id":1,"pair":"BTC-USD"}"#,
            OpName::CancelAfter => r#"{"op":"cancel_after","id":1,"timeout_ms":5000}"#,
        };
        let op = decode(frame).unwrap();
        assert_eq!(op.name(), *name, "{frame}");
    }
}

#[test]
fn refuses_bad_frames_with_the_protocol_codes() {
    let code = |s: &str| decode(s).unwrap_err();
    assert_eq!(code("not json").code, "bad_request");
    assert_eq!(code("[1]").code, "bad_request");
    assert_eq!(
        code(r#"{"id":1}"#),
        OpError::new(Some(1), ErrorCode::BadRequest, "missing field: op")
    );
    assert_eq!(code(r#"{"op":"dance","id":5}"#).code, "unknown_op");
    assert_eq!(code(r#"{"op":"dance","id":5}"#).id, Some(5));
    assert_eq!(code(r#"{"op":"ping"}"#).code, "bad_request");
    assert_eq!(code(r#"{"op":"ping","id":"x"}"#).code, "bad_request");
    assert_eq!(
        code(r#"{"op":"subscribe","id":1,"channels":"book.BTC-USD"}"#).code,
        "bad_request"
    );
    assert_eq!(
        code(r#"{"op":"subscribe","id":1,"channels":[],"extra":1}"#).code,
        "bad_request"
    );
    assert_eq!(code(r#"{"op":7,"id":1}"#).code, "bad_request");
}

#[test]
fn deeply_nested_frames_are_refused_before_parsing() {
    for depth in [9, 4_000, 8_000] {
        let frame = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let e = decode(&frame).unwrap_err();
        assert_eq!(e.code, "bad_request");
        assert_eq!(e.message, "frame refused: input nests deeper than 8 levels");
    }
    let nested = format!(
        r#"{{"op":"subscribe","id":1,"channels":{}{}}}"#,
        "[".repeat(6000),
        "]".repeat(6000)
    );
    assert_eq!(decode(&nested).unwrap_err().id, None);
}

#[test]
fn error_messages_name_the_field_not_the_parser() {
    let e = decode(r#"{"op":"ping","id":1,"pad":"xxxx"}"#).unwrap_err();
    assert_eq!(
        e,
        OpError::new(Some(1), ErrorCode::BadRequest, "unknown field: pad")
    );
    let e = decode(r#"{"op":"subscribe","id":1}"#).unwrap_err();
    assert_eq!(e.message, "missing field: channels");
    let e = decode(r#"{"op":"subscribe","id":1,"channels":[1]}"#).unwrap_err();
    assert_eq!(e.message, "channels must be an array of strings");
    let e = decode(r#"{"op":"subscribe","id":1,"channels":[],"resume":{"x":{"epoch":1,"seq":2}}}"#)
        .unwrap_err();
    assert!(e.message.starts_with("resume must map"), "{}", e.message);
    let e = decode(r#"{"op":"auth","id":1,"token":7}"#).unwrap_err();
    assert_eq!(e.message, "token must be a string");
    for e in [e, decode("{").unwrap_err()] {
        for internal in ["Serde", "character", "simd", "at line"] {
            assert!(!e.message.contains(internal), "{}", e.message);
        }
    }
}

#[test]
fn echoed_client_text_is_clipped() {
    let long = "x".repeat(10_000);
    let e = decode(&format!(r#"{{"op":"{long}","id":1}}"#)).unwrap_err();
    assert_eq!(e.code, "unknown_op");
    assert!(e.message.chars().count() < 60, "{}", e.message);
    let e = decode(&format!(r#"{{"op":"ping","id":1,"{long}":1}}"#)).unwrap_err();
    assert!(e.message.chars().count() < 60, "{}", e.message);
}
