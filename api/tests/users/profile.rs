//! `GET/PUT /users/profile`.

use crate::common::{self, assert_error};
use crate::users::{kyc_status, wait_event};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn profile_is_read_and_updated() {
    let t = common::start().await;
    let (user_id, token, _) = t.signup("Ada.Profile@Example.com").await;
    let (s, p, _) = t.get("/users/profile", Some(&token)).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["user_id"], user_id.as_str());
    assert_eq!(p["email"], "ada.profile@example.com");
    for field in ["first_name", "last_name", "phone", "country"] {
        assert_eq!(p[field], Value::Null, "{field}");
    }
    assert_eq!(p["kyc_status"], "NONE");
    assert_eq!(p["mfa_enabled"], false);
    let created = p["created_at"].as_str().expect("created_at");
    chrono::DateTime::parse_from_rfc3339(created).expect("RFC 3339");

    let update = json!({"first_name": " Ada ", "last_name": "Lovelace", "phone": "+447700900123", "country": "GB"});
    let (s, p, _) = t.put("/users/profile", Some(&token), update).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["first_name"], "Ada", "trimmed");
    assert_eq!(p["last_name"], "Lovelace");
    assert_eq!(p["phone"], "+447700900123");
    assert_eq!(p["country"], "GB");
    assert_eq!(p["created_at"], created);

    // A partial update touches only what it names.
    let (s, p, _) = t
        .put("/users/profile", Some(&token), json!({"country": "FR"}))
        .await;
    assert_eq!(s, 200, "{p}");
    let (_, got, _) = t.get("/users/profile", Some(&token)).await;
    assert_eq!(got, p);
    assert_eq!(got["first_name"], "Ada");
    assert_eq!(got["country"], "FR");

    // An empty update changes nothing and answers the profile.
    let (s, same, _) = t.put("/users/profile", Some(&token), json!({})).await;
    assert_eq!((s, &same), (200, &got));

    let event = wait_event(&t, &user_id, |e| {
        e.event_type == "user.profile_updated" && e.data["fields"] == json!(["country"])
    })
    .await;
    assert!(!event.correlation_id.is_empty());
    let updates = t
        .events()
        .iter()
        .filter(|e| e.event_type == "user.profile_updated")
        .count();
    assert_eq!(updates, 2, "one event per change, none for a no-op");
}

#[tokio::test]
async fn users_routes_need_a_bearer_token() {
    let t = common::start().await;
    for token in [None, Some("not-a-jwt")] {
        let (s, b, _) = t.get("/users/profile", token).await;
        assert_error(s, &b, 401, "unauthorized");
        let (s, b, _) = t
            .put("/users/profile", token, json!({"first_name": "X"}))
            .await;
        assert_error(s, &b, 401, "unauthorized");
        let (s, b, _) = t.get("/users/kyc-status", token).await;
        assert_error(s, &b, 401, "unauthorized");
        let doc = json!({"document_type": "passport", "content_base64": "aGVsbG8="});
        let (s, b, _) = t.post("/users/kyc-documents", token, doc).await;
        assert_error(s, &b, 401, "unauthorized");
    }
}

#[tokio::test]
async fn fields_a_user_may_not_set_are_400_and_never_applied() {
    let t = common::start().await;
    let (user_id, token, _) = t.signup("mass@example.com").await;
    let (_, before, _) = t
        .put(
            "/users/profile",
            Some(&token),
            json!({"first_name": "Grace"}),
        )
        .await;
    for body in [
        json!({"kyc_status": "VERIFIED"}),
        json!({"first_name": "Mallory", "kyc_status": "VERIFIED"}),
        json!({"email": "other@example.com"}),
        json!({"user_id": "someone-else"}),
        json!({"last_name": "X", "is_admin": true}),
        json!({"mfa_enabled": false}),
    ] {
        let (s, b, _) = t.put("/users/profile", Some(&token), body.clone()).await;
        assert_error(s, &b, 400, "unknown_field");
        let field = body
            .as_object()
            .unwrap()
            .keys()
            .find(|k| !["first_name", "last_name"].contains(&k.as_str()))
            .unwrap();
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field.as_str()),
            "names {field}: {b}"
        );
    }
    let (_, after, _) = t.get("/users/profile", Some(&token)).await;
    assert_eq!(after, before, "nothing applied");
    assert_eq!(after["kyc_status"], "NONE");
    assert_eq!(after["first_name"], "Grace");
    assert_eq!(after["email"], "mass@example.com");
    assert_eq!(after["user_id"], user_id.as_str());
    assert_eq!(kyc_status(&t, &token).await, "NONE");
}

