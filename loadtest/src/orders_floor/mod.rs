//! The machine's floor for the REST order flow (issue 18): the thinnest
//! server that does what `loadtest --scenario orders` needs of the hub and
//! acknowledges every order only once it is durable, so the order figures
//! can be stated beside what this machine allows for the same shape, as
//! the fan-out figures are beside [`crate::floor`].
//!
//! - HTTP/1.1 on 127.0.0.1 through axum and hyper (the hub's own stack),
//!   on a tokio runtime with the default workers (one per core, as the
//!   hub's).
//! - `POST /orders` parses its JSON body, checks the bearer token and the
//!   fields, and appends one line for the order to `orders.ndjson`;
//!   `DELETE /orders/{id}` checks the order is the caller's and open, and
//!   appends one line for the cancel. Both answer only after the line is
//!   on disk: one writer thread writes every line that queued while the
//!   previous `fdatasync` ran in one `write`, then syncs once (the same
//!   group commit as the hub's store, with one record per order where the
//!   hub writes the order, its balances and its events).
//! - No matching, balances, events, sessions or rate limits: a limit
//!   order answers `open`, a market order `filled` for its whole quantity.
//! - The setup routes (`/auth/register`, `/auth/login`, KYC, deposit,
//!   balances, `/markets`, the book top) answer what the scenario expects
//!   at once, from memory; a login checks only that the email is
//!   registered (no password is kept).
//! - `/metrics` counts appended records (`nax_store_batches_total`),
//!   syncs (`nax_store_syncs_total`) and filled market orders
//!   (`nax_domain_events_total{type="order.filled"}`), under the hub's
//!   names, so `scripts/orders-ab.sh` reads the floor as it reads a hub.
//!
//! Bounded: bodies ≤ [`MAX_BODY_BYTES`], ≤ [`MAX_USERS`] users (one token
//! each), ≤ [`MAX_OPEN_ORDERS`] open orders, and the server stops by
//! itself after its duration (≤ [`MAX_SECONDS`]) and a grace of
//! [`STOP_GRACE`]. Connections are not limited (127.0.0.1 only; the
//! harness's own bounds hold them), and the log grows by one line per
//! order for the run's length. Figures: docs/BENCHMARKS.md, "The
//! order flow's floor".

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use orderbook::decimal::parse_scaled;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::oneshot;

mod log;
use log::Log;

/// Longest run, seconds.
pub const MAX_SECONDS: u64 = 3_600;
/// How long open connections may finish their requests once the run is
/// over; then the server stops regardless.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Largest request body, bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Most registered users.
pub const MAX_USERS: usize = 10_000;
/// Most open (resting, not cancelled) orders.
pub const MAX_OPEN_ORDERS: usize = 1_000_000;
/// Longest accepted decimal string (quantity, price) and client order id.
const MAX_FIELD: usize = 64;

/// The one pair the floor lists, with the sandbox's scales.
const PAIR: &str = "BTC-USD";
const PRICE_SCALE: u8 = 2;
const QTY_SCALE: u8 = 8;
const MIN_QTY: &str = "0.00010000";
const BEST_BID: &str = "50000.00";
const BEST_ASK: &str = "50001.00";

/// How the floor runs.
#[derive(Debug, Clone)]
pub struct OrdersFloorOptions {
    /// Where to listen (port 0: any; see [`OrdersFloor::addr`]).
    pub bind: SocketAddr,
    /// Where `orders.ndjson` is written (created if missing).
    pub data_dir: PathBuf,
    /// The server stops after this long.
    pub duration: Duration,
}

/// A running floor server.
pub struct OrdersFloor {
    addr: SocketAddr,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    stop: Option<oneshot::Sender<()>>,
}

