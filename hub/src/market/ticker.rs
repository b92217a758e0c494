//! The `ticker` channel's state: best bid/ask from the book, last trade,
//! and rolling 24 h open/high/low/volume kept in one-minute buckets (1,440
//! of them at most, whatever the trade rate).

use crate::protocol::encode::Ticker;
use feeds::PublicTrade;
use orderbook::{L2Book, Price, Qty};
use std::collections::VecDeque;

const MINUTE_US: u64 = 60_000_000;
const DAY_MINUTES: u64 = 24 * 60;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    minute: u64,
    open: Price,
    high: Price,
    low: Price,
    volume: u64,
}

/// Trade statistics of the last 24 hours plus the last price.
#[derive(Debug, Default)]
pub struct TickerState {
    buckets: VecDeque<Bucket>,
    last: Option<Price>,
}

impl TickerState {
    /// Adds a batch of trades (in execution order).
    pub fn record(&mut self, trades: &[PublicTrade]) {
        for t in trades {
            let minute = t.venue_ts / MINUTE_US;
            match self.buckets.back_mut() {
                Some(b) if b.minute == minute => {
                    b.high = b.high.max(t.price);
                    b.low = b.low.min(t.price);
                    b.volume = b.volume.saturating_add(t.qty.0);
                }
                _ => self.buckets.push_back(Bucket {
                    minute,
                    open: t.price,
                    high: t.price,
                    low: t.price,
                    volume: t.qty.0,
                }),
            }
            self.last = Some(t.price);
            while self
                .buckets
                .front()
                .is_some_and(|b| b.minute + DAY_MINUTES <= minute)
            {
                self.buckets.pop_front();
            }
        }
    }

    /// The ticker values now, given the book.
    pub fn ticker(&self, book: &L2Book) -> Ticker {
        let bid = book.best_bid();
        let ask = book.best_ask();
        let first = self.buckets.front();
        Ticker {
            bid: bid.map(|l| l.price),
            bid_qty: bid.map(|l| l.qty),
            ask: ask.map(|l| l.price),
            ask_qty: ask.map(|l| l.qty),
            last: self.last,
            open_24h: first.map(|b| b.open),
            high_24h: self.buckets.iter().map(|b| b.high).max(),
            low_24h: self.buckets.iter().map(|b| b.low).min(),
            volume_24h: Qty(self
                .buckets
                .iter()
                .fold(0u64, |v, b| v.saturating_add(b.volume))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderbook::Side;

    fn trade(ts_min: u64, price: u64, qty: u64) -> PublicTrade {
        PublicTrade {
            trade_id: 0,
            price: Price(price),
            qty: Qty(qty),
            side: Side::Buy,
            venue_ts: ts_min * MINUTE_US,
        }
    }

    #[test]
    fn rolls_a_24h_window() {
        let mut s = TickerState::default();
        s.record(&[trade(0, 100, 1), trade(0, 120, 2), trade(30, 90, 3)]);
        let t = s.ticker(&L2Book::new());
        assert_eq!(
            (t.open_24h, t.high_24h, t.low_24h, t.volume_24h, t.last),
            (
                Some(Price(100)),
                Some(Price(120)),
                Some(Price(90)),
                Qty(6),
                Some(Price(90))
            )
        );
        // a day after minute 0, minute 0's bucket leaves the window
        s.record(&[trade(DAY_MINUTES, 95, 1)]);
        let t = s.ticker(&L2Book::new());
        assert_eq!(
            (t.open_24h, t.high_24h, t.volume_24h),
            (Some(Price(90)), Some(Price(95)), Qty(4))
        );
        assert_eq!(t.bid, None);
    }
}
