//! The log cleaner: `log.cleaner.threads` loops, each with its share of
//! `log.cleaner.dedupe.buffer.size` and `log.cleaner.io.max.bytes.per.second`,
//! that pick the compacted log on this broker most in need of cleaning,
//! clean it (`log::cleaner` says how) and swap the result in; when no log
//! is due they sleep `log.cleaner.backoff.ms`. Leaders and followers clean
//! their own copies, as in Kafka. Choosing is [`choose`], a plain function.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clock::now_ms;
use crate::log::cleaner::{CleanStats, Cleanable, Throttle};
use crate::log::offset_map::OffsetMap;
use crate::node::Node;
use crate::partition::{Partition, PartitionError};

/// How long a log whose cleaning failed is left alone.
const FAILED_PAUSE_MS: i64 = 10 * 60 * 1000;

type Key = (String, i32);

/// What the threads share: the logs being cleaned now, and those whose
/// last cleaning failed, with when to try again.
#[derive(Default)]
struct Shared {
    busy: HashSet<Key>,
    failed: HashMap<Key, i64>,
}

/// A compacted log as the cleaner weighs it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// Where it stands.
    pub cleanable: Cleanable,
    /// Its `min.cleanable.dirty.ratio`.
    pub min_ratio: f64,
    /// Another thread is cleaning it, or its last cleaning failed lately.
    pub unavailable: bool,
}

/// The log to clean next: among those due and available, the ones overdue
/// by `max.compaction.lag.ms` first, then the dirtiest.
pub fn choose(candidates: &[Candidate]) -> Option<usize> {
    candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.unavailable && c.cleanable.due(c.min_ratio))
        .max_by(|(_, a), (_, b)| {
            (a.cleanable.overdue, a.cleanable.dirty_ratio())
                .partial_cmp(&(b.cleanable.overdue, b.cleanable.dirty_ratio()))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .map(|(i, _)| i)
}

/// Runs the cleaner threads, forever (unless `log.cleaner.enable=false`).
pub async fn run(node: Arc<Node>) {
    let settings = node.config.cleaner.clone();
    if !settings.enable || settings.threads == 0 {
        return;
    }
    let shared = Arc::new(Mutex::new(Shared::default()));
    let memory = settings.dedupe_buffer_size / settings.threads;
    let rate = settings.io_max_bytes_per_second / settings.threads as f64;
    let backoff = Duration::from_millis(settings.backoff_ms.max(1));
    let loops = (0..settings.threads).map(|_| {
        let node = node.clone();
        let shared = shared.clone();
        async move {
            let mut map = Some(OffsetMap::with_memory(memory));
            loop {
                let n = node.clone();
                let s = shared.clone();
                let mut m = map.take().unwrap_or_else(|| OffsetMap::with_memory(memory));
                let tasks = node.tasks.clone();
                let Ok((m, cleaned)) = tasks
                    .spawn_blocking(move || {
                        let cleaned = clean_next(&n, &s, &mut m, rate);
                        (m, cleaned)
                    })
                    .await
                else {
                    return;
                };
                map = Some(m);
                if !cleaned {
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    });
    futures_util::future::join_all(loops).await;
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Cleans the log most in need of it, if any; returns whether it did.
fn clean_next(node: &Node, shared: &Mutex<Shared>, map: &mut OffsetMap, rate: f64) -> bool {
    let now = now_ms();
    let counters = &node.metrics.cleaner;
    counters.last_run_ms.set(now);
    let p = {
        let mut s = lock(shared);
        s.failed.retain(|_, until| *until > now);
        let mut partitions: Vec<Arc<Partition>> = Vec::new();
        let mut candidates = Vec::new();
        for topic in node.topics.all() {
            for p in topic.local() {
                let Some((cleanable, min_ratio)) = p.cleanable(now) else {
                    continue;
                };
                let key = (p.topic.clone(), p.index);
                let unavailable = s.busy.contains(&key) || s.failed.contains_key(&key);
                candidates.push(Candidate {
                    cleanable,
                    min_ratio,
                    unavailable,
                });
                partitions.push(p.clone());
            }
        }
        let max_dirty = candidates
            .iter()
            .map(|c| c.cleanable.dirty_ratio())
            .fold(0.0, f64::max);
        counters
            .max_dirty_percent
            .set((max_dirty * 100.0).round() as i64);
        let Some(i) = choose(&candidates) else {
            return false;
        };
        let p = partitions.swap_remove(i);
        s.busy.insert((p.topic.clone(), p.index));
        p
    };
    let key = (p.topic.clone(), p.index);
    let started = Instant::now();
    let result = clean(&p, map, rate, now);
    let mut s = lock(shared);
    s.busy.remove(&key);
    match result {
        Ok(Some(stats)) => {
            counters.cleanings.inc();
            counters.bytes_cleaned.inc_by(stats.bytes_before);
            counters
                .bytes_reclaimed
                .inc_by(stats.bytes_before.saturating_sub(stats.bytes_after));
            counters.records_removed.inc_by(stats.records_removed);
            counters
                .map_bytes
                .set(i64::try_from(stats.map_bytes).unwrap_or(i64::MAX));
            tracing::info!(
                topic = %p.topic,
                partition = p.index,
                bytes_before = stats.bytes_before,
                bytes_after = stats.bytes_after,
                records_removed = stats.records_removed,
                keys = stats.keys,
                ms = started.elapsed().as_millis() as u64,
                "cleaned a compacted log"
            );
            true
        }
        Ok(None) => false,
        Err(e) => {
            counters.failures.inc();
            s.failed.insert(key, now + FAILED_PAUSE_MS);
            tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "cleaning failed; the log is left as it was and tried again later");
            false
        }
    }
}

/// Cleans one partition's log; `None` when nothing was due after all or
/// the log changed under the cleaning.
fn clean(
    p: &Partition,
    map: &mut OffsetMap,
    rate: f64,
    now: i64,
) -> Result<Option<CleanStats>, PartitionError> {
    let Some(job) = p.plan_clean(now) else {
        return Ok(None);
    };
    let done = job.run(map, &mut Throttle::new(rate), &mut |g| p.install_cleaned(g))?;
    let Some(out) = done else {
        tracing::info!(topic = %p.topic, partition = p.index, "the log changed while it was cleaned; cleaning again later");
        return Ok(None);
    };
    p.finish_clean(&out)?;
    Ok(Some(out.stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(dirty: u64, overdue: bool, unavailable: bool) -> Candidate {
        Candidate {
            cleanable: Cleanable {
                first_dirty: 0,
                first_uncleanable: 10,
                clean_bytes: 100 - dirty,
                dirty_bytes: dirty,
                overdue,
                horizon_passed: false,
            },
            min_ratio: 0.5,
            unavailable,
        }
    }

    #[test]
    fn the_overdue_then_the_dirtiest_available_log_goes_first() {
        let cases: [(&[Candidate], Option<usize>); 5] = [
            (&[], None),
            (&[candidate(10, false, false)], None),
            (
                &[candidate(60, false, false), candidate(90, false, false)],
                Some(1),
            ),
            (
                &[candidate(60, false, false), candidate(90, false, true)],
                Some(0),
            ),
            (
                &[candidate(20, true, false), candidate(90, false, false)],
                Some(0),
            ),
        ];
        for (candidates, want) in cases {
            assert_eq!(choose(candidates), want, "{candidates:?}");
        }
    }
}
