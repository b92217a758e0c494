//! `/users` routes over a real socket: profile reads and updates with
//! validation and mass-assignment protection (`users/profile.rs`), the KYC
//! flow with the sandbox provider (`users/kyc.rs`), the rate limiter's
//! headers and 429s and the OpenAPI entries (`users/limits.rs`).

use crate::common;

/// The cases, in `users/`.
pub mod kyc;
pub mod limits;
pub mod profile;

use std::time::Duration;

/// How long the helpers wait for asynchronous effects (generous: a loaded
/// CI machine).
const WAIT: Duration = Duration::from_secs(20);

/// Waits until the event log holds an event of `user_id` matching `pred`.
pub async fn wait_event(
    t: &common::TestApi,
    user_id: &str,
    pred: impl Fn(&api::events::Event) -> bool,
) -> api::events::Event {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        let found = t
            .events()
            .into_iter()
            .find(|e| e.user_id.as_deref() == Some(user_id) && pred(e));
        if let Some(e) = found {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("event not published; log: {:?}", t.events());
}

pub async fn kyc_status(t: &common::TestApi, token: &str) -> String {
    let (s, body, _) = t.get("/users/kyc-status", Some(token)).await;
    assert_eq!(s, 200, "{body}");
    body["kyc_status"].as_str().expect("kyc_status").to_owned()
}

pub async fn wait_kyc(t: &common::TestApi, token: &str, want: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if kyc_status(t, token).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("KYC status never became {want}");
}
