//! The nodes' way to the shared moto's DynamoDB: a proxy on 127.0.0.1
//! that forwards one request at a time.
//!
//! Why: moto 5.2's `TransactWriteItems` is not isolated. It deep-copies
//! each table it touches, applies the items one by one without a lock and,
//! when a condition fails, puts the copy back, erasing a transaction that
//! committed meanwhile (two Python threads racing conditional transactions
//! on moto lose a committed one in a few rounds of 60). DynamoDB itself
//! serializes conflicting transactions; one request at a time gives moto
//! that isolation, so what these tests race is the API's check-then-act
//! between requests, which is what they are about.

/// Starts the proxy in front of `moto` (`http://127.0.0.1:PORT`); its URL.
pub async fn start(moto: &str) -> String {
    testkit::start_http_proxy(moto, true, testkit::Unchanged).await
}
