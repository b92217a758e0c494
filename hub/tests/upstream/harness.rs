//! The pieces of the upstream tests: a standalone venue (`sandbox_venue::serve`)
//! on 127.0.0.1 with a GraphQL client and its admin (fault-injection)
//! routes, a hub pointed at it (`venue.kind = graphql`), and a REST trader
//! of the hub (register, login, KYC, orders).

use crate::common;
use hub::app::RunningHub;
use hub::config::{Config, VenueKind};
use sandbox_venue::{BearerToken, RunningVenueServer, VenueServerConfig};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

use crate::book::{BookState, WireLevels};

pub const TOKEN: &str = "upstream-test-token";
pub const PAIR: &str = "BTC-USD";
const PASSWORD: &str = "Correct-Horse-9-Battery";

/// A venue server in this process.
pub struct TestVenue {
    pub server: RunningVenueServer,
    pub addr: SocketAddr,
    http: reqwest::Client,
}

/// The venue's `orderBook` answer.
#[derive(Debug)]
pub struct VenueBook {
    pub epoch: String,
    pub seq: u64,
    pub bids: WireLevels,
    pub asks: WireLevels,
}

impl TestVenue {
    /// A venue on `bind` (port 0: any) whose simulated market makes
    /// `events_per_sec` changes. Binding the port of a venue that just
    /// stopped is retried for a few seconds.
    pub async fn start(bind: SocketAddr, events_per_sec: u32) -> TestVenue {
        Self::start_with(bind, events_per_sec, |_| {}).await
    }

