//! The abuse run's sampler: once a second, `GET /health` on a fresh
//! connection from the default source address (`127.0.0.1`, never used by
//! the workers), timed from the connect to the last byte of the answer,
//! and the hub's VmRSS read from `/proc/PID/status`; a last memory sample
//! once the deadline has passed.

use super::net::Target;
use super::{Rss, Sample, Tally};
use crate::sampler::progress_bar;
use crate::stats::micros_histogram;
use hdrhistogram::Histogram;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};

/// Longest wait for one `/health` answer (a slower one counts as failed).
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// What the sampler measured.
#[derive(Debug)]
pub struct Sampled {
    /// Answered `/health` requests, µs.
    pub health: Histogram<u64>,
    /// `/health` requests without a 200 answer.
    pub health_failures: u64,
    pub timeline: Vec<Sample>,
    /// `(VmRSS, VmHWM)` KiB before the workers started and at the end.
    pub first_memory: Option<(u64, u64)>,
    pub last_memory: Option<(u64, u64)>,
}

impl Sampled {
    /// The memory summary, when the hub's memory was read.
    pub fn rss(&self, budget_kib: Option<u64>) -> Option<Rss> {
        let (start, _) = self.first_memory?;
        let (end, hwm) = self.last_memory.unwrap_or((start, start));
        let max = self
            .timeline
            .iter()
            .filter_map(|s| s.rss_kib)
            .chain([start, end])
            .max()
            .unwrap_or(start);
        Some(Rss {
            start_kib: start,
            max_kib: max,
            end_kib: end,
            hwm_kib: hwm,
            budget_kib,
        })
    }
}

/// `(VmRSS, VmHWM)` of process `pid`, KiB.
pub fn read_memory(pid: u32) -> Result<(u64, u64), String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.kind().to_string())?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .ok_or_else(|| format!("no {name} line"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Samples until `deadline`, then takes a last memory sample. Answers of
/// `/health` are counted in `tally` as kind `health` (5xx included).
pub async fn run(
    target: Target,
    pid: Option<u32>,
    tally: Arc<Tally>,
    deadline: Instant,
    progress: bool,
) -> Sampled {
    let started = Instant::now();
    let memory = || pid.and_then(|p| read_memory(p).ok());
    let mut sampled = Sampled {
        health: micros_histogram(),
        health_failures: 0,
        timeline: Vec::new(),
        first_memory: memory(),
        last_memory: None,
    };
    let total = deadline.saturating_duration_since(started).as_secs();
    let bar = progress_bar(total, progress);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = tokio::time::sleep_until(deadline) => break,
        }
        let answer = target
            .request(None, "GET", "/health", None, HEALTH_TIMEOUT)
            .await;
        let health_us = match answer {
            Ok((status, elapsed)) => {
                tally.answer("health", status, &[200]);
                if status == 200 {
                    let us = (elapsed.as_micros() as u64).max(1);
                    sampled.health.saturating_record(us);
                    Some(us)
                } else {
                    sampled.health_failures += 1;
                    None
                }
            }
            Err(e) => {
                tally.outcome("health", &e, false);
                sampled.health_failures += 1;
                None
            }
        };
        let rss_kib = memory().map(|(rss, _)| rss);
        let t = started.elapsed().as_secs_f64();
        sampled.timeline.push(Sample {
            t,
            health_us,
            rss_kib,
        });
        bar.set_position(t as u64);
        bar.set_message(format!(
            "/health {} (max {:.1} ms)  RSS {}  5xx {}",
            health_us.map_or_else(
                || "FAILED".into(),
                |us| format!("{:.1} ms", us as f64 / 1e3)
            ),
            sampled.health.max() as f64 / 1e3,
            rss_kib.map_or_else(|| "-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
            tally.server_errors(),
        ));
        if Instant::now() >= deadline {
            break;
        }
    }
    bar.finish_and_clear();
    sampled.last_memory = memory();
    sampled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_memory_reads() {
        let (rss, hwm) = read_memory(std::process::id()).unwrap();
        assert!(rss > 0 && hwm >= rss, "{rss} {hwm}");
        assert!(read_memory(u32::MAX).is_err());
    }

    #[test]
    fn rss_summary_spans_every_sample() {
        let sample = |rss| Sample {
            t: 0.0,
            health_us: None,
            rss_kib: Some(rss),
        };
        let sampled = Sampled {
            health: micros_histogram(),
            health_failures: 0,
            timeline: vec![sample(150), sample(300), sample(200)],
            first_memory: Some((100, 100)),
            last_memory: Some((180, 320)),
        };
        let rss = sampled.rss(Some(400)).unwrap();
        assert_eq!(
            (rss.start_kib, rss.max_kib, rss.end_kib, rss.hwm_kib),
            (100, 300, 180, 320)
        );
        let none = Sampled {
            first_memory: None,
            ..sampled
        };
        assert!(none.rss(None).is_none());
    }
}
