//! The `[history]` section: how much recent trade history each channel
//! keeps.

use serde::{Deserialize, Serialize};

/// Recent trade history kept per channel (TOML section `[history]`); an
/// entry is dropped when either bound is exceeded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// Most messages kept per channel; at least 1.
    pub max_messages: usize,
    /// Oldest message kept, in milliseconds; at least 1.
    pub max_age_ms: u64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            max_messages: 1_000,
            max_age_ms: 60_000,
        }
    }
}
