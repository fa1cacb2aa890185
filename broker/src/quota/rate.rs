//! A rate measured over sampled windows, as Kafka's quota sensors measure
//! it: `quota.window.num` samples of `quota.window.size.seconds` each; the
//! rate is what the retained samples hold divided by the time they span,
//! and that span counts as at least all but one full window, so a new
//! client's first burst is judged against the whole window rather than
//! its first millisecond.

use std::collections::VecDeque;

/// One sample window: when it began and what was recorded in it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    start_ms: u64,
    total: f64,
}

/// A windowed rate, per second.
#[derive(Debug, Clone, PartialEq)]
pub struct SampledRate {
    window_ms: u64,
    samples: usize,
    kept: VecDeque<Sample>,
}

impl SampledRate {
    /// `samples` windows of `window_ms` each.
    pub fn new(samples: usize, window_ms: u64) -> SampledRate {
        SampledRate {
            window_ms: window_ms.max(1),
            samples: samples.max(1),
            kept: VecDeque::new(),
        }
    }

    fn expire(&mut self, now_ms: u64) {
        let horizon = self.window_ms * self.samples as u64;
        while self
            .kept
            .front()
            .is_some_and(|s| now_ms.saturating_sub(s.start_ms) >= horizon)
        {
            self.kept.pop_front();
        }
    }

    /// Adds `value` at `now_ms`.
    pub fn record(&mut self, value: f64, now_ms: u64) {
        self.expire(now_ms);
        match self.kept.back_mut() {
            Some(last) if now_ms < last.start_ms + self.window_ms => last.total += value,
            _ => {
                self.kept.push_back(Sample {
                    start_ms: now_ms,
                    total: value,
                });
                while self.kept.len() > self.samples {
                    self.kept.pop_front();
                }
            }
        }
    }

    /// Removes `value` from the current window (a throttled fetch whose
    /// records are not sent).
    pub fn unrecord(&mut self, value: f64) {
        if let Some(last) = self.kept.back_mut() {
            last.total = (last.total - value).max(0.0);
        }
    }

    /// The time the rate is measured over, in milliseconds.
    pub fn span_ms(&mut self, now_ms: u64) -> u64 {
        self.expire(now_ms);
        let oldest = self.kept.front().map_or(now_ms, |s| s.start_ms);
        let elapsed = now_ms.saturating_sub(oldest);
        let floor = self.window_ms * (self.samples as u64 - 1);
        elapsed.max(floor).max(1)
    }

    /// The rate per second at `now_ms`.
    pub fn per_second(&mut self, now_ms: u64) -> f64 {
        let span = self.span_ms(now_ms);
        let total: f64 = self.kept.iter().map(|s| s.total).sum();
        total * 1000.0 / span as f64
    }

    /// How long a client over `quota` (per second) must wait for the rate
    /// to come back to it: (rate - quota) / quota of the measured span.
    pub fn throttle_ms(&mut self, quota: f64, now_ms: u64) -> u64 {
        let rate = self.per_second(now_ms);
        if quota <= 0.0 {
            return self.span_ms(now_ms);
        }
        if rate <= quota {
            return 0;
        }
        let span = self.span_ms(now_ms) as f64;
        ((rate - quota) / quota * span).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_rate_is_measured_over_all_but_one_window() {
        let mut r = SampledRate::new(11, 1000);
        r.record(10_000.0, 0);
        assert_eq!(r.span_ms(0), 10_000);
        assert_eq!(r.per_second(0), 1000.0);
    }

    #[test]
    fn old_samples_leave_the_window() {
        let mut r = SampledRate::new(3, 1000);
        r.record(3000.0, 0);
        r.record(3000.0, 2500);
        assert_eq!(r.per_second(2500), 6000.0 * 1000.0 / 2500.0);
        // At 3000 the first sample is three windows old and expires.
        assert_eq!(r.per_second(3000), 3000.0 * 1000.0 / 2000.0);
    }

    #[test]
    fn throttle_brings_the_rate_back_to_the_quota() {
        let mut r = SampledRate::new(11, 1000);
        for second in 0..11 {
            r.record(2000.0, second * 1000);
        }
        // 22 000 over 10 s: 2 200/s against a quota of 1 000/s.
        let wait = r.throttle_ms(1000.0, 10_000);
        assert_eq!(wait, 12_000);
        // Waiting that long with nothing more recorded meets the quota
        // (the rate is then measured over the longer span).
        let total = 22_000.0;
        assert!(total * 1000.0 / (10_000.0 + wait as f64) <= 1000.0);
        assert_eq!(r.throttle_ms(5000.0, 10_000), 0);
    }

    #[test]
    fn unrecord_takes_back_the_latest_value() {
        let mut r = SampledRate::new(2, 1000);
        r.record(500.0, 0);
        r.unrecord(200.0);
        assert_eq!(r.per_second(0), 300.0);
    }
}
