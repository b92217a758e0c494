//! The upstream side of NA-X Stream: the [`Venue`] and [`MarketFeed`]
//! boundaries, the sandbox venue that implements them in process, the
//! Shift Markets adapter that implements them over GraphQL, and the NDJSON
//! recorder and replay feed used for deterministic tests and benches.

pub mod event;
pub mod replay;
pub mod resilience;
pub mod sandbox;
pub mod sandbox_pairs;
pub mod shift;
pub mod venue;

/// The former name of [`sandbox_pairs`] (it holds the sandbox's default
/// pairs, not "markets" in general); kept only until the callers outside
/// this crate's sources (API unit tests, hub and feeds integration tests)
/// use the new name.
#[doc(hidden)]
pub use sandbox_pairs as markets;

pub use event::{MarketEvent, MarketStream, PublicTrade, SnapshotReason};
pub use sandbox::{SandboxConfig, SandboxVenue};
pub use shift::{ShiftConfig, ShiftVenue};
pub use venue::{MarketFeed, Venue, VenueError};
