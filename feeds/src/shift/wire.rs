//! The GraphQL documents the adapter sends and the shapes of the answers,
//! exactly as `schema.graphql` defines them (camelCase fields, SCREAMING
//! enums, decimals as strings). Nothing here knows scales: `convert.rs`
//! turns these into feeds types.

use inbound::JsonBounds;
use serde::{Deserialize, Serialize};

/// Bounds of one message from Shift (a subscription frame or an HTTP
/// answer), checked before it is parsed. The largest legitimate message is
/// a full-book `SNAPSHOT`: `{"price":"63999.90","qty":"0.500000"},` is
/// about 40 bytes and 3 values a level, so 16 MiB carries some 400,000
/// levels (the sandbox seeds 40 a side); even the shortest levels
/// (`{"price":"1","qty":"1"},`, 24 bytes) stay under 2.2 million values.
/// The deepest is a book level in a `next` frame
/// (`payload.data.orderBookUpdates.bids[i]`, depth 6); 16 leaves room for
/// Shift to add structure.
pub const UPSTREAM_BOUNDS: JsonBounds = JsonBounds {
    max_bytes: 16 * 1024 * 1024,
    max_depth: 16,
    max_elements: 2_200_000,
};

const ORDER_FIELDS: &str = "fragment OrderFields on Order { id clientId userId pair side type \
price qty filledQty filledNotional status reason timeInForce postOnly createdTs updatedTs }";

/// Markets and assets, once at connect.
pub const CATALOG: &str = "query Catalog { \
markets { pair base quote priceScale qtyScale minQty } \
assets { symbol scale } }";

pub fn create_order() -> String {
    format!(
        "mutation CreateOrder($input: CreateOrderInput!) {{ \
         createOrder(input: $input) {{ ...OrderFields }} }} {ORDER_FIELDS}"
    )
}

pub fn cancel_order() -> String {
    format!(
        "mutation CancelOrder($userId: ID!, $id: ID!) {{ \
         cancelOrder(userId: $userId, id: $id) {{ ...OrderFields }} }} {ORDER_FIELDS}"
    )
}

pub fn order() -> String {
    format!(
        "query Order($userId: ID!, $id: ID!) {{ \
         order(userId: $userId, id: $id) {{ ...OrderFields }} }} {ORDER_FIELDS}"
    )
}

pub fn orders() -> String {
    format!(
        "query Orders($userId: ID!) {{ orders(userId: $userId) {{ ...OrderFields }} }} \
         {ORDER_FIELDS}"
    )
}

pub const BALANCES: &str = "query Balances($userId: ID!) { \
user(id: $userId) { balances { userId asset available locked venueTs } } }";

pub const CREDIT: &str = "mutation Credit($userId: ID!, $asset: String!, $amount: Decimal!) { \
creditBalance(userId: $userId, asset: $asset, amount: $amount) { userId asset available locked venueTs } }";

pub const DEBIT: &str = "mutation Debit($userId: ID!, $asset: String!, $amount: Decimal!) { \
debitBalance(userId: $userId, asset: $asset, amount: $amount) { userId asset available locked venueTs } }";

pub const BOOK_UPDATES: &str = "subscription Book($pair: String!) { \
orderBookUpdates(pair: $pair) { pair epoch kind seq tradeSeq reason venueTs \
bids { price qty } asks { price qty } } }";

pub const TRADES: &str = "subscription Trades($pair: String!) { \
trades(pair: $pair) { pair epoch seq venueTs trades { id price qty side venueTs } } }";

pub const MARKET_STATUS: &str = "subscription Status($pair: String!) { \
marketStatus(pair: $pair) { pair halted reason venueTs } }";

