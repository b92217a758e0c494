//! `nax-hub healthcheck`, the container image's health probe: exit 0 when
//! the hub (its own configured port, or `--url`) answers 2xx, exit 1 with
//! the reason on standard error when it does not.

use crate::common;

use common::binary::{self, HubProcess};
use std::process::{Command, Output};

fn healthcheck(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nax-hub"));
    command.arg("healthcheck").args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("nax-hub healthcheck runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_passes_on_a_serving_hub_and_fails_on_a_closed_port() {
    let dir = common::fresh_data_dir();
    let port = testkit::free_port();
    let command = binary::command(&dir, port, "[venue]\nevents_per_sec = 5\n", "warn");
    let hub = HubProcess::start(command, port).await;

    let url = format!("{}/health", hub.base());
    let ok = tokio::task::spawn_blocking(move || healthcheck(&["--url", &url], &[]))
        .await
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");

    // Without --url: the port and address of the configuration.
    let env = vec![
        ("NAX_PORT", port.to_string()),
        ("NAX_BIND", "127.0.0.1".to_owned()),
    ];
    let own = tokio::task::spawn_blocking(move || healthcheck(&[], &env))
        .await
        .unwrap();
    assert!(own.status.success(), "{own:?}");

    // A 404 is not healthy.
    let url = format!("{}/no-such-route", hub.base());
    let missing = tokio::task::spawn_blocking(move || healthcheck(&["--url", &url], &[]))
        .await
        .unwrap();
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404"));

    drop(hub);
    let closed = testkit::free_port();
    let url = format!("http://127.0.0.1:{closed}/health");
    let down = tokio::task::spawn_blocking(move || {
        healthcheck(&["--url", &url, "--timeout-ms", "1000"], &[])
    })
    .await
    .unwrap();
    assert_eq!(down.status.code(), Some(1), "{down:?}");
    assert!(!down.stderr.is_empty(), "says why");
    let _ = std::fs::remove_dir_all(&dir);
}
