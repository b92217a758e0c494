//! The integration tests of `api`, one binary: a module per file of this
//! folder, so a test's name starts with its file's. Run them with
//! nextest, which runs each test in a process of its own (`cargo nextest
//! run -p api`, one file: `-E 'test(/^<file>::/)'`); some tests set
//! process-wide state (a logger, `SSL_CERT_FILE`) that plain `cargo test`
//! would share between them. One binary links once and builds the shared
//! helpers once. A new file needs its `mod` line here
//! (`scripts/ci-checks.sh` checks that every file has one).

mod at_rest;
mod auth;
mod backplane_gap;
mod banxa;
mod bcb;
mod cluster;
mod common;
mod custody_deposits;
mod deadman_switches;
mod eventbridge;
mod fiat;
mod fireblocks;
mod market_archive_suite;
mod outbox;
mod plumbing;
mod queue_age;
mod queue_sqs;
mod ratelimit_redis;
mod redis_tls;
mod resilience;
mod secrets;
mod sqs;
mod store_suite;
mod stripe;
mod sumsub;
mod trading;
mod users;
mod wallets;
mod webhooks;
