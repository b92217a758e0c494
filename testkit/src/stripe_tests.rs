//! Tests of the Stripe-shaped server (`stripe.rs`).
use super::*;

const VERSION: &str = "2024-06-20";
const BODY: &str = "amount=1099&currency=usd&metadata[user_id]=u1&description=Order+%2342\
    &automatic_payment_methods[enabled]=true";

/// What a call sends besides its body: key, version, idempotency key.
#[derive(Clone, Copy)]
struct Call<'a> {
    key: Option<&'a str>,
    version: Option<&'a str>,
    idempotency: Option<&'a str>,
}

const AS_CLIENT: Call = Call {
    key: Some("sk_test_testkit0000000000000000000000"),
    version: Some(VERSION),
    idempotency: None,
};

/// A GET (`body` `None`) or form POST: status, JSON answer, headers.
async fn call(
    server: &StripeServer,
    path: &str,
    body: Option<&str>,
    how: Call<'_>,
) -> (u16, Value, HeaderMap) {
    let http = reqwest::Client::new();
    let url = format!("{}{path}", server.url());
    let mut request = http.get(&url);
    if let Some(body) = body {
        request = http.post(&url).body(body.to_owned());
        request = request.header("content-type", "application/x-www-form-urlencoded");
    }
    if let Some(key) = how.key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    if let Some(version) = how.version {
        request = request.header("stripe-version", version);
    }
    if let Some(key) = how.idempotency {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        headers,
    )
}

async fn create(server: &StripeServer, body: &str, idempotency: Option<&str>) -> (u16, Value) {
    let how = Call {
        idempotency,
        ..AS_CLIENT
    };
    let (status, answer, _) = call(server, PAYMENT_INTENTS_PATH, Some(body), how).await;
    (status, answer)
}

/// `error.type`, `error.code` (`""`: none) and `error.param` of an answer.
fn kind(answer: &Value) -> (&str, &str, &str) {
    let field = |name: &str| answer["error"][name].as_str().unwrap_or_default();
    (field("type"), field("code"), field("param"))
}

fn alphanumeric_id(id: &str, prefix: &str) -> bool {
    let tail = id.strip_prefix(prefix).unwrap_or_default();
    tail.len() == 24 && tail.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A webhook receiver at `/hooks/stripe`: its URL and what it got
/// (`Stripe-Signature`, body).
async fn receiver() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let store = seen.clone();
    let hook = move |headers: HeaderMap, body: String| async move {
        let signature = headers["stripe-signature"].to_str().unwrap().to_owned();
        store.lock().push((signature, body));
        axum::Json(json!({ "received": true }))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/stripe", listener.local_addr().unwrap());
    let app = Router::new().route("/hooks/stripe", axum::routing::post(hook));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// Checks `header` as a receiver would, independently of the server: the
/// `v1` HMAC-SHA256, keyed with the whole `whsec_` secret, of `"{t}.{body}"`,
/// `t` within 300 s of now.
fn verify(header: &str, body: &str, secret: &str) {
    let pairs: Vec<_> = header
        .split(',')
        .filter_map(|p| p.split_once('='))
        .collect();
    let value = |name| pairs.iter().find(|(n, _)| *n == name).unwrap().1;
    let t: i64 = value("t").parse().unwrap();
    assert!(
        (chrono::Utc::now().timestamp() - t).abs() <= 300,
        "{header}"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let expected = hex::encode(mac.finalize().into_bytes());
    assert_eq!(value("v1"), expected, "{header}");
}

#[tokio::test]
async fn bad_key_gets_401_and_stores_nothing() {
    let server = StripeServer::start(StripeConfig::default()).await;
    let no_key = Call {
        key: None,
        ..AS_CLIENT
    };
    let (status, answer, _) = call(&server, PAYMENT_INTENTS_PATH, Some(BODY), no_key).await;
    assert_eq!((status, kind(&answer).0), (401, "invalid_request_error"));
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("You did not provide an API key."),
        "{message}"
    );
    let wrong = Call {
        key: Some("sk_test_wrongwrongwrong1234"),
        ..AS_CLIENT
    };
    let (status, answer, _) = call(&server, PAYMENT_INTENTS_PATH, Some(BODY), wrong).await;
    let message = answer["error"]["message"].as_str().unwrap();
    let masked = "Invalid API Key provided: sk_test_***************1234";
    assert_eq!((status, message), (401, masked));
    let path = "/v1/payment_intents/pi_x";
    assert_eq!(call(&server, path, None, wrong).await.0, 401);
    assert!(server.intents().is_empty() && server.events().is_empty());
    let statuses: Vec<_> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 401, 401]);
}

