//! One trace across the real hops (docs/OPERATIONS.md, "Traces"): a hub
//! in this process on the standalone GraphQL venue (`sandbox_venue::serve`,
//! reached over HTTP through a recording TCP proxy), publishing its events
//! to SQS (`moto_server`, `NAX_TEST_MOTO_PORT`) and running the audit
//! consumer in process on the SQS audit queue. An order placed over REST
//! with a caller's `traceparent` is one trace in the tests' OTLP receiver
//! (`testkit::otlp`): the `request` span, its `venue.place_order` (whose
//! HTTP request to the venue carries that span as its parent), the
//! `store.commit`, the outbox's `outbox.publish` to SQS and the consumer's
//! `worker.handle` of `order.accepted` received from SQS.
//!
//! And the consumer joins the trace the SQS `traceparent` message
//! attribute names, not the one in the event body (which is only the
//! fallback, for the embedded event log).

use crate::common;
use crate::harness;

use api::events::sqs::{Queue, SqsPublisher};
use api::events::{Event, EventType};
use aws_sdk_sqs::types::MessageAttributeValue;
use hub::config::VenueKind;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::otlp::{OtlpReceiver, Span};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const TRACE_ID: &str = "5af7183fb1d4cf5f4bf92f3577b34da6";
const CALLER_SPAN: &str = "a3ce929d0e0e4736";
/// The trace of the message attribute of the message sent by hand, and
/// the other one its body names.
const ATTRIBUTE_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const ATTRIBUTE_SPAN: &str = "b7ad6b7169203331";
const BODY_TRACE: &str = "1bf7651916cd43dd8448eb211c80319d";

/// Every byte clients sent through the proxy, one buffer per connection.
type Sent = Arc<Mutex<Vec<Vec<u8>>>>;

/// A TCP proxy on 127.0.0.1 to `upstream` that records what clients send
/// (HTTP requests and WebSocket frames pass alike); its URL.
async fn recording_proxy(upstream: SocketAddr, sent: Sent) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let sent = sent.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let index = {
                    let mut sent = sent.lock().unwrap();
                    sent.push(Vec::new());
                    sent.len() - 1
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let upstream = async move {
                    let mut buffer = vec![0u8; 16 * 1024];
                    while let Ok(n @ 1..) = client_read.read(&mut buffer).await {
                        sent.lock().unwrap()[index].extend_from_slice(&buffer[..n]);
                        if server_write.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                let downstream = tokio::io::copy(&mut server_read, &mut client_write);
                tokio::select! {
                    _ = upstream => {}
                    _ = downstream => {}
                }
            });
        }
    });
    addr
}

/// The `traceparent` header of the request whose body holds `marker`.
fn traceparent_of_request_with(sent: &Sent, marker: &str) -> Option<String> {
    let sent = sent.lock().unwrap();
    sent.iter().find_map(|bytes| {
        let text = String::from_utf8_lossy(bytes);
        // One chunk per HTTP request of the connection (headers, body).
        text.split("POST /graphql ")
            .find(|request| request.contains(marker))
            .and_then(|request| {
                request.lines().find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("traceparent")
                        .then(|| value.trim().to_owned())
                })
            })
    })
}

/// The string attribute `key` of `span`.
fn attribute(span: &Span, key: &str) -> Option<String> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .and_then(|a| a["value"]["stringValue"].as_str())
        .map(str::to_owned)
}

