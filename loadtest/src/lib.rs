//! The load harness of NA-X Stream: thousands of WebSocket clients against
//! one hub, measuring what a trading UI experiences (end-to-end latency,
//! delivered throughput, connect time, closes) and checking what it must
//! be able to trust (every `prev_seq` chain; the book checksum on a sample
//! of clients), under the scenarios of issue 4: `steady`, `connect-storm`,
//! `resume-storm` and `slow-mix`; and, in the `orders` scenario, the REST
//! order flow (per-request latency, achieved orders/s, status codes).
//!
//! `loadtest abuse` ([`abuse`]) is the hostile-input soak of issue 11:
//! logins, idle sockets, malformed frames and subscribe flips at once,
//! with `/health` timed and the hub's RSS read throughout.
//!
//! [`scenario::run`] is the whole harness as a library call (the binary and
//! the integration test both use it); [`report`] turns its [`RunResult`]
//! into the summary table, `result.json` and `report.html`.

pub mod abuse;
pub mod channel;
pub mod chart;
pub mod cli;
pub mod client;
pub mod fdlimit;
pub mod floor;
pub mod orders;
pub mod orders_floor;
pub mod peer;
pub mod report;
pub mod result;
pub mod sampler;
pub mod scenario;
pub mod stats;
pub mod target;
pub mod verify;
pub mod wire;

pub use cli::{Options, Scenario};
pub use result::RunResult;
pub use scenario::{run, HarnessError};