#[tokio::test]
async fn create_then_get() {
    let server = StripeServer::start(StripeConfig::default()).await;
    let (status, intent) = create(&server, BODY, None).await;
    assert_eq!(status, 200, "{intent}");
    let id = intent["id"].as_str().unwrap();
    assert!(alphanumeric_id(id, "pi_"), "{id}");
    let secret = intent["client_secret"].as_str().unwrap();
    assert!(secret.starts_with(&format!("{id}_secret_")), "{secret}");
    let expected = json!({"object": "payment_intent", "amount": 1099, "amount_received": 0,
        "currency": "usd", "status": "requires_payment_method", "livemode": false,
        "latest_charge": null, "metadata": {"user_id": "u1"}, "description": "Order #42",
        "automatic_payment_methods": {"enabled": true, "allow_redirects": "always"}});
    for (name, want) in expected.as_object().unwrap() {
        assert_eq!(&intent[name], want, "{name} of {intent}");
    }
    assert!(intent["created"].as_i64().unwrap() > 1_700_000_000);
    let path = format!("{PAYMENT_INTENTS_PATH}/{id}");
    let unversioned = Call {
        version: None,
        ..AS_CLIENT
    };
    let (status, got, _) = call(&server, &path, None, unversioned).await;
    assert_eq!((status, &got), (200, &intent));
    assert_eq!(server.intents(), std::slice::from_ref(&intent));
    let missing = format!("{PAYMENT_INTENTS_PATH}/pi_nope");
    let (status, answer, _) = call(&server, &missing, None, AS_CLIENT).await;
    let expected = ("invalid_request_error", "resource_missing", "intent");
    assert_eq!((status, kind(&answer)), (404, expected));
    assert_eq!(
        answer["error"]["message"],
        "No such payment_intent: 'pi_nope'"
    );
    let log = server.requests();
    let versions: Vec<_> = log.iter().map(|r| r.api_version.as_deref()).collect();
    assert_eq!(versions, [Some(VERSION), None, Some(VERSION)]);
    assert_eq!(
        (log[1].method.as_str(), log[1].path.as_str()),
        ("GET", path.as_str())
    );
}

