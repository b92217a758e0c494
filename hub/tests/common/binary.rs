//! The real `nax-hub` binary as a child process of a test: a config file
//! in a data directory of the test's own, the process killed when dropped,
//! and a wait for its `GET /health` that ends on the answer (or on the
//! process's exit), not after a fixed time.
//!
//! Its log (standard output) goes to [`log_path`], and when the test is
//! done with it every line is checked ([`check_log`]): a JSON object with
//! `timestamp`, `level` and `target`, and no secret of the test's
//! configuration (docs/OPERATIONS.md, "Logs").

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::time::Instant;

/// How long a starting binary may take to answer `/health`: generous,
/// since a cold start on two busy cores takes seconds; the wait ends as
/// soon as it answers.
pub const START_WITHIN: Duration = Duration::from_secs(60);

/// How long [`HubProcess::stop`] waits for an orderly stop before a
/// SIGKILL (the hub's drain of WebSocket clients is 5 s by default).
pub const STOP_WITHIN: Duration = Duration::from_secs(30);

/// A `nax-hub` command on 127.0.0.1:`port` with `dir` as its data
/// directory and `toml` written to `dir/test.toml` as its config file,
/// logging at `log_level` (`NAX_LOG`) in the default format (JSON: its
/// output is not a terminal) to [`log_path`]`(dir)`, appended to across
/// restarts; its standard error is the test's.
pub fn command(dir: &Path, port: u16, toml: &str, log_level: &str) -> Command {
    std::fs::create_dir_all(dir).expect("the hub's data directory");
    let config = dir.join("test.toml");
    std::fs::write(&config, toml).expect("the hub's config file");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(dir))
        .expect("the hub's log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_nax-hub"));
    command
        .args(["--config", config.to_str().expect("utf-8 path")])
        .args(["--data-dir", dir.to_str().expect("utf-8 path")])
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .env("NAX_LOG", log_level)
        .stdout(log)
        .stderr(Stdio::inherit());
    command
}

/// Where [`command`] sends the log of a hub whose data directory is `dir`.
pub fn log_path(dir: &Path) -> PathBuf {
    dir.join("nax-hub.log")
}

/// The values in `command`'s configuration that must never be logged: the
/// config file's and the `NAX_*` variables' values whose key names a
/// secret, token, password, key or credentialed URL.
pub fn secrets_of(command: &Command) -> Vec<String> {
    fn secret_name(name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        ["secret", "token", "password", "redis_url", "access_key"]
            .iter()
            .any(|word| name.contains(word))
            && !name.ends_with("_ttl_secs")
    }
    fn walk(value: &toml::Value, key: &str, out: &mut Vec<String>) {
        match value {
            toml::Value::String(s) if secret_name(key) && s.len() >= 8 => out.push(s.clone()),
            toml::Value::Table(t) => t.iter().for_each(|(k, v)| walk(v, k, out)),
            toml::Value::Array(a) => a.iter().for_each(|v| walk(v, key, out)),
            _ => {}
        }
    }
    let mut secrets = Vec::new();
    let args: Vec<_> = command.get_args().collect();
    if let Some(i) = args.iter().position(|a| *a == "--config") {
        let text = std::fs::read_to_string(args[i + 1]).expect("the hub's config file");
        let value: toml::Value = toml::from_str(&text).expect("the hub's config is TOML");
        walk(&value, "", &mut secrets);
    }
    for (name, value) in command.get_envs() {
        let (Some(name), Some(value)) = (name.to_str(), value.and_then(|v| v.to_str())) else {
            continue;
        };
        if name.starts_with("NAX_") && secret_name(name) && value.len() >= 8 {
            secrets.push(value.to_owned());
        }
    }
    secrets
}