/// Polls the receiver until `done` holds for the spans of `trace` (up to
/// 30 s); those spans.
async fn spans_until(
    receiver: &OtlpReceiver,
    trace: &str,
    done: impl Fn(&[Span]) -> bool,
) -> Vec<Span> {
    let mut spans = Vec::new();
    for _ in 0..300 {
        spans = receiver.trace(trace);
        if done(&spans) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    spans
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_one_trace_over_the_venue_over_http_and_through_sqs() {
    let receiver = OtlpReceiver::start().await;
    let _telemetry = common::logs::traced(&receiver.endpoint());
    let venue = harness::TestVenue::start(common::any_port(), 20).await;
    let sent = Sent::default();
    let proxy = recording_proxy(venue.addr, sent.clone()).await;
    let (sqs, client) = common::own_sqs_queues(testkit::shared_moto_endpoint()).await;
    let prefix = sqs.queue_prefix.clone();
    let config = common::test_config(|c| {
        c.venue.kind = VenueKind::Graphql;
        c.venue.endpoint = format!("http://{proxy}/graphql");
        c.venue.token = Some(api::secret::Secret::new(harness::TOKEN));
        c.api.events_to_sqs = true;
        c.api.sqs_endpoint = testkit::shared_moto_endpoint();
        c.api.sqs_queue_prefix = prefix;
        c.api.aws_access_key_id = "test".into();
        c.api.aws_secret_access_key = Some(api::secret::Secret::new("test"));
        // The consumers run in process, on the SQS queues.
        c.worker.in_process = Some(true);
        c.worker.audit_batch_wait_ms = 100;
    });
    let hub = hub::app::start(&config)
        .await
        .expect("hub starts on the venue");
    common::logs::remember_key_files();
    harness::wait_warm(&hub).await;
    let base = format!("http://{}", hub.addr);
    let (user_id, token) =
        common::verified_user(&base, "trace-sqs@example.com", "Trace-Sqs-Password-77").await;
    venue.credit(&user_id, "USD", "1000000").await;

    let order = json!({"client_order_id": "trace-sqs-1", "pair": harness::PAIR, "side": "buy",
        "type": "limit", "qty": "0.001000", "price": "1000.00"});
    let r = reqwest::Client::new()
        .post(format!("{base}/orders"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());

    let handled_from_sqs = |s: &Span| {
        s["name"] == "worker.handle"
            && attribute(s, "consumer").as_deref() == Some("audit")
            && attribute(s, "event_type").as_deref() == Some("order.accepted")
    };
    let wanted = [
        "request",
        "venue.place_order",
        "store.commit",
        "outbox.publish",
    ];
    let spans = spans_until(&receiver, TRACE_ID, |spans| {
        wanted.iter().all(|n| spans.iter().any(|s| s["name"] == *n))
            && spans.iter().any(handled_from_sqs)
    })
    .await;
    let names: Vec<_> = spans.iter().map(|s| s["name"].clone()).collect();
    for name in wanted {
        assert!(names.iter().any(|n| n == name), "no {name} span: {names:?}");
    }
    let handled = spans
        .iter()
        .find(|s| handled_from_sqs(s))
        .unwrap_or_else(|| panic!("no worker.handle of order.accepted in the trace: {names:?}"));
    // Every span hangs off the caller's or another of the trace.
    let ids: HashSet<_> = spans.iter().map(|s| s["spanId"].clone()).collect();
    for span in &spans {
        let parent = &span["parentSpanId"];
        assert!(
            *parent == CALLER_SPAN || ids.contains(parent),
            "{} hangs off a span outside the trace: {span}",
            span["name"]
        );
    }
    assert!(
        ids.contains(&handled["parentSpanId"]),
        "the handling received from SQS joins the trace: {handled}"
    );
    let request = spans.iter().find(|s| s["name"] == "request").unwrap();
    assert_eq!(request["parentSpanId"], CALLER_SPAN);
    assert_eq!(attribute(request, "http.route").as_deref(), Some("/orders"));
    // The venue hop: the createOrder request carried the venue call's span.
    let venue_call = spans
        .iter()
        .find(|s| s["name"] == "venue.place_order")
        .unwrap();
    assert_eq!(venue_call["parentSpanId"], request["spanId"]);
    // The only order of the test: its one createOrder request.
    let header = traceparent_of_request_with(&sent, "mutation CreateOrder")
        .expect("the createOrder request through the proxy, with a traceparent");
    let venue_span = venue_call["spanId"].as_str().unwrap();
    assert_eq!(header, format!("00-{TRACE_ID}-{venue_span}-01"));

    // A message whose attribute and body name different traces: the
    // consumer's span joins the attribute's.
    let mut event = Event::new(EventType::OrderAccepted, Some("trace-sqs-other"), json!({}));
    event.traceparent = Some(format!("00-{BODY_TRACE}-{CALLER_SPAN}-01"));
    let audit_url = SqsPublisher::queue_url(&client, &sqs.queue_prefix, Queue::AuditLog)
        .await
        .unwrap();
    client
        .send_message()
        .queue_url(&audit_url)
        .message_body(serde_json::to_string(&event).unwrap())
        .message_group_id("trace-sqs-other")
        .message_deduplication_id(&event.id)
        .message_attributes(
            "traceparent",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(format!("00-{ATTRIBUTE_TRACE}-{ATTRIBUTE_SPAN}-01"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let joined = |s: &Span| {
        s["name"] == "worker.handle"
            && attribute(s, "event_id").as_deref() == Some(event.id.as_str())
    };
    let spans = spans_until(&receiver, ATTRIBUTE_TRACE, |spans| spans.iter().any(joined)).await;
    let handled = spans.iter().find(|s| joined(s)).unwrap_or_else(|| {
        let elsewhere: Vec<Value> = receiver
            .spans()
            .into_iter()
            .filter(joined)
            .map(|s| s["traceId"].clone())
            .collect();
        panic!("the handling is not in the attribute's trace; it is in {elsewhere:?}")
    });
    assert_eq!(handled["parentSpanId"], ATTRIBUTE_SPAN);
    assert!(
        receiver.trace(BODY_TRACE).is_empty(),
        "the attribute wins over the body"
    );
    hub.stop().await;
    venue.stop().await;
}
