//! Memory of password hashing under login load, measured on the real
//! `nax-hub` binary (its VmRSS from `/proc/<pid>/status`): sequential
//! logins must not grow it, and concurrent logins must stay within the
//! hashing budget (`argon2_threads` × `HASH_MEMORY_BYTES`, see
//! `api::auth::hash_pool`) above what the process held at start.
//!
//! The hub runs with login and request limits raised so that every login
//! is hashed; the memory, not the throttle, is under test.

use crate::common;

use common::binary::{self, HubProcess};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PASSWORD: &str = "Correct-Horse-9-Battery";
const EMAIL: &str = "memory@example.com";
const MIB: u64 = 1024 * 1024;
/// Growth allowed over 300 sequential logins.
const SEQUENTIAL_GROWTH: u64 = 64 * MIB;
/// What the process may hold above its start and the hashing budget
/// under concurrent logins: connections, buffers, allocator slack.
const CONCURRENT_SLACK: u64 = 64 * MIB;

/// Resident memory of process `pid`, bytes (`VmRSS`).
fn rss(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the hub's /proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status");
    kib * 1024
}

/// Starts `nax-hub` on a fresh data directory, limits raised.
async fn spawn_hub() -> HubProcess {
    let port = testkit::free_port();
    let command = binary::command(
        &common::fresh_data_dir(),
        port,
        "[venue]\nevents_per_sec = 20\n[api]\nrequests_per_minute = 100000\nrequest_burst = 10000\n\
         login_successes_per_account_per_minute = 100000\nlogin_successes_per_address_per_minute = 100000\n",
        "warn",
    );
    HubProcess::start(command, port).await
}

async fn register(http: &reqwest::Client, hub: &HubProcess) {
    let r = http
        .post(format!("{}/auth/register", hub.base()))
        .json(&json!({"email": EMAIL, "password": PASSWORD}))
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
}

async fn login(http: &reqwest::Client, base: &str) {
    let r = http
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": EMAIL, "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

/// `n` logins from `clients` concurrent clients.
async fn concurrent_logins(base: &str, clients: usize, n: usize) {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (next, base) = (next.clone(), base.to_owned());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            while next.fetch_add(1, Ordering::Relaxed) < n as u64 {
                login(&http, &base).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
}

fn threads() -> u64 {
    api::ApiConfig::default().argon2_threads as u64
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_logins_do_not_grow_memory() {
    let hub = spawn_hub().await;
    let http = reqwest::Client::new();
    register(&http, &hub).await;
    // Warm up: as many logins at once as there are hashing threads, so
    // every thread has made its buffer.
    for _ in 0..2 {
        concurrent_logins(&hub.base(), threads() as usize, threads() as usize).await;
    }
    let before = rss(hub.pid());
    for _ in 0..300 {
        login(&http, &hub.base()).await;
    }
    let after = rss(hub.pid());
    eprintln!(
        "VmRSS before {} after 300 sequential logins {}",
        mib(before),
        mib(after)
    );
    assert!(
        after < before + SEQUENTIAL_GROWTH,
        "300 sequential logins grew VmRSS from {} to {} (allowed: {})",
        mib(before),
        mib(after),
        mib(SEQUENTIAL_GROWTH)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_stay_within_the_hash_budget() {
    let hub = spawn_hub().await;
    let http = reqwest::Client::new();
    let baseline = rss(hub.pid());
    let budget = threads() * api::auth::hash_pool::HASH_MEMORY_BYTES as u64;
    let ceiling = baseline + budget + CONCURRENT_SLACK;
    register(&http, &hub).await;

    // Sample VmRSS while 16 clients make 200 logins.
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pid = hub.pid();
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Acquire) {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                if let Some(kib) = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                {
                    peak.fetch_max(kib * 1024, Ordering::AcqRel);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    concurrent_logins(&hub.base(), 16, 200).await;
    done.store(true, Ordering::Release);
    sampler.await.unwrap();
    let after = rss(hub.pid());
    let peak = peak.load(Ordering::Acquire).max(after);
    eprintln!(
        "VmRSS at start {} peak {} after 200 logins by 16 clients {} (ceiling {}: start + {} threads x {} + {})",
        mib(baseline),
        mib(peak),
        mib(after),
        mib(ceiling),
        threads(),
        mib(api::auth::hash_pool::HASH_MEMORY_BYTES as u64),
        mib(CONCURRENT_SLACK)
    );
    assert!(
        peak < ceiling,
        "VmRSS peaked at {} over the ceiling {}",
        mib(peak),
        mib(ceiling)
    );
}
