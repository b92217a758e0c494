//! The integration tests of `api`, one binary (`cargo test -p api --test all`,
//! or `cargo nextest run -p api`): a module per file of this folder, so a
//! test's name starts with its file's (`cargo test -p api --test all -- <file>::`).
//! One binary links once and builds the shared helpers once; nextest still
//! runs each test in a process of its own.

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
