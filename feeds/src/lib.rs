//! The upstream side of NA-X Stream: the [`Venue`] and [`MarketFeed`]
//! boundaries, the sandbox venue that implements them in process, and the
//! NDJSON recorder and replay feed used for deterministic tests and benches.

pub mod event;
pub mod markets;
pub mod replay;
pub mod sandbox;
pub mod venue;

pub use event::{MarketEvent, MarketStream, PublicTrade, SnapshotReason};
pub use sandbox::{SandboxConfig, SandboxVenue};
pub use venue::{MarketFeed, Venue, VenueError};
