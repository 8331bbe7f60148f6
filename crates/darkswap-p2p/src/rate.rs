//! Token buckets: the rate limits of the gossip flood guard and of the signaling server.

use web_time::Instant;

/// `rate` tokens per second, at most `burst` saved; one token per event.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self { tokens: burst, rate: f64::from(rate), burst, at: now }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now;
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket has refilled completely (its owner has been quiet), so that keeping
    /// it tells nothing a new one would not.
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }

    /// How long until a token is available (the tests state the rate with it).
    #[cfg(test)]
    fn wait(&mut self, now: Instant) -> std::time::Duration {
        self.refill(now);
        if self.tokens >= 1.0 || self.rate <= 0.0 {
            return std::time::Duration::ZERO;
        }
        std::time::Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 3, t0);
        assert!((0..3).all(|_| b.take(t0)));
        assert!(!b.take(t0), "burst spent");
        assert_eq!(b.wait(t0), Duration::from_millis(100));
        let t1 = t0 + Duration::from_millis(100);
        assert!(b.take(t1) && !b.take(t1), "one token per 100 ms at 10/s");
        assert!(b.is_full(t1 + Duration::from_secs(1)));
    }
}
