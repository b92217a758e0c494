//! `nax-worker`: the consumers after the queues, as a process of their own
//! (docs/ARCHITECTURE.md, "After the queues"). One subcommand per consumer
//! and `all`; `audit verify` and `audit export` read the archive back.
//! Configuration is `nax-hub`'s: `--config FILE` and the `NAX_*`
//! variables (`nax-hub --help` lists them). SIGINT or SIGTERM stops it
//! gracefully: each consumer finishes its batch and gives back the rest.

use clap::{Parser, Subcommand};
use nax_config::Config;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "nax-worker", version, about = "NA-X Stream queue consumers")]
struct Cli {
    /// TOML configuration file (the same as nax-hub's).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log lines as `json` or `text` (also `NAX_LOG_FORMAT`; default: JSON
    /// unless standard output is a terminal).
    #[arg(long, global = true, value_name = "FORMAT")]
    log_format: Option<nax_config::logging::LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The audit archive (audit-log-queue.fifo → S3 or <data_dir>/audit/),
    /// or, with a subcommand, reading it back.
    Audit {
        #[command(subcommand)]
        action: Option<AuditAction>,
    },
    /// The HubSpot CRM sync (hubspot-sync-queue).
    Hubspot,
    /// The webhook applier (webhook-processing-queue).
    Webhooks,
    /// Reconciliation: one run, or every `--every` seconds; with
    /// `correct` or `close`, an operator's correction after a report
    /// (docs/RECONCILIATION.md, "Corrections").
    Reconcile {
        #[arg(long, value_name = "SECS")]
        every: Option<u64>,
        #[command(subcommand)]
        action: Option<ReconcileAction>,
    },
    /// Every consumer, and reconciliation every
    /// `[worker] reconcile_every_secs`.
    All,
}

