//! What `nax-worker`'s subcommands do, and the consumers `nax-hub` runs in
//! process ([`start_in_hub`]): one place that turns the configuration
//! into running consumers.

use crate::running::{source, Running};
use api::events::sqs::Queue;
use nax_config::Config;
use std::path::PathBuf;

/// One consumer of `nax-worker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Audit,
    Hubspot,
    Webhooks,
    Reconcile,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Audit, Kind::Hubspot, Kind::Webhooks, Kind::Reconcile];

    /// Whether it moves money (needs the venue and the API's parts).
    fn needs_api(self) -> bool {
        matches!(self, Kind::Webhooks | Kind::Reconcile)
    }
}

/// The consumers of a `nax-worker` process, and the API parts they use.
pub struct Process {
    pub running: Running,
    api: Option<api::Api>,
}

impl Process {
    /// Stops the consumers, then the API parts (a last outbox drain).
    pub async fn stop(self) {
        self.running.stop().await;
        if let Some(api) = self.api {
            api.stop().await;
        }
    }
}

/// Reading the archive back.
#[derive(Debug, Clone)]
pub enum AuditRead {
    Verify {
        from: String,
        to: String,
    },
    Export {
        user: String,
        from: Option<String>,
        to: Option<String>,
        out: Option<PathBuf>,
    },
}

/// Starts `kinds` for `nax-worker`.
pub async fn start(config: &Config, kinds: &[Kind]) -> anyhow::Result<Process> {
    let api = if kinds.iter().any(|k| k.needs_api()) {
        Some(worker_api(config).await?)
    } else {
        None
    };
    let running = Running::default();
    if let Some(kind) = kinds.first() {
        // Wired as each consumer lands.
        let _ = source(&config.api, &config.data_dir, Queue::WebhookProcessing).await;
        anyhow::bail!("{kind:?} is not built yet");
    }
    Ok(Process { running, api })
}

/// The API's parts for a worker: the configured store, events and venue
/// (a `graphql` venue: the in-process sandbox is the hub's own, so a
/// separate worker cannot reach it — run the consumers in the hub with
/// `[worker] in_process`, or both against a standalone `nax-venue`).
async fn worker_api(config: &Config) -> anyhow::Result<api::Api> {
    if config.venue.kind != nax_config::VenueKind::Graphql {
        anyhow::bail!(
            "the webhook applier and reconciliation move money on the venue: with the in-process \
             sandbox venue they run inside nax-hub ([worker] in_process = true); a separate \
             nax-worker needs NAX_VENUE=graphql and the venue's endpoint"
        );
    }
    let venue: std::sync::Arc<dyn feeds::Venue> = config.venue.connect_graphql().await?;
    let parts = api::ApiParts::from_config(
        config.api.clone(),
        config.data_dir.clone(),
        venue,
        String::new(),
    )
    .await?;
    api::Api::start_for_worker(parts).await
}

/// `nax-worker audit verify|export`.
pub async fn audit(_config: &Config, _read: AuditRead) -> anyhow::Result<()> {
    anyhow::bail!("the audit archive is not built yet")
}

/// `nax-worker reconcile` (one run).
pub async fn reconcile_once(_config: &Config) -> anyhow::Result<()> {
    anyhow::bail!("reconciliation is not built yet")
}

/// The consumers `nax-hub` runs in its own process when
/// `[worker] in_process` says so (see
/// [`nax_config::WorkerConfig::runs_in_process`]), on the hub's own API
/// parts. The webhook applier is not among them: the API runs it itself
/// (`api::webhooks::worker`).
pub async fn start_in_hub(config: &Config, api: &api::Api) -> anyhow::Result<Running> {
    let running = Running::default();
    if !config.worker.runs_in_process(config.api.events_to_sqs) {
        return Ok(running);
    }
    let _ = api;
    Ok(running)
}
