//! Incoming custody deposits (`POST /webhooks/fireblocks`) over a real
//! socket: one chain transfer (asset, transaction hash, output) is
//! credited once, whatever Fireblocks ids it is notified under, one after
//! another or all at once; each output of a transaction is its own
//! transfer; hex hashes match whatever their case or `0x`, base58 ones
//! stay case-sensitive; a completed deposit without a hash is refused.
//! The route answers `accepted` for each new Fireblocks id and the
//! applier credits once: the notice that credits leaves an `applied`
//! receipt, the others `ignored` ("chain transfer already credited").
//! Every sequential case runs on the embedded store and on DynamoDB (the
//! shared moto, `NAX_TEST_MOTO_PORT`); the concurrent one on the embedded
//! store (see there why).

use crate::common;

use api::aws::StaticCredentials;
use api::store::dynamo::{DynamoConfig, DynamoStore};
use api::store::{ReceiptStatus, Store};
use common::assert_error;
use common::money::{start_money, start_money_on};
use common::{test_config, TestApi};
use serde_json::{json, Value};
use std::sync::Arc;

/// What Fireblocks reports about a transfer into a user's vault.
#[derive(Clone)]
struct Incoming {
    fireblocks_id: String,
    user_id: String,
    asset: &'static str,
    amount: &'static str,
    address: String,
    tx_hash: Option<String>,
    /// `data.index`: the UTXO's vout, or the transfer's position.
    index: Option<u64>,
}

/// A completed `TRANSACTION_STATUS_UPDATED` (webhooks v1) of `r`.
fn incoming_body(r: &Incoming) -> Vec<u8> {
    json!({
        "type": "TRANSACTION_STATUS_UPDATED",
        "tenantId": "test-tenant",
        "timestamp": chrono::Utc::now().timestamp_millis(),
        "data": {
            "id": r.fireblocks_id,
            "customerRefId": r.user_id,
            "status": "COMPLETED",
            "operation": "TRANSFER",
            "assetId": r.asset,
            "source": {"type": "UNKNOWN"},
            "destination": {"type": "VAULT_ACCOUNT", "id": "7", "name": r.user_id},
            "destinationAddress": r.address,
            "amountInfo": {"amount": r.amount, "requestedAmount": r.amount},
            "txHash": r.tx_hash,
            "index": r.index,
        },
    })
    .to_string()
    .into_bytes()
}

/// 64 random lowercase hex digits (a Bitcoin or Ethereum hash).
fn hex_hash() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A fresh Fireblocks transaction id.
fn fb_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A user with a deposit address for `asset`: (user, token, address).
async fn depositor(t: &TestApi, email: &str, asset: &str) -> (String, String, String) {
    let (user, token, _) = t.signup(email).await;
    let (s, body, _) = t
        .post(
            "/wallets/deposit-address",
            Some(&token),
            json!({ "asset": asset }),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let address = body["address"].as_str().expect("address").to_owned();
    (user, token, address)
}

/// The status of the ack, or the error code.
async fn deliver(t: &TestApi, r: &Incoming) -> (u16, Value) {
    t.signed_webhook("fireblocks", &incoming_body(r)).await
}

fn ack(answer: &(u16, Value)) -> &str {
    assert_eq!(answer.0, 200, "{}", answer.1);
    answer.1["status"].as_str().expect("ack status")
}

/// The receipt id of `r`'s notice.
fn webhook_id(r: &Incoming) -> String {
    format!("{}:COMPLETED", r.fireblocks_id)
}

/// What the applier made of `r`, delivered under a new id (`accepted`):
/// `credited` (an `applied` receipt), `duplicate` (`ignored`: the chain
/// transfer was credited under another id) or the rejection's code.
async fn applied(t: &TestApi, r: &Incoming) -> String {
    assert_eq!(ack(&deliver(t, r).await), "accepted", "{}", r.fireblocks_id);
    let receipt = t.handled_receipt("fireblocks", &webhook_id(r)).await;
    match receipt.status {
        ReceiptStatus::Applied => "credited".to_owned(),
        ReceiptStatus::Ignored => {
            assert_eq!(
                receipt.action.as_deref(),
                Some("ignored: chain transfer already credited")
            );
            "duplicate".to_owned()
        }
        ReceiptStatus::Rejected => {
            let error = receipt.error.unwrap_or_default();
            error.split(':').next().unwrap_or_default().to_owned()
        }
        ReceiptStatus::Received => unreachable!("handled_receipt waits past received"),
    }
}

/// The user's deposit transactions.
async fn deposits(t: &TestApi, token: &str) -> Vec<Value> {
    let (s, body, _) = t.get("/wallets/transactions?limit=100", Some(token)).await;
    assert_eq!(s, 200, "{body}");
    body["transactions"]
        .as_array()
        .expect("transactions")
        .iter()
        .filter(|t| t["type"] == "deposit")
        .cloned()
        .collect()
}

/// A notice of `amount` of `asset` to `user`'s `address`, under a fresh
/// Fireblocks id.
fn notice(
    user: &str,
    asset: &'static str,
    amount: &'static str,
    address: &str,
    tx_hash: &str,
    index: Option<u64>,
) -> Incoming {
    Incoming {
        fireblocks_id: fb_id(),
        user_id: user.to_owned(),
        asset,
        amount,
        address: address.to_owned(),
        tx_hash: Some(tx_hash.to_owned()),
        index,
    }
}

/// `n` under a fresh Fireblocks id.
fn renamed(n: &Incoming) -> Incoming {
    Incoming {
        fireblocks_id: fb_id(),
        ..n.clone()
    }
}

async fn one_transfer_under_three_fireblocks_ids_is_credited_once(t: TestApi) {
    let (user, token, address) = depositor(&t, "seq@example.com", "ETH").await;
    let hash = format!("0x{}", hex_hash());
    let first = notice(&user, "ETH", "1.5", &address, &hash, Some(0));
    let notices = [first.clone(), renamed(&first), renamed(&first)];
    assert_eq!(applied(&t, &notices[0]).await, "credited");
    for n in &notices[1..] {
        assert_eq!(applied(&t, n).await, "duplicate", "{}", n.fireblocks_id);
    }
    // Each id again: its own receipt now answers.
    for n in &notices {
        assert_eq!(
            ack(&deliver(&t, n).await),
            "duplicate",
            "{}",
            n.fireblocks_id
        );
    }
    t.wait_available(&token, "ETH", "1.50000000").await;
    let listed = deposits(&t, &token).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["tx_hash"], hash.as_str());
}

