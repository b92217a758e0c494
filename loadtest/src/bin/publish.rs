//! `publish`: POSTs hub-like `update` messages to an nchan publisher
//! location at a fixed rate, for `loadtest --peer nchan`. Each message has
//! `type`, `channel`, `epoch`, a `seq`/`prev_seq` chain stepping by one, a
//! `ts` (µs since the Unix epoch, taken just before the POST) and
//! bids/asks padded so the frame is about `--bytes` long.
//!
//! Usage: publish --url http://127.0.0.1:18380/pub?id=btc --rate 10 \
//!                --duration 20 [--bytes 200] [--channel book.BTC-USD]
//! Bounded: at most 600 s and 100,000 messages/s.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn main() {
    if let Err(e) = run() {
        eprintln!("publish: {e}");
        std::process::exit(1);
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let url = arg(&args, "--url").ok_or("--url http://HOST:PORT/PATH is required")?;
    let rate: f64 = arg(&args, "--rate")
        .unwrap_or_else(|| "10".into())
        .parse()
        .map_err(|_| "bad --rate")?;
    let duration: f64 = arg(&args, "--duration")
        .unwrap_or_else(|| "20".into())
        .parse()
        .map_err(|_| "bad --duration")?;
    let bytes: usize = arg(&args, "--bytes")
        .unwrap_or_else(|| "200".into())
        .parse()
        .map_err(|_| "bad --bytes")?;
    let channel = arg(&args, "--channel").unwrap_or_else(|| "book.BTC-USD".into());
    if !(rate > 0.0 && rate <= 100_000.0 && duration > 0.0 && duration <= 600.0) {
        return Err("--rate must be in (0, 100000], --duration in (0, 600]".into());
    }
    let rest = url.strip_prefix("http://").ok_or("--url must be http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut conn = Conn::open(authority)?;
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(duration);
    let (mut sent, mut failed) = (0u64, 0u64);
    let mut seq: u64 = 1;
    let mut prev: u64 = 0;
    loop {
        let due = start + Duration::from_secs_f64(sent as f64 / rate);
        let now = Instant::now();
        if due >= end || now >= end {
            break;
        }
        if due > now {
            std::thread::sleep(due - now);
        }
        let body = loadtest::peer::message(&channel, "nchan", seq, prev, bytes);
        match conn.post(authority, path, &body) {
            Ok(status) if (200..300).contains(&status) => {}
            Ok(status) => {
                failed += 1;
                if failed <= 3 {
                    eprintln!("publish: HTTP {status}");
                }
            }
            Err(e) => {
                // e.g. the server ended the keep-alive connection: reconnect
                // and send the same message again, so the chain stays whole.
                eprintln!("publish: {e}; reconnecting");
                conn = Conn::open(authority)?;
                match conn.post(authority, path, &body) {
                    Ok(status) if (200..300).contains(&status) => {}
                    _ => failed += 1,
                }
            }
        }
        sent += 1;
        prev = seq;
        seq += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "publish: {sent} messages in {secs:.1} s ({:.1}/s), {failed} failed",
        sent as f64 / secs
    );
    Ok(())
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn open(authority: &str) -> Result<Conn, String> {
        let stream =
            TcpStream::connect(authority).map_err(|e| format!("connect {authority}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        Ok(Conn {
            reader: BufReader::new(stream),
        })
    }

    /// POSTs `body`; returns the status after reading the whole answer.
    fn post(&mut self, authority: &str, path: &str, body: &str) -> Result<u16, String> {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nAccept: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let io = |e: std::io::Error| e.to_string();
        self.reader
            .get_mut()
            .write_all(req.as_bytes())
            .map_err(io)?;
        let mut line = String::new();
        self.reader.read_line(&mut line).map_err(io)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let mut length = 0usize;
        let mut chunked = false;
        loop {
            line.clear();
            if self.reader.read_line(&mut line).map_err(io)? == 0 {
                return Err("connection closed".into());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let lower = l.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line).map_err(io)?;
                let n = usize::from_str_radix(line.trim(), 16).map_err(|e| e.to_string())?;
                let mut buf = vec![0; n + 2];
                self.reader.read_exact(&mut buf).map_err(io)?;
                if n == 0 {
                    break;
                }
            }
        } else {
            let mut buf = vec![0; length];
            self.reader.read_exact(&mut buf).map_err(io)?;
        }
        Ok(status)
    }
}
