//! The integration tests of `worker`, one binary (`cargo test -p worker --test all`,
//! or `cargo nextest run -p worker`): a module per file of this folder, so a
//! test's name starts with its file's (`cargo test -p worker --test all -- <file>::`).
//! One binary links once and builds the shared helpers once; nextest still
//! runs each test in a process of its own.

mod audit_acceptance;
mod audit_chain;
mod audit_dedupe;
mod audit_fuzz;
mod binary;
mod common;
mod hubspot_client;
mod hubspot_fuzz;
#[path = "hubspot_support/mod.rs"]
mod hubspot_support;
mod hubspot_sync;
mod reconcile;
mod reconcile_cli;