/// Embedded store only: moto's `TransactWriteItems` is not isolated
/// (each request snapshots the tables it touches and restores them when a
/// condition fails, with no lock), so concurrent conflicting transactions
/// on moto can resurrect or erase each other's items; DynamoDB itself
/// serializes them, and the DynamoDB store's condition is checked by the
/// sequential cases and the store suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_notices_of_one_transfer_credit_once() {
    let t = start_money().await;
    let (user, token, address) = depositor(&t, "race@example.com", "BTC").await;
    let signer = t.signer("fireblocks").await;
    for round in 0..3 {
        let first = notice(&user, "BTC", "0.25", &address, &hex_hash(), Some(1));
        let ids = [first.clone(), renamed(&first), renamed(&first)];
        // Each id twice, all at once.
        let tasks: Vec<_> = ids
            .iter()
            .chain(ids.iter())
            .map(|n| {
                let body = incoming_body(n);
                let mut request = t
                    .http
                    .post(t.url("/webhooks/fireblocks"))
                    .header("content-type", "application/json");
                for (k, v) in signer.headers(&body) {
                    request = request.header(k, v);
                }
                let request = request.body(body);
                tokio::spawn(async move {
                    let resp = request.send().await.expect("webhook request");
                    let status = resp.status().as_u16();
                    (status, resp.json::<Value>().await.expect("json"))
                })
            })
            .collect();
        let mut accepted = 0;
        for task in tasks {
            let answer = task.await.expect("task");
            match ack(&answer) {
                "accepted" => accepted += 1,
                "duplicate" => {}
                other => panic!("round {round}: unexpected {other}"),
            }
        }
        // Each id is stored once; of the three, one credits.
        assert_eq!(accepted, 3, "round {round}");
        let mut credited = 0;
        for n in &ids {
            let receipt = t.handled_receipt("fireblocks", &webhook_id(n)).await;
            match receipt.status {
                ReceiptStatus::Applied => credited += 1,
                ReceiptStatus::Ignored => {}
                other => panic!("round {round}: {other:?}"),
            }
        }
        assert_eq!(credited, 1, "round {round}");
    }
    t.wait_available(&token, "BTC", "0.75000000").await;
    assert_eq!(deposits(&t, &token).await.len(), 3);
}

async fn each_output_of_one_chain_transaction_is_credited(t: TestApi) {
    let (alice, alice_token, alice_address) = depositor(&t, "out-a@example.com", "BTC").await;
    let (bob, bob_token, bob_address) = depositor(&t, "out-b@example.com", "BTC").await;
    // vout 0 and vout 1 of one transaction, both to Alice.
    let hash = hex_hash();
    for index in [0, 1] {
        let n = notice(&alice, "BTC", "0.1", &alice_address, &hash, Some(index));
        assert_eq!(applied(&t, &n).await, "credited", "vout {index}");
    }
    let again = notice(&alice, "BTC", "0.1", &alice_address, &hash, Some(1));
    assert_eq!(applied(&t, &again).await, "duplicate");
    t.wait_available(&alice_token, "BTC", "0.20000000").await;

    // Without an index, the destination address tells the outputs apart.
    let other = hex_hash();
    let to_alice = notice(&alice, "BTC", "0.1", &alice_address, &other, None);
    assert_eq!(applied(&t, &to_alice).await, "credited");
    let to_bob = notice(&bob, "BTC", "0.1", &bob_address, &other, None);
    assert_eq!(applied(&t, &to_bob).await, "credited");
    assert_eq!(applied(&t, &renamed(&to_bob)).await, "duplicate");
    t.wait_available(&alice_token, "BTC", "0.30000000").await;
    t.wait_available(&bob_token, "BTC", "0.10000000").await;
    assert_eq!(deposits(&t, &alice_token).await.len(), 3);
    assert_eq!(deposits(&t, &bob_token).await.len(), 1);
}

