//! Sumsub as the KYC provider end to end, against the Sumsub-shaped
//! server of `testkit::sumsub` (requests signed with the app token and
//! secret key, applicants by `externalUserId`, multipart ID documents,
//! review requests, `applicantReviewed` webhooks with an HMAC digest): a
//! document reaches the user's applicant with its country in alpha-3, the
//! signed review decides the KYC once, Sumsub failing for a moment is
//! retried by the user without a second applicant, and badly signed
//! reviews change nothing.

use crate::common;

use common::adapters::ack;

use api::config::ApiConfig;
use api::secret::Secret;
use common::{assert_error, start_with, test_config, TestApi};
use serde_json::{json, Value};
use testkit::sumsub::{DigestAlg, RejectType, ReviewAnswer, SumsubConfig, SumsubServer};

const TOKEN: &str = "sbx:app-token-nax";
const SECRET: &str = "sumsub-secret-key";
const WEBHOOK_SECRET: &str = "sumsub-webhook-secret";

async fn setup() -> (SumsubServer, TestApi) {
    let server = SumsubServer::start(SumsubConfig {
        app_token: TOKEN.into(),
        secret_key: SECRET.into(),
        webhook_secret: WEBHOOK_SECRET.into(),
        digest_alg: DigestAlg::Sha256,
        level_name: "basic-kyc-level".into(),
        webhook_url: None,
    })
    .await;
    let config = ApiConfig {
        kyc_provider: "sumsub".into(),
        sumsub_api_url: server.url(),
        sumsub_app_token: Some(Secret::new(TOKEN)),
        sumsub_secret_key: Some(Secret::new(SECRET)),
        sumsub_webhook_secret: Some(Secret::new(WEBHOOK_SECRET)),
        ..test_config()
    };
    let t = start_with(config).await;
    server.set_webhook_url(&format!("http://{}/webhooks/sumsub", t.addr));
    (server, t)
}

fn passport() -> Value {
    json!({"document_type": "passport", "content_base64": "cGFzc3BvcnQtc2Nhbg=="})
}

async fn kyc_status(t: &TestApi, token: &str) -> String {
    let (s, body, _) = t.get("/users/kyc-status", Some(token)).await;
    assert_eq!(s, 200, "{body}");
    body["kyc_status"].as_str().unwrap().to_owned()
}

