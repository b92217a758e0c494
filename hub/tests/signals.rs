//! The real `nax-hub` binary and SIGTERM: a serving hub stops in order
//! (exit 0, its last lines written), and so does one that gets the signal
//! while it is still starting: the handlers are installed before the
//! start, so the signal is kept until the hub has started instead of
//! ending the process at once (docs/OPERATIONS.md, "Draining a node").

use crate::common;

use common::binary::{self, exit_within, sigterm, HubProcess};
use std::path::Path;
use std::time::{Duration, Instant};

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(binary::log_path(dir)).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_serving_hub_in_order() {
    let dir = common::fresh_data_dir();
    let port = testkit::free_port();
    let command = binary::command(&dir, port, "[venue]\nevents_per_sec = 5\n", "info");
    let mut hub = HubProcess::start(command, port).await;
    hub.stop();
    let log = log_of(&dir);
    assert!(log.contains("received SIGTERM, shutting down"), "{log}");
    assert!(log.contains("serving: ws://"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_while_starting_stops_the_hub_in_order_once_started() {
    let dir = common::fresh_data_dir();
    let port = testkit::free_port();
    let mut command = binary::command(&dir, port, "[venue]\nevents_per_sec = 5\n", "info");
    let mut child = command.spawn().expect("nax-hub starts");
    // Its first line is written once the handlers are installed (and
    // before the start, which takes a while: keys, the store, the venue).
    let deadline = Instant::now() + binary::START_WITHIN;
    while !log_of(&dir).contains("starting nax-hub") {
        assert!(Instant::now() < deadline, "no first line: {}", log_of(&dir));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the hub exited before its first line"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    sigterm(&child);
    let status = tokio::task::block_in_place(|| exit_within(&mut child, Duration::from_secs(60)))
        .expect("the hub exits within 60 s of a SIGTERM");
    let log = log_of(&dir);
    assert!(
        status.success(),
        "{status} (not an orderly exit); log: {log}"
    );
    assert!(log.contains("received SIGTERM, shutting down"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
