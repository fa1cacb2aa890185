//! The measured side of replication throttling (Kafka's
//! ReplicationQuotaManager): one windowed rate per side of replication on
//! this broker, over `replication.quota.window.num` windows of
//! `replication.quota.window.size.seconds`, as Kafka's quota sensors
//! measure; a side is over its quota while that rate is above
//! the side's `*.replication.throttled.rate`. Which partitions are
//! throttled, and when they wait, is `throttle`'s decision.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::metadata::image::ClusterImage;
use crate::metrics::SideCounters;
use crate::quota::rate::SampledRate;

use super::throttle::{Side, Throttles};

/// This broker's replication rates, and its throttles as last read from
/// the metadata.
#[derive(Debug)]
pub struct ReplicationQuotas {
    me: i32,
    leader: Mutex<SampledRate>,
    follower: Mutex<SampledRate>,
    /// The span of all windows: no wait is longer.
    span_ms: u64,
    /// Rates are timed from here, on a clock that never steps back.
    started: Instant,
    /// The throttles of the last image asked about: reading them from
    /// the metadata is done once per metadata change, not per fetch.
    cache: Mutex<Option<(Arc<ClusterImage>, Arc<Throttles>)>>,
    leader_counters: SideCounters,
    follower_counters: SideCounters,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ReplicationQuotas {
    /// Broker `me`'s rates over `samples` windows of `window_ms`, counted
    /// in these metrics.
    pub fn new(
        me: i32,
        samples: usize,
        window_ms: u64,
        leader_counters: SideCounters,
        follower_counters: SideCounters,
    ) -> ReplicationQuotas {
        ReplicationQuotas {
            me,
            leader: Mutex::new(SampledRate::new(samples, window_ms)),
            follower: Mutex::new(SampledRate::new(samples, window_ms)),
            span_ms: window_ms.max(1) * samples.max(1) as u64,
            started: Instant::now(),
            cache: Mutex::new(None),
            leader_counters,
            follower_counters,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn rate(&self, side: Side) -> MutexGuard<'_, SampledRate> {
        match side {
            Side::Leader => lock(&self.leader),
            Side::Follower => lock(&self.follower),
        }
    }

    fn counters(&self, side: Side) -> &SideCounters {
        match side {
            Side::Leader => &self.leader_counters,
            Side::Follower => &self.follower_counters,
        }
    }

    /// This broker's throttles in `image`.
    pub fn throttles(&self, image: &Arc<ClusterImage>) -> Arc<Throttles> {
        let mut cache = lock(&self.cache);
        if let Some((seen, throttles)) = cache.as_ref() {
            if Arc::ptr_eq(seen, image) {
                return throttles.clone();
            }
        }
        let throttles = Arc::new(Throttles::from_image(image, self.me));
        *cache = Some((image.clone(), throttles.clone()));
        throttles
    }

    /// Whether `side`'s rate is above `quota` (bytes per second) now;
    /// never without a quota.
    pub fn over_quota(&self, side: Side, quota: Option<f64>) -> bool {
        let Some(quota) = quota else { return false };
        let now = self.now_ms();
        self.rate(side).per_second(now) > quota
    }

    /// How long until `side`'s rate is back within `quota`: what a
    /// follower whose every partition waits sleeps before it asks again.
    pub fn wait_ms(&self, side: Side, quota: Option<f64>) -> u64 {
        let Some(quota) = quota else { return 0 };
        let now = self.now_ms();
        self.rate(side).throttle_ms(quota, now).min(self.span_ms)
    }

    /// Counts `bytes` of throttled partitions replicated on `side`.
    pub fn record(&self, side: Side, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let now = self.now_ms();
        self.rate(side).record(bytes as f64, now);
        self.counters(side).bytes.inc_by(bytes);
    }

    /// Counts `partitions` whose data waits on `side` for the rate.
    pub fn held_back(&self, side: Side, partitions: u64) {
        if partitions > 0 {
            self.counters(side).held_back.inc_by(partitions);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::throttle::LEADER_RATE;

    #[test]
    fn a_side_is_over_its_quota_once_its_window_holds_more() {
        let q = ReplicationQuotas::new(
            1,
            11,
            1000,
            SideCounters::default(),
            SideCounters::default(),
        );
        // A new rate is measured over ten windows: 10 000 bytes at once
        // is 1 000 per second.
        q.record(Side::Leader, 10_000);
        assert!(!q.over_quota(Side::Leader, Some(1000.0)));
        assert!(!q.over_quota(Side::Leader, None));
        q.record(Side::Leader, 1_000);
        assert!(q.over_quota(Side::Leader, Some(1000.0)));
        assert!(q.wait_ms(Side::Leader, Some(1000.0)) > 0);
        assert!(q.wait_ms(Side::Leader, Some(1000.0)) <= 11_000);
        // The sides are measured apart.
        assert!(!q.over_quota(Side::Follower, Some(1000.0)));
        assert_eq!(q.leader_counters.bytes.get(), 11_000);
        q.held_back(Side::Follower, 2);
        assert_eq!(q.follower_counters.held_back.get(), 2);
    }

    #[test]
    fn throttles_are_read_again_when_the_image_changes() {
        let q = ReplicationQuotas::new(
            1,
            11,
            1000,
            SideCounters::default(),
            SideCounters::default(),
        );
        let mut image = ClusterImage::default();
        let first = Arc::new(image.clone());
        assert_eq!(q.throttles(&first).rate(Side::Leader), None);
        Arc::make_mut(&mut image.broker_configs).insert(
            String::new(),
            [(LEADER_RATE.to_string(), "5".to_string())].into(),
        );
        let second = Arc::new(image);
        assert_eq!(q.throttles(&second).rate(Side::Leader), Some(5.0));
        assert!(Arc::ptr_eq(&q.throttles(&second), &q.throttles(&second)));
    }
}
