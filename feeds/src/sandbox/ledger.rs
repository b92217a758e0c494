//! The sandbox's accounts: per-user balances (available / locked, raw at
//! each asset's scale), the user orders it has seen, and the funds each open
//! order still holds locked.
//!
//! Every change is all-or-nothing: an operation that would overdraw returns
//! `InsufficientFunds` before touching anything. Amounts are integers at
//! the asset's scale; conversions from a pair's scales are exact because the
//! venue refuses configurations where `price_scale + qty_scale` exceeds the
//! quote asset's scale.

use crate::event::Micros;
use crate::venue::{AssetSpec, Balance, Fill, OrderReport, UserEvent, UserId, VenueError};
use orderbook::decimal::pow10;
use orderbook::engine::{AccountId, EngineEvents, OrderId, Trade};
use orderbook::{MarketSpec, Price, Qty, Side};
use std::collections::HashMap;

mod memory;
pub(crate) use memory::UserOrders;
pub use memory::KEEP_FINISHED;

/// First account id handed to a user; lower ids belong to the simulator.
pub const FIRST_USER_ACCOUNT: u64 = 1_000;

/// A user order and the funds it still holds.
#[derive(Debug, Clone)]
pub struct UserOrder {
    pub report: OrderReport,
    pub locked_asset: String,
    /// Raw at `locked_asset`'s scale; released when the order ends.
    pub locked: u64,
}

#[derive(Debug)]
pub struct Ledger {
    assets: HashMap<String, u8>,
    balances: HashMap<(UserId, String), Balance>,
    accounts: HashMap<UserId, AccountId>,
    users: HashMap<AccountId, UserId>,
    pub(crate) orders: HashMap<String, UserOrder>,
    /// Per user, order ids oldest first.
    pub(crate) orders_by_user: HashMap<UserId, UserOrders>,
    /// User events produced by the operation in progress, drained by the venue.
    pub(crate) pending_events: Vec<UserEvent>,
}

impl Ledger {
    pub fn new(assets: &[AssetSpec]) -> Self {
        Ledger {
            assets: assets.iter().map(|a| (a.symbol.clone(), a.scale)).collect(),
            balances: HashMap::new(),
            accounts: HashMap::new(),
            users: HashMap::new(),
            orders: HashMap::new(),
            orders_by_user: HashMap::new(),
            pending_events: Vec::new(),
        }
    }

    pub fn asset_scale(&self, asset: &str) -> Result<u8, VenueError> {
        self.assets
            .get(asset)
            .copied()
            .ok_or_else(|| VenueError::UnknownAsset(asset.to_string()))
    }

    /// The engine account of `user`, created on first use.
    pub fn account_of(&mut self, user: &str) -> AccountId {
        if let Some(a) = self.accounts.get(user) {
            return *a;
        }
        let id = AccountId(FIRST_USER_ACCOUNT + self.accounts.len() as u64);
        self.accounts.insert(user.to_string(), id);
        self.users.insert(id, user.to_string());
        id
    }

    /// The user behind an engine account, if it is a user's.
    pub fn user_of(&self, account: AccountId) -> Option<&UserId> {
        self.users.get(&account)
    }

    pub fn balance(&self, user: &str, asset: &str) -> Balance {
        self.balances
            .get(&(user.to_string(), asset.to_string()))
            .copied()
            .unwrap_or_default()
    }

    fn update(
        &mut self,
        user: &str,
        asset: &str,
        now: Micros,
        f: impl FnOnce(&mut Balance) -> Result<(), VenueError>,
    ) -> Result<Balance, VenueError> {
        self.asset_scale(asset)?;
        let mut b = self.balance(user, asset);
        f(&mut b)?;
        self.balances
            .insert((user.to_string(), asset.to_string()), b);
        self.pending_events.push(UserEvent::Balance {
            user: user.to_string(),
            asset: asset.to_string(),
            balance: b,
            venue_ts: now,
        });
        Ok(b)
    }

    pub fn credit(
        &mut self,
        user: &str,
        asset: &str,
        amount: u64,
        now: Micros,
    ) -> Result<Balance, VenueError> {
        self.update(user, asset, now, |b| {
            // available + locked must stay representable, so `total()` never overflows
            b.available = checked(b.available.checked_add(amount))?;
            checked(b.available.checked_add(b.locked))?;
            Ok(())
        })
    }

    pub fn debit(
        &mut self,
        user: &str,
        asset: &str,
        amount: u64,
        now: Micros,
    ) -> Result<Balance, VenueError> {
        self.update(user, asset, now, |b| {
            b.available = b
                .available
                .checked_sub(amount)
                .ok_or(VenueError::InsufficientFunds)?;
            Ok(())
        })
    }