async fn wait_status(t: &TestApi, token: &str, want: &str) {
    // Polled gently: the route has a per-user rate limit.
    for _ in 0..50 {
        if kyc_status(t, token).await == want {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("KYC never became {want}: {}", kyc_status(t, token).await);
}

/// The `kyc.status_changed` event to `to`, once the relay has logged it.
async fn wait_event(t: &TestApi, to: &str) -> api::events::Event {
    for _ in 0..250 {
        let found = t
            .events()
            .into_iter()
            .find(|e| e.event_type == "kyc.status_changed" && e.data["to"] == to);
        if let Some(e) = found {
            return e;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no kyc.status_changed to {to}");
}

async fn set_country(t: &TestApi, token: &str, country: &str) {
    let (s, body, _) = t
        .put("/users/profile", Some(token), json!({"country": country}))
        .await;
    assert_eq!(s, 200, "{body}");
}

#[tokio::test]
async fn a_document_goes_to_sumsub_and_its_signed_review_decides_once() {
    let (server, t) = setup().await;
    let (user, token, _) = t.signup("sumsub@example.com").await;

    // No country in the profile: Sumsub needs the issuing country.
    let (s, body, _) = t
        .post("/users/kyc-documents", Some(&token), passport())
        .await;
    assert_error(s, &body, 422, "kyc_document_refused");
    assert!(server.applicants().is_empty());
    assert_eq!(kyc_status(&t, &token).await, "NONE", "nothing changed");

    // Sumsub fails once: 503, the status stays PENDING; the user submits
    // again and the same applicant gets the document and the check.
    set_country(&t, &token, "GB").await;
    server.fail_next(1, 503);
    let (s, body, _) = t
        .post("/users/kyc-documents", Some(&token), passport())
        .await;
    assert_error(s, &body, 503, "kyc_provider_unavailable");
    let (s, body, _) = t
        .post("/users/kyc-documents", Some(&token), passport())
        .await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(kyc_status(&t, &token).await, "PENDING");
    let applicants = server.applicants();
    assert_eq!(applicants.len(), 1, "{applicants:?}");
    let applicant = &applicants[0];
    assert_eq!(applicant["externalUserId"], user.as_str());
    assert_eq!(
        applicant["review"]["reviewStatus"], "pending",
        "{applicant}"
    );
    let docs = applicant["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(docs[0]["idDocType"], "PASSPORT", "{docs:?}");
    assert_eq!(docs[0]["country"], "GBR");
    assert_eq!(docs[0]["size"], 13);
    let id = applicant["id"].as_str().unwrap().to_owned();

    // An intermediate event is acknowledged and changes nothing; GREEN
    // verifies, and its redelivery is a duplicate.
    assert_eq!(
        ack(server.send_pending(&id).await),
        (200, "accepted".into())
    );
    assert_eq!(
        ack(server.review(&id, ReviewAnswer::Green).await),
        (200, "accepted".into())
    );
    wait_status(&t, &token, "VERIFIED").await;
    assert_eq!(ack(server.resend_last().await), (200, "duplicate".into()));
    let change = wait_event(&t, "VERIFIED").await;
    assert_eq!(change.data["submission_id"], format!("sumsub:{id}"));
    let verified = |e: &&api::events::Event| {
        e.event_type == "kyc.status_changed" && e.data["to"] == "VERIFIED"
    };
    assert_eq!(t.events().iter().filter(verified).count(), 1);
}

#[tokio::test]
async fn a_red_review_rejects_and_badly_signed_reviews_change_nothing() {
    let (server, t) = setup().await;
    let (user, token, _) = t.signup("sumsub-red@example.com").await;
    set_country(&t, &token, "DE").await;
    let (s, body, _) = t
        .post("/users/kyc-documents", Some(&token), passport())
        .await;
    assert_eq!(s, 202, "{body}");
    let id = server.applicant_by_external(&user).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A GREEN review signed with another key, modified after signing,
    // without its digest, or with SHA-1: refused, the user still PENDING.
    let now = chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string();
    let green = json!({"applicantId": id, "inspectionId": "i2", "correlationId": "c2",
        "externalUserId": user, "levelName": "basic-kyc-level", "type": "applicantReviewed",
        "reviewStatus": "completed", "createdAtMs": now,
        "reviewResult": {"reviewAnswer": "GREEN"}})
    .to_string();
    let [(digest_header, digest), (alg_header, alg)] = server.sign_webhook(green.as_bytes());
    let other_key = "00".repeat(32);
    let tampered = green.replace("\"i2\"", "\"i3\"");
    let refused: [(&str, Vec<(&str, &str)>); 4] = [
        (
            &green,
            vec![(digest_header, &other_key), (alg_header, &alg)],
        ),
        (
            &tampered,
            vec![(digest_header, &digest), (alg_header, &alg)],
        ),
        (&green, vec![(alg_header, &alg)]),
        (
            &green,
            vec![(digest_header, &digest), (alg_header, "HMAC_SHA1_HEX")],
        ),
    ];
    for (bytes, headers) in refused {
        let answer = server.send_raw(bytes.as_bytes(), &headers).await;
        assert_eq!(
            ack(answer),
            (401, "invalid_signature".into()),
            "{headers:?}"
        );
    }
    assert_eq!(kyc_status(&t, &token).await, "PENDING");
    // The same body, correctly signed, passes (the refusals were the
    // signatures' fault, not the body's).
    let good = [(digest_header, digest.as_str()), (alg_header, alg.as_str())];
    let answer = server.send_raw(green.as_bytes(), &good).await;
    assert_eq!(ack(answer), (200, "accepted".into()));
    wait_status(&t, &token, "VERIFIED").await;

    // Another user: RED FINAL rejects, with Sumsub's labels as the reason.
    let (user2, token2, _) = t.signup("sumsub-red2@example.com").await;
    set_country(&t, &token2, "FR").await;
    let (s, body, _) = t
        .post("/users/kyc-documents", Some(&token2), passport())
        .await;
    assert_eq!(s, 202, "{body}");
    let id2 = server.applicant_by_external(&user2).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A review of an earlier submission (made long before this one),
    // delivered late: ignored, still PENDING.
    let stale = json!({"applicantId": id2, "inspectionId": "i9", "correlationId": "c9",
        "externalUserId": user2, "levelName": "basic-kyc-level", "type": "applicantReviewed",
        "reviewStatus": "completed", "createdAtMs": "2020-01-01 00:00:00.000",
        "reviewResult": {"reviewAnswer": "GREEN"}})
    .to_string();
    let signed = server.sign_webhook(stale.as_bytes());
    let headers: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = server.send_raw(stale.as_bytes(), &headers).await;
    assert_eq!(ack(answer), (200, "accepted".into()));
    let outcome = t
        .wait_webhook_outcomes(&format!("{id2}:applicantReviewed:2020-01-01 00:00:00.000"))
        .await;
    assert_eq!(outcome[0]["type"], "webhook.applied", "{outcome:?}");
    let action = outcome[0]["data"]["action"].as_str().unwrap_or_default();
    assert!(action.starts_with("ignored"), "{outcome:?}");
    assert_eq!(kyc_status(&t, &token2).await, "PENDING");
    let red = ReviewAnswer::Red {
        labels: vec!["FORGERY".into(), "SELFIE_MISMATCH".into()],
        reject_type: RejectType::Final,
        comment: "document forged".into(),
    };
    assert_eq!(
        ack(server.review(&id2, red).await),
        (200, "accepted".into())
    );
    wait_status(&t, &token2, "REJECTED").await;
    let reason = wait_event(&t, "REJECTED").await.data["reason"].clone();
    assert_eq!(reason, json!("sumsub FINAL: FORGERY, SELFIE_MISMATCH"));
    // A user rejected for good cannot add documents at Sumsub: a clear
    // refusal, not "provider unavailable".
    let (s, body, _) = t
        .post("/users/kyc-documents", Some(&token2), passport())
        .await;
    assert_error(s, &body, 422, "kyc_document_refused");
    assert_eq!(kyc_status(&t, &token2).await, "REJECTED");
}
