//! The GraphQL schema of feeds/src/shift/schema.graphql, code first, over
//! the sandbox venue: scalars, enums and object types, the three root
//! types, and the state every resolver reads.
//!
//! `tests/schema_contract.rs` checks that [`sdl`] and the contract file
//! define the same types, fields, arguments, defaults and enum values.

mod catalog;
mod enums;
pub mod errors;
mod mutation;
mod objects;
mod query;
mod scalars;
mod streams;
mod subscription;

pub use catalog::Catalog;
pub use errors::ErrorCode;

use crate::faults::FaultControls;
use async_graphql::{Error, Result, Schema, ID};
use errors::coded;
use feeds::event::MarketEvent;
use feeds::{MarketFeed, SandboxVenue, Venue};
use mutation::Mutation;
use objects::{Level, OrderBook};
use query::Query;
use scalars::UInt64;
use std::sync::Arc;
use std::time::Duration;
use subscription::Subscription;

/// The executable schema.
pub type VenueSchema = Schema<Query, Mutation, Subscription>;

/// Longest user id accepted.
const MAX_USER_ID_LEN: usize = 128;

/// How long an `orderBook` query waits for the venue's snapshot.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(5);

/// Validation limits applied to every operation before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Deepest selection-set nesting accepted.
    pub max_depth: usize,
    /// Largest complexity (one per selected field) accepted.
    pub max_complexity: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_depth: 8,
            max_complexity: 256,
        }
    }
}

/// What every resolver reads: the venue, its pairs and assets, and the
/// fault switches. Cheap to clone.
#[derive(Clone)]
pub struct VenueState {
    pub venue: SandboxVenue,
    pub catalog: Arc<Catalog>,
    pub faults: Arc<FaultControls>,
}

impl VenueState {
    /// Reads the venue's catalog; fault switches start off.
    pub fn new(venue: SandboxVenue) -> Self {
        let catalog = Catalog::new(venue.markets(), venue.assets());
        let faults = FaultControls::new(catalog.markets().iter().map(|m| m.symbol.as_str()));
        VenueState {
            venue,
            catalog: Arc::new(catalog),
            faults: Arc::new(faults),
        }
    }

    /// The pair's book now, from a snapshot the venue takes atomically with
    /// its sequence numbers (so `seq` and `tradeSeq` match the levels).
    async fn order_book(&self, pair: &str, depth: Option<i32>) -> Result<OrderBook> {
        let spec = self.catalog.market(pair)?;
        let depth = match depth {
            None => usize::MAX,
            Some(d) if d >= 1 => usize::try_from(d).unwrap_or(usize::MAX),
            Some(_) => return Err(coded(ErrorCode::BadUserInput, "depth must be at least 1")),
        };
        let mut stream = self.venue.subscribe().await.map_err(errors::venue_error)?;
        let snapshot = tokio::time::timeout(SNAPSHOT_TIMEOUT, async {
            while let Some(event) = stream.events.recv().await {
                if let MarketEvent::Snapshot {
                    pair: p,
                    seq,
                    trade_seq,
                    venue_ts,
                    bids,
                    asks,
                    ..
                } = event
                {
                    if *p == *pair {
                        return Some((seq, trade_seq, venue_ts, bids, asks));
                    }
                }
            }
            None
        })
        .await;
        let Ok(Some((seq, trade_seq, venue_ts, bids, asks))) = snapshot else {
            return Err(unavailable("the venue sent no snapshot"));
        };
        let top = |levels: Vec<_>| {
            let n = levels.len().min(depth);
            Level::list(spec, &levels[..n])
        };
        Ok(OrderBook {
            pair: spec.symbol.clone(),
            epoch: stream.epoch,
            seq: UInt64(seq),
            trade_seq: UInt64(trade_seq),
            venue_ts: UInt64(venue_ts),
            bids: top(bids),
            asks: top(asks),
        })
    }
}

fn unavailable(message: &str) -> Error {
    coded(ErrorCode::Unavailable, message)
}

/// A user id as the venue takes it: 1 to 128 bytes, else `BAD_USER_INPUT`.
fn checked_user_id(id: &ID) -> Result<&str> {
    if id.is_empty() || id.len() > MAX_USER_ID_LEN {
        return Err(coded(
            ErrorCode::BadUserInput,
            format!("user id must be 1 to {MAX_USER_ID_LEN} bytes"),
        ));
    }
    Ok(id.as_str())
}

/// The schema over `state`, refusing operations beyond `limits`.
pub fn build_schema(state: VenueState, limits: QueryLimits) -> VenueSchema {
    Schema::build(Query, Mutation, Subscription)
        .data(state)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .finish()
}

/// The schema's SDL (no state needed), for comparing with the contract.
pub fn sdl() -> String {
    Schema::build(Query, Mutation, Subscription).finish().sdl()
}
