//! Background upkeep of the logs: retention and time-based flushing.

/// How often partitions are checked against their `flush.ms`.
const FLUSH_CHECK: Duration = Duration::from_secs(1);

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::node::Node;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Flushes partitions whose `flush.ms` has passed, forever.
pub async fn run_flusher(node: Arc<Node>) {
    let mut tick = tokio::time::interval(FLUSH_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let node = node.clone();
        let _ = tokio::task::spawn_blocking(move || flush_due(&node)).await;
    }
}

fn flush_due(node: &Node) {
    let now = now_ms();
    for topic in node.topics.all() {
        for p in &topic.partitions {
            if let Err(e) = p.flush_if_due(now) {
                tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "flush failed");
            }
        }
    }
}

/// Applies retention every `log.retention.check.interval.ms`, forever.
pub async fn run(node: Arc<Node>) {
    let mut tick = tokio::time::interval(Duration::from_millis(
        node.config.retention_check_interval_ms,
    ));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let node = node.clone();
        // Deleting segments is file I/O; keep it off the request threads.
        let _ = tokio::task::spawn_blocking(move || enforce_retention(&node)).await;
    }
}

fn enforce_retention(node: &Node) {
    let now = now_ms();
    for topic in node.topics.all() {
        for p in &topic.partitions {
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

/// Flushes every partition and the committed offsets (at shutdown).
pub fn flush_all(node: &Node) {
    if let Err(e) = node.groups.flush() {
        tracing::warn!(error = %e, "flushing committed offsets failed");
    }
    for topic in node.topics.all() {
        for p in &topic.partitions {
            if let Err(e) = p.flush() {
                tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "flush failed");
            }
        }
    }
}
