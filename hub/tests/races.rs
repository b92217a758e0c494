//! Races between nodes (issue 7): two hubs on one venue, one DynamoDB
//! (moto on `NAX_TEST_MOTO_PORT`, tables of each test's own) and one
//! Redis (127.0.0.1:6379, keys of each test's own), with the same request
//! sent to both nodes at once, [`ROUNDS`] times behind a barrier:
//!
//! - one `client_order_id`, same body: one order at the venue, 201 and a
//!   200 replay naming it; another body: 201 and 409
//!   `duplicate_client_order_id`, still one order;
//! - one withdrawal `idempotency_key`: one withdrawal, the funds locked
//!   once (the user holds exactly one withdrawal's amount, so a second
//!   debit would be refused and show);
//! - one signed webhook delivery: `accepted` once, `duplicate` once, the
//!   deposit credited once (by the webhook applier of whichever node's
//!   relay logged the `webhook.received`);
//! - one client's requests spread over both nodes spend one rate-limit
//!   budget (races/limits.rs).
//!
//! scripts/test.sh starts redis-server and moto; these tests FAIL without
//! them, they never skip.

use crate::common;
use crate::harness;
mod limits;
mod serial_dynamo;

use common::deployment::Deployment;
use harness::{start_hub, Answer, TestVenue, Trader};
use hub::app::RunningHub;
use hub::config::Config;
use serde_json::{json, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use testkit::SHARED_REDIS;
use tokio::sync::Barrier;
use tokio::time::Instant;

/// Every node of a deployment signs tokens with the same key.
const JWT_SECRET: &str = "races-test-0123456789abcdef0123456789";
/// ...and verifies Stripe's webhooks with the same endpoint secret.
const STRIPE_SECRET: &str = "whsec_races_0123456789abcdef0123456789";
/// Races per test: a missing condition shows within a few.
const ROUNDS: usize = 20;

/// The settings both nodes share: DynamoDB tables (at `dynamodb`) and
/// Redis keys of this test's own, one signing key, one Stripe secret;
/// sandbox providers that report nothing during the test (their webhooks
/// are the test's to send).
fn deployment(dynamodb: String) -> impl Fn(&mut Config) + Clone {
    let shared = Deployment::new(dynamodb, JWT_SECRET);
    let data_key = common::new_data_key();
    move |c: &mut Config| {
        common::share_data_key(c, &data_key);
        shared.apply(c, SHARED_REDIS);
        let api = &mut c.api;
        api.stripe_webhook_secret = Some(api::secret::Secret::new(STRIPE_SECRET));
        api.fiat_confirm_delay_ms = 600_000;
        // The races' own polling stays within budget (limits.rs sets its own).
        api.requests_per_minute = 60_000;
        api.request_burst = 10_000;
    }
}

/// One venue and two nodes of one deployment (`edit` adjusts both).
async fn two_nodes(edit: impl Fn(&mut Config) + Clone) -> (TestVenue, RunningHub, RunningHub) {
    testkit::require_shared_redis();
    let venue = TestVenue::start("127.0.0.1:0".parse().unwrap(), 20).await;
    let dynamodb = serial_dynamo::start(&testkit::shared_moto_endpoint()).await;
    let shared = deployment(dynamodb);
    let config = move |c: &mut Config| {
        shared(c);
        edit(c);
    };
    let node_a = start_hub(&venue, config.clone()).await;
    let node_b = start_hub(&venue, config).await;
    (venue, node_a, node_b)
}

async fn bounded<F: Future>(test: F) -> F::Output {
    common::within(Duration::from_secs(180), test).await
}

/// A verified user of node A and the same session on node B.
async fn trader(node_a: &RunningHub, node_b: &RunningHub) -> (Trader, Trader) {
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let on_a = Trader::verified(node_a, &email).await;
    let on_b = on_a.on(node_b);
    (on_a, on_b)
}

/// Runs `a` and `b` in tasks of their own released together by a barrier;
/// both answers.
async fn race<A, B>(a: A, b: B) -> (Answer, Answer)
where
    A: Future<Output = Answer> + Send + 'static,
    B: Future<Output = Answer> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(2));
    let (ga, gb) = (barrier.clone(), barrier);
    let a = tokio::spawn(async move {
        ga.wait().await;
        a.await
    });
    let b = tokio::spawn(async move {
        gb.wait().await;
        b.await
    });
    (a.await.expect("task a"), b.await.expect("task b"))
}

fn limit_order(id: &str, qty: &str) -> Value {
    // A resting buy far below the market: accepted, never filled.
    json!({
        "client_order_id": id, "pair": harness::PAIR, "side": "buy", "type": "limit",
        "qty": qty, "price": "1000", "time_in_force": "GTC",
    })
}

