//! Jittered exponential backoff between reconnect attempts: the base wait
//! doubles from `min` up to `max`, and each wait is a random 50–100 % of
//! it, so many adapters that lost the venue at once do not reconnect in
//! lockstep.

use rand::Rng as _;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            next: min,
        }
    }

    /// The wait before the next attempt; doubles the following one.
    pub fn next_wait(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        base.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }

    /// After a success: the next failure waits about `min` again.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_with_jitter() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(700));
        for base in [100, 200, 400, 700, 700] {
            let w = b.next_wait();
            assert!(w >= ms(base / 2) && w <= ms(base), "{w:?} for base {base}");
        }
        b.reset();
        assert!(b.next_wait() <= ms(100));
    }
}
