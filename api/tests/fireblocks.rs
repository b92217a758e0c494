//! Fireblocks end to end, against the Fireblocks-shaped server of
//! `testkit::fireblocks` (RS256 request tokens with the body hash, vault
//! addresses, transactions with `externalTxId`, webhooks v2 signed as
//! detached JWS with keys from its JWKS, v1 signatures): a user's BTC
//! deposit address is made once, a deposit to it is credited once, a
//! withdrawal goes out through a 503 and completes by its v2 notice,
//! a rotated webhook key is picked up mid-run, and a `kid` the set does
//! not hold, a v1-only delivery without its key configured, a modified
//! body and a missing header are refused with nothing changed.

use crate::common;

use common::adapters::ack;

use api::config::ApiConfig;
use api::secret::Secret;
use common::money::{config_with_delay, start_money_with};
use common::TestApi;
use feeds::Venue;
use serde_json::json;
use testkit::fireblocks::{
    FireblocksConfig, FireblocksServer, TEST_KEY_2_PEM, V1_SIGNATURE_HEADER, V2_SIGNATURE_HEADER,
};

const ONE_BTC: u64 = 100_000_000;
const API_KEY: &str = "b7a1c3d4-0000-4000-8000-fireblocks01";
const VAULT: &str = "7";
const DESTINATION: &str = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq";

struct Setup {
    server: FireblocksServer,
    t: TestApi,
    _secret_dir: tempfile::TempDir,
}

