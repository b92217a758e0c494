//! Market-data REST routes served from the pair tasks (docs/API.md,
//! "Market data"): `GET /markets/{pair}/ticker`, `GET /markets/tickers`,
//! `GET /markets/{pair}/candles`, `GET /markets/{pair}/trades`. Recent
//! data comes from the pair task's memory (the same values its channels
//! publish), older pages from the market archive.

use super::{error, AppState};
use crate::market::{CandlesView, PairCommand};
use crate::protocol::encode::Encoder;
use api::http::{ApiPath, ApiQuery};
use api::market_archive::{ArchivedTrade, TradeKey};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use orderbook::candle::Interval;
use serde::Deserialize;

/// `limit` of `GET /markets/{pair}/candles`: default and maximum.
const CANDLES_DEFAULT: usize = 300;
const CANDLES_MAX: usize = 1000;
/// `limit` of `GET /markets/{pair}/trades`: default and maximum.
const TRADES_DEFAULT: usize = 100;
const TRADES_MAX: usize = 1000;

fn json_bytes(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn unknown_pair(pair: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "unknown_pair",
        format!("no such pair: {pair}"),
    )
}

fn invalid(code: &str, message: impl Into<String>) -> Response {
    error(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// `limit`: `default` when absent, else 1..=`max` (`None`: out of range
/// or not a number).
fn limit(raw: Option<&str>, default: usize, max: usize) -> Option<usize> {
    match raw.map(str::parse::<usize>) {
        None => Some(default),
        Some(Ok(n)) if (1..=max).contains(&n) => Some(n),
        Some(_) => None,
    }
}

fn invalid_limit(max: usize) -> Response {
    invalid("invalid_limit", format!("limit must be 1..={max}"))
}

/// The ticker of one pair: `{pair, epoch, seq, ts}` and the fields of a
/// `ticker` message (docs/PROTOCOL.md), as of `seq` of `ticker.PAIR`.
#[utoipa::path(get, path = "/markets/{pair}/ticker", tag = "markets",
    params(("pair" = String, Path, description = "e.g. BTC-USD")),
    responses((status = 200, description = "`{pair, epoch, seq, ts, bid, bid_qty, ask, ask_qty, last, open_24h, high_24h, low_24h, volume_24h, quote_volume_24h, change_24h, change_24h_pct}`"),
              (status = 404, description = "unknown_pair", body = api::error::ErrorBody)))]
pub(super) async fn ticker(State(s): State<AppState>, ApiPath(pair): ApiPath<String>) -> Response {
    match s
        .markets()
        .ask(&pair, |reply| PairCommand::Ticker { reply })
        .await
    {
        Some(body) => json_bytes(body),
        None => unknown_pair(&pair),
    }
}

/// Every pair's ticker, in the order of `GET /markets`.
#[utoipa::path(get, path = "/markets/tickers", tag = "markets",
    responses((status = 200, description = "`[ticker]`: the body of `GET /markets/{pair}/ticker` for each pair")))]
pub(super) async fn tickers(State(s): State<AppState>) -> Response {
    let mut tickers = Vec::with_capacity(s.markets().specs().len());
    for spec in s.markets().specs() {
        let pair = &spec.symbol;
        if let Some(t) = s
            .markets()
            .ask(pair, |reply| PairCommand::Ticker { reply })
            .await
        {
            tickers.push(t);
        }
    }
    json_bytes(Encoder::new().rest_tickers(&tickers))
}

#[derive(Deserialize)]
pub(super) struct CandlesQuery {
    interval: Option<String>,
    start: Option<String>,
    end: Option<String>,
    limit: Option<String>,
}

/// Candles of one interval with `start <= candle start < end` (µs),
/// oldest first, the open candle last when in range; when more match
/// than `limit`, the newest `limit`. Page back with `end` = the first
/// candle's `start`. Candle objects as on `candlesN.PAIR`.
#[utoipa::path(get, path = "/markets/{pair}/candles", tag = "markets",
    params(("pair" = String, Path, description = "e.g. BTC-USD"),
           ("interval" = String, Query, description = "1m, 5m, 15m, 1h, 4h or 1d"),
           ("start" = Option<u64>, Query, description = "µs since the Unix epoch, inclusive; default 0"),
           ("end" = Option<u64>, Query, description = "µs since the Unix epoch, exclusive; default: no bound"),
           ("limit" = Option<usize>, Query, description = "1..=1000, default 300")),
    responses((status = 200, description = "`{pair, interval, candles: [{start, open, high, low, close, volume, quote_volume, trades, closed}]}`"),
              (status = 404, description = "unknown_pair", body = api::error::ErrorBody),
              (status = 422, description = "missing_field, invalid_interval, invalid_range, invalid_limit", body = api::error::ErrorBody)))]
