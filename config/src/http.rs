//! The `[http]` section: what the HTTP server allows a connection before
//! it has sent a request, between requests, and per peer address; and
//! which peers are trusted proxies (`listener.rs` enforces it).

use super::ConfigError;
use api::http::TrustedProxies;
use serde::{Deserialize, Serialize};

/// Connection-level limits of the HTTP server (TOML section `[http]`).
/// After validation every value is within the range its field names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Time a connection has to send a complete request head (request line
    /// and headers), counted from its accept and, on a kept-alive
    /// connection, from the first byte of its next request; a deadline for
    /// the whole head, not per byte. Then it is closed. 100 ms to 300 s.
    pub header_timeout_ms: u64,
    /// Time a kept-alive connection may stay silent after a response
    /// before it is closed. 100 ms to 1 h.
    pub idle_timeout_ms: u64,
    /// [`idle_timeout_ms`](Self::idle_timeout_ms) for connections from
    /// trusted proxies: keep it above the load balancer's own idle timeout
    /// (the ALB's is 120 s), so the hub never closes a connection the
    /// balancer is about to reuse (which the client would see as a 502).
    /// 100 ms to 1 h.
    pub proxy_idle_timeout_ms: u64,
    /// Largest request head, bytes; a larger one gets 431 and the
    /// connection is closed. Also bounds what an unfinished head can hold
    /// in memory. 8 KiB to 1 MiB (hyper's smallest buffer is 8 KiB).
    pub max_head_bytes: usize,
    /// Open connections (WebSocket ones included) per peer address, IPv6
    /// counted per /64; a further connection is closed as soon as it is
    /// accepted. Trusted proxies are not capped. At least 1.
    pub max_connections_per_ip: usize,
    /// Peers (IP addresses or CIDR blocks; in production the load
    /// balancer's subnets) whose `X-Forwarded-For` names the client and
    /// whose connections are not capped per address. Empty by default:
    /// every peer is the client.
    pub trusted_proxies: TrustedProxies,
    /// A request answered later than this (ms) counts in
    /// `nax_http_slow_requests_total`: the REST latency alarm fires when
    /// over 1 % of requests are slow, i.e. when p99 is above this
    /// (docs/OPERATIONS.md, "Metrics"). 1 to 60,000.
    pub slow_request_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            proxy_idle_timeout_ms: 130_000,
            max_head_bytes: 16 * 1024,
            max_connections_per_ip: 64,
            trusted_proxies: TrustedProxies::default(),
            slow_request_ms: 500,
        }
    }
}

/// Smallest `max_head_bytes`: hyper refuses a read buffer under 8 KiB.
pub const MIN_HEAD_BYTES: usize = 8 * 1024;

impl HttpConfig {
    /// Checks every range documented on the fields.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        within(
            "http.header_timeout_ms",
            self.header_timeout_ms,
            100,
            300_000,
        )?;
        within("http.idle_timeout_ms", self.idle_timeout_ms, 100, 3_600_000)?;
        within(
            "http.proxy_idle_timeout_ms",
            self.proxy_idle_timeout_ms,
            100,
            3_600_000,
        )?;
        within(
            "http.max_head_bytes",
            self.max_head_bytes as u64,
            MIN_HEAD_BYTES as u64,
            1024 * 1024,
        )?;
        within(
            "http.max_connections_per_ip",
            self.max_connections_per_ip as u64,
            1,
            u64::MAX,
        )?;
        within("http.slow_request_ms", self.slow_request_ms, 1, 60_000)
    }
}

/// `Ok` when `min <= value <= max`.
fn within(key: &'static str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    let reason = if max == u64::MAX {
        format!("must be at least {min}")
    } else {
        format!("must be between {min} and {max}")
    };
    Err(ConfigError::Invalid {
        key,
        value: value.to_string(),
        reason,
    })
}

