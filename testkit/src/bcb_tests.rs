//! Tests of the BCB-shaped server (`bcb.rs`).
use super::*;
use axum::http::HeaderMap;

const GBP: u64 = 10_001;
const EUR: u64 = 10_002;

/// POSTs `body` with `content_type` to `{base}{path}`: status and JSON answer.
async fn post(base: &str, path: &str, body: &str, content_type: &str) -> (u16, Value) {
    let request = reqwest::Client::new().post(format!("{base}{path}"));
    let request = request.header("content-type", content_type);
    answer(request.body(body.to_owned())).await
}

async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A token for the default client.
async fn token(server: &BcbServer) -> String {
    let body = r#"{"client_id":"bcb-test-client","client_secret":"bcb-test-client-secret"}"#;
    let (status, answer) = post(&server.auth_url(), TOKEN_PATH, body, "application/json").await;
    assert_eq!(status, 200, "{answer}");
    answer["access_token"].as_str().unwrap().to_owned()
}

/// An API call with `token` (none: no `Authorization`): a GET, or a JSON POST.
async fn call(
    server: &BcbServer,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let http = reqwest::Client::new();
    let url = format!("{}{path}", server.url());
    let mut request = http.get(&url);
    if let Some(body) = body {
        request = http.post(&url).body(body.to_string());
        request = request.header("content-type", "application/json");
    }
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    answer(request).await
}

async fn authorise(server: &BcbServer, token: &str, body: &Value) -> (u16, Value) {
    call(server, AUTHORISE_PATH, Some(token), Some(body)).await
}

/// A GBP Faster Payment from the GBP account with `nonce`.
fn payout(nonce: &str) -> Value {
    json!({"counterparty_id": COUNTERPARTY_ID, "sender_account_id": GBP, "ccy": "GBP",
           "amount": "25.50", "reference": "NAX withdrawal 1", "reason": "Withdrawal",
           "preferred_scheme": "AUTO", "nonce": nonce, "beneficiary_name": "Jane Smith",
           "beneficiary_account_number": "31926819", "beneficiary_sort_code": "601613"})
}

fn code(answer: &Value) -> &str {
    answer["code"].as_str().unwrap_or_default()
}

/// Asserts that `value` has every field of `expected`.
fn has(value: &Value, expected: Value) {
    for (name, want) in expected.as_object().unwrap() {
        assert_eq!(&value[name], want, "{name} of {value}");
    }
}

/// A webhook receiver: its URL and what it got (`X-BCB-Signature`, body).
async fn receiver() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let store = seen.clone();
    let hook = move |headers: HeaderMap, body: String| async move {
        let signature = headers["x-bcb-signature"].to_str().unwrap().to_owned();
        store.lock().push((signature, body));
        axum::Json(json!({"received": true}))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/bcb", listener.local_addr().unwrap());
    let app = Router::new().route("/hooks/bcb", axum::routing::post(hook));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// Verifies `signature` (hex) over `body` with the default webhook secret.
fn verify(signature: &str, body: &str) {
    let secret = BcbConfig::default().webhook_secret;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    mac.verify_slice(&hex::decode(signature).unwrap()).unwrap();
}

#[tokio::test]
async fn token_issue_and_refusal() {
    let server = BcbServer::start(BcbConfig::default()).await;
    let auth = server.auth_url();
    assert_ne!(auth, server.url());
    let good = r#"{"client_id":"bcb-test-client","client_secret":"bcb-test-client-secret"}"#;
    let (status, answer) = post(&auth, TOKEN_PATH, good, "application/json").await;
    assert_eq!(status, 200, "{answer}");
    has(
        &answer,
        json!({"expires_in": TOKEN_LIFETIME_SECS, "token_type": "Bearer"}),
    );
    assert_eq!(answer["access_token"].as_str().unwrap().len(), 64);
    let form = "grant_type=client_credentials&client_id=bcb-test-client\
        &client_secret=bcb-test-client-secret&audience=https%3A%2F%2Fapi.bcb.group";
    let form_type = "application/x-www-form-urlencoded";
    assert_eq!(post(&auth, TOKEN_PATH, form, form_type).await.0, 200);
    let wrong = r#"{"client_id":"bcb-test-client","client_secret":"nope"}"#;
    let (status, answer) = post(&auth, TOKEN_PATH, wrong, "application/json").await;
    assert_eq!((status, &answer["error"]), (401, &json!("access_denied")));
    let grant = r#"{"grant_type":"password","client_id":"bcb-test-client"}"#;
    let (status, answer) = post(&auth, TOKEN_PATH, grant, "application/json").await;
    assert_eq!(
        (status, &answer["error"]),
        (400, &json!("unsupported_grant_type"))
    );
    let (status, answer) = post(&auth, TOKEN_PATH, good, "text/plain").await;
    assert_eq!((status, &answer["error"]), (400, &json!("invalid_request")));
    // The API host serves no tokens.
    assert_eq!(
        post(&server.url(), TOKEN_PATH, good, "application/json")
            .await
            .0,
        404
    );
    server.fail_next_token(1, 503);
    assert_eq!(
        post(&auth, TOKEN_PATH, good, "application/json").await.0,
        503
    );
    assert_eq!(
        post(&auth, TOKEN_PATH, good, "application/json").await.0,
        200
    );
    let statuses: Vec<_> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 401, 400, 400, 404, 503, 200]);
    assert_eq!(server.requests()[0].path, TOKEN_PATH);
}

