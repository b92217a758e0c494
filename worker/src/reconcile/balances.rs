//! Balances: each user's venue balance (available + locked) of every
//! asset against what our records say the venue should hold for them.
//! The rule (docs/RECONCILIATION.md, "What the records say"), exact at
//! each asset's scale:
//!
//! - a deposit (crypto or fiat) counts `+amount` once its outcome is
//!   recorded: `processing` (credit owed) or `completed`, less what a
//!   provider refunded of it (`refund.amount`: what the user owes back,
//!   debited or, when `unrecovered`, still to be);
//! - a withdrawal counts `-amount` while the venue holds it debited:
//!   `pending` or `completed`; a `processing` one (failure recorded,
//!   refund owed) and a `failed` one count nothing;
//! - a fill moves the pair's assets: a buy `+qty` base and `-price×qty`
//!   quote, a sell the opposite (the sandbox venue charges no fees);
//! - an operator's correction counts nothing: it is a venue credit or
//!   debit that brings the venue back to the records.
//!
//! Every (user, asset) where venue ≠ records is a [`BalanceDifference`]
//! (venue − records) and a `reconcile.difference` event. Users are those
//! with a deposit, withdrawal or fill in the store; the venue lists no
//! users, so one with only a balance at the venue is not seen.

use super::amount;
use super::{ReconcileContext, ReconcileReport, ReconcileSettings};
use anyhow::Context as _;
use api::events::{Event, EventType};
use api::money::movement::{is_inflow, is_movement, Movement};
use api::store::{Transaction, TxKind, TxQuery, Write};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// One (user, asset) whose venue balance differs from the records;
/// amounts are exact decimal strings at the asset's scale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceDifference {
    pub user_id: String,
    pub asset: String,
    /// Available + locked at the venue.
    pub venue: String,
    /// What the records say the venue should hold.
    pub ledger: String,
    /// `venue − ledger` (positive: the venue holds more).
    pub difference: String,
}

/// The statuses whose transactions name the users to compare.
const USER_STATUSES: [&str; 5] = ["pending", "processing", "completed", "failed", "settled"];
/// Transactions read per page of a user's list.
const PAGE: usize = 100;

/// Compares every user's balances, records the differences in `report`
/// and commits their events.
pub(super) async fn check(
    ctx: &ReconcileContext,
    settings: &ReconcileSettings,
    report: &mut ReconcileReport,
) -> anyhow::Result<()> {
    let store = ctx.ledger.store.as_ref();
    let now = api::events::now();
    let mut users = BTreeSet::new();
    for status in USER_STATUSES {
        let found = store
            .transactions_with_status(status, now, settings.scan_limit)
            .await
            .with_context(|| format!("reading {status} transactions"))?;
        report.truncated |= found.len() >= settings.scan_limit;
        users.extend(found.into_iter().map(|tx| tx.user_id));
    }
    let scales: BTreeMap<String, u8> = ctx
        .ledger
        .venue
        .assets()
        .into_iter()
        .map(|a| (a.symbol, a.scale))
        .collect();
    for user_id in users {
        let records = records(ctx, &user_id, &scales).await?;
        let venue = match ctx.ledger.venue.balances(&user_id).await {
            Ok(balances) => balances,
            Err(e) => {
                report
                    .problems
                    .push(format!("user {user_id}: venue balances unavailable: {e}"));
                continue;
            }
        };
        let records = match records {
            Ok(records) => records,
            Err(why) => {
                report.problems.push(format!("user {user_id}: {why}"));
                continue;
            }
        };
        report.users_checked += 1;
        let mut held: BTreeMap<String, i128> = venue
            .into_iter()
            .map(|(asset, b)| (asset, i128::from(b.total())))
            .collect();
        for asset in records.keys() {
            held.entry(asset.clone()).or_default();
        }
        let mut events = Vec::new();
        for (asset, venue_raw) in held {
            let ours = records.get(&asset).copied().unwrap_or(0);
            if venue_raw == ours {
                continue;
            }
            let scale = scales.get(&asset).copied().unwrap_or(0);
            let difference = BalanceDifference {
                user_id: user_id.clone(),
                asset,
                venue: amount::format(venue_raw, scale),
                ledger: amount::format(ours, scale),
                difference: amount::format(venue_raw - ours, scale),
            };
            tracing::warn!(user_id = %difference.user_id, asset = %difference.asset,
                venue = %difference.venue, ledger = %difference.ledger,
                difference = %difference.difference, "reconcile: balance differs from the records");
            events.push(Write::Emit(Event::new(
                EventType::ReconcileDifference,
                Some(&user_id),
                json!({
                    "asset": difference.asset,
                    "venue": difference.venue,
                    "ledger": difference.ledger,
                    "difference": difference.difference,
                }),
            )));
            report.differences.push(difference);
        }
        if !events.is_empty() {
            store
                .commit(events)
                .await
                .context("committing reconcile.difference events")?;
        }
    }
    Ok(())
}