/// `POST path` with `body` as `trader` on `node` (owned, for a task of
/// its own).
fn post(
    trader: &Trader,
    node: &RunningHub,
    path: &'static str,
    body: Value,
) -> impl Future<Output = Answer> {
    let trader = trader.on(node);
    async move { trader.call("POST", path, Some(body)).await }
}

/// The venue's orders of `user`, by status.
async fn venue_orders(venue: &TestVenue, user: &str) -> (usize, Vec<Value>) {
    let orders = venue.orders(user).await;
    let open = orders.iter().filter(|o| o["status"] == "OPEN").count();
    (open, orders)
}

#[tokio::test]
async fn one_client_order_id_on_two_nodes_places_one_order() {
    bounded(async {
        let (venue, node_a, node_b) = two_nodes(|_| {}).await;
        let (on_a, on_b) = trader(&node_a, &node_b).await;
        venue.credit(&on_a.user_id, "USD", "100000").await;
        let mut placed = Vec::new();
        for round in 0..ROUNDS {
            let id = format!("same-{round}");
            let (a, b) = race(
                post(&on_a, &node_a, "/orders", limit_order(&id, "0.01")),
                post(&on_b, &node_b, "/orders", limit_order(&id, "0.01")),
            )
            .await;
            let mut statuses = [a.status, b.status];
            statuses.sort_unstable();
            assert_eq!(
                statuses,
                [200, 201],
                "round {round}: one placement and one replay; A {} {}, B {} {}",
                a.status,
                a.body,
                b.status,
                b.body
            );
            assert_eq!(
                a.body["order_id"], b.body["order_id"],
                "round {round}: both answers name one order"
            );
            assert_eq!(a.body["client_order_id"], id.as_str());
            placed.push(a.body["order_id"].as_str().expect("order_id").to_owned());
        }
        let (open, orders) = venue_orders(&venue, &on_a.user_id).await;
        assert_eq!(
            (orders.len(), open),
            (ROUNDS, ROUNDS),
            "one order per client_order_id reached the venue (none placed and cancelled)"
        );
        let mut at_venue: Vec<&str> = orders
            .iter()
            .map(|o| o["clientId"].as_str().expect("clientId"))
            .collect();
        at_venue.sort_unstable();
        placed.sort_unstable();
        assert_eq!(at_venue, placed, "the venue's orders are the answered ones");
        node_a.stop().await;
        node_b.stop().await;
        venue.stop().await;
    })
    .await;
}

#[tokio::test]
async fn one_client_order_id_with_two_bodies_on_two_nodes_is_one_order_and_a_409() {
    bounded(async {
        let (venue, node_a, node_b) = two_nodes(|_| {}).await;
        let (on_a, on_b) = trader(&node_a, &node_b).await;
        venue.credit(&on_a.user_id, "USD", "100000").await;
        for round in 0..ROUNDS {
            let id = format!("other-{round}");
            let (a, b) = race(
                post(&on_a, &node_a, "/orders", limit_order(&id, "0.01")),
                post(&on_b, &node_b, "/orders", limit_order(&id, "0.02")),
            )
            .await;
            let (winner, loser) = if a.status == 201 { (a, b) } else { (b, a) };
            assert_eq!(winner.status, 201, "round {round}: {}", winner.body);
            assert_eq!(
                (loser.status, loser.body["error"]["code"].as_str()),
                (409, Some("duplicate_client_order_id")),
                "round {round}: {}",
                loser.body
            );
        }
        let (open, orders) = venue_orders(&venue, &on_a.user_id).await;
        assert_eq!(
            (orders.len(), open),
            (ROUNDS, ROUNDS),
            "one order per client_order_id reached the venue (none placed and cancelled)"
        );
        node_a.stop().await;
        node_b.stop().await;
        venue.stop().await;
    })
    .await;
}

