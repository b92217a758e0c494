//! The hub's REST API as the orders scenario calls it: one pooled HTTP/1.1
//! client (reqwest, keep-alive), JSON in and out, every call timed from
//! sending the request to having read the whole answer.
//!
//! A call never fails on an HTTP status: any answer is an [`Answer`] (the
//! caller decides what it expected); only a call that got no complete
//! answer is a [`NoAnswer`], named by kind.

use reqwest::header::{HeaderValue, RETRY_AFTER};
use reqwest::Method;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Most idle keep-alive connections kept to the hub.
const MAX_IDLE_CONNECTIONS: usize = 1_024;

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The body as JSON (`Null` when empty or not JSON).
    pub body: Value,
    /// `Retry-After` in seconds, when given.
    pub retry_after: Option<u64>,
    /// Request sent → answer read.
    pub elapsed: Duration,
}

impl Answer {
    /// The docs/API.md error code (`{"error": {"code": ...}}`), if any.
    pub fn error_code(&self) -> Option<&str> {
        self.body.get("error")?.get("code")?.as_str()
    }

    /// A string field of the body.
    pub fn text(&self, field: &str) -> Option<&str> {
        self.body.get(field)?.as_str()
    }

    /// `STATUS code: message` for error reports.
    pub fn describe(&self) -> String {
        let message = self
            .body
            .get("error")
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        match self.error_code() {
            Some(code) => format!("{} {code}: {message}", self.status),
            None => format!("{}", self.status),
        }
    }
}

/// A call that got no complete answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no answer ({kind})")]
pub struct NoAnswer {
    /// `timeout`, `connect`, `body` or `request`.
    pub kind: &'static str,
    pub elapsed: Duration,
}

/// The hub's REST API at one base URL.
#[derive(Debug, Clone)]
pub struct RestClient {
    http: reqwest::Client,
    base: String,
}

impl RestClient {
    /// A client of `http://{authority}`; every call gives up after
    /// `timeout`.
    pub fn new(authority: &str, timeout: Duration) -> Result<RestClient, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(MAX_IDLE_CONNECTIONS)
            .tcp_nodelay(true)
            .build()?;
        Ok(RestClient {
            http,
            base: format!("http://{authority}"),
        })
    }

    /// The base URL, `http://HOST:PORT`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `method path` with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Answer, NoAnswer> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let started = Instant::now();
        let failed = |e: reqwest::Error| NoAnswer {
            kind: failure_kind(&e),
            elapsed: started.elapsed(),
        };
        let response = request.send().await.map_err(failed)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v: &HeaderValue| v.to_str().ok()?.trim().parse().ok());
        let bytes = response.bytes().await.map_err(|e| NoAnswer {
            kind: if e.is_timeout() { "timeout" } else { "body" },
            elapsed: started.elapsed(),
        })?;
        let elapsed = started.elapsed();
        Ok(Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            retry_after,
            elapsed,
        })
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Result<Answer, NoAnswer> {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<Answer, NoAnswer> {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Result<Answer, NoAnswer> {
        self.call(Method::DELETE, path, token, None).await
    }
}

fn failure_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_bodies_are_described() {
        let answer = Answer {
            status: 422,
            body: json!({"error": {"code": "insufficient_funds", "message": "need more", "request_id": "r"}}),
            retry_after: None,
            elapsed: Duration::ZERO,
        };
        assert_eq!(answer.error_code(), Some("insufficient_funds"));
        assert_eq!(answer.describe(), "422 insufficient_funds: need more");
        let plain = Answer {
            body: Value::Null,
            status: 502,
            ..answer
        };
        assert_eq!((plain.error_code(), plain.describe()), (None, "502".into()));
    }

    #[tokio::test]
    async fn no_listener_is_no_answer() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let client = RestClient::new(&format!("127.0.0.1:{port}"), Duration::from_secs(2)).unwrap();
        let err = client.get("/health", None).await.unwrap_err();
        assert_eq!(err.kind, "connect");
    }
}
