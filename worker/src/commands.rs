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

/// `nax-worker reconcile` (one run): prints the report, then stops the
/// API parts (a last outbox drain publishes the `reconcile.*` events).
/// Exits with an error when the pass found a difference or a discrepancy,
/// so a scheduler's failed run is visible.
pub async fn reconcile_once(config: &Config) -> anyhow::Result<()> {
    let api = worker_api(config).await?;
    let context = crate::reconcile::ReconcileContext::from_api(&api);
    let report = crate::reconcile::run_once(&context, &reconcile_settings(config)).await;
    api.stop().await;
    let report = report?;
    println!(
        "stuck: {} (provider says final: {}), users checked: {}, differences: {}, problems: {}{}",
        report.stuck.len(),
        report.discrepancies,
        report.users_checked,
        report.differences.len(),
        report.problems.len(),
        if report.truncated { " (truncated)" } else { "" }
    );
    for difference in &report.differences {
        println!("difference: {difference:?}");
    }
    for problem in &report.problems {
        println!("problem: {problem}");
    }
    if report.differences.is_empty() && report.discrepancies == 0 {
        Ok(())
    } else {
        anyhow::bail!("reconciliation found something to look at")
    }
}

fn reconcile_settings(config: &Config) -> crate::reconcile::ReconcileSettings {
    crate::reconcile::ReconcileSettings {
        stuck_after: std::time::Duration::from_secs(config.worker.reconcile_stuck_after_secs),
        ..Default::default()
    }
}

/// Reconciliation every `[worker] reconcile_every_secs` on `api`'s parts
/// (the first pass after one period).
fn spawn_reconcile(running: &mut Running, config: &Config, api: &api::Api) {
    let every = config.worker.reconcile_every_secs;
    if every == 0 {
        return;
    }
    let context = crate::reconcile::ReconcileContext::from_api(api);
    let settings = reconcile_settings(config);
    running.spawn_task("reconcile", move |mut stop| {
        tokio::spawn(async move {
            let period = std::time::Duration::from_secs(every);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = stop.changed() => return,
                }
                if let Err(e) = crate::reconcile::run_once(&context, &settings).await {
                    tracing::warn!(error = %format!("{e:#}"), "reconciliation pass failed");
                }
            }
        })
    });
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
