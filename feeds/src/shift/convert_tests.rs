//! Mapping tests: wire JSON as `schema.graphql` shapes it ↔ feeds types.

use super::*;
use crate::shift::wire::WireUserEvent;
use serde_json::json;

fn catalog() -> Catalog {
    Catalog::from_wire(
        serde_json::from_value(json!({
            "markets": [
                {"pair": "BTC-USD", "base": "BTC", "quote": "USD", "priceScale": 2,
                 "qtyScale": 6, "minQty": "0.00001"},
                {"pair": "ETH-BTC", "base": "ETH", "quote": "BTC", "priceScale": 5,
                 "qtyScale": 3, "minQty": "0.001"}
            ],
            "assets": [{"symbol": "USD", "scale": 8}, {"symbol": "BTC", "scale": 8},
                       {"symbol": "ETH", "scale": 8}]
        }))
        .unwrap(),
    )
    .unwrap()
}

fn wire_order(extra: serde_json::Value) -> WireOrder {
    let mut o = json!({
        "id": "17", "clientId": "api-1", "userId": "u1", "pair": "BTC-USD",
        "side": "BUY", "type": "LIMIT", "price": "64000.10", "qty": "0.500000",
        "filledQty": "0.25", "filledNotional": "16000.025", "status": "PARTIALLY_FILLED",
        "reason": null, "timeInForce": "GTC", "postOnly": false,
        "createdTs": 1000, "updatedTs": 2000
    });
    for (k, v) in extra.as_object().unwrap() {
        o[k] = v.clone();
    }
    serde_json::from_value(o).unwrap()
}

#[test]
fn markets_parse_at_their_scales() {
    let c = catalog();
    let btc = c.market("BTC-USD").unwrap();
    assert_eq!((btc.price_scale, btc.qty_scale), (2, 6));
    assert_eq!(btc.min_qty, Qty(10));
    assert_eq!((btc.base.as_str(), btc.quote.as_str()), ("BTC", "USD"));
    assert_eq!(c.markets.len(), 2);
    assert_eq!(c.asset_scale("ETH"), Some(8));
}

#[test]
fn a_market_whose_base_disagrees_with_its_symbol_is_refused() {
    let wire = serde_json::from_value(json!({
        "markets": [{"pair": "BTC-USD", "base": "ETH", "quote": "USD", "priceScale": 2,
                     "qtyScale": 6, "minQty": "1"}],
        "assets": []
    }))
    .unwrap();
    assert!(Catalog::from_wire(wire).is_err());
}

#[test]
fn orders_map_every_field_at_the_pair_scale() {
    let r = catalog().order_report(&wire_order(json!({}))).unwrap();
    assert_eq!(r.order_id, "17");
    assert_eq!(r.client_id.as_deref(), Some("api-1"));
    assert_eq!(r.user, "u1");
    assert_eq!(r.side, Side::Buy);
    assert_eq!(r.order_type, OrderType::Limit);
    assert_eq!(r.price, Some(Price(6_400_010)));
    assert_eq!(r.qty, Qty(500_000));
    assert_eq!(r.filled_qty, Qty(250_000));
    // priceScale + qtyScale = 8 decimals.
    assert_eq!(r.filled_notional_raw, 1_600_002_500_000);
    assert_eq!(r.status, OrderStatus::PartiallyFilled);
    assert_eq!(r.time_in_force, TimeInForce::Gtc);
    assert_eq!((r.created_ts, r.updated_ts), (1000, 2000));
}

#[test]
fn order_reasons_map_and_unknown_ones_are_dropped() {
    let c = catalog();
    let r = c
        .order_report(&wire_order(
            json!({"status": "CANCELLED", "reason": "self_trade_prevented"}),
        ))
        .unwrap();
    assert_eq!(r.reason, Some(OrderReason::SelfTradePrevented));
    let r = c
        .order_report(&wire_order(json!({"reason": "cosmic_rays"})))
        .unwrap();
    assert_eq!(r.reason, None);
}

#[test]
fn market_orders_have_no_price() {
    let r = catalog()
        .order_report(&wire_order(json!({"type": "MARKET", "price": null})))
        .unwrap();
    assert_eq!(r.order_type, OrderType::Market);
    assert_eq!(r.price, None);
}