/// `Fill.price` is non-null while `Order.price` is nullable, so the fill's
/// is aliased (`fillPrice`) to keep the union's fields mergeable.
pub fn user_events() -> String {
    format!(
        "subscription UserEvents {{ userEvents {{ __typename \
         ... on Order {{ ...OrderFields }} \
         ... on Fill {{ tradeId orderId clientId userId pair side fillPrice: price qty maker venueTs }} \
         ... on Balance {{ userId asset available locked venueTs }} }} }} {ORDER_FIELDS}"
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WireSide {
    Buy,
    Sell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WireOrderType {
    Limit,
    Market,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WireTimeInForce {
    Gtc,
    Ioc,
    Fok,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WireOrderStatus {
    Open,
    PartiallyFilled,
    Filled,
    Cancelled,
    Rejected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WireBookEventKind {
    Snapshot,
    Delta,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireMarket {
    pub pair: String,
    pub base: String,
    pub quote: String,
    pub price_scale: u8,
    pub qty_scale: u8,
    pub min_qty: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WireAsset {
    pub symbol: String,
    pub scale: u8,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WireCatalog {
    pub markets: Vec<WireMarket>,
    pub assets: Vec<WireAsset>,
}

/// `CreateOrderInput`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WireCreateOrder {
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    pub pair: String,
    pub side: WireSide,
    #[serde(rename = "type")]
    pub order_type: WireOrderType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    pub qty: String,
    pub time_in_force: WireTimeInForce,
    pub post_only: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireOrder {
    pub id: String,
    pub client_id: Option<String>,
    pub user_id: String,
    pub pair: String,
    pub side: WireSide,
    #[serde(rename = "type")]
    pub order_type: WireOrderType,
    pub price: Option<String>,
    pub qty: String,
    pub filled_qty: String,
    pub filled_notional: String,
    pub status: WireOrderStatus,
    pub reason: Option<String>,
    pub time_in_force: WireTimeInForce,
    pub post_only: bool,
    pub created_ts: u64,
    pub updated_ts: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireFill {
    pub trade_id: u64,
    pub order_id: String,
    pub client_id: Option<String>,
    pub user_id: String,
    pub pair: String,
    pub side: WireSide,
    /// Aliased in [`user_events`]; plain `price` elsewhere.
    #[serde(alias = "price")]
    pub fill_price: String,
    pub qty: String,
    pub maker: bool,
    pub venue_ts: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireBalance {
    pub user_id: String,
    pub asset: String,
    pub available: String,
    pub locked: String,
    pub venue_ts: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WireUserBalances {
    pub balances: Vec<WireBalance>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WireLevel {
    pub price: String,
    pub qty: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireBookEvent {
    pub pair: String,
    pub epoch: String,
    pub kind: WireBookEventKind,
    pub seq: u64,
    #[serde(default)]
    pub trade_seq: u64,
    pub reason: Option<String>,
    pub venue_ts: u64,
    pub bids: Vec<WireLevel>,
    pub asks: Vec<WireLevel>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireTrade {
    pub id: u64,
    pub price: String,
    pub qty: String,
    pub side: WireSide,
    pub venue_ts: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireTradeBatch {
    pub pair: String,
    pub epoch: String,
    pub seq: u64,
    pub venue_ts: u64,
    pub trades: Vec<WireTrade>,
}

/// One `marketStatus` item: whether the pair trades.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireMarketStatus {
    pub pair: String,
    pub halted: bool,
    pub reason: Option<String>,
    pub venue_ts: u64,
}

/// One `userEvents` item, told apart by `__typename`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "__typename")]
pub enum WireUserEvent {
    Order(WireOrder),
    Fill(WireFill),
    Balance(WireBalance),
}

/// One entry of a GraphQL `errors` list.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WireError {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub extensions: Option<WireErrorExtensions>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct WireErrorExtensions {
    pub code: Option<String>,
}

impl WireError {
    pub fn code(&self) -> Option<&str> {
        self.extensions.as_ref()?.code.as_deref()
    }
}

/// A GraphQL response (`data` and/or `errors`), over HTTP or as a
/// subscription's `next` payload.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WireResponse {
    #[serde(default)]
    pub data: Option<serde_json::Value>,
    #[serde(default)]
    pub errors: Vec<WireError>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_events_are_told_apart_by_typename() {
        let fill: WireUserEvent = serde_json::from_value(json!({
            "__typename": "Fill", "tradeId": 7, "orderId": "o1", "clientId": null,
            "userId": "u1", "pair": "BTC-USD", "side": "BUY", "fillPrice": "64000.10",
            "qty": "0.5", "maker": true, "venueTs": 99
        }))
        .unwrap();
        assert!(matches!(fill, WireUserEvent::Fill(f) if f.fill_price == "64000.10" && f.maker));
        let balance: WireUserEvent = serde_json::from_value(json!({
            "__typename": "Balance", "userId": "u1", "asset": "USD",
            "available": "1.5", "locked": "0", "venueTs": 1
        }))
        .unwrap();
        assert!(matches!(balance, WireUserEvent::Balance(b) if b.asset == "USD"));
        let unknown = serde_json::from_value::<WireUserEvent>(json!({"__typename": "Deposit"}));
        assert!(unknown.is_err());
    }

    #[test]
    fn create_order_input_uses_the_schema_names() {
        let input = WireCreateOrder {
            user_id: "u1".into(),
            client_id: Some("c1".into()),
            pair: "BTC-USD".into(),
            side: WireSide::Sell,
            order_type: WireOrderType::Limit,
            price: Some("64000.00".into()),
            qty: "0.100000".into(),
            time_in_force: WireTimeInForce::Ioc,
            post_only: false,
        };
        assert_eq!(
            serde_json::to_value(&input).unwrap(),
            json!({"userId": "u1", "clientId": "c1", "pair": "BTC-USD", "side": "SELL",
                   "type": "LIMIT", "price": "64000.00", "qty": "0.100000",
                   "timeInForce": "IOC", "postOnly": false})
        );
    }

    #[test]
    fn error_codes_come_from_extensions() {
        let r: WireResponse = serde_json::from_value(json!({
            "data": null,
            "errors": [{"message": "insufficient funds", "extensions": {"code": "INSUFFICIENT_FUNDS"}}]
        }))
        .unwrap();
        assert_eq!(r.errors[0].code(), Some("INSUFFICIENT_FUNDS"));
        let r: WireResponse =
            serde_json::from_value(json!({"errors": [{"message": "boom"}]})).unwrap();
        assert_eq!(r.errors[0].code(), None);
    }

    #[test]
    fn documents_name_every_order_field_once() {
        for doc in [
            create_order(),
            cancel_order(),
            order(),
            orders(),
            user_events(),
        ] {
            assert_eq!(doc.matches("fragment OrderFields").count(), 1, "{doc}");
            assert!(doc.contains("filledNotional"));
        }
    }
}
