//! The upstream side of NA-X Stream: the [`Venue`] and [`MarketFeed`]
//! boundaries, the sandbox venue that implements them in process, the
//! Shift Markets adapter that implements them over GraphQL, and the NDJSON
//! recorder and replay feed used for deterministic tests and benches.

pub mod event;
pub mod multi;
pub mod replay;
pub mod resilience;
pub mod sandbox;
pub mod sandbox_pairs;
pub mod shift;
pub mod trace;
pub mod venue;

pub use event::MAX_HALT_REASON_CHARS;
pub use event::{MarketEvent, MarketStream, PublicTrade, SnapshotReason, TradingStatus};
pub use multi::{MultiVenue, MultiVenueError, VenuePart};
pub use sandbox::{SandboxConfig, SandboxVenue};
pub use shift::{ShiftConfig, ShiftVenue};
pub use venue::{MarketFeed, Venue, VenueError};