#[test]
fn too_many_decimals_is_an_error_not_a_rounding() {
    let c = catalog();
    assert!(c
        .order_report(&wire_order(json!({"price": "64000.001"})))
        .is_err());
    assert!(c
        .order_report(&wire_order(json!({"qty": "0.0000001"})))
        .is_err());
    assert!(c
        .order_report(&wire_order(json!({"filledNotional": "1.000000001"})))
        .is_err());
    assert!(c
        .order_report(&wire_order(json!({"pair": "DOGE-USD"})))
        .is_err());
}

#[test]
fn notionals_beyond_u64_are_exact() {
    assert_eq!(parse_notional("0", 8), Ok(0));
    assert_eq!(parse_notional("1.5", 3), Ok(1500));
    assert_eq!(
        parse_notional("184467440737.09551616", 8),
        Ok(u128::from(u64::MAX) + 1)
    );
    for bad in ["", ".", "1.", ".5", "-1", "1e3", "1,0", " 1"] {
        assert!(parse_notional(bad, 8).is_err(), "{bad:?}");
    }
}

#[test]
fn place_order_becomes_create_order_input_at_the_pair_scale() {
    let c = catalog();
    let order = PlaceOrder {
        user: "u1".into(),
        client_id: Some("api-9".into()),
        pair: "ETH-BTC".into(),
        side: Side::Sell,
        order_type: OrderType::Limit,
        price: Some(Price(5_000)),
        qty: Qty(1_500),
        time_in_force: TimeInForce::Fok,
        post_only: true,
    };
    let input = serde_json::to_value(c.create_order_input(&order).unwrap()).unwrap();
    assert_eq!(
        input,
        json!({"userId": "u1", "clientId": "api-9", "pair": "ETH-BTC", "side": "SELL",
               "type": "LIMIT", "price": "0.05000", "qty": "1.500", "timeInForce": "FOK",
               "postOnly": true})
    );
    let unknown = PlaceOrder {
        pair: "XRP-USD".into(),
        ..order
    };
    assert!(c.create_order_input(&unknown).is_none());
}

#[test]
fn balances_and_amounts_use_the_asset_scale() {
    let c = catalog();
    let b: WireBalance = serde_json::from_value(json!({
        "userId": "u1", "asset": "USD", "available": "100.5", "locked": "0.00000001",
        "venueTs": 5
    }))
    .unwrap();
    assert_eq!(
        c.balance(&b).unwrap(),
        Balance {
            available: 10_050_000_000,
            locked: 1
        }
    );
    assert_eq!(c.format_amount("BTC", 150_000_000).unwrap(), "1.50000000");
    assert_eq!(c.format_amount("DOGE", 1), None);
}

#[test]
fn user_event_fills_map() {
    let c = catalog();
    let WireUserEvent::Fill(f) = serde_json::from_value(json!({
        "__typename": "Fill", "tradeId": 9, "orderId": "17", "clientId": "api-1",
        "userId": "u1", "pair": "BTC-USD", "side": "SELL", "fillPrice": "64000.00",
        "qty": "0.000010", "maker": false, "venueTs": 77
    }))
    .unwrap() else {
        panic!("not a fill")
    };
    let fill = c.fill(&f).unwrap();
    assert_eq!(fill.price, Price(6_400_000));
    assert_eq!(fill.qty, Qty(10));
    assert_eq!(fill.side, Side::Sell);
    assert_eq!((fill.trade_id, fill.venue_ts, fill.maker), (9, 77, false));
}

#[test]
fn book_events_become_snapshots_and_absolute_deltas() {
    let c = catalog();
    let spec = c.market("BTC-USD").unwrap();
    let snap: WireBookEvent = serde_json::from_value(json!({
        "pair": "BTC-USD", "epoch": "e1", "kind": "SNAPSHOT", "seq": 10, "tradeSeq": 4,
        "reason": "subscribe", "venueTs": 1,
        "bids": [{"price": "100.00", "qty": "1"}], "asks": [{"price": "101.00", "qty": "2"}]
    }))
    .unwrap();
    assert_eq!(
        book_update(spec, &snap).unwrap(),
        BookUpdate {
            epoch: "e1".into(),
            seq: 10,
            venue_ts: 1,
            body: BookBody::Snapshot {
                trade_seq: 4,
                resync: false,
                bids: vec![(Price(10_000), Qty(1_000_000))],
                asks: vec![(Price(10_100), Qty(2_000_000))],
            }
        }
    );
    let delta: WireBookEvent = serde_json::from_value(json!({
        "pair": "BTC-USD", "epoch": "e1", "kind": "DELTA", "seq": 11, "tradeSeq": 0,
        "reason": null, "venueTs": 2,
        "bids": [{"price": "100.00", "qty": "0"}], "asks": [{"price": "100.50", "qty": "0.1"}]
    }))
    .unwrap();
    let BookBody::Delta(deltas) = book_update(spec, &delta).unwrap().body else {
        panic!("not a delta")
    };
    assert_eq!(
        deltas,
        vec![
            BookDelta {
                side: Side::Buy,
                price: Price(10_000),
                qty: Qty(0)
            },
            BookDelta {
                side: Side::Sell,
                price: Price(10_050),
                qty: Qty(100_000)
            },
        ]
    );
}