/// An operator's correction: explicit (every argument required, a
/// non-empty reason and operator), recorded as a transaction and a
/// `reconcile.correction` event in the audit trail.
#[derive(Debug, Subcommand)]
enum ReconcileAction {
    /// Credits (a positive amount) or debits (a negative one, refused
    /// beyond the balance) a user's venue balance by an exact decimal
    /// amount, recorded as a `correction` transaction.
    Correct {
        /// The user's id.
        #[arg(long)]
        user: String,
        /// The asset (`USD`, `BTC`, ...).
        #[arg(long)]
        asset: String,
        /// Exact decimal at most at the asset's scale: `50`, `-0.25`.
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        /// Why (stored with the correction and in its event).
        #[arg(long)]
        reason: String,
        /// Who applies it (an email or a name).
        #[arg(long)]
        operator: String,
    },
    /// Closes a stuck (`pending` or `processing`) deposit or withdrawal as
    /// its provider says, with no venue call.
    Close {
        /// The user's id.
        #[arg(long)]
        user: String,
        /// The transaction's id.
        #[arg(long)]
        transaction: String,
        /// The provider's final word.
        #[arg(long, value_enum)]
        outcome: CloseOutcome,
        /// Why (stored in the `reconcile.correction` event).
        #[arg(long)]
        reason: String,
        /// Who closes it.
        #[arg(long)]
        operator: String,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CloseOutcome {
    Completed,
    Failed,
}

#[derive(Debug, Subcommand)]
enum AuditAction {
    /// Re-reads the archive between two hours and reports every gap,
    /// duplicate and broken link; exits 1 when there is one.
    Verify {
        /// First hour, UTC (`2026-12-01T00`, or RFC 3339).
        #[arg(long)]
        from: String,
        /// Last hour, UTC, included.
        #[arg(long)]
        to: String,
    },
    /// Writes one user's trail as NDJSON (a compliance request), its chain
    /// checked as it is read.
    Export {
        #[arg(long)]
        user: String,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = load_config(cli.config.as_deref())?;
    if let Some(format) = cli.log_format {
        config.log_format = Some(format);
    }
    let filter = std::env::var(nax_config::LOG_ENV).ok();
    // A command that answers on standard output (a report, a trail, a
    // correction) logs to standard error, so its output stays only its
    // own; the consumers log to standard output (docs/OPERATIONS.md,
    // "Logs").
    let answers_on_stdout = matches!(
        cli.command,
        Command::Audit { action: Some(_) } | Command::Reconcile { .. }
    );
    let telemetry = if answers_on_stdout {
        use std::io::IsTerminal as _;
        nax_config::logging::init_to(
            filter.as_deref(),
            nax_config::logging::LogFormat::or_default(config.log_format),
            config.otlp_endpoint.as_deref(),
            "nax-worker",
            std::io::stderr,
            std::io::stderr().is_terminal(),
        )?
    } else {
        nax_config::logging::init(
            filter.as_deref(),
            config.log_format,
            config.otlp_endpoint.as_deref(),
            "nax-worker",
        )?
    };
    let result = command(cli.command, config).await;
    tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
    result
}

async fn command(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Audit {
            action: Some(action),
        } => worker::commands::audit(&config, action.into()).await,
        Command::Audit { action: None } => run(&config, &[worker::Kind::Audit]).await,
        Command::Hubspot => run(&config, &[worker::Kind::Hubspot]).await,
        Command::Webhooks => run(&config, &[worker::Kind::Webhooks]).await,
        Command::Reconcile {
            action: Some(action),
            ..
        } => worker::commands::reconcile_correct(&config, action.into()).await,
        Command::Reconcile { every: None, .. } => worker::commands::reconcile_once(&config).await,
        Command::Reconcile {
            every: Some(secs), ..
        } => {
            let mut config = config;
            config.worker.reconcile_every_secs = secs.max(1);
            run(&config, &[worker::Kind::Reconcile]).await
        }
        Command::All => run(&config, &worker::Kind::ALL).await,
    }
}

impl From<ReconcileAction> for worker::commands::Correction {
    fn from(action: ReconcileAction) -> Self {
        use worker::commands::Correction;
        match action {
            ReconcileAction::Correct {
                user,
                asset,
                amount,
                reason,
                operator,
            } => Correction::Venue {
                user,
                asset,
                amount,
                reason,
                operator,
            },
            ReconcileAction::Close {
                user,
                transaction,
                outcome,
                reason,
                operator,
            } => Correction::Close {
                user,
                transaction,
                outcome: match outcome {
                    CloseOutcome::Completed => api::money::movement::Outcome::Completed,
                    CloseOutcome::Failed => api::money::movement::Outcome::Failed,
                },
                reason,
                operator,
            },
        }
    }
}

impl From<AuditAction> for worker::commands::AuditRead {
    fn from(action: AuditAction) -> Self {
        match action {
            AuditAction::Verify { from, to } => worker::commands::AuditRead::Verify { from, to },
            AuditAction::Export {
                user,
                from,
                to,
                out,
            } => worker::commands::AuditRead::Export {
                user,
                from,
                to,
                out,
            },
        }
    }
}

/// The hub's configuration: the file, then the `NAX_*` variables.
fn load_config(file: Option<&std::path::Path>) -> anyhow::Result<Config> {
    let mut args = vec![std::ffi::OsString::from("nax-worker")];
    if let Some(file) = file {
        args.push("--config".into());
        args.push(file.into());
    }
    let env = std::env::vars().filter(|(name, _)| name.starts_with("NAX_"));
    Config::load_from(args, env)
}

/// Runs `kinds` with the health endpoints until SIGINT or SIGTERM.
async fn run(config: &Config, kinds: &[worker::Kind]) -> anyhow::Result<()> {
    // Caught from before the start: a SIGTERM that comes while the
    // consumers start is kept, and stops them in order once started.
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let metrics = worker::serve::install_metrics()?;
    tracing::info!(config = %config.redacted(), ?kinds, "starting nax-worker");
    let process = worker::commands::start(config, kinds).await?;
    let addr = std::net::SocketAddr::new(config.worker.health_bind, config.worker.health_port);
    let listener = worker::serve::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving /health, /ready, /metrics");
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(worker::serve::serve(
        listener,
        metrics,
        process.running.ready_flags(),
        async move {
            let _ = http_stopped.await;
        },
    ));
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("stopping: finishing the batches in hand");
    process.stop().await;
    let _ = stop_http.send(());
    let _ = http.await;
    Ok(())
}