/// Checks every line of the log at `path`: a JSON object with string
/// `timestamp`, `level` and `target`, and none of `secrets` (nor the last
/// 24 characters of a long one) anywhere. Returns the parsed lines.
pub fn check_log(path: &Path, secrets: &[String]) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    for secret in secrets {
        let probe = &secret[secret.len().saturating_sub(24)..];
        assert!(
            !text.contains(probe),
            "a secret of the configuration is in {}",
            path.display()
        );
    }
    text.lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"));
            for key in ["timestamp", "level", "target"] {
                assert!(value[key].is_string(), "no {key} in the log line {line}");
            }
            value
        })
        .collect()
}

/// A running `nax-hub` process; killed (SIGKILL) and reaped on drop, then
/// its log checked with [`check_log`] (unless the test is already failing).
pub struct HubProcess {
    child: Child,
    port: u16,
    log: Option<PathBuf>,
    secrets: Vec<String>,
}

impl HubProcess {
    /// Spawns `command` (from [`command`], for `port`) and waits until it
    /// answers `GET /health` with 200.
    pub async fn start(command: Command, port: u16) -> HubProcess {
        let args: Vec<_> = command.get_args().collect();
        let log = args
            .iter()
            .position(|a| *a == "--data-dir")
            .map(|i| log_path(Path::new(args[i + 1])));
        Self::start_logging_to(command, port, log).await
    }

    /// [`start`](Self::start) for a command made another way (e.g. run
    /// through a shell) whose standard output goes to `log`, checked like
    /// [`command`]'s.
    pub async fn start_logging_to(
        mut command: Command,
        port: u16,
        log: Option<PathBuf>,
    ) -> HubProcess {
        let secrets = secrets_of(&command);
        let child = command.spawn().expect("nax-hub starts");
        let mut hub = HubProcess {
            child,
            port,
            log,
            secrets,
        };
        hub.wait_healthy(START_WITHIN).await;
        hub
    }

    /// Adds `secret` (e.g. a key the hub wrote) to what its log must not
    /// hold.
    pub fn forbid(&mut self, secret: &str) {
        self.secrets.push(secret.to_owned());
    }

    /// Stops the process as an operator does: SIGTERM, then SIGKILL if it
    /// is still running after [`STOP_WITHIN`]. The hub writes its log
    /// from a thread of its own, and an orderly stop is what writes the
    /// last lines (a SIGKILL loses those not yet written).
    /// Blocks the caller; on a runtime (multi-threaded: every test here
    /// that stops a hub) its other tasks move to other workers meanwhile,
    /// so a server the hub calls while stopping (an OTLP collector) still
    /// answers.
    pub fn stop(&mut self) {
        sigterm(&self.child);
        let child = &mut self.child;
        let mut wait = move || {
            if exit_within(child, STOP_WITHIN).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(_) => tokio::task::block_in_place(wait),
            Err(_) => wait(),
        }
    }

    /// Stops the process ([`stop`](Self::stop)) and checks its log
    /// ([`check_log`]); returns the parsed lines.
    pub fn stop_and_check_log(&mut self) -> Vec<serde_json::Value> {
        self.stop();
        match self.log.take() {
            Some(log) => check_log(&log, &self.secrets),
            None => Vec::new(),
        }
    }

    /// Stops the process ([`stop`](Self::stop)) and returns its log
    /// file's text unchecked (a test of another log format checks it
    /// itself).
    pub fn stop_and_read_log(&mut self) -> String {
        self.stop();
        self.log
            .take()
            .map(|log| std::fs::read_to_string(log).unwrap_or_default())
            .unwrap_or_default()
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

/// Sends SIGTERM to `child`.
pub fn sigterm(child: &Child) {
    // SAFETY: kill(2) on our own child's pid, which we have not reaped.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0, "SIGTERM sent");
}

/// How `child` exited, if it did within `within` (blocks the caller).
pub fn exit_within(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(log) = self.log.take() {
            if !std::thread::panicking() {
                check_log(&log, &self.secrets);
            }
        }
    }
}
