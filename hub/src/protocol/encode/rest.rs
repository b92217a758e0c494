//! REST bodies that carry the wire's objects (docs/API.md, "Market data"):
//! tickers, the public trade history and candles, written by the same
//! code as their channel messages.

use super::*;

impl Encoder {
    // ---- REST bodies that carry the wire's objects (docs/API.md) ----

    /// `GET /markets/{pair}/ticker`: `{"pair","epoch","seq","ts"}` and the
    /// fields of a `ticker` message.
    pub fn rest_ticker(
        &mut self,
        spec: &MarketSpec,
        (epoch, seq, ts): (&str, u64, u64),
        t: &Ticker,
    ) -> Bytes {
        self.buf.clear();
        self.buf.extend_from_slice(b"{\"pair\":\"");
        self.buf.extend_from_slice(spec.symbol.as_bytes());
        self.buf.extend_from_slice(b"\",\"epoch\":\"");
        self.buf.extend_from_slice(epoch.as_bytes());
        self.buf.extend_from_slice(b"\",\"seq\":");
        write_u64(&mut self.buf, seq);
        self.ts(ts);
        self.ticker_fields(spec, t);
        self.end()
    }

    /// `GET /markets/tickers`: the bodies of `GET /markets/{pair}/ticker`
    /// ([`Encoder::rest_ticker`]) as one JSON array.
    pub fn rest_tickers(&mut self, tickers: &[Bytes]) -> Bytes {
        self.buf.clear();
        self.buf.push(b'[');
        for (n, t) in tickers.iter().enumerate() {
            if n > 0 {
                self.buf.push(b',');
            }
            self.buf.extend_from_slice(t);
        }
        self.buf.push(b']');
        self.finish()
    }

    /// `GET /markets/{pair}/trades`: `{"trades":[...],"next_before"}`, each
    /// trade the object of `trades.PAIR` plus the `seq` and `epoch` of the
    /// message that carried it; `next_before` the cursor
    /// (`"{venue_ts}-{id}"`) of the next page, or `null`.
    pub fn rest_trades(
        &mut self,
        spec: &MarketSpec,
        trades: &[ArchivedTrade],
        next_before: Option<TradeKey>,
    ) -> Bytes {
        self.buf.clear();
        let b = &mut self.buf;
        b.extend_from_slice(b"{\"trades\":[");
        for (n, t) in trades.iter().enumerate() {
            if n > 0 {
                b.push(b',');
            }
            trade_fields(b, spec, &t.trade);
            b.extend_from_slice(b",\"seq\":");
            write_u64(b, t.seq);
            b.extend_from_slice(b",\"epoch\":");
            write_json_str(b, &t.epoch);
            b.push(b'}');
        }
        b.extend_from_slice(b"],\"next_before\":");
        match next_before {
            Some(k) => {
                b.push(b'"');
                write_u64(b, k.venue_ts);
                b.push(b'-');
                write_u64(b, k.trade_id);
                b.push(b'"');
            }
            None => b.extend_from_slice(b"null"),
        }
        b.push(b'}');
        self.finish()
    }

    /// `GET /markets/{pair}/candles`: `{"pair","interval","candles":[...]}`
    /// with the candle objects of `candlesN.PAIR` (`open_start`: the open
    /// candle's start, the one written `closed: false`).
    pub fn rest_candles(
        &mut self,
        spec: &MarketSpec,
        interval: &str,
        candles: &[Candle],
        open_start: Option<u64>,
    ) -> Bytes {
        self.buf.clear();
        self.buf.extend_from_slice(b"{\"pair\":\"");
        self.buf.extend_from_slice(spec.symbol.as_bytes());
        self.buf.extend_from_slice(b"\",\"interval\":\"");
        self.buf.extend_from_slice(interval.as_bytes());
        self.buf.extend_from_slice(b"\",\"candles\":[");
        for (n, c) in candles.iter().enumerate() {
            if n > 0 {
                self.buf.push(b',');
            }
            self.candle(spec, c, Some(c.start) != open_start);
        }
        self.buf.push(b']');
        self.end()
    }
}
