//! The integration tests of `loadtest`, one binary: a module per file of this
//! folder, so a test's name starts with its file's. Run them with
//! nextest, which runs each test in a process of its own (`cargo nextest
//! run -p loadtest`, one file: `-E 'test(/^<file>::/)'`); some tests set
//! process-wide state (a logger, `SSL_CERT_FILE`) that plain `cargo test`
//! would share between them. One binary links once and builds the shared
//! helpers once. A new file needs its `mod` line here
//! (`scripts/ci-checks.sh` checks that every file has one).

mod abuse;
mod common;
mod floor;
mod harness;
mod orders;
mod orders_floor;
