//! What several nodes share through Redis (docs/ARCHITECTURE.md "Several nodes"): the
//! connection ([`link`]), refresh-family state and revocations
//! ([`sessions`]), the login throttle's counts ([`login_counts`]), the
//! private-channel backplane ([`backplane`]), and idempotency-key claims
//! ([`claim`]). The
//! rate limiter's Redis side is in `http::ratelimit::shared`; the hub's
//! `market:{pair}:orderbook` cache uses the same link.
//!
//! Redis is optional (`[api] redis_url`): without it a node keeps all of
//! this in process. With it, Redis being down degrades each part to its
//! in-process behaviour (counted by a metric, logged); no request fails
//! because Redis is down.

pub mod backplane;
pub mod book_cache;
pub mod claim;
pub mod lease;
pub mod link;
pub mod login_counts;
pub mod sessions;

pub use link::{RedisLink, RedisUnavailable};
