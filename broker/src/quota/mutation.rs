//! The controller mutation quota (`controller_mutation_rate`, KIP-599):
//! the partitions a client creates (CreateTopics), adds
//! (CreatePartitions) or deletes (DeleteTopics) per second, measured by a
//! token bucket per quota entity. Requests are judged topic by topic, in
//! Kafka's order: in the request versions that know the
//! THROTTLING_QUOTA_EXCEEDED error, a topic is refused while the client is
//! over its quota and otherwise goes ahead, even when it takes the client
//! over (a topic is never split); older versions always go ahead. Either
//! way the response carries the time until the client is back within its
//! quota, once the quota has acted on the request.

use kafka_protocol::messages::ApiKey;

use super::manager::{resolve, QuotaKind, QuotaManager, SensorKey};
use super::store::ClientQuotas;
use super::token_bucket::TokenBucket;

/// How a request's version lets the quota act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// CreateTopics v6+, CreatePartitions v3+, DeleteTopics v5+: a topic
    /// is refused while the client is over its quota.
    Strict,
    /// Older versions, whose clients know no such refusal: everything is
    /// done and only the throttle time tells the client.
    Permissive,
}

impl Mode {
    /// The mode of a request of `api` at `version` (requests of other APIs
    /// mutate no partitions and are never refused).
    pub fn of(api: ApiKey, version: i16) -> Mode {
        let strict_since = match api {
            ApiKey::CreateTopics => 6,
            ApiKey::CreatePartitions => 3,
            ApiKey::DeleteTopics => 5,
            _ => return Mode::Permissive,
        };
        if version >= strict_since {
            Mode::Strict
        } else {
            Mode::Permissive
        }
    }
}

/// What the quota made of one topic's mutations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Whether they may be made (and were counted).
    pub admitted: bool,
    /// How long the client must wait when the quota acted: it refused the
    /// topic, or the topic took the client over its quota (permissive);
    /// 0 otherwise.
    pub throttle_ms: u64,
}

/// Judges one topic's `partitions` mutations against the client's
/// `bucket` under `quota` at `now_ms`, and counts them if admitted.
pub fn step(
    bucket: &mut TokenBucket,
    quota: f64,
    mode: Mode,
    partitions: usize,
    now_ms: u64,
) -> Step {
    let count = partitions as f64;
    match mode {
        Mode::Strict => {
            // Only a client already over its quota is refused: the topic
            // that takes it over is made whole.
            let owed = bucket.throttle_ms(quota, now_ms);
            if owed > 0 {
                return Step {
                    admitted: false,
                    throttle_ms: owed,
                };
            }
            bucket.record(quota, count, now_ms);
            Step {
                admitted: true,
                throttle_ms: 0,
            }
        }
        Mode::Permissive => {
            bucket.record(quota, count, now_ms);
            Step {
                admitted: true,
                throttle_ms: bucket.throttle_ms(quota, now_ms),
            }
        }
    }
}

/// A topic refused because its client is over its controller mutation
/// quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the client's controller_mutation_rate quota is exceeded; nothing was done for this topic, \
     retry in {ms} ms"
)]
pub struct Throttled {
    /// How long until the client is back within its quota.
    pub ms: u64,
}

/// The quota a request is held to and the bucket that measures it.
struct Limit<'a> {
    manager: &'a QuotaManager,
    quota: f64,
    key: SensorKey,
}

/// One request's partition mutations against its client's quota (Kafka's
/// ControllerMutationQuota): each topic is admitted before it is changed
/// and given back if the change then fails, so that only mutations made
/// are counted.
pub struct MutationQuota<'a> {
    /// `None`: no quota applies, or the request only validates.
    limit: Option<Limit<'a>>,
    mode: Mode,
    /// Whether the quota acted on the request (refused a topic or was
    /// exceeded by one), which makes the response carry a throttle time.
    acted: bool,
}

