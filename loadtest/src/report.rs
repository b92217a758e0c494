//! What a run leaves behind: the summary table printed at the end,
//! `result.json` (the [`RunResult`] as is) and `report.html` (the same
//! numbers plus latency-percentile and over-time plots, self-contained).

use crate::chart::{escape, format_value, Chart, Series};
use crate::result::RunResult;
use crate::stats::{Counter, Percentiles};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Colours of the latency classes and the over-time lines.
pub const COLORS: [&str; 4] = ["#1f77b4", "#ff7f0e", "#d62728", "#2ca02c"];

/// One `name value` line of the summary table.
pub fn row(out: &mut String, k: &str, v: String) {
    let _ = writeln!(out, "  {k:<26} {v}");
}

/// The summary table of a run, for a terminal.
pub fn summary_table(r: &RunResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "NA-X Stream load test: {} against {} ({:.1} s)",
        r.scenario, r.url, r.elapsed_s
    );
    match &r.orders {
        Some(orders) => crate::orders::report::summary_rows(&mut out, r, orders),
        None => websocket_rows(&mut out, r),
    }
    if !r.closes.is_empty() {
        row(&mut out, "closes by code", join_map(&r.closes));
    }
    if !r.errors.is_empty() {
        row(&mut out, "errors", join_map(&r.errors));
    }
    if !r.hub_counters.is_empty() {
        let hub: Vec<String> = r
            .hub_counters
            .iter()
            .filter(|(k, _)| !k.contains("_seconds_") && !k.contains("pair="))
            .map(|(k, v)| format!("{}: {v}", k.trim_start_matches("nax_")))
            .collect();
        row(&mut out, "hub counters (delta)", hub.join(", "));
    }
    for f in &r.failures {
        row(&mut out, "failure", f.clone());
    }
    for n in &r.notes {
        row(&mut out, "note", n.clone());
    }
    match &r.orders {
        Some(_) => {
            let errors: u64 = r.errors.values().sum();
            row(&mut out, "verdict", format!("{errors} errors"));
        }
        None => row(
            &mut out,
            "integrity",
            if r.integrity_ok {
                "OK".into()
            } else {
                "FAILED".into()
            },
        ),
    }
    out
}

/// The rows of the WebSocket scenarios.
fn websocket_rows(out: &mut String, r: &RunResult) {
    let c = &r.connections;
    row(
        out,
        "clients",
        format!(
            "{} of {} started, peak open {}, ramp {:.1} s",
            c.clients, c.target, c.peak_open, c.ramp_s
        ),
    );
    row(
        out,
        "connects",
        format!(
            "{} ok, {} failed, {} closed early",
            r.counter(Counter::Connected),
            r.counter(Counter::ConnectFailures),
            r.counter(Counter::Closes)
        ),
    );
    row(out, "connect time", ms_line(&r.connect_time_us));
    row(out, "subscribe round trip", ms_line(&r.subscribe_rtt_us));
    if let Some(s) = c.last_subscribed_s {
        row(out, "last subscribed at", format!("{s:.2} s"));
    }
    for (class, p) in &r.latency_us {
        row(out, &format!("latency {class}"), ms_line(p));
    }
    let t = &r.throughput;
    row(
        out,
        "delivered",
        format!(
            "{} msgs, {} B; {}/s avg ({}/s peak), {}B/s avg",
            t.messages,
            format_value(t.bytes as f64),
            format_value(t.msgs_per_s),
            format_value(t.peak_msgs_per_s),
            format_value(t.bytes_per_s)
        ),
    );
    row(
        out,
        "seq chain",
        format!(
            "{} checked, {} failures",
            r.counter(Counter::ChainChecked),
            r.counter(Counter::ChainFailures)
        ),
    );
    row(
        out,
        "checksums",
        format!(
            "{} checked on {} clients, {} failures, {} skipped",
            r.counter(Counter::ChecksumChecked),
            c.verify_clients,
            r.counter(Counter::ChecksumFailures),
            r.counter(Counter::ChecksumSkipped)
        ),
    );
    if r.scenario == "resume-storm" || r.counter(Counter::ResumeAttempts) > 0 {
        row(
            out,
            "resume",
            format!(
                "{} storms, {} resumes, {} channels recovered, {} not recovered",
                c.storms,
                r.counter(Counter::ResumeAttempts),
                r.counter(Counter::ChannelsRecovered),
                r.counter(Counter::ChannelsNotRecovered)
            ),
        );
    }
    if r.scenario == "slow-mix" || r.counter(Counter::SlowConsumerSnapshots) > 0 {
        row(
            out,
            "slow consumers",
            format!(
                "{} slow clients, {} slow_consumer snapshots, {} closes 4008",
                c.slow_clients,
                r.counter(Counter::SlowConsumerSnapshots),
                r.closes.get("4008").copied().unwrap_or(0)
            ),
        );
    }
}

