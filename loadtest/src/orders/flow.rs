//! The measured phase: orders on a fixed schedule (order `k` is due at
//! `k / rate` seconds), spread round-robin over the users, each sent by
//! its own task and timed.
//!
//! - A resting order is a GTC limit buy far below the market; once it is
//!   accepted open, its task waits `--rest-ms` and cancels it, timing the
//!   `DELETE` too. Orders placed near the end are cancelled after the
//!   schedule, on the same delay (not all at once, which would measure a
//!   burst the run never offered), so every resting order is cancelled by
//!   the end of the drain.
//! - An IOC order is a market order of the order quantity: a sell when the
//!   user holds that much of the base from earlier IOC buys, else a buy,
//!   so the users' holdings stay small and both sides of the book trade.
//!
//! At most `--max-in-flight` requests run at once; when all are busy the
//! schedule waits (the achieved rate then falls below the target rather
//! than requests piling up without bound).

use super::record::{OrderRecorder, Request};
use super::rest::{Answer, RestClient};
use super::setup::Trader;
use super::shape::OrderShape;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What every order task of a run shares.
#[derive(Debug)]
pub struct FlowEnv {
    pub client: RestClient,
    pub shape: OrderShape,
    pub recorder: Arc<OrderRecorder>,
    /// Permits for requests in flight.
    pub in_flight: Arc<Semaphore>,
    /// How long a resting order stays open.
    pub rest_for: Duration,
    /// Makes this run's `client_order_id`s unique.
    pub tag: String,
}

/// The flow's schedule.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Orders per second over all users.
    pub rate: f64,
    /// Share of resting orders, 0..=1.
    pub resting_fraction: f64,
    pub duration: Duration,
}

/// What the dispatcher did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dispatched {
    /// Orders sent, and of them resting.
    pub sent: u64,
    pub sent_resting: u64,
    /// Seconds from the first order to the end of the schedule (the
    /// duration, or more when the last orders went out late).
    pub elapsed_s: f64,
}

/// One user during the flow.
#[derive(Debug)]
struct TraderState {
    token: String,
    /// Base bought by IOC orders and not sold yet (or reserved by a sell in
    /// flight), raw at the pair's qty scale.
    base_held: Mutex<u64>,
}

impl TraderState {
    fn held<R>(&self, f: impl FnOnce(&mut u64) -> R) -> R {
        let mut held = self
            .base_held
            .lock()
            .expect("a holding is never poisoned: updating it cannot panic");
        f(&mut held)
    }

    /// Reserves `qty` of held base for a sell; false when not held.
    fn reserve(&self, qty: u64) -> bool {
        self.held(|h| {
            let enough = *h >= qty;
            if enough {
                *h -= qty;
            }
            enough
        })
    }

    fn add(&self, qty: u64) {
        self.held(|h| *h = h.saturating_add(qty));
    }
}

/// Sends the orders of `schedule`, then waits up to `drain` for the order
/// tasks (the last cancels, answers in flight) and aborts the rest.
pub async fn dispatch(
    env: Arc<FlowEnv>,
    traders: Vec<Trader>,
    schedule: Schedule,
    drain: Duration,
) -> Dispatched {
    let traders: Vec<Arc<TraderState>> = traders
        .into_iter()
        .map(|t| {
            Arc::new(TraderState {
                token: t.token,
                base_held: Mutex::new(0),
            })
        })
        .collect();
    let mut tasks = JoinSet::new();
    let mut out = Dispatched::default();
    let start = Instant::now();
    let deadline = start + schedule.duration;
    loop {
        let due = start + Duration::from_secs_f64(out.sent as f64 / schedule.rate);
        if due >= deadline || traders.is_empty() {
            break;
        }
        tokio::time::sleep_until(due).await;
        let permit = tokio::select! {
            biased;
            permit = env.in_flight.clone().acquire_owned() => {
                permit.expect("the in-flight semaphore is never closed")
            }
            _ = tokio::time::sleep_until(deadline) => break,
        };
        let trader = traders[out.sent as usize % traders.len()].clone();
        let resting = rests(out.sent, schedule.resting_fraction);
        let order = Order {
            env: env.clone(),
            trader,
            client_order_id: format!("lt-{}-{}", env.tag, out.sent),
        };
        if resting {
            out.sent_resting += 1;
            tasks.spawn(order.rest_then_cancel(permit));
        } else {
            tasks.spawn(order.immediate_or_cancel(permit));
        }
        out.sent += 1;
        while tasks.try_join_next().is_some() {}
    }
    tokio::time::sleep_until(deadline).await;
    out.elapsed_s = start.elapsed().as_secs_f64();
    let drained = tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tasks.abort_all();
    }
    out
}

