//! The options of the `orders` scenario: how many users, how many orders
//! per second, the mix of resting and marketable orders, and the limits
//! that keep a run bounded (at most 1,000 users, 20,000 orders/s, 1,024
//! requests in flight; the run's length is `--duration`).

use crate::cli::OptionsError;
use clap::Args;
use serde::Serialize;

/// Most users one run sets up.
pub const MAX_USERS: u32 = 1_000;
/// Highest order rate, orders per second over all users.
pub const MAX_ORDER_RATE: f64 = 20_000.0;
/// Most requests in flight at once.
pub const MAX_IN_FLIGHT: u32 = 1_024;
/// Longest time a resting order is kept before it is cancelled, ms.
pub const MAX_REST_MS: u64 = 60_000;
/// Longest user setup, seconds.
pub const MAX_SETUP_SECS: u64 = 600;

/// `--scenario orders`: the REST order flow.
#[derive(Debug, Clone, Args, Serialize)]
#[command(next_help_heading = "Orders scenario (--scenario orders)")]
pub struct OrderOptions {
    /// Users to register, verify (KYC) and fund before the run; orders are
    /// spread round-robin over them (1..=1000). Each user is one token of
    /// the hub's per-token rate limit.
    #[arg(long, default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_USERS)))]
    pub users: u32,

    /// Orders per second over all users (0 < RATE <= 20000), sent on a
    /// fixed schedule for --duration seconds.
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,

    /// Percentage of orders that are limit buys resting far below the
    /// market, cancelled after --rest-ms; the others are market IOC orders
    /// of --order-qty (buys, and sells of what earlier buys filled).
    #[arg(long, default_value_t = 50,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    pub resting_percent: u8,

    /// How long a resting order stays open before it is cancelled, ms
    /// (0..=60000); the last ones are cancelled after --duration, so a run
    /// lasts up to this much longer.
    #[arg(long, default_value_t = 1_000)]
    pub rest_ms: u64,

    /// Resting buys are priced this many percent below the best bid at the
    /// start of the run (1..=99), so they never trade.
    #[arg(long, default_value_t = 50,
          value_parser = clap::value_parser!(u8).range(1..=99))]
    pub rest_distance_pct: u8,

    /// The pair every order trades.
    #[arg(long, default_value = "BTC-USD")]
    pub pair: String,

    /// Quantity of every order, a decimal string at the pair's qty scale;
    /// default: the pair's min_qty.
    #[arg(long)]
    pub order_qty: Option<String>,

    /// Most requests in flight at once (1..=1024); when all are busy the
    /// schedule waits, and the achieved rate falls below --rate.
    #[arg(long, default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_IN_FLIGHT)))]
    pub max_in_flight: u32,

    /// Seconds allowed for registering, verifying and funding the users
    /// (1..=600); not part of --duration.
    #[arg(long, default_value_t = 180,
          value_parser = clap::value_parser!(u64).range(1..=MAX_SETUP_SECS))]
    pub setup_timeout: u64,
}

impl OrderOptions {
    /// Checks the ranges clap cannot express.
    pub fn validate(&self) -> Result<(), OptionsError> {
        let out_of_range = |name, value: String, reason| {
            Err(OptionsError::OutOfRange {
                name,
                value,
                reason,
            })
        };
        if !(self.rate > 0.0 && self.rate <= MAX_ORDER_RATE) {
            return out_of_range("rate", self.rate.to_string(), "must be in (0, 20000]");
        }
        if self.rest_ms > MAX_REST_MS {
            return out_of_range("rest-ms", self.rest_ms.to_string(), "must be 0..=60000");
        }
        let pair_ok = (3..=16).contains(&self.pair.len())
            && self
                .pair
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !pair_ok {
            return out_of_range("pair", self.pair.clone(), "must look like BTC-USD");
        }
        Ok(())
    }

    /// Fraction of orders that rest.
    pub fn resting_fraction(&self) -> f64 {
        f64::from(self.resting_percent) / 100.0
    }

    /// Requests one user sends per minute on average at this rate: every
    /// order, plus a cancel for every resting one. The hub's
    /// `[api] requests_per_minute` must be at least this (with some
    /// headroom: cancels of one second can bunch up).
    pub fn requests_per_user_minute(&self) -> f64 {
        60.0 * self.rate / f64::from(self.users) * (1.0 + self.resting_fraction())
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::Options;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        let argv = ["loadtest", "--scenario", "orders"];
        Options::try_parse_from(argv.iter().chain(args))
    }

    #[test]
    fn defaults_are_valid_and_bounded() {
        let o = parse(&[]).unwrap();
        o.validate().unwrap();
        assert_eq!(o.orders.users, 20);
        assert_eq!(o.orders.requests_per_user_minute(), 225.0);
        assert!(parse(&["--users", "1001"]).is_err());
        assert!(parse(&["--users", "0"]).is_err());
        assert!(parse(&["--resting-percent", "101"]).is_err());
        assert!(parse(&["--rest-distance-pct", "0"]).is_err());
        assert!(parse(&["--max-in-flight", "2000"]).is_err());
        assert!(parse(&["--setup-timeout", "601"]).is_err());
        for bad in [
            &["--rate", "0"][..],
            &["--rate", "20001"],
            &["--rate", "NaN"],
            &["--rest-ms", "60001"],
            &["--pair", "BTC/USD"],
        ] {
            assert!(parse(bad).unwrap().validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn order_options_are_checked_only_for_orders() {
        let o = Options::try_parse_from(["loadtest", "--rate", "0"]).unwrap();
        o.validate().unwrap();
    }
}
