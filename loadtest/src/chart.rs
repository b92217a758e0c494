//! A minimal line chart rendered as inline SVG: enough for the report's
//! latency-percentile and over-time plots without a plotting library.

use std::fmt::Write as _;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 42.0;
const BOTTOM: f64 = 46.0;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    /// A CSS colour.
    pub color: &'static str,
    pub points: Vec<(f64, f64)>,
}

/// A chart: lines over a linear x axis and a linear or log10 y axis.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Fixed x ticks `(x, label)`; automatic when empty.
    pub x_ticks: Vec<(f64, String)>,
    /// Plot y on a log10 scale (values ≤ 0 are clamped to the minimum).
    pub log_y: bool,
}

impl Chart {
    /// A chart over the seconds of a run (x axis "seconds", automatic
    /// ticks, linear y).
    pub fn over_time(title: &str, y_label: &str, series: Vec<Series>) -> Chart {
        Chart {
            title: title.into(),
            x_label: "seconds".into(),
            y_label: y_label.into(),
            series,
            ..Chart::default()
        }
    }

    /// The chart as an `<svg>` element.
    pub fn svg(&self) -> String {
        let points = || self.series.iter().flat_map(|s| s.points.iter().copied());
        let (mut x0, mut x1) = bounds(points().map(|p| p.0));
        if let (Some(first), Some(last)) = (self.x_ticks.first(), self.x_ticks.last()) {
            x0 = x0.min(first.0);
            x1 = x1.max(last.0);
        }
        let (y_min, y_max) = bounds(points().map(|p| p.1));
        let (y0, y1, y_ticks): (f64, f64, Vec<(f64, String)>) = if self.log_y {
            let lo = y_min.max(1e-9).log10().floor();
            let hi = y_max.max(1e-9).log10().ceil().max(lo + 1.0);
            let ticks = (lo as i32..=hi as i32)
                .map(|e| (f64::from(e), format_value(10f64.powi(e))))
                .collect();
            (lo, hi, ticks)
        } else {
            let (step, hi) = nice_step(y_max.max(0.0));
            let ticks = (0..=((hi / step).round() as usize))
                .map(|i| (i as f64 * step, format_value(i as f64 * step)))
                .collect();
            (0.0, hi, ticks)
        };
        let x_ticks = if self.x_ticks.is_empty() {
            // Time and counts read best from zero.
            x0 = x0.min(0.0);
            let (step, hi) = nice_step(x1);
            x1 = x1.max(hi);
            (0..=((hi / step).round() as usize))
                .map(|i| (i as f64 * step, format_value(i as f64 * step)))
                .filter(|(x, _)| *x >= x0)
                .collect()
        } else {
            self.x_ticks.clone()
        };
        let sx = |x: f64| LEFT + (x - x0) / (x1 - x0).max(1e-9) * (WIDTH - LEFT - RIGHT);
        let ty = |y: f64| if self.log_y { y.max(1e-9).log10() } else { y };
        let sy =
            |y: f64| HEIGHT - BOTTOM - (y - y0) / (y1 - y0).max(1e-9) * (HEIGHT - TOP - BOTTOM);

        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="11">"#
        );
        let _ = write!(
            svg,
            r#"<text x="{LEFT}" y="18" font-size="14" font-weight="bold">{}</text>"#,
            escape(&self.title)
        );
        for (y, label) in &y_ticks {
            let py = sy(*y);
            let _ = write!(
                svg,
                r##"<line x1="{LEFT}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                WIDTH - RIGHT,
                LEFT - 6.0,
                py + 4.0,
                escape(label)
            );
        }
        for (x, label) in &x_ticks {
            let px = sx(*x);
            let _ = write!(
                svg,
                r##"<line x1="{px:.1}" x2="{px:.1}" y1="{TOP}" y2="{}" stroke="#eee"/><text x="{px:.1}" y="{}" text-anchor="middle">{}</text>"##,
                HEIGHT - BOTTOM,
                HEIGHT - BOTTOM + 16.0,
                escape(label)
            );
        }
        let _ = write!(
            svg,
            r##"<rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="none" stroke="#888"/>"##,
            WIDTH - LEFT - RIGHT,
            HEIGHT - TOP - BOTTOM
        );
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text transform="translate(14 {}) rotate(-90)" text-anchor="middle">{}</text>"#,
            (LEFT + WIDTH - RIGHT) / 2.0,
            HEIGHT - 8.0,
            escape(&self.x_label),
            (TOP + HEIGHT - BOTTOM) / 2.0,
            escape(&self.y_label)
        );
        for (i, s) in self.series.iter().enumerate() {
            let path: Vec<String> = s
                .points
                .iter()
                .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(ty(*y))))
                .collect();
            let _ = write!(
                svg,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.8" points="{}"/>"#,
                s.color,
                path.join(" ")
            );
            // Legend: one row between the title and the plot.
            let lx = LEFT + i as f64 * 150.0;
            let _ = write!(
                svg,
                r#"<rect x="{lx}" y="{}" width="12" height="3" fill="{}"/><text x="{}" y="{}">{}</text>"#,
                TOP - 12.0,
                s.color,
                lx + 16.0,
                TOP - 8.0,
                escape(&s.name)
            );
        }
        svg.push_str("</svg>");
        svg
    }
}

/// Min and max of the values, `(0, 1)` when there are none.
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo.is_finite() && hi.is_finite() {
        (lo, hi.max(lo + 1e-9))
    } else {
        (0.0, 1.0)
    }
}

/// A round tick step for an axis from 0 to `max`, and the axis end (a
/// multiple of the step, ≥ max).
fn nice_step(max: f64) -> (f64, f64) {
    let max = if max > 0.0 { max } else { 1.0 };
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    (step, (max / step).ceil() * step)
}

/// A compact label: 1.5k, 2M, 0.25.
pub fn format_value(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{}G", trim(v / 1e9))
    } else if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Escapes text for SVG/HTML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_lines_ticks_and_legend() {
        let chart = Chart {
            title: "t <1>".into(),
            x_label: "s".into(),
            y_label: "msg/s".into(),
            series: vec![Series {
                name: "a".into(),
                color: "red",
                points: vec![(0.0, 1.0), (1.0, 3.0), (2.0, 2.0)],
            }],
            ..Chart::default()
        };
        let svg = chart.svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("<polyline") && svg.contains("t &lt;1&gt;"));
        let log = Chart {
            log_y: true,
            ..chart
        }
        .svg();
        assert!(log.contains(">10<"), "{log}");
        assert!(
            Chart::default().svg().contains("</svg>"),
            "empty chart renders"
        );
    }

    #[test]
    fn nice_steps_and_labels() {
        assert_eq!(nice_step(9.0), (2.0, 10.0));
        assert_eq!(nice_step(1200.0), (250.0, 1250.0));
        assert_eq!(format_value(12_500.0), "12.5k");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(3_000_000.0), "3M");
    }
}
