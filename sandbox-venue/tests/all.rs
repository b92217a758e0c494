//! The integration tests of `sandbox-venue`, one binary: a module per file of this
//! folder, so a test's name starts with its file's. Run them with
//! nextest, which runs each test in a process of its own (`cargo nextest
//! run -p sandbox-venue`, one file: `-E 'test(/^<file>::/)'`); some tests set
//! process-wide state (a logger, `SSL_CERT_FILE`) that plain `cargo test`
//! would share between them. One binary links once and builds the shared
//! helpers once. A new file needs its `mod` line here
//! (`scripts/ci-checks.sh` checks that every file has one).

mod auth_and_limits;
mod binary;
mod common;
mod faults;
mod queries;
mod schema_contract;
mod subscriptions;
mod trading;
