//! The real servers the integration tests of `api` and `hub` run against,
//! on 127.0.0.1: the shared `redis-server` (6379) and `moto_server`
//! (`NAX_TEST_MOTO_PORT`) that `scripts/test.sh` starts, and servers of a
//! test's own on a free port, for outages, a TCP [`Proxy`] a test can
//! cut and restore (an outage of a server whose data must survive it), and
//! an HTTP proxy ([`start_http_proxy`]) that forwards to a server one
//! request at a time or changes chosen exchanges, and a HubSpot-shaped CRM
//! ([`hubspot::HubspotServer`]). A test that needs a
//! server and does not find it panics with what to do; it never skips.

pub mod banxa;
pub mod bcb;
pub mod fireblocks;
mod http_proxy;
pub mod hubspot;
pub mod otlp;
mod proxy;
mod served;
pub mod stripe;
pub mod sumsub;

pub use http_proxy::{start_http_proxy, Rewrite, Step, Unchanged};
pub use proxy::Proxy;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Redis `scripts/test.sh` starts.
pub const SHARED_REDIS: &str = "redis://127.0.0.1:6379";

/// Panics unless the shared Redis accepts connections.
pub fn require_shared_redis() {
    TcpStream::connect(("127.0.0.1", 6379)).unwrap_or_else(|e| {
        panic!("redis-server does not answer on 127.0.0.1:6379: {e} (scripts/test.sh starts it)")
    });
}

/// The shared moto's port; panics when `NAX_TEST_MOTO_PORT` is unset or
/// moto does not answer.
pub fn shared_moto_port() -> u16 {
    let port: u16 = std::env::var("NAX_TEST_MOTO_PORT")
        .expect("NAX_TEST_MOTO_PORT is unset: run scripts/test.sh, or start `moto_server -H 127.0.0.1 -p 5000` and export NAX_TEST_MOTO_PORT=5000")
        .parse()
        .expect("NAX_TEST_MOTO_PORT is not a port number");
    TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("moto_server does not answer on 127.0.0.1:{port}: {e}"));
    port
}

/// `http://127.0.0.1:<shared moto port>`.
pub fn shared_moto_endpoint() -> String {
    format!("http://127.0.0.1:{}", shared_moto_port())
}

/// Lowest port [`free_port`] picks.
const OWN_PORTS_FROM: u16 = 20_000;

/// A port nothing listens on right now, for a server a test starts later
/// (or restarts on it). It is below the kernel's ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`), where every `bind` to port
/// 0 gets its port: a hub or a stub server another test starts meanwhile
/// can then not be handed it before the test's own server binds it (a
/// moto taking a second to start once found a hub on its port). Picked at
/// random among 20,000 up to the range's start and checked by binding it;
/// a port of the ephemeral range only when that range starts lower.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher as _};
    let below = ephemeral_start();
    if below > OWN_PORTS_FROM + 1_000 {
        for _ in 0..200 {
            // Random: std seeds each thread's keys at random and steps
            // them for every new `RandomState`.
            let random = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish();
            let port = OWN_PORTS_FROM + (random % u64::from(below - OWN_PORTS_FROM)) as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The first port of the kernel's ephemeral range (Linux's default where
/// it cannot be read).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A server child process of a test's own, killed on drop.
pub struct OwnServer {
    child: Child,
    port: u16,
}

impl OwnServer {
    /// `redis-server` on `port`, keeping nothing on disk; returns once it
    /// accepts connections.
    pub fn redis(port: u16) -> OwnServer {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"]);
        Self::start(
            command,
            port,
            "redis-server binary on PATH (scripts/test.sh installs it)",
        )
    }

    /// `redis-server` on `port` speaking only TLS, with `password`; its
    /// certificate (for 127.0.0.1) is signed by a CA made in `dir`, whose
    /// certificate is returned (`dir/ca.pem`). Needs the `openssl` command.
    pub fn redis_tls(port: u16, dir: &Path, password: &str) -> (OwnServer, PathBuf) {
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("the openssl command (Debian package openssl)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write ext.cnf");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=nax-test-ca",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        let mut command = Command::new("redis-server");
        command
            .current_dir(dir)
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args(["--tls-cert-file", "srv.pem", "--tls-key-file", "srv.key"])
            .args(["--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no"])
            .args(["--requirepass", password])
            .args(["--save", "", "--appendonly", "no"]);
        let server = Self::start(
            command,
            port,
            "redis-server binary on PATH (scripts/test.sh installs it)",
        );
        (server, dir.join("ca.pem"))
    }

    /// `moto_server` on `port`; returns once it accepts connections. The
    /// command is `NAX_TEST_MOTO_SERVER` where set, else this workspace's
    /// `scripts/lib/moto-server` (what scripts/test.sh sets it to): moto
    /// from the virtualenv scripts/lib/moto.sh makes (or `MOTO_VENV`),
    /// with DynamoDB requests handled one at a time. Never a bare
    /// `moto_server`: its `TransactWriteItems` can lose writes it
    /// acknowledged when transactions run concurrently (moto_server.py
    /// says how), which failed the CRM sync's DynamoDB test once when the
    /// tests ran outside scripts/test.sh.
    pub fn moto(port: u16) -> OwnServer {
        let binary = std::env::var("NAX_TEST_MOTO_SERVER").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/lib/moto-server").into()
        });
        let mut command = Command::new(&binary);
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        Self::start(
            command,
            port,
            &format!(
                "{binary} (NAX_TEST_MOTO_SERVER, else scripts/lib/moto-server with moto's virtualenv; scripts/test.sh installs it)"
            ),
        )
    }

    fn start(mut command: Command, port: u16, missing: &str) -> OwnServer {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {missing}: {e}"));
        let mut server = OwnServer { child, port };
        let started = Instant::now();
        loop {
            // Ours must be the one listening: a server that exited (port
            // taken) fails here, not later against someone else's.
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the server for 127.0.0.1:{port} exited: {status}; started as {missing}");
            }
            // A listener of another process (a port taken between the
            // pick and the start) is not ours: wait for ours to fail.
            if TcpStream::connect(("127.0.0.1", port)).is_ok()
                && listens(server.child.id(), port) != Some(false)
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the server did not start on 127.0.0.1:{port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(50));
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("the server for 127.0.0.1:{port} exited: {status} (port taken?)");
        }
        server
    }

    /// Kills the server and waits until its port is closed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "127.0.0.1:{} still answers after the kill",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether process `pid` holds the socket listening on `port` of
