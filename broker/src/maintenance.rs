//! Background upkeep of the logs: retention, time-based flushing, the
//! expiry of idle producers' state, and the leader's check for followers
//! that fell out of sync.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::now_ms;
use crate::node::Node;
use crate::partition::Partition;

/// How often partitions are checked against their `flush.ms`.
const FLUSH_CHECK: Duration = Duration::from_secs(1);

/// Runs `work` every `period`, forever. It does file I/O, so it runs on the
/// blocking pool, off the request threads.
async fn every(period: Duration, node: Arc<Node>, work: fn(&Node)) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let node = node.clone();
        let tasks = node.tasks.clone();
        let _ = tasks.spawn_blocking(move || work(&node)).await;
    }
}

/// As leader, asks to drop followers that lag more than
/// `replica.lag.time.max.ms` from the ISR, forever.
pub async fn run_isr_checks(node: Arc<Node>) {
    let period = Duration::from_millis((node.config.replica_lag_time_max_ms / 4).max(100));
    every(period, node, check_isr).await
}

fn check_isr(node: &Node) {
    node.replicas.check_isrs();
}

/// Flushes partitions whose `flush.ms` has passed, forever.
pub async fn run_flusher(node: Arc<Node>) {
    every(FLUSH_CHECK, node, flush_due).await
}

fn flush_due(node: &Node) {
    let now = now_ms();
    for topic in node.topics.all() {
        for p in topic.local() {
            if let Err(e) = p.flush_if_due(now) {
                tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "flush failed");
            }
        }
    }
}

/// Applies retention every `log.retention.check.interval.ms`, forever.
pub async fn run(node: Arc<Node>) {
    let period = Duration::from_millis(node.config.retention_check_interval_ms);
    every(period, node, enforce_retention).await
}

fn enforce_retention(node: &Node) {
    let now = now_ms();
    for topic in node.topics.all() {
        for p in topic.local() {
            match p.enforce_retention(now) {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(topic = %p.topic, partition = p.index, segments = n, "retention deleted segments")
                }
                Err(e) => {
                    tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "retention failed")
                }
            }
        }
    }
}

/// Forgets idle producers' state every
/// `producer.id.expiration.check.interval.ms`, forever.
pub async fn run_producer_expiry(node: Arc<Node>) {
    let period = Duration::from_millis(
        u64::try_from(node.config.producer_id_expiration_check_interval_ms).unwrap_or(1),
    );
    every(period, node, expire_producers).await
}

fn expire_producers(node: &Node) {
    let now = now_ms();
    let expiration = node.producer_id_expiration_ms();
    for topic in node.topics.all() {
        for p in topic.local() {
            let expired = p.expire_producers(now, expiration);
            if expired > 0 {
                tracing::debug!(topic = %p.topic, partition = p.index, expired, "idle producers forgotten");
            }
        }
    }
}

/// Flushes every partition and the committed offsets, and snapshots each
/// partition's producers so the next start replays nothing (at shutdown).
/// The partitions close side by side (see [`crate::parallel`]).
pub fn flush_all(node: &Node) {
    if let Err(e) = node.groups.flush() {
        tracing::warn!(error = %e, "flushing committed offsets failed");
    }
    let replicas: Vec<Arc<Partition>> = node
        .topics
        .all()
        .iter()
        .flat_map(|topic| topic.local().cloned())
        .collect();
    let threads = node.recovery_threads_per_data_dir() * node.config.log_dirs.len();
    close_all(&replicas, threads);
}

/// Closes `replicas` on up to `threads` threads (at least one).
fn close_all(replicas: &[Arc<Partition>], threads: usize) {
    crate::parallel::map(replicas, threads, |p| {
        if let Err(e) = p.close() {
            tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "flush or producer snapshot failed");
        }
    });
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::Compression;

    use super::*;
    use crate::log::batch::tests::encode;
    use crate::log::LogConfig;
    use crate::metadata::image::PartitionImage;

    /// A replica of partition `index` leading alone, with one batch.
    fn written(dir: &std::path::Path, index: i32) -> Arc<Partition> {
        let p = Partition::open(
            "t",
            index,
            1,
            &dir.join(format!("t-{index}")),
            LogConfig::default(),
        )
        .expect("open");
        p.apply(&PartitionImage {
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
            leader_epoch: 1,
            partition_epoch: 1,
            adding: Vec::new(),
            removing: Vec::new(),
            last_left_isr: None,
        });
        let batch = encode(&["v"], &[now_ms()], Compression::None);
        p.append(batch.freeze(), None).expect("append");
        Arc::new(p)
    }

    #[test]
    fn every_replica_is_closed_whatever_the_threads() {
        for threads in [0, 1, 3, 20] {
            let dir = tempfile::tempdir().expect("dir");
            let replicas: Vec<_> = (0..7).map(|i| written(dir.path(), i)).collect();
            // One more, not closed: as after a crash, it replays its batch.
            let crashed = written(dir.path(), 7);
            close_all(&replicas, threads);
            drop((replicas, crashed));
            for index in 0..8 {
                let p = Partition::open(
                    "t",
                    index,
                    1,
                    &dir.path().join(format!("t-{index}")),
                    LogConfig::default(),
                )
                .expect("reopen");
                let replayed = if index == 7 { 1 } else { 0 };
                assert_eq!(
                    p.replayed_at_open(),
                    replayed,
                    "threads {threads}, partition {index}"
                );
            }
        }
    }
}
