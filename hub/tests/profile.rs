//! `profile = "production"` on the real binary: with the embedded
//! defaults `nax-hub` exits at once, non-zero, naming every stand-in on
//! stderr, without listening or writing a data directory; the same
//! command in the default profile starts.

use crate::common;

use common::binary::{self, HubProcess};
use std::process::Stdio;
use std::time::Duration;

#[tokio::test]
async fn production_refuses_to_start_on_stand_ins_and_development_starts() {
    let dir = common::fresh_data_dir().join("data");
    let port = testkit::free_port();
    let mut command = binary::command(&dir, port, "[venue]\nevents_per_sec = 5\n", "warn");
    // The config file lives in the data directory, so check only what
    // the hub itself would create there.
    command
        .env("NAX_PROFILE", "production")
        .env(
            "NAX_STRIPE_WEBHOOK_SECRET",
            "whsec_must_not_be_printed_0123",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let run = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || command.output()),
    )
    .await
    .expect("nax-hub exits by itself")
    .unwrap()
    .expect("nax-hub runs");
    assert!(!run.status.success(), "{:?}", run.status);
    let stderr = String::from_utf8_lossy(&run.stderr);
    for part in [
        "profile = production",
        "venue is the in-process sandbox",
        "payment provider is the sandbox",
        "custody provider is the sandbox",
        "KYC provider is the sandbox",
        "access-token key would be generated",
        "store is the embedded file",
    ] {
        assert!(stderr.contains(part), "{part:?} not in: {stderr}");
    }
    assert!(!stderr.contains("whsec_must_not_be_printed"), "{stderr}");
    let created: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        // The config file and the (empty) log file are the test's.
        .filter(|name| name != "test.toml" && name != "nax-hub.log")
        .collect();
    assert!(created.is_empty(), "nothing written: {created:?}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens"
    );

    let command = binary::command(&dir, port, "[venue]\nevents_per_sec = 5\n", "warn");
    let _hub = HubProcess::start(command, port).await;
}