    /// [`TestVenue::start`] with the sandbox adjusted by `edit` (e.g.
    /// another set of pairs).
    pub async fn start_with(
        bind: SocketAddr,
        events_per_sec: u32,
        edit: impl FnOnce(&mut feeds::SandboxConfig),
    ) -> TestVenue {
        let mut config = VenueServerConfig::new(bind, BearerToken::new(TOKEN).unwrap());
        config.sandbox.events_per_sec = events_per_sec;
        config.sandbox.seed = 7;
        edit(&mut config.sandbox);
        let deadline = Instant::now() + Duration::from_secs(5);
        let server = loop {
            match sandbox_venue::serve(config.clone()).await {
                Ok(server) => break server,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("venue bind {bind}: {e:#}; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("venue does not start on {bind}: {e:#}"),
            }
        };
        TestVenue {
            addr: server.addr(),
            server,
            http: reqwest::Client::new(),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    pub async fn stop(self) {
        tokio::time::timeout(Duration::from_secs(10), self.server.stop())
            .await
            .expect("venue stops within 10 s")
            .expect("venue stops cleanly");
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("http://{}{path}", self.addr))
            .bearer_auth(TOKEN)
            .json(body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("venue answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("venue body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Runs a GraphQL operation that must succeed; its `data`.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self
            .post("/graphql", &json!({"query": query, "variables": variables}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "venue errors: {body}");
        body["data"].clone()
    }

    /// A fault-injection call; must answer 204.
    pub async fn admin(&self, path: &str, body: Value) {
        let (status, answer) = self.post(path, &body).await;
        assert_eq!(status, 204, "{path} {body}: {answer}");
    }

    /// `orderBook(pair, depth: 1000)`.
    pub async fn order_book(&self, pair: &str) -> VenueBook {
        let data = self
            .data(
                "query($p: String!) { orderBook(pair: $p, depth: 1000) {
                    epoch seq bids { price qty } asks { price qty } } }",
                json!({"p": pair}),
            )
            .await;
        let book = &data["orderBook"];
        let side = |k: &str| -> WireLevels {
            book[k]
                .as_array()
                .expect("levels")
                .iter()
                .map(|l| (text(&l["price"]), text(&l["qty"])))
                .collect()
        };
        let (bids, asks) = (side("bids"), side("asks"));
        assert!(
            bids.len() < 1000 && asks.len() < 1000,
            "whole book compared"
        );
        VenueBook {
            epoch: text(&book["epoch"]),
            seq: book["seq"].as_u64().expect("seq"),
            bids,
            asks,
        }
    }

    /// `creditBalance` of `amount` (a decimal string).
    pub async fn credit(&self, user: &str, asset: &str, amount: &str) {
        self.data(
            "mutation($u: ID!, $a: String!, $n: Decimal!) {
                creditBalance(userId: $u, asset: $a, amount: $n) { total } }",
            json!({"u": user, "a": asset, "n": amount}),
        )
        .await;
    }

    /// `orders(userId)`, newest first.
    pub async fn orders(&self, user: &str) -> Vec<Value> {
        let data = self
            .data(
                "query($u: ID!) { orders(userId: $u) {
                    id clientId pair side status qty filledQty filledNotional } }",
                json!({"u": user}),
            )
            .await;
        data["orders"].as_array().expect("orders").clone()
    }
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_owned()
}

/// A hub config pointed at `venue`, with quick reconnects; `edit` adjusts.
pub fn hub_config(venue: &TestVenue, edit: impl FnOnce(&mut Config)) -> Config {
    common::test_config(|c| {
        c.venue.kind = VenueKind::Graphql;
        c.venue.endpoint = venue.endpoint();
        c.venue.token = Some(api::secret::Secret::new(TOKEN));
        c.venue.request_timeout_ms = 2_000;
        c.venue.backoff_min_ms = 50;
        c.venue.backoff_max_ms = 500;
        edit(c);
    })
}

/// Starts a hub on `venue` and waits (up to 10 s) until every book is warm.
pub async fn start_hub(venue: &TestVenue, edit: impl FnOnce(&mut Config)) -> RunningHub {
    let hub = hub::app::start(&hub_config(venue, edit))
        .await
        .expect("hub starts on the venue");
    wait_warm(&hub).await;
    hub
}

/// Waits (up to 10 s) until every book of `hub` is warm.
pub async fn wait_warm(hub: &RunningHub) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !hub.context.markets.cold_pairs().is_empty() {
        assert!(
            Instant::now() < deadline,
            "cold: {:?}",
            hub.context.markets.cold_pairs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The pair's spec as the hub has it (from the venue's catalog).
pub fn spec(hub: &RunningHub, pair: &str) -> orderbook::MarketSpec {
    hub.context
        .markets
        .specs()
        .iter()
        .find(|s| s.symbol == pair)
        .expect("the hub lists the pair")
        .clone()
}

/// `GET path` on the hub: status and JSON body.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
    let (status, body) = common::http_get(addr, path).await;
    (status, serde_json::from_str(&body).expect("JSON body"))
}

/// The hub's `GET /markets/PAIR/orderbook?depth=1000`: epoch, seq, book.
pub async fn hub_book(addr: SocketAddr, pair: &str) -> (String, u64, BookState) {
    let (status, view) = get(addr, &format!("/markets/{pair}/orderbook?depth=1000")).await;
    assert_eq!(status, 200, "{view}");
    let side = |k: &str| -> WireLevels {
        view[k]
            .as_array()
            .expect("levels")
            .iter()
            .map(|l| (text(&l[0]), text(&l[1])))
            .collect()
    };
    let state = BookState {
        bids: side("bids"),
        asks: side("asks"),
        checksum: view["checksum"].as_u64().expect("checksum") as u32,
    };
    (
        text(&view["epoch"]),
        view["seq"].as_u64().expect("seq"),
        state,
    )
}

/// Polls `GET /ready` until `want(status, body)` holds; the last answer.
pub async fn ready_until(
    addr: SocketAddr,
    secs: u64,
    what: &str,
    want: impl Fn(u16, &Value) -> bool,
) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (status, body) = get(addr, "/ready").await;
        if want(status, &body) {
            return (status, body);
        }
        assert!(
            Instant::now() < deadline,
            "GET /ready not {what} within {secs} s: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether `/ready`'s 503 body names `item`.
pub fn names(body: &Value, item: &str) -> bool {
    body["not_ready"]
        .as_array()
        .is_some_and(|l| l.iter().any(|x| x == item))
}

/// A REST client of the hub, registered, logged in and KYC-verified.
pub struct Trader {
    pub user_id: String,
    pub token: String,
    /// The refresh token of the login.
    pub refresh: String,
    base: String,
    http: reqwest::Client,
}

/// A REST answer: status, JSON body, `Retry-After`, time taken.
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<String>,
    pub took: Duration,
}

impl Trader {
    pub async fn verified(hub: &RunningHub, email: &str) -> Trader {
        let trader = Trader::registered(hub, email).await;
        let doc = json!({"document_type": "passport", "content_base64": "aGVsbG8="});
        let kyc = trader.call("POST", "/users/kyc-documents", Some(doc)).await;
        assert_eq!(kyc.status, 202, "{}", kyc.body);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let k = trader.call("GET", "/users/kyc-status", None).await;
            if k.body["kyc_status"] == "VERIFIED" {
                break trader;
            }
            assert!(Instant::now() < deadline, "KYC not verified: {}", k.body);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A registered, logged-in user whose KYC is not verified.
    pub async fn registered(hub: &RunningHub, email: &str) -> Trader {
        let http = reqwest::Client::new();
        let base = format!("http://{}", hub.addr);
        let mut trader = Trader {
            user_id: String::new(),
            token: String::new(),
            refresh: String::new(),
            base,
            http,
        };
        let creds = json!({"email": email, "password": PASSWORD});
        let reg = trader
            .call("POST", "/auth/register", Some(creds.clone()))
            .await;
        assert_eq!(reg.status, 201, "{}", reg.body);
        trader.user_id = text(&reg.body["user_id"]);
        let login = trader.call("POST", "/auth/login", Some(creds)).await;
        assert_eq!(login.status, 200, "{}", login.body);
        trader.token = text(&login.body["access_token"]);
        trader.refresh = text(&login.body["refresh_token"]);
        trader
    }

    /// The same session, talking to `hub` (another node).
    #[allow(dead_code)] // nodes.rs only
    pub fn on(&self, hub: &RunningHub) -> Trader {
        Trader {
            user_id: self.user_id.clone(),
            token: self.token.clone(),
            refresh: self.refresh.clone(),
            base: format!("http://{}", hub.addr),
            http: self.http.clone(),
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .timeout(Duration::from_secs(15));
        if !self.token.is_empty() {
            request = request.bearer_auth(&self.token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let started = Instant::now();
        let response = request.send().await.expect("hub answers");
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let text = response.text().await.expect("hub body");
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            retry_after,
            took: started.elapsed(),
        }
    }

    /// `POST /orders` of a limit order.
    pub async fn limit(&self, id: &str, side: &str, qty: &str, price: &str, tif: &str) -> Answer {
        let order = json!({
            "client_order_id": id, "pair": PAIR, "side": side, "type": "limit",
            "qty": qty, "price": price, "time_in_force": tif,
        });
        self.call("POST", "/orders", Some(order)).await
    }
}