/// A hub API on Fireblocks custody, its webhooks registered with the
/// server; `v1_key_file`: also accept v1 signatures with key 1 (and read
/// the API key's PEM from the configuration's text, not a file).
async fn setup(v1_key_file: bool) -> Setup {
    let server = FireblocksServer::start(FireblocksConfig {
        api_key: API_KEY.into(),
        ..FireblocksConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("fireblocks_api.pem");
    std::fs::write(&secret, TEST_KEY_2_PEM).unwrap();
    let v1 = dir.path().join("fireblocks_v1.pub.pem");
    std::fs::write(&v1, testkit::fireblocks::TEST_KEY_1_PUBLIC_PEM).unwrap();
    let config = ApiConfig {
        custody_provider: "fireblocks".into(),
        fireblocks_api_url: server.url(),
        fireblocks_api_key: Some(Secret::new(API_KEY)),
        // The API key's PEM as a file, or (as ECS passes secrets) as text.
        fireblocks_api_secret_file: (!v1_key_file).then(|| secret.display().to_string()),
        fireblocks_api_secret: v1_key_file.then(|| Secret::new(TEST_KEY_2_PEM)),
        fireblocks_vault_id: VAULT.into(),
        fireblocks_asset_ids: "BTC=BTC_TEST".into(),
        fireblocks_jwks_url: server.jwks_url(),
        fireblocks_public_key_file: v1_key_file.then(|| v1.display().to_string()),
        ..config_with_delay(600_000)
    };
    let t = start_money_with(config).await;
    server.set_webhook_url(&format!("http://{}/webhooks/fireblocks", t.addr));
    Setup {
        server,
        t,
        _secret_dir: dir,
    }
}

#[tokio::test]
async fn deposits_and_withdrawals_run_through_fireblocks_and_its_rotated_webhook_keys() {
    let Setup { server, t, .. } = setup(false).await;
    let (user, token) = t.verified_user("fireblocks@example.com").await;

    // The deposit address: made once at Fireblocks, tagged with the user.
    let ask = || {
        t.post(
            "/wallets/deposit-address",
            Some(&token),
            json!({"asset": "BTC"}),
        )
    };
    let (s, first, _) = ask().await;
    assert_eq!(s, 200, "{first}");
    let (_, again, _) = ask().await;
    assert_eq!(first["address"], again["address"]);
    let made = server.addresses();
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0]["customerRefId"], user.as_str());
    assert_eq!(made[0]["address"], first["address"]);
    let address = first["address"].as_str().unwrap().to_owned();

    // Funds arrive (Fireblocks names the asset BTC_TEST): credited once,
    // a redelivery is a duplicate.
    let (_, answer) = server
        .incoming_deposit(
            VAULT,
            "BTC_TEST",
            "0.5",
            &address,
            Some(&user),
            "a1".repeat(32).as_str(),
        )
        .await;
    assert_eq!(ack(answer), (200, "accepted".into()));
    t.wait_available(&token, "BTC", "0.50000000").await;
    assert_eq!(ack(server.resend_last().await), (200, "duplicate".into()));
    // Fireblocks does not document customerRefId on incoming transfers:
    // one without it is credited to the user whose address it is.
    let (_, answer) = server
        .incoming_deposit(VAULT, "BTC_TEST", "0.05", &address, None, &"a2".repeat(32))
        .await;
    assert_eq!(ack(answer), (200, "accepted".into()));
    t.wait_available(&token, "BTC", "0.55000000").await;

    // A withdrawal: Fireblocks fails once, the submission is retried under
    // the same externalTxId; one transaction is made.
    t.venue.credit(&user, "BTC", ONE_BTC).await.unwrap();
    server.fail_next(1, 503);
    let (s, body, _) = t
        .post(
            "/wallets/withdraw",
            Some(&token),
            json!({"asset": "BTC", "amount": "0.25", "address": DESTINATION, "idempotency_key": "w1"}),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    let ours = body["transaction_id"].as_str().unwrap().to_owned();
    let sent = server.transactions();
    assert_eq!(sent.len(), 3, "two deposits and the withdrawal: {sent:?}");
    let out = &sent[2];
    assert_eq!(out["externalTxId"], ours.as_str());
    assert_eq!(out["assetId"], "BTC_TEST");
    assert_eq!(out["amountInfo"]["requestedAmount"], "0.25000000");
    assert_eq!(out["destinationAddress"], DESTINATION);
    let fb_id = out["id"].as_str().unwrap().to_owned();

    // Fireblocks rotates its webhook key: the notice signed with the new
    // key names a kid the cached set lacks, the set is fetched again, and
    // the withdrawal completes.
    let fetches = server.jwks_fetches();
    server.rotate_webhook_key();
    assert_eq!(server.current_kid(), "test-key-2");
    let answer = server
        .set_status(&fb_id, "COMPLETED", Some(&"b2".repeat(32)))
        .await;
    assert_eq!(ack(answer), (200, "accepted".into()));
    assert_eq!(server.jwks_fetches(), fetches + 1);
    t.wait_status("/wallets/transactions", &token, &ours, "completed")
        .await;
    assert_eq!(t.balance(&token, "BTC").await.0, "1.30000000");

    // A kid the set does not hold: the set is fetched for it once more,
    // then the delivery is refused. More made-up kids within the window
    // cause no fetch (no fetch flood): they are answered 500, so that a
    // genuine one would be delivered again, never refused unchecked.
    let body = br#"{"id":"forged","eventType":"transaction.status.updated","data":{"id":"x","status":"COMPLETED"}}"#;
    let forged = server.sign_v2_with("made-up-kid", 2, body);
    let headers = [(V2_SIGNATURE_HEADER, forged.as_str())];
    let send_forged = || server.send_raw(body, &headers);
    assert_eq!(ack(send_forged().await), (401, "invalid_signature".into()));
    assert_eq!(server.jwks_fetches(), fetches + 2);
    for _ in 0..5 {
        assert_eq!(ack(send_forged().await).0, 500);
    }
    assert_eq!(server.jwks_fetches(), fetches + 2);
}

#[tokio::test]
async fn refused_deliveries_change_nothing_and_v1_needs_its_key() {
    let Setup { server, t, .. } = setup(false).await;
    let (user, token) = t.verified_user("fb-refusals@example.com").await;
    let (_, first, _) = t
        .post(
            "/wallets/deposit-address",
            Some(&token),
            json!({"asset": "BTC"}),
        )
        .await;
    let address = first["address"].as_str().unwrap().to_owned();
    // A v1-only delivery (legacy header, no v2 one) while only the JWKS is
    // configured: refused.
    server.set_legacy_signature(true);
    let (fb_id, answer) = server
        .incoming_deposit(
            VAULT,
            "BTC_TEST",
            "0.5",
            &address,
            Some(&user),
            &"c3".repeat(32),
        )
        .await;
    assert_eq!(
        ack(answer),
        (200, "accepted".into()),
        "both headers: v2 decides"
    );
    let body = server.events().last().unwrap().to_string();
    let v1 = server.sign_v1_with(1, body.as_bytes());
    let answer = server
        .send_raw(body.as_bytes(), &[(V1_SIGNATURE_HEADER, v1.as_str())])
        .await;
    assert_eq!(ack(answer), (401, "invalid_signature".into()));
    // A modified body and a missing header: refused.
    let signed = server.sign_v2_with(server.current_kid(), 1, body.as_bytes());
    let modified = body.replace("0.5", "5.0");
    for (bytes, headers) in [
        (
            modified.as_bytes(),
            vec![(V2_SIGNATURE_HEADER, signed.as_str())],
        ),
        (body.as_bytes(), vec![]),
    ] {
        let answer = server.send_raw(bytes, &headers).await;
        assert_eq!(ack(answer), (401, "invalid_signature".into()));
    }
    t.wait_available(&token, "BTC", "0.50000000").await;
    let outcomes = t.wait_webhook_outcomes(&format!("{fb_id}:COMPLETED")).await;
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(t.balance(&token, "BTC").await.0, "0.50000000");

    // With the v1 key configured as well, a v1-only delivery passes.
    let Setup { server, t, .. } = setup(true).await;
    let (user, token) = t.verified_user("fb-v1@example.com").await;
    let (_, first, _) = t
        .post(
            "/wallets/deposit-address",
            Some(&token),
            json!({"asset": "BTC"}),
        )
        .await;
    let address = first["address"].as_str().unwrap().to_owned();
    let (fb_id, _) = server
        .incoming_deposit(
            VAULT,
            "BTC_TEST",
            "0.1",
            &address,
            Some(&user),
            &"d4".repeat(32),
        )
        .await;
    t.wait_available(&token, "BTC", "0.10000000").await;
    // Another transfer, as a v1-only delivery.
    let body = server.events().last().unwrap().to_string();
    let relabeled = body
        .replace(&"d4".repeat(32), &"e5".repeat(32))
        .replace(&fb_id, "fb-v1-only-transfer");
    let v1 = server.sign_v1_with(1, relabeled.as_bytes());
    let answer = server
        .send_raw(relabeled.as_bytes(), &[(V1_SIGNATURE_HEADER, v1.as_str())])
        .await;
    assert_eq!(ack(answer), (200, "accepted".into()));
    t.wait_available(&token, "BTC", "0.20000000").await;
}

#[tokio::test]
async fn a_resubmitted_withdrawal_is_the_first_transaction_and_status_is_read() {
    let server = FireblocksServer::start(FireblocksConfig {
        api_key: API_KEY.into(),
        ..FireblocksConfig::default()
    })
    .await;
    let config = ApiConfig {
        custody_provider: "fireblocks".into(),
        fireblocks_api_url: server.url(),
        fireblocks_api_key: Some(Secret::new(API_KEY)),
        fireblocks_api_secret: Some(Secret::new(TEST_KEY_2_PEM)),
        fireblocks_vault_id: VAULT.into(),
        ..config_with_delay(600_000)
    };
    let parts = common::adapters::AdapterParts::open(&config).await;
    let ctx = parts.ctx(&config);
    let custody = api::providers::custody_fireblocks::build(&ctx).unwrap();
    // A deposit address's owner, asked of a fresh adapter (as after a
    // restart: nothing cached), is found in the vault by the address.
    let made = custody.deposit_address("user-9", "BTC").await.unwrap();
    let fresh = api::providers::custody_fireblocks::build(&ctx).unwrap();
    assert_eq!(
        fresh.owner_of("BTC", &made.address).await,
        Ok(Some("user-9".to_owned()))
    );
    assert_eq!(fresh.owner_of("BTC", "bc1qnobodys").await, Ok(None));
    let order = api::providers::custody::WithdrawalOrder {
        transaction_id: "0193a1b2-0000-7000-8000-000000000001".into(),
        user_id: "user-1".into(),
        asset: "BTC".into(),
        amount: "0.10000000".into(),
        address: DESTINATION.into(),
    };
    let first = custody.submit_withdrawal(&order).await.unwrap();
    // Again, as after a lost answer, past Fireblocks' idempotency window:
    // Fireblocks refuses the repeated externalTxId, and the first
    // transaction is the answer; nothing is sent twice.
    server.age_idempotency_keys(std::time::Duration::from_secs(25 * 3600));
    assert_eq!(custody.submit_withdrawal(&order).await.unwrap(), first);
    assert_eq!(server.transactions().len(), 1);
    use api::providers::RemoteStatus;
    assert_eq!(
        custody.transfer_status(&first).await,
        Ok(RemoteStatus::Pending)
    );
    assert!(server
        .set_status(&first, "COMPLETED", Some(&"f6".repeat(32)))
        .await
        .is_none());
    assert_eq!(
        custody.transfer_status(&first).await,
        Ok(RemoteStatus::Completed)
    );
    assert_eq!(
        custody.transfer_status("no-such-transaction").await,
        Ok(RemoteStatus::NotFound)
    );
}
