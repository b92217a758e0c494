//! Tests of the Fireblocks adapter's request tokens, asset ids and
//! answers.

use super::*;

#[test]
fn a_request_token_carries_the_documented_claims() {
    let c = claims("/v1/transactions?limit=1", b"{}", "key-1", 1_700_000_000);
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["uri"], "/v1/transactions?limit=1");
    assert_eq!(v["sub"], "key-1");
    assert_eq!(v["iat"], 1_700_000_000);
    assert_eq!(v["exp"], 1_700_000_030);
    // `printf '{}' | sha256sum` and `printf '' | sha256sum`.
    assert_eq!(
        v["bodyHash"],
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    assert_eq!(
        claims("/v1/x", b"", "k", 0).body_hash,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_ne!(
        claims("/", b"", "k", 0).nonce,
        claims("/", b"", "k", 0).nonce
    );
}

#[test]
fn asset_ids_map_our_symbols_and_keys_fit_fireblocks_limit() {
    let ids = asset_ids("BTC=BTC_TEST, ETH = ETH_TEST5,bad,=x,");
    assert_eq!(ids.len(), 2);
    assert_eq!(ids["ETH"], "ETH_TEST5");
    let key = address_key("user-1", "BTC");
    assert_eq!(key.len(), 40);
    assert_eq!(key, address_key("user-1", "BTC"));
    assert_ne!(key, address_key("user-2", "BTC"));
}

#[test]
fn statuses_and_errors() {
    assert_eq!(remote_status("COMPLETED"), RemoteStatus::Completed);
    for failed in ["FAILED", "REJECTED", "CANCELLED", "BLOCKED"] {
        assert!(matches!(remote_status(failed), RemoteStatus::Failed(_)));
    }
    assert_eq!(remote_status("CONFIRMING"), RemoteStatus::Pending);
    let body = json!({"message": "Invalid amount", "code": 1003});
    assert!(matches!(refusal(400, &body), CustodyError::Rejected(_)));
    assert!(matches!(
        refusal(429, &Value::Null),
        CustodyError::Unavailable(_)
    ));
    assert!(matches!(refusal(401, &body), CustodyError::Unavailable(_)));
}
