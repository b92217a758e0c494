//! The W3C trace context of the current span, for calls that leave the
//! process (the venue's GraphQL requests here, events in `api`), so the
//! other side joins the trace (docs/OPERATIONS.md, "Traces"). Without an
//! OTLP exporter the global propagator is a no-op and this is `None`.

use std::collections::HashMap;

use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The header and message-attribute name of the W3C trace context.
pub const TRACEPARENT: &str = "traceparent";

/// The current span's `traceparent`, when a trace is being exported.
pub fn current() -> Option<String> {
    let cx = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
    carrier.remove(TRACEPARENT)
}
