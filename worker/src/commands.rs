//! What `nax-worker`'s subcommands do, and the consumers `nax-hub` runs in
//! process ([`start_in_hub`]): one place that turns the configuration
//! into running consumers.

use crate::audit::{AuditArchive, AuditSettings, DirSink, S3Config, S3Sink, Sink};
use crate::hubspot::{HubspotSettings, HubspotSync};
use crate::running::{source, Running};
use api::events::sqs::Queue;
use nax_config::Config;
use std::path::PathBuf;
use std::sync::Arc;

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
    let store = match &api {
        Some(api) => api.store.clone(),
        None => api::root::open_store(&config.api, &config.data_dir).await?,
    };
    let mut running = Running::default();
    for &kind in kinds {
        if kind == Kind::Hubspot && config.worker.hubspot_token.is_none() {
            anyhow::bail!("the CRM sync needs a HubSpot token (NAX_HUBSPOT_TOKEN)");
        }
        add(&mut running, config, kind, &store, api.as_ref()).await?;
    }
    Ok(Process { running, api })
}

/// Starts one consumer on `store` (and `api`'s parts, for the ones that
/// move money).
async fn add(
    running: &mut Running,
    config: &Config,
    kind: Kind,
    store: &Arc<dyn api::store::Store>,
    api: Option<&api::Api>,
) -> anyhow::Result<()> {
    let api_parts = || api.ok_or_else(|| anyhow::anyhow!("{kind:?} needs the API's parts"));
    match kind {
        Kind::Audit => {
            let archive = AuditArchive::new(
                store.clone(),
                audit_sink(config).await?,
                audit_settings(config),
            );
            let source = source(&config.api, &config.data_dir, Queue::AuditLog).await?;
            running.spawn(source, Arc::new(archive));
        }
        Kind::Hubspot => {
            let Some(token) = config.worker.hubspot_token.clone() else {
                return Ok(());
            };
            let settings = HubspotSettings {
                base_url: config.worker.hubspot_base_url.clone(),
                token,
                requests_per_window: config.worker.hubspot_requests_per_10s as usize,
                ..HubspotSettings::default()
            };
            let sync = HubspotSync::new(store.clone(), &settings)?;
            let source = source(&config.api, &config.data_dir, Queue::HubspotSync).await?;
            running.spawn(source, Arc::new(sync));
        }
        Kind::Webhooks => {
            let applier = api::webhooks::worker::WebhookApplier::new(
                axum::extract::FromRef::from_ref(api_parts()?),
            );
            let source = source(&config.api, &config.data_dir, Queue::WebhookProcessing).await?;
            running.spawn(source, Arc::new(applier));
        }
        Kind::Reconcile => spawn_reconcile(running, config, api_parts()?),
    }
    Ok(())
}

/// Where the archive goes: S3 when `[worker] audit_bucket` is set, else
/// `<data_dir>/audit/`.
async fn audit_sink(config: &Config) -> anyhow::Result<Arc<dyn Sink>> {
    let worker = &config.worker;
    if worker.audit_bucket.is_empty() {
        return Ok(Arc::new(DirSink::in_data_dir(&config.data_dir)));
    }
    let s3 = S3Config {
        bucket: worker.audit_bucket.clone(),
        kms_key_id: (!worker.audit_kms_key_id.is_empty()).then(|| worker.audit_kms_key_id.clone()),
        region: config.api.sqs_region.clone(),
        endpoint: (!worker.s3_endpoint.is_empty()).then(|| worker.s3_endpoint.clone()),
        static_credentials: config.api.aws_credentials(),
    };
    Ok(Arc::new(S3Sink::new(&s3).await))
}

fn audit_settings(config: &Config) -> AuditSettings {
    AuditSettings {
        max_deliveries: config.worker.audit_batch_max.max(1),
        wait: std::time::Duration::from_millis(config.worker.audit_batch_wait_ms),
        ..AuditSettings::default()
    }
}

/// The API's parts for a worker: the configured store, events and venue
/// (a `graphql` venue or `[[venues]]`: the in-process sandbox is the hub's
/// own, so a separate worker cannot reach it — run the consumers in the
/// hub with `[worker] in_process`, or both against a standalone
/// `nax-venue`).
async fn worker_api(config: &Config) -> anyhow::Result<api::Api> {
    let venue: std::sync::Arc<dyn feeds::Venue> = if !config.venues.is_empty() {
        let connected = nax_config::connect_all(&config.venues).await?;
        std::sync::Arc::new(nax_config::multi_venue(&connected)?)
    } else if config.venue.kind != nax_config::VenueKind::Graphql {
        anyhow::bail!(
            "the webhook applier and reconciliation move money on the venue: with the in-process \
             sandbox venue they run inside nax-hub ([worker] in_process = true); a separate \
             nax-worker needs NAX_VENUE=graphql and the venue's endpoint, or [[venues]]"
        );
    } else {
        config.venue.connect_graphql().await?
    };
    let parts = api::ApiParts::from_config(
        config.api.clone(),
        config.data_dir.clone(),
        venue,
        String::new(),
    )
    .await?;
    api::Api::start_for_worker(parts).await
}

