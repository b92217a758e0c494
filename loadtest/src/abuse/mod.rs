//! `loadtest abuse`: a bounded soak of hostile input against one hub
//! (issue 11), measuring whether the hub stays small and responsive.
//!
//! For `--duration` seconds (at most 600; the run stops by itself) these
//! run at the same time, each from its own block of local addresses
//! ([`net`]):
//! - **login** ([`login`]): a few accounts are registered, then workers
//!   loop `POST /auth/login` with the right password, a wrong one and
//!   unknown emails, rotating over many client addresses; expected
//!   answers are 200 / 401 / 429, never 5xx;
//! - **idle** ([`idle`]): sockets that send nothing, half a request head,
//!   a head dripped a byte a second, or one request and then nothing,
//!   each reopened once the hub closes it, at most `--idle-per-address`
//!   per address (under the hub's per-address cap);
//! - **frame** ([`frames`]): WebSocket clients sending deep nesting,
//!   oversized frames, invalid UTF-8, binary frames, unknown ops, garbage
//!   JSON, bad tokens, reserved bits and floods of invalid frames, each
//!   expecting its error reply or close code, reconnecting;
//! - **flip** ([`frames`]): WebSocket clients subscribing to and
//!   unsubscribing from book channels as fast as the hub's frame rate
//!   limit allows;
//! - the **sampler** ([`sampler`]): once a second `GET /health` on a fresh
//!   connection from `127.0.0.1`, timed, and the hub's VmRSS when `--pid`
//!   is given.
//!
//! The result ([`AbuseResult`]) counts every outcome per kind, flags the
//! unexpected ones, and checks: no 5xx, every `/health` answered 200
//! within `--health-budget-ms`, VmRSS (and VmHWM) within `--rss-budget-mb`
//! when given, every kind exercised, no unexpected outcome.

pub mod frames;
pub mod idle;
pub mod login;
pub mod net;
pub mod options;
pub mod result;
pub mod sampler;
pub mod tally;

pub use options::AbuseOptions;
pub use result::{summary, write, AbuseResult, Check, Rss, Sample};
pub use tally::Tally;

use crate::client::now_micros;
use crate::stats::Percentiles;
use net::Target;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The worker kinds; every outcome's kind starts with one of these.
pub const KINDS: [&str; 4] = ["login", "idle", "frame", "flip"];

/// Why an abuse run could not be made (a run that was made but failed a
/// check is an [`AbuseResult`] whose [`AbuseResult::passed`] is false).
#[derive(Debug, thiserror::Error)]
pub enum AbuseError {
    #[error("{0}")]
    Options(String),
    #[error("the hub does not answer GET /health: {0}")]
    Hub(String),
    #[error("reading /proc/{pid}/status: {what}")]
    Memory { pid: u32, what: String },
    #[error("the sampler task failed: {0}")]
    Sampler(String),
}

/// Runs the abuse scenario and returns what it measured. Fails only when
/// the run cannot be made (bad options, the hub not answering `/health`,
/// an unreadable `/proc/PID/status`).
pub async fn run(opts: &AbuseOptions) -> Result<AbuseResult, AbuseError> {
    let target = Target::resolve(&opts.url, !opts.no_bind)
        .await
        .map_err(AbuseError::Options)?;
    opts.validate(target.bind_local)
        .map_err(AbuseError::Options)?;
    match target
        .request(None, "GET", "/health", None, Duration::from_secs(5))
        .await
    {
        Ok((200, _)) => {}
        Ok((status, _)) => return Err(AbuseError::Hub(format!("answered {status}"))),
        Err(e) => return Err(AbuseError::Hub(format!("{} {e}", target.addr))),
    }
    if let Some(pid) = opts.pid {
        sampler::read_memory(pid).map_err(|what| AbuseError::Memory { pid, what })?;
    }
    let started_unix_ms = now_micros() / 1000;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(opts.duration);
    let tally = Arc::new(Tally::default());
    let sampler = tokio::spawn(sampler::run(
        target.clone(),
        opts.pid,
        tally.clone(),
        deadline,
        !opts.run.no_progress,
    ));

    let mut workers = tokio::task::JoinSet::new();
    let tag = format!("{:x}", now_micros());
    workers.spawn(login::run(
        target.clone(),
        tally.clone(),
        login::Plan {
            workers: opts.login_workers,
            accounts: opts.accounts,
            tag,
            seed: opts.run.seed,
        },
    ));
    workers.spawn(idle::run(
        target.clone(),
        tally.clone(),
        opts.idle_sockets,
        opts.idle_per_address,
    ));
    workers.spawn(frames::malformed(
        target.clone(),
        tally.clone(),
        opts.malformed_workers,
    ));
    workers.spawn(frames::flippers(
        target.clone(),
        tally.clone(),
        opts.flippers,
        opts.flip_channels.clone(),
    ));
    // Every worker loops forever: the deadline ends them (dropping a worker
    // closes its sockets).
    let _ = tokio::time::timeout_at(deadline, async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    workers.shutdown().await;
    let sampled = sampler
        .await
        .map_err(|e| AbuseError::Sampler(e.to_string()))?;
    let elapsed_s = started.elapsed().as_secs_f64();

    let tally = tally.with(std::mem::take);
    let rss = sampled.rss(opts.rss_budget_mb.map(|mb| mb * 1024));
    let mut result = AbuseResult {
        url: opts.url.clone(),
        started_unix_ms,
        elapsed_s,
        options: serde_json::to_value(opts).expect("options serialize"),
        bound_local_addresses: target.bind_local,
        outcomes: tally.outcomes,
        unexpected: tally.unexpected,
        server_errors: tally.server_errors,
        health_us: Percentiles::of(&sampled.health),
        health_failures: sampled.health_failures,
        health_budget_ms: opts.health_budget_ms,
        timings_us: tally
            .timings
            .iter()
            .map(|(k, h)| (k.clone(), Percentiles::of(h)))
            .collect(),
        rss,
        timeline: sampled.timeline,
        checks: Vec::new(),
    };
    result.checks = result::checks(&result, opts);
    Ok(result)
}
