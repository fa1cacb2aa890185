//! Enforcing client quotas as Kafka's ClientQuotaManager and
//! ClientRequestQuotaManager do: the quota
//! of a request is the one set on the most specific entity that matches
//! its user and client id; every client that entity covers shares one
//! rate (a quota on `users/alice` is alice's, across her clients; a default
//! quota is each user's or client's own); a request that takes the rate
//! over the quota is answered with the time the client must wait, and its
//! connection reads nothing more until then. Controller mutations
//! (`controller_mutation_rate`, KIP-599) are measured by a token bucket
//! instead of a sampled rate; `mutation` decides what they may do.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::entity::{EntityType, QuotaEntity};
use super::rate::SampledRate;
use super::store::ClientQuotas;
use super::token_bucket::TokenBucket;

/// What a quota limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    /// Bytes produced per second (`producer_byte_rate`).
    Produce,
    /// Bytes fetched by consumers per second (`consumer_byte_rate`).
    Fetch,
    /// The broker's time spent on the client's requests, as a percentage
    /// of one thread (`request_percentage`).
    Request,
    /// Partitions created, added or deleted per second
    /// (`controller_mutation_rate`).
    ControllerMutation,
}

impl QuotaKind {
    fn key(self) -> &'static str {
        match self {
            QuotaKind::Produce => "producer_byte_rate",
            QuotaKind::Fetch => "consumer_byte_rate",
            QuotaKind::Request => "request_percentage",
            QuotaKind::ControllerMutation => "controller_mutation_rate",
        }
    }
}

/// The rate a quota is measured under: its kind, and the user and client
/// id it covers (empty when the matching entity does not name that part).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SensorKey {
    kind: QuotaKind,
    user: String,
    client_id: String,
}

/// The entities that may set a request's quota, most specific first
/// (Kafka's order), each with whether it names the user and the client id.
fn precedence(user: &str, client_id: &str) -> [(QuotaEntity, bool, bool); 8] {
    let entity = |u: Option<Option<&str>>, c: Option<Option<&str>>| {
        let mut map = BTreeMap::new();
        if let Some(u) = u {
            map.insert(EntityType::User, u.map(str::to_string));
        }
        if let Some(c) = c {
            map.insert(EntityType::ClientId, c.map(str::to_string));
        }
        (QuotaEntity(map), u.is_some(), c.is_some())
    };
    let (u, c) = (Some(Some(user)), Some(Some(client_id)));
    [
        entity(u, c),
        entity(u, Some(None)),
        entity(u, None),
        entity(Some(None), c),
        entity(Some(None), Some(None)),
        entity(Some(None), None),
        entity(None, c),
        entity(None, Some(None)),
    ]
}

/// The quota of `kind` for this user and client id, and the rate it is
/// measured under; `None` when no entity sets one.
pub fn resolve(
    quotas: &ClientQuotas,
    kind: QuotaKind,
    user: &str,
    client_id: &str,
) -> Option<(f64, SensorKey)> {
    precedence(user, client_id)
        .into_iter()
        .find_map(|(entity, names_user, names_client)| {
            let value = quotas.get(&entity)?.get(kind.key())?;
            Some((
                value.0,
                SensorKey {
                    kind,
                    user: if names_user {
                        user.to_string()
                    } else {
                        String::new()
                    },
                    client_id: if names_client {
                        client_id.to_string()
                    } else {
                        String::new()
                    },
                },
            ))
        })
}

/// A rate not used for this long is dropped.
const IDLE_MS: u64 = 3_600_000;
/// How often idle rates are looked for.
const SWEEP_MS: u64 = 60_000;

/// The measures in use, each with when it was last used.
struct Sensors {
    rates: HashMap<SensorKey, (SampledRate, u64)>,
    buckets: HashMap<SensorKey, (TokenBucket, u64)>,
    swept_ms: u64,
}

impl Sensors {
    /// Drops the measures nobody used for a while (looked for now and then).
    fn sweep(&mut self, now_ms: u64) {
        if now_ms.saturating_sub(self.swept_ms) < SWEEP_MS {
            return;
        }
        let fresh = |used: u64| now_ms.saturating_sub(used) < IDLE_MS;
        self.rates.retain(|_, (_, used)| fresh(*used));
        self.buckets.retain(|_, (_, used)| fresh(*used));
        self.swept_ms = now_ms;
    }
}

