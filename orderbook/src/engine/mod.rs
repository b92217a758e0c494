//! The price-time-priority matching engine the sandbox venue runs on.
//!
//! One [`MatchingEngine`] per pair. [`MatchingEngine::submit`] and
//! [`MatchingEngine::cancel`] append to an [`EngineEvents`] what they caused:
//! trades in execution order, one L2 [`BookDelta`] per changed price level
//! (absolute quantity, each price at most once per side per call, zero
//! deleting the level), and the order updates. The engine keeps its own
//! [`L2Book`], always equal to an L2 book rebuilt from its deltas, and never
//! left crossed.

mod matching;
mod types;

pub use matching::MatchingEngine;
pub use types::*;