/// `nax-worker audit verify|export`: reads the archive where the
/// configuration puts it. `verify` prints the report and fails when it
/// found a problem; `export` writes the user's records and fails when
/// their chain does not hold.
pub async fn audit(config: &Config, read: AuditRead) -> anyhow::Result<()> {
    let sink = audit_sink(config).await?;
    match read {
        AuditRead::Verify { from, to } => {
            let report = crate::audit::verify(&*sink, parse_hour(&from)?, parse_hour(&to)?).await?;
            println!("{report}");
            anyhow::ensure!(report.ok(), "the archive does not verify");
        }
        AuditRead::Export {
            user,
            from,
            to,
            out,
        } => {
            let from = match from {
                Some(t) => parse_hour(&t)?,
                None => chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            };
            let to = match to {
                Some(t) => parse_hour(&t)?,
                None => chrono::Utc::now(),
            };
            // A compliance export is worth a line in the operator's log.
            tracing::info!(user_id = %user, %from, %to, "exporting a user's audit trail");
            let summary = match out {
                Some(path) => {
                    let file = std::io::BufWriter::new(std::fs::File::create(&path)?);
                    crate::audit::export(&*sink, &user, from, to, file).await?
                }
                None => crate::audit::export(&*sink, &user, from, to, std::io::stdout()).await?,
            };
            eprintln!(
                "{} records of {user} from {} objects",
                summary.records, summary.objects
            );
            for problem in &summary.problems {
                eprintln!("problem: {problem}");
            }
            anyhow::ensure!(summary.ok(), "the user's chain does not hold");
        }
    }
    Ok(())
}

/// An hour, UTC: `2026-12-01T00`, `2026-12-01T00:00`, `2026-12-01`, or
/// RFC 3339.
fn parse_hour(text: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    use chrono::TimeZone as _;
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let candidates = [
        format!("{text}:00:00"),
        format!("{text}:00"),
        format!("{text}T00:00:00"),
    ];
    candidates
        .iter()
        .find_map(|c| chrono::NaiveDateTime::parse_from_str(c, "%Y-%m-%dT%H:%M:%S").ok())
        .map(|t| chrono::Utc.from_utc_datetime(&t))
        .ok_or_else(|| anyhow::anyhow!("{text:?} is not an hour (2026-12-01T00, or RFC 3339)"))
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

/// An operator's correction (`nax-worker reconcile correct|close`).
#[derive(Debug)]
pub enum Correction {
    /// [`crate::reconcile::apply_correction`].
    Venue {
        user: String,
        asset: String,
        amount: String,
        reason: String,
        operator: String,
    },
    /// [`crate::reconcile::close_transaction`].
    Close {
        user: String,
        transaction: String,
        outcome: api::money::movement::Outcome,
        reason: String,
        operator: String,
    },
}

/// `nax-worker reconcile correct|close`: applies `correction` (refused,
/// changing nothing, without a reason or an operator), prints the
/// resulting transaction as one JSON line, then stops the API parts (a
/// last outbox drain publishes the `reconcile.correction` event to the
/// audit trail). docs/RECONCILIATION.md, "Corrections".
pub async fn reconcile_correct(config: &Config, correction: Correction) -> anyhow::Result<()> {
    let api = worker_api(config).await?;
    let context = crate::reconcile::ReconcileContext::from_api(&api);
    let done = match &correction {
        Correction::Venue {
            user,
            asset,
            amount,
            reason,
            operator,
        } => {
            crate::reconcile::apply_correction(&context, user, asset, amount, reason, operator)
                .await
        }
        Correction::Close {
            user,
            transaction,
            outcome,
            reason,
            operator,
        } => {
            crate::reconcile::close_transaction(
                &context,
                user,
                transaction,
                *outcome,
                reason,
                operator,
            )
            .await
        }
    };
    api.stop().await;
    let tx = done?;
    println!("{}", serde_json::to_string(&tx)?);
    Ok(())
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
    let mut running = Running::default();
    if !config.worker.runs_in_process(config.api.events_to_sqs) {
        return Ok(running);
    }
    for kind in [Kind::Audit, Kind::Hubspot, Kind::Reconcile] {
        add(&mut running, config, kind, &api.store, Some(api)).await?;
    }
    Ok(running)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hours_read_in_every_documented_spelling() {
        let want = "2026-12-01T05:00:00Z";
        for text in ["2026-12-01T05", "2026-12-01T05:00", "2026-12-01T05:00:00Z"] {
            assert_eq!(
                super::parse_hour(text)
                    .unwrap()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                want,
                "{text}"
            );
        }
        assert_eq!(
            super::parse_hour("2026-12-01")
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "2026-12-01T00:00:00Z"
        );
        assert!(super::parse_hour("yesterday").is_err());
    }
}
