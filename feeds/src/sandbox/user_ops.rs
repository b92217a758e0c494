//! The sandbox's [`Venue`] side: users' orders (placed against the pair's
//! engine, funds locked and settled through the ledger) and balances.

use super::ledger::{order_key, parse_order_key, Ledger, UserOrder};
use super::SandboxVenue;
use crate::event::{now_micros, TradingStatus};
use crate::venue::{AssetSpec, Balance, OrderReport, PlaceOrder, UserEvent, Venue, VenueError};
use async_trait::async_trait;
use orderbook::engine::{NewOrder, OrderStatus, OrderType};
use orderbook::Side;
use tokio::sync::mpsc;

#[async_trait]
impl Venue for SandboxVenue {
    fn assets(&self) -> Vec<AssetSpec> {
        self.inner.assets.clone()
    }

    async fn place_order(&self, req: PlaceOrder) -> Result<OrderReport, VenueError> {
        self.injected_latency().await;
        let i = self.pair_index(&req.pair)?;
        let mut pair = self.inner.pairs[i].lock();
        let spec = pair.spec.clone();
        if let TradingStatus::Halted { reason } = &pair.status {
            return Err(VenueError::MarketHalted {
                pair: spec.symbol.clone(),
                reason: reason.clone(),
            });
        }
        if req.qty < spec.min_qty {
            return Err(VenueError::InvalidOrder(format!(
                "qty below minimum {}",
                spec.format_qty(spec.min_qty)
            )));
        }
        let price = match (req.order_type, req.price) {
            (OrderType::Limit, Some(p)) if p.0 > 0 => Some(p),
            (OrderType::Limit, _) => {
                return Err(VenueError::InvalidOrder(
                    "limit order needs a positive price".into(),
                ))
            }
            (OrderType::Market, Some(_)) => {
                return Err(VenueError::InvalidOrder(
                    "market order takes no price".into(),
                ))
            }
            (OrderType::Market, None) => None,
        };
        if req.order_type == OrderType::Market && req.post_only {
            return Err(VenueError::InvalidOrder(
                "market order cannot be post-only".into(),
            ));
        }
        let now = now_micros();
        let id = self.next_order_id();
        let mut ledger = self.inner.ledger.lock();
        let account = ledger.account_of(&req.user);
        // Lock what the order can spend at most.
        let (locked_asset, locked) = match (req.side, price) {
            (Side::Sell, _) => (spec.base.clone(), pair.conversion.base_amount(req.qty)?),
            (Side::Buy, Some(p)) => (
                spec.quote.clone(),
                pair.conversion.quote_amount(p, req.qty)?,
            ),
            (Side::Buy, None) => {
                let est = pair
                    .engine
                    .estimate_fill(Side::Buy, req.qty, None, Some(account));
                (
                    spec.quote.clone(),
                    pair.conversion.notional_amount(est.notional_raw)?,
                )
            }
        };
        ledger.lock(&req.user, &locked_asset, locked, now)?;
        let report = OrderReport {
            order_id: order_key(id),
            client_id: req.client_id.clone(),
            user: req.user.clone(),
            pair: spec.symbol.clone(),
            side: req.side,
            order_type: req.order_type,
            price,
            qty: req.qty,
            filled_qty: orderbook::Qty::ZERO,
            filled_notional_raw: 0,
            status: OrderStatus::Open,
            reason: None,
            time_in_force: req.time_in_force,
            post_only: req.post_only,
            created_ts: now,
            updated_ts: now,
        };
        ledger.add_order(UserOrder {
            report,
            locked_asset,
            locked,
        });
        pair.submit(
            NewOrder {
                id,
                account,
                side: req.side,
                order_type: req.order_type,
                price,
                qty: req.qty,
                time_in_force: req.time_in_force,
                post_only: req.post_only,
            },
            now,
        );
        ledger.settle(&pair.spec, &pair.conversion, &pair.events, now);
        self.flush_user_events(&mut ledger);
        Ok(ledger.orders[&order_key(id)].report.clone())
    }

    async fn cancel_order(&self, user: &str, order_id: &str) -> Result<OrderReport, VenueError> {
        self.injected_latency().await;
        let (pair_name, status) = {
            let ledger = self.inner.ledger.lock();
            match ledger.orders.get(order_id) {
                Some(o) if o.report.user == user => (o.report.pair.clone(), o.report.status),
                None if ledger.forgot(user, order_id) => return Err(VenueError::OrderNotOpen),
                _ => return Err(VenueError::OrderNotFound),
            }
        };
        if status.is_final() {
            return Err(VenueError::OrderNotOpen);
        }
        let id = parse_order_key(order_id).ok_or(VenueError::OrderNotFound)?;
        let mut pair = self.inner.pairs[self.pair_index(&pair_name)?].lock();
        let now = now_micros();
        // The order may have filled between the check above and this lock.
        pair.cancel(id, now).map_err(|_| VenueError::OrderNotOpen)?;
        let mut ledger = self.inner.ledger.lock();
        ledger.settle(&pair.spec, &pair.conversion, &pair.events, now);
        self.flush_user_events(&mut ledger);
        Ok(ledger.orders[order_id].report.clone())
    }

    async fn order(&self, user: &str, order_id: &str) -> Result<OrderReport, VenueError> {
        self.injected_latency().await;
        match self.inner.ledger.lock().orders.get(order_id) {
            Some(o) if o.report.user == user => Ok(o.report.clone()),
            _ => Err(VenueError::OrderNotFound),
        }
    }

    async fn orders(&self, user: &str) -> Result<Vec<OrderReport>, VenueError> {
        self.injected_latency().await;
        let ledger = self.inner.ledger.lock();
        let ids = ledger
            .orders_by_user
            .get(user)
            .map(|mine| mine.ids.as_slice())
            .unwrap_or(&[]);
        Ok(ids
            .iter()
            .rev()
            .map(|id| ledger.orders[id].report.clone())
            .collect())
    }

    async fn balances(&self, user: &str) -> Result<Vec<(String, Balance)>, VenueError> {
        self.injected_latency().await;
        let ledger = self.inner.ledger.lock();
        Ok(self
            .inner
            .assets
            .iter()
            .map(|a| (a.symbol.clone(), ledger.balance(user, &a.symbol)))
            .collect())
    }

    async fn credit(&self, user: &str, asset: &str, amount: u64) -> Result<Balance, VenueError> {
        self.injected_latency().await;
        self.ledger_op(|l, now| l.credit(user, asset, positive(amount)?, now))
    }

    async fn debit(&self, user: &str, asset: &str, amount: u64) -> Result<Balance, VenueError> {
        self.injected_latency().await;
        self.ledger_op(|l, now| l.debit(user, asset, positive(amount)?, now))
    }

    async fn user_events(&self) -> Result<mpsc::UnboundedReceiver<UserEvent>, VenueError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner.user_subscribers.lock().push(tx);
        Ok(rx)
    }
}

impl SandboxVenue {
    fn ledger_op(
        &self,
        op: impl FnOnce(&mut Ledger, u64) -> Result<Balance, VenueError>,
    ) -> Result<Balance, VenueError> {
        let mut ledger = self.inner.ledger.lock();
        let result = op(&mut ledger, now_micros());
        self.flush_user_events(&mut ledger);
        result
    }
}

fn positive(amount: u64) -> Result<u64, VenueError> {
    if amount == 0 {
        return Err(VenueError::InvalidAmount("amount must be positive".into()));
    }
    Ok(amount)
}
