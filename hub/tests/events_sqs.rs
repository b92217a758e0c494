//! Events to SQS through a whole hub (issue 7): orders placed over REST
//! while SQS is down are acknowledged, their events wait in the outbox, and
//! every one reaches the audit queue once SQS is back, in the order the
//! orders were placed (the user's FIFO group), duplicates counted. SQS is a
//! `moto_server` this test starts and kills (its own port); the test FAILS
//! when `moto_server` is not installed (scripts/test.sh installs it).

use crate::common;
// Shared with upstream.rs, which uses more of them.
use crate::harness;

use api::events::sqs::SqsPublisher;
use feeds::Venue as _;
use harness::Trader;
use serde_json::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use testkit::OwnServer;

/// The order id of every `order.accepted` that arrives on the audit queue
/// within `deadline`, in arrival order (a redelivery appears again), until
/// all of `want` have; checks that a redelivered event carries the same
/// body and that these events are in `group`.
async fn accepted_orders(
    client: &aws_sdk_sqs::Client,
    url: &str,
    want: &[String],
    group: &str,
    deadline: Duration,
) -> Vec<String> {
    let started = Instant::now();
    let mut bodies: std::collections::HashMap<String, String> = Default::default();
    let mut got = Vec::new();
    let arrived = |got: &Vec<String>| {
        let got: HashSet<&String> = got.iter().collect();
        want.iter().all(|w| got.contains(w))
    };
    while !arrived(&got) && started.elapsed() < deadline {
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive");
        for m in out.messages() {
            let body = m.body().unwrap_or_default().to_owned();
            let event: Value = serde_json::from_str(&body).expect("event JSON");
            let id = event["id"].as_str().expect("event id").to_owned();
            if let Some(earlier) = bodies.insert(id.clone(), body.clone()) {
                assert_eq!(earlier, body, "a redelivered event {id} is the same");
            }
            if event["type"] == "order.accepted" {
                let in_group = m
                    .attributes()
                    .and_then(|a| {
                        a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
                    })
                    .map(String::as_str);
                assert_eq!(in_group, Some(group), "FIFO group = user id");
                got.push(
                    event["data"]["order"]["order_id"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
            client
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .expect("delete");
        }
    }
    got
}

#[tokio::test]
async fn orders_placed_while_sqs_is_down_have_every_event_delivered_after() {
    let port = testkit::free_port();
    let mut moto = OwnServer::moto(port);
    let (sqs, client) = common::own_sqs_queues(format!("http://127.0.0.1:{port}")).await;
    let prefix = sqs.queue_prefix.clone();
    let hub = common::start_hub(move |c| {
        c.venue.events_per_sec = 20;
        c.api.events_to_sqs = true;
        c.api.sqs_endpoint = format!("http://127.0.0.1:{port}");
        c.api.sqs_queue_prefix = prefix;
        c.api.aws_access_key_id = "test".into();
        c.api.aws_secret_access_key = Some(api::secret::Secret::new("test"));
    })
    .await;
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let trader = Trader::verified(&hub, &email).await;
    hub.venue
        .as_ref()
        .unwrap()
        .credit(&trader.user_id, "USD", 1_000_000 * 100_000_000)
        .await
        .unwrap();

    let audit_url = || async {
        client
            .get_queue_url()
            .queue_name(format!("{}audit-log-queue.fifo", sqs.queue_prefix))
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned()
    };
    let place = |n: usize| {
        let trader = &trader;
        async move {
            // Resting buys far below the market: accepted, never filled.
            let r = trader
                .limit(&format!("sqs-{n}"), "buy", "0.01", "1000", "GTC")
                .await;
            assert_eq!(r.status, 201, "order {n}: {}", r.body);
            r.body["order_id"].as_str().unwrap().to_owned()
        }
    };
    let mut placed = Vec::new();
    for n in 0..5 {
        placed.push(place(n).await);
    }
    let mut arrivals = accepted_orders(
        &client,
        &audit_url().await,
        &placed,
        &trader.user_id,
        Duration::from_secs(30),
    )
    .await;

    moto.kill();
    for n in 5..20 {
        placed.push(place(n).await);
    }
    // The relay keeps them while SQS is gone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pending = hub
        .api
        .as_ref()
        .unwrap()
        .store
        .outbox_pending(1000)
        .await
        .unwrap();
    assert!(
        pending
            .iter()
            .any(|e| e.event.event_type == "order.accepted"),
        "events of orders placed during the outage wait in the outbox"
    );

    // SQS back, empty (moto keeps nothing): the queues are made again.
    let _moto = OwnServer::moto(port);
    SqsPublisher::ensure_queues(&client, &sqs.queue_prefix)
        .await
        .expect("queues");
    arrivals.extend(
        accepted_orders(
            &client,
            &audit_url().await,
            &placed[5..],
            &trader.user_id,
            Duration::from_secs(30),
        )
        .await,
    );
    // At least once, in the user's order: first arrivals are the orders
    // in the order they were placed; repeats are counted.
    let mut first = Vec::new();
    for id in &arrivals {
        if !first.contains(id) {
            first.push(id.clone());
        }
    }
    let duplicates = arrivals.len() - first.len();
    eprintln!(
        "sqs outage through a hub: {} orders, {duplicates} duplicate deliveries",
        placed.len()
    );
    assert_eq!(
        first, placed,
        "every order's event arrives, in placement order ({duplicates} duplicate deliveries)"
    );
    assert!(
        duplicates < placed.len(),
        "{duplicates} duplicate deliveries of {} events",
        placed.len()
    );
    hub.stop().await;
}