impl OrdersFloor {
    /// Binds, opens the log and starts serving (on the current runtime).
    pub async fn start(opts: OrdersFloorOptions) -> std::io::Result<Self> {
        if opts.duration > Duration::from_secs(MAX_SECONDS) {
            return Err(std::io::Error::other(format!(
                "duration above {MAX_SECONDS} s"
            )));
        }
        let log = Log::open(&opts.data_dir)?;
        let state = Arc::new(Floor {
            log,
            users: RwLock::new(Users::default()),
            open: Mutex::new(HashMap::new()),
            next_order: AtomicU64::new(1),
            filled: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/health", get(|| async { "ok" }))
            .route("/metrics", get(metrics))
            .route("/auth/register", post(register))
            .route("/auth/login", post(login))
            .route("/users/kyc-documents", post(kyc_document))
            .route("/users/kyc-status", get(kyc_status))
            .route("/fiat/deposit", post(deposit))
            .route("/wallets/balances", get(balances))
            .route("/markets", get(markets))
            .route("/markets/{pair}/orderbook", get(book_top))
            .route("/orders", post(place))
            .route("/orders/{id}", delete(cancel))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind(opts.bind).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let duration = opts.duration;
        let server = tokio::spawn(async move {
            let (over, over_rx) = oneshot::channel::<()>();
            let shutdown = async move {
                tokio::select! {
                    _ = stopped => {}
                    () = tokio::time::sleep(duration) => {}
                }
                let _ = over.send(());
            };
            let serve = axum::serve(listener, app).with_graceful_shutdown(shutdown);
            let grace = async move {
                let _ = over_rx.await;
                tokio::time::sleep(STOP_GRACE).await;
            };
            tokio::select! {
                served = serve => served,
                () = grace => Ok(()),
            }
        });
        Ok(OrdersFloor {
            addr,
            server,
            stop: Some(stop),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until the duration is over (or [`Self::stop`]).
    pub async fn wait(mut self) -> std::io::Result<()> {
        let server = &mut self.server;
        server.await.map_err(std::io::Error::other)?
    }

    /// Stops serving (open connections finish their request).
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.wait().await
    }
}

struct Floor {
    log: Log,
    users: RwLock<Users>,
    /// Open orders: id → owner.
    open: Mutex<HashMap<u64, u32>>,
    next_order: AtomicU64,
    filled: AtomicU64,
}

#[derive(Default)]
struct Users {
    by_email: HashMap<String, u32>,
    by_token: HashMap<String, u32>,
    token_of: HashMap<u32, String>,
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message}});
    (status, Json(body)).into_response()
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "validation_error", message)
}

fn unauthorized() -> Response {
    error(StatusCode::UNAUTHORIZED, "unauthorized", "bad token")
}

/// The caller's user, from `Authorization: Bearer TOKEN`.
fn caller(floor: &Floor, headers: &HeaderMap) -> Option<u32> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let users = floor.users.read().unwrap_or_else(|e| e.into_inner());
    token.and_then(|t| users.by_token.get(t).copied())
}

#[derive(Deserialize)]
struct Credentials {
    email: String,
    password: String,
}

fn valid_credentials(c: &Credentials) -> bool {
    (3..=254).contains(&c.email.len()) && (8..=128).contains(&c.password.len())
}

async fn register(State(floor): State<Arc<Floor>>, Json(c): Json<Credentials>) -> Response {
    if !valid_credentials(&c) {
        return bad_request("bad email or password");
    }
    let mut users = floor.users.write().unwrap_or_else(|e| e.into_inner());
    if users.by_email.len() >= MAX_USERS {
        return error(StatusCode::SERVICE_UNAVAILABLE, "full", "too many users");
    }
    if users.by_email.contains_key(&c.email) {
        return error(StatusCode::CONFLICT, "conflict", "email taken");
    }
    let id = users.by_email.len() as u32 + 1;
    users.by_email.insert(c.email, id);
    (StatusCode::CREATED, Json(json!({"user_id": id}))).into_response()
}

async fn login(State(floor): State<Arc<Floor>>, Json(c): Json<Credentials>) -> Response {
    let mut users = floor.users.write().unwrap_or_else(|e| e.into_inner());
    let Some(&id) = users.by_email.get(&c.email) else {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "unknown user");
    };
    // One token per user, so logins cannot grow the table past the users.
    let token = match users.token_of.get(&id) {
        Some(token) => token.clone(),
        None => {
            let token = format!("{:032x}", rand::random::<u128>());
            users.by_token.insert(token.clone(), id);
            users.token_of.insert(id, token.clone());
            token
        }
    };
    Json(json!({"access_token": token, "token_type": "Bearer"})).into_response()
}

/// `answer` with `status` for a caller with a valid token, else 401.
fn for_caller(floor: &Floor, headers: &HeaderMap, status: StatusCode, answer: Value) -> Response {
    match caller(floor, headers) {
        Some(_) => (status, Json(answer)).into_response(),
        None => unauthorized(),
    }
}

async fn kyc_document(State(floor): State<Arc<Floor>>, headers: HeaderMap) -> Response {
    let answer = json!({"kyc_status": "PENDING"});
    for_caller(&floor, &headers, StatusCode::ACCEPTED, answer)
}

async fn kyc_status(State(floor): State<Arc<Floor>>, headers: HeaderMap) -> Response {
    let answer = json!({"kyc_status": "VERIFIED"});
    for_caller(&floor, &headers, StatusCode::OK, answer)
}

async fn deposit(State(floor): State<Arc<Floor>>, headers: HeaderMap) -> Response {
    let answer = json!({"status": "completed"});
    for_caller(&floor, &headers, StatusCode::CREATED, answer)
}

