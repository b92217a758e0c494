//! `floor`: the thinnest sender of a fan-out shape, for stating the hub's
//! ratio to the machine's floor (`loadtest::floor`). Clients are
//! `loadtest --peer nchan --url ws://127.0.0.1:PORT/`.
//!
//! Usage: floor --port 18480 --threads 2 --rate 10 --bytes 200 --duration 22
//! Prints `listening on ADDR` once bound and a summary at the end.
//! Bounded: at most 600 s, 100,000 messages/s, 20,000 connections.

use loadtest::floor::{Floor, FloorOptions};
use std::time::Duration;

fn main() {
    if let Err(e) = run() {
        eprintln!("floor: {e}");
        std::process::exit(1);
    }
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("bad {name}")),
        None => Ok(default),
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = arg(&args, "--port", 18480)?;
    let opts = FloorOptions {
        bind: ([127, 0, 0, 1], port).into(),
        threads: arg(&args, "--threads", 1)?,
        rate: arg(&args, "--rate", 10.0)?,
        bytes: arg(&args, "--bytes", 200)?,
        duration: Duration::from_secs_f64(arg(&args, "--duration", 20.0)?),
    };
    let threads = opts.threads;
    let floor = Floor::start(opts).map_err(|e| e.to_string())?;
    println!("listening on {}", floor.addr());
    let r = floor.wait();
    println!(
        "floor: {} messages, {} frames written, {} connections dropped, {threads} writer thread(s)",
        r.messages, r.writes, r.dropped_connections
    );
    Ok(())
}
