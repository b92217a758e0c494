//! What the accept loop does when `accept` fails for want of resources
//! (`EMFILE`, `ENFILE`, `ENOBUFS`, ...): pause with exponential backoff
//! instead of spinning, and log at most one line per interval with the
//! number of failures not logged.

use std::time::{Duration, Instant};

/// Pause after each consecutive accept failure: `min`, doubling up to
/// `max`; one success starts again from `min`.
#[derive(Debug, Clone)]
pub struct AcceptBackoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl AcceptBackoff {
    /// First pause.
    pub const MIN: Duration = Duration::from_millis(5);
    /// Longest pause.
    pub const MAX: Duration = Duration::from_secs(1);

    /// Pauses from `min` doubling to `max` (`max` is raised to `min` if
    /// below it).
    pub fn new(min: Duration, max: Duration) -> Self {
        let max = max.max(min);
        AcceptBackoff {
            min,
            max,
            next: min,
        }
    }

    /// The pause after one more consecutive failure.
    pub fn failure(&mut self) -> Duration {
        let pause = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        pause
    }

    /// An accept succeeded: the next failure pauses `min` again.
    pub fn success(&mut self) {
        self.next = self.min;
    }
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        Self::new(Self::MIN, Self::MAX)
    }
}

/// Logs at most one line per `every`; counts the failures in between.
#[derive(Debug, Clone)]
pub struct ErrorLog {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    /// One line per `every` at most.
    pub fn new(every: Duration) -> Self {
        ErrorLog {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// A failure at `now`: `Some(n)` when it is to be logged, `n` being the
    /// failures not logged since the previous line; `None` when it is one
    /// of those.
    pub fn failure(&mut self, now: Instant) -> Option<u64> {
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.every);
        if !due {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }

    /// A success: the failures not logged yet (to be reported once), and
    /// the next failure is logged at once.
    pub fn success(&mut self) -> u64 {
        self.last = None;
        std::mem::take(&mut self.suppressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_from_5_ms_to_1_s_and_reset_on_success() {
        let mut backoff = AcceptBackoff::default();
        let pauses: Vec<u64> = (0..10)
            .map(|_| backoff.failure().as_millis() as u64)
            .collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.success();
        assert_eq!(backoff.failure(), Duration::from_millis(5));
        assert_eq!(backoff.failure(), Duration::from_millis(10));
    }

    #[test]
    fn a_max_below_min_is_min() {
        let mut backoff = AcceptBackoff::new(Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(backoff.failure(), Duration::from_secs(2));
        assert_eq!(backoff.failure(), Duration::from_secs(2));
    }

    #[test]
    fn backoff_bounds_failures_per_second() {
        // A loop failing without pause is bounded by the backoff: in its
        // first second it fails at most 9 times (5+10+...+640 ms > 1 s).
        let mut backoff = AcceptBackoff::default();
        let mut elapsed = Duration::ZERO;
        let mut failures = 0;
        while elapsed < Duration::from_secs(1) {
            elapsed += backoff.failure();
            failures += 1;
        }
        assert!(failures <= 9, "{failures}");
        // Then one per second.
        let before = failures;
        while elapsed < Duration::from_secs(11) {
            elapsed += backoff.failure();
            failures += 1;
        }
        assert_eq!(failures - before, 10);
    }

    #[test]
    fn one_line_per_interval_with_the_count_of_the_rest() {
        let mut log = ErrorLog::new(Duration::from_secs(1));
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(log.failure(at(0)), Some(0));
        assert_eq!(log.failure(at(5)), None);
        assert_eq!(log.failure(at(999)), None);
        assert_eq!(log.failure(at(1000)), Some(2));
        assert_eq!(log.failure(at(1500)), None);
        assert_eq!(log.success(), 1);
        assert_eq!(log.success(), 0);
        // After a success the next failure is news again.
        assert_eq!(log.failure(at(1600)), Some(0));
    }
}