    /// available → locked.
    pub fn lock(
        &mut self,
        user: &str,
        asset: &str,
        amount: u64,
        now: Micros,
    ) -> Result<Balance, VenueError> {
        self.update(user, asset, now, |b| {
            b.available = b
                .available
                .checked_sub(amount)
                .ok_or(VenueError::InsufficientFunds)?;
            b.locked += amount;
            Ok(())
        })
    }

    /// locked → available (an order ended with funds still held).
    pub fn unlock(
        &mut self,
        user: &str,
        asset: &str,
        amount: u64,
        now: Micros,
    ) -> Result<Balance, VenueError> {
        self.update(user, asset, now, |b| {
            b.locked = b
                .locked
                .checked_sub(amount)
                .ok_or(VenueError::InsufficientFunds)?;
            b.available += amount;
            Ok(())
        })
    }

    /// Spends `amount` of locked funds (they leave the account).
    pub fn spend_locked(
        &mut self,
        user: &str,
        asset: &str,
        amount: u64,
        now: Micros,
    ) -> Result<Balance, VenueError> {
        self.update(user, asset, now, |b| {
            b.locked = b
                .locked
                .checked_sub(amount)
                .ok_or(VenueError::InsufficientFunds)?;
            Ok(())
        })
    }
}

impl Ledger {
    /// Whether `events` touch any user account (simulator-only activity
    /// needs no settlement).
    pub fn involves_users(events: &EngineEvents) -> bool {
        let user = |a: AccountId| a.0 >= FIRST_USER_ACCOUNT;
        events.updates.iter().any(|u| user(u.account))
            || events
                .trades
                .iter()
                .any(|t| user(t.maker_account) || user(t.taker_account))
    }

