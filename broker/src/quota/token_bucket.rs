//! A token bucket, as Kafka measures the controller mutation quota
//! (KIP-599): tokens accrue at the quota's rate up to a burst of what the
//! quota allows over all of its windows (`quota.window.num` ×
//! `quota.window.size.seconds`); each mutation takes one, and the bucket
//! may go below zero so that a topic of any size fits. A client's rate is
//! over its quota while the bucket is below zero, and the time until it is
//! back at zero is the time it must wait. Unlike a sampled rate, the debt
//! of a burst is paid off steadily instead of all at once when the burst's
//! sample leaves the window.

/// A bucket of tokens, refilled at a quota's rate.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    /// The burst is the quota times this span.
    span_ms: u64,
    tokens: f64,
    /// When `tokens` was last brought up to date; `None` until first
    /// used, when the bucket starts full.
    updated_ms: Option<u64>,
}

impl TokenBucket {
    /// A full bucket whose burst is what the quota allows over `span_ms`.
    pub fn new(span_ms: u64) -> TokenBucket {
        TokenBucket {
            span_ms,
            tokens: 0.0,
            updated_ms: None,
        }
    }

    /// The most tokens the bucket holds under `quota` (per second). The
    /// quota is passed on every use, as it may change.
    fn burst(&self, quota: f64) -> f64 {
        quota * self.span_ms as f64 / 1000.0
    }

    fn refill(&mut self, quota: f64, now_ms: u64) {
        let burst = self.burst(quota);
        self.tokens = match self.updated_ms {
            None => burst,
            Some(then) => {
                let earned = quota * now_ms.saturating_sub(then) as f64 / 1000.0;
                (self.tokens + earned).min(burst)
            }
        };
        self.updated_ms = Some(self.updated_ms.map_or(now_ms, |then| then.max(now_ms)));
    }

    /// The tokens left at `now_ms` (negative: the quota is exceeded).
    pub fn tokens(&mut self, quota: f64, now_ms: u64) -> f64 {
        self.refill(quota, now_ms);
        self.tokens
    }

    /// Takes `value` tokens at `now_ms` (a negative value gives tokens
    /// back, never beyond the burst).
    pub fn record(&mut self, quota: f64, value: f64, now_ms: u64) {
        self.refill(quota, now_ms);
        self.tokens = (self.tokens - value).min(self.burst(quota));
    }

    /// How long until the bucket is back at zero: 0 unless it is below.
    /// Rounded up, so that a client that waits exactly this long finds the
    /// quota met. A quota of zero never refills; its wait is the whole
    /// span, after which the client may ask again.
    pub fn throttle_ms(&mut self, quota: f64, now_ms: u64) -> u64 {
        let tokens = self.tokens(quota, now_ms);
        if tokens >= 0.0 {
            0
        } else if quota <= 0.0 {
            self.span_ms.max(1)
        } else {
            (-tokens / quota * 1000.0).ceil() as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_starts_full_and_refills_at_the_quota_up_to_its_burst() {
        // 5 per second over 5 windows of 1 s: a burst of 25.
        let mut b = TokenBucket::new(5_000);
        assert_eq!(b.tokens(5.0, 1_000), 25.0);
        b.record(5.0, 40.0, 1_000);
        assert_eq!(b.tokens(5.0, 1_000), -15.0);
        // 15 tokens owed at 5 per second: 3 s.
        assert_eq!(b.throttle_ms(5.0, 1_000), 3_000);
        assert_eq!(b.throttle_ms(5.0, 2_000), 2_000);
        assert_eq!(b.throttle_ms(5.0, 4_000), 0);
        assert_eq!(b.tokens(5.0, 100_000), 25.0);
        // Given back, never beyond the burst.
        b.record(5.0, -10.0, 100_000);
        assert_eq!(b.tokens(5.0, 100_000), 25.0);
    }

    #[test]
    fn throttle_times_round_up_and_a_zero_quota_waits_the_span() {
        let mut b = TokenBucket::new(5_000);
        b.record(3.0, 15.5, 0);
        // 0.5 owed at 3 per second: 166.7 ms, rounded up.
        assert_eq!(b.throttle_ms(3.0, 0), 167);
        let mut zero = TokenBucket::new(5_000);
        assert_eq!(zero.throttle_ms(0.0, 0), 0);
        zero.record(0.0, 1.0, 0);
        assert_eq!(zero.throttle_ms(0.0, 60_000), 5_000);
    }
}