pub(super) async fn candles(
    State(s): State<AppState>,
    ApiPath(pair): ApiPath<String>,
    ApiQuery(q): ApiQuery<CandlesQuery>,
) -> Response {
    let Some(name) = q.interval.as_deref() else {
        return invalid("missing_field", "interval is required");
    };
    let Some(interval) = Interval::parse(name) else {
        return invalid(
            "invalid_interval",
            "interval must be one of 1m, 5m, 15m, 1h, 4h, 1d",
        );
    };
    let micros = |raw: Option<&str>, default: u64| match raw.map(str::parse::<u64>) {
        None => Some(default),
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => None,
    };
    let (Some(from), Some(to)) = (
        micros(q.start.as_deref(), 0),
        micros(q.end.as_deref(), u64::MAX),
    ) else {
        return invalid("invalid_range", "start and end are µs integers");
    };
    if from >= to {
        return invalid("invalid_range", "start must be before end");
    }
    let Some(limit) = limit(q.limit.as_deref(), CANDLES_DEFAULT, CANDLES_MAX) else {
        return invalid_limit(CANDLES_MAX);
    };
    let ask = |reply| PairCommand::Candles {
        interval,
        from,
        to,
        limit,
        reply,
    };
    let Some(mut view): Option<CandlesView> = s.markets().ask(&pair, ask).await else {
        return unknown_pair(&pair);
    };
    // Older than memory: from the archive, before what memory returned.
    let older_to = view
        .candles
        .first()
        .map(|c| c.start)
        .or(view.oldest_in_memory)
        .unwrap_or(to)
        .min(to);
    let missing = limit - view.candles.len();
    if missing > 0 && from < older_to {
        if let Some(archive) = s.markets().archive() {
            match archive
                .candles(&pair, interval, from, older_to, missing)
                .await
            {
                Ok(mut older) => {
                    older.append(&mut view.candles);
                    view.candles = older;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "market archive read failed");
                    return error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "store_unavailable",
                        "the market archive is unavailable",
                    );
                }
            }
        }
    }
    let body = Encoder::new().rest_candles(
        &view.spec,
        interval.as_str(),
        &view.candles,
        view.open_start,
    );
    json_bytes(body)
}

#[derive(Deserialize)]
pub(super) struct TradesQuery {
    limit: Option<String>,
    before: Option<String>,
}

/// The cursor of the trade history: a [`TradeKey`] as `"{venue_ts}-{trade_id}"`.
fn parse_cursor(raw: &str) -> Option<TradeKey> {
    let (ts, id) = raw.split_once('-')?;
    Some(TradeKey {
        venue_ts: ts.parse().ok()?,
        trade_id: id.parse().ok()?,
    })
}

/// The public trade history, newest first: the trades of `trades.PAIR`
/// with the same ids and seqs. `next_before` pages on (null on the last
/// page).
#[utoipa::path(get, path = "/markets/{pair}/trades", tag = "markets",
    params(("pair" = String, Path, description = "e.g. BTC-USD"),
           ("limit" = Option<usize>, Query, description = "1..=1000, default 100"),
           ("before" = Option<String>, Query, description = "the `next_before` of the previous page")),
    responses((status = 200, description = "`{trades: [{id, price, qty, side, venue_ts, seq, epoch}], next_before}`"),
              (status = 404, description = "unknown_pair", body = api::error::ErrorBody),
              (status = 422, description = "invalid_limit, invalid_cursor", body = api::error::ErrorBody)))]
pub(super) async fn trades(
    State(s): State<AppState>,
    ApiPath(pair): ApiPath<String>,
    ApiQuery(q): ApiQuery<TradesQuery>,
) -> Response {
    let Some(limit) = limit(q.limit.as_deref(), TRADES_DEFAULT, TRADES_MAX) else {
        return invalid_limit(TRADES_MAX);
    };
    let before = match q.before.as_deref().map(parse_cursor) {
        None => None,
        Some(Some(k)) => Some(k),
        Some(None) => return invalid("invalid_cursor", "before must be a next_before value"),
    };
    let Some(spec) = s
        .markets()
        .specs()
        .iter()
        .find(|m| m.symbol == pair)
        .cloned()
    else {
        return unknown_pair(&pair);
    };
    let ask = |reply| PairCommand::Trades {
        before,
        limit,
        reply,
    };
    let Some(mut page): Option<Vec<ArchivedTrade>> = s.markets().ask(&pair, ask).await else {
        return unknown_pair(&pair);
    };
    if page.len() < limit {
        if let Some(archive) = s.markets().archive() {
            let from = page.last().map(ArchivedTrade::key).or(before);
            match archive.trades_before(&pair, from, limit - page.len()).await {
                Ok(older) => page.extend(older),
                Err(e) => {
                    tracing::warn!(error = %e, "market archive read failed");
                    return error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "store_unavailable",
                        "the market archive is unavailable",
                    );
                }
            }
        }
    }
    let next = (page.len() == limit)
        .then(|| page.last().map(ArchivedTrade::key))
        .flatten();
    json_bytes(Encoder::new().rest_trades(&spec, &page, next))
}
