//! `GET /users/kyc-status`, `POST /users/kyc-documents` and the sandbox
//! KYC provider.

use crate::common::{self, assert_error, test_config};
use crate::users::{kyc_status, wait_event, wait_kyc};
use api::ApiConfig;
use serde_json::json;

#[tokio::test]
async fn kyc_goes_none_pending_verified() {
    let t = common::start_with(ApiConfig {
        kyc_verify_delay_ms: 1500,
        ..test_config()
    })
    .await;
    let (user_id, token, _) = t.signup("kyc@example.com").await;
    let (s, first, _) = t.get("/users/kyc-status", Some(&token)).await;
    assert_eq!(s, 200);
    assert_eq!(first["kyc_status"], "NONE");

    let doc = json!({"document_type": "passport", "content_base64": "aGVsbG8="});
    let (s, accepted, _) = t.post("/users/kyc-documents", Some(&token), doc).await;
    assert_eq!(s, 202, "{accepted}");
    assert_eq!(accepted["kyc_status"], "PENDING");
    assert_eq!(kyc_status(&t, &token).await, "PENDING");
    let (_, p, _) = t.get("/users/profile", Some(&token)).await;
    assert_eq!(p["kyc_status"], "PENDING");

    wait_kyc(&t, &token, "VERIFIED").await;
    let (_, last, _) = t.get("/users/kyc-status", Some(&token)).await;
    assert!(
        last["updated_at"].as_str().unwrap() > first["updated_at"].as_str().unwrap(),
        "{first} -> {last}"
    );

    // Verified is final.
    let again = json!({"document_type": "id_card", "content_base64": "aGVsbG8="});
    let (s, b, _) = t.post("/users/kyc-documents", Some(&token), again).await;
    assert_error(s, &b, 409, "kyc_already_verified");
    assert_eq!(kyc_status(&t, &token).await, "VERIFIED");

    // Events: the submission (type and digest only) and the decision.
    let submitted = wait_event(&t, &user_id, |e| {
        e.event_type == "kyc.status_changed" && e.data["to"] == "PENDING"
    })
    .await;
    assert_eq!(submitted.data["from"], "NONE");
    assert_eq!(submitted.data["document_type"], "passport");
    assert_eq!(
        submitted.data["document_sha256"],
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert_eq!(submitted.data["submission_id"], accepted["submission_id"]);
    let decided = wait_event(&t, &user_id, |e| {
        e.event_type == "kyc.status_changed" && e.data["to"] == "VERIFIED"
    })
    .await;
    assert_eq!(decided.data["from"], "PENDING");
    let log = std::fs::read_to_string(t.dir.path().join("events.ndjson")).unwrap();
    assert!(!log.contains("aGVsbG8"), "document content never stored");
}

#[tokio::test]
async fn rejected_kyc_can_be_submitted_again() {
    let t = common::start().await;
    let (_, token, _) = t.signup("rejected@example.com").await;
    // The sandbox rejects documents starting with "REJECT".
    let doc = json!({"document_type": "drivers_license", "content_base64": "UkVKRUNUIG1l"});
    let (s, b, _) = t.post("/users/kyc-documents", Some(&token), doc).await;
    assert_eq!(s, 202, "{b}");
    wait_kyc(&t, &token, "REJECTED").await;

    let doc = json!({"document_type": "proof_of_address", "content_base64": "aGVsbG8"});
    let (s, b, _) = t.post("/users/kyc-documents", Some(&token), doc).await;
    assert_eq!(s, 202, "unpadded base64 is fine: {b}");
    wait_kyc(&t, &token, "VERIFIED").await;
}

#[tokio::test]
async fn bad_kyc_documents_are_rejected_and_change_nothing() {
    let t = common::start_with(ApiConfig {
        kyc_verify_delay_ms: 60_000,
        ..test_config()
    })
    .await;
    let (_, token, _) = t.signup("baddoc@example.com").await;
    let cases = [
        (
            json!({"document_type": "selfie", "content_base64": "aGVsbG8="}),
            422,
            "invalid_field",
            "document_type",
        ),
        (
            json!({"document_type": "PASSPORT", "content_base64": "aGVsbG8="}),
            422,
            "invalid_field",
            "document_type",
        ),
        (
            json!({"document_type": "passport", "content_base64": ""}),
            422,
            "invalid_field",
            "content_base64",
        ),
        (
            json!({"document_type": "passport", "content_base64": "not base64!"}),
            422,
            "invalid_field",
            "content_base64",
        ),
        (
            json!({"document_type": "passport", "content_base64": 12}),
            422,
            "invalid_field",
            "content_base64",
        ),
        (
            json!({"document_type": "passport"}),
            422,
            "missing_field",
            "content_base64",
        ),
        (
            json!({"content_base64": "aGVsbG8="}),
            422,
            "missing_field",
            "document_type",
        ),
        (
            json!({"document_type": "passport", "content_base64": "aGVsbG8=", "kyc_status": "VERIFIED"}),
            400,
            "unknown_field",
            "kyc_status",
        ),
    ];
    for (body, status, code, field) in cases {
        let (s, b, _) = t
            .post("/users/kyc-documents", Some(&token), body.clone())
            .await;
        assert_error(s, &b, status, code);
        assert!(
            b["error"]["message"].as_str().unwrap().contains(field),
            "{body} -> {b}"
        );
    }
    assert_eq!(kyc_status(&t, &token).await, "NONE");

    // A valid one while the review is slow: PENDING, and another document
    // restarts the review rather than failing.
    let doc = json!({"document_type": "id_card", "content_base64": "aGVsbG8="});
    let (s, _, _) = t
        .post("/users/kyc-documents", Some(&token), doc.clone())
        .await;
    assert_eq!(s, 202);
    let (s, b, _) = t.post("/users/kyc-documents", Some(&token), doc).await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(kyc_status(&t, &token).await, "PENDING");
}
