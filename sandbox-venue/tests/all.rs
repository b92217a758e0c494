//! The integration tests of `sandbox-venue`, one binary (`cargo test -p sandbox-venue --test all`,
//! or `cargo nextest run -p sandbox-venue`): a module per file of this folder, so a
//! test's name starts with its file's (`cargo test -p sandbox-venue --test all -- <file>::`).
//! One binary links once and builds the shared helpers once; nextest still
//! runs each test in a process of its own.

mod auth_and_limits;
mod binary;
mod common;
mod faults;
mod queries;
mod schema_contract;
mod subscriptions;
mod trading;