/// `(available, locked)` of `asset` in raw units (8 decimals).
async fn balance(trader: &Trader, asset: &str) -> (u64, u64) {
    let r = trader.call("GET", "/wallets/balances", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let row = r
        .body
        .as_array()
        .expect("balances")
        .iter()
        .find(|b| b["asset"] == asset)
        .unwrap_or_else(|| panic!("no {asset} in {}", r.body))
        .clone();
    let raw = |k: &str| {
        orderbook::decimal::parse_scaled(row[k].as_str().expect("decimal string"), 8)
            .unwrap_or_else(|e| panic!("{k} of {row}: {e:?}"))
    };
    (raw("available"), raw("locked"))
}

#[tokio::test]
async fn one_withdrawal_key_on_two_nodes_withdraws_once() {
    bounded(async {
        let (venue, node_a, node_b) = two_nodes(|_| {}).await;
        let (on_a, on_b) = trader(&node_a, &node_b).await;
        let ten = 10 * 100_000_000;
        for round in 0..ROUNDS {
            // Exactly one withdrawal's amount: a second debit is refused.
            venue.credit(&on_a.user_id, "USD", "10").await;
            let body = json!({
                "currency": "USD", "amount": "10.00", "provider": "stripe",
                "destination": "GB33BUKB20201555555555",
                "idempotency_key": format!("withdraw-{round}"),
            });
            let (a, b) = race(
                post(&on_a, &node_a, "/fiat/withdraw", body.clone()),
                post(&on_b, &node_b, "/fiat/withdraw", body),
            )
            .await;
            assert_eq!(
                (a.status, b.status),
                (202, 202),
                "round {round}: both accepted; A {}, B {}",
                a.body,
                b.body
            );
            assert_eq!(
                a.body["transaction_id"], b.body["transaction_id"],
                "round {round}: one withdrawal"
            );
            let (available, locked) = balance(&on_a, "USD").await;
            assert_eq!(
                (available, locked),
                (0, ten * (round as u64 + 1)),
                "round {round}: each withdrawal's funds locked once"
            );
        }
        let listed = on_b.call("GET", "/fiat/transactions?limit=100", None).await;
        let withdrawals = listed.body["transactions"]
            .as_array()
            .expect("transactions")
            .iter()
            .filter(|t| t["type"] == "withdrawal")
            .count();
        assert_eq!(withdrawals, ROUNDS, "{}", listed.body);
        node_a.stop().await;
        node_b.stop().await;
        venue.stop().await;
    })
    .await;
}

/// POSTs `body` to `/webhooks/stripe` of `node`, signed with the shared
/// secret.
fn stripe_webhook(node: &RunningHub, body: Vec<u8>) -> impl Future<Output = Answer> {
    let url = format!("http://{}/webhooks/stripe", node.addr);
    async move {
        let signer =
            api::webhooks::signing::WebhookSigner::Stripe(api::secret::Secret::new(STRIPE_SECRET));
        let mut request = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .timeout(Duration::from_secs(15))
            .body(body.clone());
        for (k, v) in signer.headers(&body) {
            request = request.header(k, v);
        }
        let started = Instant::now();
        let response = request.send().await.expect("hub answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            retry_after: None,
            took: started.elapsed(),
        }
    }
}

#[tokio::test]
async fn one_webhook_delivered_to_two_nodes_changes_state_once() {
    bounded(async {
        let (venue, node_a, node_b) = two_nodes(|_| {}).await;
        let (on_a, on_b) = trader(&node_a, &node_b).await;
        let amount = 25 * 100_000_000;
        for round in 0..ROUNDS {
            let opened = on_a
                .call(
                    "POST",
                    "/fiat/deposit",
                    Some(json!({
                        "currency": "USD", "amount": "25.00", "provider": "stripe",
                        "idempotency_key": format!("deposit-{round}"),
                    })),
                )
                .await;
            assert_eq!(opened.status, 201, "{}", opened.body);
            let tx_id = opened.body["transaction_id"].as_str().expect("id");
            let report = api::webhooks::delivery::Report {
                direction: api::webhooks::notice::Direction::In,
                outcome: api::webhooks::notice::Outcome::Completed,
                user_id: &on_a.user_id,
                transaction_id: tx_id,
                provider_ref: &format!("pi_race_{round}"),
                currency: "USD",
                amount: "25.00",
            };
            let webhook_id = format!("evt_race_{}", uuid::Uuid::new_v4().simple());
            let body = api::webhooks::stripe::event_body(&report, &webhook_id);
            let (a, b) = race(
                stripe_webhook(&node_a, body.clone()),
                stripe_webhook(&node_b, body),
            )
            .await;
            let mut acks = [
                a.body["status"].as_str().unwrap_or("?").to_owned(),
                b.body["status"].as_str().unwrap_or("?").to_owned(),
            ];
            acks.sort();
            assert_eq!(
                ((a.status, b.status), acks),
                ((200, 200), ["accepted".to_owned(), "duplicate".to_owned()]),
                "round {round}: A {} {}, B {} {}",
                a.status,
                a.body,
                b.status,
                b.body
            );
            // Credited once: the deposit completes (applied shortly after
            // the answer) and the balance grows by its amount, not twice.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let got = on_b.call("GET", "/fiat/transactions?limit=100", None).await;
                let status = got.body["transactions"]
                    .as_array()
                    .and_then(|l| l.iter().find(|t| t["transaction_id"] == tx_id))
                    .map(|t| t["status"].clone());
                if status == Some(json!("completed")) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "round {round}: deposit not completed: {status:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let (available, _) = balance(&on_a, "USD").await;
            assert_eq!(
                available,
                amount * (round as u64 + 1),
                "round {round}: each deposit credited once"
            );
        }
        node_a.stop().await;
        node_b.stop().await;
        venue.stop().await;
    })
    .await;
}
