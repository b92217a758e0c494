//! The client frame-rate limit (`limits.frames_per_sec`,
//! `limits.frame_burst`): a token bucket per connection.

use std::time::Instant;

/// The client frame-rate limit: `rate` frames per second, bursts of `burst`.
pub(super) struct TokenBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl TokenBucket {
    pub(super) fn new(rate: u32, burst: u32) -> Self {
        TokenBucket {
            tokens: f64::from(burst),
            rate: f64::from(rate),
            burst: f64::from(burst),
            last: Instant::now(),
        }
    }

    pub(super) fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn token_bucket_allows_the_burst_then_the_rate() {
        let mut b = TokenBucket::new(20, 50);
        assert_eq!((0..60).filter(|_| b.take()).count(), 50);
        b.last -= Duration::from_millis(500);
        assert_eq!((0..60).filter(|_| b.take()).count(), 10);
    }
}