/// Whether order `k` rests: `floor(n × fraction)` of the first n orders
/// do, evenly spread.
fn rests(k: u64, fraction: f64) -> bool {
    ((k + 1) as f64 * fraction).floor() > (k as f64 * fraction).floor()
}

/// One order of the flow.
struct Order {
    env: Arc<FlowEnv>,
    trader: Arc<TraderState>,
    client_order_id: String,
}

impl Order {
    /// Sends `body` as `request`, records the outcome and returns the
    /// answer.
    async fn place(&self, request: Request, body: &Value) -> Option<Answer> {
        let token = Some(self.trader.token.as_str());
        match self.env.client.post("/orders", token, body).await {
            Ok(answer) => {
                self.env.recorder.answered(
                    request,
                    answer.status,
                    answer.elapsed,
                    answer.text("status"),
                    answer.error_code(),
                );
                Some(answer)
            }
            Err(e) => {
                self.env.recorder.unanswered(request, e.kind);
                None
            }
        }
    }

    /// A limit buy far from the market, cancelled after the rest time.
    async fn rest_then_cancel(self, permit: OwnedSemaphorePermit) {
        let shape = &self.env.shape;
        let body = json!({
            "client_order_id": self.client_order_id,
            "pair": shape.pair,
            "side": "buy",
            "type": "limit",
            "qty": shape.qty(),
            "price": shape.rest_price(),
            "time_in_force": "GTC",
        });
        let answer = self.place(Request::PlaceResting, &body).await;
        drop(permit);
        let Some(answer) = answer else { return };
        let order_id = match (
            answer.status,
            answer.text("status"),
            answer.text("order_id"),
        ) {
            (201, Some("open" | "partially_filled"), Some(id)) => id.to_owned(),
            _ => return,
        };
        tokio::time::sleep(self.env.rest_for).await;
        let _permit = self.env.in_flight.acquire().await;
        let path = format!("/orders/{order_id}");
        let recorder = &self.env.recorder;
        match self
            .env
            .client
            .delete(&path, Some(self.trader.token.as_str()))
            .await
        {
            Ok(a) => recorder.answered(
                Request::Cancel,
                a.status,
                a.elapsed,
                a.text("status"),
                a.error_code(),
            ),
            Err(e) => recorder.unanswered(Request::Cancel, e.kind),
        }
    }

    /// A market IOC order: sells held base when there is enough, else buys.
    async fn immediate_or_cancel(self, permit: OwnedSemaphorePermit) {
        let shape = &self.env.shape;
        let qty = shape.qty_raw;
        let sell = self.trader.reserve(qty);
        let body = json!({
            "client_order_id": self.client_order_id,
            "pair": shape.pair,
            "side": if sell { "sell" } else { "buy" },
            "type": "market",
            "qty": shape.qty(),
            "time_in_force": "IOC",
        });
        let answer = self.place(Request::PlaceIoc, &body).await;
        drop(permit);
        let filled = answer
            .as_ref()
            .filter(|a| a.status == 201)
            .and_then(|a| shape.parse_qty(a.text("filled_qty")?));
        match (sell, filled) {
            (false, Some(filled)) => self.trader.add(filled),
            (true, Some(filled)) => self.trader.add(qty.saturating_sub(filled)),
            // A refused sell: the base is not there after all (or the
            // answer is unknown); forget it rather than fail again.
            (true, None) if answer.is_some_and(|a| a.status == 422) => {}
            (true, None) => self.trader.add(qty),
            (false, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resting_orders_are_spread_evenly() {
        let picked = |n: u64, f: f64| (0..n).filter(|k| rests(*k, f)).count();
        assert_eq!(picked(100, 0.5), 50);
        assert_eq!(picked(100, 0.3), 30);
        assert_eq!(picked(10, 0.0), 0);
        assert_eq!(picked(10, 1.0), 10);
        assert!(rests(1, 0.5) && !rests(0, 0.5), "alternate at one half");
    }

    #[test]
    fn sells_need_held_base() {
        let t = TraderState {
            token: String::new(),
            base_held: Mutex::new(0),
        };
        assert!(!t.reserve(10));
        t.add(25);
        assert!(t.reserve(10) && t.reserve(10));
        assert!(!t.reserve(10));
        assert_eq!(t.held(|h| *h), 5);
    }
}
