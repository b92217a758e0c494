//! The integration tests of `worker`, one binary: a module per file of this
//! folder, so a test's name starts with its file's. Run them with
//! nextest, which runs each test in a process of its own (`cargo nextest
//! run -p worker`, one file: `-E 'test(/^<file>::/)'`); some tests set
//! process-wide state (a logger, `SSL_CERT_FILE`) that plain `cargo test`
//! would share between them. One binary links once and builds the shared
//! helpers once. A new file needs its `mod` line here
//! (`scripts/ci-checks.sh` checks that every file has one).

mod audit_acceptance;
mod audit_chain;
mod audit_dedupe;
mod audit_fuzz;
mod binary;
mod binary_webhooks;
mod common;
mod hubspot_client;
mod hubspot_fuzz;
#[path = "hubspot_support/mod.rs"]
mod hubspot_support;
mod hubspot_sync;
mod reconcile;
mod reconcile_cli;
