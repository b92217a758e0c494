//! The Redis-backed rate limiter against a real `redis-server`: nodes
//! sharing one Redis enforce one budget, its decisions are the in-process
//! limiter's, and a Redis outage falls back to the in-process limiter and
//! recovers when Redis is back.
//!
//! Needs `redis-server` on 127.0.0.1:6379 (scripts/test.sh starts it) and
//! the `redis-server` binary; the tests FAIL when either is missing.

use crate::common;

use api::http::ratelimit::{ClientKey, Decision, RateLimiter};
use common::redis::{free_port, OwnServer, SHARED_REDIS};
use std::net::IpAddr;
use std::time::{Duration, Instant};

fn fresh_prefix() -> String {
    common::redis::fresh_prefix("rl")
}

fn client(n: u8) -> ClientKey {
    ClientKey::Ip(IpAddr::from([10, 0, 0, n]))
}

async fn connected(url: &str, prefix: &str, rpm: u32, burst: u32) -> RateLimiter {
    let limiter = RateLimiter::with_redis_prefix(rpm, burst, url, prefix).expect("redis url");
    assert!(
        limiter.connect_redis(Duration::from_secs(5)).await,
        "redis-server not reachable at {url}: run scripts/test.sh (it starts one)"
    );
    limiter
}

async fn decide(limiter: &RateLimiter, key: ClientKey) -> Decision {
    limiter.decide(key).await.expect("limiting enabled")
}

#[tokio::test]
async fn two_nodes_sharing_redis_enforce_one_budget() {
    let prefix = fresh_prefix();
    // One request a minute refills nothing during the test; bursts of 5.
    let a = connected(SHARED_REDIS, &prefix, 1, 5).await;
    let b = connected(SHARED_REDIS, &prefix, 1, 5).await;
    for n in 0..5u32 {
        let node = if n % 2 == 0 { &a } else { &b };
        let d = decide(node, client(1)).await;
        assert!(d.allowed, "request {n} is within the burst");
        assert_eq!(d.remaining, 4 - n);
    }
    for node in [&a, &b] {
        let refused = decide(node, client(1)).await;
        assert!(
            !refused.allowed,
            "the 6th request across both nodes is refused"
        );
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.retry_after_secs, 60);
    }
    // Another client has its own budget.
    assert!(decide(&b, client(2)).await.allowed);
    // Every decision came from Redis, and the key expires.
    assert_eq!(a.redis_fallbacks() + b.redis_fallbacks(), 0);
    assert_eq!(a.tracked_clients() + b.tracked_clients(), 0);
    let mut conn = redis::Client::open(SHARED_REDIS)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis reachable");
    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}v40a000001"))
        .query_async(&mut conn)
        .await
        .expect("PTTL");
    assert!(
        ttl_ms > 240_000 && ttl_ms <= 300_000,
        "the key expires when the allowance is full again (5 min), got {ttl_ms} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_on_two_nodes_never_overspend() {
    let prefix = fresh_prefix();
    let a = std::sync::Arc::new(connected(SHARED_REDIS, &prefix, 1, 10).await);
    let b = std::sync::Arc::new(connected(SHARED_REDIS, &prefix, 1, 10).await);
    let tasks: Vec<_> = (0..40)
        .map(|n| {
            let node = if n % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { decide(&node, client(3)).await.allowed })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        allowed += usize::from(task.await.expect("task"));
    }
    assert_eq!(a.redis_fallbacks() + b.redis_fallbacks(), 0);
    assert_eq!(
        allowed, 10,
        "exactly the burst, however the requests interleave"
    );
}

#[tokio::test]
async fn redis_decisions_match_the_in_process_limiter() {
    let prefix = fresh_prefix();
    let shared = connected(SHARED_REDIS, &prefix, 1, 4).await;
    let local = RateLimiter::new(1, 4);
    for n in 0..7 {
        let from_redis = decide(&shared, client(7)).await;
        let in_process = local.check(client(7)).expect("limiting enabled");
        assert_eq!(from_redis, in_process, "request {n}");
    }
    assert_eq!(shared.redis_fallbacks(), 0);
    // Limiting disabled: no decision, with or without Redis.
    let disabled = RateLimiter::with_redis_prefix(0, 4, SHARED_REDIS, &prefix).expect("url");
    assert_eq!(disabled.decide(client(7)).await, None);
}

/// A `redis-server` of the test's own, killed on drop.
#[tokio::test]
async fn a_redis_outage_falls_back_in_process_and_recovers() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let mut redis = OwnServer::redis(port);
    let limiter = connected(&url, "nax:rl:", 1, 3).await;
    let first = decide(&limiter, client(1)).await;
    assert!(first.allowed);
    assert_eq!(first.remaining, 2);
    assert_eq!(limiter.redis_fallbacks(), 0);
    assert_eq!(limiter.tracked_clients(), 0, "decided in Redis");

    redis.kill();
    // Every request still gets a decision, from this process's table.
    let started = Instant::now();
    for _ in 0..3 {
        assert!(decide(&limiter, client(1)).await.allowed);
    }
    assert!(!decide(&limiter, client(1)).await.allowed);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "fallback decisions are fast"
    );
    assert_eq!(limiter.redis_fallbacks(), 4);
    assert_eq!(limiter.tracked_clients(), 1);

    // Same port again: the connection manager reconnects and Redis (empty,
    // nothing was saved) decides again.
    let _redis = OwnServer::redis(port);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let before = limiter.redis_fallbacks();
        let d = decide(&limiter, client(2)).await;
        if limiter.redis_fallbacks() == before {
            assert!(d.allowed);
            assert_eq!(d.remaining, 2, "a fresh allowance in the new Redis");
            break;
        }
        assert!(Instant::now() < deadline, "redis decisions never resumed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resumed = decide(&limiter, client(1)).await;
    assert!(resumed.allowed, "client 1 is counted in Redis again");
    assert_eq!(resumed.remaining, 2);
}

#[tokio::test]
async fn a_node_starts_while_redis_is_down_and_uses_it_once_up() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let limiter = RateLimiter::with_redis_prefix(1, 3, &url, "nax:rl:").expect("url");
    assert!(decide(&limiter, client(1)).await.allowed);
    assert_eq!(limiter.redis_fallbacks(), 1);

    let _redis = OwnServer::redis(port);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let before = limiter.redis_fallbacks();
        let d = decide(&limiter, client(2)).await;
        if limiter.redis_fallbacks() == before {
            assert_eq!(d.remaining, 2, "decided in Redis");
            break;
        }
        assert!(Instant::now() < deadline, "redis decisions never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