#[tokio::test]
async fn missing_or_expired_token_gets_401_and_changes_nothing() {
    let server = BcbServer::start(BcbConfig::default()).await;
    let body = payout("n-1");
    let (status, answer) = call(&server, AUTHORISE_PATH, None, Some(&body)).await;
    assert_eq!((status, code(&answer)), (401, "UNAUTHORIZED"));
    let (status, answer) = authorise(&server, "not-a-token", &body).await;
    assert_eq!((status, &answer["message"]), (401, &json!("invalid token")));
    let old = token(&server).await;
    server.expire_tokens();
    let (status, answer) = authorise(&server, &old, &body).await;
    assert_eq!((status, &answer["message"]), (401, &json!("token expired")));
    assert_eq!(call(&server, ACCOUNTS_PATH, Some(&old), None).await.0, 401);
    assert!(server.payments().is_empty() && server.webhooks().is_empty());
    // A fresh token works, and the nonce is still unused.
    let fresh = token(&server).await;
    assert_eq!(authorise(&server, &fresh, &body).await.0, 200);
    assert_eq!(server.payments().len(), 1);
}

#[tokio::test]
async fn accounts_are_listed() {
    let server = BcbServer::start(BcbConfig::default()).await;
    let token = token(&server).await;
    let (status, answer) = call(&server, ACCOUNTS_PATH, Some(&token), None).await;
    assert_eq!(status, 200, "{answer}");
    let listed = answer.as_array().unwrap();
    let ccys: Vec<_> = listed.iter().map(|a| a["ccy"].as_str().unwrap()).collect();
    assert_eq!(ccys, ["GBP", "EUR", "USD"]);
    has(
        &listed[0],
        json!({"id": GBP, "counterparty_id": COUNTERPARTY_ID,
        "account_type": "Bank", "iban": "GB33BUKB20201555555555", "bic": "BUKBGB22",
        "host_hub": "20-20-15", "node_address": "55555555", "node_name": ACCOUNT_NAME,
        "bcb_controlled": 1}),
    );
    let one = format!("{ACCOUNTS_PATH}?id={EUR}&limit=10");
    let (_, answer) = call(&server, &one, Some(&token), None).await;
    assert_eq!(answer.as_array().unwrap().len(), 1);
    assert_eq!(answer[0]["iban"], ACCOUNTS[1].iban);
    let others = format!("{ACCOUNTS_PATH}?counterparty_id=1");
    let (_, answer) = call(&server, &others, Some(&token), None).await;
    assert_eq!(answer, json!([]));
    let bad = format!("{ACCOUNTS_PATH}?id=x");
    assert_eq!(call(&server, &bad, Some(&token), None).await.0, 400);
    let (status, _) = call(&server, ACCOUNTS_PATH, Some(&token), Some(&json!({}))).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn payment_authorised_nonce_reuse_refused_and_fetched() {
    let server = BcbServer::start(BcbConfig::default()).await;
    let token = token(&server).await;
    let (status, answer) = authorise(&server, &token, &payout("n-1")).await;
    assert_eq!(status, 200, "{answer}");
    let accepted = &answer[0];
    has(accepted, json!({"nonce": "n-1", "response": "Accepted"}));
    let id = accepted["transactionId"].as_str().unwrap();
    let end_to_end = accepted["endToEndIdentification"].as_str().unwrap();
    assert_eq!((id.len(), end_to_end.len()), (32, 32));
    // The nonce is unique per account: again on GBP is refused, on EUR it is fine.
    let (status, answer) = authorise(&server, &token, &payout("n-1")).await;
    assert_eq!((status, code(&answer)), (400, "NONCE_REUSED"));
    let euro = json!({"counterparty_id": COUNTERPARTY_ID, "sender_account_id": EUR.to_string(),
        "ccy": "EUR", "amount": "10", "reference": "NAX withdrawal 2", "reason": "Withdrawal",
        "preferred_scheme": "AUTO", "nonce": "n-1", "beneficiary_name": "Hans Mueller",
        "beneficiary_address_line_1": "Hauptstrasse 1", "beneficiary_city": "Berlin",
        "beneficiary_country": "DE", "beneficiary_iban": "DE89370400440532013000",
        "beneficiary_bic": "COBADEFFXXX"});
    assert_eq!(authorise(&server, &token, &euro).await.0, 200);
    let path = format!("/v3/accounts/{GBP}/transactions/{id}");
    let (status, transaction) = call(&server, &path, Some(&token), None).await;
    assert_eq!(status, 200, "{transaction}");
    has(
        &transaction,
        json!({"tx_id": id, "account_id": GBP, "credit": 0, "approved": 0,
        "ticker": "GBP", "amount": 25.5, "network": "FPS", "status": "Accepted"}),
    );
    has(
        &transaction["details"],
        json!({"endToEndIdentifier": end_to_end, "nonce": "n-1",
        "reference": "NAX withdrawal 1", "sort_code": "601613", "account_name": "Jane Smith"}),
    );
    let list = format!("/v3/accounts/{GBP}/transactions");
    let (_, listed) = call(&server, &list, Some(&token), None).await;
    assert_eq!(listed, json!([transaction]));
    let elsewhere = format!("/v3/accounts/{EUR}/transactions/{id}");
    assert_eq!(call(&server, &elsewhere, Some(&token), None).await.0, 404);
    let payments = server.payments();
    assert_eq!(payments.len(), 2);
    has(
        &payments[0],
        json!({"transactionId": id, "nonce": "n-1", "response": "Accepted",
        "account_id": GBP, "ccy": "GBP", "amount": "25.50", "request": payout("n-1")}),
    );
}

#[tokio::test]
async fn invalid_payments_are_refused() {
    let server = BcbServer::start(BcbConfig::default()).await;
    let token = token(&server).await;
    let with = |name: &str, value: Value| {
        let mut body = payout("n-1");
        body[name] = value;
        body
    };
    let mut no_reference = payout("n-1");
    no_reference.as_object_mut().unwrap().remove("reference");
    let refused = [
        (no_reference, 400, "reference is required"),
        (
            with("ccy", json!("EUR")),
            400,
            "ccy must be GBP, the sender account's currency",
        ),
        (
            with("amount", json!(25.5)),
            400,
            "amount must be a non-empty string",
        ),
        (
            with("amount", json!("25.505")),
            400,
            "amount must be a positive decimal string \
            with at most 2 decimals",
        ),
        (
            with("beneficiary_sort_code", json!("60-16-13")),
            400,
            "beneficiary_sort_code must \
            be 6 digits",
        ),
        (
            with("preferred_scheme", json!("FPS")),
            400,
            "preferred_scheme must be AUTO, BLINC \
            or INTERNAL",
        ),
        (
            with("counterparty_id", json!(1)),
            403,
            "counterparty 1 is not yours",
        ),
        (
            with("sender_account_id", json!(999)),
            403,
            "account 999 is not yours",
        ),
        (
            with("reference", json!("x".repeat(MAX_BODY))),
            413,
            "the body is over 65536 bytes",
        ),
    ];
    for (body, status, message) in refused {
        let answer = authorise(&server, &token, &body).await;
        assert_eq!(answer.0, status, "{}", answer.1);
        assert_eq!(answer.1["message"], message);
        assert_eq!(answer.1["statusCode"], status);
    }
    let plain = reqwest::Client::new().post(format!("{}{AUTHORISE_PATH}", server.url()));
    let plain = plain.header("authorization", format!("Bearer {token}"));
    assert_eq!(answer(plain.body(payout("n-1").to_string())).await.0, 400);
    assert!(server.payments().is_empty());
    assert_eq!(authorise(&server, &token, &payout("n-1")).await.0, 200);
}

#[tokio::test]
async fn injected_faults_change_nothing() {
    let server = BcbServer::start(BcbConfig::default()).await;
    let token = token(&server).await;
    server.fail_next(2, 503);
    server.fail_next(1, 429);
    let (status, answer) = authorise(&server, &token, &payout("n-1")).await;
    assert_eq!((status, code(&answer)), (503, "INTERNAL_SERVER_ERROR"));
    assert_eq!(
        call(&server, ACCOUNTS_PATH, Some(&token), None).await.0,
        503
    );
    let (status, answer) = authorise(&server, &token, &payout("n-1")).await;
    assert_eq!((status, code(&answer)), (429, "TOO_MANY_REQUESTS"));
    assert!(server.payments().is_empty());
    // The refused attempts used no nonce.
    assert_eq!(authorise(&server, &token, &payout("n-1")).await.0, 200);
    let statuses: Vec<_> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 503, 503, 429, 200]);
}