/// The broker's quota rates.
pub struct QuotaManager {
    samples: usize,
    window_ms: u64,
    sensors: Mutex<Sensors>,
    /// Rates are timed from here, on a clock that never steps back.
    started: std::time::Instant,
}

/// What recording a request's bytes decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttle {
    /// How long the client must wait; 0 when within its quota.
    pub ms: u64,
    /// The rate it was recorded under, if a quota applies.
    pub key: Option<SensorKey>,
}

impl QuotaManager {
    /// Rates of `samples` windows of `window_ms` (`quota.window.num`,
    /// `quota.window.size.seconds`).
    pub fn new(samples: usize, window_ms: u64) -> QuotaManager {
        QuotaManager {
            samples,
            window_ms,
            sensors: Mutex::new(Sensors {
                rates: HashMap::new(),
                buckets: HashMap::new(),
                swept_ms: 0,
            }),
            started: std::time::Instant::now(),
        }
    }

    /// Now, in milliseconds on the rates' clock.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Records `bytes` for the request's user and client id; how long it
    /// must be throttled.
    pub fn record(
        &self,
        quotas: &ClientQuotas,
        kind: QuotaKind,
        user: &str,
        client_id: &str,
        bytes: u64,
        now_ms: u64,
    ) -> Throttle {
        self.record_value(quotas, kind, user, client_id, bytes as f64, now_ms)
    }

    /// Records the broker's `busy` time on a request against the client's
    /// `request_percentage`, in hundredths of a second, so that their rate
    /// per second is the percentage of one thread the client keeps busy;
    /// how long it must be throttled.
    pub fn record_time(
        &self,
        quotas: &ClientQuotas,
        user: &str,
        client_id: &str,
        busy: std::time::Duration,
        now_ms: u64,
    ) -> Throttle {
        let units = busy.as_secs_f64() * 100.0;
        self.record_value(quotas, QuotaKind::Request, user, client_id, units, now_ms)
    }

    fn record_value(
        &self,
        quotas: &ClientQuotas,
        kind: QuotaKind,
        user: &str,
        client_id: &str,
        value: f64,
        now_ms: u64,
    ) -> Throttle {
        if quotas.is_empty() {
            return Throttle { ms: 0, key: None };
        }
        let Some((quota, key)) = resolve(quotas, kind, user, client_id) else {
            return Throttle { ms: 0, key: None };
        };
        let mut sensors = self.sensors.lock().unwrap_or_else(|e| e.into_inner());
        sensors.sweep(now_ms);
        let (samples, window) = (self.samples, self.window_ms);
        let (rate, used) = sensors
            .rates
            .entry(key.clone())
            .or_insert_with(|| (SampledRate::new(samples, window), now_ms));
        *used = now_ms;
        rate.record(value, now_ms);
        // Never longer than the whole window: the rate is back within it.
        let ms = rate
            .throttle_ms(quota, now_ms)
            .min(self.window_ms * self.samples as u64);
        Throttle { ms, key: Some(key) }
    }

    /// Runs `f` on the token bucket `key` names (a controller mutation
    /// quota's, `QuotaKind::ControllerMutation`), new and full if it is not
    /// in use; one client's steps on it do not interleave with another's.
    pub fn with_bucket<R>(
        &self,
        key: &SensorKey,
        now_ms: u64,
        f: impl FnOnce(&mut TokenBucket) -> R,
    ) -> R {
        let mut sensors = self.sensors.lock().unwrap_or_else(|e| e.into_inner());
        sensors.sweep(now_ms);
        let span = self.window_ms * self.samples as u64;
        let (bucket, used) = sensors
            .buckets
            .entry(key.clone())
            .or_insert_with(|| (TokenBucket::new(span), now_ms));
        *used = now_ms;
        f(bucket)
    }

    /// The most a client may take in one go under its quota of `kind`:
    /// what all but one window allow (Kafka bounds a consumer's fetch by
    /// it, so a fetch larger than the quota can ever admit cannot starve
    /// the consumer). `None` without a quota.
    pub fn max_in_window(
        &self,
        quotas: &ClientQuotas,
        kind: QuotaKind,
        user: &str,
        client_id: &str,
    ) -> Option<u64> {
        if quotas.is_empty() {
            return None;
        }
        let (quota, _) = resolve(quotas, kind, user, client_id)?;
        let windows = (self.samples as u64).saturating_sub(1) * self.window_ms;
        Some((quota * windows as f64 / 1000.0) as u64)
    }

