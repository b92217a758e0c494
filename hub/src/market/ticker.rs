//! The `ticker` channel's values: best bid/ask from the book, the last
//! trade's price, and the rolling 24 h figures, which come from the 1 m
//! candle series ([`crate::protocol::series::Candles::stats`]: the 1,440 one-minute
//! candles ending at the last trade's minute).

use crate::protocol::encode::Ticker;
use crate::protocol::series::Stats24h;
use feeds::PublicTrade;
use orderbook::{L2Book, Price};

/// The last trade's price.
#[derive(Debug, Default)]
pub struct TickerState {
    last: Option<Price>,
}

impl TickerState {
    /// Notes a batch of trades (in execution order).
    pub fn record(&mut self, trades: &[PublicTrade]) {
        if let Some(t) = trades.last() {
            self.last = Some(t.price);
        }
    }

    /// The ticker values now, given the book and the 24 h figures.
    pub fn ticker(&self, book: &L2Book, day: &Stats24h) -> Ticker {
        let bid = book.best_bid();
        let ask = book.best_ask();
        Ticker {
            bid: bid.map(|l| l.price),
            bid_qty: bid.map(|l| l.qty),
            ask: ask.map(|l| l.price),
            ask_qty: ask.map(|l| l.qty),
            last: self.last,
            open_24h: day.open,
            high_24h: day.high,
            low_24h: day.low,
            volume_24h: day.volume,
            quote_volume_24h: day.quote_volume,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderbook::{Qty, Side};

    #[test]
    fn change_is_signed_and_rounded_half_away_from_zero() {
        let mut s = TickerState::default();
        s.record(&[PublicTrade {
            trade_id: 1,
            price: Price(9_999),
            qty: Qty(1),
            side: Side::Sell,
            venue_ts: 0,
        }]);
        let day = Stats24h {
            open: Some(Price(30_000)),
            ..Stats24h::default()
        };
        let t = s.ticker(&L2Book::new(), &day);
        assert_eq!(t.change_24h(), Some(-20_001));
        // -66.67 %: -66.67 rounded half away from zero
        assert_eq!(t.change_24h_pct(), Some(-6_667));
        let day = Stats24h {
            open: Some(Price(8_000)),
            ..Stats24h::default()
        };
        // +24.9875 % -> 24.99
        assert_eq!(s.ticker(&L2Book::new(), &day).change_24h_pct(), Some(2_499));
        assert_eq!(
            s.ticker(&L2Book::new(), &Stats24h::default()).change_24h(),
            None
        );
    }

    /// The percentage of `last` against `open_24h` = `open`, in hundredths.
    fn pct(last: u64, open: u64) -> Option<i128> {
        let mut s = TickerState::default();
        s.record(&[PublicTrade {
            trade_id: 1,
            price: Price(last),
            qty: Qty(1),
            side: Side::Buy,
            venue_ts: 0,
        }]);
        let day = Stats24h {
            open: Some(Price(open)),
            ..Stats24h::default()
        };
        s.ticker(&L2Book::new(), &day).change_24h_pct()
    }

    #[test]
    fn exact_ties_round_away_from_zero() {
        // ±1 / 20,000 = ±0.005 %: exactly half a hundredth.
        assert_eq!(pct(20_001, 20_000), Some(1));
        assert_eq!(pct(19_999, 20_000), Some(-1));
        // ±3 / 20,000 = ±0.015 %
        assert_eq!(pct(20_003, 20_000), Some(2));
        assert_eq!(pct(19_997, 20_000), Some(-2));
        // just below a tie rounds toward zero: ±1 / 20,001
        assert_eq!(pct(20_002, 20_001), Some(0));
        assert_eq!(pct(20_000, 20_001), Some(0));
        assert_eq!(pct(20_000, 20_000), Some(0));
    }
}
