//! The orders scenario's parts of the reports: its rows of the summary
//! table and its over-time charts (the rest of `report.html`, the latency
//! percentile chart and the tables, is shared with the other scenarios).

use super::summary::{OrderFlowResult, OrderTimelinePoint};
use crate::chart::{Chart, Series};
use crate::report::{join_map, ms_line, row, COLORS};
use crate::result::RunResult;

/// Label of each latency histogram in the summary table.
const LATENCY_LABELS: [(&str, &str); 4] = [
    ("post_orders", "POST /orders (all)"),
    ("post_orders_resting", "POST /orders resting"),
    ("post_orders_ioc", "POST /orders IOC"),
    ("delete_orders", "DELETE /orders/{id}"),
];

/// The summary-table rows of an orders run.
pub fn summary_rows(out: &mut String, r: &RunResult, o: &OrderFlowResult) {
    let rest_ms = r
        .options
        .pointer("/orders/rest_ms")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_default();
    row(
        out,
        "users",
        format!(
            "{} registered, KYC-verified and funded in {:.1} s",
            o.users, o.setup_s
        ),
    );
    row(
        out,
        "orders",
        format!(
            "{} qty {}; resting buys at {} (best bid {}) cancelled after {rest_ms} ms; \
             the others market IOC",
            o.pair, o.order_qty, o.rest_price, o.reference_price
        ),
    );
    row(
        out,
        "rate",
        format!(
            "target {}/s; sent {} ({} resting); accepted {:.1}/s avg, {:.1}/s peak",
            o.target_orders_per_s,
            o.sent,
            o.sent_resting,
            o.achieved_orders_per_s,
            o.peak_orders_per_s
        ),
    );
    row(
        out,
        "outcome",
        format!(
            "{} orders accepted, {} cancelled; {:.1} requests/s, ~{:.0} per user per minute",
            o.placed, o.cancelled, o.requests_per_s, o.requests_per_user_minute
        ),
    );
    for (name, label) in LATENCY_LABELS {
        if let Some(p) = r.latency_us.get(name) {
            row(out, label, ms_line(p));
        }
    }
    row(out, "status classes", join_map(&o.status_classes));
    row(out, "statuses", join_map(&o.statuses));
    if !o.order_states.is_empty() {
        row(out, "accepted orders by state", join_map(&o.order_states));
    }
}

/// Orders per second, `POST /orders` latency per second and errors over
/// time, as SVG charts.
pub fn over_time_charts(o: &OrderFlowResult) -> String {
    let line = |name: &str, color, f: &dyn Fn(&OrderTimelinePoint) -> f64| Series {
        name: name.into(),
        color,
        points: o.timeline.iter().map(|p| (p.t, f(p))).collect(),
    };
    let charts = [
        Chart::over_time(
            "Orders and requests per second",
            "per second",
            vec![
                line("orders accepted", COLORS[0], &|p| p.placed_per_s),
                line("orders cancelled", COLORS[3], &|p| p.cancelled_per_s),
                line("requests", COLORS[1], &|p| p.requests_per_s),
            ],
        ),
        Chart::over_time(
            "POST /orders latency per second",
            "ms",
            vec![
                line("p50", COLORS[0], &|p| p.place_p50_us as f64 / 1000.0),
                line("p99", COLORS[1], &|p| p.place_p99_us as f64 / 1000.0),
                line("max", COLORS[2], &|p| p.place_max_us as f64 / 1000.0),
            ],
        ),
        Chart::over_time(
            "Errors (cumulative)",
            "errors",
            vec![line("errors", COLORS[2], &|p| p.errors as f64)],
        ),
    ];
    charts.iter().map(Chart::svg).collect()
}