#[tokio::test]
async fn signed_webhooks_for_payouts_and_deposits() {
    let (url, seen) = receiver().await;
    let server = BcbServer::start(BcbConfig::default()).await;
    let token = token(&server).await;
    let (_, answer) = authorise(&server, &token, &payout("n-1")).await;
    let settled = answer[0]["transactionId"].as_str().unwrap().to_owned();
    let (_, answer) = authorise(&server, &token, &payout("n-2")).await;
    let rejected = answer[0]["transactionId"].as_str().unwrap().to_owned();
    // Without a URL nothing is sent, but the body is kept.
    assert_eq!(server.settle_payment(&settled).await, None);
    server.set_webhook_url(&url);
    let got = server
        .fail_payment(&rejected, "beneficiary account closed")
        .await;
    assert_eq!(got, Some((200, json!({"received": true}))));
    let (signature, body) = seen.lock()[0].clone();
    verify(&signature, &body);
    let hook: Value = serde_json::from_str(&body).unwrap();
    let end_to_end = &server.payments()[1]["endToEndIdentification"];
    assert_eq!(
        hook,
        json!([{"endToEndIdentification": end_to_end, "transactionId": rejected,
        "nonce": "n-2", "response": "Rejected"}])
    );
    let path = format!("/v3/accounts/{GBP}/transactions/{settled}");
    let (_, transaction) = call(&server, &path, Some(&token), None).await;
    has(&transaction, json!({"approved": 1, "status": "Complete"}));
    has(
        &server.payments()[1],
        json!({"response": "Rejected",
        "rejection_reason": "beneficiary account closed"}),
    );
    // A deposit quoting the user's reference.
    let got = server
        .incoming_transfer("EUR", "100.25", "NAXabc123", "Alice Example")
        .await;
    assert_eq!(got.unwrap().0, 200);
    let (signature, body) = seen.lock()[1].clone();
    verify(&signature, &body);
    let hook: Value = serde_json::from_str(&body).unwrap();
    assert!(hook["subject"]
        .as_str()
        .unwrap()
        .starts_with("TRANSACTION:EUR:"));
    assert_eq!(hook["account_id"], EUR);
    let deposit = &hook["transactions"][0];
    has(
        deposit,
        json!({"amount_instructed": 100.25, "amount_actual": 100.25,
        "currency": "EUR", "credit": true, "reference": "NAXabc123",
        "account_name": "Alice Example", "from": "Alice Example",
        "iban": "DE89370400440532013000"}),
    );
    let path = format!(
        "/v3/accounts/{EUR}/transactions/{}",
        deposit["id"].as_str().unwrap()
    );
    let (_, transaction) = call(&server, &path, Some(&token), None).await;
    has(
        &transaction,
        json!({"credit": 1, "approved": 1, "amount": 100.25}),
    );
    // A duplicate delivery: the same bytes, the same signature.
    assert_eq!(server.resend_last().await.unwrap().0, 200);
    let seen = seen.lock().clone();
    assert_eq!(seen[2], seen[1]);
    assert_eq!(server.webhooks().len(), 3);
    assert_eq!(server.webhooks()[0][0]["response"], "Complete");
}

#[tokio::test]
#[should_panic(expected = "no longer pending")]
async fn a_finished_payout_cannot_move_again() {
    let server = BcbServer::start(BcbConfig::default()).await;
    let token = token(&server).await;
    let (_, answer) = authorise(&server, &token, &payout("n-1")).await;
    let id = answer[0]["transactionId"].as_str().unwrap().to_owned();
    server.settle_payment(&id).await;
    server.fail_payment(&id, "late").await;
}
