//! Redis for tests: the shared server on 127.0.0.1:6379 (scripts/test.sh
//! starts it; tests using it fail without it), and a `redis-server` of a
//! test's own on a free port, for outages.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

pub const SHARED_REDIS: &str = "redis://127.0.0.1:6379";

/// A key prefix no other test run uses.
pub fn fresh_prefix(what: &str) -> String {
    format!("nax:test:{what}:{}:", uuid::Uuid::new_v4().simple())
}

/// A `redis-server` child process, killed on drop.
pub struct OwnRedis {
    child: Child,
}

impl OwnRedis {
    pub fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server binary on PATH (scripts/test.sh installs it)");
        OwnRedis { child }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
