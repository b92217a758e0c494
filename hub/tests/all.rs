//! The integration tests of `hub`, one binary: a module per file of this
//! folder, so a test's name starts with its file's. Run them with
//! nextest, which runs each test in a process of its own (`cargo nextest
//! run -p hub`, one file: `-E 'test(/^<file>::/)'`); some tests set
//! process-wide state (a logger, `SSL_CERT_FILE`) that plain `cargo test`
//! would share between them. One binary links once and builds the shared
//! helpers once. A new file needs its `mod` line here
//! (`scripts/ci-checks.sh` checks that every file has one).

mod archive_stop;
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
