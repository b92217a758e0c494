//! The log set-up of `nax-hub` and `nax-worker`: the `NAX_LOG` filter (default `info`),
//! with the wire libraries' TRACE events always dropped, written as JSON
//! lines or as text ([`LogFormat`], `--log-format` / `NAX_LOG_FORMAT`).
//!
//! A JSON line is one object: `timestamp` (RFC 3339, UTC), `level`,
//! `target`, the event's fields (`message` among them) and the fields of
//! every span it happened in (`request_id`, `conn_id`, `user_id`,
//! `trace_id` where they apply), all at the top level
//! (docs/OPERATIONS.md, "Logs").
//!
//! With an OTLP endpoint (`NAX_OTLP_ENDPOINT`), spans also go out as
//! OpenTelemetry traces over OTLP/HTTP, and JSON lines inside a traced
//! span carry its `trace_id` and `span_id` (docs/OPERATIONS.md, "Traces").
//! Spans of target [`api::events::trace::TRACE_ONLY`] go to traces only,
//! never to the log layer.
//!
//! Lines to standard output are written by a thread of their own
//! ([`init`], [`batched`]): a worker that logs appends its line to a
//! buffer and goes on, so a slow or stalled reader of the output (a pipe,
//! a log shipper) cannot hold the runtime's workers in `write`, and the
//! thread, woken by the first line into an empty buffer, writes what
//! arrived within [`FLUSH_EVERY`] in one `write`, with no wake-up per
//! line. While [`BUFFERED_BYTES`] of lines wait, further
//! lines are dropped and counted ([`LINES_DROPPED_TOTAL`]). Lines still
//! waiting when the process is killed are lost; an orderly stop writes
//! what the reader takes ([`Telemetry`]'s drop, which never waits longer
//! than [`WRITER_STOP`]).
//!
//! At TRACE, tungstenite logs every received frame, hyper and h2 every
//! header, the AWS SDK and reqwest request bodies: bearer tokens,
//! passwords and signatures would reach the log (docs/SECURITY.md). No
//! filter setting turns them back on; their DEBUG and above still pass.

mod batched;

use std::io::IsTerminal;

use tracing::subscriber::Interest;
use tracing::{Level, Metadata};
use tracing_subscriber::filter::{filter_fn, DynFilterFn, EnvFilter, FilterExt as _};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Crates whose TRACE output carries raw frames, headers or bodies.
const WIRE_CRATES: &[&str] = &[
    "tungstenite",
    "tokio_tungstenite",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http",
    "aws_sigv4",
    "redis",
];

/// Whether an event may be logged at all: everything but the wire crates'
/// TRACE level.
pub fn allowed(meta: &Metadata<'_>) -> bool {
    if *meta.level() != Level::TRACE {
        return true;
    }
    let krate = meta.target().split("::").next().unwrap_or_default();
    !WIRE_CRATES.contains(&krate)
}

/// How log lines are written.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (the default when standard output is not
    /// a terminal: files, pipes, container logs).
    Json,
    /// Human-readable text, coloured only on a terminal.
    Text,
}

impl LogFormat {
    /// `format`, or JSON unless standard output is a terminal.
    pub fn or_default(format: Option<LogFormat>) -> LogFormat {
        format.unwrap_or(if std::io::stdout().is_terminal() {
            LogFormat::Text
        } else {
            LogFormat::Json
        })
    }
}

pub use batched::{BUFFERED_BYTES, FLUSH_EVERY};

/// Counter: log lines dropped because [`BUFFERED_BYTES`] of lines were
/// waiting for standard output (set from [`record_dropped_lines`]).
pub const LINES_DROPPED_TOTAL: &str = "nax_log_lines_dropped_total";

/// The dropped-line count of the writer [`init`] installed.
static DROPPED: std::sync::OnceLock<batched::Batched> = std::sync::OnceLock::new();

/// Sets [`LINES_DROPPED_TOTAL`] to the lines dropped so far; call it
/// before rendering the metrics (nothing is dropped before [`init`]).
pub fn record_dropped_lines() {
    let dropped = DROPPED.get().map_or(0, |c| c.dropped_lines());
    metrics::counter!(LINES_DROPPED_TOTAL).absolute(dropped);
}

/// Longest wait, when [`Telemetry`] is dropped, for the writer thread
/// to write the lines it holds (it holds even when the reader of
/// standard output has stopped).
pub const WRITER_STOP: std::time::Duration = std::time::Duration::from_secs(2);

/// What [`init`] set up that needs an orderly end: the trace exporter,
/// whose last batch [`Telemetry::shutdown`] sends, and the writer thread
/// of standard output, which writes the lines it holds when this is
/// dropped.
#[must_use = "shut it down when the process stops, or the last spans are lost"]
pub struct Telemetry {
    tracer: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    _writer: Option<batched::Guard>,
}

impl Drop for Telemetry {
    /// Stops the writer thread from another thread, waiting at most
    /// [`WRITER_STOP`]: with a stalled reader of standard output the
    /// writer's own stop can block, and the process must still exit.
    fn drop(&mut self) {
        let Some(writer) = self._writer.take() else {
            return;
        };
        let (done, stopped) = std::sync::mpsc::channel::<()>();
        let stopping = std::thread::Builder::new()
            .name("nax-log-stop".into())
            .spawn(move || {
                drop(writer);
                let _ = done.send(());
            });
        if stopping.is_ok() {
            let _ = stopped.recv_timeout(WRITER_STOP);
        }
    }
}

