//! Sends a leader's ISR changes to the controller (Kafka's AlterPartition).
//! Changes queue per partition and go in batches: one request in flight
//! per broker carrying every partition waiting, as Kafka's
//! AlterPartitionManager sends them, so a broker that leads thousands of
//! partitions asks in a few round trips rather than thousands. A
//! partition is in at most one request at a time; a newer change for a
//! partition still waiting replaces the older one.
//!
//! A controller of an earlier release does not know the batch request; it
//! says so by leaving the flag out of its heartbeat answers (see
//! [`Quorum::controller_takes_batches`]), and then the changes go one by
//! one as before.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::metadata::controller::{ControllerRequest, ControllerResponse};
use crate::metadata::quorum::Quorum;
use crate::metadata::records::{Applied, MetadataRecord};
use crate::partition::leader::IsrChange;

/// Most partitions in one request: bounds its size and how long its
/// records take to commit.
const MAX_BATCH: usize = 1000;

/// How long one request may take, retries to a new controller included.
const PATIENCE: Duration = Duration::from_secs(10);

/// A partition, by topic name and index.
type Key = (String, i32);

/// The ISR changes waiting to be sent and those in flight.
#[derive(Debug, Default)]
struct Queue {
    waiting: BTreeMap<Key, IsrChange>,
    in_flight: HashSet<Key>,
}

impl Queue {
    /// Queues `change`, unless the partition is in flight: its leader
    /// asks again if the answer leaves the ISR short of what it wants.
    fn add(&mut self, key: Key, change: IsrChange) -> bool {
        if self.in_flight.contains(&key) {
            return false;
        }
        self.waiting.insert(key, change);
        true
    }

    /// Up to `max` waiting changes, now in flight.
    fn take(&mut self, max: usize) -> Vec<(Key, IsrChange)> {
        let mut batch = Vec::new();
        while batch.len() < max {
            let Some((key, change)) = self.waiting.pop_first() else {
                break;
            };
            self.in_flight.insert(key.clone());
            batch.push((key, change));
        }
        batch
    }

    /// The batch's partitions are answered (or given up on).
    fn done<'a>(&mut self, keys: impl Iterator<Item = &'a Key>) {
        for key in keys {
            self.in_flight.remove(key);
        }
    }
}

/// State shared by the proposer and its sending task.
struct Shared {
    queue: Mutex<Queue>,
    wake: Notify,
}

impl Shared {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sends the ISR changes of the partitions broker `me` leads; the sending
/// task stops when this is dropped.
pub struct IsrProposer {
    shared: Arc<Shared>,
    sender: AbortHandle,
}

impl IsrProposer {
    /// A proposer for broker `me`, reaching the controller through
    /// `quorum`. Must be called within the Tokio runtime.
    pub fn new(quorum: Arc<Quorum>, me: i32) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::default(),
            wake: Notify::new(),
        });
        let sender = tokio::spawn(send_forever(shared.clone(), quorum, me)).abort_handle();
        IsrProposer { shared, sender }
    }

    /// Asks the controller for `change` on `topic`-`partition`, unless a
    /// request for that partition is already in flight.
    pub fn propose(&self, topic: &str, partition: i32, change: IsrChange) {
        if self
            .shared
            .queue()
            .add((topic.to_string(), partition), change)
        {
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for IsrProposer {
    fn drop(&mut self) {
        self.sender.abort();
    }
}

async fn send_forever(shared: Arc<Shared>, quorum: Arc<Quorum>, me: i32) {
    loop {
        let batch = shared.queue().take(MAX_BATCH);
        if batch.is_empty() {
            shared.wake.notified().await;
            continue;
        }
        send(&quorum, me, &batch).await;
        shared.queue().done(batch.iter().map(|(key, _)| key));
    }
}

/// Sends one batch and waits until what it changed is applied here, so
/// the leader's next look at its ISR sees the outcome.
async fn send(quorum: &Quorum, me: i32, batch: &[(Key, IsrChange)]) {
    let records = batch
        .iter()
        .map(|((topic, partition), change)| MetadataRecord::ChangeIsr {
            topic: topic.clone(),
            partition: *partition,
            leader: me,
            leader_epoch: change.leader_epoch,
            partition_epoch: change.partition_epoch,
            isr: change.isr.clone(),
        });
    let outcomes: Vec<Option<ControllerResponse>> = if quorum.controller_takes_batches() {
        let req = ControllerRequest::ProposeAll(records.collect());
        match quorum.request(req, PATIENCE).await {
            Ok(ControllerResponse::AppliedAll(each)) if each.len() == batch.len() => {
                each.into_iter().map(Some).collect()
            }
            Ok(other) => {
                tracing::warn!(changes = batch.len(), answer = ?other, "ISR changes not made");
                return;
            }
            Err(e) => {
                tracing::warn!(changes = batch.len(), error = %e, "ISR changes not sent");
                return;
            }
        }
    } else {
        let mut each = Vec::with_capacity(batch.len());
        for record in records {
            match quorum
                .request(ControllerRequest::Propose(record), PATIENCE)
                .await
            {
                Ok(r) => each.push(Some(r)),
                Err(e) => {
                    tracing::warn!(error = %e, "ISR change not sent");
                    each.push(None);
                }
            }
        }
        each
    };
    let mut applied_up_to = 0;
    for (((topic, partition), change), outcome) in batch.iter().zip(outcomes) {
        match outcome {
            Some(ControllerResponse::Applied {
                index,
                applied: Applied::Partition { .. },
            }) => {
                tracing::info!(%topic, partition, isr = ?change.isr, "ISR changed");
                applied_up_to = applied_up_to.max(index);
            }
            Some(other) => tracing::debug!(%topic, partition, ?other, "ISR change not made"),
            None => {}
        }
    }
    if applied_up_to > 0 {
        quorum.wait_applied(applied_up_to, PATIENCE).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(isr: &[i32]) -> IsrChange {
        IsrChange {
            leader_epoch: 1,
            partition_epoch: 1,
            isr: isr.to_vec(),
        }
    }

    fn key(partition: i32) -> Key {
        ("t".to_string(), partition)
    }

    #[test]
    fn a_partition_is_in_one_request_at_a_time_with_its_newest_change() {
        let mut q = Queue::default();
        assert!(q.add(key(0), change(&[1])));
        assert!(
            q.add(key(0), change(&[1, 2])),
            "a waiting change is replaced"
        );
        assert!(q.add(key(1), change(&[1])));
        let batch = q.take(MAX_BATCH);
        assert_eq!(
            batch,
            vec![(key(0), change(&[1, 2])), (key(1), change(&[1]))]
        );
        assert!(!q.add(key(0), change(&[1, 2, 3])), "in flight: not queued");
        assert!(q.take(MAX_BATCH).is_empty());
        q.done(batch.iter().map(|(k, _)| k));
        assert!(q.add(key(0), change(&[1, 2, 3])), "answered: queued again");
        assert_eq!(q.take(MAX_BATCH), vec![(key(0), change(&[1, 2, 3]))]);
    }

    #[test]
    fn a_batch_carries_at_most_its_limit() {
        let mut q = Queue::default();
        for p in 0..5 {
            q.add(key(p), change(&[1]));
        }
        let sizes: Vec<usize> = (0..3).map(|_| q.take(2).len()).collect();
        assert_eq!(sizes, vec![2, 2, 1]);
    }
}
