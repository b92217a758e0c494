//! The options of `loadtest abuse`: how many workers of each kind, how
//! long, and the budgets a run is judged by. Every dimension is bounded
//! (at most 600 s, 64 login workers, 4,096 idle sockets, 256 WebSocket
//! workers of each kind) so a run always stops by itself.

use super::net::Block;
use crate::cli::RunControls;
use clap::Args;
use serde::Serialize;

/// Longest run, seconds.
pub const MAX_DURATION_SECS: u64 = 600;
/// Most login workers.
pub const MAX_LOGIN_WORKERS: u32 = 64;
/// Most accounts registered.
pub const MAX_ACCOUNTS: u32 = 32;
/// Most idle sockets (64 addresses of the idle block × 64).
pub const MAX_IDLE_SOCKETS: u32 = 4_096;
/// Most malformed-frame senders or flippers.
pub const MAX_WS_WORKERS: u32 = 256;

/// `loadtest abuse`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct AbuseOptions {
    /// The hub's HTTP address (REST, /health and /ws on one port).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,

    /// Length of the run, seconds (1..=600); the run stops by itself.
    #[arg(long, short = 'd', default_value_t = MAX_DURATION_SECS,
          value_parser = clap::value_parser!(u64).range(1..=MAX_DURATION_SECS))]
    pub duration: u64,

    /// The hub's process id: its VmRSS and VmHWM are read from
    /// /proc/PID/status every second.
    #[arg(long)]
    pub pid: Option<u32>,

    /// Longest acceptable `/health` answer (fresh connection, connect to
    /// last byte), ms.
    #[arg(long, default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub health_budget_ms: u64,

    /// Largest acceptable VmRSS / VmHWM of the hub, MiB (needs --pid).
    #[arg(long, requires = "pid")]
    pub rss_budget_mb: Option<u64>,

    /// Login workers (0..=64), each one request at a time with a 25 ms
    /// pause, from rotating addresses.
    #[arg(long, default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_LOGIN_WORKERS)))]
    pub login_workers: u32,

    /// Accounts registered for the login workers (1..=32).
    #[arg(long, default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_ACCOUNTS)))]
    pub accounts: u32,

    /// Idle sockets held open at once (0..=4096).
    #[arg(long, default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_IDLE_SOCKETS)))]
    pub idle_sockets: u32,

    /// Idle sockets per client address (1..=64); keep it under the hub's
    /// `http.max_connections_per_ip` (default 64).
    #[arg(long, default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub idle_per_address: u32,

    /// WebSocket clients sending malformed frames (0..=256).
    #[arg(long, default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_WS_WORKERS)))]
    pub malformed_workers: u32,

    /// WebSocket clients flipping subscriptions (0..=256).
    #[arg(long, default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_WS_WORKERS)))]
    pub flippers: u32,

    /// Channels the flippers subscribe to and unsubscribe from, in turn.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "book.BTC-USD,book.ETH-USD"
    )]
    pub flip_channels: Vec<String>,

    /// Use only the default source address, even against 127.0.0.1 (the
    /// per-address limits then apply to everything, the sampler included).
    #[arg(long)]
    pub no_bind: bool,

    /// Seed, output directory and progress bar.
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunControls,
}

impl AbuseOptions {
    /// Checks what clap cannot, given whether local addresses are bound.
    pub fn validate(&self, bind_local: bool) -> Result<(), String> {
        let addresses = if bind_local {
            Block::Idle.addresses()
        } else {
            1
        };
        let most = addresses as u32 * self.idle_per_address;
        if self.idle_sockets > most {
            return Err(format!(
                "--idle-sockets {} > {addresses} address(es) × --idle-per-address {}",
                self.idle_sockets, self.idle_per_address
            ));
        }
        if self.flippers > 0 && self.flip_channels.is_empty() {
            return Err("--flip-channels is empty".into());
        }
        if let Some(bad) = self
            .flip_channels
            .iter()
            .find(|c| c.is_empty() || c.len() > 64 || !c.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(format!("--flip-channels: {bad:?} is not a channel name"));
        }
        Ok(())
    }
}
