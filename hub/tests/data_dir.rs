//! The data directory of the real binary is private whatever the umask:
//! started under `umask 000`, `nax-hub` leaves its data directory at mode
//! 0700 and every directory in it 0700, every file 0600 (the store holds
//! password hashes and TOTP seeds, even sealed; the event log holds
//! emails; `keys/` holds the keys). A data directory an older version left
//! world-readable (0755, files 0644) is tightened at start, not refused.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Hub {
    child: Child,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `nax-hub` on `data_dir`, started by a shell that first sets
/// `umask 000` (the umask is the process's, so the binary inherits it);
/// returns once `/health` answers.
async fn spawn_under_umask_000(data_dir: &Path) -> Hub {
    let port = testkit::free_port();
    let child = Command::new("sh")
        .args(["-c", "umask 000; exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_nax-hub"))
        .args(["--data-dir", data_dir.to_str().unwrap()])
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--events-per-sec", "5"])
        .env("NAX_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("sh runs nax-hub");
    let mut hub = Hub { child };
    let url = format!("http://127.0.0.1:{port}/health");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = hub.child.try_wait() {
            panic!("nax-hub exited: {status}");
        }
        if let Ok(r) = http.get(&url).send().await {
            if r.status() == 200 {
                return hub;
            }
        }
        assert!(Instant::now() < deadline, "nax-hub did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    let hub = spawn_under_umask_000(&data_dir).await;
    assert_private(&data_dir);
    drop(hub);
}

#[tokio::test]
async fn an_old_world_readable_data_dir_is_tightened_at_start() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("data");
    drop(spawn_under_umask_000(&data_dir).await);
    // What an older version left: directories 0755, files 0644.
    for path in entries(&data_dir).into_iter().chain([data_dir.clone()]) {
        let loose = if path.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(loose)).unwrap();
    }
    assert_eq!(mode(&data_dir), 0o755);

    let hub = spawn_under_umask_000(&data_dir).await;
    assert_private(&data_dir);
    drop(hub);
}