impl Telemetry {
    /// Sends the spans not yet exported (bounded by the exporter's
    /// timeout) and stops the exporter.
    pub fn shutdown(&self) {
        if let Some(tracer) = &self.tracer {
            if let Err(e) = tracer.shutdown() {
                tracing::warn!(error = %e, "exporting the last spans failed");
            }
        }
    }
}

/// Installs the global subscriber: `filter` (an `EnvFilter` directive
/// string, `NAX_LOG`'s value) or `info`, then [`allowed`], writing
/// `format` (or [`LogFormat::or_default`]) to standard output from a
/// thread of its own (see the module doc); with
/// `otlp_endpoint` (a base URL such as `http://127.0.0.1:4318`), the same
/// spans as traces of `service` to `<endpoint>/v1/traces`, and the W3C
/// trace-context propagator for `traceparent` headers.
pub fn init(
    filter: Option<&str>,
    format: Option<LogFormat>,
    otlp_endpoint: Option<&str>,
    service: &'static str,
) -> anyhow::Result<Telemetry> {
    let ansi = std::io::stdout().is_terminal();
    let (writer, guard) = batched::Batched::start(std::io::stdout(), "nax-log")?;
    let _ = DROPPED.set(writer.clone());
    let mut telemetry = init_to(
        filter,
        LogFormat::or_default(format),
        otlp_endpoint,
        service,
        writer,
        ansi,
    )?;
    telemetry._writer = Some(guard);
    Ok(telemetry)
}

/// [`init`] with the lines written to `writer` instead of standard
/// output (`ansi`: colour escapes in text), e.g. into a test's capture.
pub fn init_to<W>(
    filter: Option<&str>,
    format: LogFormat,
    otlp_endpoint: Option<&str>,
    service: &'static str,
    writer: W,
    ansi: bool,
) -> anyhow::Result<Telemetry>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let env_filter = || {
        filter
            .and_then(|f| EnvFilter::try_new(f).ok())
            .unwrap_or_else(|| EnvFilter::new("info"))
    };
    let tracer = otlp_endpoint
        .map(|e| tracer_provider(e, service))
        .transpose()?;
    let log = layer(format, writer, ansi).with_filter(env_filter().and(logged()));
    let registry = tracing_subscriber::registry().with(log);
    match &tracer {
        Some(provider) => {
            use opentelemetry::trace::TracerProvider as _;
            opentelemetry::global::set_text_map_propagator(
                opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            );
            let otel = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer(service))
                .with_filter(env_filter().and(filter_fn(allowed)));
            registry.with(otel).try_init()?;
        }
        // No empty layer in the stack: its interest in every callsite
        // would make the spans the log layer refuses all the same.
        None => registry.try_init()?,
    }
    Ok(Telemetry {
        tracer,
        _writer: None,
    })
}

/// The log layer's own filter: [`allowed`], and no span for traces alone
/// ([`api::events::trace::TRACE_ONLY`]). It decides by the callsite, so a
/// refused callsite is never asked again and, when no other layer wants
/// it (no OTLP exporter), its spans are not made at all. Combine it with
/// the level filter in one filter (`EnvFilter::and`): a span two nested
/// filters refuse is still made.
pub fn logged<S>() -> impl tracing_subscriber::layer::Filter<S> {
    let takes =
        |meta: &Metadata<'_>| allowed(meta) && meta.target() != api::events::trace::TRACE_ONLY;
    DynFilterFn::new(move |meta, _| takes(meta)).with_callsite_filter(move |meta| {
        if takes(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    })
}

/// The OTLP/HTTP (JSON) trace exporter to `endpoint`, batching on its own
/// thread. `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` still apply
/// (the service name defaults to `service`).
fn tracer_provider(
    endpoint: &str,
    service: &'static str,
) -> anyhow::Result<opentelemetry_sdk::trace::SdkTracerProvider> {
    use opentelemetry_otlp::{Protocol, WithExportConfig as _};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .with_timeout(std::time::Duration::from_secs(5))
        .build()?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service);
    }
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// The formatting layer for `format`, writing to `writer`; `ansi`: colour
/// escapes in text (never in JSON).
pub fn layer<S, W>(format: LogFormat, writer: W, ansi: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Json => {
            let mut json = json_subscriber::JsonLayer::new(writer);
            json.with_timer("timestamp", tracing_subscriber::fmt::time::SystemTime)
                .with_level("level")
                .with_target("target")
                .with_flattened_event()
                .with_top_level_flattened_span_list();
            // The trace the line belongs to, when traces are exported
            // (the span's OpenTelemetry data exists only then).
            json.add_from_extension::<tracing_opentelemetry::OtelData, _, _>("trace_id", |otel| {
                otel.trace_id().map(|id| id.to_string())
            });
            json.add_from_extension::<tracing_opentelemetry::OtelData, _, _>("span_id", |otel| {
                otel.span_id().map(|id| id.to_string())
            });
            Box::new(json)
        }
        LogFormat::Text => Box::new(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(ansi),
        ),
    }
}

#[cfg(test)]
mod tests;
