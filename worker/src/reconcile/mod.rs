//! Reconciliation (docs/RECONCILIATION.md): one pass of [`run_once`]
//! finds deposits and withdrawals left open past
//! [`ReconcileSettings::stuck_after`] and asks their provider about them
//! ([`stuck`]), then compares each user's venue balances with what our
//! records say they hold ([`balances`]). It reports and never repairs:
//! a provider's final word on an open transaction is a
//! `reconcile.discrepancy` event, a balance apart from the records a
//! `reconcile.difference` event (both in the outbox, so on the audit
//! log), and the gauges `nax_reconcile_stuck_transactions` and
//! `nax_reconcile_differences`. An operator then applies an explicit,
//! audited [`correct::apply_correction`] (a venue credit or debit) and
//! closes a stuck transaction with [`correct::close_transaction`];
//! `run_once` calls neither.

pub mod amount;
pub mod balances;
pub mod correct;
pub mod stuck;

pub use balances::BalanceDifference;
pub use correct::{apply_correction, close_transaction};
pub use stuck::{ProviderAnswer, StuckTransaction};

use api::money::Ledger;
use api::providers::custody::Custody;
use api::providers::payment::{FiatProvider, PaymentProvider};
use std::sync::Arc;
use std::time::Duration;

/// What reconciliation reads and writes: the store and the venue (as the
/// API's [`Ledger`]: corrections take its normal venue path) and the
/// providers to ask about open transactions.
#[derive(Clone)]
pub struct ReconcileContext {
    pub ledger: Ledger,
    /// Asked about crypto deposits and withdrawals (by custody's id).
    pub custody: Arc<dyn Custody>,
    /// Asked about fiat deposits and withdrawals (by the provider's id),
    /// one per fiat provider.
    pub payments: Vec<(FiatProvider, Arc<dyn PaymentProvider>)>,
}

impl ReconcileContext {
    /// The parts of a running API (`nax-worker reconcile` builds one with
    /// the API's configuration).
    pub fn from_api(api: &api::Api) -> ReconcileContext {
        ReconcileContext {
            ledger: axum::extract::FromRef::from_ref(api),
            custody: api.wallets.custody.clone(),
            payments: FiatProvider::all()
                .map(|p| (p, api.fiat.slot(p).provider.clone()))
                .collect(),
        }
    }

    /// The payment provider named `name` (`stripe`, `banxa`, `bcb`).
    fn payment(&self, name: &str) -> Option<&Arc<dyn PaymentProvider>> {
        self.payments
            .iter()
            .find(|(p, _)| p.as_str() == name)
            .map(|(_, provider)| provider)
    }
}

/// How a pass runs.
#[derive(Debug, Clone)]
pub struct ReconcileSettings {
    /// A `pending` or `processing` deposit or withdrawal created longer
    /// ago than this is stuck. Default: `[worker]
    /// reconcile_stuck_after_secs`'s (3,600 s; docs/RECONCILIATION.md).
    pub stuck_after: Duration,
    /// At most this many transactions read per status (stuck ones, and
    /// the scan that finds the users to compare); a pass that reaches it
    /// says so ([`ReconcileReport::truncated`]).
    pub scan_limit: usize,
    /// Time allowed for one provider status query.
    pub provider_timeout: Duration,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        ReconcileSettings {
            stuck_after: Duration::from_secs(
                nax_config::WorkerConfig::default().reconcile_stuck_after_secs,
            ),
            scan_limit: 10_000,
            provider_timeout: Duration::from_secs(10),
        }
    }
}

/// What one pass found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Every stuck transaction with what its provider says, oldest first.
    pub stuck: Vec<StuckTransaction>,
    /// How many of them the provider calls final (each one a
    /// `reconcile.discrepancy` event).
    pub discrepancies: usize,
    /// Every (user, asset) whose venue balance is apart from our records
    /// (each one a `reconcile.difference` event).
    pub differences: Vec<BalanceDifference>,
    /// Users whose balances were compared.
    pub users_checked: usize,
    /// Users whose balances could not be compared, and why (venue down,
    /// a record that cannot be read exactly).
    pub problems: Vec<String>,
    /// True when a scan reached [`ReconcileSettings::scan_limit`]: some
    /// transactions or users were not looked at.
    pub truncated: bool,
}

/// One reconciliation pass (see the module doc). Errors only when the
/// store cannot be read or the events cannot be committed; a provider or
/// venue that does not answer is reported per transaction or user.
pub async fn run_once(
    ctx: &ReconcileContext,
    settings: &ReconcileSettings,
) -> anyhow::Result<ReconcileReport> {
    let mut report = ReconcileReport::default();
    stuck::check(ctx, settings, &mut report).await?;
    balances::check(ctx, settings, &mut report).await?;
    metrics::gauge!("nax_reconcile_stuck_transactions").set(report.stuck.len() as f64);
    metrics::gauge!("nax_reconcile_differences").set(report.differences.len() as f64);
    metrics::counter!("nax_reconcile_discrepancies_total").increment(report.discrepancies as u64);
    metrics::counter!("nax_reconcile_runs_total").increment(1);
    tracing::info!(
        stuck = report.stuck.len(),
        discrepancies = report.discrepancies,
        differences = report.differences.len(),
        users = report.users_checked,
        truncated = report.truncated,
        "reconciliation pass done"
    );
    Ok(report)
}
