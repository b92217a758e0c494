//! The real `nax-hub` binary as a child process of a test: a config file
//! in a data directory of the test's own, the process killed when dropped,
//! and a wait for its `GET /health` that ends on the answer (or on the
//! process's exit), not after a fixed time.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;
use tokio::time::Instant;

/// How long a starting binary may take to answer `/health`: generous,
/// since a cold start on two busy cores takes seconds; the wait ends as
/// soon as it answers.
pub const START_WITHIN: Duration = Duration::from_secs(60);

/// A `nax-hub` command on 127.0.0.1:`port` with `dir` as its data
/// directory and `toml` written to `dir/test.toml` as its config file,
/// logging at `log_level` (`NAX_LOG`). Output goes wherever the caller
/// points it (the default is the test's own).
pub fn command(dir: &Path, port: u16, toml: &str, log_level: &str) -> Command {
    std::fs::create_dir_all(dir).expect("the hub's data directory");
    let config = dir.join("test.toml");
    std::fs::write(&config, toml).expect("the hub's config file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_nax-hub"));
    command
        .args(["--config", config.to_str().expect("utf-8 path")])
        .args(["--data-dir", dir.to_str().expect("utf-8 path")])
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .env("NAX_LOG", log_level);
    command
}

/// A running `nax-hub` process; killed (SIGKILL) and reaped on drop.
pub struct HubProcess {
    child: Child,
    port: u16,
}

impl HubProcess {
    /// Spawns `command` (from [`command`], for `port`) and waits until it
    /// answers `GET /health` with 200.
    pub async fn start(mut command: Command, port: u16) -> HubProcess {
        let child = command.spawn().expect("nax-hub starts");
        let mut hub = HubProcess { child, port };
        hub.wait_healthy(START_WITHIN).await;
        hub
    }

    /// Waits until `GET /health` answers 200; panics if the process exits
    /// first or `within` passes.
    pub async fn wait_healthy(&mut self, within: Duration) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("http client");
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("nax-hub exited before answering /health: {status}");
            }
            if let Ok(r) = http.get(format!("{}/health", self.base())).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "nax-hub did not answer /health within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The process id (for `/proc/<pid>/…`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL (std's `kill` on Unix), then reaps the process.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap nax-hub");
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
