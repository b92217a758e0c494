//! The integration tests of `loadtest`, one binary (`cargo test -p loadtest --test all`,
//! or `cargo nextest run -p loadtest`): a module per file of this folder, so a
//! test's name starts with its file's (`cargo test -p loadtest --test all -- <file>::`).
//! One binary links once and builds the shared helpers once; nextest still
//! runs each test in a process of its own.

mod abuse;
mod common;
mod floor;
mod harness;
mod orders;
mod orders_floor;
