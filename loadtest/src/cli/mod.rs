//! The harness's options: what to load, how hard, for how long, and where
//! the reports go. Every load dimension is bounded (at most 20,000
//! connections and 600 s; the orders scenario's own bounds are in
//! [`OrderOptions`]) so a run always stops by itself.

use crate::abuse::AbuseOptions;
use crate::orders::options::OrderOptions;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;
use std::path::PathBuf;

mod channels;

pub use channels::ChannelSet;

/// Most connections one run may open.
pub const MAX_CONNECTIONS: u32 = 20_000;
/// Longest run, seconds.
pub const MAX_DURATION_SECS: u64 = 600;
/// Fastest ramp, new connections per second.
pub const MAX_RAMP: f64 = 100_000.0;
/// Most channels one subscription set may hold (the hub's default limit).
pub const MAX_CHANNELS_PER_SET: usize = 200;
/// The command line of `loadtest`.
#[derive(Debug, Clone, Parser, Serialize)]
#[command(
    name = "loadtest",
    version,
    about = "Load harness for the NA-X Stream hub: opens N WebSocket clients, measures end-to-end \
             latency, throughput and connect time, checks every seq chain and (on a sample of \
             clients) every book checksum, and writes result.json and report.html.",
    after_help = "Channel sets: each --channels value is one subscription set, a comma-separated \
                  list of docs/PROTOCOL.md channel names, optionally prefixed by a weight `W*`. Clients \
                  are assigned to sets round-robin by weight, e.g.\n  \
                  --channels '3*book.BTC-USD,trades.BTC-USD' --channels 'ticker.ETH-USD@100ms'\n\
                  gives 3 of every 4 clients the book and trades of BTC-USD and the fourth the \
                  conflated ETH-USD ticker. An item `chart:PAIR` is the chart subscription mix \
                  of a pair: book.PAIR, trades.PAIR, ticker.PAIR and candles1m.PAIR, e.g.\n  \
                  --channels 'chart:BTC-USD' --channels 'chart:ETH-USD'\n\n\
                  slow-mix: the hub's kernel send buffer (up to net.ipv4.tcp_wmem's maximum, \
                  4 MiB by default) fills before its outbound queue does, so slow_consumer \
                  snapshots and 4008 closes appear only after about (4 MiB + queue) / (incoming \
                  - read rate) seconds: give slow clients heavy channel sets or run longer.\n\n\
                  orders: registers, verifies and funds --users users over the REST API, then \
                  sends --rate orders/s spread over them. Each user is one token of the hub's \
                  rate limit ([api] requests_per_minute, default 600, burst 100): a user sends \
                  60 x rate / users x (1 + resting share) requests per minute, which the run \
                  prints; for more, start the hub with a TOML holding e.g.\n  \
                  [api]\n  requests_per_minute = 60000   # 0 turns the limit off\n\n\
                  Exit status: 0 when every seq chain and checksum held (orders: every request \
                  was answered as expected), 1 on a usage or start-up error, 2 when a chain or \
                  checksum failed (orders: a request failed or had an unexpected answer), 3 when \
                  no channel message arrived at all (orders: no order was accepted).\n\n\
                  `loadtest abuse --help`: the hostile-input soak (issue 11) with its own options."
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Options {
    /// A run with its own options instead of a scenario.
    #[command(subcommand)]
    #[serde(skip)]
    pub command: Option<Command>,

    /// WebSocket endpoint of the hub (ws:// only).
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    pub url: String,

    /// What the clients do.
    #[arg(long, value_enum, default_value_t = Scenario::Steady)]
    pub scenario: Scenario,

    /// Clients to open (1..=20000).
    #[arg(long, short = 'n', default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CONNECTIONS)))]
    pub connections: u32,

    /// Length of the run in seconds, ramp included (1..=600).
    #[arg(long, short = 'd', default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=MAX_DURATION_SECS))]
    pub duration: u64,

    /// New connections per second while ramping up (steady, resume-storm,
    /// slow-mix).
    #[arg(long, default_value_t = 500.0)]
    pub ramp: f64,

    /// A subscription set `[W*]CHANNEL,CHANNEL,...` (an item `chart:PAIR`
    /// stands for the chart mix of PAIR); repeat for a weighted mix (see
    /// below).
    #[arg(
        long = "channels",
        value_name = "SET",
        default_value = "book.BTC-USD,trades.BTC-USD"
    )]
    pub channels: Vec<ChannelSet>,

    /// Fraction of clients that rebuild the book of their book/depth
    /// channels and check every checksum (at least one client when > 0).
    #[arg(long, default_value_t = 0.01)]
    pub verify_fraction: f64,

    /// connect-storm: seconds within which all clients connect.
    #[arg(long, default_value_t = 1.0)]
    pub storm_window: f64,

    /// resume-storm: seconds between storms; at each storm every client
    /// drops its connection and reconnects with `resume`.
    #[arg(long, default_value_t = 5.0)]
    pub resume_every: f64,

    /// resume-storm: each client waits a random 0..=this many ms before
    /// reconnecting.
    #[arg(long, default_value_t = 500)]
    pub reconnect_jitter_ms: u64,

    /// slow-mix: percentage of clients that read slowly.
    #[arg(long, default_value_t = 10.0)]
    pub slow_percent: f64,

    /// slow-mix: a slow client sleeps this long after each message.
    #[arg(long, default_value_t = 20)]
    pub slow_delay_ms: u64,

    /// slow-mix: socket receive buffer of a slow client, bytes (small, so
    /// the hub's queue fills instead of the kernel's).
    #[arg(long, default_value_t = 16_384)]
    pub slow_recv_buffer: u32,

    /// Give up a connection attempt (TCP + WebSocket handshake) after this
    /// many seconds.
    #[arg(long, default_value_t = 10)]
    pub connect_timeout: u64,

    /// Seed, output directory and progress bar.
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunControls,

    /// What serves --url: the hub, or an nginx nchan WebSocket subscriber
    /// location (no subscribe op is sent; every frame is a channel message
    /// of the first channel of the client's set, with `ts`, `seq`,
    /// `prev_seq` as published by `publish`).
    #[arg(long, value_enum, default_value_t = Peer::Hub)]
    pub peer: Peer,

    /// The orders scenario's options.
    #[command(flatten)]
    pub orders: OrderOptions,
}

