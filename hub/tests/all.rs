//! The integration tests of `hub`, one binary (`cargo test -p hub --test all`,
//! or `cargo nextest run -p hub`): a module per file of this folder, so a
//! test's name starts with its file's (`cargo test -p hub --test all -- <file>::`).
//! One binary links once and builds the shared helpers once; nextest still
//! runs each test in a process of its own.

mod asyncapi;
#[path = "upstream/book.rs"]
mod book;
mod candles;
mod candles_live;
mod common;
mod crash;
mod data_dir;
mod deadman;
mod deadman_faults;
mod deflate;
mod dynamodb_down;
mod edge;
mod events_sqs;
mod fanout;
#[path = "upstream/harness.rs"]
mod harness;
mod healthcheck;
mod hostile;
mod log_capture;
mod log_format;
mod log_secrets;
mod login_memory;
mod market_status;
mod metrics_documented;
mod nodes;
mod observability;
mod order_entry;
mod page;
mod private;
mod private_gap;
mod profile;
mod protocol;
mod races;
mod signals;
mod traces;
mod traces_sqs;
mod upstream;
mod venues;
mod wire_golden;
mod workers_in_process;
mod write_through;
