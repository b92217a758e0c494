//! Once a second while a run lasts: harvest the clients' stats into the
//! run's totals, append a timeline point, and redraw the progress bar.

use crate::result::TimelinePoint;
use crate::stats::{Counter, LatencyClass, Shard, Stats};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// What the sampler hands back when it stops.
pub struct Sampled {
    /// Sum of every harvest, the last one included.
    pub totals: Shard,
    pub timeline: Vec<TimelinePoint>,
}

/// The sampler task of a run; [`Sampler::finish`] stops it.
pub struct Sampler {
    done: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Sampled>,
}

impl Sampler {
    /// Starts sampling `stats`; the bar shows `duration_s` seconds and
    /// `target` connections, and is hidden when `show` is false or stderr
    /// is not a terminal.
    pub fn start(stats: Arc<Stats>, duration_s: u64, target: u64, show: bool) -> Sampler {
        let bar = progress_bar(duration_s, show);
        let (done, mut done_rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut sampled = Sampled {
                totals: stats.harvest(),
                timeline: Vec::new(),
            };
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            let mut last_t = stats.elapsed().as_secs_f64();
            loop {
                let finished = tokio::select! {
                    _ = &mut done_rx => true,
                    _ = tick.tick() => false,
                };
                let interval = stats.harvest();
                let t = stats.elapsed().as_secs_f64();
                sampled.totals.merge(&interval);
                let point = point(&stats, &interval, &sampled.totals, t, t - last_t);
                last_t = t;
                bar.set_position((t as u64).min(duration_s));
                bar.set_message(message(&point, target, &sampled.totals));
                if finished {
                    bar.finish_and_clear();
                    return sampled;
                }
                sampled.timeline.push(point);
            }
        });
        Sampler { done, task }
    }

    /// Takes a last harvest and returns everything sampled.
    pub async fn finish(self) -> Sampled {
        let _ = self.done.send(());
        self.task.await.expect("the sampler task does not panic")
    }
}

/// The run's progress bar over `duration_s` seconds; hidden when `show`
/// is false or stderr is not a terminal.
pub fn progress_bar(duration_s: u64, show: bool) -> ProgressBar {
    let bar = if show {
        ProgressBar::with_draw_target(Some(duration_s), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "[{elapsed_precise}] {bar:30.cyan/blue} {pos:>3}/{len}s {msg}",
        )
        .expect("the progress template is valid"),
    );
    bar
}

fn point(stats: &Stats, interval: &Shard, totals: &Shard, t: f64, dt: f64) -> TimelinePoint {
    let dt = dt.max(1e-3);
    let live = &interval.latency[LatencyClass::Live as usize];
    let q = |q| {
        if live.is_empty() {
            0
        } else {
            live.value_at_quantile(q)
        }
    };
    let c = &totals.counters;
    TimelinePoint {
        t,
        open: stats.open(),
        msgs_per_s: interval.counters.get(Counter::Messages) as f64 / dt,
        bytes_per_s: interval.counters.get(Counter::Bytes) as f64 / dt,
        live_p50_us: q(0.5),
        live_p99_us: q(0.99),
        live_max_us: if live.is_empty() { 0 } else { live.max() },
        failures: c.get(Counter::ConnectFailures) + c.get(Counter::Closes),
    }
}

fn message(p: &TimelinePoint, target: u64, totals: &Shard) -> String {
    let c = &totals.counters;
    let integrity = c.get(Counter::ChainFailures) + c.get(Counter::ChecksumFailures);
    format!(
        "open {}/{target}  {:.0} msg/s  {:.1} MB/s  p99 {:.2} ms  failures {}  integrity errors {integrity}",
        p.open,
        p.msgs_per_s,
        p.bytes_per_s / 1e6,
        p.live_p99_us as f64 / 1000.0,
        p.failures,
    )
}