/// What every run takes besides its load: the seed, where the reports go,
/// and whether a progress bar is drawn (`loadtest` and `loadtest abuse`
/// alike).
#[derive(Debug, Clone, Args, Serialize)]
pub struct RunControls {
    /// Seed of the run's randomness (reconnect jitter; abuse: the workers'
    /// choices).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Directory for the reports, created if missing (result.json and
    /// report.html; abuse: abuse.json).
    #[arg(long, default_value = "loadtest-out")]
    pub out: PathBuf,

    /// No progress bar (it is also hidden when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

/// Runs that are not a WebSocket/orders scenario.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Hostile-input soak (issue 11): for --duration seconds (default and
    /// most 600), login floods, idle and dripping sockets, malformed
    /// WebSocket frames and subscribe flips at once, while /health is
    /// timed and the hub's RSS read every second. Prints a summary, writes
    /// abuse.json; exit status 2 when a 5xx was seen, /health failed or
    /// was slower than --health-budget-ms, RSS exceeded --rss-budget-mb, a
    /// kind was never exercised or an outcome was unexpected.
    Abuse(AbuseOptions),
}

/// The server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Peer {
    /// The NA-X Stream hub (docs/PROTOCOL.md).
    Hub,
    /// nginx + nchan: frames are published messages, no subscribe op.
    Nchan,
}

/// What the clients of a run do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Ramp up to N clients at --ramp per second, stay subscribed until the end.
    Steady,
    /// All N clients connect within --storm-window seconds; count errors.
    ConnectStorm,
    /// Every --resume-every seconds all clients drop and reconnect with
    /// `resume`; count recovered and not_recovered channels.
    ResumeStorm,
    /// --slow-percent of the clients read slowly; count slow_consumer
    /// snapshots and 4008 closes.
    SlowMix,
    /// REST order flow: --users users place --rate orders/s (resting limit
    /// orders, cancelled later, and marketable IOC orders); the WebSocket
    /// options do not apply.
    Orders,
}

impl Scenario {
    /// The kebab-case name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Steady => "steady",
            Scenario::ConnectStorm => "connect-storm",
            Scenario::ResumeStorm => "resume-storm",
            Scenario::SlowMix => "slow-mix",
            Scenario::Orders => "orders",
        }
    }
}

/// Why an option value is unusable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptionsError {
    #[error("channel set {0:?}: weight must be a positive integer")]
    BadWeight(String),
    #[error("channel set {0:?} is empty")]
    EmptySet(String),
    #[error("channel set {set:?}: {channel:?} is not a channel name")]
    BadChannel { set: String, channel: String },
    #[error("channel set {0:?} has more than {MAX_CHANNELS_PER_SET} channels")]
    TooManyChannels(String),
    #[error("--{name} = {value}: {reason}")]
    OutOfRange {
        name: &'static str,
        value: String,
        reason: &'static str,
    },
}

impl Options {
    /// Checks the ranges clap cannot express.
    pub fn validate(&self) -> Result<(), OptionsError> {
        let max = self.duration as f64;
        let storm = self.scenario == Scenario::ConnectStorm;
        let resume = self.scenario == Scenario::ResumeStorm;
        let (r, v, s) = (self.ramp, self.verify_fraction, self.slow_percent);
        let (w, e) = (self.storm_window, self.resume_every);
        let t = self.connect_timeout as f64;
        // (name, value, ok, reason); scenario options only for their scenario.
        let checks = [
            (
                "ramp",
                r,
                r > 0.0 && r <= MAX_RAMP,
                "must be in (0, 100000]",
            ),
            (
                "verify-fraction",
                v,
                (0.0..=1.0).contains(&v),
                "must be in [0, 1]",
            ),
            (
                "slow-percent",
                s,
                (0.0..=100.0).contains(&s),
                "must be in [0, 100]",
            ),
            (
                "storm-window",
                w,
                !storm || (w > 0.0 && w <= max),
                "must be in (0, duration]",
            ),
            (
                "resume-every",
                e,
                !resume || (0.5..=max).contains(&e),
                "must be in [0.5, duration]",
            ),
            (
                "connect-timeout",
                t,
                (1.0..=60.0).contains(&t),
                "must be 1..=60 seconds",
            ),
        ];
        match checks.into_iter().find(|c| !c.2) {
            Some((name, value, _, reason)) => Err(OptionsError::OutOfRange {
                name,
                value: value.to_string(),
                reason,
            }),
            None if self.scenario == Scenario::Orders => self.orders.validate(),
            None => Ok(()),
        }
    }

    /// New connections per second for this scenario: connect-storm spreads
    /// all clients over its window, the others use `--ramp`.
    pub fn connect_rate(&self) -> f64 {
        match self.scenario {
            Scenario::ConnectStorm => f64::from(self.connections) / self.storm_window,
            _ => self.ramp,
        }
    }
}

#[cfg(test)]
mod tests;
