//! Sign-in state two API nodes share through Redis: the TOTP replay
//! guard (a code spent on one node, by a login or by enabling MFA, is
//! refused on the other) and the login throttle (failures on either node
//! count as one; a stranger's failures never stop the owner).

use super::{common, fresh_prefix, two_api_nodes, two_api_nodes_with};
use serde_json::{json, Value};
use std::time::Duration;

/// The current TOTP code of `secret`, `steps` steps ahead.
fn totp_code(secret: &str, steps: u64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes)
        .unwrap()
        .generate(now + 30 * steps)
}

/// Signs up on `node` and starts MFA setup; returns (email, access
/// token, seed).
async fn with_mfa_pending(node: &common::TestApi) -> (String, String, String) {
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let (_, access, _) = node.signup(&email).await;
    let (s, setup, _) = node.post("/auth/mfa/setup", Some(&access), json!({})).await;
    assert_eq!(s, 200, "{setup}");
    let secret = setup["secret"].as_str().unwrap().to_owned();
    (email, access, secret)
}

#[tokio::test]
async fn a_totp_code_used_on_one_node_cannot_sign_in_on_another() {
    let prefix = fresh_prefix("totp");
    let (a, b, _dir) = two_api_nodes(&prefix).await;
    let (email, access, secret) = with_mfa_pending(&a).await;
    let (s, body, _) = a
        .post(
            "/auth/mfa/verify",
            Some(&access),
            json!({"code": totp_code(&secret, 0)}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    // The next step's code: the current one was spent enabling MFA.
    let with_code =
        json!({"email": email, "password": common::PASSWORD, "totp": totp_code(&secret, 1)});
    let (s, body, _) = a.post("/auth/login", None, with_code.clone()).await;
    assert_eq!(s, 200, "{body}");
    let (s, body, _) = b.post("/auth/login", None, with_code).await;
    common::assert_error(s, &body, 401, "invalid_totp");
}

#[tokio::test]
async fn the_code_that_enabled_mfa_on_one_node_cannot_sign_in_on_another() {
    let prefix = fresh_prefix("totp-verify");
    let (a, b, _dir) = two_api_nodes(&prefix).await;
    let (email, access, secret) = with_mfa_pending(&a).await;
    let code = totp_code(&secret, 0);
    let (s, body, _) = a
        .post("/auth/mfa/verify", Some(&access), json!({"code": code}))
        .await;
    assert_eq!(s, 200, "{body}");
    let (s, body, _) = b
        .post(
            "/auth/login",
            None,
            json!({"email": email, "password": common::PASSWORD, "totp": code}),
        )
        .await;
    common::assert_error(s, &body, 401, "invalid_totp");
}

/// Fails `wrong` from `client` on the nodes in turn until a 429 right
/// after a failure says to wait at least `secs` (waiting out shorter
/// waits); returns the `Retry-After` of each such 429, in order.
async fn fail_across_nodes_until_waiting(
    nodes: [&common::TestApi; 2],
    client: &reqwest::Client,
    wrong: &Value,
    secs: u64,
) -> Vec<u64> {
    let mut seen = Vec::new();
    let mut just_failed = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    for turn in 0.. {
        assert!(
            std::time::Instant::now() < deadline,
            "no wait of {secs} s within 120 s; waits seen: {seen:?}"
        );
        let node = nodes[turn % 2];
        let (s, body, headers) = node.post_with(client, "/auth/login", wrong.clone()).await;
        if s == 401 {
            common::assert_error(s, &body, 401, "invalid_credentials");
            just_failed = true;
            continue;
        }
        common::assert_error(s, &body, 429, "rate_limited");
        if !just_failed {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        just_failed = false;
        let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        seen.push(retry);
        if retry >= secs {
            break;
        }
    }
    seen
}

/// Failures on both nodes count as one: the failing address waits on
/// every node, longer after each failure. (Each probe right after a
/// failure goes to the other node, so a node sees the wait another node's
/// failure earned.)
#[tokio::test]
async fn failed_logins_count_across_nodes() {
    let prefix = fresh_prefix("throttle");
    let (a, b, _dir) = two_api_nodes_with(&prefix, |c| {
        c.login_failures_allowed = 3;
        c.login_lockout_secs = 60;
    })
    .await;
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    a.signup(&email).await;
    let wrong = json!({"email": email, "password": "Wrong-Password-1"});
    let waits = fail_across_nodes_until_waiting([&a, &b], &a.http, &wrong, 4).await;
    assert!(
        waits.windows(2).all(|w| w[0] < w[1]),
        "Retry-After grows: {waits:?}"
    );
    // The wait holds on both nodes, even for the right password.
    let right = json!({"email": email, "password": common::PASSWORD});
    for node in [&b, &a] {
        let (s, body, headers) = node.post("/auth/login", None, right.clone()).await;
        common::assert_error(s, &body, 429, "rate_limited");
        assert!(headers.contains_key("retry-after"));
    }
}

#[tokio::test]
async fn a_strangers_failures_on_both_nodes_do_not_stop_the_owner() {
    let prefix = fresh_prefix("throttle-owner");
    let (a, b, _dir) = two_api_nodes(&prefix).await;
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    a.signup(&email).await;
    let stranger = common::client_from("127.0.0.2");
    let owner = common::client_from("127.0.0.1");
    let wrong = json!({"email": email, "password": "Wrong-Password-1"});
    let right = json!({"email": email, "password": common::PASSWORD});
    fail_across_nodes_until_waiting([&a, &b], &stranger, &wrong, 4).await;
    for node in [&a, &b] {
        let (s, body, _) = node
            .post_with(&stranger, "/auth/login", right.clone())
            .await;
        common::assert_error(s, &body, 429, "rate_limited");
        let (s, body, _) = node.post_with(&owner, "/auth/login", right.clone()).await;
        assert_eq!(s, 200, "the owner is not locked out: {body}");
    }
}
