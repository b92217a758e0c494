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

/// Most venues in `[[venues]]`.
pub const MAX_VENUES: usize = 16;
/// Largest `token_file` read, in bytes.
const MAX_TOKEN_FILE_BYTES: u64 = 16 * 1024;

/// One of several venues (TOML `[[venues]]`; docs/ARCHITECTURE.md,
/// "Several venues"): a venue speaking the GraphQL contract that owns a set
/// of pairs, with its own endpoint, credentials, breaker and staleness.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VenueEntry {
    /// Lowercase letters, digits and `-`, at most 32; unique. It prefixes
    /// the venue's order ids (`NAME:ID`), so renaming a venue orphans the
    /// ids stored under the old name.
    pub name: String,
    /// Its GraphQL endpoint.
    pub endpoint: String,
    /// Its bearer token (printed redacted); or `token_file`.
    #[serde(serialize_with = "api::secret::Secret::redacted_serialize_opt")]
    pub token: Option<api::secret::Secret>,
    /// A file holding the bearer token (a mounted secret), read at start.
    #[serde(serialize_with = "crate::redact::serialize_opt_path_lossy")]
    pub token_file: Option<std::path::PathBuf>,
    /// The pairs it owns (served from it, orders routed to it); empty:
    /// every pair it lists. A pair may belong to one venue only.
    pub pairs: Vec<String>,
    /// Assets whose deposits and withdrawals go to this venue; an asset
    /// no venue names goes to the first venue listing it.
    pub funds: Vec<String>,
    /// As in `[venue]`.
    pub stale_after_ms: u64,
    /// As in `[venue]`, but below `api.upstream_timeout_ms`: a venue that
    /// does not answer is then reported by its own timeout, as that venue
    /// unavailable, rather than by the API's, which would count against
    /// the breaker in front of every venue.
    pub request_timeout_ms: u64,
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
}

impl Default for VenueEntry {
    fn default() -> Self {
        let single = VenueConfig::default();
        VenueEntry {
            name: String::new(),
            endpoint: String::new(),
            token: None,
            token_file: None,
            pairs: Vec::new(),
            funds: Vec::new(),
            stale_after_ms: single.stale_after_ms,
            // Below the API's `upstream_timeout_ms` (2 s): the venue's own
            // timeout answers first, as one venue unavailable.
            request_timeout_ms: 1_500,
            backoff_min_ms: single.backoff_min_ms,
            backoff_max_ms: single.backoff_max_ms,
        }
    }
}

impl VenueEntry {
    /// This venue as a `graphql` `[venue]` section, its token read from
    /// `token_file` when that is given.
    pub fn as_venue(&self) -> anyhow::Result<VenueConfig> {
        use anyhow::Context as _;
        let token = match (
            self.token.as_ref().filter(|t| !t.expose().is_empty()),
            &self.token_file,
        ) {
            (Some(token), _) => token.clone(),
            (None, Some(path)) => {
                use std::io::Read as _;
                let reading = || format!("venue {}: reading {}", self.name, path.display());
                let mut text = String::new();
                std::fs::File::open(path)
                    .with_context(reading)?
                    .take(MAX_TOKEN_FILE_BYTES + 1)
                    .read_to_string(&mut text)
                    .with_context(reading)?;
                let token = text.trim();
                if token.is_empty() || text.len() as u64 > MAX_TOKEN_FILE_BYTES {
                    anyhow::bail!(
                        "venue {}: {} must hold one token of at most {MAX_TOKEN_FILE_BYTES} bytes",
                        self.name,
                        path.display()
                    );
                }
                api::secret::Secret::new(token)
            }
            (None, None) => anyhow::bail!("venue {}: token or token_file is required", self.name),
        };
        Ok(VenueConfig {
            kind: VenueKind::Graphql,
            stale_after_ms: self.stale_after_ms,
            endpoint: self.endpoint.clone(),
            token: Some(token),
            request_timeout_ms: self.request_timeout_ms,
            backoff_min_ms: self.backoff_min_ms,
            backoff_max_ms: self.backoff_max_ms,
            ..VenueConfig::default()
        })
    }
}

/// A venue of `[[venues]]`, connected.
pub struct ConnectedVenue {
    pub entry: VenueEntry,
    pub venue: std::sync::Arc<feeds::shift::ShiftVenue>,
}

/// Connects every venue of `[[venues]]`, in order; fails naming the first
/// that cannot be reached (the hub needs each one's pairs to start).
pub async fn connect_all(entries: &[VenueEntry]) -> anyhow::Result<Vec<ConnectedVenue>> {
    use anyhow::Context as _;
    let mut connected = Vec::new();
    for entry in entries {
        let venue = entry
            .as_venue()?
            .connect_graphql()
            .await
            .with_context(|| format!("venue {}", entry.name))?;
        connected.push(ConnectedVenue {
            entry: entry.clone(),
            venue,
        });
    }
    Ok(connected)
}

/// The connected venues as one trading venue: orders by pair, order ids
/// named by venue, shared assets summed (`feeds::multi`).
pub fn multi_venue(connected: &[ConnectedVenue]) -> anyhow::Result<feeds::MultiVenue> {
    let parts = connected
        .iter()
        .map(|c| feeds::VenuePart {
            name: c.entry.name.clone(),
            venue: c.venue.clone(),
            pairs: c.entry.pairs.clone(),
            funds: c.entry.funds.clone(),
        })
        .collect();
    Ok(feeds::MultiVenue::new(parts)?)
}