async fn balances(State(floor): State<Arc<Floor>>, headers: HeaderMap) -> Response {
    let answer = json!([{"asset": "USD", "available": "100000.00", "held": "0.00"}]);
    for_caller(&floor, &headers, StatusCode::OK, answer)
}

async fn markets() -> Response {
    Json(json!([{
        "pair": PAIR, "price_scale": PRICE_SCALE, "qty_scale": QTY_SCALE, "min_qty": MIN_QTY,
    }]))
    .into_response()
}

async fn book_top(Path(pair): Path<String>) -> Response {
    if pair != PAIR {
        return error(StatusCode::NOT_FOUND, "not_found", "unknown pair");
    }
    Json(json!({"pair": PAIR, "bids": [[BEST_BID, "1.00000000"]], "asks": [[BEST_ASK, "1.00000000"]]}))
        .into_response()
}

#[derive(Deserialize)]
struct NewOrder {
    client_order_id: String,
    pair: String,
    side: String,
    #[serde(rename = "type")]
    kind: String,
    qty: String,
    price: Option<String>,
    time_in_force: String,
}

/// A positive decimal with at most `scale` decimals (the pair's, as the
/// hub checks them).
fn decimal(text: &str, scale: u8) -> bool {
    text.len() <= MAX_FIELD && parse_scaled(text, scale).is_ok_and(|raw| raw > 0)
}

async fn place(
    State(floor): State<Arc<Floor>>,
    headers: HeaderMap,
    Json(order): Json<NewOrder>,
) -> Response {
    let Some(user) = caller(&floor, &headers) else {
        return unauthorized();
    };
    let limit = match (order.kind.as_str(), order.time_in_force.as_str()) {
        ("limit", "GTC" | "IOC") => true,
        ("market", "IOC") => false,
        _ => return bad_request("type/time_in_force"),
    };
    let price_ok = match (&order.price, limit) {
        (Some(p), true) => decimal(p, PRICE_SCALE),
        (None, false) => true,
        _ => false,
    };
    if order.pair != PAIR
        || !matches!(order.side.as_str(), "buy" | "sell")
        || !decimal(&order.qty, QTY_SCALE)
        || !price_ok
        || order.client_order_id.is_empty()
        || order.client_order_id.len() > MAX_FIELD
    {
        return bad_request("bad order");
    }
    let id = floor.next_order.fetch_add(1, Ordering::Relaxed);
    // Checked before the append and inserted after it (a cancel finds an
    // order only once it is durable), so requests in flight may pass the
    // bound by at most their number.
    if limit && floor.open.lock().unwrap_or_else(|e| e.into_inner()).len() >= MAX_OPEN_ORDERS {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "full",
            "too many open orders",
        );
    }
    let (status, filled) = if limit {
        ("open", "0")
    } else {
        ("filled", order.qty.as_str())
    };
    let order_id = format!("o-{id}");
    let record = json!({
        "op": "place", "order_id": order_id, "user": user,
        "client_order_id": order.client_order_id, "pair": order.pair, "side": order.side,
        "type": order.kind, "qty": order.qty, "price": order.price,
        "time_in_force": order.time_in_force, "status": status,
    });
    if let Err(e) = floor.log.append(&record).await {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            &e.to_string(),
        );
    }
    if limit {
        let mut open = floor.open.lock().unwrap_or_else(|e| e.into_inner());
        open.insert(id, user);
    } else {
        floor.filled.fetch_add(1, Ordering::Relaxed);
    }
    let answer = json!({
        "order_id": order_id, "client_order_id": order.client_order_id, "pair": PAIR,
        "status": status, "filled_qty": filled,
    });
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn cancel(
    State(floor): State<Arc<Floor>>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
) -> Response {
    let Some(user) = caller(&floor, &headers) else {
        return unauthorized();
    };
    let Some(id) = order_id
        .strip_prefix("o-")
        .and_then(|n| n.parse::<u64>().ok())
    else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such order");
    };
    {
        let mut open = floor.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.get(&id) != Some(&user) {
            return error(StatusCode::NOT_FOUND, "not_found", "no such open order");
        }
        open.remove(&id);
    }
    let record = json!({"op": "cancel", "order_id": order_id, "user": user});
    if let Err(e) = floor.log.append(&record).await {
        floor
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, user);
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            &e.to_string(),
        );
    }
    Json(json!({"order_id": order_id, "status": "cancelled"})).into_response()
}

async fn metrics(State(floor): State<Arc<Floor>>) -> String {
    format!(
        "nax_store_batches_total {}\nnax_store_syncs_total {}\nnax_domain_events_total{{type=\"order.filled\"}} {}\n",
        floor.log.records.load(Ordering::Relaxed),
        floor.log.syncs.load(Ordering::Relaxed),
        floor.filled.load(Ordering::Relaxed),
    )
}
