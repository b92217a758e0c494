//! The log layer and the spans for traces alone.

use super::{init_to, LogFormat};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// A writer into a buffer the test reads.
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A line logged inside a span of target `TRACE_ONLY` does not carry its
/// fields, and without an OTLP exporter that span is disabled (nothing
/// is made for it); a line inside any other span carries that span's
/// fields at the top level.
#[test]
fn spans_for_traces_alone_stay_out_of_the_log() {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let _telemetry = init_to(
        Some("info"),
        LogFormat::Json,
        None,
        "nax-test",
        move || Sink(sink.clone()),
        false,
    )
    .expect("the subscriber installs");
    let request = tracing::info_span!("request", request_id = "r-1");
    let traced = tracing::info_span!(
        target: api::events::trace::TRACE_ONLY,
        "store.commit",
        events = 7
    );
    assert!(!request.is_disabled(), "a logged span is made");
    assert!(traced.is_disabled(), "a span for traces alone is made");
    request.in_scope(|| {
        traced.in_scope(|| tracing::info!(target: "nax::test", "inside both"));
    });
    let text = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
    let line: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .find(|l| l["message"] == "inside both")
        .unwrap_or_else(|| panic!("the line is logged: {text}"));
    assert_eq!(line["request_id"], "r-1", "{line}");
    assert!(line.get("events").is_none(), "{line}");
}
