//! The candle messages (docs/PROTOCOL.md, "Candles"): the `candles` state
//! of a `candlesN.PAIR` channel and the `candle` update.

use super::*;

impl Encoder {
    // ---- candles (`candlesN.PAIR`, docs/PROTOCOL.md "Candles") ----------

    /// `candles`: the state of a `candlesN.PAIR` channel, `candles`
    /// oldest first (the open one, starting at `open_start`, last).
    pub fn candles<'c>(
        &mut self,
        spec: &MarketSpec,
        h: &Header,
        reason: &str,
        candles: impl Iterator<Item = &'c Candle>,
        open_start: Option<u64>,
    ) -> Bytes {
        self.start(MessageType::Candles, h);
        self.reason(Some(reason));
        self.ts(h.ts);
        self.buf.extend_from_slice(b",\"candles\":[");
        for (n, c) in candles.enumerate() {
            if n > 0 {
                self.buf.push(b',');
            }
            self.candle(spec, c, Some(c.start) != open_start);
        }
        self.buf.push(b']');
        self.end()
    }

    /// `candle`: the open candle changed (`closed` false), or a candle
    /// closed.
    pub fn candle_update(
        &mut self,
        spec: &MarketSpec,
        h: &Header,
        c: &Candle,
        closed: bool,
    ) -> Bytes {
        self.start(MessageType::Candle, h);
        self.ts(h.ts);
        self.buf.extend_from_slice(b",\"candle\":");
        self.candle(spec, c, closed);
        self.end()
    }

    /// One candle object: `{"start","open","high","low","close","volume",
    /// "quote_volume","trades","closed"}`, prices at the price scale,
    /// `volume` at the quantity scale, `quote_volume` at both added.
    pub(crate) fn candle(&mut self, spec: &MarketSpec, c: &Candle, closed: bool) {
        let b = &mut self.buf;
        b.extend_from_slice(b"{\"start\":");
        write_u64(b, c.start);
        for (key, p) in [
            (&b",\"open\":\""[..], c.open),
            (b"\",\"high\":\"", c.high),
            (b"\",\"low\":\"", c.low),
            (b"\",\"close\":\"", c.close),
        ] {
            b.extend_from_slice(key);
            spec.write_price(b, p);
        }
        b.extend_from_slice(b"\",\"volume\":\"");
        spec.write_qty(b, c.volume);
        b.extend_from_slice(b"\",\"quote_volume\":\"");
        write_scaled_u128(b, c.quote_volume, spec.price_scale + spec.qty_scale);
        b.extend_from_slice(b"\",\"trades\":");
        write_u64(b, c.trades);
        b.extend_from_slice(if closed {
            b",\"closed\":true}"
        } else {
            b",\"closed\":false}"
        });
    }
}
