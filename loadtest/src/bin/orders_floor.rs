//! `orders-floor`: the thinnest server of the REST order flow, every order
//! acknowledged once durable, for stating the hub's order figures beside
//! what this machine allows (`loadtest::orders_floor`). Clients are
//! `loadtest --scenario orders --url ws://127.0.0.1:PORT/ws`.
//!
//! Usage: orders-floor --config hub.toml [--duration SECONDS]
//!        orders-floor --port 18383 --data-dir DIR [--duration SECONDS]
//! The TOML is the hub's: `port` and `data_dir` are read, the rest is
//! ignored, so `scripts/orders-ab.sh` runs it as it runs a hub.
//! Listens on 127.0.0.1 only; stops by itself after --duration seconds
//! (default and most: 3,600). Any other argument is an error.

use loadtest::orders_floor::{OrdersFloor, OrdersFloorOptions, MAX_SECONDS};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Deserialize)]
struct HubToml {
    port: Option<u16>,
    data_dir: Option<PathBuf>,
}

/// Largest TOML read.
const MAX_CONFIG_BYTES: u64 = 64 * 1024;

fn value(args: &[String], name: &str) -> Option<String> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

/// The flags, each followed by its value.
const FLAGS: [&str; 4] = ["--config", "--port", "--data-dir", "--duration"];

fn options(args: &[String]) -> Result<OrdersFloorOptions, String> {
    let mut rest = args.iter().skip(1);
    while let Some(flag) = rest.next() {
        if !FLAGS.contains(&flag.as_str()) || rest.next().is_none() {
            return Err(format!("unknown argument or missing value: {flag}"));
        }
    }
    let mut port = 18383;
    let mut data_dir = None;
    if let Some(path) = value(args, "--config") {
        let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_CONFIG_BYTES), &mut text)
            .map_err(|e| format!("{path}: {e}"))?;
        let toml: HubToml = toml::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
        port = toml.port.unwrap_or(port);
        data_dir = toml.data_dir;
    }
    if let Some(p) = value(args, "--port") {
        port = p.parse().map_err(|_| format!("bad --port {p}"))?;
    }
    if let Some(d) = value(args, "--data-dir") {
        data_dir = Some(d.into());
    }
    let seconds = match value(args, "--duration") {
        Some(s) => s.parse().map_err(|_| format!("bad --duration {s}"))?,
        None => MAX_SECONDS,
    };
    if seconds > MAX_SECONDS {
        return Err(format!("--duration is at most {MAX_SECONDS}"));
    }
    Ok(OrdersFloorOptions {
        bind: ([127, 0, 0, 1], port).into(),
        data_dir: data_dir.ok_or("--data-dir (or data_dir in --config) is required")?,
        duration: Duration::from_secs(seconds),
    })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opts = options(&args).unwrap_or_else(|e| {
        eprintln!("orders-floor: {e}");
        std::process::exit(2);
    });
    let floor = OrdersFloor::start(opts).await.unwrap_or_else(|e| {
        eprintln!("orders-floor: {e}");
        std::process::exit(1);
    });
    println!("listening on {}", floor.addr());
    if let Err(e) = floor.wait().await {
        eprintln!("orders-floor: {e}");
        std::process::exit(1);
    }
}
