//! Runs one scenario from start to end: checks the options, finds the hub,
//! plans every client (channel set, verifying, slow), ramps them up at the
//! scenario's rate, triggers resume storms, stops everyone at the deadline
//! and assembles the [`RunResult`].
//!
//! The WebSocket scenarios differ only in their connect rate, who reads
//! slowly and whether storms happen; the clients themselves are the same.
//! The `orders` scenario is the REST order flow of [`crate::orders`].

use crate::cli::{Options, OptionsError, Scenario};
use crate::client::{self, ClientEnv, ClientPlan, Signals};
use crate::result::{ConnectionSummary, RunFacts, RunResult};
use crate::sampler::Sampler;
use crate::stats::Stats;
use crate::target::{counter_deltas, HubTarget, TargetError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long clients get to close politely after the deadline.
const DRAIN: Duration = Duration::from_secs(10);

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("scenario orders: {0}")]
    Orders(#[from] crate::orders::OrdersError),
}

/// Runs the scenario of `opts` against the hub and returns what it
/// measured. Stops by itself after `--duration` seconds (plus at most
/// [`DRAIN`] for the clients to close; the orders scenario sets its users
/// up first, see [`crate::orders::run`]).
pub async fn run(opts: &Options) -> Result<RunResult, HarnessError> {
    opts.validate()?;
    if opts.scenario == Scenario::Orders {
        return Ok(crate::orders::run(opts).await?);
    }
    let target = HubTarget::resolve(&opts.url).await?;
    let nchan = opts.peer == crate::cli::Peer::Nchan;
    let markets = match target.fetch_markets().await {
        _ if nchan => Default::default(),
        Ok(markets) => markets,
        Err(e) if opts.verify_fraction == 0.0 => {
            eprintln!("warning: {e}; continuing without checksum verification");
            Default::default()
        }
        Err(e) => return Err(e.into()),
    };
    let hub_before = if nchan {
        None
    } else {
        target.fetch_counters().await.ok()
    };
    let plans = plan_clients(opts);
    let stats = Arc::new(Stats::new());
    let started_unix_ms = client::now_micros() / 1000;
    let env = Arc::new(ClientEnv {
        target,
        markets,
        stats: stats.clone(),
        connect_timeout: Duration::from_secs(opts.connect_timeout),
        slow_delay: Duration::from_millis(opts.slow_delay_ms),
        slow_recv_buffer: opts.slow_recv_buffer,
        reconnect_jitter: Duration::from_millis(opts.reconnect_jitter_ms),
        seed: opts.run.seed,
        nchan,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let (storm_tx, storm_rx) = watch::channel(0u64);
    let signals = Signals {
        stop: stop_rx,
        storm: storm_rx,
    };
    let sampler = Sampler::start(
        stats.clone(),
        opts.duration,
        u64::from(opts.connections),
        !opts.run.no_progress,
    );

    let start = Instant::now();
    let deadline = tokio::time::Instant::from_std(start + Duration::from_secs(opts.duration));
    let rate = opts.connect_rate();
    let mut clients = Vec::with_capacity(plans.len());
    let verify_clients = if env.markets.is_empty() {
        0
    } else {
        plans.iter().filter(|p| p.verify).count() as u64
    };
    let slow_clients = plans.iter().filter(|p| p.slow).count() as u64;
    let mut plans = plans.into_iter();
    while clients.len() < opts.connections as usize && tokio::time::Instant::now() < deadline {
        let due =
            ((start.elapsed().as_secs_f64() * rate) as usize + 1).min(opts.connections as usize);
        while clients.len() < due {
            let plan = plans.next().expect("one plan per connection");
            clients.push(tokio::spawn(client::run(
                plan,
                env.clone(),
                signals.clone(),
            )));
        }
        let next = start + Duration::from_secs_f64(clients.len() as f64 / rate);
        tokio::time::sleep_until(tokio::time::Instant::from_std(next).min(deadline)).await;
    }
    let ramp_s = start.elapsed().as_secs_f64();

    let mut storms = 0;
    if opts.scenario == Scenario::ResumeStorm {
        let every = Duration::from_secs_f64(opts.resume_every);
        let mut next = tokio::time::Instant::now() + every;
        while next < deadline {
            tokio::time::sleep_until(next).await;
            storm_tx.send_modify(|n| *n += 1);
            storms += 1;
            next += every;
        }
    }
    tokio::time::sleep_until(deadline).await;
    let elapsed_s = start.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    let spawned = clients.len() as u64;
    drain(clients).await;
    let sampled = sampler.finish().await;
    let hub_counters = match (hub_before, env.target.fetch_counters().await) {
        (Some(before), Ok(after)) => counter_deltas(&before, &after),
        _ => Default::default(),
    };

    let facts = RunFacts {
        scenario: opts.scenario.name().to_string(),
        url: opts.url.clone(),
        started_unix_ms,
        elapsed_s,
        options: serde_json::to_value(opts).expect("options serialize"),
        connections: ConnectionSummary {
            target: u64::from(opts.connections),
            clients: spawned,
            peak_open: stats.peak_open(),
            verify_clients,
            slow_clients,
            ramp_s,
            last_subscribed_s: stats.last_subscribed_secs(),
            storms,
        },
        hub_counters,
    };
    drop(storm_tx);
    Ok(stats.events(|events| RunResult::build(facts, &sampled.totals, events, sampled.timeline)))
}

/// Waits for every client to finish, aborting those still running after
/// [`DRAIN`].
async fn drain(clients: Vec<tokio::task::JoinHandle<()>>) {
    let deadline = tokio::time::Instant::now() + DRAIN;
    for handle in clients {
        let abort = handle.abort_handle();
        if tokio::time::timeout_at(deadline, handle).await.is_err() {
            abort.abort();
        }
    }
}

/// One plan per connection: channel sets assigned round-robin by weight.
/// Verifying and slow clients are picked within each set, so every set is
/// covered in proportion: `--verify-fraction` of a set's clients verify
/// (its first one, then evenly spread); in slow-mix, `--slow-percent` of
/// them read slowly (evenly spread), and a set's first slow client also
/// verifies, so the book a slow consumer rebuilds from `slow_consumer`
/// snapshots is checked too.
pub fn plan_clients(opts: &Options) -> Vec<ClientPlan> {
    let sets: Vec<(u64, Arc<[String]>)> = opts
        .channels
        .iter()
        .map(|s| (u64::from(s.weight), s.channels.clone().into()))
        .collect();
    let total: u64 = sets.iter().map(|(w, _)| w).sum();
    let slow_fraction = match opts.scenario {
        Scenario::SlowMix => opts.slow_percent / 100.0,
        _ => 0.0,
    };
    // Per set: clients so far, and whether a slow one verifies yet.
    let mut seen = vec![(0usize, false); sets.len()];
    (0..opts.connections as usize)
        .map(|index| {
            let mut slot = index as u64 % total;
            let set = sets
                .iter()
                .position(|(w, _)| {
                    let hit = slot < *w;
                    slot = slot.saturating_sub(*w);
                    hit
                })
                .expect("slot < total weight lands in a set");
            let (ordinal, slow_verified) = &mut seen[set];
            let slow = picked_floor(*ordinal, slow_fraction);
            let mut verify = picked_ceil(*ordinal, opts.verify_fraction);
            if slow && !*slow_verified && opts.verify_fraction > 0.0 {
                verify = true;
                *slow_verified = true;
            }
            *ordinal += 1;
            ClientPlan {
                index,
                channels: sets[set].1.clone(),
                verify,
                slow,
            }
        })
        .collect()
}

/// Picks `ceil(n × fraction)` of n indices, the first one included.
fn picked_ceil(i: usize, fraction: f64) -> bool {
    ((i + 1) as f64 * fraction).ceil() > (i as f64 * fraction).ceil()
}

/// Picks `floor(n × fraction)` of n indices, evenly spread, the first one
/// excluded (unless the fraction is 1).
fn picked_floor(i: usize, fraction: f64) -> bool {
    ((i + 1) as f64 * fraction).floor() > (i as f64 * fraction).floor()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn opts(args: &[&str]) -> Options {
        Options::try_parse_from(std::iter::once("loadtest").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn sets_are_assigned_by_weight() {
        let o = opts(&[
            "-n",
            "8",
            "--channels",
            "3*book.BTC-USD",
            "--channels",
            "trades.BTC-USD",
        ]);
        let plans = plan_clients(&o);
        let books = plans
            .iter()
            .filter(|p| p.channels[0] == "book.BTC-USD")
            .count();
        assert_eq!(books, 6);
        assert_eq!(&*plans[3].channels, ["trades.BTC-USD".to_string()]);
    }

    #[test]
    fn verify_and_slow_fractions() {
        let o = opts(&["-n", "1000", "--verify-fraction", "0.01"]);
        let plans = plan_clients(&o);
        assert_eq!(plans.iter().filter(|p| p.verify).count(), 10);
        assert!(plans[0].verify);
        assert!(plans.iter().all(|p| !p.slow), "slow only in slow-mix");

        let o = opts(&["-n", "50", "--verify-fraction", "0.01"]);
        assert_eq!(plan_clients(&o).iter().filter(|p| p.verify).count(), 1);

        let o = opts(&[
            "-n",
            "100",
            "--scenario",
            "slow-mix",
            "--slow-percent",
            "10",
        ]);
        let plans = plan_clients(&o);
        assert_eq!(plans.iter().filter(|p| p.slow).count(), 10);
        assert!(plans.iter().any(|p| p.slow && p.verify));

        // every set gets its share of verifying and slow clients
        let o = opts(&[
            "-n",
            "20",
            "--scenario",
            "slow-mix",
            "--slow-percent",
            "50",
            "--channels",
            "book.BTC-USD",
            "--channels",
            "trades.BTC-USD",
        ]);
        let plans = plan_clients(&o);
        for set in ["book.BTC-USD", "trades.BTC-USD"] {
            let of_set = || plans.iter().filter(move |p| p.channels[0] == set);
            assert_eq!(of_set().filter(|p| p.slow).count(), 5, "{set}");
            assert!(of_set().any(|p| p.verify && !p.slow), "{set}");
            assert!(of_set().any(|p| p.verify && p.slow), "{set}");
        }

        let o = opts(&["-n", "10", "--verify-fraction", "0"]);
        assert!(plan_clients(&o).iter().all(|p| !p.verify));
    }
}
