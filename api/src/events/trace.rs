//! W3C trace context across processes (docs/OPERATIONS.md, "Traces"): an
//! event remembers the span it was made in (`traceparent`), so the outbox
//! relay's publish and a worker's handling join the request's trace, and
//! the SQS message carries it as a message attribute. With no OTLP
//! exporter configured the global propagator is a no-op: nothing is
//! recorded and nothing changes.

use std::collections::HashMap;

use tracing_opentelemetry::OpenTelemetrySpanExt as _;

pub use feeds::trace::{current, TRACEPARENT};

/// The target of spans made for traces alone (`store.commit`,
/// `outbox.publish`, `worker.handle`): the log layer never sees them, so a
/// line logged inside one does not carry its fields, and without an OTLP
/// exporter no layer wants them and they cost nothing (each was a span
/// the JSON log layer serialized per commit or per event;
/// docs/BENCHMARKS.md, "Spans for traces alone").
pub const TRACE_ONLY: &str = "nax::trace";

/// Makes `span` a child of the span `traceparent` names; a missing or
/// malformed value leaves `span` where it is.
pub fn join(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(value) = traceparent else { return };
    join_from(
        span,
        &HashMap::from([(TRACEPARENT.to_owned(), value.to_owned())]),
    );
}

/// [`join`] with the trace context read from `carrier` (e.g. a request's
/// headers: `traceparent` and `tracestate`).
pub fn join_from(span: &tracing::Span, carrier: &dyn opentelemetry::propagation::Extractor) {
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(carrier));
    let _ = span.set_parent(parent);
}
