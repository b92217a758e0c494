//! The `ticker` message and its values (docs/PROTOCOL.md, `ticker.PAIR`):
//! best bid/ask, last price and the rolling 24 h figures.

use super::*;

impl Encoder {
    /// `ticker`; absent values (empty side, no trade yet) are `null`.
    pub fn ticker(
        &mut self,
        spec: &MarketSpec,
        h: &Header,
        t: &Ticker,
        reason: Option<&str>,
    ) -> Bytes {
        self.start(MessageType::Ticker, h);
        self.reason(reason);
        self.ts(h.ts);
        self.ticker_fields(spec, t);
        self.end()
    }

    /// The fields of a `ticker` message after `ts`.
    pub(crate) fn ticker_fields(&mut self, spec: &MarketSpec, t: &Ticker) {
        let fields: [(&str, Option<u64>, bool); 9] = [
            ("bid", t.bid.map(|p| p.0), true),
            ("bid_qty", t.bid_qty.map(|q| q.0), false),
            ("ask", t.ask.map(|p| p.0), true),
            ("ask_qty", t.ask_qty.map(|q| q.0), false),
            ("last", t.last.map(|p| p.0), true),
            ("open_24h", t.open_24h.map(|p| p.0), true),
            ("high_24h", t.high_24h.map(|p| p.0), true),
            ("low_24h", t.low_24h.map(|p| p.0), true),
            ("volume_24h", Some(t.volume_24h.0), false),
        ];
        let b = &mut self.buf;
        for (key, value, is_price) in fields {
            b.extend_from_slice(b",\"");
            b.extend_from_slice(key.as_bytes());
            b.extend_from_slice(b"\":");
            match value {
                None => b.extend_from_slice(b"null"),
                Some(v) => {
                    b.push(b'"');
                    let scale = if is_price {
                        spec.price_scale
                    } else {
                        spec.qty_scale
                    };
                    orderbook::decimal::write_scaled(b, v, scale);
                    b.push(b'"');
                }
            }
        }
        b.extend_from_slice(b",\"quote_volume_24h\":\"");
        write_scaled_u128(b, t.quote_volume_24h, spec.price_scale + spec.qty_scale);
        b.push(b'"');
        let signed = [
            ("change_24h", t.change_24h(), spec.price_scale),
            ("change_24h_pct", t.change_24h_pct(), 2),
        ];
        for (key, value, scale) in signed {
            b.extend_from_slice(b",\"");
            b.extend_from_slice(key.as_bytes());
            b.extend_from_slice(b"\":");
            match value {
                None => b.extend_from_slice(b"null"),
                Some(v) => {
                    b.push(b'"');
                    if v < 0 {
                        b.push(b'-');
                    }
                    write_scaled_u128(b, v.unsigned_abs(), scale);
                    b.push(b'"');
                }
            }
        }
    }
}

/// The values of a `ticker` message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ticker {
    pub bid: Option<Price>,
    pub bid_qty: Option<Qty>,
    pub ask: Option<Price>,
    pub ask_qty: Option<Qty>,
    pub last: Option<Price>,
    pub open_24h: Option<Price>,
    pub high_24h: Option<Price>,
    pub low_24h: Option<Price>,
    pub volume_24h: Qty,
    /// In units of `10^-(price_scale + qty_scale)`.
    pub quote_volume_24h: u128,
}

impl Ticker {
    /// `last - open_24h` in price steps (signed); `None` before a trade.
    pub fn change_24h(&self) -> Option<i128> {
        Some(i128::from(self.last?.0) - i128::from(self.open_24h?.0))
    }

    /// The change in percent of `open_24h`, in hundredths of a percent
    /// (two decimals), rounded half away from zero; `None` before a trade
    /// or at a zero open.
    pub fn change_24h_pct(&self) -> Option<i128> {
        let open = i128::from(self.open_24h?.0);
        if open == 0 {
            return None;
        }
        let num = self.change_24h()? * 10_000;
        let (q, r) = (num / open, num % open);
        Some(if 2 * r.abs() >= open {
            q + num.signum()
        } else {
            q
        })
    }
}