#[tokio::test]
async fn invalid_requests_are_refused_as_stripe_does() {
    let server = StripeServer::start(StripeConfig::default()).await;
    let cases = [
        ("currency=usd", ("parameter_missing", "amount")),
        (
            "amount=10.5&currency=usd",
            ("parameter_invalid_integer", "amount"),
        ),
        (
            "amount=0&currency=usd",
            ("parameter_invalid_integer", "amount"),
        ),
        ("amount=1099", ("parameter_missing", "currency")),
        ("amount=1099&currency=dollars", ("", "currency")),
        (
            "amount=1099&currency=usd&colour=red",
            ("parameter_unknown", "colour"),
        ),
        (
            "amount=1099&currency=usd&metadata[a][b]=1",
            ("", "metadata"),
        ),
    ];
    for (body, (code, param)) in cases {
        let (status, answer) = create(&server, body, None).await;
        let want = (400, ("invalid_request_error", code, param));
        assert_eq!((status, kind(&answer)), want, "{body}: {answer}");
    }
    let key = "k".repeat(41);
    let (status, answer) = create(&server, &format!("{BODY}&metadata[{key}]=v"), None).await;
    assert_eq!((status, kind(&answer).2), (400, "metadata"), "{answer}");
    let long = "v".repeat(501);
    let (status, _) = create(
        &server,
        &format!("amount=1099&currency=usd&metadata[k]={long}"),
        None,
    )
    .await;
    assert_eq!(status, 400);
    let many: String = (0..51).map(|i| format!("&metadata[k{i}]=v")).collect();
    assert_eq!(create(&server, &format!("{BODY}{many}"), None).await.0, 400);
    let big = format!("{BODY}&description={}", "x".repeat(MAX_BODY));
    assert_eq!(create(&server, &big, None).await.0, 413);
    let (status, answer) = create(&server, "amount=1099&currency=USD", None).await;
    assert_eq!(
        (status, &answer["currency"]),
        (200, &json!("usd")),
        "case-insensitive"
    );
    for version in [
        "2024-6-20",
        "latest",
        "2024-06-20, 2023-10-16",
        "2999-01-01",
    ] {
        let how = Call {
            version: Some(version),
            ..AS_CLIENT
        };
        let (status, answer, _) = call(&server, PAYMENT_INTENTS_PATH, Some(BODY), how).await;
        let message = format!("Invalid Stripe API version: {version}");
        assert_eq!(
            (status, &answer["error"]["message"]),
            (400, &json!(message))
        );
    }
    let http = reqwest::Client::new().post(format!("{}{PAYMENT_INTENTS_PATH}", server.url()));
    let auth = format!("Bearer {}", AS_CLIENT.key.unwrap());
    let request = http
        .header("authorization", auth)
        .header("content-type", "application/json");
    let response = request
        .body(r#"{"amount":1099,"currency":"usd"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(server.intents().len(), 1);
    assert_eq!(call(&server, "/v1/charges", None, AS_CLIENT).await.0, 404);
}

#[tokio::test]
async fn idempotent_replay_and_reuse_with_other_parameters() {
    let server = StripeServer::start(StripeConfig::default()).await;
    let (status, first) = create(&server, BODY, Some("order-42")).await;
    assert_eq!(status, 200, "{first}");
    let how = Call {
        idempotency: Some("order-42"),
        ..AS_CLIENT
    };
    let (status, again, headers) = call(&server, PAYMENT_INTENTS_PATH, Some(BODY), how).await;
    assert_eq!((status, &again), (200, &first));
    assert_eq!(headers["idempotent-replayed"], "true");
    let other = BODY.replace("1099", "2000");
    let (status, answer) = create(&server, &other, Some("order-42")).await;
    assert_eq!(
        (status, kind(&answer).0),
        (400, "idempotency_error"),
        "{answer}"
    );
    let reordered = "currency=usd&amount=1099&metadata[user_id]=u1&description=Order+%2342\
        &automatic_payment_methods[enabled]=true";
    let (status, same) = create(&server, reordered, Some("order-42")).await;
    assert_eq!((status, same["id"].clone()), (200, first["id"].clone()));
    assert_eq!(server.intents().len(), 1);
    let replays: Vec<_> = server.requests().iter().map(|r| r.replayed).collect();
    assert_eq!(replays, [false, true, false, true]);
    assert!(server
        .requests()
        .iter()
        .all(|r| r.idempotency_key.as_deref() == Some("order-42")));
    let too_long = "k".repeat(MAX_IDEMPOTENCY_KEY + 1);
    assert_eq!(create(&server, BODY, Some(&too_long)).await.0, 400);
    assert_eq!(create(&server, BODY, Some(&too_long[1..])).await.0, 200);
    // A refused validation saves nothing: the corrected retry creates.
    assert_eq!(create(&server, "currency=usd", Some("fix-me")).await.0, 400);
    let (status, fixed) = create(&server, BODY, Some("fix-me")).await;
    assert_eq!(status, 200, "{fixed}");
    assert_eq!(server.intents().len(), 3);
}

#[tokio::test]
async fn injected_faults_are_not_saved_under_the_key() {
    let server = StripeServer::start(StripeConfig::default()).await;
    server.fail_next(1, 429);
    let (status, answer) = create(&server, BODY, Some("retry-me")).await;
    assert_eq!(
        (status, kind(&answer)),
        (429, ("invalid_request_error", "rate_limit", ""))
    );
    server.fail_next(1, 503);
    let (status, answer) = create(&server, BODY, Some("retry-me")).await;
    assert_eq!((status, kind(&answer).0), (503, "api_error"));
    assert!(server.intents().is_empty());
    let (status, created) = create(&server, BODY, Some("retry-me")).await;
    assert_eq!(status, 200, "{created}");
    let (status, replayed) = create(&server, BODY, Some("retry-me")).await;
    assert_eq!((status, &replayed), (200, &created));
    assert_eq!(server.intents().len(), 1);
    let replays: Vec<_> = server
        .requests()
        .iter()
        .map(|r| (r.status, r.replayed))
        .collect();
    assert_eq!(
        replays,
        [(429, false), (503, false), (200, false), (200, true)]
    );
}

#[tokio::test]
async fn succeed_sends_a_signed_event_and_resend_repeats_it() {
    let config = StripeConfig::default();
    let secret = config.webhook_secret.clone();
    let server = StripeServer::start(config).await;
    let (_, intent) = create(&server, BODY, None).await;
    let id = intent["id"].as_str().unwrap();
    let (url, seen) = receiver().await;
    server.set_webhook_url(&url);
    let answer = server.succeed(id).await;
    assert_eq!(answer, Some((200, json!({ "received": true }))));
    let (signature, body) = seen.lock()[0].clone();
    verify(&signature, &body, &secret);
    let event: Value = serde_json::from_str(&body).unwrap();
    let expected = json!({"object": "event", "api_version": VERSION, "livemode": false,
        "pending_webhooks": 1, "type": "payment_intent.succeeded",
        "request": {"id": null, "idempotency_key": null}});
    for (name, want) in expected.as_object().unwrap() {
        assert_eq!(&event[name], want, "{name} of {event}");
    }
    assert!(alphanumeric_id(event["id"].as_str().unwrap(), "evt_"));
    let paid = &event["data"]["object"];
    assert_eq!(
        (&paid["status"], &paid["amount_received"]),
        (&json!("succeeded"), &json!(1099))
    );
    let charge_id = paid["latest_charge"].as_str().unwrap();
    assert!(alphanumeric_id(charge_id, "ch_"), "{charge_id}");
    assert_eq!(server.intents(), std::slice::from_ref(paid));
    server.resend_last().await.unwrap();
    let (signature, again) = seen.lock()[1].clone();
    assert_eq!(again, body, "the same event, byte for byte");
    verify(&signature, &again, &secret);
    assert_eq!(server.events().len(), 1);
    let wrong = verify_fails(&signature, &again, "whsec_other");
    assert!(wrong, "a signature under another secret does not verify");
}

/// Whether [`verify`] panics.
fn verify_fails(header: &str, body: &str, secret: &str) -> bool {
    let (header, body, secret) = (header.to_owned(), body.to_owned(), secret.to_owned());
    std::thread::spawn(move || verify(&header, &body, &secret))
        .join()
        .is_err()
}

#[tokio::test]
async fn refunds_add_up_on_the_charge() {
    let server = StripeServer::start(StripeConfig::default()).await;
    let (_, intent) = create(&server, BODY, None).await;
    let id = intent["id"].as_str().unwrap();
    assert_eq!(
        server.succeed(id).await,
        None,
        "no webhook URL: nothing sent"
    );
    server.refund(id, Some(300)).await;
    server.refund(id, Some(500)).await;
    let partial = server.events()[2]["data"]["object"].clone();
    let refunded = (&partial["amount_refunded"], &partial["refunded"]);
    assert_eq!(refunded, (&json!(800), &json!(false)));
    server.refund(id, None).await;
    let events = server.events();
    let kinds: Vec<_> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let refund = "charge.refunded";
    assert_eq!(kinds, ["payment_intent.succeeded", refund, refund, refund]);
    let charge = &events[3]["data"]["object"];
    let expected = json!({"object": "charge", "amount": 1099, "amount_captured": 1099,
        "amount_refunded": 1099, "refunded": true, "currency": "usd", "status": "succeeded",
        "payment_intent": id, "metadata": {"user_id": "u1"}});
    for (name, want) in expected.as_object().unwrap() {
        assert_eq!(&charge[name], want, "{name} of {charge}");
    }
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e["id"].to_string()).collect();
    assert_eq!(ids.len(), 4, "every event id is new");
}