/// Microseconds as milliseconds with two decimals.
pub fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

/// `p50 / p90 / p99 / p99.9 / max` in ms, and the sample count.
pub fn ms_line(p: &Percentiles) -> String {
    if p.count == 0 {
        return "no samples".into();
    }
    format!(
        "p50 {} | p90 {} | p99 {} | p99.9 {} | max {} ms  (n={})",
        ms(p.p50),
        ms(p.p90),
        ms(p.p99),
        ms(p.p999),
        ms(p.max),
        p.count
    )
}

/// `k: v, k: v, ...`.
pub fn join_map(m: &std::collections::BTreeMap<String, u64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes `result.json` and `report.html` into `dir` (created if
/// missing); returns their paths.
pub fn write(dir: &Path, r: &RunResult) -> std::io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let json = dir.join("result.json");
    let text = serde_json::to_string_pretty(r).map_err(std::io::Error::other)?;
    std::fs::write(&json, text + "\n")?;
    let html = dir.join("report.html");
    std::fs::write(&html, html_report(r))?;
    Ok((json, html))
}

/// The self-contained HTML report.
pub fn html_report(r: &RunResult) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>loadtest {} {}</title><style>\
         body{{font-family:sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:13px}}\
         .ok{{color:#080}}.bad{{color:#c00}}pre{{white-space:pre-wrap;font-size:12px}}</style></head><body>",
        escape(&r.scenario),
        escape(&r.url)
    );
    let errors: u64 = r.errors.values().sum();
    let verdict = match (&r.orders, r.integrity_ok) {
        (Some(_), _) if errors == 0 => "<span class=\"ok\">0 errors</span>".to_string(),
        (Some(_), _) => format!("<span class=\"bad\">{errors} errors</span>"),
        (None, true) => "<span class=\"ok\">integrity OK</span>".to_string(),
        (None, false) => "<span class=\"bad\">integrity FAILED</span>".to_string(),
    };
    let _ = write!(
        h,
        "<h1>NA-X Stream load test: {}</h1><p>{} &middot; {:.1} s &middot; {}</p>",
        escape(&r.scenario),
        escape(&r.url),
        r.elapsed_s,
        verdict
    );
    h.push_str("<h2>Summary</h2><pre>");
    h.push_str(&escape(&summary_table(r)));
    h.push_str("</pre>");
    h.push_str(&latency_chart(r).svg());
    match &r.orders {
        Some(orders) => h.push_str(&crate::orders::report::over_time_charts(orders)),
        None => h.push_str(&over_time_charts(r)),
    }
    h.push_str("<h2>Latency percentiles (ms)</h2><table><tr><th>class</th><th>n</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>");
    let mut rows: Vec<(String, &Percentiles)> = r
        .latency_us
        .iter()
        .map(|(k, p)| (format!("latency {k}"), p))
        .collect();
    rows.push(("connect time".into(), &r.connect_time_us));
    rows.push(("subscribe round trip".into(), &r.subscribe_rtt_us));
    for (name, p) in rows.into_iter().filter(|(_, p)| p.count > 0) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&name),
            p.count,
            ms(p.p50),
            ms(p.p90),
            ms(p.p99),
            ms(p.p999),
            ms(p.max)
        );
    }
    h.push_str("</table>");
    let mut maps = vec![
        ("Counters", &r.counters),
        ("Closes by code", &r.closes),
        ("Errors", &r.errors),
    ];
    if let Some(o) = &r.orders {
        maps.push(("HTTP status classes", &o.status_classes));
        maps.push(("HTTP statuses", &o.statuses));
        maps.push(("States of accepted orders", &o.order_states));
    }
    for (title, map) in maps {
        if map.is_empty() {
            continue;
        }
        let _ = write!(h, "<h2>{title}</h2><table>");
        for (k, v) in map {
            let _ = write!(h, "<tr><td>{}</td><td>{v}</td></tr>", escape(k));
        }
        h.push_str("</table>");
    }
    if !r.hub_counters.is_empty() {
        h.push_str("<h2>Hub counters (change during the run)</h2><table>");
        for (k, v) in &r.hub_counters {
            let _ = write!(h, "<tr><td>{}</td><td>{v}</td></tr>", escape(k));
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Options</h2><pre>");
    h.push_str(&escape(
        &serde_json::to_string_pretty(&r.options).unwrap_or_default(),
    ));
    h.push_str("</pre></body></html>\n");
    h
}

/// Latency by percentile, on a "nines" x axis (90 %, 99 %, 99.9 %, ...).
fn latency_chart(r: &RunResult) -> Chart {
    let nines = |q: f64| {
        if q >= 1.0 {
            5.0
        } else {
            (-(1.0 - q).log10()).min(5.0)
        }
    };
    let series = r
        .latency_spectrum_us
        .iter()
        .zip(COLORS)
        .map(|((class, points), color)| Series {
            name: class.clone(),
            color,
            points: points
                .iter()
                .map(|(q, us)| (nines(*q), *us as f64 / 1000.0))
                .collect(),
        })
        .collect();
    let title = match r.orders {
        Some(_) => "Request latency by percentile (sent → answer read)",
        None => "End-to-end latency by percentile",
    };
    Chart {
        title: title.into(),
        x_label: "percentile".into(),
        y_label: "latency (ms, log)".into(),
        series,
        x_ticks: ["0%", "90%", "99%", "99.9%", "99.99%", "max"]
            .iter()
            .enumerate()
            .map(|(i, l)| (i as f64, l.to_string()))
            .collect(),
        log_y: true,
    }
}

/// Throughput, open connections and live latency per second.
fn over_time_charts(r: &RunResult) -> String {
    let line = |name: &str, color, f: &dyn Fn(&crate::result::TimelinePoint) -> f64| Series {
        name: name.into(),
        color,
        points: r.timeline.iter().map(|p| (p.t, f(p))).collect(),
    };
    let charts = [
        Chart::over_time(
            "Delivered messages per second",
            "msg/s",
            vec![line("messages/s", COLORS[0], &|p| p.msgs_per_s)],
        ),
        Chart::over_time(
            "Delivered bytes per second",
            "MB/s",
            vec![line("MB/s", COLORS[3], &|p| p.bytes_per_s / 1e6)],
        ),
        Chart::over_time(
            "Open connections and failures",
            "connections",
            vec![
                line("open", COLORS[0], &|p| p.open as f64),
                line("failures (cumulative)", COLORS[2], &|p| p.failures as f64),
            ],
        ),
        Chart::over_time(
            "Live latency per second",
            "ms",
            vec![
                line("p50", COLORS[0], &|p| p.live_p50_us as f64 / 1000.0),
                line("p99", COLORS[1], &|p| p.live_p99_us as f64 / 1000.0),
                line("max", COLORS[2], &|p| p.live_max_us as f64 / 1000.0),
            ],
        ),
    ];
    charts.iter().map(Chart::svg).collect()
}
