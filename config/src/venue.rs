//! The `[venue]` section: which upstream venue the hub mirrors and how it
//! reaches it.

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// The upstream venue the hub mirrors (TOML section `[venue]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VenueConfig {
    /// Which venue implementation to run.
    pub kind: VenueKind,
    /// Synthetic events per second across all pairs; at least 1.
    pub events_per_sec: u32,
    /// Seed of the synthetic venue: the same seed replays the same market.
    pub seed: u64,
    /// A pair whose upstream sends nothing for this long is marked stale
    /// (`GET /ready` 503 `stale:PAIR`, `GET /markets` status `stale`);
    /// 0 disables the check.
    pub stale_after_ms: u64,
    /// `graphql` venue: the upstream's GraphQL endpoint (subscriptions on
    /// the same path over WebSocket).
    pub endpoint: String,
    /// `graphql` venue: the bearer token (required; printed redacted).
    #[serde(serialize_with = "api::secret::Secret::redacted_serialize_opt")]
    pub token: Option<api::secret::Secret>,
    /// `graphql` venue: timeout of one query, mutation or connect, ms.
    pub request_timeout_ms: u64,
    /// `graphql` venue: reconnect backoff, doubling from min to max, ms.
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
}

impl Default for VenueConfig {
    fn default() -> Self {
        Self {
            kind: VenueKind::Sandbox,
            events_per_sec: 400,
            seed: 0x5eed,
            stale_after_ms: 10_000,
            endpoint: "http://127.0.0.1:9090/graphql".into(),
            token: None,
            request_timeout_ms: 2_000,
            backoff_min_ms: 100,
            backoff_max_ms: 5_000,
        }
    }
}

/// The venue implementations the hub can run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum VenueKind {
    /// The embedded, deterministic synthetic venue.
    #[default]
    Sandbox,
    /// A venue speaking `feeds/src/shift/schema.graphql` at
    /// `venue.endpoint` (Shift Markets, or the standalone `nax-venue`).
    Graphql,
}

impl VenueConfig {
    /// Connects the Shift adapter to the configured GraphQL venue
    /// (`kind = "graphql"`: `nax-hub`, and `nax-worker` for the consumers
    /// that move money).
    pub async fn connect_graphql(
        &self,
    ) -> anyhow::Result<std::sync::Arc<feeds::shift::ShiftVenue>> {
        use anyhow::Context as _;
        let token = self.token.as_ref().context("venue.token is required")?;
        let mut config = feeds::shift::ShiftConfig::new(
            self.endpoint.clone(),
            feeds::shift::ShiftToken::new(token.expose()),
        );
        config.request_timeout = std::time::Duration::from_millis(self.request_timeout_ms);
        config.backoff_min = std::time::Duration::from_millis(self.backoff_min_ms);
        config.backoff_max = std::time::Duration::from_millis(self.backoff_max_ms);
        let shift = feeds::shift::ShiftVenue::connect(config)
            .await
            .with_context(|| format!("connecting to the venue at {}", self.endpoint))?;
        Ok(std::sync::Arc::new(shift))
    }
}
