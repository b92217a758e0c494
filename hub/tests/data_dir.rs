//! The data directory of the real binary is private whatever the umask:
//! started under `umask 000`, `nax-hub` leaves its data directory at mode
//! 0700 and every directory in it 0700, every file 0600 (the store holds
//! password hashes and TOTP seeds, even sealed; the event log holds
//! emails; `keys/` holds the keys). A data directory an older version left
//! world-readable (0755, files 0644) is tightened at start, not refused.
//! Its log is checked like every spawned hub's (`common::binary`).

use crate::common;

use common::binary::HubProcess;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `nax-hub` on `data_dir`, started by a shell that first sets
/// `umask 000` (the umask is the process's, so the binary inherits it);
/// returns once `/health` answers. Its log goes to `log` (outside the
/// data directory, whose modes the tests check) and is checked like
/// every spawned hub's (`common::binary`), with the keys it wrote among
/// the secrets.
async fn spawn_under_umask_000(data_dir: &Path, log: &Path) -> HubProcess {
    let port = testkit::free_port();
    let output = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("the hub's log file");
    let mut command = Command::new("sh");
    command
        .args(["-c", "umask 000; exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_nax-hub"))
        .args(["--data-dir", data_dir.to_str().unwrap()])
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--events-per-sec", "5"])
        .env("NAX_LOG", "debug")
        .stdout(output)
        .stderr(Stdio::inherit());
    let mut hub = HubProcess::start_logging_to(command, port, Some(log.to_owned())).await;
    for key in ["keys/jwt.key", "keys/data.key"] {
        let text = std::fs::read_to_string(data_dir.join(key)).expect("the hub's key");
        for line in text.lines().map(str::trim) {
            if line.len() >= 16 && !line.starts_with("-----") {
                hub.forbid(line);
            }
        }
    }
    hub
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// Every entry under `dir` (not `dir` itself), depth first.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(entries(&path));
        }
        out.push(path);
    }
    out
}

/// Asserts the data directory and everything in it are owner-only, and
/// that the files the service keeps there exist.
fn assert_private(data_dir: &Path) {
    let mut loose = Vec::new();
    if mode(data_dir) != 0o700 {
        loose.push(format!("{} {:o}", data_dir.display(), mode(data_dir)));
    }
    for path in entries(data_dir) {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        if mode(&path) != want {
            loose.push(format!("{} {:o}", path.display(), mode(&path)));
        }
    }
    assert!(loose.is_empty(), "not owner-only: {loose:#?}");
    for file in [
        "store.redb",
        "events.ndjson",
        "keys/jwt.key",
        "keys/data.key",
    ] {
        assert!(data_dir.join(file).is_file(), "{file} missing");
    }
}

#[tokio::test]
async fn under_umask_000_a_fresh_data_dir_is_0700_and_every_file_in_it_0600() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("data");
    let hub = spawn_under_umask_000(&data_dir, &root.path().join("nax-hub.log")).await;
    assert_private(&data_dir);
    drop(hub);
}

#[tokio::test]
async fn an_old_world_readable_data_dir_is_tightened_at_start() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("data");
    let log = root.path().join("nax-hub.log");
    drop(spawn_under_umask_000(&data_dir, &log).await);
    // What an older version left: directories 0755, files 0644.
    for path in entries(&data_dir).into_iter().chain([data_dir.clone()]) {
        let loose = if path.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(loose)).unwrap();
    }
    assert_eq!(mode(&data_dir), 0o755);

    let hub = spawn_under_umask_000(&data_dir, &log).await;
    assert_private(&data_dir);
    drop(hub);
}
