//! Sends a leader's ISR changes to the controller (Kafka's AlterPartition),
//! at most one in flight per partition, so a burst of follower fetches
//! asks once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::metadata::controller::{ControllerRequest, ControllerResponse};
use crate::metadata::quorum::Quorum;
use crate::metadata::records::{Applied, MetadataRecord};
use crate::partition::leader::IsrChange;

/// Sends ISR changes for the partitions broker `me` leads, remembering
/// those in flight.
pub struct IsrProposer {
    quorum: Arc<Quorum>,
    me: i32,
    pending: Arc<Mutex<HashSet<(String, i32)>>>,
}

impl IsrProposer {
    /// A proposer for broker `me`, reaching the controller through `quorum`.
    pub fn new(quorum: Arc<Quorum>, me: i32) -> Self {
        IsrProposer {
            quorum,
            me,
            pending: Arc::default(),
        }
    }

    /// Asks the controller for `change` on `topic`-`partition`, unless a
    /// request for that partition is already in flight.
    pub fn propose(&self, topic: &str, partition: i32, change: IsrChange) {
        let key = (topic.to_string(), partition);
        if !self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone())
        {
            return;
        }
        let pending = self.pending.clone();
        let quorum = self.quorum.clone();
        let me = self.me;
        tokio::spawn(async move {
            let record = MetadataRecord::ChangeIsr {
                topic: key.0.clone(),
                partition,
                leader: me,
                leader_epoch: change.leader_epoch,
                partition_epoch: change.partition_epoch,
                isr: change.isr.clone(),
            };
            match quorum
                .request(ControllerRequest::Propose(record), Duration::from_secs(10))
                .await
            {
                Ok(ControllerResponse::Applied {
                    index,
                    applied: Applied::Partition { .. },
                }) => {
                    tracing::info!(topic = %key.0, partition, isr = ?change.isr, "ISR changed");
                    quorum.wait_applied(index, Duration::from_secs(10)).await;
                }
                Ok(other) => {
                    tracing::debug!(topic = %key.0, partition, ?other, "ISR change not made")
                }
                Err(e) => {
                    tracing::warn!(topic = %key.0, partition, error = %e, "ISR change not sent")
                }
            }
            pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
        });
    }
}