#[tokio::test]
async fn decline_then_cancel() {
    let server = StripeServer::start(StripeConfig::default()).await;
    let (_, intent) = create(&server, "amount=500&currency=eur", None).await;
    let id = intent["id"].as_str().unwrap();
    server.fail_payment(id, "insufficient_funds").await;
    server.cancel(id).await;
    let events = server.events();
    let failed = &events[0];
    assert_eq!(failed["type"], "payment_intent.payment_failed");
    let error = &failed["data"]["object"]["last_payment_error"];
    let fields = (&error["type"], &error["code"], &error["decline_code"]);
    let expected = (
        &json!("card_error"),
        &json!("card_declined"),
        &json!("insufficient_funds"),
    );
    assert_eq!(fields, expected);
    assert_eq!(
        failed["data"]["object"]["status"],
        "requires_payment_method"
    );
    let canceled = &events[1]["data"]["object"];
    assert_eq!(events[1]["type"], "payment_intent.canceled");
    let reason = (&canceled["status"], &canceled["cancellation_reason"]);
    assert_eq!(
        reason,
        (&json!("canceled"), &json!("requested_by_customer"))
    );
    assert!(canceled["canceled_at"].is_i64());
    assert_eq!(server.intents(), std::slice::from_ref(canceled));
}

#[test]
fn keys_are_masked_as_stripe_masks_them() {
    assert_eq!(mask("undefined"), "*****ined");
    assert_eq!(mask("sk_live_ab"), "sk_live_**");
    assert_eq!(mask("é_test_"), "***est_");
}
