//! Once a second while the order flow runs: take what the requests
//! recorded, add it to the run's totals, append a timeline point and
//! redraw the progress bar (the same bar as the WebSocket scenarios).

use super::record::{Interval, OrderRecorder};
use super::summary::OrderTimelinePoint;
use crate::sampler::progress_bar;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Shortest final interval that still makes a timeline point, seconds.
const MIN_LAST_INTERVAL_S: f64 = 0.2;

/// What the sampler hands back when it stops.
pub struct Sampled {
    /// Everything recorded, the last take included.
    pub totals: Interval,
    pub timeline: Vec<OrderTimelinePoint>,
}

/// The sampler task of an order flow; [`OrderSampler::finish`] stops it.
pub struct OrderSampler {
    done: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Sampled>,
}

impl OrderSampler {
    /// Starts sampling `recorder` now; the bar shows `duration_s` seconds.
    pub fn start(recorder: Arc<OrderRecorder>, duration_s: u64, show: bool) -> OrderSampler {
        let bar = progress_bar(duration_s, show);
        let (done, mut done_rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut sampled = Sampled {
                totals: recorder.take(),
                timeline: Vec::new(),
            };
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            let mut last_t = 0.0;
            loop {
                let finished = tokio::select! {
                    _ = &mut done_rx => true,
                    _ = tick.tick() => false,
                };
                let interval = recorder.take();
                let t = started.elapsed().as_secs_f64();
                sampled.totals.merge(&interval);
                let errors = sampled.totals.error_count();
                let dt = t - last_t;
                let point = OrderTimelinePoint::of(&interval, t, dt, errors);
                last_t = t;
                bar.set_position((t as u64).min(duration_s));
                bar.set_message(format!(
                    "{:.0} orders/s  {:.0} req/s  p99 {:.2} ms  placed {}  errors {errors}",
                    point.placed_per_s,
                    point.requests_per_s,
                    point.place_p99_us as f64 / 1000.0,
                    sampled.totals.placed,
                ));
                // The last, partial interval (cancels at the end, drain)
                // counts unless it is too short to give a rate.
                if !finished || dt >= MIN_LAST_INTERVAL_S {
                    sampled.timeline.push(point);
                }
                if finished {
                    bar.finish_and_clear();
                    return sampled;
                }
            }
        });
        OrderSampler { done, task }
    }

    /// Takes a last sample and returns everything sampled.
    pub async fn finish(self) -> Sampled {
        let _ = self.done.send(());
        self.task.await.expect("the sampler task does not panic")
    }
}
