//! Tests of the Sumsub-shaped server (`sumsub.rs`). Signatures and digests
//! are computed here with the hmac crate, not with the server's helpers.
use super::*;
use axum::http::HeaderMap;

const SECRET: &str = "testkit-secret-key";
const LEVEL_PATH: &str = "/resources/applicants?levelName=basic-kyc-level";
/// A PNG-like file holding bytes that look like a boundary but are not.
const FILE: &[u8] = b"\x89PNG\r\n\x1a\n\r\n--not-the-boundary\r\n\0\xff image bytes";
const BOUNDARY: &str = "testkit-boundary-7d1f";

/// How a call signs: rightly, or with one thing wrong (the key, the clock,
/// a header left out, the body changed after signing, the query unsigned).
#[derive(Clone, Copy)]
enum Sign<'a> {
    Ok,
    Secret(&'a str),
    Skew(i64),
    Skip(&'a str),
    Tamper,
    UnsignedQuery,
}
use Sign::Ok as OK;

/// Lowercase hex HMAC of `message` with `M`'s hash.
fn hex_mac<M: Mac + hmac::digest::KeyInit>(secret: &str, message: &[u8]) -> String {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// A request signed as `how` says: status, JSON answer, headers.
async fn call(
    server: &SumsubServer,
    method: &str,
    path: &str,
    body: &[u8],
    content_type: Option<&str>,
    how: Sign<'_>,
) -> (u16, Value, HeaderMap) {
    let skew = if let Sign::Skew(skew) = how { skew } else { 0 };
    let ts = (chrono::Utc::now().timestamp() + skew).to_string();
    let unsigned = matches!(how, Sign::UnsignedQuery);
    let signed_path = path.split('?').next().filter(|_| unsigned).unwrap_or(path);
    let mut message = format!("{ts}{method}{signed_path}").into_bytes();
    message.extend_from_slice(body);
    let mut sent = body.to_vec();
    if matches!(how, Sign::Tamper) {
        sent.push(b' ');
    }
    let secret = if let Sign::Secret(secret) = how {
        secret
    } else {
        SECRET
    };
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let url = format!("{}{path}", server.url());
    let mut request = reqwest::Client::new().request(method, url).body(sent);
    let token = SumsubConfig::default().app_token;
    let headers = [
        ("x-app-token", token),
        ("x-app-access-ts", ts),
        (
            "x-app-access-sig",
            hex_mac::<Hmac<Sha256>>(secret, &message),
        ),
    ];
    let skipped = |name: &str| matches!(how, Sign::Skip(skip) if skip == name);
    for (name, value) in headers.into_iter().filter(|(n, _)| !skipped(n)) {
        request = request.header(name, value);
    }
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let text = response.text().await.unwrap();
    let answer = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, answer, headers)
}

async fn get(server: &SumsubServer, path: &str) -> (u16, Value) {
    let (status, answer, _) = call(server, "GET", path, b"", None, OK).await;
    (status, answer)
}

async fn post_json(server: &SumsubServer, path: &str, body: &Value, how: Sign<'_>) -> (u16, Value) {
    let body = body.to_string();
    let json = Some("application/json");
    let (status, answer, _) = call(server, "POST", path, body.as_bytes(), json, how).await;
    (status, answer)
}

async fn create(server: &SumsubServer, external: &str) -> (u16, Value) {
    let body = json!({ "externalUserId": external });
    post_json(server, LEVEL_PATH, &body, OK).await
}

/// A multipart body: `metadata`, then `content` when given.
fn multipart(metadata: &str, content: Option<&[u8]>) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{metadata}\r\n"
    )
    .into_bytes();
    if let Some(content) = content {
        let head = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"content\"; \
             filename=\"passport.png\"\r\nContent-Type: image/png\r\n\r\n"
        );
        body.extend_from_slice(head.as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// Adds a passport with `content`: status, answer, headers.
async fn upload(
    server: &SumsubServer,
    id: &str,
    content: Option<&[u8]>,
) -> (u16, Value, HeaderMap) {
    let body = multipart(r#"{"idDocType":"PASSPORT","country":"GBR"}"#, content);
    let path = format!("/resources/applicants/{id}/info/idDoc");
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    call(server, "POST", &path, &body, Some(&content_type), OK).await
}

/// `(status, errorCode)` of adding a passport with `content`.
async fn upload_code(server: &SumsubServer, id: &str, content: &[u8]) -> (u16, u64) {
    code(&bare(upload(server, id, Some(content)).await))
}

async fn request_check(server: &SumsubServer, id: &str) -> (u16, Value) {
    let path = format!("/resources/applicants/{id}/status/pending");
    let (status, answer, _) = call(server, "POST", &path, b"", None, OK).await;
    (status, answer)
}

/// A reply without its headers.
fn bare((status, answer, _): (u16, Value, HeaderMap)) -> (u16, Value) {
    (status, answer)
}

/// `(status, errorCode)` of an answer (errorCode 0: none).
fn code(reply: &(u16, Value)) -> (u16, u64) {
    (reply.0, reply.1["errorCode"].as_u64().unwrap_or(0))
}

fn is_hex(s: &str, len: usize) -> bool {
    let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    s.len() == len && s.bytes().all(hex)
}

/// A webhook receiver: its URL and what it got (headers, body).
async fn receiver() -> (String, Arc<Mutex<Vec<(HeaderMap, String)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let store = seen.clone();
    let hook = move |headers: HeaderMap, body: String| async move {
        store.lock().push((headers, body));
        axum::Json(json!({ "ok": true }))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/sumsub", listener.local_addr().unwrap());
    let app = Router::new().route("/hooks/sumsub", axum::routing::post(hook));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// Checks a delivery as a receiver would: the digest header is the hex HMAC
/// of the raw body with `alg`'s hash, keyed with `secret`.
fn verify(headers: &HeaderMap, body: &str, secret: &str, alg: DigestAlg) {
    let body_bytes = body.as_bytes();
    let (name, expected) = match alg {
        DigestAlg::Sha1 => (
            "HMAC_SHA1_HEX",
            hex_mac::<Hmac<sha1::Sha1>>(secret, body_bytes),
        ),
        DigestAlg::Sha256 => (
            "HMAC_SHA256_HEX",
            hex_mac::<Hmac<Sha256>>(secret, body_bytes),
        ),
        DigestAlg::Sha512 => (
            "HMAC_SHA512_HEX",
            hex_mac::<Hmac<sha2::Sha512>>(secret, body_bytes),
        ),
    };
    assert_eq!(headers["x-payload-digest-alg"], name);
    assert_eq!(headers["x-payload-digest"], expected.as_str());
    assert_eq!(headers["content-type"], "application/json");
}

#[tokio::test]
async fn bad_signatures_get_401_and_store_nothing() {
    let server = SumsubServer::start(SumsubConfig::default()).await;
    let body = json!({ "externalUserId": "user-1" });
    let late = TS_TOLERANCE_SECS + 30;
    let refused = [
        (Sign::Secret("wrong-secret"), 4003),
        (Sign::Tamper, 4003),
        (Sign::UnsignedQuery, 4003),
        (Sign::Skew(-late), 4004),
        (Sign::Skew(late), 4004),
        (Sign::Skip("x-app-access-sig"), 4006),
        (Sign::Skip("x-app-access-ts"), 4006),
        (Sign::Skip("x-app-token"), 4006),
    ];
    for (how, error_code) in refused {
        let reply = post_json(&server, LEVEL_PATH, &body, how).await;
        assert_eq!(code(&reply), (401, error_code), "{}", reply.1);
        assert_eq!(reply.1["code"], 401);
        let correlation = reply.1["correlationId"].as_str().unwrap();
        assert!(correlation.starts_with("req-"), "{correlation}");
    }
    let reply = post_json(&server, LEVEL_PATH, &body, Sign::Secret(SECRET)).await;
    assert_eq!(reply.1["errorCode"], Value::Null);
    assert_eq!(reply.0, 201, "{}", reply.1);
    let signature = post_json(&server, LEVEL_PATH, &body, Sign::Secret("x")).await;
    assert_eq!(signature.1["description"], "Request signature mismatch");
    assert_eq!(signature.1["errorName"], "app-token-signature-mismatch");
    assert_eq!(server.applicants().len(), 1);
    let statuses: Vec<_> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 401, 401, 401, 401, 401, 401, 401, 201, 401]);
    assert_eq!(server.requests()[8].path, LEVEL_PATH);
}

#[tokio::test]
async fn create_duplicate_and_find_by_external_user_id() {
    let server = SumsubServer::start(SumsubConfig::default()).await;
    let (status, applicant) = create(&server, "user 1@x").await;
    assert_eq!(status, 201, "{applicant}");
    let id = applicant["id"].as_str().unwrap();
    assert!(is_hex(id, 24) && is_hex(applicant["inspectionId"].as_str().unwrap(), 24));
    let created = applicant["createdAt"].as_str().unwrap();
    assert!(chrono::NaiveDateTime::parse_from_str(created, "%Y-%m-%d %H:%M:%S").is_ok());
    assert_eq!(applicant["externalUserId"], "user 1@x");
    assert_eq!(applicant["review"]["reviewStatus"], "init");
    assert_eq!(applicant["review"]["levelName"], "basic-kyc-level");
    let (status, duplicate) = create(&server, "user 1@x").await;
    let description = format!("Applicant with external user id 'user 1@x' already exists: {id}");
    assert_eq!(
        (status, duplicate["description"].as_str()),
        (409, Some(&description[..]))
    );
    let by_external = "/resources/applicants/-;externalUserId=user%201%40x/one";
    assert_eq!(get(&server, by_external).await, (200, applicant.clone()));
    let one = get(&server, &format!("/resources/applicants/{id}/one")).await;
    assert_eq!(one, (200, applicant.clone()));
    let review = get(&server, &format!("/resources/applicants/{id}/status")).await;
    assert_eq!(review, (200, applicant["review"].clone()));
    let missing = get(&server, "/resources/applicants/-;externalUserId=nobody/one").await;
    assert_eq!(missing.0, 404);
    let invalid = get(&server, "/resources/applicants/12313213/one").await;
    assert_eq!(invalid.1["description"], "Invalid id '12313213'");
    let no_level = json!({ "externalUserId": "user-2" });
    for path in [
        "/resources/applicants",
        "/resources/applicants?levelName=other-level",
    ] {
        let (status, answer) = post_json(&server, path, &no_level, OK).await;
        let why = "Existing level should be specified to create an applicant";
        assert_eq!((status, answer["description"].as_str()), (400, Some(why)));
    }
    let bad = post_json(&server, LEVEL_PATH, &json!({ "email": "a@b.c" }), OK).await;
    assert_eq!(bad.0, 400);
    assert_eq!(get(&server, "/resources/levels").await.0, 404);
    let stored = server.applicant_by_external("user 1@x").unwrap();
    assert_eq!(
        (stored["id"].as_str(), stored["documents"].clone()),
        (Some(id), json!([]))
    );
    assert_eq!(server.applicants().len(), 1);
}

#[tokio::test]
async fn upload_a_document_and_request_checks() {
    let server = SumsubServer::start(SumsubConfig::default()).await;
    let (_, applicant) = create(&server, "user-1").await;
    let id = applicant["id"].as_str().unwrap();
    let (status, answer) = request_check(&server, id).await;
    assert_eq!(status, 409, "no document yet: {answer}");
    let (status, doc, headers) = upload(&server, id, Some(FILE)).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc, json!({ "idDocType": "PASSPORT", "country": "GBR" }));
    let image_id = headers["x-image-id"].to_str().unwrap().to_owned();
    let stored = &server.applicants()[0]["documents"][0];
    assert_eq!(stored["size"], FILE.len());
    assert_eq!(stored["sha256"], hex::encode(Sha256::digest(FILE)));
    assert_eq!(
        (&stored["imageId"], &stored["fileName"]),
        (&json!(image_id), &json!("passport.png"))
    );
    assert_eq!(stored["mimeType"], "image/png");
    assert!(!stored.to_string().contains("image bytes"));
    assert_eq!(upload_code(&server, id, FILE).await, (409, 1000));
    assert_eq!(upload_code(&server, id, b"").await, (400, 1003));
    let path = format!("/resources/applicants/{id}/info/idDoc");
    let form = format!("multipart/form-data; boundary={BOUNDARY}");
    let no_country = multipart(r#"{"idDocType":"PASSPORT"}"#, Some(b"other"));
    let truncated = multipart("{}", None)[..20].to_vec();
    let huge = vec![b'x'; MAX_UPLOAD + 1];
    let refused = [
        (no_country, form.as_str(), 400),
        (truncated, form.as_str(), 400),
        (b"{}".to_vec(), "application/json", 400),
        (huge, form.as_str(), 413),
    ];
    for (body, content_type, status) in refused {
        let reply = call(&server, "POST", &path, &body, Some(content_type), OK).await;
        assert_eq!(reply.0, status, "{}", reply.1);
    }
    let documents = server.applicants()[0]["documents"].clone();
    assert_eq!(documents.as_array().unwrap().len(), 1);
    assert_eq!(request_check(&server, id).await, (200, json!({ "ok": 1 })));
    let (_, review) = get(&server, &format!("/resources/applicants/{id}/status")).await;
    assert_eq!(
        (&review["reviewStatus"], &review["attemptCnt"]),
        (&json!("pending"), &json!(1))
    );
    assert_eq!(code(&request_check(&server, id).await), (409, 3000));
    assert_eq!(upload_code(&server, id, b"late").await, (409, 1006));
    let unknown = request_check(&server, "0123456789abcdef01234567").await;
    assert_eq!(unknown.0, 404);
}

#[tokio::test]
async fn injected_faults_change_nothing() {
    let server = SumsubServer::start(SumsubConfig::default()).await;
    server.fail_next(1, 429);
    let (status, answer) = create(&server, "user-1").await;
    assert_eq!((status, &answer["code"]), (429, &json!(429)), "{answer}");
    assert_eq!(answer["description"], "Too many requests");
    assert!(server.applicants().is_empty());
    let (status, applicant) = create(&server, "user-1").await;
    assert_eq!(status, 201);
    let id = applicant["id"].as_str().unwrap();
    upload(&server, id, Some(FILE)).await;
    server.fail_next(2, 503);
    assert_eq!(request_check(&server, id).await.0, 503);
    assert_eq!(upload(&server, id, Some(b"second")).await.0, 503);
    let stored = server.applicant_by_external("user-1").unwrap();
    assert_eq!(stored["review"]["reviewStatus"], "init");
    assert_eq!(stored["documents"].as_array().unwrap().len(), 1);
    // A refused signature does not use up a fault.
    server.fail_next(1, 500);
    let body = json!({ "externalUserId": "user-2" });
    assert_eq!(
        post_json(&server, LEVEL_PATH, &body, Sign::Secret("x"))
            .await
            .0,
        401
    );
    assert_eq!(request_check(&server, id).await.0, 500);
    assert_eq!(request_check(&server, id).await.0, 200);
}

#[tokio::test]
async fn webhooks_are_signed_with_the_configured_algorithm() {
    for alg in [DigestAlg::Sha1, DigestAlg::Sha256, DigestAlg::Sha512] {
        let (url, seen) = receiver().await;
        let config = SumsubConfig {
            digest_alg: alg,
            ..SumsubConfig::default()
        };
        let secret = config.webhook_secret.clone();
        let server = SumsubServer::start(config).await;
        let (_, applicant) = create(&server, "user-1").await;
        let id = applicant["id"].as_str().unwrap();
        assert_eq!(server.send_created(id).await, None, "no URL yet");
        server.set_webhook_url(&url);
        upload(&server, id, Some(FILE)).await;
        request_check(&server, id).await;
        assert_eq!(
            server.send_pending(id).await,
            Some((200, json!({ "ok": true })))
        );
        assert_eq!(server.review(id, ReviewAnswer::Green).await.unwrap().0, 200);
        assert_eq!(server.resend_last().await.unwrap().0, 200);
        let red = ReviewAnswer::Red {
            labels: vec!["FORGERY".to_owned()],
            reject_type: RejectType::Final,
            comment: "Suspected forgery.".to_owned(),
        };
        server.review(id, red).await;
        let got = seen.lock().clone();
        assert_eq!(got.len(), 4);
        for (headers, body) in &got {
            verify(headers, body, &secret, alg);
        }
        assert_eq!(got[1], got[2], "a resend is byte for byte");
        let hooks: Vec<Value> = got
            .iter()
            .map(|(_, b)| serde_json::from_str(b).unwrap())
            .collect();
        let made = server.webhooks();
        assert_eq!(made[0]["type"], "applicantCreated");
        assert_eq!(
            [&hooks[0], &hooks[1], &hooks[3]],
            [&made[1], &made[2], &made[3]]
        );
        let (pending, green, red) = (&hooks[0], &hooks[1], &hooks[3]);
        let common = json!({ "applicantId": id, "inspectionId": applicant["inspectionId"],
            "externalUserId": "user-1", "levelName": "basic-kyc-level", "sandboxMode": true,
            "clientId": CLIENT_ID, "applicantType": "individual" });
        for hook in [pending, green, red] {
            for (name, want) in common.as_object().unwrap() {
                assert_eq!(&hook[name], want, "{name} of {hook}");
            }
            let at = hook["createdAtMs"].as_str().unwrap();
            let parsed = chrono::NaiveDateTime::parse_from_str(at, "%Y-%m-%d %H:%M:%S%.3f");
            assert!(parsed.is_ok() && at.len() == 23, "{at}");
        }
        assert!(green["createdAtMs"].as_str() < red["createdAtMs"].as_str());
        assert_eq!(
            (&pending["type"], &pending["reviewStatus"]),
            (&json!("applicantPending"), &json!("pending"))
        );
        assert_eq!(pending.get("reviewResult"), None);
        assert_eq!(
            (&green["type"], &green["reviewStatus"]),
            (&json!("applicantReviewed"), &json!("completed"))
        );
        assert_eq!(green["reviewResult"], json!({ "reviewAnswer": "GREEN" }));
        assert_eq!(
            red["reviewResult"],
            json!({ "reviewAnswer": "RED", "rejectLabels": ["FORGERY"],
            "reviewRejectType": "FINAL", "moderationComment": "Suspected forgery.",
            "clientComment": "Suspected forgery." })
        );
        let review = &server.applicants()[0]["review"];
        assert_eq!(
            (&review["reviewStatus"], &review["reviewResult"]),
            (&json!("completed"), &red["reviewResult"])
        );
        assert_eq!(upload_code(&server, id, b"after").await, (409, 1009));
        // A forged delivery carries only the headers a test gives it.
        let forged = br#"{"type":"applicantReviewed"}"#;
        let signed = server.sign_webhook(forged);
        let headers = [(signed[0].0, "00"), (signed[1].0, signed[1].1.as_str())];
        assert_eq!(server.send_raw(forged, &headers).await.unwrap().0, 200);
        let (headers, body) = seen.lock().last().cloned().unwrap();
        assert_eq!(
            (headers["x-payload-digest"].to_str().unwrap(), &body[..]),
            ("00", r#"{"type":"applicantReviewed"}"#)
        );
        assert_eq!(server.webhooks().len(), 4, "send_raw records nothing");
    }
}

#[tokio::test]
#[should_panic(expected = "no check was requested")]
async fn reviewing_before_a_check_was_requested_panics() {
    let server = SumsubServer::start(SumsubConfig::default()).await;
    let (_, applicant) = create(&server, "user-1").await;
    server
        .review(applicant["id"].as_str().unwrap(), ReviewAnswer::Green)
        .await;
}