#[test]
fn trade_batches_map_with_aggressor_side() {
    let c = catalog();
    let b: WireTradeBatch = serde_json::from_value(json!({
        "pair": "BTC-USD", "epoch": "e1", "seq": 3, "venueTs": 8,
        "trades": [{"id": 41, "price": "100.01", "qty": "0.5", "side": "BUY", "venueTs": 8}]
    }))
    .unwrap();
    let t = trade_update(c.market("BTC-USD").unwrap(), &b).unwrap();
    assert_eq!(t.seq, 3);
    assert_eq!(
        t.trades,
        vec![PublicTrade {
            trade_id: 41,
            price: Price(10_001),
            qty: Qty(500_000),
            side: Side::Buy,
            venue_ts: 8
        }]
    );
}

#[test]
fn market_status_is_read_with_its_reason_bounded() {
    let spec = catalog().markets[0].clone();
    let status = |halted: bool, reason: Option<&str>| WireMarketStatus {
        pair: spec.symbol.clone(),
        halted,
        reason: reason.map(str::to_owned),
        venue_ts: 1,
    };
    assert_eq!(
        market_status(&spec, &status(false, None)),
        Ok(TradingStatus::Open)
    );
    assert_eq!(
        market_status(&spec, &status(true, Some("circuit breaker"))),
        Ok(TradingStatus::Halted {
            reason: "circuit breaker".into()
        })
    );
    assert_eq!(
        market_status(&spec, &status(true, Some("  "))),
        Ok(TradingStatus::Halted {
            reason: "halted by the venue".into()
        })
    );
    let long = "é".repeat(crate::MAX_HALT_REASON_CHARS + 50);
    let Ok(TradingStatus::Halted { reason }) = market_status(&spec, &status(true, Some(&long)))
    else {
        panic!("a halt");
    };
    assert_eq!(reason.chars().count(), crate::MAX_HALT_REASON_CHARS);
    let mut other = status(true, None);
    other.pair = "XRP-USD".into();
    assert!(market_status(&spec, &other).is_err());
}

#[test]
fn errors_quote_a_long_value_cut_with_its_length() {
    let c = catalog();
    let long = format!("{}-USD", "Ü".repeat(10_000));
    let Err(e) = c.order_report(&wire_order(json!({ "pair": long }))) else {
        panic!("an unknown pair is an error");
    };
    let message = e.to_string();
    let quoted = format!("{:?}", "Ü".repeat(QUOTE_MAX_CHARS));
    assert!(
        message.contains(&format!("{quoted}… ({} bytes)", long.len())),
        "{message}"
    );
    assert!(message.len() < 400, "{} bytes: {message}", message.len());
    // A short value is quoted whole.
    let Err(e) = c.order_report(&wire_order(json!({ "pair": "DOGE-USD" }))) else {
        panic!("an unknown pair is an error");
    };
    assert!(e.to_string().contains("\"DOGE-USD\" is not"), "{e}");
}

#[test]
fn an_error_that_repeats_a_long_value_is_cut_with_its_length() {
    // Lower case: the spec's own error repeats the whole symbol.
    let long = format!("{}-USD", "b".repeat(5_000));
    let wire = json!({
        "markets": [{"pair": long, "base": "BTC", "quote": "USD", "priceScale": 2,
                     "qtyScale": 6, "minQty": "0.00001"}],
        "assets": []
    });
    let Err(e) = Catalog::from_wire(serde_json::from_value(wire).unwrap()) else {
        panic!("a symbol not in upper case is refused");
    };
    let message = e.to_string();
    assert!(
        message.chars().count() < MESSAGE_MAX_CHARS + 60,
        "{} characters: {message}",
        message.chars().count()
    );
    assert!(message.ends_with(" bytes)"), "{message}");
}