impl<'a> MutationQuota<'a> {
    /// The quota of this user and client id, if one applies.
    pub fn new(
        manager: &'a QuotaManager,
        quotas: &ClientQuotas,
        user: &str,
        client_id: &str,
        mode: Mode,
    ) -> MutationQuota<'a> {
        let limit = if quotas.is_empty() {
            None
        } else {
            resolve(quotas, QuotaKind::ControllerMutation, user, client_id).map(|(quota, key)| {
                Limit {
                    manager,
                    quota,
                    key,
                }
            })
        };
        MutationQuota {
            limit,
            mode,
            acted: false,
        }
    }

    /// No quota: everything is admitted and nothing counted (a request that
    /// only validates, as Kafka counts only mutations made).
    pub fn unlimited() -> MutationQuota<'a> {
        MutationQuota {
            limit: None,
            mode: Mode::Permissive,
            acted: false,
        }
    }

    /// Admits (and counts) a topic's `partitions` mutations, or refuses
    /// the topic.
    pub fn admit(&mut self, partitions: usize) -> Result<(), Throttled> {
        let Some(limit) = &self.limit else {
            return Ok(());
        };
        let now = limit.manager.now_ms();
        let mode = self.mode;
        let decided = limit.manager.with_bucket(&limit.key, now, |bucket| {
            step(bucket, limit.quota, mode, partitions, now)
        });
        self.acted |= decided.throttle_ms > 0;
        if decided.admitted {
            Ok(())
        } else {
            Err(Throttled {
                ms: decided.throttle_ms,
            })
        }
    }

    /// Gives back the mutations of an admitted topic whose change failed.
    pub fn refund(&mut self, partitions: usize) {
        if let Some(limit) = &self.limit {
            let now = limit.manager.now_ms();
            limit.manager.with_bucket(&limit.key, now, |bucket| {
                bucket.record(limit.quota, -(partitions as f64), now)
            });
        }
    }

    /// The response's throttle time: once the quota has acted on the
    /// request, the time from now until the client is back within it.
    pub fn throttle_ms(&self) -> i32 {
        let Some(limit) = self.limit.as_ref().filter(|_| self.acted) else {
            return 0;
        };
        let now = limit.manager.now_ms();
        let ms = limit.manager.with_bucket(&limit.key, now, |bucket| {
            bucket.throttle_ms(limit.quota, now)
        });
        i32::try_from(ms).unwrap_or(i32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::entity::{QuotaEntity, QuotaValue};
    use std::collections::BTreeMap;

    /// (admitted, throttle ms) of each topic.
    type Verdicts = &'static [(bool, u64)];
    /// A request's topics, as (ms, partitions).
    type Topics = &'static [(u64, usize)];

    #[test]
    fn which_topics_go_ahead_and_how_long_the_client_waits() {
        use Mode::{Permissive, Strict};
        // Buckets of 5 windows of 1 s: a burst of five seconds' quota.
        // Each case: quota per second, mode, topics as (ms, partitions).
        let cases: &[(f64, Mode, Topics, Verdicts)] = &[
            // 50 tokens: the third topic takes the client over, the
            // fourth is refused until 10 owed tokens are earned back.
            (
                10.0,
                Strict,
                &[(0, 20), (0, 20), (0, 20), (0, 20)],
                &[(true, 0), (true, 0), (true, 0), (false, 1000)],
            ),
            // One topic larger than the burst still goes ahead whole.
            (10.0, Strict, &[(0, 80)], &[(true, 0)]),
            // Refused while owing; admitted once back at zero.
            (
                10.0,
                Strict,
                &[(0, 60), (500, 1), (1000, 1), (1000, 1)],
                &[(true, 0), (false, 500), (true, 0), (false, 100)],
            ),
            // Old versions: all done, the time owed once over.
            (
                10.0,
                Permissive,
                &[(0, 20), (0, 20), (0, 20), (0, 20)],
                &[(true, 0), (true, 0), (true, 1000), (true, 3000)],
            ),
            // A zero quota: an empty bucket, not yet below zero; then
            // never refilled.
            (
                0.0,
                Strict,
                &[(0, 1), (10_000, 1)],
                &[(true, 0), (false, 5000)],
            ),
        ];
        for (quota, mode, topics, want) in cases {
            let mut bucket = TokenBucket::new(5_000);
            let got: Vec<(bool, u64)> = topics
                .iter()
                .map(|&(at, partitions)| {
                    let s = step(&mut bucket, *quota, *mode, partitions, at);
                    (s.admitted, s.throttle_ms)
                })
                .collect();
            assert_eq!(got, *want, "quota {quota}, {mode:?}, topics {topics:?}");
        }
    }

    #[test]
    fn versions_that_know_the_refusal_are_strict() {
        let cases = [
            (ApiKey::CreateTopics, 5, Mode::Permissive),
            (ApiKey::CreateTopics, 6, Mode::Strict),
            (ApiKey::CreatePartitions, 2, Mode::Permissive),
            (ApiKey::CreatePartitions, 3, Mode::Strict),
            (ApiKey::DeleteTopics, 4, Mode::Permissive),
            (ApiKey::DeleteTopics, 6, Mode::Strict),
            (ApiKey::Metadata, 12, Mode::Permissive),
        ];
        for (api, version, mode) in cases {
            assert_eq!(Mode::of(api, version), mode, "{api:?} v{version}");
        }
    }

    #[test]
    fn a_request_is_held_to_its_entitys_quota_and_pays_only_for_what_it_made() {
        let mut quotas = ClientQuotas::default();
        let entity = QuotaEntity::parse([("user", Some("alice")), ("client-id", Some("ops"))])
            .expect("valid");
        let rate = BTreeMap::from([(
            "controller_mutation_rate".to_string(),
            Some(QuotaValue(1.0)),
        )]);
        quotas.apply(&entity, &rate);
        // A burst of 5 tokens, earned back at 1 a second: the test's few
        // milliseconds do not matter.
        let manager = QuotaManager::new(5, 1000);
        let mut q = MutationQuota::new(&manager, &quotas, "alice", "ops", Mode::Strict);
        assert_eq!(q.admit(4), Ok(()));
        q.refund(4);
        assert_eq!(q.admit(5), Ok(()));
        assert_eq!(q.throttle_ms(), 0, "the quota has not acted yet");
        assert_eq!(q.admit(3), Ok(()));
        let refused = q.admit(1).expect_err("over the quota");
        assert!((2900..=3000).contains(&refused.ms), "{refused:?}");
        assert!((2900..=3000).contains(&q.throttle_ms()));

        let mut other = MutationQuota::new(&manager, &quotas, "alice", "cli", Mode::Strict);
        assert_eq!(other.admit(100), Ok(()));
        assert_eq!(other.admit(100), Ok(()));
        assert_eq!(other.throttle_ms(), 0);
        let mut checking = MutationQuota::unlimited();
        assert_eq!(checking.admit(100), Ok(()));
    }
}