    /// Applies what one engine call did to user accounts: moves funds for
    /// every fill, updates the orders' reports, releases what a finished
    /// order still holds, and queues the user events.
    pub fn settle(
        &mut self,
        spec: &MarketSpec,
        conv: &AssetConversion,
        events: &EngineEvents,
        now: Micros,
    ) {
        for t in &events.trades {
            let sides = [
                (
                    t.maker_order,
                    t.maker_account,
                    t.taker_side.opposite(),
                    true,
                ),
                (t.taker_order, t.taker_account, t.taker_side, false),
            ];
            for (order, account, side, maker) in sides {
                let Some(user) = self.user_of(account).cloned() else {
                    continue;
                };
                self.settle_fill(spec, conv, &user, order, side, t, maker, now);
            }
        }
        for u in &events.updates {
            let Some(user) = self.user_of(u.account).cloned() else {
                continue;
            };
            let key = order_key(u.id);
            let Some(order) = self.orders.get_mut(&key) else {
                continue;
            };
            order.report.status = u.status;
            order.report.reason = u.reason;
            order.report.filled_qty = u.filled_qty;
            order.report.updated_ts = now;
            let release = if u.status.is_final() {
                std::mem::take(&mut order.locked)
            } else {
                0
            };
            let asset = order.locked_asset.clone();
            let report = order.report.clone();
            if release > 0 {
                self.unlock(&user, &asset, release, now)
                    .expect("an order's remaining lock is part of its user's locked balance");
            }
            self.pending_events.push(UserEvent::Order(report));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn settle_fill(
        &mut self,
        spec: &MarketSpec,
        conv: &AssetConversion,
        user: &str,
        order: OrderId,
        side: Side,
        t: &Trade,
        maker: bool,
        now: Micros,
    ) {
        const INVARIANT: &str =
            "funds locked at entry cover every fill (checked scales, limit >= maker price)";
        let cost = conv.quote_amount(t.price, t.qty).expect(INVARIANT);
        let base = conv.base_amount(t.qty).expect(INVARIANT);
        let (spent_asset, spent, got_asset, got) = match side {
            Side::Buy => (&spec.quote, cost, &spec.base, base),
            Side::Sell => (&spec.base, base, &spec.quote, cost),
        };
        self.spend_locked(user, spent_asset, spent, now)
            .expect(INVARIANT);
        self.credit(user, got_asset, got, now).expect(INVARIANT);
        let key = order_key(order);
        let o = self
            .orders
            .get_mut(&key)
            .expect("every user order in the engine has a ledger record");
        o.locked = o.locked.checked_sub(spent).expect(INVARIANT);
        o.report.filled_notional_raw += u128::from(t.price.0) * u128::from(t.qty.0);
        let client_id = o.report.client_id.clone();
        self.pending_events.push(UserEvent::Fill(Fill {
            trade_id: t.trade_id,
            order_id: key,
            client_id,
            user: user.to_string(),
            pair: spec.symbol.clone(),
            side,
            price: t.price,
            qty: t.qty,
            maker,
            venue_ts: now,
        }));
    }
}

/// The venue's public id of an engine order.
pub fn order_key(id: OrderId) -> String {
    format!("O-{}", id.0)
}

/// The engine id behind a public order id, if it is well formed.
pub fn parse_order_key(key: &str) -> Option<OrderId> {
    key.strip_prefix("O-")?.parse().ok().map(OrderId)
}

fn checked(v: Option<u64>) -> Result<u64, VenueError> {
    v.ok_or_else(|| VenueError::InvalidAmount("balance would overflow".into()))
}

/// Converts a pair's scaled amounts to its assets' scales, exactly.
#[derive(Debug, Clone, Copy)]
pub struct AssetConversion {
    /// Multiply a raw qty by this to get the base asset's raw amount.
    base_factor: u64,
    /// Multiply a raw price × raw qty by this to get the quote asset's raw amount.
    quote_factor: u64,
}

impl AssetConversion {
    /// Refuses pairs whose scales do not fit their assets' scales.
    pub fn new(spec: &MarketSpec, base_scale: u8, quote_scale: u8) -> Result<Self, String> {
        let notional_scale = spec.price_scale + spec.qty_scale;
        if spec.qty_scale > base_scale || notional_scale > quote_scale {
            return Err(format!(
                "{}: qty scale {} / notional scale {} exceed asset scales {} / {}",
                spec.symbol, spec.qty_scale, notional_scale, base_scale, quote_scale
            ));
        }
        Ok(AssetConversion {
            base_factor: pow10(base_scale - spec.qty_scale),
            quote_factor: pow10(quote_scale - notional_scale),
        })
    }

    pub fn base_amount(&self, qty: Qty) -> Result<u64, VenueError> {
        qty.0.checked_mul(self.base_factor).ok_or_else(too_large)
    }

    pub fn quote_amount(&self, price: Price, qty: Qty) -> Result<u64, VenueError> {
        self.notional_amount(u128::from(price.0) * u128::from(qty.0))
    }

    /// A raw notional at `price_scale + qty_scale` in the quote asset's scale.
    pub fn notional_amount(&self, notional_raw: u128) -> Result<u64, VenueError> {
        notional_raw
            .checked_mul(u128::from(self.quote_factor))
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(too_large)
    }
}

fn too_large() -> VenueError {
    VenueError::InvalidOrder("order value too large".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> Ledger {
        Ledger::new(&[AssetSpec {
            symbol: "USD".into(),
            scale: 8,
        }])
    }

    #[test]
    fn credit_lock_unlock_spend() {
        let mut l = ledger();
        l.credit("u", "USD", 100, 0).unwrap();
        l.lock("u", "USD", 60, 0).unwrap();
        assert_eq!(
            l.balance("u", "USD"),
            Balance {
                available: 40,
                locked: 60
            }
        );
        l.spend_locked("u", "USD", 10, 0).unwrap();
        l.unlock("u", "USD", 50, 0).unwrap();
        assert_eq!(
            l.balance("u", "USD"),
            Balance {
                available: 90,
                locked: 0
            }
        );
        assert_eq!(l.pending_events.len(), 4);
    }

    #[test]
    fn overdraw_changes_nothing() {
        let mut l = ledger();
        l.credit("u", "USD", 5, 0).unwrap();
        l.pending_events.clear();
        assert_eq!(
            l.debit("u", "USD", 6, 0),
            Err(VenueError::InsufficientFunds)
        );
        assert_eq!(l.lock("u", "USD", 6, 0), Err(VenueError::InsufficientFunds));
        assert_eq!(
            l.balance("u", "USD"),
            Balance {
                available: 5,
                locked: 0
            }
        );
        assert!(l.pending_events.is_empty());
        assert_eq!(
            l.credit("u", "XXX", 1, 0),
            Err(VenueError::UnknownAsset("XXX".into()))
        );
        assert_eq!(
            l.credit("u", "USD", u64::MAX, 0),
            Err(VenueError::InvalidAmount("balance would overflow".into()))
        );
    }

    #[test]
    fn conversions_are_exact_and_checked() {
        let spec = MarketSpec::new("BTC-USD", 2, 6, Qty(1)).unwrap();
        let c = AssetConversion::new(&spec, 8, 8).unwrap();
        // 1.5 BTC at 64000.10 = 96000.15 USD
        assert_eq!(c.base_amount(Qty(1_500_000)).unwrap(), 150_000_000);
        assert_eq!(
            c.quote_amount(Price(6_400_010), Qty(1_500_000)).unwrap(),
            9_600_015_000_000
        );
        assert!(AssetConversion::new(&spec, 8, 7).is_err());
        assert!(c.quote_amount(Price(u64::MAX), Qty(u64::MAX)).is_err());
    }
}
