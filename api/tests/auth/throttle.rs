//! Login throttling over a real socket (`auth::throttle` has the policy):
//! the allowed failures, then waits that grow per (account, address);
//! failures from one address over many accounts; limits on successful
//! logins. Clients bound to 127.0.0.1 and 127.0.0.2 act as two addresses.

use super::{common, login};
use common::{assert_error, PASSWORD};
use serde_json::{json, Value};
use std::time::Duration;

/// Fails `wrong` from `client` until a 429 right after a failure says to
/// wait at least `secs`, waiting out each shorter wait (polling until the
/// attempt is let through). Returns the `Retry-After` of each such 429, in
/// order.
async fn fail_until_waiting(
    t: &common::TestApi,
    client: &reqwest::Client,
    wrong: &Value,
    secs: u64,
) -> Vec<u64> {
    let mut seen = Vec::new();
    let mut just_failed = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no wait of {secs} s within 120 s; waits seen: {seen:?}"
        );
        let (s, body, headers) = t.post_with(client, "/auth/login", wrong.clone()).await;
        if s == 401 {
            assert_error(s, &body, 401, "invalid_credentials");
            just_failed = true;
            continue;
        }
        assert_error(s, &body, 429, "rate_limited");
        if !just_failed {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        just_failed = false;
        let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        seen.push(retry);
        if retry >= secs {
            return seen;
        }
    }
}

/// The allowed failures answer 401; the next attempt from that address,
/// even with the right password, waits (429 with `Retry-After`), and the
/// wait grows with each further failure.
#[tokio::test]
async fn repeated_failures_lock_the_account_with_retry_after() {
    let t = common::start().await;
    t.signup("gina@example.com").await;
    let allowed = t.api.config.login_failures_allowed;
    let wrong = json!({"email": "gina@example.com", "password": "Wrong-Password-1"});
    for _ in 0..allowed {
        let (s, body, _) = login(&t, wrong.clone()).await;
        assert_error(s, &body, 401, "invalid_credentials");
    }
    let (s, body, headers) = login(&t, wrong.clone()).await;
    assert_error(s, &body, 429, "rate_limited");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        retry >= 1 && retry <= t.api.config.login_lockout_secs,
        "{retry}"
    );
    // Past a few more failures the wait is long enough to test reliably.
    fail_until_waiting(&t, &t.http, &wrong, 4).await;
    // Even the right password waits now.
    let (s, body, _) = login(
        &t,
        json!({"email": "gina@example.com", "password": PASSWORD}),
    )
    .await;
    assert_error(s, &body, 429, "rate_limited");
}

#[tokio::test]
async fn a_locked_account_leaves_other_accounts_on_its_ip_alone() {
    let t = common::start().await;
    t.signup("hank@example.com").await;
    let wrong = json!({"email": "hank@example.com", "password": "Wrong-Password-1"});
    fail_until_waiting(&t, &t.http, &wrong, 4).await;
    assert_eq!(login(&t, wrong).await.0, 429);
    t.signup("hank2@example.com").await;
}

/// The lockout cannot be turned against the owner: failures from another
/// address make that address wait, never the owner's.
#[tokio::test]
async fn a_strangers_failures_do_not_stop_the_owner_logging_in() {
    let t = common::start().await;
    t.signup("owner@example.com").await;
    let stranger = common::client_from("127.0.0.2");
    let owner = common::client_from("127.0.0.1");
    let wrong = json!({"email": "owner@example.com", "password": "Wrong-Password-1"});
    let right = json!({"email": "owner@example.com", "password": PASSWORD});
    fail_until_waiting(&t, &stranger, &wrong, 4).await;
    let (s, body, _) = t.post_with(&stranger, "/auth/login", right.clone()).await;
    assert_error(s, &body, 429, "rate_limited");
    let (s, body, _) = t.post_with(&owner, "/auth/login", right).await;
    assert_eq!(s, 200, "the owner is not locked out: {body}");
}

#[tokio::test]
async fn the_failing_address_waits_longer_after_each_failure() {
    let t = common::start().await;
    t.signup("paul@example.com").await;
    let stranger = common::client_from("127.0.0.2");
    let wrong = json!({"email": "paul@example.com", "password": "Wrong-Password-1"});
    let waits = fail_until_waiting(&t, &stranger, &wrong, 4).await;
    assert!(waits.len() >= 3, "{waits:?}");
    assert!(
        waits.windows(2).all(|w| w[0] < w[1]),
        "Retry-After grows: {waits:?}"
    );
}

/// Successful logins are limited per account (from any address) and per
/// address (over any accounts).
#[tokio::test]
async fn successful_logins_are_limited_per_account_and_per_address() {
    let t = common::start_with(api::ApiConfig {
        login_successes_per_account_per_minute: 2,
        login_successes_per_address_per_minute: 3,
        ..common::test_config()
    })
    .await;
    let (here, there) = (
        common::client_from("127.0.0.1"),
        common::client_from("127.0.0.2"),
    );
    t.signup("quinn@example.com").await; // one login from 127.0.0.1
    let quinn = json!({"email": "quinn@example.com", "password": PASSWORD});
    let (s, body, _) = t.post_with(&here, "/auth/login", quinn.clone()).await;
    assert_eq!(s, 200, "{body}");
    for client in [&here, &there] {
        let (s, body, headers) = t.post_with(client, "/auth/login", quinn.clone()).await;
        assert_error(s, &body, 429, "rate_limited");
        let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
    }

    let (s, body, _) = t
        .post(
            "/auth/register",
            None,
            json!({"email": "rita@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let rita = json!({"email": "rita@example.com", "password": PASSWORD});
    let (s, body, _) = t.post_with(&here, "/auth/login", rita.clone()).await;
    assert_eq!(s, 200, "{body}");
    // 127.0.0.1 has used its 3; rita has 1 left, from elsewhere.
    let (s, body, _) = t.post_with(&here, "/auth/login", rita.clone()).await;
    assert_error(s, &body, 429, "rate_limited");
    let (s, body, _) = t.post_with(&there, "/auth/login", rita).await;
    assert_eq!(s, 200, "{body}");
}

#[tokio::test]
async fn repeated_failures_from_one_ip_lock_every_account() {
    let t = common::start_with(api::ApiConfig {
        login_failures_allowed: 2,
        ..common::test_config()
    })
    .await;
    t.signup("hank@example.com").await;
    let per_ip = 2 * api::auth::throttle::IP_ALLOWANCE_FACTOR;
    for i in 0..per_ip {
        let (s, body, _) = login(
            &t,
            json!({"email": format!("guess{i}@example.com"), "password": PASSWORD}),
        )
        .await;
        assert_error(s, &body, 401, "invalid_credentials");
    }
    let (s, body, headers) = login(
        &t,
        json!({"email": "hank@example.com", "password": PASSWORD}),
    )
    .await;
    assert_error(s, &body, 429, "rate_limited");
    assert!(headers.contains_key("retry-after"));
}