async fn hash_spellings_of_one_transfer_are_one_credit(t: TestApi) {
    // Hex hashes: case and `0x` do not matter.
    let (user, token, address) = depositor(&t, "case@example.com", "ETH").await;
    let hex = hex_hash();
    let spellings = [
        format!("0x{hex}"),
        format!("0x{}", hex.to_uppercase()),
        hex.clone(),
        format!("0X{}", hex.to_uppercase()),
    ];
    let mut answers = Vec::new();
    for hash in &spellings {
        let n = notice(&user, "ETH", "2", &address, hash, Some(0));
        answers.push(applied(&t, &n).await);
    }
    assert_eq!(answers, ["credited", "duplicate", "duplicate", "duplicate"]);
    t.wait_available(&token, "ETH", "2.00000000").await;
    // Stored in one canonical spelling.
    assert_eq!(deposits(&t, &token).await[0]["tx_hash"], format!("0x{hex}"));

    // A hash that is not one of the network's is rejected, changing nothing.
    for bad in ["0xabc".to_owned(), "zz".to_owned(), format!("{hex}00")] {
        let n = notice(&user, "ETH", "2", &address, &bad, Some(0));
        assert_eq!(applied(&t, &n).await, "invalid_tx_hash", "{bad}");
    }
    assert_eq!(deposits(&t, &token).await.len(), 1);
    assert_eq!(t.balance(&token, "ETH").await.0, "2.00000000");

    // Base58 (Solana) signatures are case-sensitive: a spelling that
    // differs in case is another transaction.
    let (sol_user, sol_token, sol_address) = depositor(&t, "sol@example.com", "SOL").await;
    let bytes: Vec<u8> = (0..4)
        .flat_map(|_| *uuid::Uuid::new_v4().as_bytes())
        .collect();
    let signature = bs58::encode(bytes).into_string();
    let sol = |hash: &str| notice(&sol_user, "SOL", "3", &sol_address, hash, Some(0));
    assert_eq!(applied(&t, &sol(&signature)).await, "credited");
    assert_eq!(applied(&t, &sol(&signature)).await, "duplicate");
    let flipped = case_flipped(&signature);
    assert_eq!(applied(&t, &sol(&flipped)).await, "credited");
    t.wait_available(&sol_token, "SOL", "6.00000000").await;
}

/// `signature` with the case of one letter changed, still a 64-byte
/// base58 string.
fn case_flipped(signature: &str) -> String {
    let chars: Vec<char> = signature.chars().collect();
    for at in (chars.len() / 2)..chars.len() {
        let c = chars[at];
        let other = if c.is_ascii_lowercase() {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        };
        if other == c {
            continue;
        }
        let mut candidate = chars.clone();
        candidate[at] = other;
        let candidate: String = candidate.into_iter().collect();
        if bs58::decode(&candidate)
            .into_vec()
            .is_ok_and(|b| b.len() == 64)
        {
            return candidate;
        }
    }
    panic!("no case-flippable letter in {signature}");
}

async fn a_completed_deposit_without_a_tx_hash_is_refused(t: TestApi) {
    let (user, token, address) = depositor(&t, "nohash@example.com", "BTC").await;
    let mut n = notice(&user, "BTC", "0.5", &address, &hex_hash(), Some(0));
    n.tx_hash = None;
    let (s, body) = deliver(&t, &n).await;
    assert_error(s, &body, 422, "missing_tx_hash");
    assert_eq!(t.balance(&token, "BTC").await.2, "0.00000000");
    assert!(deposits(&t, &token).await.is_empty());
    // Refused before anything was stored: the corrected notice under the
    // same id works.
    assert_eq!(t.receipt("fireblocks", &webhook_id(&n)).await, None);
    n.tx_hash = Some(hex_hash());
    assert_eq!(applied(&t, &n).await, "credited");
    t.wait_available(&token, "BTC", "0.50000000").await;
}

/// A money server on DynamoDB tables of its own on the shared moto.
async fn on_dynamodb() -> TestApi {
    let config = DynamoConfig {
        endpoint: Some(testkit::shared_moto_endpoint()),
        region: "us-east-1".to_owned(),
        table_prefix: format!("t{}-", uuid::Uuid::new_v4().simple()),
        static_credentials: Some(StaticCredentials::test()),
    };
    let store = DynamoStore::new(&config).await;
    store.ensure_tables().await.expect("create tables on moto");
    start_money_on(test_config(), Arc::new(store) as Arc<dyn Store>).await
}

/// Each case on a fresh embedded store and on fresh DynamoDB tables.
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::start_money().await).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::on_dynamodb().await).await;
                }
            )*
        }
    };
}

on_both_stores!(
    one_transfer_under_three_fireblocks_ids_is_credited_once,
    each_output_of_one_chain_transaction_is_credited,
    hash_spellings_of_one_transfer_are_one_credit,
    a_completed_deposit_without_a_tx_hash_is_refused,
);