/// What the records say the venue should hold for `user_id`, raw at each
/// asset's scale (the outer error: the store; the inner: a record that
/// cannot be read exactly).
async fn records(
    ctx: &ReconcileContext,
    user_id: &str,
    scales: &BTreeMap<String, u8>,
) -> anyhow::Result<Result<BTreeMap<String, i128>, String>> {
    let mut sums = BTreeMap::new();
    let mut after = None;
    loop {
        let query = TxQuery {
            kinds: vec![
                TxKind::Deposit,
                TxKind::Withdrawal,
                TxKind::FiatDeposit,
                TxKind::FiatWithdrawal,
                TxKind::Fill,
            ],
            after: after.take(),
            limit: PAGE,
            ..TxQuery::default()
        };
        let page = ctx
            .ledger
            .store
            .transactions(user_id, &query)
            .await
            .with_context(|| format!("reading the transactions of {user_id}"))?;
        for tx in &page.items {
            if let Err(why) = add(&mut sums, tx, scales) {
                return Ok(Err(format!("transaction {}: {why}", tx.transaction_id)));
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(Ok(sums)),
        }
    }
}

/// Adds what `tx` means for the venue balances to `sums` (see the module
/// doc for the rule).
fn add(
    sums: &mut BTreeMap<String, i128>,
    tx: &Transaction,
    scales: &BTreeMap<String, u8>,
) -> Result<(), String> {
    let scale = |asset: &str| {
        scales
            .get(asset)
            .copied()
            .ok_or_else(|| format!("asset {asset} is not at the venue"))
    };
    if is_movement(tx.kind) {
        let counts = if is_inflow(tx.kind) {
            matches!(tx.status.as_str(), "processing" | "completed")
        } else {
            matches!(tx.status.as_str(), "pending" | "completed")
        };
        if !counts {
            return Ok(());
        }
        let m = Movement::of(tx).map_err(|e| e.to_string())?;
        let raw = amount::parse(&m.amount, scale(&m.asset)?)
            .ok_or_else(|| format!("amount {:?} unreadable", m.amount))?;
        let mut signed = if is_inflow(tx.kind) { raw } else { -raw };
        if let Some(refund) = &m.refund {
            signed -= amount::parse(&refund.amount, scale(&m.asset)?)
                .ok_or_else(|| format!("refund {:?} unreadable", refund.amount))?;
        }
        *sums.entry(m.asset).or_default() += signed;
        return Ok(());
    }
    if tx.kind == TxKind::Fill {
        let detail = tx
            .detail
            .value()
            .map_err(|e| format!("fill with an unreadable detail: {e}"))?;
        let field = |name: &str| {
            detail
                .get(name)
                .and_then(|v| v.as_str())
                .ok_or_else(|| format!("fill without {name}"))
        };
        let pair = field("pair")?;
        let (base, quote) = pair
            .split_once('-')
            .ok_or_else(|| format!("pair {pair} unreadable"))?;
        let (price, qty) = (field("price")?, field("qty")?);
        let base_raw =
            amount::parse(qty, scale(base)?).ok_or_else(|| format!("qty {qty:?} unreadable"))?;
        let quote_raw = amount::product(price, qty, scale(quote)?)
            .ok_or_else(|| format!("{price} × {qty} not exact at {quote}'s scale"))?;
        let sign = match field("side")? {
            "buy" => 1,
            "sell" => -1,
            other => return Err(format!("side {other:?} unreadable")),
        };
        *sums.entry(base.to_owned()).or_default() += sign * base_raw;
        *sums.entry(quote.to_owned()).or_default() -= sign * quote_raw;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::money::movement::MovementStatus;

    fn scales() -> BTreeMap<String, u8> {
        [("USD", 8), ("BTC", 8), ("ETH", 8)]
            .into_iter()
            .map(|(a, s)| (a.to_owned(), s))
            .collect()
    }

    fn movement(kind: TxKind, status: MovementStatus, asset: &str, amount: &str) -> Transaction {
        Movement {
            asset: asset.to_owned(),
            amount: amount.to_owned(),
            ..Movement::default()
        }
        .new_transaction("t".into(), "u", kind, status)
    }

    fn fill(side: &str, pair: &str, price: &str, qty: &str) -> Transaction {
        let mut tx = movement(TxKind::Fill, MovementStatus::Completed, "BTC", "0");
        tx.status = "settled".into();
        tx.detail = json!({"pair": pair, "side": side, "price": price, "qty": qty}).into();
        tx
    }

    fn sum(txs: &[Transaction]) -> BTreeMap<String, i128> {
        let mut sums = BTreeMap::new();
        for tx in txs {
            add(&mut sums, tx, &scales()).expect("readable");
        }
        sums.retain(|_, v| *v != 0);
        sums
    }

    #[test]
    fn movements_count_once_their_venue_change_is_due() {
        use MovementStatus::*;
        let d = |s| movement(TxKind::FiatDeposit, s, "USD", "10.5");
        let w = |s| movement(TxKind::Withdrawal, s, "BTC", "0.25");
        let usd = |s| sum(&[d(s)]).get("USD").copied().unwrap_or(0);
        let btc = |s| sum(&[w(s)]).get("BTC").copied().unwrap_or(0);
        assert_eq!(
            [usd(Pending), usd(Processing), usd(Completed), usd(Failed)],
            [0, 1_050_000_000, 1_050_000_000, 0]
        );
        assert_eq!(
            [btc(Pending), btc(Processing), btc(Completed), btc(Failed)],
            [-25_000_000, 0, -25_000_000, 0]
        );
    }

    #[test]
    fn a_refund_counts_against_the_deposit() {
        let mut deposit = movement(
            TxKind::FiatDeposit,
            MovementStatus::Completed,
            "USD",
            "10.5",
        );
        let mut m = Movement::of(&deposit).unwrap();
        m.refund = Some(api::money::movement::Refund {
            amount: "4".into(),
            unrecovered: Some("1.5".into()),
        });
        deposit.detail = m.to_detail();
        // 10.5 credited, 4 refunded (1.5 of it not recovered yet: the
        // venue holds 1.5 more than the records, a difference to correct).
        assert_eq!(sum(&[deposit])["USD"], 650_000_000);
    }

    #[test]
    fn fills_move_base_and_quote_exactly() {
        let got = sum(&[
            fill("buy", "BTC-USD", "60000.25", "0.010000"),
            fill("sell", "ETH-BTC", "0.05123", "1.500"),
        ]);
        // +0.01 BTC − 600.0025 USD; −1.5 ETH + 0.076845 BTC.
        assert_eq!(got["BTC"], 1_000_000 + 7_684_500);
        assert_eq!(got["USD"], -60_000_250_000);
        assert_eq!(got["ETH"], -150_000_000);
        let mut sums = BTreeMap::new();
        assert!(add(&mut sums, &fill("hold", "BTC-USD", "1", "1"), &scales()).is_err());
        assert!(add(&mut sums, &fill("buy", "BTC-XYZ", "1", "1"), &scales()).is_err());
    }
}