/// `NAX_TRUSTED_PROXIES` / `--trusted-proxies`: a comma-separated list.
pub(super) fn parse_trusted_proxies(list: &str) -> Result<TrustedProxies, String> {
    list.parse()
        .map_err(|e: api::http::client_ip::InvalidProxy| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError};
    use std::io::Write as _;

    fn load(args: &[&str], vars: &[(&str, &str)]) -> anyhow::Result<Config> {
        let argv = std::iter::once("nax-hub").chain(args.iter().copied());
        let env = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::load_from(argv, env)
    }

    fn invalid_key(result: anyhow::Result<Config>) -> &'static str {
        match result.unwrap_err().downcast::<ConfigError>().unwrap() {
            ConfigError::Invalid { key, .. } => key,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn http_defaults() {
        let http = load(&[], &[]).unwrap().http;
        assert_eq!(http.header_timeout_ms, 10_000);
        assert_eq!(http.idle_timeout_ms, 60_000);
        assert_eq!(http.proxy_idle_timeout_ms, 130_000);
        assert_eq!(http.max_head_bytes, 16_384);
        assert_eq!(http.max_connections_per_ip, 64);
        assert!(http.trusted_proxies.is_empty());
    }

    #[test]
    fn http_section_from_file_env_and_flags() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(
            b"[http]\nheader_timeout_ms = 2000\ntrusted_proxies = [\"10.0.0.0/16\", \"10.1.2.3\"]\n",
        )
        .unwrap();
        let path = file.path().to_str().unwrap();
        let config = load(&["--config", path], &[]).unwrap();
        assert_eq!(config.http.header_timeout_ms, 2_000);
        assert!(config.http.trusted_proxies.contains([10, 0, 7, 7].into()));
        assert!(config.http.trusted_proxies.contains([10, 1, 2, 3].into()));
        assert!(!config.http.trusted_proxies.contains([10, 1, 2, 4].into()));

        let config = load(
            &["--config", path, "--max-connections-per-ip", "3"],
            &[
                ("NAX_IDLE_TIMEOUT_MS", "5000"),
                ("NAX_PROXY_IDLE_TIMEOUT_MS", "7000"),
                ("NAX_MAX_HEAD_BYTES", "9000"),
                ("NAX_TRUSTED_PROXIES", "192.0.2.0/24,fd00::/8"),
            ],
        )
        .unwrap();
        assert_eq!(config.http.header_timeout_ms, 2_000, "file value kept");
        assert_eq!(config.http.idle_timeout_ms, 5_000);
        assert_eq!(config.http.proxy_idle_timeout_ms, 7_000);
        assert_eq!(config.http.max_head_bytes, 9_000);
        assert_eq!(config.http.max_connections_per_ip, 3);
        assert!(config.http.trusted_proxies.contains([192, 0, 2, 9].into()));
        assert!(!config.http.trusted_proxies.contains([10, 0, 7, 7].into()));
        let line = config.redacted();
        assert!(
            line.contains("http.trusted_proxies=[\"192.0.2.0/24\",\"fd00::/8\"]"),
            "{line}"
        );
        // An empty variable clears the list.
        let config = load(&["--config", path], &[("NAX_TRUSTED_PROXIES", "")]).unwrap();
        assert!(config.http.trusted_proxies.is_empty());
    }

    #[test]
    fn bad_http_values_name_their_key() {
        assert_eq!(
            invalid_key(load(&["--header-timeout-ms", "0"], &[])),
            "http.header_timeout_ms"
        );
        assert_eq!(
            invalid_key(load(&["--idle-timeout-ms", "3600001"], &[])),
            "http.idle_timeout_ms"
        );
        assert_eq!(
            invalid_key(load(&["--proxy-idle-timeout-ms", "99"], &[])),
            "http.proxy_idle_timeout_ms"
        );
        assert_eq!(
            invalid_key(load(&["--max-head-bytes", "8191"], &[])),
            "http.max_head_bytes"
        );
        assert_eq!(
            invalid_key(load(&[], &[("NAX_MAX_CONNECTIONS_PER_IP", "0")])),
            "http.max_connections_per_ip"
        );
        let err = load(&[], &[("NAX_TRUSTED_PROXIES", "10.0.0.0/16,nope")]).unwrap_err();
        match err.downcast::<ConfigError>().unwrap() {
            ConfigError::Env { name, reason, .. } => {
                assert_eq!(name, "NAX_TRUSTED_PROXIES");
                assert!(reason.contains("nope"), "{reason}");
            }
            other => panic!("expected Env, got {other:?}"),
        }
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"[http]\ntrusted_proxies = [\"10.0.0.0/40\"]\n")
            .unwrap();
        let err = load(&["--config", file.path().to_str().unwrap()], &[]).unwrap_err();
        assert!(format!("{err:#}").contains("10.0.0.0/40"), "{err:#}");
    }
}