    /// Takes back bytes recorded but not sent (a throttled fetch).
    pub fn unrecord(&self, key: &SensorKey, bytes: u64) {
        let mut sensors = self.sensors.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((rate, _)) = sensors.rates.get_mut(key) {
            rate.unrecord(bytes as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::entity::QuotaValue;

    /// An entity's parts, as (type, name or `None` for the default).
    type Parts<'a> = &'a [(&'a str, Option<&'a str>)];

    fn quotas(entries: &[(Parts, f64)]) -> ClientQuotas {
        let mut q = ClientQuotas::default();
        for (parts, value) in entries {
            let entity = QuotaEntity::parse(parts.iter().copied()).expect("valid");
            let changes =
                BTreeMap::from([("producer_byte_rate".to_string(), Some(QuotaValue(*value)))]);
            q.apply(&entity, &changes);
        }
        q
    }

    #[test]
    fn the_most_specific_entity_decides_and_names_the_shared_rate() {
        let q = quotas(&[
            (&[("user", Some("alice"))], 1.0),
            (&[("user", None)], 2.0),
            (&[("client-id", Some("app"))], 3.0),
            (&[("user", Some("alice")), ("client-id", Some("app"))], 4.0),
        ]);
        let got = |u: &str, c: &str| {
            resolve(&q, QuotaKind::Produce, u, c).map(|(v, k)| (v, k.user, k.client_id))
        };
        assert_eq!(
            got("alice", "app"),
            Some((4.0, "alice".into(), "app".into()))
        );
        assert_eq!(
            got("alice", "other"),
            Some((1.0, "alice".into(), String::new()))
        );
        // The default user quota is each user's own.
        assert_eq!(got("bob", "app"), Some((2.0, "bob".into(), String::new())));
        assert_eq!(resolve(&q, QuotaKind::Fetch, "alice", "app"), None);
        let only_client = quotas(&[(&[("client-id", Some("app"))], 3.0)]);
        let (_, key) = resolve(&only_client, QuotaKind::Produce, "bob", "app").expect("quota");
        assert_eq!((key.user.as_str(), key.client_id.as_str()), ("", "app"));
    }

    #[test]
    fn a_client_over_its_quota_is_throttled() {
        let q = quotas(&[(&[("user", Some("alice"))], 1000.0)]);
        let m = QuotaManager::new(11, 1000);
        let within = m.record(&q, QuotaKind::Produce, "alice", "a", 5_000, 0);
        assert_eq!(within.ms, 0);
        let over = m.record(&q, QuotaKind::Produce, "alice", "b", 10_000, 100);
        assert!(over.ms > 0, "{over:?}");
        assert!(over.ms <= 11_000);
        let free = m.record(&q, QuotaKind::Produce, "bob", "a", 1_000_000, 100);
        assert_eq!(free, Throttle { ms: 0, key: None });
        assert_eq!(
            m.max_in_window(&q, QuotaKind::Produce, "alice", "a"),
            Some(10_000)
        );
        assert_eq!(m.max_in_window(&q, QuotaKind::Fetch, "alice", "a"), None);
    }

    #[test]
    fn request_time_is_held_to_its_percentage_of_a_thread() {
        let mut q = ClientQuotas::default();
        let entity = QuotaEntity::parse([("client-id", Some("busy"))]).expect("valid");
        let changes = BTreeMap::from([("request_percentage".to_string(), Some(QuotaValue(10.0)))]);
        q.apply(&entity, &changes);
        // 10 % of a thread over 11 windows of 1 s: 1 s of work in the
        // first ten seconds is within it, 1.5 s is not.
        let m = QuotaManager::new(11, 1000);
        let ms = |d: u64| std::time::Duration::from_millis(d);
        assert_eq!(m.record_time(&q, "u", "busy", ms(1000), 0).ms, 0);
        let over = m.record_time(&q, "u", "busy", ms(500), 10);
        assert!(over.ms > 0, "{over:?}");
        assert_eq!(m.record_time(&q, "u", "idle", ms(5000), 10).ms, 0);
        assert_eq!(
            m.record(&q, QuotaKind::Produce, "u", "busy", 1 << 30, 10)
                .ms,
            0
        );
    }
}
