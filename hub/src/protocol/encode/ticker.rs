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
        let (ps, qs) = (spec.price_scale, spec.qty_scale);
        let unsigned = |v: Option<u64>| v.map(|v| (false, u128::from(v)));
        let signed = |v: Option<i128>| v.map(|v| (v < 0, v.unsigned_abs()));
        let fields: [(&str, Magnitude, u8); 12] = [
            ("bid", unsigned(t.bid.map(|p| p.0)), ps),
            ("bid_qty", unsigned(t.bid_qty.map(|q| q.0)), qs),
            ("ask", unsigned(t.ask.map(|p| p.0)), ps),
            ("ask_qty", unsigned(t.ask_qty.map(|q| q.0)), qs),
            ("last", unsigned(t.last.map(|p| p.0)), ps),
            ("open_24h", unsigned(t.open_24h.map(|p| p.0)), ps),
            ("high_24h", unsigned(t.high_24h.map(|p| p.0)), ps),
            ("low_24h", unsigned(t.low_24h.map(|p| p.0)), ps),
            ("volume_24h", unsigned(Some(t.volume_24h.0)), qs),
            (
                "quote_volume_24h",
                Some((false, t.quote_volume_24h)),
                ps + qs,
            ),
            ("change_24h", signed(t.change_24h()), ps),
            ("change_24h_pct", signed(t.change_24h_pct()), 2),
        ];
        let b = &mut self.buf;
        for (key, value, scale) in fields {
            b.extend_from_slice(b",\"");
            b.extend_from_slice(key.as_bytes());
            b.extend_from_slice(b"\":");
            match value {
                None => b.extend_from_slice(b"null"),
                Some((negative, magnitude)) => {
                    b.push(b'"');
                    if negative {
                        b.push(b'-');
                    }
                    write_scaled_u128(b, magnitude, scale);
                    b.push(b'"');
                }
            }
        }
    }
}

/// A decimal field's value: `(negative, magnitude)`, or `None` for null.
type Magnitude = Option<(bool, u128)>;

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
