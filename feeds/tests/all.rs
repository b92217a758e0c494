//! The integration tests of `feeds`, one binary (`cargo test -p feeds --test all`,
//! or `cargo nextest run -p feeds`): a module per file of this folder, so a
//! test's name starts with its file's (`cargo test -p feeds --test all -- <file>::`).
//! One binary links once and builds the shared helpers once; nextest still
//! runs each test in a process of its own.

mod replay_errors;
mod sandbox_orders;
mod sandbox_soak;
mod shift_adapter;
mod shift_common;
mod shift_hostile;
mod shift_resilience;
mod shift_traceparent;
