//! The integration tests of `feeds`, one binary: a module per file of this
//! folder, so a test's name starts with its file's. Run them with
//! nextest, which runs each test in a process of its own (`cargo nextest
//! run -p feeds`, one file: `-E 'test(/^<file>::/)'`); some tests set
//! process-wide state (a logger, `SSL_CERT_FILE`) that plain `cargo test`
//! would share between them. One binary links once and builds the shared
//! helpers once. A new file needs its `mod` line here
//! (`scripts/ci-checks.sh` checks that every file has one).

mod replay_errors;
mod sandbox_orders;
mod sandbox_soak;
mod sandbox_stress;
mod shift_adapter;
mod shift_common;
mod shift_hostile;
mod shift_resilience;
mod shift_traceparent;