#[tokio::test]
async fn invalid_profile_fields_are_422_naming_the_field() {
    let t = common::start().await;
    let (_, token, _) = t.signup("valid@example.com").await;
    let (_, before, _) = t
        .put(
            "/users/profile",
            Some(&token),
            json!({"first_name": "Ok", "phone": "+12025550123", "country": "US"}),
        )
        .await;
    let long = "x".repeat(101);
    let cases = [
        (json!({"first_name": ""}), "first_name"),
        (json!({"first_name": "   "}), "first_name"),
        (json!({"first_name": long}), "first_name"),
        (json!({"last_name": "Bad\u{0007}Name"}), "last_name"),
        (json!({"last_name": "Two\nLines"}), "last_name"),
        (json!({"phone": "12025550123"}), "phone"),
        (json!({"phone": "+1 202 555 0123"}), "phone"),
        (json!({"phone": "+1234567"}), "phone"),
        (json!({"phone": "+1234567890123456"}), "phone"),
        (json!({"country": "us"}), "country"),
        (json!({"country": "XX"}), "country"),
        (json!({"country": "USA"}), "country"),
        (json!({"first_name": 5}), "first_name"),
        // A valid field does not rescue an invalid one in the same body.
        (json!({"first_name": "Fine", "country": "ZZ"}), "country"),
    ];
    for (body, field) in cases {
        let (s, b, _) = t.put("/users/profile", Some(&token), body.clone()).await;
        assert_error(s, &b, 422, "invalid_field");
        let message = b["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("{field}:")), "{body} -> {b}");
    }
    // 100 characters (not bytes) is the limit.
    let (s, b, _) = t
        .put(
            "/users/profile",
            Some(&token),
            json!({"last_name": "é".repeat(100)}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b, _) = t
        .put("/users/profile", Some(&token), json!({"last_name": null}))
        .await;
    assert_eq!(s, 200, "null leaves a field as it is: {b}");

    let resp = t
        .http
        .put(t.url("/users/profile"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"first_name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    let (_, after, _) = t.get("/users/profile", Some(&token)).await;
    assert_eq!(after["first_name"], before["first_name"]);
    assert_eq!(after["phone"], before["phone"]);
    assert_eq!(after["country"], before["country"]);
}

#[tokio::test]
async fn concurrent_updates_never_lose_a_write_silently() {
    let t = common::start().await;
    let (user_id, token, _) = t.signup("race@example.com").await;
    let names: Vec<String> = (0..8).map(|i| format!("Name{i}")).collect();
    let results = futures_join(&t, &token, &names).await;
    let mut won = Vec::new();
    for (name, (s, b)) in names.iter().zip(results) {
        match s {
            200 => won.push(name.clone()),
            409 => assert_eq!(b["error"]["code"], "concurrent_update", "{b}"),
            _ => panic!("unexpected {s}: {b}"),
        }
    }
    assert!(!won.is_empty());
    let (_, p, _) = t.get("/users/profile", Some(&token)).await;
    assert!(won.contains(&p["first_name"].as_str().unwrap().to_owned()));
    let updated = || {
        t.events()
            .into_iter()
            .filter(|e| {
                e.user_id.as_deref() == Some(user_id.as_str())
                    && e.event_type == "user.profile_updated"
            })
            .count()
    };
    // Every applied update's event, however long the relay takes...
    let deadline = tokio::time::Instant::now() + crate::users::WAIT;
    while updated() < won.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {} events within {:?}",
            updated(),
            won.len(),
            crate::users::WAIT
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ...and, a while later, no more.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(updated(), won.len(), "one event per applied update");
}

async fn futures_join(t: &common::TestApi, token: &str, names: &[String]) -> Vec<(u16, Value)> {
    let tasks: Vec<_> = names
        .iter()
        .map(|n| {
            let req = t
                .http
                .put(t.url("/users/profile"))
                .bearer_auth(token)
                .json(&json!({"first_name": n}));
            tokio::spawn(async move {
                let resp = req.send().await.unwrap();
                let s = resp.status().as_u16();
                (s, resp.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}
