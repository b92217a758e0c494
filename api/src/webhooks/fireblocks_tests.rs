//! Tests of the Fireblocks schemes (v1 RSA, v2 detached JWS) and
//! readers.

use super::*;
use axum::http::HeaderMap;
use std::sync::OnceLock;

const BODY: &[u8] = br#"{"type":"TRANSACTION_STATUS_UPDATED","data":{"id":"fb1"}}"#;

/// Small keys keep the tests fast (the scheme is the same).
fn keys() -> &'static (RsaPrivateKey, RsaPrivateKey) {
    static KEYS: OnceLock<(RsaPrivateKey, RsaPrivateKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = rand::thread_rng();
        (
            RsaPrivateKey::new(&mut rng, 1024).unwrap(),
            RsaPrivateKey::new(&mut rng, 1024).unwrap(),
        )
    })
}

fn headers(value: &str) -> HeaderMap {
    notice::header_map("Fireblocks-Signature", value)
}

/// A v1 signature made with openssl over the fixture key, not with our
/// code: `printf "$BODY" | openssl dgst -sha512 -sign fireblocks_test_key_1.pem | base64`.
#[test]
fn a_v1_signature_made_with_openssl_passes() {
    let body = br#"[{"endToEndIdentification":"E2E-1","transactionId":"61f5a1a0-1","nonce":"tx-1","response":"Complete"}]"#;
    let openssl = "U0vZ7FiGRzeHiu5ynH20cgHX6EaQU2U1TLtWaD+Om/yS1syiGNcWjIN2tpKoWe9obLhLaFegSBFK6Jk/5lFXkD1JHozUu4DEO29OLnRzY/1rob7kfQNA7hIlMOTJOvu/TQxkzFS/dJs/ROv20MnR8KCaSmSXPsL5BOMH3Fouk5uSsxkE3EXXQqYmCUqUq8ViUkLqUgtSdewv7ckEw6TFXW5cLYOrJ/1czBxJwgq8U7eINHZlRIH6ab0vEWLW/a5iA98vDE2Xx7fKKb/wcF0W9XijpN3P0+ucDwpTifYeid3ZGuau+CuLPoJe1IOUJQHUjmOwcOey/odsJFj5bJbq0Q==";
    let h = headers(openssl);
    assert_eq!(verify(&fixture_key(1), &h, body), Ok(()));
    assert_eq!(
        verify(&fixture_key(2), &h, body),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify(&fixture_key(1), &h, &body[1..]),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn good_signature_passes() {
    let (key, _) = keys();
    let h = headers(&sign(key, BODY));
    assert_eq!(verify(&key.to_public_key(), &h, BODY), Ok(()));
}

#[test]
fn tampered_body_fails() {
    let (key, _) = keys();
    let h = headers(&sign(key, BODY));
    let tampered = br#"{"type":"TRANSACTION_STATUS_UPDATED","data":{"id":"fb2"}}"#;
    assert_eq!(
        verify(&key.to_public_key(), &h, tampered),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn wrong_key_fails() {
    let (key, other) = keys();
    let h = headers(&sign(other, BODY));
    assert_eq!(
        verify(&key.to_public_key(), &h, BODY),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn missing_or_malformed_header_fails() {
    let public = keys().0.to_public_key();
    assert_eq!(
        verify(&public, &HeaderMap::new(), BODY),
        Err(SignatureError::Missing(HEADER))
    );
    assert_eq!(
        verify(&public, &headers("%%%"), BODY),
        Err(SignatureError::Malformed(HEADER))
    );
    assert!(verify(&public, &headers("AAAA"), BODY).is_err());
}

const V2_BODY: &[u8] = br#"{"id":"3f1d2a6e-8c1b-4f7e-9a53-2b6c1d0e9f41","eventType":"transaction.status.updated","workspaceId":"ws-1","createdAt":1754229343763,"data":{"id":"fb-tx-1","status":"COMPLETED"}}"#;

/// Made with openssl, not with our code (testkit/fixtures/README.md):
/// `H=base64url('{"alg":"RS512","kid":"webhook-key-2025-01"}')`,
/// `printf "$H.$(base64url body)" | openssl dgst -sha512 -sign fireblocks_test_key_1.pem | base64url`.
const V2_SIGNATURE: &str = "eyJhbGciOiJSUzUxMiIsImtpZCI6IndlYmhvb2sta2V5LTIwMjUtMDEifQ..cYvlVhip_cXai2278tFiJJkxWcRc-RhYrqJcC8uVai2clmRyE3hRC_A_tn_RZKm4ML9J_48Vx_T62NDpO592XOZCgnXn4dAOc_M5clz8u4mZdxjEIGRLno55ANnbviax7Ef22lPZQrqnjk1ucHR-o40qRXh9dJ-3IkTlNWU5GDx022T2smsnMSZioeYeK9NOjs3JmUXu6gIgnu1z1k_AG_xqdVpnTm5BQsBRaYjN33iV30Lij2-uhg8s9-DpJmm9bv9gloYMvgWan7RYT09RUg06ugt93-yzJtQy2UsLCdpBdprk246og2WZfjoH4me8JNede5toT9Lt6Li4p3BsjQ";

fn fixture_key(n: u8) -> RsaPublicKey {
    use rsa::pkcs8::DecodePublicKey;
    let path = format!(
        "{}/../testkit/fixtures/fireblocks_test_key_{n}.pub.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    RsaPublicKey::from_public_key_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn check_v2(key: &RsaPublicKey, value: &str, body: &[u8]) -> Result<(), SignatureError> {
    let (header, kid, signature) = parse_v2(value)?;
    assert_eq!(kid, "webhook-key-2025-01");
    verify_jws(key, header, &signature, body)
}

#[test]
fn a_v2_signature_made_with_openssl_passes_and_only_for_its_body_and_key() {
    assert_eq!(check_v2(&fixture_key(1), V2_SIGNATURE, V2_BODY), Ok(()));
    let tampered = String::from_utf8(V2_BODY.to_vec())
        .unwrap()
        .replace("COMPLETED", "FAILED");
    assert_eq!(
        check_v2(&fixture_key(1), V2_SIGNATURE, tampered.as_bytes()),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        check_v2(&fixture_key(2), V2_SIGNATURE, V2_BODY),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_v2_body_reads_as_its_v1_twin() {
    let report = TransactionReport {
        fireblocks_id: "fb9",
        external_tx_id: Some("tx1"),
        user_id: "u1",
        status: "COMPLETED",
        asset: "BTC",
        amount: "0.5",
        destination_address: "bc1qexample",
        tx_hash: "abc",
    };
    let v1: serde_json::Value = serde_json::from_slice(&transaction_body(&report)).unwrap();
    let v2 = json!({
        "id": "3f1d2a6e-8c1b-4f7e-9a53-2b6c1d0e9f41",
        "eventType": "transaction.status.updated",
        "eventVersion": 1,
        "resourceId": "fb9",
        "workspaceId": "ws-1",
        "createdAt": 1754229343763u64,
        "data": v1["data"],
    });
    let want = read(&transaction_body(&report)).unwrap();
    assert_eq!(read(v2.to_string().as_bytes()).unwrap(), want);
    let other = json!({"id": "n1", "eventType": "vault_account.asset.added", "data": v1["data"]});
    assert!(matches!(
        read(other.to_string().as_bytes()).unwrap(),
        Notice::Ignored { .. }
    ));
}

#[test]
fn malformed_v2_signatures_are_refused_before_any_key_is_looked_up() {
    let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
    let (header, signature) = V2_SIGNATURE.split_once("..").unwrap();
    let attached = format!("{header}.{}.{signature}", b64("{}"));
    let with = |h: &str| format!("{}..{signature}", b64(h));
    for bad in [
        String::new(),
        "a.b".to_owned(),
        format!("{header}..{signature}.x"),
        attached,
        with(r#"{"alg":"RS256","kid":"k"}"#),
        with(r#"{"alg":"none","kid":"k"}"#),
        with(r#"{"alg":"RS512"}"#),
        with(r#"{"alg":"RS512","kid":""}"#),
        with(r#"{"alg":"RS512","kid":"k","b64":false,"crit":["b64"]}"#),
        format!("{header}..not*base64"),
        format!("{}..{signature}", "A".repeat(MAX_JWS_HEADER + 1)),
    ] {
        assert_eq!(
            parse_v2(&bad).map(|_| ()),
            Err(SignatureError::Malformed(V2_HEADER)),
            "{bad}"
        );
    }
}

#[test]
fn reads_withdrawal_updates_and_incoming_deposits() {
    let mut report = TransactionReport {
        fireblocks_id: "fb9",
        external_tx_id: Some("tx1"),
        user_id: "u1",
        status: "COMPLETED",
        asset: "BTC",
        amount: "0.5",
        destination_address: "bc1qexample",
        tx_hash: "abc",
    };
    assert_eq!(
        read(&transaction_body(&report)).unwrap(),
        Notice::Settlement {
            webhook_id: "fb9:COMPLETED".into(),
            event_type: "transaction_status_updated.completed".into(),
            user_id: "u1".into(),
            transaction_id: "tx1".into(),
            direction: Direction::Out,
            outcome: Outcome::Completed,
            amount: Some("0.5".into()),
        }
    );
    report.external_tx_id = None;
    assert!(matches!(
        read(&transaction_body(&report)).unwrap(),
        Notice::IncomingDeposit { ref asset, ref address, .. } if asset == "BTC" && address == "bc1qexample"
    ));
    let mut with_index: serde_json::Value =
        serde_json::from_slice(&transaction_body(&report)).unwrap();
    for (index, read_as) in [
        (json!(2), Ok(Some(2))),
        (json!("7"), Ok(Some(7))),
        (json!(null), Ok(None)),
        (json!(-1), Err(PayloadError::Field("data.index"))),
        (json!(1.5), Err(PayloadError::Field("data.index"))),
        (json!("x1"), Err(PayloadError::Field("data.index"))),
        (json!([0]), Err(PayloadError::Field("data.index"))),
    ] {
        with_index["data"]["index"] = index.clone();
        let body = with_index.to_string();
        let got = read(body.as_bytes()).map(|n| match n {
            Notice::IncomingDeposit { output_index, .. } => output_index,
            other => panic!("{other:?}"),
        });
        assert_eq!(got, read_as, "{index}");
    }
    report.status = "CONFIRMING";
    assert!(matches!(
        read(&transaction_body(&report)).unwrap(),
        Notice::Ignored { .. }
    ));
}
