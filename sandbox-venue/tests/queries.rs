//! Market queries over HTTP: markets, assets, and a pair's book compared
//! with the venue's own book.

use crate::common;

use common::start;
use orderbook::MarketSpec;
use serde_json::{json, Value};

#[tokio::test]
async fn markets_and_assets_list_the_sandbox_pairs_with_their_scales() {
    let t = start().await;
    let data = t
        .data(
            "{ markets { pair base quote priceScale qtyScale minQty } assets { symbol scale } }",
            json!({}),
        )
        .await;
    let markets = data["markets"].as_array().unwrap();
    let pairs: Vec<_> = markets
        .iter()
        .map(|m| m["pair"].as_str().unwrap())
        .collect();
    assert_eq!(pairs, ["BTC-USD", "ETH-USD", "SOL-USD", "ETH-BTC"]);
    assert_eq!(
        markets[0],
        json!({"pair": "BTC-USD", "base": "BTC", "quote": "USD",
               "priceScale": 2, "qtyScale": 6, "minQty": "0.000010"})
    );
    assert_eq!(markets[3]["priceScale"], 5);
    assert_eq!(markets[3]["minQty"], "0.001");
    let assets = data["assets"].as_array().unwrap();
    assert_eq!(assets.len(), 4);
    assert!(assets.contains(&json!({"symbol": "USD", "scale": 8})));
    assert!(assets.contains(&json!({"symbol": "BTC", "scale": 8})));
    t.stop().await;
}

fn levels(spec: &MarketSpec, side: &[(orderbook::Price, orderbook::Qty)]) -> Vec<Value> {
    side.iter()
        .map(|&(p, q)| json!({"price": spec.format_price(p), "qty": spec.format_qty(q)}))
        .collect()
}

#[tokio::test]
async fn order_book_is_the_venues_book_best_first_at_the_pairs_scales() {
    let t = start().await;
    let query = "query($p: String!, $d: Int) {
        orderBook(pair: $p, depth: $d) { pair epoch seq tradeSeq venueTs bids { price qty } asks { price qty } }
    }";
    let book = t.data(query, json!({"p": "BTC-USD"})).await["orderBook"].clone();
    let (seq, venue_book) = t.server.venue().book("BTC-USD").unwrap();
    let spec = MarketSpec::new("BTC-USD", 2, 6, orderbook::Qty(10)).unwrap();
    let (bids, asks) = venue_book.levels();
    assert!(
        bids.len() > 3 && asks.len() > 3,
        "the sandbox seeds both sides"
    );
    assert_eq!(book["pair"], "BTC-USD");
    assert_eq!(book["seq"], seq);
    assert_eq!(book["tradeSeq"], 0, "no trade yet");
    assert!(!book["epoch"].as_str().unwrap().is_empty());
    assert!(book["venueTs"].as_u64().unwrap() > 1_600_000_000_000_000);
    assert_eq!(book["bids"].as_array().unwrap(), &levels(&spec, &bids));
    assert_eq!(book["asks"].as_array().unwrap(), &levels(&spec, &asks));
    // Best first: bids descend, asks ascend (prices have 2 decimals).
    let prices = |side: &Value| -> Vec<f64> {
        side.as_array()
            .unwrap()
            .iter()
            .map(|l| l["price"].as_str().unwrap().parse().unwrap())
            .collect()
    };
    let bid_prices = prices(&book["bids"]);
    assert!(bid_prices.windows(2).all(|w| w[0] > w[1]));
    let ask_prices = prices(&book["asks"]);
    assert!(ask_prices.windows(2).all(|w| w[0] < w[1]));
    assert!(bid_prices[0] < ask_prices[0]);

    let top = t.data(query, json!({"p": "BTC-USD", "d": 3})).await["orderBook"].clone();
    assert_eq!(top["bids"].as_array().unwrap(), &levels(&spec, &bids[..3]));
    assert_eq!(top["asks"].as_array().unwrap(), &levels(&spec, &asks[..3]));
    assert_eq!(top["epoch"], book["epoch"]);
    t.stop().await;
}

#[tokio::test]
async fn order_book_refuses_unknown_pairs_and_depths_below_one() {
    let t = start().await;
    let query = "query($p: String!, $d: Int) { orderBook(pair: $p, depth: $d) { seq } }";
    assert_eq!(
        t.error_code(query, json!({"p": "DOGE-USD"})).await,
        "UNKNOWN_PAIR"
    );
    assert_eq!(
        t.error_code(query, json!({"p": "BTC-USD", "d": 0})).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        t.error_code(query, json!({"p": "BTC-USD", "d": -5})).await,
        "BAD_USER_INPUT"
    );
    t.stop().await;
}
