//! The hub under test: its `ws://` URL resolved to a socket address, and
//! its `GET /markets` list (the scales a verifying client parses prices and
//! quantities with), fetched with a minimal HTTP/1.0 client so the harness
//! needs no HTTP stack.

use orderbook::{MarketSpec, Qty};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest `GET /markets` answer accepted.
const MAX_RESPONSE_BYTES: u64 = 1 << 20;

/// Why the hub cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("--url {0:?}: expected ws://HOST[:PORT]/PATH (wss is not supported)")]
    BadUrl(String),
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, std::io::Error),
    #[error("GET /markets from {0}: {1}")]
    Markets(SocketAddr, String),
    #[error("GET /metrics from {0}: {1}")]
    Metrics(SocketAddr, String),
}

/// Resolves `HOST[:PORT]` (port 80 when none is given) to its first
/// address. On failure: the `HOST:PORT` looked up, and the look-up's error
/// (`None` when it found no address).
pub async fn resolve_authority(
    authority: &str,
) -> Result<SocketAddr, (String, Option<std::io::Error>)> {
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let found = match tokio::net::lookup_host(&with_port).await {
        Ok(mut addrs) => addrs.next().ok_or(None),
        Err(e) => Err(Some(e)),
    };
    found.map_err(|e| (with_port, e))
}

/// Where the clients connect.
#[derive(Debug, Clone)]
pub struct HubTarget {
    /// The URL as given.
    pub url: String,
    /// `HOST:PORT` for the `Host` header.
    pub authority: String,
    pub addr: SocketAddr,
}

impl HubTarget {
    /// Parses `ws://HOST[:PORT]/PATH` and resolves HOST (first address).
    pub async fn resolve(url: &str) -> Result<HubTarget, TargetError> {
        let bad = || TargetError::BadUrl(url.to_string());
        let rest = url.strip_prefix("ws://").ok_or_else(bad)?;
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() {
            return Err(bad());
        }
        let addr = resolve_authority(authority)
            .await
            .map_err(|(with_port, e)| {
                let e = e.unwrap_or_else(|| std::io::ErrorKind::NotFound.into());
                TargetError::Resolve(with_port, e)
            })?;
        Ok(HubTarget {
            url: url.to_string(),
            authority: authority.to_string(),
            addr,
        })
    }

    /// `GET /markets`: pair symbol → spec with the hub's scales.
    pub async fn fetch_markets(&self) -> Result<HashMap<String, MarketSpec>, TargetError> {
        let fail = |e: String| TargetError::Markets(self.addr, e);
        let body = tokio::time::timeout(Duration::from_secs(5), self.get("/markets"))
            .await
            .map_err(|_| fail("timed out".into()))?
            .map_err(fail)?;
        parse_markets(&body).map_err(fail)
    }

    /// `GET /metrics`: every counter-like Prometheus sample (`*_total`,
    /// `*_sum`, `*_count`), keyed by name and labels as written.
    pub async fn fetch_counters(&self) -> Result<BTreeMap<String, f64>, TargetError> {
        let fail = |e: String| TargetError::Metrics(self.addr, e);
        let body = tokio::time::timeout(Duration::from_secs(5), self.get("/metrics"))
            .await
            .map_err(|_| fail("timed out".into()))?
            .map_err(fail)?;
        Ok(parse_counters(&body))
    }

    /// One HTTP/1.0 GET; the body of a 200 answer.
    async fn get(&self, path: &str) -> Result<String, String> {
        let mut stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| e.to_string())?;
        let request = format!(
            "GET {path} HTTP/1.0\r\nHost: {}\r\nAccept: application/json\r\n\r\n",
            self.authority
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        stream
            .take(MAX_RESPONSE_BYTES)
            .read_to_end(&mut raw)
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8(raw).map_err(|_| "answer is not UTF-8".to_string())?;
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| "answer has no header end".to_string())?;
        let status = head.lines().next().unwrap_or_default();
        if status.split_whitespace().nth(1) != Some("200") {
            return Err(format!("answer {status:?}"));
        }
        Ok(body.to_string())
    }
}

/// The counter-like samples of a Prometheus text exposition.
fn parse_counters(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(key, _)| {
            let name = key.split('{').next().unwrap_or_default();
            ["_total", "_sum", "_count"]
                .iter()
                .any(|s| name.ends_with(s))
        })
        .filter_map(|(key, value)| Some((key.to_string(), value.parse().ok()?)))
        .collect()
}

/// `after - before` for every sample of `after` that changed.
pub fn counter_deltas(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d != 0.0)
        .collect()
}

#[derive(Deserialize)]
struct MarketEntry {
    pair: String,
    price_scale: u8,
    qty_scale: u8,
}

/// Parses the `GET /markets` body (an array of `{pair, price_scale,
/// qty_scale, ...}`).
fn parse_markets(body: &str) -> Result<HashMap<String, MarketSpec>, String> {
    let entries: Vec<MarketEntry> =
        serde_json::from_str(body).map_err(|e| format!("unreadable /markets body: {e}"))?;
    entries
        .into_iter()
        .map(|m| {
            // min_qty does not matter for parsing; any positive value will do.
            MarketSpec::new(&m.pair, m.price_scale, m.qty_scale, Qty(1))
                .map(|spec| (m.pair.clone(), spec))
                .map_err(|e| format!("market {}: {e}", m.pair))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_resolve_or_are_refused() {
        let t = HubTarget::resolve("ws://127.0.0.1:18181/ws").await.unwrap();
        assert_eq!(t.addr, "127.0.0.1:18181".parse().unwrap());
        assert_eq!(t.authority, "127.0.0.1:18181");
        let t = HubTarget::resolve("ws://127.0.0.1/ws").await.unwrap();
        assert_eq!(t.addr.port(), 80);
        for bad in ["http://127.0.0.1/ws", "wss://127.0.0.1/ws", "ws:///ws"] {
            assert!(HubTarget::resolve(bad).await.is_err(), "{bad}");
        }
    }

    #[test]
    fn markets_body_parses() {
        let body = r#"[{"pair":"BTC-USD","base":"BTC","quote":"USD","price_scale":2,"qty_scale":6,"min_qty":"0.000010","status":"online"}]"#;
        let m = parse_markets(body).unwrap();
        assert_eq!(m["BTC-USD"].qty_scale, 6);
        assert!(parse_markets("{}").is_err());
    }

    #[test]
    fn counters_parse_and_subtract() {
        let before = parse_counters(
            "# TYPE x counter\nnax_messages_out_total 10\nnax_connections 3\n\
             nax_upstream_events_total{pair=\"BTC-USD\"} 5\nlat_seconds_sum 0.5\n",
        );
        assert_eq!(before.len(), 3, "{before:?}");
        let after = parse_counters(
            "nax_messages_out_total 25\nnax_upstream_events_total{pair=\"BTC-USD\"} 5\n\
             nax_slow_consumer_closes_total 2\n",
        );
        let d = counter_deltas(&before, &after);
        assert_eq!(d["nax_messages_out_total"], 15.0);
        assert_eq!(d["nax_slow_consumer_closes_total"], 2.0);
        assert!(!d.contains_key("nax_upstream_events_total{pair=\"BTC-USD\"}"));
    }
}
