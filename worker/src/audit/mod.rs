//! The tamper-evident audit archive (docs/AUDIT.md): every event of the
//! audit queue is archived once, as a line of a hash chain per stream
//! (the acting user, or `system`), in gzip NDJSON objects in S3
//! ([`S3Sink`], with Object Lock and SSE-KMS) or under the data
//! directory ([`DirSink`]).
//!
//! - [`AuditArchive`]: the queue consumer; exactly once in the archive
//!   with at-least-once delivery, sink outages and a crash at any point
//!   (its state: checkpoints in the store, `audit/state.rs`). One
//!   archiver at a time.
//! - [`verify`]: checks every chain over a range of hours; [`export`]:
//!   one user's records, checked.
//! - The format and the chain formula: `audit/record.rs`.
//!
//! Metrics: `nax_audit_records_total`, `nax_audit_objects_total`,
//! `nax_audit_duplicates_dropped_total`, `nax_audit_put_failures_total`.

mod archive;
pub mod record;
mod s3;
mod sink;
pub mod state;
mod verify;

pub use archive::{AuditArchive, AuditSettings};
pub use s3::{S3Config, S3Sink};
pub use sink::{DirSink, Sink, SinkError};
pub use verify::{export, verify, ExportSummary, Problem, Report};
