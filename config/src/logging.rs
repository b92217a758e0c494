//! The log set-up of `nax-hub` and `nax-worker`: the `NAX_LOG` filter (default `info`),
//! with the wire libraries' TRACE events always dropped.
//!
//! At TRACE, tungstenite logs every received frame, hyper and h2 every
//! header, the AWS SDK and reqwest request bodies: bearer tokens,
//! passwords and signatures would reach the log (docs/SECURITY.md). No
//! filter setting turns them back on; their DEBUG and above still pass.

use tracing::{Level, Metadata};
use tracing_subscriber::filter::{filter_fn, EnvFilter};
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

/// Installs the global subscriber: `filter` (an `EnvFilter` directive
/// string, `NAX_LOG`'s value) or `info`, then [`allowed`].
pub fn init(filter: Option<&str>) {
    let env = filter
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_filter(env)
                .with_filter(filter_fn(allowed)),
        )
        .init();
}