/// 127.0.0.1 (or of every address): the listener's inode in
/// `/proc/net/tcp` among the process's file descriptors. `None` where
/// `/proc` does not tell (no such listener in the table, or no `/proc`).
fn listens(pid: u32, port: u16) -> Option<bool> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = [
        format!("0100007F:{port:04X}"),
        format!("00000000:{port:04X}"),
    ];
    // Fields: sl, local address, remote address, state (0A: listening),
    // tx:rx queues, tr:when, retransmits, uid, timeout, inode.
    let inode = table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let listening = fields.get(3) == Some(&"0A");
        (listening && local.iter().any(|l| fields.get(1) == Some(&l.as_str())))
            .then(|| fields.get(9).map(|inode| format!("socket:[{inode}]")))
            .flatten()
    })?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == inode.as_str())
    }))
}

/// The name by which a test binary's `--exact` filter knows the test
/// `name` of the module `module` (`module_path!()` where the test is
/// defined): the module's path without the crate's name, then `name`.
/// Tests that run their own binary as a child process (a worker to kill,
/// a test whose log must fail) name themselves with it, so the name stays
/// right wherever the file sits in `tests/all.rs`.
pub fn test_path(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_crate, path)) => format!("{path}::{name}"),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every port `free_port` gives is free, outside the ephemeral range
    /// that `bind` to port 0 draws from, and they are spread (a fixed
    /// pick would collide between tests).
    #[test]
    fn free_ports_are_free_and_below_the_ephemeral_range() {
        let below = ephemeral_start();
        assert!(
            below > OWN_PORTS_FROM + 1_000,
            "this host's range starts at {below}"
        );
        let ports: std::collections::BTreeSet<u16> = (0..50).map(|_| free_port()).collect();
        assert!(ports.len() > 40, "{ports:?}");
        for port in ports {
            assert!((OWN_PORTS_FROM..below).contains(&port), "{port}");
            TcpListener::bind(("127.0.0.1", port)).expect("free");
        }
    }

    /// A server whose port another process already listens on is not
    /// taken for started: moto (a second to start) once answered as
    /// started while another test's server held its port.
    #[test]
    fn a_port_someone_else_listens_on_is_not_the_servers() {
        let port = free_port();
        let other = TcpListener::bind(("127.0.0.1", port)).expect("bind");
        assert_eq!(listens(std::process::id(), port), Some(true));
        let started = std::panic::catch_unwind(|| OwnServer::moto(port));
        let message = started.err().expect("moto cannot have started");
        let message = message.downcast_ref::<String>().map_or("", String::as_str);
        assert!(message.contains("exited"), "{message}");
        drop(other);
    }
}
