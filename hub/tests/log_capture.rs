//! The log of the hubs the tests run in process (`common::logs`): captured
//! as the binary's JSON lines and, when the test process exits, checked for
//! the test's secrets (docs/OPERATIONS.md, "Logs"). Here: a hub's real log
//! passes the check with the users' credentials and the configured secrets
//! registered; a planted secret is found (in the line's text, in a decoded
//! value, by its tail), never quoted; and a test process whose log holds a
//! planted secret exits with status 1 although its test passed.

use crate::common;

use std::process::Command;
use std::time::Duration;

const JWT_SECRET: &str = "capture-test-jwt-key-0123456789abcdef0123456789";
const WEBHOOK_SECRET: &str = "whsec_capture_test_secret_never_logged";
const PLANTED: &str = "planted-secret-value-0123456789-abcdef";

fn secret(kind: &str, value: &str) -> (String, String) {
    (kind.to_owned(), value.to_owned())
}

#[test]
fn a_planted_secret_is_found_and_never_quoted() {
    let secrets = [secret("JWT key", PLANTED)];
    let clean = r#"{"timestamp":"2026-12-05T07:00:00Z","level":"INFO","target":"nax::access","message":"ok"}"#;
    assert!(common::logs::violations(clean, &secrets).is_empty());

    let planted = format!(
        r#"{{"timestamp":"2026-12-05T07:00:00Z","level":"DEBUG","target":"api::auth","token":"{PLANTED}"}}"#
    );
    let found = common::logs::violations(&format!("{clean}\n{planted}"), &secrets);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("line 2 (DEBUG api::auth): holds the JWT key"));
    assert!(!found[0].contains(PLANTED), "the report quotes the secret");

    // Escaped in the line's text (a quote in the secret), found decoded.
    let quoted = "abc\"def-0123456789";
    let line = serde_json::json!({"timestamp": "t", "level": "WARN", "target": "x",
        "message": format!("header {quoted}")})
    .to_string();
    assert!(!line.contains(quoted));
    assert_eq!(
        common::logs::violations(&line, &[secret("password", quoted)]).len(),
        1
    );
    // The last 24 characters of a long secret (a truncated print).
    let tail = &PLANTED[PLANTED.len() - 24..];
    let line = format!(r#"{{"timestamp":"t","level":"INFO","target":"x","message":"…{tail}"}}"#);
    assert_eq!(common::logs::violations(&line, &secrets).len(), 1);
    // A line that is not JSON, and one without a level.
    let found = common::logs::violations("plain text\n{\"timestamp\":\"t\",\"target\":\"x\"}", &[]);
    assert_eq!(
        found,
        [
            "line 1: not JSON (expected value at line 1 column 1)",
            "line 2: no level"
        ]
    );
}

/// Run by `a_test_whose_log_holds_a_secret_fails` in a process of its own
/// (with `NAX_TEST_PLANT` set): a hub config with a secret, then that
/// secret in a log line, or (`NAX_TEST_PLANT=clean`) not.
#[test]
#[ignore = "run as a child process by a_test_whose_log_holds_a_secret_fails"]
fn child_logs_a_planted_secret() {
    let Ok(mode) = std::env::var("NAX_TEST_PLANT") else {
        return;
    };
    common::test_config(|c| c.api.jwt_secret = Some(api::secret::Secret::new(PLANTED)));
    if mode == "plant" {
        tracing::debug!(target: "api::auth", token = PLANTED, "signing");
    } else {
        tracing::debug!(target: "api::auth", "signing");
    }
}

#[test]
fn a_test_whose_log_holds_a_secret_fails() {
    let run = |mode: &str| {
        Command::new(std::env::current_exe().expect("the test binary"))
            .args([
                "--exact",
                &testkit::test_path(module_path!(), "child_logs_a_planted_secret"),
                "--ignored",
                "--nocapture",
            ])
            .env("NAX_TEST_PLANT", mode)
            .env_remove("NAX_TEST_LOG")
            .output()
            .expect("the child test runs")
    };
    let clean = run("clean");
    assert!(
        clean.status.success(),
        "without the secret in its log the child passes: {}",
        String::from_utf8_lossy(&clean.stderr)
    );
    let planted = run("plant");
    let stderr = String::from_utf8_lossy(&planted.stderr);
    assert_eq!(planted.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("holds the JWT key"), "{stderr}");
    assert!(
        !stderr.contains(PLANTED) && !String::from_utf8_lossy(&planted.stdout).contains(PLANTED),
        "the report quotes the secret"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_hubs_log_is_captured_and_holds_no_secret() {
    common::within(Duration::from_secs(60), async {
        let hub = common::start_hub(|c| {
            c.venue.events_per_sec = 20;
            c.api.jwt_secret = Some(api::secret::Secret::new(JWT_SECRET));
            c.api.stripe_webhook_secret = Some(api::secret::Secret::new(WEBHOOK_SECRET));
        })
        .await;
        let base = format!("http://{}", hub.addr);
        let (_, token) =
            common::verified_user(&base, "capture@example.com", "Capture-Password-77").await;
        let r = reqwest::Client::new()
            .get(format!("{base}/users/profile"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        hub.stop().await;
        let lines = common::logs::check();
        let text = common::logs::captured();
        // At the default level (another NAX_TEST_LOG may capture nothing).
        assert!(
            std::env::var_os("NAX_TEST_LOG").is_some()
                || text.lines().any(|l| l.contains(r#""target":"nax::access""#)
                    && l.contains(r#""route":"/users/profile""#)),
            "the hub's access line for the profile was captured ({lines} lines)"
        );
    })
    .await;
}
